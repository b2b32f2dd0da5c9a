// Tests for web/core/decoders/h264.js with a fake WebCodecs (Node has none): frames
// split at slices, one decoder per rectangle, the flags, the 64-context limit, and a
// context that does not start with a key frame. The real decoder: tests/test_web_new_encodings.py.
import test from 'node:test';
import assert from 'node:assert/strict';
import { ByteQueue } from '../../../web/core/bytequeue.js';
import { Display } from '../../../web/core/display.js';
import { H264Decoder, splitFrames } from '../../../web/core/decoders/h264.js';

const AUD = [0, 0, 0, 1, 0x09, 0xf0];
const SPS = [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xaa];
const PPS = [0, 0, 0, 1, 0x68, 0xce];
const IDR = [0, 0, 1, 0x65, 0x88, 0x01];
const P = [0, 0, 1, 0x41, 0x9a, 0x02];

// A fake WebCodecs: each decoded chunk outputs a frame whose colour is the chunk's last byte.
function fakeWebCodecs(log) {
    class EncodedVideoChunk {
        constructor({ type, data }) { this.type = type; this.data = Uint8Array.from(data); }
    }
    class VideoDecoder {
        constructor({ output, error }) { this.output = output; this.error = error; this.state = 'unconfigured'; log.push('new'); }
        configure(config) { this.state = 'configured'; log.push(`configure ${config.codec}`); }
        decode(chunk) {
            log.push(`decode ${chunk.type} ${chunk.data.length}`);
            const v = chunk.data.at(-1);
            queueMicrotask(() => this.output({
                displayWidth: 8, displayHeight: 8,
                copyTo: async (dest, { rect }) => { for (let i = 0; i < rect.width * rect.height; i++) dest.set([v, v, v, 255], i * 4); },
                close: () => {},
            }));
        }
        close() { this.state = 'closed'; log.push('close'); }
    }
    return { VideoDecoder, EncodedVideoChunk };
}

function rectBytes(flags, frames) {
    const data = frames.flat();
    return Uint8Array.from([data.length >>> 24, (data.length >>> 16) & 0xff, (data.length >>> 8) & 0xff, data.length & 0xff,
        0, 0, 0, flags, ...data]);
}

test('h264: splitFrames cuts after each slice, the key frame keeps its SPS', () => {
    const frames = splitFrames(Uint8Array.from([...AUD, ...SPS, ...PPS, ...IDR, ...AUD, ...P]));
    assert.equal(frames.length, 2);
    assert.equal(frames[0].key, true);
    assert.deepEqual(Array.from(frames[0].sps), [0x67, 0x42, 0xc0, 0x1e, 0xaa]);
    assert.equal(frames[1].key, false);
    assert.deepEqual(Array.from(frames[1].data.subarray(-3)), [0x41, 0x9a, 0x02]);
});

test('h264: a context per rectangle, the last frame of each rectangle drawn cropped, flags reset', async () => {
    const log = [], errors = [];
    const d = new Display({ onError: (e) => errors.push(e.message) });
    d.resize(16, 8);
    const dec = new H264Decoder(fakeWebCodecs(log));
    const q = new ByteQueue();
    const r1 = { x: 0, y: 0, width: 4, height: 4, encoding: 50 };
    q.push(rectBytes(0, [AUD, SPS, PPS, IDR, AUD, P]));   // two frames in one rectangle
    assert.equal(dec.decode(r1, q, d), true);
    const next = rectBytes(0, [AUD, P]);
    for (let i = 0; i < next.length; i++) {                // split anywhere
        q.push(next.subarray(i, i + 1));
        assert.equal(dec.decode(r1, q, d), i === next.length - 1);
    }
    assert.equal(q.length, 0);
    await d.whenIdle();
    assert.deepEqual(log, ['new', 'configure avc1.42c01e', 'decode key 27', 'decode delta 12', 'decode delta 12']);
    assert.deepEqual(d.getPixel(3, 3), [2, 2, 2, 255]);
    assert.deepEqual(d.getPixel(4, 4), [0, 0, 0, 0], 'cropped to the rectangle');

    // A delta frame for a new context cannot decode: the rectangle stays, the session goes on.
    q.push(rectBytes(0, [AUD, P]));
    assert.equal(dec.decode({ x: 8, y: 0, width: 4, height: 4, encoding: 50 }, q, d), true);
    await d.whenIdle();
    assert.match(errors[0], /must start with a key frame/);
    assert.deepEqual(d.getPixel(9, 1), [0, 0, 0, 0]);

    // ResetContext with no data: the context is closed, the next frame needs a key frame.
    log.length = 0;
    q.push(rectBytes(1, []));
    assert.equal(dec.decode(r1, q, d), true);
    assert.deepEqual(log, ['close']);
});

test('h264: at most 64 contexts, the least recently used closed first', async () => {
    const log = [];
    const d = new Display({ onError: () => {} });
    d.resize(200, 200);
    const dec = new H264Decoder(fakeWebCodecs(log));
    const q = new ByteQueue();
    for (let i = 0; i < 65; i++) {
        q.push(rectBytes(0, [SPS, PPS, IDR]));
        dec.decode({ x: i, y: 0, width: 1, height: 1, encoding: 50 }, q, d);
    }
    await d.whenIdle();
    assert.equal(log.filter((l) => l === 'new').length, 65);
    assert.equal(log.filter((l) => l === 'close').length, 1);
    assert.equal(dec._contexts.size, 64);
    assert.ok(!dec._contexts.has('0,0,1,1'), 'the oldest went');
});
