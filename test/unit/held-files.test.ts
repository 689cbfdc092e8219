// Regular files the walk opens and holds until their data is read
// (src/input/held-files.ts): what is held, that the data really comes
// through the held descriptor, the budget, and that no descriptor outlives
// a build, whether it succeeds or fails.

import { spawnSync } from 'node:child_process';
import { closeSync, linkSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { buildImage, UserError } from '../../src/index.js';
import { HeldFiles } from '../../src/input/held-files.js';
import { openInputs } from '../../src/input/pipeline.js';
import type { Inode } from '../../src/input/tree.js';
import { walkCounted } from '../../src/input/walk.js';
import { fdCount, settledFds } from '../helpers/fds.js';
import { memoryContext, prewriteHeld } from '../helpers/memory-context.js';

const linux = process.platform === 'linux';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tsmakefs-held-'));
});
afterEach(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function mk(rel: string, content: string | Buffer = ''): string {
  const p = join(tmp, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, content);
  return p;
}

describe.runIf(linux)('HeldFiles', () => {
  test('opens regular files up to its budget; take hands a descriptor over once; closeAll closes the rest', () => {
    const before = fdCount();
    const held = new HeldFiles(2);
    const a = held.open(Buffer.from(mk('a', 'aa')));
    const b = held.open(Buffer.from(mk('b', 'bbb')));
    expect(a?.st.isFile()).toBe(true);
    expect(b?.st.size).toBe(3n);
    const ia = {} as Inode;
    const ib = {} as Inode;
    held.hold(ia, a!.fd);
    held.hold(ib, b!.fd);
    expect(() => held.hold(ia, a!.fd)).toThrow(/held open twice/);
    // the budget is spent: the caller falls back to lstat
    expect(held.open(Buffer.from(mk('c', 'c')))).toBeUndefined();
    expect(fdCount()).toBe(before + 2);
    expect(held.take(ia)).toBe(a!.fd);
    expect(held.take(ia)).toBe(-1);
    expect(held.size).toBe(1);
    held.closeAll();
    expect(held.size).toBe(0);
    // a's descriptor was handed over, not closed; dropping what is no
    // longer held closes nothing
    expect(fdCount()).toBe(before + 1);
    held.drop(ia);
    expect(fdCount()).toBe(before + 1);
    closeSync(a!.fd);
    expect(fdCount()).toBe(before);
  });

  test('a symlink or a missing name is not opened (the walk lstat()s it); a FIFO opens without blocking', () => {
    const before = fdCount();
    const held = new HeldFiles();
    mk('target', 'x');
    symlinkSync('target', join(tmp, 'link'));
    expect(held.open(Buffer.from(join(tmp, 'link')))).toBeUndefined();
    expect(held.open(Buffer.from(join(tmp, 'missing')))).toBeUndefined();
    expect(spawnSync('mkfifo', [join(tmp, 'fifo')]).status).toBe(0);
    const fifo = held.open(Buffer.from(join(tmp, 'fifo')));
    expect(fifo?.st.isFIFO()).toBe(true);
    held.hold({} as Inode, fifo!.fd);
    held.closeAll();
    expect(fdCount()).toBe(before);
  });
});

describe.runIf(linux)('a walk that holds files', () => {
  test('holds each regular file once (a hard link at its first name), nothing else, and closes the rest when told', () => {
    const stage = join(tmp, 'stage');
    mk('stage/a', 'A');
    mk('stage/d/b', 'B');
    linkSync(join(stage, 'a'), join(stage, 'd/z-link'));
    symlinkSync('a', join(stage, 'sym'));
    mkdirSync(join(stage, 'empty'));
    expect(spawnSync('mkfifo', [join(stage, 'fifo')]).status).toBe(0);
    const before = fdCount();
    const held = new HeldFiles();
    const { totals } = walkCounted([stage], { held });
    expect(totals.files).toBe(2);
    expect(held.size).toBe(2);
    expect(fdCount()).toBe(before + 2);
    held.closeAll();
    expect(fdCount()).toBe(before);
  });

  test('held files are read through their descriptors; past the budget, by path', () => {
    const stage = join(tmp, 'stage');
    for (const n of ['f1', 'f2', 'f3', 'f4']) mk(`stage/${n}`, `data of ${n}`);
    const before = fdCount();
    const held = new HeldFiles(2);
    const { root } = walkCounted([stage], { held });
    expect(held.size).toBe(2);
    // f1 and f2 are held: renamed away, they are still read; f3 is read
    // by its path, which now holds other bytes
    renameSync(join(stage, 'f1'), join(tmp, 'f1-moved'));
    unlinkSync(join(stage, 'f2'));
    writeFileSync(join(stage, 'f3'), 'DATA OF F3');
    expect(prewriteHeld(root, held)).toEqual([['f1', 'data of f1'], ['f2', 'data of f2'], ['f3', 'DATA OF F3'], ['f4', 'data of f4']]);
    expect(fdCount()).toBe(before);
  });

  test('a failed read closes what the reader was given and what is still held', () => {
    const stage = join(tmp, 'stage');
    for (let i = 0; i < 20; i++) mk(`stage/f${String(i).padStart(2, '0')}`, `file ${i}`);
    const before = fdCount();
    const held = new HeldFiles(5);
    const { root } = walkCounted([stage], { held });
    // f02 is held, and the reader has f03 and f04 (held) queued when it
    // finds f02 short; the rest are past the budget
    truncateSync(join(stage, 'f02'), 1);
    expect(() => prewriteHeld(root, held)).toThrow(`${join(stage, 'f02')}: file shrank while being read (expected 6 bytes)`);
    expect(fdCount()).toBe(before);
  });
});

describe.runIf(linux)('a build from one staging directory holds its files', () => {
  test('a file removed once the walk has passed it is still read, through the descriptor the walk held', async () => {
    const stage = join(tmp, 'stage');
    mk('stage/a', 'first');
    mk('stage/b', 'second');
    mk('stage/d/c', 'third');
    const source = await openInputs(
      { inputs: [stage], policy: {}, duplicates: 0, onlySpec: false, allRoot: false, warn: () => {}, xattrs: false },
      { prewrite: true },
    );
    const { ctx, got } = memoryContext();
    const beginFile = ctx.beginFile.bind(ctx);
    // the root's files are all opened before the first of them is read
    ctx.beginFile = (size, path) => {
      if (path === 'a') unlinkSync(join(stage, 'b'));
      return beginFile(size, path);
    };
    const before = fdCount();
    if (typeof source !== 'function') throw new Error('a directory input is read as the image is written');
    await source(ctx);
    expect(got).toEqual([['a', 'first'], ['b', 'second'], ['d/c', 'third']]);
    expect(fdCount()).toBe(before);
  });
});

describe.runIf(linux)('builds leave no descriptor open', () => {
  /** xorshift32 bytes that lz4 cannot shrink. */
  function noise(n: number, seed: number): Buffer {
    const buf = Buffer.alloc(n);
    let x = seed;
    for (let i = 0; i + 4 <= n; i += 4) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      buf.writeInt32LE(x | 0, i);
    }
    return buf;
  }

  test('after a build, and after one that runs out of space with files still held', async () => {
    const stage = join(tmp, 'stage');
    // more files than any window or budget holds, in several directories,
    // enough data that 64 MiB cannot take it
    for (let d = 0; d < 4; d++) for (let i = 0; i < 400; i++) mk(`stage/d${d}/f${i}`, i % 50 === 0 ? noise(300_000, d * 1000 + i) : `small ${d}/${i}`);
    const out = join(tmp, 'out');
    mkdirSync(out);
    const opts = { image: join(out, 'x.img'), inputs: [stage], poolName: 'tank', workers: 0 };
    const before = fdCount();
    await buildImage({ ...opts, size: '256m' });
    expect(await settledFds(before, 1000)).toBe(before);
    rmSync(opts.image);
    for (let i = 0; i < 240; i++) mk(`stage/d1/g${i}`, noise(300_000, 7 + i));
    const err = await buildImage({ ...opts, size: '64m' }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/too small/);
    expect(readdirSync(out)).toEqual([]);
    expect(await settledFds(before, 1000)).toBe(before);
  });
});
