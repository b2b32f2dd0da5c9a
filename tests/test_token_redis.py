"""TokenRedis against a real redis-server on 127.0.0.1 (a free port,
--requirepass, database 3, a namespace): keys set, changed and deleted while
the proxy runs, Redis stopped and started again mid-test, a Redis that never
answers, and one kept connection for many lookups."""

import socket
import subprocess
import threading
import time

import pytest

import realpeers
import wsproxy
from conftest import EchoServer, upgrade_status, wait_until

PASSWORD = "s3cret:with colon"
DB = 3
NAMESPACE = "wsp:test"


class RedisServer:
    """redis-server on a loopback port, no persistence; stop() and start() again keep the port."""

    def __init__(self, workdir):
        self.exe = realpeers.require_tool("redis-server")
        self.cli = realpeers.require_tool("redis-cli")
        self.port = realpeers.free_port()
        self.workdir = str(workdir)
        self.proc = None

    def start(self):
        args = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", PASSWORD,
                "--save", "", "--appendonly", "no", "--dir", self.workdir, "--databases", "16"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        realpeers.wait_for_port(self.port, proc=self.proc)

    def stop(self):
        realpeers.stop(self.proc)

    def run(self, *args, db=DB) -> str:
        result = subprocess.run([self.cli, "-p", str(self.port), "-n", str(db), "--no-auth-warning", "-a", PASSWORD]
                                + list(args), capture_output=True, text=True, timeout=10, check=True)
        return result.stdout.strip()

    def set(self, token, value, db=DB, namespace=NAMESPACE):
        assert self.run("SET", "%s:%s" % (namespace, token) if namespace else token, value, db=db) == "OK"

    def source(self, password=PASSWORD) -> str:
        # websockify's syntax; the password and the namespace hold colons, so they are quoted.
        return '127.0.0.1:%d:%d:"%s":"%s"' % (self.port, DB, password, NAMESPACE)


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_keys_set_changed_and_deleted_while_the_proxy_runs(redis, start_proxy, echo_server):
    second = EchoServer()
    try:
        proxy = start_proxy("--token-plugin", "TokenRedis", "--token-source", redis.source())
        assert "targets: by token from redis 127.0.0.1:%d db 3 namespace 'wsp:test' (password set)" % redis.port \
            in proxy.stdout
        assert PASSWORD not in proxy.stdout + proxy.stderr
        redis.set("vm1", '{"host": "127.0.0.1:%d"}' % echo_server.port)
        assert upgrade_status(proxy, "vm1") == (101, b"hello")
        assert echo_server.connections == 1
        redis.set("vm1", "127.0.0.1:%d" % second.port)          # changed: plain host:port
        assert upgrade_status(proxy, "vm1") == (101, b"hello")
        assert second.connections == 1 and echo_server.connections == 1
        redis.run("DEL", NAMESPACE + ":vm1")
        status, body = upgrade_status(proxy, "vm1")
        assert status == 404 and "unknown token 'vm1'" in body
        # the same token outside the namespace or in another database is not ours
        redis.set("vm2", "127.0.0.1:%d" % echo_server.port, namespace="")
        redis.set("vm2", "127.0.0.1:%d" % echo_server.port, db=0)
        assert upgrade_status(proxy, "vm2")[0] == 404
        redis.set("vm3", '{"host": "127.0.0.1:%d"' % echo_server.port)   # broken JSON
        assert upgrade_status(proxy, "vm3")[0] == 404
        assert "the entry for token 'vm3' is unusable" not in proxy.stderr   # the log redacts tokens
        assert "the entry for token '***' is unusable" in proxy.stderr
        redis.run("HSET", NAMESPACE + ":vm4", "host", "127.0.0.1:%d" % echo_server.port)   # not a string
        assert upgrade_status(proxy, "vm4")[0] == 404
        assert "WRONGTYPE" in proxy.stderr and "is down" not in proxy.stderr
    finally:
        second.close()


def test_an_ipv6_target_in_redis(redis, start_proxy):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = EchoServer(socket.AF_INET6, ("::1", 0))
    except OSError:
        pytest.skip("no ::1 here")
    try:
        proxy = start_proxy("--token-plugin", "TokenRedis", "--token-source", redis.source())
        redis.set("v6", "[::1]:%d" % server.port)
        redis.set("v6json", '{"host": "::1", "port": %d}' % server.port)
        assert upgrade_status(proxy, "v6") == (101, b"hello")
        assert upgrade_status(proxy, "v6json") == (101, b"hello")
        assert server.connections == 2
    finally:
        server.close()


@pytest.mark.slow
def test_redis_stopped_and_started_again(redis, start_proxy, echo_server):
    proxy = start_proxy("--token-plugin", "TokenRedis", "--token-source", redis.source())
    redis.set("vm1", "127.0.0.1:%d" % echo_server.port)
    assert upgrade_status(proxy, "vm1")[0] == 101
    redis.stop()
    for _ in range(8):
        started = time.monotonic()
        status, body = upgrade_status(proxy, "vm1")
        assert status == 503, body
        assert "the token store (redis) is unavailable" in body and "try again" in body
        assert time.monotonic() - started < 3.0
    log = proxy.stderr
    assert log.count("is down (") == 1, log          # one line for the outage, not one per connection
    assert log.count("-> 503") == 8
    redis.start()                                    # empty again: no persistence
    redis.set("vm1", "127.0.0.1:%d" % echo_server.port)
    assert wait_until(lambda: upgrade_status(proxy, "vm1")[0] == 101, timeout=5)
    log = proxy.stderr
    assert log.count("recovered after") == 1 and "lookups answered 503 meanwhile" in log
    assert log.count("is down (") == 1


def test_one_connection_serves_many_lookups_and_survives_a_restart(redis, echo_server):
    source = wsproxy.TokenRedis(redis.source())
    redis.set("vm1", '{"host": "127.0.0.1:%d", "view_only": true}' % echo_server.port)
    before = int(redis.run("INFO", "stats").split("total_connections_received:")[1].split()[0])
    for _ in range(20):
        entry = source.lookup("vm1")
        assert entry.target == wsproxy.Target("127.0.0.1", echo_server.port) and entry.view_only
    after = int(redis.run("INFO", "stats").split("total_connections_received:")[1].split()[0])
    assert after - before == 2      # ours, and the second redis-cli
    redis.stop()
    redis.start()
    redis.set("vm1", "127.0.0.1:%d" % echo_server.port)
    # The kept connection is stale now; the lookup opens a new one instead of failing.
    assert source.lookup("vm1").target.port == echo_server.port
    assert not source.health.is_down
    source.client.close()


def test_a_wrong_password_is_a_503_with_the_reason(redis):
    source = wsproxy.TokenRedis(redis.source(password="wrong"))
    with pytest.raises(wsproxy.HttpError) as info:
        source.lookup("vm1")
    assert info.value.status == 503 and "redis refused AUTH: WRONGPASS" in info.value.reason
    assert "wrong" not in info.value.reason.replace("WRONGPASS", "")


class SilentServer:
    """Accepts connections and never answers: a Redis that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)    # wakes the accept() (close alone does not)
        except OSError:
            pass
        self.sock.close()
        for conn in self.conns:
            conn.close()
        self._thread.join(2)


@pytest.mark.slow
def test_a_hung_redis_answers_503_in_bounded_time_and_stalls_nobody(start_proxy):
    silent = SilentServer()
    try:
        proxy = start_proxy("--token-plugin", "TokenRedis", "--token-source", "127.0.0.1:%d" % silent.port)
        results = []

        def one():
            started = time.monotonic()
            results.append((upgrade_status(proxy, "vm1"), time.monotonic() - started))

        threads = [threading.Thread(target=one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        assert len(results) == 4
        for (status, body), took in results:
            assert status == 503 and "no answer within 2s" in body, body
            # one deadline covers the wait for the shared connection too: nobody queues behind the others
            assert took < wsproxy.TOKEN_LOOKUP_TIMEOUT + 1.0, took
        # meanwhile files and other requests are served at once
        started = time.monotonic()
        assert upgrade_status(proxy, "")[0] == 404
        assert time.monotonic() - started < 1.0
        assert proxy.stderr.count("is down (") == 1
    finally:
        silent.close()


def test_lookups_never_wait_for_the_lock_beyond_the_timeout():
    silent = SilentServer()
    try:
        client = wsproxy.RedisClient(wsproxy.RedisSource("127.0.0.1", silent.port, 0, None, ""), timeout=0.4)
        took = []

        def one():
            started = time.monotonic()
            with pytest.raises(wsproxy.StoreDown):
                client.get(b"vm1")
            took.append(time.monotonic() - started)

        threads = [threading.Thread(target=one) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert len(took) == 6 and max(took) < 0.4 + 0.3, took
        client.close()
    finally:
        silent.close()


def test_nothing_listening_fails_fast_and_retries_after_a_pause():
    port = realpeers.free_port()
    client = wsproxy.RedisClient(wsproxy.RedisSource("127.0.0.1", port, 0, None, ""), retry_delay=0.3)
    with pytest.raises(wsproxy.StoreDown, match="connection refused"):
        client.get(b"x")
    started = time.monotonic()
    with pytest.raises(wsproxy.StoreDown, match="connection refused"):
        client.get(b"x")          # within the pause: no new connect
    assert time.monotonic() - started < 0.05


def test_a_redis_error_other_than_wrongtype_is_an_outage():
    """LOADING (a restart reading its data), NOAUTH (a new password): the store, not the entry."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer():
        conn = server.accept()[0]
        with conn:
            conn.recv(1024)
            conn.sendall(b"-LOADING Redis is loading the dataset in memory\r\n")
            conn.recv(1024)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        source = wsproxy.TokenRedis("127.0.0.1:%d" % server.getsockname()[1])
        with pytest.raises(wsproxy.HttpError) as info:
            source.lookup("vm1")
        assert info.value.status == 503 and "LOADING" in info.value.reason
        assert source.client._sock is None     # dropped: the next lookup starts afresh
    finally:
        server.close()
        thread.join(2)
