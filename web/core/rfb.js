// rfb.js — the RFB (VNC) client protocol state machine: version and security
// handshake, initialisation, and the normal message loop of RFB 3.3/3.7/3.8
// (RFC 6143) plus the community extensions in web/CONTRACTS.md (rfbproto.rst).
//
// Needs: ./bytequeue.js (receive buffer), ./messages.js (the bytes of what we
// send), ./pixelformat.js (the pixel format we ask for), ./des.js (VNC
// Authentication), ./clipboard.js (classic and Extended Clipboard),
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
import * as messages from './messages.js';
import { PixelFormat } from './pixelformat.js';
import { vncAuthResponse } from './des.js';
import { Clipboard, MAX_CLIPBOARD_BYTES, decodeLatin1 } from './clipboard.js';
import { ENCODINGS, makeDecoders } from './decoders/index.js';
import { readVMwareCursor } from './decoders/vmwarecursor.js';
import { h264Supported } from './decoders/h264.js';
import { scancodeForCode } from './scancodes.js';
import { SecurityError } from './security/common.js';
import { TightAuth, tightServerInitExtra } from './security/tight.js';
import { XvpAuth } from './security/xvp.js';
import { ArdAuth } from './security/ard.js';
import { MsLogon2Auth } from './security/mslogon2.js';
import { Ra2neAuth } from './security/ra2.js';

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

// Preference order (CONTRACTS.md; names from ENCODINGS, as options.encodings
// takes them): CopyRect first, since it is the cheapest when a server can use
// it, then the compressing encodings, Raw last.
// TightPNG and JPEG (whole-picture PNG/JPEG, full colour) after Tight and ZRLE
// respectively, and not in low-colour mode, which they would defeat.
const DEFAULT_ENCODINGS = Object.freeze(['copyrect', 'tight', 'tightpng', 'zrle', 'jpeg', 'hextile', 'zlib', 'rre', 'raw']);
const FULL_COLOUR_ONLY = new Set(['tightpng', 'jpeg']);

export const PSEUDO = Object.freeze({
    JPEG_QUALITY_0: -32,          // -32..-23 = quality 0..9
    COMPRESS_LEVEL_0: -256,       // -256..-247 = compression 0..9
    DESKTOP_SIZE: -223,
    LAST_RECT: -224,
    CURSOR: -239,
    VMWARE_CURSOR: 0x574d5664,    // alpha cursors; asked for before CURSOR
    QEMU_EXTENDED_KEY: -258,
    QEMU_LED_STATE: -261,         // the server's Scroll/Num/Caps Lock state (one U8)
    DESKTOP_NAME: -307,
    EXTENDED_DESKTOP_SIZE: -308,
    FENCE: -312,
    CONTINUOUS_UPDATES: -313,
    EXTENDED_MOUSE_BUTTONS: -316, // PointerEvent may carry buttons 8-15 in an extra byte
    EXTENDED_CLIPBOARD: 0xc0a1e5ce | 0,   // as the S32 it is on the wire
    XVP: -309,                    // the server may then send XVP_INIT: power actions
});

const SERVER_MSG = Object.freeze({
    FRAMEBUFFER_UPDATE: 0, SET_COLOUR_MAP_ENTRIES: 1, BELL: 2, SERVER_CUT_TEXT: 3,
    END_OF_CONTINUOUS_UPDATES: 150, SERVER_FENCE: 248, XVP: 250, QEMU: 255,
});
// The XVP version whose shutdown/reboot/reset we send (the only one defined).
const XVP_VERSION = 1;
const XVP_ACTIONS = Object.freeze({
    shutdown: messages.XVP_CODE.SHUTDOWN, reboot: messages.XVP_CODE.REBOOT, reset: messages.XVP_CODE.RESET,
});
// An UltraVNC repeater's ProtocolVersion; the real server's follows the ID we send.
const REPEATER_VERSION = 'RFB 000.000\n';
const QEMU_AUDIO = 1;                // QEMU server submessage
const QEMU_AUDIO_DATA = 2;           // ...operation that carries a payload

export const SECURITY = Object.freeze({
    INVALID: 0, NONE: 1, VNC_AUTH: 2, RA2NE: 6, TIGHT: 16, VENCRYPT: 19, XVP: 22, ARD: 30, MSLOGON2: 113,
});
const SECURITY_NAMES = Object.freeze({
    0: 'Invalid', 1: 'None', 2: 'VNC Authentication', 5: 'RA2', 6: 'RA2ne', 13: 'RA2r',
    16: 'Tight', 17: 'Ultra', 18: 'TLS', 19: 'VeNCrypt', 20: 'SASL', 21: 'MD5', 22: 'xvp',
    30: 'Diffie-Hellman', 113: 'MSLogonII', 129: 'RA2_256', 130: 'RA2ne_256', 133: 'RA2r_256',
});
// The security types that are TLS underneath; used to say "TLS only" plainly.
const TLS_SECURITY_TYPES = new Set([18]);
// Preference when the server lists several (3.7+), by how well each hides the
// password from someone watching the traffic: RSA-AES encrypts it under a
// 2048-bit exchange; VNC Authentication sends a DES response an eavesdropper can
// brute-force offline; Tight and xvp carry VNC Authentication; Apple's
// Diffie-Hellman encrypts under the server's group; VeNCrypt may come down to
// Plain (the password in clear); MSLogonII's 64-bit exchange is broken at once.
const SECURITY_PREFERENCE = Object.freeze([
    SECURITY.NONE, SECURITY.RA2NE, SECURITY.VNC_AUTH, SECURITY.TIGHT, SECURITY.XVP, SECURITY.ARD,
    SECURITY.VENCRYPT, SECURITY.MSLOGON2,
]);
// The types run by a module in ./security/ (the contract is in security/common.js).
const SECURITY_MODULES = Object.freeze({
    [SECURITY.RA2NE]: Ra2neAuth, [SECURITY.TIGHT]: TightAuth, [SECURITY.XVP]: XvpAuth,
    [SECURITY.ARD]: ArdAuth, [SECURITY.MSLOGON2]: MsLogon2Auth,
});

const VENCRYPT_PLAIN = 256;
// VeNCrypt may also carry the ordinary types; ours, best first (Plain last: it
// sends the password in clear).
const VENCRYPT_PREFERENCE = Object.freeze([SECURITY.NONE, SECURITY.VNC_AUTH, VENCRYPT_PLAIN]);
const VENCRYPT_TLS_FIRST = 257;   // 257..264: TLSNone .. X509SASL, all need a TLS
const VENCRYPT_TLS_LAST = 264;    // layer this client does not have

const SECURITY_RESULT_OK = 0;
const SECURITY_RESULT_TOO_MANY = 2;   // Tight security only, but say it if we see it

// A failed SecurityResult's reason often only restates the failure (TigerVNC:
// "Authentication failure", QEMU: "Authentication failed"), and some servers
// put it in front of the real reason. After our own "authentication failed"
// that prefix is dropped, so the line says it once.
const AUTH_FAILED_PREFIX = /^(vnc\s+)?auth(entication)?\s+fail(ure|ed)\b[\s.!:;,\u2013\u2014-]*/i;
// What to say when nothing is left: the likely cause, by how we authenticated.
const AUTH_FAILED_GUESS = Object.freeze({
    vnc: 'wrong password?',
    plain: 'wrong username or password?',
    none: 'the server gave no reason',
});

const FENCE_BLOCK_BEFORE = 1 << 0;
const FENCE_BLOCK_AFTER = 1 << 1;
const FENCE_REQUEST = 0x80000000;
// Messages are processed strictly in order and at once, so BlockBefore and
// BlockAfter hold trivially; SyncNext and unknown bits are cleared in the reply,
// which (rfbproto "ClientFence") is how a peer says it does not support them.
const FENCE_SUPPORTED = FENCE_BLOCK_BEFORE | FENCE_BLOCK_AFTER;

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
// Framebuffer size. Browsers draw a canvas up to 32767 pixels a side (Chrome,
// Firefox, Safari) and 268 M pixels in all (Chrome, Safari), and the page keeps
// two RGBA copies (ours and the canvas's), 8 bytes a pixel. 8192x8192 pixels
// (256 MiB a copy) is twice an 8K desktop; ServerInit allows 65535x65535
// (17 GB a copy), which would take the tab down instead of showing an error.
const MAX_FB_SIDE = 32767;
const MAX_FB_PIXELS = 8192 * 8192;
// Clipboard text has its own, MAX_CLIPBOARD_BYTES in ./clipboard.js.

const INCREMENTAL = true;

// Lossless refresh: JPEG areas that stay unchanged this long are asked for
// again without the JPEG quality level (Tight then stays lossless), so a still
// screen is exact; half a second is past a typing or scrolling pause.
const LOSSLESS_AFTER_MS = 500;
// A server that sends JPEG even without a quality level would be asked again
// every half second forever: after this many refreshes that still bring JPEG,
// the client stops asking for that still picture.
const MAX_LOSSLESS_TRIES = 3;
const DEFAULT_TIMERS = Object.freeze({
    set: (fn, ms) => setTimeout(fn, ms),
    clear: (handle) => clearTimeout(handle),
});

// ---------------------------------------------------------------------------
// Small text and byte helpers

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

// Names and reasons: the spec recommends UTF-8, but older servers send Latin-1
// or a code page, so invalid UTF-8 is read as Latin-1 rather than mangled.
export function decodeServerText(bytes) {
    try {
        return utf8Strict.decode(bytes);
    } catch {
        return decodeLatin1(bytes);
    }
}

// A printable rendering of bytes that were not what we expected.
function describeBytes(bytes) {
    let s = '';
    for (const b of bytes) {
        s += (b >= 0x20 && b < 0x7f) ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
    }
    return s;
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

// Boxes {x0, y0, x1, y1} (x1, y1 exclusive) for the lossless refresh.
function boxOf(rect) {
    return { x0: rect.x, y0: rect.y, x1: rect.x + rect.width, y1: rect.y + rect.height };
}

function unionBox(a, b) {
    if (!a) return b;
    if (!b) return a;
    return { x0: Math.min(a.x0, b.x0), y0: Math.min(a.y0, b.y0), x1: Math.max(a.x1, b.x1), y1: Math.max(a.y1, b.y1) };
}

function boxContains(outer, inner) {
    return outer.x0 <= inner.x0 && outer.y0 <= inner.y0 && outer.x1 >= inner.x1 && outer.y1 >= inner.y1;
}

// The part of a box inside the framebuffer (it may have shrunk), or null.
function clipBox(box, width, height) {
    if (!box) return null;
    const out = { x0: box.x0, y0: box.y0, x1: Math.min(box.x1, width), y1: Math.min(box.y1, height) };
    return out.x1 > out.x0 && out.y1 > out.y0 ? out : null;
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
            target: options.target ?? '',   // xvp: the machine to connect to
            // Security type numbers this client may choose (null: all it supports),
            // e.g. to refuse MSLogonII's breakable exchange.
            securityTypes: Array.isArray(options.securityTypes) ? options.securityTypes.map(Number) : null,
            quality: clampInt(options.quality, 0, 9, 6),
            compression: clampInt(options.compression, 0, 9, 2),
            viewOnly: !!options.viewOnly,
            lowColour: !!options.lowColour,
            repeaterID: options.repeaterID ? String(options.repeaterID) : '',
        };
        this._decoders = makeDecoders();
        this._encodings = this._buildEncodings(options.encodings);
        this._defaultEncodings = !options.encodings;   // may gain H.264 if the browser decodes it
        // options.pixelFormat: a recording's player (web/player.js) decodes in the
        // format the recorded client asked for.
        this._pixelFormat = options.pixelFormat ??
            (this._options.lowColour ? PixelFormat.bgr233() : PixelFormat.default());
        this._ctx = { pixelFormat: this._pixelFormat, markLossy: (rect) => this._noteLossy(rect) };
        this._timers = options.timers ?? DEFAULT_TIMERS;   // {set(fn, ms), clear(handle)}: tests inject

        this._queue = new ByteQueue();
        this._state = 'connecting';
        this._handler = this._onProtocolVersion;
        this._pumping = false;

        this._minor = 0;                 // negotiated 3.x
        this._pendingAuth = null;        // 'vnc' | 'plain' | 'module' while waiting for sendPassword()
        this._auth = null;               // the ./security/ module running, if any
        this._tightInit = false;         // Tight security: ServerInit has a capabilities section
        this._challenge = null;
        this._fbWidth = 0;
        this._fbHeight = 0;
        this._name = '';
        this._fbu = null;                // { left, rect } while inside a FramebufferUpdate
        this._resized = false;           // this update changed the size: say so when presented
        this._discardLeft = 0;
        this._failPrefix = '';           // what a server-sent reason string explains
        this._authFailure = false;       // that reason also means "security-failure"
        this._authMethod = 'none';       // 'vnc' | 'plain' once chosen: words for a failure

        // Extensions the server has confirmed (never assumed from our SetEncodings).
        this._qemuExtendedKey = false;
        this._extendedMouseButtons = false;
        this._supportsSetDesktopSize = false;
        this._screens = [];
        this._continuousSupported = false;
        this._continuousEnabled = false;
        this._xvpVersion = 0;            // > 0 once the server sent XVP_INIT
        this._repeaterDone = false;      // the repeater ID went out (once per connection)
        this._clipboard = new Clipboard((bytes) => this._send(bytes));

        // Lossless refresh (boxes are {x0, y0, x1, y1}, x1/y1 exclusive).
        this._lossy = null;              // JPEG-drawn area not yet re-sent losslessly
        this._refreshBox = null;         // asked for losslessly; quality restored once it arrives
        this._refreshTries = 0;
        this._drawnBox = null;           // what the update being parsed drew...
        this._drawnLossy = false;        // ...and whether any of it was JPEG
        this._stillTimer = null;
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
        if (pending === 'module') {
            this._handler = this._onAuthStep;
        } else {
            if (pending === 'vnc') this._sendVncAuthResponse();
            else this._sendPlainCredentials();
            this._handler = this._onSecurityResult;
        }
        this._pump();
    }

    // ---- input side ----------------------------------------------------------

    // The proxy said this connection may only watch (wsproxy drops its input
    // anyway): from now on send none, as with options.viewOnly.
    setViewOnly() {
        this._options.viewOnly = true;
    }

    pointerEvent(x, y, buttonMask) {
        if (!this._inputAllowed()) return;
        const px = clampInt(x, 0, Math.max(0, this._fbWidth - 1), 0);
        const py = clampInt(y, 0, Math.max(0, this._fbHeight - 1), 0);
        // Buttons 8 and up (back, forward) only once the server has confirmed
        // ExtendedMouseButtons; before that the marker bit must stay 0 (rfbproto.rst).
        if (this._extendedMouseButtons && buttonMask & ~0x7f) {
            this._send(messages.extendedPointerEvent(px, py, buttonMask));
            return;
        }
        this._send(messages.pointerEvent(px, py, buttonMask & 0x7f));
    }

    // keysym: X11 keysym (0 if unknown); code: KeyboardEvent.code, used for the
    // QEMU Extended Key Event once the server has confirmed it.
    keyEvent(keysym, down, code) {
        if (!this._inputAllowed()) return;
        const sym = (keysym >>> 0) || 0;
        const scancode = this._qemuExtendedKey && code ? scancodeForCode(code) : 0;
        if (scancode) {
            this._send(messages.qemuExtendedKeyEvent(sym, down, scancode));
            return;
        }
        if (!sym) return;   // a plain KeyEvent with no keysym means nothing to a server
        this._send(messages.keyEvent(sym, down));
    }

    sendCtrlAltDel() {
        const keys = [[0xffe3, 'ControlLeft'], [0xffe9, 'AltLeft'], [0xffff, 'Delete']];
        for (const [sym, code] of keys) this.keyEvent(sym, true, code);
        for (const [sym, code] of keys.reverse()) this.keyEvent(sym, false, code);
    }

    clipboardSend(text) {
        if (!this._inputAllowed()) return;
        this._clipboard.send(String(text));
    }

    // SetDesktopSize, allowed only once the server has sent an ExtendedDesktopSize
    // rectangle. Returns whether a request was sent; the answer arrives as a
    // 'resize' event or a 'resize-rejected' event.
    requestResize(width, height) {
        if (!this._inputAllowed() || !this._supportsSetDesktopSize) return false;
        const w = clampInt(width, 1, 0xffff, 1);
        const h = clampInt(height, 1, 0xffff, 1);
        // One screen covering the framebuffer, with the first screen's id and flags.
        this._send(messages.setDesktopSize(w, h, this._screens[0] ?? { id: 0, flags: 0 }));
        return true;
    }

    // XVP power action ('shutdown' | 'reboot' | 'reset'), once the server offered XVP.
    // Returns whether it was sent; a refusal arrives as a 'power-failed' event.
    powerAction(action) {
        const code = XVP_ACTIONS[action];
        if (!this._inputAllowed() || this._xvpVersion < XVP_VERSION || code === undefined) return false;
        this._send(messages.xvp(XVP_VERSION, code));
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
        if (this._isFinal()) this._stopStillTimer();
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
        if (text === REPEATER_VERSION) return this._onRepeater();
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
        this._send(messages.protocolVersion(this._minor));
        this._setState('security');
        this._handler = this._minor === 3 ? this._onSecurityType33 : this._onSecurityTypes;
        return true;
    }

    // An UltraVNC repeater: send it the ID of the server to join, then that server's
    // ProtocolVersion follows on the same connection.
    _onRepeater() {
        if (!this._options.repeaterID) {
            return this._fail('the server is an UltraVNC repeater: set repeaterID to the ID of the VNC server to join');
        }
        if (this._repeaterDone) return this._fail('the repeater answered the repeater ID with another repeater greeting');
        this._repeaterDone = true;
        this._send(messages.repeaterId(this._options.repeaterID));
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
        const allowed = this._options.securityTypes;
        const chosen = SECURITY_PREFERENCE.find((t) => types.includes(t) && (!allowed || allowed.includes(t)));
        if (chosen === undefined) return this._fail(unsupportedTypesMessage(types, allowed));
        this._send(messages.securityType(chosen));
        if (chosen === SECURITY.NONE) return this._continueAs('none');
        if (chosen === SECURITY.VNC_AUTH) return this._startVncAuth();
        this._setState('authenticating');
        if (chosen === SECURITY.VENCRYPT) {
            this._handler = this._onVeNCryptVersion;
            return true;
        }
        this._tightInit = chosen === SECURITY.TIGHT;
        this._auth = new SECURITY_MODULES[chosen]({
            send: (bytes) => this._send(bytes),
            options: this._options,
            onServerKey: (fingerprint) => this._emit({ type: 'server-key', fingerprint }),
        });
        this._authMethod = this._auth.method;
        this._handler = this._onAuthStep;
        return true;
    }

    // After a security type's own exchange: go on as None (3.8: a
    // SecurityResult; 3.3/3.7: straight to ClientInit), as VNC Authentication,
    // or to the SecurityResult.
    _continueAs(next) {
        if (next === 'vnc') return this._startVncAuth();
        if (next === 'none' && this._minor < 8) return this._startInit();
        if (this._state === 'security') this._setState('authenticating');
        this._handler = this._onSecurityResult;
        return true;
    }

    // One step of a ./security/ module (contract in security/common.js).
    _onAuthStep() {
        let result;
        try {
            result = this._auth.step(this._queue, { username: this._options.username, password: this._options.password });
        } catch (err) {
            if (err instanceof SecurityError) return this._fail(err.message);
            throw err;
        }
        this._authMethod = this._auth.method;
        if (typeof result === 'boolean') return result;
        if (result.ask) {
            this._pendingAuth = 'module';
            this._handler = this._waitForCredentials;
            this._emit({ type: 'credentials-required', types: result.ask });
            return true;
        }
        this._auth = null;
        return this._continueAs(result.next);
    }

    // A U32 length and that many bytes of reason, then failure. Used for a
    // refused connection and for a failed SecurityResult (3.8).
    _onFailureReason() {
        const q = this._queue;
        if (!q.has(4)) return false;
        const len = q.peekU32(0);
        if (len > MAX_REASON_BYTES) {
            return this._fail(`${this._failPrefix} (its reason, ${len} bytes, is too long to show)`);
        }
        if (!q.has(4 + len)) return false;
        q.skip(4);
        return this._failWith(decodeServerText(q.bytes(len)).trim());
    }

    // reason: the server's words, or '' when it gave none.
    _failWith(reason) {
        if (!this._authFailure) return this._fail(`${this._failPrefix}: ${reason || 'no reason given'}`);
        this._emit({ type: 'security-failure', reason });
        return this._fail(authFailureText(reason, this._authMethod));
    }

    _startVncAuth() {
        this._authMethod = 'vnc';
        if (this._state === 'security') this._setState('authenticating');
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
        this._send(messages.veNCryptVersion());
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
        const chosen = VENCRYPT_PREFERENCE.find((t) => subtypes.includes(t));
        if (chosen === undefined) {
            if (subtypes.length && subtypes.every((t) => t >= VENCRYPT_TLS_FIRST && t <= VENCRYPT_TLS_LAST)) {
                return this._fail('server requires TLS security types only (VeNCrypt X509/TLS); ' +
                    'enable VncAuth or None on the server');
            }
            return this._fail(`VeNCrypt: server offers no supported subtype (offered: ${subtypes.join(', ') || 'none'}); ` +
                'this client supports None (1), VncAuth (2) and Plain (256)');
        }
        this._send(messages.veNCryptSubtype(chosen));
        // Inside VeNCrypt even None is followed by a SecurityResult (the type is not None).
        if (chosen === SECURITY.NONE) return this._continueAs('result');
        if (chosen === SECURITY.VNC_AUTH) return this._continueAs('vnc');
        this._authMethod = 'plain';
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
        this._send(messages.plainCredentials(this._options.username ?? '', this._options.password ?? ''));
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
        return this._failWith(status === SECURITY_RESULT_TOO_MANY ? 'too many attempts' : '');
    }

    _startInit() {
        this._send(messages.clientInit(this._options.shared));
        this._setState('server-init');
        this._handler = this._onServerInit;
        return true;
    }

    _onServerInit() {
        const q = this._queue;
        if (!q.has(24)) return false;
        const nameLen = q.peekU32(20);
        if (nameLen > MAX_NAME_BYTES) return this._fail(`ServerInit desktop name too long (${nameLen} bytes)`);
        const extra = this._tightInit ? tightServerInitExtra(q, 24 + nameLen) : 0;
        if (extra === null || !q.has(24 + nameLen + extra)) return false;
        const width = q.u16(), height = q.u16();
        const tooLarge = framebufferTooLarge(width, height);
        if (tooLarge) return this._fail(tooLarge);
        // The server's natural pixel format does not matter: we set ours next.
        q.skip(16 + 4);   // ...and the name length, read above
        this._name = decodeServerText(q.bytes(nameLen));
        q.skip(extra);   // Tight's capability lists: nothing we act on
        this._fbWidth = width;
        this._fbHeight = height;
        this._display.resize(width, height);
        this._display.present();   // the canvas takes the new size now, not at the first update

        this._send(this._pixelFormat.toSetPixelFormat());
        this._send(messages.setEncodings(this._encodingsToAsk()));
        this._requestUpdate(!INCREMENTAL);
        this._handler = this._onMessage;
        this._emit({ type: 'desktop-name', name: this._name });
        this._emit({ type: 'resize', width, height });
        this._setState('connected', this._name);
        return true;
    }

    _buildEncodings(names) {
        const list = [];
        const defaults = DEFAULT_ENCODINGS.filter((n) => !(this._options.lowColour && FULL_COLOUR_ONLY.has(n)));
        for (const name of names ?? defaults) {
            const num = ENCODINGS[String(name).toLowerCase()];
            if (num === undefined) {
                throw new TypeError(`unknown encoding "${name}"; known: ${Object.keys(ENCODINGS).join(', ')}`);
            }
            if (!list.includes(num)) list.push(num);
        }
        return list;
    }

    // Our encodings in preference order, then the pseudo-encodings. lossless:
    // without the JPEG quality level, which is what lets a server use JPEG.
    _encodingsToAsk(lossless = false) {
        const o = this._options;
        // At 8 bpp Tight has no JPEG (it is defined for 24-bit colour only, as is
        // its gradient filter): without the quality level a server never tries it.
        const jpeg = o.lowColour || lossless ? [] : [PSEUDO.JPEG_QUALITY_0 + o.quality];
        return [
            ...this._withH264(this._encodings),
            ...jpeg,
            PSEUDO.COMPRESS_LEVEL_0 + o.compression,
            PSEUDO.DESKTOP_SIZE, PSEUDO.LAST_RECT, PSEUDO.VMWARE_CURSOR, PSEUDO.CURSOR, PSEUDO.EXTENDED_DESKTOP_SIZE,
            PSEUDO.DESKTOP_NAME, PSEUDO.QEMU_EXTENDED_KEY, PSEUDO.FENCE, PSEUDO.CONTINUOUS_UPDATES,
            PSEUDO.EXTENDED_CLIPBOARD, PSEUDO.XVP, PSEUDO.QEMU_LED_STATE, PSEUDO.EXTENDED_MOUSE_BUTTONS,
        ];
    }

    // H.264 after JPEG (so Tight and ZRLE, which end exact when still, win where
    // a server has them), only where WebCodecs decodes it (known by ServerInit).
    _withH264(list) {
        if (!this._defaultEncodings || this._options.lowColour || !h264Supported()) return list;
        const at = list.indexOf(ENCODINGS.jpeg) + 1;
        return [...list.slice(0, at), ENCODINGS.h264, ...list.slice(at)];
    }

    _requestUpdate(incremental) {
        this._send(messages.framebufferUpdateRequest(incremental, this._fbWidth, this._fbHeight));
    }

    _enableContinuousUpdates() {
        this._send(messages.enableContinuousUpdates(this._fbWidth, this._fbHeight));
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
                const count = q.peekU16(4);
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
            case SERVER_MSG.XVP:
                return this._onXvpMessage();
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
        if (flags & FENCE_REQUEST) this._send(messages.clientFence(flags & FENCE_SUPPORTED, payload));
        // A fence without the request bit would answer one of ours; we send none.
        return true;
    }

    // XVP: type, padding, version, code. INIT offers power actions; FAIL refuses one.
    _onXvpMessage() {
        const q = this._queue;
        if (!q.has(4)) return false;
        q.skip(2);
        const version = q.u8(), code = q.u8();
        if (code === messages.XVP_CODE.INIT) {
            this._xvpVersion = version;
            this._emit({ type: 'power', available: version >= XVP_VERSION });
        } else if (code === messages.XVP_CODE.FAIL) {
            this._emit({ type: 'power-failed' });
        } else {
            return this._fail(`server sent unknown XVP message code ${code}`);
        }
        return true;
    }

    _onQemuMessage() {
        const q = this._queue;
        if (!q.has(2)) return false;
        const sub = q.peekU8(1);
        if (sub !== QEMU_AUDIO) return this._fail(`server sent unknown QEMU message subtype ${sub}`);
        if (!q.has(4)) return false;
        if (q.peekU16(2) !== QEMU_AUDIO_DATA) {
            q.skip(4);   // audio start/stop: nothing to do, we never asked for audio
            return true;
        }
        if (!q.has(8)) return false;
        const len = q.peekU32(4);
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

    // The update is parsed: present it whole. While its images still decode,
    // nothing more is parsed (the bytes wait in the queue) and nothing more is
    // asked for, so the server never sends work faster than the page shows it.
    _finishUpdate() {
        this._fbu = null;
        if (this._display.present()) return this._presented();
        this._handler = this._onAwaitPresent;
        this._display.whenIdle().then(() => {
            if (this._handler !== this._onAwaitPresent || this._isFinal()) return;
            this._presented();
            this._pump();
        });
        return false;
    }

    _onAwaitPresent() {
        return false;
    }

    _presented() {
        this._handler = this._onMessage;
        this._trackStillness();
        if (!this._continuousEnabled) this._requestUpdate(INCREMENTAL);
        if (this._resized) {
            // Announced with the frame that shows the new size, not mid-update.
            this._resized = false;
            this._emit({ type: 'resize', width: this._fbWidth, height: this._fbHeight });
        }
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
            case PSEUDO.VMWARE_CURSOR:
                return this._onVMwareCursor(rect);
            case PSEUDO.DESKTOP_NAME:
                return this._onDesktopName();
            case PSEUDO.QEMU_EXTENDED_KEY:
                this._qemuExtendedKey = true;
                return true;
            case PSEUDO.EXTENDED_MOUSE_BUTTONS:
                this._extendedMouseButtons = true;
                return true;
            case PSEUDO.QEMU_LED_STATE:
                return this._onLedState();
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
        if (!decoder.decode(rect, this._queue, this._display, this._ctx)) return false;
        if (rect.width > 0 && rect.height > 0) this._drawnBox = unionBox(this._drawnBox, boxOf(rect));
        return true;
    }

    // QEMU LED State: one byte, bit 0 Scroll Lock, 1 Num Lock, 2 Caps Lock.
    _onLedState() {
        if (!this._queue.has(1)) return false;
        const bits = this._queue.u8();
        this._emit({ type: 'led', scroll: !!(bits & 1), num: !!(bits & 2), caps: !!(bits & 4) });
        return true;
    }

    // ---- lossless refresh ------------------------------------------------------------
    // JPEG areas are collected; after an update that drew anything the still
    // timer starts again, and when it runs out the server is asked (SetEncodings
    // without the quality level, then a non-incremental request) for those areas
    // losslessly. The update that brings all of that area without JPEG ends the
    // refresh: the user's encodings (with quality) go back at once, so motion
    // that follows is as fast as before.

    _noteLossy(rect) {
        this._drawnLossy = true;
        this._lossy = unionBox(this._lossy, boxOf(rect));
    }

    // After each presented update.
    _trackStillness() {
        const drawn = this._drawnBox, lossy = this._drawnLossy;
        this._drawnBox = null;
        this._drawnLossy = false;
        if (!drawn) return;   // an empty update: the screen is still as still
        const refresh = this._refreshBox;
        if (refresh && !lossy && boxContains(drawn, refresh)) {
            // A non-incremental request is answered with all of its area, so
            // this update brought the refresh: JPEG drawn before it inside it is gone.
            if (this._lossy && boxContains(refresh, this._lossy)) this._lossy = null;
            this._endRefresh();
        }
        this._stopStillTimer();
        if (this._lossy || this._refreshBox) {
            this._stillTimer = this._timers.set(() => this._onStill(), LOSSLESS_AFTER_MS);
        }
    }

    _onStill() {
        this._stillTimer = null;
        if (this._state !== 'connected') return;
        const box = clipBox(unionBox(this._lossy, this._refreshBox), this._fbWidth, this._fbHeight);
        if (!box || this._refreshTries >= MAX_LOSSLESS_TRIES) {
            // Nothing left inside a shrunk desktop, or JPEG keeps coming without
            // a quality level: stop asking until JPEG is drawn again.
            this._lossy = null;
            this._endRefresh();
            return;
        }
        if (!this._refreshBox) this._send(messages.setEncodings(this._encodingsToAsk(true)));
        this._refreshBox = box;
        this._lossy = null;
        this._refreshTries++;
        this._send(messages.framebufferUpdateRequest(!INCREMENTAL, box.x1 - box.x0, box.y1 - box.y0, box.x0, box.y0));
    }

    _endRefresh() {
        if (this._refreshBox) this._send(messages.setEncodings(this._encodingsToAsk()));
        this._refreshBox = null;
        if (!this._lossy) this._refreshTries = 0;
    }

    _stopStillTimer() {
        if (this._stillTimer === null) return;
        this._timers.clear(this._stillTimer);
        this._stillTimer = null;
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
        this._resized = true;   // the 'resize' event goes out when the update is presented
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

    _onVMwareCursor(rect) {
        if (rect.width * rect.height > MAX_CURSOR_PIXELS) {
            return this._fail(`server sent a ${rect.width}x${rect.height} cursor, too large`);
        }
        const cursor = readVMwareCursor(rect, this._queue, this._pixelFormat);
        if (!cursor) return false;
        this._emit({ type: 'cursor', ...cursor });
        return true;
    }

    _onDesktopName() {
        const q = this._queue;
        if (!q.has(4)) return false;
        const len = q.peekU32(0);
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
        const signed = q.peekU32(4) | 0;
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
        const result = this._clipboard.receive(q.u32(), q.bytes(len - 4));
        if (result?.error) return this._fail(result.error);
        if (result) this._emit({ type: 'clipboard', text: result.text });
        return true;
    }
}

// The failure line for a refused SecurityResult: our words once, then the
// server's reason without a restatement of them, or the likely cause.
export function authFailureText(reason, method) {
    const rest = String(reason || '').replace(AUTH_FAILED_PREFIX, '').trim();
    return `authentication failed: ${rest || AUTH_FAILED_GUESS[method] || AUTH_FAILED_GUESS.none}`;
}

function unsupportedTypesMessage(types, allowed) {
    const names = types.map(securityName).join(', ');
    if (allowed && types.some((t) => SECURITY_PREFERENCE.includes(t))) {
        return `no allowed security type: the server offers ${names}; ` +
            `this client is set to use only ${allowed.map(securityName).join(', ') || 'none'}`;
    }
    if (types.every((t) => TLS_SECURITY_TYPES.has(t))) {
        return `server requires TLS security types only (${names}); enable VncAuth or None on the server`;
    }
    return `no supported security type: the server offers ${names}; ` +
        'this client supports None, VNC Authentication, RA2ne, Tight, xvp, Diffie-Hellman, VeNCrypt ' +
        '(None, VncAuth, Plain) and MSLogonII';
}
