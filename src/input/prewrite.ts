// File data placement that does not depend on the input's kind. A tarball's
// data must go into the image in archive order, before any metadata, since
// the archive is read once. Writing every other input's data the same way,
// in tree order (pre-order, names in byte order, each inode at its first
// name: the order `tar --sort=name` stores members in), before the writer
// runs, makes one tree give one image whether it came as a directory, a
// manifest or such a tarball.

import { closeSync, openSync, readSync } from 'node:fs';
import type { InputContext } from '../image.js';
import { fsUserError, UserError } from '../util/errors.js';
import { sortTree, type Inode } from './tree.js';
import { showPath } from './walk.js';

const CHUNK = 1 << 20;

/** Stream every file whose data is still outside the image (host files, in-memory bytes) into it. */
export function prewriteData(root: Inode, ctx: InputContext): void {
  sortTree(root);
  const buf = Buffer.allocUnsafe(CHUNK);
  const done = new Set<Inode>();
  // paths go along so the image can apply the right dataset's recordsize and compression
  const stack: [Inode, string][] = [[root, '']];
  while (stack.length > 0) {
    const [ino, path] = stack.pop()!;
    if (ino.type === 'file') {
      if (done.has(ino)) continue;
      done.add(ino);
      writeData(ino, ctx, buf, path);
      continue;
    }
    if (ino.entries) {
      for (let i = ino.entries.length - 1; i >= 0; i--) {
        const e = ino.entries[i]!;
        stack.push([e.inode, path === '' ? Buffer.from(e.name).toString('utf8') : `${path}/${Buffer.from(e.name).toString('utf8')}`]);
      }
    }
  }
}

function writeData(ino: Inode, ctx: InputContext, buf: Buffer, path: string): void {
  const src = ino.source;
  if (src === undefined || src.kind === 'written') return;
  const sink = ctx.beginFile(ino.size, path);
  if (src.kind === 'bytes') {
    sink.write(src.data.subarray(0, ino.size));
    ino.source = sink.end();
    return;
  }
  const shown = showPath(src.path);
  let fd: number;
  try {
    const host = src.path;
    fd = openSync(typeof host === 'string' ? host : Buffer.from(host.buffer, host.byteOffset, host.byteLength), 'r');
  } catch (err) {
    throw fsUserError(shown, err);
  }
  try {
    let pos = 0;
    while (pos < ino.size) {
      const n = readSync(fd, buf, 0, Math.min(CHUNK, ino.size - pos), pos);
      if (n === 0) throw new UserError(`${shown}: file shrank while being read (expected ${ino.size} bytes)`);
      sink.write(buf.subarray(0, n));
      pos += n;
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw fsUserError(shown, err);
  } finally {
    closeSync(fd);
  }
  ino.source = sink.end();
}
