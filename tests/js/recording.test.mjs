// Tests for web/core/recording.js: a recording (format version 1, as
// wsproxy.py --record writes it) built here byte by byte, parsed whole and cut
// short, refused when it is not one, and played through the real RFB client
// and Display with the recorded pixel format, as web/player.js plays it.
// Needs: Node's test runner and the real web/core modules -- no npm packages.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseRecording, pixelFormatOf, durationOf, Timeline, RecordingError, KIND, MAGIC }
    from '../../web/core/recording.js';
import { RFB } from '../../web/core/rfb.js';
import { Display } from '../../web/core/display.js';
import { PixelFormat } from '../../web/core/pixelformat.js';

function concat(chunks) {
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of chunks) { out.set(c, o); o += c.length; }
    return out;
}

function u16(v) { return [v >>> 8 & 0xff, v & 0xff]; }
function u32(v) { return [v >>> 24 & 0xff, v >>> 16 & 0xff, v >>> 8 & 0xff, v & 0xff]; }

function header(fields) {
    const json = new TextEncoder().encode(JSON.stringify({ format: 'wsproxy-recording', version: 1, ...fields }));
    return concat([Uint8Array.from(MAGIC), Uint8Array.from([...u16(1), ...u32(json.length)]), json]);
}

function record(kind, time, payload) {
    return concat([Uint8Array.from([kind, ...u32(time), ...u32(payload.length)]), payload]);
}

const HANDSHAKE = new TextEncoder().encode('RFB 003.008\n');
// BGR233, 8 bpp: what a low-colour client asks for, so the player must use it.
const BGR233 = PixelFormat.bgr233();
const NATIVE = PixelFormat.default();

function serverInit(width, height) {
    return Uint8Array.from([...u16(width), ...u16(height), ...NATIVE.encode(), ...u32(4), 0x64, 0x65, 0x73, 0x6b]);
}

// A raw 2x1 rectangle at (x, 0) in BGR233: one pixel byte each.
function rawUpdate(x, pixels) {
    return Uint8Array.from([0, 0, ...u16(1), ...u16(x), ...u16(0), ...u16(pixels.length), ...u16(1), ...u32(0),
        ...pixels]);
}

function sample() {
    const first = concat([HANDSHAKE, Uint8Array.from([1, 1, 0, 0, 0, 0]), serverInit(4, 1)]);
    return concat([
        header({ target: 'h:1', width: 4, height: 1 }),
        record(KIND.SERVER, 0, first),
        record(KIND.CLIENT_FORMAT, 3, concat([Uint8Array.from([0, 0, 0, 0]), BGR233.encode()])),
        record(KIND.SERVER, 40, rawUpdate(0, [0x07, 0x38])),        // red, green
        record(KIND.SERVER, 1500, rawUpdate(2, [0xc0, 0xff])),      // blue, white
        record(KIND.END, 2000, new TextEncoder().encode('the session ended')),
    ]);
}

test('parses header and records, and knows when it is complete', () => {
    const rec = parseRecording(sample());
    assert.equal(rec.header.target, 'h:1');
    assert.deepEqual(rec.records.map((r) => [r.kind, r.time]), [[1, 0], [2, 3], [1, 40], [1, 1500], [4, 2000]]);
    assert.equal(rec.complete, true);
    assert.equal(durationOf(rec), 2000);
});

test('a file cut anywhere keeps its whole records', () => {
    const bytes = sample();
    const full = parseRecording(bytes).records.length;
    let seen = 0;
    for (let cut = 100; cut < bytes.length; cut++) {
        const rec = parseRecording(bytes.subarray(0, cut));
        assert.equal(rec.complete, false);
        assert.ok(rec.records.length < full);
        assert.ok(rec.records.length >= seen);
        seen = rec.records.length;
    }
});

test('what is not a recording is refused with a reason', () => {
    const good = sample();
    const cases = [
        [new Uint8Array(5), /too short/],
        [concat([new TextEncoder().encode('GIF89a'), good.subarray(6)]), /not a wsproxy recording/],
        [concat([good.subarray(0, 8), Uint8Array.from([0, 2]), good.subarray(10)]), /version 2/],
        [concat([good.subarray(0, 10), Uint8Array.from(u32(1 << 20)), good.subarray(14)]), /cut short or too long/],
        [concat([header({}).subarray(0, 14), new TextEncoder().encode('{"format":')]), /not JSON|cut short/],
    ];
    for (const [bytes, pattern] of cases) {
        assert.throws(() => parseRecording(bytes), (err) => err instanceof RecordingError && pattern.test(err.message));
    }
});

test('the pixel format is the client\'s SetPixelFormat, else the ServerInit\'s', () => {
    const rec = parseRecording(sample());
    assert.equal(pixelFormatOf(rec).bitsPerPixel, 8);
    const without = { ...rec, records: rec.records.filter((r) => r.kind !== KIND.CLIENT_FORMAT) };
    assert.equal(pixelFormatOf(without).isRGBX, true);    // ServerInit's format above
    assert.equal(pixelFormatOf(without).bitsPerPixel, 32);
    assert.throws(() => pixelFormatOf({ records: [] }), RecordingError);
});

test('the timeline hands out server bytes by time, once', () => {
    const timeline = new Timeline(parseRecording(sample()));
    assert.equal(timeline.take(0).length, 1);
    assert.equal(timeline.nextTime, 40);
    assert.equal(timeline.take(39).length, 0);
    assert.equal(timeline.take(1499).length, 1);
    assert.equal(timeline.take(10000).length, 1);
    assert.equal(timeline.done, true);
    assert.equal(timeline.take(10000).length, 0);
});

test('played through the real client in the recorded format, the screen is what was recorded', () => {
    const rec = parseRecording(sample());
    const display = new Display();
    const sent = [];
    const rfb = new RFB({ display, send: (b) => sent.push(b), options: { pixelFormat: pixelFormatOf(rec), viewOnly: true } });
    const timeline = new Timeline(rec);
    for (const bytes of timeline.take(100)) rfb.receive(bytes);
    assert.equal(rfb.state, 'connected');
    assert.deepEqual([display.width, display.height], [4, 1]);
    assert.deepEqual(Array.from(display.buffer.subarray(0, 8)), [255, 0, 0, 255, 0, 255, 0, 255]);
    for (const bytes of timeline.take(Infinity)) rfb.receive(bytes);
    assert.deepEqual(Array.from(display.buffer.subarray(8, 16)), [0, 0, 255, 255, 255, 255, 255, 255]);
    // It asked for the recorded format (into the void: send() goes nowhere).
    assert.ok(sent.some((b) => b[0] === 0 && b.length === 20 && b[4] === 8));
});
