// web/ui/settings.js — where each setting's value comes from, and the user's saved choices.
//
// Needs: ./params.js (names, parsing). Pure apart from the `storage` object handed in
// (localStorage in the page, a Map-like stub in tests/js/settings.test.mjs).
//
// Precedence, as noVNC's app: built-in defaults < defaults.json (the site's) < what the
// user saved in the settings panel (localStorage) < the page's URL (query, then fragment)
// < mandatory.json (the site's, which the panel shows locked). Names in both JSON files
// and in storage are the URL names (noVNC's: view_only, reconnect_delay, ...).

import { DEFAULTS, parseParams, readSetting, SETTING_NAMES } from './params.js';

// One localStorage entry, a JSON object of URL name -> value, so the page's origin
// holds one key of ours rather than a dozen loose ones.
export const STORAGE_KEY = 'wsproxy.settings';

// What the settings panel may save. Never the password (a secret on disk), nor the
// test/debug switches (encoding, low_colour) or autoconnect (a link's decision).
export const SAVED = Object.freeze([
    'quality', 'compression', 'resize', 'view_only', 'shared', 'view_clip', 'reconnect',
    'reconnect_delay', 'show_dot', 'bell', 'logging', 'host', 'port', 'path', 'encrypt', 'repeaterID',
]);

// Apply a {urlName: value} object (a JSON file or storage) over config; names that are
// not settings, or values not understood, become warnings. Returns the keys it set.
function applyObject(config, object, source, warnings, allowed = null) {
    const set = [];
    if (!object || typeof object !== 'object' || Array.isArray(object)) return set;
    for (const [name, raw] of Object.entries(object)) {
        const setting = readSetting(name, raw);
        if (!setting || (allowed && !allowed.includes(name))) {
            warnings.push(`${source}: ignoring unknown setting ${JSON.stringify(name)}`);
            continue;
        }
        if (setting[1] === undefined) {
            warnings.push(`${source}: ignoring ${name}=${JSON.stringify(raw)}`);
            continue;
        }
        config[setting[0]] = setting[1];
        set.push(setting[0]);
    }
    return set;
}

/**
  * The page's configuration from every source, lowest first:
  *   resolveSettings({ defaults, saved, search, hash, mandatory })
  * defaults/mandatory: the parsed JSON files ({} or null when absent); saved: what
  * loadSaved() returned; search/hash: location.search and location.hash.
  * Returns { config, locked: Set of config keys mandatory.json fixed, warnings }.
  */
export function resolveSettings({ defaults = null, saved = null, search = '', hash = '', mandatory = null } = {}) {
    const warnings = [];
    const base = { ...DEFAULTS };
    applyObject(base, defaults, 'defaults.json', warnings);
    applyObject(base, saved, 'saved settings', warnings, SAVED);
    const fromUrl = parseParams(search, hash, base);
    warnings.push(...fromUrl.warnings);
    const config = fromUrl.config;
    const locked = new Set(applyObject(config, mandatory, 'mandatory.json', warnings));
    return { config, locked, warnings };
}

/** The saved choices ({urlName: value}) in `storage`, or {} when none or unreadable. */
export function loadSaved(storage) {
    try {
        const text = storage ? storage.getItem(STORAGE_KEY) : null;
        const object = text ? JSON.parse(text) : {};
        return object && typeof object === 'object' && !Array.isArray(object) ? object : {};
    } catch {
        return {};   // private browsing, a full disk or a hand-edited entry: start afresh
    }
}

/**
  * Save one choice, named by config key (viewOnly) or URL name (view_only). Returns
  * false when the setting is not one the panel saves or storage refused it.
  */
export function saveSetting(storage, key, value) {
    const name = SETTING_NAMES[key] ?? key;
    if (!SAVED.includes(name) || !storage) return false;
    const saved = loadSaved(storage);
    saved[name] = value;
    try {
        storage.setItem(STORAGE_KEY, JSON.stringify(saved));
        return true;
    } catch {
        return false;
    }
}

/**
  * Fetch one of the site's JSON files (defaults.json, mandatory.json) next to the page.
  * A missing file (404) or one that is not a JSON object is {} — with a reason in
  * `problem` only for the second, since most sites ship none.
  */
export async function fetchJsonSettings(fetchFn, url) {
    let res;
    try {
        res = await fetchFn(url, { cache: 'no-cache' });
    } catch (err) {
        return { settings: {}, problem: `${url}: ${err.message}` };
    }
    if (res.status === 404) return { settings: {}, problem: '' };
    if (!res.ok) return { settings: {}, problem: `${url}: HTTP ${res.status}` };
    try {
        const object = await res.json();
        if (object && typeof object === 'object' && !Array.isArray(object)) return { settings: object, problem: '' };
        return { settings: {}, problem: `${url}: not a JSON object` };
    } catch (err) {
        return { settings: {}, problem: `${url}: ${err.message}` };
    }
}
