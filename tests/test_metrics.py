"""--metrics-listen end to end (issue 14): wsproxy as a subprocess, real
WebSocket sessions (the websockets client) through it to a TCP echo target,
then /metrics scraped, checked by promtool, and its numbers compared with
what the test did."""

import re
import shutil
import subprocess

import pytest
import websockets
from websockets.sync.client import connect

from conftest import free_port, get_request, http_exchange, wait_until


def scrape(port: int) -> str:
    response = http_exchange(port, get_request("/metrics", [("Connection", "close")]))
    assert response.status == 200
    assert response.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    return response.body.decode("utf-8")


def values(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    result = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def echo(ws, payload: bytes) -> bytes:
    ws.send(payload)
    out = b""
    while len(out) < len(payload):
        out += ws.recv(timeout=5)
    return out


@pytest.fixture
def metered(start_proxy, echo_server, tmp_path):
    tokens = tmp_path / "tokens.conf"
    tokens.write_text("desk: 127.0.0.1:%d\n" % echo_server.port)
    port = free_port()
    proxy = start_proxy("--no-web", "--token-source", str(tokens), "--metrics-listen", str(port))
    proxy.metrics_port = port
    return proxy


def test_sessions_bytes_and_failures_are_counted_and_promtool_accepts_the_text(metered):
    sizes = (1000, 20000, 300000)
    for size in sizes:
        with connect(metered.url("/websockify?token=desk"), max_size=None) as ws:
            assert echo(ws, bytes(range(256)) * (size // 256) + b"x" * (size % 256)) is not None
    for _ in range(2):   # unknown token: 404 before the upgrade
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            connect(metered.url("/websockify?token=nobody"), open_timeout=5)
        assert refused.value.response.status_code == 404
    assert wait_until(lambda: values(scrape(metered.metrics_port))["wsproxy_websocket_sessions_open"] == 0, 5)
    text = scrape(metered.metrics_port)
    promtool_check(text)
    got = values(text)
    assert got['wsproxy_requests_total{outcome="ws_1000"}'] == 3
    assert got['wsproxy_requests_total{outcome="http_404"}'] == 2
    assert got['wsproxy_handshake_failures_total{reason="unknown_token"}'] == 2
    assert got['wsproxy_bytes_total{direction="client_to_target"}'] == sum(sizes)
    assert got['wsproxy_bytes_total{direction="target_to_client"}'] == sum(sizes)
    assert got['wsproxy_token_lookups_total{source="file",result="hit"}'] == 3
    assert got['wsproxy_token_lookups_total{source="file",result="miss"}'] == 2
    assert got['wsproxy_token_lookup_seconds_count{source="file"}'] == 5
    assert got["wsproxy_session_duration_seconds_count"] == 3
    assert got['wsproxy_session_duration_seconds_bucket{le="+Inf"}'] == 3
    assert got["wsproxy_connections_open"] == 0
    assert got["process_resident_memory_bytes"] > 1e6
    assert got["process_open_fds"] >= 4 and got["wsproxy_threads"] >= 2
    assert got["process_start_time_seconds"] > 1e9
    # No token names and no addresses in any label.
    assert not re.search(r'"[^"]*(desk|nobody|127\.0\.0\.1)[^"]*"', text)


def test_an_open_sessions_bytes_count_while_it_runs(metered):
    with connect(metered.url("/websockify?token=desk"), max_size=None) as ws:
        echo(ws, b"a" * 5000)
        got = values(scrape(metered.metrics_port))
        assert got["wsproxy_websocket_sessions_open"] == 1
        assert got['wsproxy_bytes_total{direction="client_to_target"}'] == 5000
        assert got['wsproxy_bytes_total{direction="target_to_client"}'] == 5000
        # The scrape's own connection is not the proxy's: one open connection, the session's.
        assert got["wsproxy_connections_open"] == 1
    assert wait_until(lambda: values(scrape(metered.metrics_port))['wsproxy_requests_total{outcome="ws_1000"}'] == 1, 5)


def test_healthz_on_both_ports_and_the_listener_refuses_the_rest(metered):
    for port in (metered.metrics_port, metered.port):
        response = http_exchange(port, get_request("/healthz"))
        assert (response.status, response.body) == (200, b"ok\n")
    assert http_exchange(metered.metrics_port, get_request("/metrics", method="POST")).status == 405
    assert http_exchange(metered.metrics_port, get_request("/elsewhere")).status == 404
    try:   # a head over the bound: 431, or a reset when the reply races the unread rest
        assert http_exchange(metered.metrics_port, get_request("/x", [("X-Big", "a" * 8000)])).status == 431
    except (ConnectionResetError, EOFError):
        pass
    # The listener answers on after each refusal, and on loopback only by default.
    assert scrape(metered.metrics_port).startswith("# HELP")
    assert "metrics: http://127.0.0.1:%d/metrics" % metered.metrics_port in metered.stdout


def test_metrics_port_in_use_is_a_clear_error(start_proxy, echo_server):
    port = free_port()
    holder = start_proxy("--no-web", "--metrics-listen", str(port), "127.0.0.1:%d" % echo_server.port)
    other = start_proxy("--no-web", "--metrics-listen", str(port), "127.0.0.1:%d" % echo_server.port, wait_for=None)
    assert other.proc.wait(10) == 1
    assert "cannot listen for --metrics-listen 127.0.0.1:%d" % port in other.stderr
    assert holder.proc.poll() is None
