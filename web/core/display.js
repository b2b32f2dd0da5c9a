// web/core/display.js — Display: the client's framebuffer as RGBA bytes, with
// dirty-box tracking, an optional canvas it presents to, and ordered
// asynchronous image rectangles.
// Needs: ./pixelformat.js (packed-colour helpers). Never touches window or
// document; the canvas and the image decoder are handed in, so it runs in Node.
//
// Ordering: a Tight JPEG rectangle is decoded asynchronously (decodeImage returns
// a Promise), but RFB rectangles must land in wire order -- a CopyRect after a
// JPEG copies the JPEG's pixels. So while any image is pending, every later
// operation is queued (with a private copy of its source bytes, because decoders
// pass views into the receive queue) and applied after the image, in order.
// Image decodes themselves start at once, so several can be in flight.
//
// Presenting: the buffer is a back buffer. The canvas is touched only by
// present(), which rfb.js calls once per FramebufferUpdate, after its last
// rectangle; queued behind pending images like any operation, so a frame the
// user sees is always a whole update with every image of it applied.
//
// Decoded pictures (JPEG) are not copied into the buffer: present() draws them
// onto the canvas (drawImage) after putting the buffer's changed pixels, and
// from then on the canvas, not the buffer, holds those areas ("canvas-held").
// The two never disagree on what is shown: an operation that writes an area
// takes it back (a picture still waiting for present() is read into the buffer
// first, so later writes over it keep wire order), one that reads an area
// (CopyRect's source) first reads canvas-held pixels back from the canvas, and
// present() never puts buffer pixels over a canvas-held area. Reading a
// decoded picture back costs as much as decoding it; this way it happens only
// when a later rectangle overlaps a picture inside the same update.

import { packRGB, LITTLE_ENDIAN } from './pixelformat.js';

// ImageData exists wherever a canvas does; present() only looks for it when one was
// handed in, so this module still loads in Node.
/* global ImageData */

const OPAQUE = LITTLE_ENDIAN ? 0xff000000 : 0x000000ff;
// Rows up to this many pixels are copied with plain loops: a subarray() per row
// (an allocation) plus set() costs more than the copy for tile-sized rows.
const NARROW = 32;
// More canvas-held rectangles than this (they fragment as pixel rectangles
// cut into them) and they are read back into the buffer at once.
const MAX_CANVAS_HELD = 256;

export class Display {
    // decodeImage(mime, bytes) resolves to a drawable picture (ImageBitmap,
    // VideoFrame: drawn by present(), then closed) or to decoded pixels
    // { width, height, data: RGBA, opaque } (copied into the buffer).
    // readPicture(picture, w, h) returns a picture's RGBA pixels, for the rare
    // reads described at the top; by default through a scratch canvas.
    constructor({ canvas = null, decodeImage = null, onError = null, onPresent = null, readPicture = null } = {}) {
        this._canvas = canvas;
        this._ctx = null;
        this._imageData = null;
        this._decodeImage = decodeImage;
        // Called with an Error when a queued image fails to decode; the
        // rectangle is then left as it was and later operations still apply.
        this._onError = onError;
        // Called with the changed box (or null) each time a frame is presented.
        this._onPresent = onPresent;
        this._width = 0;
        this._height = 0;
        this._alloc(0, 0);
        this._clearDirty();
        this._queue = [];        // pending operations, applied strictly in order
        this._queueHead = 0;
        this._idleWaiters = [];
        this._readPicture = readPicture || readPictureOnScratch;
        this._pictures = [];     // [x1, y1, x2, y2, picture]: drawn at the next present, in order
        this._held = [];         // [x1, y1, x2, y2]: canvas-held areas, disjoint
        this._mixed = false;     // either list non-empty: pixel operations must claim their area
        this._shown = null;      // the box present() reports, buffer and pictures together
    }

    get width() { return this._width; }
    get height() { return this._height; }
    // The whole picture as RGBA bytes (canvas-held areas are read back first).
    get buffer() {
        this._settle();
        return this._buffer;
    }

    // True while operations wait behind an image decode.
    get pending() { return this._queueHead < this._queue.length; }

    // Resolves once every queued operation has been applied.
    whenIdle() {
        if (!this.pending) return Promise.resolve();
        return new Promise((resolve) => this._idleWaiters.push(resolve));
    }

    // The region changed since the last present, or null.
    get dirty() {
        const box = this._dirtyBox();
        if (!this._pictures.length) return box;
        let [x1, y1, x2, y2] = box ? [box.x, box.y, box.x + box.width, box.y + box.height]
            : [Infinity, Infinity, -Infinity, -Infinity];
        for (const p of this._pictures) {
            x1 = Math.min(x1, p[0]); y1 = Math.min(y1, p[1]);
            x2 = Math.max(x2, p[2]); y2 = Math.max(y2, p[3]);
        }
        return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
    }

    // The buffer's own changed box (pixel operations only), or null.
    _dirtyBox() {
        if (this._dx2 <= this._dx1 || this._dy2 <= this._dy1) return null;
        return { x: this._dx1, y: this._dy1, width: this._dx2 - this._dx1, height: this._dy2 - this._dy1 };
    }

    getPixel(x, y) {
        this._settle();
        const i = (y * this._width + x) * 4;
        const b = this._buffer;
        return [b[i], b[i + 1], b[i + 2], b[i + 3]];
    }

    // ---- operations (each is applied now, or queued behind a pending image) ----

    resize(w, h) {
        // Queued too: rectangles sent before the resize must be drawn at the old size.
        if (this.pending) return this._enqueue(() => this._resize(w, h));
        this._resize(w, h);
    }

    fillRect(x, y, w, h, r, g, b) {
        this.fillRectU32(x, y, w, h, packRGB(r, g, b));
    }

    // Fill with a packed colour (see packRGB); the form decoders use.
    fillRectU32(x, y, w, h, colour) {
        if (this.pending) return this._enqueue(() => this._fill(x, y, w, h, colour));
        this._fill(x, y, w, h, colour);
    }

    // 4 bytes per pixel, R,G,B,A; A is forced to 255. stride is in bytes.
    blitRGBA(x, y, w, h, rgba, offset = 0, stride = w * 4) {
        if (this.pending) {
            const copy = compact(rgba, offset, stride, w * 4, h);
            return this._enqueue(() => this._blit4(x, y, w, h, copy, 0, w * 4));
        }
        this._blit4(x, y, w, h, rgba, offset, stride);
    }

    // 4 bytes per pixel R,G,B,X as sent in the default 32 bpp format. Same layout
    // as RGBA once A is forced, so one routine serves both.
    blitRGBX(x, y, w, h, bytes, offset = 0, stride = w * 4) {
        this.blitRGBA(x, y, w, h, bytes, offset, stride);
    }

    // 3 bytes per pixel R,G,B (Tight/ZRLE compressed pixels). stride in bytes.
    blitRGB(x, y, w, h, bytes, offset = 0, stride = w * 3) {
        if (this.pending) {
            const copy = compact(bytes, offset, stride, w * 3, h);
            return this._enqueue(() => this._blitBytes(x, y, w, h, copy, 0, w * 3, 3));
        }
        this._blitBytes(x, y, w, h, bytes, offset, stride, 3);
    }

    // Packed opaque pixels (Uint32Array, see packRGB), stride in pixels. Decoders
    // build tiles this way in scratch memory and hand them over in one call.
    blitU32(x, y, w, h, pixels, offset = 0, stride = w) {
        if (this.pending) {
            const copy = new Uint32Array(w * h);
            for (let row = 0; row < h; row++) {
                copy.set(pixels.subarray(offset + row * stride, offset + row * stride + w), row * w);
            }
            return this._enqueue(() => this._blitU32(x, y, w, h, copy, 0, w));
        }
        this._blitU32(x, y, w, h, pixels, offset, stride);
    }

    copyRect(srcX, srcY, dstX, dstY, w, h) {
        if (this.pending) return this._enqueue(() => this._copy(srcX, srcY, dstX, dstY, w, h));
        this._copy(srcX, srcY, dstX, dstY, w, h);
    }

    // Asynchronous image (JPEG from Tight). The decode starts now; the pixels are
    // applied in order relative to every other operation.
    imageRect(x, y, w, h, mime, bytes) {
        if (!this._decodeImage) throw new Error('Display: image rectangle but no decodeImage was given');
        // A copy: bytes is usually a view into the receive queue.
        const data = bytes.slice();
        let promise;
        try {
            promise = Promise.resolve(this._decodeImage(mime, data));
        } catch (err) {
            promise = Promise.reject(err);
        }
        this.pictureRect(x, y, w, h, promise, mime === 'image/jpeg');
    }

    // Like imageRect, for a decoder that makes its own pictures (H.264): `promise`
    // resolves to {width, height, data: RGBA, opaque?}; queued in order the same way.
    // opaque: the picture has no alpha (JPEG); otherwise (PNG) it is drawn over
    // black, so transparency never lets an older picture show through.
    pictureRect(x, y, w, h, promise, opaque = false) {
        const entry = { image: true, x, y, w, h, opaque, done: false, result: null, error: null };
        promise.then((result) => { entry.result = result; }, (err) => { entry.error = err; })
            .then(() => { entry.done = true; this._drain(); });
        this._queue.push(entry);
    }

    // Shows the buffer as it stands once every operation before this call has
    // been applied: at once (returns true) or, while images are pending, after
    // them (returns false; whenIdle() resolves after the present). onPresent(box)
    // is called each time, with the box that changed since the last present.
    present() {
        if (this.pending) {
            this._enqueue(() => this._present());
            return false;
        }
        this._present();
        return true;
    }

    // Pushes the changed pixels, then the pictures, to the canvas (if any) and
    // returns the box that changed (or null).
    _present() {
        const box = this.dirty;
        if (this._onPresent) this._onPresent(box);
        if (!box || !this._canvas || this._width === 0 || this._height === 0) {
            this._settle();   // no canvas to hold pictures: they go into the buffer
            this._clearDirty();
            return box;
        }
        if (this._canvas.width !== this._width || this._canvas.height !== this._height) {
            // Resized here, not in resize(): a canvas blanks when its size is set.
            this._canvas.width = this._width;
            this._canvas.height = this._height;
        }
        if (!this._ctx) this._ctx = this._canvas.getContext('2d');
        this._putPixels();
        for (const [x1, y1, x2, y2, picture, opaque] of this._pictures) {
            if (!opaque) {
                this._ctx.fillStyle = '#000';
                this._ctx.fillRect(x1, y1, x2 - x1, y2 - y1);
            }
            this._ctx.drawImage(picture, 0, 0, x2 - x1, y2 - y1, x1, y1, x2 - x1, y2 - y1);
            closePicture(picture);
            this._held.push([x1, y1, x2, y2]);
        }
        this._pictures = [];
        this._clearDirty();
        if (this._held.length > MAX_CANVAS_HELD) this._readBackHeld();
        this._mixed = this._held.length > 0;
        return box;
    }

    // putImageData of the buffer's changed box, minus the canvas-held areas and
    // the pictures about to be drawn (pixels there would be stale or wasted).
    _putPixels() {
        const box = this._dirtyBox();
        if (!box) return;
        if (!this._imageData) {
            // Wrap our own buffer when ImageData can be constructed (no copy);
            // otherwise fall back to a context-made one and copy the dirty rows.
            this._imageData = typeof ImageData === 'function'
                ? new ImageData(this._buffer, this._width, this._height)
                : this._ctx.createImageData(this._width, this._height);
        }
        let pieces = [[box.x, box.y, box.x + box.width, box.y + box.height]];
        for (const r of this._held) pieces = subtractAll(pieces, r);
        for (const r of this._pictures) pieces = subtractAll(pieces, r);
        const data = this._imageData.data;
        for (const [x1, y1, x2, y2] of pieces) {
            if (data !== this._buffer) {
                for (let row = y1; row < y2; row++) {
                    const start = (row * this._width + x1) * 4;
                    data.set(this._buffer.subarray(start, start + (x2 - x1) * 4), start);
                }
            }
            this._ctx.putImageData(this._imageData, 0, 0, x1, y1, x2 - x1, y2 - y1);
        }
    }

    // ---- canvas-held areas and pictures ----

    // A decoded picture for x,y,w,h: drawn at the next present, in order.
    _addPicture(x, y, w, h, picture, opaque) {
        const c = this._clip(x, y, w, h);
        if (!c) return closePicture(picture);
        // Whatever the canvas held there is replaced by this picture.
        this._held = subtractAll(this._held, c);
        this._pictures.push([c[0], c[1], c[2], c[3], picture, opaque]);
        this._mixed = true;
    }

    // A pixel operation is about to write x1,y1-x2,y2 in the buffer: pictures
    // of this update under it go into the buffer first (wire order), and the
    // canvas no longer holds any of it.
    _claim(x1, y1, x2, y2) {
        const r = [x1, y1, x2, y2];
        if (this._pictures.length) this._readPictures(r);
        if (this._held.length) this._held = subtractAll(this._held, r);
        this._mixed = this._held.length > 0 || this._pictures.length > 0;
    }

    // An operation is about to read x1,y1-x2,y2 from the buffer (CopyRect's
    // source): bring every pixel of it into the buffer.
    _fetch(x1, y1, x2, y2) {
        const r = [x1, y1, x2, y2];
        if (this._pictures.length) this._readPictures(r);
        if (this._held.length && this._canvas && this._ctx) {
            const keep = [];
            for (const h of this._held) {
                const i = intersect(h, r);
                if (!i) {
                    keep.push(h);
                    continue;
                }
                this._readCanvas(i);
                for (const piece of subtract(h, i)) keep.push(piece);
            }
            this._held = keep;
        }
        this._mixed = this._held.length > 0 || this._pictures.length > 0;
    }

    // Pictures waiting for present() that overlap r (null: all) go into the
    // buffer now, as decoded pixels would have; so do the ones before them,
    // which must stay under them (the rest are still drawn after the buffer).
    _readPictures(r) {
        let last = -1;
        this._pictures.forEach((p, i) => { if (!r || intersect(p, r)) last = i; });
        for (const [x1, y1, x2, y2, picture, opaque] of this._pictures.slice(0, last + 1)) {
            const data = this._readPicture(picture, x2 - x1, y2 - y1);
            closePicture(picture);
            this._copyRows(x1, y1, x2, y2, data, 0, (x2 - x1) * 4, !opaque);
            this._mark(x1, y1, x2, y2);
        }
        this._pictures = this._pictures.slice(last + 1);
    }

    // Canvas pixels of box r into the buffer (the canvas holds them; nothing to mark).
    _readCanvas(r) {
        const [x1, y1, x2, y2] = r;
        const data = this._ctx.getImageData(x1, y1, x2 - x1, y2 - y1).data;
        this._copyRows(x1, y1, x2, y2, data, 0, (x2 - x1) * 4);
    }

    _readBackHeld() {
        if (this._canvas && this._ctx) for (const r of this._held) this._readCanvas(r);
        this._held = [];
    }

    // Everything into the buffer: for reads of the whole buffer and for resizes.
    _settle() {
        if (!this._mixed) return;
        this._readPictures(null);
        this._readBackHeld();
        this._mixed = false;
    }

    // Rows of 4-byte pixels into the buffer (no claim, no mark): one copy per
    // row, or one for all when they span the framebuffer's width; alpha forced to
    // 255 only when asked (pixels read from a canvas or a JPEG are opaque already).
    // The source is viewed as Uint8Array so set() is a plain memory copy
    // (getImageData hands back Uint8ClampedArray).
    _copyRows(x1, y1, x2, y2, data, offset, stride, forceAlpha = false) {
        const src = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        const W = this._width, u8 = this._u8, rowBytes = (x2 - x1) * 4;
        if (!forceAlpha && x1 === 0 && x2 === W && rowBytes === stride) {
            u8.set(src.subarray(offset, offset + rowBytes * (y2 - y1)), y1 * W * 4);
            return;
        }
        let s = offset;
        for (let row = y1; row < y2; row++, s += stride) {
            const d = (row * W + x1) * 4;
            u8.set(src.subarray(s, s + rowBytes), d);
            if (forceAlpha) for (let i = d + 3, end = d + rowBytes; i < end; i += 4) u8[i] = 255;
        }
    }

    // ---- internals ----

    _alloc(w, h) {
        const bytes = new ArrayBuffer(w * h * 4);
        this._buffer = new Uint8ClampedArray(bytes);
        // Same memory through other views: Uint8Array for memcpy-speed set()
        // from Uint8Array sources, Uint32Array for one write per pixel.
        this._u8 = new Uint8Array(bytes);
        this._u32 = new Uint32Array(bytes);
    }

    _resize(w, h) {
        this._settle();   // canvas-held pixels must be in the buffer to be kept
        const oldW = this._width, oldH = this._height, old = this._u8;
        this._alloc(w, h);
        const cw = Math.min(w, oldW), ch = Math.min(h, oldH);
        for (let row = 0; row < ch; row++) {
            this._u8.set(old.subarray(row * oldW * 4, (row * oldW + cw) * 4), row * w * 4);
        }
        this._width = w;
        this._height = h;
        this._imageData = null;
        // The canvas takes the new size at the next present(), where it blanks,
        // so everything must be drawn again.
        this._clearDirty();
        this._mark(0, 0, w, h);
    }

    _enqueue(fn) {
        this._queue.push(fn);
    }

    _drain() {
        const q = this._queue;
        while (this._queueHead < q.length) {
            const op = q[this._queueHead];
            if (op.image) {
                if (!op.done) return;
                this._applyImage(op);
            } else {
                op();
            }
            q[this._queueHead++] = null;
        }
        this._queue = [];
        this._queueHead = 0;
        const waiters = this._idleWaiters;
        this._idleWaiters = [];
        for (const resolve of waiters) resolve();
    }

    _applyImage(op) {
        if (op.error || !op.result) {
            if (this._onError) this._onError(op.error || new Error('Display: image decoded to nothing'));
            return;
        }
        const img = op.result;
        if (!img.data) {
            const w = Math.min(op.w, img.displayWidth || img.width), h = Math.min(op.h, img.displayHeight || img.height);
            return this._addPicture(op.x, op.y, w, h, img, op.opaque);
        }
        const w = Math.min(op.w, img.width), h = Math.min(op.h, img.height);
        if (img.opaque) return this._blitOpaque(op.x, op.y, w, h, img.data, img.width * 4);
        this._blit4(op.x, op.y, w, h, img.data, 0, img.width * 4);
    }

    // RGBA rows whose alpha is 255 already (a decoded JPEG), cropped to its
    // rectangle and the framebuffer.
    _blitOpaque(x, y, w, h, data, stride) {
        const c = this._clip(x, y, w, h);
        if (!c) return;
        const [x1, y1, x2, y2] = c;
        if (this._mixed) this._claim(x1, y1, x2, y2);
        this._copyRows(x1, y1, x2, y2, data, (y1 - y) * stride + (x1 - x) * 4, stride);
        this._mark(x1, y1, x2, y2);
    }

    _clearDirty() {
        this._dx1 = this._dy1 = Infinity;
        this._dx2 = this._dy2 = -Infinity;
    }

    _mark(x1, y1, x2, y2) {
        if (x1 < this._dx1) this._dx1 = x1;
        if (y1 < this._dy1) this._dy1 = y1;
        if (x2 > this._dx2) this._dx2 = x2;
        if (y2 > this._dy2) this._dy2 = y2;
    }

    // Clips x,y,w,h to the framebuffer. Returns null when nothing is left, else
    // [x1, y1, x2, y2]. The server must not send rectangles outside the
    // framebuffer, but a bad one must not write outside our buffer either.
    _clip(x, y, w, h) {
        const x1 = Math.max(x, 0), y1 = Math.max(y, 0);
        const x2 = Math.min(x + w, this._width), y2 = Math.min(y + h, this._height);
        if (x2 <= x1 || y2 <= y1) return null;
        return [x1, y1, x2, y2];
    }

    // The hot paths below clip inline (no array per call: RRE and Hextile draw
    // hundreds of thousands of tiny rectangles per full-screen update).

    _fill(x, y, w, h, colour) {
        const W = this._width;
        const x1 = x > 0 ? x : 0, y1 = y > 0 ? y : 0;
        const x2 = x + w < W ? x + w : W, y2 = y + h < this._height ? y + h : this._height;
        if (x2 <= x1 || y2 <= y1) return;
        if (this._mixed) this._claim(x1, y1, x2, y2);
        const u32 = this._u32;
        if (x2 - x1 <= 8) {
            // Narrow: plain stores beat a fill() call per row.
            for (let row = y1; row < y2; row++) {
                for (let i = row * W + x1, end = row * W + x2; i < end; i++) u32[i] = colour;
            }
        } else if (x1 === 0 && x2 === W) {
            u32.fill(colour, y1 * W, y2 * W);
        } else {
            for (let row = y1; row < y2; row++) u32.fill(colour, row * W + x1, row * W + x2);
        }
        this._mark(x1, y1, x2, y2);
    }

    _blit4(x, y, w, h, src, offset, stride) {
        if (w <= NARROW) return this._blitBytes(x, y, w, h, src, offset, stride, 4);
        const c = this._clip(x, y, w, h);
        if (!c) return;
        const [x1, y1, x2, y2] = c, W = this._width, u8 = this._u8;
        if (this._mixed) this._claim(x1, y1, x2, y2);
        const rowBytes = (x2 - x1) * 4;
        let s = offset + (y1 - y) * stride + (x1 - x) * 4;
        for (let row = y1; row < y2; row++, s += stride) {
            const d = (row * W + x1) * 4;
            u8.set(src.subarray(s, s + rowBytes), d);
            for (let i = d + 3, end = d + rowBytes; i < end; i += 4) u8[i] = 255;
        }
        this._mark(x1, y1, x2, y2);
    }

    // RGB(X) bytes, ``bpp`` (3 or 4) per pixel, converted pixel by pixel: RGB
    // data, and short RGBX rows (Hextile's raw 16x16 tiles), where a view per
    // row would cost more than the copy.
    _blitBytes(x, y, w, h, src, offset, stride, bpp) {
        const W = this._width;
        const x1 = x > 0 ? x : 0, y1 = y > 0 ? y : 0;
        const x2 = x + w < W ? x + w : W, y2 = y + h < this._height ? y + h : this._height;
        if (x2 <= x1 || y2 <= y1) return;
        if (this._mixed) this._claim(x1, y1, x2, y2);
        const u32 = this._u32;
        let s0 = offset + (y1 - y) * stride + (x1 - x) * bpp;
        for (let row = y1; row < y2; row++, s0 += stride) {
            let d = row * W + x1;
            const end = d + (x2 - x1);
            if (LITTLE_ENDIAN) {
                for (let s = s0; d < end; d++, s += bpp) {
                    u32[d] = (OPAQUE | (src[s + 2] << 16) | (src[s + 1] << 8) | src[s]) >>> 0;
                }
            } else {
                for (let s = s0; d < end; d++, s += bpp) {
                    u32[d] = ((src[s] << 24) | (src[s + 1] << 16) | (src[s + 2] << 8) | OPAQUE) >>> 0;
                }
            }
        }
        this._mark(x1, y1, x2, y2);
    }

    _blitU32(x, y, w, h, src, offset, stride) {
        const W = this._width;
        const x1 = x > 0 ? x : 0, y1 = y > 0 ? y : 0;
        const x2 = x + w < W ? x + w : W, y2 = y + h < this._height ? y + h : this._height;
        if (x2 <= x1 || y2 <= y1) return;
        if (this._mixed) this._claim(x1, y1, x2, y2);
        const u32 = this._u32;
        const n = x2 - x1;
        let s = offset + (y1 - y) * stride + (x1 - x);
        for (let row = y1; row < y2; row++, s += stride) {
            if (n <= NARROW) {
                for (let d = row * W + x1, i = s, end = s + n; i < end;) u32[d++] = src[i++];
            } else {
                u32.set(src.subarray(s, s + n), row * W + x1);
            }
        }
        this._mark(x1, y1, x2, y2);
    }

    _copy(srcX, srcY, dstX, dstY, w, h) {
        // Clip the destination, then shrink the source by the same amounts; then
        // clip again against the source so both stay inside the framebuffer.
        let c = this._clip(dstX, dstY, w, h);
        if (!c) return;
        let [x1, y1, x2, y2] = c;
        let sx = srcX + (x1 - dstX), sy = srcY + (y1 - dstY);
        const s = this._clip(sx, sy, x2 - x1, y2 - y1);
        if (!s) return;
        x1 += s[0] - sx; y1 += s[1] - sy;
        x2 = x1 + (s[2] - s[0]); y2 = y1 + (s[3] - s[1]);
        sx = s[0]; sy = s[1];
        if (this._mixed) {
            this._fetch(sx, sy, sx + (x2 - x1), sy + (y2 - y1));
            this._claim(x1, y1, x2, y2);
        }
        const W = this._width, u32 = this._u32, n = x2 - x1, rows = y2 - y1;
        // Overlapping regions: walk rows bottom-up when moving down, so no source
        // row is overwritten before it is read; copyWithin handles overlap in a row.
        if (y1 > sy) {
            for (let r = rows - 1; r >= 0; r--) {
                const so = (sy + r) * W + sx;
                u32.copyWithin((y1 + r) * W + x1, so, so + n);
            }
        } else {
            for (let r = 0; r < rows; r++) {
                const so = (sy + r) * W + sx;
                u32.copyWithin((y1 + r) * W + x1, so, so + n);
            }
        }
        this._mark(x1, y1, x2, y2);
    }
}

// A tightly packed copy of h rows of rowBytes each, taken every stride bytes.
function compact(src, offset, stride, rowBytes, h) {
    const out = new Uint8Array(rowBytes * h);
    for (let row = 0; row < h; row++) {
        const s = offset + row * stride;
        out.set(src.subarray(s, s + rowBytes), row * rowBytes);
    }
    return out;
}

// ---- rectangles as [x1, y1, x2, y2] (extra elements ignored) ----

function intersect(a, b) {
    const x1 = Math.max(a[0], b[0]), y1 = Math.max(a[1], b[1]);
    const x2 = Math.min(a[2], b[2]), y2 = Math.min(a[3], b[3]);
    return x2 > x1 && y2 > y1 ? [x1, y1, x2, y2] : null;
}

// a minus b: up to four disjoint rectangles (a itself when they do not meet).
function subtract(a, b) {
    const i = intersect(a, b);
    if (!i) return [a];
    const out = [];
    if (a[1] < i[1]) out.push([a[0], a[1], a[2], i[1]]);              // above
    if (i[3] < a[3]) out.push([a[0], i[3], a[2], a[3]]);              // below
    if (a[0] < i[0]) out.push([a[0], i[1], i[0], i[3]]);              // left
    if (i[2] < a[2]) out.push([i[2], i[1], a[2], i[3]]);              // right
    return out;
}

function subtractAll(list, b) {
    const out = [];
    for (const a of list) for (const piece of subtract(a, b)) out.push(piece);
    return out;
}

function closePicture(picture) {
    if (picture && typeof picture.close === 'function') picture.close();
}

// A picture's RGBA pixels through a scratch canvas that only grows (setting a
// canvas's size clears and reallocates it).
/* global OffscreenCanvas */
let scratchCtx = null;
function readPictureOnScratch(picture, w, h) {
    if (!scratchCtx) {
        if (typeof OffscreenCanvas !== 'function') throw new Error('Display: no canvas to read a picture with');
        scratchCtx = new OffscreenCanvas(w, h).getContext('2d', { willReadFrequently: true });
    }
    const scratch = scratchCtx.canvas;
    if (scratch.width < w || scratch.height < h) {
        scratch.width = Math.max(scratch.width, w);
        scratch.height = Math.max(scratch.height, h);
    }
    scratchCtx.clearRect(0, 0, w, h);   // a PNG may be transparent: nothing of the last picture may show
    scratchCtx.drawImage(picture, 0, 0, w, h, 0, 0, w, h);
    return scratchCtx.getImageData(0, 0, w, h).data;
}
