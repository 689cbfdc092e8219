// The image writer's side of the ring (image-ring.ts): pwrite() each slot
// as the build hands it over, and between slots copy host files into place
// (copy-ring.ts). It runs either on a thread of its own
// (image-writer.ts), or on a thread that has an event loop to keep turning
// (the command line's main thread, otherwise idle while its build thread
// works): a thread fewer (~8 MB of RSS each). With nothing to write, it takes the
// build's compression jobs if the build lent it them (compress-pool.ts): on
// two cores that is the only helper a compressed build has, where a
// compression thread of its own would cost an isolate. A failed write is
// recorded for the build to report, and the rest is skipped, never waited on.
import { writeSync } from 'node:fs';
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import {
  CODE_LEN, CONSUMED, ERRNO, FAILED, JOBS_LENT, mapRing, PRODUCED, QUIT, RING_SLOTS, SEG_FIELDS, segBase, SLOT_BYTES, SRC_SLOT, STARTED, STOPPED,
  WAKE, type Ring, wakeWriter,
} from './image-ring.js';
import { ChunkCopier, writeStaged } from './copy-ring.js';
import { mapJobRing, markFailed, takeJob, type JobRing } from '../zio/compress-pool.js';

/** The message that announces a buffer the build adopted (ImageFile.adopt). */
export interface AdoptMessage {
  adopt: number;
  sab: SharedArrayBuffer;
}

/** The message that lends the writer the build's compression jobs (ImageFile.compressHelper). */
export interface JobsMessage {
  jobs: SharedArrayBuffer;
}

class RingWriter {
  private readonly ring: Ring;
  // Shared buffers adopted by the build, by id. Each is announced by a
  // message sent before any segment names it; the writer takes it off the
  // port itself when it meets the first such segment.
  private readonly adopted: Uint8Array[] = [];
  private readonly copier: ChunkCopier;
  // the build's compression jobs, once lent; false after one failed here
  private jobs: JobRing | null | false = null;
  consumed = 0;

  constructor(sab: SharedArrayBuffer, private readonly fd: number, private readonly port: MessagePort) {
    this.ring = mapRing(sab);
    this.copier = new ChunkCopier(this.ring.copy, fd, () => Atomics.load(this.ring.ctrl, QUIT) === 1);
  }

  /** Copy the next chunk nobody has taken, unless the build quit or a write failed; false: there was none. */
  private copyOne(): boolean {
    const ctrl = this.ctrl;
    if (Atomics.load(ctrl, FAILED) === 1 || Atomics.load(ctrl, QUIT) === 1) return false;
    return this.copier.copyNext();
  }

  /** Write the oldest chunk the build read for us, if any (skipped once the build quit or a write failed); false: none. */
  writeStaged(): boolean {
    const ctrl = this.ctrl;
    return writeStaged(this.ring.copy, this.fd, (id) => this.source(id), () => Atomics.load(ctrl, FAILED) === 1 || Atomics.load(ctrl, QUIT) === 1);
  }

  /**
   * With no slot to write: a block to compress (the build waits for those
   * in order), else a chunk of a file to copy; false: there was neither.
   */
  spareTask(): boolean {
    return this.compressOne() || this.copyOne();
  }

  /** Compress the next job nobody has taken, if the build lent us its jobs; false: there was none. */
  private compressOne(): boolean {
    const ctrl = this.ctrl;
    if (this.jobs === false || Atomics.load(ctrl, FAILED) === 1 || Atomics.load(ctrl, QUIT) === 1) return false;
    if (this.jobs === null) {
      if (Atomics.load(ctrl, JOBS_LENT) === 0) return false;
      this.receiveAll();
      if (this.jobs === null) return false;
    }
    const jobs = this.jobs;
    try {
      return takeJob(jobs);
    } catch (e) {
      // the build reports it, with its message; writing goes on
      markFailed(jobs, e);
      this.jobs = false;
      return false;
    }
  }

  closeFiles(): void {
    this.copier.close();
  }

  get ctrl(): Int32Array {
    return this.ring.ctrl;
  }

  started(): void {
    Atomics.store(this.ctrl, STARTED, 1);
    Atomics.notify(this.ctrl, STARTED);
  }

  stopped(): void {
    Atomics.store(this.ctrl, STOPPED, 1);
    Atomics.notify(this.ctrl, STOPPED);
  }

  fail(e: unknown): void {
    const err = e as { code?: unknown; errno?: unknown };
    // no errno code: a bug, reported as such ('' makes the build say the writer failed)
    const code = typeof err.code === 'string' ? err.code : '';
    const n = Math.min(code.length, this.ring.code.length);
    for (let i = 0; i < n; i++) this.ring.code[i] = code.charCodeAt(i) & 0x7f;
    this.ctrl[CODE_LEN] = n;
    this.ctrl[ERRNO] = typeof err.errno === 'number' ? err.errno : -5;
    Atomics.store(this.ctrl, FAILED, 1);
    Atomics.notify(this.ctrl, CONSUMED);
  }

  private source(id: number): Uint8Array {
    while (this.adopted[id] === undefined) {
      if (!this.receiveOne()) throw new Error(`segment names buffer ${id}, which was never sent`);
    }
    return this.adopted[id]!;
  }

  /** Take the next message off the port; false: there was none. */
  private receiveOne(): boolean {
    const m = receiveMessageOnPort(this.port);
    if (m === undefined) return false;
    const msg = m.message as AdoptMessage | JobsMessage;
    if ('jobs' in msg) {
      if (this.jobs === null) this.jobs = mapJobRing(msg.jobs);
    } else {
      this.adopted[msg.adopt] = new Uint8Array(msg.sab);
    }
    return true;
  }

  private receiveAll(): void {
    while (this.receiveOne()) { /* taken */ }
  }

  /** Write the next slot handed over (skipped once a write failed or the build quit) and say it is done. */
  writeNext(): void {
    const ctrl = this.ctrl;
    if (Atomics.load(ctrl, FAILED) === 0 && Atomics.load(ctrl, QUIT) === 0) {
      try {
        this.writeSlot(this.consumed % RING_SLOTS);
      } catch (e) {
        this.fail(e);
      }
    }
    this.consumed++;
    Atomics.store(ctrl, CONSUMED, this.consumed);
    Atomics.notify(ctrl, CONSUMED);
  }

  private writeSlot(slot: number): void {
    const { segs, data, ctrl } = this.ring;
    const fd = this.fd;
    const base = segBase(slot);
    const count = segs[base]!;
    let pos = slot * SLOT_BYTES;
    for (let s = 0; s < count; s++) {
      const at = base + 1 + SEG_FIELDS * s;
      const offset = segs[at]!;
      const len = segs[at + 1]!;
      const src = segs[at + 2]!;
      let done = 0;
      if (src === SRC_SLOT) {
        while (done < len) done += writeSync(fd, data, pos + done, len - done, offset + done);
        pos += len;
      } else {
        const from = this.source(src);
        const start = segs[at + 3]!;
        while (done < len) done += writeSync(fd, from, start + done, len - done, offset + done);
      }
      if (Atomics.load(ctrl, QUIT) === 1) return; // aborted: the file is about to be removed
    }
  }
}

/** The writer on a thread of its own: returns when the build says quit. */
export function runImageWriter(sab: SharedArrayBuffer, fd: number, port: MessagePort): void {
  const w = new RingWriter(sab, fd, port);
  const ctrl = w.ctrl;
  w.started();
  try {
    for (;;) {
      const wake = Atomics.load(ctrl, WAKE);
      // first what the build read for us, before even a slot it may be
      // waiting for (four chunks' writes at most): its stage slots come
      // free, so it can go on taking reads off this thread (a slot first
      // measured no faster, 5 pairs on /usr)
      if (w.writeStaged()) continue;
      const produced = Atomics.load(ctrl, PRODUCED);
      if (w.consumed === produced) {
        if (Atomics.load(ctrl, QUIT) === 1) break;
        if (w.spareTask()) continue;
        Atomics.wait(ctrl, WAKE, wake);
        continue;
      }
      w.writeNext();
    }
  } catch (e) {
    w.fail(e);
  }
  w.closeFiles();
  w.stopped();
}

/** Longest stretch of writing between two turns of the event loop, in ms. */
const TURN_MS = 20;

/**
 * The writer on a thread with an event loop: it lets the loop turn at least
 * every TURN_MS (signals, progress), whether it writes or waits. It waits
 * with Atomics.wait between turns, not Atomics.waitAsync: the writer goes
 * idle and is woken once per compression job, and each asynchronous wait
 * cost ~1.5 KB of promises and V8 bookkeeping on this thread's heap (8 MB
 * of garbage for /usr/share, a heap of 15 MB where 6.5 did before).
 * Resolves when the build says quit, or when `stop()` of the returned
 * handle is called (the build thread is gone).
 */
export function hostImageWriter(sab: SharedArrayBuffer, fd: number, port: MessagePort): { done: Promise<void>; stop(): void } {
  const w = new RingWriter(sab, fd, port);
  const ctrl = w.ctrl;
  const stop = (): void => {
    Atomics.store(ctrl, QUIT, 1);
    wakeWriter(ctrl);
  };
  const run = async (): Promise<void> => {
    w.started();
    // (as if a turn were due: the first wait comes after one, so the
    // caller gets the handle back before this thread waits)
    let turned = performance.now() - TURN_MS;
    try {
      for (;;) {
        const wake = Atomics.load(ctrl, WAKE);
        const produced = Atomics.load(ctrl, PRODUCED);
        // (staged chunks first, as in runImageWriter)
        if (!w.writeStaged()) {
          if (w.consumed === produced) {
            if (Atomics.load(ctrl, QUIT) === 1) break;
            if (!w.spareTask()) {
              const left = TURN_MS - (performance.now() - turned);
              if (left > 0) {
                Atomics.wait(ctrl, WAKE, wake, left);
                continue;
              }
            }
          } else {
            w.writeNext();
          }
        }
        if (performance.now() - turned >= TURN_MS) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          turned = performance.now();
        }
      }
    } catch (e) {
      w.fail(e);
    } finally {
      w.closeFiles();
      w.stopped();
      port.close();
    }
  };
  return { done: run(), stop };
}
