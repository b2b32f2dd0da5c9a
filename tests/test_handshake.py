"""Section 4: the WebSocket opening handshake, without sockets."""

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsproxy
from wsproxy import HttpError, check_upgrade, parse_request_head

pytestmark = pytest.mark.pure

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3


def upgrade_head(*extra, method="GET", version="1.1", key=RFC_KEY, ws_version="13",
                 connection="Upgrade", upgrade="websocket"):
    lines = ["%s /websockify HTTP/%s" % (method, version), "Host: example.test"]
    if upgrade is not None:
        lines.append("Upgrade: " + upgrade)
    if connection is not None:
        lines.append("Connection: " + connection)
    if ws_version is not None:
        lines.append("Sec-WebSocket-Version: " + ws_version)
    if key is not None:
        lines.append("Sec-WebSocket-Key: " + key)
    lines.extend(extra)
    return parse_request_head(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def refused(head):
    with pytest.raises(HttpError) as info:
        check_upgrade(head)
    return info.value


def parse_response(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, "response head must end with a blank line"
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        headers.setdefault(name.lower(), []).append(value)
    return lines[0], headers, body


# -- accept key ---------------------------------------------------------------


def test_accept_key_rfc6455_example():
    # RFC 6455 1.3 works this very example through.
    assert wsproxy.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_accept_key_second_published_example():
    # The example handshake on Wikipedia's "WebSocket" page.
    assert wsproxy.accept_key("x3JJHMbDL1EzLkh9GBhXDw==") == "HSmrc0sMlYUkAGmm5OPpG2HaGWk="


# -- accepted handshakes ------------------------------------------------------


def test_browser_handshake_without_subprotocol():
    upgrade = check_upgrade(upgrade_head())
    assert upgrade.key == RFC_KEY
    assert upgrade.subprotocol is None
    status, headers, body = parse_response(wsproxy.upgrade_response(upgrade))
    assert status == "HTTP/1.1 101 Switching Protocols"
    assert headers["upgrade"] == ["websocket"]
    assert headers["connection"] == ["Upgrade"]
    assert headers["sec-websocket-accept"] == ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]
    assert "sec-websocket-protocol" not in headers
    # After 101 the bytes are WebSocket frames: no body, no Content-Length.
    assert body == b""
    assert "content-length" not in headers


def test_firefox_connection_header_and_mixed_case_tokens():
    head = upgrade_head(connection="keep-alive, Upgrade", upgrade="WebSocket")
    assert wsproxy.is_upgrade_request(head)
    assert check_upgrade(head).key == RFC_KEY


@pytest.mark.parametrize("offered", ["binary", "base64, binary", "binary, base64", "chat, Binary"])
def test_binary_subprotocol_chosen_wherever_offered(offered):
    upgrade = check_upgrade(upgrade_head("Sec-WebSocket-Protocol: " + offered))
    assert upgrade.subprotocol == "binary"
    _, headers, _ = parse_response(wsproxy.upgrade_response(upgrade))
    assert headers["sec-websocket-protocol"] == ["binary"]


def test_subprotocol_offers_across_repeated_headers():
    head = upgrade_head("Sec-WebSocket-Protocol: chat", "Sec-WebSocket-Protocol: binary")
    assert check_upgrade(head).subprotocol == "binary"


def test_unknown_subprotocols_only_means_none_chosen():
    # RFC 6455 4.2.2: the server may choose none; the browser then decides.
    assert check_upgrade(upgrade_head("Sec-WebSocket-Protocol: chat, superchat")).subprotocol is None


def test_base64_only_is_refused_plainly():
    error = refused(upgrade_head("Sec-WebSocket-Protocol: base64"))
    assert error.status == 400
    assert "base64" in error.reason


def test_key_with_surrounding_spaces():
    assert check_upgrade(upgrade_head(key="  " + RFC_KEY + " ")).key == RFC_KEY


# -- refused handshakes ---------------------------------------------------------


def test_not_get_is_405_with_allow():
    error = refused(upgrade_head(method="POST"))
    assert error.status == 405
    assert ("Allow", "GET, HEAD") in error.headers


def test_http_1_0_is_refused():
    assert refused(upgrade_head(version="1.0")).status == 400


@pytest.mark.parametrize("connection", [None, "keep-alive", "upgraded"])
def test_connection_must_contain_upgrade(connection):
    error = refused(upgrade_head(connection=connection))
    assert error.status == 400
    assert "Connection" in error.reason


@pytest.mark.parametrize("ws_version", [None, "8", "12", "13, 8", ""])
def test_wrong_version_is_426_naming_13(ws_version):
    error = refused(upgrade_head(ws_version=ws_version))
    assert error.status == 426
    # RFC 6455 4.4: tell the client which version we speak.
    assert ("Sec-WebSocket-Version", "13") in error.headers
    _, headers, _ = parse_response(wsproxy.error_response(error))
    assert headers["sec-websocket-version"] == ["13"]


def test_two_version_headers_are_refused():
    head = upgrade_head("Sec-WebSocket-Version: 13")
    assert refused(head).status == 426


@pytest.mark.parametrize("key", [
    None,
    "",
    "not base64!",
    base64.b64encode(b"x" * 15).decode(),   # decodes to 15 bytes
    base64.b64encode(b"x" * 17).decode(),
    RFC_KEY[:-2],                           # bad padding
    "dGhlIHNhbXBsZSBub25jZQ=\xe9",          # not ASCII
])
def test_bad_key_is_400(key):
    error = refused(upgrade_head(key=key))
    assert error.status == 400
    assert "Sec-WebSocket-Key" in error.reason


def test_two_keys_are_refused():
    error = refused(upgrade_head("Sec-WebSocket-Key: " + base64.b64encode(b"y" * 16).decode()))
    assert error.status == 400


def test_plain_request_is_not_an_upgrade():
    head = parse_request_head(b"GET /vnc.html HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
    assert not wsproxy.is_upgrade_request(head)
    assert not wsproxy.is_upgrade_request(upgrade_head(upgrade="h2c"))


# -- against an independent client implementation ------------------------------


def test_wsproto_client_accepts_our_handshake():
    wsproto = pytest.importorskip("wsproto")
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    client = WSConnection(ConnectionType.CLIENT)
    request = client.send(Request(host="example.test", target="/websockify", subprotocols=["binary"]))
    end = wsproxy.find_head_end(request)
    assert end == len(request)
    upgrade = check_upgrade(parse_request_head(request[:end]))
    client.receive_data(wsproxy.upgrade_response(upgrade))
    events = list(client.events())
    assert len(events) == 1 and isinstance(events[0], AcceptConnection), events
    assert events[0].subprotocol == "binary"
    assert wsproto  # imported for the skip


# -- property: any mix of handshake headers ---------------------------------------------

_HANDSHAKE_LINES = st.sampled_from([
    "Upgrade: websocket", "Upgrade: WebSocket, h2c", "Upgrade: ", "Connection: Upgrade",
    "Connection: keep-alive, upgrade", "Connection: close", "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Version: 8", "Sec-WebSocket-Version: 13, 8", "Sec-WebSocket-Key: " + RFC_KEY,
    "Sec-WebSocket-Key: " + RFC_KEY[:-2], "Sec-WebSocket-Key: \u00e9\u00e9==", "Sec-WebSocket-Key: ",
    "Sec-WebSocket-Protocol: binary", "Sec-WebSocket-Protocol: base64", "Sec-WebSocket-Protocol: chat, ,",
    "Origin: http://example.test",
]) | st.builds("{}: {}".format, st.sampled_from(["Upgrade", "Connection", "Sec-WebSocket-Key",
                                                  "Sec-WebSocket-Version", "Sec-WebSocket-Protocol"]),
               st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30))


_REQUIRED = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + RFC_KEY]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["GET", "GET", "HEAD", "POST"]), st.sampled_from(["1.0", "1.1", "1.1"]),
       st.sets(st.integers(0, 3)), st.lists(_HANDSHAKE_LINES, max_size=6), st.randoms(use_true_random=False))
def test_any_handshake_headers_give_an_upgrade_or_a_status(method, version, dropped, extra, rng):
    # The four required lines, some dropped, plus near-misses and repeats, in any order.
    lines = [line for i, line in enumerate(_REQUIRED) if i not in dropped] + extra
    rng.shuffle(lines)
    text = "%s /websockify HTTP/%s\r\n%s\r\n\r\n" % (method, version, "".join(line + "\r\n" for line in lines))
    try:
        head = parse_request_head(text.encode("latin-1"))
        upgrade = check_upgrade(head)
    except HttpError as exc:
        assert exc.status in (400, 405, 426)
        assert b"\r\n\r\n" in wsproxy.error_response(exc)
        return
    assert method == "GET" and version == "1.1"
    assert len(base64.b64decode(upgrade.key, validate=True)) == 16
    assert upgrade.subprotocol in (None, "binary")
    assert wsproxy.upgrade_response(upgrade).startswith(b"HTTP/1.1 101 ")
