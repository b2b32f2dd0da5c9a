// web/ui/beep.js — the audible bell: a short tone made with WebAudio (no sound file).
//
// Needs: window.AudioContext (or the old webkit name); without it beep() does nothing.
// Browsers start an AudioContext suspended until the page has had a click or key, so
// app.js calls prime() from the Connect click, and the server's Bell later sounds.

// A soft, short tone: 880 Hz (A5) for 120 ms at a tenth of full volume, fading out so
// it does not click; shorter than the flash that goes with it.
const TONE_HZ = 880;
const TONE_SECONDS = 0.12;
const TONE_VOLUME = 0.1;
// A server may send Bell in a loop; more than one tone in this time is one tone.
const MIN_INTERVAL_MS = 250;

let context = null;
let lastBeep = -Infinity;

function audioContext() {
    if (context) return context;
    const Ctor = window.AudioContext || window.webkitAudioContext;
    if (typeof Ctor !== 'function') return null;
    try {
        context = new Ctor();
    } catch {
        return null;   // e.g. too many contexts in this tab: the flash still shows
    }
    return context;
}

/** Create (or wake) the audio context while the page has the user's click. */
export function prime() {
    const ctx = audioContext();
    if (ctx && ctx.state === 'suspended') ctx.resume().catch(() => {});
}

/** Sound one tone; returns whether one was started. `now` is for tests. */
export function beep(now = Date.now()) {
    if (now - lastBeep < MIN_INTERVAL_MS) return false;
    const ctx = audioContext();
    if (!ctx) return false;
    lastBeep = now;
    if (ctx.state === 'suspended') ctx.resume().catch(() => {});
    const start = ctx.currentTime;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = 'sine';
    osc.frequency.value = TONE_HZ;
    gain.gain.setValueAtTime(TONE_VOLUME, start);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + TONE_SECONDS);
    osc.connect(gain);
    gain.connect(ctx.destination);
    osc.start(start);
    osc.stop(start + TONE_SECONDS);
    return true;
}
