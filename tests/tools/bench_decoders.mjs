#!/usr/bin/env node
// tests/tools/bench_decoders.mjs — decode time of one 1920x1080 full-screen update per
// encoding, in Node (a measurement, not a test: node --test tests/js/ does not run it).
//
// A desktop-like frame (flat background and panels, text-like glyphs in windows,
// gradients, a photo-like noisy region) is encoded once per encoding with the
// reference encoders of tests/js/encoders.mjs, in the choices a real server makes
// (best subencoding per tile/rect). Each run feeds the update in 64 KiB pieces (as
// the WebSocket delivers it) to a decoder whose zlib streams are reset, drawing into
// a persistent 1920x1080 Display, and the result is checked pixel-exact once.
//
//   node tests/tools/bench_decoders.mjs [--runs 15] [--web DIR ...] [ENCODING ...]
//
// --web DIR (repeatable) loads web/core from DIR instead of this checkout, e.g. a
// `git archive HEAD web | tar -x -C /tmp/before` copy: with two or more trees the
// runs are interleaved round by round and the last columns are ratios to the first.
// Reports the median ms per frame, wire MB/s (encoded bytes) and framebuffer MB/s
// (1920*1080*4 bytes drawn).

import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { PixelFormat } from '../../web/core/pixelformat.js';
import {
  prng, encodeRaw, encodeRRE, encodeHextile, encodeZlib, makeZRLEEncoder, makeTightEncoder, blockRects,
  Writer,
} from '../js/encoders.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const W = 1920, H = 1080;
const CHUNK = 64 * 1024;
const FULL = [{ x: 0, y: 0, width: W, height: H }];

// ---------------------------------------------------------------- the frame

// RGBA, A = 255.
function desktop(w, h, seed = 1) {
  const rnd = prng(seed);
  const img = new Uint8Array(w * h * 4);
  const put = (x, y, r, g, b) => {
    const i = (y * w + x) * 4;
    img[i] = r; img[i + 1] = g; img[i + 2] = b; img[i + 3] = 255;
  };
  const rect = (x0, y0, x1, y1, r, g, b) => {
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) put(x, y, r, g, b);
  };
  // Flat desktop background and a panel with a horizontal gradient.
  rect(0, 0, w, h, 58, 110, 165);
  for (let y = 0; y < 28; y++) for (let x = 0; x < w; x++) put(x, y, 40 + (x * 60) / w | 0, 40 + y, 60 + (x * 40) / w | 0);
  // Text: glyph cells of 8x14 with random strokes and two anti-alias greys.
  const text = (x0, y0, x1, y1, ink, paper) => {
    for (let cy = y0; cy + 14 <= y1; cy += 18) {
      let cx = x0;
      while (cx + 8 <= x1) {
        if (rnd() < 0.15) { cx += 8; continue; }          // word gap
        const g = rnd() * 0xffffffff >>> 0;
        for (let gy = 2; gy < 12; gy++) {
          for (let gx = 1; gx < 7; gx++) {
            const bit = (g >>> ((gx * 5 + gy * 3) & 31)) & 1;
            if (bit && ((gx + gy) & 1 || gy % 5 === 0 || gx === 1)) put(cx + gx, cy + gy, ...ink);
            else if (bit) put(cx + gx, cy + gy, ...paper.map((p, k) => (p + ink[k]) >> 1));
          }
        }
        cx += 8;
      }
    }
  };
  // Window 1: title gradient, white page of text.
  const win = (x0, y0, x1, y1) => {
    for (let y = y0; y < y0 + 26; y++) for (let x = x0; x < x1; x++) put(x, y, 200 - (y - y0) * 3, 205 - (y - y0) * 3, 215);
    rect(x0, y0 + 26, x1, y1, 250, 250, 250);
  };
  win(80, 70, 1100, 770);
  text(96, 110, 1084, 760, [30, 30, 30], [250, 250, 250]);
  // Window 2: grey panel, flat buttons, a diagonal gradient chart, some text.
  win(1150, 110, 1860, 720);
  rect(1150, 136, 1860, 720, 225, 225, 228);
  for (let i = 0; i < 6; i++) rect(1170 + i * 110, 150, 1260 + i * 110, 180, 180, 190, 210);
  for (let y = 200; y < 460; y++) for (let x = 1170; x < 1840; x++) put(x, y, (x - 1170) * 255 / 670 | 0, (y - 200) * 255 / 260 | 0, 128);
  text(1170, 480, 1840, 710, [20, 20, 90], [225, 225, 228]);
  // Photo-like region: smooth shapes plus sensor noise.
  for (let y = 790; y < 1065; y++) {
    for (let x = 150; x < 1450; x++) {
      const n = () => (rnd() * 12 | 0) - 6;
      const r = 120 + 80 * Math.sin(x / 53) * Math.cos(y / 31);
      const g = 110 + 70 * Math.sin((x + y) / 71);
      const b = 90 + 60 * Math.cos(x / 97 - y / 43);
      put(x, y, Math.max(0, Math.min(255, r + n() | 0)), Math.max(0, Math.min(255, g + n() | 0)),
        Math.max(0, Math.min(255, b + n() | 0)));
    }
  }
  return img;
}

// ---------------------------------------------------------------- encodings

const ENCODINGS = {
  raw: { number: 0, encode: (img, pf) => encodeRaw(img, W, H, pf, FULL) },
  copyrect: {
    number: 1,   // a full-screen scroll by 16 rows (then the bottom 16 rows from somewhere)
    encode: () => ({ rects: [{ x: 0, y: 0, width: W, height: H - 16 }], stream: new Writer().u16(0).u16(16).done() }),
  },
  rre: { number: 2, encode: (img, pf) => encodeRRE(img, W, H, pf, FULL) },
  hextile: { number: 5, encode: (img, pf) => encodeHextile(img, W, H, pf, FULL, { best: true }) },
  zlib: { number: 6, encode: (img, pf) => encodeZlib(img, W, H, pf, FULL) },
  zrle: { number: 16, encode: (img, pf) => makeZRLEEncoder(new Map(), { rects: FULL, best: true })(img, W, H, pf) },
  // TigerVNC-like: rects of at most 64 K pixels, copy filter for photos.
  tight: {
    number: 7,
    encode: (img, pf) => makeTightEncoder(new Map(), { rects: blockRects(W, H, 256).flatMap(halve), best: true })(img, W, H, pf),
  },
  // TightVNC-like: the gradient filter for many-colour rects.
  'tight-gradient': {
    number: 7,
    encode: (img, pf) => makeTightEncoder(new Map(), { rects: blockRects(W, H, 256).flatMap(halve), best: true,
      gradient: true })(img, W, H, pf),
  },
};

// 256x256 blocks into 256x128 (32 K pixels).
function halve(r) {
  if (r.height <= 128) return [r];
  return [{ ...r, height: 128 }, { ...r, y: r.y + 128, height: r.height - 128 }];
}

// ---------------------------------------------------------------- running

async function loadTree(dir) {
  const url = (p) => pathToFileURL(path.join(dir, 'core', p)).href;
  const [{ ByteQueue }, { Display }, { makeDecoders }] = await Promise.all([
    import(url('bytequeue.js')), import(url('display.js')), import(url('decoders/index.js'))]);
  const display = new Display();
  display.resize(W, H);
  return { dir, ByteQueue, Display, makeDecoders, display, decoders: makeDecoders() };
}

// A decoder that has run before, with its zlib streams reset (so the same
// update decodes again): the inflaters keep their grown buffers, as they do
// during a session.
function reusedDecoder(tree, number) {
  const decoder = tree.decoders.get(number);
  const blocks = decoder._blocks;                  // Zlib, ZRLE: one ZlibBlockReader
  if (blocks) { blocks._inflator.reset(); blocks._length = -1; }
  if (decoder._inflator) decoder._inflator.reset();    // trees from before ZlibBlockReader
  if (decoder._inflators) for (const inf of decoder._inflators) if (inf) inf.reset();
  return decoder;
}

// One update, in pieces of CHUNK bytes. Returns [wall ms, CPU ms of this process].
function decodeOnce(tree, enc, frame, pf) {
  const decoder = reusedDecoder(tree, enc.number);
  const queue = new tree.ByteQueue();
  const { rects, stream } = frame;
  const ctx = { pixelFormat: pf };
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let at = 0;
  for (const rect of rects) {
    while (!decoder.decode(rect, queue, tree.display, ctx)) {
      if (at >= stream.length) throw new Error(`${tree.dir}: decoder wants bytes past the end`);
      queue.push(stream.subarray(at, at + CHUNK));
      at += CHUNK;
    }
  }
  tree.display.present();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  if (at < stream.length || queue.length) throw new Error(`${tree.dir}: bytes left over`);
  return [ms, (cpu.user + cpu.system) / 1000];
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(argv) {
  let runs = 15;
  const dirs = [];
  const names = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runs') runs = Number(argv[++i]);
    else if (argv[i] === '--web') dirs.push(path.resolve(argv[++i]));
    else if (ENCODINGS[argv[i]]) names.push(argv[i]);
    else throw new Error(`unknown argument ${argv[i]} (encodings: ${Object.keys(ENCODINGS).join(', ')})`);
  }
  if (!dirs.length) dirs.push(path.join(HERE, '..', '..', 'web'));
  if (!names.length) names.push(...Object.keys(ENCODINGS));
  const trees = [];
  for (const d of dirs) trees.push(await loadTree(d));
  const pf = PixelFormat.default();
  const img = desktop(W, H);

  const frames = {};
  for (const name of names) {
    const t0 = performance.now();
    frames[name] = await ENCODINGS[name].encode(img, pf);
    process.stderr.write(`encoded ${name}: ${frames[name].stream.length} bytes, ` +
      `${frames[name].rects.length} rects (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  }

  // Pixel-exact check of each tree once (copyrect: against the shifted picture).
  for (const tree of trees) {
    for (const name of names) {
      tree.display.blitRGBA(0, 0, W, H, img);
      decodeOnce(tree, ENCODINGS[name], frames[name], pf);
      const got = tree.display.buffer;
      const rowBytes = W * 4;
      const expected = name === 'copyrect'
        ? Uint8Array.from(img).copyWithin(0, 16 * rowBytes, H * rowBytes)
        : img;
      for (let i = 0; i < got.length; i++) {
        if (got[i] !== expected[i]) throw new Error(`${tree.dir} ${name}: byte ${i} is ${got[i]}, expected ${expected[i]}`);
      }
    }
  }

  // Warm up, then interleave: for each round, every encoding on every tree.
  const times = trees.map(() => Object.fromEntries(names.map((n) => [n, []])));
  const cpus = trees.map(() => Object.fromEntries(names.map((n) => [n, []])));
  for (let round = -3; round < runs; round++) {
    for (const name of names) {
      for (let t = 0; t < trees.length; t++) {
        const [ms, cpu] = decodeOnce(trees[t], ENCODINGS[name], frames[name], pf);
        if (round >= 0) {
          times[t][name].push(ms);
          cpus[t][name].push(cpu);
        }
      }
    }
  }

  const fbMB = (W * H * 4) / 1e6;
  console.log(`1920x1080 update, median of ${runs} runs, node ${process.version}; ` +
    'ms = wall clock, cpu = CPU ms of this process (steadier on a shared machine), MB/s from wall ms');
  trees.forEach((t, i) => console.log(`  tree ${i}: ${t.dir}`));
  const head = ['encoding', 'wire MB'];
  trees.forEach((_, i) => head.push(`ms[${i}]`, `cpu[${i}]`, `wire MB/s[${i}]`, `fb MB/s[${i}]`));
  for (let i = 1; i < trees.length; i++) head.push(`wall 0/${i}`, `cpu 0/${i}`);
  console.log(head.map((h, i) => (i ? h.padStart(11) : h.padEnd(15))).join(''));
  for (const name of names) {
    const wire = frames[name].stream.length / 1e6;
    const meds = times.map((tt) => median(tt[name]));
    const cmeds = cpus.map((tt) => median(tt[name]));
    const row = [name, wire.toFixed(2)];
    meds.forEach((m, i) => row.push(m.toFixed(2), cmeds[i].toFixed(2), (wire / (m / 1000)).toFixed(0),
      (fbMB / (m / 1000)).toFixed(0)));
    for (let i = 1; i < trees.length; i++) {
      row.push(`${(meds[0] / meds[i]).toFixed(2)}x`, `${(cmeds[0] / cmeds[i]).toFixed(2)}x`);
    }
    console.log(row.map((c, i) => (i ? String(c).padStart(11) : c.padEnd(15))).join(''));
  }
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err);
  process.exit(1);
});
