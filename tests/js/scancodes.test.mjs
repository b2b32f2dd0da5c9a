// Tests for web/core/scancodes.js (KeyboardEvent.code -> QEMU XT keycode).
// Expected values are rfbproto's QEMU examples and QEMU's keycodemapdb.
// Needs: Node's test runner only.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { scancodeForCode, SCANCODES } from '../../web/core/scancodes.js';

test('scancodes: rfbproto examples and single-byte keys', () => {
    assert.equal(scancodeForCode('KeyA'), 0x1e);          // rfbproto: XK_A -> 0x1e
    assert.equal(scancodeForCode('ArrowRight'), 0xcd);    // rfbproto: E0 4D -> 0xcd
    assert.equal(scancodeForCode('Escape'), 0x01);
    assert.equal(scancodeForCode('Digit1'), 0x02);
    assert.equal(scancodeForCode('Digit0'), 0x0b);
    assert.equal(scancodeForCode('Enter'), 0x1c);
    assert.equal(scancodeForCode('Space'), 0x39);
    assert.equal(scancodeForCode('F1'), 0x3b);
    assert.equal(scancodeForCode('F10'), 0x44);
    assert.equal(scancodeForCode('F11'), 0x57);
    assert.equal(scancodeForCode('F12'), 0x58);
    assert.equal(scancodeForCode('IntlBackslash'), 0x56);
    assert.equal(scancodeForCode('Numpad0'), 0x52);
    assert.equal(scancodeForCode('NumpadDecimal'), 0x53);
});

test('scancodes: E0-prefixed keys are 0x80 | second byte; PrintScreen 0x54, Pause 0xc6', () => {
    const table = {
        NumpadEnter: 0x9c, ControlRight: 0x9d, NumpadDivide: 0xb5, AltRight: 0xb8,
        Home: 0xc7, ArrowUp: 0xc8, PageUp: 0xc9, ArrowLeft: 0xcb, End: 0xcf, ArrowDown: 0xd0,
        PageDown: 0xd1, Insert: 0xd2, Delete: 0xd3, MetaLeft: 0xdb, MetaRight: 0xdc, ContextMenu: 0xdd,
        PrintScreen: 0x54, Pause: 0xc6,
    };
    for (const [code, sc] of Object.entries(table)) assert.equal(scancodeForCode(code), sc, code);
    assert.equal(scancodeForCode('OSLeft'), 0xdb);
    assert.equal(scancodeForCode('OSRight'), 0xdc);
});

test('scancodes: letters in keyboard order, unknown codes give 0, all values fit a byte', () => {
    const rows = ['QWERTYUIOP', 'ASDFGHJKL', 'ZXCVBNM'];
    const starts = [0x10, 0x1e, 0x2c];
    rows.forEach((row, r) => [...row].forEach((ch, i) => assert.equal(scancodeForCode(`Key${ch}`), starts[r] + i, ch)));
    assert.equal(scancodeForCode('NoSuchKey'), 0);
    assert.equal(scancodeForCode(''), 0);
    assert.equal(scancodeForCode(undefined), 0);
    assert.equal(scancodeForCode('toString'), 0);   // not fooled by Object.prototype
    const seen = new Map();
    for (const [code, sc] of Object.entries(SCANCODES)) {
        assert.ok(sc > 0 && sc <= 0xff, code);
        assert.ok(!seen.has(sc), `${code} and ${seen.get(sc)} share 0x${sc.toString(16)}`);
        seen.set(sc, code);
    }
});
