#!/usr/bin/env python3
"""wsproxy: a WebSocket-to-TCP proxy that serves a browser VNC client.

Browsers speak WebSocket; VNC servers speak raw TCP (RFB).  wsproxy accepts
WebSocket connections (RFC 6455), relays their payload to a fixed target or to
a target named by a token, and serves the static files of ``web/`` on the same
port.  One file, Python standard library only, Python 3.8 or newer.

Run::

    python3 wsproxy.py --demo                         # built-in demo desktop
    python3 wsproxy.py 6080 localhost:5901            # fixed target
    python3 wsproxy.py --token-plugin TokenFile --token-source tokens.conf 6080
    python3 wsproxy.py --help                         # every option, grouped

The command line follows websockify's, so ``websockify ARGS`` becomes
``python3 wsproxy.py ARGS``.

Map of this file (the same numbers appear as banners below):

     1. Imports, version, constants and limits; run_from_bytecode()
     2. Errors: each carries what to send back
     3. HTTP request head, PROXY protocol header: pure parse, bounded size
     4. WebSocket handshake: pure accept key, version, subprotocol
     5. Frame codec: pure encode, incremental decode, masking, RFC checks
     6. WebSocket session: pure fragments, ping/pong, close handshake
     7. Targets: fixed target, token file (reloaded on change), Redis, HTTP API, JWT
     8. Routing and static files: auth, target, upgrade-or-file; safe paths, MIME
     9. Relay: pure policy (phases, close order, timers), per-connection poll loop
    9b. RFB follower: pure reading of a VNC stream's handshake and client messages
    10. Connection handler: PROXY header, TLS sniff, head, limits, auth, route,
        connect before 101
    11. Server: listening sockets (bound, --inetd, systemd), accept loop, threads,
        signals, drain and reload; TLS context; metrics (pure registry) and their
        listener
    12. Demo VNC target: pure desktop and RFB session, loopback-only server
    13. Command line: parse_args(argv) -> Config, main(argv) -> int
    14. Session recording: pure file format, per-session recorder, writer thread

Design rules:
  * Sections 3-8 are pure (bytes and strings in, values or typed errors out)
    and are tested without sockets, as are section 9's RelayPolicy (events
    and a clock in, actions out), section 9b, section 10's bookkeeping
    (RecentFailures, ConnectionLimits, AuthBackoff: a clock passed in), and
    section 11's MetricsRegistry and ProxyMetrics.  Sockets and threads live
    in 9-11, in section 12's DemoTarget (the rest of 12 is pure) and in
    section 7's remote token stores (Redis, HTTP API), whose protocol parts
    are pure.
  * Importing this module has no side effects.
  * Nothing a peer sends is trusted: no ``assert`` on input, every buffer is
    bounded, every error maps to an HTTP status or a WebSocket close code, and
    internals (tracebacks) go to the log, never to the peer.
  * Never an open proxy: a client reaches only the target on the command line
    or a target named in the token source.
"""

# ===========================================================================
# 1. Imports, version, constants and limits
# ===========================================================================

import os
import sys


def run_from_bytecode() -> None:
    """Run as a script, go on from the cached bytecode in the same process.

    CPython keeps a script's syntax tree for as long as the script runs,
    about 7 MB for this file (a third of an idle proxy), and code loaded from
    a .pyc has none.  So ``python3 [OPTIONS] wsproxy.py ARGS`` executes
    ``python3 [OPTIONS] -S /path/__pycache__/wsproxy.cpython-3X.pyc
    /path/wsproxy.py ARGS`` in its place: the same PID, descriptors,
    environment and interpreter options (sys.orig_argv), still ``__main__``,
    and ``ps`` and ``pgrep -f wsproxy.py`` see the script and its arguments.
    That .pyc is the one ``import wsproxy`` uses, written here as an import
    would when it is missing or stale.  Where none can be written (a
    read-only directory, PYTHONDONTWRITEBYTECODE) the code already compiled
    goes over in a memfd (Linux) instead.  Before Python 3.10, off CPython
    or POSIX, or under a debugger, profiler or tracer, the script runs on.
    Called before the imports below, which the exec would waste.
    """
    global __file__
    if __name__ != "__main__" or sys.implementation.name != "cpython" or os.name != "posix":
        return
    path = str(globals().get("__file__"))
    if path.startswith(_MEMFD_PREFIX):   # exec'd from a memfd by the code below
        if len(sys.argv) > 1 and sys.argv[1].endswith(".py"):
            __file__ = sys.argv[0] = sys.argv.pop(1)
            os.close(int(path[len(_MEMFD_PREFIX):]))
        return
    if path.endswith(".pyc"):    # exec'd by the code below, which put the script after the .pyc
        from importlib.util import cache_from_source
        if len(sys.argv) > 1 and sys.argv[1].endswith(".py") and cache_from_source(sys.argv[1]) == path:
            __file__ = sys.argv[0] = sys.argv.pop(1)
        return
    command = getattr(sys, "orig_argv", [])    # 3.10+: the interpreter, its options, then sys.argv
    options = command[1:len(command) - len(sys.argv)]
    # -S: the proxy imports the standard library only, and site-packages'
    # start-up hooks (.pth files) cost this machine 30 ms and 1.6 MB.
    interpreter = [sys.executable] + options + ([] if sys.flags.no_site else ["-S"])
    if (not path.endswith(".py") or command[len(options) + 1:] != sys.argv
            or not sys.executable or sys.flags.inspect or sys.gettrace() or sys.getprofile()):
        return
    from importlib.machinery import SourceFileLoader
    from importlib.util import MAGIC_NUMBER, cache_from_source

    def cached_header() -> bytes:
        try:
            with open(pyc, "rb") as handle:
                return handle.read(16)
        except OSError:
            return b""

    try:
        source = os.path.abspath(path)
        pyc = cache_from_source(source)
        st = os.stat(source)
        # What importlib writes for this source: magic, flags 0 (validated by
        # timestamp), then the source's mtime and size, each 32 bits.
        header = MAGIC_NUMBER + b"".join((n & 0xFFFFFFFF).to_bytes(4, "little")
                                         for n in (0, int(st.st_mtime), st.st_size))
        if cached_header() != header and not sys.dont_write_bytecode:
            SourceFileLoader("wsproxy", source).get_code("wsproxy")   # compiles and caches
        if cached_header() == header:
            os.execv(sys.executable, interpreter + [pyc, source] + sys.argv[1:])
        # No .pyc can be cached (PYTHONDONTWRITEBYTECODE, a read-only directory):
        # the code this process already compiled goes over in a memfd (Linux).
        memfd = _bytecode_memfd(header, sys._getframe(1).f_code)
        try:
            os.execv(sys.executable, interpreter + [_MEMFD_PREFIX + str(memfd), source] + sys.argv[1:])
        finally:
            os.close(memfd)   # reached only when the exec failed
    except (ImportError, OSError, AttributeError):
        pass  # no bytecode to run, or no interpreter to exec (embedded Python): run on


# Where a memfd is found after exec; CPython runs a file that starts with its
# .pyc magic number as bytecode, whatever its name.
_MEMFD_PREFIX = "/proc/self/fd/"


def _bytecode_memfd(header: bytes, code) -> int:
    """A memfd (kept across exec) holding a .pyc image of ``code``."""
    import marshal
    data = memoryview(header + marshal.dumps(code))
    fd = os.memfd_create("wsproxy.pyc", 0)   # AttributeError where there is none
    try:
        while data:
            data = data[os.write(fd, data):]
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd


run_from_bytecode()

import argparse
import base64
import binascii
import codecs
import errno
import logging
import re
import select
import signal
import socket
import stat
import struct
import threading
import time
import zlib
from collections import deque
from enum import Enum, IntEnum
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

__version__ = "1.0.0"

log = logging.getLogger("wsproxy")

# A request head larger than this is refused with 431.  Browsers send well
# under 4 KiB; 16 KiB leaves room for big cookies and still bounds memory.
MAX_HEAD_BYTES = 16 * 1024
# More header lines than this is refused with 431 (browsers send about 15).
MAX_HEADERS = 100
# The whole request head must arrive within this many seconds, so a client
# that trickles bytes (slowloris) cannot hold a thread for ever.
HEAD_TIMEOUT = 10.0
# An idle keep-alive connection for static files is closed after this long.
KEEPALIVE_TIMEOUT = 15.0
# Connecting to a target gives up after this many seconds (then HTTP 502).
CONNECT_TIMEOUT = 10.0
# After we send a Close frame, wait this long for the peer's reply.
CLOSE_TIMEOUT = 3.0
# On SIGTERM, bytes the target sent before the signal (still in the kernel's
# receive buffer) are relayed before close 1001, for at most this long: a
# stalled client must not hold up the exit (drain + CLOSE_TIMEOUT stays
# within Server.shutdown's grace).
STOP_DRAIN_TIMEOUT = 1.0
# Once the client is gone or has closed, a target gets this long to take the
# data still owed to it; a target that stops reading cannot hold the thread.
TARGET_FLUSH_TIMEOUT = 10.0
# Default cap on one WebSocket message from a client (close 1009 above it).
# VNC clients send small messages (input events, clipboard); 16 MiB still
# admits a large clipboard paste.  Payload is streamed, never held whole.
DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024
# Pongs owed to a client that has not read the ones before (its socket is
# backed up) are kept for only this many of its latest pings, 4 KiB at most:
# a ping flood must not grow memory (RFC 6455 5.5.3 lets us answer only the
# most recent), while a client that reads gets a pong for every ping.
MAX_OWED_PONGS = 32
# Text messages are held until complete and valid UTF-8 (so the target
# never gets part of an invalid one); this caps that buffer.  VNC clients
# send binary; text is rare and small.
MAX_TEXT_MESSAGE = 1024 * 1024
# The first read buffer for a target: enough for an RFB handshake and small
# updates.  Each read that fills the buffer makes it 16 times bigger, up to
# TARGET_CHUNK, so idle and chatty connections stay small.
FIRST_READ = 4096
# Bytes read from a busy target at once, and so the largest frame we send
# (socat -b 1048576 reads as much).  Bulk screen updates flow this way; read
# into one reused buffer and copied, which measured faster end to end than
# splice(2) and is one code path everywhere (README, "Performance").
TARGET_CHUNK = 1024 * 1024
# At most this much is read from the target per wake-up (then poll), so
# input from the client waits no longer behind bulk data.
TARGET_BYTES_PER_WAKE = 4 * 1024 * 1024
# A grown read buffer is given back after this many seconds without a
# wake-up: a VNC session idles between bursts, and sessions that each once
# drew a full screen would otherwise hold 1 MiB apiece.
BUFFER_RELEASE_AFTER = 1.0
# Bounds on what waits in the kernel on the way to the browser.  A VNC
# client's input round trip (a key press and the screen's answer) queues
# behind every update byte already buffered between target and browser, and
# Linux autotunes these buffers to many megabytes.  The target is normally
# near (same host or LAN), so 2 MiB of receive buffer costs no throughput
# there; towards the browser only the not-yet-sent backlog is bounded, which
# does not limit the TCP window.
TARGET_RCVBUF = 2 * 1024 * 1024
CLIENT_NOTSENT_LOWAT = 1024 * 1024
# Bytes read from the client at once (input events: small).  With
# TARGET_CHUNK, the most that waits in user space in each direction: a side
# is not read while the other side is backed up.
RELAY_CHUNK = 64 * 1024
# Connection threads need little stack; a small one lets thousands of idle
# connections fit in little memory (the default reserves 8 MiB each).
THREAD_STACK_SIZE = 512 * 1024
# Clients are pinged this often by default (--heartbeat), and one that sends
# no pong within as long again is closed: a browser that vanished without a
# FIN (suspended laptop, dropped Wi-Fi) must not hold its thread, descriptors
# and VNC session for ever.  Browsers answer pings without page code.
DEFAULT_HEARTBEAT = 30.0
# Connections the kernel may queue before we accept them.  A burst of
# thousands (a page reload across a wall of desktops, a reconnect storm)
# must not overflow it: a dropped SYN costs the client a 1-3 s retransmit.
# The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 4096
# When accept() fails for lack of file descriptors, wait before retrying so
# the accept loop does not spin the CPU.
ACCEPT_BACKOFF = (0.05, 1.0)

# Where --metrics-listen without a host listens: metrics tell an attacker
# what runs here and how busy it is, so only this machine by default.
METRICS_DEFAULT_HOST = "127.0.0.1"
# Where --demo and a bare --vnc listen, as novnc_proxy does.
DEFAULT_PORT = 6080

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SUPPORTED_WS_VERSION = "13"
SERVER_NAME = "wsproxy/" + __version__

TOKEN_PLUGINS = ("TokenFile", "ReadOnlyTokenFile", "TokenFileName", "TokenRedis", "BaseTokenAPI", "JSONTokenApi",
                 "JWTTokenApi", "UnixDomainSocketDirectory")
AUTH_PLUGINS = ("BasicHTTPAuth", "ExpectOrigin")

# ===========================================================================
# 2. Errors: each carries what to send back
# ===========================================================================


class HttpError(Exception):
    """An HTTP error reply: the request (a handshake, a file, a head that is
    too slow or too big, a target that cannot be reached) is answered with
    this status.

    ``reason`` is short plain text that is safe to show the peer.
    ``headers`` are extra response headers (e.g. Sec-WebSocket-Version).
    """

    def __init__(self, status: int, reason: str, headers: Sequence[Tuple[str, str]] = (),
                 log_reason: Optional[str] = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = list(headers)
        # What the log says instead, where the reply holds what the log must not (a token).
        self.log_reason = reason if log_reason is None else log_reason


class ProtocolError(Exception):
    """The peer broke RFC 6455; close the connection with ``close_code``."""

    def __init__(self, close_code: int, reason: str):
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason


class ConfigError(Exception):
    """An invalid command line or token source: one clear sentence."""


# ===========================================================================
# 3. HTTP request head, PROXY protocol header: pure parse, bounded size
# ===========================================================================

HTTP_REASONS = {
    101: "Switching Protocols", 200: "OK", 304: "Not Modified",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 426: "Upgrade Required",
    429: "Too Many Requests", 431: "Request Header Fields Too Large", 502: "Bad Gateway", 503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}

# \Z, not $: "$" also matches before a final "\n", which would let a bare LF
# hide at the end of a request line or header name.
_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_REQUEST_LINE_RE = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP/(\d)\.(\d)\Z")


class RequestHead(NamedTuple):
    """One parsed HTTP request head.  Header names are lower-cased."""

    method: str
    target: str
    version: Tuple[int, int]
    headers: List[Tuple[str, str]]

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> List[str]:
        return [value for key, value in self.headers if key == name]

    def tokens(self, name: str) -> List[str]:
        """Comma-separated values of every ``name`` header, lower-cased."""
        out = []
        for value in self.get_all(name):
            out.extend(t.strip().lower() for t in value.split(",") if t.strip())
        return out

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    @property
    def keep_alive(self) -> bool:
        conn = self.tokens("connection")
        if self.version >= (1, 1):
            return "close" not in conn
        return "keep-alive" in conn


def find_head_end(buffer: bytes) -> int:
    """Index just past the blank line ending the head, or -1 if not there yet.

    Empty lines before the request line are skipped, as parse_request_head
    skips them (RFC 9112 2.2), so they never end a head: a buffer of nothing
    but line breaks is -1, a head still to come.  They count towards the size
    limit.  Raises HttpError(431) once the buffer is over MAX_HEAD_BYTES
    without a complete head, so the caller can stop reading.
    """
    start = len(buffer) - len(buffer.lstrip(b"\r\n"))
    end = buffer.find(b"\r\n\r\n", start, MAX_HEAD_BYTES + 4)
    if end >= 0:
        return end + 4
    _check_head_size(len(buffer))   # no blank line yet: all of it is head
    return -1


def _check_head_size(size: int) -> None:
    """431 for a head of ``size`` bytes (its final blank line not counted)."""
    if size > MAX_HEAD_BYTES:
        raise HttpError(431, "request head larger than %d bytes" % MAX_HEAD_BYTES)


def parse_request_head(data: bytes) -> RequestHead:
    """Parse a complete request head (everything before the blank line)."""
    _check_head_size(len(data) - 4)
    # RFC 9112 2.2: a server SHOULD ignore empty lines before the request line.
    text = data.decode("latin-1").lstrip("\r\n")
    lines = text.split("\r\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise HttpError(400, "empty request")
    match = _REQUEST_LINE_RE.match(lines[0])
    if not match:
        raise HttpError(400, "malformed request line")
    method, target, major, minor = match.group(1), match.group(2), int(match.group(3)), int(match.group(4))
    if major != 1:
        raise HttpError(505, "only HTTP/1.x is supported")
    if len(lines) - 1 > MAX_HEADERS:
        raise HttpError(431, "more than %d header fields" % MAX_HEADERS)
    headers = []
    for line in lines[1:]:
        if not line or line[0] in " \t":
            raise HttpError(400, "obsolete line folding in header")
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN_RE.match(name):
            raise HttpError(400, "malformed header line")
        if "\x00" in value:
            raise HttpError(400, "NUL byte in header value")
        headers.append((name.lower(), value.strip(" \t")))
    if not (target.startswith("/") or target == "*" or "://" in target):
        raise HttpError(400, "malformed request target")
    return RequestHead(method, target, (major, minor), headers)


def query_param(query: str, name: str) -> Optional[str]:
    """First value of ``name`` in a query string, or None."""
    try:
        import urllib.parse  # lazily: it costs start-up time (it pulls in ipaddress)
        values = urllib.parse.parse_qs(query, keep_blank_values=True, errors="strict").get(name)
    except (UnicodeDecodeError, ValueError):
        return None
    return values[0] if values else None


def refuse_body(head: RequestHead) -> None:
    """Refuse a request that carries a body (RFC 9112 6.3).

    Nothing wsproxy serves takes one, and a body left unread would be read as
    the next request on the connection: a front proxy that forwarded it as
    one request's body would have a second, unseen request smuggled past its
    rules.  So every request served is complete and body-less, and reading
    the next one from the same connection is safe.
    """
    if head.get_all("transfer-encoding"):
        raise HttpError(400, "request bodies are not accepted (Transfer-Encoding)")
    for value in head.get_all("content-length"):
        # Only all-zero digits mean "no body"; no int(): a huge number must not cost anything.
        if not value or value.strip("0"):
            raise HttpError(400, "request bodies are not accepted (Content-Length is not 0)")


def http_response(status: int, headers: Sequence[Tuple[str, str]] = (), body: bytes = b"",
                  content_type: str = "text/plain; charset=utf-8", head_only: bool = False,
                  keep_alive: bool = False) -> bytes:
    """A complete HTTP/1.1 response as bytes."""
    lines = ["HTTP/1.1 %d %s" % (status, HTTP_REASONS.get(status, "Unknown")), "Server: " + SERVER_NAME]
    names = {name.lower() for name, _ in headers}
    if status not in (101, 304):
        if "content-type" not in names:
            lines.append("Content-Type: " + content_type)
        if "content-length" not in names:
            lines.append("Content-Length: %d" % len(body))
    if status != 101:
        lines.append("Connection: " + ("keep-alive" if keep_alive else "close"))
    lines.extend("%s: %s" % (name, value) for name, value in headers)
    out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return out if head_only else out + body


def error_response(error: HttpError, head_only: bool = False) -> bytes:
    return http_response(error.status, error.headers, (error.reason + "\n").encode("utf-8"),
                         head_only=head_only)


def loggable(text: str) -> str:
    """``text`` safe for a log line: one event is always one line.

    A peer's strings (request path, close reason, header values) may hold
    line breaks that would forge a whole log line, or terminal escapes (ESC,
    BEL) that act on whoever reads the log.  Every non-printable character
    becomes ``\\xNN`` (``\\uNNNN`` above U+00FF: NEL, U+2028, bidi
    overrides), and a backslash is doubled so an escape in the log can be
    told from the same characters sent literally.  Printable non-ASCII
    (``café``) stays readable.
    """
    if text.isprintable() and "\\" not in text:
        return text  # the usual case, no copy
    return "".join(_escape_char(ch) for ch in text)


def _escape_char(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    if ch.isprintable():
        return ch
    code = ord(ch)
    return ("\\x%02x" if code <= 0xFF else "\\u%04x" if code <= 0xFFFF else "\\U%08x") % code


def client_address(peer: str, forwarded: Sequence[str], trusted: Sequence) -> str:
    """Who the client is, for the log: ``peer``, or an X-Forwarded-For address
    vouched for by trusted proxies.

    ``peer`` is the socket's address as _format_address writes it,
    ``forwarded`` every X-Forwarded-For value in the order received, and
    ``trusted`` the --trusted-proxy networks (ipaddress objects).  Only a peer
    inside ``trusted`` is believed at all.  A proxy appends the address it saw
    to the list, or adds a header after the client's (HAProxy), so everything
    left of its entry is what the client claimed: the walk starts at the
    right-most entry of all the headers together and goes left only while
    the entry is itself a trusted proxy.  The first entry that is not, is
    the client.  An entry that is not a plain IP address stops the walk, and
    the last address vouched for is the answer (the peer if none was), as
    when every entry is trusted: a spoofed or garbled entry is never logged.
    """
    if not trusted or not forwarded:
        return peer
    import ipaddress  # lazily: only with --trusted-proxy (start-up time)
    entries = [item.strip() for value in forwarded for item in value.split(",")]
    vouched = _ip_or_none(ipaddress, peer.rsplit(":", 1)[0].strip("[]"))
    if vouched is None or not _is_trusted(vouched, trusted):
        return peer
    answer = peer
    for entry in reversed(entries):
        if not entry:
            continue  # an empty list element (RFC 9110 5.6.1): nothing claimed
        address = _ip_or_none(ipaddress, entry)
        if address is None:
            break
        answer = str(address)
        if not _is_trusted(address, trusted):
            break
    return answer


def _ip_or_none(ipaddress, text: str):
    """The IP address ``text`` names (IPv4-mapped IPv6 as IPv4), or None.

    Only the plain forms: no port, no brackets, no ``%zone`` (which Python
    3.9 accepts and 3.8 refuses).
    """
    if "%" in text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def _is_trusted(address, trusted: Sequence) -> bool:
    return any(address in net for net in trusted)  # False across IPv4/IPv6


def proxy_sender_allowed(address, trusted: Sequence) -> bool:
    """Whether the socket peer ``address`` may send a PROXY header: any peer
    without --trusted-proxy, else only one inside those networks.  A Unix
    socket peer always may: the socket file's permissions say who connects."""
    if not trusted or not isinstance(address, tuple):
        return True
    import ipaddress  # lazily: only with --trusted-proxy (start-up time)
    peer = _ip_or_none(ipaddress, address[0])
    return peer is not None and _is_trusted(peer, trusted)


def address_key(client: str) -> str:
    """The host part of a client address as the log writes it ("1.2.3.4:5",
    "[::1]:5", a bare address from X-Forwarded-For, a Unix path): what the
    per-address limits count by.  The port is the client's to choose."""
    if client.startswith("["):
        return client[1:].split("]", 1)[0]
    if client.count(":") == 1:
        return client.split(":", 1)[0]
    return client


# -- PROXY protocol header (HAProxy's doc/proxy-protocol.txt): pure ---------
#
# With --proxy-protocol every connection starts with this header, written by
# the load balancer in front, naming the client it accepted.  It is read
# exactly (never a byte of the request after it), so what follows, TLS or
# HTTP, is untouched.

# Version 1 is one text line of at most this many bytes, CRLF included
# ("PROXY UNKNOWN" with two IPv6 addresses and ports, spec 2.1).
PROXY_V1_MAX = 107
# The shortest version 1 line, "PROXY UNKNOWN\r\n": never read past before
# the version is known (a 15-byte v1 header may be followed by the request).
PROXY_V1_MIN = 15
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
# Version 2: the signature, version/command, family/transport, 16-bit length.
PROXY_V2_FIXED = 16
# Address block sizes for TCP over IPv4 and IPv6 (spec 2.2); TLVs follow.
_PROXY_V2_ADDRESS = {0x11: (socket.AF_INET, 4), 0x21: (socket.AF_INET6, 16)}
# The whole header must arrive within this many seconds of the connection
# (spec 2: at least 3 s, to cover a TCP retransmit).
PROXY_HEADER_TIMEOUT = 5.0

_PROXY_V1_IPV4_RE = re.compile(r"^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                               r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\Z")
# Ports in decimal without leading zeros (spec 2.1: no octal confusion).
_PROXY_V1_PORT_RE = re.compile(r"^(?:0|[1-9][0-9]{0,4})\Z")


class ProxyHeaderError(Exception):
    """An invalid PROXY protocol header: the connection is closed without a
    reply (the sender is a load balancer, not an HTTP client), and logged."""


class ProxyHeader(NamedTuple):
    """A complete PROXY protocol header.

    ``length`` is how many bytes it took.  ``source`` and ``destination``
    are (host, port) of the connection the load balancer accepted, or None
    where the header names none (v2 LOCAL, v1 UNKNOWN, families other than
    TCP over IPv4/IPv6): then the socket's own addresses stand (spec 2.1, 2.2).
    """

    version: int
    command: str          # "PROXY", "LOCAL" (v2) or "UNKNOWN" (v1)
    length: int
    source: Optional[Tuple[str, int]] = None
    destination: Optional[Tuple[str, int]] = None


def proxy_header_needs(data: bytes) -> int:
    """How many more bytes a PROXY header that starts ``data`` needs at
    least: 0 when ``data`` holds all of it (bytes after it are allowed).

    Reading that many more never reads past the header's end, whatever
    it turns out to be.  Raises ProxyHeaderError as soon as ``data`` cannot
    be the start of a header, so a peer that sends none is refused at once.
    """
    if data[:1] == b"P":
        return _proxy_v1_needs(data)
    head = data[:len(PROXY_V2_SIGNATURE)]
    if not PROXY_V2_SIGNATURE.startswith(head):
        raise ProxyHeaderError("no PROXY protocol header (the connection starts %r)" % bytes(data[:8]))
    if not data:
        return PROXY_V1_MIN   # either version: v1's shortest line is v2's fixed part less one
    if len(data) < PROXY_V2_FIXED:
        return PROXY_V2_FIXED - len(data)
    total = PROXY_V2_FIXED + struct.unpack("!H", data[14:16])[0]
    return max(0, total - len(data))


def _proxy_v1_needs(data: bytes) -> int:
    if not b"PROXY ".startswith(data[:6]):
        raise ProxyHeaderError("malformed PROXY v1 line" if data.startswith(b"PROXY") else
                               "no PROXY protocol header (the connection starts %r)" % bytes(data[:8]))
    if data.find(b"\r\n", 0, PROXY_V1_MAX) >= 0:
        return 0
    if len(data) >= PROXY_V1_MAX:
        raise ProxyHeaderError("PROXY v1 line without CRLF in its first %d bytes" % PROXY_V1_MAX)
    # No CRLF yet: at least one byte (LF after a final CR) or two, and never
    # fewer than the shortest line.
    return max(1 if data.endswith(b"\r") else 2, PROXY_V1_MIN - len(data))


def parse_proxy_header(data: bytes) -> ProxyHeader:
    """The PROXY header at the start of ``data``, which proxy_header_needs
    says is complete; bytes after it are not looked at."""
    if proxy_header_needs(data) != 0:
        raise ProxyHeaderError("incomplete PROXY protocol header")
    if data[:1] == b"P":
        return _parse_proxy_v1(data)
    return _parse_proxy_v2(data)


def _parse_proxy_v1(data: bytes) -> ProxyHeader:
    end = data.find(b"\r\n", 0, PROXY_V1_MAX)
    try:
        line = data[:end].decode("ascii")
    except UnicodeDecodeError:
        raise ProxyHeaderError("PROXY v1 line is not ASCII") from None
    fields = line.split(" ")
    if fields[0] != "PROXY" or len(fields) < 2:
        raise ProxyHeaderError("malformed PROXY v1 line")
    if fields[1] == "UNKNOWN":   # anything after it is ignored (spec 2.1)
        return ProxyHeader(1, "UNKNOWN", end + 2)
    if fields[1] not in ("TCP4", "TCP6") or len(fields) != 6:
        raise ProxyHeaderError("malformed PROXY v1 line: expected TCP4, TCP6 or UNKNOWN and four fields")
    family = socket.AF_INET if fields[1] == "TCP4" else socket.AF_INET6
    source = (_proxy_v1_address(family, fields[2]), _proxy_v1_port(fields[4]))
    destination = (_proxy_v1_address(family, fields[3]), _proxy_v1_port(fields[5]))
    return ProxyHeader(1, "PROXY", end + 2, source, destination)


def _proxy_v1_address(family: int, text: str) -> str:
    """A v1 address in the form its family requires, in canonical text."""
    if family == socket.AF_INET and not _PROXY_V1_IPV4_RE.match(text):
        raise ProxyHeaderError("malformed IPv4 address in PROXY v1 line")
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, text))
    except (OSError, ValueError):
        raise ProxyHeaderError("malformed %s address in PROXY v1 line"
                               % ("IPv4" if family == socket.AF_INET else "IPv6")) from None


def _proxy_v1_port(text: str) -> int:
    if not _PROXY_V1_PORT_RE.match(text) or int(text) > 65535:
        raise ProxyHeaderError("malformed port in PROXY v1 line")
    return int(text)


def _parse_proxy_v2(data: bytes) -> ProxyHeader:
    version, command = data[12] >> 4, data[12] & 0x0F
    family, transport = data[13] >> 4, data[13] & 0x0F
    length = PROXY_V2_FIXED + struct.unpack("!H", data[14:16])[0]
    if version != 2:
        raise ProxyHeaderError("PROXY v2 header with version %d" % version)
    if command > 1:
        raise ProxyHeaderError("PROXY v2 header with unknown command %d" % command)
    if family > 3 or transport > 2:
        raise ProxyHeaderError("PROXY v2 header with unknown family/transport 0x%02x" % data[13])
    body = data[PROXY_V2_FIXED:length]
    address = _PROXY_V2_ADDRESS.get(data[13]) if command == 1 else None
    if address is None:   # LOCAL, or a family we do not use: the socket's own address stands
        return ProxyHeader(2, "PROXY" if command else "LOCAL", length)
    af, size = address
    if len(body) < 2 * size + 4:
        raise ProxyHeaderError("PROXY v2 address block shorter than its family needs")
    _check_proxy_tlvs(body[2 * size + 4:])
    ports = struct.unpack("!HH", body[2 * size:2 * size + 4])
    source = (socket.inet_ntop(af, body[:size]), ports[0])
    destination = (socket.inet_ntop(af, body[size:2 * size]), ports[1])
    return ProxyHeader(2, "PROXY", length, source, destination)


def _check_proxy_tlvs(tlvs: bytes) -> None:
    """TLVs (type, 16-bit length, value) are skipped, but must fill the rest
    of the header exactly: one that runs past its end is a broken sender."""
    at = 0
    while at < len(tlvs):
        if at + 3 > len(tlvs):
            raise ProxyHeaderError("PROXY v2 TLV header cut short")
        at += 3 + struct.unpack("!H", tlvs[at + 1:at + 3])[0]
        if at > len(tlvs):
            raise ProxyHeaderError("PROXY v2 TLV runs past the end of the header")


# ===========================================================================
# 4. WebSocket handshake: pure accept key, version, subprotocol
# ===========================================================================


def _sha1(data: bytes):
    """SHA-1 for the accept key.  CPython's built-in _sha1 avoids hashlib,
    whose OpenSSL binding costs about 4 MB of memory on a small box."""
    try:
        from _sha1 import sha1
    except ImportError:  # other interpreters
        from hashlib import sha1
    return sha1(data)


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    digest = _sha1((key + WEBSOCKET_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def is_upgrade_request(head: RequestHead) -> bool:
    return "websocket" in head.tokens("upgrade")


class Upgrade(NamedTuple):
    """An accepted WebSocket opening handshake."""

    key: str
    subprotocol: Optional[str]


def choose_subprotocol(offered: Sequence[str]) -> Optional[str]:
    """Pick ``binary`` wherever it is offered; none if nothing is offered.

    websockify only notices ``binary`` when it is first.  A client offering
    only ``base64`` (ancient websockify clients) would expect base64 text
    frames, which a byte relay does not speak: refuse it plainly.
    """
    if "binary" in offered:
        return "binary"
    if "base64" in offered:
        raise HttpError(400, "the base64 subprotocol is not supported; use binary frames")
    return None


def check_upgrade(head: RequestHead) -> Upgrade:
    """Validate a client's opening handshake (RFC 6455 4.2.1)."""
    if head.method != "GET":
        raise HttpError(405, "WebSocket handshake must use GET", [("Allow", "GET, HEAD")])
    if head.version < (1, 1):
        raise HttpError(400, "WebSocket handshake requires HTTP/1.1")
    if "upgrade" not in head.tokens("connection"):
        raise HttpError(400, "missing 'Connection: upgrade' header")
    versions = head.get_all("sec-websocket-version")
    if len(versions) != 1 or versions[0].strip() != SUPPORTED_WS_VERSION:
        raise HttpError(426, "unsupported WebSocket version; this server speaks version 13",
                             [("Sec-WebSocket-Version", SUPPORTED_WS_VERSION)])
    keys = head.get_all("sec-websocket-key")
    if len(keys) != 1:
        raise HttpError(400, "expected exactly one Sec-WebSocket-Key header")
    key = keys[0].strip()
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raw = b""
    if len(raw) != 16:
        raise HttpError(400, "invalid Sec-WebSocket-Key")
    subprotocol = choose_subprotocol(head.tokens("sec-websocket-protocol"))
    return Upgrade(key, subprotocol)


def upgrade_response(upgrade: Upgrade) -> bytes:
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Accept", accept_key(upgrade.key))]
    if upgrade.subprotocol:
        headers.append(("Sec-WebSocket-Protocol", upgrade.subprotocol))
    return http_response(101, headers)


# ===========================================================================
# 5. Frame codec: pure encode, incremental decode, masking, RFC checks
# ===========================================================================


class Opcode(IntEnum):
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005
    ABNORMAL = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011


_DATA_OPCODES = (Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY)
_KNOWN_OPCODES = frozenset(int(op) for op in Opcode)
MAX_CONTROL_PAYLOAD = 125


def close_code_is_valid(code: int) -> bool:
    """Codes a peer may put in a Close frame (RFC 6455 7.4).

    1004-1006 and 1015 are reserved and must never be sent; 1012-2999 are
    not assigned to endpoints by the RFC; 3000-4999 belong to libraries and
    applications.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1011 or 3000 <= code <= 4999


def apply_mask(data: bytes, key: bytes, offset: int = 0) -> bytes:
    """XOR ``data`` with the 4-byte masking ``key`` starting at key position ``offset``.

    One big-integer XOR: far faster than a per-byte loop, standard library only.
    """
    length = len(data)
    if not length:
        return b""
    if offset & 3:
        shift = offset & 3
        key = key[shift:] + key[:shift]
    if length >= _MASK_TRANSLATE_MIN:
        # Each of the 4 key bytes XORs every 4th byte: a strided slice and
        # bytes.translate, all at C speed, about 1.6x faster than the
        # big-integer XOR on 64 KiB (whose int<->bytes conversions dominate).
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        out = bytearray(length)
        for i in range(4):
            out[i::4] = data[i::4].translate(_xor_table(key[i]))
        return bytes(out)
    repeated = key * ((length >> 2) + 1)
    value = int.from_bytes(data, "little") ^ int.from_bytes(repeated[:length], "little")
    return value.to_bytes(length, "little")


# Below this many bytes the big-integer XOR is quicker than four translates.
_MASK_TRANSLATE_MIN = 512
_XOR_TABLES = {}   # key byte -> 256-byte XOR table; at most 256 entries (64 KiB)


def _xor_table(k: int) -> bytes:
    table = _XOR_TABLES.get(k)
    if table is None:
        table = _XOR_TABLES[k] = bytes(b ^ k for b in range(256))
    return table


def frame_header(opcode: int, length: int, fin: bool = True, mask_key: Optional[bytes] = None) -> bytes:
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if mask_key else 0
    if length < 126:
        header = bytes((first, mask_bit | length))
    elif length < 65536:
        header = bytes((first, mask_bit | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((first, mask_bit | 127)) + length.to_bytes(8, "big")
    return header + mask_key if mask_key else header


# Headers of final, unmasked binary frames of 0-125 bytes: the relay sends
# one per small target read (an RFB message), so they are made once.
_SMALL_BINARY_HEADERS = tuple(frame_header(0x2, length) for length in range(126))


def encode_frame(opcode: int, payload: bytes = b"", fin: bool = True, mask_key: Optional[bytes] = None) -> bytes:
    """One frame; masked when ``mask_key`` is given (what a client sends)."""
    body = apply_mask(payload, mask_key) if mask_key else payload
    return frame_header(opcode, len(payload), fin, mask_key) + body


def encode_close(code: Optional[int] = None, reason: str = "") -> bytes:
    """Close frame payload; the reason is cut to fit 125 bytes on a UTF-8 boundary."""
    if code is None:
        return b""
    data = reason.encode("utf-8")[:MAX_CONTROL_PAYLOAD - 2]
    data = data.decode("utf-8", "ignore").encode("utf-8")
    return code.to_bytes(2, "big") + data


def parse_close(payload: bytes) -> Tuple[int, str]:
    """Code and reason of a received Close frame (RFC 6455 5.5.1, 7.4)."""
    if not payload:
        return CloseCode.NO_STATUS, ""
    if len(payload) == 1:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not close_code_is_valid(code):
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "invalid close code %d" % code)
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(CloseCode.INVALID_DATA, "close reason is not valid UTF-8") from None
    return code, reason


class FramePiece(NamedTuple):
    """Part (or all) of one frame's unmasked payload.

    Data frames are handed out as their bytes arrive, so a large frame never
    has to sit whole in memory; control frames always come whole.
    """

    opcode: int          # the frame's opcode (CONTINUATION for later fragments)
    payload: bytes
    fin: bool            # the frame's FIN bit
    frame_end: bool      # this piece completes the frame


class FrameDecoder:
    """Incremental RFC 6455 frame decoder: feed bytes, take pieces.

    ``feed(data)`` appends; ``next_piece()`` returns a FramePiece or None when
    more bytes are needed.  Raises ProtocolError with the close code to send.
    Checks: RSV bits (no extensions are negotiated), known opcodes, control
    frames short and unfragmented, client masking, continuation order, and
    the message size cap (checked on each header, before the payload comes).
    """

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE, require_mask: bool = True):
        self.max_message_size = max_message_size
        self.require_mask = require_mask
        self._buffer = bytearray()
        self._pos = 0
        self._in_frame = False        # a header was parsed, payload pending
        self._opcode = 0
        self._fin = True
        self._mask = b""
        self._remaining = 0
        self._mask_offset = 0
        self._in_message = False      # a fragmented data message is open
        self._message_size = 0

    def feed(self, data: bytes) -> None:
        buffer = self._buffer
        if self._pos and self._pos >= len(buffer):
            buffer.clear()
            self._pos = 0
        elif self._pos > RELAY_CHUNK:
            del buffer[:self._pos]
            self._pos = 0
        buffer += data

    @property
    def buffered(self) -> int:
        return len(self._buffer) - self._pos

    def whole_small_frame(self, data: bytes) -> Optional[bytes]:
        """The unmasked payload if ``data`` is exactly one complete, final,
        masked binary frame of 1-125 bytes and nothing is pending; else None
        (and nothing consumed: use feed()).

        The common case, a VNC input event per read, without the general
        machinery: such a frame passes every check _parse_header makes
        (0x82: FIN, no RSV bits, a known data opcode that is neither a
        continuation nor inside a fragmented message).
        """
        length = len(data) - 6
        if (length <= 0 or data[0] != 0x82 or data[1] != 0x80 | length or length > 125
                or self._in_frame or self._in_message or self._pos < len(self._buffer)
                or length > self.max_message_size):
            return None
        return apply_mask(data[6:], data[2:6])

    def next_piece(self) -> Optional[FramePiece]:
        if not self._in_frame and not self._parse_header():
            return None
        available = len(self._buffer) - self._pos
        remaining = self._remaining
        is_control = self._opcode >= 0x8
        if is_control and available < remaining:
            return None
        if available == 0 and remaining:
            return None
        take = remaining if available >= remaining else available
        start = self._pos
        # One copy: a masked slice goes straight to apply_mask (bytes out).
        chunk = self._buffer[start:start + take]
        self._pos = start + take
        if self._mask:
            chunk = apply_mask(chunk, self._mask, self._mask_offset)
            self._mask_offset += take
        else:
            chunk = bytes(chunk)
        self._remaining = remaining - take
        done = self._remaining == 0
        if done:
            self._in_frame = False
        return FramePiece(self._opcode, chunk, self._fin, done)

    def _parse_header(self) -> bool:
        buffer, pos = self._buffer, self._pos
        available = len(buffer) - pos
        if available < 2:
            return False
        b0, b1 = buffer[pos], buffer[pos + 1]
        masked = b1 & 0x80
        length = b1 & 0x7F
        need = 2 + (2 if length == 126 else 8 if length == 127 else 0) + (4 if masked else 0)
        if available < need:
            # Still validate what we can see, so garbage fails fast.
            self._check_first_bytes(b0, b1)
            return False
        fin, opcode = self._check_first_bytes(b0, b1)
        offset = pos + 2
        if length == 126:
            length = int.from_bytes(buffer[offset:offset + 2], "big")
            offset += 2
        elif length == 127:
            length = int.from_bytes(buffer[offset:offset + 8], "big")
            offset += 8
            if length >> 63:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "frame length has the most significant bit set")
        if opcode < 0x8:
            if opcode == Opcode.CONTINUATION:
                size = self._message_size + length
            else:
                size = length
            if size > self.max_message_size:
                raise ProtocolError(CloseCode.MESSAGE_TOO_BIG,
                                    "message larger than %d bytes" % self.max_message_size)
            self._message_size = size
            self._in_message = not fin
        self._mask = bytes(buffer[offset:offset + 4]) if masked else b""
        self._pos = offset + (4 if masked else 0)
        self._opcode, self._fin = opcode, bool(fin)
        self._remaining = length
        self._mask_offset = 0
        self._in_frame = True
        return True

    def _check_first_bytes(self, b0: int, b1: int) -> Tuple[int, int]:
        fin, opcode = b0 & 0x80, b0 & 0x0F
        if b0 & 0x70:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "reserved bits set without an extension")
        if opcode not in _KNOWN_OPCODES:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "unknown opcode %#x" % opcode)
        if self.require_mask and not b1 & 0x80:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "client frame is not masked")
        if opcode >= 0x8:
            if not fin:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "fragmented control frame")
            if b1 & 0x7F > MAX_CONTROL_PAYLOAD:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "control frame longer than 125 bytes")
        elif opcode == Opcode.CONTINUATION:
            if not self._in_message:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "continuation frame without a message to continue")
        elif self._in_message:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "new data frame inside a fragmented message")
        return fin, opcode


# ===========================================================================
# 6. WebSocket session: pure fragments, ping/pong, close handshake
# ===========================================================================


class DataReceived(NamedTuple):
    payload: bytes


class PingReceived(NamedTuple):
    payload: bytes


class PongReceived(NamedTuple):
    payload: bytes


class CloseReceived(NamedTuple):
    code: int
    reason: str


class WebSocketSession:
    """Server side of one WebSocket connection, without I/O.

    ``receive(data)`` returns events; bytes to send back (pongs, the close
    reply) are taken with ``take_outgoing()`` (``has_outgoing`` says whether
    there are any).  Every ping is answered, but at most the latest
    MAX_OWED_PONGS wait unsent (RFC 6455 5.5.3 allows answering only the most
    recent): a client that floods pings and never reads is owed a few pongs,
    not one per ping, so what we owe it stays bounded.
    Binary payload is handed on as it arrives.  Text messages are checked as
    UTF-8 as they arrive (1007 at the first bad byte) and handed on whole,
    once valid, as bytes: the target never sees a part of an invalid message.
    A protocol violation does not lose the events before it: ``receive``
    returns them and sets ``failure`` (a ProtocolError) for the caller to
    close with; after a failure or a received Close, input is ignored.
    """

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE, require_mask: bool = True):
        self.decoder = FrameDecoder(max_message_size, require_mask)
        self.max_text_message = min(max_message_size, MAX_TEXT_MESSAGE)
        self.outgoing = bytearray()
        self.close_sent = False
        self.close_received = False
        self.failure = None       # type: Optional[ProtocolError]
        self._pongs_owed = deque()  # payloads of the latest unanswered pings, oldest first
        self._utf8 = None         # incremental decoder while a text message is open
        self._text = bytearray()  # the open text message, held until it is complete

    def receive(self, data: bytes) -> list:
        if self.close_received or self.failure is not None:
            return []
        payload = self.decoder.whole_small_frame(data)  # None while a text message is open
        if payload is not None:
            return [DataReceived(payload)]
        events = []
        try:
            self._receive(data, events)
        except ProtocolError as exc:
            self.failure = exc
        return events

    def _receive(self, data: bytes, events: list) -> None:
        decoder = self.decoder
        decoder.feed(data)
        while True:
            piece = decoder.next_piece()
            if piece is None:
                return
            opcode = piece.opcode
            if opcode < 0x8:
                if opcode == Opcode.TEXT or self._utf8 is not None:
                    message = self._add_text(piece)
                    if message is not None:
                        events.append(DataReceived(message))
                elif piece.payload:
                    events.append(DataReceived(piece.payload))
            elif opcode == Opcode.PING:
                if not self.close_sent:
                    self._pongs_owed.append(piece.payload)
                    if len(self._pongs_owed) > MAX_OWED_PONGS:
                        self._pongs_owed.popleft()
                events.append(PingReceived(piece.payload))
            elif opcode == Opcode.PONG:
                events.append(PongReceived(piece.payload))
            else:
                code, reason = parse_close(piece.payload)
                self.close_received = True
                if not self.close_sent:
                    reply = None if code == CloseCode.NO_STATUS else code
                    self._commit_pong()
                    self.outgoing += encode_frame(Opcode.CLOSE, encode_close(reply))
                    self.close_sent = True
                events.append(CloseReceived(code, reason))
                return

    def _add_text(self, piece: FramePiece) -> Optional[bytes]:
        """Validate and collect a text piece; the whole message once it is complete."""
        # Every piece of the first frame carries TEXT, not just its first one:
        # start over only when no text message is open.
        if piece.opcode == Opcode.TEXT and self._utf8 is None:
            self._utf8 = codecs.getincrementaldecoder("utf-8")()
            self._text.clear()
        final = piece.fin and piece.frame_end
        try:
            self._utf8.decode(piece.payload, final)
        except UnicodeDecodeError:
            raise ProtocolError(CloseCode.INVALID_DATA, "text message is not valid UTF-8") from None
        if len(self._text) + len(piece.payload) > self.max_text_message:
            raise ProtocolError(CloseCode.MESSAGE_TOO_BIG,
                                "text message larger than %d bytes" % self.max_text_message)
        self._text += piece.payload
        if not final:
            return None
        self._utf8 = None
        message = bytes(self._text)
        self._text.clear()
        return message or None

    def send_close(self, code: int, reason: str = "") -> None:
        if not self.close_sent:
            self._commit_pong()
            self.outgoing += encode_frame(Opcode.CLOSE, encode_close(code, reason))
            self.close_sent = True

    def send_ping(self, payload: bytes = b"") -> None:
        if not self.close_sent:
            self.outgoing += encode_frame(Opcode.PING, payload)

    @property
    def has_outgoing(self) -> bool:
        return bool(self.outgoing) or bool(self._pongs_owed)

    def take_outgoing(self) -> bytes:
        self._commit_pong()
        data = bytes(self.outgoing)
        self.outgoing.clear()
        return data

    def _commit_pong(self) -> None:
        """The pongs owed go out before anything queued after them (a Close)."""
        while self._pongs_owed:
            self.outgoing += encode_frame(Opcode.PONG, self._pongs_owed.popleft())


# ===========================================================================
# 7. Targets: fixed target, token file (reloaded on change), Redis, HTTP API, JWT
# ===========================================================================


def bracket_host(host: str) -> str:
    """An IPv6 address in brackets, as URLs and host:port strings write it."""
    return "[%s]" % host if ":" in host else host


def host_port(host: str, port: int) -> str:
    return "%s:%d" % (bracket_host(host), port)


class Target:
    """Where a connection goes: a TCP host and port, or a Unix socket.

    Immutable and comparable by value.  Deliberately not a tuple, so that
    ``"... %s" % target`` formats it instead of unpacking it.
    """

    __slots__ = ("host", "port", "unix_path")

    def __init__(self, host: str = "", port: int = 0, unix_path: str = ""):
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "unix_path", unix_path)

    def __setattr__(self, name, value):
        raise AttributeError("Target is immutable")

    def _key(self) -> tuple:
        return (self.host, self.port, self.unix_path)

    def __eq__(self, other) -> bool:
        return isinstance(other, Target) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Target(host=%r, port=%r, unix_path=%r)" % self._key()

    def __str__(self) -> str:
        if self.unix_path:
            return "unix:" + self.unix_path
        return host_port(self.host, self.port)


def parse_host_port(text: str, what: str = "address", need_host: bool = True) -> Tuple[str, int]:
    """``host:port``, ``[v6]:port``, bare IPv6 ``fe80::1:5900``; ``port`` alone if need_host is False."""
    text = text.strip()
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or not text[close + 1:].startswith(":"):
            raise ValueError("%s %r: expected [IPv6]:port" % (what, text))
        host, port_text = text[1:close], text[close + 2:]
    elif ":" in text:
        host, port_text = text.rsplit(":", 1)
        # Bare IPv6 (fe80::1:5900): what is left must still be an address, or
        # "fe80::1" with the port forgotten would mean host "fe80:" port 1.
        if ":" in host and not _is_ipv6(host):
            raise ValueError("%s %r: expected host:port (IPv6 as [address]:port)" % (what, text))
    elif need_host:
        raise ValueError("%s %r: expected host:port" % (what, text))
    else:
        host, port_text = "", text
    # isascii: str.isdigit() also accepts digits like "\u00b2" that int() refuses
    # or reads as some other number; the length check keeps int() cheap.
    if (not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5
            or not 0 < int(port_text) < 65536):
        raise ValueError("%s %r: port must be a number from 1 to 65535" % (what, text))
    if need_host and not host:
        raise ValueError("%s %r: missing host" % (what, text))
    return host, int(port_text)


def _is_ipv6(text: str) -> bool:
    # inet_pton rather than ipaddress, which would cost a megabyte of memory.
    try:
        socket.inet_pton(socket.AF_INET6, text.split("%", 1)[0])  # a zone (%eth0) is fine
    except (OSError, ValueError):
        return False
    return True


_TOKEN_SPLIT_RE = re.compile(r":\s+")
# The word after a token's target that makes its connections view-only.
TOKEN_VIEW_ONLY = "view-only"
# A line of a token file ends at "\n" (or "\r\n") and nowhere else.
# str.splitlines() would also end one at \x0b \x0c \x1c-\x1e \x85 U+2028
# U+2029 (and open() at a lone \r), so "user1<U+2028>admin: host:22" would
# become a token "admin" that no editor shows on a line of its own.  An entry
# holding one of those, or any other control character (tab aside), is
# refused with its file:line instead.
_TOKEN_LINE_BAD_CHAR_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


class TokenEntry(NamedTuple):
    target: Target
    origin: str  # "file:line", for logs that must not show the token itself
    view_only: bool = False   # the client may watch but not type or point (token file: "view-only")


def parse_token_text(text: str, source: str) -> Tuple[Dict[str, TokenEntry], List[str]]:
    """Parse websockify's token format: ``token: host:port`` per line.

    The split is at the first colon followed by whitespace, so IPv6 targets
    need no brackets.  ``token: unix_socket:/path`` names a Unix socket (the
    path is the rest of the line: ``vm: unix_socket:/run/a: b`` is token
    ``vm``, path ``/run/a: b``).  A last word ``view-only`` after the target
    makes the token's connections view-only (section 9b).  Lines end at
    ``\n`` only.  Returns the
    entries and a list of ``file:line: reason`` problems; a bad line never
    spoils the rest of the file.
    """
    entries = {}
    problems = []
    if text.startswith("\ufeff"):   # a byte order mark (Windows editors) is not part of the first token
        text = text[1:]
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = "%s:%d" % (source, number)
        entry = _parse_token_line(raw[:-1] if raw.endswith("\r") else raw)
        if isinstance(entry, str):
            problems.append("%s: %s" % (where, entry))
            continue
        token, target, view_only = entry
        if token in entries:
            problems.append("%s: token repeated; this line wins" % where)
        entries[token] = TokenEntry(target, where, view_only)
    return entries, problems


def _parse_token_line(line: str):
    """``(token, Target, view_only)`` from one entry line, or the reason it is refused."""
    bad = _TOKEN_LINE_BAD_CHAR_RE.search(line)
    if bad:
        return "control character U+%04X in the line (a line ends only at a newline)" % ord(bad.group())
    parts = _TOKEN_SPLIT_RE.split(line.strip(), 1)
    if len(parts) != 2 or not parts[0]:   # (the line is stripped, so parts[1] is never blank)
        return "expected 'token: host:port'"
    token, target_text = parts[0].strip(), parts[1]
    if any(ch.isspace() for ch in token):
        return "token contains whitespace"
    words = target_text.rsplit(None, 1)
    view_only = len(words) == 2 and words[1] == TOKEN_VIEW_ONLY
    if view_only:
        target_text = words[0]
    if target_text.startswith("unix_socket:"):
        path = target_text[len("unix_socket:"):]
        return (token, Target(unix_path=path), view_only) if path else "empty unix_socket path"
    try:
        host, port = parse_host_port(target_text, "target")
    except ValueError as exc:
        return str(exc)
    return token, Target(host, port), view_only


# Files in a token directory that are not read.  Editors, patch and package
# managers leave copies beside a file they change (customers~, customers.bak,
# .orig, .rej, .swp, .dpkg-old, .rpmsave, ...), and reading those would keep
# alive a token deleted from the real file.  Hidden names are skipped too:
# editors' swap and lock files (.customers.swp, .#customers) and tools'
# temporaries; so are Emacs's #autosaves#, .tmp and .new (half-written).
_SKIPPED_TOKEN_FILE_RE = re.compile(
    r"^[.#]|~$|\.(bak|old|orig|rej|save|tmp|new|sw[a-p]|pacnew|pacsave|rpm\w*|dpkg-\w*|ucf-\w*)$",
    re.IGNORECASE)
# The log line naming the files read (and skipped) lists this many of each:
# enough to check by eye, and a directory of thousands stays one short line.
TOKEN_LOG_MAX_NAMES = 20


def is_skipped_token_file(name: str) -> bool:
    """Whether a file name in a token directory is a backup, swap or hidden file (not read)."""
    return bool(_SKIPPED_TOKEN_FILE_RE.search(name))


def _name_list(names: List[str]) -> str:
    shown = [name if name.isprintable() else ascii(name) for name in names[:TOKEN_LOG_MAX_NAMES]]
    more = len(names) - len(shown)
    return ", ".join(shown) + (" and %d more" % more if more else "")


class TokenFile:
    """Tokens from a file or a directory of files, reloaded when they change.

    Each lookup costs a stat() of the source (and a listing for a directory);
    the files are re-read only when a modification time, size or inode moved.
    A missing source resolves nothing: deleting the file revokes its tokens.
    In a directory, backup, swap and hidden files are not read
    (is_skipped_token_file); the files read are logged at start and whenever
    that set changes.
    """

    name = "file"

    def __init__(self, path: str, reload: bool = True):
        self.path = path
        self.follow = reload    # re-read on change (False: ReadOnlyTokenFile)
        self._lock = threading.Lock()
        self._signature = None
        self._entries = {}  # type: Dict[str, TokenEntry]
        self._refresh(force=True)

    def _files(self) -> Tuple[List[str], List[str]]:
        """The paths to read and the names skipped; a file source is read whatever its name."""
        if not os.path.isdir(self.path):
            return [self.path], []
        read, skipped = [], []
        for name in sorted(os.listdir(self.path)):
            full = os.path.join(self.path, name)
            if os.path.isfile(full):
                (skipped if is_skipped_token_file(name) else read).append(name)
        return [os.path.join(self.path, name) for name in read], skipped

    def _scan(self):
        """(signature, skipped names); the signature is None when the source is missing."""
        try:
            files, skipped = self._files()
            return tuple((name, st.st_mtime_ns, st.st_size, st.st_ino)
                         for name, st in ((name, os.stat(name)) for name in files)), skipped
        except OSError:
            return None, []

    def _refresh(self, force: bool = False, quiet: bool = False) -> None:
        signature, skipped = self._scan()
        if not force and signature == self._signature:
            return
        with self._lock:
            if not force and signature == self._signature:
                return
            if signature is None:
                if self._signature is not None or force:
                    log.warning("token source %s is missing: no tokens resolve until it returns", self.path)
                self._entries, self._signature = {}, None
                return
            entries = self._read([name for name, *_ in signature])
            if not quiet:
                self._log_files(signature, skipped, len(entries), force)
            self._entries, self._signature = entries, signature

    @staticmethod
    def _read(files: List[str]) -> Dict[str, TokenEntry]:
        entries = {}
        for name in files:
            try:
                with open(name, encoding="utf-8", errors="replace", newline="") as handle:
                    text = handle.read()
            except OSError as exc:
                log.warning("token source %s: %s", name, exc.strerror)
                continue
            found, problems = parse_token_text(text, name)
            for problem in problems:
                log.warning("token file %s", problem)
            entries.update(found)
        return entries

    def _log_files(self, signature, skipped: List[str], count: int, force: bool) -> None:
        """One line: the token count, and which files were read whenever that set is new."""
        names = [os.path.basename(name) for name, *_ in signature]
        before = [os.path.basename(name) for name, *_ in self._signature or ()]
        reloaded = "" if force else " reloaded"
        tokens = "%d token%s" % (count, "" if count == 1 else "s")
        if not force and self._signature is not None and names == before:
            log.info("token source %s%s: %s", self.path, reloaded, tokens)
            return
        log.info("token source %s%s: %s from %d file%s: %s%s", self.path, reloaded, tokens,
                 len(names), "" if len(names) == 1 else "s", _name_list(names) or "none",
                 "; not read (backup, swap or hidden): " + _name_list(skipped) if skipped else "")

    def lookup(self, token: str) -> Optional[TokenEntry]:
        if self.follow:
            self._refresh()
        return self._entries.get(token)

    def tokens(self) -> List[str]:
        if self.follow:
            self._refresh()
        return list(self._entries)

    def reload(self) -> int:
        """Re-read the source now, whatever its times say (SIGHUP; a
        ReadOnlyTokenFile too); the number of tokens.  The caller logs."""
        self._refresh(force=True, quiet=True)
        return len(self._entries)


def redact_token(token: str) -> str:
    """Enough of a token to tell connections apart in a log, not enough to reuse it."""
    return token[:3] + "..." if len(token) > 3 else "***"


# -- more token sources: Redis, an HTTP API, signed JWTs, directories -------
#
# websockify's other token plugins, under the same names and --token-source
# syntax.  Each source has lookup(token) -> Optional[TokenEntry] (None: an
# unknown token, 404), may raise HttpError (403 for a refused JWT, 503 when
# its store cannot answer), and a ``name`` that metrics and logs count by.
# The remote ones (Redis, HTTP API) are this section's only sockets.

# A lookup in a remote token store (Redis, an HTTP API) gives up after this
# many seconds, waiting for the shared Redis connection included: the
# browser gets 503 with a reason instead of a hang, and a dead store holds a
# connection's thread no longer than this.
TOKEN_LOOKUP_TIMEOUT = 2.0
# After a failed attempt to reach Redis, lookups answer 503 at once for this
# long instead of each trying again: a store that is down is not hammered by
# every browser, and it is found again within this delay once it is back.
TOKEN_RETRY_DELAY = 0.5
# The Retry-After of a 503: about when the store may be worth asking again.
TOKEN_RETRY_AFTER = 2
# A stored value, an API reply or a key file longer than this is refused: an
# entry is a host, a port and a flag, so a huge one is a mistake, and it must
# not grow memory.
MAX_TOKEN_VALUE = 64 * 1024
REDIS_DEFAULT_PORT = 6379
REDIS_SOURCE_FORMAT = "HOST[:PORT[:DB[:PASSWORD[:NAMESPACE]]]]"
# websockify's host name for "the port field is a Unix socket path".
UNIX_SOCKET_HOST = "unix_socket"


class TokenSourceDown(HttpError):
    """The token store did not answer: 503 before the upgrade, with why."""

    def __init__(self, source_name: str, why: str):
        super().__init__(503, "the token store (%s) is unavailable: %s; try again shortly"
                         % (source_name, why.rstrip(".")), [("Retry-After", str(TOKEN_RETRY_AFTER))])


class SourceHealth:
    """Whether a remote token store answers, logged once per change: one
    warning when it goes down and one line when it is back (with how many
    lookups it refused meanwhile), never a line per connection."""

    def __init__(self, name: str, what: str):
        self.name = name      # "redis", shown to the browser
        self.what = what      # where, for the log (never a password)
        self._lock = threading.Lock()
        self._down_since = None  # type: Optional[float]
        self._refused = 0

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    def down(self, why: str) -> TokenSourceDown:
        """Count a lookup the store could not answer; the error to raise."""
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since, self._refused = time.monotonic(), 0
            self._refused += 1
        if first:
            log.warning("token source %s is down (%s): lookups answer 503 until it recovers", self.what, why)
        return TokenSourceDown(self.name, why)

    def up(self) -> None:
        if self._down_since is None:   # the common case, without the lock
            return
        with self._lock:
            since, refused, self._down_since = self._down_since, self._refused, None
        if since is not None:
            log.info("token source %s recovered after %.1fs (%d lookup%s answered 503 meanwhile)", self.what,
                     time.monotonic() - since, refused, "" if refused == 1 else "s")


def split_source_args(text: str) -> List[str]:
    """websockify's --token-source fields: split at colons, where a field
    wrapped in double quotes may hold colons (``host::::"ns:sub"``).  A quote
    that does not close just before a colon or the end is an ordinary
    character, as websockify reads it."""
    fields = []
    at = 0
    while True:
        if text.startswith('"', at):
            close = text.find('"', at + 1)
            if close > at + 1 and (close + 1 == len(text) or text[close + 1] == ":"):
                fields.append(text[at + 1:close])
                if close + 1 == len(text):
                    return fields
                at = close + 2
                continue
        end = text.find(":", at)
        if end < 0:
            fields.append(text[at:])
            return fields
        fields.append(text[at:end])
        at = end + 1


class RedisSource(NamedTuple):
    host: str
    port: int
    db: int
    password: Optional[str]
    namespace: str

    def key(self, token: str) -> bytes:
        """The key websockify reads for a token: ``NAMESPACE:token`` or the token alone."""
        return ((self.namespace + ":" if self.namespace else "") + token).encode("utf-8", "surrogateescape")

    def __str__(self) -> str:
        return "redis %s db %d%s%s" % (host_port(self.host, self.port), self.db,
                                       " namespace %r" % self.namespace if self.namespace else "",
                                       " (password set)" if self.password else "")


_HOST_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


def parse_redis_source(text: str) -> RedisSource:
    """``HOST[:PORT[:DB[:PASSWORD[:NAMESPACE]]]]`` as websockify's TokenRedis
    reads it: empty fields take the defaults (``host:::secret``), a quoted
    field may hold colons (an IPv6 host ``"::1"``, a namespace ``"a:b"``).
    Errors quote the field at fault, never the whole text (it holds the password)."""
    fields = split_source_args(text)
    problem = "TokenRedis --token-source: expected %s" % REDIS_SOURCE_FORMAT
    if len(fields) > 5:
        raise ConfigError(problem + ", found %d fields (quote a field that holds a colon)" % len(fields))
    host, port, db, password, namespace = fields + [""] * (5 - len(fields))
    if not (_HOST_NAME_RE.fullmatch(host) or _is_ipv6(host)):
        raise ConfigError(problem + ": HOST %r is not a host name or address" % host)
    if port and not (port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536):
        raise ConfigError(problem + ": PORT must be a number from 1 to 65535, not %r" % port)
    if db and not (db.isascii() and db.isdigit() and len(db) <= 9):
        raise ConfigError(problem + ": DB must be a database number such as 0 or 1, not %r" % db)
    return RedisSource(host, int(port or REDIS_DEFAULT_PORT), int(db or 0), password or None, namespace)


def target_from_parts(host, port) -> Target:
    """A target from a store's host and port, as websockify reads them: the
    host ``unix_socket`` makes the port a Unix socket path."""
    if host == UNIX_SOCKET_HOST and isinstance(port, str) and port:
        return Target(unix_path=port)
    if not isinstance(host, str) or not host or isinstance(port, bool):
        raise ValueError("expected a host name and a port")
    if isinstance(port, int):
        port = str(port)
    if not isinstance(port, str):
        raise ValueError("the port must be a number")
    return Target(*parse_host_port("%s:%s" % (bracket_host(host.strip("[]")), port), "target"))


def parse_target_value(text: str) -> Tuple[Target, bool]:
    """(target, view_only) from a value in Redis or an API's reply, in the
    forms websockify reads: JSON ``{"host": "h:p"}`` or ``{"host": "h",
    "port": p}``, or plain ``h:p`` (``[v6]:p``, ``unix_socket:/path``).
    JSON may add ``"view_only": true``.  ValueError says what is wrong."""
    text = text.strip()
    if not text.startswith("{"):
        return _target_from_text(text), False
    import json  # lazily: only for these token sources
    value = json.loads(text)
    if not isinstance(value, dict) or not isinstance(value.get("host"), str):
        raise ValueError("JSON without a \"host\"")
    view_only = value.get("view_only", False)
    if not isinstance(view_only, bool):
        raise ValueError("\"view_only\" must be true or false")
    if "port" in value:
        return target_from_parts(value["host"], value["port"]), view_only
    return _target_from_text(value["host"]), view_only


def _target_from_text(text: str) -> Target:
    if text.startswith(UNIX_SOCKET_HOST + ":"):
        return target_from_parts(UNIX_SOCKET_HOST, text[len(UNIX_SOCKET_HOST) + 1:])
    return Target(*parse_host_port(text, "target"))


def entry_from_value(raw: bytes, origin: str, token: str) -> Optional[TokenEntry]:
    """The entry a stored value names; an unusable value is logged and
    resolves nothing (404), as in websockify."""
    try:
        target, view_only = parse_target_value(raw.decode("utf-8"))
    except ValueError as exc:   # UnicodeDecodeError and json's errors are ValueErrors
        log.warning("token source %s: the entry for token %r is unusable: %s", origin, redact_token(token),
                    loggable(str(exc)[:200]))
        return None
    return TokenEntry(target, origin, view_only)


# -- Redis: a small RESP client (https://redis.io/docs/reference/protocol-spec/)

class RespError(NamedTuple):
    """An error reply (``-WRONGTYPE ...``): a value, since only the caller knows what it means."""
    message: str


class RespProtocolError(Exception):
    """Redis (or whatever answered) broke RESP: the connection is dropped."""


# A reply line (status, error, integer, bulk length) longer than this is not Redis.
MAX_RESP_LINE = 4096
_RESP_NUMBER_RE = re.compile(r"-?[0-9]{1,20}")


def resp_command(*args: bytes) -> bytes:
    """A command as a RESP array of bulk strings: binary-safe, so a token
    holding CR LF or spaces cannot become a second command."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args)


def parse_resp(data: bytes):
    """One reply from the start of ``data``: ``(value, bytes used)``, or
    None until it is complete.  Values: str (status), RespError, int, bytes
    (bulk) or None (a missing key).  Arrays are never asked for here."""
    end = data.find(b"\r\n", 0, MAX_RESP_LINE)
    if end < 0:
        if len(data) >= MAX_RESP_LINE:
            raise RespProtocolError("reply line longer than %d bytes" % MAX_RESP_LINE)
        return None
    kind, line = data[:1], data[1:end].decode("utf-8", "replace")
    if kind == b"+":
        return line, end + 2
    if kind == b"-":
        return RespError(line), end + 2
    if kind not in (b":", b"$"):
        raise RespProtocolError("unexpected reply type %r" % kind)
    if not _RESP_NUMBER_RE.fullmatch(line):   # int() would also take " 1", "+1" and "1_0"
        raise RespProtocolError("bad number %r in a reply" % line[:20])
    number = int(line)
    if kind == b":":
        return number, end + 2
    if number == -1:
        return None, end + 2
    if not 0 <= number <= MAX_TOKEN_VALUE:
        raise RespProtocolError("a value of %d bytes (at most %d are read)" % (number, MAX_TOKEN_VALUE))
    stop = end + 2 + number
    if len(data) < stop + 2:
        return None
    if data[stop:stop + 2] != b"\r\n":
        raise RespProtocolError("bulk string not followed by CR LF")
    return data[end + 2:stop], stop + 2


class StoreDown(Exception):
    """A remote store could not be asked; the text says why (no secrets)."""


def _why(exc: BaseException, timeout: float) -> str:
    """Short words for a network failure, fit for the browser and the log."""
    if isinstance(exc, socket.timeout):
        return "no answer within %gs" % timeout
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "cannot resolve its host name"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


class RedisClient:
    """One connection to Redis shared by every lookup, behind a lock; opened
    on first use (AUTH, SELECT) and again after a failure.

    Every call has one deadline for the lock, the connect and the reply, so
    a dead or slow Redis stalls no lookup beyond ``timeout``.  After a failed
    connect, calls fail at once for ``retry_delay``.  A kept connection that
    fails (Redis restarted meanwhile) is retried once on a new one.
    """

    def __init__(self, source: RedisSource, timeout: float = TOKEN_LOOKUP_TIMEOUT,
                 retry_delay: float = TOKEN_RETRY_DELAY):
        self.source = source
        self.timeout = timeout
        self.retry_delay = retry_delay
        self._lock = threading.Lock()
        self._sock = None  # type: Optional[socket.socket]
        self._buffer = b""
        self._retry_at = 0.0
        self._last_failure = ""

    def get(self, key: bytes) -> Optional[bytes]:
        """The value at ``key`` or None.  StoreDown when Redis cannot answer;
        ValueError when the key holds something other than a string."""
        deadline = time.monotonic() + self.timeout
        if not self._lock.acquire(timeout=self.timeout):
            raise StoreDown("no answer within %gs (earlier lookups still wait)" % self.timeout)
        try:
            reply = self._get_locked(key, deadline)
            if isinstance(reply, RespError) and not reply.message.startswith("WRONGTYPE"):
                # NOAUTH after a restart with a new password, LOADING, MISCONF...: Redis, not the entry.
                self._drop()
                raise StoreDown("redis: %s" % reply.message[:200])
        finally:
            self._lock.release()
        if isinstance(reply, RespError):
            raise ValueError("redis: %s" % reply.message[:200])
        return reply

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _get_locked(self, key: bytes, deadline: float):
        kept = self._sock is not None
        try:
            if not kept:
                self._open(deadline)
            return self._call(deadline, b"GET", key)
        except (OSError, RespProtocolError) as exc:
            self._drop()
            if not kept:
                raise StoreDown(_why(exc, self.timeout)) from None
        try:   # the kept connection had gone stale: once more on a new one
            self._open(deadline)
            return self._call(deadline, b"GET", key)
        except (OSError, RespProtocolError) as exc:
            self._drop()
            raise StoreDown(_why(exc, self.timeout)) from None

    def _open(self, deadline: float) -> None:
        now = time.monotonic()
        if now < self._retry_at:
            raise StoreDown(self._last_failure)
        source = self.source
        try:
            self._sock = socket.create_connection((source.host, source.port), timeout=max(deadline - now, 0.01))
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for command in self._handshake():
                reply = self._call(deadline, *command)
                if isinstance(reply, RespError):
                    # The message (WRONGPASS, NOAUTH, DB index out of range) never holds the password.
                    raise StoreDown("redis refused %s: %s" % (command[0].decode(), reply.message[:200]))
        except (OSError, RespProtocolError, StoreDown) as exc:
            self._drop()
            self._last_failure = str(exc) if isinstance(exc, StoreDown) else _why(exc, self.timeout)
            self._retry_at = time.monotonic() + self.retry_delay
            raise StoreDown(self._last_failure) from None

    def _handshake(self) -> List[Tuple[bytes, ...]]:
        commands = []
        if self.source.password is not None:
            commands.append((b"AUTH", self.source.password.encode("utf-8", "surrogateescape")))
        if self.source.db:
            commands.append((b"SELECT", b"%d" % self.source.db))
        return commands

    def _call(self, deadline: float, *args: bytes):
        sock = self._sock
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        sock.sendall(resp_command(*args))
        while True:
            parsed = parse_resp(self._buffer)
            if parsed is not None:
                value, used = parsed
                self._buffer = self._buffer[used:]
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("timed out")
            sock.settimeout(remaining)
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionResetError(errno.ECONNRESET, "connection closed by redis")
            self._buffer += chunk

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock, self._buffer = None, b""


class TokenRedis:
    """websockify's TokenRedis: a token's target is the value at the key
    ``[NAMESPACE:]token`` in Redis (JSON or plain, see parse_target_value).
    A key set or deleted takes effect on the next connection."""

    name = "redis"

    def __init__(self, source: str):
        self.source = parse_redis_source(source)
        self.client = RedisClient(self.source)
        self.health = SourceHealth(self.name, str(self.source))

    def describe(self) -> str:
        return str(self.source)

    def lookup(self, token: str) -> Optional[TokenEntry]:
        try:
            value = self.client.get(self.source.key(token))
        except StoreDown as exc:
            raise self.health.down(str(exc)) from None
        except ValueError as exc:     # WRONGTYPE: the key is a hash, a list, ...
            self.health.up()
            log.warning("token source %s: the key for token %r is unusable: %s", self.source,
                        redact_token(token), loggable(str(exc)))
            return None
        self.health.up()
        if value is None:
            return None
        return entry_from_value(value, "redis db %d" % self.source.db, token)


# -- an HTTP API ---------------------------------------------------------------


def check_api_url(source: str) -> None:
    """ConfigError unless ``source`` is an http(s) URL with one ``%s`` for the token."""
    shown = re.sub(r"//[^/@]*@", "//", source)   # the error shows no user:password@
    if not source.lower().startswith(("http://", "https://")):
        raise ConfigError("--token-source %r: a token API is an http:// or https:// URL with %%s where "
                          "the token goes, e.g. 'http://api/lookup?token=%%s'" % shown)
    try:
        filled = source % "TOKEN"
    except (TypeError, ValueError):
        raise ConfigError("--token-source %r: the URL needs exactly one %%s (where the token goes; "
                          "write a literal %% as %%%%)" % shown) from None
    if "TOKEN" not in filled:
        raise ConfigError("--token-source %r: the URL needs a %%s where the token goes" % shown)


def _url_without_secrets(url: str) -> str:
    """scheme://host/path of an API URL, for logs and the banner: no
    user:password@ and no query (either may hold an API key)."""
    import urllib.parse  # lazily: it costs start-up time (it pulls in ipaddress)
    parts = urllib.parse.urlsplit(url)
    return "%s://%s%s%s" % (parts.scheme, parts.hostname or "", ":%d" % parts.port if parts.port else "",
                            parts.path.replace("%s", "TOKEN"))


def _url_credentials(url: str) -> Tuple[str, Dict[str, str]]:
    """The URL without ``user:password@``, and the Basic Authorization header
    that carries them instead (requests, under websockify, does the same;
    urllib would take them for part of the host)."""
    import urllib.parse  # lazily: it costs start-up time (it pulls in ipaddress)
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    userinfo, _, host = parts.netloc.rpartition("@")
    # The URL is a %-template: "%%" in it is one "%" (p%%40ss is p@ss).
    user, _, password = userinfo.replace("%%", "%").partition(":")
    credentials = "%s:%s" % (urllib.parse.unquote(user), urllib.parse.unquote(password))
    header = "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), {"Authorization": header}


class BaseTokenAPI:
    """websockify's BaseTokenAPI: GET the URL with the token in place of its
    ``%s`` (URL-quoted); a 2xx body names the target (plain ``host:port``,
    or JSON as JSONTokenApi).  4xx is an unknown token (404); 5xx, a timeout
    or no answer is the store down (503).  HTTPS certificates are verified
    against the system's CAs (or SSL_CERT_FILE)."""

    name = "api"

    def __init__(self, source: str, timeout: float = TOKEN_LOOKUP_TIMEOUT):
        check_api_url(source)
        self.url, self.headers = _url_credentials(source)
        self.timeout = timeout
        self.what = "API " + _url_without_secrets(source)
        self.health = SourceHealth(self.name, self.what)

    def describe(self) -> str:
        return self.what

    def lookup(self, token: str) -> Optional[TokenEntry]:
        import urllib.parse
        # Quoted: websockify pastes the token as it is, so "x&admin=1" or
        # "../" would change the request the API sees.
        body = self._fetch(self.url % urllib.parse.quote(token, safe=""))
        self.health.up()
        if body is None:
            return None
        return entry_from_value(body, self.what, token)

    def _fetch(self, url: str) -> Optional[bytes]:
        """The reply's body for a 2xx, None for a 4xx; raises TokenSourceDown."""
        import http.client
        import urllib.error
        import urllib.request
        request = urllib.request.Request(url, headers={"User-Agent": SERVER_NAME,
                                                       "Accept": "application/json, text/plain"})
        for name, value in self.headers.items():
            request.add_unredirected_header(name, value)   # credentials never follow a redirect elsewhere
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                body = reply.read(MAX_TOKEN_VALUE + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code >= 500:
                raise self.health.down("HTTP %d from the API" % exc.code) from None
            return None
        except urllib.error.URLError as exc:
            reason = exc.reason
            raise self.health.down(_why(reason, self.timeout) if isinstance(reason, BaseException)
                                   else str(reason)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise self.health.down(_why(exc, self.timeout)) from None
        if len(body) > MAX_TOKEN_VALUE:
            log.warning("token source %s: a reply longer than %d bytes is not read", self.what, MAX_TOKEN_VALUE)
            return None
        return body


class JSONTokenApi(BaseTokenAPI):
    """websockify's JSONTokenApi: the same, with a JSON reply
    ``{"host": ..., "port": ...}`` (plain ``host:port`` is read too)."""


# -- signed JWTs (RFC 7519, JWS compact form RFC 7515) -------------------------

# The signature algorithms accepted (RFC 7518 3.1) and their hashes.  "none"
# is never accepted, and an algorithm must fit the key's kind: an HS token
# checked with an RSA public key as its HMAC secret is the classic forgery.
JWT_HASHES = {"256": "sha256", "384": "sha384", "512": "sha512"}
JWT_ALGORITHMS = tuple(family + bits for family in ("HS", "RS") for bits in JWT_HASHES)
# DER of each hash's OID (RFC 8017 A.2.4), for the PKCS#1 v1.5 DigestInfo.
_HASH_OIDS = {"sha256": bytes.fromhex("608648016503040201"), "sha384": bytes.fromhex("608648016503040202"),
              "sha512": bytes.fromhex("608648016503040203")}
_RSA_ENCRYPTION_OID = bytes.fromhex("2a864886f70d010101")   # 1.2.840.113549.1.1.1
# RSA keys shorter than this are refused: they can be factored (NIST SP 800-131A).
MIN_RSA_BITS = 2048
# Shorter HMAC secrets are accepted with a warning (RFC 7518 3.2 asks for at
# least as many bits as the hash).
MIN_HMAC_BYTES = 32
_DER_SEQUENCE, _DER_INTEGER, _DER_BIT_STRING, _DER_OCTET_STRING, _DER_NULL, _DER_OID = 0x30, 2, 3, 4, 5, 6
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")


class JwtKey(NamedTuple):
    """A verification key: ``family`` HS (``secret``) or RS (``n``, ``e``)."""
    family: str
    secret: bytes = b""
    n: int = 0
    e: int = 0


class JwtRefused(Exception):
    """A token that is not accepted; the text says why (safe to show)."""


def _der_read(data: bytes, at: int = 0) -> Tuple[int, bytes, int]:
    """(tag, contents, offset after) of the DER element at ``at``."""
    if at + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length, at = data[at], data[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or at + count > len(data):
            raise ValueError("bad DER length")
        length, at = int.from_bytes(data[at:at + count], "big"), at + count
    if at + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[at:at + length], at + length


def _der_items(data: bytes, tag: int = _DER_SEQUENCE) -> List[Tuple[int, bytes]]:
    """The elements inside one DER element of ``tag`` that fills ``data``."""
    found, contents, end = _der_read(data)
    if found != tag or end != len(data):
        raise ValueError("unexpected DER structure")
    items, at = [], 0
    while at < len(contents):
        item_tag, item, at = _der_read(contents, at)
        items.append((item_tag, item))
    return items


def _der_uint(item: Tuple[int, bytes]) -> int:
    tag, contents = item
    if tag != _DER_INTEGER or not contents or contents[0] & 0x80:
        raise ValueError("expected a positive INTEGER")
    return int.from_bytes(contents, "big")


def _der(tag: int, contents: bytes) -> bytes:
    size = len(contents)
    length = bytes([size]) if size < 0x80 else bytes([0x80 | ((size.bit_length() + 7) // 8)]) + size.to_bytes(
        (size.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + contents


def _rsa_numbers(der: bytes, label: str) -> Tuple[int, int]:
    """(n, e) from a PEM block's DER: SubjectPublicKeyInfo, PKCS#1
    RSAPublicKey or RSAPrivateKey, or an unencrypted PKCS#8 private key."""
    items = _der_items(der)
    if label == "RSA PUBLIC KEY":
        return _der_uint(items[0]), _der_uint(items[1])
    if label == "RSA PRIVATE KEY":        # version, n, e, d, ...
        return _der_uint(items[1]), _der_uint(items[2])
    algorithm = items[1 if label == "PRIVATE KEY" else 0]
    if algorithm[0] != _DER_SEQUENCE or _der_read(algorithm[1])[:2] != (_DER_OID, _RSA_ENCRYPTION_OID):
        raise ValueError("not an RSA key (only RSA and HMAC keys are supported)")
    if label == "PRIVATE KEY":            # version, algorithm, OCTET STRING(RSAPrivateKey)
        return _rsa_numbers(items[2][1], "RSA PRIVATE KEY")
    tag, bits = items[1]                  # algorithm, BIT STRING(RSAPublicKey)
    if tag != _DER_BIT_STRING or bits[:1] != b"\x00":
        raise ValueError("bad public key BIT STRING")
    return _rsa_numbers(bits[1:], "RSA PUBLIC KEY")


_PEM_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_PEM_KEY_LABELS = ("PUBLIC KEY", "RSA PUBLIC KEY", "RSA PRIVATE KEY", "PRIVATE KEY")


def parse_jwt_key(data: bytes) -> JwtKey:
    """A JWTTokenApi key file, read as websockify (jwcrypto) reads it: a PEM
    RSA key (public, or private for its public half), else the HMAC secret
    in base64url.  ValueError says what is wrong."""
    text = data.decode("ascii", "replace")
    blocks = _PEM_RE.findall(text)
    if "-----BEGIN" not in text:
        return _hmac_key(text.strip())
    for label, body in blocks:
        if label in _PEM_KEY_LABELS:
            try:
                der = base64.b64decode("".join(body.split()), validate=True)
                n, e = _rsa_numbers(der, label)
            except (ValueError, IndexError) as exc:   # binascii.Error is a ValueError
                raise ValueError("its %s block: %s" % (label, exc or "malformed DER")) from None
            if n.bit_length() < MIN_RSA_BITS:
                raise ValueError("an RSA key of %d bits (at least %d are needed)" % (n.bit_length(), MIN_RSA_BITS))
            if e < 3 or e % 2 == 0:
                raise ValueError("an RSA key with the public exponent %d" % e)
            return JwtKey("RS", n=n, e=e)
    found = ", ".join(label for label, _ in blocks) or "no complete PEM block"
    raise ValueError("no RSA key in the PEM (found %s; for a certificate, give its public key: "
                     "openssl x509 -pubkey -noout -in CERT)" % found)


def _hmac_key(text: str) -> JwtKey:
    # jwcrypto's "oct" key, as websockify imports it: the file holds the secret in base64url.
    if not text or not _B64URL_RE.fullmatch(text.rstrip("=")) or len(text.rstrip("=")) % 4 == 1:
        raise ValueError("neither a PEM RSA key nor an HMAC secret in base64url (as websockify reads it)")
    return JwtKey("HS", secret=_b64url_decode(text.rstrip("=")))


def _b64url_decode(text: str) -> bytes:
    if not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        raise JwtRefused("malformed token (not base64url)")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rsa_pkcs1_verify(key: JwtKey, message: bytes, signature: bytes, hash_name: str) -> bool:
    """RSASSA-PKCS1-v1_5 (RFC 8017 8.2.2): the signature to the e-th power
    mod n must be exactly the encoding of the message's DigestInfo."""
    import hashlib
    import hmac
    size = (key.n.bit_length() + 7) // 8
    if len(signature) != size:
        return False
    s = int.from_bytes(signature, "big")
    if s >= key.n:
        return False
    digest = hashlib.new(hash_name, message).digest()
    digest_info = _der(_DER_SEQUENCE, _der(_DER_SEQUENCE, _der(_DER_OID, _HASH_OIDS[hash_name]) + _der(_DER_NULL, b""))
                       + _der(_DER_OCTET_STRING, digest))
    padding = size - 3 - len(digest_info)
    if padding < 8:
        return False
    expected = b"\x00\x01" + b"\xff" * padding + b"\x00" + digest_info
    return hmac.compare_digest(pow(s, key.e, key.n).to_bytes(size, "big"), expected)


def _json_part(text: str, what: str) -> dict:
    import json  # lazily: only with JWTTokenApi
    try:
        value = json.loads(_b64url_decode(text).decode("utf-8"))
    except ValueError:
        raise JwtRefused("malformed token (its %s is not JSON)" % what) from None
    if not isinstance(value, dict):
        raise JwtRefused("malformed token (its %s is not a JSON object)" % what)
    return value


def verify_jwt(token: str, key: JwtKey, now: float) -> dict:
    """The claims of a signed JWT once its signature and times check out;
    JwtRefused otherwise.  Encrypted tokens (JWE) are refused."""
    parts = token.split(".")
    if len(parts) == 5:
        raise JwtRefused("encrypted tokens (JWE) are not supported; send a signed token (JWS)")
    if len(parts) != 3:
        raise JwtRefused("not a JWT (expected header.payload.signature)")
    header = _json_part(parts[0], "header")
    alg = header.get("alg")
    if "enc" in header:
        raise JwtRefused("encrypted tokens (JWE) are not supported; send a signed token (JWS)")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise JwtRefused("unsigned token (alg none)")
    if alg not in JWT_ALGORITHMS:
        raise JwtRefused("algorithm %r is not supported (%s)" % (alg[:20], ", ".join(JWT_ALGORITHMS)))
    if alg[:2] != key.family:
        raise JwtRefused("algorithm %s does not fit the key (an %s key)"
                         % (alg, "RSA" if key.family == "RS" else "HMAC"))
    if "crit" in header:
        raise JwtRefused("critical header extensions are not supported")
    signed = ("%s.%s" % (parts[0], parts[1])).encode("ascii")
    signature = _b64url_decode(parts[2])
    if not _signature_ok(key, alg, signed, signature):
        raise JwtRefused("bad signature")
    claims = _json_part(parts[1], "payload")
    _check_times(claims, now)
    return claims


def _signature_ok(key: JwtKey, alg: str, signed: bytes, signature: bytes) -> bool:
    hash_name = JWT_HASHES[alg[2:]]
    if key.family == "RS":
        return rsa_pkcs1_verify(key, signed, signature, hash_name)
    import hashlib
    import hmac
    return hmac.compare_digest(hmac.new(key.secret, signed, getattr(hashlib, hash_name)).digest(), signature)


def _check_times(claims: dict, now: float) -> None:
    """nbf and exp as websockify checks them (NumericDate seconds, no leeway)."""
    for name in ("nbf", "exp"):
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise JwtRefused("malformed token (%s is not a number)" % name)
    if "nbf" in claims and now < claims["nbf"]:
        raise JwtRefused("token not valid yet (nbf)")
    if "exp" in claims and now > claims["exp"]:
        raise JwtRefused("token expired (exp)")


class JWTTokenApi:
    """websockify's JWTTokenApi: the token is a signed JWT whose claims
    ``host`` and ``port`` name the target (``view_only: true`` optional),
    checked with the key in the --token-source file (read again when it
    changes, so keys can be rotated).  A refused token gets 403 and why."""

    name = "jwt"

    def __init__(self, path: str):
        self.path = path
        self._signature = None
        self._problem = ""
        self.key = self._load()
        if self.key is None:
            raise ConfigError("JWTTokenApi --token-source %s: %s" % (path, self._problem))

    def describe(self) -> str:
        return "JWTs checked with %s (%s)" % (self.path, "RSA" if self.key.family == "RS" else "HMAC")

    def _load(self) -> Optional[JwtKey]:
        try:
            st = os.stat(self.path)
            with open(self.path, "rb") as handle:
                data = handle.read(MAX_TOKEN_VALUE + 1)
            key = parse_jwt_key(data[:MAX_TOKEN_VALUE])
        except OSError as exc:
            self._problem = exc.strerror or str(exc)
            return None
        except ValueError as exc:
            self._problem = str(exc)
            return None
        self._signature = (st.st_mtime_ns, st.st_size, st.st_ino)
        if key.family == "HS" and len(key.secret) < MIN_HMAC_BYTES:
            log.warning("JWTTokenApi key %s: an HMAC secret of %d bytes is weak; use at least %d",
                        self.path, len(key.secret), MIN_HMAC_BYTES)
        return key

    def _current_key(self) -> JwtKey:
        try:
            st = os.stat(self.path)
            changed = (st.st_mtime_ns, st.st_size, st.st_ino) != self._signature
        except OSError:
            changed = False
        if changed:
            key = self._load()
            if key is None:   # said once: the next lookups see this same file
                log.warning("JWTTokenApi key %s changed but cannot be used (%s); the old key stays",
                            self.path, self._problem)
                self._signature = (st.st_mtime_ns, st.st_size, st.st_ino)
            else:
                log.info("JWTTokenApi key %s reloaded", self.path)
                self.key = key
        return self.key

    def lookup(self, token: str) -> Optional[TokenEntry]:
        try:
            claims = verify_jwt(token, self._current_key(), time.time())
            view_only = claims.get("view_only", False)
            if not isinstance(view_only, bool):
                raise JwtRefused("malformed token (view_only is not true or false)")
            target = target_from_parts(claims.get("host"), claims.get("port"))
        except JwtRefused as exc:
            raise HttpError(403, "token refused: %s" % exc) from None
        except ValueError as exc:
            raise HttpError(403, "token refused: its host and port claims are unusable (%s)" % exc) from None
        return TokenEntry(target, "jwt", view_only)


# -- directories: a file or a Unix socket per token ----------------------------


def is_single_name(token: str) -> bool:
    """Whether a token can name an entry of a directory and nothing else:
    one path component, not ``.`` or ``..``, no NUL."""
    return (token not in ("", ".", "..") and "/" not in token and "\x00" not in token
            and not (os.altsep and os.altsep in token))


class TokenFileName:
    """websockify's TokenFileName: the token is the name of a file in the
    --token-source directory, and the file holds ``host:port`` (or
    ``unix_socket:/path``, or JSON as in Redis).  Backup, swap and hidden
    names resolve nothing (is_skipped_token_file), nor does a name that is
    not a regular file."""

    name = "filename"

    def __init__(self, directory: str):
        if not os.path.isdir(directory):
            raise ConfigError("TokenFileName --token-source %s: not a directory (the plugin reads one file "
                              "per token there)" % directory)
        self.path = directory

    def describe(self) -> str:
        return "the files in %s" % self.path

    def lookup(self, token: str) -> Optional[TokenEntry]:
        if not is_single_name(token) or is_skipped_token_file(token):
            return None
        path = os.path.join(self.path, token)
        try:
            # O_NONBLOCK: a FIFO placed there must not hang the connection's thread.
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        with open(fd, "rb") as handle:
            data = handle.read(MAX_TOKEN_VALUE + 1)
        if len(data) > MAX_TOKEN_VALUE:
            log.warning("token source %s: the file for token %r is too long", self.path, redact_token(token))
            return None
        return entry_from_value(data, self.path, token)


class UnixDomainSocketDirectory:
    """websockify's UnixDomainSocketDirectory: the token is the name of a
    Unix socket in the --token-source directory.  Only a single name there
    (no ``/``, not ``..``) resolves, so no token reaches a socket elsewhere."""

    name = "unix-directory"

    def __init__(self, directory: str):
        if not os.path.isdir(directory):
            raise ConfigError("UnixDomainSocketDirectory --token-source %s: not a directory" % directory)
        self.path = os.path.abspath(directory)

    def describe(self) -> str:
        return "the Unix sockets in %s" % self.path

    def lookup(self, token: str) -> Optional[TokenEntry]:
        if not is_single_name(token):
            return None
        path = os.path.join(self.path, token)
        try:
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                return None
        except (OSError, ValueError):
            return None
        return TokenEntry(Target(unix_path=path), self.path)


# --token-plugin names (websockify's) and the classes behind them; the
# token files are TokenFile, whose ReadOnlyTokenFile does not reload.
TOKEN_SOURCES = {"TokenFileName": TokenFileName, "TokenRedis": TokenRedis, "BaseTokenAPI": BaseTokenAPI,
                 "JSONTokenApi": JSONTokenApi, "JWTTokenApi": JWTTokenApi,
                 "UnixDomainSocketDirectory": UnixDomainSocketDirectory}


def check_token_source(plugin: str, source: str) -> None:
    """ConfigError when --token-source cannot be right for the plugin
    (parsed, or stat()ed: nothing is connected to or read)."""
    if plugin == "TokenRedis":
        parse_redis_source(source)
    elif plugin in ("BaseTokenAPI", "JSONTokenApi"):
        check_api_url(source)
    elif plugin in ("TokenFileName", "UnixDomainSocketDirectory"):
        if not os.path.isdir(source):
            raise ConfigError("%s --token-source %s: not a directory" % (plugin, source))
    elif not os.path.exists(source):
        raise ConfigError("token source %s does not exist" % source)


def make_token_source(plugin: str, source: str):
    """The token source for --token-plugin and --token-source; ConfigError if unusable."""
    if plugin in ("TokenFile", "ReadOnlyTokenFile"):
        return TokenFile(source, reload=plugin != "ReadOnlyTokenFile")
    return TOKEN_SOURCES[plugin](source)


# ===========================================================================
# 8. Routing and static files: auth, target, upgrade-or-file; safe paths, MIME
# ===========================================================================

# Explicit, because mimetypes reads /etc/mime.types, which on some systems
# maps .js to text/plain -- and browsers refuse module scripts served so.
MIME_TYPES = {
    ".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".json": "application/json",
    ".map": "application/json", ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
    ".gif": "image/gif", ".ico": "image/x-icon", ".webp": "image/webp",
    ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf",
    ".wasm": "application/wasm", ".webmanifest": "application/manifest+json",
    ".xml": "application/xml", ".oga": "audio/ogg", ".mp3": "audio/mpeg", ".wav": "audio/wav",
}
INDEX_FILES = ("vnc.html", "index.html")


def content_type(path: str) -> str:
    return MIME_TYPES.get(os.path.splitext(path)[1].lower(), "application/octet-stream")


def resolve_static_path(web_root: str, url_path: str) -> str:
    """The file under ``web_root`` (already a realpath) that ``url_path`` names.

    Rejects rather than normalises anything suspicious: encoded or plain
    ``..`` and ``.`` segments, backslashes, NUL, dot-files, and symlinks that
    lead outside the root.  Directories resolve to their index file; there
    are no listings and no redirects (a redirect to ``//host`` is how
    CVE-2021-3654 let websockify send users elsewhere).
    """
    try:
        import urllib.parse  # lazily: it costs start-up time (it pulls in ipaddress)
        decoded = urllib.parse.unquote(url_path, errors="strict")
    except UnicodeDecodeError:
        raise HttpError(400, "path is not valid UTF-8") from None
    if "\x00" in decoded or "\\" in decoded:
        raise HttpError(400, "invalid character in path")
    if not decoded.startswith("/"):
        raise HttpError(400, "path must start with /")
    parts = [part for part in decoded.split("/") if part]
    if any(part.startswith(".") for part in parts):
        raise HttpError(404, "not found")
    candidate = os.path.join(web_root, *parts)
    real = os.path.realpath(candidate)
    inside = web_root.rstrip(os.sep) + os.sep
    if real != web_root and not real.startswith(inside):
        raise HttpError(404, "not found")
    if os.path.isdir(real):
        for index in INDEX_FILES:
            index_path = os.path.join(real, index)
            if os.path.isfile(index_path):
                # The index may itself be a symlink out of the root.
                index_path = os.path.realpath(index_path)
                if not index_path.startswith(inside):
                    raise HttpError(404, "not found")
                return index_path
        raise HttpError(404, "not found")
    if not os.path.isfile(real):
        raise HttpError(404, "not found")
    return real


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(timestamp: float) -> str:
    """IMF-fixdate (RFC 9110 5.6.7), e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``.

    Written out rather than taken from email.utils, which costs megabytes of
    imports on a small box; and locale-independent, unlike strftime.
    """
    t = time.gmtime(timestamp)
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _WEEKDAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


# IMF-fixdate (RFC 9110 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".  Digits are
# [0-9], never \d or str.isdigit(), which take other digits too (the byte
# 0xb2 of a Latin-1 header is "\u00b2", a digit to isdigit() that int()
# refuses), and the fixed widths keep a 5,000-digit year away from int().
_IMF_FIXDATE_RE = re.compile(
    r"(?:%s), ([0-9]{2}) (%s) ([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT\Z"
    % ("|".join(_WEEKDAYS), "|".join(_MONTHS)))


def parse_http_date(text: str) -> Optional[int]:
    """Seconds since the epoch for an IMF-fixdate, or None for anything else.

    Browsers send back the Last-Modified value we gave them, which is always
    this form.  The obsolete RFC 850 and asctime forms, and anything that is
    not a valid date, give None: the request then gets a full 200, as RFC
    9110 13.1.3 says an invalid If-Modified-Since is ignored.
    """
    match = _IMF_FIXDATE_RE.match(text)
    if not match:
        return None
    day, year, hours, minutes, seconds = (int(match.group(i)) for i in (1, 3, 4, 5, 6))
    if not (1 <= day <= 31 and hours <= 23 and minutes <= 59 and seconds <= 60):  # 60: a leap second
        return None
    # Days from the civil date (Howard Hinnant's algorithm), no calendar module.
    y, m, d = year, _MONTHS.index(match.group(2)) + 1, day
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def not_modified(if_modified_since: Optional[str], mtime: float) -> bool:
    if not if_modified_since:
        return False
    since = parse_http_date(if_modified_since)
    return since is not None and int(mtime) <= since


def static_headers(path: str, st: os.stat_result) -> List[Tuple[str, str]]:
    return [("Content-Type", content_type(path)), ("Content-Length", str(st.st_size)),
            ("Last-Modified", http_date(st.st_mtime)),
            # no-cache: revalidate every time, so an upgraded web/ is never stale.
            ("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff")]


# -- routing: what one request is and where it may go (pure) -----------------


class Route(NamedTuple):
    """What a request asks for: ``kind`` is ROUTE_WEBSOCKET, ROUTE_FILE (with
    ``path``, the file to serve) or ROUTE_ENDPOINT (a plain request for the
    WebSocket endpoint, answered with what an upgrade would get)."""

    kind: str
    path: Optional[str] = None


ROUTE_WEBSOCKET, ROUTE_FILE, ROUTE_ENDPOINT = "websocket", "file", "endpoint"


def is_websocket_path(head: RequestHead) -> bool:
    """Where noVNC-style clients point their WebSocket: /websockify or any ?token= URL."""
    return head.path.strip("/").split("/")[0] == "websockify" or "token=" in head.query


def route(head: RequestHead, web_root: Optional[str]) -> Route:
    """Upgrade, file or endpoint; HTTP errors (400 body, 405, 404) raised."""
    refuse_body(head)
    if is_upgrade_request(head):
        return Route(ROUTE_WEBSOCKET)
    if head.method not in ("GET", "HEAD"):
        raise HttpError(405, "only GET and HEAD are allowed", [("Allow", "GET, HEAD")])
    if web_root is not None:
        try:
            return Route(ROUTE_FILE, resolve_static_path(web_root, head.path))
        except HttpError:
            if not is_websocket_path(head):
                raise
    elif not is_websocket_path(head) and head.path != "/":
        raise HttpError(404, "not found (no web files are served)")
    return Route(ROUTE_ENDPOINT)


# The challenge that makes a browser ask for a user name and password.
BASIC_CHALLENGE = ("WWW-Authenticate", 'Basic realm="wsproxy", charset="UTF-8"')
# A 401's text: the body a browser shows when the person cancels its login
# prompt, and what the page's status line says, so it names the way out.
SIGN_IN_TEXT = "this proxy needs a user name and password: reload the page and sign in"


def authorize(head: RequestHead, plugin: Optional[str], source: str) -> None:
    """Raise 401/403 unless the auth plugin admits this request."""
    if plugin == "BasicHTTPAuth":
        supplied = b""
        scheme, _, credentials = head.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                supplied = base64.b64decode(credentials.strip(), validate=True)
            except (binascii.Error, ValueError):
                supplied = b""
        # Constant time, so the comparison leaks nothing about the secret.
        import hashlib  # only with BasicHTTPAuth: see _sha1
        import hmac
        if not hmac.compare_digest(hashlib.sha256(supplied).digest(),
                                   hashlib.sha256(source.encode("utf-8")).digest()):
            raise HttpError(401, SIGN_IN_TEXT, [BASIC_CHALLENGE])
    elif plugin == "ExpectOrigin":
        if head.get("origin") not in source.split():
            raise HttpError(403, "origin not allowed")


def guards_every_request(plugin: Optional[str], web_auth: bool) -> bool:
    """Whether the auth plugin judges every request, files too, or only
    those that lead to the target.

    BasicHTTPAuth always guards the page: browsers never ask for a password
    for a WebSocket, but they do for the page, and then send the same
    credentials with its same-origin WebSocket.  ExpectOrigin only with
    --web-auth (a page load sends no Origin header).
    """
    return plugin == "BasicHTTPAuth" or (bool(plugin) and web_auth)


def admit(head: RequestHead, web_root: Optional[str], plugin: Optional[str], source: str,
          web_auth: bool) -> Route:
    """Where a request goes once the auth plugin has admitted it: the one
    place that decides auth.  HTTP errors (401, 403, then route's) raised.

    An upgrade is always judged, and so is a plain request for the endpoint
    that carries an Origin (its answer names the target); a same-origin
    fetch() sends no Origin, so ExpectOrigin judges only one that is present.
    """
    everything = guards_every_request(plugin, web_auth)
    if everything or is_upgrade_request(head):
        try:
            authorize(head, plugin, source)
        except HttpError as exc:
            if exc.status == 401 and not _wants_challenge(head, web_root):
                # The page's fetch() that asks why its WebSocket failed: a
                # challenge would open a login prompt for a URL that is no
                # page (headless browsers stall on it), and signing in there
                # would only answer "this is a WebSocket endpoint".  The
                # status line says to reload the page, which asks.
                raise HttpError(401, exc.reason) from None
            raise
    where = route(head, web_root)
    if where.kind == ROUTE_ENDPOINT and not everything and head.get("origin") is not None:
        authorize(head, plugin, source)
    return where


def _wants_challenge(head: RequestHead, web_root: Optional[str]) -> bool:
    """False only for a plain request for the WebSocket path that would reach
    the endpoint (not for ``/`` without web files: a person typed that)."""
    if is_upgrade_request(head) or not is_websocket_path(head):
        return True
    try:
        return route(head, web_root).kind != ROUTE_ENDPOINT
    except HttpError:
        return True


# An unknown token is named back to its requester up to this length.
MAX_TOKEN_SHOWN = 64


def requested_token(head: RequestHead, host_token: bool) -> Optional[str]:
    """The token a request names: its Host's first label (--host-token), else
    ?token= in the query, else a ``token`` cookie (as websockify reads it)."""
    if host_token:
        host = head.get("host", "")
        token = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return token.strip("[]")
    token = query_param(head.query, "token")
    return token if token is not None else _cookie(head, "token")


def resolve_target(head: RequestHead, fixed: Optional[Target], tokens, host_token: bool = False
                   ) -> Tuple[Target, str]:
    """The target for a request and a log label for how it was chosen: the
    fixed target, or the token source's entry (404 when there is none)."""
    entry, label = resolve_entry(head, fixed, tokens, host_token)
    return entry.target, label


def resolve_entry(head: RequestHead, fixed: Optional[Target], tokens, host_token: bool = False
                  ) -> Tuple[TokenEntry, str]:
    """resolve_target's answer as a TokenEntry, which also says whether the
    token is view-only (a fixed target is an entry with origin "")."""
    if fixed is not None:
        return TokenEntry(fixed, ""), ""
    token = requested_token(head, host_token)
    if not token:
        raise HttpError(404, "missing token: add ?token=NAME to the path")
    entry = tokens.lookup(token)
    if entry is None:
        # The person who typed the token sees it; the log keeps only its start.
        shown = token if len(token) <= MAX_TOKEN_SHOWN else token[:MAX_TOKEN_SHOWN] + "..."
        raise HttpError(404, "unknown token %r" % shown, log_reason="unknown token %r" % redact_token(token))
    return entry, "token=%s (%s)" % (redact_token(token), entry.origin)


def endpoint_reply(target: Target, last_failure: Optional[str]) -> Tuple[int, str, List[Tuple[str, str]]]:
    """(status, text, headers) for a plain request to the WebSocket endpoint:
    why the last upgrade to ``target`` failed, if it did lately (the browser
    hides that behind close 1006), else that this is a WebSocket endpoint.
    Never a connection to the target: only an authorised upgrade makes one."""
    if last_failure is not None:
        return 502, last_failure, []
    return (426, "this is a WebSocket endpoint for %s; connect with a WebSocket client" % target,
            [("Upgrade", "websocket"), ("Sec-WebSocket-Version", SUPPORTED_WS_VERSION)])


def _cookie(head: RequestHead, name: str) -> Optional[str]:
    for header in head.get_all("cookie"):
        for part in header.split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                import urllib.parse  # lazily: it costs start-up time (it pulls in ipaddress)
                return urllib.parse.unquote(value)
    return None


# ===========================================================================
# 9. Relay: pure policy (phases, close order, timers), per-connection poll loop
# ===========================================================================

_POLL_IN = getattr(select, "POLLIN", 1)
_POLL_OUT = getattr(select, "POLLOUT", 4)
_POLL_ERR = getattr(select, "POLLERR", 8) | getattr(select, "POLLHUP", 16) | getattr(select, "POLLNVAL", 32)
_WOULD_BLOCK = (BlockingIOError, InterruptedError)  # plus ssl's "want read/write" once TLS is used


def _ssl():
    """The ssl module, imported on first use.

    It costs about 6 MB of memory, which a proxy without TLS on a small box
    should not pay.  Importing it also teaches the relay its non-blocking
    errors (SSLWantRead/WriteError), which plain sockets never raise.
    """
    global _WOULD_BLOCK
    import ssl
    _WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
    return ssl


def _is_ssl_error(exc: BaseException) -> bool:
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLError)


def _is_tls(sock) -> bool:
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(sock, ssl.SSLSocket)


_AF_UNIX = getattr(socket, "AF_UNIX", None)


def _queued_bytes(sock, request: str) -> int:
    """A byte count the kernel keeps for the socket, by ioctl ``request``:
    "FIONREAD", unread bytes in its receive buffer, or "TIOCOUTQ" (SIOCOUTQ
    in Linux's socket terms), sent bytes the peer has not acknowledged.
    0 where unknown (Windows has neither fcntl nor termios)."""
    try:
        import fcntl
        import termios
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), getattr(termios, request), b"\0\0\0\0"))[0]
    except (ImportError, AttributeError, OSError):
        return 0


class _Poller:
    """poll(2) where it exists (no descriptor-number limit, no kernel object
    per connection); a selectors fallback elsewhere (Windows)."""

    def __init__(self):
        if hasattr(select, "poll"):
            self._poll = select.poll()
            self._selector = None
        else:
            import selectors
            self._poll = None
            self._selector = selectors.DefaultSelector()
        self._masks = {}

    def set(self, fd: int, mask: int) -> None:
        old = self._masks.get(fd)
        if old == mask:
            return
        self._masks[fd] = mask
        if self._poll is not None:
            if old is None:
                self._poll.register(fd, mask)
            else:
                self._poll.modify(fd, mask)
            return
        import selectors
        events = (selectors.EVENT_READ if mask & _POLL_IN else 0) | (selectors.EVENT_WRITE if mask & _POLL_OUT else 0)
        if old is not None:
            self._selector.unregister(fd)
        if events:
            self._selector.register(fd, events)

    def watch(self, fd: int, mask: int) -> int:
        """set(), or remove() for a zero mask (even a zero mask reports
        hang-ups, which would wake a loop that wants nothing); the mask."""
        if mask:
            self.set(fd, mask)
        else:
            self.remove(fd)
        return mask

    def remove(self, fd: int) -> None:
        if self._masks.pop(fd, None) is None:
            return
        if self._poll is not None:
            self._poll.unregister(fd)
        else:
            try:
                self._selector.unregister(fd)
            except KeyError:
                pass

    def wait(self, timeout: Optional[float]) -> List[Tuple[int, int]]:
        if timeout is not None:
            # poll() takes at most 2**31-1 ms: a long --idle-timeout, --heartbeat
            # or --timeout (or inf) just wakes up early, and callers recompute.
            timeout = min(timeout, 3600.0)
        if self._poll is not None:
            return self._poll.poll(None if timeout is None else max(0, int(timeout * 1000) + 1))
        import selectors
        if not self._selector.get_map():
            time.sleep(timeout or 0.1)
            return []
        out = []
        for key, events in self._selector.select(timeout):
            mask = (_POLL_IN if events & selectors.EVENT_READ else 0) | (_POLL_OUT if events & selectors.EVENT_WRITE else 0)
            out.append((key.fd, mask))
        return out

    def close(self) -> None:
        if self._selector is not None:
            self._selector.close()


class RelayPhase(Enum):
    """Where one relayed connection is in its life (RelayPolicy.phase)."""

    RELAYING = "relaying"         # both ways
    DRAINING = "draining"         # stopping: the target's bytes from before the stop go out first
    CLOSING = "closing"           # a Close is sent: the client's reply and our last bytes are owed
    FLUSHING = "flushing target"  # the client side is over; the target is still owed data
    DONE = "done"


# Which phase may follow which; RelayPolicy refuses any other move.
RELAY_TRANSITIONS = {
    RelayPhase.RELAYING: (RelayPhase.DRAINING, RelayPhase.CLOSING, RelayPhase.FLUSHING),
    RelayPhase.DRAINING: (RelayPhase.CLOSING, RelayPhase.FLUSHING),
    RelayPhase.CLOSING: (RelayPhase.FLUSHING,),
    RelayPhase.FLUSHING: (RelayPhase.DONE,),
    RelayPhase.DONE: (),
}


# What RelayPolicy asks the loop to do.
class SendClose(NamedTuple):
    code: int
    reason: str


class SendPing(NamedTuple):
    payload: bytes


class DropClient(NamedTuple):
    """The client is unreachable: discard what is queued for it."""
    reason: str


class ShutdownTarget(NamedTuple):
    """Half-close the target (SHUT_WR): it has everything it is owed."""


INFINITY = float("inf")
_NO_ACTIONS = ()
_SHUTDOWN_TARGET = (ShutdownTarget(),)


class RelayPolicy:
    """The relay's decisions, without I/O: close order, drain on stop,
    heartbeat and idle timers, flush deadlines.

    The loop reports what happened (client Close, EOF or error, target EOF
    or error, a stop, the time) and gets back actions (SendClose, SendPing,
    DropClient, ShutdownTarget); each turn ``update()`` takes whether bytes
    wait for either side and returns the poll masks and how long to sleep.
    The rules: whatever was received is delivered before the side that
    ended it is closed; a Close is answered or times out (CLOSE_TIMEOUT); a
    target still owed data gets TARGET_FLUSH_TIMEOUT once the client is done.
    """

    def __init__(self, now: float, heartbeat: float = 0, idle_timeout: float = 0):
        self.phase = RelayPhase.RELAYING
        self.now = now
        self.heartbeat = heartbeat
        self.idle_timeout = idle_timeout
        self.close_code = CloseCode.ABNORMAL
        self.close_reason = ""
        self.client_open = True       # the client socket is usable
        self.target_readable = True   # we may still read from the target
        self.target_writable = True   # we may still write to the target
        self.close_sent = False
        self.close_received = False
        self.failed = False           # the client broke the protocol: no wait for its Close
        self.close_deadline = None    # type: Optional[float]
        self.flush_deadline = None    # type: Optional[float]
        self.drain_left = 0           # target bytes still owed after a stop
        self.drain_deadline = None    # type: Optional[float]
        self.last_activity = now      # the loop stamps this on every read
        self.ping_due = now + heartbeat if heartbeat else None
        self.pong_deadline = None     # type: Optional[float]
        self.wake_at = None           # type: Optional[float]  # the next deadline, from update()
        self._timer_at = INFINITY     # the earliest of ping, pong and drain deadlines
        self._retime()

    def _enter(self, phase: RelayPhase) -> None:
        if phase is not self.phase:
            if phase not in RELAY_TRANSITIONS[self.phase]:
                raise RuntimeError("relay cannot go from %s to %s" % (self.phase.value, phase.value))
            self.phase = phase
            if phase is RelayPhase.FLUSHING:
                self.flush_deadline = self.now + TARGET_FLUSH_TIMEOUT

    def _retime(self) -> None:
        """Recompute the earliest timer after one of them changed (not on
        every turn: the loop asks for it on every wake-up)."""
        self._timer_at = min(INFINITY if self.ping_due is None else self.ping_due,
                             INFINITY if self.pong_deadline is None else self.pong_deadline,
                             INFINITY if self.drain_deadline is None else self.drain_deadline)

    def _note(self, reason: str) -> None:
        """The first reason given is the one the log shows."""
        if not self.close_reason:
            self.close_reason = reason

    # -- events ------------------------------------------------------------

    def close(self, code: int, reason: str) -> tuple:
        """Start the closing handshake (once, and only with a client to tell)."""
        if self.drain_deadline is not None:
            self.drain_left, self.drain_deadline = 0, None
            self._retime()
        if self.close_sent or not self.client_open:
            return _NO_ACTIONS
        self.close_code = code
        self._note(reason)
        self.close_sent = True
        self.close_deadline = self.now + CLOSE_TIMEOUT
        self._enter(RelayPhase.CLOSING)
        return (SendClose(code, reason),)

    def client_closed(self, code: int, reason: str) -> None:
        """The client's Close arrived (the session has queued our reply)."""
        self.close_code = code
        self._note("client closed" + (": " + reason if reason else ""))
        self.close_received = True
        self.target_readable = False
        if not self.close_sent:
            self.close_sent = True
            self.close_deadline = self.now + CLOSE_TIMEOUT
        if self.client_open:
            self._enter(RelayPhase.CLOSING)

    def client_broke_protocol(self, code: int, reason: str) -> tuple:
        """What came before the violation is delivered; then we close."""
        self.failed = True
        self.target_readable = False
        actions = self.close(code, reason)
        self.close_reason = "client protocol error: " + reason
        return actions

    def client_lost(self, reason: str) -> None:
        """The client socket ended (EOF without Close, error, no pong)."""
        self._note(reason)
        self.client_open = False
        self.target_readable = False
        self._enter(RelayPhase.FLUSHING)

    def pong(self) -> None:
        if self.pong_deadline is not None:
            self.pong_deadline = None
            self._retime()

    def target_ended(self, error: Optional[str] = None) -> tuple:
        """The target closed (EOF) or failed: tell the client, with the reason."""
        self.target_readable = False
        if error is None:
            return self.close(CloseCode.NORMAL, "target closed the connection")
        return self.close(CloseCode.INTERNAL_ERROR, "target connection lost: %s" % error)

    def target_write_failed(self, error: str) -> tuple:
        self.target_writable = False
        return self.target_ended(error)

    def stop(self, pending: int) -> tuple:
        """Server shutdown: relay the ``pending`` target bytes that arrived
        before it (bounded by STOP_DRAIN_TIMEOUT), then close 1001."""
        if pending and self.phase is RelayPhase.RELAYING:
            self.drain_left = pending
            self.drain_deadline = self.now + STOP_DRAIN_TIMEOUT
            self._retime()
            self._enter(RelayPhase.DRAINING)
            return _NO_ACTIONS
        return self.close(CloseCode.GOING_AWAY, "server shutting down")

    def drained(self, count: int) -> tuple:
        """``count`` of the bytes owed after a stop went to the client."""
        self.drain_left = max(0, self.drain_left - count)
        if self.drain_left:
            return _NO_ACTIONS
        return self.close(CloseCode.GOING_AWAY, "server shutting down")

    def tick(self, now: float) -> tuple:
        """The clock moved: heartbeat, idle timeout, drain deadline."""
        self.now = now
        if self.close_sent or not self.client_open:
            return _NO_ACTIONS   # closing: only the close and flush deadlines count
        if self.drain_deadline is not None and now >= self.drain_deadline:
            return self.close(CloseCode.GOING_AWAY, "server shutting down")
        if self.pong_deadline is not None and now >= self.pong_deadline:
            reason = "no pong within %gs" % self.heartbeat
            self.client_lost(reason)
            return (DropClient(reason),)
        actions = _NO_ACTIONS
        if self.ping_due is not None and now >= self.ping_due:
            actions = (SendPing(b"wsproxy"),)
            self.ping_due = now + self.heartbeat
            if self.pong_deadline is None:
                self.pong_deadline = now + self.heartbeat
            self._retime()
        if self.idle_timeout and now - self.last_activity >= self.idle_timeout:
            actions += self.close(CloseCode.GOING_AWAY, "idle timeout")
        return actions

    # -- each turn of the loop ----------------------------------------------

    def update(self, client_pending: bool, target_pending: bool) -> Tuple[int, int, Optional[float], tuple]:
        """Poll masks for client and target, seconds to sleep (None: until
        something happens) and actions, given whether bytes wait for the
        client and for the target."""
        actions = _NO_ACTIONS
        if self.target_writable and not target_pending and (self.close_received or not self.client_open):
            self.target_writable = self.target_readable = False
            actions = _SHUTDOWN_TARGET
        if self.phase is RelayPhase.CLOSING and self._client_side_over(client_pending):
            self._enter(RelayPhase.FLUSHING)
        if self.phase is RelayPhase.FLUSHING and (
                not target_pending or not self.target_writable or self.now > self.flush_deadline):
            self._enter(RelayPhase.DONE)
        cmask = tmask = 0
        if self.client_open:
            # A backed-up target stops reads from the client (even after our Close).
            if not target_pending or not self.target_writable:
                cmask = _POLL_IN
            if client_pending:
                cmask |= _POLL_OUT
        if self.target_readable and not self.close_sent and not client_pending:
            tmask = _POLL_IN
        if target_pending and self.target_writable:
            tmask |= _POLL_OUT
        return cmask, tmask, self._wait(), actions

    def _client_side_over(self, client_pending: bool) -> bool:
        if not self.client_open:
            return True
        if self.now > self.close_deadline:
            return True
        # A failed connection is not owed a wait for the peer's Close (RFC 6455 7.1.7).
        return not client_pending and (self.close_received or self.failed)

    def _wait(self) -> Optional[float]:
        """Seconds until the next deadline (None: none), which is kept in
        ``wake_at`` so the loop calls tick() only once something is due."""
        phase = self.phase
        if phase is RelayPhase.RELAYING or phase is RelayPhase.DRAINING:
            deadline = self._timer_at
            if self.idle_timeout:
                deadline = min(deadline, self.last_activity + self.idle_timeout)
            if deadline == INFINITY:
                self.wake_at = None
                return None
        elif phase is RelayPhase.CLOSING:
            deadline = self.close_deadline
        elif phase is RelayPhase.FLUSHING:
            deadline = self.flush_deadline
        else:
            return 0.0
        self.wake_at = deadline
        return max(0.0, deadline - self.now)


class RelayStats:
    """What one relayed connection did, for its closing log line."""

    __slots__ = ("bytes_up", "bytes_down", "close_code", "close_reason")

    def __init__(self):
        self.bytes_up = 0      # client payload delivered to the target
        self.bytes_down = 0    # target bytes sent to the client
        self.close_code = CloseCode.ABNORMAL
        self.close_reason = ""


class Relay:
    """Moves bytes between one WebSocket client and its target.

    One thread runs ``run()``: a poll loop that does the I/O and asks a
    RelayPolicy what to do.  Each direction holds at most one read's worth
    of data in user space: a side is not read while the other side has
    unsent bytes, so a slow browser slows the target (TCP back-pressure)
    instead of growing memory.
    """

    def __init__(self, client: socket.socket, target: socket.socket, session: WebSocketSession,
                 leftover: bytes = b"", heartbeat: float = 0, idle_timeout: float = 0,
                 stop_fd: Optional[int] = None, recorder: Optional["SessionRecorder"] = None):
        self.client = client
        self.target = target
        self.session = session
        self.leftover = leftover
        self.stop_fd = stop_fd
        self.recorder = recorder     # --record: sees each direction's bytes, never blocks
        self.stats = RelayStats()
        # The loop's clock is policy.now, read once per wake-up, in _loop only.
        self.policy = RelayPolicy(time.monotonic(), heartbeat, idle_timeout)
        self._client_out = deque()   # bytes/memoryviews for the client, in order
        self._target_out = deque()   # payload for the target, in order
        self._client_tls = _is_tls(client)
        # sendmsg gathers header and payload without copying; TLS sockets and
        # Windows lack it, so those get one joined buffer instead.
        self._gather = not self._client_tls and hasattr(client, "sendmsg")
        self._target_tls = _is_tls(target)
        if self._client_tls or self._target_tls:
            _ssl()
        self._buffer = None          # target read buffer, allocated on first use
        self._view = None

    # -- the loop ----------------------------------------------------------

    def run(self) -> RelayStats:
        self.client.setblocking(False)
        self.target.setblocking(False)
        poller = _Poller()
        try:
            if self.stop_fd is not None:
                poller.set(self.stop_fd, _POLL_IN)
            if self.leftover:
                self._on_client_data(self.leftover)
                self.leftover = b""
            self._loop(poller)
        except ProtocolError as exc:
            self.abort(exc.close_code, exc.reason)
        finally:
            poller.close()
        self._wait_for_target_ack()
        return self._final_stats()

    def _loop(self, poller: "_Poller") -> None:
        policy = self.policy
        cfd, tfd = self.client.fileno(), self.target.fileno()
        cset = tset = None   # the masks the poller has, to skip unchanged updates
        while True:
            cmask, tmask, wait, actions = policy.update(bool(self._client_out), bool(self._target_out))
            if actions:
                self._apply(actions)
                continue
            if policy.phase is RelayPhase.DONE:
                return
            if cmask != cset:
                cset = poller.watch(cfd, cmask)
            if tmask != tset:
                tset = poller.watch(tfd, tmask)
            # A grown buffer is released when idle (BUFFER_RELEASE_AFTER).
            grown = self._buffer is not None and len(self._buffer) > FIRST_READ
            ready = poller.wait(min(wait, BUFFER_RELEASE_AFTER) if grown and wait is not None
                                else BUFFER_RELEASE_AFTER if grown else wait)
            if not ready and grown:
                # Quiet for a while: the next burst grows a new buffer (two
                # short reads); a view still queued keeps the old one alive.
                self._buffer = self._view = None
            # Reads stamp activity with the time poll returned, not when it
            # began waiting (or an idle timeout would count the wait as silence).
            policy.now = time.monotonic()
            for fd, events in ready:
                if fd == cfd:
                    if events & (_POLL_IN | _POLL_ERR):
                        self._read_client()
                    if events & _POLL_OUT and policy.client_open:
                        self._flush_client()
                elif fd == tfd:
                    if events & _POLL_OUT:
                        self._flush_target()
                    if events & (_POLL_IN | _POLL_ERR) and policy.target_readable:
                        self._read_target()
                else:
                    poller.remove(fd)
                    self._stop()
            if policy.wake_at is not None and policy.now >= policy.wake_at:
                self._apply(policy.tick(policy.now))

    def _stop(self) -> None:
        """The server is stopping: the policy drains what the target sent
        before the signal (still in the kernel), then closes 1001."""
        self.stop_fd = None
        policy = self.policy
        pending = _queued_bytes(self.target, "FIONREAD") if policy.target_readable and not self._target_tls else 0
        self._apply(policy.stop(pending))

    def _apply(self, actions: tuple) -> None:
        """Do what the policy asked."""
        for action in actions:
            kind = type(action)
            if kind is SendClose:
                self.session.send_close(action.code, action.reason)
                self._queue_client(self.session.take_outgoing())
            elif kind is SendPing:
                self.session.send_ping(action.payload)
                self._queue_client(self.session.take_outgoing())
            elif kind is DropClient:
                log.info("client dropped: %s", action.reason)
                self._client_out.clear()
            else:  # ShutdownTarget
                try:
                    self.target.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def _final_stats(self) -> RelayStats:
        self.stats.close_code = self.policy.close_code
        self.stats.close_reason = self.policy.close_reason
        return self.stats

    def abort(self, code: int, reason: str) -> RelayStats:
        """Close at once (a protocol error or an internal one): send what is
        queued and our Close, briefly and blocking, and stop."""
        policy = self.policy
        actions = policy.close(code, reason)
        policy.close_code, policy.close_reason = code, reason
        if actions and policy.client_open:
            self.session.send_close(code, reason)
            data = self.session.take_outgoing()
            try:
                self.client.setblocking(True)
                self.client.settimeout(CLOSE_TIMEOUT)
                for chunk in list(self._client_out) + [data]:
                    self.client.sendall(chunk)
            except OSError:
                pass
        self._client_out.clear()
        return self._final_stats()

    def _wait_for_target_ack(self) -> None:
        """Before the target socket is closed: wait (reading and dropping
        what the target still sends) until it has acknowledged everything we
        sent it, for what is left of TARGET_FLUSH_TIMEOUT.

        Linux answers a close() with unread data in the receive buffer, or
        data arriving after it, with a reset, and a reset throws away the
        send queue: bytes the client sent, already acknowledged to the
        client, would never reach a target that was still sending (SIGTERM
        mid-transfer, a client that closes during a download).
        """
        target = self.target
        # Unix sockets lose nothing: data queued to the peer outlives close().
        if not self.stats.bytes_up or target.family == _AF_UNIX:
            return
        unacked = _queued_bytes(target, "TIOCOUTQ")
        if not unacked:
            return
        deadline = self.policy.flush_deadline or time.monotonic() + TARGET_FLUSH_TIMEOUT
        scratch = bytearray(65536)
        poller = _Poller()
        poller.set(target.fileno(), _POLL_IN)
        try:
            while unacked:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.info("target did not acknowledge the last %d bytes in time; closing", unacked)
                    return
                # Acknowledgements raise no poll event: look again every 20 ms.
                if poller.wait(min(left, 0.02)):
                    try:
                        if not target.recv_into(scratch):
                            return          # the target closed: a clean FIN both ways
                    except _WOULD_BLOCK:
                        pass
                    except OSError:
                        return              # reset by the target: nothing left to save
                unacked = _queued_bytes(target, "TIOCOUTQ")
        finally:
            poller.close()

    # -- client side -------------------------------------------------------

    def _read_client(self) -> None:
        try:
            data = self.client.recv(RELAY_CHUNK)
        except _WOULD_BLOCK:
            return
        except OSError as exc:
            return self._client_lost("client error: %s" % (exc.strerror or exc))
        if not data:
            return self._client_lost("client closed without a close frame")
        self.policy.last_activity = self.policy.now
        self._on_client_data(data)
        # Decrypted bytes may wait inside the TLS object, invisible to poll.
        while self._client_tls and self.policy.client_open and self.client.pending():
            try:
                data = self.client.recv(RELAY_CHUNK)
            except _WOULD_BLOCK:
                break
            if not data:
                break
            self._on_client_data(data)

    def _on_client_data(self, data: bytes) -> None:
        session, policy = self.session, self.policy
        events = session.receive(data)
        for event in events:
            kind = type(event)
            if kind is DataReceived:
                # Frames the client sent before it saw our Close are
                # delivered too (SIGTERM, idle timeout), if the target can
                # still take them.
                if policy.target_writable:
                    self._target_out.append(event.payload)
                    if self.recorder is not None:
                        self.recorder.client(event.payload)
            elif kind is PongReceived:
                policy.pong()
            elif kind is CloseReceived:
                policy.client_closed(event.code, event.reason)
        # A pong waits in the session while the client has unsent bytes, so a
        # ping flood from a client that does not read costs one pong, not many.
        if session.has_outgoing and (not self._client_out or session.close_sent):
            self._queue_client(session.take_outgoing())
        if self._target_out:
            self._flush_target()
        if session.failure is not None and not policy.failed:
            self._apply(policy.client_broke_protocol(session.failure.close_code, session.failure.reason))

    def _queue_client(self, data) -> None:
        if data:
            self._client_out.append(data)
            self._flush_client()

    def _flush_client(self) -> None:
        out = self._client_out
        while out:
            chunk = out[0]
            try:
                sent = self.client.send(chunk)
            except _WOULD_BLOCK:
                return
            except OSError as exc:
                return self._client_lost("client error: %s" % (exc.strerror or exc))
            if sent < len(chunk):
                out[0] = memoryview(chunk)[sent:]
                return
            out.popleft()
            if not out and self.session.has_outgoing:
                out.append(self.session.take_outgoing())

    def _client_lost(self, reason: str) -> None:
        """The client is unreachable: what it sent is still delivered."""
        self.policy.client_lost(reason)
        self._client_out.clear()

    # -- target side -------------------------------------------------------

    def _read_target(self) -> None:
        # Several reads per wake-up while the target has more: a poll round
        # trip per read would cost as much as the copy itself.  Bounded, so
        # the client side and the timers still get their turn.
        policy = self.policy
        budget = TARGET_BYTES_PER_WAKE
        while True:
            buffer = self._buffer
            if buffer is None:
                # Small at first: most connections idle after the RFB greeting,
                # and a zero-filled big buffer would be resident for each of them.
                buffer = self._buffer = bytearray(FIRST_READ)
                self._view = memoryview(buffer)
            drain = policy.drain_left
            try:
                count = self.target.recv_into(buffer, min(drain, len(buffer)) if drain else 0)
            except _WOULD_BLOCK:
                return
            except OSError as exc:
                return self._apply(policy.target_ended(exc.strerror or "error"))
            if not count:
                return self._apply(policy.target_ended())
            policy.last_activity = policy.now
            self.stats.bytes_down += count
            if self.recorder is not None:
                self.recorder.server(self._view[:count])
            self._send_binary(count)
            if count == len(buffer) and count < TARGET_CHUNK:
                # A full read means bulk data: a bigger buffer.  (A view of
                # the old one may still wait in _client_out; it keeps that
                # buffer alive until sent.)
                self._buffer = bytearray(min(count * 16, TARGET_CHUNK))
                self._view = memoryview(self._buffer)
            if drain:
                self._apply(policy.drained(count))
            budget -= count
            if budget <= 0 or self._client_out or not policy.target_readable or policy.close_sent:
                return  # enough for one wake-up, the client is backed up, or we are closing
            if count < len(buffer) and not (self._target_tls and self.target.pending()):
                return  # a short read: the socket is most likely empty now

    def _send_binary(self, count: int) -> None:
        """Send the first ``count`` bytes of the read buffer as one binary frame.

        The payload goes out straight from the read buffer (sendmsg gathers
        header and payload).  An unsent rest is queued as a view of that
        buffer, not a copy: the target is not read again (so the buffer is
        not reused) until the client has taken all of it.
        """
        header = _SMALL_BINARY_HEADERS[count] if count < 126 else frame_header(Opcode.BINARY, count)
        payload = self._view[:count]
        total = len(header) + count
        if not self._gather:
            data = header + payload
            self._client_out.append(data)
            self._flush_client()
            return
        try:
            sent = self.client.sendmsg([header, payload])
        except _WOULD_BLOCK:
            sent = 0
        except OSError as exc:
            return self._client_lost("client error: %s" % (exc.strerror or exc))
        if sent >= total:
            return
        if sent < len(header):
            self._client_out.append(header[sent:])
            self._client_out.append(payload)
        else:
            self._client_out.append(payload[sent - len(header):])

    def _flush_target(self) -> None:
        out = self._target_out
        while out:
            chunk = out[0]
            try:
                sent = self.target.send(chunk)
            except _WOULD_BLOCK:
                return
            except OSError as exc:
                out.clear()
                return self._apply(self.policy.target_write_failed(exc.strerror or "error"))
            self.stats.bytes_up += sent
            if sent < len(chunk):
                out[0] = memoryview(chunk)[sent:]
                return
            out.popleft()


class _FilteredQueue(deque):
    """The target's queue on a view-only connection: each client payload
    appended (Relay._on_client_data is the one caller) goes through the
    filter first, so the plain relay pays nothing for view-only."""

    def __init__(self, view_only: "ViewOnlyFilter"):
        super().__init__()
        self.view_only = view_only

    def append(self, data) -> None:
        data = self.view_only.client(data)   # raises ViewOnlyRefused: the relay closes 1008
        if data:
            super().append(data)


class ViewOnlyRelay(Relay):
    """A Relay whose client may watch but not touch: client bytes pass a
    ViewOnlyFilter, and so do server bytes until ServerInit (the offer of
    security types is rewritten); after that the picture flows as in Relay."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.view_only = ViewOnlyFilter()
        self._target_out = _FilteredQueue(self.view_only)

    def _send_binary(self, count: int) -> None:
        if self.view_only.server_passes:
            return super()._send_binary(count)
        data = self.view_only.server(bytes(self._view[:count]))
        if data:
            self._queue_client(frame_header(Opcode.BINARY, len(data)) + data)

    def dropped(self) -> str:
        """What the filter dropped, for the closing log line."""
        items = sorted(self.view_only.dropped.items())
        return ", ".join("%d %s" % (count, name) for name, count in items) or "nothing"


# ===========================================================================
# 9b. RFB follower: pure reading of both directions of a VNC stream
# ===========================================================================
#
# The relay moves bytes without reading them.  Where the proxy must know
# what they say (a view-only connection drops the client's input), an
# RfbFollower is fed each direction's bytes in arrival order, split
# anywhere, and reports what it sees: the handshake of RFB 3.3, 3.7 and 3.8
# (RFC 6143 7.1-7.3), the security types offered and chosen, ServerInit, and
# then each client message with its byte span in the client's stream.
# Server messages after ServerInit are not read: no client message's length
# depends on them.  Only security types that leave the stream readable are
# followed (None and VncAuth); for any other, and for a client message whose
# length it cannot know, it reports RfbCannotFollow and reads no further.
# A message body is counted, never held, so a large ClientCutText costs no
# memory; what is held is at most one header or one server string.

RFB_SEC_INVALID, RFB_SEC_NONE, RFB_SEC_VNC_AUTH = 0, 1, 2
# The security types whose bytes after the choice a follower can read.
RFB_FOLLOWABLE_SECURITY = (RFB_SEC_NONE, RFB_SEC_VNC_AUTH)
# Names for the types a cannot-follow reason mentions (IANA RFB registry).
RFB_SECURITY_NAMES = {
    0: "Invalid", 1: "None", 2: "VncAuth", 5: "RA2", 6: "RA2ne", 16: "Tight", 17: "Ultra",
    18: "TLS", 19: "VeNCrypt", 20: "GTK-VNC SASL", 21: "MD5 hash", 22: "xvp", 30: "Apple DH",
    113: "UltraVNC MS-Logon II", 129: "RA2_256", 133: "RA2ne_256",
}
# A server string (failure reason, desktop name) longer than this is not
# followed: real ones are under a few hundred bytes, and it is held whole.
RFB_MAX_STRING = 64 * 1024
# Client bytes held while the client is ahead of the server's handshake
# (a choice sent before the list it chooses from).  No real client does it.
RFB_MAX_AHEAD = 4096
RFB_VNC_AUTH_BYTES = 16  # challenge and response, each (RFC 6143 7.2.2)


class RfbPhase(NamedTuple):
    """One side of the stream enters a phase at ``offset`` of its bytes.
    Phases: version, security, vnc-auth, security-result, init, normal,
    failed.  The client's "normal" is the end of the handshake."""

    side: str      # "client" or "server"
    phase: str
    offset: int


class RfbVersion(NamedTuple):
    """Both ProtocolVersions are known; ``version`` is the one spoken."""

    server: Tuple[int, int]
    client: Tuple[int, int]
    version: Tuple[int, int]


class RfbSecurityTypes(NamedTuple):
    """The server's offer: a list (3.7, 3.8) or its one choice (3.3), in
    server bytes ``start`` to ``end``."""

    types: Tuple[int, ...]
    start: int
    end: int


class RfbSecurityChosen(NamedTuple):
    security_type: int


class RfbSecurityResult(NamedTuple):
    ok: bool
    reason: str    # the server's failure reason ("" for success or none sent)


class RfbClientInit(NamedTuple):
    """ClientInit; its one byte is at ``offset`` of the client's bytes."""

    shared: bool
    offset: int


class RfbServerInit(NamedTuple):
    width: int
    height: int
    pixel_format: bytes   # the 16-byte PIXEL_FORMAT (RFC 6143 7.4)
    name: str


class RfbClientMessage(NamedTuple):
    """One client message: client bytes ``start`` to ``end``.  Reported
    when its header is read, so ``end`` may lie beyond the bytes fed yet."""

    kind: int
    subtype: int   # QEMU's submessage type and gii's sub-type; else -1
    start: int
    end: int

    @property
    def name(self) -> str:
        return rfb_message_name(self.kind, self.subtype)


class RfbCannotFollow(NamedTuple):
    """The stream became unreadable (an encrypting or unknown security type,
    an unknown message); nothing more is reported."""

    side: str
    offset: int
    reason: str


RFB_QEMU_KEY, RFB_QEMU_AUDIO = 0, 1
# Client message types (RFC 6143 7.5 and rfbproto's registered extensions):
# name, and the header bytes that give the whole message's length.
RFB_CLIENT_MESSAGES = {
    0: ("SetPixelFormat", 1), 2: ("SetEncodings", 4), 3: ("FramebufferUpdateRequest", 1),
    4: ("KeyEvent", 1), 5: ("PointerEvent", 1), 6: ("ClientCutText", 8),
    150: ("EnableContinuousUpdates", 1), 248: ("Fence", 9), 250: ("XVP", 1),
    251: ("SetDesktopSize", 8), 253: ("gii", 4), 255: ("QEMU", 4),
}
_RFB_FIXED_LENGTHS = {0: 20, 3: 10, 4: 8, 5: 6, 150: 10, 250: 4}


def rfb_message_name(kind: int, subtype: int = -1) -> str:
    name = RFB_CLIENT_MESSAGES.get(kind, ("type %d" % kind,))[0]
    if kind == 255:
        name += {RFB_QEMU_KEY: " key event", RFB_QEMU_AUDIO: " audio"}.get(subtype, " sub-type %d" % subtype)
    return name


def rfb_message_length(kind: int, header: bytes) -> int:
    """A client message's whole length from its header (as many bytes as
    RFB_CLIENT_MESSAGES gives), or -1 when the follower cannot know it."""
    if kind in _RFB_FIXED_LENGTHS:
        return _RFB_FIXED_LENGTHS[kind]
    if kind == 2:
        return 4 + 4 * struct.unpack_from(">H", header, 2)[0]
    if kind == 6:   # a negative length is the Extended Clipboard form, as long
        return 8 + abs(struct.unpack_from(">i", header, 4)[0])
    if kind == 248:
        return 9 + header[8]
    if kind == 251:
        return 8 + 16 * header[6]
    if kind == 253:   # bit 7 of byte 1: the length's byte order is big-endian
        return 4 + struct.unpack_from(">H" if header[1] & 0x80 else "<H", header, 2)[0]
    if kind == 255 and header[1] == RFB_QEMU_KEY:
        return 12
    if kind == 255 and header[1] == RFB_QEMU_AUDIO:   # operation 2 (set format) carries 6 bytes
        operation = struct.unpack_from(">H", header, 2)[0]
        return 10 if operation == 2 else 4 if operation in (0, 1) else -1
    return -1


def parse_rfb_version(data: bytes) -> Optional[Tuple[int, int]]:
    match = re.match(rb"RFB (\d{3})\.(\d{3})\n\Z", bytes(data))
    return (int(match.group(1)), int(match.group(2))) if match else None


def spoken_rfb_version(server: Tuple[int, int], client: Tuple[int, int]) -> Tuple[int, int]:
    """The handshake both sides follow: the lower version, where any 3.x
    that is not 3.7 or 3.8 means 3.3 (RFC 6143 7.1.1) and later ones 3.8."""
    lower = min(server, client)
    return (3, 8) if lower >= (3, 8) else (3, 7) if lower == (3, 7) else (3, 3)


def security_type_name(kind: int) -> str:
    return "%d (%s)" % (kind, RFB_SECURITY_NAMES.get(kind, "unknown"))


class _RfbSide:
    """One direction's unread bytes: ``buffer`` starts at stream ``offset``;
    ``skip`` body bytes are counted, not held; ``state`` names the reader."""

    __slots__ = ("name", "buffer", "offset", "skip", "state")

    def __init__(self, name: str):
        self.name = name
        self.buffer = bytearray()
        self.offset = 0
        self.skip = 0
        self.state = "version"


class RfbFollower:
    """Follows one RFB connection, both directions, without I/O.

    ``server_data(bytes)`` and ``client_data(bytes)`` each return the events
    the new bytes complete (RfbPhase, RfbVersion, RfbSecurityTypes, ...), in
    stream order.  ``client_offset`` is how many client bytes are read: each
    one before it belongs to a reported message or to the handshake.
    """

    def __init__(self):
        self.client = _RfbSide("client")
        self.server = _RfbSide("server")
        self.version = None          # the spoken version, once both are known
        self.server_version = None
        self.client_version = None
        self.offered = ()            # the server's security types
        self.security = None         # the type in use
        self.lost = None             # RfbCannotFollow, once reported
        self._events = []

    @property
    def client_offset(self) -> int:
        return self.client.offset

    @property
    def handshake_done(self) -> bool:
        return self.client.state == "normal"

    def server_data(self, data: bytes) -> list:
        return self._feed(self.server, data)

    def client_data(self, data: bytes) -> list:
        return self._feed(self.client, data)

    def _feed(self, side: _RfbSide, data: bytes) -> list:
        if self.lost is not None:
            return []
        if side.state == "passthrough":   # the server after ServerInit
            side.offset += len(data)
            return []
        if side.skip:
            taken = min(side.skip, len(data))
            side.skip -= taken
            side.offset += taken
            data = data[taken:]
        side.buffer += data
        self._run()
        events, self._events = self._events, []
        return events

    def _run(self) -> None:
        """Read both sides until neither moves: one side's bytes may be
        what the other was waiting for."""
        moved = True
        while moved and self.lost is None:
            moved = self._read(self.server) | self._read(self.client)
        if self.lost is None and len(self.client.buffer) > RFB_MAX_AHEAD:
            self._lose(self.client, "the client sent %d bytes the handshake has no place for"
                       % len(self.client.buffer))
        if self.lost is None and len(self.server.buffer) > RFB_MAX_STRING + 64:
            self._lose(self.server, "the server sent %d bytes the handshake has no place for"
                       % len(self.server.buffer))

    def _read(self, side: _RfbSide) -> bool:
        moved = False
        while side.buffer and self.lost is None:
            if side.state == "passthrough":
                side.offset += len(side.buffer)
                side.buffer.clear()
                return True
            used = getattr(self, "_%s_%s" % (side.name, side.state.replace("-", "_")))(side.buffer)
            if not used:
                break
            moved = True
            taken = min(used, len(side.buffer))   # the rest of a message is skipped as it comes
            side.skip = used - taken
            del side.buffer[:taken]
            side.offset += taken
        return moved

    def _enter(self, side: _RfbSide, phase: str, used: int) -> None:
        """``side`` enters ``phase`` after its next ``used`` bytes; the
        "-wait" states are not phases: the side waits for the other."""
        side.state = phase
        if not phase.endswith("wait"):
            self._events.append(RfbPhase(side.name, phase, side.offset + used))

    def _lose(self, side: _RfbSide, reason: str) -> int:
        self.lost = RfbCannotFollow(side.name, side.offset, reason)
        self._events.append(self.lost)
        return 0

    # -- the handshake ------------------------------------------------------

    def _server_version(self, data) -> int:
        return self._version(self.server, data)

    def _client_version(self, data) -> int:
        if self.server_version is None:
            return 0   # the client answers the server's version
        return self._version(self.client, data)

    def _version(self, side: _RfbSide, data) -> int:
        if len(data) < 12:
            return 0
        version = parse_rfb_version(data[:12])
        if version is None or version < (3, 3):
            return self._lose(side, "the %s's ProtocolVersion is not RFB 3.3 or later: %r"
                              % (side.name, bytes(data[:12])))
        setattr(self, side.name + "_version", version)
        if side is self.client:
            if min(self.server_version, version) >= (4, 0):   # RealVNC's 4.x and 5.x among themselves
                return self._lose(side, "both sides speak RFB %d.%d, which wsproxy cannot follow"
                                  % min(self.server_version, version))
            self.version = spoken_rfb_version(self.server_version, version)
            self._events.append(RfbVersion(self.server_version, version, self.version))
            self._enter(self.server, "security", 0)
        self._enter(side, "security" if side is self.client else "version-wait", 12)
        return 12

    def _server_version_wait(self, data) -> int:
        return 0   # the server's next bytes depend on the client's version

    def _server_choice_wait(self, data) -> int:
        return 0   # ... or on its choice of security type

    def _server_security(self, data) -> int:
        if self.version == (3, 3):
            if len(data) < 4:
                return 0
            kind = struct.unpack_from(">I", data)[0]
            self.offered = (kind,)
            self._events.append(RfbSecurityTypes(self.offered, self.server.offset, self.server.offset + 4))
            if kind == RFB_SEC_INVALID:
                return self._server_failure(data, 4)
            return self._choose(kind, 4)
        count = data[0]
        if count == 0:
            return self._server_failure(data, 1)
        if len(data) < 1 + count:
            return 0
        self.offered = tuple(data[1:1 + count])
        self._events.append(RfbSecurityTypes(self.offered, self.server.offset, self.server.offset + 1 + count))
        self._enter(self.server, "choice-wait", 1 + count)
        return 1 + count

    def _client_security(self, data) -> int:
        if self.version == (3, 3):
            return 0   # 3.3: the server chooses; the client says nothing
        if not self.offered:
            return 0
        kind = data[0]
        if kind not in self.offered:
            return self._lose(self.client, "the client chose security type %s, which the server did not offer"
                              % security_type_name(kind))
        return self._choose(kind, 1)

    def _choose(self, kind: int, used: int) -> int:
        """The type in use is known (the client's choice, or 3.3's server's);
        ``used`` bytes of the chooser's side carry it."""
        self.security = kind
        self._events.append(RfbSecurityChosen(kind))
        chooser = self.server if self.version == (3, 3) else self.client
        if kind not in RFB_FOLLOWABLE_SECURITY:
            return self._lose(chooser, "security type %s cannot be followed (it encrypts the session or"
                              " is not known to wsproxy; only None and VncAuth are)" % security_type_name(kind))
        offset = used if chooser is self.server else 0
        if kind == RFB_SEC_VNC_AUTH:
            self._enter(self.server, "vnc-auth", offset)
            self._enter(self.client, "vnc-auth", used if chooser is self.client else 0)
        elif self.version == (3, 8):   # None: only 3.8 sends a SecurityResult
            self._enter(self.server, "security-result", offset)
            self._enter(self.client, "init", used if chooser is self.client else 0)
        else:
            self._enter(self.client, "init", used if chooser is self.client else 0)
            self._after_security(offset)
        return used

    def _after_security(self, used: int) -> None:
        """The server's ServerInit answers ClientInit, which may be read already."""
        self._enter(self.server, "init" if self.client.state == "normal" else "init-wait", used)

    def _server_vnc_auth(self, data) -> int:
        if len(data) < RFB_VNC_AUTH_BYTES:
            return 0
        self._enter(self.server, "security-result", RFB_VNC_AUTH_BYTES)
        return RFB_VNC_AUTH_BYTES

    def _client_vnc_auth(self, data) -> int:
        if len(data) < RFB_VNC_AUTH_BYTES:
            return 0
        self._enter(self.client, "init", RFB_VNC_AUTH_BYTES)
        return RFB_VNC_AUTH_BYTES

    def _server_security_result(self, data) -> int:
        if len(data) < 4:
            return 0
        status = struct.unpack_from(">I", data)[0]
        if status == 0:
            self._events.append(RfbSecurityResult(True, ""))
            self._after_security(4)
            return 4
        if self.version == (3, 8):   # only 3.8 gives a reason
            return self._server_failure(data, 4)
        self._events.append(RfbSecurityResult(False, ""))
        self._fail(4)
        return 4

    def _server_failure(self, data, at: int) -> int:
        """A failure whose reason string starts ``at`` bytes into ``data``."""
        if len(data) < at + 4:
            return 0
        length = struct.unpack_from(">I", data, at)[0]
        if length > RFB_MAX_STRING:
            return self._lose(self.server, "the server's failure reason is %d bytes long" % length)
        end = at + 4 + length
        if len(data) < end:
            return 0
        self._events.append(RfbSecurityResult(False, bytes(data[at + 4:end]).decode("utf-8", "replace")))
        self._fail(end)
        return end

    def _fail(self, used: int) -> None:
        self._enter(self.server, "failed", used)
        self._enter(self.client, "failed", 0)

    def _server_failed(self, data) -> int:
        return len(data)   # the server closes; anything more is not RFB

    def _client_failed(self, data) -> int:
        return len(data)

    def _server_init_wait(self, data) -> int:
        return 0   # ServerInit answers ClientInit

    def _client_init(self, data) -> int:
        self._events.append(RfbClientInit(bool(data[0]), self.client.offset))
        self._enter(self.client, "normal", 1)
        if self.server.state == "init-wait":
            self._enter(self.server, "init", 0)
        return 1

    def _server_init(self, data) -> int:
        if len(data) < 24:
            return 0
        length = struct.unpack_from(">I", data, 20)[0]
        if length > RFB_MAX_STRING:
            return self._lose(self.server, "the server's desktop name is %d bytes long" % length)
        if len(data) < 24 + length:
            return 0
        width, height = struct.unpack_from(">HH", data)
        name = bytes(data[24:24 + length]).decode("utf-8", "replace")
        self._events.append(RfbServerInit(width, height, bytes(data[4:20]), name))
        self._enter(self.server, "normal", 24 + length)
        self.server.state = "passthrough"   # nothing after ServerInit is read
        return 24 + length

    # -- client messages ----------------------------------------------------

    def _client_normal(self, data) -> int:
        kind = data[0]
        entry = RFB_CLIENT_MESSAGES.get(kind)
        if entry is None:
            return self._lose(self.client, "client message type %d is unknown; wsproxy cannot follow it" % kind)
        if len(data) < entry[1]:
            return 0
        header = bytes(data[:entry[1]])
        subtype = header[1] & 0x7F if kind == 253 else header[1] if kind == 255 else -1
        length = rfb_message_length(kind, header)
        if length < 0:
            return self._lose(self.client, "client message %s has no known length; wsproxy cannot follow it"
                              % rfb_message_name(kind, subtype))
        start = self.client.offset
        self._events.append(RfbClientMessage(kind, subtype, start, start + length))
        return length

# -- view-only: the follower as a filter ---------------------------------------
#
# noVNC's view_only (and our page's) is the client's promise; anyone can
# break it from the browser console.  On a view-only connection the proxy
# keeps it: client bytes pass only once the follower has placed them, and
# input messages are dropped.  Only what changes nothing on the desktop
# passes: the picture's format, encodings, update requests and fences, and
# QEMU audio (listening).  Everything else our client and noVNC send is input
# or control of the desktop (keys, pointer, clipboard, QEMU keys, resize,
# XVP power, gii devices) and is dropped; what the follower cannot place
# ends the connection.

VIEW_ONLY_PASSED = frozenset((0, 2, 3, 150, 248))
# The WebSocket subprotocol that tells a page its connection is view-only:
# chosen only for a client that offers it (noVNC offers only "binary").
VIEW_ONLY_SUBPROTOCOL = "wsproxy.view-only"


def view_only_passes(message: RfbClientMessage) -> bool:
    return message.kind in VIEW_ONLY_PASSED or (message.kind == 255 and message.subtype == RFB_QEMU_AUDIO)


class ViewOnlyRefused(ProtocolError):
    """A view-only connection met bytes it cannot vouch for: close 1008."""

    def __init__(self, reason: str):
        super().__init__(CloseCode.POLICY_VIOLATION, "view-only: " + reason)


class ViewOnlyFilter:
    """Makes one RFB connection view-only, without I/O.

    ``client(bytes)`` returns what may go on to the server: the handshake
    (ClientInit's shared flag set, so a watcher never makes the server drop
    the person in control) and the messages in VIEW_ONLY_PASSED.
    ``server(bytes)`` returns what may go on to the client: the offer of
    security types cut to those the follower reads.  Both raise
    ViewOnlyRefused when the stream cannot be followed.  Bytes not yet
    placed (a header cut short) wait here, a few at most.
    """

    def __init__(self):
        self.follower = RfbFollower()
        self.dropped = {}               # message name: count, for the closing log line
        self._held = bytearray()        # client bytes from offset _held_at, not yet sent on
        self._held_at = 0
        self._drop_to = 0               # the client offset where the last dropped message ends
        self._server_held = bytearray()
        self._server_at = 0

    @property
    def server_passes(self) -> bool:
        """True once nothing from the server needs reading: after ServerInit."""
        return self.follower.server.state == "passthrough" and not self._server_held

    def client(self, data: bytes) -> bytes:
        events = self.follower.client_data(data)
        self._held += data
        at, held = self._held_at, self._held
        keep_from = max(at, self._drop_to)
        out = bytearray()
        for event in events:
            kind = type(event)
            if kind is RfbCannotFollow:
                raise ViewOnlyRefused(event.reason)
            if kind is RfbClientInit and not event.shared:
                held[event.offset - at] = 1
            elif kind is RfbClientMessage and not view_only_passes(event):
                out += held[keep_from - at:max(keep_from, event.start) - at]
                keep_from = max(keep_from, event.end)
                self.dropped[event.name] = self.dropped.get(event.name, 0) + 1
        placed = self.follower.client_offset
        out += held[min(keep_from, placed) - at:placed - at]
        self._drop_to = keep_from
        del held[:placed - at]
        self._held_at = placed
        return bytes(out)

    def server(self, data: bytes) -> bytes:
        if self.server_passes:
            return data
        events = self.follower.server_data(data)
        self._server_held += data
        at, placed = self._server_at, self.follower.server.offset
        out = self._server_held[:placed - at]
        del self._server_held[:placed - at]
        self._server_at = placed
        for event in events:
            kind = type(event)
            if kind is RfbCannotFollow:
                raise ViewOnlyRefused(event.reason)
            if kind is RfbSecurityTypes and self.follower.version != (3, 3):
                out[event.start - at:event.end - at] = self._followable_offer(event.types)
        return bytes(out)

    @staticmethod
    def _followable_offer(types: Tuple[int, ...]) -> bytes:
        """The offer of security types cut to those the follower reads, so
        a client cannot choose one that would end the connection."""
        kept = [t for t in types if t in RFB_FOLLOWABLE_SECURITY]
        if not kept:
            raise ViewOnlyRefused("the VNC server offers only security types %s, which wsproxy cannot"
                                  " follow (it follows None and VncAuth)"
                                  % ", ".join(security_type_name(t) for t in types))
        return bytes([len(kept)] + kept)


# ===========================================================================
# 10. Connection handler: head, TLS sniff, auth, route, connect before 101
# ===========================================================================


class RecentFailures:
    """Why the last upgrade to each target failed, for a little while.

    A browser sees a failed upgrade only as close 1006, so the page asks again
    with a plain GET.  That answer must not connect to the target (a VNC
    server counts every such probe as a failed login and may blacklist the
    proxy's address), so it repeats what the real attempt found.  Bounded:
    the oldest entry goes when there are too many.
    """

    KEEP_FOR = 60.0      # seconds: the page asks within one or two
    MAX_ENTRIES = 1024

    def __init__(self):
        self._failures = {}  # type: Dict[str, Tuple[float, str]]
        self._lock = threading.Lock()

    def remember(self, target: str, reason: str, now: float) -> None:
        with self._lock:
            self._failures.pop(target, None)
            self._failures[target] = (now, reason)
            while len(self._failures) > self.MAX_ENTRIES:
                del self._failures[next(iter(self._failures))]

    def forget(self, target: str) -> None:
        with self._lock:
            self._failures.pop(target, None)

    def recall(self, target: str, now: float) -> Optional[str]:
        with self._lock:
            entry = self._failures.get(target)
        if entry is None or now - entry[0] > self.KEEP_FOR:
            return None
        return entry[1]


class ConnectionLimits:
    """--max-connections and --max-connections-per-ip: the WebSocket
    connections open now, in total and by client address (0: no limit).

    Each open WebSocket holds a target connection, a VNC session and a
    thread for as long as it lasts; static files and the endpoint's answer
    are short and bounded by HEAD_TIMEOUT, so only WebSockets are counted.
    An address's entry goes when its last connection closes, so the table
    holds no more entries than there are open connections.  ``open_total``
    and ``open_by_address()`` are for metrics.
    """

    def __init__(self, max_total: int = 0, max_per_address: int = 0):
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.open_total = 0
        self._by_address = {}  # type: Dict[str, int]
        self._lock = threading.Lock()

    def acquire(self, address: str) -> None:
        """Count one more connection from ``address``, or raise HttpError:
        503 when the server is full, 429 when this address has its share."""
        with self._lock:
            if self.max_total and self.open_total >= self.max_total:
                raise HttpError(503, "the server has reached its connection limit (%d); try again later"
                                % self.max_total)
            mine = self._by_address.get(address, 0)
            if self.max_per_address and mine >= self.max_per_address:
                raise HttpError(429, "too many connections from your address (limit %d); close one first"
                                % self.max_per_address)
            self.open_total += 1
            self._by_address[address] = mine + 1

    def release(self, address: str) -> None:
        with self._lock:
            mine = self._by_address.pop(address, 0) - 1
            if mine > 0:
                self._by_address[address] = mine
            self.open_total -= 1

    def open_by_address(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._by_address)


class AuthBackoff:
    """--max-auth-failures: an address with that many failed attempts (a
    wrong password, a refused origin, an unknown token) within WINDOW
    seconds is refused with 429 for a while, longer each time it starts
    again, so credentials and tokens cannot be guessed at network speed.

    Times come from the caller (a monotonic clock), so this is tested
    without waiting.  Bounded: the least recently seen address goes when
    there are too many.
    """

    WINDOW = 60.0          # seconds in which the failures must fall
    FIRST_BLOCK = 30.0     # seconds refused after the first burst...
    MAX_BLOCK = 3600.0     # ...doubling with each burst up to an hour
    # An address quiet this long after its last failure or block starts over at FIRST_BLOCK.
    FORGET_AFTER = MAX_BLOCK
    MAX_ENTRIES = 4096     # about 1 MiB; an attacker with more addresses has many anyway

    def __init__(self, threshold: int):
        self.threshold = threshold
        self._entries = {}  # type: Dict[str, list]   address -> [failure times, blocked until, blocks, last seen]
        self._lock = threading.Lock()

    def failed(self, address: str, now: float) -> None:
        with self._lock:
            entry = self._entries.pop(address, None)
            if entry is None or now - max(entry[1], entry[3]) > self.FORGET_AFTER:
                entry = [deque(maxlen=self.threshold), 0.0, 0, now]
            times = entry[0]
            times.append(now)
            entry[3] = now
            if len(times) == self.threshold and now - times[0] <= self.WINDOW:
                entry[1] = now + min(self.FIRST_BLOCK * 2 ** entry[2], self.MAX_BLOCK)
                entry[2] += 1
                times.clear()
            self._entries[address] = entry
            while len(self._entries) > self.MAX_ENTRIES:
                del self._entries[next(iter(self._entries))]

    def retry_after(self, address: str, now: float) -> float:
        """Seconds until ``address`` may try again; 0 when it may now."""
        with self._lock:
            entry = self._entries.get(address)
        return 0.0 if entry is None else max(0.0, entry[1] - now)

    def __len__(self) -> int:
        return len(self._entries)


def counts_as_auth_failure(head: RequestHead, status: int, host_token: bool) -> bool:
    """Whether an error reply tells of a guess: 401 for credentials that were
    sent (the first 401, which asks for them, is no failure), 403 for a
    refused origin, 404 for a token named on the WebSocket path."""
    if status == 401:
        return head.get("authorization") is not None
    if status == 403:
        return True
    return status == 404 and is_websocket_path(head) and bool(requested_token(head, host_token))


class _ClosedError(Exception):
    """The client went away or timed out while we were reading its head."""


class ConnectionHandler:
    """Serves one accepted socket: static files (keep-alive) or one WebSocket."""

    def __init__(self, server: "Server", sock: socket.socket, address, number: int):
        self.server = server
        self.config = server.config
        self.sock = sock
        self.address = address
        self.peer = _format_address(address)
        self.client_address = self.peer
        self.number = number
        self.buffer = b""

    # -- reading -----------------------------------------------------------

    def _read_head(self, timeout: float) -> Optional[RequestHead]:
        """Next request head, or None if the client closed cleanly between requests."""
        deadline = time.monotonic() + timeout
        while True:
            end = find_head_end(self.buffer)
            if end >= 0:
                data, self.buffer = self.buffer[:end], self.buffer[end:]
                return parse_request_head(data)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if self.buffer:
                    raise HttpError(408, "request head not received within %gs" % timeout)
                raise _ClosedError("idle")
            if not self._wait_readable(remaining):
                continue
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError as exc:  # ssl.SSLError is an OSError
                raise _ClosedError(str(exc)) from None
            if not chunk:
                if self.buffer:
                    raise _ClosedError("client closed mid-request")
                return None
            self.buffer += chunk

    def _wait_readable(self, timeout: float) -> bool:
        """Wait for request bytes, but give up at once when the server stops,
        so an idle keep-alive connection never delays shutdown."""
        if _is_tls(self.sock) and self.sock.pending():
            return True
        poller = _Poller()
        try:
            poller.set(self.sock.fileno(), _POLL_IN)
            poller.set(self.server.stop_reader_fd, _POLL_IN)
            ready = {fd for fd, _ in poller.wait(timeout)}
        finally:
            poller.close()
        if self.server.stop_reader_fd in ready:
            raise _ClosedError("server stopping")
        return bool(ready)

    def _send(self, data: bytes) -> None:
        self.sock.settimeout(HEAD_TIMEOUT)
        self.sock.sendall(data)

    # -- entry -------------------------------------------------------------

    def run(self) -> None:
        try:
            if self.config.proxy_protocol and not self._accept_proxy_header():
                return
            if not self._negotiate_tls():
                return
            keep_alive = True
            first = True
            while keep_alive and not self.server.stopping:
                try:
                    head = self._read_head(HEAD_TIMEOUT if first else KEEPALIVE_TIMEOUT)
                except HttpError as exc:
                    log.info("conn %d %s: %d %s", self.number, self.peer, exc.status, exc.reason)
                    self._count_reply(exc.status, False)
                    self._send(error_response(exc))
                    return
                if head is None:
                    return
                first = False
                self.client_address = self._client_address(head)
                keep_alive = self._serve(head)
        except _ClosedError:
            pass
        except OSError as exc:  # ssl.SSLError is an OSError
            log.debug("conn %d %s: socket error: %s", self.number, self.peer, exc)

    def _accept_proxy_header(self) -> bool:
        """--proxy-protocol: the header, before anything else (TLS too); the
        client it names is this connection's peer from here on."""
        if not proxy_sender_allowed(self.address, self.server.trusted_networks):
            log.info("conn %d %s: refused: a PROXY protocol header is accepted only from --trusted-proxy",
                     self.number, self.peer)
            return False
        try:
            header = self._read_proxy_header(PROXY_HEADER_TIMEOUT)
        except ProxyHeaderError as exc:
            log.info("conn %d %s: refused: %s", self.number, self.peer, exc)
            return False
        if header.source is not None:
            log.debug("conn %d %s: PROXY v%d from %s", self.number, self.peer, header.version,
                      _format_address(header.source))
            self.peer = self.client_address = _format_address(header.source)
        return True

    def _read_proxy_header(self, timeout: float) -> ProxyHeader:
        """Exactly the header's bytes: what follows stays in the socket for
        the TLS sniff.  What is already there is peeked, and only the part
        that is surely header is taken."""
        deadline = time.monotonic() + timeout
        data = b""
        while True:
            needs = proxy_header_needs(data)
            if needs == 0:
                return parse_proxy_header(data)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProxyHeaderError("no complete PROXY protocol header within %gs" % timeout)
            if not self._wait_readable(remaining):
                continue
            self.sock.settimeout(remaining)
            try:
                ahead = self.sock.recv(max(needs, PROXY_V1_MAX), socket.MSG_PEEK)
            except socket.timeout:
                continue
            if not ahead:
                raise ProxyHeaderError("connection closed before a complete PROXY protocol header")
            take = len(ahead)   # all header, unless the header ends within it
            if proxy_header_needs(data + ahead) == 0:
                take = parse_proxy_header(data + ahead).length - len(data)
            while take > 0:   # already received: recv returns at once
                chunk = self.sock.recv(take)
                if not chunk:
                    raise ProxyHeaderError("connection closed before a complete PROXY protocol header")
                data += chunk
                take -= len(chunk)

    def _negotiate_tls(self) -> bool:
        """Sniff the first byte: 0x16 starts a TLS handshake, anything else is plain HTTP."""
        context = self.server.tls_context
        self.sock.settimeout(HEAD_TIMEOUT)
        try:
            first = self.sock.recv(1, socket.MSG_PEEK)
        except socket.timeout:
            log.info("conn %d %s: nothing received within %gs", self.number, self.peer, HEAD_TIMEOUT)
            return False
        if not first:
            return False
        is_tls = first[0] == 0x16
        if is_tls and context is None:
            log.info("conn %d %s: TLS handshake received but no --cert is configured; closing",
                     self.number, self.peer)
            self._count_failure("tls")
            return False
        if not is_tls and self.config.ssl_only:
            log.info("conn %d %s: plain connection refused: --ssl-only requires https:// or wss://",
                     self.number, self.peer)
            self._count_failure("tls_required")
            self._send(http_response(400, body=b"this server accepts only TLS: use https:// or wss://\n"))
            return False
        if is_tls:
            try:
                self.sock = context.wrap_socket(self.sock, server_side=True)
            except OSError as exc:  # ssl.SSLError is an OSError
                log.info("conn %d %s: TLS handshake failed: %s", self.number, self.peer,
                         getattr(exc, "reason", None) or exc)
                self._count_failure("tls")
                return False
        return True

    def _client_address(self, head: RequestHead) -> str:
        return client_address(self.peer, head.get_all("x-forwarded-for"), self.server.trusted_networks)

    # -- routing -----------------------------------------------------------

    def _serve(self, head: RequestHead) -> bool:
        """Answer one request; True to keep the connection for another."""
        config = self.config
        if self.server.health_on_main and head.path == HEALTH_PATH and head.method in ("GET", "HEAD"):
            # Before auth: a load balancer's probe carries no credentials, and "ok" tells nothing.
            self._send(health_reply(head, self.server.draining))
            return False
        try:
            self._check_backoff()
            where = admit(head, self.server.web_root, config.auth_plugin, config.auth_source, config.web_auth)
            if where.kind == ROUTE_WEBSOCKET:
                self._serve_websocket_within_limits(head)
                return False
            if where.kind == ROUTE_FILE:
                return self._serve_file(head, where.path)
            return self._serve_endpoint(head)
        except HttpError as exc:
            self._note_failure(head, exc.status)
            self._log_reply(head, exc.status, exc.log_reason)
            self._send(error_response(exc, head_only=head.method == "HEAD"))
            return False

    def _check_backoff(self) -> None:
        """429 while this address is backing off after failed attempts."""
        backoff = self.server.auth_backoff
        wait = backoff.retry_after(address_key(self.client_address), time.monotonic()) if backoff else 0
        if wait > 0:
            seconds = int(-(-wait // 1))   # rounded up: never invites a retry that is still refused
            raise HttpError(429, "too many failed attempts from your address; try again in %d s" % seconds,
                            [("Retry-After", str(seconds))])

    def _note_failure(self, head: RequestHead, status: int) -> None:
        backoff = self.server.auth_backoff
        if backoff is not None and counts_as_auth_failure(head, status, self.config.host_token):
            backoff.failed(address_key(self.client_address), time.monotonic())

    def _serve_websocket_within_limits(self, head: RequestHead) -> None:
        """--max-connections(-per-ip): 503 or 429 before the upgrade, else serve."""
        key = address_key(self.client_address)
        self.server.limits.acquire(key)
        try:
            self._serve_websocket(head)
        finally:
            self.server.limits.release(key)

    def _log_reply(self, head: RequestHead, status: int, reason: str) -> None:
        log.info("conn %d %s: %s %s -> %d %s", self.number, self.client_address, head.method,
                 _loggable_path(head), status, loggable(reason))
        self._count_reply(status, is_upgrade_request(head))

    # -- metrics (each a no-op without --metrics-listen) --------------------

    def _count_reply(self, status: int, upgrade: bool) -> None:
        if self.server.metrics is not None:
            self.server.metrics.replied(status, upgrade)

    def _count_failure(self, reason: str) -> None:
        if self.server.metrics is not None:
            self.server.metrics.handshake_failed(reason)

    def _connect(self, target: Target) -> socket.socket:
        try:
            if target.unix_path:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(CONNECT_TIMEOUT)
                try:
                    sock.connect(target.unix_path)
                except OSError:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection((target.host, target.port), timeout=CONNECT_TIMEOUT)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, TARGET_RCVBUF)
            if self.config.ssl_target:
                ssl = _ssl()
                context = ssl.create_default_context()
                # Like websockify: targets behind --ssl-target usually carry
                # self-signed certificates; the hop is encrypted, not verified.
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                # The default context has this floor only from Python 3.10 on.
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                sock = context.wrap_socket(sock, server_hostname=target.host or None)
            return sock
        except socket.timeout:
            raise HttpError(502, "target %s unreachable: timed out after %gs" % (target, CONNECT_TIMEOUT)) from None
        except socket.gaierror as exc:
            raise HttpError(502, "target %s unreachable: %s" % (target, exc.strerror)) from None
        except OSError as exc:
            if _is_ssl_error(exc):
                raise HttpError(502, "target %s: TLS failed: %s" % (target, exc.reason or exc)) from None
            reason = (exc.strerror or str(exc)).lower()
            raise HttpError(502, "target %s unreachable: %s" % (target, reason)) from None

    def _serve_websocket(self, head: RequestHead) -> None:
        started = time.monotonic()
        upgrade = check_upgrade(head)
        config = self.config
        entry, label = resolve_entry(head, config.target, self.server.token_lookup, config.host_token)
        target, view_only = entry.target, config.view_only or entry.view_only
        if view_only and VIEW_ONLY_SUBPROTOCOL in head.tokens("sec-websocket-protocol"):
            upgrade = upgrade._replace(subprotocol=VIEW_ONLY_SUBPROTOCOL)   # tells the page
        try:
            target_sock = self._connect(target)
        except HttpError as exc:
            self.server.recent_failures.remember(str(target), exc.reason, time.monotonic())
            raise
        self.server.recent_failures.forget(str(target))
        try:
            self._send(upgrade_response(upgrade))
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if hasattr(socket, "TCP_NOTSENT_LOWAT"):
                    self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, CLIENT_NOTSENT_LOWAT)
            except OSError:
                pass  # Unix sockets have no Nagle (and no send queue to bound)
            log.info("conn %d %s: open -> %s%s%s", self.number, self.client_address, target,
                     " " + loggable(label) if label else "", " view-only" if view_only else "")
            session = WebSocketSession(self.config.max_message_size)
            relay_class = ViewOnlyRelay if view_only else Relay
            recorder = self._recorder(head, target)
            relay = relay_class(self.sock, target_sock, session, leftover=self.buffer,
                                heartbeat=self.config.heartbeat, idle_timeout=self.config.idle_timeout,
                                stop_fd=self.server.stop_reader_fd, recorder=recorder)
            self.buffer = b""
            metrics = self.server.metrics
            if metrics is not None:
                metrics.session_opened(relay.stats)
            try:
                stats = relay.run()
            except Exception:  # noqa: BLE001 -- the thread boundary: log, tell the peer 1011
                log.exception("conn %d: internal error in relay", self.number)
                stats = relay.abort(CloseCode.INTERNAL_ERROR, "internal error")
            finally:
                if metrics is not None:
                    metrics.session_closed(relay.stats, time.monotonic() - started)
            log.info("conn %d %s: closed code=%d up=%dB down=%dB %.1fs %s", self.number,
                     self.client_address, stats.close_code, stats.bytes_up, stats.bytes_down,
                     time.monotonic() - started, loggable(stats.close_reason))
            if view_only:
                log.info("conn %d: view-only: dropped %s", self.number, relay.dropped())
            if recorder is not None:
                recorder.close()
        finally:
            target_sock.close()

    def _recorder(self, head: RequestHead, target: Target) -> Optional["SessionRecorder"]:
        """--record: this session's recorder, labelled with its target and token."""
        store = self.server.recordings
        if store is None:
            return None
        token = requested_token(head, self.config.host_token) if self.config.target is None else None
        return store.recorder(self.number, str(target), token)

    def _serve_file(self, head: RequestHead, path: str) -> bool:
        try:
            handle = open(path, "rb")
        except OSError:
            raise HttpError(404, "not found") from None
        keep_alive = head.keep_alive and not self.server.stopping
        with handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise HttpError(404, "not found")
            if not_modified(head.get("if-modified-since"), st.st_mtime):
                headers = [h for h in static_headers(path, st) if h[0] not in ("Content-Length", "Content-Type")]
                self._send(http_response(304, headers, keep_alive=keep_alive))
                self._count_reply(304, False)
                return keep_alive
            self._send(http_response(200, static_headers(path, st), keep_alive=keep_alive, head_only=True))
            if head.method != "HEAD":
                self.sock.settimeout(HEAD_TIMEOUT * 3)
                self.sock.sendfile(handle)
        log.debug("conn %d %s: %s %s 200", self.number, self.client_address, head.method, _loggable_path(head))
        self._count_reply(200, False)
        return keep_alive

    def _serve_endpoint(self, head: RequestHead) -> bool:
        """A plain GET where a WebSocket is expected: say what an upgrade would get.

        Browsers hide a failed upgrade's HTTP status behind close code 1006,
        so the page asks again with a plain GET and shows this text.
        """
        # The answer names the target: admit() put it through the auth plugin.
        config = self.config
        target, _ = resolve_target(head, config.target, self.server.token_lookup, config.host_token)
        status, text, headers = endpoint_reply(target, self.server.recent_failures.recall(str(target), time.monotonic()))
        self._log_reply(head, status, text)
        self._send(http_response(status, headers, (text + "\n").encode("utf-8"), head_only=head.method == "HEAD"))
        return False


def _loggable_path(head: RequestHead) -> str:
    """The request path without its query (queries carry tokens and
    passwords), escaped for the log."""
    return loggable(head.path) + ("?..." if head.query else "")


def _format_address(address) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = address[0]
        if host.startswith("::ffff:"):
            host = host[7:]
        return host_port(host, address[1])
    # A Unix socket client's path is chosen by a local user: escaped too.
    return loggable(str(address)) or "unix"


# ===========================================================================
# 11. Server: listening sockets, accept loop, threads, signals; metrics
# ===========================================================================


class Server:
    """Listening sockets plus one thread per accepted connection."""

    def __init__(self, config: "Config"):
        self.config = config
        self.listeners = []          # type: List[socket.socket]
        self.stopping = False
        self.tokens = None
        self.tls_context = None
        self.web_root = None
        self.trusted_networks = []
        self.socket_activated = False   # the listeners came from systemd
        self.recent_failures = RecentFailures()
        self.metrics = None          # ProxyMetrics with --metrics-listen
        self.metrics_listener = None   # its MetricsListener, bound by main
        self.draining = False        # SIGTERM with --drain-seconds: /healthz answers 503
        self._reload_lock = threading.Lock()
        self.recordings = None       # type: Optional[RecordingStore]
        self.limits = ConnectionLimits(config.max_connections, config.max_connections_per_ip)
        self.auth_backoff = AuthBackoff(config.max_auth_failures) if config.max_auth_failures else None
        self._threads = set()
        self._threads_lock = threading.Lock()
        self._counter = 0
        self._websocket_taken = False   # --run-once
        # One byte written here wakes every relay's poll at once for shutdown;
        # nobody reads it, so it stays readable.
        self._stop_reader, self._stop_writer = socket.socketpair()
        self.stop_reader_fd = self._stop_reader.fileno()
        self._configure()

    def _configure(self) -> None:
        config = self.config
        if config.token_source:
            self.tokens = make_token_source(config.token_plugin, config.token_source)
        if config.web:
            self.web_root = os.path.realpath(config.web)
        if config.cert:
            self.tls_context = make_tls_context(config)
        self.trusted_networks = list(config.trusted_proxies)
        if config.metrics_listen:
            self.metrics = ProxyMetrics(process_samples)
        # Lookups go through this: the source itself, timed and counted with --metrics-listen.
        self.token_lookup = (self.tokens if self.metrics is None or self.tokens is None
                             else MeteredTokens(self.tokens, self.metrics))
        if config.record:
            self.recordings = RecordingStore(config.record, config.record_max_bytes,
                                             config.record_session_max_bytes, config.record_input)
            where = os.path.realpath(self.recordings.directory)
            if self.web_root and (where + os.sep).startswith(self.web_root + os.sep):
                log.warning("--record %s is inside the web files (%s): anyone who can load the page can "
                            "download the recordings", config.record, self.web_root)
            if self.metrics is not None:
                self.metrics.watch_recordings(self.recordings)

    @property
    def health_on_main(self) -> bool:
        """/healthz on the main port too: set up for a load balancer."""
        return self.metrics is not None or self.config.drain_seconds > 0

    def bind(self) -> None:
        config = self.config
        activated = _systemd_listeners()
        if activated:   # systemd socket activation: its sockets, whatever the command line says
            self.listeners, self.socket_activated, config.unix_listen = activated, True, ""
        elif config.inetd:
            self.listeners.append(_inherited_listener())
        elif config.unix_listen:
            self._bind_unix(config.unix_listen, config.unix_listen_mode)
        elif config.listen_host or not socket.has_ipv6 or not self._bind_dual_stack(config.listen_port):
            self._bind_addresses(config.listen_host, config.listen_port, config.prefer_ipv6)
        if (activated or config.inetd) and self.listeners[0].family != getattr(socket, "AF_UNIX", None):
            config.listen_host, config.listen_port = self.listeners[0].getsockname()[:2]

    def _bind_unix(self, path: str, mode: int) -> None:
        if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            # Before listen(): until then a connect() is refused, so nobody
            # gets in under the umask's looser permissions.
            os.chmod(path, mode)
            sock.listen(LISTEN_BACKLOG)
        except OSError:
            sock.close()
            raise
        self.listeners.append(sock)

    def _bind_dual_stack(self, port: int) -> bool:
        """One IPv6 socket that takes IPv4 too; False where that cannot be had."""
        try:
            sock = socket.create_server(("", port), family=socket.AF_INET6,
                                        dualstack_ipv6=True, backlog=LISTEN_BACKLOG)
        except (OSError, ValueError) as exc:
            if getattr(exc, "errno", None) == errno.EADDRINUSE:
                raise
            return False
        self.listeners.append(sock)
        return True

    def _bind_addresses(self, host: str, port: int, prefer_ipv6: bool) -> None:
        """Every address the listen host resolves to (only its IPv6 ones with
        --prefer-ipv6, where it has any)."""
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        if prefer_ipv6:
            infos = [info for info in infos if info[0] == socket.AF_INET6] or infos
        seen = set()
        for family, kind, proto, _, address in infos:
            if address in seen:
                continue
            seen.add(address)
            sock = socket.socket(family, kind, proto)
            if os.name != "nt":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError:
                sock.close()
                for other in self.listeners:
                    other.close()
                self.listeners = []
                raise
            sock.listen(LISTEN_BACKLOG)
            self.listeners.append(sock)

    def addresses(self) -> List[str]:
        out = []
        for sock in self.listeners:
            name = sock.getsockname()
            out.append(name if isinstance(name, str) else _format_address(name))
        return out

    def serve_forever(self) -> None:
        poller = _Poller()
        for sock in self.listeners:
            sock.setblocking(False)
            poller.set(sock.fileno(), _POLL_IN)
        poller.set(self.stop_reader_fd, _POLL_IN)
        by_fd = {sock.fileno(): sock for sock in self.listeners}
        deadline = time.monotonic() + self.config.timeout if self.config.timeout else None
        backoff = ACCEPT_BACKOFF[0]
        try:
            while not self.stopping:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                events = poller.wait(wait)
                if deadline is not None and time.monotonic() >= deadline:
                    log.info("--timeout %gs reached; stopping", self.config.timeout)
                    break
                for fd, _ in events:
                    listener = by_fd.get(fd)
                    if listener is None:
                        continue
                    try:
                        conn, address = listener.accept()
                    except _WOULD_BLOCK:
                        continue
                    except OSError as exc:
                        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                            log.warning("accept failed (%s); retrying in %.2fs", exc.strerror, backoff)
                            time.sleep(backoff)
                            backoff = min(backoff * 2, ACCEPT_BACKOFF[1])
                        continue
                    backoff = ACCEPT_BACKOFF[0]
                    conn.setblocking(True)
                    self._start(conn, address)
        finally:
            poller.close()
            self.shutdown()

    def _start(self, conn: socket.socket, address) -> None:
        self._counter += 1
        number = self._counter
        handler = (_RunOnceHandler if self.config.run_once else ConnectionHandler)(self, conn, address, number)
        thread = threading.Thread(target=self._run_handler, args=(handler,), name="conn-%d" % number, daemon=True)
        with self._threads_lock:
            self._threads.add(thread)
        try:
            thread.start()
        except RuntimeError as exc:  # can't start new thread: out of memory/threads
            log.warning("cannot start a thread for a new connection: %s", exc)
            with self._threads_lock:
                self._threads.discard(thread)
            conn.close()

    def _run_handler(self, handler: ConnectionHandler) -> None:
        metrics = self.metrics
        if metrics is not None:
            metrics.connection(1)
        try:
            handler.run()
        except Exception:  # noqa: BLE001 -- the thread boundary: report, then close
            log.exception("conn %d: internal error", handler.number)
        finally:
            try:
                handler.sock.close()
            except OSError:
                pass
            with self._threads_lock:
                self._threads.discard(threading.current_thread())
            if metrics is not None:
                metrics.connection(-1)

    def request_stop(self) -> None:
        """Safe from a signal handler: wakes the accept loop and every relay."""
        self.stopping = True
        try:
            self._stop_writer.send(b"x")
        except OSError:
            pass

    def begin_drain(self, seconds: float) -> None:
        """SIGTERM with --drain-seconds: keep serving, old sessions and new,
        while /healthz answers 503 and a load balancer moves new sessions
        elsewhere; then stop as request_stop does (open sessions get 1001)."""
        self.draining = True
        if self.metrics is not None:
            self.metrics.draining = True
        timer = threading.Timer(seconds, self.request_stop)
        timer.daemon = True
        timer.name = "drain"
        timer.start()

    def request_reload(self) -> None:
        """SIGHUP: reload on a thread of its own, not inside the signal handler."""
        threading.Thread(target=self.reload, name="reload", daemon=True).start()

    def reload(self) -> None:
        """Load the TLS certificate and key again (new connections get them;
        open ones keep theirs; a bad new pair keeps the old) and force the
        token source to re-read.  One log line says what was reloaded."""
        with self._reload_lock:
            done, failed = [], False
            if self.config.cert:
                text, ok = self._reload_tls()
                done.append(text)
                failed = not ok
            if self.tokens is not None:
                text, ok = self._reload_tokens()
                done.append(text)
                failed = failed or not ok
            log.log(logging.WARNING if failed else logging.INFO, "reload (SIGHUP): %s",
                    "; ".join(done) or "nothing to reload (no --cert, no token source)")

    def _reload_tls(self) -> Tuple[str, bool]:
        try:
            context = make_tls_context(self.config)
        except ConfigError as exc:
            ok, text = False, "TLS certificate NOT reloaded, the old one stays: %s" % exc
        else:
            self.tls_context = context   # one reference swap: each handshake takes the one it finds
            ok, text = True, "TLS certificate reloaded from %s" % self.config.cert
        if self.metrics is not None:
            self.metrics.reloaded("tls", ok)
        return text, ok

    def _reload_tokens(self) -> Tuple[str, bool]:
        reload = getattr(self.tokens, "reload", None)
        if not callable(reload):
            return "the token source cannot be reloaded by hand", True
        try:
            count = reload()
        except Exception as exc:  # noqa: BLE001 -- a token source plug-in's failure: log it, keep serving
            ok, text = False, "token source NOT reloaded: %s" % exc
        else:
            ok, text = True, "token source reloaded" + (" (%d tokens)" % count if isinstance(count, int) else "")
        if self.metrics is not None:
            self.metrics.reloaded("tokens", ok)
        return text, ok

    def shutdown(self, grace: float = CLOSE_TIMEOUT + 2) -> None:
        self.request_stop()
        for sock in self.listeners:
            try:
                sock.close()
            except OSError:
                pass
        if self.config.unix_listen:
            try:
                os.unlink(self.config.unix_listen)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.recordings is not None:
            self.recordings.close()

    def claim_websocket(self) -> bool:
        """--run-once: True for the one WebSocket connection, False after."""
        with self._threads_lock:
            taken, self._websocket_taken = self._websocket_taken, True
        return not taken

    def release_websocket(self) -> None:
        """The claimed upgrade failed before the 101: the next one may have it."""
        with self._threads_lock:
            self._websocket_taken = False


# The socket option that says whether a socket listens (Linux, BSDs).
_SO_ACCEPTCONN = getattr(socket, "SO_ACCEPTCONN", 30)


def _inherited_listener() -> socket.socket:
    """--inetd: the listening stream socket on standard input."""
    try:
        sock = socket.socket(fileno=0)
    except OSError:
        raise ConfigError("--inetd needs a listening socket on standard input (inetd 'wait' mode, "
                          "systemd StandardInput=socket); standard input is not a socket") from None
    try:
        listening = sock.type == socket.SOCK_STREAM and sock.getsockopt(socket.SOL_SOCKET, _SO_ACCEPTCONN)
    except OSError:
        listening = False
    if not listening:
        sock.detach()   # not ours to close
        raise ConfigError("--inetd needs a listening stream socket on standard input, not a connected one "
                          "(inetd 'wait' mode, systemd Accept=no)")
    return sock


# systemd passes its sockets from this descriptor on (sd_listen_fds(3)).
SD_LISTEN_FDS_START = 3


def systemd_listen_fds(environ, pid: int) -> List[int]:
    """The descriptors systemd passed to process ``pid`` (LISTEN_FDS and
    LISTEN_PID in ``environ``), or none when they were meant for another."""
    if environ.get("LISTEN_PID", "") != str(pid):
        return []
    text = environ.get("LISTEN_FDS", "")
    if not text.isdigit():
        raise ConfigError("systemd socket activation: LISTEN_FDS=%r is not a number" % loggable(text))
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(text)))


def _systemd_listeners() -> List[socket.socket]:
    """systemd socket activation: the listening sockets passed to us.  The
    variables are unset, and the sockets kept from children, so a wrapped
    program does not take them for its own."""
    fds = systemd_listen_fds(os.environ, os.getpid())
    names = os.environ.get("LISTEN_FDNAMES", "")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    sockets = []
    for fd in fds:
        try:
            os.set_inheritable(fd, False)
            sock = socket.socket(fileno=fd)
            listening = sock.type == socket.SOCK_STREAM and sock.getsockopt(socket.SOL_SOCKET, _SO_ACCEPTCONN)
        except OSError:
            listening = False
        if not listening:
            raise ConfigError("systemd socket activation: descriptor %d is not a listening stream socket "
                              "(use ListenStream= and Accept=no in the .socket unit)" % fd)
        sockets.append(sock)
    if sockets:
        log.info("listening on %d socket%s from systemd%s", len(sockets), "" if len(sockets) == 1 else "s",
                 " (%s)" % loggable(names) if names else "")
    return sockets


class _RunOnceHandler(ConnectionHandler):
    """--run-once: the first WebSocket connection is served, and when it
    ends the server stops.  Static files are served meanwhile (the page
    loads them); another upgrade is refused with 503, as websockify, which
    serves one connection at a time, would never answer it."""

    def _serve_websocket(self, head: RequestHead) -> None:
        if not self.server.claim_websocket():
            raise HttpError(503, "--run-once: this server serves one WebSocket connection, already taken")
        served = True
        try:
            super()._serve_websocket(head)
        except HttpError:   # refused before the upgrade (bad request, unknown token, 502): not served
            served = False
            self.server.release_websocket()
            raise
        finally:
            if served:
                log.info("conn %d: --run-once: the WebSocket connection is over; stopping", self.number)
                self.server.request_stop()


TLS_VERSIONS = {"tlsv1_2": "TLSv1_2", "tlsv1_3": "TLSv1_3"}


def _read_head_of(path: str) -> str:
    """The first 1 MiB of a PEM file as text ("" if unreadable): enough to
    tell what it holds, bounded whatever the path names."""
    try:
        with open(path, "rb") as handle:
            return handle.read(1 << 20).decode("latin-1")
    except OSError:
        return ""


def describe_pem_problem(cert_text: str, key_text: Optional[str], password: bool = False) -> Optional[str]:
    """Why --cert (and --key) could not be loaded, in words a person can act
    on; None when the files look right (then the ssl module's reason stands)."""
    has_key = lambda text: re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", text) is not None  # noqa: E731
    if "-----BEGIN CERTIFICATE-----" not in cert_text:
        return "the --cert file holds no PEM certificate (no -----BEGIN CERTIFICATE----- line)"
    if key_text is None and not has_key(cert_text):
        return ("the --cert file holds a certificate but no private key: "
                "add --key KEYFILE, or append the key to the certificate file")
    key_source = cert_text if key_text is None else key_text
    if not has_key(key_source):
        return "the --key file holds no PEM private key (no -----BEGIN ... PRIVATE KEY----- line)"
    if "ENCRYPTED" in key_source and password:
        return "the --key-password does not decrypt the private key"
    if "ENCRYPTED" in key_source:
        return ("the private key is encrypted with a passphrase: give it with --key-password, "
                "or decrypt the key (openssl pkey -in KEY -out KEY)")
    return None


def make_tls_context(config: "Config"):
    """The server-side SSLContext for --cert/--key, TLS 1.2 or newer."""
    ssl = _ssl()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = getattr(ssl.TLSVersion, TLS_VERSIONS[config.ssl_version])
    _load_cert_chain(context, config)
    if config.ssl_ciphers:
        try:
            context.set_ciphers(config.ssl_ciphers)
        except ssl.SSLError:
            raise ConfigError("--ssl-ciphers %r matches no cipher" % config.ssl_ciphers) from None
    if config.verify_client:
        # Only a client whose certificate chains to --cafile gets past the handshake.
        context.verify_mode = ssl.CERT_REQUIRED
        try:
            context.load_verify_locations(cafile=config.cafile)
        except OSError as exc:  # ssl.SSLError is an OSError
            raise ConfigError("cannot load --cafile %s: %s" % (
                config.cafile, getattr(exc, "reason", None) or exc.strerror or "no PEM certificates in it")) from None
    return context


def _load_cert_chain(context, config: "Config") -> None:
    ssl = _ssl()
    # A callable, so that OpenSSL never stops to ask on the terminal: an
    # encrypted key without --key-password fails with a sentence instead.
    password = config.key_password.encode("utf-8")
    try:
        context.load_cert_chain(config.cert, config.key or None, password=lambda: password)
    except OSError as exc:  # ssl.SSLError is an OSError
        problem = None
        if not isinstance(exc, ssl.SSLError):
            problem = exc.strerror
        else:
            problem = describe_pem_problem(_read_head_of(config.cert), _read_head_of(config.key) if config.key else None,
                                           bool(config.key_password))
            if problem is None and getattr(exc, "reason", "") == "KEY_VALUES_MISMATCH":
                problem = "the private key does not belong to the certificate (another key pair's?)"
        raise ConfigError("cannot load --cert %s%s: %s" % (
            config.cert, " --key " + config.key if config.key else "",
            problem or getattr(exc, "reason", None) or exc)) from None


# -- metrics: a pure registry, what wsproxy counts, and their listener -------

# A metric keeps at most this many label sets; later new ones are counted
# under label values "other".  Every label here comes from a small fixed set,
# so this only guards against a mistake turning a peer's text into a label.
MAX_METRIC_SERIES = 64
# Token lookups: a file lookup takes microseconds, a network source
# (Redis, an HTTP API) milliseconds to seconds.
TOKEN_LOOKUP_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0)
# VNC sessions last from a glance (seconds) to a working day.
SESSION_BUCKETS = (1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0)
# The metrics listener reads a request head of at most this many bytes, for
# at most this long: one thread answers scrapes one at a time.
METRICS_HEAD_LIMIT = 4096
METRICS_TIMEOUT = 2.0
# The media type of the Prometheus text exposition format 0.0.4.
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")


class _Metric:
    __slots__ = ("kind", "help", "labels", "buckets", "series")

    def __init__(self, kind: str, help_text: str, labels: Sequence[str], buckets: Sequence[float]):
        self.kind, self.help, self.labels, self.buckets = kind, help_text, tuple(labels), tuple(buckets)
        self.series = {}   # type: Dict[tuple, object]  # label values -> number, or [bucket counts..., sum]


class MetricsRegistry:
    """Counters, gauges and histograms with labels, rendered in the Prometheus
    text exposition format 0.0.4.  Pure: no I/O; one lock makes each call
    atomic, and collectors (run under it by render) fill in values that are
    read rather than counted.  A wrong name or label set is a programming
    error (ValueError); label values are bounded (MAX_METRIC_SERIES)."""

    def __init__(self):
        self.lock = threading.RLock()
        self._metrics = {}   # type: Dict[str, _Metric]
        self._collectors = []

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self._declare(name, _Metric("counter", help_text, labels, ()))

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self._declare(name, _Metric("gauge", help_text, labels, ()))

    def histogram(self, name: str, help_text: str, buckets: Sequence[float], labels: Sequence[str] = ()) -> None:
        if list(buckets) != sorted(set(buckets)) or "le" in labels:
            raise ValueError("histogram %s: buckets must increase, and 'le' is reserved" % name)
        self._declare(name, _Metric("histogram", help_text, labels, [float(b) for b in buckets]))

    def _declare(self, name: str, metric: _Metric) -> None:
        if not _METRIC_NAME.match(name) or name in self._metrics:
            raise ValueError("bad or repeated metric name %r" % name)
        with self.lock:
            self._metrics[name] = metric
            if not metric.labels:
                self._slot(metric, ())

    def add_collector(self, collect) -> None:
        """collect(registry) runs under the lock before each render."""
        self._collectors.append(collect)

    def inc(self, name: str, amount: float = 1, **labels) -> None:
        """Add to a counter, or to a gauge (which may go down)."""
        with self.lock:
            metric = self._get(name, ("counter", "gauge"))
            if amount < 0 and metric.kind == "counter":
                raise ValueError("counter %s: cannot go down" % name)
            key = self._slot(metric, self._key(metric, labels))
            metric.series[key] += amount

    def set(self, name: str, value: float, **labels) -> None:
        """A gauge's value; or a counter's, from a collector that keeps its own monotonic total."""
        with self.lock:
            metric = self._get(name, ("counter", "gauge"))
            metric.series[self._slot(metric, self._key(metric, labels))] = value

    def observe(self, name: str, value: float, **labels) -> None:
        with self.lock:
            metric = self._get(name, ("histogram",))
            counts = metric.series[self._slot(metric, self._key(metric, labels))]
            for i, bound in enumerate(metric.buckets):
                if value <= bound:
                    counts[i] += 1
            counts[-2] += value   # the sum; the count is counts[-1]
            counts[-1] += 1

    def value(self, name: str, **labels):
        """A counter's or gauge's number, or a histogram's (count, sum); 0 if never set."""
        with self.lock:
            metric = self._get(name, ("counter", "gauge", "histogram"))
            found = metric.series.get(self._key(metric, labels))
        if metric.kind == "histogram":
            return (found[-1], found[-2]) if found else (0, 0.0)
        return found or 0

    def _get(self, name: str, kinds: Tuple[str, ...]) -> _Metric:
        metric = self._metrics.get(name)
        if metric is None or metric.kind not in kinds:
            raise ValueError("no %s named %r" % (" or ".join(kinds), name))
        return metric

    @staticmethod
    def _key(metric: _Metric, labels: Dict[str, object]) -> tuple:
        if set(labels) != set(metric.labels):
            raise ValueError("labels %s, expected %s" % (sorted(labels), list(metric.labels)))
        return tuple(str(labels[name]) for name in metric.labels)

    @staticmethod
    def _slot(metric: _Metric, key: tuple) -> tuple:
        """The key a series is kept under, made if new; the last free slot is "other"."""
        if key not in metric.series:
            if len(metric.series) >= MAX_METRIC_SERIES - 1:
                key = ("other",) * len(key)
            if key not in metric.series:
                metric.series[key] = [0] * len(metric.buckets) + [0.0, 0] if metric.kind == "histogram" else 0
        return key

    def render(self) -> str:
        with self.lock:
            for collect in self._collectors:
                collect(self)
            lines = []
            for name, metric in self._metrics.items():
                lines.append("# HELP %s %s" % (name, metric.help.replace("\\", "\\\\").replace("\n", "\\n")))
                lines.append("# TYPE %s %s" % (name, metric.kind))
                for key in sorted(metric.series):
                    lines.extend(_sample_lines(name, metric, key))
        return "\n".join(lines) + "\n"


def _sample_lines(name: str, metric: _Metric, key: tuple) -> List[str]:
    pairs = list(zip(metric.labels, key))
    value = metric.series[key]
    if metric.kind != "histogram":
        return [name + _label_text(pairs) + " " + _number_text(value)]
    lines = []
    for bound, count in zip(metric.buckets, value):
        lines.append("%s_bucket%s %d" % (name, _label_text(pairs + [("le", repr(bound))]), count))
    labels = _label_text(pairs)
    lines.append("%s_bucket%s %d" % (name, _label_text(pairs + [("le", "+Inf")]), value[-1]))
    lines.append("%s_sum%s %s" % (name, labels, _number_text(value[-2])))
    lines.append("%s_count%s %d" % (name, labels, value[-1]))
    return lines


def _label_text(pairs: Sequence[Tuple[str, str]]) -> str:
    """{a="x",b="y"}, with a label value's backslash, quote and newline escaped."""
    if not pairs:
        return ""
    escape = lambda text: text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")  # noqa: E731
    return "{" + ",".join('%s="%s"' % (name, escape(value)) for name, value in pairs) + "}"


def _number_text(value) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return "%d" % value
    return repr(float(value))


# What a failed upgrade's HTTP status says about why, as a fixed label (the
# status is ours; no text from a peer becomes a label).
FAILURE_REASONS = {400: "bad_request", 405: "bad_request", 408: "bad_request", 431: "bad_request",
                   426: "bad_version", 401: "auth", 403: "auth", 404: "unknown_token",
                   502: "target_unreachable", 503: "unavailable", 429: "limited"}


def failure_reason(status: int) -> str:
    return FAILURE_REASONS.get(status, "other")


def close_outcome(code: int) -> str:
    """A session's outcome label: its close code where RFC 6455 names it; a
    client's private code (3000-4999, its choice) is "ws_other"."""
    return "ws_%d" % code if code in CloseCode._value2member_map_ else "ws_other"


class ProxyMetrics:
    """What wsproxy counts, on a MetricsRegistry: the few calls the server
    makes, and render().  Pure but for ``process``, a callable that reads the
    process's own numbers (process_samples; tests pass a fake)."""

    def __init__(self, process=None):
        self.registry = r = MetricsRegistry()
        self.draining = False
        self._process = process
        self._live = set()      # RelayStats of open sessions: their bytes count as they flow
        self._done = [0, 0]     # bytes up, down of sessions that ended
        r.gauge("wsproxy_info", "wsproxy's version", ["version"])
        r.set("wsproxy_info", 1, version=__version__)
        r.gauge("wsproxy_connections_open", "Accepted connections not yet closed")
        r.gauge("wsproxy_websocket_sessions_open", "WebSocket sessions relaying to a target")
        r.counter("wsproxy_requests_total", "Requests by outcome: http_<status> when answered in HTTP, "
                  "ws_<close code> when an upgraded session ends", ["outcome"])
        r.counter("wsproxy_bytes_total", "Bytes relayed, payload only, open sessions included", ["direction"])
        r.counter("wsproxy_handshake_failures_total", "TLS or WebSocket handshakes refused, by reason", ["reason"])
        r.counter("wsproxy_token_lookups_total", "Token lookups by source and result", ["source", "result"])
        r.histogram("wsproxy_token_lookup_seconds", "Token lookup latency", TOKEN_LOOKUP_BUCKETS, ["source"])
        r.histogram("wsproxy_session_duration_seconds", "WebSocket session lengths", SESSION_BUCKETS)
        r.counter("wsproxy_reloads_total", "Reloads (SIGHUP) by what and result", ["what", "result"])
        r.gauge("wsproxy_draining", "1 while draining after SIGTERM (/healthz answers 503)")
        r.gauge("wsproxy_threads", "Python threads")
        r.gauge("process_resident_memory_bytes", "Resident memory size in bytes")
        r.gauge("process_open_fds", "Open file descriptors")
        r.gauge("process_start_time_seconds", "Start time of the process since the Unix epoch in seconds")
        for direction in ("client_to_target", "target_to_client"):
            r.set("wsproxy_bytes_total", 0, direction=direction)
        r.add_collector(self._collect)

    def connection(self, delta: int) -> None:
        """An accepted connection: +1 when its thread starts, -1 when it ends."""
        self.registry.inc("wsproxy_connections_open", delta)

    def replied(self, status: int, upgrade: bool) -> None:
        """One request answered in HTTP; an upgrade's refusal is a failed handshake too."""
        with self.registry.lock:
            self.registry.inc("wsproxy_requests_total", outcome="http_%d" % status)
            if upgrade:
                self.handshake_failed(failure_reason(status))

    def handshake_failed(self, reason: str) -> None:
        self.registry.inc("wsproxy_handshake_failures_total", reason=reason)

    def session_opened(self, stats: "RelayStats") -> None:
        with self.registry.lock:
            self._live.add(stats)
            self.registry.inc("wsproxy_websocket_sessions_open")

    def session_closed(self, stats: "RelayStats", seconds: float) -> None:
        r = self.registry
        with r.lock:
            self._live.discard(stats)
            self._done[0] += stats.bytes_up
            self._done[1] += stats.bytes_down
            r.inc("wsproxy_websocket_sessions_open", -1)
            r.inc("wsproxy_requests_total", outcome=close_outcome(stats.close_code))
            r.observe("wsproxy_session_duration_seconds", seconds)

    def token_lookup(self, source: str, result: str, seconds: float) -> None:
        with self.registry.lock:
            self.registry.inc("wsproxy_token_lookups_total", source=source, result=result)
            self.registry.observe("wsproxy_token_lookup_seconds", seconds, source=source)

    def reloaded(self, what: str, ok: bool) -> None:
        self.registry.inc("wsproxy_reloads_total", what=what, result="ok" if ok else "error")

    def _collect(self, r: MetricsRegistry) -> None:
        up, down = self._done
        for stats in self._live:   # ints the relay threads bump; a read is atomic
            up += stats.bytes_up
            down += stats.bytes_down
        r.set("wsproxy_bytes_total", up, direction="client_to_target")
        r.set("wsproxy_bytes_total", down, direction="target_to_client")
        r.set("wsproxy_draining", int(self.draining))
        for name, value in (self._process() if self._process else {}).items():
            r.set(name, value)

    def watch_recordings(self, store: "RecordingStore") -> None:
        """--record too: the store's own counters, read at each scrape (the
        writer thread bumps them; reading an int is atomic)."""
        r = self.registry
        r.counter("wsproxy_recordings_total", "Session recordings finished: complete, or stopped early "
                  "(a size cap, the disk, a slow disk)", ["result"])
        r.counter("wsproxy_recording_bytes_total", "Bytes written to session recordings")

        def collect(registry: MetricsRegistry) -> None:
            registry.set("wsproxy_recordings_total", store.completed, result="complete")
            registry.set("wsproxy_recordings_total", store.stopped_early, result="stopped")
            registry.set("wsproxy_recording_bytes_total", store.bytes_written)

        r.add_collector(collect)

    def render(self) -> str:
        return self.registry.render()


def process_samples() -> Dict[str, float]:
    """The process's own numbers, where this system shows them (Linux /proc)."""
    out = {"wsproxy_threads": threading.active_count()}
    try:
        with open("/proc/self/statm") as handle:
            out["process_resident_memory_bytes"] = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        try:
            import resource   # ru_maxrss: the peak, in KiB on Linux -- the best left
            out["process_resident_memory_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        except ImportError:
            pass
    try:
        out["process_open_fds"] = len(os.listdir("/proc/self/fd"))
    except OSError:
        pass
    out["process_start_time_seconds"] = _process_start_time()
    return out


_start_time = []   # type: List[float]


def _process_start_time() -> float:
    """When this process started (/proc/self/stat's start tick after boot),
    else when this was first asked; read once."""
    if not _start_time:
        started = time.time()
        try:
            with open("/proc/self/stat") as handle:
                ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
            with open("/proc/stat") as handle:
                boot = next(int(line.split()[1]) for line in handle if line.startswith("btime "))
            started = boot + ticks / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, StopIteration, AttributeError):
            pass
        _start_time.append(started)
    return _start_time[0]


class MeteredTokens:
    """A token source whose lookups are timed and counted (hit, miss,
    error); everything else goes to the source itself."""

    def __init__(self, tokens, metrics: ProxyMetrics):
        self._tokens = tokens
        self._metrics = metrics
        self._name = str(getattr(tokens, "name", "file"))

    def lookup(self, token: str):
        started = time.monotonic()
        result = "error"
        try:
            entry = self._tokens.lookup(token)
            result = "miss" if entry is None else "hit"
            return entry
        finally:
            self._metrics.token_lookup(self._name, result, time.monotonic() - started)

    def __getattr__(self, name: str):
        return getattr(self._tokens, name)


HEALTH_PATH = "/healthz"


def health_reply(head: RequestHead, draining: bool) -> bytes:
    """/healthz: 200 "ok" while serving; 503 while draining, so that a load
    balancer sends new sessions elsewhere."""
    body = b"draining\n" if draining else b"ok\n"
    return http_response(503 if draining else 200, [("Cache-Control", "no-store")], body,
                         head_only=head.method == "HEAD")


def metrics_reply(head: RequestHead, metrics: ProxyMetrics) -> bytes:
    """The metrics listener's answer to one request: /metrics, /healthz, or an error."""
    if head.method not in ("GET", "HEAD"):
        return error_response(HttpError(405, "only GET and HEAD are allowed", [("Allow", "GET, HEAD")]))
    if head.path == HEALTH_PATH:
        return health_reply(head, metrics.draining)
    if head.path != "/metrics":
        return error_response(HttpError(404, "not found: try /metrics or /healthz"), head_only=head.method == "HEAD")
    return http_response(200, [("Cache-Control", "no-store")], metrics.render().encode("utf-8"),
                         content_type=PROMETHEUS_CONTENT_TYPE, head_only=head.method == "HEAD")


class MetricsListener:
    """--metrics-listen: /metrics and /healthz on a socket and thread of
    their own, apart from the proxied traffic.  One request a connection,
    one connection at a time, each bounded in size and time."""

    def __init__(self, metrics: ProxyMetrics, host: str, port: int):
        self.metrics = metrics
        self.sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.address = host_port(host, self.sock.getsockname()[1])
        self._thread = threading.Thread(target=self._accept_loop, name="metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError as exc:
                if self.sock.fileno() < 0 or exc.errno in (errno.EBADF, errno.EINVAL):
                    return   # stopped
                time.sleep(ACCEPT_BACKOFF[0])
                continue
            with conn:
                try:
                    self._serve(conn)
                except OSError:
                    pass   # the scraper went away or stalled: nothing to tell it
                except Exception:  # noqa: BLE001 -- the thread boundary: log, keep serving
                    log.exception("metrics listener: internal error")

    def _serve(self, conn: socket.socket) -> None:
        """Read one bounded head (section 3 parses it), answer, close."""
        deadline = time.monotonic() + METRICS_TIMEOUT
        data = b""
        try:
            while find_head_end(data) < 0:
                conn.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = conn.recv(METRICS_HEAD_LIMIT)
                if not chunk:
                    return
                data += chunk
                if len(data) > METRICS_HEAD_LIMIT:
                    raise HttpError(431, "request head too large")
            reply = metrics_reply(parse_request_head(data[:find_head_end(data)]), self.metrics)
        except HttpError as exc:
            reply = error_response(exc)
        conn.settimeout(METRICS_TIMEOUT)
        conn.sendall(reply)


# ===========================================================================
# 12. Demo VNC target: pure desktop and RFB session, loopback-only server
# ===========================================================================
#
# ``--demo`` proves the whole browser path on a machine with no VNC server.
# The target is a small real RFB 3.8 server (3.3 and 3.7 clients too):
# security None, Raw and ZRLE, DesktopSize, ExtendedDesktopSize and Extended
# Clipboard (UTF-8 text).  Each connection gets its own desktop: a test
# pattern with the version and a clock; a held button paints, typed keys and
# clipboard text are shown, and clipboard text is echoed back.  DemoDesktop
# (pixels) and DemoSession (bytes in, bytes out) are pure; DemoTarget is the
# threaded server, bound to 127.0.0.1 only.
#
# No client message may cost much CPU: keys and clipboard text are drawn once
# an update, and only the cells they changed; SetDesktopSize is applied once
# an update and capped by area; a pointer event paints a bounded stroke.  The
# costliest message is a request for the whole screen, one encode of at most
# DEMO_MAX_PIXELS.

DEMO_SIZE = (640, 400)
# SetDesktopSize bounds.  Below 400x240 the layout breaks.  Above 1920x1200
# pixels (full HD with a browser's bars; 9 MiB of framebuffer) the answer is
# "out of resources": a resize and a full-screen update cost in proportion to
# the area, and a 10-byte request for the whole screen should stay cheap.  The
# area is capped, not each side, so portrait tablets and wide windows fit.
DEMO_MIN_SIZE, DEMO_MAX_PIXELS = (400, 240), 1920 * 1200
# Clipboard text is shown and echoed, never stored beyond that; a larger
# ClientCutText closes the connection.
DEMO_MAX_CUT_TEXT = 1024 * 1024
# An Extended Clipboard message holds that much text in a zlib stream, which
# may be stored uncompressed (web/ sends it so: 5 bytes more a 64 KiB block)
# or barely compressible; this leaves room for that and the headers.
DEMO_MAX_EXT_CUT = DEMO_MAX_CUT_TEXT + 64 * 1024
# SetEncodings lists about 20 entries in practice.
DEMO_MAX_ENCODINGS = 1024
# More dirty rectangles than this merge into their bounding box.
DEMO_MAX_DIRTY = 16
# Size-change answers waiting for a FramebufferUpdateRequest.  A client asks
# for updates as it goes, so more than this is a flood: the connection closes
# (and an update holds at most 65535 rectangles).
DEMO_MAX_PSEUDO = 100
# A held button joins two pointer positions at most this far apart with a
# line; a longer jump starts a new stroke, so one 6-byte PointerEvent paints a
# bounded area (a browser reports a drag about once a frame: tens of px apart when fast).
DEMO_MAX_STROKE = 64
# A client whose socket takes no bytes for this long is dropped.
DEMO_SEND_TIMEOUT = 30.0

RFB_RAW, RFB_ZRLE, RFB_DESKTOP_SIZE, RFB_EXTENDED_DESKTOP_SIZE = 0, 16, -223, -308
# Extended Clipboard (rfbproto "Extended Clipboard Pseudo-Encoding"): clipboard
# text in UTF-8, where plain ClientCutText and ServerCutText carry Latin-1.
RFB_EXTENDED_CLIPBOARD = -0x3F5E1A32   # 0xC0A1E5CE as SetEncodings' S32
# Its flags: format bits (0-15; text is bit 0, so its data comes first) and
# one action (24-31), or caps with every action the sender takes.
RFB_CLIP_TEXT, RFB_CLIP_FORMATS, RFB_CLIP_ACTIONS = 1 << 0, 0xFFFF, 0xFF000000
RFB_CLIP_CAPS, RFB_CLIP_REQUEST, RFB_CLIP_PEEK, RFB_CLIP_NOTIFY, RFB_CLIP_PROVIDE = (
    1 << 24, 1 << 25, 1 << 26, 1 << 27, 1 << 28)
# What a client takes until it sends caps (rfbproto): text, rtf and html;
# request, notify and provide; up to 20 MiB of text unasked.
RFB_CLIP_CLIENT_DEFAULT = (0b111 | RFB_CLIP_REQUEST | RFB_CLIP_NOTIFY | RFB_CLIP_PROVIDE, 20 * 1024 * 1024)
# parse_client_message's type for a ClientCutText in the Extended Clipboard
# form (its length is negative).
RFB_CLIENT_EXT_CUT = -6
# ExtendedDesktopSize status codes (rfbproto, SetDesktopSize).
RFB_EDS_OK, RFB_EDS_OUT_OF_RESOURCES, RFB_EDS_INVALID_LAYOUT = 0, 2, 3
# The server's pixel format (ServerInit): 32 bpp, depth 24, little-endian, true
# colour, shifts 0/8/16, so a pixel is the bytes R, G, B, 0 -- as we store it.
RFB_NATIVE_FORMAT = (32, 24, 0, 1, 255, 255, 255, 0, 8, 16)
_PIXEL_FORMAT = struct.Struct(">BBBBHHHBBB3x")

# 5x7 font for " ".."~": five column bytes a glyph, bit 0 the top row.
_FONT = bytes.fromhex(
    "000000000000005f00000007000700147f147f14242a7f2a12231308646236495522500005030000"
    "001c2241000041221c0014083e081408083e08080050300000080808080800606000002010080402"
    "3e5149453e00427f400042615149462141454b311814127f1027454545393c4a4949300171090503"
    "3649494936064949291e003636000000563600000814224100141414141400412214080201510906"
    "324979413e7e1111117e7f494949363e414141227f4141221c7f494949417f090909013e4149497a"
    "7f0808087f00417f41002040413f017f081422417f404040407f020c027f7f0408107f3e4141413e"
    "7f090909063e4151215e7f09192946464949493101017f01013f4040403f1f2040201f3f4038403f"
    "631408146307087008076151494543007f41410002040810200041417f0004020102044040404040"
    "000102040020545454787f484444383844444420384444487f3854545418087e0901020c5252523e"
    "7f0804047800447d40002040443d007f1028440000417f40007c041804787c080404783844444438"
    "7c14141408081414187c7c080404084854545420043f4440203c4040207c1c2040201c3c4030403c"
    "44281028440c5050503c4464544c44000836410000007f000000413608000804081008")
DEMO_CELL = (12, 18)  # glyphs drawn at scale 2, one column and two rows apart

DEMO_COLOURS = {
    "bars": [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0),
             (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0)],
    "header": (32, 40, 56), "title": (255, 255, 255), "clock": (255, 220, 96),
    "panel": (16, 16, 24), "border": (128, 128, 144), "hint": (144, 144, 160),
    "text": (255, 255, 255), "clip": (96, 224, 255),
    1: (255, 128, 0), 2: (0, 200, 0), 4: (255, 64, 160),  # paint, by button
}


class RfbError(Exception):
    """The RFB client broke the protocol or asked for what the demo lacks: close."""


def _glyph_index(ch: str) -> int:
    if not " " <= ch <= "~":  # Latin-1 letters drop their accents, others are "?"
        import unicodedata  # only for non-ASCII keys
        ch = unicodedata.normalize("NFKD", ch)[:1]
        if not " " <= ch <= "~":
            ch = "?"
    return ord(ch) - 32


# (glyph index, foreground, background) -> the rows of pixel bytes of one
# DEMO_CELL.  Bounded: 95 glyphs times the few colour pairs the demo draws with.
_CELLS = {}


def _cell(index: int, fg, bg) -> Tuple[bytes, ...]:
    rows = _CELLS.get((index, fg, bg))
    if rows is None:
        on, off = bytes((fg[0], fg[1], fg[2], 0)), bytes((bg[0], bg[1], bg[2], 0))
        columns = _FONT[index * 5:index * 5 + 5]
        rows = tuple(b"".join(on if x < 10 and y < 14 and columns[x // 2] >> (y // 2) & 1 else off
                              for x in range(DEMO_CELL[0])) for y in range(DEMO_CELL[1]))
        _CELLS[(index, fg, bg)] = rows
    return rows


def _changed_columns(old, new) -> Optional[Tuple[int, int]]:
    """The columns ``[first, end)`` where two text rows ``(text, colour)`` of one
    width look different, or None.  A space looks the same in any colour."""
    if old == new:
        return None
    (old_text, old_colour), (new_text, new_colour) = old, new
    recolour = old_colour != new_colour
    changed = [i for i, (a, b) in enumerate(zip(old_text, new_text)) if a != b or recolour and b != " "]
    return (changed[0], changed[-1] + 1) if changed else None


def _intersect(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0) if x0 < x1 and y0 < y1 else None


class DemoDesktop:
    """The demo framebuffer (R, G, B, 0 per pixel) and what changed since it was last sent.

    key() and cut_text() only record the text; draw_text() draws the cells it
    changed, so any number of keys between two updates cost one redraw.
    """

    def __init__(self, width: int = DEMO_SIZE[0], height: int = DEMO_SIZE[1], clock: str = ""):
        self.typed = ""
        self.clipboard = ""
        self.clock = clock
        self._last = None  # pointer position while a button is held
        self.resize(width, height)

    def resize(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(width * height * 4)
        cw, ch = DEMO_CELL
        bars = (height - 28) * 2 // 5
        self.clock_box = (width - 8 - 8 * cw, 0, 8 * cw, 28)
        self.bars_box = (0, 28, width, bars)
        self.ramps_box = (0, 28 + bars, width, 40)
        top = 28 + bars + 48
        self.text_box = (8, top, width - 16, height - top - 8)
        self.columns = (width - 32) // cw
        self.rows = max(3, (height - top - 16) // ch)  # hint, typed lines..., clipboard
        self.dirty = []
        self.render()

    def render(self) -> None:
        w = self.width
        self.fill((0, 0, w, 28), DEMO_COLOURS["header"])
        self.text(8, 7, "wsproxy %s demo" % __version__, DEMO_COLOURS["title"], DEMO_COLOURS["header"])
        self._draw_clock()
        x, y, _, h = self.bars_box
        for i, colour in enumerate(DEMO_COLOURS["bars"]):
            self.fill((i * w // 8, y, (i + 1) * w // 8 - i * w // 8, h), colour)
        y = self.ramps_box[1]
        for i, mask in enumerate(((1, 1, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1))):
            row = b"".join(bytes((m * v for m in mask)) + b"\0"
                           for v in (x * 255 // max(1, w - 1) for x in range(w)))
            for yy in range(y + 10 * i, y + 10 * i + 10):
                self.pixels[yy * w * 4:(yy + 1) * w * 4] = row
        self.fill((0, y + 40, w, self.height - y - 40), (48, 48, 64))
        x, y, w, h = self.text_box
        self.fill((x, y, w, h), DEMO_COLOURS["border"])
        self.fill((x + 1, y + 1, w - 2, h - 2), DEMO_COLOURS["panel"])
        self._shown = [(" " * self.columns, None)] * self.rows   # the rows as drawn: blank
        self._text_changed = True
        self.draw_text()
        self.dirty = [(0, 0, self.width, self.height)]

    def mark(self, box) -> None:
        box = _intersect(box, (0, 0, self.width, self.height))
        if box is None or any(_intersect(box, old) == box for old in self.dirty):
            return   # off-screen, or already inside a dirty rectangle
        self.dirty.append(box)
        if len(self.dirty) > DEMO_MAX_DIRTY:
            x0, y0 = min(b[0] for b in self.dirty), min(b[1] for b in self.dirty)
            x1, y1 = max(b[0] + b[2] for b in self.dirty), max(b[1] + b[3] for b in self.dirty)
            self.dirty = [(x0, y0, x1 - x0, y1 - y0)]

    def fill(self, box, rgb) -> None:
        box = _intersect(box, (0, 0, self.width, self.height))
        if box is None:
            return
        x, y, w, h = box
        row, stride = bytes((rgb[0], rgb[1], rgb[2], 0)) * w, self.width * 4
        for yy in range(y, y + h):
            self.pixels[yy * stride + x * 4:yy * stride + (x + w) * 4] = row

    def text(self, x: int, y: int, text: str, fg, bg) -> None:
        """Draws whole cells (glyph and background) from (x, y); cells that do not fit are left out."""
        cw, ch = DEMO_CELL
        count = min(len(text), (self.width - x) // cw)
        if count <= 0 or x < 0 or y < 0:
            return
        cells = [_cell(_glyph_index(c), fg, bg) for c in text[:count]]
        stride, start = self.width * 4, y * self.width * 4 + x * 4
        for row in range(min(ch, self.height - y)):
            self.pixels[start + row * stride:start + row * stride + count * cw * 4] = b"".join(
                cell[row] for cell in cells)

    def _draw_clock(self) -> None:
        self.fill(self.clock_box, DEMO_COLOURS["header"])
        self.text(self.clock_box[0], 7, self.clock[:8], DEMO_COLOURS["clock"], DEMO_COLOURS["header"])

    def _text_rows(self) -> List[Tuple[str, Optional[Tuple[int, int, int]]]]:
        """What the text box shows: the hint, the last typed lines, the clipboard's first line."""
        cols = self.columns
        lines = []
        for part in (self.typed + "_").split("\n"):
            lines.extend([part[i:i + cols] for i in range(0, len(part), cols)] or [""])
        clip = (self.clipboard[:cols].splitlines() or [""])[0]   # no work in proportion to the text
        rows = ([("Type here; hold a button to paint.", DEMO_COLOURS["hint"])]
                + [(line, DEMO_COLOURS["text"]) for line in lines[-(self.rows - 2):]])
        rows += [("", None)] * (self.rows - 1 - len(rows)) + [("clipboard: " + clip, DEMO_COLOURS["clip"])]
        return [(line[:cols].ljust(cols), colour) for line, colour in rows]

    def draw_text(self) -> None:
        """Draws the cells of the text box that changed since the last call, and marks them."""
        if not self._text_changed:
            return
        self._text_changed = False
        rows = self._text_rows()
        x, y = self.text_box[0] + 8, self.text_box[1] + 6
        cw, ch = DEMO_CELL
        for i, (old, new) in enumerate(zip(self._shown, rows)):
            span = _changed_columns(old, new)
            if span is not None:
                first, end = span
                self.text(x + first * cw, y + i * ch, new[0][first:end], new[1] or DEMO_COLOURS["text"],
                          DEMO_COLOURS["panel"])
                self.mark((x + first * cw, y + i * ch, (end - first) * cw, ch))
        self._shown = rows

    def set_clock(self, clock: str) -> None:
        if clock != self.clock:
            self.clock = clock
            self._draw_clock()
            self.mark(self.clock_box)

    def pointer(self, x: int, y: int, buttons: int) -> None:
        """A held button paints a stroke from the last position (button 1, 2 or 3: its colour)."""
        held = [b for b in (1, 2, 4) if buttons & b]
        if not held:
            self._last = None
            return
        x0, y0 = self._last or (x, y)
        if max(abs(x - x0), abs(y - y0)) > DEMO_MAX_STROKE:
            x0, y0 = x, y   # too far to join: a new stroke
        # 6x6 dabs at most 3 px apart along the line overlap into one stroke.
        steps = max(abs(x - x0), abs(y - y0)) // 3 + 1
        for i in range(steps + 1):
            px, py = x0 + (x - x0) * i // steps, y0 + (y - y0) * i // steps
            self.fill((px - 3, py - 3, 6, 6), DEMO_COLOURS[held[0]])
        self.mark((min(x, x0) - 3, min(y, y0) - 3, abs(x - x0) + 6, abs(y - y0) + 6))
        self._last = (x, y)

    def key(self, keysym: int, down: bool) -> None:
        """Printable Latin-1 (and Unicode keysyms) type; BackSpace and Return edit."""
        if not down:
            return
        if keysym == 0xFF08:
            self.typed = self.typed[:-1]
        elif keysym in (0xFF0D, 0xFF8D):
            self.typed += "\n"
        elif 0x20 <= keysym <= 0x7E or 0xA0 <= keysym <= 0xFF:
            self.typed += chr(keysym)
        elif 0x01000020 <= keysym <= 0x0110FFFF:
            self.typed += chr(keysym - 0x01000000)
        else:
            return
        self.typed = self.typed[-4096:]
        self._text_changed = True

    def cut_text(self, text: str) -> None:
        self.clipboard = text
        self._text_changed = True


def parse_client_message(data: bytes):
    """One RFB client-to-server message from the start of ``data``.

    Returns ``(type, fields, length)``, or None until the message is complete;
    a ClientCutText in the Extended Clipboard form is type RFB_CLIENT_EXT_CUT.
    Raises RfbError for a type the demo did not offer or a length over a limit.
    """
    if not data:
        return None
    kind, size = data[0], len(data)
    if kind == 0:    # SetPixelFormat
        return (0, _PIXEL_FORMAT.unpack_from(data, 4), 20) if size >= 20 else None
    if kind == 2:    # SetEncodings
        if size < 4:
            return None
        count = struct.unpack_from(">H", data, 2)[0]
        if count > DEMO_MAX_ENCODINGS:
            raise RfbError("SetEncodings lists %d encodings (limit %d)" % (count, DEMO_MAX_ENCODINGS))
        return (2, struct.unpack_from(">%di" % count, data, 4), 4 + 4 * count) if size >= 4 + 4 * count else None
    if kind == 3:    # FramebufferUpdateRequest: incremental, x, y, w, h
        return (3, struct.unpack_from(">BHHHH", data, 1), 10) if size >= 10 else None
    if kind == 4:    # KeyEvent: down, keysym
        return (4, struct.unpack_from(">B2xI", data, 1), 8) if size >= 8 else None
    if kind == 5:    # PointerEvent: buttons, x, y
        return (5, struct.unpack_from(">BHH", data, 1), 6) if size >= 6 else None
    if kind == 6:    # ClientCutText: Latin-1 text, or Extended Clipboard
        if size < 8:
            return None
        length = struct.unpack_from(">i", data, 4)[0]
        if length < 0:
            return _parse_extended_cut(data, -length)
        if length > DEMO_MAX_CUT_TEXT:
            raise RfbError("ClientCutText of %d bytes (limit %d)" % (length, DEMO_MAX_CUT_TEXT))
        return (6, (bytes(data[8:8 + length]).decode("latin-1"),), 8 + length) if size >= 8 + length else None
    if kind == 251:  # SetDesktopSize: width, height, screens (only the count is used)
        if size < 8:
            return None
        width, height, screens = struct.unpack_from(">xHHB", data, 1)
        return (251, (width, height, screens), 8 + 16 * screens) if size >= 8 + 16 * screens else None
    raise RfbError("client message type %d is not supported by the demo" % kind)


def _parse_extended_cut(data: bytes, length: int):
    """An Extended Clipboard ClientCutText: ``(RFB_CLIENT_EXT_CUT, (flags,
    payload), size)``, or None until it is complete."""
    if length < 4:
        raise RfbError("Extended Clipboard message of %d bytes has no flags" % length)
    if length > DEMO_MAX_EXT_CUT:
        raise RfbError("Extended Clipboard message of %d bytes (limit %d)" % (length, DEMO_MAX_EXT_CUT))
    if len(data) < 8 + length:
        return None
    return RFB_CLIENT_EXT_CUT, (struct.unpack_from(">I", data, 8)[0], bytes(data[12:8 + length])), 8 + length


def clipboard_caps(flags: int, payload: bytes) -> Tuple[int, int]:
    """A peer's Extended Clipboard caps: (the flags it takes, the most text
    it takes unasked).  The sizes follow in format-bit order, text first."""
    formats = bin(flags & RFB_CLIP_FORMATS).count("1")
    if len(payload) < 4 * formats:
        raise RfbError("Extended Clipboard caps name %d formats but carry %d bytes of sizes"
                       % (formats, len(payload)))
    return flags, struct.unpack_from(">I", payload)[0] if flags & RFB_CLIP_TEXT else 0


def clipboard_text(flags: int, payload: bytes) -> Optional[str]:
    """The text of an Extended Clipboard provide, or None when it has none.

    Inflating stops at the text limit, so a small zlib bomb costs no more
    than a large honest text.  The text is NUL-terminated with CRLF lines.
    """
    if not flags & RFB_CLIP_TEXT:
        return None
    try:
        data = zlib.decompressobj().decompress(payload, 4 + DEMO_MAX_CUT_TEXT)
    except zlib.error as exc:
        raise RfbError("Extended Clipboard data is not a zlib stream: %s" % exc) from None
    size = struct.unpack_from(">I", data)[0] if len(data) >= 4 else -1
    if size > DEMO_MAX_CUT_TEXT:
        raise RfbError("Extended Clipboard text of %d bytes (limit %d)" % (size, DEMO_MAX_CUT_TEXT))
    if not 0 <= size <= len(data) - 4:
        raise RfbError("Extended Clipboard text is cut short")
    return data[4:4 + size].split(b"\0", 1)[0].decode("utf-8", "replace").replace("\r\n", "\n")


def clipboard_message(flags: int, payload: bytes = b"") -> bytes:
    """A ServerCutText in the Extended Clipboard form (a negative length)."""
    return struct.pack(">B3xiI", 3, -(4 + len(payload)), flags) + payload


def clipboard_text_bytes(text: str) -> bytes:
    """Text as an Extended Clipboard carries it: UTF-8, CRLF lines, a NUL."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8") + b"\0"


def _pixel_tables(size: int, order: str, maxes, shifts) -> List[List[Tuple[int, bytes]]]:
    """For each byte of a pixel in a client's format, ``(channel, table)`` pairs:
    bytes.translate tables from a channel's 8-bit value to its bits in that byte.
    They convert a whole rectangle at C speed; a channel with no bits there is left out."""
    out = []
    for k in range(size):
        tables = []
        for channel, (m, shift) in enumerate(zip(maxes, shifts)):
            table = bytes(((v * m + 127) // 255 << shift).to_bytes(size, order)[k] for v in range(256))
            if any(table):
                tables.append((channel, table))
        out.append(tables)
    return out


def desktop_size_status(width: int, height: int, screens: int) -> int:
    """The ExtendedDesktopSize status for a SetDesktopSize request."""
    if screens < 1 or width < DEMO_MIN_SIZE[0] or height < DEMO_MIN_SIZE[1]:
        return RFB_EDS_INVALID_LAYOUT
    if width * height > DEMO_MAX_PIXELS:
        return RFB_EDS_OUT_OF_RESOURCES
    return RFB_EDS_OK


class DemoSession:
    """One RFB server connection without I/O: feed receive() and tick(), send data_to_send()."""

    def __init__(self, clock: str = "", name: str = "wsproxy demo"):
        self.desktop = DemoDesktop(clock=clock)
        self.name = name
        self.state = "version"
        self.version = (3, 8)
        self.encoding = RFB_RAW
        self._in = bytearray()
        self._out = bytearray(b"RFB 003.008\n")
        self._size_modes = set()   # pseudo-encodings the client takes for size changes
        self._pseudo = []          # pseudo rectangles (size changes) for the next update
        self._request = None       # the region of a FramebufferUpdateRequest not yet answered
        self._new_size = None      # an accepted SetDesktopSize, applied when the update goes out
        self._zlib = None
        self._clip_caps = None     # (flags, text size) the client takes, once it asks for Extended Clipboard
        self.set_pixel_format(RFB_NATIVE_FORMAT)

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def tick(self, clock: str) -> None:
        self.desktop.set_clock(clock)
        self._answer()

    def receive(self, data: bytes) -> None:
        self._in += data
        while self._in:
            used = getattr(self, "_on_" + self.state)(self._in)
            if not used:
                break
            del self._in[:used]
        self._answer()

    def _on_version(self, data) -> int:
        if len(data) < 12:
            return 0
        match = re.match(rb"RFB (\d{3})\.(\d{3})\n", bytes(data[:12]))
        if match is None:
            raise RfbError("the client did not send an RFB version")
        major, minor = int(match.group(1)), int(match.group(2))
        # Unknown 3.x versions count as 3.3 (RFC 6143 7.1.1); later ones as 3.8.
        self.version = (3, 8) if (major, minor) >= (3, 8) else (3, 7) if minor == 7 else (3, 3)
        if self.version == (3, 3):
            self._out += struct.pack(">I", 1)   # the server decides: None
            self.state = "init"
        else:
            self._out += b"\x01\x01"            # one type offered: None
            self.state = "security"
        return 12

    def _on_security(self, data) -> int:
        if data[0] != 1:
            if self.version == (3, 8):
                reason = b"only security type None (1) is offered"
                self._out += struct.pack(">II", 1, len(reason)) + reason
            raise RfbError("the client chose security type %d; only None is offered" % data[0])
        if self.version == (3, 8):
            self._out += struct.pack(">I", 0)   # SecurityResult OK (3.8 only)
        self.state = "init"
        return 1

    def _on_init(self, data) -> int:
        name = self.name.encode()
        self._out += (struct.pack(">HH", self.desktop.width, self.desktop.height)
                      + _PIXEL_FORMAT.pack(*RFB_NATIVE_FORMAT) + struct.pack(">I", len(name)) + name)
        self.state = "normal"
        return 1   # the shared flag: every connection has its own desktop anyway

    def _on_normal(self, data) -> int:
        message = parse_client_message(data)
        if message is None:
            return 0
        kind, fields, length = message
        desktop = self.desktop
        if kind == 0:
            self.set_pixel_format(fields)
        elif kind == 2:
            self._set_encodings(fields)
        elif kind == 3:
            incremental, x, y, w, h = fields
            self._request = _intersect((x, y, w, h), (0, 0) + self._size())
            if not incremental and self._request:
                desktop.mark(self._request)
        elif kind == 4:
            desktop.key(fields[1], bool(fields[0]))
        elif kind == 5:
            desktop.pointer(fields[1], fields[2], fields[0])
        elif kind == 6:
            desktop.cut_text(fields[0])
            self._echo_clipboard()
        elif kind == RFB_CLIENT_EXT_CUT:
            self._on_extended_clipboard(*fields)
        elif kind == 251:
            self._set_desktop_size(*fields)
        return length

    def _set_encodings(self, fields) -> None:
        self.encoding = next((e for e in fields if e in (RFB_RAW, RFB_ZRLE)), RFB_RAW)
        if RFB_EXTENDED_DESKTOP_SIZE in fields and RFB_EXTENDED_DESKTOP_SIZE not in self._size_modes:
            self._queue_size_rect(RFB_EXTENDED_DESKTOP_SIZE, 0, 0)  # announce support
        self._size_modes = {e for e in fields if e in (RFB_DESKTOP_SIZE, RFB_EXTENDED_DESKTOP_SIZE)}
        if RFB_EXTENDED_CLIPBOARD not in fields:
            self._clip_caps = None
            return
        if self._clip_caps is None:
            self._clip_caps = RFB_CLIP_CLIENT_DEFAULT
        # Caps answer every SetEncodings that names it (rfbproto): text, every
        # action, and as much text unasked as a ClientCutText may carry.
        self._out += clipboard_message(
            RFB_CLIP_CAPS | RFB_CLIP_TEXT | RFB_CLIP_REQUEST | RFB_CLIP_PEEK | RFB_CLIP_NOTIFY | RFB_CLIP_PROVIDE,
            struct.pack(">I", DEMO_MAX_CUT_TEXT))

    def _on_extended_clipboard(self, flags: int, payload: bytes) -> None:
        if self._clip_caps is None:
            raise RfbError("Extended Clipboard message, but the client did not ask for Extended Clipboard")
        action = flags & RFB_CLIP_ACTIONS
        if flags & RFB_CLIP_CAPS:
            self._clip_caps = clipboard_caps(flags, payload)
        elif action == RFB_CLIP_REQUEST and flags & RFB_CLIP_TEXT:
            self._provide_clipboard()
        elif action == RFB_CLIP_PEEK:
            self._out += clipboard_message(RFB_CLIP_NOTIFY | (RFB_CLIP_TEXT if self.desktop.clipboard else 0))
        elif action == RFB_CLIP_NOTIFY and flags & RFB_CLIP_TEXT and self._clip_caps[0] & RFB_CLIP_REQUEST:
            self._out += clipboard_message(RFB_CLIP_REQUEST | RFB_CLIP_TEXT)   # the client has text: ask for it
        elif action == RFB_CLIP_PROVIDE:
            text = clipboard_text(flags, payload)
            if text is not None:
                self.desktop.cut_text(text)
                self._echo_clipboard()
        # Other actions and formats: nothing to answer.

    def _echo_clipboard(self) -> None:
        """Send the clipboard back: UTF-8 once the client takes Extended
        Clipboard text (pushed if small enough, else announced), Latin-1 else."""
        text = self.desktop.clipboard
        if self._clip_caps is None:
            data = text.encode("latin-1", "replace")
            self._out += struct.pack(">B3xI", 3, len(data)) + data   # ServerCutText
            return
        takes, most = self._clip_caps
        if not takes & RFB_CLIP_TEXT:
            return
        if takes & RFB_CLIP_PROVIDE and len(clipboard_text_bytes(text)) <= most:
            self._provide_clipboard()
        elif takes & RFB_CLIP_NOTIFY:
            self._out += clipboard_message(RFB_CLIP_NOTIFY | RFB_CLIP_TEXT)

    def _provide_clipboard(self) -> None:
        data = clipboard_text_bytes(self.desktop.clipboard)
        # Level 1: the text came from this client, so a flood of pastes should cost little CPU.
        self._out += clipboard_message(RFB_CLIP_PROVIDE | RFB_CLIP_TEXT,
                                       zlib.compress(struct.pack(">I", len(data)) + data, 1))

    def set_pixel_format(self, fields) -> None:
        bpp, depth, big, true_colour, rmax, gmax, bmax, rshift, gshift, bshift = fields
        maxes, shifts = (rmax, gmax, bmax), (rshift, gshift, bshift)
        if (bpp not in (8, 16, 32) or not true_colour or 0 in maxes
                or any(m << s >= 1 << bpp for m, s in zip(maxes, shifts))):
            raise RfbError("pixel format %d bpp, true colour %d is not supported" % (bpp, true_colour))
        self._format = fields
        self._native = bpp == 32 and maxes == (255, 255, 255) and shifts == ((24, 16, 8) if big else (0, 8, 16))
        self._tables = _pixel_tables(bpp // 8, "big" if big else "little", maxes, shifts)
        # ZRLE sends 3-byte CPIXELs when a 32 bpp pixel's colour fits in 3 bytes:
        # drop the unused byte (its index depends on the byte order).
        self._cpixel_drop = None
        if bpp == 32 and depth <= 24:
            if all(m << s < 1 << 24 for m, s in zip(maxes, shifts)):
                self._cpixel_drop = 0 if big else 3
            elif min(shifts) >= 8:
                self._cpixel_drop = 3 if big else 0

    def _set_desktop_size(self, width: int, height: int, screens: int) -> None:
        status = desktop_size_status(width, height, screens)
        if status == RFB_EDS_OK and self._size_modes:   # never resize a client that cannot be told
            self._new_size = (width, height)   # one resize for any number of these
        if RFB_EXTENDED_DESKTOP_SIZE in self._size_modes:
            self._queue_size_rect(RFB_EXTENDED_DESKTOP_SIZE, 1, status)
        elif status == RFB_EDS_OK and RFB_DESKTOP_SIZE in self._size_modes:
            self._queue_size_rect(RFB_DESKTOP_SIZE, 0, 0)

    def _size(self) -> Tuple[int, int]:
        """The desktop size as the client will know it: after any accepted SetDesktopSize."""
        return self._new_size or (self.desktop.width, self.desktop.height)

    def _queue_size_rect(self, encoding: int, reason: int, status: int) -> None:
        """Queues a DesktopSize or ExtendedDesktopSize rectangle with the size the client will have."""
        if len(self._pseudo) >= DEMO_MAX_PSEUDO:
            raise RfbError("%d size changes wait for a FramebufferUpdateRequest" % len(self._pseudo))
        w, h = self._size()
        head = struct.pack(">HHHHi", reason, status, w, h, encoding)
        if encoding == RFB_EXTENDED_DESKTOP_SIZE:
            head += struct.pack(">B3xIHHHHI", 1, 0, 0, 0, w, h, 0)   # one screen, id 0
        self._pseudo.append(head)

    def _answer(self) -> None:
        """Answer a pending FramebufferUpdateRequest once something in its region changed."""
        if self.state != "normal" or self._request is None:
            return
        if self._new_size is not None:
            if self._new_size != (self.desktop.width, self.desktop.height):
                self.desktop.resize(*self._new_size)
            self._new_size = None
        self.desktop.draw_text()
        # With a size change the client's region is stale: send the whole new screen.
        region = (0, 0, self.desktop.width, self.desktop.height) if self._pseudo else self._request
        send, keep = [], []
        for box in self.desktop.dirty:
            part = _intersect(box, region)
            if part:
                send.append(part)
            if part != box:
                keep.append(box)
        if not send and not self._pseudo:
            return
        rects = self._pseudo + [self._encode(box) for box in send]
        self.desktop.dirty, self._pseudo, self._request = keep, [], None
        self._out += struct.pack(">BxH", 0, len(rects)) + b"".join(rects)

    def _pixels(self, x: int, y: int, w: int, h: int) -> bytes:
        stride, px = self.desktop.width * 4, self.desktop.pixels
        raw = b"".join(px[row * stride + x * 4:row * stride + (x + w) * 4] for row in range(y, y + h))
        if self._native:
            return raw
        count, size = w * h, len(self._tables)
        channels = (raw[0::4], raw[1::4], raw[2::4])
        out = bytearray(count * size)
        for k, tables in enumerate(self._tables):
            # Byte k of each pixel: the OR of what each channel puts there, OR-ed
            # as one big integer a channel (fields may share a byte).
            value = 0
            for channel, table in tables:
                value |= int.from_bytes(channels[channel].translate(table), "big")
            out[k::size] = value.to_bytes(count, "big")
        return bytes(out)

    def _encode(self, box) -> bytes:
        x, y, w, h = box
        head = struct.pack(">HHHHi", x, y, w, h, self.encoding)
        if self.encoding == RFB_RAW:
            return head + self._pixels(x, y, w, h)
        tiles = []   # ZRLE: 64x64 tiles, each solid (1) or raw (0); zlib does the rest
        for ty in range(y, y + h, 64):
            for tx in range(x, x + w, 64):
                tw, th = min(64, x + w - tx), min(64, y + h - ty)
                pixels = self._pixels(tx, ty, tw, th)
                if self._cpixel_drop is not None:
                    cpixels = bytearray(len(pixels) // 4 * 3)
                    for j, i in enumerate(i for i in range(4) if i != self._cpixel_drop):
                        cpixels[j::3] = pixels[i::4]
                    pixels = bytes(cpixels)
                one = len(pixels) // (tw * th)
                solid = pixels == pixels[:one] * (tw * th)
                tiles.append(b"\x01" + pixels[:one] if solid else b"\x00" + pixels)
        if self._zlib is None:
            self._zlib = zlib.compressobj()   # one stream for the connection (RFC 6143 7.7.6)
        data = self._zlib.compress(b"".join(tiles)) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
        return head + struct.pack(">I", len(data)) + data


def _demo_clock() -> str:
    return time.strftime("%H:%M:%S")


class DemoTarget:
    """The demo's listening socket, 127.0.0.1 only on an ephemeral port; a thread a connection."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))   # loopback only: the proxy is the one way in
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self._count = 0

    def start(self) -> None:
        threading.Thread(target=self._accept_loop, name="demo-accept", daemon=True).start()

    def stop(self) -> None:
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes accept() on Linux
        except OSError:
            pass
        self.sock.close()

    def _accept_loop(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                if self.stopping:
                    return
                time.sleep(ACCEPT_BACKOFF[0])   # e.g. out of descriptors
                continue
            self._count += 1
            threading.Thread(target=self._serve, args=(conn, self._count),
                             name="demo-%d" % self._count, daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        session = DemoSession(clock=_demo_clock())
        reason = "closed by the client"
        try:
            while not self.stopping:
                out = session.data_to_send()
                if out:
                    conn.settimeout(DEMO_SEND_TIMEOUT)
                    conn.sendall(out)
                conn.settimeout(1.0 - time.time() % 1.0 + 0.005)   # wake when the clock changes
                try:
                    data = conn.recv(RELAY_CHUNK)
                except socket.timeout:
                    session.tick(_demo_clock())
                    continue
                if not data:
                    break
                session.receive(data)
        except RfbError as exc:
            reason = str(exc)
            try:
                conn.settimeout(1.0)
                conn.sendall(session.data_to_send())
            except OSError:
                pass
        except OSError as exc:
            reason = exc.strerror or str(exc)
        finally:
            conn.close()
            log.debug("demo %d: %s", number, reason)


# ===========================================================================
# 13. Command line: parse_args(argv) -> Config, main(argv) -> int
# ===========================================================================

# Where --syslog without a SERVER sends the log: the local syslog daemon.
SYSLOG_LOCAL = "/dev/log"
# What to do when the program after "--" exits (websockify's --wrap-mode).
WRAP_MODES = ("exit", "ignore", "respawn")
# A respawned program that dies again waits longer each time, from the first
# to the second number of seconds, so a program that cannot start does not
# spin the CPU or flood the log; one that ran this long starts over quickly.
WRAP_RESPAWN_DELAY = (1.0, 30.0)
WRAP_RESPAWN_STABLE = 10.0
# A wrapped program gets this long to exit after SIGTERM before SIGKILL.
WRAP_STOP_GRACE = 5.0
# websockify's --unix-listen-mode default: only the proxy's user may connect.
DEFAULT_UNIX_LISTEN_MODE = 0o600

USAGE = "wsproxy.py [options] [source_addr:]source_port [target_host:target_port] [-- PROGRAM ARGS]"

EPILOG = """\
examples:
  wsproxy.py 6080 localhost:5901
  wsproxy.py --listen 6080 --vnc localhost:5901
  wsproxy.py --token-plugin TokenFile --token-source tokens.conf 6080
  wsproxy.py --cert server.pem --key key.pem --ssl-only 443 localhost:5901

  wsproxy.py 6080 localhost:5901 -- Xvnc :1      (run Xvnc beside the proxy)

Then open http://HOST:6080/vnc.html (or vnc.html?path=websockify?token=NAME).
--idle-timeout closes one connection that has had no traffic either way for N
seconds (websockify's option of that name exits the whole server instead).
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, "%s: error: %s\n" % (self.prog, message))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wsproxy.py", usage=USAGE, epilog=EPILOG,
                     description="WebSocket-to-TCP proxy and VNC web client server (websockify-compatible).",
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="wsproxy " + __version__)
    parser.add_argument("positional", nargs="*", metavar="ADDRESS",
                        help="[source_addr:]source_port, then target_host:target_port")

    where = parser.add_argument_group("where to listen and where to connect")
    where.add_argument("--listen", metavar="[HOST:]PORT", help="listen address (novnc_proxy style)")
    where.add_argument("--vnc", metavar="HOST:PORT", help="fixed target (novnc_proxy style)")
    where.add_argument("--unix-listen", metavar="PATH", help="listen on a Unix socket instead of TCP")
    where.add_argument("--unix-listen-mode", metavar="MODE",
                       help="permissions of the --unix-listen socket, in octal (default 0600: only our user)")
    where.add_argument("--inetd", action="store_true",
                       help="take the listening socket from standard input (inetd 'wait', systemd StandardInput=socket)")
    where.add_argument("--prefer-ipv6", action="store_true",
                       help="(or -6) listen only on the IPv6 addresses of source_addr, if it has any")
    where.add_argument("--unix-target", metavar="PATH", help="connect to a Unix socket target")
    where.add_argument("--view-only", action="store_true",
                       help="every connection may watch, not touch: the proxy drops the client's keys, pointer,"
                            " clipboard and resize (for one token: 'view-only' after its target)")
    where.add_argument("--demo", metavar="[HOST:]PORT", nargs="?", const="",
                       help="target a built-in demo desktop (on 127.0.0.1 only); listen on PORT (default 6080)")
    _add_token_and_web_options(parser)
    _add_security_options(parser)
    _add_edge_options(parser)
    _add_process_options(parser)
    _add_operations_options(parser)
    return parser


def _add_token_and_web_options(parser: argparse.ArgumentParser) -> None:
    tokens = parser.add_argument_group("many targets by token")
    tokens.add_argument("--token-plugin", metavar="NAME",
                        help="how tokens name targets (websockify's plugins): TokenFile (default; reloads on "
                             "change), ReadOnlyTokenFile, TokenFileName, TokenRedis, BaseTokenAPI, JSONTokenApi, "
                             "JWTTokenApi, UnixDomainSocketDirectory")
    tokens.add_argument("--token-source", metavar="ARG",
                        help="TokenFile, ReadOnlyTokenFile: a token file or directory of them; TokenFileName, "
                             "UnixDomainSocketDirectory: a directory; TokenRedis: %s; BaseTokenAPI, "
                             "JSONTokenApi: a URL with %%%%s for the token; JWTTokenApi: a key file (PEM RSA key "
                             "or base64url HMAC secret)" % REDIS_SOURCE_FORMAT)
    tokens.add_argument("--target-config", metavar="PATH", help="legacy alias of --token-plugin TokenFile --token-source PATH")
    tokens.add_argument("--host-token", action="store_true", help="take the token from the Host header, not ?token=")

    web = parser.add_argument_group("web files")
    web.add_argument("--web", metavar="DIR", help="serve static files from DIR (default: web/ beside wsproxy.py)")
    web.add_argument("--no-web", action="store_true", help="serve no files, only WebSocket")
    web.add_argument("--file-only", action="store_true", help="accepted for websockify compatibility (listings are always off)")


def _add_security_options(parser: argparse.ArgumentParser) -> None:
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--cert", metavar="FILE", help="certificate (PEM, may include the key); enables TLS on the same port")
    tls.add_argument("--key", metavar="FILE", help="private key, if not in --cert")
    tls.add_argument("--key-password", metavar="PASSWORD",
                     help="passphrase of an encrypted private key (other local users can see it in ps)")
    tls.add_argument("--ssl-only", action="store_true", help="refuse plain (non-TLS) connections")
    tls.add_argument("--verify-client", action="store_true",
                     help="require a client certificate signed by a CA in --cafile (implies --ssl-only)")
    tls.add_argument("--cafile", metavar="FILE", help="CA certificates (PEM) that sign accepted client certificates")
    tls.add_argument("--ssl-version", metavar="VER", default="default",
                     help="minimum TLS version: tlsv1_2 (default, also spelled 'default') or tlsv1_3")
    tls.add_argument("--ssl-ciphers", metavar="LIST", help="OpenSSL cipher list for TLS 1.2")
    tls.add_argument("--ssl-target", action="store_true", help="connect to the target over TLS")

    auth = parser.add_argument_group("access control")
    auth.add_argument("--auth-plugin", metavar="NAME", help="BasicHTTPAuth or ExpectOrigin")
    auth.add_argument("--auth-source", metavar="ARG", help="user:password for BasicHTTPAuth; space-separated origins for ExpectOrigin")
    auth.add_argument("--web-auth", action="store_true", help="require the auth plugin for static files too (BasicHTTPAuth always does)")
    auth.add_argument("--trusted-proxy", metavar="CIDR", action="append", default=[],
                      help="honour X-Forwarded-For from this address or network (repeatable)")


def _add_edge_options(parser: argparse.ArgumentParser) -> None:
    edge = parser.add_argument_group("behind a load balancer, and limits")
    edge.add_argument("--proxy-protocol", action="store_true",
                      help="every connection starts with a PROXY protocol header (v1 or v2, e.g. HAProxy's "
                           "send-proxy); its client address is the one logged and limited. With "
                           "--trusted-proxy, only those addresses may connect")
    edge.add_argument("--max-connections", metavar="N", type=int, default=0,
                      help="most WebSocket connections open at once; more get HTTP 503 (default 0: no limit)")
    edge.add_argument("--max-connections-per-ip", metavar="N", type=int, default=0,
                      help="most WebSocket connections open at once from one client address; more get HTTP 429")
    edge.add_argument("--max-auth-failures", metavar="N", type=int, default=0,
                      help="after N failed attempts (password, origin, token) within %gs, refuse that address "
                           "with HTTP 429 for %gs, doubling each time up to %gs (default 0: off)"
                           % (AuthBackoff.WINDOW, AuthBackoff.FIRST_BLOCK, AuthBackoff.MAX_BLOCK))


def _add_process_options(parser: argparse.ArgumentParser) -> None:
    conn = parser.add_argument_group("connections")
    conn.add_argument("--heartbeat", metavar="N", type=float, default=DEFAULT_HEARTBEAT,
                      help="ping clients every N s; close one that sends no pong within a further N s "
                           "(default %g; 0 turns it off)" % DEFAULT_HEARTBEAT)
    conn.add_argument("--idle-timeout", metavar="N", type=float, default=0,
                      help="close a connection with no traffic either way for N s")
    conn.add_argument("--timeout", metavar="N", type=float, default=0, help="stop the server after N s")
    conn.add_argument("--run-once", action="store_true",
                      help="serve one WebSocket connection, then exit (others get HTTP 503 meanwhile)")
    conn.add_argument("--max-message-size", metavar="BYTES", type=int, default=DEFAULT_MAX_MESSAGE,
                      help="largest client message accepted (default %d; larger gets close 1009)" % DEFAULT_MAX_MESSAGE)

    logs = parser.add_argument_group("logging and process")
    logs.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    logs.add_argument("--log-file", metavar="FILE", help="append the log to FILE")
    logs.add_argument("--syslog", metavar="SERVER", nargs="?", const=SYSLOG_LOCAL,
                      help="log to syslog: a local socket (default %s) or a UDP host:port" % SYSLOG_LOCAL)
    logs.add_argument("--legacy-syslog", action="store_true",
                      help="send syslog lines in the old BSD format (RFC 3164) instead of RFC 5424")
    logs.add_argument("--traffic", action="store_true",
                      help="accepted: each connection's close line counts the bytes each way (no per-frame output)")
    logs.add_argument("-D", "--daemon", action="store_true", help="run in the background (POSIX only)")
    logs.add_argument("--wrap-mode", metavar="MODE", choices=WRAP_MODES,
                      help="when the program after -- exits: exit (default), ignore or respawn")
    logs.add_argument("--libserver", action="store_true",
                      help="accepted for websockify compatibility (wsproxy has one engine)")
    _add_record_options(parser)


def _add_record_options(parser: argparse.ArgumentParser) -> None:
    record = parser.add_argument_group("session recording (play back in play.html)")
    record.add_argument("--record", metavar="PATH",
                        help="record each session to its own file (mode 0600) in directory PATH, or to PATH.N "
                             "when PATH is not a directory; what the server sent, never the VNC login")
    record.add_argument("--record-input", action="store_true",
                        help="also record what the client sent (keys, pointer, clipboard: may hold passwords)")
    record.add_argument("--record-max-bytes", metavar="SIZE", default="0",
                        help="cap on all recordings in the directory (e.g. 10G); the oldest are deleted first "
                             "(default 0: no cap)")
    record.add_argument("--record-session-max-bytes", metavar="SIZE", default="0",
                        help="cap on one session's recording (e.g. 500M); recording stops there, the session "
                             "goes on (default 0: no cap)")


def _add_operations_options(parser: argparse.ArgumentParser) -> None:
    ops = parser.add_argument_group("metrics, health and draining")
    ops.add_argument("--metrics-listen", metavar="[HOST:]PORT",
                     help="serve /metrics (Prometheus text format) and /healthz on this address "
                          "(default host %s); /healthz on the main port too" % METRICS_DEFAULT_HOST)
    ops.add_argument("--drain-seconds", metavar="N", type=float, default=0,
                     help="on SIGTERM, keep serving for N s while /healthz answers 503, then close open "
                          "sessions with 1001 (a second signal stops at once); /healthz on the main port too")


class Config:
    """Everything the server needs, from the command line.

    The class attributes are the defaults; parse_args() sets what differs on
    the instance.  (A plain class: dataclasses would pull in inspect and
    about 2 MB with it.)
    """

    listen_host: str = ""
    listen_port: int = DEFAULT_PORT
    unix_listen: str = ""
    unix_listen_mode: int = DEFAULT_UNIX_LISTEN_MODE
    inetd: bool = False          # the listening socket is standard input
    prefer_ipv6: bool = False
    target: Optional[Target] = None
    token_source: str = ""
    token_plugin: str = ""
    host_token: bool = False
    web: Optional[str] = None
    cert: str = ""
    key: str = ""
    key_password: str = ""
    verify_client: bool = False
    cafile: str = ""
    ssl_only: bool = False
    ssl_version: str = "tlsv1_2"
    ssl_ciphers: str = ""
    ssl_target: bool = False
    auth_plugin: str = ""
    auth_source: str = ""
    web_auth: bool = False
    heartbeat: float = DEFAULT_HEARTBEAT
    idle_timeout: float = 0
    timeout: float = 0
    run_once: bool = False
    max_message_size: int = DEFAULT_MAX_MESSAGE
    trusted_proxies: Sequence = ()   # ipaddress networks whose X-Forwarded-For is believed
    proxy_protocol: bool = False     # each connection starts with a PROXY protocol header
    max_connections: int = 0         # WebSocket connections open at once (0: no limit)
    max_connections_per_ip: int = 0  # ... from one client address
    max_auth_failures: int = 0       # failed attempts in AuthBackoff.WINDOW before a back-off (0: off)
    verbose: bool = False
    log_file: str = ""
    syslog: str = ""             # SYSLOG_LOCAL or another socket path, or a UDP host:port
    legacy_syslog: bool = False
    traffic: bool = False
    daemon: bool = False
    wrap_command: Sequence = ()  # the program after "--", run beside the proxy
    wrap_mode: str = "exit"
    demo: bool = False   # target is the built-in demo desktop (section 12), set by main()
    metrics_listen: Optional[Tuple[str, int]] = None   # --metrics-listen host, port
    drain_seconds: float = 0
    view_only: bool = False   # every connection view-only (section 9b), not only tokens marked so
    record: str = ""             # --record PATH: a directory, or a file name prefix
    record_input: bool = False
    record_max_bytes: int = 0            # all recordings in the directory; 0: no cap
    record_session_max_bytes: int = 0    # one session's recording; 0: no cap

    def __repr__(self) -> str:
        return "Config(%s)" % ", ".join("%s=%r" % item for item in sorted(vars(self).items()))


def parse_args(argv: Sequence[str]) -> Config:
    """Command line to Config.  Raises ConfigError with one clear sentence.

    Options may come before, between or after the addresses, as websockify's
    optparse allows.  One function per group of build_parser's options.
    """
    argv, wrapped = _split_wrapped(list(argv))
    # websockify's -6, spelled out here: argparse would take any option that
    # looks like a number as a sign that "--heartbeat -1" holds an option.
    argv = ["--prefer-ipv6" if arg == "-6" else arg for arg in argv]
    args = build_parser().parse_intermixed_args(argv)
    args.token_plugin = _plugin_name(args.token_plugin, "token_plugins")
    args.auth_plugin = _plugin_name(args.auth_plugin, "auth_plugins")
    config = Config()
    _process_options(args, config)
    _record_options(args, config)
    _wrap_options(args, config, wrapped)
    target_text = _listen_options(args, config)
    _target_options(args, config, target_text)
    _check_wrapped_target(config)
    _web_options(args, config)
    _tls_options(args, config)
    _auth_options(args, config)
    _connection_options(args, config)
    _operations_options(args, config)
    _edge_options(args, config)
    return config


def _split_wrapped(argv: List[str]) -> Tuple[List[str], List[str]]:
    """Our arguments, and the program to run after "--" (websockify's
    ``[source_addr:]source_port -- WRAP_COMMAND_LINE``)."""
    if "--" not in argv:
        return argv, []
    at = argv.index("--")
    if at + 1 == len(argv):
        raise ConfigError("'--' must be followed by a program to run, e.g. '6080 localhost:5901 -- Xvnc :1'")
    return argv[:at], argv[at + 1:]


def _plugin_name(name: Optional[str], module: str) -> Optional[str]:
    """websockify names a plugin by its class (TokenFile) or by its full
    path (websockify.token_plugins.TokenFile); both mean the same here."""
    prefix = "websockify.%s." % module
    if name and name.startswith(prefix):
        return name[len(prefix):]
    return name


def _wrap_options(args, config: Config, wrapped: List[str]) -> None:
    if args.wrap_mode and not wrapped:
        raise ConfigError("--wrap-mode needs a program to run after '--', e.g. '6080 localhost:5901 -- Xvnc :1'")
    config.wrap_command, config.wrap_mode = tuple(wrapped), args.wrap_mode or "exit"


# websockify moves a wrapped program off the port it asks for with an
# LD_PRELOAD library; wsproxy does not, so the program's port must be given
# as the target, and it cannot be wsproxy's own.
WRAP_NEEDS_TARGET = ("a wrapped program needs a target: wsproxy does not move the program's port as websockify "
                     "does (with an LD_PRELOAD library), so give the address it listens on, "
                     "e.g. 'wsproxy.py 6080 localhost:5901 -- Xvnc :1'")


def _check_wrapped_target(config: Config) -> None:
    target = config.target
    if (config.wrap_command and target is not None and not config.unix_listen and not config.inetd
            and target.port == config.listen_port and (target.host == config.listen_host or not _is_public(target.host))):
        raise ConfigError("the target %s is wsproxy's own listen address: wsproxy cannot take over the wrapped "
                          "program's port as websockify does; listen on another, e.g. "
                          "'wsproxy.py 6080 localhost:5901 -- Xvnc :1'" % target)


def _parse_address(text: str, what: str, need_host: bool = True) -> Tuple[str, int]:
    try:
        return parse_host_port(text, what, need_host=need_host)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _listen_options(args, config: Config) -> Optional[str]:
    """Where to listen: --listen, --unix-listen, --inetd, --demo PORT or the
    first address.  Returns the target's text (--vnc or the other address), if any."""
    positional = list(args.positional)
    if len(positional) > 2:
        raise ConfigError("too many addresses: expected [source_addr:]port [target_host:port]")
    listen = _listen_text(args, positional)
    if positional and args.vnc:
        raise ConfigError("give the target either with --vnc or positionally, not both")
    if len(positional) > 1:
        raise ConfigError("too many addresses: the listen address is already given by %s" % (
            "--inetd (standard input)" if args.inetd else "option"))
    target_text = args.vnc or (positional[0] if positional else None)
    _unix_listen_mode(args, config)
    config.prefer_ipv6 = args.prefer_ipv6
    if args.unix_listen or args.inetd:
        if args.unix_listen and not hasattr(socket, "AF_UNIX"):
            raise ConfigError("--unix-listen needs Unix sockets, which this platform lacks")
        config.unix_listen, config.inetd = args.unix_listen or "", args.inetd
        return target_text
    if listen is None and args.vnc:
        listen = str(DEFAULT_PORT)  # novnc_proxy's default: --vnc alone listens on 6080
    elif listen is None:
        raise ConfigError("missing listen port: e.g. 'wsproxy.py 6080 localhost:5901'")
    config.listen_host, config.listen_port = _parse_address(listen, "listen address", need_host=False)
    return target_text


def _listen_text(args, positional: List[str]) -> Optional[str]:
    """The listen address as given, taken off ``positional`` if it is there:
    websockify's order is the listen address first, unless an option gave it."""
    if args.inetd and (args.listen or args.unix_listen or args.demo):
        raise ConfigError("--inetd takes the listening socket from standard input, so it takes no "
                          "--listen, --unix-listen or --demo PORT")
    if args.listen and args.unix_listen:
        raise ConfigError("choose either --listen or --unix-listen")
    listen = args.listen
    elsewhere = args.listen or args.unix_listen or args.inetd
    if args.demo:   # --demo [HOST:]PORT is the listen address
        if elsewhere:
            raise ConfigError("give the listen address once: --demo [HOST:]PORT or --listen, not both")
        listen = args.demo
    elif args.demo is not None and not (elsewhere or positional):
        listen = str(DEFAULT_PORT)
    if not (listen or args.unix_listen or args.inetd) and positional:
        listen = positional.pop(0)
    return listen


def _unix_listen_mode(args, config: Config) -> None:
    """--unix-listen-mode: octal permissions, as chmod takes them (0660, 660)."""
    text = args.unix_listen_mode
    if text is None:
        return
    if not args.unix_listen:
        raise ConfigError("--unix-listen-mode needs --unix-listen PATH")
    digits = text[2:] if text[:2].lower() == "0o" else text
    if not digits or len(digits) > 4 or any(c not in "01234567" for c in digits) or int(digits, 8) > 0o777:
        raise ConfigError("--unix-listen-mode %r: give permissions in octal, such as 0600 or 0660" % text)
    config.unix_listen_mode = int(digits, 8)


def _target_options(args, config: Config, target_text: Optional[str]) -> None:
    """One kind of target: host:port (--vnc or the second address),
    --unix-target, a token source, or --demo."""
    token_source, plugin = _token_options(args)
    targets_given = sum(bool(x) for x in (target_text, args.unix_target, token_source))
    if args.demo is not None and (targets_given or args.host_token or args.ssl_target):
        raise ConfigError("--demo is its own target, so it takes no other target, token source or --ssl-target")
    config.demo = args.demo is not None
    if targets_given == 0 and not config.demo:
        raise ConfigError(WRAP_NEEDS_TARGET if config.wrap_command else
                          "no target: give target_host:port, --vnc, --unix-target or --token-source")
    if targets_given > 1:
        raise ConfigError("choose one kind of target: a fixed target, --unix-target, or a token source")
    if target_text:
        host, port = _parse_address(target_text, "target")
        config.target = Target(host.strip("[]"), port)
    elif args.unix_target:
        if not hasattr(socket, "AF_UNIX"):
            raise ConfigError("--unix-target needs Unix sockets, which this platform lacks")
        config.target = Target(unix_path=args.unix_target)
    elif token_source:
        check_token_source(plugin, token_source)
        config.token_source, config.token_plugin = token_source, plugin
    if args.host_token and not token_source:
        raise ConfigError("--host-token needs a token source (--token-source)")
    config.host_token = args.host_token
    config.view_only = args.view_only


def _token_options(args) -> Tuple[str, str]:
    """The token source and plugin (--target-config is the legacy spelling
    of --token-plugin TokenFile --token-source PATH)."""
    token_source = args.token_source or args.target_config or ""
    plugin = args.token_plugin or ("TokenFile" if token_source else "")
    if plugin and plugin not in TOKEN_PLUGINS:
        raise ConfigError("unsupported --token-plugin %r: supported are %s%s" % (
            plugin, ", ".join(TOKEN_PLUGINS), " (wsproxy loads no Python modules)" if "." in plugin else ""))
    if plugin and not token_source:
        raise ConfigError("--token-plugin %s needs --token-source PATH" % plugin)
    return token_source, plugin


def _web_options(args, config: Config) -> None:
    if args.no_web:
        config.web = None
    elif args.web:
        if not os.path.isdir(args.web):
            raise ConfigError("--web %s is not a directory" % args.web)
        config.web = args.web
    else:
        default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
        config.web = default if os.path.isdir(default) else None


def _tls_options(args, config: Config) -> None:
    for option, needs in (("key", "cert"), ("key_password", "cert"), ("ssl_only", "cert"),
                          ("verify_client", "cert"), ("cafile", "verify_client")):
        if getattr(args, option) and not getattr(args, needs):
            raise ConfigError("--%s needs --%s" % (option.replace("_", "-"), needs.replace("_", "-")))
    for option in ("cert", "cafile"):
        path = getattr(args, option)
        if path and not os.path.isfile(path):
            raise ConfigError("--%s %s is not a file" % (option, path))
    if args.verify_client and not args.cafile:
        raise ConfigError("--verify-client needs --cafile FILE, the CAs that sign your client certificates "
                          "(the system's public CAs would admit anyone holding a certificate from them)")
    config.cert, config.key, config.key_password = args.cert or "", args.key or "", args.key_password or ""
    # Client certificates protect only TLS connections: a plain one would
    # bypass them, so --verify-client refuses plain connections.
    config.verify_client, config.cafile = args.verify_client, args.cafile or ""
    config.ssl_only = args.ssl_only or args.verify_client
    config.ssl_version = _ssl_version(args.ssl_version)
    config.ssl_ciphers, config.ssl_target = args.ssl_ciphers or "", args.ssl_target


def _ssl_version(text: str) -> str:
    """--ssl-version as websockify spells it; "default" is its default value."""
    version = text.lower()
    if version == "default":
        return "tlsv1_2"
    if version in TLS_VERSIONS:
        return version
    if version in ("tlsv1_1", "tlsv1", "tlsv1_0", "sslv3", "sslv23", "sslv2"):
        raise ConfigError("--ssl-version %s is refused: TLS 1.1 and older are broken (RFC 8996); "
                          "use tlsv1_2 (the default) or tlsv1_3" % text)
    raise ConfigError("--ssl-version %r: choose default (tlsv1_2), tlsv1_2 or tlsv1_3" % text)


def _auth_options(args, config: Config) -> None:
    if args.auth_plugin:
        if args.auth_plugin not in AUTH_PLUGINS:
            raise ConfigError("unsupported --auth-plugin %r: supported are %s" % (args.auth_plugin, ", ".join(AUTH_PLUGINS)))
        if not args.auth_source:
            raise ConfigError("--auth-plugin %s needs --auth-source" % args.auth_plugin)
        if args.auth_plugin == "BasicHTTPAuth" and ":" not in args.auth_source:
            raise ConfigError("--auth-source for BasicHTTPAuth must be user:password")
    elif args.auth_source or args.web_auth:
        raise ConfigError("--auth-source and --web-auth need --auth-plugin")
    config.auth_plugin, config.auth_source = args.auth_plugin or "", args.auth_source or ""
    config.web_auth = args.web_auth
    if args.trusted_proxy:
        import ipaddress  # only with --trusted-proxy (start-up time)
        networks = []
        for item in args.trusted_proxy:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError("--trusted-proxy %r is not an address or network" % item) from None
        config.trusted_proxies = networks


def _connection_options(args, config: Config) -> None:
    for name in ("heartbeat", "idle_timeout", "timeout"):
        if not getattr(args, name) >= 0:   # also refuses nan, which compares false to every deadline
            raise ConfigError("--%s must be a number of seconds, not negative" % name.replace("_", "-"))
    if args.max_message_size < 1:
        raise ConfigError("--max-message-size must be positive")
    config.heartbeat, config.idle_timeout, config.timeout = args.heartbeat, args.idle_timeout, args.timeout
    config.max_message_size = args.max_message_size


def _operations_options(args, config: Config) -> None:
    if not args.drain_seconds >= 0:   # also refuses nan
        raise ConfigError("--drain-seconds must be a number of seconds, not negative")
    config.drain_seconds = args.drain_seconds
    if args.metrics_listen:
        host, port = _parse_address(args.metrics_listen, "--metrics-listen", need_host=False)
        config.metrics_listen = (host or METRICS_DEFAULT_HOST, port)
        if port == config.listen_port and not config.unix_listen and not config.inetd:
            raise ConfigError("--metrics-listen needs a port of its own, not the proxy's %d" % port)


def _record_options(args, config: Config) -> None:
    config.record_max_bytes = parse_byte_size(args.record_max_bytes)
    config.record_session_max_bytes = parse_byte_size(args.record_session_max_bytes)
    if not args.record:
        if args.record_input or config.record_max_bytes or config.record_session_max_bytes:
            raise ConfigError("--record-input and --record-*-max-bytes need --record PATH")
        return
    parent = args.record if os.path.isdir(args.record) else os.path.dirname(args.record) or "."
    if not os.path.isdir(parent):
        raise ConfigError("--record %s: no directory to write recordings in" % args.record)
    config.record, config.record_input = args.record, args.record_input


def _edge_options(args, config: Config) -> None:
    for name in ("max_connections", "max_connections_per_ip", "max_auth_failures"):
        if getattr(args, name) < 0:
            raise ConfigError("--%s must be a number, not negative (0: no limit)" % name.replace("_", "-"))
    config.proxy_protocol = args.proxy_protocol
    config.max_connections, config.max_connections_per_ip = args.max_connections, args.max_connections_per_ip
    config.max_auth_failures = args.max_auth_failures


def _process_options(args, config: Config) -> None:
    if args.daemon and (os.name != "posix" or not hasattr(os, "fork")):
        raise ConfigError("--daemon needs a POSIX system; use a service manager here")
    if args.inetd and args.daemon:
        raise ConfigError("--inetd and --daemon: the program that passes the socket manages the process; drop --daemon")
    config.verbose, config.log_file, config.daemon = args.verbose, args.log_file or "", args.daemon
    config.traffic, config.run_once = args.traffic, args.run_once
    config.syslog, config.legacy_syslog = _syslog_server(args.syslog), args.legacy_syslog
    if args.legacy_syslog and not args.syslog:
        raise ConfigError("--legacy-syslog needs --syslog SERVER")


def _syslog_server(text: Optional[str]) -> str:
    """--syslog SERVER: a local socket path, or a UDP host:port."""
    if not text:
        return ""
    if text.isdigit():   # most likely the listen port after a bare --syslog
        raise ConfigError("--syslog %s: SERVER is a socket path or a UDP host:port; for the local syslog "
                          "write --syslog %s" % (text, SYSLOG_LOCAL))
    if ":" in text and not text.startswith(("/", ".")):
        _parse_address(text, "--syslog server")
    return text


def _syslog_address(text: str):
    """What SysLogHandler takes: a path, or (host, port) for UDP."""
    if ":" in text and not text.startswith(("/", ".")):
        host, port = parse_host_port(text, "--syslog server")
        return host.strip("[]"), port
    return text


class SyslogFormatter(logging.Formatter):
    """Syslog lines after the <PRI> that SysLogHandler puts first: RFC 5424
    (websockify's default), or RFC 3164 with --legacy-syslog for daemons
    that show the newer format garbled."""

    def __init__(self, legacy: bool):
        super().__init__("%(message)s")
        self.legacy = legacy
        self.hostname = socket.gethostname() or "-"

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        when = time.localtime(record.created)
        if self.legacy:   # "Mmm dd hh:mm:ss HOST TAG[PID]: MSG", the day padded with a space
            stamp = "%s %2d %s" % (time.strftime("%b", when), when.tm_mday, time.strftime("%H:%M:%S", when))
            return "%s %s wsproxy[%d]: %s" % (stamp, self.hostname, record.process or 0, text)
        offset = when.tm_gmtoff // 60
        stamp = "%s.%06d%s%02d:%02d" % (time.strftime("%Y-%m-%dT%H:%M:%S", when), (record.created % 1) * 1e6,
                                        "-" if offset < 0 else "+", abs(offset) // 60, abs(offset) % 60)
        # VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
        return "1 %s %s wsproxy %d - - %s" % (stamp, self.hostname, record.process or 0, text)


def _syslog_handler(config: Config) -> logging.Handler:
    from logging.handlers import SysLogHandler  # only here: it pulls in pickle and more
    address = _syslog_address(config.syslog)
    # Python 3.11+ would say nothing now and lose every line.
    if isinstance(address, str) and not _is_socket_path(address):
        raise ConfigError("cannot log to --syslog %s: no socket there (is a syslog daemon running?)" % address)
    try:
        handler = SysLogHandler(address=address)
    except OSError as exc:
        raise ConfigError("cannot log to --syslog %s: %s" % (config.syslog, exc.strerror or exc)) from None
    handler.setFormatter(SyslogFormatter(config.legacy_syslog))
    return handler


def _is_socket_path(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def _is_socket(fd: int) -> bool:
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False


def setup_logging(config: Config) -> None:
    root = logging.getLogger("wsproxy")
    root.setLevel(logging.DEBUG if config.verbose else logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers = []
    if config.log_file:
        try:
            handlers.append(logging.FileHandler(config.log_file))
        except OSError as exc:
            raise ConfigError("cannot open --log-file %s: %s" % (config.log_file, exc.strerror or exc)) from None
    if config.syslog:
        handlers.append(_syslog_handler(config))
    # inetd and systemd may hand us the socket as stderr too: never write there.
    if (not handlers or not config.daemon) and not (config.inetd and _is_socket(2)):
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        if handler.formatter is None:
            handler.setFormatter(formatter)
        root.addHandler(handler)


# At most this many "Open ..." lines for a token source; the rest are counted.
BANNER_MAX_URLS = 20


def _is_public(host: str) -> bool:
    """Whether a listen host can be reached from other machines."""
    if host in ("", "0.0.0.0", "::"):
        return True
    if host in ("localhost", "::1"):
        return False
    parts = host.split(".")
    if len(parts) == 4 and parts[0] == "127" and all(p.isdigit() for p in parts):
        return False  # 127.0.0.0/8
    return True  # another address, or a name: assume it is a real interface


def banner(server: Server) -> List[str]:
    """What to tell the person who started us: where we listen, what we
    serve, and the URLs to open."""
    config = server.config
    scheme = "https" if config.cert else "http"
    lines = ["wsproxy %s listening on %s%s" % (__version__, ", ".join(server.addresses()),
                                               " (from standard input, --inetd)" if config.inetd else
                                               " (from systemd)" if server.socket_activated else "")]
    lines.append(_tls_banner(config))
    names = []
    if config.demo:
        lines.append("target: the built-in demo desktop at %s (loopback only)" % config.target)
    elif config.target is not None:
        lines.append("target: %s" % config.target)
    elif not isinstance(server.tokens, TokenFile):
        lines.append("targets: by token from %s (%s)" % (server.tokens.describe(), config.token_plugin))
    else:
        names = sorted(server.tokens.tokens())
        lines.append("targets: %d token%s from %s%s" % (
            len(names), "" if len(names) == 1 else "s", config.token_source,
            "" if config.token_plugin == "ReadOnlyTokenFile" else " (reloaded on change)"))
    unix = config.unix_listen or (server.listeners != [] and all(
        sock.family == getattr(socket, "AF_UNIX", None) for sock in server.listeners))   # --inetd's may be
    if not unix and _is_public(config.listen_host) and not config.cert and not config.auth_plugin:
        lines.append(_public_warning(config))
    if config.proxy_protocol and not config.trusted_proxies:
        lines.append("warning: --proxy-protocol without --trusted-proxy: whoever reaches this port directly "
                     "can claim any client address; name the load balancer with --trusted-proxy")
    if config.wrap_command:
        lines.append("wrapped program: %s (--wrap-mode %s)" % (" ".join(config.wrap_command), config.wrap_mode))
    if unix:
        return lines
    host = bracket_host(config.listen_host or "localhost")
    base = "%s://%s:%d" % (scheme, host, config.listen_port)
    if server.web_root is None:
        lines.append("web files: none; WebSocket endpoint: %s://%s:%d/websockify"
                     % ("wss" if config.cert else "ws", host, config.listen_port))
        return lines
    lines.append("web files: %s" % server.web_root)
    if config.demo:
        lines.append("Open %s/vnc.html?autoconnect=1" % base)
    elif config.target is not None:
        lines.append("Open %s/vnc.html" % base)
    elif not isinstance(server.tokens, TokenFile):
        lines.append("Open %s/vnc.html?path=websockify?token=TOKEN" % base)
    else:
        if not names:
            lines.append("the token source has no tokens yet; add 'NAME: host:port' lines")
        import urllib.parse  # lazily: it costs start-up time (it pulls in ipaddress)
        for name in names[:BANNER_MAX_URLS]:
            lines.append("Open %s/vnc.html?path=%s" % (base, urllib.parse.quote("websockify?token=" + name, safe="/=?")))
        if len(names) > BANNER_MAX_URLS:
            lines.append("... and %d more tokens" % (len(names) - BANNER_MAX_URLS))
    return lines


def _tls_banner(config: Config) -> str:
    if not config.cert:
        return "TLS: off (add --cert FILE for https:// and wss://)"
    return "TLS: %s (certificate %s)%s" % (
        "required (--ssl-only)" if config.ssl_only else "on, plain http/ws on the same port", config.cert,
        "; client certificates required, signed by a CA in %s" % config.cafile if config.verify_client else "")


def _public_warning(config: Config) -> str:
    """Who can use the desktop, and the option that keeps it to this machine."""
    port = config.listen_port
    fix = ("--demo 127.0.0.1:%d" % port if config.demo
           else "127.0.0.1:%d as the listen address" % port)
    return ("warning: listening on all or public interfaces with no TLS and no --auth-plugin: anyone who "
            "reaches port %d can use %s; to allow only this machine, use %s" % (
                port, "the desktop" if config.target is not None else "a desktop whose token they know", fix))


def daemonize() -> None:
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def release_startup_memory() -> None:
    """Give the heap memory freed during start-up back to the operating system.

    Compiling wsproxy.py (each start where no .pyc can be cached) and
    parsing the command line leave megabytes of freed memory scattered in the
    C heap, where it stays resident.  glibc's malloc_trim() returns those
    pages.  Without ctypes (minimal builds), on musl (no malloc_trim) or off
    Linux this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes  # lazily: only this needs it
        ctypes.CDLL(None).malloc_trim(0)
    except Exception:  # no ctypes, no libc handle, no malloc_trim: nothing to give back
        pass


class WrappedProgram:
    """The program after "--", run beside the proxy (websockify's wrap mode).

    A thread waits for it.  When it exits: --wrap-mode exit stops the
    server, ignore lets it be, respawn starts it again (after a pause that
    grows while it keeps dying young).  stop() ends it: SIGTERM, then SIGKILL.
    """

    def __init__(self, command: Sequence[str], mode: str, on_exit, inetd: bool = False):
        self.command, self.mode, self.on_exit = list(command), mode, on_exit
        self.inetd = inetd   # then our stdin (and maybe stdout, stderr) is the listening socket
        self.status = None   # type: Optional[int]
        self.proc = None
        self.started = 0.0
        self._stopping = threading.Event()
        self._lock = threading.Lock()   # a respawn and stop() never cross: no program outlives us
        self._thread = None

    def start(self) -> None:
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="wrapped-program", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        import subprocess  # only with a wrapped program (start-up time)
        stdio = [subprocess.DEVNULL if self.inetd and _is_socket(fd) else None for fd in (0, 1, 2)]
        self.proc = subprocess.Popen(self.command, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2])
        self.started = time.monotonic()
        log.info("wrapped program started: pid %d: %s", self.proc.pid, loggable(" ".join(self.command)))

    def _watch(self) -> None:
        delay = WRAP_RESPAWN_DELAY[0]
        while True:
            status = self.proc.wait()
            if self._stopping.is_set():
                return
            log.info("wrapped program exited with status %d (--wrap-mode %s)", status, self.mode)
            if self.mode == "exit":
                self.status = status
                self.on_exit()
                return
            if self.mode == "ignore":
                return
            if time.monotonic() - self.started >= WRAP_RESPAWN_STABLE:
                delay = WRAP_RESPAWN_DELAY[0]
            if self._stopping.wait(delay):
                return
            try:
                with self._lock:
                    if self._stopping.is_set():
                        return
                    self._spawn()
            except OSError as exc:
                log.error("cannot start the wrapped program again: %s", exc.strerror or exc)
                return
            delay = min(delay * 2, WRAP_RESPAWN_DELAY[1])

    def stop(self) -> None:
        import subprocess
        with self._lock:
            self._stopping.set()
            proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(WRAP_STOP_GRACE)
            except subprocess.TimeoutExpired:   # it ignored SIGTERM
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(WRAP_STOP_GRACE)


def _fail(message: str, code: int = 2) -> int:
    sys.stderr.write("wsproxy.py: error: %s\n" % message)
    return code


def _configure(argv: Sequence[str]):
    """Config, logging and a bound Server; or the exit status after saying why not."""
    try:
        config = parse_args(argv)
        setup_logging(config)
        server = Server(config)
        if config.wrap_command:
            import shutil  # only with a wrapped program (start-up time)
            if shutil.which(config.wrap_command[0]) is None:
                raise ConfigError("cannot find the wrapped program %r" % config.wrap_command[0])
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        server.bind()
    except ConfigError as exc:   # --inetd without a listening socket on standard input
        return _fail(str(exc))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return _fail("port %d is already in use; choose another with --listen PORT" % config.listen_port, 1)
        return _fail("cannot listen: %s" % (exc.strerror or exc), 1)
    if config.metrics_listen:
        try:
            server.metrics_listener = MetricsListener(server.metrics, *config.metrics_listen)
        except OSError as exc:
            return _fail("cannot listen for --metrics-listen %s: %s" % (
                host_port(*config.metrics_listen), exc.strerror or exc), 1)
    return server


def _operations_banner(server: Server) -> List[str]:
    lines = []
    if server.metrics_listener is not None:
        lines.append("metrics: http://%s/metrics and /healthz" % server.metrics_listener.address)
    if server.config.drain_seconds:
        lines.append("on SIGTERM: %gs of draining (/healthz answers 503), then close 1001"
                     % server.config.drain_seconds)
    return lines


def _install_signals(server: Server) -> None:
    """SIGINT/SIGTERM stop (after --drain-seconds, unless sent twice); SIGHUP reloads
    the certificate and tokens."""
    def on_stop(signum, frame):
        seconds = server.config.drain_seconds
        if seconds and not server.draining and not server.stopping:
            log.info("signal %d: draining for %gs: /healthz answers 503, sessions go on; then open "
                     "connections get close 1001 (signal again to stop now)", signum, seconds)
            server.begin_drain(seconds)
            return
        log.info("signal %d: stopping; open connections get close 1001", signum)
        server.request_stop()

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    # Only where there is something to reload: elsewhere a hangup still ends the process.
    if hasattr(signal, "SIGHUP") and (server.config.cert or server.tokens is not None):
        signal.signal(signal.SIGHUP, lambda signum, frame: server.request_reload())


def main(argv: Optional[Sequence[str]] = None) -> int:
    server = _configure(sys.argv[1:] if argv is None else argv)
    if isinstance(server, int):
        return server
    config = server.config
    demo = None
    if config.demo:
        demo = DemoTarget()   # bound now for the banner; its threads start after any fork
        config.target = Target("127.0.0.1", demo.port)
    for line in banner(server) + _operations_banner(server):
        if config.inetd:   # stdout may be the socket inetd passed
            log.info("%s", line)
        else:
            print(line, flush=True)
    if config.traffic:
        log.info("--traffic: wsproxy counts each connection's bytes each way in its close line, not per frame")
    if config.daemon:
        daemonize()
    threading.stack_size(THREAD_STACK_SIZE)
    if demo is not None:
        demo.start()
    if server.metrics_listener is not None:
        server.metrics_listener.start()
    wrapped = None
    if config.wrap_command:
        wrapped = WrappedProgram(config.wrap_command, config.wrap_mode, server.request_stop, config.inetd)
        try:
            wrapped.start()
        except OSError as exc:
            server.shutdown()
            return _fail("cannot run the wrapped program: %s" % (exc.strerror or exc), 1)
    _install_signals(server)
    release_startup_memory()
    server.serve_forever()
    if server.metrics_listener is not None:
        server.metrics_listener.stop()
    if wrapped is not None:
        wrapped.stop()
    if demo is not None:
        demo.stop()
    log.info("stopped")
    return 1 if wrapped is not None and wrapped.status else 0


# ===========================================================================
# 14. Session recording: pure file format, per-session recorder, writer thread
# ===========================================================================
#
# --record PATH writes each relayed session to its own file: under PATH when
# it is a directory, else as PATH.N (websockify's prefix form).  The format,
# version 1 (all integers big-endian, as in RFB):
#
#   magic    8 bytes  89 57 53 50 52 45 43 0A  ("\x89WSPREC\n")
#   version  u16      1
#   length   u32      bytes of the header that follows (at most 64 KiB)
#   header   JSON, UTF-8: {"format": "wsproxy-recording", "version": 1,
#            "started": ISO 8601 UTC, "started_unix": seconds, "connection": N,
#            "target": "host:port", "token": redacted as in the log or null,
#            "width": W, "height": H, "server_version": "RFB 003.008",
#            "input": whether client input is recorded}
#   records, until the end of the file, each:
#     kind   u8       1 SERVER, 2 CLIENT_FORMAT, 3 CLIENT_INPUT, 4 END
#     time   u32      milliseconds since the recording started
#     length u32      payload bytes
#     payload
#
# SERVER records hold what the VNC server sent, in order.  The first (time 0)
# starts with a synthesized handshake: RFB 003.008, one security type (None)
# and SecurityResult OK; then the server's real ServerInit and all that
# followed.  The real authentication exchange is never written: a recording
# is not a replayable login, and a player needs no password.  CLIENT_FORMAT
# records are the client's SetPixelFormat and SetEncodings messages (the
# player needs the pixel format; neither holds input).  CLIENT_INPUT records
# (every other client message: keys, pointer, clipboard) exist only with
# --record-input.  END is written last; its payload says why the recording
# ended.  A file without one was cut short (disk full, crash); readers keep
# every whole record before the cut.

RECORDING_MAGIC = b"\x89WSPREC\n"    # the high byte and \n catch text-mode transfers
RECORDING_VERSION = 1
RECORDING_FORMAT = "wsproxy-recording"
_RECORDING_PREAMBLE = struct.Struct(">8sHI")   # magic, version, header length
_RECORD_HEAD = struct.Struct(">BII")           # kind, milliseconds, payload length
# A header is a few hundred bytes; the bound is for readers of hostile files.
MAX_RECORDING_HEADER = 64 * 1024
# A u32 of milliseconds: 49 days, longer than any session a recording covers.
MAX_RECORD_MILLIS = 0xFFFFFFFF
# What the player's client sees before the real ServerInit: version 3.8,
# security types [None], SecurityResult OK (RFC 6143 7.1-7.1.3).
SYNTHESIZED_HANDSHAKE = b"RFB 003.008\n" + b"\x01\x01" + b"\0\0\0\0"
# Client message types recorded without --record-input (RFC 6143 7.5):
# SetPixelFormat and SetEncodings describe the stream, not the user.
CLIENT_FORMAT_TYPES = (0, 2)
# Server bytes held while the handshake is followed: a handshake (with a
# desktop name) is far smaller; past this the recording gives up.
MAX_RECORDED_HANDSHAKE = 1024 * 1024
# Bytes of all sessions waiting for the writer thread, and of one session:
# past either, that session's recording stops (a slow disk must not grow
# memory or hold up the relay).  A full-screen update is a few MiB.
RECORD_QUEUE_BYTES = 64 * 1024 * 1024
RECORD_QUEUE_SESSION_BYTES = 16 * 1024 * 1024
# Room kept under a size cap for the END record that says why it stopped.
RECORD_END_RESERVE = 256
# The writer thread gets this long at exit to write what is queued.
RECORD_FLUSH_TIMEOUT = 5.0


# What else the writer's queue carries: a recording's end, normal or not.
_RECORD_FINISH, _RECORD_FAIL = -1, -2


class RecordKind(IntEnum):
    SERVER = 1
    CLIENT_FORMAT = 2
    CLIENT_INPUT = 3
    END = 4


class RecordingError(ValueError):
    """A file that is not a recording this version can read."""


def encode_recording_header(info: dict) -> bytes:
    """Magic, version and the JSON header (``info`` plus format and version)."""
    import json   # lazily: only with --record
    fields = {"format": RECORDING_FORMAT, "version": RECORDING_VERSION}
    fields.update(info)
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False).encode("utf-8")
    if len(text) > MAX_RECORDING_HEADER:
        raise RecordingError("recording header of %d bytes is over %d" % (len(text), MAX_RECORDING_HEADER))
    return _RECORDING_PREAMBLE.pack(RECORDING_MAGIC, RECORDING_VERSION, len(text)) + text


def encode_record(kind: int, millis: int, payload: bytes) -> bytes:
    return _RECORD_HEAD.pack(kind, min(max(0, millis), MAX_RECORD_MILLIS), len(payload)) + payload


class Record(NamedTuple):
    kind: int
    millis: int
    payload: bytes


def parse_recording(data: bytes) -> Tuple[dict, List[Record], bool]:
    """(header, records, complete) of a recording's bytes.  ``complete`` is
    False when the file ends inside a record or has no END record; the whole
    records before the cut are still returned."""
    import json
    if len(data) < _RECORDING_PREAMBLE.size:
        raise RecordingError("too short for a recording header")
    magic, version, length = _RECORDING_PREAMBLE.unpack_from(data)
    if magic != RECORDING_MAGIC:
        raise RecordingError("not a wsproxy recording (bad magic)")
    if version != RECORDING_VERSION:
        raise RecordingError("recording version %d; this reader knows %d" % (version, RECORDING_VERSION))
    end = _RECORDING_PREAMBLE.size + length
    if length > MAX_RECORDING_HEADER or end > len(data):
        raise RecordingError("recording header cut short or over %d bytes" % MAX_RECORDING_HEADER)
    try:
        header = json.loads(data[_RECORDING_PREAMBLE.size:end].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordingError("recording header is not JSON: %s" % exc) from None
    records = []
    offset, ended = end, False
    while offset + _RECORD_HEAD.size <= len(data) and not ended:
        kind, millis, size = _RECORD_HEAD.unpack_from(data, offset)
        start = offset + _RECORD_HEAD.size
        if start + size > len(data):
            break
        records.append(Record(kind, millis, bytes(data[start:start + size])))
        ended = kind == RecordKind.END
        offset = start + size
    return header, records, ended


def recorded_server_bytes(records: Sequence[Record]) -> bytes:
    """The server's stream as a player sees it: every SERVER payload in order."""
    return b"".join(r.payload for r in records if r.kind == RecordKind.SERVER)


def parse_byte_size(text: str) -> int:
    """'100M', '2G', '512k' or plain bytes -> bytes (powers of 1024); 0 is no cap."""
    match = re.fullmatch(r"\s*(\d+)\s*([kKmMgGtT]?)[iI]?[bB]?\s*", text or "")
    if match is None:
        raise ConfigError("%r is not a size: use bytes or a number with K, M, G or T" % text)
    return int(match.group(1)) * 1024 ** " KMGT".index(match.group(2).upper() or " ")


def recording_name(prefix_mode: bool, base: str, number: int, when: float, attempt: int = 0) -> str:
    """The file name of connection ``number``'s recording: ``base.N`` in
    prefix mode, else ``YYYYmmddTHHMMSSZ-N.wsrec`` (UTC, so names sort by
    start); ``attempt`` > 0 adds ``.K`` when that name is taken."""
    again = ".%d" % attempt if attempt else ""
    if prefix_mode:
        return "%s.%d%s" % (base, number, again)
    return "%s-%d%s.wsrec" % (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when)), number, again)


def recording_pattern(prefix_mode: bool, base: str):
    """What recording_name() makes, as a regular expression: the files a
    directory cap counts (and may delete) -- never anything else there."""
    if prefix_mode:
        return re.compile(re.escape(base) + r"\.\d+(\.\d+)?\Z")
    return re.compile(r"\d{8}T\d{6}Z-\d+(\.\d+)?\.wsrec\Z")


def recordings_to_delete(files: Sequence[Tuple[str, int, float]], total: int, cap: int,
                         keep: Sequence[str] = ()) -> List[str]:
    """Oldest first (by mtime, then name), the files (name, size, mtime) to
    delete so that ``total`` fits ``cap``; those in ``keep`` (being written)
    are never chosen.  Stops as soon as the rest fits."""
    chosen = []
    for name, size, _ in sorted(files, key=lambda f: (f[2], f[0])):
        if total <= cap:
            break
        if name in keep:
            continue
        chosen.append(name)
        total -= size
    return chosen


class SessionRecorder:
    """One session's recording, fed by its relay thread.

    ``server(data)`` and ``client(data)`` take each direction's bytes as the
    relay moves them; an RfbFollower finds where the handshake ends, and
    nothing is queued before ServerInit.  Records go to the store's writer
    thread; the relay never waits on the disk.  ``stopped`` is set when no
    more is wanted (by either thread); then both calls return at once.
    """

    def __init__(self, store: "RecordingStore", number: int, info: dict):
        self.store = store
        self.number = number
        self.info = info
        self.stopped = False
        self.queued = 0              # bytes in the store's queue (under its lock)
        self.started = None          # monotonic time of ServerInit: time 0
        self._follower = RfbFollower()
        self._held = bytearray()     # server bytes until ServerInit is whole
        self._init_start = -1        # ServerInit's offset in the server's bytes
        self._pending = bytearray()  # client bytes not yet recorded or skipped...
        self._pending_at = 0         # ...from this offset of the client's bytes
        self._covered = 0            # where the last reported client message ends
        self._spans = []             # client messages not yet passed whole
        self._message = bytearray()  # a CLIENT_FORMAT message being gathered
        self._follow_client = True
        # The writer thread's own: the open file and what was written.
        self.fd = None               # type: Optional[int]
        self.path = ""
        self.name = ""
        self.size = 0
        self.done = False

    def _millis(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    # -- the relay's side ---------------------------------------------------

    def server(self, data) -> None:
        try:
            self._server(data)
        except Exception:  # noqa: BLE001 -- a recorder's bug costs the recording, never the session
            self._internal_error()

    def client(self, data) -> None:
        try:
            self._client(data)
        except Exception:  # noqa: BLE001 -- as above
            self._internal_error()

    def _internal_error(self) -> None:
        log.exception("conn %d: internal error in the recorder", self.number)
        self._follow_client = False
        self.stop("internal error")

    def _server(self, data) -> None:
        if self.stopped:
            return
        if self.started is not None:
            self.store.put(self, RecordKind.SERVER, self._millis(), bytes(data))
            return
        self._held += data
        if len(self._held) > MAX_RECORDED_HANDSHAKE:
            return self.stop("the handshake is over %d bytes" % MAX_RECORDED_HANDSHAKE)
        self._on_events(self._follower.server_data(bytes(data)))

    def _client(self, data) -> None:
        if self.stopped or not self._follow_client:
            return
        # Client bytes wait here until the follower says which message they
        # belong to: it reports one when its header is whole, so the first
        # bytes of a header may have come with the previous call.  (Before
        # ServerInit they are the handshake's, held too: slices of messages
        # are recorded, never the rest.)
        self._pending += data
        if len(self._pending) > MAX_RECORDED_HANDSHAKE:
            return self.stop("the client sent over %d bytes no message holds" % MAX_RECORDED_HANDSHAKE)
        self._on_events(self._follower.client_data(bytes(data)))
        if self.started is not None and self._spans and not self.stopped:
            self._record_client()

    def close(self, reason: str = "the session ended") -> None:
        if not self.stopped:
            self.stop(reason if self.started is not None else "%s before ServerInit" % reason, failed=False)

    def stop(self, reason: str, failed: bool = True) -> None:
        """No more records; the writer writes END, closes the file and logs."""
        self.store.finish(self, reason, failed)

    # -- following the stream ----------------------------------------------

    def _on_events(self, events: list) -> None:
        for event in events:
            kind = type(event)
            if kind is RfbClientMessage:
                self._spans.append(event)
            elif kind is RfbPhase and event.side == "server":
                if event.phase == "init":
                    self._init_start = event.offset
                elif event.phase == "normal":
                    self._start(event.offset)
                elif event.phase == "failed":
                    return self.stop("the VNC server refused the session")
            elif kind is RfbServerInit:
                self.info.update(width=event.width, height=event.height)
            elif kind is RfbCannotFollow:
                if self.started is None:   # (the follower reads no side once it is lost)
                    return self.stop("cannot follow the RFB handshake: %s" % event.reason)
                # Past the handshake only the client's side is lost: the
                # server's bytes need no follower and are still recorded.
                self._follow_client = False
                self._spans = []
                self._pending = bytearray()

    def _start(self, init_end: int) -> None:
        """ServerInit is whole: time 0.  The first record is the synthesized
        handshake, the real ServerInit and whatever the server sent after it."""
        self.started = time.monotonic()
        version = self._follower.server_version
        self.info["server_version"] = "RFB %03d.%03d" % version if version else ""
        self.info["started_unix"] = round(time.time(), 3)
        self.info["started"] = _iso_utc(self.info["started_unix"])
        held, self._held = self._held, bytearray()
        self.store.put(self, RecordKind.SERVER, 0, SYNTHESIZED_HANDSHAKE + bytes(held[self._init_start:]))
        if self._spans:
            self._record_client()

    def _record_client(self) -> None:
        """Pass whole SetPixelFormat/SetEncodings messages as CLIENT_FORMAT,
        and with --record-input the rest as CLIENT_INPUT, in stream order."""
        base, data = self._pending_at, self._pending
        end = base + len(data)
        millis = self._millis()
        keep = []
        for span in self._spans:
            piece = bytes(data[max(span.start, base) - base:min(span.end, end) - base])
            if span.kind in CLIENT_FORMAT_TYPES:
                self._message += piece
                if span.end <= end:
                    self.store.put(self, RecordKind.CLIENT_FORMAT, millis, bytes(self._message))
                    self._message = bytearray()
            elif self.store.record_input and piece:
                self.store.put(self, RecordKind.CLIENT_INPUT, millis, piece)
            if span.end > end:
                keep.append(span)
            self._covered = span.end
        self._spans = keep
        # What is passed on is dropped; an unreported header's bytes stay.
        done = min(end, self._covered) - base
        if done > 0:
            del data[:done]
            self._pending_at += done


def _iso_utc(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + ".%03dZ" % (int(when * 1000) % 1000)


class RecordingStore:
    """Where recordings go (--record PATH), their caps, and the one writer
    thread that does all of their disk I/O.

    Relay threads only queue (``put``, ``finish``); the queue is bounded in
    bytes, and a session that would overflow it loses its recording, not
    its connection.  The writer creates each file (0600) at its first
    record, enforces the per-session cap (--record-session-max-bytes) and
    the cap on all recordings in the directory (--record-max-bytes, oldest
    finished ones deleted first), and on any write error (disk full) stops
    that recording.  Counters for metrics: ``recordings`` (files created),
    ``completed`` and ``stopped_early`` (finished either way), ``bytes_written``.
    """

    def __init__(self, path: str, max_bytes: int = 0, session_max_bytes: int = 0, record_input: bool = False):
        self.prefix_mode = not os.path.isdir(path)
        self.directory = (os.path.dirname(path) or ".") if self.prefix_mode else path
        self.base = os.path.basename(path) if self.prefix_mode else ""
        self.max_bytes = max_bytes
        self.session_max_bytes = session_max_bytes
        self.record_input = record_input
        self.recordings = 0          # files written
        self.completed = 0           # ... of which finished whole (ended with the session)
        self.stopped_early = 0       # ... of which stopped by a cap, the disk or the queue
        self.bytes_written = 0
        self._pattern = recording_pattern(self.prefix_mode, self.base)
        self._cond = threading.Condition()
        self._queue = deque()        # (recorder, RecordKind or _RECORD_FINISH/FAIL, millis, payload or reason)
        self._queued = 0
        self._thread = None
        self._closing = False
        self._files = None           # the writer's: name -> [size, mtime] of recordings on disk
        self._total = 0
        self._open = set()           # the writer's: names of files still being written

    def recorder(self, number: int, target: str, token: Optional[str]) -> SessionRecorder:
        info = {"connection": number, "target": target, "token": redact_token(token) if token else None,
                "input": self.record_input}
        return SessionRecorder(self, number, info)

    # -- relay threads ------------------------------------------------------

    def put(self, rec: SessionRecorder, kind: int, millis: int, payload: bytes) -> None:
        size = len(payload)
        with self._cond:
            if rec.stopped:
                return
            if self._queued + size > RECORD_QUEUE_BYTES or rec.queued + size > RECORD_QUEUE_SESSION_BYTES:
                rec.stopped = True
                self._queue.append((rec, _RECORD_FAIL, 0, "the disk is too slow (%d bytes of this session and %d in all "
                                    "were waiting)" % (rec.queued, self._queued)))
            else:
                self._queue.append((rec, kind, millis, payload))
                self._queued += size
                rec.queued += size
            self._wake()

    def finish(self, rec: SessionRecorder, reason: str, failed: bool = False) -> None:
        with self._cond:
            if rec.stopped:
                return
            rec.stopped = True
            self._queue.append((rec, _RECORD_FAIL if failed else _RECORD_FINISH, 0, reason))
            self._wake()

    def _wake(self) -> None:
        """Under the lock: start the writer on first use, or wake it."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
            self._thread.start()
        self._cond.notify()

    def close(self, timeout: float = RECORD_FLUSH_TIMEOUT) -> None:
        """At exit: let the writer write what is queued, for at most ``timeout``."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # -- the writer thread --------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                rec, kind, millis, payload = self._queue.popleft()
                if kind > 0:
                    self._queued -= len(payload)
                    rec.queued -= len(payload)
            try:
                if kind < 0:
                    self._end(rec, payload, failed=kind == _RECORD_FAIL)
                elif not rec.done:
                    self._write_record(rec, encode_record(kind, millis, payload))
            except Exception:  # noqa: BLE001 -- the thread boundary: one recording lost, not the writer
                log.exception("conn %d: internal error in the recorder", rec.number)
                self._end(rec, "internal error", failed=True)

    def _write_record(self, rec: SessionRecorder, record: bytes) -> None:
        try:
            if rec.fd is None:
                self._create(rec)
            cap = self.session_max_bytes
            if cap and rec.size + len(record) + RECORD_END_RESERVE > cap:
                return self._end(rec, "the session size cap (%d bytes) was reached" % cap, failed=True)
            if self.max_bytes and not self._make_room(rec, len(record)):
                return self._end(rec, "the recordings' size cap (--record-max-bytes %d) was reached"
                                 % self.max_bytes, failed=True)
            self._write(rec, record)
        except OSError as exc:
            self._end(rec, "cannot write %s: %s" % (loggable(rec.path or self.directory), exc.strerror or exc),
                      failed=True, io_failed=True)

    def _create(self, rec: SessionRecorder) -> None:
        if self.max_bytes and self._files is None:
            self._files = self._scan()
            self._total = sum(size for size, _ in self._files.values())
        header = encode_recording_header(rec.info)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        when = rec.info.get("started_unix") or time.time()
        for attempt in range(100):
            name = recording_name(self.prefix_mode, self.base, rec.number, when, attempt)
            path = os.path.join(self.directory, name)
            try:
                rec.fd = os.open(path, flags, 0o600)   # never readable by others, whatever the umask
                break
            except FileExistsError:
                continue
        else:
            raise OSError(errno.EEXIST, "no free file name for %s" % name)
        rec.path, rec.name = path, name
        self._open.add(name)
        self.recordings += 1
        if self._files is not None:
            self._files[name] = [0, time.time()]
        self._write(rec, header)

    def _write(self, rec: SessionRecorder, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(rec.fd, view)
            view = view[written:]
            rec.size += written
            self.bytes_written += written
            self._total += written
            if self._files is not None:
                self._files[rec.name][0] = rec.size

    def _make_room(self, rec: SessionRecorder, size: int) -> bool:
        """Delete the oldest finished recordings until ``size`` more bytes
        fit under --record-max-bytes; False if they do not even then."""
        need = self._total + size + RECORD_END_RESERVE
        if need <= self.max_bytes:
            return True
        files = [(name, entry[0], entry[1]) for name, entry in self._files.items()]
        for name in recordings_to_delete(files, need, self.max_bytes, keep=self._open):
            try:
                os.unlink(os.path.join(self.directory, name))
            except FileNotFoundError:
                pass
            self._total -= self._files.pop(name)[0]
            log.info("recording %s deleted: the recordings are over --record-max-bytes %d",
                     loggable(name), self.max_bytes)
        return self._total + size + RECORD_END_RESERVE <= self.max_bytes


    def _scan(self) -> Dict[str, list]:
        """The recordings already in the directory (what the cap counts)."""
        found = {}
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return found
        for entry in entries:
            if self._pattern.match(entry.name):
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found[entry.name] = [st.st_size, st.st_mtime]
        return found

    def _end(self, rec: SessionRecorder, reason: str, failed: bool = False, io_failed: bool = False) -> None:
        """END record, close, the recording's one log line."""
        if rec.done:
            return
        rec.done = rec.stopped = True
        if rec.fd is None:
            log.info("conn %d: not recorded: %s", rec.number, loggable(reason))
            return
        if not io_failed:
            try:
                self._write(rec, encode_record(RecordKind.END, int((time.monotonic() - rec.started) * 1000),
                                               reason.encode("utf-8")))
            except OSError:
                pass
        try:
            os.close(rec.fd)
        except OSError:
            pass
        rec.fd = None
        self._open.discard(rec.name)
        if failed:
            self.stopped_early += 1
        else:
            self.completed += 1
        (log.warning if failed else log.info)("conn %d: recording %s: %d bytes; %s%s", rec.number,
                                              loggable(rec.path), rec.size, "stopped: " if failed else "",
                                              loggable(reason))


if __name__ == "__main__":
    sys.exit(main())
