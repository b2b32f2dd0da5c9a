"""--demo: the built-in demo VNC target (wsproxy.py section 12).

Pure parts first (font, desktop drawing, client-message parsing, the RFB
session fed whole, byte by byte and at every split), then the command line,
then independent clients: vncdotool (its command and its Python API, Raw and
ZRLE) against the demo's socket, and web/vnc.html in headless Chromium through
``wsproxy.py --demo`` at the URL the banner prints.  Expected pixels come from
rendering a DemoDesktop in-process; the clock is left out of every comparison.

WSPROXY_DEMO_SCREENSHOT=PATH saves the browser test's screenshot there (that
is how web/demo-screenshot.png is made).
"""

import base64
import io
import os
import re
import struct
import subprocess
import threading
import time
import zlib

import pytest

import realpeers
import wsproxy
from wsproxy import DemoDesktop, DemoSession, RfbError, parse_client_message

W, H = wsproxy.DEMO_SIZE
NATIVE = wsproxy.RFB_NATIVE_FORMAT


# ---------------------------------------------------------------- helpers


def handshake(session, version=b"RFB 003.008\n", split=False):
    """Drive a session to the normal state; returns everything it sent after the greeting."""
    assert session.data_to_send() == b"RFB 003.008\n"
    server_decides = version[:8] == b"RFB 003." and int(version[8:11]) < 7
    client = version + (b"" if server_decides else b"\x01") + b"\x01"
    for piece in ([client[i:i + 1] for i in range(len(client))] if split else [client]):
        session.receive(piece)
    assert session.state == "normal"
    return session.data_to_send()


def server_init(data):
    width, height = struct.unpack_from(">HH", data)
    fmt = struct.unpack_from(">BBBBHHHBBB3x", data, 4)
    name_len = struct.unpack_from(">I", data, 20)[0]
    return width, height, fmt, data[24:24 + name_len], data[24 + name_len:]


def request(incremental=0, box=(0, 0, W, H)):
    return struct.pack(">BBHHHH", 3, incremental, *box)


def encodings(*numbers):
    return struct.pack(">BxH%di" % len(numbers), 2, len(numbers), *numbers)


def key(keysym, down=1):
    return struct.pack(">BBxxI", 4, down, keysym)


def set_size(width, height, screens=1):
    return struct.pack(">BxHHBx", 251, width, height, screens) + bytes(16 * screens)


class Updates:
    """A tiny independent FramebufferUpdate reader (Raw and ZRLE with 3-byte CPIXELs)."""

    def __init__(self, width=W, height=H):
        self.width, self.height = width, height
        self.pixels = bytearray(width * height * 3)   # RGB
        self.inflate = zlib.decompressobj()
        self.pseudo = []
        self.cut_text = []
        self.clipboard = []  # Extended Clipboard messages: (flags, payload)
        self.updates = []   # the number of rectangles in each FramebufferUpdate

    def feed(self, data):
        pos = 0
        while pos < len(data):
            kind = data[pos]
            if kind == 3:
                length = struct.unpack_from(">i", data, pos + 4)[0]
                if length < 0:   # Extended Clipboard: flags, then the rest
                    flags = struct.unpack_from(">I", data, pos + 8)[0]
                    self.clipboard.append((flags, data[pos + 12:pos + 8 - length]))
                    pos += 8 - length
                    continue
                self.cut_text.append(data[pos + 8:pos + 8 + length].decode("latin-1"))
                pos += 8 + length
                continue
            assert kind == 0, kind
            count = struct.unpack_from(">H", data, pos + 2)[0]
            self.updates.append(count)
            pos += 4
            for _ in range(count):
                x, y, w, h, enc = struct.unpack_from(">HHHHi", data, pos)
                pos += 12
                if enc == 0:
                    self.put(x, y, w, h, data[pos:pos + w * h * 4], 4)
                    pos += w * h * 4
                elif enc == 16:
                    length = struct.unpack_from(">I", data, pos)[0]
                    self.zrle(x, y, w, h, self.inflate.decompress(data[pos + 4:pos + 4 + length]))
                    pos += 4 + length
                elif enc == -223:
                    self.pseudo.append((enc, x, y, w, h))
                    self.resize(w, h)
                elif enc == -308:
                    screens = data[pos]
                    self.pseudo.append((enc, x, y, w, h))
                    pos += 4 + 16 * screens
                    if x != 1 or y == 0:
                        self.resize(w, h)
                else:
                    raise AssertionError("unexpected encoding %d" % enc)
        return self

    def resize(self, w, h):
        if (w, h) != (self.width, self.height):
            self.width, self.height, self.pixels = w, h, bytearray(w * h * 3)

    def put(self, x, y, w, h, src, size):
        if size == 4:   # R, G, B, X -> R, G, B
            rgb = bytearray(w * h * 3)
            rgb[0::3], rgb[1::3], rgb[2::3] = src[0::4], src[1::4], src[2::4]
            src = rgb
        for row in range(h):
            d = ((y + row) * self.width + x) * 3
            self.pixels[d:d + w * 3] = src[row * w * 3:(row + 1) * w * 3]

    def zrle(self, x, y, w, h, raw):
        pos = 0
        for ty in range(y, y + h, 64):
            for tx in range(x, x + w, 64):
                tw, th = min(64, x + w - tx), min(64, y + h - ty)
                sub = raw[pos]
                pos += 1
                if sub == 1:
                    self.put(tx, ty, tw, th, raw[pos:pos + 3] * (tw * th), 3)
                    pos += 3
                else:
                    assert sub == 0, sub
                    self.put(tx, ty, tw, th, raw[pos:pos + 3 * tw * th], 3)
                    pos += 3 * tw * th
        assert pos == len(raw)


def rgb(desktop):
    desktop.draw_text()   # keys are drawn when an update goes out; this is one
    px = desktop.pixels
    out = bytearray(len(px) // 4 * 3)
    out[0::3], out[1::3], out[2::3] = px[0::4], px[1::4], px[2::4]
    return bytes(out)


def differing(a, b, width, skip=()):
    """Pixels that differ between two RGB byte strings, outside the boxes in skip."""
    out = []
    stride = width * 3
    for y in range(min(len(a), len(b)) // stride):
        row_a, row_b = a[y * stride:(y + 1) * stride], b[y * stride:(y + 1) * stride]
        if row_a == row_b:
            continue
        for x in range(width):
            if row_a[x * 3:x * 3 + 3] != row_b[x * 3:x * 3 + 3] and not any(
                    bx <= x < bx + bw and by <= y < by + bh for bx, by, bw, bh in skip):
                out.append((x, y))
    return out


def pixel(image_rgb, width, x, y):
    o = (y * width + x) * 3
    return tuple(image_rgb[o:o + 3])


# ---------------------------------------------------------------- pure: drawing


def test_font_has_every_printable_ascii_glyph():
    assert len(wsproxy._FONT) == 95 * 5
    assert wsproxy._FONT[0:5] == bytes(5)                       # space is blank
    assert all(any(wsproxy._FONT[i * 5:i * 5 + 5]) for i in range(1, 95))
    assert wsproxy._glyph_index("\u00e9") == wsproxy._glyph_index("e")   # accents drop
    assert wsproxy._glyph_index("\u00df") == wsproxy._glyph_index("?")
    assert wsproxy._glyph_index("\u263a") == wsproxy._glyph_index("?")


def test_pattern_bars_ramps_and_text():
    d = DemoDesktop(clock="12:34:56")
    img = rgb(d)
    bx, by, bw, bh = d.bars_box
    for i, colour in enumerate(wsproxy.DEMO_COLOURS["bars"]):
        assert pixel(img, W, i * W // 8 + W // 16, by + bh // 2) == colour
    ry = d.ramps_box[1]
    assert pixel(img, W, 0, ry + 5) == (0, 0, 0) and pixel(img, W, W - 1, ry + 5) == (255, 255, 255)
    assert pixel(img, W, W - 1, ry + 15) == (255, 0, 0) and pixel(img, W, W - 1, ry + 35) == (0, 0, 255)
    # The version is drawn in the header, the clock in its box: both change pixels.
    header = {pixel(img, W, x, y) for x in range(8, 200) for y in range(7, 21)}
    assert wsproxy.DEMO_COLOURS["title"] in header
    assert d.dirty == [(0, 0, W, H)]


def test_clock_marks_only_its_box():
    d = DemoDesktop(clock="12:34:56")
    before = rgb(d)
    d.dirty = []
    d.set_clock("12:34:56")
    assert d.dirty == []
    d.set_clock("12:34:57")
    assert d.dirty == [d.clock_box]
    changed = differing(before, rgb(d), W)
    assert changed and not differing(before, rgb(d), W, skip=[d.clock_box])


def test_pointer_paints_only_with_a_button_held():
    d = DemoDesktop()
    before = rgb(d)
    d.dirty = []
    d.pointer(100, 60, 0)
    assert rgb(d) == before and d.dirty == []
    d.pointer(100, 60, 1)
    d.pointer(160, 80, 1)   # a stroke, not two dots
    img = rgb(d)
    for x in (100, 130, 160):
        assert pixel(img, W, x, 60 + (x - 100) // 3) == wsproxy.DEMO_COLOURS[1]
    d.pointer(160, 80, 0)
    d.pointer(200, 100, 4)  # a new stroke starts where the button went down
    assert pixel(rgb(d), W, 180, 90) != wsproxy.DEMO_COLOURS[4]
    assert pixel(rgb(d), W, 200, 100) == wsproxy.DEMO_COLOURS[4]
    assert all(wsproxy._intersect(box, (0, 0, W, H)) == box for box in d.dirty)


def test_keys_type_edit_and_wrap():
    d = DemoDesktop()
    for ch in "Hi\u00e9":
        d.key(ord(ch), True)
        d.key(ord(ch), False)
    assert d.typed == "Hi\u00e9"
    d.key(0xFF08, True)        # BackSpace
    d.key(0xFF0D, True)        # Return
    d.key(0x0100263A, True)    # a Unicode keysym
    d.key(0xFFE1, True)        # Shift: not text
    assert d.typed == "Hi\n\u263a"
    d.draw_text()
    d.dirty = []
    d.key(ord("x"), True)
    assert d.dirty == []       # recorded; drawn with the next update
    d.draw_text()
    cw, ch = wsproxy.DEMO_CELL
    x, y = d.text_box[0] + 8, d.text_box[1] + 6
    assert d.dirty == [(x + cw, y + 2 * ch, 2 * cw, ch)]   # row 2, "\u263ax_": the x and the cursor
    d.typed = "y" * 5000
    d.key(ord("z"), True)
    assert len(d.typed) == 4096 and d.typed.endswith("yz")


def test_dirty_rectangles_merge_beyond_the_limit():
    d = DemoDesktop()
    d.dirty = []
    for i in range(wsproxy.DEMO_MAX_DIRTY + 1):
        d.mark((10 * i, 5, 2, 2))
    assert d.dirty == [(0, 5, 10 * wsproxy.DEMO_MAX_DIRTY + 2, 2)]
    d.mark((-10, -10, 5, 5))   # off-screen: nothing
    d.mark((W - 1, H - 1, 10, 10))
    assert d.dirty[-1] == (W - 1, H - 1, 1, 1)


# ---------------------------------------------------------------- pure: parsing


MESSAGES = [
    (struct.pack(">B3x", 0) + struct.pack(">BBBBHHHBBB3x", *NATIVE), 0, NATIVE),
    (encodings(16, 0, -223), 2, (16, 0, -223)),
    (request(1, (1, 2, 3, 4)), 3, (1, 1, 2, 3, 4)),
    (struct.pack(">BBxxI", 4, 1, 0x61), 4, (1, 0x61)),
    (struct.pack(">BBHH", 5, 1, 10, 20), 5, (1, 10, 20)),
    (struct.pack(">B3xI", 6, 4) + b"caf\xe9", 6, ("caf\u00e9",)),
    (struct.pack(">BxHHBx", 251, 800, 600, 1) + bytes(16), 251, (800, 600, 1)),
]


@pytest.mark.parametrize("message,kind,fields", MESSAGES, ids=[str(m[1]) for m in MESSAGES])
def test_parse_client_message_whole_split_and_trailing(message, kind, fields):
    assert parse_client_message(message) == (kind, fields, len(message))
    assert parse_client_message(message + b"\x05trailing") == (kind, fields, len(message))
    for cut in range(len(message)):
        assert parse_client_message(message[:cut]) is None


def test_parse_client_message_refuses_what_was_not_offered_or_too_big():
    for kind in (1, 7, 150, 248, 255):
        with pytest.raises(RfbError, match="type %d" % kind):
            parse_client_message(bytes([kind]) + bytes(20))
    with pytest.raises(RfbError, match="ClientCutText"):
        parse_client_message(struct.pack(">B3xI", 6, wsproxy.DEMO_MAX_CUT_TEXT + 1))
    with pytest.raises(RfbError, match="SetEncodings"):
        parse_client_message(struct.pack(">BxH", 2, wsproxy.DEMO_MAX_ENCODINGS + 1))


# ---------------------------------------------------------------- pure: session


@pytest.mark.parametrize("split", [False, True], ids=["whole", "byte-by-byte"])
@pytest.mark.parametrize("version,security", [
    (b"RFB 003.008\n", b"\x01\x01\x00\x00\x00\x00"),   # list, then SecurityResult OK
    (b"RFB 003.007\n", b"\x01\x01"),                   # list, no result for None
    (b"RFB 003.003\n", b"\x00\x00\x00\x01"),           # the server decides: None
    (b"RFB 003.005\n", b"\x00\x00\x00\x01"),           # unknown 3.x is 3.3
    (b"RFB 004.001\n", b"\x01\x01\x00\x00\x00\x00"),   # later is 3.8
])
def test_handshake_versions(version, security, split):
    session = DemoSession(clock="00:00:00")
    out = handshake(session, version, split)
    assert out.startswith(security)
    width, height, fmt, name, rest = server_init(out[len(security):])
    assert (width, height, fmt, name, rest) == (W, H, NATIVE, b"wsproxy demo", b"")


def test_handshake_every_split_point():
    client = b"RFB 003.008\n\x01\x01" + encodings(16) + request()
    whole = DemoSession(clock="00:00:00")
    whole.data_to_send()
    whole.receive(client)
    expected = whole.data_to_send()
    for cut in range(1, len(client)):
        session = DemoSession(clock="00:00:00")
        session.data_to_send()
        session.receive(client[:cut])
        session.receive(client[cut:])
        assert session.data_to_send() == expected, cut


def test_handshake_refusals():
    session = DemoSession()
    session.data_to_send()
    with pytest.raises(RfbError, match="RFB version"):
        session.receive(b"GET / HTTP/1.1\r\n")
    session = DemoSession()
    session.data_to_send()
    session.receive(b"RFB 003.008\n")
    session.data_to_send()
    with pytest.raises(RfbError, match="security type 2"):
        session.receive(b"\x02")
    reason = b"only security type None (1) is offered"
    assert session.data_to_send() == struct.pack(">II", 1, len(reason)) + reason


@pytest.mark.parametrize("encoding", [0, 16], ids=["raw", "zrle"])
def test_updates_full_then_only_what_changed(encoding):
    session = DemoSession(clock="00:00:00")
    handshake(session)
    session.receive(encodings(7, encoding, 5))   # Tight and Hextile are not offered: skipped
    assert session.encoding == encoding
    client = Updates()
    assert session.data_to_send() == b""         # nothing before a request
    session.receive(request())
    client.feed(session.data_to_send())
    assert client.pixels == rgb(session.desktop)
    session.receive(request(1))
    assert session.data_to_send() == b""         # nothing changed: the request waits
    session.tick("00:00:01")
    out = session.data_to_send()
    assert struct.unpack_from(">BxHHHHH", out)[1:5] == (1,) + session.desktop.clock_box[:3]
    client.feed(out)
    assert client.pixels == rgb(session.desktop)
    session.tick("00:00:02")                      # no request pending: held back
    assert session.data_to_send() == b""
    session.receive(request(1))                   # answered at once: the clock changed
    client.feed(session.data_to_send())
    session.receive(request(1))
    session.receive(struct.pack(">BBxxI", 4, 1, ord("Q")) + struct.pack(">BBHH", 5, 1, 50, 60))
    out = session.data_to_send()
    assert struct.unpack_from(">BxH", out)[1] == 2     # the text box and the paint
    client.feed(out)
    assert client.pixels == rgb(session.desktop)
    assert session.desktop.dirty == []


def test_update_request_for_part_of_the_screen_leaves_the_rest_dirty():
    session = DemoSession(clock="00:00:00")
    handshake(session)
    session.receive(request(0, (0, 0, 100, 100)))
    out = session.data_to_send()
    assert struct.unpack_from(">BxHHHHH", out)[1:] == (1, 0, 0, 100, 100)
    assert session.desktop.dirty == [(0, 0, W, H)]


def test_set_pixel_format_converts_pixels():
    session = DemoSession(clock="00:00:00")
    handshake(session)
    bgr16 = (16, 16, 0, 1, 31, 63, 31, 11, 5, 0)
    session.receive(struct.pack(">B3x", 0) + struct.pack(">BBBBHHHBBB3x", *bgr16))
    d = session.desktop
    y = d.bars_box[1] + 10
    session.receive(request(0, (0, y, W, 1)))
    out = session.data_to_send()
    row = out[16:]
    assert len(row) == W * 2
    for i, (r, g, b) in enumerate(wsproxy.DEMO_COLOURS["bars"]):
        value = struct.unpack_from("<H", row, (i * W // 8 + 5) * 2)[0]
        assert value == (r * 31 + 127) // 255 << 11 | (g * 63 + 127) // 255 << 5 | (b * 31 + 127) // 255
    with pytest.raises(RfbError, match="pixel format"):
        session.receive(struct.pack(">B3x", 0) + struct.pack(">BBBBHHHBBB3x", 8, 8, 0, 0, 0, 0, 0, 0, 0, 0))


def test_big_endian_and_high_byte_formats_keep_three_byte_cpixels():
    for fmt, drop in (((32, 24, 1, 1, 255, 255, 255, 16, 8, 0), 0), ((32, 24, 0, 1, 255, 255, 255, 24, 16, 8), 0),
                      ((32, 24, 1, 1, 255, 255, 255, 24, 16, 8), 3), ((32, 32, 0, 1, 255, 255, 255, 0, 8, 16), None)):
        session = DemoSession()
        session.set_pixel_format(fmt)
        assert session._cpixel_drop == drop, fmt


def test_clipboard_is_shown_and_echoed():
    session = DemoSession(clock="00:00:00")
    handshake(session)
    session.receive(request())
    client = Updates().feed(session.data_to_send())
    session.receive(request(1))
    text = "caf\u00e9 clipboard"
    session.receive(struct.pack(">B3xI", 6, len(text)) + text.encode("latin-1"))
    client.feed(session.data_to_send())
    assert client.cut_text == [text]
    assert session.desktop.clipboard == text
    assert client.pixels == rgb(session.desktop)


# Extended Clipboard, written out here from rfbproto rather than taken from wsproxy.
EXT_CLIPBOARD = -0x3F5E1A32   # 0xC0A1E5CE
TEXT, CAPS, REQUEST, PEEK, NOTIFY, PROVIDE = 1, 1 << 24, 1 << 25, 1 << 26, 1 << 27, 1 << 28


def ext_cut(flags, payload=b""):
    """A ClientCutText in the Extended Clipboard form."""
    return struct.pack(">B3xiI", 6, -(4 + len(payload)), flags) + payload


def provide(text, compress=True):
    data = text.replace("\n", "\r\n").encode("utf-8") + b"\0"
    plain = struct.pack(">I", len(data)) + data
    return ext_cut(PROVIDE | TEXT, zlib.compress(plain) if compress else zlib.compress(plain, 0))


def provided_text(flags, payload):
    assert flags == PROVIDE | TEXT, hex(flags)
    plain = zlib.decompress(payload)
    size = struct.unpack_from(">I", plain)[0]
    assert len(plain) == 4 + size and plain.endswith(b"\0")
    return plain[4:-1].decode("utf-8").replace("\r\n", "\n")


def ext_clipboard_session(client_caps=None):
    """A session that took SetEncodings with Extended Clipboard (and the
    client's caps, if given); returns it and the client-side reader."""
    session = DemoSession(clock="00:00:00")
    handshake(session)
    session.receive(encodings(16, EXT_CLIPBOARD))
    client = Updates().feed(session.data_to_send())
    assert client.clipboard == [(CAPS | TEXT | REQUEST | PEEK | NOTIFY | PROVIDE,
                                 struct.pack(">I", wsproxy.DEMO_MAX_CUT_TEXT))]
    client.clipboard.clear()
    if client_caps is not None:
        session.receive(ext_cut(*client_caps))
        assert session.data_to_send() == b""
    return session, client


UTF8_TEXT = "\u2713 caf\u00e9 \u65e5\u672c\nline two \U0001f600"


def test_extended_clipboard_round_trip_as_web_sends_it():
    """web/ announces it takes nothing unasked (sizes 0), provides its text in
    stored zlib blocks, and requests what the server notifies."""
    session, client = ext_clipboard_session((CAPS | TEXT | REQUEST | PEEK | NOTIFY | PROVIDE, struct.pack(">I", 0)))
    message = provide(UTF8_TEXT, compress=False)
    for i in range(len(message)):   # byte by byte
        session.receive(message[i:i + 1])
    assert session.desktop.clipboard == UTF8_TEXT
    client.feed(session.data_to_send())
    assert client.clipboard == [(NOTIFY | TEXT, b"")] and client.cut_text == []
    session.receive(ext_cut(REQUEST | TEXT))
    client.feed(session.data_to_send())
    assert provided_text(*client.clipboard[1]) == UTF8_TEXT
    # A peek is answered with what there is.
    session.receive(ext_cut(PEEK))
    assert Updates().feed(session.data_to_send()).clipboard == [(NOTIFY | TEXT, b"")]


def test_extended_clipboard_pushes_small_text_to_a_client_that_takes_it():
    # No caps from the client: rfbproto's defaults take 20 MiB of text unasked.
    for caps in (None, (CAPS | TEXT | PROVIDE, struct.pack(">I", 1000))):
        session, client = ext_clipboard_session(caps)
        session.receive(provide(UTF8_TEXT))
        client.feed(session.data_to_send())
        assert len(client.clipboard) == 1 and provided_text(*client.clipboard[0]) == UTF8_TEXT
    # Latin-1 ClientCutText from the same client is echoed in the extended form too.
    session.receive(struct.pack(">B3xI", 6, 5) + "caf\u00e9!".encode("latin-1"))
    assert provided_text(*Updates().feed(session.data_to_send()).clipboard[0]) == "caf\u00e9!"


def test_extended_clipboard_notify_from_the_client_is_requested():
    session, client = ext_clipboard_session()
    session.receive(ext_cut(NOTIFY | TEXT))
    assert client.feed(session.data_to_send()).clipboard == [(REQUEST | TEXT, b"")]
    session.receive(ext_cut(NOTIFY | 0b110))   # only rtf and html: nothing the demo takes
    assert session.data_to_send() == b""


def test_without_extended_clipboard_text_beyond_latin1_becomes_question_marks():
    session = DemoSession(clock="00:00:00")
    handshake(session)
    session.receive(encodings(16, EXT_CLIPBOARD))
    session.receive(encodings(16))   # taken back: Latin-1 again
    session.data_to_send()
    session.receive(struct.pack(">B3xI", 6, 3) + b"ab\xe9")
    assert Updates().feed(session.data_to_send()).cut_text == ["ab\u00e9"]
    with pytest.raises(RfbError, match="did not ask for Extended Clipboard"):
        session.receive(provide("x"))


@pytest.mark.parametrize("message,error", [
    (ext_cut(CAPS | TEXT | 0b10), "caps name 2 formats but carry 0 bytes"),
    (ext_cut(PROVIDE | TEXT, b"not zlib"), "not a zlib stream"),
    (ext_cut(PROVIDE | TEXT, zlib.compress(struct.pack(">I", 10) + b"short")), "cut short"),
    (ext_cut(PROVIDE | TEXT, zlib.compress(b"\0\0")), "cut short"),
    # A zlib bomb: 4 KiB on the wire, 4 MiB inflated; inflating stops at the limit.
    (ext_cut(PROVIDE | TEXT, zlib.compress(struct.pack(">I", 4 << 20) + bytes(4 << 20), 9)), "limit"),
    (struct.pack(">B3xi", 6, -2), "no flags"),
    (struct.pack(">B3xi", 6, -2 * wsproxy.DEMO_MAX_CUT_TEXT), "limit"),
    (struct.pack(">B3xi", 6, -2 ** 31), "limit"),
], ids=["caps without sizes", "not zlib", "short text", "no size", "zlib bomb", "no flags", "too long",
        "most negative length"])
def test_extended_clipboard_refusals(message, error):
    session, _ = ext_clipboard_session()
    with pytest.raises(RfbError, match=error):
        session.receive(message)


def test_extended_clipboard_at_the_text_limit_is_taken():
    session, client = ext_clipboard_session()
    text = "\u00e9" * ((wsproxy.DEMO_MAX_CUT_TEXT - 1) // 2)   # two UTF-8 bytes each, + the NUL
    session.receive(provide(text, compress=False))
    assert session.desktop.clipboard == text
    # Text, then 32 MiB of "rtf" in 32 KiB of zlib: inflating stops after the text.
    data = "ok".encode() + b"\0"
    plain = struct.pack(">I", len(data)) + data + struct.pack(">I", 32 << 20) + bytes(32 << 20)
    session.receive(ext_cut(PROVIDE | TEXT | 0b10, zlib.compress(plain, 9)))
    assert session.desktop.clipboard == "ok"


def test_set_desktop_size_with_extended_desktop_size():
    session = DemoSession(clock="00:00:00")
    handshake(session)
    session.receive(encodings(16, -308, -223))
    session.receive(request())
    client = Updates()
    client.feed(session.data_to_send())
    assert client.pseudo == [(-308, 0, 0, W, H)]   # support announced
    session.receive(request(1))
    session.receive(struct.pack(">BxHHBx", 251, 800, 500, 1) + bytes(16))
    client.feed(session.data_to_send())
    assert client.pseudo[-1] == (-308, 1, 0, 800, 500)
    assert (client.width, client.height) == (800, 500) == (session.desktop.width, session.desktop.height)
    assert client.pixels == rgb(session.desktop)
    session.receive(request(1, (0, 0, 800, 500)))
    session.receive(struct.pack(">BxHHBx", 251, 10, 10, 1) + bytes(16))   # too small: refused
    client.feed(session.data_to_send())
    assert client.pseudo[-1] == (-308, 1, 3, 800, 500)


def test_set_desktop_size_with_only_desktop_size():
    session = DemoSession(clock="00:00:00")
    handshake(session)
    session.receive(encodings(0, -223))
    session.receive(request())
    client = Updates().feed(session.data_to_send())
    session.receive(request(1))
    session.receive(struct.pack(">BxHHBx", 251, 480, 320, 1) + bytes(16))
    client.feed(session.data_to_send())
    assert client.pseudo == [(-223, 0, 0, 480, 320)]
    assert client.pixels == rgb(session.desktop)


# ---------------------------------------------------------------- pure: what input costs


# Generous: the demo needs about 0.05 s of CPU for each budgeted run below; the
# code before issue 10 needed 2 s (pointer) to 400 s (keys on a full text box).
CPU_BUDGET = 1.0
BIG = (1920, 1200)   # the largest desktop by DEMO_MAX_PIXELS


def sized_session(width, height, encoding=0):
    """A session at width x height with a client that has its pixels and a request pending."""
    session = DemoSession(clock="00:00:00")
    handshake(session)
    session.receive(encodings(encoding, -308) + request())
    client = Updates().feed(session.data_to_send())
    session.receive(request(1) + set_size(width, height))
    client.feed(session.data_to_send())
    assert (client.width, client.height) == (width, height)
    session.receive(request(1, (0, 0, width, height)))
    return session, client


def feed_within_budget(session, messages, piece):
    """Feeds messages ``piece`` bytes at a time; returns the CPU seconds, stopping once over budget."""
    start = time.process_time()
    for i in range(0, len(messages), piece):
        session.receive(messages[i:i + piece])
        if time.process_time() - start > CPU_BUDGET:
            break
    return time.process_time() - start


def test_a_key_updates_only_the_cells_it_changed():
    session = DemoSession(clock="00:00:00")
    handshake(session)
    session.receive(request())
    client = Updates().feed(session.data_to_send())
    session.receive(request(1) + key(ord("Q")))
    out = session.data_to_send()
    cw, ch = wsproxy.DEMO_CELL
    x, y = session.desktop.text_box[0] + 8, session.desktop.text_box[1] + 6
    assert struct.unpack_from(">BxHHHHH", out)[1:] == (1, x, y + ch, 2 * cw, ch)   # "Q" and the cursor
    client.feed(out)
    assert client.pixels == rgb(session.desktop)


def test_keys_at_the_largest_size_cost_one_redraw():
    """Issue 10: each KeyEvent redrew the whole text box (0.12 s of CPU once it held
    text), so one 32 KiB frame of keys kept a core busy for minutes.  Now keys are
    drawn once, with the update, and only the cells that changed."""
    session, client = sized_session(*BIG, encoding=16)
    session.desktop.typed = "".join("#@MW8B"[i * 7 % 6] for i in range(4000))   # a full text box
    session.receive(key(ord("!")))        # answers the pending request
    client.feed(session.data_to_send())
    # 4096 KeyEvents, then a request; fed 64 bytes at a time so that the old
    # code fails in seconds, not minutes.
    keys = b"".join(key(0xFF0D if i % 50 == 0 else ord("a") + i % 26) for i in range(4096))
    cpu = feed_within_budget(session, keys + request(1, (0, 0) + BIG), 64)
    assert cpu < CPU_BUDGET, "4096 KeyEvents took %.2f s of CPU" % cpu
    updates = len(client.updates)
    client.feed(session.data_to_send())
    assert len(client.updates) == updates + 1   # one for the 4096 keys
    assert client.pixels == rgb(session.desktop)


def test_held_pointer_events_cost_little_cpu():
    """Corner-to-corner strokes at the largest size each painted a 2,000 px line."""
    session, client = sized_session(*BIG)
    w, h = BIG
    moves = b"".join(struct.pack(">BBHH", 5, 1, (w - 1) * (i % 2), (h - 1) * (i % 2)) for i in range(4096))
    cpu = feed_within_budget(session, moves, 60)
    assert cpu < CPU_BUDGET, "4096 PointerEvents took %.2f s of CPU" % cpu
    client.feed(session.data_to_send())
    assert client.pixels == rgb(session.desktop)


def test_a_long_pointer_jump_starts_a_new_stroke():
    d = DemoDesktop()
    d.dirty = []
    paint = wsproxy.DEMO_COLOURS[1]
    d.pointer(100, 100, 1)
    d.pointer(100 + wsproxy.DEMO_MAX_STROKE, 100, 1)   # as far as a line goes: joined
    assert pixel(rgb(d), W, 100 + wsproxy.DEMO_MAX_STROKE // 2, 100) == paint
    d.pointer(400, 300, 1)                              # farther: a dab there, no line
    img = rgb(d)
    assert pixel(img, W, 400, 300) == paint and pixel(img, W, 282, 200) != paint
    assert all(bw <= wsproxy.DEMO_MAX_STROKE + 6 and bh <= wsproxy.DEMO_MAX_STROKE + 6 for _, _, bw, bh in d.dirty)


@pytest.mark.parametrize("size,screens,status", [
    ((2560, 1600), 1, 2),      # the size in issue 10: out of resources
    ((1921, 1200), 1, 2),
    ((65535, 65535), 1, 2),
    ((1920, 1200), 1, 0),      # DEMO_MAX_PIXELS exactly
    ((1200, 1920), 1, 0),      # the area is capped, so a portrait tablet fits
    ((400, 240), 1, 0),
    ((399, 600), 1, 3),        # too small for the layout: invalid screen layout
    ((800, 500), 0, 3),        # no screen
])
def test_set_desktop_size_limits(size, screens, status):
    session = DemoSession(clock="00:00:00")
    handshake(session)
    session.receive(encodings(0, -308) + request())
    client = Updates().feed(session.data_to_send())
    session.receive(request(1) + set_size(*size, screens=screens))
    client.feed(session.data_to_send())
    now = size if status == 0 else (W, H)   # refused: the size stays
    assert client.pseudo[-1] == (-308, 1, status) + now
    assert (session.desktop.width, session.desktop.height) == now == (client.width, client.height)
    assert client.pixels == rgb(session.desktop)
    assert (wsproxy.desktop_size_status(*size, screens) == 0) == (size[0] * size[1] <= wsproxy.DEMO_MAX_PIXELS
                                                                and screens > 0 and size[0] >= 400)


def test_set_desktop_size_requests_answered_together_resize_once():
    session = DemoSession(clock="00:00:00")
    handshake(session)
    session.receive(encodings(16, -308) + request())
    client = Updates().feed(session.data_to_send())
    resized = []
    resize = session.desktop.resize
    session.desktop.resize = lambda w, h: (resized.append((w, h)), resize(w, h))
    session.receive(request(1) + b"".join(set_size(800 + i % 2, 500) for i in range(50)))
    client.feed(session.data_to_send())
    assert resized == [(801, 500)]
    assert client.pseudo[-50:] == [(-308, 1, 0, 800 + i % 2, 500) for i in range(50)]   # each answered, in order
    assert client.pixels == rgb(session.desktop)


def test_size_changes_nobody_asks_to_see_close_the_connection():
    session = DemoSession(clock="00:00:00")
    handshake(session)
    session.receive(encodings(0, -308))   # no FramebufferUpdateRequest, ever
    with pytest.raises(RfbError, match="wait for a FramebufferUpdateRequest"):
        session.receive(set_size(800, 500) * wsproxy.DEMO_MAX_PSEUDO)


def test_set_desktop_size_without_a_size_encoding_changes_nothing():
    session = DemoSession(clock="00:00:00")
    handshake(session)
    session.receive(encodings(0) + request())
    client = Updates().feed(session.data_to_send())
    session.receive(request(1) + set_size(800, 500))
    session.tick("00:00:01")
    client.feed(session.data_to_send())
    assert (session.desktop.width, session.desktop.height) == (W, H) and client.pseudo == []
    assert client.pixels == rgb(session.desktop)


PIXEL_FORMATS = [
    (16, 16, 0, 1, 31, 63, 31, 11, 5, 0), (16, 16, 1, 1, 31, 63, 31, 0, 5, 11), (16, 15, 0, 1, 31, 31, 31, 10, 5, 0),
    (8, 8, 0, 1, 7, 7, 3, 0, 3, 6), (8, 6, 1, 1, 3, 3, 3, 4, 2, 0), (32, 24, 1, 1, 255, 255, 255, 16, 8, 0),
    (32, 24, 0, 1, 255, 255, 255, 16, 8, 0), (32, 30, 0, 1, 1023, 1023, 1023, 20, 10, 0),
    (16, 16, 0, 1, 255, 255, 255, 0, 4, 8),   # fields that overlap are OR-ed
]


@pytest.mark.parametrize("fmt", PIXEL_FORMATS, ids=lambda f: "%d-%s-%d.%d.%d" % (f[0], "be" if f[2] else "le", *f[7:]))
def test_pixel_formats_convert_every_pixel(fmt):
    import random

    rnd = random.Random(str(fmt))
    session = DemoSession()
    session.set_pixel_format(fmt)
    bpp, _, big, _, rmax, gmax, bmax, rshift, gshift, bshift = fmt
    px = session.desktop.pixels
    px[:4 * 3000] = bytes(rnd.getrandbits(8) for _ in range(4 * 3000))
    expected = b"".join(
        ((r * rmax + 127) // 255 << rshift | (g * gmax + 127) // 255 << gshift | (b * bmax + 127) // 255 << bshift)
        .to_bytes(bpp // 8, "big" if big else "little") for r, g, b in zip(px[0::4], px[1::4], px[2::4]))
    assert session._pixels(0, 0, W, H) == expected
    assert session._pixels(17, 3, 50, 2) == b"".join(
        expected[(row * W + 17) * bpp // 8:(row * W + 67) * bpp // 8] for row in (3, 4))


def test_a_converted_pixel_format_costs_about_what_the_native_one_does():
    """A full-screen update in a 16 bpp format cost 40 times the native one (a Python
    loop a pixel: 0.3 s of CPU for one 10-byte request at 1920x1200)."""
    session, _ = sized_session(*BIG)

    def full_screen():
        best = None
        for _ in range(3):
            start = time.process_time()
            session.receive(request(0, (0, 0) + BIG))
            session.data_to_send()
            best = min(best or 1e9, time.process_time() - start)
        return best

    native = full_screen()
    session.receive(struct.pack(">B3x", 0) + struct.pack(">BBBBHHHBBB3x", 16, 16, 0, 1, 31, 63, 31, 11, 5, 0))
    converted = full_screen()
    assert converted < 12 * native + 0.005, "native %.3f s, 16 bpp %.3f s" % (native, converted)


# ---------------------------------------------------------------- command line


@pytest.mark.parametrize("argv,host,port", [
    (["--demo"], "", 6080),
    (["--demo", "6090"], "", 6090),
    (["--demo", "127.0.0.1:6091"], "127.0.0.1", 6091),
    (["127.0.0.1:6092", "--demo"], "127.0.0.1", 6092),
    (["--listen", "6093", "--demo"], "", 6093),
])
def test_parse_args_demo(argv, host, port):
    config = wsproxy.parse_args(argv)
    assert config.demo and config.target is None and not config.token_source
    assert (config.listen_host, config.listen_port) == (host, port)


@pytest.mark.parametrize("argv", [
    ["--demo", "6080", "localhost:5901"],
    ["6080", "localhost:5901", "--demo"],
    ["--demo", "--vnc", "localhost:5901"],
    ["--demo", "--unix-target", "/tmp/x.sock"],
    ["--demo", "--token-source", os.path.join(realpeers.ROOT, "tokens.example.conf")],
    ["--demo", "--ssl-target"],
    ["--demo", "6090", "--listen", "6091"],
])
def test_demo_with_a_target_is_one_clear_error(argv, capsys):
    assert wsproxy.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("wsproxy.py: error: ") and "--" in err


def test_demo_target_listens_on_loopback_only():
    target = wsproxy.DemoTarget()
    try:
        assert target.sock.getsockname()[0] == "127.0.0.1"
    finally:
        target.stop()


# ---------------------------------------------------------------- vncdotool over RFB


@pytest.fixture
def demo_target():
    target = wsproxy.DemoTarget()
    target.start()
    yield target
    target.stop()


def test_extended_clipboard_over_a_socket(demo_target):
    """A plain Python RFB client against the threaded server: UTF-8 both ways."""
    import socket

    with socket.create_connection(("127.0.0.1", demo_target.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.read(12) == b"RFB 003.008\n"
        sock.sendall(b"RFB 003.008\n")
        assert reader.read(2) == b"\x01\x01"
        sock.sendall(b"\x01")
        assert reader.read(4) == bytes(4)
        sock.sendall(b"\x01")
        name_length = struct.unpack(">I", reader.read(24)[20:])[0]
        reader.read(name_length)
        sock.sendall(encodings(0, EXT_CLIPBOARD) + provide(UTF8_TEXT))

        def next_clipboard():
            kind, length = struct.unpack(">B3xi", reader.read(8))
            assert kind == 3 and length < 0
            body = reader.read(-length)
            return struct.unpack_from(">I", body)[0], body[4:]
        assert next_clipboard()[0] == CAPS | TEXT | REQUEST | PEEK | NOTIFY | PROVIDE
        assert provided_text(*next_clipboard()) == UTF8_TEXT


def expected_image(clock=""):
    return rgb(DemoDesktop(clock=clock))


def load_rgb(data_or_path):
    from PIL import Image

    image = Image.open(data_or_path if not isinstance(data_or_path, bytes) else io.BytesIO(data_or_path))
    return image.size, image.convert("RGB").tobytes()


def test_vncdotool_command_captures_the_pattern(demo_target, tmp_path):
    exe = realpeers.require_tool("vncdotool")
    out = tmp_path / "out.png"
    subprocess.run([exe, "-s", "127.0.0.1::%d" % demo_target.port, "capture", str(out)],
                   check=True, timeout=30, capture_output=True)
    size, image = load_rgb(str(out))
    assert size == (W, H)
    desktop = DemoDesktop()
    assert differing(image, expected_image(), W, skip=[desktop.clock_box]) == []
    assert differing(image, expected_image(), W)   # the clock itself was drawn


@pytest.fixture(scope="module")
def vncdo():
    """vncdotool's Python API with ZRLE and a clipboard callback (one reactor a process)."""
    try:
        from vncdotool import api, client, rfb
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("vncdotool is not installed (pip install -r tests/requirements.txt)")
        pytest.skip("vncdotool is not installed (pip install -r tests/requirements.txt)")
    clipboard = []

    class ZrleClient(client.VNCDoToolClient):
        encoding = rfb.Encoding.ZRLE

        def copy_text(self, text):
            clipboard.append(text)

    class Factory(client.VNCDoToolFactory):
        protocol = ZrleClient

    target = wsproxy.DemoTarget()
    target.start()
    conn = api.connect("127.0.0.1::%d" % target.port, factory_class=Factory, timeout=30)
    try:
        yield conn, clipboard
    finally:
        conn.disconnect()
        api.shutdown()
        target.stop()


def capture(conn):
    buf = io.BytesIO()
    conn.captureScreen(buf, format="PNG")
    return load_rgb(buf.getvalue())[1]


def test_vncdotool_zrle_pointer_keys_and_clipboard(vncdo):
    conn, clipboard = vncdo
    desktop = DemoDesktop()
    first = capture(conn)
    assert differing(first, expected_image(), W, skip=[desktop.clock_box]) == []

    # A held button paints at the pointer, and only there.
    x, y = 3 * W // 8 + 20, desktop.bars_box[1] + 40
    conn.mouseMove(x, y)
    conn.mouseDown(1)
    conn.mouseMove(x + 30, y)
    conn.mouseUp(1)
    painted = capture(conn)
    assert pixel(painted, W, x + 15, y) == wsproxy.DEMO_COLOURS[1]
    assert pixel(first, W, x + 15, y) != wsproxy.DEMO_COLOURS[1]
    changed = differing(first, painted, W, skip=[desktop.clock_box])
    assert changed and all(x - 4 <= cx <= x + 34 and y - 4 <= cy <= y + 4 for cx, cy in changed)

    # Typed keys appear in the text area, and nowhere else.
    for key in "hi":
        conn.keyPress(key)
    typed = capture(conn)
    changed = differing(painted, typed, W, skip=[desktop.clock_box])
    tx, ty, tw, th = desktop.text_box
    assert changed and all(tx <= cx < tx + tw and ty <= cy < ty + th for cx, cy in changed)
    typed_desktop = DemoDesktop()
    typed_desktop.key(ord("h"), True)
    typed_desktop.key(ord("i"), True)
    region = [(cx, cy) for cx, cy in differing(typed, rgb(typed_desktop), W) if ty <= cy < ty + th]
    assert region == []   # exactly what the pure drawing code draws for "hi"

    # Clipboard text is echoed back and shown.
    conn.paste("from vncdotool")
    deadline = time.monotonic() + 10
    while not clipboard and time.monotonic() < deadline:
        time.sleep(0.05)
    assert clipboard == ["from vncdotool"]
    assert differing(typed, capture(conn), W, skip=[desktop.clock_box])


def test_many_clients_at_once(demo_target):
    """Each connection has its own desktop and thread; a raw-socket 3.3 client and two 3.8 ones."""
    import socket

    def run(version, results):
        with socket.create_connection(("127.0.0.1", demo_target.port), timeout=10) as sock:
            data = b""
            while len(data) < 12:
                data += sock.recv(12 - len(data))
            sock.sendall(version + (b"" if version == b"RFB 003.003\n" else b"\x01") + b"\x01"
                         + encodings(16) + request())
            client, buf = Updates(), b""
            want = 4 if version == b"RFB 003.003\n" else 6 if version == b"RFB 003.008\n" else 2
            while True:
                more = sock.recv(65536)
                if not more:
                    return
                buf += more
                if len(buf) >= want + 24 + 12:
                    init_end = want + 24 + 12
                    body = buf[init_end:]
                    if len(body) >= 20:
                        length = struct.unpack_from(">I", body, 16)[0]
                        if len(body) >= 20 + length:
                            client.feed(body[:20 + length])
                            results.append(client.pixels)
                            return

    results = []
    threads = [threading.Thread(target=run, args=(v, results), daemon=True)
               for v in (b"RFB 003.003\n", b"RFB 003.008\n", b"RFB 003.007\n")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(results) == 3
    desktop = DemoDesktop()
    for image in results:
        assert differing(bytes(image), expected_image(), W, skip=[desktop.clock_box]) == []


# ---------------------------------------------------------------- the page in Chromium


CANVAS_JS = r"""
const cv = document.getElementById('canvas');
if (!cv.width || !cv.height) return null;
return cv.toDataURL('image/png');
"""


def read_canvas(driver):
    url = driver.execute_script(CANVAS_JS)
    if not url:
        return (0, 0), b""   # not connected yet
    return load_rgb(base64.b64decode(url.split(",", 1)[1]))


def wait(predicate, what, driver, timeout=15.0):
    return realpeers.poll(predicate, what, timeout, lambda: "state=%r status=%r" % (
        driver.execute_script("return document.body.dataset.state"),
        driver.execute_script("return document.getElementById('status').textContent")), interval=0.1)


def test_browser_opens_the_printed_url(tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    with realpeers.proxy("--demo") as proc, realpeers.chromium() as driver:
        banner = proc.banner()
        assert re.search(r"target: the built-in demo desktop at 127\.0\.0\.1:\d+ \(loopback only\)", banner)
        urls = re.findall(r"^Open (\S+)$", banner, re.M)
        assert urls == ["http://127.0.0.1:%d/vnc.html?autoconnect=1" % proc.port], banner
        driver.get(urls[0])
        wait(lambda: driver.execute_script("return document.body.dataset.state") == "connected",
             "state connected", driver)
        desktop = DemoDesktop()

        def matches():
            size, image = read_canvas(driver)
            return size == (W, H) and not differing(image, expected_image(), W, skip=[desktop.clock_box]) and image
        first = wait(matches, "the canvas to show the demo pattern", driver)
        # The clock ticks: incremental updates arrive with no input at all.
        wait(lambda: differing(first, read_canvas(driver)[1], W), "the clock to change", driver, timeout=5)
        assert not differing(first, read_canvas(driver)[1], W, skip=[desktop.clock_box])

        # Paint in the blue bar; type; send clipboard text and see it echoed.
        canvas = driver.find_element(By.ID, "canvas")
        box = driver.execute_script("const r = document.getElementById('canvas').getBoundingClientRect();"
                                    "return [r.width, r.height];")
        assert box == [W, H]   # 1:1, so canvas offsets are desktop pixels
        x, y = 6 * W // 8 + 20, desktop.bars_box[1] + 50
        (ActionChains(driver).move_to_element_with_offset(canvas, x - W // 2, y - H // 2).click_and_hold()
         .move_by_offset(40, 10).release().perform())
        ActionChains(driver).send_keys("Hello demo").perform()
        wait(lambda: pixel(read_canvas(driver)[1], W, x + 20, y + 5) == wsproxy.DEMO_COLOURS[1],
             "paint at the pointer", driver)
        typed_desktop = DemoDesktop()
        for ch in "Hello demo":
            typed_desktop.key(ord(ch), True)
        tx, ty, tw, th = desktop.text_box
        wait(lambda: not [p for p in differing(read_canvas(driver)[1], rgb(typed_desktop), W)
                          if ty <= p[1] < ty + th], "typed text in the text area", driver)

        driver.find_element(By.ID, "btn-clipboard").click()
        clip = driver.find_element(By.ID, "clipboard-text")
        clip.clear()
        clip.send_keys("pasted in Chromium")
        driver.find_element(By.ID, "btn-clip-send").click()
        typed_desktop.cut_text("pasted in Chromium")
        wait(lambda: not [p for p in differing(read_canvas(driver)[1], rgb(typed_desktop), W)
                          if ty <= p[1] < ty + th], "clipboard text on the desktop", driver)
        assert clip.get_property("value") == "pasted in Chromium"   # the echo (ServerCutText)

        driver.find_element(By.ID, "btn-clipboard").click()   # close the panel for the picture
        time.sleep(0.3)
        shot = driver.get_screenshot_as_png()
        (tmp_path / "demo.png").write_bytes(shot)
        if os.environ.get("WSPROXY_DEMO_SCREENSHOT"):
            with open(os.environ["WSPROXY_DEMO_SCREENSHOT"], "wb") as handle:
                handle.write(shot)
        assert first


# Records the clipboard text the page's RFB session receives (the echo).
CLIPBOARD_HOOK_JS = r"""
const r = window.wsproxyClient.rfb, onEvent = r._onEvent;
window.__clips = [];
r._onEvent = (e) => { if (e.type === 'clipboard') window.__clips.push(e.text); onEvent(e); };
"""


def test_browser_clipboard_echo_keeps_utf8():
    """Text beyond Latin-1 sent from the page's clipboard panel comes back as it
    went (it once came back with "?" for each such character)."""
    from selenium.webdriver.common.by import By

    text = "\u2713 na\u00efve \u65e5\u672c"
    with realpeers.proxy("--demo") as proc, realpeers.chromium() as driver:
        driver.get("http://127.0.0.1:%d/vnc.html?autoconnect=1" % proc.port)
        wait(lambda: driver.execute_script("return document.body.dataset.state") == "connected",
             "state connected", driver)
        driver.execute_script(CLIPBOARD_HOOK_JS)
        driver.find_element(By.ID, "btn-clipboard").click()
        driver.execute_script("document.getElementById('clipboard-text').value = arguments[0]", text)
        driver.find_element(By.ID, "btn-clip-send").click()
        echoed = wait(lambda: driver.execute_script("return window.__clips"), "the clipboard echo", driver)
        assert echoed == [text]
        assert driver.find_element(By.ID, "clipboard-text").get_property("value") == text


def test_browser_with_raw_encoding():
    with realpeers.proxy("--demo") as proc, realpeers.chromium() as driver:
        driver.get("http://127.0.0.1:%d/vnc.html?autoconnect=1&encoding=raw" % proc.port)
        desktop = DemoDesktop()
        wait(lambda: read_canvas(driver)[0] == (W, H) and not differing(
            read_canvas(driver)[1], expected_image(), W, skip=[desktop.clock_box]),
            "the demo pattern over Raw", driver)


def test_browser_keyboard_button_types_through_the_hidden_textarea():
    """The phone path: Keyboard focuses the hidden textarea; keys with a known `key`
    go through input.js's keydown handler, text with no keydown (as soft keyboards
    and IMEs send it: CDP Input.insertText) through softkeyboard.js; nothing twice."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with realpeers.proxy("--demo") as proc, realpeers.chromium() as driver:
        driver.get("http://127.0.0.1:%d/vnc.html?autoconnect=1" % proc.port)
        wait(lambda: driver.execute_script("return document.body.dataset.state") == "connected",
             "state connected", driver)
        desktop = DemoDesktop()
        tx, ty, tw, th = desktop.text_box

        def shows(text):
            expected = DemoDesktop()
            for ch in text:
                expected.key(ord(ch), True)
            return lambda: read_canvas(driver)[0] == (W, H) and not [
                p for p in differing(read_canvas(driver)[1], rgb(expected), W) if ty <= p[1] < ty + th]

        button = driver.find_element(By.ID, "btn-keyboard")
        assert button.tag_name == "button" and button.is_displayed()
        wait(button.is_enabled, "the Keyboard button to be enabled", driver)
        button.click()
        active = driver.switch_to.active_element
        assert active.get_attribute("id") == "softkeys"
        for name, value in [("autocapitalize", "off"), ("autocomplete", "off"), ("autocorrect", "off"),
                            ("spellcheck", "false"), ("inputmode", "text")]:
            assert active.get_dom_attribute(name) == value, name
        active.send_keys("hi 2")
        wait(shows("hi 2"), "'hi 2' in the demo's text area", driver)
        active.send_keys(Keys.BACKSPACE)
        wait(shows("hi "), "Backspace in the demo's text area", driver)
        driver.execute_cdp_cmd("Input.insertText", {"text": "ok"})
        wait(shows("hi ok"), "inserted text (no keydown) in the demo's text area", driver)
        assert driver.execute_script("return document.getElementById('softkeys').value") == ""


def test_browser_view_only_has_no_keyboard_button():
    from selenium.webdriver.common.by import By

    with realpeers.proxy("--demo") as proc, realpeers.chromium() as driver:
        driver.get("http://127.0.0.1:%d/vnc.html?autoconnect=1&view_only=1" % proc.port)
        wait(lambda: driver.execute_script("return document.body.dataset.state") == "connected",
             "state connected", driver)
        button = driver.find_element(By.ID, "btn-keyboard")
        assert not button.is_displayed() and not button.is_enabled()
