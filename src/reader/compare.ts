// Comparing two trees, whatever produced them: a TreeView gives a tree's
// entries, their attributes and (lazily) the sha256 of file contents. There
// are views of the tree model every input produces (src/input/tree.ts: the
// directory walk now, tar and mtree readers later) and of a ZPL dataset in an
// image. Directories are compared a pair at a time, so memory holds one
// directory listing per level plus a map for hard links.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { compareNames, Inode, NodeType, Timespec } from '../input/tree.js';
import { showPath } from '../input/walk.js';
import type { ZplReader } from './zpl.js';

export interface NodeInfo {
  type: NodeType;
  /** Permission bits, mode & 0o7777. */
  perm: number;
  uid: number;
  gid: number;
  /** Regular files: bytes of data (ignored for other types). */
  size: number;
  mtime: Timespec;
  target?: Uint8Array;
  rdev?: [major: number, minor: number];
  /** Extended attributes; undefined: this tree does not know (not compared). */
  xattrs?: Map<string, Uint8Array>;
}

export interface TreeView<N> {
  root(): N;
  info(node: N): NodeInfo;
  /** A directory's entries, in any order. */
  children(dir: N): Array<{ name: Uint8Array; node: N }>;
  /** Hex sha256 of a regular file's data; undefined when this view cannot tell. */
  sha256(node: N): string | undefined | Promise<string | undefined>;
  /** Hard-link identity: the same value for every name of one inode. */
  identity?(node: N): unknown;
}

export interface DiffOptions {
  /** Compare file contents (sha256). Default true. */
  content?: boolean;
  /** Compare mtimes. Default true. */
  mtime?: boolean;
  /** Compare extended attributes where the expected tree has them. Default true. */
  xattrs?: boolean;
  /** Stop after this many differences. */
  maxDiffs?: number;
}

const TYPE_WORD: Record<NodeType, string> = {
  file: 'regular file', dir: 'directory', symlink: 'symbolic link', fifo: 'fifo', socket: 'socket',
  chardev: 'character device', blockdev: 'block device',
};

export function isoTime(t: Timespec): string {
  const d = new Date(t.sec * 1000);
  const base = Number.isNaN(d.getTime()) ? `${t.sec}s` : d.toISOString().replace(/\.000Z$/, '');
  return t.nsec === 0 ? `${base}Z` : `${base}.${String(t.nsec).padStart(9, '0')}Z`;
}

const preview = (b: Uint8Array): string => JSON.stringify(Buffer.from(b.subarray(0, 32)).toString('latin1') + (b.length > 32 ? '...' : ''));
const octal = (n: number): string => n.toString(8).padStart(4, '0');
const quoted = (b: Uint8Array): string => JSON.stringify(showPath(b));

/**
 * Differences between an expected tree and an actual one, one line each:
 * "path: what differs". Paths start at "/" (the trees' roots).
 */
export async function diffTrees<A, B>(expected: TreeView<A>, actual: TreeView<B>, opts: DiffOptions = {}): Promise<string[]> {
  const out: string[] = [];
  const max = opts.maxDiffs ?? Infinity;
  const links = new Map<unknown, { path: string; other: unknown }>();
  const linksB = new Map<unknown, { path: string; other: unknown }>();
  // pairs to compare, and one-sided entries to report, in path order
  type Item = { a: A; b: B; path: string } | { path: string; only: string };
  const stack: Item[] = [{ a: expected.root(), b: actual.root(), path: '/' }];
  const say = (path: string, what: string): void => {
    if (out.length < max) out.push(`${path}: ${what}`);
  };
  const join = (dir: string, name: Uint8Array): string => (dir === '/' ? '/' : `${dir}/`) + showPath(name);

  while (stack.length > 0 && out.length < max) {
    const item = stack.pop()!;
    if ('only' in item) {
      say(item.path, item.only);
      continue;
    }
    const { a, b, path } = item;
    try {
      await compareNode(a, b, path);
    } catch (e) {
      if (!(e instanceof Error)) throw e;
      say(path, `cannot compare: ${e.message}`);
    }
  }
  return out;

  async function compareNode(a: A, b: B, path: string): Promise<void> {
    const ia = expected.info(a);
    const ib = actual.info(b);
    if (ia.type !== ib.type) {
      say(path, `type: expected ${TYPE_WORD[ia.type]}, image has ${TYPE_WORD[ib.type]}`);
      return;
    }
    if (ia.perm !== ib.perm) say(path, `mode: expected ${octal(ia.perm)}, image has ${octal(ib.perm)}`);
    if (ia.uid !== ib.uid || ia.gid !== ib.gid) say(path, `owner: expected ${ia.uid}:${ia.gid}, image has ${ib.uid}:${ib.gid}`);
    if (opts.mtime !== false && (ia.mtime.sec !== ib.mtime.sec || ia.mtime.nsec !== ib.mtime.nsec)) {
      say(path, `mtime: expected ${isoTime(ia.mtime)}, image has ${isoTime(ib.mtime)}`);
    }
    if (ia.type === 'symlink' && !Buffer.from(ia.target ?? []).equals(Buffer.from(ib.target ?? []))) {
      say(path, `link target: expected ${quoted(ia.target ?? new Uint8Array())}, image has ${quoted(ib.target ?? new Uint8Array())}`);
    }
    if ((ia.type === 'chardev' || ia.type === 'blockdev') && (ia.rdev?.[0] !== ib.rdev?.[0] || ia.rdev?.[1] !== ib.rdev?.[1])) {
      say(path, `device: expected ${ia.rdev?.join(',')}, image has ${ib.rdev?.join(',')}`);
    }
    if (opts.xattrs !== false && ia.xattrs !== undefined) {
      const xb = ib.xattrs ?? new Map<string, Uint8Array>();
      const names = [...new Set([...ia.xattrs.keys(), ...xb.keys()])].sort();
      for (const name of names) {
        const va = ia.xattrs.get(name);
        const vb = xb.get(name);
        if (vb === undefined) say(path, `xattr ${JSON.stringify(name)}: missing from the image`);
        else if (va === undefined) say(path, `xattr ${JSON.stringify(name)}: not expected (only in the image)`);
        else if (!Buffer.from(va).equals(Buffer.from(vb))) say(path, `xattr ${JSON.stringify(name)}: expected ${va.length} bytes ${preview(va)}, image has ${vb.length} bytes ${preview(vb)}`);
      }
    }
    if (ia.type === 'file') {
      if (ia.size !== ib.size) say(path, `size: expected ${ia.size}, image has ${ib.size}`);
      else if (opts.content !== false && ia.size > 0) {
        const ha = await expected.sha256(a);
        const hb = ha === undefined ? undefined : await actual.sha256(b);
        if (ha !== undefined && hb !== undefined && ha !== hb) say(path, `content: expected sha256 ${ha}, image has ${hb}`);
      }
    }
    if (ia.type !== 'dir') {
      // hard links: names sharing an inode on one side must share it on the other
      const idA = expected.identity?.(a);
      const idB = actual.identity?.(b);
      if (idA !== undefined && idB !== undefined) {
        const seenA = links.get(idA);
        const seenB = linksB.get(idB);
        if (seenA && seenA.other !== idB) say(path, `expected a hard link to ${seenA.path}, image has a separate file`);
        else if (!seenA && seenB) say(path, `image has a hard link to ${seenB.path}, expected a separate file`);
        if (!seenA) links.set(idA, { path, other: idB });
        if (!seenB) linksB.set(idB, { path, other: idA });
      }
      return;
    }
    const ca = expected.children(a).sort((x, y) => compareNames(x.name, y.name));
    const cb = actual.children(b).sort((x, y) => compareNames(x.name, y.name));
    const next: Item[] = [];
    let i = 0;
    let j = 0;
    while (i < ca.length || j < cb.length) {
      const c = i >= ca.length ? 1 : j >= cb.length ? -1 : compareNames(ca[i]!.name, cb[j]!.name);
      if (c < 0) next.push({ path: join(path, ca[i++]!.name), only: 'missing from the image' });
      else if (c > 0) next.push({ path: join(path, cb[j++]!.name), only: 'not expected (only in the image)' });
      else {
        next.push({ a: ca[i]!.node, b: cb[j]!.node, path: join(path, ca[i]!.name) });
        i++;
        j++;
      }
    }
    for (let k = next.length - 1; k >= 0; k--) stack.push(next[k]!);
  }
}

/** sha256 of a host file, read in 1 MiB pieces. */
export function sha256OfFile(path: string | Uint8Array): string {
  const h = createHash('sha256');
  const fd = fs.openSync(path as fs.PathLike, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * The tree model as a TreeView: contents from host files or in-memory bytes.
 * Data already streamed elsewhere (a tar member written into an image) can
 * only be compared through `sha256`, which an input that hashed it on the
 * way can supply; without it such files are compared by size alone.
 */
export function inodeTreeView(root: Inode, opts: { sha256?: (inode: Inode) => string | undefined } = {}): TreeView<Inode> {
  return {
    root: () => root,
    info: (n) => ({
      type: n.type, perm: n.perm, uid: n.uid, gid: n.gid, size: n.size, mtime: n.mtime, target: n.target,
      rdev: n.type === 'chardev' || n.type === 'blockdev' ? [n.rdevMajor ?? 0, n.rdevMinor ?? 0] : undefined,
      xattrs: n.xattrs,
    }),
    children: (d) => (d.entries ?? []).map((e) => ({ name: e.name, node: e.inode })),
    sha256: (n) => {
      const given = opts.sha256?.(n);
      if (given !== undefined) return given;
      const src = n.source;
      if (!src) return n.size === 0 ? createHash('sha256').digest('hex') : undefined;
      if (src.kind === 'path') return sha256OfFile(src.path);
      if (src.kind === 'bytes') return createHash('sha256').update(src.data.subarray(0, n.size)).digest('hex');
      return undefined;
    },
    identity: (n) => n,
  };
}

/** A ZPL dataset as a TreeView (nodes are object numbers). */
export function zplTreeView(zpl: ZplReader, rootObj = zpl.root): TreeView<number> {
  return {
    root: () => rootObj,
    info: (obj) => {
      const z = zpl.stat(obj);
      return { type: z.type, perm: z.perm, uid: z.uid, gid: z.gid, size: z.size, mtime: z.mtime, target: z.target, rdev: z.rdev, xattrs: z.xattrs };
    },
    children: (obj) => zpl.readdir(obj).map((e) => ({ name: e.name, node: e.objid })),
    sha256: (obj) => {
      const h = createHash('sha256');
      for (const chunk of zpl.read(obj)) h.update(chunk);
      return h.digest('hex');
    },
    identity: (obj) => obj,
  };
}
