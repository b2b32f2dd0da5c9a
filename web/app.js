// app.js — the page: reads vnc.html's URL parameters, opens the WebSocket to wsproxy,
// runs one RFB session over it, and wires the toolbar, status line, credentials
// dialog, clipboard panel, scaling and input to it.
//
// Needs: vnc.html's elements (by id), ./core/rfb.js (protocol, no DOM),
// ./core/display.js (framebuffer + canvas), ./core/keysyms.js (key -> keysym),
// ./ui/params.js and ./ui/geometry.js (pure helpers), ./ui/input.js, ./ui/cursor.js,
// ./ui/softkeyboard.js (the Keyboard button's hidden textarea, for phones),
// ./ui/settings.js (defaults.json < saved < URL < mandatory.json; the settings panel),
// ./ui/l10n.js (the page's words; catalogues in locale/), ./ui/beep.js (the bell's tone).
// Every word the page itself says goes through t() with its English as the key, so the catalogues
// can translate it (tests/js/l10n.test.mjs checks each t() key is in each catalogue).
//
// Everything the server says (desktop name, close reasons, errors) reaches the page
// through textContent or a textarea's value, never as HTML.
// For tests: window.wsproxyClient = { rfb, display, state() } and body[data-state].

import { RFB } from './core/rfb.js';
import { Display } from './core/display.js';
import * as keysyms from './core/keysyms.js';
import {
    buildWebSocketUrl, describeEndpoint, probeUrlFor, reasonFromProbe, describeClose, readSetting, LOG_LEVELS,
} from './ui/params.js';
import { resolveSettings, loadSaved, saveSetting, fetchJsonSettings } from './ui/settings.js';
import { setup as setupLanguage, t, translateDom } from './ui/l10n.js';
import * as bell from './ui/beep.js';
import { fitSize } from './ui/geometry.js';
import { Input, XK } from './ui/input.js';
import { CursorView } from './ui/cursor.js';
import { decodeImage } from './ui/pictures.js';
import { SoftKeyboard } from './ui/softkeyboard.js';

// ---------------------------------------------------------------- configuration

// localStorage, or null where the browser refuses it (some private modes, sandboxed frames).
function browserStorage() {
    try {
        return window.localStorage;
    } catch {
        return null;
    }
}
const storage = browserStorage();

// The site's settings files and the page's language, all before anything is shown.
const [defaultsFile, mandatoryFile, languageProblem] = await Promise.all([
    fetchJsonSettings(fetch, 'defaults.json'),
    fetchJsonSettings(fetch, 'mandatory.json'),
    setupLanguage(navigator.languages || [navigator.language], fetch, 'locale/'),
]);
const { config, locked, warnings } = resolveSettings({
    defaults: defaultsFile.settings,
    saved: loadSaved(storage),
    search: window.location.search,
    hash: window.location.hash,
    mandatory: mandatoryFile.settings,
});
translateDom(document);

// The console methods for each level; levels above config.logging do nothing
// ('none' silences even errors). setLogLevel() changes them in place, so modules
// handed `log` follow the settings panel.
const log = {};
function setLogLevel(level) {
    const rank = LOG_LEVELS.indexOf(level);
    for (const name of ['error', 'warn', 'info', 'debug']) {
        log[name] = LOG_LEVELS.indexOf(name) <= rank
            ? (...args) => console[name === 'debug' ? 'log' : name]('[vnc]', ...args)
            : () => {};
    }
}
setLogLevel(config.logging);
for (const w of [...warnings, defaultsFile.problem, mandatoryFile.problem, languageProblem]) {
    if (w) log.warn(w);
}

// How long the window must stop changing size before a remote resize is asked for:
// each SetDesktopSize makes the server reallocate and repaint everything.
const REMOTE_RESIZE_DEBOUNCE_MS = 400;
// The fallback HTTP probe must not hold the status line hostage.
const PROBE_TIMEOUT_MS = 4000;

// Human words for each RFB state (keys are rfb.js's STATES), for session s.
const STATE_TEXT = Object.freeze({
    'connecting': (s) => t('Connecting to {host}…', { host: endpointLabel(s) }),
    'protocol-version': () => t('Connecting…'),
    'security': () => t('Negotiating security…'),
    'authenticating': () => t('Authenticating…'),
    'server-init': () => t('Starting session…'),
    'connected': (s) => (s.desktopName ? t('Connected to {name}', { name: s.desktopName }) : t('Connected')),
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
    settingsToggle: $('btn-settings'),
    settings: $('settings'),
    power: $('btn-power'),
    powerPanel: $('power'),
    connectForm: $('connect-form'),
    connectDetails: $('connect-details'),
    fullscreen: $('btn-fullscreen'),
    dragView: $('btn-drag'),
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
    idleHint: $('idle-hint'),
    dialog: $('credentials'),
    dialogForm: $('credentials-form'),
    dialogTitle: $('credentials-title'),
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
        proxyViewOnly: false,  // wsproxy chose the view-only subprotocol: it drops our input
    };
}

// wsproxy picks this WebSocket subprotocol, when offered, for a view-only
// connection (a token marked view-only, or --view-only); other servers
// pick "binary" or none, and noVNC never offers it.
const VIEW_ONLY_PROTOCOL = 'wsproxy.view-only';
const VIEW_ONLY_TITLE = {
    page: () => t('Keyboard and mouse are not sent to the remote computer'),
    proxy: () => t('The server lets this connection only watch: keyboard, mouse and clipboard do not reach the remote computer'),
};

// View-only: asked for in the address (view_only=1), or enforced by wsproxy.
function viewOnly() {
    return config.viewOnly || !!(session && session.proxyViewOnly);
}

function showViewOnly() {
    const on = viewOnly();
    ui.viewOnly.hidden = !on;
    ui.viewOnly.title = VIEW_ONLY_TITLE[session && session.proxyViewOnly ? 'proxy' : 'page']();
    document.body.classList.toggle('view-only', on);
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
    panBy: (dx, dy) => {
        ui.screen.scrollLeft += dx;
        ui.screen.scrollTop += dy;
    },
    onTouchPoint: (x, y) => cursor.showTouchDot(x, y),
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

// ---------------------------------------------------------------- status line

function endpointLabel(s) {
    try {
        const u = new URL(s.url);
        return u.host;
    } catch {
        return t('server');
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
    ui.idleTarget.textContent = describeEndpoint(url) || t('nowhere: the connection settings are not valid');
    ui.idleHint.textContent = hint;
}

// One line on what to do next, after session s ended (null: before the first).
function idleHint(s, reconnecting) {
    if (reconnecting) return t('Reconnecting in {seconds} s; press Connect to try now.', { seconds: reconnecting });
    if (!s) return t('Press Connect to open the remote desktop (autoconnect=1 in the address connects on load).');
    if (s.authFailed) return t('Check the password, then press Connect to try again.');
    if (s.userClosed || s.reachedConnected) return t('Press Connect to open the session again.');
    return t('Press Connect to try again; if it fails again, check the connection settings above and that the VNC server runs.');
}

function setBodyState(state) {
    document.body.dataset.state = state;
    const live = state !== 'disconnected' && state !== 'failed';
    ui.connect.hidden = live;
    ui.disconnect.hidden = !live;
    const connected = state === 'connected';
    for (const b of [ui.keyboard, ui.cad, ui.tab, ui.esc, ...Object.values(ui.sticky), ui.clipboardSend]) {
        b.disabled = !connected || (viewOnly() && b !== ui.clipboardSend);
    }
    ui.clipboardSend.disabled = !connected || !!(session && session.proxyViewOnly);
}

// ---------------------------------------------------------------- connect / close

function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = 0;
    if (session && session.ws) return;
    const s = newSession();
    session = s;
    showViewOnly();   // a new connection: view-only again only if the page or the proxy says so

    try {
        s.url = buildWebSocketUrl(config, window.location);
    } catch (err) {
        endSession(s, t('bad connection settings: {problem}', { problem: err.message }), true);
        return;
    }

    const options = {
        shared: config.shared,
        quality: config.quality,
        compression: config.compression,
        viewOnly: config.viewOnly,
        lowColour: config.lowColour,
        repeaterID: config.repeaterID,
    };
    if (config.password) options.password = config.password;
    if (config.encoding) options.encodings = [config.encoding];
    if (config.target) options.target = config.target;   // xvp security

    let sock;
    try {
        // "binary" is what websockify and wsproxy pick; VIEW_ONLY_PROTOCOL is how
        // wsproxy says the connection is view-only. A server may pick none.
        sock = new WebSocket(s.url, ['binary', VIEW_ONLY_PROTOCOL]);
    } catch (err) {
        endSession(s, t('cannot open {url}: {problem}', { url: s.url, problem: err.message }), true);
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

    sock.onopen = () => {
        log.info('websocket open', sock.protocol || '(no subprotocol)');
        if (s !== session || sock.protocol !== VIEW_ONLY_PROTOCOL) return;
        s.proxyViewOnly = true;
        s.rfb.setViewOnly();
        showViewOnly();
    };
    sock.onmessage = (ev) => {
        if (s !== session) return;
        if (typeof ev.data === 'string') {
            // RFB is binary; a text frame means something other than wsproxy answered.
            s.failReason = t('server sent text, not RFB');
            sock.close(1000);
            return;
        }
        try {
            s.rfb.receive(new Uint8Array(ev.data));
        } catch (err) {
            log.error('RFB error:', err);
            s.failReason = t('protocol error: {problem}', { problem: err.message });
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
            t('connection to {host} lost before the session started', { host: endpointLabel(s) });
    } catch (err) {
        log.info('probe failed:', err);
        return t('cannot reach {host}', { host: endpointLabel(s) });
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
    document.title = t('VNC');
    cursor.reset();
    setPowerAvailable(false);
    updateBeforeUnload();
    cursor.hideTouchDot();

    let text = s.userClosed || !reason ? t('Disconnected') : t('Disconnected: {reason}', { reason });
    let reconnecting = 0;
    if (config.reconnect && !s.userClosed && !s.authFailed) {
        reconnecting = Math.round(config.reconnectDelay / 100) / 10;
        text += ' — ' + t('reconnecting in {seconds} s', { seconds: reconnecting });
        reconnectTimer = setTimeout(connect, config.reconnectDelay);
    }
    const error = isError && !s.userClosed;
    // Never got in: the connection settings are the first thing to check.
    if (error && !s.reachedConnected) ui.connectDetails.open = true;
    setStatus(text, { error });
    showIdle({
        title: error && !s.reachedConnected ? t('Could not connect') : t('Disconnected'),
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
            document.title = s.desktopName ? t('{name} — VNC', { name: s.desktopName }) : t('VNC');
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
        case 'led': return input.setRemoteLocks(e);
        case 'bell': return ring();
        case 'power': return setPowerAvailable(e.available);
        case 'power-failed':
            setStatus(t('The remote computer refused the power action'), { error: true });
            return;
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
        input.setEnabled(!viewOnly());
        layout();
        if (config.resize === 'remote') requestRemoteResize();
        if (!ui.dialog.open) ui.canvas.focus({ preventScroll: true });
        updateBeforeUnload();
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
    ui.dialogTitle.textContent = t('Log in to {name}', { name: s.desktopName || endpointLabel(s) });
    ui.password.value = config.password || '';
    setStatus(t('Password required'));
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
        setStatus(t('Authenticating…'));
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
    document.body.classList.toggle('clip', config.viewClip);
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
    updateDragView();
}

// "Drag view" (noVNC's drag viewport) only means something while part of the
// desktop is out of the window: only then is it shown, and it turns itself off
// when nothing is left to move.
function updateDragView() {
    const s = ui.screen;
    const canPan = s.scrollWidth > s.clientWidth || s.scrollHeight > s.clientHeight;
    ui.dragView.hidden = !canPan;
    if (!canPan && input.dragViewport) setDragView(false);
}

function setDragView(on) {
    input.setDragViewport(on);
    ui.dragView.setAttribute('aria-pressed', String(on));
    document.body.classList.toggle('drag-view', on);
}

ui.dragView.addEventListener('click', (ev) => {
    setDragView(!input.dragViewport);
    refocus(ev);
});

let remoteResizeTimer = 0;
function requestRemoteResize() {
    clearTimeout(remoteResizeTimer);
    remoteResizeTimer = setTimeout(() => {
        const rfb = connectedRfb();
        if (!rfb || config.resize !== 'remote' || viewOnly()) return;
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


// No frame loop: the canvas changes only when rfb.js presents a whole
// FramebufferUpdate (display.present()), never part of one.

// The server's Bell: always the flash (it costs nothing and shows on a muted
// machine); the tone only when the bell setting is on.
function ring() {
    ui.screen.classList.remove('bell');
    void ui.screen.offsetWidth; // restart the animation
    ui.screen.classList.add('bell');
    if (config.bell) bell.beep();
}

// ---------------------------------------------------------------- toolbar

// A click with the mouse goes back to the remote screen; a keyboard press
// (detail 0) leaves focus on the button so the toolbar stays usable.
function refocus(ev) {
    if (ev.detail > 0 && connectedRfb()) ui.canvas.focus({ preventScroll: true });
}

ui.connect.addEventListener('click', () => { bell.prime(); connect(); });
ui.connectForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    // Enter in a field submits before that field's change event on some browsers.
    for (const el of ui.connectForm.querySelectorAll('[data-setting]')) commitSetting(el);
    bell.prime();
    connect();
});
ui.disconnect.addEventListener('click', () => disconnect());
ui.cad.addEventListener('click', (ev) => {
    const rfb = connectedRfb();
    if (rfb && !viewOnly()) rfb.sendCtrlAltDel();
    refocus(ev);
});
ui.tab.addEventListener('click', (ev) => { input.tap(XK.Tab, 'Tab'); refocus(ev); });

// Keyboard: focus the hidden textarea so a phone opens its soft keyboard. Shown on
// every device: on a touch screen it is the only way to type at all, and on a
// desktop it is harmless (keys typed there go the same way as on the canvas).
const softKeyboard = new SoftKeyboard({ textarea: ui.softkeys, send: (keys) => input.sendKeys(keys) });
ui.keyboard.addEventListener('click', () => {
    if (connectedRfb() && !viewOnly()) softKeyboard.focus();
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

// ---------------------------------------------------------------- settings panel

// Every control with data-setting="<URL name>" (the settings panel, the toolbar's
// Scaling and the connect form) shows config's value and, when changed, sets it,
// saves it (ui/settings.js) and applies it. A setting from mandatory.json is shown
// disabled: the site fixed it.
function settingValueForControl(el, key) {
    if (key === 'encrypt' && config.encrypt === null) return window.location.protocol === 'https:';
    return config[key];
}

function showSetting(el) {
    const [key] = readSetting(el.dataset.setting, '');
    const value = settingValueForControl(el, key);
    if (el.type === 'checkbox') el.checked = !!value;
    else el.value = value === null || value === undefined ? '' : String(value);
    if (locked.has(key)) {
        el.disabled = true;
        el.title = t('Set by this site (mandatory.json)');
    }
}

// Read one control into config; returns the config key it changed, or '' when
// nothing changed (a value not understood is put back as it was).
function commitSetting(el) {
    const name = el.dataset.setting;
    const raw = el.type === 'checkbox' ? String(el.checked) : el.value;
    const [key, value] = readSetting(name, raw);
    if (locked.has(key)) return '';
    if (value === undefined) {
        showSetting(el);
        return '';
    }
    if (value === config[key]) return '';
    config[key] = value;
    saveSetting(storage, name, value);
    return key;
}

// What a changed setting does at once; the rest apply at the next connection.
function applySetting(key) {
    switch (key) {
        case 'resize':
            layout();
            if (config.resize === 'remote') requestRemoteResize();
            return;
        case 'viewClip':
            document.body.dataset.clip = String(config.viewClip);
            layout();
            return;
        case 'showDot':
            cursor.showDot = config.showDot;
            return;
        case 'logging':
            setLogLevel(config.logging);
            return;
        case 'host': case 'port': case 'path': case 'encrypt':
            if (!session || !session.ws) ui.idleTarget.textContent = describeEndpoint(safeUrl());
            return;
        default:
    }
}

function safeUrl() {
    try {
        return buildWebSocketUrl(config, window.location);
    } catch {
        return '';
    }
}

function initSettings() {
    for (const el of document.querySelectorAll('[data-setting]')) {
        showSetting(el);
        el.addEventListener('change', () => applySetting(commitSetting(el)));
    }
    document.body.dataset.clip = String(config.viewClip);
    ui.settingsToggle.addEventListener('click', () => togglePanel(ui.settings, ui.settingsToggle));
}

function togglePanel(panel, button, open = panel.hidden) {
    panel.hidden = !open;
    button.setAttribute('aria-pressed', String(open));
}

// ---------------------------------------------------------------- power (XVP)

// Shown once the server has offered XVP (and never to a view-only session).
function setPowerAvailable(available) {
    const show = !!available && !viewOnly();
    ui.power.hidden = !show;
    if (!show) togglePanel(ui.powerPanel, ui.power, false);
}

ui.power.addEventListener('click', () => togglePanel(ui.powerPanel, ui.power));
const POWER_SENT = Object.freeze({
    shutdown: () => t('Shutdown requested'),
    reboot: () => t('Reboot requested'),
    reset: () => t('Reset requested'),
});
for (const button of ui.powerPanel.querySelectorAll('[data-power]')) {
    button.addEventListener('click', () => {
        const rfb = connectedRfb();
        const action = button.dataset.power;
        if (rfb && rfb.powerAction(action)) setStatus(POWER_SENT[action]());
        togglePanel(ui.powerPanel, ui.power, false);
    });
}

// ---------------------------------------------------------------- leaving the page

// While a session that takes input is open, closing the tab or navigating away
// asks first (as noVNC): one stray Ctrl+W would otherwise drop the session.
function onBeforeUnload(ev) {
    ev.preventDefault();
    ev.returnValue = t('Leave the page and disconnect the session?');
}

function updateBeforeUnload() {
    window.removeEventListener('beforeunload', onBeforeUnload);
    if (connectedRfb() && !viewOnly()) window.addEventListener('beforeunload', onBeforeUnload);
}

// ---------------------------------------------------------------- start

showViewOnly();
initSettings();
input.attach();
input.attachKeys(ui.softkeys);
ui.canvas.addEventListener('pointermove', (e) => { if (e.pointerType === 'mouse') cursor.hideTouchDot(); });
softKeyboard.attach();
setBodyState('disconnected');
layout();
if (config.autoconnect) {
    connect();
} else {
    setStatus(t('Not connected'));
    showIdle({ title: t('Not connected'), hint: idleHint(null, 0) });
}
window.addEventListener('pagehide', () => { if (session && session.ws) session.ws.close(1000); });
