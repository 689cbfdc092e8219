// Child processes for the test harness: async (so concurrent tests really run
// side by side and vitest's timeouts can fire), each in its own process group
// so a time-out kills the whole job (a shell script and the zdb/qemu it
// started), and never throwing on a non-zero exit: the caller judges.

import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is test/helpers/proc.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The shared tools, beside the repository as in CI (`../shared/tools` from
 * the repo root). TSMAKEFS_SHARED_TOOLS overrides it for odd layouts.
 */
export const SHARED_TOOLS = process.env.TSMAKEFS_SHARED_TOOLS
  ? resolve(process.env.TSMAKEFS_SHARED_TOOLS)
  : resolve(REPO_ROOT, '..', 'shared', 'tools');

export interface RunResult {
  /** Exit status, or null when the process died of a signal. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved in the order they arrived. */
  output: string;
  /** The job hit its time limit and was killed. */
  timedOut: boolean;
  ms: number;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the whole process group after this long (default: no limit). */
  timeoutMs?: number;
  /** Kill the whole process group when this aborts (e.g. vitest's test context `signal` on a time-out). */
  signal?: AbortSignal;
}

// Process groups still running; if the test worker goes away, take them with it.
const liveGroups = new Set<number>();
process.once('exit', () => {
  for (const pgid of liveGroups) killJob(pgid);
});

/**
 * SIGKILL a job we started: its process group, and every descendant of its
 * leader even where one made a group of its own (GNU timeout(1) does, and
 * check-image.sh runs qemu under it).
 */
function killJob(pid: number): void {
  const victims = [pid, ...descendants(pid)];
  try { process.kill(-pid, 'SIGKILL'); } catch { /* group gone */ }
  for (const p of victims) {
    try { process.kill(p, 'SIGKILL'); } catch { /* already gone */ }
  }
}

/** Descendants of `pid`, from /proc (empty where there is no /proc). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try { entries = readdirSync('/proc'); } catch { return []; }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try { stat = readFileSync(`/proc/${e}/stat`, 'utf8'); } catch { continue; }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(e));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    for (const c of children.get(stack.pop()!) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

/** Run a command to completion. Rejects only if it cannot be started at all. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? REPO_ROOT,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group: see killGroup
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const all: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => { out.push(b); all.push(b); });
    child.stderr.on('data', (b: Buffer) => { err.push(b); all.push(b); });
    let timedOut = false;
    const killGroup = (): void => {
      if (child.pid !== undefined) killJob(child.pid);
    };
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      killGroup();
    }, opts.timeoutMs);
    if (child.pid !== undefined) liveGroups.add(child.pid);
    let aborted = false;
    const onAbort = (): void => { aborted = true; killGroup(); };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (child.pid !== undefined) liveGroups.delete(child.pid);
    };
    child.on('error', (e) => {
      done();
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.on('close', (status, signal) => {
      done();
      const text = (bufs: Buffer[]): string => Buffer.concat(bufs).toString('utf8');
      let output = text(all);
      if (timedOut) output += `\n[killed after ${opts.timeoutMs} ms]`;
      if (aborted) output += '\n[killed: the test was aborted]';
      resolvePromise({
        status, signal, stdout: text(out), stderr: text(err), output, timedOut: timedOut || aborted,
        ms: Math.round(performance.now() - t0),
      });
    });
  });
}

/** The full path of an executable on PATH, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return undefined;
}

/**
 * Throw the harness's "oracle missing" error unless `ok`: the tests fail,
 * never skip, when a reader they rely on is not there.
 */
export function requireTool(ok: boolean, what: string, hint = '`bash .ci/run` installs it'): void {
  if (!ok) throw new Error(`${what} is missing: ${hint}`);
}

/** A shared tool script, which must exist. */
export function sharedTool(rel: string): string {
  const p = join(SHARED_TOOLS, rel);
  requireTool(existsSync(p), p, 'the shared/ checkout must sit beside the repository (or set TSMAKEFS_SHARED_TOOLS)');
  return p;
}
