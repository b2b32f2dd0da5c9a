"""Protocol numbers held to the specifications' own literal values.

Most tests compare what wsproxy sends with its own names (Opcode.BINARY,
CloseCode.ABNORMAL), so a wrong number behind a name passes them all: a
mutation tester changed CloseCode.ABNORMAL to 1007 and nothing failed.  Here
every number is written out as the spec gives it: RFC 6455 5.2 (opcodes),
5.5 (control frames), 7.4 (close codes), RFC 9110 (HTTP statuses), and
RFC 6143 with rfbproto.rst for the RFB numbers the demo target uses.
"""

import pytest

import wsproxy
from wsproxy import CloseCode, Opcode

pytestmark = pytest.mark.pure


def test_websocket_opcodes_are_rfc_6455_section_5_2():
    assert {op.name: int(op) for op in Opcode} == {
        "CONTINUATION": 0x0, "TEXT": 0x1, "BINARY": 0x2, "CLOSE": 0x8, "PING": 0x9, "PONG": 0xA}


def test_close_codes_are_rfc_6455_section_7_4_1():
    assert {code.name: int(code) for code in CloseCode} == {
        "NORMAL": 1000, "GOING_AWAY": 1001, "PROTOCOL_ERROR": 1002, "UNSUPPORTED_DATA": 1003,
        "NO_STATUS": 1005, "ABNORMAL": 1006, "INVALID_DATA": 1007, "POLICY_VIOLATION": 1008,
        "MESSAGE_TOO_BIG": 1009, "MANDATORY_EXTENSION": 1010, "INTERNAL_ERROR": 1011}


def test_close_codes_a_peer_may_send_are_rfc_6455_section_7_4():
    # 1004-1006 and 1015 reserved, 1012-2999 for the RFC's future use, 3000-4999 registered or private.
    allowed = {code for code in range(70000) if wsproxy.close_code_is_valid(code)}
    assert allowed == set(range(1000, 1004)) | set(range(1007, 1012)) | set(range(3000, 5000))


def test_control_frames_carry_at_most_125_bytes():
    assert wsproxy.MAX_CONTROL_PAYLOAD == 125
    assert len(wsproxy.encode_close(1000, "x" * 500)) == 125


@pytest.mark.parametrize("code, wire", [
    (1000, b"\x03\xe8"), (1001, b"\x03\xe9"), (1002, b"\x03\xea"), (1003, b"\x03\xeb"), (1007, b"\x03\xef"),
    (1008, b"\x03\xf0"), (1009, b"\x03\xf1"), (1010, b"\x03\xf2"), (1011, b"\x03\xf3"),
])
def test_close_payloads_on_the_wire(code, wire):
    assert wsproxy.encode_close(CloseCode(code), "") == wire
    assert wsproxy.parse_close(wire + b"bye") == (code, "bye")
    assert wsproxy.parse_close(b"") == (1005, "")


@pytest.mark.parametrize("opcode, first_byte", [
    (Opcode.CONTINUATION, 0x80), (Opcode.TEXT, 0x81), (Opcode.BINARY, 0x82),
    (Opcode.CLOSE, 0x88), (Opcode.PING, 0x89), (Opcode.PONG, 0x8A),
])
def test_frame_first_byte_is_fin_and_opcode(opcode, first_byte):
    assert wsproxy.encode_frame(opcode, b"ab") == bytes((first_byte, 2)) + b"ab"
    assert wsproxy.encode_frame(opcode, b"", fin=False)[0] == first_byte & 0x7F


@pytest.mark.parametrize("length, header", [
    (0, b"\x82\x00"), (125, b"\x82\x7d"), (126, b"\x82\x7e\x00\x7e"), (65535, b"\x82\x7e\xff\xff"),
    (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
])
def test_payload_length_encodings_are_rfc_6455_section_5_2(length, header):
    assert wsproxy.frame_header(Opcode.BINARY, length) == header
    assert wsproxy.frame_header(Opcode.BINARY, length, mask_key=b"abcd") == (
        bytes((header[0], header[1] | 0x80)) + header[2:] + b"abcd")


def test_prebuilt_small_binary_headers_agree_with_frame_header():
    # The relay sends _SMALL_BINARY_HEADERS[n] for reads under 126 bytes and
    # frame_header() above: the two must be the same bytes wherever the table reaches.
    table = wsproxy._SMALL_BINARY_HEADERS
    assert len(table) == 126
    for length, header in enumerate(table):
        assert header == wsproxy.frame_header(Opcode.BINARY, length) == bytes((0x82, length))


def test_a_server_session_refuses_unmasked_client_frames_by_default():
    # RFC 6455 5.1: a server MUST close on an unmasked frame from the client, with 1002.
    session = wsproxy.WebSocketSession()
    assert session.receive(b"\x82\x02hi") == []
    assert session.failure is not None and session.failure.close_code == 1002
    masked = wsproxy.WebSocketSession().receive(wsproxy.encode_frame(Opcode.BINARY, b"hi", mask_key=b"abcd"))
    assert [event.payload for event in masked] == [b"hi"]


def test_http_status_lines_are_rfc_9110_numbers_and_phrases():
    assert wsproxy.HTTP_REASONS == {
        101: "Switching Protocols", 200: "OK", 304: "Not Modified", 400: "Bad Request",
        401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
        408: "Request Timeout", 426: "Upgrade Required", 429: "Too Many Requests",
        431: "Request Header Fields Too Large", 502: "Bad Gateway", 503: "Service Unavailable",
        505: "HTTP Version Not Supported"}   # 429 and 431 are RFC 6585's


# -- RFB (RFC 6143, rfbproto.rst) -------------------------------------------------------


def test_rfb_encoding_numbers():
    assert wsproxy.RFB_RAW == 0                         # RFC 6143 7.7.1
    assert wsproxy.RFB_ZRLE == 16                       # RFC 6143 7.7.6
    assert wsproxy.RFB_DESKTOP_SIZE == -223             # RFC 6143 7.8.2
    assert wsproxy.RFB_EXTENDED_DESKTOP_SIZE == -308    # rfbproto.rst "ExtendedDesktopSize"


def test_rfb_extended_clipboard_numbers():
    # rfbproto.rst "Extended Clipboard Pseudo-Encoding": 0xc0a1e5ce, sent as an S32.
    assert wsproxy.RFB_EXTENDED_CLIPBOARD == -1063131698
    assert wsproxy.RFB_EXTENDED_CLIPBOARD.to_bytes(4, "big", signed=True) == bytes.fromhex("c0a1e5ce")
    # Flags: bit 0 text; bits 24-28 caps, request, peek, notify, provide.
    assert wsproxy.RFB_CLIP_TEXT == 0x00000001
    assert (wsproxy.RFB_CLIP_CAPS, wsproxy.RFB_CLIP_REQUEST, wsproxy.RFB_CLIP_PEEK, wsproxy.RFB_CLIP_NOTIFY,
            wsproxy.RFB_CLIP_PROVIDE) == (0x01000000, 0x02000000, 0x04000000, 0x08000000, 0x10000000)
    # Without caps from the client: text, rtf, html; request, notify, provide; 20 MiB of text.
    assert wsproxy.RFB_CLIP_CLIENT_DEFAULT == (0x1A000007, 20 * 1024 * 1024)


def test_rfb_pixel_format_is_16_bytes_of_rfc_6143_section_7_4():
    assert wsproxy._PIXEL_FORMAT.size == 16
    # bits-per-pixel, depth, big-endian, true-colour, red/green/blue max, red/green/blue shift
    assert wsproxy.RFB_NATIVE_FORMAT == (32, 24, 0, 1, 255, 255, 255, 0, 8, 16)
    packed = wsproxy._PIXEL_FORMAT.pack(*wsproxy.RFB_NATIVE_FORMAT)
    assert packed == bytes((32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0))
