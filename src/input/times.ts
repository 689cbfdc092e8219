// Which time every inode gets. Whatever the input, an inode's four times
// (atime, mtime, ctime, crtime) are one value, as the directory walker has
// always done: atime and ctime only say when a staging tree happened to be
// read or chmod'ed, so keeping them would make two builds of one tree differ.
// No time ever comes from the wall clock.
//
// Precedence, first match wins:
//   1. -F spec `time=`: that entry's times, even with -T (makefs lets spec
//      times win over -T; makefs sets ctime to the wall clock there, we use
//      the spec time so the image stays reproducible).
//   2. -T (seconds, or a file's mtime): every other time of every entry, from
//      any input. A manifest's `time=` and a tar member's mtime are ignored,
//      as makefs ignores manifest times under -T.
//   3. The entry's own time: a staged file's mtime, a tar member's mtime
//      (pax mtime with its fraction), a manifest's `time=`.
//   4. Entries with no time of their own (a manifest line without `time=`,
//      directories a tarball or manifest only implies, entries -F creates
//      without `time=`): SOURCE_DATE_EPOCH if set, else 0 (1970-01-01).
// Then, only without -T, SOURCE_DATE_EPOCH clamps: every time later than it
// becomes it (the reproducible-builds.org convention for archivers); earlier
// times stay.

import { UserError } from '../util/errors.js';
import type { Inode, Timespec } from './tree.js';
import { BoundedPairMap } from '../util/pairmap.js';

export interface TimePolicy {
  /** -T: replaces every time. */
  stamp?: Timespec;
  /** SOURCE_DATE_EPOCH: default for entries without a time, and upper bound when there is no -T. */
  sourceDateEpoch?: Timespec;
}

const EPOCH: Timespec = Object.freeze({ sec: 0, nsec: 0 });

/** SOURCE_DATE_EPOCH's value (undefined: not set or empty); a malformed value is an error, as the convention asks. */
export function parseSourceDateEpoch(value: string | undefined): Timespec | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new UserError(`SOURCE_DATE_EPOCH: '${value}' is not a non-negative integer number of seconds`);
  }
  return Object.freeze({ sec: Number(value), nsec: 0 });
}

/** The time of an entry that has none of its own (rule 4, or -T). */
export function defaultTime(policy: TimePolicy): Timespec {
  return policy.stamp ?? policy.sourceDateEpoch ?? EPOCH;
}

/** An entry's time given what its input says (rules 2 and 3). */
export function entryTime(policy: TimePolicy, own: Timespec | undefined): Timespec {
  return policy.stamp ?? own ?? defaultTime(policy);
}

/**
 * A tree has few distinct times (a package's files, a manifest's lines,
 * an archive's members share one), so a Timespec equal to one given before
 * is that object: the tree holds one object per distinct time rather than
 * one per entry. The last one is checked first (entries listed together
 * mostly have one time), then those kept, by second and, where a second
 * has several, by nanosecond: files unpacked within one second interleave
 * their times, and one kept per second missed most of them (/usr: ~700 of
 * its 2.4k times fall in 20 such seconds). Bounded: cleared when full. The
 * objects given must never be mutated (as every Timespec of a tree).
 */
export class SharedTime {
  private last: Timespec | undefined;
  private readonly kept = new BoundedPairMap<Timespec>(1 << 14, (t) => t.nsec);

  share(t: Timespec): Timespec {
    const last = this.last;
    if (last !== undefined && last.sec === t.sec && last.nsec === t.nsec) return last;
    this.last = this.kept.get(t.sec, t.nsec) ?? this.kept.set(t.sec, t);
    return this.last;
  }
}

/** Give one inode the time `t` in all four fields. */
export function setTimes(inode: Inode, t: Timespec): void {
  inode.atime = t;
  inode.mtime = t;
  inode.ctime = t;
  inode.crtime = t;
}

function later(a: Timespec, b: Timespec): boolean {
  return a.sec > b.sec || (a.sec === b.sec && a.nsec > b.nsec);
}

/** The SOURCE_DATE_EPOCH clamp, over the whole tree; a no-op under -T. */
export function clampTimes(root: Inode, policy: TimePolicy): void {
  const bound = policy.sourceDateEpoch;
  if (bound === undefined || policy.stamp !== undefined) return;
  const seen = new Set<Inode>();
  const stack: Inode[] = [root];
  while (stack.length > 0) {
    const ino = stack.pop()!;
    if (seen.has(ino)) continue;
    seen.add(ino);
    if (later(ino.atime, bound)) ino.atime = bound;
    if (later(ino.mtime, bound)) ino.mtime = bound;
    if (later(ino.ctime, bound)) ino.ctime = bound;
    if (later(ino.crtime, bound)) ino.crtime = bound;
    if (ino.entries) for (const e of ino.entries) stack.push(e.inode);
  }
}

/** Parse "sec[.frac]" as a decimal number of seconds (pax mtime); frac may have any number of digits. */
export function parseDecimalTime(text: string): Timespec | undefined {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text);
  if (m === null) return undefined;
  const frac = (m[3] ?? '').slice(0, 9).padEnd(9, '0');
  let sec = Number(m[2]);
  let nsec = Number(frac);
  if (!Number.isSafeInteger(sec)) return undefined;
  if (m[1] === '-') {
    // -1.25 s is 2 s before the epoch plus 0.75 s: nsec stays non-negative.
    sec = -sec;
    if (nsec > 0) {
      sec -= 1;
      nsec = 1_000_000_000 - nsec;
    }
  }
  return Object.freeze({ sec: sec || 0, nsec }); // no -0
}
