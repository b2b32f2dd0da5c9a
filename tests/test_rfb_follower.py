"""RfbFollower without sockets: the RFB 3.3/3.7/3.8 handshake and the client
messages it reports, fed whole, byte by byte, and split anywhere (hypothesis),
and the security types and messages it refuses to guess about."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsproxy import (RfbCannotFollow, RfbClientInit, RfbClientMessage, RfbFollower, RfbPhase,
                     RfbSecurityChosen, RfbSecurityResult, RfbServerInit, RfbVersion)

pytestmark = pytest.mark.pure

PIXEL_FORMAT = bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0])


def server_init(width=1024, height=768, name=b"x11 desktop"):
    return struct.pack(">HH", width, height) + PIXEL_FORMAT + struct.pack(">I", len(name)) + name


def version(minor):
    return b"RFB 003.%03d\n" % minor


# A session of client messages our web client and noVNC send, with the
# (kind, subtype, length) each must be reported as.
MESSAGES = [
    (bytes([0, 0, 0, 0]) + PIXEL_FORMAT, (0, -1, 20)),
    (struct.pack(">BxH3i", 2, 3, 16, 0, -223), (2, -1, 16)),
    (struct.pack(">BBHHHH", 3, 0, 0, 0, 1024, 768), (3, -1, 10)),
    (struct.pack(">BBxxI", 4, 1, 0x61), (4, -1, 8)),
    (struct.pack(">BBHH", 5, 1, 10, 20), (5, -1, 6)),
    (struct.pack(">Bxxxi", 6, 5) + b"hello", (6, -1, 13)),
    (struct.pack(">Bxxxi", 6, -12) + struct.pack(">I", 0x10000001) + b"\x78\x9c\x03\x00\x00\x00\x00\x01",
     (6, -1, 20)),                                                   # Extended Clipboard form
    (struct.pack(">BBHHHH", 150, 1, 0, 0, 1024, 768), (150, -1, 10)),
    (struct.pack(">BxxxIB", 248, 0x80000002, 3) + b"abc", (248, -1, 12)),
    (struct.pack(">BxHHBx", 251, 800, 600, 1) + bytes(16), (251, -1, 24)),
    (struct.pack(">BBHII", 255, 0, 1, 0xFF0D, 0x1C), (255, 0, 12)),   # QEMU extended key event
    (struct.pack(">BBH", 255, 1, 0), (255, 1, 4)),                     # QEMU audio enable
    (struct.pack(">BBHBBI", 255, 1, 2, 3, 2, 44100), (255, 1, 10)),    # QEMU audio set format
    (bytes([250, 0, 1, 2]), (250, -1, 4)),                             # XVP reboot
    (struct.pack(">BBH", 253, 0x81, 2) + b"\x00\x01", (253, 1, 6)),    # gii version, big-endian
    (struct.pack("<BBH", 253, 0x01, 2) + b"\x01\x00", (253, 1, 6)),    # gii, little-endian length
]
CLIENT_MESSAGES = b"".join(m for m, _ in MESSAGES)


def handshake(minor=8, security=1, shared=1):
    """(server bytes, client bytes) of a successful handshake."""
    server, client = version(minor), version(minor)
    if minor >= 7:
        server += bytes([2, 2, 1])
        client += bytes([security])
    else:
        server += struct.pack(">I", security)
    if security == 2:
        server += b"C" * 16
        client += b"R" * 16
    if security == 2 or minor >= 8:
        server += struct.pack(">I", 0)
    return server + server_init(), client + bytes([shared])


def feed_whole(server, client):
    follower = RfbFollower()
    return follower, follower.server_data(server) + follower.client_data(client)


def feed_interleaved(server, client, cuts):
    """Feed alternately, the pieces cut at ``cuts`` (server, then client)."""
    follower = RfbFollower()
    events = []
    pieces = [[], []]
    for which, data in enumerate((server, client)):
        points = sorted({0, len(data)} | {c % (len(data) + 1) for c in cuts})
        pieces[which] = [data[a:b] for a, b in zip(points, points[1:])]
    while pieces[0] or pieces[1]:
        for which, feed in ((0, follower.server_data), (1, follower.client_data)):
            if pieces[which]:
                events += feed(pieces[which].pop(0))
    return follower, events


def of(events, kind):
    return [e for e in events if type(e) is kind]


@pytest.mark.parametrize("minor", [3, 7, 8])
@pytest.mark.parametrize("security", [1, 2])
def test_handshake_then_every_client_message_with_its_span(minor, security):
    server, client = handshake(minor, security)
    follower, events = feed_whole(server, client + CLIENT_MESSAGES)
    assert of(events, RfbVersion) == [RfbVersion((3, minor), (3, minor), (3, minor))]
    assert of(events, RfbSecurityChosen) == [RfbSecurityChosen(security)]
    assert of(events, RfbServerInit) == [RfbServerInit(1024, 768, PIXEL_FORMAT, "x11 desktop")]
    assert of(events, RfbClientInit) == [RfbClientInit(True, len(client) - 1)]
    assert RfbPhase("client", "normal", len(client)) in events
    assert RfbPhase("server", "normal", len(server)) in events
    spans, start = [], len(client)
    for _, (kind, subtype, length) in MESSAGES:
        spans.append(RfbClientMessage(kind, subtype, start, start + length))
        start += length
    assert of(events, RfbClientMessage) == spans
    assert follower.client_offset == len(client) + len(CLIENT_MESSAGES)
    assert follower.lost is None


def test_message_names_say_what_a_log_line_needs():
    names = [RfbClientMessage(k, s, 0, 0).name for _, (k, s, _) in MESSAGES]
    assert names[:4] == ["SetPixelFormat", "SetEncodings", "FramebufferUpdateRequest", "KeyEvent"]
    assert "QEMU key event" in names and "QEMU audio" in names and "gii" in names


@pytest.mark.parametrize("minor", [3, 7, 8])
@pytest.mark.parametrize("security", [1, 2])
def test_byte_by_byte_gives_the_same_events(minor, security):
    server, client = handshake(minor, security)
    client += CLIENT_MESSAGES
    _, whole = feed_whole(server, client)
    _, split = feed_interleaved(server, client, range(max(len(server), len(client))))
    assert sorted(map(repr, split)) == sorted(map(repr, whole))


@settings(max_examples=200, deadline=None)
@given(minor=st.sampled_from([3, 5, 7, 8, 889]), security=st.sampled_from([1, 2]),
       cuts=st.lists(st.integers(0, 400), max_size=12), client_first=st.booleans())
def test_any_split_and_interleaving_gives_the_same_events(minor, security, cuts, client_first):
    server, client = handshake(minor if minor in (3, 7, 8) else 8 if minor > 8 else 3, security)
    server = version(minor) + server[12:]
    client += CLIENT_MESSAGES
    _, whole = feed_whole(server, client)
    follower, split = feed_interleaved(server, client, cuts)
    if client_first:    # a client ahead of the server: held until the server's bytes place it
        follower = RfbFollower()
        split = follower.client_data(client[:40]) + follower.server_data(server)
        split += follower.client_data(client[40:])
    assert sorted(map(repr, split)) == sorted(map(repr, whole))
    assert follower.client_offset == len(client)


def test_a_long_clipboard_is_counted_not_held():
    server, client = handshake()
    follower = RfbFollower()
    follower.server_data(server)
    follower.client_data(client)
    events = follower.client_data(struct.pack(">Bxxxi", 6, 10_000_000) + b"x" * 1000)
    assert events == [RfbClientMessage(6, -1, len(client), len(client) + 10_000_008)]
    assert len(follower.client.buffer) == 0
    for _ in range(9999):
        assert follower.client_data(b"x" * 1000) == []
    events = follower.client_data(struct.pack(">BBHH", 5, 0, 1, 1))
    assert events == [RfbClientMessage(5, -1, len(client) + 10_000_008, len(client) + 10_000_014)]


@pytest.mark.parametrize("minor", [7, 8])
def test_no_security_types_is_a_failure_with_the_servers_reason(minor):
    follower = RfbFollower()
    follower.server_data(version(minor))
    follower.client_data(version(minor))
    events = follower.server_data(b"\x00" + struct.pack(">I", 9) + b"go away!!")
    assert RfbSecurityResult(False, "go away!!") in events
    assert RfbPhase("server", "failed", 12 + 1 + 4 + 9) in events


def test_vnc_auth_failure_in_3_8_carries_the_reason_and_3_3_none():
    for minor, tail, reason in ((8, struct.pack(">II", 1, 3) + b"bad", "bad"), (3, struct.pack(">I", 1), "")):
        server, client = handshake(minor, 2)
        cut = server.index(b"C" * 16) + 16
        follower, events = feed_whole(server[:cut] + tail, client[:-1])
        assert RfbSecurityResult(False, reason) in events
        assert follower.client.state == "failed"


def test_3_3_server_refusal_has_a_reason():
    follower, events = feed_whole(version(3) + struct.pack(">II", 0, 4) + b"busy", version(3))
    assert of(events, RfbSecurityResult) == [RfbSecurityResult(False, "busy")]


@pytest.mark.parametrize("chosen", [19, 5, 6, 129, 133, 30, 16, 18])
def test_security_types_that_encrypt_or_hide_the_stream_cannot_be_followed(chosen):
    follower = RfbFollower()
    follower.server_data(version(8) + bytes([3, chosen, 2, 1]))
    events = follower.client_data(version(8) + bytes([chosen]))
    lost = of(events, RfbCannotFollow)
    assert len(lost) == 1 and lost[0].side == "client" and str(chosen) in lost[0].reason
    assert "cannot be followed" in lost[0].reason
    assert follower.client_data(b"\x04" * 100) == []    # and nothing after is reported


def test_a_3_3_server_choosing_vencrypt_cannot_be_followed():
    follower = RfbFollower()
    events = follower.server_data(version(3) + struct.pack(">I", 19))
    events += follower.client_data(version(3))
    lost = of(events, RfbCannotFollow)
    assert lost and lost[0].side == "server" and "19 (VeNCrypt)" in lost[0].reason


def test_a_choice_the_server_did_not_offer_cannot_be_followed():
    follower = RfbFollower()
    follower.server_data(version(8) + bytes([1, 2]))
    events = follower.client_data(version(8) + b"\x01")
    assert "did not offer" in of(events, RfbCannotFollow)[0].reason


@pytest.mark.parametrize("message", [b"\x07" + bytes(20), b"\xff\x09" + bytes(10), b"\xff\x01\x00\x07"])
def test_unknown_client_messages_cannot_be_followed(message):
    server, client = handshake()
    follower, events = feed_whole(server, client + message)
    assert follower.lost is not None and follower.lost.offset == len(client)
    assert "cannot follow" in follower.lost.reason


def test_a_client_far_ahead_of_the_handshake_is_not_buffered_for_ever():
    follower = RfbFollower()
    events = follower.client_data(version(8) + b"\x01" * 10000)
    assert of(events, RfbCannotFollow)


def test_not_rfb_at_all_cannot_be_followed():
    follower = RfbFollower()
    events = follower.server_data(b"HTTP/1.1 200 OK\r\n")
    assert "not RFB 3.3 or later" in of(events, RfbCannotFollow)[0].reason


def test_a_realvnc_5_server_answered_in_3_8_is_followed_but_5_with_5_is_not():
    server, client = handshake(8, 1)
    follower, events = feed_whole(b"RFB 005.000\n" + server[12:], client)
    assert of(events, RfbVersion) == [RfbVersion((5, 0), (3, 8), (3, 8))] and follower.lost is None
    follower, events = feed_whole(b"RFB 005.000\n" + server[12:], b"RFB 005.000\n")
    assert "RFB 5.0" in follower.lost.reason
