// recording.js — wsproxy session recordings (wsproxy.py --record; the format,
// version 1, is specified in wsproxy.py section 14): parseRecording() reads a
// file's bytes, pixelFormatOf() and durationOf() give what a player needs, and
// Timeline hands out the recorded server bytes up to a point in time.
//
// Needs: ./pixelformat.js (the recorded pixel format). No DOM, so the player's
// logic runs under `node --test`. Nothing in a file is trusted: lengths are
// checked before use and a file cut short keeps its whole records.

import { PixelFormat } from './pixelformat.js';

export const MAGIC = Object.freeze([0x89, 0x57, 0x53, 0x50, 0x52, 0x45, 0x43, 0x0a]);   // "\x89WSPREC\n"
export const VERSION = 1;
export const KIND = Object.freeze({ SERVER: 1, CLIENT_FORMAT: 2, CLIENT_INPUT: 3, END: 4 });

const PREAMBLE_BYTES = 14;          // magic, u16 version, u32 header length
const RECORD_HEAD_BYTES = 9;        // u8 kind, u32 milliseconds, u32 length
const MAX_HEADER_BYTES = 64 * 1024; // wsproxy writes a few hundred bytes
// The first server record: the synthesized handshake (12-byte version, one
// security type, SecurityResult), then ServerInit: width, height, PIXEL_FORMAT.
const SERVER_INIT_OFFSET = 12 + 2 + 4;
const SET_PIXEL_FORMAT = 0;         // client message types (RFC 6143 7.5)
const SET_PIXEL_FORMAT_BYTES = 20;

export class RecordingError extends Error {}

function u32(bytes, offset) {
    return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0;
}

// { header, records: [{kind, time, payload}], complete } from a file's bytes
// (Uint8Array). complete is false when the file was cut short (no END record):
// the whole records before the cut are kept, a part-record is dropped.
export function parseRecording(bytes) {
    if (bytes.length < PREAMBLE_BYTES) throw new RecordingError('too short to be a wsproxy recording');
    if (!MAGIC.every((b, i) => bytes[i] === b)) throw new RecordingError('not a wsproxy recording');
    const version = (bytes[8] << 8) | bytes[9];
    if (version !== VERSION) {
        throw new RecordingError(`recording format version ${version}; this player reads version ${VERSION}`);
    }
    const headerBytes = u32(bytes, 10);
    if (headerBytes > MAX_HEADER_BYTES || PREAMBLE_BYTES + headerBytes > bytes.length) {
        throw new RecordingError('the recording header is cut short or too long');
    }
    let header;
    try {
        header = JSON.parse(new TextDecoder('utf-8', { fatal: true })
            .decode(bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerBytes)));
    } catch (err) {
        throw new RecordingError(`the recording header is not JSON: ${err.message}`);
    }
    if (!header || typeof header !== 'object') throw new RecordingError('the recording header is not an object');
    const records = [];
    let offset = PREAMBLE_BYTES + headerBytes, complete = false;
    while (!complete && offset + RECORD_HEAD_BYTES <= bytes.length) {
        const kind = bytes[offset], time = u32(bytes, offset + 1), length = u32(bytes, offset + 5);
        const start = offset + RECORD_HEAD_BYTES;
        if (start + length > bytes.length) break;
        records.push({ kind, time, payload: bytes.subarray(start, start + length) });
        complete = kind === KIND.END;
        offset = start + length;
    }
    return { header, records, complete };
}

// The pixel format the recorded client asked for (its first SetPixelFormat),
// or the server's own from ServerInit when it asked for none: the recorded
// pixels are in that format, so the player's client must use it too.
export function pixelFormatOf(recording) {
    const set = recording.records.find((r) => r.kind === KIND.CLIENT_FORMAT &&
        r.payload.length === SET_PIXEL_FORMAT_BYTES && r.payload[0] === SET_PIXEL_FORMAT);
    if (set) return PixelFormat.decode(set.payload, 4);
    const first = recording.records.find((r) => r.kind === KIND.SERVER);
    if (!first || first.payload.length < SERVER_INIT_OFFSET + 20) {
        throw new RecordingError('the recording holds no ServerInit');
    }
    return PixelFormat.decode(first.payload, SERVER_INIT_OFFSET + 4);
}

// Milliseconds from the start to the last record (END says when it stopped).
export function durationOf(recording) {
    const last = recording.records[recording.records.length - 1];
    return last ? last.time : 0;
}

// The recorded server bytes in order, handed out by time: take(ms) returns the
// payloads recorded at or before ms that were not taken yet. Time only moves
// forward; to go back, a player starts a new client and a new Timeline.
export class Timeline {
    constructor(recording) {
        this._records = recording.records.filter((r) => r.kind === KIND.SERVER);
        this._next = 0;
    }

    get done() {
        return this._next >= this._records.length;
    }

    // Time of the next record not taken (Infinity when all are).
    get nextTime() {
        return this.done ? Infinity : this._records[this._next].time;
    }

    take(ms) {
        const out = [];
        const records = this._records;
        while (this._next < records.length && records[this._next].time <= ms) {
            out.push(records[this._next++].payload);
        }
        return out;
    }
}
