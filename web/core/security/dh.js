// web/core/security/dh.js — re-exports for the Diffie-Hellman based types (ard.js,
// mslogon2.js), so each imports its arithmetic from one place.
// Needs: ../crypto/bigint.js, ../crypto/aes.js.

export { bytesToBigInt, bigIntToBytes, modPow, randomBelow } from '../crypto/bigint.js';
export { concatBytes as concatBytesOf } from '../crypto/aes.js';
