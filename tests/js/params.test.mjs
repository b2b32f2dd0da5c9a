// Tests for the page helpers: web/ui/params.js (URL parameters, WebSocket URL,
// close reasons), web/ui/geometry.js (wheel accumulation, buttons, scaling) and the
// key logic of web/ui/input.js (driven with plain event objects, no DOM).
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
import { keysymFromEvent } from '../../web/core/keysyms.js';

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
        '&show_dot=true&logging=debug&encoding=hextile&low_colour=1', '');
    assert.deepEqual(warnings, []);
    assert.deepEqual(config, {
        host: 'example.org', port: '6080', encrypt: true, path: 'ws', password: 'pw',
        autoconnect: true, reconnect: true, reconnectDelay: 250, resize: 'scale', viewOnly: true,
        shared: false, quality: 3, compression: 9, showDot: true, logging: 'debug',
        encoding: 'hextile', lowColour: true,
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

// ---- web/ui/input.js key logic, driven with plain objects (no DOM needed for this part)

async function makeInput(platform) {
    // Node 21+ has a read-only navigator of its own; Input reads the platform from it.
    Object.defineProperty(globalThis, 'navigator', { value: { platform }, configurable: true, writable: true });
    const { Input } = await import('../../web/ui/input.js');
    const sent = [];
    const rfb = {
        keyEvent: (sym, down, code) => sent.push([sym.toString(16), down, code]),
        pointerEvent: (x, y, m) => sent.push(['p', x, y, m]),
    };
    const input = new Input({
        canvas: {}, getRfb: () => rfb, getSize: () => ({ width: 100, height: 100 }),
        keysymFor: keysymFromEvent, onLeave: () => sent.push('leave'),
        log: { debug() {}, info() {}, warn() {}, error() {} },
    });
    input.setEnabled(true);
    return { input, sent };
}

let stamp = 0;
function key(key, code, extra = {}) {
    return {
        key, code, location: 0, repeat: false, isComposing: false, keyCode: 0,
        shiftKey: false, ctrlKey: false, altKey: false, metaKey: false,
        timeStamp: extra.timeStamp ?? (stamp += 100), prevented: false,
        preventDefault() { this.prevented = true; }, ...extra,
    };
}

test('input: key up sends the keysym that went down, even if Shift changed', async () => {
    const { input, sent } = await makeInput('Linux x86_64');
    input._onKeyDown(key('Shift', 'ShiftLeft', { shiftKey: true }));
    input._onKeyDown(key('A', 'KeyA', { shiftKey: true }));
    input._onKeyUp(key('Shift', 'ShiftLeft'));
    input._onKeyUp(key('a', 'KeyA'));
    assert.deepEqual(sent, [
        ['ffe1', true, 'ShiftLeft'], ['41', true, 'KeyA'], ['ffe1', false, 'ShiftLeft'], ['41', false, 'KeyA'],
    ]);
});

test('input: blur releases everything held, once', async () => {
    const { input, sent } = await makeInput('Linux x86_64');
    input._onKeyDown(key('Control', 'ControlLeft', { ctrlKey: true }));
    input._onKeyDown(key('x', 'KeyX', { ctrlKey: true }));
    input.releaseAll();
    input.releaseAll();
    assert.deepEqual(sent.slice(2), [['78', false, 'KeyX'], ['ffe3', false, 'ControlLeft']]);
});

test('input: Windows AltGr (fake ControlLeft + AltRight) becomes ISO_Level3_Shift only', async () => {
    const { input, sent } = await makeInput('Win32');
    input._onKeyDown(key('Control', 'ControlLeft', { ctrlKey: true, timeStamp: 1000 }));
    input._onKeyDown(key('AltGraph', 'AltRight', { ctrlKey: true, altKey: true, timeStamp: 1001 }));
    input._onKeyDown(key('@', 'KeyQ', { ctrlKey: true, altKey: true, timeStamp: 1100 }));
    input._onKeyUp(key('@', 'KeyQ', { ctrlKey: true, altKey: true }));
    input._onKeyUp(key('Control', 'ControlLeft', { altKey: true }));
    input._onKeyUp(key('AltGraph', 'AltRight'));
    assert.deepEqual(sent, [
        ['fe03', true, 'AltRight'], ['40', true, 'KeyQ'], ['40', false, 'KeyQ'], ['fe03', false, 'AltRight'],
    ]);
});

test('input: Windows real Ctrl is sent once the AltGr window has passed', async () => {
    const { input, sent } = await makeInput('Win32');
    input._onKeyDown(key('Control', 'ControlLeft', { ctrlKey: true, timeStamp: 1000 }));
    input._onKeyDown(key('c', 'KeyC', { ctrlKey: true, timeStamp: 1200 }));
    input._onKeyUp(key('c', 'KeyC', { ctrlKey: true }));
    input._onKeyUp(key('Control', 'ControlLeft'));
    assert.deepEqual(sent, [
        ['ffe3', true, 'ControlLeft'], ['63', true, 'KeyC'], ['63', false, 'KeyC'], ['ffe3', false, 'ControlLeft'],
    ]);
});

test('input: a dead key sends nothing; the composed character goes as a keysym alone', async () => {
    const { input, sent } = await makeInput('Linux x86_64');
    const dead = key('Dead', 'BracketLeft');
    input._onKeyDown(dead);
    input._onKeyUp(key('Dead', 'BracketLeft'));
    input._onKeyDown(key('é', 'KeyE'));
    input._onKeyUp(key('e', 'KeyE'));
    assert.equal(dead.prevented, false); // the browser must see it to compose
    assert.deepEqual(sent, [['e9', true, undefined], ['e9', false, undefined]]);
});

test('input: F8 leaves the canvas, Shift+F8 sends F8, IME keys are left alone', async () => {
    const { input, sent } = await makeInput('Linux x86_64');
    input._onKeyDown(key('F8', 'F8'));
    input._onKeyDown(key('F8', 'F8', { shiftKey: true }));
    input._onKeyDown(key('Process', 'KeyA', { isComposing: true, keyCode: 229 }));
    assert.deepEqual(sent, ['leave', ['ffc5', true, 'F8'], ['ffc5', false, 'F8']]);
});

test('input: a modifier whose keyup went elsewhere is released on the next key', async () => {
    const { input, sent } = await makeInput('Linux x86_64');
    input._onKeyDown(key('Alt', 'AltLeft', { altKey: true }));
    input._onKeyDown(key('x', 'KeyX')); // altKey false now: Alt was let go in another window
    assert.deepEqual(sent, [['ffe9', true, 'AltLeft'], ['ffe9', false, 'AltLeft'], ['78', true, 'KeyX']]);
});

test('input: sticky modifiers hold until toggled, and view-only sends nothing', async () => {
    const { input, sent } = await makeInput('Linux x86_64');
    assert.equal(input.setSticky('ctrl', true), true);
    input.releaseKeys(); // blur of the canvas (a toolbar click) must not drop it
    assert.deepEqual(sent, [['ffe3', true, 'ControlLeft']]);
    input.setSticky('ctrl', false);
    input.setEnabled(false);
    input._onKeyDown(key('a', 'KeyA'));
    input.tap(0xff09, 'Tab');
    assert.deepEqual(sent, [['ffe3', true, 'ControlLeft'], ['ffe3', false, 'ControlLeft']]);
});

test('input: soft keyboard keys go out as given, only when enabled; 229 keydowns are left to it', async () => {
    const { input, sent } = await makeInput('Linux x86_64');
    const ime = key('Unidentified', '', { keyCode: 229 });
    input._onKeyDown(ime);
    assert.equal(ime.prevented, false);   // the browser goes on to fire input events
    input.sendKeys([[0x68, true], [0x68, false]]);
    input.setEnabled(false);              // view-only / disconnected
    input.sendKeys([[0x69, true], [0x69, false]]);
    assert.deepEqual(sent, [['68', true, undefined], ['68', false, undefined]]);
});
