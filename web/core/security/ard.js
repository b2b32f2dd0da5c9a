// web/core/security/ard.js — Apple Remote Desktop's Diffie-Hellman
// authentication (security type 30, rfbproto "Diffie-Hellman Authentication"):
// the server sends generator, prime and its public value; the client answers
// with username and password (UTF-8, NUL-terminated, random-padded to 64 bytes
// each) encrypted with AES-128-ECB under MD5(shared secret), and its own
// public value. SecurityResult follows.
// Needs: ./common.js, ../crypto/{bigint,hash,aes}.js.

import { SecurityError, NEED_MORE, paddedField, missing } from './common.js';
import { bytesToBigInt, bigIntToBytes, modPow, randomBelow, concatBytesOf } from './dh.js';
import { md5 } from '../crypto/hash.js';
import { aesEcbEncrypt } from '../crypto/aes.js';

const FIELD_BYTES = 64;
// macOS uses 128-byte (1024-bit) groups; 8192 bits bounds the work a server can ask for.
const MIN_KEY_BYTES = 8;
const MAX_KEY_BYTES = 1024;

export class ArdAuth {
    constructor({ send }) {
        this._send = send;
        this._params = null;
        this.method = 'plain';
    }

    step(queue, creds) {
        if (!this._params) {
            if (!queue.has(4)) return NEED_MORE;
            const keyBytes = queue.peekU16(2);
            if (keyBytes < MIN_KEY_BYTES || keyBytes > MAX_KEY_BYTES) {
                throw new SecurityError(`Diffie-Hellman: server key size ${keyBytes} bytes is outside ${MIN_KEY_BYTES}..${MAX_KEY_BYTES}`);
            }
            if (!queue.has(4 + 2 * keyBytes)) return NEED_MORE;
            const generator = BigInt(queue.u16());
            queue.skip(2);
            const prime = bytesToBigInt(queue.bytes(keyBytes));
            const serverPublic = bytesToBigInt(queue.bytes(keyBytes));
            if (prime < 5n || generator < 2n || serverPublic < 2n || serverPublic > prime - 2n) {
                throw new SecurityError('Diffie-Hellman: server sent invalid parameters');
            }
            this._params = { generator, prime, serverPublic, keyBytes };
        }
        const ask = missing(creds, ['username', 'password']);
        if (ask) return ask;
        const { generator, prime, serverPublic, keyBytes } = this._params;
        const secret = randomBelow(prime);
        const shared = bigIntToBytes(modPow(serverPublic, secret, prime), keyBytes);
        const plain = concatBytesOf(paddedField(creds.username, FIELD_BYTES, 'username'),
            paddedField(creds.password, FIELD_BYTES, 'password'));
        const encrypted = aesEcbEncrypt(md5(shared), plain);
        this._send(concatBytesOf(encrypted, bigIntToBytes(modPow(generator, secret, prime), keyBytes)));
        return { next: 'result' };
    }
}
