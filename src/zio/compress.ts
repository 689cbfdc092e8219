// Block compression as ZFS stores it (module/zfs/zio_compress.c, lz4_zfs.c,
// zle.c). A block is kept compressed only when that saves at least 1/8 of
// it; the caller then rounds the size up to the allocation unit and keeps it
// only if that is still smaller than the logical size.
// Our LZ4 block encoder (WebAssembly, src/zio/lz4.ts) does the encoding;
// ZFS frames it with a 4-byte big-endian length so the decoder knows where
// the stream ends. (lz4js, which the tests keep as an independent decoder,
// is three times slower and ends blocks closer to the end than OpenZFS's
// decoder allows.)
import { lz4CompressBlock, lz4DecompressBlock } from './lz4.js';
import { COMP_LZ4, COMP_OFF, COMP_ZLE } from './blkptr.js';
import { u32be } from '../util/endian.js';

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
 * lz4 with ZFS framing. Returns the compressed bytes (a view valid until the
 * next call), or null when it would not save 1/8.
 */
export function lz4CompressZfs(src: Uint8Array): Uint8Array | null {
  const limit = compressLimit(src.length);
  // the block comes with room in front for the length word: no copy
  const out = lz4CompressBlock(src, limit - 4, 4);
  if (!out) return null;
  u32be(out, 0, out.length - 4);
  return out;
}

export function lz4DecompressZfs(src: Uint8Array, lsize: number): Uint8Array {
  const n = new DataView(src.buffer, src.byteOffset, src.byteLength).getUint32(0, false);
  if (n + 4 > src.length) throw new Error(`lz4 stream length ${n} exceeds the block`);
  return lz4DecompressBlock(src.subarray(4, 4 + n), lsize);
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
