"""A real browser's WebSocket reaches a real VNC server through wsproxy.

Headless Chromium opens a WebSocket to wsproxy (token mode, the seed's
layout), which relays to TigerVNC Xvnc.  The page script speaks just enough
RFB to prove the path: the server's greeting arrives, the 3.8 handshake with
security None completes, and a full Raw framebuffer update of exactly
width*height*4 pixel bytes comes back.
"""

import functools
import http.server
import os
import socket
import threading
import time

import realpeers
from conftest import get_request, raw_websocket, read_response, read_ws_frame, ws_frame

# Runs inside the browser: a minimal RFB 3.8 client over a WebSocket.
RFB_SCRIPT = r"""
const [url, done] = [arguments[0], arguments[arguments.length - 1]];
const ws = new WebSocket(url);
ws.binaryType = 'arraybuffer';
let buf = new Uint8Array(0), step = 'greeting', out = {subprotocol: null};
const take = (n) => { const b = buf.slice(0, n); buf = buf.slice(n); return b; };
ws.onopen = () => { out.subprotocol = ws.protocol; };
ws.onerror = () => { out.error = 'websocket error'; };
ws.onclose = (e) => { out.closeCode = e.code; if (step !== 'done') done(out); };
ws.onmessage = (ev) => {
  const add = new Uint8Array(ev.data), next = new Uint8Array(buf.length + add.length);
  next.set(buf); next.set(add, buf.length); buf = next;
  for (;;) {
    if (step === 'greeting' && buf.length >= 12) {
      out.greeting = new TextDecoder().decode(take(12));
      ws.send(new TextEncoder().encode('RFB 003.008\n')); step = 'types';
    } else if (step === 'types' && buf.length >= 1 && buf.length >= 1 + buf[0]) {
      out.types = Array.from(take(1 + buf[0]).slice(1));
      ws.send(new Uint8Array([1])); step = 'result';
    } else if (step === 'result' && buf.length >= 4) {
      out.result = new DataView(take(4).buffer).getUint32(0);
      ws.send(new Uint8Array([1])); step = 'init';
    } else if (step === 'init' && buf.length >= 24) {
      const dv = new DataView(buf.buffer, buf.byteOffset);
      const nameLen = dv.getUint32(20);
      if (buf.length < 24 + nameLen) return;
      const init = take(24 + nameLen), idv = new DataView(init.buffer);
      out.width = idv.getUint16(0); out.height = idv.getUint16(2);
      out.name = new TextDecoder().decode(init.slice(24));
      // SetEncodings [Raw], then a full (non-incremental) update request.
      ws.send(new Uint8Array([2, 0, 0, 1, 0, 0, 0, 0]));
      ws.send(new Uint8Array([3, 0, 0, 0, 0, 0, out.width >> 8, out.width & 255,
                              out.height >> 8, out.height & 255]));
      out.pixelBytes = 0; step = 'update';
    } else if (step === 'update' && buf.length >= 4) {
      if (buf[0] !== 0) { out.error = 'unexpected message ' + buf[0]; ws.close(); return; }
      out.rects = new DataView(buf.buffer, buf.byteOffset).getUint16(2); take(4); step = 'rect';
    } else if (step === 'rect' && buf.length >= 12) {
      const dv = new DataView(buf.buffer, buf.byteOffset);
      out.rectW = dv.getUint16(4); out.rectH = dv.getUint16(6); out.encoding = dv.getInt32(8);
      take(12); out.need = out.rectW * out.rectH * 4; step = 'pixels';
    } else if (step === 'pixels' && buf.length > 0) {
      const n = Math.min(buf.length, out.need - out.pixelBytes);
      take(n); out.pixelBytes += n;
      if (out.pixelBytes === out.need) { step = 'done'; ws.close(1000); done(out); return; }
    } else return;
  }
};
"""


def test_browser_websocket_gets_rfb_greeting_and_full_update(tmp_path):
    with realpeers.xvnc("320x200") as (display, vnc_port):
        tokens = tmp_path / "token.conf"
        tokens.write_text("test1: 127.0.0.1:%d\ntest2: 127.0.0.1:1\n" % vnc_port)
        web = os.path.join(realpeers.ROOT, "web")
        with realpeers.proxy("--web", web, "--token-plugin", "TokenFile", "--token-source", str(tokens)) as wsp:
            port = wsp.port
            with realpeers.chromium() as driver:
                driver.set_script_timeout(30)
                driver.get("http://127.0.0.1:%d/vnc.html" % port)
                # The seed's path form: websockify/?token=test1
                out = driver.execute_async_script(RFB_SCRIPT, "ws://127.0.0.1:%d/websockify/?token=test1" % port)
        assert out.get("error") is None, out
        assert out["greeting"] == "RFB 003.008\n"
        assert 1 in out["types"]            # None, as Xvnc was told
        assert out["result"] == 0
        assert (out["width"], out["height"]) == (320, 200)
        assert out["encoding"] == 0 and (out["rectW"], out["rectH"]) == (320, 200)
        assert out["pixelBytes"] == 320 * 200 * 4
        assert out["subprotocol"] == ""      # noVNC offers none; wsproxy must not invent one


def test_browser_sees_http_reason_for_bad_token_and_dead_target(tmp_path):
    """Browsers report a failed upgrade only as close 1006; a plain GET to the same
    URL gets the reason as text, which the page shows (unknown token, unreachable)."""
    tokens = tmp_path / "token.conf"
    dead = realpeers.free_port()
    tokens.write_text("down: 127.0.0.1:%d\n" % dead)
    with realpeers.proxy("--token-plugin", "TokenFile", "--token-source", str(tokens)) as wsp:
        port = wsp.port
        with realpeers.chromium() as driver:
            driver.set_script_timeout(20)
            driver.get("http://127.0.0.1:%d/websockify" % port)
            script = r"""
            const done = arguments[arguments.length - 1], base = arguments[0];
            const probe = (q) => new Promise((resolve) => {
              const ws = new WebSocket('ws://' + base + '/websockify?' + q);
              ws.onclose = async (e) => {
                const r = await fetch('http://' + base + '/websockify?' + q);
                resolve({code: e.code, status: r.status, text: await r.text()});
              };
            });
            Promise.all([probe('token=nosuch'), probe('token=down')]).then(done);
            """
            unknown, down = driver.execute_async_script(script, "127.0.0.1:%d" % port)
    assert unknown["code"] == 1006 and unknown["status"] == 404
    assert "unknown token" in unknown["text"]
    assert down["code"] == 1006 and down["status"] == 502
    assert "unreachable" in down["text"] and str(dead) in down["text"]
    log = wsp.log()
    assert "404 unknown token" in log and "502" in log  # each failure has its log line
    assert "nosuch" not in log  # tokens are redacted in the log


def test_seed_commands_work_as_written(tmp_path):
    """The seed's exact usage: `--web DIR --token-plugin TokenFile --token-source
    token.conf PORT`, then vnc.html?path=websockify/?token=test1 and Connect."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with realpeers.xvnc("320x200") as (display, vnc_port):
        tokens = tmp_path / "token.conf"
        tokens.write_text("test1: 127.0.0.1:%d\n" % vnc_port)
        web = os.path.join(realpeers.ROOT, "web")
        with realpeers.proxy("--web", web, "--token-plugin", "TokenFile", "--token-source", str(tokens)) as wsp:
            with realpeers.chromium() as driver:
                driver.get("http://127.0.0.1:%d/vnc.html?path=websockify/?token=test1" % wsp.port)
                driver.find_element(By.ID, "btn-connect").click()
                WebDriverWait(driver, 15).until(
                    lambda d: d.execute_script("return document.body.dataset.state") == "connected")
                status = driver.find_element(By.ID, "status").text
                size = driver.execute_script(
                    "const c = document.querySelector('canvas'); return [c.width, c.height];")
        banner = wsp.banner()
    assert status.startswith("Connected to ")
    assert size == [320, 200]
    assert "Open http://127.0.0.1:%d/vnc.html?path=websockify?token=test1" % wsp.port in banner


ATTACK_PAGE = """<!doctype html><title>elsewhere</title>
<script>
const victim = new URLSearchParams(location.search).get('victim');
window.results = [];
const url = victim + '/websockify?token=good';
const img = new Image(); img.src = url;
fetch(url, {mode: 'no-cors'}).then(() => results.push('fetch')).catch(() => results.push('fetch failed'));
fetch(url, {mode: 'no-cors', method: 'POST', body: 'x'}).catch(() => {});
const ws = new WebSocket(url.replace(/^http/, 'ws'));
ws.onclose = (e) => results.push('ws closed ' + e.code);
ws.onopen = () => results.push('ws open');
document.write('<iframe src="' + url + '"></iframe>');
</script>"""


def test_a_page_on_another_origin_cannot_make_the_proxy_connect(tmp_path):
    """Issue 10.5: with ExpectOrigin, nothing a cross-site page can send (an
    image, a no-cors fetch or POST, an iframe, a WebSocket) reaches a target."""
    from conftest import EchoServer
    target = EchoServer()
    attacker_root = tmp_path / "attacker"
    attacker_root.mkdir()
    (attacker_root / "attack.html").write_text(ATTACK_PAGE)
    tokens = tmp_path / "tokens.conf"
    tokens.write_text("good: 127.0.0.1:%d\n" % target.port)
    port = realpeers.free_port()
    origin = "http://127.0.0.1:%d" % port
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(attacker_root))
    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        with realpeers.proxy("--token-plugin", "TokenFile", "--token-source", str(tokens),
                             "--auth-plugin", "ExpectOrigin", "--auth-source", origin, port=port) as wsp, \
                realpeers.chromium() as driver:
            driver.get("http://127.0.0.1:%d/attack.html?victim=%s" % (attacker.server_address[1], origin))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                results = driver.execute_script("return window.results")
                if "ws closed 1006" in results and any(r.startswith("fetch") for r in results):
                    break
                time.sleep(0.1)
            time.sleep(0.5)
            assert "ws closed 1006" in results and "ws open" not in results, results
            assert target.connections == 0, "a cross-site page reached the target"
            assert "403 origin not allowed" in wsp.log()
            # The same WebSocket from the proxy's own origin does connect, so
            # the count above could have moved.
            driver.get(origin + "/websockify")
            opened = driver.execute_async_script("""
                const done = arguments[0], ws = new WebSocket(location.origin.replace('http', 'ws') + '/websockify?token=good');
                ws.onopen = () => { ws.close(); done(true); }; ws.onclose = () => done(false);""")
            assert opened is True
            assert target.connections == 1
    finally:
        attacker.shutdown()
        attacker.server_close()
        target.close()


def test_health_checks_do_not_cost_the_user_their_vnc_server(tmp_path):
    """A plain GET of the WebSocket path (curl, a load balancer's health check,
    the page's own probe) must not connect to the target: TigerVNC counts each
    such connection as a failed login and blacklists the address after a few."""
    with realpeers.xvnc(security="VncAuth", password="s3cret") as (_, vnc_port):
        tokens = tmp_path / "tokens.conf"
        tokens.write_text("vm: 127.0.0.1:%d\n" % vnc_port)
        with realpeers.proxy("--token-plugin", "TokenFile", "--token-source", str(tokens)) as wsp:
            for _ in range(20):
                with socket.create_connection(("127.0.0.1", wsp.port), timeout=5) as probe:
                    probe.sendall(get_request("/websockify?token=vm"))
                    assert read_response(probe).status == 426
            sock, buf = raw_websocket(wsp.port, "/websockify?token=vm")
            rfb = _RfbOverWebSocket(sock, buf)
            try:
                assert rfb.read(12) == b"RFB 003.008\n"
                sock.sendall(ws_frame(0x2, b"RFB 003.008\n"))
                count = rfb.read(1)[0]
                assert count != 0, "Xvnc refused us: %r" % rfb.read(4)
                assert 2 in rfb.read(count)      # VncAuth offered: the server still takes us
            finally:
                sock.close()


class _RfbOverWebSocket:
    """The server's RFB bytes, out of the binary frames that carry them."""

    def __init__(self, sock, buf):
        self.sock, self.buf, self.pending = sock, buf, bytearray()
        sock.settimeout(5)

    def read(self, count):
        while len(self.pending) < count:
            _, opcode, payload = read_ws_frame(self.sock, self.buf)
            assert opcode == 0x2, opcode
            self.pending += payload
        out = bytes(self.pending[:count])
        del self.pending[:count]
        return out
