// Building a tree from entries that each name a full path, in any order
// (tarball members, manifest lines). Every directory gets a name index so a
// lookup costs O(1) however large the directory, and directories nobody
// listed are created on the way to the entries below them.

import { UserError } from '../util/errors.js';
import { showEntryPath } from './mtree.js';
import type { Dirent, Inode } from './tree.js';

function key(name: Uint8Array): string {
  // latin1 maps bytes 1:1 to code units, so distinct names never collide.
  return Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('latin1');
}

export class TreeBuilder {
  private readonly index = new Map<Inode, Map<string, Dirent>>();

  constructor(readonly root: Inode) {}

  private dirIndex(dir: Inode): Map<string, Dirent> {
    let m = this.index.get(dir);
    if (m === undefined) {
      m = new Map();
      for (const e of dir.entries ?? []) m.set(key(e.name), e);
      this.index.set(dir, m);
    }
    return m;
  }

  child(dir: Inode, name: Uint8Array): Dirent | undefined {
    return this.dirIndex(dir).get(key(name));
  }

  children(dir: Inode): IterableIterator<Dirent> {
    return this.dirIndex(dir).values();
  }

  /**
   * The directory that is to hold `path`'s last component, creating missing
   * directories with `implicitDir` on the way. `where` starts the message if
   * a component on the way exists but is not a directory.
   */
  parentOf(path: readonly Uint8Array[], implicitDir: () => Inode, where: string): Inode {
    let dir = this.root;
    for (let i = 0; i < path.length - 1; i++) {
      const e = this.child(dir, path[i]!);
      if (e === undefined) {
        const made = implicitDir();
        this.add(dir, path[i]!, made);
        dir = made;
      } else if (e.inode.type !== 'dir') {
        throw new UserError(`${where}: ${showEntryPath(path.slice(0, i + 1))} is not a directory`);
      } else {
        dir = e.inode;
      }
    }
    return dir;
  }

  /** Put `inode` at `name` in `dir`, replacing whatever was there. */
  add(dir: Inode, name: Uint8Array, inode: Inode): void {
    this.dirIndex(dir).set(key(name), { name, inode });
  }

  remove(dir: Inode, name: Uint8Array): void {
    this.dirIndex(dir).delete(key(name));
  }

  /** Write every indexed directory's entries back (unsorted; the writer sorts). */
  finish(): Inode {
    for (const [dir, m] of this.index) dir.entries = [...m.values()];
    this.index.clear();
    return this.root;
  }
}
