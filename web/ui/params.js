// web/ui/params.js — the page's URL parameters and the WebSocket URL built from them.
//
// Needs: nothing (URL and URLSearchParams, which browsers and Node both have).
// Pure: no window, no document, no WebSocket. app.js hands in `location`-shaped plain
// objects, so Node's test runner (tests/js/params.test.mjs) can check every rule here.
//
// Parameter names and meanings follow noVNC's vnc.html so existing links keep working:
//   host, port, encrypt, path, password, autoconnect, reconnect, reconnect_delay,
//   resize (off|scale|remote), view_only, view_clip, shared, bell, quality, compression,
//   show_dot, repeaterID, logging (none|error|warn|info|debug)
// plus `encoding` (force one encoding by name; for tests and debugging) and
// `low_colour` (1 = ask for 8 bpp BGR233 pixels: a quarter of the bytes of raw-ish
// encodings on a slow link, at 256 colours; Tight then sends no JPEG), and `target`
// (xvp security: the machine the xvp server is to connect to).
// A fragment (#password=...) overrides the query: the fragment is never sent to the
// server, so it is the place for secrets.

export const RESIZE_MODES = Object.freeze(['off', 'scale', 'remote']);
export const LOG_LEVELS = Object.freeze(['none', 'error', 'warn', 'info', 'debug']);

export const DEFAULTS = Object.freeze({
    host: '',             // '' = the page's host
    port: '',             // '' = the page's port
    encrypt: null,        // null = follow the page (https -> wss)
    path: 'websockify',   // relative to the page's directory, may carry ?token=
    password: '',
    autoconnect: false,
    reconnect: false,
    reconnectDelay: 5000, // ms; noVNC's default
    resize: 'off',
    viewOnly: false,
    viewClip: false,      // true: a desktop larger than the window is cut off, no scrollbars; "Drag view" pans it
    shared: true,
    bell: true,           // the server's Bell: a flash and a short beep
    repeaterID: '',       // sent as "ID:<this>" when an UltraVNC repeater answers
    quality: 6,
    compression: 2,
    showDot: false,
    logging: 'warn',
    encoding: '',
    lowColour: false,
    target: '',
});

// Wire name -> [config key, kind]. Kinds decide how a string becomes a value.
const SPEC = Object.freeze({
    host: ['host', 'string'],
    port: ['port', 'port'],
    encrypt: ['encrypt', 'bool'],
    path: ['path', 'string'],
    password: ['password', 'string'],
    autoconnect: ['autoconnect', 'bool'],
    reconnect: ['reconnect', 'bool'],
    reconnect_delay: ['reconnectDelay', 'delay'],
    resize: ['resize', 'resize'],
    view_only: ['viewOnly', 'bool'],
    view_clip: ['viewClip', 'bool'],
    shared: ['shared', 'bool'],
    bell: ['bell', 'bool'],
    repeaterID: ['repeaterID', 'repeater'],
    quality: ['quality', 'level'],
    compression: ['compression', 'level'],
    show_dot: ['showDot', 'bool'],
    logging: ['logging', 'logging'],
    encoding: ['encoding', 'string'],
    low_colour: ['lowColour', 'bool'],
    target: ['target', 'string'],
});

// noVNC writes booleans as true/false and people write 1/0; accept both, and
// treat anything unrecognised as "not given" rather than guessing.
function parseBool(s) {
    const v = s.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    return undefined;
}

function parseValue(kind, raw) {
    switch (kind) {
        case 'string': return raw;
        case 'bool': return parseBool(raw);
        case 'port': {
            const t = raw.trim();
            if (t === '') return ''; // the default: the page's port, or the scheme's with a host
            const n = Number(t);
            return Number.isInteger(n) && n > 0 && n < 65536 ? String(n) : undefined;
        }
        case 'delay': {
            const n = Number(raw);
            // A zero delay would hammer a dead server in a tight loop; 100 ms is the floor.
            return Number.isFinite(n) && n >= 0 ? Math.max(100, Math.round(n)) : undefined;
        }
        case 'level': {
            const n = Number(raw);
            return Number.isInteger(n) && n >= 0 && n <= 9 ? n : undefined;
        }
        case 'resize': {
            const v = raw.trim().toLowerCase();
            return RESIZE_MODES.includes(v) ? v : undefined;
        }
        case 'repeater': {
            // UltraVNC's repeater reads at most 250 bytes, "ID:" included; its IDs are digits.
            const v = raw.trim();
            return /^[0-9A-Za-z_.:-]{0,200}$/.test(v) ? v : undefined;
        }
        case 'logging': {
            const v = raw.trim().toLowerCase();
            return LOG_LEVELS.includes(v) ? v : undefined;
        }
        default: return undefined;
    }
}

/**
  * One setting by its URL (noVNC) name: [configKey, value], or null when the name is
  * not a setting, or [configKey, undefined] when the value is not understood.
  * `raw` may be a string, or a JSON boolean/number (defaults.json, mandatory.json).
  */
export function readSetting(name, raw) {
    if (!Object.prototype.hasOwnProperty.call(SPEC, name)) return null;
    const [key, kind] = SPEC[name];
    const ok = typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean';
    return [key, ok ? parseValue(kind, String(raw)) : undefined];
}

/** The URL name of each setting, by config key (the reverse of SPEC). */
export const SETTING_NAMES = Object.freeze(Object.fromEntries(
    Object.entries(SPEC).map(([name, [key]]) => [key, name])));

function applyParams(config, text, warnings) {
    const params = new URLSearchParams(text);
    for (const [name, raw] of params) {
        const setting = readSetting(name, raw);
        if (!setting) continue; // unknown names are ignored, like noVNC
        if (setting[1] === undefined) {
            warnings.push(`ignoring ${name}=${JSON.stringify(raw)}`);
            continue;
        }
        config[setting[0]] = setting[1];
    }
}

/**
  * Read the configuration from a query string ("?a=1") and a fragment ("#b=2").
  * Returns { config, warnings }: warnings name each value that was not understood.
  */
export function parseParams(search = '', hash = '', base = DEFAULTS) {
    const config = { ...base };
    const warnings = [];
    applyParams(config, search.replace(/^\?/, ''), warnings);
    applyParams(config, hash.replace(/^#/, ''), warnings);
    return { config, warnings };
}

// An IPv6 literal must be bracketed inside a URL authority.
function hostForUrl(host) {
    if (host.includes(':') && !host.startsWith('[')) return `[${host}]`;
    return host;
}

// path may itself be a whole URL (noVNC's preferred form): ws(s):// as it is,
// http(s):// as the WebSocket of the same place. Anything else is a path.
function absoluteWebSocketUrl(path) {
    if (!/^(wss?|https?):\/\//i.test(path)) return null;
    const u = new URL(path);
    u.protocol = u.protocol.replace(/^http/i, 'ws');
    u.hash = '';
    return u.href;
}

/**
  * Build the ws:// or wss:// URL for `config` as seen from a page at `page`, a
  * location-shaped object { protocol, hostname, port, href }.
  *
  * As noVNC: `path` may be a whole ws(s):// URL. With `host` given, the URL is
  * host[:port] and `path` from its root, wss when encrypt (which defaults to the
  * page being https). Without `host`, `path` is resolved against the page's
  * directory (a page under /vnc/ talks to /vnc/websockify) and keeps any query
  * it carries (path=websockify/?token=test1 -> /websockify/?token=test1).
  * Unlike noVNC, port and encrypt=1 still apply without host (noVNC 1.7 ignores
  * them there; older noVNC links rely on ?port= alone), and an https page always
  * uses wss (a browser refuses ws:// from an https page anyway).
  */
export function buildWebSocketUrl(config, page) {
    const whole = absoluteWebSocketUrl(config.path);
    if (whole) return whole;
    const pageSecure = page.protocol === 'https:';
    const secure = config.encrypt === true || pageSecure;
    const scheme = secure ? 'wss' : 'ws';
    const host = config.host || page.hostname;
    // With a host and no port, the scheme's default port (noVNC); without a host, the page's.
    let port = config.host ? config.port : (config.port || page.port || (pageSecure ? '443' : '80'));
    if ((scheme === 'ws' && port === '80') || (scheme === 'wss' && port === '443')) port = '';

    // URL resolution does the relative-path work ("..", leading "/", query) for us.
    const base = config.host ? new URL('http://h/') : new URL('.', page.href);
    const path = config.host ? config.path.replace(/^\/+/, '') : config.path;
    const target = new URL(path === '' ? '.' : path, base);
    const authority = hostForUrl(host) + (port ? `:${port}` : '');
    return `${scheme}://${authority}${target.pathname}${target.search}`;
}

/**
  * The WebSocket URL as the page shows it to a person ("Connects to ..."): scheme,
  * host and path, and the names of any query parameters with their values left out
  * (a token chooses the target and may be on a shared screen; the address bar is
  * the place to read it). '' when `wsUrl` is not a URL. The caller inserts it as text.
  */
export function describeEndpoint(wsUrl) {
    let u;
    try {
        u = new URL(wsUrl);
    } catch {
        return '';
    }
    const names = [...new Set(u.searchParams.keys())];
    const query = names.length ? `?${names.map((n) => `${n}=\u2026`).join('&')}` : '';
    return `${u.protocol}//${u.host}${u.pathname}${query}`;
}

/**
  * The plain http(s) URL of the same endpoint. wsproxy answers a GET without
  * upgrade headers with the status and text of why the upgrade would fail, which
  * the browser hides from WebSocket code behind close code 1006.
  */
export function probeUrlFor(wsUrl) {
    return wsUrl.replace(/^ws(s?):/i, (_, s) => `http${s}:`);
}

// Longest server text shown in the status line: a reason, not a page of HTML.
export const MAX_REASON_CHARS = 200;

// What a 401 means to the person at the page, whoever sent it (wsproxy's
// BasicHTTPAuth, or a web server in front): the WebSocket can never ask for a
// password, but reloading the page makes the browser ask.
export const SIGN_IN_REASON = 'the proxy needs a user name and password: reload the page and sign in';

/**
  * Turn a probe response into a status-line reason, or null when it tells nothing
  * (2xx, or an empty body). Control characters are dropped and length is capped;
  * the caller still inserts the result as text, never as HTML.
  */
export function reasonFromProbe(status, statusText, body) {
    if (status >= 200 && status < 300) return null;
    if (status === 401) return SIGN_IN_REASON;
    let text = String(body || '').replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
    if (/^\s*</.test(text)) text = ''; // an HTML error page from some other server: use the status
    if (!text) text = statusText ? `${status} ${statusText}` : `HTTP ${status}`;
    if (text.length > MAX_REASON_CHARS) text = text.slice(0, MAX_REASON_CHARS - 1) + '\u2026';
    return text;
}

// RFC 6455 section 7.4.1 codes a person might see, in words.
const CLOSE_CODE_TEXT = Object.freeze({
    1000: 'closed by the server',
    1001: 'server going away',
    1002: 'protocol error',
    1003: 'unsupported data',
    1006: 'connection lost',
    1007: 'invalid data',
    1008: 'policy violation',
    1009: 'message too big',
    1011: 'server error',
    1015: 'TLS handshake failed',
});

/** A reason for a WebSocket close: the server's own words first, else the code's meaning. */
export function describeClose(code, reason) {
    const r = String(reason || '').trim();
    if (r) return r.length > MAX_REASON_CHARS ? r.slice(0, MAX_REASON_CHARS - 1) + '\u2026' : r;
    const t = CLOSE_CODE_TEXT[code];
    return t ? `${t} (${code})` : `closed (${code})`;
}
