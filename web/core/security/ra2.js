// web/core/security/ra2.js — RSA-AES Unencrypted, RA2ne (security type 6,
// rfbproto "RSA-AES Security Type" and "...Unencrypted"): RSA public keys both
// ways, a 16-byte random each way (EME-PKCS1-v1_5), session keys
// SHA-1(random || random)[0..16], then AES-EAX messages (U16 length as
// associated data, a 16-byte little-endian counter as nonce, 16-byte MAC): the
// server's hash of both keys, ours, the credential subtype (1: username and
// password, 2: password), our credentials. The SecurityResult and everything
// after are not encrypted (that is the "ne"; a browser client could not afford
// AES on every framebuffer byte). The server's key is not pinned: rfb reports
// its fingerprint ('server-key' event) for the page to show.
// Needs: ./common.js, ../crypto/{rsa,eax,hash,bigint,aes}.js.

import { SecurityError, NEED_MORE, PROGRESS, encodeUtf8, missing } from './common.js';
import { RSAKey } from '../crypto/rsa.js';
import { EAX } from '../crypto/eax.js';
import { sha1 } from '../crypto/hash.js';
import { bytesToBigInt, bigIntToBytes, randomBytes } from '../crypto/bigint.js';
import { concatBytes } from '../crypto/aes.js';
import { putU32, putU16 } from '../messages.js';

// TigerVNC's bounds for either side's key.
const MIN_KEY_BITS = 1024;
const MAX_KEY_BITS = 8192;
const CLIENT_KEY_BITS = 2048;
const RANDOM_BYTES = 16;
const MAC_BYTES = 16;
const HASH_BYTES = 20;
const SUBTYPE_USER_PASS = 1;
const SUBTYPE_PASS = 2;
const MAX_CREDENTIAL = 255;   // U8 lengths

function publicKeyBytes(bits, n, e) {
    const len = Math.ceil(bits / 8);
    const out = new Uint8Array(4 + 2 * len);
    putU32(out, 0, bits);
    out.set(bigIntToBytes(n, len), 4);
    out.set(bigIntToBytes(e, len), 4 + len);
    return out;
}

function sameBytes(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
}

// One direction of the EAX channel: its key and its message counter (the nonce).
class Channel {
    constructor(key) {
        this._eax = new EAX(key);
        this._nonce = new Uint8Array(16);
    }

    _next() {
        const nonce = this._nonce.slice();
        for (let i = 0; i < 16; i++) if (++this._nonce[i] <= 0xff) break; else this._nonce[i] = 0;
        return nonce;
    }

    seal(plain) {
        const header = new Uint8Array(2);
        putU16(header, 0, plain.length);
        return concatBytes(header, this._eax.encrypt(this._next(), header, plain));
    }

    // One message of exactly `length` bytes from the queue, or null while incomplete.
    open(queue, length, what) {
        if (!queue.has(2)) return null;
        const got = queue.peekU16(0);
        if (got !== length) throw new SecurityError(`RSA-AES: server's ${what} is ${got} bytes, expected ${length}`);
        if (!queue.has(2 + length + MAC_BYTES)) return null;
        const header = queue.bytes(2);
        const cipher = queue.bytes(length), tag = queue.bytes(MAC_BYTES);
        const plain = this._eax.decrypt(this._next(), header, cipher, tag);
        if (!plain) throw new SecurityError(`RSA-AES: server's ${what} fails its MAC (tampered, or not the key holder)`);
        return plain;
    }
}

export class Ra2neAuth {
    constructor({ send, onServerKey = () => {}, clientKey = null }) {
        this._send = send;
        this._onServerKey = onServerKey;
        this._clientKey = clientKey;      // tests may inject one; else generated when needed
        this._phase = this._onServerPublicKey;
        this._subtype = 0;
        this.method = 'vnc';
    }

    step(queue, creds) {
        return this._phase(queue, creds);
    }

    _onServerPublicKey(queue) {
        if (!queue.has(4)) return NEED_MORE;
        const bits = queue.peekU32(0);
        if (bits < MIN_KEY_BITS || bits > MAX_KEY_BITS) {
            throw new SecurityError(`RSA-AES: server key is ${bits} bits, outside ${MIN_KEY_BITS}..${MAX_KEY_BITS}`);
        }
        const len = Math.ceil(bits / 8);
        if (!queue.has(4 + 2 * len)) return NEED_MORE;
        this._serverKeyBytes = queue.bytes(4 + 2 * len);
        const n = bytesToBigInt(this._serverKeyBytes.subarray(4, 4 + len));
        const e = bytesToBigInt(this._serverKeyBytes.subarray(4 + len));
        this._serverKey = new RSAKey(n, e);
        this._onServerKey(sha1(this._serverKeyBytes));
        const key = this._clientKey ?? RSAKey.generate(CLIENT_KEY_BITS);
        this._clientKey = key;
        this._clientKeyBytes = publicKeyBytes(key.bits, key.n, key.e);
        this._send(this._clientKeyBytes);
        this._phase = this._onServerRandom;
        return PROGRESS;
    }

    _onServerRandom(queue) {
        if (!queue.has(2)) return NEED_MORE;
        const len = queue.peekU16(0);
        if (len !== this._clientKey.bytes) throw new SecurityError(`RSA-AES: server's encrypted random is ${len} bytes, expected ${this._clientKey.bytes}`);
        if (!queue.has(2 + len)) return NEED_MORE;
        queue.skip(2);
        const serverRandom = this._clientKey.decrypt(queue.bytes(len));
        if (!serverRandom || serverRandom.length !== RANDOM_BYTES) throw new SecurityError('RSA-AES: server random does not decrypt');
        const clientRandom = randomBytes(RANDOM_BYTES);
        const cipher = this._serverKey.encrypt(clientRandom);
        const msg = new Uint8Array(2 + cipher.length);
        putU16(msg, 0, cipher.length);
        msg.set(cipher, 2);
        this._send(msg);
        this._out = new Channel(sha1(concatBytes(serverRandom, clientRandom)).subarray(0, 16));
        this._in = new Channel(sha1(concatBytes(clientRandom, serverRandom)).subarray(0, 16));
        this._phase = this._onServerHash;
        return PROGRESS;
    }

    _onServerHash(queue) {
        const hash = this._in.open(queue, HASH_BYTES, 'hash');
        if (!hash) return NEED_MORE;
        if (!sameBytes(hash, sha1(concatBytes(this._serverKeyBytes, this._clientKeyBytes)))) {
            throw new SecurityError("RSA-AES: server's hash of the keys does not match (someone in between?)");
        }
        this._send(this._out.seal(sha1(concatBytes(this._clientKeyBytes, this._serverKeyBytes))));
        this._phase = this._onSubtype;
        return PROGRESS;
    }

    _onSubtype(queue) {
        const sub = this._in.open(queue, 1, 'credential subtype');
        if (!sub) return NEED_MORE;
        if (sub[0] !== SUBTYPE_USER_PASS && sub[0] !== SUBTYPE_PASS) throw new SecurityError(`RSA-AES: unknown credential subtype ${sub[0]}`);
        this._subtype = sub[0];
        this.method = sub[0] === SUBTYPE_USER_PASS ? 'plain' : 'vnc';
        this._phase = this._sendCredentials;
        return PROGRESS;
    }

    _sendCredentials(queue, creds) {
        const wanted = this._subtype === SUBTYPE_USER_PASS ? ['username', 'password'] : ['password'];
        const ask = missing(creds, wanted);
        if (ask) return ask;
        const user = this._subtype === SUBTYPE_USER_PASS ? encodeUtf8(creds.username) : new Uint8Array(0);
        const pass = encodeUtf8(creds.password);
        if (user.length > MAX_CREDENTIAL || pass.length > MAX_CREDENTIAL) {
            throw new SecurityError(`RSA-AES: username and password must be at most ${MAX_CREDENTIAL} bytes each`);
        }
        this._send(this._out.seal(concatBytes(Uint8Array.of(user.length), user, Uint8Array.of(pass.length), pass)));
        return { next: 'result' };
    }
}
