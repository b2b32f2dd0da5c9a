"""Scale-out on real engines (issue 14): three wsproxy instances behind one
real HAProxy in TCP mode, sharing their tokens through one real redis-server.

* redis-server with a password, database 2 and a namespace holds the tokens;
  every instance runs ``--token-plugin TokenRedis``, ``--proxy-protocol
  --trusted-proxy 127.0.0.1``, ``--metrics-listen`` and ``--drain-seconds 1``.
* HAProxy has a PROXY v2 frontend and a PROXY v1 frontend, each balancing
  round robin over the three, health-checked on each instance's /healthz
  (its metrics port).
* Clients connect from 127.0.0.2, so the address each instance logs can be
  told from HAProxy's own (127.0.0.1).

What it shows: sessions through both frontends reach all three instances,
each logging the real client, with the data intact; a token changed or
deleted in Redis takes effect on every instance; each instance's /metrics
passes promtool and counts its Redis lookups; SIGTERM to one instance makes
its /healthz answer 503, HAProxy takes it out (new sessions land on the two
others while it still drains), its sessions end with close code 1001 and
the others' go on.
"""

import contextlib
import csv
import hashlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

import realpeers
from conftest import EchoServer, ProxyProcess, free_port, wait_until
from test_metrics import promtool_check, scrape, values
from test_token_redis import PASSWORD, RedisServer

DB = 2
NAMESPACE = "wsp:scale"
INSTANCES = ("ws1", "ws2", "ws3")
PAYLOAD = 64 * 1024   # per echo: several frames and TCP segments through both hops

# The configuration the README shows, with the ports filled in.  Both
# backends check /healthz on each instance's metrics port (no PROXY header
# there); a failed check twice, 100 ms apart, takes an instance out.
HAPROXY_CFG = """\
global
    maxconn 200
    stats socket %(dir)s/admin.sock mode 600 level admin
defaults
    mode tcp
    timeout connect 5s
    timeout client 1m
    timeout server 1m
    timeout check 2s
frontend vnc_v2
    bind 127.0.0.1:%(v2)d
    default_backend wsproxy_v2
frontend vnc_v1
    bind 127.0.0.1:%(v1)d
    default_backend wsproxy_v1
backend wsproxy_v2
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 100ms fall 2 rise 2
%(v2_servers)s
backend wsproxy_v1
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 100ms fall 2 rise 2
%(v1_servers)s
"""
SERVER_LINE = "    server %s 127.0.0.1:%d %s check port %d"


def haproxy_config(workdir, ports, instances) -> str:
    def servers(send):
        return "\n".join(SERVER_LINE % (name, wsp.port, send, wsp.metrics_port) for name, wsp in instances.items())
    return HAPROXY_CFG % dict(ports, dir=workdir, v2_servers=servers("send-proxy-v2"), v1_servers=servers("send-proxy"))


class HAProxy:
    """HAProxy in the foreground (-db); ``servers()`` reads its stats socket.  Stopped by PID."""

    def __init__(self, workdir, instances):
        exe = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
        if exe is None:
            realpeers.require_tool("haproxy")
        self.ports = {"v1": free_port(), "v2": free_port()}
        self.workdir = workdir
        self.config = haproxy_config(workdir, self.ports, instances)
        cfg = os.path.join(workdir, "haproxy.cfg")
        with open(cfg, "w") as handle:
            handle.write(self.config)
        with open(os.path.join(workdir, "haproxy.err"), "wb") as err:
            self.proc = subprocess.Popen([exe, "-db", "-f", cfg], stdout=subprocess.DEVNULL, stderr=err)
        try:
            realpeers.wait_for_port(self.ports["v1"], proc=self.proc)
            realpeers.wait_for_port(self.ports["v2"], proc=self.proc)
        except BaseException:
            self.stop()
            raise

    def servers(self) -> dict:
        """(backend, server) -> its stats row (status, check_status, check_code, ...)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(os.path.join(self.workdir, "admin.sock"))
            sock.sendall(b"show stat\n")
            text = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return {(row["pxname"], row["svname"]): row for row in rows if row["svname"] in INSTANCES}

    def stop(self):
        realpeers.stop(self.proc)


def start_instance(workdir, redis_source):
    port, metrics_port = free_port(), free_port()
    wsp = ProxyProcess(["--listen", "127.0.0.1:%d" % port, "--no-web", "--proxy-protocol",
                        "--trusted-proxy", "127.0.0.1", "--token-plugin", "TokenRedis",
                        "--token-source", redis_source, "--metrics-listen", str(metrics_port),
                        "--drain-seconds", "1"], workdir, port=port, wait_for=None)
    wsp.metrics_port = metrics_port
    try:
        wsp.wait_stdout("listening on")
        realpeers.wait_for_port(metrics_port, proc=wsp.proc)
    except BaseException:
        stop_instance(wsp)
        raise
    return wsp


def started(start, *args):
    """start(*args), again with new ports when another test took one of ours
    between free_port() and the bind (the process exits: RuntimeError)."""
    for attempt in range(3):
        try:
            return start(*args)
        except RuntimeError:
            if attempt == 2:
                raise


def stop_instance(wsp):
    """By PID: SIGTERM starts the drain, a second one stops at once."""
    for _ in range(2):
        wsp.signal(signal.SIGTERM)
    wsp.stop()


def redis_server(workdir):
    redis = RedisServer(workdir)
    try:
        redis.start()
    except BaseException:
        if redis.proc is not None:
            redis.stop()
        raise
    return redis


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Redis, two echo targets, three instances and HAProxy, all up and checked healthy."""
    workdir = str(tmp_path_factory.mktemp("scale-out"))
    with contextlib.ExitStack() as stack:
        redis = started(redis_server, workdir)
        stack.callback(redis.stop)
        echoes = [EchoServer(), EchoServer()]
        for echo in echoes:
            stack.callback(echo.close)
        source = '127.0.0.1:%d:%d:"%s":"%s"' % (redis.port, DB, PASSWORD, NAMESPACE)
        instances = {}
        for name in INSTANCES:
            instances[name] = started(start_instance, workdir, source)
            stack.callback(stop_instance, instances[name])
        haproxy = started(HAProxy, workdir, instances)
        stack.callback(haproxy.stop)
        assert wait_until(lambda: all(row["status"] == "UP" and row["check_status"] == "L7OK"
                                      for row in haproxy.servers().values()), 10), haproxy.servers()
        assert len(haproxy.servers()) == 6
        redis.set("desk", "127.0.0.1:%d" % echoes[0].port, db=DB, namespace=NAMESPACE)
        yield redis, echoes, instances, haproxy


# -- clients -------------------------------------------------------------------


def session(haproxy, frontend, token="desk"):
    """A WebSocket through one HAProxy frontend from 127.0.0.2; (client port, websocket)."""
    sock = socket.socket()
    sock.settimeout(10)
    sock.bind(("127.0.0.2", 0))
    sock.connect(("127.0.0.1", haproxy.ports[frontend]))
    url = "ws://127.0.0.1:%d/websockify?token=%s" % (haproxy.ports[frontend], token)
    try:
        return sock.getsockname()[1], connect(url, sock=sock, open_timeout=10, max_size=None).__enter__()
    except BaseException:
        sock.close()
        raise


def echo_intact(ws) -> bool:
    """Random bytes there and back through HAProxy and wsproxy; the same checksum."""
    payload = os.urandom(PAYLOAD)
    ws.send(payload)
    got = b""
    while len(got) < len(payload):
        got += ws.recv(timeout=10)
    return hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()


def refused_status(haproxy, frontend, token="desk"):
    try:
        _, ws = session(haproxy, frontend, token)
    except InvalidStatus as exc:
        return exc.response.status_code
    ws.close()
    return 101


OPEN = re.compile(r"conn \d+ ([0-9.]+):(\d+): open -> (\S+)")


def opened(wsp) -> list:
    """(client address, client port, target) of each session an instance logged."""
    return [(m.group(1), int(m.group(2)), m.group(3)) for m in OPEN.finditer(wsp.stderr)]


def mark(instances) -> dict:
    """How many sessions each instance has logged so far (the kernel reuses
    client ports, so a batch's sessions are looked for after this mark)."""
    return {name: len(opened(wsp)) for name, wsp in instances.items()}


def landed(instances, since, client_port) -> list:
    """The instances whose log has a session from this client port after the mark."""
    return [name for name, wsp in instances.items()
            if any(port == client_port for _, port, _ in opened(wsp)[since[name]:])]


def where(instances, since, ports) -> dict:
    """Each client port's instance, once every one of them is logged."""
    assert wait_until(lambda: all(len(landed(instances, since, port)) == 1 for port in ports), 5), \
        {port: landed(instances, since, port) for port in ports}
    return {port: landed(instances, since, port)[0] for port in ports}


def only_the_real_client_logged(wsp) -> None:
    """Every connection an instance logged is 127.0.0.2's, never HAProxy's 127.0.0.1."""
    log = wsp.stderr
    assert opened(wsp) and all(address == "127.0.0.2" for address, _, _ in opened(wsp)), log
    assert not re.search(r"conn \d+ 127\.0\.0\.1:", log), log
    assert "refused" not in log, log


# -- tests ---------------------------------------------------------------------


def test_both_frontends_reach_all_three_with_the_real_client_and_intact_data(cluster):
    _, _, instances, haproxy = cluster
    reached = {}
    for frontend in ("v2", "v1"):
        since = mark(instances)
        sessions = [session(haproxy, frontend) for _ in range(6)]
        try:
            assert all(echo_intact(ws) for _, ws in sessions)
        finally:
            for _, ws in sessions:
                ws.close()
        reached[frontend] = where(instances, since, [port for port, _ in sessions])
        # round robin: two each
        assert sorted(reached[frontend].values()) == sorted(INSTANCES * 2), reached
    for wsp in instances.values():
        only_the_real_client_logged(wsp)


def test_a_token_changed_or_deleted_in_redis_takes_effect_on_every_instance(cluster):
    redis, echoes, instances, haproxy = cluster
    before = mark(instances)
    redis.set("desk", '{"host": "127.0.0.1", "port": %d}' % echoes[1].port, db=DB, namespace=NAMESPACE)
    connections = echoes[1].connections
    sessions = [session(haproxy, frontend) for frontend in ("v2", "v1") for _ in range(3)]
    try:
        assert all(echo_intact(ws) for _, ws in sessions)
    finally:
        for _, ws in sessions:
            ws.close()
    assert echoes[1].connections - connections == 6
    placed = where(instances, before, [port for port, _ in sessions])
    assert sorted(placed.values()) == sorted(INSTANCES * 2)
    for name, wsp in instances.items():   # each instance saw the new value, not a cached old one
        new = opened(wsp)[before[name]:]
        assert [target for _, _, target in new] == ["127.0.0.1:%d" % echoes[1].port] * 2, wsp.stderr
    redis.run("DEL", NAMESPACE + ":desk", db=DB)
    assert [refused_status(haproxy, frontend) for frontend in ("v2", "v1") for _ in range(3)] == [404] * 6
    refused = re.compile(r"conn \d+ 127\.0\.0\.2:\d+: GET /websockify\?\.\.\. -> 404 unknown token")
    for wsp in instances.values():
        assert wait_until(lambda wsp=wsp: len(refused.findall(wsp.stderr)) == 2, 5), wsp.stderr
    for wsp in instances.values():
        text = scrape(wsp.metrics_port)
        promtool_check(text)
        got = values(text)
        assert got['wsproxy_token_lookups_total{source="redis",result="hit"}'] == len(opened(wsp))
        assert got['wsproxy_token_lookups_total{source="redis",result="miss"}'] == 2
        assert got['wsproxy_token_lookup_seconds_count{source="redis"}'] == len(opened(wsp)) + 2
        only_the_real_client_logged(wsp)
    redis.set("desk", "127.0.0.1:%d" % echoes[0].port, db=DB, namespace=NAMESPACE)


def test_sigterm_drains_one_instance_out_and_the_others_go_on(cluster):
    _, _, instances, haproxy = cluster
    since = mark(instances)
    old = [session(haproxy, frontend) for frontend in ("v2", "v1") for _ in range(3)]
    try:
        placed = where(instances, since, [port for port, _ in old])
        assert all(echo_intact(ws) for _, ws in old)
        victim = instances["ws2"]
        victim.signal(signal.SIGTERM)
        # HAProxy sees /healthz answer 503 and takes the instance out of both
        # backends while it still runs (draining).
        assert wait_until(lambda: all(row["status"] == "DOWN" and row["check_code"] == "503"
                                      for key, row in haproxy.servers().items() if key[1] == "ws2"), 5), \
            haproxy.servers()
        assert victim.proc.poll() is None, "the drain ended before HAProxy saw /healthz fail"
        since = mark(instances)
        new = [session(haproxy, frontend) for frontend in ("v2", "v1") for _ in range(4)]
        try:
            assert set(where(instances, since, [port for port, _ in new]).values()) == {"ws1", "ws3"}
            for port, ws in old:
                if placed[port] == "ws2":
                    with pytest.raises(ConnectionClosed) as closed:
                        ws.recv(timeout=10)
                    assert closed.value.rcvd.code == 1001
            assert victim.proc.wait(10) == 0
            assert all(echo_intact(ws) for port, ws in old if placed[port] != "ws2")
            assert all(echo_intact(ws) for _, ws in new)
        finally:
            for _, ws in new:
                ws.close()
    finally:
        for _, ws in old:
            ws.close()
    assert len([port for port in placed if placed[port] == "ws2"]) == 2
    assert "open connections get close 1001" in victim.stderr
