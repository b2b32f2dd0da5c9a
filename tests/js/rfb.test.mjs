// Tests for web/core/rfb.js: a scripted fake server feeds bytes to an RFB object
// and reads back what it sends. Needs: Node's test runner, node:zlib (to build
// server-side Extended Clipboard data), and the real web/core modules (display,
// decoders, des, messages, clipboard, inflate) -- no npm packages.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { performance } from 'node:perf_hooks';

import { RFB, STATES, PSEUDO, SECURITY, decodeServerText, authFailureText } from '../../web/core/rfb.js';
import { Display } from '../../web/core/display.js';
import { vncAuthResponse } from '../../web/core/des.js';

// ---------------------------------------------------------------------------
// Byte building

class W {
    constructor() { this.a = []; }
    u8(...v) { for (const x of v) this.a.push(x & 0xff); return this; }
    u16(v) { return this.u8(v >>> 8, v); }
    u32(v) { return this.u8(v >>> 24, v >>> 16, v >>> 8, v); }
    s32(v) { return this.u32(v >>> 0); }
    str(s) { for (const c of s) this.a.push(c.charCodeAt(0)); return this; }
    bytes(b) { for (const x of b) this.a.push(x); return this; }
    done() { return Uint8Array.from(this.a); }
}
const w = () => new W();
const ascii = (s) => w().str(s).done();
const utf8 = (s) => new TextEncoder().encode(s);

function concat(chunks) {
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of chunks) { out.set(c, o); o += c.length; }
    return out;
}

// The server's natural format (ignored by the client) and ServerInit.
function serverInit(width, height, nameBytes) {
    return w().u16(width).u16(height)
        .u8(32, 24, 0, 1).u16(255).u16(255).u16(255).u8(16, 8, 0, 0, 0, 0)
        .u32(nameBytes.length).bytes(nameBytes).done();
}

function rectHeader(x, y, width, height, encoding) {
    return w().u16(x).u16(y).u16(width).u16(height).s32(encoding);
}

// RGBX pixels for a w*h raw rectangle, a distinct colour per pixel.
function rawPixels(width, height, seed = 0) {
    const out = new Uint8Array(width * height * 4);
    for (let i = 0; i < width * height; i++) {
        out[i * 4] = (i * 17 + seed) & 0xff;
        out[i * 4 + 1] = (i * 41 + 3 * seed) & 0xff;
        out[i * 4 + 2] = (i * 73 + 7 * seed) & 0xff;
        out[i * 4 + 3] = 0x5a;   // X: must not leak into alpha
    }
    return out;
}

// ---------------------------------------------------------------------------
// Client side: an RFB with a real Display, recording what it sends and emits.

function makeClient(options = {}, displayOptions = {}) {
    const sent = [];
    const events = [];
    const display = new Display(displayOptions);
    const rfb = new RFB({
        display,
        send: (b) => sent.push(Uint8Array.from(b)),
        onEvent: (e) => events.push(e),
        options,
    });
    return {
        rfb, display, sent, events,
        // Everything sent since the last take().
        take() { const all = concat(sent); sent.length = 0; return all; },
        eventsOf(type) { return events.filter((e) => e.type === type); },
        states() { return events.filter((e) => e.type === 'state').map((e) => e.state); },
    };
}

// Parses client-to-server messages after the handshake.
function parseClientMessages(bytes) {
    const out = [];
    let o = 0;
    const u16 = (i) => (bytes[i] << 8) | bytes[i + 1];
    const u32 = (i) => ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]) >>> 0;
    while (o < bytes.length) {
        const type = bytes[o];
        let len;
        const m = { type };
        switch (type) {
            case 0: len = 20; break;
            case 2: {
                const n = u16(o + 2);
                len = 4 + 4 * n;
                m.encodings = [];
                for (let i = 0; i < n; i++) m.encodings.push(u32(o + 4 + 4 * i) | 0);
                break;
            }
            case 3:
                len = 10;
                Object.assign(m, { incremental: bytes[o + 1], x: u16(o + 2), y: u16(o + 4), width: u16(o + 6), height: u16(o + 8) });
                break;
            case 4:
                len = 8;
                Object.assign(m, { down: bytes[o + 1], keysym: u32(o + 4) });
                break;
            case 5:
                len = 6;
                Object.assign(m, { mask: bytes[o + 1], x: u16(o + 2), y: u16(o + 4) });
                break;
            case 6: {
                const signed = u32(o + 4) | 0;
                const n = Math.abs(signed);
                len = 8 + n;
                if (signed < 0) {
                    m.extended = true;
                    m.flags = u32(o + 8);
                    m.payload = bytes.slice(o + 12, o + len);
                } else {
                    m.text = bytes.slice(o + 8, o + len);
                }
                break;
            }
            case 150:
                len = 10;
                Object.assign(m, { enable: bytes[o + 1], x: u16(o + 2), y: u16(o + 4), width: u16(o + 6), height: u16(o + 8) });
                break;
            case 248:
                len = 9 + bytes[o + 8];
                Object.assign(m, { flags: u32(o + 4), payload: bytes.slice(o + 9, o + len) });
                break;
            case 251: {
                const n = bytes[o + 6];
                len = 8 + 16 * n;
                Object.assign(m, { width: u16(o + 2), height: u16(o + 4), screens: [] });
                for (let i = 0; i < n; i++) {
                    const s = o + 8 + 16 * i;
                    m.screens.push({ id: u32(s), x: u16(s + 4), y: u16(s + 6), width: u16(s + 8), height: u16(s + 10), flags: u32(s + 12) });
                }
                break;
            }
            case 255:
                len = 12;
                Object.assign(m, { sub: bytes[o + 1], down: u16(o + 2), keysym: u32(o + 4), keycode: u32(o + 8) });
                break;
            default:
                throw new Error(`test parser: unknown client message ${type} at ${o}`);
        }
        assert.ok(o + len <= bytes.length, `client message ${type} truncated`);
        m.bytes = bytes.slice(o, o + len);
        out.push(m);
        o += len;
    }
    return out;
}

// Runs a 3.8 / security None handshake to 'connected' and forgets what was sent.
function connected(options = {}, { width = 4, height = 3, name = 'test desktop', display = {} } = {}) {
    const c = makeClient(options, display);
    c.rfb.receive(ascii('RFB 003.008\n'));
    c.rfb.receive(Uint8Array.of(1, 1));
    c.rfb.receive(w().u32(0).done());
    c.rfb.receive(serverInit(width, height, utf8(name)));
    assert.equal(c.rfb.state, 'connected');
    c.init = parseClientMessages(c.take().subarray(12 + 1 + 1));
    c.events.length = 0;
    return c;
}

// ---------------------------------------------------------------------------
// States table

test('a handshake walks the STATES table, and a session that ended stays ended', () => {
    const c = connected();
    const walk = ['connecting', ...c.states()];
    for (let i = 1; i < walk.length; i++) {
        assert.ok(STATES[walk[i - 1]].includes(walk[i]), `${walk[i - 1]} -> ${walk[i]} is in STATES`);
    }
    const failed = makeClient();
    failed.rfb.receive(ascii('SSH-2.0-x\r\n'));
    assert.equal(failed.rfb.state, 'failed');
    const closed = connected();
    closed.rfb.close('bye');
    for (const end of [failed, closed]) {
        const final = end.rfb.state;
        end.take();
        end.events.length = 0;
        // Neither more bytes, nor a close, nor credentials, nor input move it or reach the server.
        end.rfb.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 1, 0, 0, 0, 0, 2)]));
        end.rfb.close('again');
        end.rfb.sendPassword('pw');
        end.rfb.keyEvent(0x61, true);
        end.rfb.pointerEvent(1, 1, 1);
        end.rfb.clipboardSend('x');
        assert.equal(end.rfb.state, final);
        assert.deepEqual(end.events, [], `${final}: no events`);
        assert.equal(end.take().length, 0, `${final}: nothing sent`);
    }
});

// ---------------------------------------------------------------------------
// Protocol versions

test('RFB 3.8 with security None: full handshake, then init messages', () => {
    const c = makeClient();
    assert.equal(c.rfb.state, 'connecting');
    c.rfb.receive(ascii('RFB 003.008\n'));
    assert.deepEqual(c.take(), ascii('RFB 003.008\n'));
    c.rfb.receive(Uint8Array.of(2, 2, 1));          // offers VncAuth and None
    assert.deepEqual(c.take(), Uint8Array.of(1));   // picks None
    c.rfb.receive(w().u32(0).done());               // SecurityResult OK
    assert.deepEqual(c.take(), Uint8Array.of(1));   // ClientInit, shared
    c.rfb.receive(serverInit(640, 480, utf8('desk')));
    const msgs = parseClientMessages(c.take());
    assert.deepEqual(msgs.map((m) => m.type), [0, 2, 3]);
    // SetPixelFormat: 32 bpp, depth 24, little-endian, true colour, 255/255/255, shifts 0/8/16.
    assert.deepEqual(Array.from(msgs[0].bytes.subarray(4, 17)), [32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16]);
    assert.deepEqual({ ...msgs[2], bytes: undefined }, { type: 3, incremental: 0, x: 0, y: 0, width: 640, height: 480, bytes: undefined });
    assert.deepEqual(c.states(), ['protocol-version', 'security', 'authenticating', 'server-init', 'connected']);
    assert.deepEqual(c.eventsOf('desktop-name'), [{ type: 'desktop-name', name: 'desk' }]);
    assert.deepEqual(c.eventsOf('resize'), [{ type: 'resize', width: 640, height: 480 }]);
    assert.equal(c.display.width, 640);
    assert.equal(c.display.height, 480);
});

test('RFB 3.3: server picks None as a U32, no SecurityResult', () => {
    const c = makeClient({ shared: false });
    c.rfb.receive(ascii('RFB 003.003\n'));
    assert.deepEqual(c.take(), ascii('RFB 003.003\n'));
    c.rfb.receive(w().u32(1).done());
    assert.deepEqual(c.take(), Uint8Array.of(0));   // ClientInit, not shared
    assert.equal(c.rfb.state, 'server-init');
    c.rfb.receive(serverInit(2, 2, utf8('x')));
    assert.equal(c.rfb.state, 'connected');
});

test('RFB 3.7: client picks None and goes straight to ClientInit', () => {
    const c = makeClient();
    c.rfb.receive(ascii('RFB 003.007\n'));
    assert.deepEqual(c.take(), ascii('RFB 003.007\n'));
    c.rfb.receive(Uint8Array.of(1, 1));
    assert.deepEqual(c.take(), Uint8Array.of(1, 1));  // type None, then ClientInit
    c.rfb.receive(serverInit(2, 2, utf8('x')));
    assert.equal(c.rfb.state, 'connected');
});

for (const [offered, answered] of [['RFB 003.889\n', 'RFB 003.008\n'], ['RFB 004.001\n', 'RFB 003.008\n'],
    ['RFB 005.000\n', 'RFB 003.008\n'], ['RFB 003.005\n', 'RFB 003.003\n'], ['RFB 003.006\n', 'RFB 003.003\n']]) {
    test(`server version ${JSON.stringify(offered)} is answered with ${JSON.stringify(answered)}`, () => {
        const c = makeClient();
        c.rfb.receive(ascii(offered));
        assert.deepEqual(c.take(), ascii(answered));
        assert.equal(c.rfb.state, 'security');
    });
}

test("'RFB 003.002' fails clearly", () => {
    const c = makeClient();
    c.rfb.receive(ascii('RFB 003.002\n'));
    assert.equal(c.rfb.state, 'failed');
    assert.match(c.eventsOf('state').at(-1).detail, /3\.2.*older than 3\.3/);
    assert.equal(c.take().length, 0);
});

test('a peer that is not an RFB server fails at once, showing what it sent', () => {
    const c = makeClient();
    c.rfb.receive(ascii('HTTP/1.1 400 Bad Request\r\n'));
    assert.equal(c.rfb.state, 'failed');
    assert.match(c.eventsOf('state').at(-1).detail, /not an RFB.*HTTP\/1\.1 400/);
    const d = makeClient();
    d.rfb.receive(ascii('RFB 03.8\n\n\n\n'));
    assert.equal(d.rfb.state, 'failed');
    assert.match(d.eventsOf('state').at(-1).detail, /malformed ProtocolVersion/);
});

test('the version arriving one byte at a time', () => {
    const c = makeClient();
    for (const b of ascii('RFB 003.008\n')) c.rfb.receive(Uint8Array.of(b));
    assert.deepEqual(c.take(), ascii('RFB 003.008\n'));
});

// ---------------------------------------------------------------------------
// Security

const CHALLENGE = Uint8Array.from({ length: 16 }, (_, i) => (i * 29 + 7) & 0xff);

test('VNC Authentication with the right password: response is vncAuthResponse(challenge)', () => {
    const c = makeClient({ password: 'secret' });
    c.rfb.receive(ascii('RFB 003.008\n'));
    c.take();
    c.rfb.receive(Uint8Array.of(1, 2));
    assert.deepEqual(c.take(), Uint8Array.of(2));
    assert.equal(c.rfb.state, 'authenticating');
    c.rfb.receive(CHALLENGE);
    assert.deepEqual(c.take(), vncAuthResponse('secret', CHALLENGE));
    c.rfb.receive(w().u32(0).done());
    assert.deepEqual(c.take(), Uint8Array.of(1));
    c.rfb.receive(serverInit(2, 2, utf8('x')));
    assert.equal(c.rfb.state, 'connected');
});

test('VNC Authentication with the wrong password: server reason surfaced, security-failure emitted', () => {
    const c = makeClient({ password: 'wrong' });
    c.rfb.receive(ascii('RFB 003.008\n'));
    c.rfb.receive(Uint8Array.of(1, 2));
    c.rfb.receive(CHALLENGE);
    const reason = 'Authentication failed: bad password';
    c.rfb.receive(w().u32(1).u32(reason.length).str(reason).done());
    assert.equal(c.rfb.state, 'failed');
    assert.deepEqual(c.eventsOf('security-failure'), [{ type: 'security-failure', reason }]);
    // The server's "Authentication failed:" is not said a second time after ours.
    assert.equal(c.eventsOf('state').at(-1).detail, 'authentication failed: bad password');
});

test('a reason that only restates the failure gives the likely cause instead, once', () => {
    for (const [reason, method, want] of [
        ['Authentication failure', 'vnc', 'authentication failed: wrong password?'],      // TigerVNC
        ['Authentication failed', 'vnc', 'authentication failed: wrong password?'],       // QEMU
        ['VNC authentication failed!', 'vnc', 'authentication failed: wrong password?'],
        ['', 'vnc', 'authentication failed: wrong password?'],
        ['authentication failure', 'plain', 'authentication failed: wrong username or password?'],
        ['Authentication failure', 'none', 'authentication failed: the server gave no reason'],
        ['Authentication failures exceeded', 'vnc', 'authentication failed: Authentication failures exceeded'],
        ['password check failed!', 'vnc', 'authentication failed: password check failed!'],
        ['invalid password or username', 'plain', 'authentication failed: invalid password or username'],
    ]) {
        assert.equal(authFailureText(reason, method), want, JSON.stringify(reason));
    }
    const c = makeClient({ password: 'wrong' });
    c.rfb.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 2), CHALLENGE]));
    const reason = 'Authentication failure';
    c.rfb.receive(w().u32(1).u32(reason.length).str(reason).done());
    assert.equal(c.eventsOf('state').at(-1).detail, 'authentication failed: wrong password?');
});

test('VNC Authentication, reason split over many packets', () => {
    const c = makeClient({ password: 'wrong' });
    const reason = 'nope';
    const all = concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 2), CHALLENGE, w().u32(1).u32(reason.length).str(reason).done()]);
    for (const b of all) c.rfb.receive(Uint8Array.of(b));
    assert.deepEqual(c.eventsOf('security-failure'), [{ type: 'security-failure', reason }]);
});

test('VNC Authentication on 3.3: server picks type 2; failure without a reason', () => {
    const c = makeClient({ password: 'pw' });
    c.rfb.receive(ascii('RFB 003.003\n'));
    c.take();
    c.rfb.receive(w().u32(2).done());
    c.rfb.receive(CHALLENGE);
    assert.deepEqual(c.take(), vncAuthResponse('pw', CHALLENGE));
    c.rfb.receive(w().u32(1).done());
    assert.equal(c.rfb.state, 'failed');
    assert.equal(c.eventsOf('security-failure').length, 1);
    assert.equal(c.eventsOf('state').at(-1).detail, 'authentication failed: wrong password?');
});

test('no password given: credentials-required, then sendPassword() continues', () => {
    const c = makeClient();
    c.rfb.receive(ascii('RFB 003.008\n'));
    c.rfb.receive(Uint8Array.of(1, 2));
    c.rfb.receive(CHALLENGE);
    c.take();
    assert.deepEqual(c.eventsOf('credentials-required'), [{ type: 'credentials-required', types: ['password'] }]);
    assert.equal(c.rfb.state, 'authenticating');
    c.rfb.receive(w().u32(0).done());          // early SecurityResult waits in the queue
    assert.equal(c.take().length, 0);
    c.rfb.sendPassword('later');
    assert.deepEqual(c.take(), concat([vncAuthResponse('later', CHALLENGE), Uint8Array.of(1)]));
    assert.equal(c.rfb.state, 'server-init');
});

test('VeNCrypt Plain: version 0.2, subtype 256, username and password', () => {
    const c = makeClient({ username: 'üser', password: 'pässword' });
    c.rfb.receive(ascii('RFB 003.008\n'));
    c.take();
    c.rfb.receive(Uint8Array.of(1, 19));
    assert.deepEqual(c.take(), Uint8Array.of(19));
    c.rfb.receive(Uint8Array.of(0, 2));
    assert.deepEqual(c.take(), Uint8Array.of(0, 2));
    c.rfb.receive(Uint8Array.of(0));                              // ack
    c.rfb.receive(w().u8(2).u32(262).u32(256).done());            // X509Plain, Plain
    const user = utf8('üser'), pass = utf8('pässword');
    assert.deepEqual(c.take(), w().u32(256).u32(user.length).u32(pass.length).bytes(user).bytes(pass).done());
    c.rfb.receive(w().u32(0).done());
    assert.deepEqual(c.take(), Uint8Array.of(1));
    assert.equal(c.rfb.state, 'server-init');
});

test('VeNCrypt Plain without credentials asks for username and password', () => {
    const c = makeClient();
    c.rfb.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 19), Uint8Array.of(0, 2, 0), w().u8(1).u32(256).done()]));
    c.take();
    assert.deepEqual(c.eventsOf('credentials-required'), [{ type: 'credentials-required', types: ['username', 'password'] }]);
    c.rfb.sendPassword('pw', 'me');
    assert.deepEqual(c.take(), w().u32(2).u32(2).str('me').str('pw').done());
});

test('VeNCrypt with only TLS/X509 subtypes fails with the TLS message', () => {
    const c = makeClient({ username: 'u', password: 'p' });
    c.rfb.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 19), Uint8Array.of(0, 2, 0),
        w().u8(3).u32(261).u32(262).u32(258).done()]));
    assert.equal(c.rfb.state, 'failed');
    assert.equal(c.eventsOf('state').at(-1).detail,
        'server requires TLS security types only (VeNCrypt X509/TLS); enable VncAuth or None on the server');
});

test('VeNCrypt 0.1 only, or a rejected version, fails clearly', () => {
    const c = makeClient();
    c.rfb.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 19), Uint8Array.of(0, 1)]));
    assert.match(c.eventsOf('state').at(-1).detail, /VeNCrypt 0\.1/);
    const d = makeClient();
    d.rfb.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 19), Uint8Array.of(0, 2, 1)]));
    assert.match(d.eventsOf('state').at(-1).detail, /rejected VeNCrypt/);
});

test('unsupported security type sets give clear messages', () => {
    const tls = makeClient();
    tls.rfb.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 18)]));
    assert.equal(tls.rfb.state, 'failed');
    assert.match(tls.eventsOf('state').at(-1).detail, /^server requires TLS security types only \(TLS \(18\)\); enable VncAuth or None/);
    const other = makeClient();
    other.rfb.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(2, 5, 17)]));
    assert.match(other.eventsOf('state').at(-1).detail, /no supported security type.*RA2 \(5\), Ultra \(17\)/);
    const v33 = makeClient();
    v33.rfb.receive(concat([ascii('RFB 003.003\n'), w().u32(16).done()]));
    assert.match(v33.eventsOf('state').at(-1).detail, /Tight \(16\)/);
});

test('server refusing the connection (zero types) shows its reason', () => {
    const c = makeClient();
    const reason = 'Too many security failures';
    c.rfb.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(0), w().u32(reason.length).str(reason).done()]));
    assert.equal(c.rfb.state, 'failed');
    assert.match(c.eventsOf('state').at(-1).detail, /refused.*Too many security failures/);
    assert.equal(c.eventsOf('security-failure').length, 0);
    const d = makeClient();
    d.rfb.receive(concat([ascii('RFB 003.003\n'), w().u32(0).u32(3).str('bye').done()]));
    assert.match(d.eventsOf('state').at(-1).detail, /bye/);
});

test('close() during the handshake is a failure; after connecting a disconnect', () => {
    const c = makeClient();
    c.rfb.receive(ascii('RFB 003.008\n'));
    c.rfb.close('socket closed');
    assert.equal(c.rfb.state, 'failed');
    assert.match(c.eventsOf('state').at(-1).detail, /during security: socket closed/);
    const d = connected();
    d.rfb.close('bye');
    assert.equal(d.rfb.state, 'disconnected');
    d.rfb.receive(Uint8Array.of(2));   // ignored once final
    assert.equal(d.eventsOf('bell').length, 0);
});

// ---------------------------------------------------------------------------
// ServerInit and encodings

test('ServerInit name with HTML stays a plain string; invalid UTF-8 reads as Latin-1', () => {
    const html = '<img src=x onerror="alert(1)">&amp; <b>desk</b>';
    const d = makeClient();
    d.rfb.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 1), w().u32(0).done(),
        serverInit(2, 2, utf8(html))]));
    assert.deepEqual(d.eventsOf('desktop-name'), [{ type: 'desktop-name', name: html }]);
    assert.equal(typeof d.eventsOf('desktop-name')[0].name, 'string');
    const latin = makeClient();
    latin.rfb.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 1), w().u32(0).done(),
        serverInit(2, 2, Uint8Array.of(0x4d, 0xfc, 0x6c, 0x6c))]));
    assert.deepEqual(latin.eventsOf('desktop-name'), [{ type: 'desktop-name', name: 'Müll' }]);
    assert.equal(decodeServerText(Uint8Array.of(0x63, 0x61, 0x66, 0xe9)), 'café');
    assert.equal(decodeServerText(utf8('Ünïcode ☃')), 'Ünïcode ☃');
});

test('SetEncodings: default order, quality and compression, forced encodings', () => {
    const c = connected();
    const enc = c.init.find((m) => m.type === 2).encodings;
    assert.deepEqual(enc.slice(0, 9), [1, 7, -260, 16, 21, 5, 6, 2, 0]);
    assert.ok(enc.includes(-32 + 6) && enc.includes(-256 + 2));
    assert.ok(enc.indexOf(0x574d5664) >= 0 && enc.indexOf(0x574d5664) < enc.indexOf(-239), 'VMware cursor before Cursor');
    for (const p of [-223, -224, -239, -308, -307, -258, -312, -313, PSEUDO.EXTENDED_CLIPBOARD]) {
        assert.ok(enc.includes(p), `pseudo-encoding ${p}`);
    }
    const d = connected({ encodings: ['hextile'], quality: 9, compression: 0 });
    const enc2 = d.init.find((m) => m.type === 2).encodings;
    assert.equal(enc2[0], 5);
    assert.ok(!enc2.includes(7) && !enc2.includes(0));
    assert.ok(enc2.includes(-23) && enc2.includes(-256));
    assert.throws(() => makeClient({ encodings: ['nonsense'] }), /unknown encoding/);
});

test('lowColour asks for 8 bpp BGR233', () => {
    const c = connected({ lowColour: true });
    const pf = c.init.find((m) => m.type === 0).bytes;
    assert.deepEqual(Array.from(pf.subarray(4, 17)), [8, 8, 0, 1, 0, 7, 0, 7, 0, 3, 0, 3, 6]);
    // No JPEG quality level at 8 bpp (Tight JPEG is 24-bit only); everything else stays.
    const enc = c.init.find((m) => m.type === 2).encodings;
    assert.deepEqual(enc.slice(0, 8), [1, 7, 16, 5, 6, 2, 0, -256 + 2]);   // no TightPNG, no JPEG
    assert.ok(!enc.some((e) => e >= -32 && e <= -23), `no JPEG quality in ${enc}`);
    assert.ok(enc.includes(-256 + 2) && enc.includes(-239) && enc.includes(-224));
});

// ---------------------------------------------------------------------------
// FramebufferUpdate

// An update with two raw rectangles, a DesktopName and a LastRect (count 65535).
function sampleUpdate() {
    return w().u8(0, 0).u16(0xffff)
        .bytes(rectHeader(0, 0, 4, 2, 0).done()).bytes(rawPixels(4, 2, 1))
        .bytes(rectHeader(1, 2, 3, 1, 0).done()).bytes(rawPixels(3, 1, 9))
        .bytes(rectHeader(0, 0, 0, 0, -307).done()).u32(5).str('named')
        .bytes(rectHeader(0, 0, 0, 0, -224).done())
        .u8(2)   // and a Bell after the update
        .done();
}

test('a Raw FramebufferUpdate split at every byte boundary yields the same framebuffer', () => {
    const update = sampleUpdate();
    const ref = connected();
    ref.rfb.receive(update);
    const expected = Uint8Array.from(ref.display.buffer);
    // Spot-check the reference itself: pixel (1,0) is raw pixel 1, seed 1, alpha forced.
    assert.deepEqual(ref.display.getPixel(1, 0), [18, 44, 80, 255]);
    assert.deepEqual(ref.display.getPixel(1, 2), [9, 27, 63, 255]);
    assert.deepEqual(ref.eventsOf('desktop-name'), [{ type: 'desktop-name', name: 'named' }]);
    assert.equal(ref.eventsOf('update-done').length, 1);
    assert.equal(ref.eventsOf('bell').length, 1);
    const after = parseClientMessages(ref.take());
    assert.deepEqual(after.map((m) => [m.type, m.incremental, m.width, m.height]), [[3, 1, 4, 3]]);

    for (let k = 0; k <= update.length; k++) {
        const c = connected();
        c.rfb.receive(update.subarray(0, k));
        c.rfb.receive(update.subarray(k));
        assert.equal(c.rfb.state, 'connected', `split at ${k}`);
        assert.deepEqual(Uint8Array.from(c.display.buffer), expected, `split at ${k}`);
        assert.deepEqual(c.events.map((e) => e.type), ['desktop-name', 'update-done', 'bell'], `split at ${k}`);
    }
    const one = connected();
    for (const b of update) one.rfb.receive(Uint8Array.of(b));
    assert.deepEqual(Uint8Array.from(one.display.buffer), expected);
});

// ---------------------------------------------------------------------------
// Presenting: one whole frame per update, and no parsing ahead of it

// A client whose display records each present: the buffer as shown then, and
// how many messages the client had sent by then.
function presentingClient(displayOptions = {}) {
    const shown = [];
    let c = null;
    c = connected({}, {
        width: 4, height: 4,
        display: {
            ...displayOptions,
            // (c is still null at ServerInit's present of the blank frame.)
            onPresent: () => c && shown.push({ pixels: Uint8Array.from(c.display.buffer), sentBefore: c.sent.length }),
        },
    });
    c.shown = shown;
    return c;
}

test('an update split byte by byte is presented once, whole, after its last rectangle', () => {
    const update = sampleUpdate();
    const ref = connected({}, { width: 4, height: 4 });
    ref.rfb.receive(update);
    const c = presentingClient();
    for (const b of update) c.rfb.receive(Uint8Array.of(b));
    assert.equal(c.shown.length, 1, 'one present for the update, not one per row or rectangle');
    assert.deepEqual(c.shown[0].pixels, Uint8Array.from(ref.display.buffer), 'what was shown is the whole update');
    assert.equal(c.shown[0].sentBefore, 0, 'the next request goes out after the present');
    assert.deepEqual(parseClientMessages(c.take()).map((m) => m.type), [3]);
});

// Tight JPEG rectangle whose "JPEG" is [w, h, r, g, b] for the fake decoder below.
function fakeJpegRect(x, y, width, height, r, g, b) {
    const data = [width, height, r, g, b];
    return rectHeader(x, y, width, height, 7).u8(0x90, data.length).bytes(data).done();
}

// Decodes fakeJpegRect data after `delay(r)` ms, so decodes can finish out of order.
function fakeJpegDecoder(delay) {
    return (mime, bytes) => new Promise((resolve) => {
        const [width, height, r, g, b] = bytes;
        const data = new Uint8ClampedArray(width * height * 4);
        for (let i = 0; i < width * height; i++) data.set([r, g, b, 255], i * 4);
        setTimeout(() => resolve({ width, height, data }), delay(r));
    });
}

const colourAt = (pixels, x, y) => Array.from(pixels.subarray((y * 4 + x) * 4, (y * 4 + x) * 4 + 4));

test('images decoded out of order are applied in order, then the update is presented once', async () => {
    // The first image is slow, the second (overlapping it) fast: the second must still win.
    const c = presentingClient({ decodeImage: fakeJpegDecoder((r) => (r === 10 ? 40 : 1)) });
    c.rfb.receive(concat([w().u8(0, 0).u16(3).done(),
        fakeJpegRect(0, 0, 4, 4, 10, 10, 10),
        fakeJpegRect(2, 0, 2, 4, 20, 20, 20),
        rectHeader(0, 3, 1, 1, 0).done(), Uint8Array.of(30, 30, 30, 0)]));
    assert.equal(c.shown.length, 0, 'nothing shown while images decode');
    await c.display.whenIdle();
    assert.equal(c.shown.length, 1);
    const shown = c.shown[0].pixels;
    assert.deepEqual(colourAt(shown, 0, 0), [10, 10, 10, 255]);
    assert.deepEqual(colourAt(shown, 3, 0), [20, 20, 20, 255], 'the later image wins');
    assert.deepEqual(colourAt(shown, 0, 3), [30, 30, 30, 255], 'the raw rect after the images too');
    assert.equal(c.eventsOf('update-done').length, 1);
});

test('while an update waits for an image, the next is not parsed nor requested', async () => {
    const c = presentingClient({ decodeImage: fakeJpegDecoder(() => 20) });
    const first = concat([w().u8(0, 0).u16(1).done(), fakeJpegRect(0, 0, 4, 4, 10, 10, 10)]);
    const second = concat([w().u8(0, 0).u16(1).done(), rectHeader(0, 0, 1, 1, 0).done(),
        Uint8Array.of(50, 50, 50, 0), Uint8Array.of(2)]);   // then a Bell
    c.rfb.receive(concat([first, second]));
    assert.equal(c.sent.length, 0, 'no FramebufferUpdateRequest before the present');
    assert.equal(c.eventsOf('bell').length, 0, 'the bytes after the update wait');
    assert.deepEqual(c.display.getPixel(0, 0), [0, 0, 0, 0], 'the next update is not drawn ahead');
    assert.equal(c.display.pending, true);
    await c.display.whenIdle();
    await Promise.resolve();   // rfb resumes from its own whenIdle() callback
    assert.equal(c.shown.length, 2);
    assert.deepEqual(colourAt(c.shown[0].pixels, 0, 0), [10, 10, 10, 255], 'first frame: the image');
    assert.equal(c.shown[0].sentBefore, 0);
    assert.deepEqual(colourAt(c.shown[1].pixels, 0, 0), [50, 50, 50, 255]);
    assert.deepEqual(colourAt(c.shown[1].pixels, 1, 0), [10, 10, 10, 255]);
    assert.equal(c.shown[1].sentBefore, 1, 'one request per presented update');
    assert.deepEqual(parseClientMessages(c.take()).map((m) => [m.type, m.incremental]), [[3, 1], [3, 1]]);
    assert.deepEqual(c.events.map((e) => e.type), ['update-done', 'update-done', 'bell']);
});

// ---------------------------------------------------------------------------
// Lossless refresh: a JPEG area that stays still is asked for again without JPEG

// Timers the test runs by hand: fire() runs what is pending, as if the time passed.
function manualTimers() {
    const pending = new Map();
    let next = 1;
    return {
        pending,
        set(fn, ms) { pending.set(next, { fn, ms }); return next++; },
        clear(handle) { pending.delete(handle); },
        fire() {
            const due = [...pending.values()];
            pending.clear();
            for (const t of due) t.fn();
        },
    };
}

function stillClient() {
    const timers = manualTimers();
    const c = connected({ timers }, { width: 16, height: 16, display: { decodeImage: fakeJpegDecoder(() => 0) } });
    c.timers = timers;
    c.userEncodings = c.init.find((m) => m.type === 2).encodings;
    return c;
}

const isQuality = (e) => e >= PSEUDO.JPEG_QUALITY_0 && e <= PSEUDO.JPEG_QUALITY_0 + 9;

function update(...rects) {
    return concat([w().u8(0, 0).u16(rects.length).done(), ...rects]);
}

function rawRect(x, y, width, height, seed = 0) {
    return concat([rectHeader(x, y, width, height, 0).done(), rawPixels(width, height, seed)]);
}

// Feeds an update and waits until it is presented (its images decoded).
async function feed(c, bytes) {
    c.rfb.receive(bytes);
    await c.display.whenIdle();
    await Promise.resolve();   // rfb resumes from its own whenIdle() callback
}

test('a JPEG area still for 500 ms is asked for again without JPEG, then the quality comes back', async () => {
    const c = stillClient();
    assert.ok(c.userEncodings.some(isQuality), 'the user quality is asked for at first');
    await feed(c, update(fakeJpegRect(2, 1, 3, 4, 10, 20, 30), fakeJpegRect(7, 6, 2, 2, 40, 50, 60)));
    assert.deepEqual(parseClientMessages(c.take()).map((m) => [m.type, m.incremental]), [[3, 1]]);
    assert.deepEqual([...c.timers.pending.values()].map((t) => t.ms), [500]);

    c.timers.fire();   // still for 500 ms
    const [setEnc, request, ...rest] = parseClientMessages(c.take());
    assert.equal(rest.length, 0);
    assert.equal(setEnc.type, 2);
    assert.deepEqual(setEnc.encodings, c.userEncodings.filter((e) => !isQuality(e)), 'the same set without quality');
    assert.deepEqual([request.type, request.incremental, request.x, request.y, request.width, request.height],
        [3, 0, 2, 1, 7, 7], 'a non-incremental request for the JPEG area (both rects)');

    // The server answers with that area, losslessly.
    await feed(c, update(rawRect(2, 1, 7, 7, 5)));
    const after = parseClientMessages(c.take());
    assert.deepEqual(after.map((m) => m.type), [2, 3]);
    assert.deepEqual(after[0].encodings, c.userEncodings, 'the user quality again, for the motion to come');
    assert.equal(after[1].incremental, 1);
    assert.equal(c.timers.pending.size, 0, 'the screen is exact: nothing more to refresh');
    assert.deepEqual(c.display.getPixel(2, 1), [5, 15, 35, 255], 'the lossless pixels are shown');
});

test('only a still screen is refreshed: motion restarts the 500 ms, empty updates do not', async () => {
    const c = stillClient();
    await feed(c, update(fakeJpegRect(0, 0, 4, 4, 10, 20, 30)));
    const [first] = c.timers.pending.keys();
    await feed(c, update());   // nothing changed
    assert.deepEqual([...c.timers.pending.keys()], [first], 'an empty update keeps the still time running');
    await feed(c, update(rawRect(8, 8, 2, 2)));   // something moved
    assert.equal(c.timers.pending.size, 1);
    assert.notDeepEqual([...c.timers.pending.keys()], [first], 'a changed update starts the still time again');
    c.take();
    c.timers.fire();
    const request = parseClientMessages(c.take()).find((m) => m.type === 3);
    assert.deepEqual([request.incremental, request.x, request.y, request.width, request.height], [0, 0, 0, 4, 4],
        'only the JPEG area, not the lossless one');
});

test('a JPEG update already on its way does not end the refresh; the lossless answer does', async () => {
    const c = stillClient();
    await feed(c, update(fakeJpegRect(0, 0, 8, 8, 10, 20, 30)));
    c.timers.fire();
    c.take();
    // Sent by the server before it read our SetEncodings: still JPEG.
    await feed(c, update(fakeJpegRect(1, 1, 2, 2, 70, 70, 70)));
    assert.deepEqual(parseClientMessages(c.take()).map((m) => m.type), [3], 'no quality yet');
    await feed(c, update(rawRect(0, 0, 8, 8, 9)));
    assert.deepEqual(parseClientMessages(c.take()).map((m) => m.type), [2, 3], 'now the quality comes back');
    assert.equal(c.timers.pending.size, 0, 'the late JPEG inside the refreshed area was redrawn too');
});

test('a server that sends JPEG without a quality level is asked three times, then left alone', async () => {
    const c = stillClient();
    await feed(c, update(fakeJpegRect(0, 0, 4, 4, 10, 20, 30)));
    for (let i = 0; i < 3; i++) {
        c.timers.fire();
        await feed(c, update(fakeJpegRect(0, 0, 4, 4, 10, 20, 30)));
    }
    c.take();
    c.timers.fire();
    assert.deepEqual(parseClientMessages(c.take()).map((m) => [m.type, m.encodings?.some(isQuality)]),
        [[2, true]], 'the quality goes back, and nothing more is asked for');
    assert.equal(c.timers.pending.size, 0);
});

test('lossless updates and a closed session start no refresh', async () => {
    const c = stillClient();
    await feed(c, update(rawRect(0, 0, 4, 4)));
    assert.equal(c.timers.pending.size, 0, 'nothing lossy, nothing to refresh');
    await feed(c, update(fakeJpegRect(0, 0, 4, 4, 10, 20, 30)));
    assert.equal(c.timers.pending.size, 1);
    c.rfb.close('bye');
    assert.equal(c.timers.pending.size, 0, 'the still timer goes with the session');
});

test('update with zero rectangles still completes and asks again', () => {
    const c = connected();
    c.rfb.receive(Uint8Array.of(0, 0, 0, 0));
    assert.equal(c.eventsOf('update-done').length, 1);
    assert.deepEqual(parseClientMessages(c.take()).map((m) => m.type), [3]);
});

test('CopyRect goes through the decoder table with the same queue and display', () => {
    const c = connected();
    c.rfb.receive(concat([w().u8(0, 0).u16(2).bytes(rectHeader(0, 0, 2, 1, 0).done()).done(), rawPixels(2, 1, 5),
        rectHeader(2, 2, 2, 1, 1).u16(0).u16(0).done()]));
    assert.deepEqual(c.display.getPixel(2, 2), c.display.getPixel(0, 0));
    assert.deepEqual(c.display.getPixel(3, 2), c.display.getPixel(1, 0));
    assert.equal(c.eventsOf('update-done').length, 1);
});

test('DesktopSize resizes the display and the next request covers the new size', () => {
    const c = connected();
    c.rfb.receive(w().u8(0, 0).u16(1).bytes(rectHeader(0, 0, 8, 6, -223).done()).done());
    assert.deepEqual(c.eventsOf('resize'), [{ type: 'resize', width: 8, height: 6 }]);
    assert.equal(c.display.width, 8);
    assert.equal(c.display.height, 6);
    const req = parseClientMessages(c.take()).find((m) => m.type === 3);
    assert.deepEqual([req.incremental, req.width, req.height], [1, 8, 6]);
    // A raw rectangle in the new area is accepted now.
    c.rfb.receive(concat([w().u8(0, 0).u16(1).bytes(rectHeader(4, 4, 4, 2, 0).done()).done(), rawPixels(4, 2)]));
    assert.equal(c.rfb.state, 'connected');
});

test('ExtendedDesktopSize: layout kept for SetDesktopSize; a refusal is a message, not a failure', () => {
    const c = connected();
    assert.equal(c.rfb.requestResize(100, 50), false);   // not confirmed yet
    c.rfb.receive(w().u8(0, 0).u16(1).bytes(rectHeader(0, 0, 4, 3, -308).done())
        .u8(1, 0, 0, 0).u32(0x1234).u16(0).u16(0).u16(4).u16(3).u32(0x80).done());
    assert.equal(c.eventsOf('resize').length, 0);   // same size: layout only
    c.take();
    assert.equal(c.rfb.requestResize(100, 50), true);
    const [msg] = parseClientMessages(c.take());
    assert.equal(msg.type, 251);
    assert.deepEqual([msg.width, msg.height], [100, 50]);
    assert.deepEqual(msg.screens, [{ id: 0x1234, x: 0, y: 0, width: 100, height: 50, flags: 0x80 }]);
    // Refused: reason 1 (this client), status 1.
    c.rfb.receive(w().u8(0, 0).u16(1).bytes(rectHeader(1, 1, 0, 0, -308).done()).u8(0, 0, 0, 0).done());
    assert.equal(c.rfb.state, 'connected');
    assert.deepEqual(c.eventsOf('resize-rejected'), [{ type: 'resize-rejected', status: 1, message: 'resize is administratively prohibited' }]);
    // Accepted: new size.
    c.rfb.receive(w().u8(0, 0).u16(1).bytes(rectHeader(1, 0, 100, 50, -308).done())
        .u8(1, 0, 0, 0).u32(0x1234).u16(0).u16(0).u16(100).u16(50).u32(0x80).done());
    assert.deepEqual(c.eventsOf('resize'), [{ type: 'resize', width: 100, height: 50 }]);
    assert.equal(c.display.width, 100);
});

test('Cursor pseudo-encoding: RGBA with the bitmask as alpha, hotspot from x/y', () => {
    const c = connected();
    const pixels = w().u8(255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 9, 9, 9, 0).done();   // R, G / B, grey
    const mask = Uint8Array.of(0b10000000, 0b01000000);                                   // (0,0) and (1,1)
    c.rfb.receive(concat([w().u8(0, 0).u16(1).bytes(rectHeader(1, 0, 2, 2, -239).done()).done(), pixels, mask]));
    const [cur] = c.eventsOf('cursor');
    assert.deepEqual({ ...cur, rgba: Array.from(cur.rgba) }, {
        type: 'cursor', width: 2, height: 2, hotX: 1, hotY: 0,
        rgba: [255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 0, 9, 9, 9, 255],
    });
    assert.equal(c.eventsOf('update-done').length, 1);
});

test('Bell, SetColourMapEntries and QEMU audio are handled without losing sync', () => {
    const c = connected();
    c.rfb.receive(concat([
        Uint8Array.of(2),
        w().u8(1, 0).u16(0).u16(2).u16(1).u16(2).u16(3).u16(4).u16(5).u16(6).done(),
        w().u8(255, 1).u16(1).done(),                                  // audio begin
        w().u8(255, 1).u16(2).u32(5).u8(1, 2, 3, 4, 5).done(),          // audio data
        Uint8Array.of(2),
    ]));
    assert.equal(c.rfb.state, 'connected');
    assert.equal(c.eventsOf('bell').length, 2);
});

test('malformed server input fails with a reason instead of throwing', () => {
    const cases = [
        [Uint8Array.of(77), /unknown message type 77/],
        [w().u8(0, 0).u16(1).bytes(rectHeader(0, 0, 1, 1, 99).done()).done(), /encoding 99/],
        [w().u8(0, 0).u16(1).bytes(rectHeader(3, 0, 2, 1, 0).done()).done(), /outside the 4x3 framebuffer/],
        [w().u8(255, 7).done(), /QEMU message subtype 7/],
        [w().u8(3, 0, 0, 0).s32(-2).u8(0, 0).done(), /malformed extended clipboard/],
        [w().u8(0, 0).u16(1).bytes(rectHeader(0, 0, 5000, 5000, -239).done()).done(), /cursor, too large/],
    ];
    for (const [bytes, re] of cases) {
        const c = connected();
        assert.doesNotThrow(() => c.rfb.receive(bytes));
        assert.equal(c.rfb.state, 'failed');
        assert.match(c.eventsOf('state').at(-1).detail, re);
    }
});

test('corrupt data inside a decoder (a bad zlib stream) fails the connection with a reason', () => {
    const c = connected();
    const garbage = Uint8Array.of(0x78, 0x9c, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    assert.doesNotThrow(() => c.rfb.receive(concat([
        w().u8(0, 0).u16(1).bytes(rectHeader(0, 0, 2, 2, 6).done()).u32(garbage.length).done(), garbage])));
    assert.equal(c.rfb.state, 'failed');
    assert.match(c.eventsOf('state').at(-1).detail, /^protocol error: /);
});

test('oversized ServerCutText is skipped as it streams, then parsing continues', () => {
    const c = connected();
    const size = 17 * 1024 * 1024;
    c.rfb.receive(w().u8(3, 0, 0, 0).u32(size).done());
    const chunk = new Uint8Array(1024 * 1024);
    for (let left = size; left > 0; left -= chunk.length) c.rfb.receive(chunk.subarray(0, Math.min(chunk.length, left)));
    c.rfb.receive(Uint8Array.of(2));
    assert.equal(c.eventsOf('clipboard').length, 0);
    assert.equal(c.eventsOf('bell').length, 1);
});

// ---------------------------------------------------------------------------
// Clipboard

test('clipboard, classic Latin-1 both ways', () => {
    const c = connected();
    c.rfb.receive(w().u8(3, 0, 0, 0).u32(6).u8(0x63, 0x61, 0x66, 0xe9, 0x0a, 0x21).done());
    assert.deepEqual(c.eventsOf('clipboard'), [{ type: 'clipboard', text: 'café\n!' }]);
    c.rfb.clipboardSend('né€\r\nx');
    const [msg] = parseClientMessages(c.take());
    assert.equal(msg.type, 6);
    assert.deepEqual(Array.from(msg.text), [0x6e, 0xe9, 0x3f, 0x0a, 0x78]);
});

function extendedCut(flags, payload = new Uint8Array(0)) {
    return w().u8(3, 0, 0, 0).s32(-(4 + payload.length)).u32(flags).bytes(payload).done();
}
const CAPS = 1 << 24, REQUEST = 1 << 25, PEEK = 1 << 26, NOTIFY = 1 << 27, PROVIDE = 1 << 28, TEXT = 1;

function providedText(msg) {
    const plain = zlib.inflateSync(Buffer.from(msg.payload));
    const size = plain.readUInt32BE(0);
    return new TextDecoder().decode(plain.subarray(4, 4 + size));
}

test('extended clipboard: caps exchange, provide to the server, notify/request/provide from it', () => {
    const c = connected();
    c.rfb.receive(extendedCut(CAPS | REQUEST | PEEK | NOTIFY | PROVIDE | TEXT | (1 << 2), w().u32(1 << 20).u32(0).done()));
    const [caps] = parseClientMessages(c.take());
    assert.ok(caps.extended);
    assert.equal(caps.flags & 0xff0000ff, (CAPS | REQUEST | PEEK | NOTIFY | PROVIDE | TEXT) >>> 0);
    assert.equal(caps.payload.length, 4);   // one size, for text

    c.rfb.clipboardSend('héllo\nwörld ☃');
    const [provide] = parseClientMessages(c.take());
    assert.equal(provide.flags >>> 0, (PROVIDE | TEXT) >>> 0);
    assert.equal(providedText(provide), 'héllo\r\nwörld ☃\0');

    c.rfb.receive(extendedCut(NOTIFY | TEXT));
    const [request] = parseClientMessages(c.take());
    assert.equal(request.flags >>> 0, (REQUEST | TEXT) >>> 0);

    const text = utf8('ünï\r\ncode\0');
    const plain = concat([w().u32(text.length).done(), text]);
    const compressed = zlib.deflateSync(plain);
    c.rfb.receive(extendedCut(PROVIDE | TEXT, compressed));
    assert.deepEqual(c.eventsOf('clipboard'), [{ type: 'clipboard', text: 'ünï\ncode' }]);

    c.rfb.receive(extendedCut(REQUEST | TEXT));
    const [again] = parseClientMessages(c.take());
    assert.equal(providedText(again), 'héllo\r\nwörld ☃\0');

    c.rfb.receive(extendedCut(PEEK));
    const [notify] = parseClientMessages(c.take());
    assert.equal(notify.flags >>> 0, (NOTIFY | TEXT) >>> 0);
});

test('extended clipboard: text over the server limit is announced with notify', () => {
    const c = connected();
    c.rfb.receive(extendedCut(CAPS | REQUEST | NOTIFY | PROVIDE | TEXT, w().u32(0).done()));
    c.take();
    c.rfb.clipboardSend('abc');
    const [notify] = parseClientMessages(c.take());
    assert.equal(notify.flags >>> 0, (NOTIFY | TEXT) >>> 0);
    c.rfb.receive(extendedCut(REQUEST | TEXT));
    assert.equal(providedText(parseClientMessages(c.take())[0]), 'abc\0');
});

// ---------------------------------------------------------------------------
// Fence and continuous updates

test('ServerFence request is answered with Request cleared, unsupported bits dropped, same payload', () => {
    const c = connected();
    c.rfb.receive(w().u8(248, 0, 0, 0).u32(0x80000000 | 1 | 4 | (1 << 9)).u8(3).str('abc').done());
    const [reply] = parseClientMessages(c.take());
    assert.equal(reply.type, 248);
    assert.equal(reply.flags, 1);
    assert.deepEqual(Array.from(reply.payload), [0x61, 0x62, 0x63]);
    c.rfb.receive(w().u8(248, 0, 0, 0).u32(2).u8(0).done());   // a response: nothing to send
    assert.equal(c.take().length, 0);
    assert.equal(c.rfb.state, 'connected');
});

test('ContinuousUpdates: first EndOfContinuousUpdates enables them; no more incremental requests', () => {
    const c = connected();
    c.rfb.receive(Uint8Array.of(150));
    const [enable] = parseClientMessages(c.take());
    assert.deepEqual([enable.type, enable.enable, enable.x, enable.y, enable.width, enable.height], [150, 1, 0, 0, 4, 3]);
    c.rfb.receive(concat([w().u8(0, 0).u16(1).bytes(rectHeader(0, 0, 1, 1, 0).done()).done(), rawPixels(1, 1)]));
    assert.equal(c.eventsOf('update-done').length, 1);
    assert.equal(c.take().length, 0);
    // A resize re-sends the area.
    c.rfb.receive(w().u8(0, 0).u16(1).bytes(rectHeader(0, 0, 10, 10, -223).done()).done());
    const msgs = parseClientMessages(c.take());
    assert.deepEqual(msgs.map((m) => [m.type, m.width, m.height]), [[150, 10, 10]]);
    // The server ending them: back to requests.
    c.rfb.receive(Uint8Array.of(150));
    assert.deepEqual(parseClientMessages(c.take()).map((m) => [m.type, m.incremental]), [[3, 1]]);
});

// ---------------------------------------------------------------------------
// Input

test('pointer and key events; keysym 0 with no scancode is not sent', () => {
    const c = connected();
    c.rfb.pointerEvent(2, 1, 0b1010000);   // buttons 5 and 7 (wheel down, wheel right)
    c.rfb.pointerEvent(99, -5, 1);         // clamped into the framebuffer
    c.rfb.keyEvent(0x61, true, 'KeyA');
    c.rfb.keyEvent(0, true, 'Nothing');
    const msgs = parseClientMessages(c.take());
    assert.deepEqual(msgs.map((m) => m.type), [5, 5, 4]);
    assert.deepEqual([msgs[0].mask, msgs[0].x, msgs[0].y], [0b1010000, 2, 1]);
    assert.deepEqual([msgs[1].x, msgs[1].y], [3, 0]);
    assert.deepEqual([msgs[2].down, msgs[2].keysym], [1, 0x61]);
});

test('QEMU Extended Key Event: after the server confirms, keys carry XT scancodes', () => {
    const c = connected();
    c.rfb.receive(w().u8(0, 0).u16(1).bytes(rectHeader(0, 0, 4, 3, -258).done()).done());
    c.take();
    c.rfb.keyEvent(0x61, true, 'KeyA');
    c.rfb.keyEvent(0xff53, false, 'ArrowRight');
    c.rfb.keyEvent(0x20ac, true, 'NoSuchCode');     // unknown code: plain KeyEvent
    const msgs = parseClientMessages(c.take());
    assert.deepEqual(msgs.map((m) => [m.type, m.sub, m.down, m.keysym, m.keycode]), [
        [255, 0, 1, 0x61, 0x1e], [255, 0, 0, 0xff53, 0xcd], [4, undefined, 1, 0x20ac, undefined],
    ]);
    c.rfb.sendCtrlAltDel();
    const cad = parseClientMessages(c.take());
    assert.deepEqual(cad.map((m) => [m.down, m.keysym, m.keycode]), [
        [1, 0xffe3, 0x1d], [1, 0xffe9, 0x38], [1, 0xffff, 0xd3],
        [0, 0xffff, 0xd3], [0, 0xffe9, 0x38], [0, 0xffe3, 0x1d],
    ]);
});

test('viewOnly drops all input', () => {
    const c = connected({ viewOnly: true });
    c.rfb.pointerEvent(1, 1, 1);
    c.rfb.keyEvent(0x61, true, 'KeyA');
    c.rfb.sendCtrlAltDel();
    c.rfb.clipboardSend('x');
    assert.equal(c.rfb.requestResize(10, 10), false);
    assert.equal(c.take().length, 0);
});

test('setViewOnly (the proxy said so) drops all input from then on', () => {
    const c = connected();
    c.rfb.keyEvent(0x61, true, 'KeyA');
    assert.equal(c.take().length, 8);   // one KeyEvent
    c.rfb.setViewOnly();
    c.rfb.pointerEvent(1, 1, 1);
    c.rfb.keyEvent(0x61, false, 'KeyA');
    c.rfb.clipboardSend('x');
    assert.equal(c.take().length, 0);
});

test('input before connecting is dropped', () => {
    const c = makeClient();
    c.rfb.keyEvent(0x61, true);
    c.rfb.pointerEvent(0, 0, 0);
    assert.equal(c.take().length, 0);
});

test('an exception in the page handler does not break the protocol', () => {
    const reported = [];
    const saved = globalThis.reportError;
    globalThis.reportError = (err) => reported.push(err);
    try {
        connectWithFailingBellHandler();
        assert.deepEqual(reported.map((e) => e.message), ['page bug', 'page bug']);
    } finally {
        if (saved === undefined) delete globalThis.reportError;
        else globalThis.reportError = saved;
    }
});

// ---------------------------------------------------------------------------
// Limits a hostile server must not get past: zlib bombs and huge framebuffers

// A zlib stream of 64 MiB of zeros: about 64 KB on the wire (made once, on first use).
let bombCache = null;
function zlibBomb() {
    bombCache ??= new Uint8Array(zlib.deflateSync(Buffer.alloc(64 << 20), { level: 9 }));
    return bombCache;
}

// One FramebufferUpdate with a 64x64 rect in `encoding` whose zlib data is the bomb.
const BOMB_RECTS = {
    ZRLE: { encoding: 16, header: (n) => w().u32(n), need: 16766 },
    zlib: { encoding: 6, header: (n) => w().u32(n), need: 64 * 64 * 4 },
    // BasicCompression, stream 0, no filter (copy: 3-byte TPIXELs), 3-byte compact length.
    Tight: { encoding: 7, header: (n) => w().u8(0x00, (n & 0x7f) | 0x80, ((n >> 7) & 0x7f) | 0x80, n >> 14), need: 64 * 64 * 3 },
};

for (const [name, { encoding, header, need }] of Object.entries(BOMB_RECTS)) {
    test(`${name}: a rect whose zlib data inflates to 64 MiB fails at once, in bounded memory, saying why`, () => {
        const bomb = zlibBomb();
        const c = connected({}, { width: 64, height: 64 });
        const update = concat([w().u8(0, 0).u16(1).bytes(rectHeader(0, 0, 64, 64, encoding).done())
            .bytes(header(bomb.length).done()).done(), bomb]);
        const before = process.memoryUsage().arrayBuffers;
        const t0 = performance.now();
        assert.doesNotThrow(() => c.rfb.receive(update));
        const ms = performance.now() - t0;
        const grown = process.memoryUsage().arrayBuffers - before;
        assert.equal(c.rfb.state, 'failed');
        const re = new RegExp(`^protocol error: ${name} 64x64 rectangle: ` +
            `zlib data expands beyond what the rectangle needs \\(${need} bytes\\)$`);
        assert.match(c.eventsOf('state').at(-1).detail, re);
        // Unbounded, the inflater's buffer alone grows past 64 MiB and stays with the session.
        assert.ok(grown < 8 * 2 ** 20, `array buffers grew by ${(grown / 2 ** 20).toFixed(1)} MiB`);
        assert.ok(ms < 2000, `took ${ms.toFixed(0)} ms`);
    });
}

test('extended clipboard: text inflating past the 16 MiB limit is skipped, the session goes on', () => {
    const c = connected();
    // Says 20 MiB of text and sends it: 20 KB compressed.
    const size = 20 << 20;
    const plain = concat([w().u32(size).done(), new Uint8Array(size).fill(0x41)]);
    c.rfb.receive(extendedCut(PROVIDE | TEXT, zlib.deflateSync(plain, { level: 9 })));
    c.rfb.receive(Uint8Array.of(2));   // Bell: still in step
    assert.equal(c.rfb.state, 'connected');
    assert.deepEqual(c.eventsOf('clipboard'), []);
    assert.equal(c.eventsOf('bell').length, 1);
    // Text right at the limit still arrives.
    const text = new Uint8Array((16 << 20) - 1).fill(0x42);
    const atLimit = concat([w().u32(text.length + 1).done(), text, Uint8Array.of(0)]);
    c.rfb.receive(extendedCut(PROVIDE | TEXT, zlib.deflateSync(atLimit, { level: 1 })));
    assert.equal(c.eventsOf('clipboard').length, 1);
    assert.equal(c.eventsOf('clipboard')[0].text.length, text.length);
});

// A display that only records sizes, so accepted huge framebuffers cost no memory here.
function sizeOnlyClient() {
    const events = [];
    const sizes = [];
    const display = { resize: (width, height) => sizes.push([width, height]), present: () => true };
    const rfb = new RFB({ display, send: () => {}, onEvent: (e) => events.push(e) });
    rfb.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 1), w().u32(0).done()]));
    return { rfb, events, sizes, detail: () => events.filter((e) => e.type === 'state').at(-1).detail };
}

test('ServerInit of 32767x32767 (4.3 GB of RGBA) is refused, naming the size and the limit', () => {
    const c = sizeOnlyClient();
    c.rfb.receive(serverInit(32767, 32767, utf8('huge')));
    assert.equal(c.rfb.state, 'failed');
    assert.equal(c.detail(), 'server desktop is 32767x32767, larger than this client can show ' +
        '(at most 67108864 pixels, e.g. 8192x8192, and 32767 a side)');
    assert.deepEqual(c.sizes, []);   // nothing allocated
    for (const [width, height, ok] of [[8192, 8192, true], [8193, 8192, false], [32767, 2048, true],
        [32768, 1, false], [1, 65535, false], [7680, 4320, true]]) {
        const d = sizeOnlyClient();
        d.rfb.receive(serverInit(width, height, utf8('x')));
        assert.equal(d.rfb.state, ok ? 'connected' : 'failed', `${width}x${height}`);
        if (!ok) assert.match(d.detail(), new RegExp(`^server desktop is ${width}x${height}, larger`));
    }
});

test('DesktopSize and ExtendedDesktopSize past the limit fail the session instead of resizing', () => {
    const big = [
        rectHeader(0, 0, 16384, 16384, -223).done(),
        concat([rectHeader(0, 0, 40000, 10, -308).done(),
            w().u8(1, 0, 0, 0).u32(1).u16(0).u16(0).u16(40000).u16(10).u32(0).done()]),
    ];
    for (const rect of big) {
        const c = sizeOnlyClient();
        c.rfb.receive(serverInit(100, 100, utf8('x')));
        c.rfb.receive(concat([w().u8(0, 0).u16(1).done(), rect]));
        assert.equal(c.rfb.state, 'failed');
        assert.match(c.detail(), /^server desktop is (16384x16384|40000x10), larger than this client can show/);
        assert.deepEqual(c.sizes, [[100, 100]]);
        assert.equal(c.events.filter((e) => e.type === 'resize').length, 1);
    }
});

// ---------------------------------------------------------------------------
// Behaviour the mutation tests found unguarded

test('the reason a connected session ends is passed on in the state event', () => {
    const c = connected();
    c.rfb.close('server went away (1006)');
    assert.deepEqual(c.eventsOf('state'), [{ type: 'state', state: 'disconnected', detail: 'server went away (1006)' }]);
    const d = connected();
    d.rfb.close();
    assert.deepEqual(d.eventsOf('state'), [{ type: 'state', state: 'disconnected', detail: 'connection closed' }]);
});

test('an ExtendedDesktopSize update split at every byte boundary parses the same', () => {
    const update = concat([
        w().u8(0, 0).u16(2).bytes(rectHeader(0, 0, 6, 5, -308).done())
            .u8(2, 0, 0, 0)
            .u32(0xabcd0001).u16(0).u16(0).u16(3).u16(5).u32(0x11)
            .u32(0xabcd0002).u16(3).u16(0).u16(3).u16(5).u32(0x22).done(),
        rectHeader(5, 4, 1, 1, 0).done(), Uint8Array.of(9, 8, 7, 0),
    ]);
    const run = (chunks) => {
        const c = connected();
        for (const chunk of chunks) c.rfb.receive(chunk);
        assert.equal(c.rfb.state, 'connected');
        c.take();
        assert.equal(c.rfb.requestResize(6, 5), true);
        return { events: c.events, setSize: parseClientMessages(c.take()), pixel: c.display.getPixel(5, 4) };
    };
    const whole = run([update]);
    assert.deepEqual(whole.events.filter((e) => e.type === 'resize'), [{ type: 'resize', width: 6, height: 5 }]);
    assert.deepEqual(whole.setSize[0].screens, [{ id: 0xabcd0001, x: 0, y: 0, width: 6, height: 5, flags: 0x11 }]);
    assert.deepEqual(whole.pixel, [9, 8, 7, 255]);
    for (let i = 1; i < update.length; i++) {
        assert.deepEqual(run([update.subarray(0, i), update.subarray(i)]), whole, `split at ${i}`);
    }
    assert.deepEqual(run(Array.from(update, (b) => Uint8Array.of(b))), whole, 'one byte at a time');
});

test('a zero-size Raw rect as the last bytes of an update completes it', () => {
    const c = connected();
    c.rfb.receive(w().u8(0, 0).u16(2).bytes(rectHeader(1, 1, 2, 0, 0).done()).bytes(rectHeader(0, 0, 0, 3, 0).done()).done());
    assert.equal(c.rfb.state, 'connected');
    assert.equal(c.eventsOf('update-done').length, 1);
    c.rfb.receive(Uint8Array.of(2));
    assert.equal(c.eventsOf('bell').length, 1);
});

/** A session whose page handler throws on each of two bells the server sends. */
function connectWithFailingBellHandler() {
    const rfb = new RFB({
        display: new Display(), send: () => {}, options: {},
        onEvent: (e) => { if (e.type === 'bell') throw new Error('page bug'); },
    });
    rfb.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 1), w().u32(0).done(),
        serverInit(2, 2, utf8('x')), Uint8Array.of(2, 2)]));
    assert.equal(rfb.state, 'connected');
    return rfb;
}

test('without globalThis.reportError a page handler error is rethrown from a microtask', () => {
    const savedReport = globalThis.reportError;
    const savedQueue = globalThis.queueMicrotask;
    const queued = [];
    delete globalThis.reportError;
    globalThis.queueMicrotask = (fn) => queued.push(fn);
    try {
        connectWithFailingBellHandler();
        assert.equal(queued.length, 2);
        for (const fn of queued) assert.throws(fn, { message: 'page bug' });
    } finally {
        globalThis.queueMicrotask = savedQueue;
        if (savedReport !== undefined) globalThis.reportError = savedReport;
    }
});

// ---------------------------------------------------------------------------
// Protocol numbers held to the specification's literal values (RFC 6143,
// rfbproto.rst). Other tests compare with PSEUDO.* itself, so a number changed
// behind a name (a mutation tester moved EXTENDED_CLIPBOARD by one) passed them all.

test('pseudo-encodings are RFC 6143 7.8 and rfbproto.rst numbers', () => {
    assert.deepEqual({ ...PSEUDO }, {
        JPEG_QUALITY_0: -32,
        COMPRESS_LEVEL_0: -256,
        DESKTOP_SIZE: -223,
        LAST_RECT: -224,
        CURSOR: -239,
        VMWARE_CURSOR: 0x574d5664,
        QEMU_EXTENDED_KEY: -258,
        QEMU_LED_STATE: -261,
        DESKTOP_NAME: -307,
        EXTENDED_DESKTOP_SIZE: -308,
        FENCE: -312,
        CONTINUOUS_UPDATES: -313,
        EXTENDED_MOUSE_BUTTONS: -316,
        EXTENDED_CLIPBOARD: -1063131698,   // 0xc0a1e5ce as a signed 32-bit number
        XVP: -309,
    });
});

test('security types are RFC 6143 7.2.1 numbers', () => {
    assert.deepEqual({ ...SECURITY }, {
        INVALID: 0, NONE: 1, VNC_AUTH: 2, RA2NE: 6, TIGHT: 16, VENCRYPT: 19, XVP: 22, ARD: 30, MSLOGON2: 113,
    });
});

test('SetEncodings carries the literal numbers on the wire', () => {
    const sent = [];
    const rfb = new RFB({ display: new Display(), send: (b) => sent.push(Uint8Array.from(b)) });
    const name = new TextEncoder().encode('x');
    const serverInit = Uint8Array.of(0, 4, 0, 4, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0,
        0, 0, 0, name.length, ...name);
    rfb.receive(new TextEncoder().encode('RFB 003.008\n'));
    rfb.receive(Uint8Array.of(1, 1));          // one security type: None
    rfb.receive(Uint8Array.of(0, 0, 0, 0));    // SecurityResult OK
    rfb.receive(serverInit);
    // Each message is one send(): SetEncodings is type 2, padding, a U16 count, then S32s.
    const msg = sent.find((c) => c[0] === 2 && c.length === 4 + 4 * ((c[2] << 8) | c[3]));
    assert.ok(msg, `a SetEncodings message among ${sent.map((c) => c[0])}`);
    const view = new DataView(msg.buffer);
    const numbers = [];
    for (let i = 4; i < msg.length; i += 4) numbers.push(view.getInt32(i));
    assert.deepEqual(numbers.slice(0, 9), [1, 7, -260, 16, 21, 5, 6, 2, 0]);
    for (const n of [0x574d5664, -223, -224, -239, -258, -307, -308, -312, -313, -1063131698]) {
        assert.ok(numbers.includes(n), `pseudo-encoding ${n} in ${numbers}`);
    }
    const hex = Array.from(msg, (b) => b.toString(16).padStart(2, '0')).join('');
    assert.ok(hex.includes('c0a1e5ce'), `Extended Clipboard as c0 a1 e5 ce in ${hex}`);
});
