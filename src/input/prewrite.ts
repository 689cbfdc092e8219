// File data placement that does not depend on the input's kind. A tarball's
// data must go into the image in archive order, before any metadata, since
// the archive is read once. Writing every other input's data the same way,
// in tree order (pre-order, names in byte order, each inode at its first
// name: the order `tar --sort=name` stores members in), before the writer
// runs, makes one tree give one image whether it came as a directory, a
// manifest or such a tarball.

import type { InputContext } from '../image.js';
import { fsUserError, UserError } from '../util/errors.js';
import { RECORDSIZE } from '../zpl/filedata.js';
import { HostFileReader, HostReadError } from './host-reader.js';
import { sortTree, type DataSource, type Inode } from './tree.js';
import { showPath } from './walk.js';

/**
 * Files named to the reader ahead of the one being written: enough to keep
 * its ring full of small files, few enough that the window costs nothing.
 */
const LOOKAHEAD = 256;

interface Pending {
  ino: Inode;
  /** Data still outside the image. */
  src: Exclude<DataSource, { kind: 'written' }>;
  path: string;
}

/** Stream every file whose data is still outside the image (host files, in-memory bytes) into it. */
export function prewriteData(root: Inode, ctx: InputContext): void {
  sortTree(root);
  if (root.entries === undefined) return;
  const cursor = new FileCursor(root);
  // A hard-linked inode is met once per name, and its data must go in once.
  // An image's sink hands back a 'written' source, which a later visit
  // skips; until then (it may be in the window) and for sinks that do not
  // (in-memory ones), the sets below remember it.
  const done = new Set<Inode>();
  const inWindow = new Set<Inode>();
  const window: (Pending | undefined)[] = [];
  let head = 0;
  const reader = new HostFileReader(RECORDSIZE);
  try {
    for (;;) {
      while (window.length - head < LOOKAHEAD) {
        const f = cursor.next();
        if (f === undefined) break;
        if (done.has(f.ino) || inWindow.has(f.ino)) continue;
        const src = f.ino.source;
        if (src === undefined || src.kind === 'written') continue;
        inWindow.add(f.ino);
        if (src.kind === 'path') reader.request(src.path, f.ino.size);
        window.push({ ino: f.ino, src, path: f.path });
      }
      if (head === window.length) break;
      const p = window[head]!;
      window[head++] = undefined;
      if (head === 4 * LOOKAHEAD) {
        window.splice(0, head);
        head = 0;
      }
      const written = writeData(p, ctx, reader);
      inWindow.delete(p.ino);
      if (written.kind !== 'written') done.add(p.ino);
    }
  } finally {
    reader.close();
  }
}

/**
 * The regular files of a tree in pre-order, names in byte order, with their
 * paths relative to the root. One frame per directory on the way down,
 * rather than every entry of every directory on the way pushed at once.
 * Paths go along so the image can apply the right dataset's recordsize and
 * compression.
 */
class FileCursor {
  private readonly stack: Frame[];

  constructor(root: Inode) {
    this.stack = [{ dir: root, path: '', next: 0 }];
  }

  next(): { ino: Inode; path: string } | undefined {
    const stack = this.stack;
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const entries = top.dir.entries!;
      if (top.next === entries.length) {
        stack.pop();
        continue;
      }
      const e = entries[top.next++]!;
      const ino = e.inode;
      if (ino.type === 'file') return { ino, path: childPath(top.path, e.name) };
      if (ino.entries) stack.push({ dir: ino, path: childPath(top.path, e.name), next: 0 });
    }
    return undefined;
  }
}

interface Frame {
  dir: Inode;
  /** Relative to the root, '' for the root itself. */
  path: string;
  /** The index of the entry to visit next. */
  next: number;
}

function childPath(parent: string, name: Uint8Array): string {
  const s = Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('utf8');
  return parent === '' ? s : `${parent}/${s}`;
}

/** Returns the source the data now has (also set on the inode). */
function writeData(p: Pending, ctx: InputContext, reader: HostFileReader): DataSource {
  const { ino, src } = p;
  const sink = ctx.beginFile(ino.size, p.path);
  if (src.kind === 'bytes') {
    sink.write(src.data.subarray(0, ino.size));
    return (ino.source = sink.end());
  }
  try {
    reader.read((piece) => sink.write(piece));
  } catch (err) {
    if (!(err instanceof HostReadError)) throw err;
    const shown = showPath(src.path);
    if (err.shrank) throw new UserError(`${shown}: file shrank while being read (expected ${ino.size} bytes)`);
    throw fsUserError(shown, err);
  }
  return (ino.source = sink.end());
}
