// Tests for web/core/decoders/zrle.js against the reference encoder in
// tests/js/encoders.mjs, and its inflate limit against the largest legal data.

import test from 'node:test';
import assert from 'node:assert/strict';
import { ByteQueue } from '../../../web/core/bytequeue.js';
import { Display } from '../../../web/core/display.js';
import { ZRLEDecoder, maxZRLEBytes } from '../../../web/core/decoders/zrle.js';
import { DecodeError } from '../../../web/core/decoders/common.js';
import { Writer, ZStream, concat, makeBlockImage, makeZRLEEncoder, runLength } from '../encoders.mjs';
import { DEFAULT, LOW, roundTrip } from './helpers.mjs';

test('zrle: raw, solid, packed 1/2/4-bit, plain and palette RLE, partial tiles, every split', async () => {
    const stats = new Map();
    await roundTrip({ name: 'zrle', makeDecoder: () => new ZRLEDecoder(), encode: makeZRLEEncoder(stats), w: 150, h: 100 });
    await roundTrip({ name: 'zrle-blocks', makeDecoder: () => new ZRLEDecoder(), encode: makeZRLEEncoder(stats),
        w: 330, h: 200, image: (w, h) => makeBlockImage(w, h, 64), modes: ['whole', 'random'] });
    for (const k of [0, 1, 128, 'packed1', 'packed2', 'packed4', 'prle']) assert.ok(stats.get(k) > 0, `zrle ${k} used`);
    await roundTrip({ name: 'zrle8', makeDecoder: () => new ZRLEDecoder(), encode: makeZRLEEncoder(new Map()),
        w: 70, h: 66, pf: LOW });
});

test('zrle: long runs (length bytes of 255), zero-size rect, bad subencoding', async () => {
    const zs = new ZStream();
    const out = new Writer().u8(128).bytes([1, 2, 3]);
    runLength(out, 64 * 64);                       // one run over a whole 64x64 tile
    out.u8(130).bytes([9, 9, 9, 7, 7, 7]);         // palette RLE, 2 colours, 64x1 tile
    out.u8(128 | 1); runLength(out, 63); out.u8(0);
    const data = await zs.compress(out.done());
    const empty = await zs.compress(new Uint8Array(0));
    const q = new ByteQueue();
    q.push(new Writer().u32(data.length).bytes(data).u32(empty.length).bytes(empty).done());
    const d = new Display();
    d.resize(64, 65);
    const dec = new ZRLEDecoder();
    assert.equal(dec.decode({ x: 0, y: 0, width: 64, height: 65 }, q, d, {}), true);
    assert.deepEqual(d.getPixel(63, 63), [1, 2, 3, 255]);
    assert.deepEqual(d.getPixel(62, 64), [7, 7, 7, 255]);
    assert.deepEqual(d.getPixel(63, 64), [9, 9, 9, 255]);
    assert.equal(dec.decode({ x: 5, y: 5, width: 0, height: 0 }, q, d, {}), true);
    assert.equal(q.length, 0);
    const bad = await zs.compress(Uint8Array.of(17));
    q.push(new Writer().u32(bad.length).bytes(bad).done());
    assert.throws(() => dec.decode({ x: 0, y: 0, width: 4, height: 4 }, q, d, {}), DecodeError);
});

// The largest legal ZRLE data: every tile palette RLE with 127 colours and a
// two-byte run per pixel, or plain RLE with a CPIXEL and a length byte per pixel.
function worstZRLE(w, h, cp, kind) {
    const out = new Writer();
    for (let ty = 0; ty < h; ty += 64) {
        for (let tx = 0; tx < w; tx += 64) {
            const count = Math.min(64, w - tx) * Math.min(64, h - ty);
            if (kind === 'palette') {
                out.u8(128 + 127);
                for (let i = 0; i < 127 * cp; i++) out.u8(i);
                for (let i = 0; i < count; i++) out.u8(128 | (i % 127)).u8(0);   // run of 1, with a length byte
            } else {
                out.u8(128);
                for (let i = 0; i < count; i++) { for (let k = 0; k < cp; k++) out.u8(i + k); out.u8(0); }
            }
        }
    }
    return out.done();
}

test('zrle: the largest legal tiles fit the inflate limit; one byte more is refused', async () => {
    for (const pf of [DEFAULT, LOW]) {
        const cp = pf.bytesPerCPixel;
        for (const [w, h] of [[1, 1], [65, 65], [130, 3], [64, 64]]) {
            for (const kind of ['palette', 'plain']) {
                const data = worstZRLE(w, h, cp, kind);
                const limit = maxZRLEBytes(w, h, cp);
                assert.ok(data.length <= limit, `${w}x${h} ${kind} cp ${cp}: ${data.length} > ${limit}`);
                const zs = new ZStream();
                const z = await zs.compress(data);
                const q = new ByteQueue();
                q.push(new Writer().u32(z.length).bytes(z).done());
                const d = new Display();
                d.resize(w, h);
                assert.equal(new ZRLEDecoder().decode({ x: 0, y: 0, width: w, height: h }, q, d, { pixelFormat: pf }), true);
            }
        }
    }
    // 8 bpp palette RLE is exactly the limit: a byte more must not inflate.
    assert.equal(worstZRLE(65, 65, 1, 'palette').length, maxZRLEBytes(65, 65, 1));
    const over = concat([worstZRLE(65, 65, 1, 'palette'), Uint8Array.of(0)]);
    const z = await new ZStream().compress(over);
    const q = new ByteQueue();
    q.push(new Writer().u32(z.length).bytes(z).done());
    const d = new Display();
    d.resize(65, 65);
    assert.throws(() => new ZRLEDecoder().decode({ x: 0, y: 0, width: 65, height: 65 }, q, d, { pixelFormat: LOW }),
        { name: 'DecodeError', message: `ZRLE 65x65 rectangle: zlib data expands beyond what the rectangle needs (${over.length - 1} bytes)` });
});
