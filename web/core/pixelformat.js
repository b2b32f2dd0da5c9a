// web/core/pixelformat.js — PixelFormat: the RFB PIXEL_FORMAT (RFC 6143 §7.4)
// the client asks for, its 16-byte wire form and 20-byte SetPixelFormat message,
// and conversion of wire pixels (PIXEL, and the 3-byte CPIXEL/TPIXEL of
// ZRLE/Tight) to RGBA bytes or packed RGBA words.
// Needs: nothing.
//
// The client asks for one of two formats (see web/CONTRACTS.md):
//   default   32 bpp, depth 24, little-endian, R at shift 0, G 8, B 16: wire bytes R,G,B,X
//   low colour 8 bpp BGR233: R shift 0 max 7, G shift 3 max 7, B shift 6 max 3
// Any other true-colour format (as a ServerInit may announce) still converts
// correctly through the generic path; colour-map formats are not supported
// because the client never asks for one.

// Packed pixels are written through Uint32Array views of RGBA bytes, so the
// byte order of the host decides where R lands.
export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// Packs opaque R,G,B into the u32 whose memory bytes are R,G,B,255.
export function packRGB(r, g, b) {
    return LITTLE_ENDIAN
        ? ((0xff000000 | (b << 16) | (g << 8) | r) >>> 0)
        : (((r << 24) | (g << 16) | (b << 8) | 0xff) >>> 0);
}

export const SET_PIXEL_FORMAT = 0;   // client message-type

export class PixelFormat {
    constructor({
        bitsPerPixel = 32, depth = 24, bigEndian = false, trueColour = true,
        redMax = 255, greenMax = 255, blueMax = 255,
        redShift = 0, greenShift = 8, blueShift = 16,
    } = {}) {
        if (![8, 16, 32].includes(bitsPerPixel)) {
            throw new RangeError(`unsupported bits-per-pixel ${bitsPerPixel}`);
        }
        Object.assign(this, {
            bitsPerPixel, depth, bigEndian: !!bigEndian, trueColour: !!trueColour,
            redMax, greenMax, blueMax, redShift, greenShift, blueShift,
        });
        this.bytesPerPixel = bitsPerPixel >> 3;
        // The wire bytes are already R,G,B,X: decoders copy them straight in.
        this.isRGBX = bitsPerPixel === 32 && !this.bigEndian && this.trueColour &&
            redMax === 255 && greenMax === 255 && blueMax === 255 &&
            redShift === 0 && greenShift === 8 && blueShift === 16;
        this.bytesPerCPixel = this._cpixelBytes();
        // TPIXEL (Tight) is 3 bytes only for depth 24 with 8-bit components;
        // ZRLE's CPIXEL rule is looser (depth <= 24, fits in 3 bytes).
        this.bytesPerTPixel = (bitsPerPixel === 32 && this.trueColour && depth === 24 &&
            redMax === 255 && greenMax === 255 && blueMax === 255) ? 3 : this.bytesPerPixel;
        // A 3-byte CPIXEL drops the pixel's unused byte; when the colour bits sit in the
        // high three bytes the value must be shifted back up by 8 after reading.
        this._cpixelShift = this._colourTopBit() <= 24 ? 0 : 8;
        this._buildTables();
    }

    static default() {
        return new PixelFormat();
    }

    static bgr233() {
        return new PixelFormat({
            bitsPerPixel: 8, depth: 8, redMax: 7, greenMax: 7, blueMax: 3,
            redShift: 0, greenShift: 3, blueShift: 6,
        });
    }

    // Parses the 16-byte PIXEL_FORMAT (as in ServerInit).
    static decode(bytes, offset = 0) {
        const b = bytes, o = offset;
        const u16 = (i) => (b[o + i] << 8) | b[o + i + 1];
        return new PixelFormat({
            bitsPerPixel: b[o], depth: b[o + 1], bigEndian: b[o + 2] !== 0,
            trueColour: b[o + 3] !== 0, redMax: u16(4), greenMax: u16(6), blueMax: u16(8),
            redShift: b[o + 10], greenShift: b[o + 11], blueShift: b[o + 12],
        });
    }

    // The 16-byte PIXEL_FORMAT.
    encode() {
        const out = new Uint8Array(16);
        out[0] = this.bitsPerPixel;
        out[1] = this.depth;
        out[2] = this.bigEndian ? 1 : 0;
        out[3] = this.trueColour ? 1 : 0;
        out[4] = this.redMax >> 8; out[5] = this.redMax & 0xff;
        out[6] = this.greenMax >> 8; out[7] = this.greenMax & 0xff;
        out[8] = this.blueMax >> 8; out[9] = this.blueMax & 0xff;
        out[10] = this.redShift;
        out[11] = this.greenShift;
        out[12] = this.blueShift;
        return out;   // bytes 13..15 are padding
    }

    // The whole 20-byte SetPixelFormat message: type, 3 padding, PIXEL_FORMAT.
    toSetPixelFormat() {
        const out = new Uint8Array(20);
        out[0] = SET_PIXEL_FORMAT;
        out.set(this.encode(), 4);
        return out;
    }

    // One past the highest bit any colour component uses.
    _colourTopBit() {
        const top = (max, shift) => (max ? 32 - Math.clz32(max) : 0) + shift;
        return Math.max(top(this.redMax, this.redShift), top(this.greenMax, this.greenShift),
            top(this.blueMax, this.blueShift));
    }

    // RFB §ZRLE: CPIXEL is 3 bytes for 32 bpp true colour, depth <= 24, when all colour
    // bits fit in the low three bytes or in the high three; else it is a whole PIXEL.
    _cpixelBytes() {
        if (this.bitsPerPixel !== 32 || !this.trueColour || this.depth > 24) return this.bytesPerPixel;
        const lowestShift = Math.min(this.redShift, this.greenShift, this.blueShift);
        return (this._colourTopBit() <= 24 || lowestShift >= 8) ? 3 : 4;
    }

    _buildTables() {
        // Per-component scale tables from 0..max to 0..255, so conversion is a lookup.
        const scale = (max) => {
            const t = new Uint8Array(max + 1);
            for (let v = 0; v <= max; v++) t[v] = max ? Math.round((v * 255) / max) : 0;
            return t;
        };
        this._rTab = scale(this.redMax);
        this._gTab = scale(this.greenMax);
        this._bTab = scale(this.blueMax);
        if (this.bitsPerPixel === 8) {
            // 256 possible values: precompute the packed colour of every one.
            this._lut8 = new Uint32Array(256);
            for (let v = 0; v < 256; v++) this._lut8[v] = this.valueToU32(v);
        }
    }

    // Packed opaque RGBA (see packRGB) for a pixel value.
    valueToU32(v) {
        return packRGB(this._rTab[(v >>> this.redShift) & this.redMax],
            this._gTab[(v >>> this.greenShift) & this.greenMax],
            this._bTab[(v >>> this.blueShift) & this.blueMax]);
    }

    _readValue(src, o, n) {
        if (n === 1) return src[o];
        if (n === 2) return this.bigEndian ? (src[o] << 8) | src[o + 1] : src[o] | (src[o + 1] << 8);
        if (n === 3) {
            return this.bigEndian ? (src[o] << 16) | (src[o + 1] << 8) | src[o + 2]
                : src[o] | (src[o + 1] << 8) | (src[o + 2] << 16);
        }
        return this.bigEndian
            ? ((src[o] << 24) | (src[o + 1] << 16) | (src[o + 2] << 8) | src[o + 3]) >>> 0
            : (src[o] | (src[o + 1] << 8) | (src[o + 2] << 16) | (src[o + 3] << 24)) >>> 0;
    }

    // Packed colour of one PIXEL at src[o].
    pixelU32(src, o) {
        if (this.isRGBX) return packRGB(src[o], src[o + 1], src[o + 2]);
        if (this._lut8) return this._lut8[src[o]];
        return this.valueToU32(this._readValue(src, o, this.bytesPerPixel));
    }

    // Packed colour of one CPIXEL (ZRLE) at src[o].
    cpixelU32(src, o) {
        const n = this.bytesPerCPixel;
        if (n !== 3) return this.pixelU32(src, o);
        if (this.isRGBX) return packRGB(src[o], src[o + 1], src[o + 2]);
        // The CPIXEL is the PIXEL without its unused byte: shift it back into place.
        return this.valueToU32((this._readValue(src, o, 3) << this._cpixelShift) >>> 0);
    }

    // Packed colour of one TPIXEL (Tight) at src[o]. A 3-byte TPIXEL is always the
    // bytes R, G, B in that order, whatever the shifts say.
    tpixelU32(src, o) {
        if (this.bytesPerTPixel === 3) return packRGB(src[o], src[o + 1], src[o + 2]);
        return this.pixelU32(src, o);
    }

    // Converts count PIXELs from src[srcOff] to packed colours in dst32[dstOff].
    pixelsToU32(src, srcOff, dst32, dstOff, count) {
        const bpp = this.bytesPerPixel;
        if (this.isRGBX) {
            for (let i = 0, s = srcOff; i < count; i++, s += 4) {
                dst32[dstOff + i] = packRGB(src[s], src[s + 1], src[s + 2]);
            }
        } else if (this._lut8) {
            const lut = this._lut8;
            for (let i = 0; i < count; i++) dst32[dstOff + i] = lut[src[srcOff + i]];
        } else {
            for (let i = 0, s = srcOff; i < count; i++, s += bpp) dst32[dstOff + i] = this.pixelU32(src, s);
        }
    }

    // Converts count CPIXELs (or TPIXELs: tight=true) to packed colours.
    cpixelsToU32(src, srcOff, dst32, dstOff, count, tight = false) {
        const n = tight ? this.bytesPerTPixel : this.bytesPerCPixel;
        if (n !== 3) return this.pixelsToU32(src, srcOff, dst32, dstOff, count);
        if (this.isRGBX || tight) {   // R,G,B bytes
            for (let i = 0, s = srcOff; i < count; i++, s += 3) {
                dst32[dstOff + i] = packRGB(src[s], src[s + 1], src[s + 2]);
            }
        } else {
            for (let i = 0, s = srcOff; i < count; i++, s += 3) dst32[dstOff + i] = this.cpixelU32(src, s);
        }
    }

    // Converts count PIXELs to RGBA bytes (A = 255) in dst[dstOff..].
    toRGBA(src, srcOff, dst, dstOff, count) {
        const bpp = this.bytesPerPixel;
        if (this.isRGBX) {
            for (let i = 0, s = srcOff, d = dstOff; i < count; i++, s += 4, d += 4) {
                dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]; dst[d + 3] = 255;
            }
            return dst;
        }
        for (let i = 0, s = srcOff, d = dstOff; i < count; i++, s += bpp, d += 4) {
            const v = this._readValue(src, s, bpp);
            dst[d] = this._rTab[(v >>> this.redShift) & this.redMax];
            dst[d + 1] = this._gTab[(v >>> this.greenShift) & this.greenMax];
            dst[d + 2] = this._bTab[(v >>> this.blueShift) & this.blueMax];
            dst[d + 3] = 255;
        }
        return dst;
    }

    // Encodes an 8-bit R,G,B into this format's PIXEL bytes (used by tests'
    // reference encoders and by anything that must send a colour back).
    fromRGB(r, g, b, out = new Uint8Array(this.bytesPerPixel), o = 0) {
        const q = (c, max) => Math.round((c * max) / 255);
        const v = ((q(r, this.redMax) << this.redShift) | (q(g, this.greenMax) << this.greenShift) |
            (q(b, this.blueMax) << this.blueShift)) >>> 0;
        const n = this.bytesPerPixel;
        for (let i = 0; i < n; i++) {
            const shift = this.bigEndian ? 8 * (n - 1 - i) : 8 * i;
            out[o + i] = (v >>> shift) & 0xff;
        }
        return out;
    }
}
