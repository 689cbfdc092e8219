// An uncompressed tarball (a file, or standard input), fed to tar-stream from
// one buffer used over and over rather than a new buffer per read.
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
// Standard input is pulled the same way: a file by reads of its descriptor,
// a pipe through one fixed buffer that Node's socket reads into (onread),
// copied into the ring; so is what a decompressing command writes into a
// FIFO (decompress.ts). Other streams (zlib's output, a library caller's)
// are piped to tar-stream as they come: Node allocates their chunks as it
// reads them, and copying those into the ring measured no less memory, as
// the chunks themselves were what lingered.

import { read as fsRead } from 'node:fs';
import { open } from 'node:fs/promises';
import { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Extract } from 'tar-stream';

/** A tarball to be read from a file by path (uncompressed: read straight into the ring). */
export interface TarFile {
  file: string;
}

/** Bytes read into buffers the reader gives (standard input: see build-worker.ts). */
export interface TarPull {
  /** Up to `into.length` bytes into `into`: how many, 0 at the end. */
  pull(into: Buffer): Promise<number>;
  /** Stop reading (idempotent): pulls after it return 0. */
  close(): void;
}

/** A tarball as a stream (a decompressor's output, a library caller's), a file, or pulled. */
export type TarInput = Readable | TarFile | TarPull;

export function isTarFile(input: TarInput): input is TarFile {
  return typeof (input as Partial<TarFile>).file === 'string';
}

export function isTarPull(input: unknown): input is TarPull {
  return typeof (input as Partial<TarPull>).pull === 'function';
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

/** The file at `path`, opened at the first pull. */
export function filePull(path: string): TarPull {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  let closed = false;
  return {
    async pull(into) {
      if (closed) return 0;
      fh ??= await open(path, 'r');
      if (closed) {
        await fh.close();
        return 0;
      }
      return (await fh.read(into, 0, into.length, null)).bytesRead;
    },
    close() {
      closed = true;
      void fh?.close().catch(() => {});
    },
  };
}

/** Reads of descriptor `fd` where it stands (standard input that is a file); never closed here. */
export function fdPull(fd: number): TarPull {
  let closed = false;
  return {
    pull: (into) => new Promise((resolve, reject) => {
      if (closed) return resolve(0);
      fsRead(fd, into, 0, into.length, null, (err, n) => (err ? reject(err) : resolve(closed ? 0 : n)));
    }),
    close() {
      closed = true;
    },
  };
}

/** Bytes a pipe read takes at most: a pipe holds 64 KiB on Linux. */
const PIPE_READ_BYTES = 64 << 10;

/**
 * A pipe or socket descriptor, read by Node's event loop into one buffer
 * (net.Socket's onread) rather than a new one per read. The socket is paused
 * at each read until its bytes are pulled.
 */
export class SocketPull implements TarPull {
  private readonly sock: Socket;
  private readonly buf = Buffer.allocUnsafeSlow(PIPE_READ_BYTES);
  private start = 0;
  private end = 0;
  private ended = false;
  /** discard(): what comes is dropped, pulls give 0. */
  private discarding = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(fd: number) {
    // (onread is in net.Socket's documented options; @types/node 20 lists it for connect() only)
    this.sock = new Socket({
      fd, readable: true, writable: false,
      onread: {
        buffer: this.buf,
        callback: (n: number): boolean => {
          if (this.discarding) return true;
          if (this.start < this.end) this.failure ??= new Error('a pipe read came before the last one was taken');
          this.start = 0;
          this.end = n;
          this.notify();
          return false;
        },
      },
    } as ConstructorParameters<typeof Socket>[0]);
    this.sock.on('end', () => {
      this.ended = true;
      this.notify();
    });
    this.sock.on('error', (e) => {
      this.failure ??= e;
      this.notify();
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async pull(into: Buffer): Promise<number> {
    while (this.start === this.end) {
      if (this.failure) throw this.failure;
      if (this.ended || this.discarding) return 0;
      // one waiter: a second would overwrite the first's wake-up
      if (this.wake !== undefined) throw new Error('SocketPull: a pull while another waits');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    const n = this.buf.copy(into, 0, this.start, Math.min(this.end, this.start + into.length));
    this.start += n;
    if (this.start === this.end && !this.ended) this.sock.resume();
    return n;
  }

  close(): void {
    this.ended = true;
    this.start = this.end = 0;
    this.sock.destroy();
    this.notify();
  }

  /**
   * Read the rest and throw it away (a command's output no longer wanted,
   * so that the command can get to its exit status); a pull waiting now,
   * and every pull after, gives 0.
   */
  discard(): void {
    if (this.ended) return;
    this.discarding = true;
    this.start = this.end = 0;
    this.sock.resume();
    this.notify();
  }
}

/** `head` (bytes already pulled, to sniff what the input is), then the rest of `rest`. */
export function prefixed(head: Buffer, rest: TarPull): TarPull {
  let off = 0;
  return {
    pull(into) {
      if (off === head.length) return rest.pull(into);
      const n = head.copy(into, 0, off);
      off += n;
      return Promise.resolve(n);
    },
    close: () => rest.close(),
  };
}

/** Up to `n` bytes from the start of `src` (fewer only at its end). */
export async function pullHead(src: TarPull, n: number): Promise<Buffer> {
  const head = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    const k = await src.pull(head.subarray(got));
    if (k === 0) break;
    got += k;
  }
  return head.subarray(0, got);
}

/**
 * `src` as a stream of new buffers, for those that take a stream (a
 * decompressor, a manifest); a pipe's pull gives at most 64 KiB, so larger
 * buffers would be mostly empty.
 */
export function pullStream(src: TarPull): Readable {
  return Readable.from((async function* chunks(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        const b = Buffer.allocUnsafe(PIPE_READ_BYTES);
        const n = await src.pull(b);
        if (n === 0) return;
        yield b.subarray(0, n);
      }
    } finally {
      src.close();
    }
  })(), { objectMode: false });
}

/**
 * Pull `src` into `ex` through the ring. Errors reject (the caller names
 * the input); `src` is closed either way.
 */
export async function pump(src: TarPull, ring: TarRing, ex: Extract): Promise<void> {
  try {
    for (;;) {
      if (ex.destroyed) return;
      const into = ring.room(READ_BYTES) ?? Buffer.allocUnsafeSlow(READ_BYTES);
      const n = await src.pull(into);
      if (n === 0) break;
      ring.advance(n);
      await write(ex, into.subarray(0, n));
    }
    if (!ex.destroyed) ex.end(undefined);
  } finally {
    src.close();
  }
}
