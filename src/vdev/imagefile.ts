// The output file: created sparse at its final size under a temporary name,
// written with positional writes, renamed into place only when complete.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errnoCode, fsUserError, UserError } from '../util/errors.js';

const COMBINE_LIMIT = 8 * 1024 * 1024;

/** The temporary name an image is written under until it is complete. */
export function tmpPathFor(finalPath: string, pid = process.pid): string {
  const dir = path.dirname(path.resolve(finalPath));
  return path.join(dir, `.${path.basename(finalPath)}.tsmakefs-${pid}.tmp`);
}

// Every ImageFile between creation and commit/abort, so that a signal
// handler (or a library user's) can remove the temporary files of builds
// that will never finish: abortOpenImageFiles().
const open = new Set<ImageFile>();

/** The temporary paths of the images being written right now. */
export function openImageFiles(): string[] {
  return [...open].map((f) => f.tmpPath);
}

/**
 * Close and remove the temporary file of every image still being written
 * (for SIGINT/SIGTERM handlers). Synchronous; returns the paths removed.
 */
export function abortOpenImageFiles(): string[] {
  const paths = openImageFiles();
  for (const f of [...open]) f.abort();
  return paths;
}

export class ImageFile {
  readonly tmpPath: string;
  private fd = -1;
  // Writes mostly arrive in ascending, contiguous order (bump allocation):
  // gather them into one buffer to make few large pwrite calls.
  private pend = Buffer.allocUnsafe(COMBINE_LIMIT);
  private pendStart = -1;
  private pendLen = 0;
  bytesWritten = 0;

  constructor(readonly finalPath: string, size: number) {
    this.tmpPath = tmpPathFor(finalPath);
    // the rename at the end would fail on a directory: say so before any work
    let isDir = false;
    try { isDir = fs.statSync(finalPath).isDirectory(); } catch { /* absent: fine */ }
    if (isDir) throw new UserError(`${finalPath}: Is a directory`);
    try {
      this.fd = fs.openSync(this.tmpPath, 'w', 0o644);
    } catch (e) {
      // "disk.img: No such file or directory", not the temporary name
      throw this.failure(e);
    }
    open.add(this);
    try {
      fs.ftruncateSync(this.fd, size);
    } catch (e) {
      this.abort();
      throw this.failure(e);
    }
  }

  /** A failed system call on the image, as a one-line error naming the image (ENOSPC, EIO, EFBIG...). */
  private failure(e: unknown): unknown {
    return errnoCode(e) === undefined ? e : fsUserError(this.finalPath, e);
  }

  write(offset: number, data: Uint8Array): void {
    this.bytesWritten += data.length;
    if (this.pendLen > 0 && offset === this.pendStart + this.pendLen && this.pendLen + data.length <= COMBINE_LIMIT) {
      this.pend.set(data, this.pendLen);
      this.pendLen += data.length;
      return;
    }
    this.flush();
    if (data.length >= COMBINE_LIMIT) {
      this.pwriteAll(data, offset);
      return;
    }
    this.pend.set(data, 0);
    this.pendStart = offset;
    this.pendLen = data.length;
  }

  flush(): void {
    if (this.pendLen === 0) return;
    this.pwriteAll(this.pend.subarray(0, this.pendLen), this.pendStart);
    this.pendLen = 0;
  }

  private pwriteAll(data: Uint8Array, offset: number): void {
    let done = 0;
    try {
      while (done < data.length) {
        done += fs.writeSync(this.fd, data, done, data.length - done, offset + done);
      }
    } catch (e) {
      throw this.failure(e);
    }
  }

  /** Change the file's size (an auto-sized image cut to fit). */
  resize(size: number): void {
    this.flush();
    try {
      fs.ftruncateSync(this.fd, size);
    } catch (e) {
      throw this.failure(e);
    }
  }

  /** Flush, close and rename over the final path. */
  commit(): void {
    this.flush();
    try {
      // a full disk may only show at fsync or close (NFS, delayed allocation)
      fs.fsyncSync(this.fd);
      fs.closeSync(this.fd);
      this.fd = -1;
      fs.renameSync(this.tmpPath, this.finalPath);
    } catch (e) {
      throw this.failure(e);
    }
    open.delete(this);
  }

  /** Close and remove the temporary file (after an error). Safe to call twice. */
  abort(): void {
    open.delete(this);
    if (this.fd >= 0) {
      try { fs.closeSync(this.fd); } catch { /* already closed */ }
      this.fd = -1;
    }
    try { fs.unlinkSync(this.tmpPath); } catch { /* gone already */ }
  }
}
