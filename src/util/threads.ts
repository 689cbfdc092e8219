// What the build's helper threads (image writer, file reader, compression)
// have in common: they start from a script next to their module, and they
// must start whatever flags the embedding process was run with.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * The process's node flags minus those a thread cannot take: a worker
 * inherits execArgv, and `--input-type` (valid only with -e, as in
 * `node --input-type=module -e "import ... from 'tsmakefs'"`) makes it fail
 * to start, which a synchronous build waiting on it could not even notice.
 */
export function threadExecArgv(argv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--input-type') { i++; continue; }
    if (a.startsWith('--input-type=')) continue;
    out.push(a);
  }
  return out;
}

/** The script `name` next to `moduleUrl`, or null when it is absent (sources run untranspiled, e.g. under a test runner). */
export function threadScript(moduleUrl: string, name: string): URL | null {
  const url = new URL(name, moduleUrl);
  return existsSync(fileURLToPath(url)) ? url : null;
}

/** Start a helper thread that must not keep the process alive. */
export function startThread(script: URL, workerData: unknown): Worker {
  // inherited unless they must be changed: an explicit list is checked, and
  // V8 flags (--trace-gc, --max-old-space-size, ...) are refused in it
  const argv = threadExecArgv();
  const w = new Worker(script, { workerData, execArgv: argv.length === process.execArgv.length ? undefined : argv });
  w.unref();
  return w;
}

/** How long a synchronous wait gives a thread that has not even started before calling it dead. */
const THREAD_START_TIMEOUT_MS = 60_000;

/**
 * Wait (up to a second at a time, so the caller can look at other flags)
 * while ctrl[index] is `value`, for a thread started at `since` that sets
 * ctrl[startedIndex] when it runs. A thread that has not run after
 * THREAD_START_TIMEOUT_MS never will: that is an error naming `what`,
 * where waiting on would hang the build.
 */
export function waitOnThread(ctrl: Int32Array, index: number, value: number, startedIndex: number, since: number, what: string): void {
  if (Atomics.wait(ctrl, index, value, 1000) === 'timed-out' && Atomics.load(ctrl, startedIndex) === 0
    && Date.now() - since > THREAD_START_TIMEOUT_MS) {
    throw new Error(`the ${what} thread did not start`);
  }
}
