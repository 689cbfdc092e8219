// The ZAP name hash: CRC-64 over the key bytes (no NUL) with the reflected
// ECMA-182 polynomial, the register starting at the object's salt and no
// final xor; only the top ZAP_HASHBITS bits are kept, because OpenZFS uses the
// low bits of a cursor for the collision differentiator.
//
// The table is split into 32-bit halves so the per-byte loop runs on plain
// numbers: a directory of a million names must hash in well under a second.

import { ZAP_HASHBITS } from './types.js';

/** zfs_crc64_table's polynomial (ZFS_CRC64_POLY). */
export const ZFS_CRC64_POLY = 0xc96c5795d7870f42n;

const POLY_HI = 0xc96c5795;
const POLY_LO = 0xd7870f42;

const TABLE_HI = new Uint32Array(256);
const TABLE_LO = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let hi = 0;
  let lo = i;
  for (let k = 0; k < 8; k++) {
    const lsb = lo & 1;
    lo = (lo >>> 1) | ((hi & 1) << 31);
    hi >>>= 1;
    if (lsb) {
      hi ^= POLY_HI;
      lo ^= POLY_LO;
    }
  }
  TABLE_HI[i] = hi >>> 0;
  TABLE_LO[i] = lo >>> 0;
}

/** Splits a salt into the two register halves, refusing what OpenZFS would assert on. */
export function saltHalves(salt: bigint): [hi: number, lo: number] {
  if (typeof salt !== 'bigint' || salt <= 0n || salt >= 1n << 64n) {
    throw new RangeError(`ZAP salt must be a non-zero 64-bit bigint, got ${String(salt)}`);
  }
  return [Number(salt >> 32n), Number(salt & 0xffffffffn)];
}

/**
 * The kept hash bits as a number in [0, 2^28): the 64-bit hash is this value
 * shifted left by 36.
 */
export function zapHash28(saltHi: number, saltLo: number, name: Uint8Array, from = 0, to = name.length): number {
  let hi = saltHi;
  let lo = saltLo;
  for (let i = from; i < to; i++) {
    const idx = (lo ^ name[i]!) & 0xff;
    lo = ((lo >>> 8) | (hi << 24)) ^ TABLE_LO[idx]!;
    hi = (hi >>> 8) ^ TABLE_HI[idx]!;
  }
  return (hi >>> 0) >>> (32 - ZAP_HASHBITS);
}

/** Converts a 28-bit kept hash to the 64-bit value stored on disk (le_hash). */
export function hash28To64(h28: number): bigint {
  return BigInt(h28) << BigInt(64 - ZAP_HASHBITS);
}

/** OpenZFS zap_hash() for a string key of a ZAP without ZAP_FLAG_HASH64. */
export function zapHash(salt: bigint, name: Uint8Array): bigint {
  const [hi, lo] = saltHalves(salt);
  return hash28To64(zapHash28(hi, lo, name));
}
