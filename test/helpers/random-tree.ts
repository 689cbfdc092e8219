// Seeded random staging trees and build options for the stress test
// (test/e2e/stress.test.ts). The fixed trees of trees.ts each aim at one
// feature; these mix them: sizes around block and record boundaries,
// sparse and zero-filled files, hard links, long names and symlink
// targets, odd name bytes, devices, xattrs up to spill size, times before
// 1970 and after 2038, and large directories, under random compression,
// record sizes, ashift, child datasets and input forms. The same seed
// gives the same tree and options on any machine (trees.ts's rules: sfc32,
// no wall clock, modes set explicitly).

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, chownSync, closeSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, readdirSync, readlinkSync,
  renameSync, symlinkSync, writeSync,
} from 'node:fs';
import { makeDevice, makeFifo, makeSocket, Prng } from './trees.js';

type P = Buffer;

const IS_ROOT = process.getuid?.() === 0;

/** What the tree holds and how the seed says to build it. */
export interface RandomCase {
  entries: number;
  bytes: number;
  /** Top-level directories that are child datasets (`fs=POOL/<name>`), with their properties. */
  datasets: { name: string; props: string[] }[];
  /** Properties of the root dataset. */
  rootProps: string[];
  /** Pool-wide -o options besides poolname and the fs= ones. */
  poolOpts: string[];
  /** The input handed to tsmakefs: the directory itself, a pax tarball of it, or a METALOG naming its files. */
  input: 'dir' | 'tar' | 'mtree';
  /** Whether the tree has xattrs (the kernel's listing must include them, unless xattrsOff). */
  xattrs: boolean;
  /** `-o xattrs=off`: the image must hold none. */
  xattrsOff?: boolean;
  /** `-T`: every time in the image is this. */
  timestamp?: number;
}

class Rand {
  private readonly p: Prng;
  constructor(seed: string) {
    // (hashed first: sfc32 seeded from similar texts such as "s1", "s2" starts out correlated)
    this.p = new Prng(createHash('sha256').update(seed).digest('hex'));
  }

  /** 0 <= n < max. */
  int(max: number): number {
    return max <= 1 ? 0 : (this.p.u32() % max);
  }

  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.p.u32() / 2 ** 32 < p;
  }

  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }

  bytes(n: number): Buffer {
    return this.p.bytes(n);
  }
}

const PLAIN = 'abcdefghijklmnopqrstuvwxyz0123456789._-ABCDEFGHIJKLMNOPQRSTUVWXYZ';
// (no newline: zdb-check.sh screens zdb's output line by line, and a name's
// second line could read as a complaint; oddNames() in trees.ts has one)
const ODD = ['é', 'ß', '日', 'Ω', '🙂', ' ', '\\', '\t', '\x01', '\x7f', '#', '=', '%'];

/** A name of 1..255 bytes, never "." or "..", never '/' or NUL. */
function randomName(r: Rand): Buffer {
  const roll = r.int(100);
  const len = roll < 70 ? r.range(1, 14) : roll < 90 ? r.range(40, 60) : r.range(100, 255);
  const parts: Buffer[] = [];
  let n = 0;
  while (n < len) {
    let piece: Buffer;
    const k = r.int(100);
    if (k < 90) piece = Buffer.from(PLAIN[r.int(PLAIN.length)]!);
    else if (k < 98) piece = Buffer.from(r.pick(ODD));
    else piece = Buffer.from([0x80 + r.int(0x80)]); // not UTF-8
    if (n + piece.length > len) piece = Buffer.from(PLAIN[r.int(26)]!);
    parts.push(piece);
    n += piece.length;
  }
  const name = Buffer.concat(parts);
  const s = name.toString('latin1');
  return s === '.' || s === '..' ? Buffer.from(`${s}x`) : name;
}

const RECORD_EDGES = [511, 512, 513, 4095, 4096, 4097, 8191, 8192, 16384, 32767, 65536, 131071, 131072, 131073, 262144, 262145, 1048575, 1048576, 1048577];

function randomSize(r: Rand, big: boolean): number {
  const roll = r.int(100);
  if (roll < 10) return 0;
  if (roll < 25) return r.range(1, 120); // embedded in the block pointer when compressible
  if (roll < 40) return r.range(121, 4096);
  if (roll < 52) return r.pick(RECORD_EDGES);
  if (roll < 80) return r.range(4097, 262144);
  if (roll < 95 || !big) return r.range(262145, 3 << 20);
  return r.range(3 << 20, 24 << 20);
}

/** Write `size` bytes to `path` as runs of one kind each: random, text, zeros or holes. */
function writeContent(r: Rand, path: P, size: number): void {
  const fd = openSync(path, 'w');
  try {
    // one kind for the whole file most of the time, runs of mixed kinds otherwise
    const whole = r.chance(0.6);
    let kind = r.int(4);
    let off = 0;
    while (off < size) {
      const run = whole ? size - off : Math.min(size - off, r.pick([1, 100, 4096, 65536, 131072, 300_000, 1 << 20]));
      if (!whole) kind = r.int(4);
      // a hole, unless it would end the file (then random bytes, as kind 0)
      if (kind === 3 && off + run < size) {
        off += run;
        continue;
      }
      for (let done = 0; done < run;) {
        const n = Math.min(run - done, 1 << 20);
        const buf = kind === 0 || kind === 3 ? r.bytes(n) : kind === 1 ? textBytes(r, n) : Buffer.alloc(n);
        let w = 0;
        while (w < n) w += writeSync(fd, buf, w, n - w, off + done + w);
        done += n;
      }
      off += run;
    }
  } finally {
    closeSync(fd);
  }
}

const WORDS = ['zfs', 'pool', 'vdev', 'dnode', 'objset', 'blkptr', 'zap', 'leaf', 'metaslab', 'label', '\n', 'the', 'a', '0'];

function textBytes(r: Rand, n: number): Buffer {
  const out: string[] = [];
  let len = 0;
  while (len < n) {
    const w = r.pick(WORDS);
    out.push(w, ' ');
    len += w.length + 1;
  }
  return Buffer.from(out.join('')).subarray(0, n);
}

function symlinkTargetOf(r: Rand): Buffer {
  const roll = r.int(100);
  const len = roll < 60 ? r.range(1, 40) : roll < 85 ? r.range(41, 400) : roll < 97 ? r.range(401, 1023) : r.range(1024, 4095);
  const t = Buffer.alloc(len);
  for (let i = 0; i < len; i++) t[i] = i % 9 === 8 ? 0x2f : PLAIN.charCodeAt(r.int(PLAIN.length));
  return t;
}

// (above 2^31 too: stored as they are, as the kernel stores them)
const OWNERS = [0, 0, 0, 1, 2, 100, 1000, 1001, 65534, 65535, 1_000_000, 2_147_483_646, 2_147_483_648, 4_294_967_294];
/**
 * mtimes: around now, the epoch, before it, past 2038, and far ahead. A
 * Date, not a number: Node's utimes takes a negative number of seconds for
 * "now".
 */
function randomTime(r: Rand): Date {
  const ms = r.int(1000);
  switch (r.int(6)) {
    case 0: return new Date(r.range(0, 10) * 1000 + ms);
    case 1: return new Date(-r.range(1, 2_000_000_000) * 1000 + ms);
    case 2: return new Date(r.range(2_147_483_648, 4_102_444_800) * 1000 + ms); // 2038 .. 2100
    default: return new Date((1_600_000_000 + r.int(200_000_000)) * 1000 + ms);
  }
}

function setXattr(path: P, name: string, value: Buffer): void {
  // (a hex value, so any bytes; the caller passes a plain ASCII path)
  const res = spawnSync('setfattr', ['-n', name, '-v', value.length > 0 ? `0x${value.toString('hex')}` : '', '--', path.toString()], { encoding: 'buffer' });
  if (res.error || res.status !== 0) {
    throw new Error(`tree generator: setfattr ${name} on ${path.toString()} failed (apt-get install attr): ${res.error?.message ?? res.stderr.toString()}`);
  }
}

/**
 * Fill the empty directory `dir` with a tree chosen by `seed` and say how to
 * build it. `maxEntries` bounds the entry count of nine cases in ten (the
 * tenth has 5k-20k); data stays under ~64 MiB so the kernel's listing
 * (which hashes every byte under emulation) takes seconds.
 */
export function randomCase(dir: string, seed: string, maxEntries = 1500): RandomCase {
  const r = new Rand(seed);
  const form = r.int(10);
  const input = form < 5 ? 'dir' : form < 8 ? 'tar' : 'mtree';
  // (a manifest carries no xattrs)
  const xattrs = input !== 'mtree' && r.chance(0.6);
  const dataBudget = 64 << 20;
  const c: RandomCase = { entries: 0, bytes: 0, datasets: [], rootProps: [], poolOpts: [], input, xattrs };

  // (legacy: no lz4 and no holes or embedded blocks; gzip is stored as the property, the data written plain)
  const compat = r.pick(['default', 'default', 'openzfs-2.2', 'legacy']);
  if (compat !== 'default') c.poolOpts.push(`compatibility=${compat}`);
  const compressions = compat === 'legacy' ? ['off', 'zle', 'gzip', 'lzjb'] : ['off', 'lz4', 'zle', 'on', 'gzip'];
  // (512 to 128k: README, datasets)
  const records = ['512', '4k', '8k', '16k', '32k', '64k', '128k'];
  c.rootProps.push(`compression=${r.pick(compressions)}`);
  if (r.chance(0.5)) c.rootProps.push(`recordsize=${r.pick(records)}`);
  if (r.chance(0.4)) c.poolOpts.push(`ashift=${r.pick([9, 12, 13, 16])}`);
  if (xattrs && r.chance(0.15)) {
    c.poolOpts.push('xattrs=off');
    c.xattrsOff = true;
  }
  if (r.chance(0.15)) c.timestamp = r.pick([0, 1, 1_700_000_000, 4_000_000_000]);
  const dsCount = r.int(3);
  for (let i = 0; i < dsCount; i++) {
    const props: string[] = [];
    if (r.chance(0.6)) props.push(`compression=${r.pick(compressions)}`);
    if (r.chance(0.4)) props.push(`recordsize=${r.pick(records)}`);
    c.datasets.push({ name: `ds${i}`, props });
  }

  const root = Buffer.from(dir);
  const join = (d: P, n: P): P => Buffer.concat([d, Buffer.from('/'), n]);
  // every entry but the root, in creation order, to stamp times and modes last (post-order for directories)
  const made: { path: P; dir: boolean; symlink: boolean; xattrs?: boolean }[] = [];
  const dirs: P[] = [root];
  for (const ds of c.datasets) {
    const p = join(root, Buffer.from(ds.name));
    mkdirSync(p);
    made.push({ path: p, dir: true, symlink: false, xattrs: true });
    c.entries++;
    dirs.push(p);
  }

  // batches of entries into directories picked at random (one may get several)
  // one case in ten is large: up to ~20k entries, directories of up to 12k (fat ZAPs of many leaves)
  const large = r.chance(0.1);
  const target = large ? r.range(5000, 20_000) : r.range(Math.min(100, maxEntries), maxEntries);
  const named = new Map<P, Set<string>>();
  const filesIn = new Map<P, P[]>();
  const allFiles: P[] = [];
  while (c.entries < target) {
    const d = dirs[r.int(dirs.length)]!;
    const names = named.get(d) ?? new Set<string>();
    named.set(d, names);
    const files = filesIn.get(d) ?? [];
    filesIn.set(d, files);
    // most directories are small; some hold hundreds to thousands (fat ZAPs, several leaves)
    const roll = r.int(100);
    const want = roll < 70 ? r.range(0, 12) : roll < 95 ? r.range(13, 80) : large ? r.range(2000, 12000) : r.range(300, 2500);
    for (let i = 0; i < want && c.entries < target; i++) {
      const name = randomName(r);
      const key = name.toString('hex');
      if (names.has(key)) continue;
      // the root's child dataset names are taken
      if (d === root && /^ds\d$/.test(name.toString('latin1'))) continue;
      names.add(key);
      const p = join(d, name);
      const k = r.int(100);
      c.entries++;
      if (k < 15 && d.length < 3000) {
        mkdirSync(p);
        made.push({ path: p, dir: true, symlink: false, xattrs: true });
        dirs.push(p);
      } else if (k < 70) {
        const size = Math.min(randomSize(r, c.bytes < dataBudget / 2), Math.max(0, dataBudget - c.bytes));
        writeContent(r, p, size);
        c.bytes += size;
        files.push(p);
        allFiles.push(p);
        made.push({ path: p, dir: false, symlink: false, xattrs: true });
      } else if (k < 80 && files.length > 0) {
        // within the directory, or anywhere when there is one dataset (never across datasets)
        linkSync(c.datasets.length === 0 && allFiles.length > 0 && r.chance(0.5) ? r.pick(allFiles) : r.pick(files), p);
      } else if (k < 92) {
        symlinkSync(symlinkTargetOf(r), p);
        made.push({ path: p, dir: false, symlink: true });
      } else if (k < 95) {
        viaTemp(dir, p, (t) => makeFifo(t));
        made.push({ path: p, dir: false, symlink: false });
      } else if (k < 98 && IS_ROOT) {
        const kind = r.chance(0.5) ? 'c' : 'b';
        const major = r.int(4096);
        const minor = r.pick([0, 1, 255, 256, 65535, 1_048_575]);
        viaTemp(dir, p, (t) => makeDevice(t, kind, major, minor));
        made.push({ path: p, dir: false, symlink: false });
      } else if (input !== 'tar') {
        // (GNU tar skips sockets)
        viaTemp(dir, p, (t) => makeSocket(dir, t.slice(dir.length + 1)));
        made.push({ path: p, dir: false, symlink: false });
      } else {
        writeContent(r, p, 0);
        files.push(p);
        allFiles.push(p);
        made.push({ path: p, dir: false, symlink: false, xattrs: true });
      }
    }
  }

  // owners, modes, xattrs, then times, children before their directory
  for (let i = made.length - 1; i >= 0; i--) {
    const e = made[i]!;
    if (!e.symlink) {
      const mode = e.dir ? (0o700 | r.int(0o10000)) & 0o7777 : r.int(0o10000);
      if (IS_ROOT) chownSync(e.path, r.pick(OWNERS), r.pick(OWNERS));
      chmodSync(e.path, mode);
      if (xattrs && e.xattrs && r.chance(0.2)) {
        const count = r.range(1, 4);
        const attrs: [string, Buffer][] = [];
        // (ext4 holds an inode's xattrs in one 4 KiB block; past ~300 bytes ZFS spills them)
        let room = 3000;
        for (let k = 0; k < count; k++) {
          const name = `user.${r.pick(['a', 'note', 'x'.repeat(r.range(1, 60)), 'mime_type'])}${k}`;
          const size = Math.min(r.pick([0, 1, 10, 100, 300, 1000, 2500]), Math.max(0, room - name.length - 32));
          room -= size + name.length + 32;
          attrs.push([name, r.bytes(size)]);
        }
        // (renamed to a plain name and back: setfattr takes its path as a UTF-8 argument)
        const back = Buffer.from(`${dir}/.stress-xattr`);
        renameSync(e.path, back);
        for (const [n, v] of attrs) setXattr(back, n, v);
        renameSync(back, e.path);
      }
    } else if (IS_ROOT && r.chance(0.3)) {
      lchownSync(e.path, r.pick(OWNERS), r.pick(OWNERS));
    }
    const t = randomTime(r);
    lutimesSync(e.path, t, t);
  }
  const t = randomTime(r);
  chmodSync(dir, 0o755);
  lutimesSync(dir, t, t);
  return c;
}

/**
 * Make an entry at `p` with a tool that takes its path as a (UTF-8) argument:
 * made under a plain name in the tree's root, then renamed into place.
 */
function viaTemp(root: string, p: P, make: (path: string) => void): void {
  const t = `${root}/.stress-new`;
  make(t);
  renameSync(t, p);
}

/** The tsmakefs arguments (before image and input) for a case in pool `pool`. */
export function caseArgs(c: RandomCase, pool: string): string[] {
  const o = [`poolname=${pool}`, ...c.poolOpts, `fs=${pool};${c.rootProps.join(';')}`,
    ...c.datasets.map((d) => [`fs=${pool}/${d.name}`, ...d.props].join(';'))];
  return ['-t', 'zfs', ...(c.timestamp !== undefined ? ['-T', String(c.timestamp)] : []), ...o.flatMap((x) => ['-o', x])];
}

/** mtree's vis(3) form of a name: octal escapes for what would split or end a field, or start a comment or a glob. */
function visName(b: Buffer): string {
  let s = '';
  for (const c of b) {
    s += c <= 0x20 || c >= 0x7f || c === 0x5c || c === 0x23 || c === 0x2a || c === 0x3f || c === 0x5b
      ? `\\${c.toString(8).padStart(3, '0')}`
      : String.fromCharCode(c);
  }
  return s;
}

/**
 * A METALOG (install(1)'s mtree form: one full-path line per entry, parents
 * first) describing the staged tree `dir`, each file's data named by an
 * absolute `contents=`; hard links are recognised by their shared inode, as
 * makefs does. Names and link targets in vis(3) octal escapes.
 */
export function metalogOf(dir: string): string {
  const lines: string[] = ['#mtree 2.0'];
  const visit = (rel: Buffer): void => {
    const abs = Buffer.concat([Buffer.from(dir), rel.length > 0 ? Buffer.from('/') : Buffer.alloc(0), rel]);
    const st = lstatSync(abs, { bigint: true });
    const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFIFO() ? 'fifo'
      : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'char' : 'block';
    const sec = st.mtimeNs / 1_000_000_000n - (st.mtimeNs < 0n && st.mtimeNs % 1_000_000_000n !== 0n ? 1n : 0n);
    const nsec = st.mtimeNs - sec * 1_000_000_000n;
    const kw = [`type=${kind}`, `uid=${st.uid}`, `gid=${st.gid}`, `mode=${(Number(st.mode) & 0o7777).toString(8).padStart(4, '0')}`,
      `time=${sec}.${String(nsec).padStart(9, '0')}`];
    if (kind === 'file') kw.push(`size=${st.size}`, `contents=${visName(abs)}`);
    if (kind === 'link') kw.push(`link=${visName(readlinkSync(abs, { encoding: 'buffer' }))}`);
    if (kind === 'char' || kind === 'block') {
      // (glibc's dev_t layout, as lstat gives it here)
      const r = st.rdev;
      kw.push(`device=linux,${((r >> 8n) & 0xfffn) | ((r >> 32n) & 0xfffff000n)},${(r & 0xffn) | ((r >> 12n) & 0xffffff00n)}`);
    }
    lines.push(`${rel.length === 0 ? '.' : `./${visName(rel)}`} ${kw.join(' ')}`);
    if (kind === 'dir') {
      for (const n of readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare)) {
        visit(rel.length === 0 ? n : Buffer.concat([rel, Buffer.from('/'), n]));
      }
    }
  };
  visit(Buffer.alloc(0));
  return `${lines.join('\n')}\n`;
}
