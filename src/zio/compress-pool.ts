// Compression on worker threads, kept synchronous for the writer: each
// worker owns a slot of shared memory; the writer fills the slots with a
// batch of blocks, wakes the workers and waits (Atomics.wait) until all are
// done, then places the results in block order. A block's compressed bytes
// depend only on the block, so the image is the same whatever the number of
// workers (0 means compress on the calling thread).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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

/** The worker script next to this module (absent when the sources run untranspiled, e.g. under a test runner). */
export function workerScript(): URL | null {
  const url = new URL('./compress-worker.js', import.meta.url);
  return existsSync(fileURLToPath(url)) ? url : null;
}

export class CompressPool {
  private slots: Slot[] = [];
  private failure: Error | null = null;
  readonly workers: number;

  private started = false;
  private closed = false;

  constructor(workers: number) {
    this.workers = workerScript() ? workers : 0;
  }

  // Started at the first compressed data block, not with the pool: an
  // image without data compression never pays for the workers' isolates.
  private start(): void {
    this.started = true;
    const script = workerScript()!;
    for (let i = 0; i < this.workers; i++) {
      const sab = new SharedArrayBuffer(16 + SLOT_BYTES + OUT_BYTES);
      const worker = new Worker(script, { workerData: { sab } });
      // a worker that dies would leave the writer waiting: remember why
      worker.on('error', (e) => { this.failure = e; });
      worker.on('exit', (code) => { if (code !== 0 && this.slots.length > 0) this.failure ??= new Error(`compression worker exited with ${code}`); });
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
    if (this.workers === 0 || this.closed) return blocks.map((b) => copyOrNull(compressBlock(comp, b)));
    if (!this.started) this.start();
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
        while (Atomics.load(s.ctrl, 0) === WORK) {
          Atomics.wait(s.ctrl, 0, WORK, 1000);
          if (this.failure) throw this.failure;
        }
        const n = s.ctrl[2]!;
        out.push(n < 0 ? null : s.output.slice(0, n));
        Atomics.store(s.ctrl, 0, IDLE);
      });
    }
    return out;
  }

  close(): void {
    this.closed = true;
    const slots = this.slots;
    this.slots = [];
    for (const s of slots) {
      Atomics.store(s.ctrl, 0, QUIT);
      Atomics.notify(s.ctrl, 0);
      void s.worker.terminate();
    }
  }
}

function copyOrNull(c: Uint8Array | null): Uint8Array | null {
  return c ? c.slice() : null;
}

export const STATES = { IDLE, WORK, DONE, QUIT };
