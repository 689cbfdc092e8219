// LZ4 block compression (the raw block format, no frame) as ZFS stores it,
// minus ZFS's 4-byte big-endian length header, which the caller adds.
//
// The compressor is a small WebAssembly kernel (scripts/gen-lz4-wasm.mjs
// holds its WAT and describes the match finder): greedy, one hash-table
// candidate per position, table cleared for every block, so the output is a
// function of the block's bytes alone. Like fletcher4.ts, the input is
// copied into the kernel's linear memory, and the result is a view of it.
//
// The decoder is plain TypeScript and deliberately strict: it accepts a
// block only if OpenZFS's decoder (module/zfs/lz4.c, LZ4 1.9.3's
// LZ4_decompress_safe) accepts it on every one of its code paths, and only if
// it fills exactly the expected number of bytes.

import { LZ4_DST_SLACK, LZ4_HASH_TABLE_BYTES, LZ4_SRC_SLACK, LZ4_WASM_BASE64 } from './lz4-wasm.js';
import { copyBytes } from '../util/bytes.js';

const WASM_PAGE = 65536;
/** Input is copied here, right above the kernel's hash table. */
const SRC_OFF = LZ4_HASH_TABLE_BYTES;
/** Inputs above this are refused (ZFS blocks are at most 16 MiB). */
const MAX_INPUT = 1 << 30;

const MINMATCH = 4;
const LASTLITERALS = 5;
const MFLIMIT = 12;

interface KernelExports {
  memory: WebAssembly.Memory;
  lz4_compress(src: number, n: number, dst: number, limit: number): number;
}

const kernel = new WebAssembly.Instance(
  new WebAssembly.Module(Uint8Array.from(atob(LZ4_WASM_BASE64), (ch) => ch.charCodeAt(0))),
).exports as unknown as KernelExports;
let heap = new Uint8Array(kernel.memory.buffer);

function reserve(bytes: number): void {
  const have = kernel.memory.buffer.byteLength;
  if (bytes <= have) return;
  // Grow geometrically so a mix of block sizes settles quickly.
  const target = Math.max(bytes, have * 2);
  kernel.memory.grow(Math.ceil((target - have) / WASM_PAGE));
  heap = new Uint8Array(kernel.memory.buffer);
}

/** The largest block lz4CompressBlock can produce for n input bytes. */
export function lz4CompressBound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

/**
 * Compress `src` into one LZ4 block. Returns a view of the block (inside the
 * kernel's memory, valid until the next call), or null if the block would be
 * longer than `limit` bytes. Every block it returns satisfies LZ4's end rules
 * (last 5 bytes literals, last match starting 12 or more bytes before the
 * end), and an input without a single match, which includes every input
 * under 13 bytes, becomes one literal run, one byte or more longer than the
 * input: for any limit up to src.length that means null. The kernel's memory
 * grows to about twice the largest input seen and stays that size.
 * `head`: bytes left in front of the block, in the view, for the caller's
 * own header (ZFS's length word), so the block needs no copy to get one.
 */
export function lz4CompressBlock(src: Uint8Array, limit: number, head = 0): Uint8Array | null {
  // A view into the kernel's own memory (an earlier result, say) would be
  // detached by a memory growth, or overwritten while being read.
  if (src.buffer === kernel.memory.buffer) src = src.slice();
  const n = src.length;
  if (n > MAX_INPUT) throw new RangeError(`lz4: input of ${n} bytes is too large`);
  if (!(limit >= 1)) return null; // also NaN; no block is shorter than 1 byte
  const bound = lz4CompressBound(n);
  const lim = Math.min(Math.floor(limit), bound);
  const dstOff = ((SRC_OFF + n + LZ4_SRC_SLACK + 15) & ~15) + head;
  reserve(dstOff + bound + LZ4_DST_SLACK);
  copyBytes(heap, src, SRC_OFF);
  const len = kernel.lz4_compress(SRC_OFF, n, dstOff, lim);
  return len === 0 ? null : heap.subarray(dstOff - head, dstOff + len);
}

/** A block lz4DecompressBlock refuses (see there for the rules). */
export class Lz4FormatError extends Error {
  override name = 'Lz4FormatError';
}

function fail(why: string, ip: number): never {
  throw new Lz4FormatError(`lz4: ${why} (input byte ${ip})`);
}

/**
 * Decode one LZ4 block that must expand to exactly `outLen` bytes.
 *
 * OpenZFS runs LZ4 1.9.3's safe decoder, whose fast paths (taken while far
 * from the end of the output) check less than its careful loop. This decoder
 * applies the careful loop's checks to every sequence, so whatever it accepts
 * OpenZFS accepts on any platform, with the same result:
 *  - a literal run that ends past outLen - 12 (MFLIMIT), or whose end leaves
 *    fewer than 8 input bytes, ends the block: it must end the input exactly
 *    and fit the output;
 *  - an extended literal length must start more than 15 bytes before the
 *    end of the input; an extended match length must leave more than 4;
 *  - a match may not reach before the start of the output, and must end at
 *    least 5 bytes (LASTLITERALS) before the end of the output;
 *  - an empty output is exactly the one-byte block 00.
 * Two checks OpenZFS does not make, both of which only reject garbage: the
 * output must be exactly outLen bytes (OpenZFS would leave the rest of its
 * buffer as it was), and offset 0 is an error (OpenZFS writes zeros).
 */
export function lz4DecompressBlock(src: Uint8Array, outLen: number): Uint8Array {
  if (!Number.isSafeInteger(outLen) || outLen < 0) throw new RangeError(`lz4: bad output length ${outLen}`);
  const out = new Uint8Array(outLen);
  const iend = src.length;
  if (outLen === 0) {
    if (iend === 1 && src[0] === 0) return out;
    fail('an empty output must be encoded as the single byte 00', 0);
  }
  if (iend === 0) fail('empty block', 0);
  let ip = 0;
  let op = 0;
  for (;;) {
    if (ip >= iend) fail('block ends without a final literal run', ip);
    const token = src[ip++]!;

    let len = token >> 4;
    if (len === 15) {
      if (ip >= iend - 15) fail('extended literal length too close to the end', ip);
      let s: number;
      do {
        if (ip >= iend) fail('literal length runs past the end', ip);
        s = src[ip++]!;
        len += s;
      } while (s === 255);
    }
    const litEnd = op + len;
    if (litEnd > outLen - MFLIMIT || ip + len > iend - (2 + 1 + LASTLITERALS)) {
      // Must be the last sequence.
      if (ip + len !== iend) fail('last literal run does not end the block', ip);
      if (litEnd > outLen) fail('literals overrun the output', ip);
      out.set(src.subarray(ip, iend), op);
      op = litEnd;
      break;
    }
    if (len < 32) {
      // short runs are the common case; a subarray per run costs more
      for (let i = 0; i < len; i++) out[op + i] = src[ip + i]!;
    } else {
      out.set(src.subarray(ip, ip + len), op);
    }
    ip += len;
    op = litEnd;

    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    let ml = token & 15;
    if (ml === 15) {
      let s: number;
      do {
        s = src[ip++]!;
        ml += s;
        if (ip >= iend - LASTLITERALS + 1) fail('extended match length too close to the end', ip);
      } while (s === 255);
    }
    ml += MINMATCH;
    if (offset > op) fail(`offset ${offset} reaches before the start (at output ${op})`, ip);
    if (offset === 0) fail('offset 0', ip);
    const matchEnd = op + ml;
    if (matchEnd > outLen - LASTLITERALS) fail('match runs into the last 5 bytes of the output', ip);
    let from = op - offset;
    if (offset >= ml && ml >= 32) {
      out.copyWithin(op, from, from + ml);
      op = matchEnd;
    } else {
      // short, or overlapping: byte by byte repeats the last `offset` bytes
      while (op < matchEnd) out[op++] = out[from++]!;
    }
  }
  if (op !== outLen) fail(`decoded ${op} bytes, expected ${outLen}`, ip);
  return out;
}
