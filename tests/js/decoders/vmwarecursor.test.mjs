// Tests for web/core/decoders/vmwarecursor.js through RFB: alpha cursors keep
// their alpha; classic AND/XOR cursors become opaque, transparent or black.
import test from 'node:test';
import assert from 'node:assert/strict';
import { RFB } from '../../../web/core/rfb.js';
import { Display } from '../../../web/core/display.js';

function connectedClient(events) {
    const rfb = new RFB({ display: new Display(), send: () => {}, onEvent: (e) => events.push(e) });
    const name = [0x78];
    rfb.receive(Uint8Array.from([...new TextEncoder().encode('RFB 003.008\n'), 1, 1, 0, 0, 0, 0,
        0, 8, 0, 8, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0, 0, 0, 0, 1, ...name]));
    assert.equal(rfb.state, 'connected');
    return rfb;
}

const header = (x, y, w, h) => [0, 0, 0, 1, x >> 8, x & 0xff, y >> 8, y & 0xff, w >> 8, w & 0xff, h >> 8, h & 0xff, 0x57, 0x4d, 0x56, 0x64];

test('VMware alpha cursor: RGBA as sent, hotspot from x/y, split anywhere', () => {
    const pixels = [255, 0, 0, 128, 0, 255, 0, 255, 0, 0, 0, 0, 10, 20, 30, 64];
    const bytes = Uint8Array.from([...header(1, 0, 2, 2), 1, 0, ...pixels]);
    const events = [];
    const rfb = connectedClient(events);
    for (const b of bytes) rfb.receive(Uint8Array.of(b));
    const cursor = events.find((e) => e.type === 'cursor');
    assert.ok(cursor, 'a cursor event');
    assert.deepEqual([cursor.width, cursor.height, cursor.hotX, cursor.hotY], [2, 2, 1, 0]);
    assert.deepEqual(Array.from(cursor.rgba), pixels);
});

test('VMware classic cursor: AND 0 opaque colour, AND 1 XOR 0 transparent, invert black', () => {
    const and = [0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255];
    const xor = [10, 20, 30, 0, 0, 0, 0, 0, 255, 255, 255, 255];
    const events = [];
    const rfb = connectedClient(events);
    rfb.receive(Uint8Array.from([...header(0, 0, 3, 1), 0, 0, ...and, ...xor]));
    const cursor = events.find((e) => e.type === 'cursor');
    assert.deepEqual(Array.from(cursor.rgba), [10, 20, 30, 255, 0, 0, 0, 0, 0, 0, 0, 255]);
    rfb.receive(Uint8Array.from([...header(0, 0, 1, 1), 7, 0]));
    assert.equal(rfb.state, 'failed');
    assert.match(events.at(-1).detail, /VMware cursor type 7 is not defined/);
});
