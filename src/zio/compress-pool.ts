// Data compression on worker threads, pipelined with the rest of the build:
// the building thread puts each record on a ring of jobs and goes on reading
// and placing, the workers take jobs as they come (a compare-and-swap hands
// each out once), and the builder takes the results back in submission
// order, compressing a job itself rather than wait idle for one. A thread
// with other work (the image writer) may lend a hand between its own tasks
// (CompressHelper): the jobs then go on the ring even with no worker of the
// pool's own, and that thread costs no isolate of its own. Placement
// stays sequential and in order, and a block's compressed bytes depend only
// on the block, so the image is the same whatever the number of workers
// (0 means compress on the calling thread).
import type { Worker } from 'node:worker_threads';
import { startThread, threadScript } from '../util/threads.js';
import { compressBlock } from './compress.js';
import { copyBytes } from '../util/bytes.js';

export const SLOT_BYTES = 128 * 1024;
const OUT_BYTES = SLOT_BYTES + 1024;
/**
 * Jobs in flight at most, per thread that compresses (workers, helper and
 * builder), and in all: enough to keep them busy across a few reads. Each
 * job is 257 KiB of ring; on two cores (builder and image writer) 8 jobs
 * measured as fast as 16 on /usr and 1-2 MB lower at the peak.
 */
const JOBS_PER_THREAD = 4;
const MAX_JOBS = 16;

// ring control words (Int32Array indexes)
export const SUBMITTED = 0; // jobs put on the ring so far
export const TAKEN = 1; // jobs a thread has started
export const QUIT = 2;
export const FAILED = 3; // a thread failed in a job (markFailed)
const COUNT = 4; // jobs the ring holds
const WHY_LEN = 5; // bytes of the failure's message
const CTRL_WORDS = 8;
// the failure's message (UTF-8, cut short), for the builder to report
const WHY_BYTES = 256;
// per job: input length, algorithm, output length (-1: not worth it), state
const JOB_WORDS = 4;
const FILLED = 1;
const DONE = 2;

export interface JobRing {
  count: number;
  ctrl: Int32Array;
  why: Uint8Array;
  jobs: Int32Array;
  inputs: Uint8Array[];
  outputs: Uint8Array[];
}

export function mapJobRing(sab: SharedArrayBuffer): JobRing {
  const ctrl = new Int32Array(sab, 0, CTRL_WORDS);
  const count = ctrl[COUNT]!;
  const why = new Uint8Array(sab, CTRL_WORDS * 4, WHY_BYTES);
  const jobs = new Int32Array(sab, CTRL_WORDS * 4 + WHY_BYTES, count * JOB_WORDS);
  const base = CTRL_WORDS * 4 + WHY_BYTES + count * JOB_WORDS * 4;
  const per = SLOT_BYTES + OUT_BYTES;
  const inputs: Uint8Array[] = [];
  const outputs: Uint8Array[] = [];
  for (let j = 0; j < count; j++) {
    inputs.push(new Uint8Array(sab, base + j * per, SLOT_BYTES));
    outputs.push(new Uint8Array(sab, base + j * per + SLOT_BYTES, OUT_BYTES));
  }
  return { count, ctrl, why, jobs, inputs, outputs };
}

function allocJobRing(count: number): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(CTRL_WORDS * 4 + WHY_BYTES + count * JOB_WORDS * 4 + count * (SLOT_BYTES + OUT_BYTES));
  new Int32Array(sab, 0, CTRL_WORDS)[COUNT] = count;
  return sab;
}

/** Start the next submitted job if there is one; false if none was waiting. */
export function takeJob(ring: JobRing): boolean {
  const { ctrl, jobs } = ring;
  const t = Atomics.load(ctrl, TAKEN);
  if (t >= Atomics.load(ctrl, SUBMITTED)) return false;
  if (Atomics.compareExchange(ctrl, TAKEN, t, t + 1) !== t) return true; // another thread took it: look again
  const j = t % ring.count;
  const at = j * JOB_WORDS;
  const c = compressBlock(jobs[at + 1]!, ring.inputs[j]!.subarray(0, jobs[at]!));
  if (c) copyBytes(ring.outputs[j]!, c);
  jobs[at + 2] = c ? c.length : -1;
  Atomics.store(jobs, at + 3, DONE);
  Atomics.notify(jobs, at + 3);
  return true;
}

/** A thread failed in a job with `e`: the builder, waiting on any job's state, sees it at once, and says why. */
export function markFailed(ring: JobRing, e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  ring.ctrl[WHY_LEN] = new TextEncoder().encodeInto(message, ring.why).written;
  Atomics.store(ring.ctrl, FAILED, 1);
  for (let j = 0; j < ring.count; j++) Atomics.notify(ring.jobs, j * JOB_WORDS + 3);
}

function failedJob(ring: JobRing): Error {
  const why = Buffer.from(ring.why.subarray(0, ring.ctrl[WHY_LEN]!)).toString();
  return new Error(`a compression thread failed${why === '' ? '' : `: ${why}`}`);
}

function workerScript(): URL | null {
  return threadScript(import.meta.url, './compress-worker.js');
}

/**
 * A thread that takes jobs when it has nothing else to do: `lend` tells it
 * of the ring (once, when the ring is made), `wake` at each submission.
 */
export interface CompressHelper {
  lend(sab: SharedArrayBuffer): void;
  wake(): void;
}

/** A compressed record handed back: its input (still in the ring) and the result (null: not worth it). */
export interface Compressed {
  input: Uint8Array;
  output: Uint8Array | null;
}

export class CompressPool {
  private ring: JobRing | null = null;
  private threads: Worker[] = [];
  private failure: Error | null = null;
  private submitted = 0;
  private retired = 0;
  // with neither workers nor a helper: results computed at submission, kept until retired
  private inline: Compressed[] = [];
  /** Whether jobs go to other threads (workers or a helper), not compressed at submission. */
  readonly ringed: boolean;
  /** Jobs in flight at most. */
  private readonly jobs: number;
  readonly workers: number;

  /** `workers`: threads of the pool's own; `helper`: another thread that helps (see CompressHelper). */
  constructor(workers: number, private readonly helper: CompressHelper | null = null) {
    this.workers = workerScript() ? workers : 0;
    this.ringed = this.workers > 0 || helper !== null;
    this.jobs = Math.min(MAX_JOBS, JOBS_PER_THREAD * (this.workers + (helper ? 1 : 0) + 1));
  }

  // Started at the first compressed data block, not with the pool: an
  // image without data compression never pays for the workers' isolates.
  private start(): JobRing {
    const sab = allocJobRing(this.jobs);
    this.ring = mapJobRing(sab);
    const script = workerScript()!;
    for (let i = 0; i < this.workers; i++) {
      // a worker that cannot start takes no job: the calling thread does them all
      const worker = startThread(script, { sab });
      worker.on('error', (e) => { this.failure = e; });
      this.threads.push(worker);
    }
    this.helper?.lend(sab);
    return this.ring;
  }

  /** Jobs submitted and not yet retired. */
  get inFlight(): number {
    return this.submitted - this.retired;
  }

  /** Whether submit() needs a retire() first. */
  get full(): boolean {
    return this.inFlight === this.jobs;
  }

  /** Queue `block` (copied) for compression with `comp`. */
  submit(block: Uint8Array, comp: number): void {
    if (this.full) throw new Error('compression ring full: retire first');
    if (block.length > SLOT_BYTES) throw new Error('block too large for a compression slot');
    if (!this.ringed) {
      const c = compressBlock(comp, block);
      this.inline.push({ input: Uint8Array.prototype.slice.call(block), output: c ? c.slice() : null });
      this.submitted++;
      return;
    }
    const ring = this.ring ?? this.start();
    const j = this.submitted % this.jobs;
    const at = j * JOB_WORDS;
    copyBytes(ring.inputs[j]!, block);
    ring.jobs[at] = block.length;
    ring.jobs[at + 1] = comp;
    Atomics.store(ring.jobs, at + 3, FILLED);
    this.submitted++;
    Atomics.store(ring.ctrl, SUBMITTED, this.submitted);
    Atomics.notify(ring.ctrl, SUBMITTED, 1);
    this.helper?.wake();
  }

  /** Whether the oldest job is done (retire() would not wait). */
  get headDone(): boolean {
    if (this.inFlight === 0) return false;
    if (!this.ringed) return true;
    return Atomics.load(this.ring!.jobs, (this.retired % this.jobs) * JOB_WORDS + 3) === DONE;
  }

  /**
   * The oldest job's result. The views stay valid until the next submit():
   * place the block before submitting another.
   */
  retire(): Compressed {
    if (this.inFlight === 0) throw new Error('no compression job to retire');
    if (!this.ringed) {
      this.retired++;
      return this.inline.shift()!;
    }
    const ring = this.ring!;
    const j = this.retired % this.jobs;
    const state = j * JOB_WORDS + 3;
    while (Atomics.load(ring.jobs, state) !== DONE) {
      if (Atomics.load(ring.ctrl, FAILED) !== 0 || this.failure) throw this.failure ?? failedJob(ring);
      // rather than wait, do a job (this one, or a later one)
      if (!takeJob(ring)) Atomics.wait(ring.jobs, state, FILLED, 1000);
    }
    this.retired++;
    const len = ring.jobs[j * JOB_WORDS + 2]!;
    return { input: ring.inputs[j]!.subarray(0, ring.jobs[j * JOB_WORDS]!), output: len < 0 ? null : ring.outputs[j]!.subarray(0, len) };
  }

  close(): void {
    if (this.ring) {
      Atomics.store(this.ring.ctrl, QUIT, 1);
      Atomics.notify(this.ring.ctrl, SUBMITTED);
    }
    for (const w of this.threads) void w.terminate();
    this.threads = [];
  }
}
