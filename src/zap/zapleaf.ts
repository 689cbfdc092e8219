// Fat-ZAP leaf block (zap_leaf_phys_t): a 48-byte header, a hash table of
// 2^(bs-5) uint16 chain heads, then 24-byte chunks. Each entry takes an entry
// chunk plus array chunks (21 payload bytes each) for its NUL-terminated name
// and for its value, whose integers are stored big-endian whatever the host
// order. Unused chunks are all on the free list.
//
// Chains are kept sorted by cd the way zap_leaf_rehash_entry() keeps them;
// lh_flags stays 0 because OpenZFS only sets ZLF_ENTRIES_CDSORTED on
// normalizing ZAPs (zap_leaf_init(l, normflags != 0)).

import { hash28To64, zapHash28 } from './crc64.js';
import {
  ZAP_HASHBITS,
  ZAP_LEAF_MAGIC,
  ZAP_MAXNAMELEN_NEW,
  ZAP_MAXVALUELEN,
  ZBT_LEAF,
  nameForError,
  type ZapDecodedEntry,
  type ZapIntLen,
} from './types.js';
import type { PackedEntries } from './packed.js';

export const ZAP_LEAF_CHUNKSIZE = 24;
export const ZAP_LEAF_ARRAY_BYTES = ZAP_LEAF_CHUNKSIZE - 3;
export const CHAIN_END = 0xffff;
export const ZAP_CHUNK_FREE = 253;
export const ZAP_CHUNK_ENTRY = 252;
export const ZAP_CHUNK_ARRAY = 251;
export const ZLF_ENTRIES_CDSORTED = 1;

const LEAF_HDR_LEN = 2 * ZAP_LEAF_CHUNKSIZE;
/* zap_leaf_header offsets */
const LH_BLOCK_TYPE = 0;
const LH_PAD1 = 8;
const LH_PREFIX = 16;
const LH_MAGIC = 24;
const LH_NFREE = 28;
const LH_NENTRIES = 30;
const LH_PREFIX_LEN = 32;
const LH_FREELIST = 34;
const LH_FLAGS = 36;
/* zap_leaf_entry offsets within a chunk */
const LE_TYPE = 0;
const LE_VALUE_INTLEN = 1;
const LE_NEXT = 2;
const LE_NAME_CHUNK = 4;
const LE_NAME_NUMINTS = 6;
const LE_VALUE_CHUNK = 8;
const LE_VALUE_NUMINTS = 10;
const LE_CD = 12;
const LE_HASH = 16;
/* zap_leaf_array / zap_leaf_free: type at 0, payload at 1, next at 22 */
const LA_ARRAY = 1;
const LA_NEXT = 22;

export function ZAP_LEAF_HASH_SHIFT_BS(bs: number): number {
  return bs - 5;
}

export function ZAP_LEAF_HASH_NUMENTRIES_BS(bs: number): number {
  return 1 << ZAP_LEAF_HASH_SHIFT_BS(bs);
}

/** Chunks after the header (2 chunks' worth) and the hash table. */
export function ZAP_LEAF_NUMCHUNKS_BS(bs: number): number {
  return Math.floor(((1 << bs) - 2 * ZAP_LEAF_HASH_NUMENTRIES_BS(bs)) / ZAP_LEAF_CHUNKSIZE) - 2;
}

export function ZAP_LEAF_ARRAY_NCHUNKS(bytes: number): number {
  return Math.ceil(bytes / ZAP_LEAF_ARRAY_BYTES);
}

/** Chunks one entry takes: entry chunk, name with its NUL, value. */
export function zapEntryChunks(nameLen: number, valueBytes: number): number {
  return 1 + ZAP_LEAF_ARRAY_NCHUNKS(nameLen + 1) + ZAP_LEAF_ARRAY_NCHUNKS(valueBytes);
}

/**
 * LEAF_HASH(): the hash bits right below the leaf's prefix pick the chain.
 * h28 is the kept hash (64-bit hash >> 36); bits the 28-bit hash does not have
 * are zero, and the mask keeps only low bits, so 32-bit shifts are exact.
 */
export function leafHashSlot(h28: number, prefixLen: number, bs: number): number {
  const hashShift = ZAP_LEAF_HASH_SHIFT_BS(bs);
  const s = ZAP_HASHBITS - hashShift - prefixLen;
  const v = s >= 0 ? h28 >>> s : h28 << -s;
  return v & ((1 << hashShift) - 1);
}

function chunkOffset(bs: number, chunk: number): number {
  return LEAF_HDR_LEN + 2 * ZAP_LEAF_HASH_NUMENTRIES_BS(bs) + chunk * ZAP_LEAF_CHUNKSIZE;
}

const scratch = new Uint8Array(Math.max(ZAP_MAXVALUELEN, ZAP_MAXNAMELEN_NEW));
const EMPTY = new Uint8Array(0);
const scratchDv = new DataView(scratch.buffer);

/**
 * Copies len bytes of src[from..] into chunks first, first+1, ... and returns
 * the next free chunk; bytes past srcEnd are the name's NUL.
 */
function writeArray(
  block: Uint8Array,
  dv: DataView,
  base: number,
  first: number,
  src: Uint8Array,
  from: number,
  srcEnd: number,
  len: number,
): number {
  let chunk = first;
  let s = from;
  for (let off = 0; off < len; off += ZAP_LEAF_ARRAY_BYTES) {
    const c = base + chunk * ZAP_LEAF_CHUNKSIZE;
    block[c] = ZAP_CHUNK_ARRAY;
    const end = Math.min(len, off + ZAP_LEAF_ARRAY_BYTES);
    // A byte loop: a subarray view per chunk costs more than 21 stores.
    for (let d = c + LA_ARRAY, b = off; b < end; b++, d++, s++) block[d] = s < srcEnd ? src[s]! : 0;
    chunk++;
    dv.setUint16(c + LA_NEXT, end < len ? chunk : CHAIN_END, true);
  }
  return chunk;
}

/** Chunks entry i of p takes in a leaf. */
export function packedEntryChunks(p: PackedEntries, i: number): number {
  return zapEntryChunks(p.nameOff[i + 1]! - p.nameOff[i]!, p.valueOff[i + 1]! - p.valueOff[i]!);
}

export interface LeafEncodeInput {
  /** The leaf's block, zero-filled, exactly 1 << bs bytes. */
  block: Uint8Array;
  bs: number;
  prefix: number;
  prefixLen: number;
  p: PackedEntries;
  /** This leaf holds p.order[from..to). */
  from: number;
  to: number;
}

/**
 * Writes one leaf. Chunks are handed out in entry order (entry, name, value),
 * as zap_entry_create() takes them from a fresh free list; the caller has
 * checked that they fit.
 */
export function encodeZapLeaf(inp: LeafEncodeInput): void {
  const { block, bs, prefix, prefixLen, p, from, to } = inp;
  const { order, h28, cd, names, nameOff, values, valueOff, intLen } = p;
  const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const numChunks = ZAP_LEAF_NUMCHUNKS_BS(bs);
  const numHash = ZAP_LEAF_HASH_NUMENTRIES_BS(bs);
  const base = LEAF_HDR_LEN + 2 * numHash;

  let next = 0;
  const n = to - from;
  const entryChunk = new Uint16Array(n);
  let anyCd = false;
  for (let k = 0; k < n; k++) {
    const i = order[from + k]!;
    const c = base + next * ZAP_LEAF_CHUNKSIZE;
    entryChunk[k] = next++;
    const ns = nameOff[i]!;
    const ne = nameOff[i + 1]!;
    const nameLen = ne - ns + 1;
    const nameChunk = next;
    next = writeArray(block, dv, base, next, names, ns, ne, nameLen);
    const vs = valueOff[i]!;
    const vbytes = valueOff[i + 1]! - vs;
    const valueChunk = vbytes > 0 ? next : CHAIN_END;
    next = writeArray(block, dv, base, next, values, vs, vs + vbytes, vbytes);
    if (next > numChunks) throw new Error('internal: leaf overfilled');
    block[c + LE_TYPE] = ZAP_CHUNK_ENTRY;
    block[c + LE_VALUE_INTLEN] = intLen[i]!;
    dv.setUint16(c + LE_NAME_CHUNK, nameChunk, true);
    dv.setUint16(c + LE_NAME_NUMINTS, nameLen, true);
    dv.setUint16(c + LE_VALUE_CHUNK, valueChunk, true);
    dv.setUint16(c + LE_VALUE_NUMINTS, vbytes / intLen[i]!, true);
    dv.setUint32(c + LE_CD, cd[i]!, true);
    dv.setUint32(c + LE_HASH + 4, (h28[i]! << (32 - ZAP_HASHBITS)) >>> 0, true);
    if (cd[i]! !== 0) anyCd = true;
  }

  // Chains in ascending cd (hash order among equal cds): link back to front.
  let ord: number[] | null = null;
  if (anyCd) {
    ord = Array.from({ length: n }, (_, k) => k);
    ord.sort((a, b) => cd[order[from + a]!]! - cd[order[from + b]!]! || a - b);
  }
  const hashTab = LEAF_HDR_LEN;
  block.fill(0xff, hashTab, hashTab + 2 * numHash);
  for (let r = n - 1; r >= 0; r--) {
    const k = ord ? ord[r]! : r;
    const slot = leafHashSlot(h28[order[from + k]!]!, prefixLen, bs);
    const c = base + entryChunk[k]! * ZAP_LEAF_CHUNKSIZE;
    dv.setUint16(c + LE_NEXT, dv.getUint16(hashTab + 2 * slot, true), true);
    dv.setUint16(hashTab + 2 * slot, entryChunk[k]!, true);
  }

  const firstFree = next;
  for (let f = firstFree; f < numChunks; f++) {
    const c = base + f * ZAP_LEAF_CHUNKSIZE;
    block[c] = ZAP_CHUNK_FREE;
    dv.setUint16(c + LA_NEXT, f + 1 < numChunks ? f + 1 : CHAIN_END, true);
  }

  dv.setBigUint64(LH_BLOCK_TYPE, ZBT_LEAF, true);
  dv.setUint32(LH_PREFIX, prefix >>> 0, true);
  dv.setUint32(LH_PREFIX + 4, Math.floor(prefix / 0x100000000), true);
  dv.setUint32(LH_MAGIC, ZAP_LEAF_MAGIC, true);
  dv.setUint16(LH_NFREE, numChunks - firstFree, true);
  dv.setUint16(LH_NENTRIES, n, true);
  dv.setUint16(LH_PREFIX_LEN, prefixLen, true);
  dv.setUint16(LH_FREELIST, firstFree < numChunks ? firstFree : CHAIN_END, true);
  block[LH_FLAGS] = 0;
}

export interface DecodedLeaf {
  prefix: number;
  prefixLen: number;
  flags: number;
  nfree: number;
  /** Ascending (hash, cd). */
  entries: ZapDecodedEntry[];
}

/**
 * Reads one leaf and checks everything a reader relies on: header, every
 * chain and chunk index, chunk types, that each chunk is used exactly once
 * (entries, their arrays, and the free list together cover the leaf), the
 * counts, hash-slot placement, prefix, stored hash against the name, and
 * (hash, cd) uniqueness. `where` prefixes error messages.
 */
export function decodeZapLeaf(block: Uint8Array, bs: number, saltHi: number, saltLo: number, where: string): DecodedLeaf {
  if (block.length !== 1 << bs) throw new Error(`${where}: block is ${block.length} bytes, expected ${1 << bs}`);
  const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg}`);
  };
  const type = dv.getBigUint64(LH_BLOCK_TYPE, true);
  if (type !== ZBT_LEAF) fail(`block type 0x${type.toString(16)} is not ZBT_LEAF`);
  if (dv.getBigUint64(LH_PAD1, true) !== 0n) fail('lh_pad1 is not 0 (chained leaves are not supported)');
  const magic = dv.getUint32(LH_MAGIC, true);
  if (magic !== ZAP_LEAF_MAGIC) fail(`lh_magic 0x${magic.toString(16)} is not ZAP_LEAF_MAGIC`);
  const prefixLen = dv.getUint16(LH_PREFIX_LEN, true);
  if (prefixLen > ZAP_HASHBITS) fail(`lh_prefix_len ${prefixLen} exceeds the ${ZAP_HASHBITS} hash bits`);
  const prefixBig = dv.getBigUint64(LH_PREFIX, true);
  if (prefixBig >= 1n << BigInt(prefixLen)) fail(`lh_prefix 0x${prefixBig.toString(16)} has more than ${prefixLen} bits`);
  const prefix = Number(prefixBig);
  const flags = block[LH_FLAGS]!;
  if (flags & ~ZLF_ENTRIES_CDSORTED) fail(`unknown lh_flags 0x${flags.toString(16)}`);
  const nfree = dv.getUint16(LH_NFREE, true);
  const nentries = dv.getUint16(LH_NENTRIES, true);
  const freelist = dv.getUint16(LH_FREELIST, true);

  const numChunks = ZAP_LEAF_NUMCHUNKS_BS(bs);
  const numHash = ZAP_LEAF_HASH_NUMENTRIES_BS(bs);
  const use = new Uint8Array(numChunks);
  // Where we are, for messages; built only when something fails.
  let slot = 0;
  let entryChunk = 0;
  let part = '';
  const at = (): string => `hash slot ${slot} entry chunk ${entryChunk}${part}`;
  const claim = (chunk: number, kind: number, what: () => string): number => {
    if (chunk >= numChunks) fail(`${what()}: chunk ${chunk} out of range (${numChunks} chunks)`);
    if (use[chunk] !== 0) fail(`${what()}: chunk ${chunk} is already in use (shared chunk or chain loop)`);
    use[chunk] = kind;
    return chunkOffset(bs, chunk);
  };
  // Reads an array chain into scratch; it must have exactly the chunks `len` bytes need.
  const readArray = (first: number, len: number): void => {
    let chunk = first;
    for (let off = 0; off < len; off += ZAP_LEAF_ARRAY_BYTES) {
      if (chunk === CHAIN_END) fail(`${at()}: array ends after ${off} of ${len} bytes`);
      const c = claim(chunk, 2, at);
      if (block[c] !== ZAP_CHUNK_ARRAY) fail(`${at()}: chunk ${chunk} has type ${block[c]}, expected ZAP_CHUNK_ARRAY`);
      const take = Math.min(ZAP_LEAF_ARRAY_BYTES, len - off);
      for (let b = 0; b < take; b++) scratch[off + b] = block[c + LA_ARRAY + b]!;
      chunk = dv.getUint16(c + LA_NEXT, true);
    }
    if (chunk !== CHAIN_END) fail(`${at()}: array of ${len} bytes does not end (next chunk ${chunk})`);
  };

  const found: ZapDecodedEntry[] = [];
  const foundH28: number[] = [];
  // Names are gathered in one leaf-sized arena and handed out as views of one
  // exact-size copy: an ArrayBuffer per name makes million-entry decodes crawl.
  const arena = new Uint8Array(block.length);
  const nameAt: number[] = [];
  let arenaLen = 0;
  for (slot = 0; slot < numHash; slot++) {
    let chunk = dv.getUint16(LEAF_HDR_LEN + 2 * slot, true);
    let lastCd = -1;
    while (chunk !== CHAIN_END) {
      entryChunk = chunk;
      part = '';
      const c = claim(chunk, 1, at);
      if (block[c + LE_TYPE] !== ZAP_CHUNK_ENTRY) fail(`${at()}: type ${block[c + LE_TYPE]}, expected ZAP_CHUNK_ENTRY`);
      const intLen = block[c + LE_VALUE_INTLEN]!;
      if (intLen !== 1 && intLen !== 2 && intLen !== 4 && intLen !== 8) fail(`${at()}: bad value int length ${intLen}`);
      const cd = dv.getUint32(c + LE_CD, true);
      const hashLo = dv.getUint32(c + LE_HASH, true);
      const hashHi = dv.getUint32(c + LE_HASH + 4, true);
      if (hashLo !== 0 || (hashHi & ((1 << (32 - ZAP_HASHBITS)) - 1)) !== 0) {
        fail(`${at()}: le_hash has bits below the top ${ZAP_HASHBITS}`);
      }
      const h28 = hashHi >>> (32 - ZAP_HASHBITS);
      if (leafHashSlot(h28, prefixLen, bs) !== slot) fail(`${at()}: hash 0x${hash28To64(h28).toString(16)} belongs in another slot`);
      if (prefixLen > 0 && h28 >>> (ZAP_HASHBITS - prefixLen) !== prefix) {
        fail(`${at()}: hash 0x${hash28To64(h28).toString(16)} does not match leaf prefix ${prefix}/${prefixLen}`);
      }
      if (flags & ZLF_ENTRIES_CDSORTED && cd < lastCd) fail(`${at()}: chain not sorted by cd though ZLF_ENTRIES_CDSORTED`);
      lastCd = cd;

      const nameLen = dv.getUint16(c + LE_NAME_NUMINTS, true);
      if (nameLen < 2 || nameLen > ZAP_MAXNAMELEN_NEW) fail(`${at()}: name length ${nameLen} (with NUL) out of range`);
      part = ' name';
      readArray(dv.getUint16(c + LE_NAME_CHUNK, true), nameLen);
      if (scratch[nameLen - 1] !== 0) fail(`${at()}: not NUL-terminated`);
      const name = scratch.subarray(0, nameLen - 1);
      if (name.indexOf(0) >= 0) fail(`${at()}: ${nameForError(name)} contains a NUL`);
      if (zapHash28(saltHi, saltLo, name) !== h28) fail(`${at()}: stored hash does not match ${nameForError(name)}`);
      arena.set(name, arenaLen);
      nameAt.push(arenaLen);
      arenaLen += name.length;

      part = ' value';
      const count = dv.getUint16(c + LE_VALUE_NUMINTS, true);
      const vbytes = count * intLen;
      if (vbytes > ZAP_MAXVALUELEN) fail(`${at()}: ${vbytes} bytes exceed ZAP_MAXVALUELEN`);
      readArray(dv.getUint16(c + LE_VALUE_CHUNK, true), vbytes);
      const ints = new Array<bigint>(count);
      for (let k = 0; k < count; k++) {
        const o = k * intLen;
        ints[k] =
          intLen === 8
            ? scratchDv.getBigUint64(o)
            : BigInt(intLen === 4 ? scratchDv.getUint32(o) : intLen === 2 ? scratchDv.getUint16(o) : scratch[o]!);
      }
      found.push({ name: EMPTY, value: { intLen: intLen as ZapIntLen, ints }, hash: hash28To64(h28), cd });
      foundH28.push(h28);
      chunk = dv.getUint16(c + LE_NEXT, true);
    }
  }
  if (found.length !== nentries) fail(`lh_nentries is ${nentries} but the chains hold ${found.length} entries`);

  let nFreeSeen = 0;
  for (let chunk = freelist; chunk !== CHAIN_END; ) {
    const c = claim(chunk, 3, () => 'free list');
    if (block[c] !== ZAP_CHUNK_FREE) fail(`free list: chunk ${chunk} has type ${block[c]}, expected ZAP_CHUNK_FREE`);
    nFreeSeen++;
    chunk = dv.getUint16(c + LA_NEXT, true);
  }
  if (nFreeSeen !== nfree) fail(`lh_nfree is ${nfree} but the free list holds ${nFreeSeen} chunks`);
  const orphan = use.indexOf(0);
  if (orphan >= 0) fail(`chunk ${orphan} is neither free nor reachable from an entry`);

  const names = arena.slice(0, arenaLen);
  for (let k = 0; k < found.length; k++) {
    const end = k + 1 < found.length ? nameAt[k + 1]! : arenaLen;
    found[k]!.name = names.subarray(nameAt[k]!, end);
  }
  const ord = Array.from(found, (_, k) => k);
  ord.sort((a, b) => foundH28[a]! - foundH28[b]! || found[a]!.cd - found[b]!.cd);
  const entries = ord.map((k) => found[k]!);
  for (let k = 1; k < ord.length; k++) {
    const a = ord[k - 1]!;
    const b = ord[k]!;
    if (foundH28[a] === foundH28[b] && found[a]!.cd === found[b]!.cd) {
      fail(`names ${nameForError(found[a]!.name)} and ${nameForError(found[b]!.name)} share hash and cd ${found[a]!.cd}`);
    }
  }
  return { prefix, prefixLen, flags, nfree, entries };
}
