"""Real peers for end-to-end tests: TigerVNC Xvnc, the proxy itself, headless Chromium.

Every process started here is stopped by PID by the caller (use them as
context managers).  Everything listens on loopback only.  In CI
(CI=true) a missing tool fails the test instead of skipping it.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WSPROXY = os.path.join(ROOT, "wsproxy.py")

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--disable-dev-shm-usage"]


def require_tool(name: str) -> str:
    """Path of an executable, or skip (fail in CI) with the package to install."""
    path = shutil.which(name)
    if path is None:
        message = "%s is not installed (apt-get install as in .ci/run)" % name
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening on %d" % (proc.returncode, port))
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on %s:%d after %gs" % (host, port, timeout))


def poll(predicate, what: str, timeout: float, describe=lambda: "", interval: float = 0.05):
    """PREDICATE's first truthy value, asked every INTERVAL s; after TIMEOUT s an
    AssertionError naming WHAT, with DESCRIBE()'s details (the page's state, say)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s; %s" % (what, describe()))
        time.sleep(interval)


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


_claimed_displays = set()


def free_display() -> int:
    """An X display number with no socket or lock file (and not handed out before)."""
    for number in range(40, 99):
        if number in _claimed_displays:
            continue
        if not os.path.exists("/tmp/.X11-unix/X%d" % number) and not os.path.exists("/tmp/.X%d-lock" % number):
            _claimed_displays.add(number)
            return number
    raise RuntimeError("no free X display number in :40-:98")


def wait_for_x(display: str, proc, timeout: float = 10.0) -> None:
    """Until the X server behind DISPLAY accepts clients on its Unix socket."""
    path = "/tmp/.X11-unix/X%s" % display.lstrip(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("X server %s exited with %s" % (display, proc.returncode))
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(path)
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("X server %s not up after %gs" % (display, timeout))


@contextlib.contextmanager
def xvnc(geometry: str = "320x200", security: str = "None", password: str = "", extra=()):
    """A TigerVNC server on a free display and loopback port; yields (display, port)."""
    exe = require_tool("Xvnc")
    port = free_port()
    display = free_display()
    tmp = tempfile.mkdtemp(prefix="wsproxy-xvnc-")
    args = [exe, ":%d" % display, "-rfbport", str(port), "-localhost", "-geometry", geometry,
            "-depth", "24", "-SecurityTypes", security, "-AlwaysShared", "-nolisten", "tcp"]
    if password:
        passwd = os.path.join(tmp, "passwd")
        obfuscated = subprocess.run([require_tool("vncpasswd"), "-f"], input=password.encode(),
                                    capture_output=True, check=True).stdout
        with open(passwd, "wb") as handle:
            handle.write(obfuscated)
        args += ["-PasswordFile", passwd]
    args += list(extra)
    log = open(os.path.join(tmp, "xvnc.log"), "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc=proc)
        yield ":%d" % display, port
    finally:
        stop(proc)
        log.close()


class ProxyProcess:
    """A running wsproxy.py: its port, process, banner (stdout) and log (stderr) so far."""

    def __init__(self, port, proc, out_path, err_path):
        self.port, self.proc, self._out, self._err = port, proc, out_path, err_path

    def banner(self) -> str:
        with open(self._out, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def log(self) -> str:
        with open(self._err, encoding="utf-8", errors="replace") as handle:
            return handle.read()


@contextlib.contextmanager
def proxy(*args: str, port: int = 0):
    """wsproxy.py with ARGS, listening on 127.0.0.1:PORT; yields a ProxyProcess.

    Output goes to files, not pipes, so a chatty proxy never blocks on a full pipe.
    """
    port = port or free_port()
    tmp = tempfile.mkdtemp(prefix="wsproxy-proc-")
    out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, WSPROXY, "127.0.0.1:%d" % port] + list(args),
                                stdout=out, stderr=err)
    try:
        wait_for_port(port, proc=proc)
        yield ProxyProcess(port, proc, out_path, err_path)
    finally:
        stop(proc)


NGINX_CONF = """\
daemon off;
master_process off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log info;
events { worker_connections 256; }
http {
    access_log %(dir)s/access.log;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
%(locations)s
    }
}
"""


@contextlib.contextmanager
def nginx(locations: str):
    """Debian's nginx on a free loopback port with LOCATIONS in its one server
    block; yields (port, directory holding access.log and error.log)."""
    exe = require_tool("nginx")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="wsproxy-nginx-")
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as handle:
        handle.write(NGINX_CONF % {"dir": workdir, "port": port, "locations": locations})
    with open(os.path.join(workdir, "stderr"), "wb") as err:
        proc = subprocess.Popen([exe, "-c", conf, "-p", workdir, "-e", os.path.join(workdir, "error.log")],
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for_port(port, proc=proc)
        yield port, workdir
    finally:
        stop(proc, signal.SIGQUIT)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def chromium(window: str = "1280,800"):
    """A headless Debian Chromium driven by chromedriver (never a downloaded browser)."""
    require_tool("chromium")
    driver_path = require_tool("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="wsproxy-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS + ["--user-data-dir=" + profile, "--window-size=" + window]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver_path)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def xvfb(geometry: str = "320x200"):
    """A virtual X server (Xvfb, depth 24, no TCP); yields its display name."""
    exe = require_tool("Xvfb")
    display = ":%d" % free_display()
    tmp = tempfile.mkdtemp(prefix="wsproxy-xvfb-")
    log = open(os.path.join(tmp, "xvfb.log"), "wb")
    proc = subprocess.Popen([exe, display, "-screen", "0", geometry + "x24", "-nolisten", "tcp"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_x(display, proc)
        yield display
    finally:
        stop(proc)
        log.close()


@contextlib.contextmanager
def x11vnc(display: str, extra=()):
    """x11vnc sharing DISPLAY on a free loopback port, no password; yields the port."""
    exe = require_tool("x11vnc")
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="wsproxy-x11vnc-")
    log = open(os.path.join(tmp, "x11vnc.log"), "wb")
    proc = subprocess.Popen([exe, "-display", display, "-rfbport", str(port), "-localhost", "-noipv6",
                             "-nopw", "-forever", "-shared", "-quiet"] + list(extra),
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc=proc, timeout=20)
        yield port
    finally:
        stop(proc)
        log.close()


@contextlib.contextmanager
def x_process(args, display: str, stdin=None):
    """An X client (xev, xclip...) on DISPLAY with its output in a file; yields
    (proc, read_output) where read_output() returns everything written so far."""
    require_tool(args[0])
    tmp = tempfile.mkdtemp(prefix="wsproxy-xclient-")
    out_path = os.path.join(tmp, "out")
    env = dict(os.environ, DISPLAY=display)
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(list(args), stdout=out, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
    if stdin is not None:
        proc.stdin.write(stdin)
        proc.stdin.close()

    def read_output() -> str:
        with open(out_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    try:
        yield proc, read_output
    finally:
        stop(proc)
