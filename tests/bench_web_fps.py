#!/usr/bin/env python3
"""Frame rate of the web client (a measurement, not a test; pytest does not collect it).

A 1920x1080 TigerVNC Xvnc whose whole screen changes continuously (an X client
alternates two full-screen pictures, photo-like bottom quarter included, with
CopyArea from pixmaps), wsproxy, and vnc.html in headless Chromium.  For each
encoding the page counts 'update-done' events (one per FramebufferUpdate drawn)
and the bytes it received over SECONDS seconds.

    python3 tests/bench_web_fps.py [--seconds 5] [--rate 60] [ENCODING ...]

ENCODING is a name vnc.html's `encoding=` accepts, or "default" (no forcing).
"""

import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import realpeers  # noqa: E402
import x11  # noqa: E402

WIDTH, HEIGHT = 1920, 1080
ENCODINGS = ["raw", "rre", "hextile", "zrle", "tight", "default"]

COUNT_JS = r"""
const r = window.wsproxyClient.rfb;
const s = window.__bench = {updates: 0, bytes: 0};
const onEvent = r._onEvent;
r._onEvent = (e) => { if (e.type === 'update-done') s.updates++; onEvent(e); };
const receive = r.receive.bind(r);
r.receive = (bytes) => { s.bytes += bytes.length; receive(bytes); };
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
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stopping.is_set():
            self.conn.copy_area(0, 0, WIDTH, HEIGHT, 0, 0, src=self.pixmaps[self.frames % 2])
            self.conn.sync()
            self.frames += 1
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()

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
    start = driver.execute_script("return [window.__bench.updates, window.__bench.bytes, performance.now()]")
    time.sleep(seconds)
    end = driver.execute_script("return [window.__bench.updates, window.__bench.bytes, performance.now()]")
    elapsed = (end[2] - start[2]) / 1000.0
    return (end[0] - start[0]) / elapsed, (end[1] - start[1]) / elapsed / 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=60.0, help="screen changes per second")
    parser.add_argument("encodings", nargs="*", default=ENCODINGS)
    args = parser.parse_args(argv)

    web = os.path.join(realpeers.ROOT, "web")
    with realpeers.xvnc("%dx%d" % (WIDTH, HEIGHT)) as (display, vnc_port), \
            realpeers.proxy("--web", web, "--vnc", "127.0.0.1:%d" % vnc_port) as wsp, \
            realpeers.chromium(window="2000,1200") as driver:
        driver.set_script_timeout(30)
        changer = Changer(display, args.rate)
        changer.start()
        try:
            results = []
            for encoding in args.encodings:
                fps, mbps = measure(driver, wsp.port, encoding, args.seconds)
                results.append((encoding, fps, mbps))
                print("%-8s %6.1f fps  %7.1f MB/s received" % (encoding, fps, mbps), flush=True)
            print("screen changes: %.1f/s requested, %d drawn" % (args.rate, changer.frames))
        finally:
            changer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
