"""The browser client's security types (web/core/security/, issue 15) against a
scripted RFB server written from rfbproto.rst (tests/rfb_server_security.py, its
crypto from the `cryptography` package, not the client's own):

* node: tests/js/security_client.mjs runs web/core/rfb.js over TCP against the
  server for every type and subtype, right and wrong credentials; the server
  checks what arrived (the decrypted username and password), the client that it
  got the server's first update (the server's colour at 0,0).
* Chromium: the real page through wsproxy for each type, the credentials typed
  into the page's dialog, ending connected with the server's colour on the canvas;
  a wrong password ends with the server's reason in the status line.

Every server is a thread here, every process stopped by PID.
"""

import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse

import pytest

import realpeers

rfb_server_security = pytest.importorskip("rfb_server_security", reason="needs the cryptography package")

WEB = os.path.join(realpeers.ROOT, "web")
CLIENT = os.path.join(realpeers.ROOT, "tests", "js", "security_client.mjs")
USERS = {"alice": "pässword"}   # non-ASCII: UTF-8 on the wire
VNC_PASSWORD = "secret"
USER_PASS = {"username": "alice", "password": "pässword"}

# (server kind, server options, what the client is given, what the page must ask for)
CASES = {
    "vencrypt-plain": ("vencrypt", {"subtype": 256}, USER_PASS, ["username", "password"]),
    "vencrypt-vncauth": ("vencrypt", {"subtype": 2}, {"password": VNC_PASSWORD}, ["password"]),
    "vencrypt-none": ("vencrypt", {"subtype": 1}, {}, None),
    "tight-vncauth": ("tight", {"tight_auth": "vnc"}, {"password": VNC_PASSWORD}, ["password"]),
    "tight-none": ("tight", {"tight_auth": "none"}, {}, None),
    "tight-unixlogin": ("tight", {"tight_auth": "unix"}, USER_PASS, ["username", "password"]),
    "xvp": ("xvp", {}, {"username": "alice", "password": VNC_PASSWORD, "target": "vm1"}, ["username", "password"]),
    "ard": ("ard", {}, USER_PASS, ["username", "password"]),
    "mslogon2": ("mslogon2", {}, USER_PASS, ["username", "password"]),
    "ra2ne-user": ("ra2ne", {"ra2_subtype": 1}, USER_PASS, ["username", "password"]),
    "ra2ne-password": ("ra2ne", {"ra2_subtype": 2}, {"password": VNC_PASSWORD}, ["password"]),
}


def node_client(port, creds):
    node = realpeers.require_tool("node")
    out = subprocess.run([node, CLIENT, str(port), json.dumps(creds)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.stdout.strip(), out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def serve(kind, options, connections=1):
    return rfb_server_security.SecurityServer(kind, users=USERS, password=VNC_PASSWORD,
                                              connections=connections, **options).start()


@pytest.mark.parametrize("case", sorted(CASES))
def test_node_client_logs_in_and_gets_the_first_update(case):
    kind, options, creds, asked = CASES[case]
    server = serve(kind, options)
    try:
        result = node_client(server.port, creds)
    finally:
        server.close()
    login = server.logins[0]
    print(case, result, login)
    assert result["state"] == "connected", result
    assert result["chosen"] == rfb_server_security.SECURITY_NUMBER[kind]
    assert result["pixel"] == list(rfb_server_security.COLOUR) + [255]
    assert result["size"] == [rfb_server_security.WIDTH, rfb_server_security.HEIGHT]
    assert result["asked"] == ([asked] if asked else [])
    assert login.ok and login.error is None, login
    if "username" in (asked or []):
        assert login.username == "alice"
    if kind == "xvp":
        assert login.target == "vm1"
    if kind == "ra2ne":
        assert len(result["keys"]) == 1 and len(result["keys"][0]) == 40, "no server key fingerprint"


@pytest.mark.parametrize("case", ["vencrypt-plain", "ard", "mslogon2", "ra2ne-user", "tight-unixlogin",
                                  "vencrypt-vncauth", "xvp"])
def test_node_client_wrong_password_fails_with_the_servers_reason(case):
    kind, options, creds, _asked = CASES[case]
    server = serve(kind, options)
    try:
        result = node_client(server.port, dict(creds, password="wrong"))
    finally:
        server.close()
    print(case, result, server.logins)
    assert result["state"] == "failed", result
    assert result["detail"] == "authentication failed: invalid username or password", result
    assert not server.logins[0].ok
    if kind in ("ard", "mslogon2", "ra2ne") or case == "vencrypt-plain":
        assert server.logins[0].password == "wrong", "the server did not decrypt what the client sent"


def test_node_client_prefers_the_type_that_hides_the_password_best():
    """Offered RA2ne, VncAuth, VeNCrypt and MSLogonII, the client takes RA2ne."""
    server = rfb_server_security.SecurityServer("ra2ne", users=USERS, password=VNC_PASSWORD, ra2_subtype=2,
                                                offer=[113, 19, 2, 6]).start()
    try:
        result = node_client(server.port, {"password": VNC_PASSWORD})
    finally:
        server.close()
    assert result["state"] == "connected", (result, server.logins)


# ---------------------------------------------------------------- the page in Chromium


def wait(driver, predicate, what, timeout=20.0):
    return realpeers.poll(predicate, what, timeout,
                          lambda: "state=%r status=%r" % (page_state(driver), status(driver)))


def page_state(driver):
    return driver.execute_script("return document.body.dataset.state")


def status(driver):
    return driver.execute_script("return document.getElementById('status').textContent")


PIXEL_JS = "const c = document.getElementById('canvas'); " \
           "return c.width ? Array.from(c.getContext('2d').getImageData(0, 0, 1, 1).data) : null;"


def open_page(driver, port, creds):
    query = {"host": "127.0.0.1", "port": str(port), "path": "websockify", "autoconnect": "1"}
    if creds.get("target"):
        query["target"] = creds["target"]
    driver.get("about:blank")
    driver.get("http://127.0.0.1:%d/vnc.html?%s" % (port, urllib.parse.urlencode(query)))


def type_credentials(driver, creds, asked):
    from selenium.webdriver.common.by import By

    dialog = driver.find_element(By.ID, "credentials")
    wait(driver, dialog.is_displayed, "the credentials dialog")
    username = driver.find_element(By.ID, "cred-username")
    assert username.is_displayed() == ("username" in asked), asked
    if "username" in asked:
        username.send_keys(creds["username"])
    driver.find_element(By.ID, "cred-password").send_keys(creds["password"] + "\n")


@pytest.mark.parametrize("case", ["vencrypt-plain", "tight-vncauth", "ard", "mslogon2", "xvp", "ra2ne-user"])
def test_page_logs_in_through_wsproxy(browser, case):
    kind, options, creds, asked = CASES[case]
    server = serve(kind, options, connections=2)
    try:
        with realpeers.proxy("--web", WEB, "--vnc", "127.0.0.1:%d" % server.port) as wsp:
            open_page(browser, wsp.port, creds)
            type_credentials(browser, creds, asked)
            wait(browser, lambda: page_state(browser) == "connected", "connected")
            wait(browser, lambda: browser.execute_script(PIXEL_JS) == list(rfb_server_security.COLOUR) + [255],
                 "the server's colour on the canvas")
            assert creds["password"] not in browser.page_source

            open_page(browser, wsp.port, creds)
            type_credentials(browser, dict(creds, password="wrong"), asked)
            wait(browser, lambda: page_state(browser) == "failed", "the session to fail")
            line = status(browser)
            print(case, "wrong password:", repr(line))
            assert "authentication failed: invalid username or password" in line, line
            browser.get("about:blank")
    finally:
        server.close()
    assert [login.ok for login in server.logins] == [True, False], server.logins


# ---------------------------------------------------------------- a real Tight-security server


def xtightvnc_path():
    """TightVNC 1.3's Xtightvnc (Debian tightvncserver; installing it makes it the Xvnc
    alternative, so it may also be unpacked elsewhere and named by WSPROXY_XTIGHTVNC)."""
    path = os.environ.get("WSPROXY_XTIGHTVNC") or shutil.which("Xtightvnc")
    if not path:
        realpeers.require_tool("Xtightvnc")
    return path


def test_node_client_tight_security_against_tightvnc():
    exe = xtightvnc_path()
    port, display = realpeers.free_port(), realpeers.free_display()
    workdir = tempfile.mkdtemp(prefix="wsproxy-xtightvnc-")
    passwd = os.path.join(workdir, "passwd")
    with open(passwd, "wb") as handle:
        handle.write(subprocess.run([realpeers.require_tool("vncpasswd"), "-f"], input=VNC_PASSWORD.encode(),
                                    capture_output=True, check=True).stdout)
    with open(os.path.join(workdir, "log"), "wb") as log:
        proc = subprocess.Popen([exe, ":%d" % display, "-rfbport", str(port), "-rfbauth", passwd, "-localhost",
                                 "-geometry", "200x120", "-depth", "24", "-nolisten", "tcp"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        realpeers.wait_for_port(port, proc=proc)
        right = node_client(port, {"password": VNC_PASSWORD, "securityTypes": [16]})
        wrong = node_client(port, {"password": "wrong", "securityTypes": [16]})
    finally:
        realpeers.stop(proc)
    print("TightVNC:", right, wrong)
    assert right["chosen"] == 16, "not the Tight security type: %r" % right
    assert right["state"] == "connected" and right["size"] == [200, 120], right
    assert right["asked"] == [["password"]]
    assert wrong["state"] == "failed" and wrong["detail"].startswith("authentication failed"), wrong
