// Tests for web/core/decoders/hextile.js against the reference encoder in
// tests/js/encoders.mjs, every subencoding used.

import test from 'node:test';
import assert from 'node:assert/strict';
import { ByteQueue } from '../../../web/core/bytequeue.js';
import { Display } from '../../../web/core/display.js';
import { HextileDecoder } from '../../../web/core/decoders/hextile.js';
import { DecodeError } from '../../../web/core/decoders/common.js';
import { HX, encodeHextile, makeBlockImage } from '../encoders.mjs';
import { LOW, roundTrip } from './helpers.mjs';

test('hextile: every subencoding, odd tile sizes, every split', async () => {
    const { stats } = await roundTrip({ name: 'hextile', makeDecoder: () => new HextileDecoder(),
        encode: encodeHextile, w: 71, h: 45 });
    const blocks = await roundTrip({ name: 'hextile-blocks', makeDecoder: () => new HextileDecoder(),
        encode: (img, w, h, pf) => encodeHextile(img, w, h, pf, [{ x: 0, y: 0, width: w, height: h }]),
        w: 90, h: 50, image: (w, h) => makeBlockImage(w, h, 32) });
    for (const [m, n] of blocks.stats) stats.set(m, (stats.get(m) || 0) + n);
    // Raw; carried background (0 and ANY only); BG; FG; coloured subrects.
    for (const m of [HX.RAW, 0, HX.BG, HX.BG | HX.ANY | HX.FG, HX.ANY, HX.BG | HX.ANY | HX.COLOURED]) {
        assert.ok(stats.get(m) > 0, `mask ${m} used (${[...stats.keys()]})`);
    }
    await roundTrip({ name: 'hextile8', makeDecoder: () => new HextileDecoder(), encode: encodeHextile,
        w: 35, h: 40, pf: LOW });
});

test('hextile: zero-size rect consumes nothing; bad subrect is a DecodeError', () => {
    const d = new Display();
    d.resize(20, 20);
    const q = new ByteQueue();
    q.push(Uint8Array.of(HX.BG | HX.ANY | HX.FG, 1, 1, 1, 0, 2, 2, 2, 0, 1, 0x33, 0x10));
    const dec = new HextileDecoder();
    assert.equal(dec.decode({ x: 0, y: 0, width: 0, height: 0 }, q, d, {}), true);
    assert.equal(q.length, 12);
    // subrect at (3,3) of size 2x1 in a 4x4 tile runs past the edge
    assert.throws(() => dec.decode({ x: 0, y: 0, width: 4, height: 4 }, q, d, {}), DecodeError);
});
