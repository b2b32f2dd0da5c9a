// The crypto under the security types (web/core/crypto/*), against the published vectors:
// FIPS 197 (AES), RFC 1321 (MD5), FIPS 180 (SHA-1), SP 800-38B (CMAC), the EAX paper.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { AES, aesEcbEncrypt, aesCmac } from '../../web/core/crypto/aes.js';
import { EAX } from '../../web/core/crypto/eax.js';
import { md5, sha1 } from '../../web/core/crypto/hash.js';
import { RSAKey } from '../../web/core/crypto/rsa.js';
import { modPow, isProbablePrime } from '../../web/core/crypto/bigint.js';

const hex = (u) => Buffer.from(u).toString('hex');
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
const text = (s) => new TextEncoder().encode(s);

test('AES-128 and AES-256 FIPS 197 appendix C', () => {
    const pt = unhex('00112233445566778899aabbccddeeff');
    assert.equal(hex(new AES(unhex('000102030405060708090a0b0c0d0e0f')).encryptBlock(pt)), '69c4e0d86a7b0430d8cdb78070b4c55a');
    const k256 = unhex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    assert.equal(hex(new AES(k256).encryptBlock(pt)), '8ea2b7ca516745bfeafc49904b496089');
});

test('AES ECB is block by block (SP 800-38A F.1.1)', () => {
    const key = unhex('2b7e151628aed2a6abf7158809cf4f3c');
    const pt = unhex('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51');
    assert.equal(hex(aesEcbEncrypt(key, pt)), '3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf');
});

test('AES-CMAC SP 800-38B examples', () => {
    const aes = new AES(unhex('2b7e151628aed2a6abf7158809cf4f3c'));
    assert.equal(hex(aesCmac(aes, new Uint8Array(0))), 'bb1d6929e95937287fa37d129b756746');
    assert.equal(hex(aesCmac(aes, unhex('6bc1bee22e409f96e93d7e117393172a'))), '070a16b46b4d4144f79bdd9dd04a287c');
});

test('EAX vectors from the EAX paper, and a tampered tag is refused', () => {
    const e = new EAX(unhex('233952DEE4D5ED5F9B9C6D6FF80FF478'));
    assert.equal(hex(e.encrypt(unhex('62EC67F9C3A4A407FCB2A8C49031A8B3'), unhex('6BFB914FD07EAE6B'), new Uint8Array(0))),
        'e037830e8389f27b025a2d6527e79d01');
    const e2 = new EAX(unhex('91945D3F4DCBEE0BF45EF52255F095A4'));
    const nonce = unhex('BECAF043B0A23D843194BA972C66DEBD'), header = unhex('FA3BFD4806EB53FA');
    const sealed = e2.encrypt(nonce, header, unhex('F7FB'));
    assert.equal(hex(sealed), '19dd5c4c9331049d0bdab0277408f67967e5');
    assert.equal(hex(e2.decrypt(nonce, header, sealed.subarray(0, 2), sealed.subarray(2))), 'f7fb');
    sealed[5] ^= 1;
    assert.equal(e2.decrypt(nonce, header, sealed.subarray(0, 2), sealed.subarray(2)), null);
});

test('MD5 RFC 1321 and SHA-1 FIPS 180 vectors', () => {
    assert.equal(hex(md5(new Uint8Array(0))), 'd41d8cd98f00b204e9800998ecf8427e');
    assert.equal(hex(md5(text('abc'))), '900150983cd24fb0d6963f7d28e17f72');
    assert.equal(hex(md5(text('12345678901234567890123456789012345678901234567890123456789012345678901234567890'))),
        '57edf4a22be3c955ac49da2e2107b67a');
    assert.equal(hex(sha1(text('abc'))), 'a9993e364706816aba3e25717850c26c9cd0d89d');
    assert.equal(hex(sha1(text('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))),
        '84983e441c3bd26ebaae4aa1f95129e5e54670f1');
});

test('RSA: a generated 1024-bit key round-trips PKCS#1 v1.5 and refuses a foreign cipher', () => {
    const key = RSAKey.generate(1024);
    assert.equal(key.bits, 1024);
    const msg = unhex('000102030405060708090a0b0c0d0e0f');
    const c = key.encrypt(msg);
    assert.equal(c.length, 128);
    assert.deepEqual(key.decrypt(c), msg);
    assert.equal(key.decrypt(new Uint8Array(128).fill(1)), null);
});

test('BigInt helpers: modPow and primality', () => {
    assert.equal(modPow(4n, 13n, 497n), 445n);
    assert.ok(isProbablePrime((1n << 127n) - 1n));
    assert.ok(!isProbablePrime((1n << 128n) + 1n));
});
