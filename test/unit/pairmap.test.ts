// BoundedPairMap keeps the tree's shared objects (times, files' mode and
// owner): what it gives back must be exactly what was kept under both keys.
import { describe, expect, it } from 'vitest';
import { BoundedPairMap } from '../../src/util/pairmap.js';

interface Pair { a: number; b: number }

describe('BoundedPairMap', () => {
  it('finds a value only under both its keys, one or several under a first key', () => {
    const m = new BoundedPairMap<Pair>(100, (v) => v.b);
    const x = m.set(1, { a: 1, b: 5 });
    expect(m.get(1, 5)).toBe(x);
    expect(m.get(1, 6)).toBeUndefined();
    expect(m.get(2, 5)).toBeUndefined();
    const y = m.set(1, { a: 1, b: 6 });
    const z = m.set(1, { a: 1, b: 7 });
    expect([m.get(1, 5), m.get(1, 6), m.get(1, 7)]).toEqual([x, y, z]);
    expect(m.get(1, 5)).toBe(x);
    expect(m.get(1, 8)).toBeUndefined();
  });

  it('is cleared when full: later values are kept, earlier ones no longer found', () => {
    const m = new BoundedPairMap<Pair>(2, (v) => v.b);
    const x = m.set(1, { a: 1, b: 1 });
    m.set(2, { a: 2, b: 2 });
    expect(m.get(1, 1)).toBe(x);
    const z = m.set(3, { a: 3, b: 3 });
    expect(m.get(1, 1)).toBeUndefined();
    expect(m.get(2, 2)).toBeUndefined();
    expect(m.get(3, 3)).toBe(z);
  });
});
