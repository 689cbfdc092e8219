// Staging directories -> tree model. Only metadata is gathered (one lstat per
// entry, or an open and fstat for a file held open until its data is read:
// see HeldFiles; file contents stay on disk), so memory grows with the entry
// count, not with the bytes staged. Synchronous fs calls are deliberate: for
// hundreds of thousands of tiny lstat/readdir calls they beat the promise API
// by a wide margin and the walk has nothing else to overlap with.

import { isUtf8 } from 'node:buffer';
import { closeSync, lstatSync, readdirSync, readlinkSync, statSync, type BigIntStats, type Dirent as FsDirent } from 'node:fs';
import { fsUserError, UserError } from '../util/errors.js';
import { showPath } from '../util/showpath.js';
import {
  adoptListed, countInode, direntKey, isImplicit, SharedNames, type DataSource, type Dirent, type InputTotals, type Inode, type NodeType,
  type Timespec,
} from './tree.js';
import { WrittenData, type FileDataSlab } from '../zpl/filedata.js';
import { SharedTime } from './times.js';
import { fileAttrs, type FileAttrs } from './attrs.js';
import type { HeldFiles } from './held-files.js';

// (messages elsewhere spell paths with it too; it lives where the command line can take it alone)
export { showPath };

export interface WalkOptions {
  /** `-T`: replaces every time of every inode, for reproducible images. */
  timestamp?: Timespec;
  /**
   * Called with each directory once its entries are known, sorted by name
   * bytes; the root first, then subdirectories depth-first in name order.
   * (The file data can be written meanwhile: see prewrite.ts.)
   */
  onDirectory?: (dir: Inode) => void;
  /**
   * Called every few entries while a directory is being walked, so that a
   * caller writing the data alongside (prewrite.ts) can keep the image
   * writer fed while a large directory is walked.
   */
  onTick?: () => void;
  /**
   * Where regular files may be held open from the walk until their data
   * is read (held-files.ts): only for a walk whose data is read as it
   * goes, which takes each file's descriptor (or drops it).
   */
  held?: HeldFiles;
}

/** Entries walked between two onTick calls. */
const TICK_ENTRIES = 32;

/** ZFS stores names in ZAP entries whose keys are limited to 255 bytes. */
const MAX_NAME_BYTES = 255;

const NS_PER_SEC = 1_000_000_000n;

/**
 * Walk one or more staging directories into one tree, as makefs does:
 * the first directory is the base and later ones are merged into it.
 * Directories present in several inputs merge recursively and keep the
 * metadata (mode, owner, times) of the first input that has them; any other
 * name present twice is an error naming both paths. The top-level arguments
 * are followed if they are symlinks (makefs stat()s them); nothing below is.
 * Every directory's entries come out in byte order of their names, the
 * order the writer needs (the pipeline relies on it and sorts no further).
 */
export function walkDirectories(dirs: string[], opts: WalkOptions = {}): Inode {
  return walkCounted(dirs, opts).root;
}

/**
 * walkDirectories, and what the tree holds, as treeTotals would count it:
 * counted while walking, since counting the finished tree again (a Set of
 * every inode, for hard links) cost ~0.2 s on /usr between the walk and the
 * rest of the build.
 */
export function walkCounted(dirs: string[], opts: WalkOptions = {}): { root: Inode; totals: InputTotals; merger: InputMerger } {
  if (dirs.length === 0) throw new UserError('no input directory given');
  const merger = new InputMerger(opts);
  for (const d of dirs) merger.directory(d);
  return { root: merger.root, totals: merger.totals, merger };
}

/**
 * Merge staging directories into a tree read from a tarball or manifest
 * (`baseName` names it in messages), with walkDirectories's rules.
 */
export function mergeDirectories(base: Inode, baseName: string, dirs: string[], opts: WalkOptions = {}): Inode {
  const merger = new InputMerger(opts);
  merger.tree(base, baseName);
  for (const d of dirs) merger.directory(d);
  return base;
}

/**
 * Inputs merged into one tree, one at a time, in their order, with
 * walkDirectories's rules: staging directories, walked here, and trees read
 * elsewhere (tarballs, a manifest), named in messages by `name`. The first
 * input is the base. One merger serves the whole input list, so that hard
 * links span every directory input and a clash names the input that really
 * holds the earlier entry.
 */
export class InputMerger {
  readonly #walker: Walker;
  #merger: Merger | undefined;
  #root: Inode | undefined;

  constructor(opts: WalkOptions = {}) {
    this.#walker = new Walker(opts);
  }

  directory(dir: string): void {
    this.#add(this.#walker.walkInput(dir), dir, false);
  }

  /** A tree read from an archive or manifest: its entries are named in messages as its members. */
  tree(tree: Inode, name: string): void {
    this.#add(tree, name, true);
  }

  /** The merged tree: the first input's root. */
  get root(): Inode {
    if (this.#root === undefined) throw new Error('InputMerger: no input yet');
    return this.#root;
  }

  /** What the walked directories hold, each hard-linked inode once, less the directories merged away (trees added whole are not counted). */
  get totals(): InputTotals {
    const t = this.#walker.totals;
    return { ...t, entries: t.entries - (this.#merger?.merged ?? 0) };
  }

  /**
   * The input (0 for the first, in the order added) an entry came from, if
   * it was adopted from a later input; undefined: the same input as the
   * directory holding it.
   */
  originOf(e: Dirent): number | undefined {
    return this.#merger?.originOf(e);
  }

  #add(tree: Inode, name: string, isArchive: boolean): void {
    if (this.#merger === undefined) {
      this.#merger = new Merger(tree, name, isArchive);
      this.#root = tree;
    } else {
      this.#merger.add(tree, name, isArchive);
    }
  }
}

/**
 * A regular file met by the walk. A tree of a few hundred thousand files is
 * held for the whole build, so its host path is not kept as a string (and
 * an object around it) per file: it is put together from the directory's
 * path, which all files of a directory share, and the file's name, which
 * it keeps anyway as its own directory entry, each time `source` is read
 * (once, when the data is written). Merged inputs and hard links need no
 * care: both parts are the ones the file was found under. Once the data is
 * in the image, the path's field and one more hold where its FileData is
 * kept (the index in the slab, the slab), not a WrittenData object per
 * file. The parts are private fields so that the inode's own enumerable
 * properties stay those of the plain Inode model.
 *
 * Manifests and tarballs keep their files this way too (manifest.ts, a
 * path relative to the current directory; tar.ts, no path: the data is
 * written as the member is read). Since `source` is made at each read, two
 * reads are never one object: compare inodes, not sources.
 */
export class HostFile implements Inode, Dirent {
  size: number;
  /**
   * The file's one time: the tree model keeps all four times equal
   * (times.ts), so atime, ctime and crtime read and set this field rather
   * than take three more per file.
   */
  mtime: Timespec;
  objid = 0;
  /**
   * Its mode and owner, shared with the files that have the same (attrs.ts).
   * (Set in the setters themselves: a private method would give every
   * instance a field of its own, V8's brand for it.)
   */
  #attrs: FileAttrs;
  /** The host directory's path with its trailing '/' until `source` is set, then that source (a slab index for written data). */
  #from: Buffer | DataSource | number | undefined;
  /** The name it was first met under (latin1: one code unit per byte). */
  readonly #name: string;
  /** The slab that keeps its FileData, once the data is written. */
  #slab: FileDataSlab | undefined = undefined;

  constructor(perm: number, uid: number, gid: number, size: number, t: Timespec, dir: Buffer, name: string) {
    this.size = size;
    this.mtime = t;
    this.#attrs = fileAttrs(perm, uid, gid);
    this.#from = dir;
    this.#name = name;
  }

  get type(): NodeType { return 'file'; }

  get perm(): number { return this.#attrs.perm; }
  set perm(v: number) { this.#attrs = fileAttrs(v, this.uid, this.gid); }
  get uid(): number { return this.#attrs.uid; }
  set uid(v: number) { this.#attrs = fileAttrs(this.perm, v, this.gid); }
  get gid(): number { return this.#attrs.gid; }
  set gid(v: number) { this.#attrs = fileAttrs(this.perm, this.uid, v); }
  get atime(): Timespec { return this.mtime; }
  set atime(t: Timespec) { this.mtime = t; }
  get ctime(): Timespec { return this.mtime; }
  set ctime(t: Timespec) { this.mtime = t; }
  get crtime(): Timespec { return this.mtime; }
  set crtime(t: Timespec) { this.mtime = t; }

  // Extended attributes are rare and attached after the walk: kept aside,
  // not in a field every file would carry.
  get xattrs(): Map<string, Uint8Array> | undefined { return fileXattrs.get(this); }
  set xattrs(x: Map<string, Uint8Array> | undefined) {
    if (x === undefined) fileXattrs.delete(this);
    else fileXattrs.set(this, x);
  }

  // The file is its own directory entry under the name it was first met by
  // (other names of a hard link get a WalkDirent): an entry object per file
  // was ~40 bytes a tree holds for the whole build.
  get name(): Uint8Array { return Buffer.from(this.#name, 'latin1'); }
  get latin1Name(): string { return this.#name; }
  get inode(): Inode { return this; }
  set inode(_: Inode) { throw new Error('a walked file is its own directory entry: replace the entry instead'); }

  get source(): DataSource | undefined {
    const from = this.#from;
    if (typeof from === 'number') return new WrittenData(this.#slab!, from);
    // (a DataSource is a plain object, never a byte array)
    if (!(from instanceof Uint8Array)) return from;
    const name = this.#name;
    const path = Buffer.allocUnsafe(from.length + name.length);
    from.copy(path, 0);
    path.write(name, from.length, 'latin1');
    return { kind: 'path', path: hostPath(path) };
  }

  set source(src: DataSource | undefined) {
    if (src instanceof WrittenData) {
      this.#from = src.index;
      this.#slab = src.slab;
      return;
    }
    this.#slab = undefined;
    this.#from = src;
  }
}

const fileXattrs = new WeakMap<HostFile, Map<string, Uint8Array>>();

/**
 * A directory entry met by the walk. Its name is kept as the latin1 string
 * readdir gave (one code unit per byte, so byte-exact; ~32 bytes) and made
 * a byte array only when asked for: a Uint8Array costs ~100 bytes whatever
 * its length, and a tree holds one name per entry for the whole build.
 */
export class WalkDirent implements Dirent {
  readonly #name: string;
  readonly inode: Inode;

  constructor(name: string, inode: Inode) {
    this.#name = name;
    this.inode = inode;
  }

  get name(): Uint8Array {
    return Buffer.from(this.#name, 'latin1');
  }

  get latin1Name(): string {
    return this.#name;
  }
}

/**
 * Bytes that live as long as the tree (directory paths, symlink
 * targets) carved out of shared slabs: a Buffer of its own costs an
 * ArrayBuffer and a backing store, several times the few bytes of a name.
 */
export class Arena {
  private static readonly SLAB = 64 * 1024;
  private slab = Buffer.alloc(0);
  private used = 0;

  /** A copy of `bytes[start, end)`. */
  copy(bytes: Uint8Array, start = 0, end = bytes.length): Buffer {
    const n = end - start;
    let out: Buffer;
    if (n > Arena.SLAB / 4) {
      out = Buffer.allocUnsafeSlow(n);
    } else {
      if (this.used + n > this.slab.length) {
        this.slab = Buffer.allocUnsafeSlow(Arena.SLAB);
        this.used = 0;
      }
      out = this.slab.subarray(this.used, this.used + n);
      this.used += n;
    }
    out.set(bytes.subarray(start, end));
    return out;
  }
}

/** A directory still to be read: its host path with a trailing '/'. */
interface Pending {
  dir: Inode;
  prefix: Buffer;
}

class Walker {
  // Hard links: non-directories with nlink > 1, keyed by (dev, ino) across
  // every input so that a link spanning two merged inputs stays one inode.
  private readonly links = new Map<string, Inode>();
  private readonly stamp: Timespec | undefined;
  private readonly onDirectory: ((dir: Inode) => void) | undefined;
  private readonly onTick: (() => void) | undefined;
  private readonly held: HeldFiles | undefined;
  /** Whether readdir's entry types can be had (see list). */
  private entryTypes = true;
  private readonly arena = new Arena();
  /** Where each child's full path is put together for lstat or open (a new Buffer per entry would be garbage). */
  private scratch = Buffer.allocUnsafeSlow(4096);
  // A tree has few distinct mtimes (/usr: 2.4k for 156k entries; a
  // package's files share one), so equal times share one frozen object
  // (SharedTime). The last one is usually the next too: compared as the
  // stat's nanoseconds, it costs no Timespec to find.
  private lastNs = -1n;
  private lastTime: Timespec | undefined;
  private readonly times = new SharedTime();
  // (only while walking: the map goes with the walker)
  private readonly names = new SharedNames();
  /** Whether the last visit met a hard-linked inode seen before (under another name). */
  private relinked = false;
  /** Every inode met, each hard-linked one once (see walkCounted). */
  readonly totals: InputTotals = { entries: 0, files: 0, bytes: 0 };

  constructor(opts: WalkOptions) {
    this.stamp = opts.timestamp === undefined ? undefined : Object.freeze({ ...opts.timestamp });
    this.onDirectory = opts.onDirectory;
    this.onTick = opts.onTick;
    this.held = opts.held;
  }

  walkInput(dir: string): Inode {
    let st: BigIntStats;
    try {
      st = statSync(dir, { bigint: true });
    } catch (err) {
      throw fsUserError(dir, err);
    }
    if (!st.isDirectory()) throw new UserError(`${dir}: Not a directory`);
    const root = this.inodeFor('dir', st);
    // Trailing slashes would only produce "stage//file" in paths and messages.
    const base = Buffer.from(dir.length > 1 ? dir.replace(/\/+$/, '') || '/' : dir);
    const prefix = base[base.length - 1] === 0x2f ? base : Buffer.concat([base, Buffer.from('/')]);
    countInode(this.totals, root);
    this.walkTree(root, this.arena.copy(prefix));
    return root;
  }

  // Iterative so that pathologically deep trees cannot overflow the JS stack.
  private walkTree(root: Inode, rootPrefix: Buffer): void {
    const pending: Pending[] = [{ dir: root, prefix: rootPrefix }];
    while (pending.length > 0) {
      const { dir, prefix } = pending.pop()!;
      const plen = prefix.length;
      const path = plen > 1 ? prefix.subarray(0, plen - 1) : prefix;
      const { names, regular } = this.list(path);
      this.reserve(plen + MAX_NAME_BYTES + 1);
      prefix.copy(this.scratch, 0);
      const entries: Dirent[] = new Array(names.length);
      const subdirs: Pending[] = [];
      for (let i = 0; i < names.length; i++) {
        const s = names[i]!;
        if (s.length > MAX_NAME_BYTES) this.reserve(plen + s.length);
        const end = plen + this.scratch.write(s, plen, 'latin1');
        const childPath = this.scratch.subarray(0, end);
        if (s.length > MAX_NAME_BYTES) {
          throw new UserError(`${showPath(childPath)}: name longer than ${MAX_NAME_BYTES} bytes`);
        }
        const name = this.names.share(s);
        if (this.onTick !== undefined && (i + 1) % TICK_ENTRIES === 0) this.onTick();
        const inode = this.visit(childPath, prefix, name, regular !== null && regular[i]!);
        if (!this.relinked) countInode(this.totals, inode);
        // a file first met here is its own entry (see HostFile)
        entries[i] = inode instanceof HostFile && !this.relinked ? inode : new WalkDirent(name, inode);
        if (inode.type === 'dir') {
          this.scratch[end] = 0x2f;
          subdirs.push({ dir: inode, prefix: this.arena.copy(this.scratch, 0, end + 1) });
        }
      }
      dir.entries = entries;
      this.onDirectory?.(dir);
      // Reversed onto the stack so subdirectories, too, are walked in name order.
      for (let i = subdirs.length - 1; i >= 0; i--) pending.push(subdirs[i]!);
    }
  }

  /**
   * A directory's names in byte order, and, when files may be held open,
   * which of them are regular files by their directory entry (null: not
   * asked for, or not known).
   */
  private list(path: Buffer): { names: string[]; regular: boolean[] | null } {
    if (this.held?.active === true && this.entryTypes) {
      let listed: FsDirent[] | undefined;
      try {
        listed = readdirSync(path, { encoding: 'latin1', withFileTypes: true }) as unknown as FsDirent[];
      } catch (err) {
        // A file system that does not report an entry's type (DT_UNKNOWN:
        // XFS without ftype, NFSv3, many FUSE ones) has Node lstat the entry
        // by a path it cannot join from a Buffer and a string: a TypeError,
        // not a system error. Such a walk lists names alone from then on.
        if ((err as { syscall?: unknown }).syscall !== undefined) throw fsUserError(showPath(path), err);
        this.entryTypes = false;
      }
      if (listed !== undefined) {
        listed.sort(byName);
        return { names: listed.map((d) => d.name), regular: listed.map((d) => d.isFile()) };
      }
    }
    // latin1 maps bytes 1:1 to code units: names stay byte-exact, and a
    // string is far cheaper to make than the Buffer per name of 'buffer'.
    let names: string[];
    try {
      names = readdirSync(path, { encoding: 'latin1' });
    } catch (err) {
      throw fsUserError(showPath(path), err);
    }
    // Sorting before the entries are visited makes every observable choice
    // (which path a shared hard-linked inode gets its source from, which
    // error is reported first) independent of readdir order. Code unit
    // order of latin1 strings is byte order.
    names.sort();
    return { names, regular: null };
  }

  /** Make the scratch buffer hold at least `n` bytes, keeping what it holds. */
  private reserve(n: number): void {
    if (this.scratch.length >= n) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(n, 2 * this.scratch.length));
    this.scratch.copy(bigger);
    this.scratch = bigger;
  }

  /**
   * `path` (a view into the scratch buffer) is `prefix` + `name`; `regular`:
   * its directory entry says it is a regular file.
   */
  private visit(path: Buffer, prefix: Buffer, name: string, regular: boolean): Inode {
    const opened = regular ? this.held?.open(path) : undefined;
    if (opened === undefined) return this.visitStat(path, prefix, name, this.lstat(path));
    let inode: Inode | undefined;
    try {
      inode = this.visitStat(path, prefix, name, opened.st);
    } finally {
      // held for a file whose data is to be read; closed for a name of a
      // hard link met before, or what was no regular file by the time it
      // was opened
      if (inode instanceof HostFile && !this.relinked) this.held!.hold(inode, opened.fd);
      else closeSync(opened.fd);
    }
    return inode;
  }

  private lstat(path: Buffer): BigIntStats {
    try {
      return lstatSync(path, { bigint: true });
    } catch (err) {
      throw fsUserError(showPath(path), err);
    }
  }

  /** visit(), given the entry's stat. */
  private visitStat(path: Buffer, prefix: Buffer, name: string, st: BigIntStats): Inode {
    const type = nodeType(st);
    if (type === undefined) throw new UserError(`${showPath(path)}: unsupported file type`);

    const shared = type !== 'dir' && st.nlink > 1n;
    const key = shared ? `${st.dev}:${st.ino}` : '';
    this.relinked = false;
    if (shared) {
      const seen = this.links.get(key);
      if (seen !== undefined) {
        this.relinked = true;
        return seen;
      }
    }

    let inode: Inode;
    if (type === 'file') {
      inode = new HostFile(Number(st.mode & 0o7777n), Number(st.uid), Number(st.gid), Number(st.size), this.timeOf(st), prefix, name);
    } else {
      inode = this.inodeFor(type, st);
      switch (type) {
        case 'symlink':
          try {
            inode.target = this.arena.copy(readlinkSync(path, { encoding: 'buffer' }));
          } catch (err) {
            throw fsUserError(showPath(path), err);
          }
          break;
        case 'chardev':
        case 'blockdev':
          [inode.rdevMajor, inode.rdevMinor] = hostDevice(st.rdev);
          break;
      }
    }
    if (shared) this.links.set(key, inode);
    return inode;
  }

  /** Every inode but a regular file. */
  private inodeFor(type: NodeType, st: BigIntStats): Inode {
    const t = this.timeOf(st);
    // One literal with every field any of these may get, here or later
    // (target, rdev, entries; xattrs, attached after the walk): fields
    // added to an object after it is made go to a separate property store.
    return {
      type,
      perm: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: 0,
      atime: t,
      mtime: t,
      ctime: t,
      crtime: t,
      target: undefined,
      rdevMajor: undefined,
      rdevMinor: undefined,
      entries: type === 'dir' ? [] : undefined,
      xattrs: undefined,
      objid: 0,
    };
  }

  private timeOf(st: BigIntStats): Timespec {
    // atime and ctime record when the staging tree happened to be read or
    // chmod'ed, not anything about its content; mtime stands in for all of
    // them so two builds of the same tree give the same image. One frozen
    // object serves all four fields.
    if (this.stamp !== undefined) return this.stamp;
    if (st.mtimeNs !== this.lastNs || this.lastTime === undefined) {
      this.lastNs = st.mtimeNs;
      this.lastTime = this.times.share(timespecFromNs(st.mtimeNs));
    }
    return this.lastTime;
  }
}

/** Directory entries in byte order of their (latin1) names, as names.sort() orders the names alone. */
function byName(a: FsDirent, b: FsDirent): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function nodeType(st: BigIntStats): NodeType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  return undefined;
}

/** A stat nanosecond time as a frozen Timespec (shared by several fields, so never mutated). */
export function timespecFromNs(ns: bigint): Timespec {
  // Floor division keeps nsec in 0..999999999 for times before 1970.
  let sec = ns / NS_PER_SEC;
  let nsec = ns % NS_PER_SEC;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += NS_PER_SEC;
  }
  return Object.freeze({ sec: Number(sec), nsec: Number(nsec) });
}

/**
 * glibc's gnu_dev_major/gnu_dev_minor split of a 64-bit dev_t: 12 + 20 major
 * bits and 8 + 12 + ... minor bits interleaved for backward compatibility
 * with the old 16-bit encoding.
 */
export function linuxDevice(rdev: bigint): [major: number, minor: number] {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n);
  return [Number(major), Number(minor)];
}

/**
 * A staged device node's st_rdev as major and minor, split the way the
 * host that ran lstat packs dev_t: each system has its own layout, and
 * taking a Mac's or a FreeBSD host's number for Linux's would store
 * another device. Systems not named here are taken for Linux's layout.
 */
export function hostDevice(rdev: bigint, platform: NodeJS.Platform = process.platform): [major: number, minor: number] {
  switch (platform) {
    case 'darwin':
      // 8 major bits above 24 minor bits (a 32-bit dev_t)
      return [Number((rdev >> 24n) & 0xffn), Number(rdev & 0xffffffn)];
    case 'freebsd':
      // FreeBSD 12's 64-bit dev_t keeps the old 32-bit layout's places
      // (major in bits 8-15, minor around it) and puts the wider parts above
      return [
        Number(((rdev >> 32n) & 0xffffff00n) | ((rdev >> 8n) & 0xffn)),
        Number(((rdev >> 24n) & 0xff00n) | (rdev & 0xffff00ffn)),
      ];
    case 'openbsd':
      return [Number((rdev >> 8n) & 0xffn), Number((rdev & 0xffn) | ((rdev & 0xffff0000n) >> 8n))];
    default:
      return linuxDevice(rdev);
  }
}

/**
 * Node encodes string paths as UTF-8, so a name that is not valid UTF-8
 * cannot be spelled as a string at all: such paths stay raw bytes, which
 * every fs call accepts just the same.
 */
export function hostPath(path: Buffer): string | Uint8Array {
  return isUtf8(path) ? path.toString('utf8') : path;
}

function describe(t: NodeType): string {
  switch (t) {
    case 'file': return 'file';
    case 'dir': return 'directory';
    case 'symlink': return 'symlink';
    case 'fifo': return 'fifo';
    case 'socket': return 'socket';
    case 'chardev': return 'character device';
    case 'blockdev': return 'block device';
  }
}

function joinShown(base: string, rel: string): string {
  return rel === '' ? base : base.endsWith('/') ? base + rel : `${base}/${rel}`;
}

/**
 * Merges later inputs into the first one. Every entry adopted from a later
 * input remembers which input it came from, so a clash found further down
 * can name the path that really holds the earlier entry.
 */
class Merger {
  private readonly roots: string[];
  /** Per input: whether it is an archive or manifest (its entries are members), not a directory. */
  private readonly archives: boolean[];
  private readonly origin = new Map<Dirent, number>();
  /** Directories of later inputs merged into earlier ones (and so dropped), roots included. */
  merged = 0;

  constructor(private readonly base: Inode, baseRoot: string, baseIsArchive: boolean) {
    this.roots = [baseRoot];
    this.archives = [baseIsArchive];
  }

  originOf(e: Dirent): number | undefined {
    return this.origin.get(e);
  }

  add(extra: Inode, extraRoot: string, isArchive: boolean): void {
    const input = this.roots.length;
    this.roots.push(extraRoot);
    this.archives.push(isArchive);
    const pending: Array<{ into: Inode; intoInput: number; from: Inode; rel: string }> = [
      { into: this.base, intoInput: 0, from: extra, rel: '' },
    ];
    while (pending.length > 0) {
      const { into, intoInput, from, rel } = pending.pop()!;
      // every pair taken here is a directory of this input dropped into one before it
      this.merged++;
      // The earlier directory's metadata stays, as in makefs, unless it had
      // none (an archive only implied it).
      if (isImplicit(into) && !isImplicit(from)) adoptListed(into, from);
      const existing = new Map<string, Dirent>();
      for (const e of into.entries!) existing.set(direntKey(e), e);
      let added = false;
      for (const e of from.entries!) {
        const childRel = rel === '' ? showPath(e.name) : `${rel}/${showPath(e.name)}`;
        const have = existing.get(direntKey(e));
        if (have === undefined) {
          into.entries!.push(e);
          this.origin.set(e, input);
          added = true;
          continue;
        }
        const haveInput = this.origin.get(have) ?? intoInput;
        if (have.inode.type === 'dir' && e.inode.type === 'dir') {
          pending.push({ into: have.inode, intoInput: haveInput, from: e.inode, rel: childRel });
          continue;
        }
        throw new UserError(
          `${this.archives[input] ? `${extraRoot}: member '${childRel}'` : joinShown(extraRoot, childRel)}: cannot merge ` +
            `${describe(e.inode.type)} with existing ${describe(have.inode.type)} ` +
            `${this.archives[haveInput] ? `'${childRel}' of ${this.roots[haveInput]!}` : joinShown(this.roots[haveInput]!, childRel)}`,
        );
      }
      if (added) into.entries!.sort((a, b) => Buffer.compare(a.name, b.name));
    }
  }
}
