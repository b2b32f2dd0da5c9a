// The translation catalogues (web/locale/*.json) against the page's words: every
// string vnc.html marks (data-i18n text, data-i18n-attrs attributes) and every
// t('...') key in web/app.js and web/ui/*.js is in every catalogue with the same
// {slots}; no catalogue holds a key nobody uses; and no visible text or titled
// attribute in vnc.html escapes the marking. Needs: Node's test runner and fs only.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { LANGUAGES } from '../../web/ui/l10n.js';

const WEB = path.join(import.meta.dirname, '..', '..', 'web');
const read = (rel) => fs.readFileSync(path.join(WEB, rel), 'utf8');
const squash = (text) => text.trim().replace(/\s+/g, ' ');

// Attributes a person reads or hears (screen readers) and so must be translated.
const WORDY_ATTRS = ['title', 'aria-label', 'placeholder', 'alt'];
// Elements whose text is not the page's words for a person: code, or text shown
// only with JavaScript off (which then cannot translate it).
const SKIP_ELEMENTS = new Set(['script', 'style', 'noscript']);

function attrsOf(text) {
    const out = {};
    for (const m of text.matchAll(/([\w-]+)(?:\s*=\s*"([^"]*)")?/g)) out[m[1].toLowerCase()] = m[2] ?? '';
    return out;
}

// { keys: Set, problems: [] } from vnc.html: a small tokenizer, enough for our own page.
function scanHtml(html) {
    const keys = new Set(), problems = [];
    const body = html.replace(/<!--[\s\S]*?-->/g, '').replace(/<!DOCTYPE[^>]*>/i, '');
    let open = null;        // the last opening tag: { name, attrs }
    let skipping = null;
    for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w-]*)([^>]*)>|([^<]+)/g)) {
        const [, closing, tag, attrText, text] = m;
        if (tag) {
            const name = tag.toLowerCase();
            if (closing) {
                if (name === skipping) skipping = null;
                open = null;
                continue;
            }
            if (SKIP_ELEMENTS.has(name)) skipping = name;
            const attrs = attrsOf(attrText);
            open = { name, attrs };
            const listed = (attrs['data-i18n-attrs'] ?? '').split(/\s+/).filter(Boolean);
            for (const a of listed) {
                if (!attrs[a]) problems.push(`<${name}> lists ${a} in data-i18n-attrs but has none`);
                else keys.add(attrs[a]);
            }
            for (const a of WORDY_ATTRS) {
                if (attrs[a] && !listed.includes(a)) problems.push(`<${name} ${a}="${attrs[a]}"> is not marked data-i18n-attrs`);
            }
            continue;
        }
        const words = squash(text);
        if (!words || skipping || /^[\s\d\W]*$/u.test(words) && !/[\p{L}]/u.test(words)) continue;
        if (!open || !('data-i18n' in open.attrs)) {
            problems.push(`text "${words}" is not directly inside an element marked data-i18n`);
        } else {
            keys.add(open.attrs['data-i18n'] || words);
        }
    }
    return { keys, problems };
}

// t('...') keys in the page's scripts (single-quoted literals, as the code writes them).
function scanScripts() {
    const keys = new Set(), problems = [];
    const files = ['app.js', ...fs.readdirSync(path.join(WEB, 'ui')).map((f) => `ui/${f}`)];
    // l10n.js defines t() and hands it keys from the page; it has no words of its own.
    for (const file of files.filter((f) => f.endsWith('.js') && f !== 'ui/l10n.js')) {
        const code = read(file);
        for (const m of code.matchAll(/\bt\(\s*'((?:[^'\\]|\\.)*)'/g)) keys.add(m[1].replace(/\\(.)/g, '$1'));
        for (const m of code.matchAll(/\bt\(\s*[^'\s)]/g)) {
            problems.push(`${file}: t() called with something other than a literal: ${m[0]}`);
        }
        // Words put on the page without t(): status lines, titles, text.
        const bare = /(setStatus\(|textContent\s*=|\.title\s*=|\b(?:title|hint|error):)\s*[`'"][A-Za-z]/g;
        for (const m of code.matchAll(bare)) problems.push(`${file}: untranslated words: ${m[0]}`);
    }
    return { keys, problems };
}

const slots = (text) => [...String(text).matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

const html = scanHtml(read('vnc.html'));
const scripts = scanScripts();
const allKeys = new Set([...html.keys, ...scripts.keys]);

test('vnc.html: every visible text and wordy attribute is marked for translation', () => {
    assert.deepEqual(html.problems, []);
    assert.ok(html.keys.has('Connect') && html.keys.has('Settings') && html.keys.has('Send Tab'), [...html.keys]);
});

test('scripts: page words go through t() with literal keys', () => {
    assert.deepEqual(scripts.problems, []);
    assert.ok(scripts.keys.has('Connected to {name}'), [...scripts.keys]);
});

for (const lang of LANGUAGES) {
    test(`locale/${lang}.json has every key, the same {slots}, and nothing stale`, () => {
        const catalogue = JSON.parse(read(`locale/${lang}.json`));
        const missing = [...allKeys].filter((k) => typeof catalogue[k] !== 'string' || !catalogue[k].trim());
        assert.deepEqual(missing, [], `${lang}: missing translations`);
        const stale = Object.keys(catalogue).filter((k) => !allKeys.has(k));
        assert.deepEqual(stale, [], `${lang}: keys no page string uses`);
        const badSlots = [...allKeys].filter((k) => JSON.stringify(slots(k)) !== JSON.stringify(slots(catalogue[k])));
        assert.deepEqual(badSlots, [], `${lang}: {slots} differ`);
    });
}

test('the tokenizer catches an unmarked string and an unmarked title', () => {
    const { problems } = scanHtml('<p>Hello</p><button title="Hi" data-i18n>OK</button><span data-i18n>Yes</span>');
    assert.deepEqual(problems, [
        'text "Hello" is not directly inside an element marked data-i18n',
        '<button title="Hi"> is not marked data-i18n-attrs',
    ]);
});

// For whoever adds a string: `node tests/js/l10n.test.mjs --keys` prints them all.
if (process.argv.includes('--keys')) console.log(JSON.stringify([...allKeys].sort(), null, 1));
