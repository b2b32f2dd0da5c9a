// Tests for web/core/des.js: published DES known answers, VNC Authentication vectors from
// independent sources, and a cross-check against the DES in Node's own crypto (OpenSSL).
// Run: node --test tests/js/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';

import { desEncryptBlock, vncAuthResponse, vncKey } from '../../web/core/des.js';

const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (u8) => Buffer.from(u8).toString('hex').toUpperCase();
const ascii = (s) => new TextEncoder().encode(s);

function reverseByte(b) {
    let r = 0;
    for (let i = 0; i < 8; i++) r |= ((b >> i) & 1) << (7 - i);
    return r;
}

// The fixed key vncpasswd uses to obfuscate stored passwords (VNC-style, i.e. bit-reversed on use).
const VNCPASSWD_KEY = [23, 82, 107, 6, 35, 78, 88, 7];

test('FIPS 46 worked example (key 133457799BBCDFF1)', () => {
    assert.equal(toHex(desEncryptBlock(hex('133457799BBCDFF1'), hex('0123456789ABCDEF'))), '85E813540F0AB405');
});

// NBS SP 500-20 / NIST SP 800-20 Table A.1, variable plaintext known-answer test: key 0101..01
// (all key bits zero apart from parity), plaintext = a single 1 bit walking through the block.
const VARIABLE_PLAINTEXT = [
    '95F8A5E5DD31D900', 'DD7F121CA5015619', '2E8653104F3834EA', '4BD388FF6CD81D4F',
    '20B9E767B2FB1456', '55579380D77138EF', '6CC5DEFAAF04512F', '0D9F279BA5D87260',
    'D9031B0271BD5A0A', '424250B37C3DD951', 'B8061B7ECD9A21E5', 'F15D0F286B65BD28',
    'ADD0CC8D6E5DEBA1', 'E6D5F82752AD63D1', 'ECBFE3BD3F591A5E', 'F356834379D165CD',
    '2B9F982F20037FA9', '889DE068A16F0BE6', 'E19E275D846A1298', '329A8ED523D71AEC',
    'E7FCE22557D23C97', '12A9F5817FF2D65D', 'A484C3AD38DC9C19', 'FBE00A8A1EF8AD72',
    '750D079407521363', '64FEED9C724C2FAF', 'F02B263B328E2B60', '9D64555A9A10B852',
    'D106FF0BED5255D7', 'E1652C6B138C64A5', 'E428581186EC8F46', 'AEB5F5EDE22D1A36',
    'E943D7568AEC0C5C', 'DF98C8276F54B04B', 'B160E4680F6C696F', 'FA0752B07D9C4AB8',
    'CA3A2B036DBC8502', '5E0905517BB59BCF', '814EEB3B91D90726', '4D49DB1532919C9F',
    '25EB5FC3F8CF0621', 'AB6A20C0620D1C6F', '79E90DBC98F92CCA', '866ECEDD8072BB0E',
    '8B54536F2F3E64A8', 'EA51D3975595B86B', 'CAFFC6AC4542DE31', '8DD45A2DDF90796C',
    '1029D55E880EC2D0', '5D86CB23639DBEA9', '1D1CA853AE7C0C5F', 'CE332329248F3228',
    '8405D1ABE24FB942', 'E643D78090CA4207', '48221B9937748A23', 'DD7C0BBD61FAFD54',
    '2FBC291A570DB5C4', 'E07C30D7E4E26E12', '0953E2258E8E90A1', '5B711BC4CEEBF2EE',
    'CC083F1E6D9E85F6', 'D2FD8867D50D2DFE', '06E7EA22CE92708F', '166B40B44ABA4BD6',
];

test('NBS variable-plaintext known answers (all 64 bit positions)', () => {
    const key = hex('0101010101010101');
    VARIABLE_PLAINTEXT.forEach((expected, bit) => {
        const block = new Uint8Array(8);
        block[bit >> 3] = 0x80 >> (bit & 7);
        assert.equal(toHex(desEncryptBlock(key, block)), expected, `plaintext bit ${bit + 1}`);
    });
});

test('NBS variable-key known answers and parity bits ignored', () => {
    const zero = new Uint8Array(8);
    assert.equal(toHex(desEncryptBlock(hex('8001010101010101'), zero)), '95A8D72813DAA94D');
    assert.equal(toHex(desEncryptBlock(hex('4001010101010101'), zero)), '0EEC1487DD8C26D5');
    // Bit 8 of every key byte is parity: flipping them all must not change anything.
    const k = hex('133457799BBCDFF1').map((b) => b ^ 1);
    assert.equal(toHex(desEncryptBlock(k, hex('0123456789ABCDEF'))), '85E813540F0AB405');
});

test('standard DES of "SomeData" under the vncpasswd key bytes (pyDes, twhiteman/pyDes#2)', () => {
    assert.equal(toHex(desEncryptBlock(Uint8Array.from(VNCPASSWD_KEY), ascii('SomeData'))), 'CD3265AA048D5688');
});

test('matches OpenSSL DES (node:crypto des-ede-ecb with K1 = K2) on random blocks', (t) => {
    if (!crypto.getCiphers().includes('des-ede-ecb')) {
        t.skip('des-ede-ecb not available in this OpenSSL');
        return;
    }
    for (let i = 0; i < 200; i++) {
        const key = crypto.randomBytes(8);
        const block = crypto.randomBytes(8);
        // Two-key EDE with equal keys is E(D(E(x))) = E(x): plain single DES.
        const c = crypto.createCipheriv('des-ede-ecb', Buffer.concat([key, key]), null).setAutoPadding(false);
        const expected = Buffer.concat([c.update(block), c.final()]);
        assert.equal(toHex(desEncryptBlock(new Uint8Array(key), new Uint8Array(block))), toHex(expected),
            `key ${key.toString('hex')} block ${block.toString('hex')}`);
    }
});

// --- VNC Authentication ---

test('VNC response from a published capture (rapid7/metasploit-framework#16341)', () => {
    // vnc_login sent password "password" to a capture server with a fixed challenge.
    const response = vncAuthResponse('password', hex('00112233445566778899aabbccddeeff'));
    assert.equal(toHex(response), 'B7B9C87777661A7A2299733209BFDFCE');
});

test('VNC-style DES matches vncpasswd obfuscation (same key handling as VNC auth)', () => {
    // vncpasswd stores DES(password block) under the fixed key with VNC's bit-reversed key bytes,
    // so it checks the reversal independently of our own code. Published values:
    // "password" -> DBD83CFD727A1458 (widely cited), "SomeData" -> 960DE668B0D9DD3C (pyDes#2).
    const key = Uint8Array.from(VNCPASSWD_KEY.map(reverseByte));
    assert.equal(toHex(desEncryptBlock(key, ascii('password'))), 'DBD83CFD727A1458');
    assert.equal(toHex(desEncryptBlock(key, ascii('SomeData'))), '960DE668B0D9DD3C');
});

test('VNC-style DES matches the local vncpasswd binary, when installed', (t) => {
    let available = true;
    try {
        execFileSync('sh', ['-c', 'command -v vncpasswd'], { stdio: 'ignore' });
    } catch {
        available = false;
    }
    if (!available) {
        t.skip('vncpasswd not installed');
        return;
    }
    const key = Uint8Array.from(VNCPASSWD_KEY.map(reverseByte));
    for (const pw of ['password', 'secret12', 'Xy9#kQ', 'abcdefgh']) {
        const stored = new Uint8Array(execFileSync('vncpasswd', ['-f'], { input: `${pw}\n` }));
        const block = new Uint8Array(8);
        block.set(ascii(pw).subarray(0, 8));
        assert.equal(toHex(desEncryptBlock(key, block)), toHex(stored.subarray(0, 8)), pw);
    }
});

test('vncAuthResponse = two ECB blocks under the bit-reversed, zero-padded key', () => {
    const challenge = Uint8Array.from({ length: 16 }, (_, i) => (i * 37 + 11) & 255);
    for (const pw of ['', 'a', 'pass', 'password']) {
        const key = new Uint8Array(8);
        ascii(pw).forEach((b, i) => { key[i] = reverseByte(b); });
        assert.deepEqual(vncKey(pw), key, `key for "${pw}"`);
        const expected = new Uint8Array(16);
        expected.set(desEncryptBlock(key, challenge.subarray(0, 8)), 0);
        expected.set(desEncryptBlock(key, challenge.subarray(8)), 8);
        assert.deepEqual(vncAuthResponse(pw, challenge), expected, `response for "${pw}"`);
    }
    // Worked case: 'p' = 0x70 = 01110000 reversed is 00001110 = 0x0E.
    assert.equal(vncKey('p')[0], 0x0e);
});

test('VNC passwords: truncated to 8 bytes, identical blocks encrypt identically (ECB)', () => {
    const challenge = hex('0102030405060708' + '0102030405060708');
    const r = vncAuthResponse('password-and-more', challenge);
    assert.deepEqual(r, vncAuthResponse('password', challenge));
    assert.deepEqual(r.subarray(0, 8), r.subarray(8), 'no chaining between the two blocks');
    assert.notDeepEqual(vncAuthResponse('passwor', challenge), r);
    // Bytes are accepted as well as strings.
    assert.deepEqual(vncAuthResponse(ascii('password'), challenge), r);
});

test('bad arguments throw TypeError', () => {
    assert.throws(() => vncAuthResponse('pw', new Uint8Array(15)), TypeError);
    assert.throws(() => vncAuthResponse(42, new Uint8Array(16)), TypeError);
    assert.throws(() => desEncryptBlock(new Uint8Array(7), new Uint8Array(8)), TypeError);
    assert.throws(() => desEncryptBlock(new Uint8Array(8), [1, 2, 3, 4, 5, 6, 7, 8]), TypeError);
});
