// tests/js/decoders.test.mjs — every decoder in web/core/decoders against a
// reference ENCODER (tests/js/encoders.mjs, written from the RFB spec): a test image with gradients,
// solid areas, few-colour areas and noise is encoded, decoded into a Display and
// compared pixel-exact; the bytes are fed whole, one byte at a time and at
// random split points, which must all give the same pixels.
// node:zlib builds the reference zlib streams; decoding uses web/core/inflate.js.
import test from 'node:test';
import assert from 'node:assert/strict';
import { ByteQueue } from '../../web/core/bytequeue.js';
import { Display } from '../../web/core/display.js';
import { PixelFormat } from '../../web/core/pixelformat.js';
import { makeDecoders } from '../../web/core/decoders/index.js';
import { RawDecoder } from '../../web/core/decoders/raw.js';
import { CopyRectDecoder } from '../../web/core/decoders/copyrect.js';
import { RREDecoder } from '../../web/core/decoders/rre.js';
import { HextileDecoder } from '../../web/core/decoders/hextile.js';
import { ZlibDecoder } from '../../web/core/decoders/zlib.js';
import { ZRLEDecoder, maxZRLEBytes } from '../../web/core/decoders/zrle.js';
import { TightDecoder } from '../../web/core/decoders/tight.js';
import { DecodeError } from '../../web/core/decoders/common.js';
import {
    FAKE_JPEG, HX, Writer, ZStream, blockRects, compactLength, concat, encodeHextile, encodeRRE, encodeRaw,
    encodeZlib, fakeJpeg, makeBlockImage, makeImage, makeTightEncoder, makeZRLEEncoder, prng, quantize,
    rawBytes, runLength,
} from './encoders.mjs';

const DEFAULT = PixelFormat.default();
const LOW = PixelFormat.bgr233();

// ---------------------------------------------------------------- feeding

function splitChunks(stream, mode, seed = 7) {
    if (mode === 'whole') return [stream];
    if (mode === 'bytes') return Array.from(stream, (b) => Uint8Array.of(b));
    const rnd = prng(seed), chunks = [];
    for (let i = 0; i < stream.length;) {
        const n = 1 + Math.floor(rnd() * (rnd() < 0.5 ? 8 : 600));
        chunks.push(stream.subarray(i, i + n));
        i += n;
    }
    return chunks;
}

// Drives the decoder like the RFB object: call decode(); on false push more.
function drive(decoder, rects, chunks, display, ctx) {
    const q = new ByteQueue(16);
    let next = 0;
    for (const rect of rects) {
        while (!decoder.decode(rect, q, display, ctx)) {
            assert.ok(next < chunks.length, `decoder wants bytes past the end (rect ${JSON.stringify(rect)})`);
            q.push(chunks[next++]);
        }
    }
    while (next < chunks.length) q.push(chunks[next++]);
    assert.equal(q.length, 0, 'every byte consumed, no more');
}


function assertImage(display, expected, label) {
    const got = display.buffer;
    assert.equal(got.length, expected.length);
    for (let i = 0; i < got.length; i++) {
        if (got[i] !== expected[i]) {
            const p = i >> 2, w = display.width;
            assert.fail(`${label}: pixel (${p % w}, ${Math.floor(p / w)}) is ` +
                `[${display.getPixel(p % w, Math.floor(p / w))}] expected [${[...expected.subarray(p * 4, p * 4 + 4)]}]`);
        }
    }
}

// Encodes once, then decodes whole / bytewise / random splits with fresh decoders.
async function roundTrip({ name, makeDecoder, encode, w, h, pf = DEFAULT, modes = ['whole', 'bytes', 'random'],
    displayOptions = {}, seed = 1, image = makeImage }) {
    const source = quantize(image(w, h, seed), pf);
    const encoded = await encode(source, w, h, pf);
    const { rects, stream } = encoded;
    for (const mode of modes) {
        const display = new Display(displayOptions);
        display.resize(w, h);
        drive(makeDecoder(), rects, splitChunks(stream, mode), display, { pixelFormat: pf });
        await display.whenIdle();
        assertImage(display, source, `${name} ${mode}`);
    }
    return encoded;
}

// ---------------------------------------------------------------- Raw (0)

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

// ---------------------------------------------------------------- CopyRect (1)

test('copyrect: copies after raw, in order, any split', () => {
    const w = 30, h = 20, pf = DEFAULT;
    const img = makeImage(w, h);
    const full = { x: 0, y: 0, width: w, height: h, encoding: 0 };
    const copies = [
        { rect: { x: 10, y: 5, width: 12, height: 9, encoding: 1 }, src: [0, 0] },    // overlapping move
        { rect: { x: 29, y: 19, width: 1, height: 1, encoding: 1 }, src: [0, 0] },    // edge pixel
        { rect: { x: 3, y: 3, width: 0, height: 4, encoding: 1 }, src: [5, 5] },      // zero size
    ];
    const expected = new Display();
    expected.resize(w, h);
    expected.blitRGBA(0, 0, w, h, img);
    for (const c of copies) expected.copyRect(c.src[0], c.src[1], c.rect.x, c.rect.y, c.rect.width, c.rect.height);
    const stream = concat([rawBytes(img, w, pf, full),
        ...copies.map((c) => new Writer().u16(c.src[0]).u16(c.src[1]).done())]);
    for (const mode of ['whole', 'bytes', 'random']) {
        const d = new Display();
        d.resize(w, h);
        const raw = new RawDecoder(), copy = new CopyRectDecoder();
        const q = new ByteQueue();
        const chunks = splitChunks(stream, mode);
        let next = 0;
        for (const [dec, rect] of [[raw, full], ...copies.map((c) => [copy, c.rect])]) {
            while (!dec.decode(rect, q, d, { pixelFormat: pf })) q.push(chunks[next++]);
        }
        assert.equal(q.length + chunks.slice(next).reduce((n, c) => n + c.length, 0), 0);
        assertImage(d, expected.buffer, `copyrect ${mode}`);
    }
});

// ---------------------------------------------------------------- RRE (2)

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

// ---------------------------------------------------------------- Hextile (5)

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

// ---------------------------------------------------------------- Zlib (6)

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

// ---------------------------------------------------------------- ZRLE (16)

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

// ---------------------------------------------------------------- Tight (7)

// decodeImage for the Display: answers after a short timeout, like a real decoder.
function fakeDecodeImage(log = []) {
    return (mime, bytes) => new Promise((resolve, reject) => {
        assert.equal(mime, 'image/jpeg');
        if (!FAKE_JPEG.every((b, i) => bytes[i] === b)) return reject(new Error('not a fake jpeg'));
        const width = (bytes[4] << 8) | bytes[5], height = (bytes[6] << 8) | bytes[7];
        const data = new Uint8ClampedArray(bytes.subarray(8, 8 + width * height * 4));
        setTimeout(() => { log.push(`${width}x${height}`); resolve({ width, height, data }); }, 1 + (bytes.length % 7));
    });
}

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

test('makeDecoders maps every encoding number to a fresh decoder', () => {
    const a = makeDecoders(), b = makeDecoders();
    assert.deepEqual([...a.keys()].sort((x, y) => x - y), [0, 1, 2, 5, 6, 7, 16]);
    for (const [k, dec] of a) {
        assert.equal(typeof dec.decode, 'function');
        assert.notEqual(dec, b.get(k));
    }
});

// ---------------------------------------------------------------- zlib bombs

// 1 MiB of zeros as one sync-flushed zlib piece (about 1 KB).
async function smallBomb() {
    return new ZStream(9).compress(new Uint8Array(1 << 20));
}

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
