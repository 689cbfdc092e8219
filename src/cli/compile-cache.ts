// Node's module compile cache (V8's code cache for tsmakefs's modules, kept
// between runs): every run and every thread it starts parses and compiles
// ~80 modules, 10-35 ms a run (bench/RESULTS.md, twenty-first round).
// Loaded by bin/tsmakefs before any other module of ours.
import module from 'node:module';
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/**
 * The user's own cache directory for it (created, mode 0700), rather than
 * Node's default: a fixed name in the shared /tmp that another user could
 * create first and fill. Undefined where there is none to be had. One level
 * at a time: a recursive mkdir spins forever where the kernel answers
 * ENOENT to every attempt (under /proc), in Node 20 to 24.
 */
export function userCompileCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  let base = env.XDG_CACHE_HOME;
  if (!base || !isAbsolute(base)) {
    const home = env.HOME || homedir();
    if (!home || !isAbsolute(home)) return undefined;
    base = join(home, '.cache');
  }
  const dir = join(base, 'tsmakefs', 'node-compile-cache');
  for (const d of [base, join(base, 'tsmakefs'), dir]) {
    try {
      mkdirSync(d, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
    }
  }
  return dir;
}

/**
 * Turn the cache on (Node 22.8 and later; older lines have no such call),
 * in NODE_COMPILE_CACHE if set, else in userCompileCacheDir(); the threads
 * take it from the environment they inherit. Returns the directory in use.
 */
export function enableCompileCache(): string | undefined {
  const enable = (module as { enableCompileCache?: (dir?: string) => { directory?: string } }).enableCompileCache;
  if (enable === undefined || process.env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  const dir = process.env.NODE_COMPILE_CACHE || userCompileCacheDir();
  if (dir === undefined) return undefined;
  const { directory } = enable(dir);
  if (directory !== undefined) process.env.NODE_COMPILE_CACHE = directory;
  return directory;
}
