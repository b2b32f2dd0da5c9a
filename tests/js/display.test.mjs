// tests/js/display.test.mjs — Display: framebuffer ops, clipping, dirty box,
// present to the canvas via a fake 2D context, and ordered asynchronous image rectangles.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Display } from '../../web/core/display.js';
import { packRGB } from '../../web/core/pixelformat.js';

function make(w, h, opts) {
    const d = new Display(opts);
    d.resize(w, h);
    d.present();
    return d;
}

test('starts empty; resize keeps overlapping pixels and zero-fills the rest', () => {
    const d = new Display();
    assert.equal(d.width, 0);
    assert.equal(d.buffer.length, 0);
    d.resize(4, 3);
    d.fillRect(0, 0, 4, 3, 10, 20, 30);
    d.fillRect(3, 2, 1, 1, 1, 2, 3);
    d.resize(6, 2);
    assert.equal(d.width, 6);
    assert.equal(d.height, 2);
    assert.equal(d.buffer.length, 6 * 2 * 4);
    assert.deepEqual(d.getPixel(3, 1), [10, 20, 30, 255]);
    assert.deepEqual(d.getPixel(4, 0), [0, 0, 0, 0]);
    d.resize(4, 3);
    assert.deepEqual(d.getPixel(3, 2), [0, 0, 0, 0], 'cropped pixels are gone');
    assert.deepEqual(d.getPixel(0, 0), [10, 20, 30, 255]);
});

test('fillRect, blitRGBA (A forced), blitRGBX, blitRGB, blitU32 with offsets and strides', () => {
    const d = make(5, 4);
    d.fillRect(1, 1, 2, 2, 200, 100, 50);
    assert.deepEqual(d.getPixel(1, 1), [200, 100, 50, 255]);
    assert.deepEqual(d.getPixel(2, 2), [200, 100, 50, 255]);
    assert.deepEqual(d.getPixel(3, 2), [0, 0, 0, 0]);

    const rgba = Uint8Array.of(9, 9, 9, 9, /* offset 4 -> */ 1, 2, 3, 0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    d.blitRGBA(0, 0, 2, 2, rgba, 4);
    assert.deepEqual(d.getPixel(0, 0), [1, 2, 3, 255]);
    assert.deepEqual(d.getPixel(1, 0), [4, 5, 6, 255]);
    assert.deepEqual(d.getPixel(0, 1), [8, 9, 10, 255]);
    assert.deepEqual(d.getPixel(1, 1), [12, 13, 14, 255]);

    d.blitRGBX(3, 0, 1, 1, Uint8Array.of(50, 60, 70, 0));
    assert.deepEqual(d.getPixel(3, 0), [50, 60, 70, 255]);

    // 3-byte pixels with a row stride of 9 bytes (3 pixels), drawing 2x2.
    const rgb = Uint8Array.of(1, 1, 1, 2, 2, 2, 0, 0, 0, 3, 3, 3, 4, 4, 4, 0, 0, 0);
    d.blitRGB(3, 2, 2, 2, rgb, 0, 9);
    assert.deepEqual(d.getPixel(3, 2), [1, 1, 1, 255]);
    assert.deepEqual(d.getPixel(4, 2), [2, 2, 2, 255]);
    assert.deepEqual(d.getPixel(3, 3), [3, 3, 3, 255]);
    assert.deepEqual(d.getPixel(4, 3), [4, 4, 4, 255]);

    const px = Uint32Array.of(packRGB(7, 8, 9), packRGB(10, 11, 12));
    d.blitU32(0, 3, 2, 1, px);
    assert.deepEqual(d.getPixel(0, 3), [7, 8, 9, 255]);
    assert.deepEqual(d.getPixel(1, 3), [10, 11, 12, 255]);
});

test('operations are clipped to the framebuffer', () => {
    const d = make(4, 4);
    d.fillRect(-2, -2, 4, 4, 1, 1, 1);    // covers (0..1, 0..1)
    d.fillRect(3, 3, 10, 10, 2, 2, 2);    // covers (3, 3) only
    d.fillRect(10, 10, 2, 2, 3, 3, 3);    // nothing
    assert.deepEqual(d.getPixel(1, 1), [1, 1, 1, 255]);
    assert.deepEqual(d.getPixel(2, 2), [0, 0, 0, 0]);
    assert.deepEqual(d.getPixel(3, 3), [2, 2, 2, 255]);
    // A 3x3 RGB blit at (2,2): only its top-left 2x2 lands, read with the right stride.
    const rgb = new Uint8Array(27).map((_, i) => i);
    d.blitRGB(2, 2, 3, 3, rgb);
    assert.deepEqual(d.getPixel(2, 2), [0, 1, 2, 255]);
    assert.deepEqual(d.getPixel(3, 3), [12, 13, 14, 255]);
    // Left/top clipped blit reads from inside the source.
    d.blitRGB(-1, -1, 3, 3, rgb);
    assert.deepEqual(d.getPixel(0, 0), [12, 13, 14, 255]);
    assert.deepEqual(d.getPixel(1, 1), [24, 25, 26, 255]);
    assert.equal(d.buffer.length, 64);
});

function pattern(d) {
    for (let y = 0; y < d.height; y++) {
        for (let x = 0; x < d.width; x++) d.fillRect(x, y, 1, 1, x, y, x ^ y);
    }
}

test('copyRect handles overlap in every direction', () => {
    for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1], [2, 3], [-3, -2], [1, -1]]) {
        const d = make(12, 10);
        pattern(d);
        const before = d.buffer.slice();
        d.copyRect(3, 3, 3 + dx, 3 + dy, 5, 4);
        for (let y = 0; y < 10; y++) {
            for (let x = 0; x < 12; x++) {
                const inside = x >= 3 + dx && x < 8 + dx && y >= 3 + dy && y < 7 + dy;
                const [sx, sy] = inside ? [x - dx, y - dy] : [x, y];
                const i = (sy * 12 + sx) * 4;
                assert.deepEqual(d.getPixel(x, y), [...before.subarray(i, i + 4)], `d=${dx},${dy} at ${x},${y}`);
            }
        }
    }
});

test('copyRect clips source and destination', () => {
    const d = make(6, 6);
    pattern(d);
    d.copyRect(4, 4, 0, 0, 4, 4);          // source runs off the edge: 2x2 copied
    assert.deepEqual(d.getPixel(0, 0), [4, 4, 0, 255]);
    assert.deepEqual(d.getPixel(1, 1), [5, 5, 0, 255]);
    assert.deepEqual(d.getPixel(2, 2), [2, 2, 0, 255], 'outside the clipped copy untouched');
    d.copyRect(0, 0, 5, 5, 3, 3);          // destination runs off: 1x1 copied
    assert.deepEqual(d.getPixel(5, 5), [4, 4, 0, 255]);
});

test('dirty box grows with operations and resets on present, which reports it', () => {
    const boxes = [];
    const d = make(20, 20, { onPresent: (box) => boxes.push(box) });
    assert.equal(d.dirty, null);
    d.fillRect(2, 3, 4, 5, 1, 1, 1);
    assert.deepEqual(d.dirty, { x: 2, y: 3, width: 4, height: 5 });
    d.copyRect(0, 0, 10, 12, 2, 2);
    assert.deepEqual(d.dirty, { x: 2, y: 3, width: 10, height: 11 });
    d.fillRect(30, 30, 2, 2, 0, 0, 0);    // fully clipped: no change
    assert.equal(d.present(), true, 'nothing pending: presented at once');
    assert.equal(d.dirty, null);
    d.present();
    assert.deepEqual(boxes.slice(1), [{ x: 2, y: 3, width: 10, height: 11 }, null], 'after the one make() does');
    d.resize(21, 20);
    assert.deepEqual(d.dirty, { x: 0, y: 0, width: 21, height: 20 });
});

class FakeContext {
    constructor() { this.calls = []; }
    createImageData(w, h) { return { width: w, height: h, data: new Uint8ClampedArray(w * h * 4) }; }
    putImageData(img, dx, dy, x, y, w, h) { this.calls.push({ img, dx, dy, x, y, w, h, snapshot: img.data.slice() }); }
}

test('present puts the dirty box on the canvas and resizes it then, not before', () => {
    const ctx = new FakeContext();
    const canvas = { width: 0, height: 0, getContext: (kind) => (kind === '2d' ? ctx : null) };
    const d = new Display({ canvas });
    d.resize(8, 6);
    assert.equal(canvas.width, 0, 'a canvas blanks when resized: that waits for the frame');
    d.present();
    assert.equal(canvas.width, 8);
    assert.equal(canvas.height, 6);
    assert.equal(ctx.calls.length, 1);
    assert.deepEqual([ctx.calls[0].x, ctx.calls[0].y, ctx.calls[0].w, ctx.calls[0].h], [0, 0, 8, 6]);
    d.fillRect(2, 1, 3, 2, 9, 8, 7);
    d.present();
    const call = ctx.calls[1];
    assert.deepEqual([call.dx, call.dy, call.x, call.y, call.w, call.h], [0, 0, 2, 1, 3, 2]);
    const i = (1 * 8 + 2) * 4;
    assert.deepEqual([...call.snapshot.subarray(i, i + 4)], [9, 8, 7, 255]);
    d.present();
    assert.equal(ctx.calls.length, 2, 'nothing dirty: no putImageData');
});

// A decodeImage that answers after `ms` with a solid image of the rect's size.
function fakeDecoder(log, ms = 5) {
    return (mime, bytes) => new Promise((resolve) => {
        const [w, h, r, g, b] = bytes;
        setTimeout(() => {
            log.push(`decoded ${mime} ${r}`);
            const data = new Uint8ClampedArray(w * h * 4);
            for (let i = 0; i < w * h; i++) data.set([r, g, b, 0], i * 4);
            resolve({ width: w, height: h, data });
        }, ms);
    });
}

test('operations after a pending image wait for it, in order', async () => {
    const log = [];
    const d = make(8, 8, { decodeImage: fakeDecoder(log) });
    const src = Uint8Array.of(4, 4, 100, 110, 120);
    d.imageRect(0, 0, 4, 4, 'image/jpeg', src);
    src.fill(0); // the display must have taken a copy
    assert.equal(d.pending, true);
    d.copyRect(0, 0, 4, 4, 4, 4);                        // must copy the JPEG pixels
    const rgbx = new Uint8Array(4).fill(33);
    d.blitRGBX(7, 7, 1, 1, rgbx);
    rgbx.fill(0);                                         // queued op must have copied its bytes
    d.fillRect(0, 0, 1, 1, 1, 2, 3);                      // overwrites a JPEG pixel afterwards
    assert.deepEqual(d.getPixel(5, 5), [0, 0, 0, 0], 'nothing applied yet');
    await d.whenIdle();
    assert.equal(d.pending, false);
    assert.deepEqual(log, ['decoded image/jpeg 100']);
    assert.deepEqual(d.getPixel(5, 5), [100, 110, 120, 255]);
    assert.deepEqual(d.getPixel(1, 1), [100, 110, 120, 255]);
    assert.deepEqual(d.getPixel(0, 0), [1, 2, 3, 255]);
    assert.deepEqual(d.getPixel(7, 7), [33, 33, 33, 255]);
});

test('several images in flight apply in wire order even if decoded out of order', async () => {
    const log = [];
    const slowFirst = (mime, bytes) => fakeDecoder(log, bytes[2] === 1 ? 30 : 1)(mime, bytes);
    const d = make(4, 1, { decodeImage: slowFirst });
    d.imageRect(0, 0, 2, 1, 'image/jpeg', Uint8Array.of(2, 1, 1, 1, 1));
    d.imageRect(1, 0, 2, 1, 'image/jpeg', Uint8Array.of(2, 1, 2, 2, 2)); // overlaps pixel 1
    d.copyRect(1, 0, 3, 0, 1, 1);
    await d.whenIdle();
    assert.deepEqual(log, ['decoded image/jpeg 2', 'decoded image/jpeg 1']);
    assert.deepEqual(d.getPixel(0, 0), [1, 1, 1, 255]);
    assert.deepEqual(d.getPixel(1, 0), [2, 2, 2, 255], 'the later image wins');
    assert.deepEqual(d.getPixel(3, 0), [2, 2, 2, 255]);
});

test('a queued resize applies after the image; a failed decode is reported and skipped', async () => {
    const errors = [];
    let call = 0;
    const decodeImage = () => (call++ === 0
        ? Promise.reject(new Error('bad jpeg'))
        : Promise.resolve({ width: 1, height: 1, data: Uint8ClampedArray.of(5, 6, 7, 8) }));
    const d = make(2, 2, { decodeImage, onError: (e) => errors.push(e.message) });
    d.imageRect(0, 0, 2, 2, 'image/jpeg', Uint8Array.of(0));
    d.resize(3, 3);
    assert.equal(d.width, 2, 'resize waits in the queue');
    d.imageRect(2, 2, 1, 1, 'image/jpeg', Uint8Array.of(0));
    d.fillRect(0, 0, 1, 1, 9, 9, 9);
    await d.whenIdle();
    assert.deepEqual(errors, ['bad jpeg']);
    assert.equal(d.width, 3);
    assert.deepEqual(d.getPixel(2, 2), [5, 6, 7, 255]);
    assert.deepEqual(d.getPixel(0, 0), [9, 9, 9, 255]);
    assert.deepEqual(d.getPixel(1, 1), [0, 0, 0, 0]);
});

test('whenIdle resolves at once when nothing is pending; imageRect needs decodeImage', async () => {
    const d = make(2, 2);
    await d.whenIdle();
    assert.throws(() => d.imageRect(0, 0, 1, 1, 'image/jpeg', Uint8Array.of(1)), /decodeImage/);
});

test('an opaque decoded image is copied row by row, cropped to its rectangle and the framebuffer', async () => {
    // A 3x2 picture (wider than its 2-pixel rectangle) at the right edge of a
    // 4x3 framebuffer: column 0 lands at x=3, column 1 falls outside.
    const rgba = new Uint8ClampedArray(3 * 2 * 4);
    for (let i = 0; i < 6; i++) rgba.set([10 * i, 10 * i + 1, 10 * i + 2, 255], i * 4);
    // And a full-width 4x1 one: one copy for the whole picture.
    const wide = new Uint8ClampedArray(4 * 1 * 4).fill(255);
    const results = [{ width: 3, height: 2, data: rgba, opaque: true }, { width: 4, height: 1, data: wide, opaque: true }];
    const d = make(4, 3, { decodeImage: () => Promise.resolve(results.shift()) });
    d.imageRect(3, 1, 2, 2, 'image/jpeg', Uint8Array.of(0));
    d.imageRect(0, 0, 4, 1, 'image/jpeg', Uint8Array.of(0));
    await d.whenIdle();
    assert.deepEqual(d.getPixel(3, 1), [0, 1, 2, 255]);
    assert.deepEqual(d.getPixel(3, 2), [30, 31, 32, 255], 'the second row starts one picture row on');
    assert.deepEqual(d.getPixel(2, 1), [0, 0, 0, 0], 'nothing left of the rectangle');
    assert.deepEqual(d.getPixel(0, 0), [255, 255, 255, 255]);
    assert.deepEqual(d.getPixel(3, 0), [255, 255, 255, 255]);
    assert.deepEqual(d.dirty, { x: 0, y: 0, width: 4, height: 3 });
});

// ---- pictures drawn straight onto the canvas (issue 11.2) ----

// A 2D context over real RGBA memory: putImageData, drawImage of FakePicture,
// getImageData, so the test can compare what the canvas shows.
class PixelContext {
    constructor(canvas) { this.canvas = canvas; this.data = new Uint8ClampedArray(0); this.w = 0; this.calls = []; }
    _fit() {
        if (this.w !== this.canvas.width || this.data.length !== this.canvas.width * this.canvas.height * 4) {
            this.w = this.canvas.width;
            this.data = new Uint8ClampedArray(this.canvas.width * this.canvas.height * 4);   // a resize blanks
        }
    }
    createImageData(w, h) { return { width: w, height: h, data: new Uint8ClampedArray(w * h * 4) }; }
    putImageData(img, dx, dy, x, y, w, h) {
        this._fit();
        this.calls.push(['put', x, y, w, h]);
        for (let row = y; row < y + h; row++) {
            const s = (row * img.width + x) * 4;
            this.data.set(img.data.subarray(s, s + w * 4), ((row + dy) * this.w + x + dx) * 4);
        }
    }
    drawImage(pic, sx, sy, sw, sh, dx, dy) {
        this._fit();
        this.calls.push(['draw', dx, dy, sw, sh]);
        for (let row = 0; row < sh; row++) {
            const s = ((sy + row) * pic.width + sx) * 4;
            this.data.set(pic.pixels.subarray(s, s + sw * 4), ((dy + row) * this.w + dx) * 4);
        }
    }
    getImageData(x, y, w, h) {
        this._fit();
        this.calls.push(['get', x, y, w, h]);
        const out = new Uint8ClampedArray(w * h * 4);
        for (let row = 0; row < h; row++) out.set(this.data.subarray(((y + row) * this.w + x) * 4, ((y + row) * this.w + x + w) * 4), row * w * 4);
        return { data: out };
    }
}

class FakePicture {
    constructor(w, h, seed) {
        this.width = w; this.height = h; this.closed = 0;
        this.pixels = new Uint8ClampedArray(w * h * 4);
        for (let i = 0; i < w * h; i++) this.pixels.set([(seed * 7 + i) & 255, (seed * 13 + i * 3) & 255, seed & 255, 255], i * 4);
    }
    close() { this.closed++; }
}

function pictureCanvas() {
    const canvas = { width: 0, height: 0 };
    const ctx = new PixelContext(canvas);
    canvas.getContext = () => ctx;
    return { canvas, ctx };
}

test('a decoded picture is drawn onto the canvas at present, not copied into the buffer', async () => {
    const { canvas, ctx } = pictureCanvas();
    const pic = new FakePicture(4, 3, 5);
    const d = new Display({ canvas, decodeImage: async () => pic, readPicture: (p) => p.pixels });
    d.resize(10, 8);
    d.present();
    d.fillRect(0, 0, 10, 8, 1, 2, 3);
    d.imageRect(2, 2, 4, 3, 'image/jpeg', new Uint8Array([1]));
    d.fillRect(8, 6, 2, 2, 9, 9, 9);
    assert.equal(d.present(), false);
    await d.whenIdle();
    const kinds = ctx.calls.slice(1).map((c) => c[0]);
    assert.deepEqual(kinds.filter((k) => k === 'draw').length, 1, 'drawn once');
    assert.equal(kinds.includes('get'), false, 'never read back');
    const put = ctx.calls.slice(1).filter((c) => c[0] === 'put').reduce((n, c) => n + c[3] * c[4], 0);
    assert.equal(put, 80 - 12, 'the buffer is put everywhere but under the picture');
    assert.equal(pic.closed, 1);
    assert.deepEqual([...ctx.data.subarray((2 * 10 + 2) * 4, (2 * 10 + 2) * 4 + 4)], [...pic.pixels.subarray(0, 4)]);
    // The next update leaves the picture alone: a fill elsewhere puts only around it.
    ctx.calls.length = 0;
    d.fillRect(0, 0, 10, 1, 7, 7, 7);
    d.fillRect(0, 7, 10, 1, 7, 7, 7);
    d.present();
    assert.deepEqual([...ctx.data.subarray((3 * 10 + 3) * 4, (3 * 10 + 3) * 4 + 4)], [...pic.pixels.subarray((1 * 4 + 1) * 4, (1 * 4 + 1) * 4 + 4)],
        'a put of the changed box must not paint stale buffer pixels over the picture');
    // Reading the buffer reads the canvas-held area back.
    assert.deepEqual(d.getPixel(3, 2), [...pic.pixels.subarray(4, 8)]);
});

// Random operation sequences: a display drawing pictures onto a canvas must show
// exactly what a display that copies decoded pixels into its buffer shows.
test('pictures on the canvas and pixels in the buffer never disagree (random sequences)', async () => {
    let seed = 12345;
    const rnd = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    for (let round = 0; round < 60; round++) {
        seed = 1000 + round;
        const { canvas, ctx } = pictureCanvas();
        const pictures = [];
        const decode = (mime, bytes) => {
            const [w, h, s] = bytes;
            const pic = new FakePicture(w, h, s);
            pictures.push(pic);
            return new Promise((resolve) => setTimeout(() => resolve(pic), rnd(3)));
        };
        const asPixels = (mime, bytes) => {
            const [w, h, s] = bytes;
            const pic = new FakePicture(w, h, s);
            return Promise.resolve({ width: w, height: h, data: pic.pixels, opaque: true });
        };
        const d = new Display({ canvas, decodeImage: decode, readPicture: (p) => p.pixels });
        const ref = new Display({ decodeImage: asPixels });
        let W = 12 + rnd(10), H = 10 + rnd(10);
        for (const x of [d, ref]) x.resize(W, H);
        for (let step = 0; step < 40; step++) {
            const x = rnd(W), y = rnd(H), w = 1 + rnd(W - x), h = 1 + rnd(H - y);
            const op = rnd(10), sx = rnd(W - w + 1), sy = rnd(H - h + 1);
            for (const t of [d, ref]) {
                if (op < 3) t.fillRect(x, y, w, h, step, op * 40, 200);
                else if (op < 6) t.imageRect(x, y, w, h, 'image/jpeg', new Uint8Array([w, h, step + round]));
                else if (op < 8) t.copyRect(sx, sy, x, y, w, h);
                else if (op === 8) t.present();
                else if (step === 20) t.resize(W + 3, H - 2);
            }
            if (op === 9 && step === 20) { W += 3; H -= 2; }
            if (op === 8) {
                await d.whenIdle();
                await ref.whenIdle();
                assert.deepEqual([...ctx.data], [...ref.buffer], `round ${round} step ${step}: canvas differs`);
            }
        }
        for (const t of [d, ref]) t.present();
        await d.whenIdle();
        await ref.whenIdle();
        assert.deepEqual([...ctx.data], [...ref.buffer], `round ${round}: final canvas differs`);
        assert.deepEqual([...d.buffer], [...ref.buffer], `round ${round}: buffer read back differs`);
        assert.ok(pictures.every((p) => p.closed === 1), 'every picture closed once');
    }
});
