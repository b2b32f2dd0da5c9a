// web/core/decoders/rre.js — RRE encoding (2): number-of-subrectangles (U32),
// background PIXEL, then per subrectangle a PIXEL and x, y, w, h (U16 each)
// relative to the rectangle (RFC 6143 §7.7.3). Needs: ./common.js.
//
// Subrectangles are drawn as they arrive, so the count left is the resume state.

import { pixelFormatOf, DecodeError } from './common.js';

export class RREDecoder {
    constructor() {
        this._left = -1;   // subrectangles still to read; -1 = header not read yet
    }

    decode(rect, queue, display, ctx) {
        const pf = pixelFormatOf(ctx);
        const bpp = pf.bytesPerPixel;
        const { x, y, width, height } = rect;
        if (this._left < 0) {
            if (!queue.has(4 + bpp)) return false;
            const count = queue.u32();
            const bg = queue.view(bpp);
            display.fillRectU32(x, y, width, height, pf.pixelU32(bg, 0));
            this._left = count;
        }
        const unit = bpp + 8;
        const n = Math.min(this._left, Math.floor(queue.length / unit));
        if (n > 0) {
            const data = queue.view(n * unit);
            for (let i = 0, p = 0; i < n; i++, p += unit) {
                const colour = pf.pixelU32(data, p);
                const q = p + bpp;
                const sx = (data[q] << 8) | data[q + 1], sy = (data[q + 2] << 8) | data[q + 3];
                const sw = (data[q + 4] << 8) | data[q + 5], sh = (data[q + 6] << 8) | data[q + 7];
                if (sx + sw > width || sy + sh > height) {
                    this._left = -1;
                    throw new DecodeError(`RRE subrectangle ${sw}x${sh}+${sx}+${sy} outside ${width}x${height}`);
                }
                display.fillRectU32(x + sx, y + sy, sw, sh, colour);
            }
            this._left -= n;
        }
        if (this._left > 0) return false;
        this._left = -1;
        return true;
    }
}
