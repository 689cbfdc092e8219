// Issue 8: auto-sized images (no -s) pass zdb and stay within the stated
// margin: used space + the 64 MiB MOS allowance + -o free=PERCENT (default
// 10), in whole metaslabs, at least 64 MiB.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { buildImage, describeBuild, TmpArea } from '../helpers/build.js';
import { zdbCheck } from '../helpers/oracles.js';
import { Prng, stampTimes } from '../helpers/trees.js';

const tmp = new TmpArea('autosize');
afterAll(() => tmp.cleanup());
const MIB = 2 ** 20;
const LABELS = 4.5 * MIB;
const ALLOWANCE = 64 * MIB;

const TREES: Record<string, (dir: string) => void> = {
  empty: () => {},
  'random 150 MiB': (dir) => {
    for (let i = 0; i < 3; i++) writeFileSync(join(dir, `r${i}`), new Prng(`r${i}`).bytes(50 * MIB));
  },
  'many small files': (dir) => {
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(dir, `d${d}`));
      for (let f = 0; f < 200; f++) writeFileSync(join(dir, `d${d}`, `f${f}`), new Prng(`${d}/${f}`).bytes(3000 + f));
    }
  },
};

describe.each(Object.keys(TREES))('auto-size: %s', (name) => {
  test.each([undefined, 30])('free=%s', async (free) => {
    const stage = tmp.dir(name.replace(/\W+/g, '-'));
    TREES[name]!(stage);
    stampTimes(stage);
    const img = join(tmp.dir('img'), 'a.img');
    const o = free === undefined ? 'poolname=auto' : `poolname=auto,free=${free}`;
    const b = await buildImage(['-t', 'zfs', '--json', '-o', o, img, stage]);
    expect(b.status, describeBuild(b)).toBe(0);
    const s = JSON.parse(b.stdout) as { size: number; allocated: number; metaslabSize: number };
    const pct = (free ?? 10) / 100;
    const asize = s.size - LABELS;
    expect(asize % s.metaslabSize).toBe(0);
    expect(s.size).toBeGreaterThanOrEqual(64 * MIB);
    // room for the promised margin ...
    expect(asize - s.allocated).toBeGreaterThanOrEqual(s.allocated * pct);
    // ... and no more than one metaslab beyond used + allowance + margin (or the 64 MiB floor)
    expect(asize).toBeLessThanOrEqual(Math.max((s.allocated + ALLOWANCE) * (1 + pct) + s.metaslabSize, 64 * MIB));
    const z = await zdbCheck(img);
    expect(z.ok, z.output).toBe(true);
  }, 300_000);
});
