/// <reference path="../../src/types-lz4js.d.ts" />
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import lz4js from 'lz4js';
import { describe, expect, test } from 'vitest';
import { Lz4FormatError, lz4CompressBlock, lz4CompressBound, lz4DecompressBlock } from '../../src/zio/lz4.js';
import { FLETCHER4_SCALAR_WASM_BASE64, FLETCHER4_SIMD_WASM_BASE64 } from '../../src/zio/fletcher4-wasm.js';
// @ts-ignore -- plain .mjs build scripts, no type declarations (tests are not in tsconfig)
import { renderLz4WasmTs } from '../../scripts/gen-lz4-wasm.mjs';
// @ts-ignore
import { MODULES as FLETCHER4_MODULES } from '../../scripts/gen-fletcher4-wasm.mjs';
// @ts-ignore
import { assembleModule } from '../../scripts/wasm-asm.mjs';

/** Deterministic PRNG (xorshift32) so a failure reproduces. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

function randomBytes(len: number, seed: number): Uint8Array {
  const next = rng(seed);
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = next() & 0xff;
  return out;
}

const WORDS = (
  'the of and to in is that for it as with was on be by this are or from at which an not have ' +
  'int return if else struct static void const char unsigned size_t uint64_t error buffer offset ' +
  'block pointer checksum object dataset pool vdev label uberblock dnode level indirect record'
).split(' ');

/** Words, spaces and newlines: compresses to about half, like source text. */
function textBytes(len: number, seed: number): Uint8Array {
  const next = rng(seed);
  const out = new Uint8Array(len);
  let i = 0;
  let col = 0;
  while (i < len) {
    const w = WORDS[next() % WORDS.length]!;
    for (let k = 0; k < w.length && i < len; k++) out[i++] = w.charCodeAt(k);
    col += w.length + 1;
    if (i < len) out[i++] = col > 72 ? 10 : 32;
    if (col > 72) col = 0;
  }
  return out;
}

/** `len` bytes repeating `period` random bytes. */
function periodic(len: number, period: number, seed: number): Uint8Array {
  const unit = randomBytes(period, seed);
  return Uint8Array.from({ length: len }, (_, i) => unit[i % period]!);
}

/**
 * A mix of what trips up match finders: random stretches, copies of earlier
 * data at near and far (beyond 64 KiB) distances, runs, and text.
 */
function mixed(len: number, seed: number): Uint8Array {
  const next = rng(seed);
  const out = new Uint8Array(len);
  let i = 0;
  while (i < len) {
    const n = Math.min(len - i, 1 + (next() % 300));
    const kind = next() % 5;
    if (kind === 0 || i === 0) out.set(randomBytes(n, next()), i);
    else if (kind === 1) out.fill(next() & 0xff, i, i + n);
    else if (kind === 2) out.set(textBytes(n, next()), i);
    else {
      const dist = 1 + (next() % (kind === 3 ? Math.min(i, 64) : Math.min(i, 70000)));
      for (let k = 0; k < n; k++) out[i + k] = out[i + k - dist]!;
    }
    i += n;
  }
  return out;
}

interface Sequence {
  /** where the sequence's literals start in the decoded output */
  outPos: number;
  literals: number;
  /** 0 for the last sequence, which has no match */
  offset: number;
  matchLen: number;
}

/** Parse a block into its sequences (trusting it to be well formed). */
function sequences(block: Uint8Array): Sequence[] {
  const seqs: Sequence[] = [];
  let ip = 0;
  let op = 0;
  while (ip < block.length) {
    const token = block[ip++]!;
    let literals = token >> 4;
    if (literals === 15) {
      let s: number;
      do literals += s = block[ip++]!;
      while (s === 255);
    }
    ip += literals;
    const seq: Sequence = { outPos: op, literals, offset: 0, matchLen: 0 };
    seqs.push(seq);
    op += literals;
    if (ip >= block.length) break;
    seq.offset = block[ip]! | (block[ip + 1]! << 8);
    ip += 2;
    let ml = token & 15;
    if (ml === 15) {
      let s: number;
      do ml += s = block[ip++]!;
      while (s === 255);
    }
    seq.matchLen = ml + 4;
    op += seq.matchLen;
  }
  return seqs;
}

/** lz4js's (lenient) decoder, independent of ours. */
function lz4jsDecode(block: Uint8Array, outLen: number): Uint8Array {
  const out = new Uint8Array(outLen + 64); // it does not check bounds
  const end = lz4js.decompressBlock(block, out, 0, block.length, 0);
  return out.subarray(0, end);
}

/**
 * Byte-array equality with a short message (toEqual on big arrays is slow
 * and its diff unreadable).
 */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  let at = -1;
  if (actual.length !== expected.length) at = Math.min(actual.length, expected.length);
  else if (Buffer.compare(actual, expected) !== 0) at = actual.findIndex((b, i) => b !== expected[i]);
  expect(at < 0 ? 'equal' : `length ${actual.length} vs ${expected.length}, first difference at ${at}`).toBe('equal');
}

/** LZ4's end rules, as OpenZFS's decoder enforces them: the broken ones. */
function endRuleViolations(block: Uint8Array, n: number): string[] {
  const bad: string[] = [];
  const seqs = sequences(block);
  const last = seqs[seqs.length - 1]!;
  if (last.matchLen !== 0) bad.push('last sequence has a match');
  if (last.outPos + last.literals !== n) bad.push(`decodes to ${last.outPos + last.literals} bytes`);
  if (n < 13 && seqs.length !== 1) bad.push('short input with a match');
  if (n >= 13 && last.literals < 5) bad.push(`only ${last.literals} final literals`);
  for (const s of seqs.slice(0, -1)) {
    const start = s.outPos + s.literals;
    if (start > n - 12) bad.push(`match at ${start} of ${n}`);
    if (start + s.matchLen > n - 5) bad.push(`match at ${start} ends at ${start + s.matchLen} of ${n}`);
    if (s.offset < 1 || s.offset > Math.min(start, 65535)) bad.push(`offset ${s.offset} at ${start}`);
  }
  return bad;
}

/** Compress without a size limit, check everything, return a copy of the block. */
function roundTrip(input: Uint8Array): Uint8Array {
  const view = lz4CompressBlock(input, lz4CompressBound(input.length));
  expect(view).not.toBeNull();
  const block = view!.slice();
  expect(block.length).toBeLessThanOrEqual(lz4CompressBound(input.length));
  expectBytes(lz4DecompressBlock(block, input.length), input);
  expectBytes(lz4jsDecode(block, input.length), input);
  expect(endRuleViolations(block, input.length)).toEqual([]);
  return block;
}

const KiB = 1024;

describe('lz4CompressBlock round trips', () => {
  test('short inputs, 0..64 bytes, of every kind', () => {
    for (let n = 0; n <= 64; n++) {
      roundTrip(randomBytes(n, n + 1));
      roundTrip(new Uint8Array(n));
      roundTrip(textBytes(n, n + 7));
      roundTrip(periodic(n, 1 + (n % 5), n));
    }
  });

  test('an input under 13 bytes is one literal run; 13 zero bytes are not', () => {
    for (let n = 0; n < 13; n++) {
      const block = roundTrip(new Uint8Array(n));
      expect(block.length).toBe(n + 1);
      expect(block[0]).toBe(n << 4);
    }
    expect(roundTrip(new Uint8Array(13)).length).toBeLessThan(13);
  });

  test('128 KiB of text compresses to about half', () => {
    const input = textBytes(128 * KiB, 3);
    const block = roundTrip(input);
    expect(block.length / input.length).toBeLessThan(0.52);
  });

  test('128 KiB of random bytes does not compress', () => {
    const input = randomBytes(128 * KiB, 1);
    const block = roundTrip(input);
    expect(block.length).toBeGreaterThan(input.length);
    expect(lz4CompressBlock(input, input.length - (input.length >> 3))).toBeNull();
  });

  test('all zeros, 128 KiB and other sizes', () => {
    for (const n of [13, 17, 100, 4096, 65535, 65536, 65537, 128 * KiB, 1024 * KiB + 3]) {
      const block = roundTrip(new Uint8Array(n));
      expect(block.length).toBeLessThan(n / 200 + 16);
    }
  });

  test('repetitive data: short and long periods', () => {
    for (const period of [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 100, 1000, 40000]) {
      const input = periodic(128 * KiB, period, period);
      const block = roundTrip(input);
      expect(block.length).toBeLessThan(period + input.length / 100);
    }
  });

  test('mixed data at many sizes', () => {
    for (let seed = 1; seed <= 120; seed++) {
      const n = seed <= 100 ? (seed * 397) % 5000 : 100_000 + seed * 1000;
      roundTrip(mixed(n, seed));
    }
  });

  test('matches reach exactly 65535 bytes back, never 65536', () => {
    // random data (no repeated 4-grams to speak of) repeating with the period
    const near = periodic(2 * 65535, 65535, 5);
    const seqs = sequences(roundTrip(near));
    expect(seqs.some((s) => s.offset === 65535 && s.matchLen > 60000)).toBe(true);

    const far = periodic(2 * 65536, 65536, 5);
    const farBlock = roundTrip(far);
    expect(sequences(farBlock).every((s) => s.offset < 65536)).toBe(true);
    expect(farBlock.length).toBeGreaterThan(far.length * 0.99);
  });

  test('works on views with an offset, and on its own earlier output', () => {
    const backing = textBytes(50_000, 9);
    const view = backing.subarray(777, 40_777);
    const a = roundTrip(view);
    expectBytes(lz4CompressBlock(view.slice(), 1 << 20)!, a);
    // the result lives in the kernel's memory; feeding it back must still work
    const inKernel = lz4CompressBlock(textBytes(300_000, 1), 1 << 20)!;
    const copy = inKernel.slice();
    const again = lz4CompressBlock(inKernel, 1 << 22)!.slice();
    expectBytes(lz4DecompressBlock(again, copy.length), copy);
  });
});

describe('lz4CompressBlock limit', () => {
  test('null exactly when the block would be longer than limit', () => {
    for (const input of [textBytes(10_000, 4), new Uint8Array(5000), randomBytes(3000, 2), textBytes(20, 1)]) {
      const full = lz4CompressBlock(input, 1 << 30)!.slice();
      expectBytes(lz4CompressBlock(input, full.length)!, full);
      expect(lz4CompressBlock(input, full.length - 1)).toBeNull();
      expect(lz4CompressBlock(input, 0)).toBeNull();
    }
  });

  test('nothing compressible means null for any limit below the input size', () => {
    for (let n = 0; n <= 64; n++) {
      const input = randomBytes(n, 100 + n);
      expect(lz4CompressBlock(input, n)).toBeNull();
    }
    expect(lz4CompressBlock(new Uint8Array(12), 12)).toBeNull();
  });

  test('bad limits mean null', () => {
    const input = new Uint8Array(1000);
    expect(lz4CompressBlock(input, -5)).toBeNull();
    expect(lz4CompressBlock(input, Number.NaN)).toBeNull();
    expect(lz4CompressBlock(input, Number.POSITIVE_INFINITY)).not.toBeNull();
  });
});

describe('determinism', () => {
  test('same input, same bytes, whatever was compressed in between', () => {
    const inputs = [textBytes(128 * KiB, 11), mixed(70_000, 12), new Uint8Array(4096), textBytes(600, 13)];
    const first = inputs.map((b) => lz4CompressBlock(b, 1 << 20)!.slice());
    // other data, including a larger block that grows the kernel's memory
    lz4CompressBlock(randomBytes(3 * 1024 * KiB, 14), 1 << 30);
    lz4CompressBlock(textBytes(2 * 1024 * KiB, 15), 1 << 30);
    inputs.reverse().forEach((b, i) => {
      expectBytes(lz4CompressBlock(b, 1 << 20)!, first[first.length - 1 - i]!);
    });
  });

  test('a block compresses the same alone as inside a larger buffer', () => {
    const big = textBytes(300_000, 21);
    const part = big.subarray(100_000, 228_000);
    const a = lz4CompressBlock(part, 1 << 20)!.slice();
    lz4CompressBlock(big, 1 << 20);
    expectBytes(lz4CompressBlock(part.slice(), 1 << 20)!, a);
  });
});

/** Build a block from [literals, offset, matchLen] triples; the last one has no match. */
function makeBlock(seqs: Array<[Uint8Array, number, number] | [Uint8Array]>): Uint8Array {
  const out: number[] = [];
  const len = (n: number) => {
    for (n -= 15; n >= 255; n -= 255) out.push(255);
    out.push(n);
  };
  for (const [lits, offset, matchLen] of seqs) {
    const ml = matchLen === undefined ? 0 : matchLen - 4;
    out.push((Math.min(lits.length, 15) << 4) | (matchLen === undefined ? 0 : Math.min(ml, 15)));
    if (lits.length >= 15) len(lits.length);
    out.push(...lits);
    if (matchLen === undefined) break;
    out.push(offset! & 0xff, offset! >> 8);
    if (ml >= 15) len(ml);
  }
  return Uint8Array.from(out);
}

const bytes = (s: string) => new TextEncoder().encode(s);

describe('lz4DecompressBlock (strict, as OpenZFS)', () => {
  test('accepts well-formed hand-made blocks', () => {
    expect(lz4DecompressBlock(Uint8Array.of(0), 0)).toEqual(new Uint8Array(0));
    expect(lz4DecompressBlock(makeBlock([[bytes('hello')]]), 5)).toEqual(bytes('hello'));
    // "abcd", a match of 8 at offset 4 (overlapping), 12 literals
    const b = makeBlock([[bytes('abcd'), 4, 8], [bytes('xyzxyzxyzxyz')]]);
    expect(new TextDecoder().decode(lz4DecompressBlock(b, 24))).toBe('abcdabcdabcdxyzxyzxyzxyz');
    // a long literal run and a long overlapping match (offset 1)
    const lits = randomBytes(300, 3);
    const long = makeBlock([[lits, 1, 1000], [bytes('tail!')]]);
    const want = new Uint8Array(1305);
    want.set(lits);
    want.fill(lits[299]!, 300, 1300);
    want.set(bytes('tail!'), 1300);
    expect(lz4DecompressBlock(long, 1305)).toEqual(want);
  });

  test('the match start / last-literals boundaries, on both sides', () => {
    // match start at n - 12 is fine; one later is not
    const ok = makeBlock([[bytes('abcd'), 4, 4], [bytes('12345678')]]); // match at 4, n = 16
    expect(lz4DecompressBlock(ok, 16)).toHaveLength(16);
    const late = makeBlock([[bytes('abcde'), 4, 4], [bytes('1234567')]]); // match at 5, n = 16
    expect(() => lz4DecompressBlock(late, 16)).toThrow(/last literal run does not end the block/);
    expect(lz4jsDecode(late, 16)).toHaveLength(16); // lz4js would have taken it
    // match ending at n - 5 is fine, ending in the last 5 bytes is not (the
    // extra match length byte keeps the input-side rule out of the way)
    const a = randomBytes(20, 4);
    const end5 = makeBlock([[a, 20, 23], [bytes('12345')]]); // n = 48, match ends at 43
    expect(lz4DecompressBlock(end5, 48)).toHaveLength(48);
    const end4 = makeBlock([[a, 20, 24], [bytes('1234')]]); // n = 48, match ends at 44
    expect(() => lz4DecompressBlock(end4, 48)).toThrow(/last 5 bytes/);
    expect(lz4jsDecode(end4, 48)).toHaveLength(48);
    // a non-final sequence must leave 8 input bytes after its literals
    const short = makeBlock([[a, 20, 9], [bytes('1234')]]); // n = 33
    expect(() => lz4DecompressBlock(short, 33)).toThrow(/last literal run does not end the block/);
  });

  test('rejects offsets before the start and offset 0', () => {
    const lits = bytes('0123456789abcdef');
    expect(() => lz4DecompressBlock(makeBlock([[lits, 17, 4], [lits]]), 36)).toThrow(/offset 17/);
    expect(lz4DecompressBlock(makeBlock([[lits, 16, 4], [lits]]), 36)).toHaveLength(36);
    expect(() => lz4DecompressBlock(makeBlock([[lits, 0, 4], [lits]]), 36)).toThrow(/offset 0/);
  });

  test('rejects blocks that do not produce exactly outLen bytes', () => {
    const b = makeBlock([[bytes('hello world')]]);
    expect(() => lz4DecompressBlock(b, 12)).toThrow(/decoded 11 bytes, expected 12/);
    expect(() => lz4DecompressBlock(b, 10)).toThrow(Lz4FormatError);
    expect(() => lz4DecompressBlock(Uint8Array.of(0x10, 65), 0)).toThrow(Lz4FormatError);
    expect(() => lz4DecompressBlock(Uint8Array.of(0x00, 0x00), 0)).toThrow(Lz4FormatError);
  });

  test('rejects truncated or padded input', () => {
    const good = roundTrip(textBytes(5000, 8));
    expect(() => lz4DecompressBlock(new Uint8Array(0), 5000)).toThrow(Lz4FormatError);
    for (const cut of [1, 2, 5, 100, good.length - 1]) {
      expect(() => lz4DecompressBlock(good.subarray(0, good.length - cut), 5000)).toThrow(Lz4FormatError);
    }
    const padded = new Uint8Array(good.length + 1);
    padded.set(good);
    expect(() => lz4DecompressBlock(padded, 5000)).toThrow(Lz4FormatError);
  });

  test('never reads or writes out of bounds on garbage', () => {
    const next = rng(77);
    for (let i = 0; i < 3000; i++) {
      const junk = randomBytes(1 + (next() % 64), next());
      try {
        const out = lz4DecompressBlock(junk, next() % 200);
        // whatever it accepts, lz4js decodes the same way
        expect(lz4jsDecode(junk, out.length)).toEqual(out);
      } catch (e) {
        expect(e).toBeInstanceOf(Lz4FormatError);
      }
    }
  });
});

describe('generated module file', () => {
  test('src/zio/lz4-wasm.ts is what the generator produces now', () => {
    const path = fileURLToPath(new URL('../../src/zio/lz4-wasm.ts', import.meta.url));
    expect(readFileSync(path, 'utf8')).toBe(renderLz4WasmTs());
  });

  test('scripts/wasm-asm.mjs assembles the fletcher4 kernels to the committed bytes', () => {
    const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
    expect(b64(assembleModule(FLETCHER4_MODULES.scalar))).toBe(FLETCHER4_SCALAR_WASM_BASE64);
    expect(b64(assembleModule(FLETCHER4_MODULES.simd))).toBe(FLETCHER4_SIMD_WASM_BASE64);
  });
});
