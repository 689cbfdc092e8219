// Shared vocabulary of the ZAP modules: the caller-facing types, the on-disk
// constants every ZAP block kind needs, and value handling (validation and
// the big-endian byte image fat-ZAP leaves store).

/** Width of each integer of a ZAP value, in bytes. */
export type ZapIntLen = 1 | 2 | 4 | 8;

/** A ZAP value: an array of integers of one width. */
export interface ZapValue {
  intLen: ZapIntLen;
  ints: readonly (bigint | number)[];
}

/** A plain bigint/number stands for the common case, one uint64. */
export type ZapEntryValue = bigint | number | ZapValue;

export interface ZapEntry {
  /** Raw key bytes, without the terminating NUL. */
  name: Uint8Array;
  value: ZapEntryValue;
}

export interface ZapOptions {
  /** Per-object hash salt; OpenZFS asserts it is non-zero. */
  salt: bigint;
  /** Write a fat ZAP even when a micro ZAP would do. */
  forceFat?: boolean;
  /** log2 of the fat-ZAP block size, 9..17; OpenZFS's fzap_default_block_shift is 14. */
  fatBlockShift?: number;
  /**
   * Largest micro-ZAP block, in bytes (OpenZFS zap_micro_max_size, 128 KiB).
   * Above 128 KiB the pool needs the large_microzap feature active.
   */
  microMaxSize?: number;
  /**
   * How a micro ZAP's block size is rounded: 'sector' grows it in 512-byte
   * steps as OpenZFS does (any multiple of 512 is legal for a one-block
   * object); 'pow2' rounds up to a power of two.
   */
  microBlockRounding?: 'sector' | 'pow2';
  /** Only 0 (no Unicode normalization) is supported. */
  normflags?: 0;
}

export interface ZapImage {
  kind: 'micro' | 'fat';
  /** Data block size of the object (dn_datablkszsec << 9). */
  blockSize: number;
  /**
   * Block i is ZAP block id i; every block is exactly blockSize bytes. A fat
   * ZAP's blocks are consecutive views of one buffer, in order.
   */
  blocks: Uint8Array[];
  numEntries: number;
}

export interface ZapDecodedEntry {
  name: Uint8Array;
  value: { intLen: ZapIntLen; ints: bigint[] };
  /** The 64-bit stored hash (only the top ZAP_HASHBITS bits can be set). */
  hash: bigint;
  /** Collision differentiator. */
  cd: number;
}

export interface ZapDecoded {
  kind: 'micro' | 'fat';
  blockSize: number;
  salt: bigint;
  numEntries: number;
  /** Entries in cursor order: ascending (hash, cd). */
  entries: ZapDecodedEntry[];
  /** Fat only: the header's description of the object. */
  fat?: {
    freeBlk: number;
    numLeafs: number;
    ptrtblShift: number;
    ptrtblBlk: number;
    ptrtblNumBlks: number;
    /** Block ids below zap_freeblk that neither a leaf nor the pointer table uses. */
    unusedBlocks: number[];
  };
}

/* Block types (first word of every ZAP block). */
export const ZBT_LEAF = (1n << 63n) + 0n;
export const ZBT_HEADER = (1n << 63n) + 1n;
export const ZBT_MICRO = (1n << 63n) + 3n;

export const ZAP_MAGIC = 0x2f52ab2abn;
export const ZAP_LEAF_MAGIC = 0x2ab1eaf;

/** Bits of the 64-bit hash that are kept (ZAP_FLAG_HASH64 would make it 48). */
export const ZAP_HASHBITS = 28;
/** Names, NUL included (longer ones need the longname feature). */
export const ZAP_MAXNAMELEN = 256;
export const ZAP_MAXNAMELEN_NEW = 1024;
export const ZAP_MAXVALUELEN = 8 * 1024;

export const MZAP_ENT_LEN = 64;
/** Micro-ZAP name field, NUL included. */
export const MZAP_NAME_LEN = MZAP_ENT_LEN - 8 - 4 - 2;
export const SPA_MINBLOCKSIZE = 512;
/** OpenZFS clamps zap_micro_max_size to this (MZAP_MAX_SIZE). */
export const MZAP_MAX_SIZE = 1 << 20;
export const SPA_OLD_MAXBLOCKSIZE = 128 * 1024;

export const FZAP_DEFAULT_BLOCK_SHIFT = 14;

/**
 * Validated shape of one entry's value. `single` is set when the value is
 * one uint64 (the only kind a micro ZAP can hold).
 */
export interface ValueInfo {
  intLen: ZapIntLen;
  count: number;
  single: boolean;
}

const U64_MAX = (1n << 64n) - 1n;

function checkInt(v: bigint | number, intLen: ZapIntLen, name: Uint8Array): void {
  const bad = (why: string): never => {
    throw new RangeError(`ZAP entry ${nameForError(name)}: value ${String(v)} ${why}`);
  };
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) bad('is not a non-negative safe integer');
    if (intLen < 8 && v >= 2 ** (8 * intLen)) bad(`does not fit in ${intLen} bytes`);
  } else if (typeof v === 'bigint') {
    if (v < 0n || v > (intLen === 8 ? U64_MAX : (1n << BigInt(8 * intLen)) - 1n)) bad(`does not fit in ${intLen} unsigned bytes`);
  } else {
    bad(`is a ${typeof v}, not an integer`);
  }
}

/** Checks a value; `name` only labels errors. */
export function valueInfo(v: ZapEntryValue, name: Uint8Array): ValueInfo {
  if (typeof v === 'number' || typeof v === 'bigint') {
    checkInt(v, 8, name);
    return { intLen: 8, count: 1, single: true };
  }
  const what = `ZAP entry ${nameForError(name)}`;
  if (v === null || typeof v !== 'object' || !Array.isArray(v.ints)) throw new TypeError(`${what}: bad value`);
  const { intLen, ints } = v;
  if (intLen !== 1 && intLen !== 2 && intLen !== 4 && intLen !== 8) throw new RangeError(`${what}: bad intLen ${intLen}`);
  if (intLen * ints.length > ZAP_MAXVALUELEN) {
    throw new RangeError(`${what}: value of ${intLen * ints.length} bytes exceeds ZAP_MAXVALUELEN ${ZAP_MAXVALUELEN}`);
  }
  for (let i = 0; i < ints.length; i++) checkInt(ints[i]!, intLen, name);
  return { intLen, count: ints.length, single: intLen === 8 && ints.length === 1 };
}

/**
 * Writes the value as fat-ZAP leaves store it: each integer big-endian,
 * packed back to back. Returns the byte count.
 */
export function writeValueBE(v: ZapEntryValue, dst: Uint8Array, dv: DataView): number {
  if (typeof v !== 'object') {
    writeU64BE(dv, 0, v);
    return 8;
  }
  const { intLen, ints } = v;
  let off = 0;
  for (let i = 0; i < ints.length; i++) {
    const x = ints[i]!;
    if (intLen === 8) writeU64BE(dv, off, x);
    else {
      const n = Number(x);
      if (intLen === 4) dv.setUint32(off, n);
      else if (intLen === 2) dv.setUint16(off, n);
      else dst[off] = n;
    }
    off += intLen;
  }
  return off;
}

function writeU64BE(dv: DataView, off: number, x: bigint | number): void {
  if (typeof x === 'number') {
    // Two halves keep the hot single-uint64 path free of BigInt.
    dv.setUint32(off, Math.floor(x / 0x100000000));
    dv.setUint32(off + 4, x >>> 0);
  } else {
    dv.setBigUint64(off, x);
  }
}

/** Bytewise comparison, shorter first on a common prefix (memcmp order). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function nameForError(name: Uint8Array): string {
  const s = Buffer.from(name.subarray(0, 64)).toString('latin1');
  return JSON.stringify(name.length > 64 ? s + '...' : s);
}

/** Keys are handed to OpenZFS as C strings, so they can hold no NUL and cannot be empty. */
export function checkName(name: Uint8Array, maxLen: number, what: string): void {
  if (!(name instanceof Uint8Array)) throw new TypeError(`${what}: name must be a Uint8Array`);
  if (name.length === 0) throw new RangeError(`${what}: empty name`);
  if (name.length > maxLen) throw new RangeError(`${what}: name ${nameForError(name)} is ${name.length} bytes, limit ${maxLen}`);
  if (name.indexOf(0) >= 0) throw new RangeError(`${what}: name ${nameForError(name)} contains a NUL byte`);
}

const utf8 = new TextEncoder();

/** Key bytes of a string name (UTF-8, no NUL). */
export function zapName(s: string): Uint8Array {
  return utf8.encode(s);
}

/** A string property value as OpenZFS stores it: 1-byte ints, NUL included. */
export function zapString(s: string): ZapValue {
  const b = utf8.encode(s);
  const ints = new Array<number>(b.length + 1);
  for (let i = 0; i < b.length; i++) ints[i] = b[i]!;
  ints[b.length] = 0;
  return { intLen: 1, ints };
}

/** Entries sorted by hash: equal names have equal hashes, so only runs need comparing. */
export function checkUniqueNames(sorted: readonly { name: Uint8Array; hash: bigint }[], what: string): void {
  for (let i = 0; i < sorted.length; ) {
    let j = i + 1;
    while (j < sorted.length && sorted[j]!.hash === sorted[i]!.hash) j++;
    for (let a = i; a < j; a++) {
      for (let b = a + 1; b < j; b++) {
        if (compareBytes(sorted[a]!.name, sorted[b]!.name) === 0) {
          throw new Error(`${what}: name ${nameForError(sorted[a]!.name)} appears twice`);
        }
      }
    }
    i = j;
  }
}
