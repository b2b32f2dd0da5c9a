// Tests for web/core/decoders/common.js: inflateFor's limit, as every
// zlib-based decoder (Zlib, ZRLE, each Tight filter) applies it.

import test from 'node:test';
import assert from 'node:assert/strict';
import { ByteQueue } from '../../../web/core/bytequeue.js';
import { Display } from '../../../web/core/display.js';
import { ZlibDecoder } from '../../../web/core/decoders/zlib.js';
import { ZRLEDecoder, maxZRLEBytes } from '../../../web/core/decoders/zrle.js';
import { TightDecoder } from '../../../web/core/decoders/tight.js';
import { Writer, compactLength, concat } from '../encoders.mjs';
import { DEFAULT, smallBomb } from './helpers.mjs';

test('zlib, ZRLE and every Tight filter refuse data that inflates past what the rectangle needs', async () => {
    const bomb = await smallBomb();
    const compact = (n) => { const out = new Writer(); compactLength(out, n); return out.done(); };
    const cases = [
        ['zlib', () => new ZlibDecoder(), new Writer().u32(bomb.length).bytes(bomb).done(), 'zlib 30x20 rectangle', 30 * 20 * 4],
        ['ZRLE', () => new ZRLEDecoder(), new Writer().u32(bomb.length).bytes(bomb).done(), 'ZRLE 30x20 rectangle',
            maxZRLEBytes(30, 20, 3)],
        ['Tight copy', () => new TightDecoder(), concat([Uint8Array.of(0x10), compact(bomb.length), bomb]),
            'Tight 30x20 rectangle', 30 * 20 * 3],
        ['Tight 2-colour palette', () => new TightDecoder(),
            concat([Uint8Array.of(0x60, 1, 1, 1, 2, 3, 4, 5, 6), compact(bomb.length), bomb]),
            'Tight 30x20 rectangle', 4 * 20],
        ['Tight 4-colour palette', () => new TightDecoder(),
            concat([Uint8Array.of(0x70, 1, 3), new Uint8Array(12), compact(bomb.length), bomb]),
            'Tight 30x20 rectangle', 30 * 20],
        ['Tight gradient', () => new TightDecoder(), concat([Uint8Array.of(0x40, 2), compact(bomb.length), bomb]),
            'Tight 30x20 rectangle', 30 * 20 * 3],
    ];
    for (const [name, make, bytes, what, need] of cases) {
        const q = new ByteQueue();
        q.push(bytes);
        const d = new Display();
        d.resize(30, 20);
        assert.throws(() => make().decode({ x: 0, y: 0, width: 30, height: 20 }, q, d, { pixelFormat: DEFAULT }),
            { name: 'DecodeError', message: `${what}: zlib data expands beyond what the rectangle needs (${need} bytes)` }, name);
    }
});
