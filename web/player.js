// player.js — the page behind play.html: opens a wsproxy session recording (the
// file picker, or ?url= of a recording the administrator serves) and plays it
// through the same client as vnc.html: core/rfb.js drawing into core/display.js,
// fed the recorded server bytes on their timeline by a fake transport whose
// send() drops everything (the replayed client asks for updates and answers
// fences as it would live; nobody is listening).
//
// Seeking forward feeds the bytes up to that point at once. Seeking backward
// starts a new client and replays from the start at full speed: the zlib and
// Tight streams of a VNC session carry state from their first byte, so a
// picture of the screen alone could not go on decoding from there.
//
// Needs: core/rfb.js, core/display.js, core/recording.js. For tests:
// window.wsproxyPlayer = { rfb, display, position, duration, settled() } and
// body[data-playback] = empty | loading | ready | playing | paused | ended | error.

import { RFB } from './core/rfb.js';
import { Display } from './core/display.js';
import { parseRecording, pixelFormatOf, durationOf, Timeline } from './core/recording.js';
import { decodeImage } from './ui/pictures.js';

const ui = {
    file: document.getElementById('file'),
    play: document.getElementById('btn-play'),
    speed: document.getElementById('sel-speed'),
    seek: document.getElementById('seek'),
    end: document.getElementById('btn-end'),
    time: document.getElementById('time'),
    status: document.getElementById('status'),
    canvas: document.getElementById('canvas'),
    placeholder: document.getElementById('placeholder-text'),
};

const player = {
    recording: null,
    pixelFormat: null,
    duration: 0,           // ms
    timeline: null,
    rfb: null,
    display: null,
    generation: 0,         // which client's events count (a seek back starts a new one)
    position: 0,           // ms of the recording fed to the client so far
    playing: false,
    speed: 1,
    clockStart: null,      // requestAnimationFrame time when the position was positionAtStart
    positionAtStart: 0,
    frame: 0,
};

// Seeks, loads and jumps run one after another, never interleaved.
let busy = Promise.resolve();
function serial(fn) {
    busy = busy.then(fn, fn);
    return busy;
}

window.wsproxyPlayer = {
    get rfb() { return player.rfb; },
    get display() { return player.display; },
    get position() { return player.position; },
    get duration() { return player.duration; },
    settled: () => serial(settle),
};

// ---------------------------------------------------------------- the client

async function restart() {
    const old = player.display;
    const generation = ++player.generation;
    // The old client's last images land before the new one draws: a late one
    // would paint a stale rectangle over the replay.
    if (old) await settle(old);
    const display = new Display({
        canvas: ui.canvas,
        decodeImage,
        onError: (err) => console.warn('image rectangle failed to decode:', err),
    });
    player.display = display;
    player.rfb = new RFB({
        display,
        send: () => {},
        onEvent: (event) => { if (generation === player.generation) onRfbEvent(event); },
        options: { pixelFormat: player.pixelFormat, viewOnly: true },
    });
    player.timeline = new Timeline(player.recording);
    player.position = 0;
}

function feed(ms) {
    for (const bytes of player.timeline.take(ms)) player.rfb.receive(bytes);
    player.position = Math.min(ms, player.duration);
}

// Until every image of what was fed is decoded and presented.
async function settle(display = player.display) {
    while (display && display.pending) {
        await display.whenIdle();
        // The client's own whenIdle callback runs first and may parse (and
        // queue) more: look again after it.
        await new Promise((resolve) => setTimeout(resolve, 0));
    }
}

function onRfbEvent(event) {
    if (event.type === 'state') {
        document.body.dataset.state = event.state;
        if (event.state === 'failed') showStatus(`playback stopped: ${event.detail}`, true);
    } else if (event.type === 'resize') {
        document.body.classList.add('has-frame');
    }
}

// ---------------------------------------------------------------- the timeline

function tick(now) {
    player.frame = 0;
    if (!player.playing) return;
    if (player.clockStart === null) player.clockStart = now;
    const position = Math.min(player.duration,
        player.positionAtStart + (now - player.clockStart) * player.speed);
    feed(position);
    showTime();
    if (position >= player.duration) {
        stopClock();
        setPlayback('ended');
        return;
    }
    player.frame = requestAnimationFrame(tick);
}

function startClock() {
    player.playing = true;
    player.positionAtStart = player.position;
    player.clockStart = null;
    if (!player.frame) player.frame = requestAnimationFrame(tick);
    ui.play.textContent = 'Pause';
    setPlayback('playing');
}

function stopClock() {
    player.playing = false;
    if (player.frame) cancelAnimationFrame(player.frame);
    player.frame = 0;
    ui.play.textContent = 'Play';
}

function play() {
    return serial(async () => {
        if (player.position >= player.duration) await seekTo(0);
        startClock();
    });
}

function pause() {
    stopClock();
    setPlayback('paused');
}

async function seekTo(ms) {
    const target = Math.max(0, Math.min(player.duration, ms));
    const wasPlaying = player.playing;
    stopClock();
    if (target < player.position) await restart();
    feed(target);
    showTime();
    if (wasPlaying && target < player.duration) {
        startClock();
        return;
    }
    await settle();
    setPlayback(target >= player.duration ? 'ended' : 'paused');
}

function seek(ms) {
    return serial(() => seekTo(ms));
}

function setSpeed(speed) {
    player.speed = speed;
    // Go on from where we are at the new rate.
    player.positionAtStart = player.position;
    player.clockStart = null;
}

// ---------------------------------------------------------------- loading

async function load(bytes, label) {
    stopClock();
    setPlayback('loading');
    let recording, pixelFormat;
    try {
        recording = parseRecording(bytes);
        pixelFormat = pixelFormatOf(recording);
    } catch (err) {
        setPlayback('error');
        showStatus(`${label}: ${err.message}`, true);
        return;
    }
    Object.assign(player, { recording, pixelFormat, duration: durationOf(recording) });
    await restart();
    feed(0);
    await settle();
    for (const el of [ui.play, ui.speed, ui.seek, ui.end]) el.disabled = false;
    ui.seek.max = String(player.duration);
    showTime();
    showStatus(describe(recording, label));
    setPlayback('ready');
}

// One line about the recording, from its header (text only, never HTML).
function describe(recording, label) {
    const h = recording.header;
    const parts = [label];
    if (typeof h.target === 'string') parts.push(h.target + (typeof h.token === 'string' ? ` (token ${h.token})` : ''));
    if (typeof h.started === 'string') parts.push(h.started);
    if (Number.isInteger(h.width) && Number.isInteger(h.height)) parts.push(`${h.width}x${h.height}`);
    if (!recording.complete) parts.push('cut short');
    return parts.join(' · ');
}

async function loadUrl(url) {
    setPlayback('loading');
    showStatus(`loading ${url}…`);
    try {
        const response = await fetch(url);
        if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
        const bytes = new Uint8Array(await response.arrayBuffer());
        await serial(() => load(bytes, url));
    } catch (err) {
        setPlayback('error');
        showStatus(`${url}: ${err.message}`, true);
    }
}

// ---------------------------------------------------------------- the page

function formatTime(ms) {
    const tenths = Math.floor(ms / 100);
    const minutes = Math.floor(tenths / 600);
    const seconds = (tenths % 600) / 10;
    return `${minutes}:${seconds.toFixed(1).padStart(4, '0')}`;
}

function showTime() {
    ui.time.textContent = `${formatTime(player.position)} / ${formatTime(player.duration)}`;
    if (document.activeElement !== ui.seek) ui.seek.value = String(Math.round(player.position));
}

function showStatus(text, error = false) {
    ui.status.textContent = text;
    ui.placeholder.textContent = text;
    document.body.classList.toggle('has-error', error);
}

function setPlayback(state) {
    document.body.dataset.playback = state;
}

ui.file.addEventListener('change', async () => {
    const file = ui.file.files[0];
    if (!file) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    await serial(() => load(bytes, file.name));
});
ui.play.addEventListener('click', () => { if (player.playing) pause(); else play(); });
ui.speed.addEventListener('change', () => setSpeed(Number(ui.speed.value) || 1));
ui.seek.addEventListener('input', () => seek(Number(ui.seek.value)));
ui.end.addEventListener('click', () => seek(player.duration));

const url = new URLSearchParams(window.location.search).get('url');
if (url) loadUrl(url);
