// Tests for web/core/decoders/zlib.js: one zlib stream across rectangles.

import test from 'node:test';
import assert from 'node:assert/strict';
import { ByteQueue } from '../../../web/core/bytequeue.js';
import { Display } from '../../../web/core/display.js';
import { ZlibDecoder } from '../../../web/core/decoders/zlib.js';
import { DecodeError } from '../../../web/core/decoders/common.js';
import { Writer, ZStream, encodeZlib } from '../encoders.mjs';
import { LOW, roundTrip } from './helpers.mjs';

test('zlib: one stream across rectangles, every split', async () => {
    await roundTrip({ name: 'zlib', makeDecoder: () => new ZlibDecoder(), encode: encodeZlib, w: 64, h: 40 });
    await roundTrip({ name: 'zlib8', makeDecoder: () => new ZlibDecoder(), encode: encodeZlib, w: 33, h: 20, pf: LOW });
});

test('zlib: wrong inflated size is a DecodeError', async () => {
    const d = new Display();
    d.resize(4, 4);
    const data = await new ZStream().compress(new Uint8Array(12));
    const q = new ByteQueue();
    q.push(new Writer().u32(data.length).bytes(data).done());
    assert.throws(() => new ZlibDecoder().decode({ x: 0, y: 0, width: 2, height: 2 }, q, d, {}), DecodeError);
});
