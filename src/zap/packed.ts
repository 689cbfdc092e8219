// Entries as the encoders consume them: validated once, hashed once, names
// and big-endian values copied into two contiguous buffers, and an order by
// (hash, name) with collision differentiators assigned.
//
// Packing is a locality decision: a million-entry directory visited in hash
// order would otherwise chase three pointers per entry through a scattered
// heap (entry object, name array, its bytes), which costs more than the
// encoding itself.

import { saltHalves, zapHash28 } from './crc64.js';
import { ZAP_MAXVALUELEN, checkName, nameForError, valueInfo, writeValueBE, type ZapEntry } from './types.js';
import { u32be } from '../util/endian.js';

export interface PackedEntries {
  n: number;
  /** Name of entry i: names[nameOff[i] .. nameOff[i + 1]), no NUL. */
  names: Uint8Array;
  nameOff: Uint32Array;
  /** Value of entry i as stored in fat leaves: integers big-endian, back to back. */
  values: Uint8Array;
  valueOff: Uint32Array;
  intLen: Uint8Array;
  /** Kept hash bits (64-bit hash >> 36). */
  h28: Uint32Array;
  /** Collision differentiator: rank of the name among names with the same hash. */
  cd: Uint32Array;
  /** Entry indices ascending by (hash, cd). */
  order: Uint32Array;
  /** Every value is one uint64 (micro-ZAP material). */
  allSingle: boolean;
  maxNameLen: number;
  /** Most names sharing one hash. */
  maxCollisions: number;
}

/** Sort keys pack the hash above the entry index, so this bounds the entry count. */
const INDEX_SPAN = 2 ** 25;

/**
 * Scratch arrays are kept from one directory to the next up to this many
 * bytes each; one grown past it for a large directory goes at the next
 * start over. A build met /usr/share/man/man1 (17.9k entries) and kept
 * ~3 MB of scratch for it, at the peak, for no other directory.
 */
const SCRATCH_KEEP = 256 * 1024;

class Grower {
  buf: Uint8Array;
  len = 0;
  constructor(private readonly initial: number) {
    this.buf = new Uint8Array(Math.max(64, initial));
  }
  /** Start over (the bytes stay allocated for the next directory, up to SCRATCH_KEEP). */
  reset(): this {
    this.len = 0;
    if (this.buf.length > SCRATCH_KEEP) this.buf = new Uint8Array(Math.max(64, this.initial));
    return this;
  }
  /**
   * Room for `total` bytes in all, in one array of that size, when the
   * whole is known before anything is put in: doubling to it would leave
   * each smaller array behind as garbage, and up to twice the room.
   */
  presize(total: number): void {
    if (this.len !== 0) throw new Error('presize after bytes were put in');
    if (total > this.buf.length) this.buf = new Uint8Array(total);
  }
  reserve(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + extra) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.len));
    this.buf = nb;
  }
}

// One value at a time is encoded here (packEntries is not re-entered): a
// new 8 KiB array per directory was most of what packing a tree allocated.
const valueScratch = new Uint8Array(ZAP_MAXVALUELEN);
const valueScratchDv = new DataView(valueScratch.buffer);

// The packed arrays are scratch too, grown as needed and handed out as views:
// a PackedEntries is only valid until the next call (buildZap encodes it at
// once). Arrays of their own per directory were garbage outside the JS heap,
// which V8 frees only at its next collection: over a tree's thousands of
// directories they piled up by tens of MB.
const namesScratch = new Grower(4096);
const valuesScratch = new Grower(4096);
let u32Scratch = new Uint32Array(0);
let u8Scratch = new Uint8Array(0);
let f64Scratch = new Float64Array(0);

interface ScratchViews { nameOff: Uint32Array; valueOff: Uint32Array; h28: Uint32Array; order: Uint32Array; cd: Uint32Array; intLen: Uint8Array; keys: Float64Array }

/** The scratch arrays for n entries, cleared (grown first if need be). */
function scratchArrays(n: number): ScratchViews {
  const need = 5 * (n + 1);
  if (u32Scratch.byteLength > SCRATCH_KEEP) {
    // (all three are grown for the same directory: they go together)
    u32Scratch = new Uint32Array(0);
    u8Scratch = new Uint8Array(0);
    f64Scratch = new Float64Array(0);
  }
  if (u32Scratch.length < need || u8Scratch.length < n || f64Scratch.length < n) {
    // all three together, so that a new u32Scratch tells the views kept of them to go
    u32Scratch = new Uint32Array(Math.max(need, 2 * u32Scratch.length));
    u8Scratch = new Uint8Array(Math.max(n, 2 * u8Scratch.length));
    f64Scratch = new Float64Array(Math.max(n, 2 * f64Scratch.length));
  }
  u32Scratch.fill(0, 0, need);
  return scratchViews(n);
}

// Views made before, by entry count, while the arrays they view stay the
// same: ten new views for every directory (packing one asks twice) were
// ~23 MB of /usr's objects pass. Kept for the small counts most
// directories have.
const VIEWS_KEPT = 64;
let keptViews: (ScratchViews | undefined)[] = [];
let keptViewsOf: Uint32Array | null = null;

/** The same views, as they are. */
function scratchViews(n: number): ScratchViews {
  // (the three arrays are only ever replaced when u32Scratch is: see scratchArrays)
  if (keptViewsOf !== u32Scratch) {
    keptViews = [];
    keptViewsOf = u32Scratch;
  }
  if (n >= VIEWS_KEPT) return makeScratchViews(n);
  return (keptViews[n] ??= makeScratchViews(n));
}

function makeScratchViews(n: number): ScratchViews {
  const part = (k: number): Uint32Array => u32Scratch.subarray(k * (n + 1), (k + 1) * (n + 1));
  return {
    nameOff: part(0), valueOff: part(1), h28: part(2).subarray(0, n), order: part(3).subarray(0, n), cd: part(4).subarray(0, n),
    intLen: u8Scratch.subarray(0, n), keys: f64Scratch.subarray(0, n),
  };
}

export function packEntries(entries: readonly ZapEntry[], salt: bigint, maxNameLen: number): PackedEntries {
  const [shi, slo] = saltHalves(salt);
  const n = entries.length;
  if (n >= INDEX_SPAN) throw new RangeError(`too many ZAP entries (${n})`);
  const names = namesScratch.reset();
  const values = valuesScratch.reset();
  const { nameOff, valueOff, intLen, h28 } = scratchArrays(n);
  let allSingle = true;
  let longest = 0;
  for (let i = 0; i < n; i++) {
    const e = entries[i]!;
    if (e === null || typeof e !== 'object') throw new TypeError(`ZAP entry ${i}: not an entry`);
    const name = e.name;
    checkName(name, maxNameLen, 'ZAP entry');
    const info = valueInfo(e.value, name);
    if (!info.single) allSingle = false;
    if (name.length > longest) longest = name.length;
    h28[i] = zapHash28(shi, slo, name);
    names.reserve(name.length);
    names.buf.set(name, names.len);
    names.len += name.length;
    nameOff[i + 1] = names.len;
    const vb = writeValueBE(e.value, valueScratch, valueScratchDv);
    values.reserve(vb);
    // (most values are one uint64: a loop, not a view per entry)
    const vbuf = values.buf;
    for (let b = 0; b < vb; b++) vbuf[values.len + b] = valueScratch[b]!;
    values.len += vb;
    valueOff[i + 1] = values.len;
    intLen[i] = info.intLen;
  }
  return finishPacking(n, allSingle, longest);
}

/**
 * What packDirEntries hands the caller to fill, for n entries: entry i's
 * name goes into `names` from nameOff[i] on, its end into nameOff[i + 1]
 * (nameOff[0] is 0), its DT type into types[i] and its object number into
 * objects[i].
 */
export type DirEntryFill = (names: Buffer, nameOff: Uint32Array, types: Uint8Array, objects: Float64Array) => void;

/**
 * packEntries for a ZPL directory's entries, whose names take `nameBytes`
 * in all: the caller's `fill` puts them straight into the packing's
 * scratch (no object per entry, nor a copy of the directory laid out
 * first: a directory of 300k entries was 13 MB of it), and each value is
 * (type << 60) | object.
 */
export function packDirEntries(n: number, nameBytes: number, fill: DirEntryFill, salt: bigint, maxNameLen: number): PackedEntries {
  const [shi, slo] = saltHalves(salt);
  if (n >= INDEX_SPAN) throw new RangeError(`too many ZAP entries (${n})`);
  const names = namesScratch.reset();
  const values = valuesScratch.reset();
  names.presize(nameBytes);
  values.presize(8 * n);
  // (intLen and keys stand in for the types and object numbers: both are
  // read here before they are set for what they are)
  const { nameOff, valueOff, intLen, h28, keys } = scratchArrays(n);
  const nb = names.buf;
  fill(Buffer.from(nb.buffer, nb.byteOffset, nameBytes), nameOff, intLen, keys);
  if (nameOff[n] !== nameBytes) throw new RangeError(`directory names filled to ${nameOff[n]} bytes of ${nameBytes}`);
  const vb = values.buf;
  let longest = 0;
  for (let i = 0; i < n; i++) {
    const from = nameOff[i]!;
    const to = nameOff[i + 1]!;
    const len = to - from;
    if (len > longest) longest = len;
    let nul = false;
    for (let k = from; k < to; k++) if (nb[k] === 0) nul = true;
    if (len <= 0 || len > maxNameLen || nul) checkName(nb.slice(from, Math.max(from, to)), maxNameLen, 'ZAP entry');
    h28[i] = zapHash28(shi, slo, nb, from, to);
    // big-endian (type << 60) | obj, obj < 2^53
    const obj = keys[i]!;
    u32be(vb, 8 * i, intLen[i]! * 0x10000000 + Math.floor(obj / 0x100000000));
    u32be(vb, 8 * i + 4, obj % 0x100000000);
    valueOff[i + 1] = 8 * (i + 1);
    intLen[i] = 8;
  }
  names.len = nameBytes;
  values.len = 8 * n;
  return finishPacking(n, true, longest);
}

/** Order the packed entries by (hash, name) and hand out collision differentiators. */
function finishPacking(n: number, allSingle: boolean, longest: number): PackedEntries {
  const { nameOff, valueOff, intLen, h28, keys, order, cd } = scratchViews(n);
  const nameBuf = namesScratch.buf;

  for (let i = 0; i < n; i++) keys[i] = h28[i]! * INDEX_SPAN + i;
  keys.sort();
  for (let k = 0; k < n; k++) order[k] = keys[k]! % INDEX_SPAN;

  const cmpNames = (a: number, b: number): number => {
    const la = nameOff[a + 1]! - nameOff[a]!;
    const lb = nameOff[b + 1]! - nameOff[b]!;
    const m = Math.min(la, lb);
    for (let k = 0; k < m; k++) {
      const d = nameBuf[nameOff[a]! + k]! - nameBuf[nameOff[b]! + k]!;
      if (d !== 0) return d;
    }
    return la - lb;
  };
  let maxCollisions = n > 0 ? 1 : 0;
  for (let k = 0; k < n; ) {
    const h = h28[order[k]!]!;
    let j = k + 1;
    while (j < n && h28[order[j]!] === h) j++;
    if (j - k > 1) {
      const run = Array.from(order.subarray(k, j));
      run.sort(cmpNames);
      for (let r = 0; r < run.length; r++) {
        if (r > 0 && cmpNames(run[r - 1]!, run[r]!) === 0) {
          throw new Error(`duplicate ZAP name ${nameForError(nameBuf.subarray(nameOff[run[r]!]!, nameOff[run[r]! + 1]!))}`);
        }
        order[k + r] = run[r]!;
        cd[run[r]!] = r;
      }
      maxCollisions = Math.max(maxCollisions, j - k);
    }
    k = j;
  }
  return {
    n,
    names: nameBuf,
    nameOff,
    values: valuesScratch.buf,
    valueOff,
    intLen,
    h28,
    cd,
    order,
    allSingle,
    maxNameLen: longest,
    maxCollisions,
  };
}
