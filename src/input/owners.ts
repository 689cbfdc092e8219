// --all-root, --force-uid, --force-gid: one owner for everything, the way
// mksquashfs (-all-root, -force-uid, -force-gid) and mkfs.erofs (--all-root,
// --force-uid, --force-gid) let unprivileged builds say "all root". Applied
// after every input and -F spec, so they win over both; modes, setuid and
// setgid bits included, are left as they are.

import type { Inode } from './tree.js';

export interface OwnerOverride {
  uid?: number;
  gid?: number;
}

/** --all-root is uid 0 and gid 0 unless --force-uid/--force-gid say otherwise. */
export function ownerOverride(allRoot: boolean, uid: number | undefined, gid: number | undefined): OwnerOverride {
  return { uid: uid ?? (allRoot ? 0 : undefined), gid: gid ?? (allRoot ? 0 : undefined) };
}

export function forceOwners(root: Inode, o: OwnerOverride): void {
  if (o.uid === undefined && o.gid === undefined) return;
  const stack: Inode[] = [root];
  while (stack.length > 0) {
    const ino = stack.pop()!;
    if (o.uid !== undefined) ino.uid = o.uid;
    if (o.gid !== undefined) ino.gid = o.gid;
    if (ino.entries) for (const e of ino.entries) stack.push(e.inode);
  }
}
