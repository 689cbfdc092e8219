// Fletcher-4, the default checksum of ZFS metadata and data blocks, computed
// by a small WebAssembly kernel (see scripts/gen-fletcher4-wasm.mjs for its
// WAT source and the lane-folding maths). Plain JS cannot do this fast: the
// sums are 64-bit and wrap, which means BigInt or hand-split 32-bit halves.
//
// WASM code only sees its own linear memory, so a block living in an ordinary
// ArrayBuffer is copied in first. Callers that build a block anyway can build
// it straight into that memory via fletcher4Buffer() and skip the copy.

import {
  FLETCHER4_SCALAR_SHARED_WASM_BASE64, FLETCHER4_SCALAR_WASM_BASE64, FLETCHER4_SIMD_SHARED_WASM_BASE64, FLETCHER4_SIMD_WASM_BASE64,
} from './fletcher4-wasm.js';
import type { Fletcher4Words } from './fletcher4-ref.js';
import { FLETCHER4_RESERVED } from './fletcher4-memory.js';
import { copyBytes } from '../util/bytes.js';

export { FLETCHER4_RESERVED } from './fletcher4-memory.js';

export type { Fletcher4Words } from './fletcher4-ref.js';

/** Which kernel runs: 128-bit SIMD lanes, or the MVP fallback. */
export type Fletcher4Variant = 'simd' | 'scalar';

/** Bytes of one checksum: a, b, c, d as little-endian u64 (blk_cksum layout). */
export const FLETCHER4_CKSUM_SIZE = 32;

// Memory layout: the kernel stores its result at CKSUM_OFF; data starts at
// DATA_OFF, a cache line in, so scratch buffers are nicely aligned.
const CKSUM_OFF = 0;
const DATA_OFF = FLETCHER4_RESERVED;
const WASM_PAGE = 65536;

interface KernelExports {
  memory: WebAssembly.Memory;
  fletcher4(p: number, n: number, out: number): void;
}

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));
}

const MODULE_BYTES: Record<Fletcher4Variant, Uint8Array<ArrayBuffer>> = {
  simd: decodeBase64(FLETCHER4_SIMD_WASM_BASE64),
  scalar: decodeBase64(FLETCHER4_SCALAR_WASM_BASE64),
};
const SHARED_MODULE_BYTES: Record<Fletcher4Variant, Uint8Array<ArrayBuffer>> = {
  simd: decodeBase64(FLETCHER4_SIMD_SHARED_WASM_BASE64),
  scalar: decodeBase64(FLETCHER4_SCALAR_SHARED_WASM_BASE64),
};


/** True if this host's WebAssembly accepts the SIMD kernel. */
export function fletcher4SimdSupported(): boolean {
  return WebAssembly.validate(MODULE_BYTES.simd);
}

/**
 * One instantiated kernel with its own linear memory. Every method reuses
 * that memory, so views from buffer() are invalidated (detached) whenever a
 * later call needs more room than the memory has.
 */
export class Fletcher4Kernel {
  readonly variant: Fletcher4Variant;
  readonly #exports: KernelExports;
  // Views of the current memory.buffer; rebuilt after memory.grow detaches it.
  #heap: Uint8Array;
  #cksum: Uint8Array;
  #cksumView: DataView;

  /**
   * With `memory` (a shared WebAssembly.Memory whose first
   * FLETCHER4_RESERVED bytes are left to the kernel), the kernel works on
   * that memory: data already in it is checksummed where it lies, and
   * anything else is refused, since copying it in would overwrite what
   * others keep there.
   */
  readonly #given: boolean;

  constructor(variant: Fletcher4Variant, memory?: WebAssembly.Memory) {
    this.variant = variant;
    this.#given = memory !== undefined;
    const instance = memory
      ? new WebAssembly.Instance(new WebAssembly.Module(SHARED_MODULE_BYTES[variant]), { env: { memory } })
      : new WebAssembly.Instance(new WebAssembly.Module(MODULE_BYTES[variant]));
    this.#exports = instance.exports as unknown as KernelExports;
    this.#heap = new Uint8Array(0);
    this.#cksum = this.#heap;
    this.#cksumView = new DataView(this.#heap.buffer);
    this.#refresh();
  }

  #refresh(): void {
    const buf = this.#exports.memory.buffer;
    this.#heap = new Uint8Array(buf);
    this.#cksum = new Uint8Array(buf, CKSUM_OFF, FLETCHER4_CKSUM_SIZE);
    this.#cksumView = new DataView(buf, CKSUM_OFF, FLETCHER4_CKSUM_SIZE);
  }

  #reserve(size: number): void {
    const need = DATA_OFF + size;
    const have = this.#exports.memory.buffer.byteLength;
    if (need <= have) return;
    // Grow geometrically: every growth detaches callers' scratch views, so
    // make it rare.
    const target = Math.max(need, have * 2);
    this.#exports.memory.grow(Math.ceil((target - have) / WASM_PAGE));
    this.#refresh();
  }

  /**
   * A `size`-byte view inside the kernel's memory. Fill it and pass it (or a
   * subarray of it) to the checksum methods to skip the copy-in. Valid until a
   * call on this kernel needs more memory: a larger buffer(), or checksumming
   * a larger array that lives outside the kernel's memory.
   */
  buffer(size: number): Uint8Array {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`fletcher4: bad buffer size ${size}`);
    this.#reserve(size);
    return new Uint8Array(this.#exports.memory.buffer, DATA_OFF, size);
  }

  /** Run the kernel on `data`; the result is left in this.#cksum. */
  #compute(data: Uint8Array): void {
    const len = data.byteLength;
    if (len % 4 !== 0) throw new RangeError(`fletcher4: length ${len} is not a multiple of 4`);
    if (data.buffer === this.#exports.memory.buffer && data.byteOffset >= DATA_OFF) {
      this.#exports.fletcher4(data.byteOffset, len, CKSUM_OFF);
      return;
    }
    if (this.#given) throw new Error('fletcher4: a kernel on a given memory only checksums data inside it');
    if (len === 0) {
      // A scratch view detached by a memory growth also reads as empty; a
      // silent all-zero checksum for it would be a nasty bug to chase.
      try {
        new Uint8Array(data.buffer, 0, 0);
      } catch {
        throw new TypeError('fletcher4: buffer is detached (a fletcher4Buffer view used after memory grew?)');
      }
    }
    this.#reserve(len);
    copyBytes(this.#heap, data, DATA_OFF);
    this.#exports.fletcher4(DATA_OFF, len, CKSUM_OFF);
  }

  /** The 32-byte checksum (a, b, c, d little-endian), as in blk_cksum. */
  checksum(data: Uint8Array): Uint8Array {
    this.#compute(data);
    return this.#cksum.slice();
  }

  /** Write the 32-byte checksum into `out` at `outOff`. */
  checksumInto(data: Uint8Array, out: Uint8Array, outOff: number): void {
    if (outOff < 0 || outOff + FLETCHER4_CKSUM_SIZE > out.byteLength) {
      throw new RangeError(`fletcher4: no room for 32 bytes at ${outOff} in ${out.byteLength}`);
    }
    this.#compute(data);
    out.set(this.#cksum, outOff);
  }

  /** The checksum as zc_word[0..3]. */
  checksumWords(data: Uint8Array): Fletcher4Words {
    this.#compute(data);
    const v = this.#cksumView;
    return [v.getBigUint64(0, true), v.getBigUint64(8, true), v.getBigUint64(16, true), v.getBigUint64(24, true)];
  }
}

/** The shared kernel behind the module-level functions. */
export const fletcher4Kernel = new Fletcher4Kernel(fletcher4SimdSupported() ? 'simd' : 'scalar');

/** Which kernel the module-level functions use on this host. */
export const fletcher4Variant: Fletcher4Variant = fletcher4Kernel.variant;

// Kernels on memories that hold blocks (the file reader's ring): data in
// one of them is checksummed there instead of being copied in.
const inPlace = new Map<ArrayBufferLike, Fletcher4Kernel>();

/**
 * Checksum data that lies in `memory` in place from now on (until
 * forgetMemory). The memory must be shared and leave its first
 * FLETCHER4_RESERVED bytes unused.
 */
export function checksumInPlace(memory: WebAssembly.Memory): void {
  inPlace.set(memory.buffer, new Fletcher4Kernel(fletcher4Variant, memory));
}

/**
 * A `size`-byte buffer whose contents fletcher4() checksums in place: the
 * memory of a kernel of its own, which never grows (so the view stays valid).
 */
export function inPlaceScratch(size: number): Uint8Array {
  const k = new Fletcher4Kernel(fletcher4Variant);
  const view = k.buffer(size);
  inPlace.set(view.buffer, k);
  return view;
}

export function forgetMemory(memory: WebAssembly.Memory): void {
  inPlace.delete(memory.buffer);
}

/** Let an inPlaceScratch buffer go (its kernel and memory are collected with it). */
export function forgetScratch(view: Uint8Array): void {
  inPlace.delete(view.buffer);
}

/** The kernel that checksums `data`: its memory's own if it lies in an in-place buffer, else the shared one. */
function kernelFor(data: Uint8Array): Fletcher4Kernel {
  return inPlace.size > 0 ? inPlace.get(data.buffer) ?? fletcher4Kernel : fletcher4Kernel;
}

/** Fletcher-4 of `data` (length a multiple of 4): 32 bytes, a..d as LE u64. */
export function fletcher4(data: Uint8Array): Uint8Array {
  return kernelFor(data).checksum(data);
}

/** Fletcher-4 of `data` written as 32 bytes into `out` at `outOff`. */
export function fletcher4Into(data: Uint8Array, out: Uint8Array, outOff: number): void {
  kernelFor(data).checksumInto(data, out, outOff);
}

/** Fletcher-4 of `data` as [a, b, c, d]. */
export function fletcher4Words(data: Uint8Array): Fletcher4Words {
  return fletcher4Kernel.checksumWords(data);
}

/**
 * Scratch space of `size` bytes inside the shared kernel's memory: fill it,
 * then checksum it (or a subarray) without a copy. Valid until the next call
 * that grows that memory (a larger fletcher4Buffer, or checksumming a larger
 * array from elsewhere); a stale view is detached and reads as empty.
 */
export function fletcher4Buffer(size: number): Uint8Array {
  return fletcher4Kernel.buffer(size);
}
