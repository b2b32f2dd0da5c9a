// web/core/crypto/aes.js — the AES block cipher (FIPS 197), encryption only,
// and the modes the VNC security types build on it: ECB (Apple's
// Diffie-Hellman, type 30), CTR and CMAC, and from those two EAX (RSA-AES).
//
// Needs: nothing. Why not WebCrypto: crypto.subtle exists only in secure
// contexts (https or localhost), has no ECB and no EAX, and is asynchronous,
// while a page served over plain http on a LAN must still log in; the few
// blocks a login encrypts cost nothing in plain JavaScript.

// ---- tables ---------------------------------------------------------------------

const SBOX = new Uint8Array(256);
(function buildSbox() {
    // Multiplicative inverse in GF(2^8) then the affine map, via log/antilog tables of generator 3.
    const exp = new Uint8Array(256), log = new Uint8Array(256);
    let v = 1;
    for (let i = 0; i < 255; i++) {
        exp[i] = v;
        log[v] = i;
        v ^= (v << 1) ^ ((v & 0x80) ? 0x11b : 0);   // v * 3
        v &= 0xff;
    }
    for (let i = 0; i < 256; i++) {
        const inv = i === 0 ? 0 : exp[(255 - log[i]) % 255];
        let s = inv;
        for (let r = 1; r <= 4; r++) s ^= ((inv << r) | (inv >> (8 - r))) & 0xff;
        SBOX[i] = s ^ 0x63;
    }
}());

function xtime(b) {
    return ((b << 1) ^ ((b & 0x80) ? 0x1b : 0)) & 0xff;
}

// ---- the block cipher ---------------------------------------------------------------

export class AES {
    // key: 16, 24 or 32 bytes.
    constructor(key) {
        if (!(key instanceof Uint8Array) || ![16, 24, 32].includes(key.length)) {
            throw new TypeError('AES key must be 16, 24 or 32 bytes');
        }
        this._rounds = key.length / 4 + 6;
        this._w = expandKey(key, this._rounds);
    }

    // Encrypts one 16-byte block (block[offset..offset+16)) into a new array.
    encryptBlock(block, offset = 0) {
        const s = block.slice(offset, offset + 16);
        const w = this._w;
        for (let i = 0; i < 16; i++) s[i] ^= w[i];
        for (let round = 1; round <= this._rounds; round++) {
            subShift(s);
            if (round !== this._rounds) mixColumns(s);
            for (let i = 0; i < 16; i++) s[i] ^= w[round * 16 + i];
        }
        return s;
    }
}

function expandKey(key, rounds) {
    const nk = key.length / 4, total = 4 * (rounds + 1);
    const w = new Uint8Array(total * 4);
    w.set(key);
    let rcon = 1;
    for (let i = nk; i < total; i++) {
        let t = w.slice((i - 1) * 4, i * 4);
        if (i % nk === 0) {
            t = Uint8Array.of(SBOX[t[1]] ^ rcon, SBOX[t[2]], SBOX[t[3]], SBOX[t[0]]);
            rcon = xtime(rcon);
        } else if (nk > 6 && i % nk === 4) {
            t = t.map((b) => SBOX[b]);
        }
        for (let j = 0; j < 4; j++) w[i * 4 + j] = w[(i - nk) * 4 + j] ^ t[j];
    }
    return w;
}

// SubBytes and ShiftRows together; the state is column-major (byte r of column c at 4c + r).
function subShift(s) {
    const t = s.slice();
    for (let c = 0; c < 4; c++) {
        for (let r = 0; r < 4; r++) s[4 * c + r] = SBOX[t[4 * ((c + r) % 4) + r]];
    }
}

function mixColumns(s) {
    for (let c = 0; c < 16; c += 4) {
        const a0 = s[c], a1 = s[c + 1], a2 = s[c + 2], a3 = s[c + 3];
        const all = a0 ^ a1 ^ a2 ^ a3;
        s[c] ^= all ^ xtime(a0 ^ a1);
        s[c + 1] ^= all ^ xtime(a1 ^ a2);
        s[c + 2] ^= all ^ xtime(a2 ^ a3);
        s[c + 3] ^= all ^ xtime(a3 ^ a0);
    }
}

// ---- modes ------------------------------------------------------------------------

// ECB: each 16-byte block on its own (data.length must be a multiple of 16).
export function aesEcbEncrypt(key, data) {
    if (data.length % 16) throw new RangeError('ECB data must be whole 16-byte blocks');
    const aes = new AES(key), out = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i += 16) out.set(aes.encryptBlock(data, i), i);
    return out;
}

// CTR with a 16-byte big-endian counter block starting at `counter` (SP 800-38A);
// encryption and decryption are the same operation.
export function aesCtr(aes, counter, data) {
    const ctr = counter.slice(), out = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i += 16) {
        const ks = aes.encryptBlock(ctr);
        for (let j = 0; j < 16 && i + j < data.length; j++) out[i + j] = data[i + j] ^ ks[j];
        for (let k = 15; k >= 0; k--) if (++ctr[k] <= 0xff) break; else ctr[k] = 0;
    }
    return out;
}

function doubleBlock(b) {
    const out = new Uint8Array(16);
    for (let i = 0; i < 16; i++) out[i] = ((b[i] << 1) | (i < 15 ? b[i + 1] >> 7 : 0)) & 0xff;
    if (b[0] & 0x80) out[15] ^= 0x87;
    return out;
}

// CMAC (SP 800-38B) of `data`, optionally after a 16-byte prefix block (EAX's tweak).
export function aesCmac(aes, data, prefix = null) {
    const k1 = doubleBlock(aes.encryptBlock(new Uint8Array(16))), k2 = doubleBlock(k1);
    const msg = prefix ? concatBytes(prefix, data) : data;
    const n = Math.max(1, Math.ceil(msg.length / 16));
    const complete = msg.length > 0 && msg.length % 16 === 0;
    let x = new Uint8Array(16);
    for (let i = 0; i < n; i++) {
        const block = new Uint8Array(16);
        block.set(msg.subarray(i * 16, i * 16 + 16));
        if (i === n - 1) {
            if (!complete) block[msg.length - i * 16] = 0x80;
            const k = complete ? k1 : k2;
            for (let j = 0; j < 16; j++) block[j] ^= k[j];
        }
        for (let j = 0; j < 16; j++) x[j] ^= block[j];
        x = aes.encryptBlock(x);
    }
    return x;
}

export function concatBytes(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
        out.set(p, o);
        o += p.length;
    }
    return out;
}
