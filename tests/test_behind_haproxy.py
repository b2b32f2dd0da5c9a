"""wsproxy behind a real HAProxy in TCP mode, with the PROXY protocol (issue 14).

HAProxy passes the bytes through untouched and puts a PROXY header (v1 with
``send-proxy``, v2 with ``send-proxy-v2``) in front of them.  Clients connect
from 127.0.0.2 and 127.0.0.3, so the address wsproxy logs and limits can be
told from HAProxy's own (127.0.0.1).
"""

import contextlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

import realpeers
from conftest import free_port, get_request, read_response, recv_until_eof, upgrade_headers, wait_until

# The configuration the README shows, with the ports filled in; the v2
# backend's health checks carry a PROXY header too (a v2 LOCAL command).
HAPROXY_CFG = """\
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 1m
    timeout server 1m
frontend vnc_v2
    bind 127.0.0.1:%(v2)d
    default_backend wsproxy_v2
frontend vnc_v1
    bind 127.0.0.1:%(v1)d
    default_backend wsproxy_v1
backend wsproxy_v2
    server ws1 127.0.0.1:%(ws)d send-proxy-v2 check check-send-proxy inter 300ms
backend wsproxy_v1
    server ws1 127.0.0.1:%(ws)d send-proxy
"""


@contextlib.contextmanager
def haproxy(ws_port):
    """HAProxy in the foreground (-db) on two free loopback ports; yields
    {"v1": port, "v2": port}.  Stopped by PID."""
    exe = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if exe is None:
        realpeers.require_tool("haproxy")   # skips, or fails in CI
    ports = {"v1": free_port(), "v2": free_port(), "ws": ws_port}
    workdir = tempfile.mkdtemp(prefix="wsproxy-haproxy-")
    cfg = os.path.join(workdir, "haproxy.cfg")
    with open(cfg, "w") as handle:
        handle.write(HAPROXY_CFG % ports)
    with open(os.path.join(workdir, "stderr"), "wb") as err:
        proc = subprocess.Popen([exe, "-db", "-f", cfg], stdout=subprocess.DEVNULL, stderr=err)
    try:
        realpeers.wait_for_port(ports["v1"], proc=proc)
        realpeers.wait_for_port(ports["v2"], proc=proc)
        yield ports
    finally:
        realpeers.stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def connect_from(source, port):
    """A TCP connection to 127.0.0.1:port from ``source`` (bound before connect)."""
    sock = socket.socket()
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def upgrade(sock, extra=()):
    sock.sendall(get_request("/websockify", list(upgrade_headers()) + list(extra)))
    return read_response(sock)


@pytest.fixture
def behind(start_proxy, echo_server):
    """start(*wsproxy options) -> (wsproxy process, HAProxy ports)."""
    with contextlib.ExitStack() as stack:
        def start(*args):
            proxy = start_proxy("--proxy-protocol", *args, "127.0.0.1:%d" % echo_server.port)
            return proxy, stack.enter_context(haproxy(proxy.port))
        yield start


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_the_client_behind_haproxy_is_the_one_logged(behind, version):
    from websockets.sync.client import connect
    proxy, ports = behind("--trusted-proxy", "127.0.0.1")
    sock = connect_from("127.0.0.2", ports[version])
    client_port = sock.getsockname()[1]
    with connect("ws://127.0.0.1:%d/websockify" % ports[version], sock=sock, open_timeout=10) as ws:
        ws.send(b"through haproxy")
        assert ws.recv(timeout=10) == b"through haproxy"
    log = proxy.wait_stderr(lambda text: "closed code=" in text)
    assert "127.0.0.2:%d: open -> " % client_port in log
    assert "127.0.0.2:%d: closed code=" % client_port in log
    assert "refused" not in log        # HAProxy's health checks (v2 LOCAL) are accepted quietly


def test_a_spoofed_x_forwarded_for_is_not_believed_from_the_proxied_client(behind):
    proxy, ports = behind("--trusted-proxy", "127.0.0.1")
    with connect_from("127.0.0.2", ports["v2"]) as sock:
        assert upgrade(sock, [("X-Forwarded-For", "203.0.113.9")]).status == 101
    log = proxy.wait_stderr(lambda text: "open -> " in text)
    assert "127.0.0.2:" in log and "203.0.113.9" not in log


def test_tls_after_the_proxy_header(behind, cert):
    proxy, ports = behind("--cert", cert[0], "--key", cert[1])
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    raw = connect_from("127.0.0.2", ports["v2"])
    with context.wrap_socket(raw, server_hostname="localhost") as sock:
        assert upgrade(sock).status == 101
    assert "127.0.0.2:" in proxy.wait_stderr(lambda text: "open -> " in text)


def test_a_connection_without_the_header_is_refused_and_logged(behind):
    proxy, _ = behind()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(get_request("/websockify", upgrade_headers()))
        assert recv_until_eof(sock) == b""          # closed, no reply
    log = proxy.wait_stderr(lambda text: "refused" in text)
    lines = [line for line in log.splitlines() if "refused" in line]
    assert len(lines) == 1 and "no PROXY protocol header (the connection starts b'GET /web')" in lines[0]
    assert "open -> " not in log
    assert "warning: --proxy-protocol without --trusted-proxy" in proxy.stdout


def test_a_header_from_a_peer_outside_trusted_proxy_is_refused(behind):
    proxy, ports = behind("--trusted-proxy", "127.0.0.1")
    # Straight to wsproxy from 127.0.0.3, with a header claiming some other client.
    with connect_from("127.0.0.3", proxy.port) as sock:
        sock.sendall(b"PROXY TCP4 198.51.100.7 127.0.0.1 1234 80\r\n" + get_request("/websockify", upgrade_headers()))
        assert recv_until_eof(sock) == b""
    log = proxy.wait_stderr(lambda text: "refused" in text)
    assert "127.0.0.3:" in log and "accepted only from --trusted-proxy" in log
    assert "198.51.100.7" not in log
    with connect_from("127.0.0.2", ports["v2"]) as sock:   # HAProxy (127.0.0.1) still is
        assert upgrade(sock).status == 101


def test_max_connections_per_ip_counts_the_proxied_addresses(behind):
    proxy, ports = behind("--max-connections-per-ip", "1")
    first = connect_from("127.0.0.2", ports["v2"])
    other = connect_from("127.0.0.3", ports["v1"])
    try:
        assert upgrade(first).status == 101
        assert upgrade(other).status == 101          # another address: its own count
        with connect_from("127.0.0.2", ports["v2"]) as again:
            refused = upgrade(again)
        assert refused.status == 429
        assert b"too many connections from your address (limit 1)" in refused.body
        log = proxy.wait_stderr(lambda text: "-> 429" in text)
        assert re.search(r"conn \d+ 127\.0\.0\.2:\d+: GET /websockify -> 429 too many connections", log)
    finally:
        first.close()
        other.close()
    def upgrades_again():   # the count is released when the first connection closes
        with connect_from("127.0.0.2", ports["v2"]) as sock:
            return upgrade(sock).status == 101
    assert wait_until(upgrades_again, 10)


@pytest.mark.parametrize("header", [b"PROXY TCP4 198.51.100.7 127.0.0.1 1234 80\r\n",
                                    b"PROXY UNKNOWN\r\n",
                                    b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0f"   # v2 with a 3-byte TLV
                                    b"\xc6\x33\x64\x07\x7f\x00\x00\x01\x04\xd2\x00\x50\x04\x00\x00"])
def test_the_request_in_the_same_segment_as_the_header_is_untouched(start_proxy, echo_server, header):
    proxy = start_proxy("--proxy-protocol", "127.0.0.1:%d" % echo_server.port)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(header + get_request("/websockify", upgrade_headers()))
        assert read_response(sock).status == 101
    log = proxy.wait_stderr(lambda text: "open -> " in text)
    expected = "198.51.100.7:1234" if b"UNKNOWN" not in header else "127.0.0.1:"   # UNKNOWN: the socket's
    assert expected in [line for line in log.splitlines() if "open -> " in line][0]


@pytest.mark.slow
def test_a_header_that_never_completes_times_out(start_proxy, echo_server):
    proxy = start_proxy("--proxy-protocol", "127.0.0.1:%d" % echo_server.port)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=15) as sock:
        sock.sendall(b"PROXY TCP4 198.51.")
        started = time.monotonic()
        assert recv_until_eof(sock) == b""
        waited = time.monotonic() - started
    assert 4 <= waited <= 8
    assert "no complete PROXY protocol header within 5s" in proxy.wait_stderr(lambda text: "refused" in text)
