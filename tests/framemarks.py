"""Numbered frames on a real X server, and the page-side script that reads them back.

An X client (Animator, pure Python on tests/x11.py) redraws the whole screen RATE
times a second -- photo-like, desktop-like or scrolling content -- and writes the
frame number (16 bits and its complement, BLOCK x BLOCK black/white blocks) into a
stripe at the top AND at the bottom of every frame, plus, in the top stripe, the x
coordinate of the last pointer motion it got (12 bits and complement).  Each frame
is one batch of X requests sent with a single write, composed off screen, so the X
server never holds a frame without its markers.

SAMPLER_JS, run in the page, reads the largest <canvas> on every animation frame
(one pixel row through each stripe) into window.__pic: samples, torn (top and
bottom numbers differ: a half-drawn update on screen), unread (a stripe that does
not decode) and a log of what changed.

Used by tests/tools/bench_picture.py (the frame-rate benchmark) and by
tests/test_web_e2e.py (never a half-drawn update against real Xvnc).
"""

import math
import random
import struct
import threading

import x11

BLOCK = 16  # marker block size: big enough that JPEG (quality 6) keeps each block's centre black or white
FRAME_BITS, ECHO_BITS = 16, 12
ECHO_X = 2 * FRAME_BITS * BLOCK  # the echo field starts after the frame number and its complement
STRIPE_W = ECHO_X + 2 * ECHO_BITS * BLOCK
SAMPLE_ROW = BLOCK // 2  # the row read back, inside each stripe

OP_CHANGE_WINDOW_ATTRIBUTES, CW_EVENT_MASK, POINTER_MOTION_MASK = 2, 0x800, 0x40
MOTION_NOTIFY = 6

SAMPLER_JS = r"""
const [W, BLOCK, ROW, SW, FB, EB, EX] = arguments;
const scratch = Object.assign(document.createElement('canvas'), {width: SW, height: 2});
const sctx = scratch.getContext('2d', {willReadFrequently: true});
const s = window.__pic = {log: [], inputs: [], samples: 0, torn: 0, unread: 0};
const shown = () => [...document.querySelectorAll('canvas')]
    .sort((a, b) => b.width * b.height - a.width * a.height)[0];
const bits = (d, row, x0, n) => {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 2 + (d[(row * SW + x0 + i * BLOCK + BLOCK / 2) * 4 + 1] > 128 ? 1 : 0);
  return v;
};
const decode = (d, row, x0, n) => {
  const a = bits(d, row, x0, n), b = bits(d, row, x0 + n * BLOCK, n);
  return (a ^ b) === (1 << n) - 1 ? a : -1;
};
let last = '';
const tick = (now) => {
  const c = shown();
  if (c && c.width === W) {
    sctx.drawImage(c, 0, ROW, SW, 1, 0, 0, SW, 1);
    sctx.drawImage(c, 0, c.height - BLOCK + ROW, SW, 1, 0, 1, SW, 1);
    const d = sctx.getImageData(0, 0, SW, 2).data;
    const top = decode(d, 0, 0, FB), bottom = decode(d, 1, 0, FB), echo = decode(d, 0, EX, EB);
    s.samples++;
    if (top < 0 || bottom < 0) s.unread++;
    else if (top !== bottom) s.torn++;
    const key = top + ',' + bottom + ',' + echo;
    if (key !== last) { s.log.push([now, top, bottom, echo]); last = key; }
  }
  requestAnimationFrame(tick);
};
requestAnimationFrame(tick);
window.addEventListener('pointermove', (e) => {
  const c = shown(), r = c.getBoundingClientRect();
  s.inputs.push([performance.now(), Math.floor((e.clientX - r.left) * c.width / r.width)]);
}, true);
return true;
"""

# ---------------------------------------------------------------- pictures


def photo_picture(width, height, seed):
    """Smooth, many-coloured, mildly noisy (JPEG-friendly): one random-walk row,
    shifted and tone-mapped per row with C-speed slicing and bytes.translate."""
    rnd = random.Random(seed)
    colour, speed, base = [rnd.uniform(0, 255) for _ in range(3)], [0.0, 0.0, 0.0], bytearray()
    for _ in range(width + 256):
        for ch in range(3):
            speed[ch] = max(-2.5, min(2.5, speed[ch] + rnd.uniform(-0.5, 0.5)))
            colour[ch] += speed[ch]
            if not 0 <= colour[ch] <= 255:
                speed[ch], colour[ch] = -speed[ch], min(255.0, max(0.0, colour[ch]))
            base.append(min(255, int(colour[ch]) + rnd.randrange(6)))
    base = bytes(base)
    tables = {}
    rows = []
    phase = rnd.uniform(0, 6.3)
    for y in range(height):
        off = int(y * 0.35 + 40 * math.sin(y / 47.0 + phase)) % 510
        if off not in tables:
            tables[off] = bytes((b + off) % 510 if (b + off) % 510 < 256 else 509 - (b + off) % 510 for b in range(256))
        shift = int(128 + 120 * math.sin(y / 83.0 + phase))
        rows.append(base[shift * 3:(shift + width) * 3].translate(tables[off]))
    return x11.Image(width, height, b"".join(rows))


def desktop_rects(width, height, seed, top=0):
    """(colour, [rects]) lists: a background, windows with title bars, lines of glyph-like strokes."""
    rnd = random.Random(seed)
    out = [((58, 110, 165), [(0, top, width, height)])]
    ink = []
    for _ in range(4):
        w, h = rnd.randrange(width // 3, width * 2 // 3), rnd.randrange(height // 3, height * 2 // 3)
        x, y = rnd.randrange(0, width - w), rnd.randrange(0, height - h) + top
        out.append(((rnd.randrange(40, 90),) * 3, [(x, y, w, 22)]))
        out.append(((250, 250, 248), [(x, y + 22, w, h - 22)]))
        for ly in range(y + 30, y + h - 12, 15):
            gx = x + 8
            while gx < x + w - 14:
                if rnd.random() < 0.16:  # a space between words
                    gx += 7
                    continue
                ink.append((gx + rnd.randrange(2), ly + rnd.randrange(3), 1 + rnd.randrange(2), 6 + rnd.randrange(4)))
                ink.append((gx + rnd.randrange(4), ly + rnd.randrange(8), 3 + rnd.randrange(2), 1))
                gx += 7
    out.append(((20, 20, 20), ink))
    return out


class Painter(x11.XConnection):
    """XConnection that can batch requests (one write per frame), fill many rectangles
    per request, and listen to pointer motion on the root window."""

    _batch = None
    pointer_x = 0

    def _request(self, opcode, data_byte, body):
        if self._batch is None:
            super()._request(opcode, data_byte, body)
            return
        body += b"\0" * ((4 - len(body) % 4) % 4)
        self._batch.append(struct.pack("<BBH", opcode, data_byte, 1 + len(body) // 4) + body)

    def flush(self):
        batch, self._batch = self._batch, None
        self.sock.sendall(b"".join(batch))

    def select_motion(self):
        super()._request(OP_CHANGE_WINDOW_ATTRIBUTES, 0,
                         struct.pack("<III", self.root, CW_EVENT_MASK, POINTER_MOTION_MASK))
        self.sync()

    def sync(self):
        """As XConnection.sync, but a MotionNotify on the way updates pointer_x."""
        self._request(x11.OP_GET_INPUT_FOCUS, 0, b"")
        if self._batch is not None:
            self.flush()
        while True:
            packet = self._recv(32)
            if packet[0] == 0:
                raise x11.XError("X error code %d for request opcode %d" % (packet[1], packet[10]))
            if packet[0] == 1:
                self._recv(struct.unpack("<I", packet[4:8])[0] * 4)
                return
            if packet[0] & 0x7f == MOTION_NOTIFY:
                self.pointer_x = struct.unpack("<h", packet[20:22])[0]

    def fill_rects(self, rgb, rects, drawable=0):
        pixel = (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]
        self._request(x11.OP_CHANGE_GC, 0, struct.pack("<III", self.gc, x11.GC_FOREGROUND, pixel))
        per = max(1, (self.max_request - 3) // 2 - 8)
        for i in range(0, len(rects), per):
            self._request(x11.OP_POLY_FILL_RECTANGLE, 0,
                          struct.pack("<II", drawable or self.root, self.gc) +
                          b"".join(struct.pack("<hhHH", *r) for r in rects[i:i + per]))

    def new_pixmap(self, width, height):
        pid = self.new_id()
        self._request(x11.OP_CREATE_PIXMAP, 24, struct.pack("<IIHH", pid, self.root, width, height))
        return pid


def marker_rects(value, bits, x0, y0):
    """Black and white blocks for VALUE then its complement, most significant bit first."""
    white, black = [], []
    for i, bit in enumerate(format(value, "0%db" % bits) + format(value ^ ((1 << bits) - 1), "0%db" % bits)):
        (white if bit == "1" else black).append((x0 + i * BLOCK, y0, BLOCK, BLOCK))
    return white, black


class Animator(threading.Thread):
    """Redraws the whole screen RATE times a second; KIND is photo, desktop or scroll."""

    PICTURES = 4  # photo/desktop cycle through this many different full-screen pictures
    SCROLL_STEP = 6  # pixels per frame

    def __init__(self, display, width, height, kind, rate):
        super().__init__(daemon=True)
        self.width, self.height, self.kind, self.rate = width, height, kind, rate
        self.stopping = threading.Event()
        self.frame = 0
        self.x = Painter(display)
        self.x.select_motion()
        print("preparing %s pictures %dx%d..." % (kind, width, height), flush=True)
        if kind == "photo":
            self.pixmaps = [self.x.pixmap(photo_picture(width, height, seed)) for seed in range(self.PICTURES)]
        elif kind == "desktop":
            self.pixmaps = [self._drawn(width, height, desktop_rects(width, height, seed))
                            for seed in range(self.PICTURES)]
        if kind != "scroll":
            self.back = self.x.new_pixmap(width, height)
        else:
            region = height - 2 * BLOCK
            self.tall = self._drawn(width, 2 * region, desktop_rects(width, region, 7))
            self.x.copy_area(0, 0, width, region, 0, region, src=self.tall, dst=self.tall)
            self.x.copy_area(0, 0, width, region, 0, BLOCK, src=self.tall)
            self.offset = 0
        self.x.sync()

    def _drawn(self, width, height, layers):
        pid = self.x.new_pixmap(width, height)
        for colour, rects in layers:
            self.x.fill_rects(colour, rects, drawable=pid)
        self.x.sync()
        return pid

    def draw_frame(self):
        w, h, x = self.width, self.height, self.x
        x._batch = []
        if self.kind == "scroll":
            region, step = h - 2 * BLOCK, self.SCROLL_STEP
            x.copy_area(0, BLOCK + step, w, region - step, 0, BLOCK)
            x.copy_area(0, self.offset + region, w, step, 0, BLOCK + region - step, src=self.tall)
            self.offset = (self.offset + step) % region
        else:  # composed off screen, then one CopyArea: Xvnc never sees a frame without its markers
            x.copy_area(0, 0, w, h, 0, 0, src=self.pixmaps[self.frame % len(self.pixmaps)], dst=self.back)
        target = self.back if self.kind != "scroll" else 0
        white, black = [], []
        for fields in (marker_rects(self.frame, FRAME_BITS, 0, 0), marker_rects(self.frame, FRAME_BITS, 0, h - BLOCK),
                       marker_rects(x.pointer_x & 0xfff, ECHO_BITS, ECHO_X, 0)):
            white += fields[0]
            black += fields[1]
        x.fill_rects((255, 255, 255), white, drawable=target)
        x.fill_rects((0, 0, 0), black, drawable=target)
        if target:
            x.copy_area(0, 0, w, h, 0, 0, src=target)
        x.sync()  # flushes the batch: the whole frame in one write

    def run(self):
        x11.run_paced(self.rate, self.stopping, self.next_frame)

    def next_frame(self):
        self.frame = (self.frame + 1) % (1 << FRAME_BITS) or 1
        self.draw_frame()

    def stop(self):
        self.stopping.set()
        self.join()
        self.x.close()
