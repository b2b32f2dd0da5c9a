// The security-type modules' refusals and edge cases, through RFB with no server
// (the happy paths against a scripted server: tests/test_web_security_types.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { RFB } from '../../web/core/rfb.js';
import { Display } from '../../web/core/display.js';
import { vncAuthResponse } from '../../web/core/des.js';

const enc = new TextEncoder();

function bytes(...parts) {
    const out = [];
    for (const p of parts) {
        if (typeof p === 'string') out.push(...enc.encode(p));
        else out.push(...p);
    }
    return Uint8Array.from(out);
}
const u16 = (v) => [v >>> 8, v & 0xff];
const u32 = (v) => [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const cap = (code, sig) => [...u32(code), ...enc.encode(sig)];

function client(options = {}) {
    const sent = [], events = [];
    const rfb = new RFB({ display: new Display(), send: (b) => sent.push(Uint8Array.from(b)), onEvent: (e) => events.push(e), options });
    return {
        rfb, sent, events,
        detail: () => events.filter((e) => e.type === 'state').at(-1).detail,
        asked: () => events.filter((e) => e.type === 'credentials-required').map((e) => e.types),
    };
}

const serverInit = (name) => bytes(u16(4), u16(3), [32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0], u32(name.length), name);

test('Tight: a server that insists on a real tunnel is refused by name', () => {
    const c = client();
    c.rfb.receive(bytes('RFB 003.008\n', [1, 16], u32(1), cap(1, 'SICRTUNNELXX')));
    assert.equal(c.rfb.state, 'failed');
    assert.match(c.detail(), /Tight security: server requires a tunnel \(SICRTUNNELXX\); this client supports NOTUNNEL only/);
});

test('Tight with VncAuth: challenge, then a ServerInit whose capability section arrives a byte at a time', () => {
    const c = client({ password: 'pw' });
    const challenge = Uint8Array.from({ length: 16 }, (_, i) => i * 7);
    c.rfb.receive(bytes('RFB 003.008\n', [1, 16], u32(1), cap(0, 'TGHTNOTUNNEL'), u32(2),
        cap(130, 'TGHTXTRNAUTH'), cap(2, 'STDVVNCAUTH_'), challenge, u32(0)));
    const sent = bytes(...c.sent);
    // version, type 16, tunnel 0, auth 2, the DES response, ClientInit
    assert.deepEqual(Array.from(sent.subarray(12, 21)), [16, 0, 0, 0, 0, 0, 0, 0, 2]);
    assert.deepEqual(sent.subarray(21, 37), vncAuthResponse('pw', challenge));
    const init = bytes(serverInit('tight'), u16(1), u16(0), u16(1), u16(0), cap(150, 'TGHTCUS_EOCU'), cap(7, 'TGHTTIGHT___'));
    for (const b of init) c.rfb.receive(Uint8Array.of(b));
    assert.equal(c.rfb.state, 'connected');
    c.rfb.receive(Uint8Array.of(2));   // Bell: the stream is in step after the skipped section
    assert.equal(c.events.at(-1).type, 'bell');
});

test('Apple Diffie-Hellman: a key size out of range is refused before buffering it', () => {
    const c = client();
    c.rfb.receive(bytes('RFB 003.008\n', [1, 30], u16(2), u16(0xffff)));
    assert.match(c.detail(), /Diffie-Hellman: server key size 65535 bytes is outside 8\.\.1024/);
});

test('MSLogonII: a public value outside the group is refused', () => {
    const c = client({ username: 'u', password: 'p' });
    c.rfb.receive(bytes('RFB 003.008\n', [1, 113], [0, 0, 0, 0, 0, 0, 0, 5], [0, 0, 0, 0, 0, 0, 0, 23], [0, 0, 0, 0, 0, 0, 0, 99]));
    assert.match(c.detail(), /MSLogonII: server sent invalid Diffie-Hellman parameters/);
});

test('Apple Diffie-Hellman: a username of 64 bytes or more is refused, not cut short', () => {
    const c = client({ username: 'x'.repeat(64), password: 'p' });
    const p = new Uint8Array(16).fill(0xff);
    p[15] = 0x61;
    const pub = new Uint8Array(16);
    pub[15] = 9;
    c.rfb.receive(bytes('RFB 003.008\n', [1, 30], u16(2), u16(16), p, pub));
    assert.match(c.detail(), /username is too long \(64 bytes; at most 63\)/);
});

test('RA2ne: a server key below 1024 bits is refused', () => {
    const small = client();
    small.rfb.receive(bytes('RFB 003.008\n', [1, 6], u32(512)));
    assert.match(small.detail(), /RSA-AES: server key is 512 bits, outside 1024\.\.8192/);
});

test('VeNCrypt prefers None, then VncAuth, over Plain; TLS-only still says what to enable', () => {
    const c = client({ password: 'pw' });
    c.rfb.receive(bytes('RFB 003.008\n', [1, 19], [0, 2], [0], [3], u32(256), u32(2), u32(259)));
    assert.deepEqual(Array.from(bytes(...c.sent).subarray(-4)), u32(2));
    assert.equal(c.rfb.state, 'authenticating');
    const tls = client();
    tls.rfb.receive(bytes('RFB 003.008\n', [1, 19], [0, 2], [0], [2], u32(258), u32(261)));
    assert.match(tls.detail(), /server requires TLS security types only.*enable VncAuth or None on the server/);
});

test('options.securityTypes limits the choice, and says so when nothing is left', () => {
    const c = client({ securityTypes: [16] });
    c.rfb.receive(bytes('RFB 003.008\n', [2, 2, 16]));
    assert.deepEqual(Array.from(bytes(...c.sent).subarray(12)), [16]);
    const none = client({ securityTypes: [30] });
    none.rfb.receive(bytes('RFB 003.008\n', [2, 2, 113]));
    assert.equal(none.detail(), 'no allowed security type: the server offers VNC Authentication (2), MSLogonII (113); ' +
        'this client is set to use only Diffie-Hellman (30)');
});

test('xvp asks for username and password, and sends the target from the options', () => {
    const c = client({ target: 'vm-7' });
    c.rfb.receive(bytes('RFB 003.008\n', [1, 22]));
    assert.deepEqual(c.asked(), [['username', 'password']]);
    c.rfb.sendPassword('pw', 'bob');
    assert.deepEqual(Array.from(bytes(...c.sent).subarray(13)), [3, 4, ...enc.encode('bobvm-7')]);
});
