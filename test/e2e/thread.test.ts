// The command line builds on a thread of its own, the image written by its
// main thread; in process (TSMAKEFS_IN_PROCESS=1) one thread does both. A
// tree of many directories, one of 20,000 entries (a fat ZAP of many
// leaves, packed in a buffer of its own) and a fat-ZAP name must give the
// same bytes both ways, and zdb must accept them.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { sha256File, TmpArea, TSMAKEFS_BIN } from '../helpers/build.js';
import { zdbCheck } from '../helpers/oracles.js';
import { run } from '../helpers/proc.js';

const MIN = 60_000;
const tmp = new TmpArea('thread');
afterAll(() => tmp.cleanup());

function makeTree(root: string): number {
  let entries = 0;
  for (let d = 0; d < 400; d++) {
    const dir = join(root, `d${d % 20}`, `sub${d}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < (d * 7) % 90; f++, entries++) writeFileSync(join(dir, `f${f}`), d % 3 === 0 ? '' : `${d}/${f}\n`);
  }
  const big = join(root, 'big');
  mkdirSync(big);
  for (let f = 0; f < 20_000; f++, entries++) writeFileSync(join(big, `entry-${f}`), '');
  writeFileSync(join(root, `${'long-name-'.repeat(10)}fat`), 'a name too long for a micro ZAP\n');
  return entries;
}

describe('the build thread', () => {
  test('the same image as a build in process, and zdb accepts it', async () => {
    const stage = tmp.dir('stage');
    expect(makeTree(stage)).toBeGreaterThan(30_000);
    const args = (img: string) => ['-t', 'zfs', '-o', 'poolname=thr', '-o', 'seed=thread', img, stage];

    const threaded = join(tmp.dir('threaded'), 'dz.img');
    const b = await run(process.execPath, [TSMAKEFS_BIN, ...args(threaded)], { env: { ...process.env, TSMAKEFS_IN_PROCESS: undefined } });
    expect(b.status, b.stderr).toBe(0);

    const inline = join(tmp.dir('inline'), 'dz.img');
    const r = await run(process.execPath, [TSMAKEFS_BIN, ...args(inline)], { env: { ...process.env, TSMAKEFS_IN_PROCESS: '1' } });
    expect(r.status, r.stderr).toBe(0);

    expect(await sha256File(threaded)).toBe(await sha256File(inline));
    const z = await zdbCheck(threaded);
    expect(z.ok, z.output).toBe(true);
  }, 10 * MIN);
});
