// Compression on worker threads, kept synchronous for the writer: a batch of
// blocks goes onto a shared job board, the workers and the calling thread
// all take jobs from it (an atomic counter hands each job out once) until
// none is left, and the call returns when every job is done. The results
// are then placed in block order. A block's compressed bytes depend only on
// the block, so the image is the same whatever the number of workers
// (0 means compress on the calling thread).
import type { Worker } from 'node:worker_threads';
import { startThread, threadScript } from '../util/threads.js';
import { compressBlock } from './compress.js';

export const SLOT_BYTES = 128 * 1024;
const OUT_BYTES = SLOT_BYTES + 1024;
/** Jobs on the board at once: enough to keep two or three threads busy between hand-offs. */
export const JOBS = 16;

// board control words (Int32Array indexes)
export const ROUND = 0; // bumped for each batch; workers wait on it
export const NEXT = 1; // next job to take (taken with Atomics.add)
export const TOTAL = 2; // jobs in this batch
export const DONE = 3; // jobs finished
export const QUIT = 4;
export const FAILED = 5; // a worker caught an exception
const CTRL_WORDS = 8;
/** NEXT between batches: past any total. */
const CLOSED_BATCH = 1 << 30;
// per job: input length, algorithm, output length (-1: not worth it)
const JOB_WORDS = 4;

export interface Board {
  ctrl: Int32Array;
  jobs: Int32Array;
  input(j: number): Uint8Array;
  output(j: number): Uint8Array;
}

export function mapBoard(sab: SharedArrayBuffer): Board {
  const ctrl = new Int32Array(sab, 0, CTRL_WORDS);
  const jobs = new Int32Array(sab, CTRL_WORDS * 4, JOBS * JOB_WORDS);
  const base = CTRL_WORDS * 4 + JOBS * JOB_WORDS * 4;
  const per = SLOT_BYTES + OUT_BYTES;
  return {
    ctrl, jobs,
    input: (j) => new Uint8Array(sab, base + j * per, SLOT_BYTES),
    output: (j) => new Uint8Array(sab, base + j * per + SLOT_BYTES, OUT_BYTES),
  };
}

function allocBoard(): SharedArrayBuffer {
  return new SharedArrayBuffer(CTRL_WORDS * 4 + JOBS * JOB_WORDS * 4 + JOBS * (SLOT_BYTES + OUT_BYTES));
}

/**
 * Take jobs off the board until none is left (the workers' loop and the
 * calling thread's share both run this).
 */
export function runJobs(board: Board, inputs: Uint8Array[], outputs: Uint8Array[]): void {
  const { ctrl, jobs } = board;
  for (;;) {
    const j = Atomics.add(ctrl, NEXT, 1);
    if (j >= Atomics.load(ctrl, TOTAL)) return;
    const c = compressBlock(jobs[j * JOB_WORDS + 1]!, inputs[j]!.subarray(0, jobs[j * JOB_WORDS]!));
    if (c) outputs[j]!.set(c);
    jobs[j * JOB_WORDS + 2] = c ? c.length : -1;
    if (Atomics.add(ctrl, DONE, 1) + 1 === Atomics.load(ctrl, TOTAL)) Atomics.notify(ctrl, DONE);
  }
}

function workerScript(): URL | null {
  return threadScript(import.meta.url, './compress-worker.js');
}

export class CompressPool {
  private board: Board | null = null;
  private inputs: Uint8Array[] = [];
  private outputs: Uint8Array[] = [];
  private threads: Worker[] = [];
  private failure: Error | null = null;
  private closed = false;
  readonly workers: number;

  constructor(workers: number) {
    this.workers = workerScript() ? workers : 0;
  }

  // Started at the first compressed data block, not with the pool: an
  // image without data compression never pays for the workers' isolates.
  private start(): void {
    const sab = allocBoard();
    this.board = mapBoard(sab);
    Atomics.store(this.board.ctrl, NEXT, CLOSED_BATCH);
    for (let j = 0; j < JOBS; j++) {
      this.inputs.push(this.board.input(j));
      this.outputs.push(this.board.output(j));
    }
    const script = workerScript()!;
    for (let i = 0; i < this.workers; i++) {
      // a worker that cannot start takes no job: the calling thread does them all
      const worker = startThread(script, { sab });
      worker.on('error', (e) => { this.failure = e; });
      this.threads.push(worker);
    }
  }

  /** How many blocks one call should carry to keep every worker busy. */
  get batch(): number {
    return this.workers === 0 ? 1 : JOBS;
  }

  /** Compress each block with `comp`; null where compression is not worth it. */
  compressAll(blocks: Uint8Array[], comp: number): (Uint8Array | null)[] {
    // one block: no hand-off is worth it
    if (this.workers === 0 || this.closed || blocks.length <= 1) return blocks.map((b) => copyOrNull(compressBlock(comp, b)));
    if (!this.board) this.start();
    const { ctrl, jobs } = this.board!;
    const out: (Uint8Array | null)[] = [];
    for (let i = 0; i < blocks.length; i += JOBS) {
      const n = Math.min(JOBS, blocks.length - i);
      for (let k = 0; k < n; k++) {
        const b = blocks[i + k]!;
        if (b.length > SLOT_BYTES) throw new Error('block too large for a compression slot');
        this.inputs[k]!.set(b);
        jobs[k * JOB_WORDS] = b.length;
        jobs[k * JOB_WORDS + 1] = comp;
      }
      // done and total before next: a worker that takes a job must see its batch whole
      Atomics.store(ctrl, DONE, 0);
      Atomics.store(ctrl, TOTAL, n);
      Atomics.store(ctrl, NEXT, 0);
      Atomics.add(ctrl, ROUND, 1);
      Atomics.notify(ctrl, ROUND);
      runJobs(this.board!, this.inputs, this.outputs);
      for (;;) {
        const d = Atomics.load(ctrl, DONE);
        if (d >= n) break;
        if (Atomics.load(ctrl, FAILED) !== 0 || this.failure) throw this.failure ?? new Error('a compression worker failed');
        Atomics.wait(ctrl, DONE, d, 1000);
      }
      // a worker waking late for this batch must find nothing left to take,
      // even once the next batch's total is set (which comes before NEXT = 0)
      Atomics.store(ctrl, NEXT, CLOSED_BATCH);
      for (let k = 0; k < n; k++) {
        const len = jobs[k * JOB_WORDS + 2]!;
        out.push(len < 0 ? null : this.outputs[k]!.slice(0, len));
      }
    }
    return out;
  }

  close(): void {
    this.closed = true;
    if (this.board) {
      Atomics.store(this.board.ctrl, QUIT, 1);
      Atomics.add(this.board.ctrl, ROUND, 1);
      Atomics.notify(this.board.ctrl, ROUND);
    }
    for (const w of this.threads) void w.terminate();
    this.threads = [];
  }
}

function copyOrNull(c: Uint8Array | null): Uint8Array | null {
  return c ? c.slice() : null;
}
