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

import asyncio
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
    stream = (SET_ENCODINGS + KEY_A_DOWN + UPDATE_REQUEST + POINTER + clip + qemu_key + fence
              + resize + xvp + continuous)
    to_server, _, f = filtered_session(stream, split=split)
    assert to_server == b"RFB 003.008\n" + b"\x01\x01" + SET_ENCODINGS + UPDATE_REQUEST + fence + continuous
    assert f.dropped == {"KeyEvent": 1, "PointerEvent": 1, "ClientCutText": 1, "QEMU key event": 1,
                         "SetDesktopSize": 1, "XVP": 1}


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
