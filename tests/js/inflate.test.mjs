// Tests for web/core/inflate.js. Reference streams come from Python's zlib (spawned with
// execFileSync), so the inflater is checked against the real encoder, not against itself.
// Run: node --test tests/js/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

import { Inflator, InflateError, InflateLimitError } from '../../web/core/inflate.js';

// ------------------------------------------------------------------------------------------
// Helpers

// Compresses with Python's zlib. spec: { level, wbits, memLevel, strategy, pieces, finish }.
// With `pieces` (an array of lengths) each piece is followed by flush(Z_SYNC_FLUSH), the way VNC
// servers cut their stream; the result is then an array of compressed pieces.
const PY_COMPRESS = `
import sys, json, zlib, struct
spec = json.loads(sys.argv[1])
data = sys.stdin.buffer.read()
strategy = getattr(zlib, spec.get('strategy', 'Z_DEFAULT_STRATEGY'))
c = zlib.compressobj(spec.get('level', 6), zlib.DEFLATED, spec.get('wbits', 15),
                     spec.get('memLevel', 8), strategy)
out = sys.stdout.buffer
pieces = spec.get('pieces')
if pieces is None:
    out.write(c.compress(data) + c.flush())
else:
    pos = 0
    chunks = []
    for n in pieces:
        chunks.append(c.compress(data[pos:pos + n]) + c.flush(zlib.Z_SYNC_FLUSH))
        pos += n
    if spec.get('finish'):
        chunks.append(c.flush())
    for ch in chunks:
        out.write(struct.pack('>I', len(ch)) + ch)
`;

function python(script, args, input) {
    return new Uint8Array(
        execFileSync('python3', ['-c', script, ...args], { input, maxBuffer: 1 << 30 }),
    );
}

function compress(data, spec = {}) {
    return python(PY_COMPRESS, [JSON.stringify(spec)], data);
}

function compressPieces(data, pieces, spec = {}) {
    const raw = python(PY_COMPRESS, [JSON.stringify({ ...spec, pieces })], data);
    const out = [];
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let pos = 0; pos < raw.length; ) {
        const n = view.getUint32(pos);
        out.push(raw.subarray(pos + 4, pos + 4 + n));
        pos += 4 + n;
    }
    return out;
}

function concat(arrays) {
    const total = arrays.reduce((s, a) => s + a.length, 0);
    const out = new Uint8Array(total);
    let pos = 0;
    for (const a of arrays) {
        out.set(a, pos);
        pos += a.length;
    }
    return out;
}

// Feeds `pieces` through one Inflator and returns everything it produced.
function inflatePieces(pieces, inf = new Inflator()) {
    return concat(pieces.map((p) => inf.inflate(p)));
}

// Byte-exact comparison with a useful message (assert.deepEqual on MBs is slow and noisy).
function assertBytes(actual, expected, what = 'output') {
    assert.equal(actual.length, expected.length, `${what}: length`);
    for (let i = 0; i < expected.length; i++) {
        if (actual[i] !== expected[i]) {
            assert.fail(`${what}: first difference at byte ${i}: ${actual[i]} != ${expected[i]}`);
        }
    }
}

// Deterministic data (xorshift32), so failures reproduce.
function rng(seed) {
    let s = seed >>> 0 || 1;
    return () => {
        s ^= s << 13;
        s >>>= 0;
        s ^= s >>> 17;
        s ^= s << 5;
        s >>>= 0;
        return s;
    };
}

function randomBytes(n, seed = 1) {
    const r = rng(seed);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = r() & 255;
    return out;
}

function repetitive(n) {
    const pattern = new TextEncoder().encode('wsproxy VNC framebuffer update ');
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = pattern[i % pattern.length];
    return out;
}

function textLike(n, seed = 7) {
    const words = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'zlib',
        'deflate', 'huffman', 'window', 'stream', 'rectangle', 'pixel', '\n', 'VNC', 'tight'];
    const r = rng(seed);
    const parts = [];
    let len = 0;
    while (len < n) {
        const w = words[r() % words.length] + ' ';
        parts.push(w);
        len += w.length;
    }
    return new TextEncoder().encode(parts.join('')).subarray(0, n);
}

// Something like a desktop in RGBX: flat areas, gradients, a little noise, repeated rows.
function screenLike(width, height, seed = 3) {
    const r = rng(seed);
    const out = new Uint8Array(width * height * 4);
    let p = 0;
    for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
            let red, green, blue;
            if (y < height / 3) {
                red = 40; green = 60; blue = 90; // flat title/desktop area
            } else if (x < width / 2) {
                red = (x * 255 / width) | 0; green = (y * 255 / height) | 0; blue = 128; // gradient
            } else {
                const v = (x >> 4) ^ (y >> 4);
                red = green = blue = v & 1 ? 230 : 250; // checker/text-ish
                if ((r() & 63) === 0) red = r() & 255; // sparse noise
            }
            out[p++] = red; out[p++] = green; out[p++] = blue; out[p++] = 0;
        }
    }
    return out;
}

// Minimal LSB-first bit writer for hand-made (corrupt) DEFLATE streams.
class BitWriter {
    constructor() {
        this.bytes = [];
        this.acc = 0;
        this.n = 0;
    }
    bits(value, count) { // value LSB first (header fields, extra bits)
        for (let i = 0; i < count; i++) {
            this.acc |= ((value >>> i) & 1) << this.n;
            if (++this.n === 8) this.flushByte();
        }
        return this;
    }
    code(code, len) { // Huffman code, most significant bit first
        for (let i = len - 1; i >= 0; i--) this.bits((code >>> i) & 1, 1);
        return this;
    }
    flushByte() {
        this.bytes.push(this.acc);
        this.acc = 0;
        this.n = 0;
    }
    done() {
        if (this.n) this.flushByte();
        return new Uint8Array(this.bytes);
    }
}

const ZLIB_HEADER = [0x78, 0x9c];

function withHeader(body) {
    return new Uint8Array([...ZLIB_HEADER, ...body]);
}

function adler32(data) {
    let a = 1, b = 0;
    for (const x of data) {
        a = (a + x) % 65521;
        b = (b + a) % 65521;
    }
    return [(b >>> 8) & 255, b & 255, (a >>> 8) & 255, a & 255];
}

// ------------------------------------------------------------------------------------------
// Whole streams

const SMALL = 100_000;
const cases = [
    ['empty', new Uint8Array(0)],
    ['one byte', new Uint8Array([42])],
    ['random', randomBytes(SMALL)],
    ['repetitive', repetitive(SMALL)],
    ['text', textLike(SMALL)],
    ['screen', screenLike(160, 120)],
];

for (const level of [0, 1, 6, 9]) {
    for (const [name, data] of cases) {
        test(`level ${level}: ${name} (${data.length} bytes)`, () => {
            const z = compress(data, { level });
            const inf = new Inflator();
            assertBytes(inf.inflate(z), data);
            assert.equal(inf.done, true, 'stream end (with Adler-32) recognised');
        });
    }
}

for (const strategy of ['Z_FIXED', 'Z_HUFFMAN_ONLY', 'Z_RLE', 'Z_FILTERED']) {
    test(`strategy ${strategy}: text and screen`, () => {
        for (const data of [textLike(50_000), screenLike(100, 100)]) {
            assertBytes(new Inflator().inflate(compress(data, { level: 6, strategy })), data);
        }
    });
}

test('small windows (wbits 9..14) and memLevel 1', () => {
    const data = textLike(60_000);
    for (const wbits of [9, 10, 12, 14]) {
        assertBytes(new Inflator().inflate(compress(data, { wbits })), data, `wbits ${wbits}`);
    }
    assertBytes(new Inflator().inflate(compress(data, { memLevel: 1, level: 9 })), data, 'memLevel 1');
});

test('large: 8 MB screen at level 6 and 4 MB random at level 1', () => {
    const screen = screenLike(1920, 1080);
    assertBytes(new Inflator().inflate(compress(screen, { level: 6 })), screen, 'screen');
    const random = randomBytes(4 << 20, 99);
    assertBytes(new Inflator().inflate(compress(random, { level: 1 })), random, 'random');
});

test('a stored block longer than 64 KiB input pieces (level 0, fed in 1000-byte pieces)', () => {
    const data = randomBytes(300_000, 5);
    const z = compress(data, { level: 0 });
    const pieces = [];
    for (let i = 0; i < z.length; i += 1000) pieces.push(z.subarray(i, i + 1000));
    assertBytes(inflatePieces(pieces), data);
});

// ------------------------------------------------------------------------------------------
// Streaming: sync-flushed pieces, arbitrary splits

test('sync-flushed stream fed piece by piece, each piece fully decodable on arrival', () => {
    const data = concat([textLike(30_000), screenLike(200, 50), randomBytes(5000), repetitive(40_000)]);
    const sizes = [1, 100, 5000, 20_000, 3, 30_000, 0, 12_345];
    sizes.push(data.length - sizes.reduce((a, b) => a + b, 0));
    const pieces = compressPieces(data, sizes, { level: 6 });
    const inf = new Inflator();
    let pos = 0;
    sizes.forEach((n, i) => {
        // Z_SYNC_FLUSH guarantees all input so far can be reproduced: nothing may be held back.
        assertBytes(inf.inflate(pieces[i]), data.subarray(pos, pos + n), `piece ${i}`);
        pos += n;
    });
    assert.equal(inf.done, false, 'a sync-flushed stream has not ended');
});

test('sync-flushed stream with window reaching back across pieces (matches span calls)', () => {
    // Random data has no matches of its own, so the repeats can only be found in earlier pieces.
    const block = randomBytes(10_000, 11);
    const data = concat([block, block, block, block]);
    const sizes = [10_000, 10_000, 10_000, 10_000];
    for (const level of [1, 6, 9]) {
        const pieces = compressPieces(data, sizes, { level });
        assert.ok(pieces[2].length < 1000, 'later pieces are back-references');
        assertBytes(inflatePieces(pieces), data, `level ${level}`);
    }
});

test('every split point of a small stream (stored, fixed, dynamic, sync-flushed)', () => {
    const text = textLike(3000, 21);
    const streams = [
        ['stored', compress(text.subarray(0, 600), { level: 0 })],
        ['fixed', compress(text.subarray(0, 600), { strategy: 'Z_FIXED' })],
        ['dynamic', compress(text, { level: 9 })],
        ['sync-flushed', concat(compressPieces(text, [700, 1, 1300, 1000], { level: 6, finish: true }))],
    ];
    for (const [name, z] of streams) {
        const expected = new Inflator().inflate(z);
        assert.ok(expected.length >= 600, `${name}: decodes whole`);
        for (let split = 0; split <= z.length; split++) {
            const got = inflatePieces([z.subarray(0, split), z.subarray(split)]);
            assertBytes(got, expected, `${name} split at ${split}`);
        }
    }
});

test('overlapping matches of every period 1..40 and lengths up to 258, whole and in pieces', () => {
    // Runs of a short random pattern become matches with distance = period < length: the copy
    // that repeats its own output (byte loop, fill, doubling copies) must match zlib exactly.
    const parts = [];
    for (let period = 1; period <= 40; period++) {
        const pattern = randomBytes(period, period);
        for (const run of [3, 17, 31, 64, 258, 700]) {
            const chunk = new Uint8Array(period + run);
            for (let i = 0; i < chunk.length; i++) chunk[i] = pattern[i % period];
            parts.push(chunk, randomBytes(5, run + period));
        }
    }
    const data = concat(parts);
    const stream = compress(data, { level: 9 });
    assertBytes(new Inflator().inflate(stream), data, 'whole');
    const r = rng(11);
    const pieces = [];
    for (let i = 0; i < stream.length;) {
        const n = 1 + (r() % 40);
        pieces.push(stream.subarray(i, i + n));
        i += n;
    }
    assertBytes(inflatePieces(pieces), data, 'pieces');
});

test('one byte at a time', () => {
    const data = concat([textLike(20_000, 31), randomBytes(3000, 4), screenLike(64, 64)]);
    for (const spec of [{ level: 0 }, { level: 1 }, { level: 9 }, { strategy: 'Z_FIXED' }]) {
        const z = compress(data, spec);
        const inf = new Inflator();
        const outs = [];
        for (let i = 0; i < z.length; i++) outs.push(inf.inflate(z.subarray(i, i + 1)));
        assertBytes(concat(outs), data, JSON.stringify(spec));
        assert.equal(inf.done, true);
    }
});

test('random piece sizes over a sync-flushed stream', () => {
    const data = concat([screenLike(300, 200, 8), textLike(50_000, 9)]);
    const z = concat(compressPieces(data, [1000, 50_000, 70_000, 100_000, data.length - 221_000], { level: 6 }));
    const r = rng(1234);
    for (let trial = 0; trial < 20; trial++) {
        const pieces = [];
        for (let pos = 0; pos < z.length; ) {
            const n = r() % (trial < 10 ? 17 : 3000);
            pieces.push(z.subarray(pos, pos + n));
            pos += n;
        }
        assertBytes(inflatePieces(pieces), data, `trial ${trial}`);
    }
});

test('input buffer reused by the caller after inflate() does not corrupt state', () => {
    const data = textLike(40_000, 2);
    const z = compress(data, { level: 9 });
    const inf = new Inflator();
    const scratch = new Uint8Array(7);
    const outs = [];
    for (let pos = 0; pos < z.length; pos += 7) {
        const piece = z.subarray(pos, pos + 7);
        scratch.set(piece);
        outs.push(inf.inflate(scratch.subarray(0, piece.length)));
        scratch.fill(0xaa); // clobber: any kept reference to caller memory would now be wrong
    }
    assertBytes(concat(outs), data);
});

test('reset() between two streams', () => {
    const a = textLike(10_000, 1);
    const b = screenLike(50, 50);
    const inf = new Inflator();
    assertBytes(inf.inflate(compress(a)), a, 'first');
    inf.reset();
    assertBytes(inf.inflate(compress(b, { level: 1 })), b, 'second');
    // reset() in the middle of a stream (Tight's stream reset) drops window and partial input.
    const pieces = compressPieces(a, [5000, 5000], { level: 6 });
    inf.reset();
    inf.inflate(pieces[0].subarray(0, pieces[0].length - 3));
    inf.reset();
    assertBytes(inf.inflate(compress(b)), b, 'after mid-stream reset');
});

test('returned arrays are independent copies', () => {
    const data = repetitive(200);
    const pieces = compressPieces(concat([data, data]), [200, 200]);
    const inf = new Inflator();
    const first = inf.inflate(pieces[0]);
    const firstCopy = first.slice();
    inf.inflate(pieces[1]);
    assertBytes(first, firstCopy, 'first result unchanged by the next call');
});

test('truncated stream: partial output, no error, nothing more', () => {
    const data = textLike(30_000, 5);
    const z = compress(data, { level: 6 });
    const inf = new Inflator();
    const part = inf.inflate(z.subarray(0, z.length >> 1));
    assert.ok(part.length > 0 && part.length < data.length);
    assertBytes(part, data.subarray(0, part.length), 'prefix');
    assert.equal(inf.done, false);
});

test('trailing bytes after the end of the stream are ignored', () => {
    const data = textLike(1000);
    const z = concat([compress(data), new Uint8Array([1, 2, 3])]);
    const inf = new Inflator();
    assertBytes(inf.inflate(z), data);
    assert.equal(inf.inflate(new Uint8Array([9, 9])).length, 0);
});

// ------------------------------------------------------------------------------------------
// Corrupt input

function assertCorrupt(bytes, pattern, what) {
    assert.throws(() => new Inflator().inflate(bytes), (err) => {
        assert.ok(err instanceof InflateError, `${what}: ${err}`);
        if (pattern) assert.match(err.message, pattern, what);
        return true;
    }, what);
}

test('corrupt zlib headers', () => {
    assertCorrupt(new Uint8Array([0x79, 0x9c, 0, 0]), /deflate/, 'CM != 8');
    assertCorrupt(new Uint8Array([0x78, 0x9d, 0, 0]), /check/, 'FCHECK');
    assertCorrupt(new Uint8Array([0x88, 0x98, 0, 0]), /window/, 'CINFO > 7');
    assertCorrupt(new Uint8Array([0x78, 0xbb, 0, 0, 0, 0]), /dictionary/, 'FDICT');
});

test('corrupt blocks: type 3, stored length, too far back, bad symbols, bad tables', () => {
    assertCorrupt(withHeader(new BitWriter().bits(1, 1).bits(3, 2).done()), /block type/, 'BTYPE 3');
    assertCorrupt(withHeader([0x01, 0x05, 0x00, 0xfa, 0xfe, 1, 2, 3, 4, 5]), /stored/, 'NLEN');

    // Fixed block whose first symbol is a match: length 257 (code 0000001), distance code 0.
    const far = new BitWriter().bits(1, 1).bits(1, 2).code(1, 7).code(0, 5).done();
    assertCorrupt(withHeader(far), /too far/, 'distance before any output');
    // One literal 'a' (0x61 -> fixed code 0x30 + 0x61, 8 bits), then distance 2 (code 1).
    const far2 = new BitWriter().bits(1, 1).bits(1, 2).code(0x30 + 0x61, 8).code(1, 7).code(1, 5).done();
    assertCorrupt(withHeader(far2), /too far/, 'distance 2 after 1 byte');
    // Fixed literal/length symbol 286 (code 11000110) and distance symbol 30 (code 11110).
    assertCorrupt(withHeader(new BitWriter().bits(1, 1).bits(1, 2).code(0xc6, 8).done()), /length symbol/, 'sym 286');
    const d30 = new BitWriter().bits(1, 1).bits(1, 2).code(0x30 + 0x61, 8).code(1, 7).code(30, 5).done();
    assertCorrupt(withHeader(d30), /distance symbol/, 'dist 30');

    // Dynamic block with over-subscribed code-length code: four codes of length 1.
    const over = new BitWriter().bits(1, 1).bits(2, 2).bits(0, 5).bits(0, 5).bits(0, 4)
        .bits(1, 3).bits(1, 3).bits(1, 3).bits(1, 3).done();
    assertCorrupt(withHeader([...over, 0, 0, 0, 0]), /over-subscribed/, 'over-subscribed');
    // Dynamic block: HLIT 287 is beyond the alphabet.
    const many = new BitWriter().bits(1, 1).bits(2, 2).bits(30, 5).bits(0, 5).bits(0, 4).done();
    assertCorrupt(withHeader([...many, 0, 0, 0, 0]), /too many/, 'HLIT 287');
    // Dynamic block starting with repeat code 16: code-length code with only symbols 16 and 0.
    // HCLEN=4 -> lengths for 16,17,18,0: 1,0,0,1 -> symbol 0 = code 0, symbol 16 = code 1.
    const rep = new BitWriter().bits(1, 1).bits(2, 2).bits(0, 5).bits(0, 5).bits(0, 4)
        .bits(1, 3).bits(0, 3).bits(0, 3).bits(1, 3).code(1, 1).bits(0, 2).done();
    assertCorrupt(withHeader([...rep, 0, 0, 0, 0]), /no previous/, 'repeat first');
});

test('corrupt Adler-32 trailer', () => {
    const data = textLike(5000);
    const z = compress(data).slice();
    z[z.length - 1] ^= 1;
    assertCorrupt(z, /Adler/, 'flipped trailer bit');
    // Hand-made stored stream with a correct trailer is accepted.
    const body = [1, 3, 0, 0xfc, 0xff, 7, 8, 9];
    assertBytes(new Inflator().inflate(withHeader([...body, ...adler32([7, 8, 9])])), new Uint8Array([7, 8, 9]));
});

test('errors are sticky until reset()', () => {
    const inf = new Inflator();
    assert.throws(() => inf.inflate(new Uint8Array([0x79, 0x9c])), InflateError);
    assert.throws(() => inf.inflate(compress(textLike(100))), InflateError);
    inf.reset();
    assertBytes(inf.inflate(compress(textLike(100))), textLike(100));
});

test('fuzz: mutated streams throw InflateError or decode, never hang or crash', () => {
    const r = rng(777);
    const sources = [compress(textLike(4000, 3), { level: 9 }), compress(screenLike(40, 40), { level: 1 }),
        compress(textLike(2000), { strategy: 'Z_FIXED' }), compress(randomBytes(500), { level: 0 })];
    let errors = 0;
    for (let trial = 0; trial < 3000; trial++) {
        const z = sources[trial % sources.length].slice();
        const flips = 1 + (r() % 4);
        for (let k = 0; k < flips; k++) z[2 + (r() % (z.length - 2))] ^= 1 << (r() % 8);
        const inf = new Inflator();
        try {
            // Also through a split, so error detection works on the resume path too.
            const cut = r() % z.length;
            inf.inflate(z.subarray(0, cut));
            inf.inflate(z.subarray(cut));
        } catch (err) {
            if (!(err instanceof InflateError)) throw err;
            errors++;
        }
    }
    assert.ok(errors > 1000, `most mutations are detected (${errors}/3000)`);
});

test('Adler-32 word path: all-0xff bytes, pieces ending at every 4-byte alignment', () => {
    // 0xff everywhere gives the largest partial sums; pieces of 1..9 (+ 4 KiB) bytes make each call
    // start the checksum at a different alignment and hit the byte-wise head and tail.
    const data = new Uint8Array(70000).fill(255);
    for (let i = 0; i < data.length; i += 997) data[i] = i & 255;
    const sizes = [];
    for (let n = 0, k = 1; n < data.length; k = k % 9 + 1) {
        const size = Math.min(4096 + k, data.length - n);
        sizes.push(size);
        n += size;
    }
    const pieces = compressPieces(data, sizes, { level: 0, finish: true });
    const inf = new Inflator();
    const got = concat(pieces.map((p) => inf.inflate(p)));
    assertBytes(got, data);
    assert.equal(inf.done, true); // the trailer's Adler-32 matched
});

// ------------------------------------------------------------------------------------------
// Output limit: inflate(input, limit) refuses to produce more than limit bytes in that call

function assertOverLimit(fn, limit, what) {
    assert.throws(fn, (err) => {
        assert.ok(err instanceof InflateLimitError && err instanceof InflateError, `${what}: ${err}`);
        assert.equal(err.limit, limit, what);
        assert.match(err.message, new RegExp(`expands beyond ${limit} bytes`), what);
        return true;
    }, what);
}

test('limit: exactly the limit is returned, one byte less throws (stored, fixed, dynamic)', () => {
    const data = textLike(70_000, 11);   // > 64 KiB: two stored blocks at level 0
    for (const spec of [{ level: 0 }, { strategy: 'Z_FIXED' }, { level: 6 }, { level: 9, wbits: 9 }]) {
        const z = compress(data, spec);
        assertBytes(new Inflator().inflate(z, data.length), data, JSON.stringify(spec));
        for (const limit of [data.length - 1, data.length - 258, 1000, 1, 0]) {
            assertOverLimit(() => new Inflator().inflate(z, limit), limit, `${JSON.stringify(spec)} limit ${limit}`);
        }
        // The same, fed in small pieces: the limit is per call, so it is met piece by piece.
        const inf = new Inflator();
        let total = 0;
        for (let i = 0; i < z.length; i += 1000) total += inf.inflate(z.subarray(i, i + 1000), 300_000).length;
        assert.equal(total, data.length);
    }
});

test('limit: sync-flushed pieces, each limited to its own size', () => {
    const sizes = [5000, 1, 40_000, 0, 12_345];
    const data = screenLike(140, 105);
    const pieces = compressPieces(data.subarray(0, 57_346), sizes);
    for (const slack of [0, -1]) {
        const inf = new Inflator();
        let at = 0;
        for (let i = 0; i < pieces.length; i++) {
            const limit = sizes[i] + slack;
            if (slack < 0 && sizes[i] > 0) {
                assertOverLimit(() => inf.inflate(pieces[i], limit), limit, `piece ${i}`);
                assert.throws(() => inf.inflate(pieces[i + 1], 1e9), InflateLimitError, 'sticky until reset()');
                break;
            }
            assertBytes(inf.inflate(pieces[i], limit), data.subarray(at, at + sizes[i]), `piece ${i}`);
            at += sizes[i];
        }
    }
});

test('limit: the last literal before the end of the stream may not pass it either', () => {
    // A fixed block of the literals 'a' 'b' 'c' (codes 0x30 + byte, 8 bits) and end-of-block.
    const lit = (c) => [0x30 + c, 8];
    const body = new BitWriter().bits(1, 1).bits(1, 2).code(...lit(0x61)).code(...lit(0x62)).code(...lit(0x63))
        .code(0, 7).done();
    const z = withHeader([...body, ...adler32([0x61, 0x62, 0x63])]);
    // With bytes after it, the end-of-block code is read on the fast path; without, on the careful one.
    for (const stream of [z, concat([z, new Uint8Array(16)])]) {
        assertBytes(new Inflator().inflate(stream, 3), new Uint8Array([0x61, 0x62, 0x63]));
        assertOverLimit(() => new Inflator().inflate(stream, 2), 2, `three literals, limit 2, ${stream.length} bytes`);
    }
});

// 1 KiB of zlib that inflates to MiB of zeros (deflate's best ratio is ~1032:1).
function zlibBomb(mib) {
    return python(`import sys, zlib; sys.stdout.buffer.write(zlib.compress(bytes(${mib} << 20), 9))`, [], '');
}

test('limit: a zlib bomb (64 KB -> 64 MiB) stops at the limit, in bounded memory', () => {
    const bomb = zlibBomb(64);
    assert.ok(bomb.length < 70_000, `bomb is ${bomb.length} bytes`);
    const limit = 1 << 20;
    const inf = new Inflator();
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    assertOverLimit(() => inf.inflate(bomb, limit), limit, 'bomb');
    const ms = performance.now() - t0;
    const grown = process.memoryUsage().arrayBuffers - before;
    // Unbounded, the output buffer alone doubles past 64 MiB (and the result is another copy).
    assert.ok(grown < 4 * limit, `array buffers grew by ${(grown / 2 ** 20).toFixed(1)} MiB`);
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
    // Internal, but it is the point: the output buffer never grew past the limit plus one match.
    assert.ok(inf._out.length <= limit + 258, `output buffer ${inf._out.length} bytes`);
});

// ------------------------------------------------------------------------------------------
// Throughput (printed, not asserted: machines differ)

test('perf: inflate an 8 MB level-6 screen', async (t) => {
    const screen = screenLike(1920, 1080);
    const z = compress(screen, { level: 6 });
    const runs = 5;
    let best = Infinity;
    for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        const out = new Inflator().inflate(z);
        const ms = performance.now() - t0;
        if (i === 0) assertBytes(out, screen);
        best = Math.min(best, ms);
    }
    const mbps = screen.length / 1e6 / (best / 1000);
    let ref = '';
    try {
        const { inflateSync } = await import('node:zlib');
        const t0 = performance.now();
        inflateSync(z);
        ref = `; node:zlib (native) ${(screen.length / 1e6 / ((performance.now() - t0) / 1000)).toFixed(0)} MB/s`;
    } catch {
        // node:zlib is only a reference point
    }
    t.diagnostic(`inflate: ${(screen.length / 1e6).toFixed(1)} MB from ${(z.length / 1e3).toFixed(0)} KB in ` +
        `${best.toFixed(1)} ms = ${mbps.toFixed(0)} MB/s (best of ${runs})${ref}`);
});
