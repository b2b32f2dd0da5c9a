"""TightPNG (-260), JPEG (21) and the VMware cursor (issue 15) in the real page:
headless Chromium through wsproxy against a scripted RFB server that checks the
page asked for them, then sends a PNG rectangle (exact pixels expected), a JPEG
rectangle with its tables, one without (the page must reuse the first one's
tables), and an alpha cursor (the canvas's CSS cursor must become that image).
Pictures come from Pillow (test-only); every process is stopped by PID.
"""

import io
import os
import socket
import subprocess
import struct
import threading
import time
import urllib.parse

import pytest

import realpeers
import rfbscript
from conftest import recv_exact

Image = pytest.importorskip("PIL.Image", reason="needs Pillow to make PNG and JPEG pictures")

WEB = os.path.join(realpeers.ROOT, "web")
W, H = 64, 32
PIXEL_FORMAT = rfbscript.PIXEL_FORMAT
compact_length = rfbscript.compact_length
rect = rfbscript.rect
TIGHTPNG, JPEG, VMWARE_CURSOR = -260, 21, 0x574D5664
JPEG_COLOUR = (40, 120, 220)


def png_bytes():
    """32x32: left half red, right half blue, one green pixel at (5, 7)."""
    img = Image.new("RGB", (32, 32), (255, 0, 0))
    img.paste((0, 0, 255), (16, 0, 32, 32))
    img.putpixel((5, 7), (0, 255, 0))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def jpeg_bytes(colour):
    out = io.BytesIO()
    Image.new("RGB", (16, 32), colour).save(out, "JPEG", quality=95)
    return out.getvalue()


def without_tables(jpeg):
    """The same JPEG with its DQT and DHT segments taken out (rfbproto: reuse the previous ones)."""
    out, pos = bytearray(jpeg[:2]), 2
    while pos < len(jpeg):
        marker = jpeg[pos + 1]
        length = struct.unpack(">H", jpeg[pos + 2:pos + 4])[0]
        if marker not in (0xDB, 0xC4):
            out += jpeg[pos:pos + 2 + length]
        pos += 2 + length
        if marker == 0xDA:
            out += jpeg[pos:]
            break
    assert len(out) < len(jpeg)
    return bytes(out)


def read_set_encodings(conn):
    """Client messages up to SetEncodings; returns its list."""
    while True:
        kind = recv_exact(conn, 1)[0]
        if kind == 0:
            recv_exact(conn, 19)
        elif kind == 2:
            count = struct.unpack(">xH", recv_exact(conn, 3))[0]
            return list(struct.unpack(">%di" % count, recv_exact(conn, 4 * count)))
        elif kind == 3:
            recv_exact(conn, 9)
        else:
            raise AssertionError("unexpected client message %d before SetEncodings" % kind)


def serve(listener, seen):
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(20)
        rfbscript.handshake(conn, W, H, b"new", PIXEL_FORMAT)
        seen["encodings"] = read_set_encodings(conn)
        png, first = png_bytes(), jpeg_bytes(JPEG_COLOUR)
        second = without_tables(jpeg_bytes(JPEG_COLOUR))
        cursor = bytes([255, 0, 0, 255] * 8 + [0, 0, 255, 128] * 8)   # 4x4: red top, half-transparent blue bottom
        update = (struct.pack(">BxH", 0, 4)
                  + rect(0, 0, 32, 32, TIGHTPNG) + b"\xa0" + compact_length(len(png)) + png
                  + rect(32, 0, 16, 32, JPEG) + first
                  + rect(48, 0, 16, 32, JPEG) + second
                  + rect(1, 2, 4, 4, VMWARE_CURSOR) + b"\x01\x00" + cursor)
        conn.sendall(update)
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass


PIXELS_JS = """
const c = document.getElementById('canvas');
if (!c.width) return null;
const g = c.getContext('2d');
const at = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data);
return {png: [at(2, 2), at(5, 7), at(20, 30)], jpeg: [at(40, 16), at(56, 16)], cursor: c.style.cursor};
"""


def test_tightpng_jpeg_and_vmware_cursor_in_the_page(browser):
    listener = socket.create_server(("127.0.0.1", 0))
    seen = {}
    thread = threading.Thread(target=serve, args=(listener, seen), name="new-encodings", daemon=True)
    thread.start()
    with listener, realpeers.proxy("--web", WEB, "--vnc", "127.0.0.1:%d" % listener.getsockname()[1]) as wsp:
        query = {"host": "127.0.0.1", "port": str(wsp.port), "path": "websockify", "autoconnect": "1"}
        browser.get("http://127.0.0.1:%d/vnc.html?%s" % (wsp.port, urllib.parse.urlencode(query)))
        deadline, got = time.monotonic() + 20, None
        while time.monotonic() < deadline:
            got = browser.execute_script(PIXELS_JS)
            if got and got["png"][0] == [255, 0, 0, 255] and got["jpeg"][1] != [0, 0, 0, 255] \
                    and "url(" in got["cursor"]:
                break
            time.sleep(0.1)
        state = browser.execute_script("return document.body.dataset.state")
        status = browser.execute_script("return document.getElementById('status').textContent")
        browser.get("about:blank")
    thread.join(5)
    print("encodings asked:", seen.get("encodings"), "page:", got, state, status)
    assert {TIGHTPNG, JPEG, VMWARE_CURSOR} <= set(seen["encodings"]), seen
    assert state == "connected", status
    assert got["png"] == [[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255]], got
    for pixel in got["jpeg"]:   # JPEG is lossy: close to the colour, both with and without tables
        assert max(abs(a - b) for a, b in zip(pixel[:3], JPEG_COLOUR)) <= 6, got
    assert got["cursor"].startswith('url("data:image/png'), got["cursor"]
    assert got["cursor"].endswith(' 1 2, default'), got["cursor"]


# ---------------------------------------------------------------- H.264 (50) through WebCodecs

H264 = 50
H264_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
H264_RECT = (0, 0, 60, 40)   # frames are 64x48: the page must crop them to the rectangle


def h264_frames():
    """Three 64x48 frames (red key frame, green, blue) from ffmpeg/libx264, baseline, one
    slice a frame, as Annex B access units (split at the access unit delimiters)."""
    ffmpeg = realpeers.require_tool("ffmpeg")
    raw = b"".join(bytes(c) * (64 * 48) for c in H264_COLOURS)
    out = subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-s", "64x48", "-r", "25", "-i", "-", "-c:v", "libx264", "-profile:v", "baseline",
                          "-tune", "zerolatency", "-x264-params", "aud=1:threads=1:sliced-threads=0",
                          "-pix_fmt", "yuv420p", "-f", "h264", "-"], input=raw, capture_output=True, timeout=60,
                         check=True).stdout
    aud = b"\x00\x00\x00\x01\x09"
    units = [aud + part for part in out.split(aud) if part]
    assert len(units) == 3, len(units)
    return units


def read_client_message(conn):
    """One client message: (type, its encodings for SetEncodings else None)."""
    kind = recv_exact(conn, 1)[0]
    if kind == 0:
        recv_exact(conn, 19)
    elif kind == 2:
        count = struct.unpack(">xH", recv_exact(conn, 3))[0]
        return kind, list(struct.unpack(">%di" % count, recv_exact(conn, 4 * count)))
    elif kind == 3:
        recv_exact(conn, 9)
    elif kind in (4, 5):
        recv_exact(conn, 7 if kind == 4 else 5)
    else:
        raise AssertionError("unexpected client message %d" % kind)
    return kind, None


def serve_h264(listener, seen, step):
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(20)
        rfbscript.handshake(conn, W, H + 16, b"h264", PIXEL_FORMAT)
        units = h264_frames()
        try:
            for unit in units:
                kind = None
                while kind != 3:   # each frame answers a FramebufferUpdateRequest
                    kind, encodings = read_client_message(conn)
                    if encodings is not None:
                        seen["encodings"] = encodings
                step.wait(20)
                step.clear()
                conn.sendall(struct.pack(">BxH", 0, 1) + rect(*H264_RECT, H264) + struct.pack(">II", len(unit), 0) + unit)
            while conn.recv(65536):
                pass
        except OSError:
            pass


H264_PIXELS_JS = """
const c = document.getElementById('canvas');
if (!c.width) return null;
const g = c.getContext('2d');
return [Array.from(g.getImageData(30, 20, 1, 1).data), Array.from(g.getImageData(62, 46, 1, 1).data)];
"""


def test_h264_frames_decode_in_order_and_crop_to_the_rectangle(browser):
    listener = socket.create_server(("127.0.0.1", 0))
    seen, step = {}, threading.Event()
    thread = threading.Thread(target=serve_h264, args=(listener, seen, step), name="h264", daemon=True)
    thread.start()
    shown = []
    with listener, realpeers.proxy("--web", WEB, "--vnc", "127.0.0.1:%d" % listener.getsockname()[1]) as wsp:
        query = {"host": "127.0.0.1", "port": str(wsp.port), "path": "websockify", "autoconnect": "1"}
        browser.get("http://127.0.0.1:%d/vnc.html?%s" % (wsp.port, urllib.parse.urlencode(query)))
        for colour in H264_COLOURS:
            step.set()
            deadline, got = time.monotonic() + 15, None
            while time.monotonic() < deadline:
                got = browser.execute_script(H264_PIXELS_JS)
                if got and max(abs(a - b) for a, b in zip(got[0][:3], colour)) <= 40:
                    break
                time.sleep(0.05)
            shown.append(got)
        status = browser.execute_script("return document.getElementById('status').textContent")
        browser.get("about:blank")
    thread.join(5)
    print("encodings asked:", seen.get("encodings"), "shown:", shown, status)
    assert H264 in seen["encodings"], "the page did not ask for H.264 (WebCodecs missing?)"
    for got, colour in zip(shown, H264_COLOURS):
        assert got and max(abs(a - b) for a, b in zip(got[0][:3], colour)) <= 40, (shown, status)
        assert got[1][:3] == [0, 0, 0], "the 64x48 frame was drawn past its 60x40 rectangle"
