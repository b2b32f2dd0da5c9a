// web/core/decoders/vmwarecursor.js — the VMware Cursor pseudo-encoding
// (0x574d5664, rfbproto "VMware Cursor Pseudo-encoding"): x, y are the hotspot;
// a type byte and a padding byte, then either a classic cursor (an AND mask and
// an XOR mask, each width*height pixels in our pixel format) or an alpha cursor
// (width*height R,G,B,A bytes). Returns the RGBA picture rfb hands to the page as
// a 'cursor' event. A CSS cursor cannot invert the screen under it, so classic
// "invert" pixels are drawn opaque black (as noVNC does).
// Needs: ./common.js.

import { DecodeError } from './common.js';

const CLASSIC = 0;
const ALPHA = 1;

// -> {width, height, hotX, hotY, rgba} once all of it is buffered (consumed), else null.
export function readVMwareCursor(rect, queue, pixelFormat) {
    const { width, height } = rect;
    const pixels = width * height;
    if (!queue.has(2)) return null;
    const type = queue.peekU8(0);
    if (type !== CLASSIC && type !== ALPHA) throw new DecodeError(`VMware cursor type ${type} is not defined`);
    const bpp = pixelFormat.bytesPerPixel;
    const size = type === ALPHA ? pixels * 4 : 2 * pixels * bpp;
    if (!queue.has(2 + size)) return null;
    queue.skip(2);
    const rgba = new Uint8ClampedArray(pixels * 4);
    if (type === ALPHA) {
        rgba.set(queue.view(size));
    } else {
        const and = queue.bytes(pixels * bpp), xor = queue.bytes(pixels * bpp);
        pixelFormat.toRGBA(xor, 0, rgba, 0, pixels);
        for (let i = 0; i < pixels; i++) classicPixel(rgba, i, and, xor, bpp);
    }
    return { width, height, hotX: rect.x, hotY: rect.y, rgba };
}

function allBits(bytes, at, n, value) {
    for (let k = 0; k < n; k++) if (bytes[at + k] !== value) return false;
    return true;
}

// dst = (dst & and) ^ xor: AND 0 is the XOR colour; AND all ones and XOR 0 is
// transparent; anything else depends on the screen, shown opaque black.
function classicPixel(rgba, i, and, xor, bpp) {
    const o = i * 4, at = i * bpp;
    if (allBits(and, at, bpp, 0)) {
        rgba[o + 3] = 255;
    } else if (allBits(and, at, bpp, 0xff) && allBits(xor, at, bpp, 0)) {
        rgba[o] = rgba[o + 1] = rgba[o + 2] = rgba[o + 3] = 0;
    } else {
        rgba[o] = rgba[o + 1] = rgba[o + 2] = 0;
        rgba[o + 3] = 255;
    }
}
