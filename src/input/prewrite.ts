// File data placement that does not depend on the input's kind. A tarball's
// data must go into the image in archive order, before any metadata, since
// the archive is read once. Writing every other input's data the same way,
// in tree order (pre-order, names in byte order, each inode at its first
// name: the order `tar --sort=name` stores members in), before the writer
// runs, makes one tree give one image whether it came as a directory, a
// manifest or such a tarball.

import type { FileSink, InputContext } from '../image.js';
import { fsUserError, UserError } from '../util/errors.js';
import { RECORDSIZE } from '../zpl/filedata.js';
import type { HeldFiles } from './held-files.js';
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
  /** A host file the image copies itself (InputContext.copies): not read here. */
  copy: boolean;
}

/** Stream every file whose data is still outside the image (host files, in-memory bytes) into it. */
export function prewriteData(root: Inode, ctx: InputContext): void {
  sortTree(root);
  const w = new Prewriter(root, ctx, { complete: true });
  try {
    w.finish();
  } finally {
    w.close();
  }
}

/**
 * The data of every file still outside the image, written in tree order.
 * Host files the image copies itself (InputContext.copies: large files of
 * datasets without compression) are only handed over, in the same order;
 * their blocks were placed when they were handed over, so the order their
 * bytes go in does not change the image.
 * Built on a finished tree (`complete`), or alongside a directory walk that
 * reads directories in the same order the data goes (each directory's
 * entries sorted, then its subdirectories in name order): the walk reports
 * each directory it has read (`walked`) and calls `pump` between
 * directories, which requests the files now known and writes those whose
 * bytes can be had without waiting (all of them when the build thread
 * reads them itself; those a reader thread already has otherwise). So the
 * data is read and the image written while the tree is still being walked;
 * the order of the data, and so the image, stays the tree order.
 */
export class Prewriter {
  private readonly cursor: FileCursor;
  // A hard-linked inode is met once per name, and its data must go in once.
  // An image's sink hands back a 'written' source, which a later visit
  // skips; until then (it may be in the window) and for sinks that do not
  // (in-memory ones), the sets below remember it.
  private readonly done = new Set<Inode>();
  private readonly inWindow = new Set<Inode>();
  private window: (Pending | undefined)[] = [];
  private head = 0;
  /** The file at the window's head when pump() left it part-written (its sink stays open). */
  private writing: Writing | null = null;
  private readonly reader: HostFileReader;
  private readonly held: HeldFiles | undefined;

  /** `held`: the files the walk opened (their descriptors are taken here, read through, and closed). */
  constructor(root: Inode, private readonly ctx: InputContext, opts: { complete: boolean; held?: HeldFiles }) {
    this.cursor = new FileCursor(root, opts.complete ? null : new Set(), ctx.pathsMatter !== false);
    this.reader = new HostFileReader(RECORDSIZE, ctx.adoptBuffer?.bind(ctx));
    this.held = opts.held;
  }

  /** A directory whose entries are now all known (sorted by name). */
  walked(dir: Inode): void {
    this.cursor.walked!.add(dir);
  }

  /**
   * Request what is known; write the files whose bytes are ready. Never
   * waits for the reader, nor for the image writer's ring: where the
   * image's writer is behind, pump returns, even in the middle of a file,
   * and the walk goes on meanwhile; the next pump carries on where this
   * one stopped. The data's order, and so the image, is the same. (A file
   * to copy is queued when the copies' table is full; only past thousands
   * queued does handing one over wait, or copy a chunk: see CopyQueue.add.)
   */
  pump(): void {
    this.ctx.collectCopies?.();
    this.fill();
    this.reader.flush();
    while (this.head < this.window.length && (this.window[this.head]!.copy || this.reader.ready())) {
      if (!this.writeNext(false)) return;
    }
    // all known data is in: the image writer gets it now, not once more
    // has come (a large directory may take a while to walk)
    this.reader.nudge();
  }

  /** The tree is complete: write everything left. */
  finish(): void {
    this.cursor.walked = null;
    for (;;) {
      this.fill();
      if (this.head === this.window.length) return;
      this.writeNext(true);
    }
  }

  close(): void {
    this.reader.close();
  }

  private fill(): void {
    while (this.window.length - this.head < LOOKAHEAD) {
      const f = this.cursor.next();
      if (f === undefined) return;
      if (this.done.has(f.ino) || this.inWindow.has(f.ino)) continue;
      const src = f.ino.source;
      if (src === undefined || src.kind === 'written') continue;
      this.inWindow.add(f.ino);
      const copy = src.kind === 'path' && this.ctx.copies?.(f.ino.size, f.path, src.path) === true;
      if (src.kind === 'path' && !copy) {
        // (0: the reader's own choice, blocks of a file at the usual record size)
        const block = this.ctx.blockSize?.(f.ino.size, f.path) ?? 0;
        this.reader.request(src.path, f.ino.size, block, this.held?.take(f.ino) ?? -1);
      } else {
        // (a file the image copies itself is opened by path where it is copied)
        this.held?.drop(f.ino);
      }
      this.window.push({ ino: f.ino, src, path: f.path, copy });
    }
  }

  /** Write the file at the window's head (`mayWait` false: as far as goes without waiting); true: it is all written. */
  private writeNext(mayWait: boolean): boolean {
    const p = this.window[this.head]!;
    let written: DataSource | null;
    if (p.copy) {
      const src = p.src as Extract<DataSource, { kind: 'path' }>;
      written = p.ino.source = this.ctx.copyFile!(p.ino.size, p.path, src.path);
    } else {
      this.writing ??= beginData(p, this.ctx);
      written = writeData(this.writing, this.reader, mayWait);
      if (written === null) return false;
      this.writing = null;
    }
    this.window[this.head++] = undefined;
    if (this.head === 4 * LOOKAHEAD) {
      this.window.splice(0, this.head);
      this.head = 0;
    }
    this.inWindow.delete(p.ino);
    if (written.kind !== 'written') this.done.add(p.ino);
    return true;
  }
}

/**
 * The regular files of a tree in pre-order, names in byte order, with their
 * paths relative to the root. One frame per directory on the way down,
 * rather than every entry of every directory on the way pushed at once.
 * Paths go along so the image can apply the right dataset's recordsize and
 * compression, unless the image says they do not matter (every dataset
 * writes files alike): then every path is ''.
 */
class FileCursor {
  private readonly stack: Frame[];

  /**
   * `walked`: while the tree is still being walked, the directories whose
   * entries are known; the cursor stops in front of any other (and resumes
   * there). null: the tree is complete.
   */
  constructor(root: Inode, public walked: Set<Inode> | null, private readonly paths = true) {
    this.stack = [{ dir: root, path: '', next: 0 }];
  }

  next(): { ino: Inode; path: string } | undefined {
    const stack = this.stack;
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (this.walked !== null && top.next === 0 && !this.walked.has(top.dir)) return undefined;
      const entries = top.dir.entries!;
      if (top.next === entries.length) {
        stack.pop();
        continue;
      }
      const e = entries[top.next++]!;
      const ino = e.inode;
      // (without paths, not even the name: a file's is made on each access)
      if (ino.type === 'file') return { ino, path: this.paths ? childPath(top.path, e.name) : '' };
      if (ino.entries) stack.push({ dir: ino, path: this.paths ? childPath(top.path, e.name) : '', next: 0 });
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

/** A file whose data is being written: its sink, and what the reader hands its pieces to. */
interface Writing {
  p: Pending;
  sink: FileSink;
  put: (piece: Uint8Array, block: Uint8Array) => void;
}

function beginData(p: Pending, ctx: InputContext): Writing {
  const sink = ctx.beginFile(p.ino.size, p.path);
  // whole blocks go as they are only where the context named their size
  // (and so the sink takes them); other sinks get the data of each
  const whole = ctx.blockSize !== undefined && sink.writeBlock !== undefined;
  const put = whole ? (piece: Uint8Array, block: Uint8Array) => sink.writeBlock!(block, piece.length) : (piece: Uint8Array) => sink.write(piece);
  return { p, sink, put };
}

/**
 * Write (the rest of) a file's data. Returns the source the data now has
 * (also set on the inode); null: `mayWait` was false and the reader
 * stopped before a wait (call again to go on).
 */
function writeData(w: Writing, reader: HostFileReader, mayWait: boolean): DataSource | null {
  const { p: { ino, src }, sink } = w;
  if (src.kind === 'bytes') {
    sink.write(src.data.subarray(0, ino.size));
    return (ino.source = sink.end());
  }
  try {
    if (!reader.read(w.put, mayWait)) return null;
  } catch (err) {
    if (!(err instanceof HostReadError)) throw err;
    const shown = showPath(src.path);
    if (err.shrank) throw new UserError(`${shown}: file shrank while being read (expected ${ino.size} bytes)`);
    throw fsUserError(shown, err);
  }
  return (ino.source = sink.end());
}
