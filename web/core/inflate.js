// inflate.js — streaming zlib decompressor (RFC 1950 wrapper around RFC 1951 DEFLATE).
//
// Needs: nothing (pure ES module, typed arrays only; imports in Node 20 and browsers).
//
// Why it exists: the VNC Zlib, ZRLE and Tight encodings send ONE zlib stream per connection
// (per Tight sub-stream) and cut it into pieces with Z_SYNC_FLUSH. Each piece must be decoded as it
// arrives, so the inflater keeps everything between calls: the 32 KiB window, the bit buffer, the
// current block's Huffman tables and its position inside a stored block. A piece may also end in the
// middle of a code or of a block header; see "Resuming" below.
//
// Resuming: instead of a bit-level state machine, decoding works in small all-or-nothing steps
// (one literal/length+distance symbol, one block header including its code-length tables, one
// stored-block chunk, the trailer). Before a step the (input position, bit buffer) pair is saved;
// if the input runs out inside the step it is restored and the unconsumed bytes are kept for the
// next call. A step is at most ~300 bytes (a dynamic block header), so retrying is cheap and the
// total work stays linear even when fed one byte at a time.
//
// Speed: Huffman codes are decoded with a two-level lookup table (LIT_ROOT / DIST_ROOT bits first,
// then a sub-table for longer codes), output goes into one growable Uint8Array that also holds the
// window, and nothing is allocated per byte or per symbol. The symbol loop has a fast path with no
// checkpoints while enough input is left; its table entries carry a match's base and extra-bit
// count (one test tells a literal, no per-symbol range checks), and its bit buffer stays an int32.
// Short matches are copied inline, long ones natively (copyWithin/fill, doubling the repeated
// part when the match overlaps itself). Adler-32 reads 32-bit words on little-endian hosts.
//
//   const inf = new Inflator();
//   const out = inf.inflate(bytes);   // every byte producible from the input so far (a copy)
//   inf.inflate(bytes, limit);        // the same, but more than `limit` bytes of output from
//                                     // this call throws InflateLimitError
//   inf.reset();                      // start a new stream (expects a zlib header again)
//
// Output limit: deflate expands up to ~1032:1, so 1 MB from a server can ask for 1 GB. A caller
// that knows how much it can use passes that; decoding stops as soon as the output passes it,
// and the buffer never grows past it (plus one match of headroom) -- bounded time and memory.
//
// Corrupt data throws InflateError; after that the Inflator keeps throwing until reset().
// Bytes after the end of the stream (after the Adler-32 trailer) are ignored.

export class InflateError extends Error {
    constructor(message) {
        super(message);
        this.name = 'InflateError';
    }
}

// The data would inflate to more than the caller's limit (a zlib bomb, or simply the wrong data).
export class InflateLimitError extends InflateError {
    constructor(limit) {
        super(`zlib data expands beyond ${limit} bytes`);
        this.name = 'InflateLimitError';
        this.limit = limit;
    }
}

// ---------------------------------------------------------------------------------------------
// Constants (RFC 1951 §3.2.5, §3.2.7)

const WINDOW_SIZE = 32768; // largest distance a DEFLATE match may reach back
const MAX_MATCH = 258; // longest match; the output buffer keeps this much headroom per symbol
const MAX_BITS = 15; // longest Huffman code

// Root sizes of the two-level tables: big enough that almost every code resolves in one lookup,
// small enough that building a table per dynamic block (every few tens of KB) stays cheap.
const LIT_ROOT = 10;
const DIST_ROOT = 8;
const CLEN_ROOT = 7; // code-length codes are at most 7 bits: one level

const LEN_BASE = new Uint16Array([
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
    35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
]);
const LEN_EXTRA = new Uint8Array([
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
    3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
]);
const DIST_BASE = new Uint16Array([
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
    257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
]);
const DIST_EXTRA = new Uint8Array([
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
    7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
]);
// Order in which the code-length code lengths are sent (§3.2.7).
const CLEN_ORDER = new Uint8Array([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]);

// ---------------------------------------------------------------------------------------------
// Huffman lookup tables
//
// A table is an Int32Array. Index it with the next `root` bits of the stream (DEFLATE packs
// Huffman codes most-significant-bit first into an LSB-first bit stream, so entries are stored
// at bit-reversed code positions). Entry layout:
//   bits 0-3   number of bits the entry needs (leaf: whole code length; pointer: sub-table bits;
//              invalid: how many bits prove the code is invalid)
//   bit 4      SUB: pointer to a sub-table at offset (entry >>> 16), indexed by the bits after root
//   bit 5      INVALID: no code has this prefix (incomplete code) -> corrupt data
//   bit 6      MATCH: a length (literal/length table) or distance leaf, already decoded:
//              bits 8-11 hold its extra-bit count and bits 16-31 its base value
//   bit 7      END: the end-of-block symbol 256
//   bit 12     BAD_SYMBOL (with INVALID): a code of the fixed table that names no symbol
//              (286/287, distances 30/31)
//   bits 16-31 the symbol (literal or code-length leaf), base (MATCH) or sub-table offset (pointer)
// So a literal is exactly a leaf with bits 4-7 clear, and the hot loop needs one test for it and
// no separate base/extra/range lookups for matches.

const SUB = 16;
const INVALID = 32;
const MATCH = 64;
const END = 128;
const FLAGS = SUB | INVALID | MATCH | END;
const BAD_SYMBOL = 4096;

function reverseBits(code, len) {
    let r = 0;
    for (let i = 0; i < len; i++) {
        r = (r << 1) | (code & 1);
        code >>>= 1;
    }
    return r;
}

// Returns { table, root } for code lengths lengths[start .. start+count); a leaf for symbol sym
// is info[sym] | code length.
function buildTable(lengths, start, count, maxRoot, info) {
    const blCount = new Uint16Array(MAX_BITS + 1);
    for (let i = 0; i < count; i++) blCount[lengths[start + i]]++;
    blCount[0] = 0;

    let maxLen = 0;
    let left = 1;
    for (let len = 1; len <= MAX_BITS; len++) {
        left = (left << 1) - blCount[len];
        // Over-subscribed: more codes than the bit lengths can hold; no valid encoder sends this.
        if (left < 0) throw new InflateError('invalid Huffman code lengths (over-subscribed)');
        if (blCount[len]) maxLen = len;
    }
    // Incomplete codes are accepted (the spec allows e.g. a single distance code); their unused
    // entries are marked INVALID and fail only if the data actually uses them.

    const root = Math.max(1, Math.min(maxRoot, maxLen));
    const rootMask = (1 << root) - 1;

    // Canonical codes (§3.2.2).
    const nextCode = new Uint16Array(MAX_BITS + 2);
    let code = 0;
    for (let len = 1; len <= MAX_BITS; len++) {
        code = (code + blCount[len - 1]) << 1;
        nextCode[len] = code;
    }
    const codes = new Int32Array(count); // bit-reversed code per symbol
    for (let i = 0; i < count; i++) {
        const len = lengths[start + i];
        if (len) codes[i] = reverseBits(nextCode[len]++, len);
    }

    // Size of each sub-table: the longest code sharing that root prefix decides it.
    let subBits = null;
    let size = 1 << root;
    if (maxLen > root) {
        subBits = new Uint8Array(1 << root);
        for (let i = 0; i < count; i++) {
            const len = lengths[start + i];
            if (len > root) {
                const p = codes[i] & rootMask;
                if (len - root > subBits[p]) subBits[p] = len - root;
            }
        }
        for (let p = 0; p <= rootMask; p++) if (subBits[p]) size += 1 << subBits[p];
    }

    const table = new Int32Array(size);
    table.fill(INVALID | root, 0, 1 << root);
    if (subBits) {
        let offset = 1 << root;
        for (let p = 0; p <= rootMask; p++) {
            const s = subBits[p];
            if (!s) continue;
            table[p] = (offset << 16) | SUB | s;
            table.fill(INVALID | (root + s), offset, offset + (1 << s));
            offset += 1 << s;
        }
    }

    for (let sym = 0; sym < count; sym++) {
        const len = lengths[start + sym];
        if (!len) continue;
        const rev = codes[sym];
        const entry = info[sym] | len;
        if (len <= root) {
            for (let i = rev; i <= rootMask; i += 1 << len) table[i] = entry;
        } else {
            const ptr = table[rev & rootMask];
            const base = ptr >>> 16;
            const s = ptr & 15;
            for (let i = rev >>> root; i < 1 << s; i += 1 << (len - root)) table[base + i] = entry;
        }
    }
    return { table, root };
}

// Leaf payloads (see the entry layout above) per symbol of each alphabet.
const LIT_INFO = new Int32Array(288);
for (let sym = 0; sym < 256; sym++) LIT_INFO[sym] = sym << 16;
LIT_INFO[256] = END;
for (let i = 0; i < 29; i++) LIT_INFO[257 + i] = (LEN_BASE[i] << 16) | (LEN_EXTRA[i] << 8) | MATCH;
LIT_INFO[286] = LIT_INFO[287] = INVALID | BAD_SYMBOL;
const DIST_INFO = new Int32Array(32);
for (let i = 0; i < 30; i++) DIST_INFO[i] = (DIST_BASE[i] << 16) | (DIST_EXTRA[i] << 8) | MATCH;
DIST_INFO[30] = DIST_INFO[31] = INVALID | BAD_SYMBOL;
const CLEN_INFO = new Int32Array(19);
for (let sym = 0; sym < 19; sym++) CLEN_INFO[sym] = sym << 16;

// The fixed code of BTYPE 01 (§3.2.6), built once. Symbols 286/287 and distances 30/31 are in
// the table (the code is complete) but rejected when decoded.
const FIXED_LIT = (() => {
    const l = new Uint8Array(288);
    l.fill(8, 0, 144);
    l.fill(9, 144, 256);
    l.fill(7, 256, 280);
    l.fill(8, 280, 288);
    return buildTable(l, 0, 288, LIT_ROOT, LIT_INFO);
})();
const FIXED_DIST = buildTable(new Uint8Array(32).fill(5), 0, 32, DIST_ROOT, DIST_INFO);

// ---------------------------------------------------------------------------------------------
// Adler-32 (RFC 1950 §9). Chunks of 3800 bytes keep both sums below 2^31, so the arithmetic
// stays in small integers. The inner loop takes 8 bytes per step (b gains 8*a plus the weighted
// bytes), which roughly halves the time of the plain a += x; b += a chain on large updates.

const ADLER_BASE = 65521;
const ADLER_CHUNK = 3800;

function adler32Bytes(adler, buf, start, end) {
    let a = adler & 0xffff;
    let b = adler >>> 16;
    while (start < end) {
        const stop = Math.min(start + ADLER_CHUNK, end);
        for (const stop8 = stop - 7; start < stop8; start += 8) {
            const x0 = buf[start], x1 = buf[start + 1], x2 = buf[start + 2], x3 = buf[start + 3];
            const x4 = buf[start + 4], x5 = buf[start + 5], x6 = buf[start + 6], x7 = buf[start + 7];
            b += 8 * a + 8 * x0 + 7 * x1 + 6 * x2 + 5 * x3 + 4 * x4 + 3 * x5 + 2 * x6 + x7;
            a += x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
        }
        for (; start < stop; start++) {
            a += buf[start];
            b += a;
        }
        a %= ADLER_BASE;
        b %= ADLER_BASE;
    }
    return ((b << 16) | a) >>> 0;
}

// Word-at-a-time variant for little-endian hosts (all browsers in practice): one 32-bit load per
// 4 bytes. Over a run of n bytes x[0..n), a gains S = sum x[i] and b gains n*a + n*S - T with
// T = sum i*x[i]. Runs of ADLER_WORDS words keep every term below 2^31 (T < 255 * 1024^2 / 2).
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const ADLER_WORDS = 256;

export function adler32(adler, buf, start, end) {
    if (!LITTLE_ENDIAN || end - start < 64) return adler32Bytes(adler, buf, start, end);
    const head = (4 - ((buf.byteOffset + start) & 3)) & 3;
    adler = adler32Bytes(adler, buf, start, start + head);
    start += head;
    const words = (end - start) >>> 2;
    const w32 = new Uint32Array(buf.buffer, buf.byteOffset + start, words);
    let a = adler & 0xffff;
    let b = adler >>> 16;
    for (let i = 0; i < words;) {
        const stop = Math.min(i + ADLER_WORDS, words);
        const n = (stop - i) * 4;
        let sum = 0;
        let weighted = 0;
        for (let k = 0; i < stop; i++, k += 4) {
            const w = w32[i];
            const x1 = (w >>> 8) & 255, x2 = (w >>> 16) & 255, x3 = w >>> 24;
            const s = (w & 255) + x1 + x2 + x3;
            sum += s;
            weighted += k * s + x1 + 2 * x2 + 3 * x3;
        }
        b = (b + n * a + n * sum - weighted) % ADLER_BASE;
        a = (a + sum) % ADLER_BASE;
    }
    start += words * 4;
    return adler32Bytes(((b << 16) | a) >>> 0, buf, start, end);
}

// ---------------------------------------------------------------------------------------------
// The inflater

const S_HEADER = 0; // zlib CMF/FLG
const S_BLOCK = 1; // next block header
const S_STORED = 2; // inside a stored block
const S_CODES = 3; // inside a Huffman block
const S_TRAILER = 4; // Adler-32
const S_DONE = 5; // stream ended; later bytes ignored
const S_ERROR = 6; // corrupt data seen; keep throwing until reset()

const OUT_INITIAL = 1 << 16;
// The most output one call may produce, limit or not (2^30 - 1: far past any VNC rectangle, and it
// keeps the output limit a small integer, which the hot loop compares faster than a double).
const NO_LIMIT = 0x3fffffff;

// The fast loop of _codes() runs while this much input is left: one symbol reads at most
// 2 (literal/length code) + 1 (length extra) + 2 (distance code) + 2 (distance extra) bytes.
const FAST_INPUT = 8;

// Copies a len-byte match from dist bytes back. When dist < len the source overlaps the
// destination and the last dist bytes repeat; once a whole number of periods is in place,
// the copied part can be copied again, doubling each time, with native copies.
function copyMatch(out, to, dist, len) {
    let from = to - dist;
    if (len <= 16) {
        for (const end = to + len; to < end;) out[to++] = out[from++];
        return;
    }
    if (dist >= len) {
        out.copyWithin(to, from, from + len);
        return;
    }
    if (dist === 1) {
        out.fill(out[from], to, to + len);
        return;
    }
    let done;
    if (dist >= 16) {
        out.copyWithin(to, from, to);
        done = dist;
    } else {
        done = Math.min(len, dist * Math.ceil(16 / dist));   // whole periods byte by byte, <= 30 bytes
        for (let i = 0; i < done; i++) out[to + i] = out[from + i];
    }
    while (done < len) {
        const k = Math.min(done, len - done);
        out.copyWithin(to + done, to, to + k);
        done += k;
    }
}

// Thrown internally when a step runs out of input; never escapes inflate().
const NEED_INPUT = Symbol('need input');

export class Inflator {
    constructor() {
        this._out = new Uint8Array(WINDOW_SIZE + OUT_INITIAL);
        this._lengths = new Uint8Array(286 + 30); // code lengths of one dynamic block
        // The bit buffer and the Adler-32 sum are uint32 and often >= 2^31, which is not a small
        // integer to V8. Starting them as non-integers fixes their field type (double) from the first
        // store, so every Inflator keeps one object shape; otherwise the shape changes the first time
        // a big value is stored and the hot loop keeps deoptimising on "wrong map".
        this._bitbuf = 0.5;
        this._adler = 0.5;
        this.reset();
    }

    reset() {
        this._state = S_HEADER;
        this._error = null;
        this._final = false; // current block is the last one
        this._storedLeft = 0;
        this._lit = null;
        this._dist = null;
        this._bitbuf = 0;
        this._bitcnt = 0;
        this._pending = null; // unconsumed input bytes from the previous call
        this._in = null;
        this._pos = 0;
        this._outPos = 0; // end of data in _out; everything before it is history (window) or new output
        this._outMax = NO_LIMIT; // _outPos may not pass this in the current call (its output limit)
        this._limit = NO_LIMIT;
        this._adler = 1;
        this._adlerPos = 0; // output before this index is already in _adler
    }

    // True once the whole zlib stream, trailer included, has been read.
    get done() {
        return this._state === S_DONE;
    }

    // limit: at most this many bytes of output from this call (see "Output limit" above).
    inflate(input, limit = Infinity) {
        if (this._state === S_ERROR) throw this._error;
        if (!(input instanceof Uint8Array)) throw new TypeError('inflate() needs a Uint8Array');

        let data = input;
        if (this._pending) {
            data = new Uint8Array(this._pending.length + input.length);
            data.set(this._pending, 0);
            data.set(input, this._pending.length);
            this._pending = null;
        }
        this._in = data;
        this._pos = 0;
        const outStart = this._outPos;
        const most = NO_LIMIT - outStart;
        this._limit = limit < most ? limit : most;
        this._outMax = outStart + this._limit;

        try {
            this._run();
            // The last symbol of a block may have passed the limit with nothing decoded after it.
            if (this._outPos > this._outMax) throw new InflateLimitError(this._limit);
        } catch (err) {
            if (!(err instanceof InflateError)) throw err;
            this._state = S_ERROR;
            this._error = err;
            this._in = null;
            throw err;
        }

        if (this._pos < data.length && this._state !== S_DONE) {
            this._pending = data.slice(this._pos); // a copy: the caller may reuse its buffer
        }
        this._in = null;

        const end = this._outPos;
        this._adler = adler32(this._adler, this._out, this._adlerPos, end);
        const result = this._out.slice(outStart, end);

        // Keep only the window for the next call.
        const keep = Math.min(end, WINDOW_SIZE);
        if (end > keep) this._out.copyWithin(0, end - keep, end);
        this._outPos = keep;
        this._adlerPos = keep;
        return result;
    }

    _run() {
        for (;;) {
            switch (this._state) {
                case S_HEADER:
                    if (!this._header()) return;
                    break;
                case S_BLOCK:
                    if (!this._blockHeader()) return;
                    break;
                case S_STORED:
                    if (!this._stored()) return;
                    break;
                case S_CODES:
                    if (!this._codes()) return;
                    break;
                case S_TRAILER:
                    if (!this._trailer()) return;
                    break;
                case S_DONE:
                    this._pos = this._in.length;
                    return;
                default:
                    throw new Error('unreachable inflate state');
            }
        }
    }

    // --- bit reading for the non-hot steps (headers, trailer). The hot loop inlines its own. ---

    // Reads n <= 16 bits, or throws NEED_INPUT (the caller restores its checkpoint).
    _bits(n) {
        let bitbuf = this._bitbuf;
        let bitcnt = this._bitcnt;
        const input = this._in;
        while (bitcnt < n) {
            if (this._pos >= input.length) {
                this._bitbuf = bitbuf;
                this._bitcnt = bitcnt;
                throw NEED_INPUT;
            }
            bitbuf |= input[this._pos++] << bitcnt;
            bitcnt += 8;
        }
        this._bitbuf = bitbuf >>> n;
        this._bitcnt = bitcnt - n;
        return bitbuf & ((1 << n) - 1);
    }

    _alignToByte() {
        const drop = this._bitcnt & 7;
        this._bitbuf >>>= drop;
        this._bitcnt -= drop;
    }

    // Decodes one symbol from a table; used for the code-length code only.
    _symbol(t) {
        const table = t.table;
        const root = t.root;
        const input = this._in;
        let bitbuf = this._bitbuf;
        let bitcnt = this._bitcnt;
        for (;;) {
            let e = table[bitbuf & ((1 << root) - 1)];
            if (e & SUB) e = table[(e >>> 16) + ((bitbuf >>> root) & ((1 << (e & 15)) - 1))];
            const n = e & 15;
            if (n <= bitcnt) {
                if (e & INVALID) throw new InflateError('invalid Huffman code');
                this._bitbuf = bitbuf >>> n;
                this._bitcnt = bitcnt - n;
                return e >>> 16;
            }
            if (this._pos >= input.length) throw NEED_INPUT;
            bitbuf |= input[this._pos++] << bitcnt;
            bitcnt += 8;
        }
    }

    // Runs step() as an all-or-nothing unit: on NEED_INPUT, rewind and report false.
    _step(step) {
        const pos = this._pos;
        const bitbuf = this._bitbuf;
        const bitcnt = this._bitcnt;
        try {
            step.call(this);
            return true;
        } catch (err) {
            if (err !== NEED_INPUT) throw err;
            this._pos = pos;
            this._bitbuf = bitbuf;
            this._bitcnt = bitcnt;
            return false;
        }
    }

    // --- steps ---

    _header() {
        return this._step(function () {
            const cmf = this._bits(8);
            const flg = this._bits(8);
            if ((cmf & 15) !== 8) throw new InflateError('not a zlib stream (compression method is not deflate)');
            if (cmf >>> 4 > 7) throw new InflateError('invalid zlib window size');
            if (((cmf << 8) | flg) % 31 !== 0) throw new InflateError('bad zlib header check bits');
            // A preset dictionary is never used by VNC servers and we would not have it.
            if (flg & 0x20) throw new InflateError('zlib preset dictionary not supported');
            this._state = S_BLOCK;
        });
    }

    _blockHeader() {
        return this._step(function () {
            const final = this._bits(1);
            const type = this._bits(2);
            if (type === 0) {
                this._alignToByte();
                const len = this._bits(16);
                const nlen = this._bits(16);
                if ((len ^ 0xffff) !== nlen) throw new InflateError('stored block length check failed');
                this._storedLeft = len;
                this._state = S_STORED;
            } else if (type === 1) {
                this._lit = FIXED_LIT;
                this._dist = FIXED_DIST;
                this._state = S_CODES;
            } else if (type === 2) {
                this._dynamicTables();
                this._state = S_CODES;
            } else {
                throw new InflateError('invalid block type 3');
            }
            this._final = final === 1;
        });
    }

    _dynamicTables() {
        const hlit = this._bits(5) + 257;
        const hdist = this._bits(5) + 1;
        const hclen = this._bits(4) + 4;
        // 286/30 are the alphabet sizes; larger counts only name symbols that do not exist.
        if (hlit > 286 || hdist > 30) throw new InflateError('too many length or distance codes');

        const clen = new Uint8Array(19);
        for (let i = 0; i < hclen; i++) clen[CLEN_ORDER[i]] = this._bits(3);
        const clTable = buildTable(clen, 0, 19, CLEN_ROOT, CLEN_INFO);

        const lengths = this._lengths;
        const total = hlit + hdist;
        let i = 0;
        while (i < total) {
            const sym = this._symbol(clTable);
            if (sym < 16) {
                lengths[i++] = sym;
                continue;
            }
            let value = 0;
            let repeat;
            if (sym === 16) {
                if (i === 0) throw new InflateError('repeat code with no previous length');
                value = lengths[i - 1];
                repeat = 3 + this._bits(2);
            } else if (sym === 17) {
                repeat = 3 + this._bits(3);
            } else {
                repeat = 11 + this._bits(7);
            }
            // Repeats may cross from literal/length into distance lengths (§3.2.7) but not past the end.
            if (i + repeat > total) throw new InflateError('code length repeat past the end');
            lengths.fill(value, i, i + repeat);
            i += repeat;
        }
        if (lengths[256] === 0) throw new InflateError('no end-of-block code');
        this._lit = buildTable(lengths, 0, hlit, LIT_ROOT, LIT_INFO);
        this._dist = buildTable(lengths, hlit, hdist, DIST_ROOT, DIST_INFO);
    }

    _stored() {
        // No limit check here: stored bytes are no bigger than the input that brings them, and
        // inflate() checks the total once this call's input is used up.
        let left = this._storedLeft;
        this._ensure(left);
        const out = this._out;
        // Whole bytes may already sit in the bit buffer (the header read ahead); they come first.
        while (left > 0 && this._bitcnt >= 8) {
            out[this._outPos++] = this._bitbuf & 255;
            this._bitbuf >>>= 8;
            this._bitcnt -= 8;
            left--;
        }
        const input = this._in;
        const n = Math.min(left, input.length - this._pos);
        out.set(input.subarray(this._pos, this._pos + n), this._outPos);
        this._pos += n;
        this._outPos += n;
        left -= n;
        this._storedLeft = left;
        if (left > 0) return false;
        this._endBlock();
        return true;
    }

    _endBlock() {
        this._state = this._final ? S_TRAILER : S_BLOCK;
        this._lit = null;
        this._dist = null;
    }

    _trailer() {
        return this._step(function () {
            this._alignToByte();
            let want = 0;
            for (let i = 0; i < 4; i++) want = (want << 8) | this._bits(8);
            want >>>= 0;
            this._adler = adler32(this._adler, this._out, this._adlerPos, this._outPos);
            this._adlerPos = this._outPos;
            if (want !== this._adler) throw new InflateError('Adler-32 checksum mismatch');
            this._state = S_DONE;
        });
    }

    // Makes room for n more output bytes (doubling, so growth is amortised O(1) per byte), but
    // not past the call's output limit plus one match of headroom.
    _ensure(n) {
        const need = this._outPos + n;
        if (need <= this._out.length) return;
        let size = this._out.length * 2;
        while (size < need) size *= 2;
        size = Math.max(need, Math.min(size, this._outMax + MAX_MATCH));
        const bigger = new Uint8Array(size);
        bigger.set(this._out.subarray(0, this._outPos));
        this._out = bigger;
    }

    // The hot loop: decode literal/length/distance symbols until end of block (true) or until the
    // input runs out (false, position rewound to the start of the unfinished symbol).
    // Everything lives in locals and is written back on every exit.
    // Two loops: a fast one while FAST_INPUT bytes of input and MAX_MATCH bytes of output room
    // are left (no symbol can run short, so no checkpoint and no "enough bits?" tests), and the
    // careful one below it for the last few bytes of each piece. outLimit is also at most the
    // output limit, so the fast loop stops within one symbol past it and the careful one throws.
    _codes() {
        const input = this._in;
        const inLen = input.length;
        const litTable = this._lit.table;
        const litRoot = this._lit.root;
        const litMask = (1 << litRoot) - 1;
        const distTable = this._dist.table;
        const distRoot = this._dist.root;
        const distMask = (1 << distRoot) - 1;

        let out = this._out;
        // The limit is read from this._outMax where needed, not held in a local: the fast loop
        // already keeps every register busy.
        let outLimit = Math.min(out.length - MAX_MATCH, this._outMax);
        let outPos = this._outPos;
        let pos = this._pos;
        // The bit buffer is kept an int32 throughout: every shift is written (bitbuf >>> n) | 0.
        // A bare >>> yields a uint32, and a variable that is sometimes int32 (after |=) and
        // sometimes uint32 is held as a double by V8, which made every table index a conversion.
        let bitbuf = this._bitbuf | 0;
        let bitcnt = this._bitcnt;
        let ended = false;
        let error = null;
        const fastEnd = inLen - FAST_INPUT;

        symbols: for (;;) {
            while (pos < fastEnd && outPos <= outLimit) {
                // >= 15 bits for any code. Refills happen only below 15 bits and shift bytes by at
                // most 22, so the buffer never goes past 31 bits here.
                if (bitcnt < 15) {
                    bitbuf |= (input[pos] | (input[pos + 1] << 8)) << bitcnt;
                    pos += 2;
                    bitcnt += 16;
                }
                let e = litTable[bitbuf & litMask];
                if (e & SUB) e = litTable[(e >>> 16) + ((bitbuf >>> litRoot) & ((1 << (e & 15)) - 1))];
                let n = e & 15;
                bitbuf = (bitbuf >>> n) | 0;
                bitcnt -= n;
                if ((e & FLAGS) === 0) {
                    out[outPos++] = e >>> 16;
                    continue;
                }
                if (!(e & MATCH)) {
                    if (e & END) ended = true;
                    else error = e & BAD_SYMBOL ? 'invalid length symbol' : 'invalid literal/length code';
                    break symbols;
                }
                n = (e >>> 8) & 15;
                if (bitcnt < n) {
                    bitbuf |= input[pos++] << bitcnt;
                    bitcnt += 8;
                }
                const len = (e >>> 16) + (bitbuf & ((1 << n) - 1));
                bitbuf = (bitbuf >>> n) | 0;
                bitcnt -= n;
                if (bitcnt < 15) {
                    bitbuf |= (input[pos] | (input[pos + 1] << 8)) << bitcnt;
                    pos += 2;
                    bitcnt += 16;
                }
                e = distTable[bitbuf & distMask];
                if (e & SUB) e = distTable[(e >>> 16) + ((bitbuf >>> distRoot) & ((1 << (e & 15)) - 1))];
                if (!(e & MATCH)) {
                    error = e & BAD_SYMBOL ? 'invalid distance symbol' : 'invalid distance code';
                    break symbols;
                }
                n = e & 15;
                bitbuf = (bitbuf >>> n) | 0;
                bitcnt -= n;
                n = (e >>> 8) & 15;
                if (bitcnt < n) {
                    bitbuf |= input[pos++] << bitcnt;
                    bitcnt += 8;
                    if (bitcnt < n) {
                        bitbuf |= input[pos++] << bitcnt;
                        bitcnt += 8;
                    }
                }
                const dist = (e >>> 16) + (bitbuf & ((1 << n) - 1));
                bitbuf = (bitbuf >>> n) | 0;
                bitcnt -= n;
                if (dist > outPos) { error = 'distance too far back'; break symbols; }
                // Short matches inline (most of them in screen data); copyMatch for the rest.
                if (len <= 16) {
                    let from = outPos - dist;
                    for (const end = outPos + len; outPos < end;) out[outPos++] = out[from++];
                } else {
                    copyMatch(out, outPos, dist, len);
                    outPos += len;
                }
            }

            // Checkpoint: a symbol with its extra bits and distance is decoded whole or not at all.
            const savePos = pos;
            const saveBuf = bitbuf;
            const saveCnt = bitcnt;

            if (outPos > outLimit) {
                if (outPos > this._outMax) throw new InflateLimitError(this._limit);
                this._outPos = outPos;
                this._ensure(MAX_MATCH);
                out = this._out;
                outLimit = Math.min(out.length - MAX_MATCH, this._outMax);
            }

            // Up to 32 bits in the buffer; byte << 24 may set the sign bit, hence >>> below.
            while (bitcnt <= 24 && pos < inLen) {
                bitbuf |= input[pos++] << bitcnt;
                bitcnt += 8;
            }

            let e = litTable[bitbuf & litMask];
            if (e & SUB) e = litTable[(e >>> 16) + ((bitbuf >>> litRoot) & ((1 << (e & 15)) - 1))];
            let n = e & 15;
            if (n > bitcnt) {
                pos = savePos; bitbuf = saveBuf; bitcnt = saveCnt;
                break;
            }
            if (e & INVALID) {
                error = e & BAD_SYMBOL ? 'invalid length symbol' : 'invalid literal/length code';
                break;
            }
            bitbuf = (bitbuf >>> n) | 0;
            bitcnt -= n;

            if ((e & FLAGS) === 0) {
                out[outPos++] = e >>> 16;
                continue;
            }
            if (e & END) {
                ended = true;
                break;
            }

            // Length: at most 15 + 5 bits so far, always within the >= 25 bits refilled above,
            // unless the input ran short.
            n = (e >>> 8) & 15;
            if (n > bitcnt) {
                pos = savePos; bitbuf = saveBuf; bitcnt = saveCnt;
                break;
            }
            const len = (e >>> 16) + (bitbuf & ((1 << n) - 1));
            bitbuf = (bitbuf >>> n) | 0;
            bitcnt -= n;

            while (bitcnt <= 24 && pos < inLen) {
                bitbuf |= input[pos++] << bitcnt;
                bitcnt += 8;
            }
            e = distTable[bitbuf & distMask];
            if (e & SUB) e = distTable[(e >>> 16) + ((bitbuf >>> distRoot) & ((1 << (e & 15)) - 1))];
            n = e & 15;
            if (n > bitcnt) {
                pos = savePos; bitbuf = saveBuf; bitcnt = saveCnt;
                break;
            }
            if (e & INVALID) {
                error = e & BAD_SYMBOL ? 'invalid distance symbol' : 'invalid distance code';
                break;
            }
            bitbuf = (bitbuf >>> n) | 0;
            bitcnt -= n;

            n = (e >>> 8) & 15;
            if (n > bitcnt) {
                while (bitcnt <= 24 && pos < inLen) {
                    bitbuf |= input[pos++] << bitcnt;
                    bitcnt += 8;
                }
                if (n > bitcnt) {
                    pos = savePos; bitbuf = saveBuf; bitcnt = saveCnt;
                    break;
                }
            }
            const dist = (e >>> 16) + (bitbuf & ((1 << n) - 1));
            bitbuf = (bitbuf >>> n) | 0;
            bitcnt -= n;

            // _out holds exactly the retained history (<= 32 KiB) plus this call's output.
            if (dist > outPos) { error = 'distance too far back'; break; }
            copyMatch(out, outPos, dist, len);
            outPos += len;
        }

        this._outPos = outPos;
        this._pos = pos;
        this._bitbuf = bitbuf;
        this._bitcnt = bitcnt;
        if (error) throw new InflateError(error);
        if (ended) this._endBlock();
        return ended;
    }
}
