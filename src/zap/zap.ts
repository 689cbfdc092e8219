// Whole-object ZAP building and reading: validates entries, hashes each name
// once, orders entries by (hash, name), hands out collision differentiators,
// picks micro or fat the way OpenZFS would end up after adding the same
// entries to a fresh ZAP, and dispatches decoding on the block type.
//
// Output depends only on the set of entries and the salt: names with equal
// hashes get cds 0, 1, 2... in bytewise name order, whatever the input order.

import { saltHalves, zapHash28 } from './crc64.js';
import { encodeFatZap, decodeFatZap, FZAP_MAX_BLOCK_SHIFT, FZAP_MIN_BLOCK_SHIFT } from './fatzap.js';
import { decodeMicroZap, encodeMicroZap, mzapBlockSize } from './microzap.js';
import {
  FZAP_DEFAULT_BLOCK_SHIFT,
  MZAP_MAX_SIZE,
  MZAP_NAME_LEN,
  SPA_MINBLOCKSIZE,
  SPA_OLD_MAXBLOCKSIZE,
  ZAP_MAXNAMELEN,
  ZBT_HEADER,
  ZBT_MICRO,
  checkName,
  compareBytes,
  nameForError,
  valueInfo,
  type ZapDecoded,
  type ZapEntry,
  type ZapImage,
  type ZapOptions,
} from './types.js';
import { ZAP_LEAF_ARRAY_NCHUNKS, ZAP_LEAF_NUMCHUNKS_BS, zapEntryChunks } from './zapleaf.js';

/** Sort keys pack the hash above the entry index, so this bounds the entry count. */
const INDEX_BITS = 25;
const INDEX_SPAN = 2 ** INDEX_BITS;

/** Leaf chunks a micro entry would take after an upgrade (MZAP_ENT_CHUNKS). */
const MZAP_ENT_CHUNKS = 1 + ZAP_LEAF_ARRAY_NCHUNKS(MZAP_NAME_LEN) + ZAP_LEAF_ARRAY_NCHUNKS(8);

export function buildZap(entries: readonly ZapEntry[], opts: ZapOptions): ZapImage {
  const [shi, slo] = saltHalves(opts.salt);
  if (opts.normflags !== undefined && opts.normflags !== 0) throw new RangeError('ZAP normflags other than 0 are not supported');
  const bs = opts.fatBlockShift ?? FZAP_DEFAULT_BLOCK_SHIFT;
  if (!Number.isInteger(bs) || bs < FZAP_MIN_BLOCK_SHIFT || bs > FZAP_MAX_BLOCK_SHIFT) {
    throw new RangeError(`fatBlockShift ${bs} outside ${FZAP_MIN_BLOCK_SHIFT}..${FZAP_MAX_BLOCK_SHIFT}`);
  }
  const microMax = opts.microMaxSize ?? SPA_OLD_MAXBLOCKSIZE;
  if (!Number.isInteger(microMax) || microMax < SPA_MINBLOCKSIZE) throw new RangeError(`microMaxSize ${microMax} too small`);
  // zap_get_micro_max_size(): rounded up to a sector, capped at MZAP_MAX_SIZE.
  const microLimit = Math.min(MZAP_MAX_SIZE, Math.ceil(microMax / SPA_MINBLOCKSIZE) * SPA_MINBLOCKSIZE);
  const rounding = opts.microBlockRounding ?? 'sector';

  const n = entries.length;
  if (n >= INDEX_SPAN) throw new RangeError(`too many ZAP entries (${n})`);
  const capacity = ZAP_LEAF_NUMCHUNKS_BS(bs);
  const h28 = new Uint32Array(n);
  const chunks = new Uint16Array(n);
  const cd = new Uint32Array(n);
  let micro = !opts.forceFat;
  for (let i = 0; i < n; i++) {
    const e = entries[i]!;
    if (e === null || typeof e !== 'object') throw new TypeError(`ZAP entry ${i}: not an entry`);
    checkName(e.name, ZAP_MAXNAMELEN - 1, 'ZAP entry');
    const info = valueInfo(e.value, e.name);
    if (!info.single || e.name.length >= MZAP_NAME_LEN) micro = false;
    const c = zapEntryChunks(e.name.length, info.intLen * info.count);
    if (c > capacity) {
      throw new RangeError(`ZAP entry ${nameForError(e.name)} needs ${c} chunks, a ${1 << bs}-byte leaf has ${capacity}`);
    }
    chunks[i] = c;
    h28[i] = zapHash28(shi, slo, e.name);
  }

  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = h28[i]! * INDEX_SPAN + i;
  keys.sort();
  const order = new Uint32Array(n);
  for (let k = 0; k < n; k++) order[k] = keys[k]! % INDEX_SPAN;

  let maxRun = n > 0 ? 1 : 0;
  for (let k = 0; k < n; ) {
    const h = h28[order[k]!]!;
    let j = k + 1;
    while (j < n && h28[order[j]!] === h) j++;
    if (j - k > 1) {
      const run = Array.from(order.subarray(k, j));
      run.sort((a, b) => compareBytes(entries[a]!.name, entries[b]!.name));
      for (let r = 0; r < run.length; r++) {
        if (r > 0 && compareBytes(entries[run[r - 1]!]!.name, entries[run[r]!]!.name) === 0) {
          throw new Error(`duplicate ZAP name ${nameForError(entries[run[r]!]!.name)}`);
        }
        order[k + r] = run[r]!;
        cd[run[r]!] = r;
      }
      maxRun = Math.max(maxRun, j - k);
    }
    k = j;
  }

  const microSize = mzapBlockSize(n, rounding);
  // mze_canfit_fzap_leaf(): OpenZFS upgrades rather than let one hash value
  // gather more entries than a fat leaf could take after a later upgrade.
  if (micro && microSize <= microLimit && maxRun * MZAP_ENT_CHUNKS < capacity) {
    const block = encodeMicroZap(entries, order, cd, opts.salt, microSize);
    return { kind: 'micro', blockSize: microSize, blocks: [block], numEntries: n };
  }
  const fat = encodeFatZap({ entries, order, h28, cd, chunks, salt: opts.salt, bs });
  return { kind: 'fat', blockSize: fat.blockSize, blocks: fat.blocks, numEntries: n };
}

/**
 * Reads a ZAP object given its block 0 and a way to read its other blocks,
 * throwing on anything OpenZFS would reject or mis-read.
 */
export function decodeZap(readBlock: (blkid: number) => Uint8Array, firstBlock: Uint8Array): ZapDecoded {
  if (firstBlock.length < 16) throw new Error(`ZAP block of ${firstBlock.length} bytes is too short`);
  const type = new DataView(firstBlock.buffer, firstBlock.byteOffset, 8).getBigUint64(0, true);
  if (type === ZBT_MICRO) return decodeMicroZap(firstBlock);
  if (type === ZBT_HEADER) return decodeFatZap(readBlock, firstBlock);
  throw new Error(`not a ZAP: block type 0x${type.toString(16)} is neither ZBT_MICRO nor ZBT_HEADER`);
}
