"""web/ settings and the page around the session (issue 15), in headless Chromium.

* The settings panel: a choice made there is saved (localStorage) and used after a
  reload; a URL parameter wins over the saved choice for that visit without
  overwriting it; view_clip=1 clips instead of scrolling.
* defaults.json and mandatory.json in the web root (a copy of web/ here): a
  mandatory setting wins over the URL and is locked in the panel; a default one
  gives way to the URL.
* A German browser (--lang=de, Accept-Language de) gets the German page.
* While connected the page asks before it is closed (a beforeunload handler that
  cancels), and no longer once disconnected.
* XVP: a scripted RFB server offers XVP (message 250, code 1 = XVP_INIT); the
  Power button appears, and clicking Reboot puts 250 0 1 3 on the wire.  A Bell
  from the same server flashes the screen and starts a WebAudio tone; with the
  bell switched off in the settings it only flashes.

Against `wsproxy.py --demo` and the scripted server; every process is stopped by PID.
"""

import contextlib
import json
import os
import shutil
import socket
import struct
import tempfile
import threading
import time

import pytest

import realpeers

WEB = os.path.join(realpeers.ROOT, "web")


# ---------------------------------------------------------------- helpers


@contextlib.contextmanager
def chromium(lang=None):
    """Like realpeers.chromium, optionally with the browser's language set (both the
    UI language and Accept-Language/navigator.languages)."""
    realpeers.require_tool("chromium")
    driver_path = realpeers.require_tool("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="wsproxy-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in realpeers.CHROMIUM_FLAGS + ["--user-data-dir=" + profile, "--window-size=1280,800",
                                            "--autoplay-policy=no-user-gesture-required"]:
        options.add_argument(flag)
    if lang:
        options.add_argument("--lang=" + lang)
        options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_script_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def demo():
    with realpeers.proxy("--demo") as wsp:
        yield wsp


def wait(driver, script, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s; state=%r status=%r" % (
                what, driver.execute_script("return document.body.dataset.state"),
                driver.execute_script("return document.getElementById('status').textContent")))
        time.sleep(0.05)


def open_page(driver, port, query=""):
    driver.get("about:blank")
    driver.get("http://127.0.0.1:%d/vnc.html%s" % (port, query))
    wait(driver, "return !!window.wsproxyClient", "the page's script")


def connect(driver):
    driver.find_element("id", "btn-connect").click()
    wait(driver, "return document.body.dataset.state === 'connected'", "connected")


# Sets a settings control as a person would (value, then the change event).
SET_CONTROL_JS = r"""
const el = document.getElementById(arguments[0]);
if (el.type === 'checkbox') el.checked = arguments[1]; else el.value = arguments[1];
el.dispatchEvent(new Event('change', {bubbles: true}));
"""

SETTINGS_JS = r"""
const v = (id) => { const e = document.getElementById(id); return e ? (e.type === 'checkbox' ? e.checked : e.value) : null; };
const d = (id) => { const e = document.getElementById(id); return e ? e.disabled : null; };
const r = window.wsproxyClient.rfb;
return {
    quality: v('setting-quality'), qualityLocked: d('setting-quality'),
    viewOnly: v('setting-view_only'), viewOnlyLocked: d('setting-view_only'),
    resize: v('sel-resize'), badge: !document.getElementById('view-only').hidden,
    sessionQuality: r ? r._options.quality : null, sessionViewOnly: r ? r._options.viewOnly : null,
    saved: localStorage.getItem('wsproxy.settings'),
};
"""


# ---------------------------------------------------------------- saved settings and the URL


def test_saved_setting_is_used_after_reload_and_url_wins(browser):
    """Quality 2 and view-only chosen in the panel are in force after a reload (the
    session asks for quality 2, keys are not sent); ?quality=8 then wins for that
    visit, without replacing the saved 2.  (Its own proxy: localStorage is per
    origin, and these saved choices must not reach the other tests.)"""
    with realpeers.proxy("--demo") as demo:
        check_saved_setting_and_url(browser, demo)


def check_saved_setting_and_url(browser, demo):
    open_page(browser, demo.port)
    browser.find_element("id", "btn-settings").click()
    browser.execute_script(SET_CONTROL_JS, "setting-quality", "2")
    browser.execute_script(SET_CONTROL_JS, "setting-view_only", True)

    open_page(browser, demo.port)
    connect(browser)
    got = browser.execute_script(SETTINGS_JS)
    print("after reload: %r" % got)
    assert got["quality"] == "2" and got["sessionQuality"] == 2, got
    assert got["viewOnly"] is True and got["sessionViewOnly"] is True and got["badge"], got
    assert json.loads(got["saved"]) == {"quality": 2, "view_only": True}, got

    open_page(browser, demo.port, "?quality=8#view_only=0")
    connect(browser)
    got = browser.execute_script(SETTINGS_JS)
    print("with ?quality=8#view_only=0: %r" % got)
    assert got["quality"] == "8" and got["sessionQuality"] == 8, got
    assert got["sessionViewOnly"] is False and not got["badge"], got
    assert json.loads(got["saved"]) == {"quality": 2, "view_only": True}, "the URL must not overwrite saved choices"


def test_view_clip_cuts_off_instead_of_scrolling(browser, demo):
    """view_clip=1 with resize=off: the screen does not scroll (noVNC's clip to window)."""
    overflow = "return getComputedStyle(document.getElementById('screen')).overflow"
    open_page(browser, demo.port, "?resize=off")
    assert browser.execute_script(overflow) == "auto"
    open_page(browser, demo.port, "?resize=off&view_clip=1")
    assert browser.execute_script(overflow) == "hidden"
    assert browser.execute_script("return document.getElementById('setting-view_clip').checked") is True


# ---------------------------------------------------------------- defaults.json and mandatory.json


@pytest.fixture
def site_web(tmp_path):
    """A copy of web/ to put a site's defaults.json and mandatory.json in."""
    root = tmp_path / "web"
    shutil.copytree(WEB, str(root))
    return root


def test_mandatory_json_wins_and_locks(browser, site_web):
    """mandatory.json {view_only: true, quality: 1} beats ?view_only=0&quality=9 and a
    saved choice, and its controls are disabled; defaults.json {resize: scale} gives
    way to nothing here and shows."""
    (site_web / "defaults.json").write_text(json.dumps({"resize": "scale", "quality": 4}))
    (site_web / "mandatory.json").write_text(json.dumps({"view_only": True, "quality": 1}))
    with realpeers.proxy("--demo", "--web", str(site_web)) as wsp:
        open_page(browser, wsp.port, "?view_only=0&quality=9")
        browser.execute_script("localStorage.setItem('wsproxy.settings', '{\"view_only\": false}')")
        open_page(browser, wsp.port, "?view_only=0&quality=9")
        connect(browser)
        got = browser.execute_script(SETTINGS_JS)
        print("mandatory: %r" % got)
        assert got["viewOnly"] is True and got["viewOnlyLocked"] is True, got
        assert got["sessionViewOnly"] is True and got["badge"], got
        assert got["quality"] == "1" and got["qualityLocked"] is True and got["sessionQuality"] == 1, got
        assert got["resize"] == "scale", got
        # A locked control cannot be changed by its change event either.
        browser.execute_script(SET_CONTROL_JS, "setting-quality", "7")
        assert browser.execute_script("return localStorage.getItem('wsproxy.settings')") == '{"view_only": false}'


def test_missing_settings_files_are_quiet(browser, site_web):
    """A site without defaults.json/mandatory.json (404) connects as usual with the
    built-in defaults in the panel, nothing locked, and the page logs no warning of
    its own about them."""
    os.remove(str(site_web / "defaults.json"))
    os.remove(str(site_web / "mandatory.json"))
    with realpeers.proxy("--demo", "--web", str(site_web)) as wsp:
        open_page(browser, wsp.port)
        browser.get_log("browser")
        connect(browser)
        ours = [e["message"] for e in browser.get_log("browser") if "[vnc]" in e["message"] and ".json" in e["message"]]
        assert ours == []
        got = browser.execute_script(SETTINGS_JS)
        assert got["quality"] == "6" and got["qualityLocked"] is False and got["sessionQuality"] == 6, got


# ---------------------------------------------------------------- language


def test_german_browser_gets_the_german_page(demo):
    """Chromium with --lang=de and Accept-Language de: the toolbar, the idle panel and
    the status line are in German, and <html lang> says so."""
    with chromium(lang="de-DE,de") as driver:
        open_page(driver, demo.port)
        words = driver.execute_script(
            "return [navigator.languages, document.documentElement.lang,"
            " document.getElementById('btn-connect').textContent,"
            " document.getElementById('btn-settings').textContent,"
            " document.getElementById('status').textContent,"
            " document.getElementById('btn-cad').title]")
        print("German browser: %r" % words)
        assert words[1:] == ["de", "Verbinden", "Einstellungen", "Nicht verbunden", "Strg+Alt+Entf senden"], words
        connect(driver)
        assert driver.execute_script("return document.getElementById('status').textContent").startswith("Verbunden mit")


# ---------------------------------------------------------------- leaving the page

BEFOREUNLOAD_JS = r"""
const e = new Event('beforeunload', {cancelable: true});
window.dispatchEvent(e);
return e.defaultPrevented;
"""


def test_beforeunload_asks_only_while_connected(browser, demo):
    open_page(browser, demo.port)
    assert browser.execute_script(BEFOREUNLOAD_JS) is False, "asks before there is a session"
    connect(browser)
    assert browser.execute_script(BEFOREUNLOAD_JS) is True, "does not ask while connected"
    browser.find_element("id", "btn-disconnect").click()
    wait(browser, "return document.body.dataset.state === 'disconnected'", "disconnected")
    assert browser.execute_script(BEFOREUNLOAD_JS) is False, "still asks after Disconnect"


# ---------------------------------------------------------------- XVP and the bell


class XvpServer:
    """A scripted RFB 3.8 server (security None, 64x48) that offers XVP once the
    client has sent SetEncodings with -309, then waits for BELL to send a Bell.
    Everything the client sends is kept in `received`."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.received = bytearray()
        self.offered = threading.Event()
        self.ring = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def recv_exact(self, conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("client closed")
            data += chunk
        return data

    def serve(self):
        conn, _ = self.sock.accept()
        conn.settimeout(30)
        try:
            conn.sendall(b"RFB 003.008\n")
            self.recv_exact(conn, 12)
            conn.sendall(b"\x01\x01")                 # one security type: None
            self.recv_exact(conn, 1)
            conn.sendall(struct.pack(">I", 0))        # SecurityResult OK
            self.recv_exact(conn, 1)                  # ClientInit
            name = b"xvp test"
            conn.sendall(struct.pack(">HHBBBBHHHBBB3xI", 64, 48, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0, len(name)) + name)
            self.recv_exact(conn, 20)                 # SetPixelFormat
            head = self.recv_exact(conn, 4)           # SetEncodings
            count = struct.unpack(">H", head[2:])[0]
            encodings = struct.unpack(">%di" % count, self.recv_exact(conn, 4 * count))
            if -309 in encodings:
                conn.sendall(b"\xfa\x00\x01\x01")     # XVP_INIT, version 1
                self.offered.set()
            conn.settimeout(0.1)
            while True:
                if self.ring.is_set():
                    self.ring.clear()
                    conn.sendall(b"\x02")             # Bell
                try:
                    data = conn.recv(4096)
                except socket.timeout:
                    continue
                if not data:
                    return
                with self.lock:
                    self.received += data
        except (OSError, ConnectionError):
            return
        finally:
            conn.close()

    def got(self):
        with self.lock:
            return bytes(self.received)

    def close(self):
        self.sock.close()
        self.thread.join(5)


# Counts oscillators started (the bell's tone), installed before the page's scripts.
COUNT_TONES_JS = r"""
window.__tones = 0;
const make = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
    const osc = make.call(this);
    const start = osc.start.bind(osc);
    osc.start = (...a) => { window.__tones++; return start(...a); };
    return osc;
};
"""


def test_power_menu_sends_xvp_reboot_and_bell_sounds(browser):
    server = XvpServer()
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": COUNT_TONES_JS})
    try:
        with realpeers.proxy("--web", WEB, "--vnc", "127.0.0.1:%d" % server.port) as wsp:
            open_page(browser, wsp.port)
            assert not browser.find_element("id", "btn-power").is_displayed()
            connect(browser)
            assert server.offered.wait(10), "the client did not ask for the XVP pseudo-encoding (-309)"
            wait(browser, "return !document.getElementById('btn-power').hidden", "the Power button")
            assert b"\xfa\x00\x01" not in server.got()
            browser.find_element("id", "btn-power").click()
            browser.find_element("id", "btn-power-reboot").click()
            deadline = time.monotonic() + 10
            while b"\xfa\x00\x01\x03" not in server.got() and time.monotonic() < deadline:
                time.sleep(0.05)
            print("client sent after the click: %r" % server.got()[-40:])
            assert b"\xfa\x00\x01\x03" in server.got(), "no XVP reboot (250, 0, version 1, code 3)"
            assert browser.execute_script("return document.getElementById('status').textContent") == "Reboot requested"

            server.ring.set()
            wait(browser, "return document.getElementById('screen').classList.contains('bell')", "the flash")
            tones = wait(browser, "return window.__tones", "the bell's tone")
            assert tones == 1, tones

            # The bell switched off in the settings: the flash still shows, no tone.
            browser.execute_script(SET_CONTROL_JS, "setting-bell", False)
            browser.execute_script("document.getElementById('screen').classList.remove('bell')")
            time.sleep(0.3)   # past the tone's repeat limit, so only the setting can hold it back
            server.ring.set()
            wait(browser, "return document.getElementById('screen').classList.contains('bell')", "the second flash")
            time.sleep(0.2)
            assert browser.execute_script("return window.__tones") == 1, "a tone with the bell off"
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})
        browser.get("about:blank")
        server.close()
