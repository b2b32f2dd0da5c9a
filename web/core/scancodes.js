// scancodes.js — KeyboardEvent.code -> the XT keycode the QEMU Extended Key Event
// message carries (rfbproto "QEMU Extended Key Event Message").
// Needs: nothing (a pure table).
//
// Why a keycode at all: with it a VM's guest applies its own keyboard layout,
// so keys come out right whatever layout the browser uses. KeyboardEvent.code
// names the physical key (the US-layout position), which is exactly this.
//
// Encoding (rfbproto): a one-byte XT make code below 0x7f is sent as is; an
// 0xE0-prefixed two-byte code is sent as 0x80 | second byte (Right = E0 4D ->
// 0xcd). Print/SysRq is sent as 0x54 and Pause/Break as 0xc6, as the spec says.
// Values follow the "XT KBD" column of QEMU's keycodemapdb (the numbering QEMU
// itself decodes), with its 0x1xx entries folded to 0x80 | low byte.

export const SCANCODES = Object.freeze({
    Escape: 0x01,
    Digit1: 0x02, Digit2: 0x03, Digit3: 0x04, Digit4: 0x05, Digit5: 0x06,
    Digit6: 0x07, Digit7: 0x08, Digit8: 0x09, Digit9: 0x0a, Digit0: 0x0b,
    Minus: 0x0c, Equal: 0x0d, Backspace: 0x0e, Tab: 0x0f,
    KeyQ: 0x10, KeyW: 0x11, KeyE: 0x12, KeyR: 0x13, KeyT: 0x14,
    KeyY: 0x15, KeyU: 0x16, KeyI: 0x17, KeyO: 0x18, KeyP: 0x19,
    BracketLeft: 0x1a, BracketRight: 0x1b, Enter: 0x1c, ControlLeft: 0x1d,
    KeyA: 0x1e, KeyS: 0x1f, KeyD: 0x20, KeyF: 0x21, KeyG: 0x22,
    KeyH: 0x23, KeyJ: 0x24, KeyK: 0x25, KeyL: 0x26,
    Semicolon: 0x27, Quote: 0x28, Backquote: 0x29, ShiftLeft: 0x2a, Backslash: 0x2b,
    KeyZ: 0x2c, KeyX: 0x2d, KeyC: 0x2e, KeyV: 0x2f, KeyB: 0x30, KeyN: 0x31, KeyM: 0x32,
    Comma: 0x33, Period: 0x34, Slash: 0x35, ShiftRight: 0x36,
    NumpadMultiply: 0x37, AltLeft: 0x38, Space: 0x39, CapsLock: 0x3a,
    F1: 0x3b, F2: 0x3c, F3: 0x3d, F4: 0x3e, F5: 0x3f,
    F6: 0x40, F7: 0x41, F8: 0x42, F9: 0x43, F10: 0x44,
    NumLock: 0x45, ScrollLock: 0x46,
    Numpad7: 0x47, Numpad8: 0x48, Numpad9: 0x49, NumpadSubtract: 0x4a,
    Numpad4: 0x4b, Numpad5: 0x4c, Numpad6: 0x4d, NumpadAdd: 0x4e,
    Numpad1: 0x4f, Numpad2: 0x50, Numpad3: 0x51, Numpad0: 0x52, NumpadDecimal: 0x53,
    PrintScreen: 0x54,
    IntlBackslash: 0x56,            // the extra key left of Z on ISO keyboards
    F11: 0x57, F12: 0x58,
    NumpadEqual: 0x59,
    NumpadComma: 0x7e,
    F13: 0x5d, F14: 0x5e, F15: 0x5f, F16: 0x55, F17: 0x83, F18: 0xf7,
    F19: 0x84, F20: 0x5a, F21: 0x74, F22: 0xf9, F23: 0x6d, F24: 0x6f,
    // Japanese / Korean keyboards
    KanaMode: 0x70, IntlRo: 0x73, Lang5: 0x76, Lang4: 0x77, Lang3: 0x78,
    Convert: 0x79, NonConvert: 0x7b, IntlYen: 0x7d, Lang2: 0x8d,
    // 0xE0-prefixed keys
    MediaTrackPrevious: 0x90, MediaTrackNext: 0x99,
    NumpadEnter: 0x9c, ControlRight: 0x9d,
    AudioVolumeMute: 0xa0, LaunchApp2: 0xa1, MediaPlayPause: 0xa2, MediaStop: 0xa4,
    AudioVolumeDown: 0xae, AudioVolumeUp: 0xb0, BrowserHome: 0xb2,
    NumpadDivide: 0xb5, AltRight: 0xb8,
    Pause: 0xc6, Home: 0xc7, ArrowUp: 0xc8, PageUp: 0xc9,
    ArrowLeft: 0xcb, ArrowRight: 0xcd, End: 0xcf,
    ArrowDown: 0xd0, PageDown: 0xd1, Insert: 0xd2, Delete: 0xd3,
    MetaLeft: 0xdb, MetaRight: 0xdc, ContextMenu: 0xdd,
    Power: 0xde, Sleep: 0xdf, WakeUp: 0xe3,
    BrowserSearch: 0xe5, BrowserFavorites: 0xe6, BrowserRefresh: 0xe7, BrowserStop: 0xe8,
    BrowserForward: 0xe9, BrowserBack: 0xea, LaunchApp1: 0xeb, LaunchMail: 0xec,
    MediaSelect: 0xed,
});

// Older spellings some browsers still report for the same physical keys.
const ALIASES = Object.freeze({
    OSLeft: 'MetaLeft', OSRight: 'MetaRight',
    VolumeMute: 'AudioVolumeMute', VolumeDown: 'AudioVolumeDown', VolumeUp: 'AudioVolumeUp',
});

// The keycode for a KeyboardEvent.code, or 0 when there is none (then the
// caller must send an ordinary KeyEvent, as the spec requires).
export function scancodeForCode(code) {
    if (typeof code !== 'string') return 0;
    const name = Object.hasOwn(ALIASES, code) ? ALIASES[code] : code;
    return Object.hasOwn(SCANCODES, name) ? SCANCODES[name] : 0;
}
