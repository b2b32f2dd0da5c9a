// web/core/security/mslogon2.js — UltraVNC's MSLogonII (security type 113,
// rfbproto "MSLogonII Authentication"): a 64-bit Diffie-Hellman exchange (U64
// generator, modulus, server public value), then username (256 bytes) and
// password (64 bytes), UTF-8, NUL-terminated, random-padded, each DES-CBC
// encrypted with the shared secret as key (bit-reversed, as VNC Authentication's
// key) and as IV. 64 bits is broken at once: this hides the password from a
// casual look at the traffic, no more. SecurityResult follows.
// Needs: ./common.js, ./dh.js, ../des.js.

import { SecurityError, NEED_MORE, paddedField, missing } from './common.js';
import { bytesToBigInt, bigIntToBytes, modPow, randomBelow, concatBytesOf } from './dh.js';
import { desEncryptBlock, vncKey } from '../des.js';

const USER_BYTES = 256;
const PASSWORD_BYTES = 64;

function desCbc(key8, iv, data) {
    const key = vncKey(key8);
    const out = new Uint8Array(data.length);
    let prev = iv;
    for (let i = 0; i < data.length; i += 8) {
        const block = data.slice(i, i + 8);
        for (let j = 0; j < 8; j++) block[j] ^= prev[j];
        prev = desEncryptBlock(key, block);
        out.set(prev, i);
    }
    return out;
}

export class MsLogon2Auth {
    constructor({ send }) {
        this._send = send;
        this._params = null;
        this.method = 'plain';
    }

    step(queue, creds) {
        if (!this._params) {
            if (!queue.has(24)) return NEED_MORE;
            const generator = bytesToBigInt(queue.bytes(8));
            const modulus = bytesToBigInt(queue.bytes(8));
            const serverPublic = bytesToBigInt(queue.bytes(8));
            if (modulus < 5n || generator < 2n || serverPublic < 1n || serverPublic >= modulus) {
                throw new SecurityError('MSLogonII: server sent invalid Diffie-Hellman parameters');
            }
            this._params = { generator, modulus, serverPublic };
        }
        const ask = missing(creds, ['username', 'password']);
        if (ask) return ask;
        const { generator, modulus, serverPublic } = this._params;
        const secret = randomBelow(modulus);
        const shared = bigIntToBytes(modPow(serverPublic, secret, modulus), 8);
        const user = desCbc(shared, shared, paddedField(creds.username, USER_BYTES, 'username'));
        const pass = desCbc(shared, shared, paddedField(creds.password, PASSWORD_BYTES, 'password'));
        this._send(concatBytesOf(bigIntToBytes(modPow(generator, secret, modulus), 8), user, pass));
        return { next: 'result' };
    }
}
