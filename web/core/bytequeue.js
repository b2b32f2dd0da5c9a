// web/core/bytequeue.js — ByteQueue: a growable FIFO of received bytes with
// big-endian readers; the one buffer between the WebSocket and the RFB
// parser/decoders. Also readU32(), the one big-endian U32 reader, for bytes
// that are not in a queue (Extended Clipboard data).
// Needs: nothing (plain typed arrays; importable in Node and the browser).
//
// Readers never wait: callers check has(n) first and return "need more bytes"
// themselves, so a short read here is a caller bug and throws RangeError.

const INITIAL_CAPACITY = 64 * 1024;

// The unsigned big-endian 32-bit number at bytes[offset]. Multiply instead of
// << 24 so the top bit does not make it negative.
export function readU32(bytes, offset) {
    return bytes[offset] * 0x1000000 +
        ((bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]);
}

export class ByteQueue {
    constructor(capacity = INITIAL_CAPACITY) {
        this._buf = new Uint8Array(capacity);
        this._start = 0;   // first unread byte
        this._end = 0;     // one past the last stored byte
    }

    get length() {
        return this._end - this._start;
    }

    has(n) {
        return this._end - this._start >= n;
    }

    // Appends a copy of u8. Storage is compacted or grown here and only here,
    // which is why view() results are valid until the next push.
    push(u8) {
        const n = u8.length;
        if (n === 0) return;
        if (this._end + n > this._buf.length) {
            const live = this._end - this._start;
            if (live + n <= this._buf.length && live <= this._buf.length >>> 1) {
                // Enough room once the consumed prefix is dropped.
                this._buf.copyWithin(0, this._start, this._end);
            } else {
                let cap = this._buf.length * 2;
                while (cap < live + n) cap *= 2;
                const grown = new Uint8Array(cap);
                grown.set(this._buf.subarray(this._start, this._end));
                this._buf = grown;
            }
            this._start = 0;
            this._end = live;
        }
        this._buf.set(u8, this._end);
        this._end += n;
    }

    _need(n) {
        if (this._end - this._start < n) {
            throw new RangeError(`ByteQueue: read of ${n} bytes with ${this.length} available`);
        }
    }

    peekU8(offset = 0) {
        this._need(offset + 1);
        return this._buf[this._start + offset];
    }

    // A U16 / U32 `offset` bytes ahead, not consumed: a length to check before
    // waiting for what it announces.
    peekU16(offset = 0) {
        this._need(offset + 2);
        const b = this._buf, i = this._start + offset;
        return (b[i] << 8) | b[i + 1];
    }

    peekU32(offset = 0) {
        this._need(offset + 4);
        return readU32(this._buf, this._start + offset);
    }

    u8() {
        this._need(1);
        return this._buf[this._start++];
    }

    u16() {
        this._need(2);
        const b = this._buf, i = this._start;
        this._start = i + 2;
        return (b[i] << 8) | b[i + 1];
    }

    u32() {
        this._need(4);
        const i = this._start;
        this._start = i + 4;
        return readU32(this._buf, i);
    }

    s32() {
        this._need(4);
        const b = this._buf, i = this._start;
        this._start = i + 4;
        return (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3];
    }

    // A copy the caller may keep.
    bytes(n) {
        this._need(n);
        const out = this._buf.slice(this._start, this._start + n);
        this._start += n;
        return out;
    }

    // No copy: the bytes are consumed, and the returned view stays valid until
    // the next push() (the hot path for pixel data).
    view(n) {
        this._need(n);
        const out = this._buf.subarray(this._start, this._start + n);
        this._start += n;
        return out;
    }

    skip(n) {
        this._need(n);
        this._start += n;
    }

    // Drops everything (connection reset).
    clear() {
        this._start = this._end = 0;
    }
}
