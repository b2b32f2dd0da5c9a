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
import { TightPNGDecoder } from './tightpng.js';
import { JPEGDecoder } from './jpeg.js';
import { H264Decoder } from './h264.js';

// The encodings this client decodes (RFC 6143 §7.7, rfbproto.rst numbers), by
// the names rfb.js's options.encodings and the page's ?encoding= take.
export const ENCODINGS = Object.freeze({
    raw: 0, copyrect: 1, rre: 2, hextile: 5, zlib: 6, tight: 7, zrle: 16, jpeg: 21, h264: 50, tightpng: -260,
});

export function makeDecoders() {
    return new Map([
        [ENCODINGS.raw, new RawDecoder()],
        [ENCODINGS.copyrect, new CopyRectDecoder()],
        [ENCODINGS.rre, new RREDecoder()],
        [ENCODINGS.hextile, new HextileDecoder()],
        [ENCODINGS.zlib, new ZlibDecoder()],
        [ENCODINGS.tight, new TightDecoder()],
        [ENCODINGS.zrle, new ZRLEDecoder()],
        [ENCODINGS.tightpng, new TightPNGDecoder()],
        [ENCODINGS.jpeg, new JPEGDecoder()],
        [ENCODINGS.h264, new H264Decoder()],
    ]);
}

export { DecodeError } from './common.js';
