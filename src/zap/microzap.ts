// Micro ZAP (mzap_phys_t): one block holding a 64-byte header and 64-byte
// entries (mzap_ent_phys_t) of a uint64 value, a collision differentiator and
// a NUL-terminated name of at most MZAP_NAME_LEN - 1 bytes.
//
// OpenZFS loads every entry into a tree keyed by (28-bit hash, cd) and VERIFYs
// that no key repeats, so names whose hashes collide must carry distinct cds
// or the importing kernel panics. The caller assigns them (see zap.ts); the
// decoder enforces it.

import { hash28To64, saltHalves, zapHash28 } from './crc64.js';
import { zeroShared } from '../util/zeros.js';
import {
  MZAP_ENT_LEN,
  MZAP_NAME_LEN,
  SPA_MINBLOCKSIZE,
  ZBT_MICRO,
  checkUniqueNames,
  nameForError,
  type ZapDecoded,
  type ZapDecodedEntry,
} from './types.js';
import type { PackedEntries } from './packed.js';

const MZAP_HDR_LEN = 64;
const MZE_VALUE = 0;
const MZE_CD = 8;
const MZE_NAME = 14;

/**
 * Block size for n entries. OpenZFS creates a micro ZAP at 512 bytes and, when
 * it is full, grows it by SPA_MINBLOCKSIZE (zap_lock_impl), so the block
 * holds size/64 - 1 entries.
 */
export function mzapBlockSize(numEntries: number, rounding: 'sector' | 'pow2' = 'sector'): number {
  const need = MZAP_ENT_LEN * (numEntries + 1);
  if (rounding === 'pow2') {
    let s = SPA_MINBLOCKSIZE;
    while (s < need) s *= 2;
    return s;
  }
  return Math.max(SPA_MINBLOCKSIZE, Math.ceil(need / SPA_MINBLOCKSIZE) * SPA_MINBLOCKSIZE);
}

/**
 * Writes a micro ZAP with the entries in `p.order`, which must all be single
 * uint64s with names shorter than MZAP_NAME_LEN (the caller's choice rule).
 */
export function encodeMicroZap(p: PackedEntries, salt: bigint, blockSize: number, into?: Uint8Array): Uint8Array {
  saltHalves(salt);
  if (blockSize % SPA_MINBLOCKSIZE !== 0 || blockSize < SPA_MINBLOCKSIZE) {
    throw new RangeError(`micro ZAP block size ${blockSize} is not a positive multiple of ${SPA_MINBLOCKSIZE}`);
  }
  if (p.n > blockSize / MZAP_ENT_LEN - 1) throw new RangeError(`${p.n} entries do not fit a ${blockSize}-byte micro ZAP`);
  // `into`: written there rather than in an array of its own, for a caller
  // that encodes block after block into one buffer (cleared here whatever
  // it held, so no caller has to)
  let block: Uint8Array;
  if (into !== undefined && into.length >= blockSize) {
    block = into.subarray(0, blockSize);
    zeroShared(block, 0, blockSize);
  } else {
    block = new Uint8Array(blockSize);
  }
  const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
  dv.setBigUint64(0, ZBT_MICRO, true);
  dv.setBigUint64(8, salt, true);
  dv.setBigUint64(16, 0n, true);
  for (let slot = 0; slot < p.n; slot++) {
    const i = p.order[slot]!;
    const off = MZAP_HDR_LEN + slot * MZAP_ENT_LEN;
    const v = p.valueOff[i]!;
    if (p.valueOff[i + 1]! - v !== 8 || p.intLen[i] !== 8) throw new Error('micro ZAP values must be single uint64s');
    // Packed values are big-endian; micro entries hold the host (little-endian) word.
    for (let b = 0; b < 8; b++) block[off + MZE_VALUE + b] = p.values[v + 7 - b]!;
    const cd = p.cd[i]!;
    if (cd > 0xffff) throw new RangeError(`micro ZAP cd ${cd} exceeds the in-core 16-bit field`);
    dv.setUint32(off + MZE_CD, cd, true);
    // (copied byte by byte: a view per name was most of what encoding a
    // tree's directories allocated)
    const from = p.nameOff[i]!;
    const len = p.nameOff[i + 1]! - from;
    if (len >= MZAP_NAME_LEN) throw new RangeError(`name ${nameForError(p.names.subarray(from, from + len))} too long for a micro ZAP`);
    const names = p.names;
    for (let b = 0, to = off + MZE_NAME; b < len; b++) block[to + b] = names[from + b]!;
  }
  return block;
}

/** Reads and checks a micro ZAP block. */
export function decodeMicroZap(block: Uint8Array): ZapDecoded {
  const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
  if (block.length < SPA_MINBLOCKSIZE || block.length % SPA_MINBLOCKSIZE !== 0) {
    throw new Error(`micro ZAP: block size ${block.length} is not a positive multiple of ${SPA_MINBLOCKSIZE}`);
  }
  const type = dv.getBigUint64(0, true);
  if (type !== ZBT_MICRO) throw new Error(`micro ZAP: block type 0x${type.toString(16)} is not ZBT_MICRO`);
  const salt = dv.getBigUint64(8, true);
  if (salt === 0n) throw new Error('micro ZAP: salt is 0');
  const normflags = dv.getBigUint64(16, true);
  if (normflags !== 0n) throw new Error(`micro ZAP: normflags 0x${normflags.toString(16)} not supported`);
  const [shi, slo] = saltHalves(salt);

  const nchunks = block.length / MZAP_ENT_LEN - 1;
  const entries: (ZapDecodedEntry & { h28: number })[] = [];
  for (let slot = 0; slot < nchunks; slot++) {
    const off = MZAP_HDR_LEN + slot * MZAP_ENT_LEN;
    if (block[off + MZE_NAME] === 0) continue;
    const field = block.subarray(off + MZE_NAME, off + MZE_NAME + MZAP_NAME_LEN);
    const len = field.indexOf(0);
    if (len < 0) throw new Error(`micro ZAP: slot ${slot}: name is not NUL-terminated`);
    const name = field.slice(0, len);
    const cd = dv.getUint32(off + MZE_CD, true);
    if (cd > 0xffff) throw new Error(`micro ZAP: slot ${slot}: cd ${cd} exceeds 0xffff`);
    const h28 = zapHash28(shi, slo, name);
    entries.push({
      name,
      value: { intLen: 8, ints: [dv.getBigUint64(off + MZE_VALUE, true)] },
      hash: hash28To64(h28),
      cd,
      h28,
    });
  }
  entries.sort((a, b) => a.h28 - b.h28 || a.cd - b.cd);
  for (let i = 1; i < entries.length; i++) {
    const a = entries[i - 1]!;
    const b = entries[i]!;
    if (a.h28 !== b.h28) continue;
    if (a.cd === b.cd) {
      throw new Error(
        `micro ZAP: names ${nameForError(a.name)} and ${nameForError(b.name)} share hash ` +
          `0x${a.hash.toString(16)} and cd ${a.cd} (OpenZFS would panic on load)`,
      );
    }
  }
  checkUniqueNames(entries, 'micro ZAP');
  return {
    kind: 'micro',
    blockSize: block.length,
    salt,
    numEntries: entries.length,
    entries: entries.map(({ name, value, hash, cd }) => ({ name, value, hash, cd })),
  };
}
