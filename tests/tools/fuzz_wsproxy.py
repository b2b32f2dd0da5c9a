"""Coverage-guided fuzzing of wsproxy's pure parsers with atheris (issue 6 item 2).

A development tool, not part of the test suite (no test_ prefix, so pytest
does not collect it; atheris is not a dependency of wsproxy).  Needs
``pip install atheris``.  Run one target per process:

    python3 tests/tools/fuzz_wsproxy.py TARGET [libFuzzer flags] [CORPUS_DIR ...]

    python3 tests/tools/fuzz_wsproxy.py --seeds /tmp/wsproxy-corpus
    python3 tests/tools/fuzz_wsproxy.py frames -max_total_time=600 -timeout=5 \\
        -rss_limit_mb=512 -malloc_limit_mb=256 /tmp/wsproxy-corpus/frames
    python3 tests/tools/fuzz_wsproxy.py head -max_len=17000 -max_total_time=600 -timeout=5 \\
        -rss_limit_mb=512 -malloc_limit_mb=256 /tmp/wsproxy-corpus/head

(-max_len=17000 lets head inputs pass MAX_HEAD_BYTES, so the 431 path is
reached.)  The corpus directories grow as the fuzzer finds new coverage; keep
them out of the repository.

TARGET is one of: frames, head, close, tokens, static, date, forwarded,
loggable, args.  ``--list``
prints them; ``--seeds DIR`` writes a small seed corpus to DIR/TARGET.
A crash (an exception other than the typed errors, or a broken invariant)
makes libFuzzer write ``crash-*`` into the current directory; replay one
with ``python3 tests/tools/fuzz_wsproxy.py TARGET crash-FILE``.

Every target allows only the errors its parser documents: HttpError
for the head and static paths, ProtocolError for frames and close payloads,
nothing for token text, dates, X-Forwarded-For or log text, ConfigError or
SystemExit(2) for the command line.
Beyond that the targets check invariants: the decoder never holds more
bytes than it was fed and never hands out a piece larger than the message
cap; what the decoder and session decode re-encodes to the same payloads;
the session never queues more reply bytes than it received; the head's
end is found where the parser finds a request (empty lines before it
included); X-Forwarded-For gives the peer or a plain address, whatever a
client claims left of what a trusted proxy saw; a log string is one
printable line that undoes to the original.  -timeout
catches a loop that never ends, -rss_limit_mb / -malloc_limit_mb an
allocation beyond the configured limits.
"""

import contextlib
import io
import os
import sys
import tempfile

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

with atheris.instrument_imports(include=["wsproxy"]):
    import wsproxy

# The decoder compacts its buffer once more than RELAY_CHUNK (64 KiB) is
# consumed; a small value here lets inputs of a few KiB reach that path.
wsproxy.RELAY_CHUNK = 256

from wsproxy import (CloseReceived, ConfigError, DataReceived, FrameDecoder, HttpError, Opcode,
                     PingReceived, PongReceived, ProtocolError, WebSocketSession)


# Each input starts with a fixed prefix the target reads (flags, cut points),
# then the bytes under test: a seed can be written by hand.
SPLIT_BYTES = 17


def _split(seed, data_len):
    """Up to 8 cut points from SPLIT_BYTES bytes: a count, then 2 bytes each."""
    count = seed[0] % 9 if seed else 0
    return sorted({int.from_bytes(seed[1 + 2 * i:3 + 2 * i], "little") % (data_len + 1) for i in range(count)})


def _chunks(data, points):
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)])]


def _naive_mask(data, key):
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


# -- frames: FrameDecoder and WebSocketSession ------------------------------------------


def _decode_frames(chunks, max_size, require_mask, fed_total):
    """Feed chunks to a FrameDecoder; return whole frames decoded before any error."""
    decoder = FrameDecoder(max_message_size=max_size, require_mask=require_mask)
    frames = []
    current = None
    fed = 0
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            fed += len(chunk)
            if decoder.buffered > fed:
                raise AssertionError("decoder holds %d bytes after being fed %d" % (decoder.buffered, fed))
            while True:
                piece = decoder.next_piece()
                if piece is None:
                    break
                if not isinstance(piece.payload, bytes):
                    raise AssertionError("piece payload is %r, not bytes" % type(piece.payload))
                if len(piece.payload) > max_size and piece.opcode < 0x8:
                    raise AssertionError("data piece of %d bytes over the %d cap" % (len(piece.payload), max_size))
                if piece.opcode >= 0x8 and (len(piece.payload) > 125 or not piece.frame_end):
                    raise AssertionError("control frame piece of %d bytes, frame_end=%r"
                                         % (len(piece.payload), piece.frame_end))
                if current is None:
                    current = [piece.opcode, piece.fin, bytearray()]
                elif piece.opcode != current[0] or piece.fin != current[1]:
                    raise AssertionError("pieces of one frame disagree on opcode or FIN")
                current[2] += piece.payload
                if piece.frame_end:
                    frames.append((current[0], current[1], bytes(current[2])))
                    current = None
            if decoder.buffered > fed_total:
                raise AssertionError("decoder holds more than the whole input")
    except ProtocolError as exc:
        if exc.close_code not in (1002, 1009):
            raise AssertionError("decoder raised close code %d" % exc.close_code)
    # Message sizes: the data frames of each message sum to at most the cap.
    size = 0
    for opcode, fin, payload in frames:
        if opcode < 0x8:
            size = len(payload) if opcode != Opcode.CONTINUATION else size + len(payload)
            if size > max_size:
                raise AssertionError("message of %d bytes passed a %d cap" % (size, max_size))
            if fin:
                size = 0
    return frames


def _reencode_check(frames, max_size, require_mask):
    """Frames that decoded must encode and decode again to the same frames."""
    key = b"\x12\x34\x56\x78" if require_mask else None
    wire = b"".join(wsproxy.encode_frame(op, payload, fin, key) for op, fin, payload in frames)
    again = _decode_frames([wire], max_size, require_mask, len(wire))
    if again != frames:
        raise AssertionError("re-encoded frames decode differently: %r != %r" % (again[:3], frames[:3]))
    if key is not None:
        for op, fin, payload in frames[:4]:
            encoded = wsproxy.encode_frame(op, payload, fin, key)
            if encoded[len(encoded) - len(payload):] != _naive_mask(payload, key):
                raise AssertionError("apply_mask disagrees with a byte-by-byte XOR")


def _session_check(chunks, max_size, require_mask, total, actions):
    session = WebSocketSession(max_message_size=max_size, require_mask=require_mask)
    data_bytes = 0
    outgoing = 0
    ours = 0     # bytes of our own ping and Close, not replies to the peer
    for index, chunk in enumerate(chunks):
        # Our own Close or ping, at a fuzzer-chosen moment (what the relay
        # does on an idle timeout, a heartbeat, SIGTERM).
        action = actions[index] if index < len(actions) else 0
        if action == 1:
            session.send_ping(b"hb")
            ours += 4 if not session.close_sent else 0
        elif action == 2:
            ours += 14 if not session.close_sent else 0
            session.send_close(1001, "going away")
        ended = session.close_received or session.failure is not None
        events = session.receive(chunk)
        if ended and events:
            raise AssertionError("events after a Close or a failure")
        for event in events:
            if not isinstance(event, (DataReceived, PingReceived, PongReceived, CloseReceived)):
                raise AssertionError("unexpected event %r" % (event,))
            if isinstance(event, DataReceived):
                if not event.payload or len(event.payload) > max_size:
                    raise AssertionError("data event of %d bytes (cap %d)" % (len(event.payload), max_size))
                data_bytes += len(event.payload)
            elif isinstance(event, (PingReceived, PongReceived)) and len(event.payload) > 125:
                raise AssertionError("control payload over 125 bytes")
            elif isinstance(event, CloseReceived):
                if not isinstance(event.reason, str):
                    raise AssertionError("close reason is not text")
        outgoing += len(session.take_outgoing())
        if len(session._text) > session.max_text_message:
            raise AssertionError("text buffer over its cap")
    if data_bytes > total or outgoing - ours > total:
        raise AssertionError("session produced %d data / %d reply bytes from %d input"
                             % (data_bytes, outgoing - ours, total))
    failure = session.failure
    if failure is not None and (not isinstance(failure, ProtocolError)
                                or failure.close_code not in (1002, 1007, 1009)):
        raise AssertionError("session failure %r" % (failure,))


def fuzz_frames(data):
    # Prefix: flags, 2 bytes of message cap, 4 session actions, the cuts.
    prefix, body = data[:7 + SPLIT_BYTES], data[7 + SPLIT_BYTES:]
    prefix = prefix.ljust(7 + SPLIT_BYTES, b"\0")
    require_mask = bool(prefix[0] & 1)
    # Small caps, but up to past apply_mask's translate threshold (512).
    max_size = 1 + int.from_bytes(prefix[1:3], "little") % 1024
    actions = [b % 8 for b in prefix[3:7]]
    chunks = _chunks(body, _split(prefix[7:], len(body)))
    frames = _decode_frames(chunks, max_size, require_mask, len(body))
    # The same bytes whole must decode to the same frames: splits change nothing.
    whole = _decode_frames([body], max_size, require_mask, len(body))
    if whole != frames:
        raise AssertionError("split input decodes differently from the whole input")
    _reencode_check(frames, max_size, require_mask)
    _session_check(chunks, max_size, require_mask, len(body), actions)


# -- head: find_head_end, parse_request_head, check_upgrade --------------------------------


def fuzz_head(data):
    points_seed, body = data[:SPLIT_BYTES], data[SPLIT_BYTES:]
    # Incremental, as _read_head does it: the head end must not depend on the splits.
    buffer = b""
    end = -1
    try:
        for chunk in _chunks(body, _split(points_seed, len(body))):
            buffer += chunk
            end = wsproxy.find_head_end(buffer)
            if end >= 0:
                break
    except HttpError as exc:
        if exc.status != 431:
            raise AssertionError("find_head_end raised %d" % exc.status)
        return
    try:
        whole_end = wsproxy.find_head_end(body)
    except HttpError:
        raise AssertionError("whole input over the limit where the pieces were not") from None
    if end != whole_end:
        raise AssertionError("head end %d in pieces, %d whole" % (end, whole_end))
    if end < 0:
        return
    if body[end - 4:end] != b"\r\n\r\n" or end > wsproxy.MAX_HEAD_BYTES + 4:
        raise AssertionError("head end %d is not just past a blank line within the limit" % end)
    try:
        head = wsproxy.parse_request_head(body[:end])
        head.path, head.query, head.keep_alive, head.get("host")
        wsproxy.query_param(head.query, "token")
        wsproxy._cookie(head, "token")
        _body_check(head)
        if not wsproxy._loggable_path(head).isprintable():
            raise AssertionError("logged path %r is not one printable line" % head.path)
        if wsproxy.is_upgrade_request(head):
            upgrade = wsproxy.check_upgrade(head)
            response = wsproxy.upgrade_response(upgrade)
            if not response.startswith(b"HTTP/1.1 101 ") or not response.endswith(b"\r\n\r\n"):
                raise AssertionError("bad 101 response")
    except HttpError as exc:
        if exc.status not in wsproxy.HTTP_REASONS:
            raise AssertionError("status %d has no reason phrase" % exc.status)
        if exc.reason == "empty request":
            raise AssertionError("find_head_end found a head where the parser finds no request")
        reply = wsproxy.error_response(exc)
        if b"\r\n\r\n" not in reply:
            raise AssertionError("error response has no blank line")
        return
    if len(head.headers) > wsproxy.MAX_HEADERS:
        raise AssertionError("more headers than MAX_HEADERS")
    for name, value in head.headers:
        if "\r" in name or "\n" in name or "\r\n" in value or "\x00" in value:
            raise AssertionError("line break or NUL in parsed header %r" % name)


def _body_check(head):
    """refuse_body passes a head only if it announces no body at all."""
    try:
        wsproxy.refuse_body(head)
    except HttpError as exc:
        if exc.status != 400:
            raise AssertionError("refuse_body raised %d" % exc.status)
        return
    if head.get_all("transfer-encoding"):
        raise AssertionError("a Transfer-Encoding head was accepted")
    for value in head.get_all("content-length"):
        if not value or set(value) != {"0"}:
            raise AssertionError("Content-Length %r was accepted" % value[:40])


# -- close: parse_close and encode_close ---------------------------------------------------


def fuzz_close(data):
    try:
        code, reason = wsproxy.parse_close(data)
    except ProtocolError as exc:
        if exc.close_code not in (1002, 1007):
            raise AssertionError("parse_close raised close code %d" % exc.close_code)
        return
    if code == 1005:
        if data:
            raise AssertionError("1005 from a non-empty payload")
        return
    encoded = wsproxy.encode_close(code, reason)
    if len(encoded) > 125:
        raise AssertionError("encode_close made %d bytes" % len(encoded))
    if len(data) <= 125 and encoded != data:
        raise AssertionError("close payload does not re-encode to itself")
    wsproxy.parse_close(encoded)  # a truncated reason still parses


# -- tokens: parse_token_text --------------------------------------------------------------


def fuzz_tokens(data):
    text = data.decode("utf-8", "replace")
    entries, problems = wsproxy.parse_token_text(text, "fuzz")
    lines = len(text.splitlines())
    if len(problems) > lines or len(entries) > lines:
        raise AssertionError("more entries or problems than lines")
    for token, entry in entries.items():
        if not token or any(ch.isspace() for ch in token):
            raise AssertionError("token %r is empty or has whitespace" % token)
        target = entry.target
        if not target.unix_path and not (target.host and 0 < target.port < 65536):
            raise AssertionError("bad target %r" % (target,))
        str(target)


# -- static: resolve_static_path against a temporary web root ------------------------------

_WEB_ROOT = None


def _web_root():
    global _WEB_ROOT
    if _WEB_ROOT is None:
        # One fixed tree, reused by every run: libFuzzer leaves through
        # _exit, so a per-run temporary directory would never be removed.
        base = os.path.join(tempfile.gettempdir(), "wsproxy-fuzz-static")
        root = os.path.join(base, "web")
        os.makedirs(os.path.join(root, "app", "sub"), exist_ok=True)
        os.makedirs(os.path.join(root, "empty"), exist_ok=True)
        for name in ("vnc.html", "app/ui.js", "app/sub/index.html", ".hidden", "../secret.txt"):
            with open(os.path.join(root, name), "w") as handle:
                handle.write("x")
        for link, to in (("escape.txt", os.path.join(base, "secret.txt")), ("up", base)):
            if not os.path.islink(os.path.join(root, link)):
                os.symlink(to, os.path.join(root, link))
        _WEB_ROOT = os.path.realpath(root)
    return _WEB_ROOT


def fuzz_static(data):
    root = _web_root()
    path = data.decode("latin-1")
    try:
        resolved = wsproxy.resolve_static_path(root, path)
    except HttpError as exc:
        if exc.status not in (400, 404):
            raise AssertionError("resolve_static_path raised %d" % exc.status)
        return
    if not resolved.startswith(root + os.sep) or not os.path.isfile(resolved):
        raise AssertionError("%r resolved to %r, outside the root or not a file" % (path, resolved))
    if os.path.basename(resolved).startswith("."):
        raise AssertionError("dot-file %r served" % resolved)


# -- date: parse_http_date and not_modified on If-Modified-Since values --------------------


def fuzz_date(data):
    text = data[8:].decode("latin-1")  # as a header value arrives
    since = wsproxy.parse_http_date(text)
    if since is not None and (not isinstance(since, int) or not text.isascii()):
        raise AssertionError("%r parsed as %r" % (text, since))
    if wsproxy.not_modified(text, 1_700_000_000) not in (True, False):
        raise AssertionError("not_modified gave no bool")
    stamp = int.from_bytes(data[:8], "little") % 253402300800  # to the end of 9999
    if wsproxy.parse_http_date(wsproxy.http_date(stamp)) != stamp:
        raise AssertionError("http_date(%d) does not parse back" % stamp)


# -- forwarded: client_address on X-Forwarded-For values -----------------------------------

_PEERS = ("127.0.0.1:40000", "10.1.2.3:5000", "[::1]:40000", "[fd00::5]:1", "192.0.2.1:80", "unix")
_HOPS = ("127.0.0.1", "10.0.0.1", "10.255.0.9", "::1", "fd00::1", "::ffff:10.0.0.2")
_CLIENTS = ("203.0.113.9", "2001:db8::5", "198.51.100.1")


def _trusted_networks():
    import ipaddress
    return [ipaddress.ip_network(n) for n in ("127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8")]


_TRUSTED = None


def fuzz_forwarded(data):
    global _TRUSTED
    if _TRUSTED is None:
        _TRUSTED = _trusted_networks()
    import ipaddress
    fdp = atheris.FuzzedDataProvider(data)
    peer = _PEERS[fdp.ConsumeIntInRange(0, len(_PEERS) - 1)]
    claims = [fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40)).decode("latin-1")
              for _ in range(fdp.ConsumeIntInRange(0, 4))]
    result = wsproxy.client_address(peer, claims, _TRUSTED)
    if result != peer:
        ipaddress.ip_address(result)  # ValueError (a crash) unless a plain address
        if peer in ("192.0.2.1:80", "unix"):
            raise AssertionError("believed %r from the untrusted peer %s" % (claims, peer))
    if wsproxy.client_address(peer, [",".join(claims)], _TRUSTED) != result:
        raise AssertionError("the split into headers changed the answer for %r" % claims)
    # A trusted proxy appends the client it saw; others after it append theirs.
    client = _CLIENTS[fdp.ConsumeIntInRange(0, len(_CLIENTS) - 1)]
    hops = [_HOPS[fdp.ConsumeIntInRange(0, len(_HOPS) - 1)] for _ in range(fdp.ConsumeIntInRange(0, 3))]
    if peer not in ("192.0.2.1:80", "unix"):
        seen = wsproxy.client_address(peer, claims + [", ".join([client] + hops)], _TRUSTED)
        if seen != str(ipaddress.ip_address(client)):
            raise AssertionError("claims %r outranked the client %s: %r" % (claims, client, seen))


# -- loggable: peer text for a log line ----------------------------------------------------


def fuzz_loggable(data):
    try:
        text = data.decode("utf-8", "surrogatepass")  # a close reason, lone surrogates too
    except UnicodeDecodeError:
        text = data.decode("latin-1")                  # a header value or path
    out = wsproxy.loggable(text)
    if not out.isprintable():
        raise AssertionError("%r logged as %r: not one printable line" % (text, out))
    if out.encode("ascii", "backslashreplace").decode("unicode_escape") != text:
        raise AssertionError("%r logged as %r: the escapes do not undo" % (text, out))


# -- args: parse_args on argument lists ----------------------------------------------------


def fuzz_args(data):
    fdp = atheris.FuzzedDataProvider(data)
    words = ["--listen", "--vnc", "--demo", "--token-plugin", "--token-source", "--target-config",
             "--web", "--no-web", "--cert", "--key", "--ssl-only", "--ssl-version", "--auth-plugin",
             "--auth-source", "--web-auth", "--trusted-proxy", "--heartbeat", "--idle-timeout",
             "--max-message-size", "--unix-listen", "--unix-target", "--host-token", "-v", "-D",
             "--record", "6080", "localhost:5901", "[::1]:5900", "TokenFile", "BasicHTTPAuth",
             "ExpectOrigin", "/", "-1", "1e999", "nan", "10.0.0.0/8", "--", "-"]
    argv = []
    for _ in range(fdp.ConsumeIntInRange(0, 8)):
        if fdp.ConsumeBool():
            argv.append(words[fdp.ConsumeIntInRange(0, len(words) - 1)])
        else:
            argv.append(fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 24)))
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            wsproxy.parse_args(argv)
    except ConfigError:
        pass
    except SystemExit as exc:
        # 0 only for --help and --version, which print and leave.
        printed = out.getvalue()
        if exc.code == 0 and (printed.startswith("usage:") or printed.startswith("wsproxy ")):
            return
        if exc.code != 2:
            raise AssertionError("parse_args(%r) exited %r" % (argv, exc.code))


TARGETS = {"frames": fuzz_frames, "head": fuzz_head, "close": fuzz_close, "tokens": fuzz_tokens,
           "static": fuzz_static, "date": fuzz_date, "forwarded": fuzz_forwarded, "loggable": fuzz_loggable,
           "args": fuzz_args}


def write_seeds(directory):
    """A few valid inputs per target, so the fuzzer starts inside the grammar."""
    key = b"\x37\xfa\x21\x3d"

    def frame(opcode, payload=b"", fin=True, masked=True):
        return wsproxy.encode_frame(opcode, payload, fin, key if masked else None)

    upgrade = (b"GET /websockify?token=abc HTTP/1.1\r\nHost: h:6080\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n"
               b"Cookie: token=x%20y\r\n\r\n")
    seeds = {
        "frames": [
            # flags, cap (little-endian, +1), actions, cut count and cuts, frames
            b"\x01\x3f\x00" + bytes(4) + b"\x02\x03\x00\x09\x00" + bytes(12)
            + frame(Opcode.BINARY, b"hello") + frame(Opcode.PING, b"p"),
            b"\x01\x3f\x00" + b"\x00\x01\x00\x02" + b"\x01\x05\x00" + bytes(14)
            + frame(Opcode.TEXT, "caf\u00e9".encode(), fin=False) + frame(Opcode.PING)
            + frame(Opcode.CONTINUATION, b"!") + frame(Opcode.CLOSE, b"\x03\xe8bye"),
            b"\x00\xff\x00" + bytes(4) + bytes(17) + frame(Opcode.BINARY, bytes(200), masked=False)
            + frame(Opcode.PONG, b"x", masked=False) + frame(Opcode.CLOSE, masked=False),
            b"\x01\xff\x03" + bytes(4) + b"\x02\x00\x02\x10\x03" + bytes(12)
            + frame(Opcode.BINARY, bytes(range(256)) * 3, fin=False) + frame(Opcode.CONTINUATION, bytes(100)),
        ],
        "head": [bytes(SPLIT_BYTES) + upgrade, bytes(SPLIT_BYTES) + upgrade.replace(b"binary", b"base64"),
                 bytes(SPLIT_BYTES) + b"GET /vnc.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                 # Just over MAX_HEAD_BYTES and MAX_HEADERS: the 431 paths.
                 bytes(SPLIT_BYTES) + b"GET / HTTP/1.1\r\nX-A: " + b"a" * 16370 + b"\r\n\r\n",
                 bytes(SPLIT_BYTES) + b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * 110 + b"\r\n",
                 # Empty lines before the request line (RFC 9112 2.2).
                 b"\x01\x02\x00" + bytes(SPLIT_BYTES - 3) + b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
                 # Bodies (refused): a smuggled request behind Content-Length or chunked.
                 bytes(SPLIT_BYTES) + b"GET /vnc.html HTTP/1.1\r\nContent-Length: 38\r\n\r\n",
                 bytes(SPLIT_BYTES) + b"GET / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
                 bytes(SPLIT_BYTES) + b"GET / HTTP/1.1\r\nContent-Length: 000\r\n\r\n"],
        "close": [b"", b"\x03\xe8", b"\x0f\xa0caf\xc3\xa9"],
        "tokens": [b"# comment\nabc: localhost:5901\nv6: fe80::1:5900\nu: unix_socket:/tmp/s\nbad line\n"],
        "static": [b"/", b"/app/ui.js", b"/app/sub/", b"/%2e%2e/secret.txt", b"/up/secret.txt"],
        "date": [bytes(8) + b"Sun, 06 Nov 1994 08:49:37 GMT", b"\xff" * 8 + b"Sun, \xb2 Nov 1994 08:49:37 GMT",
                 bytes(8) + b"Sat, 31 Dec 2016 23:59:60 GMT"],
        "forwarded": [b"\x00\x02\x0b6.6.6.6, 10.0.0.1\x0b203.0.113.9\x00\x02\x04",
                      b"\x02\x01\x10\x1b[2J, fd00::1%eth0\x00\x01\x01\x00"],
        "loggable": [b"bye\nINFO forged\x1b[2J\x07", "caf\u00e9 \u2028 \\x0a".encode("utf-8")],
        "args": [b"\x02\x01\x19\x01\x1a", b"\x03\x01\x00\x01\x19\x01\x01"],
    }
    for target, inputs in seeds.items():
        path = os.path.join(directory, target)
        os.makedirs(path, exist_ok=True)
        for number, blob in enumerate(inputs):
            with open(os.path.join(path, "seed-%d" % number), "wb") as handle:
                handle.write(blob)
    print("seeds written under %s/{%s}" % (directory, ",".join(seeds)))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--seeds":
        write_seeds(sys.argv[2])
        return 0
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        if len(sys.argv) >= 2 and sys.argv[1] == "--list":
            print("\n".join(TARGETS))
            return 0
        sys.stderr.write("usage: %s {%s} [libFuzzer flags] [CORPUS_DIR ...]\n"
                         % (sys.argv[0], ",".join(TARGETS)))
        return 2
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0]] + sys.argv[2:], target)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
