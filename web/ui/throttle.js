// web/ui/throttle.js — at most one pointer move per MOVE_INTERVAL_MS on the wire.
//
// Needs: nothing. Pure: the clock and the timer are handed in, so tests drive time.
// A mouse reports moves at its own rate (1000 Hz gaming mice), and each one sent is
// a PointerEvent the server acts on and usually answers with screen updates; on a
// slow link they would queue up behind each other and the cursor would lag further
// and further. So moves are held back to one per interval, and the one sent is always
// the latest position. A button change is never held back or reordered: the move
// waiting before it goes first, then the change itself, both at once.

// One frame at 60 Hz: the eye does not see the pointer any finer (noVNC uses 17 ms too).
export const MOVE_INTERVAL_MS = 17;

export class MoveThrottle {
    /**
      * send(x, y, mask): puts one PointerEvent on the wire
      * now(): milliseconds; setTimer(fn, ms) -> handle; clearTimer(handle)
      */
    constructor({ send, now, setTimer, clearTimer, intervalMs = MOVE_INTERVAL_MS }) {
        this._send = send;
        this._now = now;
        this._setTimer = setTimer;
        this._clearTimer = clearTimer;
        this._interval = intervalMs;
        this._lastMoveAt = -Infinity;
        this._pending = null;   // the latest move not sent yet: [x, y, mask]
        this._timer = null;
    }

    /** A move: sent now if the last one went out an interval ago, else the latest is sent then. */
    move(x, y, mask) {
        this._pending = [x, y, mask];
        if (this._timer !== null) return;
        const wait = this._lastMoveAt + this._interval - this._now();
        if (wait <= 0) {
            this._sendPending();
            return;
        }
        this._timer = this._setTimer(() => {
            this._timer = null;
            this._sendPending();
        }, wait);
    }

    /** Anything that is not a plain move (buttons, wheel): the waiting move first, then this. */
    sendNow(x, y, mask) {
        this.flush();
        this._send(x, y, mask);
    }

    /** Send the waiting move, if any, now. */
    flush() {
        if (this._timer !== null) {
            this._clearTimer(this._timer);
            this._timer = null;
        }
        if (this._pending) this._sendPending();
    }

    /** Forget the waiting move (the session went away). */
    drop() {
        if (this._timer !== null) this._clearTimer(this._timer);
        this._timer = null;
        this._pending = null;
    }

    _sendPending() {
        const [x, y, mask] = this._pending;
        this._pending = null;
        this._lastMoveAt = this._now();
        this._send(x, y, mask);
    }
}
