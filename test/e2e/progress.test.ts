// The progress line as a user sees it: the real command on a pseudo-terminal
// (util-linux script(1)), with the build on its worker thread. On a terminal
// the line is drawn and erased before the summary; with CI=true, -q, or
// stderr not a terminal there is not a single carriage return.

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildImage, describeBuild, TmpArea, TSMAKEFS_BIN } from '../helpers/build.js';
import { REPO_ROOT, which } from '../helpers/proc.js';
import { Prng } from '../helpers/trees.js';

const MIB = 2 ** 20;
const tmp = new TmpArea('progress');
afterAll(() => tmp.cleanup());

let stage: string;
beforeAll(() => {
  stage = tmp.dir('stage');
  const rng = new Prng('progress');
  for (let i = 0; i < 3; i++) writeFileSync(join(stage, `f${i}`), rng.bytes(8 * MIB));
});

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** tsmakefs on a pseudo-terminal; returns what the terminal received (stdout and stderr together). */
function onTerminal(args: string[], env: NodeJS.ProcessEnv): { status: number | null; output: string } | undefined {
  if (which('script') === undefined) return undefined;
  const cmd = [process.execPath, TSMAKEFS_BIN, ...args].map(quote).join(' ');
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, output: r.stdout };
}

const baseEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, COLUMNS: '100' };
  delete env.CI;
  return env;
};

describe.concurrent('progress on a terminal', () => {
  test('drawn, redrawn in place, erased before the -v summary', async () => {
    const img = join(tmp.dir('tty'), 'p.img');
    const r = onTerminal(['-v', '-o', 'poolname=prog', img, stage], baseEnv());
    if (r === undefined) {
      console.log('skipped: script(1) (util-linux) is not installed');
      return;
    }
    expect(r.status, r.output).toBe(0);
    const out = r.output.replace(/\r\n/g, '\n'); // the terminal's own line endings
    expect(out).toMatch(/^\rtsmakefs: reading the input {2}0:0\d/);
    expect(out).toMatch(/\rtsmakefs: \d+\/3 files {2}[\d.]+ [KMG]?i?B\/24 MiB \d+%/);
    expect(out).toContain('writing metadata');
    // erased (blanks between two carriage returns) right before the summary
    expect(out).toMatch(/\r +\rimage {8}/);
    expect(out).toMatch(/^prog +\/prog +24 MiB +4 +3 +24 MiB +1\.\d\dx$/m);
  });

  test.each([
    ['CI=true', ['-o', 'poolname=prog'], { CI: 'true' }],
    ['-q', ['-q', '-o', 'poolname=prog'], {}],
  ])('nothing with %s', async (_name, args, extra) => {
    const img = join(tmp.dir('quiet'), 'p.img');
    const r = onTerminal([...args, img, stage], { ...baseEnv(), ...extra });
    if (r === undefined) {
      console.log('skipped: script(1) (util-linux) is not installed');
      return;
    }
    expect(r.status, r.output).toBe(0);
    expect(r.output).toBe('');
  });

  test('nothing when stderr is not a terminal', async () => {
    const img = join(tmp.dir('pipe'), 'p.img');
    const b = await buildImage(['-o', 'poolname=prog', img, stage]);
    expect(b.status, describeBuild(b)).toBe(0);
    expect(b.stderr).toBe('');
    expect(b.stdout).toBe('');
  });
});
