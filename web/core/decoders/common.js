// web/core/decoders/common.js — helpers shared by the decoders in this folder:
// the error type, the pixel format a rectangle is in, reusable scratch memory,
// the length-prefixed zlib block of Zlib and ZRLE, and Tight's compact length.
// Needs: ../pixelformat.js, ../inflate.js.

import { PixelFormat } from '../pixelformat.js';
import { Inflator, InflateLimitError } from '../inflate.js';

// Corrupt or impossible encoded data from the server. The RFB object turns it
// into a failed connection; it is never a "need more bytes" signal.
export class DecodeError extends Error {
    constructor(message) {
        super(message);
        this.name = 'DecodeError';
    }
}

const DEFAULT_FORMAT = PixelFormat.default();

export function pixelFormatOf(ctx) {
    return (ctx && ctx.pixelFormat) || DEFAULT_FORMAT;
}

// A Uint32Array of at least n pixels, kept by the caller between rectangles so
// no pixel buffer is allocated per rectangle in the steady state.
export function growU32(current, n) {
    if (current && current.length >= n) return current;
    let size = 1024;
    while (size < n) size *= 2;
    return new Uint32Array(size);
}

// Draws w*h pixels in the server's format from data: straight when they are
// 32-bit RGBX, else converted through scratch (a Uint32Array the caller keeps
// between rectangles). Returns the scratch for the caller to keep.
export function blitPixels(display, pf, x, y, w, h, data, scratch) {
    if (pf.isRGBX) {
        display.blitRGBX(x, y, w, h, data, 0);
        return scratch;
    }
    const n = w * h;
    scratch = growU32(scratch, n);
    pf.pixelsToU32(data, 0, scratch, 0, n);
    display.blitU32(x, y, w, h, scratch, 0);
    return scratch;
}

export function growU8(current, n) {
    if (current && current.length >= n) return current;
    let size = 1024;
    while (size < n) size *= 2;
    return new Uint8Array(size);
}

// Tight's compact length (1-3 bytes, 7+7+8 bits, low bits first), peeked at
// queue offset `at` without consuming. Returns [length, bytesUsed] or null if
// the queue does not hold all of it yet.
export function peekCompactLength(queue, at) {
    if (!queue.has(at + 1)) return null;
    const b0 = queue.peekU8(at);
    if (!(b0 & 0x80)) return [b0, 1];
    if (!queue.has(at + 2)) return null;
    const b1 = queue.peekU8(at + 1);
    if (!(b1 & 0x80)) return [(b0 & 0x7f) | (b1 << 7), 2];
    if (!queue.has(at + 3)) return null;
    const b2 = queue.peekU8(at + 2);
    return [(b0 & 0x7f) | ((b1 & 0x7f) << 7) | (b2 << 14), 3];
}

// Inflates one rectangle's zlib data, allowing no more output than the rectangle
// can use (`limit` bytes): a zlib bomb stops there instead of taking the page's
// memory. `encoding` and `rect` name the rectangle in the error.
export function inflateFor(inflator, data, limit, encoding, rect) {
    try {
        return inflator.inflate(data, limit);
    } catch (err) {
        if (!(err instanceof InflateLimitError)) throw err;
        throw new DecodeError(`${encoding} ${rect.width}x${rect.height} rectangle: ` +
            `zlib data expands beyond what the rectangle needs (${limit} bytes)`);
    }
}

// Zlib (6) and ZRLE (16) rectangles: a U32 length, then that many bytes of one
// zlib stream that runs for the whole connection (so the Inflator lives here).
// take() returns the inflated block once all of it is queued, else null; the
// length, once read, is remembered across calls. limit, encoding, rect: see inflateFor.
export class ZlibBlockReader {
    constructor() {
        this._inflator = new Inflator();
        this._length = -1;     // compressed length once read; -1 = not read yet
    }

    take(queue, limit, encoding, rect) {
        if (this._length < 0) {
            if (!queue.has(4)) return null;
            this._length = queue.u32();
        }
        if (!queue.has(this._length)) return null;
        const compressed = queue.view(this._length);
        this._length = -1;
        return inflateFor(this._inflator, compressed, limit, encoding, rect);
    }
}
