// Tests for web/core/decoders/rre.js against the reference encoder in
// tests/js/encoders.mjs.

import test from 'node:test';
import assert from 'node:assert/strict';
import { ByteQueue } from '../../../web/core/bytequeue.js';
import { Display } from '../../../web/core/display.js';
import { RREDecoder } from '../../../web/core/decoders/rre.js';
import { DecodeError } from '../../../web/core/decoders/common.js';
import { Writer, encodeRRE } from '../encoders.mjs';
import { LOW, roundTrip } from './helpers.mjs';

test('rre: 32 bpp and BGR233, every split', async () => {
    await roundTrip({ name: 'rre', makeDecoder: () => new RREDecoder(), encode: encodeRRE, w: 50, h: 33 });
    await roundTrip({ name: 'rre8', makeDecoder: () => new RREDecoder(), encode: encodeRRE, w: 40, h: 21, pf: LOW });
});

test('rre: subrectangle outside the rectangle is a DecodeError', () => {
    const d = new Display();
    d.resize(8, 8);
    const q = new ByteQueue();
    q.push(new Writer().u32(1).bytes([0, 0, 0, 0]).bytes([1, 1, 1, 0]).u16(3).u16(0).u16(2).u16(1).done());
    assert.throws(() => new RREDecoder().decode({ x: 0, y: 0, width: 4, height: 4 }, q, d, {}), DecodeError);
});
