// Our own reader: verify, ls and cat on images built in the test (makeImage
// with small in-memory trees), and verify catching single flipped bytes.

import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync, openSync, readSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeImage, type InputContext, type TreeSource } from '../../src/image.js';
import type { Inode, Timespec } from '../../src/input/tree.js';
import { walkDirectories } from '../../src/input/walk.js';
import type { ImageOptions } from '../../src/options.js';
import { parseFsOptions } from '../../src/cli/fsoptions.js';
import { VDEV_LABEL_START_SIZE } from '../../src/vdev/geometry.js';
import { labelOffsets, VDEV_PHYS_OFFSET, VDEV_UBERBLOCK_RING_OFFSET } from '../../src/vdev/label.js';
import { runInspect } from '../../src/cli/inspect.js';
import { decodeBp, encodeBp, holeBp } from '../../src/zio/blkptr.js';
import { decodeDnode } from '../../src/dmu/dnode.js';
import { readBp } from '../../src/reader/bp.js';
import { readDnode } from '../../src/reader/objset.js';
import {
  diffTrees, inodeTreeView, openFileSystem, openPool, parseSpec, verifyImage, zplTreeView, modeString,
  type PoolReader, type ZplReader,
} from '../../src/reader/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'tsmakefs-reader-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------- trees

const T0: Timespec = { sec: 1_700_000_000, nsec: 123_456_789 };

function node(type: Inode['type'], perm: number, extra: Partial<Inode> = {}): Inode {
  return { type, perm, uid: 1000, gid: 100, size: 0, atime: T0, mtime: T0, ctime: T0, crtime: T0, ...extra };
}
function file(data: Uint8Array | string, perm = 0o644, extra: Partial<Inode> = {}): Inode {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  return node('file', perm, { size: bytes.length, source: { kind: 'bytes', data: bytes }, ...extra });
}
function dir(entries: Record<string, Inode>, perm = 0o755): Inode {
  return node('dir', perm, { entries: Object.entries(entries).map(([name, inode]) => ({ name: Buffer.from(name), inode })) });
}
function symlink(target: string): Inode {
  return node('symlink', 0o777, { target: Buffer.from(target) });
}

/** Deterministic pseudo-random bytes. */
function noise(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

const BIG = noise(3 * 128 * 1024 + 5, 7); // four records: one indirect block
const SMALL = 'hello, world\n';

function sampleTree(): Inode {
  const shared = file('two names\n', 0o640);
  const sub: Record<string, Inode> = {};
  // a name too long for a micro ZAP makes this directory a fat ZAP
  sub['a-name-long-enough-to-need-a-fat-zap-directory-entry-000'] = file('fat\n');
  for (let i = 0; i < 40; i++) sub[`f${String(i).padStart(2, '0')}`] = file(`${i}\n`);
  return dir({
    'big.bin': file(BIG),
    'small.txt': file(SMALL, 0o600),
    'odd-size': file(noise(600, 3)),
    'empty': file(''),
    'setuid': file('#!/bin/sh\n', 0o4755),
    'link': symlink('small.txt'),
    'long-link': symlink('x'.repeat(300)),
    'dir': dir({ 'shared': shared, 'sub': dir(sub, 0o1777) }, 0o700),
    'shared': shared,
    'fifo': node('fifo', 0o644),
    'tty': node('chardev', 0o620, { rdevMajor: 4, rdevMinor: 1 }),
    'disk': node('blockdev', 0o660, { rdevMajor: 8, rdevMinor: 17 }),
  });
}

function options(image: string, fsopts: string[] = []): ImageOptions {
  return {
    image, size: 64 * 2 ** 20, verbose: false,
    ...parseFsOptions(['poolname=tp', 'rootpath=/', 'seed=reader-test', ...fsopts]),
  };
}

let n = 0;
async function build(source: TreeSource, fsopts: string[] = []): Promise<string> {
  const image = join(tmp, `img-${++n}.img`);
  await makeImage(source, options(image, fsopts));
  return image;
}

/** A copy of `image` with one byte xor-ed at absolute offset `off`. */
function flipped(image: string, off: number, mask = 0x20): string {
  const copy = join(tmp, `flip-${++n}.img`);
  copyFileSync(image, copy);
  const fd = openSync(copy, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, off);
  b[0]! ^= mask;
  writeSync(fd, b, 0, 1, off);
  closeSync(fd);
  return copy;
}

function withFs<T>(image: string, fn: (zpl: ZplReader, pool: PoolReader) => T): T {
  const pool = openPool(image);
  try {
    return fn(openFileSystem(pool), pool);
  } finally {
    pool.close();
  }
}

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string; bytes: Buffer }> {
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

let image: string;
beforeAll(async () => {
  image = await build(sampleTree());
});

// ---------------------------------------------------------------- verify

describe('verify', () => {
  test('passes on a fresh image, and checks every allocated byte', async () => {
    const r = await verifyImage(image);
    expect(r.problems).toEqual([]);
    expect(r.notes).toEqual([]);
    expect(r.stats.labels).toBe(4);
    expect(r.stats.uberblocks).toBe(4 * 32);
    expect(r.stats.datasets).toBe(1);
    expect(r.stats.directories).toBe(3);
    // every allocated byte is in some block: checksummed data or zero padding
    expect(r.stats.bytes).toBe(r.stats.allocated);
    expect(r.stats.allocated).toBeGreaterThan(BIG.length);
  });

  test('passes at ashift 9 and 13 too', async () => {
    for (const ashift of [9, 13]) {
      const img = await build(sampleTree(), [`ashift=${ashift}`]);
      const r = await verifyImage(img);
      expect(r.problems, `ashift ${ashift}`).toEqual([]);
      expect(r.stats.uberblocks).toBe(4 * (128 * 1024) / 2 ** Math.min(Math.max(ashift, 10), 13));
    }
  });

  test('a flipped byte in file data: a checksum error naming dataset, path and object', async () => {
    const { off, obj } = withFs(image, (zpl) => {
      const obj = zpl.lookup('/big.bin');
      const bp = zpl.os.blockPointer(zpl.stat(obj).dnode, 2);
      return { off: VDEV_LABEL_START_SIZE + bp.dva!.offset + 1000, obj };
    });
    const r = await verifyImage(flipped(image, off));
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(new RegExp(`^tp:/big\\.bin \\(object ${obj}, plain file contents\\): block 2: checksum mismatch \\(fletcher4, DVA\\[0\\]=<0:[0-9a-f]+:20000>\\)$`));
  });

  test('a flipped byte in an indirect block of a file: one error naming the file\'s level 1 block', async () => {
    const off = withFs(image, (zpl) => {
      const dn = zpl.stat(zpl.lookup('/big.bin')).dnode;
      expect(dn.nlevels).toBe(2);
      return VDEV_LABEL_START_SIZE + dn.blkptr[0]!.dva!.offset + 130;
    });
    const r = await verifyImage(flipped(image, off));
    expect(r.problems).toEqual([expect.stringMatching(/^tp:\/big\.bin \(object \d+, plain file contents\): level 1 block 0: checksum mismatch/)]);
    expect(r.notes).toEqual(['leak check skipped: some metadata is unreadable, so not every block was found']);
  });

  test('a flipped byte in a dnode block of the file system: a checksum error of that dnode block', async () => {
    const off = withFs(image, (zpl) => VDEV_LABEL_START_SIZE + zpl.os.blockPointer(zpl.os.metaDnode, 0).dva!.offset + 5 * 512 + 40);
    const r = await verifyImage(flipped(image, off));
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(/^tp: dnode block 0 \(objects 0-31\): checksum mismatch \(fletcher4, /);
    // the objects in that block could not be visited, so leaks cannot be judged
    expect(r.notes.join('\n')).toMatch(/leak check skipped/);
  });

  test('a flipped byte in a ZAP block (a fat-ZAP directory): a checksum error naming the directory', async () => {
    const { off, obj } = withFs(image, (zpl) => {
      const obj = zpl.lookup('/dir/sub');
      const dn = zpl.stat(obj).dnode;
      expect(dn.maxblkid).toBeGreaterThan(0); // fat: header and leaf blocks
      return { off: VDEV_LABEL_START_SIZE + zpl.os.blockPointer(dn, 1).dva!.offset + 300, obj };
    });
    const r = await verifyImage(flipped(image, off));
    expect(r.problems).toEqual([expect.stringMatching(new RegExp(`^tp:/dir/sub \\(object ${obj}, directory contents\\): block 1: checksum mismatch`))]);
  });

  test('a flipped byte in a MOS ZAP (the object directory): a checksum error of MOS object 1', async () => {
    const off = withFs(image, (_zpl, pool) => VDEV_LABEL_START_SIZE + pool.mos.blockPointer(pool.mos.dnode(1), 0).dva!.offset + 70);
    const r = await verifyImage(flipped(image, off));
    expect(r.problems[0]).toMatch(/^MOS: object 1 \(object directory\): block 0: checksum mismatch/);
    expect(r.problems).toHaveLength(1);
  });

  test('a flipped byte in label 2\'s config: a label checksum error naming label 2 (and nothing else)', async () => {
    const pool = openPool(image);
    const label2 = labelOffsets(pool.psize)[2]!;
    pool.close();
    const r = await verifyImage(flipped(image, label2 + VDEV_PHYS_OFFSET + 123));
    expect(r.problems).toEqual(['label 2: config: checksum mismatch']);
  });

  test('flipped bytes in an uberblock slot, the boot environment and the label pad are caught', async () => {
    const pool = openPool(image);
    const labels = labelOffsets(pool.psize);
    pool.close();
    expect((await verifyImage(flipped(image, labels[3]! + VDEV_UBERBLOCK_RING_OFFSET + 5 * 4096 + 8))).problems)
      .toEqual(['label 3: uberblock slot 5: checksum mismatch']);
    expect((await verifyImage(flipped(image, labels[0]! + 8 * 1024 + 17))).problems)
      .toEqual(['label 0: boot environment: checksum mismatch']);
    expect((await verifyImage(flipped(image, labels[1]! + 100))).problems)
      .toEqual(['label 1: pad area (first 8 KiB) is not zero']);
  });

  test('a flipped byte in a block\'s allocated padding (past psize) is caught', async () => {
    const off = withFs(image, (zpl) => {
      const bp = zpl.os.blockPointer(zpl.stat(zpl.lookup('/odd-size')).dnode, 0);
      expect(bp.psize).toBe(1024);
      expect(bp.dva!.asize).toBe(4096);
      return VDEV_LABEL_START_SIZE + bp.dva!.offset + bp.psize + 10;
    });
    const r = await verifyImage(flipped(image, off));
    expect(r.problems).toEqual([expect.stringMatching(/^tp:\/odd-size \(object \d+, plain file contents\): block 0: non-zero byte at \+1034 in the allocated padding/)]);
  });

  test('a flipped byte in unallocated space is not a problem', async () => {
    const r = await verifyImage(flipped(image, 40 * 2 ** 20));
    expect(r.problems).toEqual([]);
  });

  test('a sampled sweep of single-bit flips over allocated space: every one is caught', async () => {
    const pool = openPool(image);
    const { readSpaceMaps } = await import('../../src/reader/space.js');
    const ranges = readSpaceMaps(pool, () => {})!.allocated;
    pool.close();
    const total = ranges.reduce((t, r) => t + r.end - r.start, 0);
    const rnd = noise(4 * 24, 99);
    // one copy, each byte flipped and restored in place
    const img = flipped(image, 0, 0);
    const fd = openSync(img, 'r+');
    try {
      for (let i = 0; i < 24; i++) {
        let k = new DataView(rnd.buffer).getUint32(i * 4, true) % total;
        let off = 0;
        for (const r of ranges) {
          if (k < r.end - r.start) { off = VDEV_LABEL_START_SIZE + r.start + k; break; }
          k -= r.end - r.start;
        }
        const b = Buffer.alloc(1);
        readSync(fd, b, 0, 1, off);
        const orig = b[0]!;
        b[0] = orig ^ (1 << (i % 8));
        writeSync(fd, b, 0, 1, off);
        const r = await verifyImage(img);
        expect(r.problems.length, `flip at 0x${off.toString(16)}`).toBeGreaterThan(0);
        b[0] = orig;
        writeSync(fd, b, 0, 1, off);
      }
    } finally {
      closeSync(fd);
    }
  }, 60_000);
});

describe('verify: pool features', () => {
  test('compressed metadata and data, embedded block pointers (the default features) read back', async () => {
    withFs(image, (zpl, pool) => {
      // the dnode blocks of the meta-dnode are lz4 (metadata policy)
      expect(zpl.os.blockPointer(zpl.os.metaDnode, 0).comp).toBe(15);
      // 13 bytes compress into the block pointer itself
      const bp = zpl.os.blockPointer(zpl.stat(zpl.lookup('/small.txt')).dnode, 0);
      expect(bp.embedded).toBeDefined();
      expect(Buffer.concat([...zpl.read(zpl.lookup('/small.txt'))]).toString()).toBe(SMALL);
      // the MOS's own dnode blocks go into reserved space, uncompressed
      expect(pool.mos.blockPointer(pool.mos.metaDnode, 0).comp).toBe(2);
    });
  });

  test('an image without any feature (compatibility=legacy) verifies too', async () => {
    const img = await build(sampleTree(), ['compatibility=legacy']);
    withFs(img, (zpl) => expect(zpl.os.blockPointer(zpl.os.metaDnode, 0).comp).toBe(2));
    expect((await verifyImage(img)).problems).toEqual([]);
  });
});

// ---------------------------------------------------------------- space maps

describe('verify: space maps against the blocks found', () => {
  /** A tar-like source that writes file data before the tree exists (as the tar input does). */
  const streamed = (use: (ctx: InputContext) => Record<string, Inode>): TreeSource => async (ctx) => dir(use(ctx));
  const written = (ctx: InputContext, data: Uint8Array) => {
    const w = ctx.beginFile(data.length);
    w.write(data);
    return w.end();
  };
  const fileFrom = (src: ReturnType<typeof written>, size: number): Inode => node('file', 0o644, { size, source: src });

  test('data written and discarded (freed) leaves no trace', async () => {
    const img = await build(streamed((ctx) => {
      ctx.discard(written(ctx, noise(200_000, 1)));
      return { kept: fileFrom(written(ctx, noise(5000, 2)), 5000) };
    }));
    expect((await verifyImage(img)).problems).toEqual([]);
  });

  test('allocated space no block uses is a leak', async () => {
    const img = await build(streamed((ctx) => {
      written(ctx, noise(200_000, 3)); // never referenced
      return { kept: fileFrom(written(ctx, noise(5000, 4)), 5000) };
    }));
    const r = await verifyImage(img);
    expect(r.problems.length).toBeGreaterThan(0);
    expect(r.problems.every((p) => /^space map: 0x[0-9a-f]+-0x[0-9a-f]+ \(.*\) in metaslab \d+ is allocated but no block uses it \(leak\)$/.test(p)), r.problems.join('\n')).toBe(true);
  });

  test('a block in space the space maps do not allocate is named', async () => {
    const img = await build(streamed((ctx) => {
      const src = written(ctx, noise(9000, 5));
      ctx.discard(src); // freed, yet still used below
      return { ghost: fileFrom(src, 9000) };
    }));
    const r = await verifyImage(img);
    expect(r.problems).toContainEqual(expect.stringMatching(/^tp:\/ghost \(object \d+\): block 0 \(DVA\[0\]=<0:[0-9a-f]+:3000>\): lies outside the space the space maps allocate$/));
  });

  test('two objects sharing blocks are a double allocation', async () => {
    const img = await build(streamed((ctx) => {
      const src = written(ctx, noise(9000, 6));
      return { one: fileFrom(src, 9000), two: fileFrom(src, 9000) };
    }));
    const r = await verifyImage(img);
    const doubles = r.problems.filter((p) => p.includes('double allocation'));
    expect(doubles).toEqual([
      expect.stringMatching(/^tp:\/one \(object \d+\): block 0 \(.*\): shares space with another block \(double allocation\)$/),
      expect.stringMatching(/^tp:\/two \(object \d+\): block 0 \(.*\): shares space with another block \(double allocation\)$/),
    ]);
  });
});

// ---------------------------------------------------------------- --against

describe('verify --against a staging directory', () => {
  let stage: string;
  let img: string;
  beforeAll(async () => {
    stage = join(tmp, 'stage');
    mkdirSync(join(stage, 'etc', 'rc.d'), { recursive: true });
    writeFileSync(join(stage, 'etc', 'rc.conf'), 'hostname="box"\n');
    writeFileSync(join(stage, 'etc', 'rc.d', 'sshd'), Buffer.from(noise(200_000, 11)));
    writeFileSync(join(stage, 'README'), 'read me\n', { mode: 0o600 });
    symlinkSync('etc/rc.conf', join(stage, 'conf'));
    img = await build(walkDirectories([stage]));
  });

  test('a matching directory passes', async () => {
    const r = await verifyImage(img, { againstDir: stage });
    expect(r.problems).toEqual([]);
    expect(r.differences).toEqual([]);
  });

  test('changes are reported one per line, path first', async () => {
    const changed = join(tmp, 'changed');
    mkdirSync(join(changed, 'etc', 'rc.d'), { recursive: true });
    // same size, other content
    writeFileSync(join(changed, 'etc', 'rc.conf'), 'hostname="xox"\n');
    copyFileSync(join(stage, 'etc', 'rc.d', 'sshd'), join(changed, 'etc', 'rc.d', 'sshd'));
    writeFileSync(join(changed, 'README'), 'read me!\n', { mode: 0o644 });
    writeFileSync(join(changed, 'NEW'), 'new\n');
    symlinkSync('etc/rc.d', join(changed, 'conf'));
    // make times match where nothing else changed, so only the intended lines appear
    const w = walkDirectories([changed]);
    const s = walkDirectories([stage]);
    const times = new Map<string, Timespec>();
    const collect = (d: Inode, p: string, into: Map<string, Timespec>) => {
      into.set(p, d.mtime);
      for (const e of d.entries ?? []) collect(e.inode, `${p}/${Buffer.from(e.name)}`, into);
    };
    collect(s, '', times);
    const fix = (d: Inode, p: string) => {
      const t = times.get(p);
      if (t) d.mtime = t;
      for (const e of d.entries ?? []) fix(e.inode, `${p}/${Buffer.from(e.name)}`);
    };
    fix(w, '');
    const r = await verifyImage(img, { against: inodeTreeView(w) });
    expect(r.differences).toEqual([
      '/NEW: missing from the image',
      expect.stringMatching(/^\/README: mode: expected 0644, image has 0600$/),
      '/README: size: expected 9, image has 8',
      '/conf: link target: expected "etc/rc.d", image has "etc/rc.conf"',
      expect.stringMatching(/^\/etc\/rc\.conf: content: expected sha256 [0-9a-f]{64}, image has [0-9a-f]{64}$/),
    ]);
    expect(r.problems).toEqual(r.differences);
  });

  test('the CLI prints the differences and exits 1; a changed mtime shows', async () => {
    const t = Date.now() / 1000 - 3600;
    const ok = await cli('verify', img, '--against', stage);
    expect(ok).toMatchObject({ code: 0, err: '' });
    expect(ok.out).toMatch(/: ok: 4 labels, 128 uberblock slots, \d+ blocks .* checked; 1 dataset, 3 directories, 3 files;/);
    utimesSync(join(stage, 'README'), t, t);
    const bad = await cli('verify', img, '--against', stage);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/^\/README: mtime: expected \S+Z, image has \S+Z\n$/);
    expect(bad.err).toContain('1 problem');
    expect((await cli('verify', img, '--against', stage, '--no-mtime')).code).toBe(0);
  });

  test('hard links are compared as links', async () => {
    const a = file('x\n');
    const expected = dir({ one: a, two: a });
    const img2 = await build(dir({ one: file('x\n'), two: file('x\n') }));
    const pool = openPool(img2);
    try {
      expect(await diffTrees(inodeTreeView(expected), zplTreeView(openFileSystem(pool))))
        .toEqual(['/two: expected a hard link to /one, image has a separate file']);
    } finally {
      pool.close();
    }
  });
});

describe('datasets and xattrs', () => {
  const staged = (): Inode => dir({
    etc: dir({ 'rc.conf': file('x=1\n') }),
    home: dir({ u: dir({ notes: file('mine\n', 0o600, { xattrs: new Map([['user.tag', Buffer.from('blue')]]) }) }) }, 0o711),
    usr: dir({ bin: dir({ sh: file('#!\n', 0o755) }) }),
  });
  let img: string;
  beforeAll(async () => {
    img = await build(staged(), ['fs=tp/home;mountpoint=/home', 'fs=tp/usr;canmount=off', 'fs=tp/usr/bin']);
  });

  test('the namespace crosses into datasets mounted below; the tree compares equal, xattrs included', async () => {
    const pool = openPool(img);
    try {
      const { Namespace } = await import('../../src/reader/mounts.js');
      const ns = new Namespace(pool);
      expect(ns.top.dataset.name).toBe('tp');
      expect([...ns.mounts.keys()].sort()).toEqual(['/home', '/usr/bin']);
      const notes = ns.resolve('/home/u/notes');
      expect(notes.zpl.name).toBe('tp/home');
      expect(notes.zpl.stat(notes.obj).xattrs).toEqual(new Map([['user.tag', new Uint8Array(Buffer.from('blue'))]]));
      expect(ns.resolve('/usr/bin/sh').zpl.name).toBe('tp/usr/bin');
      expect(ns.resolve('/home/u/../../etc/rc.conf').zpl.name).toBe('tp');
    } finally {
      pool.close();
    }
    const r = await verifyImage(img, { against: inodeTreeView(staged()) });
    expect(r.problems).toEqual([]);
    expect(r.stats.datasets).toBe(4); // tp/usr too: not mounted, but a file system
  });

  test('xattr differences are reported', async () => {
    const t = staged();
    const notes = t.entries![1]!.inode.entries![0]!.inode.entries![0]!.inode;
    notes.xattrs = new Map([['user.tag', Buffer.from('red')], ['user.more', Buffer.from('x')]]);
    const r = await verifyImage(img, { against: inodeTreeView(t) });
    expect(r.differences).toEqual([
      '/home/u/notes: xattr "user.more": missing from the image',
      '/home/u/notes: xattr "user.tag": expected 3 bytes "red", image has 4 bytes "blue"',
    ]);
  });

  test('ls and cat take DATASET:PATH or a path through the mounts', async () => {
    expect((await cli('cat', img, '/usr/bin/sh', 'tp/home:/u/notes')).bytes.toString()).toBe('#!\nmine\n');
    // through the mount: bin is tp/usr/bin's root (holding sh), not tp's empty placeholder
    expect((await cli('ls', img, 'tp:/usr')).out).toMatch(/^drwxr-xr-x 2 1000 100 3 \S+ bin\n$/);
    // canmount=off: its own tree is empty
    expect(await cli('ls', img, 'tp/usr:/')).toMatchObject({ code: 0, out: '' });
    expect((await cli('ls', img, '/usr/bin')).out).toMatch(/^-rwxr-xr-x 1 1000 100 3 \S+ sh\n$/);
  });
});

// ---------------------------------------------------------------- ls and cat

describe('ls', () => {
  test('lists the root directory like ls -l', async () => {
    const r = await cli('ls', image);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const when = '2023-11-14T22:13:20Z';
    expect(r.out.split('\n')).toEqual([
      `-rw-r--r-- 1 1000 100 393221 ${when} big.bin`,
      `drwx------ 3 1000 100      4 ${when} dir`,
      `brw-rw---- 1 1000 100  8, 17 ${when} disk`,
      `-rw-r--r-- 1 1000 100      0 ${when} empty`,
      `prw-r--r-- 1 1000 100      0 ${when} fifo`,
      `lrwxrwxrwx 1 1000 100      9 ${when} link -> small.txt`,
      `lrwxrwxrwx 1 1000 100    300 ${when} long-link -> ${'x'.repeat(300)}`,
      `-rw-r--r-- 1 1000 100    600 ${when} odd-size`,
      `-rwsr-xr-x 1 1000 100     10 ${when} setuid`,
      `-rw-r----- 2 1000 100     10 ${when} shared`,
      `-rw------- 1 1000 100     13 ${when} small.txt`,
      `crw--w---- 1 1000 100   4, 1 ${when} tty`,
      '',
    ]);
  });

  test('DATASET:PATH, -d, -R', async () => {
    const sub = await cli('ls', image, 'tp:/dir');
    expect(sub.out).toMatch(/^-rw-r----- 2 1000 100 10 \S+ shared\ndrwxrwxrwt 2 1000 100 43 \S+ sub\n$/);
    const d = await cli('ls', '-d', image, '/dir');
    expect(d.out).toMatch(/^drwx------ 3 1000 100 4 \S+ \/dir\n$/);
    const rec = await cli('ls', '-R', image, 'tp:/dir');
    const heads = rec.out.split('\n').filter((l) => l.endsWith(':'));
    expect(heads).toEqual(['tp:/dir:', 'tp:/dir/sub:']);
    expect(rec.out).toContain('\n\ntp:/dir/sub:\n');
    expect(rec.out.split('\n').filter((l) => / f\d\d$/.test(l))).toHaveLength(40);
  });

  test('errors are one line', async () => {
    expect(await cli('ls', image, '/nope')).toMatchObject({ code: 1, out: '', err: `tsmakefs: ${image}: /nope: no such file or directory\n` });
    const r = await cli('ls', image, 'other:/');
    expect(r.code).toBe(1);
    expect(r.err).toBe("tsmakefs: no file system 'other' in pool 'tp' (file systems: tp)\n");
    expect((await cli('ls', join(tmp, 'missing.img'))).err).toBe(`tsmakefs: ${join(tmp, 'missing.img')}: No such file or directory\n`);
  });
});

describe('cat', () => {
  test('writes the file\'s bytes, block by block', async () => {
    const r = await cli('cat', image, 'tp:/big.bin');
    expect(r.code).toBe(0);
    expect(r.bytes.equals(Buffer.from(BIG))).toBe(true);
    expect((await cli('cat', image, '/small.txt', '/empty', '/dir/shared')).bytes.toString()).toBe(`${SMALL}two names\n`);
  });

  test('follows symbolic links; refuses directories and specials', async () => {
    expect((await cli('cat', image, '/link')).bytes.toString()).toBe(SMALL);
    expect(await cli('cat', image, '/dir')).toMatchObject({ code: 1, err: 'tsmakefs: /dir: Is a directory\n' });
    expect(await cli('cat', image, '/fifo')).toMatchObject({ code: 1, err: 'tsmakefs: /fifo: not a regular file (a fifo)\n' });
  });

  test('a damaged block is an error, not wrong bytes', async () => {
    const off = withFs(image, (zpl) => VDEV_LABEL_START_SIZE + zpl.os.blockPointer(zpl.stat(zpl.lookup('/big.bin')).dnode, 3).dva!.offset);
    const r = await cli('cat', flipped(image, off), '/big.bin');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^tsmakefs: .*: \/big\.bin: block 3: checksum mismatch/);
    expect(r.bytes.length).toBe(3 * 128 * 1024);
  });
});

// ---------------------------------------------------------------- the reader API

describe('reader API', () => {
  test('znode attributes, long symlinks from the spill block, devices, hard links', () => {
    withFs(image, (zpl) => {
      const small = zpl.stat(zpl.lookup('/small.txt'));
      expect(small).toMatchObject({ type: 'file', perm: 0o600, uid: 1000, gid: 100, size: SMALL.length, links: 1, mtime: T0, parent: zpl.root });
      const long = zpl.stat(zpl.lookup('/long-link'));
      expect(long.dnode.spill).toBeDefined();
      expect(Buffer.from(long.target!).toString()).toBe('x'.repeat(300));
      expect(zpl.stat(zpl.lookup('/tty')).rdev).toEqual([4, 1]);
      expect(zpl.lookup('/dir/shared')).toBe(zpl.lookup('/shared'));
      expect(zpl.lookup('/dir/../link', { follow: true })).toBe(zpl.lookup('/small.txt'));
      expect(zpl.stat(zpl.lookup('/dir')).links).toBe(3);
    });
  });

  test('readBp and readDnode (fast decoders) agree with decodeBp and decodeDnode', () => {
    const bps: Uint8Array[] = [];
    const rnd = noise(64 * 1024, 5);
    const dv = new DataView(rnd.buffer);
    for (let i = 0; i < 200; i++) {
      const b = new Uint8Array(128);
      encodeBp({
        dva: { vdev: i % 3, offset: dv.getUint32(i * 4, true) * 512 * (i % 7 + 1), asize: ((dv.getUint16(i * 2, true) % 4096) + 1) * 512 },
        lsize: ((dv.getUint16(i * 2 + 1, true) % 4096) + 1) * 512, psize: ((dv.getUint16(i * 2 + 3, true) % 4096) + 1) * 512,
        comp: rnd[i]! % 16, cksumType: rnd[i + 1]! % 15, type: rnd[i + 2]!, level: rnd[i + 3]! % 7,
        birth: dv.getUint32(i * 4 + 8, true) * 3, fill: dv.getUint32(i * 4 + 12, true) * 5, cksum: rnd.slice(i * 32, i * 32 + 32),
      }, b, 0);
      bps.push(b);
    }
    const embedded = new Uint8Array(128);
    encodeBp({ ...holeBp(), lsize: 4096, psize: 50, comp: 15, type: 19, birth: 4, fill: 1, embedded: rnd.slice(0, 50) }, embedded, 0);
    bps.push(embedded, new Uint8Array(128));
    for (const b of bps) {
      const { dvas, gang, ...fast } = readBp(b, 0);
      const ref = decodeBp(b, 0);
      expect(fast).toEqual(ref.dva === null && !ref.embedded ? holeBp() : ref);
      expect(gang).toBe(false);
      expect(dvas).toEqual(ref.dva ? [ref.dva] : []);
    }
    // every dnode of a real image
    withFs(image, (zpl) => {
      for (let obj = 1; obj < zpl.os.objectLimit && obj < 64; obj++) {
        const blk = zpl.os.readBlock(zpl.os.metaDnode, Math.floor(obj / 32));
        const ref = decodeDnode(blk, (obj % 32) * 512);
        const fast = readDnode(blk, (obj % 32) * 512);
        if (ref.type === 0) continue;
        expect({ ...fast, blkptr: fast.blkptr.map(({ dvas, gang, ...b }) => b), spill: fast.spill && (({ dvas, gang, ...b }) => b)(fast.spill) })
          .toEqual({ ...ref, spill: ref.spill });
      }
    });
  });

  test('parseSpec', () => {
    expect(parseSpec('')).toEqual({ path: '/' });
    expect(parseSpec('/etc/rc.conf')).toEqual({ path: '/etc/rc.conf' });
    expect(parseSpec('zroot')).toEqual({ dataset: 'zroot', path: '/' });
    expect(parseSpec('zroot/usr:/bin/sh')).toEqual({ dataset: 'zroot/usr', path: '/bin/sh' });
    expect(parseSpec('zroot:etc')).toEqual({ dataset: 'zroot', path: '/etc' });
    expect(parseSpec('zroot:')).toEqual({ dataset: 'zroot', path: '/' });
  });

  test('modeString', () => {
    expect(modeString('dir', 0o755)).toBe('drwxr-xr-x');
    expect(modeString('file', 0o4644)).toBe('-rwSr--r--');
    expect(modeString('file', 0o6755)).toBe('-rwsr-sr-x');
    expect(modeString('dir', 0o1777)).toBe('drwxrwxrwt');
    expect(modeString('dir', 0o1776)).toBe('drwxrwxrwT');
    expect(modeString('symlink', 0o777)).toBe('lrwxrwxrwx');
  });
});
