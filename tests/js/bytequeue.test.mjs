// tests/js/bytequeue.test.mjs — ByteQueue readers, growth/compaction, and the
// "check has(n) first" contract (short reads throw RangeError).
import test from 'node:test';
import assert from 'node:assert/strict';
import { ByteQueue, readU32 } from '../../web/core/bytequeue.js';

test('big-endian readers', () => {
    const q = new ByteQueue();
    q.push(Uint8Array.of(0x12, 0x34, 0x56, 0x78, 0xff, 0xff, 0xff, 0xfe, 0x80, 0, 0, 1, 0xab, 0xcd));
    assert.equal(q.length, 14);
    assert.equal(q.peekU8(), 0x12);
    assert.equal(q.peekU8(3), 0x78);
    assert.equal(q.u16(), 0x1234);
    assert.equal(q.u8(), 0x56);
    assert.equal(q.u8(), 0x78);
    assert.equal(q.s32(), -2);
    assert.equal(q.u32(), 0x80000001);
    assert.equal(q.has(2), true);
    assert.equal(q.has(3), false);
    assert.deepEqual([...q.bytes(2)], [0xab, 0xcd]);
    assert.equal(q.length, 0);
});

test('u32 of 0xffffffff stays unsigned; s32 sign', () => {
    const q = new ByteQueue();
    q.push(Uint8Array.of(255, 255, 255, 255, 0xff, 0xff, 0xff, 0x1f));
    assert.equal(q.u32(), 0xffffffff);
    assert.equal(q.s32(), -225); // 0xffffff1f
});

test('peekU16 and peekU32 read ahead without consuming; readU32 reads any bytes', () => {
    const q = new ByteQueue(16);
    q.push(Uint8Array.of(9, 0xfe, 0xdc, 0xba, 0x98, 0x01));
    q.u8();
    assert.equal(q.peekU16(), 0xfedc);
    assert.equal(q.peekU16(3), 0x9801);
    assert.equal(q.peekU32(), 0xfedcba98);   // unsigned: the top bit set stays positive
    assert.equal(q.peekU32(1), 0xdcba9801);
    assert.equal(q.length, 5);
    assert.throws(() => q.peekU32(2), RangeError);
    assert.throws(() => q.peekU16(4), RangeError);
    assert.equal(q.u32(), 0xfedcba98);
    assert.equal(readU32(Uint8Array.of(0, 0x80, 0, 0, 1), 1), 0x80000001);
    assert.equal(readU32(Uint8Array.of(0xff, 0xff, 0xff, 0xff), 0), 0xffffffff);
});

test('short reads throw RangeError', () => {
    const q = new ByteQueue();
    q.push(Uint8Array.of(1, 2, 3));
    assert.throws(() => q.u32(), RangeError);
    assert.throws(() => q.view(4), RangeError);
    assert.throws(() => q.skip(4), RangeError);
    assert.throws(() => q.peekU8(3), RangeError);
    assert.equal(q.length, 3, 'a failed read consumes nothing');
    q.skip(3);
    assert.throws(() => q.u8(), RangeError);
});

test('bytes() copies, view() does not', () => {
    const q = new ByteQueue(16);
    q.push(Uint8Array.of(1, 2, 3, 4, 5, 6));
    const c = q.bytes(2);
    const v = q.view(2);
    assert.deepEqual([...c], [1, 2]);
    assert.deepEqual([...v], [3, 4]);
    assert.equal(v.buffer, q._buf.buffer, 'view shares storage');
    assert.notEqual(c.buffer, q._buf.buffer);
});

test('growth and compaction keep byte order across many pushes', () => {
    const q = new ByteQueue(8);
    let next = 0, expect = 0;
    for (let round = 0; round < 500; round++) {
        const n = (round * 7) % 23 + 1;
        const chunk = new Uint8Array(n);
        for (let i = 0; i < n; i++) chunk[i] = next++ & 0xff;
        q.push(chunk);
        const take = Math.min(q.length, (round * 5) % 19);
        for (let i = 0; i < take; i++) assert.equal(q.u8(), expect++ & 0xff);
    }
    while (q.length) assert.equal(q.u8(), expect++ & 0xff);
    assert.equal(expect, next);
});

test('large push grows past double the capacity', () => {
    const q = new ByteQueue(4);
    const big = new Uint8Array(100000).map((_, i) => i & 0xff);
    q.push(Uint8Array.of(9));
    q.push(big);
    assert.equal(q.u8(), 9);
    assert.deepEqual(q.view(100000), big);
    q.push(new Uint8Array(0));
    assert.equal(q.length, 0);
});

test('clear empties the queue', () => {
    const q = new ByteQueue();
    q.push(Uint8Array.of(1, 2, 3));
    q.clear();
    assert.equal(q.length, 0);
    assert.equal(q.has(1), false);
});

test('small pushes and reads over megabytes reuse the storage instead of growing it', () => {
    const q = new ByteQueue(4096);
    let next = 0, expect = 0;
    for (let round = 0; round < 100_000; round++) {
        // 1..80 bytes in, and everything but the last 0..40 bytes read back (a message
        // parser waiting for the rest of a message), so at most ~120 bytes are ever live.
        const n = 1 + (round * 37) % 80;
        const chunk = new Uint8Array(n);
        for (let i = 0; i < n; i++) chunk[i] = next++ & 0xff;
        q.push(chunk);
        const keep = (round * 13) % 41;
        while (q.length > keep) assert.equal(q.u8(), expect++ & 0xff);
    }
    assert.ok(next > 4_000_000, `pushed ${next} bytes`);
    // Internal, but it is the behaviour under test: the consumed prefix is dropped
    // on push, so the capacity never leaves its first size.
    assert.equal(q._buf.length, 4096);
});
