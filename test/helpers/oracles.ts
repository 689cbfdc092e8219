// The real readers that judge our images: OpenZFS's zdb (userspace), GRUB's
// ZFS driver (grub-fstest) and the OpenZFS kernel module in a qemu guest
// (shared/tools/zfs-vm). Never our own reader.
//
// A wrapper returns a verdict ({ ok, output, ... }) and never throws because
// an image is bad, so a test can assert `ok` and print `output`. It throws
// only when the oracle itself cannot run (tool not installed, guest not set
// up, usage error): a missing oracle must fail the suite, never skip it.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunResult, requireTool, run, sharedTool, which } from './proc.js';

export interface Verdict {
  ok: boolean;
  /** What the oracle printed (stdout and stderr interleaved). */
  output: string;
  /** Exit status of the oracle (null: killed). */
  status: number | null;
  ms: number;
}

function verdict(r: RunResult, ok = r.status === 0): Verdict {
  return { ok: ok && !r.timedOut, output: r.output, status: r.status, ms: r.ms };
}

function requireZdb(): void {
  requireTool(which('zdb') !== undefined, 'zdb (OpenZFS userland, zfsutils-linux)',
    '`bash .ci/run` installs it (../shared/tools/install-zfs-tools.sh)');
}

// ---------------------------------------------------------------- zdb

export interface ZdbOptions {
  /** Pool name; default: the one in the labels. */
  pool?: string;
  timeoutMs?: number;
  /** Abort (kill zdb) with the test, e.g. vitest's context `signal`. */
  signal?: AbortSignal;
  /** Keep the output of the space map and object passes in the verdict (it can be large). */
  outputs?: boolean;
}

export interface ZdbVerdict extends Verdict {
  /** With `outputs`: what `zdb -mmm` (space maps, metaslab histograms) and `zdb -dddd` (every object, the MOS first) printed. */
  outputs?: { spacemaps: string; objects: string };
}

/**
 * shared/tools/zdb-check.sh IMAGE [POOL]: labels, config, every block read and
 * checksummed, leak check, space maps, every object dumped. ok only if all pass.
 */
export async function zdbCheck(image: string, opts: ZdbOptions = {}): Promise<ZdbVerdict> {
  const script = sharedTool('zdb-check.sh');
  requireZdb();
  // The script greps zdb's output for words such as "EIO" and "error", and
  // zdb prints the vdev's path, which lies in the script's work directory:
  // a random mktemp name once spelled one ("/tmp/tmp.sEioWXNLna/dev/image")
  // and failed a clean image. A work directory named with digits cannot.
  const work = join(tmpdir(), `zdbcheck-${process.pid}-${++zdbRuns}`);
  mkdirSync(work, { recursive: true });
  try {
    const args = [script, '--keep', work, image];
    if (opts.pool !== undefined) args.push(opts.pool);
    const r = await run('bash', args, { timeoutMs: opts.timeoutMs ?? 20 * 60_000, signal: opts.signal });
    // Exit 2 is the script's own usage/setup failure, not a verdict on the image.
    if (r.status === 2) throw new Error(`zdb-check.sh could not run:\n${r.output}`);
    if (!opts.outputs) return verdict(r);
    const kept = (name: string): string => {
      try { return readFileSync(join(work, name), 'utf8'); } catch { return ''; }
    };
    return { ...verdict(r), outputs: { spacemaps: kept('spacemaps.txt'), objects: kept('objects.txt') } };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
let zdbRuns = 0;

/** `zdb -l IMAGE`: the four labels, as text (ok: all four unpack). */
export async function zdbLabels(image: string): Promise<Verdict> {
  requireZdb();
  const r = await run('zdb', ['-l', image], { timeoutMs: 5 * 60_000 });
  const ok = r.status === 0 && !/failed to unpack/.test(r.output);
  return verdict(r, ok);
}

/** One metaslab as `zdb -mmm` shows it. */
export interface ZdbMetaslab {
  id: number;
  /** MOS object of its space map (0: none). */
  spacemap: number;
  /** Free segments once zdb has loaded the space map: bucket (log2 of bytes) -> count, non-zero ones only. */
  inMemory: Map<number, number>;
  /** The histogram stored in the space map's header, same keys; undefined when zdb prints none. */
  onDisk?: Map<number, number>;
}

/**
 * Every metaslab in `zdb -mmm` output (zdbCheck's `outputs.spacemaps`), with zdb's
 * own histogram of its free segments (computed from the space map's
 * entries) and the one the image stores in the space map header (printed
 * only while spacemap_histogram is active). Throws if there are none.
 */
export function zdbMetaslabs(text: string): ZdbMetaslab[] {
  const out: ZdbMetaslab[] = [];
  let hist: Map<number, number> | undefined;
  for (const line of text.split('\n')) {
    const ms = /^\s+metaslab\s+(\d+)\s+offset\s+\S+\s+spacemap\s+(\d+)/.exec(line);
    const cur = out[out.length - 1];
    if (ms) {
      out.push({ id: Number(ms[1]), spacemap: Number(ms[2]), inMemory: new Map() });
      hist = undefined;
    } else if (cur && /^\s+In-memory histogram:/.test(line)) {
      hist = cur.inMemory;
    } else if (cur && /^\s+On-disk histogram:/.test(line)) {
      hist = cur.onDisk = new Map();
    } else if (hist) {
      const b = /^\s+(\d+):\s+(\d+)/.exec(line);
      if (!b) { hist = undefined; continue; }
      if (b[2] !== '0') hist.set(Number(b[1]), Number(b[2]));
    }
  }
  if (out.length === 0) throw new Error(`zdb -mmm printed no metaslabs:\n${text}`);
  return out;
}

/** The bonus sizes of the MOS's space map objects in `zdb -dddd` output (zdbCheck's `outputs.objects`): object -> bytes. */
export function zdbSpaceMapHeaders(text: string): Map<number, number> {
  const lines = text.split('\n');
  const out = new Map<number, number>();
  // the MOS comes first; its objects are listed as "OBJ lvl iblk ... SPA space map"
  // with the bonus on the next line: "320   bonus  SPA space map header"
  for (let i = 0; i + 1 < lines.length; i++) {
    const o = /^\s+(\d+)\s+\d+\s.*\sSPA space map$/.exec(lines[i]!);
    const b = o && /^\s+(\d+)\s+bonus\s+SPA space map header$/.exec(lines[i + 1]!);
    if (o && b) out.set(Number(o[1]), Number(b[1]));
  }
  return out;
}

// ---------------------------------------------------------------- GRUB

function requireGrub(): string {
  const p = which('grub-fstest');
  requireTool(p !== undefined, 'grub-fstest (GRUB\'s ZFS reader, grub-common)',
    '`bash .ci/run` installs it (../shared/tools/install-zfs-tools.sh)');
  return p!;
}

/**
 * A GRUB path. A plain path ("/etc/motd") is taken inside the pool's root
 * dataset: `(loop0)/@/etc/motd`. A path starting with "(" is used as is
 * (e.g. `(loop0)/ROOT/default@/`).
 */
export function grubPathOf(path: string): string {
  if (path.startsWith('(')) return path;
  return `(loop0)/@${path.startsWith('/') ? path : `/${path}`}`;
}

/** The "error: ..." lines GRUB printed (grub-fstest exits 0 after some of them). */
function grubErrors(output: string): string[] {
  return output.split('\n').filter((l) => /(^|\s)error:/.test(l)).map((l) => l.trim());
}

/**
 * Errors GRUB 2.06's `ls` prints for pools that are fine (seen on pools made
 * by OpenZFS 2.3 itself, shared/tools/zfs-vm/README.md): its micro-ZAP
 * iterator hands every chunk to the ls hook, unused ones too (printed as
 * blank names), and for directories holding non-empty subdirectories it
 * fails with "compression algorithm inherit not supported" and leaves the
 * name out. Lookups (cat, cmp, ls of a path) do not iterate and are exact.
 */
export const GRUB_LS_QUIRKS: readonly RegExp[] = [/compression algorithm inherit not supported/];

export interface GrubListing extends Verdict {
  /** The names GRUB printed (directories end in "/"; blank entries dropped). */
  names: string[];
  /** Every "error:" line, the known quirks included. */
  errors: string[];
}

/**
 * `grub-fstest IMAGE ls PATH`. ok: exit 0 and no error but the known ls
 * quirks (GRUB_LS_QUIRKS). An image GRUB does not recognise can list as
 * nothing at all with exit 0, so assert on `names` too.
 */
export async function grubLs(image: string, grubPath: string): Promise<GrubListing> {
  const grub = requireGrub();
  const r = await run(grub, [image, 'ls', grubPathOf(grubPath)], { timeoutMs: 5 * 60_000 });
  const errors = grubErrors(r.output);
  const ok = r.status === 0 && errors.every((e) => GRUB_LS_QUIRKS.some((q) => q.test(e)));
  return { ...verdict(r, ok), names: r.stdout.split(/\s+/).filter((s) => s !== ''), errors };
}

/** `grub-fstest IMAGE cmp PATH HOSTFILE`: ok if GRUB reads the same bytes, with no error at all. */
export async function grubCmp(image: string, grubPath: string, hostFile: string): Promise<Verdict> {
  const grub = requireGrub();
  const r = await run(grub, [image, 'cmp', grubPathOf(grubPath), hostFile], { timeoutMs: 10 * 60_000 });
  return verdict(r, r.status === 0 && grubErrors(r.output).length === 0);
}

// ---------------------------------------------------------------- kernel (qemu)

export interface VmOptions {
  /** Pool to import (-p); default: the only one on the image. */
  pool?: string;
  /** Subtree below the altroot to list (--listing-root), e.g. `/${pool}` for rootpath=/<pool>. */
  listingRoot?: string;
  /** More check-image.sh arguments, e.g. ['--no-dir-nlink']. */
  extraArgs?: string[];
  /** Results directory (-o); default: a new directory under the OS tmpdir. */
  outDir?: string;
  /** Guest time limit in seconds (--timeout), default 240. */
  timeoutSec?: number;
  /** Abort (kill qemu) with the test, e.g. vitest's context `signal`. */
  signal?: AbortSignal;
}

export interface VmVerdict extends Verdict {
  /** The results directory (results.txt, console.log, listing.txt, summary.txt ...). */
  outDir: string;
  /** The guest's listing of the mounted tree ('' if none). */
  listing: string;
  /** The ZVM-RESULT line, e.g. "ZVM-RESULT import=PASS scrub=PASS ... pool=zroot" ('' if none). */
  result: string;
}

export const ZVM_CACHE = process.env.ZVM_CACHE ?? '/var/cache/zfs-vm';

/**
 * shared/tools/zfs-vm/check-image.sh IMAGE -q -o OUTDIR: import, scrub,
 * mount, list and write-test the pool under the real OpenZFS kernel module.
 * The image itself is never modified (qemu snapshot overlay).
 */
export async function vmCheck(image: string, opts: VmOptions = {}): Promise<VmVerdict> {
  const script = sharedTool('zfs-vm/check-image.sh');
  const guest = join(ZVM_CACHE, 'current');
  requireTool(existsSync(join(guest, 'initramfs.cpio')) && existsSync(join(guest, 'vmlinuz')),
    `the zfs-vm guest (${guest})`, '`bash .ci/run` builds it (../shared/tools/zfs-vm/setup.sh)');
  requireTool(which('qemu-system-x86_64') !== undefined, 'qemu-system-x86_64',
    '`bash .ci/run` installs it (../shared/tools/zfs-vm/setup.sh)');
  requireTool(process.getuid?.() === 0, 'root (check-image.sh runs qemu and reads every file as root)',
    'run the suite as root, as CI does');

  const outDir = opts.outDir ?? mkdtempSync(join(tmpdir(), 'tsmakefs-vm-'));
  mkdirSync(outDir, { recursive: true });
  const timeoutSec = opts.timeoutSec ?? 240;
  const args = [script, image, '-q', '-o', outDir, '--timeout', String(timeoutSec)];
  if (opts.pool !== undefined) args.push('-p', opts.pool);
  if (opts.listingRoot !== undefined) args.push('--listing-root', opts.listingRoot);
  args.push(...(opts.extraArgs ?? []));
  // The guest enforces its own limit; ours only catches a wedged host side.
  const r = await runCheckImage(args, outDir, { timeoutMs: (timeoutSec + 90) * 1000, signal: opts.signal });
  if (r.status === 2) throw new Error(`check-image.sh could not run (setup or usage):\n${r.output}`);

  const read = (name: string): string => {
    try { return readFileSync(join(outDir, name), 'utf8'); } catch { return ''; }
  };
  const results = read('results.txt');
  const result = results.split('\n').filter((l) => l.startsWith('ZVM-RESULT ')).pop() ?? '';
  let output = r.output;
  if (r.status !== 0) {
    // -q printed only the summary: add the sections that say why.
    output += `\n--- failed sections of ${join(outDir, 'results.txt')}:\n${failedSections(results)}`;
    if (r.status === 3) output += `\n--- tail of console.log:\n${tail(read('console.log'), 40)}`;
  }
  return { ...verdict(r), output, outDir, listing: read('listing.txt'), result };
}

/**
 * Run check-image.sh (`args`, results in `outDir`), once more if the guest
 * never got as far as its own init: the emulated machine's kernel panicked
 * ("IO-APIC + timer doesn't work" under TCG on a loaded host, seen once in
 * CI), or the emulator itself crashed (qemu's TCG segfaulted 9 s into a
 * boot, before the guest printed a line, seen once in CI). That is a failed
 * boot, not a verdict on the image, which no code had read yet. Any
 * failure after the guest's "kernel up" line stands.
 */
export async function runCheckImage(args: string[], outDir: string, opts: { timeoutMs: number; signal?: AbortSignal; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  for (let attempt = 1; ; attempt++) {
    const r = await run('bash', args, opts);
    if (r.status === 0 || attempt === 2) return r;
    let console = '';
    try { console = readFileSync(join(outDir, 'console.log'), 'utf8'); } catch { /* the guest wrote nothing */ }
    if (/\[zvm [\d.]+\] kernel up/.test(console)) return r;
    if (!/Kernel panic/.test(console) && !emulatorCrashed(r.output)) return r;
  }
}

/**
 * check-image.sh's output says qemu died of a crash signal (SIGILL, SIGABRT,
 * SIGBUS, SIGFPE, SIGSEGV): not the timeout's SIGKILL, nor an interrupt.
 */
function emulatorCrashed(output: string): boolean {
  const m = /qemu rc=(\d+)/.exec(output);
  return m !== null && [132, 134, 135, 136, 139].includes(Number(m[1]));
}

/** The sections of a results.txt that ended with rc != 0 (trimmed), or its tail. */
function failedSections(results: string): string {
  const out: string[] = [];
  const re = /==== BEGIN (\S+) ====\n([\s\S]*?)==== END \1 rc=(\d+) ====/g;
  for (const m of results.matchAll(re)) {
    if (m[3] !== '0') out.push(`[${m[1]} rc=${m[3]}]\n${tail(m[2]!, 30)}`);
  }
  return out.length > 0 ? out.join('\n') : tail(results, 30);
}

function tail(text: string, lines: number): string {
  const all = text.trimEnd().split('\n');
  return (all.length > lines ? ['...', ...all.slice(-lines)] : all).join('\n');
}

// ---------------------------------------------------------------- listings

export interface ListingFlags {
  /** Leave nlink out of directory lines (for host filesystems such as btrfs/overlayfs). */
  noDirNlink?: boolean;
  noSha256?: boolean;
  /** List extended attributes too (check-image.sh --xattrs on the guest side). */
  xattrs?: boolean;
}

export function listingArgs(flags: ListingFlags = {}): string[] {
  const a: string[] = [];
  if (flags.noDirNlink) a.push('--no-dir-nlink');
  if (flags.noSha256) a.push('--no-sha256');
  if (flags.xattrs) a.push('--xattrs');
  return a;
}

/**
 * shared/tools/zfs-vm/listing.sh DIR: the canonical listing of a host tree,
 * in the format check-image.sh produces for the mounted pool. Throws if the
 * lister fails (that is a harness problem, not a verdict).
 */
export async function listingOf(dir: string, flags: ListingFlags = {}): Promise<string> {
  const script = sharedTool('zfs-vm/listing.sh');
  const r = await run('bash', [script, ...listingArgs(flags), dir], { timeoutMs: 20 * 60_000 });
  if (r.status !== 0) throw new Error(`listing.sh ${dir} failed (exit ${r.status}):\n${tail(r.stderr || r.output, 20)}`);
  return r.stdout;
}

/**
 * Whether directory link counts on the filesystem holding `dir` follow the
 * 2 + subdirectories rule that ZFS uses (ext4, tmpfs, xfs yes; btrfs and
 * overlayfs no). If not, compare listings with { noDirNlink: true }.
 */
export function dirNlinkReliable(dir: string): boolean {
  const probe = mkdtempSync(join(dir, '.nlink-probe-'));
  try {
    mkdirSync(join(probe, 'sub'));
    return statSync(probe).nlink === 3;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/** One listing line's path (the first field; escaped, so it has no spaces). */
function pathOf(line: string): string {
  const i = line.indexOf(' ');
  return i < 0 ? line : line.slice(0, i);
}

/** "key=value" fields of a listing line after the path. */
function fieldsOf(line: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of line.split(' ').slice(1)) {
    const eq = f.indexOf('=');
    m.set(eq < 0 ? f : f.slice(0, eq), eq < 0 ? '' : f.slice(eq + 1));
  }
  return m;
}

/**
 * A short, readable account of how listing `actual` differs from `expected`
 * ('' if they are equal): entries missing from actual, extra entries, and for
 * entries in both, the fields that differ. At most `max` entries are shown.
 */
export function diffListings(expected: string, actual: string, max = 25): string {
  if (expected === actual) return '';
  const parse = (text: string): Map<string, string> => {
    const m = new Map<string, string>();
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      m.set(pathOf(line), line);
    }
    return m;
  };
  const exp = parse(expected);
  const act = parse(actual);
  const items: string[] = [];
  let missing = 0;
  let extra = 0;
  let changed = 0;
  const paths = [...new Set([...exp.keys(), ...act.keys()])].sort((a, b) =>
    Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const p of paths) {
    const e = exp.get(p);
    const a = act.get(p);
    if (e === a) continue;
    if (a === undefined) {
      missing++;
      items.push(`- missing  ${e}`);
    } else if (e === undefined) {
      extra++;
      items.push(`+ extra    ${a}`);
    } else {
      changed++;
      const fe = fieldsOf(e);
      const fa = fieldsOf(a);
      const keys = [...new Set([...fe.keys(), ...fa.keys()])];
      const diffs = keys
        .filter((k) => fe.get(k) !== fa.get(k))
        .map((k) => `${k}: ${fe.get(k) ?? '(none)'} -> ${fa.get(k) ?? '(none)'}`);
      items.push(`~ changed  ${p}  ${diffs.join(', ')}`);
    }
  }
  const head = expected.split('\n')[0] !== actual.split('\n')[0]
    ? [`header: ${JSON.stringify(expected.split('\n')[0])} -> ${JSON.stringify(actual.split('\n')[0])}`]
    : [];
  if (items.length === 0 && head.length === 0) {
    return 'listings differ only in line order or blank lines';
  }
  const shown = items.slice(0, max);
  if (items.length > max) shown.push(`... and ${items.length - max} more`);
  return [
    ...head,
    `${missing} missing, ${extra} extra, ${changed} changed (expected ${exp.size} entries, got ${act.size}):`,
    ...shown,
  ].join('\n');
}
