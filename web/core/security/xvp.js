// web/core/security/xvp.js — xvp authentication (security type 22, rfbproto
// "xvp Authentication"): the client names a user and a target (the virtual
// machine), then VNC Authentication follows. rfbproto says the server sends the
// two strings, but xvp servers and clients (noVNC too) have the client send them;
// a server never sends anything before the VNC challenge, so that is what we do.
// Needs: ./common.js.

import { SecurityError, encodeUtf8, missing } from './common.js';

const MAX_FIELD = 255;   // each length is a U8

export class XvpAuth {
    constructor({ send, options }) {
        this._send = send;
        this._target = options.target ?? '';
        this.method = 'vnc';
    }

    step(queue, creds) {
        const ask = missing(creds, ['username', 'password']);
        if (ask) return ask;
        const user = encodeUtf8(creds.username), target = encodeUtf8(this._target);
        if (user.length > MAX_FIELD || target.length > MAX_FIELD) {
            throw new SecurityError(`xvp: username and target must be at most ${MAX_FIELD} bytes each`);
        }
        const msg = new Uint8Array(2 + user.length + target.length);
        msg[0] = user.length;
        msg[1] = target.length;
        msg.set(user, 2);
        msg.set(target, 2 + user.length);
        this._send(msg);
        return { next: 'vnc' };
    }
}
