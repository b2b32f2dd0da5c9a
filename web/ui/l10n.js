// web/ui/l10n.js — the page's words in the reader's language.
//
// Needs: nothing at import. setup() takes the browser's language list and a fetch
// function; translateDom() takes a document. pickLanguage() and format() are pure
// (tests/js/l10n.test.mjs). Catalogues live in web/locale/<language>.json: one JSON
// object from the English text (the key, as written in vnc.html and in t('...') calls
// in app.js) to its translation; {name} marks a value filled in at run time.
//
// In vnc.html, an element with `data-i18n` has its text translated (the English text
// is the key, and the element holds text only); `data-i18n-attrs="title aria-label"`
// names attributes whose values are translated the same way.

// Catalogues shipped in web/locale/; English is the built-in text itself.
export const LANGUAGES = Object.freeze(['de', 'es', 'fr', 'ja', 'zh-CN']);
export const FALLBACK = 'en';

// Chinese is Simplified or Traditional by script, which the tag says in several ways:
// these mean Simplified; zh-TW, zh-HK and zh-Hant mean Traditional, which we lack.
const ALIASES = Object.freeze({ 'zh': 'zh-cn', 'zh-hans': 'zh-cn', 'zh-sg': 'zh-cn', 'zh-hans-cn': 'zh-cn' });

/**
  * The catalogue for the first of `wanted` (navigator.languages, most preferred first)
  * that we have: the exact tag, then its alias, then its language without the region
  * (de-AT -> de). An English entry before any match means English. Else FALLBACK.
  */
export function pickLanguage(wanted, available = LANGUAGES) {
    const byLower = new Map(available.map((tag) => [tag.toLowerCase(), tag]));
    for (const raw of wanted || []) {
        const tag = String(raw).trim().replace(/_/g, '-').toLowerCase();
        if (!tag) continue;
        const primary = tag.split('-')[0];
        if (primary === 'en') return FALLBACK;
        const found = byLower.get(tag) ?? byLower.get(ALIASES[tag]) ??
            (primary === 'zh' ? undefined : byLower.get(primary));
        if (found) return found;
    }
    return FALLBACK;
}

/** Fill {name} slots from vars; a slot with no value stays as written. */
export function format(text, vars = {}) {
    return String(text).replace(/\{(\w+)\}/g, (slot, name) => (name in vars ? String(vars[name]) : slot));
}

let catalogue = {};
let language = FALLBACK;

/** The English `key` in the chosen language, with {name} slots filled from vars. */
export function t(key, vars) {
    const text = Object.prototype.hasOwnProperty.call(catalogue, key) ? catalogue[key] : key;
    return vars ? format(text, vars) : text;
}

export function currentLanguage() {
    return language;
}

/**
  * Choose the language and load its catalogue from `baseUrl` (ending in '/'). A
  * catalogue that fails to load leaves English; returns the problem, or ''.
  */
export async function setup(wanted, fetchFn, baseUrl) {
    language = pickLanguage(wanted);
    catalogue = {};
    if (language === FALLBACK) return '';
    try {
        const res = await fetchFn(`${baseUrl}${language}.json`);
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        catalogue = await res.json();
        return '';
    } catch (err) {
        const problem = `${language}.json: ${err.message}`;
        language = FALLBACK;
        return problem;
    }
}

/** Translate every marked element of `doc` and set <html lang>. */
export function translateDom(doc) {
    doc.documentElement.lang = language;
    for (const el of doc.querySelectorAll('[data-i18n]')) {
        if (!el.dataset.i18n) el.dataset.i18n = el.textContent.trim().replace(/\s+/g, ' ');
        el.textContent = t(el.dataset.i18n);
    }
    for (const el of doc.querySelectorAll('[data-i18n-attrs]')) {
        for (const attr of el.dataset.i18nAttrs.split(/\s+/).filter(Boolean)) {
            const key = `i18n${attr.replace(/(^|-)(\w)/g, (_, __, c) => c.toUpperCase())}`;
            if (!el.dataset[key]) el.dataset[key] = el.getAttribute(attr) || '';
            if (el.dataset[key]) el.setAttribute(attr, t(el.dataset[key]));
        }
    }
}
