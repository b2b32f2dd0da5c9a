"""Section 3: the HTTP request head parser, fed as a socket would feed it.

Each head goes in whole, one byte at a time, split at every point, and with
the start of the next bytes (a WebSocket frame, a second request) behind it.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsproxy
from wsproxy import HttpError, find_head_end, parse_request_head

pytestmark = pytest.mark.pure

CHROME_UPGRADE = (
    b"GET /websockify?token=vm1 HTTP/1.1\r\n"
    b"Host: example.test:6080\r\n"
    b"Connection: Upgrade\r\n"
    b"Pragma: no-cache\r\n"
    b"Upgrade: websocket\r\n"
    b"Origin: http://example.test:6080\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Protocol: binary\r\n"
    b"\r\n"
)
# What follows the head on the wire: a masked client frame sent eagerly.
TRAILING = b"\x82\x83\x01\x02\x03\x04abc"


def read_head(chunks):
    """Do what the connection handler does: buffer, look for the end, parse.

    Returns the parsed head and the bytes left over after it.
    """
    buffer = b""
    chunks = list(chunks)
    for index, chunk in enumerate(chunks):
        buffer += chunk
        end = find_head_end(buffer)
        if end >= 0:
            return parse_request_head(buffer[:end]), buffer[end:] + b"".join(chunks[index + 1:])
    return None, buffer


def check_chrome_head(head):
    assert head.method == "GET"
    assert head.target == "/websockify?token=vm1"
    assert head.path == "/websockify"
    assert head.query == "token=vm1"
    assert head.version == (1, 1)
    assert head.get("host") == "example.test:6080"
    assert head.get("sec-websocket-key") == "dGhlIHNhbXBsZSBub25jZQ=="
    assert head.tokens("connection") == ["upgrade"]
    assert len(head.headers) == 8


# -- feeding ----------------------------------------------------------------


def test_whole_head():
    head, rest = read_head([CHROME_UPGRADE])
    check_chrome_head(head)
    assert rest == b""


def test_one_byte_at_a_time():
    chunks = [CHROME_UPGRADE[i:i + 1] for i in range(len(CHROME_UPGRADE))]
    buffer = b""
    for index, chunk in enumerate(chunks[:-1]):
        buffer += chunk
        assert find_head_end(buffer) == -1, "head reported complete after %d bytes" % (index + 1)
    head, rest = read_head(chunks)
    check_chrome_head(head)
    assert rest == b""


@pytest.mark.parametrize("split", range(1, len(CHROME_UPGRADE)))
def test_every_split_point(split):
    head, rest = read_head([CHROME_UPGRADE[:split], CHROME_UPGRADE[split:]])
    check_chrome_head(head)
    assert rest == b""


@pytest.mark.parametrize("split", range(1, len(CHROME_UPGRADE) + len(TRAILING)))
def test_trailing_bytes_are_left_for_the_next_reader(split):
    data = CHROME_UPGRADE + TRAILING
    head, rest = read_head([data[:split], data[split:]])
    check_chrome_head(head)
    assert rest == TRAILING


def test_two_pipelined_requests_come_apart():
    first = b"GET /app.js HTTP/1.1\r\nHost: a\r\n\r\n"
    second = b"GET /style.css HTTP/1.1\r\nHost: a\r\n\r\n"
    head, rest = read_head([first + second])
    assert head.path == "/app.js"
    head2, rest2 = read_head([rest])
    assert head2.path == "/style.css"
    assert rest2 == b""


def test_incomplete_head_is_not_an_error():
    assert find_head_end(b"") == -1
    assert find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n") == -1
    assert find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r") == -1


# -- limits -----------------------------------------------------------------


def test_head_at_the_size_limit_is_accepted():
    start = b"GET / HTTP/1.1\r\nX-Big: "
    padding = wsproxy.MAX_HEAD_BYTES - len(start)
    data = start + b"a" * padding + b"\r\n\r\n"
    end = find_head_end(data)
    assert end == len(data)
    assert parse_request_head(data[:end]).get("x-big") == "a" * padding


def test_head_over_the_size_limit_is_431_before_it_ends():
    data = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * wsproxy.MAX_HEAD_BYTES
    with pytest.raises(HttpError) as info:
        find_head_end(data)
    assert info.value.status == 431


def test_head_just_under_the_size_limit_is_still_waited_for():
    data = b"GET / HTTP/1.1\r\nX: " + b"a" * (wsproxy.MAX_HEAD_BYTES - 19)
    assert len(data) == wsproxy.MAX_HEAD_BYTES
    assert find_head_end(data) == -1


def test_oversized_head_given_whole_is_431():
    data = b"GET / HTTP/1.1\r\nX: " + b"a" * wsproxy.MAX_HEAD_BYTES + b"\r\n\r\n"
    with pytest.raises(HttpError) as info:
        parse_request_head(data)
    assert info.value.status == 431


def test_header_count_limit():
    def head_with(count):
        lines = b"".join(b"X-%d: v\r\n" % i for i in range(count))
        return b"GET / HTTP/1.1\r\n" + lines + b"\r\n"

    assert len(parse_request_head(head_with(wsproxy.MAX_HEADERS)).headers) == wsproxy.MAX_HEADERS
    with pytest.raises(HttpError) as info:
        parse_request_head(head_with(wsproxy.MAX_HEADERS + 1))
    assert info.value.status == 431


# -- what is accepted ---------------------------------------------------------


def test_names_lower_cased_values_trimmed_repeats_kept():
    head = parse_request_head(b"GET / HTTP/1.1\r\nX-Thing:  \tone \t\r\nx-thing: two\r\n\r\n")
    assert head.get("x-thing") == "one"
    assert head.get_all("x-thing") == ["one", "two"]
    assert head.get("X-Thing") is None  # lookups use the lower-cased name
    assert head.get("missing", "dflt") == "dflt"


def test_tokens_split_commas_across_repeated_headers():
    # Firefox sends "Connection: keep-alive, Upgrade".
    head = parse_request_head(b"GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nConnection: ,x ,\r\n\r\n")
    assert head.tokens("connection") == ["keep-alive", "upgrade", "x"]


def test_empty_lines_before_the_request_line_are_ignored():
    head = parse_request_head(b"\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert head.path == "/x"


def test_head_without_the_final_blank_line_parses_the_same():
    with_blank = parse_request_head(CHROME_UPGRADE)
    without = parse_request_head(CHROME_UPGRADE[:-4])
    assert with_blank == without


@pytest.mark.parametrize("target", ["*", "http://example.test/x", "/a?b=c?d"])
def test_other_request_target_forms(target):
    head = parse_request_head(b"OPTIONS " + target.encode() + b" HTTP/1.1\r\n\r\n")
    assert head.target == target


def test_empty_header_value():
    assert parse_request_head(b"GET / HTTP/1.1\r\nX-Empty:\r\n\r\n").get("x-empty") == ""


@pytest.mark.parametrize("version, connection, expected", [
    (b"1.1", b"", True),
    (b"1.1", b"Connection: close\r\n", False),
    (b"1.1", b"Connection: Keep-Alive, Close\r\n", False),
    (b"1.0", b"", False),
    (b"1.0", b"Connection: keep-alive\r\n", True),
])
def test_keep_alive(version, connection, expected):
    head = parse_request_head(b"GET / HTTP/" + version + b"\r\n" + connection + b"\r\n")
    assert head.keep_alive is expected


def test_latin1_header_bytes_survive():
    head = parse_request_head(b"GET / HTTP/1.1\r\nX-Name: caf\xe9\r\n\r\n")
    assert head.get("x-name") == "caf\xe9"


# -- what is refused ----------------------------------------------------------


@pytest.mark.parametrize("data, status", [
    (b"", 400),
    (b"\r\n\r\n", 400),
    (b"GET /\r\n\r\n", 400),                              # HTTP/0.9
    (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
    (b"GET  / HTTP/1.1\r\n\r\n", 400),                    # two spaces
    (b"GET / http/1.1\r\n\r\n", 400),
    (b"G(T / HTTP/1.1\r\n\r\n", 400),                     # method is not a token
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET / HTTP/0.9\r\n\r\n", 505),
    (b"GET relative HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),         # space before the colon
    (b"GET / HTTP/1.1\r\n: a\r\n\r\n", 400),              # empty name
    (b"GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n", 400),  # obsolete line folding
    (b"GET / HTTP/1.1\r\n\tX-A: 1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\nX-B: 2\r\n\r\n", 400),  # blank line inside the head
])
def test_malformed_heads(data, status):
    with pytest.raises(HttpError) as info:
        parse_request_head(data)
    assert info.value.status == status
    assert info.value.reason  # something to tell the client


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\n\r\nHost: a\r\n\r\n",          # request line ending in a bare LF
    b"GET / HTTP/1.1\r\nHost\n: a\r\n\r\n",          # header name ending in a bare LF
])
def test_bare_line_feed_is_not_hidden_in_a_line(data):
    # A regex "$" matches before a final "\n"; such a line must still be refused.
    with pytest.raises(HttpError) as info:
        parse_request_head(data)
    assert info.value.status == 400


# -- query strings and responses ----------------------------------------------


def test_query_param():
    q = "token=vm%201&path=websockify%3Ftoken%3Dx&empty=&token=second"
    assert wsproxy.query_param(q, "token") == "vm 1"
    assert wsproxy.query_param(q, "path") == "websockify?token=x"
    assert wsproxy.query_param(q, "empty") == ""
    assert wsproxy.query_param(q, "missing") is None
    assert wsproxy.query_param("", "token") is None
    assert wsproxy.query_param("token=%ff", "token") is None  # not UTF-8: no token


def parse_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        headers[name.lower()] = value
    return lines[0], headers, body


def test_http_response_has_a_correct_length_and_closes_by_default():
    status, headers, body = parse_response(wsproxy.http_response(404, body=b"not found\n"))
    assert status == "HTTP/1.1 404 Not Found"
    assert body == b"not found\n"
    assert headers["content-length"] == str(len(body))
    assert headers["connection"] == "close"
    assert headers["content-type"].startswith("text/plain")


def test_http_response_head_only_keeps_the_length_but_drops_the_body():
    full = wsproxy.http_response(200, body=b"12345", keep_alive=True)
    head_only = wsproxy.http_response(200, body=b"12345", head_only=True, keep_alive=True)
    assert full == head_only + b"12345"
    _, headers, body = parse_response(head_only)
    assert body == b""
    assert headers["content-length"] == "5"
    assert headers["connection"] == "keep-alive"


def test_http_response_given_headers_win():
    _, headers, _ = parse_response(wsproxy.http_response(
        200, [("Content-Type", "text/javascript"), ("Content-Length", "99")], head_only=True))
    assert headers["content-type"] == "text/javascript"
    assert headers["content-length"] == "99"


def test_error_response_carries_the_reason_and_headers():
    error = HttpError(426, "speak version 13", [("Sec-WebSocket-Version", "13")])
    status, headers, body = parse_response(wsproxy.error_response(error))
    assert status.startswith("HTTP/1.1 426 ")
    assert headers["sec-websocket-version"] == "13"
    assert body == b"speak version 13\n"


# -- properties ---------------------------------------------------------------

# Bytes that matter to the parser, so random heads reach past the first check.
_HEAD_ALPHABET = st.sampled_from([b"\r\n", b"\r", b"\n", b" ", b":", b"\t", b"\x00", b"GET", b"/",
                                  b"HTTP/1.1", b"HTTP/", b"1", b".", b"a", b"\xff", b",", b"?"])


def _check_only_handshake_errors(data):
    try:
        end = find_head_end(data)
    except HttpError as exc:
        assert exc.status == 431
        return
    try:
        head = parse_request_head(data[:end] if end >= 0 else data)
    except HttpError as exc:
        assert exc.status in (400, 431, 505)
        return
    assert head.target.startswith("/") or head.target == "*" or "://" in head.target
    head.keep_alive, head.path, head.query, head.tokens("connection")  # noqa: B018


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_head_or_a_handshake_error(data):
    _check_only_handshake_errors(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(_HEAD_ALPHABET, max_size=40).map(b"".join))
def test_near_miss_heads_give_a_head_or_a_handshake_error(data):
    _check_only_handshake_errors(data)
    _check_only_handshake_errors(b"GET / HTTP/1.1\r\n" + data + b"\r\n\r\n")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, len(CHROME_UPGRADE) + len(TRAILING)), max_size=8))
def test_any_chunking_gives_the_same_head(cuts):
    data = CHROME_UPGRADE + TRAILING
    points = [0] + sorted(cuts) + [len(data)]
    head, rest = read_head([data[a:b] for a, b in zip(points, points[1:])])
    check_chrome_head(head)
    assert rest == TRAILING


# -- empty lines before the request line (RFC 9112 2.2) ---------------------------

LEADING = b"\r\n\r\n"


def test_leading_empty_lines_do_not_end_the_head():
    # The server must wait for the request line, not cut a "head" at the
    # first blank line (which the parser then refused as "empty request").
    data = LEADING + CHROME_UPGRADE
    assert find_head_end(data) == len(data)
    head, rest = read_head([data + TRAILING])
    check_chrome_head(head)
    assert rest == TRAILING


@pytest.mark.parametrize("data", [b"\r\n", b"\r\n\r\n", b"\r\n\r\n\r\n", b"\n\n", b"\r\n\r\nGET / HTTP/1.1\r\n"])
def test_nothing_but_empty_lines_is_no_head_yet(data):
    assert find_head_end(data) == -1


@pytest.mark.parametrize("split", range(1, len(LEADING) + len(CHROME_UPGRADE)))
def test_leading_empty_lines_at_every_split_point(split):
    data = LEADING + CHROME_UPGRADE + TRAILING
    head, rest = read_head([data[:split], data[split:]])
    check_chrome_head(head)
    assert rest == TRAILING


def test_leading_empty_lines_count_towards_the_size_limit():
    with pytest.raises(HttpError) as info:
        find_head_end(b"\r\n" * (wsproxy.MAX_HEAD_BYTES // 2 + 1))
    assert info.value.status == 431


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"\r\n", b"\n", b"\r"]), max_size=20).map(b"".join),
       st.lists(st.integers(0, 400), max_size=4))
def test_server_and_parser_agree_on_leading_empty_lines(prefix, cuts):
    data = prefix + CHROME_UPGRADE + TRAILING
    points = [0] + sorted(min(c, len(data)) for c in cuts) + [len(data)]
    head, rest = read_head([data[a:b] for a, b in zip(points, points[1:])])
    check_chrome_head(head)
    assert rest == TRAILING


# -- loggable: peer text in a log line --------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("/vnc.html", "/vnc.html"),
    ("client closed: bye\n2024-01-01 INFO forged", "client closed: bye\\x0a2024-01-01 INFO forged"),
    ("/\x1b[2J\x1b[31mred\x07", "/\\x1b[2J\\x1b[31mred\\x07"),
    ("a\r\tb\x00\x7f\x85\xa0", "a\\x0d\\x09b\\x00\\x7f\\x85\\xa0"),
    ("caf\xe9 \u65e5\u672c", "caf\xe9 \u65e5\u672c"),            # printable non-ASCII stays
    ("x\u2028y\u202ez", "x\\u2028y\\u202ez"),                    # line separator, bidi override
    ("\U000e0001", "\\U000e0001"),
    ("C:\\x0a", "C:\\\\x0a"),                                    # a literal backslash is doubled
    ("", ""),
])
def test_loggable(text, expected):
    assert wsproxy.loggable(text) == expected


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_loggable_is_one_printable_line_and_reversible(text):
    out = wsproxy.loggable(text)
    assert out.isprintable()  # no line break of any kind, no escape sequence
    # Nothing is lost or ambiguous: undoing the escapes gives the text back.
    assert out.encode("ascii", "backslashreplace").decode("unicode_escape") == text


# -- client_address: X-Forwarded-For behind trusted proxies ------------------------


def nets(*items):
    import ipaddress
    return [ipaddress.ip_network(item) for item in items]


LOCAL = nets("127.0.0.1")
CHAIN = nets("127.0.0.1", "10.0.0.0/8", "fd00::/8")
PEER = "127.0.0.1:40000"


@pytest.mark.parametrize("peer, forwarded, trusted, expected", [
    # No --trusted-proxy, or a peer outside it: the header is the client's claim.
    (PEER, ["203.0.113.9"], [], PEER),
    ("192.0.2.1:5000", ["203.0.113.9"], LOCAL, "192.0.2.1:5000"),
    ("unix", ["203.0.113.9"], LOCAL, "unix"),
    (PEER, [], LOCAL, PEER),
    # HAProxy's "option forwardfor" adds its own header after the client's.
    (PEER, ["6.6.6.6", "203.0.113.9"], LOCAL, "203.0.113.9"),
    (PEER, ["6.6.6.6, 7.7.7.7", "203.0.113.9"], LOCAL, "203.0.113.9"),
    # nginx's $proxy_add_x_forwarded_for appends to the client's header.
    (PEER, ["6.6.6.6, 203.0.113.9"], LOCAL, "203.0.113.9"),
    # Through a chain of trusted proxies, however the entries are split.
    (PEER, ["6.6.6.6, 203.0.113.9, 10.1.2.3"], CHAIN, "203.0.113.9"),
    (PEER, ["6.6.6.6", "203.0.113.9", "10.1.2.3", "fd00::7"], CHAIN, "203.0.113.9"),
    (PEER, ["6.6.6.6, 203.0.113.9", "10.1.2.3"], CHAIN, "203.0.113.9"),
    # A proxy's address outside --trusted-proxy is where belief stops.
    (PEER, ["6.6.6.6, 203.0.113.9, 10.1.2.3"], LOCAL, "10.1.2.3"),
    # Not an address: the walk stops at the last address vouched for.
    (PEER, ["\x1b[2Jadmin"], LOCAL, PEER),
    (PEER, ["203.0.113.9, evil"], LOCAL, PEER),
    (PEER, ["203.0.113.9, evil, 10.1.2.3"], CHAIN, "10.1.2.3"),
    (PEER, ["203.0.113.9:80"], LOCAL, PEER),         # ports, brackets, zones: not plain addresses
    (PEER, ["[2001:db8::1]"], LOCAL, PEER),
    (PEER, ["fe80::1%eth0"], LOCAL, PEER),
    (PEER, ["unknown"], LOCAL, PEER),
    # Everyone trusted: the left-most is as far as we can see.
    (PEER, ["10.9.9.9, 10.1.2.3"], CHAIN, "10.9.9.9"),
    # Empty list elements are skipped; IPv6; IPv4-mapped IPv6 is IPv4.
    (PEER, ["203.0.113.9,, ", ""], LOCAL, "203.0.113.9"),
    ("[::1]:40000", ["2001:db8::1"], nets("::1"), "2001:db8::1"),
    (PEER, ["203.0.113.9, ::ffff:10.1.2.3"], CHAIN, "203.0.113.9"),
    (PEER, [" 2001:DB8::0001 "], LOCAL, "2001:db8::1"),
])
def test_client_address(peer, forwarded, trusted, expected):
    assert wsproxy.client_address(peer, forwarded, trusted) == expected


_TRUSTED_HOPS = st.sampled_from(["127.0.0.1", "10.0.0.1", "10.200.3.4", "fd00::1", "::ffff:10.0.0.9"])
_CLIENTS = st.sampled_from(["203.0.113.9", "198.51.100.7", "2001:db8::5", "8.8.8.8"])
_CLAIMS = st.lists(st.one_of(_TRUSTED_HOPS, _CLIENTS, st.text(max_size=12)), max_size=6)


def split_into_headers(entries, cuts):
    """The same list of entries as one or more header values."""
    points = sorted({min(c, len(entries)) for c in cuts} | {0, len(entries)})
    return [", ".join(entries[a:b]) for a, b in zip(points, points[1:]) if b > a] or [""]


@settings(max_examples=500, deadline=None)
@given(_CLAIMS, _CLIENTS, st.lists(_TRUSTED_HOPS, max_size=4), st.lists(st.integers(0, 12), max_size=4))
def test_client_claims_never_outrank_what_trusted_proxies_saw(claims, client, hops, cuts):
    # The client sends any X-Forwarded-For it likes (claims); the first
    # trusted proxy appends the client's real address, each further trusted
    # proxy the one before it.  Whatever the claims, however the entries are
    # spread over headers, the client is logged as its real address.
    claims = [c.replace(",", "") for c in claims]
    forwarded = split_into_headers(claims + [client] + hops, cuts)
    assert wsproxy.client_address(PEER, forwarded, CHAIN) == client


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=4), st.sampled_from([PEER, "192.0.2.1:5000", "unix", "[::1]:1"]))
def test_client_address_is_the_peer_or_a_plain_address(forwarded, peer):
    import ipaddress
    result = wsproxy.client_address(peer, forwarded, CHAIN)
    if result != peer:
        ipaddress.ip_address(result)  # a valid address, never the claim's raw text
        assert peer == PEER
