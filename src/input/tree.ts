// The one tree model every input (directory walk, tarball, mtree manifest)
// produces and the writer consumes. It holds metadata only: file data stays
// in its source and is streamed when the image is written, so memory grows
// with the number of entries, never with their bytes.
import type { FileData } from '../zpl/filedata.js';
import { UserError } from '../util/errors.js';

export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

export interface Timespec {
  sec: number; // seconds since the epoch (may be negative)
  nsec: number; // 0..999,999,999
}

/** Where a regular file's bytes come from. */
export type DataSource =
  | { kind: 'path'; path: string | Uint8Array } // a host file (raw bytes for non-UTF-8 names), read when the image is written
  | { kind: 'bytes'; data: Uint8Array } // small in-memory content (tests, generated files)
  | { kind: 'written'; data: FileData }; // already streamed into the image (tar input)

/** One inode. Hard links are several Dirents sharing one Inode object. */
export interface Inode {
  type: NodeType;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  perm: number;
  uid: number;
  gid: number;
  /** Regular files: data length in bytes. Others: ignored (the writer derives it). */
  size: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  crtime: Timespec;
  /** Symlink target as raw bytes. */
  target?: Uint8Array;
  /** Device nodes. */
  rdevMajor?: number;
  rdevMinor?: number;
  /** Regular files. (A file from a directory walk makes its 'path' source when asked: see walk.ts.) */
  source?: DataSource;
  /** Directories: children sorted by name bytes (see sortEntries). */
  entries?: Dirent[];
  /** Extended attributes by name ("user.x", "security.capability"), raw values (tar SCHILY.xattr records). */
  xattrs?: Map<string, Uint8Array>;
  /**
   * The inode's object number in its dataset while the ZPL writer writes it
   * (0 or absent otherwise), like the inode number makefs keeps in its
   * fsinode. Inputs start it at 0 so every inode keeps its shape.
   */
  objid?: number;
}

export interface Dirent {
  /** Raw name bytes (no '/' and no NUL), 1..255 bytes. */
  name: Uint8Array;
  inode: Inode;
  /**
   * The same name as a latin1 string (one code unit per byte), where an
   * input keeps it so (the walk): strings compare in byte order too, and
   * without the byte array `name` may have to make on each read.
   */
  readonly latin1Name?: string;
}

/** What a tree holds, counted on the finished tree (hard links once). */
export interface InputTotals {
  /** Inodes of every type, the root directory included. */
  entries: number;
  /** Regular files. */
  files: number;
  /** Sum of the regular files' sizes. */
  bytes: number;
}

/** Count one inode into `t` (the caller sees to each hard-linked inode being counted once). */
export function countInode(t: InputTotals, ino: Inode): void {
  t.entries++;
  if (ino.type === 'file') {
    t.files++;
    t.bytes += ino.size;
  }
}

const ZERO_TIME: Timespec = { sec: 0, nsec: 0 };

export function newDir(perm = 0o755): Inode {
  return {
    type: 'dir', perm, uid: 0, gid: 0, size: 0,
    atime: ZERO_TIME, mtime: ZERO_TIME, ctime: ZERO_TIME, crtime: ZERO_TIME,
    entries: [], objid: 0,
  };
}

// Directories an archive implies but never lists (a member "usr/bin/x"
// with no "usr/" member): they have no attributes of their own, only
// defaults, so the first input that does list them gives theirs, within an
// archive and across merged inputs alike. A WeakSet rather than a field:
// few inodes are ever in it, and the tree's hot objects keep their shape.
const implicitDirs = new WeakSet<Inode>();

/** Mark a directory made up for a path an input never listed. */
export function markImplicit(dir: Inode): void {
  implicitDirs.add(dir);
}

/** Whether a directory's attributes are only defaults (markImplicit). */
export function isImplicit(dir: Inode): boolean {
  return implicitDirs.has(dir);
}

/** A listed directory's attributes given to one that only had defaults; its entries stay. */
export function adoptListed(dir: Inode, from: Inode): void {
  dir.perm = from.perm;
  dir.uid = from.uid;
  dir.gid = from.gid;
  dir.atime = from.atime;
  dir.mtime = from.mtime;
  dir.ctime = from.ctime;
  dir.crtime = from.crtime;
  if (from.xattrs) dir.xattrs = from.xattrs;
  else delete dir.xattrs;
  implicitDirs.delete(dir);
}

/** Bytes as a latin1 string: one code unit per byte, so distinct names never collide and code unit order is byte order. */
export function latin1Of(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

/** A directory entry's name as a latin1 string: the one it keeps (latin1Name), or made from its bytes. */
export function direntKey(e: Dirent): string {
  return e.latin1Name ?? latin1Of(e.name);
}

/**
 * Equal names share one string while a tree is built: names repeat across
 * directories (Makefile, __init__.py, LC_MESSAGES, ...), and a tree holds
 * one per entry for the whole build. The table is bounded (a name evicts
 * another) and goes with whoever builds the tree. `own` makes the string
 * kept from the one met (see mtree.ts's ownString), where that may be a
 * slice of a larger text.
 *
 * Bounded small: repeats are mostly near each other (a package's tree
 * beside the next). The names are kept in a direct-mapped table of 8,192
 * slots, a name's slot chosen by a hash of its characters, a name that
 * misses taking the slot over. A Map was slower: its lookup of a string
 * fresh from readdir costs 150-250 ns on Node 26 (50 on Node 20-24), and
 * sharing /usr's names was the walk's largest JavaScript cost in Node 26's
 * profile; the table's own hash and compare cost 30-60 ns. It keeps /usr's
 * 139k entries in 83.6k strings, against 85.6k for a Map of 4,096 names
 * cleared when full and 76.9k for a map of every name (whose growing
 * tables left ~7 MB of garbage in V8's large-object space, where only a
 * full collection frees it).
 */
export class SharedNames {
  private static readonly SLOTS = 1 << 13;
  private readonly slots: string[] = new Array<string>(SharedNames.SLOTS).fill('');

  constructor(private readonly own: (s: string) => string = (s) => s) {}

  share(name: string): string {
    const n = name.length;
    let h = n;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x9e3779b1);
    const slot = (h ^ (h >>> 15)) & (SharedNames.SLOTS - 1);
    const kept = this.slots[slot]!;
    if (kept === name) return kept;
    const mine = this.own(name);
    this.slots[slot] = mine;
    return mine;
  }

  clear(): void {
    this.slots.fill('');
  }
}

/** Byte-wise comparison of names (C locale order), the only order the writer uses. */
export function compareNames(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * Sort a directory's entries in byte order, recursively; and refuse a tree
 * (a library caller's: our inputs make each directory once) in which a
 * directory is reached twice: in two places it would be one object with
 * two parents, and inside itself every walk over the tree would go on
 * forever.
 */
export function sortTree(dir: Inode): void {
  const stack: Inode[] = [dir];
  const seen = new Set<Inode>(stack);
  while (stack.length > 0) {
    const d = stack.pop()!;
    // (walks hand over sorted directories, and the tree is sorted more than
    // once on its way: a sort would copy every array to find that out)
    if (!isSorted(d.entries!)) d.entries!.sort((x, y) => compareNames(x.name, y.name));
    for (const e of d.entries!) {
      if (e.inode.type !== 'dir') continue;
      if (seen.has(e.inode)) throw new UserError(`directory linked twice: ${Buffer.from(e.name).toString()}`);
      seen.add(e.inode);
      stack.push(e.inode);
    }
  }
}

function isSorted(entries: Dirent[]): boolean {
  for (let i = 1; i < entries.length; i++) {
    const a = entries[i - 1]!;
    const b = entries[i]!;
    const sa = a.latin1Name;
    const sb = b.latin1Name;
    if (sa !== undefined && sb !== undefined ? sa > sb : compareNames(a.name, b.name) > 0) return false;
  }
  return true;
}

/** Split a path into its non-empty components (views into `p`, same type as `p`). */
export function splitPath<T extends Uint8Array>(p: T): T[] {
  const out: T[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p[i] === 0x2f) {
      if (i > start) out.push(p.subarray(start, i) as T);
      start = i + 1;
    }
  }
  return out;
}
