"""Never an open proxy (issue 6 item 6): no request reaches a target that the
command line or the token file did not name.

Canary listeners (TCP on 127.0.0.1, on ::1 at the same port where the host
has IPv6, and a Unix socket) count their accepts.  Against a token-mode
proxy, a --host-token proxy and a fixed-target proxy, every way a request
might name a target is tried -- each both as a WebSocket upgrade and as a
plain GET (the plain GET on a WebSocket path probes the target, so it
connects too).  The canaries' accept counts must stay 0.  A positive control
proves the method: a canary that *is* named in the token file counts the
one connection its token makes.
"""

import socket
import threading
import time
import urllib.parse

import pytest

from conftest import get_request, read_response, upgrade_headers


class Canary:
    """Listening sockets whose accepts are counted (and closed at once)."""

    def __init__(self, unix_path: str = ""):
        self.socks = []
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.socks.append(sock)
        self.ipv6 = False
        if socket.has_ipv6:
            six = socket.socket(socket.AF_INET6)
            try:
                six.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                six.bind(("::1", self.port))
                self.socks.append(six)
                self.ipv6 = True
            except OSError:
                six.close()
        self.unix_path = unix_path
        if unix_path:
            unix = socket.socket(socket.AF_UNIX)
            unix.bind(unix_path)
            self.socks.append(unix)
        self.accepts = 0
        self._lock = threading.Lock()
        for sock in self.socks:
            sock.listen(64)
            threading.Thread(target=self._accept, args=(sock,), name="canary", daemon=True).start()

    def _accept(self, sock):
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepts += 1
            conn.close()

    def names(self):
        """Every spelling of this canary's address a request might use."""
        port = self.port
        out = ["127.0.0.1:%d" % port, "localhost:%d" % port, "127.1:%d" % port, "2130706433:%d" % port,
               "0x7f000001:%d" % port, "0177.0.0.1:%d" % port, "[::ffff:127.0.0.1]:%d" % port,
               "[::1]:%d" % port, "::1:%d" % port, "127.0.0.1:%d/" % port]
        if self.unix_path:
            out += ["unix_socket:" + self.unix_path, "unix:" + self.unix_path]
        return out

    def close(self):
        for sock in self.socks:
            sock.close()


@pytest.fixture(scope="module")
def canaries(tmp_path_factory):
    where = tmp_path_factory.mktemp("canary")
    never = Canary(str(where / "never.sock"))
    named = Canary(str(where / "named.sock"))
    yield never, named
    never.close()
    named.close()


@pytest.fixture(scope="module")
def proxies(module_start_proxy, module_echo_server, canaries, tmp_path_factory):
    never, named = canaries
    where = tmp_path_factory.mktemp("tokens")
    tokens = where / "tokens.conf"
    tokens.write_text("good: 127.0.0.1:%d\nnamed: 127.0.0.1:%d\n" % (module_echo_server.port, named.port))
    web = where / "web"
    web.mkdir()
    (web / "vnc.html").write_text("<!doctype html>\n")
    echo = "127.0.0.1:%d" % module_echo_server.port
    return {
        "token": module_start_proxy("--web", str(web), "--token-source", str(tokens)),
        "host-token": module_start_proxy("--web", str(web), "--token-source", str(tokens), "--host-token"),
        "fixed": module_start_proxy("--web", str(web), echo),
        "fixed-no-web": module_start_proxy("--no-web", echo),
    }


def attempts(canary):
    """(label, raw request) for every way a request might name ``canary``."""
    out = []
    port = str(canary.port)

    def add(label, target, headers=(), method="GET", host="localhost"):
        for kind, extra in (("upgrade", upgrade_headers()), ("plain", [])):
            lines = ["%s %s HTTP/1.1" % (method, target), "Host: " + host]
            lines += ["%s: %s" % pair for pair in list(extra) + list(headers)]
            out.append(("%s %s" % (label, kind), ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")))

    for name in canary.names():
        quoted = urllib.parse.quote(name, safe="")
        add("?token=%s" % name, "/websockify?token=" + name)
        add("?token=%s quoted" % name, "/websockify?token=" + quoted)
        add("?token=x&token=%s" % name, "/websockify?token=nope&token=" + quoted)
        add("path /%s" % name, "/" + name)
        add("path /websockify/%s" % name, "/websockify/" + name)
        add("path /websockify/%s?token=good" % name, "/websockify/" + name + "?token=good")
        add("Host %s" % name, "/websockify", host=name)
        add("Host %s ?token=good" % name, "/websockify?token=good", host=name)
        add("absolute-form %s" % name, "http://%s/websockify" % name)
        add("absolute-form %s ?token=good" % name, "http://%s/websockify?token=good" % name)
        add("absolute-form ws://%s" % name, "ws://%s/" % name)
        add("CONNECT %s" % name, name, method="CONNECT", host=name)
        add("CONNECT /%s" % name, "/" + name, method="CONNECT", host=name)
        add("cookie token=%s" % name, "/websockify", [("Cookie", "token=" + quoted)])
        for param in ("target", "host", "dest", "destination", "upstream", "url", "vnc", "server"):
            add("?%s=%s" % (param, name), "/websockify?%s=%s" % (param, quoted))
            add("?token=good&%s=%s" % (param, name), "/websockify?token=good&%s=%s" % (param, quoted))
    host, _, _ = canary.names()[0].partition(":")
    add("?host=&port=", "/websockify?host=%s&port=%s" % (host, port))
    add("?token=good&host=&port=", "/websockify?token=good&host=%s&port=%s" % (host, port))
    add("?target_host=&target_port=", "/websockify?target_host=%s&target_port=%s" % (host, port))
    add("websockify-style path", "/websockify?token=%s%%3A%s" % (host, port))
    for header in ("X-Forwarded-Host", "X-Forwarded-Server", "X-Host", "X-Original-Host", "Forwarded",
                   "X-Forwarded-For", "X-Real-IP", "Origin", "Referer", "Sec-WebSocket-Protocol",
                   "X-Target", "X-Proxy-Target", "Via"):
        value = canary.names()[0]
        if header == "Forwarded":
            value = 'host="%s";for=%s' % (value, host)
        elif header in ("Origin", "Referer"):
            value = "http://" + value
        add("%s header" % header, "/websockify", [(header, value)])
        add("%s header ?token=good" % header, "/websockify?token=good", [(header, value)])
    add("X-Forwarded-Port", "/websockify", [("X-Forwarded-Host", host), ("X-Forwarded-Port", port)])
    add("X-Original-URL", "/websockify", [("X-Original-URL", "/websockify?token=" + canary.names()[0])])
    add("X-Rewrite-URL", "/websockify", [("X-Rewrite-URL", "/websockify?token=" + canary.names()[0])])
    for token in ("../../etc/passwd", "..%2f..%2fetc%2fpasswd", "/etc/passwd", "../tokens.conf",
                  "tokens.conf", "%00", "good%00", "good\\..\\x", "*", "."):
        add("?token=%s" % token, "/websockify?token=" + token)
    return out


def send(port: int, raw: bytes):
    """Status of the answer (None if the proxy just closed); the socket is closed at once."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        try:
            return read_response(sock, head_only=True).status
        except (EOFError, ConnectionResetError):
            return None


@pytest.mark.parametrize("mode", ["token", "host-token", "fixed", "fixed-no-web"])
def test_no_request_reaches_a_target_nobody_named(proxies, canaries, mode):
    never, _ = canaries
    proxy = proxies[mode]
    results = []
    for label, raw in attempts(never):
        results.append((label, send(proxy.port, raw)))
        assert never.accepts == 0, "%s proxy: %r reached the canary" % (mode, label)
    time.sleep(0.2)   # any late connect would have happened by now
    assert never.accepts == 0, "%s proxy reached the canary" % mode
    assert proxy.proc.poll() is None, "the proxy is still running"
    if mode in ("token", "host-token"):
        # Only the real token gets a 101 (and goes to the echo target, not the canary).
        opened = [label for label, status in results if status == 101]
        assert all("token=good" in label for label in opened), opened
    # The proxy never suggests going elsewhere.
    assert not [r for r in results if r[1] is not None and 300 <= r[1] < 400], results
    # No connect was even tried: a failed one (say to a name that resolves
    # nowhere) would have answered 502 and logged "open -> " or "unreachable".
    assert not [r for r in results if r[1] == 502], results
    log = proxy.stderr
    assert ":%d" % never.port not in "".join(l for l in log.splitlines() if " open -> " in l)
    assert "unreachable" not in log


def test_a_named_target_is_reached_so_the_canary_would_notice(proxies, canaries):
    """Positive control: the method sees the one connection a real token makes."""
    _, named = canaries
    before = named.accepts
    raw = get_request("/websockify?token=named", upgrade_headers())
    assert send(proxies["token"].port, raw) == 101
    deadline = time.monotonic() + 5
    while named.accepts == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert named.accepts == before + 1
    # Through the Host header on the --host-token proxy, too.
    raw = ("GET /websockify HTTP/1.1\r\nHost: named:1\r\n%s\r\n\r\n"
           % "\r\n".join("%s: %s" % h for h in upgrade_headers())).encode()
    assert send(proxies["host-token"].port, raw) == 101
    deadline = time.monotonic() + 5
    while named.accepts == before + 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert named.accepts == before + 2


def test_fixed_target_proxy_goes_only_to_its_target(proxies, canaries, module_echo_server):
    """A fixed-target proxy ignores whatever the request names: it reaches the echo target."""
    never, _ = canaries
    before = module_echo_server.connections
    raw = get_request("/websockify?token=%s&target=%s" % (never.names()[0], never.names()[0]),
                      upgrade_headers() + [("X-Forwarded-Host", never.names()[0])])
    assert send(proxies["fixed"].port, raw) == 101
    deadline = time.monotonic() + 5
    while module_echo_server.connections == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert module_echo_server.connections == before + 1
    assert never.accepts == 0


@pytest.mark.parametrize("plugin, source, bad_headers, good_headers", [
    ("BasicHTTPAuth", "alice:s3cretpw", [[], [("Authorization", "Basic YWxpY2U6d3Jvbmc=")]],
     [("Authorization", "Basic YWxpY2U6czNjcmV0cHc=")]),
    ("ExpectOrigin", "http://good.example", [[("Origin", "http://evil.example")], [("Origin", "null")]],
     [("Origin", "http://good.example")]),
])
def test_auth_plugin_guards_every_way_to_the_target(start_proxy, tmp_path, plugin, source, bad_headers,
                                                     good_headers):
    """With an auth plugin, a request that fails it never reaches the target --
    not by an upgrade, and not by the plain GET that probes the target."""
    target = Canary()
    try:
        proxy = start_proxy("--no-web", "--auth-plugin", plugin, "--auth-source", source,
                            "127.0.0.1:%d" % target.port)
        for headers in bad_headers:
            for path in ("/websockify", "/websockify?token=x", "/"):
                assert send(proxy.port, get_request(path, upgrade_headers() + headers)) in (401, 403)
                assert send(proxy.port, get_request(path, headers)) in (401, 403, 404), (path, headers)
        time.sleep(0.2)
        assert target.accepts == 0, "a request that failed %s reached the target" % plugin
        assert send(proxy.port, get_request("/websockify", upgrade_headers() + good_headers)) == 101
        deadline = time.monotonic() + 5
        while target.accepts == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert target.accepts == 1
    finally:
        target.close()
