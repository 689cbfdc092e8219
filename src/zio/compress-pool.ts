// Compression on worker threads, kept synchronous for the writer: each
// worker owns a slot of shared memory; the writer fills the slots with a
// batch of blocks, wakes the workers and waits (Atomics.wait) until all are
// done, then places the results in block order. A block's compressed bytes
// depend only on the block, so the image is the same whatever the number of
// workers (0 means compress on the calling thread).
import { Worker } from 'node:worker_threads';
import { compressBlock } from './compress.js';

export const SLOT_BYTES = 128 * 1024;
const OUT_BYTES = SLOT_BYTES + 1024;
// control words: state, input length, output length (-1: not worth it), algorithm
const IDLE = 0, WORK = 1, DONE = 2, QUIT = 3;

interface Slot {
  worker: Worker;
  ctrl: Int32Array;
  input: Uint8Array;
  output: Uint8Array;
}

export class CompressPool {
  private slots: Slot[] = [];

  constructor(readonly workers: number) {
    for (let i = 0; i < workers; i++) {
      const sab = new SharedArrayBuffer(16 + SLOT_BYTES + OUT_BYTES);
      const worker = new Worker(new URL('./compress-worker.js', import.meta.url), { workerData: { sab } });
      worker.unref();
      this.slots.push({
        worker,
        ctrl: new Int32Array(sab, 0, 4),
        input: new Uint8Array(sab, 16, SLOT_BYTES),
        output: new Uint8Array(sab, 16 + SLOT_BYTES, OUT_BYTES),
      });
    }
  }

  /** How many blocks one call should carry to keep every worker busy. */
  get batch(): number {
    return Math.max(1, this.workers);
  }

  /** Compress each block with `comp`; null where compression is not worth it. */
  compressAll(blocks: Uint8Array[], comp: number): (Uint8Array | null)[] {
    if (this.workers === 0) return blocks.map((b) => copyOrNull(compressBlock(comp, b)));
    const out: (Uint8Array | null)[] = [];
    for (let i = 0; i < blocks.length; i += this.slots.length) {
      const group = blocks.slice(i, i + this.slots.length);
      group.forEach((b, k) => {
        if (b.length > SLOT_BYTES) throw new Error('block too large for a compression slot');
        const s = this.slots[k]!;
        s.input.set(b);
        s.ctrl[1] = b.length;
        s.ctrl[3] = comp;
        Atomics.store(s.ctrl, 0, WORK);
        Atomics.notify(s.ctrl, 0);
      });
      group.forEach((_, k) => {
        const s = this.slots[k]!;
        while (Atomics.load(s.ctrl, 0) === WORK) Atomics.wait(s.ctrl, 0, WORK);
        const n = s.ctrl[2]!;
        out.push(n < 0 ? null : s.output.slice(0, n));
        Atomics.store(s.ctrl, 0, IDLE);
      });
    }
    return out;
  }

  close(): void {
    for (const s of this.slots) {
      Atomics.store(s.ctrl, 0, QUIT);
      Atomics.notify(s.ctrl, 0);
      void s.worker.terminate();
    }
    this.slots = [];
  }
}

function copyOrNull(c: Uint8Array | null): Uint8Array | null {
  return c ? c.slice() : null;
}

export const STATES = { IDLE, WORK, DONE, QUIT };
