// -F specfile: an mtree(8) spec laid over the tree read from the inputs, as
// makefs(8) does it. An entry the tree has gets the spec's owner, mode,
// symlink target and time; an entry the tree lacks is created (unless marked
// optional), which needs type, mode, user and group in the spec; a regular
// file created so is empty. With -x, whatever the spec does not list goes.
//
// Differences from makefs, on purpose: a spec time= sets all four times
// (makefs sets ctime to the wall clock), a spec size= that disagrees with the
// file is a warning (makefs would write that many bytes), and file flags are
// only checked (the zfs backend keeps none).

import { UserError } from '../util/errors.js';
import {
  bytesOf, deviceOf, flagsOf, hasType, inferType, isOptional, latin1Bytes, modeOf, ownerOf, parseMtree, showEntryPath,
  sizeOf, timeOf, type MtreeEntry, type Warn,
} from './mtree.js';
import type { UserDb } from './passwd.js';
import { defaultTime, setTimes, type TimePolicy } from './times.js';
import { direntKey, newDir, type DataSource, type Dirent, type Inode } from './tree.js';

export interface SpecOptions {
  /** The spec file, as messages name it. */
  name: string;
  /** -x: drop what the spec does not list. */
  onlySpec: boolean;
  policy: TimePolicy;
  users: UserDb;
  warn: Warn;
  /** Hand back data already in the image (tar input) when -x drops its file. */
  discard?: (src: DataSource) => void;
}

interface SpecNode {
  entry?: MtreeEntry;
  /** latin1 name components, as the spec's entries have them. */
  path: string[];
  children: Map<string, SpecNode>;
}


export function applySpec(root: Inode, data: Uint8Array, opts: SpecOptions): void {
  const entries = parseMtree(data, opts.name, opts.warn);
  if (entries.length === 0) throw new UserError(`${opts.name}: the spec describes no tree`);
  const top: SpecNode = { path: [], children: new Map() };
  for (const e of entries) {
    let node = top;
    for (const c of e.path) {
      let next = node.children.get(c);
      if (next === undefined) {
        next = { path: [...node.path, c], children: new Map() };
        node.children.set(c, next);
      }
      node = next;
    }
    if (node.entry !== undefined) throw new UserError(`${e.where}: duplicate entry (first at ${node.entry.where.split(': ')[0]})`);
    node.entry = e;
  }
  const before = opts.onlySpec && opts.discard ? writtenFiles(root) : undefined;
  applyDir(root, top, opts);
  if (before !== undefined) {
    const after = writtenFiles(root);
    for (const [ino, src] of before) if (!after.has(ino)) opts.discard!(src);
  }
}

function applyDir(dir: Inode, node: SpecNode, opts: SpecOptions): void {
  if (node.entry !== undefined) applyEntry(dir, node.entry, opts);
  const entries = dir.entries!;
  const byName = new Map<string, Dirent>(entries.map((e) => [direntKey(e), e]));
  if (opts.onlySpec) dir.entries = entries.filter((e) => node.children.has(direntKey(e)));
  for (const [k, child] of node.children) {
    let d = byName.get(k);
    if (d === undefined) {
      if (child.entry === undefined) {
        throw new UserError(`${opts.name}: ${showEntryPath(child.path)}: not in the tree, and the spec does not describe it`);
      }
      if (isOptional(child.entry)) continue;
      d = { name: latin1Bytes(child.path[child.path.length - 1]!), inode: createEntry(child.entry, opts) };
      dir.entries!.push(d);
    } else if (child.entry !== undefined) {
      applyEntry(d.inode, child.entry, opts);
    }
    const specDir = child.entry === undefined || !hasType(child.entry) || inferType(child.entry) === 'dir';
    if (d.inode.type === 'dir' && specDir) {
      applyDir(d.inode, child, opts);
    } else if (child.children.size > 0) {
      throw new UserError(`${opts.name}: ${showEntryPath(child.path)}: is not a directory in the tree`);
    }
  }
}

function applyEntry(inode: Inode, e: MtreeEntry, opts: SpecOptions): void {
  if (hasType(e) && inferType(e) !== inode.type) {
    throw new UserError(`${e.where}: type mismatch: the spec says ${inferType(e)}, the tree has a ${inode.type}`);
  }
  const { uid, gid } = ownerOf(e, opts.users);
  if (uid !== undefined) inode.uid = uid;
  if (gid !== undefined) inode.gid = gid;
  const mode = modeOf(e);
  if (mode !== undefined) inode.perm = mode;
  const link = bytesOf(e, 'link');
  if (link !== undefined) {
    if (inode.type !== 'symlink') throw new UserError(`${e.where}: link= given, but the tree has a ${inode.type}`);
    inode.target = link;
  }
  const time = timeOf(e);
  if (time !== undefined) setTimes(inode, time);
  const size = sizeOf(e);
  if (size !== undefined && inode.type === 'file' && size !== inode.size) {
    opts.warn(`${e.where}: size=${size} but the file has ${inode.size} bytes; using the file`);
  }
  flagsOf(e);
}

/** An entry only the spec has: it must say what it is and who owns it. */
function createEntry(e: MtreeEntry, opts: SpecOptions): Inode {
  const missing = !hasType(e) ? 'type' : !e.kw.has('mode') ? 'mode'
    : !e.kw.has('uid') && !e.kw.has('uname') ? 'user' : !e.kw.has('gid') && !e.kw.has('gname') ? 'group' : undefined;
  if (missing !== undefined) throw new UserError(`${e.where}: not in the tree, and the spec gives no ${missing}`);
  const type = inferType(e);
  const t = defaultTime(opts.policy);
  const inode: Inode = type === 'dir'
    ? newDir()
    : { type, perm: 0, uid: 0, gid: 0, size: 0, atime: t, mtime: t, ctime: t, crtime: t, objid: 0 };
  setTimes(inode, t);
  switch (type) {
    case 'file':
      inode.source = { kind: 'bytes', data: new Uint8Array(0) };
      break;
    case 'symlink':
      if (!e.kw.has('link')) throw new UserError(`${e.where}: not in the tree, and the spec gives no link`);
      break;
    case 'chardev':
    case 'blockdev':
      [inode.rdevMajor, inode.rdevMinor] = deviceOf(e) ?? [0, 0];
      break;
  }
  applyEntry(inode, e, opts);
  return inode;
}

/**
 * The inodes whose data is already in the image, with its source. Keyed by
 * inode: a file may make its source anew at each read (a slab index kept,
 * not an object: see HostFile), so two reads are not one object.
 */
function writtenFiles(root: Inode): Map<Inode, DataSource> {
  const out = new Map<Inode, DataSource>();
  const stack: Inode[] = [root];
  while (stack.length > 0) {
    const ino = stack.pop()!;
    const src = ino.source;
    if (src?.kind === 'written') out.set(ino, src);
    if (ino.entries) for (const e of ino.entries) stack.push(e.inode);
  }
  return out;
}
