// Tests for web/core/keysyms.js (KeyboardEvent -> X11 keysym).
// Expected values are X11/keysymdef.h's.
// Needs: Node's test runner only.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { keysymFromEvent, keysymFromChar, XK } from '../../web/core/keysyms.js';

const k = (key, code = '', location = 0) => keysymFromEvent({ key, code, location });

test('Latin-1 characters are their own keysyms', () => {
    assert.equal(k('a', 'KeyA'), 0x61);
    assert.equal(k('A', 'KeyA'), 0x41);
    assert.equal(k(' ', 'Space'), 0x20);
    assert.equal(k('~', 'Backquote'), 0x7e);
    assert.equal(k('é', 'Digit2'), 0xe9);
    assert.equal(k('ß', 'Minus'), 0xdf);
    assert.equal(k('\u00a0'), 0xa0);
    assert.equal(k('ÿ'), 0xff);
});

test('other Unicode is 0x01000000 + code point, astral planes included', () => {
    assert.equal(k('€', 'KeyE'), 0x010020ac);
    assert.equal(k('ą'), 0x01000105);
    assert.equal(k('Ж'), 0x01000416);
    assert.equal(k('😀'), 0x0101f600);
    assert.equal(keysymFromChar('あ'), 0x01003042);
});

test('control characters and multi-character keys give null', () => {
    assert.equal(keysymFromChar('\u0001'), null);
    assert.equal(keysymFromChar('\u0085'), null);
    assert.equal(k('ab'), null);
    assert.equal(k('SomeFutureKeyName'), null);
    assert.equal(k(''), null);
    assert.equal(keysymFromEvent(), null);
});

test('named keys', () => {
    const table = {
        Enter: 0xff0d, Tab: 0xff09, Escape: 0xff1b, Backspace: 0xff08, Delete: 0xffff, Insert: 0xff63,
        Home: 0xff50, End: 0xff57, PageUp: 0xff55, PageDown: 0xff56,
        ArrowLeft: 0xff51, ArrowUp: 0xff52, ArrowRight: 0xff53, ArrowDown: 0xff54,
        CapsLock: 0xffe5, NumLock: 0xff7f, ScrollLock: 0xff14, Pause: 0xff13, PrintScreen: 0xff61,
        ContextMenu: 0xff67, AltGraph: 0xfe03, Compose: 0xff20,
        AudioVolumeUp: 0x1008ff13, AudioVolumeDown: 0x1008ff11, AudioVolumeMute: 0x1008ff12,
    };
    for (const [key, sym] of Object.entries(table)) assert.equal(k(key), sym, key);
});

test('F1-F24 (and up to F35)', () => {
    assert.equal(k('F1', 'F1'), 0xffbe);
    assert.equal(k('F10', 'F10'), 0xffc7);
    assert.equal(k('F12', 'F12'), 0xffc9);
    assert.equal(k('F13', 'F13'), 0xffca);
    assert.equal(k('F24', 'F24'), 0xffd5);
    assert.equal(k('F35'), 0xffe0);
    assert.equal(k('F36'), null);
    assert.equal(k('F0'), null);
    for (let n = 1; n <= 24; n++) assert.equal(k(`F${n}`), 0xffbe + n - 1);
});

test('modifiers: left and right by code; AltGraph; Meta/OS -> Super', () => {
    assert.equal(k('Shift', 'ShiftLeft', 1), 0xffe1);
    assert.equal(k('Shift', 'ShiftRight', 2), 0xffe2);
    assert.equal(k('Control', 'ControlLeft', 1), 0xffe3);
    assert.equal(k('Control', 'ControlRight', 2), 0xffe4);
    assert.equal(k('Alt', 'AltLeft', 1), 0xffe9);
    assert.equal(k('Alt', 'AltRight', 2), 0xffea);
    assert.equal(k('AltGraph', 'AltRight', 2), 0xfe03);          // ISO_Level3_Shift
    assert.equal(k('Meta', 'MetaLeft', 1), 0xffeb);              // Super_L
    assert.equal(k('Meta', 'MetaRight', 2), 0xffec);             // Super_R
    assert.equal(k('OS', 'OSLeft', 1), 0xffeb);
    assert.equal(k('OS', 'OSRight', 2), 0xffec);
    // Without a code, location decides the side.
    assert.equal(k('Shift', '', 2), 0xffe2);
    assert.equal(k('Control', '', 1), 0xffe3);
    assert.equal(k('Meta', '', 2), 0xffec);
});

test('numpad via code: digits, operators, NumLock-off navigation', () => {
    for (let d = 0; d <= 9; d++) assert.equal(k(String(d), `Numpad${d}`, 3), 0xffb0 + d);
    assert.equal(k('+', 'NumpadAdd', 3), 0xffab);
    assert.equal(k('-', 'NumpadSubtract', 3), 0xffad);
    assert.equal(k('*', 'NumpadMultiply', 3), 0xffaa);
    assert.equal(k('/', 'NumpadDivide', 3), 0xffaf);
    assert.equal(k('Enter', 'NumpadEnter', 3), 0xff8d);
    assert.equal(k('=', 'NumpadEqual', 3), 0xffbd);
    assert.equal(k('.', 'NumpadDecimal', 3), 0xffae);
    assert.equal(k(',', 'NumpadDecimal', 3), 0xffac);          // a comma-decimal layout
    assert.equal(k('Delete', 'NumpadDecimal', 3), 0xff9f);     // NumLock off
    assert.equal(k('ArrowUp', 'Numpad8', 3), 0xff97);
    assert.equal(k('Home', 'Numpad7', 3), 0xff95);
    assert.equal(k('PageDown', 'Numpad3', 3), 0xff9b);
    assert.equal(k('Clear', 'Numpad5', 3), 0xff9d);            // KP_Begin
    assert.equal(k('Insert', 'Numpad0', 3), 0xff9e);
    assert.equal(k('Unidentified', 'Numpad4', 3), 0xffb4);
    // Location 3 without a code still means the keypad.
    assert.equal(k('7', '', 3), 0xffb7);
    // The main Enter and digits are not keypad keys.
    assert.equal(k('Enter', 'Enter'), 0xff0d);
    assert.equal(k('7', 'Digit7'), 0x37);
});

test('dead keys: "Dead" + code picks a dead_* keysym; combining marks map exactly', () => {
    assert.equal(k('Dead', 'Equal'), 0xfe51);          // dead_acute (de ´)
    assert.equal(k('Dead', 'Backquote'), 0xfe52);      // dead_circumflex (de ^)
    assert.equal(k('Dead', 'BracketLeft'), 0xfe52);    // fr ^
    assert.equal(k('Dead', 'BracketRight'), 0xfe57);   // dead_diaeresis (sv ¨)
    assert.equal(k('Dead', 'Quote'), 0xfe51);
    assert.equal(k('Dead', 'KeyQ'), null);
    assert.equal(k('\u0300'), 0xfe50);
    assert.equal(k('\u0301'), 0xfe51);
    assert.equal(k('\u0302'), 0xfe52);
    assert.equal(k('\u0303'), 0xfe53);
    assert.equal(k('\u0308'), 0xfe57);
    assert.equal(k('\u030a'), 0xfe58);
    assert.equal(k('\u030c'), 0xfe5a);
    assert.equal(k('\u0327'), 0xfe5b);
    // Spacing accents typed as characters stay characters.
    assert.equal(k('´'), 0xb4);
    assert.equal(k('^'), 0x5e);
});

test('an "Unidentified" key falls back to the US-layout meaning of its code', () => {
    assert.equal(k('Unidentified', 'KeyQ'), 0x71);
    assert.equal(k('Unidentified', 'Digit3'), 0x33);
    assert.equal(k('Unidentified', 'Slash'), 0x2f);
    assert.equal(k('Unidentified', 'Enter'), 0xff0d);
    assert.equal(k('Unidentified', 'F5'), 0xffc2);
    assert.equal(k('Unidentified', 'ArrowLeft'), 0xff51);
    assert.equal(k('', 'KeyZ'), 0x7a);
    assert.equal(k('Unidentified', 'Nonsense'), null);
});

test('XK names match keysymdef.h values used by other modules', () => {
    assert.equal(XK.Control_L, 0xffe3);
    assert.equal(XK.Alt_L, 0xffe9);
    assert.equal(XK.Super_L, 0xffeb);
    assert.equal(XK.ISO_Level3_Shift, 0xfe03);
    assert.equal(XK.Delete, 0xffff);
    assert.equal(XK.F1 + 11, 0xffc9);
});
