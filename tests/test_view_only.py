"""View-only enforced by the proxy: a token marked ``view-only`` (or
--view-only) lets a client watch but not touch.

Pure tests drive ViewOnlyFilter; the end-to-end ones run a real TigerVNC Xvnc
behind wsproxy.py and read the X server's own state (pointer position and
pressed keys, via QueryPointer and QueryKeymap over tests/x11.py's
connection) to see that a raw WebSocket client speaking RFB itself, ignoring
the page, cannot move the pointer or press a key, while updates keep coming
and a normal viewer keeps control; and a headless Chromium shows the page's
view-only badge with the picture.
"""

import struct
import time

import pytest

import realpeers
from wsproxy import (VIEW_ONLY_SUBPROTOCOL, ViewOnlyFilter, ViewOnlyRefused, parse_token_text)
from x11 import XConnection

PIXEL_FORMAT = bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0])
SERVER_INIT = struct.pack(">HH", 320, 200) + PIXEL_FORMAT + struct.pack(">I", 4) + b"desk"
KEY_A_DOWN = struct.pack(">BBxxI", 4, 1, 0x61)
POINTER = struct.pack(">BBHH", 5, 0, 100, 50)
UPDATE_REQUEST = struct.pack(">BBHHHH", 3, 0, 0, 0, 320, 200)
SET_ENCODINGS = struct.pack(">BxHi", 2, 1, 0)


def filtered_session(client_bytes, offer=bytes([2, 1, 2]), split=None):
    """(bytes the server got, bytes the client got) for a 3.8 None session."""
    f = ViewOnlyFilter()
    to_client = f.server(b"RFB 003.008\n")
    to_server = f.client(b"RFB 003.008\n")
    to_client += f.server(offer)
    to_server += f.client(b"\x01\x00")     # None, then ClientInit with shared=0
    to_client += f.server(struct.pack(">I", 0) + SERVER_INIT + b"\x00update")
    pieces = [client_bytes] if split is None else [client_bytes[i:i + split]
                                                   for i in range(0, len(client_bytes), split)]
    for piece in pieces:
        to_server += f.client(piece)
    return to_server, to_client, f


# -- pure --------------------------------------------------------------------

@pytest.mark.pure
@pytest.mark.parametrize("split", [None, 1, 3, 7])
def test_input_is_dropped_and_picture_requests_pass(split):
    clip = struct.pack(">Bxxxi", 6, 5) + b"hello"
    qemu_key = struct.pack(">BBHII", 255, 0, 1, 0x61, 30)
    resize = struct.pack(">BxHHBx", 251, 800, 600, 1) + bytes(16)
    xvp = bytes([250, 0, 1, 2])
    fence = struct.pack(">BxxxIB", 248, 2, 1) + b"x"
    continuous = struct.pack(">BBHHHH", 150, 1, 0, 0, 320, 200)
    audio = struct.pack(">BBH", 255, 1, 0)
    gii = struct.pack(">BBH", 253, 0x80, 4) + bytes(4)
    stream = (SET_ENCODINGS + KEY_A_DOWN + UPDATE_REQUEST + POINTER + clip + qemu_key + fence
              + resize + audio + xvp + gii + continuous)
    to_server, _, f = filtered_session(stream, split=split)
    assert to_server == (b"RFB 003.008\n" + b"\x01\x01" + SET_ENCODINGS + UPDATE_REQUEST + fence + audio
                         + continuous)
    assert f.dropped == {"KeyEvent": 1, "PointerEvent": 1, "ClientCutText": 1, "QEMU key event": 1,
                         "SetDesktopSize": 1, "XVP": 1, "gii": 1}


@pytest.mark.pure
def test_shared_flag_is_forced_so_a_watcher_never_disconnects_others():
    to_server, _, _ = filtered_session(b"")
    assert to_server[-1:] == b"\x01"       # the client sent ClientInit shared=0


@pytest.mark.pure
def test_security_offer_is_cut_to_types_the_proxy_can_follow():
    _, to_client, _ = filtered_session(b"", offer=bytes([4, 19, 2, 6, 1]))
    assert to_client[12:15] == bytes([2, 2, 1])
    assert to_client.endswith(b"\x00update")    # after ServerInit the server's bytes pass as they are


@pytest.mark.pure
def test_an_offer_with_nothing_followable_ends_the_connection_with_a_reason():
    f = ViewOnlyFilter()
    f.server(b"RFB 003.008\n")
    f.client(b"RFB 003.008\n")
    with pytest.raises(ViewOnlyRefused) as err:
        f.server(bytes([2, 19, 30]))
    assert err.value.close_code == 1008
    assert "19 (VeNCrypt), 30 (Apple DH)" in err.value.reason


@pytest.mark.pure
def test_an_unknown_client_message_ends_the_connection_with_a_reason():
    with pytest.raises(ViewOnlyRefused) as err:
        filtered_session(UPDATE_REQUEST + b"\x07" + bytes(30))
    assert err.value.close_code == 1008 and "type 7 is unknown" in err.value.reason


@pytest.mark.pure
def test_a_large_dropped_clipboard_is_dropped_as_it_streams():
    f = filtered_session(b"")[2]
    assert f.client(struct.pack(">Bxxxi", 6, 1_000_000) + b"a" * 1000) == b""
    for _ in range(999):
        assert f.client(b"a" * 1000) == b""
    assert f.client(UPDATE_REQUEST) == UPDATE_REQUEST
    assert len(f._held) == 0


@pytest.mark.pure
def test_token_lines_take_a_view_only_word():
    entries, problems = parse_token_text("a: localhost:5901 view-only\nb: localhost:5902\n"
                                         "c: unix_socket:/run/vnc view-only\n", "t.conf")
    assert problems == []
    assert entries["a"].view_only and not entries["b"].view_only and entries["c"].view_only
    assert entries["a"].target.port == 5901 and entries["c"].target.unix_path == "/run/vnc"


# -- end to end: Xvnc behind wsproxy.py ---------------------------------------
#
# The X server's own state says whether input arrived: QueryPointer (the
# pointer's position) and QueryKeymap (the keys held down), asked over
# tests/x11.py's raw X connection; no xev window or focus is involved.

WEB = realpeers.os.path.join(realpeers.ROOT, "web")
OP_QUERY_POINTER, OP_QUERY_KEYMAP = 38, 44
GEOMETRY = (320, 200)
CENTRE = (GEOMETRY[0] // 2, GEOMETRY[1] // 2)   # where Xvnc puts the pointer at start


def x_reply(conn, opcode, body=b""):
    conn._request(opcode, 0, body)
    while True:
        packet = conn._recv(32)
        if packet[0] == 0:
            raise AssertionError("X error %d for request %d" % (packet[1], packet[10]))
        if packet[0] == 1:
            return packet + conn._recv(struct.unpack("<I", packet[4:8])[0] * 4)


def pointer_at(display):
    with XConnection(display) as conn:
        return struct.unpack("<hh", x_reply(conn, OP_QUERY_POINTER, struct.pack("<I", conn.root))[16:20])


def keys_down(display):
    with XConnection(display) as conn:
        keymap = x_reply(conn, OP_QUERY_KEYMAP)[8:40]
        return [8 * i + bit for i, byte in enumerate(keymap) for bit in range(8) if byte >> bit & 1]


class RawViewer:
    """An RFB client over WebSocket that ignores the page: websockets' sync
    client speaking RFB 3.8, security None, Raw only."""

    def __init__(self, url, shared, subprotocols=("binary",)):
        from websockets.sync.client import connect
        self.ws = connect(url, subprotocols=list(subprotocols), open_timeout=10, max_size=None).__enter__()
        self.buffer = b""
        assert self.read(12) == b"RFB 003.008\n"
        self.ws.send(b"RFB 003.008\n")
        count = self.read(1)[0]
        assert 1 in self.read(count), "the server offers no security None"
        self.ws.send(b"\x01")
        assert self.read(4) == b"\x00\x00\x00\x00"
        self.ws.send(bytes([shared]))
        width, height = struct.unpack(">HH", self.read(4))
        self.pixel_format = self.read(16)
        self.name = self.read(struct.unpack(">I", self.read(4))[0])
        self.size = (width, height)
        self.ws.send(SET_ENCODINGS)

    def read(self, n, timeout=10):
        while len(self.buffer) < n:
            self.buffer += self.ws.recv(timeout=timeout)
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def request_update(self, incremental=False):
        self.ws.send(struct.pack(">BBHHHH", 3, int(incremental), 0, 0, *self.size))

    def next_update(self):
        """Reads server messages until a FramebufferUpdate is complete: its rectangles."""
        bpp = self.pixel_format[0] // 8
        while True:
            kind = self.read(1)[0]
            if kind == 2:        # Bell
                continue
            if kind == 3:        # ServerCutText
                self.read(3)
                self.read(abs(struct.unpack(">i", self.read(4))[0]))
                continue
            assert kind == 0, "unexpected server message %d" % kind
            count = struct.unpack(">xH", self.read(3))[0]
            rects = []
            for _ in range(count):
                x, y, w, h, encoding = struct.unpack(">HHHHi", self.read(12))
                assert encoding == 0
                self.read(w * h * bpp)
                rects.append((x, y, w, h))
            return rects

    def send(self, data):
        self.ws.send(data)

    def close(self):
        self.ws.close()


@pytest.fixture
def desktop(tmp_path):
    """Xvnc without -AlwaysShared (a shared=0 client disconnects the others),
    and wsproxy with two tokens to it: ``watch`` view-only, ``work`` not."""
    with realpeers.xvnc("%dx%d" % GEOMETRY, extra=["-AlwaysShared=0"]) as (display, vnc_port):
        tokens = tmp_path / "tokens.conf"
        tokens.write_text("watch: 127.0.0.1:%d view-only\nwork: 127.0.0.1:%d\n" % (vnc_port, vnc_port))
        with realpeers.proxy("--web", WEB, "--token-plugin", "TokenFile", "--token-source", str(tokens)) as wsp:
            wsp.vnc_port = vnc_port
            yield display, wsp


def url(wsp, token):
    return "ws://127.0.0.1:%d/websockify?token=%s" % (wsp.port, token)


def wait_for(predicate, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def test_watcher_keys_and_pointer_never_reach_xvnc_while_updates_keep_coming(desktop):
    display, wsp = desktop
    assert pointer_at(display) == CENTRE and keys_down(display) == []
    watcher = RawViewer(url(wsp, "watch"), shared=1)
    try:
        watcher.request_update()
        assert watcher.next_update() == [(0, 0) + GEOMETRY]
        watcher.send(POINTER + KEY_A_DOWN + struct.pack(">BBHH", 5, 1, 10, 10)
                     + struct.pack(">BBHII", 255, 0, 1, 0x62, 48))   # a move, 'a' held, a click, QEMU 'b'
        with XConnection(display) as conn:
            conn.fill(0, 0, 50, 50, (255, 0, 0))
            conn.sync()
        watcher.request_update(incremental=True)
        rects = watcher.next_update()          # the picture still comes: the red square
        assert rects and all(x < 50 and y < 50 for x, y, _, _ in rects)
        time.sleep(0.3)
        assert pointer_at(display) == CENTRE
        assert keys_down(display) == []
    finally:
        watcher.close()
    wait_for(lambda: "view-only: dropped" in wsp.log(), "the closing log line")
    assert "dropped 1 KeyEvent, 2 PointerEvent, 1 QEMU key event" in wsp.log()


def test_a_watcher_asking_exclusive_access_does_not_disconnect_the_person_in_control(desktop):
    display, wsp = desktop
    worker = RawViewer(url(wsp, "work"), shared=1)
    try:
        watcher = RawViewer(url(wsp, "watch"), shared=0)   # "disconnect everyone else", if it were obeyed
        try:
            worker.send(struct.pack(">BBHH", 5, 0, 10, 20))
            wait_for(lambda: pointer_at(display) == (10, 20), "the worker's pointer move")
            worker.request_update()
            assert worker.next_update() == [(0, 0) + GEOMETRY]    # still connected
            watcher.request_update()
            assert watcher.next_update() == [(0, 0) + GEOMETRY]
        finally:
            watcher.close()
    finally:
        worker.close()


def test_a_page_offering_the_view_only_subprotocol_is_told_and_nopage_is_not(desktop):
    _, wsp = desktop
    for token, offered, chosen in (("watch", ("binary", VIEW_ONLY_SUBPROTOCOL), VIEW_ONLY_SUBPROTOCOL),
                                   ("watch", ("binary",), "binary"),     # noVNC: unaffected
                                   ("work", ("binary", VIEW_ONLY_SUBPROTOCOL), "binary")):
        viewer = RawViewer(url(wsp, token), shared=1, subprotocols=offered)
        try:
            assert viewer.ws.subprotocol == chosen, (token, offered)
        finally:
            viewer.close()


def test_page_shows_view_only_and_the_picture(desktop):
    from test_web_e2e import Page, converge
    display, wsp = desktop
    with XConnection(display) as conn:
        conn.fill(20, 20, 100, 60, (0, 128, 255))
        conn.sync()
    with realpeers.chromium() as driver:
        page = Page(driver)
        page.open(wsp.port, path="websockify?token=watch")
        page.wait_state("connected")
        badge = driver.execute_script(
            "const b = document.getElementById('view-only');"
            "return [b.hidden, b.textContent, document.body.classList.contains('view-only')]")
        assert badge == [False, "View only", True]
        converge(page, display)
        page.driver.execute_script("window.wsproxyClient.rfb.pointerEvent(5, 5, 0)")   # the console trick
        time.sleep(0.3)
        assert pointer_at(display) == CENTRE


def test_view_only_on_the_command_line_covers_a_fixed_target(desktop):
    display, wsp = desktop
    with realpeers.proxy("--vnc", "127.0.0.1:%d" % wsp.vnc_port, "--view-only") as fixed:
        viewer = RawViewer("ws://127.0.0.1:%d/websockify" % fixed.port, shared=1)
        try:
            viewer.send(POINTER)
            viewer.request_update()
            assert viewer.next_update() == [(0, 0) + GEOMETRY]
            assert pointer_at(display) == CENTRE
        finally:
            viewer.close()
        wait_for(lambda: "view-only: dropped 1 PointerEvent" in fixed.log(), "the closing log line")


def handshake_until_offer(port):
    """The security types a raw client is offered through wsproxy's
    view-only path (--view-only), or the close it gets instead."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect
    with realpeers.proxy("--vnc", "127.0.0.1:%d" % port, "--view-only") as wsp:
        with connect("ws://127.0.0.1:%d/websockify" % wsp.port, subprotocols=["binary"], open_timeout=10) as ws:
            assert ws.recv(timeout=10)[:12] == b"RFB 003.008\n"
            ws.send(b"RFB 003.008\n")
            try:
                offer = ws.recv(timeout=10)
            except ConnectionClosed as closed:
                code, reason = closed.rcvd.code, closed.rcvd.reason
                wait_for(lambda: "code=%d" % code in wsp.log(), "the closing log line")
                return code, reason, wsp.log()
            return list(offer[1:1 + offer[0]]), None, wsp.log()


def test_security_types_the_proxy_cannot_follow_are_not_offered():
    with realpeers.xvnc("%dx%d" % GEOMETRY, security="TLSNone,None") as (_, vnc_port):
        offer, _, _ = handshake_until_offer(vnc_port)
    assert offer == [1]          # Xvnc offers VeNCrypt (19) and None


def test_a_server_offering_only_encrypted_security_ends_with_a_reason():
    with realpeers.xvnc("%dx%d" % GEOMETRY, security="TLSNone") as (_, vnc_port):
        code, reason, log = handshake_until_offer(vnc_port)
    assert code == 1008
    assert reason.startswith("view-only: the VNC server offers only security types 19 (VeNCrypt)")
    assert "code=1008" in log and "19 (VeNCrypt)" in log
