// Tests for web/core/decoders/tight.js against the reference encoder in
// tests/js/encoders.mjs: every filter, the four zlib streams, JPEG through the
// Display's decodeImage, in wire order.

import test from 'node:test';
import assert from 'node:assert/strict';
import { ByteQueue } from '../../../web/core/bytequeue.js';
import { Display } from '../../../web/core/display.js';
import { makeDecoders } from '../../../web/core/decoders/index.js';
import { TightDecoder } from '../../../web/core/decoders/tight.js';
import { DecodeError } from '../../../web/core/decoders/common.js';
import {
    Writer, blockRects, compactLength, concat, fakeJpeg, makeBlockImage, makeImage, makeTightEncoder,
} from '../encoders.mjs';
import { LOW, assertImage, fakeDecodeImage, roundTrip } from './helpers.mjs';

test('tight: fill, copy, palette (1-bit and 8-bit), gradient, 4 streams with resets, every split', async () => {
    const stats = new Map();
    await roundTrip({ name: 'tight', makeDecoder: () => new TightDecoder(), encode: makeTightEncoder(stats), w: 80, h: 47 });
    await roundTrip({ name: 'tight-blocks', makeDecoder: () => new TightDecoder(), w: 96, h: 64,
        image: (w, h) => makeBlockImage(w, h, 16), modes: ['whole', 'random'],
        encode: makeTightEncoder(stats, { rects: blockRects(96, 64, 16) }) });
    for (const k of ['fill', 'copy', 'mono', 'indexed', 'gradient', 'uncompressed', 'reset',
        'stream0', 'stream1', 'stream2', 'stream3']) {
        assert.ok(stats.get(k) > 0, `tight ${k} used (${[...stats.keys()]})`);
    }
    await roundTrip({ name: 'tight8', makeDecoder: () => new TightDecoder(), encode: makeTightEncoder(new Map()),
        w: 50, h: 30, pf: LOW });
});


test('tight: JPEG rects via decodeImage, 1/2/3-byte compact lengths, every split', async () => {
    const stats = new Map();
    await roundTrip({ name: 'tight-jpeg', makeDecoder: () => new TightDecoder(), encode: makeTightEncoder(stats, { jpeg: true }),
        w: 60, h: 40, displayOptions: { decodeImage: fakeDecodeImage() } });
    for (const k of ['jpeg', 'len1', 'len2', 'len3']) assert.ok(stats.get(k) > 0, `tight ${k} used (${[...stats.keys()]})`);
});

test('tight: a CopyRect after a pending JPEG copies the JPEG pixels', async () => {
    const w = 20, h = 10;
    const img = makeImage(w, h, 3);
    const log = [];
    const d = new Display({ decodeImage: fakeDecodeImage(log) });
    d.resize(w, h);
    d.fillRect(0, 0, w, h, 1, 2, 3);
    const jpegRect = { x: 0, y: 0, width: 10, height: 10, encoding: 7 };
    const data = fakeJpeg(img, w, jpegRect, 0);
    const out = new Writer().u8(0x90);
    compactLength(out, data.length);
    const q = new ByteQueue();
    q.push(concat([out.bytes(data).done(), new Writer().u16(0).u16(0).done(), Uint8Array.of(0x80, 9, 8, 7)]));
    const decoders = makeDecoders();
    assert.equal(decoders.get(7).decode(jpegRect, q, d, {}), true);
    assert.equal(d.pending, true);
    assert.equal(decoders.get(1).decode({ x: 10, y: 0, width: 10, height: 10, encoding: 1 }, q, d, {}), true);
    assert.equal(decoders.get(7).decode({ x: 0, y: 9, width: 1, height: 1, encoding: 7 }, q, d, {}), true);
    assert.equal(q.length, 0);
    assert.deepEqual(d.getPixel(15, 5), [1, 2, 3, 255], 'copy not applied before the JPEG');
    assert.deepEqual(log, []);
    await d.whenIdle();
    assert.deepEqual(log, ['10x10']);
    const expected = new Display();
    expected.resize(w, h);
    expected.blitRGBA(0, 0, 10, 10, img.subarray(0), 0, w * 4);
    expected.blitRGBA(10, 0, 10, 10, img.subarray(0), 0, w * 4);
    expected.fillRect(0, 9, 1, 1, 9, 8, 7);
    assertImage(d, expected.buffer, 'jpeg then copyrect');
});

test('tight: zero-size rects, reset without data, bad filter and TightPNG are DecodeErrors', () => {
    const d = new Display();
    d.resize(4, 4);
    const q = new ByteQueue();
    const dec = new TightDecoder();
    q.push(Uint8Array.of(0x0f, 0x80 | 0x03, 1, 2, 3)); // basic copy 0x0 (no data), fill with resets
    assert.equal(dec.decode({ x: 0, y: 0, width: 0, height: 3 }, q, d, {}), true);
    assert.equal(dec.decode({ x: 0, y: 0, width: 0, height: 0 }, q, d, {}), true);
    assert.equal(q.length, 0);
    q.push(Uint8Array.of(0x40, 3));
    assert.throws(() => dec.decode({ x: 0, y: 0, width: 2, height: 2 }, q, d, {}), DecodeError);
    q.clear();
    q.push(Uint8Array.of(0xa0, 1, 0));
    assert.throws(() => dec.decode({ x: 0, y: 0, width: 2, height: 2 }, q, d, {}), DecodeError);
    q.clear();
    q.push(Uint8Array.of(0x40, 2, 0, 0, 0));
    assert.throws(() => dec.decode({ x: 0, y: 0, width: 1, height: 1 }, q, d, { pixelFormat: LOW }), DecodeError,
        'gradient needs 3-byte TPIXELs');
});
