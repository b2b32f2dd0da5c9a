#!/usr/bin/env python3
"""Frame rate of the web client (a measurement, not a test; pytest does not collect it).

A 1920x1080 TigerVNC Xvnc whose whole screen changes continuously (an X client
alternates two full-screen pictures, photo-like bottom quarter included, with
CopyArea from pixmaps), wsproxy, and vnc.html in headless Chromium.  For each
encoding the page counts 'update-done' events (one per FramebufferUpdate drawn)
and the bytes it received over SECONDS seconds, and the time spent inside
rfb.receive() (decoding, plus the putImageData of the flush at the end of each
update), reported per update and as a share of the wall-clock time.

    python3 tests/tools/bench_web_fps.py [--seconds 5] [--rate 60] [--rounds 1] [--web DIR ...] [ENCODING ...]

ENCODING is a name vnc.html's `encoding=` accepts, or "default" (no forcing).
--web DIR (repeatable; default: this checkout's web/) serves the page from DIR through
its own wsproxy, e.g. a `git archive HEAD web | tar -x -C /tmp/before` copy; the trees
are interleaved encoding by encoding and round by round, medians are printed at the end
with ratios to the first tree.
"""

import argparse
import contextlib
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/

import realpeers  # noqa: E402
import x11  # noqa: E402

WIDTH, HEIGHT = 1920, 1080
ENCODINGS = ["raw", "rre", "hextile", "zrle", "tight", "default"]

COUNT_JS = r"""
const r = window.wsproxyClient.rfb;
const s = window.__bench = {updates: 0, bytes: 0, ms: 0};
const onEvent = r._onEvent;
r._onEvent = (e) => { if (e.type === 'update-done') s.updates++; onEvent(e); };
const receive = r.receive.bind(r);
r.receive = (bytes) => {
  const t0 = performance.now();
  s.bytes += bytes.length;
  receive(bytes);
  s.ms += performance.now() - t0;
};
return true;
"""


class Changer(threading.Thread):
    """Alternates two pictures over the whole root window RATE times a second."""

    def __init__(self, display, rate):
        super().__init__(daemon=True)
        self.display, self.rate = display, rate
        self.stopping = threading.Event()
        self.frames = 0
        self.conn = x11.XConnection(display)
        print("drawing two %dx%d pictures..." % (WIDTH, HEIGHT), flush=True)
        self.pixmaps = [self.conn.pixmap(x11.test_picture(WIDTH, HEIGHT, seed)) for seed in (1, 2)]

    def run(self):
        x11.run_paced(self.rate, self.stopping, self.next_frame)

    def next_frame(self):
        self.conn.copy_area(0, 0, WIDTH, HEIGHT, 0, 0, src=self.pixmaps[self.frames % 2])
        self.conn.sync()
        self.frames += 1

    def stop(self):
        self.stopping.set()
        self.join()
        self.conn.close()


def measure(driver, proxy_port, encoding, seconds):
    query = "host=127.0.0.1&port=%d&path=websockify&autoconnect=1" % proxy_port
    if encoding != "default":
        query += "&encoding=" + encoding
    driver.get("about:blank")
    driver.get("http://127.0.0.1:%d/vnc.html?%s" % (proxy_port, query))
    deadline = time.monotonic() + 20
    while driver.execute_script("return document.body.dataset.state") != "connected":
        if time.monotonic() > deadline:
            raise RuntimeError("%s: never connected: %s" % (
                encoding, driver.execute_script("return document.getElementById('status').textContent")))
        time.sleep(0.05)
    driver.execute_script(COUNT_JS)
    time.sleep(1.0)  # warm up: first full update, JIT
    sample = "const s = window.__bench; return [s.updates, s.bytes, performance.now(), s.ms]"
    start = driver.execute_script(sample)
    time.sleep(seconds)
    end = driver.execute_script(sample)
    elapsed = (end[2] - start[2]) / 1000.0
    updates = end[0] - start[0]
    busy = end[3] - start[3]
    per_update = busy / updates if updates else float("nan")
    return updates / elapsed, (end[1] - start[1]) / elapsed / 1e6, per_update, busy / 10.0 / elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=60.0, help="screen changes per second")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--web", action="append", help="web/ tree to serve (repeatable)")
    parser.add_argument("encodings", nargs="*", default=ENCODINGS)
    args = parser.parse_args(argv)

    webs = [os.path.abspath(w) for w in args.web or [os.path.join(realpeers.ROOT, "web")]]
    with contextlib.ExitStack() as stack:
        display, vnc_port = stack.enter_context(realpeers.xvnc("%dx%d" % (WIDTH, HEIGHT)))
        proxies = [stack.enter_context(realpeers.proxy("--web", w, "--vnc", "127.0.0.1:%d" % vnc_port))
                   for w in webs]
        driver = stack.enter_context(realpeers.chromium(window="2000,1200"))
        driver.set_script_timeout(30)
        changer = Changer(display, args.rate)
        changer.start()
        results = {}
        try:
            for _ in range(args.rounds):
                for encoding in args.encodings:
                    for i, wsp in enumerate(proxies):
                        fps, mbps, ms, busy = measure(driver, wsp.port, encoding, args.seconds)
                        results.setdefault((encoding, i), []).append((fps, mbps, ms, busy))
                        print("%-8s %-3s %6.1f fps  %7.1f MB/s received  %7.2f ms/update in receive (%3.0f%% busy)"
                              % (encoding, "[%d]" % i if len(webs) > 1 else "", fps, mbps, ms, busy), flush=True)
            print("screen changes: %.1f/s requested, %d drawn" % (args.rate, changer.frames))
        finally:
            changer.stop()
    if len(webs) > 1 or args.rounds > 1:
        print("medians of %d round(s):" % args.rounds)
        for i, w in enumerate(webs):
            print("  [%d] %s" % (i, w))
        for encoding in args.encodings:
            base = None
            for i in range(len(webs)):
                fps, mbps, ms, busy = (statistics.median(col) for col in zip(*results[(encoding, i)]))
                ratio = "" if base is None else "  fps %.2fx, ms/update %.2fx" % (fps / base[0], base[2] / ms)
                base = base or (fps, mbps, ms)
                print("%-8s [%d] %6.1f fps  %7.1f MB/s  %7.2f ms/update  %3.0f%% busy%s"
                      % (encoding, i, fps, mbps, ms, busy, ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
