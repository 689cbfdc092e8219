// Directory ZAPs built ahead (src/zpl/dirzaps.ts): what comes back for each
// directory, taken in order, must be the blocks the ZPL writer would have
// built itself, whatever the batching and the window. The host here runs in
// the same thread (a channel that answers as soon as a batch is posted); the
// command line's two-thread path is held against the in-process build in
// test/e2e/dirzaps.test.ts.

import { describe, expect, test } from 'vitest';
import type { Inode, NodeType } from '../../src/input/tree.js';
import { SeedSource } from '../../src/util/seed.js';
import { buildZap } from '../../src/zap/index.js';
import { allocDirZapMemory, dirEntries, dirZapSource, DirZapsAhead, runBatch, zapSalt, type DirJobBatch, type DirZapChannel } from '../../src/zpl/dirzaps.js';
import type { ZapBlockSource } from '../../src/zap/zap.js';

const T = { sec: 0, nsec: 0 };
let nextObj = 10;

function inode(type: NodeType, entries?: Inode['entries']): Inode {
  return { type, perm: 0o644, uid: 0, gid: 0, size: 0, atime: T, mtime: T, ctime: T, crtime: T, objid: nextObj++, ...(entries ? { entries } : {}) };
}

function dirOf(names: string[], types: NodeType[] = ['file']): Inode {
  return inode('dir', names.map((n, i) => ({ name: Buffer.from(n), inode: inode(types[i % types.length]!) })));
}

/** Objects in writing order: directories of every size class between files. */
function objects(): Inode[] {
  const out: Inode[] = [];
  out.push(dirOf([]));
  for (let d = 0; d < 300; d++) {
    out.push(inode('file'));
    out.push(dirOf(Array.from({ length: d % 17 }, (_, i) => `e${d}-${i}`), ['file', 'dir', 'symlink', 'chardev', 'fifo']));
  }
  // long names make a fat ZAP; 300 entries a 19 KB micro ZAP; 20,000 are more than a slot holds
  out.push(dirOf(['x'.repeat(200), 'short']));
  // fat ZAPs in a row, more of them than one result slot holds
  for (let d = 0; d < 20; d++) out.push(dirOf([`${'y'.repeat(60)}${d}`, `${'z'.repeat(70)}${d}`]));
  out.push(dirOf(Array.from({ length: 20_000 }, (_, i) => `big-${i}`)));
  for (let d = 0; d < 50; d++) out.push(dirOf(Array.from({ length: 300 }, (_, i) => `m${d}-${i}`)));
  out.push(inode('symlink'));
  return out;
}

/** A host in this thread: each batch is answered when it is posted. */
function localChannel(log: { posts: number; closed: boolean; inFlight?: number }): DirZapChannel {
  const sab = allocDirZapMemory();
  let answered = 0;
  return {
    sab,
    post: (b: DirJobBatch) => { log.posts++; runBatch(sab, structuredClone(b)); answered++; },
    answered: () => answered,
    wait: () => { throw new Error('a local channel never waits'); },
    close: () => { log.closed = true; },
  };
}

describe('directory ZAPs built ahead', () => {
  const seed = new SeedSource('dirzaps-test');

  test('each directory gets the blocks it would have built itself, in batches', () => {
    const objs = objects();
    const log = { posts: 0, closed: false };
    const ahead = new DirZapsAhead(localChannel(log), seed.text, 'tp/ds');
    let sent = 0;
    let dirs = 0;
    for (let i = 0; i < objs.length; i++) {
      sent = ahead.send(objs, sent);
      expect(sent).toBeGreaterThan(i); // what is taken next has been sent
      const ino = objs[i]!;
      if (ino.type !== 'dir') continue;
      dirs++;
      const got = ahead.take();
      if (ino.entries!.length === 20_000) {
        // more than a slot holds: the writer builds it itself
        expect(got).toBeUndefined();
        continue;
      }
      const want = buildZap(dirEntries(ino), { salt: zapSalt(seed, 'tp/ds', ino.objid!) });
      expect(got, `directory ${ino.objid}`).toBeDefined();
      expect(got!.blockSize).toBe(want.blockSize);
      expect(got!.blocks.length).toBe(want.blocks.length);
      for (let b = 0; b < want.blocks.length; b++) expect(Buffer.from(got!.blocks[b]!).equals(want.blocks[b]!)).toBe(true);
    }
    ahead.close();
    expect(dirs).toBe(373);
    expect(log.posts).toBeGreaterThan(4);
    expect(log.posts).toBeLessThan(dirs / 4);
    expect(log.closed).toBe(true);
  });

  test('a directory the host cannot build comes back empty-handed, the others as usual', () => {
    const bad = dirOf(['same', 'same']);
    const good = dirOf(['a', 'b']);
    const long = dirOf(['n'.repeat(70_000)]);
    const ahead = new DirZapsAhead(localChannel({ posts: 0, closed: false }), seed.text, 'tp');
    expect(ahead.send([long, bad, good], 0)).toBe(3);
    // a name longer than any ZAP's comes back to be built (and refused) in place
    expect(ahead.take()).toBeUndefined();
    expect(ahead.take()).toBeUndefined();
    expect(Buffer.from(ahead.take()!.blocks[0]!).equals(buildZap(dirEntries(good), { salt: zapSalt(seed, 'tp', good.objid!) }).blocks[0]!)).toBe(true);
    // what the writer then meets building it itself
    expect(() => buildZap(dirEntries(bad), { salt: 1n })).toThrow(/duplicate ZAP name/);
  });

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
