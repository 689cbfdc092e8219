// Issue 4, "Done when": inputs without root. One tree given as a directory,
// as ustar/pax/gnu tarballs (made by GNU tar), gzip'ed, on standard input and
// as a METALOG gives byte-identical images that zdb and the OpenZFS kernel
// accept, and that list exactly as the tree; a METALOG written by an
// unprivileged user decides owners and modes; broken inputs fail cleanly;
// makefs's T_flag_* and multi_staging_* scenarios hold.
//
// Judged by the real readers only (test/helpers/oracles.ts): zdb-check.sh,
// zdb -dddd for the times, and check-image.sh's listing from the kernel.
// KEEP_TMP=1 keeps every tree, image and result.

import {
  chmodSync, chownSync, existsSync, linkSync, lstatSync, lutimesSync, mkdirSync, readdirSync, readlinkSync, symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { afterAll, describe, test } from 'vitest';
import { type BuildResult, describeBuild, sha256File, TmpArea, TSMAKEFS_BIN } from '../helpers/build.js';
import { diffListings, dirNlinkReliable, grubCmp, listingOf, vmCheck, zdbCheck } from '../helpers/oracles.js';
import { run, which } from '../helpers/proc.js';
import { makeDevice, makeFifo, makefsInputsTree, Prng } from '../helpers/trees.js';

const MIN = 60_000;
type Expect = typeof import('vitest').expect;

const tmp = new TmpArea('inputs');
afterAll(() => tmp.cleanup());
// The unprivileged build (uid 1000) must be able to reach its files.
chmodSync(tmp.root, 0o755);

// ---------------------------------------------------------------- running tsmakefs

interface Build extends BuildResult {
  image: string;
}

/**
 * tsmakefs OPTIONS... IMAGE INPUT..., from `cwd`, optionally with standard
 * input from a file (redirected, or through a pipe with `stdinPipe`) and as
 * another user (setpriv). Never throws on failure.
 */
async function tsmakefs(
  image: string, options: string[], inputs: string[],
  o: { cwd?: string; stdinFile?: string; stdinPipe?: boolean; asUser?: number; env?: Record<string, string> } = {},
): Promise<Build> {
  const args = [...options, image, ...inputs];
  const argv = [process.execPath, TSMAKEFS_BIN, ...args];
  const env: NodeJS.ProcessEnv = { ...process.env, ...o.env };
  // A shell only to redirect standard input; "$@" keeps every argument intact.
  let cmd = 'bash';
  const script = o.stdinFile === undefined ? 'exec "$@"' : o.stdinPipe ? 'cat "$STDIN_FILE" | "$@"' : 'exec "$@" < "$STDIN_FILE"';
  let cmdArgs = ['-c', script, 'sh', ...argv];
  if (o.stdinFile !== undefined) env['STDIN_FILE'] = o.stdinFile;
  if (o.asUser !== undefined) {
    cmdArgs = [`--reuid=${o.asUser}`, `--regid=${o.asUser}`, '--clear-groups', cmd, ...cmdArgs];
    cmd = 'setpriv';
  }
  const r = await run(cmd, cmdArgs, { cwd: o.cwd, env, timeoutMs: 10 * MIN });
  return {
    image, status: r.status, stdout: r.stdout, stderr: r.stderr, ms: r.ms,
    command: `${o.cwd ? `(cd ${o.cwd}) ` : ''}${o.asUser !== undefined ? `(uid ${o.asUser}) ` : ''}${o.stdinPipe ? `cat ${o.stdinFile} | ` : ''}tsmakefs ${args.join(' ')}${o.stdinFile && !o.stdinPipe ? ` < ${o.stdinFile}` : ''}`,
  };
}

async function expectBuilt(expect: Expect, b: Build): Promise<void> {
  expect(b.status, describeBuild(b)).toBe(0);
  expect(existsSync(b.image), b.image).toBe(true);
}

async function expectZdbClean(expect: Expect, image: string, pool: string, signal: AbortSignal): Promise<void> {
  const v = await zdbCheck(image, { pool, signal });
  expect(v.ok, `zdb-check.sh ${image}:\n${v.output}`).toBe(true);
}

/** The kernel's listing of the pool's root must equal listing.sh of `expected`. */
async function expectKernelListing(expect: Expect, image: string, pool: string, expected: string, signal: AbortSignal): Promise<void> {
  const noDirNlink = !dirNlinkReliable(tmp.root);
  const [v, want] = await Promise.all([
    vmCheck(image, {
      pool, listingRoot: `/${pool}`, extraArgs: noDirNlink ? ['--no-dir-nlink'] : [], outDir: tmp.dir(`vm-${pool}`),
      timeoutSec: 240, signal,
    }),
    listingOf(expected, { noDirNlink }),
  ]);
  expect(v.ok, `check-image.sh ${image} (results in ${v.outDir}):\n${v.output}`).toBe(true);
  expect(v.result).toMatch(/^ZVM-RESULT import=PASS scrub=PASS mount=PASS listing=PASS /);
  const diff = diffListings(want, v.listing);
  expect(diff === '', `the kernel's listing (${v.outDir}/listing.txt) differs from listing.sh ${expected}:\n${diff}`).toBe(true);
}

function sh(cmd: string, args: string[], cwd?: string): Promise<void> {
  return run(cmd, args, { cwd, timeoutMs: 5 * MIN }).then((r) => {
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.output}`);
  });
}

// ---------------------------------------------------------------- trees, tarballs and manifests

const T0 = 1_700_000_000;

/** Whole-second times (ustar and gnu keep no fractions): base + index in a sorted pre-order walk. */
function stampWhole(root: string, base = T0): void {
  let i = 0;
  const visit = (p: Buffer): void => {
    const t = base + i++;
    const isDir = lstatSync(p).isDirectory();
    if (isDir) for (const n of readdirSync(p, { encoding: 'buffer' }).sort(Buffer.compare)) visit(Buffer.concat([p, Buffer.from('/'), n]));
    lutimesSync(p, t, t);
  };
  visit(Buffer.from(root));
}

function put(path: string, data: string | Buffer, mode: number, uid = 0, gid = 0): void {
  writeFileSync(path, data);
  chownSync(path, uid, gid);
  chmodSync(path, mode);
}

function dir(path: string, mode: number, uid = 0, gid = 0): void {
  mkdirSync(path);
  chownSync(path, uid, gid);
  chmodSync(path, mode);
}

/** Every kind of entry that ustar, gnu, pax and a METALOG can all carry, with varied owners and modes. */
function equalityTree(root: string): void {
  chmodSync(root, 0o755);
  dir(join(root, 'bin'), 0o755);
  put(join(root, 'bin', 'sh'), new Prng('sh').bytes(131_073), 0o555);
  put(join(root, 'bin', 'su'), new Prng('su').bytes(40_000), 0o4555, 0, 0);
  put(join(root, 'bin', 'test'), '#!/bin/sh\n', 0o555);
  linkSync(join(root, 'bin', 'test'), join(root, 'bin', '['));
  symlinkSync('sh', join(root, 'bin', 'rsh'));
  dir(join(root, 'etc'), 0o755);
  put(join(root, 'etc', 'rc.conf'), 'zfs_enable="YES"\n', 0o644);
  put(join(root, 'etc', 'master.passwd'), 'root:*:0:0::0:0::/root:/bin/sh\n', 0o600);
  symlinkSync('/etc/rc.conf', join(root, 'etc', 'abs-link'));
  symlinkSync('nowhere/at/all', join(root, 'etc', 'dangling'));
  dir(join(root, 'home'), 0o755);
  dir(join(root, 'home', 'build'), 0o700, 1000, 1000);
  put(join(root, 'home', 'build', '.profile'), 'PS1=$\n', 0o600, 1000, 1000);
  put(join(root, 'home', 'build', 'big'), new Prng('big').bytes(300 * 1024 + 5), 0o640, 1000, 65534);
  put(join(root, 'home', 'build', 'empty'), '', 0o644, 2097151, 2097151);
  dir(join(root, 'tmp'), 0o1777);
  dir(join(root, 'var'), 0o2775, 0, 5);
  linkSync(join(root, 'bin', 'sh'), join(root, 'var', 'sh-again'));
  dir(join(root, 'dev'), 0o555);
  makeDevice(join(root, 'dev', 'null'), 'c', 1, 3, 0o666);
  makeDevice(join(root, 'dev', 'ada0'), 'b', 8, 0, 0o640);
  makeFifo(join(root, 'dev', 'initctl'), 0o600);
  const names = join(root, 'names');
  dir(names, 0o755);
  put(join(names, 'café'), 'utf-8\n', 0o644);
  put(join(names, 'with space'), 'space\n', 0o644);
  put(join(names, 'n'.repeat(99)), '99\n', 0o644);
  const deep = join(names, 'd'.repeat(60));
  dir(deep, 0o755);
  put(join(deep, 'f'.repeat(60)), 'path over 100 bytes, split by ustar\n', 0o644);
  stampWhole(root);
}

/** Names and link targets only pax, gnu and manifests carry, non-UTF-8 names, and sub-second times. */
function longTree(root: string): void {
  chmodSync(root, 0o755);
  const d = join(root, 'D'.repeat(255));
  dir(d, 0o755);
  put(join(d, 'F'.repeat(255)), 'deep\n', 0o644);
  symlinkSync(`../${'t/'.repeat(500)}x`, join(root, 'long-link'));
  put(Buffer.concat([Buffer.from(`${root}/raw-`), Buffer.from([0xe9, 0xff, 0x01])]) as unknown as string, 'bytes\n', 0o644);
  stampWhole(root);
  let i = 0;
  const frac = (p: string): void => lutimesSync(p, T0 + 0.25 * ++i, T0 + 0.25 * i);
  frac(join(d, 'F'.repeat(255)));
  frac(join(root, 'long-link'));
}

async function tarball(stage: string, format: 'ustar' | 'pax' | 'gnu', out: string): Promise<string> {
  await sh('tar', [`--format=${format}`, '--sort=name', '--numeric-owner', '-C', stage, '-cf', out, '.']);
  return out;
}

/** vis(3) octal escaping, as install(1) writes METALOG paths: bytes outside 0x21..0x7e, '\\' and '#'. */
function vis(b: Buffer): string {
  let s = '';
  for (const x of b) s += x > 0x20 && x < 0x7f && x !== 0x5c && x !== 0x23 ? String.fromCharCode(x) : `\\${x.toString(8).padStart(3, '0')}`;
  return s;
}

const USERS = new Map([[0, 'root'], [1000, 'build'], [65534, 'nobody'], [2097151, 'big']]);
const GROUPS = new Map([[0, 'wheel'], [5, 'operator'], [1000, 'build'], [65534, 'nogroup'], [2097151, 'bigg']]);

/** The image's own user database (-N): names that only it knows. */
function userDb(at: string): string {
  mkdirSync(at, { recursive: true });
  writeFileSync(join(at, 'master.passwd'), [...USERS].map(([id, n]) => `${n}:*:${id}:${id}::0:0:${n}:/:/bin/sh\n`).join(''));
  writeFileSync(join(at, 'group'), [...GROUPS].map(([id, n]) => `${n}:*:${id}:\n`).join(''));
  return at;
}

/**
 * A METALOG describing `stage` exactly (names via -N), in reverse sorted
 * order: every directory comes after its contents.
 */
function metalogOf(stage: string): string {
  const lines: string[] = [];
  const visit = (rel: Buffer): void => {
    const p = rel.length === 0 ? Buffer.from(stage) : Buffer.concat([Buffer.from(`${stage}/`), rel]);
    const st = lstatSync(p, { bigint: true });
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'link'
      : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : 'block';
    const t = `${st.mtimeNs / 1_000_000_000n}.${String(st.mtimeNs % 1_000_000_000n).padStart(9, '0')}`;
    let line = `${rel.length === 0 ? '.' : `./${vis(rel)}`} type=${type} uname=${USERS.get(Number(st.uid))} gname=${GROUPS.get(Number(st.gid))}`;
    line += ` mode=0${(Number(st.mode) & 0o7777).toString(8)} time=${t}`;
    if (type === 'file') line += ` size=${st.size}`;
    if (type === 'link') line += ` link=${vis(readlinkSync(p, { encoding: 'buffer' }))}`;
    if (type === 'char' || type === 'block') line += ` device=native,${Number(st.rdev >> 8n) & 0xfff},${Number(st.rdev & 0xffn)}`;
    lines.push(line);
    if (type === 'dir') {
      for (const n of readdirSync(p, { encoding: 'buffer' })) visit(rel.length === 0 ? n : Buffer.concat([rel, Buffer.from('/'), n]));
    }
  };
  visit(Buffer.alloc(0));
  lines.sort().reverse();
  return `#mtree 2.0\n${lines.join('\n')}\n`;
}


/** The shape `mtree -c -k type,mode,gid,uid,size,link,time` writes: hierarchical, /set defaults, continuation lines. */
function mtreeC(root: string, time?: string): string {
  const out = ['#\t   user: root', '#\tmachine: tsmakefs-test', `#\t   tree: ${root}`, '', '# .', '/set type=file uid=0 gid=0 mode=0644'];
  const attrs = (p: string): string => {
    const st = lstatSync(p, { bigint: true });
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file';
    const t = time ?? `${st.mtimeNs / 1_000_000_000n}.${String(st.mtimeNs % 1_000_000_000n).padStart(9, '0')}`;
    let a = `${type === 'file' ? '' : `type=${type} `}uid=${st.uid} gid=${st.gid} mode=0${(Number(st.mode) & 0o7777).toString(8)}`;
    if (type !== 'dir') a += ` size=${st.size}`;
    if (type === 'link') a += ` link=${vis(readlinkSync(p, { encoding: 'buffer' }))}`;
    return `${a} \\\n                time=${t}`;
  };
  const visit = (p: string, rel: string, indent: string): void => {
    const names = readdirSync(p).sort();
    for (const n of names.filter((x) => !lstatSync(join(p, x)).isDirectory())) out.push(`${indent}${vis(Buffer.from(n)).padEnd(15)} ${attrs(join(p, n))}`);
    for (const n of names.filter((x) => lstatSync(join(p, x)).isDirectory())) {
      out.push('', `# ${rel}/${n}`, `${vis(Buffer.from(n)).padEnd(15)} ${attrs(join(p, n))}`);
      visit(join(p, n), `${rel}/${n}`, `${indent}    `);
      out.push(`# ${rel}/${n}`, '..', '');
    }
  };
  out.push(`.               ${attrs(root)}`);
  visit(root, '.', '    ');
  out.push('..', '');
  return out.join('\n');
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** atime, mtime, ctime and crtime of a top-level entry, as zdb -dddd prints them (seconds). */
async function zdbTimes(image: string, pool: string, name: string): Promise<Record<'atime' | 'mtime' | 'ctime' | 'crtime', number>> {
  const r = await run('zdb', ['-e', '-p', dirname(image), '-dddd', pool], { env: { ...process.env, TZ: 'UTC' }, timeoutMs: 5 * MIN });
  if (r.status !== 0) throw new Error(`zdb -dddd ${pool} failed:\n${r.output.slice(-3000)}`);
  const zpl = r.stdout.slice(r.stdout.indexOf(`Dataset ${pool} [ZPL]`));
  const m = new RegExp(`^\\s+${name} = (\\d+) \\(type: `, 'm').exec(zpl);
  if (m === null) throw new Error(`zdb -dddd lists no ${name} in ${pool}`);
  const section = zpl.split(/^\s+Object\s+lvl\s+iblk.*$/m).find((s) => new RegExp(`^\\s*${m[1]}\\s+\\d`).test(s));
  if (section === undefined) throw new Error(`no object ${m[1]} in zdb -dddd ${pool}`);
  const out = {} as Record<'atime' | 'mtime' | 'ctime' | 'crtime', number>;
  for (const k of ['atime', 'mtime', 'ctime', 'crtime'] as const) {
    const t = new RegExp(`^\\s+${k}\\s+\\w{3} (\\w{3}) +(\\d+) (\\d\\d):(\\d\\d):(\\d\\d) (\\d{4})$`, 'm').exec(section);
    if (t === null) throw new Error(`no ${k} for object ${m[1]}:\n${section}`);
    out[k] = Date.UTC(Number(t[6]), MONTHS.indexOf(t[1]!), Number(t[2]), Number(t[3]), Number(t[4]), Number(t[5])) / 1000;
  }
  return out;
}

function hashesEqual(expect: Expect, builds: Array<[string, Build]>, hashes: string[]): void {
  const [first] = builds;
  builds.forEach(([what, b], i) => {
    expect(hashes[i], `${what} (${b.image}) differs from ${first![0]} (${first![1].image})`).toBe(hashes[0]);
  });
}

// ---------------------------------------------------------------- one tree, every input

describe.concurrent('one tree, every input kind, one image', () => {
  test('directory = ustar = pax = gnu = gzip = xz = zstd = bzip2 = stdin = METALOG, byte for byte; zdb clean; the kernel lists the tree', async ({ expect, signal }) => {
    const stage = tmp.dir('equality-stage');
    equalityTree(stage);
    const work = tmp.dir('equality-inputs');
    const etc = userDb(join(work, 'etc'));
    writeFileSync(join(work, 'METALOG'), metalogOf(stage));
    const ustar = await tarball(stage, 'ustar', join(work, 'u.tar'));
    const pax = await tarball(stage, 'pax', join(work, 'p.tar'));
    const gnu = await tarball(stage, 'gnu', join(work, 'g.tar'));
    await sh('bash', ['-c', 'gzip -9n < "$0" > "$0.gz" && xz < "$0" > "$0.xz" && zstd -q < "$0" > "$0.zst" && bzip2 < "$0" > "$0.bz2"', pax]);
    const pool = 'ti_equal';
    const opts = ['-t', 'zfs', '-s', '128m', '-o', `poolname=${pool}`];
    const img = (what: string): string => tmp.file(`${what}.img`);
    const builds: Array<[string, Build]> = await Promise.all(([
      ['directory', tsmakefs(img('dir'), opts, [stage])],
      ['ustar', tsmakefs(img('ustar'), opts, [ustar])],
      ['pax', tsmakefs(img('pax'), opts, [pax])],
      ['gnu', tsmakefs(img('gnu'), opts, [gnu])],
      ['gzip', tsmakefs(img('gzip'), opts, [`${pax}.gz`])],
      // FreeBSD's distribution sets are .txz: undone by the host's xz
      ['xz', tsmakefs(img('xz'), opts, [`${pax}.xz`])],
      ['zstd', tsmakefs(img('zstd'), opts, [`${pax}.zst`])],
      ['bzip2', tsmakefs(img('bzip2'), opts, [`${pax}.bz2`])],
      ['stdin (gnu)', tsmakefs(img('stdin'), opts, ['-'], { stdinFile: gnu })],
      ['stdin (gzip)', tsmakefs(img('stdin-gz'), opts, ['-'], { stdinFile: `${pax}.gz` })],
      ['stdin (xz)', tsmakefs(img('stdin-xz'), opts, ['-'], { stdinFile: `${pax}.xz` })],
      // a pipe is read through one buffer (tar-feed.ts's SocketPull), a file by its descriptor
      ['stdin pipe (gnu)', tsmakefs(img('stdin-pipe'), opts, ['-'], { stdinFile: gnu, stdinPipe: true })],
      ['stdin pipe (xz)', tsmakefs(img('stdin-pipe-xz'), opts, ['-'], { stdinFile: `${pax}.xz`, stdinPipe: true })],
      // as release builds run it: from the staging directory, names from the image's own /etc
      ['METALOG', tsmakefs(img('metalog'), [...opts, '-N', etc], [relative(stage, join(work, 'METALOG'))], { cwd: stage })],
    ] as Array<[string, Promise<Build>]>).map(async ([w, p]) => [w, await p] as [string, Build]));
    for (const [, b] of builds) await expectBuilt(expect, b);
    hashesEqual(expect, builds, await Promise.all(builds.map(([, b]) => sha256File(b.image))));

    const metalog = builds[builds.length - 1]![1].image;
    await expectZdbClean(expect, metalog, pool, signal);
    await expectKernelListing(expect, metalog, pool, stage, signal);
  }, 10 * MIN);

  test('later tarballs merge in order, as base.txz then kernel.txz do: tar + tar, tar + directory, directory + tar; zdb clean; the kernel lists the whole tree', async ({ expect, signal }) => {
    const stage = tmp.dir('merge-stage');
    equalityTree(stage);
    const work = tmp.dir('merge-inputs');
    // "base" is everything but home/, "kernel" home/ alone (no root entry:
    // the first input's root directory stays, as makefs merges)
    const base = join(work, 'base.txz');
    const kernel = join(work, 'kernel.tzst');
    const tarOpts = '--format=pax --sort=name --numeric-owner';
    await sh('bash', ['-c', `tar ${tarOpts} -C "$0" --exclude=./home -cf - . | xz > "$1"`, stage, base]);
    await sh('bash', ['-c', `tar ${tarOpts} -C "$0" -cf - ./home | zstd -q > "$1"`, stage, kernel]);
    const baseDir = tmp.dir('merge-base-dir');
    await sh('bash', ['-c', 'tar -C "$0" --exclude=./home -cf - . | tar -C "$1" -xpf -', stage, baseDir]);
    const homeDir = tmp.dir('merge-home-dir');
    await sh('cp', ['-a', join(stage, 'home'), homeDir]);
    const pool = 'ti_merge';
    const opts = ['-t', 'zfs', '-s', '128m', '-o', `poolname=${pool}`];
    const builds: Array<[string, Build]> = await Promise.all(([
      ['tar + tar', tsmakefs(tmp.file('merge-tt.img'), opts, [base, kernel])],
      ['tar + directory', tsmakefs(tmp.file('merge-td.img'), opts, [base, homeDir])],
      ['directory + tar', tsmakefs(tmp.file('merge-dt.img'), opts, [baseDir, kernel])],
    ] as Array<[string, Promise<Build>]>).map(async ([w, p]) => [w, await p] as [string, Build]));
    for (const [, b] of builds) await expectBuilt(expect, b);
    for (const [, b] of builds) await expectZdbClean(expect, b.image, pool, signal);
    await expectKernelListing(expect, builds[0]![1].image, pool, stage, signal);
    await expectKernelListing(expect, builds[2]![1].image, pool, stage, signal);

    // a name in both is an error naming both, as between directories
    const clash = tmp.dir('merge-clash');
    mkdirSync(join(clash, 'etc'));
    writeFileSync(join(clash, 'etc', 'rc.conf'), 'again\n');
    const c = await tsmakefs(tmp.file('merge-clash.img'), opts, [base, clash]);
    expect(c.status, describeBuild(c)).toBe(1);
    expect(c.stderr).toBe(`tsmakefs: ${clash}/etc/rc.conf: cannot merge file with existing file 'etc/rc.conf' of ${base}\n`);
    expect(existsSync(c.image)).toBe(false);
  }, 10 * MIN);

  test('long names and link targets, non-UTF-8 names, sub-second times: directory = pax = METALOG; and makefs\'s inputs as pax', async ({ expect, signal }) => {
    const stage = tmp.dir('long-stage');
    longTree(stage);
    const work = tmp.dir('long-inputs');
    const etc = userDb(join(work, 'etc'));
    const metalog = join(work, 'METALOG');
    writeFileSync(metalog, metalogOf(stage));
    const pax = await tarball(stage, 'pax', join(work, 'p.tar'));
    const opts = ['-t', 'zfs', '-s', '64m', '-o', 'poolname=ti_long'];
    const builds: Array<[string, Build]> = [
      ['directory', await tsmakefs(tmp.file('dir.img'), opts, [stage])],
      ['pax', await tsmakefs(tmp.file('pax.img'), opts, [pax])],
      ['METALOG', await tsmakefs(tmp.file('metalog.img'), [...opts, '-N', etc], [metalog], { cwd: stage })],
    ];
    for (const [, b] of builds) await expectBuilt(expect, b);
    hashesEqual(expect, builds, await Promise.all(builds.map(([, b]) => sha256File(b.image))));
    await expectZdbClean(expect, builds[1]![1].image, 'ti_long', signal);

    // makefs's own regression inputs (sparse files, hard links, quarter-second times)
    const makefs = tmp.dir('makefs-stage');
    makefsInputsTree(makefs);
    const mopts = ['-t', 'zfs', '-s', '256m', '-o', 'poolname=ti_makefs'];
    const mpax = await tarball(makefs, 'pax', join(work, 'makefs.tar'));
    const mb: Array<[string, Build]> = [
      ['directory', await tsmakefs(tmp.file('mdir.img'), mopts, [makefs])],
      ['pax', await tsmakefs(tmp.file('mpax.img'), mopts, [mpax])],
    ];
    for (const [, b] of mb) await expectBuilt(expect, b);
    hashesEqual(expect, mb, await Promise.all(mb.map(([, b]) => sha256File(b.image))));
  }, 10 * MIN);
});

// ---------------------------------------------------------------- no root

describe.concurrent('a METALOG from an unprivileged build', () => {
  test('files on disk are 1000:1000 and 0644/0755; the image has the manifest\'s root:wheel, 4555 and 1777', async ({ expect, signal }) => {
    const destdir = tmp.dir('noroot-destdir');
    chmodSync(destdir, 0o755);
    for (const d of ['bin', 'etc', 'sbin', 'tmp', 'var', 'var/empty']) mkdirSync(join(destdir, d));
    writeFileSync(join(destdir, 'bin', 'su'), new Prng('su').bytes(20_000));
    writeFileSync(join(destdir, 'bin', 'passwd'), new Prng('passwd').bytes(9_000));
    writeFileSync(join(destdir, 'bin', 'test'), '#!/bin/sh\n');
    linkSync(join(destdir, 'bin', 'test'), join(destdir, 'bin', '['));
    symlinkSync('su', join(destdir, 'bin', 'sudo'));
    writeFileSync(join(destdir, 'sbin', 'init'), new Prng('init').bytes(150_000));
    writeFileSync(join(destdir, 'etc', 'master.passwd'), 'root:*:0:0::0:0:Charlie &:/root:/bin/sh\nbuild:*:1000:1000::0:0::/home/build:/bin/sh\n');
    writeFileSync(join(destdir, 'etc', 'group'), 'wheel:*:0:root\noperator:*:5:root\nbuild:*:1000:\n');
    writeFileSync(join(destdir, 'etc', 'motd'), 'welcome\n');
    // what install(1) -U -M METALOG writes: no owners applied on disk, no times
    const entries: Array<[string, string]> = [
      ['.', 'type=dir uname=root gname=wheel mode=0755'],
      ['./bin/su', 'type=file uname=root gname=wheel mode=04555 size=20000'],
      ['./bin/passwd', 'type=file uname=root gname=wheel mode=04555 size=9000 flags=schg'],
      ['./bin/test', 'type=file uname=root gname=wheel mode=0555 size=10'],
      ['./bin/[', 'type=file uname=root gname=wheel mode=0555 size=10'],
      ['./bin/sudo', 'type=link uname=root gname=wheel mode=0777 link=su'],
      ['./bin', 'type=dir uname=root gname=wheel mode=0755'], // after its contents
      ['./etc', 'type=dir uname=root gname=wheel mode=0755'],
      ['./etc/master.passwd', 'type=file uname=root gname=wheel mode=0600'],
      ['./etc/group', 'type=file uname=root gname=wheel mode=0644'],
      ['./etc/motd', 'type=file uname=root gname=operator mode=0664 tags=package=runtime'],
      ['./sbin', 'type=dir uname=root gname=wheel mode=0755'],
      ['./sbin/init', 'type=file uname=root gname=wheel mode=0500'],
      ['./tmp', 'type=dir uname=root gname=wheel mode=01777'],
      ['./var', 'type=dir uname=root gname=wheel mode=0755'],
      ['./var/empty', 'type=dir uname=root gname=wheel mode=0555 flags=schg'],
    ];
    writeFileSync(join(destdir, 'METALOG'), `#mtree 2.0\n${entries.map(([p, k]) => `${p} ${k}`).join('\n')}\n`);
    await sh('chown', ['-hR', '1000:1000', destdir]);
    await sh('find', [destdir, '!', '-type', 'l', '-exec', 'chmod', 'u=rwX,go=rX', '{}', '+']);

    // what the image must hold: the files with the manifest's metadata, at SOURCE_DATE_EPOCH
    const expected = join(tmp.dir('noroot-expected'), 'tree');
    await sh('cp', ['-a', destdir, expected]);
    await sh('rm', [join(expected, 'METALOG')]);
    await sh('chown', ['-hR', '0:0', expected]);
    for (const [p, k] of entries) {
      const mode = /mode=(\d+)/.exec(k)![1]!;
      if (!k.includes('type=link')) chmodSync(join(expected, p), parseInt(mode, 8));
      if (k.includes('gname=operator')) chownSync(join(expected, p), 0, 5);
    }
    await sh('find', [expected, '-exec', 'touch', '-h', '-d', '@1700000000', '{}', '+']);

    const out = tmp.dir('noroot-out');
    chownSync(out, 1000, 1000);
    const image = join(out, 'noroot.img');
    const b = await tsmakefs(image, ['-t', 'zfs', '-s', '64m', '-o', 'poolname=ti_noroot', '-D', '-N', join(destdir, 'etc')], ['./METALOG'], {
      cwd: destdir, asUser: 1000, env: { SOURCE_DATE_EPOCH: '1700000000' },
    });
    await expectBuilt(expect, b);
    expect(lstatSync(image).uid, 'the image was written by uid 1000').toBe(1000);
    await expectZdbClean(expect, image, 'ti_noroot', signal);
    await expectKernelListing(expect, image, 'ti_noroot', expected, signal);
  }, 10 * MIN);
});

// ---------------------------------------------------------------- broken inputs

describe.concurrent('broken inputs: a one-line error naming the entry, exit 1, no image left', () => {
  interface Made {
    input: string;
    cwd?: string;
    options?: string[];
    /** Build as this user (the output directory is made writable for it). */
    asUser?: number;
  }
  const cases: Array<{ name: string; make: (dir: string) => Promise<Made>; message: RegExp }> = [
    {
      name: 'a truncated tarball',
      make: async (d) => {
        mkdirSync(join(d, 'stage'));
        writeFileSync(join(d, 'stage', 'payload'), new Prng('payload').bytes(100_000));
        const full = await tarball(join(d, 'stage'), 'gnu', join(d, 'full.tar'));
        await sh('bash', ['-c', 'head -c 60000 "$0" > "$1"', full, join(d, 'cut.tar')]);
        return { input: join(d, 'cut.tar') };
      },
      message: /^tsmakefs: .*cut\.tar: truncated archive: member '\.\/payload' is cut short \(100000 bytes expected\)$/,
    },
    {
      name: 'a manifest naming a missing file',
      make: async (d) => {
        writeFileSync(join(d, 'METALOG'), '#mtree 2.0\n. type=dir uname=root gname=wheel mode=0755\n./bin/ghost type=file uname=root gname=wheel mode=0555\n');
        return { input: './METALOG', cwd: d, options: ['-N', userDb(join(d, 'etc'))] };
      },
      message: /^tsmakefs: \.\/METALOG:3: \.\/bin\/ghost: contents file 'bin\/ghost': No such file or directory$/,
    },
    {
      name: 'a manifest entry of an unknown type',
      make: async (d) => {
        writeFileSync(join(d, 'METALOG'), '#mtree 2.0\n./dev/door type=door uname=root gname=wheel mode=0644\n');
        return { input: './METALOG', cwd: d, options: ['-N', userDb(join(d, 'etc'))] };
      },
      message: /^tsmakefs: \.\/METALOG:2: \.\/dev\/door: unknown type 'door'/,
    },
    {
      // the reader thread meets the error hundreds of files ahead of the
      // writer: the message must still name the file, and nothing be left
      name: 'a staged file the builder may not read, among many it may',
      make: async (d) => {
        const stage = join(d, 'stage');
        for (const sub of ['a', 'b']) {
          mkdirSync(join(stage, sub), { recursive: true });
          for (let i = 0; i < 700; i++) writeFileSync(join(stage, sub, `f${String(i).padStart(4, '0')}`), `file ${sub}${i}\n`.repeat(1 + (i % 50)));
        }
        writeFileSync(join(stage, 'a', 'big'), new Prng('big').bytes(3_000_000));
        writeFileSync(join(stage, 'b', 'secret'), 'no\n');
        chmodSync(join(stage, 'b', 'secret'), 0o000);
        for (const p of [d, stage, join(stage, 'a'), join(stage, 'b')]) chmodSync(p, 0o755);
        return { input: stage, asUser: 1000 };
      },
      message: /^tsmakefs: .*\/stage\/b\/secret: Permission denied$/,
    },
    {
      name: 'an unknown user name',
      make: async (d) => {
        writeFileSync(join(d, 'motd'), 'hi\n');
        writeFileSync(join(d, 'METALOG'), '#mtree 2.0\n./motd type=file uname=mallory gname=wheel mode=0644\n');
        return { input: './METALOG', cwd: d, options: ['-N', userDb(join(d, 'etc'))] };
      },
      message: /^tsmakefs: \.\/METALOG:2: \.\/motd: unknown user 'mallory' \(not in .*etc\/master\.passwd\)$/,
    },
  ];
  for (const c of cases) {
    test(c.name, async ({ expect }) => {
      const work = tmp.dir(`err-${c.name.replace(/\W+/g, '-')}`);
      const made = await c.make(work);
      const out = tmp.dir(`err-out-${c.name.replace(/\W+/g, '-')}`);
      const image = join(out, 'x.img');
      if (made.asUser !== undefined) chmodSync(out, 0o777);
      const b = await tsmakefs(image, ['-t', 'zfs', '-s', '64m', '-o', 'poolname=ti_err', ...(made.options ?? [])], [made.input], { cwd: made.cwd, asUser: made.asUser });
      expect(b.status, describeBuild(b)).toBe(1);
      const lines = b.stderr.split('\n').filter((l) => l !== '');
      expect(lines, describeBuild(b)).toHaveLength(1);
      expect(lines[0]).toMatch(c.message);
      expect(readdirSync(out), 'nothing left in the output directory').toEqual([]);
    }, 2 * MIN);
  }
});

// ---------------------------------------------------------------- makefs's -T tests

describe.concurrent("makefs's T_flag tests (times read back with zdb -dddd)", () => {
  const STAMP = 1742574909;

  function inputs(label: string): string {
    const d = tmp.dir(label);
    mkdirSync(join(d, 'dir1'));
    lutimesSync(join(d, 'dir1'), 1_600_000_000, 1_600_000_000);
    return d;
  }

  test('T_flag_dir: -T sets atime, mtime and ctime of a directory', async ({ expect, signal }) => {
    const image = tmp.file('tdir.img');
    const b = await tsmakefs(image, ['-t', 'zfs', '-T', String(STAMP), '-s', '64m', '-o', 'poolname=ti_tdir'], [inputs('tdir-inputs')]);
    await expectBuilt(expect, b);
    expect(await zdbTimes(image, 'ti_tdir', 'dir1')).toEqual({ atime: STAMP, mtime: STAMP, ctime: STAMP, crtime: STAMP });
    await expectZdbClean(expect, image, 'ti_tdir', signal);
  }, 5 * MIN);

  test('T_flag_F_flag: spec times win over -T for atime and mtime', async ({ expect, signal }) => {
    const d = inputs('tf-inputs');
    const spec = join(tmp.dir('tf-spec'), 'manifest');
    writeFileSync(spec, mtreeC(d, `${STAMP}.000000000`));
    const image = tmp.file('tf.img');
    const b = await tsmakefs(image, ['-t', 'zfs', '-F', spec, '-T', String(STAMP + 1), '-s', '64m', '-o', 'poolname=ti_tf'], [d]);
    await expectBuilt(expect, b);
    const t = await zdbTimes(image, 'ti_tf', 'dir1');
    expect([t.atime, t.mtime]).toEqual([STAMP, STAMP]);
    await expectZdbClean(expect, image, 'ti_tf', signal);
  }, 5 * MIN);

  test('T_flag_mtree: -T overrides the times in a manifest', async ({ expect, signal }) => {
    const d = inputs('tm-inputs');
    const manifest = join(tmp.dir('tm-manifest'), 'manifest');
    writeFileSync(manifest, mtreeC(d));
    const image = tmp.file('tm.img');
    const b = await tsmakefs(image, ['-t', 'zfs', '-T', String(STAMP), '-s', '64m', '-o', 'poolname=ti_tm'], [manifest], { cwd: d });
    await expectBuilt(expect, b);
    expect(await zdbTimes(image, 'ti_tm', 'dir1')).toEqual({ atime: STAMP, mtime: STAMP, ctime: STAMP, crtime: STAMP });
    await expectZdbClean(expect, image, 'ti_tm', signal);
  }, 5 * MIN);
});

// ---------------------------------------------------------------- -F and -x over a tarball

describe('-F spec -x over a tarball', () => {
  test('the members -x drops give their space back, and only theirs: zdb clean, kept files intact', async ({ expect, signal }) => {
    const d = tmp.dir('fx-stage');
    mkdirSync(join(d, 'keep'));
    const rand = new Prng(41);
    // (files of several blocks, so that space handed back wrongly shows in zdb's leak check)
    writeFileSync(join(d, 'keep', 'a'), rand.bytes(300_000));
    writeFileSync(join(d, 'drop'), rand.bytes(200_000));
    writeFileSync(join(d, 'keep', 'b'), rand.bytes(70_000));
    const tarball = join(tmp.dir('fx-in'), 'in.tar');
    await sh('tar', ['--sort=name', '--numeric-owner', '-cf', tarball, '-C', d, '.']);
    const spec = join(tmp.dir('fx-spec'), 'spec');
    writeFileSync(spec, ['#mtree', '. type=dir mode=0755 uid=0 gid=0', './keep type=dir mode=0755 uid=0 gid=0',
      './keep/a type=file mode=0644 uid=0 gid=0', './keep/b type=file mode=0644 uid=0 gid=0', ''].join('\n'));
    const image = tmp.file('fx.img');
    const b = await tsmakefs(image, ['-t', 'zfs', '-F', spec, '-x', '-s', '64m', '-o', 'poolname=ti_fx'], [tarball]);
    await expectBuilt(expect, b);
    await expectZdbClean(expect, image, 'ti_fx', signal);
    // (GRUB reads the kept files back: a file whose blocks were handed back could be overwritten by a later one)
    for (const f of ['keep/a', 'keep/b']) {
      const v = await grubCmp(image, `/${f}`, join(d, f));
      expect(v.ok, `grub-fstest cmp ${f}:\n${v.output}`).toBe(true);
    }
  }, 5 * MIN);
});

// ---------------------------------------------------------------- a tarball whose paths appear again

describe('a tarball with members appended again (tar -r), compressed', () => {
  // The later member wins and the earlier one's space is handed back while
  // the blocks of the files before it may still wait for their compression
  // (zio/pipeline.ts): what is handed back must be exactly the earlier
  // member's blocks, placed first.
  test('each path holds its last member; zdb clean (no leak); GRUB reads every file back', async ({ expect, signal }) => {
    const d = tmp.dir('ra-stage');
    const rand = new Prng(43);
    const text = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => String.fromCharCode(97 + ((i * seed) % 23) % 26)).join(''));
    const first: Record<string, Buffer> = {
      big: Buffer.concat([text(200_000, 3), rand.bytes(150_000)]), small: text(5000, 5), tiny: Buffer.from('x'), keep: text(70_000, 7), noise: rand.bytes(9000),
    };
    for (const [n, data] of Object.entries(first)) writeFileSync(join(d, n), data);
    const tarball = join(tmp.dir('ra-in'), 'in.tar');
    await sh('tar', ['--sort=name', '--numeric-owner', '-cf', tarball, '-C', d, '.']);
    const last = { ...first, big: text(140_000, 11), small: rand.bytes(300_000), tiny: text(3000, 13) };
    for (const n of ['big', 'small', 'tiny']) writeFileSync(join(d, n), last[n as keyof typeof last]);
    await sh('tar', ['--numeric-owner', '-rf', tarball, '-C', d, './big', './small', './tiny']);
    const image = tmp.file('ra.img');
    const b = await tsmakefs(image, ['-t', 'zfs', '-s', '64m', '-o', 'poolname=ti_ra'], [tarball]);
    await expectBuilt(expect, b);
    await expectZdbClean(expect, image, 'ti_ra', signal);
    for (const f of Object.keys(last)) {
      const v = await grubCmp(image, `/${f}`, join(d, f));
      expect(v.ok, `grub-fstest cmp ${f}:\n${v.output}`).toBe(true);
    }
  }, 5 * MIN);
});

// ---------------------------------------------------------------- makefs's multi_staging tests

describe.concurrent("makefs's multi_staging tests", () => {
  /** The union of the inputs as a directory, the first input's directories' metadata winning (as merging does). */
  async function merged(label: string, ...dirs: string[]): Promise<string> {
    const out = join(tmp.dir(label), 'tree');
    mkdirSync(out);
    for (const d of [...dirs].reverse()) await sh('cp', ['-a', `${d}/.`, out]);
    return out;
  }

  test('multi_staging_1: two staging directories, one image', async ({ expect, signal }) => {
    const in1 = tmp.dir('ms1-input');
    mkdirSync(join(in1, 'dir1'));
    writeFileSync(join(in1, 'a'), 'a\n');
    writeFileSync(join(in1, 'dir1', 'a'), 'a\n');
    writeFileSync(join(in1, 'z'), 'z\n');
    const in2 = tmp.dir('ms1-extra');
    mkdirSync(join(in2, 'dir2', 'dir3'), { recursive: true });
    writeFileSync(join(in2, 'dir2', 'dir3', 'c'), 'c\n');
    writeFileSync(join(in2, 'dir2', 'b'), 'b\n');
    symlinkSync('dir2/dir3c', join(in2, 's'));
    stampWhole(in1, T0);
    stampWhole(in2, T0 + 1000);
    const image = tmp.file('ms1.img');
    const b = await tsmakefs(image, ['-t', 'zfs', '-s', '64m', '-o', 'poolname=ti_ms1'], [in1, in2]);
    await expectBuilt(expect, b);
    await expectZdbClean(expect, image, 'ti_ms1', signal);
    await expectKernelListing(expect, image, 'ti_ms1', await merged('ms1-expected', in1, in2), signal);
  }, 10 * MIN);

  test('multi_staging_2: a directory in both inputs holds the files of both', async ({ expect, signal }) => {
    const in1 = tmp.dir('ms2-input');
    mkdirSync(join(in1, 'dir'));
    writeFileSync(join(in1, 'dir', 'foo'), 'foo\n');
    writeFileSync(join(in1, 'dir', 'bar'), 'bar\n');
    const in2 = tmp.dir('ms2-extra');
    mkdirSync(join(in2, 'dir'));
    writeFileSync(join(in2, 'dir', 'baz'), 'baz\n');
    stampWhole(in1, T0);
    stampWhole(in2, T0 + 1000);
    const image = tmp.file('ms2.img');
    const b = await tsmakefs(image, ['-t', 'zfs', '-s', '64m', '-o', 'poolname=ti_ms2'], [in1, in2]);
    await expectBuilt(expect, b);
    await expectZdbClean(expect, image, 'ti_ms2', signal);
    const expected = await merged('ms2-expected', in1, in2);
    expect(readdirSync(join(expected, 'dir')).sort()).toEqual(['bar', 'baz', 'foo']);
    await expectKernelListing(expect, image, 'ti_ms2', expected, signal);
  }, 10 * MIN);
});

// getfattr runs alongside the walk and the build waits for it at the walk's
// end, keeping the copies of big files fed meanwhile (src/input/pipeline.ts).
// A getfattr that is slow to finish must change nothing: the same image,
// xattrs included.
describe.concurrent('a slow getfattr', () => {
  const real = which('getfattr');
  test.runIf(real !== undefined)('the image is the one a prompt getfattr gives', async ({ expect }) => {
    const stage = tmp.dir('slow-getfattr-stage');
    const r = new Prng('slow-getfattr');
    for (let i = 0; i < 24; i++) writeFileSync(join(stage, `big${i}`), Buffer.from(r.bytes(200_000 + i * 40_000)));
    mkdirSync(join(stage, 'etc'));
    writeFileSync(join(stage, 'etc', 'small'), 'x\n');
    const setfattr = which('setfattr');
    if (setfattr !== undefined) await run(setfattr, ['-n', 'user.kind', '-v', 'big', join(stage, 'big3')]);
    const bin = tmp.dir('slow-getfattr-bin');
    writeFileSync(join(bin, 'getfattr'), `#!/bin/sh\nsleep 1\nexec ${real} "$@"\n`);
    chmodSync(join(bin, 'getfattr'), 0o755);
    const out = tmp.dir('slow-getfattr-out');
    const images: string[] = [];
    for (const slow of [false, true]) {
      const image = join(out, `${slow}.img`);
      const env = { ...process.env, PATH: slow ? `${bin}:${process.env.PATH}` : process.env.PATH };
      const b = await run(process.execPath, [TSMAKEFS_BIN, '-t', 'zfs', '-o', 'poolname=slow,fs=slow;compression=off', '-s', '128m', '-T', '1700000000', image, stage], { env });
      expect(b.status, b.stderr).toBe(0);
      images.push(await sha256File(image));
    }
    expect(images[1]).toBe(images[0]);
  }, 5 * MIN);
});
