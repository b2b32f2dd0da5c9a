// web/core/decoders/raw.js — Raw encoding (0): width*height PIXELs, row by
// row (RFC 6143 §7.7.1).
// Needs: ./common.js. Draws through Display blits.
//
// A full-screen raw update is megabytes, so rows are drawn as they arrive
// instead of waiting for the whole rectangle; the row count is the resume state.

import { pixelFormatOf, blitPixels } from './common.js';

export class RawDecoder {
    constructor() {
        this._rowsDone = 0;
        this._scratch = null;
    }

    decode(rect, queue, display, ctx) {
        const { x, y, width, height } = rect;
        if (width === 0 || height === 0) return true;
        const pf = pixelFormatOf(ctx);
        const rowBytes = width * pf.bytesPerPixel;
        const rows = Math.min(Math.floor(queue.length / rowBytes), height - this._rowsDone);
        if (rows > 0) {
            const data = queue.view(rows * rowBytes);
            const top = y + this._rowsDone;
            this._scratch = blitPixels(display, pf, x, top, width, rows, data, this._scratch);
            this._rowsDone += rows;
        }
        if (this._rowsDone < height) return false;
        this._rowsDone = 0;
        return true;
    }
}
