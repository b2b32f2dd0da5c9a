"""View-only through a shared token store, end to end: a Redis JSON value
with ``"view_only": true`` and a JWT with the claim ``view_only: true`` each
make wsproxy.py select the ``wsproxy.view-only`` subprotocol and drop the
client's input before a real TigerVNC Xvnc sees it, while screen updates
still arrive.  The same source without the flag is the control: the same
client's pointer move reaches the X server there.

The X server's own state is the witness (QueryPointer, QueryKeymap over
tests/x11.py's connection), as in tests/test_view_only.py.
"""

import base64
import os
import struct
import time

import pytest

import realpeers
from test_token_redis import RedisServer
from test_view_only import GEOMETRY, KEY_A_DOWN, POINTER, RawViewer, keys_down, pointer_at, wait_for
from wsproxy import VIEW_ONLY_SUBPROTOCOL
from x11 import XConnection

try:   # a test-only package: tests/requirements.txt
    import jwt
except ImportError as exc:
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("PyJWT makes these tests' tokens: %s" % exc, allow_module_level=True)

SECRET = os.urandom(64)
OFFERED = ("binary", VIEW_ONLY_SUBPROTOCOL)   # what the page offers
WATCHER_MOVE = struct.unpack(">xxHH", POINTER)   # where the watcher's PointerEvent points


@pytest.fixture(scope="module")
def desktop():
    with realpeers.xvnc("%dx%d" % GEOMETRY) as (display, vnc_port):
        yield display, vnc_port


@pytest.fixture(scope="module")
def redis_proxy(desktop, tmp_path_factory):
    """wsproxy with TokenRedis; tokens ``watch`` (view-only) and ``work``."""
    _, vnc_port = desktop
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    redis.start()
    try:
        redis.set("watch", '{"host": "127.0.0.1", "port": %d, "view_only": true}' % vnc_port)
        redis.set("work", '{"host": "127.0.0.1", "port": %d, "view_only": false}' % vnc_port)
        with realpeers.proxy("--token-plugin", "TokenRedis", "--token-source", redis.source()) as wsp:
            wsp.tokens = {"watch": "watch", "work": "work"}
            wsp.control_move = (11, 21)
            yield wsp
    finally:
        redis.stop()


@pytest.fixture(scope="module")
def jwt_proxy(desktop, tmp_path_factory):
    """wsproxy with JWTTokenApi (an HS256 secret); a view-only JWT and a plain one."""
    _, vnc_port = desktop
    key = tmp_path_factory.mktemp("jwt") / "secret.key"
    key.write_bytes(base64.urlsafe_b64encode(SECRET).rstrip(b"="))
    claims = {"host": "127.0.0.1", "port": vnc_port, "exp": int(time.time()) + 600}
    with realpeers.proxy("--token-plugin", "JWTTokenApi", "--token-source", str(key)) as wsp:
        wsp.tokens = {"watch": jwt.encode(dict(claims, view_only=True), SECRET, algorithm="HS256"),
                      "work": jwt.encode(claims, SECRET, algorithm="HS256")}
        wsp.control_move = (12, 22)   # not the other source's: each control's move is seen
        yield wsp


@pytest.fixture(params=["redis", "jwt"])
def source(request):
    return request.getfixturevalue(request.param + "_proxy")


def url(wsp, which):
    return "ws://127.0.0.1:%d/websockify?token=%s" % (wsp.port, wsp.tokens[which])


def test_the_stores_view_only_flag_makes_the_proxy_drop_input(desktop, source):
    display, _ = desktop
    before = pointer_at(display)
    assert before != WATCHER_MOVE and keys_down(display) == []
    watcher = RawViewer(url(source, "watch"), shared=1, subprotocols=OFFERED)
    try:
        assert watcher.ws.subprotocol == VIEW_ONLY_SUBPROTOCOL
        watcher.request_update()
        assert watcher.next_update() == [(0, 0) + GEOMETRY]
        watcher.send(POINTER + KEY_A_DOWN)
        with XConnection(display) as conn:
            conn.fill(0, 0, 40, 40, tuple(os.urandom(3)))   # a new colour: the square changes each run
            conn.sync()
        watcher.request_update(incremental=True)
        rects = watcher.next_update()            # the picture still comes
        assert rects and all(x < 40 and y < 40 for x, y, _, _ in rects)
        time.sleep(0.3)
        assert pointer_at(display) == before
        assert keys_down(display) == []
    finally:
        watcher.close()
    wait_for(lambda: "view-only: dropped 1 KeyEvent, 1 PointerEvent" in source.log(), "the closing log line")


def test_without_the_flag_the_same_input_arrives(desktop, source):
    display, _ = desktop
    worker = RawViewer(url(source, "work"), shared=1, subprotocols=OFFERED)
    try:
        assert worker.ws.subprotocol == "binary"
        position = source.control_move
        worker.send(struct.pack(">BBHH", 5, 0, *position))
        wait_for(lambda: pointer_at(display) == position, "the worker's pointer move")
    finally:
        worker.close()
