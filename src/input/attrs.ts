// A regular file's mode and owner, one object shared by every file that has
// all three equal. A tree's files mostly do (nearly all are root's, with one
// of a few modes: /usr has a few dozen such sets for its 135k files), so a
// file holds one field for them rather than three, 16 of the 96 bytes a
// file of a large tree cost. Times are not in it: where a tree's files
// share times (a package's files, a tarball's seconds) SharedTime shares
// them already, and where each file has its own (a staging tree just
// installed, nanoseconds apart) a set per file would cost more than it
// saves.

/** Never mutated: a file whose mode or owner changes takes another. */
export interface FileAttrs {
  readonly perm: number;
  readonly uid: number;
  readonly gid: number;
}

// Kept by uid and mode (one number: a 12-bit mode below a 32-bit uid),
// then a short list by gid. Per thread and bounded: cleared when full,
// which only stops later files sharing with earlier ones.
const MAX = 1 << 12;
const byUidPerm = new Map<number, FileAttrs | FileAttrs[]>();
let kept = 0;
let last: FileAttrs | undefined;

/** The one FileAttrs with these values. */
export function fileAttrs(perm: number, uid: number, gid: number): FileAttrs {
  // files listed together mostly have one set: the last one is the next too
  if (last !== undefined && last.perm === perm && last.uid === uid && last.gid === gid) return last;
  const key = uid * 4096 + perm;
  const slot = byUidPerm.get(key);
  let found: FileAttrs | undefined;
  if (slot !== undefined) {
    if (!Array.isArray(slot)) {
      if (slot.perm === perm && slot.uid === uid && slot.gid === gid) found = slot;
    } else {
      for (const a of slot) {
        if (a.perm === perm && a.uid === uid && a.gid === gid) {
          found = a;
          break;
        }
      }
    }
  }
  last = found ?? keep(key, Object.freeze({ perm, uid, gid }));
  return last;
}

function keep(key: number, a: FileAttrs): FileAttrs {
  if (kept === MAX) {
    byUidPerm.clear();
    kept = 0;
  }
  kept++;
  const slot = byUidPerm.get(key);
  if (slot === undefined) byUidPerm.set(key, a);
  else if (Array.isArray(slot)) slot.push(a);
  else byUidPerm.set(key, [slot, a]);
  return a;
}
