// web/core/crypto/bigint.js — the big-number arithmetic of the Diffie-Hellman
// and RSA security types, on JavaScript BigInt: byte conversions, modular
// power and inverse, random numbers and probable primes.
// Needs: globalThis.crypto.getRandomValues (browsers, also in plain-http pages;
// Node 20).

export function randomBytes(n) {
    const out = new Uint8Array(n);
    // getRandomValues fills at most 65536 bytes a call.
    for (let i = 0; i < n; i += 65536) globalThis.crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
    return out;
}

export function bytesToBigInt(bytes) {
    let n = 0n;
    for (const b of bytes) n = (n << 8n) | BigInt(b);
    return n;
}

// Big-endian, left-padded with zeros to `length` bytes (RangeError if it does not fit).
export function bigIntToBytes(n, length) {
    const out = new Uint8Array(length);
    let v = n;
    for (let i = length - 1; i >= 0; i--) {
        out[i] = Number(v & 0xffn);
        v >>= 8n;
    }
    if (v !== 0n) throw new RangeError(`number does not fit in ${length} bytes`);
    return out;
}

export function bitLength(n) {
    return n === 0n ? 0 : n.toString(2).length;
}

export function modPow(base, exponent, modulus) {
    if (modulus === 1n) return 0n;
    let result = 1n, b = base % modulus, e = exponent;
    while (e > 0n) {
        if (e & 1n) result = (result * b) % modulus;
        b = (b * b) % modulus;
        e >>= 1n;
    }
    return result;
}

export function modInverse(a, m) {
    let [r0, r1, s0, s1] = [a % m, m, 1n, 0n];
    while (r1 !== 0n) {
        const q = r0 / r1;
        [r0, r1] = [r1, r0 - q * r1];
        [s0, s1] = [s1, s0 - q * s1];
    }
    if (r0 !== 1n) throw new RangeError('not invertible');
    return ((s0 % m) + m) % m;
}

// A uniformly random number in [2, limit - 2] (limit > 4): a DH private value.
export function randomBelow(limit) {
    const bytes = Math.ceil(bitLength(limit) / 8) + 8;   // 64 extra bits make the modulo bias negligible
    return (bytesToBigInt(randomBytes(bytes)) % (limit - 3n)) + 2n;
}

const SMALL_PRIMES = (() => {
    const out = [];
    for (let n = 3; out.length < 300; n += 2) if (out.every((p) => n % p)) out.push(n);
    return out.map(BigInt);
})();

function millerRabin(n, rounds) {
    let d = n - 1n, s = 0;
    while (!(d & 1n)) {
        d >>= 1n;
        s++;
    }
    for (let i = 0; i < rounds; i++) {
        let x = modPow(randomBelow(n), d, n);
        if (x === 1n || x === n - 1n) continue;
        let composite = true;
        for (let r = 1; r < s && composite; r++) {
            x = (x * x) % n;
            if (x === n - 1n) composite = false;
        }
        if (composite) return false;
    }
    return true;
}

export function isProbablePrime(n, rounds = 40) {
    if (n < 2n) return false;
    for (const p of SMALL_PRIMES) {
        if (n === p) return true;
        if (n % p === 0n) return false;
    }
    return millerRabin(n, rounds);
}

// A random prime of exactly `bits` bits with the top two bits set (so a product
// of two has exactly 2 * bits bits).
export function randomPrime(bits) {
    for (;;) {
        let n = bytesToBigInt(randomBytes(Math.ceil(bits / 8)));
        n &= (1n << BigInt(bits)) - 1n;
        n |= (3n << BigInt(bits - 2)) | 1n;
        if (isProbablePrime(n)) return n;
    }
}
