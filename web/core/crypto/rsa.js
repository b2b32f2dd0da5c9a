// web/core/crypto/rsa.js — RSA with EME-PKCS1-v1_5 padding (RFC 8017 §7.2), the
// key exchange of the RSA-AES security types: a key pair for the client, and
// encrypt/decrypt of the 16-byte randoms.
// Needs: ./bigint.js.

import { bytesToBigInt, bigIntToBytes, bitLength, modPow, modInverse, randomBytes, randomPrime } from './bigint.js';

const PUBLIC_EXPONENT = 65537n;
const MIN_PADDING = 8;   // RFC 8017: at least 8 random non-zero bytes

export class RSAKey {
    // n, e (and d for a private key) as BigInt.
    constructor(n, e, d = null) {
        this.n = n;
        this.e = e;
        this.d = d;
        this.bytes = Math.ceil(bitLength(n) / 8);
    }

    get bits() {
        return bitLength(this.n);
    }

    // 2048 bits: what RSA-AES servers accept (TigerVNC takes 1024..8192) and
    // generated in about a second of BigInt work.
    static generate(bits = 2048) {
        for (;;) {
            const p = randomPrime(bits / 2), q = randomPrime(bits / 2);
            const phi = (p - 1n) * (q - 1n);
            if (p === q || phi % PUBLIC_EXPONENT === 0n) continue;
            return new RSAKey(p * q, PUBLIC_EXPONENT, modInverse(PUBLIC_EXPONENT, phi));
        }
    }

    encrypt(message) {
        const k = this.bytes;
        if (message.length > k - 3 - MIN_PADDING) throw new RangeError('message too long for the key');
        const em = new Uint8Array(k);
        em[1] = 2;
        const ps = k - 3 - message.length;
        for (let i = 0; i < ps; i++) {
            let b = 0;
            while (!b) b = randomBytes(1)[0];
            em[2 + i] = b;
        }
        em.set(message, 3 + ps);
        return bigIntToBytes(modPow(bytesToBigInt(em), this.e, this.n), k);
    }

    // -> the message, or null when the padding is wrong (wrong key, tampered).
    decrypt(cipher) {
        if (!this.d || cipher.length !== this.bytes) return null;
        const c = bytesToBigInt(cipher);
        if (c >= this.n) return null;
        const em = bigIntToBytes(modPow(c, this.d, this.n), this.bytes);
        if (em[0] !== 0 || em[1] !== 2) return null;
        const zero = em.indexOf(0, 2);
        if (zero < 2 + MIN_PADDING) return null;
        return em.slice(zero + 1);
    }
}
