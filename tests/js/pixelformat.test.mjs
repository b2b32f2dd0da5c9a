// Tests for web/core/pixelformat.js: the two formats the client asks for, their
// wire forms, and conversion of other true-colour formats.
import test from 'node:test';
import assert from 'node:assert/strict';
import { PixelFormat, packRGB } from '../../web/core/pixelformat.js';

test('PixelFormat: default and BGR233 encode, bytesPerPixel, CPIXEL sizes, toRGBA', () => {
    const def = PixelFormat.default();
    assert.equal(def.bytesPerPixel, 4);
    assert.equal(def.bytesPerCPixel, 3);
    assert.equal(def.bytesPerTPixel, 3);
    assert.equal(def.isRGBX, true);
    assert.deepEqual([...def.toSetPixelFormat()],
        [0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0]);
    assert.deepEqual([...def.toRGBA(Uint8Array.of(1, 2, 3, 99), 0, new Uint8Array(4), 0, 1)], [1, 2, 3, 255]);

    const low = PixelFormat.bgr233();
    assert.equal(low.bytesPerPixel, 1);
    assert.equal(low.bytesPerCPixel, 1);
    assert.equal(low.bytesPerTPixel, 1);
    assert.equal(low.isRGBX, false);
    assert.deepEqual([...low.encode()], [8, 8, 0, 1, 0, 7, 0, 7, 0, 3, 0, 3, 6, 0, 0, 0]);
    // 0b10_011_101: blue 2/3, green 3/7, red 5/7
    assert.deepEqual([...low.toRGBA(Uint8Array.of(0b10011101), 0, new Uint8Array(4), 0, 1)], [182, 109, 170, 255]);
    assert.deepEqual([...low.toRGBA(Uint8Array.of(0xff, 0), 0, new Uint8Array(8), 0, 2)],
        [255, 255, 255, 255, 0, 0, 0, 255]);
    assert.deepEqual([...low.fromRGB(255, 0, 255)], [0b11000111]);

    const back = PixelFormat.decode(low.encode());
    assert.deepEqual({ ...back, _rTab: 0, _gTab: 0, _bTab: 0, _lut8: 0 }, { ...low, _rTab: 0, _gTab: 0, _bTab: 0, _lut8: 0 });
});

test('PixelFormat: other true-colour formats convert through the generic path', () => {
    // 32 bpp big-endian with colour in the high three bytes: CPIXEL is those 3 bytes.
    const be = new PixelFormat({ bigEndian: true, redShift: 24, greenShift: 16, blueShift: 8 });
    assert.equal(be.bytesPerCPixel, 3);
    const px = be.fromRGB(10, 20, 30);
    assert.deepEqual([...px], [10, 20, 30, 0]);
    assert.deepEqual([...be.toRGBA(px, 0, new Uint8Array(4), 0, 1)], [10, 20, 30, 255]);
    assert.equal(be.cpixelU32(Uint8Array.of(10, 20, 30), 0), packRGB(10, 20, 30));
    // 16 bpp RGB565 little-endian.
    const rgb565 = new PixelFormat({ bitsPerPixel: 16, depth: 16, redMax: 31, greenMax: 63, blueMax: 31,
        redShift: 11, greenShift: 5, blueShift: 0 });
    assert.equal(rgb565.bytesPerCPixel, 2);
    assert.equal(rgb565.pixelU32(rgb565.fromRGB(255, 0, 255), 0), packRGB(255, 0, 255));
    // Depth 32 uses full 4-byte CPIXELs.
    assert.equal(new PixelFormat({ depth: 32 }).bytesPerCPixel, 4);
    assert.throws(() => new PixelFormat({ bitsPerPixel: 24 }), RangeError);
});
