import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import {
  Fletcher4Kernel,
  fletcher4,
  fletcher4Buffer,
  fletcher4Into,
  fletcher4SimdSupported,
  fletcher4Variant,
  fletcher4Words,
  checksumInPlace, forgetMemory, forgetScratch, inPlaceScratch,
} from '../../src/zio/fletcher4.js';
import { fletcher4Ref, fletcher4RefBytes } from '../../src/zio/fletcher4-ref.js';
// @ts-ignore -- plain .mjs build script, no type declarations (tests are not in tsconfig)
import { renderFletcher4WasmTs } from '../../scripts/gen-fletcher4-wasm.mjs';

const M64 = (1n << 64n) - 1n;

/** Deterministic bytes (xorshift32) so a failure reproduces. */
function randomBytes(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function wordsOf(data: Uint8Array): bigint[] {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return Array.from({ length: data.byteLength / 4 }, (_, i) => BigInt(dv.getUint32(i * 4, true)));
}

/**
 * Fletcher-4 from its closed form instead of the recurrence: word t of N is
 * counted r = N - t times in b, C(r+1,2) times in c, C(r+2,3) times in d.
 * Independent of both implementations under test.
 */
function closedForm(words: bigint[]): [bigint, bigint, bigint, bigint] {
  const n = BigInt(words.length);
  let a = 0n;
  let b = 0n;
  let c = 0n;
  let d = 0n;
  words.forEach((w, i) => {
    const r = n - BigInt(i);
    a += w;
    b += r * w;
    c += ((r * (r + 1n)) / 2n) * w;
    d += ((r * (r + 1n) * (r + 2n)) / 6n) * w;
  });
  return [a & M64, b & M64, c & M64, d & M64];
}

function le64x4(words: readonly bigint[]): Uint8Array {
  const out = new Uint8Array(32);
  const dv = new DataView(out.buffer);
  words.forEach((w, i) => dv.setBigUint64(i * 8, w, true));
  return out;
}

function wordBytes(words: number[]): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  const dv = new DataView(out.buffer);
  words.forEach((w, i) => dv.setUint32(i * 4, w, true));
  return out;
}

const kernels: Fletcher4Kernel[] = [new Fletcher4Kernel('scalar')];
if (fletcher4SimdSupported()) kernels.push(new Fletcher4Kernel('simd'));

// Every length class the kernels treat differently: below one 16-byte group,
// each residue mod 32 bytes around the SIMD stride, then block-sized ones.
const SIZES = [
  0,
  ...Array.from({ length: 40 }, (_, i) => 4 * (i + 1)),
  252,
  256,
  260,
  508,
  512,
  516,
  4092,
  4096,
  4100,
  4108,
  131072 - 4,
  131072,
  131072 + 12,
  (1 << 20) - 12,
  1 << 20,
];

describe('reference (fletcher4Ref)', () => {
  test('hand-computed vectors', () => {
    // [1,2,3,4]: a = 1+2+3+4; b = 1+3+6+10; c = 1+4+10+20; d = 1+5+15+35
    expect(fletcher4Ref(wordBytes([1, 2, 3, 4]))).toEqual([10n, 20n, 35n, 56n]);
    // Words are little-endian: bytes 01 02 03 04 are the word 0x04030201.
    expect(fletcher4Ref(Uint8Array.of(1, 2, 3, 4))).toEqual([0x04030201n, 0x04030201n, 0x04030201n, 0x04030201n]);
    expect(fletcher4Ref(new Uint8Array(0))).toEqual([0n, 0n, 0n, 0n]);
    expect(fletcher4Ref(new Uint8Array(4096))).toEqual([0n, 0n, 0n, 0n]);
  });

  test('agrees with the closed form on random inputs', () => {
    for (let words = 1; words <= 200; words += 7) {
      const data = randomBytes(words * 4, words);
      expect(fletcher4Ref(data)).toEqual(closedForm(wordsOf(data)));
    }
  });

  test('rejects lengths that are not whole words', () => {
    expect(() => fletcher4Ref(new Uint8Array(6))).toThrow(RangeError);
  });
});

describe.each(kernels.map((k) => [k.variant, k] as const))('%s kernel', (_name, kernel) => {
  test('hand-computed vectors', () => {
    expect(kernel.checksumWords(wordBytes([1, 2, 3, 4]))).toEqual([10n, 20n, 35n, 56n]);
    const bytes = kernel.checksum(wordBytes([1, 2, 3, 4]));
    expect(Array.from(bytes)).toEqual([
      10, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 35, 0, 0, 0, 0, 0, 0, 0, 56, 0, 0, 0, 0, 0, 0, 0,
    ]);
    expect(kernel.checksumWords(Uint8Array.of(1, 2, 3, 4))).toEqual([
      0x04030201n,
      0x04030201n,
      0x04030201n,
      0x04030201n,
    ]);
    // 1..8 is two full steps of the four SIMD lanes, so the lane folding
    // alone produces the result: b = T1+..+T8, c and d the next sums up.
    const w = [1, 2, 3, 4, 5, 6, 7, 8];
    expect(kernel.checksumWords(wordBytes(w))).toEqual(closedForm(w.map(BigInt)));
    expect(kernel.checksumWords(wordBytes(w))).toEqual([36n, 120n, 330n, 792n]);
  });

  test.each(SIZES)('matches the reference on %i random bytes', (size) => {
    const data = randomBytes(size, 0x9e3779b9 ^ size);
    const want = fletcher4RefBytes(data);
    expect(kernel.checksum(data)).toEqual(want);
    expect(kernel.checksumWords(data)).toEqual(fletcher4Ref(data));
  });

  test('input at an odd byte offset (copy path)', () => {
    const backing = randomBytes(1 + 4096 + 12, 7);
    const data = backing.subarray(1, 1 + 4096 + 12);
    expect(kernel.checksum(data)).toEqual(fletcher4RefBytes(data.slice()));
  });

  test('wraps mod 2^64: 8 MiB of 0xff bytes', () => {
    const data = new Uint8Array(8 << 20).fill(0xff);
    const n = BigInt(data.byteLength / 4);
    const w = 0xffffffffn;
    // For a constant word, the sums are w times N, C(N+1,2), C(N+2,3), C(N+3,4).
    const exact = [
      w * n,
      (w * n * (n + 1n)) / 2n,
      (w * n * (n + 1n) * (n + 2n)) / 6n,
      (w * n * (n + 1n) * (n + 2n) * (n + 3n)) / 24n,
    ];
    expect(exact.slice(1).every((x) => x > M64)).toBe(true); // b, c, d really overflow
    const want = exact.map((x) => x & M64);
    expect(kernel.checksumWords(data)).toEqual(want);
    expect(fletcher4Ref(data)).toEqual(want);
  });

  test('scratch buffer is checksummed in place, subarrays too', () => {
    const size = 131072;
    const src = randomBytes(size, 42);
    const scratch = kernel.buffer(size);
    scratch.set(src);
    expect(kernel.checksum(scratch)).toEqual(fletcher4RefBytes(src));
    const part = scratch.subarray(512, 512 + 4100);
    expect(kernel.checksum(part)).toEqual(fletcher4RefBytes(src.subarray(512, 512 + 4100)));
    // The input is not disturbed by the result being written.
    expect(scratch).toEqual(src);
  });

  test('a scratch view detached by growth is refused, not read as empty', () => {
    const k = new Fletcher4Kernel(kernel.variant);
    const small = k.buffer(16);
    k.buffer(4 << 20);
    expect(small.byteLength).toBe(0);
    expect(() => k.checksum(small)).toThrow(/detached/);
  });

  test('checksumInto writes exactly 32 bytes at the offset', () => {
    const data = randomBytes(1024, 3);
    const out = new Uint8Array(100).fill(0xaa);
    kernel.checksumInto(data, out, 40);
    expect(out.subarray(40, 72)).toEqual(fletcher4RefBytes(data));
    expect(out.subarray(0, 40).every((b) => b === 0xaa)).toBe(true);
    expect(out.subarray(72).every((b) => b === 0xaa)).toBe(true);
    expect(() => kernel.checksumInto(data, out, 80)).toThrow(RangeError);
  });

  test('rejects lengths that are not whole words', () => {
    expect(() => kernel.checksum(new Uint8Array(514))).toThrow(RangeError);
  });
});

describe('module-level API', () => {
  test('uses SIMD where the host has it', () => {
    expect(fletcher4Variant).toBe(fletcher4SimdSupported() ? 'simd' : 'scalar');
  });

  test('fletcher4, fletcher4Into, fletcher4Words, fletcher4Buffer agree', () => {
    const data = randomBytes(131072 + 20, 99);
    const want = fletcher4RefBytes(data);
    expect(fletcher4(data)).toEqual(want);
    const out = new Uint8Array(64);
    fletcher4Into(data, out, 32);
    expect(out.subarray(32)).toEqual(want);
    expect(le64x4(fletcher4Words(data))).toEqual(want);
    const scratch = fletcher4Buffer(data.byteLength);
    scratch.set(data);
    expect(fletcher4(scratch)).toEqual(want);
    // The returned checksum is a copy, not a view that the next call rewrites.
    const first = fletcher4(data);
    fletcher4(new Uint8Array(16));
    expect(first).toEqual(want);
  });
});

describe('generated module file', () => {
  test('src/zio/fletcher4-wasm.ts is what the generator produces now', () => {
    const path = fileURLToPath(new URL('../../src/zio/fletcher4-wasm.ts', import.meta.url));
    expect(readFileSync(path, 'utf8')).toBe(renderFletcher4WasmTs());
  });
});

describe('checksums in place on memories that hold blocks', () => {
  const block = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 2654435761 + seed) >>> 24);

  test('a shared memory given to checksumInPlace: blocks in it are checksummed where they lie, with the same result', () => {
    const memory = new WebAssembly.Memory({ initial: 4, maximum: 4, shared: true });
    checksumInPlace(memory);
    try {
      const view = new Uint8Array(memory.buffer as unknown as SharedArrayBuffer);
      for (const [off, n] of [[64, 4], [4096, 131072], [100_000, 512], [65_536 * 3, 65_536]] as const) {
        const b = block(n, off);
        view.set(b, off);
        const before = view.slice(64, 256);
        const sum = fletcher4(view.subarray(off, off + n));
        expect(Buffer.from(sum)).toEqual(Buffer.from(fletcher4RefBytes(b)));
        // the kernel on this memory ran (it leaves its result in the reserved bytes)
        expect(Buffer.from(view.slice(0, 32))).toEqual(Buffer.from(sum));
        // nothing of the memory's own bytes was written over (only its reserved first 64)
        if (off > 256) expect(view.slice(64, 256)).toEqual(before);
      }
      // data elsewhere still goes to the default kernel
      const outside = block(4096, 9);
      expect(Buffer.from(fletcher4(outside))).toEqual(Buffer.from(fletcher4RefBytes(outside)));
    } finally {
      forgetMemory(memory);
    }
  });

  test('a kernel on a given memory refuses data outside it (copying it in would overwrite the memory)', () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const k = new Fletcher4Kernel(fletcher4Variant, memory);
    expect(() => k.checksum(new Uint8Array(512))).toThrow(/only checksums data inside it/);
  });

  test('inPlaceScratch: a buffer checksummed where it is filled (fletcher4 and fletcher4Into), until forgotten', () => {
    const s = inPlaceScratch(131072);
    const out = new Uint8Array(40);
    for (const n of [512, 4096, 131072]) {
      const b = block(n, n);
      s.set(b);
      expect(Buffer.from(fletcher4(s.subarray(0, n)))).toEqual(Buffer.from(fletcher4RefBytes(b)));
      fletcher4Into(s.subarray(0, n), out, 8);
      expect(Buffer.from(out.subarray(8))).toEqual(Buffer.from(fletcher4RefBytes(b)));
    }
    // forgotten, it is one more array to copy in (same sums)
    forgetScratch(s);
    fletcher4Into(s.subarray(0, 4096), out, 0);
    expect(Buffer.from(out.subarray(0, 32))).toEqual(Buffer.from(fletcher4RefBytes(s.subarray(0, 4096))));
  });
});
