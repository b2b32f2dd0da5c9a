// des.js — DES block encryption (FIPS 46-3) and the VNC Authentication response (RFC 6143 §7.2.2).
//
// Needs: nothing (pure ES module; TextEncoder is built into Node 20 and browsers).
//
// Why it exists: security type 2 ("VNC Authentication") makes the client encrypt a 16-byte server
// challenge with DES keyed by the password. Web Crypto has no DES, so it is written here straight
// from the FIPS 46-3 description: bit permutations given as the standard's 1-based tables, with
// bit 1 being the most significant bit of the first byte. Only two blocks are ever encrypted per
// login, so clarity wins over speed (no combined S-box/P tables).
//
// VNC's quirk, not in RFC 6143 but in every implementation (the original d3des code numbered the
// key bits from the other end): each key byte is bit-reversed before use. Standard-DES test vectors
// go through desEncryptBlock(); vncAuthResponse() applies the reversal itself.

// ---------------------------------------------------------------------------------------------
// FIPS 46-3 tables

// Initial permutation IP.
const IP = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
    57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];

// Final permutation IP^-1.
const IP_INV = [
    40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31,
    38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29,
    36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27,
    34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
];

// E: expands the 32-bit half to 48 bits.
const E = [
    32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9,
    8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
    16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25,
    24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
];

// P: permutes the 32 S-box output bits.
const P = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
    2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
];

// PC-1: selects 56 key bits (drops the parity bits 8, 16, ..., 64) into C (first 28) and D.
const PC1 = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
    10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
    63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
    14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];

// PC-2: selects the 48-bit round key from C||D.
const PC2 = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10,
    23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
    41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
    44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];

// Left rotations of C and D before each of the 16 rounds.
const SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

// S-boxes S1..S8, each 4 rows of 16. Row = outer bits (1st and 6th), column = inner 4 bits.
const S = [
    [
        14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
        0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
        4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
        15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
    ],
    [
        15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
        3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
        0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
        13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
    ],
    [
        10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
        13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
        13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
        1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
    ],
    [
        7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
        13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
        10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
        3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
    ],
    [
        2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
        14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
        4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
        11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
    ],
    [
        12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
        10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
        9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
        4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
    ],
    [
        4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
        13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
        1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
        6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
    ],
    [
        13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
        1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
        7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
        2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
    ],
];

// ---------------------------------------------------------------------------------------------
// Bit helpers: blocks are handled as arrays of 0/1, index 0 = the standard's bit 1.

function toBits(bytes) {
    const bits = new Uint8Array(bytes.length * 8);
    for (let i = 0; i < bits.length; i++) bits[i] = (bytes[i >> 3] >> (7 - (i & 7))) & 1;
    return bits;
}

function fromBits(bits) {
    const bytes = new Uint8Array(bits.length / 8);
    for (let i = 0; i < bits.length; i++) bytes[i >> 3] |= bits[i] << (7 - (i & 7));
    return bytes;
}

function permute(bits, table) {
    const out = new Uint8Array(table.length);
    for (let i = 0; i < table.length; i++) out[i] = bits[table[i] - 1];
    return out;
}

function rotateLeft(half, n) {
    const out = new Uint8Array(half.length);
    for (let i = 0; i < half.length; i++) out[i] = half[(i + n) % half.length];
    return out;
}

// The 16 round keys K1..K16 (FIPS 46-3, "Key Schedule Calculation").
function keySchedule(key8) {
    const cd = permute(toBits(key8), PC1);
    let c = cd.subarray(0, 28);
    let d = cd.subarray(28, 56);
    const keys = [];
    for (const shift of SHIFTS) {
        c = rotateLeft(c, shift);
        d = rotateLeft(d, shift);
        const joined = new Uint8Array(56);
        joined.set(c, 0);
        joined.set(d, 28);
        keys.push(permute(joined, PC2));
    }
    return keys;
}

// The cipher function f(R, K).
function feistel(right, roundKey) {
    const x = permute(right, E);
    for (let i = 0; i < 48; i++) x[i] ^= roundKey[i];
    const out = new Uint8Array(32);
    for (let box = 0; box < 8; box++) {
        const b = x.subarray(box * 6, box * 6 + 6);
        const row = (b[0] << 1) | b[5];
        const col = (b[1] << 3) | (b[2] << 2) | (b[3] << 1) | b[4];
        const v = S[box][row * 16 + col];
        for (let k = 0; k < 4; k++) out[box * 4 + k] = (v >> (3 - k)) & 1;
    }
    return permute(out, P);
}

function checkBytes(value, length, name) {
    if (!(value instanceof Uint8Array) || value.length !== length) {
        throw new TypeError(`${name} must be a Uint8Array of ${length} bytes`);
    }
}

// ---------------------------------------------------------------------------------------------
// Public API

// Standard DES: encrypts one 8-byte block with an 8-byte key (parity bits ignored, as in FIPS).
export function desEncryptBlock(key8, block8) {
    checkBytes(key8, 8, 'key');
    checkBytes(block8, 8, 'block');
    const keys = keySchedule(key8);
    const ip = permute(toBits(block8), IP);
    let left = ip.subarray(0, 32);
    let right = ip.subarray(32, 64);
    for (let round = 0; round < 16; round++) {
        const f = feistel(right, keys[round]);
        const next = new Uint8Array(32);
        for (let i = 0; i < 32; i++) next[i] = left[i] ^ f[i];
        left = right;
        right = next;
    }
    // The last round is not swapped: the pre-output block is R16 L16.
    const preOutput = new Uint8Array(64);
    preOutput.set(right, 0);
    preOutput.set(left, 32);
    return fromBits(permute(preOutput, IP_INV));
}

function reverseByte(b) {
    let r = 0;
    for (let i = 0; i < 8; i++) r |= ((b >> i) & 1) << (7 - i);
    return r;
}

// The VNC key: the password's first 8 bytes (UTF-8, which is what vncpasswd stores from a
// terminal; ASCII passwords are the same either way), zero-padded, each byte bit-reversed.
export function vncKey(password) {
    const bytes = typeof password === 'string' ? new TextEncoder().encode(password) : password;
    if (!(bytes instanceof Uint8Array)) throw new TypeError('password must be a string or Uint8Array');
    const key = new Uint8Array(8);
    for (let i = 0; i < 8 && i < bytes.length; i++) key[i] = reverseByte(bytes[i]);
    return key;
}

// RFC 6143 §7.2.2: the 16-byte challenge encrypted as two independent (ECB) DES blocks.
export function vncAuthResponse(password, challenge) {
    checkBytes(challenge, 16, 'challenge');
    const key = vncKey(password);
    const response = new Uint8Array(16);
    response.set(desEncryptBlock(key, challenge.subarray(0, 8)), 0);
    response.set(desEncryptBlock(key, challenge.subarray(8, 16)), 8);
    return response;
}
