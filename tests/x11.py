"""Just enough X11, in the standard library, for the end-to-end tests.

* `XConnection`: a tiny X protocol client over the display's Unix socket that
  draws known pixels (PutImage), copies screen areas (CopyArea, which VNC
  servers send as CopyRect) and alternates pixmaps quickly (the fps bench).
* `read_xwd` / `capture`: the server's framebuffer as `xwd -root` dumps it,
  turned into packed RGB bytes.
* `test_picture`: a deterministic, varied picture (solid blocks, gradients,
  noise, few-colour patterns, odd-sized edges) so every encoder's
  subencodings get exercised.
* `compare`: pixel-by-pixel comparison of two RGB images.

Pictures are `Image(width, height, rgb)` with rgb = width*height*3 bytes, rows
top to bottom.  No third-party imports: the tests must run from Debian packages.
"""

import collections
import os
import random
import socket
import struct
import subprocess
import time

Image = collections.namedtuple("Image", "width height rgb")

# ---------------------------------------------------------------- XWD files


class XwdError(ValueError):
    pass


XWD_FIELDS = ("header_size file_version pixmap_format pixmap_depth width height xoffset byte_order "
              "bitmap_unit bitmap_bit_order bitmap_pad bits_per_pixel bytes_per_line visual_class "
              "red_mask green_mask blue_mask bits_per_rgb colormap_entries ncolors window_width "
              "window_height window_x window_y window_bdrwidth").split()
XWD_ZPIXMAP = 2
XWD_COLOR_SIZE = 12  # pixel CARD32, red/green/blue CARD16, flags, pad


def _shift_of(mask: int) -> int:
    return (mask & -mask).bit_length() - 1


def read_xwd(data: bytes) -> Image:
    """Decode an XWD (version 7) ZPixmap dump of a 24/32 bpp TrueColor window."""
    if len(data) < 100:
        raise XwdError("XWD file shorter than its header")
    # The header is always big-endian (xwd swaps it on little-endian hosts).
    header = dict(zip(XWD_FIELDS, struct.unpack(">25I", data[:100])))
    if header["file_version"] != 7 or header["pixmap_format"] != XWD_ZPIXMAP:
        raise XwdError("not a version 7 ZPixmap XWD file: %r" % header)
    bpp = header["bits_per_pixel"]
    if bpp not in (24, 32):
        raise XwdError("only 24/32 bits per pixel are handled, not %d" % bpp)
    width, height, stride = header["width"], header["height"], header["bytes_per_line"]
    start = header["header_size"] + header["ncolors"] * XWD_COLOR_SIZE
    pixels = data[start:start + stride * height]
    if len(pixels) < stride * height:
        raise XwdError("XWD image data truncated")
    step = bpp // 8
    order = "little" if header["byte_order"] == 0 else "big"
    masks = header["red_mask"], header["green_mask"], header["blue_mask"]
    shifts = [_shift_of(m) for m in masks]
    if any(m >> s != 0xff for m, s in zip(masks, shifts)):
        raise XwdError("only 8 bits per channel are handled: masks %r" % (masks,))
    # The common case (LSBFirst 32 bpp, red 0xff0000 green 0xff00 blue 0xff) is
    # bytes B, G, R, X: take the channels with slices instead of a per-pixel loop.
    rgb = bytearray(width * height * 3)
    if bpp == 32 and order == "little" and shifts == [16, 8, 0]:
        for y in range(height):
            row = pixels[y * stride:y * stride + width * 4]
            out = memoryview(rgb)[y * width * 3:(y + 1) * width * 3]
            out[0::3], out[1::3], out[2::3] = row[2::4], row[1::4], row[0::4]
        return Image(width, height, bytes(rgb))
    i = 0
    for y in range(height):
        row = y * stride
        for x in range(width):
            value = int.from_bytes(pixels[row + x * step:row + x * step + step], order)
            rgb[i] = (value >> shifts[0]) & 0xff
            rgb[i + 1] = (value >> shifts[1]) & 0xff
            rgb[i + 2] = (value >> shifts[2]) & 0xff
            i += 3
    return Image(width, height, bytes(rgb))


def capture(display: str, xwd: str = "xwd") -> Image:
    """The whole screen of DISPLAY as the X server holds it (`xwd -root`)."""
    out = subprocess.run([xwd, "-root", "-silent", "-display", display],
                         capture_output=True, check=True, timeout=30).stdout
    return read_xwd(out)


# ---------------------------------------------------------------- pictures


def rgba_to_rgb(rgba: bytes) -> bytes:
    out = bytearray(len(rgba) // 4 * 3)
    out[0::3], out[1::3], out[2::3] = rgba[0::4], rgba[1::4], rgba[2::4]
    return bytes(out)


def test_picture(width: int, height: int, seed: int, lossless_friendly: bool = False) -> Image:
    """A deterministic picture with something for every subencoding.

    Regions: solid blocks (RRE/Hextile solid tiles, Tight fill), two-colour and
    few-colour patterns (Hextile subrects, ZRLE/Tight palettes), a diagonal
    gradient and noise (raw tiles, ZRLE raw / Tight full colour — JPEG for
    Tight unless LOSSLESS_FRIENDLY, which replaces them by ≤ 8-colour art that a
    Tight server codes with palettes, never JPEG), channel-edge values (0, 1,
    254, 255, distinct per channel) to catch swapped or off-by-one channels.
    """
    rnd = random.Random(seed)
    rgb = bytearray(width * height * 3)

    def put(x, y, colour):
        i = (y * width + x) * 3
        rgb[i:i + 3] = bytes(colour)

    def fill(x0, y0, w, h, colour):
        row = bytes(colour) * max(0, min(w, width - x0))
        for y in range(max(0, y0), min(height, y0 + h)):
            i = (y * width + x0) * 3
            rgb[i:i + len(row)] = row

    background = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
    fill(0, 0, width, height, background)
    # Solid blocks of assorted sizes, some overlapping tile borders.
    for _ in range(12):
        w, h = rnd.randrange(3, width // 3), rnd.randrange(3, height // 3)
        fill(rnd.randrange(width - w), rnd.randrange(height - h), w, h,
             (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    band = height // 4
    # A band of few-colour patterns: checkerboard, stripes, 1-pixel lines, "glyphs".
    palette = [(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(6)]
    y0 = band
    for y in range(y0, min(height, y0 + band)):
        for x in range(width):
            section = x * 4 // width
            if section == 0:
                c = palette[((x // 3) + (y // 3)) & 1]
            elif section == 1:
                c = palette[2 + (y % 3 == 0)]
            elif section == 2:
                c = palette[(x * 7 + y * 13) % 5]
            else:
                c = palette[5] if rnd.random() < 0.3 else background
            put(x, y, c)
    # Channel edges: each channel independently 0/1/254/255.
    edges = (0, 1, 254, 255)
    for y in range(y0 + band, min(height, y0 + band + 8)):
        for x in range(width):
            put(x, y, (edges[x % 4], edges[(x // 4) % 4], edges[(x // 16) % 4]))
    # Bottom band: gradient and noise (photo-like), or more palette art.
    y0 = height - band
    for y in range(y0, height):
        for x in range(width):
            if lossless_friendly:
                put(x, y, palette[((x // 8) ^ (y // 5)) % 4] if x < width // 2 else palette[4 + ((x + y) // 6) % 2])
            elif x < width // 2:
                put(x, y, ((x * 255) // max(1, width // 2), ((y - y0) * 255) // max(1, band), (x + y) & 255))
            else:
                put(x, y, (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    # The last column and row are often a partial tile: mark them.
    for y in range(height):
        put(width - 1, y, palette[y % 3])
    for x in range(width):
        put(x, height - 1, palette[3 + x % 3])
    return Image(width, height, bytes(rgb))


def compare(expected: Image, actual: Image, tolerance: int = 0):
    """(mismatching pixel count, mean absolute channel error, first mismatch (x, y, exp, act) or None)."""
    if (expected.width, expected.height) != (actual.width, actual.height):
        return expected.width * expected.height, 255.0, ("size", (expected.width, expected.height),
                                                          (actual.width, actual.height))
    a, b = expected.rgb, actual.rgb
    if a == b:
        return 0, 0.0, None
    bad, total, first = 0, 0, None
    for i in range(0, len(a), 3):
        d = max(abs(a[i] - b[i]), abs(a[i + 1] - b[i + 1]), abs(a[i + 2] - b[i + 2]))
        total += abs(a[i] - b[i]) + abs(a[i + 1] - b[i + 1]) + abs(a[i + 2] - b[i + 2])
        if d > tolerance:
            bad += 1
            if first is None:
                p = i // 3
                first = (p % expected.width, p // expected.width, tuple(a[i:i + 3]), tuple(b[i:i + 3]))
    return bad, total / len(a), first


# ---------------------------------------------------------------- X protocol client


class XError(RuntimeError):
    pass


OP_CREATE_PIXMAP, OP_CREATE_GC, OP_CHANGE_GC, OP_COPY_AREA = 53, 55, 56, 62
OP_POLY_FILL_RECTANGLE, OP_PUT_IMAGE, OP_GET_INPUT_FOCUS = 70, 72, 43
GC_FOREGROUND, GC_GRAPHICS_EXPOSURES = 0x4, 0x10000
ZPIXMAP = 2


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


class XConnection:
    """One connection to a local X server (no authentication: Xvnc/Xvfb started
    by the tests accept local clients).  Only TrueColor depth 24 / 32 bpp roots."""

    def __init__(self, display: str):
        number = int(display.lstrip(":").split(".")[0])
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect("/tmp/.X11-unix/X%d" % number)
        self.sock.sendall(struct.pack("<BxHHHHxx", 0x6C, 11, 0, 0, 0))
        head = self._recv(8)
        if head[0] != 1:
            reason = self._recv(struct.unpack("<H", head[6:8])[0] * 4)[:head[1]]
            raise XError("X server refused the connection: %r" % reason)
        body = self._recv(struct.unpack("<H", head[6:8])[0] * 4)
        (self.id_base, self.id_mask, vendor_len, self.max_request, screens, formats,
         self.image_byte_order) = struct.unpack("<4xII4xHHBBB", body[:23])
        offset = 32 + vendor_len + _pad4(vendor_len) + 8 * formats
        (self.root, self.width, self.height, self.root_depth) = (
            struct.unpack("<I", body[offset:offset + 4])[0],
            *struct.unpack("<HH", body[offset + 20:offset + 24]),
            body[offset + 38])
        if self.root_depth != 24 or self.image_byte_order != 0:
            raise XError("only a depth-24 LSBFirst root is handled")
        self._next_id = 0
        self.gc = self.new_id()
        self._request(OP_CREATE_GC, 0, struct.pack("<III", self.gc, self.root, GC_GRAPHICS_EXPOSURES) +
                      struct.pack("<I", 0))

    def _recv(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise XError("X server closed the connection")
            out += chunk
        return out

    def new_id(self) -> int:
        self._next_id += 1
        return self.id_base | (self._next_id & self.id_mask)

    def _request(self, opcode: int, data_byte: int, body: bytes) -> None:
        body += b"\0" * _pad4(len(body))
        self.sock.sendall(struct.pack("<BBH", opcode, data_byte, 1 + len(body) // 4) + body)

    def sync(self) -> None:
        """Round trip: every earlier request has been executed (or raised an error)."""
        self._request(OP_GET_INPUT_FOCUS, 0, b"")
        while True:
            packet = self._recv(32)
            if packet[0] == 0:
                raise XError("X error code %d for request opcode %d" % (packet[1], packet[10]))
            if packet[0] == 1:
                self._recv(struct.unpack("<I", packet[4:8])[0] * 4)
                return
            # an event: nothing here selects any, ignore

    def put_rgb(self, image: Image, x: int = 0, y: int = 0, drawable: int = 0) -> None:
        """Draw IMAGE at (x, y) on DRAWABLE (default the root window)."""
        drawable = drawable or self.root
        stride = image.width * 4
        # Stay under the server's maximum request length (in 4-byte units).
        rows = max(1, (self.max_request * 4 - 24) // stride)
        for top in range(0, image.height, rows):
            n = min(rows, image.height - top)
            src = image.rgb[top * image.width * 3:(top + n) * image.width * 3]
            data = bytearray(n * stride)
            data[0::4], data[1::4], data[2::4] = src[2::3], src[1::3], src[0::3]  # B, G, R, X
            self._request(OP_PUT_IMAGE, ZPIXMAP,
                          struct.pack("<IIHHhhBBxx", drawable, self.gc, image.width, n, x, y + top, 0, 24) +
                          bytes(data))
        self.sync()

    def copy_area(self, src_x, src_y, w, h, dst_x, dst_y, src=0, dst=0) -> None:
        self._request(OP_COPY_AREA, 0, struct.pack("<IIIhhhhHH", src or self.root, dst or self.root, self.gc,
                                                   src_x, src_y, dst_x, dst_y, w, h))

    def fill(self, x, y, w, h, rgb, drawable=0) -> None:
        pixel = (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]
        self._request(OP_CHANGE_GC, 0, struct.pack("<III", self.gc, GC_FOREGROUND, pixel))
        self._request(OP_POLY_FILL_RECTANGLE, 0, struct.pack("<IIhhHH", drawable or self.root, self.gc, x, y, w, h))

    def pixmap(self, image: Image) -> int:
        """A server-side pixmap holding IMAGE (for fast repeated CopyArea)."""
        pid = self.new_id()
        self._request(OP_CREATE_PIXMAP, 24, struct.pack("<IIHH", pid, self.root, image.width, image.height))
        self.put_rgb(image, drawable=pid)
        return pid

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_paced(rate: float, stopping, step) -> None:
    """Call ``step()`` ``rate`` times a second until the event ``stopping`` is
    set; a late step starts the schedule again rather than bursting to catch up."""
    period = 1.0 / rate
    next_at = time.monotonic()
    while not stopping.is_set():
        step()
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()
