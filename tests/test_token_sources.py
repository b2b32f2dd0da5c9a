"""Section 7's other token sources, their pure parts: websockify's
--token-source syntax, the RESP codec, stored values, HS-signed JWTs, the
outage log, and the directory plugins over tmp_path.  (Redis, the HTTP API,
RSA-signed JWTs and Unix socket directories have their own test files.)"""

import base64
import hashlib
import hmac
import json
import logging
import os
import time

import pytest

import wsproxy
from wsproxy import (ConfigError, HttpError, JwtKey, JwtRefused, RedisSource, RespError, RespProtocolError, Target,
                     parse_args, parse_redis_source, parse_resp, parse_target_value, resp_command,
                     split_source_args, verify_jwt)

pytestmark = pytest.mark.pure


# -- websockify's --token-source fields --------------------------------------------------


@pytest.mark.parametrize("text, fields", [
    ("", [""]),
    ("::", ["", "", ""]),
    ("redis.local", ["redis.local"]),
    ("h:6380:2:pw:ns", ["h", "6380", "2", "pw", "ns"]),
    ('h::::"app:prod"', ["h", "", "", "", "app:prod"]),       # a quoted field keeps its colons
    ('"::1":6379', ["::1", "6379"]),                          # so an IPv6 host can be written
    ('h:1:0:pa"ss:ns', ["h", "1", "0", 'pa"ss', "ns"]),       # a quote inside a field is a character
    ('"', ['"']),
    ('""', ['""']),                                           # an empty quoted field is not one
    ('"a:b:"c"', ['"a', "b", "c"]),                           # a quote must close before ':' or the end
    ('"a":b"', ["a", 'b"']),
])
def test_source_fields_split_as_websockify_splits_them(text, fields):
    assert split_source_args(text) == fields


@pytest.mark.parametrize("text, source", [
    ("redis", RedisSource("redis", 6379, 0, None, "")),
    ("10.0.0.5:6380", RedisSource("10.0.0.5", 6380, 0, None, "")),
    ("h::3", RedisSource("h", 6379, 3, None, "")),
    ("h:::s3cret", RedisSource("h", 6379, 0, "s3cret", "")),
    ("h::::app", RedisSource("h", 6379, 0, None, "app")),
    ('h:6380:1:"p:w":"a:b"', RedisSource("h", 6380, 1, "p:w", "a:b")),
    ('"::1":6380', RedisSource("::1", 6380, 0, None, "")),
])
def test_redis_source_defaults_and_fields(text, source):
    assert parse_redis_source(text) == source


@pytest.mark.parametrize("text, words", [
    ("h:1:2:3:4:5", ["HOST[:PORT[:DB[:PASSWORD[:NAMESPACE]]]]", "quote"]),
    ("h:http", ["PORT must be a number"]),
    ("h:70000", ["PORT must be a number"]),
    ("h:1:one", ["DB must be"]),
    (":6379", ["not a host name"]),
    ("/etc/tokens.conf", ["not a host name"]),
])
def test_bad_redis_sources_are_refused_with_the_format(text, words):
    with pytest.raises(ConfigError) as info:
        parse_redis_source(text)
    for word in words:
        assert word in str(info.value)
    assert "TokenRedis" in str(info.value)


def test_a_bad_redis_source_is_not_echoed_with_its_password():
    with pytest.raises(ConfigError) as info:
        parse_redis_source("h:63a79:0:hunter2:ns")
    assert "hunter2" not in str(info.value) and "'63a79'" in str(info.value)


def test_redis_key_is_namespace_colon_token():
    assert RedisSource("h", 1, 0, None, "").key("vm1") == b"vm1"
    assert RedisSource("h", 1, 0, None, "app:prod").key("vm1") == b"app:prod:vm1"


def test_redis_source_text_never_shows_the_password():
    text = str(parse_redis_source("h:6380:1:s3cret:ns"))
    assert "s3cret" not in text and "password set" in text and "h:6380" in text and "'ns'" in text


# -- RESP -------------------------------------------------------------------------------------


def test_commands_are_arrays_of_bulk_strings():
    assert resp_command(b"GET", b"a b\r\nDEL x") == b"*2\r\n$3\r\nGET\r\n$10\r\na b\r\nDEL x\r\n"


@pytest.mark.parametrize("wire, value", [
    (b"+OK\r\n", "OK"),
    (b"-WRONGPASS invalid\r\n", RespError("WRONGPASS invalid")),
    (b":42\r\n", 42),
    (b"$-1\r\n", None),
    (b"$0\r\n\r\n", b""),
    (b"$14\r\n127.0.0.1:5901\r\n", b"127.0.0.1:5901"),
    (b"$4\r\na\r\nb\r\n", b"a\r\nb"),
])
def test_replies_parse_whole_and_at_every_split(wire, value):
    assert parse_resp(wire) == (value, len(wire))
    assert parse_resp(wire + b"+next\r\n") == (value, len(wire))
    for split in range(len(wire)):
        assert parse_resp(wire[:split]) is None, split


@pytest.mark.parametrize("wire", [
    b"*1\r\n$1\r\na\r\n",              # arrays are never asked for
    b"$abc\r\n",
    b"$-2\r\n",
    b"$%d\r\n" % (wsproxy.MAX_TOKEN_VALUE + 1),
    b"$1\r\nabc\r\n",                   # the bulk string is longer than it said
    b"+" + b"x" * wsproxy.MAX_RESP_LINE,
])
def test_broken_replies_drop_the_connection(wire):
    with pytest.raises(RespProtocolError):
        parse_resp(wire)


# -- stored values ------------------------------------------------------------------------


@pytest.mark.parametrize("text, target, view_only", [
    ('{"host": "10.0.0.2:5901"}', Target("10.0.0.2", 5901), False),
    ('  {"host": "vm:5901"}  ', Target("vm", 5901), False),
    ('{"host": "vm", "port": 5901}', Target("vm", 5901), False),
    ('{"host": "vm", "port": "5901", "view_only": true}', Target("vm", 5901), True),
    ('{"host": "[::1]:5901"}', Target("::1", 5901), False),
    ('{"host": "::1", "port": 5901}', Target("::1", 5901), False),
    ('{"host": "unix_socket", "port": "/run/vm.sock"}', Target(unix_path="/run/vm.sock"), False),
    ("vm:5901", Target("vm", 5901), False),
    (" vm:5901\n", Target("vm", 5901), False),
    ("[::1]:5901", Target("::1", 5901), False),
    ("unix_socket:/run/vm.sock", Target(unix_path="/run/vm.sock"), False),
])
def test_values_in_websockifys_forms(text, target, view_only):
    assert parse_target_value(text) == (target, view_only)


@pytest.mark.parametrize("text", [
    "", "vm", "vm:http", "vm:0", '{"host": "vm:5901"', '["vm:5901"]', '{"port": 5901}',
    '{"host": "vm"}', '{"host": "vm", "port": true}', '{"host": "vm", "port": 70000}',
    '{"host": "vm:1", "view_only": "yes"}', '{"host": 5}',
])
def test_unusable_values_say_why(text):
    with pytest.raises(ValueError):
        parse_target_value(text)


def test_an_unusable_value_is_an_unknown_token_and_a_warning(caplog):
    with caplog.at_level(logging.WARNING, "wsproxy"):
        assert wsproxy.entry_from_value(b"\xff\xfe", "redis db 0", "secret-token") is None
        assert wsproxy.entry_from_value(b'{"host":', "redis db 0", "secret-token") is None
    assert len(caplog.records) == 2 and "sec..." in caplog.text and "secret-token" not in caplog.text


def test_entries_default_to_full_control():
    assert wsproxy.TokenEntry(Target("h", 1), "x").view_only is False
    assert wsproxy.TokenEntry(Target("h", 1), "x")._fields[-1] == "view_only"


# -- JWT with HMAC (RSA with PyJWT: test_token_jwt.py) ---------------------------------------

SECRET = b"0123456789abcdef0123456789abcdef"
HS_KEY = JwtKey("HS", secret=SECRET)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs_token(claims, alg="HS256", secret=SECRET, header=None):
    head = b64(json.dumps(header or {"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(alg, hashlib.sha256)
    signature = hmac.new(secret, ("%s.%s" % (head, body)).encode(), digest).digest()
    return "%s.%s.%s" % (head, body, b64(signature))


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_tokens_give_their_claims(alg):
    claims = {"host": "vm", "port": 5901, "exp": 2000, "nbf": 1000}
    assert verify_jwt(hs_token(claims, alg), HS_KEY, now=1500) == claims


@pytest.mark.parametrize("token, why", [
    (hs_token({"host": "vm", "port": 1}, secret=b"another secret, another signer!!"), "bad signature"),
    (hs_token({"host": "vm", "port": 1}).rsplit(".", 1)[0] + ".", "bad signature"),
    (hs_token({"host": "vm", "port": 1}, header={"alg": "none"}).rsplit(".", 1)[0] + ".", "alg none"),
    (hs_token({"host": "vm", "port": 1}, header={"alg": "None"}), "alg none"),
    (hs_token({"host": "vm", "port": 1}, header={"typ": "JWT"}), "alg none"),
    (hs_token({"host": "vm", "port": 1}, header={"alg": "RS256"}), "does not fit the key"),
    (hs_token({"host": "vm", "port": 1}, header={"alg": "ES256"}), "not supported"),
    (hs_token({"host": "vm", "port": 1}, header={"alg": "HS256", "crit": ["exp"]}), "critical"),
    (hs_token({"host": "vm", "port": 1}, header={"alg": "RSA-OAEP", "enc": "A256GCM"}), "JWE"),
    ("a.b.c.d.e", "JWE"),
    ("abc", "not a JWT"),
    ("a+b.c.d", "base64url"),
    (hs_token({"host": "vm", "port": 1, "exp": 1000}), "expired"),
    (hs_token({"host": "vm", "port": 1, "nbf": 2000}), "not valid yet"),
    (hs_token({"host": "vm", "port": 1, "exp": "tomorrow"}), "not a number"),
    (b64(b"[1]") + ".e30." + "x", "not a JSON object"),
])
def test_refused_tokens_say_why(token, why):
    with pytest.raises(JwtRefused) as info:
        verify_jwt(token, HS_KEY, now=1500)
    assert why in str(info.value)


def test_tampered_claims_break_the_signature():
    head, body, signature = hs_token({"host": "vm", "port": 1}).split(".")
    forged = b64(json.dumps({"host": "evil", "port": 22}).encode())
    with pytest.raises(JwtRefused, match="bad signature"):
        verify_jwt("%s.%s.%s" % (head, forged, signature), HS_KEY, now=0)


def jwt_source(tmp_path, secret=SECRET):
    key = tmp_path / "jwt.key"
    key.write_text(b64(secret) + "\n")   # websockify's key file: the secret in base64url
    return wsproxy.JWTTokenApi(str(key))


def test_jwt_source_resolves_host_port_and_view_only(tmp_path):
    source = jwt_source(tmp_path)
    assert source.name == "jwt"
    entry = source.lookup(hs_token({"host": "vm", "port": "5901", "view_only": True}))
    assert entry.target == Target("vm", 5901) and entry.view_only is True
    assert source.lookup(hs_token({"host": "::1", "port": 5901})).target == Target("::1", 5901)


@pytest.mark.parametrize("claims, why", [
    ({"host": "vm", "port": 1, "exp": time.time() - 60}, "token refused: token expired"),
    ({"port": 1}, "host and port"),
    ({"host": "vm", "port": 1, "view_only": 1}, "view_only"),
])
def test_jwt_source_refuses_with_403_and_why(tmp_path, claims, why):
    with pytest.raises(HttpError) as info:
        jwt_source(tmp_path).lookup(hs_token(claims))
    assert info.value.status == 403 and why in info.value.reason


def test_jwt_key_is_reread_when_it_changes(tmp_path):
    source = jwt_source(tmp_path)
    other = b"a second secret, rotated in, 32b"
    (tmp_path / "jwt.key").write_text(b64(other))
    os.utime(str(tmp_path / "jwt.key"), ns=(1, 1))
    assert source.lookup(hs_token({"host": "vm", "port": 1}, secret=other)).target == Target("vm", 1)
    with pytest.raises(HttpError):
        source.lookup(hs_token({"host": "vm", "port": 1}))


@pytest.mark.parametrize("content, why", [
    ("", "neither a PEM RSA key nor an HMAC secret"),
    ("not base64 at all!", "neither a PEM RSA key"),
    ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "openssl x509 -pubkey"),
    ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "its PUBLIC KEY block: "),
])
def test_unusable_key_files_stop_the_start(tmp_path, content, why):
    key = tmp_path / "jwt.key"
    key.write_text(content)
    with pytest.raises(ConfigError) as info:
        wsproxy.JWTTokenApi(str(key))
    assert why in str(info.value) and str(key) in str(info.value)


# -- the outage log: once per outage ------------------------------------------------------------


def test_an_outage_is_logged_once_and_its_end_once(caplog):
    health = wsproxy.SourceHealth("redis", "redis 10.0.0.1:6379 db 0")
    with caplog.at_level(logging.INFO, "wsproxy"):
        health.up()
        errors = [health.down("connection refused") for _ in range(50)]
        health.up()
        health.up()
    assert [e.status for e in errors] == [503] * 50
    assert "connection refused" in errors[0].reason and ("Retry-After", "2") in errors[0].headers
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "is down (connection refused)" in lines[0]
    assert "recovered" in lines[1] and "50 lookups answered 503" in lines[1]


# -- directories --------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", ".", "..", "../etc", "a/b", "/abs", "a\x00b"])
def test_tokens_that_are_not_one_name_reach_nothing(token):
    assert wsproxy.is_single_name(token) is False


def test_token_file_name_reads_one_file_per_token(tmp_path):
    (tmp_path / "vm1").write_text("10.0.0.1:5901\n")
    (tmp_path / "vm2").write_text('{"host": "[::1]:5902", "view_only": true}')
    (tmp_path / "vm1~").write_text("10.0.0.9:5909\n")
    (tmp_path / "sub").mkdir()
    os.mkfifo(str(tmp_path / "fifo"))     # opening it must not hang the lookup
    (tmp_path.parent / "outside").write_text("10.6.6.6:22\n")
    source = wsproxy.TokenFileName(str(tmp_path))
    assert source.name == "filename"
    assert source.lookup("vm1").target == Target("10.0.0.1", 5901)
    assert source.lookup("vm2") == wsproxy.TokenEntry(Target("::1", 5902), str(tmp_path), True)
    for token in ("vm1~", "sub", "fifo", "missing", "../outside", "..", "%2e%2e"):
        assert source.lookup(token) is None, token


def test_directory_plugins_need_a_directory(tmp_path):
    for plugin in ("TokenFileName", "UnixDomainSocketDirectory"):
        with pytest.raises(ConfigError, match="not a directory"):
            wsproxy.make_token_source(plugin, str(tmp_path / "missing"))


# -- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize("plugin, source, words", [
    ("TokenRedis", "redis:notaport", ["TokenRedis", "PORT must be a number"]),
    ("websockify.token_plugins.TokenRedis", "a:1:2:3:4:5", ["HOST[:PORT[:DB"]),
    ("JSONTokenApi", "http://api/lookup", ["%s"]),
    ("BaseTokenAPI", "ftp://api/%s", ["http:// or https://"]),
    ("JSONTokenApi", "http://api/%s?x=%d", ["exactly one %s"]),
    ("TokenFileName", "{missing}", ["TokenFileName", "not a directory"]),
    ("UnixDomainSocketDirectory", "{missing}", ["not a directory"]),
    ("JWTTokenApi", "{missing}", ["does not exist"]),
])
def test_a_wrong_token_source_is_a_clear_startup_error(tmp_path, plugin, source, words):
    source = source.replace("{missing}", str(tmp_path / "missing"))
    with pytest.raises(ConfigError) as info:
        parse_args(["--token-plugin", plugin, "--token-source", source, "6080"])
    for word in words:
        assert word in str(info.value), str(info.value)


@pytest.mark.parametrize("plugin, source", [
    ("TokenRedis", "127.0.0.1:6379:1:pw:ns"),
    ("websockify.token_plugins.JSONTokenApi", "https://api.example/lookup?token=%s"),
    ("BaseTokenAPI", "http://api.example/t/%s"),
])
def test_websockify_spellings_are_accepted(plugin, source):
    config = parse_args(["--token-plugin", plugin, "--token-source", source, "6080"])
    assert config.token_plugin == plugin.rsplit(".", 1)[-1] and config.token_source == source


def test_help_lists_every_plugin():
    text = wsproxy.build_parser().format_help()
    for plugin in wsproxy.TOKEN_PLUGINS:
        assert plugin in text
    assert "HOST[:PORT[:DB[:PASSWORD[:NAMESPACE]]]]" in text


def test_every_source_has_a_name_for_metrics(tmp_path):
    names = {cls.name for cls in wsproxy.TOKEN_SOURCES.values()} | {wsproxy.TokenFile.name}
    assert names == {"file", "filename", "redis", "api", "jwt", "unix-directory"}
