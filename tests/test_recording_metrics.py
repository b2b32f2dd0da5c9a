"""--record with --metrics-listen: /metrics counts the recordings (complete
or stopped early) and the bytes written to them, read from the recording
store at each scrape.  End to end: wsproxy.py between a real TigerVNC Xvnc
and an RFB client, /metrics checked by promtool, the numbers compared with
the recordings' files on disk."""

import os

import realpeers
from test_metrics import promtool_check, scrape, values
from test_recording import FULL_UPDATE, RfbClient, finished, recordings, server  # noqa: F401 -- a fixture


def recording_numbers(port: int) -> tuple:
    text = scrape(port)
    promtool_check(text)
    got = values(text)
    return (got['wsproxy_recordings_total{result="complete"}'], got['wsproxy_recordings_total{result="stopped"}'],
            got["wsproxy_recording_bytes_total"])


def test_recordings_and_their_bytes_are_counted(server, tmp_path):  # noqa: F811 -- the fixture
    _, vnc_port = server
    metrics_port = realpeers.free_port()
    with realpeers.proxy("--vnc", "127.0.0.1:%d" % vnc_port, "--record", str(tmp_path),
                         "--record-session-max-bytes", "100K", "--metrics-listen", str(metrics_port)) as wsp:
        realpeers.wait_for_port(metrics_port, proc=wsp.proc)
        assert recording_numbers(metrics_port) == (0, 0, 0)
        client = RfbClient(wsp.port)   # a login and no screen: well under the cap
        client.login()
        client.close()
        finished(wsp, 1)
        first = recordings(str(tmp_path))
        assert len(first) == 1
        assert recording_numbers(metrics_port) == (1, 0, os.path.getsize(first[0]))
        client = RfbClient(wsp.port)   # a full screen is 2.5 times the cap: stopped
        client.login()
        assert client.update() == FULL_UPDATE
        assert "stopped: the session size cap" in finished(wsp, 2)[1]
        client.close()
        total = sum(os.path.getsize(path) for path in recordings(str(tmp_path)))
        assert len(recordings(str(tmp_path))) == 2
        assert recording_numbers(metrics_port) == (1, 1, total)


def test_no_recording_metrics_without_record(server):  # noqa: F811 -- the fixture
    _, vnc_port = server
    metrics_port = realpeers.free_port()
    with realpeers.proxy("--vnc", "127.0.0.1:%d" % vnc_port, "--metrics-listen", str(metrics_port)) as wsp:
        realpeers.wait_for_port(metrics_port, proc=wsp.proc)
        assert "wsproxy_recording" not in scrape(metrics_port)
