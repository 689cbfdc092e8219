// Running the real CLI (bin/tsmakefs over the compiled dist/, as a user
// would) and the temporary directories the e2e tests work in.

import { createHash } from 'node:crypto';
import {
  chmodSync, createReadStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, requireTool, run } from './proc.js';

export const TSMAKEFS_BIN = join(REPO_ROOT, 'bin', 'tsmakefs');

export interface BuildResult {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** The command line, for messages. */
  command: string;
}

/**
 * `node bin/tsmakefs ...args` from the repository root. Never throws on a
 * failed build: assert on status (and print stderr) in the test.
 */
export async function buildImage(args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<BuildResult> {
  requireTool(existsSync(TSMAKEFS_BIN), TSMAKEFS_BIN, 'it is part of the repository');
  requireTool(existsSync(join(REPO_ROOT, 'dist')), 'dist/ (the compiled writer)', '`npm test` and `npm run build` compile it');
  const r = await run(process.execPath, [TSMAKEFS_BIN, ...args], { timeoutMs: opts.timeoutMs ?? 15 * 60_000 });
  let stderr = r.stderr;
  if (r.timedOut) stderr += `\n[tsmakefs killed after ${opts.timeoutMs ?? 15 * 60_000} ms]`;
  return {
    status: r.timedOut ? null : r.status,
    stdout: r.stdout,
    stderr,
    ms: r.ms,
    command: ['tsmakefs', ...args].map(shellQuote).join(' '),
  };
}

/** A failure message for a build that should have worked. */
export function describeBuild(b: BuildResult): string {
  return `${b.command}\nexit ${b.status} after ${b.ms} ms\n--- stderr:\n${b.stderr}${b.stdout ? `--- stdout:\n${b.stdout}` : ''}`;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** sha256 of a file (streamed; images can be large and sparse). */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

// ---------------------------------------------------------------- temporary directories

/** True when KEEP_TMP=1: temporary trees, images and results are left for inspection. */
export const KEEP_TMP = process.env.KEEP_TMP === '1';

/**
 * One temporary area (a directory under os.tmpdir()) for a test file.
 * Call cleanup() in afterAll; with KEEP_TMP=1 it keeps everything and says where.
 */
export class TmpArea {
  readonly root: string;
  private n = 0;

  constructor(label: string) {
    this.root = mkdtempSync(join(tmpdir(), `tsmakefs-${label}-`));
  }

  /** A new, empty directory with a unique name (the label is kept for readability). */
  dir(label: string): string {
    const p = join(this.root, `${String(++this.n).padStart(3, '0')}-${label}`);
    mkdirSync(p);
    return p;
  }

  /** A path for a new file (not created) in its own fresh directory. */
  file(name: string): string {
    return join(this.dir(name.replace(/\W+/g, '_')), name);
  }

  cleanup(): void {
    if (KEEP_TMP) {
      console.log(`KEEP_TMP=1: kept ${this.root}`);
      return;
    }
    removeTree(this.root);
  }
}

/**
 * rm -rf that also copes with directories of mode 0000/0555 when not root
 * (the permission trees make some).
 */
export function removeTree(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch {
    // Names may be any bytes: walk with Buffer paths.
    const open = (p: Buffer): void => {
      let st;
      try { st = lstatSync(p); } catch { return; }
      if (!st.isDirectory()) return;
      try { chmodSync(p, 0o700); } catch { /* not ours */ }
      for (const name of readdirSync(p, { encoding: 'buffer' })) open(Buffer.concat([p, Buffer.from('/'), name]));
    };
    open(Buffer.from(path));
    rmSync(path, { recursive: true, force: true });
  }
}
