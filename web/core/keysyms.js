// keysyms.js — maps a KeyboardEvent-like {key, code, location} to the X11 keysym
// an RFB KeyEvent carries (values from X11/keysymdef.h).
// Needs: nothing (pure tables; no DOM, so it runs in Node).
//
// Order of decisions, and why:
//  1. Modifiers by `code`: `key` says "Shift" for both sides, the server wants
//     Shift_L or Shift_R. AltRight that produces AltGraph is ISO_Level3_Shift,
//     which is what an X server's layouts expect for third-level characters.
//  2. Numpad by `code` (or location 3): "5" from the keypad is KP_5, not "5",
//     and with NumLock off the same key reports "ArrowLeft" -> KP_Left.
//  3. Dead keys: the browser only says key "Dead"; which accent it is depends on
//     the layout, so the physical key (`code`) picks the most common meaning.
//  4. Named keys (Enter, F1, ...) by `key`.
//  5. A single character: Latin-1 is its own keysym, anything else is
//     0x01000000 + code point (keysymdef.h's rule for Unicode keysyms).
//  6. Nothing useful in `key` ("Unidentified"): fall back to the US-layout
//     meaning of `code`.
// Returns null when there is nothing to send.

export const XK = Object.freeze({
    BackSpace: 0xff08, Tab: 0xff09, Clear: 0xff0b, Return: 0xff0d,
    Pause: 0xff13, Scroll_Lock: 0xff14, Sys_Req: 0xff15, Escape: 0xff1b, Delete: 0xffff,
    Multi_key: 0xff20, Kanji: 0xff21, Muhenkan: 0xff22, Henkan: 0xff23, Romaji: 0xff24,
    Hiragana: 0xff25, Katakana: 0xff26, Hiragana_Katakana: 0xff27, Zenkaku: 0xff28,
    Hankaku: 0xff29, Zenkaku_Hankaku: 0xff2a, Eisu_toggle: 0xff30,
    Hangul: 0xff31, Hangul_Hanja: 0xff34,
    Home: 0xff50, Left: 0xff51, Up: 0xff52, Right: 0xff53, Down: 0xff54,
    Page_Up: 0xff55, Page_Down: 0xff56, End: 0xff57,
    Select: 0xff60, Print: 0xff61, Execute: 0xff62, Insert: 0xff63, Undo: 0xff65,
    Redo: 0xff66, Menu: 0xff67, Find: 0xff68, Cancel: 0xff69, Help: 0xff6a, Break: 0xff6b,
    Mode_switch: 0xff7e, Num_Lock: 0xff7f,
    KP_Enter: 0xff8d, KP_Home: 0xff95, KP_Left: 0xff96, KP_Up: 0xff97, KP_Right: 0xff98,
    KP_Down: 0xff99, KP_Page_Up: 0xff9a, KP_Page_Down: 0xff9b, KP_End: 0xff9c,
    KP_Begin: 0xff9d, KP_Insert: 0xff9e, KP_Delete: 0xff9f,
    KP_Multiply: 0xffaa, KP_Add: 0xffab, KP_Separator: 0xffac, KP_Subtract: 0xffad,
    KP_Decimal: 0xffae, KP_Divide: 0xffaf, KP_0: 0xffb0, KP_Equal: 0xffbd,
    F1: 0xffbe,                                  // F1..F35 are consecutive
    Shift_L: 0xffe1, Shift_R: 0xffe2, Control_L: 0xffe3, Control_R: 0xffe4,
    Caps_Lock: 0xffe5, Meta_L: 0xffe7, Meta_R: 0xffe8, Alt_L: 0xffe9, Alt_R: 0xffea,
    Super_L: 0xffeb, Super_R: 0xffec, Hyper_L: 0xffed, Hyper_R: 0xffee,
    ISO_Level3_Shift: 0xfe03, ISO_Level5_Shift: 0xfe11,
    dead_grave: 0xfe50, dead_acute: 0xfe51, dead_circumflex: 0xfe52, dead_tilde: 0xfe53,
    dead_macron: 0xfe54, dead_breve: 0xfe55, dead_abovedot: 0xfe56, dead_diaeresis: 0xfe57,
    dead_abovering: 0xfe58, dead_doubleacute: 0xfe59, dead_caron: 0xfe5a,
    dead_cedilla: 0xfe5b, dead_ogonek: 0xfe5c,
    // XF86 vendor keysyms (X11/XF86keysym.h) for media keys.
    XF86AudioLowerVolume: 0x1008ff11, XF86AudioMute: 0x1008ff12, XF86AudioRaiseVolume: 0x1008ff13,
    XF86AudioPlay: 0x1008ff14, XF86AudioStop: 0x1008ff15, XF86AudioPrev: 0x1008ff16,
    XF86AudioNext: 0x1008ff17,
});

const UNICODE_KEYSYM_BASE = 0x01000000;
const DOM_KEY_LOCATION_RIGHT = 2;
const DOM_KEY_LOCATION_NUMPAD = 3;
const MAX_FUNCTION_KEY = 35;   // keysymdef.h stops at F35

// Modifier keys by physical position.
const MODIFIER_CODES = Object.freeze({
    ShiftLeft: XK.Shift_L, ShiftRight: XK.Shift_R,
    ControlLeft: XK.Control_L, ControlRight: XK.Control_R,
    AltLeft: XK.Alt_L, AltRight: XK.Alt_R,
    // The Windows/Command key: Super is what X desktops bind it to.
    MetaLeft: XK.Super_L, MetaRight: XK.Super_R, OSLeft: XK.Super_L, OSRight: XK.Super_R,
});

// Modifier `key` values -> [left, right] keysyms, for events without a code.
const MODIFIER_KEYS = Object.freeze({
    Shift: [XK.Shift_L, XK.Shift_R], Control: [XK.Control_L, XK.Control_R],
    Alt: [XK.Alt_L, XK.Alt_R], Meta: [XK.Super_L, XK.Super_R], OS: [XK.Super_L, XK.Super_R],
    Super: [XK.Super_L, XK.Super_R], Hyper: [XK.Hyper_L, XK.Hyper_R],
});

// Keypad keys whose keysym does not depend on NumLock.
const NUMPAD_FIXED = Object.freeze({
    NumpadEnter: XK.KP_Enter, NumpadAdd: XK.KP_Add, NumpadSubtract: XK.KP_Subtract,
    NumpadMultiply: XK.KP_Multiply, NumpadDivide: XK.KP_Divide, NumpadEqual: XK.KP_Equal,
    NumpadComma: XK.KP_Separator,
});

// With NumLock off the digit keys report navigation names.
const NUMPAD_NAVIGATION = Object.freeze({
    Home: XK.KP_Home, ArrowLeft: XK.KP_Left, ArrowUp: XK.KP_Up, ArrowRight: XK.KP_Right,
    ArrowDown: XK.KP_Down, PageUp: XK.KP_Page_Up, PageDown: XK.KP_Page_Down, End: XK.KP_End,
    Clear: XK.KP_Begin, Insert: XK.KP_Insert, Delete: XK.KP_Delete, Enter: XK.KP_Enter,
});

// Keypad characters (for location-3 events, and NumpadDecimal's '.' or ',').
const NUMPAD_CHARS = Object.freeze({
    '+': XK.KP_Add, '-': XK.KP_Subtract, '*': XK.KP_Multiply, '/': XK.KP_Divide,
    '=': XK.KP_Equal, '.': XK.KP_Decimal, ',': XK.KP_Separator,
});

// Dead keys by physical key: the unshifted meaning on the layouts where that
// key is a dead key (German/Scandinavian/Spanish/French/US-International).
// The browser gives no more than "Dead", so this is a best guess by design.
const DEAD_BY_CODE = Object.freeze({
    Backquote: XK.dead_circumflex,     // de: ^ (us-intl has grave here)
    Equal: XK.dead_acute,              // de, sv, fi, no, da: ´
    BracketLeft: XK.dead_circumflex,   // fr: ^
    BracketRight: XK.dead_diaeresis,   // sv, fi, no: ¨
    Quote: XK.dead_acute,              // es, us-intl: ´
    Semicolon: XK.dead_acute,          // pt, gr: ´
    Backslash: XK.dead_grave,          // pt-BR and others
    Minus: XK.dead_acute,
    Digit6: XK.dead_circumflex,        // us-intl Shift+6
});

// Combining marks and spacing accents that browsers may report for a dead key
// (in `key` on some platforms): each names its dead keysym exactly.
const DEAD_BY_CHAR = Object.freeze({
    '\u0300': XK.dead_grave, '\u0301': XK.dead_acute, '\u0302': XK.dead_circumflex,
    '\u0303': XK.dead_tilde, '\u0304': XK.dead_macron, '\u0306': XK.dead_breve,
    '\u0307': XK.dead_abovedot, '\u0308': XK.dead_diaeresis, '\u030a': XK.dead_abovering,
    '\u030b': XK.dead_doubleacute, '\u030c': XK.dead_caron, '\u0327': XK.dead_cedilla,
    '\u0328': XK.dead_ogonek,
});

// Named KeyboardEvent.key values (UI Events KeyboardEvent key Values).
const NAMED_KEYS = Object.freeze({
    Enter: XK.Return, Tab: XK.Tab, Escape: XK.Escape, Esc: XK.Escape, Backspace: XK.BackSpace,
    Delete: XK.Delete, Del: XK.Delete, Insert: XK.Insert,
    Home: XK.Home, End: XK.End, PageUp: XK.Page_Up, PageDown: XK.Page_Down,
    ArrowLeft: XK.Left, ArrowUp: XK.Up, ArrowRight: XK.Right, ArrowDown: XK.Down,
    Left: XK.Left, Up: XK.Up, Right: XK.Right, Down: XK.Down,
    CapsLock: XK.Caps_Lock, NumLock: XK.Num_Lock, ScrollLock: XK.Scroll_Lock,
    Pause: XK.Pause, PrintScreen: XK.Print, ContextMenu: XK.Menu, Apps: XK.Menu,
    Clear: XK.Clear, Help: XK.Help, Cancel: XK.Cancel, Execute: XK.Execute, Find: XK.Find,
    Select: XK.Select, Undo: XK.Undo, Redo: XK.Redo, Again: XK.Redo, Break: XK.Break,
    AltGraph: XK.ISO_Level3_Shift, ModeChange: XK.Mode_switch, Compose: XK.Multi_key,
    Convert: XK.Henkan, NonConvert: XK.Muhenkan, KanjiMode: XK.Kanji, Romaji: XK.Romaji,
    Hiragana: XK.Hiragana, Katakana: XK.Katakana, HiraganaKatakana: XK.Hiragana_Katakana,
    KanaMode: XK.Hiragana_Katakana, Zenkaku: XK.Zenkaku, Hankaku: XK.Hankaku,
    ZenkakuHankaku: XK.Zenkaku_Hankaku, Eisu: XK.Eisu_toggle, Alphanumeric: XK.Eisu_toggle,
    HangulMode: XK.Hangul, HanjaMode: XK.Hangul_Hanja,
    AudioVolumeDown: XK.XF86AudioLowerVolume, AudioVolumeUp: XK.XF86AudioRaiseVolume,
    AudioVolumeMute: XK.XF86AudioMute, MediaPlayPause: XK.XF86AudioPlay,
    MediaStop: XK.XF86AudioStop, MediaTrackPrevious: XK.XF86AudioPrev,
    MediaTrackNext: XK.XF86AudioNext,
});

// US-layout meaning of codes, for events whose `key` says nothing.
const US_CODE_CHARS = Object.freeze({
    Space: ' ', Minus: '-', Equal: '=', BracketLeft: '[', BracketRight: ']', Backslash: '\\',
    Semicolon: ';', Quote: "'", Backquote: '`', Comma: ',', Period: '.', Slash: '/',
    IntlBackslash: '<',
});

function functionKey(name) {
    const m = /^F(\d{1,2})$/.exec(name);
    if (!m) return null;
    const n = Number(m[1]);
    return n >= 1 && n <= MAX_FUNCTION_KEY ? XK.F1 + n - 1 : null;
}

// Keysym of a single character (one code point), or null.
export function keysymFromChar(ch) {
    const cp = ch.codePointAt(0);
    if (cp === undefined || ch.length !== String.fromCodePoint(cp).length) return null;
    if (Object.hasOwn(DEAD_BY_CHAR, ch)) return DEAD_BY_CHAR[ch];
    if ((cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xff)) return cp;   // Latin-1
    // Control characters have no keysyms (Ctrl+A is Control then 'a');
    // the few with keys of their own are named keys above.
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return null;
    return UNICODE_KEYSYM_BASE + cp;
}

function numpadKeysym(key, code, location) {
    const isNumpadCode = typeof code === 'string' && code.startsWith('Numpad');
    if (!isNumpadCode && location !== DOM_KEY_LOCATION_NUMPAD) return null;
    if (isNumpadCode && Object.hasOwn(NUMPAD_FIXED, code)) return NUMPAD_FIXED[code];
    if (/^[0-9]$/.test(key)) return XK.KP_0 + Number(key);
    if (Object.hasOwn(NUMPAD_CHARS, key)) return NUMPAD_CHARS[key];
    if (Object.hasOwn(NUMPAD_NAVIGATION, key)) return NUMPAD_NAVIGATION[key];
    if (isNumpadCode) {
        // key unhelpful ("Unidentified"): trust the position.
        const digit = /^Numpad([0-9])$/.exec(code);
        if (digit) return XK.KP_0 + Number(digit[1]);
        if (code === 'NumpadDecimal') return XK.KP_Decimal;
    }
    return null;
}

function modifierKeysym(key, code, location) {
    if (code === 'AltRight' && key === 'AltGraph') return XK.ISO_Level3_Shift;
    if (typeof code === 'string' && Object.hasOwn(MODIFIER_CODES, code)) return MODIFIER_CODES[code];
    if (Object.hasOwn(MODIFIER_KEYS, key)) {
        return MODIFIER_KEYS[key][location === DOM_KEY_LOCATION_RIGHT ? 1 : 0];
    }
    return null;
}

function usLayoutKeysym(code) {
    if (typeof code !== 'string') return null;
    let m = /^Key([A-Z])$/.exec(code);
    if (m) return m[1].toLowerCase().charCodeAt(0);
    m = /^Digit([0-9])$/.exec(code);
    if (m) return m[1].charCodeAt(0);
    if (Object.hasOwn(US_CODE_CHARS, code)) return US_CODE_CHARS[code].charCodeAt(0);
    if (code === 'Enter') return XK.Return;
    return functionKey(code) ?? (Object.hasOwn(NAMED_KEYS, code) ? NAMED_KEYS[code] : null);
}

// {key, code, location} -> keysym number, or null.
export function keysymFromEvent({ key = '', code = '', location = 0 } = {}) {
    const modifier = modifierKeysym(key, code, location);
    if (modifier !== null) return modifier;
    const numpad = numpadKeysym(key, code, location);
    if (numpad !== null) return numpad;
    if (key === 'Dead') {
        return Object.hasOwn(DEAD_BY_CODE, code) ? DEAD_BY_CODE[code] : null;
    }
    if (Object.hasOwn(NAMED_KEYS, key)) return NAMED_KEYS[key];
    const fn = functionKey(key);
    if (fn !== null) return fn;
    if (key && key !== 'Unidentified') {
        const ch = keysymFromChar(key);
        if (ch !== null) return ch;
        if ([...key].length > 1) return null;   // an unknown key name, not text
    }
    return usLayoutKeysym(code);
}
