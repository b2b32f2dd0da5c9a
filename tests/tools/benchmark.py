#!/usr/bin/env python3
"""wsproxy benchmark: wsproxy side by side with socat, websockify and a direct connection.

Run by hand (not part of the pytest run: the name has no ``test_`` prefix)::

    python3 tests/tools/benchmark.py                 # every workload, ROUNDS rounds each
    python3 tests/tools/benchmark.py --quick         # small sizes: a smoke run
    python3 tests/tools/benchmark.py --only down --rounds 5

Workloads (issue 5): down, up, latency, mixed, setup, concurrency, idle,
footprint.  Contenders run interleaved round by round in one run; the report
gives medians and per-round ratios, the machine and the date, and a Markdown
table of the issue's targets.

How it measures:
  * The target is a separate process (this script with ``--serve-target``):
    one epoll loop for echo and idle connections, a thread per bulk
    connection.  It speaks first (one greeting byte, as an RFB server does),
    then reads a 9-byte command: kind (1 byte) and argument (8 bytes).
  * socat and the direct connection carry raw bytes; for websockify and
    wsproxy the client speaks WebSocket (handshake, then masked frames up and
    header-only parsing down), so the framing cost is part of what is measured.
  * The client is this process: raw sockets, preallocated frames,
    sendall/recv_into.  "direct" is the client+target ceiling; the script
    warns when it is not well above socat.
  * Proxy CPU is utime+stime from /proc/PID/stat summed over the proxy's
    process tree (websockify and socat fork per connection); memory is PSS
    from /proc/PID/smaps_rollup summed over the tree.
  * Every process started here is stopped by PID (and its own process group,
    for forked children) in ``finally``, also on Ctrl-C.  Loopback only.

websockify (with numpy) is installed from PyPI into a throw-away venv under
/tmp on first use (``--venv`` to choose where).
"""

import argparse
import base64
import datetime
import os
import platform
import resource
import selectors
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WSPROXY_PY = os.path.join(ROOT, "wsproxy.py")
WSPROXY_EXE = [WSPROXY_PY]   # --wsproxy PATH benchmarks another copy (before/after a change)
HOST = "127.0.0.1"
CONTENDERS = ("direct", "socat", "websockify", "wsproxy")
PROXIES = ("socat", "websockify", "wsproxy")
# footprint first: start-up is timed on a quiet machine, not while the kernel
# is still tearing down the 10,000 idle connections of the workload before.
WORKLOADS = ("footprint", "down", "up", "latency", "mixed", "setup", "concurrency", "idle")
MiB = 1024 * 1024
NOFILE = 65536  # 10,000 idle connections cost the proxy two descriptors each; root may raise the hard limit
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# Target commands (first byte of the 9-byte command after the greeting).
CMD_DOWN = b"D"     # arg: bytes to send, then wait for the client to close
CMD_UP = b"U"       # arg: bytes to read, then reply b"K"
CMD_ECHO = b"E"     # echo everything after the command
CMD_MIXED = b"M"    # arg: milliseconds of 1 MiB update records; echo 10-byte inputs as records
GREETING = b"\x00"
REC_UPDATE, REC_ECHO, REC_END = 0x55, 0x45, 0x5A   # record kinds in the mixed stream: U, E, Z
REC_HEAD = struct.Struct(">BI")
UPDATE_BYTES = MiB
INPUT_BYTES = 10


# ===========================================================================
# Target process
# ===========================================================================


def serve_target() -> int:
    raise_nofile()
    listener = socket.create_server((HOST, 0), backlog=4096)
    listener.setblocking(False)
    sys.stdout.write("%d\n" % listener.getsockname()[1])
    sys.stdout.flush()
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    state = {}   # sock -> [header bytearray or None when echoing, pending output bytearray]
    blob = bytes(MiB)

    def bulk(sock, cmd, arg, early):
        try:
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if cmd == CMD_DOWN:
                view = memoryview(blob)
                left = arg
                while left > 0:
                    n = MiB if left >= MiB else left
                    sock.sendall(view[:n])
                    left -= n
                while sock.recv(65536):
                    pass
            elif cmd == CMD_UP:
                buf = bytearray(MiB)
                left = arg - len(early)
                while left > 0:
                    n = sock.recv_into(buf)
                    if not n:
                        return
                    left -= n
                sock.sendall(b"K")
                while sock.recv(65536):
                    pass
            elif cmd == CMD_MIXED:
                mixed(sock, arg / 1000.0, early)
        except OSError:
            pass
        finally:
            sock.close()

    def mixed(sock, duration, early):
        inputs = []
        lock = threading.Lock()
        stop = threading.Event()

        def reader():
            pending = bytearray()
            data = early
            try:
                while not stop.is_set():
                    if not data:
                        data = sock.recv(65536)
                    if not data:
                        break
                    pending += data
                    data = b""
                    usable = len(pending) - len(pending) % INPUT_BYTES
                    if usable:
                        with lock:
                            for i in range(0, usable, INPUT_BYTES):
                                inputs.append(bytes(pending[i:i + INPUT_BYTES]))
                        del pending[:usable]
            except OSError:
                pass

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        update = REC_HEAD.pack(REC_UPDATE, UPDATE_BYTES) + bytes(UPDATE_BYTES)
        end = time.monotonic() + duration
        try:
            while time.monotonic() < end:
                with lock:
                    batch, inputs[:] = list(inputs), []
                if batch:
                    sock.sendall(b"".join(REC_HEAD.pack(REC_ECHO, INPUT_BYTES) + item for item in batch))
                sock.sendall(update)
            time.sleep(0.05)
            with lock:
                batch = list(inputs)
            sock.sendall(b"".join(REC_HEAD.pack(REC_ECHO, INPUT_BYTES) + item for item in batch)
                         + REC_HEAD.pack(REC_END, 0))
            while sock.recv(65536):
                pass
        finally:
            stop.set()

    def drop(sock):
        try:
            sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        state.pop(sock, None)
        sock.close()

    while True:
        for key, events in sel.select():
            sock = key.fileobj
            if sock is listener:
                for _ in range(256):
                    try:
                        conn, _ = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        time.sleep(0.01)
                        break
                    conn.setblocking(False)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    try:
                        conn.send(GREETING)
                    except OSError:
                        conn.close()
                        continue
                    state[conn] = [bytearray(), bytearray()]
                    sel.register(conn, selectors.EVENT_READ, None)
                continue
            st = state.get(sock)
            if st is None:
                continue
            if events & selectors.EVENT_WRITE:
                try:
                    sent = sock.send(st[1])
                    del st[1][:sent]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    drop(sock)
                    continue
                if not st[1]:
                    sel.modify(sock, selectors.EVENT_READ, None)
            if not events & selectors.EVENT_READ:
                continue
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                drop(sock)
                continue
            head = st[0]
            if head is not None:
                head += data
                if len(head) < 9:
                    continue
                cmd, arg = bytes(head[:1]), struct.unpack(">Q", head[1:9])[0]
                data = bytes(head[9:])
                st[0] = None
                if cmd != CMD_ECHO:
                    sel.unregister(sock)
                    state.pop(sock, None)
                    threading.Thread(target=bulk, args=(sock, cmd, arg, data), daemon=True).start()
                    continue
                if not data:
                    continue
            if st[1]:
                st[1] += data
                continue
            try:
                sent = sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                drop(sock)
                continue
            if sent < len(data):
                st[1] += data[sent:]
                sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, None)


# ===========================================================================
# Process bookkeeping: start, stop by PID, CPU and memory from /proc
# ===========================================================================

_STARTED = []   # every Popen this script started, stopped in stop_all()


def raise_nofile(limit: int = NOFILE) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(limit, soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start(argv, env=None, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.DEVNULL,
                            env=env, preexec_fn=raise_nofile, start_new_session=True)
    _STARTED.append(proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.terminate()
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(3)
    # Forked children (socat, websockify) live in the process group we made.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc in _STARTED:
        _STARTED.remove(proc)


def stop_all() -> None:
    for proc in list(_STARTED):
        try:
            stop(proc)
        except Exception as exc:  # noqa: BLE001 -- keep stopping the rest
            print("could not stop pid %d: %s" % (proc.pid, exc), file=sys.stderr)


def tree(pid: int):
    """pid and all its live descendants."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                text = f.read()
        except OSError:
            continue
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def cpu_seconds(pid: int) -> float:
    """utime+stime (+ reaped children's) over the live tree of ``pid``."""
    total = 0
    for p in tree(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        total += sum(int(x) for x in fields[11:15])   # utime stime cutime cstime
    return total / CLK_TCK


def pss_kb(pid: int) -> int:
    total = 0
    for p in tree(pid):
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def rss_kb(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> float:
    """Seconds until ``port`` accepts a connection."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s before listening" % (proc.args[0], proc.returncode))
        with socket.socket() as sock:
            try:
                sock.connect((HOST, port))
                return time.perf_counter() - t0
            except OSError:
                pass
        time.sleep(0.001)
    raise RuntimeError("%s did not listen on %d within %gs" % (proc.args, port, timeout))


# ===========================================================================
# Contenders
# ===========================================================================


def ensure_websockify(venv: str) -> str:
    exe = os.path.join(venv, "bin", "websockify")
    if not os.path.exists(exe):
        print("installing websockify and numpy into %s ..." % venv, flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", venv])
        subprocess.check_call([os.path.join(venv, "bin", "pip"), "install", "-q", "websockify", "numpy"],
                              env=clean_env())
    return exe


def clean_env():
    env = dict(os.environ)
    # numpy's OpenBLAS aborts on some of these machines when these are set.
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    return env


class Contender:
    def __init__(self, name: str, target_port: int, websockify_exe: str = ""):
        self.name = name
        self.target_port = target_port
        self.websockify_exe = websockify_exe
        self.ws = name in ("websockify", "wsproxy")
        self.proc = None
        self.port = target_port if name == "direct" else 0
        self.ready_s = 0.0

    def command(self, port: int):
        target = "%s:%d" % (HOST, self.target_port)
        if self.name == "socat":
            return ["socat", "-b", "1048576", "TCP-LISTEN:%d,bind=%s,reuseaddr,fork,nodelay,backlog=4096"
                    % (port, HOST), "TCP:%s,nodelay" % target]
        if self.name == "websockify":
            return [self.websockify_exe, "%s:%d" % (HOST, port), target]
        return [sys.executable, WSPROXY_EXE[0], "--no-web", "%s:%d" % (HOST, port), target]

    def start(self):
        if self.name == "direct":
            return self
        self.port = free_port()
        env = clean_env() if self.name == "websockify" else None
        self.proc = start(self.command(self.port), env=env)
        self.ready_s = wait_listening(self.port, self.proc)
        return self

    def stop(self):
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) if self.proc else 0.0

    def pss(self) -> int:
        return pss_kb(self.proc.pid) if self.proc else 0


# ===========================================================================
# Client: raw TCP or a minimal fast WebSocket client
# ===========================================================================

WS_KEY = base64.b64encode(b"wsproxy-bench-16").decode()
MASK = b"\x37\xfa\x21\x3d"


def ws_request(port: int) -> bytes:
    return ("GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n"
            "Origin: http://%s:%d\r\n\r\n" % (HOST, port, WS_KEY, HOST, port)).encode()


def mask(data: bytes, key: bytes = MASK) -> bytes:
    n = len(data)
    rep = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(rep, "little")).to_bytes(n, "little")


def client_frame(payload: bytes, opcode: int = 2) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + MASK + mask(payload)


CLOSE_FRAME = client_frame(struct.pack(">H", 1000), opcode=8)


class Unframer:
    """Push parser for server frames: counts payload and hands segments to a sink.

    Payload is never copied; only a header split across reads is.
    Control frames are skipped (a Close sets ``closed``).
    """

    __slots__ = ("left", "skip", "hdr", "closed")

    def __init__(self):
        self.left = 0
        self.skip = False
        self.hdr = b""
        self.closed = False

    def feed(self, mv, sink=None) -> int:
        if self.hdr:
            mv = memoryview(self.hdr + bytes(mv))
            self.hdr = b""
        pos, n, got = 0, len(mv), 0
        while pos < n:
            left = self.left
            if left:
                take = left if n - pos >= left else n - pos
                if not self.skip:
                    if sink is not None:
                        sink(mv[pos:pos + take])
                    got += take
                pos += take
                self.left = left - take
                continue
            if n - pos < 2:
                self.hdr = bytes(mv[pos:])
                break
            b0, b1 = mv[pos], mv[pos + 1]
            length = b1 & 0x7F
            hl = 4 if length == 126 else 10 if length == 127 else 2
            if b1 & 0x80:
                hl += 4
            if n - pos < hl:
                self.hdr = bytes(mv[pos:])
                break
            if length == 126:
                length = (mv[pos + 2] << 8) | mv[pos + 3]
            elif length == 127:
                length = int.from_bytes(mv[pos + 2:pos + 10], "big")
            pos += hl
            opcode = b0 & 0x0F
            self.skip = opcode >= 8
            if opcode == 8:
                self.closed = True
            self.left = length
        return got


class Client:
    """One connection to a contender: raw bytes, or WebSocket framing."""

    def __init__(self, contender: Contender, bufsize: int = MiB):
        self.ws = contender.ws
        self.sock = socket.create_connection((HOST, contender.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(bufsize)
        self.view = memoryview(self.buf)
        self.unframer = Unframer()
        if self.ws:
            self.sock.sendall(ws_request(contender.port))
            head = b""
            while b"\r\n\r\n" not in head:
                data = self.sock.recv(4096)
                if not data:
                    raise EOFError("closed during the handshake")
                head += data
            head, _, rest = head.partition(b"\r\n\r\n")
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                raise RuntimeError("handshake refused: %r" % head[:80])
            self.pending = rest
        else:
            self.pending = b""

    def send(self, payload: bytes) -> None:
        self.sock.sendall(client_frame(payload) if self.ws else payload)

    def recv_payload(self, sink=None) -> int:
        """One read; returns payload bytes received (0 only for control frames); EOFError at the end."""
        if self.pending:
            data, self.pending = self.pending, b""
            mv = memoryview(data)
        else:
            n = self.sock.recv_into(self.buf)
            if not n:
                raise EOFError
            mv = self.view[:n]
        if not self.ws:
            if sink is not None:
                sink(mv)
            return len(mv)
        got = self.unframer.feed(mv, sink)
        if self.unframer.closed:
            raise EOFError
        return got

    def recv_exact(self, count: int) -> None:
        while count > 0:
            count -= self.recv_payload()

    def command(self, cmd: bytes, arg: int) -> None:
        self.recv_exact(1)                        # the target's greeting
        self.send(cmd + struct.pack(">Q", arg))

    def close(self) -> None:
        try:
            if self.ws:
                self.sock.sendall(CLOSE_FRAME)
        except OSError:
            pass
        self.sock.close()


# ===========================================================================
# Workloads: each returns a dict of metrics for one contender in one round
# ===========================================================================


def run_down(c: Contender, size: int) -> dict:
    cl = Client(c)
    cl.command(CMD_DOWN, size)
    cpu0, me0 = c.cpu(), own_cpu()
    t0 = time.perf_counter()
    got = 0
    recv = cl.recv_payload
    while got < size:
        got += recv()
    elapsed = time.perf_counter() - t0
    cpu, me = c.cpu() - cpu0, own_cpu() - me0
    cl.close()
    return {"MB/s": size / elapsed / 1e6, "CPU s/GB": cpu / (size / 1e9) if c.proc else None,
            "client CPU s/GB": me / (size / 1e9)}


def run_up(c: Contender, size: int) -> dict:
    cl = Client(c)
    cl.command(CMD_UP, size)
    chunk = bytes(range(256)) * 256          # 64 KiB
    frame = client_frame(chunk) if c.ws else chunk
    batch = frame * 16                        # 1 MiB of payload per sendall
    per_batch = 16 * len(chunk)
    count = size // per_batch
    size = count * per_batch
    cpu0, me0 = c.cpu(), own_cpu()
    t0 = time.perf_counter()
    sendall = cl.sock.sendall
    for _ in range(count):
        sendall(batch)
    cl.recv_exact(1)                          # the target's b"K": everything arrived
    elapsed = time.perf_counter() - t0
    cpu, me = c.cpu() - cpu0, own_cpu() - me0
    cl.close()
    return {"MB/s": size / elapsed / 1e6, "CPU s/GB": cpu / (size / 1e9) if c.proc else None,
            "client CPU s/GB": me / (size / 1e9)}


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values, q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def run_latency(c: Contender, count: int) -> dict:
    cl = Client(c, bufsize=65536)
    cl.command(CMD_ECHO, 0)
    payload = b"0123456789abcdef"
    frame = client_frame(payload) if c.ws else payload
    sendall, recv = cl.sock.sendall, cl.recv_payload
    clock = time.perf_counter_ns
    times = []
    for _ in range(count):
        t0 = clock()
        sendall(frame)
        got = 0
        while got < 16:
            got += recv()
        times.append(clock() - t0)
    cl.close()
    return {"p50 us": percentile(times, 0.5) / 1000, "p99 us": percentile(times, 0.99) / 1000}


def run_mixed(c: Contender, duration: float) -> dict:
    cl = Client(c, bufsize=256 * 1024)
    cl.command(CMD_MIXED, int(duration * 1000))
    sock = cl.sock
    poller = select_poll(sock)
    sent_at = {}
    rtts = []
    state = {"rec_left": 0, "hdr": b"", "echo": None, "kind": 0, "done": False, "bytes": 0}
    clock = time.perf_counter

    def sink(mv):
        # Records: 5-byte head (kind, length), then payload; echoes carry the input event.
        pos, n = 0, len(mv)
        st = state
        st["bytes"] += n
        while pos < n:
            left = st["rec_left"]
            if left:
                take = left if n - pos >= left else n - pos
                if st["kind"] == REC_ECHO:
                    st["echo"] += bytes(mv[pos:pos + take])
                    if len(st["echo"]) == INPUT_BYTES:
                        seq = struct.unpack_from(">I", st["echo"])[0]
                        t = sent_at.pop(seq, None)
                        if t is not None:
                            rtts.append(clock() - t)
                pos += take
                st["rec_left"] = left - take
                continue
            need = 5 - len(st["hdr"])
            st["hdr"] += bytes(mv[pos:pos + need])
            pos += min(need, n - pos)
            if len(st["hdr"]) < 5:
                break
            kind, length = REC_HEAD.unpack(st["hdr"])
            st["hdr"] = b""
            st["kind"], st["rec_left"] = kind, length
            if kind == REC_ECHO:
                st["echo"] = b""
            elif kind == REC_END:
                st["done"] = True

    seq = 0
    t_start = clock()
    next_due = t_start
    end = t_start + duration
    deadline = end + 30
    sock.setblocking(False)
    while not state["done"]:
        now = clock()
        if now > deadline:
            raise RuntimeError("mixed: no end record")
        if now < end and now >= next_due:
            event = struct.pack(">I", seq) + b"\x01" * (INPUT_BYTES - 4)
            sent_at[seq] = now
            data = client_frame(event) if c.ws else event
            sock.setblocking(True)
            sock.sendall(data)
            sock.setblocking(False)
            seq += 1
            next_due += 0.001
            if next_due < now - 0.05:
                next_due = now   # we fell far behind: do not burst
        wait = max(0.0, next_due - clock()) if now < end else 0.05
        if not poller.poll(wait * 1000):
            continue
        try:
            cl.recv_payload(sink)
        except BlockingIOError:
            pass
    elapsed = clock() - t_start
    sock.setblocking(True)
    cl.close()
    lost = len(sent_at)
    return {"input p50 ms": percentile(rtts, 0.5) * 1000, "input p99 ms": percentile(rtts, 0.99) * 1000,
            "down MB/s": state["bytes"] / elapsed / 1e6, "inputs": seq, "lost": lost}


def select_poll(sock):
    import select
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return poller


def run_setup(c: Contender, duration: float) -> dict:
    count = 0
    cpu0 = c.cpu()
    t0 = time.perf_counter()
    end = t0 + duration
    while time.perf_counter() < end and count < 100000:
        cl = Client(c, bufsize=4096)
        cl.recv_exact(1)
        cl.close()
        count += 1
    elapsed = time.perf_counter() - t0
    cpu = c.cpu() - cpu0
    return {"conn/s": count / elapsed, "CPU ms/conn": cpu * 1000 / count if c.proc else None}


class Conn:
    """A non-blocking connection for the many-connection workloads."""

    __slots__ = ("sock", "stage", "head", "unframer", "got", "sent", "expect", "failed")

    def __init__(self, sock):
        self.sock = sock
        self.stage = "connect"
        self.head = b""
        self.unframer = Unframer()
        self.got = 0          # payload bytes received (greeting included)
        self.sent = 0         # pings sent
        self.expect = 1       # payload bytes expected so far
        self.failed = ""


def open_many(c: Contender, count: int, deadline: float, command: bytes = b""):
    """Open ``count`` connections at once (bounded by ``deadline``); each ready after the greeting
    (and ``command`` sent).  Returns the Conn list."""
    sel = selectors.DefaultSelector()
    conns = []
    request = ws_request(c.port)
    command_data = (client_frame(command) if c.ws else command) if command else b""
    buf = bytearray(65536)
    view = memoryview(buf)
    pending = 0
    opened = 0
    max_inflight = 256
    while (opened < count or pending) and time.monotonic() < deadline:
        while opened < count and pending < max_inflight:
            sock = socket.socket()
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Conn(sock)
            conns.append(conn)
            opened += 1
            err = sock.connect_ex((HOST, c.port))
            if err not in (0, 115):     # EINPROGRESS
                conn.failed = "connect: %s" % os.strerror(err)
                sock.close()
                continue
            sel.register(sock, selectors.EVENT_WRITE, conn)
            pending += 1
        for key, events in sel.select(0.2):
            conn = key.data
            sock = conn.sock
            try:
                if conn.stage == "connect":
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, os.strerror(err))
                    if c.ws:
                        sock.send(request)
                        conn.stage = "head"
                    else:
                        conn.stage = "greet"
                    sel.modify(sock, selectors.EVENT_READ, conn)
                    continue
                n = sock.recv_into(buf)
                if not n:
                    raise OSError("closed")
                mv = view[:n]
                if conn.stage == "head":
                    conn.head += bytes(mv)
                    if b"\r\n\r\n" not in conn.head:
                        continue
                    head, _, rest = conn.head.partition(b"\r\n\r\n")
                    status = head.split(b"\r\n", 1)[0]
                    if b" 101 " not in status:
                        body = rest[:80].decode("latin-1").strip()
                        raise OSError("handshake refused: %s %s" % (status.decode("latin-1"), body))
                    conn.head = b""
                    conn.stage = "greet"
                    mv = memoryview(rest)
                conn.got += conn.unframer.feed(mv) if c.ws else len(mv)
                if conn.got >= 1:
                    if command_data:
                        sock.send(command_data)
                    conn.stage = "ready"
                    sel.unregister(sock)
                    pending -= 1
            except OSError as exc:
                conn.failed = str(exc) or "error"
                sel.unregister(sock)
                sock.close()
                pending -= 1
    for key in list(sel.get_map().values()):
        key.data.failed = key.data.failed or "setup timed out"
        sel.unregister(key.fileobj)
        key.fileobj.close()
    sel.close()
    return conns


def close_many(conns) -> None:
    for conn in conns:
        if conn.stage == "ready" and not conn.failed:
            try:
                conn.sock.close()
            except OSError:
                pass


def run_concurrency(c: Contender, count: int, seconds: int) -> dict:
    pss0 = c.pss()
    cpu0 = c.cpu()
    conns = open_many(c, count, time.monotonic() + 30, CMD_ECHO + bytes(8))
    ready = [conn for conn in conns if conn.stage == "ready" and not conn.failed]
    ping = b"ping-0123456789a"
    data = client_frame(ping) if c.ws else ping
    sel = selectors.DefaultSelector()
    for conn in ready:
        conn.sock.setblocking(False)
        sel.register(conn.sock, selectors.EVENT_READ, conn)
    buf = bytearray(65536)
    view = memoryview(buf)
    t0 = time.monotonic()
    # Connection i pings at t0 + i/count + k seconds, k = 0..seconds-1.
    schedule = [(t0 + (i / max(1, len(ready))) + k, i) for k in range(seconds) for i in range(len(ready))]
    schedule.sort()
    index = 0
    end = t0 + seconds + 3
    peak_pss = 0
    next_mem = t0 + seconds / 2
    next_check = t0
    while time.monotonic() < end:
        now = time.monotonic()
        while index < len(schedule) and schedule[index][0] <= now:
            conn = ready[schedule[index][1]]
            index += 1
            if conn.failed:
                continue
            try:
                conn.sock.send(data)
                conn.sent += 1
                conn.expect += len(ping)
            except OSError as exc:
                conn.failed = "send: %s" % exc
        if now >= next_mem:
            peak_pss = max(peak_pss, c.pss())
            next_mem = now + 2
        if index >= len(schedule) and now >= next_check:
            next_check = now + 0.2
            if all(conn.got >= conn.expect or conn.failed for conn in ready):
                break
        wait = max(0.0, min(schedule[index][0] - now, 0.05)) if index < len(schedule) else 0.05
        for key, _ in sel.select(wait):
            conn = key.data
            try:
                n = conn.sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                n, conn.failed = 0, "recv: %s" % exc
            if not n:
                conn.failed = conn.failed or "closed"
                sel.unregister(conn.sock)
                continue
            conn.got += conn.unframer.feed(view[:n]) if c.ws else n
    elapsed = time.monotonic() - t0
    cpu = c.cpu() - cpu0
    peak_pss = max(peak_pss, c.pss())
    ok = sum(1 for conn in ready if not conn.failed and conn.sent == seconds and conn.got >= conn.expect)
    sel.close()
    reasons = {}
    for conn in conns:
        if conn.failed:
            reasons[conn.failed] = reasons.get(conn.failed, 0) + 1
    close_many(conns)
    return {"ok": ok, "of": count, "PSS MB": peak_pss / 1024 if c.proc else None,
            "idle PSS MB": pss0 / 1024 if c.proc else None,
            "CPU s": cpu if c.proc else None, "seconds": elapsed,
            "failures": ", ".join("%s x%d" % kv for kv in sorted(reasons.items())[:3])}


def run_idle(c: Contender, count: int) -> dict:
    time.sleep(0.3)
    pss0 = c.pss()
    conns = open_many(c, count, time.monotonic() + 120)
    held = sum(1 for conn in conns if conn.stage == "ready" and not conn.failed)
    time.sleep(1.0)
    pss1 = c.pss()
    # Still held after the pause?  A closed connection is readable with EOF.
    import select
    poller = select.poll()
    for conn in conns:
        if conn.stage == "ready" and not conn.failed:
            poller.register(conn.sock, select.POLLIN)
    dead = len(poller.poll(0))
    reasons = {}
    for conn in conns:
        if conn.failed:
            reasons[conn.failed] = reasons.get(conn.failed, 0) + 1
    close_many(conns)
    return {"held": held - dead, "of": count, "PSS MB": pss1 / 1024 if c.proc else None,
            "KB/conn": (pss1 - pss0) / max(1, held) if c.proc else None,
            "failures": ", ".join("%s x%d" % kv for kv in sorted(reasons.items())[:3])}


def run_footprint(c: Contender) -> dict:
    c.start()
    time.sleep(0.5)
    return {"ready ms": c.ready_s * 1000, "RSS MB": rss_kb(c.proc.pid) / 1024, "PSS MB": c.pss() / 1024}


# ===========================================================================
# Driver: interleaved rounds, medians, ratios, the target table
# ===========================================================================


def runnable() -> int:
    """Threads running or ready to run on the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("procs_running"):
                return int(line.split()[1])
    return 0


def settle(timeout: float = 30.0) -> None:
    """Wait until the previous measurement's aftermath has passed.

    Ten thousand connections closing leave the machine busy for seconds
    (load average 150 was seen right after the idle workload), which would be
    charged to whatever is measured next, such as the start-up time.  Waits
    until at most two threads are runnable (this one and one other) for 0.3 s.
    """
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        if runnable() <= 2:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 0.3:
                return
        else:
            quiet_since = None
        time.sleep(0.05)


def machine() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = open("/proc/loadavg").read().split()[:3]
    return "%s, nproc %d, %s, Linux %s, Python %s, load average %s" % (
        datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), os.cpu_count(), model,
        platform.release(), platform.python_version(), " ".join(load))


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if abs(value) >= 100:
            return "%.0f" % value
        if abs(value) >= 10:
            return "%.1f" % value
        return "%.2f" % value
    return str(value)


def median(values):
    values = [v for v in values if isinstance(v, (int, float)) and v == v]
    return statistics.median(values) if values else None


# Rounds per workload.  A bulk round takes well under a second, and on a
# shared two-core VM single rounds of it vary by 2x, so the bulk workloads
# get the most; concurrency and idle run once (they start their own proxy).
ROUNDS = {"down": 11, "up": 7, "latency": 5, "mixed": 5, "setup": 5, "footprint": 5}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, help="rounds of every repeated workload (default: %s)"
                        % ", ".join("%s %d" % item for item in ROUNDS.items()))
    parser.add_argument("--only", action="append", choices=WORKLOADS, help="run only this workload (repeatable)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help="comma-separated subset of %s" % ",".join(CONTENDERS))
    parser.add_argument("--idle-contenders", default="wsproxy",
                        help="who holds the idle connections (default wsproxy; socat and websockify fork a "
                             "process per connection)")
    parser.add_argument("--venv", default="/tmp/wsbench-venv", help="throw-away venv for websockify")
    parser.add_argument("--wsproxy", default=WSPROXY_PY, help="wsproxy.py to run (default: the repo's)")
    parser.add_argument("--serve-target", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_target:
        return serve_target()
    workloads = args.only or list(WORKLOADS)
    WSPROXY_EXE[0] = os.path.abspath(args.wsproxy)
    names = [n for n in args.contenders.split(",") if n]
    for n in names:
        if n not in CONTENDERS:
            parser.error("unknown contender %r" % n)
    q = args.quick
    sizes = {
        "down": 32 * MiB if q else 256 * MiB,
        "up": 32 * MiB if q else 256 * MiB,
        "latency": 2000 if q else 20000,
        "mixed": 1.0 if q else 4.0,
        "setup": 0.5 if q else 2.0,
        "concurrency": (100, 3) if q else (1000, 10),
        "idle": 500 if q else 10000,
    }
    raise_nofile()
    # Ctrl-C and SIGTERM both unwind through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    results = {}   # workload -> contender -> list of per-round dicts
    info = machine()
    print("wsproxy benchmark:", info, flush=True)
    try:
        websockify = ensure_websockify(args.venv) if "websockify" in names else ""
        target = start([sys.executable, os.path.abspath(__file__), "--serve-target"], stdout=subprocess.PIPE)
        target_port = int(target.stdout.readline())

        def make(name):
            return Contender(name, target_port, websockify)

        shared = {n: make(n).start() for n in names}
        for workload in workloads:
            rounds = (args.rounds or ROUNDS[workload]) if workload in ROUNDS else 1
            per = results.setdefault(workload, {n: [] for n in names})
            for r in range(rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                for name in order:
                    c = shared[name]
                    fresh = None
                    settle()
                    try:
                        if workload == "down":
                            m = run_down(c, sizes["down"])
                        elif workload == "up":
                            m = run_up(c, sizes["up"])
                        elif workload == "latency":
                            m = run_latency(c, sizes["latency"])
                        elif workload == "mixed":
                            m = run_mixed(c, sizes["mixed"])
                        elif workload == "setup":
                            m = run_setup(c, sizes["setup"])
                        elif workload == "concurrency":
                            fresh = make(name).start()
                            m = run_concurrency(fresh, *sizes["concurrency"])
                        elif workload == "idle":
                            if name not in args.idle_contenders.split(","):
                                continue
                            fresh = make(name).start()
                            m = run_idle(fresh, sizes["idle"])
                        else:
                            if name == "direct":
                                continue
                            fresh = make(name)
                            m = run_footprint(fresh)
                    except (OSError, RuntimeError, EOFError) as exc:
                        m = {"error": "%s: %s" % (type(exc).__name__, exc)}
                    finally:
                        if fresh is not None:
                            fresh.stop()
                    per[name].append(m)
                    print("  %-11s round %d %-10s %s" % (workload, r + 1, name,
                          "  ".join("%s=%s" % (k, fmt(v)) for k, v in m.items())), flush=True)
    except KeyboardInterrupt:
        print("interrupted; stopping what was started", file=sys.stderr)
    finally:
        stop_all()
    info += "; at the end: load average %s" % " ".join(open("/proc/loadavg").read().split()[:3])
    report(results, names, info, args)
    return 0


# (workload, metric, higher is better)
SUMMARY = [
    ("down", "MB/s", True), ("down", "CPU s/GB", False), ("down", "client CPU s/GB", False),
    ("up", "MB/s", True), ("up", "CPU s/GB", False), ("up", "client CPU s/GB", False),
    ("latency", "p50 us", False), ("latency", "p99 us", False),
    ("mixed", "input p50 ms", False), ("mixed", "input p99 ms", False), ("mixed", "down MB/s", True),
    ("setup", "conn/s", True), ("setup", "CPU ms/conn", False),
    ("concurrency", "ok", True), ("concurrency", "PSS MB", False), ("concurrency", "CPU s", False),
    ("idle", "held", True), ("idle", "PSS MB", False), ("idle", "KB/conn", False),
    ("footprint", "RSS MB", False), ("footprint", "PSS MB", False), ("footprint", "ready ms", False),
]


def ratios(per, metric, a, b):
    """Per-round ratios a/b (rounds where both ran)."""
    out = []
    for ra, rb in zip(per.get(a, []), per.get(b, [])):
        va, vb = ra.get(metric), rb.get(metric)
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and vb:
            out.append(va / vb)
    return out


def report(results, names, info, args) -> None:
    print("\n## Results (medians over rounds)\n")
    print("Machine: %s\n" % info)
    print("| workload | metric | " + " | ".join(names) + " | wsproxy/socat per round | wsproxy/websockify per round |")
    print("|---|---|" + "---|" * len(names) + "---|---|")
    for workload, metric, _ in SUMMARY:
        per = results.get(workload)
        if not per:
            continue
        row = [fmt(median([r.get(metric) for r in per.get(n, [])])) for n in names]
        if all(v in ("-",) for v in row):
            continue
        rs = ratios(per, metric, "wsproxy", "socat")
        rw = ratios(per, metric, "wsproxy", "websockify")
        print("| %s | %s | %s | %s | %s |" % (workload, metric, " | ".join(row),
              " ".join("%.2f" % x for x in rs) or "-", " ".join("%.2f" % x for x in rw) or "-"))
    errors = [(w, n, r["error"]) for w, per in results.items() for n, rs in per.items() for r in rs if "error" in r]
    for w, n, e in errors:
        print("\nerror: %s %s: %s" % (w, n, e))
    for workload in ("down", "up"):
        per = results.get(workload, {})
        d = median([r.get("MB/s") for r in per.get("direct", [])])
        s = median([r.get("MB/s") for r in per.get("socat", [])])
        if d and s:
            verdict = "ok" if d >= 1.5 * s else "WARNING: client/target may be the bottleneck"
            print("\ncheck %s: direct %.0f MB/s vs socat %.0f MB/s (%.1fx): %s" % (workload, d, s, d / s, verdict))
    print_targets(results)


def med(results, workload, name, metric):
    return median([r.get(metric) for r in results.get(workload, {}).get(name, [])])


def med_ratio(results, workload, metric, a, b):
    rs = ratios(results.get(workload, {}), metric, a, b)
    return median(rs)


def print_targets(results) -> None:
    print("\n## Targets (issue 5)\n")
    print("| workload | wsproxy | socat | websockify | ratio | target | met? |")
    print("|---|---|---|---|---|---|---|")

    def row(label, workload, metric, ratio_text, target, met):
        vals = [fmt(med(results, workload, n, metric)) for n in ("wsproxy", "socat", "websockify")]
        print("| %s | %s | %s | %s | %s | %s | %s |" % (label, vals[0], vals[1], vals[2], ratio_text, target,
              "?" if met is None else ("yes" if met else "**no**")))

    def r(x):
        return "-" if x is None else "%.2f" % x

    if "down" in results:
        a = med_ratio(results, "down", "MB/s", "wsproxy", "socat")
        b = med_ratio(results, "down", "MB/s", "wsproxy", "websockify")
        row("down MB/s", "down", "MB/s", "%s× socat, %s× websockify" % (r(a), r(b)), "≥ 0.9× socat, ≥ 1.5× websockify",
            None if a is None or b is None else a >= 0.9 and b >= 1.5)
        row("down CPU s/GB", "down", "CPU s/GB", "%s× websockify" % r(med_ratio(results, "down", "CPU s/GB", "wsproxy", "websockify")), "(report)", None)
    if "up" in results:
        b = med_ratio(results, "up", "MB/s", "wsproxy", "websockify")
        row("up MB/s", "up", "MB/s", "%s× websockify" % r(b), "≥ 1.0× websockify (numpy)", None if b is None else b >= 1.0)
        row("up CPU s/GB", "up", "CPU s/GB", "%s× websockify" % r(med_ratio(results, "up", "CPU s/GB", "wsproxy", "websockify")), "(report)", None)
    if "latency" in results:
        a = med_ratio(results, "latency", "p50 us", "wsproxy", "socat")
        row("latency p50 µs", "latency", "p50 us", "%s× socat" % r(a), "≤ 1.25× socat", None if a is None else a <= 1.25)
        row("latency p99 µs", "latency", "p99 us", "%s× socat" % r(med_ratio(results, "latency", "p99 us", "wsproxy", "socat")), "(report)", None)
    if "mixed" in results:
        a = med_ratio(results, "mixed", "input p99 ms", "wsproxy", "socat")
        row("mixed input p99 ms", "mixed", "input p99 ms", "%s× socat" % r(a), "≤ 1.5× socat", None if a is None else a <= 1.5)
        row("mixed input p50 ms", "mixed", "input p50 ms", "%s× socat" % r(med_ratio(results, "mixed", "input p50 ms", "wsproxy", "socat")), "(report)", None)
    if "setup" in results:
        a = med_ratio(results, "setup", "conn/s", "wsproxy", "socat")
        row("connections/s", "setup", "conn/s", "%s× socat" % r(a), "≥ 0.8× socat", None if a is None else a >= 0.8)
    if "concurrency" in results:
        ok = med(results, "concurrency", "wsproxy", "ok")
        of = med(results, "concurrency", "wsproxy", "of")
        pss = med(results, "concurrency", "wsproxy", "PSS MB")
        row("concurrent: succeeded", "concurrency", "ok", "of %s" % fmt(of), "all succeed", None if ok is None else ok == of)
        row("concurrent: PSS MB", "concurrency", "PSS MB", "-", "≤ 100 MB", None if pss is None else pss <= 100)
    if "idle" in results:
        held = med(results, "idle", "wsproxy", "held")
        of = med(results, "idle", "wsproxy", "of")
        row("idle: held", "idle", "held", "of %s" % fmt(of), "all held", None if held is None else held == of)
        row("idle: KB per connection", "idle", "KB/conn", "-", "(report)", None)
    if "footprint" in results:
        rss = med(results, "footprint", "wsproxy", "RSS MB")
        ready = med(results, "footprint", "wsproxy", "ready ms")
        row("footprint: idle RSS MB", "footprint", "RSS MB", "-", "≤ 20 MB", None if rss is None else rss <= 20)
        row("footprint: ready ms", "footprint", "ready ms", "-", "≤ 150 ms", None if ready is None else ready <= 150)


if __name__ == "__main__":
    sys.exit(main())
