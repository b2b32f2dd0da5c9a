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
    parseParams, buildWebSocketUrl, probeUrlFor, reasonFromProbe, describeClose,
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

// Human words for each RFB state (keys are rfb.js's STATES).
const STATE_TEXT = Object.freeze({
    'connecting': () => `Connecting to ${endpointLabel()}…`,
    'protocol-version': () => 'Connecting…',
    'security': () => 'Negotiating security…',
    'authenticating': () => 'Authenticating…',
    'server-init': () => 'Starting session…',
    'connected': () => (desktopName ? `Connected to ${desktopName}` : 'Connected'),
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
    placeholder: $('placeholder'),
    dialog: $('credentials'),
    dialogForm: $('credentials-form'),
    dialogTarget: $('credentials-target'),
    usernameRow: $('credentials-username-row'),
    username: $('cred-username'),
    password: $('cred-password'),
};

// ---------------------------------------------------------------- session state

let ws = null;             // the open (or opening) WebSocket
let rfb = null;            // the RFB session riding on it
let session = 0;           // increments per connect, so late events of an old socket are ignored
let reachedConnected = false;
let userClosed = false;    // the user pressed Disconnect: no reconnect, no error
let authFailed = false;    // wrong password: reconnecting would only fail again
let failReason = '';       // the best reason known so far for the current session ending
let ended = true;          // the UI has already shown the end of this session
let reconnectTimer = 0;
let desktopName = '';
let frameLoop = 0;
let wsUrl = '';
let clipboardSent = null;  // clipboard text the server already has (from us or from it): no repeats

const display = new Display({
    canvas: ui.canvas,
    decodeImage,
    onError: (err) => log.warn('image rectangle failed to decode:', err),
});

const cursor = new CursorView(ui.canvas, { showDot: config.showDot });

const input = new Input({
    canvas: ui.canvas,
    getRfb: () => (rfb && rfb.state === 'connected' ? rfb : null),
    getSize: () => ({ width: display.width, height: display.height }),
    keysymFor,
    onLeave: () => ui.connect.hidden ? ui.disconnect.focus() : ui.connect.focus(),
    log,
});

function keysymFor(ev) {
    return keysyms.keysymFromEvent(ev);
}

function state() {
    return rfb ? rfb.state : 'disconnected';
}

window.wsproxyClient = {
    get rfb() { return rfb; },
    get display() { return display; },
    get ws() { return ws; },
    state,
    connect,
    disconnect,
};

// ---------------------------------------------------------------- images

// Tight JPEG rectangles: the browser decodes, a scratch canvas hands back RGBA.
let scratch = null;
let scratchCtx = null;
async function decodeImage(mime, bytes) {
    const bitmap = await createImageBitmap(new Blob([bytes], { type: mime }));
    try {
        const { width, height } = bitmap;
        if (!scratch) {
            scratch = typeof OffscreenCanvas === 'function'
                ? new OffscreenCanvas(width, height)
                : Object.assign(document.createElement('canvas'), { width, height });
            scratchCtx = scratch.getContext('2d', { willReadFrequently: true });
        }
        if (scratch.width !== width || scratch.height !== height) {
            scratch.width = width;
            scratch.height = height;
        }
        scratchCtx.drawImage(bitmap, 0, 0);
        return { width, height, data: scratchCtx.getImageData(0, 0, width, height).data };
    } finally {
        bitmap.close();
    }
}

// ---------------------------------------------------------------- status line

function endpointLabel() {
    try {
        const u = new URL(wsUrl);
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

function setBodyState(s) {
    document.body.dataset.state = s;
    const live = s !== 'disconnected' && s !== 'failed';
    ui.connect.hidden = live;
    ui.disconnect.hidden = !live;
    const connected = s === 'connected';
    for (const b of [ui.keyboard, ui.cad, ui.tab, ui.esc, ...Object.values(ui.sticky), ui.clipboardSend]) {
        b.disabled = !connected || (config.viewOnly && b !== ui.clipboardSend);
    }
    ui.clipboardSend.disabled = !connected;
}

// ---------------------------------------------------------------- connect / close

function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = 0;
    if (ws) return;
    const id = ++session;
    rfb = null;
    userClosed = false;
    authFailed = false;
    failReason = '';
    reachedConnected = false;
    ended = false;
    desktopName = '';
    clipboardSent = null;

    try {
        wsUrl = buildWebSocketUrl(config, window.location);
    } catch (err) {
        endSession(`bad connection settings: ${err.message}`, true);
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

    let sock;
    try {
        // No subprotocol: wsproxy (like websockify for noVNC) accepts none.
        sock = new WebSocket(wsUrl);
    } catch (err) {
        endSession(`cannot open ${wsUrl}: ${err.message}`, true);
        return;
    }
    sock.binaryType = 'arraybuffer';
    ws = sock;

    rfb = new RFB({
        display,
        send: (bytes) => {
            if (ws === sock && sock.readyState === WebSocket.OPEN) sock.send(bytes);
        },
        onEvent: (event) => { if (id === session) onRfbEvent(event); },
        options,
    });
    log.info('connecting to', wsUrl);
    setBodyState(state());
    setStatus(STATE_TEXT.connecting());

    sock.onopen = () => log.info('websocket open');
    sock.onmessage = (ev) => {
        if (id !== session) return;
        if (typeof ev.data === 'string') {
            // RFB is binary; a text frame means something other than wsproxy answered.
            failReason = 'server sent text, not RFB';
            sock.close(1000);
            return;
        }
        try {
            rfb.receive(new Uint8Array(ev.data));
        } catch (err) {
            log.error('RFB error:', err);
            failReason = `protocol error: ${err.message}`;
            sock.close(1000);
        }
    };
    sock.onclose = (ev) => { onSocketClose(ev, sock, id); };
}

async function onSocketClose(ev, sock, id) {
    if (id !== session) return;
    if (ws === sock) ws = null;
    log.info('websocket closed', ev.code, ev.reason || '');
    let reason = failReason;
    if (!reason && !userClosed) {
        if (ev.code === 1006 && !reachedConnected) {
            // The browser hides why an upgrade failed; wsproxy tells the same story to
            // a plain GET of the same URL, so ask it.
            reason = await probe(wsUrl);
            if (id !== session) return;
            // Say it as wsproxy said it: the RFB session never started, so rfb's
            // "closed before the server answered" wrapper would only blur it.
            failReason = reason;
        } else {
            reason = describeClose(ev.code, ev.reason);
        }
    }
    if (rfb) {
        try { rfb.close(reason || 'closed'); } catch (err) { log.warn('rfb.close:', err); }
    }
    // Red unless it was an orderly end: the user's, or a clean close of a running session.
    const failed = (rfb && rfb.state === 'failed') || !reachedConnected || !ev.wasClean;
    endSession(reason, !userClosed && failed);
}

async function probe(url) {
    const probeUrl = probeUrlFor(url);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), PROBE_TIMEOUT_MS);
    try {
        const res = await fetch(probeUrl, { cache: 'no-store', signal: abort.signal });
        const body = await res.text();
        return reasonFromProbe(res.status, res.statusText, body) ||
            `connection to ${endpointLabel()} lost before the session started`;
    } catch (err) {
        log.info('probe failed:', err);
        return `cannot reach ${endpointLabel()}`;
    } finally {
        clearTimeout(timer);
    }
}

// Show that the session is over (once), then maybe schedule a reconnect.
function endSession(reason, isError) {
    if (ended) return;
    ended = true;
    input.setEnabled(false);
    resetStickyButtons();
    stopFrameLoop();
    display.flush();
    if (ui.dialog.open) ui.dialog.close('closed');
    const finalState = rfb ? rfb.state : 'disconnected';
    setBodyState(finalState === 'failed' ? 'failed' : 'disconnected');
    document.title = 'VNC';
    cursor.reset();

    let text = userClosed ? 'Disconnected' : `Disconnected${reason ? `: ${reason}` : ''}`;
    if (config.reconnect && !userClosed && !authFailed) {
        const secs = Math.round(config.reconnectDelay / 100) / 10;
        text += ` — reconnecting in ${secs} s`;
        reconnectTimer = setTimeout(connect, config.reconnectDelay);
    }
    setStatus(text, { error: isError && !userClosed });
}

function disconnect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = 0;
    userClosed = true;
    input.releaseAll();
    if (ws) {
        ws.close(1000);
        // onclose finishes the job; endSession is idempotent if it already ran.
    } else {
        endSession('', false);
    }
}

// ---------------------------------------------------------------- RFB events

function onRfbEvent(e) {
    switch (e.type) {
        case 'state': return onState(e.state, e.detail);
        case 'credentials-required': return askCredentials(e.types || ['password']);
        case 'desktop-name':
            desktopName = String(e.name || '');
            document.title = desktopName ? `${desktopName} — VNC` : 'VNC';
            if (rfb && rfb.state === 'connected') setStatus(STATE_TEXT.connected());
            return;
        case 'resize':
            document.body.classList.toggle('has-frame', e.width > 0 && e.height > 0);
            layout();
            return;
        case 'clipboard':
            ui.clipboardText.value = String(e.text ?? '');
            clipboardSent = ui.clipboardText.value;
            return;
        case 'cursor': return cursor.set(e);
        case 'bell': return ring();
        case 'security-failure':
            authFailed = true;
            failReason = `authentication failed${e.reason ? `: ${e.reason}` : ''}`;
            return;
        case 'update-done': return;
        case 'resize-rejected':
            log.info('server refused the remote resize', e.status ?? '');
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

function onState(s, detail) {
    log.info('state', s, detailText(detail));
    if (s === 'connected') {
        reachedConnected = true;
        setBodyState(s);
        setStatus(STATE_TEXT.connected());
        input.setEnabled(!config.viewOnly);
        startFrameLoop();
        layout();
        if (config.resize === 'remote') requestRemoteResize();
        if (!ui.dialog.open) ui.canvas.focus({ preventScroll: true });
        return;
    }
    if (s === 'disconnected' || s === 'failed') {
        if (!failReason && detail) failReason = detailText(detail);
        if (s === 'failed' && ws) {
            // The protocol gave up; the socket close that follows ends the session.
            ws.close(1000);
            return;
        }
        if (!ws) endSession(failReason, s === 'failed');
        return;
    }
    setBodyState(s);
    const words = STATE_TEXT[s];
    if (words) setStatus(words());
}

// ---------------------------------------------------------------- credentials

function askCredentials(types) {
    const needUser = types.includes('username');
    ui.usernameRow.hidden = !needUser;
    ui.username.required = needUser;
    ui.dialogTarget.textContent = desktopName || endpointLabel();
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
    if (ok && rfb) {
        setStatus('Authenticating…');
        rfb.sendPassword(password, ui.usernameRow.hidden ? undefined : username);
    } else {
        disconnect();
    }
});

// ---------------------------------------------------------------- scaling

function layout() {
    document.body.dataset.resize = config.resize;
    const w = display.width, h = display.height;
    if (!w || !h) return;
    let cssW = w, cssH = h;
    if (config.resize === 'scale') {
        ({ width: cssW, height: cssH } = fitSize(w, h, ui.screen.clientWidth, ui.screen.clientHeight));
    }
    ui.canvas.style.width = `${cssW}px`;
    ui.canvas.style.height = `${cssH}px`;
}

let remoteResizeTimer = 0;
function requestRemoteResize() {
    clearTimeout(remoteResizeTimer);
    remoteResizeTimer = setTimeout(() => {
        if (!rfb || rfb.state !== 'connected' || config.resize !== 'remote' || config.viewOnly) return;
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

// ---------------------------------------------------------------- frames

// The display marks what changed; the canvas is updated once per animation frame.
function startFrameLoop() {
    if (frameLoop) return;
    const tick = () => {
        display.flush();
        frameLoop = requestAnimationFrame(tick);
    };
    frameLoop = requestAnimationFrame(tick);
}

function stopFrameLoop() {
    cancelAnimationFrame(frameLoop);
    frameLoop = 0;
}

function ring() {
    ui.screen.classList.remove('bell');
    void ui.screen.offsetWidth; // restart the animation
    ui.screen.classList.add('bell');
}

// ---------------------------------------------------------------- toolbar

// A click with the mouse goes back to the remote screen; a keyboard press
// (detail 0) leaves focus on the button so the toolbar stays usable.
function refocus(ev) {
    if (ev.detail > 0 && rfb && rfb.state === 'connected') ui.canvas.focus({ preventScroll: true });
}

ui.connect.addEventListener('click', () => connect());
ui.disconnect.addEventListener('click', () => disconnect());
ui.cad.addEventListener('click', (ev) => {
    if (rfb && rfb.state === 'connected' && !config.viewOnly) rfb.sendCtrlAltDel();
    refocus(ev);
});
ui.tab.addEventListener('click', (ev) => { input.tap(XK.Tab, 'Tab'); refocus(ev); });

// Keyboard: focus the hidden textarea so a phone opens its soft keyboard. Shown on
// every device: on a touch screen it is the only way to type at all, and on a
// desktop it is harmless (keys typed there go the same way as on the canvas).
const softKeyboard = new SoftKeyboard({ textarea: ui.softkeys, send: (keys) => input.sendKeys(keys) });
ui.keyboard.addEventListener('click', () => {
    if (rfb && rfb.state === 'connected' && !config.viewOnly) softKeyboard.focus();
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
    if (!rfb || rfb.state !== 'connected') return;
    if (ui.clipboardText.value === clipboardSent) return;
    clipboardSent = ui.clipboardText.value;
    rfb.clipboardSend(clipboardSent);
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
}
window.addEventListener('pagehide', () => { if (ws) ws.close(1000); });
