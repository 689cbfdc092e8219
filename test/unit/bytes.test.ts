import { describe, expect, it } from 'vitest';
import { copyBytes } from '../../src/util/bytes.js';
import { zeroShared } from '../../src/util/zeros.js';

/** Bytes that differ from position to position (and from any offset's copy). */
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 255;
  return b;
}

const kinds = {
  plain: (n: number) => new Uint8Array(new ArrayBuffer(n)),
  shared: (n: number) => new Uint8Array(new SharedArrayBuffer(n)),
};

describe('copyBytes', () => {
  for (const [sk, mkSrc] of Object.entries(kinds)) {
    for (const [dk, mkDst] of Object.entries(kinds)) {
      it(`copies ${sk} into ${dk} memory at any alignment, short and long, touching nothing else`, () => {
        for (const n of [0, 1, 7, 511, 512, 513, 4096, 70001]) {
          for (const [so, at] of [[0, 0], [3, 0], [0, 5], [1, 9], [8, 16]] as const) {
            const backing = mkSrc(n + 64);
            backing.set(pattern(n + 64, n));
            // a view of part of a larger buffer, as the rings hand out
            const src = backing.subarray(so + 2, so + 2 + n);
            const whole = mkDst(n + 80);
            whole.fill(0xee);
            const dst = whole.subarray(4, 4 + n + 40);
            copyBytes(dst, src, at);
            expect(Buffer.from(dst.subarray(at, at + n)).equals(Buffer.from(src))).toBe(true);
            // before and after the copied range, the target is as it was
            expect(whole.subarray(0, 4 + at).every((v) => v === 0xee)).toBe(true);
            expect(whole.subarray(4 + at + n).every((v) => v === 0xee)).toBe(true);
          }
        }
      });
    }
  }

  it('refuses a copy that does not fit, as set() does, and writes nothing', () => {
    for (const n of [16, 8192]) {
      const dst = new Uint8Array(new SharedArrayBuffer(n + 10)).subarray(0, n);
      const src = pattern(n, 1);
      expect(() => copyBytes(dst, src, 1)).toThrow(RangeError);
      expect(() => copyBytes(dst, src, -1)).toThrow(RangeError);
      expect(dst.every((v) => v === 0)).toBe(true);
    }
  });

  it('copies from the new buffer of a memory that grew (a view of each buffer, not a stale one)', () => {
    const mem = new WebAssembly.Memory({ initial: 1, maximum: 4 });
    const first = new Uint8Array(mem.buffer);
    first.set(pattern(8192, 2));
    const dst = new Uint8Array(8192);
    copyBytes(dst, first.subarray(0, 8192));
    expect(Buffer.from(dst).equals(Buffer.from(pattern(8192, 2)))).toBe(true);
    mem.grow(1);
    const grown = new Uint8Array(mem.buffer);
    grown.set(pattern(8192, 3), 65536);
    copyBytes(dst, grown.subarray(65536, 65536 + 8192));
    expect(Buffer.from(dst).equals(Buffer.from(pattern(8192, 3)))).toBe(true);
  });
});

describe('zeroShared', () => {
  it('zeros exactly the range asked, in shared memory, past the size of its zeros', () => {
    const n = 300_000;
    const b = new Uint8Array(new SharedArrayBuffer(n));
    b.fill(0xaa);
    zeroShared(b, 3, n - 5);
    expect(b.subarray(0, 3).every((v) => v === 0xaa)).toBe(true);
    expect(b.subarray(3, n - 5).every((v) => v === 0)).toBe(true);
    expect(b.subarray(n - 5).every((v) => v === 0xaa)).toBe(true);
  });
});
