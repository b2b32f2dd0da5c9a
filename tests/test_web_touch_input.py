"""Touch, pointer and lock keys in web/ as the X server sees them (issue 15).

Headless Chromium (selenium, Debian's chromedriver) with touch emulation opens
vnc.html through the proxy.  Touches are dispatched with the DevTools protocol
(Input.dispatchTouchEvent), so the page gets real touch pointer events; what
reaches the desktop is read on the server side: `xev -root` for button and key
events, `xset q` for the Caps Lock LED, `xdotool` to change it there.

* taps: one, two and three fingers click buttons 1, 3 and 2 where they land;
* long press then drag is a right-button drag; two fingers dragging turn the
  wheel (button 4/5); a pinch is Ctrl + wheel;
* "Drag view": a desktop larger than a phone's screen moves under the finger and
  the server sees no pointer event at all;
* QEMU LED State: with Caps Lock on at the server and off in the browser, typing
  turns it off at the server first (TigerVNC sends LED state);
* ExtendedMouseButtons: the back button goes out as an extended PointerEvent once
  a (scripted) server has confirmed the pseudo-encoding (TigerVNC 1.12 has not).

Needs: chromium + chromedriver, selenium, Xvnc (tigervnc-standalone-server),
xev and xset (x11-utils, x11-xserver-utils), xdotool.
"""

import os
import re
import socket
import struct
import subprocess
import threading
import time
import urllib.parse

import pytest

import realpeers
import rfbscript
from conftest import recv_exact

WEB = os.path.join(realpeers.ROOT, "web")
DESKTOP = (640, 480)
PHONE = (360, 640)          # CSS pixels: narrower than the desktop, so part of it is off screen

BUTTON_RE = re.compile(r"(ButtonPress|ButtonRelease) event.*?\n\s+root 0x[0-9a-f]+, subw 0x[0-9a-f]+, "
                       r"time \d+, \((-?\d+),(-?\d+)\).*?\n.*?button (\d+)", re.S)
KEY_RE = re.compile(r"(KeyPress|KeyRelease) event.*?\n.*?\n.*?keysym 0x[0-9a-f]+, ([^)]+)\)", re.S)


def buttons_seen(text):
    """[(kind, button, x, y)] from xev's output; kind is 'press' or 'release'."""
    return [("press" if kind == "ButtonPress" else "release", int(b), int(x), int(y))
            for kind, x, y, b in BUTTON_RE.findall(text)]


def presses_seen(text, at_least):
    """The first AT_LEAST button presses in xev's output, once there are that many."""
    presses = [b for b in buttons_seen(text) if b[0] == "press"]
    return presses[:at_least] if len(presses) >= at_least else None


def keys_seen(text):
    return [("press" if kind == "KeyPress" else "release", name) for kind, name in KEY_RE.findall(text)]


# ---------------------------------------------------------------- fixtures


# One browser per test: after a multi-touch gesture, Chromium's emulated touches
# reach no later page of the same tab (seen with Debian's Chromium 156).
@pytest.fixture
def browser():
    with realpeers.chromium() as driver:
        driver.set_script_timeout(30)
        yield driver


@pytest.fixture(scope="module")
def server():
    realpeers.require_tool("xev")
    with realpeers.xvnc("%dx%d" % DESKTOP) as (display, vnc_port):
        with realpeers.proxy("--web", WEB, "--vnc", "127.0.0.1:%d" % vnc_port) as wsp:
            yield display, wsp.port


class Phone:
    """vnc.html in a phone-sized, touch-emulating window."""

    def __init__(self, driver):
        self.driver = driver

    def open(self, port, **params):
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1,
                                     "mobile": True})
        self.driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
        query = {"host": "127.0.0.1", "port": str(port), "path": "websockify", "autoconnect": "1", "resize": "off"}
        query.update({k: str(v) for k, v in params.items()})
        self.driver.get("about:blank")
        self.driver.get("http://127.0.0.1:%d/vnc.html?%s" % (port, urllib.parse.urlencode(query)))
        self.wait(lambda: self.js("return document.body.dataset.state") == "connected", "connected")
        # The first frame is drawn and the layout settled (the canvas has its size).
        self.wait(lambda: self.js("return document.getElementById('canvas').width") == DESKTOP[0], "first frame")

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, predicate, what, timeout=10.0):
        return realpeers.poll(predicate, what, timeout, lambda: "status=%r" % (
            self.js("return document.getElementById('status').textContent"),))

    def canvas_origin(self):
        """Client coordinates of the framebuffer's 0,0 (the canvas is 1:1 at resize=off)."""
        r = self.js("const r = document.getElementById('canvas').getBoundingClientRect();"
                    "return [r.left, r.top, r.width, r.height];")
        assert (round(r[2]), round(r[3])) == DESKTOP, r
        return r[0], r[1]

    def touch(self, kind, points):
        """kind: touchStart | touchMove | touchEnd; points: [(x, y), ...] client coordinates
        of the fingers still down (ids by position in the list)."""
        self.driver.execute_cdp_cmd("Input.dispatchTouchEvent", {
            "type": kind,
            "touchPoints": [{"x": x, "y": y, "id": i, "radiusX": 1, "radiusY": 1, "force": 1}
                            for i, (x, y) in enumerate(points)],
        })

    def slide(self, start, end, steps=8, pause=0.02):
        """All fingers from START to END (lists of points) in STEPS moves."""
        for k in range(1, steps + 1):
            self.touch("touchMove", [(sx + (ex - sx) * k / steps, sy + (ey - sy) * k / steps)
                                     for (sx, sy), (ex, ey) in zip(start, end)])
            time.sleep(pause)


@pytest.fixture
def phone(browser):
    return Phone(browser)


def watch(display, *events):
    args = ["xev", "-root", "-display", display]
    for e in events:
        args += ["-event", e]
    return realpeers.x_process(args, display)


def wait_for(predicate, output, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate(output())
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s; xev saw:\n%s" % (what, output()))
        time.sleep(0.05)


def near(a, b, tolerance=2):
    return abs(a - b) <= tolerance


# ---------------------------------------------------------------- gestures


def test_one_two_three_finger_taps_click_left_right_middle(phone, server):
    display, port = server
    with watch(display, "button") as (_, output):
        time.sleep(0.3)   # xev has selected its events
        phone.open(port)
        ox, oy = phone.canvas_origin()
        taps = [[(ox + 50, oy + 60)],
                [(ox + 120, oy + 100), (ox + 180, oy + 100)],
                [(ox + 60, oy + 200), (ox + 120, oy + 200), (ox + 180, oy + 200)]]
        for fingers in taps:
            phone.touch("touchStart", fingers)
            time.sleep(0.05)
            phone.touch("touchEnd", [])
            time.sleep(0.3)
        presses = wait_for(lambda t: presses_seen(t, 3), output, "three clicks", timeout=5)
        # No mouse cursor on a touch screen: a dot shows where the last tap aimed.
        dot = phone.js("const d = document.querySelector('.touch-dot');"
                       "if (!d || d.hidden) return null; const r = d.getBoundingClientRect();"
                       "return [r.left + r.width / 2, r.top + r.height / 2];")
    assert [b[1] for b in presses] == [1, 3, 2], presses
    # Each click lands where the fingers were (their middle).
    for (_, _, x, y), (cx, cy) in zip(presses, [(50, 60), (150, 100), (120, 200)]):
        assert near(x, cx) and near(y, cy), presses
    assert dot and near(dot[0], ox + 120) and near(dot[1], oy + 200), dot


def test_long_press_then_drag_is_a_right_button_drag(phone, server):
    display, port = server
    with watch(display, "button") as (_, output):
        time.sleep(0.3)
        phone.open(port)
        ox, oy = phone.canvas_origin()
        start, end = (ox + 100, oy + 100), (ox + 220, oy + 180)
        phone.touch("touchStart", [start])
        time.sleep(1.3)   # longer than the 1 s long press
        phone.slide([start], [end])
        phone.touch("touchEnd", [])
        seen = wait_for(lambda t: buttons_seen(t) if any(b[0] == "release" for b in buttons_seen(t)) else None,
                        output, "a button release")
    assert [b[:2] for b in seen] == [("press", 3), ("release", 3)], seen
    (_, _, px, py), (_, _, rx, ry) = seen
    assert near(px, 100) and near(py, 100), seen     # pressed where the finger went down
    assert near(rx, 220) and near(ry, 180), seen     # released where it was lifted


def test_two_finger_drag_scrolls_and_pinch_zooms_with_ctrl(phone, server):
    display, port = server
    with watch(display, "button", "keyboard") as (_, output):
        time.sleep(0.3)
        phone.open(port)
        ox, oy = phone.canvas_origin()
        # Two fingers 60 px apart slide 160 px down together: the content follows
        # them, so the wheel turns up (button 4), one step per 50 px.
        start = [(ox + 100, oy + 100), (ox + 160, oy + 100)]
        end = [(ox + 100, oy + 260), (ox + 160, oy + 260)]
        phone.touch("touchStart", start)
        phone.slide(start, end)
        phone.touch("touchEnd", [])
        scrolls = wait_for(lambda t: presses_seen(t, 3), output, "wheel steps")
        time.sleep(0.3)
        scrolls = [b for b in buttons_seen(output()) if b[0] == "press"]
        assert {b[1] for b in scrolls} == {4}, scrolls
        time.sleep(0.5)
        before = len(buttons_seen(output()))
        # Two fingers part from 40 to 240 px apart: Ctrl + wheel up (zoom in).
        start = [(ox + 180, oy + 150), (ox + 220, oy + 150)]
        end = [(ox + 80, oy + 150), (ox + 320, oy + 150)]
        phone.touch("touchStart", start)
        phone.slide(start, end)
        phone.touch("touchEnd", [])
        zoom = wait_for(lambda t: buttons_seen(t)[before:] if any(
            b[0] == "press" for b in buttons_seen(t)[before:]) else None, output, "a zoom step")
        time.sleep(0.3)
        keys = keys_seen(output())
    assert {b[1] for b in zoom} == {4}, zoom
    assert ("press", "Control_L") in keys and ("release", "Control_L") in keys, keys


# ---------------------------------------------------------------- drag view


PAN_JS = "const s = document.getElementById('screen'); return [s.scrollLeft, s.scrollTop, " \
         "s.scrollWidth - s.clientWidth, s.scrollHeight - s.clientHeight];"


def pointer_location(display):
    out = subprocess.run(["xdotool", "getmouselocation"], env=dict(os.environ, DISPLAY=display),
                         capture_output=True, text=True, timeout=5, check=True).stdout
    return out.split(" screen:")[0]


@pytest.mark.parametrize("clip", [0, 1])
def test_drag_view_pans_a_desktop_larger_than_the_phone(phone, server, clip):
    """Scrollbars (view_clip=0) or none (view_clip=1, noVNC's clip to window): either
    way "Drag view" moves the view under the finger."""
    realpeers.require_tool("xdotool")
    display, port = server
    with watch(display, "button") as (_, output):
        time.sleep(0.3)
        phone.open(port, view_clip=clip)
        overflow = phone.js("return getComputedStyle(document.getElementById('screen')).overflow")
        assert overflow == ("hidden" if clip else "auto"), overflow
        where = pointer_location(display)
        button = phone.driver.find_element("id", "btn-drag")
        assert button.is_displayed(), "no 'Drag view' button although the desktop is larger than the screen"
        button.click()
        assert button.get_attribute("aria-pressed") == "true"
        left, top, max_left, max_top = phone.js(PAN_JS)
        assert (left, top) == (0, 0) and max_left > 0, (left, top, max_left, max_top)
        box = phone.js("const r = document.getElementById('screen').getBoundingClientRect();"
                       "return [r.left, r.top];")
        start = (box[0] + 300, box[1] + 300)
        end = (start[0] - 200, start[1] - 120)
        phone.touch("touchStart", [start])
        phone.slide([start], [end], steps=10)
        phone.touch("touchEnd", [])
        time.sleep(0.5)
        left, top, _, _ = phone.js(PAN_JS)
        seen = buttons_seen(output())
        assert pointer_location(display) == where     # the server's pointer never moved
    # The view followed the finger (as far as there is desktop to show).
    assert near(left, min(200, max_left)) and near(top, min(120, max_top)), (left, top, max_left, max_top)
    assert seen == [], seen


# ---------------------------------------------------------------- lock keys


def caps_lock_on(display):
    out = subprocess.run(["xset", "q"], env=dict(os.environ, DISPLAY=display),
                         capture_output=True, text=True, timeout=5, check=True).stdout
    match = re.search(r"Caps Lock:\s+(on|off)", out)
    assert match, out
    return match.group(1) == "on"


def test_server_caps_lock_follows_the_browser_when_typing(phone, server):
    from selenium.webdriver.common.action_chains import ActionChains

    realpeers.require_tool("xdotool")
    realpeers.require_tool("xset")
    display, port = server
    env = dict(os.environ, DISPLAY=display)
    if caps_lock_on(display):
        subprocess.run(["xdotool", "key", "Caps_Lock"], env=env, check=True, timeout=5)
    phone.open(port)
    with watch(display, "keyboard") as (_, output):
        time.sleep(0.3)
        # Caps Lock goes on at the server only (another client, a script...): the
        # server reports it (QEMU LED State), the browser's stays off.
        subprocess.run(["xdotool", "key", "Caps_Lock"], env=env, check=True, timeout=5)
        assert caps_lock_on(display)
        time.sleep(0.5)   # the LED state reaches the page
        canvas = phone.driver.find_element("id", "canvas")
        phone.js("arguments[0].focus()", canvas)
        # A digit: Caps Lock does not change it, so the server has no reason of its
        # own to touch the lock (TigerVNC fixes it up for letters whose case differs).
        ActionChains(phone.driver).send_keys("1").perform()
        keys = wait_for(lambda t: keys_seen(t) if ("release", "1") in keys_seen(t) else None,
                        output, "the typed key")
        time.sleep(0.3)
    assert not caps_lock_on(display), "Caps Lock still on at the server; keys seen: %r" % keys
    names = [name for kind, name in keys if kind == "press"]
    assert names == ["Caps_Lock", "Caps_Lock", "1"], keys   # xdotool's, the page's, the digit


# ---------------------------------------------------------------- back / forward buttons


EXTENDED_MOUSE_BUTTONS = -316


FIXED_SIZE = {0: 19, 3: 9, 4: 7, 255: 11}   # client message type -> bytes after the type


def read_message(conn, extended, pointer_events):
    """One client message.  Confirms ExtendedMouseButtons when SetEncodings asks for
    it; PointerEvents (7 bytes once extended and marked) go to POINTER_EVENTS.
    Returns whether the extension is on now."""
    kind = recv_exact(conn, 1)[0]
    if kind in FIXED_SIZE:
        recv_exact(conn, FIXED_SIZE[kind])
    elif kind == 2:
        count = struct.unpack(">xH", recv_exact(conn, 3))[0]
        encodings = struct.unpack(">%di" % count, recv_exact(conn, 4 * count))
        if EXTENDED_MOUSE_BUTTONS in encodings and not extended:
            conn.sendall(struct.pack(">BxHHHHHi", 0, 1, 0, 0, 0, 0, EXTENDED_MOUSE_BUTTONS))
            return True
    elif kind == 5:
        body = recv_exact(conn, 5)
        if extended and body[0] & 0x80:
            body += recv_exact(conn, 1)
        pointer_events.append(bytes([kind]) + body)
    else:
        raise ValueError("unexpected client message %d" % kind)
    return extended


def extended_mouse_server(pointer_events):
    """A one-connection RFB 3.8 server (security None, 64x64) that confirms
    ExtendedMouseButtons when the client asks for it, and appends each PointerEvent
    it receives (the raw bytes) to POINTER_EVENTS."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(20)
            rfbscript.handshake(conn, 64, 64, b"mice", bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]))
            extended = False
            try:
                while True:
                    extended = read_message(conn, extended, pointer_events)
            except (OSError, EOFError, ValueError):
                pass

    thread = threading.Thread(target=serve, name="extended-mouse-vnc", daemon=True)
    thread.start()
    return listener, thread


def test_back_button_goes_out_as_an_extended_pointer_event(browser):
    events = []
    listener, thread = extended_mouse_server(events)
    with listener, realpeers.proxy("--web", WEB, "--vnc", "127.0.0.1:%d" % listener.getsockname()[1]) as wsp:
        browser.get("http://127.0.0.1:%d/vnc.html?autoconnect=1&host=127.0.0.1&port=%d&path=websockify"
                    % (wsp.port, wsp.port))
        deadline = time.monotonic() + 10
        while browser.execute_script("return document.body.dataset.state") != "connected":
            assert time.monotonic() < deadline, "not connected"
            time.sleep(0.05)
        time.sleep(0.3)   # the confirmation has arrived
        r = browser.execute_script("const r = document.getElementById('canvas').getBoundingClientRect();"
                                   "return [r.left, r.top];")
        x, y = r[0] + 10, r[1] + 20
        for kind, buttons in (("mousePressed", 8), ("mouseReleased", 0)):
            browser.execute_cdp_cmd("Input.dispatchMouseEvent", {
                "type": kind, "x": x, "y": y, "button": "back", "buttons": buttons, "clickCount": 1})
        deadline = time.monotonic() + 5
        while len(events) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        browser.get("about:blank")
    thread.join(5)
    # Button 8 down: marker bit set, buttons 1-7 none, then the extra byte with bit 0.
    assert bytes([5, 0x80, 0, 10, 0, 20, 0x01]) in events, events
    assert events[-1] == bytes([5, 0, 0, 10, 0, 20]), events     # and released
