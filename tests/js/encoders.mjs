// tests/js/encoders.mjs — reference ENCODERS for every RFB encoding the web
// client decodes, written here from the RFB spec, plus the test images and wire
// writers they use. Shared by tests/js/decoders.test.mjs (pixel-exact round
// trips) and tests/bench_decoders.mjs (decode time at 1920x1080). Not a test
// file itself (node --test only collects *.test.mjs).
// node:zlib builds the reference zlib streams.
import zlib from 'node:zlib';

// ---------------------------------------------------------------- test image

export function prng(seed) {
    let s = seed >>> 0 || 1;
    return () => {
        s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
        return s / 0x100000000;
    };
}

export const PALETTE12 = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255],
    [128, 128, 128], [255, 255, 255], [0, 0, 0], [64, 32, 200], [200, 100, 0], [20, 200, 120]];

// RGBA (A = 255) image: bands of gradient, solid blocks, 2/3/5/12-colour patterns, noise.
export function makeImage(w, h, seed = 1) {
    const rnd = prng(seed);
    const img = new Uint8Array(w * h * 4);
    for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
            const band = Math.floor((x + 2 * y) / 37) % 6;
            let c;
            if (band === 0) c = [(x * 3) & 255, (y * 5) & 255, (x + y) & 255];          // gradient
            else if (band === 1) c = [30, 60, 90];                                       // solid
            else if (band === 2) c = PALETTE12[((x >> 2) ^ (y >> 2)) & 1];               // 2 colours
            else if (band === 3) c = PALETTE12[(x + y) % 3 + 3];                         // 3 colours
            else if (band === 4) c = PALETTE12[((x >> 1) + (y >> 3)) % (y % 20 < 10 ? 5 : 12)];
            else c = [rnd() * 256 | 0, rnd() * 256 | 0, rnd() * 256 | 0];               // noise
            // A solid block in the middle so whole tiles are one colour.
            if (x > w / 4 && x < w / 2 && y > h / 3 && y < (2 * h) / 3) c = [250, 240, 10];
            img.set([c[0], c[1], c[2], 255], (y * w + x) * 4);
        }
    }
    return img;
}

// Blocks of `size` pixels, block k using 1 + k % 20 colours: every palette size
// a tile-based encoder distinguishes (1, 2, 3-4, 5-16, 17+) shows up.
export function makeBlockImage(w, h, size = 64) {
    const img = new Uint8Array(w * h * 4);
    const cols = Math.ceil(w / size);
    for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
            const n = 1 + ((Math.floor(x / size) + Math.floor(y / size) * cols) % 20);
            const i = ((x >> 1) * 7 + (y >> 2) * 3) % n;
            img.set([(i * 53 + 10) & 255, (i * 97) & 255, (i * 151 + 40) & 255, 255], (y * w + x) * 4);
        }
    }
    return img;
}

// The image as the server would see it in pixel format pf (colours rounded).
export function quantize(img, pf) {
    if (pf.isRGBX) return img;
    const out = new Uint8Array(img.length);
    const px = new Uint8Array(pf.bytesPerPixel);
    for (let i = 0; i < img.length; i += 4) {
        pf.fromRGB(img[i], img[i + 1], img[i + 2], px, 0);
        pf.toRGBA(px, 0, out, i, 1);
    }
    return out;
}

export const colourAt = (img, w, x, y) => {
    const i = (y * w + x) * 4;
    return (img[i] << 16) | (img[i + 1] << 8) | img[i + 2];
};
export const rgbOf = (c) => [c >> 16, (c >> 8) & 255, c & 255];

// ---------------------------------------------------------------- wire writers

export class Writer {
    constructor() { this.parts = []; }
    u8(v) { this.parts.push(v & 255); return this; }
    u16(v) { return this.u8(v >> 8).u8(v); }
    u32(v) { return this.u8(v >>> 24).u8(v >>> 16).u8(v >>> 8).u8(v); }
    bytes(b) { for (const v of b) this.parts.push(v); return this; }
    get length() { return this.parts.length; }
    done() { return Uint8Array.from(this.parts); }
}

export function pixel(pf, c) { return pf.fromRGB(...rgbOf(c)); }
// CPIXEL/TPIXEL: 3 bytes R,G,B in the default format, a whole PIXEL otherwise.
export function cpixel(pf, c) { return pf.bytesPerCPixel === 3 ? rgbOf(c) : pixel(pf, c); }

// One persistent zlib stream, sync-flushed after each piece like a VNC server's.
export class ZStream {
    constructor(level = 6) {
        this.d = zlib.createDeflate({ level });
        this.d.on('error', (err) => { throw err; });
        // Flowing mode, so large outputs never stall on the readable side.
        this.out = [];
        this.d.on('data', (chunk) => this.out.push(chunk));
    }
    compress(data) {
        return new Promise((resolve) => {
            this.d.write(Buffer.from(data));
            this.d.flush(zlib.constants.Z_SYNC_FLUSH, () => {
                const piece = new Uint8Array(Buffer.concat(this.out));
                this.out = [];
                resolve(piece);
            });
        });
    }
}

// Rectangles that tile w x h with a few odd sizes, edges included.
export function tiling(w, h) {
    const rects = [];
    const cuts = (vals, max) => [...new Set(vals.filter((v) => v >= 0 && v <= max))].sort((a, b) => a - b);
    const xs = cuts([0, 7, Math.floor(w / 2), w - 1, w], w);
    const ys = cuts([0, 2, 13, Math.floor(h / 3) + 1, h], h);
    for (let j = 0; j + 1 < ys.length; j++) {
        for (let i = 0; i + 1 < xs.length; i++) {
            rects.push({ x: xs[i], y: ys[j], width: xs[i + 1] - xs[i], height: ys[j + 1] - ys[j] });
        }
    }
    return rects;
}

export function concat(parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
}
// Builds {rects, stream} from a per-rect encoder (sync or async).
export async function perRect(rects, encodeOne) {
    const parts = [];
    for (const r of rects) parts.push(await encodeOne(r));
    return { rects: rects.map((r, i) => ({ ...r, encoding: 0, index: i })), stream: concat(parts) };
}

// ---------------------------------------------------------------- Raw (0)

export function rawBytes(img, w, pf, r) {
    const out = new Writer();
    for (let y = r.y; y < r.y + r.height; y++) {
        for (let x = r.x; x < r.x + r.width; x++) out.bytes(pixel(pf, colourAt(img, w, x, y)));
    }
    return out.done();
}

export const encodeRaw = (img, w, h, pf, rects = tiling(w, h)) => perRect(rects, (r) => rawBytes(img, w, pf, r));

// ---------------------------------------------------------------- RRE (2)

export function histogram(img, w, r) {
    const counts = new Map();
    for (let y = r.y; y < r.y + r.height; y++) {
        for (let x = r.x; x < r.x + r.width; x++) {
            const c = colourAt(img, w, x, y);
            counts.set(c, (counts.get(c) || 0) + 1);
        }
    }
    return counts;
}

export function mostCommon(counts) {
    let best = 0, bestN = -1;
    for (const [c, n] of counts) if (n > bestN) { best = c; bestN = n; }
    return best;
}

// Greedy cover of the non-background pixels of r by single-colour rectangles
// (run right, then grow down). Coordinates relative to r.
export function subrects(img, w, r, bg) {
    const covered = new Uint8Array(r.width * r.height);
    const out = [];
    for (let y = 0; y < r.height; y++) {
        for (let x = 0; x < r.width; x++) {
            if (covered[y * r.width + x]) continue;
            const c = colourAt(img, w, r.x + x, r.y + y);
            if (c === bg) continue;
            let sw = 1;
            while (x + sw < r.width && !covered[y * r.width + x + sw] && colourAt(img, w, r.x + x + sw, r.y + y) === c) sw++;
            let sh = 1;
            grow: while (y + sh < r.height) {
                for (let i = 0; i < sw; i++) {
                    if (covered[(y + sh) * r.width + x + i] || colourAt(img, w, r.x + x + i, r.y + y + sh) !== c) break grow;
                }
                sh++;
            }
            for (let j = 0; j < sh; j++) covered.fill(1, (y + j) * r.width + x, (y + j) * r.width + x + sw);
            out.push({ x, y, w: sw, h: sh, c });
        }
    }
    return out;
}

export function encodeRRE(img, w, h, pf, rects = tiling(w, h)) {
    return perRect(rects, (r) => {
        const bg = mostCommon(histogram(img, w, r));
        const subs = r.width && r.height ? subrects(img, w, r, bg) : [];
        const out = new Writer().u32(subs.length).bytes(pixel(pf, bg));
        for (const s of subs) out.bytes(pixel(pf, s.c)).u16(s.x).u16(s.y).u16(s.w).u16(s.h);
        return out.done();
    });
}

// ---------------------------------------------------------------- Hextile (5)

export const HX = { RAW: 1, BG: 2, FG: 4, ANY: 8, COLOURED: 16 };

// Tile kinds cycle so tests see all of them; best: true sends a tile raw only
// when its subrectangles would take more bytes, as a real server would.
export function encodeHextile(img, w, h, pf, rects = tiling(w, h), { best = false } = {}) {
    let tileNo = 0;
    const stats = new Map();
    const result = perRect(rects, (r) => {
        const out = new Writer();
        let bg = null, fg = null;   // what the decoder will carry over
        for (let ty = 0; ty < r.height; ty += 16) {
            for (let tx = 0; tx < r.width; tx += 16) {
                const t = { x: r.x + tx, y: r.y + ty, width: Math.min(16, r.width - tx), height: Math.min(16, r.height - ty) };
                const counts = histogram(img, w, t);
                const tileBg = mostCommon(counts);
                const subs = subrects(img, w, t, tileBg);
                const n = tileNo++;
                let mask;
                const rawTile = best
                    ? subs.length > 255 || (counts.size > 2 && subs.length * (pf.bytesPerPixel + 2) >= t.width * t.height * pf.bytesPerPixel)
                    : counts.size > 2 && (n % 4 === 0 || subs.length > 255);
                if (rawTile) mask = HX.RAW;
                else {
                    mask = 0;
                    if (tileBg !== bg) mask |= HX.BG;
                    if (subs.length) mask |= HX.ANY;
                    if (counts.size === 2 && (best || n % 3 !== 0)) {
                        if (subs[0].c !== fg) mask |= HX.FG;
                    } else if (subs.length) mask |= HX.COLOURED;
                }
                stats.set(mask, (stats.get(mask) || 0) + 1);
                out.u8(mask);
                if (mask & HX.RAW) {
                    out.bytes(rawBytes(img, w, pf, t));
                    continue;
                }
                if (mask & HX.BG) { out.bytes(pixel(pf, tileBg)); bg = tileBg; }
                if (mask & HX.FG) { out.bytes(pixel(pf, subs[0].c)); fg = subs[0].c; }
                if (mask & HX.ANY) {
                    out.u8(subs.length);
                    for (const s of subs) {
                        if (mask & HX.COLOURED) out.bytes(pixel(pf, s.c));
                        out.u8((s.x << 4) | s.y).u8(((s.w - 1) << 4) | (s.h - 1));
                    }
                }
            }
        }
        return out.done();
    });
    return result.then((res) => ({ ...res, stats }));
}

// ---------------------------------------------------------------- Zlib (6)

export async function encodeZlib(img, w, h, pf, rects = tiling(w, h)) {
    const zs = new ZStream();
    return perRect(rects, async (r) => {
        const data = await zs.compress(rawBytes(img, w, pf, r));
        return new Writer().u32(data.length).bytes(data).done();
    });
}

// ---------------------------------------------------------------- ZRLE (16)

export function runLength(out, run) {
    let n = run - 1;
    while (n >= 255) { out.u8(255); n -= 255; }
    out.u8(n);
}

// choice picks the subencoding among those possible for the tile (cycling, so
// tests see all of them); 'best' picks the shortest, as a real server would.
export function zrleTile(img, w, pf, t, choice, stats) {
    const out = new Writer();
    const counts = histogram(img, w, t);
    const palette = [...counts.keys()];
    const index = new Map(palette.map((c, i) => [c, i]));
    const n = palette.length;
    const options = [0, 128];
    if (n === 1) options.push(1, 1, 1);
    if (n >= 2 && n <= 16) options.push(n);
    if (n >= 2 && n <= 127) options.push(128 + n);
    if (choice === 'best') {
        let best = null;
        for (let i = 0; i < options.length; i++) {
            const bytes = zrleTile(img, w, pf, t, i, new Map());
            if (!best || bytes.length < best.length) { best = bytes; choice = i; }
        }
        zrleTile(img, w, pf, t, choice, stats);   // counts the winner
        return best;
    }
    const sub = options[choice % options.length];
    const key = sub === 0 || sub === 1 || sub === 128 ? sub : sub < 128 ? `packed${sub <= 2 ? 1 : sub <= 4 ? 2 : 4}` : 'prle';
    stats.set(key, (stats.get(key) || 0) + 1);
    out.u8(sub);
    const pixels = [];
    for (let y = t.y; y < t.y + t.height; y++) for (let x = t.x; x < t.x + t.width; x++) pixels.push(colourAt(img, w, x, y));
    if (sub === 0) pixels.forEach((c) => out.bytes(cpixel(pf, c)));
    else if (sub === 1) out.bytes(cpixel(pf, palette[0]));
    else {
        if (sub !== 128) palette.forEach((c) => out.bytes(cpixel(pf, c)));
        if (sub < 128) {
            const bits = n === 2 ? 1 : n <= 4 ? 2 : 4;
            for (let row = 0; row < t.height; row++) {
                let byte = 0, used = 0;
                for (let col = 0; col < t.width; col++) {
                    byte = (byte << bits) | index.get(pixels[row * t.width + col]);
                    used += bits;
                    if (used === 8) { out.u8(byte); byte = 0; used = 0; }
                }
                if (used) out.u8(byte << (8 - used));
            }
        } else {
            for (let i = 0; i < pixels.length;) {
                let run = 1;
                while (i + run < pixels.length && pixels[i + run] === pixels[i]) run++;
                if (sub === 128) { out.bytes(cpixel(pf, pixels[i])); runLength(out, run); }
                else if (run === 1) out.u8(index.get(pixels[i]));
                else { out.u8(128 | index.get(pixels[i])); runLength(out, run); }
                i += run;
            }
        }
    }
    return out.done();
}

export function makeZRLEEncoder(stats, { rects = null, best = false } = {}) {
    return async (img, w, h, pf) => {
        const zs = new ZStream();
        let choice = 0;
        return perRect(rects || tiling(w, h), async (r) => {
            const tiles = [];
            for (let ty = 0; ty < r.height; ty += 64) {
                for (let tx = 0; tx < r.width; tx += 64) {
                    const t = { x: r.x + tx, y: r.y + ty, width: Math.min(64, r.width - tx), height: Math.min(64, r.height - ty) };
                    tiles.push(zrleTile(img, w, pf, t, best ? 'best' : choice++, stats));
                }
            }
            const data = await zs.compress(concat(tiles));
            return new Writer().u32(data.length).bytes(data).done();
        });
    };
}

// ---------------------------------------------------------------- Tight (7)

export function compactLength(out, n) {
    if (n < 128) out.u8(n);
    else if (n < 16384) out.u8(0x80 | (n & 0x7f)).u8(n >> 7);
    else out.u8(0x80 | (n & 0x7f)).u8(0x80 | ((n >> 7) & 0x7f)).u8(n >> 14);
}

export function tpixel(pf, c) { return pf.bytesPerTPixel === 3 ? rgbOf(c) : pixel(pf, c); }

// A stand-in for JPEG data: magic, width, height, then the RGBA pixels and
// padding (to reach the 1-, 2- and 3-byte compact lengths).
export const FAKE_JPEG = [0xff, 0xd8, 0x4a, 0x50];
export function fakeJpeg(img, w, r, pad) {
    const out = new Writer().bytes(FAKE_JPEG).u16(r.width).u16(r.height);
    for (let y = r.y; y < r.y + r.height; y++) {
        for (let x = r.x; x < r.x + r.width; x++) out.bytes([...rgbOf(colourAt(img, w, x, y)), 0]);
    }
    return out.bytes(new Uint8Array(pad)).done();
}

export function gradientData(img, w, r) {
    const out = new Uint8Array(r.width * r.height * 3);
    const v = (x, y, c) => (x < 0 || y < 0 ? 0 : rgbOf(colourAt(img, w, r.x + x, r.y + y))[c]);
    for (let y = 0; y < r.height; y++) {
        for (let x = 0; x < r.width; x++) {
            for (let c = 0; c < 3; c++) {
                const p = Math.min(255, Math.max(0, v(x - 1, y, c) + v(x, y - 1, c) - v(x - 1, y - 1, c)));
                out[(y * r.width + x) * 3 + c] = (v(x, y, c) - p) & 255;
            }
        }
    }
    return out;
}

// Cycles through the modes so tests see all of them; best: true picks as a real
// server would (fill for one colour, palette up to 256, else gradient when
// gradient: true or copy) with no stream resets.
export function makeTightEncoder(stats, { jpeg = false, rects = null, best = false, gradient = false } = {}) {
    const count = (k) => stats.set(k, (stats.get(k) || 0) + 1);
    return async (img, w, h, pf) => {
        const streams = [0, 1, 2, 3].map(() => new ZStream());
        let choice = 0, jpegs = 0;
        return perRect(rects || tiling(w, h), async (r) => {
            const n = choice++;
            const counts = histogram(img, w, r);
            const palette = [...counts.keys()];
            const options = ['copy'];
            if (palette.length >= 2 && palette.length <= 256) options.push('palette');
            if (pf.bytesPerTPixel === 3) options.push('gradient');
            if (jpeg && r.width && r.height) options.push('jpeg', 'jpeg');
            let mode = palette.length === 1 && n % 4 !== 3 ? 'fill' : options[n % options.length];
            if (best) {
                mode = palette.length === 1 ? 'fill' : palette.length <= 256 ? 'palette'
                    : gradient && pf.bytesPerTPixel === 3 ? 'gradient' : 'copy';
            }
            count(mode);
            let ctl = 0;
            if (n % 5 === 4 && !best) {                  // reset a stream now and then
                const s = (n >> 2) & 3;
                streams[s] = new ZStream();
                ctl |= 1 << s;
                count('reset');
            }
            const out = new Writer();
            if (mode === 'fill') return out.u8(ctl | 0x80).bytes(tpixel(pf, palette[0])).done();
            if (mode === 'jpeg') {
                const data = fakeJpeg(img, w, r, [20000, 300, 0][jpegs++ % 3]);
                out.u8(ctl | 0x90);
                compactLength(out, data.length);
                count(`len${out.length - 1}`);
                return out.bytes(data).done();
            }
            // best: one stream per kind of data, as TigerVNC does.
            const stream = best ? (mode === 'palette' ? (palette.length === 2 ? 1 : 2) : 0) : n & 3;
            let data;
            const header = new Writer();
            if (mode === 'copy') {
                if (n % 2) ctl |= 0x40;                    // explicit CopyFilter, or none
                header.u8(ctl | (stream << 4));
                if (n % 2) header.u8(0);
                data = new Writer();
                for (let y = r.y; y < r.y + r.height; y++) {
                    for (let x = r.x; x < r.x + r.width; x++) data.bytes(tpixel(pf, colourAt(img, w, x, y)));
                }
                data = data.done();
            } else if (mode === 'palette') {
                header.u8(ctl | 0x40 | (stream << 4)).u8(1).u8(palette.length - 1);
                palette.forEach((c) => header.bytes(tpixel(pf, c)));
                const index = new Map(palette.map((c, i) => [c, i]));
                const d = new Writer();
                for (let y = r.y; y < r.y + r.height; y++) {
                    let byte = 0, used = 0;
                    for (let x = r.x; x < r.x + r.width; x++) {
                        const i = index.get(colourAt(img, w, x, y));
                        if (palette.length > 2) { d.u8(i); continue; }
                        byte = (byte << 1) | i;
                        if (++used === 8) { d.u8(byte); byte = used = 0; }
                    }
                    if (used) d.u8(byte << (8 - used));
                }
                data = d.done();
                count(palette.length === 2 ? 'mono' : 'indexed');
            } else {
                header.u8(ctl | 0x40 | (stream << 4)).u8(2);
                data = gradientData(img, w, r);
            }
            out.bytes(header.done());
            if (data.length < 12) {
                count('uncompressed');
                return out.bytes(data).done();
            }
            count(`stream${stream}`);
            const z = await streams[stream].compress(data);
            compactLength(out, z.length);
            return out.bytes(z).done();
        });
    };
}

export function blockRects(w, h, size) {
    const rects = [];
    for (let y = 0; y < h; y += size) {
        for (let x = 0; x < w; x += size) rects.push({ x, y, width: Math.min(size, w - x), height: Math.min(size, h - y) });
    }
    return rects;
}
