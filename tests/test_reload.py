"""Reload without a restart, and draining (issue 14): SIGHUP loads a new TLS
certificate for new connections while open sessions go on, keeps the old
one when the new files are bad, and re-reads the token source; SIGTERM with
--drain-seconds turns /healthz to 503 while sessions still relay, then
closes them with 1001."""

import hashlib
import os
import signal
import socket
import ssl
import subprocess

import pytest
import websockets
from websockets.sync.client import connect

import realpeers
from conftest import free_port, get_request, http_exchange, wait_until


def client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE   # self-signed test certificates
    return context


def make_cert(where, name: str, serial: int):
    openssl = realpeers.require_tool("openssl")
    cert, key = str(where / (name + ".pem")), str(where / (name + ".key"))
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                    "-set_serial", str(serial)], check=True, capture_output=True, timeout=60)
    return cert, key


def fingerprint_of_file(path: str) -> str:
    with open(path) as handle:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(handle.read())).hexdigest()


def served_fingerprint(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client_context().wrap_socket(raw) as sock:
            return hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()


def replace(src: str, dst: str) -> None:
    """dst takes src's bytes at once, as a deploy tool's rename does."""
    with open(src, "rb") as handle:
        data = handle.read()
    with open(dst + ".new", "wb") as handle:
        handle.write(data)
    os.replace(dst + ".new", dst)


def echo(ws, payload: bytes = b"hello") -> bytes:
    ws.send(payload)
    out = b""
    while len(out) < len(payload):
        out += ws.recv(timeout=5)
    return out


def sighup_and_wait(proxy, count: int) -> str:
    """Send SIGHUP; the log once it holds ``count`` reload lines."""
    proxy.signal(signal.SIGHUP)
    return proxy.wait_stderr(lambda text: text.count("reload (SIGHUP)") >= count)


def test_sighup_loads_a_new_certificate_and_open_sessions_go_on(start_proxy, echo_server, tmp_path):
    first, second = make_cert(tmp_path, "first", 1001), make_cert(tmp_path, "second", 2002)
    cert, key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    replace(first[0], cert)
    replace(first[1], key)
    proxy = start_proxy("--cert", cert, "--key", key, "--no-web", "127.0.0.1:%d" % echo_server.port)
    assert served_fingerprint(proxy.port) == fingerprint_of_file(first[0])
    with connect(proxy.url(scheme="wss"), ssl=client_context()) as old_session:
        assert echo(old_session, b"before") == b"before"
        replace(second[0], cert)
        replace(second[1], key)
        log = sighup_and_wait(proxy, 1)
        assert "reload (SIGHUP): TLS certificate reloaded from %s" % cert in log
        assert served_fingerprint(proxy.port) == fingerprint_of_file(second[0])
        assert echo(old_session, b"after the reload") == b"after the reload"
        with connect(proxy.url(scheme="wss"), ssl=client_context()) as new_session:
            assert echo(new_session, b"new") == b"new"

        # A broken certificate file: the one in use stays, and the log says why.
        with open(cert, "w") as handle:
            handle.write("not a certificate\n")
        log = sighup_and_wait(proxy, 2)
        assert "TLS certificate NOT reloaded, the old one stays" in log
        assert "holds no PEM certificate" in log
        assert served_fingerprint(proxy.port) == fingerprint_of_file(second[0])
        assert echo(old_session, b"still here") == b"still here"
    assert proxy.proc.poll() is None


def test_a_key_that_does_not_match_keeps_the_old_certificate(start_proxy, echo_server, tmp_path):
    first, second = make_cert(tmp_path, "first", 1), make_cert(tmp_path, "second", 2)
    cert, key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    replace(first[0], cert)
    replace(first[1], key)
    proxy = start_proxy("--cert", cert, "--key", key, "--no-web", "127.0.0.1:%d" % echo_server.port)
    replace(second[0], cert)   # the new certificate, but the key not (yet) swapped
    log = sighup_and_wait(proxy, 1)
    assert "does not belong to the certificate" in log
    assert served_fingerprint(proxy.port) == fingerprint_of_file(first[0])


def test_sighup_rereads_a_read_only_token_file(start_proxy, echo_server, tmp_path):
    tokens = tmp_path / "tokens.conf"
    tokens.write_text("one: 127.0.0.1:%d\n" % echo_server.port)
    proxy = start_proxy("--no-web", "--token-plugin", "ReadOnlyTokenFile", "--token-source", str(tokens))
    tokens.write_text("one: 127.0.0.1:%d\ntwo: 127.0.0.1:%d\n" % (echo_server.port, echo_server.port))
    with pytest.raises(websockets.exceptions.InvalidStatus):
        connect(proxy.url("/websockify?token=two"), open_timeout=5)   # read-only: not seen on its own
    log = sighup_and_wait(proxy, 1)
    assert "reload (SIGHUP): token source reloaded (2 tokens)" in log
    with connect(proxy.url("/websockify?token=two")) as ws:
        assert echo(ws) == b"hello"


def health(port: int) -> int:
    return http_exchange(port, get_request("/healthz")).status


def test_sigterm_drains_healthz_turns_503_while_sessions_relay_then_1001(start_proxy, echo_server):
    metrics_port = free_port()
    proxy = start_proxy("--no-web", "--drain-seconds", "3", "--metrics-listen", str(metrics_port),
                        "127.0.0.1:%d" % echo_server.port)
    assert health(metrics_port) == health(proxy.port) == 200
    with connect(proxy.url()) as session:
        assert echo(session) == b"hello"
        proxy.signal(signal.SIGTERM)
        assert wait_until(lambda: health(metrics_port) == 503, 5)
        assert health(proxy.port) == 503
        assert "draining for 3s" in proxy.stderr
        assert echo(session, b"during the drain") == b"during the drain"
        with connect(proxy.url()) as late:   # a load balancer's stragglers are still served
            assert echo(late, b"late") == b"late"
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            while True:
                session.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert proxy.proc.wait(10) == 0


def test_a_second_signal_ends_the_drain_at_once(start_proxy, echo_server):
    proxy = start_proxy("--no-web", "--drain-seconds", "600", "127.0.0.1:%d" % echo_server.port)
    with connect(proxy.url()) as session:
        proxy.signal(signal.SIGTERM)
        assert wait_until(lambda: health(proxy.port) == 503, 5)
        proxy.signal(signal.SIGTERM)
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            while True:
                session.recv(timeout=10)
    assert closed.value.rcvd.code == 1001
    assert proxy.proc.wait(10) == 0
