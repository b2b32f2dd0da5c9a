// web/ui/input.js — keyboard, mouse and touch from the page to the RFB session.
//
// Needs: a DOM (the canvas element, window, document), ./geometry.js for the pure
// arithmetic, and a `keysymFor({key, code, location})` function (from
// web/core/keysyms.js, handed in by app.js) that names the X11 keysym of a key.
// It sends through `rfb.keyEvent(keysym, down, code)` and `rfb.pointerEvent(x, y, mask)`
// of whatever session `getRfb()` returns, so one handler serves every reconnect.
// Pure helpers: ./gestures.js (touch gestures), ./throttle.js (pointer move rate),
// ./keyrules.js (platform key quirks, lock-key sync).
//
// Rules it keeps:
//  - every key sent down is remembered with the keysym sent, and released with that
//    same keysym (Shift may have changed in between), and all of them are released
//    on blur / tab hidden / disconnect, so nothing sticks down on the server;
//  - keys that go to the server get preventDefault, Tab included; F8 leaves the
//    canvas for the toolbar (Shift+F8 sends F8), so keyboard users are never trapped;
//  - view-only (or no session) sends nothing at all;
//  - pointer moves are sent at most one per MOVE_INTERVAL_MS (the latest position),
//    button changes at once and in order;
//  - before a key press, Caps Lock / Num Lock are tapped if the server's (QEMU LED
//    State) differ from the browser's, so typed letters come out as the user sees.

import {
    BUTTON, WheelAccumulator, clientToFramebuffer, maskFromDomButtons,
} from './geometry.js';
import { GESTURE, GestureRecognizer } from './gestures.js';
import { MoveThrottle } from './throttle.js';
import { LockSync, langKeysym, macKeysym, windowsJapaneseKeysym, windowsSendsNoKeyup } from './keyrules.js';

// X11 keysyms used directly here (X11/keysymdef.h).
export const XK = Object.freeze({
    Tab: 0xff09, Escape: 0xff1b, Delete: 0xffff, F8: 0xffc5,
    Control_L: 0xffe3, Alt_L: 0xffe9, Super_L: 0xffeb, ISO_Level3_Shift: 0xfe03,
    Caps_Lock: 0xffe5, Num_Lock: 0xff7f,
});

// Sticky toolbar modifiers: keysym and the DOM code (for the QEMU scancode).
const STICKY = Object.freeze({
    ctrl: { keysym: XK.Control_L, code: 'ControlLeft' },
    alt: { keysym: XK.Alt_L, code: 'AltLeft' },
    super: { keysym: XK.Super_L, code: 'MetaLeft' },
});

// Windows reports AltGr as a fake ControlLeft followed at once by AltRight; the two
// arrive within a millisecond or so. A real Ctrl press is held back this long to
// see whether an AltRight follows.
const ALTGR_WINDOW_MS = 50;

// Touch, in CSS pixels and milliseconds (noVNC's values). Finger travel per wheel
// step of a two-finger drag, and change in finger distance per zoom step of a pinch.
const TOUCH_SCROLL_STEP_PX = 50;
const TOUCH_ZOOM_STEP_PX = 75;
// Taps this close in time and place are aimed at one spot (double click).
const DOUBLE_TAP_MS = 1000;
const DOUBLE_TAP_PX = 50;
// With "drag viewport" on, a press that moves less than this is still a click.
const DRAG_THRESHOLD_PX = 10;

// Modifier codes whose state the browser reports on every event; a stale "down"
// (its keyup went to another window) is released when the flag says it is up.
// AltRight is left out: as AltGr on Linux it does not set altKey.
const MODIFIER_FLAG = Object.freeze({
    ShiftLeft: 'shiftKey', ShiftRight: 'shiftKey',
    ControlLeft: 'ctrlKey', ControlRight: 'ctrlKey',
    AltLeft: 'altKey',
    MetaLeft: 'metaKey', MetaRight: 'metaKey',
});

// macOS and iOS/iPadOS: the same keyboard quirks (an iPad may even say "MacIntel").
function isMac() {
    const p = (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || '';
    return /mac|iphone|ipad|ipod/i.test(p);
}

// A lock key's state as the browser sees it, or null where it cannot say.
function lockState(e, name) {
    return typeof e.getModifierState === 'function' ? !!e.getModifierState(name) : null;
}

function isWindows() {
    const p = (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || '';
    return /win/i.test(p);
}

const DEFAULT_CLOCK = Object.freeze({
    now: () => performance.now(),
    set: (fn, ms) => setTimeout(fn, ms),
    clear: (handle) => clearTimeout(handle),
});

export class Input {
    /**
      * canvas: the element showing the framebuffer (focusable, receives events)
      * getRfb(): the current RFB session or null
      * getSize(): { width, height } of the framebuffer
      * keysymFor({key, code, location}): keysym number or null
      * onLeave(): move focus out of the canvas (F8)
      * panBy(dx, dy): scroll the view of the framebuffer by CSS pixels (drag viewport)
      * onTouchPoint(clientX, clientY): a finger aimed the pointer here (show the dot)
      * clock: { now() ms, set(fn, ms) -> handle, clear(handle) } (tests pass their own)
      * log: { debug, info, warn, error }
      */
    constructor({
        canvas, getRfb, getSize, keysymFor, onLeave = () => {}, panBy = () => {},
        onTouchPoint = () => {}, clock = DEFAULT_CLOCK, log = console,
    }) {
        this.canvas = canvas;
        this.getRfb = getRfb;
        this.getSize = getSize;
        this.keysymFor = keysymFor;
        this.onLeave = onLeave;
        this.panBy = panBy;
        this.onTouchPoint = onTouchPoint;
        this.log = log;
        this._clock = clock;
        this.enabled = false;

        this._down = new Map();       // key id -> { keysym, code } sent down
        this._sticky = new Set();     // names from STICKY held by the toolbar
        this._afterDead = false;      // the next character was composed by a dead key
        this._heldCtrl = null;        // Windows: a ControlLeft that may be half of AltGr
        this._heldCtrlTimer = 0;
        this._windows = isWindows();
        this._mac = isMac();

        this._mask = 0;               // buttons down, RFB order
        this._pos = { x: 0, y: 0 };   // last pointer position sent, framebuffer pixels
        this._wheel = new WheelAccumulator();
        this._throttle = new MoveThrottle({
            send: (x, y, mask) => this._pointer(x, y, mask),
            now: () => clock.now(), setTimer: (fn, ms) => clock.set(fn, ms), clearTimer: (h) => clock.clear(h),
        });
        this._gestures = new GestureRecognizer();
        this._gestureTimer = null;
        this._gestureDone = null;     // wheel steps already sent for this two-finger gesture
        this._lastTap = null;         // { type, x, y, at } of the last tap, for double taps
        this.dragViewport = false;
        this._pan = null;             // { x, y, moved, mask } while a drag moves the view
        this._locks = new LockSync();
    }

    /** The server's lock keys ({caps, num} from rfb's 'led' event). */
    setRemoteLocks(state) {
        this._locks.serverSays(state);
    }

    attach() {
        const c = this.canvas;
        const handlers = [
            [c, 'keydown', (e) => this._onKeyDown(e)],
            [c, 'keyup', (e) => this._onKeyUp(e)],
            [c, 'blur', () => this.releaseKeys()],
            [window, 'blur', () => this.releaseAll()],
            [document, 'visibilitychange', () => { if (document.hidden) this.releaseAll(); }],
            [c, 'pointerdown', (e) => this._onPointerDown(e)],
            [c, 'pointermove', (e) => this._onPointerMove(e)],
            [c, 'pointerup', (e) => this._onPointerUp(e)],
            [c, 'pointercancel', (e) => this._onPointerCancel(e)],
            [c, 'wheel', (e) => this._onWheel(e), { passive: false }],
            [c, 'contextmenu', (e) => e.preventDefault()],
            // Back/forward buttons: Chromium navigates the page on their mouseup otherwise.
            [c, 'mouseup', (e) => { if (e.button === 3 || e.button === 4) e.preventDefault(); }],
        ];
        for (const [target, type, fn, opts] of handlers) target.addEventListener(type, fn, opts);
    }

    /** Take keys from another element too (the soft keyboard's textarea), with the same rules. */
    attachKeys(el) {
        el.addEventListener('keydown', (e) => this._onKeyDown(e));
        el.addEventListener('keyup', (e) => this._onKeyUp(e));
        el.addEventListener('blur', () => this.releaseKeys());
    }

    setEnabled(on) {
        if (!on) {
            this.releaseAll();
            this._locks.forget(); // the next session reports its own
        }
        this.enabled = on;
    }

    // ---------------------------------------------------------------- sending

    _rfb() {
        return this.enabled ? this.getRfb() : null;
    }

    _key(keysym, down, code) {
        const rfb = this._rfb();
        if (!rfb) return;
        this.log.debug('key', keysym.toString(16), down ? 'down' : 'up', code || '');
        rfb.keyEvent(keysym, down, code || undefined);
    }

    _pointer(x, y, mask) {
        const rfb = this._rfb();
        if (!rfb) return;
        this._pos = { x, y };
        rfb.pointerEvent(x, y, mask);
    }

    /** Press and release one key (toolbar Tab, Esc). */
    tap(keysym, code) {
        this._key(keysym, true, code);
        this._key(keysym, false, code);
    }

    /** Send a list of [keysym, down] as they are (soft keyboard text); nothing in view-only. */
    sendKeys(list) {
        for (const [keysym, down] of list) this._key(keysym, down);
    }

    /** Hold or release a toolbar modifier ('ctrl' | 'alt' | 'super'). Returns the new state. */
    setSticky(name, down) {
        const m = STICKY[name];
        if (!m || !this.enabled) return false;
        if (down === this._sticky.has(name)) return down;
        if (down) this._sticky.add(name); else this._sticky.delete(name);
        this._key(m.keysym, down, m.code);
        return down;
    }

    /** Release every key this page holds down on the server (not the toolbar modifiers). */
    releaseKeys() {
        this._flushHeldCtrl();
        for (const { keysym, code } of [...this._down.values()].reverse()) this._key(keysym, false, code);
        this._down.clear();
        this._afterDead = false;
    }

    /** Release keys, toolbar modifiers and mouse buttons: the page lost the user. */
    releaseAll() {
        this.releaseKeys();
        for (const name of [...this._sticky]) this.setSticky(name, false);
        this._sticky.clear();
        this._feed(this._gestures.cancel());
        this._pan = null;
        if (this._mask) this._pointerNow(this._pos, 0);
        this._throttle.drop();
    }

    // ---------------------------------------------------------------- keyboard

    _onKeyDown(e) {
        if (e.isComposing || e.keyCode === 229) return; // IME: the text comes later, via composition
        if (e.key === 'F8' && !e.ctrlKey && !e.altKey && !e.metaKey) return this._onF8(e);
        if (!this.enabled) return;

        if (e.key === 'Dead') {
            // Let the browser compose: the next keydown carries the finished character.
            // Nothing is sent for the dead key itself, so its keyup is ignored too.
            this._afterDead = true;
            return;
        }

        const id = keyId(e);
        if (!id) return;
        if (this._mac && e.code === 'CapsLock') return this._macCapsLock(e);
        this._releaseStaleModifiers(e);
        if (this._holdCtrl(e, id)) return;
        this._press(e, id, this._endHeldCtrl(e));
    }

    // Send the keydown of key `id` (altGr: it is AltGr, whatever the event says).
    _press(e, id, altGr) {
        const known = this._down.get(id);
        const press = this._keyToPress(e, known, altGr);
        if (!press) {
            this.log.debug('no keysym for', e.key, e.code);
            return;
        }
        e.preventDefault();
        if (known && !e.repeat) this._key(known.keysym, false, known.code); // lost keyup
        this._syncLocks(e);
        // No physical key named (virtual keyboards): its keyup may name another key
        // ('a' down, 'A' up) and never pair up, so press and release at once.
        const codeless = !e.code || e.code === 'Unidentified';
        if (codeless || (this._windows && windowsSendsNoKeyup(press.keysym))) {
            this._key(press.keysym, true, press.code);
            this._key(press.keysym, false, press.code);
            return;
        }
        this._down.set(id, press);
        this._key(press.keysym, true, press.code);
    }

    // F8 leaves the canvas for the toolbar; Shift+F8 sends F8.
    _onF8(e) {
        e.preventDefault();
        if (e.shiftKey) {
            this.tap(XK.F8, 'F8');
            return;
        }
        this.releaseKeys();
        this.onLeave();
    }

    // Windows AltGr: hold ControlLeft back until we know it is not AltGr's fake Ctrl.
    // True when this keydown was held back.
    _holdCtrl(e, id) {
        if (!this._windows || e.code !== 'ControlLeft' || e.repeat || this._down.has(id)) return false;
        this._flushHeldCtrl();
        this._heldCtrl = { id, keysym: this.keysymFor(pick(e)) || XK.Control_L, code: e.code, at: e.timeStamp };
        this._heldCtrlTimer = setTimeout(() => this._flushHeldCtrl(), ALTGR_WINDOW_MS);
        e.preventDefault();
        return true;
    }

    // A key after a held-back Ctrl: AltRight at once means AltGr (true), else the Ctrl was real.
    _endHeldCtrl(e) {
        if (!this._heldCtrl) return false;
        if (e.code === 'AltRight' && e.timeStamp - this._heldCtrl.at < ALTGR_WINDOW_MS) {
            this._dropHeldCtrl(); // it was AltGr: the Ctrl never happened
            return true;
        }
        this._flushHeldCtrl();
        return false;
    }

    // { keysym, code } a keydown sends, or null when there is nothing to send.
    _keyToPress(e, known, altGr) {
        if (known && e.repeat) return known; // auto-repeat repeats what was pressed, whatever Shift does now
        const keysym = altGr || e.key === 'AltGraph'
            ? XK.ISO_Level3_Shift
            : this._platformKeysym(e, this.keysymFor(pick(e)) ?? langKeysym(e.code, this._mac));
        if (keysym == null) return null;
        let code = e.code;
        if (this._afterDead) {
            // A composed character (é from ´ + e): the scancode would make a scancode-driven
            // server type the plain letter, so send the keysym alone.
            this._afterDead = false;
            if (e.key.length === 1 || [...e.key].length === 1) code = '';
        }
        return { keysym, code };
    }

    // Tap Caps Lock / Num Lock first where the server's differ from the browser's.
    _syncLocks(e) {
        const caps = lockState(e, 'CapsLock');
        // macOS browsers always say Num Lock is off: unknown, never "fixed".
        const num = this._mac ? null : lockState(e, 'NumLock');
        for (const [sym, code] of this._locks.fixesBefore(e.code, caps, num)) this.tap(sym, code);
    }

    // macOS reports Caps Lock as a keydown when it turns on and a keyup when it
    // turns off: each is one whole press of the key on the server.
    _macCapsLock(e) {
        e.preventDefault();
        this._locks.fixesBefore('CapsLock', null, null);
        this.tap(XK.Caps_Lock, 'CapsLock');
    }

    _platformKeysym(e, keysym) {
        if (keysym == null) return keysym;
        if (this._windows) return windowsJapaneseKeysym(e.key) ?? keysym;
        if (!this._mac) return keysym;
        // A Mac keypad has Clear where NumLock is; the remote side is rarely a Mac.
        if (e.code === 'NumLock') return XK.Num_Lock;
        return macKeysym(keysym);
    }

    _onKeyUp(e) {
        if (!this.enabled) return;
        const id = keyId(e);
        if (!id) return;
        if (this._mac && e.code === 'CapsLock') return this._macCapsLock(e);
        // Any keyup but AltGr's own ends the wait: a held-back Ctrl was a real one.
        if (this._heldCtrl && (this._heldCtrl.id === id || e.code !== 'AltRight')) this._flushHeldCtrl();
        const known = this._down.get(id);
        if (!known) return; // never sent down (dead key, fake Ctrl, pressed before focus)
        e.preventDefault();
        this._release(id);
        this._releaseMissedKeyups(e);
    }

    // Keys whose keyup some platforms never send, released with the key that was.
    _releaseMissedKeyups(e) {
        if (this._windows && (e.code === 'ShiftLeft' || e.code === 'ShiftRight')) {
            // Windows sends no keyup for one Shift while the other is held: release both.
            this._release('ShiftLeft');
            this._release('ShiftRight');
        }
        if (this._mac && e.key === 'Meta') {
            // macOS sends no keyup for keys released while Cmd was held: release them now.
            for (const other of [...this._down.keys()]) if (!MODIFIER_FLAG[other]) this._release(other);
        }
    }

    // Send the keyup of a key that went down, if it did.
    _release(id) {
        const sent = this._down.get(id);
        if (!sent) return;
        this._down.delete(id);
        this._key(sent.keysym, false, sent.code);
    }

    _flushHeldCtrl() {
        const h = this._heldCtrl;
        if (!h) return;
        this._dropHeldCtrl();
        this._down.set(h.id, { keysym: h.keysym, code: h.code });
        this._key(h.keysym, true, h.code);
    }

    _dropHeldCtrl() {
        clearTimeout(this._heldCtrlTimer);
        this._heldCtrl = null;
    }

    _releaseStaleModifiers(e) {
        for (const [id, sent] of this._down) {
            const flag = MODIFIER_FLAG[id];
            if (flag && !e[flag]) {
                this._down.delete(id);
                this._key(sent.keysym, false, sent.code);
            }
        }
    }

    // ---------------------------------------------------------------- mouse

    _fbPoint(e) {
        return this._fbPointAt(e.clientX, e.clientY);
    }

    _fbPointAt(clientX, clientY) {
        const { width, height } = this.getSize();
        return clientToFramebuffer(clientX, clientY, this.canvas.getBoundingClientRect(), width, height);
    }

    // A button change or a wheel step: never held back, and after any waiting move.
    _pointerNow(p, mask) {
        this._mask = mask;
        this._throttle.sendNow(p.x, p.y, mask);
    }

    _onPointerDown(e) {
        // Focus first so the keyboard follows the mouse into the remote screen.
        if (document.activeElement !== this.canvas) this.canvas.focus({ preventScroll: true });
        if (e.pointerType === 'touch') return this._touchDown(e);
        e.preventDefault(); // no text selection, no middle-button autoscroll
        try { this.canvas.setPointerCapture(e.pointerId); } catch { /* pointer already gone */ }
        if (this.dragViewport) {
            // Hold the press back: a drag moves the view, a press without one is a click.
            // (More buttons pressed during it change nothing.)
            if (!this._pan) {
                this._pan = { x: e.clientX, y: e.clientY, moved: false, mask: maskFromDomButtons(e.buttons) };
            }
            return;
        }
        if (!this.enabled) return;
        this._pointerNow(this._fbPoint(e), maskFromDomButtons(e.buttons));
    }

    _onPointerMove(e) {
        if (e.pointerType === 'touch') return this._touchMove(e);
        if (this._pan) return this._panTo(e.clientX, e.clientY, DRAG_THRESHOLD_PX);
        if (!this.enabled) return;
        // A second button pressed during a drag arrives as a move with new buttons.
        const mask = maskFromDomButtons(e.buttons);
        const p = this._fbPoint(e);
        if (mask !== this._mask) return this._pointerNow(p, mask);
        this._throttle.move(p.x, p.y, mask);
    }

    _onPointerUp(e) {
        if (e.pointerType === 'touch') return this._touchUp(e);
        e.preventDefault();
        const pan = this._pan;
        if (pan && e.buttons === 0) {
            this._pan = null;
            if (pan.moved || !this.enabled) return;
            this._pointerNow(this._fbPoint(e), pan.mask); // not a drag: the click it was
        }
        if (!this.enabled || this._pan) return;
        this._pointerNow(this._fbPoint(e), maskFromDomButtons(e.buttons));
    }

    _onPointerCancel(e) {
        if (e.pointerType === 'touch') return this._touchCancel(e);
        this._pan = null;
        if (this._mask) this._pointerNow(this._pos, 0);
    }

    _onWheel(e) {
        if (!this.enabled) return;
        e.preventDefault(); // the page itself must not scroll
        const p = this._fbPoint(e);
        this._scroll(p, e.deltaX, e.deltaY, e.deltaMode);
    }

    // Each wheel step is a press and a release of buttons 4-7 at the pointer.
    _scroll(p, dx, dy, mode) {
        for (const bit of this._wheel.add(dx, dy, mode)) this._wheelStep(p, bit);
        if (p.x !== this._pos.x || p.y !== this._pos.y) this._throttle.move(p.x, p.y, this._mask);
    }

    _wheelStep(p, bit) {
        this._throttle.sendNow(p.x, p.y, this._mask | bit);
        this._throttle.sendNow(p.x, p.y, this._mask);
    }

    // ---------------------------------------------------------------- viewport drag

    /** Turn "drag viewport" on or off: drags then move the view instead of reaching the server. */
    setDragViewport(on) {
        this.dragViewport = !!on;
        this._pan = null;
    }

    // Move the view with the pointer once it has travelled `threshold` CSS pixels.
    _panTo(x, y, threshold) {
        const pan = this._pan;
        const dx = pan.x - x, dy = pan.y - y;
        if (!pan.moved && Math.abs(dx) <= threshold && Math.abs(dy) <= threshold) return;
        pan.moved = true;
        pan.x = x;
        pan.y = y;
        this.panBy(dx, dy);
    }

    // ---------------------------------------------------------------- touch
    // ./gestures.js names the gesture; here each becomes what noVNC makes of it.

    _now() {
        return this._clock.now();
    }

    _touchDown(e) {
        e.preventDefault();
        try { this.canvas.setPointerCapture(e.pointerId); } catch { /* already gone */ }
        this._feed(this._gestures.touchStart(e.pointerId, e.clientX, e.clientY, this._now()));
    }

    _touchMove(e) {
        this._feed(this._gestures.touchMove(e.pointerId, e.clientX, e.clientY, this._now()));
    }

    _touchUp(e) {
        this._feed(this._gestures.touchEnd(e.pointerId, e.clientX, e.clientY, this._now()));
    }

    _touchCancel() {
        this._feed(this._gestures.cancel());
    }

    // Act on gesture events, then wake up for the recogniser's next deadline.
    _feed(events) {
        for (const ev of events) this._onGesture(ev);
        this._clock.clear(this._gestureTimer);
        this._gestureTimer = null;
        const at = this._gestures.deadline;
        if (at === null) return;
        this._gestureTimer = this._clock.set(() => {
            this._gestureTimer = null;
            this._feed(this._gestures.tick(this._now()));
        }, Math.max(0, at - this._now()));
    }

    _onGesture(ev) {
        switch (ev.type) {
            case GESTURE.ONE_TAP: return this._tap(ev, BUTTON.LEFT);
            case GESTURE.TWO_TAP: return this._tap(ev, BUTTON.RIGHT);
            case GESTURE.THREE_TAP: return this._tap(ev, BUTTON.MIDDLE);
            case GESTURE.DRAG: return this._touchDrag(ev, BUTTON.LEFT);
            case GESTURE.LONG_PRESS: return this._touchDrag(ev, BUTTON.RIGHT);
            case GESTURE.TWO_DRAG: return this._touchScroll(ev);
            case GESTURE.PINCH: return this._touchZoom(ev);
            default: return undefined;
        }
    }

    // Where a finger points: the framebuffer pixel, and the dot that shows it.
    _touchPoint(ev) {
        this.onTouchPoint(ev.x, ev.y);
        return this._fbPointAt(ev.x, ev.y);
    }

    _tap(ev, button) {
        if (ev.phase !== 'start') return;
        // Quick taps near each other are meant for one spot (a double click must not
        // become two clicks a few pixels apart).
        const now = this._now(), last = this._lastTap;
        let at = ev;
        if (last && last.type === ev.type && now - last.at < DOUBLE_TAP_MS &&
            Math.hypot(last.x - ev.x, last.y - ev.y) < DOUBLE_TAP_PX) {
            at = last;
        } else {
            this._lastTap = { type: ev.type, x: ev.x, y: ev.y };
        }
        this._lastTap.at = now;
        const p = this._touchPoint(at);
        this._pointerNow(p, 0);
        this._pointerNow(p, button);
        this._pointerNow(p, 0);
    }

    // One finger dragging (left button) or pressed long then dragged (right button);
    // with "drag viewport" on, both move the view instead, and a long press that did
    // not move is a right click.
    _touchDrag(ev, button) {
        if (this.dragViewport) return this._touchPan(ev, button);
        const p = this._touchPoint(ev);
        if (ev.phase === 'start') {
            this._pointerNow(p, 0);
            this._pointerNow(p, button);
        } else if (ev.phase === 'move') {
            this._throttle.move(p.x, p.y, this._mask);
        } else {
            this._pointerNow(p, 0);
        }
    }

    _touchPan(ev, button) {
        if (ev.phase === 'start') {
            // A drag is already past the recogniser's threshold; a long press is not.
            this._pan = { x: ev.x, y: ev.y, moved: ev.type === GESTURE.DRAG };
        } else if (ev.phase === 'move' && this._pan) {
            this._panTo(ev.x, ev.y, DRAG_THRESHOLD_PX);
        } else if (ev.phase === 'end') {
            const pan = this._pan;
            this._pan = null;
            if (pan && !pan.moved) {
                const p = this._touchPoint(ev);
                this._pointerNow(p, button);
                this._pointerNow(p, 0);
            }
        }
    }

    // A two-finger gesture: at its start the pointer goes where the fingers are and
    // no steps are done yet (returns null); a move after a start returns the point.
    _gestureMove(ev) {
        const p = this._touchPoint(ev);
        if (ev.phase === 'start') {
            this._pointerNow(p, this._mask);
            this._gestureDone = { x: 0, y: 0 };
            return null;
        }
        return ev.phase === 'move' && this._gestureDone ? p : null;
    }

    // Two fingers dragging: a wheel step per TOUCH_SCROLL_STEP_PX, at the place
    // they started. Fingers moving down pull the content down: wheel up (button 4).
    _touchScroll(ev) {
        const p = this._gestureMove(ev);
        if (!p) return;
        const done = this._gestureDone;
        done.y = this._steps(ev.dy, done.y, TOUCH_SCROLL_STEP_PX, p, BUTTON.WHEEL_UP, BUTTON.WHEEL_DOWN);
        done.x = this._steps(ev.dx, done.x, TOUCH_SCROLL_STEP_PX, p, BUTTON.WHEEL_LEFT, BUTTON.WHEEL_RIGHT);
    }

    // Pinch: Ctrl + wheel, which zooms in most remote applications (browsers,
    // editors, image viewers); spreading the fingers zooms in (wheel up).
    _touchZoom(ev) {
        const p = this._gestureMove(ev);
        const done = this._gestureDone;
        if (!p || Math.abs(ev.spread - done.x) < TOUCH_ZOOM_STEP_PX) return;
        this._key(XK.Control_L, true, 'ControlLeft');
        done.x = this._steps(ev.spread, done.x, TOUCH_ZOOM_STEP_PX, p, BUTTON.WHEEL_UP, BUTTON.WHEEL_DOWN);
        this._key(XK.Control_L, false, 'ControlLeft');
    }

    // Send a wheel step for each whole `step` that `total` is past `done`; returns the new `done`.
    _steps(total, done, step, p, up, down) {
        let d = done;
        for (; total - d >= step; d += step) this._wheelStep(p, up);
        for (; total - d <= -step; d -= step) this._wheelStep(p, down);
        return d;
    }
}

// Identify a physical key: by code when the browser gives one, else by the key
// name (some virtual keyboards send code ""), so keydown and keyup pair up.
function keyId(e) {
    if (e.code && e.code !== 'Unidentified') return e.code;
    if (e.key && e.key !== 'Unidentified') return `key:${e.key}`;
    return null;
}

function pick(e) {
    return { key: e.key, code: e.code, location: e.location };
}
