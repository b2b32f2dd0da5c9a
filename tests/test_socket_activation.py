"""systemd socket activation (issue 14): LISTEN_FDS / LISTEN_PID.

A tiny launcher binds the socket, puts it on descriptor 3, sets the
variables for its own PID and execs wsproxy in its place (the same PID, as
systemd's fork-then-exec gives).  systemd-socket-activate, where installed,
does the same with the real tool.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import wsproxy
from conftest import ROOT, WSPROXY_PY, free_port, get_request, raw_websocket, read_response, ws_frame

LAUNCHER = r"""
import os, socket, sys
port = int(sys.argv[1])
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", port))
if sys.argv[2] == "listen":
    sock.listen(16)
if sock.fileno() != 3:
    os.dup2(sock.fileno(), 3)
os.set_inheritable(3, True)        # as systemd passes it
env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=sys.argv[3] or str(os.getpid()), LISTEN_FDNAMES="web")
os.execve(sys.executable, [sys.executable] + sys.argv[4:], env)
"""


class Activated:
    def __init__(self, tmp_path, args, mode="listen", pid="", launcher=None):
        self.port = free_port()
        self.err_path = str(tmp_path / ("activated-%d.err" % self.port))
        self.out_path = str(tmp_path / ("activated-%d.out" % self.port))
        if launcher is None:
            launcher = [sys.executable, "-c", LAUNCHER, str(self.port), mode, pid]
        else:
            launcher = launcher(self.port)
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(launcher + [WSPROXY_PY] + list(args), stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, cwd=ROOT,
                                         env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def output(self):
        with open(self.out_path) as out, open(self.err_path) as err:
            return out.read() + err.read()

    def wait_for(self, text, timeout=10.0):
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("no %r in:\n%s" % (text, self.output()))
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def activated(tmp_path):
    started = []

    def start(*args, **kwargs):
        proc = Activated(tmp_path, args, **kwargs)
        started.append(proc)
        return proc
    yield start
    for proc in started:
        proc.stop()


def _serves_websocket(port):
    sock, buf = raw_websocket(port, timeout=10)
    with sock:
        sock.sendall(ws_frame(0x2, b"activated"))
        while b"activated" not in buf:
            buf += sock.recv(4096)
    return True


def test_wsproxy_serves_on_the_socket_systemd_passed(activated, echo_server):
    # --vnc alone would listen on 6080: the passed socket is used instead.
    proxy = activated("--vnc", "127.0.0.1:%d" % echo_server.port)
    proxy.wait_for("listening on 127.0.0.1:%d (from systemd)" % proxy.port)
    assert "listening on 1 socket from systemd (web)" in proxy.output()
    assert _serves_websocket(proxy.port)


def test_a_wrapped_program_inherits_neither_the_variables_nor_the_socket(activated, echo_server, tmp_path):
    env, fds = tmp_path / "env", tmp_path / "fds"
    script = "env > %s; ls /proc/$$/fd > %s.tmp; mv %s.tmp %s; exec sleep 60" % (env, fds, fds, fds)
    proxy = activated("--vnc", "127.0.0.1:%d" % echo_server.port, "--", "sh", "-c", script)
    proxy.wait_for("(from systemd)")
    deadline = time.monotonic() + 10
    while not fds.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "LISTEN_" not in env.read_text()
    assert "3" not in fds.read_text().split()       # the socket stayed with wsproxy
    assert _serves_websocket(proxy.port)


def test_variables_meant_for_another_process_are_ignored(activated, echo_server):
    own = free_port()
    proxy = activated("127.0.0.1:%d" % own, "127.0.0.1:%d" % echo_server.port, pid="1")
    proxy.wait_for("listening on 127.0.0.1:%d\n" % own)
    assert "systemd" not in proxy.output()
    assert _serves_websocket(own)


def test_a_socket_that_does_not_listen_is_a_clear_error(activated):
    proxy = activated("--vnc", "127.0.0.1:5900", mode="bound")
    assert proxy.proc.wait(10) == 2
    assert "descriptor 3 is not a listening stream socket" in proxy.output()


def test_with_systemd_socket_activate(activated, echo_server):
    tool = shutil.which("systemd-socket-activate")
    if tool is None:
        pytest.skip("systemd-socket-activate is not installed (package systemd)")
    proxy = activated("--vnc", "127.0.0.1:%d" % echo_server.port,
                      launcher=lambda port: [tool, "-l", "127.0.0.1:%d" % port, "--fdname=vnc", sys.executable])
    deadline = time.monotonic() + 10
    while True:   # the tool listens first, then starts wsproxy (at once or on the first connection)
        try:
            response = _plain_get(proxy.port)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert response.status in (200, 426)
    proxy.wait_for("listening on 1 socket from systemd (vnc)")
    assert _serves_websocket(proxy.port)


def _plain_get(port):
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(get_request("/websockify"))
        return read_response(sock)


@pytest.mark.parametrize("environ,fds", [
    ({}, []),
    ({"LISTEN_FDS": "2"}, []),                                    # no LISTEN_PID: not ours
    ({"LISTEN_FDS": "2", "LISTEN_PID": "999"}, []),               # another process's
    ({"LISTEN_FDS": "2", "LISTEN_PID": "42"}, [3, 4]),
    ({"LISTEN_FDS": "0", "LISTEN_PID": "42"}, []),
])
def test_which_descriptors_are_ours(environ, fds):
    assert wsproxy.systemd_listen_fds(environ, 42) == fds


def test_a_garbled_count_is_refused():
    with pytest.raises(wsproxy.ConfigError, match="LISTEN_FDS"):
        wsproxy.systemd_listen_fds({"LISTEN_FDS": "x", "LISTEN_PID": "42"}, 42)
