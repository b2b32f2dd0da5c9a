// web/core/decoders/jpeg.js — JPEG encoding (21) (rfbproto "JPEG Encoding"): the
// rectangle is one JPEG file with no length in front, so its end is found by
// walking the JPEG segments to the EOI marker. A JPEG may leave out its
// quantisation (DQT) and Huffman (DHT) tables, meaning "the previous ones": the
// decoder keeps the last tables it saw and puts them back into such a JPEG, so
// the browser's decoder gets a whole file.
// Needs: ./common.js.
//
// Nothing is consumed until the EOI is buffered; the scan resumes where it
// stopped when more bytes arrive (offsets stay valid: the queue only grows).

import { DecodeError } from './common.js';

const MARKER = 0xff;
const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const DQT = 0xdb;
const DHT = 0xc4;
const RST0 = 0xd0;
const RST7 = 0xd7;
const TEM = 0x01;
// A full-screen JPEG is a few MiB at the most; a stream without an EOI this long
// is not a JPEG, and would otherwise be buffered forever.
export const MAX_JPEG_BYTES = 64 * 1024 * 1024;

function standalone(m) {
    return m === TEM || (m >= RST0 && m <= RST7);
}

export class JPEGDecoder {
    constructor() {
        this._scan = null;          // { pos, entropy, tables: [{marker, start, end}] }
        this._tables = new Map();   // DQT/DHT marker -> [segment bytes] from the last JPEG that had them
    }

    decode(rect, queue, display) {
        const scan = (this._scan ??= { pos: 0, entropy: false, tables: [] });
        const length = scanJpeg(queue, scan);
        if (!length) {
            if (queue.length > MAX_JPEG_BYTES) throw new DecodeError(`JPEG rectangle: no end marker in ${MAX_JPEG_BYTES} bytes`);
            return false;
        }
        this._scan = null;
        const data = queue.bytes(length);
        const image = this._withTables(data, scan.tables);
        if (rect.width > 0 && rect.height > 0) display.imageRect(rect.x, rect.y, rect.width, rect.height, 'image/jpeg', image);
        return true;
    }

    // The JPEG with the remembered tables inserted after SOI where it has none of a kind.
    _withTables(data, segments) {
        const missing = [];
        for (const marker of [DQT, DHT]) {
            const own = segments.filter((s) => s.marker === marker).map((s) => data.slice(s.start, s.end));
            if (own.length) this._tables.set(marker, own);
            else if (this._tables.has(marker)) missing.push(...this._tables.get(marker));
        }
        if (!missing.length) return data;
        const out = new Uint8Array(data.length + missing.reduce((n, s) => n + s.length, 0));
        out.set(data.subarray(0, 2), 0);
        let o = 2;
        for (const s of missing) {
            out.set(s, o);
            o += s.length;
        }
        out.set(data.subarray(2), o);
        return out;
    }
}

// Advances scan over the buffered bytes; returns the JPEG's length once its EOI
// is buffered, else 0.
function scanJpeg(queue, scan) {
    const n = queue.length;
    if (scan.pos === 0) {
        if (n < 2) return 0;
        if (queue.peekU8(0) !== MARKER || queue.peekU8(1) !== SOI) {
            throw new DecodeError('JPEG rectangle does not start with a JPEG start-of-image marker');
        }
        scan.pos = 2;
    }
    for (;;) {
        if (scan.entropy && !skipEntropy(queue, scan)) return 0;
        const pos = scan.pos;
        if (pos + 2 > n) return 0;
        if (queue.peekU8(pos) !== MARKER) throw new DecodeError(`JPEG rectangle: expected a marker at byte ${pos}`);
        const m = queue.peekU8(pos + 1);
        if (m === EOI) return pos + 2;
        if (m === MARKER || standalone(m)) {
            scan.pos += m === MARKER ? 1 : 2;   // fill byte, or a marker with no length
            continue;
        }
        if (pos + 4 > n) return 0;
        const len = queue.peekU16(pos + 2);
        if (len < 2) throw new DecodeError(`JPEG rectangle: segment length ${len} at byte ${pos}`);
        if (pos + 2 + len > n) return 0;
        if (m === DQT || m === DHT) scan.tables.push({ marker: m, start: pos, end: pos + 2 + len });
        scan.pos = pos + 2 + len;
        scan.entropy = m === SOS;
    }
}

// Entropy-coded data runs to the next marker that is neither a stuffed 0xFF00
// nor a restart marker; false while that marker is not buffered yet.
function skipEntropy(queue, scan) {
    const n = queue.length;
    let pos = scan.pos;
    while (pos + 1 < n) {
        if (queue.peekU8(pos) === MARKER) {
            const next = queue.peekU8(pos + 1);
            if (next !== 0 && !(next >= RST0 && next <= RST7) && next !== MARKER) {
                scan.pos = pos;
                scan.entropy = false;
                return true;
            }
            pos += next === MARKER ? 1 : 2;
        } else {
            pos++;
        }
    }
    scan.pos = pos;
    return false;
}
