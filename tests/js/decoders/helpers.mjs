// tests/js/decoders/helpers.mjs — what the decoder tests share: feeding a
// decoder its bytes whole, one byte at a time or at random split points the way
// the RFB object does, comparing the framebuffer pixel-exact, a round trip
// through a reference encoder (../encoders.mjs), a fake JPEG decoder for the
// Display and a small zlib bomb. Not a test file itself.

import assert from 'node:assert/strict';
import { ByteQueue } from '../../../web/core/bytequeue.js';
import { Display } from '../../../web/core/display.js';
import { PixelFormat } from '../../../web/core/pixelformat.js';
import { FAKE_JPEG, ZStream, makeImage, prng, quantize } from '../encoders.mjs';

export const DEFAULT = PixelFormat.default();
export const LOW = PixelFormat.bgr233();

// ---------------------------------------------------------------- feeding

export function splitChunks(stream, mode, seed = 7) {
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
export function drive(decoder, rects, chunks, display, ctx) {
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


export function assertImage(display, expected, label) {
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
export async function roundTrip({ name, makeDecoder, encode, w, h, pf = DEFAULT, modes = ['whole', 'bytes', 'random'],
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

// decodeImage for the Display: answers after a short timeout, like a real decoder.
export function fakeDecodeImage(log = []) {
    return (mime, bytes) => new Promise((resolve, reject) => {
        assert.equal(mime, 'image/jpeg');
        if (!FAKE_JPEG.every((b, i) => bytes[i] === b)) return reject(new Error('not a fake jpeg'));
        const width = (bytes[4] << 8) | bytes[5], height = (bytes[6] << 8) | bytes[7];
        const data = new Uint8ClampedArray(bytes.subarray(8, 8 + width * height * 4));
        setTimeout(() => { log.push(`${width}x${height}`); resolve({ width, height, data }); }, 1 + (bytes.length % 7));
    });
}

// 1 MiB of zeros as one sync-flushed zlib piece (about 1 KB).
export async function smallBomb() {
    return new ZStream(9).compress(new Uint8Array(1 << 20));
}
