// Seeded random trees and options (helpers/random-tree.ts), each built by
// the CLI and judged by zdb and the OpenZFS kernel: the guest's listing of
// the mounted pool (contents, owners, modes, times, links, devices, xattrs)
// must equal the staging tree's. The fixed trees of the other tests each
// aim at one feature; these mix them, through the threaded build (read
// ring, copies, directory ZAPs, compression threads) as a user meets it.
// A tree given as a tarball or a METALOG must also give the very image its
// directory gives (README, "Inputs").
//
// TSMAKEFS_STRESS=N runs seeds 1..N instead of the suite's few; a comma
// list ("7,19") runs those seeds. A failing seed is named in the test's
// title, and KEEP_TMP=1 keeps its tree and image.

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { buildImage, describeBuild, sha256File, TmpArea } from '../helpers/build.js';
import { diffListings, listingOf, vmCheck, zdbCheck } from '../helpers/oracles.js';
import { caseArgs, metalogOf, randomCase } from '../helpers/random-tree.js';

const tmp = new TmpArea('stress');
afterAll(() => tmp.cleanup());

function seeds(): string[] {
  const env = process.env.TSMAKEFS_STRESS;
  // (a METALOG, a tarball and two directories)
  if (env === undefined || env === '') return ['s1', 's2', 's7', 's10'];
  if (/^\d+$/.test(env)) return Array.from({ length: Number(env) }, (_, i) => `s${i + 1}`);
  return env.split(',').map((s) => (/^\d+$/.test(s) ? `s${s}` : s));
}

describe.each(seeds())('random case %s', (seed) => {
  test('zdb and the kernel agree with the staging tree', async () => {
    const stage = tmp.dir(`tree-${seed}`);
    const c = randomCase(stage, seed);
    const pool = 'stress';
    let input = stage;
    if (c.input === 'tar') {
      input = join(tmp.dir(`tar-${seed}`), 'stage.tar');
      const t = spawnSync('tar', ['--format=pax', '--sort=name', '--xattrs', '--xattrs-include=*', '--numeric-owner', '-cf', input, '-C', stage, '.'], { encoding: 'utf8' });
      expect(t.status, `tar: ${t.stderr}`).toBe(0);
    } else if (c.input === 'mtree') {
      input = join(tmp.dir(`mtree-${seed}`), 'METALOG');
      writeFileSync(input, metalogOf(stage));
    }
    const img = join(tmp.dir(`img-${seed}`), 'stress.img');
    const b = await buildImage([...caseArgs(c, pool), img, input]);
    const what = `seed ${seed}: ${c.entries} entries, ${c.bytes} bytes, input ${c.input}, ${describeBuild(b)}`;
    expect(b.status, what).toBe(0);

    const z = await zdbCheck(img);
    expect(z.ok, `${what}\n${z.output}`).toBe(true);

    const vm = await vmCheck(img, { pool, listingRoot: `/${pool}`, extraArgs: c.xattrs ? ['--xattrs'] : [], timeoutSec: 400 });
    expect(vm.result, `${what}\n${vm.output}`).toMatch(/import=PASS scrub=PASS mount=PASS listing=PASS writetest=PASS export=PASS/);
    // (listed without xattrs when the build leaves them out: the guest's listing must then show none)
    let want = await listingOf(stage, { xattrs: c.xattrs && !c.xattrsOff });
    if (c.timestamp !== undefined) want = want.replace(/ time=-?\d+/g, ` time=${c.timestamp}`);
    expect(diffListings(want, vm.listing), what).toBe('');

    if (c.input !== 'dir') {
      const fromDir = join(tmp.dir(`img-dir-${seed}`), 'stress.img');
      const d = await buildImage([...caseArgs(c, pool), fromDir, stage]);
      expect(d.status, describeBuild(d)).toBe(0);
      expect(await sha256File(fromDir), `${what}\nthe ${c.input} and the directory give different images`).toBe(await sha256File(img));
    }
  }, 900_000);
});
