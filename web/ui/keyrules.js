// web/ui/keyrules.js — the platform quirks of browser keyboards, and keeping the
// server's Caps Lock / Num Lock in step with the browser's.
//
// Needs: ../core/keysyms.js (the keysym names). Pure: no DOM; input.js asks these
// functions what to send. The quirks are those noVNC works around (core/input/
// keyboard.js and util.js), each for the reason given beside it.

import { XK } from '../core/keysyms.js';

// macOS (and iPadOS): Option behaves like AltGr (it types the third-level
// characters), and Cmd is where the other systems' Alt is. TigerVNC's and
// RealVNC's viewers swap them the same way, so a Mac user's hands keep working:
// Cmd -> Alt, right Cmd -> Super, Option -> Mode_switch, right Option -> AltGr.
const MAC_MODIFIERS = Object.freeze(new Map([
    [XK.Super_L, XK.Alt_L],
    [XK.Super_R, XK.Super_L],
    [XK.Alt_L, XK.Mode_switch],
    [XK.Alt_R, XK.ISO_Level3_Shift],
]));

export function macKeysym(keysym) {
    return MAC_MODIFIERS.get(keysym) ?? keysym;
}

// Windows with a Japanese layout: the same key reports Zenkaku and Hankaku in turn
// (and Romaji / KanaMode): the input method on the remote side cannot follow that,
// so send the one keysym that toggles.
const WINDOWS_JAPANESE_KEYS = Object.freeze({
    Zenkaku: XK.Zenkaku_Hankaku, Hankaku: XK.Zenkaku_Hankaku,
    Romaji: XK.Romaji, KanaMode: XK.Romaji,
});

export function windowsJapaneseKeysym(key) {
    return Object.hasOwn(WINDOWS_JAPANESE_KEYS, key) ? WINDOWS_JAPANESE_KEYS[key] : null;
}

// Lang1 / Lang2 with a key value the browser could not name: on a Mac (JIS
// keyboard) they are the かな and 英数 keys, elsewhere Korean's Hangul and Hanja.
export function langKeysym(code, mac) {
    if (code === 'Lang1') return mac ? XK.Hiragana_Katakana : XK.Hangul;
    if (code === 'Lang2') return mac ? XK.Eisu_toggle : XK.Hangul_Hanja;
    return null;
}

// ...and Windows sends no keyup for these input-method keys: press and release at once.
const WINDOWS_NO_KEYUP = Object.freeze(new Set([
    XK.Zenkaku_Hankaku, XK.Eisu_toggle, XK.Katakana, XK.Hiragana, XK.Romaji,
]));

export function windowsSendsNoKeyup(keysym) {
    return WINDOWS_NO_KEYUP.has(keysym);
}

/**
  * The server's lock state (QEMU LED State pseudo-encoding) against the browser's.
  * Before a key press, fixesBefore() names the lock keys to tap so the server's
  * Caps Lock and Num Lock match what the browser says (getModifierState). After a
  * fix, or after the user pressed the lock key itself, the server's state is
  * unknown until it reports again, so nothing is fixed twice on stale knowledge.
  */
export class LockSync {
    constructor() {
        this.caps = null;   // true/false as the server last said; null: unknown
        this.num = null;
    }

    /** {caps, num} from rfb's 'led' event. */
    serverSays({ caps, num }) {
        this.caps = typeof caps === 'boolean' ? caps : null;
        this.num = typeof num === 'boolean' ? num : null;
    }

    forget() {
        this.caps = null;
        this.num = null;
    }

    /**
      * code: KeyboardEvent.code of the key going down; localCaps / localNum: the
      * browser's lock states (null where the platform cannot tell, e.g. Num Lock on
      * macOS). Returns [[keysym, code], ...] to press and release first.
      */
    fixesBefore(code, localCaps, localNum) {
        const out = [];
        if (code === 'CapsLock') this.caps = null;
        else if (this.caps !== null && typeof localCaps === 'boolean' && this.caps !== localCaps) {
            out.push([XK.Caps_Lock, 'CapsLock']);
            this.caps = null;
        }
        if (code === 'NumLock') this.num = null;
        else if (this.num !== null && typeof localNum === 'boolean' && this.num !== localNum) {
            out.push([XK.Num_Lock, 'NumLock']);
            this.num = null;
        }
        return out;
    }
}
