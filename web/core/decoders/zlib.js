// web/core/decoders/zlib.js — Zlib encoding (6): length (U32) + zlib data
// that inflates to the rectangle in Raw encoding (rfbproto "zlib Encoding").
// Needs: ./common.js (ZlibBlockReader, which holds the Inflator).
//
// One zlib stream for the whole connection, fed each rectangle's
// sync-flushed piece in order (ZlibBlockReader in ./common.js).

import { pixelFormatOf, blitPixels, DecodeError, ZlibBlockReader } from './common.js';

export class ZlibDecoder {
    constructor() {
        this._blocks = new ZlibBlockReader();
        this._scratch = null;
    }

    decode(rect, queue, display, ctx) {
        const { x, y, width, height } = rect;
        const pf = pixelFormatOf(ctx);
        const expected = width * height * pf.bytesPerPixel;
        const data = this._blocks.take(queue, expected, 'zlib', rect);
        if (data === null) return false;
        if (data.length !== expected) {
            throw new DecodeError(`zlib rectangle inflated to ${data.length} bytes, expected ${expected}`);
        }
        if (expected === 0) return true;
        this._scratch = blitPixels(display, pf, x, y, width, height, data, this._scratch);
        return true;
    }
}
