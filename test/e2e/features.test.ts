// Issue 5, "Done when": feature sets, lz4, holes and embedded blocks, judged
// by zdb, GRUB and the OpenZFS kernel.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { buildImage, describeBuild, TmpArea } from '../helpers/build.js';
import { diffListings, grubCmp, listingOf, zdbCheck } from '../helpers/oracles.js';
import { Prng, stampTimes } from '../helpers/trees.js';
import { vmCheckWithSteps } from '../helpers/vmextra.js';

const tmp = new TmpArea('features');
afterAll(() => tmp.cleanup());
const MIB = 2 ** 20;

const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'zfs', 'pool', 'dataset', 'block', 'pointer', 'tree', 'leaf', 'label'];

function textOf(n: number, seed: string): string {
  const r = new Prng(seed);
  const out: string[] = [];
  let len = 0;
  while (len < n) {
    const w = WORDS[r.bytes(1)[0]! % WORDS.length]!;
    out.push(w);
    len += w.length + 1;
  }
  return out.join(' ').slice(0, n);
}

function sparse(path: string, size: number): void {
  const fd = openSync(path, 'w');
  writeSync(fd, Buffer.from('!'), 0, 1, size - 1);
  closeSync(fd);
}

/** Text, binaries, zero-filled and sparse files, tiny files. */
function mixedTree(dir: string): void {
  mkdirSync(join(dir, 'doc'), { recursive: true });
  for (let i = 0; i < 4; i++) writeFileSync(join(dir, 'doc', `text${i}.txt`), textOf(400_000 + i * 7_777, `t${i}`));
  writeFileSync(join(dir, 'random.bin'), new Prng('bin').bytes(700_000));
  writeFileSync(join(dir, 'zeros'), Buffer.alloc(300_000));
  sparse(join(dir, 'sparse'), 8 * MIB + 5);
  writeFileSync(join(dir, 'tiny'), 'hi\n');
  writeFileSync(join(dir, 'small.conf'), 'key=value\n'.repeat(9));
  // xattrs: small ones stay in the bonus, a 3000-byte one forces a spill block
  setfattr(join(dir, 'small.conf'), 'user.note', 'hello');
  setfattr(join(dir, 'doc'), 'user.dir', 'on a directory');
  setfattr(join(dir, 'random.bin'), 'user.big', `0x${Buffer.from(new Prng('xa').bytes(3000)).toString('hex')}`);
  setfattr(join(dir, 'random.bin'), 'trusted.second', 'x');
  stampTimes(dir);
}

function setfattr(path: string, name: string, value: string): void {
  const r = spawnSync('setfattr', ['-n', name, '-v', value, path]);
  if (r.status !== 0) throw new Error(`setfattr is needed (apt-get install attr): ${r.stderr}`);
}

const SETS = ['legacy', 'grub2-2.06', 'openzfs-2.0-freebsd', 'openzfs-2.1-freebsd', 'openzfs-2.2'];

describe.each(SETS)('compatibility=%s', (set) => {
  test('zdb, the kernel (features, upgrade, compressratio) and GRUB where it applies', async () => {
    const stage = tmp.dir(`mixed-${set}`);
    mixedTree(stage);
    const img = join(tmp.dir(`img-${set}`), 'f.img');
    const b = await buildImage(['-t', 'zfs', '-s', '256m', '-o', `poolname=feat,rootpath=/,compatibility=${set}`, img, stage]);
    expect(b.status, describeBuild(b)).toBe(0);
    const z = await zdbCheck(img);
    expect(z.ok, z.output).toBe(true);

    if (set.startsWith('grub2') || set === 'legacy') {
      for (const f of ['doc/text0.txt', 'random.bin', 'zeros', 'sparse', 'tiny', 'small.conf']) {
        const g = await grubCmp(img, `/${f}`, join(stage, f));
        expect(g.ok, `${f}: ${g.output}`).toBe(true);
      }
    }

    const vm = await vmCheckWithSteps(img, [
      { name: 'x-features', command: 'zpool get -H -o property,value all "$POOL" | grep feature@' },
      { name: 'x-ratio', command: 'zfs get -H -p -o value compressratio "$POOL"' },
      { name: 'x-upgrade', command: 'zpool upgrade "$POOL" && zpool status -x "$POOL"' },
    ], { extraArgs: ['--xattrs'] });
    expect(vm.result, vm.output).toMatch(/import=PASS scrub=PASS mount=PASS listing=PASS writetest=PASS export=PASS/);
    const want = await listingOf(stage, { xattrs: true });
    expect(want).toContain('user.big');
    expect(diffListings(want, vm.listing)).toBe('');
    const feats = new Map(vm.sections.get('x-features')!.text.trim().split('\n').map((l) => l.split('\t') as [string, string]));
    if (set === 'legacy') {
      for (const [, v] of feats) expect(v).toBe('disabled');
    } else {
      expect(feats.get('feature@lz4_compress')).toBe('active');
      expect(feats.get('feature@embedded_data')).toBe('active');
      expect(feats.get('feature@hole_birth')).toBe('active');
      // every space map carries a histogram and counts in the refcount
      expect(feats.get('feature@spacemap_histogram')).toBe('active');
      // the kernel's first writable mount upgrades user/project accounting, which
      // extends the dataset objects: enabled in the image, active after that
      if (set.startsWith('grub2')) expect(feats.get('feature@extensible_dataset')).toBe('disabled');
      else expect(['enabled', 'active']).toContain(feats.get('feature@extensible_dataset'));
      const ratio = Number(vm.sections.get('x-ratio')!.text.trim());
      expect(ratio, 'compressratio of a text-heavy pool').toBeGreaterThan(2);
    }
    expect(vm.sections.get('x-upgrade')!.rc, vm.sections.get('x-upgrade')!.text).toBe(0);
  }, 900_000);
});

test('a 1 GiB sparse file with one data byte takes under 1 MiB', async () => {
  const stage = tmp.dir('sparse');
  sparse(join(stage, 'big-sparse'), 2 ** 30);
  const img = join(tmp.dir('sparse-img'), 's.img');
  const b = await buildImage(['-t', 'zfs', '-s', '128m', '--json', '-o', 'poolname=sp', img, stage]);
  expect(b.status, describeBuild(b)).toBe(0);
  const allocated = (JSON.parse(b.stdout) as { allocated: number }).allocated;
  expect(allocated).toBeLessThan(MIB);
  expect(statSync(img).blocks * 512).toBeLessThan(2 * MIB);
  const z = await zdbCheck(img);
  expect(z.ok, z.output).toBe(true);
}, 300_000);

describe("makefs's compression scenario", () => {
  test.each(['off', 'on', 'lz4', 'zle'])('compression=%s on the pool, off on a child', async (alg) => {
    const stage = tmp.dir(`comp-${alg}`);
    mkdirSync(join(stage, 'dir'));
    mkdirSync(join(stage, 'dir2'));
    writeFileSync(join(stage, 'dir', 'text'), textOf(300_000, alg));
    writeFileSync(join(stage, 'dir2', 'text'), textOf(300_000, `${alg}2`));
    stampTimes(stage);
    const img = join(tmp.dir(`comp-img-${alg}`), 'c.img');
    const b = await buildImage(['-t', 'zfs', '-s', '256m', '-o', `poolname=cmp,fs=cmp;compression=${alg},fs=cmp/dir,fs=cmp/dir2;compression=off`, img, stage]);
    expect(b.status, describeBuild(b)).toBe(0);
    const z = await zdbCheck(img);
    expect(z.ok, z.output).toBe(true);
  }, 300_000);
});

test('compression on worker threads: the image does not depend on the number of workers', async () => {
  const stage = tmp.dir('workers');
  mixedTree(stage);
  const digests = new Set<string>();
  // (the image writer compresses too when it is idle; without one, '0'
  // leaves every block to the build thread)
  for (const [workers, writer] of [['0', '1'], ['1', '1'], ['3', '1'], ['0', '0']] as const) {
    const img = join(tmp.dir(`workers-${workers}-${writer}`), 'w.img');
    const r = spawnSync(process.execPath, ['bin/tsmakefs', '-t', 'zfs', '-s', '256m', '-o', 'poolname=w', img, stage], {
      env: { ...process.env, TSMAKEFS_WORKERS: workers, TSMAKEFS_IMAGE_WRITER: writer }, encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    digests.add(createHash('sha256').update(readFileSync(img)).digest('hex'));
  }
  expect(digests.size).toBe(1);
}, 300_000);
