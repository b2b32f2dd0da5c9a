"""Shared fixtures for the wsproxy tests.

Everything listens on loopback (127.0.0.1, ::1 or a Unix socket in tmp_path)
and every process or thread a fixture starts is stopped in its finalizer --
processes by PID.  Other test modules may append fixtures here.
"""

import base64
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
WSPROXY_PY = os.path.join(ROOT, "wsproxy.py")


# ---------------------------------------------------------------------------
# ports and small socket helpers
# ---------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the kernel's choice, then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def recv_exact(sock: socket.socket, count: int) -> bytes:
    out = bytearray()
    while len(out) < count:
        chunk = sock.recv(count - len(out))
        if not chunk:
            raise EOFError("peer closed after %d of %d bytes" % (len(out), count))
        out += chunk
    return bytes(out)


def recv_until_eof(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    out = bytearray()
    while len(out) < limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return bytes(out)


class HTTPResponse:
    def __init__(self, status: int, reason: str, headers, body: bytes, raw_head: bytes):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lower-case name, value)
        self.body = body
        self.raw_head = raw_head

    def header(self, name: str, default=None):
        for key, value in self.headers:
            if key == name.lower():
                return value
        return default

    def __repr__(self):
        return "<HTTP %d %r %r>" % (self.status, self.headers, self.body[:200])


def read_response(sock: socket.socket, head_only: bool = False, buffer: bytearray = None) -> HTTPResponse:
    """One HTTP response from ``sock``; the body by Content-Length (or to EOF).

    ``buffer`` carries bytes read past this response (for keep-alive reuse).
    """
    buf = buffer if buffer is not None else bytearray()
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed before a response head: %r" % bytes(buf))
        buf += chunk
    end = buf.index(b"\r\n\r\n") + 4
    raw_head = bytes(buf[:end])
    del buf[:end]
    lines = raw_head.decode("latin-1").split("\r\n")
    _, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
    response = HTTPResponse(int(status), reason, headers, b"", raw_head)
    length = response.header("content-length")
    if head_only or int(status) in (101, 304):
        return response
    if length is not None:
        length = int(length)
        while len(buf) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        response.body = bytes(buf[:length])
        del buf[:length]
    else:
        buf += recv_until_eof(sock)
        response.body = bytes(buf)
        del buf[:]
    return response


def http_exchange(port: int, request: bytes, host: str = "127.0.0.1", timeout: float = 5.0,
                  head_only: bool = False) -> HTTPResponse:
    """Send raw request bytes on a new connection and read one response."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        return read_response(sock, head_only=head_only)


def wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def get_request(path: str, headers=(), method: str = "GET", version: str = "1.1") -> bytes:
    lines = ["%s %s HTTP/%s" % (method, path, version), "Host: localhost"]
    lines.extend("%s: %s" % pair for pair in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def upgrade_headers(key: str = None, protocols: str = None):
    key = key or base64.b64encode(os.urandom(16)).decode()
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]
    if protocols:
        headers.append(("Sec-WebSocket-Protocol", protocols))
    return headers


# ---------------------------------------------------------------------------
# raw WebSocket frames (for what real clients refuse to send)
# ---------------------------------------------------------------------------


def ws_frame(opcode: int, payload: bytes = b"", fin: bool = True, mask: bool = True,
             rsv: int = 0) -> bytes:
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not mask:
        return header + payload
    key = os.urandom(4)
    repeated = (key * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(length, "big") if length else b""
    return header + key + masked


def read_ws_frame(sock: socket.socket, buffer: bytearray = None):
    """(fin, opcode, payload) of one unmasked server frame."""
    buf = buffer if buffer is not None else bytearray()

    def take(count):
        while len(buf) < count:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("closed mid-frame")
            buf.extend(chunk)
        out = bytes(buf[:count])
        del buf[:count]
        return out

    b0, b1 = take(2)
    length = b1 & 0x7F
    if length == 126:
        length = struct.unpack("!H", take(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", take(8))[0]
    if b1 & 0x80:
        raise AssertionError("server frames must not be masked")
    return bool(b0 & 0x80), b0 & 0x0F, take(length)


def read_close_code(sock: socket.socket, buffer: bytearray = None, timeout: float = 5.0):
    """Skip data frames until a Close frame; its (code, reason), or (None, '') on EOF."""
    sock.settimeout(timeout)
    while True:
        try:
            _, opcode, payload = read_ws_frame(sock, buffer)
        except (EOFError, ConnectionResetError):
            return None, ""
        if opcode == 0x8:
            if len(payload) >= 2:
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8", "replace")
            return 1005, ""


def raw_websocket(port: int, path: str = "/websockify", host: str = "127.0.0.1", extra=(),
                  timeout: float = 5.0):
    """Open a WebSocket by hand; (socket, buffer with bytes after the 101)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.sendall(get_request(path, list(upgrade_headers()) + list(extra)))
    buf = bytearray()
    response = read_response(sock, buffer=buf)
    if response.status != 101:
        sock.close()
        raise AssertionError("expected 101, got %r" % response)
    return sock, buf


# ---------------------------------------------------------------------------
# echo targets
# ---------------------------------------------------------------------------


class EchoServer:
    """Threaded TCP (or Unix) echo server on loopback; counts connections."""

    def __init__(self, family=socket.AF_INET, address=("127.0.0.1", 0)):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if family != socket.AF_UNIX:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(address)
        self.sock.listen(128)
        self.address = self.sock.getsockname()
        self.port = self.address[1] if family != socket.AF_UNIX else None
        self.connections = 0
        self._conns = []
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._accept_loop, name="echo-accept", daemon=True)
        self._thread.start()

    def _accept_loop(self):
        while not self._stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
            threading.Thread(target=self._echo, args=(conn,), name="echo", daemon=True).start()

    @staticmethod
    def _echo(conn):
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self._stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self._lock:
            for conn in self._conns:
                try:
                    conn.close()
                except OSError:
                    pass
        self._thread.join(2)


def upgrade_status(proxy, token: str, greeting: bytes = b"hello") -> tuple:
    """Through PROXY to the echo target of TOKEN: (101, GREETING as echoed) when the upgrade
    went through, else (HTTP status, body) of the refusal."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect
    try:
        with connect(proxy.url("/websockify?token=" + token), open_timeout=10) as ws:
            ws.send(greeting)
            return 101, ws.recv(timeout=5)
    except InvalidStatus as exc:
        return exc.response.status_code, exc.response.body.decode()


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (a module may define its own)."""
    import realpeers  # only the browser tests need it
    with realpeers.chromium() as driver:
        driver.set_script_timeout(30)
        yield driver


@pytest.fixture
def echo_server():
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def module_echo_server():
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def unix_echo_server(tmp_path):
    path = str(tmp_path / "echo.sock")
    server = EchoServer(socket.AF_UNIX, path)
    server.path = path
    yield server
    server.close()


# ---------------------------------------------------------------------------
# the proxy as a subprocess
# ---------------------------------------------------------------------------


class ProxyProcess:
    """``python3 wsproxy.py ARGS``; stdout and stderr go to files we can re-read."""

    def __init__(self, args, workdir, port=None, host="127.0.0.1", wait_for="listening on", env=None):
        self.args = list(args)
        self.port = port
        self.host = host
        self.workdir = str(workdir)
        tag = "%d-%d" % (os.getpid(), id(self))
        self.stdout_path = os.path.join(self.workdir, "proxy-%s.out" % tag)
        self.stderr_path = os.path.join(self.workdir, "proxy-%s.err" % tag)
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([sys.executable, WSPROXY_PY] + self.args, stdout=self._out,
                                     stderr=self._err, stdin=subprocess.DEVNULL, cwd=ROOT,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})))
        self.pid = self.proc.pid
        if wait_for:
            self.wait_stdout(wait_for)

    @property
    def stdout(self) -> str:
        with open(self.stdout_path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        with open(self.stderr_path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def wait_stdout(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.stdout
            if text in out:
                return out
            if self.proc.poll() is not None:
                raise RuntimeError("wsproxy exited with %s before printing %r\nstdout:\n%s\nstderr:\n%s"
                                   % (self.proc.returncode, text, out, self.stderr))
            time.sleep(0.02)
        raise TimeoutError("wsproxy did not print %r within %gs\nstdout:\n%s\nstderr:\n%s"
                           % (text, timeout, self.stdout, self.stderr))

    def wait_stderr(self, predicate, timeout: float = 5.0) -> str:
        """Poll the log until ``predicate(text)`` is true; the log text."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.stderr
            if predicate(text) or time.monotonic() > deadline:
                return text
            time.sleep(0.02)

    def url(self, path: str = "/websockify", scheme: str = "ws") -> str:
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "%s://%s:%d%s" % (scheme, host, self.port, path)

    def signal(self, signum) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signum)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._out.close()
        self._err.close()


class ProxyStarter:
    """start(*args, listen=True) -> ProxyProcess.

    With ``listen`` (the default) a free loopback port is chosen and passed
    as ``--listen``; a lost race for the port is retried.  ``stop_all()``
    stops every proxy by PID.
    """

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def __call__(self, *args, listen=True, host="127.0.0.1", wait_for="listening on", env=None):
        for attempt in range(3):
            port = free_port(host) if listen else None
            full = list(args)
            if listen:
                full = ["--listen", ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)] + full
            proxy = ProxyProcess(full, self.workdir, port=port, host=host, wait_for=None, env=env)
            self.procs.append(proxy)  # tracked before waiting, so a timeout still stops it
            if not wait_for:
                return proxy
            try:
                proxy.wait_stdout(wait_for)
            except RuntimeError as exc:
                if listen and "already in use" in str(exc) and attempt < 2:
                    continue
                raise
            return proxy
        raise RuntimeError("no free port")

    def stop_all(self):
        for proxy in self.procs:
            proxy.stop()


@pytest.fixture
def start_proxy(tmp_path):
    starter = ProxyStarter(tmp_path)
    yield starter
    starter.stop_all()


@pytest.fixture(scope="module")
def module_start_proxy(tmp_path_factory):
    starter = ProxyStarter(tmp_path_factory.mktemp("proxy"))
    yield starter
    starter.stop_all()


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("module")


@pytest.fixture(scope="module")
def web_root(tmp_path_factory):
    """A small web/ for static-file tests: vnc.html, app.js, style.css."""
    root = tmp_path_factory.mktemp("web")
    (root / "vnc.html").write_text("<!doctype html><title>vnc</title>\n")
    (root / "app.js").write_text("export const answer = 42;\n")
    (root / "style.css").write_text("body { margin: 0 }\n")
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_text("<p>sub</p>\n")
    return root


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A self-signed certificate and key for localhost: (cert.pem, key.pem)."""
    import realpeers
    openssl = realpeers.require_tool("openssl")  # fails in CI, skips elsewhere
    where = tmp_path_factory.mktemp("tls")
    cert, key = str(where / "c.pem"), str(where / "k.pem")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True, timeout=60)
    return cert, key


# A test module that needs no sockets, no peers and no test packages beyond
# pytest, hypothesis and wsproto says so with this line; `pytest -m pure` runs
# just those (under PyPy, in .ci/run) without importing the others.
PURE_MARKER_LINE = "pytestmark = pytest.mark.pure"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: waits on a real timeout (seconds); still run by default")
    config.addinivalue_line("markers", "pure: the module tests pure code only (see PURE_MARKER_LINE)")


def pytest_ignore_collect(collection_path, config):
    if config.getoption("markexpr") != "pure" or not collection_path.name.startswith("test_"):
        return None
    if collection_path.suffix != ".py":
        return None
    return PURE_MARKER_LINE not in collection_path.read_text(encoding="utf-8")
