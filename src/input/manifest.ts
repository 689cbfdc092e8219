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
  bytesOf, deviceOf, flagsOf, inferType, modeOf, ownerOf, parseMtree, sizeOf, timeOf,
  type MtreeEntry, type Warn,
} from './mtree.js';
import type { UserDb } from './passwd.js';
import { defaultTime, entryTime, setTimes, type TimePolicy } from './times.js';
import { newDir, type Inode, type NodeType } from './tree.js';
import { TreeBuilder } from './treebuild.js';
import { hostPath, showPath } from './walk.js';

export interface ManifestOptions {
  /** How messages name the manifest ("METALOG", "(stdin)"). */
  name: string;
  policy: TimePolicy;
  users: UserDb;
  /** -D given this many times: 0 duplicates are errors, 1 warnings, 2 silent. */
  duplicates: number;
  warn: Warn;
}

/** Modes for entries that give none (makefs would use 0). */
export const DEFAULT_PERM: Record<NodeType, number> = {
  dir: 0o755, file: 0o644, symlink: 0o777, fifo: 0o644, socket: 0o644, chardev: 0o600, blockdev: 0o600,
};

const SLASH = Buffer.from('/');

function joinPath(path: readonly Uint8Array[]): Buffer {
  const parts: Uint8Array[] = [];
  path.forEach((p, i) => {
    if (i > 0) parts.push(SLASH);
    parts.push(p);
  });
  return Buffer.concat(parts);
}

interface SharedFile {
  inode: Inode;
  /** The path whose metadata the inode carries (the smallest so far). */
  path: Buffer;
}

export function readManifest(data: Uint8Array, opts: ManifestOptions): Inode {
  const entries = parseMtree(data, opts.name, opts.warn);
  const implicit = (): Inode => {
    const d = newDir(DEFAULT_PERM.dir);
    setTimes(d, defaultTime(opts.policy));
    return d;
  };
  const builder = new TreeBuilder(implicit());
  // Where each inode was defined; directories missing here were made on the way to an entry.
  const defined = new Map<Inode, string>();
  const links = new Map<string, SharedFile>();

  for (const e of entries) {
    const type = inferType(e);
    if (e.kw.has('link') && type !== 'symlink') throw new UserError(`${e.where}: link= given for a ${type}`);
    if (e.kw.has('contents') && type !== 'file') throw new UserError(`${e.where}: contents= given for a ${type}`);
    if (e.path.length === 0) {
      if (type !== 'dir') throw new UserError(`${e.where}: the top directory must have type=dir`);
      if (duplicate(builder.root, defined, e, opts)) continue;
      setMetadata(builder.root, e, opts);
      defined.set(builder.root, e.where);
      continue;
    }
    const parent = builder.parentOf(e.path, implicit, e.where);
    const name = e.path[e.path.length - 1]!;
    const old = builder.child(parent, name)?.inode;
    if (old !== undefined) {
      if (old.type === 'dir' && !defined.has(old)) {
        if (type !== 'dir') throw new UserError(`${e.where}: is a ${type} here but a directory holding other entries elsewhere`);
        setMetadata(old, e, opts);
        defined.set(old, e.where);
        continue;
      }
      if (duplicate(old, defined, e, opts)) continue;
    }
    const inode = makeInode(e, type, opts, links);
    builder.add(parent, name, inode);
    if (!defined.has(inode)) defined.set(inode, e.where);
  }
  return builder.finish();
}

/** Whether `e` repeats an entry; throws unless -D made that a warning. */
function duplicate(existing: Inode, defined: Map<Inode, string>, e: MtreeEntry, opts: ManifestOptions): boolean {
  if (existing.type === 'dir' && !defined.has(existing)) return false;
  const first = defined.get(existing)?.split(': ')[0];
  const msg = `${e.where}: duplicate entry${first ? ` (first at ${first})` : ''}`;
  if (opts.duplicates === 0) throw new UserError(`${msg}; -D makes duplicates warnings`);
  if (opts.duplicates === 1) opts.warn(`${msg}; the first one is kept`);
  return true;
}

function setMetadata(inode: Inode, e: MtreeEntry, opts: ManifestOptions): void {
  const { uid, gid } = ownerOf(e, opts.users);
  inode.uid = uid ?? 0;
  inode.gid = gid ?? 0;
  inode.perm = modeOf(e) ?? DEFAULT_PERM[inode.type];
  setTimes(inode, entryTime(opts.policy, timeOf(e)));
  flagsOf(e); // checked; the zfs backend keeps no file flags (as makefs)
}

function makeInode(e: MtreeEntry, type: NodeType, opts: ManifestOptions, links: Map<string, SharedFile>): Inode {
  const t = defaultTime(opts.policy);
  const inode: Inode = type === 'dir'
    ? newDir()
    : { type, perm: 0, uid: 0, gid: 0, size: 0, atime: t, mtime: t, ctime: t, crtime: t, objid: 0 };
  setMetadata(inode, e, opts);
  switch (type) {
    case 'symlink': {
      const target = bytesOf(e, 'link');
      if (target === undefined || target.length === 0) throw new UserError(`${e.where}: symlink without link=`);
      inode.target = target;
      break;
    }
    case 'chardev':
    case 'blockdev': {
      const dev = deviceOf(e);
      if (dev === undefined) throw new UserError(`${e.where}: device node without device=`);
      [inode.rdevMajor, inode.rdevMinor] = dev;
      break;
    }
    case 'file':
      return fileInode(e, inode, links, opts);
  }
  return inode;
}

/** A regular file's size and data from its contents file; a shared inode for hard links. */
function fileInode(e: MtreeEntry, inode: Inode, links: Map<string, SharedFile>, opts: ManifestOptions): Inode {
  const own = joinPath(e.path);
  const contents = Buffer.from(bytesOf(e, 'contents') ?? own);
  const shown = showPath(contents);
  let st: BigIntStats;
  try {
    st = statSync(contents, { bigint: true });
  } catch (err) {
    throw fsUserError(`${e.where}: contents file '${shown}'`, err);
  }
  if (!st.isFile()) throw new UserError(`${e.where}: contents file '${shown}' is not a regular file`);
  const size = Number(st.size);
  const listed = sizeOf(e);
  if (listed !== undefined && listed !== size) {
    opts.warn(`${e.where}: size=${listed} but '${shown}' has ${size} bytes; using the file`);
  }
  if (st.nlink > 1n) {
    const key = `${st.dev}:${st.ino}`;
    const shared = links.get(key);
    if (shared !== undefined) {
      if (Buffer.compare(own, shared.path) < 0) {
        copyMetadata(shared.inode, inode);
        shared.path = own;
      }
      return shared.inode;
    }
    links.set(key, { inode, path: own });
  }
  inode.size = size;
  inode.source = { kind: 'path', path: hostPath(Buffer.from(contents)) };
  return inode;
}

function copyMetadata(to: Inode, from: Inode): void {
  to.perm = from.perm;
  to.uid = from.uid;
  to.gid = from.gid;
  setTimes(to, from.mtime);
}
