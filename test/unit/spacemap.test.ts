// The space map header's histogram: free segments of the metaslab counted by
// power of two, bucket 0 = 2^ashift bytes. Whether OpenZFS agrees is judged
// by zdb in test/e2e/spacemaps.test.ts (its own count from the entries, and
// its metaslab_load assertion); these pin the edge cases.
import { describe, expect, test } from 'vitest';
import {
  encodeSpaceMapPhys, SPACE_MAP_HISTOGRAM_SIZE, SPACE_MAP_PHYS_SIZE, SPACE_MAP_PHYS_SIZE_V0, spaceMapHistogram,
} from '../../src/vdev/spacemap.js';
import { SpaceAllocator } from '../../src/vdev/allocator.js';
import { spaceMapWindow } from '../../src/dsl/pool.js';

const MIB = 2 ** 20;
const nonzero = (h: number[]) => Object.fromEntries(h.flatMap((n, i) => (n ? [[i, n]] : [])));

describe('spaceMapHistogram', () => {
  test('an empty metaslab is one free segment of its whole size', () => {
    expect(nonzero(spaceMapHistogram([], 0, 16 * MIB, 12))).toEqual({ [24 - 12]: 1 });
    expect(nonzero(spaceMapHistogram([], 5 * 16 * MIB, 16 * MIB, 9))).toEqual({ [24 - 9]: 1 });
  });

  test('a full metaslab has none', () => {
    expect(nonzero(spaceMapHistogram([{ start: 16 * MIB, end: 32 * MIB }], 16 * MIB, 16 * MIB, 12))).toEqual({});
  });

  test('gaps before, between and after runs, in any order, land by floor(log2)', () => {
    const ms = 64 * MIB;
    const runs = [
      { start: ms + 3 * 4096, end: ms + 10 * 4096 }, // gap before: 3 blocks (bucket 1)
      { start: ms + 10 * 4096 + 4096, end: ms + 20 * 4096 }, // 1 block (bucket 0)
      { start: ms + 20 * 4096 + 255 * 4096, end: ms + 1000 * 4096 }, // 255 blocks (bucket 7)
    ];
    const tail = 16 * MIB - 1000 * 4096; // 3096 blocks (bucket 11)
    expect(tail / 4096).toBe(3096);
    expect(nonzero(spaceMapHistogram([...runs].reverse(), ms, 16 * MIB, 12))).toEqual({ 0: 1, 1: 1, 7: 1, 11: 1 });
  });

  test('segments beyond the last bucket count there as that many of its size, as OpenZFS normalizes them', () => {
    // (no real metaslab is that large: 16 GiB at ashift 9 is bucket 25)
    // 16 GiB at ashift 0 is bucket 34, 2^3 segments of bucket 31's size
    expect(nonzero(spaceMapHistogram([], 0, 2 ** 34, 0))).toEqual({ [SPACE_MAP_HISTOGRAM_SIZE - 1]: 8 });
    expect(nonzero(spaceMapHistogram([], 0, 2 ** 31, 0))).toEqual({ [SPACE_MAP_HISTOGRAM_SIZE - 1]: 1 });
  });

  test('runs that overlap or lie outside the metaslab are a bug', () => {
    expect(() => spaceMapHistogram([{ start: 0, end: 8192 }, { start: 4096, end: 12288 }], 0, MIB, 12)).toThrow(/overlap/);
    expect(() => spaceMapHistogram([{ start: MIB - 4096, end: MIB + 4096 }], 0, MIB, 12)).toThrow(/past the metaslab/);
    expect(() => spaceMapHistogram([{ start: 0, end: 4096 }], MIB, MIB, 12)).toThrow(/leave the metaslab/);
  });
});

describe('space map header', () => {
  test('24 bytes without a histogram, 320 with one, which sits after five words of padding', () => {
    expect(encodeSpaceMapPhys(7, 80, 4096).length).toBe(SPACE_MAP_PHYS_SIZE_V0);
    const h = Array.from({ length: SPACE_MAP_HISTOGRAM_SIZE }, (_, i) => i * 3);
    const b = encodeSpaceMapPhys(7, 80, 4096, h);
    expect(b.length).toBe(SPACE_MAP_PHYS_SIZE);
    const dv = new DataView(b.buffer);
    expect([0, 8, 16].map((o) => Number(dv.getBigUint64(o, true)))).toEqual([7, 80, 4096]);
    expect(b.subarray(24, 64).every((x) => x === 0)).toBe(true);
    expect(Number(dv.getBigUint64(64 + 31 * 8, true))).toBe(93);
    expect(Array.from({ length: SPACE_MAP_HISTOGRAM_SIZE }, (_, i) => Number(dv.getBigUint64(64 + i * 8, true)))).toEqual(h);
  });
});

describe('spaceMapWindow: the metaslabs past the last used one that get a space map', () => {
  const MS = 16 * MIB;
  const filled = (used: number, ashift: number): SpaceAllocator => {
    const a = new SpaceAllocator(used + 100, 24, ashift, (used + 100) * MS);
    for (let m = 0; m < used; m++) a.alloc(MS - 2 ** ashift); // one run per metaslab, then the next
    return a;
  };
  const bound = (a: SpaceAllocator, used: number, window: number) => {
    // what the window must hold: a 16 KiB block per space map at the
    // allocation unit, the MOS dnode blocks, the array and two ZAPs
    const block = Math.max(16384, a.unit);
    return (used + window) * block;
  };

  test('two on an ordinary pool', () => {
    const a = filled(20, 12);
    expect(spaceMapWindow(a, 200, a.lastUsedMs())).toBe(2);
  });

  test('more where thousands of space maps at ashift 16 outgrow two metaslabs (the 12 GB file at mssize=16m)', () => {
    const used = 760;
    const a = filled(used, 16);
    const w = spaceMapWindow(a, 200, a.lastUsedMs());
    expect(w).toBeGreaterThan(2);
    expect(w * MS).toBeGreaterThanOrEqual(bound(a, used, w));
  });
});
