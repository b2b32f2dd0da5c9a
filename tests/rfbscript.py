"""A scripted RFB server for browser tests, and the bytes it sends.

`ScriptedServer(width, height, updates)` accepts one connection on 127.0.0.1,
speaks RFB 3.8 with security None, sends ServerInit, then answers each
FramebufferUpdateRequest with the next of UPDATES (whole FramebufferUpdate
messages, built with `update()` and the rectangle builders below) and records
every SetEncodings.  Rectangle builders for Tight fill/JPEG/PNG, the JPEG
encoding (21), Open H.264 (50) and the VMware cursor, plus a stdlib PNG writer
and reader (tests compare what the page shows with what was sent).

Used by tests/test_web_encodings.py; stdlib only.
"""

import socket
import struct
import threading
import zlib

from conftest import recv_exact

# The client's default format, which it sets itself: 32 bpp, little endian, RGBX.
PIXEL_FORMAT = bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0])

TIGHTPNG = -260
JPEG = 21
H264 = 50
VMWARE_CURSOR = 0x574D5664
TIGHT_FILL, TIGHT_JPEG, TIGHT_PNG = 0x80, 0x90, 0xA0
H264_RESET_CONTEXT, H264_RESET_ALL = 1, 2


def read_client_message(conn):
    """One client-to-server message: (type, SetEncodings list or None)."""
    kind = recv_exact(conn, 1)[0]
    if kind == 2:
        count = struct.unpack(">xH", recv_exact(conn, 3))[0]
        return kind, list(struct.unpack(">%di" % count, recv_exact(conn, 4 * count)))
    sizes = {0: 19, 3: 9, 4: 7, 5: 5, 150: 9, 255: 11}
    if kind == 6:
        recv_exact(conn, struct.unpack(">3xI", recv_exact(conn, 7))[0] & 0x7FFFFFFF)
    elif kind == 248:
        recv_exact(conn, recv_exact(conn, 8)[7])
    elif kind in sizes:
        recv_exact(conn, sizes[kind])
    else:
        raise ValueError("unexpected client message %d" % kind)
    return kind, None


def handshake(conn, width, height, name, pixel_format=PIXEL_FORMAT):
    """The server side of an RFB 3.8 handshake with security None, up to ServerInit."""
    conn.sendall(b"RFB 003.008\n")
    recv_exact(conn, 12)
    conn.sendall(b"\x01\x01")            # one security type: None
    recv_exact(conn, 1)
    conn.sendall(b"\0\0\0\0")            # SecurityResult OK
    recv_exact(conn, 1)                  # ClientInit
    conn.sendall(struct.pack(">HH16sI", width, height, pixel_format, len(name)) + name)


class ScriptedServer:
    """One RFB connection; each FramebufferUpdateRequest gets the next update."""

    def __init__(self, width, height, updates, name=b"scripted"):
        self.width, self.height, self.name = width, height, name
        self.updates = list(updates)
        self.encodings = []         # every SetEncodings list, in order
        self.error = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, name="scripted-rfb", daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(30)
            try:
                self._handshake(conn)
                while True:
                    kind, encodings = read_client_message(conn)
                    if encodings is not None:
                        self.encodings.append(encodings)
                    elif kind == 3 and self.updates:
                        conn.sendall(self.updates.pop(0))
            except (OSError, EOFError):
                pass
            except ValueError as err:   # reported by the test, never raised in this thread
                self.error = err

    def _handshake(self, conn):
        handshake(conn, self.width, self.height, self.name)

    def close(self):
        self.listener.close()
        self.thread.join(5)


# ---------------------------------------------------------------- messages and rectangles


def update(*rects):
    """A FramebufferUpdate of already-built rectangles (header + data each)."""
    return struct.pack(">BxH", 0, len(rects)) + b"".join(rects)


def rect(x, y, w, h, encoding, data=b""):
    return struct.pack(">HHHHi", x, y, w, h, encoding) + data


def compact_length(n):
    """Tight's 1-3 byte length, 7 bits a byte, low bits first."""
    out = bytearray([n & 0x7F])
    if n > 0x7F:
        out[0] |= 0x80
        out.append((n >> 7) & 0x7F)
        if n > 0x3FFF:
            out[1] |= 0x80
            out.append(n >> 14)
    return bytes(out)


def tight_fill(rgb):
    return bytes([TIGHT_FILL]) + bytes(rgb)


def tight_image(kind, data):
    """JpegCompression (0x90) or PngCompression (0xA0): compact length + file."""
    return bytes([kind]) + compact_length(len(data)) + data


def h264(data, flags=0):
    return struct.pack(">II", len(data), flags) + data


def vmware_alpha_cursor(hot_x, hot_y, width, height, rgba):
    return rect(hot_x, hot_y, width, height, VMWARE_CURSOR, b"\x01\x00" + bytes(rgba))


# ---------------------------------------------------------------- PNG (stdlib)


def _chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_rgba(width, height, rgba):
    """An 8-bit RGBA PNG (filter 0 on every row)."""
    rows = b"".join(b"\0" + bytes(rgba[y * width * 4:(y + 1) * width * 4]) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(kind, row, prev, bpp):
    out = bytearray(row)
    for i in range(len(out)):
        a = out[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        predictor = (0, a, b, (a + b) >> 1, _paeth(a, b, c))[kind]
        out[i] = (out[i] + predictor) & 0xFF
    return out


def png_decode(data):
    """(width, height, RGBA bytes) of a non-interlaced 8-bit RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    at, idat, header = 8, b"", None
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 4 if colour == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * bpp
    out, prev = bytearray(), bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        prev = _unfilter(raw[start], raw[start + 1:start + 1 + stride], prev, bpp)
        if bpp == 4:
            out += prev
        else:
            for x in range(width):
                out += prev[x * 3:x * 3 + 3] + b"\xff"
    return width, height, bytes(out)


# ---------------------------------------------------------------- JPEG and H.264 streams


def jpeg_segments(data):
    """A JPEG's segments as (marker type, bytes), the scan data kept with its SOS."""
    out, at = [], 0
    while at < len(data):
        assert data[at] == 0xFF, (at, data[at])
        kind = data[at + 1]
        if kind in (0xD8, 0xD9):
            out.append((kind, data[at:at + 2]))
            at += 2
            continue
        end = at + 2 + struct.unpack(">H", data[at + 2:at + 4])[0]
        if kind == 0xDA:
            while not (data[end] == 0xFF and data[end + 1] != 0 and not 0xD0 <= data[end + 1] <= 0xD7):
                end += 1
        out.append((kind, data[at:end]))
        at = end
    return out


def jpeg_without_tables(data):
    """The same JPEG without its DHT and DQT segments (rfbproto's abbreviated form)."""
    return b"".join(seg for kind, seg in jpeg_segments(data) if kind not in (0xC4, 0xDB))


def h264_access_units(stream):
    """An Annex B stream split into frames: a frame starts at an AUD/SPS/PPS/SEI or
    at a slice with first_mb_in_slice 0, after a slice."""
    starts, i = [], 0
    while True:
        i = stream.find(b"\0\0\1", i)
        if i < 0:
            break
        starts.append(i + 3)
        i += 3
    nals = []
    for k, s in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else len(stream)
        nals.append(stream[s:end].rstrip(b"\0"))
    frames, current, saw_slice = [], [], False
    for nal in nals:
        kind = nal[0] & 0x1F
        is_slice = kind in (1, 5)
        starts_frame = (nal[1] & 0x80) if is_slice else kind in (6, 7, 8, 9)
        if saw_slice and starts_frame:
            frames.append(b"".join(b"\0\0\0\1" + n for n in current))
            current, saw_slice = [], False
        current.append(nal)
        saw_slice = saw_slice or is_slice
    if current:
        frames.append(b"".join(b"\0\0\0\1" + n for n in current))
    return frames
