// The build thread's heap: its growth factor set once, and a full collection
// as the objects pass starts, both only when the heap is large.
import { describe, expect, test } from 'vitest';
import { collectBeforeObjects, HEAP_GROWTH_FROM_BYTES, heapGrowthCheck } from '../../src/cli/heap-growth.js';

function fakeHeap(used: number[]) {
  const flags: string[] = [];
  let i = 0;
  const log = { collections: 0 };
  return {
    flags,
    log,
    deps: {
      usedBytes: () => used[Math.min(i++, used.length - 1)]!,
      setFlag: (f: string) => { flags.push(f); },
      collect: () => { log.collections++; },
    },
  };
}

describe('heapGrowthCheck', () => {
  test('not while the heap is small (a thread booting, a small tree)', () => {
    const h = fakeHeap([8e6, 13e6, HEAP_GROWTH_FROM_BYTES - 1]);
    const check = heapGrowthCheck(25, HEAP_GROWTH_FROM_BYTES, h.deps);
    for (let k = 0; k < 3; k++) check();
    expect(h.flags).toEqual([]);
  });

  test('once, from the first check that finds the heap at the threshold', () => {
    const h = fakeHeap([10e6, HEAP_GROWTH_FROM_BYTES, 90e6, 20e6]);
    const check = heapGrowthCheck(25, HEAP_GROWTH_FROM_BYTES, h.deps);
    check();
    expect(h.flags).toEqual([]);
    check();
    expect(h.flags).toEqual(['--heap-growing-percent=25']);
    check();
    check();
    expect(h.flags).toHaveLength(1);
  });

  test('never with a percentage of 0 or none (TSMAKEFS_HEAP_GROWING_PERCENT=0, or not a number)', () => {
    for (const percent of [0, Number.NaN, -5]) {
      const h = fakeHeap([1e9]);
      heapGrowthCheck(percent, HEAP_GROWTH_FROM_BYTES, h.deps)();
      expect(h.flags).toEqual([]);
    }
  });

  test('the threshold stays well under a large tree\'s heap (V8 may overshoot it by up to 2x)', () => {
    // /usr's build holds ~100 MB of heap at its peak (bench/RESULTS.md)
    expect(2 * HEAP_GROWTH_FROM_BYTES).toBeLessThan(100 * 2 ** 20);
  });
});

describe('collectBeforeObjects', () => {
  test('once, at the first report of the objects pass, for a large heap', () => {
    const h = fakeHeap([90e6]);
    const at = collectBeforeObjects(HEAP_GROWTH_FROM_BYTES, h.deps);
    for (const phase of ['scan', 'data', 'data']) at(phase);
    expect(h.log.collections).toBe(0);
    at('metadata');
    expect(h.log.collections).toBe(1);
    at('metadata');
    at('done');
    expect(h.log.collections).toBe(1);
    expect(h.flags).toEqual([]);
  });

  test('not for a small heap, nor later once the heap has grown', () => {
    const h = fakeHeap([HEAP_GROWTH_FROM_BYTES - 1, 90e6]);
    const at = collectBeforeObjects(HEAP_GROWTH_FROM_BYTES, h.deps);
    at('metadata');
    at('metadata');
    expect(h.log.collections).toBe(0);
  });

  test('V8\'s own: a full collection frees what is no longer reachable', async () => {
    // a large array, dead once made; a WeakRef holds its target to the end
    // of the job that made it, so the collection comes in a later one
    const ref = new WeakRef(Array.from({ length: 200_000 }, (_, i) => i));
    await new Promise((resolve) => setImmediate(resolve));
    collectBeforeObjects(0)('metadata');
    expect(ref.deref() === undefined).toBe(true);
  });
});
