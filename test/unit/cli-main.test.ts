import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, test } from 'vitest';
import { EXIT_INTERNAL, EXIT_OK, EXIT_USER, looksLikeBuild, main, type MakeImage } from '../../src/cli/main.js';
import type { Inode } from '../../src/input/tree.js';
import type { ImageOptions } from '../../src/options.js';

// The writer is not under test here: a stand-in records what the CLI hands it.
const calls: Array<{ root: Inode; opts: ImageOptions }> = [];
let behaviour: () => unknown = () => ({ poolSize: 1073741824, allocated: 4096n, objects: 12, datasets: 1 });
const fakeWriter: MakeImage = async (root, opts) => {
  calls.push({ root, opts });
  return behaviour() as object;
};

const tmp = mkdtempSync(join(tmpdir(), 'tsmakefs-main-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const stage = join(tmp, 'stage');
mkdirSync(join(stage, 'etc'), { recursive: true });
writeFileSync(join(stage, 'etc', 'rc.conf'), 'x\n');

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io = { stdout: (t: string) => { out += t; }, stderr: (t: string) => { err += t; } };
  const code = await main(argv, io, fakeWriter);
  return { code, out, err };
}

beforeEach(() => {
  calls.length = 0;
  behaviour = () => ({ poolSize: 1073741824, allocated: 4096n, objects: 12, datasets: 1 });
  delete process.env['TSMAKEFS_DEBUG'];
});

describe('looksLikeBuild (the build thread is started before parsing)', () => {
  test('a build', () => {
    expect(looksLikeBuild(['-t', 'zfs', '-o', 'poolname=p', 'a.img', 'stage'])).toBe(true);
    expect(looksLikeBuild(['a.img', '-'])).toBe(true);
  });
  test('quick answers and our own reader start no thread', () => {
    for (const argv of [[], ['--version'], ['--help'], ['-t', 'zfs', '-h'], ['verify', 'a.img'], ['ls', 'a.img', '/'], ['cat', 'a.img', '/f']]) {
      expect(looksLikeBuild(argv), argv.join(' ')).toBe(false);
    }
  });
});

describe('main', () => {
  test('walks the inputs and hands the tree and options to the writer', async () => {
    const r = await run('-t', 'zfs', '-s', '1g', '-o', 'poolname=zroot', '-T', '1000', join(tmp, 'disk.img'), stage);
    expect(r).toEqual({ code: EXIT_OK, out: '', err: '' });
    expect(calls).toHaveLength(1);
    const { root, opts } = calls[0]!;
    expect(opts.image).toBe(join(tmp, 'disk.img'));
    expect(opts.poolName).toBe('zroot');
    expect(opts.size).toBe(2 ** 30);
    expect(root.entries!.map((e) => Buffer.from(e.name).toString())).toEqual(['etc']);
    expect(root.mtime).toEqual({ sec: 1000, nsec: 0 });
  });

  test('-v prints the summary as key: value lines', async () => {
    const r = await run('-v', '-s', '1g', '-o', 'poolname=zroot', join(tmp, 'disk.img'), stage);
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toBe('poolSize: 1073741824\nallocated: 4096\nobjects: 12\ndatasets: 1\n');
  });

  test('--version and --help go to stdout', async () => {
    const v = await run('--version');
    expect(v.code).toBe(EXIT_OK);
    expect(v.out).toMatch(/^\d+\.\d+\.\d+\n$/);
    const h = await run('--help');
    expect(h.code).toBe(EXIT_OK);
    expect(h.out).toMatch(/^Usage: tsmakefs/);
    expect(calls).toHaveLength(0);
  });

  test('user errors: one line on stderr, exit 1, writer never called', async () => {
    const cases: Array<[string[], string]> = [
      [['-s', '1g', 'img', stage], 'tsmakefs: a pool name must be specified with -o poolname=NAME\n'],
      [['-s', '1g', '-o', 'poolname=z,x=1', 'img', stage], "tsmakefs: unknown -o option 'x'\n"],
      [['-s', '1g', '-o', 'poolname=z', 'img', join(tmp, 'nope')], `tsmakefs: ${join(tmp, 'nope')}: No such file or directory\n`],
      [['-s', '1g', '-o', 'poolname=z', 'img', stage, join(stage, 'etc/rc.conf')], `tsmakefs: ${join(stage, 'etc/rc.conf')}: only the first input may be a manifest (later ones are directories or tarballs)\n`],
      [['-s', '1g', '-o', 'poolname=z', 'img', stage, stage], `tsmakefs: ${stage}/etc/rc.conf: cannot merge file with existing file ${stage}/etc/rc.conf\n`],
    ];
    for (const [argv, err] of cases) {
      expect(await run(...argv)).toEqual({ code: EXIT_USER, out: '', err });
    }
    expect(calls).toHaveLength(0);
  });

  test('fs errors from the writer are user errors too', async () => {
    behaviour = () => {
      throw Object.assign(new Error("ENOENT: no such file or directory, open '/no/dir/disk.img'"), {
        code: 'ENOENT', syscall: 'open', path: '/no/dir/disk.img', errno: -2,
      });
    };
    const r = await run('-s', '1g', '-o', 'poolname=z', '/no/dir/disk.img', stage);
    expect(r).toEqual({ code: EXIT_USER, out: '', err: 'tsmakefs: /no/dir/disk.img: No such file or directory\n' });
  });

  test('anything else is an internal error: exit 2, no stack unless TSMAKEFS_DEBUG=1', async () => {
    behaviour = () => {
      throw new TypeError('cannot read properties of undefined');
    };
    const r = await run('-s', '1g', '-o', 'poolname=z', 'img', stage);
    expect(r.code).toBe(EXIT_INTERNAL);
    expect(r.err).toBe(
      'tsmakefs: internal error: cannot read properties of undefined\ntsmakefs: (set TSMAKEFS_DEBUG=1 for a stack trace)\n',
    );
    process.env['TSMAKEFS_DEBUG'] = '1';
    const d = await run('-s', '1g', '-o', 'poolname=z', 'img', stage);
    expect(d.code).toBe(EXIT_INTERNAL);
    expect(d.err).toMatch(/^tsmakefs: internal error: cannot read properties of undefined\nTypeError: cannot read/);
    expect(d.err).toMatch(/\n\s+at /);
  });
});
