// Our own reader on real builds: every staging tree of the e2e suite is built
// with the real CLI (bin/tsmakefs over dist/), then `verify --against` the
// staging directory must find nothing, with ls and cat agreeing with the
// tree. The reader is our own, so this is no substitute for zdb and the
// kernel (foundation.test.ts); it is the quick check any build can run.

import { createHash } from 'node:crypto';
import { copyFileSync, openSync, readFileSync, readSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, test } from 'vitest';
import { runInspect } from '../../src/cli/inspect.js';
import { buildImage, describeBuild, TmpArea } from '../helpers/build.js';
import { BIG_FILE_SIZE, TREES, type TreeName } from '../helpers/trees.js';
import { openPool } from '../../src/reader/pool.js';
import { Namespace } from '../../src/reader/mounts.js';
import { VDEV_LABEL_START_SIZE } from '../../src/vdev/geometry.js';

const MIN = 60_000;
const tmp = new TmpArea('verify');
afterAll(() => tmp.cleanup());

const stages = new Map<TreeName, string>();
function stage(name: TreeName): string {
  let dir = stages.get(name);
  if (dir === undefined) {
    dir = tmp.dir(`tree-${name}`);
    TREES[name](dir);
    stages.set(name, dir);
  }
  return dir;
}

async function inspect(...argv: string[]): Promise<{ code: number; out: string; err: string; bytes: Buffer }> {
  let out = '';
  let err = '';
  const chunks: Buffer[] = [];
  const code = await runInspect(argv, {
    stdout: (t) => { out += t; },
    stderr: (t) => { err += t; },
    stdoutBytes: (c) => { chunks.push(Buffer.from(c)); },
  });
  return { code, out, err, bytes: Buffer.concat(chunks) };
}

const images = new Map<string, Promise<string>>();
/** Build (once) an image of `tree` with these extra -o options. */
function image(key: string, tree: TreeName, size: string, options: string[] = []): Promise<string> {
  let p = images.get(key);
  if (p === undefined) {
    p = (async () => {
      const path = join(tmp.dir(`img-${key}`), `${key}.img`);
      const opts = [`poolname=tv_${key}`, ...options].join(',');
      const b = await buildImage(['-t', 'zfs', '-s', size, '-o', opts, path, stage(tree)]);
      if (b.status !== 0) throw new Error(`tsmakefs failed:\n${describeBuild(b)}`);
      return path;
    })();
    images.set(key, p);
  }
  return p;
}

const CASES: Array<{ name: string; key: string; tree: TreeName; size: string; options?: string[]; timeout: number }> = [
  { name: 'one file over 130 MiB (two indirect levels)', key: 'big', tree: 'big', size: '512m', timeout: 15 * MIN },
  { name: 'a directory of 50,000 entries', key: 'many', tree: 'many', size: '256m', timeout: 15 * MIN },
  { name: 'files of 2^i-1, 2^i, 2^i+1 bytes up to 8 MiB', key: 'sizes', tree: 'sizes', size: '256m', timeout: 10 * MIN },
  { name: 'all 4096 permission patterns', key: 'perms', tree: 'perms', size: '128m', timeout: 10 * MIN },
  { name: 'symlinks of 1 to 1023 bytes', key: 'symlinks', tree: 'symlinks', size: '128m', timeout: 10 * MIN },
  { name: 'names of 1 to 255 bytes, UTF-8 and raw bytes', key: 'names', tree: 'names', size: '128m', timeout: 10 * MIN },
  { name: 'a tree 200 levels deep', key: 'deep', tree: 'deep', size: '128m', timeout: 10 * MIN },
  { name: 'hard links', key: 'hardlinks', tree: 'hardlinks', size: '128m', timeout: 10 * MIN },
  { name: 'specials', key: 'specials', tree: 'specials', size: '64m', timeout: 10 * MIN },
  { name: 'makefs\'s regression inputs', key: 'makefs', tree: 'makefs', size: '1g', timeout: 10 * MIN },
  { name: 'the every-kind tree', key: 'mixed', tree: 'mixed', size: '256m', timeout: 10 * MIN },
  { name: 'the every-kind tree, no pool features', key: 'mixed-legacy', tree: 'mixed', size: '256m', options: ['compatibility=legacy'], timeout: 10 * MIN },
  { name: 'the every-kind tree at ashift 9', key: 'mixed-a9', tree: 'mixed', size: '256m', options: ['ashift=9'], timeout: 10 * MIN },
  { name: 'the every-kind tree in FreeBSD\'s dataset layout', key: 'mixed-preset', tree: 'mixed', size: '256m', options: ['preset=freebsd'], timeout: 10 * MIN },
  { name: 'an empty tree', key: 'empty', tree: 'empty', size: '64m', timeout: 10 * MIN },
];

describe.concurrent('verify --against the staging directory finds nothing in an image of', () => {
  for (const c of CASES) {
    test(c.name, async ({ expect }) => {
      const img = await image(c.key, c.tree, c.size, c.options);
      const r = await inspect('verify', img, '--against', stage(c.tree));
      expect(r.out + r.err, `tsmakefs verify ${img} --against ${stage(c.tree)}`).toMatch(/: ok: /);
      expect(r.code).toBe(0);
    }, c.timeout);
  }
});

describe.concurrent('ls and cat agree with the tree', () => {
  test('cat gives the 130 MiB file byte for byte', async ({ expect }) => {
    const img = await image('big', 'big', '512m');
    const r = await inspect('cat', img, '/big.bin');
    expect(r.code, r.err).toBe(0);
    expect(r.bytes.length).toBe(BIG_FILE_SIZE);
    const want = createHash('sha256').update(readFileSync(join(stage('big'), 'big.bin'))).digest('hex');
    expect(createHash('sha256').update(r.bytes).digest('hex')).toBe(want);
  }, 15 * MIN);

  test('ls -R lists every entry of the every-kind tree, through the FreeBSD layout\'s mounts', async ({ expect }) => {
    const [plain, preset] = await Promise.all([
      image('mixed', 'mixed', '256m'), image('mixed-preset', 'mixed', '256m', ['preset=freebsd']),
    ]);
    const a = await inspect('ls', '-R', plain);
    const b = await inspect('ls', '-R', preset);
    expect(a.code, a.err).toBe(0);
    expect(b.code, b.err).toBe(0);
    expect(a.out.split('\n').length).toBeGreaterThan(2100);
    // the same tree, whichever datasets hold its parts
    expect(b.out).toBe(a.out);
  }, 10 * MIN);
});

describe.concurrent('verify finds a flipped byte in a real build', () => {
  test('in the data of a file deep in the 130 MiB file\'s tree, naming it', async ({ expect }) => {
    const src = await image('big', 'big', '512m');
    const img = join(tmp.dir('flip-big'), 'big.img');
    copyFileSync(src, img);
    const pool = openPool(img);
    let off: number;
    try {
      const n = new Namespace(pool).resolve('/big.bin');
      const bp = n.zpl.os.blockPointer(n.zpl.stat(n.obj).dnode, 1030);
      off = VDEV_LABEL_START_SIZE + bp.dva!.offset + 4321;
    } finally {
      pool.close();
    }
    const fd = openSync(img, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, off);
    b[0]! ^= 0x80;
    writeSync(fd, b, 0, 1, off);
    closeSync(fd);
    const r = await inspect('verify', img);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^tv_big:\/big\.bin \(object \d+, plain file contents\): block 1030: checksum mismatch \(fletcher4, DVA\[0\]=<0:[0-9a-f]+:[0-9a-f]+>\)\n$/);
  }, 15 * MIN);
});
