"""Session recording without sockets or files: the file format (header,
records, a cut-short file), file names and the directory cap's choice, and
SessionRecorder fed a real VncAuth handshake byte by byte and split anywhere:
what it queues starts with the synthesized handshake and the real
ServerInit, and never holds the challenge, the response or, without
--record-input, the user's input."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsproxy
from wsproxy import (RECORDING_MAGIC, SYNTHESIZED_HANDSHAKE, ConfigError, RecordingError, RecordKind,
                     SessionRecorder, encode_record, encode_recording_header, parse_byte_size,
                     parse_recording, recorded_server_bytes, recording_name, recording_pattern,
                     recordings_to_delete)

pytestmark = pytest.mark.pure

PIXEL_FORMAT = bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0])
CHALLENGE = bytes(range(100, 116))
RESPONSE = bytes(range(200, 216))


def server_init(width=640, height=480, name=b"desk"):
    return struct.pack(">HH", width, height) + PIXEL_FORMAT + struct.pack(">I", len(name)) + name


SET_PIXEL_FORMAT = bytes([0, 0, 0, 0]) + PIXEL_FORMAT
SET_ENCODINGS = struct.pack(">BxH2i", 2, 2, 7, -223)
KEY = struct.pack(">BBxxI", 4, 1, 0x61)
POINTER = struct.pack(">BBHH", 5, 1, 10, 20)
UPDATE = b"\x00\x00\x00\x01" + struct.pack(">HHHHi", 0, 0, 1, 1, 0) + b"\x11\x22\x33\x00"
SERVER = (b"RFB 003.008\n" + bytes([1, 2]) + CHALLENGE + b"\0\0\0\0" + server_init() + UPDATE)
CLIENT = (b"RFB 003.008\n" + bytes([2]) + RESPONSE + b"\x01" + SET_PIXEL_FORMAT + SET_ENCODINGS + KEY
          + POINTER + KEY)


class FakeStore:
    """What SessionRecorder asks of a RecordingStore, kept in a list."""

    def __init__(self, record_input=False):
        self.record_input = record_input
        self.records = []
        self.finished = None

    def put(self, rec, kind, millis, payload):
        assert not rec.stopped
        self.records.append((kind, payload))

    def finish(self, rec, reason, failed=False):
        rec.stopped = True
        self.finished = (reason, failed)


def record(server_pieces, client_pieces, record_input=False):
    """Feed the pieces as a relay would (client first: the server answers it)."""
    store = FakeStore(record_input)
    rec = SessionRecorder(store, 7, {"connection": 7})
    for i in range(max(len(server_pieces), len(client_pieces))):
        if i < len(client_pieces):
            rec.client(client_pieces[i])
        if i < len(server_pieces):
            rec.server(server_pieces[i])
    return rec, store


def kinds(store, kind):
    return b"".join(p for k, p in store.records if k == kind)


def split(data, cuts):
    cuts = sorted(set(c for c in cuts if 0 < c < len(data)))
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


# ------------------------------------------------------------------ the recorder


def test_recording_starts_with_a_synthesized_handshake_and_the_real_server_init():
    # Each side in one piece, but the server's ServerInit only after the
    # client's ClientInit, as on the wire.
    rec, store = record([SERVER], [CLIENT])
    assert kinds(store, RecordKind.SERVER) == SYNTHESIZED_HANDSHAKE + server_init() + UPDATE
    assert rec.info["width"] == 640 and rec.info["height"] == 480
    assert rec.info["server_version"] == "RFB 003.008"
    everything = b"".join(p for _, p in store.records)
    assert CHALLENGE not in everything and RESPONSE not in everything


def test_without_record_input_only_pixel_format_and_encodings_of_the_client():
    rec, store = record([SERVER], [CLIENT])
    assert kinds(store, RecordKind.CLIENT_FORMAT) == SET_PIXEL_FORMAT + SET_ENCODINGS
    assert kinds(store, RecordKind.CLIENT_INPUT) == b""
    everything = b"".join(p for _, p in store.records)
    assert KEY not in everything and POINTER not in everything


def test_with_record_input_the_client_messages_but_still_no_auth_response():
    rec, store = record([SERVER], [CLIENT], record_input=True)
    assert kinds(store, RecordKind.CLIENT_INPUT) == KEY + POINTER + KEY
    assert RESPONSE not in b"".join(p for _, p in store.records)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, len(SERVER) - 1), max_size=8),
       st.lists(st.integers(1, len(CLIENT) - 1), max_size=8))
def test_split_anywhere_records_the_same(server_cuts, client_cuts):
    # The client's handshake bytes first (the server waits for them), then
    # everything interleaved as the pieces come.
    client = split(CLIENT, client_cuts)
    server = split(SERVER, server_cuts)
    handshake_end = len(b"RFB 003.008\n") + 1 + 16 + 1
    head = split(CLIENT[:handshake_end], [c for c in client_cuts if c < handshake_end])
    tail = split(CLIENT[handshake_end:], [c - handshake_end for c in client_cuts if c > handshake_end])
    store = FakeStore(record_input=True)
    rec = SessionRecorder(store, 1, {})
    for piece in head:
        rec.client(piece)
    for piece in server:
        rec.server(piece)
    for piece in tail:
        rec.client(piece)
    assert client  # the split helper covers the whole
    assert kinds(store, RecordKind.SERVER) == SYNTHESIZED_HANDSHAKE + server_init() + UPDATE
    assert kinds(store, RecordKind.CLIENT_FORMAT) == SET_PIXEL_FORMAT + SET_ENCODINGS
    assert kinds(store, RecordKind.CLIENT_INPUT) == KEY + POINTER + KEY
    # Formats arrive whole, one message per record.
    assert [p for k, p in store.records if k == RecordKind.CLIENT_FORMAT] == [SET_PIXEL_FORMAT, SET_ENCODINGS]


def test_a_refused_login_records_nothing():
    server = b"RFB 003.008\n" + bytes([1, 2]) + CHALLENGE + struct.pack(">II", 1, 6) + b"denied"
    client = b"RFB 003.008\n" + bytes([2]) + RESPONSE
    rec, store = record([server], [client])
    assert store.records == [] and rec.stopped
    assert "refused" in store.finished[0]


def test_an_encrypted_security_type_is_not_recorded_and_says_why():
    server = b"RFB 003.008\n" + bytes([1, 19]) + b"\x00\x02"
    client = b"RFB 003.008\n" + bytes([19])
    rec, store = record([server], [client])
    assert store.records == [] and rec.stopped
    assert store.finished[0].startswith("cannot follow the RFB handshake") and store.finished[1]


def test_an_unknown_client_message_stops_client_records_not_the_server_ones():
    rec, store = record([SERVER], [CLIENT[:-len(KEY)]], record_input=True)
    rec.client(b"\x99zzzz" + KEY)
    rec.server(UPDATE)
    assert not rec.stopped
    assert kinds(store, RecordKind.SERVER).endswith(UPDATE + UPDATE)
    assert kinds(store, RecordKind.CLIENT_INPUT) == KEY + POINTER


def test_a_session_that_ends_before_server_init_is_not_a_failure():
    rec, store = record([b"RFB 003.008\n"], [b""])
    rec.close()
    assert store.finished == ("the session ended before ServerInit", False)


def test_a_handshake_that_never_ends_is_given_up_on():
    rec, store = record([b"RFB 003.008\n" + bytes([1, 1]) + b"\0\0\0\0"], [b"RFB 003.008\n\x01"])
    rec.server(struct.pack(">HH", 1, 1) + PIXEL_FORMAT + struct.pack(">I", 60000))
    for _ in range(20):
        rec.server(b"n" * 60000)
    assert rec.stopped and store.records == []


# ------------------------------------------------------------------ the file format


def test_header_and_records_round_trip():
    data = (encode_recording_header({"target": "h:1", "width": 3, "token": "abc..."})
            + encode_record(RecordKind.SERVER, 0, b"one") + encode_record(RecordKind.CLIENT_FORMAT, 5, b"")
            + encode_record(RecordKind.END, 1234, b"bye"))
    assert data.startswith(RECORDING_MAGIC + b"\x00\x01")
    header, records, complete = parse_recording(data)
    assert header["format"] == "wsproxy-recording" and header["version"] == 1
    assert header["target"] == "h:1" and header["width"] == 3 and header["token"] == "abc..."
    assert [(r.kind, r.millis, r.payload) for r in records] == [
        (1, 0, b"one"), (2, 5, b""), (4, 1234, b"bye")]
    assert complete
    assert recorded_server_bytes(records) == b"one"


def test_a_file_cut_short_keeps_its_whole_records():
    data = encode_recording_header({}) + encode_record(1, 0, b"abc") + encode_record(1, 9, b"defgh")
    for cut in range(len(data) - 8, len(data)):
        header, records, complete = parse_recording(data[:cut])
        assert [r.payload for r in records] == [b"abc"] and not complete
    assert not parse_recording(data)[2]   # no END record: not complete either


def test_record_layout_is_kind_millis_length_payload():
    assert encode_record(1, 0x01020304, b"xy") == b"\x01\x01\x02\x03\x04\x00\x00\x00\x02xy"
    assert encode_record(1, 2 ** 40, b"") == b"\x01\xff\xff\xff\xff\x00\x00\x00\x00"


@pytest.mark.parametrize("data, words", [
    (b"", "too short"),
    (b"GIF89a\x00\x00\x00\x00\x00\x00\x00\x00", "bad magic"),
    (RECORDING_MAGIC + b"\x00\x02\x00\x00\x00\x02{}", "version 2"),
    (RECORDING_MAGIC + b"\x00\x01\x00\x00\x00\x09{}", "cut short"),
    (RECORDING_MAGIC + b"\x00\x01\x00\x01\x00\x01" + b" " * 65537, "cut short or over"),
    (RECORDING_MAGIC + b"\x00\x01\x00\x00\x00\x02{x", "not JSON"),
])
def test_bad_files_are_refused_with_a_reason(data, words):
    with pytest.raises(RecordingError, match=words):
        parse_recording(data)


def test_handshake_is_rfb_38_security_none_and_ok():
    assert SYNTHESIZED_HANDSHAKE == b"RFB 003.008\n\x01\x01\x00\x00\x00\x00"


# ------------------------------------------------------------------ names, caps, sizes


def test_names_sort_by_start_and_match_their_pattern():
    when = 1764905400.5   # 2025-12-05T03:30:00Z
    name = recording_name(False, "", 12, when)
    assert name == "20251205T033000Z-12.wsrec"
    assert recording_name(False, "", 12, when, 2) == "20251205T033000Z-12.2.wsrec"
    assert recording_name(True, "rec", 3, when) == "rec.3"
    assert recording_name(True, "rec", 3, when, 1) == "rec.3.1"
    dir_pattern, prefix_pattern = recording_pattern(False, ""), recording_pattern(True, "rec.x")
    assert dir_pattern.match(name) and dir_pattern.match("20251205T033000Z-12.2.wsrec")
    assert prefix_pattern.match("rec.x.3") and prefix_pattern.match("rec.x.3.1")
    for other in ("notes.txt", "rec.x", "rec.x.3.bak", "recAx.3", "20251205T033000Z-12.wsrec.swp"):
        assert not dir_pattern.match(other) and not prefix_pattern.match(other)


def test_directory_cap_deletes_the_oldest_finished_first():
    files = [("c", 100, 3.0), ("a", 100, 1.0), ("b", 100, 2.0), ("open", 100, 0.5)]
    assert recordings_to_delete(files, 400, 400) == []
    assert recordings_to_delete(files, 401, 400, keep=["open"]) == ["a"]
    assert recordings_to_delete(files, 650, 400, keep=["open"]) == ["a", "b", "c"]
    assert recordings_to_delete(files, 650, 400) == ["open", "a", "b"]


def test_byte_sizes():
    assert parse_byte_size("0") == 0
    assert parse_byte_size("4096") == 4096
    assert parse_byte_size("64k") == 65536
    assert parse_byte_size("10M") == 10 * 2 ** 20
    assert parse_byte_size("2GiB") == 2 * 2 ** 30
    for bad in ("", "-1", "1.5G", "10X", "M"):
        with pytest.raises(ConfigError):
            parse_byte_size(bad)


def test_header_names_the_token_as_the_log_does(tmp_path):
    store = wsproxy.RecordingStore(str(tmp_path))
    rec = store.recorder(3, "10.0.0.5:5901", "s3cretTokenValue")
    assert rec.info == {"connection": 3, "target": "10.0.0.5:5901", "token": "s3c...", "input": False}
    assert b"s3cretTokenValue" not in encode_recording_header(rec.info)
    assert store.recorder(4, "h:1", None).info["token"] is None


def test_command_line(tmp_path):
    config = wsproxy.parse_args(["6080", "h:5900", "--record", str(tmp_path), "--record-max-bytes", "1G",
                                 "--record-session-max-bytes", "100M", "--record-input"])
    assert (config.record, config.record_input) == (str(tmp_path), True)
    assert (config.record_max_bytes, config.record_session_max_bytes) == (2 ** 30, 100 * 2 ** 20)
    prefix = wsproxy.parse_args(["6080", "h:5900", "--record", str(tmp_path / "session")])
    assert prefix.record == str(tmp_path / "session") and not prefix.record_input
    with pytest.raises(ConfigError, match="no directory"):
        wsproxy.parse_args(["6080", "h:5900", "--record", str(tmp_path / "missing" / "x")])
    with pytest.raises(ConfigError, match="need --record"):
        wsproxy.parse_args(["6080", "h:5900", "--record-input"])


def test_a_recorder_bug_stops_the_recording_not_the_relay(monkeypatch):
    store = FakeStore()
    rec = SessionRecorder(store, 1, {})

    def broken(data):
        raise KeyError("bug")

    monkeypatch.setattr(rec._follower, "server_data", broken)
    rec.server(b"RFB 003.008\n")          # no exception reaches the relay
    rec.client(b"RFB 003.008\n")
    assert rec.stopped and store.finished == ("internal error", True)
