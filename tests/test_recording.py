"""--record end to end: wsproxy.py (a subprocess) between a Python RFB client
and a real TigerVNC Xvnc with a VNC password.

* The file exists, mode 0600, starts with the synthesized handshake and the
  real ServerInit, holds the screen updates, and neither the VNC challenge
  nor the client's response; without --record-input no client input either
  (with it, the input and still no response).
* Caps: the session cap stops the recording, not the session; the
  directory cap deletes the oldest recordings (and nothing else there).
* A full disk (a 64 KiB tmpfs; needs root) stops the recording and the
  session goes on.
"""

import glob
import os
import stat
import struct
import subprocess
import tempfile
import time

import pytest
from websockets.sync.client import connect

import realpeers
import wsproxy
from wsproxy import RecordKind, SYNTHESIZED_HANDSHAKE, parse_recording, recorded_server_bytes

ROOT = realpeers.ROOT
PASSWORD = "s3cret"
GEOMETRY = (320, 200)
FULL_UPDATE = GEOMETRY[0] * GEOMETRY[1] * 4   # one raw screen at 32 bpp
PIXEL_FORMAT = bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0])
# Input no recording may hold without --record-input: a key and a pointer
# event with values that appear nowhere else.
KEY = struct.pack(">BBxxI", 4, 1, 0x0001F9A7)
POINTER = struct.pack(">BBHH", 5, 0, 0x0123, 0x00AB)


def vnc_auth_response(password: str, challenge: bytes) -> bytes:
    """The DES answer, computed by the web client's own des.js (no Python DES here)."""
    node = realpeers.require_tool("node")
    script = ("import {vncAuthResponse} from %r;"
              "process.stdout.write(Buffer.from(vncAuthResponse(process.argv[1], Buffer.from(process.argv[2], 'hex')))"
              ".toString('hex'))" % os.path.join(ROOT, "web", "core", "des.js"))
    out = subprocess.run([node, "--input-type=module", "-e", script, password, challenge.hex()],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return bytes.fromhex(out)


class RfbClient:
    """Just enough RFB 3.8 over wsproxy's WebSocket: VncAuth, raw updates."""

    def __init__(self, port: int):
        self._connection = connect("ws://127.0.0.1:%d/websockify" % port, max_size=None, open_timeout=10)
        self.ws = self._connection.__enter__()
        self.buffer = b""
        self.challenge = self.response = b""

    def read(self, n: int, timeout: float = 10.0) -> bytes:
        while len(self.buffer) < n:
            self.buffer += self.ws.recv(timeout=timeout)
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def login(self, password: str = PASSWORD):
        assert self.read(12) == b"RFB 003.008\n"
        self.ws.send(b"RFB 003.008\n")
        types = self.read(self.read(1)[0])
        assert 2 in types, types
        self.ws.send(b"\x02")
        self.challenge = self.read(16)
        self.response = vnc_auth_response(password, self.challenge)
        self.ws.send(self.response)
        assert self.read(4) == b"\0\0\0\0", "VNC password refused"
        self.ws.send(b"\x01")                        # ClientInit, shared
        width, height = struct.unpack(">HH", self.read(4))
        self.read(16)
        self.read(struct.unpack(">I", self.read(4))[0])
        self.ws.send(b"\0\0\0\0" + PIXEL_FORMAT)     # SetPixelFormat
        self.ws.send(struct.pack(">BxHi", 2, 1, 0))  # SetEncodings: Raw only
        return width, height

    def update(self, incremental: int = 0) -> int:
        """Ask for the whole screen, read one FramebufferUpdate; its pixel bytes."""
        self.ws.send(struct.pack(">BBHHHH", 3, incremental, 0, 0, *GEOMETRY))
        while True:
            kind = self.read(1)[0]
            if kind == 0:
                break
            assert kind == 2, "unexpected server message %d" % kind   # only Bell may come between
        self.read(1)
        total = 0
        for _ in range(struct.unpack(">H", self.read(2))[0]):
            x, y, w, h, encoding = struct.unpack(">HHHHi", self.read(12))
            assert encoding == 0
            total += len(self.read(w * h * 4))
        return total

    def close(self):
        self._connection.__exit__(None, None, None)


def wait_for(predicate, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def recordings(directory):
    return sorted(glob.glob(os.path.join(directory, "*.wsrec")))


def finished(wsp, count=1):
    """Until the proxy has logged COUNT recordings' final lines; those lines."""
    def lines():
        return [line for line in wsp.log().splitlines() if ": recording " in line]
    wait_for(lambda: len(lines()) >= count, "%d recording log lines; log: %s" % (count, wsp.log()))
    return lines()


@pytest.fixture(scope="module")
def server():
    with realpeers.xvnc("%dx%d" % GEOMETRY, security="VncAuth", password=PASSWORD) as (display, port):
        yield display, port


def session(wsp, updates=2):
    client = RfbClient(wsp.port)
    try:
        size = client.login()
        for _ in range(updates):
            assert client.update() == FULL_UPDATE
        client.ws.send(KEY + POINTER)
        client.ws.send(struct.pack(">BBxxI", 4, 0, 0x0001F9A7))
        time.sleep(0.2)
        return client, size
    finally:
        client.close()


def test_recording_holds_the_screen_not_the_login_or_the_input(server, tmp_path):
    _, vnc_port = server
    with realpeers.proxy("--vnc", "127.0.0.1:%d" % vnc_port, "--record", str(tmp_path)) as wsp:
        client, size = session(wsp)
        line = finished(wsp)[0]
    files = recordings(str(tmp_path))
    assert len(files) == 1, os.listdir(tmp_path)
    path = files[0]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    data = open(path, "rb").read()
    assert "recording %s: %d bytes; the session ended" % (path, len(data)) in line, line
    print("one session, two full raw updates: %s, %d bytes" % (os.path.basename(path), len(data)))
    header, records, complete = parse_recording(data)
    assert complete and records[-1].kind == RecordKind.END
    assert header["target"] == "127.0.0.1:%d" % vnc_port and header["token"] is None
    assert (header["width"], header["height"]) == size == GEOMETRY
    assert header["server_version"] == "RFB 003.008" and header["input"] is False
    server_bytes = recorded_server_bytes(records)
    assert server_bytes.startswith(SYNTHESIZED_HANDSHAKE + struct.pack(">HH", *GEOMETRY))
    assert len(server_bytes) >= 2 * FULL_UPDATE
    # Never the login: not the challenge, not the response (a replayable
    # credential for that challenge), and no client input.
    assert client.challenge not in data and client.response not in data
    assert KEY not in data and POINTER not in data
    assert {r.kind for r in records} == {RecordKind.SERVER, RecordKind.CLIENT_FORMAT, RecordKind.END}
    formats = [r.payload for r in records if r.kind == RecordKind.CLIENT_FORMAT]
    assert formats == [b"\0\0\0\0" + PIXEL_FORMAT, struct.pack(">BxHi", 2, 1, 0)]


def test_record_input_adds_the_input_and_still_not_the_response(server, tmp_path):
    _, vnc_port = server
    with realpeers.proxy("--vnc", "127.0.0.1:%d" % vnc_port, "--record", str(tmp_path), "--record-input") as wsp:
        client, _ = session(wsp, updates=1)
        finished(wsp)
    data = open(recordings(str(tmp_path))[0], "rb").read()
    header, records, _ = parse_recording(data)
    assert header["input"] is True
    inputs = b"".join(r.payload for r in records if r.kind == RecordKind.CLIENT_INPUT)
    assert KEY + POINTER in inputs
    assert client.response not in data and client.challenge not in data


def test_prefix_mode_names_files_path_dot_number(server, tmp_path):
    _, vnc_port = server
    prefix = str(tmp_path / "session")
    with realpeers.proxy("--vnc", "127.0.0.1:%d" % vnc_port, "--record", prefix) as wsp:
        session(wsp, updates=1)
        session(wsp, updates=1)
        finished(wsp, 2)
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 2 and all(n.startswith("session.") and n[8:].isdigit() for n in names), names


def test_session_cap_stops_the_recording_not_the_session(server, tmp_path):
    _, vnc_port = server
    cap = 100 * 1024
    with realpeers.proxy("--vnc", "127.0.0.1:%d" % vnc_port, "--record", str(tmp_path),
                         "--record-session-max-bytes", "100K") as wsp:
        client = RfbClient(wsp.port)
        client.login()
        for _ in range(4):    # each update is 2.5 times the cap; the session goes on
            assert client.update() == FULL_UPDATE
        line = finished(wsp)[0]
        assert client.update() == FULL_UPDATE
        client.close()
    path = recordings(str(tmp_path))[0]
    size = os.path.getsize(path)
    assert size <= cap, size
    assert "stopped: the session size cap (102400 bytes) was reached" in line, line
    header, records, complete = parse_recording(open(path, "rb").read())
    assert complete and b"size cap" in records[-1].payload


def test_directory_cap_deletes_the_oldest_recordings_first(server, tmp_path):
    _, vnc_port = server
    (tmp_path / "notes.txt").write_bytes(b"x" * 100_000)   # not a recording: never counted or deleted
    old = tmp_path / "20000101T000000Z-1.wsrec"             # a recording from an earlier run
    old.write_bytes(b"o" * 300_000)
    os.utime(old, (946684800, 946684800))
    cap = 700 * 1024
    with realpeers.proxy("--vnc", "127.0.0.1:%d" % vnc_port, "--record", str(tmp_path),
                         "--record-max-bytes", "700K") as wsp:
        for n in range(3):
            session(wsp, updates=1)          # ~260 KB each
            finished(wsp, n + 1)
        log = wsp.log()
    files = recordings(str(tmp_path))
    sizes = {os.path.basename(f): os.path.getsize(f) for f in files}
    print("directory cap 700K: %r" % sizes)
    assert sum(sizes.values()) <= cap
    assert not old.exists() and "recording %s deleted" % old.name in log
    assert (tmp_path / "notes.txt").exists()
    # The newest two sessions survive whole.
    assert len(files) == 2
    for f in files:
        assert parse_recording(open(f, "rb").read())[2]


@pytest.fixture
def tiny_disk():
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where = tempfile.mkdtemp(prefix="wsproxy-full-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", where], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", where], check=True)
        os.rmdir(where)


def test_a_full_disk_stops_the_recording_and_the_session_goes_on(server, tiny_disk):
    _, vnc_port = server
    with realpeers.proxy("--vnc", "127.0.0.1:%d" % vnc_port, "--record", tiny_disk) as wsp:
        client = RfbClient(wsp.port)
        client.login()
        for _ in range(3):
            assert client.update() == FULL_UPDATE
        line = finished(wsp)[0]
        for _ in range(2):
            assert client.update() == FULL_UPDATE     # the session did not notice
        client.close()
        assert "No space left on device" in line and "stopped: cannot write" in line, line
        wait_for(lambda: "closed code=1000" in wsp.log() or "closed code=1005" in wsp.log(), "the close line")
    files = recordings(tiny_disk)
    assert len(files) == 1
    header, records, complete = parse_recording(open(files[0], "rb").read())
    assert not complete and records[0].payload.startswith(SYNTHESIZED_HANDSHAKE)


def test_recording_is_off_without_record(server, tmp_path):
    # Zero cost when off: no recorder on the relay, no writer thread.
    config = wsproxy.parse_args(["6080", "127.0.0.1:1"])
    assert wsproxy.Server(config).recordings is None


def test_recordings_inside_the_web_files_are_warned_about(tmp_path, caplog):
    (tmp_path / "rec").mkdir()
    config = wsproxy.parse_args(["6080", "127.0.0.1:1", "--web", str(tmp_path), "--record", str(tmp_path / "rec")])
    with caplog.at_level("WARNING", logger="wsproxy"):
        wsproxy.Server(config)
    assert "inside the web files" in caplog.text
    caplog.clear()
    elsewhere = tmp_path / "web"
    elsewhere.mkdir()
    with caplog.at_level("WARNING", logger="wsproxy"):
        wsproxy.Server(wsproxy.parse_args(["6080", "127.0.0.1:1", "--web", str(elsewhere), "--record", str(tmp_path / "rec")]))
    assert "inside the web files" not in caplog.text


def test_a_slow_disk_stops_the_recording_when_its_queue_is_full(tmp_path, monkeypatch):
    """The writer never drains (a disk that hangs): past the session's share
    of the queue the recording stops, and the relay's calls return at once."""
    import threading
    monkeypatch.setattr(wsproxy, "RECORD_QUEUE_SESSION_BYTES", 64 * 1024)
    store = wsproxy.RecordingStore(str(tmp_path))
    hang = threading.Event()
    monkeypatch.setattr(store, "_run", hang.wait)
    rec = store.recorder(5, "h:1", None)
    rec.client(b"RFB 003.008\n\x01\x01")
    rec.server(b"RFB 003.008\n\x01\x01\0\0\0\0" + struct.pack(">HH", 4, 4) + PIXEL_FORMAT + b"\0\0\0\0")
    assert rec.started is not None and not rec.stopped
    started = time.monotonic()
    for _ in range(10):
        rec.server(b"u" * 10_000)
    assert rec.stopped
    assert time.monotonic() - started < 0.5
    reasons = [item[3] for item in store._queue if item[1] < 0]
    assert len(reasons) == 1 and reasons[0].startswith("the disk is too slow"), reasons
    assert store._queued <= 64 * 1024
    hang.set()
