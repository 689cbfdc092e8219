// The library API (src/index.ts): buildImage from a temporary directory,
// judged by our own reader (verifyImage against the same directory); the
// summary, progress and errors it reports; the building blocks it exports;
// and the package's "exports" entry, imported by name from the compiled dist/.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as api from '../../src/index.js';
import {
  buildImage, makeImage, openInputs, openPool, treeTotals, UserError, verifyImage, walkDirectories,
  type BuildProgress, type BuildSummary, type ImageOptions, type ImageSummary, type Inode, type InputPlan, type Progress,
} from '../../src/index.js';
import { REPO_ROOT } from '../helpers/proc.js';

const tmp = mkdtempSync(join(tmpdir(), 'tsmakefs-api-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const stage = join(tmp, 'stage');
const T = 1_700_000_000;
// compression on the calling thread: the worker module exists only compiled
const WORKERS = 0;

beforeAll(() => {
  mkdirSync(join(stage, 'etc'), { recursive: true });
  mkdirSync(join(stage, 'home', 'user'), { recursive: true });
  writeFileSync(join(stage, 'etc', 'rc.conf'), 'hostname="api"\n');
  writeFileSync(join(stage, 'home', 'user', 'notes.txt'), 'the quick brown fox\n'.repeat(20_000)); // 400 kB, compresses well
  writeFileSync(join(stage, 'random'), noise(300_000, 99)); // does not compress
  linkSync(join(stage, 'etc', 'rc.conf'), join(stage, 'etc', 'rc.conf.link'));
  symlinkSync('etc/rc.conf', join(stage, 'rc'));
});

/** xorshift32 bytes: incompressible, the same every run. */
function noise(n: number, seed: number): Buffer {
  const buf = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    buf.writeInt32LE(x | 0, i < n - 3 ? i : n - 4);
  }
  return buf;
}

function outDir(name: string): string {
  const d = join(tmp, name);
  mkdirSync(d);
  return d;
}

describe('buildImage', () => {
  let summary: BuildSummary;
  let image: string;
  const progress: BuildProgress[] = [];

  beforeAll(async () => {
    image = join(outDir('one'), 'api.img');
    summary = await buildImage({
      image, inputs: [stage], poolName: 'apipool', size: '128m', timestamp: T, workers: WORKERS,
      datasets: ['apipool/home;compression=lz4'],
      onProgress: (p) => progress.push(p),
    });
  });

  test('writes an image our reader verifies against the input', async () => {
    const r = await verifyImage(image, { againstDir: stage, timestamp: { sec: T, nsec: 0 } });
    expect(r.problems).toEqual([]);
    expect(r.differences).toEqual([]);
    const pool = openPool(image);
    try {
      expect(pool.poolName).toBe('apipool');
    } finally {
      pool.close();
    }
  });

  test('each file is written in the blocks of the dataset it lands in (recordsize by path)', async () => {
    // stage/home/user/notes.txt (400 kB) and stage/random (300 kB): one
    // dataset with a 16K recordsize, the other at the default 128K; and the
    // same tree with every dataset alike, where no path is needed at all
    const blockSizes = async (datasets: string[]): Promise<number[]> => {
      const img = join(outDir(`rs-${datasets.length}`), 'rs.img');
      await buildImage({ image: img, inputs: [stage], poolName: 'rs', size: '128m', timestamp: T, workers: WORKERS, datasets });
      const pool = openPool(img);
      try {
        return [['rs', '/random'], ['rs/home', '/user/notes.txt']].map(([ds, path]) => {
          const fs = api.openFileSystem(pool, ds);
          return fs.os.dnode(fs.lookup(path!)).datablksz;
        });
      } finally {
        pool.close();
      }
    };
    expect(await blockSizes(['rs/home;recordsize=16k'])).toEqual([131072, 16384]);
    expect(await blockSizes(['rs;recordsize=16k', 'rs/home'])).toEqual([16384, 16384]);
  });

  test('reports the pool, each dataset and the inputs', () => {
    expect(summary.poolName).toBe('apipool');
    expect(summary.imageSize).toBe(128 * 2 ** 20);
    expect(summary.datasets.map((d) => [d.name, d.mountpoint])).toEqual([['apipool', '/apipool'], ['apipool/home', '/apipool/home']]);
    const [root, home] = summary.datasets;
    // root: /, etc, etc/rc.conf (two names), random, rc, and home's mountpoint directory
    expect(root!.entries).toBe(6);
    expect(root!.files).toBe(2);
    // home: its root, user, notes.txt
    expect(home!.entries).toBe(3);
    expect(home!.files).toBe(1);
    expect(home!.dataBytes).toBe(400_000);
    expect(home!.lsize).toBeGreaterThan(home!.psize * 4); // text compresses
    expect(summary.input).toEqual({ entries: 8, files: 3, bytes: 15 + 400_000 + 300_000 });
    expect(summary.allocated).toBeGreaterThan(300_000);
    expect(summary.allocated).toBeLessThan(summary.vdevAsize);
    expect(summary.elapsedMs).toBeGreaterThan(0);
  });

  test('reports progress: the scan, the totals, then data and metadata', () => {
    expect(progress[0]).toEqual({ phase: 'scan', files: 0, bytes: 0, written: 0 });
    const withTotal = progress.filter((p) => p.total !== undefined);
    expect(withTotal.length).toBeGreaterThan(0);
    expect(withTotal[0]!.total).toEqual(summary.input);
    // known once the walk is done: the data read meanwhile is part of it
    expect(withTotal[0]!.files).toBeLessThanOrEqual(summary.input!.files);
    expect(withTotal[0]!.bytes).toBeLessThanOrEqual(summary.input!.bytes);
    const phases = [...new Set(progress.map((p) => p.phase))];
    expect(phases).toEqual(['scan', 'data', 'metadata', 'done']);
    const last = progress.at(-1)!;
    expect(last).toMatchObject({ phase: 'done', files: 3, bytes: 700_015 });
    expect(last.written).toBeGreaterThan(0);
  });

  test('the same options give the same bytes as the command line (one path)', async () => {
    const { main } = await import('../../src/cli/main.js');
    const cli = join(outDir('cli'), 'cli.img');
    let err = '';
    const saved = process.env.TSMAKEFS_WORKERS;
    process.env.TSMAKEFS_WORKERS = String(WORKERS);
    try {
      const status = await main(
        ['-o', 'poolname=apipool', '-o', 'fs=apipool/home;compression=lz4', '-s', '128m', '-T', String(T), cli, stage],
        { stdout: () => {}, stderr: (t) => { err += t; } },
      );
      expect(status, err).toBe(0);
    } finally {
      if (saved === undefined) delete process.env.TSMAKEFS_WORKERS;
      else process.env.TSMAKEFS_WORKERS = saved;
    }
    const { readFileSync } = await import('node:fs');
    expect(Buffer.compare(readFileSync(cli), readFileSync(image))).toBe(0);
  });

  test('auto-sizes without a size', async () => {
    const img = join(outDir('auto'), 'auto.img');
    const s = await buildImage({ image: img, inputs: [stage], poolName: 'auto', workers: WORKERS, freePercent: 20 });
    expect(s.imageSize).toBeGreaterThanOrEqual(64 * 2 ** 20);
    expect(s.imageSize).toBeLessThan(256 * 2 ** 20);
    expect((await verifyImage(img)).problems).toEqual([]);
  });

  test('the freebsd preset and a Date as the timestamp', async () => {
    const img = join(outDir('preset'), 'preset.img');
    const s = await buildImage({
      image: img, inputs: [stage], poolName: 'zroot', preset: 'freebsd', size: 256 * 2 ** 20, workers: WORKERS,
      timestamp: new Date(T * 1000), datasets: ['zroot/var/log;quota=1g'],
    });
    expect(s.datasets.map((d) => d.name)).toContain('zroot/ROOT/default');
    const r = await verifyImage(img, { againstDir: stage, timestamp: { sec: T, nsec: 0 } });
    expect(r.problems).toEqual([]);
  });
});

describe('buildImage errors', () => {
  const cases: Array<[string, Partial<api.BuildOptions>, RegExp]> = [
    ['an invalid pool name', { poolName: '9lives' }, /^-o poolname: /],
    ['a dataset outside the pool', { datasets: ['other/x'] }, /dataset 'other\/x' must be a child of 'tank'/],
    ['a bad property value', { datasets: ['tank;atime=maybe'] }, /atime/],
    ['a bad ashift', { ashift: 99 }, /ashift/],
    ['a size that is not one', { size: 'huge' }, /^size: invalid size 'huge'/],
    ['a size below the minimum', { size: '1m' }, /below the minimum of 64 MiB/],
    ['no input', { inputs: [] }, /^no input given$/],
    ['a missing input', { inputs: [join(tmp, 'nope')] }, /nope: No such file or directory$/],
  ];
  for (const [name, o, message] of cases) {
    test(`${name}: a UserError, and no file left`, async () => {
      const out = outDir(`err-${name.replace(/\W+/g, '-')}`);
      const err = await buildImage({ image: join(out, 'x.img'), inputs: [stage], poolName: 'tank', size: '64m', workers: WORKERS, ...o })
        .then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain('\n');
      expect(readdirSync(out)).toEqual([]);
    });
  }

  test('an image too small says the size it needs', async () => {
    const big = join(tmp, 'big');
    mkdirSync(big);
    const buf = noise(80 * 2 ** 20, 12345); // 80 MiB that lz4 cannot shrink
    writeFileSync(join(big, 'noise'), buf);
    const out = outDir('small');
    const err = await buildImage({ image: join(out, 'x.img'), inputs: [big], poolName: 'tank', size: '64m', workers: WORKERS })
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    const m = /^image size 64 MiB is too small for the data: it needs about (\d+) MiB .*; use -s (\d+)m, or leave out -s/.exec((err as Error).message);
    expect(m, (err as Error).message).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(84);
    expect(Number(m![2])).toBeGreaterThanOrEqual(Number(m![1]));
    expect(readdirSync(out)).toEqual([]);
    const ok = await buildImage({ image: join(out, 'x.img'), inputs: [big], poolName: 'tank', size: `${m![2]}m`, workers: WORKERS });
    expect(ok.datasets[0]!.dataBytes).toBe(buf.length);
  });

  test('an image too small says the size it needs, with files still being copied in', async () => {
    // uncompressed: the big files are placed when met and copied in later
    // (many may still be queued when the image runs out): placed counts as read
    const many = join(tmp, 'many');
    mkdirSync(many);
    for (let i = 0; i < 40; i++) writeFileSync(join(many, `f${i}`), noise(2 * 2 ** 20 + i, 777 + i));
    const out = outDir('small-copies');
    const opts = { image: join(out, 'x.img'), inputs: [many], poolName: 'tank', datasets: ['tank;compression=off'], workers: WORKERS };
    const err = await buildImage({ ...opts, size: '64m' }).then(() => undefined, (e: unknown) => e);
    const m = /^image size 64 MiB is too small for the data: it needs about (\d+) MiB .*; use -s (\d+)m, or leave out -s/.exec((err as Error).message);
    expect(m, String(err)).not.toBeNull();
    // 80 MiB of data, labels and a little metadata: no less, and not counted twice
    expect(Number(m![1])).toBeGreaterThanOrEqual(84);
    expect(Number(m![1])).toBeLessThan(120);
    expect(readdirSync(out)).toEqual([]);
    const ok = await buildImage({ ...opts, size: `${m![2]}m` });
    expect(ok.datasets[0]!.dataBytes).toBe(40 * 2 * 2 ** 20 + 780);
  });
});

/** No inode of `tree` keeps an object number (a writer's numbers are its own). */
function expectUnnumbered(tree: Inode): void {
  const stack: Inode[] = [tree];
  while (stack.length > 0) {
    const d = stack.pop()!;
    expect(d.objid ?? 0).toBe(0);
    for (const e of d.entries ?? []) {
      expect(e.inode.objid ?? 0).toBe(0);
      if (e.inode.type === 'dir') stack.push(e.inode);
    }
  }
}

describe('the building blocks', () => {
  test('walkDirectories + makeImage, and openInputs + makeImage', async () => {
    const tree: Inode = walkDirectories([stage], { timestamp: { sec: T, nsec: 0 } });
    expect(treeTotals(tree)).toEqual({ entries: 8, files: 3, bytes: 700_015 });
    const opts = (image: string): ImageOptions => ({
      ...api.imageOptionsOf({ image, inputs: [], poolName: 'blocks', size: '64m' }), workers: WORKERS,
    });
    const a = join(outDir('blocks-a'), 'a.img');
    const s1: ImageSummary = await makeImage(tree, opts(a));
    expect(s1.datasets[0]!.files).toBe(3);
    const plan: InputPlan = api.inputPlanOf({ image: '', inputs: [stage], poolName: 'blocks', timestamp: T });
    const b = join(outDir('blocks-b'), 'b.img');
    const seen: Progress[] = [];
    await makeImage(await openInputs(plan, { prewrite: true }), { ...opts(b), onProgress: (p) => seen.push(p) });
    expect(seen.at(-1)?.phase).toBe('done');
    for (const img of [a, b]) expect((await verifyImage(img, { againstDir: stage, timestamp: { sec: T, nsec: 0 } })).problems).toEqual([]);
  });

  test('one walked tree written twice gives the same bytes (object numbers do not stay on its inodes)', async () => {
    const tree: Inode = walkDirectories([stage], { timestamp: { sec: T, nsec: 0 } });
    const { readFileSync } = await import('node:fs');
    const images: Buffer[] = [];
    for (const name of ['twice-a', 'twice-b']) {
      const img = join(outDir(name), 'x.img');
      await makeImage(tree, { ...api.imageOptionsOf({ image: img, inputs: [], poolName: 'twice', size: '64m' }), workers: WORKERS });
      images.push(readFileSync(img));
    }
    expect(Buffer.compare(images[0]!, images[1]!)).toBe(0);
    // every inode is unnumbered again, the hard-linked one included
    expectUnnumbered(tree);
  });

  test('a tree whose objects pass failed part-way is unnumbered again, and writes as a fresh one', async () => {
    const { readFileSync } = await import('node:fs');
    const opts = (name: string) => ({ ...api.imageOptionsOf({ image: join(outDir(name), 'x.img'), inputs: [], poolName: 'again', size: '64m' }), workers: WORKERS });
    const tree: Inode = walkDirectories([stage], { timestamp: { sec: T, nsec: 0 } });
    // an inode past the first few objects, with xattrs too large to store
    const files: Inode[] = [];
    const stack: Inode[] = [tree];
    while (stack.length > 0) {
      for (const e of stack.pop()!.entries ?? []) {
        if (e.inode.type === 'dir') stack.push(e.inode);
        else if (e.inode.type === 'file') files.push(e.inode);
      }
    }
    expect(files.length).toBeGreaterThanOrEqual(3);
    const middle = files[Math.floor(files.length / 2)]!;
    middle.xattrs = new Map([['user.big', new Uint8Array(70_000)]]);
    await expect(makeImage(tree, opts('again-failed'))).rejects.toThrow(/extended attributes of one file exceed 64 KiB/);
    expectUnnumbered(tree);
    middle.xattrs = undefined;
    const again = opts('again-ok');
    await makeImage(tree, again);
    const fresh = opts('again-fresh');
    await makeImage(walkDirectories([stage], { timestamp: { sec: T, nsec: 0 } }), fresh);
    expect(Buffer.compare(readFileSync(again.image), readFileSync(fresh.image))).toBe(0);
  });

  test('a tree with one directory in two places is refused', async () => {
    const t = { sec: T, nsec: 0 };
    const file: Inode = { type: 'file', perm: 0o644, uid: 0, gid: 0, size: 0, atime: t, mtime: t, ctime: t, crtime: t, source: { kind: 'bytes', data: new Uint8Array(0) } };
    const shared: Inode = { type: 'dir', perm: 0o755, uid: 0, gid: 0, size: 0, atime: t, mtime: t, ctime: t, crtime: t, entries: [{ name: Buffer.from('f'), inode: file }] };
    const root: Inode = { ...shared, entries: [{ name: Buffer.from('a'), inode: shared }, { name: Buffer.from('b'), inode: shared }] };
    const img = join(outDir('shared-dir'), 'x.img');
    await expect(makeImage(root, { ...api.imageOptionsOf({ image: img, inputs: [], poolName: 'dag', size: '64m' }), workers: WORKERS }))
      .rejects.toThrow(/directory linked twice: b/);
  });

  test('a tree whose directory contains itself is refused, not walked forever', async () => {
    const t = { sec: T, nsec: 0 };
    const dir: Inode = { type: 'dir', perm: 0o755, uid: 0, gid: 0, size: 0, atime: t, mtime: t, ctime: t, crtime: t, entries: [] };
    dir.entries!.push({ name: Buffer.from('loop'), inode: dir });
    const root: Inode = { ...dir, entries: [{ name: Buffer.from('d'), inode: dir }] };
    const img = join(outDir('cycle'), 'x.img');
    await expect(makeImage(root, { ...api.imageOptionsOf({ image: img, inputs: [], poolName: 'cyc', size: '64m' }), workers: WORKERS }))
      .rejects.toThrow(/directory linked twice: loop/);
    expect(existsSync(img)).toBe(false);
  });

  test('index.ts exports the API the README documents', () => {
    for (const name of [
      'buildImage', 'makeImage', 'openInputs', 'walkDirectories', 'verifyImage', 'openPool', 'treeTotals',
      'UserError', 'InterruptedError', 'abortOpenImageFiles', 'parseSize',
    ]) {
      expect(typeof (api as Record<string, unknown>)[name], name).toBe('function');
    }
  });
});

describe('the package entry point', () => {
  test('`import ... from "tsmakefs"` resolves to the compiled library through "exports"', () => {
    expect(existsSync(join(REPO_ROOT, 'dist', 'index.js')), 'dist/ is missing: `npm run build` compiles it').toBe(true);
    const img = join(outDir('pkg'), 'pkg.img');
    // the build's threads (writer, reader, compression) inherit node's flags:
    // --input-type, which only -e takes, must not stop them from starting
    const script = `
      import { buildImage, verifyImage } from 'tsmakefs';
      const s = await buildImage({ image: ${JSON.stringify(img)}, inputs: [${JSON.stringify(stage)}], poolName: 'pkg', size: '64m', workers: 2 });
      const v = await verifyImage(s.image);
      console.log(JSON.stringify({ pool: s.poolName, problems: v.problems.length }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ pool: 'pkg', problems: 0 });
  });
});
