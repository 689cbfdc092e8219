// The file system level of verify: every directory decodes, every entry
// leads to an allocated object of the type the entry claims, link counts,
// directory sizes and parent pointers agree with the tree, and no object is
// left outside it.
import { showPath } from '../input/walk.js';
import { ReadError } from './errors.js';
import type { ObjectBitmap, Problem } from './traverse.js';
import { typeName } from './traverse.js';
import { DIRENT_TYPE, ZplReader, Znode } from './zpl.js';

export interface NamespaceResult {
  files: number;
  directories: number;
  others: number;
  /** Paths of the objects asked for (first name found). */
  paths: Map<number, string>;
  /** Some directory could not be read (objects below it were not reached). */
  incomplete: boolean;
}

const MAX_ORPHANS = 20;

export function checkNamespace(
  zpl: ZplReader, ds: number, allocated: ObjectBitmap | undefined, wanted: ReadonlySet<number>, report: (p: Problem) => void,
): NamespaceResult {
  const res: NamespaceResult = { files: 0, directories: 0, others: 0, paths: new Map(), incomplete: false };
  const problem = (object: number | undefined, text: string, key?: string, path?: string): void =>
    report({ ds, object, text, key, path: path || undefined });
  const fail = (object: number, path: string, e: unknown): void => {
    if (!(e instanceof Error)) throw e;
    // "object N: ..." from the reader repeats what the report says already
    problem(object, e.message.replace(/^object \d+: /, ''), e instanceof ReadError ? e.key : undefined, path);
  };
  /** Non-directories: links attribute and names found. */
  const files = new Map<number, { links: number; refs: number; path: string; dtype: number }>();
  const dirsSeen = new Set<number>();
  const referenced = new Set<number>();

  // the delete queue's objects are allocated but legitimately nameless
  const dq = zpl.master.get('DELETE_QUEUE');
  if (dq !== undefined) {
    try {
      for (const e of zpl.os.zap(Number(dq)).entries) referenced.add(Number(e.value.ints[0] ?? 0));
    } catch (e) {
      fail(Number(dq), '', e);
    }
  }

  const root = zpl.root;
  const stack: Array<{ obj: number; path: string; parent: number }> = [{ obj: root, path: '/', parent: root }];
  dirsSeen.add(root);
  referenced.add(root);
  if (wanted.has(root)) res.paths.set(root, '/');
  while (stack.length > 0) {
    const { obj, path, parent } = stack.pop()!;
    let z: Znode;
    try {
      z = zpl.stat(obj);
    } catch (e) {
      fail(obj, path, e);
      res.incomplete = true;
      continue;
    }
    res.directories++;
    if (z.type !== 'dir') {
      problem(obj, `the root is a ${z.type}, not a directory`, undefined, path);
      continue;
    }
    if (z.xattrDir !== undefined) referenced.add(z.xattrDir);
    if (z.parent !== parent) problem(obj, `parent is object ${z.parent}, expected ${parent}`, undefined, path);
    let entries;
    try {
      entries = zpl.readdir(obj, z.dnode);
    } catch (e) {
      fail(obj, path, e);
      res.incomplete = true;
      continue;
    }
    if (z.size !== entries.length + 2) problem(obj, `size ${z.size}, expected ${entries.length + 2} (entries + 2)`, undefined, path);
    let subdirs = 0;
    const next: Array<{ obj: number; path: string; parent: number }> = [];
    for (const e of entries) {
      const cpath = (path === '/' ? '/' : `${path}/`) + showPath(e.name);
      const id = e.objid;
      referenced.add(id);
      if (wanted.has(id) && !res.paths.has(id)) res.paths.set(id, cpath);
      if (allocated && !allocated.has(id)) {
        problem(obj, `entry ${JSON.stringify(showPath(e.name))} names object ${id}, which is not allocated`, undefined, path);
        continue;
      }
      if (id === root || zpl.systemObjects.has(id)) {
        problem(obj, `entry ${JSON.stringify(showPath(e.name))} names object ${id}, which is not a file`, undefined, path);
        continue;
      }
      const known = files.get(id);
      if (known) {
        known.refs++;
        if (e.dtype !== known.dtype) problem(obj, `entry ${JSON.stringify(showPath(e.name))} has type ${e.dtype}, another name of it ${known.dtype}`, undefined, path);
        continue;
      }
      let c: Znode;
      try {
        c = zpl.stat(id);
      } catch (err) {
        fail(id, cpath, err);
        res.incomplete = true;
        continue;
      }
      if (e.dtype !== DIRENT_TYPE[c.type]) problem(obj, `entry ${JSON.stringify(showPath(e.name))} has type ${e.dtype}, its object is a ${c.type}`, undefined, path);
      if (c.type === 'dir') {
        subdirs++;
        if (dirsSeen.has(id)) {
          problem(id, 'directory has a second name', undefined, cpath);
          continue;
        }
        dirsSeen.add(id);
        next.push({ obj: id, path: cpath, parent: obj });
        continue;
      }
      if (c.xattrDir !== undefined) referenced.add(c.xattrDir);
      files.set(id, { links: c.links, refs: 1, path: cpath, dtype: e.dtype });
      if (c.type === 'file') res.files++;
      else res.others++;
    }
    if (z.links !== subdirs + 2) problem(obj, `link count ${z.links}, expected ${subdirs + 2} (2 + subdirectories)`, undefined, path);
    for (let k = next.length - 1; k >= 0; k--) stack.push(next[k]!);
  }
  for (const [id, f] of files) {
    if (f.links !== f.refs) problem(id, `link count ${f.links}, but ${f.refs} ${f.refs === 1 ? 'entry names' : 'entries name'} it`, undefined, f.path);
  }
  if (allocated && !res.incomplete) {
    let orphans = 0;
    for (const id of allocated) {
      if (referenced.has(id) || zpl.systemObjects.has(id)) continue;
      orphans++;
      if (orphans > MAX_ORPHANS) continue;
      let what = '';
      try {
        what = ` (${typeName(zpl.os.dnode(id).type)})`;
      } catch { /* reported elsewhere */ }
      problem(id, `allocated${what} but not in any directory`);
    }
    if (orphans > MAX_ORPHANS) problem(undefined, `${orphans - MAX_ORPHANS} more objects are allocated but not in any directory`);
  }
  return res;
}
