// TreeBuilder against a plain Map per directory, over random operations:
// names that come in byte order (kept in an array) and names that do not
// (a Map from the first one out of order), replacements, removals, lookups
// of earlier names, and directories that come with entries.

import { describe, expect, test } from 'vitest';
import { newDir, type Dirent, type Inode } from '../../src/input/tree.js';
import { TreeBuilder } from '../../src/input/treebuild.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/** Each directory's entries as name -> inode, sorted by name, for comparing. */
function listing(dir: Inode, names: (e: Dirent) => string): Array<[string, Inode]> {
  return (dir.entries ?? []).map((e) => [names(e), e.inode] as [string, Inode]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

const nameOf = (e: Dirent): string => Buffer.from(e.name).toString('latin1');

describe('TreeBuilder', () => {
  test.each([1, 2, 3, 4, 5, 6, 7, 8])('random operations, seed %i: the entries a Map per directory would hold', (seed) => {
    const r = rng(seed);
    const dirs = [newDir(0o755), newDir(0o755), newDir(0o755)];
    // one directory comes with entries of its own, out of order
    const given = [newDir(0o700), newDir(0o700)];
    const tb = new TreeBuilder(newDir(0o755));
    const model = new Map<Inode, Map<string, Inode>>(dirs.map((d) => [d, new Map()]));
    const pre = newDir(0o755);
    pre.entries = [];
    model.set(pre, new Map());
    dirs.push(pre);
    // sorted runs most of the time, as a sorted tarball gives them
    const alphabet = 'abcdefghij\xe9\xff';
    const counters = new Map<Inode, number>();
    const nextSorted = (d: Inode): string => {
      const n = (counters.get(d) ?? 0) + 1;
      counters.set(d, n);
      return `n${String(n).padStart(5, '0')}`;
    };
    const randomName = (): string => Array.from({ length: 1 + Math.floor(r() * 2) }, () => alphabet[Math.floor(r() * alphabet.length)]).join('');
    for (let i = 0; i < 3000; i++) {
      const d = dirs[Math.floor(r() * dirs.length)]!;
      const m = model.get(d)!;
      const op = r();
      if (op < 0.55) {
        const name = r() < 0.8 ? nextSorted(d) : randomName();
        const ino = given[Math.floor(r() * given.length)]!;
        tb.add(d, name, ino);
        m.set(name, ino);
      } else if (op < 0.85) {
        const name = r() < 0.5 ? randomName() : [...m.keys()][Math.floor(r() * m.size)] ?? 'zz';
        expect(tb.child(d, name)?.inode, `child ${name}`).toBe(m.get(name));
        expect(tb.child(d, Buffer.from(name, 'latin1'))?.inode, `child ${name} as bytes`).toBe(m.get(name));
      } else if (op < 0.95) {
        const name = r() < 0.5 ? randomName() : [...m.keys()].at(-1) ?? 'zz';
        tb.remove(d, name);
        m.delete(name);
      } else {
        expect([...tb.children(d)].length).toBe(m.size);
      }
    }
    tb.finish();
    for (const d of dirs) {
      const want = [...model.get(d)!].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      expect(listing(d, nameOf)).toEqual(want);
    }
  });

  test('a directory that comes with entries keeps them, in any order, and takes more', () => {
    const tb = new TreeBuilder(newDir(0o755));
    const d = newDir(0o755);
    const [a, b, c] = [newDir(0o700), newDir(0o711), newDir(0o750)];
    const probe = new TreeBuilder(newDir(0o755));
    probe.add(d, 'zeta', a);
    probe.add(d, 'alpha', b);
    probe.finish();
    expect(tb.child(d, 'alpha')?.inode).toBe(b);
    expect(tb.child(d, 'zeta')?.inode).toBe(a);
    tb.add(d, 'mid', c);
    tb.add(d, 'zeta', c);
    tb.finish();
    expect(listing(d, nameOf)).toEqual([['alpha', b], ['mid', c], ['zeta', c]]);
  });
});
