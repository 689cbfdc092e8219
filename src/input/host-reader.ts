// Staged files' bytes for the build, read into a shared ring of whole,
// zero-padded blocks that the image writer writes from where they lie. By
// default the calling (build) thread reads them itself when it takes them;
// TSMAKEFS_READER=1 reads ahead on a thread of its own (host-reader-worker.ts)
// instead. The build names the files it will need, in order, a bounded
// number ahead (`request`), then takes each one's bytes in that order
// (`read`).
import { closeSync, openSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import type { Worker } from 'node:worker_threads';
import { startThread, threadScript, waitOnThread } from '../util/threads.js';
import { checksumInPlace, forgetMemory } from '../zio/fletcher4.js';
import { fileBlockSize } from '../zpl/filedata.js';
import type { AdoptedBuffer } from '../vdev/imagefile.js';
import {
  allocReadRing, blockOffset, readBlock, mapReadRing, R_CONSUMED, R_FAILED, R_PRODUCED, R_QUIT, R_STARTED, READ_SLOT_BYTES, READ_SLOTS, REC_ERROR,
  REC_LAST, REC_SHRANK, REC_WORDS, tableBase, type ReadRing,
} from './read-ring.js';

/** Why a file could not be read: an errno code (a Node-style system error) or a short file. */
export class HostReadError extends Error {
  constructor(readonly code: string | undefined, readonly syscall: string | undefined, readonly shrank: boolean) {
    super(shrank ? 'file shrank while being read' : `${code}: read failed`);
  }
}

/** Requests go to the thread in batches of this many files. */
const BATCH = 64;

/**
 * TSMAKEFS_READER=1 reads on a thread of its own (same bytes). Measured
 * against reading on the build thread (bench/RESULTS.md, sixth round): no
 * faster on /usr, 100k small files or two 1.5 GiB files, warm or cold cache,
 * and ~8 MB more memory for the thread's isolate.
 */
export function threadedReads(): boolean {
  return process.env.TSMAKEFS_READER === '1';
}

export class HostFileReader {
  private worker: Worker | null = null;
  private memory: WebAssembly.Memory | null = null;
  private since = 0;
  private ring: ReadRing | null = null;
  // requests not yet sent: the paths as bytes, each ended by a NUL (which no
  // path contains), and the sizes; one message per batch carries both arrays
  private batchPaths: Buffer = Buffer.allocUnsafe(16 * 1024);
  private batchLen = 0;
  private batchSizes: number[] = [];
  private batchBlocks: number[] = [];
  /** Requests sent to the thread. */
  private sent = 0;
  // With an image that writes whole blocks straight from the ring (`gate`),
  // a slot the build is done with is only given back to the thread once the
  // image writer has written it: `held` are the image's marks for the slots
  // done with and not yet given back (`released` of them given back).
  private gate: AdoptedBuffer | null = null;
  private held: number[] = [];
  private released = 0;
  // inline reading: the queue of requested files; the ring slot being
  // filled and how far; per slot, the image's mark when it was left (0:
  // nothing of it handed over), so a slot is only refilled once written
  private inline: { path: string | Uint8Array; size: number; block: number; fd: number }[] = [];
  private inlineHead = 0;
  /** The file being read inline when a read stopped short of a wait (read(sink, false)): the rest of it comes next. */
  private partial: { fd: number; pos: number; size: number; block: number } | null = null;
  private slot = 0;
  private fill = 0;
  private readonly slotMarks = new Array<number>(READ_SLOTS).fill(0);
  // the consumer's place in the ring
  private consumed = 0;
  private rec = 0;
  private next = 0;

  /**
   * `record`: the record size of files requested without a block size
   * (they are read in the blocks such a file would have). `adopt`: offers
   * the ring to the image, to be written from where the blocks lie (see
   * ImageFile.adopt).
   */
  constructor(private readonly record: number, adopt?: (sab: SharedArrayBuffer) => AdoptedBuffer | null) {
    if (!(record >= 512 && record <= READ_SLOT_BYTES)) throw new RangeError(`record size ${record} outside 512..${READ_SLOT_BYTES}`);
    const script = threadedReads() ? threadScript(import.meta.url, './host-reader-worker.js') : null;
    const memory = allocReadRing();
    const sab = memory.buffer as unknown as SharedArrayBuffer;
    this.ring = mapReadRing(sab);
    // whole records are checksummed where they were read to
    checksumInPlace(memory);
    this.memory = memory;
    if (script) {
      this.since = Date.now();
      this.worker = startThread(script, { sab });
    }
    this.gate = adopt?.(sab) ?? null;
  }

  /**
   * The next file the build will read (files are read in the order
   * requested). `block`: the block size the image stores it in (by
   * default that of a file of this size at the reader's record size): the
   * reader thread hands over whole zero-padded blocks of it. `fd`: the
   * file already open (HeldFiles), now the reader's to close; -1: it is
   * opened by its path.
   */
  request(path: string | Uint8Array, size: number, block = 0, fd = -1): void {
    try {
      if (block === 0) block = fileBlockSize(size, this.record);
      if (!(block >= 512 && block <= READ_SLOT_BYTES)) throw new RangeError(`block size ${block} outside 512..${READ_SLOT_BYTES}`);
    } catch (e) {
      if (fd >= 0) closeSync(fd);
      throw e;
    }
    if (!this.worker) {
      this.inline.push({ path, size, block, fd });
      return;
    }
    // (the thread opens files by path; the pipeline holds none for it)
    if (fd >= 0) closeSync(fd);
    // Structured-cloning an object per file cost more than reading small
    // files: the batch goes as two typed arrays instead.
    const need = (typeof path === 'string' ? Buffer.byteLength(path) : path.length) + 1;
    if (this.batchLen + need > this.batchPaths.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.batchPaths.length, this.batchLen + need));
      this.batchPaths.copy(grown, 0, 0, this.batchLen);
      this.batchPaths = grown;
    }
    if (typeof path === 'string') this.batchLen += this.batchPaths.write(path, this.batchLen);
    else { this.batchPaths.set(path, this.batchLen); this.batchLen += path.length; }
    this.batchPaths[this.batchLen++] = 0;
    this.batchSizes.push(size);
    this.batchBlocks.push(block);
    if (this.batchSizes.length >= BATCH) this.send();
  }

  /** Send the requests not yet sent if the thread is running short of work. */
  flush(): void {
    if (this.worker && this.sent - this.next < BATCH) this.send();
  }

  /** The next file's bytes (at least their start) can be read without waiting. */
  ready(): boolean {
    if (this.worker === null) return true;
    this.releasePassed();
    if (Atomics.load(this.ring!.ctrl, R_PRODUCED) !== this.consumed) return true;
    // The thread may be out of slots, the ones held waiting for a writer
    // that has not been given the blocks in them: give it them now.
    if (this.gate !== null && this.held.length > 0) this.gate.nudge();
    return false;
  }

  /** Have the image writer take the blocks handed over so far, if it can without a wait. */
  nudge(): void {
    this.gate?.nudge();
  }

  private send(): void {
    if (this.batchSizes.length === 0) return;
    // Exact-size arrays, transferred: structured clone copies a view's whole
    // ArrayBuffer (the 16 KiB path buffer for every batch), and the reader
    // thread, which makes almost no garbage of its own, collected those
    // copies so seldom that they held ~18 MB at the build's peak.
    const paths = new Uint8Array(this.batchLen);
    paths.set(this.batchPaths.subarray(0, this.batchLen));
    const sizes = Float64Array.from(this.batchSizes);
    const blocks = Float64Array.from(this.batchBlocks);
    this.worker!.postMessage({ paths, sizes, blocks }, [paths.buffer, sizes.buffer, blocks.buffer]);
    this.sent += this.batchSizes.length;
    this.batchLen = 0;
    this.batchSizes = [];
    this.batchBlocks = [];
  }

  /**
   * Hand the next requested file's bytes to `sink`, in pieces (views that
   * are only valid during the call). `block`: the piece as a whole block,
   * zeros after the data, read whether inline or by the reader thread; it
   * may be given to the image as it is (ImageFile.write adopts it). Throws
   * HostReadError.
   *
   * `mayWait` false: read inline only as far as the ring and the image
   * take blocks without waiting for the image writer, so that the build
   * can walk on while the writer catches up. false: it stopped there (the
   * file stays open); the next call goes on with the same file.
   */
  read(sink: (piece: Uint8Array, block: Uint8Array) => void, mayWait = true): boolean {
    if (!this.worker) return this.readInline(sink, mayWait);
    const file = this.next++;
    const { ctrl, table, data } = this.ring!;
    for (;;) {
      const slot = this.consumed % READ_SLOTS;
      // the thread only starts on a batch once it is sent
      if (Atomics.load(ctrl, R_PRODUCED) === this.consumed) {
        this.send();
        this.releaseAll();
        while (Atomics.load(ctrl, R_PRODUCED) === this.consumed) {
          if (Atomics.load(ctrl, R_FAILED) === 1) throw new Error('the file reader thread failed');
          waitOnThread(ctrl, R_PRODUCED, this.consumed, R_STARTED, this.since, 'file reader');
        }
      }
      const base = tableBase(slot);
      const at = base + 1 + REC_WORDS * this.rec;
      const seq = table[at]!, len = table[at + 1]!, status = table[at + 2]!;
      if (seq !== file) throw new Error(`reader out of step: file ${seq} instead of ${file}`);
      // (the same code the inline reader reports: node's errno travels as it is)
      if (status === REC_ERROR) throw new HostReadError(getSystemErrorName(len), 'read', false);
      if (status === REC_SHRANK) throw new HostReadError(undefined, undefined, true);
      const off = slot * READ_SLOT_BYTES + table[at + 3]!;
      if (len > 0) {
        sink(data.subarray(off, off + len), data.subarray(off, off + table[at + 4]!));
      }
      if (++this.rec === table[base]) {
        this.rec = 0;
        this.consumed++;
        if (this.gate === null) this.release(this.consumed);
        else {
          // every block of the slot is in the image's ring by now (written
          // or adopted): free once the writer is past the open slot
          this.held.push(this.gate.mark());
          this.releasePassed();
        }
      }
      if (status === REC_LAST) return true;
    }
  }

  private release(n: number): void {
    this.released = n;
    Atomics.store(this.ring!.ctrl, R_CONSUMED, n);
    Atomics.notify(this.ring!.ctrl, R_CONSUMED);
  }

  /** Give back the held slots the image writer has written. */
  private releasePassed(): void {
    if (this.gate === null) return;
    let n = this.released;
    while (n < this.consumed && this.gate!.passed(this.held[n - this.released]!)) n++;
    if (n === this.released) return;
    this.held.splice(0, n - this.released);
    this.release(n);
  }

  /** Give back every slot done with, waiting for the image writer if need be (the thread may be waiting for one). */
  private releaseAll(): void {
    if (this.gate === null || this.held.length === 0) return;
    this.gate.wait(this.held[this.held.length - 1]!);
    this.held = [];
    this.release(this.consumed);
  }

  /** The thread's work done on this one: the file's blocks read into the ring and handed over from there. */
  private readInline(sink: (piece: Uint8Array, block: Uint8Array) => void, mayWait: boolean): boolean {
    const data = this.ring!.data;
    let f = this.partial;
    if (f === null) {
      const req = this.inline[this.inlineHead]!;
      this.inline[this.inlineHead++] = undefined as never;
      if (this.inlineHead > 4096) {
        this.inline.splice(0, this.inlineHead);
        this.inlineHead = 0;
      }
      let fd = req.fd;
      if (fd < 0) {
        try {
          fd = openSync(fsPath(req.path), 'r');
        } catch (e) {
          throw asReadError(e);
        }
      }
      f = { fd, pos: 0, size: req.size, block: req.block };
    }
    this.partial = null;
    try {
      const block = f.block;
      while (f.pos < f.size) {
        let off = blockOffset(this.fill, block);
        if (!mayWait && !this.roomFor(off)) {
          this.partial = f;
          return false;
        }
        if (off < 0) {
          this.nextSlot();
          off = 0;
        }
        const at = (this.slot % READ_SLOTS) * READ_SLOT_BYTES + off;
        const want = Math.min(block, f.size - f.pos);
        if (!readBlock(f.fd, data, at, f.pos, want, block)) throw new HostReadError(undefined, undefined, true);
        this.fill = off + block;
        f.pos += want;
        sink(data.subarray(at, at + want), data.subarray(at, at + block));
      }
      return true;
    } catch (e) {
      throw e instanceof HostReadError ? e : asReadError(e);
    } finally {
      // (a file stopped short of a wait stays open for the next call)
      if (this.partial !== f) closeSync(f.fd);
    }
  }

  /**
   * Whether the next block (at `off` in the open slot, -1: in the next
   * slot) can be read and handed to the image without waiting for the
   * image writer. When not, the image is given what it holds, so that the
   * writer has it to write while the build does other work.
   */
  private roomFor(off: number): boolean {
    const gate = this.gate;
    if (gate === null) return true;
    const next = off < 0 ? this.slotMarks[(this.slot + 1) % READ_SLOTS]! : 0;
    if ((next === 0 || gate.passed(next)) && gate.room()) return true;
    gate.nudge();
    return false;
  }

  /** Leave the slot being filled for the next one, once the image has written what it took from that one. */
  private nextSlot(): void {
    if (this.gate !== null) this.slotMarks[this.slot % READ_SLOTS] = this.gate.mark();
    this.slot++;
    this.fill = 0;
    const m = this.slotMarks[this.slot % READ_SLOTS]!;
    if (m > 0 && !this.gate!.passed(m)) this.gate!.wait(m);
  }

  /** Stop the thread (after the last file, or when the build fails). */
  close(): void {
    if (this.partial !== null) {
      closeSync(this.partial.fd);
      this.partial = null;
    }
    // files requested and never read (the build failed) that came open
    for (let i = this.inlineHead; i < this.inline.length; i++) {
      const fd = this.inline[i]!.fd;
      if (fd >= 0) closeSync(fd);
    }
    this.inline = [];
    this.inlineHead = 0;
    if (this.ring) {
      Atomics.store(this.ring.ctrl, R_QUIT, 1);
      Atomics.notify(this.ring.ctrl, R_CONSUMED);
    }
    if (this.worker) {
      this.worker.postMessage({ quit: true });
      void this.worker.terminate();
    }
    this.worker = null;
    this.ring = null;
    if (this.memory) forgetMemory(this.memory);
    this.memory = null;
  }
}

function asReadError(e: unknown): unknown {
  const err = e as { code?: unknown; syscall?: unknown };
  return typeof err.code === 'string' ? new HostReadError(err.code, String(err.syscall ?? 'read'), false) : e;
}

/** Paths that are not valid UTF-8 travel as bytes; fs calls want them as a Buffer. */
function fsPath(p: string | Uint8Array): string | Buffer {
  return typeof p === 'string' ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}
