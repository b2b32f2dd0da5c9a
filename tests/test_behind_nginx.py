"""wsproxy behind a real nginx, configured as the README's "Behind nginx" block.

The front proxy's rules must hold: a request nginx forwards as one (with a
body) is one request to wsproxy too, so nothing can be smuggled past a
``deny`` (issue 10.2).
"""

import os
import socket
import time

import realpeers
from conftest import EchoServer, get_request, read_response, recv_until_eof, upgrade_headers, wait_until, ws_frame

WEB = os.path.join(realpeers.ROOT, "web")

# The README's "Behind nginx" block: wsproxy under a sub-path, the upgrade
# passed through, the page and the WebSocket on one origin.
SUB_PATH = """
        location /vnc/ {
            proxy_pass http://127.0.0.1:%d/;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 1h;
            proxy_buffering off;
        }
"""

# The same, plus the rule an administrator adds to keep the WebSocket closed
# while the page stays public.
LOCATIONS = """
        location /vnc/websockify { deny all; }""" + SUB_PATH


def _exchange(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        buf = bytearray()
        response = read_response(sock, buffer=buf)
        sock.settimeout(2)
        try:
            rest = bytes(buf) + recv_until_eof(sock)
        except socket.timeout:
            rest = bytes(buf)
    return response, rest


def test_a_body_cannot_smuggle_an_upgrade_past_nginx_deny(tmp_path):
    target = EchoServer()
    tokens = tmp_path / "tokens.conf"
    tokens.write_text("vm: 127.0.0.1:%d\n" % target.port)
    try:
        with realpeers.proxy("--web", WEB, "--trusted-proxy", "127.0.0.1",
                             "--token-plugin", "TokenFile", "--token-source", str(tokens)) as wsp:
            with realpeers.nginx(LOCATIONS % wsp.port) as (front, logs):
                # The page is served through nginx; the WebSocket path is denied.
                page, _ = _exchange(front, get_request("/vnc/vnc.html"))
                assert page.status == 200 and b"<canvas" in page.body
                denied, _ = _exchange(front, get_request("/vnc/websockify", upgrade_headers()))
                assert denied.status == 403
                assert target.connections == 0
                # The attack: a GET for the page whose body is an upgrade and a frame.
                smuggled = (get_request("/websockify?token=vm", upgrade_headers() + [("X-Forwarded-For", "6.6.6.6")])
                            + ws_frame(0x2, b"RFB 003.008\n"))
                response, rest = _exchange(front, get_request("/vnc/vnc.html", [("Content-Length", str(len(smuggled)))])
                                           + smuggled)
                assert response.status == 400, response
                assert b"HTTP/1.1 101" not in rest
                time.sleep(0.3)
                assert target.connections == 0, "the smuggled upgrade reached the VNC target"
                log = wsp.log()
                assert "400 request bodies are not accepted" in log
                assert "6.6.6.6" not in log
                # A WebSocket nginx does allow still works through the same block.
                with socket.create_connection(("127.0.0.1", front), timeout=10) as sock:
                    sock.sendall(get_request("/vnc/allowed?token=vm", upgrade_headers()))
                    buf = bytearray()
                    assert read_response(sock, buffer=buf).status == 101
                    sock.sendall(ws_frame(0x2, b"hello"))
                    assert wait_until(lambda: target.connections == 1, 5)
    finally:
        target.close()


def _page_state(driver):
    return driver.execute_script(
        "const s = document.getElementById('status');"
        "return s ? [document.body.dataset.state, s.textContent] : null")


def test_the_page_loads_and_connects_under_an_nginx_sub_path(tmp_path):
    """Headless Chromium opens http://nginx/vnc/vnc.html?path=vnc/websockify?token=desk,
    as a noVNC user behind nginx would, and reaches a real Xvnc: the desktop's
    name in the status line, the proxy's log showing nginx's X-Forwarded-For."""
    with realpeers.xvnc("320x200") as (_display, vnc_port):
        tokens = tmp_path / "tokens.conf"
        tokens.write_text("desk: 127.0.0.1:%d\n" % vnc_port)
        with realpeers.proxy("--web", WEB, "--trusted-proxy", "127.0.0.1",
                             "--token-plugin", "TokenFile", "--token-source", str(tokens)) as wsp:
            with realpeers.nginx(SUB_PATH % wsp.port) as (front, _logs), realpeers.chromium() as driver:
                driver.get("http://127.0.0.1:%d/vnc/vnc.html?path=vnc/websockify?token=desk&autoconnect=1" % front)
                realpeers.poll(lambda: (_page_state(driver) or [None])[0] == "connected", "the page to connect", 15,
                               lambda: "page state %r" % (_page_state(driver),), interval=0.1)
                width = driver.execute_script("return document.querySelector('canvas').width")
                assert width == 320
                driver.get("about:blank")
                assert wait_until(lambda: "open" in wsp.log() and "token=" in wsp.log(), 5), wsp.log()
