// web/ui/cursor.js — the local mouse cursor over the remote screen.
//
// Needs: a DOM (document.createElement('canvas')) and the canvas element to style.
// The server's cursor (RFB Cursor pseudo-encoding, delivered by rfb as a 'cursor'
// event with RGBA pixels) becomes a CSS cursor from a data: URL, so the browser
// moves it with no latency. show_dot replaces a missing or fully transparent
// cursor with a small dot, so the user can still see where the pointer is.
// A touch screen has no pointer to see at all: after a gesture aims the remote
// pointer, showTouchDot() marks the spot with a dot element over the canvas (the
// element's parent must be positioned; vnc.html's .screen is).

// Browsers ignore CSS cursor images larger than this (Chrome and Firefox: 128).
const MAX_CSS_CURSOR = 128;

function dataUrlFromRGBA(width, height, rgba) {
    const c = document.createElement('canvas');
    c.width = width;
    c.height = height;
    const ctx = c.getContext('2d');
    const img = ctx.createImageData(width, height);
    img.data.set(rgba.subarray ? rgba.subarray(0, width * height * 4) : rgba.slice(0, width * height * 4));
    ctx.putImageData(img, 0, 0);
    return c.toDataURL('image/png');
}

function isInvisible(rgba, count) {
    for (let i = 3; i < count * 4; i += 4) if (rgba[i] !== 0) return false;
    return true;
}

// A 5x5 dot: white centre, black ring, readable on any background.
function dotRGBA() {
    const size = 5, out = new Uint8ClampedArray(size * size * 4);
    for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
            const d = Math.max(Math.abs(x - 2), Math.abs(y - 2));
            const i = (y * size + x) * 4;
            if (d === 2 && (x === 0 || x === 4) && (y === 0 || y === 4)) continue; // round the corners
            const v = d <= 1 ? 255 : 0;
            out[i] = out[i + 1] = out[i + 2] = v;
            out[i + 3] = 255;
        }
    }
    return out;
}

export class CursorView {
    constructor(element, { showDot = false } = {}) {
        this.element = element;
        this.showDot = showDot;
        this._dot = null;
        this._touchDot = null;
        this.reset();
    }

    // Before the server sends a cursor (or when it cannot), show a dot if asked,
    // else the ordinary arrow: a server without the Cursor pseudo-encoding draws
    // its cursor into the framebuffer, and hiding ours would leave the user lost.
    reset() {
        this.element.style.cursor = this.showDot ? this._dotCss() : 'default';
    }

    // {width, height, hotX, hotY, rgba} from rfb's 'cursor' event.
    set({ width, height, hotX = 0, hotY = 0, rgba }) {
        const count = width * height;
        if (!count || !rgba || rgba.length < count * 4 || isInvisible(rgba, count)) {
            this.element.style.cursor = this.showDot ? this._dotCss() : 'none';
            return;
        }
        if (width > MAX_CSS_CURSOR || height > MAX_CSS_CURSOR) {
            this.element.style.cursor = 'default';
            return;
        }
        const x = Math.min(Math.max(0, hotX), width - 1);
        const y = Math.min(Math.max(0, hotY), height - 1);
        this.element.style.cursor = `url("${dataUrlFromRGBA(width, height, rgba)}") ${x} ${y}, default`;
    }

    /** Mark where a finger aimed the remote pointer (client coordinates). */
    showTouchDot(clientX, clientY) {
        const box = this.element.parentElement;
        if (!box) return;
        if (!this._touchDot) {
            this._touchDot = document.createElement('div');
            this._touchDot.className = 'touch-dot';
            this._touchDot.setAttribute('aria-hidden', 'true');
            box.appendChild(this._touchDot);
        }
        const r = box.getBoundingClientRect();
        const x = clientX - r.left + box.scrollLeft, y = clientY - r.top + box.scrollTop;
        this._touchDot.style.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)`;
        this._touchDot.hidden = false;
    }

    /** A mouse is back (or the session ended): its own cursor shows the spot. */
    hideTouchDot() {
        if (this._touchDot) this._touchDot.hidden = true;
    }

    _dotCss() {
        if (!this._dot) this._dot = `url("${dataUrlFromRGBA(5, 5, dotRGBA())}") 2 2, default`;
        return this._dot;
    }
}
