// RFB numbers of web/core/rfb.js held to the specification's literal values
// (RFC 6143, rfbproto.rst). Other tests compare with PSEUDO.* itself, so a
// number changed behind a name (a mutation tester moved EXTENDED_CLIPBOARD by
// one) passed them all. Needs: Node's test runner and the real web/core modules.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { RFB, PSEUDO, SECURITY } from '../../web/core/rfb.js';
import { ENCODINGS } from '../../web/core/decoders/index.js';
import { Display } from '../../web/core/display.js';

test('encodings are RFC 6143 7.7 numbers', () => {
    assert.deepEqual({ ...ENCODINGS }, {
        raw: 0, copyrect: 1, rre: 2, hextile: 5, zlib: 6, tight: 7, zrle: 16,
    });
});

test('pseudo-encodings are RFC 6143 7.8 and rfbproto.rst numbers', () => {
    assert.deepEqual({ ...PSEUDO }, {
        JPEG_QUALITY_0: -32,
        COMPRESS_LEVEL_0: -256,
        DESKTOP_SIZE: -223,
        LAST_RECT: -224,
        CURSOR: -239,
        QEMU_EXTENDED_KEY: -258,
        DESKTOP_NAME: -307,
        EXTENDED_DESKTOP_SIZE: -308,
        FENCE: -312,
        CONTINUOUS_UPDATES: -313,
        EXTENDED_CLIPBOARD: -1063131698,   // 0xc0a1e5ce as a signed 32-bit number
    });
});

test('security types are RFC 6143 7.2.1 numbers', () => {
    assert.deepEqual({ ...SECURITY }, { INVALID: 0, NONE: 1, VNC_AUTH: 2, VENCRYPT: 19 });
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
    assert.deepEqual(numbers.slice(0, 7), [1, 7, 16, 5, 6, 2, 0]);
    for (const n of [-223, -224, -239, -258, -307, -308, -312, -313, -1063131698]) {
        assert.ok(numbers.includes(n), `pseudo-encoding ${n} in ${numbers}`);
    }
    const hex = Array.from(msg, (b) => b.toString(16).padStart(2, '0')).join('');
    assert.ok(hex.includes('c0a1e5ce'), `Extended Clipboard as c0 a1 e5 ce in ${hex}`);
});
