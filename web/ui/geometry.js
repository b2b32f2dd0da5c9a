// web/ui/geometry.js — pure arithmetic behind pointer input and scaling.
// Needs: nothing.
//
// No DOM access: input.js and app.js pass in numbers (event fields, element
// rectangles) and get numbers back, so tests/js/geometry.test.mjs runs this in Node.

// RFB pointer button mask bits (RFC 6143 section 7.5.5): button N is bit N-1.
export const BUTTON = Object.freeze({
    LEFT: 1, MIDDLE: 2, RIGHT: 4,
    WHEEL_UP: 8, WHEEL_DOWN: 16, WHEEL_LEFT: 32, WHEEL_RIGHT: 64,
    // Buttons 8 and 9 (X11's back and forward): only with ExtendedMouseButtons,
    // which rfb.js sends when the server has confirmed it and drops otherwise.
    BACK: 0x80, FORWARD: 0x100,
});

/**
  * DOM MouseEvent.buttons (1 left, 2 right, 4 middle, 8 back, 16 forward) -> RFB
  * mask (1 left, 2 middle, 4 right, 0x80 back, 0x100 forward).
  */
export function maskFromDomButtons(buttons) {
    let mask = 0;
    if (buttons & 1) mask |= BUTTON.LEFT;
    if (buttons & 2) mask |= BUTTON.RIGHT;
    if (buttons & 4) mask |= BUTTON.MIDDLE;
    if (buttons & 8) mask |= BUTTON.BACK;
    if (buttons & 16) mask |= BUTTON.FORWARD;
    return mask;
}

/** DOM MouseEvent.button (0 left, 1 middle, 2 right) -> RFB mask bit, or 0. */
export function maskFromDomButton(button) {
    return [BUTTON.LEFT, BUTTON.MIDDLE, BUTTON.RIGHT][button] || 0;
}

/**
  * Map a client (CSS pixel) point over an element showing the framebuffer to a
  * framebuffer pixel. `rect` is the element's getBoundingClientRect(); the element
  * may be scaled by CSS. The result is clamped so a drag that leaves the canvas
  * still lands on the edge instead of at a coordinate the server must reject.
  */
export function clientToFramebuffer(clientX, clientY, rect, fbWidth, fbHeight) {
    if (!(fbWidth > 0 && fbHeight > 0 && rect.width > 0 && rect.height > 0)) return { x: 0, y: 0 };
    const x = Math.floor((clientX - rect.left) * fbWidth / rect.width);
    const y = Math.floor((clientY - rect.top) * fbHeight / rect.height);
    return {
        x: Math.min(fbWidth - 1, Math.max(0, x)),
        y: Math.min(fbHeight - 1, Math.max(0, y)),
    };
}

/** Largest size of fbW x fbH that fits boxW x boxH with the aspect ratio kept. */
export function fitSize(fbWidth, fbHeight, boxWidth, boxHeight) {
    if (!(fbWidth > 0 && fbHeight > 0) || !(boxWidth > 0 && boxHeight > 0)) {
        return { width: fbWidth, height: fbHeight, scale: 1 };
    }
    const scale = Math.min(boxWidth / fbWidth, boxHeight / fbHeight);
    return {
        width: Math.max(1, Math.floor(fbWidth * scale)),
        height: Math.max(1, Math.floor(fbHeight * scale)),
        scale,
    };
}

// WheelEvent.deltaMode values.
export const DELTA_PIXEL = 0;
export const DELTA_LINE = 1;
export const DELTA_PAGE = 2;

// One wheel "click" on the server is this many pixels of smooth scrolling. Mice that
// report lines give 3 lines a notch (Firefox), so 3 * LINE_PX is just over one step.
export const WHEEL_STEP_PX = 50;
export const WHEEL_LINE_PX = 18;
export const WHEEL_PAGE_PX = 400;
// A single event never turns into more clicks than this: page-mode deltas or a
// flung touchpad would otherwise queue hundreds of press/release pairs.
export const WHEEL_MAX_STEPS = 10;

/**
  * Collects smooth-scroll deltas and hands out whole wheel steps.
  * add() returns a list of RFB mask bits, one per press+release pair to send.
  * A change of direction drops the remainder, so reversing feels immediate.
  */
export class WheelAccumulator {
    constructor({ stepPx = WHEEL_STEP_PX, linePx = WHEEL_LINE_PX, pagePx = WHEEL_PAGE_PX } = {}) {
        this.stepPx = stepPx;
        this.linePx = linePx;
        this.pagePx = pagePx;
        this.x = 0;
        this.y = 0;
    }

    reset() { this.x = 0; this.y = 0; }

    add(deltaX, deltaY, deltaMode = DELTA_PIXEL) {
        const unit = deltaMode === DELTA_LINE ? this.linePx : deltaMode === DELTA_PAGE ? this.pagePx : 1;
        const dx = (deltaX || 0) * unit;
        const dy = (deltaY || 0) * unit;
        if (dx && Math.sign(dx) !== Math.sign(this.x)) this.x = 0;
        if (dy && Math.sign(dy) !== Math.sign(this.y)) this.y = 0;
        this.x += dx;
        this.y += dy;
        const out = [];
        out.push(...this._take('y', BUTTON.WHEEL_UP, BUTTON.WHEEL_DOWN));
        out.push(...this._take('x', BUTTON.WHEEL_LEFT, BUTTON.WHEEL_RIGHT));
        return out;
    }

    _take(axis, negButton, posButton) {
        const steps = Math.trunc(this[axis] / this.stepPx);
        if (steps === 0) return [];
        this[axis] -= steps * this.stepPx;
        const n = Math.min(Math.abs(steps), WHEEL_MAX_STEPS);
        if (Math.abs(steps) > WHEEL_MAX_STEPS) this[axis] = 0;
        return new Array(n).fill(steps < 0 ? negButton : posButton);
    }
}
