// Building a tree from entries that each name a full path, in any order
// (tarball members, manifest lines). A lookup costs O(1) however large the
// directory, and directories nobody listed are created on the way to the
// entries below them.

import { UserError } from '../util/errors.js';
import { ownString, showEntryPath } from './mtree.js';
import { direntKey, latin1Of, SharedNames, type Dirent, type Inode } from './tree.js';
import { WalkDirent } from './walk.js';

/** A name component: raw bytes, or the same bytes as a latin1 string (one code unit per byte). */
export type NameComponent = Uint8Array | string;

function key(name: NameComponent): string {
  return typeof name === 'string' ? name : latin1Of(name);
}

/**
 * One directory's entries while the tree is built. Entries that come in
 * byte order of their names (a `tar --sort=name` archive, a sorted
 * manifest) are kept in a plain array: a name after the last one is new,
 * the last one is found at the end. The first entry out of order, or a
 * lookup of an earlier name, turns the directory into a Map. A Map entry
 * costs ~40 bytes more than an array slot: ~6 MB over /usr's 156k entries.
 */
class DirIndex {
  private list: Dirent[] = [];
  private lastKey = '';
  private map: Map<string, Dirent> | undefined;

  constructor(entries: readonly Dirent[]) {
    for (const e of entries) this.set(direntKey(e), e);
  }

  private toMap(): Map<string, Dirent> {
    if (this.map === undefined) {
      this.map = new Map();
      for (const e of this.list) this.map.set(direntKey(e), e);
      this.list = [];
    }
    return this.map;
  }

  get(k: string): Dirent | undefined {
    if (this.map !== undefined) return this.map.get(k);
    if (this.list.length === 0 || k > this.lastKey) return undefined;
    if (k === this.lastKey) return this.list[this.list.length - 1];
    return this.toMap().get(k);
  }

  set(k: string, e: Dirent): void {
    if (this.map === undefined) {
      if (this.list.length === 0 || k > this.lastKey) {
        this.list.push(e);
        this.lastKey = k;
        return;
      }
      if (k === this.lastKey) {
        this.list[this.list.length - 1] = e;
        return;
      }
    }
    this.toMap().set(k, e);
  }

  delete(k: string): void {
    if (this.get(k) !== undefined) this.toMap().delete(k);
  }

  values(): IterableIterator<Dirent> {
    return this.map !== undefined ? this.map.values() : this.list.values();
  }

  entries(): Dirent[] {
    return this.map !== undefined ? [...this.map.values()] : this.list;
  }
}

export class TreeBuilder {
  private readonly index = new Map<Inode, DirIndex>();
  // (only while building: the map goes with the builder)
  private readonly names = new SharedNames(ownString);

  constructor(readonly root: Inode) {}

  private dirIndex(dir: Inode): DirIndex {
    let m = this.index.get(dir);
    if (m === undefined) {
      m = new DirIndex(dir.entries ?? []);
      this.index.set(dir, m);
    }
    return m;
  }

  child(dir: Inode, name: NameComponent): Dirent | undefined {
    return this.dirIndex(dir).get(key(name));
  }

  children(dir: Inode): IterableIterator<Dirent> {
    return this.dirIndex(dir).values();
  }

  /**
   * The directory that is to hold `path`'s last component, creating missing
   * directories with `implicitDir` on the way. `where` starts the message if
   * a component on the way exists but is not a directory (an object whose
   * `where` is made only then, such as an mtree entry, or the string).
   */
  parentOf(path: readonly NameComponent[], implicitDir: () => Inode, where: string | { readonly where: string }): Inode {
    let dir = this.root;
    for (let i = 0; i < path.length - 1; i++) {
      const e = this.child(dir, path[i]!);
      if (e === undefined) {
        const made = implicitDir();
        this.add(dir, path[i]!, made);
        dir = made;
      } else if (e.inode.type !== 'dir') {
        throw new UserError(`${typeof where === 'string' ? where : where.where}: ${showEntryPath(path.slice(0, i + 1))} is not a directory`);
      } else {
        dir = e.inode;
      }
    }
    return dir;
  }

  /**
   * Put `inode` at `name` in `dir`, replacing whatever was there. The tree
   * keeps the name as a string of its own (a byte array per name costs
   * ~100 bytes, and a slice of an input's text would keep the whole text).
   */
  add(dir: Inode, name: NameComponent, inode: Inode): void {
    const k = this.ownName(key(name));
    this.dirIndex(dir).set(k, new WalkDirent(k, inode));
  }

  /** `name` as a string the tree may keep: of its own (see ownString), and shared with equal names. */
  ownName(name: string): string {
    return this.names.share(name);
  }

  /** Put an entry that carries its own latin1 name (a file that is its own entry) in `dir`. */
  addEntry(dir: Inode, entry: Dirent & { readonly latin1Name: string }): void {
    this.dirIndex(dir).set(entry.latin1Name, entry);
  }

  remove(dir: Inode, name: NameComponent): void {
    this.dirIndex(dir).delete(key(name));
  }

  /** Write every indexed directory's entries back (unsorted; the writer sorts). */
  finish(): Inode {
    for (const [dir, m] of this.index) dir.entries = m.entries();
    this.index.clear();
    this.names.clear();
    return this.root;
  }
}
