// Staged regular files the walk opened, kept open until their data is read.
// A file taken by lstat(path) and later open(path) has its full path looked
// up twice; open(path) then fstat(fd) looks it up once, which took 11-15%
// off the build thread's system time on 100k small files and 1-11% on /usr
// (bench/RESULTS.md, thirty-fourth round). Only a walk whose data is
// written alongside (prewrite.ts) and read on the build thread holds files,
// and only up to a budget: elsewhere the data is read after the whole tree,
// and holding every file open until then would take as many descriptors as
// the tree has files.

import { closeSync, constants, fstatSync, openSync, type BigIntStats } from 'node:fs';
import type { Inode } from './tree.js';

/**
 * Most files held open at once. A directory's files are read only once
 * the walk has been through it (and through the subdirectories sorted
 * before them), so the files held are those of the directories on the
 * walk's way down: /usr held ~630 at the most after each directory, and
 * 98.5k of its 118k files fit in 512 (101k in 1,024). A file past the
 * budget is taken by lstat and read by path, as before. The reader holds
 * up to its look-ahead (256) more, taken from here and not yet read.
 */
export const HELD_FILES = 512;

// O_NOFOLLOW: a name that became a symlink since readdir is not followed
// (the open fails and the walk lstat()s it). O_NONBLOCK: one that became a
// FIFO does not block the open. O_NOCTTY: one that became a terminal does
// not become the process's. None of them exists on Windows, where nothing
// is held.
const OPEN_FLAGS =
  constants.O_NOFOLLOW === undefined || constants.O_NONBLOCK === undefined
    ? undefined
    : constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | (constants.O_NOCTTY ?? 0);

export class HeldFiles {
  private readonly fds = new Map<Inode, number>();

  constructor(private budget = HELD_FILES) {}

  /** Whether files are still being held (see stop). */
  get active(): boolean {
    return this.budget > 0;
  }

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
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'EMFILE' || code === 'ENFILE') this.shed();
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

  /**
   * Out of descriptors (a hard limit Node could not raise, say `ulimit -n
   * 1024`): the rest of the process needs them more. Half of those held
   * are closed (those files are read by path) and no more are held.
   */
  private shed(): void {
    // (the last ones held are the last to be read)
    const held = [...this.fds];
    for (const [ino, fd] of held.slice(held.length >> 1)) {
      this.fds.delete(ino);
      closeSync(fd);
    }
    this.budget = 0;
  }

  /** Hold no more, and close what is held (the data will not be read: the build is failing). */
  stop(): void {
    this.budget = 0;
    this.closeAll();
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
