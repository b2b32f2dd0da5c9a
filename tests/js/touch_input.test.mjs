// Tests for issue 15's input work: web/ui/input.js driven with plain event objects,
// a fake canvas and a hand-driven clock (touch gestures, drag view, pointer rate,
// lock-key sync, platform key quirks), web/ui/throttle.js and web/ui/keyrules.js,
// and the RFB side (ExtendedMouseButtons, QEMU LED State) with a scripted server.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { keysymFromEvent } from '../../web/core/keysyms.js';
import { MoveThrottle, MOVE_INTERVAL_MS } from '../../web/ui/throttle.js';
import { LockSync, macKeysym } from '../../web/ui/keyrules.js';
import { BUTTON, maskFromDomButtons } from '../../web/ui/geometry.js';
import * as messages from '../../web/core/messages.js';
import { RFB, PSEUDO } from '../../web/core/rfb.js';
import { Display } from '../../web/core/display.js';

// A clock the test moves by hand; timers run in order as it passes them.
function manualClock() {
    const timers = new Map();
    let t = 0, next = 1;
    return {
        now: () => t,
        set(fn, ms) { timers.set(next, { at: t + ms, fn }); return next++; },
        clear(h) { timers.delete(h); },
        advance(ms) {
            const end = t + ms;
            for (;;) {
                const due = [...timers].filter(([, v]) => v.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
                if (!due) break;
                timers.delete(due[0]);
                t = due[1].at;
                due[1].fn();
            }
            t = end;
        },
    };
}

async function makeInput(platform = 'Linux x86_64') {
    Object.defineProperty(globalThis, 'navigator', { value: { platform }, configurable: true, writable: true });
    const canvas = {
        getBoundingClientRect: () => ({ left: 0, top: 0, width: 200, height: 100 }),
        setPointerCapture() {}, focus() {},
    };
    globalThis.document = { activeElement: canvas };
    const { Input } = await import('../../web/ui/input.js');
    const sent = [];
    const pans = [];
    const rfb = {
        keyEvent: (sym, down, code) => sent.push([sym.toString(16), down, code]),
        pointerEvent: (x, y, m) => sent.push(['p', x, y, m]),
    };
    const clock = manualClock();
    const input = new Input({
        canvas, getRfb: () => rfb, getSize: () => ({ width: 200, height: 100 }),
        keysymFor: keysymFromEvent, panBy: (dx, dy) => pans.push([dx, dy]), clock,
        log: { debug() {}, info() {}, warn() {}, error() {} },
    });
    input.setEnabled(true);
    return { input, sent, pans, clock };
}

function pointer(type, id, x, y, buttons = 0) {
    return { pointerType: type, pointerId: id, clientX: x, clientY: y, buttons, preventDefault() {} };
}

// Fingers: down/move/up of touch pointers, with the clock moved between them.
function fingers(input, clock) {
    return {
        down(id, x, y, wait = 0) { input._onPointerDown(pointer('touch', id, x, y)); clock.advance(wait); },
        move(id, x, y, wait = 0) { input._onPointerMove(pointer('touch', id, x, y)); clock.advance(wait); },
        up(id, x, y, wait = 0) { input._onPointerUp(pointer('touch', id, x, y)); clock.advance(wait); },
    };
}

const presses = (sent) => sent.filter((m) => m[0] === 'p' && m[3] !== 0).map((m) => m[3]);

// ---------------------------------------------------------------- touch

test('touch: one-, two- and three-finger taps click left, right and middle where they land', async () => {
    const { input, sent, clock } = await makeInput();
    const f = fingers(input, clock);
    f.down(1, 20, 30, 50); f.up(1, 20, 30, 1500);
    f.down(1, 100, 50); f.down(2, 140, 50, 50); f.up(1, 100, 50); f.up(2, 140, 50, 1500);
    f.down(1, 10, 10); f.down(2, 20, 10); f.down(3, 30, 10, 50);
    f.up(1, 10, 10); f.up(2, 20, 10); f.up(3, 30, 10);
    assert.deepEqual(sent, [
        ['p', 20, 30, 0], ['p', 20, 30, BUTTON.LEFT], ['p', 20, 30, 0],
        ['p', 120, 50, 0], ['p', 120, 50, BUTTON.RIGHT], ['p', 120, 50, 0],
        ['p', 20, 10, 0], ['p', 20, 10, BUTTON.MIDDLE], ['p', 20, 10, 0],
    ]);
});

test('touch: a quick second tap near the first clicks the same spot (double click)', async () => {
    const { input, sent, clock } = await makeInput();
    const f = fingers(input, clock);
    f.down(1, 50, 50, 40); f.up(1, 50, 50, 100);
    f.down(1, 58, 54, 40); f.up(1, 58, 54, 1500);
    f.down(1, 150, 50, 40); f.up(1, 150, 50);         // far away: its own spot
    assert.deepEqual(sent.filter((m) => m[3] === BUTTON.LEFT).map((m) => [m[1], m[2]]),
        [[50, 50], [50, 50], [150, 50]]);
});

test('touch: long press then drag is a right-button drag; a one-finger drag a left one', async () => {
    const { input, sent, clock } = await makeInput();
    const f = fingers(input, clock);
    f.down(1, 10, 10, 999);
    assert.deepEqual(sent, []);                        // not yet a long press
    clock.advance(1);
    assert.deepEqual(sent, [['p', 10, 10, 0], ['p', 10, 10, BUTTON.RIGHT]]);
    f.move(1, 40, 30, 20);
    f.up(1, 60, 40);
    assert.deepEqual(sent.slice(2), [['p', 40, 30, BUTTON.RIGHT], ['p', 60, 40, 0]]);

    sent.length = 0;
    clock.advance(2000);
    f.down(1, 10, 10, 10);
    f.move(1, 90, 10, 20);                             // past the 50 px threshold: a drag
    f.up(1, 90, 10);
    assert.deepEqual(sent, [['p', 10, 10, 0], ['p', 10, 10, BUTTON.LEFT], ['p', 90, 10, BUTTON.LEFT], ['p', 90, 10, 0]]);
});

test('touch: two fingers dragging down turn the wheel up, a step per 50 px', async () => {
    const { input, sent, clock } = await makeInput();
    const f = fingers(input, clock);
    f.down(1, 50, 10); f.down(2, 90, 10, 10);
    for (let y = 20; y <= 130; y += 10) { f.move(1, 50, y); f.move(2, 90, y, 20); }
    f.up(1, 50, 130); f.up(2, 90, 130);
    assert.deepEqual(presses(sent), [BUTTON.WHEEL_UP, BUTTON.WHEEL_UP]);   // 120 px: two whole steps
    assert.ok(sent.every((m) => m[1] === 70 && m[2] === 10), 'at the place the fingers started');
    sent.length = 0;
    f.down(1, 50, 100); f.down(2, 90, 100, 10);
    f.move(1, 50, 20); f.move(2, 90, 20, 20);          // up 80 px: one step of wheel down
    assert.deepEqual(presses(sent), [BUTTON.WHEEL_DOWN]);
});

test('touch: a pinch is Ctrl + wheel, up as the fingers part (zoom in), down as they close', async () => {
    const { input, sent, clock } = await makeInput();
    const f = fingers(input, clock);
    f.down(1, 90, 50); f.down(2, 110, 50, 10);
    f.move(1, 30, 50); f.move(2, 170, 50, 20);          // 20 -> 140 apart: +120, one 75 px step
    assert.deepEqual(sent.filter((m) => m[0] !== 'p' || m[3]), [
        ['ffe3', true, 'ControlLeft'], ['p', 100, 50, BUTTON.WHEEL_UP], ['ffe3', false, 'ControlLeft'],
    ]);
    sent.length = 0;
    f.move(1, 90, 50); f.move(2, 100, 50, 20);          // 10 apart: 130 closer than at the last step
    assert.deepEqual(presses(sent), [BUTTON.WHEEL_DOWN]);
    f.up(1, 90, 50); f.up(2, 100, 50);
});

test('drag view: touch and mouse drags move the view and send nothing; a still press clicks', async () => {
    const { input, sent, pans, clock } = await makeInput();
    input.setDragViewport(true);
    const f = fingers(input, clock);
    f.down(1, 100, 80, 10);
    f.move(1, 40, 60, 20);                              // a drag: the view moves with the finger
    f.move(1, 30, 50, 20);
    f.up(1, 30, 50);
    assert.deepEqual(pans, [[60, 20], [10, 10]]);
    assert.deepEqual(sent, []);
    // Mouse: small wobbles are still a click, sent at release; a real drag pans.
    clock.advance(2000);
    input._onPointerDown(pointer('mouse', 1, 50, 50, 1));
    input._onPointerMove(pointer('mouse', 1, 53, 52, 1));
    input._onPointerUp(pointer('mouse', 1, 53, 52, 0));
    assert.deepEqual(sent, [['p', 53, 52, BUTTON.LEFT], ['p', 53, 52, 0]]);
    input._onPointerDown(pointer('mouse', 1, 50, 50, 1));
    input._onPointerMove(pointer('mouse', 1, 80, 50, 1));
    input._onPointerUp(pointer('mouse', 1, 80, 50, 0));
    assert.deepEqual(pans.slice(2), [[-30, 0]]);
    assert.equal(sent.length, 2);
    // A long press without moving is a right click there.
    clock.advance(2000);
    f.down(1, 70, 20, 1100);
    f.up(1, 70, 20);
    assert.deepEqual(sent.slice(2), [['p', 70, 20, BUTTON.RIGHT], ['p', 70, 20, 0]]);
    // Off again: drags reach the server.
    input.setDragViewport(false);
    input._onPointerDown(pointer('mouse', 1, 10, 10, 1));
    assert.deepEqual(sent.at(-1), ['p', 10, 10, BUTTON.LEFT]);
});

// ---------------------------------------------------------------- pointer rate

test('throttle: one move per interval, always the latest, and a button change never waits', () => {
    const clock = manualClock();
    const out = [];
    const th = new MoveThrottle({
        send: (x, y, m) => out.push([clock.now(), x, y, m]),
        now: clock.now, setTimer: clock.set, clearTimer: clock.clear,
    });
    th.move(1, 1, 0);
    for (let i = 2; i <= 10; i++) { clock.advance(1); th.move(i, i, 0); }
    assert.deepEqual(out, [[0, 1, 1, 0]]);
    clock.advance(MOVE_INTERVAL_MS);
    assert.deepEqual(out, [[0, 1, 1, 0], [MOVE_INTERVAL_MS, 10, 10, 0]]);
    const t = clock.now();                              // 9 ms after that send
    th.move(11, 11, 0);                                 // waits...
    th.sendNow(12, 12, 1);                              // ...but goes first when a button changes
    assert.deepEqual(out.slice(2), [[t, 11, 11, 0], [t, 12, 12, 1]]);
    clock.advance(100);
    assert.equal(out.length, 4);                        // nothing left over
});

test('input: a 1000 Hz mouse becomes at most one PointerEvent per 17 ms, the last position included', async () => {
    const { input, sent, clock } = await makeInput();
    for (let i = 0; i < 100; i++) {
        input._onPointerMove(pointer('mouse', 1, i, 50));
        clock.advance(1);
    }
    clock.advance(MOVE_INTERVAL_MS);
    assert.ok(sent.length <= Math.ceil(100 / MOVE_INTERVAL_MS) + 1, `${sent.length} events`);
    assert.deepEqual(sent.at(-1), ['p', 99, 50, 0]);
    // A press right after a move: the move, then the press, at once.
    input._onPointerMove(pointer('mouse', 1, 120, 60));
    input._onPointerMove(pointer('mouse', 1, 121, 60));
    input._onPointerDown(pointer('mouse', 1, 121, 60, 1));
    assert.deepEqual(sent.slice(-2), [['p', 121, 60, 0], ['p', 121, 60, BUTTON.LEFT]]);
});

// ---------------------------------------------------------------- keys

function key(k, code, extra = {}) {
    const { caps = false, num = false, ...rest } = extra;
    return {
        key: k, code, location: 0, repeat: false, isComposing: false, keyCode: 0,
        shiftKey: false, ctrlKey: false, altKey: false, metaKey: false, timeStamp: 0,
        getModifierState: (name) => (name === 'CapsLock' ? caps : name === 'NumLock' ? num : false),
        preventDefault() {}, ...rest,
    };
}

test('LockSync: fixes each differing lock once, and never on the lock key itself or unknowns', () => {
    const s = new LockSync();
    assert.deepEqual(s.fixesBefore('KeyA', false, false), []);          // nothing known yet
    s.serverSays({ caps: true, num: false });
    assert.deepEqual(s.fixesBefore('KeyA', false, true), [[0xffe5, 'CapsLock'], [0xff7f, 'NumLock']]);
    assert.deepEqual(s.fixesBefore('KeyA', false, true), []);          // unknown until the server says again
    s.serverSays({ caps: true, num: true });
    assert.deepEqual(s.fixesBefore('CapsLock', false, null), []);      // the user is changing it
    assert.deepEqual(s.fixesBefore('KeyA', false, null), []);          // Num Lock unknown here (macOS)
});

test('input: with Caps Lock on at the server and off here, a key press turns it off first', async () => {
    const { input, sent } = await makeInput();
    input.setRemoteLocks({ scroll: false, num: false, caps: true });
    input._onKeyDown(key('1', 'Digit1'));
    input._onKeyUp(key('1', 'Digit1'));
    input._onKeyDown(key('2', 'Digit2'));
    assert.deepEqual(sent, [
        ['ffe5', true, 'CapsLock'], ['ffe5', false, 'CapsLock'],
        ['31', true, 'Digit1'], ['31', false, 'Digit1'], ['32', true, 'Digit2'],
    ]);
});

test('macOS: Cmd is Alt, Option is Mode_switch / AltGr, and Caps Lock is a whole press each way', async () => {
    assert.equal(macKeysym(0xffeb), 0xffe9);             // Super_L -> Alt_L
    assert.equal(macKeysym(0xffec), 0xffeb);             // Super_R -> Super_L
    assert.equal(macKeysym(0x61), 0x61);
    const { input, sent } = await makeInput('MacIntel');
    input._onKeyDown(key('Meta', 'MetaLeft', { metaKey: true }));
    input._onKeyUp(key('Meta', 'MetaLeft'));
    input._onKeyDown(key('Alt', 'AltLeft', { altKey: true }));
    input._onKeyUp(key('Alt', 'AltLeft'));
    input._onKeyDown(key('Alt', 'AltRight', { altKey: true, location: 2 }));
    input._onKeyUp(key('Alt', 'AltRight', { location: 2 }));
    assert.deepEqual(sent, [
        ['ffe9', true, 'MetaLeft'], ['ffe9', false, 'MetaLeft'],
        ['ff7e', true, 'AltLeft'], ['ff7e', false, 'AltLeft'],
        ['fe03', true, 'AltRight'], ['fe03', false, 'AltRight'],
    ]);
    sent.length = 0;
    input._onKeyDown(key('CapsLock', 'CapsLock', { caps: true }));   // macOS: on
    input._onKeyUp(key('CapsLock', 'CapsLock'));                     // macOS: off
    assert.deepEqual(sent, [
        ['ffe5', true, 'CapsLock'], ['ffe5', false, 'CapsLock'], ['ffe5', true, 'CapsLock'], ['ffe5', false, 'CapsLock'],
    ]);
});

test('Windows: Japanese input-method keys are one toggling keysym, pressed and released at once', async () => {
    const { input, sent } = await makeInput('Win32');
    input._onKeyDown(key('Hankaku', 'Backquote'));
    input._onKeyUp(key('Zenkaku', 'Backquote'));
    input._onKeyDown(key('KanaMode', 'KanaMode'));
    assert.deepEqual(sent, [
        ['ff2a', true, 'Backquote'], ['ff2a', false, 'Backquote'],
        ['ff24', true, 'KanaMode'], ['ff24', false, 'KanaMode'],
    ]);
});

test('Windows: releasing one Shift releases the other too (Windows sends no keyup for it)', async () => {
    const { input, sent } = await makeInput('Win32');
    input._onKeyDown(key('Shift', 'ShiftLeft', { shiftKey: true }));
    input._onKeyDown(key('Shift', 'ShiftRight', { shiftKey: true, location: 2 }));
    input._onKeyUp(key('Shift', 'ShiftLeft', { shiftKey: true }));
    assert.deepEqual(sent.slice(2), [['ffe1', false, 'ShiftLeft'], ['ffe2', false, 'ShiftRight']]);
});

// ---------------------------------------------------------------- RFB: back/forward, LED state

function connectedRfb() {
    const sent = [];
    const events = [];
    const rfb = new RFB({ display: new Display(), send: (b) => sent.push(Uint8Array.from(b)), onEvent: (e) => events.push(e) });
    const name = new TextEncoder().encode('x');
    rfb.receive(new TextEncoder().encode('RFB 003.008\n'));
    rfb.receive(Uint8Array.of(1, 1));
    rfb.receive(Uint8Array.of(0, 0, 0, 0));
    rfb.receive(Uint8Array.of(0, 100, 0, 100, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0,
        0, 0, 0, name.length, ...name));
    assert.equal(rfb.state, 'connected');
    const setEncodings = sent.find((m) => m[0] === 2);
    const view = new DataView(setEncodings.buffer);
    const encodings = [];
    for (let i = 4; i < setEncodings.length; i += 4) encodings.push(view.getInt32(i));
    sent.length = 0;
    return { rfb, sent, events, encodings };
}

// A FramebufferUpdate with one pseudo-rectangle of `encoding` and its payload.
function pseudoRect(encoding, payload = []) {
    const b = new Uint8Array(16 + payload.length);
    const v = new DataView(b.buffer);
    v.setUint16(2, 1);
    v.setInt32(12, encoding);
    b.set(payload, 16);
    return b;
}

test('ExtendedMouseButtons: buttons 8/9 ride in an extra byte with the marker bit, per rfbproto', () => {
    assert.deepEqual([...messages.extendedPointerEvent(10, 20, BUTTON.BACK)], [5, 0x80, 0, 10, 0, 20, 0x01]);
    assert.deepEqual([...messages.extendedPointerEvent(300, 2, BUTTON.FORWARD | BUTTON.LEFT)], [5, 0x81, 1, 44, 0, 2, 0x02]);
    assert.equal(maskFromDomButtons(8), BUTTON.BACK);
    assert.equal(maskFromDomButtons(16 | 1), BUTTON.FORWARD | BUTTON.LEFT);
});

test('ExtendedMouseButtons: asked for; back/forward sent only once the server confirmed it', () => {
    const c = connectedRfb();
    assert.ok(c.encodings.includes(PSEUDO.EXTENDED_MOUSE_BUTTONS) && PSEUDO.EXTENDED_MOUSE_BUTTONS === -316);
    c.rfb.pointerEvent(10, 20, BUTTON.BACK);           // not confirmed: the plain form, marker 0
    assert.deepEqual(c.sent.map((m) => [...m]), [[5, 0, 0, 10, 0, 20]]);
    c.rfb.receive(pseudoRect(-316));
    c.sent.length = 0;
    c.rfb.pointerEvent(10, 20, BUTTON.BACK);
    c.rfb.pointerEvent(10, 20, BUTTON.LEFT);           // buttons 1-7 only: the plain form still
    assert.deepEqual(c.sent.filter((m) => m[0] === 5).map((m) => [...m]),
        [[5, 0x80, 0, 10, 0, 20, 1], [5, 1, 0, 10, 0, 20]]);
});

test('QEMU LED State: asked for, and each report becomes an led event (split anywhere)', () => {
    const c = connectedRfb();
    assert.ok(c.encodings.includes(-261));
    const update = pseudoRect(-261, [0b110]);           // Num and Caps on, Scroll off
    for (const byte of update) c.rfb.receive(Uint8Array.of(byte));
    c.rfb.receive(pseudoRect(-261, [0b001]));
    assert.deepEqual(c.events.filter((e) => e.type === 'led'), [
        { type: 'led', scroll: false, num: true, caps: true },
        { type: 'led', scroll: true, num: false, caps: false },
    ]);
    assert.equal(c.rfb.state, 'connected');
});

test('keys with no physical code are pressed and released at once; unnamed Lang1/Lang2 still type', async () => {
    const { input, sent } = await makeInput();
    input._onKeyDown(key('A', ''));                   // a virtual keyboard: no code
    input._onKeyUp(key('a', ''));                     // its keyup names another key: nothing more
    input._onKeyDown(key('Unidentified', 'Lang1'));
    input._onKeyUp(key('Unidentified', 'Lang1'));
    assert.deepEqual(sent, [['41', true, undefined], ['41', false, undefined], ['ff31', true, 'Lang1'], ['ff31', false, 'Lang1']]);
    const mac = await makeInput('MacIntel');
    mac.input._onKeyDown(key('Unidentified', 'Lang2'));
    assert.deepEqual(mac.sent, [['ff30', true, 'Lang2']]);   // 英数 on a JIS Mac keyboard
});
