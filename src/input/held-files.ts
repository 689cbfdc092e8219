// Staged regular files the walk opened, kept open until their data is read.
// A file taken by lstat(path) and later open(path) has its full path looked
// up twice; open(path) then fstat(fd) looks it up once, which took 10-19%
// off the build thread's system time on /usr and on 100k small files
// (bench/RESULTS.md, thirty-fourth round). Only a walk whose data is
// written alongside (prewrite.ts) holds files, and only up to a budget:
// elsewhere the data is read after the whole tree, and holding every file
// open until then would take as many descriptors as the tree has files.

import { closeSync, constants, fstatSync, openSync, type BigIntStats } from 'node:fs';
import type { Inode } from './tree.js';

/**
 * Most files held open at once. A directory's files are read only once
 * the walk has been through it (and through the subdirectories sorted
 * before them), so the files held are those of the directories on the
 * walk's way down: /usr held ~600 at the most after each directory, and
 * a file past the budget is taken by lstat and read by path, as before.
 * Node raises its soft descriptor limit to the hard one at start-up, which
 * is far above this on any system it runs on.
 */
export const HELD_FILES = 1024;

// O_NOFOLLOW: a name that became a symlink since readdir is not followed
// (the open fails and the walk lstat()s it). O_NONBLOCK: one that became a
// FIFO does not block the open. Neither exists on Windows, where nothing
// is held.
const OPEN_FLAGS =
  constants.O_NOFOLLOW === undefined || constants.O_NONBLOCK === undefined ? undefined : constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

export class HeldFiles {
  private readonly fds = new Map<Inode, number>();

  constructor(private readonly budget = HELD_FILES) {}

  /**
   * A regular file (by its directory entry) opened and stat'ed through its
   * descriptor, when there is room to hold one more; undefined: there is
   * not, or the open failed (the caller lstat()s the path, and any error is
   * met where it was before).
   */
  open(path: Buffer): { fd: number; st: BigIntStats } | undefined {
    if (OPEN_FLAGS === undefined || this.fds.size >= this.budget) return undefined;
    let fd: number;
    try {
      fd = openSync(path, OPEN_FLAGS);
    } catch {
      return undefined;
    }
    try {
      return { fd, st: fstatSync(fd, { bigint: true }) };
    } catch {
      closeSync(fd);
      return undefined;
    }
  }

  /** Keep `fd` open for `ino` until it is taken. */
  hold(ino: Inode, fd: number): void {
    if (this.fds.has(ino)) throw new Error('a file held open twice');
    this.fds.set(ino, fd);
  }

  /** The descriptor held for `ino`, now the caller's to close; -1: none. */
  take(ino: Inode): number {
    const fd = this.fds.get(ino);
    if (fd === undefined) return -1;
    this.fds.delete(ino);
    return fd;
  }

  /** Close whatever is still held for `ino` (its data is not read through it). */
  drop(ino: Inode): void {
    const fd = this.take(ino);
    if (fd >= 0) closeSync(fd);
  }

  get size(): number {
    return this.fds.size;
  }

  /** Close every descriptor still held (the build is over, or failed). */
  closeAll(): void {
    for (const fd of this.fds.values()) {
      try {
        closeSync(fd);
      } catch {
        // (nothing to be done about a descriptor that will not close)
      }
    }
    this.fds.clear();
  }
}
