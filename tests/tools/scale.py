#!/usr/bin/env python3
"""Scale run (issue 14): several wsproxy instances behind a real HAProxy,
tokens in a real Redis.  Not part of the pytest run (no test_ prefix).

    /tmp/wsproxy-test-venv/bin/python tests/tools/scale.py [--sessions 3000]
        [--instances 3] [--duration 40] [--kill-at 15]

What it builds, all on loopback, every process stopped by PID at the end:

* ``redis-server`` with a password; DB 3 holds one token per session under
  the namespace ``wsproxy:`` (websockify's TokenRedis layout);
* an echo target (a subprocess) that returns every byte it gets;
* INSTANCES wsproxy processes, each with ``--proxy-protocol``,
  ``--token-plugin TokenRedis`` and ``--metrics-listen``;
* HAProxy in TCP mode, ``send-proxy-v2``, ``balance leastconn``, a health
  check on each instance's ``/healthz`` (so a draining instance leaves the
  pool).

Then SESSIONS WebSocket clients (the ``websockets`` library) open through
HAProxy, each sending a checksummed stream (a random 64-2048-byte message,
waiting for its echo, 1 s apart).  At KILL_AT seconds one instance gets
SIGTERM: its sessions must end with close code 1001, every other session must
get back exactly what it sent, in order; then 10% more sessions are opened,
which must all succeed on the survivors.  Reported: sessions per instance
(their own metrics), RSS per instance at the peak, echo latency p50/p99
through HAProxy + wsproxy against a direct TCP echo, and the verdicts.

Exit status 0 when every verdict holds.
"""

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/

import realpeers  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WSPROXY = os.path.join(ROOT, "wsproxy.py")
REDIS_PASSWORD = "scale-secret"
REDIS_DB = 3
NAMESPACE = "wsproxy"
DRAIN_SECONDS = 2   # /healthz says 503 this long before the sessions close; HAProxy checks every 0.3 s

ECHO_SERVER = r"""
import asyncio, sys
async def echo(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""

HAPROXY_CFG = """
global
    maxconn 9000
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout check 2s
    retries 3
    option redispatch
frontend websockets
    bind 127.0.0.1:%(port)d
    default_backend wsproxy
backend wsproxy
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 300ms fall 1 rise 2
%(servers)s
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (proc.args[0], proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing on port %d" % port)


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Processes:
    """Every process this run starts, stopped by PID in reverse order."""

    def __init__(self):
        self.procs = []

    def start(self, args, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(args, preexec_fn=raise_fd_limit, **kwargs)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            realpeers.stop(proc, timeout=10)


def redis_command(port: int, *args: str) -> bytes:
    """One RESP command over a fresh socket (set-up only; wsproxy has its own client)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        out = b""
        for command in (("AUTH", REDIS_PASSWORD), ("SELECT", str(REDIS_DB)), args):
            out += b"*%d\r\n" % len(command) + b"".join(
                b"$%d\r\n%s\r\n" % (len(part.encode()), part.encode()) for part in command)
        sock.sendall(out)
        reply = b""
        while reply.count(b"\r\n") < 3:
            reply += sock.recv(4096)
        return reply


class Instance:
    def __init__(self, procs: Processes, workdir: str, number: int, redis_port: int):
        self.number = number
        self.port, self.metrics_port = free_port(), free_port()
        self.log_path = os.path.join(workdir, "wsproxy-%d.log" % number)
        source = "127.0.0.1:%d:%d:%s:%s" % (redis_port, REDIS_DB, REDIS_PASSWORD, NAMESPACE)
        with open(self.log_path, "wb") as log:
            self.proc = procs.start([sys.executable, WSPROXY, "--proxy-protocol", "--trusted-proxy", "127.0.0.1",
                                     "--token-plugin", "TokenRedis", "--token-source", source,
                                     "--metrics-listen", "127.0.0.1:%d" % self.metrics_port,
                                     "--drain-seconds", str(DRAIN_SECONDS),
                                     "127.0.0.1:%d" % self.port], stdout=log, stderr=log)
        wait_for_port(self.metrics_port, self.proc)

    def metrics(self) -> str:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=5) as reply:
            return reply.read().decode()

    def metric(self, name: str, labels: str = "") -> float:
        """The sum of NAME's samples whose labels start with LABELS (e.g. 'outcome="ws_')."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{" + labels):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def rss_mb(self) -> float:
        with open("/proc/%d/status" % self.proc.pid) as status:
            match = re.search(r"VmRSS:\s+(\d+) kB", status.read())
        return int(match.group(1)) / 1024 if match else 0.0


class Session:
    """One client: a checksummed request/echo stream, its latencies and how it ended."""

    def __init__(self, number: int, uri: str, seed: int):
        self.number, self.uri = number, uri
        self.rng = random.Random(seed)
        self.sent = hashlib.sha256()
        self.received = hashlib.sha256()
        self.sent_bytes = self.received_bytes = 0
        self.latencies = []
        self.close_code = None
        self.error = ""
        self.opened = False

    async def run(self, stop_at: float) -> None:
        import websockets
        try:
            async with websockets.connect(self.uri, subprotocols=["binary"], max_size=None, open_timeout=60,
                                          ping_interval=None, close_timeout=10) as ws:
                self.opened = True
                await self._exchange(ws, stop_at)
                self.close_code = 1000
        except websockets.ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd else 1006
        except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as exc:
            self.error = "%s: %s" % (type(exc).__name__, exc)

    async def _exchange(self, ws, stop_at: float) -> None:
        await asyncio.sleep(self.rng.random())
        while time.monotonic() < stop_at:
            payload = self.rng.randbytes(self.rng.randint(64, 2048))
            self.sent.update(payload)
            self.sent_bytes += len(payload)
            started = time.monotonic()
            await ws.send(payload)
            while self.received_bytes < self.sent_bytes:
                data = await ws.recv()
                self.received.update(data)
                self.received_bytes += len(data)
            self.latencies.append(time.monotonic() - started)
            await asyncio.sleep(1.0)

    @property
    def intact(self) -> bool:
        return self.sent_bytes == self.received_bytes and self.sent.digest() == self.received.digest()


async def direct_latencies(port: int, stop_at: float) -> list:
    """The same echo straight to the target, sampled through the run (same load)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rng, out = random.Random(1), []
    while time.monotonic() < stop_at:
        payload = rng.randbytes(rng.randint(64, 2048))
        started = time.monotonic()
        writer.write(payload)
        got = 0
        while got < len(payload):
            got += len(await reader.read(65536))
        out.append(time.monotonic() - started)
        await asyncio.sleep(0.05)
    writer.close()
    return out


def percentile(values: list, fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def open_sessions(sessions: list, stop_at: float, rate: float) -> list:
    tasks = []
    for session in sessions:
        tasks.append(asyncio.ensure_future(session.run(stop_at)))
        await asyncio.sleep(1.0 / rate)
    return tasks


async def drive(args, instances, haproxy_port: int, echo_port: int) -> int:
    start = time.monotonic()
    stop_at = start + args.duration
    uri = "ws://127.0.0.1:%d/websockify?token=desk%%d" % haproxy_port
    first = [Session(n, uri % n, n) for n in range(args.sessions)]
    direct = asyncio.ensure_future(direct_latencies(echo_port, stop_at))
    tasks = await open_sessions(first, stop_at, args.rate)
    await asyncio.sleep(max(0.0, start + args.kill_at - time.monotonic()))
    loop = asyncio.get_running_loop()
    before = [await loop.run_in_executor(None, inst.metric, "wsproxy_websocket_sessions_open") for inst in instances]
    rss = [inst.rss_mb() for inst in instances]
    victim = instances[0]
    print("t=%.0fs open sessions per instance: %s; RSS MB: %s" % (
        time.monotonic() - start, [int(x) for x in before], ["%.1f" % r for r in rss]), flush=True)
    print("SIGTERM instance 0 (pid %d)" % victim.proc.pid, flush=True)
    os.kill(victim.proc.pid, signal.SIGTERM)
    await asyncio.sleep(1.0)   # HAProxy's health check sees the drain's 503 and takes it out of the pool
    late = [Session(n, uri % n, n) for n in range(args.sessions, args.sessions + args.sessions // 10)]
    tasks += await open_sessions(late, stop_at, args.rate)
    await asyncio.gather(*tasks)
    return report(args, instances, first, late, before, rss, await direct)


def report(args, instances, first, late, before, rss, direct) -> int:
    killed = [s for s in first if s.close_code == 1001]
    survivors = [s for s in first if s.close_code != 1001]
    lost = [s for s in survivors if not (s.opened and s.close_code == 1000 and s.intact)]
    killed_intact = sum(1 for s in killed if s.sent_bytes - s.received_bytes <= 2048)
    late_bad = [s for s in late if not (s.opened and s.close_code == 1000 and s.intact)]
    after = [int(inst.metric("wsproxy_requests_total", 'outcome="ws_') + inst.metric("wsproxy_websocket_sessions_open"))
             if inst.proc.poll() is None else None for inst in instances]
    through = [x for s in first + late for x in s.latencies]
    print("\n== scale run: %d sessions, %d instances behind HAProxy (send-proxy-v2), tokens in Redis"
          % (args.sessions, len(instances)))
    print("sessions open per instance at SIGTERM: %s (spread max/min %.2f)" % (
        [int(x) for x in before], max(before) / max(1.0, min(before))))
    print("RSS per instance at the peak (MB): %s" % ", ".join("%.1f" % r for r in rss))
    print("instance 0's sessions closed with 1001: %d (its gauge said %d)" % (len(killed), int(before[0])))
    print("other sessions: %d, of which lost/broken: %d" % (len(survivors), len(lost)))
    print("sessions opened after the SIGTERM: %d, failed: %d; survivors' session totals: %s" % (
        len(late), len(late_bad), after[1:]))
    print("echo latency p50/p99 ms, sampled through the run: through HAProxy+wsproxy %.2f/%.2f, straight to the target %.2f/%.2f (p50 ratio %.2fx)" % (
        1000 * percentile(through, 0.5), 1000 * percentile(through, 0.99),
        1000 * percentile(direct, 0.5), 1000 * percentile(direct, 0.99),
        percentile(through, 0.5) / max(1e-9, percentile(direct, 0.5))))
    for sample in (lost + late_bad)[:5]:
        print("  e.g. session %d: opened=%s close=%s error=%s sent=%d received=%d" % (
            sample.number, sample.opened, sample.close_code, sample.error, sample.sent_bytes, sample.received_bytes))
    verdicts = {
        "instance 0's sessions all ended with 1001": abs(len(killed) - before[0]) <= max(2, before[0] * 0.01),
        "no other session lost or reordered a byte": not lost,
        "new sessions after SIGTERM all landed on survivors": not late_bad,
        "killed sessions had everything echoed up to the close": killed_intact == len(killed),
    }
    for name, ok in verdicts.items():
        print("%-55s %s" % (name, "ok" if ok else "FAILED"))
    return 0 if all(verdicts.values()) else 1


def start_haproxy(procs: Processes, workdir: str, instances) -> int:
    port = free_port()
    servers = "\n".join("    server w%d 127.0.0.1:%d send-proxy-v2 check port %d" % (i.number, i.port, i.metrics_port)
                        for i in instances)
    cfg = os.path.join(workdir, "haproxy.cfg")
    with open(cfg, "w") as handle:
        handle.write(HAPROXY_CFG % {"port": port, "servers": servers})
    log = open(os.path.join(workdir, "haproxy.log"), "wb")
    proc = procs.start([shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", cfg], stdout=log, stderr=log)
    wait_for_port(port, proc)
    time.sleep(1.0)   # first health checks
    return port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=3000)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--duration", type=float, default=40.0)
    parser.add_argument("--kill-at", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=300.0, help="sessions opened per second")
    args = parser.parse_args()
    raise_fd_limit()
    workdir = tempfile.mkdtemp(prefix="wsproxy-scale-")
    procs = Processes()
    try:
        redis_port, echo_port = free_port(), free_port()
        redis = procs.start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--requirepass", REDIS_PASSWORD, "--maxclients", "10000"],
                            stdout=subprocess.DEVNULL)
        wait_for_port(redis_port, redis)
        echo = procs.start([sys.executable, "-c", ECHO_SERVER, str(echo_port)])
        wait_for_port(echo_port, echo)
        value = json.dumps({"host": "127.0.0.1:%d" % echo_port})
        for n in range(args.sessions + args.sessions // 10):
            redis_command(redis_port, "SET", "%s:desk%d" % (NAMESPACE, n), value)
        instances = [Instance(procs, workdir, n, redis_port) for n in range(args.instances)]
        haproxy_port = start_haproxy(procs, workdir, instances)
        return asyncio.run(drive(args, instances, haproxy_port, echo_port))
    finally:
        procs.stop_all()
        print("logs in %s" % workdir)


if __name__ == "__main__":
    sys.exit(main())
