// Tests for issue 15's page settings: where each setting comes from (web/ui/settings.js),
// the language chosen (web/ui/l10n.js), and the XVP power and UltraVNC repeater bytes
// rfb.js sends (web/core/rfb.js, messages.js). Needs: Node's test runner only.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { resolveSettings, loadSaved, saveSetting, fetchJsonSettings, STORAGE_KEY } from '../../web/ui/settings.js';
import { pickLanguage, format, setup, t, currentLanguage } from '../../web/ui/l10n.js';
import { RFB } from '../../web/core/rfb.js';
import { Display } from '../../web/core/display.js';
import { xvp, repeaterId } from '../../web/core/messages.js';

// ---------------------------------------------------------------- settings precedence

class MemoryStorage {
    constructor() { this.map = new Map(); }
    getItem(k) { return this.map.has(k) ? this.map.get(k) : null; }
    setItem(k, v) { this.map.set(k, String(v)); }
}

test('precedence: defaults < defaults.json < saved < URL query < fragment < mandatory.json', () => {
    const all = {
        defaults: { quality: 1, compression: 1, view_only: true, shared: false, bell: 'off' },
        saved: { quality: 2, compression: 2, view_only: false },
        search: '?quality=3&compression=3',
        hash: '#quality=4',
        mandatory: { compression: 9 },
    };
    const { config, locked, warnings } = resolveSettings(all);
    assert.deepEqual(warnings, []);
    assert.equal(config.quality, 4);          // fragment over query over saved over defaults.json
    assert.equal(config.compression, 9);      // mandatory over everything
    assert.equal(config.viewOnly, false);     // saved over defaults.json
    assert.equal(config.shared, false);       // defaults.json over built-in
    assert.equal(config.bell, false);         // noVNC writes bell as on/off
    assert.equal(config.resize, 'off');       // built-in default
    assert.deepEqual([...locked], ['compression']);
});

test('saved settings round-trip through storage; the password is never saved', () => {
    const storage = new MemoryStorage();
    assert.deepEqual(loadSaved(storage), {});
    assert.equal(saveSetting(storage, 'quality', 8), true);
    assert.equal(saveSetting(storage, 'viewOnly', true), true);   // config key or URL name
    assert.equal(saveSetting(storage, 'password', 'secret'), false);
    assert.deepEqual(JSON.parse(storage.getItem(STORAGE_KEY)), { quality: 8, view_only: true });
    const { config } = resolveSettings({ saved: loadSaved(storage) });
    assert.equal(config.quality, 8);
    assert.equal(config.viewOnly, true);
    assert.equal(config.password, '');
});

test('bad saved entries and unknown names are warnings, never errors', () => {
    const storage = new MemoryStorage();
    storage.setItem(STORAGE_KEY, '{not json');
    assert.deepEqual(loadSaved(storage), {});
    const { config, warnings } = resolveSettings({
        saved: { password: 'x', quality: 'high' }, mandatory: { nonsense: 1 }, defaults: [1, 2],
    });
    assert.equal(config.password, '');
    assert.equal(config.quality, 6);
    assert.deepEqual(warnings, [
        'saved settings: ignoring unknown setting "password"',
        'saved settings: ignoring quality="high"',
        'mandatory.json: ignoring unknown setting "nonsense"',
    ]);
});

test('defaults.json/mandatory.json: a 404 is quietly {}, a broken file says why', async () => {
    const reply = (status, body) => async () => ({
        status, ok: status >= 200 && status < 300, json: async () => JSON.parse(body),
    });
    assert.deepEqual(await fetchJsonSettings(reply(404, ''), 'mandatory.json'), { settings: {}, problem: '' });
    assert.deepEqual(await fetchJsonSettings(reply(200, '{"view_only": true}'), 'mandatory.json'),
        { settings: { view_only: true }, problem: '' });
    assert.equal((await fetchJsonSettings(reply(200, '[1]'), 'defaults.json')).problem, 'defaults.json: not a JSON object');
    assert.match((await fetchJsonSettings(reply(200, '{'), 'defaults.json')).problem, /^defaults\.json: /);
    assert.equal((await fetchJsonSettings(reply(500, ''), 'defaults.json')).problem, 'defaults.json: HTTP 500');
});

// ---------------------------------------------------------------- language

test('pickLanguage: first match of navigator.languages, region dropped, English ends the search', () => {
    assert.equal(pickLanguage(['de-DE', 'en-US']), 'de');
    assert.equal(pickLanguage(['de_AT']), 'de');
    assert.equal(pickLanguage(['it', 'fr-CA', 'de']), 'fr');
    assert.equal(pickLanguage(['en-GB', 'de']), 'en');
    assert.equal(pickLanguage(['ja-JP']), 'ja');
    assert.equal(pickLanguage(['es-419']), 'es');
    assert.equal(pickLanguage(['zh-CN']), 'zh-CN');
    assert.equal(pickLanguage(['zh']), 'zh-CN');
    assert.equal(pickLanguage(['zh-Hans']), 'zh-CN');
    assert.equal(pickLanguage(['zh-TW', 'ja']), 'ja');   // Traditional readers do not get Simplified
    assert.equal(pickLanguage(['ko', 'it']), 'en');
    assert.equal(pickLanguage([]), 'en');
    assert.equal(pickLanguage(undefined), 'en');
});

test('t() uses the loaded catalogue and fills {slots}; a missing catalogue leaves English', async () => {
    const files = { '/locale/de.json': { 'Connected to {name}': 'Verbunden mit {name}' } };
    const fetchFn = async (url) => (files[url]
        ? { ok: true, status: 200, json: async () => files[url] }
        : { ok: false, status: 404 });
    assert.equal(await setup(['de'], fetchFn, '/locale/'), '');
    assert.equal(currentLanguage(), 'de');
    assert.equal(t('Connected to {name}', { name: '<b>x</b>' }), 'Verbunden mit <b>x</b>');
    assert.equal(t('Not in the catalogue'), 'Not in the catalogue');
    assert.equal(await setup(['fr'], fetchFn, '/locale/'), 'fr.json: HTTP 404');
    assert.equal(currentLanguage(), 'en');
    assert.equal(t('Connected to {name}', { name: 'x' }), 'Connected to x');
    assert.equal(format('{a} {b} {a}', { a: 1 }), '1 {b} 1');
});

// ---------------------------------------------------------------- XVP and repeater

const ascii = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));

function serverInit(width, height) {
    return Uint8Array.of(width >> 8, width & 255, height >> 8, height & 255,
        32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0x78);
}

// An RFB object, and everything it sent, connected through 3.8 / security None.
function connected(options = {}) {
    const sent = [], events = [];
    const rfb = new RFB({
        display: new Display(), send: (b) => sent.push(Uint8Array.from(b)), onEvent: (e) => events.push(e), options,
    });
    rfb.receive(ascii('RFB 003.008\n'));
    rfb.receive(Uint8Array.of(1, 1));
    rfb.receive(Uint8Array.of(0, 0, 0, 0));
    rfb.receive(serverInit(4, 4));
    assert.equal(rfb.state, 'connected');
    return { rfb, sent, events };
}

function s32s(msg) {
    const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
    return Array.from({ length: view.getUint16(2) }, (_, i) => view.getInt32(4 + 4 * i));
}

test('XVP: -309 advertised; XVP_INIT offers power; reboot/shutdown/reset are type 250 v1 codes 3/2/4', () => {
    const { rfb, sent, events } = connected();
    const setEncodings = sent.find((m) => m[0] === 2);
    assert.ok(s32s(setEncodings).includes(-309), 'XVP pseudo-encoding asked for');
    assert.equal(rfb.powerAction('reboot'), false, 'no power actions before XVP_INIT');
    const before = sent.length;
    rfb.receive(Uint8Array.of(250, 0, 1, 1));                     // XVP_INIT, version 1
    assert.deepEqual(events.filter((e) => e.type === 'power'), [{ type: 'power', available: true }]);
    assert.equal(rfb.powerAction('reboot'), true);
    assert.equal(rfb.powerAction('shutdown'), true);
    assert.equal(rfb.powerAction('reset'), true);
    assert.equal(rfb.powerAction('format-disk'), false);
    assert.deepEqual(sent.slice(before).map((m) => Array.from(m)), [[250, 0, 1, 3], [250, 0, 1, 2], [250, 0, 1, 4]]);
    rfb.receive(Uint8Array.of(250, 0, 1, 0));                     // XVP_FAIL
    assert.equal(events.at(-1).type, 'power-failed');
    assert.equal(rfb.state, 'connected');
    rfb.receive(Uint8Array.of(250, 0, 1, 9));
    assert.equal(rfb.state, 'failed');
    assert.deepEqual(Array.from(xvp(1, 3)), [250, 0, 1, 3]);
});

test('XVP: a view-only session sends no power action; a split message still parses', () => {
    const { rfb, sent } = connected({ viewOnly: true });
    rfb.receive(Uint8Array.of(250, 0));
    rfb.receive(Uint8Array.of(1, 1));
    const before = sent.length;
    assert.equal(rfb.powerAction('reboot'), false);
    assert.equal(sent.length, before);
});

test('UltraVNC repeater: "RFB 000.000" gets a 250-byte ID:<id>, then the server handshake goes on', () => {
    const sent = [];
    const rfb = new RFB({ display: new Display(), send: (b) => sent.push(Uint8Array.from(b)), options: { repeaterID: '1234' } });
    rfb.receive(ascii('RFB 000.000\n'));
    assert.equal(sent.length, 1);
    assert.equal(sent[0].length, 250);
    assert.deepEqual(Array.from(sent[0].subarray(0, 7)), Array.from(ascii('ID:1234')));
    assert.ok(sent[0].subarray(7).every((b) => b === 0));
    assert.deepEqual(sent[0], repeaterId('1234'));
    rfb.receive(ascii('RFB 003.008\n'));
    assert.deepEqual(Array.from(sent[1]), Array.from(ascii('RFB 003.008\n')));
    assert.equal(rfb.state, 'security');
});

test('UltraVNC repeater without repeaterID fails with what to set', () => {
    const events = [];
    const rfb = new RFB({ display: new Display(), send: () => {}, onEvent: (e) => events.push(e) });
    rfb.receive(ascii('RFB 000.000\n'));
    assert.equal(rfb.state, 'failed');
    assert.match(events.at(-1).detail, /UltraVNC repeater: set repeaterID/);
});
