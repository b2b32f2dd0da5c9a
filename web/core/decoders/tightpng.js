// web/core/decoders/tightpng.js — Tight PNG encoding (-260) (rfbproto "Tight PNG
// Encoding"): Tight's FillCompression and JpegCompression, plus PngCompression
// (0xA_: compact length + PNG data, drawn via display.imageRect like JPEG);
// BasicCompression (zlib) is not allowed in it.
// Needs: ./tight.js, ./common.js.

import { TightDecoder } from './tight.js';
import { peekCompactLength, DecodeError } from './common.js';

const PNG = 0xa;
const BASIC_LAST = 0x7;   // 0x0_..0x7_: BasicCompression

export class TightPNGDecoder extends TightDecoder {
    decode(rect, queue, display, ctx) {
        if (!queue.has(1)) return false;
        const ctl = queue.peekU8(0);
        const method = ctl >> 4;
        if (method <= BASIC_LAST) throw new DecodeError('TightPNG rectangle uses BasicCompression, which TightPNG does not allow');
        if (method !== PNG) return super.decode(rect, queue, display, ctx);
        const len = peekCompactLength(queue, 1);
        if (!len || !queue.has(1 + len[1] + len[0])) return false;
        queue.skip(1 + len[1]);
        this._resetStreams(ctl);
        const png = queue.view(len[0]);
        if (rect.width > 0 && rect.height > 0) display.imageRect(rect.x, rect.y, rect.width, rect.height, 'image/png', png);
        return true;
    }
}
