"""The relay: first the thread-level unit over socket.socketpair(), then
whole connections through the proxy subprocess with two independent client
implementations (websockets and wsproto) against a loopback echo server."""

import hashlib
import random
import re
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

import wsproxy
from conftest import (read_close_code, read_ws_frame, raw_websocket, recv_exact, recv_until_eof, ws_frame)


# ---------------------------------------------------------------------------
# Relay over socketpair(): the unit one connection thread runs
# ---------------------------------------------------------------------------


class RelayHarness:
    """A Relay between two socketpairs, run in a thread like ConnectionHandler does.

    ``client`` is our end of the WebSocket (we send masked frames, read
    server frames); ``target`` is our end of the TCP target.
    """

    def __init__(self, **kwargs):
        self.client, relay_client = socket.socketpair()
        self.target, relay_target = socket.socketpair()
        self.client.settimeout(5)
        self.target.settimeout(5)
        self.relay = wsproxy.Relay(relay_client, relay_target, wsproxy.WebSocketSession(), **kwargs)
        self.stats = None
        self.ended_at = None

        def run():
            try:
                self.stats = self.relay.run()
            finally:
                # What ConnectionHandler does when the relay returns.
                self.ended_at = time.monotonic()
                relay_target.close()
                relay_client.close()

        self.thread = threading.Thread(target=run, name="relay-under-test", daemon=True)
        self.started_at = time.monotonic()
        self.thread.start()

    def send(self, payload: bytes, opcode: int = 0x2, fin: bool = True) -> None:
        self.client.sendall(ws_frame(opcode, payload, fin=fin))

    def read_client_payload(self, count: int, buffer: bytearray) -> bytes:
        """Binary frame payload the relay sent to the client, ``count`` bytes of it."""
        out = bytearray()
        while len(out) < count:
            fin, opcode, payload = read_ws_frame(self.client, buffer)
            assert opcode == 0x2, "expected binary data, got opcode %d" % opcode
            out += payload
        return bytes(out)

    def join(self, timeout: float = 5.0) -> wsproxy.RelayStats:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "relay did not finish"
        return self.stats

    def close(self):
        for sock in (self.client, self.target):
            try:
                sock.close()
            except OSError:
                pass
        self.thread.join(5)


@pytest.fixture
def harness():
    made = []

    def make(**kwargs):
        h = RelayHarness(**kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


@pytest.mark.parametrize("timeout", [3e6, 1e300, float("inf")])
def test_poller_wait_takes_any_long_timeout(timeout):
    # poll() refuses more than 2**31-1 ms: --timeout 3e6 crashed the accept
    # loop and --idle-timeout/--heartbeat of that size every relay (OverflowError).
    a, b = socket.socketpair()
    poller = wsproxy._Poller()
    try:
        poller.set(a.fileno(), wsproxy._POLL_IN)
        b.sendall(b"x")
        assert [fd for fd, _ in poller.wait(timeout)] == [a.fileno()]
    finally:
        poller.close()
        a.close()
        b.close()


def test_relay_with_huge_idle_timeout_and_heartbeat_relays(harness):
    h = harness(idle_timeout=1e300, heartbeat=float("inf"))
    h.send(b"up")
    assert recv_exact(h.target, 2) == b"up"
    h.target.sendall(b"down")
    assert h.read_client_payload(4, bytearray()) == b"down"


def test_relay_moves_bytes_both_ways_in_order(harness):
    h = harness()
    rng = random.Random(1)
    buf = bytearray()
    for i in range(50):
        up = rng.randbytes(rng.randint(1, 3000))
        h.send(up)
        assert recv_exact(h.target, len(up)) == up
        down = rng.randbytes(rng.randint(1, 3000))
        h.target.sendall(down)
        assert h.read_client_payload(len(down), buf) == down


def test_target_eof_delivers_all_data_then_close_1000(harness):
    h = harness()
    data = random.Random(2).randbytes(300_000)
    h.target.sendall(data)
    h.target.shutdown(socket.SHUT_WR)
    buf = bytearray()
    assert h.read_client_payload(len(data), buf) == data
    code, reason = read_close_code(h.client, buf)
    assert code == 1000
    h.client.sendall(ws_frame(0x8, struct.pack("!H", 1000)))
    stats = h.join()
    assert stats.close_code == 1000
    assert stats.bytes_down == len(data)


def test_client_close_delivers_all_data_then_target_eof(harness):
    h = harness()
    data = random.Random(3).randbytes(200_000)
    # Many frames, then the Close frame, all sent before the target reads.
    frames = b"".join(ws_frame(0x2, data[i:i + 7000]) for i in range(0, len(data), 7000))
    sender = threading.Thread(target=h.client.sendall, args=(frames + ws_frame(0x8, struct.pack("!H", 1000)),))
    sender.start()
    received = recv_until_eof(h.target)
    sender.join(5)
    assert received == data, "target must get every byte, then EOF"
    buf = bytearray()
    code, _ = read_close_code(h.client, buf)
    assert code == 1000, "the relay answers the client's close"
    stats = h.join()
    assert stats.bytes_up == len(data)
    assert stats.close_code == 1000


def test_client_vanishing_closes_target(harness):
    h = harness()
    h.send(b"last words")
    assert recv_exact(h.target, 10) == b"last words"
    h.client.close()
    assert recv_until_eof(h.target) == b"", "target sees EOF once the client is gone"
    stats = h.join()
    assert stats.close_code == wsproxy.CloseCode.ABNORMAL
    # And the target socket is really closed, not just half-closed: writing fails.
    with pytest.raises(OSError):
        for _ in range(100):
            h.target.sendall(b"x" * 65536)
            time.sleep(0.01)


def test_target_that_never_reads_cannot_hold_the_relay_after_close(harness, monkeypatch):
    """Data plus Close in one read, and a target that never reads: the client
    gets its close reply at once, and the relay gives the target
    TARGET_FLUSH_TIMEOUT to take the rest, sleeping (not spinning) meanwhile."""
    monkeypatch.setattr(wsproxy, "TARGET_FLUSH_TIMEOUT", 1.0)
    h = harness()
    h.target.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    h.relay.target.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    cpu_before = time.process_time()
    h.client.sendall(ws_frame(0x2, b"x" * 60000) + ws_frame(0x8, struct.pack("!H", 1000)))
    code, _ = read_close_code(h.client, bytearray())
    assert code == 1000
    h.thread.join(5)
    assert not h.thread.is_alive(), "relay still held by a target that never reads"
    assert 0.9 < h.ended_at - h.started_at < 3
    assert time.process_time() - cpu_before < 0.5, "the wait must be a sleep in poll"
    assert h.stats.bytes_up < 60000


def test_due_heartbeat_does_not_spin_while_waiting_for_the_close_reply(harness):
    """After the target closes, the relay waits CLOSE_TIMEOUT for the client's
    Close reply.  A heartbeat that falls due meanwhile must not make that wait
    a busy loop."""
    h = harness(heartbeat=0.2)
    wakeups = []
    update = h.relay.policy.update
    h.relay.policy.update = lambda *args: (wakeups.append(1), update(*args))[1]
    h.target.shutdown(socket.SHUT_WR)          # relay sends close 1000 and waits
    code, _ = read_close_code(h.client, bytearray())
    assert code == 1000
    h.thread.join(wsproxy.CLOSE_TIMEOUT + 3)   # we never answer the Close
    assert not h.thread.is_alive()
    # A sleeping wait wakes a handful of times; a busy one thousands.
    assert len(wakeups) < 20, "%d wake-ups while waiting for the close reply" % len(wakeups)


def test_bulk_download_arrives_intact_in_big_frames(harness):
    """32 MiB of random bytes from the target, read by the client in random
    amounts, arrive complete and in order, in frames that grow to
    TARGET_CHUNK once the target has more than the first small read."""
    h = harness()
    data = random.Random(7).randbytes(32 << 20)
    sender = threading.Thread(target=h.target.sendall, args=(data,), daemon=True)
    sender.start()
    rng = random.Random(8)
    got = hashlib.sha256()
    frames = received = 0
    buffer = bytearray()
    while received < len(data):
        fin, opcode, payload = read_ws_frame(h.client, buffer)
        assert opcode == 0x2 and fin
        got.update(payload)
        received += len(payload)
        frames += 1
        if rng.random() < 0.05:
            time.sleep(0.002)  # a client that is sometimes slower than the target
    sender.join(10)
    assert received == len(data)
    assert got.hexdigest() == hashlib.sha256(data).hexdigest()
    assert frames <= len(data) // 4096 + 8, "bulk data should travel in big frames"
    assert len(h.relay._buffer) == wsproxy.TARGET_CHUNK


def _queued(relay) -> int:
    for _ in range(100):
        try:
            return sum(len(chunk) for chunk in list(relay._client_out))
        except RuntimeError:  # deque mutated while we copied it; look again
            continue
    return 0


def _complete_frames(buf: bytearray):
    """(opcode, payload) of each whole unmasked frame at the start of ``buf``,
    which keeps a partial one for the next read."""
    frames, pos = [], 0
    while len(buf) - pos >= 2:
        length, head = buf[pos + 1] & 0x7F, 2
        if length == 126:
            length, head = struct.unpack_from("!H", buf, pos + 2)[0] if len(buf) - pos >= 4 else -1, 4
        elif length == 127:
            length, head = struct.unpack_from("!Q", buf, pos + 2)[0] if len(buf) - pos >= 10 else -1, 10
        if length < 0 or len(buf) - pos < head + length:
            break
        frames.append((buf[pos] & 0x0F, bytes(buf[pos + head:pos + head + length])))
        pos += head + length
    del buf[:pos]
    return frames


def test_slow_client_gets_back_pressure_not_buffering(harness):
    """A client that does not read: the relay holds at most about one read
    in user space, and the target's sends block (TCP back-pressure) instead."""
    h = harness()
    chunk = bytes(range(256)) * 256  # 64 KiB
    written = [0]
    stop = threading.Event()

    def stream():
        h.target.setblocking(True)
        h.target.settimeout(None)
        try:
            while not stop.is_set():
                h.target.sendall(chunk)
                written[0] += len(chunk)
        except OSError:
            pass

    writer = threading.Thread(target=stream, daemon=True)
    writer.start()
    peak = 0
    last, stalled_since = -1, None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        peak = max(peak, _queued(h.relay))
        if written[0] == last:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 0.3:
                break
        else:
            last, stalled_since = written[0], None
        time.sleep(0.005)
    assert stalled_since is not None and written[0] == last, "target writes never blocked"
    assert peak <= wsproxy.TARGET_CHUNK + 64, "relay buffered %d bytes in user space" % peak
    # Kernel buffers hold a few hundred KiB; the target wrote little more than that.
    assert written[0] < 16 * 1024 * 1024
    # Now the client reads: everything written arrives, in order.
    stop.set()
    buf = bytearray()
    total = 0
    digest = hashlib.sha256()
    # The writer counts a chunk only after sendall returns, so the last chunk
    # may all be here before it is counted: wait in short slices, not in one
    # read that could outlast the writer.
    h.client.settimeout(0.2)
    deadline = time.monotonic() + 20
    while (writer.is_alive() or total < written[0]) and time.monotonic() < deadline:
        try:
            buf += h.client.recv(1 << 20)
        except socket.timeout:
            continue
        for opcode, payload in _complete_frames(buf):
            assert opcode == 0x2
            digest.update(payload)
            total += len(payload)
    assert total == written[0]
    assert digest.digest() == hashlib.sha256(chunk * (total // len(chunk))).digest()


def test_heartbeat_closes_client_that_never_answers_pings(harness):
    n = 0.4
    h = harness(heartbeat=n)
    buf = bytearray()
    pings = 0
    start = time.monotonic()
    h.client.settimeout(5)
    while True:
        try:
            _, opcode, payload = read_ws_frame(h.client, buf)
        except (EOFError, ConnectionResetError):
            break
        if opcode == 0x9:
            pings += 1  # and never answer
    elapsed = time.monotonic() - start
    assert pings >= 1, "the relay sends pings"
    assert 1.5 * n <= elapsed <= 2 * n + 1.0, "closed after %.2fs, expected about %.1fs" % (elapsed, 2 * n)
    assert "pong" in h.join().close_reason
    assert recv_until_eof(h.target) == b"", "target is closed too"


def test_heartbeat_keeps_a_client_that_answers(harness):
    n = 0.3
    h = harness(heartbeat=n)
    buf = bytearray()
    end = time.monotonic() + 4 * n
    pings = 0
    h.client.settimeout(0.2)
    while time.monotonic() < end:
        try:
            _, opcode, payload = read_ws_frame(h.client, buf)
        except socket.timeout:
            continue
        if opcode == 0x9:
            pings += 1
            h.client.sendall(ws_frame(0xA, payload))
    assert pings >= 2
    assert h.thread.is_alive(), "a client answering pings must stay connected"
    h.send(b"still here")
    assert recv_exact(h.target, 10) == b"still here"


def test_idle_timeout_closes_after_silence(harness):
    n = 0.5
    h = harness(idle_timeout=n)
    # Traffic more often than N keeps it open, even when spaced over N/2
    # (activity is stamped when it happens, not when the wait began).
    for _ in range(4):
        time.sleep(n * 0.7)
        h.send(b"x")
        assert recv_exact(h.target, 1) == b"x"
    quiet_from = time.monotonic()
    buf = bytearray()
    code, reason = read_close_code(h.client, buf)
    elapsed = time.monotonic() - quiet_from
    assert code == 1001 and "idle" in reason
    assert n * 0.8 <= elapsed <= n + 1.0, "idle close after %.2fs, expected %.1fs" % (elapsed, n)
    h.client.sendall(ws_frame(0x8, struct.pack("!H", 1001)))
    h.join()
    assert recv_until_eof(h.target) == b""


# ---------------------------------------------------------------------------
# Through the proxy subprocess, fixed target = loopback echo server
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_proxy(module_start_proxy, module_echo_server):
    return module_start_proxy("--no-web", "--max-message-size", "4000000",
                              "127.0.0.1:%d" % module_echo_server.port)


def _recv_bytes(ws, count: int) -> bytes:
    out = bytearray()
    while len(out) < count:
        message = ws.recv(timeout=10)
        assert isinstance(message, bytes), "the proxy relays binary frames"
        out += message
    return bytes(out)


def _sizes(rng, count, high=1 << 20):
    """Log-uniform sizes from 1 B to ``high``, always including both ends."""
    sizes = [1, high] + [int(2 ** rng.uniform(0, 20)) for _ in range(count - 2)]
    rng.shuffle(sizes)
    return [min(max(s, 1), high) for s in sizes]


def test_websockets_random_sizes_checksummed(echo_proxy):
    rng = random.Random(10)
    with connect(echo_proxy.url(), max_size=None, subprotocols=["binary"]) as ws:
        assert ws.subprotocol == "binary"
        for size in _sizes(rng, 16):
            payload = rng.randbytes(size)
            ws.send(payload)
            echoed = _recv_bytes(ws, size)
            assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest(), size


def test_websockets_many_small_messages_in_order(echo_proxy):
    with connect(echo_proxy.url(), max_size=None) as ws:
        messages = [b"%06d;" % i for i in range(2000)]
        for m in messages:
            ws.send(m)
        assert _recv_bytes(ws, sum(map(len, messages))) == b"".join(messages)


def test_text_frames_relayed_as_bytes(echo_proxy):
    with connect(echo_proxy.url()) as ws:
        ws.send("héllo wörld ☃")
        assert _recv_bytes(ws, len("héllo wörld ☃".encode())) == "héllo wörld ☃".encode()


def _wsproto_session(port: int, rng: random.Random, results: list, index: int) -> None:
    """One wsproto client: random messages, randomly fragmented, checksummed."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        ws = wsproto.WSConnection(ConnectionType.CLIENT)
        sock.sendall(ws.send(wse.Request(host="127.0.0.1", target="/websockify", subprotocols=["binary"])))
        accepted = False
        while not accepted:
            ws.receive_data(sock.recv(65536))
            for event in ws.events():
                if isinstance(event, wse.AcceptConnection):
                    accepted = event.subprotocol == "binary"
                else:
                    raise AssertionError("handshake failed: %r" % event)
        sent = hashlib.sha256()
        got = hashlib.sha256()
        total = 0
        received = 0
        for size in [rng.choice([1, 2, 100, 5000]) for _ in range(3)] + [int(2 ** rng.uniform(0, 18)) for _ in range(5)]:
            payload = rng.randbytes(size)
            sent.update(payload)
            total += size
            # Split one message into random fragments (continuation frames).
            cuts = sorted(rng.sample(range(1, size), min(size - 1, rng.randint(0, 6)))) if size > 1 else []
            pieces = [payload[a:b] for a, b in zip([0] + cuts, cuts + [size])]
            for i, piece in enumerate(pieces):
                sock.sendall(ws.send(wse.Message(data=piece, message_finished=i == len(pieces) - 1)))
            while received < total:
                data = sock.recv(65536)
                if not data:
                    raise AssertionError("proxy closed early")
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, wse.BytesMessage):
                        got.update(event.data)
                        received += len(event.data)
                    elif isinstance(event, wse.Ping):
                        sock.sendall(ws.send(event.response()))
                    else:
                        raise AssertionError("unexpected %r" % event)
        sock.sendall(ws.send(wse.CloseConnection(code=1000)))
        closed = None
        while closed is None:
            data = sock.recv(65536)
            if not data:
                break
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, wse.CloseConnection):
                    closed = event.code
        sock.close()
        results[index] = (sent.hexdigest() == got.hexdigest(), received == total, closed)
    except Exception as exc:  # reported by the test thread
        results[index] = exc


def test_wsproto_concurrent_fragmented_connections(echo_proxy):
    count = 20
    results = [None] * count
    threads = [threading.Thread(target=_wsproto_session, args=(echo_proxy.port, random.Random(100 + i), results, i))
               for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i, result in enumerate(results):
        if isinstance(result, Exception):
            raise result
        assert result == (True, True, 1000), "connection %d: %r" % (i, result)


# ---------------------------------------------------------------------------
# Frame-level rules, as a user of a broken client would see them
# ---------------------------------------------------------------------------


def test_unmasked_client_frame_closes_1002(echo_proxy):
    sock, buf = raw_websocket(echo_proxy.port)
    with sock:
        sock.sendall(ws_frame(0x2, b"not masked", mask=False))
        code, _ = read_close_code(sock, buf)
        assert code == 1002


def test_invalid_utf8_text_closes_1007(echo_proxy):
    sock, buf = raw_websocket(echo_proxy.port)
    with sock:
        sock.sendall(ws_frame(0x1, b"ok \xff\xfe bad"))
        code, _ = read_close_code(sock, buf)
        assert code == 1007


def test_ping_gets_pong_with_same_payload(echo_proxy):
    sock, buf = raw_websocket(echo_proxy.port)
    with sock:
        sock.sendall(ws_frame(0x9, b"are you there"))
        fin, opcode, payload = read_ws_frame(sock, buf)
        assert (fin, opcode, payload) == (True, 0xA, b"are you there")
    with connect(echo_proxy.url()) as ws:
        assert ws.ping(b"x").wait(5)


def test_oversized_message_closes_1009(start_proxy, echo_server):
    proxy = start_proxy("--no-web", "--max-message-size", "1000", "127.0.0.1:%d" % echo_server.port)
    with connect(proxy.url()) as ws:
        ws.send(b"a" * 1000)
        assert _recv_bytes(ws, 1000) == b"a" * 1000, "exactly the limit is fine"
        ws.send(b"b" * 1001)
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as info:
            while True:
                ws.recv(timeout=5)
        assert info.value.rcvd.code == 1009
    # Fragmented: the limit is on the message, not the frame.
    sock, buf = raw_websocket(proxy.port)
    with sock:
        sock.sendall(ws_frame(0x2, b"c" * 600, fin=False) + ws_frame(0x0, b"c" * 600))
        code, _ = read_close_code(sock, buf)
        assert code == 1009


# ---------------------------------------------------------------------------
# The log: one line when a connection opens, one when it closes
# ---------------------------------------------------------------------------


def test_log_has_one_open_and_one_close_line_per_connection(start_proxy, echo_server, tmp_path):
    secret = "Tk_9f3a1c7e2b5d8a4f6"  # 20 characters
    assert len(secret) == 20
    tokens = tmp_path / "tokens.conf"
    tokens.write_text("%s: 127.0.0.1:%d\n" % (secret, echo_server.port))
    proxy = start_proxy("--no-web", "--token-source", str(tokens))
    sizes = [(10, 0), (1234, 1), (70000, 2)]
    for size, _ in sizes:
        with connect(proxy.url("/websockify?token=%s&password=hunter2xyz" % secret), max_size=None) as ws:
            ws.send(b"z" * size)
            assert _recv_bytes(ws, size) == b"z" * size
    log = proxy.wait_stderr(lambda text: text.count(": closed ") >= 3)
    opens = [line for line in log.splitlines() if ": open -> " in line]
    closes = [line for line in log.splitlines() if ": closed " in line]
    assert len(opens) == 3 and len(closes) == 3, log
    for (size, _), line in zip(sizes, closes):
        match = re.search(r"code=(\d+) up=(\d+)B down=(\d+)B", line)
        assert match, line
        assert match.groups() == ("1000", str(size), str(size)), line
    for line in opens:
        assert "127.0.0.1:%d" % echo_server.port in line
    assert secret not in log, "the full token must never be logged"
    assert "hunter2xyz" not in log, "query strings (passwords) must never be logged"
    assert "Tk_" in log, "a redacted prefix tells connections apart"


# ---------------------------------------------------------------------------
# Close ordering and timers through the proxy process
# ---------------------------------------------------------------------------


class OneShotTarget:
    """Accepts one connection; sends ``greeting`` then closes, or records until EOF."""

    def __init__(self, greeting: bytes = b""):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.greeting = greeting
        self.received = bytearray()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            try:
                if self.greeting:
                    conn.sendall(self.greeting)
                    return
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    self.received += data
            except OSError:
                pass
            finally:
                self.done.set()

    def close(self):
        self.sock.close()
        self.thread.join(5)


def test_proxy_target_close_delivers_everything_then_1000(start_proxy):
    greeting = random.Random(20).randbytes(700_000)
    target = OneShotTarget(greeting)
    try:
        proxy = start_proxy("--no-web", "127.0.0.1:%d" % target.port)
        with connect(proxy.url(), max_size=None) as ws:
            got = bytearray()
            with pytest.raises(websockets.exceptions.ConnectionClosedOK) as info:
                while True:
                    got += ws.recv(timeout=5)
            assert bytes(got) == greeting
            assert info.value.rcvd.code == 1000
    finally:
        target.close()


def test_proxy_client_close_delivers_everything_then_eof(start_proxy):
    target = OneShotTarget()
    try:
        proxy = start_proxy("--no-web", "127.0.0.1:%d" % target.port)
        data = random.Random(21).randbytes(500_000)
        with connect(proxy.url(), max_size=None) as ws:
            for i in range(0, len(data), 50_000):
                ws.send(data[i:i + 50_000])
        assert target.done.wait(5), "target never saw EOF"
        assert bytes(target.received) == data
    finally:
        target.close()


def test_proxy_idle_timeout_option(start_proxy, echo_server):
    proxy = start_proxy("--no-web", "--idle-timeout", "0.6", "127.0.0.1:%d" % echo_server.port)
    with connect(proxy.url()) as ws:
        for _ in range(3):  # traffic every 0.4 s keeps it open
            time.sleep(0.4)
            ws.send(b"k")
            assert ws.recv(timeout=5) == b"k"
        start = time.monotonic()
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd.code == 1001
        assert 0.4 <= time.monotonic() - start <= 2.0


def test_pongs_owed_while_the_client_is_backed_up_never_reach_the_target(harness):
    """The pong for a ping waits while the client has unsent data; it goes to
    the client when that is sent, and the target gets only the payload."""
    h = harness()
    h.client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # Back the client up: the target sends more than the socket buffers hold.
    blob = b"d" * (4 << 20)
    writer = threading.Thread(target=lambda: h.target.sendall(blob), daemon=True)
    writer.start()
    time.sleep(0.3)
    for n in range(5):
        h.client.sendall(ws_frame(0x9, b"ping%d" % n) + ws_frame(0x2, b"msg%d;" % n))
    expected = b"".join(b"msg%d;" % n for n in range(5))
    got = recv_exact(h.target, len(expected))
    assert got == expected
    # The client reads everything: the data, then the latest pong.
    buffer = bytearray()
    data, pongs = 0, []
    while data < len(blob) or not pongs:
        fin, opcode, payload = read_ws_frame(h.client, buffer)
        if opcode == 0x2:
            data += len(payload)
        elif opcode == 0xA:
            pongs.append(payload)
    assert pongs[-1] == b"ping4"
    h.client.sendall(ws_frame(0x2, b"end"))
    assert recv_exact(h.target, 3) == b"end"    # nothing else came before it
    writer.join(5)
