// app.js — the page: reads vnc.html's URL parameters, opens the WebSocket to wsproxy,
// runs one RFB session over it, and wires the toolbar, status line, credentials
// dialog, clipboard panel, scaling and input to it.
//
// Needs: vnc.html's elements (by id), ./core/rfb.js (protocol, no DOM),
// ./core/display.js (framebuffer + canvas), ./core/keysyms.js (key -> keysym),
// ./ui/params.js and ./ui/geometry.js (pure helpers), ./ui/input.js, ./ui/cursor.js,
// ./ui/softkeyboard.js (the Keyboard button's hidden textarea, for phones).
//
// Everything the server says (desktop name, close reasons, errors) reaches the page
// through textContent or a textarea's value, never as HTML.
// For tests: window.wsproxyClient = { rfb, display, state() } and body[data-state].

import { RFB } from './core/rfb.js';
import { Display } from './core/display.js';
import * as keysyms from './core/keysyms.js';
import {
    parseParams, buildWebSocketUrl, describeEndpoint, probeUrlFor, reasonFromProbe, describeClose,
} from './ui/params.js';
import { fitSize } from './ui/geometry.js';
import { Input, XK } from './ui/input.js';
import { CursorView } from './ui/cursor.js';
import { SoftKeyboard } from './ui/softkeyboard.js';

// ---------------------------------------------------------------- configuration

const { config, warnings } = parseParams(window.location.search, window.location.hash);

const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 };
const log = Object.fromEntries(Object.keys(LEVELS).map((level) => [
    level,
    LEVELS[level] <= LEVELS[config.logging]
        ? (...args) => console[level === 'debug' ? 'log' : level]('[vnc]', ...args)
        : () => {},
]));
for (const w of warnings) log.warn(w);

// How long the window must stop changing size before a remote resize is asked for:
// each SetDesktopSize makes the server reallocate and repaint everything.
const REMOTE_RESIZE_DEBOUNCE_MS = 400;
// The fallback HTTP probe must not hold the status line hostage.
const PROBE_TIMEOUT_MS = 4000;

// Human words for each RFB state (keys are rfb.js's STATES), for session s.
const STATE_TEXT = Object.freeze({
    'connecting': (s) => `Connecting to ${endpointLabel(s)}…`,
    'protocol-version': () => 'Connecting…',
    'security': () => 'Negotiating security…',
    'authenticating': () => 'Authenticating…',
    'server-init': () => 'Starting session…',
    'connected': (s) => (s.desktopName ? `Connected to ${s.desktopName}` : 'Connected'),
});

// ---------------------------------------------------------------- elements

const $ = (id) => document.getElementById(id);
const ui = {
    connect: $('btn-connect'),
    disconnect: $('btn-disconnect'),
    keyboard: $('btn-keyboard'),
    softkeys: $('softkeys'),
    cad: $('btn-cad'),
    tab: $('btn-tab'),
    esc: $('btn-esc'),
    sticky: { ctrl: $('btn-ctrl'), alt: $('btn-alt'), super: $('btn-super') },
    clipboardToggle: $('btn-clipboard'),
    fullscreen: $('btn-fullscreen'),
    resize: $('sel-resize'),
    viewOnly: $('view-only'),
    status: $('status'),
    clipboard: $('clipboard'),
    clipboardText: $('clipboard-text'),
    clipboardSend: $('btn-clip-send'),
    clipboardClear: $('btn-clip-clear'),
    screen: $('screen'),
    canvas: $('canvas'),
    placeholder: $('placeholder-text'),
    idleError: $('idle-error'),
    idleTarget: $('idle-target'),
    idleConnect: $('btn-connect-idle'),
    idleHint: $('idle-hint'),
    dialog: $('credentials'),
    dialogForm: $('credentials-form'),
    dialogTarget: $('credentials-target'),
    usernameRow: $('credentials-username-row'),
    username: $('cred-username'),
    password: $('cred-password'),
};

// ---------------------------------------------------------------- session state

// One connection attempt: everything the page knows about it. connect() makes a
// new one; the callbacks of an older socket see that theirs is no longer
// `session` and do nothing, so late events of an old socket are ignored.
function newSession() {
    return {
        url: '',               // the WebSocket URL
        ws: null,              // the open (or opening) WebSocket; null once it closed
        rfb: null,             // the RFB session riding on it
        reachedConnected: false,
        userClosed: false,     // the user pressed Disconnect: no reconnect, no error
        authFailed: false,     // wrong password: reconnecting would only fail again
        failReason: '',        // the best reason known so far for this session ending
        ended: false,          // the UI has already shown the end of this session
        desktopName: '',
        clipboardSent: null,   // clipboard text the server already has (from us or from it): no repeats
    };
}

let session = null;        // the current (or last) connection attempt; null before the first
let reconnectTimer = 0;

const display = new Display({
    canvas: ui.canvas,
    decodeImage,
    onError: (err) => log.warn('image rectangle failed to decode:', err),
});

const cursor = new CursorView(ui.canvas, { showDot: config.showDot });

const input = new Input({
    canvas: ui.canvas,
    getRfb: connectedRfb,
    getSize: () => ({ width: display.width, height: display.height }),
    keysymFor,
    onLeave: () => ui.connect.hidden ? ui.disconnect.focus() : ui.connect.focus(),
    log,
});

function keysymFor(ev) {
    return keysyms.keysymFromEvent(ev);
}

function state() {
    return session && session.rfb ? session.rfb.state : 'disconnected';
}

// The current RFB session once it is connected, else null.
function connectedRfb() {
    const rfb = session && session.rfb;
    return rfb && rfb.state === 'connected' ? rfb : null;
}

window.wsproxyClient = {
    get rfb() { return session ? session.rfb : null; },
    get display() { return display; },
    get ws() { return session ? session.ws : null; },
    state,
    connect,
    disconnect,
};

// ---------------------------------------------------------------- images

// Tight JPEG rectangles: the browser decodes, a scratch canvas hands back RGBA.
// The scratch canvas only grows: setting a canvas's size reallocates and clears
// its backing store, which per tile (tiles come in many sizes) cost more than
// the draw. Each tile is drawn at 0,0 and only its own area is read back.
let scratch = null;
let scratchCtx = null;
async function decodeImage(mime, bytes) {
    const picture = await decodePicture(mime, bytes);
    try {
        const width = picture.displayWidth || picture.width;
        const height = picture.displayHeight || picture.height;
        if (!scratch) {
            scratch = typeof OffscreenCanvas === 'function'
                ? new OffscreenCanvas(width, height)
                : Object.assign(document.createElement('canvas'), { width, height });
            scratchCtx = scratch.getContext('2d', { willReadFrequently: true });
        }
        if (scratch.width < width || scratch.height < height) {
            scratch.width = Math.max(scratch.width, width);
            scratch.height = Math.max(scratch.height, height);
        }
        // A PNG may be transparent: what the last picture left must not show through.
        if (mime !== 'image/jpeg') scratchCtx.clearRect(0, 0, width, height);
        scratchCtx.drawImage(picture, 0, 0);
        const data = scratchCtx.getImageData(0, 0, width, height).data;
        // A JPEG has no alpha channel: every decoded pixel is opaque already.
        return { width, height, data, opaque: mime === 'image/jpeg' };
    } finally {
        picture.close();
    }
}

// A decoded picture (VideoFrame or ImageBitmap; both drawable, both closed by
// the caller). WebCodecs' ImageDecoder reads the bytes as they are; the other
// way needs a Blob per rectangle, which in Chromium costs as much as the decode.
async function decodePicture(mime, bytes) {
    /* global ImageDecoder */
    if (typeof ImageDecoder === 'function') {
        let decoder = null;
        try {
            decoder = new ImageDecoder({ data: bytes, type: mime });
            return (await decoder.decode()).image;
        } catch {
            // Not supported for this type here: fall through to the Blob way.
        } finally {
            if (decoder) decoder.close();
        }
    }
    return createImageBitmap(new Blob([bytes], { type: mime }));
}

// ---------------------------------------------------------------- status line

function endpointLabel(s) {
    try {
        const u = new URL(s.url);
        return u.host;
    } catch {
        return 'server';
    }
}

function setStatus(text, { error = false } = {}) {
    ui.status.textContent = text;
    ui.placeholder.textContent = text; // shown over the screen until a frame arrives
    ui.status.title = text; // the line may be cut off with an ellipsis on a phone
    document.body.classList.toggle('has-error', error);
}

// The panel over the screen while no session runs (vnc.html #idle; CSS shows it
// only in the disconnected and failed states): what happened, where Connect
// goes, and what to do. Everything goes in as text.
function showIdle({ title, error = '', hint }) {
    ui.placeholder.textContent = title;
    ui.idleError.textContent = error;
    ui.idleError.hidden = !error;
    let url = session ? session.url : '';
    if (!url) {
        try { url = buildWebSocketUrl(config, window.location); } catch { url = ''; }
    }
    ui.idleTarget.textContent = describeEndpoint(url) || 'nowhere: the connection settings are not valid';
    ui.idleHint.textContent = hint;
}

// One line on what to do next, after session s ended (null: before the first).
function idleHint(s, reconnecting) {
    if (reconnecting) return `Reconnecting in ${reconnecting} s; press Connect to try now.`;
    if (!s) return 'Press Connect to open the remote desktop (autoconnect=1 in the address connects on load).';
    if (s.authFailed) return 'Check the password, then press Connect to try again.';
    if (s.userClosed || s.reachedConnected) return 'Press Connect to open the session again.';
    return 'Press Connect to try again; if it fails again, check the address above and that the VNC server runs.';
}

function setBodyState(state) {
    document.body.dataset.state = state;
    const live = state !== 'disconnected' && state !== 'failed';
    ui.connect.hidden = live;
    ui.disconnect.hidden = !live;
    const connected = state === 'connected';
    for (const b of [ui.keyboard, ui.cad, ui.tab, ui.esc, ...Object.values(ui.sticky), ui.clipboardSend]) {
        b.disabled = !connected || (config.viewOnly && b !== ui.clipboardSend);
    }
    ui.clipboardSend.disabled = !connected;
}

// ---------------------------------------------------------------- connect / close

function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = 0;
    if (session && session.ws) return;
    const s = newSession();
    session = s;

    try {
        s.url = buildWebSocketUrl(config, window.location);
    } catch (err) {
        endSession(s, `bad connection settings: ${err.message}`, true);
        return;
    }

    const options = {
        shared: config.shared,
        quality: config.quality,
        compression: config.compression,
        viewOnly: config.viewOnly,
        lowColour: config.lowColour,
    };
    if (config.password) options.password = config.password;
    if (config.encoding) options.encodings = [config.encoding];
    if (config.target) options.target = config.target;   // xvp security

    let sock;
    try {
        // No subprotocol: wsproxy (like websockify for noVNC) accepts none.
        sock = new WebSocket(s.url);
    } catch (err) {
        endSession(s, `cannot open ${s.url}: ${err.message}`, true);
        return;
    }
    sock.binaryType = 'arraybuffer';
    s.ws = sock;

    s.rfb = new RFB({
        display,
        send: (bytes) => {
            if (s.ws === sock && sock.readyState === WebSocket.OPEN) sock.send(bytes);
        },
        onEvent: (event) => { if (s === session) onRfbEvent(s, event); },
        options,
    });
    log.info('connecting to', s.url);
    setBodyState(state());
    setStatus(STATE_TEXT.connecting(s));

    sock.onopen = () => log.info('websocket open');
    sock.onmessage = (ev) => {
        if (s !== session) return;
        if (typeof ev.data === 'string') {
            // RFB is binary; a text frame means something other than wsproxy answered.
            s.failReason = 'server sent text, not RFB';
            sock.close(1000);
            return;
        }
        try {
            s.rfb.receive(new Uint8Array(ev.data));
        } catch (err) {
            log.error('RFB error:', err);
            s.failReason = `protocol error: ${err.message}`;
            sock.close(1000);
        }
    };
    sock.onclose = (ev) => { onSocketClose(s, ev); };
}

async function onSocketClose(s, ev) {
    if (s !== session) return;
    s.ws = null;
    log.info('websocket closed', ev.code, ev.reason || '');
    let reason = s.failReason;
    if (!reason && !s.userClosed) {
        if (ev.code === 1006 && !s.reachedConnected) {
            // The browser hides why an upgrade failed; wsproxy tells the same story to
            // a plain GET of the same URL, so ask it.
            reason = await probe(s);
            if (s !== session) return;
            // Say it as wsproxy said it: the RFB session never started, so rfb's
            // "closed before the server answered" wrapper would only blur it.
            s.failReason = reason;
        } else {
            reason = describeClose(ev.code, ev.reason);
        }
    }
    if (s.rfb) {
        try { s.rfb.close(reason || 'closed'); } catch (err) { log.warn('rfb.close:', err); }
    }
    // Red unless it was an orderly end: the user's, or a clean close of a running session.
    const failed = (s.rfb && s.rfb.state === 'failed') || !s.reachedConnected || !ev.wasClean;
    endSession(s, reason, !s.userClosed && failed);
}

async function probe(s) {
    const probeUrl = probeUrlFor(s.url);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), PROBE_TIMEOUT_MS);
    try {
        const res = await fetch(probeUrl, { cache: 'no-store', signal: abort.signal });
        const body = await res.text();
        return reasonFromProbe(res.status, res.statusText, body) ||
            `connection to ${endpointLabel(s)} lost before the session started`;
    } catch (err) {
        log.info('probe failed:', err);
        return `cannot reach ${endpointLabel(s)}`;
    } finally {
        clearTimeout(timer);
    }
}

// Show that session s is over (once), then maybe schedule a reconnect.
function endSession(s, reason, isError) {
    if (s.ended) return;
    s.ended = true;
    input.setEnabled(false);
    resetStickyButtons();
    if (ui.dialog.open) ui.dialog.close('closed');
    const finalState = s.rfb ? s.rfb.state : 'disconnected';
    setBodyState(finalState === 'failed' ? 'failed' : 'disconnected');
    document.title = 'VNC';
    cursor.reset();

    let text = s.userClosed ? 'Disconnected' : `Disconnected${reason ? `: ${reason}` : ''}`;
    let reconnecting = 0;
    if (config.reconnect && !s.userClosed && !s.authFailed) {
        reconnecting = Math.round(config.reconnectDelay / 100) / 10;
        text += ` — reconnecting in ${reconnecting} s`;
        reconnectTimer = setTimeout(connect, config.reconnectDelay);
    }
    const error = isError && !s.userClosed;
    setStatus(text, { error });
    showIdle({
        title: error && !s.reachedConnected ? 'Could not connect' : 'Disconnected',
        error: s.userClosed ? '' : reason,
        hint: idleHint(s, reconnecting),
    });
}

function disconnect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = 0;
    input.releaseAll();
    if (!session) return;   // never connected: nothing to end
    session.userClosed = true;
    if (session.ws) {
        session.ws.close(1000);
        // onclose finishes the job; endSession is idempotent if it already ran.
    } else {
        endSession(session, '', false);
    }
}

// ---------------------------------------------------------------- RFB events

function onRfbEvent(s, e) {
    switch (e.type) {
        case 'state': return onState(s, e.state, e.detail);
        case 'credentials-required': return askCredentials(s, e.types || ['password']);
        case 'desktop-name':
            s.desktopName = String(e.name || '');
            document.title = s.desktopName ? `${s.desktopName} — VNC` : 'VNC';
            if (s.rfb && s.rfb.state === 'connected') setStatus(STATE_TEXT.connected(s));
            return;
        case 'resize':
            document.body.classList.toggle('has-frame', e.width > 0 && e.height > 0);
            layout();
            return;
        case 'clipboard':
            ui.clipboardText.value = String(e.text ?? '');
            s.clipboardSent = ui.clipboardText.value;
            return;
        case 'cursor': return cursor.set(e);
        case 'bell': return ring();
        case 'security-failure':
            // The words come with the 'failed' state that follows (rfb.js says it once).
            s.authFailed = true;
            return;
        case 'update-done': return;
        case 'resize-rejected':
            // Not an error: layout() keeps showing the whole desktop, scaled down if need be.
            log.info('server refused the remote resize:', e.message ?? '', e.status ?? '');
            return;
        default:
            log.debug('unhandled rfb event', e.type);
    }
}

function detailText(detail) {
    if (!detail) return '';
    if (typeof detail === 'string') return detail;
    return String(detail.reason || detail.message || '');
}

function onState(s, state, detail) {
    log.info('state', state, detailText(detail));
    if (state === 'connected') {
        s.reachedConnected = true;
        setBodyState(state);
        setStatus(STATE_TEXT.connected(s));
        input.setEnabled(!config.viewOnly);
        layout();
        if (config.resize === 'remote') requestRemoteResize();
        if (!ui.dialog.open) ui.canvas.focus({ preventScroll: true });
        return;
    }
    if (state === 'disconnected' || state === 'failed') {
        if (!s.failReason && detail) s.failReason = detailText(detail);
        if (state === 'failed' && s.ws) {
            // The protocol gave up; the socket close that follows ends the session.
            s.ws.close(1000);
            return;
        }
        if (!s.ws) endSession(s, s.failReason, state === 'failed');
        return;
    }
    setBodyState(state);
    const words = STATE_TEXT[state];
    if (words) setStatus(words(s));
}

// ---------------------------------------------------------------- credentials

function askCredentials(s, types) {
    const needUser = types.includes('username');
    ui.usernameRow.hidden = !needUser;
    ui.username.required = needUser;
    ui.dialogTarget.textContent = s.desktopName || endpointLabel(s);
    ui.password.value = config.password || '';
    setStatus('Password required');
    ui.dialog.returnValue = '';
    ui.dialog.showModal();
    (needUser ? ui.username : ui.password).focus();
}

ui.dialog.addEventListener('close', () => {
    const ok = ui.dialog.returnValue === 'ok';
    const password = ui.password.value;
    const username = ui.username.value;
    ui.password.value = ''; // do not leave a secret sitting in the DOM
    if (ui.dialog.returnValue === 'closed') return; // the session ended under the dialog
    if (ok && session && session.rfb) {
        setStatus('Authenticating…');
        session.rfb.sendPassword(password, ui.usernameRow.hidden ? undefined : username);
    } else {
        disconnect();
    }
});

// ---------------------------------------------------------------- scaling

// off: 1:1 (the screen scrolls). scale: fitted to the screen, up or down.
// remote: 1:1 once the server has taken the screen's size; until then, and for
// good when it refuses (a minimum size, no SetDesktopSize at all), a desktop
// larger than the screen is scaled down, so none of it is ever out of reach.
function layout() {
    document.body.dataset.resize = config.resize;
    const w = display.width, h = display.height;
    if (!w || !h) return;
    const boxW = ui.screen.clientWidth, boxH = ui.screen.clientHeight;
    let cssW = w, cssH = h;
    const tooBig = w > boxW || h > boxH;
    if (config.resize === 'scale' || (config.resize === 'remote' && tooBig)) {
        ({ width: cssW, height: cssH } = fitSize(w, h, boxW, boxH));
    }
    ui.canvas.style.width = `${cssW}px`;
    ui.canvas.style.height = `${cssH}px`;
}

let remoteResizeTimer = 0;
function requestRemoteResize() {
    clearTimeout(remoteResizeTimer);
    remoteResizeTimer = setTimeout(() => {
        const rfb = connectedRfb();
        if (!rfb || config.resize !== 'remote' || config.viewOnly) return;
        const w = Math.floor(ui.screen.clientWidth), h = Math.floor(ui.screen.clientHeight);
        if (w < 1 || h < 1 || (w === display.width && h === display.height)) return;
        log.info('requesting remote size', w, h);
        rfb.requestResize(w, h);
    }, REMOTE_RESIZE_DEBOUNCE_MS);
}

new ResizeObserver(() => {
    layout();
    if (config.resize === 'remote') requestRemoteResize();
}).observe(ui.screen);

ui.resize.value = config.resize;
ui.resize.addEventListener('change', () => {
    config.resize = ui.resize.value;
    layout();
    if (config.resize === 'remote') requestRemoteResize();
});

// No frame loop: the canvas changes only when rfb.js presents a whole
// FramebufferUpdate (display.present()), never part of one.

function ring() {
    ui.screen.classList.remove('bell');
    void ui.screen.offsetWidth; // restart the animation
    ui.screen.classList.add('bell');
}

// ---------------------------------------------------------------- toolbar

// A click with the mouse goes back to the remote screen; a keyboard press
// (detail 0) leaves focus on the button so the toolbar stays usable.
function refocus(ev) {
    if (ev.detail > 0 && connectedRfb()) ui.canvas.focus({ preventScroll: true });
}

ui.connect.addEventListener('click', () => connect());
ui.idleConnect.addEventListener('click', () => connect());
ui.disconnect.addEventListener('click', () => disconnect());
ui.cad.addEventListener('click', (ev) => {
    const rfb = connectedRfb();
    if (rfb && !config.viewOnly) rfb.sendCtrlAltDel();
    refocus(ev);
});
ui.tab.addEventListener('click', (ev) => { input.tap(XK.Tab, 'Tab'); refocus(ev); });

// Keyboard: focus the hidden textarea so a phone opens its soft keyboard. Shown on
// every device: on a touch screen it is the only way to type at all, and on a
// desktop it is harmless (keys typed there go the same way as on the canvas).
const softKeyboard = new SoftKeyboard({ textarea: ui.softkeys, send: (keys) => input.sendKeys(keys) });
ui.keyboard.addEventListener('click', () => {
    if (connectedRfb() && !config.viewOnly) softKeyboard.focus();
});
ui.esc.addEventListener('click', (ev) => { input.tap(XK.Escape, 'Escape'); refocus(ev); });

for (const [name, button] of Object.entries(ui.sticky)) {
    button.addEventListener('click', (ev) => {
        const want = button.getAttribute('aria-pressed') !== 'true';
        const now = input.setSticky(name, want);
        button.setAttribute('aria-pressed', String(now));
        refocus(ev);
    });
}

function resetStickyButtons() {
    for (const b of Object.values(ui.sticky)) b.setAttribute('aria-pressed', 'false');
}

ui.clipboardToggle.addEventListener('click', () => {
    const open = ui.clipboard.hidden;
    ui.clipboard.hidden = !open;
    ui.clipboardToggle.setAttribute('aria-pressed', String(open));
    if (open) ui.clipboardText.focus();
});

function sendClipboard() {
    const rfb = connectedRfb();
    if (!rfb) return;
    if (ui.clipboardText.value === session.clipboardSent) return;
    session.clipboardSent = ui.clipboardText.value;
    rfb.clipboardSend(session.clipboardSent);
    log.debug('clipboard sent', ui.clipboardText.value.length, 'chars');
}
ui.clipboardSend.addEventListener('click', sendClipboard);
// Editing and leaving the box sends it, so pasting here is enough to paste remotely.
ui.clipboardText.addEventListener('change', sendClipboard);
ui.clipboardClear.addEventListener('click', () => {
    ui.clipboardText.value = '';
    sendClipboard();
});

if (!document.fullscreenEnabled) {
    ui.fullscreen.hidden = true; // e.g. iPhone Safari: no Fullscreen API for pages
} else {
    ui.fullscreen.addEventListener('click', () => {
        if (document.fullscreenElement) {
            document.exitFullscreen().catch((err) => log.warn('exit fullscreen:', err));
        } else {
            document.documentElement.requestFullscreen().catch((err) => log.warn('fullscreen:', err));
        }
    });
    document.addEventListener('fullscreenchange', () => {
        ui.fullscreen.setAttribute('aria-pressed', String(!!document.fullscreenElement));
    });
}

// ---------------------------------------------------------------- start

if (config.viewOnly) {
    ui.viewOnly.hidden = false;
    document.body.classList.add('view-only');
}
input.attach();
input.attachKeys(ui.softkeys);
softKeyboard.attach();
setBodyState('disconnected');
layout();
if (config.autoconnect) {
    connect();
} else {
    setStatus('Not connected');
    showIdle({ title: 'Not connected', hint: idleHint(null, 0) });
}
window.addEventListener('pagehide', () => { if (session && session.ws) session.ws.close(1000); });
