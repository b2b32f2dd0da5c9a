"""Routing without sockets: what a request is (upgrade, file, endpoint), who
may make it (auth plugins), which target it reaches and what a plain request
to the WebSocket endpoint is told."""

import base64

import pytest

import wsproxy
from wsproxy import (ROUTE_ENDPOINT, ROUTE_FILE, ROUTE_WEBSOCKET, HttpError, Target, TokenEntry, admit, authorize,
                     endpoint_reply, parse_request_head, requested_token, resolve_target, route)

pytestmark = pytest.mark.pure

UPGRADE = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
           ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]


def head(target="/", headers=(), method="GET"):
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: example:6080"] + ["%s: %s" % h for h in headers]
    return parse_request_head(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def status_of(call, *args):
    with pytest.raises(HttpError) as info:
        call(*args)
    return info.value.status


@pytest.fixture
def web_root(tmp_path):
    (tmp_path / "vnc.html").write_text("<!doctype html>")
    return str(tmp_path)


def test_an_upgrade_is_a_websocket_on_any_path(web_root):
    assert route(head("/websockify", UPGRADE), web_root).kind == ROUTE_WEBSOCKET
    assert route(head("/vnc.html", UPGRADE), None).kind == ROUTE_WEBSOCKET


def test_a_file_under_the_web_root(web_root):
    where = route(head("/vnc.html"), web_root)
    assert where.kind == ROUTE_FILE and where.path.endswith("vnc.html")
    assert route(head("/vnc.html", method="HEAD"), web_root).kind == ROUTE_FILE


def test_plain_requests_for_the_websocket_path_are_the_endpoint(web_root):
    for target in ("/websockify", "/websockify/?token=a", "/elsewhere?token=a"):
        assert route(head(target), web_root).kind == ROUTE_ENDPOINT, target
    assert route(head("/"), None).kind == ROUTE_ENDPOINT     # no web root: / explains itself


def test_route_errors(web_root):
    assert status_of(route, head("/vnc.html", method="POST"), web_root) == 405
    assert status_of(route, head("/missing.html"), web_root) == 404
    assert status_of(route, head("/vnc.html"), None) == 404
    assert status_of(route, head("/../../etc/passwd"), web_root) == 404
    assert status_of(route, head("/vnc.html", [("Content-Length", "5")]), web_root) == 400
    assert status_of(route, head("/websockify", UPGRADE + [("Transfer-Encoding", "chunked")]), web_root) == 400


def _basic(user_pass):
    return [("Authorization", "Basic " + base64.b64encode(user_pass.encode()).decode())]


def test_basic_auth():
    authorize(head("/", _basic("alice:s3cret")), "BasicHTTPAuth", "alice:s3cret")
    for headers in ([], _basic("alice:wrong"), _basic("alice:s3cret!"), [("Authorization", "Basic !!!")],
                    [("Authorization", "Bearer alice:s3cret")]):
        error = pytest.raises(HttpError, authorize, head("/", headers), "BasicHTTPAuth", "alice:s3cret").value
        assert error.status == 401 and error.headers[0][0] == "WWW-Authenticate"


def test_basic_auth_guards_the_page_too(web_root):
    """Browsers ask for a password for the page, never for a WebSocket; once
    asked, they send it with the page's WebSocket too.  So BasicHTTPAuth
    guards every request, --web-auth or not."""
    for web_auth in (False, True):
        for target, headers in (("/vnc.html", []), ("/missing.html", []), ("/websockify", UPGRADE)):
            error = pytest.raises(HttpError, admit, head(target, headers), web_root, "BasicHTTPAuth",
                                  "alice:s3cret", web_auth).value
            assert error.status == 401 and ("WWW-Authenticate", 'Basic realm="wsproxy", charset="UTF-8"') in \
                error.headers, (target, web_auth)
            assert "reload the page and sign in" in error.reason
        signed_in = _basic("alice:s3cret")
        assert admit(head("/vnc.html", signed_in), web_root, "BasicHTTPAuth", "alice:s3cret", web_auth).kind == ROUTE_FILE
        assert admit(head("/websockify", signed_in + UPGRADE), web_root, "BasicHTTPAuth", "alice:s3cret",
                     web_auth).kind == ROUTE_WEBSOCKET
        assert status_of(admit, head("/missing.html", signed_in), web_root, "BasicHTTPAuth", "alice:s3cret",
                         web_auth) == 404


def test_the_pages_probe_gets_a_401_without_a_login_prompt(web_root):
    """A plain GET of the endpoint is the page asking why its WebSocket failed:
    a challenge there would open a login prompt (or stall a headless browser)
    for a URL that is no page."""
    for target in ("/websockify", "/websockify?token=x"):
        for root in (web_root, None):
            error = pytest.raises(HttpError, admit, head(target, _basic("alice:wrong")), root, "BasicHTTPAuth",
                                  "alice:s3cret", False).value
            assert error.status == 401 and error.headers == [], (target, root)
            assert "reload the page and sign in" in error.reason
    assert admit(head("/websockify", _basic("alice:s3cret")), web_root, "BasicHTTPAuth", "alice:s3cret",
                 False).kind == ROUTE_ENDPOINT
    # Without web files, / explains the endpoint to a person, who may sign in there.
    error = pytest.raises(HttpError, admit, head("/"), None, "BasicHTTPAuth", "alice:s3cret", False).value
    assert error.status == 401 and error.headers[0][0] == "WWW-Authenticate"


def test_expect_origin_guards_the_way_to_the_target(web_root):
    origins = "https://a.example"
    evil = [("Origin", "https://evil.example")]
    assert admit(head("/vnc.html"), web_root, "ExpectOrigin", origins, False).kind == ROUTE_FILE
    assert admit(head("/websockify"), web_root, "ExpectOrigin", origins, False).kind == ROUTE_ENDPOINT
    assert status_of(admit, head("/websockify", evil), web_root, "ExpectOrigin", origins, False) == 403
    assert status_of(admit, head("/websockify", UPGRADE), web_root, "ExpectOrigin", origins, False) == 403
    assert status_of(admit, head("/vnc.html"), web_root, "ExpectOrigin", origins, True) == 403  # --web-auth
    assert admit(head("/vnc.html"), web_root, None, "", True).kind == ROUTE_FILE


def test_expect_origin():
    authorize(head("/", [("Origin", "https://b.example")]), "ExpectOrigin", "https://a.example https://b.example")
    assert status_of(authorize, head("/", [("Origin", "https://evil.example")]), "ExpectOrigin", "https://a.example") == 403
    assert status_of(authorize, head("/"), "ExpectOrigin", "https://a.example") == 403
    authorize(head("/"), None, "")   # no plugin: everyone


def test_requested_token():
    assert requested_token(head("/websockify?token=vm1"), False) == "vm1"
    assert requested_token(head("/websockify?token=a%20b&token=c"), False) == "a b"
    assert requested_token(head("/websockify", [("Cookie", "x=1; token=vm%2F2")]), False) == "vm/2"
    assert requested_token(head("/websockify?token=q", [("Cookie", "token=c")]), False) == "q"
    assert requested_token(head("/websockify"), False) is None
    assert requested_token(head("/", [("Host", "ignored")]), True) == "example"   # the first Host header


class Tokens:
    def __init__(self, entries):
        self.entries = entries

    def lookup(self, token):
        return self.entries.get(token)


def test_resolve_target():
    vm = Target("10.0.0.5", 5901)
    tokens = Tokens({"vm1": TokenEntry(vm, "tokens.conf:3")})
    fixed = Target("127.0.0.1", 5900)
    assert resolve_target(head("/websockify?token=anything"), fixed, tokens) == (fixed, "")
    target, label = resolve_target(head("/websockify?token=vm1"), None, tokens)
    assert target == vm and label.endswith("(tokens.conf:3)") and "vm1" not in label
    assert status_of(resolve_target, head("/websockify"), None, tokens) == 404
    error = pytest.raises(HttpError, resolve_target, head("/websockify?token=nosuchtoken"), None, tokens).value
    assert error.status == 404 and error.reason == "unknown token 'nosuchtoken'"
    assert error.log_reason == "unknown token 'nos...'"


def test_endpoint_reply_repeats_the_last_failure_or_names_the_endpoint():
    vm = Target("10.0.0.5", 5901)
    assert endpoint_reply(vm, "target 10.0.0.5:5901 unreachable: connection refused") == (
        502, "target 10.0.0.5:5901 unreachable: connection refused", [])
    status, text, headers = endpoint_reply(vm, None)
    assert status == 426 and "WebSocket endpoint for 10.0.0.5:5901" in text
    assert ("Upgrade", "websocket") in headers and ("Sec-WebSocket-Version", "13") in headers


def test_recent_failures_are_kept_a_while_and_bounded():
    failures = wsproxy.RecentFailures()
    failures.remember("a:1", "refused", now=100.0)
    assert failures.recall("a:1", 100.0 + failures.KEEP_FOR) == "refused"
    assert failures.recall("a:1", 100.0 + failures.KEEP_FOR + 1) is None
    failures.forget("a:1")
    assert failures.recall("a:1", 100.0) is None
    for n in range(failures.MAX_ENTRIES + 10):
        failures.remember("t:%d" % n, "r%d" % n, now=200.0)
    assert failures.recall("t:0", 200.0) is None                       # the oldest went
    assert failures.recall("t:%d" % (failures.MAX_ENTRIES + 9), 200.0) == "r%d" % (failures.MAX_ENTRIES + 9)
