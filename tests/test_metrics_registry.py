"""The metrics registry and ProxyMetrics (issue 14), without sockets: the
Prometheus text exposition format 0.0.4 (HELP/TYPE, label escaping,
histogram buckets), thread safety, bounded label sets, and what each of the
server's calls counts."""

import re
import threading

import pytest

import wsproxy
from wsproxy import MetricsRegistry, ProxyMetrics

pytestmark = pytest.mark.pure

# One sample line of the text format: name, optional {labels}, a value.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? '
                    r'(-?[0-9.e+-]+|\+Inf|-Inf|NaN)$')


def samples(text: str) -> dict:
    """{'name{labels}': value} of every sample line; checks each line's shape."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, "not a valid sample line: %r" % line
        out[line.rsplit(" ", 1)[0]] = float(line.rsplit(" ", 1)[1])
    return out


def test_counter_gauge_and_their_help_and_type_lines():
    r = MetricsRegistry()
    r.counter("jobs_total", "Jobs done", ["kind"])
    r.gauge("queue_depth", "Jobs waiting")
    r.inc("jobs_total", kind="a")
    r.inc("jobs_total", 2, kind="a")
    r.inc("jobs_total", kind="b")
    r.set("queue_depth", 7)
    r.inc("queue_depth", -2)
    text = r.render()
    assert text.endswith("\n")
    lines = text.splitlines()
    assert lines[:4] == ["# HELP jobs_total Jobs done", "# TYPE jobs_total counter",
                         'jobs_total{kind="a"} 3', 'jobs_total{kind="b"} 1']
    assert lines[4:] == ["# HELP queue_depth Jobs waiting", "# TYPE queue_depth gauge", "queue_depth 5"]
    assert r.value("jobs_total", kind="a") == 3 and r.value("jobs_total", kind="zzz") == 0


def test_label_values_and_help_are_escaped():
    r = MetricsRegistry()
    r.counter("odd_total", "Help with \\ and\nnewline", ["what"])
    r.inc("odd_total", what='back\\slash "quoted"\nnext line')
    text = r.render()
    assert "# HELP odd_total Help with \\\\ and\\nnewline\n" in text
    assert 'odd_total{what="back\\\\slash \\"quoted\\"\\nnext line"} 1\n' in text
    assert len(text.splitlines()) == 3   # the newline in the value did not split the sample
    samples(text)


def test_histogram_buckets_are_cumulative_with_inf_sum_and_count():
    r = MetricsRegistry()
    r.histogram("wait_seconds", "Waits", [0.1, 1, 10], ["who"])
    for value in (0.05, 0.1, 0.5, 3, 30):
        r.observe("wait_seconds", value, who="x")
    got = samples(r.render())
    assert got == {'wait_seconds_bucket{who="x",le="0.1"}': 2, 'wait_seconds_bucket{who="x",le="1.0"}': 3,
                   'wait_seconds_bucket{who="x",le="10.0"}': 4, 'wait_seconds_bucket{who="x",le="+Inf"}': 5,
                   'wait_seconds_sum{who="x"}': pytest.approx(33.65), 'wait_seconds_count{who="x"}': 5}
    assert r.value("wait_seconds", who="x") == (5, pytest.approx(33.65))


def test_unlabelled_series_start_at_zero_and_labelled_ones_appear_when_used():
    r = MetricsRegistry()
    r.counter("plain_total", "p")
    r.counter("split_total", "s", ["k"])
    r.histogram("h_seconds", "h", [1])
    assert samples(r.render()) == {"plain_total": 0, 'h_seconds_bucket{le="1.0"}': 0,
                                   'h_seconds_bucket{le="+Inf"}': 0, "h_seconds_sum": 0, "h_seconds_count": 0}


def test_numbers_are_written_as_the_format_reads_them():
    assert [wsproxy._number_text(v) for v in (0, 3, 2.5, 1e20, float("inf"), float("-inf"), float("nan"))] == \
        ["0", "3", "2.5", "1e+20", "+Inf", "-Inf", "NaN"]


@pytest.mark.parametrize("call", [
    lambda r: r.inc("c_total", -1),                     # a counter never goes down
    lambda r: r.inc("c_total", k="x"),                  # labels it does not have
    lambda r: r.observe("c_total", 1),                  # not a histogram
    lambda r: r.inc("nope"),                            # not declared
    lambda r: r.counter("c_total", "again"),            # declared twice
    lambda r: r.counter("bad-name", "x"),               # not a metric name
    lambda r: r.histogram("h", "x", [2, 1]),            # buckets must increase
    lambda r: r.histogram("h", "x", [1], ["le"]),       # le is the bucket's label
])
def test_mistakes_are_programming_errors(call):
    r = MetricsRegistry()
    r.counter("c_total", "c")
    with pytest.raises(ValueError):
        call(r)


def test_label_sets_are_bounded():
    r = MetricsRegistry()
    r.counter("c_total", "c", ["k"])
    for n in range(wsproxy.MAX_METRIC_SERIES + 50):
        r.inc("c_total", k="v%d" % n)
    got = samples(r.render())
    assert len(got) == wsproxy.MAX_METRIC_SERIES
    assert got['c_total{k="other"}'] == 51   # the last slot, then every later new value
    assert sum(got.values()) == wsproxy.MAX_METRIC_SERIES + 50


def test_increments_from_many_threads_are_not_lost():
    r = MetricsRegistry()
    r.counter("c_total", "c", ["k"])
    r.histogram("h_seconds", "h", [0.5])

    def work():
        for _ in range(2000):
            r.inc("c_total", k="x")
            r.observe("h_seconds", 1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert r.value("c_total", k="x") == 16000 and r.value("h_seconds") == (16000, 16000.0)


def test_collectors_run_under_the_lock_at_each_render():
    r = MetricsRegistry()
    r.gauge("now", "n")
    calls = []
    r.add_collector(lambda reg: (calls.append(1), reg.set("now", len(calls))))
    assert "now 1\n" in r.render() and "now 2\n" in r.render()


# -- ProxyMetrics: what the server's calls count -------------------------------


def _stats(up=0, down=0, code=1000):
    stats = wsproxy.RelayStats()
    stats.bytes_up, stats.bytes_down, stats.close_code = up, down, code
    return stats


def test_proxy_metrics_count_what_the_server_reports():
    m = ProxyMetrics(process=lambda: {"process_open_fds": 9, "wsproxy_threads": 4})
    m.connection(1)
    m.connection(1)
    m.connection(-1)
    m.replied(200, False)
    m.replied(404, True)                    # an upgrade refused: a handshake failure too
    m.replied(426, True)
    m.handshake_failed("tls")
    live, done = _stats(up=10, down=20), _stats(up=5, down=7, code=4321)
    m.session_opened(live)
    m.session_opened(done)
    m.session_closed(done, 42.0)
    live.bytes_up += 100                    # an open session's bytes count as they flow
    m.token_lookup("file", "hit", 0.0002)
    m.token_lookup("file", "miss", 0.0002)
    got = samples(m.render())
    assert got["wsproxy_connections_open"] == 1
    assert got["wsproxy_websocket_sessions_open"] == 1
    assert got['wsproxy_requests_total{outcome="http_200"}'] == 1
    assert got['wsproxy_requests_total{outcome="http_404"}'] == 1
    assert got['wsproxy_requests_total{outcome="ws_other"}'] == 1   # a client's private code: no label of its own
    assert got['wsproxy_handshake_failures_total{reason="unknown_token"}'] == 1
    assert got['wsproxy_handshake_failures_total{reason="bad_version"}'] == 1
    assert got['wsproxy_handshake_failures_total{reason="tls"}'] == 1
    assert got['wsproxy_bytes_total{direction="client_to_target"}'] == 115
    assert got['wsproxy_bytes_total{direction="target_to_client"}'] == 27
    assert got['wsproxy_token_lookups_total{source="file",result="hit"}'] == 1
    assert got['wsproxy_token_lookup_seconds_count{source="file"}'] == 2
    assert got["wsproxy_session_duration_seconds_count"] == 1
    assert got['wsproxy_session_duration_seconds_bucket{le="60.0"}'] == 1
    assert got['wsproxy_session_duration_seconds_bucket{le="10.0"}'] == 0
    assert got["process_open_fds"] == 9 and got["wsproxy_threads"] == 4
    # Bytes stay monotonic when the open session ends: moved, not counted twice.
    m.session_closed(live, 1.0)
    after = samples(m.render())
    assert after['wsproxy_bytes_total{direction="client_to_target"}'] == 115
    assert after['wsproxy_requests_total{outcome="ws_1000"}'] == 1


def test_close_outcome_and_failure_reason_labels_come_from_fixed_sets():
    assert wsproxy.close_outcome(1001) == "ws_1001"
    assert wsproxy.close_outcome(3000) == wsproxy.close_outcome(4999) == "ws_other"
    assert {wsproxy.failure_reason(s) for s in range(100, 600)} <= set(wsproxy.FAILURE_REASONS.values()) | {"other"}
    assert wsproxy.failure_reason(401) == wsproxy.failure_reason(403) == "auth"
    assert wsproxy.failure_reason(502) == "target_unreachable"


class _Source:
    name = "redis"

    def __init__(self, answer):
        self.answer = answer

    def lookup(self, token):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_metered_tokens_count_hits_misses_and_errors_by_source():
    m = ProxyMetrics()
    entry = object()
    assert wsproxy.MeteredTokens(_Source(entry), m).lookup("a") is entry
    assert wsproxy.MeteredTokens(_Source(None), m).lookup("b") is None
    with pytest.raises(OSError):
        wsproxy.MeteredTokens(_Source(OSError("down")), m).lookup("c")
    r = m.registry
    assert [r.value("wsproxy_token_lookups_total", source="redis", result=x) for x in ("hit", "miss", "error")] == [1, 1, 1]
    assert r.value("wsproxy_token_lookup_seconds", source="redis")[0] == 3
    labels = set(re.findall(r'="([^"]*)"', m.render()))
    assert not labels & {"a", "b", "c"}, "no token becomes a label value"


def _head(path, method="GET"):
    return wsproxy.parse_request_head(("%s %s HTTP/1.1\r\nHost: x\r\n\r\n" % (method, path)).encode())


def test_metrics_listener_replies():
    m = ProxyMetrics()
    ok = wsproxy.metrics_reply(_head("/metrics"), m)
    assert ok.startswith(b"HTTP/1.1 200 ") and b"Content-Type: text/plain; version=0.0.4; charset=utf-8" in ok
    assert b"# TYPE wsproxy_connections_open gauge" in ok
    assert wsproxy.metrics_reply(_head("/healthz"), m).endswith(b"\r\n\r\nok\n")
    m.draining = True
    assert wsproxy.metrics_reply(_head("/healthz"), m).startswith(b"HTTP/1.1 503 ")
    assert wsproxy.metrics_reply(_head("/other"), m).startswith(b"HTTP/1.1 404 ")
    assert wsproxy.metrics_reply(_head("/metrics", "POST"), m).startswith(b"HTTP/1.1 405 ")
    assert wsproxy.metrics_reply(_head("/metrics", "HEAD"), m).endswith(b"\r\n\r\n")
