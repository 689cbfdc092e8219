// -F specfile (and -x) laid over a walked tree, as makefs(8) describes it.

import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { UserDb } from '../../src/input/passwd.js';
import { applySpec, type SpecOptions } from '../../src/input/spec.js';
import type { DataSource, Inode } from '../../src/input/tree.js';
import { walkDirectories } from '../../src/input/walk.js';
import { DMU_OT_PLAIN_FILE_CONTENTS } from '../../src/dmu/types.js';
import { CKSUM_FLETCHER4, COMP_OFF } from '../../src/zio/blkptr.js';
import { FileDataSlab, type WrittenData } from '../../src/zpl/filedata.js';
import { UserError } from '../../src/util/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'tsmakefs-spec-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const USERS: UserDb = {
  uid: (n) => ({ root: 0, operator: 2 } as Record<string, number>)[n],
  gid: (n) => ({ wheel: 0, operator: 5 } as Record<string, number>)[n],
  userSource: 'test', groupSource: 'test',
};

const stage = join(tmp, 'stage');
beforeAll(() => {
  mkdirSync(join(stage, 'dir1', 'inner'), { recursive: true });
  writeFileSync(join(stage, 'dir1', 'f'), 'file');
  writeFileSync(join(stage, 'extra'), 'not in the spec');
  symlinkSync('dir1/f', join(stage, 'ln'));
  for (const p of ['dir1/f', 'dir1/inner', 'dir1', 'extra', '.']) utimesSync(join(stage, p), 1000, 1000);
});

function apply(spec: string, o: Partial<SpecOptions> = {}, warnings: string[] = []): Inode {
  const root = walkDirectories([stage], o.policy?.stamp ? { timestamp: o.policy.stamp } : {});
  applySpec(root, Buffer.from(spec), {
    name: 'S', onlySpec: false, policy: {}, users: USERS, warn: (w) => warnings.push(w), ...o,
  });
  return root;
}

function at(root: Inode, path: string): Inode | undefined {
  let ino: Inode | undefined = root;
  for (const c of path.split('/')) ino = ino?.entries?.find((e) => Buffer.from(e.name).toString() === c)?.inode;
  return ino;
}

function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
}

// The shape `mtree -c -k type,mode,uname,gname,time` gives, hierarchical.
const SPEC = [
  '#\t   user: root',
  '/set type=file uname=root gname=wheel mode=0644',
  '.               type=dir mode=0755 time=1742574909.000000000',
  'dir1            type=dir mode=0700 uname=operator time=1742574909.000000000',
  '    f           mode=0400 time=1742574909.500000000',
  '    inner       type=dir mode=0711 \\',
  '                time=1742574909.000000000',
  '..',
  '..',
  'ln              type=link mode=0755 link=elsewhere',
  'made            type=file mode=0600 uname=operator gname=operator',
  'madedir         type=dir mode=0700 uid=7 gid=8 time=5',
  'opt             type=file optional mode=0644',
  '',
].join('\n');

describe('applySpec', () => {
  test('what the spec says wins; the rest of the tree stays', () => {
    const root = apply(SPEC);
    expect(at(root, 'dir1')).toMatchObject({ perm: 0o700, uid: 2, gid: 0, mtime: { sec: 1742574909, nsec: 0 } });
    const f = at(root, 'dir1/f')!;
    expect(f).toMatchObject({ perm: 0o400, uid: 0, gid: 0, mtime: { sec: 1742574909, nsec: 500000000 } });
    // all four times: no wall-clock ctime
    expect([f.atime, f.ctime, f.crtime]).toEqual([f.mtime, f.mtime, f.mtime]);
    expect(at(root, 'ln')).toMatchObject({ type: 'symlink', target: Buffer.from('elsewhere') });
    expect(at(root, 'extra')).toMatchObject({ type: 'file', mtime: { sec: 1000, nsec: 0 } });
  });

  test('entries only the spec has are created; optional ones are not', () => {
    const root = apply(SPEC, { policy: { sourceDateEpoch: { sec: 77, nsec: 0 } } });
    expect(at(root, 'made')).toMatchObject({
      type: 'file', perm: 0o600, uid: 2, gid: 5, size: 0, mtime: { sec: 77, nsec: 0 }, source: { kind: 'bytes' },
    });
    expect(at(root, 'madedir')).toMatchObject({ type: 'dir', perm: 0o700, uid: 7, gid: 8, mtime: { sec: 5, nsec: 0 }, entries: [] });
    expect(at(root, 'opt')).toBeUndefined();
  });

  test('-T: spec times still win (makefs T_flag_F_flag), everything else takes the stamp', () => {
    const stamp = { sec: 1742574910, nsec: 0 };
    const root = apply(SPEC, { policy: { stamp } });
    expect(at(root, 'dir1')!.mtime).toEqual({ sec: 1742574909, nsec: 0 });
    expect(at(root, 'dir1')!.atime).toEqual({ sec: 1742574909, nsec: 0 });
    expect(at(root, 'extra')!.mtime).toEqual(stamp);
    expect(at(root, 'made')!.mtime).toEqual(stamp);
  });

  test('-x leaves out whatever the spec does not list, and hands back written data', () => {
    const root = walkDirectories([stage]);
    const extra = at(root, 'extra')!;
    const written: DataSource = { kind: 'written', data: {} as never };
    extra.source = written;
    const discarded: DataSource[] = [];
    applySpec(root, Buffer.from(SPEC), {
      name: 'S', onlySpec: true, policy: {}, users: USERS, warn: () => {}, discard: (s) => void discarded.push(s),
    });
    expect(root.entries!.map((e) => Buffer.from(e.name).toString()).sort()).toEqual(['dir1', 'ln', 'made', 'madedir']);
    expect(at(root, 'dir1/inner')).toBeDefined();
    expect(discarded).toEqual([written]);
  });

  test('-x hands back the data of the files it drops, and only theirs, when sources are made on each read', () => {
    // (a walked or tarball file keeps its written data as a slab index: each
    // read of its source is a new object, as in a real tarball build)
    const root = walkDirectories([stage]);
    const slab = new FileDataSlab();
    const bp = {
      dva: { vdev: 0, offset: 0x40_0000, asize: 4096 }, lsize: 4096, psize: 4096, comp: COMP_OFF,
      cksumType: CKSUM_FLETCHER4, type: DMU_OT_PLAIN_FILE_CONTENTS, level: 0, birth: 4, fill: 1, cksum: new Uint8Array(32).fill(7),
    };
    const store = (ino: Inode, start: number) => {
      ino.source = slab.store({ size: 4, blksz: 4096, nlevels: 1, maxblkid: 0, used: 4096, bp, psize: 4096, lsize: 4096, start, end: start + 4096 });
    };
    store(at(root, 'extra')!, 0x40_0000);
    store(at(root, 'dir1/f')!, 0x50_0000);
    expect(at(root, 'extra')!.source).not.toBe(at(root, 'extra')!.source);
    const discarded: DataSource[] = [];
    applySpec(root, Buffer.from(SPEC), {
      name: 'S', onlySpec: true, policy: {}, users: USERS, warn: () => {}, discard: (s) => void discarded.push(s),
    });
    expect(discarded.map((d) => (d as WrittenData).data.start)).toEqual([0x40_0000]);
  });

  test('mismatches and missing facts are one-line errors', () => {
    expect(failure(() => apply('. type=dir\nextra type=dir\n'))).toBe('S:2: ./extra: type mismatch: the spec says dir, the tree has a file');
    expect(failure(() => apply('. type=dir\nnew type=file mode=0644 uname=root\n'))).toBe('S:2: ./new: not in the tree, and the spec gives no group');
    expect(failure(() => apply('. type=dir\nnew mode=0644\n'))).toBe('S:2: ./new: not in the tree, and the spec gives no type');
    expect(failure(() => apply('. type=dir\nextra mode=0644 uname=nobody\n'))).toBe("S:2: ./extra: unknown user 'nobody' (not in test)");
    expect(failure(() => apply(''))).toBe('S: the spec describes no tree');
  });

  test('a spec size that disagrees with the file is a warning', () => {
    const w: string[] = [];
    apply('. type=dir\n./dir1/f type=file size=99\n', {}, w);
    expect(w).toEqual(['S:2: ./dir1/f: size=99 but the file has 4 bytes; using the file']);
  });
});
