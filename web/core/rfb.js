// rfb.js — the RFB (VNC) client protocol state machine: version and security
// handshake, initialisation, and the normal message loop of RFB 3.3/3.7/3.8
// (RFC 6143) plus the community extensions in web/CONTRACTS.md (rfbproto.rst).
//
// Needs: ./bytequeue.js (receive buffer), ./pixelformat.js (the pixel format we
// ask for), ./des.js (VNC Authentication), ./inflate.js (Extended Clipboard),
// ./decoders/index.js (one decoder per encoding), ./scancodes.js (QEMU Extended
// Key Event). No DOM and no WebSocket: bytes come in through receive(), go out
// through the injected send(), and everything the page must know leaves as
// onEvent({type, ...}). So the whole protocol runs under `node --test`.
//
// Parsing rule: every handler first checks that the whole unit it needs is
// buffered (has(n)) and only then consumes it, so "not enough bytes yet" is an
// ordinary `return false` and a message split anywhere parses the same. Nothing
// the server sends is asserted on: a malformed message ends in state 'failed'
// with a reason a person can act on.

import { ByteQueue } from './bytequeue.js';
import { PixelFormat } from './pixelformat.js';
import { vncAuthResponse } from './des.js';
import { Inflator, InflateLimitError } from './inflate.js';
import { makeDecoders } from './decoders/index.js';
import { scancodeForCode } from './scancodes.js';

// ---------------------------------------------------------------------------
// Connection states and the transitions allowed between them. Every state change
// goes through _setState(), which refuses anything not listed here.

export const STATES = Object.freeze({
    'connecting': Object.freeze(['protocol-version', 'disconnected', 'failed']),
    'protocol-version': Object.freeze(['security', 'disconnected', 'failed']),
    // 3.3/3.7 with security None go straight to ClientInit (no SecurityResult).
    'security': Object.freeze(['authenticating', 'server-init', 'disconnected', 'failed']),
    'authenticating': Object.freeze(['server-init', 'disconnected', 'failed']),
    'server-init': Object.freeze(['connected', 'disconnected', 'failed']),
    'connected': Object.freeze(['disconnected', 'failed']),
    'disconnected': Object.freeze([]),
    'failed': Object.freeze([]),
});

// ---------------------------------------------------------------------------
// Protocol numbers (rfbproto.rst names)

// Encodings a name in options.encodings may force.
export const ENCODINGS = Object.freeze({
    raw: 0, copyrect: 1, rre: 2, hextile: 5, zlib: 6, tight: 7, zrle: 16,
});
// Preference order (CONTRACTS.md): CopyRect first, since it is the cheapest when a
// server can use it, then the compressing encodings, Raw last.
const DEFAULT_ENCODINGS = Object.freeze(['copyrect', 'tight', 'zrle', 'hextile', 'zlib', 'rre', 'raw']);

export const PSEUDO = Object.freeze({
    JPEG_QUALITY_0: -32,          // -32..-23 = quality 0..9
    COMPRESS_LEVEL_0: -256,       // -256..-247 = compression 0..9
    DESKTOP_SIZE: -223,
    LAST_RECT: -224,
    CURSOR: -239,
    QEMU_EXTENDED_KEY: -258,
    DESKTOP_NAME: -307,
    EXTENDED_DESKTOP_SIZE: -308,
    FENCE: -312,
    CONTINUOUS_UPDATES: -313,
    EXTENDED_CLIPBOARD: 0xc0a1e5ce | 0,   // as the S32 it is on the wire
});

const CLIENT_MSG = Object.freeze({
    SET_ENCODINGS: 2, FRAMEBUFFER_UPDATE_REQUEST: 3, KEY_EVENT: 4, POINTER_EVENT: 5,
    CLIENT_CUT_TEXT: 6, ENABLE_CONTINUOUS_UPDATES: 150, CLIENT_FENCE: 248,
    SET_DESKTOP_SIZE: 251, QEMU: 255,
});
const SERVER_MSG = Object.freeze({
    FRAMEBUFFER_UPDATE: 0, SET_COLOUR_MAP_ENTRIES: 1, BELL: 2, SERVER_CUT_TEXT: 3,
    END_OF_CONTINUOUS_UPDATES: 150, SERVER_FENCE: 248, QEMU: 255,
});
const QEMU_EXTENDED_KEY_EVENT = 0;   // QEMU client submessage
const QEMU_AUDIO = 1;                // QEMU server submessage
const QEMU_AUDIO_DATA = 2;           // ...operation that carries a payload

export const SECURITY = Object.freeze({ INVALID: 0, NONE: 1, VNC_AUTH: 2, VENCRYPT: 19 });
const SECURITY_NAMES = Object.freeze({
    0: 'Invalid', 1: 'None', 2: 'VNC Authentication', 5: 'RA2', 6: 'RA2ne', 13: 'RA2r',
    16: 'Tight', 17: 'Ultra', 18: 'TLS', 19: 'VeNCrypt', 20: 'SASL', 21: 'MD5', 22: 'xvp',
    30: 'Diffie-Hellman', 129: 'RA2_256', 130: 'RA2ne_256', 133: 'RA2r_256',
});
// The security types that are TLS underneath; used to say "TLS only" plainly.
const TLS_SECURITY_TYPES = new Set([18]);
// Preference when the server lists several (3.7+). VNC Authentication beats
// VeNCrypt Plain: Plain sends the password itself in clear over this
// unencrypted channel, VncAuth only a DES response to a challenge.
const SECURITY_PREFERENCE = Object.freeze([SECURITY.NONE, SECURITY.VNC_AUTH, SECURITY.VENCRYPT]);

const VENCRYPT_PLAIN = 256;
const VENCRYPT_TLS_FIRST = 257;   // 257..264: TLSNone .. X509SASL, all need a TLS
const VENCRYPT_TLS_LAST = 264;    // layer this client does not have

const SECURITY_RESULT_OK = 0;
const SECURITY_RESULT_TOO_MANY = 2;   // Tight security only, but say it if we see it

const FENCE_BLOCK_BEFORE = 1 << 0;
const FENCE_BLOCK_AFTER = 1 << 1;
const FENCE_REQUEST = 0x80000000;
// Messages are processed strictly in order and at once, so BlockBefore and
// BlockAfter hold trivially; SyncNext and unknown bits are cleared in the reply,
// which (rfbproto "ClientFence") is how a peer says it does not support them.
const FENCE_SUPPORTED = FENCE_BLOCK_BEFORE | FENCE_BLOCK_AFTER;

// Extended Clipboard flags (rfbproto "Extended Clipboard Pseudo-Encoding").
const CLIP_TEXT = 1 << 0;
const CLIP_FORMAT_MASK = 0xffff;
const CLIP_CAPS = 1 << 24;
const CLIP_REQUEST = 1 << 25;
const CLIP_PEEK = 1 << 26;
const CLIP_NOTIFY = 1 << 27;
const CLIP_PROVIDE = 1 << 28;
const CLIP_ACTION_MASK = 0xff000000;

// ExtendedDesktopSize: x-position 1 = our own request; y-position = status.
const EDS_REASON_CLIENT = 1;
const EDS_STATUS_TEXT = Object.freeze({
    1: 'resize is administratively prohibited',
    2: 'the server is out of resources',
    3: 'invalid screen layout',
    4: 'request forwarded (may complete later)',
});

// ---------------------------------------------------------------------------
// Limits: the server controls these lengths, so each is bounded before we wait
// for (and buffer) that many bytes.

const MAX_REASON_BYTES = 64 * 1024;        // failure reasons are a line of text
const MAX_NAME_BYTES = 64 * 1024;          // desktop names are window titles
const MAX_CURSOR_PIXELS = 1024 * 1024;     // real cursors are <= 256x256; 4 MiB of RGBA
// Clipboard payloads above this are skipped as they stream by, never buffered.
const MAX_CLIPBOARD_BYTES = 16 * 1024 * 1024;
// Extended Clipboard data inflates to a U32 size and then the text (the lowest
// format bit comes first): more than this is a text we would skip anyway, or a
// zlib bomb, so inflating stops here.
const CLIPBOARD_INFLATE_LIMIT = 4 + MAX_CLIPBOARD_BYTES;
// Framebuffer size. Browsers draw a canvas up to 32767 pixels a side (Chrome,
// Firefox, Safari) and 268 M pixels in all (Chrome, Safari), and the page keeps
// two RGBA copies (ours and the canvas's), 8 bytes a pixel. 8192x8192 pixels
// (256 MiB a copy) is twice an 8K desktop; ServerInit allows 65535x65535
// (17 GB a copy), which would take the tab down instead of showing an error.
const MAX_FB_SIDE = 32767;
const MAX_FB_PIXELS = 8192 * 8192;
const LATIN1_CHUNK = 8192;                 // String.fromCharCode argument-count limit

const INCREMENTAL = true;

// ---------------------------------------------------------------------------
// Small text and byte helpers

const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const utf8Lenient = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

function decodeLatin1(bytes) {
    let s = '';
    for (let i = 0; i < bytes.length; i += LATIN1_CHUNK) {
        s += String.fromCharCode.apply(null, bytes.subarray(i, i + LATIN1_CHUNK));
    }
    return s;
}

// Names and reasons: the spec recommends UTF-8, but older servers send Latin-1
// or a code page, so invalid UTF-8 is read as Latin-1 rather than mangled.
export function decodeServerText(bytes) {
    try {
        return utf8Strict.decode(bytes);
    } catch {
        return decodeLatin1(bytes);
    }
}

// ClientCutText without the extension is Latin-1 with LF line ends; what
// Latin-1 cannot hold becomes '?'.
function encodeLatin1(text) {
    const s = text.replace(/\r\n/g, '\n');
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        out[i] = c <= 0xff ? c : 0x3f;
    }
    return out;
}

// A printable rendering of bytes that were not what we expected.
function describeBytes(bytes) {
    let s = '';
    for (const b of bytes) {
        s += (b >= 0x20 && b < 0x7f) ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
    }
    return s;
}

function u16be(out, o, v) {
    out[o] = (v >>> 8) & 0xff;
    out[o + 1] = v & 0xff;
}

function u32be(out, o, v) {
    out[o] = (v >>> 24) & 0xff;
    out[o + 1] = (v >>> 16) & 0xff;
    out[o + 2] = (v >>> 8) & 0xff;
    out[o + 3] = v & 0xff;
}

function adler32(data) {
    let a = 1, b = 0;
    // 5552 is the largest run before b can overflow 2^32 (zlib's NMAX).
    for (let i = 0; i < data.length;) {
        const end = Math.min(i + 5552, data.length);
        for (; i < end; i++) {
            a += data[i];
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    return ((b << 16) | a) >>> 0;
}

// A valid zlib stream made of stored (uncompressed) blocks. The Extended
// Clipboard "provide" action must be zlib, but nothing says compressed; this
// keeps the client free of a deflate implementation.
export function zlibStored(data) {
    const MAX_STORED = 65535;
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
    u32be(out, o, adler32(data));
    return out;
}

function clampInt(v, lo, hi, fallback) {
    const n = Number(v);
    if (!Number.isFinite(n)) return fallback;
    return Math.min(hi, Math.max(lo, Math.round(n)));
}

// Why the page cannot show a width x height desktop, or '' when it can.
function framebufferTooLarge(width, height) {
    if (width <= MAX_FB_SIDE && height <= MAX_FB_SIDE && width * height <= MAX_FB_PIXELS) return '';
    return `server desktop is ${width}x${height}, larger than this client can show ` +
        `(at most ${MAX_FB_PIXELS} pixels, e.g. 8192x8192, and ${MAX_FB_SIDE} a side)`;
}

function securityName(type) {
    return `${SECURITY_NAMES[type] ?? 'unknown'} (${type})`;
}

// ---------------------------------------------------------------------------
// RFB

export class RFB {
    constructor({ display, send, onEvent = () => {}, options = {} }) {
        if (!display || typeof send !== 'function') {
            throw new TypeError('RFB needs a display and a send function');
        }
        this._display = display;
        this._sendFn = send;
        this._onEvent = onEvent;
        this._options = {
            shared: options.shared ?? true,
            password: options.password ?? null,
            username: options.username ?? null,
            quality: clampInt(options.quality, 0, 9, 6),
            compression: clampInt(options.compression, 0, 9, 2),
            viewOnly: !!options.viewOnly,
            lowColour: !!options.lowColour,
        };
        this._decoders = makeDecoders();
        this._encodings = this._buildEncodings(options.encodings);
        this._pixelFormat = this._options.lowColour ? PixelFormat.bgr233() : PixelFormat.default();
        this._ctx = { pixelFormat: this._pixelFormat };

        this._queue = new ByteQueue();
        this._state = 'connecting';
        this._handler = this._onProtocolVersion;
        this._pumping = false;

        this._minor = 0;                 // negotiated 3.x
        this._pendingAuth = null;        // 'vnc' | 'plain' while waiting for sendPassword()
        this._challenge = null;
        this._fbWidth = 0;
        this._fbHeight = 0;
        this._name = '';
        this._fbu = null;                // { left, rect } while inside a FramebufferUpdate
        this._discardLeft = 0;
        this._failPrefix = '';           // what a server-sent reason string explains
        this._authFailure = false;       // that reason also means "security-failure"

        // Extensions the server has confirmed (never assumed from our SetEncodings).
        this._qemuExtendedKey = false;
        this._supportsSetDesktopSize = false;
        this._screens = [];
        this._continuousSupported = false;
        this._continuousEnabled = false;
        this._extClipboard = false;
        this._serverClipFlags = 0;
        this._serverClipTextMax = 0;
        this._clipboardText = null;      // last text the page gave us, for request/peek
    }

    get state() {
        return this._state;
    }

    // ---- transport side ----------------------------------------------------

    receive(bytes) {
        if (this._isFinal()) return;
        if (this._state === 'connecting') this._setState('protocol-version');
        this._queue.push(bytes);
        this._pump();
    }

    close(reason = '') {
        if (this._isFinal()) return;
        if (this._state === 'connected') {
            this._setState('disconnected', reason || 'connection closed');
        } else {
            // The server hung up before the handshake finished: that is a failure
            // the page should show, not an orderly disconnect.
            const during = this._state === 'connecting' ? 'before the server answered' : `during ${this._state}`;
            this._fail(`connection closed ${during}${reason ? `: ${reason}` : ''}`);
        }
        this._queue.clear();
    }

    sendPassword(password, username) {
        if (this._isFinal()) return;
        this._options.password = password ?? '';
        if (username !== undefined) this._options.username = username;
        const pending = this._pendingAuth;
        if (!pending) return;   // not asked yet: kept for when the server asks
        // Plain needs a username; a page that only asked for a password sends none.
        if (pending === 'plain' && this._options.username === null) this._options.username = '';
        this._pendingAuth = null;
        if (pending === 'vnc') this._sendVncAuthResponse();
        else this._sendPlainCredentials();
        this._handler = this._onSecurityResult;
        this._pump();
    }

    // ---- input side ----------------------------------------------------------

    pointerEvent(x, y, buttonMask) {
        if (!this._inputAllowed()) return;
        const msg = new Uint8Array(6);
        msg[0] = CLIENT_MSG.POINTER_EVENT;
        // Bits 0-7 are buttons 1-8: 1-3 left/middle/right, 4-7 wheel up/down/left/right.
        msg[1] = buttonMask & 0xff;
        u16be(msg, 2, clampInt(x, 0, Math.max(0, this._fbWidth - 1), 0));
        u16be(msg, 4, clampInt(y, 0, Math.max(0, this._fbHeight - 1), 0));
        this._send(msg);
    }

    // keysym: X11 keysym (0 if unknown); code: KeyboardEvent.code, used for the
    // QEMU Extended Key Event once the server has confirmed it.
    keyEvent(keysym, down, code) {
        if (!this._inputAllowed()) return;
        const sym = (keysym >>> 0) || 0;
        if (this._qemuExtendedKey && code) {
            const scancode = scancodeForCode(code);
            if (scancode) {
                const msg = new Uint8Array(12);
                msg[0] = CLIENT_MSG.QEMU;
                msg[1] = QEMU_EXTENDED_KEY_EVENT;
                u16be(msg, 2, down ? 1 : 0);
                u32be(msg, 4, sym);
                u32be(msg, 8, scancode);
                this._send(msg);
                return;
            }
        }
        if (!sym) return;   // a plain KeyEvent with no keysym means nothing to a server
        const msg = new Uint8Array(8);
        msg[0] = CLIENT_MSG.KEY_EVENT;
        msg[1] = down ? 1 : 0;
        u32be(msg, 4, sym);
        this._send(msg);
    }

    sendCtrlAltDel() {
        const keys = [[0xffe3, 'ControlLeft'], [0xffe9, 'AltLeft'], [0xffff, 'Delete']];
        for (const [sym, code] of keys) this.keyEvent(sym, true, code);
        for (const [sym, code] of keys.reverse()) this.keyEvent(sym, false, code);
    }

    clipboardSend(text) {
        if (!this._inputAllowed()) return;
        text = String(text);
        this._clipboardText = text;
        if (this._extClipboard && (this._serverClipFlags & CLIP_TEXT)) {
            const payload = this._clipboardTextBytes(text);
            if ((this._serverClipFlags & CLIP_PROVIDE) && payload.length <= this._serverClipTextMax) {
                this._sendClipProvide();
                return;
            }
            if (this._serverClipFlags & CLIP_NOTIFY) {
                // Too big to push unasked: announce it; the server requests it.
                this._sendClipAction(CLIP_NOTIFY | CLIP_TEXT);
                return;
            }
        }
        const data = encodeLatin1(text);
        const msg = new Uint8Array(8 + data.length);
        msg[0] = CLIENT_MSG.CLIENT_CUT_TEXT;
        u32be(msg, 4, data.length);
        msg.set(data, 8);
        this._send(msg);
    }

    // SetDesktopSize, allowed only once the server has sent an ExtendedDesktopSize
    // rectangle. Returns whether a request was sent; the answer arrives as a
    // 'resize' event or a 'resize-rejected' event.
    requestResize(width, height) {
        if (!this._inputAllowed() || !this._supportsSetDesktopSize) return false;
        const w = clampInt(width, 1, 0xffff, 1);
        const h = clampInt(height, 1, 0xffff, 1);
        // One screen covering the framebuffer; keep the first screen's id and flags
        // (rfbproto: preserve what we do not mean to change).
        const first = this._screens[0] ?? { id: 0, flags: 0 };
        const msg = new Uint8Array(8 + 16);
        msg[0] = CLIENT_MSG.SET_DESKTOP_SIZE;
        u16be(msg, 2, w);
        u16be(msg, 4, h);
        msg[6] = 1;
        u32be(msg, 8, first.id);
        u16be(msg, 12, 0);
        u16be(msg, 14, 0);
        u16be(msg, 16, w);
        u16be(msg, 18, h);
        u32be(msg, 20, first.flags);
        this._send(msg);
        return true;
    }

    // ---- state -----------------------------------------------------------------

    _isFinal() {
        return this._state === 'failed' || this._state === 'disconnected';
    }

    _inputAllowed() {
        return this._state === 'connected' && !this._options.viewOnly;
    }

    _setState(next, detail = '') {
        if (!STATES[this._state].includes(next)) {
            throw new Error(`RFB: illegal state transition ${this._state} -> ${next}`);
        }
        this._state = next;
        this._emit({ type: 'state', state: next, detail });
    }

    _fail(reason) {
        if (this._isFinal()) return false;
        this._setState('failed', reason);
        return false;
    }

    _emit(event) {
        try {
            this._onEvent(event);
        } catch (err) {
            // A bug in the page's handler is not a protocol error: report it
            // (the browser's reportError shows it in the console) without
            // tearing down the connection mid-message.
            if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
            else queueMicrotask(() => { throw err; });
        }
    }

    _send(bytes) {
        this._sendFn(bytes);
    }

    // Runs handlers while they make progress. A handler returns true after
    // consuming something, false when it needs more bytes (or a password).
    _pump() {
        if (this._pumping) return;   // receive() re-entered from send() or an event
        this._pumping = true;
        try {
            while (!this._isFinal() && this._handler()) { /* next unit */ }
        } catch (err) {
            // A decoder rejecting corrupt data (InflateError, bad subencoding...).
            this._fail(`protocol error: ${err && err.message ? err.message : err}`);
        } finally {
            this._pumping = false;
        }
    }

    _peekU16(offset) {
        const q = this._queue;
        return (q.peekU8(offset) << 8) | q.peekU8(offset + 1);
    }

    _peekU32(offset) {
        const q = this._queue;
        return q.peekU8(offset) * 0x1000000 +
            ((q.peekU8(offset + 1) << 16) | (q.peekU8(offset + 2) << 8) | q.peekU8(offset + 3));
    }

    // ---- handshake ---------------------------------------------------------------

    _onProtocolVersion() {
        const q = this._queue;
        // Say early when the peer is not a VNC server at all (an HTTP error page,
        // an SSH banner): do not wait for 12 bytes that may never come.
        const prefix = 'RFB ';
        for (let i = 0; i < Math.min(q.length, prefix.length); i++) {
            if (q.peekU8(i) !== prefix.charCodeAt(i)) {
                const got = q.bytes(Math.min(q.length, 12));
                return this._fail(`not an RFB (VNC) server: it sent "${describeBytes(got)}"`);
            }
        }
        if (!q.has(12)) return false;
        const raw = q.bytes(12);
        const text = decodeLatin1(raw);
        const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(text);
        if (!m) return this._fail(`malformed ProtocolVersion "${describeBytes(raw)}"`);
        const major = Number(m[1]), minor = Number(m[2]);
        if (major < 3 || (major === 3 && minor < 3)) {
            return this._fail(`server speaks RFB ${major}.${minor}, older than 3.3; not supported`);
        }
        // 3.3..3.6 (3.5 was a misreported 3.3; UltraVNC says 3.4/3.6) -> 3.3;
        // 3.7 -> 3.7; anything newer (3.889 from macOS, 4.x, 5.0) -> 3.8, the
        // highest we speak, which such servers accept.
        if (major === 3 && minor < 7) this._minor = 3;
        else if (major === 3 && minor === 7) this._minor = 7;
        else this._minor = 8;
        this._send(utf8Encoder.encode(`RFB 003.00${this._minor}\n`));
        this._setState('security');
        this._handler = this._minor === 3 ? this._onSecurityType33 : this._onSecurityTypes;
        return true;
    }

    // 3.3: the server picks the type and sends it as a U32.
    _onSecurityType33() {
        const q = this._queue;
        if (!q.has(4)) return false;
        const type = q.u32();
        if (type === SECURITY.INVALID) {
            this._failPrefix = 'server refused the connection';
            this._handler = this._onFailureReason;
            return true;
        }
        if (type === SECURITY.NONE) return this._startInit();
        if (type === SECURITY.VNC_AUTH) return this._startVncAuth();
        return this._fail(`server chose security type ${securityName(type)}, which this client does not support`);
    }

    // 3.7+: the server lists its types and the client picks one.
    _onSecurityTypes() {
        const q = this._queue;
        if (!q.has(1)) return false;
        const count = q.peekU8(0);
        if (count === 0) {
            q.skip(1);
            this._failPrefix = 'server refused the connection';
            this._handler = this._onFailureReason;
            return true;
        }
        if (!q.has(1 + count)) return false;
        q.skip(1);
        const types = Array.from(q.bytes(count));
        const chosen = SECURITY_PREFERENCE.find((t) => types.includes(t));
        if (chosen === undefined) return this._fail(unsupportedTypesMessage(types));
        this._send(Uint8Array.of(chosen));
        if (chosen === SECURITY.NONE) {
            if (this._minor >= 8) {
                this._setState('authenticating');
                this._handler = this._onSecurityResult;
                return true;
            }
            return this._startInit();
        }
        if (chosen === SECURITY.VNC_AUTH) return this._startVncAuth();
        this._setState('authenticating');
        this._handler = this._onVeNCryptVersion;
        return true;
    }

    // A U32 length and that many bytes of reason, then failure. Used for a
    // refused connection and for a failed SecurityResult (3.8).
    _onFailureReason() {
        const q = this._queue;
        if (!q.has(4)) return false;
        const len = this._peekU32(0);
        if (len > MAX_REASON_BYTES) {
            return this._fail(`${this._failPrefix} (its reason, ${len} bytes, is too long to show)`);
        }
        if (!q.has(4 + len)) return false;
        q.skip(4);
        const reason = decodeServerText(q.bytes(len)).trim();
        return this._failWith(reason || 'no reason given');
    }

    _failWith(reason) {
        if (this._authFailure) this._emit({ type: 'security-failure', reason });
        return this._fail(`${this._failPrefix}: ${reason}`);
    }

    _startVncAuth() {
        this._setState('authenticating');
        this._handler = this._onVncChallenge;
        return true;
    }

    _onVncChallenge() {
        const q = this._queue;
        if (!q.has(16)) return false;
        this._challenge = q.bytes(16);
        if (this._options.password === null) {
            this._pendingAuth = 'vnc';
            this._handler = this._waitForCredentials;
            this._emit({ type: 'credentials-required', types: ['password'] });
            return true;
        }
        this._sendVncAuthResponse();
        this._handler = this._onSecurityResult;
        return true;
    }

    _sendVncAuthResponse() {
        this._send(vncAuthResponse(this._options.password, this._challenge));
        this._challenge = null;
    }

    _waitForCredentials() {
        return false;   // sendPassword() resumes
    }

    // VeNCrypt (rfbproto "VeNCrypt"): version 0.2, an ack, the subtype list, our
    // pick, then for Plain the credentials and the usual SecurityResult.
    _onVeNCryptVersion() {
        const q = this._queue;
        if (!q.has(2)) return false;
        const major = q.u8(), minor = q.u8();
        if (major === 0 && minor < 2) {
            return this._fail(`server speaks VeNCrypt ${major}.${minor}; this client needs 0.2`);
        }
        this._send(Uint8Array.of(0, 2));
        this._handler = this._onVeNCryptAck;
        return true;
    }

    _onVeNCryptAck() {
        const q = this._queue;
        if (!q.has(1)) return false;
        if (q.u8() !== 0) return this._fail('server rejected VeNCrypt version 0.2');
        this._handler = this._onVeNCryptSubtypes;
        return true;
    }

    _onVeNCryptSubtypes() {
        const q = this._queue;
        if (!q.has(1)) return false;
        const count = q.peekU8(0);
        if (!q.has(1 + 4 * count)) return false;
        q.skip(1);
        const subtypes = [];
        for (let i = 0; i < count; i++) subtypes.push(q.u32());
        if (!subtypes.includes(VENCRYPT_PLAIN)) {
            if (subtypes.length && subtypes.every((t) => t >= VENCRYPT_TLS_FIRST && t <= VENCRYPT_TLS_LAST)) {
                return this._fail('server requires TLS security types only (VeNCrypt X509/TLS); ' +
                    'enable VncAuth or None on the server');
            }
            return this._fail(`VeNCrypt: server offers no supported subtype (offered: ${subtypes.join(', ') || 'none'}); ` +
                'this client supports Plain (256) only');
        }
        const pick = new Uint8Array(4);
        u32be(pick, 0, VENCRYPT_PLAIN);
        this._send(pick);
        if (this._options.password === null || this._options.username === null) {
            this._pendingAuth = 'plain';
            this._handler = this._waitForCredentials;
            this._emit({ type: 'credentials-required', types: ['username', 'password'] });
            return true;
        }
        this._sendPlainCredentials();
        this._handler = this._onSecurityResult;
        return true;
    }

    _sendPlainCredentials() {
        const user = utf8Encoder.encode(this._options.username ?? '');
        const pass = utf8Encoder.encode(this._options.password ?? '');
        const msg = new Uint8Array(8 + user.length + pass.length);
        u32be(msg, 0, user.length);
        u32be(msg, 4, pass.length);
        msg.set(user, 8);
        msg.set(pass, 8 + user.length);
        this._send(msg);
    }

    _onSecurityResult() {
        const q = this._queue;
        if (!q.has(4)) return false;
        const status = q.u32();
        if (status === SECURITY_RESULT_OK) return this._startInit();
        this._authFailure = true;
        this._failPrefix = 'authentication failed';
        if (this._minor >= 8) {
            this._handler = this._onFailureReason;
            return true;
        }
        // 3.3/3.7 give no reason; the server just closes.
        return this._failWith(status === SECURITY_RESULT_TOO_MANY ? 'too many attempts' : 'wrong password or not allowed');
    }

    _startInit() {
        this._send(Uint8Array.of(this._options.shared ? 1 : 0));   // ClientInit
        this._setState('server-init');
        this._handler = this._onServerInit;
        return true;
    }

    _onServerInit() {
        const q = this._queue;
        if (!q.has(24)) return false;
        const nameLen = this._peekU32(20);
        if (nameLen > MAX_NAME_BYTES) return this._fail(`ServerInit desktop name too long (${nameLen} bytes)`);
        if (!q.has(24 + nameLen)) return false;
        const width = q.u16(), height = q.u16();
        const tooLarge = framebufferTooLarge(width, height);
        if (tooLarge) return this._fail(tooLarge);
        // The server's natural pixel format does not matter: we set ours next.
        q.skip(16 + 4);   // ...and the name length, read above
        this._name = decodeServerText(q.bytes(nameLen));
        this._fbWidth = width;
        this._fbHeight = height;
        this._display.resize(width, height);

        this._send(this._pixelFormat.toSetPixelFormat());
        this._send(this._setEncodingsMessage());
        this._requestUpdate(!INCREMENTAL);
        this._handler = this._onMessage;
        this._emit({ type: 'desktop-name', name: this._name });
        this._emit({ type: 'resize', width, height });
        this._setState('connected', this._name);
        return true;
    }

    _buildEncodings(names) {
        const list = [];
        for (const name of names ?? DEFAULT_ENCODINGS) {
            const num = ENCODINGS[String(name).toLowerCase()];
            if (num === undefined) {
                throw new TypeError(`unknown encoding "${name}"; known: ${Object.keys(ENCODINGS).join(', ')}`);
            }
            // Ask only for what a decoder exists for; Raw needs no asking.
            if (this._decoders.has(num) && !list.includes(num)) list.push(num);
        }
        return list;
    }

    _setEncodingsMessage() {
        const o = this._options;
        // At 8 bpp Tight has no JPEG (it is defined for 24-bit colour only, as is
        // its gradient filter): without the quality level a server never tries it.
        const jpeg = o.lowColour ? [] : [PSEUDO.JPEG_QUALITY_0 + o.quality];
        const all = [
            ...this._encodings,
            ...jpeg,
            PSEUDO.COMPRESS_LEVEL_0 + o.compression,
            PSEUDO.DESKTOP_SIZE, PSEUDO.LAST_RECT, PSEUDO.CURSOR, PSEUDO.EXTENDED_DESKTOP_SIZE,
            PSEUDO.DESKTOP_NAME, PSEUDO.QEMU_EXTENDED_KEY, PSEUDO.FENCE, PSEUDO.CONTINUOUS_UPDATES,
            PSEUDO.EXTENDED_CLIPBOARD,
        ];
        const msg = new Uint8Array(4 + 4 * all.length);
        msg[0] = CLIENT_MSG.SET_ENCODINGS;
        u16be(msg, 2, all.length);
        all.forEach((enc, i) => u32be(msg, 4 + 4 * i, enc >>> 0));
        return msg;
    }

    _requestUpdate(incremental) {
        const msg = new Uint8Array(10);
        msg[0] = CLIENT_MSG.FRAMEBUFFER_UPDATE_REQUEST;
        msg[1] = incremental ? 1 : 0;
        u16be(msg, 6, this._fbWidth);
        u16be(msg, 8, this._fbHeight);
        this._send(msg);
    }

    _enableContinuousUpdates() {
        const msg = new Uint8Array(10);
        msg[0] = CLIENT_MSG.ENABLE_CONTINUOUS_UPDATES;
        msg[1] = 1;
        u16be(msg, 6, this._fbWidth);
        u16be(msg, 8, this._fbHeight);
        this._send(msg);
    }

    // ---- normal protocol: server messages ------------------------------------------

    _onMessage() {
        const q = this._queue;
        if (!q.has(1)) return false;
        switch (q.peekU8(0)) {
            case SERVER_MSG.FRAMEBUFFER_UPDATE: {
                if (!q.has(4)) return false;
                q.skip(2);
                this._fbu = { left: q.u16(), rect: null };
                this._handler = this._onRect;
                return true;
            }
            case SERVER_MSG.SET_COLOUR_MAP_ENTRIES: {
                // We always ask for true colour, so a colour map has no use here;
                // it is parsed only to stay in step with the stream.
                if (!q.has(6)) return false;
                const count = this._peekU16(4);
                if (!q.has(6 + 6 * count)) return false;
                q.skip(6 + 6 * count);
                return true;
            }
            case SERVER_MSG.BELL:
                q.skip(1);
                this._emit({ type: 'bell' });
                return true;
            case SERVER_MSG.SERVER_CUT_TEXT:
                return this._onServerCutText();
            case SERVER_MSG.END_OF_CONTINUOUS_UPDATES:
                q.skip(1);
                this._onEndOfContinuousUpdates();
                return true;
            case SERVER_MSG.SERVER_FENCE:
                return this._onServerFence();
            case SERVER_MSG.QEMU:
                return this._onQemuMessage();
            default:
                // Without knowing the type we cannot know its length: stop cleanly.
                return this._fail(`server sent unknown message type ${q.peekU8(0)}`);
        }
    }

    _onServerFence() {
        const q = this._queue;
        if (!q.has(9)) return false;
        const len = q.peekU8(8);
        if (!q.has(9 + len)) return false;
        q.skip(4);
        const flags = q.u32();
        q.skip(1);
        const payload = q.bytes(len);
        if (flags & FENCE_REQUEST) {
            const msg = new Uint8Array(9 + len);
            msg[0] = CLIENT_MSG.CLIENT_FENCE;
            u32be(msg, 4, flags & FENCE_SUPPORTED);
            msg[8] = len;
            msg.set(payload, 9);
            this._send(msg);
        }
        // A fence without the request bit would answer one of ours; we send none.
        return true;
    }

    _onQemuMessage() {
        const q = this._queue;
        if (!q.has(2)) return false;
        const sub = q.peekU8(1);
        if (sub !== QEMU_AUDIO) return this._fail(`server sent unknown QEMU message subtype ${sub}`);
        if (!q.has(4)) return false;
        if (this._peekU16(2) !== QEMU_AUDIO_DATA) {
            q.skip(4);   // audio start/stop: nothing to do, we never asked for audio
            return true;
        }
        if (!q.has(8)) return false;
        const len = this._peekU32(4);
        q.skip(8);
        return this._discard(len);
    }

    // Skips len bytes as they arrive, without buffering them all.
    _discard(len) {
        this._discardLeft = len;
        this._handler = this._onDiscard;
        return true;
    }

    _onDiscard() {
        const q = this._queue;
        const n = Math.min(this._discardLeft, q.length);
        q.skip(n);
        this._discardLeft -= n;
        if (this._discardLeft > 0) return false;
        this._handler = this._onMessage;
        return true;
    }

    _onEndOfContinuousUpdates() {
        if (!this._continuousSupported) {
            // The first one only says "supported" (rfbproto "ContinuousUpdates
            // Pseudo-encoding"): switch them on for the whole screen and stop
            // sending incremental requests, which the server would ignore anyway.
            this._continuousSupported = true;
            this._continuousEnabled = true;
            this._enableContinuousUpdates();
        } else if (this._continuousEnabled) {
            // The server stopped them: fall back to asking for every update.
            this._continuousEnabled = false;
            this._requestUpdate(INCREMENTAL);
        }
    }

    // ---- FramebufferUpdate ----------------------------------------------------------

    _onRect() {
        const fbu = this._fbu;
        const q = this._queue;
        if (!fbu.rect) {
            if (fbu.left === 0) return this._finishUpdate();
            if (!q.has(12)) return false;
            fbu.rect = { x: q.u16(), y: q.u16(), width: q.u16(), height: q.u16(), encoding: q.s32() };
            fbu.left--;   // rectangles still to come after this one
        }
        if (!this._handleRect(fbu.rect)) return false;
        fbu.rect = null;
        return true;
    }

    _finishUpdate() {
        this._fbu = null;
        this._handler = this._onMessage;
        // Ask first so the server can work on the next update while we draw.
        if (!this._continuousEnabled) this._requestUpdate(INCREMENTAL);
        this._display.flush();
        this._emit({ type: 'update-done' });
        return true;
    }

    // True when the rectangle is fully consumed.
    _handleRect(rect) {
        switch (rect.encoding) {
            case PSEUDO.DESKTOP_SIZE:
                return this._resize(rect.width, rect.height);
            case PSEUDO.EXTENDED_DESKTOP_SIZE:
                return this._onExtendedDesktopSize(rect);
            case PSEUDO.LAST_RECT:
                // The server announced more (typically 65535) than it sends.
                this._fbu.left = 0;
                return true;
            case PSEUDO.CURSOR:
                return this._onCursor(rect);
            case PSEUDO.DESKTOP_NAME:
                return this._onDesktopName();
            case PSEUDO.QEMU_EXTENDED_KEY:
                this._qemuExtendedKey = true;
                return true;
            default:
                break;
        }
        const decoder = this._decoders.get(rect.encoding);
        if (!decoder) {
            return this._fail(`server sent a rectangle in encoding ${rect.encoding}, which this client did not ask for`);
        }
        if (rect.x + rect.width > this._fbWidth || rect.y + rect.height > this._fbHeight) {
            return this._fail(`server sent rectangle ${rect.width}x${rect.height} at ${rect.x},${rect.y} ` +
                `outside the ${this._fbWidth}x${this._fbHeight} framebuffer`);
        }
        return decoder.decode(rect, this._queue, this._display, this._ctx);
    }

    // True, or false when the new size is more than the page can show (then failed).
    _resize(width, height) {
        if (width === this._fbWidth && height === this._fbHeight) return true;
        const tooLarge = framebufferTooLarge(width, height);
        if (tooLarge) return this._fail(tooLarge);
        this._fbWidth = width;
        this._fbHeight = height;
        this._display.resize(width, height);
        if (this._continuousEnabled) this._enableContinuousUpdates();   // new area
        this._emit({ type: 'resize', width, height });
        return true;
    }

    _onExtendedDesktopSize(rect) {
        const q = this._queue;
        if (!q.has(4)) return false;
        const count = q.peekU8(0);
        if (!q.has(4 + 16 * count)) return false;
        q.skip(4);
        const screens = [];
        for (let i = 0; i < count; i++) {
            screens.push({ id: q.u32(), x: q.u16(), y: q.u16(), width: q.u16(), height: q.u16(), flags: q.u32() });
        }
        this._supportsSetDesktopSize = true;
        const reason = rect.x, status = rect.y;
        if (reason === EDS_REASON_CLIENT && status !== 0) {
            // Our request was refused: a message for the user, not a protocol
            // error; the other fields are undefined, so the layout stays as it is.
            this._emit({
                type: 'resize-rejected', status,
                message: EDS_STATUS_TEXT[status] ?? `unknown error ${status}`,
            });
            return true;
        }
        this._screens = screens;
        return this._resize(rect.width, rect.height);
    }

    _onCursor(rect) {
        const q = this._queue;
        const { width, height } = rect;
        const pixels = width * height;
        if (pixels > MAX_CURSOR_PIXELS) return this._fail(`server sent a ${width}x${height} cursor, too large`);
        const pixelBytes = pixels * this._pixelFormat.bytesPerPixel;
        const stride = (width + 7) >> 3;
        const maskBytes = stride * height;
        if (!q.has(pixelBytes + maskBytes)) return false;
        const rgba = new Uint8ClampedArray(pixels * 4);
        this._pixelFormat.toRGBA(q.view(pixelBytes), 0, rgba, 0, pixels);
        const mask = q.view(maskBytes);
        // The bitmask says which pixels belong to the cursor: it becomes alpha.
        for (let y = 0, i = 3; y < height; y++) {
            const row = y * stride;
            for (let x = 0; x < width; x++, i += 4) {
                rgba[i] = (mask[row + (x >> 3)] & (0x80 >> (x & 7))) ? 255 : 0;
            }
        }
        this._emit({ type: 'cursor', width, height, hotX: rect.x, hotY: rect.y, rgba });
        return true;
    }

    _onDesktopName() {
        const q = this._queue;
        if (!q.has(4)) return false;
        const len = this._peekU32(0);
        if (len > MAX_NAME_BYTES) return this._fail(`DesktopName too long (${len} bytes)`);
        if (!q.has(4 + len)) return false;
        q.skip(4);
        this._name = decodeServerText(q.bytes(len));
        this._emit({ type: 'desktop-name', name: this._name });
        return true;
    }

    // ---- clipboard ----------------------------------------------------------------

    _onServerCutText() {
        const q = this._queue;
        if (!q.has(8)) return false;
        const signed = this._peekU32(4) | 0;
        // A negative length is the Extended Clipboard format, which we announce
        // in every SetEncodings; a positive one is the classic Latin-1 text.
        const extended = signed < 0;
        const len = extended ? -signed : signed;
        if (extended && len < 4) return this._fail('malformed extended clipboard message (no flags)');
        if (len > MAX_CLIPBOARD_BYTES) {
            q.skip(8);
            return this._discard(len);
        }
        if (!q.has(8 + len)) return false;
        q.skip(8);
        if (!extended) {
            this._emit({ type: 'clipboard', text: decodeLatin1(q.bytes(len)) });
            return true;
        }
        const flags = q.u32();
        const payload = q.bytes(len - 4);
        return this._onExtendedClipboard(flags, payload);
    }

    _onExtendedClipboard(flags, payload) {
        if (flags & CLIP_CAPS) {
            // Formats the server takes, then one U32 max size per format bit.
            const formats = flags & CLIP_FORMAT_MASK;
            const sizes = [];
            for (let bit = 0, o = 0; bit < 16; bit++) {
                if (!(formats & (1 << bit))) continue;
                if (o + 4 > payload.length) return this._fail('malformed extended clipboard caps (sizes missing)');
                sizes.push({ bit, max: payload[o] * 0x1000000 + ((payload[o + 1] << 16) | (payload[o + 2] << 8) | payload[o + 3]) });
                o += 4;
            }
            this._extClipboard = true;
            this._serverClipFlags = flags;
            this._serverClipTextMax = sizes.find((s) => s.bit === 0)?.max ?? 0;
            this._sendClipCaps();
            return true;
        }
        switch (flags & CLIP_ACTION_MASK) {
            case CLIP_REQUEST:
                if ((flags & CLIP_TEXT) && this._clipboardText !== null) this._sendClipProvide();
                return true;
            case CLIP_PEEK:
                this._sendClipAction(CLIP_NOTIFY | (this._clipboardText !== null ? CLIP_TEXT : 0));
                return true;
            case CLIP_NOTIFY:
                if (flags & CLIP_TEXT) this._sendClipAction(CLIP_REQUEST | CLIP_TEXT);
                return true;
            case CLIP_PROVIDE:
                return this._onClipProvide(flags, payload);
            default:
                return true;   // an action we do not know: nothing to answer
        }
    }

    _onClipProvide(flags, payload) {
        if (!(flags & CLIP_TEXT)) return true;   // only formats we never take
        let data;
        try {
            data = new Inflator().inflate(payload, CLIPBOARD_INFLATE_LIMIT);
        } catch (err) {
            // Too long: skipped, as a long classic ServerCutText is.
            if (err instanceof InflateLimitError) return true;
            throw err;
        }
        if (data.length < 4) return this._fail('malformed extended clipboard data (truncated)');
        const size = data[0] * 0x1000000 + ((data[1] << 16) | (data[2] << 8) | data[3]);
        let text = data.subarray(4, 4 + size);
        // The text is NUL-terminated UTF-8 with CRLF line ends.
        const nul = text.indexOf(0);
        if (nul >= 0) text = text.subarray(0, nul);
        this._emit({ type: 'clipboard', text: utf8Lenient.decode(text).replace(/\r\n/g, '\n') });
        return true;
    }

    _clipboardTextBytes(text) {
        const crlf = text.replace(/\r\n/g, '\n').replace(/\n/g, '\r\n');
        const utf8 = utf8Encoder.encode(crlf);
        const out = new Uint8Array(utf8.length + 1);   // + the terminating NUL
        out.set(utf8, 0);
        return out;
    }

    _sendClipCaps() {
        // We take text and every action. Max unsolicited size 0, as rfbproto
        // recommends: the server then always notifies and we request, which
        // avoids the ambiguity of partial unsolicited provides.
        const payload = new Uint8Array(4);
        u32be(payload, 0, 0);
        this._sendClipMessage(CLIP_CAPS | CLIP_REQUEST | CLIP_PEEK | CLIP_NOTIFY | CLIP_PROVIDE | CLIP_TEXT, payload);
    }

    _sendClipAction(flags) {
        this._sendClipMessage(flags, new Uint8Array(0));
    }

    _sendClipProvide() {
        const text = this._clipboardTextBytes(this._clipboardText ?? '');
        const plain = new Uint8Array(4 + text.length);
        u32be(plain, 0, text.length);
        plain.set(text, 4);
        this._sendClipMessage(CLIP_PROVIDE | CLIP_TEXT, zlibStored(plain));
    }

    _sendClipMessage(flags, payload) {
        const msg = new Uint8Array(12 + payload.length);
        msg[0] = CLIENT_MSG.CLIENT_CUT_TEXT;
        u32be(msg, 4, -(4 + payload.length) >>> 0);
        u32be(msg, 8, flags >>> 0);
        msg.set(payload, 12);
        this._send(msg);
    }
}

function unsupportedTypesMessage(types) {
    const names = types.map(securityName).join(', ');
    if (types.every((t) => TLS_SECURITY_TYPES.has(t))) {
        return `server requires TLS security types only (${names}); enable VncAuth or None on the server`;
    }
    return `no supported security type: the server offers ${names}; ` +
        'this client supports None, VNC Authentication and VeNCrypt Plain';
}
