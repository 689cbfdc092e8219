// The command line, which builds on a thread of its own, has its main
// thread build the directory ZAPs ahead of the ZPL writer
// (src/zpl/dirzaps.ts); in process (TSMAKEFS_IN_PROCESS=1) the writer builds
// them itself. A tree of many directories, enough entries for many batches
// and every slot in use, a directory larger than a slot and fat-ZAP names
// must give the same bytes both ways, and zdb must accept them.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { sha256File, TmpArea, TSMAKEFS_BIN } from '../helpers/build.js';
import { zdbCheck } from '../helpers/oracles.js';
import { run } from '../helpers/proc.js';

const MIN = 60_000;
const tmp = new TmpArea('dirzaps');
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

describe('directory ZAPs built on the main thread', () => {
  test('the same image as when the build thread builds them itself, and zdb accepts it', async () => {
    const stage = tmp.dir('stage');
    expect(makeTree(stage)).toBeGreaterThan(30_000);
    const args = (img: string) => ['-t', 'zfs', '-o', 'poolname=dz', '-o', 'seed=dirzaps', img, stage];

    const hosted = join(tmp.dir('hosted'), 'dz.img');
    const b = await run(process.execPath, [TSMAKEFS_BIN, ...args(hosted)], { env: { ...process.env, TSMAKEFS_DIRZAPS: undefined } });
    expect(b.status, b.stderr).toBe(0);

    const inline = join(tmp.dir('inline'), 'dz.img');
    const r = await run(process.execPath, [TSMAKEFS_BIN, ...args(inline)], { env: { ...process.env, TSMAKEFS_IN_PROCESS: '1' } });
    expect(r.status, r.stderr).toBe(0);

    expect(await sha256File(hosted)).toBe(await sha256File(inline));
    const z = await zdbCheck(hosted);
    expect(z.ok, z.output).toBe(true);
  }, 10 * MIN);
});
