// OpenZFS's slop reservation, which decides how much of an auto-sized pool
// its datasets can write (spa_get_slop_space). The kernel's own figure for
// one such pool is checked in test/e2e/autosize.test.ts.
import { describe, expect, test } from 'vitest';
import { defaultMsShift, dspaceFor, EMBEDDED_SLOG_MIN_MS, spaSlopSpace, writableSpace } from '../../src/vdev/geometry.js';

const MIB = 2 ** 20;
const GIB = 2 ** 30;
const TIB = 2 ** 40;

describe('the slop reservation', () => {
  test('half of a small pool, 128 MiB of a mid-sized one, 1/32 of a large one, at most 128 GiB', () => {
    expect(spaSlopSpace(64 * MIB)).toBe(32 * MIB);
    // the 224 MiB pool the kernel showed with 0 bytes available (129 MiB used)
    expect(spaSlopSpace(224 * MIB)).toBe(112 * MIB);
    expect(spaSlopSpace(256 * MIB)).toBe(128 * MIB);
    expect(spaSlopSpace(1 * GIB)).toBe(128 * MIB);
    expect(spaSlopSpace(4 * GIB)).toBe(128 * MIB);
    expect(spaSlopSpace(8 * GIB)).toBe(256 * MIB);
    expect(spaSlopSpace(4 * TIB)).toBe(128 * GIB);
    expect(spaSlopSpace(16 * TIB)).toBe(128 * GIB);
  });

  test('dspaceFor is the least space whose writable part reaches the amount asked', () => {
    const amounts = [1, 4096, 10 * MIB, 100 * MIB, 128 * MIB, 128 * MIB + 1, 1 * GIB, 3.875 * GIB, 3.875 * GIB + 4096, 100 * GIB,
      4 * TIB - 128 * GIB, 4 * TIB, 10 * TIB];
    for (const w of amounts) {
      const d = dspaceFor(w);
      expect(d - spaSlopSpace(d), `writable part of dspaceFor(${w})`).toBeGreaterThanOrEqual(w);
      // a few KiB less would not do (the slop rounds down, so allow its rounding)
      const less = d - 64;
      expect(less - spaSlopSpace(less), `dspaceFor(${w}) - 64`).toBeLessThan(w);
    }
  });

  test('the embedded log takes a metaslab from the normal class, and its size off the 1/32', () => {
    expect(spaSlopSpace(8 * GIB, 64 * MIB)).toBe(192 * MIB);
    // never more than half the 1/32, and never below the 128 MiB floor
    expect(spaSlopSpace(8 * GIB, 512 * MIB)).toBe(128 * MIB);
    expect(spaSlopSpace(2 * GIB, 64 * MIB)).toBe(128 * MIB);
    expect(writableSpace(9, 32 * MIB)).toBe(288 * MIB - 128 * MIB);
    expect(writableSpace(EMBEDDED_SLOG_MIN_MS, GIB)).toBe(64 * GIB - 64 * GIB / 32);
    // 65 metaslabs: 64 GiB in the normal class; slop 2 GiB less half of it (the log is 1 GiB)
    expect(writableSpace(EMBEDDED_SLOG_MIN_MS + 1, GIB)).toBe(64 * GIB - GIB);
    expect(writableSpace(200, 512 * MIB)).toBe(199 * 512 * MIB - ((199 * 512 * MIB) / 32 - 512 * MIB));
  });
});

describe('the default metaslab size', () => {
  test("OpenZFS's rule: 16 on small vdevs, 512 MiB in the middle, ~200 on large ones, 16 MiB to 16 GiB", () => {
    const count = (asize: number) => Math.floor(asize / 2 ** defaultMsShift(asize));
    expect(2 ** defaultMsShift(64 * MIB)).toBe(16 * MIB);
    expect(2 ** defaultMsShift(1 * GIB)).toBe(128 * MIB);
    expect(2 ** defaultMsShift(GIB - 4.5 * MIB)).toBe(64 * MIB);
    expect(2 ** defaultMsShift(20 * GIB)).toBe(512 * MIB);
    expect(2 ** defaultMsShift(100 * GIB)).toBe(512 * MIB);
    expect(count(100 * GIB)).toBe(200);
    // above 200 of 512 MiB: highbit(asize / 200)
    expect(2 ** defaultMsShift(TIB)).toBe(8 * GIB);
    expect(count(TIB - 4.5 * MIB)).toBe(127);
    expect(2 ** defaultMsShift(8 * TIB)).toBe(16 * GIB);
    expect(2 ** defaultMsShift(64 * TIB)).toBe(16 * GIB);
  });
});
