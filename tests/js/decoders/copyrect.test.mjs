// Tests for web/core/decoders/copyrect.js: copies land after the rectangles
// before them, whatever the split.

import test from 'node:test';
import assert from 'node:assert/strict';
import { ByteQueue } from '../../../web/core/bytequeue.js';
import { Display } from '../../../web/core/display.js';
import { RawDecoder } from '../../../web/core/decoders/raw.js';
import { CopyRectDecoder } from '../../../web/core/decoders/copyrect.js';
import { Writer, concat, makeImage, rawBytes } from '../encoders.mjs';
import { DEFAULT, assertImage, splitChunks } from './helpers.mjs';

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
