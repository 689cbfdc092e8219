// A regular file's mode, owner and time, one object shared by every file
// that has all four equal. A tree's files mostly do (a package's files
// share a time, and nearly all are root's with one of a few modes: /usr has
// ~5k such sets for its 135k files), so a file holds one field for them
// rather than four, ~24 of the ~96 bytes a file of a large tree costs.

import type { Timespec } from './tree.js';

/** Never mutated: a file whose mode, owner or time changes takes another. */
export interface FileAttrs {
  readonly perm: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: Timespec;
}

// Kept by time (a tree's Timespecs are shared objects, times.ts), then a
// short list per time. Per thread and bounded: cleared when full, which only
// stops later files sharing with earlier ones.
const MAX = 1 << 14;
const byTime = new Map<Timespec, FileAttrs | FileAttrs[]>();
let kept = 0;
let last: FileAttrs | undefined;

const same = (a: FileAttrs, perm: number, uid: number, gid: number): boolean => a.perm === perm && a.uid === uid && a.gid === gid;

/** The one FileAttrs with these values (`mtime` compared as an object: share times first). */
export function fileAttrs(perm: number, uid: number, gid: number, mtime: Timespec): FileAttrs {
  // files listed together mostly have one set: the last one is the next too
  if (last !== undefined && last.mtime === mtime && same(last, perm, uid, gid)) return last;
  const slot = byTime.get(mtime);
  let found: FileAttrs | undefined;
  if (slot !== undefined) {
    if (!Array.isArray(slot)) {
      if (same(slot, perm, uid, gid)) found = slot;
    } else {
      for (const a of slot) {
        if (same(a, perm, uid, gid)) {
          found = a;
          break;
        }
      }
    }
  }
  last = found ?? keep(Object.freeze({ perm, uid, gid, mtime }));
  return last;
}

function keep(a: FileAttrs): FileAttrs {
  if (kept === MAX) {
    byTime.clear();
    kept = 0;
  }
  kept++;
  const slot = byTime.get(a.mtime);
  if (slot === undefined) byTime.set(a.mtime, a);
  else if (Array.isArray(slot)) slot.push(a);
  else byTime.set(a.mtime, [slot, a]);
  return a;
}
