"""BaseTokenAPI and JSONTokenApi against a local http.server thread (plain,
slow, failing, and HTTPS with a self-signed certificate made by openssl),
then UnixDomainSocketDirectory; in process and through the proxy."""

import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import realpeers
import wsproxy
from conftest import EchoServer, upgrade_status
from wsproxy import HttpError, Target


class TokenApi:
    """An HTTP token API on 127.0.0.1: /json?token=T and /plain/T answer from
    ``targets``; ``mode`` "ok", "fail" (HTTP 500) or "slow" (answers after 5 s)."""

    def __init__(self, context=None):
        self.targets = {}
        self.mode = "ok"
        self.paths = []
        self.authorization = None
        self.redirect_to = ""
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                api.paths.append(self.path)
                api.authorization = self.headers.get("Authorization")
                if api.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", api.redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                if api.mode == "slow":
                    time.sleep(5)
                if api.mode == "fail":
                    return self._reply(500, "text/plain", "database on fire")
                parts = urllib.parse.urlsplit(self.path)
                if parts.path == "/json":
                    token = urllib.parse.parse_qs(parts.query).get("token", [""])[0]
                    target = api.targets.get(token)
                    body = json.dumps(target) if isinstance(target, dict) else None
                else:
                    target = api.targets.get(urllib.parse.unquote(parts.path[len("/plain/"):]))
                    body = "%s:%d\n" % target if isinstance(target, tuple) else None
                if body is None:
                    return self._reply(404, "text/plain", "no such token")
                self._reply(200, "application/json", body)

            def _reply(self, status, kind, body):
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass   # the client gave up (the slow mode)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.scheme = "https" if context else "http"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, kind="json", host="127.0.0.1"):
        return "%s://%s:%d/%s" % (self.scheme, host, self.port, "json?token=%s" if kind == "json" else "plain/%s")

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@pytest.fixture
def api():
    server = TokenApi()
    yield server
    server.close()


@pytest.fixture(scope="module")
def localhost_cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and localhost (with SANs, as verification needs)."""
    openssl = realpeers.require_tool("openssl")
    where = tmp_path_factory.mktemp("api-tls")
    cert, key = str(where / "api.pem"), str(where / "api.key")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_json_and_plain_replies(api):
    api.targets["vm1"] = {"host": "10.0.0.1", "port": 5901, "view_only": True}
    api.targets["vm2"] = ("10.0.0.2", 5902)
    api.targets["v6"] = {"host": "::1", "port": "5903"}
    json_source = wsproxy.JSONTokenApi(api.url())
    plain_source = wsproxy.make_token_source("BaseTokenAPI", api.url("plain"))
    assert json_source.name == plain_source.name == "api"
    entry = json_source.lookup("vm1")
    assert entry.target == Target("10.0.0.1", 5901) and entry.view_only is True
    assert json_source.lookup("v6").target == Target("::1", 5903)
    assert plain_source.lookup("vm2").target == Target("10.0.0.2", 5902)
    assert json_source.lookup("nope") is None and plain_source.lookup("nope") is None   # the API's 404


def test_the_token_is_quoted_into_the_url(api):
    source = wsproxy.BaseTokenAPI(api.url("plain"))
    assert source.lookup("a&b=c/../admin?x#y") is None
    assert api.paths == ["/plain/a%26b%3Dc%2F..%2Fadmin%3Fx%23y"]


def test_credentials_in_the_url_go_as_basic_auth_and_not_through_redirects(api):
    elsewhere = TokenApi()
    try:
        elsewhere.targets["vm1"] = {"host": "10.0.0.1", "port": 5901}
        source = wsproxy.JSONTokenApi(api.url().replace("//", "//wsproxy:p%%40ss@"))
        assert "p@ss" not in source.describe() and "wsproxy" not in source.describe()
        api.redirect_to = "http://127.0.0.1:%d" % elsewhere.port
        assert source.lookup("vm1").target == Target("10.0.0.1", 5901)
        assert api.authorization == "Basic d3Nwcm94eTpwQHNz"      # wsproxy:p@ss
        assert elsewhere.paths == ["/json?token=vm1"] and elsewhere.authorization is None
    finally:
        elsewhere.close()


def test_a_failing_unreachable_or_slow_api_is_503_in_bounded_time(api, caplog):
    api.targets["vm1"] = {"host": "10.0.0.1", "port": 5901}
    source = wsproxy.JSONTokenApi(api.url())
    api.mode = "fail"
    with pytest.raises(HttpError) as info:
        source.lookup("vm1")
    assert info.value.status == 503 and "HTTP 500 from the API" in info.value.reason
    api.mode = "slow"
    started = time.monotonic()
    with pytest.raises(HttpError) as info:
        source.lookup("vm1")
    assert time.monotonic() - started < wsproxy.TOKEN_LOOKUP_TIMEOUT + 1.0
    assert info.value.status == 503 and "no answer within 2s" in info.value.reason
    api.mode = "ok"
    assert source.lookup("vm1").target == Target("10.0.0.1", 5901)
    nobody = wsproxy.JSONTokenApi("http://127.0.0.1:%d/t/%%s" % realpeers.free_port())
    with pytest.raises(HttpError) as info:
        nobody.lookup("vm1")
    assert info.value.status == 503 and "connection refused" in info.value.reason
    assert "127.0.0.1" not in info.value.reason      # the browser is not told where the API is


def test_https_is_verified(localhost_cert, monkeypatch, start_proxy, echo_server):
    cert, key = localhost_cert
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    api = TokenApi(context)
    try:
        api.targets["vm1"] = {"host": "127.0.0.1", "port": echo_server.port}
        source = wsproxy.JSONTokenApi(api.url())
        with pytest.raises(HttpError) as info:   # not signed by a CA we trust
            source.lookup("vm1")
        assert info.value.status == 503 and "certificate verify failed" in info.value.reason
        monkeypatch.setenv("SSL_CERT_FILE", cert)
        assert source.lookup("vm1").target == Target("127.0.0.1", echo_server.port)
        assert wsproxy.JSONTokenApi(api.url(host="localhost")).lookup("vm1").target.port == echo_server.port
        # the proxy's connection threads (small stacks) do the TLS handshake too
        proxy = start_proxy("--token-plugin", "JSONTokenApi", "--token-source", api.url(), env={"SSL_CERT_FILE": cert})
        assert upgrade_status(proxy, "vm1") == (101, b"hello")
    finally:
        api.close()


@pytest.mark.slow
def test_through_the_proxy_outage_and_recovery(api, start_proxy, echo_server):
    api.targets["vm1"] = {"host": "127.0.0.1", "port": echo_server.port}
    proxy = start_proxy("--token-plugin", "websockify.token_plugins.JSONTokenApi", "--token-source",
                        api.url().replace("127.0.0.1", "user:pw@127.0.0.1") + "&key=apikey")
    banner = proxy.stdout
    assert "targets: by token from API http://127.0.0.1:%d/json (JSONTokenApi)" % api.port in banner
    assert "apikey" not in banner and "pw@" not in banner
    assert upgrade_status(proxy, "vm1") == (101, b"hello")
    assert upgrade_status(proxy, "vm9")[0] == 404
    api.mode = "fail"
    for _ in range(5):
        status, body = upgrade_status(proxy, "vm1")
        assert status == 503 and "the token store (api) is unavailable: HTTP 500 from the API" in body
    api.mode = "slow"
    started = time.monotonic()
    assert upgrade_status(proxy, "vm1")[0] == 503
    assert time.monotonic() - started < 3.0
    api.mode = "ok"
    assert upgrade_status(proxy, "vm1") == (101, b"hello")
    log = proxy.stderr
    assert log.count("is down (") == 1 and log.count("recovered after") == 1, log
    assert "6 lookups answered 503 meanwhile" in log
    assert "apikey" not in log
    assert api.authorization == "Basic dXNlcjpwdw=="    # user:pw, sent as websockify's requests sends it


# -- UnixDomainSocketDirectory ------------------------------------------------------------------


def test_unix_socket_directory(tmp_path, start_proxy):
    sockets = tmp_path / "sockets"
    sockets.mkdir()
    vm = EchoServer(socket.AF_UNIX, str(sockets / "vm1"))
    outside = EchoServer(socket.AF_UNIX, str(tmp_path / "outside"))
    (sockets / "plain-file").write_text("not a socket")
    try:
        source = wsproxy.UnixDomainSocketDirectory(str(sockets))
        assert source.name == "unix-directory"
        assert source.lookup("vm1").target == Target(unix_path=str(sockets / "vm1"))
        for token in ("../outside", "..", "plain-file", "missing", "", "vm1/"):
            assert source.lookup(token) is None, token
        proxy = start_proxy("--token-plugin", "UnixDomainSocketDirectory", "--token-source", str(sockets))
        assert upgrade_status(proxy, "vm1") == (101, b"hello")
        assert upgrade_status(proxy, "..%2Foutside")[0] == 404
        assert vm.connections == 1 and outside.connections == 0
    finally:
        vm.close()
        outside.close()
