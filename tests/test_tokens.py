"""Section 7: websockify token files, parsed and reloaded from a real tmp_path."""

import logging
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsproxy
from wsproxy import Target, TokenFile, parse_host_port, parse_token_text

pytestmark = pytest.mark.pure


def entries(text, source="tokens.conf"):
    found, problems = parse_token_text(text, source)
    return {token: entry.target for token, entry in found.items()}, problems


def write(path, text):
    """Write and make sure the change is visible even on a coarse-mtime filesystem."""
    old = path.stat().st_mtime_ns if path.exists() else None
    path.write_text(text)
    if old is not None and path.stat().st_mtime_ns == old:
        os.utime(path, ns=(old + 1_000_000_000, old + 1_000_000_000))


# -- parsing ---------------------------------------------------------------------


def test_websockify_format():
    found, problems = entries(
        "# comment\n"
        "\n"
        "vm1: localhost:5901\n"
        "  vm2:   10.0.0.2:5902  \n"
        "vm3:\t192.168.1.3:5903\n")
    assert problems == []
    assert found == {"vm1": Target("localhost", 5901), "vm2": Target("10.0.0.2", 5902),
                     "vm3": Target("192.168.1.3", 5903)}


def test_origin_names_file_and_line_not_the_token():
    found, _ = parse_token_text("\n# c\nsecret-token: h:1\n", "/etc/wsproxy/tokens.conf")
    assert found["secret-token"].origin == "/etc/wsproxy/tokens.conf:3"


@pytest.mark.parametrize("line, target", [
    ("vm: [::1]:5901", Target("::1", 5901)),
    ("vm: [fe80::1%eth0]:5901", Target("fe80::1%eth0", 5901)),
    ("vm: ::1:5901", Target("::1", 5901)),                    # bare IPv6: the port is after the last colon
    ("vm: fe80::1:5900", Target("fe80::1", 5900)),
    ("vm: fe80::1%eth0:5900", Target("fe80::1%eth0", 5900)),  # bare, with a zone
    ("vm: 2001:db8::7:5900", Target("2001:db8::7", 5900)),
    ("vm: unix_socket:/run/vnc/vm.sock", Target(unix_path="/run/vnc/vm.sock")),
    ("vm: unix_socket:relative.sock", Target(unix_path="relative.sock")),
    ("a:b: host:1", Target("host", 1)),                       # token ends at the first ": "
    ("vm: host:65535", Target("host", 65535)),
])
def test_targets(line, target):
    found, problems = entries(line + "\n")
    assert problems == []
    assert list(found.values()) == [target]


def test_crlf_and_missing_final_newline():
    found, problems = entries("a: h:1\r\nb: h:2")
    assert problems == []
    assert found == {"a": Target("h", 1), "b": Target("h", 2)}


@pytest.mark.parametrize("line, reason", [
    ("justtoken", "expected 'token: host:port'"),
    ("vm:localhost:5901", "expected 'token: host:port'"),     # websockify needs the space
    ("vm: ", "expected 'token: host:port'"),
    (": host:1", "expected 'token: host:port'"),
    ("my vm: host:1", "token contains whitespace"),
    ("vm: localhost", "expected host:port"),
    ("vm: localhost:", "port must be a number from 1 to 65535"),
    ("vm: localhost:0", "port must be a number from 1 to 65535"),
    ("vm: localhost:65536", "port must be a number from 1 to 65535"),
    ("vm: localhost:59x1", "port must be a number from 1 to 65535"),
    ("vm: localhost:-1", "port must be a number from 1 to 65535"),
    ("vm: localhost:5901\u00b2", "port must be a number from 1 to 65535"),      # superscript two
    ("vm: localhost:\u0665\u0669\u0660\u0661", "port must be a number from 1 to 65535"),  # Arabic-Indic digits
    pytest.param("vm: localhost:" + "9" * 5000, "port must be a number from 1 to 65535", id="5000-digit-port"),
    ("vm: :5901", "missing host"),
    ("vm: [::1]5901", "expected [IPv6]:port"),
    ("vm: [::1", "expected [IPv6]:port"),
    ("vm: unix_socket:", "empty unix_socket path"),
])
def test_bad_line_reports_file_line_reason_and_the_rest_still_works(line, reason):
    text = "good1: h:1\n" + line + "\ngood2: h:2\n"
    found, problems = entries(text, "t.conf")
    assert found == {"good1": Target("h", 1), "good2": Target("h", 2)}
    assert len(problems) == 1
    assert problems[0].startswith("t.conf:2: ")
    assert reason in problems[0]


@pytest.mark.parametrize("line", ["vm: ::1", "vm: fe80::1", "vm: 2001:db8::1"])
def test_ipv6_without_a_port_is_a_problem_not_port_one(line):
    # rsplit alone would read "fe80::1" as host "fe80:" port 1.
    found, problems = entries(line + "\n", "t.conf")
    assert found == {}
    assert len(problems) == 1 and problems[0].startswith("t.conf:1: ")


# str.splitlines() ends a line at each of these; a token file's lines end at "\n" only.
LINE_BREAKS_OF_OTHER_PROGRAMS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r"]


@pytest.mark.parametrize("separator", LINE_BREAKS_OF_OTHER_PROGRAMS + ["\x00", "\x1b", "\x7f", "\x9b"])
def test_a_line_break_of_other_programs_inside_an_entry_never_makes_a_token(separator):
    # "user1<U+2028>admin: 10.0.0.9:22" once made a token "admin" (and shifted
    # every later line number by one).
    text = "good1: h:1\nuser1" + separator + "admin: 10.0.0.9:22\ngood2: h:2\n"
    found, problems = parse_token_text(text, "t.conf")
    assert sorted(found) == ["good1", "good2"]
    assert found["good2"].origin == "t.conf:3"
    assert problems == ["t.conf:2: control character U+%04X in the line (a line ends only at a newline)"
                        % ord(separator)]


@pytest.mark.parametrize("separator", LINE_BREAKS_OF_OTHER_PROGRAMS)
def test_such_a_character_anywhere_in_an_entry_line_refuses_it(separator):
    for line in (separator + "admin: 10.0.0.9:22", "admin: 10.0.0.9:22" + separator + " ",
                 "admin:" + separator + "10.0.0.9:22"):
        found, problems = entries(line + "\n", "t.conf")
        assert found == {} and len(problems) == 1 and problems[0].startswith("t.conf:1: control character")


def test_tab_is_still_whitespace_and_comments_stay_whole_lines():
    found, problems = entries("vm:\th:1\t\n# old\u2028admin: h:2\n\x0c\n")
    assert found == {"vm": Target("h", 1)} and problems == []


def test_byte_order_mark_is_not_part_of_the_first_token():
    found, problems = entries("\ufeffvm1: h:1\nvm2: h:2\n")
    assert found == {"vm1": Target("h", 1), "vm2": Target("h", 2)} and problems == []


def test_unix_socket_path_is_the_rest_of_the_line():
    # The token ends at the first ": "; a later ": " belongs to the path (a Unix
    # path may hold any character but NUL), so this is one entry, never two.
    found, problems = entries("vm: unix_socket:/run/a: b  \n")
    assert found == {"vm": Target(unix_path="/run/a: b")} and problems == []
    found, problems = entries("vm: unix_socket:/run/a: admin: 10.0.0.9:22\n")
    assert list(found) == ["vm"] and problems == []
    found, problems = entries("vm: unix_socket:/run/a\x00b\n", "t.conf")
    assert found == {} and problems[0].startswith("t.conf:1: control character U+0000")


def test_repeated_token_last_line_wins_and_is_reported():
    found, problems = entries("vm: h:1\nvm: h:2\n", "t.conf")
    assert found == {"vm": Target("h", 2)}
    assert problems == ["t.conf:2: token repeated; this line wins"]


def test_parse_host_port_for_the_command_line():
    assert parse_host_port("6080", need_host=False) == ("", 6080)
    assert parse_host_port(":6080", need_host=False) == ("", 6080)
    assert parse_host_port("0.0.0.0:6080", need_host=False) == ("0.0.0.0", 6080)
    assert parse_host_port("[::]:6080", need_host=False) == ("::", 6080)
    with pytest.raises(ValueError):
        parse_host_port("6080")  # a target needs a host


def test_targets_compare_by_every_field():
    target = Target("h", 1)
    assert target == Target("h", 1) and hash(target) == hash(Target("h", 1))
    for other in (Target("h", 2), Target("g", 1), Target(unix_path="h"), Target("h", 1, "/s")):
        assert target != other and not target == other
    assert Target(unix_path="/a") != Target(unix_path="/b")
    assert target != ("h", 1, "") and target != "h:1"
    assert len({Target("h", 1), Target("h", 2), Target("h", 1)}) == 2
    assert repr(Target(unix_path="/s")) == "Target(host='', port=0, unix_path='/s')"
    with pytest.raises(AttributeError):
        target.port = 2


def test_target_str_brackets_ipv6():
    assert str(Target("::1", 5901)) == "[::1]:5901"
    assert str(Target("localhost", 5901)) == "localhost:5901"
    assert str(Target(unix_path="/run/vnc.sock")) == "unix:/run/vnc.sock"


def test_redact_token():
    assert wsproxy.redact_token("supersecret") == "sup..."
    assert "abc" not in wsproxy.redact_token("abc")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400) | st.lists(
    st.sampled_from(["vm", ":", ": ", " ", "\n", "\r\n", "#", "[", "]", "::1", "5901", "0", "h",
                     "unix_socket:", "/p", "\t", "\u00b2", "\x0b", "\u2028"]), max_size=40).map("".join))
def test_arbitrary_text_never_raises(text):
    found, problems = parse_token_text(text, "f")
    line_count = text.count("\n") + 1
    for problem in problems:
        where, _, reason = problem.partition(": ")
        assert where.startswith("f:") and 1 <= int(where[2:]) <= line_count and reason
    for token, entry in found.items():
        assert token and not any(ch.isspace() for ch in token)
        target = entry.target
        assert target.unix_path or (target.host and 0 < target.port < 65536)


# -- TokenFile: a file ----------------------------------------------------------------


def test_file_lookup(tmp_path):
    path = tmp_path / "tokens.conf"
    write(path, "vm1: localhost:5901\nvm2: [::1]:5902\n")
    tokens = TokenFile(str(path))
    assert tokens.lookup("vm1").target == Target("localhost", 5901)
    assert tokens.lookup("vm2").target == Target("::1", 5902)
    assert tokens.lookup("vm3") is None
    assert sorted(tokens.tokens()) == ["vm1", "vm2"]


def test_changed_file_is_reloaded(tmp_path):
    path = tmp_path / "tokens.conf"
    write(path, "vm1: localhost:5901\n")
    tokens = TokenFile(str(path))
    assert tokens.lookup("vm1").target.port == 5901
    write(path, "vm2: localhost:5902\nvm3: localhost:5903\n")
    assert tokens.lookup("vm1") is None, "a removed token must stop working"
    assert tokens.lookup("vm2").target.port == 5902


def test_same_size_edit_is_reloaded(tmp_path):
    # "5901" -> "5902" keeps the size; the modification time tells.
    path = tmp_path / "tokens.conf"
    path.write_text("vm1: localhost:5901\n")
    tokens = TokenFile(str(path))
    before = path.stat().st_mtime_ns
    path.write_text("vm1: localhost:5902\n")
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))
    assert tokens.lookup("vm1").target.port == 5902


def test_replaced_file_is_reloaded(tmp_path):
    # Editors and config managers write a new file and rename it over the old.
    path = tmp_path / "tokens.conf"
    write(path, "vm1: localhost:5901\n")
    tokens = TokenFile(str(path))
    new = tmp_path / "tokens.conf.new"
    new.write_text("vm1: localhost:5999\n")
    os.replace(str(new), str(path))
    assert tokens.lookup("vm1").target.port == 5999


def test_deleted_file_resolves_nothing_until_it_returns(tmp_path):
    path = tmp_path / "tokens.conf"
    write(path, "vm1: localhost:5901\n")
    tokens = TokenFile(str(path))
    assert tokens.lookup("vm1") is not None
    path.unlink()
    assert tokens.lookup("vm1") is None
    assert tokens.tokens() == []
    write(path, "vm1: localhost:5911\n")
    assert tokens.lookup("vm1").target.port == 5911


def test_missing_file_at_start_resolves_nothing(tmp_path):
    tokens = TokenFile(str(tmp_path / "absent.conf"))
    assert tokens.lookup("vm1") is None


def test_file_line_ends_crlf_and_bom_but_not_a_lone_cr(tmp_path):
    path = tmp_path / "tokens.conf"
    path.write_bytes(b"\xef\xbb\xbfvm1: h:1\r\nvm2: h:2\r\nold\radmin: h:3\r\nvm4: h:4")
    tokens = TokenFile(str(path))
    assert sorted(tokens.tokens()) == ["vm1", "vm2", "vm4"]
    assert tokens.lookup("vm4").origin == "%s:4" % path


def test_missing_source_is_warned_once_not_per_lookup(tmp_path, caplog):
    path = tmp_path / "tokens.conf"

    def warnings():
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    with caplog.at_level(logging.INFO, logger="wsproxy"):
        tokens = TokenFile(str(path))
        for _ in range(10):
            assert tokens.lookup("vm1") is None
        assert warnings() == ["token source %s is missing: no tokens resolve until it returns" % path]
        write(path, "vm1: h:1\n")
        assert tokens.lookup("vm1") is not None
        path.unlink()
        for _ in range(10):
            assert tokens.lookup("vm1") is None
        assert len(warnings()) == 2
    quiet = TokenFile(str(path), reload=False)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="wsproxy"):
        for _ in range(10):
            assert quiet.lookup("vm1") is None
    assert caplog.records == []


def test_bad_lines_are_logged_with_file_and_line_and_the_rest_works(tmp_path, caplog):
    path = tmp_path / "tokens.conf"
    write(path, "vm1: localhost:5901\nbroken line\nvm2: localhost:99999\nvm3: localhost:5903\n")
    with caplog.at_level(logging.WARNING, logger="wsproxy"):
        tokens = TokenFile(str(path))
    assert tokens.lookup("vm1") is not None and tokens.lookup("vm3") is not None
    assert tokens.lookup("vm2") is None
    messages = [record.getMessage() for record in caplog.records]
    assert any("%s:2: " % path in m for m in messages), messages
    assert any("%s:3: " % path in m and "65535" in m for m in messages), messages


def test_read_only_token_file_does_not_reload(tmp_path):
    path = tmp_path / "tokens.conf"
    write(path, "vm1: localhost:5901\n")
    tokens = TokenFile(str(path), reload=False)
    write(path, "vm2: localhost:5902\n")
    assert tokens.lookup("vm1").target.port == 5901
    assert tokens.lookup("vm2") is None
    path.unlink()
    assert tokens.lookup("vm1") is not None
    # ...and the reloading kind would have seen both changes.
    write(path, "vm2: localhost:5902\n")
    assert TokenFile(str(path)).lookup("vm2") is not None


# -- TokenFile: a directory ------------------------------------------------------------


def test_directory_of_token_files(tmp_path):
    (tmp_path / "a.conf").write_text("vm1: host-a:5901\n")
    (tmp_path / "b").write_text("vm2: host-b:5902\n")
    (tmp_path / ".b.swp").write_text("vm3: editor-swap:1\n")   # dot-files are skipped
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.conf").write_text("vm4: nested:1\n")  # not recursive
    tokens = TokenFile(str(tmp_path))
    assert sorted(tokens.tokens()) == ["vm1", "vm2"]
    assert tokens.lookup("vm2").target == Target("host-b", 5902)
    assert tokens.lookup("vm1").origin == "%s:1" % (tmp_path / "a.conf")


def test_directory_changes_are_picked_up(tmp_path):
    (tmp_path / "a.conf").write_text("vm1: host-a:5901\n")
    tokens = TokenFile(str(tmp_path))
    assert tokens.lookup("vm2") is None
    (tmp_path / "b.conf").write_text("vm2: host-b:5902\n")
    assert tokens.lookup("vm2").target.port == 5902
    write(tmp_path / "a.conf", "vm1: host-a:5911\n")
    assert tokens.lookup("vm1").target.port == 5911
    (tmp_path / "a.conf").unlink()
    assert tokens.lookup("vm1") is None
    assert tokens.lookup("vm2") is not None


def test_bad_file_in_a_directory_does_not_spoil_the_others(tmp_path, caplog):
    (tmp_path / "a.conf").write_text("vm1: host-a:5901\n")
    (tmp_path / "b.conf").write_text("nonsense\n")
    with caplog.at_level(logging.WARNING, logger="wsproxy"):
        tokens = TokenFile(str(tmp_path))
    assert tokens.lookup("vm1") is not None
    assert any("%s:1: " % (tmp_path / "b.conf") in r.getMessage() for r in caplog.records)


BACKUP_NAMES = [
    "customers~", "customers.bak", "customers.BAK", "customers.conf.bak", "customers.orig", "customers.rej",
    "customers.old", "customers.save", "customers.tmp", "customers.new", "customers.swp", "customers.swo",
    ".customers.swp", ".customers", ".#customers", "#customers#", "customers.dpkg-old", "customers.dpkg-dist",
    "customers.dpkg-new", "customers.dpkg-bak", "customers.ucf-dist", "customers.rpmnew", "customers.rpmsave",
    "customers.rpmorig", "customers.pacnew", "customers.pacsave",
]


@pytest.mark.parametrize("name", BACKUP_NAMES)
def test_backup_swap_and_hidden_files_in_a_directory_are_not_read(tmp_path, name):
    # The editor kept the old copy: the token deleted from "customers" must stop working.
    (tmp_path / "customers").write_text("alice: h:1\n")
    (tmp_path / name).write_text("alice: h:1\nrevoked: h:2\n")
    tokens = TokenFile(str(tmp_path))
    assert tokens.tokens() == ["alice"]
    assert tokens.lookup("revoked") is None
    assert wsproxy.is_skipped_token_file(name)


@pytest.mark.parametrize("name", ["customers", "customers.conf", "a.b.c", "bak", "swp", "tokens.cfg",
                                  "backup-hosts", "old-vms", "vms.bakery", "newhosts", "customers.d",
                                  "dpkg-list", "vm~1.conf"])
def test_ordinary_names_in_a_directory_are_read(tmp_path, name):
    (tmp_path / name).write_text("vm: h:1\n")
    assert not wsproxy.is_skipped_token_file(name)
    assert TokenFile(str(tmp_path)).tokens() == ["vm"]


def test_revoking_a_token_while_the_editor_leaves_a_backup(tmp_path):
    path = tmp_path / "customers"
    write(path, "alice: h:1\nbob: h:2\n")
    tokens = TokenFile(str(tmp_path))
    assert tokens.lookup("bob") is not None
    os.replace(str(path), str(tmp_path / "customers~"))   # what vim and emacs do on save
    write(path, "alice: h:1\n")
    (tmp_path / ".customers.swp").write_text("bob: h:2\n")
    assert tokens.lookup("bob") is None
    assert tokens.lookup("alice") is not None


def test_a_backup_appearing_does_not_reread_the_directory(tmp_path, monkeypatch):
    (tmp_path / "customers").write_text("alice: h:1\n")
    tokens = TokenFile(str(tmp_path))
    calls = []
    real = wsproxy.parse_token_text
    monkeypatch.setattr(wsproxy, "parse_token_text", lambda *a: calls.append(a) or real(*a))
    (tmp_path / "customers~").write_text("alice: h:1\n")
    (tmp_path / ".customers.swp").write_text("x")
    assert tokens.lookup("alice") is not None
    assert calls == []


def token_source_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("token source")]


def test_files_read_and_skipped_are_logged_once_at_start(tmp_path, caplog):
    (tmp_path / "b").write_text("vm2: h:2\n")
    (tmp_path / "a.conf").write_text("vm1: h:1\nvm3: h:3\n")
    (tmp_path / "customers~").write_text("old: h:9\n")
    (tmp_path / ".a.conf.swp").write_text("x")
    with caplog.at_level(logging.INFO, logger="wsproxy"):
        tokens = TokenFile(str(tmp_path))
        for _ in range(5):
            tokens.lookup("vm1")
    assert token_source_lines(caplog) == [
        "token source %s: 3 tokens from 2 files: a.conf, b; not read (backup, swap or hidden): "
        ".a.conf.swp, customers~" % tmp_path]


def test_a_token_file_source_logs_its_count_at_start(tmp_path, caplog):
    path = tmp_path / "tokens.conf"
    write(path, "vm1: h:1\n")
    with caplog.at_level(logging.INFO, logger="wsproxy"):
        TokenFile(str(path), reload=False)
    assert token_source_lines(caplog) == ["token source %s: 1 token from 1 file: tokens.conf" % path]


def test_an_empty_directory_says_so(tmp_path, caplog):
    (tmp_path / "customers~").write_text("old: h:1\n")
    with caplog.at_level(logging.INFO, logger="wsproxy"):
        TokenFile(str(tmp_path))
    assert token_source_lines(caplog) == [
        "token source %s: 0 tokens from 0 files: none; not read (backup, swap or hidden): customers~" % tmp_path]


def test_reload_names_the_files_only_when_the_set_changes(tmp_path, caplog):
    write(tmp_path / "a.conf", "vm1: h:1\n")
    tokens = TokenFile(str(tmp_path))
    with caplog.at_level(logging.INFO, logger="wsproxy"):
        write(tmp_path / "a.conf", "vm1: h:11\nvm2: h:2\n")
        tokens.lookup("vm1")
        (tmp_path / "c.conf").write_text("vm3: h:3\n")
        tokens.lookup("vm1")
        (tmp_path / "a.conf").unlink()
        tokens.lookup("vm1")
    assert token_source_lines(caplog) == [
        "token source %s reloaded: 2 tokens" % tmp_path,
        "token source %s reloaded: 3 tokens from 2 files: a.conf, c.conf" % tmp_path,
        "token source %s reloaded: 1 token from 1 file: c.conf" % tmp_path,
    ]


def test_a_long_file_list_is_cut(tmp_path, caplog):
    for i in range(wsproxy.TOKEN_LOG_MAX_NAMES + 5):
        (tmp_path / ("vm%02d" % i)).write_text("vm%d: h:1\n" % i)
    with caplog.at_level(logging.INFO, logger="wsproxy"):
        TokenFile(str(tmp_path))
    [line] = token_source_lines(caplog)
    assert line.endswith(": 25 tokens from 25 files: vm00, vm01, vm02, vm03, vm04, vm05, vm06, vm07, vm08, "
                         "vm09, vm10, vm11, vm12, vm13, vm14, vm15, vm16, vm17, vm18, vm19 and 5 more")


def test_odd_file_names_cannot_forge_log_lines(tmp_path, caplog):
    (tmp_path / "a\nFAKE log line").write_text("vm1: h:1\n")
    (tmp_path / ".b\x1b[31m").write_text("vm2: h:1\n")
    with caplog.at_level(logging.INFO, logger="wsproxy"):
        TokenFile(str(tmp_path))
    [line] = token_source_lines(caplog)
    assert line.endswith(": 1 token from 1 file: 'a\\nFAKE log line'; not read (backup, swap or hidden): "
                         "'.b\\x1b[31m'")


def test_deleted_directory_resolves_nothing(tmp_path):
    folder = tmp_path / "tokens.d"
    folder.mkdir()
    (folder / "a").write_text("vm1: h:1\n")
    tokens = TokenFile(str(folder))
    assert tokens.lookup("vm1") is not None
    (folder / "a").unlink()
    folder.rmdir()
    assert tokens.lookup("vm1") is None


def test_lookup_does_not_reread_an_unchanged_file(tmp_path, monkeypatch):
    path = tmp_path / "tokens.conf"
    write(path, "vm1: h:1\n")
    tokens = TokenFile(str(path))
    calls = []
    real = wsproxy.parse_token_text
    monkeypatch.setattr(wsproxy, "parse_token_text", lambda *a: calls.append(a) or real(*a))
    for _ in range(20):
        assert tokens.lookup("vm1") is not None
    assert calls == []
    write(path, "vm1: h:2\n")
    assert tokens.lookup("vm1").target.port == 2
    assert len(calls) == 1
