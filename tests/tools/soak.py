#!/usr/bin/env python3
"""Soak run (issue 6, item 5): not part of the pytest run (no test_ prefix).

1. 10,000 WebSocket connections through one proxy process, opened and closed
   in batches of 200, each with a little echoed traffic; closed four ways in
   turn (close handshake, Close then hang up, FIN without Close, RST).
   Thread count, descriptor count and RSS of the proxy are read from /proc
   before, after the first batch, at the peak and after; it fails if threads
   or descriptors do not return to the baseline or RSS grows more than 10 MB.
2. A slow client behind a fast target for 1 GB: proxy RSS at 10% and 90% of
   the transfer must not differ by more than 4 MiB; every byte checked.

    python3 tests/tools/soak.py [--connections 10000] [--batch 200] [--slow-mb 1024]

Exit status 0 when every figure is within bounds, 1 otherwise.  Loopback
only; the proxy processes are stopped by PID.
"""

import argparse
import os
import random
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/

from conftest import EchoServer, ProxyProcess, free_port, raw_websocket, ws_frame  # noqa: E402
from test_faults import (ServerFrames, StreamTarget, close_payload, fd_count, rss_kib,  # noqa: E402
                         slow_client_transfer, thread_count, wait_until)

RSS_NOISE_KIB = 10 * 1024
SLOW_RSS_LIMIT_KIB = 4 * 1024


def start_proxy(target_port: int, workdir: str) -> ProxyProcess:
    port = free_port()
    return ProxyProcess(["--listen", "127.0.0.1:%d" % port, "--no-web", "127.0.0.1:%d" % target_port],
                        workdir, port=port)


def figures(pid: int) -> dict:
    return {"threads": thread_count(pid), "fds": fd_count(pid), "rss_kib": rss_kib(pid)}


def show(label: str, item: dict) -> None:
    print("  %-22s threads=%-4d fds=%-4d rss=%.1f MB" % (label, item["threads"], item["fds"],
                                                         item["rss_kib"] / 1024), flush=True)


def echo_once(sock: socket.socket, frames: ServerFrames, rng: random.Random) -> None:
    payload = rng.randbytes(rng.randint(1, 4096))
    sock.sendall(ws_frame(0x2, payload))
    got = bytearray(b"".join(p for _, _, p in frames.parse()))
    while len(got) < len(payload):
        batch = frames.read()
        if batch is None:
            raise EOFError("proxy closed during the echo")
        got += b"".join(p for _, op, p in batch if op in (0x0, 0x2))
    if bytes(got) != payload:
        raise AssertionError("echo differs")


def finish(sock: socket.socket, frames: ServerFrames, how: int) -> None:
    if how == 0:        # the close handshake, waiting for the reply
        sock.sendall(ws_frame(0x8, struct.pack("!H", 1000)))
        while True:
            batch = frames.read()
            if batch is None or any(op == 0x8 and close_payload(p)[0] == 1000 for _, op, p in batch):
                break
    elif how == 1:      # Close, then hang up at once
        sock.sendall(ws_frame(0x8, struct.pack("!H", 1000)))
    elif how == 3:      # RST: linger 0
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()        # how == 2: a FIN with no Close frame


def churn(total: int, batch: int) -> bool:
    echo = EchoServer()
    workdir = tempfile.mkdtemp(prefix="wsproxy-soak-")
    proxy = start_proxy(echo.port, workdir)
    ok = True
    try:
        pid = proxy.pid
        time.sleep(0.5)
        fresh = figures(pid)
        rng = random.Random(6)
        peak = dict(fresh)
        warm = None
        done = 0
        started = time.monotonic()
        while done < total:
            count = min(batch, total - done)
            open_ = []
            for _ in range(count):
                sock, buf = raw_websocket(proxy.port, timeout=20)
                open_.append((sock, ServerFrames(sock, buf)))
            for sock, frames in open_:
                echo_once(sock, frames, rng)
            now = figures(pid)
            peak = {key: max(peak[key], now[key]) for key in peak}
            for i, (sock, frames) in enumerate(open_):
                finish(sock, frames, (done + i) % 4)
            done += count
            if warm is None:
                wait_until(lambda: thread_count(pid) <= fresh["threads"], 10)
                warm = figures(pid)
            if done % 2000 == 0:
                print("  %5d connections, %.0fs" % (done, time.monotonic() - started), flush=True)
        seconds = time.monotonic() - started
        wait_until(lambda: thread_count(pid) <= fresh["threads"] and fd_count(pid) <= fresh["fds"], 20)
        time.sleep(0.5)
        after = figures(pid)
        print("churn: %d connections in batches of %d, %.1fs (%.0f connections/s)"
              % (total, batch, seconds, total / seconds))
        show("before", fresh)
        show("after the first batch", warm)
        show("peak (batch open)", peak)
        show("after", after)
        growth = after["rss_kib"] - fresh["rss_kib"]
        print("  RSS growth %.1f MB (limit %d MB)" % (growth / 1024, RSS_NOISE_KIB // 1024))
        opened = proxy.stderr.count(": open -> ")
        closed = proxy.stderr.count(": closed code=")
        print("  log: %d open lines, %d closed lines" % (opened, closed))
        if after["threads"] != fresh["threads"] or after["fds"] != fresh["fds"]:
            print("FAIL: threads or descriptors did not return to the baseline")
            ok = False
        if growth > RSS_NOISE_KIB:
            print("FAIL: RSS grew beyond noise")
            ok = False
        if opened != total or closed != total:
            print("FAIL: expected %d open and %d closed log lines" % (total, total))
            ok = False
    finally:
        proxy.stop()
        echo.close()
    return ok


def slow_client(megabytes: int) -> bool:
    total = megabytes << 20
    target = StreamTarget(total)
    workdir = tempfile.mkdtemp(prefix="wsproxy-soak-")
    proxy = start_proxy(target.port, workdir)
    try:
        result = slow_client_transfer(proxy.pid, proxy.port, target)
    finally:
        proxy.stop()
    growth = result["rss_90"] - result["rss_10"] if result["rss_90"] is not None else None
    print("slow client: %d MB in %.1fs (%.0f MB/s), intact=%s, close=%r" % (
        result["bytes"] >> 20, result["seconds"], (result["bytes"] >> 20) / result["seconds"],
        result["intact"], result["close"]))
    if growth is not None:
        print("  proxy RSS at 10%%: %.1f MB, at 90%%: %.1f MB, growth %d KiB (limit %d KiB)"
              % (result["rss_10"] / 1024, result["rss_90"] / 1024, growth, SLOW_RSS_LIMIT_KIB))
    ok = (result["bytes"] == total and result["intact"] and result["target_error"] is None
          and growth is not None and growth < SLOW_RSS_LIMIT_KIB)
    if not ok:
        print("FAIL: slow client %r" % result)
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--slow-mb", type=int, default=1024, help="size of the slow-client transfer (0: skip)")
    args = parser.parse_args(argv)
    ok = churn(args.connections, args.batch)
    if args.slow_mb:
        ok = slow_client(args.slow_mb) and ok
    print("soak: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
