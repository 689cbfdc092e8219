// Every user mistake: one line on stderr naming the problem, a non-zero exit
// status, and nothing left behind: no image, no temporary image. Run through
// the real command (bin/tsmakefs over dist/), as a user would.
//
// The full-disk and read-only cases need a small tmpfs, which only root can
// mount; elsewhere they are skipped with the reason printed. The signal cases
// start a build that takes many seconds (a big sparse file is read as
// zeros), interrupt it once the temporary image exists, and require that the
// process stops promptly with 130 (SIGINT) or 143 (SIGTERM).

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildImage, describeBuild, TmpArea, TSMAKEFS_BIN, type BuildResult } from '../helpers/build.js';
import { REPO_ROOT } from '../helpers/proc.js';
import { Prng } from '../helpers/trees.js';

const MIB = 2 ** 20;
const tmp = new TmpArea('errors');
afterAll(() => {
  for (const m of mounts.splice(0)) spawnSync('umount', [m]);
  tmp.cleanup();
});

const mounts: string[] = [];
let stage: string; // a few small files
let big: string; // 100 MiB that does not compress

beforeAll(() => {
  stage = tmp.dir('stage');
  mkdirSync(join(stage, 'etc'));
  writeFileSync(join(stage, 'etc', 'rc.conf'), 'hostname="x"\n');
  writeFileSync(join(stage, 'README'), 'hello\n');
  big = tmp.dir('big');
  const rng = new Prng('errors-big');
  for (let i = 0; i < 4; i++) writeFileSync(join(big, `blob${i}`), rng.bytes(25 * MIB));
});

/** A tmpfs of `size` mounted at a new directory (undefined, with the reason, where that is not possible). */
function tmpfs(label: string, size: string, ro = false): { dir?: string; why?: string } {
  if (process.getuid?.() !== 0) return { why: 'mounting a tmpfs needs root' };
  const dir = tmp.dir(label);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `${ro ? 'ro,' : ''}size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return { why: `mount -t tmpfs failed: ${(r.stderr || r.error?.message || '').trim()}` };
  mounts.push(dir);
  return { dir };
}

/** The build failed as a user mistake should: exit 1, one line matching `line`, `dir` (the image's directory) as it was. */
function expectClean(b: BuildResult, line: RegExp, dir: string, before: string[] = []): void {
  expect(b.status, describeBuild(b)).toBe(1);
  const lines = b.stderr.split('\n');
  expect(lines.at(-1), `stderr must end with a newline:\n${b.stderr}`).toBe('');
  expect(lines.length - 1, `stderr must be exactly one line:\n${b.stderr}`).toBe(1);
  expect(lines[0]).toMatch(/^tsmakefs: /);
  expect(lines[0]).toMatch(line);
  expect(b.stdout, describeBuild(b)).toBe('');
  expect(readdirSync(dir).sort(), `left behind in ${dir} by ${b.command}`).toEqual(before);
}

describe.concurrent('the output path', () => {
  test('in a directory that does not exist', async () => {
    const out = tmp.dir('nodir');
    const img = join(out, 'missing', 'disk.img');
    const b = await buildImage(['-o', 'poolname=tank', '-s', '64m', img, stage]);
    expectClean(b, new RegExp(`^tsmakefs: ${img}: No such file or directory$`), out);
  });

  test('an existing directory', async () => {
    const out = tmp.dir('isdir');
    mkdirSync(join(out, 'disk.img'));
    const b = await buildImage(['-o', 'poolname=tank', '-s', '64m', join(out, 'disk.img'), stage]);
    expectClean(b, /disk\.img: Is a directory$/, out, ['disk.img']);
    expect(readdirSync(join(out, 'disk.img'))).toEqual([]);
  });

  test('in a directory that cannot be written', async () => {
    let out: string;
    let line: RegExp;
    if (process.getuid?.() === 0) {
      // root writes through permissions: a read-only file system it is
      const m = tmpfs('ro', '1m', true);
      if (m.dir === undefined) {
        console.log(`skipped the read-only output directory: ${m.why}`);
        return;
      }
      out = m.dir;
      line = /disk\.img: Read-only file system$/;
    } else {
      out = tmp.dir('readonly');
      chmodSync(out, 0o555);
      line = /disk\.img: Permission denied$/;
    }
    const b = await buildImage(['-o', 'poolname=tank', '-s', '64m', join(out, 'disk.img'), stage]);
    expectClean(b, line, out);
  });

  test('a name whose bytes are not UTF-8 is refused, not written under another name', async () => {
    // node would hand over "a\ufffd.img" for a\xff.img: the bytes must reach
    // the command as the kernel has them, so a shell passes them
    const out = tmp.dir('nonutf8');
    const r = spawnSync('sh', ['-c', `exec "$0" "$1" -o poolname=tank -s 64m "$2/$(printf 'a\\377.img')" "$3"`, process.execPath, TSMAKEFS_BIN, out, stage], { encoding: 'utf8' });
    const b: BuildResult = { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: 0, command: 'tsmakefs ... a\\xff.img' };
    expectClean(b, /a\\xff\.img: argument is not valid UTF-8/, out);
  });

  test('inside the input directory', async () => {
    const input = tmp.dir('self');
    writeFileSync(join(input, 'f'), 'x');
    const img = join(input, 'sub', 'disk.img');
    mkdirSync(join(input, 'sub'));
    const b = await buildImage(['-o', 'poolname=tank', '-s', '64m', img, input]);
    expectClean(b, /disk\.img: the image would be written inside the input directory /, join(input, 'sub'));
  });
});

describe.concurrent('the output device fills up (ENOSPC)', () => {
  for (const sized of [true, false]) {
    test(sized ? 'with -s' : 'auto-sized', async () => {
      const m = tmpfs(`full-${sized}`, '2m');
      if (m.dir === undefined) {
        console.log(`skipped ENOSPC: ${m.why}`);
        return;
      }
      const img = join(m.dir, 'disk.img');
      const b = await buildImage(['-o', 'poolname=tank', ...(sized ? ['-s', '256m'] : []), img, big]);
      expectClean(b, new RegExp(`^tsmakefs: ${img}: No space left on device$`), m.dir);
    });
  }
});

describe.concurrent('an image too small for the data', () => {
  test('says what size it needs, and that size works', async () => {
    const out = tmp.dir('small');
    const img = join(out, 'disk.img');
    const b = await buildImage(['-o', 'poolname=tank', '-s', '64m', img, big, stage]);
    expectClean(b, /^tsmakefs: image size 64 MiB is too small for the data: it needs about \d+ MiB \(ran out after allocating \d+ MiB, \d+ MiB of file data still to write\); use -s \d+m, or leave out -s to size the image automatically$/, out);
    const need = Number(/needs about (\d+) MiB/.exec(b.stderr)![1]);
    // 100 MiB of random data, labels and a little metadata: no less, and not wildly more
    expect(need).toBeGreaterThanOrEqual(100 + 4);
    expect(need).toBeLessThan(150);
    const suggested = /use -s (\d+m)/.exec(b.stderr)![1]!;
    const ok = await buildImage(['-o', 'poolname=tank', '-s', suggested, img, big, stage]);
    expect(ok.status, describeBuild(ok)).toBe(0);
    const v = await buildImage(['verify', '-q', img]);
    expect(v.status, describeBuild(v)).toBe(0);
  });

  test('from a tarball on stdin (total unknown) it says to leave out -s', async () => {
    const out = tmp.dir('small-tar');
    const img = join(out, 'disk.img');
    const tar = spawnSync('sh', ['-c', `tar -C '${big}' -cf - . | '${process.execPath}' '${TSMAKEFS_BIN}' -o poolname=tank -s 64m '${img}' -`], {
      encoding: 'utf8', cwd: REPO_ROOT,
    });
    const b: BuildResult = { status: tar.status, stdout: tar.stdout, stderr: tar.stderr, ms: 0, command: 'tar ... | tsmakefs -s 64m IMG -' };
    expectClean(b, /^tsmakefs: image size 64 MiB is too small for the data \(ran out of space after allocating \d+ MiB; the input's total size is not known in advance: leave out -s to size the image automatically\)$/, out);
  });
});

describe.concurrent('a compressed tarball that does not decompress', () => {
  test('a cut-short .txz, as a file and on stdin: xz\'s complaint, exit 1, no image', async () => {
    const out = tmp.dir('bad-txz');
    const txz = join(tmp.dir('bad-txz-in'), 'base.txz');
    const whole = spawnSync('sh', ['-c', `tar -C '${big}' -cf - blob0 | xz -0 -T1`], { maxBuffer: 256 * MIB });
    expect(whole.status, String(whole.stderr)).toBe(0);
    writeFileSync(txz, (whole.stdout as Buffer).subarray(0, 10 * MIB));
    const img = join(out, 'disk.img');
    // (blob0 is larger than the 10 MiB kept: the data stops inside it)
    const line = /^tsmakefs: (.*base\.txz|\(stdin\)): truncated xz data in member 'blob0' \(xz exit 1: \(stdin\): Unexpected end of input\)$/;
    expectClean(await buildImage(['-o', 'poolname=tank', img, txz]), line, out);
    const piped = spawnSync('sh', ['-c', `'${process.execPath}' '${TSMAKEFS_BIN}' -o poolname=tank '${img}' - < '${txz}'`], {
      encoding: 'utf8', cwd: REPO_ROOT,
    });
    expectClean({ status: piped.status, stdout: piped.stdout, stderr: piped.stderr, ms: 0, command: 'tsmakefs IMG - < base.txz' }, line, out);
  });
});

// option mistakes: reported before anything is read or written
const OPTION_CASES: Array<[string, string[], RegExp]> = [
  ['pool name starting with a digit', ['-o', 'poolname=9lives'], /-o poolname: .*9lives|pool name.*(begin|start)/i],
  ['pool name with a slash', ['-o', 'poolname=bad/name'], /-o poolname: /],
  ['reserved pool name', ['-o', 'poolname=mirror'], /-o poolname: .*mirror/],
  ['empty pool name', ['-o', 'poolname='], /poolname: a value is required/],
  ['no pool name', [], /a pool name must be specified with -o poolname=NAME/],
  ['dataset outside the pool', ['-o', 'poolname=tank', '-o', 'fs=other/x'], /dataset 'other\/x' must be a child of 'tank'/],
  ['dataset with a bad character', ['-o', 'poolname=tank', '-o', 'fs=tank/a@b'], /dataset 'tank\/a@b': invalid name component 'a@b'/],
  ['dataset without its parent', ['-o', 'poolname=tank', '-o', 'fs=tank/a/b'], /no parent at 'tank\/a' for filesystem 'tank\/a\/b'/],
  ['dataset declared twice', ['-o', 'poolname=tank', '-o', 'fs=tank/a', '-o', 'fs=tank/a'], /dataset 'tank\/a' is declared twice/],
  ['unknown property', ['-o', 'poolname=tank', '-o', 'fs=tank;colour=blue'], /colour/],
  ['bad boolean property', ['-o', 'poolname=tank', '-o', 'fs=tank;atime=maybe'], /atime.*maybe|maybe.*atime/],
  ['bad recordsize', ['-o', 'poolname=tank', '-o', 'fs=tank;recordsize=3k'], /recordsize/],
  ['bad quota', ['-o', 'poolname=tank', '-o', 'fs=tank/a;quota=lots'], /quota.*lots|lots.*quota/],
  ['zstd compression', ['-o', 'poolname=tank', '-o', 'fs=tank;compression=zstd'], /zstd/],
  ['property without a value', ['-o', 'poolname=tank', '-o', 'fs=tank;atime'], /missing value for property 'atime'/],
  ['mountpoint outside rootpath', ['-o', 'poolname=tank', '-o', 'fs=tank/a;mountpoint=/elsewhere'], /mountpoint/],
  ['bootfs not declared', ['-o', 'poolname=tank', '-o', 'bootfs=tank/nope'], /bootfs.*tank\/nope|tank\/nope.*bootfs/],
  ['ashift out of range', ['-o', 'poolname=tank,ashift=20'], /-o ashift: must be an integer from 9 to 16, not '20'/],
  ['metaslab size not a power of two', ['-o', 'poolname=tank,mssize=24m'], /-o mssize: metaslab size must be a power of 2/],
  ['unknown compatibility set', ['-o', 'poolname=tank,compatibility=nonsense'], /nonsense/],
  ['bad free percentage', ['-o', 'poolname=tank,free=lots'], /-o free: 'lots' is not a percentage/],
  ['unknown -o key', ['-o', 'poolname=tank,colour=blue'], /unknown -o option 'colour'/],
  ['size below the minimum', ['-o', 'poolname=tank', '-s', '1m'], /-s: image size 1m is below the minimum of 64m/],
  ['size not a size', ['-o', 'poolname=tank', '-s', 'big'], /-s: invalid size 'big'/],
  ['unknown file system type', ['-t', 'ffs', '-o', 'poolname=tank'], /-t: unsupported file system type 'ffs'/],
];

describe.concurrent('option mistakes', () => {
  for (const [name, args, line] of OPTION_CASES) {
    test(name, async () => {
      const out = tmp.dir('opt');
      const sized = args.includes('-s') ? [] : ['-s', '64m'];
      const b = await buildImage([...sized, ...args, join(out, 'disk.img'), stage]);
      expectClean(b, line, out);
    });
  }
});

// ---------------------------------------------------------------- signals

/** A directory whose build takes long: a 4 GiB sparse file, read as zeros. */
function slowStage(): string {
  const dir = tmp.dir('slow');
  const fd = openSync(join(dir, 'zeros'), 'w');
  ftruncateSync(fd, 4 * 1024 * MIB);
  closeSync(fd);
  writeFileSync(join(dir, 'after'), 'x');
  return dir;
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

describe.concurrent('interrupted builds remove their temporary image', () => {
  for (const [sig, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    test(`${sig}: exit ${status}, one line, no image`, async () => {
      const input = slowStage();
      const out = tmp.dir(`sig-${sig}`);
      const img = join(out, 'disk.img');
      const child = spawn(process.execPath, [TSMAKEFS_BIN, '-o', 'poolname=tank', '-s', '256m', img, input], {
        cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      let stdout = '';
      child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
      child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.on('exit', (code, signal) => resolve({ code, signal }));
      });
      try {
        const tmpName = `.disk.img.tsmakefs-${child.pid}.tmp`;
        const started = await waitFor(() => existsSync(join(out, tmpName)), 20_000);
        expect(started, `the temporary image ${tmpName} never appeared; stderr: ${stderr}`).toBe(true);
        await new Promise((r) => setTimeout(r, 300)); // well into the data
        const t0 = Date.now();
        child.kill(sig);
        const r = await exited;
        const ms = Date.now() - t0;
        expect(r, `exit of an interrupted build; stderr: ${stderr}`).toEqual({ code: status, signal: null });
        expect(ms, 'the build must stop promptly, not run to its end').toBeLessThan(5000);
        expect(stderr).toBe(`tsmakefs: interrupted by ${sig}; no image written\n`);
        expect(stdout).toBe('');
        expect(readdirSync(out), 'left behind by an interrupted build').toEqual([]);
      } finally {
        child.kill('SIGKILL');
      }
    }, 60_000);
  }
});
