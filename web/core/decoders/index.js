// web/core/decoders/index.js — makeDecoders(): one decoder instance per
// encoding number, as the RFB object looks them up for each rectangle.
// Needs: the decoder modules in this folder (and through them ../inflate.js).
//
// A fresh Map per connection, because the zlib-based decoders keep their
// stream state in the instance.

import { RawDecoder } from './raw.js';
import { CopyRectDecoder } from './copyrect.js';
import { RREDecoder } from './rre.js';
import { HextileDecoder } from './hextile.js';
import { ZlibDecoder } from './zlib.js';
import { TightDecoder } from './tight.js';
import { ZRLEDecoder } from './zrle.js';

export const ENCODINGS = Object.freeze({
    RAW: 0, COPYRECT: 1, RRE: 2, HEXTILE: 5, ZLIB: 6, TIGHT: 7, ZRLE: 16,
});

export function makeDecoders() {
    return new Map([
        [ENCODINGS.RAW, new RawDecoder()],
        [ENCODINGS.COPYRECT, new CopyRectDecoder()],
        [ENCODINGS.RRE, new RREDecoder()],
        [ENCODINGS.HEXTILE, new HextileDecoder()],
        [ENCODINGS.ZLIB, new ZlibDecoder()],
        [ENCODINGS.TIGHT, new TightDecoder()],
        [ENCODINGS.ZRLE, new ZRLEDecoder()],
    ]);
}

export { DecodeError } from './common.js';
