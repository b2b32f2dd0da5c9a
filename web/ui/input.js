// web/ui/input.js — keyboard, mouse and touch from the page to the RFB session.
//
// Needs: a DOM (the canvas element, window, document), ./geometry.js for the pure
// arithmetic, and a `keysymFor({key, code, location})` function (from
// web/core/keysyms.js, handed in by app.js) that names the X11 keysym of a key.
// It sends through `rfb.keyEvent(keysym, down, code)` and `rfb.pointerEvent(x, y, mask)`
// of whatever session `getRfb()` returns, so one handler serves every reconnect.
//
// Rules it keeps:
//  - every key sent down is remembered with the keysym sent, and released with that
//    same keysym (Shift may have changed in between), and all of them are released
//    on blur / tab hidden / disconnect, so nothing sticks down on the server;
//  - keys that go to the server get preventDefault, Tab included; F8 leaves the
//    canvas for the toolbar (Shift+F8 sends F8), so keyboard users are never trapped;
//  - view-only (or no session) sends nothing at all.

import {
    BUTTON, WheelAccumulator, clientToFramebuffer, maskFromDomButtons,
} from './geometry.js';

// X11 keysyms used directly here (X11/keysymdef.h).
export const XK = Object.freeze({
    Tab: 0xff09, Escape: 0xff1b, Delete: 0xffff, F8: 0xffc5,
    Control_L: 0xffe3, Alt_L: 0xffe9, Super_L: 0xffeb, ISO_Level3_Shift: 0xfe03,
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

// Touch gestures, in CSS pixels and milliseconds.
const TAP_SLOP_PX = 10;
const LONG_PRESS_MS = 700;

// Modifier codes whose state the browser reports on every event; a stale "down"
// (its keyup went to another window) is released when the flag says it is up.
// AltRight is left out: as AltGr on Linux it does not set altKey.
const MODIFIER_FLAG = Object.freeze({
    ShiftLeft: 'shiftKey', ShiftRight: 'shiftKey',
    ControlLeft: 'ctrlKey', ControlRight: 'ctrlKey',
    AltLeft: 'altKey',
    MetaLeft: 'metaKey', MetaRight: 'metaKey',
});

function isMac() {
    const p = (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || '';
    return /mac/i.test(p);
}

function isWindows() {
    const p = (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || '';
    return /win/i.test(p);
}

export class Input {
    /**
      * canvas: the element showing the framebuffer (focusable, receives events)
      * getRfb(): the current RFB session or null
      * getSize(): { width, height } of the framebuffer
      * keysymFor({key, code, location}): keysym number or null
      * onLeave(): move focus out of the canvas (F8)
      * log: { debug, info, warn, error }
      */
    constructor({ canvas, getRfb, getSize, keysymFor, onLeave = () => {}, log = console }) {
        this.canvas = canvas;
        this.getRfb = getRfb;
        this.getSize = getSize;
        this.keysymFor = keysymFor;
        this.onLeave = onLeave;
        this.log = log;
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
        this._touches = new Map();    // pointerId -> { x, y } client coordinates
        this._gesture = null;         // touch state, see _touch*()
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
        if (!on) this.releaseAll();
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
        if (this._mask) {
            this._mask = 0;
            this._pointer(this._pos.x, this._pos.y, 0);
        }
        this._endGesture();
    }

    // ---------------------------------------------------------------- keyboard

    _onKeyDown(e) {
        if (e.isComposing || e.keyCode === 229) return; // IME: the text comes later, via composition
        if (e.key === 'F8' && !e.ctrlKey && !e.altKey && !e.metaKey) {
            e.preventDefault();
            if (e.shiftKey) { this.tap(XK.F8, 'F8'); return; }
            this.releaseKeys();
            this.onLeave();
            return;
        }
        if (!this.enabled) return;

        if (e.key === 'Dead') {
            // Let the browser compose: the next keydown carries the finished character.
            // Nothing is sent for the dead key itself, so its keyup is ignored too.
            this._afterDead = true;
            return;
        }

        const id = keyId(e);
        if (!id) return;
        this._releaseStaleModifiers(e);

        // Windows AltGr: hold ControlLeft back until we know it is not AltGr's fake Ctrl.
        if (this._windows && e.code === 'ControlLeft' && !e.repeat && !this._down.has(id)) {
            this._flushHeldCtrl();
            this._heldCtrl = { id, keysym: this.keysymFor(pick(e)) || XK.Control_L, code: e.code, at: e.timeStamp };
            this._heldCtrlTimer = setTimeout(() => this._flushHeldCtrl(), ALTGR_WINDOW_MS);
            e.preventDefault();
            return;
        }
        let altGr = false;
        if (this._heldCtrl) {
            if (e.code === 'AltRight' && e.timeStamp - this._heldCtrl.at < ALTGR_WINDOW_MS) {
                this._dropHeldCtrl(); // it was AltGr: the Ctrl never happened
                altGr = true;
            } else {
                this._flushHeldCtrl();
            }
        }

        let keysym;
        let code = e.code;
        const known = this._down.get(id);
        if (known && e.repeat) {
            keysym = known.keysym; // auto-repeat repeats what was pressed, whatever Shift does now
            code = known.code;
        } else if (altGr || e.key === 'AltGraph') {
            keysym = XK.ISO_Level3_Shift;
        } else {
            keysym = this.keysymFor(pick(e));
        }
        if (keysym == null) {
            this.log.debug('no keysym for', e.key, e.code);
            return;
        }
        if (this._afterDead) {
            // A composed character (é from ´ + e): the scancode would make a scancode-driven
            // server type the plain letter, so send the keysym alone.
            this._afterDead = false;
            if (e.key.length === 1 || [...e.key].length === 1) code = '';
        }
        e.preventDefault();
        if (known && !e.repeat) this._key(known.keysym, false, known.code); // lost keyup
        this._down.set(id, { keysym, code });
        this._key(keysym, true, code);
    }

    _onKeyUp(e) {
        if (!this.enabled) return;
        const id = keyId(e);
        if (!id) return;
        if (this._heldCtrl) {
            if (this._heldCtrl.id === id) {
                // A Ctrl tapped quicker than the AltGr window: press then release.
                this._flushHeldCtrl();
            } else if (e.code !== 'AltRight') {
                this._flushHeldCtrl();
            }
        }
        const known = this._down.get(id);
        if (!known) return; // never sent down (dead key, fake Ctrl, pressed before focus)
        e.preventDefault();
        this._down.delete(id);
        this._key(known.keysym, false, known.code);
        if (this._mac && e.key === 'Meta') {
            // macOS sends no keyup for keys released while Cmd was held: release them now.
            for (const [other, sent] of [...this._down]) {
                if (MODIFIER_FLAG[other]) continue;
                this._down.delete(other);
                this._key(sent.keysym, false, sent.code);
            }
        }
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
        const { width, height } = this.getSize();
        return clientToFramebuffer(e.clientX, e.clientY, this.canvas.getBoundingClientRect(), width, height);
    }

    _onPointerDown(e) {
        // Focus first so the keyboard follows the mouse into the remote screen.
        if (document.activeElement !== this.canvas) this.canvas.focus({ preventScroll: true });
        if (e.pointerType === 'touch') return this._touchDown(e);
        if (!this.enabled) return;
        e.preventDefault(); // no text selection, no middle-button autoscroll
        try { this.canvas.setPointerCapture(e.pointerId); } catch { /* pointer already gone */ }
        this._mask = maskFromDomButtons(e.buttons);
        const p = this._fbPoint(e);
        this._pointer(p.x, p.y, this._mask);
    }

    _onPointerMove(e) {
        if (e.pointerType === 'touch') return this._touchMove(e);
        if (!this.enabled) return;
        // A second button pressed during a drag arrives as a move with new buttons.
        this._mask = maskFromDomButtons(e.buttons);
        const p = this._fbPoint(e);
        if (p.x === this._pos.x && p.y === this._pos.y && this._mask === this._lastMoveMask) return;
        this._lastMoveMask = this._mask;
        this._pointer(p.x, p.y, this._mask);
    }

    _onPointerUp(e) {
        if (e.pointerType === 'touch') return this._touchUp(e);
        if (!this.enabled) return;
        e.preventDefault();
        this._mask = maskFromDomButtons(e.buttons);
        const p = this._fbPoint(e);
        this._pointer(p.x, p.y, this._mask);
    }

    _onPointerCancel(e) {
        if (e.pointerType === 'touch') return this._touchCancel(e);
        if (this._mask) {
            this._mask = 0;
            this._pointer(this._pos.x, this._pos.y, 0);
        }
    }

    _onWheel(e) {
        if (!this.enabled) return;
        e.preventDefault(); // the page itself must not scroll
        const p = this._fbPoint(e);
        this._scroll(p, e.deltaX, e.deltaY, e.deltaMode);
    }

    // Each wheel step is a press and a release of buttons 4-7 at the pointer.
    _scroll(p, dx, dy, mode) {
        for (const bit of this._wheel.add(dx, dy, mode)) {
            this._pointer(p.x, p.y, this._mask | bit);
            this._pointer(p.x, p.y, this._mask);
        }
        if (p.x !== this._pos.x || p.y !== this._pos.y) this._pointer(p.x, p.y, this._mask);
    }

    // ---------------------------------------------------------------- touch
    // One finger: tap = left click, hold still = right click, drag = left drag.
    // Two fingers: vertical (and horizontal) drag = wheel scroll.

    _touchDown(e) {
        e.preventDefault();
        this._touches.set(e.pointerId, { x: e.clientX, y: e.clientY });
        if (!this.enabled) return;
        try { this.canvas.setPointerCapture(e.pointerId); } catch { /* already gone */ }
        if (this._touches.size === 1) {
            const start = this._fbPoint(e);
            this._gesture = {
                kind: 'pending', startX: e.clientX, startY: e.clientY, start,
                timer: setTimeout(() => this._longPress(), LONG_PRESS_MS),
            };
        } else if (this._touches.size === 2 && this._gesture && this._gesture.kind === 'pending') {
            clearTimeout(this._gesture.timer);
            const c = this._centroid();
            this._wheel.reset();
            this._gesture = { kind: 'scroll', lastX: c.x, lastY: c.y };
        }
    }

    _touchMove(e) {
        const t = this._touches.get(e.pointerId);
        if (!t) return;
        t.x = e.clientX;
        t.y = e.clientY;
        const g = this._gesture;
        if (!this.enabled || !g) return;
        if (g.kind === 'pending') {
            if (Math.hypot(e.clientX - g.startX, e.clientY - g.startY) < TAP_SLOP_PX) return;
            clearTimeout(g.timer);
            g.kind = 'drag';
            this._mask = BUTTON.LEFT;
            this._pointer(g.start.x, g.start.y, 0);
            this._pointer(g.start.x, g.start.y, this._mask);
        }
        if (g.kind === 'drag') {
            const p = this._fbPoint(e);
            this._pointer(p.x, p.y, this._mask);
        } else if (g.kind === 'scroll') {
            const c = this._centroid();
            // Fingers moving up push the content up: that is scrolling down.
            const dx = g.lastX - c.x, dy = g.lastY - c.y;
            g.lastX = c.x;
            g.lastY = c.y;
            const { width, height } = this.getSize();
            const p = clientToFramebuffer(c.x, c.y, this.canvas.getBoundingClientRect(), width, height);
            this._scroll(p, dx, dy, 0);
        }
    }

    _touchUp(e) {
        this._touches.delete(e.pointerId);
        const g = this._gesture;
        if (!g) return;
        if (g.kind === 'pending') {
            clearTimeout(g.timer);
            const p = g.start;
            this._pointer(p.x, p.y, 0);
            this._pointer(p.x, p.y, BUTTON.LEFT);
            this._pointer(p.x, p.y, 0);
            this._gesture = { kind: 'done' };
        } else if (g.kind === 'drag') {
            this._mask = 0;
            const p = this._fbPoint(e);
            this._pointer(p.x, p.y, 0);
            this._gesture = { kind: 'done' };
        }
        if (this._touches.size === 0) this._gesture = null;
    }

    _touchCancel(e) {
        this._touches.delete(e.pointerId);
        if (this._touches.size === 0) this._endGesture();
    }

    _longPress() {
        const g = this._gesture;
        if (!g || g.kind !== 'pending') return;
        const p = g.start;
        this._pointer(p.x, p.y, 0);
        this._pointer(p.x, p.y, BUTTON.RIGHT);
        this._pointer(p.x, p.y, 0);
        g.kind = 'done';
    }

    _endGesture() {
        const g = this._gesture;
        if (g && g.timer) clearTimeout(g.timer);
        if (g && g.kind === 'drag' && this._mask) {
            this._mask = 0;
            this._pointer(this._pos.x, this._pos.y, 0);
        }
        this._gesture = null;
        this._touches.clear();
    }

    _centroid() {
        let x = 0, y = 0;
        for (const t of this._touches.values()) { x += t.x; y += t.y; }
        const n = this._touches.size || 1;
        return { x: x / n, y: y / n };
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
