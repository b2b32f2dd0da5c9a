// Tests for web/core/decoders/index.js: the encoding numbers and makeDecoders().

import test from 'node:test';
import assert from 'node:assert/strict';
import { ENCODINGS, makeDecoders } from '../../../web/core/decoders/index.js';
import { RawDecoder } from '../../../web/core/decoders/raw.js';
import { CopyRectDecoder } from '../../../web/core/decoders/copyrect.js';
import { RREDecoder } from '../../../web/core/decoders/rre.js';
import { HextileDecoder } from '../../../web/core/decoders/hextile.js';
import { ZlibDecoder } from '../../../web/core/decoders/zlib.js';
import { TightDecoder } from '../../../web/core/decoders/tight.js';
import { ZRLEDecoder } from '../../../web/core/decoders/zrle.js';
import { TightPNGDecoder } from '../../../web/core/decoders/tightpng.js';
import { JPEGDecoder } from '../../../web/core/decoders/jpeg.js';
import { H264Decoder } from '../../../web/core/decoders/h264.js';

// Literal numbers, not ENCODINGS.* itself: a number changed behind a name
// (as a mutation tester does) must fail here.
test('encodings are RFC 6143 7.7 numbers', () => {
    assert.deepEqual({ ...ENCODINGS }, {
        raw: 0, copyrect: 1, rre: 2, hextile: 5, zlib: 6, tight: 7, zrle: 16, jpeg: 21, h264: 50, tightpng: -260,
    });
});

test('makeDecoders maps each encoding number to its decoder, a fresh one per call', () => {
    const a = makeDecoders(), b = makeDecoders();
    const expected = [[-260, TightPNGDecoder], [0, RawDecoder], [1, CopyRectDecoder], [2, RREDecoder], [5, HextileDecoder],
        [6, ZlibDecoder], [7, TightDecoder], [16, ZRLEDecoder], [21, JPEGDecoder], [50, H264Decoder]];
    assert.deepEqual([...a.keys()].sort((x, y) => x - y), expected.map(([n]) => n));
    for (const [number, type] of expected) {
        assert.ok(a.get(number) instanceof type, `${number} -> ${type.name}`);
        assert.notEqual(a.get(number), b.get(number), 'zlib state is per connection');
    }
});
