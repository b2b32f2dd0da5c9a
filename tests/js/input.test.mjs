// Tests for web/ui/input.js: the key logic, driven with plain event objects and
// a fake RFB (no DOM needed for this part), with the real keysyms.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { keysymFromEvent } from '../../web/core/keysyms.js';

async function makeInput(platform) {
    // Node 21+ has a read-only navigator of its own; Input reads the platform from it.
    Object.defineProperty(globalThis, 'navigator', { value: { platform }, configurable: true, writable: true });
    const { Input } = await import('../../web/ui/input.js');
    const sent = [];
    const rfb = {
        keyEvent: (sym, down, code) => sent.push([sym.toString(16), down, code]),
        pointerEvent: (x, y, m) => sent.push(['p', x, y, m]),
    };
    const input = new Input({
        canvas: {}, getRfb: () => rfb, getSize: () => ({ width: 100, height: 100 }),
        keysymFor: keysymFromEvent, onLeave: () => sent.push('leave'),
        log: { debug() {}, info() {}, warn() {}, error() {} },
    });
    input.setEnabled(true);
    return { input, sent };
}

let stamp = 0;
function key(key, code, extra = {}) {
    return {
        key, code, location: 0, repeat: false, isComposing: false, keyCode: 0,
        shiftKey: false, ctrlKey: false, altKey: false, metaKey: false,
        timeStamp: extra.timeStamp ?? (stamp += 100), prevented: false,
        preventDefault() { this.prevented = true; }, ...extra,
    };
}

test('input: key up sends the keysym that went down, even if Shift changed', async () => {
    const { input, sent } = await makeInput('Linux x86_64');
    input._onKeyDown(key('Shift', 'ShiftLeft', { shiftKey: true }));
    input._onKeyDown(key('A', 'KeyA', { shiftKey: true }));
    input._onKeyUp(key('Shift', 'ShiftLeft'));
    input._onKeyUp(key('a', 'KeyA'));
    assert.deepEqual(sent, [
        ['ffe1', true, 'ShiftLeft'], ['41', true, 'KeyA'], ['ffe1', false, 'ShiftLeft'], ['41', false, 'KeyA'],
    ]);
});

test('input: blur releases everything held, once', async () => {
    const { input, sent } = await makeInput('Linux x86_64');
    input._onKeyDown(key('Control', 'ControlLeft', { ctrlKey: true }));
    input._onKeyDown(key('x', 'KeyX', { ctrlKey: true }));
    input.releaseAll();
    input.releaseAll();
    assert.deepEqual(sent.slice(2), [['78', false, 'KeyX'], ['ffe3', false, 'ControlLeft']]);
});

test('input: Windows AltGr (fake ControlLeft + AltRight) becomes ISO_Level3_Shift only', async () => {
    const { input, sent } = await makeInput('Win32');
    input._onKeyDown(key('Control', 'ControlLeft', { ctrlKey: true, timeStamp: 1000 }));
    input._onKeyDown(key('AltGraph', 'AltRight', { ctrlKey: true, altKey: true, timeStamp: 1001 }));
    input._onKeyDown(key('@', 'KeyQ', { ctrlKey: true, altKey: true, timeStamp: 1100 }));
    input._onKeyUp(key('@', 'KeyQ', { ctrlKey: true, altKey: true }));
    input._onKeyUp(key('Control', 'ControlLeft', { altKey: true }));
    input._onKeyUp(key('AltGraph', 'AltRight'));
    assert.deepEqual(sent, [
        ['fe03', true, 'AltRight'], ['40', true, 'KeyQ'], ['40', false, 'KeyQ'], ['fe03', false, 'AltRight'],
    ]);
});

test('input: Windows real Ctrl is sent once the AltGr window has passed', async () => {
    const { input, sent } = await makeInput('Win32');
    input._onKeyDown(key('Control', 'ControlLeft', { ctrlKey: true, timeStamp: 1000 }));
    input._onKeyDown(key('c', 'KeyC', { ctrlKey: true, timeStamp: 1200 }));
    input._onKeyUp(key('c', 'KeyC', { ctrlKey: true }));
    input._onKeyUp(key('Control', 'ControlLeft'));
    assert.deepEqual(sent, [
        ['ffe3', true, 'ControlLeft'], ['63', true, 'KeyC'], ['63', false, 'KeyC'], ['ffe3', false, 'ControlLeft'],
    ]);
});

test('input: a dead key sends nothing; the composed character goes as a keysym alone', async () => {
    const { input, sent } = await makeInput('Linux x86_64');
    const dead = key('Dead', 'BracketLeft');
    input._onKeyDown(dead);
    input._onKeyUp(key('Dead', 'BracketLeft'));
    input._onKeyDown(key('é', 'KeyE'));
    input._onKeyUp(key('e', 'KeyE'));
    assert.equal(dead.prevented, false); // the browser must see it to compose
    assert.deepEqual(sent, [['e9', true, undefined], ['e9', false, undefined]]);
});

test('input: F8 leaves the canvas, Shift+F8 sends F8, IME keys are left alone', async () => {
    const { input, sent } = await makeInput('Linux x86_64');
    input._onKeyDown(key('F8', 'F8'));
    input._onKeyDown(key('F8', 'F8', { shiftKey: true }));
    input._onKeyDown(key('Process', 'KeyA', { isComposing: true, keyCode: 229 }));
    assert.deepEqual(sent, ['leave', ['ffc5', true, 'F8'], ['ffc5', false, 'F8']]);
});

test('input: a modifier whose keyup went elsewhere is released on the next key', async () => {
    const { input, sent } = await makeInput('Linux x86_64');
    input._onKeyDown(key('Alt', 'AltLeft', { altKey: true }));
    input._onKeyDown(key('x', 'KeyX')); // altKey false now: Alt was let go in another window
    assert.deepEqual(sent, [['ffe9', true, 'AltLeft'], ['ffe9', false, 'AltLeft'], ['78', true, 'KeyX']]);
});

test('input: sticky modifiers hold until toggled, and view-only sends nothing', async () => {
    const { input, sent } = await makeInput('Linux x86_64');
    assert.equal(input.setSticky('ctrl', true), true);
    input.releaseKeys(); // blur of the canvas (a toolbar click) must not drop it
    assert.deepEqual(sent, [['ffe3', true, 'ControlLeft']]);
    input.setSticky('ctrl', false);
    input.setEnabled(false);
    input._onKeyDown(key('a', 'KeyA'));
    input.tap(0xff09, 'Tab');
    assert.deepEqual(sent, [['ffe3', true, 'ControlLeft'], ['ffe3', false, 'ControlLeft']]);
});

test('input: soft keyboard keys go out as given, only when enabled; 229 keydowns are left to it', async () => {
    const { input, sent } = await makeInput('Linux x86_64');
    const ime = key('Unidentified', '', { keyCode: 229 });
    input._onKeyDown(ime);
    assert.equal(ime.prevented, false);   // the browser goes on to fire input events
    input.sendKeys([[0x68, true], [0x68, false]]);
    input.setEnabled(false);              // view-only / disconnected
    input.sendKeys([[0x69, true], [0x69, false]]);
    assert.deepEqual(sent, [['68', true, undefined], ['68', false, undefined]]);
});
