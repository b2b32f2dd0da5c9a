// web/core/decoders/h264.js — Open H.264 encoding (50) (rfbproto "Open H.264
// Encoding"): U32 length, U32 flags (bit 0 ResetContext, bit 1 ResetAllContexts),
// then Annex B H.264 (baseline profile), one or more whole frames. A context (a
// WebCodecs VideoDecoder) per rectangle position and size, at most 64, the
// least recently used closed first. Frames decode asynchronously; each
// rectangle shows the last frame of its data, cropped to the rectangle, through
// display.pictureRect (so order and whole-update presents are kept).
// Needs: ./common.js, and a WebCodecs VideoDecoder: globalThis.VideoDecoder in
// a browser (secure context) or one handed in (tests). h264Supported() says
// whether this browser decodes baseline H.264; rfb asks for it only then.

import { DecodeError } from './common.js';

const RESET_CONTEXT = 1 << 0;
const RESET_ALL = 1 << 1;
const MAX_CONTEXTS = 64;                       // rfbproto: the client must support 64
const MAX_H264_BYTES = 64 * 1024 * 1024;       // one rectangle's frames
const NAL_SLICE = 1;
const NAL_IDR = 5;
const NAL_SPS = 7;
const PROBE_CODEC = 'avc1.42e01e';             // constrained baseline, level 3.0

let supported = false;

// Starts the (asynchronous) check once; the answer is there long before ServerInit.
export function probeH264(VideoDecoderClass = globalThis.VideoDecoder) {
    if (typeof VideoDecoderClass !== 'function' || typeof VideoDecoderClass.isConfigSupported !== 'function') {
        return Promise.resolve(false);
    }
    return VideoDecoderClass.isConfigSupported({ codec: PROBE_CODEC })
        .then((r) => (supported = !!r.supported), () => false);
}
probeH264();

export function h264Supported() {
    return supported;
}

// Annex B NAL units: [{type, start, end}] (start after the start code).
export function splitNalUnits(data) {
    const starts = [];
    for (let i = 0; i + 2 < data.length; i++) {
        if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
            starts.push(i + 3);
            i += 2;
        }
    }
    return starts.map((start, k) => {
        let end = k + 1 < starts.length ? starts[k + 1] - 3 : data.length;
        while (end > start && data[end - 1] === 0) end--;   // a 4-byte start code's leading zero
        return { type: data[start] & 0x1f, start, end };
    });
}

// Whole frames: the NAL units up to and including each slice (one slice a frame,
// as a baseline low-latency encoder sends). -> [{data, key, sps}]
export function splitFrames(data) {
    const frames = [];
    let from = 0, key = false, sps = null;
    for (const nal of splitNalUnits(data)) {
        if (nal.type === NAL_SPS) sps = data.subarray(nal.start, nal.end);
        if (nal.type === NAL_IDR) key = true;
        if (nal.type === NAL_SLICE || nal.type === NAL_IDR) {
            frames.push({ data: data.subarray(from, nal.end), key, sps });
            from = nal.end;
            key = false;
            sps = null;
        }
    }
    return frames;
}

// 'avc1.PPCCLL' from the SPS's profile, constraint flags and level.
function codecFor(sps) {
    const hex = (b) => b.toString(16).padStart(2, '0');
    return `avc1.${hex(sps[1])}${hex(sps[2])}${hex(sps[3])}`;
}

// A decoded frame as {width, height, data: RGBA, opaque}, cropped to w x h.
async function frameToRGBA(frame, w, h) {
    const width = Math.min(w, frame.displayWidth), height = Math.min(h, frame.displayHeight);
    const data = new Uint8ClampedArray(width * height * 4);
    await frame.copyTo(data, { rect: { x: 0, y: 0, width, height }, format: 'RGBA', colorSpace: 'srgb' });
    return { width, height, data, opaque: true };
}

// One rectangle's decoder; frames come out in order (baseline has no B-frames),
// so each decode() waits on the output for its own last chunk.
class H264Context {
    constructor(webcodecs, w, h) {
        this.w = w;
        this.h = h;
        this._Chunk = webcodecs.EncodedVideoChunk;
        this._timestamp = 0;
        this._waiting = [];       // one {resolve, reject, keep} per chunk sent, in order
        this._decoder = new webcodecs.VideoDecoder({
            output: (frame) => this._output(frame),
            error: (err) => this._failAll(err),
        });
        this._configured = false;
    }

    decode(data) {
        const frames = splitFrames(data);
        if (!frames.length) return Promise.reject(new DecodeError('H.264 rectangle holds no frame'));
        const promises = frames.map((f, i) => this._decodeFrame(f, i === frames.length - 1));
        return promises.at(-1);
    }

    _decodeFrame(frame, keep) {
        if (!this._configured) {
            if (!frame.key || !frame.sps) return Promise.reject(new DecodeError('H.264 context must start with a key frame and its SPS'));
            this._decoder.configure({ codec: codecFor(frame.sps), optimizeForLatency: true });
            this._configured = true;
        }
        return new Promise((resolve, reject) => {
            this._waiting.push({ resolve, reject, keep });
            try {
                const type = frame.key ? 'key' : 'delta';
                this._decoder.decode(new this._Chunk({ type, timestamp: this._timestamp++, data: frame.data }));
            } catch (err) {
                this._waiting.pop();
                reject(err);
            }
        });
    }

    _output(frame) {
        const waiter = this._waiting.shift();
        if (!waiter || !waiter.keep) {
            frame.close();
            if (waiter) waiter.resolve(null);
            return;
        }
        frameToRGBA(frame, this.w, this.h).then(waiter.resolve, waiter.reject).finally(() => frame.close());
    }

    _failAll(err) {
        for (const w of this._waiting.splice(0)) w.reject(err);
        this.broken = true;
    }

    close() {
        this._failAll(new Error('H.264 context reset'));
        if (this._decoder.state !== 'closed') this._decoder.close();
    }
}

export class H264Decoder {
    // webcodecs: {VideoDecoder, EncodedVideoChunk}, the browser's by default; tests hand in fakes.
    constructor(webcodecs = globalThis) {
        this._webcodecs = webcodecs;
        this._contexts = new Map();   // "x,y,w,h" -> H264Context, least recently used first
    }

    decode(rect, queue, display) {
        if (!queue.has(8)) return false;
        const length = queue.peekU32(0), flags = queue.peekU32(4);
        if (length > MAX_H264_BYTES) throw new DecodeError(`H.264 rectangle of ${length} bytes (at most ${MAX_H264_BYTES})`);
        if (!queue.has(8 + length)) return false;
        queue.skip(8);
        const data = queue.bytes(length);
        const key = `${rect.x},${rect.y},${rect.width},${rect.height}`;
        if (flags & RESET_ALL) this.reset();
        if (flags & RESET_CONTEXT) this._drop(key);
        if (!length || !rect.width || !rect.height) return true;   // a control message: flags only
        if (typeof this._webcodecs.VideoDecoder !== 'function') throw new DecodeError('H.264 rectangle, but this browser has no H.264 decoder');
        const context = this._context(key, rect);
        const picture = context.decode(data);
        picture.catch(() => this._drop(key));   // the next frame for it must be a key frame again
        display.pictureRect(rect.x, rect.y, rect.width, rect.height, picture);
        return true;
    }

    reset() {
        for (const c of this._contexts.values()) c.close();
        this._contexts.clear();
    }

    _drop(key) {
        const c = this._contexts.get(key);
        if (!c) return;
        this._contexts.delete(key);
        c.close();
    }

    _context(key, rect) {
        let c = this._contexts.get(key);
        if (c && c.broken) {
            this._drop(key);
            c = null;
        }
        if (c) {
            this._contexts.delete(key);   // re-inserted: now the most recently used
        } else {
            if (this._contexts.size >= MAX_CONTEXTS) this._drop(this._contexts.keys().next().value);
            c = new H264Context(this._webcodecs, rect.width, rect.height);
        }
        this._contexts.set(key, c);
        return c;
    }
}
