// The output file: created sparse at its final size under a temporary name,
// written with positional writes, renamed into place only when complete.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errnoCode, fsUserError, UserError } from '../util/errors.js';
import { startThread, threadScript, waitOnThread } from '../util/threads.js';
import {
  allocRing, CODE_LEN, CONSUMED, ERRNO, FAILED, JOBS_LENT, MAX_SEGMENTS, mapRing, PRODUCED, QUIT, RING_SLOTS, SEG_FIELDS, segBase, SLOT_BYTES,
  SRC_SLOT, STARTED, STOPPED, type Ring, wakeWriter,
} from './image-ring.js';
import { allocStage, COPY_RING_BYTES, mapCopyRing, setStage } from './copy-ring.js';
import type { JobsMessage } from './image-writer-loop.js';
import { checksumInPlace } from '../zio/fletcher4.js';
import type { CompressHelper } from '../zio/compress-pool.js';
import { CopyQueue } from './copy-queue.js';
import { copyBytes } from '../util/bytes.js';

const COMBINE_LIMIT = 8 * 1024 * 1024;

/**
 * Whether images are written on a thread of their own: TSMAKEFS_IMAGE_WRITER=0
 * writes from the building thread (same bytes; for comparison and debugging).
 */
function threadedWrites(): boolean {
  return process.env.TSMAKEFS_IMAGE_WRITER !== '0';
}

/** The temporary name an image is written under until it is complete. */
export function tmpPathFor(finalPath: string, pid = process.pid): string {
  const dir = path.dirname(path.resolve(finalPath));
  return path.join(dir, `.${path.basename(finalPath)}.tsmakefs-${pid}.tmp`);
}

/** How long a dead build's temporary image must have gone unwritten before another build of the same image removes it. */
export const STALE_TMP_MS = 60_000;

/**
 * Remove the temporary images of earlier builds of the same image that can
 * never finish. A build killed with SIGKILL (the out-of-memory killer, a CI
 * job's time limit) cannot remove its own, and it is as large as the image.
 * Only a file named as tmpPathFor names them, whose process is gone from
 * this host and which nothing has written for STALE_TMP_MS (a build in
 * another PID namespace sharing the directory keeps writing its own).
 */
export function removeStaleTemps(finalPath: string, now = Date.now()): string[] {
  const dir = path.dirname(path.resolve(finalPath));
  const prefix = `.${path.basename(finalPath)}.tsmakefs-`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const digits = name.slice(prefix.length, -'.tmp'.length);
    // (at most nine digits: a pid kill() takes, never 0, which would name our process group)
    if (!/^[1-9][0-9]{0,8}$/.test(digits)) continue;
    const pid = Number(digits);
    if (pid === process.pid || processExists(pid)) continue;
    const at = path.join(dir, name);
    try {
      const st = fs.lstatSync(at);
      if (!st.isFile() || now - st.mtimeMs < STALE_TMP_MS) continue;
      fs.unlinkSync(at);
      removed.push(at);
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
  return removed;
}

/** Whether process `pid` exists (EPERM: it does, another user's). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: unknown }).code !== 'ESRCH';
  }
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

/**
 * A shared buffer whose bytes ImageFile.write takes where they are (no copy
 * into the writer's ring). They must stay as they are until the writer
 * thread has written them: `mark()` names everything handed over so far,
 * `passed(mark)` says whether it is all written, `wait(mark)` waits for it.
 */
export interface AdoptedBuffer {
  mark(): number;
  passed(mark: number): boolean;
  wait(mark: number): void;
  /** Hand the open slot to the writer now if that needs no waiting (so marks pass while the build does other work). */
  nudge(): void;
  /** Whether a block of this buffer written now goes in without waiting for the writer (a conservative answer). */
  room(): boolean;
}

/** Where the writer's announcements of adopted buffers go: its thread, or the port of whoever hosts it. */
interface WriterLink {
  postMessage(m: unknown): void;
}

/**
 * Who runs an image's writer: given the ring and the image's descriptor, it
 * starts writing and returns where adopted buffers are announced. By default
 * a thread of the writer's own; setImageWriterHost names another (the
 * command line's main thread, idle while its build thread works, runs it on
 * its event loop).
 */
export type ImageWriterHost = (sab: SharedArrayBuffer, fd: number) => WriterLink;
let writerHost: ImageWriterHost | null = null;

/** Have the image writers of this thread's builds run by `host` instead of threads of their own (null: threads again). */
export function setImageWriterHost(host: ImageWriterHost | null): void {
  writerHost = host;
}

/** The writer on a thread of its own, where its script is there (not when the sources run untranspiled). */
function threadHost(): ImageWriterHost | null {
  const script = threadScript(import.meta.url, './image-writer.js');
  return script === null ? null : (sab, fd) => startThread(script, { sab, fd });
}

export class ImageFile {
  readonly tmpPath: string;
  private fd = -1;
  // Without a writer thread: writes mostly arrive in ascending, contiguous
  // order (bump allocation), gathered into one buffer to make few large
  // pwrite calls.
  private pend: Buffer | null = null;
  private pendStart = -1;
  private pendLen = 0;
  bytesWritten = 0;

  // With a writer thread: the ring, the slot being filled (`produced` counts
  // the slots handed over), how full it is and its segment table.
  private ring: Ring | null = null;
  private writer: WriterLink | null = null;
  private writerSince = 0;
  private produced = 0;
  private fill = 0;
  /** Bytes the open slot stands for: its own (`fill`) and those of adopted buffers. */
  private budget = 0;
  private segCount = 0;
  private segEnd = -1;
  private readonly adopted = new Map<ArrayBufferLike, number>();
  private copies: CopyQueue | null = null;

  constructor(readonly finalPath: string, size: number) {
    this.tmpPath = tmpPathFor(finalPath);
    // the rename at the end would fail on a directory: say so before any work
    let isDir = false;
    try { isDir = fs.statSync(finalPath).isDirectory(); } catch { /* absent: fine */ }
    if (isDir) throw new UserError(`${finalPath}: Is a directory`);
    removeStaleTemps(finalPath);
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
    const host = threadedWrites() ? writerHost ?? threadHost() : null;
    if (host) {
      const sab = allocRing();
      this.ring = mapRing(sab);
      this.writerSince = Date.now();
      this.writer = host(sab, this.fd);
    } else {
      this.pend = Buffer.allocUnsafe(COMBINE_LIMIT);
    }
  }

  /** A failed system call on the image, as a one-line error naming the image (ENOSPC, EIO, EFBIG...). */
  private failure(e: unknown): unknown {
    return errnoCode(e) === undefined ? e : fsUserError(this.finalPath, e);
  }

  write(offset: number, data: Uint8Array): void {
    this.bytesWritten += data.length;
    if (this.ring) {
      this.toRing(offset, data);
      return;
    }
    if (this.pendLen > 0 && offset === this.pendStart + this.pendLen && this.pendLen + data.length <= COMBINE_LIMIT) {
      copyBytes(this.pend!, data, this.pendLen);
      this.pendLen += data.length;
      return;
    }
    this.flush();
    if (data.length >= COMBINE_LIMIT) {
      this.pwriteAll(data, offset);
      return;
    }
    copyBytes(this.pend!, data, 0);
    this.pendStart = offset;
    this.pendLen = data.length;
  }

  /**
   * Let write() take bytes of `sab` from where they are: the writer thread
   * writes them straight from that buffer. null: this image has no writer
   * thread (its writes are copies made at once, so the buffer is free again
   * as soon as write() returns).
   */
  adopt(sab: SharedArrayBuffer): AdoptedBuffer | null {
    if (!this.ring || !this.writer) return null;
    const id = this.adopted.size;
    this.adopted.set(sab, id);
    // sent before any segment names it: the thread picks it up when it meets one
    this.writer.postMessage({ adopt: id, sab });
    return {
      // the open slot, once written, holds the last bytes handed over
      mark: () => this.produced + 1,
      passed: (m) => this.ring === null || Atomics.load(this.ring.ctrl, CONSUMED) >= m,
      wait: (m) => {
        if (this.ring === null) return;
        if (this.produced < m) {
          if (this.segCount > 0) this.handOff();
          else m = this.produced; // the open slot is empty: the slots before it are all there is
        }
        this.waitConsumed(m);
      },
      nudge: () => {
        const ring = this.ring;
        if (ring === null || this.segCount === 0) return;
        // handOff waits for the slot after this one to be free: only when it is already
        if (this.nextSlotFree(ring)) this.handOff();
      },
      room: () => {
        const ring = this.ring;
        if (ring === null) return true;
        // toRing hands the open slot over (and may wait) only when it is full
        if (this.budget < SLOT_BYTES && this.segCount < MAX_SEGMENTS) return true;
        return this.nextSlotFree(ring);
      },
    };
  }

  /**
   * The image writer as a helper of the build's compression: it takes
   * jobs whenever it has nothing to write. null: this image has no writer thread.
   */
  compressHelper(): CompressHelper | null {
    const ring = this.ring;
    const writer = this.writer;
    if (ring === null || writer === null) return null;
    return {
      lend: (sab) => {
        // (before the flag: a writer that sees the flag finds the message)
        writer.postMessage({ jobs: sab } satisfies JobsMessage);
        Atomics.store(ring.ctrl, JOBS_LENT, 1);
      },
      wake: () => wakeWriter(ring.ctrl),
    };
  }

  /**
   * The queue of host files copied into place by the image writer (and by
   * the build when it is free); without a writer thread, the build copies
   * each as it is posted. Settle it before the image is committed.
   */
  copier(): CopyQueue {
    if (this.copies !== null) return this.copies;
    const ring = this.ring;
    const writer = this.writer;
    if (ring === null || writer === null) {
      this.copies = new CopyQueue(mapCopyRing(new SharedArrayBuffer(COPY_RING_BYTES), 0), this.fd, null);
    } else {
      const stage = allocStage();
      checksumInPlace(stage);
      const sab = stage.buffer as unknown as SharedArrayBuffer;
      this.adopt(sab);
      setStage(ring.copy, this.adopted.get(sab)!);
      this.copies = new CopyQueue(ring.copy, this.fd, {
        wake: () => wakeWriter(ring.ctrl),
        check: () => {
          // aborted: the writer is told to quit and the descriptor closes,
          // so a copy may not be staged (nobody would write it) or made
          if (this.ring === null) throw new Error(`${this.finalPath}: the image was aborted`);
          if (Atomics.load(ring.ctrl, FAILED) === 1) throw this.failure(this.writerError());
          if (Atomics.load(ring.ctrl, STARTED) === 0 && Date.now() - this.writerSince > 60_000) throw new Error('the image writer thread did not start');
        },
      }, stage);
    }
    return this.copies;
  }

  /** Copy or wait for every file copy still under way (none: nothing to do). */
  settleCopies(): void {
    this.copies?.settle();
  }

  /** Collect the file copies done so far (none: nothing to do). */
  collectCopies(): void {
    this.copies?.collect();
  }

  private toRing(offset: number, data: Uint8Array): void {
    const id = this.adopted.size === 0 ? undefined : this.adopted.get(data.buffer);
    if (id !== undefined) {
      // written from where it lies; it counts against the slot's budget all the same
      if (this.budget >= SLOT_BYTES) this.handOff();
      if (!this.segment(offset, data.length, id, data.byteOffset)) {
        this.handOff();
        this.segment(offset, data.length, id, data.byteOffset);
      }
      this.budget += data.length;
      return;
    }
    const ring = this.ring!;
    let done = 0;
    while (done < data.length) {
      if (this.budget >= SLOT_BYTES) this.handOff();
      // (budget >= fill: what fits the budget fits the slot)
      const n = Math.min(data.length - done, SLOT_BYTES - this.budget);
      if (!this.segment(offset + done, n, SRC_SLOT, 0)) { this.handOff(); continue; }
      copyBytes(ring.data, n === data.length ? data : data.subarray(done, done + n), (this.produced % RING_SLOTS) * SLOT_BYTES + this.fill);
      this.fill += n;
      this.budget += n;
      done += n;
    }
  }

  /**
   * Add `len` bytes at image offset `offset` to the open slot's segment
   * table: they continue its last segment when they follow it in the image
   * and in their source (the slot's own bytes always follow on), else start
   * one. false: the table is full.
   */
  private segment(offset: number, len: number, src: number, srcOff: number): boolean {
    const segs = this.ring!.segs;
    const base = segBase(this.produced % RING_SLOTS) + 1;
    if (this.segCount > 0) {
      const last = base + SEG_FIELDS * (this.segCount - 1);
      if (offset === this.segEnd && segs[last + 2] === src && (src === SRC_SLOT || segs[last + 3]! + segs[last + 1]! === srcOff)) {
        segs[last + 1] += len;
        this.segEnd = offset + len;
        return true;
      }
    }
    if (this.segCount === MAX_SEGMENTS) return false;
    const seg = base + SEG_FIELDS * this.segCount++;
    segs[seg] = offset;
    segs[seg + 1] = len;
    segs[seg + 2] = src;
    segs[seg + 3] = srcOff;
    this.segEnd = offset + len;
    return true;
  }

  /** Whether the slot after the open one is written already, so that handOff would not wait. */
  private nextSlotFree(ring: Ring): boolean {
    return this.produced + 1 - Atomics.load(ring.ctrl, CONSUMED) < RING_SLOTS;
  }

  /** Give the slot being filled to the writer thread and wait for the next one to be free. */
  private handOff(): void {
    const ring = this.ring!;
    if (this.segCount === 0) return;
    ring.segs[segBase(this.produced % RING_SLOTS)] = this.segCount;
    this.produced++;
    Atomics.store(ring.ctrl, PRODUCED, this.produced);
    wakeWriter(ring.ctrl);
    this.fill = 0;
    this.budget = 0;
    this.segCount = 0;
    this.segEnd = -1;
    this.waitConsumed(this.produced - RING_SLOTS + 1);
  }

  /** Wait until the writer thread has written `n` slots in all; throw what it failed with. */
  private waitConsumed(n: number): void {
    const ctrl = this.ring!.ctrl;
    for (;;) {
      const c = Atomics.load(ctrl, CONSUMED);
      // (looked at after CONSUMED: the writer sets FAILED before it counts
      // the failed slot, so a failure is never missed on the way out)
      if (Atomics.load(ctrl, FAILED) === 1) throw this.failure(this.writerError());
      if (c >= n) return;
      // rather than wait for the writer, take a file copy off its hands
      if (this.copies?.helpOne()) continue;
      waitOnThread(ctrl, CONSUMED, c, STARTED, this.writerSince, 'image writer');
    }
  }

  private writerError(): Error {
    const ring = this.ring!;
    let code = '';
    for (let i = 0; i < ring.ctrl[CODE_LEN]!; i++) code += String.fromCharCode(ring.code[i]!);
    if (code === '') return new Error('the image writer thread failed');
    return Object.assign(new Error(`${code}: write failed`), { code, errno: ring.ctrl[ERRNO], syscall: 'write' });
  }

  flush(): void {
    if (this.ring) {
      this.handOff();
      this.waitConsumed(this.produced);
      return;
    }
    if (this.pendLen === 0) return;
    this.pwriteAll(this.pend!.subarray(0, this.pendLen), this.pendStart);
    this.pendLen = 0;
  }

  /**
   * Tell the writer thread to stop; with `wait`, until it has (so the file
   * can be closed under it). false: it is still in a write or a copy after
   * the wait (a source file that hangs its read, say).
   */
  private stopWriter(wait: boolean): boolean {
    const ring = this.ring;
    if (!ring) return true;
    this.ring = null;
    Atomics.store(ring.ctrl, QUIT, 1);
    wakeWriter(ring.ctrl);
    // wait until it is out of any pwrite, so the descriptor can be closed
    // under it; a thread that has not even started has none under way
    const deadline = Date.now() + 10_000;
    let out = !wait;
    while (wait && Date.now() < deadline) {
      if (Atomics.load(ring.ctrl, STOPPED) === 1) { out = true; break; }
      if (Atomics.load(ring.ctrl, STARTED) === 0 && Atomics.wait(ring.ctrl, STARTED, 0, 1000) === 'timed-out') { out = true; break; }
      Atomics.wait(ring.ctrl, STOPPED, 0, 100);
    }
    this.writer = null;
    return out;
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
    if (this.copies !== null && !this.copies.settled) throw new Error('image committed with file copies not collected');
    this.copies?.close();
    this.flush();
    this.stopWriter(false);
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
    // A writer still at work keeps the descriptor: closed under it, its
    // number could be another file's by the time it writes.
    const stopped = this.stopWriter(true);
    this.copies?.close();
    if (this.fd >= 0 && stopped) {
      try { fs.closeSync(this.fd); } catch { /* already closed */ }
      this.fd = -1;
    }
    try { fs.unlinkSync(this.tmpPath); } catch { /* gone already */ }
  }
}
