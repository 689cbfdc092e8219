// Starting the command line's build thread (build-worker.ts), and starting
// it early. A new thread spends ~100 ms booting Node and ~170 ms loading the
// build's modules before it can take a request; the main thread spends
// ~100 ms loading the option parser and parsing. Started as soon as the
// command line looks like a build, the thread boots while the main thread
// parses, and the request follows as a message. This module is kept small
// (no build code) so that starting early costs the main thread nothing.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { Worker } from 'node:worker_threads';

/**
 * The build thread's young generation (V8 resourceLimits), in MB. What
 * survives a scavenge is nearly all tree, promoted anyway, so a larger
 * young generation mostly holds more garbage (8 MB: ~+20 MiB at /usr's
 * peak); but each scavenge has a fixed cost, and at 2 MB /usr's build made
 * ~1,250 of them: 4 MB halves their number and the build thread's GC
 * pauses (1.38 -> 0.77 s by --trace-gc) for ~2-3 MiB more at the peak.
 */
const YOUNG_GENERATION_MB = 4;

/**
 * The build thread's old generation limit, in MB. Below 2 GB V8 lets the
 * heap grow less between collections (at most 2x what survived instead of
 * 4x): on /usr that keeps ~25 MB of garbage out of the peak RSS, for no
 * time. 2 GB still holds millions of entries (a build keeps ~400 bytes of
 * heap per entry), and it is never more than V8 would give (its default
 * is a quarter of physical memory, up to 4 GB).
 */
export const OLD_GENERATION_MB = Math.min(2047, Math.floor(getHeapStatistics().heap_size_limit / 2 ** 20));

const WORKER_URL = new URL('./build-worker.js', import.meta.url);

/** The build thread is used unless TSMAKEFS_IN_PROCESS=1 (profilers, debuggers) or it is not compiled. */
export function workerAvailable(): boolean {
  if (process.env['TSMAKEFS_IN_PROCESS'] === '1') return false;
  return WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));
}

/** A build thread waiting for its request (a WorkerRequest message). */
export function startBuildThread(): Worker {
  // A build keeps most of what it allocates (the tree) and throws away
  // small per-block garbage: a small young generation costs no time and
  // keeps tens of MB out of the peak RSS (bench/RESULTS.md).
  return new Worker(WORKER_URL, {
    resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB, maxOldGenerationSizeMb: OLD_GENERATION_MB },
  });
}

interface Early {
  worker: Worker;
  /** It failed or stopped before anyone took it: its events went unheard. */
  dead: boolean;
}

let early: Early | null = null;

/**
 * Start the build thread now, for a build whose request comes later
 * (takeBuildThread). It does not keep the process alive: a command line
 * that turns out to be wrong exits without waiting for it.
 */
export function prestartBuildThread(): void {
  if (early !== null || !workerAvailable()) return;
  const e: Early = { worker: startBuildThread(), dead: false };
  e.worker.unref();
  const died = (): void => { e.dead = true; };
  e.worker.once('error', died);
  e.worker.once('exit', died);
  early = e;
}

/** The thread prestartBuildThread started, if it is still alive; null otherwise (start one). */
export function takeBuildThread(): Worker | null {
  const e = early;
  early = null;
  if (e === null) return null;
  if (e.dead) {
    void e.worker.terminate();
    return null;
  }
  e.worker.ref();
  return e.worker;
}
