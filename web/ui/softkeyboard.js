// softkeyboard.js — typing from a phone's on-screen keyboard.
//
// Touch devices only show their soft keyboard while an editable element has focus,
// so the page keeps a visually hidden <textarea> for the Keyboard button to focus.
// Soft keyboards mostly send keydown with key "Unidentified" / keyCode 229, which
// ui/input.js cannot name and leaves alone (no preventDefault); the text then arrives
// as beforeinput/input events, and this module turns those into key presses.
// Keys input.js did handle were preventDefault'ed at keydown, so the browser fires no
// input event for them: each key is sent by exactly one of the two paths.
//
// Needs: ../core/keysyms.js. keysFromInput() is pure (tested in Node); the
// SoftKeyboard class touches only the textarea it is given, and only in attach().

import { keysymFromChar, XK } from '../core/keysyms.js';

const press = (keysym) => [[keysym, true], [keysym, false]];

// Text a keyboard inserted -> presses; a line break in it is Return.
function keysFromText(text) {
    const out = [];
    for (const ch of String(text || '')) {
        if (ch === '\n' || ch === '\r') { out.push(...press(XK.Return)); continue; }
        if (ch === '\t') { out.push(...press(XK.Tab)); continue; }
        const keysym = keysymFromChar(ch);
        if (keysym !== null) out.push(...press(keysym));
    }
    return out;
}

/**
 * An InputEvent-like { inputType, data } -> list of [keysym, down], or null when the
 * event is none of ours (formatting, history, composition still in progress) and the
 * browser should be left to it.
 */
export function keysFromInput({ inputType = '', data = null } = {}) {
    switch (inputType) {
        case 'insertText':
        case 'insertFromPaste':
        case 'insertFromDrop':
        case 'insertReplacementText':
            return keysFromText(data);
        case 'insertLineBreak':
        case 'insertParagraph':
            return press(XK.Return);
        case 'deleteContentBackward':
        case 'deleteWordBackward':   // the field is kept empty, so one BackSpace is all there is
            return press(XK.BackSpace);
        case 'deleteContentForward':
        case 'deleteWordForward':
            return press(XK.Delete);
        default:
            return null;
    }
}

/** Composed text (compositionend's data) -> list of [keysym, down]. */
export function keysFromComposition(data) {
    return keysFromText(data);
}

export class SoftKeyboard {
    /**
      * textarea: the hidden, focusable <textarea>
      * send(list of [keysym, down]): sends them (Input.sendKeys, which respects view-only)
      */
    constructor({ textarea, send }) {
        this.textarea = textarea;
        this.send = send;
    }

    attach() {
        const t = this.textarea;
        t.addEventListener('beforeinput', (e) => this._onBeforeInput(e));
        t.addEventListener('input', (e) => this._onInput(e));
        t.addEventListener('compositionend', (e) => this._onCompositionEnd(e));
    }

    focus() {
        this.textarea.value = '';
        this.textarea.focus({ preventScroll: true });
    }

    // Cancelable beforeinput: send and cancel, so the field never changes (and
    // autocorrect has nothing to rewrite). Not cancelable: the input event sends.
    _onBeforeInput(e) {
        if (e.isComposing || e.inputType === 'insertCompositionText' || !e.cancelable) return;
        const keys = keysFromInput(e);
        if (keys === null) return;
        e.preventDefault();
        this.send(keys);
    }

    _onInput(e) {
        if (e.isComposing || e.inputType === 'insertCompositionText') return;
        const keys = keysFromInput(e);
        if (keys !== null) this.send(keys);
        this.textarea.value = '';
    }

    _onCompositionEnd(e) {
        this.send(keysFromComposition(e.data));
        this.textarea.value = '';
    }
}
