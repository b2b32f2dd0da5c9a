"""HTTP as a user (or a misbehaving client) sees it: the proxy subprocess on
127.0.0.1, raw sockets for what real clients never send, websockets/wsproto
for the rest.  Static files come from a small web root in tmp."""

import base64
import email.utils
import os
import socket
import struct
import threading
import time

import pytest
import websockets
from websockets.sync.client import connect
import wsproto
import wsproto.events as wse
from wsproto.connection import ConnectionType

from conftest import (free_port, get_request, http_exchange, raw_websocket, read_close_code, read_response,
                      upgrade_headers, wait_until, ws_frame)


@pytest.fixture(scope="module")
def proxy(module_start_proxy, module_echo_server, web_root):
    return module_start_proxy("--web", str(web_root), "127.0.0.1:%d" % module_echo_server.port)


# A slowloris client starts as soon as the module's proxy is up and is
# checked by the last test, so its ~10 s wait overlaps the other tests.
@pytest.fixture(scope="module")
def slowloris(proxy):
    result = {}

    def trickle():
        start = time.monotonic()
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=20)
        request = get_request("/vnc.html", [("X-Pad", "a" * 40)])
        received = b""
        try:
            sock.settimeout(1.0)
            for byte in request[:-4]:  # never completes the head
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    break
                try:
                    chunk = sock.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    break
                received += chunk
                if not chunk or b"\r\n\r\n" in received:
                    break
                if time.monotonic() - start > 15:
                    break
            sock.settimeout(3)
            try:
                while True:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    received += chunk
            except OSError:
                pass
        finally:
            result["elapsed"] = time.monotonic() - start
            result["received"] = received
            sock.close()

    thread = threading.Thread(target=trickle, name="slowloris", daemon=True)
    thread.start()
    yield thread, result
    thread.join(20)


def request(proxy, path, headers=(), method="GET", version="1.1", head_only=False):
    return http_exchange(proxy.port, get_request(path, headers, method, version), head_only=head_only)


def upgrade(proxy, path="/websockify", key=None, protocols=None, extra=(), version="1.1"):
    return request(proxy, path, list(upgrade_headers(key, protocols)) + list(extra), version=version)


def test_others_are_served_while_a_slowloris_trickles(proxy, slowloris):
    """Also starts the slowloris early, so its ~10 s overlap the other tests."""
    thread, _ = slowloris
    time.sleep(0.5)
    response = request(proxy, "/vnc.html")
    assert thread.is_alive(), "the slowloris client ended early"
    assert response.status == 200


# ---------------------------------------------------------------------------
# malformed request heads
# ---------------------------------------------------------------------------


def test_oversized_head_is_431(proxy):
    # Just over the 16 KiB limit and no end of head: the server reads it all
    # (no reset from unread bytes) and answers 431.
    data = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (16 * 1024)
    response = http_exchange(proxy.port, data)
    assert response.status == 431
    assert b"larger than" in response.body


def test_too_many_headers_is_431(proxy):
    response = request(proxy, "/vnc.html", [("X-H%d" % i, "v") for i in range(101)])
    assert response.status == 431
    assert b"header" in response.body


def test_garbage_before_the_head_is_400(proxy):
    response = http_exchange(proxy.port, b"\x00\x01\x02garbage\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.status == 400


def test_http_1_0_upgrade_is_400(proxy):
    response = upgrade(proxy, version="1.0")
    assert response.status == 400
    assert b"HTTP/1.1" in response.body


def test_wrong_websocket_version_is_426_with_supported_version(proxy):
    headers = [h for h in upgrade_headers() if h[0] != "Sec-WebSocket-Version"] + [("Sec-WebSocket-Version", "8")]
    response = request(proxy, "/websockify", headers)
    assert response.status == 426
    assert response.header("sec-websocket-version") == "13"


def test_bad_key_is_400(proxy):
    assert upgrade(proxy, key="not-base64!").status == 400
    short = base64.b64encode(b"short").decode()
    response = upgrade(proxy, key=short)
    assert response.status == 400 and b"Sec-WebSocket-Key" in response.body


def test_repeated_key_is_400(proxy):
    response = upgrade(proxy, extra=[("Sec-WebSocket-Key", base64.b64encode(os.urandom(16)).decode())])
    assert response.status == 400


def test_post_is_405(proxy):
    response = request(proxy, "/vnc.html", [("Content-Length", "0")], method="POST")
    assert response.status == 405
    assert "GET" in response.header("allow")


# ---------------------------------------------------------------------------
# static files
# ---------------------------------------------------------------------------


def test_static_get_headers(proxy, web_root):
    response = request(proxy, "/app.js")
    assert response.status == 200
    assert response.body == (web_root / "app.js").read_bytes()
    assert response.header("content-type").startswith("text/javascript")
    assert response.header("cache-control") == "no-cache"
    mtime = os.stat(web_root / "app.js").st_mtime
    assert email.utils.parsedate_to_datetime(response.header("last-modified")).timestamp() == int(mtime)
    assert request(proxy, "/style.css").header("content-type").startswith("text/css")


def test_head_has_content_length_and_no_body(proxy, web_root):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(get_request("/app.js", [("Connection", "close")], method="HEAD"))
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Length: %d" % len((web_root / "app.js").read_bytes()) in head
    assert body == b""


def test_if_modified_since_gets_304(proxy):
    first = request(proxy, "/app.js")
    again = request(proxy, "/app.js", [("If-Modified-Since", first.header("last-modified"))])
    assert again.status == 304
    assert again.body == b""
    older = email.utils.formatdate(0, usegmt=True)
    assert request(proxy, "/app.js", [("If-Modified-Since", older)]).status == 200


def test_root_serves_vnc_html(proxy, web_root):
    response = request(proxy, "/")
    assert response.status == 200
    assert response.body == (web_root / "vnc.html").read_bytes()
    assert response.header("content-type").startswith("text/html")
    assert request(proxy, "/sub/").body == (web_root / "sub" / "index.html").read_bytes()


@pytest.mark.parametrize("path", ["/../wsproxy.py", "/%2e%2e/wsproxy.py", "/sub/%2E%2E/%2e%2e/wsproxy.py",
                                  "//evil.example/", "//evil.example/vnc.html", "/.hidden", "/sub",
                                  "/missing.js", "/sub/..%2fvnc.html"])
def test_traversal_and_odd_paths_are_404_never_redirects(proxy, path):
    response = request(proxy, path)
    assert not 300 <= response.status < 400, "never a redirect (CVE-2021-3654): %r" % response
    assert response.header("location") is None
    if path == "/sub":
        assert response.status in (200, 404)  # a directory's index, or nothing
    else:
        assert response.status in (400, 404), response
    assert b"import socket" not in response.body, "wsproxy.py itself must never be served"


def test_keep_alive_two_requests_on_one_connection(proxy, web_root):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        buf = bytearray()
        sock.sendall(get_request("/app.js"))
        first = read_response(sock, buffer=buf)
        assert first.status == 200 and first.header("connection") == "keep-alive"
        sock.sendall(get_request("/vnc.html"))
        second = read_response(sock, buffer=buf)
        assert second.status == 200
        assert second.body == (web_root / "vnc.html").read_bytes()
        # Pipelined, too.
        sock.sendall(get_request("/style.css") + get_request("/app.js", [("Connection", "close")]))
        assert read_response(sock, buffer=buf).body == (web_root / "style.css").read_bytes()
        last = read_response(sock, buffer=buf)
        assert last.body == (web_root / "app.js").read_bytes()
        assert last.header("connection") == "close"


# ---------------------------------------------------------------------------
# subprotocols
# ---------------------------------------------------------------------------


def test_binary_chosen_wherever_offered(proxy):
    with connect(proxy.url(), subprotocols=["foo", "binary"]) as ws:
        assert ws.subprotocol == "binary"
        ws.send(b"hi")
        assert ws.recv(timeout=5) == b"hi"


def test_no_subprotocol_when_none_offered(proxy):
    with connect(proxy.url()) as ws:
        assert ws.subprotocol is None
    response = upgrade(proxy, protocols="foo, bar")
    assert response.status == 101
    assert response.header("sec-websocket-protocol") is None


def test_base64_only_is_400_with_clear_body(proxy):
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        connect(proxy.url(), subprotocols=["base64"], open_timeout=5)
    assert info.value.response.status_code == 400
    assert b"base64" in info.value.response.body


# ---------------------------------------------------------------------------
# targets: fixed dead target, tokens
# ---------------------------------------------------------------------------


def test_fixed_dead_target_is_502(start_proxy):
    port = free_port()
    proxy = start_proxy("--no-web", "127.0.0.1:%d" % port)
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        connect(proxy.url(), open_timeout=5)
    assert info.value.response.status_code == 502
    assert b"unreachable" in info.value.response.body


@pytest.fixture
def token_proxy(start_proxy, echo_server, tmp_path, web_root):
    tokens = tmp_path / "tokens.conf"
    tokens.write_text("good: 127.0.0.1:%d\ndead: 127.0.0.1:%d\n" % (echo_server.port, free_port()))
    proxy = start_proxy("--web", str(web_root), "--token-source", str(tokens))
    proxy.tokens = tokens
    return proxy


def _status(proxy, path):
    try:
        with connect(proxy.url(path), open_timeout=5) as ws:
            ws.send(b"ping?")
            assert ws.recv(timeout=5) == b"ping?"
            return 101, b""
    except websockets.exceptions.InvalidStatus as exc:
        return exc.response.status_code, exc.response.body


def test_token_routes_to_its_target(token_proxy):
    assert _status(token_proxy, "/websockify?token=good") == (101, b"")
    # Cookie fallback, as websockify accepts.
    response = upgrade(token_proxy, extra=[("Cookie", "a=b; token=good")])
    assert response.status == 101


def test_unknown_and_missing_token_are_404_with_reason(token_proxy):
    status, body = _status(token_proxy, "/websockify?token=nope")
    assert status == 404 and b"unknown token" in body
    status, body = _status(token_proxy, "/websockify")
    assert status == 404 and b"token" in body


def test_token_with_dead_target_is_502_not_101(token_proxy):
    status, body = _status(token_proxy, "/websockify?token=dead")
    assert status == 502
    assert b"unreachable" in body


def test_plain_get_explains_what_an_upgrade_would_get(token_proxy, echo_server):
    unknown = request(token_proxy, "/websockify?token=x")
    assert unknown.status == 404 and b"unknown token" in unknown.body
    # A plain GET never connects to a target (issue 10.5): it says what the
    # last upgrade found, and before any upgrade only that this is an endpoint.
    dead = request(token_proxy, "/websockify?token=dead")
    assert dead.status == 426 and b"WebSocket endpoint" in dead.body
    assert _status(token_proxy, "/websockify?token=dead")[0] == 502
    dead = request(token_proxy, "/websockify?token=dead")
    assert dead.status == 502 and b"unreachable: connection refused" in dead.body
    good = request(token_proxy, "/websockify?token=good")
    assert good.status == 426 and b"WebSocket endpoint" in good.body
    assert good.header("upgrade") == "websocket"
    assert echo_server.connections == 0


def test_no_plain_request_connects_to_a_target(token_proxy, echo_server):
    """Issue 10.5: only an authorised upgrade reaches a target; curl, health
    checks and the page's own failure probe do not (Xvnc counts each one)."""
    for method in ("GET", "HEAD"):
        for path in ("/websockify?token=good", "/websockify/?token=good", "/?token=good", "/websockify"):
            request(token_proxy, path, method=method, head_only=method == "HEAD")
    time.sleep(0.2)
    assert echo_server.connections == 0
    assert _status(token_proxy, "/websockify?token=good")[0] == 101
    assert wait_until(lambda: echo_server.connections == 1, 5)
    # A target that answered clears what was remembered of it.
    assert request(token_proxy, "/websockify?token=good").status == 426


# ---------------------------------------------------------------------------
# request bodies (issue 10.2: request smuggling)
# ---------------------------------------------------------------------------


def _smuggled(upgrade_path):
    inner = get_request(upgrade_path, upgrade_headers()) + ws_frame(0x2, b"smuggled")
    return inner


@pytest.mark.parametrize("framing", ["content-length", "chunked", "both", "huge", "plus"])
def test_request_with_a_body_is_400_and_nothing_behind_it_is_served(token_proxy, echo_server, framing):
    body = _smuggled("/websockify?token=good")
    if framing == "content-length":
        headers = [("Content-Length", str(len(body)))]
    elif framing == "chunked":
        headers = [("Transfer-Encoding", "chunked")]
        body = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    elif framing == "both":
        headers = [("Content-Length", "0"), ("Transfer-Encoding", "chunked")]
    elif framing == "huge":
        headers = [("Content-Length", "9" * 5000)]
    else:
        headers = [("Content-Length", "+5")]
    with socket.create_connection(("127.0.0.1", token_proxy.port), timeout=5) as sock:
        sock.sendall(get_request("/vnc.html", headers) + body)
        buf = bytearray()
        response = read_response(sock, buffer=buf)
        assert response.status == 400 and b"request bodies are not accepted" in response.body
        assert response.header("connection") == "close"
        rest = bytes(buf)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    assert rest == b"", "a second response: %r" % rest[:200]
    time.sleep(0.2)
    assert echo_server.connections == 0
    assert "400 request bodies are not accepted" in token_proxy.stderr


def test_an_upgrade_with_a_body_is_400(token_proxy, echo_server):
    response = upgrade(token_proxy, "/websockify?token=good", extra=[("Content-Length", "8")])
    assert response.status == 400
    assert echo_server.connections == 0


def test_keep_alive_requests_without_bodies_still_pipeline(token_proxy):
    """A zero Content-Length is no body; pipelined body-less requests are each answered."""
    with socket.create_connection(("127.0.0.1", token_proxy.port), timeout=5) as sock:
        sock.sendall(get_request("/vnc.html", [("Content-Length", "0")]) + get_request("/vnc.html", [("Content-Length", "00")]))
        buf = bytearray()
        assert read_response(sock, buffer=buf).status == 200
        assert read_response(sock, buffer=buf).status == 200


def test_token_file_edit_takes_effect_on_next_connection(token_proxy, echo_server):
    assert _status(token_proxy, "/websockify?token=good")[0] == 101
    assert _status(token_proxy, "/websockify?token=fresh")[0] == 404
    token_proxy.tokens.write_text("fresh: 127.0.0.1:%d\n# good was revoked\n" % echo_server.port)
    assert _status(token_proxy, "/websockify?token=fresh")[0] == 101
    assert _status(token_proxy, "/websockify?token=good")[0] == 404
    assert "reloaded" in token_proxy.wait_stderr(lambda t: "reloaded" in t)


def test_host_token(start_proxy, echo_server, tmp_path):
    tokens = tmp_path / "tokens.conf"
    tokens.write_text("vm1: 127.0.0.1:%d\n" % echo_server.port)
    proxy = start_proxy("--no-web", "--token-source", str(tokens), "--host-token")

    def try_host(host):
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        ws = wsproto.WSConnection(ConnectionType.CLIENT)
        sock.sendall(ws.send(wse.Request(host=host, target="/websockify")))
        with sock:
            while True:
                data = sock.recv(65536)
                assert data, "closed without a response"
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, wse.AcceptConnection):
                        sock.sendall(ws.send(wse.Message(data=b"via host")))
                        echoed = b""
                        while len(echoed) < 8:
                            ws.receive_data(sock.recv(65536))
                            for ev in ws.events():
                                echoed += ev.data
                        return 101, echoed
                    if isinstance(event, wse.RejectConnection):
                        return event.status_code, b""

    assert try_host("vm1:%d" % proxy.port) == (101, b"via host")
    assert try_host("vm1") == (101, b"via host")
    assert try_host("vm2:%d" % proxy.port)[0] == 404


# ---------------------------------------------------------------------------
# auth plugins
# ---------------------------------------------------------------------------


def _basic(user_pw: str):
    return ("Authorization", "Basic " + base64.b64encode(user_pw.encode()).decode())


def test_basic_auth(start_proxy, echo_server, web_root):
    proxy = start_proxy("--web", str(web_root), "--auth-plugin", "BasicHTTPAuth",
                        "--auth-source", "alice:s3cretpw", "127.0.0.1:%d" % echo_server.port)
    for extra in ([], [_basic("alice:wrong")], [_basic("bob:s3cretpw")], [("Authorization", "Basic !!!")]):
        response = upgrade(proxy, extra=extra)
        assert response.status == 401, extra
        assert response.header("www-authenticate", "").startswith("Basic ")
    assert upgrade(proxy, extra=[_basic("alice:s3cretpw")]).status == 101
    with connect(proxy.url(), additional_headers=[_basic("alice:s3cretpw")]) as ws:
        ws.send(b"in")
        assert ws.recv(timeout=5) == b"in"
    assert "s3cretpw" not in proxy.stderr


@pytest.mark.parametrize("web_auth", [[], ["--web-auth"]])
def test_basic_auth_protects_the_page(start_proxy, echo_server, web_root, web_auth):
    """The browser asks for the password when it loads the page (it never asks
    for a WebSocket) and sends it with the page's WebSocket: so the page needs
    it too, with or without --web-auth."""
    proxy = start_proxy("--web", str(web_root), "--auth-plugin", "BasicHTTPAuth", "--auth-source",
                        "alice:s3cretpw", "127.0.0.1:%d" % echo_server.port, *web_auth)
    for path in ("/vnc.html", "/", "/app.js"):
        response = request(proxy, path)
        assert response.status == 401 and response.header("www-authenticate", "").startswith("Basic "), path
        assert b"<title>" not in response.body
        # What the browser shows when the person cancels its login prompt.
        assert b"user name and password: reload the page and sign in" in response.body
    ok = request(proxy, "/vnc.html", [_basic("alice:s3cretpw")])
    assert ok.status == 200 and ok.body == (web_root / "vnc.html").read_bytes()
    # The page's probe of the endpoint: refused without a challenge (no login
    # prompt for a URL that is no page), and told the truth once signed in.
    probe = request(proxy, "/websockify", [_basic("alice:wrong")])
    assert probe.status == 401 and probe.header("www-authenticate") is None
    assert request(proxy, "/websockify", [_basic("alice:s3cretpw")]).status == 426


def test_expect_origin_allow_list(start_proxy, echo_server):
    proxy = start_proxy("--no-web", "--auth-plugin", "ExpectOrigin", "--auth-source",
                        "http://good.example https://also.example", "127.0.0.1:%d" % echo_server.port)
    with connect(proxy.url(), origin="http://good.example") as ws:
        ws.send(b"o")
        assert ws.recv(timeout=5) == b"o"
    assert upgrade(proxy, extra=[("Origin", "https://also.example")]).status == 101
    for origin in ("http://evil.example", "http://good.example.evil", "null"):
        response = upgrade(proxy, extra=[("Origin", origin)])
        assert response.status == 403, origin
    assert upgrade(proxy).status == 403, "no Origin is not an allowed origin"


# ---------------------------------------------------------------------------
# what a peer sends that the old parsers fumbled
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("since", [
    b"Sun, \xb2 Nov 1994 08:49:37 GMT",       # "\xb2" is a digit to str.isdigit(), not to int()
    b"Sun, 06 Nov " + b"9" * 5000 + b" 08:49:37 GMT",
    b"Sun, 06 Nov 1994 99:99:99 GMT",
])
def test_crafted_if_modified_since_is_ignored(proxy, web_root, since):
    # Once an unhandled exception: no reply and a 20-line traceback each time.
    data = get_request("/vnc.html")[:-2] + b"If-Modified-Since: " + since + b"\r\n\r\n"
    response = http_exchange(proxy.port, data)
    assert response.status == 200
    assert response.body == (web_root / "vnc.html").read_bytes()
    assert "Traceback" not in proxy.stderr


def test_empty_lines_before_the_request_line_are_skipped(proxy, web_root):
    # RFC 9112 2.2; the server used to cut the head at the first blank line
    # and answer 400 "empty request".
    response = http_exchange(proxy.port, b"\r\n\r\n" + get_request("/vnc.html"))
    assert response.status == 200
    assert response.body == (web_root / "vnc.html").read_bytes()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        buf = bytearray()
        sock.sendall(get_request("/app.js") + b"\r\n" + get_request("/style.css"))
        assert read_response(sock, buffer=buf).body == (web_root / "app.js").read_bytes()
        assert read_response(sock, buffer=buf).body == (web_root / "style.css").read_bytes()


# ---------------------------------------------------------------------------
# the log: one escaped line per event, the client address behind proxies
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trusting_proxy(module_start_proxy, module_echo_server, web_root):
    """A proxy that believes X-Forwarded-For from 127.0.0.1 (as behind HAProxy)."""
    return module_start_proxy("--web", str(web_root), "--trusted-proxy", "127.0.0.1",
                              "127.0.0.1:%d" % module_echo_server.port)


def log_lines_with(proxy, marker, count=1):
    """The log's lines that contain ``marker``, once ``count`` of them are there."""
    text = proxy.wait_stderr(lambda t: t.count(marker) >= count)
    # splitlines also breaks at \r, \v, \f, \x1c-\x1e, \x85, \u2028: any of
    # them in the log would start a line of its own in some viewer.
    return [line for line in text.splitlines() if marker in line]


def test_close_reason_cannot_forge_a_log_line(trusting_proxy):
    marker = "bye-%s" % os.urandom(4).hex()
    forged = "2024-01-01 00:00:00,000 INFO conn 99 10.0.0.1:1: forged-%s" % marker
    sock, buf = raw_websocket(trusting_proxy.port)
    with sock:
        reason = (marker + "\n" + forged + "\r\u2028\x1b[2J").encode("utf-8")
        sock.sendall(ws_frame(0x8, struct.pack("!H", 1000) + reason))
        assert read_close_code(sock, buf)[0] == 1000
    lines = log_lines_with(trusting_proxy, marker)
    assert len(lines) == 1, lines
    assert "closed code=1000" in lines[0]
    assert lines[0].endswith(marker + "\\x0a" + forged + "\\x0d\\u2028\\x1b[2J")
    assert "\x1b" not in trusting_proxy.stderr


def test_request_path_with_terminal_escapes_is_escaped_in_the_log(trusting_proxy):
    marker = "/esc-%s" % os.urandom(4).hex()
    response = http_exchange(trusting_proxy.port, get_request(marker + "\x1b[2J\x1b]0;pwned\x07"))
    assert response.status == 404
    lines = log_lines_with(trusting_proxy, marker)
    assert len(lines) == 1, lines
    assert marker + "\\x1b[2J\\x1b]0;pwned\\x07 -> 404" in lines[0]
    assert "\x1b" not in trusting_proxy.stderr and "\x07" not in trusting_proxy.stderr


@pytest.mark.parametrize("forwarded, logged", [
    # HAProxy "option forwardfor": the client's own header, then HAProxy's.
    (["6.6.6.6", "203.0.113.9"], "203.0.113.9"),
    (["6.6.6.6, 203.0.113.9"], "203.0.113.9"),      # nginx appends to the client's
    (["\x1b[2Jadmin"], "127.0.0.1:"),                # not an address: the peer
])
def test_client_behind_a_trusted_proxy_is_logged_as_what_the_proxy_saw(trusting_proxy, forwarded, logged):
    marker = "/xff-%s" % os.urandom(4).hex()
    response = request(trusting_proxy, marker, [("X-Forwarded-For", value) for value in forwarded])
    assert response.status == 404
    lines = log_lines_with(trusting_proxy, marker)
    assert len(lines) == 1, lines
    assert " %s" % logged in lines[0] and "6.6.6.6" not in lines[0] and "admin" not in lines[0]


def test_x_forwarded_for_from_an_untrusted_peer_is_not_believed(proxy):
    marker = "/xff-%s" % os.urandom(4).hex()
    request(proxy, marker, [("X-Forwarded-For", "203.0.113.9")])
    lines = log_lines_with(proxy, marker)
    assert len(lines) == 1 and " 127.0.0.1:" in lines[0] and "203.0.113.9" not in lines[0]


# ---------------------------------------------------------------------------
# last: the slowloris client started at the top of this module
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_slowloris_gets_408_within_head_timeout(slowloris):
    thread, result = slowloris
    thread.join(20)
    assert not thread.is_alive()
    assert result["received"].startswith(b"HTTP/1.1 408"), result
    assert result["elapsed"] <= 12.5, "closed after %.1fs" % result["elapsed"]
