"""websockify 0.13 options that wsproxy takes with websockify's meaning (issue 13 item 4), run for real:
--syslog SERVER and --legacy-syslog, -6, --run-once, --inetd, --unix-listen-mode, --key-password,
--verify-client with --cafile, wrapped programs (-- PROGRAM, --wrap-mode), and the banner's
advice for a public --demo (item 7).  Command-line parsing alone is in test_cli.py."""

import logging
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time

import pytest

import wsproxy
from conftest import (WSPROXY_PY, free_port, get_request, raw_websocket, read_close_code, read_response,
                      read_ws_frame, upgrade_headers, wait_until, ws_frame)
from wsproxy import ConfigError, Server, Target, parse_args


def echo_through(sock, buf, payload=b"hello"):
    sock.sendall(ws_frame(0x2, payload))
    _, opcode, data = read_ws_frame(sock, buf)
    return opcode, data


def spawn(argv, **kwargs):
    """``python3 wsproxy.py ARGV`` with its log in a pipe (stopped by the caller, by PID)."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([sys.executable, WSPROXY_PY] + list(argv), text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), **kwargs)


def stop(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    out, err = proc.communicate()
    return out or "", err or ""


def wait_listening(port, proc, timeout=10.0):
    def ready():
        if proc.poll() is not None:
            return True
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    assert wait_until(ready, timeout) and proc.poll() is None, stop(proc)


# -- --syslog SERVER, --legacy-syslog -----------------------------------------------------------


@pytest.fixture
def wsproxy_log():
    """Take the handlers setup_logging adds off the 'wsproxy' logger afterwards."""
    logger = logging.getLogger("wsproxy")
    before, level = list(logger.handlers), logger.level
    yield logger
    for handler in logger.handlers[len(before):]:
        handler.close()
    logger.handlers[:] = before
    logger.setLevel(level)


def _syslog_record(argv, logger, receiver):
    config = parse_args(argv + ["6080", "h:1"])
    wsproxy.setup_logging(config)
    logger.info("conn 1 127.0.0.1:5000: open -> h:1")
    receiver.settimeout(5)
    return receiver.recv(4096).decode("utf-8")


@pytest.fixture
def udp_receiver():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        yield receiver


def test_syslog_to_a_udp_server_in_rfc_5424(wsproxy_log, udp_receiver):
    port = udp_receiver.getsockname()[1]
    line = _syslog_record(["--syslog", "127.0.0.1:%d" % port], wsproxy_log, udp_receiver)
    # <PRI = user.info>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
    head, _, message = line.partition(" - - ")
    fields = head.split(" ")
    assert fields[0] == "<14>1" and fields[3:] == ["wsproxy", str(os.getpid())], line
    assert time.strptime(fields[1][:19], "%Y-%m-%dT%H:%M:%S") and fields[1][-6] in "+-", line
    assert fields[2] == socket.gethostname()
    assert message.rstrip("\0") == "conn 1 127.0.0.1:5000: open -> h:1"


def test_legacy_syslog_is_rfc_3164(wsproxy_log, udp_receiver):
    port = udp_receiver.getsockname()[1]
    line = _syslog_record(["--syslog", "127.0.0.1:%d" % port, "--legacy-syslog"], wsproxy_log, udp_receiver)
    # <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG
    assert line.startswith("<14>"), line
    stamp = line[4:19]
    time.strptime(stamp.replace("  ", " 0"), "%b %d %H:%M:%S")
    assert line[19:].rstrip("\0") == " %s wsproxy[%d]: conn 1 127.0.0.1:5000: open -> h:1" % (
        socket.gethostname(), os.getpid())


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")
def test_syslog_to_a_local_socket(wsproxy_log, tmp_path):
    path = str(tmp_path / "log")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(path)
        line = _syslog_record(["--syslog", path], wsproxy_log, receiver)
    assert line.startswith("<14>1 ") and "open -> h:1" in line


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")
def test_syslog_that_cannot_be_reached_is_one_sentence(tmp_path):
    (tmp_path / "file").write_text("")
    for where in (tmp_path / "nolog", tmp_path / "file"):
        result = subprocess.run([sys.executable, WSPROXY_PY, "--syslog", str(where), "127.0.0.1:%d" % free_port(),
                                 "h:1"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr == "wsproxy.py: error: cannot log to --syslog %s: no socket there " \
                                "(is a syslog daemon running?)\n" % where


# -- -6 / --prefer-ipv6 -----------------------------------------------------------------------------


def _ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture
def dual_name(monkeypatch):
    """A host name that resolves to 127.0.0.1 and ::1, whatever /etc/hosts says of localhost."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "dual.test":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0))]
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return "dual.test"


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
@pytest.mark.parametrize("flag, families", [("-6", {socket.AF_INET6}), ("--prefer-ipv6", {socket.AF_INET6}),
                                            (None, {socket.AF_INET, socket.AF_INET6})])
def test_prefer_ipv6_listens_on_the_ipv6_addresses_of_the_name(dual_name, flag, families):
    port = free_port()
    server = Server(parse_args(([flag] if flag else []) + ["--no-web", "%s:%d" % (dual_name, port), "h:1"]))
    try:
        server.bind()
        assert {sock.family for sock in server.listeners} == families   # without -6: every address
    finally:
        server.shutdown(grace=0)


def test_prefer_ipv6_falls_back_to_ipv4_for_an_ipv4_name():
    port = free_port()
    server = Server(parse_args(["-6", "--no-web", "127.0.0.1:%d" % port, "h:1"]))
    try:
        server.bind()
        assert server.addresses() == ["127.0.0.1:%d" % port]
    finally:
        server.shutdown(grace=0)


# -- --unix-listen-mode -------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")
@pytest.mark.parametrize("mode_args, mode", [([], 0o600), (["--unix-listen-mode", "0660"], 0o660),
                                             (["--unix-listen-mode", "777"], 0o777)])
def test_unix_listen_mode_sets_the_socket_permissions(tmp_path, mode_args, mode):
    path = str(tmp_path / "ws.sock")
    old_umask = os.umask(0o022)   # what the socket would get without the option: 0755
    try:
        server = Server(parse_args(["--unix-listen", path, "--no-web", "h:1"] + mode_args))
        server.bind()
    finally:
        os.umask(old_umask)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
    finally:
        server.shutdown(grace=0)


# -- --run-once ------------------------------------------------------------------------------------------


def test_run_once_serves_one_websocket_then_exits(echo_server, tmp_path):
    (tmp_path / "vnc.html").write_text("<title>vnc</title>")
    port = free_port()
    proc = spawn(["--run-once", "--traffic", "--web", str(tmp_path), "127.0.0.1:%d" % port,
                  "127.0.0.1:%d" % echo_server.port])
    try:
        wait_listening(port, proc)
        # A failed upgrade (wrong version: 426) does not use up the one connection.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as bad:
            headers = [h for h in upgrade_headers() if h[0] != "Sec-WebSocket-Version"]
            bad.sendall(get_request("/websockify", headers + [("Sec-WebSocket-Version", "8")]))
            assert read_response(bad).status == 426
        sock, buf = raw_websocket(port)
        with sock:
            assert echo_through(sock, buf) == (0x2, b"hello")
            with socket.create_connection(("127.0.0.1", port), timeout=5) as second:
                second.sendall(get_request("/websockify", upgrade_headers()))
                refused = read_response(second)
            assert refused.status == 503 and b"--run-once" in refused.body
            with socket.create_connection(("127.0.0.1", port), timeout=5) as page:
                page.sendall(get_request("/vnc.html"))
                assert read_response(page).status == 200    # files are still served meanwhile
            assert proc.poll() is None
            sock.sendall(ws_frame(0x8, b"\x03\xe8"))
            assert read_close_code(sock, buf)[0] == 1000
        assert proc.wait(15) == 0
    finally:
        out, err = stop(proc)
    assert "--run-once" in err and "stopping" in err, err
    assert "--traffic: wsproxy counts each connection's bytes" in err


# -- --inetd ---------------------------------------------------------------------------------------------------


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


def _serves_websocket(port, proc):
    sock, buf = raw_websocket(port)
    with sock:
        assert echo_through(sock, buf, b"through inetd") == (0x2, b"through inetd")
    assert proc.poll() is None


@pytest.mark.skipif(os.name != "posix", reason="inetd passes descriptors on POSIX")
def test_inetd_takes_the_listening_socket_from_stdin(listener, echo_server):
    port = listener.getsockname()[1]
    proc = spawn(["--inetd", "--no-web", "127.0.0.1:%d" % echo_server.port], stdin=listener.fileno())
    try:
        _serves_websocket(port, proc)
    finally:
        out, err = stop(proc)
    assert out == ""   # the banner goes to the log: stdout may be the socket
    assert "listening on 127.0.0.1:%d (from standard input, --inetd)" % port in err


@pytest.mark.skipif(os.name != "posix", reason="inetd passes descriptors on POSIX")
def test_inetd_with_the_socket_as_stdout_and_stderr_too(listener, echo_server, tmp_path):
    # inetd (and systemd's StandardInput=socket) may hand over the socket as 0, 1 and 2.
    port = listener.getsockname()[1]
    log_file = tmp_path / "wsproxy.log"
    proc = spawn(["--inetd", "--no-web", "--log-file", str(log_file), "127.0.0.1:%d" % echo_server.port],
                 stdin=listener.fileno(), stdout=listener.fileno(), stderr=listener.fileno())
    try:
        _serves_websocket(port, proc)
    finally:
        stop(proc)
    assert "listening on 127.0.0.1:%d" % port in log_file.read_text()


@pytest.mark.skipif(os.name != "posix", reason="inetd passes descriptors on POSIX")
def test_inetd_without_a_listening_socket_is_one_sentence(listener):
    result = subprocess.run([sys.executable, WSPROXY_PY, "--inetd", "h:1"], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith("wsproxy.py: error: --inetd needs a listening socket on standard input")
    with socket.create_connection(listener.getsockname()) as connected:
        result = subprocess.run([sys.executable, WSPROXY_PY, "--inetd", "h:1"], stdin=connected.fileno(),
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--inetd needs a listening stream socket on standard input, not a connected one" in result.stderr


# -- --key-password, --verify-client with --cafile -----------------------------------------------------------


def _openssl(*args):
    import realpeers
    openssl = realpeers.require_tool("openssl")   # fails in CI, skips elsewhere
    subprocess.run([openssl] + list(args), check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA, a client certificate it signed, a self-signed client
    certificate, and a server certificate whose key is encrypted."""
    where = tmp_path_factory.mktemp("pki")
    path = {name: str(where / name) for name in ("ca.pem", "ca.key", "client.pem", "client.key", "client.csr",
                                                 "rogue.pem", "rogue.key", "server.pem", "server.key")}
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path["ca.key"], "-out", path["ca.pem"],
             "-days", "1", "-subj", "/CN=wsproxy test CA")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", path["client.key"], "-out", path["client.csr"],
             "-subj", "/CN=alice")
    _openssl("x509", "-req", "-in", path["client.csr"], "-CA", path["ca.pem"], "-CAkey", path["ca.key"],
             "-CAcreateserial", "-out", path["client.pem"], "-days", "1")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path["rogue.key"], "-out", path["rogue.pem"],
             "-days", "1", "-subj", "/CN=alice")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-keyout", path["server.key"], "-out", path["server.pem"],
             "-passout", "pass:s3cret", "-days", "1", "-subj", "/CN=localhost")
    return path


def test_key_password_decrypts_the_key(pki):
    argv = ["--cert", pki["server.pem"], "--key", pki["server.key"], "6080", "h:1"]
    assert wsproxy.make_tls_context(parse_args(argv + ["--key-password", "s3cret"])) is not None
    with pytest.raises(ConfigError) as info:
        wsproxy.make_tls_context(parse_args(argv + ["--key-password", "wrong"]))
    assert "the --key-password does not decrypt the private key" in str(info.value)
    with pytest.raises(ConfigError) as info:       # never a passphrase prompt on the terminal
        wsproxy.make_tls_context(parse_args(argv))
    assert "encrypted with a passphrase: give it with --key-password" in str(info.value)


def _client_context(cert=None, key=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE      # the test server's certificate is self-signed
    if cert:
        context.load_cert_chain(cert, key)
    return context


def _tls_upgrade(port, context):
    """The HTTP status of a WebSocket upgrade over TLS, or the error that stopped it."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        with context.wrap_socket(raw) as sock:
            sock.sendall(get_request("/websockify", upgrade_headers()))
            return read_response(sock).status
    except (ssl.SSLError, ConnectionResetError, EOFError, BrokenPipeError) as exc:
        return exc


@pytest.fixture(scope="module")
def verifying_proxy(pki, tmp_path_factory):
    echo = __import__("conftest").EchoServer()
    port = free_port()
    proc = spawn(["--cert", pki["server.pem"], "--key", pki["server.key"], "--key-password", "s3cret",
                  "--verify-client", "--cafile", pki["ca.pem"], "--no-web",
                  "127.0.0.1:%d" % port, "127.0.0.1:%d" % echo.port])
    wait_listening(port, proc)
    yield port, proc
    stop(proc)
    echo.close()


def test_verify_client_admits_a_certificate_signed_by_the_ca(pki, verifying_proxy):
    port, _ = verifying_proxy
    assert _tls_upgrade(port, _client_context(pki["client.pem"], pki["client.key"])) == 101


@pytest.mark.parametrize("who", ["rogue", None])
def test_verify_client_refuses_other_and_missing_certificates(pki, verifying_proxy, who):
    port, proc = verifying_proxy
    cert = pki[who + ".pem"] if who else None
    result = _tls_upgrade(port, _client_context(cert, pki[who + ".key"] if who else None))
    assert isinstance(result, Exception), result
    assert proc.poll() is None    # and the server goes on serving others


def test_verify_client_refuses_plain_connections(verifying_proxy):
    port, _ = verifying_proxy
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(get_request("/websockify", upgrade_headers()))
        assert read_response(sock).status == 400   # a plain client would bypass the certificate check


def test_banner_says_client_certificates_are_required(pki):
    config = parse_args(["--cert", pki["server.pem"], "--key", pki["server.key"], "--key-password", "s3cret",
                         "--verify-client", "--cafile", pki["ca.pem"], "--no-web", "127.0.0.1:6080", "h:1"])
    server = Server(config)
    try:
        text = "\n".join(wsproxy.banner(server))
    finally:
        server.shutdown(grace=0)
    assert "required (--ssl-only)" in text and "client certificates required, signed by a CA in %s" % pki["ca.pem"] in text


def test_a_cafile_without_certificates_is_one_sentence(pki, tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_text("no certificates here\n")
    config = parse_args(["--cert", pki["client.pem"], "--key", pki["client.key"], "--verify-client",
                         "--cafile", str(empty), "6080", "h:1"])
    with pytest.raises(ConfigError) as info:
        wsproxy.make_tls_context(config)
    assert str(info.value).startswith("cannot load --cafile %s: " % empty)


# -- wrapped programs: -- PROGRAM, --wrap-mode ------------------------------------------------------------------

ECHO_PROGRAM = """
import os, socket, sys
open(sys.argv[2], "w").write(str(os.getpid()))
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    conn, _ = server.accept()
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
"""


def _ready_websocket(port, proc, timeout=10.0):
    """Open a WebSocket once the wrapped program listens (502 until then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return raw_websocket(port)
        except (AssertionError, OSError):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.1)


def test_wrapped_program_runs_and_is_proxied_then_stopped(tmp_path):
    port, program_port = free_port(), free_port()
    pid_file = tmp_path / "pid"
    proc = spawn(["--no-web", "127.0.0.1:%d" % port, "127.0.0.1:%d" % program_port,
                  "--", sys.executable, "-c", ECHO_PROGRAM, str(program_port), str(pid_file)])
    try:
        wait_listening(port, proc)
        sock, buf = _ready_websocket(port, proc)
        with sock:
            assert echo_through(sock, buf, b"to the wrapped program") == (0x2, b"to the wrapped program")
        child = int(pid_file.read_text())
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0, err
    assert "wrapped program: %s -c" % sys.executable in out
    assert wait_until(lambda: not _alive(child), 5), "the wrapped program outlived the proxy"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie of ours is gone too
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


@pytest.mark.parametrize("status, exit_code", [(0, 0), (3, 1)])
def test_wrap_mode_exit_stops_the_proxy_when_the_program_exits(status, exit_code):
    port = free_port()
    proc = spawn(["--no-web", "127.0.0.1:%d" % port, "127.0.0.1:9", "--", sys.executable, "-c",
                  "import sys, time; time.sleep(1); sys.exit(%d)" % status])
    try:
        assert proc.wait(15) == exit_code
    finally:
        out, err = stop(proc)
    assert "wrapped program exited with status %d (--wrap-mode exit)" % status in err


def test_wrap_mode_ignore_keeps_serving():
    port = free_port()
    proc = spawn(["--no-web", "--wrap-mode", "ignore", "127.0.0.1:%d" % port, "127.0.0.1:9", "--",
                  sys.executable, "-c", "pass"])
    try:
        wait_listening(port, proc)
        assert wait_until(lambda: proc.poll() is not None, 2) is False
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(get_request("/websockify"))
            assert read_response(sock).status in (426, 502)
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0
    assert "wrapped program exited with status 0 (--wrap-mode ignore)" in err


def test_wrap_mode_respawn_starts_the_program_again(tmp_path):
    port = free_port()
    runs = tmp_path / "runs"
    proc = spawn(["--no-web", "--wrap-mode", "respawn", "127.0.0.1:%d" % port, "127.0.0.1:9", "--",
                  sys.executable, "-c", "open(%r, 'a').write('run\\n')" % str(runs)])
    try:
        # Dying young, it is restarted after 1 s, then 2 s, ...: three runs within about 3 s.
        assert wait_until(lambda: runs.exists() and runs.read_text().count("run") >= 3, 10)
        assert proc.poll() is None
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0
    assert err.count("(--wrap-mode respawn)") >= 2


def test_a_wrapped_program_that_does_not_exist_is_one_sentence():
    result = subprocess.run([sys.executable, WSPROXY_PY, "6080", "localhost:5901", "--", "no-such-vncserver-here"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "wsproxy.py: error: cannot find the wrapped program 'no-such-vncserver-here'\n"


# -- the banner's advice for a public listener (issue 13 item 7) ------------------------------------------------


@pytest.mark.parametrize("argv, fix", [
    (["--demo"], "use --demo 127.0.0.1:6080"),
    (["--demo", "7000"], "use --demo 127.0.0.1:7000"),
    (["6080", "localhost:5901"], "use 127.0.0.1:6080 as the listen address"),
])
def test_public_warning_says_how_to_listen_on_loopback(argv, fix):
    config = parse_args(argv)
    server = Server(config)
    try:
        if config.demo:
            config.target = Target("127.0.0.1", 5900)   # as main() does once the demo desktop is bound
        lines = wsproxy.banner(server)
    finally:
        server.shutdown(grace=0)
    warning = [line for line in lines if line.startswith("warning:")]
    assert len(warning) == 1 and warning[0].endswith(fix), lines
    loopback = Server(parse_args(["--demo", "127.0.0.1:6080"]))
    try:
        assert not [line for line in wsproxy.banner(loopback) if line.startswith("warning:")]
    finally:
        loopback.shutdown(grace=0)
