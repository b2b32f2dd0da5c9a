// tests/js/decoders.test.mjs — every decoder in web/core/decoders against a
// reference ENCODER written here from the RFB spec: a test image with gradients,
// solid areas, few-colour areas and noise is encoded, decoded into a Display and
// compared pixel-exact; the bytes are fed whole, one byte at a time and at
// random split points, which must all give the same pixels.
// node:zlib builds the reference zlib streams; decoding uses web/core/inflate.js.
import test from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { ByteQueue } from '../../web/core/bytequeue.js';
import { Display } from '../../web/core/display.js';
import { PixelFormat } from '../../web/core/pixelformat.js';
import { makeDecoders } from '../../web/core/decoders/index.js';
import { RawDecoder } from '../../web/core/decoders/raw.js';
import { CopyRectDecoder } from '../../web/core/decoders/copyrect.js';
import { RREDecoder } from '../../web/core/decoders/rre.js';
import { HextileDecoder } from '../../web/core/decoders/hextile.js';
import { ZlibDecoder } from '../../web/core/decoders/zlib.js';
import { ZRLEDecoder } from '../../web/core/decoders/zrle.js';
import { TightDecoder } from '../../web/core/decoders/tight.js';
import { DecodeError } from '../../web/core/decoders/common.js';

const DEFAULT = PixelFormat.default();
const LOW = PixelFormat.bgr233();

// ---------------------------------------------------------------- test image

function prng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 0x100000000;
  };
}

const PALETTE12 = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255],
  [128, 128, 128], [255, 255, 255], [0, 0, 0], [64, 32, 200], [200, 100, 0], [20, 200, 120]];

// RGBA (A = 255) image: bands of gradient, solid blocks, 2/3/5/12-colour patterns, noise.
function makeImage(w, h, seed = 1) {
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
function makeBlockImage(w, h, size = 64) {
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
function quantize(img, pf) {
  if (pf.isRGBX) return img;
  const out = new Uint8Array(img.length);
  const px = new Uint8Array(pf.bytesPerPixel);
  for (let i = 0; i < img.length; i += 4) {
    pf.fromRGB(img[i], img[i + 1], img[i + 2], px, 0);
    pf.toRGBA(px, 0, out, i, 1);
  }
  return out;
}

const colourAt = (img, w, x, y) => {
  const i = (y * w + x) * 4;
  return (img[i] << 16) | (img[i + 1] << 8) | img[i + 2];
};
const rgbOf = (c) => [c >> 16, (c >> 8) & 255, c & 255];

// ---------------------------------------------------------------- wire writers

class Writer {
  constructor() { this.parts = []; }
  u8(v) { this.parts.push(v & 255); return this; }
  u16(v) { return this.u8(v >> 8).u8(v); }
  u32(v) { return this.u8(v >>> 24).u8(v >>> 16).u8(v >>> 8).u8(v); }
  bytes(b) { for (const v of b) this.parts.push(v); return this; }
  get length() { return this.parts.length; }
  done() { return Uint8Array.from(this.parts); }
}

function pixel(pf, c) { return pf.fromRGB(...rgbOf(c)); }
// CPIXEL/TPIXEL: 3 bytes R,G,B in the default format, a whole PIXEL otherwise.
function cpixel(pf, c) { return pf.bytesPerCPixel === 3 ? rgbOf(c) : pixel(pf, c); }

// One persistent zlib stream, sync-flushed after each piece like a VNC server's.
class ZStream {
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
function tiling(w, h) {
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

// ---------------------------------------------------------------- feeding

function splitChunks(stream, mode, seed = 7) {
  if (mode === 'whole') return [stream];
  if (mode === 'bytes') return Array.from(stream, (b) => Uint8Array.of(b));
  const rnd = prng(seed), chunks = [];
  for (let i = 0; i < stream.length;) {
    const n = 1 + Math.floor(rnd() * (rnd() < 0.5 ? 8 : 600));
    chunks.push(stream.subarray(i, i + n));
    i += n;
  }
  return chunks;
}

// Drives the decoder like the RFB object: call decode(); on false push more.
function drive(decoder, rects, chunks, display, ctx) {
  const q = new ByteQueue(16);
  let next = 0;
  for (const rect of rects) {
    while (!decoder.decode(rect, q, display, ctx)) {
      assert.ok(next < chunks.length, `decoder wants bytes past the end (rect ${JSON.stringify(rect)})`);
      q.push(chunks[next++]);
    }
  }
  while (next < chunks.length) q.push(chunks[next++]);
  assert.equal(q.length, 0, 'every byte consumed, no more');
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function assertImage(display, expected, label) {
  const got = display.buffer;
  assert.equal(got.length, expected.length);
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== expected[i]) {
      const p = i >> 2, w = display.width;
      assert.fail(`${label}: pixel (${p % w}, ${Math.floor(p / w)}) is ` +
        `[${display.getPixel(p % w, Math.floor(p / w))}] expected [${[...expected.subarray(p * 4, p * 4 + 4)]}]`);
    }
  }
}

// Encodes once, then decodes whole / bytewise / random splits with fresh decoders.
async function roundTrip({ name, makeDecoder, encode, w, h, pf = DEFAULT, modes = ['whole', 'bytes', 'random'],
  displayOptions = {}, seed = 1, image = makeImage }) {
  const source = quantize(image(w, h, seed), pf);
  const encoded = await encode(source, w, h, pf);
  const { rects, stream } = encoded;
  for (const mode of modes) {
    const display = new Display(displayOptions);
    display.resize(w, h);
    drive(makeDecoder(), rects, splitChunks(stream, mode), display, { pixelFormat: pf });
    await display.whenIdle();
    assertImage(display, source, `${name} ${mode}`);
  }
  return encoded;
}

// Builds {rects, stream} from a per-rect encoder (sync or async).
async function perRect(rects, encodeOne) {
  const parts = [];
  for (const r of rects) parts.push(await encodeOne(r));
  return { rects: rects.map((r, i) => ({ ...r, encoding: 0, index: i })), stream: concat(parts) };
}

// ---------------------------------------------------------------- Raw (0)

function rawBytes(img, w, pf, r) {
  const out = new Writer();
  for (let y = r.y; y < r.y + r.height; y++) {
    for (let x = r.x; x < r.x + r.width; x++) out.bytes(pixel(pf, colourAt(img, w, x, y)));
  }
  return out.done();
}

const encodeRaw = (img, w, h, pf) => perRect(tiling(w, h), (r) => rawBytes(img, w, pf, r));

test('raw: 32 bpp, every split', async () => {
  await roundTrip({ name: 'raw', makeDecoder: () => new RawDecoder(), encode: encodeRaw, w: 61, h: 37 });
});

test('raw: BGR233 low colour', async () => {
  await roundTrip({ name: 'raw8', makeDecoder: () => new RawDecoder(), encode: encodeRaw, w: 40, h: 30, pf: LOW });
});

test('raw: zero-size rectangles consume nothing', () => {
  const d = new Display();
  d.resize(4, 4);
  const q = new ByteQueue();
  q.push(Uint8Array.of(1, 2, 3));
  const dec = new RawDecoder();
  assert.equal(dec.decode({ x: 0, y: 0, width: 0, height: 5 }, q, d, { pixelFormat: DEFAULT }), true);
  assert.equal(dec.decode({ x: 4, y: 4, width: 3, height: 0 }, q, d, { pixelFormat: DEFAULT }), true);
  assert.equal(q.length, 3);
});

// ---------------------------------------------------------------- CopyRect (1)

test('copyrect: copies after raw, in order, any split', () => {
  const w = 30, h = 20, pf = DEFAULT;
  const img = makeImage(w, h);
  const full = { x: 0, y: 0, width: w, height: h, encoding: 0 };
  const copies = [
    { rect: { x: 10, y: 5, width: 12, height: 9, encoding: 1 }, src: [0, 0] },    // overlapping move
    { rect: { x: 29, y: 19, width: 1, height: 1, encoding: 1 }, src: [0, 0] },    // edge pixel
    { rect: { x: 3, y: 3, width: 0, height: 4, encoding: 1 }, src: [5, 5] },      // zero size
  ];
  const expected = new Display();
  expected.resize(w, h);
  expected.blitRGBA(0, 0, w, h, img);
  for (const c of copies) expected.copyRect(c.src[0], c.src[1], c.rect.x, c.rect.y, c.rect.width, c.rect.height);
  const stream = concat([rawBytes(img, w, pf, full),
    ...copies.map((c) => new Writer().u16(c.src[0]).u16(c.src[1]).done())]);
  for (const mode of ['whole', 'bytes', 'random']) {
    const d = new Display();
    d.resize(w, h);
    const raw = new RawDecoder(), copy = new CopyRectDecoder();
    const q = new ByteQueue();
    const chunks = splitChunks(stream, mode);
    let next = 0;
    for (const [dec, rect] of [[raw, full], ...copies.map((c) => [copy, c.rect])]) {
      while (!dec.decode(rect, q, d, { pixelFormat: pf })) q.push(chunks[next++]);
    }
    assert.equal(q.length + chunks.slice(next).reduce((n, c) => n + c.length, 0), 0);
    assertImage(d, expected.buffer, `copyrect ${mode}`);
  }
});

// ---------------------------------------------------------------- RRE (2)

function histogram(img, w, r) {
  const counts = new Map();
  for (let y = r.y; y < r.y + r.height; y++) {
    for (let x = r.x; x < r.x + r.width; x++) {
      const c = colourAt(img, w, x, y);
      counts.set(c, (counts.get(c) || 0) + 1);
    }
  }
  return counts;
}

function mostCommon(counts) {
  let best = 0, bestN = -1;
  for (const [c, n] of counts) if (n > bestN) { best = c; bestN = n; }
  return best;
}

// Greedy cover of the non-background pixels of r by single-colour rectangles
// (run right, then grow down). Coordinates relative to r.
function subrects(img, w, r, bg) {
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

function encodeRRE(img, w, h, pf) {
  return perRect(tiling(w, h), (r) => {
    const bg = mostCommon(histogram(img, w, r));
    const subs = r.width && r.height ? subrects(img, w, r, bg) : [];
    const out = new Writer().u32(subs.length).bytes(pixel(pf, bg));
    for (const s of subs) out.bytes(pixel(pf, s.c)).u16(s.x).u16(s.y).u16(s.w).u16(s.h);
    return out.done();
  });
}

test('rre: 32 bpp and BGR233, every split', async () => {
  await roundTrip({ name: 'rre', makeDecoder: () => new RREDecoder(), encode: encodeRRE, w: 50, h: 33 });
  await roundTrip({ name: 'rre8', makeDecoder: () => new RREDecoder(), encode: encodeRRE, w: 40, h: 21, pf: LOW });
});

test('rre: subrectangle outside the rectangle is a DecodeError', () => {
  const d = new Display();
  d.resize(8, 8);
  const q = new ByteQueue();
  q.push(new Writer().u32(1).bytes([0, 0, 0, 0]).bytes([1, 1, 1, 0]).u16(3).u16(0).u16(2).u16(1).done());
  assert.throws(() => new RREDecoder().decode({ x: 0, y: 0, width: 4, height: 4 }, q, d, {}), DecodeError);
});

// ---------------------------------------------------------------- Hextile (5)

const HX = { RAW: 1, BG: 2, FG: 4, ANY: 8, COLOURED: 16 };

function encodeHextile(img, w, h, pf, rects = tiling(w, h)) {
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
        if (counts.size > 2 && (n % 4 === 0 || subs.length > 255)) mask = HX.RAW;
        else {
          mask = 0;
          if (tileBg !== bg) mask |= HX.BG;
          if (subs.length) mask |= HX.ANY;
          if (counts.size === 2 && n % 3 !== 0) {
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

test('hextile: every subencoding, odd tile sizes, every split', async () => {
  const { stats } = await roundTrip({ name: 'hextile', makeDecoder: () => new HextileDecoder(),
    encode: encodeHextile, w: 71, h: 45 });
  const blocks = await roundTrip({ name: 'hextile-blocks', makeDecoder: () => new HextileDecoder(),
    encode: (img, w, h, pf) => encodeHextile(img, w, h, pf, [{ x: 0, y: 0, width: w, height: h }]),
    w: 90, h: 50, image: (w, h) => makeBlockImage(w, h, 32) });
  for (const [m, n] of blocks.stats) stats.set(m, (stats.get(m) || 0) + n);
  // Raw; carried background (0 and ANY only); BG; FG; coloured subrects.
  for (const m of [HX.RAW, 0, HX.BG, HX.BG | HX.ANY | HX.FG, HX.ANY, HX.BG | HX.ANY | HX.COLOURED]) {
    assert.ok(stats.get(m) > 0, `mask ${m} used (${[...stats.keys()]})`);
  }
  await roundTrip({ name: 'hextile8', makeDecoder: () => new HextileDecoder(), encode: encodeHextile,
    w: 35, h: 40, pf: LOW });
});

test('hextile: zero-size rect consumes nothing; bad subrect is a DecodeError', () => {
  const d = new Display();
  d.resize(20, 20);
  const q = new ByteQueue();
  q.push(Uint8Array.of(HX.BG | HX.ANY | HX.FG, 1, 1, 1, 0, 2, 2, 2, 0, 1, 0x33, 0x10));
  const dec = new HextileDecoder();
  assert.equal(dec.decode({ x: 0, y: 0, width: 0, height: 0 }, q, d, {}), true);
  assert.equal(q.length, 12);
  // subrect at (3,3) of size 2x1 in a 4x4 tile runs past the edge
  assert.throws(() => dec.decode({ x: 0, y: 0, width: 4, height: 4 }, q, d, {}), DecodeError);
});

// ---------------------------------------------------------------- Zlib (6)

async function encodeZlib(img, w, h, pf) {
  const zs = new ZStream();
  return perRect(tiling(w, h), async (r) => {
    const data = await zs.compress(rawBytes(img, w, pf, r));
    return new Writer().u32(data.length).bytes(data).done();
  });
}

test('zlib: one stream across rectangles, every split', async () => {
  await roundTrip({ name: 'zlib', makeDecoder: () => new ZlibDecoder(), encode: encodeZlib, w: 64, h: 40 });
  await roundTrip({ name: 'zlib8', makeDecoder: () => new ZlibDecoder(), encode: encodeZlib, w: 33, h: 20, pf: LOW });
});

test('zlib: wrong inflated size is a DecodeError', async () => {
  const d = new Display();
  d.resize(4, 4);
  const data = await new ZStream().compress(new Uint8Array(12));
  const q = new ByteQueue();
  q.push(new Writer().u32(data.length).bytes(data).done());
  assert.throws(() => new ZlibDecoder().decode({ x: 0, y: 0, width: 2, height: 2 }, q, d, {}), DecodeError);
});

// ---------------------------------------------------------------- ZRLE (16)

function runLength(out, run) {
  let n = run - 1;
  while (n >= 255) { out.u8(255); n -= 255; }
  out.u8(n);
}

function zrleTile(img, w, pf, t, choice, stats) {
  const out = new Writer();
  const counts = histogram(img, w, t);
  const palette = [...counts.keys()];
  const index = new Map(palette.map((c, i) => [c, i]));
  const n = palette.length;
  const options = [0, 128];
  if (n === 1) options.push(1, 1, 1);
  if (n >= 2 && n <= 16) options.push(n);
  if (n >= 2 && n <= 127) options.push(128 + n);
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

function makeZRLEEncoder(stats) {
  return async (img, w, h, pf) => {
    const zs = new ZStream();
    let choice = 0;
    return perRect(tiling(w, h), async (r) => {
      const tiles = [];
      for (let ty = 0; ty < r.height; ty += 64) {
        for (let tx = 0; tx < r.width; tx += 64) {
          const t = { x: r.x + tx, y: r.y + ty, width: Math.min(64, r.width - tx), height: Math.min(64, r.height - ty) };
          tiles.push(zrleTile(img, w, pf, t, choice++, stats));
        }
      }
      const data = await zs.compress(concat(tiles));
      return new Writer().u32(data.length).bytes(data).done();
    });
  };
}

test('zrle: raw, solid, packed 1/2/4-bit, plain and palette RLE, partial tiles, every split', async () => {
  const stats = new Map();
  await roundTrip({ name: 'zrle', makeDecoder: () => new ZRLEDecoder(), encode: makeZRLEEncoder(stats), w: 150, h: 100 });
  await roundTrip({ name: 'zrle-blocks', makeDecoder: () => new ZRLEDecoder(), encode: makeZRLEEncoder(stats),
    w: 330, h: 200, image: (w, h) => makeBlockImage(w, h, 64), modes: ['whole', 'random'] });
  for (const k of [0, 1, 128, 'packed1', 'packed2', 'packed4', 'prle']) assert.ok(stats.get(k) > 0, `zrle ${k} used`);
  await roundTrip({ name: 'zrle8', makeDecoder: () => new ZRLEDecoder(), encode: makeZRLEEncoder(new Map()),
    w: 70, h: 66, pf: LOW });
});

test('zrle: long runs (length bytes of 255), zero-size rect, bad subencoding', async () => {
  const zs = new ZStream();
  const out = new Writer().u8(128).bytes([1, 2, 3]);
  runLength(out, 64 * 64);                       // one run over a whole 64x64 tile
  out.u8(130).bytes([9, 9, 9, 7, 7, 7]);         // palette RLE, 2 colours, 64x1 tile
  out.u8(128 | 1); runLength(out, 63); out.u8(0);
  const data = await zs.compress(out.done());
  const empty = await zs.compress(new Uint8Array(0));
  const q = new ByteQueue();
  q.push(new Writer().u32(data.length).bytes(data).u32(empty.length).bytes(empty).done());
  const d = new Display();
  d.resize(64, 65);
  const dec = new ZRLEDecoder();
  assert.equal(dec.decode({ x: 0, y: 0, width: 64, height: 65 }, q, d, {}), true);
  assert.deepEqual(d.getPixel(63, 63), [1, 2, 3, 255]);
  assert.deepEqual(d.getPixel(62, 64), [7, 7, 7, 255]);
  assert.deepEqual(d.getPixel(63, 64), [9, 9, 9, 255]);
  assert.equal(dec.decode({ x: 5, y: 5, width: 0, height: 0 }, q, d, {}), true);
  assert.equal(q.length, 0);
  const bad = await zs.compress(Uint8Array.of(17));
  q.push(new Writer().u32(bad.length).bytes(bad).done());
  assert.throws(() => dec.decode({ x: 0, y: 0, width: 4, height: 4 }, q, d, {}), DecodeError);
});

// ---------------------------------------------------------------- Tight (7)

function compactLength(out, n) {
  if (n < 128) out.u8(n);
  else if (n < 16384) out.u8(0x80 | (n & 0x7f)).u8(n >> 7);
  else out.u8(0x80 | (n & 0x7f)).u8(0x80 | ((n >> 7) & 0x7f)).u8(n >> 14);
}

function tpixel(pf, c) { return pf.bytesPerTPixel === 3 ? rgbOf(c) : pixel(pf, c); }

// A stand-in for JPEG data: magic, width, height, then the RGBA pixels and
// padding (to reach the 1-, 2- and 3-byte compact lengths).
const FAKE_JPEG = [0xff, 0xd8, 0x4a, 0x50];
function fakeJpeg(img, w, r, pad) {
  const out = new Writer().bytes(FAKE_JPEG).u16(r.width).u16(r.height);
  for (let y = r.y; y < r.y + r.height; y++) {
    for (let x = r.x; x < r.x + r.width; x++) out.bytes([...rgbOf(colourAt(img, w, x, y)), 0]);
  }
  return out.bytes(new Uint8Array(pad)).done();
}

// decodeImage for the Display: answers after a short timeout, like a real decoder.
function fakeDecodeImage(log = []) {
  return (mime, bytes) => new Promise((resolve, reject) => {
    assert.equal(mime, 'image/jpeg');
    if (!FAKE_JPEG.every((b, i) => bytes[i] === b)) return reject(new Error('not a fake jpeg'));
    const width = (bytes[4] << 8) | bytes[5], height = (bytes[6] << 8) | bytes[7];
    const data = new Uint8ClampedArray(bytes.subarray(8, 8 + width * height * 4));
    setTimeout(() => { log.push(`${width}x${height}`); resolve({ width, height, data }); }, 1 + (bytes.length % 7));
  });
}

function gradientData(img, w, r) {
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

function makeTightEncoder(stats, { jpeg = false, rects = null } = {}) {
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
      const mode = palette.length === 1 && n % 4 !== 3 ? 'fill' : options[n % options.length];
      count(mode);
      let ctl = 0;
      if (n % 5 === 4) {                           // reset a stream now and then
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
      const stream = n & 3;
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

test('tight: fill, copy, palette (1-bit and 8-bit), gradient, 4 streams with resets, every split', async () => {
  const stats = new Map();
  await roundTrip({ name: 'tight', makeDecoder: () => new TightDecoder(), encode: makeTightEncoder(stats), w: 80, h: 47 });
  await roundTrip({ name: 'tight-blocks', makeDecoder: () => new TightDecoder(), w: 96, h: 64,
    image: (w, h) => makeBlockImage(w, h, 16), modes: ['whole', 'random'],
    encode: makeTightEncoder(stats, { rects: blockRects(96, 64, 16) }) });
  for (const k of ['fill', 'copy', 'mono', 'indexed', 'gradient', 'uncompressed', 'reset',
    'stream0', 'stream1', 'stream2', 'stream3']) {
    assert.ok(stats.get(k) > 0, `tight ${k} used (${[...stats.keys()]})`);
  }
  await roundTrip({ name: 'tight8', makeDecoder: () => new TightDecoder(), encode: makeTightEncoder(new Map()),
    w: 50, h: 30, pf: LOW });
});

function blockRects(w, h, size) {
  const rects = [];
  for (let y = 0; y < h; y += size) {
    for (let x = 0; x < w; x += size) rects.push({ x, y, width: Math.min(size, w - x), height: Math.min(size, h - y) });
  }
  return rects;
}

test('tight: JPEG rects via decodeImage, 1/2/3-byte compact lengths, every split', async () => {
  const stats = new Map();
  await roundTrip({ name: 'tight-jpeg', makeDecoder: () => new TightDecoder(), encode: makeTightEncoder(stats, { jpeg: true }),
    w: 60, h: 40, displayOptions: { decodeImage: fakeDecodeImage() } });
  for (const k of ['jpeg', 'len1', 'len2', 'len3']) assert.ok(stats.get(k) > 0, `tight ${k} used (${[...stats.keys()]})`);
});

test('tight: a CopyRect after a pending JPEG copies the JPEG pixels', async () => {
  const w = 20, h = 10;
  const img = makeImage(w, h, 3);
  const log = [];
  const d = new Display({ decodeImage: fakeDecodeImage(log) });
  d.resize(w, h);
  d.fillRect(0, 0, w, h, 1, 2, 3);
  const jpegRect = { x: 0, y: 0, width: 10, height: 10, encoding: 7 };
  const data = fakeJpeg(img, w, jpegRect, 0);
  const out = new Writer().u8(0x90);
  compactLength(out, data.length);
  const q = new ByteQueue();
  q.push(concat([out.bytes(data).done(), new Writer().u16(0).u16(0).done(), Uint8Array.of(0x80, 9, 8, 7)]));
  const decoders = makeDecoders();
  assert.equal(decoders.get(7).decode(jpegRect, q, d, {}), true);
  assert.equal(d.pending, true);
  assert.equal(decoders.get(1).decode({ x: 10, y: 0, width: 10, height: 10, encoding: 1 }, q, d, {}), true);
  assert.equal(decoders.get(7).decode({ x: 0, y: 9, width: 1, height: 1, encoding: 7 }, q, d, {}), true);
  assert.equal(q.length, 0);
  assert.deepEqual(d.getPixel(15, 5), [1, 2, 3, 255], 'copy not applied before the JPEG');
  assert.deepEqual(log, []);
  await d.whenIdle();
  assert.deepEqual(log, ['10x10']);
  const expected = new Display();
  expected.resize(w, h);
  expected.blitRGBA(0, 0, 10, 10, img.subarray(0), 0, w * 4);
  expected.blitRGBA(10, 0, 10, 10, img.subarray(0), 0, w * 4);
  expected.fillRect(0, 9, 1, 1, 9, 8, 7);
  assertImage(d, expected.buffer, 'jpeg then copyrect');
});

test('tight: zero-size rects, reset without data, bad filter and TightPNG are DecodeErrors', () => {
  const d = new Display();
  d.resize(4, 4);
  const q = new ByteQueue();
  const dec = new TightDecoder();
  q.push(Uint8Array.of(0x0f, 0x80 | 0x03, 1, 2, 3)); // basic copy 0x0 (no data), fill with resets
  assert.equal(dec.decode({ x: 0, y: 0, width: 0, height: 3 }, q, d, {}), true);
  assert.equal(dec.decode({ x: 0, y: 0, width: 0, height: 0 }, q, d, {}), true);
  assert.equal(q.length, 0);
  q.push(Uint8Array.of(0x40, 3));
  assert.throws(() => dec.decode({ x: 0, y: 0, width: 2, height: 2 }, q, d, {}), DecodeError);
  q.clear();
  q.push(Uint8Array.of(0xa0, 1, 0));
  assert.throws(() => dec.decode({ x: 0, y: 0, width: 2, height: 2 }, q, d, {}), DecodeError);
  q.clear();
  q.push(Uint8Array.of(0x40, 2, 0, 0, 0));
  assert.throws(() => dec.decode({ x: 0, y: 0, width: 1, height: 1 }, q, d, { pixelFormat: LOW }), DecodeError,
    'gradient needs 3-byte TPIXELs');
});

test('makeDecoders maps every encoding number to a fresh decoder', () => {
  const a = makeDecoders(), b = makeDecoders();
  assert.deepEqual([...a.keys()].sort((x, y) => x - y), [0, 1, 2, 5, 6, 7, 16]);
  for (const [k, dec] of a) {
    assert.equal(typeof dec.decode, 'function');
    assert.notEqual(dec, b.get(k));
  }
});
