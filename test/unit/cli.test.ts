import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { MIN_IMAGE_SIZE, parseArgs, type BuildInvocation } from '../../src/cli/args.js';
import { parseFsOptions } from '../../src/cli/fsoptions.js';
import { MAX_POOL_NAME, poolNameProblem } from '../../src/cli/poolname.js';
import { formatSummary } from '../../src/cli/summary.js';
import { parseTimestamp } from '../../src/cli/timestamp.js';
import { UserError } from '../../src/util/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'tsmakefs-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const BASE = ['-s', '1g', '-o', 'poolname=zroot'];

function build(...argv: string[]): BuildInvocation {
  const inv = parseArgs(argv);
  if (inv.kind !== 'build') throw new Error(`expected a build, got ${inv.kind}`);
  return inv;
}

/** The message of the UserError that parsing throws. */
function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
}

const argError = (...argv: string[]): string => failure(() => parseArgs(argv));
const optError = (...o: string[]): string => failure(() => parseFsOptions(o));

describe('parseArgs: the makefs command line', () => {
  test('the documented example', () => {
    const inv = build('-t', 'zfs', '-o', 'poolname=zroot', '-s', '4g', 'disk.img', './stage');
    expect(inv).toEqual({
      kind: 'build',
      inputs: ['./stage'],
      timestamp: undefined,
      quiet: false,
      options: {
        image: 'disk.img',
        poolName: 'zroot',
        rootPath: '/zroot',
        ashift: 12,
        size: 4 * 2 ** 30,
        minSize: 4 * 2 ** 30,
        maxSize: 4 * 2 ** 30,
        verifyTxgs: false,
        vdevPath: '/dev/null',
        seed: 'tsmakefs',
        datasets: [],
        compatibility: 'grub2-2.06',
        xattrs: true,
        verbose: false,
      },
    });
    expect(inv.options.msSize).toBeUndefined();
    expect(inv.options.poolGuid).toBeUndefined();
  });

  test('-t defaults to zfs and accepts nothing else', () => {
    expect(build(...BASE, 'img', 'dir').options.poolName).toBe('zroot');
    expect(argError('-t', 'ffs', ...BASE, 'img', 'dir')).toBe("-t: unsupported file system type 'ffs' (tsmakefs writes zfs only)");
  });

  test('several input directories keep their order', () => {
    expect(build(...BASE, 'img', 'a', 'b', 'c').inputs).toEqual(['a', 'b', 'c']);
  });

  test('getopt spellings: attached values, bundled flags, long names', () => {
    const inv = build('-s1g', '-opoolname=p', '-vq', 'img', 'd');
    expect(inv.options.size).toBe(2 ** 30);
    expect(inv.options.verbose).toBe(true);
    expect(inv.quiet).toBe(true);
    const long = build('--size', '2g', '--option', 'poolname=p', '--verbose', '--quiet', 'img', 'd');
    expect(long.options.size).toBe(2 ** 31);
    expect(long.options.verbose).toBe(true);
  });

  test('missing positional arguments and unknown flags', () => {
    expect(argError(...BASE)).toBe("missing required argument 'image' (see tsmakefs --help)");
    expect(argError(...BASE, 'img')).toBe("missing required argument 'directory' (see tsmakefs --help)");
    expect(argError(...BASE, '-y', 'img', 'd')).toBe("unknown option '-y' (see tsmakefs --help)");
    expect(argError('img', 'd', '-s')).toMatch(/^option '-s, --size <size>' argument missing/);
  });

  test('--help and --version are answers, not builds', () => {
    const help = parseArgs(['--help']);
    expect(help.kind).toBe('help');
    expect(help.kind === 'help' && help.text).toMatch(/^Usage: tsmakefs /);
    for (const key of ['poolname', 'rootpath', 'ashift', 'mssize', 'poolguid', 'verify-txgs', 'path=', 'seed', 'nowarn']) {
      expect(help.kind === 'help' && help.text).toContain(key);
    }
    expect(parseArgs(['-h']).kind).toBe('help');
    const version = parseArgs(['--version']);
    expect(version).toEqual({ kind: 'version', text: expect.stringMatching(/^\d+\.\d+\.\d+/) });
  });

  test('makefs options the zfs backend ignores are accepted', () => {
    const inv = build(...BASE, '-B', 'little', '-D', '-Z', '-p', '-b', '10%', '-f', '5', '-R', '4k', '-S', '512', '-d', '0x10', '-O', '0', 'img', 'd');
    expect(inv.options.size).toBe(2 ** 30);
    for (const e of ['be', 'big', '4321', 'le', '1234']) expect(build(...BASE, '-B', e, 'img', 'd').kind).toBe('build');
  });

  test('makefs options that would change the result are refused', () => {
    expect(argError(...BASE, '-B', 'middle', 'img', 'd')).toBe("-B: invalid endian 'middle' (be, big, 4321, le, little or 1234)");
    expect(argError(...BASE, '-O', '1m', 'img', 'd')).toBe('-O: writing at an offset is not supported');
    expect(build(...BASE, '-F', 'spec', 'img', 'd').kind).toBe('build');
    expect(build(...BASE, '-N', 'etc', 'img', 'd').kind).toBe('build');
    expect(argError(...BASE, '-x', 'img', 'd')).toMatch(/-x requires -F/);
  });
});

describe('parseArgs: sizes', () => {
  const sizes = (...argv: string[]) => {
    const { size, minSize, maxSize } = build('-o', 'poolname=p', ...argv, 'img', 'd').options;
    return { size, minSize, maxSize };
  };
  const G = 2 ** 30;
  const M = 2 ** 20;

  test('-s sets the size exactly', () => {
    expect(sizes('-s', '10g')).toEqual({ size: 10 * G, minSize: 10 * G, maxSize: 10 * G });
    expect(sizes('-s', '2x512m')).toEqual({ size: G, minSize: G, maxSize: G });
    expect(sizes('-s', '64m')).toEqual({ size: 64 * M, minSize: 64 * M, maxSize: 64 * M });
  });

  test('-m alone is the size; -M is a lower bound', () => {
    expect(sizes('-m', '1g')).toEqual({ size: G, minSize: undefined, maxSize: G });
    expect(sizes('-M', '512m', '-m', '1g')).toEqual({ size: G, minSize: 512 * M, maxSize: G });
  });

  test('later flags override earlier ones in command-line order, like makefs', () => {
    expect(sizes('-s', '1g', '-M', '512m')).toEqual({ size: G, minSize: 512 * M, maxSize: G });
    expect(sizes('-M', '512m', '-s', '1g')).toEqual({ size: G, minSize: G, maxSize: G });
    expect(sizes('-s', '1g', '-s', '2g')).toEqual({ size: 2 * G, minSize: 2 * G, maxSize: 2 * G });
    expect(sizes('-s', '1g', '-m', '2g')).toEqual({ size: 2 * G, minSize: G, maxSize: 2 * G });
  });

  test('no -s or -m: auto-size, with -M as the lower bound', () => {
    expect(sizes()).toEqual({ size: undefined, minSize: undefined, maxSize: undefined });
    expect(sizes('-M', '1g')).toEqual({ size: undefined, minSize: G, maxSize: undefined });
  });

  test('errors', () => {
    const err = (...argv: string[]) => argError('-o', 'poolname=p', ...argv, 'img', 'd');
    expect(err('-s', '63m')).toBe('-s: image size 63m is below the minimum of 64m');
    expect(err('-s', `${MIN_IMAGE_SIZE - 1}`)).toBe(`-s: image size ${MIN_IMAGE_SIZE - 1} is below the minimum of 64m`);
    expect(err('-m', '1m')).toBe('-m: image size 1m is below the minimum of 64m');
    expect(err('-s', '0')).toBe('-s: the size must be positive');
    expect(err('-s', 'lots')).toMatch(/^-s: invalid size 'lots'/);
    expect(err('-M', 'x')).toMatch(/^-M: invalid size 'x'/);
    expect(err('-M', '2g', '-m', '1g')).toBe('-M: minimum size 2g exceeds the maximum size 1g');
  });
});

describe('parseFsOptions: -o', () => {
  test('defaults', () => {
    expect(parseFsOptions(['poolname=tank'])).toEqual({
      poolName: 'tank',
      rootPath: '/tank',
      ashift: 12,
      verifyTxgs: false,
      vdevPath: '/dev/null',
      seed: 'tsmakefs',
      datasets: [],
      compatibility: 'grub2-2.06',
      xattrs: true,
    });
  });

  test('every key, comma-separated and across several -o', () => {
    const o = parseFsOptions([
      'poolname=zroot,rootpath=/,ashift=9',
      'mssize=128m',
      'poolguid=0xdeadbeef,verify-txgs=yes,nowarn,nowarn=whatever',
      'path=/dev/vtbd0p4,seed=release 14.1',
      'fs=zroot/usr;canmount=off,bootfs=zroot/usr,compatibility=legacy,xattrs=off',
    ]);
    expect(o).toEqual({
      poolName: 'zroot',
      rootPath: '/',
      ashift: 9,
      msSize: 128 * 2 ** 20,
      poolGuid: 0xdeadbeefn,
      verifyTxgs: true,
      vdevPath: '/dev/vtbd0p4',
      seed: 'release 14.1',
      datasets: [{ spec: 'zroot/usr;canmount=off', fromPreset: false }],
      bootfs: 'zroot/usr',
      compatibility: 'legacy',
      xattrs: false,
    });
  });

  test('a later value for a key wins', () => {
    expect(parseFsOptions(['poolname=a', 'poolname=b']).poolName).toBe('b');
    expect(parseFsOptions(['poolname=a,ashift=9,ashift=13']).ashift).toBe(13);
  });

  test('the value is everything after the first =', () => {
    expect(parseFsOptions(['poolname=p,seed=a=b']).seed).toBe('a=b');
  });

  test('rootpath must be absolute; trailing slashes are dropped', () => {
    expect(parseFsOptions(['poolname=p,rootpath=/mnt/p/']).rootPath).toBe('/mnt/p');
    expect(parseFsOptions(['poolname=p,rootpath=//']).rootPath).toBe('/');
    expect(optError('poolname=p,rootpath=mnt')).toBe("-o rootpath: 'mnt' must be an absolute path");
    expect(optError('poolname=p,rootpath=')).toBe('-o rootpath: a value is required (rootpath=...)');
  });

  test('ashift is an integer from 9 to 16', () => {
    for (const a of [9, 12, 16]) expect(parseFsOptions([`poolname=p,ashift=${a}`]).ashift).toBe(a);
    for (const a of ['8', '17', '12.0', '0x0c', '-12', 'twelve', ' 12']) {
      expect(optError(`poolname=p,ashift=${a}`)).toBe(`-o ashift: must be an integer from 9 to 16, not '${a}'`);
    }
    expect(optError('poolname=p,ashift')).toBe('-o ashift: a value is required (ashift=...)');
  });

  test('mssize is a power of two from 16m to 16g, in size syntax', () => {
    expect(parseFsOptions(['poolname=p,mssize=16m']).msSize).toBe(2 ** 24);
    expect(parseFsOptions(['poolname=p,mssize=16g']).msSize).toBe(2 ** 34);
    expect(parseFsOptions(['poolname=p,mssize=2x256m']).msSize).toBe(2 ** 29);
    expect(parseFsOptions(['poolname=p,mssize=33554432']).msSize).toBe(2 ** 25);
    expect(optError('poolname=p,mssize=8m')).toBe('-o mssize: metaslab size must be between 16m and 16g, not 8m');
    expect(optError('poolname=p,mssize=32g')).toBe('-o mssize: metaslab size must be between 16m and 16g, not 32g');
    expect(optError('poolname=p,mssize=100m')).toBe(`-o mssize: metaslab size must be a power of 2, not ${100 * 2 ** 20}`);
    expect(optError('poolname=p,mssize=0')).toBe('-o mssize: metaslab size must be a power of 2, not 0');
    expect(optError('poolname=p,mssize=big')).toMatch(/^-o mssize: invalid size 'big'/);
  });

  test('poolguid is 1..2^64-1, decimal or hex', () => {
    expect(parseFsOptions(['poolname=p,poolguid=1']).poolGuid).toBe(1n);
    expect(parseFsOptions(['poolname=p,poolguid=18446744073709551615']).poolGuid).toBe(2n ** 64n - 1n);
    expect(parseFsOptions(['poolname=p,poolguid=0XFFFFFFFFFFFFFFFF']).poolGuid).toBe(2n ** 64n - 1n);
    expect(optError('poolname=p,poolguid=0')).toBe('-o poolguid: must be from 1 to 2^64-1, not 0');
    expect(optError('poolname=p,poolguid=18446744073709551616')).toBe(
      '-o poolguid: must be from 1 to 2^64-1, not 18446744073709551616',
    );
    expect(optError('poolname=p,poolguid=-1')).toBe("-o poolguid: '-1' is not a decimal or 0x-prefixed hexadecimal number");
    expect(optError('poolname=p,poolguid=12abc')).toMatch(/^-o poolguid: '12abc' is not/);
  });

  test('verify-txgs honours its value', () => {
    const v = (s: string) => parseFsOptions([`poolname=p,${s}`]).verifyTxgs;
    for (const t of ['verify-txgs', 'verify-txgs=true', 'verify-txgs=1', 'verify-txgs=yes', 'verify-txgs=on', 'verify-txgs=TRUE']) {
      expect(v(t)).toBe(true);
    }
    for (const f of ['verify-txgs=false', 'verify-txgs=0', 'verify-txgs=no', 'verify-txgs=off', 'verify-txgs=Off']) {
      expect(v(f)).toBe(false);
    }
    expect(optError('poolname=p,verify-txgs=maybe')).toBe(
      "-o verify-txgs: 'maybe' is not a boolean (use true/false, yes/no, on/off or 1/0)",
    );
    expect(optError('poolname=p,verify-txgs=')).toMatch(/^-o verify-txgs: '' is not a boolean/);
  });

  test('string options need a value', () => {
    expect(optError('poolname=p,path=')).toBe('-o path: a value is required (path=...)');
    expect(optError('poolname=p,seed')).toBe('-o seed: a value is required (seed=...)');
    expect(optError('poolname')).toBe('-o poolname: a value is required (poolname=...)');
  });

  test('unknown, empty and invalid items', () => {
    expect(optError('poolname=p,frobnicate=1')).toBe("unknown -o option 'frobnicate'");
    expect(optError('poolname=p,Poolname=q')).toBe("unknown -o option 'Poolname'");
    expect(optError('poolname=p,,ashift=9')).toBe("-o 'poolname=p,,ashift=9': empty option (stray comma?)");
    expect(optError('poolname=p,')).toBe("-o 'poolname=p,': empty option (stray comma?)");
    expect(optError('')).toBe("-o '': empty option (stray comma?)");
    expect(optError('poolname=p', 'fs=')).toBe('-o fs: a value is required (fs=...)');
    expect(optError('poolname=p', 'preset=debian')).toBe("-o preset: unknown preset 'debian' (known: freebsd)");
    expect(optError('poolname=p', 'compatibility=nosuchset')).toMatch(/nosuchset/);
  });

  test('poolname is required and validated', () => {
    expect(optError()).toBe('a pool name must be specified with -o poolname=NAME');
    expect(optError('ashift=9')).toBe('a pool name must be specified with -o poolname=NAME');
    expect(optError('poolname=1pool')).toBe("-o poolname: pool name '1pool' must begin with a letter");
    expect(optError('poolname=mirror')).toBe("-o poolname: pool name 'mirror' is reserved");
  });

  test('unknown keys are reported through parseArgs too', () => {
    expect(argError('-s', '1g', '-o', 'poolname=p', '-o', 'bogus', 'img', 'd')).toBe("unknown -o option 'bogus'");
  });
});

describe('poolNameProblem: OpenZFS create-time rules', () => {
  test.each([
    'zroot', 'tank', 'a', 'Z', 'data-1', 'my_pool', 'pool.v2', 'site:pool', 'with space', 'c0pool', 'c0t0d0',
    'mirrored'.slice(0, 5), 'Mirror', 'logs', 'log2', 'spar', 'raid', 'draidless'.slice(0, 4), 'x'.repeat(MAX_POOL_NAME),
  ])('accepts %j', (name) => {
    expect(poolNameProblem(name)).toBeUndefined();
  });

  test.each([
    ['', 'the pool name must not be empty'],
    ['1abc', "pool name '1abc' must begin with a letter"],
    ['_abc', "pool name '_abc' must begin with a letter"],
    ['-abc', "pool name '-abc' must begin with a letter"],
    [' abc', "pool name ' abc' must begin with a letter"],
    ['a/b', "invalid character '/' in pool name 'a/b' (allowed: letters, digits, '-', '_', '.', ':' and space)"],
    ['a@b', "invalid character '@' in pool name 'a@b' (allowed: letters, digits, '-', '_', '.', ':' and space)"],
    ['a%b', "invalid character '%' in pool name 'a%b' (allowed: letters, digits, '-', '_', '.', ':' and space)"],
    ['zröot', "invalid character 'ö' in pool name 'zröot' (allowed: letters, digits, '-', '_', '.', ':' and space)"],
    ['a\tb', "invalid character '\\u{9}' in pool name 'a\tb' (allowed: letters, digits, '-', '_', '.', ':' and space)"],
    ['mirror', "pool name 'mirror' is reserved"],
    ['raidz', "pool name 'raidz' is reserved"],
    ['draid', "pool name 'draid' is reserved"],
    ['log', "pool name 'log' is reserved"],
    ['mirror0', "pool name 'mirror0' is reserved (names beginning with 'mirror' are vdev keywords)"],
    ['raidz2', "pool name 'raidz2' is reserved (names beginning with 'raidz' are vdev keywords)"],
    ['draid1', "pool name 'draid1' is reserved (names beginning with 'draid' are vdev keywords)"],
    ['spare', "pool name 'spare' is reserved (names beginning with 'spare' are vdev keywords)"],
    ['spares', "pool name 'spares' is reserved (names beginning with 'spare' are vdev keywords)"],
    ['x'.repeat(MAX_POOL_NAME + 1), `pool name is too long (${MAX_POOL_NAME + 1} bytes, at most 239)`],
  ])('rejects %j', (name, problem) => {
    expect(poolNameProblem(name)).toBe(problem);
  });
});

describe('parseTimestamp: -T', () => {
  test('integers are seconds since the epoch', () => {
    expect(parseTimestamp('0')).toEqual({ sec: 0, nsec: 0 });
    expect(parseTimestamp('1700000000')).toEqual({ sec: 1700000000, nsec: 0 });
    expect(parseTimestamp('-86400')).toEqual({ sec: -86400, nsec: 0 });
    expect(parseTimestamp('0x10')).toEqual({ sec: 16, nsec: 0 });
  });

  test('an existing file lends its mtime, with nanoseconds', () => {
    const f = join(tmp, 'stampfile');
    writeFileSync(f, '');
    utimesSync(f, 5, 1_600_000_000.25);
    expect(parseTimestamp(f)).toEqual({ sec: 1_600_000_000, nsec: 250_000_000 });
  });

  test('anything else is an error naming the argument', () => {
    for (const bad of ['', 'yesterday', '1.5', '12abc', '99999999999999999999', join(tmp, 'missing')]) {
      expect(failure(() => parseTimestamp(bad))).toBe(
        `-T: cannot get a timestamp from '${bad}' (neither an existing file nor an integer number of seconds)`,
      );
    }
  });

  test('parseArgs passes it on', () => {
    expect(build(...BASE, '-T', '1234', 'img', 'd').timestamp).toEqual({ sec: 1234, nsec: 0 });
    expect(argError(...BASE, '-T', 'never', 'img', 'd')).toMatch(/^-T: cannot get a timestamp from 'never'/);
  });
});

describe('formatSummary', () => {
  test('one key: value line per leaf', () => {
    const text = formatSummary({
      poolSize: 4294967296,
      allocated: 123n,
      objects: 42,
      datasets: ['zroot', 'zroot/home'],
      space: { used: 1, free: 2 },
      skipped: undefined,
      vdevs: [{ path: '/dev/null' }],
    });
    expect(text).toBe(
      [
        'poolSize: 4294967296',
        'allocated: 123',
        'objects: 42',
        'datasets: zroot, zroot/home',
        'space.used: 1',
        'space.free: 2',
        'vdevs.0.path: /dev/null',
        '',
      ].join('\n'),
    );
  });
});
