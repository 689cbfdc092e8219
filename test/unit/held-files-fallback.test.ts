// Where files cannot be held open, the walk falls back to lstat and path
// reads: a file system that does not report entry types (Node then throws a
// TypeError from readdir's withFileTypes for a Buffer path), and a process
// out of descriptors. node:fs is wrapped so that both can be made to
// happen on any file system.

import * as realFs from 'node:fs';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { HeldFiles } from '../../src/input/held-files.js';
import { walkCounted } from '../../src/input/walk.js';
import { fdCount } from '../helpers/fds.js';
import { prewriteHeld } from '../helpers/memory-context.js';

const faults = vi.hoisted(() => ({ unknownTypes: false, openBudget: Infinity, typedListings: 0 }));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const readdirSync = ((path: realFs.PathLike, opts?: { withFileTypes?: boolean }) => {
    if (opts?.withFileTypes === true) {
      faults.typedListings++;
      // what Node 20-26 throw when an entry's type is DT_UNKNOWN and the
      // directory was given as a Buffer with a string encoding
      if (faults.unknownTypes) {
        throw Object.assign(new TypeError('The "path" argument must be of type string or an instance of Buffer. Received an instance of Buffer'), {
          code: 'ERR_INVALID_ARG_TYPE',
        });
      }
    }
    return (fs.readdirSync as (p: realFs.PathLike, o?: unknown) => unknown)(path, opts);
  }) as typeof fs.readdirSync;
  const openSync = ((path: realFs.PathLike, flags?: realFs.OpenMode, mode?: realFs.Mode) => {
    // only the walk's opens (O_NOFOLLOW) run out
    if (typeof flags === 'number' && (flags & fs.constants.O_NOFOLLOW) !== 0) {
      if (faults.openBudget <= 0) throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE', syscall: 'open' });
      faults.openBudget--;
    }
    return fs.openSync(path, flags ?? 'r', mode);
  }) as typeof fs.openSync;
  return { ...fs, default: { ...fs, readdirSync, openSync }, readdirSync, openSync };
});

const linux = process.platform === 'linux';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tsmakefs-heldfb-'));
  faults.unknownTypes = false;
  faults.openBudget = Infinity;
  faults.typedListings = 0;
});
afterEach(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function stage(files: number): string {
  const s = join(tmp, 'stage');
  mkdirSync(join(s, 'sub'), { recursive: true });
  for (let i = 0; i < files; i++) writeFileSync(join(s, i % 2 ? 'sub' : '', `f${String(i).padStart(3, '0')}`), `data ${i}`);
  return s;
}

describe.runIf(linux)('holding files falls back to lstat', () => {
  test('when readdir cannot give entry types: names alone from then on, nothing held, the same tree and data', () => {
    const s = stage(10);
    const plain = walkCounted([s]);
    faults.unknownTypes = true;
    const before = fdCount();
    const held = new HeldFiles();
    const { root, totals } = walkCounted([s], { held });
    // asked once, then never again in this walk
    expect(faults.typedListings).toBe(1);
    expect(held.size).toBe(0);
    expect(fdCount()).toBe(before);
    expect(totals).toEqual(plain.totals);
    expect(prewriteHeld(root, held)).toEqual(prewriteHeld(plain.root, new HeldFiles()));
    expect(prewriteHeld(root, held).length).toBe(10);
  });

  test('a walk that holds nothing does not ask for entry types', () => {
    walkCounted([stage(4)]);
    expect(faults.typedListings).toBe(0);
  });

  test('out of descriptors: half of those held are closed, no more are held, every file is still read', () => {
    const s = stage(40);
    faults.openBudget = 12;
    const before = fdCount();
    const held = new HeldFiles();
    const { root } = walkCounted([s], { held });
    // 12 opened, the 13th failed: the last 6 held were closed
    expect(held.size).toBe(6);
    expect(held.active).toBe(false);
    expect(fdCount()).toBe(before + 6);
    faults.openBudget = Infinity;
    const got = prewriteHeld(root, held);
    expect(got.length).toBe(40);
    expect(got.find(([p]) => p === 'sub/f039')?.[1]).toBe('data 39');
    expect(fdCount()).toBe(before);
  });

  test('stop() closes what is held and holds no more', () => {
    const s = stage(6);
    const before = fdCount();
    const held = new HeldFiles();
    walkCounted([s], { held });
    expect(held.size).toBe(6);
    held.stop();
    expect(held.size).toBe(0);
    expect(fdCount()).toBe(before);
    expect(held.active).toBe(false);
    faults.typedListings = 0;
    walkCounted([s], { held });
    expect(held.size).toBe(0);
    expect(faults.typedListings).toBe(0);
  });
});
