"""Sections 5 and 6: frame codec, FrameDecoder and WebSocketSession, without sockets.

Client frames are built here by hand from RFC 6455 5.2 (not with
encode_frame), so a mistake shared by encoder and decoder cannot hide.
"""

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsproxy
from wsproxy import (CloseReceived, DataReceived, FrameDecoder, Opcode, PingReceived, PongReceived,
                     ProtocolError, WebSocketSession)

pytestmark = pytest.mark.pure

KEY = b"\x37\xfa\x21\x3d"


def naive_mask(data, key, offset=0):
    return bytes(b ^ key[(i + offset) % 4] for i, b in enumerate(data))


def client_frame(opcode, payload=b"", fin=True, key=KEY, rsv=0, length=None):
    """A frame as RFC 6455 5.2 draws it; masked unless key is None."""
    length = len(payload) if length is None else length
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if key is not None else 0
    if length <= 125:
        head = bytes([first, mask_bit | length])
    elif length <= 0xFFFF:
        head = bytes([first, mask_bit | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([first, mask_bit | 127]) + length.to_bytes(8, "big")
    if key is None:
        return head + payload
    # Big payloads use apply_mask, which the tests below hold to naive_mask.
    masked = naive_mask(payload, key) if len(payload) <= 4096 else wsproxy.apply_mask(payload, key)
    return head + key + masked


def decode(chunks, decoder=None):
    """Feed chunks; return [(opcode, payload, fin)] per completed frame."""
    decoder = decoder or FrameDecoder()
    frames, current = [], []
    for chunk in chunks:
        decoder.feed(chunk)
        while True:
            piece = decoder.next_piece()
            if piece is None:
                break
            current.append(piece)
            if piece.frame_end:
                frames.append((current[0].opcode, b"".join(p.payload for p in current), piece.fin))
                assert all(p.opcode == current[0].opcode and p.fin == piece.fin for p in current)
                current = []
    return frames


def protocol_error(chunks, decoder=None):
    with pytest.raises(ProtocolError) as info:
        decode(chunks, decoder)
    return info.value


def session_error(data, session=None):
    """The close code the session asks for after ``data``."""
    session = session or WebSocketSession()
    session.receive(data)
    assert session.failure is not None, "no protocol error reported"
    return session.failure.close_code


def data_of(events):
    return b"".join(e.payload for e in events if isinstance(e, DataReceived))


def server_frames(data):
    """Frames the server sent (unmasked, as RFC 6455 requires of a server)."""
    return decode([data], FrameDecoder(require_mask=False))


def splits(data):
    """The whole, one byte at a time, and every two-way split."""
    yield [data]
    yield [data[i:i + 1] for i in range(len(data))]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]


# -- masking --------------------------------------------------------------------


@pytest.mark.parametrize("offset", range(8))
def test_apply_mask_matches_per_byte_xor_at_every_offset(offset):
    rng = random.Random(offset)
    for length in list(range(0, 20)) + [63, 64, 65, 1000, 4097]:
        data = bytes(rng.randrange(256) for _ in range(length))
        key = bytes(rng.randrange(256) for _ in range(4))
        assert wsproxy.apply_mask(data, key, offset) == naive_mask(data, key, offset)


def test_apply_mask_in_pieces_equals_whole():
    # How the decoder unmasks a frame that arrives in pieces.
    data = os.urandom(101)
    whole = naive_mask(data, KEY)
    for cut in range(len(data) + 1):
        assert wsproxy.apply_mask(data[:cut], KEY, 0) + wsproxy.apply_mask(data[cut:], KEY, cut) == whole


def test_apply_mask_keeps_leading_zero_bytes():
    # Big-integer XOR must not drop bytes that become zero.
    assert wsproxy.apply_mask(KEY * 3, KEY) == b"\x00" * 12


# -- encoding (server frames) -----------------------------------------------------


@pytest.mark.parametrize("length, header", [
    (0, b"\x82\x00"),
    (125, b"\x82\x7d"),
    (126, b"\x82\x7e\x00\x7e"),
    (65535, b"\x82\x7e\xff\xff"),
    (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
])
def test_server_frame_headers_for_every_length_class(length, header):
    payload = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    frame = wsproxy.encode_frame(Opcode.BINARY, payload)
    assert frame == header + payload  # unmasked, minimal length encoding


def test_encode_frame_masked_and_fin():
    frame = wsproxy.encode_frame(Opcode.TEXT, b"Hello", fin=False, mask_key=KEY)
    assert frame == client_frame(Opcode.TEXT, b"Hello", fin=False)


def test_rfc_examples():
    # RFC 6455 5.7.
    assert wsproxy.encode_frame(Opcode.TEXT, b"Hello") == b"\x81\x05\x48\x65\x6c\x6c\x6f"
    masked = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert wsproxy.encode_frame(Opcode.TEXT, b"Hello", mask_key=KEY) == masked
    assert decode([masked]) == [(Opcode.TEXT, b"Hello", True)]
    assert decode([b"\x01\x03\x48\x65\x6c", b"\x80\x02\x6c\x6f"], FrameDecoder(require_mask=False)) == [
        (Opcode.TEXT, b"Hel", False), (Opcode.CONTINUATION, b"lo", True)]
    assert decode([b"\x89\x05\x48\x65\x6c\x6c\x6f"], FrameDecoder(require_mask=False)) == [
        (Opcode.PING, b"Hello", True)]


# -- decoding: every length class, every way of arriving ------------------------------

LENGTHS = [0, 1, 125, 126, 127, 65535, 65536]


def payload_of(length):
    return bytes((i * 7 + 3) & 0xFF for i in range(length))


@pytest.mark.parametrize("length", LENGTHS)
def test_decode_whole_and_with_trailing_bytes(length):
    frame = client_frame(Opcode.BINARY, payload_of(length))
    assert decode([frame]) == [(Opcode.BINARY, payload_of(length), True)]
    follower = client_frame(Opcode.PING, b"next")
    decoder = FrameDecoder()
    assert decode([frame + follower[:3]], decoder) == [(Opcode.BINARY, payload_of(length), True)]
    assert decoder.buffered == 3
    assert decode([follower[3:]], decoder) == [(Opcode.PING, b"next", True)]


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 300])
def test_decode_one_byte_at_a_time_and_every_split(length):
    frame = client_frame(Opcode.BINARY, payload_of(length))
    for chunks in splits(frame):
        assert decode(chunks) == [(Opcode.BINARY, payload_of(length), True)]


@pytest.mark.parametrize("length", [65535, 65536])
def test_decode_large_frames_at_awkward_splits(length):
    frame = client_frame(Opcode.BINARY, payload_of(length))
    header = len(frame) - length
    for cut in [1, 2, 3, header - 1, header, header + 1, header + 4095, len(frame) - 1]:
        assert decode([frame[:cut], frame[cut:]]) == [(Opcode.BINARY, payload_of(length), True)]
    chunks = [frame[i:i + 997] for i in range(0, len(frame), 997)]
    assert decode(chunks) == [(Opcode.BINARY, payload_of(length), True)]


def test_data_payload_is_handed_out_as_it_arrives():
    # A big frame never has to sit whole in memory.
    payload = payload_of(10000)
    frame = client_frame(Opcode.BINARY, payload)
    decoder = FrameDecoder()
    decoder.feed(frame[:14 + 4000])
    piece = decoder.next_piece()
    assert piece.payload == payload[:4000 + 14 - 8]
    assert not piece.frame_end
    assert decoder.next_piece() is None
    decoder.feed(frame[14 + 4000:])
    rest = decoder.next_piece()
    assert piece.payload + rest.payload == payload
    assert rest.frame_end


def test_control_frames_come_whole():
    frame = client_frame(Opcode.PING, b"0123456789")
    decoder = FrameDecoder()
    for byte in range(len(frame) - 1):
        decoder.feed(frame[byte:byte + 1])
        assert decoder.next_piece() is None
    decoder.feed(frame[-1:])
    piece = decoder.next_piece()
    assert (piece.opcode, piece.payload, piece.frame_end) == (Opcode.PING, b"0123456789", True)


def test_many_frames_in_one_chunk():
    frames = [client_frame(Opcode.BINARY, bytes([i]) * i) for i in range(50)]
    assert decode([b"".join(frames)]) == [(Opcode.BINARY, bytes([i]) * i, True) for i in range(50)]


def test_unmasked_frames_allowed_when_not_required():
    frame = client_frame(Opcode.BINARY, b"abc", key=None)
    assert decode([frame], FrameDecoder(require_mask=False)) == [(Opcode.BINARY, b"abc", True)]


# -- decoding: RFC violations ---------------------------------------------------------


def test_unmasked_client_frame_is_1002():
    assert protocol_error([client_frame(Opcode.BINARY, b"abc", key=None)]).close_code == 1002


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
def test_reserved_bits_are_1002(rsv):
    assert protocol_error([client_frame(Opcode.BINARY, b"x", rsv=rsv)]).close_code == 1002


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcodes_are_1002(opcode):
    assert protocol_error([client_frame(opcode, b"x")]).close_code == 1002


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_fragmented_control_frame_is_1002(opcode):
    assert protocol_error([client_frame(opcode, b"", fin=False)]).close_code == 1002


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_control_frame_over_125_bytes_is_1002(opcode):
    assert protocol_error([client_frame(opcode, b"\x03\xe8" + b"x" * 124)]).close_code == 1002
    assert decode([client_frame(opcode, b"\x03\xe8" + b"x" * 123)])[0][1] == b"\x03\xe8" + b"x" * 123


def test_continuation_without_a_message_is_1002():
    assert protocol_error([client_frame(Opcode.CONTINUATION, b"x")]).close_code == 1002
    # ...also right after a finished message.
    data = client_frame(Opcode.BINARY, b"a") + client_frame(Opcode.CONTINUATION, b"b")
    assert protocol_error([data]).close_code == 1002


@pytest.mark.parametrize("second", [Opcode.BINARY, Opcode.TEXT])
def test_new_data_frame_inside_a_fragmented_message_is_1002(second):
    data = client_frame(Opcode.BINARY, b"a", fin=False) + client_frame(second, b"b")
    assert protocol_error([data]).close_code == 1002


def test_declared_length_with_top_bit_set_is_1002():
    frame = bytes([0x82, 0x80 | 127]) + (1 << 63).to_bytes(8, "big") + KEY
    assert protocol_error([frame]).close_code == 1002


def test_huge_declared_length_is_1009_before_any_payload():
    frame = bytes([0x82, 0x80 | 127]) + ((1 << 63) - 1).to_bytes(8, "big") + KEY
    assert protocol_error([frame]).close_code == 1009


def test_violations_fail_fast_on_the_first_two_bytes():
    # No need to wait for extended length or mask to refuse garbage.
    for frame in [client_frame(Opcode.BINARY, b"x" * 70000, key=None),
                  client_frame(Opcode.BINARY, b"x" * 300, rsv=0x40),
                  client_frame(0x3, b"x" * 300),
                  client_frame(Opcode.CONTINUATION, b"x" * 300)]:
        assert protocol_error([frame[:2]]).close_code == 1002


# -- message size cap ------------------------------------------------------------------


def test_message_at_the_cap_is_accepted():
    assert decode([client_frame(Opcode.BINARY, b"x" * 10)], FrameDecoder(max_message_size=10))[0][1] == b"x" * 10


@pytest.mark.parametrize("length", [11, 126, 65536])
def test_message_over_the_cap_is_1009_at_the_header(length):
    frame = client_frame(Opcode.BINARY, payload_of(length))
    header = len(frame) - length
    decoder = FrameDecoder(max_message_size=10)
    assert protocol_error([frame[:header]], decoder).close_code == 1009


def test_fragmented_message_over_the_cap_is_1009_at_the_fragment_header():
    decoder = FrameDecoder(max_message_size=10)
    first = client_frame(Opcode.BINARY, b"x" * 6, fin=False)
    second = client_frame(Opcode.CONTINUATION, b"y" * 5)
    assert decode([first], decoder) == [(Opcode.BINARY, b"x" * 6, False)]
    assert protocol_error([second[:6]], decoder).close_code == 1009


def test_cap_applies_per_message_not_per_connection():
    decoder = FrameDecoder(max_message_size=10)
    data = b"".join(client_frame(Opcode.BINARY, b"x" * 4, fin=False) + client_frame(Opcode.CONTINUATION, b"y" * 6)
                    for _ in range(5))
    assert len(decode([data], decoder)) == 10


def test_control_frames_do_not_count_towards_the_cap():
    decoder = FrameDecoder(max_message_size=10)
    data = (client_frame(Opcode.BINARY, b"x" * 5, fin=False) + client_frame(Opcode.PING, b"p" * 100)
            + client_frame(Opcode.CONTINUATION, b"y" * 5))
    assert [f[0] for f in decode([data], decoder)] == [Opcode.BINARY, Opcode.PING, Opcode.CONTINUATION]


# -- close payloads ------------------------------------------------------------------


def test_parse_close():
    assert wsproxy.parse_close(b"") == (1005, "")
    assert wsproxy.parse_close(b"\x03\xe8") == (1000, "")
    assert wsproxy.parse_close(b"\x0f\xa0caf\xc3\xa9") == (4000, "caf\u00e9")


def test_encode_close_cuts_the_reason_on_a_character_boundary():
    payload = wsproxy.encode_close(1000, "\u00e9" * 200)
    assert len(payload) <= 125
    code, reason = wsproxy.parse_close(payload)
    assert (code, reason) == (1000, "\u00e9" * 61)
    assert wsproxy.encode_close() == b""


# -- session -----------------------------------------------------------------------


def test_session_relays_binary_and_text_bytes():
    session = WebSocketSession()
    events = session.receive(client_frame(Opcode.BINARY, b"\x00\xffRFB") + client_frame(Opcode.TEXT, "h\u00e9".encode()))
    assert data_of(events) == b"\x00\xffRFB" + "h\u00e9".encode()
    assert session.take_outgoing() == b""


@pytest.mark.parametrize("payload", [b"", b"x", b"\x00" * 125])
def test_ping_gets_a_pong_with_the_same_payload(payload):
    session = WebSocketSession()
    events = session.receive(client_frame(Opcode.PING, payload))
    assert events == [PingReceived(payload)]
    assert session.has_outgoing
    assert server_frames(session.take_outgoing()) == [(Opcode.PONG, payload, True)]
    assert not session.has_outgoing
    assert session.take_outgoing() == b""


def test_a_ping_flood_is_owed_only_the_latest_pongs():
    session = WebSocketSession()
    pings = b"".join(client_frame(Opcode.PING, b"%05d" % n + b"x" * 120) for n in range(10000))
    events = session.receive(pings)
    assert len(events) == 10000
    assert server_frames(session.take_outgoing()) == [
        (Opcode.PONG, b"%05d" % n + b"x" * 120, True) for n in range(10000 - wsproxy.MAX_OWED_PONGS, 10000)]
    assert wsproxy.MAX_OWED_PONGS * (125 + 2) <= 4096
    assert session.take_outgoing() == b""


def test_every_ping_is_answered_while_few_are_owed():
    """Autobahn 2.10: ten pings at once get ten pongs, in order."""
    session = WebSocketSession()
    session.receive(b"".join(client_frame(Opcode.PING, b"payload-%d" % n) for n in range(10)))
    assert server_frames(session.take_outgoing()) == [(Opcode.PONG, b"payload-%d" % n, True) for n in range(10)]


def test_the_pong_owed_goes_out_before_the_close_reply():
    session = WebSocketSession()
    session.receive(client_frame(Opcode.PING, b"p1") + client_frame(Opcode.PING, b"p2")
                    + client_frame(Opcode.CLOSE, b"\x03\xe8"))
    assert server_frames(session.take_outgoing()) == [(Opcode.PONG, b"p1", True), (Opcode.PONG, b"p2", True),
                                                      (Opcode.CLOSE, b"\x03\xe8", True)]
    session = WebSocketSession()
    session.receive(client_frame(Opcode.PING, b"p3"))
    session.send_close(1001, "bye")
    assert server_frames(session.take_outgoing()) == [(Opcode.PONG, b"p3", True), (Opcode.CLOSE, b"\x03\xe9bye", True)]


def test_pong_is_reported_and_not_answered():
    session = WebSocketSession()
    assert session.receive(client_frame(Opcode.PONG, b"hb")) == [PongReceived(b"hb")]
    assert session.take_outgoing() == b""


def test_ping_inside_a_fragmented_message():
    session = WebSocketSession()
    data = (client_frame(Opcode.TEXT, "ab\u20ac"[:2].encode(), fin=False)
            + client_frame(Opcode.PING, b"mid")
            + client_frame(Opcode.CONTINUATION, "\u20ac".encode()))
    for chunks in splits(data):
        session = WebSocketSession()
        events = [e for chunk in chunks for e in session.receive(chunk)]
        assert data_of(events) == "ab\u20ac".encode()
        assert PingReceived(b"mid") in events
        assert server_frames(session.take_outgoing()) == [(Opcode.PONG, b"mid", True)]


def test_text_invalid_utf8_is_1007():
    assert session_error(client_frame(Opcode.TEXT, b"ok\xff")) == 1007
    assert session_error(client_frame(Opcode.TEXT, b"\xed\xa0\x80")) == 1007  # a surrogate
    assert session_error(client_frame(Opcode.TEXT, b"\xc0\xaf")) == 1007      # overlong "/"
    assert session_error(client_frame(Opcode.TEXT, b"\xe2\x82")) == 1007      # cut short at the end


@pytest.mark.parametrize("bad", [b"\xff", b"\xce\xba\xf4\x90", b"\xe0\x80", b"\xc0", b"a\xe2\x28"])
def test_text_invalid_utf8_fails_fast_before_the_message_ends(bad):
    # An unfinished message (FIN clear) is refused on the fragment with the bad byte.
    session = WebSocketSession()
    assert session_error(client_frame(Opcode.TEXT, bad, fin=False), session) == 1007


def test_invalid_utf8_split_inside_a_code_point_across_fragments():
    session = WebSocketSession()
    # U+20AC is e2 82 ac: start it in one fragment, break it in the next.
    assert session.receive(client_frame(Opcode.TEXT, b"x\xe2\x82", fin=False)) == []
    assert session.failure is None
    assert session_error(client_frame(Opcode.CONTINUATION, b"\x28", fin=False), session) == 1007


def test_no_part_of_an_invalid_text_message_reaches_the_target():
    session = WebSocketSession()
    data = (client_frame(Opcode.BINARY, b"ok") + client_frame(Opcode.TEXT, b"valid start ", fin=False)
            + client_frame(Opcode.CONTINUATION, b"bad \xff"))
    events = session.receive(data)
    assert data_of(events) == b"ok"  # what came before the violation is still delivered
    assert session.failure.close_code == 1007


def test_text_message_is_delivered_once_complete():
    session = WebSocketSession()
    assert session.receive(client_frame(Opcode.TEXT, b"hel", fin=False)) == []
    assert session.receive(client_frame(Opcode.CONTINUATION, b"lo")) == [DataReceived(b"hello")]


def test_text_message_over_the_text_cap_is_1009():
    # Text is held until complete, so it has its own, smaller cap.
    cap = wsproxy.MAX_TEXT_MESSAGE
    session = WebSocketSession(max_message_size=cap * 4, require_mask=False)
    first = client_frame(Opcode.TEXT, b"a" * cap, fin=False, key=None)
    assert session.receive(first) == [] and session.failure is None
    assert session_error(client_frame(Opcode.CONTINUATION, b"b", key=None), session) == 1009
    # Binary of the same size streams through.
    session = WebSocketSession(max_message_size=cap * 4, require_mask=False)
    assert len(data_of(session.receive(client_frame(Opcode.BINARY, b"a" * (cap + 1), key=None)))) == cap + 1


def test_valid_utf8_split_anywhere_across_fragments():
    text = "a\u00e9\u20ac\U0001f600z".encode()
    for cut in range(len(text) + 1):
        session = WebSocketSession()
        data = client_frame(Opcode.TEXT, text[:cut], fin=False) + client_frame(Opcode.CONTINUATION, text[cut:])
        assert data_of(session.receive(data)) == text


def test_text_truncated_at_message_end_across_fragments_is_1007():
    session = WebSocketSession()
    session.receive(client_frame(Opcode.TEXT, b"\xf0\x9f", fin=False))
    assert session_error(client_frame(Opcode.CONTINUATION, b"\x98"), session) == 1007


def test_binary_is_not_checked_as_utf8():
    session = WebSocketSession()
    data = client_frame(Opcode.BINARY, b"\xff\xfe", fin=False) + client_frame(Opcode.CONTINUATION, b"\xc0")
    assert data_of(session.receive(data)) == b"\xff\xfe\xc0"


def test_text_check_ends_with_the_message():
    session = WebSocketSession()
    session.receive(client_frame(Opcode.TEXT, b"fine"))
    assert data_of(session.receive(client_frame(Opcode.BINARY, b"\xff"))) == b"\xff"


def test_close_without_payload_is_answered_with_an_empty_close():
    session = WebSocketSession()
    assert session.receive(client_frame(Opcode.CLOSE)) == [CloseReceived(1005, "")]
    assert server_frames(session.take_outgoing()) == [(Opcode.CLOSE, b"", True)]
    assert session.close_received and session.close_sent


def test_close_with_one_byte_is_1002():
    assert session_error(client_frame(Opcode.CLOSE, b"\x03")) == 1002


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2999, 5000, 65535])
def test_invalid_close_codes_are_1002(code):
    assert session_error(client_frame(Opcode.CLOSE, code.to_bytes(2, "big"))) == 1002


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999])
def test_valid_close_codes_are_echoed(code):
    session = WebSocketSession()
    events = session.receive(client_frame(Opcode.CLOSE, code.to_bytes(2, "big") + b"bye"))
    assert events == [CloseReceived(code, "bye")]
    assert server_frames(session.take_outgoing()) == [(Opcode.CLOSE, code.to_bytes(2, "big"), True)]


def test_close_reason_invalid_utf8_is_1007():
    assert session_error(client_frame(Opcode.CLOSE, b"\x03\xe8\xff")) == 1007


def test_frames_after_close_are_ignored():
    session = WebSocketSession()
    data = (client_frame(Opcode.BINARY, b"before") + client_frame(Opcode.CLOSE, b"\x03\xe8")
            + client_frame(Opcode.BINARY, b"after") + client_frame(Opcode.PING, b"p"))
    events = session.receive(data)
    assert data_of(events) == b"before"
    assert events[-1] == CloseReceived(1000, "")
    assert session.receive(client_frame(Opcode.PING, b"q") + b"\xff\xff garbage") == []
    assert session.failure is None
    assert server_frames(session.take_outgoing()) == [(Opcode.CLOSE, b"\x03\xe8", True)]


def test_input_after_a_protocol_error_is_ignored():
    session = WebSocketSession()
    assert session_error(client_frame(Opcode.BINARY, b"x", rsv=0x40), session) == 1002
    assert session.receive(client_frame(Opcode.PING, b"p")) == []
    assert session.take_outgoing() == b""


def test_close_we_started_is_not_sent_twice():
    session = WebSocketSession()
    session.send_close(1001, "going away")
    session.send_close(1000)
    assert server_frames(session.take_outgoing()) == [(Opcode.CLOSE, b"\x03\xe9going away", True)]
    # The peer's reply completes the handshake without a second Close from us,
    # and a ping that races our Close gets no pong.
    events = session.receive(client_frame(Opcode.PING, b"late") + client_frame(Opcode.CLOSE, b"\x03\xe9"))
    assert events == [PingReceived(b"late"), CloseReceived(1001, "")]
    assert session.take_outgoing() == b""


def test_send_ping():
    session = WebSocketSession()
    session.send_ping(b"hb")
    assert server_frames(session.take_outgoing()) == [(Opcode.PING, b"hb", True)]


def test_session_size_cap_is_1009():
    session = WebSocketSession(max_message_size=4)
    assert session_error(client_frame(Opcode.BINARY, b"12345"), session) == 1009


# -- properties -----------------------------------------------------------------------

_payloads = st.binary(max_size=300)
_messages = st.lists(
    st.one_of(
        st.tuples(st.just("binary"), st.lists(_payloads, min_size=1, max_size=4)),
        st.tuples(st.just("text"), st.lists(st.text(max_size=60), min_size=1, max_size=4)),
        st.tuples(st.just("ping"), st.binary(max_size=125)),
    ),
    max_size=8,
)


@settings(max_examples=250, deadline=None)
@given(_messages, st.lists(st.integers(0, 10 ** 6), max_size=10), st.randoms(use_true_random=False))
def test_random_frame_sequences_survive_random_splits(messages, cuts, rng):
    wire = b""
    expected_data = b""
    expected_pings = []
    for kind, parts in messages:
        key = bytes(rng.randrange(256) for _ in range(4))
        if kind == "ping":
            wire += client_frame(Opcode.PING, parts, key=key)
            expected_pings.append(parts)
            continue
        if kind == "text":
            # Fragment boundaries fall inside code points too.
            blob = "".join(parts).encode("utf-8")
            points = sorted(rng.randrange(len(blob) + 1) for _ in range(len(parts) - 1))
            parts = [blob[a:b] for a, b in zip([0] + points, points + [len(blob)])]
        first = Opcode.TEXT if kind == "text" else Opcode.BINARY
        for index, part in enumerate(parts):
            opcode = first if index == 0 else Opcode.CONTINUATION
            wire += client_frame(opcode, part, fin=index == len(parts) - 1, key=key)
            expected_data += part
            if index == 0 and rng.random() < 0.3 and len(parts) > 1:
                wire += client_frame(Opcode.PING, b"in", key=key)
                expected_pings.append(b"in")
    points = sorted({c % (len(wire) + 1) for c in cuts})
    chunks = [wire[a:b] for a, b in zip([0] + points, points + [len(wire)])]
    session = WebSocketSession()
    events = [e for chunk in chunks for e in session.receive(chunk)]
    assert data_of(events) == expected_data
    assert [e.payload for e in events if isinstance(e, PingReceived)] == expected_pings
    # Only the latest MAX_OWED_PONGS pings are answered (RFC 6455 5.5.3).
    assert [f[1] for f in server_frames(session.take_outgoing())] == expected_pings[-wsproxy.MAX_OWED_PONGS:]


_frame_bytes = st.lists(
    st.builds(lambda b0, b1, rest: bytes([b0, b1]) + rest,
              st.sampled_from([0x00, 0x01, 0x02, 0x08, 0x09, 0x0A, 0x80, 0x81, 0x82, 0x88, 0x89, 0x8A, 0xC2, 0x83])
              | st.integers(0, 255),
              st.integers(0, 255), st.binary(max_size=20)),
    max_size=6,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), _frame_bytes), st.booleans(), st.integers(1, 50))
def test_decoder_on_arbitrary_bytes_raises_only_protocol_errors(data, require_mask, step):
    decoder = FrameDecoder(max_message_size=64, require_mask=require_mask)
    try:
        for i in range(0, len(data), step):
            decoder.feed(data[i:i + step])
            while decoder.next_piece() is not None:
                pass
    except ProtocolError as exc:
        assert exc.close_code in (1002, 1009)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), _frame_bytes), st.integers(1, 50))
def test_session_on_arbitrary_bytes_raises_only_protocol_errors(data, step):
    session = WebSocketSession(max_message_size=64, require_mask=False)
    for i in range(0, len(data), step):
        for event in session.receive(data[i:i + step]):
            assert isinstance(event, (DataReceived, PingReceived, PongReceived, CloseReceived))
    if session.failure is not None:
        assert isinstance(session.failure, ProtocolError)
        assert session.failure.close_code in (1002, 1007, 1009)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1200), st.binary(min_size=4, max_size=4), st.integers(0, 7), st.integers(0, 1200))
def test_apply_mask_equals_per_byte_xor_whole_and_in_two_pieces(data, key, offset, cut):
    # Both sides of _MASK_TRANSLATE_MIN, at any key offset, cut anywhere.
    cut = min(cut, len(data))
    expected = naive_mask(data, key, offset)
    assert wsproxy.apply_mask(data, key, offset) == expected
    assert wsproxy.apply_mask(data[:cut], key, offset) + wsproxy.apply_mask(data[cut:], key, offset + cut) == expected


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=130),
                 st.builds(lambda code, rest: code.to_bytes(2, "big") + rest,
                           st.integers(0, 0xFFFF), st.binary(max_size=40)),
                 st.builds(lambda code, reason: code.to_bytes(2, "big") + reason.encode("utf-8"),
                           st.integers(995, 5005), st.text(max_size=40))))
def test_close_payloads_parse_or_raise_1002_or_1007_and_round_trip(payload):
    try:
        code, reason = wsproxy.parse_close(payload)
    except ProtocolError as exc:
        bad_code = len(payload) == 1 or not wsproxy.close_code_is_valid(int.from_bytes(payload[:2], "big"))
        assert exc.close_code == (1002 if bad_code else 1007)
        return
    if not payload:
        assert (code, reason) == (1005, "")
        return
    assert wsproxy.close_code_is_valid(code)
    # What we echo back is the peer's own payload when it fits a control frame.
    echoed = wsproxy.encode_close(code, reason)
    if len(payload) <= 125:
        assert echoed == payload
    else:   # the reason is cut (at a character boundary) to fit a control frame
        assert len(echoed) <= 125 and echoed[:2] == payload[:2]
        assert payload.startswith(echoed)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 5000).filter(wsproxy.close_code_is_valid), st.text(max_size=130))
def test_encode_close_fits_a_control_frame_and_parses_back(code, reason):
    payload = wsproxy.encode_close(code, reason)
    assert len(payload) <= 125
    parsed_code, parsed_reason = wsproxy.parse_close(payload)
    assert parsed_code == code
    if len(reason.encode("utf-8")) <= 123:
        assert parsed_reason == reason
    else:  # cut on a character boundary: at most 3 bytes of one character lost
        assert reason.startswith(parsed_reason) and len(parsed_reason.encode("utf-8")) > 119


_any_frames = st.lists(
    st.builds(lambda opcode, payload, fin, rsv, masked: client_frame(opcode, payload, fin, KEY if masked else None, rsv),
              # Mostly well-formed, so later frames are reached; sometimes not.
              st.sampled_from([0x2, 0x2, 0x2, 0x1, 0x1, 0x0, 0x9, 0xA, 0x8, 0x3, 0xB]),
              st.binary(max_size=140) | st.text(max_size=30).map(lambda t: t.encode("utf-8")),
              st.sampled_from([True, True, True, False]), st.sampled_from([0] * 9 + [0x40, 0x10]),
              st.sampled_from([True] * 9 + [False])),
    max_size=8,
)
_any_frames_list = _any_frames
_any_frames = _any_frames_list.map(b"".join)


def _session_outcome(chunks, require_mask):
    session = WebSocketSession(max_message_size=100, require_mask=require_mask)
    data, others = b"", []
    for chunk in chunks:
        for event in session.receive(chunk):
            if isinstance(event, DataReceived):
                assert 0 < len(event.payload) <= 100
                data += event.payload
            else:
                assert isinstance(event, (PingReceived, PongReceived, CloseReceived))
                others.append(event)
    # Taken once at the end: only the latest ping is owed a pong, so what is
    # owed depends on when it is taken, not on how the input was split.
    outgoing = session.take_outgoing()
    failure = session.failure
    if failure is not None:
        assert isinstance(failure, ProtocolError) and failure.close_code in (1002, 1007, 1009)
    return data, others, outgoing, failure.close_code if failure is not None else None


@settings(max_examples=300, deadline=None)
@given(_any_frames, st.booleans(), st.lists(st.integers(0, 2000), max_size=8))
def test_session_on_arbitrary_frames_is_the_same_whole_or_split(wire, require_mask, cuts):
    # Whatever the frames (bad opcodes, RSV bits, unmasked, oversized, bad
    # UTF-8), the session gives only its events or a typed failure, never
    # replies with more bytes than it got, and the splits change nothing.
    whole = _session_outcome([wire], require_mask)
    points = sorted({c % (len(wire) + 1) for c in cuts})
    split = _session_outcome([wire[a:b] for a, b in zip([0] + points, points + [len(wire)])], require_mask)
    assert split == whole
    assert len(whole[0]) + len(whole[2]) <= len(wire)


@settings(max_examples=300, deadline=None)
@given(_any_frames_list, st.booleans())
def test_one_frame_per_read_is_the_same_as_byte_by_byte(frames, require_mask):
    # One frame per read is what a browser's input events look like, and
    # what the relay's shortcut for a whole small binary frame takes; fed one
    # byte at a time the same frames go through the general decoder.
    wire = b"".join(frames)
    per_frame = _session_outcome(frames, require_mask)
    assert per_frame == _session_outcome([wire[i:i + 1] for i in range(len(wire))], require_mask)


@pytest.mark.parametrize("frames, expected_failure", [
    ([client_frame(0x2, b"x" * 120, True, KEY)], 1009),                            # over the cap of 100
    ([client_frame(0x2, b"ab", False, KEY), client_frame(0x2, b"cd", True, KEY)], 1002),  # inside a message
    ([client_frame(0x2, b"ab", True, KEY)[:3], client_frame(0x2, b"ab", True, KEY)], 1002),  # after a partial one
    ([client_frame(0x2, b"ab", True, KEY, 0x40)], 1002),                            # RSV1
    ([client_frame(0x2, b"ab", True, None)], 1002),                                 # unmasked
    ([client_frame(0x2, b"ab", True, KEY), client_frame(0x2, b"cd", True, KEY)], None),
])
def test_whole_frame_reads_get_every_check(frames, expected_failure):
    # Each read is exactly one frame (or a piece of one), the shortcut's case.
    data, _, _, failure = _session_outcome(frames, require_mask=True)
    assert failure == expected_failure
    if failure is None:
        assert data == b"abcd"
