// mtree manifest (FreeBSD's METALOG) -> tree model. Ownership, modes and
// times come from the manifest, never from the staged files, so an
// unprivileged build can say "root:wheel 4555". A regular file's data is read
// from its contents= path, or else from its own path, relative to the current
// directory: release builds run makefs from DESTDIR with ./METALOG.
//
// Where makefs depends on the order of lines we do not: a directory listed
// after its contents still gets its own mode and owner (makefs would leave it
// at mode 0 and call the line a duplicate). Hard links are found as makefs
// finds them, by the contents files being one host inode; the metadata of the
// name that sorts first is used, so line order cannot change the image.

import { type BigIntStats, statSync } from 'node:fs';
import { fsUserError, UserError } from '../util/errors.js';
import {
  bytesOf, deviceOf, flagsOf, inferType, latin1Bytes, modeOf, mtreeEntries, ownerOf, sizeOf, timeOf, wholeText,
  type ChunkSource, type MtreeEntry, type Warn,
} from './mtree.js';
import type { UserDb } from './passwd.js';
import { defaultTime, entryTime, setTimes, SharedTime, type TimePolicy } from './times.js';
import { newDir, type Inode, type NodeType } from './tree.js';
import { TreeBuilder } from './treebuild.js';
import { Arena, HostFile, hostPath, showPath } from './walk.js';

export interface ManifestOptions {
  /** How messages name the manifest ("METALOG", "(stdin)"). */
  name: string;
  policy: TimePolicy;
  users: UserDb;
  /** -D given this many times: 0 duplicates are errors, 1 warnings, 2 silent. */
  duplicates: number;
  warn: Warn;
  /** Called now and then while the manifest is read (InputContext.tick). */
  tick?: () => void;
}

/** Entries between two calls of ManifestOptions.tick. */
const TICK_ENTRIES = 1024;

/** Modes for entries that give none (makefs would use 0). */
export const DEFAULT_PERM: Record<NodeType, number> = {
  dir: 0o755, file: 0o644, symlink: 0o777, fifo: 0o644, socket: 0o644, chardev: 0o600, blockdev: 0o600,
};

interface SharedFile {
  inode: HostFile;
  /** The path whose metadata the inode carries (the smallest so far). */
  path: Buffer;
}

/**
 * What reading one manifest keeps while it reads. The tree it makes holds
 * what a directory walk's does for the same files (a file that is its own
 * directory entry, its host path put together from its directory's, times
 * shared), so a METALOG build needs no more memory than a build of the
 * staged directory.
 */
class ManifestReader {
  readonly builder: TreeBuilder;
  /** The line where each inode was defined; directories missing here were made on the way to an entry. */
  private readonly defined = new Map<Inode, number>();
  private readonly links = new Map<string, SharedFile>();
  /** Each directory's path as a prefix of its files' host paths ("usr/bin/"), in shared slabs. */
  private readonly prefixes = new Map<Inode, Buffer>();
  private readonly arena = new Arena();
  private pathScratch = Buffer.allocUnsafeSlow(4096);
  private readonly times = new SharedTime();

  constructor(private readonly opts: ManifestOptions) {
    this.builder = new TreeBuilder(this.implicit());
    this.prefixes.set(this.builder.root, Buffer.alloc(0));
  }

  private readonly implicit = (): Inode => {
    const d = newDir(DEFAULT_PERM.dir);
    setTimes(d, defaultTime(this.opts.policy));
    return d;
  };

  entry(e: MtreeEntry): void {
    const { builder, defined } = this;
    const type = inferType(e);
    if (e.kw.has('link') && type !== 'symlink') throw new UserError(`${e.where}: link= given for a ${type}`);
    if (e.kw.has('contents') && type !== 'file') throw new UserError(`${e.where}: contents= given for a ${type}`);
    if (e.path.length === 0) {
      if (type !== 'dir') throw new UserError(`${e.where}: the top directory must have type=dir`);
      if (this.duplicate(builder.root, e)) return;
      this.setMetadata(builder.root, e);
      defined.set(builder.root, e.lineNo);
      return;
    }
    const parent = builder.parentOf(e.path, this.implicit, e);
    const name = e.path[e.path.length - 1]!;
    const old = builder.child(parent, name)?.inode;
    if (old !== undefined) {
      if (old.type === 'dir' && !defined.has(old)) {
        if (type !== 'dir') throw new UserError(`${e.where}: is a ${type} here but a directory holding other entries elsewhere`);
        this.setMetadata(old, e);
        defined.set(old, e.lineNo);
        return;
      }
      if (this.duplicate(old, e)) return;
    }
    if (type === 'file') {
      const { inode, fresh } = this.fileInode(e, parent, name);
      // a file first named here is its own entry; another name of it gets one
      if (fresh) builder.addEntry(parent, inode);
      else builder.add(parent, name, inode);
      if (!defined.has(inode)) defined.set(inode, e.lineNo);
      return;
    }
    const inode = this.makeInode(e, type);
    builder.add(parent, name, inode);
    defined.set(inode, e.lineNo);
  }

  /** Whether `e` repeats an entry; throws unless -D made that a warning. */
  private duplicate(existing: Inode, e: MtreeEntry): boolean {
    if (existing.type === 'dir' && !this.defined.has(existing)) return false;
    const first = this.defined.get(existing);
    const msg = `${e.where}: duplicate entry${first !== undefined ? ` (first at ${this.opts.name}:${first})` : ''}`;
    if (this.opts.duplicates === 0) throw new UserError(`${msg}; -D makes duplicates warnings`);
    if (this.opts.duplicates === 1) this.opts.warn(`${msg}; the first one is kept`);
    return true;
  }

  private setMetadata(inode: Inode, e: MtreeEntry): void {
    const { uid, gid } = ownerOf(e, this.opts.users);
    inode.uid = uid ?? 0;
    inode.gid = gid ?? 0;
    inode.perm = modeOf(e) ?? DEFAULT_PERM[inode.type];
    setTimes(inode, this.times.share(entryTime(this.opts.policy, timeOf(e))));
    flagsOf(e); // checked; the zfs backend keeps no file flags (as makefs)
  }

  /** Every inode but a regular file. */
  private makeInode(e: MtreeEntry, type: NodeType): Inode {
    const t = defaultTime(this.opts.policy);
    // (one literal with every field any of them may get: see the walk's inodeFor)
    const inode: Inode = {
      type, perm: 0, uid: 0, gid: 0, size: 0, atime: t, mtime: t, ctime: t, crtime: t,
      target: undefined, rdevMajor: undefined, rdevMinor: undefined,
      entries: type === 'dir' ? [] : undefined, xattrs: undefined, objid: 0,
    };
    this.setMetadata(inode, e);
    switch (type) {
      case 'symlink': {
        const target = bytesOf(e, 'link');
        if (target === undefined || target.length === 0) throw new UserError(`${e.where}: symlink without link=`);
        inode.target = this.arena.copy(target);
        break;
      }
      case 'chardev':
      case 'blockdev': {
        const dev = deviceOf(e);
        if (dev === undefined) throw new UserError(`${e.where}: device node without device=`);
        [inode.rdevMajor, inode.rdevMinor] = dev;
        break;
      }
    }
    return inode;
  }

  /** The host path of `dir`'s files, with a trailing '/' ("" for the top). */
  private prefixOf(dir: Inode, e: MtreeEntry): Buffer {
    let p = this.prefixes.get(dir);
    if (p === undefined) {
      p = this.arena.copy(latin1Bytes(`${e.path.slice(0, -1).join('/')}/`));
      this.prefixes.set(dir, p);
    }
    return p;
  }

  /**
   * A regular file's size and data from its contents file: a new inode, or
   * the one already made for another name of the same host file (a hard link).
   */
  private fileInode(e: MtreeEntry, parent: Inode, name: string): { inode: HostFile; fresh: boolean } {
    const prefix = this.prefixOf(parent, e);
    const given = bytesOf(e, 'contents');
    // the file's own path, put together in a reused buffer (see the walk's scratch)
    const own = (): Buffer => {
      const need = prefix.length + name.length;
      if (this.pathScratch.length < need) this.pathScratch = Buffer.allocUnsafeSlow(Math.max(need, 2 * this.pathScratch.length));
      prefix.copy(this.pathScratch, 0);
      this.pathScratch.write(name, prefix.length, 'latin1');
      return this.pathScratch.subarray(0, need);
    };
    const contents = given !== undefined ? Buffer.from(given) : own();
    let st: BigIntStats;
    try {
      st = statSync(contents, { bigint: true });
    } catch (err) {
      throw fsUserError(`${e.where}: contents file '${showPath(contents)}'`, err);
    }
    if (!st.isFile()) throw new UserError(`${e.where}: contents file '${showPath(contents)}' is not a regular file`);
    const size = Number(st.size);
    const listed = sizeOf(e);
    if (listed !== undefined && listed !== size) {
      this.opts.warn(`${e.where}: size=${listed} but '${showPath(contents)}' has ${size} bytes; using the file`);
    }
    let key: string | undefined;
    if (st.nlink > 1n) {
      key = `${st.dev}:${st.ino}`;
      const shared = this.links.get(key);
      if (shared !== undefined) {
        const path = own();
        // the line's metadata is checked either way; the inode takes it if this name sorts first
        const first = Buffer.compare(path, shared.path) < 0;
        this.setMetadata(first ? shared.inode : this.scratch, e);
        if (first) shared.path = Buffer.from(path);
        return { inode: shared.inode, fresh: false };
      }
    }
    const file = new HostFile(0, 0, 0, size, defaultTime(this.opts.policy), prefix, this.builder.ownName(name));
    this.setMetadata(file, e);
    if (given !== undefined) file.source = { kind: 'path', path: hostPath(contents) };
    if (key !== undefined) this.links.set(key, { inode: file, path: Buffer.from(own()) });
    return { inode: file, fresh: true };
  }

  /** Where the metadata of a hard link's later names goes when the inode keeps another's. */
  private readonly scratch: Inode = newDir();
}

/** Read a manifest, whole or as it comes (see ChunkSource), into a tree. */
export function readManifest(text: Uint8Array | ChunkSource, opts: ManifestOptions): Inode {
  const reader = new ManifestReader(opts);
  const next = text instanceof Uint8Array ? wholeText(text) : text;
  let n = 0;
  for (const e of mtreeEntries(next, opts.name, opts.warn)) {
    reader.entry(e);
    if (++n % TICK_ENTRIES === 0) opts.tick?.();
  }
  return reader.builder.finish();
}
