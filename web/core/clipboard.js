// web/core/clipboard.js — clipboard text both ways: the classic Latin-1
// ServerCutText/ClientCutText, and the Extended Clipboard pseudo-encoding
// (rfbproto "Extended Clipboard Pseudo-Encoding": caps, then request, peek,
// notify and provide actions), with the zlib data that provide carries.
// Needs: ./inflate.js (the server's provide data), ./messages.js (the
// ClientCutText bytes), ./bytequeue.js (readU32).
//
// rfb.js reads the ServerCutText framing from its queue and hands the text or
// the extended flags and payload here; Clipboard answers through the send()
// it was given and returns what the page should see.

import { Inflator, InflateLimitError, adler32 } from './inflate.js';
import { clientCutText, extendedClientCutText, putU32 } from './messages.js';
import { readU32 } from './bytequeue.js';

// Extended Clipboard flags.
const CLIP_TEXT = 1 << 0;
const CLIP_FORMAT_MASK = 0xffff;
const CLIP_CAPS = 1 << 24;
const CLIP_REQUEST = 1 << 25;
const CLIP_PEEK = 1 << 26;
const CLIP_NOTIFY = 1 << 27;
const CLIP_PROVIDE = 1 << 28;
const CLIP_ACTION_MASK = 0xff000000;

// Clipboard payloads above this are skipped as they stream by, never buffered.
export const MAX_CLIPBOARD_BYTES = 16 * 1024 * 1024;
// Extended Clipboard data inflates to a U32 size and then the text (the lowest
// format bit comes first): more than this is a text we would skip anyway, or a
// zlib bomb, so inflating stops here.
const CLIPBOARD_INFLATE_LIMIT = 4 + MAX_CLIPBOARD_BYTES;
const LATIN1_CHUNK = 8192;                 // String.fromCharCode argument-count limit
const MAX_STORED = 65535;                  // a stored deflate block's largest length

const utf8Lenient = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

// ---- text ------------------------------------------------------------------------

export function decodeLatin1(bytes) {
    let s = '';
    for (let i = 0; i < bytes.length; i += LATIN1_CHUNK) {
        s += String.fromCharCode.apply(null, bytes.subarray(i, i + LATIN1_CHUNK));
    }
    return s;
}

// ClientCutText without the extension is Latin-1 with LF line ends; what
// Latin-1 cannot hold becomes '?'.
export function encodeLatin1(text) {
    const s = text.replace(/\r\n/g, '\n');
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        out[i] = c <= 0xff ? c : 0x3f;
    }
    return out;
}

// Extended Clipboard text: UTF-8 with CRLF line ends and a terminating NUL.
function extendedTextBytes(text) {
    const crlf = text.replace(/\r\n/g, '\n').replace(/\n/g, '\r\n');
    const utf8 = utf8Encoder.encode(crlf);
    const out = new Uint8Array(utf8.length + 1);
    out.set(utf8, 0);
    return out;
}

// ---- zlib, written --------------------------------------------------------------

// A valid zlib stream made of stored (uncompressed) blocks. The Extended
// Clipboard "provide" action must be zlib, but nothing says compressed; this
// keeps the client free of a deflate implementation.
export function zlibStored(data) {
    const blocks = Math.max(1, Math.ceil(data.length / MAX_STORED));
    const out = new Uint8Array(2 + blocks * 5 + data.length + 4);
    out[0] = 0x78;   // CM 8 (deflate), 32 KiB window
    out[1] = 0x01;   // no dictionary, level 0; (0x78 << 8 | 0x01) % 31 === 0
    let o = 2;
    for (let i = 0; i < blocks; i++) {
        const start = i * MAX_STORED;
        const len = Math.min(MAX_STORED, data.length - start);
        out[o++] = i === blocks - 1 ? 1 : 0;   // BFINAL, BTYPE 00
        out[o++] = len & 0xff;
        out[o++] = len >>> 8;
        out[o++] = ~len & 0xff;
        out[o++] = (~len >>> 8) & 0xff;
        out.set(data.subarray(start, start + len), o);
        o += len;
    }
    putU32(out, o, adler32(1, data, 0, data.length));
    return out;
}

// ---- Clipboard -------------------------------------------------------------------

export class Clipboard {
    // send(bytes): how the answers reach the server.
    constructor(send) {
        this._send = send;
        this._extended = false;   // the server sent its caps
        this._serverFlags = 0;
        this._serverTextMax = 0;
        this._text = null;        // last text the page gave us, for request/peek
    }

    // The page's clipboard text for the server, in the form it takes.
    send(text) {
        this._text = text;
        if (this._extended && (this._serverFlags & CLIP_TEXT)) {
            const payload = extendedTextBytes(text);
            if ((this._serverFlags & CLIP_PROVIDE) && payload.length <= this._serverTextMax) {
                this._sendProvide();
                return;
            }
            if (this._serverFlags & CLIP_NOTIFY) {
                // Too big to push unasked: announce it; the server requests it.
                this._sendAction(CLIP_NOTIFY | CLIP_TEXT);
                return;
            }
        }
        this._send(clientCutText(encodeLatin1(text)));
    }

    // An Extended Clipboard message from the server. Returns { text } when the
    // page's clipboard changes, { error } when the message is malformed, else null.
    receive(flags, payload) {
        if (flags & CLIP_CAPS) return this._onCaps(flags, payload);
        switch (flags & CLIP_ACTION_MASK) {
            case CLIP_REQUEST:
                if ((flags & CLIP_TEXT) && this._text !== null) this._sendProvide();
                return null;
            case CLIP_PEEK:
                this._sendAction(CLIP_NOTIFY | (this._text !== null ? CLIP_TEXT : 0));
                return null;
            case CLIP_NOTIFY:
                if (flags & CLIP_TEXT) this._sendAction(CLIP_REQUEST | CLIP_TEXT);
                return null;
            case CLIP_PROVIDE:
                return this._onProvide(flags, payload);
            default:
                return null;   // an action we do not know: nothing to answer
        }
    }

    _onCaps(flags, payload) {
        // Formats the server takes, then one U32 max size per format bit.
        const formats = flags & CLIP_FORMAT_MASK;
        const sizes = [];
        for (let bit = 0, o = 0; bit < 16; bit++) {
            if (!(formats & (1 << bit))) continue;
            if (o + 4 > payload.length) return { error: 'malformed extended clipboard caps (sizes missing)' };
            sizes.push({ bit, max: readU32(payload, o) });
            o += 4;
        }
        this._extended = true;
        this._serverFlags = flags;
        this._serverTextMax = sizes.find((s) => s.bit === 0)?.max ?? 0;
        // We take text and every action. Max unsolicited size 0, as rfbproto
        // recommends: the server then always notifies and we request, which
        // avoids the ambiguity of partial unsolicited provides.
        const ours = new Uint8Array(4);
        putU32(ours, 0, 0);
        this._send(extendedClientCutText(
            CLIP_CAPS | CLIP_REQUEST | CLIP_PEEK | CLIP_NOTIFY | CLIP_PROVIDE | CLIP_TEXT, ours));
        return null;
    }

    _onProvide(flags, payload) {
        if (!(flags & CLIP_TEXT)) return null;   // only formats we never take
        let data;
        try {
            data = new Inflator().inflate(payload, CLIPBOARD_INFLATE_LIMIT);
        } catch (err) {
            // Too long: skipped, as a long classic ServerCutText is.
            if (err instanceof InflateLimitError) return null;
            throw err;
        }
        if (data.length < 4) return { error: 'malformed extended clipboard data (truncated)' };
        let text = data.subarray(4, 4 + readU32(data, 0));
        // The text is NUL-terminated UTF-8 with CRLF line ends.
        const nul = text.indexOf(0);
        if (nul >= 0) text = text.subarray(0, nul);
        return { text: utf8Lenient.decode(text).replace(/\r\n/g, '\n') };
    }

    _sendAction(flags) {
        this._send(extendedClientCutText(flags, new Uint8Array(0)));
    }

    _sendProvide() {
        const text = extendedTextBytes(this._text ?? '');
        const plain = new Uint8Array(4 + text.length);
        putU32(plain, 0, text.length);
        plain.set(text, 4);
        this._send(extendedClientCutText(CLIP_PROVIDE | CLIP_TEXT, zlibStored(plain)));
    }
}
