// web/core/messages.js — the bytes of every message the client sends: handshake
// replies and the client-to-server messages of RFC 6143 §7.5 and rfbproto.rst's
// extensions (QEMU, Fence, ContinuousUpdates, SetDesktopSize, Extended Clipboard).
// Each encoder is a pure function from values to one message; rfb.js decides
// when to send what. SetPixelFormat lives with the format, in ./pixelformat.js.
// Needs: nothing.

// Client-to-server message types (rfbproto.rst names).
const CLIENT_MSG = Object.freeze({
    SET_ENCODINGS: 2, FRAMEBUFFER_UPDATE_REQUEST: 3, KEY_EVENT: 4, POINTER_EVENT: 5,
    CLIENT_CUT_TEXT: 6, ENABLE_CONTINUOUS_UPDATES: 150, CLIENT_FENCE: 248,
    SET_DESKTOP_SIZE: 251, QEMU: 255,
});
const QEMU_EXTENDED_KEY_EVENT = 0;   // QEMU client submessage

const utf8Encoder = new TextEncoder();

export function putU16(out, o, v) {
    out[o] = (v >>> 8) & 0xff;
    out[o + 1] = v & 0xff;
}

export function putU32(out, o, v) {
    out[o] = (v >>> 24) & 0xff;
    out[o + 1] = (v >>> 16) & 0xff;
    out[o + 2] = (v >>> 8) & 0xff;
    out[o + 3] = v & 0xff;
}

// ---- handshake ------------------------------------------------------------------

// ProtocolVersion for RFB 3.minor (3, 7 or 8).
export function protocolVersion(minor) {
    return utf8Encoder.encode(`RFB 003.00${minor}\n`);
}

// The security type the client picked (3.7+).
export function securityType(type) {
    return Uint8Array.of(type);
}

// VeNCrypt: the version we speak (0.2), then the subtype we picked (a U32).
export function veNCryptVersion() {
    return Uint8Array.of(0, 2);
}

export function veNCryptSubtype(subtype) {
    const msg = new Uint8Array(4);
    putU32(msg, 0, subtype);
    return msg;
}

// VeNCrypt Plain: U32 lengths, then the UTF-8 username and password.
export function plainCredentials(username, password) {
    const user = utf8Encoder.encode(username);
    const pass = utf8Encoder.encode(password);
    const msg = new Uint8Array(8 + user.length + pass.length);
    putU32(msg, 0, user.length);
    putU32(msg, 4, pass.length);
    msg.set(user, 8);
    msg.set(pass, 8 + user.length);
    return msg;
}

export function clientInit(shared) {
    return Uint8Array.of(shared ? 1 : 0);
}

// ---- normal protocol ------------------------------------------------------------

// Encodings and pseudo-encodings, as S32s in the order given.
export function setEncodings(encodings) {
    const msg = new Uint8Array(4 + 4 * encodings.length);
    msg[0] = CLIENT_MSG.SET_ENCODINGS;
    putU16(msg, 2, encodings.length);
    encodings.forEach((enc, i) => putU32(msg, 4 + 4 * i, enc >>> 0));
    return msg;
}

// A width x height area at x, y (by default the whole framebuffer from 0, 0).
export function framebufferUpdateRequest(incremental, width, height, x = 0, y = 0) {
    const msg = new Uint8Array(10);
    msg[0] = CLIENT_MSG.FRAMEBUFFER_UPDATE_REQUEST;
    msg[1] = incremental ? 1 : 0;
    putU16(msg, 2, x);
    putU16(msg, 4, y);
    putU16(msg, 6, width);
    putU16(msg, 8, height);
    return msg;
}

// Continuous updates on, for the whole width x height framebuffer.
export function enableContinuousUpdates(width, height) {
    const msg = new Uint8Array(10);
    msg[0] = CLIENT_MSG.ENABLE_CONTINUOUS_UPDATES;
    msg[1] = 1;
    putU16(msg, 6, width);
    putU16(msg, 8, height);
    return msg;
}

export function keyEvent(keysym, down) {
    const msg = new Uint8Array(8);
    msg[0] = CLIENT_MSG.KEY_EVENT;
    msg[1] = down ? 1 : 0;
    putU32(msg, 4, keysym);
    return msg;
}

// QEMU Extended Key Event: the keysym and the XT keycode (./scancodes.js).
export function qemuExtendedKeyEvent(keysym, down, keycode) {
    const msg = new Uint8Array(12);
    msg[0] = CLIENT_MSG.QEMU;
    msg[1] = QEMU_EXTENDED_KEY_EVENT;
    putU16(msg, 2, down ? 1 : 0);
    putU32(msg, 4, keysym);
    putU32(msg, 8, keycode);
    return msg;
}

// Bits 0-6 of buttonMask are buttons 1-7: 1-3 left/middle/right, 4-7 wheel
// up/down/left/right. Bit 7 is ExtendedMouseButtons' marker, so a plain
// PointerEvent keeps it 0. x and y must already be inside the framebuffer.
export function pointerEvent(x, y, buttonMask) {
    const msg = new Uint8Array(6);
    msg[0] = CLIENT_MSG.POINTER_EVENT;
    msg[1] = buttonMask & 0x7f;
    putU16(msg, 2, x);
    putU16(msg, 4, y);
    return msg;
}

// ExtendedMouseButtons (rfbproto.rst): buttonMask bit N-1 is button N as above,
// up to button 15. Buttons 1-7 go in the first byte with the marker bit 7 set;
// buttons 8-15 (8 back, 9 forward) follow in one more byte, bit 0 = button 8.
export function extendedPointerEvent(x, y, buttonMask) {
    const msg = new Uint8Array(7);
    msg[0] = CLIENT_MSG.POINTER_EVENT;
    msg[1] = (buttonMask & 0x7f) | 0x80;
    putU16(msg, 2, x);
    putU16(msg, 4, y);
    msg[6] = (buttonMask >> 7) & 0xff;
    return msg;
}

// Classic ClientCutText: Latin-1 text bytes.
export function clientCutText(latin1) {
    const msg = new Uint8Array(8 + latin1.length);
    msg[0] = CLIENT_MSG.CLIENT_CUT_TEXT;
    putU32(msg, 4, latin1.length);
    msg.set(latin1, 8);
    return msg;
}

// Extended Clipboard ClientCutText: the negative length says "flags follow".
export function extendedClientCutText(flags, payload) {
    const msg = new Uint8Array(12 + payload.length);
    msg[0] = CLIENT_MSG.CLIENT_CUT_TEXT;
    putU32(msg, 4, -(4 + payload.length) >>> 0);
    putU32(msg, 8, flags >>> 0);
    msg.set(payload, 12);
    return msg;
}

// SetDesktopSize with one screen at 0,0 covering width x height; `screen` gives
// the id and flags to keep (rfbproto: preserve what we do not mean to change).
export function setDesktopSize(width, height, screen) {
    const msg = new Uint8Array(8 + 16);
    msg[0] = CLIENT_MSG.SET_DESKTOP_SIZE;
    putU16(msg, 2, width);
    putU16(msg, 4, height);
    msg[6] = 1;   // number-of-screens
    putU32(msg, 8, screen.id);
    putU16(msg, 12, 0);
    putU16(msg, 14, 0);
    putU16(msg, 16, width);
    putU16(msg, 18, height);
    putU32(msg, 20, screen.flags);
    return msg;
}

// ClientFence (rfbproto "ClientFence"): flags and the payload to echo, whose
// length goes out as one byte.
export function clientFence(flags, payload) {
    const msg = new Uint8Array(9 + payload.length);
    msg[0] = CLIENT_MSG.CLIENT_FENCE;
    putU32(msg, 4, flags);
    msg[8] = payload.length;
    msg.set(payload, 9);
    return msg;
}

// ---- UltraVNC repeater and XVP --------------------------------------------------

// XVP (rfbproto "xvp Client Message"): type 250, padding, xvp-extension-version, code.
const XVP_MESSAGE_TYPE = 250;
export const XVP_CODE = Object.freeze({ FAIL: 0, INIT: 1, SHUTDOWN: 2, REBOOT: 3, RESET: 4 });

export function xvp(version, code) {
    return Uint8Array.of(XVP_MESSAGE_TYPE, 0, version, code);
}

// An UltraVNC repeater answers "RFB 000.000\n" and then reads exactly this many
// bytes: "ID:<id>", NUL-padded, naming the server to join.
export const REPEATER_ID_BYTES = 250;

export function repeaterId(id) {
    const text = utf8Encoder.encode(`ID:${id}`);
    if (text.length > REPEATER_ID_BYTES) throw new RangeError(`repeater ID longer than ${REPEATER_ID_BYTES - 3} bytes`);
    const msg = new Uint8Array(REPEATER_ID_BYTES);
    msg.set(text);
    return msg;
}
