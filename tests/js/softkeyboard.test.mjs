// Tests for web/ui/softkeyboard.js: input events from a phone's soft keyboard
// (InputEvent-like objects, no DOM) -> the [keysym, down] pairs sent, and the
// SoftKeyboard wiring with a fake textarea. Node's built-in runner: `node --test tests/js/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { keysFromInput, keysFromComposition, SoftKeyboard } from '../../web/ui/softkeyboard.js';
import { XK } from '../../web/core/keysyms.js';

const taps = (...keysyms) => keysyms.flatMap((k) => [[k, true], [k, false]]);

test('inserted text is a press and release per character', () => {
    assert.deepEqual(keysFromInput({ inputType: 'insertText', data: 'hi 2' }),
        taps(0x68, 0x69, 0x20, 0x32));
    assert.deepEqual(keysFromInput({ inputType: 'insertText', data: 'é' }), taps(0xe9));
    assert.deepEqual(keysFromInput({ inputType: 'insertText', data: '€😀' }),
        taps(0x01000000 + 0x20ac, 0x01000000 + 0x1f600));       // one keysym per code point
    assert.deepEqual(keysFromInput({ inputType: 'insertFromPaste', data: 'a\nb' }),
        taps(0x61, XK.Return, 0x62));
    assert.deepEqual(keysFromInput({ inputType: 'insertText', data: null }), []);
    assert.deepEqual(keysFromInput({ inputType: 'insertText', data: '\u0007' }), []);  // no keysym
});

test('line breaks, deletions and what is left to the browser', () => {
    assert.deepEqual(keysFromInput({ inputType: 'insertLineBreak' }), taps(XK.Return));
    assert.deepEqual(keysFromInput({ inputType: 'insertParagraph' }), taps(XK.Return));
    assert.deepEqual(keysFromInput({ inputType: 'deleteContentBackward' }), taps(XK.BackSpace));
    assert.deepEqual(keysFromInput({ inputType: 'deleteContentForward' }), taps(XK.Delete));
    for (const inputType of ['insertCompositionText', 'formatBold', 'historyUndo', '']) {
        assert.equal(keysFromInput({ inputType, data: 'x' }), null, inputType);
    }
    assert.equal(keysFromInput(), null);
    assert.deepEqual(keysFromComposition('ok'), taps(0x6f, 0x6b));
});

function fakeTextarea() {
    const listeners = {};
    return {
        value: '',
        listeners,
        focused: false,
        addEventListener(type, fn) { listeners[type] = fn; },
        focus() { this.focused = true; },
    };
}

function inputEvent(props) {
    return { isComposing: false, cancelable: true, defaultPrevented: false,
        preventDefault() { this.defaultPrevented = true; }, ...props };
}

test('SoftKeyboard: cancelable beforeinput sends once and keeps the field empty', () => {
    const t = fakeTextarea();
    const sent = [];
    const kb = new SoftKeyboard({ textarea: t, send: (keys) => sent.push(...keys) });
    kb.attach();
    t.value = 'stale';
    kb.focus();
    assert.equal(t.focused, true);
    assert.equal(t.value, '');
    const e = inputEvent({ inputType: 'insertText', data: 'a' });
    t.listeners.beforeinput(e);
    assert.equal(e.defaultPrevented, true);          // so no input event follows
    assert.deepEqual(sent, taps(0x61));
    t.listeners.beforeinput(inputEvent({ inputType: 'deleteContentBackward' }));
    assert.deepEqual(sent.slice(2), taps(XK.BackSpace));
});

test('SoftKeyboard: not cancelable, composing, or composition end', () => {
    const t = fakeTextarea();
    const sent = [];
    new SoftKeyboard({ textarea: t, send: (keys) => sent.push(...keys) }).attach();
    // Not cancelable: beforeinput leaves it, the input event sends and empties the field.
    const before = inputEvent({ inputType: 'insertText', data: 'x', cancelable: false });
    t.listeners.beforeinput(before);
    assert.equal(before.defaultPrevented, false);
    assert.deepEqual(sent, []);
    t.value = 'x';
    t.listeners.input(inputEvent({ inputType: 'insertText', data: 'x' }));
    assert.deepEqual(sent, taps(0x78));
    assert.equal(t.value, '');
    // A word being composed is sent only when the composition ends.
    sent.length = 0;
    t.listeners.beforeinput(inputEvent({ inputType: 'insertCompositionText', data: 'he', isComposing: true }));
    t.value = 'he';
    t.listeners.input(inputEvent({ inputType: 'insertCompositionText', data: 'he', isComposing: true }));
    assert.deepEqual(sent, []);
    assert.equal(t.value, 'he');
    t.listeners.compositionend({ data: 'hey' });
    assert.deepEqual(sent, taps(0x68, 0x65, 0x79));
    assert.equal(t.value, '');
    // Firefox's input after compositionend (not composing any more) must not send it again.
    t.listeners.input(inputEvent({ inputType: 'insertCompositionText', data: 'hey' }));
    assert.equal(sent.length, 6);
});
