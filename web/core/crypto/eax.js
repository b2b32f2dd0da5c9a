// web/core/crypto/eax.js — AES-EAX authenticated encryption (Bellare, Rogaway,
// Wagner, "The EAX Mode of Operation"), as the RSA-AES security types use it:
// a 16-byte MAC over nonce, header (the 2-byte length) and ciphertext.
// Needs: ./aes.js.

import { AES, aesCtr, aesCmac, concatBytes } from './aes.js';

// OMAC^t: CMAC of the data after a block holding t in its last byte.
function omac(aes, t, data) {
    const tweak = new Uint8Array(16);
    tweak[15] = t;
    return aesCmac(aes, data, tweak);
}

export class EAX {
    constructor(key) {
        this._aes = new AES(key);
    }

    // -> ciphertext followed by its 16-byte tag.
    encrypt(nonce, header, plaintext) {
        const n = omac(this._aes, 0, nonce), h = omac(this._aes, 1, header);
        const c = aesCtr(this._aes, n, plaintext);
        const tag = omac(this._aes, 2, c);
        for (let i = 0; i < 16; i++) tag[i] ^= n[i] ^ h[i];
        return concatBytes(c, tag);
    }

    // -> plaintext, or null when the tag does not match (tampered or wrong key).
    decrypt(nonce, header, ciphertext, tag) {
        const n = omac(this._aes, 0, nonce), h = omac(this._aes, 1, header);
        const expect = omac(this._aes, 2, ciphertext);
        let diff = 0;
        for (let i = 0; i < 16; i++) diff |= (expect[i] ^ n[i] ^ h[i]) ^ tag[i];
        if (diff) return null;
        return aesCtr(this._aes, n, ciphertext);
    }
}
