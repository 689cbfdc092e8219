// Block compression as ZFS stores it (module/zfs/zio_compress.c, lz4_zfs.c,
// zle.c). A block is kept compressed only when that saves at least 1/8 of
// it; the caller then rounds the size up to the allocation unit and keeps it
// only if that is still smaller than the logical size.
// lz4js (MIT) does the LZ4 block encoding; ZFS frames it with a 4-byte
// big-endian length so the decoder knows where the stream ends.
import lz4 from 'lz4js';
import { COMP_LZ4, COMP_OFF, COMP_ZLE } from './blkptr.js';

const LZ4_HASH_ENTRIES = 1 << 16;
const hashTable = new Uint32Array(LZ4_HASH_ENTRIES);
let scratch = new Uint8Array(0);

function ensureScratch(n: number): Uint8Array {
  if (scratch.length < n) scratch = new Uint8Array(n);
  return scratch;
}

/** The largest compressed size worth keeping for an lsize-byte block. */
export function compressLimit(lsize: number): number {
  return lsize - (lsize >> 3);
}

/**
 * lz4 with ZFS framing. Returns the compressed bytes (a view into a scratch
 * buffer valid until the next call), or null when it would not save 1/8.
 */
export function lz4CompressZfs(src: Uint8Array): Uint8Array | null {
  const limit = compressLimit(src.length);
  if (src.length < 16) return null;
  const dst = ensureScratch(4 + lz4.compressBound(src.length) + 16);
  // each block on its own: output must not depend on earlier blocks
  hashTable.fill(0);
  // The LZ4 block format wants the last match to start at least 12 bytes
  // before the end (MFLIMIT); lz4js stops 9 bytes short. Compress all but
  // the last 3 bytes and add them to the final run of literals, which keeps
  // every match start 12 bytes clear of the end, as OpenZFS's decoder checks.
  const n = lz4.compressBlock(src, dst.subarray(4), 0, src.length - LZ4_TAIL, hashTable);
  if (n === 0) return null;
  const total = extendLastLiterals(dst.subarray(4), n, src.subarray(src.length - LZ4_TAIL));
  if (total + 4 > limit) return null;
  new DataView(dst.buffer, dst.byteOffset).setUint32(0, total, false);
  return dst.subarray(0, total + 4);
}

const LZ4_TAIL = 3;

/** Append bytes to the literals of an LZ4 block's last sequence; returns the new length. */
function extendLastLiterals(buf: Uint8Array, n: number, extra: Uint8Array): number {
  let ip = 0;
  let lastStart = 0;
  let litStart = 0;
  let litLen = 0;
  while (ip < n) {
    lastStart = ip;
    const token = buf[ip++]!;
    let len = token >> 4;
    if (len === 15) {
      let b: number;
      do { b = buf[ip++]!; len += b; } while (b === 255);
    }
    litStart = ip;
    litLen = len;
    ip += len;
    if (ip >= n) break; // the last sequence has no match part
    ip += 2; // offset
    if ((token & 15) === 15) {
      let b: number;
      do { b = buf[ip++]!; } while (b === 255);
    }
  }
  const lits = buf.slice(litStart, litStart + litLen);
  let op = lastStart;
  const total = litLen + extra.length;
  if (total >= 15) {
    buf[op++] = 15 << 4;
    let rest = total - 15;
    for (; rest >= 255; rest -= 255) buf[op++] = 255;
    buf[op++] = rest;
  } else {
    buf[op++] = total << 4;
  }
  buf.set(lits, op);
  op += lits.length;
  buf.set(extra, op);
  return op + extra.length;
}

export function lz4DecompressZfs(src: Uint8Array, lsize: number): Uint8Array {
  const n = new DataView(src.buffer, src.byteOffset, src.byteLength).getUint32(0, false);
  if (n + 4 > src.length) throw new Error(`lz4 stream length ${n} exceeds the block`);
  const out = new Uint8Array(lsize);
  const end = lz4.decompressBlock(src, out, 4, n, 0);
  if (end > lsize) throw new Error('lz4 output overruns the block');
  return out;
}

/** Zero-length encoding with ZFS's parameter n = 64: runs of zeros cost one byte. */
const ZLE_N = 64;

export function zleCompress(src: Uint8Array): Uint8Array | null {
  const limit = compressLimit(src.length);
  const dst = ensureScratch(limit + 2 * ZLE_N);
  let s = 0;
  let d = 0;
  while (s < src.length) {
    if (d >= limit) return null;
    const start = s;
    if (src[s] === 0) {
      const end = Math.min(s + 256 - ZLE_N, src.length);
      while (s < end && src[s] === 0) s++;
      dst[d++] = s - start - 1 + ZLE_N;
    } else {
      const lenAt = d++;
      const end = Math.min(s + ZLE_N, src.length);
      // literal run, ended by a pair of zeros (one zero is cheaper inline)
      while (s < end && !(src[s] === 0 && (s + 1 >= src.length || src[s + 1] === 0))) dst[d++] = src[s++]!;
      dst[lenAt] = s - start - 1;
    }
  }
  return d <= limit ? dst.subarray(0, d) : null;
}

export function zleDecompress(src: Uint8Array, lsize: number): Uint8Array {
  const out = new Uint8Array(lsize);
  let s = 0;
  let d = 0;
  while (s < src.length && d < lsize) {
    let len = 1 + src[s++]!;
    if (len <= ZLE_N) {
      out.set(src.subarray(s, s + len), d);
      s += len;
      d += len;
    } else {
      len -= ZLE_N;
      d += len; // already zero
    }
  }
  return out;
}

/** Compress with the given algorithm; null means "store uncompressed". */
export function compressBlock(comp: number, src: Uint8Array): Uint8Array | null {
  switch (comp) {
    case COMP_LZ4: return lz4CompressZfs(src);
    case COMP_ZLE: return zleCompress(src);
    case COMP_OFF: return null;
    default: throw new Error(`compression ${comp} is not implemented`);
  }
}

export function decompressBlock(comp: number, src: Uint8Array, lsize: number): Uint8Array {
  switch (comp) {
    case COMP_LZ4: return lz4DecompressZfs(src, lsize);
    case COMP_ZLE: return zleDecompress(src, lsize);
    case COMP_OFF: return src;
    default: throw new Error(`compression ${comp} is not supported`);
  }
}

const ZERO_BLOCK = new Uint8Array(128 * 1024);

export function isAllZero(b: Uint8Array): boolean {
  for (let off = 0; off < b.length; off += ZERO_BLOCK.length) {
    const n = Math.min(ZERO_BLOCK.length, b.length - off);
    if (Buffer.compare(Buffer.from(b.buffer, b.byteOffset + off, n), Buffer.from(ZERO_BLOCK.buffer, 0, n)) !== 0) return false;
  }
  return true;
}
