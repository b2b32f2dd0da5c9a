"""web/ end to end for issue 15's encodings: the real page in headless Chromium,
through wsproxy, against a scripted RFB server (tests/rfbscript.py) that sends
real files made here -- PNGs (stdlib), JPEGs and an H.264 stream (ffmpeg) --
and what the user then sees is read back from the page:

* TightPNG (-260): a half-transparent PNG shows opaque (flattened onto black),
  an opaque one pixel-exact, a fill around them.
* JPEG (21): a whole JPEG, then one without its Huffman and quantization tables
  (the spec's abbreviated form) decoded with the first one's.
* VMware cursor (alpha): the page's CSS cursor is the RGBA image sent, with its hotspot.
* H.264 (50): ten frames of ffmpeg's testsrc, the first alone and nine in one
  rectangle; the canvas shows the last frame (WebCodecs VideoDecoder).
* The default SetEncodings asks for all of them (H.264 where the browser decodes it).
* x11vnc asked for TightPNG alone: the screen exact (this libvncserver build has
  no libpng, so it answers in Raw).

Needs chromium + chromedriver and ffmpeg (Debian packages; x11vnc, Xvfb and xwd for the
last); one browser for the module.
"""

import base64
import os
import re
import subprocess
import urllib.parse

import pytest

import realpeers
import rfbscript

WEB = os.path.join(realpeers.ROOT, "web")

REGION_JS = r"""
const cv = document.getElementById('canvas');
if (!cv.width || !cv.height) return null;
const [x, y, w, h] = arguments;
return Array.from(cv.getContext('2d').getImageData(x, y, w, h).data);
"""


class Page:
    def __init__(self, driver):
        self.driver = driver

    def open(self, port, **params):
        query = {"host": "127.0.0.1", "port": str(port), "path": "websockify", "autoconnect": "1"}
        query.update({k: str(v) for k, v in params.items()})
        self.driver.get("about:blank")
        self.driver.get("http://127.0.0.1:%d/vnc.html?%s" % (port, urllib.parse.urlencode(query)))

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def state(self):
        return self.js("return document.body.dataset.state")

    def status(self):
        return self.js("return document.getElementById('status').textContent")

    def wait(self, predicate, what, timeout=15.0):
        return realpeers.poll(predicate, what, timeout,
                              lambda: "state=%r status=%r" % (self.state(), self.status()))

    def region(self, x, y, w, h):
        """RGBA bytes of the visible canvas in that box (None before the first frame)."""
        data = self.js(REGION_JS, x, y, w, h)
        return bytes(data) if data is not None else None


@pytest.fixture
def page(browser):
    yield Page(browser)
    browser.get("about:blank")


class Session:
    """A scripted server behind wsproxy, the page connected to it (a context manager)."""

    def __init__(self, page, server, params):
        self.page, self.server, self.params = page, server, params
        self._proxy = realpeers.proxy("--web", WEB, "--vnc", "127.0.0.1:%d" % server.port)
        self.wsp = None

    def __enter__(self):
        self.wsp = self._proxy.__enter__()
        self.page.open(self.wsp.port, **self.params)
        return self

    def __exit__(self, *exc):
        self.page.driver.get("about:blank")
        self._proxy.__exit__(*exc)
        self.server.close()
        assert self.server.error is None, self.server.error


def open_session(page, width, height, updates, **params):
    return Session(page, rfbscript.ScriptedServer(width, height, updates), params)


def ffmpeg(*args):
    exe = realpeers.require_tool("ffmpeg")
    return subprocess.run([exe, "-v", "error", "-nostdin"] + list(args), check=True, capture_output=True, timeout=60).stdout


def mean(data, channel):
    values = data[channel::4]
    return sum(values) / len(values)


def close_to(got, want, tolerance):
    return all(abs(g - w) <= tolerance for g, w in zip(got, want))


def pixels_settled(page, x, y, w, h, want_rgba, tolerance):
    """Polls until every pixel of the box is within TOLERANCE of WANT_RGBA."""
    def check():
        data = page.region(x, y, w, h)
        if data is None:
            return False
        return all(close_to(data[i:i + 4], want_rgba, tolerance) for i in range(0, len(data), 4))
    return check


# ---------------------------------------------------------------- TightPNG


def test_tightpng_png_rects_are_shown_opaque(page):
    translucent = rfbscript.png_rgba(32, 32, bytes([200, 40, 0, 128]) * (32 * 32))
    pattern = bytes(c for i in range(32 * 16) for c in ((i * 7) & 255, (i * 3) & 255, 90, 255))
    opaque = rfbscript.png_rgba(32, 16, pattern)
    enc = rfbscript.TIGHTPNG
    updates = [rfbscript.update(
        rfbscript.rect(0, 0, 64, 32, enc, rfbscript.tight_fill((255, 255, 255))),
        rfbscript.rect(0, 0, 32, 32, enc, rfbscript.tight_image(rfbscript.TIGHT_PNG, translucent)),
        rfbscript.rect(32, 0, 32, 16, enc, rfbscript.tight_image(rfbscript.TIGHT_PNG, opaque)),
    )]
    with open_session(page, 64, 32, updates, encoding="tightpng") as s:
        page.wait(pixels_settled(page, 32, 16, 32, 16, (255, 255, 255, 255), 0), "the fill")
        # 50 % of (200, 40, 0) over black, whatever the white fill under it: opaque.
        page.wait(pixels_settled(page, 0, 0, 32, 32, (100, 20, 0, 255), 2), "the translucent PNG, flattened")
        page.wait(lambda: page.region(32, 0, 32, 16) == pattern, "the opaque PNG, exact")
        assert s.server.encodings[0][0] == enc, s.server.encodings


# ---------------------------------------------------------------- JPEG (21)


def jpeg_of(colour, width, height):
    return ffmpeg("-f", "lavfi", "-i", "color=c=0x%02x%02x%02x:s=%dx%d" % (colour + (width, height)),
                  "-frames:v", "1", "-q:v", "2", "-huffman", "default", "-pix_fmt", "yuvj444p",
                  "-f", "image2pipe", "-c:v", "mjpeg", "-")


def test_jpeg_encoding_whole_and_abbreviated(page):
    green, violet = (40, 180, 90), (150, 60, 200)
    whole = jpeg_of(green, 64, 32)
    abbreviated = rfbscript.jpeg_without_tables(jpeg_of(violet, 64, 32))
    assert b"\xff\xc4" in whole and b"\xff\xc4" not in abbreviated and b"\xff\xdb" not in abbreviated
    updates = [rfbscript.update(rfbscript.rect(0, 0, 64, 32, rfbscript.JPEG, whole),
                                rfbscript.rect(64, 0, 64, 32, rfbscript.JPEG, abbreviated))]
    with open_session(page, 128, 32, updates, encoding="jpeg") as s:
        page.wait(pixels_settled(page, 0, 0, 64, 32, green + (255,), 6), "the whole JPEG")
        page.wait(pixels_settled(page, 64, 0, 64, 32, violet + (255,), 6), "the JPEG without tables")
        assert s.server.encodings[0][0] == rfbscript.JPEG, s.server.encodings


# ---------------------------------------------------------------- VMware cursor


def test_vmware_alpha_cursor_becomes_the_page_cursor(page):
    size, hot = 12, (3, 5)
    rgba = bytes(c for y in range(size) for x in range(size)
                 for c in (20 * x, 255 - 20 * y, 128, (255, 192, 128, 0)[(x + y) % 4]))
    updates = [rfbscript.update(rfbscript.rect(0, 0, 32, 32, 0, bytes([50, 60, 70, 0]) * 1024),
                                rfbscript.vmware_alpha_cursor(hot[0], hot[1], size, size, rgba))]
    with open_session(page, 32, 32, updates):
        def cursor_image():
            style = page.js("return document.getElementById('canvas').style.cursor")
            return style if style.startswith("url(") else None
        style = page.wait(cursor_image, "a cursor image")
        found = re.match(r'url\("data:image/png;base64,([^"]+)"\) (\d+) (\d+)', style)
        assert found, style
        width, height, shown = rfbscript.png_decode(base64.b64decode(found.group(1)))
        assert (width, height, int(found.group(2)), int(found.group(3))) == (size, size) + hot
        for i in range(0, len(rgba), 4):
            sent, got = rgba[i:i + 4], shown[i:i + 4]
            assert got[3] == sent[3], (i // 4, sent, got)
            if sent[3]:   # the canvas keeps colours premultiplied: a little rounding
                assert close_to(got[:3], sent[:3], 2), (i // 4, sent, got)


# ---------------------------------------------------------------- H.264


@pytest.fixture(scope="module")
def testsrc(tmp_path_factory):
    """Ten 320x240 frames of ffmpeg's testsrc as a baseline Annex B stream, and the
    last frame as ffmpeg decodes it (RGB)."""
    path = str(tmp_path_factory.mktemp("h264") / "testsrc.h264")
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-frames:v", "10", "-c:v", "libx264",
           "-profile:v", "baseline", "-pix_fmt", "yuv420p",
           # The colour space in the SPS, as the spec asks: BT.601, what ffmpeg's own RGB conversion uses.
           "-colorspace", "smpte170m", "-color_primaries", "smpte170m", "-color_trc", "smpte170m", "-bsf:v", "h264_mp4toannexb", "-f", "h264", path)
    rgb = ffmpeg("-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
    with open(path, "rb") as handle:
        stream = handle.read()
    return stream, [rgb[i:i + 320 * 240 * 3] for i in range(0, len(rgb), 320 * 240 * 3)]


def region_means(rgb_or_rgba, stride_bytes, bpp, x, y, w, h):
    sums = [0, 0, 0]
    for row in range(y, y + h):
        for col in range(x, x + w):
            i = row * stride_bytes + col * bpp
            for k in range(3):
                sums[k] += rgb_or_rgba[i + k]
    return [s / (w * h) for s in sums]


# Boxes of the testsrc picture: colour bars, the gradient and the moving parts.
H264_BOXES = [(8, 8, 24, 24), (60, 10, 24, 24), (120, 10, 24, 24), (200, 10, 24, 24), (280, 10, 24, 24),
              (40, 200, 32, 24), (150, 100, 40, 40), (250, 180, 40, 40)]
# Per channel, box means: decoders round the colour conversion differently (measured:
# under 2). Frame 0 differs from frame 9 by about 90 in the last two boxes.
H264_TOLERANCE = 6


def test_h264_frames_are_decoded_and_the_last_shown(page, testsrc):
    stream, expected = testsrc
    frames = rfbscript.h264_access_units(stream)
    assert len(frames) == 10 and len(expected) == 10
    updates = [rfbscript.update(rfbscript.rect(0, 0, 320, 240, rfbscript.H264,
                                               rfbscript.h264(frames[0], rfbscript.H264_RESET_ALL))),
               rfbscript.update(rfbscript.rect(0, 0, 320, 240, rfbscript.H264, rfbscript.h264(b"".join(frames[1:]))))]
    with open_session(page, 320, 240, updates, encoding="h264") as s:
        def shows_last_frame():
            data = page.region(0, 0, 320, 240)
            if data is None:
                return None
            errors = [max(abs(a - b) for a, b in zip(region_means(data, 320 * 4, 4, *box),
                                                        region_means(expected[9], 320 * 3, 3, *box)))
                      for box in H264_BOXES]
            return errors if max(errors) <= H264_TOLERANCE else None
        page.wait(shows_last_frame, "the tenth frame on the canvas", timeout=20)
        assert s.server.encodings[0][0] == rfbscript.H264, s.server.encodings
        assert page.state() == "connected"


# ---------------------------------------------------------------- SetEncodings


def test_default_set_encodings_asks_for_the_new_encodings(page):
    with open_session(page, 16, 16, []) as s:
        page.wait(lambda: s.server.encodings, "SetEncodings")
        asked = s.server.encodings[0]
        has_h264 = page.js("return typeof VideoDecoder === 'function'")
        for number in (rfbscript.TIGHTPNG, rfbscript.JPEG, rfbscript.VMWARE_CURSOR):
            assert number in asked, (number, asked)
        # Debian's Chromium decodes avc1 with WebCodecs: H.264 is asked for, after the
        # lossless encodings (Tight, ZRLE), which keep a still screen exact.
        assert has_h264 and rfbscript.H264 in asked, asked
        assert asked.index(rfbscript.H264) > asked.index(7) and asked.index(rfbscript.H264) > asked.index(16), asked
        assert asked.index(rfbscript.VMWARE_CURSOR) < asked.index(-239)


# ---------------------------------------------------------------- a real server: x11vnc


def test_x11vnc_asked_for_tightpng_alone_shows_its_screen(browser):
    """The page asks x11vnc for TightPNG alone and shows the server's screen exactly
    (xwd), a lossless-friendly picture then solid fills. Debian's libvncserver has
    TightPNG but is built without libpng, so x11vnc answers in Raw (always allowed):
    a server without the encoding is no problem, and one with it would use it."""
    import test_web_e2e as e2e   # its page-side instrumentation and pixel comparison
    import x11

    realpeers.require_tool("xwd")
    page = e2e.Page(browser)
    with realpeers.xvfb("%dx%d" % e2e.GEOMETRY) as display, realpeers.x11vnc(display) as vnc_port, \
            realpeers.proxy("--web", WEB, "--vnc", "127.0.0.1:%d" % vnc_port) as wsp:
        page.open(wsp.port, encoding="tightpng")
        page.wait_state("connected")
        page.instrument()
        with x11.XConnection(display) as conn:
            conn.fill(0, 0, conn.width, conn.height, (30, 40, 200))
            conn.sync()
            e2e.converge(page, display)
            conn.put_rgb(x11.test_picture(conn.width, conn.height, 5, lossless_friendly=True))
            e2e.converge(page, display)
            e2e.incremental_changes(conn, 5)
            e2e.converge(page, display)
        stats = page.stats()
        browser.get("about:blank")
    rects = {int(k): v for k, v in stats["rects"].items()}
    print("x11vnc tightpng:", stats)
    assert rects and set(rects) <= {rfbscript.TIGHTPNG, 0, 1}, rects
