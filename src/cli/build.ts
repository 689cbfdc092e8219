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

import { rmSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { MessagePort } from 'node:worker_threads';
import type { BuildProgress, BuildSummary } from '../build.js';
import type { InputPlan } from '../input/pipeline.js';
import type { TarPull } from '../input/tar-feed.js';
import type { Inode } from '../input/tree.js';
import type { ImageOptions } from '../options.js';
import { errnoCode, InterruptedError, UserError } from '../util/errors.js';
import type { BuildInvocation } from './args.js';
import { OLD_GENERATION_MB, startBuildThread, takeBuildThread, workerAvailable } from './build-thread.js';
import { ProgressLine, progressWanted } from './progress.js';
import { formatSummary, formatSummaryJson } from './summary.js';

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
export function invocationPlan(inv: BuildInvocation, warn: (m: string) => void, stdin?: Readable | TarPull): InputPlan {
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
  // started early by run() when the command line looked like a build
  const worker = takeBuildThread() ?? startBuildThread();
  worker.postMessage(request);
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
