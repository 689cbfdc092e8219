// The tarball reader, on archives made by GNU tar (ustar, pax, gnu) and on
// hand-made ones for what GNU tar will not write (binary xattrs, global pax
// headers, broken archives). Tree models only; file data goes to an
// in-memory InputContext that records what the reader asks of it.

import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chownSync, closeSync, createReadStream, linkSync, lutimesSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { InputContext } from '../../src/image.js';
import type { UserDb } from '../../src/input/passwd.js';
import { readTar, type TarOptions } from '../../src/input/tar.js';
import { fdPull, filePull, prefixed, pullHead, SocketPull } from '../../src/input/tar-feed.js';
import type { DataSource, Inode } from '../../src/input/tree.js';
import { walkDirectories } from '../../src/input/walk.js';
import { UserError } from '../../src/util/errors.js';
import { fdCount, settledFds } from '../helpers/fds.js';

const tmp = mkdtempSync(join(tmpdir(), 'tsmakefs-tar-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------- helpers

interface Recorder extends InputContext {
  begun: number[];
  chunks: number[];
  discarded: DataSource[];
}

/** An InputContext keeping data in memory; sources are { kind: 'bytes' }. */
function recorder(): Recorder {
  const r: Recorder = {
    begun: [], chunks: [], discarded: [],
    beginFile(size) {
      r.begun.push(size);
      const parts: Buffer[] = [];
      return {
        write: (c) => {
          r.chunks.push(c.length);
          parts.push(Buffer.from(c));
        },
        end: () => ({ kind: 'bytes', data: Buffer.concat(parts) }),
      };
    },
    discard: (s) => void r.discarded.push(s),
  };
  return r;
}

async function read(archive: Buffer, o: Partial<TarOptions> = {}, ctx: Recorder = recorder()): Promise<Inode> {
  return readTar(Readable.from([archive]), ctx, { name: 'T.tar', compression: null, policy: {}, warn: () => {}, ...o });
}

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
}

/** `archive` compressed by the host's `cmd -c`. */
function squeezed(cmd: string, archive: Buffer): Buffer {
  const r = spawnSync(cmd, ['-c'], { input: archive, maxBuffer: 1 << 26 });
  expect(r.status, `${cmd} -c: ${String(r.stderr)}`).toBe(0);
  return r.stdout;
}

/** Where the host's command `name` is, by PATH. */
function hostCommand(name: string): string {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
}

/** Run `f` with PATH set to `path`. */
async function withPath<T>(path: string, f: () => Promise<T>): Promise<T> {
  const saved = process.env.PATH;
  process.env.PATH = path;
  try {
    return await f();
  } finally {
    process.env.PATH = saved;
  }
}

/** A comparable picture of a tree: metadata, data, and hard links as "=first path". */
function snapshot(root: Inode): unknown {
  const seen = new Map<Inode, string>();
  const visit = (ino: Inode, path: string): unknown => {
    const first = seen.get(ino);
    if (first !== undefined) return `=${first}`;
    seen.set(ino, path);
    let data: string | undefined;
    if (ino.type === 'file') {
      const s = ino.source!;
      const bytes = s.kind === 'bytes' ? s.data : s.kind === 'path' ? readFileSync(s.path as string) : undefined;
      data = Buffer.from(bytes!).toString('hex');
    }
    const entries = ino.entries && [...ino.entries]
      .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))
      .map((e) => [Buffer.from(e.name).toString('latin1'), visit(e.inode, `${path}/${Buffer.from(e.name).toString('latin1')}`)]);
    const times = [ino.atime, ino.mtime, ino.ctime, ino.crtime].map((t) => `${t.sec}.${t.nsec}`);
    return {
      type: ino.type, perm: ino.perm.toString(8), uid: ino.uid, gid: ino.gid, times,
      size: ino.type === 'file' ? ino.size : undefined, data,
      target: ino.target && Buffer.from(ino.target).toString('latin1'),
      rdev: ino.type === 'chardev' || ino.type === 'blockdev' ? [ino.rdevMajor, ino.rdevMinor] : undefined,
      xattrs: ino.xattrs && Object.fromEntries([...ino.xattrs].map(([k, v]) => [k, Buffer.from(v).toString('hex')])),
      entries,
    };
  };
  return visit(root, '');
}

function gnuTar(dir: string, format: string, extra = ['--numeric-owner']): Buffer {
  const out = join(tmp, `out-${format}-${Math.random().toString(36).slice(2)}.tar`);
  const r = spawnSync('tar', [`--format=${format}`, '--sort=name', ...extra, '-C', dir, '-cf', out, '.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  return readFileSync(out);
}

// A minimal ustar writer for archives GNU tar does not make.
function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0');
}

interface Member {
  name: string | Buffer;
  type?: string; // typeflag character
  data?: Buffer;
  size?: number; // declared size, if not data.length
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

function header(m: Member): Buffer {
  const b = Buffer.alloc(512);
  Buffer.from(m.name).copy(b, 0, 0, 100);
  b.write(octal(m.mode ?? 0o644, 8), 100, 'latin1');
  b.write(octal(m.uid ?? 0, 8), 108, 'latin1');
  b.write(octal(m.gid ?? 0, 8), 116, 'latin1');
  b.write(octal(m.size ?? m.data?.length ?? 0, 12), 124, 'latin1');
  b.write(octal(m.mtime ?? 1000, 12), 136, 'latin1');
  b.write(m.type ?? '0', 156, 'latin1');
  if (m.linkname) b.write(m.linkname, 157, 'latin1');
  b.write('ustar\u000000', 257, 'latin1');
  if (m.uname) b.write(m.uname, 265, 'latin1');
  b.write(octal(m.devmajor ?? 0, 8), 329, 'latin1');
  b.write(octal(m.devminor ?? 0, 8), 337, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${octal(sum, 7)}\u0000`, 148, 'latin1');
  return b;
}

function pad(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

function paxRecords(records: Array<[string, Buffer | string]>): Buffer {
  return Buffer.concat(records.map(([k, v]) => {
    const body = Buffer.concat([Buffer.from(` ${k}=`), Buffer.from(v), Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len++;
    return Buffer.concat([Buffer.from(String(len)), body]);
  }));
}

function tarOf(members: Array<Member | { pax: Array<[string, Buffer | string]>; global?: boolean }>, end = true): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    if ('pax' in m) {
      const data = paxRecords(m.pax);
      parts.push(header({ name: 'PaxHeader', type: m.global ? 'g' : 'x', data }), pad(data));
    } else {
      parts.push(header(m));
      if (m.data) parts.push(pad(m.data));
    }
  }
  if (end) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------- staged trees

const stage = join(tmp, 'stage');
const BAD = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "caf\xe9", not UTF-8

beforeAll(() => {
  mkdirSync(join(stage, 'dir', 'sub'), { recursive: true });
  writeFileSync(join(stage, 'small'), 'hello\n');
  writeFileSync(join(stage, 'dir', 'big'), Buffer.alloc(300_000, 0x5a));
  writeFileSync(join(stage, 'empty'), '');
  linkSync(join(stage, 'small'), join(stage, 'dir', 'hard'));
  symlinkSync('../small', join(stage, 'dir', 'sym'));
  spawnSync('mkfifo', [join(stage, 'fifo')]);
  spawnSync('mknod', [join(stage, 'dir', 'null'), 'c', '1', '3']);
  chownSync(join(stage, 'dir'), 1234, 5678);
  const t = 1_700_000_000;
  for (const p of ['small', 'dir/big', 'empty', 'fifo', 'dir/null', 'dir/sub', 'dir', '.']) utimesSync(join(stage, p), t, t);
  lutimesSync(join(stage, 'dir', 'sym'), t, t);
});


describe('archives from GNU tar', () => {
  test('ustar, gnu and pax give the tree the directory walk gives', async () => {
    const walked = snapshot(walkDirectories([stage]));
    for (const format of ['ustar', 'gnu', 'pax']) {
      const tree = await read(gnuTar(stage, format));
      expect(snapshot(tree), format).toEqual(walked);
    }
  });

  test('gzip, long names and link targets, non-UTF-8 names, pax time fractions', async () => {
    const d = join(tmp, 'long');
    const longDir = 'd'.repeat(120);
    const longName = 'n'.repeat(200);
    const target = `${'../'.repeat(2)}${'t'.repeat(250)}`;
    mkdirSync(join(d, longDir), { recursive: true });
    writeFileSync(join(d, longDir, longName), 'deep');
    symlinkSync(target, join(d, 'sym'));
    writeFileSync(Buffer.concat([Buffer.from(`${d}/`), BAD]), 'bytes');
    utimesSync(join(d, longDir, longName), 1_700_000_000.25, 1_700_000_000.25);
    const walked = snapshot(walkDirectories([d])) as { entries: Array<[string, unknown]> };
    const pax = await read(gzipSync(gnuTar(d, 'pax')), { compression: 'gzip' });
    expect(snapshot(pax)).toEqual(walked);
    // the gnu format keeps whole seconds only
    const gnu = snapshot(await read(gnuTar(d, 'gnu'))) as typeof walked;
    expect(gnu.entries.map(([n]) => n)).toEqual(walked.entries.map(([n]) => n));
    expect(JSON.stringify(gnu)).toContain('"1700000000.0"');
    expect(JSON.stringify(walked)).toContain('"1700000000.250000000"');
  });

  test('-T replaces every time; the numbers are kept unless -N names the owner', async () => {
    const tar = gnuTar(stage, 'gnu', ['--owner=build:4242', '--group=staff:4343']);
    const users: UserDb = {
      uid: (n) => (n === 'build' ? 7 : undefined), gid: () => undefined, userSource: 'x', groupSource: 'x',
    };
    const root = await read(tar, { policy: { stamp: { sec: 42, nsec: 0 } }, users });
    const small = root.entries!.find((e) => Buffer.from(e.name).toString() === 'small')!.inode;
    expect(small).toMatchObject({ uid: 7, gid: 4343, mtime: { sec: 42, nsec: 0 }, ctime: { sec: 42, nsec: 0 } });
    const plain = await read(tar);
    expect(plain.uid).toBe(4242);
  });
});

describe('hand-made archives', () => {
  test('pax records are bytes: binary xattrs, non-UTF-8 paths, libarchive xattrs, global headers', async () => {
    const xattr = Buffer.from([0x00, 0xff, 0x80, 0x0a]);
    const root = await read(tarOf([
      { pax: [['uid', '3000000'], ['SCHILY.xattr.user.all', 'g']], global: true },
      { pax: [['path', BAD], ['SCHILY.xattr.security.capability', xattr], ['LIBARCHIVE.xattr.user%2Eb64', 'aGk='], ['mtime', '-1.25']] },
      { name: 'placeholder', data: Buffer.from('x') },
      { pax: [['uid', ''], ['gid', '12'], ['SCHILY.xattr.user.all', ''], ['SCHILY.xattr.user.empty', ''], ['LIBARCHIVE.xattr.user.e64', '']] },
      { name: 'second' },
    ]));
    const [first, second] = root.entries!.map((e) => e);
    expect(Buffer.from(first!.name)).toEqual(BAD);
    expect(snapshot(first!.inode)).toMatchObject({
      uid: 3000000, times: ['-2.750000000', '-2.750000000', '-2.750000000', '-2.750000000'],
      xattrs: { 'user.all': '67', 'security.capability': '00ff800a', 'user.b64': '6869' },
    });
    // an empty value deletes the global record for this member, but an
    // xattr's is the attribute's (empty) value, as GNU tar writes and extracts it
    expect(second!.inode).toMatchObject({ uid: 0, gid: 12 });
    expect(snapshot(second!.inode)).toMatchObject({ xattrs: { 'user.all': '', 'user.empty': '', 'user.e64': '' } });
  });

  test('a path that appears again replaces the earlier member; its data is handed back', async () => {
    const ctx = recorder();
    const root = await read(tarOf([
      { name: 'f', data: Buffer.from('first') },
      { name: 'g', type: '1', linkname: 'f' },
      { name: 'f', data: Buffer.from('second') },
      { name: 'h', data: Buffer.from('gone') },
      { name: 'h', type: '2', linkname: 'f' },
      { name: 'd/', type: '5', mode: 0o700, mtime: 5 },
      { name: 'd/x', data: Buffer.from('in d') },
      { name: 'd', type: '5', mode: 0o750, mtime: 6 },
    ]), {}, ctx);
    const snap = snapshot(root) as { entries: Array<[string, { data?: string; target?: string; perm?: string; entries?: unknown[] }]> };
    const byName = Object.fromEntries(snap.entries);
    expect(Buffer.from(byName['f']!.data!, 'hex').toString()).toBe('second');
    expect(Buffer.from(byName['g']!.data!, 'hex').toString()).toBe('first'); // the hard link keeps the old inode
    expect(byName['h']).toMatchObject({ target: 'f' });
    expect(byName['d']).toMatchObject({ perm: '750' });
    expect(byName['d']!.entries).toHaveLength(1);
    // "first" is still linked as g: only "gone" was handed back
    expect(ctx.discarded.map((s) => (s.kind === 'bytes' ? Buffer.from(s.data).toString() : s.kind))).toEqual(['gone']);
  });

  test('directories that appear only implicitly; "./", "/" and "." components', async () => {
    const root = await read(tarOf([
      { name: './a/b/c', data: Buffer.from('c'), mtime: 77 },
      { name: '/a//b/./d', data: Buffer.from('d') },
      { name: './', type: '5', mode: 0o711, mtime: 9 },
    ]), { policy: { sourceDateEpoch: { sec: 50, nsec: 0 } } });
    expect(root).toMatchObject({ perm: 0o711, mtime: { sec: 9, nsec: 0 } });
    const a = root.entries![0]!.inode;
    expect(a).toMatchObject({ type: 'dir', perm: 0o755, uid: 0, gid: 0, mtime: { sec: 50, nsec: 0 } });
    expect(a.entries![0]!.inode.entries!.map((e) => Buffer.from(e.name).toString())).toEqual(['c', 'd']);
  });

  test('device numbers, FIFOs, uname lookup falling back to the number', async () => {
    const users: UserDb = { uid: () => undefined, gid: () => undefined, userSource: 'x', groupSource: 'x' };
    const root = await read(tarOf([
      { name: 'blk', type: '4', devmajor: 4095, devminor: 1048575, mode: 0o640, uid: 5, uname: 'nobody-here' },
      { name: 'p', type: '6' },
    ]), { users });
    expect(root.entries![0]!.inode).toMatchObject({ type: 'blockdev', rdevMajor: 4095, rdevMinor: 1048575, perm: 0o640, uid: 5 });
    expect(root.entries![1]!.inode.type).toBe('fifo');
  });

  test('file data is streamed in pieces as it arrives', async () => {
    const ctx = recorder();
    const big = Buffer.alloc(4 << 20, 1);
    const archive = tarOf([{ name: 'big', data: big }]);
    // arrive as a stream of 64 KiB reads, the way a file or pipe delivers it
    const pieces = Array.from({ length: Math.ceil(archive.length / 65536) }, (_, i) => archive.subarray(i * 65536, (i + 1) * 65536));
    await readTar(Readable.from(pieces), ctx, { name: 'T.tar', compression: null, policy: {}, warn: () => {} });
    expect(ctx.begun).toEqual([4 << 20]);
    expect(ctx.chunks.length).toBeGreaterThan(10);
    expect(Math.max(...ctx.chunks)).toBeLessThanOrEqual(65536);
  });
});

describe('errors: one line naming the archive and the member', () => {
  const good = (): Buffer => tarOf([{ name: 'a', data: Buffer.alloc(5000, 1) }, { name: 'b', data: Buffer.from('b') }]);

  test('truncated archives', async () => {
    expect(await failure(read(good().subarray(0, 3000)))).toBe("T.tar: truncated archive: member 'a' is cut short (5000 bytes expected)");
    expect(await failure(read(good().subarray(0, 5632 + 100)))).toBe("T.tar: truncated archive after member 'a'");
    const gz = gzipSync(good());
    expect(await failure(read(gz.subarray(0, gz.length - 20), { compression: 'gzip' }))).toMatch(/^T\.tar: truncated gzip data/);
  });

  test('not a tar archive, or not gzip', async () => {
    expect(await failure(read(Buffer.alloc(1024, 0x41)))).toBe('T.tar: not a valid tar archive (bad header at the start)');
    expect(await failure(read(good(), { compression: 'gzip' }))).toMatch(/^T\.tar: not valid gzip data/);
  });

  test('xz, zstd and bzip2 by the host\'s commands: the same tree; their failures by name', async () => {
    const archive = good();
    const plain = snapshot(await read(archive));
    const squeeze = (cmd: string): Buffer => squeezed(cmd, archive);
    const xz = squeeze('xz');
    for (const [compression, data] of [['xz', xz], ['zstd', squeeze('zstd')], ['bzip2', squeeze('bzip2')]] as const) {
      expect(snapshot(await read(data, { compression })), compression).toEqual(plain);
    }
    // what a command says though it succeeds is passed on as a warning
    const warnings: string[] = [];
    const garbage = Buffer.concat([squeeze('bzip2'), Buffer.from('garbage')]);
    expect(snapshot(await read(garbage, { compression: 'bzip2', warn: (m) => warnings.push(m) }))).toEqual(plain);
    expect(warnings).toEqual(['T.tar: (stdin): trailing garbage after EOF ignored']);
    // delivered in small pieces, as standard input does
    const pieces = Array.from({ length: Math.ceil(xz.length / 100) }, (_, i) => xz.subarray(i * 100, (i + 1) * 100));
    expect(snapshot(await readTar(Readable.from(pieces), recorder(), { name: 'T.tar', compression: 'xz', policy: {}, warn: () => {} }))).toEqual(plain);

    expect(await failure(read(xz.subarray(0, xz.length - 30), { compression: 'xz' }))).toMatch(
      /^T\.tar: truncated xz data after member 'b' \(xz exit 1: \(stdin\): Unexpected end of input\)$/,
    );
    const corrupt = Buffer.from(xz);
    corrupt[xz.length >> 1] ^= 0xff;
    expect(await failure(read(corrupt, { compression: 'xz' }))).toMatch(/^T\.tar: not valid xz data \(xz exit 1: .*corrupt/);
    expect(await failure(read(archive, { compression: 'zstd' }))).toMatch(/^T\.tar: not valid zstd data \(zstd exit 1/);
    // valid xz around something that is no tarball, on a stream that does
    // not end (standard input from a writer that keeps it open): the tar
    // error, after a moment, not when the writer lets go
    // (bytes that do not compress: xz reads its input a buffer at a time)
    const noise = Buffer.alloc(3 << 20);
    for (let i = 0, x = 1; i < noise.length; i++) noise[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    const junk = spawnSync('xz', ['-0', '-c'], { input: noise, maxBuffer: 1 << 24 }).stdout;
    // cut short inside a member's data: named, as a plain archive's would be
    const bigXz = spawnSync('xz', ['-0', '-c'], { input: tarOf([{ name: 'big', data: noise }]), maxBuffer: 1 << 24 }).stdout;
    expect(await failure(read(bigXz.subarray(0, bigXz.length >> 1), { compression: 'xz' }))).toMatch(
      /^T\.tar: truncated xz data in member 'big' \(xz exit 1: .*Unexpected end of input\)$/,
    );
    const open = new Readable({ read() {} });
    open.push(junk);
    const t0 = Date.now();
    expect(await failure(readTar(open, recorder(), { name: 'T.tar', compression: 'xz', policy: {}, warn: () => {} }))).toBe(
      'T.tar: not a valid tar archive (bad header at the start of the xz-decompressed data)',
    );
    expect(Date.now() - t0).toBeLessThan(5000);
    // what the archive holds is still named by member, and the command stopped
    const linked = spawnSync('xz', ['-c'], { input: tarOf([{ name: 'l', type: '1', linkname: 'nowhere' }]) }).stdout;
    expect(await failure(read(linked, { compression: 'xz' }))).toBe(
      "T.tar: member 'l': hard link to 'nowhere', which is not in the archive before it",
    );
  });

  test('a command stopped from outside is not taken for bad data; an xz without -T (BusyBox) still decodes', async () => {
    const bin = join(tmp, 'fake-bin');
    mkdirSync(bin, { recursive: true });
    const realXz = hostCommand('xz');
    // an xz that is killed as the OOM killer would
    writeFileSync(join(bin, 'xz'), '#!/bin/sh\nkill -KILL $$\n', { mode: 0o755 });
    await withPath(`${bin}:${process.env.PATH}`, async () => {
      expect(await failure(read(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]), { compression: 'xz' }))).toBe(
        'T.tar: the xz command was stopped by SIGKILL before the end of its input',
      );
      // BusyBox's xz: no -T
      writeFileSync(join(bin, 'xz'), [
        '#!/bin/sh',
        'case "$*" in *--version*) echo "xz (BusyBox v1.36.1) multi-call binary"; exit 0;; *-T*) echo "xz: invalid option -- \'T\'" >&2; exit 1;; esac',
        `exec ${realXz} "$@"`,
        '',
      ].join('\n'), { mode: 0o755 });
      const archive = good();
      const xz = spawnSync(realXz, ['-c'], { input: archive, maxBuffer: 1 << 24 }).stdout;
      expect(snapshot(await read(xz, { compression: 'xz' }))).toEqual(snapshot(await read(archive)));
    });
  });

  test('a compressor that is not installed is named, not taken for an empty archive', async () => {
    // with no mkfifo either (its stdout a stream), and with mkfifo (a FIFO nobody writes)
    const onlyMkfifo = join(tmp, 'only-mkfifo');
    mkdirSync(onlyMkfifo, { recursive: true });
    symlinkSync(hostCommand('mkfifo'), join(onlyMkfifo, 'mkfifo'));
    for (const dir of [join(tmp, 'no-commands-here'), onlyMkfifo]) {
      expect(await failure(withPath(dir, () => read(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]), { compression: 'zstd' }))), dir).toBe(
        "T.tar: reading zstd-compressed input needs the zstd command, which is not on PATH; install it, or give the tarball decompressed",
      );
    }
  });

  test('a directory member with data is refused, not waited on for ever', async () => {
    expect(await failure(read(tarOf([{ name: 'd/', type: '5', data: Buffer.alloc(600, 1) }, { name: 'd/f', data: Buffer.from('f') }])))).toBe(
      "T.tar: member 'd/': a directory member with 600 bytes of data (not supported)",
    );
  }, 10_000);

  test('members the image cannot hold', async () => {
    expect(await failure(read(tarOf([{ name: 'x/../../etc/passwd', data: Buffer.from('x') }])))).toBe(
      "T.tar: member 'x/../../etc/passwd': path contains '..'",
    );
    expect(await failure(read(tarOf([{ name: 'l', type: '1', linkname: 'nowhere' }])))).toBe(
      "T.tar: member 'l': hard link to 'nowhere', which is not in the archive before it",
    );
    expect(await failure(read(tarOf([{ name: 'v', type: 'V' }])))).toBe("T.tar: member 'v': unsupported member type");
    expect(await failure(read(tarOf([{ pax: [['GNU.sparse.major', '1']] }, { name: 's', data: Buffer.from('s') }])))).toMatch(
      /^T\.tar: member 's': sparse members are not supported/,
    );
    expect(await failure(read(tarOf([{ name: 'f', data: Buffer.from('f') }, { name: 'f/g', data: Buffer.from('g') }])))).toBe(
      "T.tar: member 'f/g': ./f is not a directory",
    );
    expect(await failure(read(tarOf([{ name: 'd/x', data: Buffer.from('x') }, { name: 'd', data: Buffer.from('d') }])))).toBe(
      "T.tar: member 'd': would replace a directory that holds other members",
    );
  });
});

describe('a tarball file, read through a ring used over and over (tar-feed.ts)', () => {
  /** Read `archive` as a file, not a stream, through a ring of `ringBytes`. */
  async function readFile(archive: Buffer, ringBytes?: number, ctx: Recorder = recorder()): Promise<Inode> {
    const path = join(tmp, `ring-${archive.length}-${ringBytes ?? 0}.tar`);
    writeFileSync(path, archive);
    return readTar({ file: path }, ctx, { name: 'T.tar', compression: null, policy: {}, warn: () => {}, ringBytes });
  }

  // members of every size around the ring's and the reads' (the ring holds
  // each byte until the member it belongs to is written), and pax headers
  // between them, so that the ring wraps inside headers and inside data
  const mixed = (): Buffer => {
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) >>> 0);
    const members: Parameters<typeof tarOf>[0] = [];
    const sizes = [0, 1, 511, 512, 513, 4095, 4096, 8191, 8192, 8193, 70_000, 300_000];
    for (let i = 0; i < 60; i++) {
      const size = i < sizes.length ? sizes[i]! : next() % 40_000;
      const data = Buffer.alloc(size);
      for (let j = 0; j < size; j++) data[j] = next() >>> 24;
      if (i % 7 === 3) members.push({ pax: [['comment', 'x'.repeat(next() % 3000)]] });
      members.push({ name: `d${i % 5}/f${i}`, data });
    }
    return tarOf(members);
  };

  test('the same tree as the archive read as a stream, whatever the ring size', async () => {
    const archive = mixed();
    const streamed = snapshot(await read(archive));
    for (const ringBytes of [1024, 8192, 65_536, undefined]) {
      expect(snapshot(await readFile(archive, ringBytes)), `ring ${ringBytes ?? 'default'}`).toEqual(streamed);
    }
  });

  /** A recorder that also notes which buffers member data arrives in. */
  const bufferCounter = (): { ctx: Recorder; seen: Set<ArrayBufferLike> } => {
    const ctx = recorder();
    const seen = new Set<ArrayBufferLike>();
    const write = ctx.beginFile.bind(ctx);
    ctx.beginFile = (size, name) => {
      const sink = write(size, name);
      return { write: (c) => { seen.add(c.buffer); sink.write(c); }, end: () => sink.end() };
    };
    return { ctx, seen };
  };

  test('the ring is reused: member data arrives as views of it', async () => {
    const { ctx, seen } = bufferCounter();
    await readFile(mixed(), 65_536, ctx);
    // 60 members, ~1.5 MB, through a 64 KiB ring: a buffer per read would be ~25
    expect(seen.size).toBeLessThanOrEqual(3);
  });

  test('standard input as the build thread pulls it: a file by its descriptor, a pipe through one buffer, after the sniffed head', async () => {
    const archive = mixed();
    const streamed = snapshot(await read(archive));
    const path = join(tmp, 'pulled.tar');
    writeFileSync(path, archive);
    const opts = { name: '(stdin)', compression: null, policy: {}, warn: () => {}, ringBytes: 8192 };
    const fd = openSync(path, 'r');
    try {
      const src = fdPull(fd);
      const head = await pullHead(src, 512);
      expect(head.length).toBe(512);
      expect(snapshot(await readTar(prefixed(head, src), recorder(), opts)), 'file').toEqual(streamed);
    } finally {
      closeSync(fd);
    }
    // a FIFO another process writes the archive into (it opens first: the
    // reader's open waits for it); on Linux only, where a FIFO's end reaches
    // libuv (on macOS kqueue never reports it: decompress.ts)
    if (process.platform !== 'linux') return;
    const fifo = join(tmp, 'pulled.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const writer = spawn('sh', ['-c', 'exec cat "$0" > "$1"', path, fifo], { stdio: 'ignore' });
    const exited = once(writer, 'close');
    const pipe = new SocketPull(openSync(fifo, 'r'));
    const head = await pullHead(pipe, 512);
    expect(snapshot(await readTar(prefixed(head, pipe), recorder(), opts)), 'pipe').toEqual(streamed);
    expect((await exited)[0]).toBe(0);
  });

  test.runIf(process.platform === 'linux')('a file a host command decompresses is handed to the command, and closed here', async () => {
    const archive = mixed();
    const streamed = snapshot(await read(archive));
    const path = join(tmp, 'handed.tar.xz');
    const xz = spawnSync('xz', ['-c'], { input: archive, maxBuffer: 1 << 26 });
    expect(xz.status).toBe(0);
    writeFileSync(path, xz.stdout);
    const before = fdCount();
    const o = { compression: 'xz' as const, policy: {}, warn: () => {} };
    expect(snapshot(await readTar({ file: path }, recorder(), { name: path, ...o }))).toEqual(streamed);
    expect(await settledFds(before)).toBe(before);
    const missing = join(tmp, 'no-such.txz');
    expect(await failure(readTar({ file: missing }, recorder(), { name: missing, ...o }))).toMatch(/no-such\.txz: .*(no such file|ENOENT)/i);
    // a stream is piped to the command, though it has an `fd` of its own
    // (a file stream's, standard input's), which is past what it has read
    const stream = createReadStream(path);
    expect(snapshot(await readTar(stream, recorder(), { name: path, ...o })), 'a file stream').toEqual(streamed);
    const opened = createReadStream(path);
    await once(opened, 'ready');
    expect(snapshot(await readTar(opened, recorder(), { name: path, ...o })), 'an opened file stream').toEqual(streamed);
    expect(await settledFds(before)).toBe(before);
  });

  test.runIf(process.platform === 'linux')('a read that fails early closes the file', async () => {
    const bad = tarOf([{ name: 'x/../y', data: Buffer.alloc(10) }, { name: 'big', data: Buffer.alloc(3 << 20, 1) }]);
    const before = fdCount();
    expect(await failure(readFile(bad, 65_536))).toBe("T.tar: member 'x/../y': path contains '..'");
    expect(await settledFds(before)).toBe(before);
  });

  // ------------------------------------------------ decompressing commands

  const compressions = ['gzip', 'bzip2', 'xz', 'zstd'] as const;

  test('a command\'s output through a FIFO or its stdout, from a file, a stream or a pull; gzip by zlib without a gzip command: the same tree', async () => {
    const archive = mixed();
    const streamed = snapshot(await read(archive));
    for (const compression of compressions) {
      const path = join(tmp, `every.tar.${compression}`);
      writeFileSync(path, squeezed(compression, archive));
      for (const fifo of process.platform === 'linux' ? [true, false] : [false]) {
        const o = { name: 'T.tar', compression, policy: {}, warn: () => {}, fifo, ringBytes: 8192 };
        const what = `${compression}, ${fifo ? 'FIFO' : 'stdout'}`;
        expect(snapshot(await readTar({ file: path }, recorder(), o)), `${what}, a file`).toEqual(streamed);
        expect(snapshot(await readTar(createReadStream(path), recorder(), o)), `${what}, a stream`).toEqual(streamed);
        expect(snapshot(await readTar(filePull(path), recorder(), o)), `${what}, a pull`).toEqual(streamed);
      }
    }
    const gz = join(tmp, 'every.tar.gzip');
    await withPath(join(tmp, 'no-commands-here'), async () => {
      const o = { name: 'T.tar', compression: 'gzip' as const, policy: {}, warn: () => {} };
      expect(snapshot(await readTar({ file: gz }, recorder(), o)), 'zlib, a file').toEqual(streamed);
      expect(snapshot(await readTar(filePull(gz), recorder(), o)), 'zlib, a pull').toEqual(streamed);
    });
  });

  test.runIf(process.platform === 'linux')('the FIFO is read into the ring: member data arrives as views of it (from a command\'s stdout, as new buffers)', async () => {
    const path = join(tmp, 'views.tar.xz');
    writeFileSync(path, squeezed('xz', mixed()));
    const buffersSeen = async (fifo: boolean): Promise<number> => {
      const { ctx, seen } = bufferCounter();
      await readTar({ file: path }, ctx, { name: 'T.tar', compression: 'xz', policy: {}, warn: () => {}, fifo, ringBytes: 65_536 });
      return seen.size;
    };
    expect(await buffersSeen(true)).toBeLessThanOrEqual(3);
    expect(await buffersSeen(false)).toBeGreaterThan(10);
  });

  test.runIf(process.platform === 'linux')('nothing left behind: no FIFO in the temporary directory, no descriptor open, after success or failure', async () => {
    const archive = mixed();
    const xz = squeezed('xz', archive);
    const path = join(tmp, 'left.tar.xz');
    writeFileSync(path, xz);
    const corrupt = Buffer.from(xz);
    corrupt[xz.length >> 1] ^= 0xff;
    const corruptPath = join(tmp, 'corrupt.tar.xz');
    writeFileSync(corruptPath, corrupt);
    const notTar = join(tmp, 'nottar.tar.xz');
    writeFileSync(notTar, squeezed('xz', Buffer.alloc(4096, 0x41)));
    const own = join(tmp, 'own-tmp');
    mkdirSync(own);
    const savedTmp = process.env.TMPDIR;
    process.env.TMPDIR = own;
    try {
      const before = fdCount();
      const o = { name: 'T.tar', compression: 'xz' as const, policy: {}, warn: () => {} };
      expect(snapshot(await readTar({ file: path }, recorder(), o))).toEqual(snapshot(await read(archive)));
      expect(await failure(readTar({ file: corruptPath }, recorder(), o))).toMatch(/^T\.tar: not valid xz data \(xz exit 1: .*corrupt/);
      expect(await failure(readTar({ file: notTar }, recorder(), o))).toBe('T.tar: not a valid tar archive (bad header at the start of the xz-decompressed data)');
      expect(await failure(readTar(filePull(corruptPath), recorder(), o))).toMatch(/^T\.tar: not valid xz data/);
      // a member refused while the command still has megabytes to write
      const early = join(tmp, 'early.tar.xz');
      writeFileSync(early, squeezed('xz', tarOf([{ name: 'x/../y', data: Buffer.alloc(10) }, { name: 'big', data: Buffer.alloc(8 << 20, 1) }])));
      expect(await failure(readTar({ file: early }, recorder(), o))).toBe("T.tar: member 'x/../y': path contains '..'");
      expect(await settledFds(before)).toBe(before);
      expect(readdirSync(own)).toEqual([]);
    } finally {
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
    }
  });

  test.runIf(process.platform === 'linux')('SocketPull.discard: a pull waiting gives 0, and the writer is drained to its end', async () => {
    const fifo = join(tmp, 'discard.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    // 10 bytes, a pause, then 3 MiB: far more than a pipe holds
    const feeder = spawn('sh', ['-c', '{ printf 0123456789; sleep 1; head -c 3145728 /dev/zero; } > "$0"', fifo], { stdio: 'ignore' });
    const exited = once(feeder, 'close');
    const pull = new SocketPull(openSync(fifo, 'r'));
    const buf = Buffer.alloc(64);
    expect(await pull.pull(buf)).toBe(10);
    const waiting = pull.pull(buf);
    await expect(pull.pull(buf)).rejects.toThrow(/a pull while another waits/);
    const t0 = Date.now();
    pull.discard();
    expect(await waiting).toBe(0);
    // at once, not when the writer ends (a second later)
    expect(Date.now() - t0).toBeLessThan(500);
    expect(await pull.pull(buf)).toBe(0);
    // the writer got rid of its 3 MiB and exited: nothing waits for a reader
    expect((await exited)[0]).toBe(0);
    pull.close();
  });

  test('without mkfifo, the command\'s stdout is read as a stream', async () => {
    const archive = mixed();
    const bin = join(tmp, 'no-mkfifo-bin');
    mkdirSync(bin, { recursive: true });
    symlinkSync(hostCommand('zstd'), join(bin, 'zstd'));
    const data = squeezed('zstd', archive);
    const tree = await withPath(bin, () => read(data, { compression: 'zstd' }));
    expect(snapshot(tree)).toEqual(snapshot(await read(archive)));
  });

  test('gzip\'s complaints by name, from the command and from zlib; a failed pull of a compressed input names the input', async () => {
    const good = tarOf([{ name: 'a', data: Buffer.alloc(5000, 1) }, { name: 'b', data: Buffer.from('b') }]);
    const gz = gzipSync(good);
    const cases = async (): Promise<string[]> => [
      await failure(read(gz.subarray(0, gz.length - 20), { compression: 'gzip' })),
      await failure(read(good, { compression: 'gzip' })),
      await failure(read(Buffer.concat([gz, Buffer.from('garbage')]), { compression: 'gzip' })),
    ];
    const [cut, notGzip, trailing] = await cases();
    // (where the data stopped, as zlib's message says it)
    expect(cut).toMatch(/^T\.tar: truncated gzip data after member 'a' \(gzip exit 1: .*unexpected end of file\)$/);
    expect(notGzip).toMatch(/^T\.tar: not valid gzip data \(gzip exit 1: .*not in gzip format\)$/);
    expect(trailing).toMatch(/^T\.tar: trailing bytes after the gzip data \(gzip exit 2: .*trailing garbage ignored\)$/);
    const [zcut, znot, ztrailing] = await withPath(join(tmp, 'no-commands-here'), cases);
    expect(zcut).toBe("T.tar: truncated gzip data after member 'a'");
    expect(znot).toMatch(/^T\.tar: not valid gzip data \(incorrect header check\)$/);
    expect(ztrailing).toMatch(/^T\.tar: not valid gzip data/);
    // standard input that fails part way (EIO), fed to the command
    let pulls = 0;
    const failing = {
      pull: async (into: Buffer): Promise<number> => {
        if (++pulls > 2) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
        return gz.copy(into, 0, (pulls - 1) * 16, pulls * 16);
      },
      close: () => {},
    };
    expect(await failure(readTar(failing, recorder(), { name: '(stdin)', compression: 'gzip', policy: {}, warn: () => {} }))).toMatch(/^\(stdin\): .*(i\/o error|EIO)/i);
  });

  test('errors name the file as for a stream', async () => {
    const good = tarOf([{ name: 'a', data: Buffer.alloc(5000, 1) }, { name: 'b', data: Buffer.from('b') }]);
    expect(await failure(readFile(good.subarray(0, 3000), 1024))).toBe("T.tar: truncated archive: member 'a' is cut short (5000 bytes expected)");
    expect(await failure(readFile(good.subarray(0, 5632 + 100), 1024))).toBe("T.tar: truncated archive after member 'a'");
    const missing = join(tmp, 'no-such.tar');
    expect(await failure(readTar({ file: missing }, recorder(), { name: missing, compression: null, policy: {}, warn: () => {} }))).toMatch(
      /no-such\.tar: .*(no such file|ENOENT)/i,
    );
  });
});
