// Tests for web/ui/params.js: URL parameters, the WebSocket URL, the probe URL
// and close reasons. Node's built-in runner, no npm: `node --test tests/js/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
    parseParams, buildWebSocketUrl, describeEndpoint, probeUrlFor, reasonFromProbe, describeClose, DEFAULTS,
    MAX_REASON_CHARS,
} from '../../web/ui/params.js';

const page = (href) => {
    const u = new URL(href);
    return { protocol: u.protocol, hostname: u.hostname, port: u.port, href: u.href };
};

test('defaults match noVNC', () => {
    const { config, warnings } = parseParams('', '');
    // Written out, not compared with DEFAULTS itself (that would hold whatever DEFAULTS said).
    assert.deepEqual(config, {
        host: '', port: '', encrypt: null, path: 'websockify', password: '', autoconnect: false,
        reconnect: false, reconnectDelay: 5000, resize: 'off', viewClip: false, viewOnly: false, shared: true,
        quality: 6, compression: 2, showDot: false, logging: 'warn', encoding: '', lowColour: false,
        viewClip: false, bell: true, repeaterID: '', target: '',
    });
    assert.notEqual(config, DEFAULTS, 'a copy: the page may change its config (resize) without touching DEFAULTS');
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
        '&show_dot=true&logging=debug&encoding=hextile&low_colour=1&view_clip=1&bell=off&repeaterID=1234&target=vm7', '');
    assert.deepEqual(warnings, []);
    assert.deepEqual(config, {
        host: 'example.org', port: '6080', encrypt: true, path: 'ws', password: 'pw',
        autoconnect: true, reconnect: true, reconnectDelay: 250, resize: 'scale', viewClip: true, viewOnly: true,
        shared: false, quality: 3, compression: 9, showDot: true, logging: 'debug',
        encoding: 'hextile', lowColour: true, viewClip: true, bell: false, repeaterID: '1234', target: 'vm7',
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

test('noVNC 1.7 names: logging=none, bell=on/off, repeaterID checked', () => {
    const { config, warnings } = parseParams('?logging=none&bell=on&repeaterID=12%2034');
    assert.equal(config.logging, 'none');
    assert.equal(config.bell, true);
    assert.equal(config.repeaterID, '');
    assert.deepEqual(warnings, ['ignoring repeaterID="12 34"']);
});

test('with host, path is from that host\'s root and port only when given (noVNC)', () => {
    const at = page('http://h.test:6080/sub/vnc.html');
    assert.equal(buildWebSocketUrl(parseParams('?host=vnc.test&path=websockify/?token=a').config, at),
        'ws://vnc.test/websockify/?token=a');
    assert.equal(buildWebSocketUrl(parseParams('?host=vnc.test&port=6081&path=/x/ws').config, at),
        'ws://vnc.test:6081/x/ws');
    assert.equal(buildWebSocketUrl(parseParams('?host=vnc.test&encrypt=1').config, at),
        'wss://vnc.test/websockify');
});

test('path may be a whole URL (noVNC)', () => {
    const at = page('http://h.test:6080/vnc.html');
    assert.equal(buildWebSocketUrl(parseParams('?path=' + encodeURIComponent('wss://o.test:444/ws?token=t')).config, at),
        'wss://o.test:444/ws?token=t');
    assert.equal(buildWebSocketUrl(parseParams('?path=' + encodeURIComponent('https://o.test/ws')).config, at),
        'wss://o.test/ws');
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

test('a 401 probe tells the person to reload the page and sign in', () => {
    // wsproxy's own text, a web server's HTML page and an empty body all say the same.
    for (const body of ['authentication required\n', '<html><body>401</body></html>', '']) {
        const reason = reasonFromProbe(401, 'Unauthorized', body);
        assert.match(reason, /user name and password/);
        assert.match(reason, /reload the page and sign in/);
    }
});

test('close descriptions prefer the server reason', () => {
    assert.equal(describeClose(1000, 'bye'), 'bye');
    assert.equal(describeClose(1006, ''), 'connection lost (1006)');
    assert.equal(describeClose(4321, ''), 'closed (4321)');
});

test('describeEndpoint: scheme, host and path; query names without their values; never credentials', () => {
    assert.equal(describeEndpoint('ws://127.0.0.1:6080/websockify'), 'ws://127.0.0.1:6080/websockify');
    assert.equal(describeEndpoint('wss://h.example/vnc/websockify/?token=s3cret&token=2&x='),
        'wss://h.example/vnc/websockify/?token=\u2026&x=\u2026');
    assert.equal(describeEndpoint('ws://[::1]:6080/websockify'), 'ws://[::1]:6080/websockify');
    assert.equal(describeEndpoint('ws://user:pw@h:1/p'), 'ws://h:1/p');
    assert.equal(describeEndpoint('ws://h/<b>x</b>'), 'ws://h/%3Cb%3Ex%3C/b%3E');
    assert.equal(describeEndpoint('not a url'), '');
});
