// An uncompressed tarball file, fed to tar-stream from one buffer used over
// and over rather than a new buffer per read.
//
// tar-stream hands a member's data on as views of the very buffers it is
// written, and that data goes into the image a view at a time, several turns
// of the event loop later. A fresh buffer per read lived that long, long
// enough to leave the young generation, so its memory came back only at a
// full GC, which V8 runs for every few tens of MB of such buffers: 25-30 MB of
// dead reads were outstanding at a time, and a minbase tarball took 120 MB
// where its directory takes 90 (bench/RESULTS.md, twenty-fifth round).
//
// The ring is written over only where the reader is done with the stream:
// tar.ts says so (release), by stream offset, as it takes each member and each
// piece of a member's data. Where the ring has no such room, a read gets a
// buffer of its own, so a reader that says nothing is slower, never wrong.
//
// Streams (standard input, gzip, a decompressing command) are piped to
// tar-stream as they come: their chunks are allocated by Node as they are
// read, and copying them into the ring measured no less memory.

import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Extract } from 'tar-stream';

/** A tarball to be read from a file by path (uncompressed: read straight into the ring). */
export interface TarFile {
  file: string;
}

/** A tarball as a stream (standard input, a pipe, a decompressor's output), or a file. */
export type TarInput = Readable | TarFile;

export function isTarFile(input: TarInput): input is TarFile {
  return typeof (input as Partial<TarFile>).file === 'string';
}

const RING_BYTES = 4 << 20;
/** Bytes a read of a tarball file asks for. */
const READ_BYTES = 256 << 10;

export class TarRing {
  readonly buf: Buffer;
  /** Stream bytes handed to the parser. */
  private fed = 0;
  /** Stream offset below which the reader looks at no byte again. */
  private done = 0;

  constructor(size = RING_BYTES) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }

  /** Everything of the stream before `offset` has been dealt with. */
  release(offset: number): void {
    if (offset > this.done) this.done = Math.min(offset, this.fed);
  }

  /**
   * Where the next up to `n` bytes of the stream can go in the ring, or
   * undefined while all of it is in use. Each byte of the ring holds the
   * last stream byte at an offset congruent to its position, so `len` bytes
   * from `fed` overwrite only bytes below `fed + len - size`, which must be
   * below `done`.
   */
  room(n: number): Buffer | undefined {
    const size = this.buf.length;
    const at = this.fed % size;
    const len = Math.min(n, size - at, this.done + size - this.fed);
    return len > 0 ? this.buf.subarray(at, at + len) : undefined;
  }

  /** `n` more stream bytes were handed to the parser (from the ring or not). */
  advance(n: number): void {
    this.fed += n;
  }

  /** The ring position of stream offset `offset`, if the ring still holds it. */
  positionOf(offset: number): number {
    return offset % this.buf.length;
  }
}

/** Write `piece` to tar-stream; resolves once it will take more. */
function write(ex: Extract, piece: Buffer): Promise<void> | undefined {
  // (a stream that is closed emits nothing more: nothing to wait for)
  if (ex.destroyed || ex.write(piece) || ex.destroyed) return undefined;
  return new Promise((resolve) => {
    const go = (): void => {
      ex.off('drain', go);
      ex.off('close', go);
      resolve();
    };
    ex.on('drain', go);
    ex.on('close', go);
  });
}

/**
 * Read the uncompressed tarball at `path` into `ex` through the ring.
 * Errors reject (the caller names the file); the file is closed either way.
 */
export async function pumpFile(path: string, ring: TarRing, ex: Extract): Promise<void> {
  const fh = await open(path, 'r');
  try {
    for (;;) {
      if (ex.destroyed) return;
      const into = ring.room(READ_BYTES) ?? Buffer.allocUnsafeSlow(READ_BYTES);
      const { bytesRead } = await fh.read(into, 0, into.length, null);
      if (bytesRead === 0) break;
      ring.advance(bytesRead);
      await write(ex, into.subarray(0, bytesRead));
    }
    ex.end(undefined);
  } finally {
    await fh.close();
  }
}
