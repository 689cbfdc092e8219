// The output file: created sparse at its final size under a temporary name,
// written with positional writes, renamed into place only when complete.
import * as fs from 'node:fs';
import * as path from 'node:path';

const COMBINE_LIMIT = 8 * 1024 * 1024;

export class ImageFile {
  readonly tmpPath: string;
  private fd: number;
  // Writes mostly arrive in ascending, contiguous order (bump allocation):
  // gather them into one buffer to make few large pwrite calls.
  private pend = Buffer.allocUnsafe(COMBINE_LIMIT);
  private pendStart = -1;
  private pendLen = 0;
  bytesWritten = 0;

  constructor(readonly finalPath: string, size: number) {
    const dir = path.dirname(path.resolve(finalPath));
    this.tmpPath = path.join(dir, `.${path.basename(finalPath)}.tsmakefs-${process.pid}.tmp`);
    this.fd = fs.openSync(this.tmpPath, 'w', 0o644);
    try {
      fs.ftruncateSync(this.fd, size);
    } catch (e) {
      this.abort();
      throw e;
    }
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
    while (done < data.length) {
      done += fs.writeSync(this.fd, data, done, data.length - done, offset + done);
    }
  }

  /** Change the file's size (an auto-sized image cut to fit). */
  resize(size: number): void {
    this.flush();
    fs.ftruncateSync(this.fd, size);
  }

  /** Flush, close and rename over the final path. */
  commit(): void {
    this.flush();
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = -1;
    fs.renameSync(this.tmpPath, this.finalPath);
  }

  /** Close and remove the temporary file (after an error). Safe to call twice. */
  abort(): void {
    if (this.fd >= 0) {
      try { fs.closeSync(this.fd); } catch { /* already closed */ }
      this.fd = -1;
    }
    try { fs.unlinkSync(this.tmpPath); } catch { /* gone already */ }
  }
}
