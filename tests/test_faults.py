"""Faults through the proxy process (issue 6, item 4).

A target killed mid-transfer, a client that stops answering, a slow client
behind a fast target, running out of file descriptors, SIGTERM in the middle
of transfers both ways, and data integrity over many concurrent connections
with random frame sizes and fragmentation.  Loopback only; every process is
stopped by PID.  The long versions (1 GB, 10,000 connections) are in
tests/tools/soak.py, which pytest does not collect.
"""

import bisect
import fcntl
import hashlib
import os
import random
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time

import pytest

from conftest import get_request, raw_websocket, read_response, upgrade_headers, wait_until, ws_frame

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and uses SIOCOUTQ")

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# ---------------------------------------------------------------------------
# /proc figures of the proxy process
# ---------------------------------------------------------------------------


def _status_field(pid: int, name: str) -> int:
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise KeyError(name)


def rss_kib(pid: int) -> int:
    return _status_field(pid, "VmRSS")


def thread_count(pid: int) -> int:
    return _status_field(pid, "Threads")


def fd_count(pid: int) -> int:
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the whole process so far."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK   # utime, stime (fields 14, 15)


def unsent(sock: socket.socket) -> int:
    """Bytes in the socket's send queue that the peer's kernel has not acknowledged."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]


# ---------------------------------------------------------------------------
# a minimal WebSocket client side: server frames in, masked frames out
# ---------------------------------------------------------------------------


class ServerFrames:
    """Incremental parser of (unmasked) server frames read from ``sock``."""

    def __init__(self, sock: socket.socket, buffer: bytes = b""):
        self.sock = sock
        self.buf = bytearray(buffer)

    def read(self, size: int = 262144):
        """The frames completed by one recv(): a list of (fin, opcode, payload); None at EOF."""
        try:
            data = self.sock.recv(size)
        except ConnectionResetError:
            data = b""
        if not data:
            return None
        self.buf += data
        return self.parse()

    def parse(self):
        buf, pos, out = self.buf, 0, []
        end = len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if b1 & 0x80:
                raise AssertionError("server frames must not be masked")
            length, head = b1 & 0x7F, 2
            if length == 126:
                if end - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if end - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if end - pos < head + length:
                break
            out.append((bool(b0 & 0x80), b0 & 0x0F, bytes(buf[pos + head:pos + head + length])))
            pos += head + length
        del buf[:pos]
        return out


def close_payload(payload: bytes):
    if len(payload) < 2:
        return 1005, ""
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8", "replace")


def read_to_close(frames: ServerFrames, timeout: float = 10.0):
    """Data bytes, then (code, reason) of the Close frame (None at EOF)."""
    frames.sock.settimeout(timeout)
    data = bytearray()
    pending = frames.parse()
    while True:
        for _, opcode, payload in pending:
            if opcode == 0x8:
                return bytes(data), close_payload(payload)
            if opcode in (0x0, 0x1, 0x2):
                data += payload
        pending = frames.read()
        if pending is None:
            return bytes(data), (None, "")


class Listener:
    """A loopback TCP listener in this process for the proxy to connect to."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]

    def accept(self, timeout: float = 5.0) -> socket.socket:
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        conn.settimeout(None)
        return conn

    def close(self):
        self.sock.close()


@pytest.fixture
def listener():
    item = Listener()
    yield item
    item.close()


# ---------------------------------------------------------------------------
# the target dies mid-transfer
# ---------------------------------------------------------------------------

STREAMING_TARGET = r"""
import os, socket
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
print(listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
block = os.urandom(65536)
while True:
    conn.sendall(block)
"""


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_target_killed_mid_transfer_tells_the_client_at_once(start_proxy, how):
    # SIGKILL makes the kernel close the target's socket: a FIN, or a RST
    # when bytes we sent it are still unread.  Either way the client hears
    # within a second, with a reason, and the log says why.
    target = subprocess.Popen([sys.executable, "-c", STREAMING_TARGET], stdout=subprocess.PIPE)
    try:
        port = int(target.stdout.readline())
        proxy = start_proxy("--no-web", "127.0.0.1:%d" % port)
        sock, buf = raw_websocket(proxy.port)
        frames = ServerFrames(sock, buf)
        got = 0
        while got < 2 << 20:
            for _, opcode, payload in frames.read():
                assert opcode == 0x2
                got += len(payload)
        if how == "rst":
            sock.sendall(ws_frame(0x2, os.urandom(4096)))   # the target never reads it
            time.sleep(0.2)
        target.kill()
        killed = time.monotonic()
        target.wait(5)
        data, (code, reason) = read_to_close(frames, timeout=5)
        delay = time.monotonic() - killed
        sock.close()
    finally:
        if target.poll() is None:
            target.kill()
            target.wait(5)
        target.stdout.close()
    expected = {"fin": (1000, "target closed the connection"),
                "rst": (1011, "target connection lost: Connection reset by peer")}[how]
    assert (code, reason) == expected
    assert delay < 1.0, "close frame %.2fs after the target died" % delay
    log = proxy.wait_stderr(lambda text: "closed code=" in text)
    assert "closed code=%d" % expected[0] in log and expected[1] in log, log


# ---------------------------------------------------------------------------
# the client vanishes without a FIN
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("target_streams", [False, True], ids=["idle", "streaming"])
def test_silent_client_is_dropped_by_heartbeat_and_target_closed(start_proxy, listener, target_streams):
    # A client whose packets stop (cable pulled, laptop asleep) sends no FIN:
    # this one stops reading and never answers a ping.  --heartbeat 1 pings
    # after 1 s and gives up 1 s later; the target then gets EOF (or a RST
    # if it was still sending).
    proxy = start_proxy("--no-web", "--heartbeat", "1", "127.0.0.1:%d" % listener.port)
    client, _ = raw_websocket(proxy.port)
    opened = time.monotonic()
    target = listener.accept()
    stop = threading.Event()

    def stream():
        block = bytes(65536)
        try:
            while not stop.is_set():
                target.sendall(block)
        except OSError:
            pass

    sender = threading.Thread(target=stream, daemon=True)
    if target_streams:
        sender.start()
    else:
        target.sendall(b"hello")
    target.settimeout(8)
    outcome = None
    try:
        while outcome is None:
            data = target.recv(65536)
            if not data:
                outcome = "eof"
    except ConnectionResetError:
        outcome = "reset"
    took = time.monotonic() - opened
    stop.set()
    target.close()
    client.close()
    if target_streams:
        sender.join(5)
    assert 1.5 < took < 3.5, "target closed %.2fs after the client went silent" % took
    assert outcome in ("eof", "reset")
    log = proxy.wait_stderr(lambda text: "closed code=" in text)
    assert "no pong within 1s" in log, log


# ---------------------------------------------------------------------------
# a slow client behind a fast target: memory stays flat
# ---------------------------------------------------------------------------


class StreamTarget:
    """Accepts one connection and sends ``total`` bytes as fast as it can."""

    def __init__(self, total: int):
        self.total = total
        self.listener = Listener()
        self.port = self.listener.port
        self.digest = None
        self.error = None
        self.thread = threading.Thread(target=self._run, name="stream-target", daemon=True)
        self.thread.start()

    def _run(self):
        try:
            conn = self.listener.accept(10)
            block = bytearray(os.urandom(1 << 20))
            digest = hashlib.sha256()
            sent = 0
            with conn:
                while sent < self.total:
                    struct.pack_into("!Q", block, 0, sent)    # every block differs
                    piece = memoryview(block)[:min(len(block), self.total - sent)]
                    digest.update(piece)
                    conn.sendall(piece)
                    sent += len(piece)
                self.digest = digest.hexdigest()
                conn.shutdown(socket.SHUT_WR)
                conn.settimeout(10)
                conn.recv(1)
        except OSError as exc:
            self.error = exc

    def close(self):
        self.listener.close()
        self.thread.join(10)


def slow_client_transfer(proxy_pid: int, proxy_port: int, target: StreamTarget,
                         chunk: int = 65536, pause: float = 0.001) -> dict:
    """Read the target's stream through the proxy at most ``chunk`` bytes
    every ``pause`` seconds; proxy RSS at 10% and 90% of the way."""
    sock, buf = raw_websocket(proxy_port)
    frames = ServerFrames(sock, buf)
    sock.settimeout(20)
    digest = hashlib.sha256()
    got = 0
    marks = {}
    started = time.monotonic()
    close = None
    pending = frames.parse()
    while close is None:
        for _, opcode, payload in pending:
            if opcode == 0x8:
                close = close_payload(payload)
                break
            digest.update(payload)
            got += len(payload)
        for fraction in (0.1, 0.9):
            if fraction not in marks and got >= fraction * target.total:
                marks[fraction] = rss_kib(proxy_pid)
        if close is not None:
            break
        time.sleep(pause)
        pending = frames.read(chunk)
        if pending is None:
            break
    seconds = time.monotonic() - started
    sock.close()
    target.close()
    return {"bytes": got, "seconds": seconds, "close": close, "intact": digest.hexdigest() == target.digest,
            "rss_10": marks.get(0.1), "rss_90": marks.get(0.9), "target_error": target.error}


def test_slow_client_keeps_proxy_memory_flat(start_proxy):
    total = 256 << 20
    target = StreamTarget(total)
    proxy = start_proxy("--no-web", "127.0.0.1:%d" % target.port)
    result = slow_client_transfer(proxy.pid, proxy.port, target)
    assert result["target_error"] is None
    assert result["bytes"] == total and result["intact"], result
    assert result["close"] == (1000, "target closed the connection"), result
    # The proxy holds one 64 KiB read per direction: what it reads from the
    # fast target must wait in the kernel, not in the proxy.
    growth = result["rss_90"] - result["rss_10"]
    assert growth < 4096, "RSS grew %d KiB between 10%% and 90%% of %d MB: %r" % (growth, total >> 20, result)


def test_ping_flood_from_a_client_that_never_reads_keeps_memory_flat(start_proxy, echo_server):
    """Issue 10.1: one pong is owed, not one per ping (413 MB from one client before)."""
    proxy = start_proxy("--no-web", "127.0.0.1:%d" % echo_server.port)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # and we never read
    sock.settimeout(10)
    sock.connect(("127.0.0.1", proxy.port))
    sock.sendall(get_request("/websockify", upgrade_headers()))
    buf = bytearray()
    assert read_response(sock, buffer=buf).status == 101
    before = rss_kib(proxy.pid)
    count = 400000
    batch = b"".join(ws_frame(0x9, b"%07d" % n + b"p" * 118) for n in range(1000))
    for _ in range(count // 1000 - 1):
        sock.sendall(batch)
    last = b"%07d" % (count - 1) + b"p" * 118
    sock.sendall(b"".join(ws_frame(0x9, b"%07d" % n + b"p" * 118) for n in range(count - 1000, count)))
    # Everything sent was read by the proxy once an echo round trip comes back.
    assert wait_until(lambda: unsent(sock) == 0, 30), unsent(sock)
    growth = rss_kib(proxy.pid) - before
    assert growth < 8192, "RSS grew %d KiB over %d pings (%d MB)" % (growth, count, count * 131 >> 20)
    # The client starts reading: it is answered, with the latest ping's payload.
    frames = ServerFrames(sock, buf)
    pongs = []
    while last not in pongs:
        batch_frames = frames.read()
        assert batch_frames is not None, "connection closed before the last pong"
        pongs += [payload for _, opcode, payload in batch_frames if opcode == 0xA]
    assert len(pongs) < count // 10, len(pongs)
    # And the connection still relays.
    sock.sendall(ws_frame(0x2, b"still here"))
    got = b""
    while len(got) < 10:
        got += b"".join(p for _, opcode, p in frames.read() if opcode == 0x2)
    assert got == b"still here"
    sock.close()


# ---------------------------------------------------------------------------
# out of file descriptors
# ---------------------------------------------------------------------------


def test_out_of_file_descriptors_backs_off_and_recovers(start_proxy, echo_server):
    proxy = start_proxy("--no-web", "127.0.0.1:%d" % echo_server.port)
    baseline_fds = fd_count(proxy.pid)
    # Room for ten WebSockets (two descriptors each) and one more socket.
    limit = baseline_fds + 21
    resource.prlimit(proxy.pid, resource.RLIMIT_NOFILE, (limit, limit))
    sockets = []
    try:
        # WebSockets until the proxy has no descriptor left for the target
        # side: those get a 502 that says so.
        statuses = []
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
            sockets.append(sock)
            sock.sendall(get_request("/websockify", upgrade_headers()))
            statuses.append(read_response(sock, head_only=True).status)
        assert statuses == [101] * 10 + [502] * 10, (limit, statuses)
        # Silent connections take the last descriptors; the rest wait in the
        # backlog while accept() fails with EMFILE.
        for _ in range(30):
            sockets.append(socket.create_connection(("127.0.0.1", proxy.port), timeout=5))
        assert wait_until(lambda: "accept failed (Too many open files)" in proxy.stderr, 5), proxy.stderr
        before = cpu_seconds(proxy.pid)
        time.sleep(2.0)
        spent = cpu_seconds(proxy.pid) - before
        assert spent < 0.3, "the proxy used %.2fs of CPU in 2s while out of descriptors" % spent
        assert "target 127.0.0.1:%d unreachable: too many open files" % echo_server.port in proxy.stderr
    finally:
        for sock in sockets:
            sock.close()
    # Recovery: once the clients have gone, a new connection works.
    assert wait_until(lambda: fd_count(proxy.pid) <= baseline_fds, 10), (fd_count(proxy.pid), baseline_fds)
    sock, buf = raw_websocket(proxy.port)
    sock.sendall(ws_frame(0x2, b"after the storm"))
    frames = ServerFrames(sock, buf)
    sock.settimeout(5)
    got = b"".join(p for _, _, p in frames.parse())
    while len(got) < 15:
        got += b"".join(p for _, _, p in frames.read())
    sock.close()
    assert got == b"after the storm"


# ---------------------------------------------------------------------------
# SIGTERM in the middle of transfers both ways
# ---------------------------------------------------------------------------


def send_until_full(sock: socket.socket, next_chunk, stop: threading.Event, quiet: float = 0.3,
                    budget: int = 8 << 20) -> None:
    """Send next_chunk() pieces; once ``stop`` is set, go on until the socket
    has taken nothing for ``quiet`` seconds (every buffer on the way full) or
    ``budget`` more bytes have gone (loopback buffers can grow to tens of MB)."""
    data, offset = b"", 0
    idle_since = None
    after_stop = 0
    give_up = None
    while True:
        if stop.is_set() and give_up is None:
            give_up = time.monotonic() + 3.0      # or at most this much longer
        if offset == len(data):
            if stop.is_set() and (after_stop >= budget or time.monotonic() > give_up):
                return
            data, offset = next_chunk(), 0
        try:
            sent = sock.send(memoryview(data)[offset:], socket.MSG_DONTWAIT)
            offset += sent
            if stop.is_set():
                after_stop += sent
            idle_since = None
        except BlockingIOError:
            if stop.is_set():
                if idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > quiet:
                    return
            select.select([], [sock], [], 0.05)


class TermPair:
    """One client and its target, both sending random data and reading."""

    def __init__(self, client: socket.socket, buffer: bytes, target: socket.socket, seed: int):
        self.client, self.target = client, target
        # Blocking, no timeout: with one, CPython's send() waits for room
        # even with MSG_DONTWAIT.  The test's joins bound the waits.
        client.settimeout(None)
        target.settimeout(None)
        self.frames = ServerFrames(client, buffer)
        self.rng = random.Random(seed)
        self.stop = threading.Event()       # senders: fill every buffer, then stop
        self.reading = threading.Event()    # readers run while set
        self.reading.set()
        self.client_payload = bytearray()   # what the client sent, unmasked
        self.client_frame_ends = []         # wire offset of each frame's end
        self.client_payload_ends = []       # payload offset at that frame's end
        self.client_wire = 0
        self.target_sent = bytearray()
        self.client_got = bytearray()
        self.target_got = bytearray()
        self.close = None
        self.errors = []
        self.threads = [threading.Thread(target=self._guard, args=(fn,), daemon=True)
                        for fn in (self._client_send, self._target_send, self._client_read, self._target_read)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def _guard(self, fn):
        try:
            fn()
        except Exception as exc:   # reported by the test
            self.errors.append(exc)

    def _client_frame(self) -> bytes:
        payload = self.rng.randbytes(self.rng.randint(1, 40000))
        frame = ws_frame(0x2, payload)
        self.client_payload += payload
        self.client_wire += len(frame)
        self.client_frame_ends.append(self.client_wire)
        self.client_payload_ends.append(len(self.client_payload))
        return frame

    def _target_chunk(self) -> bytes:
        data = random.randbytes(random.randint(1, 100000))
        self.target_sent += data
        return data

    def _client_send(self):
        send_until_full(self.client, self._client_frame, self.stop)

    def _target_send(self):
        send_until_full(self.target, self._target_chunk, self.stop)

    def _client_read(self):
        while True:
            self.reading.wait()
            frames = self.frames.read()
            if frames is None:
                return
            for _, opcode, payload in frames:
                if opcode == 0x8:
                    self.close = close_payload(payload)
                    self.client.sendall(ws_frame(0x8, payload[:2]))
                elif opcode in (0x0, 0x2):
                    self.client_got += payload

    def _target_read(self):
        while True:
            self.reading.wait()
            try:
                data = self.target.recv(262144)
            except ConnectionResetError:
                return
            if not data:
                return
            self.target_got += data

    def owed(self):
        """(bytes owed to the client, bytes owed to the target): what the
        proxy's kernel has acknowledged from each peer, as a lower bound."""
        from_target = len(self.target_sent) - unsent(self.target)
        received_wire = self.client_wire - unsent(self.client)
        frames_in = bisect.bisect_right(self.client_frame_ends, received_wire)
        from_client = self.client_payload_ends[frames_in - 1] if frames_in else 0
        return from_target, from_client


CLIENT_RCVBUF = 256 * 1024


def test_sigterm_delivers_everything_received_then_1001(start_proxy, listener):
    proxy = start_proxy("--no-web", "127.0.0.1:%d" % listener.port)
    pairs = []
    try:
        for i in range(4):
            client, buf = raw_websocket(proxy.port)
            # A browser-sized receive buffer: left to autotune, each client's grew to
            # ~20 MB, which this test's Python readers could not drain within the
            # proxy's 1 s stop drain (STOP_DRAIN_TIMEOUT) on a busy machine.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
            pairs.append(TermPair(client, buf, listener.accept(), seed=i))
        for pair in pairs:
            pair.start()
        time.sleep(0.3)                    # both ways at full speed
        for pair in pairs:                 # readers stop, senders fill every buffer
            pair.reading.clear()
            pair.stop.set()
        for pair in pairs:
            for thread in pair.threads[:2]:
                thread.join(15)
                assert not thread.is_alive(), "sender never filled the buffers"
        owed = [pair.owed() for pair in pairs]
        proxy.signal(signal.SIGTERM)
        for pair in pairs:
            pair.reading.set()
        for pair in pairs:
            for thread in pair.threads[2:]:
                thread.join(15)
        assert proxy.proc.wait(10) == 0
    finally:
        for pair in pairs:
            pair.reading.set()
            pair.client.close()
            pair.target.close()
    problems = []
    for i, (pair, (to_client, to_target)) in enumerate(zip(pairs, owed)):
        assert not pair.errors, pair.errors
        if pair.close != (1001, "server shutting down"):
            problems.append("pair %d: close %r" % (i, pair.close))
        for what, got, sent, owed_bytes in (("target -> client", pair.client_got, pair.target_sent, to_client),
                                            ("client -> target", pair.target_got, pair.client_payload, to_target)):
            if got != sent[:len(got)]:
                problems.append("pair %d %s: bytes differ" % (i, what))
            if len(got) < owed_bytes:
                problems.append("pair %d %s: %d of %d bytes arrived, %d were acknowledged by the proxy"
                                % (i, what, len(got), len(sent), owed_bytes))
    assert not problems, problems


def test_client_closing_mid_download_still_delivers_its_upload(start_proxy, listener):
    """The client uploads, closes normally and reads on, while the target is
    still streaming to it and reads slowly: every uploaded byte arrives.
    (A close() with unread data makes Linux reset the connection, and a
    reset drops what the target had not yet acknowledged.)"""
    proxy = start_proxy("--no-web", "127.0.0.1:%d" % listener.port)
    client, buf = raw_websocket(proxy.port)
    target = listener.accept()
    upload = random.Random(7).randbytes(6 << 20)
    got = bytearray()
    stop = threading.Event()

    def stream_down():
        chunk = b"d" * 65536
        try:
            while not stop.is_set():
                target.sendall(chunk)
        except OSError:
            pass

    def read_slowly():
        time.sleep(0.5)             # the proxy's send queue to us fills first
        target.settimeout(15)
        while True:
            try:
                data = target.recv(32768)
            except OSError:
                return
            if not data:
                return
            got.extend(data)
            time.sleep(0.002)

    threads = [threading.Thread(target=fn, daemon=True) for fn in (stream_down, read_slowly)]
    for thread in threads:
        thread.start()
    frames = ServerFrames(client, buf)
    closed = []

    def read_client():
        client.settimeout(20)
        closed.append(read_to_close(frames, timeout=20)[1])

    reader = threading.Thread(target=read_client, daemon=True)
    reader.start()
    try:
        for offset in range(0, len(upload), 65536):
            client.sendall(ws_frame(0x2, upload[offset:offset + 65536]))
        client.sendall(ws_frame(0x8, struct.pack("!H", 1000)))
        reader.join(20)
        assert closed and closed[0][0] == 1000, closed
        threads[1].join(20)
        assert not threads[1].is_alive(), "the target's connection never ended"
    finally:
        stop.set()
        client.close()
        target.close()
    assert len(got) == len(upload), "%d of %d uploaded bytes reached the target" % (len(got), len(upload))
    assert bytes(got) == upload
    assert "closed code=1000" in proxy.wait_stderr(lambda text: "closed code=1000" in text)


def test_memory_grown_for_bursts_is_given_back_when_connections_idle(start_proxy, listener):
    """100 connections each get one 2 MiB burst (a full-screen update), then
    idle: the proxy's read buffers grew to 1 MiB each for the burst, and a
    second later they are gone again."""
    proxy = start_proxy("--no-web", "127.0.0.1:%d" % listener.port)
    burst = os.urandom(2 << 20)
    pairs = []
    try:
        for _ in range(100):
            client, buf = raw_websocket(proxy.port)
            pairs.append((client, ServerFrames(client, buf), listener.accept()))
        time.sleep(0.3)
        before = rss_kib(proxy.pid)
        for client, frames, target in pairs:
            target.sendall(burst)
            client.settimeout(10)
            got = 0
            while got < len(burst):
                got += sum(len(payload) for _, _, payload in frames.read())
            assert got == len(burst)
        after_bursts = rss_kib(proxy.pid)
        settled = wait_until(lambda: rss_kib(proxy.pid) - before < 20 * 1024, timeout=5)
        idle = rss_kib(proxy.pid)
    finally:
        for client, _, target in pairs:
            client.close()
            target.close()
    assert after_bursts - before > 50 * 1024, "the bursts should have grown the buffers (%d KiB)" % (
        after_bursts - before)
    assert settled, "RSS %d KiB before the bursts, %d after, %d once idle" % (before, after_bursts, idle)


# ---------------------------------------------------------------------------
# data integrity: many connections, both ways at once, random framing
# ---------------------------------------------------------------------------


def _target_total(seed: int) -> int:
    return random.Random(seed).randint(64 << 10, 1 << 20)


class ChecksumTarget:
    """Each connection names its seed in its first 8 bytes; the target then
    sends a stream made from that seed while hashing what it receives."""

    def __init__(self):
        self.listener = Listener()
        self.port = self.listener.port
        self.results = {}
        self.errors = []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self.listener.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(30)
            head = b""
            while len(head) < 8:
                data = conn.recv(8 - len(head))
                if not data:
                    raise EOFError("no seed")
                head += data
            seed = struct.unpack("!Q", head)[0]
            sent = hashlib.sha256()

            def send():
                rng = random.Random(seed)
                left = rng.randint(64 << 10, 1 << 20)
                while left:
                    piece = rng.randbytes(min(left, int(2 ** rng.uniform(0, 17))))
                    sent.update(piece)
                    conn.sendall(piece)
                    left -= len(piece)

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            got = hashlib.sha256()
            count = 0
            while True:
                data = conn.recv(262144)
                if not data:
                    break
                got.update(data)
                count += len(data)
            sender.join(30)
            self.results[seed] = (sent.hexdigest(), got.hexdigest(), count)
            conn.close()
        except (OSError, EOFError) as exc:
            self.errors.append(exc)

    def close(self):
        self.listener.close()


def _integrity_client(port: int, seed: int, results: dict) -> None:
    rng = random.Random(1000 + seed)
    sock, buf = raw_websocket(port, timeout=30)
    frames = ServerFrames(sock, buf)
    expected = _target_total(seed)
    got = hashlib.sha256()
    state = {"count": 0, "pongs": 0, "close": None}

    def read():
        while state["close"] is None:
            batch = frames.read()
            if batch is None:
                return
            for _, opcode, payload in batch:
                if opcode in (0x0, 0x2):
                    got.update(payload)
                    state["count"] += len(payload)
                elif opcode == 0xA:
                    state["pongs"] += 1
                    state["last_pong"] = payload
                elif opcode == 0x8:
                    state["close"] = close_payload(payload)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sent = hashlib.sha256()
    wire = bytearray(ws_frame(0x2, struct.pack("!Q", seed)))
    pings = 0
    total = rng.randint(64 << 10, 1 << 20)
    left = total
    while left:
        message = rng.randbytes(min(left, int(2 ** rng.uniform(0, 18))))
        left -= len(message)
        sent.update(message)
        # One message in random fragments (continuation frames), sometimes
        # with a ping between them, sometimes with empty fragments.
        cuts = sorted(rng.randint(0, len(message)) for _ in range(rng.choice([0, 0, 1, 3, 8])))
        pieces = [message[a:b] for a, b in zip([0] + cuts, cuts + [len(message)])]
        for i, piece in enumerate(pieces):
            wire += ws_frame(0x2 if i == 0 else 0x0, piece, fin=i == len(pieces) - 1)
            if rng.random() < 0.05:
                wire += ws_frame(0x9, b"p%d" % pings)
                pings += 1
        # The byte stream itself goes out in random slices (partial frames).
        while len(wire) > 200000 or (not left and wire):
            cut = min(len(wire), rng.choice([1, 7, 100, 1500, 65536, 200000]))
            sock.sendall(wire[:cut])
            del wire[:cut]
    deadline = time.monotonic() + 30
    while state["count"] < expected and reader.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    sock.sendall(ws_frame(0x8, struct.pack("!H", 1000)))
    reader.join(30)
    sock.close()
    results[seed] = {"sent": sent.hexdigest(), "sent_count": total, "got": got.hexdigest(),
                     "got_count": state["count"], "expected": expected, "pings": pings,
                     "pongs": state["pongs"], "last_pong": state.get("last_pong"), "close": state["close"]}


def test_many_connections_both_ways_every_byte_in_order(start_proxy):
    target = ChecksumTarget()
    try:
        proxy = start_proxy("--no-web", "127.0.0.1:%d" % target.port)
        results, errors = {}, []

        def run(seed):
            try:
                _integrity_client(proxy.port, seed, results)
            except Exception as exc:   # reported below
                errors.append((seed, exc))

        threads = [threading.Thread(target=run, args=(seed,), daemon=True) for seed in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert wait_until(lambda: len(target.results) == 50, 10), sorted(target.results)
    finally:
        target.close()
    assert not target.errors, target.errors
    for seed in range(50):
        mine, theirs = results[seed], target.results[seed]
        assert mine["close"] == (1000, ""), (seed, mine)
        # Pings may be answered together (only the latest is owed), but the
        # last one always is.
        assert mine["pongs"] <= mine["pings"], (seed, mine)
        if mine["pings"]:
            assert mine["last_pong"] == b"p%d" % (mine["pings"] - 1), (seed, mine)
        # target -> client
        assert (mine["got_count"], mine["got"]) == (mine["expected"], theirs[0]), (seed, mine)
        # client -> target (after the 8-byte seed)
        assert (theirs[2], theirs[1]) == (mine["sent_count"], mine["sent"]), (seed, theirs, mine)
