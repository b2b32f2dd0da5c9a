// web/core/decoders/zlib.js — Zlib encoding (6): length (U32) + zlib data
// that inflates to the rectangle in Raw encoding (rfbproto "zlib Encoding").
// Needs: ./common.js (ZlibBlockReader, which holds the Inflator).
//
// One zlib stream for the whole connection, fed each rectangle's
// sync-flushed piece in order (ZlibBlockReader in ./common.js).

import { pixelFormatOf, growU32, DecodeError, ZlibBlockReader } from './common.js';

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
        if (pf.isRGBX) {
            display.blitRGBX(x, y, width, height, data, 0);
        } else {
            const n = width * height;
            this._scratch = growU32(this._scratch, n);
            pf.pixelsToU32(data, 0, this._scratch, 0, n);
            display.blitU32(x, y, width, height, this._scratch, 0);
        }
        return true;
    }
}
