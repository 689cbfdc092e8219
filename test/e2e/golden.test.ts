// Issue 6: golden images. Every case of golden/cases.json is rebuilt from its
// recipe and must be byte for byte the image whose SHA-256 is pinned there;
// every golden image must pass zdb-check.sh; and three representative ones
// (every kind of entry under the default rootpath, the FreeBSD preset, and
// datasets with properties) go through the OpenZFS kernel in qemu, whose
// listing of the mounted pool must equal listing.sh of the staging tree.
//
// The trees and builds come from scripts/golden.mjs itself (the code behind
// `npm run golden:update` and `--check`), so the test and the script cannot
// disagree about what a case is. KEEP_TMP=1 keeps trees, images and results.

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, test } from 'vitest';
import { FS_OPTION_HELP } from '../../src/cli/fsoptions.js';
import { TmpArea } from '../helpers/build.js';
import { diffListings, dirNlinkReliable, listingOf, vmCheck, zdbCheck } from '../helpers/oracles.js';
import { REPO_ROOT } from '../helpers/proc.js';

const MIN = 60_000;

// ---------------------------------------------------------------- scripts/golden.mjs, typed

export interface GoldenCase {
  name: string;
  about?: string;
  trees: string[];
  args: string[];
  /** Variables the build runs with (inherited SOURCE_DATE_EPOCH and TSMAKEFS_* are dropped). */
  env?: Record<string, string>;
  sha256: string | null;
}
export interface Golden {
  trees: Record<string, unknown>;
  cases: GoldenCase[];
}
export interface TreeEntry {
  kind: 'dir' | 'file' | 'symlink' | 'link' | 'fifo' | 'chardev' | 'blockdev';
  path: Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: bigint;
  size?: number;
  text?: string;
  target?: string;
}
export interface TsmakefsRun {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  command: string;
  pid: number | undefined;
}
export interface RunOptions {
  bin?: string;
  /** Another Node.js binary to run tsmakefs with. */
  node?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  umask?: string;
  nodeArgs?: string[];
  wrapper?: string[];
  timeoutMs?: number;
  relative?: boolean;
}
export interface GoldenModule {
  REPO_ROOT: string;
  GOLDEN_FILE: string;
  UPDATE_HINT: string;
  loadGolden(file?: string): Golden;
  expandRecipe(recipe: unknown, name?: string): TreeEntry[];
  makeTree(recipe: unknown, dir: string, opts?: { order?: 'recipe' | 'reverse'; name?: string }): TreeEntry[];
  treesFor(golden: Golden, c: GoldenCase, root: string, cache?: Map<string, string>): string[];
  caseArgs(c: GoldenCase, image: string, treeDirs: string[]): string[];
  caseEnv(c: GoldenCase, base?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  runTsmakefs(args: string[], opts?: RunOptions): Promise<TsmakefsRun>;
  runCase(c: GoldenCase, image: string, treeDirs: string[], opts?: RunOptions): Promise<{ image: string; sha256: string | null; build: TsmakefsRun }>;
  sha256File(path: string): Promise<string>;
}

/** scripts/golden.mjs (plain JavaScript, so imported by URL and typed here). */
export async function goldenModule(): Promise<GoldenModule> {
  return (await import(pathToFileURL(join(REPO_ROOT, 'scripts', 'golden.mjs')).href)) as GoldenModule;
}

const G = await goldenModule();
const golden = G.loadGolden();

const tmp = new TmpArea('golden');
afterAll(() => tmp.cleanup());

// ---------------------------------------------------------------- one build per case, shared

const treeCache = new Map<string, string>();
const treeRoot = tmp.dir('trees');

interface Built {
  c: GoldenCase;
  image: string;
  trees: string[];
  sha256: string;
  ms: number;
  command: string;
}

const builds = new Map<string, Promise<Built>>();

/** Make the case's trees (once) and build its image (once). Rejects with tsmakefs's stderr on failure. */
function built(c: GoldenCase): Promise<Built> {
  let p = builds.get(c.name);
  if (p === undefined) {
    p = (async () => {
      const trees = G.treesFor(golden, c, treeRoot, treeCache);
      const image = join(tmp.dir(`img-${c.name}`), `${c.name}.img`);
      const r = await G.runCase(c, image, trees);
      if (r.sha256 === null) {
        throw new Error(`tsmakefs failed for golden case ${c.name} (exit ${r.build.status}):\n${r.build.command}\n${r.build.stderr}`);
      }
      return { c, image, trees, sha256: r.sha256, ms: r.build.ms, command: r.build.command };
    })();
    builds.set(c.name, p);
  }
  return p;
}

const byName = (name: string): GoldenCase => {
  const c = golden.cases.find((x) => x.name === name);
  if (c === undefined) throw new Error(`golden/cases.json has no case ${name}`);
  return c;
};

/** The value of `-o key=...` items across a case's arguments. */
function oOptions(c: GoldenCase): Map<string, string> {
  const m = new Map<string, string>();
  c.args.forEach((a, i) => {
    if (c.args[i - 1] !== '-o') return;
    for (const item of a.split(',')) {
      const eq = item.indexOf('=');
      const key = eq < 0 ? item : item.slice(0, eq);
      m.set(key, eq < 0 ? '' : item.slice(eq + 1));
    }
  });
  return m;
}

// ---------------------------------------------------------------- the cases themselves

describe('golden/cases.json', () => {
  test('every case is pinned', ({ expect }) => {
    const unpinned = golden.cases.filter((c) => c.sha256 === null).map((c) => c.name);
    expect(unpinned, `cases without a digest: ${G.UPDATE_HINT}`).toEqual([]);
  });

  test('the cases use every -o option, -T as a number and as a file, -s, -M/-m, the owner overrides, SOURCE_DATE_EPOCH and several inputs', ({ expect }) => {
    const used = new Set(golden.cases.flatMap((c) => [...oOptions(c).keys()]));
    const keys = FS_OPTION_HELP.map(([k]) => k.replace(/[[=].*$/, ''));
    expect(keys.filter((k) => !used.has(k)), 'options of `tsmakefs --help` no golden case uses: add a case').toEqual([]);
    const flags = new Set(golden.cases.flatMap((c) => c.args.filter((a) => a.startsWith('-'))));
    for (const f of ['-T', '-s', '-M', '-m', '--all-root', '--force-uid', '--force-gid']) expect(flags.has(f), `no case uses ${f}`).toBe(true);
    expect(golden.cases.some((c) => c.env?.SOURCE_DATE_EPOCH !== undefined), 'no case sets SOURCE_DATE_EPOCH').toBe(true);
    const stamps = golden.cases.flatMap((c) => c.args.filter((_, i) => c.args[i - 1] === '-T'));
    expect(stamps.some((s) => /^\d+$/.test(s)), '-T with a number').toBe(true);
    expect(stamps.some((s) => s.includes('{tree')), '-T with a file').toBe(true);
    expect(golden.cases.some((c) => c.trees.length > 1), 'several input directories').toBe(true);
    const ashifts = new Set(golden.cases.map((c) => oOptions(c).get('ashift') ?? '12'));
    for (const a of ['9', '12', '13']) expect(ashifts.has(a), `ashift ${a}`).toBe(true);
    const props = golden.cases.flatMap((c) => c.args.filter((a) => a.startsWith('fs=')).flatMap((a) => a.split(';').slice(1)));
    for (const p of ['mountpoint=', 'canmount=off', 'canmount=noauto', 'atime=', 'exec=off', 'setuid=off', 'quota=', 'recordsize=16k']) {
      expect(props.some((x) => x.startsWith(p)), `an fs= with ${p}`).toBe(true);
    }
    expect(props.some((x) => /^[a-z0-9_.+-]+:[a-z0-9_.:+-]+=/i.test(x)), 'an fs= with a user property').toBe(true);
  });

  test('the trees hold every kind of entry and every format feature the writer has', ({ expect }) => {
    const all = Object.entries(golden.trees).flatMap(([name, recipe]) => G.expandRecipe(recipe, name));
    const kinds = new Set(all.map((e) => e.kind));
    for (const k of ['dir', 'file', 'symlink', 'link', 'fifo', 'chardev', 'blockdev'] as const) expect(kinds.has(k), `a ${k}`).toBe(true);
    const has = (what: string, pred: (e: TreeEntry) => boolean): void => { expect(all.some(pred), what).toBe(true); };
    has('a setuid file', (e) => e.kind === 'file' && ((e.mode ?? 0) & 0o4000) !== 0);
    has('a setgid file', (e) => e.kind === 'file' && ((e.mode ?? 0) & 0o2000) !== 0);
    has('a sticky directory', (e) => e.kind === 'dir' && ((e.mode ?? 0) & 0o1000) !== 0);
    has('an owner other than root', (e) => (e.uid ?? 0) !== 0);
    has('an mtime with nanoseconds', (e) => e.mtime !== undefined && e.mtime % 1000n !== 0n);
    has('an mtime before 1970', (e) => e.mtime !== undefined && e.mtime < 0n);
    has('a short symlink', (e) => e.kind === 'symlink' && e.target!.length < 60);
    has('a symlink over 144 bytes', (e) => e.kind === 'symlink' && e.target!.length > 144);
    has('a 50-byte name (no micro-ZAP: a fat ZAP directory)', (e) => lastName(e.path).length === 50);
    has('a 255-byte name', (e) => lastName(e.path).length === 255);
    has('a name that is not UTF-8', (e) => !Buffer.from(e.path.toString('utf8')).equals(e.path));
    has('a file over 256 KiB (indirect blocks)', (e) => e.kind === 'file' && (e.size ?? 0) > 256 * 1024);
    const perDir = new Map<string, number>();
    for (const e of all) {
      const p = e.path.toString('latin1');
      const d = p.slice(0, Math.max(0, p.lastIndexOf('/')));
      perDir.set(d, (perDir.get(d) ?? 0) + 1);
    }
    expect(Math.max(...perDir.values()), 'a directory of 3000 entries').toBeGreaterThanOrEqual(3000);
  });
});

function lastName(p: Buffer): Buffer {
  const i = p.lastIndexOf(0x2f);
  return i < 0 ? p : p.subarray(i + 1);
}

// ---------------------------------------------------------------- byte for byte

describe.concurrent('each golden image is byte for byte the pinned one', () => {
  for (const c of golden.cases) {
    test(`${c.name}: ${c.about ?? ''}`, async ({ expect }) => {
      const b = await built(c);
      expect(b.sha256, [
        `golden case ${c.name}: the image tsmakefs writes now differs from the pinned one.`,
        `  pinned  ${c.sha256 ?? '(none)'}`,
        `  built   ${b.sha256}  by: ${b.command}`,
        `If the change is intended, run \`npm run golden:update\` and commit golden/cases.json;`,
        'if not, something changed the on-disk bytes by accident (`node scripts/golden.mjs --check --keep DIR` keeps the images to compare).',
      ].join('\n')).toBe(c.sha256);
    }, 5 * MIN);
  }
});

// ---------------------------------------------------------------- zdb on every one

describe.concurrent('zdb-check.sh passes on every golden image', () => {
  for (const c of golden.cases) {
    test(c.name, async ({ expect, signal }) => {
      const b = await built(c);
      const v = await zdbCheck(b.image, { signal });
      expect(v.ok, `zdb-check.sh ${b.image} (golden case ${c.name}, ${b.command}) after ${v.ms} ms:\n${v.output}`).toBe(true);
    }, 10 * MIN);
  }
});

// ---------------------------------------------------------------- the kernel, on every image

/**
 * Every golden image goes through the kernel check (20-60 s each of emulated
 * boot, import, scrub, listing and write test, two at a time). The guest's
 * listing is compared with the staged tree where the image should reproduce
 * it as is: not where times or owners are rewritten (-T, SOURCE_DATE_EPOCH,
 * owner overrides) or several inputs are merged.
 */
const KERNEL_CASES = golden.cases.map((c) => c.name);

function listingComparable(c: GoldenCase): boolean {
  const a = c.args.join(' ');
  return c.trees.length === 1 && !/(^| )-T |--all-root|--force-uid|--force-gid/.test(a) && !(c.env && 'SOURCE_DATE_EPOCH' in c.env);
}

describe.concurrent('the OpenZFS kernel imports, scrubs, mounts and lists exactly the tree of', () => {
  for (const name of KERNEL_CASES) {
    test(name, async ({ expect, signal }) => {
      const c = byName(name);
      const b = await built(c);
      const o = oOptions(c);
      const pool = o.get('poolname')!;
      const rootPath = o.get('rootpath') ?? (o.has('preset') ? '/' : `/${pool}`);
      const noDirNlink = !dirNlinkReliable(tmp.root);
      const [v, expected] = await Promise.all([
        vmCheck(b.image, {
          pool,
          listingRoot: rootPath === '/' ? undefined : rootPath,
          extraArgs: noDirNlink ? ['--no-dir-nlink'] : [],
          outDir: tmp.dir(`vm-${name}`),
          timeoutSec: 300,
          signal,
        }),
        listingOf(b.trees[0]!, { noDirNlink }),
      ]);
      expect(v.ok, `check-image.sh ${b.image} (golden case ${name}; results in ${v.outDir}):\n${v.output}`).toBe(true);
      expect(v.result).toMatch(/^ZVM-RESULT import=PASS scrub=PASS mount=PASS listing=PASS writetest=PASS export=PASS /);
      if (!listingComparable(c)) return;
      const diff = diffListings(expected, v.listing);
      expect(diff, `the guest's listing (${v.outDir}/listing.txt) differs from listing.sh ${b.trees[0]}:\n${diff}`).toBe('');
    }, 8 * MIN);
  }
});
