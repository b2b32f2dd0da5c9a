"""Every bad input of issue 6 item 3, end to end through one running proxy.

One proxy subprocess serves the whole module (token mode, a web root, TLS
and plain on one port).  Each case sends its bad input over a raw socket and
checks three things:

  1. a clear answer: an HTTP status with a reason in the body, or a
     WebSocket close code with a reason (a TLS handshake that is not one
     can only be answered by closing);
  2. a log line for it (found in the proxy's stderr after the case began);
  3. the server keeps serving: a healthy WebSocket echoes and a static file
     is served right afterwards.

The slowloris client (10 s head timeout) runs beside the other cases and is
checked last, so the module stays well under 30 s.  The few cases that need
another command line (--ssl-only, a token file deleted while running) start
their own proxy.
"""

import os
import random
import socket
import ssl
import struct
import threading
import time

import pytest

from conftest import (get_request, http_exchange, raw_websocket, read_close_code, read_response,
                      read_ws_frame, recv_until_eof, upgrade_headers, ws_frame)

SECRET = b"TOPSECRET-7f3c2a"   # in a file beside the web root: must never be served
GOOD_TOKEN = "good"            # routes to the echo target
REC_TOKEN = "rec"              # routes to the recording target


# ---------------------------------------------------------------------------
# peers: a recording echo target and a canary that must never be reached
# ---------------------------------------------------------------------------


class RecordingEcho:
    """TCP echo on loopback that keeps every byte each connection sent it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.received = []     # one bytearray per connection, in accept order
        self.finished = []     # one Event per connection: set at the target's EOF
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="rec-accept", daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                buf, done = bytearray(), threading.Event()
                self.received.append(buf)
                self.finished.append(done)
            threading.Thread(target=self._serve, args=(conn, buf, done), daemon=True).start()

    @staticmethod
    def _serve(conn, buf, done):
        with conn:
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    buf += data
                    conn.sendall(data)
            except OSError:
                pass
            finally:
                done.set()

    def close(self):
        self.sock.close()


class Canary:
    """A listening socket whose accept count must stay 0."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepts = 0
        threading.Thread(target=self._accept, name="canary", daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepts += 1
            conn.close()

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------
# module fixtures: the tree, the targets, the one proxy
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """base/secret.txt beside base/web/, and symlinks in web/ that lead out."""
    base = tmp_path_factory.mktemp("bad")
    (base / "secret.txt").write_bytes(SECRET)
    web = base / "web"
    web.mkdir()
    (web / "vnc.html").write_text("<!doctype html><title>vnc</title>\n")
    (web / "sub").mkdir()
    (web / "sub" / "index.html").write_text("<p>sub</p>\n")
    os.symlink(str(base / "secret.txt"), str(web / "leak.txt"))
    os.symlink(str(base), str(web / "leakdir"))
    os.symlink("../secret.txt", str(web / "relleak.txt"))
    return base


@pytest.fixture(scope="module")
def recorder():
    target = RecordingEcho()
    yield target
    target.close()


@pytest.fixture(scope="module")
def canary():
    target = Canary()
    yield target
    target.close()


@pytest.fixture(scope="module")
def proxy(module_start_proxy, module_echo_server, recorder, tree, cert):
    tokens = tree / "tokens.conf"
    tokens.write_text(
        "%s: 127.0.0.1:%d\n" % (GOOD_TOKEN, module_echo_server.port)
        + "this line has no separator\n"                  # line 2: bad
        + "badport: 127.0.0.1:99999\n"                    # line 3: bad
        + "%s: 127.0.0.1:%d\n" % (REC_TOKEN, recorder.port))
    proc = module_start_proxy("--web", str(tree / "web"), "--token-source", str(tokens),
                              "--cert", cert[0], "--key", cert[1])
    proc.tokens = tokens
    return proc


def client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the self-signed test certificate
    return context


# ---------------------------------------------------------------------------
# the three checks
# ---------------------------------------------------------------------------


def wait_log(proc, offset: int, *fragments, timeout: float = 5.0) -> str:
    """The first log line written after ``offset`` that holds every fragment."""
    found = []

    def has_line(text):
        for line in text[offset:].splitlines():
            if all(f in line for f in fragments):
                found.append(line)
                return True
        return False

    text = proc.wait_stderr(has_line, timeout)
    assert found, "no log line with %r after offset %d:\n%s" % (fragments, offset, text[offset:])
    return found[0]


def assert_healthy(proc, tls: bool = False) -> None:
    """A fresh WebSocket echoes and a static file is served: the server kept serving."""
    if tls:
        raw = socket.create_connection(("127.0.0.1", proc.port), timeout=5)
        sock = client_context().wrap_socket(raw)
        sock.sendall(get_request("/websockify?token=" + GOOD_TOKEN, upgrade_headers()))
        buf = bytearray()
        assert read_response(sock, buffer=buf).status == 101
    else:
        sock, buf = raw_websocket(proc.port, "/websockify?token=" + GOOD_TOKEN)
    with sock:
        payload = os.urandom(64)
        sock.sendall(ws_frame(0x2, payload))
        echoed = b""
        while len(echoed) < len(payload):
            _, opcode, data = read_ws_frame(sock, buf)
            assert opcode == 0x2
            echoed += data
        assert echoed == payload
        sock.sendall(ws_frame(0x8, struct.pack("!H", 1000)))
        assert read_close_code(sock, buf)[0] == 1000
    if not tls:
        response = http_exchange(proc.port, get_request("/vnc.html"))
        assert response.status == 200 and b"<title>vnc</title>" in response.body


# ---------------------------------------------------------------------------
# slowloris: started with the proxy, checked by the last test
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_clients(proxy):
    """One client trickles a head that never ends; one sends nothing at all."""
    result = {"offset": len(proxy.stderr)}

    def trickle():
        start = time.monotonic()
        received = b""
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=20) as sock:
            request = get_request("/vnc.html", [("X-Pad", "a" * 200)])[:-4]
            sock.settimeout(0.25)
            for byte in request:   # one byte every 0.25 s: never the blank line
                try:
                    sock.send(bytes([byte]))
                    chunk = sock.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    break
                received += chunk
                if not chunk or time.monotonic() - start > 15:
                    break
            sock.settimeout(3)
            try:
                received += recv_until_eof(sock)
            except OSError:
                pass
        result["trickle"] = (received, time.monotonic() - start)

    def silent():
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=20) as sock:
            try:
                data = recv_until_eof(sock)
            except OSError:
                data = b""
        result["silent"] = (data, time.monotonic() - start)

    threads = [threading.Thread(target=f, name=f.__name__, daemon=True) for f in (trickle, silent)]
    for thread in threads:
        thread.start()
    yield threads, result
    for thread in threads:
        thread.join(20)


def test_slow_clients_started(slow_clients):
    threads, _ = slow_clients
    assert all(t.is_alive() for t in threads)


# ---------------------------------------------------------------------------
# the table: HTTP request heads, handshakes, paths and tokens
# ---------------------------------------------------------------------------


def _req(path, headers=(), method="GET", version="1.1"):
    return get_request(path, headers, method, version)


def _upgrade(path="/websockify?token=" + GOOD_TOKEN, drop=(), extra=(), version="1.1", method="GET"):
    headers = [h for h in upgrade_headers() if h[0] not in drop] + list(extra)
    return get_request(path, headers, method, version)


def _ws(path):
    return "/websockify?token=" + path


# (id, raw request, status, fragment of the body = of the log reason)
HTTP_CASES = [
    # request heads
    ("oversized head", b"GET /vnc.html HTTP/1.1\r\nX-Big: " + b"a" * 20000, 431, "larger than 16384 bytes"),
    ("oversized complete head", _req("/vnc.html", [("X-Big", "a" * 17000)]), 431, "larger than 16384 bytes"),
    ("too many headers", _req("/vnc.html", [("X-H%d" % i, "v") for i in range(101)]), 431,
     "more than 100 header fields"),
    ("garbage before the head", b"\x00\x01\x02garbage\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400,
     "malformed request line"),
    ("binary garbage head", bytes(range(1, 256)).replace(b"\r", b"").replace(b"\n", b"") + b"\r\n\r\n", 400,
     "malformed request line"),
    ("bare LF in a header name", b"GET / HTTP/1.1\r\nHost\n: x\r\n\r\n", 400, "malformed header line"),
    ("obsolete line folding", b"GET / HTTP/1.1\r\nHost: x\r\n  folded\r\n\r\n", 400, "line folding"),
    ("NUL in a header value", b"GET / HTTP/1.1\r\nHost: x\x00y\r\n\r\n", 400, "NUL byte in header value"),
    ("HTTP/2.0 request line", _req("/vnc.html", version="2.0"), 505, "only HTTP/1.x"),
    ("HTTP/1.0 upgrade", _upgrade(version="1.0"), 400, "requires HTTP/1.1"),
    # the upgrade headers: missing, repeated, wrong
    ("missing Connection: upgrade", _upgrade(drop=("Connection",)), 400, "missing 'Connection: upgrade'"),
    ("missing Upgrade: websocket", _upgrade(drop=("Upgrade",)), 426, "this is a WebSocket endpoint"),
    ("missing Sec-WebSocket-Key", _upgrade(drop=("Sec-WebSocket-Key",)), 400,
     "expected exactly one Sec-WebSocket-Key"),
    ("repeated Sec-WebSocket-Key", _upgrade(extra=[("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==")]), 400,
     "expected exactly one Sec-WebSocket-Key"),
    ("missing Sec-WebSocket-Version", _upgrade(drop=("Sec-WebSocket-Version",)), 426,
     "this server speaks version 13"),
    ("repeated Sec-WebSocket-Version", _upgrade(extra=[("Sec-WebSocket-Version", "13")]), 426,
     "this server speaks version 13"),
    ("wrong version 8", _upgrade(drop=("Sec-WebSocket-Version",), extra=[("Sec-WebSocket-Version", "8")]), 426,
     "this server speaks version 13"),
    ("key not base64", _upgrade(drop=("Sec-WebSocket-Key",), extra=[("Sec-WebSocket-Key", "not-base64!!")]),
     400, "invalid Sec-WebSocket-Key"),
    ("key of 5 bytes", _upgrade(drop=("Sec-WebSocket-Key",), extra=[("Sec-WebSocket-Key", "c2hvcnQ=")]),
     400, "invalid Sec-WebSocket-Key"),
    ("upgrade by POST", _upgrade(method="POST"), 405, "must use GET"),
    ("base64 subprotocol only", _upgrade(extra=[("Sec-WebSocket-Protocol", "base64")]), 400,
     "base64 subprotocol is not supported"),
    # path traversal in every encoding, symlinks out, //host
    ("traversal plain", _req("/../secret.txt"), 404, "not found"),
    ("traversal deep", _req("/sub/../../secret.txt"), 404, "not found"),
    ("traversal %2e%2e", _req("/%2e%2e/secret.txt"), 404, "not found"),
    ("traversal %2E%2e mixed case", _req("/%2E%2e/secret.txt"), 404, "not found"),
    ("traversal .%2e", _req("/.%2e/secret.txt"), 404, "not found"),
    ("traversal %2e%2e%2f encoded slash", _req("/%2e%2e%2fsecret.txt"), 404, "not found"),
    ("traversal ..%2f", _req("/sub/..%2f..%2fsecret.txt"), 404, "not found"),
    ("traversal %252e double encoding", _req("/%252e%252e/secret.txt"), 404, "not found"),
    ("traversal %252e%252e%252f", _req("/%252e%252e%252fsecret.txt"), 404, "not found"),
    ("traversal backslash", _req("/..\\secret.txt"), 400, "invalid character in path"),
    ("traversal %5c", _req("/..%5csecret.txt"), 400, "invalid character in path"),
    ("traversal %5C upper", _req("/sub%5C..%5C..%5Csecret.txt"), 400, "invalid character in path"),
    ("traversal overlong %c0%ae", _req("/%c0%ae%c0%ae/secret.txt"), 400, "path is not valid UTF-8"),
    ("traversal overlong %c0%af slash", _req("/..%c0%afsecret.txt"), 400, "path is not valid UTF-8"),
    ("traversal %e0%80%ae 3-byte overlong", _req("/%e0%80%ae%e0%80%ae/secret.txt"), 400,
     "path is not valid UTF-8"),
    ("NUL %00", _req("/vnc.html%00.txt"), 400, "invalid character in path"),
    ("raw NUL byte", b"GET /vnc.html\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid character in path"),
    ("dot segment", _req("/./secret.txt"), 404, "not found"),
    ("dot-file", _req("/.tokens.conf"), 404, "not found"),
    ("absolute-form traversal", _req("http://localhost/../secret.txt"), 400, "path must start with /"),
    ("symlink escape (absolute link)", _req("/leak.txt"), 404, "not found"),
    ("symlink escape (relative link)", _req("/relleak.txt"), 404, "not found"),
    ("symlink escape (directory link)", _req("/leakdir/secret.txt"), 404, "not found"),
    ("symlink escape (directory itself)", _req("/leakdir/"), 404, "not found"),
    ("//host path", _req("//evil.example/"), 404, "not found"),
    ("//host path with file", _req("//evil.example/vnc.html"), 404, "not found"),
    ("///host path", _req("///evil.example/x"), 404, "not found"),
    ("/\\host path", _req("/\\evil.example/"), 400, "invalid character in path"),
    # tokens
    ("missing token", _upgrade(path="/websockify"), 404, "missing token"),
    ("unknown token", _upgrade(path=_ws("nosuchtoken")), 404, "unknown token 'nos...'"),
    ("unknown token in a cookie", _upgrade(path="/websockify", extra=[("Cookie", "token=nosuchtoken")]), 404,
     "unknown token 'nos...'"),
    ("token with ..", _upgrade(path=_ws("../../etc/passwd")), 404, "unknown token '../...'"),
    ("token %2e%2e%2f", _upgrade(path=_ws("%2e%2e%2ftokens.conf")), 404, "unknown token '../...'"),
    ("token naming a token file line", _upgrade(path=_ws("tokens.conf:1")), 404, "unknown token 'tok...'"),
    ("token of a bad line", _upgrade(path=_ws("badport")), 404, "unknown token 'bad...'"),
    ("token not UTF-8", _upgrade(path=_ws("%ff%fe")), 404, "missing token"),
    ("plain GET with unknown token", _req(_ws("nosuchtoken")), 404, "unknown token 'nos...'"),
]


@pytest.mark.parametrize("raw, status, reason", [pytest.param(*c[1:], id=c[0]) for c in HTTP_CASES])
def test_bad_request(proxy, raw, status, reason):
    offset = len(proxy.stderr)
    response = http_exchange(proxy.port, raw)
    assert response.status == status, response
    # The log shortens tokens ('nos...'); the reply names what its sender typed.
    assert reason.split("...")[0].encode() in response.body, response
    assert not 300 <= response.status < 400 and response.header("location") is None, "never a redirect"
    assert SECRET not in response.body
    line = wait_log(proxy, offset, " %d " % status, reason)
    assert "nosuchtoken" not in line and "passwd" not in line, "tokens are redacted in the log: " + line
    assert_healthy(proxy)


def test_an_unknown_token_is_named_to_its_sender_and_shortened_in_the_log(proxy):
    offset = len(proxy.stderr)
    response = http_exchange(proxy.port, _req(_ws("nosuchtoken")))
    assert response.status == 404 and b"unknown token 'nosuchtoken'" in response.body
    long = "x" * 200
    response = http_exchange(proxy.port, _req(_ws(long)))
    assert b"unknown token '" + b"x" * 64 + b"...'" in response.body
    line = wait_log(proxy, offset, "404 unknown token 'nos...'")
    assert "nosuchtoken" not in proxy.stderr[offset:], line


def test_host_port_token_reaches_nothing(proxy, canary):
    """?token=127.0.0.1:PORT is a token name like any other, never an address."""
    offset = len(proxy.stderr)
    for name in ("127.0.0.1:%d" % canary.port, "localhost:%d" % canary.port, "[::1]:%d" % canary.port):
        response = http_exchange(proxy.port, _upgrade(path=_ws(name)))
        assert response.status == 404 and b"unknown token" in response.body
        response = http_exchange(proxy.port, _req(_ws(name)))   # the plain-GET probe
        assert response.status == 404 and b"unknown token" in response.body
    wait_log(proxy, offset, "404 unknown token '127...'")
    assert_healthy(proxy)
    time.sleep(0.1)
    assert canary.accepts == 0, "a host:port token must never connect anywhere"


# ---------------------------------------------------------------------------
# the table: WebSocket frames after a good handshake
# ---------------------------------------------------------------------------


def _header_with_length(length: int, opcode: int = 0x2) -> bytes:
    return bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big") + os.urandom(4)


def _close(code: int, reason: bytes = b"") -> bytes:
    return ws_frame(0x8, struct.pack("!H", code) + reason)


FRAME_CASES = [
    ("unmasked client frame", ws_frame(0x2, b"not masked", mask=False), 1002, "client frame is not masked"),
    ("unmasked close", ws_frame(0x8, struct.pack("!H", 1000), mask=False), 1002, "client frame is not masked"),
    ("RSV1 set", ws_frame(0x2, b"x", rsv=4), 1002, "reserved bits set"),
    ("RSV2 set", ws_frame(0x2, b"x", rsv=2), 1002, "reserved bits set"),
    ("RSV3 set", ws_frame(0x2, b"x", rsv=1), 1002, "reserved bits set"),
    ("unknown data opcode 0x3", ws_frame(0x3, b"x"), 1002, "unknown opcode 0x3"),
    ("unknown control opcode 0xB", ws_frame(0xB, b"x"), 1002, "unknown opcode 0xb"),
    ("fragmented ping", ws_frame(0x9, b"x", fin=False), 1002, "fragmented control frame"),
    ("fragmented close", ws_frame(0x8, struct.pack("!H", 1000), fin=False), 1002, "fragmented control frame"),
    ("ping over 125 bytes", ws_frame(0x9, b"p" * 126), 1002, "control frame longer than 125 bytes"),
    ("continuation with no message", ws_frame(0x0, b"x"), 1002, "continuation frame without a message"),
    # The first fragment was valid binary and is streamed on; the bad frame is not.
    ("new message inside a fragmented one", ws_frame(0x2, b"a", fin=False) + ws_frame(0x2, b"b"), 1002,
     "new data frame inside a fragmented message", b"a"),
    ("2^63-byte declared length", _header_with_length(1 << 63), 1002, "most significant bit set"),
    ("2^64-1-byte declared length", _header_with_length((1 << 64) - 1), 1002, "most significant bit set"),
    ("2^63-1-byte declared length", _header_with_length((1 << 63) - 1), 1009, "message larger than"),
    ("17 MiB declared length", _header_with_length(17 << 20), 1009, "message larger than"),
    ("invalid UTF-8 text", ws_frame(0x1, b"ok \xff\xfe bad"), 1007, "text message is not valid UTF-8"),
    ("overlong UTF-8 text", ws_frame(0x1, b"\xc0\xae"), 1007, "text message is not valid UTF-8"),
    ("UTF-16 surrogate in text", ws_frame(0x1, b"\xed\xa0\x80"), 1007, "text message is not valid UTF-8"),
    ("text cut inside a code point", ws_frame(0x1, b"\xe2\x82", fin=False) + ws_frame(0x0, b""), 1007,
     "text message is not valid UTF-8"),
    ("close code 0", _close(0), 1002, "invalid close code 0"),
    ("close code 999", _close(999), 1002, "invalid close code 999"),
    ("close code 1004", _close(1004), 1002, "invalid close code 1004"),
    ("close code 1005", _close(1005), 1002, "invalid close code 1005"),
    ("close code 1006", _close(1006), 1002, "invalid close code 1006"),
    ("close code 1015", _close(1015), 1002, "invalid close code 1015"),
    ("close code 2999", _close(2999), 1002, "invalid close code 2999"),
    ("close code 5000", _close(5000), 1002, "invalid close code 5000"),
    ("close code 65535", _close(65535), 1002, "invalid close code 65535"),
    ("close with a 1-byte payload", ws_frame(0x8, b"\x03"), 1002, "close frame with a 1-byte payload"),
    ("close reason not UTF-8", _close(1000, b"bye \xff"), 1007, "close reason is not valid UTF-8"),
]


@pytest.mark.parametrize("frames, code, reason, delivered",
                         [pytest.param(*(c[1:] + (b"",) * (5 - len(c))), id=c[0]) for c in FRAME_CASES])
def test_bad_frame(proxy, recorder, frames, code, reason, delivered):
    offset = len(proxy.stderr)
    sock, buf = raw_websocket(proxy.port, _ws(REC_TOKEN))
    with sock:
        sock.sendall(ws_frame(0x2, b"before"))
        _, opcode, echoed = read_ws_frame(sock, buf)
        assert (opcode, echoed) == (0x2, b"before")
        sock.sendall(frames)
        got_code, got_reason = read_close_code(sock, buf)
        assert (got_code, got_reason) == (code, reason) or (got_code == code and reason in got_reason), \
            (got_code, got_reason)
        assert recv_until_eof(sock) == b"", "the proxy closes the TCP connection after its Close"
    line = wait_log(proxy, offset, "closed code=%d" % code, reason)
    assert "client protocol error" in line
    assert recorder.finished[-1].wait(5), "the target connection is closed, too"
    assert bytes(recorder.received[-1]) == b"before" + delivered, "nothing of the bad frame reaches the target"
    assert_healthy(proxy)


def test_frames_after_close_are_ignored(proxy, recorder):
    offset = len(proxy.stderr)
    sock, buf = raw_websocket(proxy.port, _ws(REC_TOKEN))
    with sock:
        # In one write, then again after the Close reply: neither the data
        # nor the garbage after the Close may reach the target or change the code.
        sock.sendall(ws_frame(0x2, b"before") + _close(1000, b"done") + ws_frame(0x2, b"after")
                     + ws_frame(0x2, b"unmasked", mask=False))
        code, reason = read_close_code(sock, buf)
        assert code == 1000
        try:
            sock.sendall(ws_frame(0x2, b"later") + b"\xff\xff garbage")
        except OSError:
            pass   # already closed: fine
        recv_until_eof(sock)
    line = wait_log(proxy, offset, "closed code=1000", "client closed: done")
    assert "up=6B" in line, line
    assert recorder.finished[-1].wait(5)
    assert bytes(recorder.received[-1]) == b"before"
    assert_healthy(proxy)


# ---------------------------------------------------------------------------
# TLS garbage, plain HTTP to --ssl-only
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [
    pytest.param(b"\x16" + random.Random(7).randbytes(300), id="random after 0x16"),
    pytest.param(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", id="truncated ClientHello"),
    pytest.param(b"\x16\x03\x01\xff\xff" + b"\x00" * 64, id="record length over the limit"),
    pytest.param(b"\x16\x03\x00\x00\x02\x02\x28", id="SSLv3 alert"),
])
def test_tls_garbage(proxy, garbage):
    offset = len(proxy.stderr)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=12) as sock:
        sock.sendall(garbage)
        try:
            sock.shutdown(socket.SHUT_WR)   # so a handshake waiting for more bytes ends now
        except OSError:
            pass
        data = recv_until_eof(sock)
    # The answer to a broken handshake is a close (at most a TLS alert record), never HTTP.
    assert data == b"" or data[:1] == b"\x15", data[:40]
    wait_log(proxy, offset, "TLS handshake failed")
    assert_healthy(proxy, tls=True)
    assert_healthy(proxy)


def test_plain_http_to_ssl_only(start_proxy, echo_server, cert, tmp_path):
    tokens = tmp_path / "tokens.conf"
    tokens.write_text("%s: 127.0.0.1:%d\n" % (GOOD_TOKEN, echo_server.port))
    proc = start_proxy("--ssl-only", "--cert", cert[0], "--key", cert[1], "--no-web", "--token-source", str(tokens))
    for raw in (_upgrade(), _req("/vnc.html"), b"garbage\r\n\r\n"):
        offset = len(proc.stderr)
        response = http_exchange(proc.port, raw)
        assert response.status == 400 and b"accepts only TLS" in response.body
        wait_log(proc, offset, "plain connection refused", "--ssl-only")
    assert_healthy(proc, tls=True)


# ---------------------------------------------------------------------------
# the token file: bad lines, edits, deleted while running
# ---------------------------------------------------------------------------


def test_token_file_bad_lines_are_logged_and_the_rest_works(proxy):
    log = proxy.stderr
    path = str(proxy.tokens)
    assert "token file %s:2: expected 'token: host:port'" % path in log
    assert "token file %s:3: target '127.0.0.1:99999': port must be a number" % path in log
    assert_healthy(proxy)   # line 1 still works
    sock, buf = raw_websocket(proxy.port, _ws(REC_TOKEN))   # and line 4, after the bad ones
    sock.close()


def test_token_file_gains_a_bad_line_while_running(proxy):
    offset = len(proxy.stderr)
    text = proxy.tokens.read_text()
    try:
        proxy.tokens.write_text(text + "spaced token: 127.0.0.1:1\n\n: 127.0.0.1:1\n")
        response = http_exchange(proxy.port, _upgrade(path=_ws("spaced%20token")))
        assert response.status == 404 and b"unknown token" in response.body
        wait_log(proxy, offset, "token file %s:5: token contains whitespace" % proxy.tokens)
        wait_log(proxy, offset, "token file %s:7: expected 'token: host:port'" % proxy.tokens)
        wait_log(proxy, offset, "reloaded: 2 tokens")
        assert_healthy(proxy)
    finally:
        proxy.tokens.write_text(text)


def test_token_file_deleted_while_running(start_proxy, echo_server, tmp_path):
    tokens = tmp_path / "tokens.conf"
    text = "%s: 127.0.0.1:%d\n" % (GOOD_TOKEN, echo_server.port)
    tokens.write_text(text)
    web = tmp_path / "web"
    web.mkdir()
    (web / "vnc.html").write_text("<!doctype html><title>vnc</title>\n")
    proc = start_proxy("--web", str(web), "--token-source", str(tokens))
    assert_healthy(proc)
    offset = len(proc.stderr)
    tokens.unlink()
    for raw in (_upgrade(), _req(_ws(GOOD_TOKEN))):
        response = http_exchange(proc.port, raw)
        assert response.status == 404 and (b"unknown token '%s'" % GOOD_TOKEN.encode()) in response.body, response
    wait_log(proc, offset, "token source %s is missing" % tokens)
    wait_log(proc, offset, "404 unknown token 'goo...'")
    response = http_exchange(proc.port, _req("/vnc.html"))
    assert response.status == 200, "static files are still served"
    offset = len(proc.stderr)
    tokens.write_text(text)
    assert_healthy(proc)   # the token is back as soon as the file is
    wait_log(proc, offset, "reloaded: 1 token")


# ---------------------------------------------------------------------------
# last: the slow clients started with the proxy
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_slowloris_gets_408_and_a_silent_client_is_dropped(proxy, slow_clients):
    threads, result = slow_clients
    for thread in threads:
        thread.join(20)
    assert not any(t.is_alive() for t in threads)
    received, elapsed = result["trickle"]
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert b"request head not received within 10s" in received
    assert elapsed <= 13, "closed after %.1fs" % elapsed
    data, elapsed = result["silent"]
    assert data == b"" and elapsed <= 13, (data, elapsed)
    wait_log(proxy, result["offset"], "408 request head not received within 10s")
    wait_log(proxy, result["offset"], "nothing received within 10s")
    assert_healthy(proxy)


# ---------------------------------------------------------------------------
# --ssl-target: the hop to the target is TLS 1.2 or newer, too
# ---------------------------------------------------------------------------


class TLSEchoTarget:
    """A TLS echo server on loopback, limited to TLS versions up to ``maximum``."""

    def __init__(self, cert, maximum):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert[0], cert[1])
        with __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore", DeprecationWarning)   # old versions on purpose
            self.context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            self.context.maximum_version = maximum
        try:
            self.context.set_ciphers("DEFAULT:@SECLEVEL=0")   # let the local OpenSSL offer TLS 1.1
        except ssl.SSLError:
            pass
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(5)
            with self.context.wrap_socket(conn, server_side=True) as tls:
                self.handshakes += 1
                while True:
                    data = tls.recv(65536)
                    if not data:
                        break
                    tls.sendall(data)
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("maximum, status", [(ssl.TLSVersion.TLSv1_1, 502), (ssl.TLSVersion.TLSv1_2, 101)])
def test_ssl_target_needs_tls_1_2(start_proxy, cert, maximum, status):
    target = TLSEchoTarget(cert, maximum)
    try:
        proc = start_proxy("--no-web", "--ssl-target", "127.0.0.1:%d" % target.port)
        offset = len(proc.stderr)
        response = http_exchange(proc.port, _upgrade(path="/websockify"), head_only=status == 101)
        assert response.status == status, response
        if status == 502:
            assert b"TLS failed" in response.body
            wait_log(proc, offset, " 502 ", "TLS failed")
            assert target.handshakes == 0
        else:
            wait_log(proc, offset, " open -> 127.0.0.1:%d" % target.port)
    finally:
        target.close()
