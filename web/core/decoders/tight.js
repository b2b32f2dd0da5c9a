// web/core/decoders/tight.js — Tight encoding (7) (rfbproto "Tight Encoding"):
// a compression-control byte (low 4 bits: reset zlib streams 0-3), then
//   FillCompression  (0x8_): one TPIXEL for the whole rectangle
//   JpegCompression  (0x9_): compact length + JFIF data, drawn via display.imageRect
//   BasicCompression (0x0_-0x7_): bits 4-5 pick zlib stream 0-3, bit 6 says a
//     filter-id byte follows (copy / palette / gradient); filtered data under 12
//     bytes is sent as is, otherwise compact length + zlib data.
// TPIXEL is 3 bytes R,G,B in the default 32 bpp format. TightPNG: ./tightpng.js.
// Needs: ../inflate.js (Inflator), ./common.js.
//
// Every header length is known after a few peeked bytes, so nothing is consumed
// until the whole rectangle is in the queue: no resume state at all, and the
// reset bits are applied exactly once, just before the data they govern.

import { Inflator } from '../inflate.js';
import { pixelFormatOf, blitPixels, growU32, growU8, peekCompactLength, inflateFor, DecodeError } from './common.js';

const FILL = 0x8;
const JPEG = 0x9;
const READ_FILTER = 0x4;             // bit 6 of the control byte, after >> 4
const FILTER_COPY = 0;
const FILTER_PALETTE = 1;
const FILTER_GRADIENT = 2;
const MIN_TO_COMPRESS = 12;          // smaller filtered data is sent uncompressed

export class TightDecoder {
    constructor() {
        this._inflators = [null, null, null, null];   // created on first use
        this._palette = new Uint32Array(256);
        this._scratch = null;
        this._bytes = null;
    }

    decode(rect, queue, display, ctx) {
        if (!queue.has(1)) return false;
        const pf = pixelFormatOf(ctx);
        const tp = pf.bytesPerTPixel;
        const { x, y, width, height } = rect;
        const ctl = queue.peekU8(0);
        const method = ctl >> 4;

        if (method === FILL) {
            if (!queue.has(1 + tp)) return false;
            const data = queue.view(1 + tp);
            this._resetStreams(ctl);
            display.fillRectU32(x, y, width, height, pf.tpixelU32(data, 1));
            return true;
        }

        if (method === JPEG) {
            const len = peekCompactLength(queue, 1);
            if (!len || !queue.has(1 + len[1] + len[0])) return false;
            queue.skip(1 + len[1]);
            this._resetStreams(ctl);
            const jpeg = queue.view(len[0]);
            if (width > 0 && height > 0) {
                display.imageRect(x, y, width, height, 'image/jpeg', jpeg);
                ctx.markLossy?.(rect);   // rfb asks for it again losslessly once still
            }
            return true;
        }

        if (method & 0x8) throw new DecodeError(`Tight compression type 0x${method.toString(16)} is not supported`);

        // BasicCompression: work out the header length by peeking.
        let off = 1;
        let filter = FILTER_COPY;
        if (method & READ_FILTER) {
            if (!queue.has(2)) return false;
            filter = queue.peekU8(1);
            off = 2;
        }
        let colours = 0;
        let rawSize;
        if (filter === FILTER_PALETTE) {
            if (!queue.has(off + 1)) return false;
            colours = queue.peekU8(off) + 1;
            off += 1 + colours * tp;
            rawSize = colours === 2 ? ((width + 7) >> 3) * height : width * height;
        } else if (filter === FILTER_GRADIENT) {
            // Gradient works on 8-bit components, i.e. only with 3-byte TPIXELs here.
            if (tp !== 3) throw new DecodeError('Tight gradient filter needs the 32 bpp pixel format');
            rawSize = width * height * 3;
        } else if (filter === FILTER_COPY) {
            rawSize = width * height * tp;
        } else {
            throw new DecodeError(`Tight filter ${filter} is not defined`);
        }
        let compressedLength = -1;
        let total = off + rawSize;
        if (rawSize >= MIN_TO_COMPRESS) {
            const len = peekCompactLength(queue, off);
            if (!len) return false;
            compressedLength = len[0];
            total = off + len[1] + len[0];
        }
        if (!queue.has(total)) return false;

        // Everything is here: consume it.
        const header = queue.view(off);
        this._resetStreams(ctl);
        let data;
        if (compressedLength < 0) {
            data = queue.view(rawSize);
        } else {
            queue.skip(total - off - compressedLength);
            const stream = method & 3;
            if (!this._inflators[stream]) this._inflators[stream] = new Inflator();
            data = inflateFor(this._inflators[stream], queue.view(compressedLength), rawSize, 'Tight', rect);
            if (data.length !== rawSize) {
                throw new DecodeError(`Tight stream ${stream} inflated to ${data.length} bytes, expected ${rawSize}`);
            }
        }
        if (width === 0 || height === 0) return true;

        if (filter === FILTER_COPY) {
            if (tp === 3) display.blitRGB(x, y, width, height, data, 0);
            else this._scratch = blitPixels(display, pf, x, y, width, height, data, this._scratch);
        } else if (filter === FILTER_PALETTE) {
            this._drawPalette(pf, header, off - colours * tp, colours, x, y, width, height, data, display);
        } else {
            this._drawGradient(x, y, width, height, data, display);
        }
        return true;
    }

    _resetStreams(ctl) {
        for (let i = 0; i < 4; i++) {
            if (ctl & (1 << i) && this._inflators[i]) this._inflators[i].reset();
        }
    }

    _drawPalette(pf, header, paletteAt, colours, x, y, w, h, data, display) {
        const palette = this._palette;
        pf.cpixelsToU32(header, paletteAt, palette, 0, colours, true);
        // Indices past the palette get its first colour rather than a stale one.
        palette.fill(palette[0], colours);
        const out = (this._scratch = growU32(this._scratch, w * h));
        if (colours === 2) {
            // 1 bit per pixel, most significant bit leftmost, rows padded to a byte.
            const rowBytes = (w + 7) >> 3;
            const c0 = palette[0], c1 = palette[1];
            for (let row = 0, o = 0; row < h; row++) {
                const base = row * rowBytes;
                for (let col = 0; col < w; col++, o++) {
                    out[o] = (data[base + (col >> 3)] >> (7 - (col & 7))) & 1 ? c1 : c0;
                }
            }
        } else {
            for (let i = 0, n = w * h; i < n; i++) out[i] = palette[data[i]];
        }
        display.blitU32(x, y, w, h, out, 0);
    }

    // Undoes the gradient filter: each component was sent as the difference from
    // the prediction left + above - above-left (clamped to 0..255; zero outside
    // the rectangle). Decoding in order means the neighbours are already final,
    // so it works in place on a private copy of the data.
    _drawGradient(x, y, w, h, src, display) {
        const n = w * h * 3;
        const v = (this._bytes = growU8(this._bytes, n));
        v.set(src.subarray(0, n));
        const stride = w * 3;
        // First row: nothing above, so the prediction is just the left neighbour.
        for (let i = 3; i < stride; i++) v[i] = (v[i] + v[i - 3]) & 255;
        for (let row = 1; row < h; row++) {
            const base = row * stride, end = base + stride;
            // First pixel of a row: nothing to the left, so the prediction is "above".
            for (let i = base; i < base + 3; i++) v[i] = (v[i] + v[i - stride]) & 255;
            for (let i = base + 3; i < end; i++) {
                let p = v[i - 3] + v[i - stride] - v[i - stride - 3];
                if (p < 0) p = 0; else if (p > 255) p = 255;
                v[i] = (v[i] + p) & 255;
            }
        }
        display.blitRGB(x, y, w, h, v, 0);
    }
}
