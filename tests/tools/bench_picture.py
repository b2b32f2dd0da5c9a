#!/usr/bin/env python3
"""What a user sees: this web client against noVNC 1.7 (a measurement, not a test).

One TigerVNC Xvnc per resolution; an X client (tests/framemarks.py) redraws the whole
screen RATE times a second, numbering each frame in a stripe at the top and at the
bottom, and echoing the x of the last pointer motion it got in the top stripe.

Both clients connect, in turn (never at once), through their own wsproxy
(--web this checkout's web/, or --web a temp dir holding npm's @novnc/novnc plus a
generated page that only does `new RFB(div, url)` with noVNC's defaults) to the
same Xvnc, in headless Debian Chromium.  framemarks.SAMPLER_JS, injected into the page,
reads the page's visible canvas (the largest <canvas>) on every animation frame.

Per client and scenario:
  shown fps   distinct frame numbers seen at the top stripe, per second
  torn        share of animation frames whose top and bottom numbers differ (half-drawn)
  unread      share of animation frames where a stripe did not decode (mixed/blurred blocks)
  latency     CDP mouse moves every 200 ms: time from the page's pointermove listener to
              the first animation frame showing the X client's echo of that x (median)
  cpu/frame   CPU ms of all Chromium processes per shown frame (/proc utime+stime)
Rounds interleave the clients; medians of the rounds and ours/noVNC ratios are printed.
After both clients, each round measures the ceiling: CeilingClient, a client that costs
next to nothing (no browser, no proxy, decodes one pixel row), on the same Xvnc and X client;
the frame numbers it receives per second bound what any client could show on this machine.

    PYTHON tests/tools/bench_picture.py [--seconds 8] [--rounds 3] [--rate 60]
        [--sizes 1280x720,1920x1080] [--kinds photo,desktop,scroll] [--novnc DIR] [--web DIR]
        [--clients ours,noVNC,ceiling]

--novnc DIR: a noVNC tree (with core/rfb.js); default /tmp/novnc-bench/node_modules/@novnc/novnc,
installed with `npm install --prefix /tmp/novnc-bench @novnc/novnc@1.7` (never commit it).
PYTHON needs selenium (e.g. the test venv); Chromium and chromedriver are Debian's, Xvnc TigerVNC's.
The full matrix (2 sizes x 3 kinds x 3 rounds, both clients and the ceiling, 8 s each) takes
about 11 minutes.
"""

import argparse
import contextlib
import os
import statistics
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/

import realpeers  # noqa: E402
from framemarks import (BLOCK, ECHO_BITS, ECHO_X, FRAME_BITS, SAMPLE_ROW, SAMPLER_JS,  # noqa: E402
                        STRIPE_W, Animator)

NOVNC_DEFAULT = "/tmp/novnc-bench/node_modules/@novnc/novnc"
INPUT_PERIOD = 0.2  # seconds between mouse moves; longer than any expected latency


# Our page for noVNC: written into the noVNC temp dir at run time, only its
# documented API (docs/API.md), defaults everywhere (no scaling, quality 6).
NOVNC_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>bench</title>
<style>html, body { margin: 0; height: 100%; background: #222 } #screen { width: 100%; height: 100% }</style>
</head><body><div id="screen"></div>
<script type="module">
import RFB from './core/rfb.js';
const rfb = new RFB(document.getElementById('screen'), `ws://${location.host}/websockify`);
rfb.addEventListener('connect', () => { document.body.dataset.state = 'connected'; });
rfb.addEventListener('disconnect', () => { document.body.dataset.state = 'disconnected'; });
</script></body></html>
"""

# ---------------------------------------------------------------- the ceiling


class CeilingClient(threading.Thread):
    """What any client could show at most: a Python RFB client straight to Xvnc (no
    browser, no proxy) asking as both pages do (Tight + CopyRect, JPEG quality 6,
    compression 2, ContinuousUpdates, Fence answered on arrival), that inflates
    what it must and decodes only the one pixel row the page sampler reads (the
    top stripe's row SAMPLE_ROW, x < STRIPE_W), to count the frame numbers it got."""

    ENCODINGS = (1, 7, -32 + 6, -256 + 2, -224, -312, -313)  # CopyRect, Tight, quality, compression, LastRect,
    # Fence, ContinuousUpdates
    FENCE_REQUEST = 1 << 31

    def __init__(self, port):
        super().__init__(daemon=True)
        import socket
        import zlib
        self._zlib = zlib
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.reader = self.sock.makefile("rb", buffering=1 << 20)
        self.streams = [zlib.decompressobj() for _ in range(4)]
        self.row = bytearray(STRIPE_W)  # green of the sampled row
        self.frames = []  # (monotonic time, frame number) each time the number changes
        self.updates = 0
        self.stopping = threading.Event()
        self.enabled = False

    def read(self, n):
        data = self.reader.read(n)
        if len(data) != n:
            raise EOFError("Xvnc closed the connection")
        return data

    def handshake(self):
        self.read(12)
        self.sock.sendall(b"RFB 003.008\n")
        types = self.read(self.read(1)[0])
        if 1 not in types:
            raise RuntimeError("Xvnc offers no security None: %r" % types)
        self.sock.sendall(b"\x01")
        if self.read(4) != b"\0\0\0\0":
            raise RuntimeError("security None refused")
        self.sock.sendall(b"\x01")  # shared
        width, height = struct.unpack(">HH", self.read(4))
        self.read(16)
        self.read(struct.unpack(">I", self.read(4))[0])
        self.width, self.height = width, height
        pixel_format = bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0])
        self.sock.sendall(b"\0\0\0\0" + pixel_format +
                          struct.pack(">BxH%di" % len(self.ENCODINGS), 2, len(self.ENCODINGS), *self.ENCODINGS) +
                          struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))

    def run(self):
        try:
            self.handshake()
            while not self.stopping.is_set():
                self.message()
        except (OSError, EOFError, ValueError):
            if not self.stopping.is_set():
                raise

    def message(self):
        kind = self.read(1)[0]
        if kind == 0:
            self.update()
        elif kind == 150:  # EndOfContinuousUpdates: the server has them
            if not self.enabled:
                self.enabled = True
                self.sock.sendall(struct.pack(">BBHHHH", 150, 1, 0, 0, self.width, self.height))
        elif kind == 248:
            flags, length = struct.unpack(">3xIB", self.read(8))
            payload = self.read(length)
            if flags & self.FENCE_REQUEST:
                self.sock.sendall(struct.pack(">B3xIB", 248, flags & 7, length) + payload)
        elif kind == 3:
            self.read(struct.unpack(">3xI", self.read(7))[0])
        elif kind != 2:
            raise ValueError("unexpected server message %d" % kind)

    def update(self):
        count = struct.unpack(">xH", self.read(3))[0]
        n = 0
        while n != count:
            x, y, w, h, encoding = struct.unpack(">HHHHi", self.read(12))
            n += 1
            if encoding == -224:  # LastRect
                break
            if encoding == 1:
                self.read(4)
            elif encoding == 7:
                self.tight(x, y, w, h)
            elif encoding not in (-223, -308):  # DesktopSize, ExtendedDesktopSize (no body from Xvnc here)
                raise ValueError("unexpected encoding %d" % encoding)
        self.updates += 1
        number = self.frame_number()
        if number >= 0 and (not self.frames or self.frames[-1][1] != number):
            self.frames.append((time.monotonic(), number))

    def compact(self):
        b = self.read(1)[0]
        n = b & 0x7F
        if b & 0x80:
            b = self.read(1)[0]
            n |= (b & 0x7F) << 7
            if b & 0x80:
                n |= self.read(1)[0] << 14
        return n

    def tight(self, x, y, w, h):
        control = self.read(1)[0]
        for i in range(4):
            if control & (1 << i):
                self.streams[i] = self._zlib.decompressobj()
        hit = y <= SAMPLE_ROW < y + h and x < STRIPE_W
        lo, hi, row = x, min(x + w, STRIPE_W), SAMPLE_ROW - y
        if control >> 4 == 8:  # fill
            green = self.read(3)[1]
            if hit:
                self.row[lo:hi] = bytes([green]) * (hi - lo)
            return
        if control >> 4 == 9:  # JPEG: decoded only where the sampler looks
            data = self.read(self.compact())
            if hit:
                import io
                from PIL import Image
                picture = Image.open(io.BytesIO(data)).convert("RGB")
                pixels = picture.crop((0, row, hi - lo, row + 1)).tobytes()
                self.row[lo:hi] = pixels[1::3]
            return
        self.tight_basic(control, w, h, hit, lo, hi, row)

    def tight_basic(self, control, w, h, hit, lo, hi, row):
        """Basic compression: copy or palette filter, zlib stream (control >> 4) & 3."""
        palette, size = None, w * h * 3
        if control & 0x40:
            kind = self.read(1)[0]
            if kind == 1:
                palette = self.read((self.read(1)[0] + 1) * 3)
                size = (w + 7) // 8 * h if len(palette) == 6 else w * h
            elif kind != 0:
                raise ValueError("Tight filter %d (Xvnc sends none)" % kind)
        data = self.read(size) if size < 12 else self.streams[(control >> 4) & 3].decompress(self.read(self.compact()))
        if not hit:
            return
        if palette is None:
            self.row[lo:hi] = data[row * w * 3 + 1:(row * w + hi - lo) * 3:3]
        elif len(palette) == 6:
            line = data[row * ((w + 7) // 8):]
            self.row[lo:hi] = bytes(palette[3 * ((line[i >> 3] >> (7 - (i & 7))) & 1) + 1] for i in range(hi - lo))
        else:
            self.row[lo:hi] = bytes(palette[3 * index + 1] for index in data[row * w:row * w + hi - lo])

    def frame_number(self):
        bits = [1 if self.row[i * BLOCK + BLOCK // 2] > 128 else 0 for i in range(2 * FRAME_BITS)]
        a = int("".join(map(str, bits[:FRAME_BITS])), 2)
        b = int("".join(map(str, bits[FRAME_BITS:])), 2)
        return a if a ^ b == (1 << FRAME_BITS) - 1 else -1

    def stop(self):
        self.stopping.set()
        self.sock.close()
        self.join(5)


def measure_ceiling(vnc_port, seconds, xvnc):
    client = CeilingClient(vnc_port)
    client.start()
    time.sleep(1.5)
    n0, u0, x0, t0 = len(client.frames), client.updates, process_cpu_seconds(xvnc), time.monotonic()
    time.sleep(seconds)
    n1, u1, x1, t1 = len(client.frames), client.updates, process_cpu_seconds(xvnc), time.monotonic()
    client.stop()
    shown = len({number for _, number in client.frames[n0:n1]})
    return {"fps": shown / (t1 - t0), "updates": (u1 - u0) / (t1 - t0),
            "xcpu": (x1 - x0) * 1000.0 / max(1, shown)}


# ---------------------------------------------------------------- measuring


def chromium_cpu_seconds(root_pid):
    """utime+stime of every process under ROOT_PID (chromedriver -> chromium and its children)."""
    parents, ticks = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(name)] = int(fields[1])
        ticks[int(name)] = int(fields[11]) + int(fields[12])
    total = 0
    for pid, tick in ticks.items():
        p = pid
        while p in parents and p != root_pid and p > 1:
            p = parents[p]
        if p == root_pid and pid != root_pid:
            total += tick
    return total / os.sysconf("SC_CLK_TCK")


def open_client(driver, url, width):
    driver.get("about:blank")
    driver.get(url)
    deadline = time.monotonic() + 20
    while driver.execute_script("return document.body && document.body.dataset.state") != "connected":
        if time.monotonic() > deadline:
            raise RuntimeError("never connected: " + url)
        time.sleep(0.05)
    driver.execute_script(SAMPLER_JS, width, BLOCK, SAMPLE_ROW, STRIPE_W, FRAME_BITS, ECHO_BITS, ECHO_X)


def move_mouse(driver, k, width):
    """A CDP mouse move to framebuffer x = a new position each time (>= 40 px apart)."""
    rect = driver.execute_script(
        "const c = [...document.querySelectorAll('canvas')].sort((a, b) => b.width * b.height - a.width * a.height)[0];"
        "const r = c.getBoundingClientRect();"
        "return [r.left, r.top, r.width, Math.min(r.bottom, innerHeight) - r.top, c.width];")
    fbx = 100 + (k * 41) % (width - 200)
    driver.execute_cdp_cmd("Input.dispatchMouseEvent", {
        "type": "mouseMoved", "x": rect[0] + (fbx + 0.5) * rect[2] / rect[4], "y": rect[1] + rect[3] / 2})


def latencies(log, inputs):
    out = []
    for t_in, fbx in inputs:
        for t, _top, _bottom, echo in log:
            if t >= t_in and echo >= 0 and abs(echo - fbx) <= 2:
                out.append(t - t_in)
                break
    return out


def measure(driver, url, width, seconds, animator, chrome_root, server):
    """SERVER: (Xvnc pid, the client's wsproxy metrics port)."""
    open_client(driver, url, width)
    time.sleep(1.5)  # first full update, JIT
    start = driver.execute_script("const s = window.__pic; return [performance.now(), s.samples, s.torn, s.unread]")
    cpu0, frame0 = chromium_cpu_seconds(chrome_root), animator.frame
    xcpu0, bytes0 = process_cpu_seconds(server[0]), bytes_sent(server[1])
    k, t_end = 0, time.monotonic() + seconds
    while time.monotonic() < t_end:
        move_mouse(driver, k, width)
        k += 1
        time.sleep(INPUT_PERIOD)
    cpu1, frame1 = chromium_cpu_seconds(chrome_root), animator.frame
    xcpu1, bytes1 = process_cpu_seconds(server[0]), bytes_sent(server[1])
    end = driver.execute_script("const s = window.__pic; return [performance.now(), s.samples, s.torn, s.unread,"
                                " s.log, s.inputs]")
    log = [e for e in end[4] if start[0] <= e[0] <= end[0]]
    inputs = [i for i in end[5] if start[0] <= i[0] <= end[0] - 500]  # the last moves may not have come back yet
    elapsed = (end[0] - start[0]) / 1000.0
    shown = len({e[1] for e in log if e[1] > 0 and e[1] == e[2]})
    samples = max(1, end[1] - start[1])
    lat = latencies(log, inputs)
    return {
        "fps": shown / elapsed,
        "torn": (end[2] - start[2]) / samples,
        "unread": (end[3] - start[3]) / samples,
        "lat": statistics.median(lat) if lat else float("nan"),
        "lat_n": "%d/%d" % (len(lat), len(inputs)),
        "cpu": (cpu1 - cpu0) * 1000.0 / max(1, shown),
        "raf": samples / elapsed,
        "drawn": ((frame1 - frame0) % (1 << FRAME_BITS)) / elapsed,
        "xcpu": (xcpu1 - xcpu0) * 1000.0 / max(1, shown),
        "kb": (bytes1 - bytes0) / 1024.0 / max(1, shown),
    }


def fmt(r):
    return ("%5.1f fps shown  torn %5.1f%%  unread %4.1f%%  latency %6.1f ms (%s)  cpu %6.1f ms/frame"
            "  [rAF %4.1f/s, X drew %4.1f/s, Xvnc %5.1f ms/frame, %6.1f KiB/frame]" % (
                r["fps"], 100 * r["torn"], 100 * r["unread"], r["lat"], r["lat_n"], r["cpu"], r["raf"], r["drawn"],
                r["xcpu"], r["kb"]))


def run_size(size, kinds, args, ours_web, novnc_web, results):
    width, height = (int(v) for v in size.split("x"))
    with contextlib.ExitStack() as stack:
        display, vnc_port = stack.enter_context(realpeers.xvnc(size))
        target = ("--vnc", "127.0.0.1:%d" % vnc_port)
        metrics = {"ours": realpeers.free_port(), "noVNC": realpeers.free_port()}
        ours = stack.enter_context(realpeers.proxy("--web", ours_web, "--metrics-listen", str(metrics["ours"]), *target))
        theirs = stack.enter_context(realpeers.proxy("--web", novnc_web, "--metrics-listen", str(metrics["noVNC"]),
                                                     *target))
        xvnc = xvnc_pid(display)
        urls = {"ours": "http://127.0.0.1:%d/vnc.html?host=127.0.0.1&port=%d&path=websockify&autoconnect=1"
                        "&resize=off" % (ours.port, ours.port),
                "noVNC": "http://127.0.0.1:%d/bench.html" % theirs.port}
        driver = stack.enter_context(realpeers.chromium(window="%d,%d" % (width + 80, height + 200)))
        driver.set_script_timeout(30)
        chrome_root = driver.service.process.pid
        for kind in kinds:
            animator = Animator(display, width, height, kind, args.rate)
            animator.start()
            try:
                for rnd in range(args.rounds):
                    order = ["ours", "noVNC"] if rnd % 2 == 0 else ["noVNC", "ours"]
                    for client in [c for c in order if c in args.clients]:
                        r = measure(driver, urls[client], width, args.seconds, animator, chrome_root,
                                    (xvnc, metrics[client]))
                        results.setdefault((size, kind), {}).setdefault(client, []).append(r)
                        print("%-9s %-7s r%d %-5s %s" % (size, kind, rnd, client, fmt(r)), flush=True)
                    if "ceiling" not in args.clients:
                        continue
                    driver.get("about:blank")  # the last page's session would halve what Xvnc sends the ceiling
                    r = measure_ceiling(vnc_port, args.seconds, xvnc)
                    results.setdefault((size, kind), {}).setdefault("ceiling", []).append(r)
                    print("%-9s %-7s r%d ceiling %5.1f fps received (%5.1f updates/s, Xvnc %5.1f ms/frame)" % (
                        size, kind, rnd, r["fps"], r["updates"], r["xcpu"]), flush=True)
            finally:
                animator.stop()


def process_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def xvnc_pid(display):
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as handle:
                    argv = handle.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"Xvnc") and (":%s" % str(display).lstrip(":")).encode() in argv:
                return int(name)
    raise RuntimeError("no Xvnc for display %s" % display)


def bytes_sent(metrics_port):
    """wsproxy's target-to-browser byte counter (its --metrics-listen)."""
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith('wsproxy_bytes_total{direction="target_to_client"}'):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def summary(results, rounds):
    print("\nmedians of %d round(s); ratio = ours / noVNC per round, then the median of the ratios" % rounds)
    print("%-9s %-7s | %-26s | %-26s | %-22s | %-24s | %s | %s" % (
        "size", "kind", "shown fps ours/noVNC (x)", "torn % ours/noVNC", "latency ms ours/noVNC (x)",
        "cpu ms/frame ours/noVNC (x)", "unread % ours/noVNC", "ceiling fps (x noVNC)"))
    for (size, kind), per in results.items():
        a, b, c = per.get("ours", []), per.get("noVNC", []), per.get("ceiling", [])

        def med(rs, key):
            vals = [r[key] for r in rs if r[key] == r[key]]
            return statistics.median(vals) if vals else float("nan")

        def ratio(key, mine=a):
            vals = [x[key] / y[key] for x, y in zip(mine, b) if y[key] and x[key] == x[key] and y[key] == y[key]]
            return statistics.median(vals) if vals else float("nan")

        print("%-9s %-7s | %5.1f / %5.1f  (%5.2fx)     | %5.1f / %5.1f            | %5.0f / %5.0f (%5.2fx) |"
              " %5.1f / %5.1f  (%5.2fx)    | %4.1f / %4.1f | %5.1f (%4.2fx)" % (
                  size, kind, med(a, "fps"), med(b, "fps"), ratio("fps"), 100 * med(a, "torn"), 100 * med(b, "torn"),
                  med(a, "lat"), med(b, "lat"), ratio("lat"), med(a, "cpu"), med(b, "cpu"), ratio("cpu"),
                  100 * med(a, "unread"), 100 * med(b, "unread"), med(c, "fps"), ratio("fps", c)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=60.0, help="frames the X client draws per second")
    parser.add_argument("--sizes", default="1280x720,1920x1080")
    parser.add_argument("--kinds", default="photo,desktop,scroll")
    parser.add_argument("--web", default=os.path.join(realpeers.ROOT, "web"), help="our web/ tree")
    parser.add_argument("--novnc", default=NOVNC_DEFAULT, help="noVNC tree holding core/rfb.js")
    parser.add_argument("--clients", default="ours,noVNC,ceiling", help="which of ours,noVNC,ceiling to measure")
    args = parser.parse_args(argv)
    if not os.path.exists(os.path.join(args.novnc, "core", "rfb.js")):
        sys.exit("no noVNC at %s: npm install --prefix /tmp/novnc-bench @novnc/novnc@1.7" % args.novnc)
    with open(os.path.join(args.novnc, "bench.html"), "w") as handle:
        handle.write(NOVNC_PAGE)
    results = {}
    for size in args.sizes.split(","):
        run_size(size, args.kinds.split(","), args, os.path.abspath(args.web), os.path.abspath(args.novnc), results)
    summary(results, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
