// web/ui/gestures.js — touch points in, gestures out: the touch vocabulary of
// noVNC (tap, two- and three-finger tap, drag, long press, two-finger drag, pinch).
//
// Needs: nothing. Pure: no DOM and no timers. Every call takes the time `t` in
// milliseconds (any monotonic clock); when `deadline` is not null the caller must
// call tick(t) at or after that time (a long press happens while nothing moves).
// Each call returns a list of events, usually empty:
//   { phase: 'start' | 'move' | 'end', type: GESTURE.*, x, y, dx, dy, spread }
//  - taps arrive as a start and an end at once, at the fingers' mean start point;
//  - drag and longpress carry the finger's point (the start event: where it went down);
//  - twodrag and pinch carry the fingers' mean start point in x, y (the place the
//    wheel turns), the mean finger movement since then in dx, dy, and for pinch the
//    change in distance between the two fingers in spread (> 0: spreading apart).
// A finger added to a gesture already under way is ignored; lifting any finger ends it.

export const GESTURE = Object.freeze({
    ONE_TAP: 'onetap', TWO_TAP: 'twotap', THREE_TAP: 'threetap',
    DRAG: 'drag', LONG_PRESS: 'longpress', TWO_DRAG: 'twodrag', PINCH: 'pinch',
});

const TAPS = [GESTURE.ONE_TAP, GESTURE.TWO_TAP, GESTURE.THREE_TAP];

// Limits, in CSS pixels and milliseconds (noVNC's values, so hands used to it agree).
// A finger that moved less than this is still tapping or pressing: fingertips wobble.
export const MOVE_THRESHOLD_PX = 50;
// Fingers of one gesture land (and lift) within this of each other.
export const MULTITOUCH_MS = 250;
// A tap held longer than this was not a tap.
export const TAP_MAX_MS = 1000;
// One finger held still this long is a long press.
export const LONG_PRESS_MS = 1000;
// After one of two fingers moved, wait this long for the other before deciding
// between a two-finger drag and a pinch.
export const TWO_TOUCH_MS = 50;

const MAX_FINGERS = 3;

function mean(points, key) {
    return points.reduce((s, p) => s + p[key], 0) / points.length;
}

export class GestureRecognizer {
    constructor() {
        this._reset();
    }

    /** When tick() must next be called, or null. */
    get deadline() {
        if (this._state !== 'pending') return null;
        const times = [this._longPressAt, this._decideAt].filter((v) => v !== null);
        return times.length ? Math.min(...times) : null;
    }

    touchStart(id, x, y, t) {
        if (this._state === 'active' || this._state === 'ignore') {
            this._ignored.add(id);
            return [];
        }
        if (this._state === 'idle') {
            this._state = 'pending';
            this._firstAt = t;
            this._longPressAt = t + LONG_PRESS_MS;
        } else if (t - this._firstAt > MULTITOUCH_MS || this._touches.size >= MAX_FINGERS ||
                   this._releasedAt !== null) {
            // Too late, too many, or landing while others lift: not one gesture.
            this._state = 'ignore';
            this._ignored.add(id);
            return [];
        }
        const touch = { startX: x, startY: y, x, y };
        this._touches.set(id, touch);
        this._starts.push(touch);
        this._fingers = this._touches.size;
        if (this._fingers > 1) this._longPressAt = null;
        return [];
    }

    touchMove(id, x, y, t) {
        const touch = this._touches.get(id);
        if (!touch) return [];
        touch.x = x;
        touch.y = y;
        if (this._state === 'active') return [this._event('move')];
        if (this._state !== 'pending' || !this._moved(touch)) return [];
        this._longPressAt = null;
        if (this._releasedAt !== null) {
            this._state = 'ignore'; // the last finger of a tap gone wrong: not a drag
            return [];
        }
        if (this._fingers === 1) return this._begin(GESTURE.DRAG);
        if (this._fingers === 2) {
            if ([...this._touches.values()].every((p) => this._moved(p))) return this._decideTwo();
            if (this._decideAt === null) this._decideAt = t + TWO_TOUCH_MS;
            return [];
        }
        this._state = 'ignore'; // three fingers moving: nothing of ours
        return [];
    }

    touchEnd(id, x, y, t) {
        if (this._ignored.delete(id)) return this._maybeIdle([]);
        const touch = this._touches.get(id);
        if (!touch) return [];
        touch.x = x;
        touch.y = y;
        let out = [];
        if (this._state === 'active') {
            out = [this._event('end')];
            this._state = 'ignore';
        } else if (this._state === 'pending') {
            if (this._releasedAt === null) this._releasedAt = t;
            this._longPressAt = null;
            this._decideAt = null;
            if (this._touches.size === 1) out = this._tapAt(t);
        }
        this._touches.delete(id);
        return this._maybeIdle(out);
    }

    /** The browser took the touches away (pointercancel): end whatever was under way. */
    cancel() {
        const out = this._state === 'active' ? [this._event('end')] : [];
        this._reset();
        return out;
    }

    tick(t) {
        if (this._state !== 'pending') return [];
        if (this._longPressAt !== null && t >= this._longPressAt && this._touches.size === 1) {
            this._longPressAt = null;
            return this._begin(GESTURE.LONG_PRESS);
        }
        if (this._decideAt !== null && t >= this._decideAt && this._touches.size === 2) {
            return this._decideTwo();
        }
        return [];
    }

    // ---------------------------------------------------------------- internals

    _reset() {
        this._state = 'idle';        // idle | pending | active | ignore
        this._touches = new Map();   // id -> { startX, startY, x, y }
        this._starts = [];           // every finger of this gesture, lifted ones too
        this._ignored = new Set();
        this._fingers = 0;           // most fingers down at once
        this._firstAt = 0;
        this._releasedAt = null;
        this._longPressAt = null;
        this._decideAt = null;
        this._type = null;
        this._origin = null;         // { x, y, distance } when a two-finger gesture began
    }

    _maybeIdle(out) {
        if (this._touches.size === 0 && this._ignored.size === 0) this._reset();
        return out;
    }

    _moved(p) {
        return Math.hypot(p.x - p.startX, p.y - p.startY) >= MOVE_THRESHOLD_PX;
    }

    _tapAt(t) {
        const type = TAPS[this._fingers - 1];
        if (!type || t - this._firstAt > TAP_MAX_MS || t - this._releasedAt > MULTITOUCH_MS) return [];
        const x = mean(this._starts, 'startX'), y = mean(this._starts, 'startY');
        const e = { type, x, y, dx: 0, dy: 0, spread: 0 };
        return [{ phase: 'start', ...e }, { phase: 'end', ...e }];
    }

    _decideTwo() {
        this._decideAt = null;
        const [a, b] = [...this._touches.values()];
        const before = Math.hypot(a.startX - b.startX, a.startY - b.startY);
        const now = Math.hypot(a.x - b.x, a.y - b.y);
        const moved = Math.hypot((a.x - a.startX + b.x - b.startX) / 2, (a.y - a.startY + b.y - b.startY) / 2);
        // Fingers that part or close more than they travel together are pinching.
        return this._begin(Math.abs(now - before) > moved ? GESTURE.PINCH : GESTURE.TWO_DRAG);
    }

    _begin(type) {
        this._state = 'active';
        this._type = type;
        const points = [...this._touches.values()];
        const [a, b] = points;
        this._origin = {
            x: mean(points, 'startX'), y: mean(points, 'startY'),
            distance: b ? Math.hypot(a.startX - b.startX, a.startY - b.startY) : 0,
        };
        const start = { ...this._event('start'), dx: 0, dy: 0, spread: 0 };
        if (type === GESTURE.DRAG || type === GESTURE.LONG_PRESS) {
            start.x = a.startX;
            start.y = a.startY;
        }
        return type === GESTURE.LONG_PRESS ? [start] : [start, this._event('move')];
    }

    _event(phase) {
        const points = [...this._touches.values()];
        const o = this._origin;
        if (this._type === GESTURE.DRAG || this._type === GESTURE.LONG_PRESS) {
            const p = points[0];
            return { phase, type: this._type, x: p.x, y: p.y, dx: p.x - p.startX, dy: p.y - p.startY, spread: 0 };
        }
        const [a, b] = points;
        const spread = b ? Math.hypot(a.x - b.x, a.y - b.y) - o.distance : 0;
        return {
            phase, type: this._type, x: o.x, y: o.y,
            dx: mean(points, 'x') - o.x, dy: mean(points, 'y') - o.y, spread,
        };
    }
}
