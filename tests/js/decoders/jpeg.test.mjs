// Tests for web/core/decoders/jpeg.js: the end of a length-less JPEG is found by
// its segments (stuffed 0xFF00 and restart markers inside the scan are not the
// end), split anywhere; tables a JPEG leaves out come from the previous one.
import test from 'node:test';
import assert from 'node:assert/strict';
import { ByteQueue } from '../../../web/core/bytequeue.js';
import { Display } from '../../../web/core/display.js';
import { JPEGDecoder } from '../../../web/core/decoders/jpeg.js';
import { splitChunks } from './helpers.mjs';
import { recordingDecoder } from './tightpng.test.mjs';

const seg = (marker, body) => [0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body];
const DQT = seg(0xdb, [0, ...Array(64).fill(1)]);
const DHT = seg(0xc4, [0x00, ...Array(16).fill(0), 7]);
const SOF = seg(0xc0, [8, 0, 2, 0, 4, 1, 1, 0x11, 0]);
const SOS = seg(0xda, [1, 1, 0, 0, 63, 0]);
// Entropy-coded data with a stuffed 0xFF00, a restart marker and fill bytes before EOI.
const SCAN = [0x12, 0xff, 0x00, 0x34, 0xff, 0xd3, 0x56, 0xff, 0xff];
const EOI = [0xff, 0xd9];
const full = Uint8Array.from([0xff, 0xd8, ...DQT, ...DHT, ...SOF, ...SOS, ...SCAN, ...EOI]);
const bare = Uint8Array.from([0xff, 0xd8, ...SOF, ...SOS, ...SCAN, ...EOI]);   // no tables: reuse

test('jpeg: finds the end of each JPEG and re-inserts the previous tables, split anywhere', async () => {
    for (const mode of ['whole', 'bytes', 'random']) {
        const seen = [];
        const d = new Display({ decodeImage: recordingDecoder(seen) });
        d.resize(4, 4);
        const dec = new JPEGDecoder(), q = new ByteQueue(16);
        const chunks = splitChunks(Uint8Array.from([...full, ...bare]), mode);
        const rects = [{ x: 0, y: 0, width: 4, height: 2, encoding: 21 }, { x: 0, y: 2, width: 4, height: 2, encoding: 21 }];
        for (const rect of rects) while (!dec.decode(rect, q, d, {})) q.push(chunks.shift());
        assert.equal(q.length, 0, `${mode}: exactly the two JPEGs consumed`);
        await d.whenIdle();
        assert.deepEqual(seen.map((s) => s.mime), ['image/jpeg', 'image/jpeg']);
        assert.deepEqual(seen[0].bytes, full);
        assert.deepEqual(seen[1].bytes, Uint8Array.from([0xff, 0xd8, ...DQT, ...DHT, ...bare.subarray(2)]), 'tables put back');
        assert.deepEqual(d.getPixel(0, 3), [9, 8, 7, 255]);
    }
});

test('jpeg: not a JPEG is a decode error', () => {
    const q = new ByteQueue();
    q.push(Uint8Array.of(0x89, 0x50, 0x4e, 0x47));
    assert.throws(() => new JPEGDecoder().decode({ x: 0, y: 0, width: 1, height: 1, encoding: 21 }, q, new Display(), {}),
        /does not start with a JPEG start-of-image marker/);
});
