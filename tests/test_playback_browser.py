"""A recording played in web/play.html shows what the live viewer showed.

A live headless Chromium viewer (web/vnc.html through wsproxy --record)
watches a TigerVNC Xvnc session with a VNC password while an X client draws
(tests/x11.py: pictures with photo-like parts, so Tight sends JPEG and the
page's lossless refresh follows; fills; CopyArea).  Once the live canvas is
the server's screen exactly, the viewer leaves; the recording is opened in
web/play.html (the file picker) in the same browser, and:

* End: the player's final canvas equals the live viewer's final canvas,
  pixel for pixel;
* from the start at 16x, and again after seeking back to the start, the
  same final frame;
* the time shown is the recording's length, and the page never sent a byte
  (it has no socket).

WSPROXY_PLAYBACK_SECONDS=60 makes the drawing last that long (the README's
measured example); the default keeps the test short.
"""

import base64
import os
import time
import urllib.parse

import pytest

import realpeers
import x11
from wsproxy import RecordKind, parse_recording

GEOMETRY = (400, 300)
PASSWORD = "s3cret"
WEB = os.path.join(realpeers.ROOT, "web")
SECONDS = float(os.environ.get("WSPROXY_PLAYBACK_SECONDS", "4"))

READ_CANVAS_JS = r"""
const cv = document.getElementById('canvas');
const w = cv.width, h = cv.height;
if (!w || !h) return {width: w, height: h, rgba: ''};
const data = cv.getContext('2d').getImageData(0, 0, w, h).data;
let s = '';
for (let i = 0; i < data.length; i += 0x8000) s += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
return {width: w, height: h, rgba: btoa(s)};
"""


def read_canvas(driver):
    out = driver.execute_script(READ_CANVAS_JS)
    return out["width"], out["height"], base64.b64decode(out["rgba"])


def wait(driver, predicate, what, timeout=20.0):
    return realpeers.poll(predicate, what, timeout, lambda: "body=%r status=%r" % (
        driver.execute_script("return {...document.body.dataset}"),
        driver.execute_script("return document.getElementById('status').textContent")))


def dataset(driver, name):
    return driver.execute_script("return document.body.dataset[arguments[0]]", name)


def draw(conn, seconds):
    """Pictures, fills and copies, spread over SECONDS."""
    w, h = conn.width, conn.height
    steps = max(4, int(seconds * 2))
    for step in range(steps):
        kind = step % 4
        if kind == 0:
            conn.put_rgb(x11.test_picture(w // 2, h // 2, seed=step), x=(step * 37) % (w // 2), y=(step * 23) % (h // 2))
        elif kind == 1:
            conn.fill((step * 13) % (w - 60), (step * 7) % (h - 40), 60, 40, ((step * 40) % 256, 90, 200))
        elif kind == 2:
            conn.copy_area(0, 0, w // 3, h // 3, w // 2, h // 2)
        else:
            conn.put_rgb(x11.test_picture(w // 3, h // 4, seed=100 + step, lossless_friendly=True),
                         x=w // 3, y=(step * 11) % (h - h // 4))
        conn.sync()
        time.sleep(seconds / steps)


def converge(driver, display, timeout=20.0):
    """Until the live canvas is the server's screen, pixel for pixel."""
    deadline = time.monotonic() + timeout
    while True:
        server = x11.capture(display)
        width, height, rgba = read_canvas(driver)
        canvas = x11.Image(width, height, x11.rgba_to_rgb(rgba))
        bad, mean, first = x11.compare(server, canvas)
        if bad == 0:
            return width, height, rgba
        if time.monotonic() > deadline:
            raise AssertionError("live canvas never matched the server: %d pixels off, first %r" % (bad, first))
        time.sleep(0.2)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A live session recorded: (proxy, recording path, live final canvas)."""
    realpeers.require_tool("xwd")
    where = tmp_path_factory.mktemp("recordings")
    with realpeers.xvnc("%dx%d" % GEOMETRY, security="VncAuth", password=PASSWORD) as (display, vnc_port):
        with realpeers.proxy("--web", WEB, "--vnc", "127.0.0.1:%d" % vnc_port, "--record", str(where)) as wsp:
            with realpeers.chromium() as driver:
                query = urllib.parse.urlencode({"host": "127.0.0.1", "port": wsp.port, "path": "websockify",
                                                "autoconnect": "1"})
                driver.get("http://127.0.0.1:%d/vnc.html?%s#password=%s" % (wsp.port, query, PASSWORD))
                wait(driver, lambda: dataset(driver, "state") == "connected", "the live viewer to connect")
                with x11.XConnection(display) as conn:
                    draw(conn, SECONDS)
                live = converge(driver, display)
                driver.get("about:blank")    # the session ends: the recording is finished
                deadline = time.monotonic() + 10
                while ": recording " not in wsp.log() and time.monotonic() < deadline:
                    time.sleep(0.05)
                files = sorted(os.listdir(str(where)))
                assert len(files) == 1, (files, wsp.log())
                path = os.path.join(str(where), files[0])
                yield wsp, driver, path, live


def open_player(driver, port, path):
    driver.get("http://127.0.0.1:%d/play.html" % port)
    wait(driver, lambda: dataset(driver, "playback") == "empty", "the player page")
    driver.find_element("id", "file").send_keys(path)
    wait(driver, lambda: dataset(driver, "playback") == "ready", "the recording to load")


def test_recording_of_the_live_session(recorded):
    _, _, path, live = recorded
    data = open(path, "rb").read()
    header, records, complete = parse_recording(data)
    length = records[-1].millis / 1000.0
    server_bytes = sum(len(r.payload) for r in records if r.kind == RecordKind.SERVER)
    print("recorded %.1f s of a %dx%d session: %d bytes (%d of server data), %d records" % (
        length, GEOMETRY[0], GEOMETRY[1], len(data), server_bytes, len(records)))
    assert complete and (header["width"], header["height"]) == GEOMETRY
    assert length >= SECONDS
    assert live[:2] == GEOMETRY


def test_end_shows_the_live_viewers_last_frame_pixel_for_pixel(recorded):
    wsp, driver, path, live = recorded
    open_player(driver, wsp.port, path)
    driver.find_element("id", "btn-end").click()
    wait(driver, lambda: dataset(driver, "playback") == "ended", "the end of the recording")
    driver.execute_async_script("window.wsproxyPlayer.settled().then(arguments[0])")
    width, height, rgba = read_canvas(driver)
    assert (width, height) == live[:2]
    same = rgba == live[2]
    if not same:
        bad, mean, first = x11.compare(x11.Image(width, height, x11.rgba_to_rgb(live[2])),
                                       x11.Image(width, height, x11.rgba_to_rgb(rgba)))
        raise AssertionError("player's last frame differs from the live one: %d pixels, first %r" % (bad, first))
    duration = driver.execute_script("return window.wsproxyPlayer.duration")
    shown = driver.find_element("id", "time").text
    print("player at the end: %s, %dx%d canvas identical to the live viewer's" % (shown, width, height))
    assert shown.split(" / ")[0] == shown.split(" / ")[1]
    assert duration >= SECONDS * 1000
    assert dataset(driver, "state") == "connected"
    # The player opened no WebSocket: the proxy saw only the live session.
    assert wsp.log().count(" open -> ") == 1, wsp.log()


def test_playing_at_16x_and_after_seeking_back_reaches_the_same_frame(recorded):
    wsp, driver, path, live = recorded
    open_player(driver, wsp.port, path)
    driver.execute_script("const s = document.getElementById('sel-speed'); s.value = '16';"
                          "s.dispatchEvent(new Event('change'));")
    started = time.monotonic()
    driver.find_element("id", "btn-play").click()
    wait(driver, lambda: dataset(driver, "playback") == "ended", "the end at 16x", timeout=60)
    took = time.monotonic() - started
    duration = driver.execute_script("return window.wsproxyPlayer.duration") / 1000.0
    print("played %.1f s of recording at 16x in %.2f s" % (duration, took))
    assert took < duration / 4 + 2
    driver.execute_async_script("window.wsproxyPlayer.settled().then(arguments[0])")
    assert read_canvas(driver)[2] == live[2]
    # Back to the start (a new client replays from the first byte), then End.
    driver.execute_script("const s = document.getElementById('seek'); s.value = '0';"
                          "s.dispatchEvent(new Event('input'));")
    wait(driver, lambda: dataset(driver, "playback") == "paused", "the seek back")
    assert driver.execute_script("return window.wsproxyPlayer.position") == 0
    assert read_canvas(driver)[2] != live[2]     # the first frame, before any drawing
    driver.find_element("id", "btn-end").click()
    wait(driver, lambda: dataset(driver, "playback") == "ended", "the end again")
    driver.execute_async_script("window.wsproxyPlayer.settled().then(arguments[0])")
    assert read_canvas(driver)[2] == live[2]


def test_a_file_that_is_not_a_recording_says_so(recorded, tmp_path):
    wsp, driver, _, _ = recorded
    bogus = tmp_path / "notes.wsrec"
    bogus.write_bytes(b"hello, this is not a recording")
    driver.get("http://127.0.0.1:%d/play.html" % wsp.port)
    driver.find_element("id", "file").send_keys(str(bogus))
    wait(driver, lambda: dataset(driver, "playback") == "error", "the refusal")
    assert driver.find_element("id", "status").text == "notes.wsrec: not a wsproxy recording"


def test_url_parameter_plays_a_recording_the_server_serves(recorded, tmp_path):
    # The administrator serves recordings beside the page (here a copy of web/
    # with the recording in it); play.html?url= fetches and plays it.
    _, driver, path, live = recorded
    import shutil
    site = tmp_path / "site"
    shutil.copytree(WEB, str(site))
    shutil.copy(path, str(site / "session.wsrec"))
    with realpeers.proxy("--web", str(site), "--vnc", "127.0.0.1:9") as files:
        driver.get("http://127.0.0.1:%d/play.html?url=session.wsrec" % files.port)
        wait(driver, lambda: dataset(driver, "playback") == "ready", "the recording to load from ?url=")
        driver.find_element("id", "btn-end").click()
        wait(driver, lambda: dataset(driver, "playback") == "ended", "the end")
        driver.execute_async_script("window.wsproxyPlayer.settled().then(arguments[0])")
        assert read_canvas(driver)[2] == live[2]
        driver.get("http://127.0.0.1:%d/play.html?url=missing.wsrec" % files.port)
        wait(driver, lambda: dataset(driver, "playback") == "error", "the refusal")
        assert driver.find_element("id", "status").text == "missing.wsrec: HTTP 404 Not Found"
