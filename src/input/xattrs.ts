// Extended attributes of staged files. Node has no xattr calls, so one
// `getfattr -R` per input directory dumps them all (base64 values), and the
// dump is attached to the tree by path. Only the user, trusted and security
// namespaces are taken: system.* holds POSIX ACLs, which ZFS keeps elsewhere.
import { spawn, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import * as path from 'node:path';
import { compareNames, splitPath, type Dirent, type Inode } from './tree.js';
import { UserError } from '../util/errors.js';

const NAMESPACES = '^(user|trusted|security)\\.';

/** Undo getfattr's escaping of file names: \ooo octal for odd bytes and the backslash. */
function unescapeName(b: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x5c && i + 3 < b.length + 0 && /^[0-7]{3}$/.test(b.subarray(i + 1, i + 4).toString('latin1'))) {
      out.push(parseInt(b.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else {
      out.push(b[i]!);
    }
  }
  return Buffer.from(out);
}

function decodeValue(v: string): Uint8Array {
  if (v === '' || v === '""') return new Uint8Array(0);
  if (v.startsWith('0s')) return Buffer.from(v.slice(2), 'base64');
  if (v.startsWith('0x')) return Buffer.from(v.slice(2), 'hex');
  if (v.startsWith('"') && v.endsWith('"')) return Buffer.from(v.slice(1, -1), 'latin1');
  throw new Error(`unexpected getfattr value ${v.slice(0, 20)}`);
}

/**
 * Where the merge put each entry (InputMerger.originOf), and which input
 * each dump is of: a dump's xattrs go only to the inodes its own input
 * gave the tree, never to an earlier input's inode at the same path.
 */
export interface XattrOwners {
  /** Per dump: the index of its input in the merge. */
  inputs: readonly number[];
  originOf(e: Dirent): number | undefined;
}

/** The inode at `comps` below root, and the input it came from (-1 without owners). */
function lookup(root: Inode, comps: Buffer[], owners: XattrOwners | undefined): { inode: Inode; input: number } | undefined {
  let cur: Inode | undefined = root;
  let input = owners === undefined ? -1 : 0;
  for (const c of comps) {
    if (!cur?.entries) return undefined;
    let lo = 0, hi = cur.entries.length - 1, found: Dirent | undefined;
    // entries are sorted by name bytes once the tree is sorted; fall back to a scan otherwise
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const d = compareNames(cur.entries[mid]!.name, c);
      if (d === 0) { found = cur.entries[mid]!; break; }
      if (d < 0) lo = mid + 1; else hi = mid - 1;
    }
    found ??= cur.entries.find((e) => compareNames(e.name, c) === 0);
    if (found === undefined) return undefined;
    if (owners !== undefined) input = owners.originOf(found) ?? input;
    cur = found.inode;
  }
  return { inode: cur, input };
}

interface Dump {
  status: number | null;
  stdout: Buffer;
  stderr: Buffer;
  missing: boolean;
}

/** getfattr dumps of the input directories, started before the walk so they run alongside it. */
export interface XattrScan {
  done: Promise<Dump[]>;
  /** Stop the scans (the build failed before they were needed). */
  cancel(): void;
}

const GETFATTR_ARGS = ['-R', '-d', '-h', '--absolute-names', '-m', NAMESPACES, '-e', 'base64'];

/**
 * Start one `getfattr -R` per input directory. They run in processes of
 * their own while the (synchronous) walk runs; their output is collected
 * once the event loop turns again.
 */
export function startHostXattrs(dirs: readonly string[]): XattrScan {
  const children: ChildProcess[] = [];
  const done = Promise.all(dirs.map((dir) => new Promise<Dump>((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const child = spawn('getfattr', [...GETFATTR_ARGS, path.resolve(dir)], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    // It walks the whole tree again (~1 s of CPU for /usr) beside a build
    // that keeps both cores of a small machine busy: at the lowest priority
    // it runs in the moments they are idle and still ends with the walk
    // (/usr: 2-3% less wall time). A priority that cannot be set is no error.
    try {
      if (child.pid !== undefined) setPriority(child.pid, 19);
    } catch {
      // (not permitted here: it runs at the build's own priority)
    }
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => resolve({ status: null, stdout: Buffer.alloc(0), stderr: Buffer.from(String(e)), missing: (e as NodeJS.ErrnoException).code === 'ENOENT' }));
    child.on('close', (status) => resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err), missing: false }));
  })));
  return { done, cancel: () => { for (const c of children) c.kill(); } };
}

/**
 * Attach the xattrs of each input directory (from startHostXattrs, in the
 * same order) to the tree's inodes. With `owners`, a path's xattrs come
 * from the input its inode came from, as its other attributes do (a
 * directory merged into an earlier input's keeps the earlier one's, even
 * if that one has none); without, the first dump that has a path wins.
 * Returns how many inodes got xattrs; null when getfattr is not installed.
 */
export function applyHostXattrs(root: Inode, dirs: readonly string[], dumps: readonly Dump[], owners?: XattrOwners): number | null {
  let count = 0;
  for (let i = 0; i < dirs.length; i++) {
    const dir = dirs[i]!;
    const abs = path.resolve(dir);
    const r = dumps[i]!;
    if (r.missing) return null;
    if (r.status !== 0 && r.stdout.length === 0) {
      throw new UserError(`${dir}: cannot read extended attributes: ${r.stderr.toString().trim().split('\n')[0]}`);
    }
    const prefix = Buffer.from(abs === '/' ? '/' : `${abs}/`);
    let current: Inode | undefined;
    let isNew = false;
    let start = 0;
    const out = r.stdout;
    while (start < out.length) {
      let end = out.indexOf(0x0a, start);
      if (end < 0) end = out.length;
      const line = out.subarray(start, end);
      start = end + 1;
      if (line.length === 0) continue;
      if (line.subarray(0, 8).toString('latin1') === '# file: ') {
        const p = unescapeName(line.subarray(8));
        const rel = p.equals(Buffer.from(abs)) ? Buffer.alloc(0) : p.subarray(0, prefix.length).equals(prefix) ? p.subarray(prefix.length) : undefined;
        current = undefined;
        if (rel === undefined) continue;
        const at = lookup(root, splitPath(rel), owners);
        current = at !== undefined && (owners === undefined || at.input === owners.inputs[i]) ? at.inode : undefined;
        isNew = current !== undefined && current.xattrs === undefined;
        if (isNew) { current!.xattrs = new Map(); count++; }
        continue;
      }
      if (!current || !isNew) continue;
      const text = line.toString('latin1');
      const eq = text.indexOf('=');
      const name = Buffer.from(eq < 0 ? text : text.slice(0, eq), 'latin1').toString('utf8');
      current.xattrs!.set(name, decodeValue(eq < 0 ? '' : text.slice(eq + 1)));
    }
  }
  return count;
}
