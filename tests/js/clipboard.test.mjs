// Tests for web/core/clipboard.js: Latin-1 text, zlibStored, and the Extended
// Clipboard exchange driven directly (rfb.test.mjs drives it through RFB).
// Needs: Node's test runner and node:zlib (to check and build zlib data).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';

import { Clipboard, decodeLatin1, encodeLatin1, zlibStored } from '../../web/core/clipboard.js';
import { Inflator } from '../../web/core/inflate.js';

const CAPS = 1 << 24, REQUEST = 1 << 25, PEEK = 1 << 26, NOTIFY = 1 << 27, PROVIDE = 1 << 28, TEXT = 1;

// A Clipboard whose sent messages are parsed back into { flags, payload } or { latin1 }.
function makeClipboard() {
    const sent = [];
    const clip = new Clipboard((msg) => {
        const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
        assert.equal(msg[0], 6, 'ClientCutText');
        const length = view.getInt32(4);
        if (length >= 0) sent.push({ latin1: Array.from(msg.subarray(8)) });
        else sent.push({ flags: view.getUint32(8), payload: msg.subarray(12) });
    });
    return { clip, sent };
}

function u32s(...values) {
    const out = new Uint8Array(4 * values.length);
    values.forEach((v, i) => new DataView(out.buffer).setUint32(4 * i, v));
    return out;
}

// Provide data as a server sends it: zlib of a U32 size and the text.
function provideData(textBytes) {
    return new Uint8Array(zlib.deflateSync(Buffer.concat([Buffer.from(u32s(textBytes.length)), Buffer.from(textBytes)])));
}

function providedText(payload) {
    const plain = zlib.inflateSync(Buffer.from(payload));
    return plain.subarray(4, 4 + plain.readUInt32BE(0)).toString('utf8');
}

test('Latin-1 both ways: CRLF becomes LF going out, what Latin-1 lacks becomes ?', () => {
    assert.equal(decodeLatin1(Uint8Array.of(0x63, 0x61, 0x66, 0xe9)), 'café');
    assert.deepEqual(Array.from(encodeLatin1('né€\r\nx')), [0x6e, 0xe9, 0x3f, 0x0a, 0x78]);
    const long = new Uint8Array(100000).fill(0x41);   // past String.fromCharCode's argument limit
    assert.equal(decodeLatin1(long), 'A'.repeat(100000));
});

test('zlibStored output inflates back, for small and multi-block inputs', () => {
    for (const n of [0, 1, 65535, 65536, 200000]) {
        const data = Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
        const z = zlibStored(data);
        assert.deepEqual(new Uint8Array(zlib.inflateSync(Buffer.from(z))), data, `n=${n}`);
        assert.deepEqual(new Inflator().inflate(z), data, `n=${n} (own inflater)`);
    }
});

test('before the server sends caps, text goes out as classic ClientCutText', () => {
    const { clip, sent } = makeClipboard();
    clip.send('héllo\n');
    assert.deepEqual(sent, [{ latin1: [0x68, 0xe9, 0x6c, 0x6c, 0x6f, 0x0a] }]);
});

test('caps: answered with ours; text within the server limit is provided, larger text notified', () => {
    const { clip, sent } = makeClipboard();
    // Text (bit 0) up to 6 bytes, and format bit 2 whose size we must skip.
    assert.equal(clip.receive(CAPS | REQUEST | NOTIFY | PROVIDE | TEXT | (1 << 2), u32s(6, 100)), null);
    assert.deepEqual(sent.map((m) => m.flags >>> 0), [(CAPS | REQUEST | PEEK | NOTIFY | PROVIDE | TEXT) >>> 0]);
    assert.deepEqual(Array.from(sent[0].payload), [0, 0, 0, 0], 'max unsolicited size 0');
    sent.length = 0;
    clip.send('a\nb');            // "a\r\nb\0": 5 bytes, within 6
    assert.equal(sent[0].flags >>> 0, (PROVIDE | TEXT) >>> 0);
    assert.equal(providedText(sent[0].payload), 'a\r\nb\0');
    sent.length = 0;
    clip.send('abcdef');          // 7 bytes with the NUL: announced instead
    assert.deepEqual(sent.map((m) => m.flags >>> 0), [(NOTIFY | TEXT) >>> 0]);
});

test('caps without provide or notify from the server: text goes out as classic', () => {
    const { clip, sent } = makeClipboard();
    clip.receive(CAPS | TEXT, u32s(1000));
    sent.length = 0;
    clip.send('x');
    assert.deepEqual(sent, [{ latin1: [0x78] }]);
});

test('request, peek and notify are answered; unknown actions and other formats are not', () => {
    const { clip, sent } = makeClipboard();
    assert.equal(clip.receive(REQUEST | TEXT, new Uint8Array(0)), null);
    assert.deepEqual(sent, [], 'nothing to provide yet');
    clip.receive(PEEK, new Uint8Array(0));
    assert.deepEqual(sent.map((m) => m.flags >>> 0), [NOTIFY >>> 0], 'peek: we have no text');
    sent.length = 0;
    clip.send('hi');
    sent.length = 0;
    clip.receive(PEEK, new Uint8Array(0));
    clip.receive(REQUEST | TEXT, new Uint8Array(0));
    clip.receive(NOTIFY | TEXT, new Uint8Array(0));
    clip.receive(NOTIFY | (1 << 1), new Uint8Array(0));   // rich text only: not ours
    clip.receive(1 << 29 | TEXT, new Uint8Array(0));       // an action we do not know
    assert.deepEqual(sent.map((m) => m.flags >>> 0), [(NOTIFY | TEXT) >>> 0, (PROVIDE | TEXT) >>> 0, (REQUEST | TEXT) >>> 0]);
    assert.equal(providedText(sent[1].payload), 'hi\0');
});

test('provide: UTF-8 text up to its NUL, CRLF as LF; other formats ignored', () => {
    const { clip } = makeClipboard();
    const text = new TextEncoder().encode('ünï\r\ncode\0junk');
    assert.deepEqual(clip.receive(PROVIDE | TEXT, provideData(text)), { text: 'ünï\ncode' });
    assert.equal(clip.receive(PROVIDE | (1 << 1), provideData(text)), null);
});

test('malformed messages come back as errors a person can read', () => {
    const { clip, sent } = makeClipboard();
    assert.deepEqual(clip.receive(CAPS | TEXT | (1 << 1), u32s(5)),
        { error: 'malformed extended clipboard caps (sizes missing)' });
    assert.deepEqual(sent, [], 'no caps reply to malformed caps');
    assert.deepEqual(clip.receive(PROVIDE | TEXT, new Uint8Array(zlib.deflateSync(Buffer.of(0, 0)))),
        { error: 'malformed extended clipboard data (truncated)' });
});

test('provide data inflating past 16 MiB of text is skipped, not buffered', () => {
    const { clip } = makeClipboard();
    const size = 20 << 20;
    const plain = Buffer.concat([Buffer.from(u32s(size)), Buffer.alloc(size, 0x41)]);
    assert.equal(clip.receive(PROVIDE | TEXT, new Uint8Array(zlib.deflateSync(plain, { level: 9 }))), null);
});
