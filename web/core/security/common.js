// web/core/security/common.js — what the security-type modules share, and the
// contract they follow (rfb.js drives them):
//
//   const auth = new SomeAuth({ send, options })   // send(Uint8Array); options: rfb's options
//   auth.method            // 'vnc' | 'plain': the words rfb uses when the login is refused
//   auth.step(queue, creds) -> false            need more bytes (nothing consumed that cannot be resumed)
//                           -> true             progress made: call again
//                           -> { ask: [...] }   needs credentials (['username', 'password']); rfb
//                                               emits 'credentials-required' and calls step again
//                                               once sendPassword() gave them
//                           -> { next }         done: 'vnc' (continue as VNC Authentication),
//                                               'none' (as security type None), 'result' (SecurityResult)
//   creds = { username, password } (null = not given yet).
//   A server message the client cannot accept throws SecurityError(message): rfb
//   fails the session with that message.
// Needs: ../crypto/bigint.js (random padding).

import { randomBytes } from '../crypto/bigint.js';

export class SecurityError extends Error {}

export const NEED_MORE = false;
export const PROGRESS = true;

const utf8 = new TextEncoder();

export function encodeUtf8(text) {
    return utf8.encode(text ?? '');
}

// `text` as UTF-8, NUL-terminated, then random bytes up to `size` (the fixed
// fields of the Diffie-Hellman and MSLogonII types): too long is refused, not cut.
export function paddedField(text, size, what) {
    const bytes = encodeUtf8(text);
    if (bytes.length >= size) throw new SecurityError(`${what} is too long (${bytes.length} bytes; at most ${size - 1})`);
    const out = randomBytes(size);
    out.set(bytes);
    out[bytes.length] = 0;
    return out;
}

// What to ask the page for: the credentials still missing from `creds`.
export function missing(creds, wanted) {
    const need = wanted.filter((k) => creds[k] === null || creds[k] === undefined);
    return need.length ? { ask: wanted } : null;
}
