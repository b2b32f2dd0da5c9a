// Tests for web/core/decoders/raw.js against the reference encoder in
// tests/js/encoders.mjs, fed whole, bytewise and at random splits.

import test from 'node:test';
import assert from 'node:assert/strict';
import { ByteQueue } from '../../../web/core/bytequeue.js';
import { Display } from '../../../web/core/display.js';
import { RawDecoder } from '../../../web/core/decoders/raw.js';
import { encodeRaw } from '../encoders.mjs';
import { DEFAULT, LOW, roundTrip } from './helpers.mjs';

test('raw: 32 bpp, every split', async () => {
    await roundTrip({ name: 'raw', makeDecoder: () => new RawDecoder(), encode: encodeRaw, w: 61, h: 37 });
});

test('raw: BGR233 low colour', async () => {
    await roundTrip({ name: 'raw8', makeDecoder: () => new RawDecoder(), encode: encodeRaw, w: 40, h: 30, pf: LOW });
});

test('raw: zero-size rectangles consume nothing', () => {
    const d = new Display();
    d.resize(4, 4);
    const q = new ByteQueue();
    q.push(Uint8Array.of(1, 2, 3));
    const dec = new RawDecoder();
    assert.equal(dec.decode({ x: 0, y: 0, width: 0, height: 5 }, q, d, { pixelFormat: DEFAULT }), true);
    assert.equal(dec.decode({ x: 4, y: 4, width: 3, height: 0 }, q, d, { pixelFormat: DEFAULT }), true);
    assert.equal(q.length, 3);
});

test('raw: a zero-size rectangle with nothing queued is complete', () => {
    const d = new Display();
    d.resize(4, 4);
    for (const [width, height] of [[0, 5], [3, 0], [0, 0]]) {
        assert.equal(new RawDecoder().decode({ x: 0, y: 0, width, height }, new ByteQueue(), d, { pixelFormat: DEFAULT }),
            true, `${width}x${height}`);
    }
});
