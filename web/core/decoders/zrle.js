// web/core/decoders/zrle.js — ZRLE encoding (16): length (U32) + zlib data that
// inflates to 64x64 tiles (last column/row smaller), each a subencoding byte
// then raw CPIXELs, one solid CPIXEL, a packed palette (2-16 colours at 1/2/4
// bits per pixel, rows byte-aligned), plain RLE or palette RLE (rfbproto
// "ZRLE Encoding"). CPIXEL is 3 bytes R,G,B in the default 32 bpp format.
// Needs: ./common.js (ZlibBlockReader, which holds the Inflator).
//
// One zlib stream per connection (in ZlibBlockReader). The rectangle is
// decoded once its whole compressed block is in the queue: the length prefix
// says how long to wait, and tiles then parse from one contiguous buffer with
// no resume points inside the inflated data. Each tile is built as packed
// pixels in a 64x64 scratch tile and blitted in one call.

import { pixelFormatOf, DecodeError, ZlibBlockReader } from './common.js';

const TILE = 64;
const MAX_PALETTE = 127;   // palette RLE (subencodings 130-255) has up to 127 colours

// The most inflated bytes a width x height rectangle can take: per tile a
// subencoding byte, then at worst a 127-colour palette and a two-byte run per
// pixel (palette RLE), or a CPIXEL and a length byte per pixel (plain RLE, never
// less than two bytes); raw, solid and packed-palette tiles are smaller.
export function maxZRLEBytes(width, height, bytesPerCPixel) {
    const tiles = Math.ceil(width / TILE) * Math.ceil(height / TILE);
    return tiles * (1 + MAX_PALETTE * bytesPerCPixel) + width * height * (bytesPerCPixel + 1);
}

export class ZRLEDecoder {
    constructor() {
        this._blocks = new ZlibBlockReader();
        this._tile = new Uint32Array(TILE * TILE);
        this._palette = new Uint32Array(128);
    }

    decode(rect, queue, display, ctx) {
        const pf = pixelFormatOf(ctx);
        const limit = maxZRLEBytes(rect.width, rect.height, pf.bytesPerCPixel);
        const data = this._blocks.take(queue, limit, 'ZRLE', rect);
        if (data === null) return false;
        const end = this._tiles(rect, data, display, pf);
        if (end !== data.length) {
            throw new DecodeError(`ZRLE rectangle left ${data.length - end} unused inflated bytes`);
        }
        return true;
    }

    // Draws every tile from data; returns the number of bytes used.
    _tiles(rect, data, display, pf) {
        const { x, y, width, height } = rect;
        const cp = pf.bytesPerCPixel;
        const rgb = pf.isRGBX;                       // CPIXEL bytes are R,G,B
        const tile = this._tile, palette = this._palette;
        const n = data.length;
        let p = 0;
        const need = (k) => {
            if (p + k > n) throw new DecodeError('ZRLE data ends inside a tile');
        };
        for (let ty = 0; ty < height; ty += TILE) {
            const th = Math.min(TILE, height - ty);
            for (let tx = 0; tx < width; tx += TILE) {
                const tw = Math.min(TILE, width - tx);
                const count = tw * th;
                need(1);
                const sub = data[p++];
                const paletteSize = sub & 127;
                if (sub === 0) {                          // raw CPIXELs
                    need(count * cp);
                    if (rgb) display.blitRGB(x + tx, y + ty, tw, th, data, p);
                    else {
                        pf.cpixelsToU32(data, p, tile, 0, count);
                        display.blitU32(x + tx, y + ty, tw, th, tile, 0, tw);
                    }
                    p += count * cp;
                    continue;
                }
                if (sub === 1) {                          // solid
                    need(cp);
                    display.fillRectU32(x + tx, y + ty, tw, th, pf.cpixelU32(data, p));
                    p += cp;
                    continue;
                }
                if ((paletteSize > 16 && sub < 128) || sub === 129) {
                    throw new DecodeError(`ZRLE subencoding ${sub} is not defined`);
                }
                need(paletteSize * cp);
                pf.cpixelsToU32(data, p, palette, 0, paletteSize);
                p += paletteSize * cp;
                if (sub < 128) {                          // packed palette
                    const bits = paletteSize === 2 ? 1 : paletteSize <= 4 ? 2 : 4;
                    const rowBytes = (tw * bits + 7) >> 3;
                    need(rowBytes * th);
                    const mask = (1 << bits) - 1;
                    for (let row = 0, o = 0; row < th; row++, p += rowBytes) {
                        let q = p, byte = 0, left = 0;
                        for (let col = 0; col < tw; col++, o++) {
                            if (left === 0) { byte = data[q++]; left = 8; }
                            left -= bits;
                            tile[o] = palette[(byte >> left) & mask];
                        }
                    }
                } else {                                  // plain RLE (128) or palette RLE (130..255)
                    let o = 0;
                    while (o < count) {
                        let colour;
                        let run = 1;
                        if (paletteSize === 0) {
                            need(cp + 1);
                            colour = pf.cpixelU32(data, p);
                            p += cp;
                            run = 0;                            // plain RLE always has a length
                        } else {
                            need(1);
                            const index = data[p++];
                            if ((index & 127) >= paletteSize) {
                                throw new DecodeError(`ZRLE palette index ${index & 127} with ${paletteSize} colours`);
                            }
                            colour = palette[index & 127];
                            run = (index & 128) ? 0 : 1;
                        }
                        if (run === 0) {
                            // Length: sum of bytes + 1, every 255 says "more follows".
                            let b;
                            run = 1;
                            do { need(1); b = data[p++]; run += b; } while (b === 255);
                        }
                        if (o + run > count) throw new DecodeError('ZRLE run goes past the end of its tile');
                        // Runs are mostly short: plain stores beat a fill() call.
                        if (run > 16) {
                            tile.fill(colour, o, o + run);
                            o += run;
                        } else {
                            for (const end = o + run; o < end;) tile[o++] = colour;
                        }
                    }
                }
                display.blitU32(x + tx, y + ty, tw, th, tile, 0, tw);
            }
        }
        return p;
    }
}
