"""Section 13: websockify command lines to Config, the errors people see, and how the script starts."""

import contextlib
import io
import os
import re
import socket
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsproxy
from wsproxy import ConfigError, Target, parse_args

pytestmark = pytest.mark.pure

WSPROXY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "wsproxy.py")


@pytest.fixture
def files(tmp_path):
    """Paths that exist, for options that check the filesystem."""
    tokens = tmp_path / "tokens.conf"
    tokens.write_text("vm1: localhost:5901\n")
    tokens_dir = tmp_path / "tokens.d"
    tokens_dir.mkdir()
    cert = tmp_path / "server.pem"
    cert.write_text("not checked until the server starts")
    key = tmp_path / "server.key"
    key.write_text("")
    web = tmp_path / "web"
    web.mkdir()
    return {"tokens": str(tokens), "tokens_dir": str(tokens_dir), "cert": str(cert), "key": str(key),
            "web": str(web), "missing": str(tmp_path / "missing"), "sock": str(tmp_path / "vnc.sock")}


def fill(argv, files):
    return [arg.format(**files) for arg in argv]


def config_error(argv):
    with pytest.raises(ConfigError) as info:
        parse_args(argv)
    return str(info.value)


# -- websockify command lines that work ------------------------------------------------


def test_port_and_target():
    config = parse_args(["6080", "localhost:5901"])
    assert (config.listen_host, config.listen_port) == ("", 6080)
    assert config.target == Target("localhost", 5901)
    assert config.token_source == "" and config.unix_listen == ""
    assert not config.daemon and not config.ssl_only


def test_ipv6_listen_and_target():
    config = parse_args(["[::1]:6080", "[::1]:5901"])
    assert (config.listen_host, config.listen_port) == ("::1", 6080)
    assert config.target == Target("::1", 5901)


def test_bare_ipv6_target():
    assert parse_args(["6080", "fe80::1:5901"]).target == Target("fe80::1", 5901)


def test_colon_port_listens_everywhere():
    config = parse_args([":6080", "localhost:5901"])
    assert (config.listen_host, config.listen_port) == ("", 6080)


def test_host_and_port_to_listen_on():
    config = parse_args(["127.0.0.1:6081", "10.1.2.3:5900"])
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 6081)
    assert config.target == Target("10.1.2.3", 5900)


def test_novnc_proxy_style_listen_and_vnc():
    config = parse_args(["--listen", "6080", "--vnc", "localhost:5901"])
    assert config.listen_port == 6080
    assert config.target == Target("localhost", 5901)


def test_vnc_alone_listens_on_6080_like_novnc_proxy():
    config = parse_args(["--vnc", "localhost:5901"])
    assert (config.listen_host, config.listen_port) == ("", 6080)
    assert (config.target.host, config.target.port) == ("localhost", 5901)


def test_listen_option_with_positional_target():
    config = parse_args(["--listen", "0.0.0.0:6090", "localhost:5901"])
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 6090)
    assert config.target == Target("localhost", 5901)


def test_options_may_follow_the_addresses():
    # Dead clients are found by default (issue 10.12); 0 turns the heartbeat off.
    assert parse_args(["6080", "localhost:5901"]).heartbeat == 30
    assert parse_args(["6080", "localhost:5901", "--heartbeat", "0"]).heartbeat == 0
    config = parse_args(["6080", "localhost:5901", "--heartbeat", "30", "--idle-timeout", "600", "-v"])
    assert config.heartbeat == 30 and config.idle_timeout == 600 and config.verbose


@pytest.mark.parametrize("argv", [
    ["6080", "--web", "{web}", "localhost:5901"],                 # websockify's optparse takes these
    ["127.0.0.1:6080", "--web", "{web}", "127.0.0.1:5901"],
    ["6080", "-v", "localhost:5901", "--web", "{web}"],
])
def test_options_may_sit_between_the_addresses(files, argv):
    config = parse_args(fill(argv, files))
    assert config.listen_port == 6080 and config.target.port == 5901 and config.web == files["web"]


@pytest.mark.parametrize("argv, plugin", [
    (["--token-plugin", "TokenFile", "--token-source", "{tokens}", "6080"], "TokenFile"),
    (["--token-plugin", "ReadOnlyTokenFile", "--token-source", "{tokens}", "6080"], "ReadOnlyTokenFile"),
    (["--token-source", "{tokens}", "6080"], "TokenFile"),
    (["--target-config", "{tokens}", "6080"], "TokenFile"),          # websockify's legacy spelling
    (["--token-plugin", "TokenFile", "--token-source", "{tokens_dir}", "6080"], "TokenFile"),
])
def test_token_sources(files, argv, plugin):
    config = parse_args(fill(argv, files))
    assert config.token_plugin == plugin
    assert config.token_source in (files["tokens"], files["tokens_dir"])
    assert config.target is None
    assert config.listen_port == 6080


def test_host_token_with_a_token_source(files):
    config = parse_args(["--token-source", files["tokens"], "--host-token", "6080"])
    assert config.host_token


@pytest.mark.skipif(os.name != "posix" or not hasattr(os, "fork"), reason="POSIX only")
@pytest.mark.parametrize("flag", ["--daemon", "-D"])
def test_daemon_is_accepted_on_posix(flag):
    assert parse_args([flag, "6080", "localhost:5901"]).daemon


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")
def test_unix_listen_and_unix_target(files):
    config = parse_args(["--unix-listen", files["sock"], "localhost:5901"])
    assert config.unix_listen == files["sock"]
    assert config.target == Target("localhost", 5901)
    config = parse_args(["--unix-target", files["sock"], "6080"])
    assert config.target == Target(unix_path=files["sock"])
    assert config.listen_port == 6080


def test_tls_options(files):
    config = parse_args(["--cert", files["cert"], "--key", files["key"], "--ssl-only",
                         "--ssl-version", "tlsv1_3", "443", "localhost:5901"])
    assert (config.cert, config.key, config.ssl_only, config.ssl_version) == (
        files["cert"], files["key"], True, "tlsv1_3")
    assert parse_args(["--cert", files["cert"], "6080", "h:1"]).ssl_version == "tlsv1_2"


def test_web_options(files):
    assert parse_args(["--web", files["web"], "6080", "h:1"]).web == files["web"]
    assert parse_args(["--no-web", "6080", "h:1"]).web is None
    assert parse_args(["--file-only", "6080", "h:1"]).target == Target("h", 1)  # accepted, no effect


def test_default_web_is_the_directory_beside_wsproxy():
    beside = os.path.join(os.path.dirname(WSPROXY), "web")
    expected = beside if os.path.isdir(beside) else None
    assert parse_args(["6080", "h:1"]).web == expected


def test_access_control_and_limits():
    config = parse_args(["--auth-plugin", "BasicHTTPAuth", "--auth-source", "user:pa:ss", "--web-auth",
                         "--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "::1",
                         "--max-message-size", "1024", "6080", "h:1"])
    assert (config.auth_plugin, config.auth_source, config.web_auth) == ("BasicHTTPAuth", "user:pa:ss", True)
    # Parsed once, here: the server gets the networks (host bits of a network are dropped).
    assert [str(network) for network in config.trusted_proxies] == ["10.0.0.0/8", "::1/128"]
    assert [str(network) for network in parse_args(["--trusted-proxy", "10.1.2.3/8", "6080", "h:1"])
            .trusted_proxies] == ["10.0.0.0/8"]
    assert config.max_message_size == 1024
    config = parse_args(["--auth-plugin", "ExpectOrigin", "--auth-source", "https://a https://b", "6080", "h:1"])
    assert config.auth_plugin == "ExpectOrigin"


# -- websockify 0.13 options that used to fail (issue 13 item 4) ----------------------------


@pytest.mark.parametrize("argv, expected", [
    (["--syslog", "/dev/log", "6080", "h:1"], {"syslog": "/dev/log", "listen_port": 6080}),
    (["--syslog", "logs.example:514", "6080", "h:1"], {"syslog": "logs.example:514"}),
    (["--syslog", "[::1]:514", "--legacy-syslog", "6080", "h:1"], {"syslog": "[::1]:514", "legacy_syslog": True}),
    (["6080", "h:1", "--syslog"], {"syslog": "/dev/log"}),             # wsproxy's earlier flag form
    (["-6", "localhost:6080", "h:1"], {"prefer_ipv6": True, "listen_host": "localhost"}),
    (["--prefer-ipv6", "6080", "h:1"], {"prefer_ipv6": True}),
    (["--run-once", "6080", "h:1"], {"run_once": True}),
    (["--traffic", "6080", "h:1"], {"traffic": True}),
    (["--libserver", "6080", "h:1"], {"target": Target("h", 1)}),
    (["--inetd", "h:1"], {"inetd": True, "target": Target("h", 1)}),
    (["--inetd", "--vnc", "h:1"], {"inetd": True, "target": Target("h", 1)}),
    (["--unix-listen", "{sock}", "--unix-listen-mode", "0660", "h:1"], {"unix_listen_mode": 0o660}),
    (["--unix-listen", "{sock}", "--unix-listen-mode", "606", "h:1"], {"unix_listen_mode": 0o606}),
    (["--unix-listen", "{sock}", "h:1"], {"unix_listen_mode": 0o600}),   # websockify's default
    (["--cert", "{cert}", "--key-password", "secret", "6080", "h:1"], {"key_password": "secret"}),
    (["--cert", "{cert}", "--verify-client", "--cafile", "{cert}", "6080", "h:1"],
     {"verify_client": True, "cafile": "{cert}", "ssl_only": True}),   # plain clients would bypass the check
    (["--cert", "{cert}", "--ssl-version", "default", "6080", "h:1"], {"ssl_version": "tlsv1_2"}),
    (["--cert", "{cert}", "--ssl-version", "TLSv1_3", "6080", "h:1"], {"ssl_version": "tlsv1_3"}),
    (["--token-plugin", "websockify.token_plugins.TokenFile", "--token-source", "{tokens}", "6080"],
     {"token_plugin": "TokenFile"}),
    (["--token-plugin", "websockify.token_plugins.ReadOnlyTokenFile", "--token-source", "{tokens}", "6080"],
     {"token_plugin": "ReadOnlyTokenFile"}),
    (["--auth-plugin", "websockify.auth_plugins.BasicHTTPAuth", "--auth-source", "u:p", "6080", "h:1"],
     {"auth_plugin": "BasicHTTPAuth"}),
    (["--auth-plugin", "websockify.auth_plugins.ExpectOrigin", "--auth-source", "https://a", "6080", "h:1"],
     {"auth_plugin": "ExpectOrigin"}),
    (["6080", "localhost:5901", "--", "Xvnc", ":1", "-rfbport", "5901"],
     {"wrap_command": ("Xvnc", ":1", "-rfbport", "5901"), "wrap_mode": "exit", "target": Target("localhost", 5901)}),
    (["--wrap-mode", "respawn", "6080", "localhost:5901", "--", "x11vnc", "--", "-v"],
     {"wrap_command": ("x11vnc", "--", "-v"), "wrap_mode": "respawn"}),   # a later -- is the program's
    (["--wrap-mode=ignore", "6080", "localhost:5901", "--", "x11vnc"], {"wrap_mode": "ignore"}),
])
def test_websockify_options_are_accepted(files, argv, expected):
    config = parse_args(fill(argv, files))
    for name, value in expected.items():
        if isinstance(value, str):
            value = value.format(**files)
        assert getattr(config, name) == value, name


@pytest.mark.parametrize("argv, fragments", [
    (["--syslog", "6080", "h:1"], ["--syslog 6080", "--syslog /dev/log"]),
    (["--syslog", "logs.example:syslog", "6080", "h:1"], ["--syslog server", "port"]),
    (["--legacy-syslog", "6080", "h:1"], ["--legacy-syslog needs --syslog"]),
    (["--inetd", "6080", "h:1"], ["too many addresses", "--inetd"]),
    (["--inetd", "--listen", "6080", "h:1"], ["--inetd", "standard input"]),
    (["--inetd", "--unix-listen", "{sock}", "h:1"], ["--inetd", "standard input"]),
    (["--inetd", "--daemon", "h:1"], ["--inetd", "--daemon"]),
    (["--unix-listen-mode", "0600", "6080", "h:1"], ["--unix-listen-mode needs --unix-listen"]),
    (["--unix-listen", "{sock}", "--unix-listen-mode", "rw-rw----", "h:1"], ["octal", "0660"]),
    (["--unix-listen", "{sock}", "--unix-listen-mode", "0800", "h:1"], ["octal"]),
    (["--unix-listen", "{sock}", "--unix-listen-mode", "1777", "h:1"], ["octal"]),
    (["--key-password", "x", "6080", "h:1"], ["--key-password needs --cert"]),
    (["--verify-client", "6080", "h:1"], ["--verify-client needs --cert"]),
    (["--cert", "{cert}", "--verify-client", "6080", "h:1"], ["--verify-client needs --cafile", "public CAs"]),
    (["--cert", "{cert}", "--cafile", "{cert}", "6080", "h:1"], ["--cafile needs --verify-client"]),
    (["--cert", "{cert}", "--verify-client", "--cafile", "{missing}", "6080", "h:1"], ["--cafile", "not a file"]),
    (["--ssl-version", "tlsv1_1", "6080", "h:1"], ["tlsv1_1", "RFC 8996", "tlsv1_2"]),
    (["--ssl-version", "sslv3", "6080", "h:1"], ["sslv3", "tlsv1_2"]),
    (["--ssl-version", "tls9", "6080", "h:1"], ["tls9", "default", "tlsv1_3"]),
    (["--token-plugin", "websockify.token_plugins.TokenRedis", "--token-source", "{tokens}", "6080"],
     ["TokenRedis", "HOST[:PORT[:DB[:PASSWORD[:NAMESPACE]]]]", "not a host name"]),
    (["--token-plugin", "mycompany.tokens.Lookup", "--token-source", "{tokens}", "6080"],
     ["mycompany.tokens.Lookup", "loads no Python modules"]),
    (["--auth-plugin", "websockify.auth_plugins.ClientCertCNAuth", "--auth-source", "alice", "6080", "h:1"],
     ["ClientCertCNAuth", "BasicHTTPAuth"]),
    (["5901", "--", "vncserver", ":1"], ["wrapped program needs a target", "LD_PRELOAD", "-- Xvnc :1"]),
    (["5901", "localhost:5901", "--", "vncserver", ":1"], ["own listen address", "listen on another"]),
    (["127.0.0.1:5901", "127.0.0.1:5901", "--", "Xvnc"], ["own listen address"]),
    (["6080", "h:1", "--"], ["'--' must be followed by a program"]),
    (["--wrap-mode", "respawn", "6080", "h:1"], ["--wrap-mode needs a program", "--"]),
])
def test_websockify_options_refused_with_a_reason(files, argv, fragments):
    message = config_error(fill(argv, files))
    for fragment in fill(fragments, files):
        assert fragment in message, message
    assert "\n" not in message and "unrecognized" not in message and "Traceback" not in message


def test_a_wrapped_program_may_listen_on_the_same_port_elsewhere():
    # Only wsproxy's own address is refused: the same port on another host is another service.
    assert parse_args(["127.0.0.1:5901", "10.0.0.5:5901", "--", "Xvnc"]).target == Target("10.0.0.5", 5901)


def test_minus_6_does_not_make_negative_numbers_options():
    # argparse would read "-1" as an option once any option looks like a number.
    assert "negative" in config_error(["-6", "--heartbeat", "-1", "6080", "h:1"])


# Every option in `websockify --help` of websockify 0.13.0.
WEBSOCKIFY_013_OPTIONS = [
    "-h", "--help", "-v", "--verbose", "--traffic", "--record", "-D", "--daemon", "--run-once", "--timeout",
    "--idle-timeout", "--cert", "--key", "--key-password", "--ssl-only", "--ssl-target", "--verify-client",
    "--cafile", "--ssl-version", "--ssl-ciphers", "--unix-listen", "--unix-listen-mode", "--unix-target",
    "--inetd", "--web", "--web-auth", "--wrap-mode", "-6", "--prefer-ipv6", "--libserver", "--target-config",
    "--token-plugin", "--token-source", "--host-token", "--auth-plugin", "--auth-source", "--heartbeat",
    "--log-file", "--syslog", "--legacy-syslog", "--file-only"]


def _migration_section():
    with open(os.path.join(os.path.dirname(WSPROXY), "README.md"), encoding="utf-8") as handle:
        text = handle.read()
    start = text.index("## Migrating from websockify")
    return text[start:text.index("\n## ", start + 1)]


@pytest.mark.parametrize("option", WEBSOCKIFY_013_OPTIONS)
def test_every_websockify_option_is_known_and_has_a_readme_row(option):
    known = {name for action in wsproxy.build_parser()._actions for name in action.option_strings}
    assert option in known or option == "-6", option     # -6 is spelled out before argparse sees it
    rows = [line for line in _migration_section().splitlines() if line.startswith("| ")]
    assert any(re.search(r"`%s(?=[ `,=])" % re.escape(option), row.split(" | ")[0]) for row in rows), option


# -- invalid combinations: one clear sentence each ------------------------------------------


@pytest.mark.parametrize("argv, fragments", [
    ([], ["missing listen port"]),
    (["6080"], ["no target"]),
    (["6080", "h:1", "h:2"], ["too many addresses"]),
    (["--listen", "6080", "a:1", "b:2"], ["too many addresses"]),
    (["--listen", "6080", "--unix-listen", "{sock}", "h:1"], ["--listen", "--unix-listen"]),
    (["6080", "h:1", "--vnc", "h:2"], ["--vnc", "positionally"]),
    (["--record", "{missing}/session", "6080", "h:1"], ["--record", "no directory"]),
    (["--record-input", "6080", "h:1"], ["--record-input", "need --record"]),
    (["--record", "{web}", "--record-max-bytes", "10X", "6080", "h:1"], ["'10X' is not a size"]),
    (["--token-plugin", "TokenSql", "--token-source", "{tokens}", "6080"],
     ["TokenSql", "TokenFile", "ReadOnlyTokenFile", "TokenRedis", "JWTTokenApi"]),
    (["--token-plugin", "TokenFile", "6080"], ["--token-source"]),
    (["--token-source", "{missing}", "6080"], ["{missing}", "does not exist"]),
    (["--token-source", "{tokens}", "6080", "h:1"], ["one kind of target"]),
    (["--unix-target", "{sock}", "6080", "h:1"], ["one kind of target"]),
    (["--host-token", "6080", "h:1"], ["--host-token", "token source"]),
    (["--ssl-only", "6080", "h:1"], ["--ssl-only", "--cert"]),
    (["--key", "{key}", "6080", "h:1"], ["--key", "--cert"]),
    (["--cert", "{missing}", "6080", "h:1"], ["--cert", "{missing}"]),
    (["--web", "{missing}", "6080", "h:1"], ["--web", "not a directory"]),
    (["--auth-plugin", "Ldap", "--auth-source", "x", "6080", "h:1"], ["Ldap", "BasicHTTPAuth", "ExpectOrigin"]),
    (["--auth-plugin", "BasicHTTPAuth", "6080", "h:1"], ["--auth-source"]),
    (["--auth-plugin", "BasicHTTPAuth", "--auth-source", "nopassword", "6080", "h:1"], ["user:password"]),
    (["--web-auth", "6080", "h:1"], ["--auth-plugin"]),
    (["--trusted-proxy", "proxy.example", "6080", "h:1"], ["proxy.example"]),
    (["--heartbeat", "-1", "6080", "h:1"], ["--heartbeat", "negative"]),
    (["--idle-timeout", "-5", "6080", "h:1"], ["--idle-timeout", "negative"]),
    # nan compares false to every deadline: --timeout nan never fired and woke
    # the accept loop every millisecond (found by the argv property below).
    (["--timeout", "nan", "6080", "h:1"], ["--timeout", "number of seconds"]),
    (["--heartbeat", "nan", "6080", "h:1"], ["--heartbeat", "number of seconds"]),
    (["--idle-timeout", "NaN", "6080", "h:1"], ["--idle-timeout", "number of seconds"]),
    (["--max-message-size", "0", "6080", "h:1"], ["--max-message-size"]),
    # bad ports and addresses
    (["0", "h:1"], ["1 to 65535"]),
    (["65536", "h:1"], ["1 to 65535"]),
    (["http", "h:1"], ["1 to 65535"]),
    (["6080", "localhost"], ["host:port"]),
    (["6080", "localhost:0"], ["1 to 65535"]),
    (["6080", "localhost:99999"], ["1 to 65535"]),
    (["6080", "localhost:vnc"], ["1 to 65535"]),
    (["6080", ":5901"], ["missing host"]),
    (["6080", "[::1]5901"], ["[IPv6]:port"]),
    (["6080", "::1"], ["host:port"]),              # IPv6 target without a port
    (["--vnc", "localhost", "6080"], ["host:port"]),
])
def test_invalid_command_lines(files, argv, fragments):
    message = config_error(fill(argv, files))
    for fragment in fill(fragments, files):
        assert fragment in message, message
    assert "\n" not in message and message == message.strip()
    assert len(message) < 200
    assert "Traceback" not in message and "invalid literal" not in message


@pytest.mark.skipif(os.name == "posix" and hasattr(os, "fork"), reason="non-POSIX only")
def test_daemon_refused_without_posix():
    assert "POSIX" in config_error(["--daemon", "6080", "h:1"])


@pytest.mark.parametrize("argv", [
    ["--bogus", "6080", "h:1"],
    ["--heartbeat", "soon", "6080", "h:1"],
    ["--wrap-mode", "sometimes", "6080", "h:1", "--", "Xvnc"],
    ["--listen"],
])
def test_argparse_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "wsproxy.py: error: " in err


def test_main_returns_2_with_the_sentence(capsys):
    assert wsproxy.main(["6080"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("wsproxy.py: error: no target")
    assert captured.err.count("\n") == 1
    assert captured.out == ""


# -- the real command --------------------------------------------------------------------------


def run(*argv):
    return subprocess.run([sys.executable, WSPROXY] + list(argv), capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("argv, sentence", [
    ([], "missing listen port"),
    (["6080"], "no target"),
    (["--record", "/nonexistent/dir/session", "6080", "localhost:5901"], "--record /nonexistent/dir/session: no directory"),
    (["--ssl-only", "6080", "localhost:5901"], "--ssl-only needs --cert"),
    (["--token-plugin", "Nope", "6080"], "unsupported --token-plugin 'Nope'"),
    (["6080", "localhost:70000"], "port must be a number from 1 to 65535"),
    (["--no-such-option", "6080", "localhost:5901"], "unrecognized arguments: --no-such-option"),
    # websockify's own command lines: a sentence, not "unrecognized" or "too many addresses"
    (["5901", "--", "vncserver", ":1"], "a wrapped program needs a target"),
    (["--syslog", "6080", "localhost:5901"], "--syslog 6080: SERVER is a socket path"),
    (["--ssl-version", "tlsv1_1", "6080", "localhost:5901"], "TLS 1.1 and older are broken"),
])
def test_command_exits_2_with_the_sentence_on_stderr(argv, sentence):
    result = run(*argv)
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1, result.stderr
    assert error_lines[0].startswith("wsproxy.py: error: ")
    assert sentence in error_lines[0]


GROUPS = ["where to listen and where to connect", "many targets by token", "web files", "TLS",
          "access control", "connections", "logging and process", "session recording (play back in play.html)"]
OPTIONS = ["--listen", "--vnc", "--unix-listen", "--unix-target",
           "--token-plugin", "--token-source", "--target-config", "--host-token",
           "--web", "--no-web", "--file-only",
           "--cert", "--key", "--ssl-only", "--ssl-version", "--ssl-ciphers", "--ssl-target",
           "--auth-plugin", "--auth-source", "--web-auth", "--trusted-proxy",
           "--heartbeat", "--idle-timeout", "--timeout", "--max-message-size",
           "--verbose", "--log-file", "--syslog", "--daemon", "--record", "--version",
           "--unix-listen-mode", "--inetd", "--prefer-ipv6", "-6", "--key-password", "--verify-client", "--cafile",
           "--run-once", "--legacy-syslog", "--traffic", "--wrap-mode", "--libserver", "-- PROGRAM"]


def test_help_lists_every_option_group():
    result = run("--help")
    assert result.returncode == 0
    text = result.stdout
    for group in GROUPS:
        assert "\n%s:\n" % group in text, group
    for option in OPTIONS:
        assert option in text, option
    assert "wsproxy.py 6080 localhost:5901" in text  # an example to copy


def test_help_shows_every_option_the_parser_knows(capsys):
    # Nothing is hidden: an option added later shows up in --help too.
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = capsys.readouterr().out
    parser = wsproxy.build_parser()
    for action in parser._actions:
        for option in action.option_strings:
            assert option in text, option


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(["--version"])
    assert info.value.code == 0
    assert wsproxy.__version__ in capsys.readouterr().out


# -- property: any argument list ---------------------------------------------------------------

_WORDS = ["--listen", "--vnc", "--demo", "--token-plugin", "--token-source", "--target-config", "--web",
          "--no-web", "--cert", "--key", "--ssl-only", "--ssl-version", "--auth-plugin", "--auth-source",
          "--web-auth", "--trusted-proxy", "--heartbeat", "--idle-timeout", "--timeout",
          "--max-message-size", "--unix-listen", "--unix-target", "--host-token", "--record", "-v", "-D",
          "-6", "--inetd", "--run-once", "--syslog", "--legacy-syslog", "--wrap-mode", "respawn", "--verify-client",
          "--cafile", "--key-password", "--unix-listen-mode", "0660", "default", "tlsv1_1",
          "websockify.token_plugins.TokenFile", "websockify.auth_plugins.BasicHTTPAuth",
          "6080", ":6080", "localhost:5901", "[::1]:5900", "fe80::1:5900", "TokenFile", "BasicHTTPAuth",
          "ExpectOrigin", "u:p", "/", "-1", "0", "1e999", "nan", "inf", "10.0.0.0/8", "--", "-", "=", "--help"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_WORDS) | st.text(max_size=20), max_size=8))
def test_any_argv_gives_a_config_or_a_clear_refusal(argv):
    # Only ConfigError (one sentence) or argparse's exit 2; exit 0 only
    # after printing --help or --version.
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            config = parse_args(argv)
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message
        return
    except SystemExit as exc:
        if exc.code == 0:
            assert out.getvalue().startswith(("usage:", "wsproxy "))
        else:
            assert exc.code == 2 and "wsproxy.py: error: " in err.getvalue()
        return
    assert 0 <= config.listen_port < 65536 and config.max_message_size >= 1
    assert config.heartbeat >= 0 and config.idle_timeout >= 0 and config.timeout >= 0


# -- how the script runs: from its cached bytecode, same PID --------------------------

REEXECS = pytest.mark.skipif(
    not sys.platform.startswith("linux") or sys.implementation.name != "cpython" or not hasattr(sys, "orig_argv"),
    reason="goes on from bytecode on CPython 3.10+ on POSIX; reads /proc")


def _serve_and_read_cmdline(interpreter_flags, cwd, script=WSPROXY, env=None, args=("--no-web",)):
    """Start ``python3 FLAGS SCRIPT ARGS 127.0.0.1:PORT 127.0.0.1:9``, wait
    until it answers, return its /proc cmdline and its banner."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable] + interpreter_flags + [str(script)] + list(args)
                            + ["127.0.0.1:%d" % port, "127.0.0.1:9"],
                            cwd=str(cwd), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline()
        assert "listening on 127.0.0.1:%d" % port in banner, (banner, proc.stderr.read() if proc.poll() else "")
        banner += proc.stdout.readline() + proc.stdout.readline() + proc.stdout.readline()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"GET /websockify HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(100).startswith(b"HTTP/1.1 426 ")  # answered without connecting to the target
        with open("/proc/%d/cmdline" % proc.pid, "rb") as handle:
            return [arg.decode() for arg in handle.read().split(b"\0")[:-1]], banner
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture
def script(tmp_path):
    """A copy of wsproxy.py with web files beside it, in a directory of its
    own (so its __pycache__ starts empty), and an environment that lets
    Python write bytecode."""
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "web").mkdir()
    copy = folder / "wsproxy.py"
    with open(WSPROXY, "rb") as handle:
        copy.write_bytes(handle.read())
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    return copy, env


def _cached(script, **optimization):
    import importlib.util
    return importlib.util.cache_from_source(str(script), **optimization)


@REEXECS
def test_script_goes_on_from_its_bytecode_with_a_readable_command_line(script, tmp_path):
    """The PID the user started serves (so kill PID and pid files work); ps
    shows the interpreter, the program's name and its arguments, no code;
    and the program still finds web/ beside wsproxy.py."""
    path, env = script
    cmdline, banner = _serve_and_read_cmdline([], tmp_path, path, env, args=("-v",))
    assert cmdline[:4] == [sys.executable, "-S", _cached(path), str(path)]   # ran from bytecode
    assert cmdline[4] == "-v" and cmdline[5].startswith("127.0.0.1:") and cmdline[6:] == ["127.0.0.1:9"]
    assert "%s -v 127.0.0.1:" % path in " ".join(cmdline)               # what ps and pgrep -f see
    assert "web files: %s" % (path.parent / "web") in banner


@REEXECS
def test_interpreter_options_survive_as_given(script, tmp_path):
    path, env = script
    flags = ["-u", "-O", "-W", "error::ResourceWarning", "-X", "utf8"]
    cmdline, _ = _serve_and_read_cmdline(flags, tmp_path, path, env)
    assert cmdline[:len(flags) + 4] == [sys.executable] + flags + ["-S", _cached(path, optimization=1), str(path)]


@REEXECS
def test_an_edited_script_runs_the_edit_not_stale_bytecode(script, tmp_path):
    path, env = script
    _serve_and_read_cmdline([], tmp_path, path, env)         # caches the bytecode
    source = path.read_text(encoding="utf-8")
    path.write_text(source.replace('__version__ = "', '__version__ = "edited-', 1), encoding="utf-8")
    result = subprocess.run([sys.executable, str(path), "--version"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.stdout.startswith("wsproxy edited-"), (result.stdout, result.stderr)


@REEXECS
def test_without_bytecode_the_compiled_code_goes_over_in_a_memfd(script, tmp_path):
    """PYTHONDONTWRITEBYTECODE (or a read-only directory) and no .pyc yet:
    nothing is written beside the script; the code this process compiled is
    handed to the exec'd interpreter in a memfd, which it closes."""
    path, env = script
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmdline, _ = _serve_and_read_cmdline([], tmp_path, path, env)
    assert cmdline[1] == "-S" and cmdline[2].startswith("/proc/self/fd/"), cmdline
    assert cmdline[3:5] == [str(path), "--no-web"], cmdline
    assert not (path.parent / "__pycache__").exists()


def test_a_module_in_the_working_directory_cannot_shadow_the_standard_library(tmp_path):
    """Started from a directory holding select.py (say, a user's download
    folder), the proxy still imports the real select and serves."""
    (tmp_path / "select.py").write_text("raise SystemExit('shadowed select.py imported')\n")
    (tmp_path / "socket.py").write_text("raise SystemExit('shadowed socket.py imported')\n")
    _serve_and_read_cmdline([], tmp_path)
