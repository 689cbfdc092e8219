// Directory ZAPs (src/zpl/dirzaps.ts): a directory's ZAP packed from the
// tree and encoded block by block must be the ZAP buildZap makes of its
// entries, and fail as buildZap does; salts differ per dataset and object.

import { describe, expect, test } from 'vitest';
import type { Inode, NodeType } from '../../src/input/tree.js';
import { SeedSource } from '../../src/util/seed.js';
import { buildZap } from '../../src/zap/index.js';
import { dirEntries, dirZapSource, zapSalt } from '../../src/zpl/dirzaps.js';
import type { ZapBlockSource } from '../../src/zap/zap.js';

const T = { sec: 0, nsec: 0 };
let nextObj = 10;

function inode(type: NodeType, entries?: Inode['entries']): Inode {
  return { type, perm: 0o644, uid: 0, gid: 0, size: 0, atime: T, mtime: T, ctime: T, crtime: T, objid: nextObj++, ...(entries ? { entries } : {}) };
}

function dirOf(names: string[], types: NodeType[] = ['file']): Inode {
  return inode('dir', names.map((n, i) => ({ name: Buffer.from(n), inode: inode(types[i % types.length]!) })));
}

/**
 * Entries as the walk keeps them (a latin1 string beside the bytes), names
 * with bytes past 0x7f, and object numbers past 2^28 and 2^32 (the upper
 * word of a value holds the type and the object's top bits).
 */
function walkedDir(): Inode {
  const entries = Array.from({ length: 3000 }, (_, i) => {
    const name = Buffer.from([0x61 + (i % 26), 0x80 + (i % 128), ...Buffer.from(String(i))]);
    const ino = inode(i % 3 ? 'file' : 'dir');
    ino.objid = i % 2 ? 2 ** 40 + i * 7919 : 2 ** 28 + i;
    return { name, inode: ino, latin1Name: name.toString('latin1') };
  });
  return inode('dir', entries);
}

describe('directory ZAPs', () => {
  const seed = new SeedSource('dirzaps-test');

  test('the salt depends on the seed, the dataset and the object', () => {
    const a = zapSalt(seed, 'tp', 5);
    expect(zapSalt(seed, 'tp', 6)).not.toBe(a);
    expect(zapSalt(seed, 'tp/x', 5)).not.toBe(a);
    expect(zapSalt(new SeedSource('other'), 'tp', 5)).not.toBe(a);
    expect(zapSalt(new SeedSource('dirzaps-test'), 'tp', 5)).toBe(a);
  });

  /** A source's blocks, each encoded into a zeroed buffer of its own. */
  function drain(src: ZapBlockSource): Buffer[] {
    const out: Buffer[] = [];
    for (let b = 0; b < src.count; b++) {
      const block = new Uint8Array(src.blockSize);
      src.encodeBlock(b, block);
      out.push(Buffer.from(block));
    }
    return out;
  }

  test('a directory built in place, block by block, is the ZAP buildZap makes of it', () => {
    const cases = [
      dirOf([]),
      dirOf(Array.from({ length: 300 }, (_, i) => `m-${i}`), ['file', 'dir', 'symlink']),
      dirOf(['x'.repeat(200), 'short']),
      dirOf(Array.from({ length: 20_000 }, (_, i) => `big-${i}`)),
      walkedDir(),
    ];
    for (const dir of cases) {
      const salt = zapSalt(seed, 'tp', dir.objid!);
      const want = buildZap(dirEntries(dir), { salt });
      const src = dirZapSource(dir, salt);
      expect([src.kind, src.blockSize, src.count, src.numEntries]).toEqual([want.kind, want.blockSize, want.blocks.length, want.numEntries]);
      const got = drain(src);
      got.forEach((b, i) => expect(b.equals(want.blocks[i]!)).toBe(true));
    }
  });

  test('a directory built in place with entries no ZAP takes fails as buildZap does', () => {
    expect(() => dirZapSource(dirOf(['same', 'same']), 1n)).toThrow(/duplicate ZAP name/);
    const long = dirOf(['n'.repeat(300)]);
    let want = '';
    try { buildZap(dirEntries(long), { salt: 1n }); } catch (e) { want = (e as Error).message; }
    expect(want).not.toBe('');
    expect(() => dirZapSource(long, 1n)).toThrow(want);
    for (const bad of [['ok', 'a\0b'], ['ok', '']]) {
      const dir = dirOf(bad);
      let message = '';
      try { buildZap(dirEntries(dir), { salt: 1n }); } catch (e) { message = (e as Error).message; }
      expect(message).not.toBe('');
      expect(() => dirZapSource(dir, 1n)).toThrow(message);
    }
  });

  test('an entry whose inode has no object number is refused by both paths, by name', () => {
    for (const count of [3, 20_000]) {
      const dir = dirOf(Array.from({ length: count }, (_, i) => `n${i}`));
      delete dir.entries![1]!.inode.objid;
      expect(() => dirZapSource(dir, 1n)).toThrow('directory entry n1 has no object number');
      expect(() => dirEntries(dir)).toThrow('directory entry n1 has no object number');
    }
  });
});
