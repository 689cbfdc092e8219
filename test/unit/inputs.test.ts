// The input pipeline as the CLI drives it: input detection, every input kind
// giving one tree, the order file data reaches the image, owner overrides,
// the time rules, and the new command-line options.

import { spawnSync } from 'node:child_process';
import { chownSync, linkSync, lutimesSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseArgs, type BuildInvocation } from '../../src/cli/args.js';
import type { InputContext, TreeSource } from '../../src/image.js';
import { sniff } from '../../src/input/detect.js';
import { openInputs, treeInMemory, type InputPlan } from '../../src/input/pipeline.js';
import { parseDecimalTime, parseSourceDateEpoch, SharedTime } from '../../src/input/times.js';
import type { Inode } from '../../src/input/tree.js';
import { UserError } from '../../src/util/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'tsmakefs-inputs-'));
const cwd = process.cwd();
afterAll(() => {
  process.chdir(cwd);
  rmSync(tmp, { recursive: true, force: true });
});

const stage = join(tmp, 'stage');
const T = 1_700_000_000;

/** The staged tree as a METALOG line by line (full paths, numeric owners). */
const METALOG = [
  '#mtree 2.0',
  `. type=dir uid=0 gid=0 mode=0755 time=${T}`,
  `./b type=dir uid=1000 gid=1000 mode=0750 time=${T}`,
  `./b/c type=file uid=1000 gid=1000 mode=04555 time=${T}`,
  `./b/link type=link uid=0 gid=0 mode=0777 link=../a time=${T}`,
  `./a type=file uid=0 gid=0 mode=0644 time=${T}`,
  `./b/hard type=file uid=0 gid=0 mode=0644 time=${T}`,
  `./z\\040y type=file uid=0 gid=0 mode=0644 time=${T}`,
  '',
].join('\n');

beforeAll(() => {
  mkdirSync(join(stage, 'b'), { recursive: true });
  writeFileSync(join(stage, 'a'), Buffer.alloc(200_000, 7));
  writeFileSync(join(stage, 'b', 'c'), 'cee');
  writeFileSync(join(stage, 'z y'), 'zed');
  linkSync(join(stage, 'a'), join(stage, 'b', 'hard'));
  symlinkSync('../a', join(stage, 'b', 'link'));
  chownSync(join(stage, 'b'), 1000, 1000);
  chownSync(join(stage, 'b', 'c'), 1000, 1000);
  spawnSync('chmod', ['4555', join(stage, 'b', 'c')]);
  spawnSync('chmod', ['750', join(stage, 'b')]);
  for (const p of ['a', 'b/c', 'z y', 'b', '.']) utimesSync(join(stage, p), T, T);
  lutimesSync(join(stage, 'b', 'link'), T, T);
  writeFileSync(join(tmp, 'METALOG'), METALOG);
});

function tarOf(format: string): string {
  const out = join(tmp, `stage-${format}.tar`);
  const r = spawnSync('tar', [`--format=${format}`, '--sort=name', '--numeric-owner', '-C', stage, '-cf', out, '.']);
  if (r.status !== 0) throw new Error(String(r.stderr));
  return out;
}

function plan(inputs: string[], o: Partial<InputPlan> = {}): InputPlan {
  return { inputs, policy: {}, duplicates: 0, onlySpec: false, allRoot: false, warn: () => {}, ...o };
}

/** Open the inputs with the manifest's relative paths resolved from the staging directory. */
async function source(p: InputPlan, prewrite = false): Promise<TreeSource> {
  process.chdir(stage);
  try {
    return await openInputs(p, { prewrite });
  } finally {
    process.chdir(cwd);
  }
}

async function tree(p: InputPlan): Promise<Inode> {
  const s = await source(p);
  process.chdir(stage);
  try {
    return await treeInMemory(s);
  } finally {
    process.chdir(cwd);
  }
}

/** Metadata and data of every entry, path by path; hard links as "=first". */
function picture(root: Inode): Record<string, string> {
  const out: Record<string, string> = {};
  const seen = new Map<Inode, string>();
  const visit = (ino: Inode, path: string): void => {
    const first = seen.get(ino);
    if (first !== undefined) {
      out[path] = `=${first}`;
      return;
    }
    seen.set(ino, path);
    let data = '';
    if (ino.source?.kind === 'bytes') data = Buffer.from(ino.source.data).toString('hex').slice(0, 40);
    if (ino.source?.kind === 'path') data = readFileSync(resolve(stage, ino.source.path as string)).toString('hex').slice(0, 40);
    const t = [ino.atime, ino.mtime, ino.ctime, ino.crtime].map((x) => `${x.sec}.${x.nsec}`).join(',');
    out[path] = `${ino.type} ${ino.perm.toString(8)} ${ino.uid}:${ino.gid} ${t} ${ino.size} ${data} ${ino.target ? Buffer.from(ino.target).toString() : ''}`;
    const kids = [...(ino.entries ?? [])].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    for (const e of kids) visit(e.inode, `${path}/${Buffer.from(e.name).toString('latin1')}`);
  };
  visit(root, '');
  return out;
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

async function asyncFailure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
}

describe('every input kind gives one tree', () => {
  test('directory, ustar, gnu, pax, gzip, standard input, METALOG', async () => {
    const expected = picture(await tree(plan([stage])));
    const gz = join(tmp, 'stage.tar.gz');
    writeFileSync(gz, gzipSync(readFileSync(tarOf('pax'))));
    const variants: Array<[string, InputPlan]> = [
      ['ustar', plan([tarOf('ustar')])],
      ['gnu', plan([tarOf('gnu')])],
      ['pax', plan([tarOf('pax')])],
      ['gzip', plan([gz])],
      ['stdin', plan(['-'], { stdin: Readable.from([readFileSync(gz)]) })],
      ['METALOG', plan([join(tmp, 'METALOG')])],
      ['METALOG on stdin', plan(['-'], { stdin: Readable.from([Buffer.from(METALOG)]) })],
    ];
    for (const [what, p] of variants) expect(picture(await tree(p)), what).toEqual(expected);
  });

  test('file data reaches the image in the same order from a directory, a sorted tarball and a manifest', async () => {
    const order = async (p: InputPlan): Promise<string[]> => {
      const seen: string[] = [];
      const ctx: InputContext = {
        beginFile: () => {
          const parts: Uint8Array[] = [];
          return {
            write: (c) => void parts.push(Buffer.from(c)),
            end: () => {
              seen.push(Buffer.concat(parts).toString('latin1').slice(0, 4));
              return { kind: 'written', data: {} as never };
            },
          };
        },
        discard: () => {},
      };
      const s = await source(p, true);
      process.chdir(stage);
      try {
        await (s as (c: InputContext) => Promise<Inode>)(ctx);
      } finally {
        process.chdir(cwd);
      }
      return seen;
    };
    const dir = await order(plan([stage]));
    expect(dir).toEqual(['\x07\x07\x07\x07', 'cee', 'zed']); // a, b/c (b/hard is a's second name), "z y"
    expect(await order(plan([tarOf('gnu')]))).toEqual(dir);
    expect(await order(plan([join(tmp, 'METALOG')]))).toEqual(dir);
  });

  test('further directories merge into a tarball or manifest tree', async () => {
    const extra = join(tmp, 'extra');
    mkdirSync(join(extra, 'b'), { recursive: true });
    writeFileSync(join(extra, 'b', 'new'), 'new');
    const t = picture(await tree(plan([tarOf('gnu'), extra])));
    expect(Object.keys(t)).toContain('/b/new');
    expect(t['/b']).toMatch(/^dir 750 1000:1000/); // the first input's directory metadata stays
    const m = picture(await tree(plan([join(tmp, 'METALOG'), extra])));
    expect(m['/b/new']).toBe(t['/b/new']);
  });
});

describe('options over the tree', () => {
  test('--all-root, --force-uid and --force-gid (numbers or names from -N)', async () => {
    const etc = join(tmp, 'etc');
    mkdirSync(etc, { recursive: true });
    writeFileSync(join(etc, 'master.passwd'), 'root:*:0:0::0:0::/root:/bin/sh\nbuild:*:4000:4000::0:0::/:/bin/sh\n');
    writeFileSync(join(etc, 'group'), 'wheel:*:0:root\nstaff:*:20:\n');
    const owners = (r: Inode): Set<string> => new Set(Object.values(picture(r)).filter((v) => !v.startsWith('=')).map((v) => v.split(' ')[2]!));
    expect(owners(await tree(plan([stage], { allRoot: true })))).toEqual(new Set(['0:0']));
    expect(owners(await tree(plan([stage], { allRoot: true, forceGid: 'staff', userDbDir: etc })))).toEqual(new Set(['0:20']));
    expect(owners(await tree(plan([stage], { forceUid: 'build', userDbDir: etc })))).toEqual(new Set(['4000:0', '4000:1000']));
    const modes = picture(await tree(plan([stage], { allRoot: true })));
    expect(modes['/b/c']).toMatch(/^file 4555 0:0/); // setuid stays
    expect(await asyncFailure(source(plan([stage], { forceUid: 'nobody', userDbDir: etc })))).toBe(
      `--force-uid: unknown user 'nobody' (not in ${join(etc, 'master.passwd')})`,
    );
  });

  test('SOURCE_DATE_EPOCH caps times without -T, and is the time of entries that have none', async () => {
    const sde = { sec: T - 10, nsec: 0 };
    const capped = picture(await tree(plan([stage], { policy: { sourceDateEpoch: sde } })));
    expect(Object.values(capped).filter((v) => !v.startsWith('=')).every((v) => v.includes(`${T - 10}.0,${T - 10}.0,${T - 10}.0,${T - 10}.0`))).toBe(true);
    const old = picture(await tree(plan([stage], { policy: { sourceDateEpoch: { sec: T + 10, nsec: 0 } } })));
    expect(old['/a']).toContain(`${T}.0`);
    // -T wins and nothing is capped
    const stamped = picture(await tree(plan([stage], { policy: { stamp: { sec: T + 99, nsec: 0 }, sourceDateEpoch: sde } })));
    expect(stamped['/b/c']).toContain(`${T + 99}.0,${T + 99}.0`);
    // a manifest line without time=
    const m = join(tmp, 'M-notime');
    writeFileSync(m, '. type=dir mode=0755\n./a type=file mode=0644\n');
    const t = picture(await tree(plan([m], { policy: { sourceDateEpoch: sde } })));
    expect(t['/a']).toContain(`${T - 10}.0,${T - 10}.0`);
  });

  test('-F applies to directories and tarballs, not manifests', async () => {
    const spec = join(tmp, 'spec');
    writeFileSync(spec, '. type=dir mode=0700\na type=file mode=0600\n');
    const fromTar = picture(await tree(plan([tarOf('gnu')], { specFile: spec, onlySpec: true })));
    expect(fromTar).toEqual({ '': expect.stringMatching(/^dir 700 /) as string, '/a': expect.stringMatching(/^file 600 /) as string });
    expect(await asyncFailure(source(plan([join(tmp, 'METALOG')], { specFile: spec })))).toBe(
      `-F: a spec applies to directory and tarball inputs; ${join(tmp, 'METALOG')} is a manifest (put the metadata in it)`,
    );
  });
});

describe('input detection', () => {
  test('by content: a compressed stream is a compressed tarball, then tar, anything else a manifest', () => {
    const tar = (compression: string | null): unknown => ({ kind: 'tar', compression });
    expect(sniff(Buffer.from([0x1f, 0x8b, 8]))).toEqual(tar('gzip'));
    expect(sniff(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]))).toEqual(tar('xz'));
    expect(sniff(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 4]))).toEqual(tar('zstd'));
    expect(sniff(Buffer.from('BZh91AY&SY'))).toEqual(tar('bzip2'));
    expect(sniff(Buffer.from('LZIP\x01'))).toEqual(tar('lzip'));
    expect(sniff(readFileSync(tarOf('ustar')).subarray(0, 512))).toEqual(tar(null));
    expect(sniff(readFileSync(tarOf('gnu')).subarray(0, 512))).toEqual(tar(null));
    // text that starts like a magic number without its version byte is text
    expect(sniff(Buffer.from('BZh is not bzip2\n'))).toEqual({ kind: 'manifest' });
    expect(sniff(Buffer.from('LZIP\n'))).toEqual({ kind: 'manifest' });
    expect(sniff(Buffer.from('#mtree 2.0\n./a type=file\n'))).toEqual({ kind: 'manifest' });
  });

  test('later inputs are directories or tarballs: merged in order; "-", a manifest or a pipe only first', async () => {
    expect(await asyncFailure(source(plan([stage, '-'])))).toBe('-: only the first input may be standard input');
    expect(await asyncFailure(source(plan([stage, join(tmp, 'METALOG')])))).toBe(
      `${join(tmp, 'METALOG')}: only the first input may be a manifest (later ones are directories or tarballs)`,
    );
    expect(await asyncFailure(source(plan([stage, '/dev/null'])))).toBe('/dev/null: only the first input may be a pipe or device');
    writeFileSync(join(tmp, 'empty.tar'), '');
    expect(await asyncFailure(source(plan([stage, join(tmp, 'empty.tar')])))).toBe(
      `${join(tmp, 'empty.tar')}: empty file, not a tarball (later inputs are directories or tarballs)`,
    );
    // a missing decompressor is named before any input is read
    const zst = join(tmp, 'later.tar.zst');
    writeFileSync(zst, Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(600)]));
    const pathBefore = process.env.PATH;
    process.env.PATH = join(tmp, 'no-commands-here');
    try {
      expect(await asyncFailure(source(plan([stage, zst])))).toBe(
        `${zst}: reading zstd-compressed input needs the zstd command, which is not on PATH; install it, or give the tarball decompressed`,
      );
    } finally {
      process.env.PATH = pathBefore;
    }
    // a tarball cut short within its first header is still a tarball (a manifest is text)
    writeFileSync(join(tmp, 'short.tar'), readFileSync(tarOf('gnu')).subarray(0, 300));
    expect(await asyncFailure(source(plan([join(tmp, 'short.tar')])).then(treeInMemory))).toBe(`${join(tmp, 'short.tar')}: truncated archive`);
    expect(await asyncFailure(source(plan([join(tmp, 'nope')])))).toBe(`${join(tmp, 'nope')}: No such file or directory`);
    // the same tree twice clashes, named in both
    expect(await asyncFailure(source(plan([stage, tarOf('gnu')])).then(treeInMemory))).toBe(
      `${join(tmp, 'stage-gnu.tar')}: member 'a': cannot merge file with existing file ${stage}/a`,
    );
    // a tarball of b/ alone, merged into a directory and into a tarball without it: the whole tree
    const whole = picture(await tree(plan([stage])));
    const onlyB = join(tmp, 'only-b.tar');
    const noB = join(tmp, 'no-b.tar');
    const tarArgs = ['--format=pax', '--sort=name', '--numeric-owner', '-C', stage];
    expect(spawnSync('tar', [...tarArgs, '-cf', onlyB, './b']).status).toBe(0);
    expect(spawnSync('tar', [...tarArgs, '--exclude=./b', '-cf', noB, '.']).status).toBe(0);
    const bDir = join(tmp, 'b-only-dir');
    mkdirSync(bDir);
    expect(spawnSync('tar', ['-C', bDir, '-xpf', onlyB]).status).toBe(0);
    // (hard links across inputs are two files: b/hard is a link to a, which b/ alone does not hold)
    const relinked = { ...whole, '/b/hard': whole['/a'] };
    expect(picture(await tree(plan([noB, onlyB])))).toEqual(relinked);
    expect(picture(await tree(plan([noB, bDir])))).toEqual(relinked);
    // a later directory's xattrs are read after a tarball or manifest as after a directory
    expect(spawnSync('setfattr', ['-n', 'user.later', '-v', 'yes', join(bDir, 'b', 'c')]).status).toBe(0);
    const cOf = (root: Inode): Inode => root.entries!.find((e) => Buffer.from(e.name).toString() === 'b')!.inode.entries!.find((e) => Buffer.from(e.name).toString() === 'c')!.inode;
    for (const first of [noB, join(tmp, 'METALOG-no-b')]) {
      if (first !== noB) writeFileSync(first, METALOG.split('\n').filter((l) => !l.startsWith('./b')).join('\n'));
      const c = cOf(await tree(plan([first, bDir], { xattrs: true })));
      expect(Object.fromEntries(c.xattrs ?? []), first).toEqual({ 'user.later': Buffer.from('yes') });
    }
  });

  test('without getfattr, xattrs are left out with one warning that says how to silence it', async () => {
    const xdir = join(tmp, 'xattr-nogetfattr');
    mkdirSync(xdir);
    writeFileSync(join(xdir, 'f'), 'x');
    expect(spawnSync('setfattr', ['-n', 'user.k', '-v', 'v', join(xdir, 'f')]).status).toBe(0);
    const warnings: string[] = [];
    const path = process.env['PATH'];
    process.env['PATH'] = join(tmp, 'no-such-bin');
    let root: Inode;
    try {
      root = await tree(plan([xdir], { xattrs: true, warn: (w: string) => void warnings.push(w) }));
    } finally {
      process.env['PATH'] = path;
    }
    expect(warnings).toEqual(['getfattr is not installed (the attr package): extended attributes of the input are not stored; -o xattrs=off leaves them out without this warning']);
    expect(root.entries![0]!.inode.xattrs).toBeUndefined();
    // and with getfattr the same tree has them
    const f = (await tree(plan([xdir], { xattrs: true }))).entries![0]!.inode;
    expect(Object.fromEntries(f.xattrs ?? [])).toEqual({ 'user.k': Buffer.from('v') });
  });

  test('one merge for the whole input list: hard links span a tarball between directories, clashes name the right input, xattrs stay with their input', async () => {
    const m = join(tmp, 'merge-list');
    const d1 = join(m, 'd1'), d2 = join(m, 'd2'), src = join(m, 'src');
    for (const d of [join(d1, 'etc'), join(d2, 'sub'), join(d2, 'etc'), src]) mkdirSync(d, { recursive: true });
    writeFileSync(join(d1, 'f'), 'linked');
    linkSync(join(d1, 'f'), join(d2, 'g'));
    writeFileSync(join(d2, 'sub', 'x'), 'x');
    writeFileSync(join(src, 'other'), 'o');
    const t = join(m, 't.tar');
    expect(spawnSync('tar', ['--sort=name', '-C', src, '-cf', t, 'other']).status).toBe(0);
    const link = (root: Inode): boolean => {
      const byName = (n: string): Inode => root.entries!.find((e) => Buffer.from(e.name).toString() === n)!.inode;
      return byName('f') === byName('g');
    };
    // a hard link across two directories stays one inode wherever the tarball stands
    expect(link(await tree(plan([d1, d2, t])))).toBe(true);
    expect(link(await tree(plan([d1, t, d2])))).toBe(true);
    expect(link(await tree(plan([t, d1, d2])))).toBe(true);
    // a clash after a tarball names the directory that holds the other entry
    mkdirSync(join(src, 'sub'));
    writeFileSync(join(src, 'sub', 'x'), 'y');
    const t2 = join(m, 't2.tar');
    expect(spawnSync('tar', ['--sort=name', '-C', src, '-cf', t2, 'sub']).status).toBe(0);
    expect(await asyncFailure(source(plan([d1, d2, t2])).then(treeInMemory))).toBe(`${t2}: member 'sub/x': cannot merge file with existing file ${d2}/sub/x`);
    expect(await asyncFailure(source(plan([t, d1, d2, t2])).then(treeInMemory))).toBe(`${t2}: member 'sub/x': cannot merge file with existing file ${d2}/sub/x`);
    expect(await asyncFailure(source(plan([t2, d2])).then(treeInMemory))).toBe(`${d2}/sub/x: cannot merge file with existing file 'sub/x' of ${t2}`);
    // a later directory's xattrs go to what that directory gave the tree, not
    // to an earlier input's entry at the same path (its root, a merged directory)
    for (const [p, v] of [[d2, 'root'], [join(d2, 'etc'), 'etc'], [join(d2, 'sub'), 'sub']] as const) {
      expect(spawnSync('setfattr', ['-n', 'user.later', '-v', v, p]).status).toBe(0);
    }
    // a directory an archive only implies takes the attributes of the first
    // input that lists it
    const imp = join(m, 'imp');
    mkdirSync(join(imp, 'usr', 'bin'), { recursive: true });
    writeFileSync(join(imp, 'usr', 'bin', 'x'), 'x');
    spawnSync('chmod', ['700', join(imp, 'usr')]);
    utimesSync(join(imp, 'usr'), 1_000_000_000, 1_000_000_000);
    const implied = join(m, 'implied.tar'), listed = join(m, 'listed.tar');
    expect(spawnSync('tar', ['--sort=name', '-C', imp, '-cf', implied, 'usr/bin/x']).status).toBe(0);
    expect(spawnSync('tar', ['--sort=name', '--no-recursion', '-C', imp, '-cf', listed, 'usr']).status).toBe(0);
    const usrOnly = join(m, 'usr-only');
    mkdirSync(join(usrOnly, 'usr'), { recursive: true });
    spawnSync('chmod', ['700', join(usrOnly, 'usr')]);
    utimesSync(join(usrOnly, 'usr'), 1_000_000_000, 1_000_000_000);
    for (const inputs of [[implied, listed], [implied, usrOnly]]) {
      const usr = (await tree(plan(inputs))).entries!.find((e) => Buffer.from(e.name).toString() === 'usr')!.inode;
      expect([usr.perm.toString(8), usr.mtime.sec], inputs.join(' ')).toEqual(['700', 1_000_000_000]);
    }
    // but a listed directory keeps its own
    const usrOf = async (inputs: string[]): Promise<Inode> => (await tree(plan(inputs))).entries!.find((e) => Buffer.from(e.name).toString() === 'usr')!.inode;
    expect((await usrOf([listed, implied])).perm.toString(8)).toBe('700');
    spawnSync('chmod', ['755', join(usrOnly, 'usr')]);
    expect((await usrOf([listed, usrOnly])).perm.toString(8)).toBe('700');
    for (const inputs of [[d1, d2], [t, d1, d2], [d1, t, d2]]) {
      const root = await tree(plan(inputs, { xattrs: true }));
      const at = (n: string): Inode => root.entries!.find((e) => Buffer.from(e.name).toString() === n)!.inode;
      expect(root.xattrs, inputs.join(' ')).toBeUndefined();
      expect(at('etc').xattrs, inputs.join(' ')).toBeUndefined();
      expect(Object.fromEntries(at('sub').xattrs ?? []), inputs.join(' ')).toEqual({ 'user.later': Buffer.from('sub') });
    }
  });
});

describe('times', () => {
  test('SOURCE_DATE_EPOCH must be a number of seconds', () => {
    expect(parseSourceDateEpoch(undefined)).toBeUndefined();
    expect(parseSourceDateEpoch('')).toBeUndefined();
    expect(parseSourceDateEpoch('1700000000')).toEqual({ sec: 1700000000, nsec: 0 });
    expect(failure(() => parseSourceDateEpoch('yesterday'))).toBe("SOURCE_DATE_EPOCH: 'yesterday' is not a non-negative integer number of seconds");
  });

  test('equal times are one object, consecutive or not; different ones never are', () => {
    const shared = new SharedTime();
    const t = (sec: number, nsec: number) => Object.freeze({ sec, nsec });
    const a = shared.share(t(1_700_000_000, 5));
    const b = shared.share(t(1_700_000_001, 0));
    // same second, another nanosecond: its own object, with its own value
    const c = shared.share(t(1_700_000_000, 6));
    expect(c).toEqual({ sec: 1_700_000_000, nsec: 6 });
    expect(c).not.toBe(a);
    expect(shared.share(t(1_700_000_000, 6))).toBe(c);
    expect(shared.share(t(1_700_000_001, 0))).toBe(b);
    expect(shared.share(t(1_700_000_001, 0))).toBe(b);
    // times of one second, interleaved: each stays one object
    expect(shared.share(t(1_700_000_000, 5))).toBe(a);
    expect(shared.share(t(1_700_000_000, 6))).toBe(c);
    const d = shared.share(t(1_700_000_000, 7));
    expect(d).toEqual({ sec: 1_700_000_000, nsec: 7 });
    expect(shared.share(t(1_700_000_000, 5))).toBe(a);
    expect(shared.share(t(1_700_000_000, 7))).toBe(d);
    // many distinct times (the map is cleared when full): values stay right
    for (let i = 0; i < 40_000; i++) expect(shared.share(t(i % 20_000, i % 3)).sec).toBe(i % 20_000);
    expect(shared.share(t(-1, 999_999_999))).toEqual({ sec: -1, nsec: 999_999_999 });
  });

  test('pax decimal times', () => {
    expect(parseDecimalTime('1700000000.25')).toEqual({ sec: 1700000000, nsec: 250000000 });
    expect(parseDecimalTime('1.123456789999')).toEqual({ sec: 1, nsec: 123456789 });
    expect(parseDecimalTime('-0.5')).toEqual({ sec: -1, nsec: 500000000 });
    expect(parseDecimalTime('12')).toEqual({ sec: 12, nsec: 0 });
    expect(parseDecimalTime('1e9')).toBeUndefined();
  });
});

describe('command line', () => {
  const build = (env: NodeJS.ProcessEnv, ...argv: string[]): BuildInvocation => {
    const inv = parseArgs(['-s', '1g', '-o', 'poolname=p', ...argv], env);
    if (inv.kind !== 'build') throw new Error('not a build');
    return inv;
  };

  test('-F -x -N -D --all-root --force-uid --force-gid and SOURCE_DATE_EPOCH', () => {
    const inv = build({ SOURCE_DATE_EPOCH: '1234' }, '-F', 'spec', '-x', '-N', 'etc', '-D', '-D', '--all-root',
      '--force-uid', '0', '--force-gid', 'wheel', 'img', 'METALOG');
    expect(inv).toMatchObject({
      specFile: 'spec', onlySpec: true, userDbDir: 'etc', duplicates: 2, allRoot: true, forceUid: '0', forceGid: 'wheel',
      sourceDateEpoch: { sec: 1234, nsec: 0 }, inputs: ['METALOG'],
    });
    const plain = build({}, 'img', 'dir');
    expect([plain.specFile, plain.onlySpec, plain.duplicates, plain.allRoot, plain.sourceDateEpoch]).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(failure(() => build({}, '-x', 'img', 'dir'))).toBe('-x requires -F specfile');
    expect(failure(() => build({ SOURCE_DATE_EPOCH: '-5' }, 'img', 'dir'))).toMatch(/^SOURCE_DATE_EPOCH: '-5'/);
  });
});
