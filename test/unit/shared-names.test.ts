// Equal names share one string while a tree is built (SharedNames in
// tree.ts): a name met again must come back as the string kept the first
// time, and a name must never come back as another one, however many
// names share its slot.
import { describe, expect, it } from 'vitest';
import { SharedNames } from '../../src/input/tree.js';

/** A string equal to `s` but made anew (as readdir makes each name), not the literal. */
const fresh = (s: string): string => Buffer.from(s, 'latin1').toString('latin1');

describe('SharedNames', () => {
  it('keeps a name met again: `own` runs once for it', () => {
    const owned: string[] = [];
    const names = new SharedNames((s) => { owned.push(s); return s; });
    for (let i = 0; i < 5; i++) {
      expect(names.share(fresh('changelog.Debian.gz'))).toBe('changelog.Debian.gz');
      expect(names.share(fresh('copyright'))).toBe('copyright');
    }
    expect(owned).toEqual(['changelog.Debian.gz', 'copyright']);
  });

  it('never gives one name for another, across many names that evict each other', () => {
    let owned = 0;
    const names = new SharedNames((s) => { owned++; return s; });
    const all: string[] = [];
    for (let i = 0; i < 40_000; i++) all.push(`n${i.toString(36)}${'x'.repeat(i % 7)}`);
    // names of every length to 255, and bytes of all of latin1
    for (let n = 1; n <= 255; n++) all.push(String.fromCharCode(...Array.from({ length: n }, (_, k) => (k * 37 + n) % 256 || 1)));
    for (const s of all) expect(names.share(fresh(s))).toBe(s);
    for (const s of all) expect(names.share(fresh(s))).toBe(s);
    expect(owned).toBeGreaterThan(all.length); // the table is bounded: most names were evicted and owned again
    // the name just shared is kept
    const last = all[all.length - 1]!;
    const before = owned;
    expect(names.share(fresh(last))).toBe(last);
    expect(owned).toBe(before);
  });

  it('forgets every name when cleared', () => {
    let owned = 0;
    const names = new SharedNames((s) => { owned++; return s; });
    names.share(fresh('bin'));
    names.share(fresh('bin'));
    expect(owned).toBe(1);
    names.clear();
    expect(names.share(fresh('bin'))).toBe('bin');
    expect(owned).toBe(2);
  });
});
