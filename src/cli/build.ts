// The command line's build: runBuild (src/build.ts, the library's path too)
// with a progress line, the summary (-v, --json), and SIGINT/SIGTERM.
//
// The writer is synchronous for long stretches (a directory's data is read
// and written without ever yielding to the event loop), so a signal handler
// on the thread that writes would only run once the image is finished. The
// build therefore runs on a worker thread (build-worker.ts) while the main
// thread draws progress and handles signals: on SIGINT or SIGTERM it stops
// the worker, removes the temporary image and exits 130 or 143. Where the
// worker's compiled module is not there (the sources run directly, as in the
// unit tests), or TSMAKEFS_IN_PROCESS=1 asks for it (one thread for a
// profiler or debugger), the build runs on the main thread and a signal,
// handled between asynchronous steps, removes every open temporary image.

import { existsSync, rmSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { Worker, type MessagePort } from 'node:worker_threads';
import type { BuildProgress, BuildSummary } from '../build.js';
import type { InputPlan } from '../input/pipeline.js';
import type { Inode } from '../input/tree.js';
import type { ImageOptions } from '../options.js';
import { errnoCode, InterruptedError, UserError } from '../util/errors.js';
import type { BuildInvocation } from './args.js';
import { ProgressLine, progressWanted } from './progress.js';
import { formatSummary, formatSummaryJson } from './summary.js';

/**
 * The build thread's young generation (V8 resourceLimits), in MB. What
 * survives a scavenge is nearly all tree, promoted anyway, so a larger
 * young generation only holds more garbage: 8 -> 2 MB took ~10 MB off the
 * /usr peak and ~6 MB off 100k small files, CPU and wall time unchanged.
 */
const YOUNG_GENERATION_MB = 2;

/**
 * The build thread's old generation limit, in MB. Below 2 GB V8 lets the
 * heap grow less between collections (at most 2x what survived instead of
 * 4x): on /usr that keeps ~25 MB of garbage out of the peak RSS, for no
 * time. 2 GB still holds millions of entries (a build keeps ~400 bytes of
 * heap per entry), and it is never more than V8 would give (its default
 * is a quarter of physical memory, up to 4 GB).
 */
const OLD_GENERATION_MB = Math.min(2047, Math.floor(getHeapStatistics().heap_size_limit / 2 ** 20));

/**
 * How far V8 lets a heap grow past what survived its last full collection,
 * in percent. The build keeps nearly all it allocates (the tree), so V8's
 * own factor (up to 2x here) is mostly room for garbage it will never need:
 * on /usr that room was 25-35 MB of the peak RSS. The extra collections
 * run while the build waits for the image writer (bench/RESULTS.md).
 */
const HEAP_GROWING_PERCENT = Number(process.env['TSMAKEFS_HEAP_GROWING_PERCENT'] ?? 25);

export interface CliBuildIO {
  stdout(text: string): void;
  stderr(text: string): void;
  stdin?: Readable;
  /** stderr is a terminal: draw progress there (unless -q or CI). */
  isTTY: boolean;
  columns?: () => number | undefined;
  /** Handle SIGINT/SIGTERM (only for the real process, never in tests that call main()). */
  signals: boolean;
}

/** A stand-in for the writer (tests): gets the finished tree, file data in memory. */
export type StandInWriter = (root: Inode, opts: ImageOptions) => Promise<object>;

/** BuildInvocation -> the input pipeline's plan. */
export function invocationPlan(inv: BuildInvocation, warn: (m: string) => void, stdin?: Readable): InputPlan {
  return {
    inputs: inv.inputs,
    policy: { stamp: inv.timestamp, sourceDateEpoch: inv.sourceDateEpoch },
    userDbDir: inv.userDbDir,
    duplicates: inv.duplicates ?? 0,
    specFile: inv.specFile,
    onlySpec: inv.onlySpec === true,
    allRoot: inv.allRoot === true,
    forceUid: inv.forceUid,
    forceGid: inv.forceGid,
    xattrs: inv.options.xattrs,
    warn,
    stdin,
  };
}

// ---------------------------------------------------------------- worker protocol

export type WorkerRequest = { inv: BuildInvocation; progress: boolean };

export type WorkerMessage =
  | { t: 'warn'; m: string }
  | { t: 'progress'; p: BuildProgress }
  | { t: 'done'; result: BuildSummary }
  | { t: 'error'; e: WireError }
  /** Run an image writer here (setImageWriterHost): the ring, the image's descriptor, the port adopted buffers come on. */
  | { t: 'writer'; sab: SharedArrayBuffer; fd: number; port: MessagePort };

/** An error crossing from the worker: what main.ts's report() needs to word it. */
export interface WireError {
  kind: 'user' | 'errno' | 'internal';
  message: string;
  stack?: string;
  code?: string;
  syscall?: string;
  path?: string;
}

export function toWire(e: unknown): WireError {
  if (e instanceof UserError) return { kind: 'user', message: e.message, stack: e.stack };
  const err = e instanceof Error ? e : new Error(String(e));
  if (errnoCode(e) !== undefined) {
    const x = e as { code: string; syscall: string; path?: unknown };
    return {
      kind: 'errno', message: err.message, stack: err.stack, code: x.code, syscall: x.syscall,
      path: typeof x.path === 'string' ? x.path : undefined,
    };
  }
  return { kind: 'internal', message: err.message, stack: err.stack };
}

export function fromWire(w: WireError): Error {
  const e = w.kind === 'user' ? new UserError(w.message) : new Error(w.message);
  if (w.stack !== undefined) e.stack = w.stack;
  if (w.kind === 'errno') Object.assign(e, { code: w.code, syscall: w.syscall, ...(w.path !== undefined ? { path: w.path } : {}) });
  return e;
}

const WORKER_URL = new URL('./build-worker.js', import.meta.url);

/** The build thread is used unless TSMAKEFS_IN_PROCESS=1 (profilers, debuggers) or it is not compiled. */
function workerAvailable(): boolean {
  if (process.env['TSMAKEFS_IN_PROCESS'] === '1') return false;
  return WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));
}

// ---------------------------------------------------------------- the build

/** Run a build as the command line does; prints warnings, progress and the summary. */
export async function runCliBuild(inv: BuildInvocation, io: CliBuildIO, writer?: StandInWriter): Promise<void> {
  const progress = progressWanted({ isTTY: io.isTTY, quiet: inv.quiet, env: process.env })
    ? new ProgressLine(io.stderr, { columns: io.columns })
    : undefined;
  const warn = (m: string): void => {
    if (inv.quiet) return;
    progress?.clear();
    io.stderr(`tsmakefs: warning: ${m}\n`);
  };
  let summary: object;
  try {
    if (writer !== undefined) {
      const { openInputs, treeInMemory } = await import('../input/pipeline.js');
      const source = await openInputs(invocationPlan(inv, warn, io.stdin), { prewrite: false });
      summary = await writer(await treeInMemory(source), inv.options);
    } else if (workerAvailable() && !(io.stdin !== undefined && inv.inputs.includes('-'))) {
      // (a stream of the caller's for "-" cannot go to another thread: that build stays here)
      summary = await inWorker(inv, io, warn, progress);
    } else {
      summary = await inProcess(inv, io, warn, progress);
    }
  } finally {
    progress?.done();
  }
  if (inv.json === true) io.stdout(formatSummaryJson(summary));
  else if (inv.options.verbose) io.stdout(formatSummary(summary));
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

async function inProcess(inv: BuildInvocation, io: CliBuildIO, warn: (m: string) => void, progress: ProgressLine | undefined): Promise<BuildSummary> {
  const { runBuild } = await import('../build.js');
  const { abortOpenImageFiles } = await import('../vdev/imagefile.js');
  const onSignal = (sig: 'SIGINT' | 'SIGTERM'): void => {
    abortOpenImageFiles();
    progress?.done();
    const e = new InterruptedError(sig);
    io.stderr(`tsmakefs: ${e.message}\n`);
    process.exit(e.exitStatus);
  };
  if (io.signals) for (const s of SIGNALS) process.on(s, onSignal);
  try {
    return await runBuild(invocationPlan(inv, warn, io.stdin), inv.options, {
      onProgress: progress ? (p) => progress.update(p) : undefined,
    });
  } finally {
    if (io.signals) for (const s of SIGNALS) process.off(s, onSignal);
  }
}

async function inWorker(inv: BuildInvocation, io: CliBuildIO, warn: (m: string) => void, progress: ProgressLine | undefined): Promise<BuildSummary> {
  const { tmpPathFor } = await import('../vdev/imagefile.js');
  const { hostImageWriter } = await import('../vdev/image-writer-loop.js');
  // "-": the worker reads file descriptor 0 itself (piping process.stdin
  // through the main thread costs a copy per chunk and buffers)
  const request: WorkerRequest = { inv, progress: progress !== undefined };
  // A V8 flag, so the whole process's: set only here, where the process
  // is the command line's own (a program calling buildImage keeps its own).
  if (HEAP_GROWING_PERCENT > 0) setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  // A build keeps most of what it allocates (the tree) and throws away
  // small per-block garbage: a small young generation costs no time and
  // keeps tens of MB out of the peak RSS (bench/RESULTS.md).
  const worker = new Worker(WORKER_URL, {
    workerData: request,
    resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB, maxOldGenerationSizeMb: OLD_GENERATION_MB },
  });
  progress?.startTimer();
  const writers: Array<{ done: Promise<void>; stop(): void }> = [];
  let onSignal: ((sig: 'SIGINT' | 'SIGTERM') => void) | undefined;
  try {
    return await new Promise<BuildSummary>((resolve, reject) => {
      let settled = false;
      const settle = (f: () => void): void => {
        if (settled) return;
        settled = true;
        f();
      };
      worker.on('message', (m: WorkerMessage) => {
        switch (m.t) {
          case 'warn': warn(m.m); break;
          case 'progress': progress?.update(m.p); break;
          case 'done': settle(() => resolve(m.result)); break;
          case 'error': settle(() => reject(fromWire(m.e))); break;
          case 'writer': {
            // this thread only waits for the build: it writes the image too
            writers.push(hostImageWriter(m.sab, m.fd, m.port));
            break;
          }
        }
      });
      worker.on('error', (e) => settle(() => reject(
        (e as { code?: unknown }).code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new UserError(`out of memory: the tree needs more than the build's ${OLD_GENERATION_MB} MB heap`)
          : e,
      )));
      worker.on('exit', (code) => settle(() => reject(new Error(`the build thread stopped unexpectedly (exit code ${code})`))));
      if (io.signals) {
        let interrupted: InterruptedError | undefined;
        onSignal = (sig) => {
          if (interrupted !== undefined) {
            // a second signal: do not wait for the worker to stop
            rmSync(tmpPathFor(inv.options.image), { force: true });
            process.exit(interrupted.exitStatus);
          }
          interrupted = new InterruptedError(sig);
          const e = interrupted;
          settle(() => reject(e));
        };
        for (const s of SIGNALS) process.on(s, onSignal);
      }
    });
  } finally {
    if (onSignal) for (const s of SIGNALS) process.off(s, onSignal);
    // stops a worker still writing (interrupted, or it failed in a way it could not report)
    await worker.terminate();
    // and the image writers it had here, which would wait for it for ever
    for (const w of writers) w.stop();
    await Promise.all(writers.map((w) => w.done));
    // gone after a commit (renamed) or the worker's own clean-up; left when it was stopped
    rmSync(tmpPathFor(inv.options.image), { force: true });
  }
}
