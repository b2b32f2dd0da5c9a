// Tests for web/core/messages.js: every client message, byte for byte, against
// the layouts of RFC 6143 §7.1-7.5 and rfbproto.rst written out as literals.
// Needs: Node's test runner only.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import * as messages from '../../web/core/messages.js';

const bytes = (u8) => Array.from(u8);

test('handshake replies', () => {
    assert.deepEqual(bytes(messages.protocolVersion(8)),
        [0x52, 0x46, 0x42, 0x20, 0x30, 0x30, 0x33, 0x2e, 0x30, 0x30, 0x38, 0x0a]);   // "RFB 003.008\n"
    assert.equal(new TextDecoder().decode(messages.protocolVersion(3)), 'RFB 003.003\n');
    assert.deepEqual(bytes(messages.securityType(2)), [2]);
    assert.deepEqual(bytes(messages.veNCryptVersion()), [0, 2]);
    assert.deepEqual(bytes(messages.veNCryptSubtype(256)), [0, 0, 1, 0]);
    assert.deepEqual(bytes(messages.plainCredentials('me', 'pé')),
        [0, 0, 0, 2, 0, 0, 0, 3, 0x6d, 0x65, 0x70, 0xc3, 0xa9]);   // lengths in UTF-8 bytes
    assert.deepEqual(bytes(messages.clientInit(true)), [1]);
    assert.deepEqual(bytes(messages.clientInit(false)), [0]);
});

test('SetEncodings: type 2, padding, U16 count, S32s in order', () => {
    assert.deepEqual(bytes(messages.setEncodings([16, 0, -223, 0xc0a1e5ce | 0])),
        [2, 0, 0, 4, 0, 0, 0, 16, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x21, 0xc0, 0xa1, 0xe5, 0xce]);
    assert.deepEqual(bytes(messages.setEncodings([])), [2, 0, 0, 0]);
});

test('FramebufferUpdateRequest and EnableContinuousUpdates cover the whole framebuffer', () => {
    assert.deepEqual(bytes(messages.framebufferUpdateRequest(true, 1920, 1080)),
        [3, 1, 0, 0, 0, 0, 0x07, 0x80, 0x04, 0x38]);
    assert.deepEqual(bytes(messages.framebufferUpdateRequest(false, 4, 3)), [3, 0, 0, 0, 0, 0, 0, 4, 0, 3]);
    assert.deepEqual(bytes(messages.framebufferUpdateRequest(false, 4, 3, 300, 2)), [3, 0, 1, 44, 0, 2, 0, 4, 0, 3],
        'an area at x, y (the lossless refresh of a JPEG area)');
    assert.deepEqual(bytes(messages.enableContinuousUpdates(640, 480)),
        [150, 1, 0, 0, 0, 0, 0x02, 0x80, 0x01, 0xe0]);
});

test('KeyEvent, QEMU Extended Key Event and PointerEvent', () => {
    assert.deepEqual(bytes(messages.keyEvent(0xffe3, true)), [4, 1, 0, 0, 0, 0, 0xff, 0xe3]);
    assert.deepEqual(bytes(messages.keyEvent(0x1000263a, false)), [4, 0, 0, 0, 0x10, 0x00, 0x26, 0x3a]);
    // rfbproto's example: the A key, XT keycode 0x1e.
    assert.deepEqual(bytes(messages.qemuExtendedKeyEvent(0x61, true, 0x1e)),
        [255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e]);
    assert.deepEqual(bytes(messages.qemuExtendedKeyEvent(0, false, 0xcd)),
        [255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xcd]);
    // Bit 7 is ExtendedMouseButtons' marker: a plain PointerEvent never sets it.
    assert.deepEqual(bytes(messages.pointerEvent(300, 2, 0x1ff)), [5, 0x7f, 0x01, 0x2c, 0, 2]);
});

test('ClientCutText: classic Latin-1, and the Extended Clipboard form with a negative length', () => {
    assert.deepEqual(bytes(messages.clientCutText(Uint8Array.of(0x68, 0xe9))), [6, 0, 0, 0, 0, 0, 0, 2, 0x68, 0xe9]);
    // length -(4 + 2) = 0xfffffffa, then the flags (provide | text), then the payload.
    assert.deepEqual(bytes(messages.extendedClientCutText((1 << 28) | 1, Uint8Array.of(7, 8))),
        [6, 0, 0, 0, 0xff, 0xff, 0xff, 0xfa, 0x10, 0, 0, 1, 7, 8]);
    assert.deepEqual(bytes(messages.extendedClientCutText(1 << 24 | 1 << 31, new Uint8Array(0))),
        [6, 0, 0, 0, 0xff, 0xff, 0xff, 0xfc, 0x81, 0, 0, 0]);
});

test('SetDesktopSize: one screen at 0,0 with the given id and flags', () => {
    assert.deepEqual(bytes(messages.setDesktopSize(1024, 768, { id: 0x01020304, flags: 0xa0b0c0d0 })), [
        251, 0, 0x04, 0x00, 0x03, 0x00, 1, 0,
        0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0, 0x04, 0x00, 0x03, 0x00, 0xa0, 0xb0, 0xc0, 0xd0,
    ]);
});

test('ClientFence: flags, a one-byte length and the payload', () => {
    assert.deepEqual(bytes(messages.clientFence(3, Uint8Array.of(0xaa, 0xbb))), [248, 0, 0, 0, 0, 0, 0, 3, 2, 0xaa, 0xbb]);
    assert.deepEqual(bytes(messages.clientFence(0, new Uint8Array(0))), [248, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test('putU16 / putU32 write big-endian and keep only the low bits', () => {
    const out = new Uint8Array(6);
    messages.putU16(out, 0, 0x12345);
    messages.putU32(out, 2, -1);
    assert.deepEqual(bytes(out), [0x23, 0x45, 0xff, 0xff, 0xff, 0xff]);
});
