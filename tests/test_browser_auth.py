"""BasicHTTPAuth in a real browser: headless Chromium, the real page, wsproxy --demo.

A browser never asks for a password for a WebSocket, only for a page; once
signed in to the page it sends the same credentials with the page's
same-origin WebSocket.  So with BasicHTTPAuth the page is guarded too, and:

* signed in (credentials in the URL, which Chromium answers the page's 401
  with), the session connects on the first attempt;
* not signed in, the page itself is refused (the app never loads, no
  WebSocket is opened);
* signed in with a password the proxy no longer takes (it was restarted with
  another), the WebSocket is refused and the status line says to reload the
  page and sign in -- at once, not after the probe's time-out.

Every process is stopped by PID.
"""

import os
import re
import time

import pytest

import realpeers

WEB = os.path.join(realpeers.ROOT, "web")
USER, PASSWORD = "alice", "s3cret"


@pytest.fixture
def clean(browser):
    yield browser
    browser.get("about:blank")   # closes the page's WebSocket before the proxy stops


def demo_proxy(password=PASSWORD, port=0):
    return realpeers.proxy("--web", WEB, "--demo", "--auth-plugin", "BasicHTTPAuth",
                           "--auth-source", "%s:%s" % (USER, password), port=port)


def page_state(driver):
    return driver.execute_script(
        "const s = document.getElementById('status');"
        "return s ? [document.body.dataset.state, s.textContent] : null")


def wait_for(driver, predicate, timeout=10.0):
    """The first page state (state, status text) that PREDICATE accepts."""
    deadline = time.monotonic() + timeout
    while True:
        state = page_state(driver)
        if state and predicate(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError("timed out; last state %r" % (state,))
        time.sleep(0.05)


def test_signed_in_page_connects_on_the_first_attempt(clean):
    with demo_proxy() as wsp:
        clean.get("http://%s:%s@127.0.0.1:%d/vnc.html?autoconnect=1" % (USER, PASSWORD, wsp.port))
        state = wait_for(clean, lambda s: s[0] in ("connected", "failed"))
        assert state == ["connected", "Connected to wsproxy demo"], wsp.log()
        clean.get("about:blank")
        log = wsp.log()
    assert len(re.findall(r"open -> 127\.0\.0\.1:", log)) == 1, log
    # The WebSocket carried the page's credentials from the start.
    assert "GET /websockify -> 401" not in log, log
    assert PASSWORD not in log


def test_page_without_credentials_is_refused(clean):
    with demo_proxy() as wsp:
        clean.get("http://127.0.0.1:%d/vnc.html?autoconnect=1" % wsp.port)
        time.sleep(0.5)
        assert page_state(clean) is None, "the app loaded without credentials"
        log = wsp.log()
    assert re.search(r"GET /vnc\.html\?\.\.\. -> 401 .*reload the page and sign in", log), log
    assert "/app.js" not in log and "open ->" not in log, log


def test_a_password_the_proxy_no_longer_takes_says_sign_in(clean):
    port = realpeers.free_port()
    with demo_proxy(port=port):
        clean.get("http://%s:%s@127.0.0.1:%d/vnc.html" % (USER, PASSWORD, port))
        wait_for(clean, lambda s: s[0] == "disconnected")
    # The same origin, now with another password: the browser still holds the old one.
    with demo_proxy(password="n3w-s3cret", port=port) as wsp:
        started = time.monotonic()
        clean.execute_script("document.getElementById('btn-connect').click()")
        state = wait_for(clean, lambda s: s[0] == "failed")
        elapsed = time.monotonic() - started
        log = wsp.log()
    assert state[1] == ("Disconnected: the proxy needs a user name and password: "
                        "reload the page and sign in"), state
    assert elapsed < 3.0, "the probe stalled on a login prompt (%.1fs)" % elapsed
    assert "GET /websockify -> 401" in log and "open ->" not in log, log
