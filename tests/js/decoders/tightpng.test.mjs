// Tests for web/core/decoders/tightpng.js: PNG rectangles go to the display's
// decodeImage as image/png, Fill still works, BasicCompression is refused.
import test from 'node:test';
import assert from 'node:assert/strict';
import { ByteQueue } from '../../../web/core/bytequeue.js';
import { Display } from '../../../web/core/display.js';
import { TightPNGDecoder } from '../../../web/core/decoders/tightpng.js';
import { DEFAULT, splitChunks } from './helpers.mjs';

// decodeImage that records what it was given and answers a solid colour.
export function recordingDecoder(seen, colour = [9, 8, 7]) {
    return async (mime, bytes) => {
        seen.push({ mime, bytes: Uint8Array.from(bytes) });
        const width = 4, height = 2, data = new Uint8ClampedArray(width * height * 4);
        for (let i = 0; i < width * height; i++) data.set([...colour, 255], i * 4);
        return { width, height, data };
    };
}

test('tightpng: a PNG rectangle (2-byte compact length) is decoded as image/png, split anywhere', async () => {
    const png = Uint8Array.from({ length: 300 }, (_, i) => (i * 31) & 0xff);
    const stream = Uint8Array.of(0xa0, 0x80 | (300 & 0x7f), 300 >> 7, ...png, 0x80, 1, 2, 3);
    for (const mode of ['whole', 'bytes', 'random']) {
        const seen = [];
        const d = new Display({ decodeImage: recordingDecoder(seen) });
        d.resize(8, 4);
        const dec = new TightPNGDecoder(), q = new ByteQueue(16);
        const rects = [{ x: 0, y: 0, width: 4, height: 2, encoding: -260 }, { x: 0, y: 2, width: 8, height: 2, encoding: -260 }];
        const chunks = splitChunks(stream, mode);
        for (const rect of rects) while (!dec.decode(rect, q, d, { pixelFormat: DEFAULT })) q.push(chunks.shift());
        assert.equal(q.length, 0);
        await d.whenIdle();
        assert.deepEqual(seen.map((s) => s.mime), ['image/png']);
        assert.deepEqual(seen[0].bytes, png);
        assert.deepEqual(d.getPixel(3, 1), [9, 8, 7, 255], `${mode}: PNG pixels drawn`);
        assert.deepEqual(d.getPixel(7, 3), [1, 2, 3, 255], `${mode}: fill after the PNG`);
    }
});

test('tightpng: BasicCompression is a decode error', () => {
    const q = new ByteQueue();
    q.push(Uint8Array.of(0x00, 1, 2, 3));
    assert.throws(() => new TightPNGDecoder().decode({ x: 0, y: 0, width: 1, height: 1, encoding: -260 }, q, new Display(), { pixelFormat: DEFAULT }),
        /TightPNG rectangle uses BasicCompression/);
});
