// A file's mode and owner are one object shared by the files that have all
// three equal (attrs.ts): sharing must never let a change to one file reach
// another.
import { describe, expect, it } from 'vitest';
import { fileAttrs } from '../../src/input/attrs.js';
import { HostFile } from '../../src/input/walk.js';
import type { Timespec } from '../../src/input/tree.js';

const t1: Timespec = Object.freeze({ sec: 1_700_000_000, nsec: 5 });
const t2: Timespec = Object.freeze({ sec: 1_700_000_000, nsec: 6 });
const dir = Buffer.from('/stage/');

describe('fileAttrs', () => {
  it('gives one object for equal values, whatever was asked for in between', () => {
    const a = fileAttrs(0o644, 0, 0);
    // (the uid and mode make one key: these must not meet under it)
    const others = [fileAttrs(0o755, 0, 0), fileAttrs(0o644, 1, 0), fileAttrs(0o644, 0, 1), fileAttrs(0, 1, 0), fileAttrs(0o644, 2 ** 32 - 1, 2 ** 32 - 1)];
    expect(fileAttrs(0o644, 0, 0)).toBe(a);
    for (const o of others) expect(o).not.toBe(a);
    expect(new Set(others).size).toBe(others.length);
    expect(fileAttrs(0o755, 0, 0)).toBe(others[0]);
    expect(fileAttrs(0o644, 0, 1)).toBe(others[2]);
    expect(others.map((o) => [o.perm, o.uid, o.gid])).toEqual([[0o755, 0, 0], [0o644, 1, 0], [0o644, 0, 1], [0, 1, 0], [0o644, 2 ** 32 - 1, 2 ** 32 - 1]]);
    expect(Object.isFrozen(a)).toBe(true);
  });
});

describe('HostFile attributes', () => {
  it('reads back what it was given, and a change to one file leaves the others as they were', () => {
    const a = new HostFile(0o644, 10, 20, 1, t1, dir, 'a');
    const b = new HostFile(0o644, 10, 20, 2, t1, dir, 'b');
    expect([a.perm, a.uid, a.gid, a.mtime]).toEqual([0o644, 10, 20, t1]);
    a.perm = 0o4755;
    a.uid = 0;
    expect([a.perm, a.uid, a.gid]).toEqual([0o4755, 0, 20]);
    expect([b.perm, b.uid, b.gid]).toEqual([0o644, 10, 20]);
    b.gid = 0;
    b.ctime = t2; // the four times are one
    expect([b.perm, b.uid, b.gid, b.atime, b.mtime, b.crtime]).toEqual([0o644, 10, 0, t2, t2, t2]);
    expect([a.gid, a.mtime]).toEqual([20, t1]);
    a.perm = 0o600;
    a.uid = 1;
    a.gid = 2;
    expect([a.perm, a.uid, a.gid]).toEqual([0o600, 1, 2]);
    expect([b.perm, b.uid, b.gid]).toEqual([0o644, 10, 0]);
  });
});
