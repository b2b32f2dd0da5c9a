"""Connection limits and the back-off after failed attempts (issue 14).

The bookkeeping (ConnectionLimits, AuthBackoff) is tested with a clock
passed in; then a real proxy answers 503 / 429 with a reason before the
upgrade, logs one line, and keeps serving others.
"""

import base64
import socket

import pytest

import wsproxy
from conftest import get_request, raw_websocket, read_response, upgrade_headers, wait_until, ws_frame
from wsproxy import AuthBackoff, ConnectionLimits, HttpError, RequestHead


# ---------------------------------------------------------------------------
# pure bookkeeping
# ---------------------------------------------------------------------------


def test_limits_count_in_total_and_by_address_and_free_on_release():
    limits = ConnectionLimits(max_total=3, max_per_address=2)
    limits.acquire("10.0.0.1")
    limits.acquire("10.0.0.1")
    with pytest.raises(HttpError) as refused:
        limits.acquire("10.0.0.1")
    assert refused.value.status == 429 and "limit 2" in refused.value.reason
    limits.acquire("10.0.0.2")
    with pytest.raises(HttpError) as full:
        limits.acquire("10.0.0.3")
    assert full.value.status == 503 and "(3)" in full.value.reason
    assert limits.open_total == 3 and limits.open_by_address() == {"10.0.0.1": 2, "10.0.0.2": 1}
    limits.release("10.0.0.1")
    limits.release("10.0.0.2")
    limits.acquire("10.0.0.3")
    assert limits.open_by_address() == {"10.0.0.1": 1, "10.0.0.3": 1}   # no entry left for 10.0.0.2


def test_no_limits_by_default():
    limits = ConnectionLimits()
    for _ in range(1000):
        limits.acquire("10.0.0.1")
    assert limits.open_total == 1000


def test_backoff_starts_after_threshold_failures_within_the_window_and_grows():
    backoff = AuthBackoff(threshold=5)
    for second in range(4):
        backoff.failed("10.0.0.1", 100.0 + second)
    assert backoff.retry_after("10.0.0.1", 104.0) == 0
    backoff.failed("10.0.0.1", 104.0)
    assert backoff.retry_after("10.0.0.1", 104.0) == AuthBackoff.FIRST_BLOCK
    assert backoff.retry_after("10.0.0.2", 104.0) == 0          # others are not affected
    assert backoff.retry_after("10.0.0.1", 104.0 + AuthBackoff.FIRST_BLOCK) == 0
    now = 200.0
    for _ in range(5):
        backoff.failed("10.0.0.1", now)
    assert backoff.retry_after("10.0.0.1", now) == 2 * AuthBackoff.FIRST_BLOCK
    for _ in range(20):   # tried again as soon as let: it keeps doubling, up to the cap
        now += backoff.retry_after("10.0.0.1", now) + 1
        for _ in range(5):
            backoff.failed("10.0.0.1", now)
    assert backoff.retry_after("10.0.0.1", now) == AuthBackoff.MAX_BLOCK


def test_failures_spread_wider_than_the_window_do_not_block():
    backoff = AuthBackoff(threshold=5)
    for n in range(50):
        backoff.failed("10.0.0.1", n * 20.0)   # one every 20 s: five span 80 s
    assert backoff.retry_after("10.0.0.1", 1000.0) == 0


def test_a_quiet_address_starts_over_at_the_first_block():
    backoff = AuthBackoff(threshold=2)
    for start in (0.0, 100.0):
        backoff.failed("a", start)
        backoff.failed("a", start)
    assert backoff.retry_after("a", 100.0) == 2 * AuthBackoff.FIRST_BLOCK
    later = 100.0 + AuthBackoff.FORGET_AFTER + 1000
    backoff.failed("a", later)
    backoff.failed("a", later)
    assert backoff.retry_after("a", later) == AuthBackoff.FIRST_BLOCK


def test_the_backoff_table_is_bounded():
    backoff = AuthBackoff(threshold=5)
    for n in range(AuthBackoff.MAX_ENTRIES + 500):
        backoff.failed("10.%d.%d.%d" % (n >> 16, (n >> 8) & 255, n & 255), float(n))
    assert len(backoff) == AuthBackoff.MAX_ENTRIES


def _head(path="/websockify", headers=()):
    return RequestHead("GET", path, (1, 1), list(headers))


def test_what_counts_as_a_failed_attempt():
    counts = wsproxy.counts_as_auth_failure
    assert not counts(_head(), 401, False)                                     # the first challenge
    assert counts(_head(headers=[("authorization", "Basic eDp5")]), 401, False)
    assert counts(_head(), 403, False)                                         # origin refused
    assert counts(_head("/websockify?token=guess"), 404, False)
    assert not counts(_head("/websockify"), 404, False)                        # no token named
    assert not counts(_head("/missing.js", [("cookie", "token=x")]), 404, False)   # a file
    assert not counts(_head(), 502, False)


def test_the_options_parse_and_refuse_negative_numbers():
    config = wsproxy.parse_args(["--max-connections", "10", "--max-connections-per-ip", "2",
                                 "--max-auth-failures", "5", "6080", "localhost:5900"])
    assert (config.max_connections, config.max_connections_per_ip, config.max_auth_failures) == (10, 2, 5)
    with pytest.raises(wsproxy.ConfigError, match="--max-connections-per-ip"):
        wsproxy.parse_args(["--max-connections-per-ip", "-1", "6080", "localhost:5900"])


# ---------------------------------------------------------------------------
# a real proxy
# ---------------------------------------------------------------------------


def _refused(port, headers=()):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(get_request("/websockify", list(upgrade_headers()) + list(headers)))
        return read_response(sock)


def _echoes(sock, buf):
    sock.sendall(ws_frame(0x2, b"ping"))
    while b"ping" not in buf:
        buf += sock.recv(4096)
    return True


def test_max_connections_answers_503_before_the_upgrade(start_proxy, echo_server):
    proxy = start_proxy("--max-connections", "2", "127.0.0.1:%d" % echo_server.port)
    first, buf1 = raw_websocket(proxy.port)
    second, buf2 = raw_websocket(proxy.port)
    try:
        response = _refused(proxy.port)
        assert response.status == 503
        assert b"connection limit (2)" in response.body
        assert echo_server.connections == 2                  # the third never reached the target
        log = proxy.wait_stderr(lambda text: "-> 503" in text)
        assert log.count("-> 503 the server has reached its connection limit (2)") == 1
        assert _echoes(first, buf1) and _echoes(second, buf2)   # the others are served on
    finally:
        first.close()
    # A freed slot is taken again (it is freed just after the close is logged).
    assert wait_until(lambda: _refused(proxy.port).status == 101, 5)
    second.close()


def test_max_connections_per_ip_answers_429(start_proxy, echo_server):
    proxy = start_proxy("--max-connections-per-ip", "1", "127.0.0.1:%d" % echo_server.port)
    first, buf = raw_websocket(proxy.port)
    try:
        response = _refused(proxy.port)
        assert response.status == 429
        assert b"too many connections from your address (limit 1)" in response.body
        assert "-> 429 too many connections" in proxy.wait_stderr(lambda text: "-> 429" in text)
        assert _echoes(first, buf)
    finally:
        first.close()


def test_repeated_wrong_passwords_get_429_with_retry_after(start_proxy, echo_server):
    proxy = start_proxy("--auth-plugin", "BasicHTTPAuth", "--auth-source", "user:secret",
                        "--max-auth-failures", "3", "127.0.0.1:%d" % echo_server.port)
    wrong = ("Authorization", "Basic " + base64.b64encode(b"user:guess").decode())
    right = ("Authorization", "Basic " + base64.b64encode(b"user:secret").decode())
    assert _refused(proxy.port).status == 401            # the challenge: not a failure
    assert [_refused(proxy.port, [wrong]).status for _ in range(3)] == [401, 401, 401]
    blocked = _refused(proxy.port, [right])              # even the right password waits now
    assert blocked.status == 429
    assert AuthBackoff.FIRST_BLOCK - 5 <= int(blocked.header("retry-after")) <= AuthBackoff.FIRST_BLOCK
    assert b"too many failed attempts from your address" in blocked.body
    assert echo_server.connections == 0
    log = proxy.wait_stderr(lambda text: "-> 429" in text)
    assert "-> 429 too many failed attempts" in log
