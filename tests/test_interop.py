"""The proxy subprocess with real peers: TLS clients, Unix sockets, IPv6
loopback, signals and process lifetime, and a real VNC server (TigerVNC
Xvnc) spoken to in RFB 3.8 through the proxy."""

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time
import warnings

import pytest
import websockets
from websockets.sync.client import connect, unix_connect

from conftest import free_port, get_request, http_exchange, read_response, recv_until_eof


def _echo(ws, payload=b"hello"):
    ws.send(payload)
    out = b""
    while len(out) < len(payload):
        out += ws.recv(timeout=5)
    return out


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------


def client_context(**kwargs) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # self-signed test certificate
    for name, value in kwargs.items():
        setattr(context, name, value)
    return context


@pytest.fixture(scope="module")
def tls_proxy(module_start_proxy, module_echo_server, cert, web_root):
    return module_start_proxy("--cert", cert[0], "--key", cert[1], "--web", str(web_root),
                              "127.0.0.1:%d" % module_echo_server.port)


def test_ws_and_wss_on_the_same_port(tls_proxy, web_root):
    with connect(tls_proxy.url(), max_size=None) as ws:
        assert _echo(ws, b"plain") == b"plain"
    with connect(tls_proxy.url(scheme="wss"), ssl=client_context(), max_size=None) as ws:
        payload = random.Random(5).randbytes(300_000)
        assert _echo(ws, payload) == payload
    # https static files on the same port, too.
    with client_context().wrap_socket(socket.create_connection(("127.0.0.1", tls_proxy.port), timeout=5)) as sock:
        sock.sendall(get_request("/vnc.html", [("Connection", "close")]))
        response = read_response(sock)
    assert response.status == 200 and response.body == (web_root / "vnc.html").read_bytes()
    assert "TLS: on, plain http/ws on the same port" in tls_proxy.stdout


def test_tls_below_1_2_is_refused(tls_proxy):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # old versions on purpose
        context = client_context(minimum_version=ssl.TLSVersion.TLSv1, maximum_version=ssl.TLSVersion.TLSv1_1)
    try:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the local OpenSSL at least try
    except ssl.SSLError:
        pass
    sock = socket.create_connection(("127.0.0.1", tls_proxy.port), timeout=5)
    with pytest.raises((ssl.SSLError, OSError)):
        try:
            context.wrap_socket(sock).close()
        finally:
            sock.close()
    # The server is fine afterwards.
    with connect(tls_proxy.url(scheme="wss"), ssl=client_context()) as ws:
        assert _echo(ws) == b"hello"


def test_garbage_after_tls_byte_closes_only_that_connection(tls_proxy):
    with socket.create_connection(("127.0.0.1", tls_proxy.port), timeout=5) as sock:
        sock.sendall(b"\x16" + random.Random(7).randbytes(300))
        assert recv_until_eof(sock) == b"", "no reply to a broken TLS handshake, just a close"
    assert "TLS handshake failed" in tls_proxy.wait_stderr(lambda t: "TLS handshake failed" in t)
    with connect(tls_proxy.url(scheme="wss"), ssl=client_context()) as ws:
        assert _echo(ws) == b"hello"
    with connect(tls_proxy.url()) as ws:
        assert _echo(ws) == b"hello"


def test_tls_handshake_without_cert_is_closed(start_proxy, echo_server):
    proxy = start_proxy("--no-web", "127.0.0.1:%d" % echo_server.port)
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    with pytest.raises((ssl.SSLError, OSError)):
        try:
            client_context().wrap_socket(sock).close()
        finally:
            sock.close()
    assert "no --cert" in proxy.wait_stderr(lambda t: "no --cert" in t)


def test_ssl_only_refuses_plain(start_proxy, echo_server, cert):
    proxy = start_proxy("--cert", cert[0], "--key", cert[1], "--ssl-only", "--no-web",
                        "127.0.0.1:%d" % echo_server.port)
    response = http_exchange(proxy.port, get_request("/websockify"))
    assert response.status == 400
    assert b"TLS" in response.body
    with pytest.raises((websockets.exceptions.InvalidStatus, websockets.exceptions.InvalidHandshake, OSError)):
        connect(proxy.url(), open_timeout=5)
    assert "plain connection refused" in proxy.wait_stderr(lambda t: "plain connection refused" in t)
    with connect(proxy.url(scheme="wss"), ssl=client_context()) as ws:
        assert _echo(ws) == b"hello"
    assert "TLS: required (--ssl-only)" in proxy.stdout


# ---------------------------------------------------------------------------
# Unix sockets and IPv6 loopback
# ---------------------------------------------------------------------------


def test_unix_target(start_proxy, unix_echo_server):
    proxy = start_proxy("--no-web", "--unix-target", unix_echo_server.path)
    with connect(proxy.url(), max_size=None) as ws:
        payload = os.urandom(100_000)
        assert _echo(ws, payload) == payload
    assert "unix:" + unix_echo_server.path in proxy.stdout


def test_unix_listen(start_proxy, echo_server, tmp_path):
    path = str(tmp_path / "wsproxy.sock")
    proxy = start_proxy("--no-web", "--unix-listen", path, "--vnc", "127.0.0.1:%d" % echo_server.port,
                        listen=False)
    assert path in proxy.stdout
    with unix_connect(path, "ws://localhost/websockify") as ws:
        assert _echo(ws, b"over unix") == b"over unix"
    proxy.stop()
    assert not os.path.exists(path), "the socket file is removed on exit"


def test_ipv6_loopback(start_proxy, echo_server):
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    proxy = start_proxy("--no-web", "127.0.0.1:%d" % echo_server.port, host="::1")
    with connect(proxy.url()) as ws:
        assert _echo(ws, b"v6") == b"v6"


# ---------------------------------------------------------------------------
# process: signals, --timeout, port in use, banner
# ---------------------------------------------------------------------------


def test_sigterm_closes_clients_with_1001_and_exits_0(start_proxy, echo_server):
    proxy = start_proxy("--no-web", "127.0.0.1:%d" % echo_server.port)
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(proxy.url())) for _ in range(3)]
        for ws in clients:
            assert _echo(ws) == b"hello"
        started = time.monotonic()
        proxy.signal(signal.SIGTERM)
        for ws in clients:
            with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
                while True:
                    ws.recv(timeout=5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    assert proxy.proc.wait(5) == 0
    assert time.monotonic() - started < 4
    # New connections are refused once it has gone.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()


def test_timeout_option_exits_by_itself(start_proxy, echo_server):
    started = time.monotonic()
    proxy = start_proxy("--no-web", "--timeout", "1.5", "127.0.0.1:%d" % echo_server.port)
    with connect(proxy.url()) as ws:
        assert _echo(ws) == b"hello"
    assert proxy.proc.wait(8) == 0
    assert 1.4 <= time.monotonic() - started < 8


def test_port_in_use_is_a_clear_error(start_proxy, echo_server):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        proxy = start_proxy("--listen", "127.0.0.1:%d" % port, "--no-web", "127.0.0.1:%d" % echo_server.port,
                            listen=False, wait_for=None)
        assert proxy.proc.wait(10) != 0
    err = proxy.stderr
    assert "in use" in err and "--listen" in err, err
    assert "Traceback" not in err


def test_banner_fixed_target(start_proxy, echo_server, web_root):
    proxy = start_proxy("--web", str(web_root), "127.0.0.1:%d" % echo_server.port)
    out = proxy.wait_stdout("Open ")
    assert "Open http://127.0.0.1:%d/vnc.html" % proxy.port in out
    assert "127.0.0.1:%d" % echo_server.port in out


def test_banner_one_url_per_token(start_proxy, echo_server, web_root, tmp_path):
    tokens = tmp_path / "tokens.conf"
    tokens.write_text("alpha: 127.0.0.1:%d\nbeta: 127.0.0.1:%d\n" % (echo_server.port, free_port()))
    proxy = start_proxy("--web", str(web_root), "--token-source", str(tokens))
    out = proxy.wait_stdout("token=beta")
    opens = [line for line in out.splitlines() if line.startswith("Open ")]
    assert len(opens) == 2, out
    base = "Open http://127.0.0.1:%d/vnc.html?path=websockify" % proxy.port
    assert any(line.startswith(base) and "token=alpha" in line for line in opens), opens
    assert any(line.startswith(base) and "token=beta" in line for line in opens), opens


# ---------------------------------------------------------------------------
# a real VNC server
# ---------------------------------------------------------------------------


@pytest.fixture
def xvnc(tmp_path):
    exe = shutil.which("Xvnc")
    if exe is None:
        pytest.skip("TigerVNC Xvnc not installed")
    rng = random.Random()
    for _ in range(5):
        display = rng.randint(100, 900)
        if os.path.exists("/tmp/.X%d-lock" % display) or os.path.exists("/tmp/.X11-unix/X%d" % display):
            continue
        port = free_port()
        log = open(str(tmp_path / "xvnc.log"), "wb")
        proc = subprocess.Popen([exe, ":%d" % display, "-SecurityTypes", "None", "-rfbport", str(port),
                                 "-localhost", "-nolisten", "tcp", "-geometry", "320x200", "-depth", "24"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                ready = True
                break
            except OSError:
                time.sleep(0.05)
        if ready:
            try:
                yield port
            finally:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
                log.close()
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        log.close()
    pytest.fail("Xvnc did not start: %s" % (tmp_path / "xvnc.log").read_text(errors="replace"))


class WSStream:
    """Byte-stream reads over WebSocket messages (RFB has no message framing)."""

    def __init__(self, ws):
        self.ws = ws
        self.buffer = bytearray()

    def read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            message = self.ws.recv(timeout=10)
            assert isinstance(message, bytes)
            self.buffer += message
        out = bytes(self.buffer[:count])
        del self.buffer[:count]
        return out


def test_real_vnc_server_through_the_proxy(start_proxy, xvnc):
    proxy = start_proxy("--no-web", "127.0.0.1:%d" % xvnc)
    with connect(proxy.url(), subprotocols=["binary"], max_size=None) as ws:
        rfb = WSStream(ws)
        assert rfb.read(12) == b"RFB 003.008\n"
        ws.send(b"RFB 003.008\n")
        count = rfb.read(1)[0]
        assert count > 0, "server refused: %r" % rfb.read(struct.unpack("!I", rfb.read(4))[0])
        types = rfb.read(count)
        assert 1 in types, "security None offered"
        ws.send(b"\x01")
        assert struct.unpack("!I", rfb.read(4))[0] == 0, "SecurityResult OK"
        ws.send(b"\x01")  # ClientInit: shared
        width, height = struct.unpack("!HH", rfb.read(4))
        assert (width, height) == (320, 200)
        rfb.read(16)  # server pixel format
        name = rfb.read(struct.unpack("!I", rfb.read(4))[0])
        assert name
        # SetPixelFormat: 32 bpp, depth 24, little-endian, true colour, 8 bits each.
        ws.send(struct.pack("!B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
        ws.send(struct.pack("!BxHi", 2, 1, 0))  # SetEncodings: Raw only
        ws.send(struct.pack("!BBHHHH", 3, 0, 0, 0, width, height))  # full update
        pixels = 0
        raw_bytes = 0
        while pixels < width * height:
            kind = rfb.read(1)[0]
            if kind == 2:  # Bell
                continue
            if kind == 3:  # ServerCutText
                rfb.read(3)
                rfb.read(struct.unpack("!I", rfb.read(4))[0])
                continue
            assert kind == 0, "unexpected server message %d" % kind
            rfb.read(1)
            (rects,) = struct.unpack("!H", rfb.read(2))
            for _ in range(rects):
                x, y, w, h, encoding = struct.unpack("!HHHHi", rfb.read(12))
                assert encoding == 0, "asked for Raw only, got encoding %d" % encoding
                rfb.read(w * h * 4)
                pixels += w * h
                raw_bytes += w * h * 4
        assert raw_bytes == 320 * 200 * 4
    log = proxy.wait_stderr(lambda t: ": closed " in t)
    down = int(re.search(r"down=(\d+)B", log).group(1))
    assert down >= 320 * 200 * 4, "the close line counts the framebuffer bytes: %s" % log


def test_banner_warns_when_public_without_tls_or_auth(tmp_path):
    """Listening on all interfaces with neither TLS nor auth earns a warning;
    loopback or an auth plugin does not."""
    import sys
    from conftest import WSPROXY_PY

    def banner(*args):
        out = subprocess.run([sys.executable, WSPROXY_PY, "--timeout", "0.2"] + list(args),
                             capture_output=True, text=True, timeout=20)
        return out.stdout
    port = free_port()
    public = banner(str(port), "127.0.0.1:5901")
    assert "warning: listening on all or public interfaces with no TLS and no --auth-plugin" in public
    assert "TLS: off" in public
    assert "warning" not in banner("127.0.0.1:%d" % free_port(), "127.0.0.1:5901")
    assert "warning" not in banner(str(free_port()), "127.0.0.1:5901", "--auth-plugin", "BasicHTTPAuth",
                                   "--auth-source", "u:p")
    tokens = tmp_path / "t.conf"
    tokens.write_text("".join("t%02d: 127.0.0.1:%d\n" % (i, 5900 + i) for i in range(25)))
    many = banner("127.0.0.1:%d" % free_port(), "--token-plugin", "TokenFile", "--token-source", str(tokens))
    assert "targets: 25 tokens from %s (reloaded on change)" % tokens in many
    assert many.count("Open http://") == 20 and "... and 5 more tokens" in many


# ---------------------------------------------------------------------------
# the README's TLS recipe, and what a wrong --cert/--key is told
# ---------------------------------------------------------------------------


def _readme_openssl_line():
    from conftest import ROOT
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip().startswith("openssl req -x509")]
    assert len(lines) == 1, lines
    return lines[0]


def test_readme_certificate_recipe_works_with_curl_for_localhost(tmp_path):
    import shlex
    import sys
    from conftest import WSPROXY_PY
    import realpeers
    realpeers.require_tool("openssl")
    curl = realpeers.require_tool("curl")
    subprocess.run(shlex.split(_readme_openssl_line()), cwd=str(tmp_path), check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, WSPROXY_PY, "--cert", "server.pem", "--key", "key.pem",
                             "127.0.0.1:%d" % port, "127.0.0.1:9"], cwd=str(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        realpeers.wait_for_port(port, proc=proc)
        out = subprocess.run([curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", "server.pem",
                              "https://localhost:%d/vnc.html" % port], cwd=str(tmp_path),
                             capture_output=True, text=True, timeout=20)
    finally:
        realpeers.stop(proc)
    assert out.stdout == "200", out.stderr


def _pair(directory, name):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
                    "-out", name + ".pem", "-days", "1", "-subj", "/CN=localhost"],
                   cwd=str(directory), check=True, capture_output=True)
    return str(directory / (name + ".pem")), str(directory / (name + ".key"))


def test_a_wrong_cert_or_key_is_explained(tmp_path):
    import sys
    from conftest import WSPROXY_PY
    import realpeers
    realpeers.require_tool("openssl")
    cert, key = _pair(tmp_path, "a")
    _, other_key = _pair(tmp_path, "b")
    (tmp_path / "notpem.pem").write_text("hello\n")

    def error(*args):
        out = subprocess.run([sys.executable, WSPROXY_PY] + list(args) + ["127.0.0.1:%d" % free_port(), "127.0.0.1:9"],
                             capture_output=True, text=True, timeout=20)
        assert out.returncode != 0
        return out.stderr
    assert "holds a certificate but no private key: add --key KEYFILE" in error("--cert", cert)
    assert "holds no PEM certificate" in error("--cert", str(tmp_path / "notpem.pem"))
    assert "does not belong to the certificate" in error("--cert", cert, "--key", other_key)
    assert "holds no PEM private key" in error("--cert", cert, "--key", cert)
    # Certificate and key in one file need no --key.
    combined = tmp_path / "combined.pem"
    combined.write_text(open(cert).read() + open(key).read())
    out = subprocess.run([sys.executable, WSPROXY_PY, "--cert", str(combined), "--timeout", "0.2",
                          "127.0.0.1:%d" % free_port(), "127.0.0.1:9"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0 and "TLS: on" in out.stdout, out.stdout + out.stderr
