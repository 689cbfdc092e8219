// Issue 3, "Done when": dataset trees judged by zdb, GRUB and the OpenZFS
// kernel (one guest boot per image, with zfs get/list/snapshot/destroy run
// in the same boot after the standard check).
import { chmodSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { buildImage, describeBuild, TmpArea } from '../helpers/build.js';
import { diffListings, grubCmp, listingOf, zdbCheck } from '../helpers/oracles.js';
import { Prng, stampTimes } from '../helpers/trees.js';
import { vmCheckWithSteps } from '../helpers/vmextra.js';

const MIB = 2 ** 20;
const tmp = new TmpArea('datasets');
afterAll(() => tmp.cleanup());

function file(path: string, size: number, seed: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, new Prng(seed).bytes(size));
}

/** A FreeBSD-like staged tree with data in several datasets; every mountpoint directory exists. */
function releaseTree(dir: string): Record<string, number> {
  const data: Record<string, number> = {};
  const put = (rel: string, size: number, ds: string) => {
    file(join(dir, rel), size, rel);
    data[ds] = (data[ds] ?? 0) + size;
  };
  put('etc/motd', 100, 'zroot/ROOT/default');
  put('boot/loader.conf', 20, 'zroot/ROOT/default');
  put('usr/bin/tool', 3 * MIB + 17, 'zroot/ROOT/default');
  put('usr/src/sys/kern/kern.c', 2 * MIB, 'zroot/usr/src');
  put('var/log/messages', MIB + 5, 'zroot/var/log');
  put('home/user/.profile', 300, 'zroot/home');
  put('home/user/data.bin', 2 * MIB, 'zroot/home');
  for (const d of ['tmp', 'usr/ports', 'usr/obj', 'var/audit', 'var/crash', 'var/mail', 'var/tmp']) mkdirSync(join(dir, d), { recursive: true });
  chmodSync(join(dir, 'tmp'), 0o1777);
  stampTimes(dir);
  return data;
}

describe('the FreeBSD release layout', () => {
  test('zdb, GRUB and the kernel accept it; properties, mounts, used figures, snapshot and destroy', async () => {
    const stage = tmp.dir('release');
    const data = releaseTree(stage);
    const img = join(tmp.dir('release-img'), 'release.img');
    const b = await buildImage(['-t', 'zfs', '-s', '1g', '-o', 'poolname=zroot,preset=freebsd',
      '-o', 'fs=zroot/home;quota=1g;reservation=8m;user:note=hello', '-o', 'fs=zroot/usr/src;recordsize=16k;compression=zle', img, stage]);
    expect(b.status, describeBuild(b)).toBe(0);

    const z = await zdbCheck(img);
    expect(z.ok, z.output).toBe(true);
    const g = await grubCmp(img, '(loop0)/ROOT/default@/usr/bin/tool', join(stage, 'usr/bin/tool'));
    expect(g.ok, g.output).toBe(true);

    const vm = await vmCheckWithSteps(img, [
      { name: 'x-get', command: 'zfs get -H -o name,property,value,source -r all "$POOL"' },
      { name: 'x-list', command: 'zfs list -H -p -o name,used,usedds,usedchild,usedsnap,refer -r "$POOL"' },
      { name: 'x-bootfs', command: 'zpool get -H -o value bootfs "$POOL"' },
      { name: 'x-snapshot', command: 'zfs snapshot -r "$POOL@t1" && zfs list -H -t snapshot -o name -r "$POOL"' },
      { name: 'x-destroy', command: 'zfs destroy -r "$POOL/var/crash" && ! zfs list "$POOL/var/crash"' },
    ]);
    expect(vm.result, vm.output).toMatch(/import=PASS scrub=PASS mount=PASS listing=PASS writetest=PASS export=PASS/);
    const want = await listingOf(stage);
    expect(diffListings(want, vm.listing)).toBe('');

    const get = vm.sections.get('x-get')!;
    expect(get.rc).toBe(0);
    const local = new Map<string, string>();
    for (const line of get.text.split('\n')) {
      const [name, prop, value, source] = line.split('\t');
      if (source === 'local') local.set(`${name} ${prop}`, value!);
    }
    const expectLocal: [string, string, string | null][] = [
      ['zroot', 'mountpoint', 'none'], ['zroot/ROOT', 'mountpoint', 'none'],
      ['zroot/ROOT/default', 'mountpoint', null], ['zroot/ROOT/default', 'canmount', 'noauto'],
      ['zroot/home', 'mountpoint', null], ['zroot/home', 'quota', '1G'], ['zroot/home', 'reservation', '8M'],
      ['zroot/home', 'user:note', 'hello'],
      ['zroot/tmp', 'exec', 'on'], ['zroot/tmp', 'setuid', 'off'], ['zroot/usr', 'canmount', 'off'],
      ['zroot/usr/ports', 'setuid', 'off'], ['zroot/usr/src', 'recordsize', '16K'], ['zroot/usr/src', 'compression', 'zle'],
      ['zroot/var', 'canmount', 'off'], ['zroot/var/audit', 'exec', 'off'], ['zroot/var/log', 'setuid', 'off'],
      ['zroot/var/log', 'exec', 'off'], ['zroot/var/mail', 'atime', 'on'], ['zroot/var/tmp', 'setuid', 'off'],
    ];
    for (const [ds, prop, value] of expectLocal) {
      const got = local.get(`${ds} ${prop}`);
      expect(got, `${ds} ${prop} should be local`).toBeDefined();
      if (value !== null) expect(got, `${ds} ${prop}`).toBe(value);
    }
    expect(vm.sections.get('x-bootfs')!.text.trim()).toBe('zroot/ROOT/default');

    // every canmount=on/noauto dataset with a path mountpoint was mounted
    const mounted = readResultsSection(vm.outDir, 'mounted-datasets');
    for (const line of mounted.split('\n').filter(Boolean)) {
      const [name, mp, canmount, isMounted] = line.split('\t');
      if (canmount !== 'off' && mp!.startsWith('/')) expect(isMounted, `${name} mounted`).toBe('yes');
    }

    // used figures: within 2 MiB of the data in each dataset
    const list = vm.sections.get('x-list')!;
    expect(list.rc).toBe(0);
    for (const line of list.text.split('\n').filter(Boolean)) {
      const [name, used, usedds, usedchild, usedsnap] = line.split('\t').map((x, i) => (i === 0 ? x : Number(x))) as [string, number, number, number, number];
      expect(usedsnap, name).toBe(0);
      const d = data[name] ?? 0;
      expect(usedds, `${name} usedds`).toBeGreaterThanOrEqual(d);
      expect(usedds, `${name} usedds`).toBeLessThanOrEqual(d + 2 * MIB);
      if (name !== 'zroot') expect(used, `${name} used`).toBeGreaterThanOrEqual(usedds + usedchild);
    }
    expect(vm.sections.get('x-snapshot')!.rc, vm.sections.get('x-snapshot')!.text).toBe(0);
    expect(vm.sections.get('x-snapshot')!.text).toContain('zroot/ROOT/default@t1');
    expect(vm.sections.get('x-destroy')!.rc, vm.sections.get('x-destroy')!.text).toBe(0);
  }, 900_000);
});

function readResultsSection(outDir: string, name: string): string {
  const path = join(outDir, 'results.txt');
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const m = new RegExp(`==== BEGIN ${name} ====\\n([\\s\\S]*?)==== END ${name} rc=`).exec(text);
  return m ? m[1]! : '';
}

// ------------------------------------------------- makefs's dataset scenarios

interface Scenario {
  name: string;
  files: string[];
  dirs?: string[];
  opts: string[];
}

const SCENARIOS: Scenario[] = [
  { name: 'multi_dataset_1', files: ['dir1/a', 'dir2/b'], opts: ['fs=P/dir1', 'fs=P/dir2'] },
  { name: 'multi_dataset_2', files: ['dir1/a', 'dir2/b'], opts: ['rootpath=/', 'fs=P/dir1;mountpoint=/', 'fs=P;mountpoint=/dir1'] },
  { name: 'multi_dataset_3', files: ['dir1/a'], opts: ['fs=P/dir1', 'fs=P/dir2'] },
  { name: 'multi_dataset_4', files: ['dir1/a'], opts: ['fs=P/dir1;canmount=noauto;mountpoint=none'] },
  { name: 'multi_dataset_5', files: ['dir1/a'], opts: ['fs=P/dir1;canmount=noauto;mountpoint=legacy'] },
  { name: 'dataset_removal', files: [], dirs: ['dir'], opts: ['fs=P/dir'] },
  { name: 'root_props', files: ['a', 'b/c'], opts: ['fs=P;atime=off;setuid=off'] },
  { name: 'snapshot', files: ['dir/hello', 'goodbye'], opts: [] },
];

describe.each(SCENARIOS)('makefs scenario $name', (sc) => {
  test('builds and zdb finds nothing wrong', async () => {
    const stage = tmp.dir(sc.name);
    for (const f of sc.files) file(join(stage, f), 1000, f);
    for (const d of sc.dirs ?? []) mkdirSync(join(stage, d), { recursive: true });
    stampTimes(stage);
    const pool = sc.name.replace(/_/g, '');
    const img = join(tmp.dir(`${sc.name}-img`), 'x.img');
    const o = ['poolname=' + pool, ...sc.opts.map((x) => x.replace(/\bP\b/g, pool))];
    const b = await buildImage(['-t', 'zfs', '-s', '256m', ...o.flatMap((x) => ['-o', x]), img, stage]);
    expect(b.status, describeBuild(b)).toBe(0);
    const z = await zdbCheck(img);
    expect(z.ok, z.output).toBe(true);
  }, 300_000);
});

test('used_space_props: usedds/used/usedchild in the kernel', async () => {
  const stage = tmp.dir('used');
  file(join(stage, 'foo'), 17 * MIB, 'foo');
  file(join(stage, 'dir/bar'), 39 * MIB, 'bar');
  stampTimes(stage);
  const img = join(tmp.dir('used-img'), 'u.img');
  const b = await buildImage(['-t', 'zfs', '-s', '1g', '-o', 'poolname=usedpool,rootpath=/,fs=usedpool/dir', img, stage]);
  expect(b.status, describeBuild(b)).toBe(0);
  const z = await zdbCheck(img);
  expect(z.ok, z.output).toBe(true);
  const vm = await vmCheckWithSteps(img, [
    { name: 'x-list', command: 'zfs list -H -p -o name,used,usedds,usedchild,usedsnap -r "$POOL"' },
  ]);
  expect(vm.result, vm.output).toMatch(/import=PASS scrub=PASS mount=PASS listing=PASS writetest=PASS export=PASS/);
  const rows = new Map(vm.sections.get('x-list')!.text.split('\n').filter(Boolean).map((l) => {
    const [n, ...v] = l.split('\t');
    return [n!, v.map(Number)] as const;
  }));
  const [pUsed, pDs, pChild, pSnap] = rows.get('usedpool')!;
  const [cUsed, cDs, cChild, cSnap] = rows.get('usedpool/dir')!;
  expect(pDs).toBeGreaterThan(17 * MIB); expect(pDs).toBeLessThanOrEqual(19 * MIB);
  expect(cDs).toBeGreaterThan(39 * MIB); expect(cDs).toBeLessThanOrEqual(41 * MIB);
  expect(pChild).toBeGreaterThan(39 * MIB); expect(pChild).toBeLessThanOrEqual(41 * MIB);
  expect(cChild).toBe(0);
  expect(pUsed).toBeGreaterThan(56 * MIB); expect(pUsed).toBeLessThanOrEqual(60 * MIB);
  expect(cUsed).toBe(cDs);
  expect(pSnap).toBe(0); expect(cSnap).toBe(0);
}, 900_000);

// ---------------------------------------------------------------- errors

describe('dataset errors: one line, non-zero exit, no image', () => {
  const cases: [string, string[], RegExp, (stage: string) => void][] = [
    ['missing parent', ['fs=e/a/b'], /no parent at 'e\/a' for filesystem 'e\/a\/b'/, () => {}],
    ['duplicate property', ['fs=e/a;atime=on;atime=off'], /property 'atime' already set/, () => {}],
    ['unknown property', ['fs=e/a;colour=blue'], /unknown property 'colour'/, () => {}],
    ['mountpoint outside rootpath', ['rootpath=/e', 'fs=e/a;mountpoint=/elsewhere'], /not prefixed by the root path/, () => {}],
    ['declared twice', ['fs=e/a', 'fs=e/a'], /dataset 'e\/a' is declared twice/, () => {}],
    ['bootfs not a dataset', ['bootfs=e/nope'], /no mounted dataset matches bootfs/, () => {}],
    ['hard link across datasets', ['fs=e/a'], /hard link across datasets: .*\/x.*\/a\/y/, (stage) => {
      mkdirSync(join(stage, 'a'));
      writeFileSync(join(stage, 'x'), 'data');
      linkSync(join(stage, 'x'), join(stage, 'a/y'));
    }],
  ];
  test.each(cases)('%s', async (_name, opts, message, prepare) => {
    const stage = tmp.dir('err');
    prepare(stage);
    const dir = tmp.dir('err-img');
    const img = join(dir, 'e.img');
    const b = await buildImage(['-t', 'zfs', '-s', '128m', '-o', 'poolname=e', ...opts.flatMap((x) => ['-o', x]), img, stage]);
    expect(b.status).not.toBe(0);
    expect(b.status).not.toBeNull();
    const lines = b.stderr.trim().split('\n');
    expect(lines, b.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(readdirSync(dir)).toEqual([]);
  }, 60_000);
});
