// web/core/decoders/hextile.js — Hextile encoding (5): the rectangle in 16x16
// tiles, left to right, top to bottom, the last column/row narrower; each tile
// raw or a background plus subrectangles, background/foreground carried over
// from the previous tile (RFC 6143 §7.7.4). Needs: ./common.js.
//
// A tile is consumed only once all its bytes are in the queue (its length is
// worked out by peeking), so the tile index is the whole resume state.
// Non-raw tiles are painted in a 16x16 scratch tile and blitted once.

import { pixelFormatOf, DecodeError } from './common.js';

const RAW = 1;
const BACKGROUND_SPECIFIED = 2;
const FOREGROUND_SPECIFIED = 4;
const ANY_SUBRECTS = 8;
const SUBRECTS_COLOURED = 16;
const TILE = 16;

export class HextileDecoder {
    constructor() {
        this._tile = 0;             // index of the next tile in this rectangle
        this._bg = 0;               // packed colours carried from tile to tile
        this._fg = 0;
        this._scratch = new Uint32Array(TILE * TILE);
        this._rgbaScratch = null;
    }

    decode(rect, queue, display, ctx) {
        const { x, y, width, height } = rect;
        if (width === 0 || height === 0) return true;
        const pf = pixelFormatOf(ctx);
        const bpp = pf.bytesPerPixel;
        const cols = Math.ceil(width / TILE);
        const total = cols * Math.ceil(height / TILE);
        const tile = this._scratch;
        while (this._tile < total) {
            const tx = (this._tile % cols) * TILE, ty = Math.floor(this._tile / cols) * TILE;
            const tw = Math.min(TILE, width - tx), th = Math.min(TILE, height - ty);
            const len = tileLength(queue, tw, th, bpp);
            if (len < 0) return false;
            const data = queue.view(len);
            const mask = data[0];
            if (mask & RAW) {
                if (pf.isRGBX) {
                    display.blitRGBX(x + tx, y + ty, tw, th, data, 1);
                } else {
                    pf.pixelsToU32(data, 1, tile, 0, tw * th);
                    display.blitU32(x + tx, y + ty, tw, th, tile, 0, tw);
                }
                this._tile++;
                continue;
            }
            let p = 1;
            if (mask & BACKGROUND_SPECIFIED) { this._bg = pf.pixelU32(data, p); p += bpp; }
            if (mask & FOREGROUND_SPECIFIED) { this._fg = pf.pixelU32(data, p); p += bpp; }
            if (!(mask & ANY_SUBRECTS)) {
                display.fillRectU32(x + tx, y + ty, tw, th, this._bg);
                this._tile++;
                continue;
            }
            const count = data[p++];
            const coloured = (mask & SUBRECTS_COLOURED) !== 0;
            tile.fill(this._bg, 0, tw * th);
            let colour = this._fg;
            for (let i = 0; i < count; i++) {
                if (coloured) { colour = pf.pixelU32(data, p); p += bpp; }
                const xy = data[p], wh = data[p + 1];
                p += 2;
                const sx = xy >> 4, sy = xy & 15, sw = (wh >> 4) + 1, sh = (wh & 15) + 1;
                if (sx + sw > tw || sy + sh > th) {
                    this._tile = 0;
                    throw new DecodeError(`hextile subrectangle ${sw}x${sh}+${sx}+${sy} outside ${tw}x${th} tile`);
                }
                // Most subrectangles are a few pixels: plain stores beat fill() calls.
                for (let row = sy, o = sy * tw + sx; row < sy + sh; row++, o += tw) {
                    if (sw > 8) tile.fill(colour, o, o + sw);
                    else for (let i = o; i < o + sw; i++) tile[i] = colour;
                }
            }
            display.blitU32(x + tx, y + ty, tw, th, tile, 0, tw);
            this._tile++;
        }
        this._tile = 0;
        return true;
    }
}

// Bytes the next tile occupies, or -1 if the queue does not hold all of it.
function tileLength(queue, tw, th, bpp) {
    if (!queue.has(1)) return -1;
    const mask = queue.peekU8(0);
    if (mask & RAW) {
        const len = 1 + tw * th * bpp;
        return queue.has(len) ? len : -1;
    }
    let len = 1;
    if (mask & BACKGROUND_SPECIFIED) len += bpp;
    if (mask & FOREGROUND_SPECIFIED) len += bpp;
    if (mask & ANY_SUBRECTS) {
        if (!queue.has(len + 1)) return -1;
        const count = queue.peekU8(len);
        len += 1 + count * ((mask & SUBRECTS_COLOURED) ? bpp + 2 : 2);
    }
    return queue.has(len) ? len : -1;
}
