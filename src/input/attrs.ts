// A regular file's mode and owner, one object shared by every file that has
// all three equal. A tree's files mostly do (nearly all are root's, with one
// of a few modes: /usr has a few dozen such sets for its 135k files), so a
// file holds one field for them rather than three, 16 of the 96 bytes a
// file of a large tree cost. Times are not in it: where a tree's files
// share times (a package's files, a tarball's seconds) SharedTime shares
// them already, and where each file has its own (a staging tree just
// installed, nanoseconds apart) a set per file would cost more than it
// saves.

import { BoundedPairMap } from '../util/pairmap.js';

/** Never mutated: a file whose mode or owner changes takes another. */
export interface FileAttrs {
  readonly perm: number;
  readonly uid: number;
  readonly gid: number;
}

// Kept by uid and mode (one number: a 12-bit mode below a 32-bit uid),
// then gid. Per thread (bounded: see BoundedPairMap).
const kept = new BoundedPairMap<FileAttrs>(1 << 12, (a) => a.gid);
let last: FileAttrs | undefined;

/** The one FileAttrs with these values. */
export function fileAttrs(perm: number, uid: number, gid: number): FileAttrs {
  // files listed together mostly have one set: the last one is the next too
  if (last !== undefined && last.perm === perm && last.uid === uid && last.gid === gid) return last;
  const key = uid * 4096 + perm;
  last = kept.get(key, gid) ?? kept.set(key, Object.freeze({ perm, uid, gid }));
  return last;
}
