// web/core/security/tight.js — the Tight security type (16, rfbproto "Tight
// Security Type"): a list of tunnels (we take only NOTUNNEL: a no-op), then a
// list of authentication capabilities (None, VNC Authentication, Tight Unix
// login), each a 16-byte CAPABILITY {S32 code, 4-byte vendor, 8-byte signature}.
// With Tight security the ServerInit carries an extra capabilities section:
// tightServerInitExtra() says how long it is, so rfb skips it.
// Needs: ./common.js, ../messages.js (putU32).

import { SecurityError, NEED_MORE, PROGRESS, encodeUtf8, missing } from './common.js';
import { putU32 } from '../messages.js';

const CAPABILITY_BYTES = 16;
// A real server lists a handful; more than this is not a Tight server.
const MAX_CAPABILITIES = 64;

const NOTUNNEL = 'TGHTNOTUNNEL';
// Vendor + signature -> what we do with it, in our order of preference.
const AUTH_TYPES = Object.freeze([
    { sig: 'STDVNOAUTH__', next: 'none' },
    { sig: 'STDVVNCAUTH_', next: 'vnc' },
    { sig: 'TGHTULGNAUTH', next: 'unix' },   // username + password in the clear
]);

function readCapabilities(queue) {
    if (!queue.has(4)) return null;
    const count = queue.peekU32(0);
    if (count > MAX_CAPABILITIES) throw new SecurityError(`Tight security: server lists ${count} capabilities`);
    if (!queue.has(4 + count * CAPABILITY_BYTES)) return null;
    queue.skip(4);
    const caps = [];
    for (let i = 0; i < count; i++) {
        const code = queue.s32();
        const sig = String.fromCharCode(...queue.bytes(12));
        caps.push({ code, sig });
    }
    return caps;
}

function codeMessage(code) {
    const msg = new Uint8Array(4);
    putU32(msg, 0, code);
    return msg;
}

export class TightAuth {
    constructor({ send }) {
        this._send = send;
        this._phase = 'tunnels';
        this._chosen = null;
        this.method = 'none';
    }

    step(queue, creds) {
        if (this._phase === 'tunnels') return this._onTunnels(queue);
        if (this._phase === 'auth') return this._onAuthTypes(queue);
        return this._sendUnixLogin(creds);
    }

    _onTunnels(queue) {
        const caps = readCapabilities(queue);
        if (!caps) return NEED_MORE;
        if (caps.length) {
            const none = caps.find((c) => c.sig === NOTUNNEL);
            if (!none) {
                throw new SecurityError(`Tight security: server requires a tunnel (${caps.map((c) => c.sig).join(', ')}); ` +
                    'this client supports NOTUNNEL only');
            }
            this._send(codeMessage(none.code));
        }
        this._phase = 'auth';
        return PROGRESS;
    }

    _onAuthTypes(queue) {
        const caps = readCapabilities(queue);
        if (!caps) return NEED_MORE;
        if (!caps.length) return { next: 'none' };
        for (const type of AUTH_TYPES) {
            const cap = caps.find((c) => c.sig === type.sig);
            if (!cap) continue;
            this._send(codeMessage(cap.code));
            if (type.next !== 'unix') return { next: type.next };
            this._phase = 'unix';
            this.method = 'plain';
            return PROGRESS;
        }
        throw new SecurityError(`Tight security: no supported authentication (offered: ${caps.map((c) => c.sig).join(', ')}); ` +
            'this client supports None, VNC Authentication and Unix login');
    }

    _sendUnixLogin(creds) {
        const ask = missing(creds, ['username', 'password']);
        if (ask) return ask;
        const user = encodeUtf8(creds.username), pass = encodeUtf8(creds.password);
        const msg = new Uint8Array(8 + user.length + pass.length);
        putU32(msg, 0, user.length);
        putU32(msg, 4, pass.length);
        msg.set(user, 8);
        msg.set(pass, 8 + user.length);
        this._send(msg);
        return { next: 'result' };
    }
}

// Bytes of the interaction-capabilities section that follows a ServerInit's name
// (at `offset` in the queue) under Tight security, or null while its counts are
// not yet buffered.
export function tightServerInitExtra(queue, offset) {
    if (!queue.has(offset + 8)) return null;
    const total = queue.peekU16(offset) + queue.peekU16(offset + 2) + queue.peekU16(offset + 4);
    return 8 + total * CAPABILITY_BYTES;
}
