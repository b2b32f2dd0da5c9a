// web/core/crypto/hash.js — MD5 (RFC 1321) and SHA-1 (FIPS 180-4), one-shot.
// Needs: nothing. MD5 is what Apple's Diffie-Hellman type (30) derives its AES
// key with, SHA-1 what RSA-AES (types 5/6) derives its session keys with;
// WebCrypto has no MD5 and is asynchronous and secure-context only (see aes.js).

// Message padding shared by both: 0x80, zeros, then the bit length as 64 bits
// (little-endian for MD5, big-endian for SHA-1), to a multiple of 64 bytes.
function pad(data, littleEndian) {
    const total = Math.ceil((data.length + 9) / 64) * 64;
    const out = new Uint8Array(total);
    out.set(data);
    out[data.length] = 0x80;
    const view = new DataView(out.buffer);
    const bits = data.length * 8;
    const hi = Math.floor(bits / 0x100000000), lo = bits >>> 0;
    if (littleEndian) {
        view.setUint32(total - 8, lo, true);
        view.setUint32(total - 4, hi, true);
    } else {
        view.setUint32(total - 8, hi);
        view.setUint32(total - 4, lo);
    }
    return view;
}

const rotl = (x, n) => (x << n) | (x >>> (32 - n));

// ---- MD5 --------------------------------------------------------------------------

const MD5_S = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
const MD5_K = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 0x100000000) | 0);

function md5Round(i, b, c, d) {
    if (i < 16) return [(b & c) | (~b & d), i];
    if (i < 32) return [(d & b) | (~d & c), (5 * i + 1) % 16];
    if (i < 48) return [b ^ c ^ d, (3 * i + 5) % 16];
    return [c ^ (b | ~d), (7 * i) % 16];
}

export function md5(data) {
    const view = pad(data, true);
    const h = [0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476];
    for (let off = 0; off < view.byteLength; off += 64) {
        let [a, b, c, d] = h;
        for (let i = 0; i < 64; i++) {
            const [f, g] = md5Round(i, b, c, d);
            const s = MD5_S[(i >> 4) * 4 + (i & 3)];
            const sum = (a + f + MD5_K[i] + view.getUint32(off + g * 4, true)) | 0;
            a = d;
            d = c;
            c = b;
            b = (b + rotl(sum, s)) | 0;
        }
        h[0] = (h[0] + a) | 0;
        h[1] = (h[1] + b) | 0;
        h[2] = (h[2] + c) | 0;
        h[3] = (h[3] + d) | 0;
    }
    const out = new DataView(new ArrayBuffer(16));
    h.forEach((v, i) => out.setUint32(i * 4, v, true));
    return new Uint8Array(out.buffer);
}

// ---- SHA-1 ------------------------------------------------------------------------

function sha1Round(t, b, c, d) {
    if (t < 20) return [(b & c) | (~b & d), 0x5a827999];
    if (t < 40) return [b ^ c ^ d, 0x6ed9eba1];
    if (t < 60) return [(b & c) | (b & d) | (c & d), 0x8f1bbcdc | 0];
    return [b ^ c ^ d, 0xca62c1d6 | 0];
}

export function sha1(data) {
    const view = pad(data, false);
    const h = [0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476, 0xc3d2e1f0 | 0];
    const w = new Int32Array(80);
    for (let off = 0; off < view.byteLength; off += 64) {
        for (let t = 0; t < 16; t++) w[t] = view.getUint32(off + t * 4);
        for (let t = 16; t < 80; t++) w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
        let [a, b, c, d, e] = h;
        for (let t = 0; t < 80; t++) {
            const [f, k] = sha1Round(t, b, c, d);
            const tmp = (rotl(a, 5) + f + e + k + w[t]) | 0;
            e = d;
            d = c;
            c = rotl(b, 30);
            b = a;
            a = tmp;
        }
        h[0] = (h[0] + a) | 0;
        h[1] = (h[1] + b) | 0;
        h[2] = (h[2] + c) | 0;
        h[3] = (h[3] + d) | 0;
        h[4] = (h[4] + e) | 0;
    }
    const out = new DataView(new ArrayBuffer(20));
    h.forEach((v, i) => out.setUint32(i * 4, v));
    return new Uint8Array(out.buffer);
}
