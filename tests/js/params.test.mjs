// Tests for the page's pure helpers: web/ui/params.js (URL parameters, WebSocket URL,
// close reasons) and web/ui/geometry.js (wheel accumulation, buttons, scaling).
// Node's built-in runner, no npm: `node --test tests/js/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
    parseParams, buildWebSocketUrl, probeUrlFor, reasonFromProbe, describeClose, DEFAULTS,
    MAX_REASON_CHARS,
} from '../../web/ui/params.js';
import {
    WheelAccumulator, BUTTON, DELTA_LINE, DELTA_PAGE, WHEEL_MAX_STEPS,
    maskFromDomButtons, maskFromDomButton, clientToFramebuffer, fitSize,
} from '../../web/ui/geometry.js';

const page = (href) => {
    const u = new URL(href);
    return { protocol: u.protocol, hostname: u.hostname, port: u.port, href: u.href };
};

test('defaults match noVNC', () => {
    const { config, warnings } = parseParams('', '');
    assert.deepEqual(config, { ...DEFAULTS });
    assert.equal(config.path, 'websockify');
    assert.equal(config.shared, true);
    assert.equal(config.resize, 'off');
    assert.equal(config.reconnectDelay, 5000);
    assert.deepEqual(warnings, []);
});

test('every noVNC parameter is read', () => {
    const { config, warnings } = parseParams(
        '?host=example.org&port=6080&encrypt=1&path=ws&password=pw&autoconnect=true&reconnect=1' +
        '&reconnect_delay=250&resize=scale&view_only=1&shared=0&quality=3&compression=9' +
        '&show_dot=true&logging=debug&encoding=hextile', '');
    assert.deepEqual(warnings, []);
    assert.deepEqual(config, {
        host: 'example.org', port: '6080', encrypt: true, path: 'ws', password: 'pw',
        autoconnect: true, reconnect: true, reconnectDelay: 250, resize: 'scale', viewOnly: true,
        shared: false, quality: 3, compression: 9, showDot: true, logging: 'debug',
        encoding: 'hextile',
    });
});

test('fragment overrides query', () => {
    const { config } = parseParams('?password=fromquery&resize=scale', '#password=fromhash');
    assert.equal(config.password, 'fromhash');
    assert.equal(config.resize, 'scale');
});

test('bad values are ignored with a warning, not guessed', () => {
    const { config, warnings } = parseParams(
        '?resize=stretch&quality=12&port=99999&autoconnect=maybe&logging=loud&reconnect_delay=x', '');
    assert.equal(config.resize, 'off');
    assert.equal(config.quality, 6);
    assert.equal(config.port, '');
    assert.equal(config.autoconnect, false);
    assert.equal(config.logging, 'warn');
    assert.equal(config.reconnectDelay, 5000);
    assert.equal(warnings.length, 6);
});

test('reconnect_delay has a floor so a dead server is not hammered', () => {
    assert.equal(parseParams('?reconnect_delay=0').config.reconnectDelay, 100);
});

test('unknown parameters are ignored silently', () => {
    const { warnings } = parseParams('?view_clip=1&bell=0', '');
    assert.deepEqual(warnings, []);
});

test('default websocket URL: same host and port, path relative to the page directory', () => {
    const { config } = parseParams('');
    assert.equal(buildWebSocketUrl(config, page('http://h.test:6080/vnc.html')),
        'ws://h.test:6080/websockify');
    assert.equal(buildWebSocketUrl(config, page('http://h.test:6080/sub/dir/vnc.html?x=1')),
        'ws://h.test:6080/sub/dir/websockify');
    assert.equal(buildWebSocketUrl(config, page('http://h.test/vnc.html')), 'ws://h.test/websockify');
});

test('path=websockify/?token=test1 works exactly as written', () => {
    const { config } = parseParams('?path=websockify/?token=test1');
    assert.equal(config.path, 'websockify/?token=test1');
    assert.equal(buildWebSocketUrl(config, page('http://127.0.0.1:6080/vnc.html?path=websockify/?token=test1')),
        'ws://127.0.0.1:6080/websockify/?token=test1');
});

test('path with an encoded query and without the slash', () => {
    const { config } = parseParams('?path=websockify%3Ftoken%3Dabc');
    assert.equal(buildWebSocketUrl(config, page('http://h.test:6080/vnc.html')),
        'ws://h.test:6080/websockify?token=abc');
});

test('absolute path stays absolute', () => {
    const { config } = parseParams('?path=/other/ws');
    assert.equal(buildWebSocketUrl(config, page('http://h.test/a/b/vnc.html')), 'ws://h.test/other/ws');
});

test('wss when encrypt=1 or the page is https', () => {
    assert.equal(buildWebSocketUrl(parseParams('?encrypt=1').config, page('http://h.test:6080/vnc.html')),
        'wss://h.test:6080/websockify');
    assert.equal(buildWebSocketUrl(parseParams('').config, page('https://h.test/vnc.html')),
        'wss://h.test/websockify');
    assert.equal(buildWebSocketUrl(parseParams('?port=443').config, page('https://h.test:8443/vnc.html')),
        'wss://h.test/websockify');
    // http page on the default port asking for TLS keeps the page's port, as noVNC does.
    assert.equal(buildWebSocketUrl(parseParams('?encrypt=1').config, page('http://h.test/vnc.html')),
        'wss://h.test:80/websockify');
});

test('host and port parameters, IPv6 bracketed', () => {
    assert.equal(buildWebSocketUrl(parseParams('?host=10.1.2.3&port=5959').config, page('http://h.test/vnc.html')),
        'ws://10.1.2.3:5959/websockify');
    assert.equal(buildWebSocketUrl(parseParams('?host=::1&port=6080').config, page('http://h.test/vnc.html')),
        'ws://[::1]:6080/websockify');
    assert.equal(buildWebSocketUrl(parseParams('').config, page('http://[::1]:6080/vnc.html')),
        'ws://[::1]:6080/websockify');
});

test('probe URL is the same endpoint over http(s)', () => {
    assert.equal(probeUrlFor('ws://h:1/websockify?token=x'), 'http://h:1/websockify?token=x');
    assert.equal(probeUrlFor('wss://h/websockify/?token=x'), 'https://h/websockify/?token=x');
});

test('probe reasons', () => {
    assert.equal(reasonFromProbe(404, 'Not Found', "unknown token 'x'\n"), "unknown token 'x'");
    assert.equal(reasonFromProbe(502, 'Bad Gateway',
        'target 127.0.0.1:5901 unreachable: connection refused'),
    'target 127.0.0.1:5901 unreachable: connection refused');
    assert.equal(reasonFromProbe(200, 'OK', 'fine'), null);
    assert.equal(reasonFromProbe(426, 'Upgrade Required', ''), '426 Upgrade Required');
    assert.equal(reasonFromProbe(500, '', '<html><body>oops</body></html>'), 'HTTP 500');
    assert.equal(reasonFromProbe(404, '', 'a\u0000b\u001bc'), 'a b c');
    const long = reasonFromProbe(502, '', 'x'.repeat(1000));
    assert.equal(long.length, MAX_REASON_CHARS);
});

test('close descriptions prefer the server reason', () => {
    assert.equal(describeClose(1000, 'bye'), 'bye');
    assert.equal(describeClose(1006, ''), 'connection lost (1006)');
    assert.equal(describeClose(4321, ''), 'closed (4321)');
});

test('wheel: pixel deltas accumulate into steps', () => {
    const w = new WheelAccumulator();
    assert.deepEqual(w.add(0, 20), []);
    assert.deepEqual(w.add(0, 20), []);
    assert.deepEqual(w.add(0, 20), [BUTTON.WHEEL_DOWN]);
    assert.deepEqual(w.add(0, -120), [BUTTON.WHEEL_UP, BUTTON.WHEEL_UP]); // remainder dropped on reversal
    assert.deepEqual(w.add(-50, 0), [BUTTON.WHEEL_LEFT]);
    assert.deepEqual(w.add(100, 0), [BUTTON.WHEEL_RIGHT, BUTTON.WHEEL_RIGHT]);
});

test('wheel: line and page modes are scaled, and capped', () => {
    const w = new WheelAccumulator();
    assert.deepEqual(w.add(0, 3, DELTA_LINE), [BUTTON.WHEEL_DOWN]); // one Firefox notch
    w.reset();
    const many = w.add(0, 5, DELTA_PAGE);
    assert.equal(many.length, WHEEL_MAX_STEPS);
    assert.deepEqual(w.add(0, 1), []); // the overflow was dropped, not saved up
});

test('buttons map from DOM to RFB order', () => {
    assert.equal(maskFromDomButtons(1), BUTTON.LEFT);
    assert.equal(maskFromDomButtons(2), BUTTON.RIGHT);
    assert.equal(maskFromDomButtons(4), BUTTON.MIDDLE);
    assert.equal(maskFromDomButtons(7), 7);
    assert.equal(maskFromDomButtons(8 | 16), 0);
    assert.equal(maskFromDomButton(0), BUTTON.LEFT);
    assert.equal(maskFromDomButton(1), BUTTON.MIDDLE);
    assert.equal(maskFromDomButton(2), BUTTON.RIGHT);
    assert.equal(maskFromDomButton(3), 0);
});

test('client coordinates map through CSS scaling and clamp', () => {
    const rect = { left: 10, top: 20, width: 400, height: 300 };
    assert.deepEqual(clientToFramebuffer(10, 20, rect, 800, 600), { x: 0, y: 0 });
    assert.deepEqual(clientToFramebuffer(210, 170, rect, 800, 600), { x: 400, y: 300 });
    assert.deepEqual(clientToFramebuffer(2000, -5, rect, 800, 600), { x: 799, y: 0 });
    assert.deepEqual(clientToFramebuffer(5, 5, { left: 0, top: 0, width: 0, height: 0 }, 800, 600),
        { x: 0, y: 0 });
});

test('fit keeps the aspect ratio', () => {
    assert.deepEqual(fitSize(800, 600, 400, 400), { width: 400, height: 300, scale: 0.5 });
    assert.deepEqual(fitSize(800, 600, 1600, 600), { width: 800, height: 600, scale: 1 });
    assert.equal(fitSize(1024, 768, 390, 700).width, 390);
    assert.deepEqual(fitSize(0, 0, 100, 100), { width: 0, height: 0, scale: 1 });
});
