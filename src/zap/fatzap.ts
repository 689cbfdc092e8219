// Fat ZAP: block 0 is the header (zap_phys_t) whose second half is the
// embedded pointer table; blocks 1..L are leaves (zapleaf.ts); a pointer
// table too big for the header gets its own blocks after the leaves.
//
// The pointer table maps each zt_shift-bit hash prefix to the leaf holding
// it; a leaf with a shorter prefix owns the 2^(zt_shift - prefix_len)
// consecutive slots under its prefix. Leaves are split the way OpenZFS splits
// them, one hash bit at a time and only where the entries do not fit, so leaf
// depths differ across the hash space.
//
// Layout choices that differ from what OpenZFS would leave after a history of
// inserts, all of which its readers accept: leaves are numbered in prefix
// order, there are no holes (OpenZFS frees old pointer tables when it grows
// them), and the external table follows the leaves. The last point matters to
// the FreeBSD loader, whose directory listing assumes leaves are blocks
// 1..zap_num_leafs.

import { saltHalves } from './crc64.js';
import type { PackedEntries } from './packed.js';
import {
  ZAP_HASHBITS,
  ZAP_MAGIC,
  ZBT_HEADER,
  checkUniqueNames,
  nameForError,
  type ZapDecoded,
  type ZapDecodedEntry,
} from './types.js';
import {
  ZAP_LEAF_NUMCHUNKS_BS,
  decodeZapLeaf,
  encodeZapLeaf,
  packedEntryChunks,
  type DecodedLeaf,
} from './zapleaf.js';

/* zap_phys_t offsets */
const ZAP_BLOCK_TYPE = 0;
const ZAP_MAGIC_OFF = 8;
const ZT_BLK = 16;
const ZT_NUMBLKS = 24;
const ZT_SHIFT = 32;
const ZT_NEXTBLK = 40;
const ZT_BLKS_COPIED = 48;
const ZAP_FREEBLK = 56;
const ZAP_NUM_LEAFS = 64;
const ZAP_NUM_ENTRIES = 72;
const ZAP_SALT = 80;
const ZAP_NORMFLAGS = 88;
const ZAP_FLAGS = 96;

/** The embedded table fills the header's second half: 2^(bs-4) uint64 slots. */
export function ZAP_EMBEDDED_PTRTBL_SHIFT(bs: number): number {
  return bs - 3 - 1;
}

/**
 * zap_grow_ptrtbl() refuses to index the table with more than
 * ZAP_HASHBITS - 2 bits, so no leaf can be deeper than that.
 */
export const ZAP_MAX_PREFIX_LEN = ZAP_HASHBITS - 2;

export const FZAP_MIN_BLOCK_SHIFT = 9;
export const FZAP_MAX_BLOCK_SHIFT = 17;

export interface FatLeafPlan {
  /** Range of the sorted entry order this leaf holds. */
  from: number;
  to: number;
  prefix: number;
  prefixLen: number;
}

/**
 * Splits the hash-sorted entries into leaves. A range that does not fit in
 * one leaf is cut at the next hash bit; since the order is sorted by hash,
 * each cut is a binary search, and the whole plan is O(n log n).
 */
export function planFatLeaves(p: PackedEntries, bs: number): FatLeafPlan[] {
  const { n, order, h28 } = p;
  const cum = new Float64Array(n + 1);
  for (let k = 0; k < n; k++) cum[k + 1] = cum[k]! + packedEntryChunks(p, order[k]!);
  const capacity = ZAP_LEAF_NUMCHUNKS_BS(bs);
  const leaves: FatLeafPlan[] = [];
  const split = (lo: number, hi: number, prefix: number, len: number): void => {
    if (cum[hi]! - cum[lo]! <= capacity) {
      leaves.push({ from: lo, to: hi, prefix, prefixLen: len });
      return;
    }
    if (len >= ZAP_MAX_PREFIX_LEN) {
      throw new Error(
        `fat ZAP: entries under hash prefix ${prefix}/${len} need ${cum[hi]! - cum[lo]!} chunks, ` +
          `more than one ${1 << bs}-byte leaf holds, and the prefix cannot grow further`,
      );
    }
    const bit = ZAP_HASHBITS - 1 - len;
    let a = lo;
    let b = hi;
    while (a < b) {
      const m = (a + b) >>> 1;
      if ((h28[order[m]!]! >>> bit) & 1) b = m;
      else a = m + 1;
    }
    split(lo, a, prefix * 2, len + 1);
    split(a, hi, prefix * 2 + 1, len + 1);
  };
  split(0, n, 0, 0);
  return leaves;
}

export interface FatEncoded {
  blockSize: number;
  blocks: Uint8Array[];
  numLeafs: number;
  ptrtblShift: number;
}

/**
 * A fat ZAP laid out (leaves planned, pointer table sized) whose blocks are
 * encoded one at a time: a directory of tens of thousands of entries is
 * megabytes of leaves, and a writer that takes them in block order needs
 * only one at once (see dmu/zapobject.ts).
 */
export interface FatZapPlan {
  blockSize: number;
  /** Blocks in all: the header, the leaves, the external pointer table's. */
  total: number;
  numLeafs: number;
  ptrtblShift: number;
  /** Encode block `b` into `into` (blockSize bytes, all zero). */
  encodeBlock(b: number, into: Uint8Array): void;
}

/** Plans the fat ZAP of p with 2^bs-byte blocks; every entry must fit in a leaf. */
export function planFatZap(p: PackedEntries, salt: bigint, bs: number): FatZapPlan {
  saltHalves(salt);
  if (!Number.isInteger(bs) || bs < FZAP_MIN_BLOCK_SHIFT || bs > FZAP_MAX_BLOCK_SHIFT) {
    throw new RangeError(`fat ZAP block shift ${bs} outside ${FZAP_MIN_BLOCK_SHIFT}..${FZAP_MAX_BLOCK_SHIFT}`);
  }
  const capacity = ZAP_LEAF_NUMCHUNKS_BS(bs);
  for (let i = 0; i < p.n; i++) {
    const c = packedEntryChunks(p, i);
    if (c > capacity) {
      const name = p.names.subarray(p.nameOff[i]!, p.nameOff[i + 1]!);
      throw new RangeError(`ZAP entry ${nameForError(name)} needs ${c} chunks, a ${1 << bs}-byte leaf has ${capacity}`);
    }
  }
  const leaves = planFatLeaves(p, bs);
  const embeddedShift = ZAP_EMBEDDED_PTRTBL_SHIFT(bs);
  let maxLen = 0;
  for (const l of leaves) maxLen = Math.max(maxLen, l.prefixLen);
  // OpenZFS starts with the embedded table (fzap_upgrade) and only ever doubles it.
  const shift = Math.max(embeddedShift, maxLen);
  // The first doubling moves the table to one block; each later one doubles the blocks.
  const ptrBlks = shift > embeddedShift ? 2 ** (shift - embeddedShift - 1) : 0;

  const bsize = 1 << bs;
  const numLeafs = leaves.length;
  const total = 1 + numLeafs + ptrBlks;
  const slotsPerBlock = bsize / 8;

  // Leaves are numbered in prefix order, so their slot ranges follow one
  // another and cover the table: leaf k owns [ends[k-1], ends[k]).
  const ends = new Float64Array(numLeafs);
  for (let k = 0; k < numLeafs; k++) {
    const l = leaves[k]!;
    ends[k] = (l.prefix + 1) * 2 ** (shift - l.prefixLen);
  }
  /** Point the table's slots [from, to) at their leaves, the table's slot `base` at byte `off` of `dv`. */
  const fillTable = (dv: DataView, off: number, base: number, from: number, to: number): void => {
    // the first leaf ending past `from`
    let lo = 0, hi = numLeafs - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ends[mid]! > from) hi = mid;
      else lo = mid + 1;
    }
    for (let k = lo, s = from; k < numLeafs && s < to; k++) {
      for (const end = Math.min(ends[k]!, to); s < end; s++) dv.setUint32(off + 8 * (s - base), 1 + k, true);
    }
  };

  const encodeBlock = (b: number, into: Uint8Array): void => {
    if (into.length !== bsize) throw new RangeError(`fat ZAP block ${b} into ${into.length} bytes, not ${bsize}`);
    const dv = new DataView(into.buffer, into.byteOffset, bsize);
    if (b === 0) {
      dv.setBigUint64(ZAP_BLOCK_TYPE, ZBT_HEADER, true);
      dv.setBigUint64(ZAP_MAGIC_OFF, ZAP_MAGIC, true);
      dv.setBigUint64(ZT_BLK, BigInt(ptrBlks ? 1 + numLeafs : 0), true);
      dv.setBigUint64(ZT_NUMBLKS, BigInt(ptrBlks), true);
      dv.setBigUint64(ZT_SHIFT, BigInt(shift), true);
      dv.setBigUint64(ZT_NEXTBLK, 0n, true);
      dv.setBigUint64(ZT_BLKS_COPIED, 0n, true);
      dv.setBigUint64(ZAP_FREEBLK, BigInt(total), true);
      dv.setBigUint64(ZAP_NUM_LEAFS, BigInt(numLeafs), true);
      dv.setBigUint64(ZAP_NUM_ENTRIES, BigInt(p.n), true);
      dv.setBigUint64(ZAP_SALT, salt, true);
      dv.setBigUint64(ZAP_NORMFLAGS, 0n, true);
      dv.setBigUint64(ZAP_FLAGS, 0n, true);
      if (ptrBlks === 0) fillTable(dv, bsize / 2, 0, 0, 2 ** shift);
    } else if (b <= numLeafs) {
      const l = leaves[b - 1]!;
      encodeZapLeaf({ block: into, bs, prefix: l.prefix, prefixLen: l.prefixLen, p, from: l.from, to: l.to });
    } else if (b < total) {
      const base = (b - 1 - numLeafs) * slotsPerBlock;
      fillTable(dv, 0, base, base, base + slotsPerBlock);
    } else {
      throw new RangeError(`fat ZAP block ${b} of ${total}`);
    }
  };
  return { blockSize: bsize, total, numLeafs, ptrtblShift: shift, encodeBlock };
}

/** Writes the fat ZAP of p with 2^bs-byte blocks; every entry must fit in a leaf. */
export function encodeFatZap(p: PackedEntries, salt: bigint, bs: number): FatEncoded {
  const plan = planFatZap(p, salt, bs);
  const bsize = plan.blockSize;
  const buf = new Uint8Array(plan.total * bsize);
  const blocks: Uint8Array[] = [];
  for (let b = 0; b < plan.total; b++) {
    const block = buf.subarray(b * bsize, (b + 1) * bsize);
    plan.encodeBlock(b, block);
    blocks.push(block);
  }
  return { blockSize: bsize, blocks, numLeafs: plan.numLeafs, ptrtblShift: plan.ptrtblShift };
}

function log2Exact(n: number): number {
  const l = Math.log2(n);
  return Number.isInteger(l) ? l : -1;
}

function u64num(dv: DataView, off: number, what: string): number {
  const v = dv.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`fat ZAP: ${what} ${v} is implausibly large`);
  return Number(v);
}

/**
 * Reads and checks a fat ZAP: header, pointer table (each leaf owns exactly
 * the aligned slot range of its prefix), every leaf (decodeZapLeaf), and the
 * header's counts. `readBlock(i)` returns ZAP block i.
 */
export function decodeFatZap(readBlock: (blkid: number) => Uint8Array, first: Uint8Array): ZapDecoded {
  const bsize = first.length;
  const bs = log2Exact(bsize);
  if (bs < FZAP_MIN_BLOCK_SHIFT || bs > 20) throw new Error(`fat ZAP: block size ${bsize} is not a power of two in 512..1M`);
  const hdr = new DataView(first.buffer, first.byteOffset, first.byteLength);
  const type = hdr.getBigUint64(ZAP_BLOCK_TYPE, true);
  if (type !== ZBT_HEADER) throw new Error(`fat ZAP: block type 0x${type.toString(16)} is not ZBT_HEADER`);
  const magic = hdr.getBigUint64(ZAP_MAGIC_OFF, true);
  if (magic !== ZAP_MAGIC) throw new Error(`fat ZAP: zap_magic 0x${magic.toString(16)} is not ZAP_MAGIC`);
  const flags = hdr.getBigUint64(ZAP_FLAGS, true);
  if (flags !== 0n) throw new Error(`fat ZAP: zap_flags 0x${flags.toString(16)} not supported (only string keys, 28-bit hashes)`);
  const normflags = hdr.getBigUint64(ZAP_NORMFLAGS, true);
  if (normflags !== 0n) throw new Error(`fat ZAP: zap_normflags 0x${normflags.toString(16)} not supported`);
  const salt = hdr.getBigUint64(ZAP_SALT, true);
  if (salt === 0n) throw new Error('fat ZAP: zap_salt is 0');
  const [shi, slo] = saltHalves(salt);

  const ztBlk = u64num(hdr, ZT_BLK, 'zt_blk');
  const ztNumBlks = u64num(hdr, ZT_NUMBLKS, 'zt_numblks');
  const shift = u64num(hdr, ZT_SHIFT, 'zt_shift');
  const freeBlk = u64num(hdr, ZAP_FREEBLK, 'zap_freeblk');
  const numLeafs = u64num(hdr, ZAP_NUM_LEAFS, 'zap_num_leafs');
  const numEntries = u64num(hdr, ZAP_NUM_ENTRIES, 'zap_num_entries');
  const embeddedShift = ZAP_EMBEDDED_PTRTBL_SHIFT(bs);

  // A non-zero zt_nextblk means OpenZFS was midway through doubling the
  // table; the old copy stays complete, so reading it is what OpenZFS does.
  let table: DataView;
  const isPtrtbl = (b: number): boolean => ztNumBlks > 0 && b >= ztBlk && b < ztBlk + ztNumBlks;
  if (ztNumBlks === 0) {
    if (ztBlk !== 0) throw new Error(`fat ZAP: zt_blk ${ztBlk} with zt_numblks 0`);
    if (shift !== embeddedShift) throw new Error(`fat ZAP: embedded pointer table needs zt_shift ${embeddedShift}, found ${shift}`);
    table = new DataView(first.buffer, first.byteOffset + bsize / 2, bsize / 2);
  } else {
    const nb = log2Exact(ztNumBlks);
    if (nb < 0 || shift !== nb + bs - 3) {
      throw new Error(`fat ZAP: zt_shift ${shift} does not index ${ztNumBlks} table blocks of ${bsize / 8} entries`);
    }
    if (shift > ZAP_MAX_PREFIX_LEN) throw new Error(`fat ZAP: zt_shift ${shift} exceeds ${ZAP_MAX_PREFIX_LEN}`);
    if (ztBlk < 1 || ztBlk + ztNumBlks > freeBlk) {
      throw new Error(`fat ZAP: pointer table blocks ${ztBlk}..${ztBlk + ztNumBlks - 1} outside 1..${freeBlk - 1}`);
    }
    const raw = new Uint8Array(ztNumBlks * bsize);
    for (let b = 0; b < ztNumBlks; b++) {
      const blk = readBlock(ztBlk + b);
      if (blk.length !== bsize) throw new Error(`fat ZAP: block ${ztBlk + b} is ${blk.length} bytes, expected ${bsize}`);
      raw.set(blk, b * bsize);
    }
    table = new DataView(raw.buffer);
  }

  const nslots = 2 ** shift;
  const seen = new Set<number>();
  const entries: ZapDecodedEntry[] = [];
  for (let idx = 0; idx < nslots; ) {
    const blkBig = table.getBigUint64(8 * idx, true);
    const blk = Number(blkBig);
    const where = `fat ZAP pointer ${idx} -> block ${blkBig}`;
    if (blkBig < 1n || blkBig >= BigInt(freeBlk)) throw new Error(`${where}: outside 1..${freeBlk - 1}`);
    if (isPtrtbl(blk)) throw new Error(`${where}: that block holds the pointer table`);
    if (seen.has(blk)) throw new Error(`${where}: leaf already referenced by a different slot range`);
    seen.add(blk);
    const data = readBlock(blk);
    const leaf: DecodedLeaf = decodeZapLeaf(data, bs, shi, slo, `fat ZAP leaf block ${blk}`);
    if (leaf.prefixLen > shift) throw new Error(`${where}: leaf prefix_len ${leaf.prefixLen} exceeds zt_shift ${shift}`);
    const span = 2 ** (shift - leaf.prefixLen);
    if (leaf.prefix * span !== idx) {
      throw new Error(`${where}: leaf prefix ${leaf.prefix}/${leaf.prefixLen} does not own slot ${idx}`);
    }
    for (let s = idx + 1; s < idx + span; s++) {
      if (table.getBigUint64(8 * s, true) !== blkBig) {
        throw new Error(`fat ZAP pointer ${s}: expected block ${blk} (prefix ${leaf.prefix}/${leaf.prefixLen})`);
      }
    }
    for (const e of leaf.entries) entries.push(e);
    idx += span;
  }

  if (seen.size !== numLeafs) throw new Error(`fat ZAP: zap_num_leafs is ${numLeafs} but the table reaches ${seen.size} leaves`);
  if (entries.length !== numEntries) {
    throw new Error(`fat ZAP: zap_num_entries is ${numEntries} but the leaves hold ${entries.length}`);
  }
  checkUniqueNames(entries, 'fat ZAP');
  const unusedBlocks: number[] = [];
  for (let b = 1; b < freeBlk; b++) if (!seen.has(b) && !isPtrtbl(b)) unusedBlocks.push(b);
  return {
    kind: 'fat',
    blockSize: bsize,
    salt,
    numEntries,
    entries,
    fat: { freeBlk, numLeafs, ptrtblShift: shift, ptrtblBlk: ztBlk, ptrtblNumBlks: ztNumBlks, unusedBlocks },
  };
}
