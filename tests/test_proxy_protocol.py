"""The PROXY protocol header parser (issue 14), without sockets.

HAProxy's doc/proxy-protocol.txt: version 1 is one text line of at most 107
bytes, version 2 a 16-byte binary part plus a length.  The parser is fed the
whole header, one byte at a time, at every split, and with the request after
it; a reader guided by proxy_header_needs() never takes a byte of that request.
"""

import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsproxy
from wsproxy import ProxyHeaderError, parse_proxy_header, proxy_header_needs

pytestmark = pytest.mark.pure

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
REQUEST = b"GET /websockify HTTP/1.1\r\nHost: x\r\n\r\n"
TLS_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"


def v2(command=1, fam=0x11, body=b"", version=2):
    return SIG + bytes([(version << 4) | command, fam]) + struct.pack("!H", len(body)) + body


def v2_inet(src="127.0.0.2", dst="127.0.0.1", sport=40000, dport=6080, tlvs=b""):
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport) + tlvs
    return v2(body=body)


def v2_inet6(src="2001:db8::7", dst="2001:db8::1", sport=1, dport=443, tlvs=b""):
    body = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + struct.pack("!HH", sport, dport) + tlvs)
    return v2(fam=0x21, body=body)


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


V1_TCP4 = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
V1_TCP6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n"
V1_LONGEST = (b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
              b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n")

GOOD = [
    (V1_TCP4, ("192.168.0.1", 56324)),
    (V1_TCP6, ("2001:db8::7", 65535)),
    (b"PROXY UNKNOWN\r\n", None),
    (V1_LONGEST, None),
    (v2_inet(), ("127.0.0.2", 40000)),
    (v2_inet6(), ("2001:db8::7", 1)),
    (v2_inet(tlvs=tlv(0x01, b"http/1.1") + tlv(0x04, b"") + tlv(0x20, b"\x00" * 300)), ("127.0.0.2", 40000)),
    (v2(command=0, fam=0x00), None),                       # LOCAL (HAProxy's health checks)
    (v2(command=0, fam=0x11, body=b"\x01" * 12), None),    # LOCAL with an address: ignored
    (v2(command=1, fam=0x00, body=b"junk"), None),         # PROXY, UNSPEC: the socket's address
    (v2(command=1, fam=0x31, body=b"\x00" * 216), None),   # AF_UNIX: no IP to use
    (v2(command=1, fam=0x12, body=b"\x00" * 12), None),    # UDP over IPv4: not ours, fall back
]


def read_like_the_handler(stream: bytes, chunk_sizes):
    """What a reader guided by proxy_header_needs takes from ``stream``,
    when the network delivers it in ``chunk_sizes`` pieces: (header, taken)."""
    taken = b""
    arrived = 0
    sizes = iter(chunk_sizes)
    while True:
        needs = proxy_header_needs(taken)
        if needs == 0:
            return parse_proxy_header(taken), taken
        arrived = max(arrived, len(taken) + 1)
        arrived = min(len(stream), max(arrived, len(taken) + next(sizes, len(stream))))
        ahead = stream[len(taken):arrived]
        if not ahead:
            raise EOFError
        take = len(ahead)
        if proxy_header_needs(taken + ahead) == 0:
            take = parse_proxy_header(taken + ahead).length - len(taken)
        taken += ahead[:take]


@pytest.mark.parametrize("header,source", GOOD)
def test_whole_header_then_request(header, source):
    parsed = parse_proxy_header(header + REQUEST)
    assert parsed.length == len(header)
    assert parsed.source == source
    assert proxy_header_needs(header) == 0


@pytest.mark.parametrize("header,source", GOOD)
def test_every_split_and_byte_at_a_time_never_reads_past_the_header(header, source):
    stream = header + REQUEST
    for sizes in ([1] * len(stream), [len(stream)], [3, 5, 7, 11] * 40):
        parsed, taken = read_like_the_handler(stream, sizes)
        assert taken == header and parsed.source == source
    for split in range(len(header)):
        assert proxy_header_needs(header[:split]) > 0
        # Reading what it asks for never reaches the request.
        assert split + proxy_header_needs(header[:split]) <= len(header)


def test_the_commands_and_versions_are_reported():
    assert parse_proxy_header(V1_TCP4).version == 1
    assert parse_proxy_header(V1_TCP4).destination == ("192.168.0.11", 443)
    assert parse_proxy_header(b"PROXY UNKNOWN whatever is here\r\n").command == "UNKNOWN"
    local = parse_proxy_header(v2(command=0, fam=0x00))
    assert (local.version, local.command, local.source) == (2, "LOCAL", None)
    assert parse_proxy_header(v2_inet()).destination == ("127.0.0.1", 6080)


def test_v2_ipv4_mapped_source_is_kept_as_sent():
    header = v2_inet6(src="::ffff:10.1.2.3")
    assert parse_proxy_header(header).source == ("::ffff:10.1.2.3", 1)


BAD = [
    (REQUEST, "no PROXY protocol header"),
    (TLS_HELLO, "no PROXY protocol header"),
    (b"PUT / HTTP/1.1\r\n\r\n", "no PROXY protocol header"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r\n", "port"),                 # lone LF
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "port"),
    (b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "IPv4"),                  # leading zero: octal?
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "port"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "port"),
    (b"PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n", "IPv4"),
    (b"PROXY TCP4 ::1 ::1 1 2\r\n", "IPv4"),
    (b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "IPv6"),
    (b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "malformed"),             # two spaces
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "malformed"),
    (b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "malformed"),
    (b"PROXY\r\n", "malformed"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \xff\r\n", "ASCII"),
    (b"PROXY UNKNOWN " + b"x" * 200, "without CRLF"),
    (v2(version=1), "version 1"),
    (v2(command=2), "unknown command"),
    (v2(fam=0x41, body=b"\x00" * 12), "family"),
    (v2(fam=0x13, body=b"\x00" * 12), "family"),
    (v2(fam=0x11, body=b"\x00" * 11), "shorter"),
    (v2(fam=0x21, body=b"\x00" * 12), "shorter"),
    (v2_inet(tlvs=b"\x01\x00"), "TLV header cut short"),
    (v2_inet(tlvs=tlv(0x02, b"host")[:-1]), "past the end"),
    (v2_inet(tlvs=b"\x05\xff\xff" + b"x" * 10), "past the end"),
]


@pytest.mark.parametrize("data,why", BAD)
def test_invalid_headers_are_refused_with_a_reason(data, why):
    with pytest.raises(ProxyHeaderError, match=why):
        needs = proxy_header_needs(data)
        if needs:   # complete it with the request, as a peer would send it
            data += REQUEST
        parse_proxy_header(data)


@pytest.mark.parametrize("start", [b"G", b"\x16", b"\r\n\r\n\x01", b"PROXZ", b"PR0"])
def test_a_peer_without_a_header_is_refused_at_its_first_wrong_byte(start):
    with pytest.raises(ProxyHeaderError):
        proxy_header_needs(start)


def test_v1_gives_up_at_107_bytes_without_crlf():
    line = b"PROXY UNKNOWN " + b"a" * 92
    assert len(line) == wsproxy.PROXY_V1_MAX - 1
    assert proxy_header_needs(line) == 2   # CR and LF would make it the longest line
    with pytest.raises(ProxyHeaderError, match="107"):
        proxy_header_needs(line + b"a")
    assert parse_proxy_header(line[:-1] + b"\r\n").length == wsproxy.PROXY_V1_MAX


def test_v2_needs_the_length_it_announces_and_no_more():
    header = v2_inet(tlvs=tlv(0x30, b"n" * 1000))
    assert proxy_header_needs(header[:16]) == len(header) - 16
    assert proxy_header_needs(header[:-1]) == 1
    with pytest.raises(ProxyHeaderError, match="incomplete"):
        parse_proxy_header(header[:-1])
    biggest = v2(command=0, fam=0, body=b"\x00" * 65535)
    assert parse_proxy_header(biggest).length == 16 + 65535


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_header_more_needed_or_a_typed_error(data):
    try:
        needs = proxy_header_needs(data)
        if needs == 0:
            assert parse_proxy_header(data).length <= len(data)
    except ProxyHeaderError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([h for h, _ in GOOD]), st.binary(max_size=64),
       st.lists(st.integers(min_value=1, max_value=40), max_size=50))
def test_any_delivery_takes_exactly_the_header(header, rest, sizes):
    parsed, taken = read_like_the_handler(header + rest, sizes)
    assert taken == header and parsed.length == len(header)


def test_who_may_send_a_header():
    import ipaddress
    trusted = [ipaddress.ip_network("10.0.0.0/8")]
    assert wsproxy.proxy_sender_allowed(("192.0.2.1", 5), [])         # no --trusted-proxy: anyone
    assert wsproxy.proxy_sender_allowed(("10.1.2.3", 5), trusted)
    assert not wsproxy.proxy_sender_allowed(("192.0.2.1", 5), trusted)
    assert wsproxy.proxy_sender_allowed(("::ffff:10.1.2.3", 5, 0, 0), trusted)
    assert wsproxy.proxy_sender_allowed("", trusted)                   # a Unix socket peer


@pytest.mark.parametrize("client,key", [("127.0.0.2:40000", "127.0.0.2"), ("[2001:db8::7]:1", "2001:db8::7"),
                                        ("2001:db8::7", "2001:db8::7"), ("10.0.0.1", "10.0.0.1"),
                                        ("unix", "unix")])
def test_limits_count_by_host_without_port(client, key):
    assert wsproxy.address_key(client) == key
