// web/core/decoders/zlib.js — Zlib encoding (6): length (U32) + zlib data
// that inflates to the rectangle in Raw encoding (rfbproto "zlib Encoding").
// Needs: ../inflate.js (Inflator), ./common.js.
//
// One zlib stream for the whole connection, so the Inflator lives in this
// decoder object and is fed each rectangle's sync-flushed piece in order.

import { Inflator } from '../inflate.js';
import { pixelFormatOf, growU32, DecodeError } from './common.js';

export class ZlibDecoder {
  constructor() {
    this._inflator = new Inflator();
    this._length = -1;     // compressed length once read; -1 = not read yet
    this._scratch = null;
  }

  // New connection: the server starts a new stream.
  reset() {
    this._inflator.reset();
    this._length = -1;
  }

  decode(rect, queue, display, ctx) {
    if (this._length < 0) {
      if (!queue.has(4)) return false;
      this._length = queue.u32();
    }
    if (!queue.has(this._length)) return false;
    const compressed = queue.view(this._length);
    this._length = -1;
    const { x, y, width, height } = rect;
    const pf = pixelFormatOf(ctx);
    const data = this._inflator.inflate(compressed);
    const expected = width * height * pf.bytesPerPixel;
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
