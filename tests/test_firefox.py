"""web/ in Firefox: Debian's firefox-esr, headless, driven over WebDriver BiDi
(tests/firefox_bidi.py; no geckodriver, nothing downloaded).

* `wsproxy.py --demo`: the URL the banner prints reaches 'connected', the canvas
  and the display's framebuffer show the demo pattern (test_demo.py's expected
  pixels, clock left out), the clock ticks, a drag paints and typed keys
  (BiDi input.performActions) appear in the demo's text area.  The screenshot
  is saved to /tmp/firefox-demo.png (WSPROXY_FIREFOX_SCREENSHOT=PATH elsewhere).
* TigerVNC Xvnc through wsproxy: test_web_e2e.py's pixel test itself, run with
  a page in Firefox for several encodings (canvas and framebuffer equal to
  `xwd -root`, Tight JPEG within its mean error).
* test_web_e2e.py's status-line reasons and remote-resize tests as they are
  (the viewport stands in for the window); the clipboard both ways (xclip).
* Keys and clicks typed in Firefox arrive as X events (xev -root on Xvnc).

One Firefox serves the module; every process is stopped by PID; loopback only.
"""

import os
import re
import time

import pytest

import firefox_bidi
import realpeers
import test_demo
import test_web_e2e as e2e
import wsproxy
from wsproxy import DemoDesktop

W, H = wsproxy.DEMO_SIZE
SCREENSHOT = os.environ.get("WSPROXY_FIREFOX_SCREENSHOT", "/tmp/firefox-demo.png")

# WebDriver key values (the WebDriver spec's table of special keys).
KEY_BACKSPACE, KEY_RETURN, KEY_ENTER, KEY_SHIFT, KEY_LEFT = "\ue003", "\ue006", "\ue007", "\ue008", "\ue012"
BUTTON_LEFT, BUTTON_RIGHT = 0, 2


class Driver:
    """The part of Selenium's WebDriver that test_web_e2e.Page uses, over BiDi."""

    LEVELS = {"error": "SEVERE", "warn": "WARNING"}

    def __init__(self, browser):
        self.browser = browser

    def get(self, url):
        self.browser.navigate(url)

    def execute_script(self, body, *args):
        return self.browser.run(body, *args)

    def set_window_size(self, width, height):
        # Headless Firefox: the viewport is the window.
        self.browser.command("browsingContext.setViewport", {
            "context": self.browser.context, "viewport": {"width": width, "height": height}})

    def get_window_size(self):
        return self.browser.evaluate("({width: window.innerWidth, height: window.innerHeight})")

    def get_log(self, kind):
        entries, self.browser.log_entries = self.browser.log_entries, []
        return [{"level": self.LEVELS.get(e.get("level"), "INFO"), "message": e.get("text", "")} for e in entries]


@pytest.fixture(scope="module")
def firefox():
    with firefox_bidi.firefox() as browser:
        print(browser.version)
        yield browser


@pytest.fixture
def page(firefox):
    p = e2e.Page(Driver(firefox))
    yield p
    firefox.navigate("about:blank")   # closes the WebSocket before the next test


@pytest.fixture(scope="module")
def xvnc_server():
    realpeers.require_tool("xwd")
    with realpeers.xvnc("%dx%d" % e2e.GEOMETRY) as (display, vnc_port):
        with realpeers.proxy("--web", e2e.WEB, "--vnc", "127.0.0.1:%d" % vnc_port) as wsp:
            yield e2e.Server("xvnc", display, vnc_port, wsp)


def canvas_box(browser):
    """The canvas's [left, top, width, height] in viewport CSS pixels."""
    return browser.evaluate("(() => { const r = document.getElementById('canvas').getBoundingClientRect();"
                            " return [r.left, r.top, r.width, r.height]; })()")


def pointer(source, steps):
    return {"type": "pointer", "id": source, "parameters": {"pointerType": "mouse"}, "actions": steps}


def move(x, y):
    # Whole viewport pixels: a BiDi pointerMove takes integers.
    return {"type": "pointerMove", "x": int(round(x)), "y": int(round(y)), "origin": "viewport"}


def click(x, y, button):
    return [move(x, y), {"type": "pointerDown", "button": button}, {"type": "pointerUp", "button": button}]


# ---------------------------------------------------------------- the demo


def test_demo_pattern_clock_paint_and_typing(firefox, page):
    with realpeers.proxy("--demo") as proc:
        urls = re.findall(r"^Open (\S+)$", proc.banner(), re.M)
        assert urls == ["http://127.0.0.1:%d/vnc.html?autoconnect=1" % proc.port], proc.banner()
        firefox.navigate(urls[0])
        page.wait_state("connected")
        desktop = DemoDesktop()
        clock = [desktop.clock_box]

        def shown(expected, skip, rows=None):
            """The canvas if it and the framebuffer both equal EXPECTED outside SKIP (within ROWS)."""
            canvas, buffer, _ = page.read()
            for image in (canvas, buffer):
                if (image.width, image.height) != (W, H):
                    return None
                bad = test_demo.differing(image.rgb, expected, W, skip=skip)
                if rows is not None:
                    bad = [p for p in bad if rows[0] <= p[1] < rows[1]]
                if bad:
                    return None
            return canvas.rgb

        first = page.wait(lambda: shown(test_demo.expected_image(), clock), "the demo pattern")
        # The clock ticks: incremental updates with no input at all.
        page.wait(lambda: test_demo.differing(first, page.read()[0].rgb, W), "the clock to change", timeout=5)

        left, top, width, height = canvas_box(firefox)
        assert (width, height) == (W, H)   # 1:1, so canvas offsets are desktop pixels
        x, y = 6 * W // 8 + 20, desktop.bars_box[1] + 50
        firefox.perform_actions([pointer("mouse", [
            move(left + x, top + y), {"type": "pointerDown", "button": BUTTON_LEFT},
            dict(move(left + x + 40, top + y + 10), duration=100), {"type": "pointerUp", "button": BUTTON_LEFT}])])
        page.wait(lambda: test_demo.pixel(page.read()[0].rgb, W, x + 20, y + 5) == wsproxy.DEMO_COLOURS[1],
                  "paint at the pointer")

        # Characters, a correction and a new line; the pointer-down focused the canvas.
        firefox.type_keys(list("Hello Firefox!x") + [KEY_BACKSPACE, KEY_RETURN] + list("caf\u00e9 ok"))
        typed = DemoDesktop()
        for ch in "Hello Firefox!x":
            typed.key(ord(ch), True)
        typed.key(0xFF08, True)
        typed.key(0xFF0D, True)
        for ch in "caf\u00e9 ok":
            typed.key(ord(ch), True)
        assert typed.typed == "Hello Firefox!\ncaf\u00e9 ok"
        tx, ty, tw, th = desktop.text_box
        page.wait(lambda: shown(test_demo.rgb(typed), clock, rows=(ty, ty + th)), "typed text in the text area")

        time.sleep(0.2)
        with open(SCREENSHOT, "wb") as handle:
            handle.write(firefox.screenshot())
        assert page.console() == []


def test_demo_with_raw_encoding(firefox, page):
    with realpeers.proxy("--demo") as proc:
        firefox.navigate("http://127.0.0.1:%d/vnc.html?autoconnect=1&encoding=raw" % proc.port)
        page.wait_state("connected")
        skip = [DemoDesktop().clock_box]
        page.wait(lambda: all((i.width, i.height) == (W, H) and not test_demo.differing(
            i.rgb, test_demo.expected_image(), W, skip=skip) for i in page.read()[:2]), "the demo pattern over Raw")


# ---------------------------------------------------------------- TigerVNC, pixel for pixel


FIREFOX_CASES = [("xvnc", c) for c in ("raw", "copyrect", "hextile", "zrle", "tight", "tight-jpeg")]


@pytest.mark.parametrize("server_name,case", FIREFOX_CASES, ids=["%s-%s" % c for c in FIREFOX_CASES])
def test_pixels_match_server_framebuffer(request, page, server_name, case):
    """test_web_e2e.py's test, with the page in Firefox (xvnc_server is this module's)."""
    e2e.check_pixels_match_server_framebuffer(request, page, server_name, case)


# ---------------------------------------------------------------- status line, remote resize, clipboard


def test_status_line_shows_wsproxy_reasons(page, tmp_path):
    e2e.check_status_line_shows_wsproxy_reasons(page, tmp_path)


def test_remote_resize_follows_the_viewport(page):
    e2e.check_remote_resize_follows_the_window(page)


def test_clipboard_round_trip(firefox, page, xvnc_server):
    realpeers.require_tool("xclip")
    display = xvnc_server.display
    page.open(xvnc_server.proxy.port)
    page.wait_state("connected")
    firefox.evaluate("document.getElementById('btn-clipboard').click()")
    value = "document.getElementById('clipboard-text').value"
    assert firefox.evaluate("document.getElementById('clipboard-text').checkVisibility()")

    from_x = "copied on X, %d: caf\u00e9 & <b>not html</b>" % os.getpid()
    with realpeers.x_process(["xclip", "-quiet", "-selection", "clipboard", "-i"], display,
                             stdin=from_x.encode("utf-8")):
        page.wait(lambda: firefox.evaluate(value) == from_x, "the X clipboard in the page's panel", timeout=10)

    from_page = "typed in Firefox %d" % os.getpid()
    firefox.evaluate("(() => { const t = document.getElementById('clipboard-text'); t.value = ''; t.focus(); })()")
    firefox.type_keys(list(from_page))
    assert firefox.evaluate(value) == from_page
    firefox.evaluate("document.getElementById('btn-clip-send').click()")
    page.wait(lambda: e2e.xclip_out(display) == from_page, "the page's text in the X clipboard", timeout=10)


# ---------------------------------------------------------------- input as X events


def test_keys_and_clicks_arrive_as_x_events(firefox, page, xvnc_server):
    display = xvnc_server.display
    xev = ["xev", "-root", "-display", display, "-event", "keyboard", "-event", "button"]
    with realpeers.x_process(xev, display) as (proc, output):
        time.sleep(0.3)  # xev has selected its events
        page.open(xvnc_server.proxy.port)
        page.wait_state("connected")
        left, top, width, height = canvas_box(firefox)
        assert firefox.evaluate("document.getElementById('canvas').width") == e2e.GEOMETRY[0]
        cx, cy = left + width / 2, top + height / 2
        firefox.perform_actions([pointer("mouse", click(cx - 100, cy - 50, BUTTON_LEFT)
                                         + click(cx + 60, cy + 40, BUTTON_RIGHT))])
        firefox.perform_actions([{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": "a"}, {"type": "keyUp", "value": "a"},
            {"type": "keyDown", "value": KEY_SHIFT},
            {"type": "keyDown", "value": "b"}, {"type": "keyUp", "value": "b"},
            {"type": "keyUp", "value": KEY_SHIFT}]}])
        firefox.type_keys(["7", KEY_RETURN, KEY_ENTER, KEY_LEFT])
        want_keys = ["a", "Shift_L", "B", "7", "Return", "KP_Enter", "Left"]

        try:
            keys, buttons = page.wait(lambda: e2e.xev_keys_and_buttons(output(), want_keys),
                                      "key and button events in xev", timeout=10)
        except AssertionError:
            raise AssertionError("xev saw:\n" + output())
    # The canvas is at 1:1; BiDi moves land on whole viewport pixels.
    (b1, x1, y1), (b3, x3, y3) = buttons[:2]
    assert b1 == 1 and abs(x1 - (width / 2 - 100)) <= 1.5 and abs(y1 - (height / 2 - 50)) <= 1.5, buttons
    assert b3 == 3 and abs(x3 - (width / 2 + 60)) <= 1.5 and abs(y3 - (height / 2 + 40)) <= 1.5, buttons
    assert "Shift_L" in keys[keys.index("a"):keys.index("B")], keys
