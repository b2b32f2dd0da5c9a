// web/core/decoders/copyrect.js — CopyRect encoding (1): src-x-position and
// src-y-position (U16 each); the rectangle is copied from elsewhere in the
// framebuffer (RFC 6143 §7.7.2).
// Needs: nothing; the Display keeps the copy in order behind pending images.

export class CopyRectDecoder {
    decode(rect, queue, display) {
        if (!queue.has(4)) return false;
        const srcX = queue.u16();
        const srcY = queue.u16();
        if (rect.width > 0 && rect.height > 0) {
            display.copyRect(srcX, srcY, rect.x, rect.y, rect.width, rect.height);
        }
        return true;
    }
}
