// Deterministic staging trees for the e2e tests. Each generator is
// (dir) => void, fills an existing empty directory with fs sync calls, and
// ends by giving every entry a fixed mtime/atime (stampTimes), so that the
// same generator gives the same listing on any machine: no randomness but a
// seeded PRNG, no wall-clock times, every mode set explicitly (umask ignored).
//
// Some trees need root (device nodes; owners other than the caller's).
// The tests run as root, as CI does; a generator that cannot do its job
// throws rather than quietly leaving something out.

import { spawnSync } from 'node:child_process';
import {
  chmodSync, chownSync, closeSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync,
  readdirSync, symlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';

export type TreeGen = (dir: string) => void;

/** Paths may hold any bytes but '/' and NUL; Buffer paths carry them through fs. */
type P = string | Buffer;

function pjoin(dir: P, name: P): P {
  if (typeof dir === 'string' && typeof name === 'string') return join(dir, name);
  return Buffer.concat([Buffer.from(dir), Buffer.from('/'), Buffer.from(name)]);
}

const IS_ROOT = process.getuid?.() === 0;

// ---------------------------------------------------------------- PRNG

/** sfc32, seeded from a string: small, fast, and the same everywhere. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: string | number) {
    // FNV-1a over the seed text, four differently salted words.
    const text = String(seed);
    const h = (salt: number): number => {
      let x = (0x811c9dc5 ^ salt) >>> 0;
      for (let i = 0; i < text.length; i++) {
        x ^= text.charCodeAt(i);
        x = Math.imul(x, 0x01000193) >>> 0;
      }
      return x;
    };
    this.a = h(1);
    this.b = h(2);
    this.c = h(3);
    this.d = h(4);
    for (let i = 0; i < 16; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** n pseudo-random bytes (little-endian words, so byte-identical on any host). */
  bytes(n: number): Buffer {
    const words = Math.ceil(n / 4);
    const buf = Buffer.allocUnsafe(words * 4);
    for (let i = 0; i < words; i++) buf.writeUInt32LE(this.u32(), i * 4);
    return n === buf.length ? buf : buf.subarray(0, n);
  }
}

// ---------------------------------------------------------------- primitives

function mkdir(path: P, mode = 0o755): void {
  mkdirSync(path);
  chmodSync(path, mode);
}

function file(path: P, data: string | Uint8Array = '', mode = 0o644): void {
  writeFileSync(path, data);
  chmodSync(path, mode);
}

/** Set owner then mode (chown clears setuid/setgid). Owner only when root. */
function own(path: P, uid: number, gid: number, mode: number): void {
  if (IS_ROOT) chownSync(path, uid, gid);
  chmodSync(path, mode);
}

function sh(cmd: string, args: string[], cwd?: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.error) throw new Error(`tree generator: cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`tree generator: ${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
}

/** A FIFO (mkfifo(1); node has no mkfifo). */
export function makeFifo(path: string, mode = 0o644): void {
  sh('mkfifo', [path]);
  chmodSync(path, mode);
}

/** A device node (mknod(1), needs root). */
export function makeDevice(path: string, kind: 'c' | 'b', major: number, minor: number, mode = 0o644): void {
  if (!IS_ROOT) throw new Error(`tree generator: device node ${path} needs root (the e2e tests run as root, as CI does)`);
  sh('mknod', [path, kind, String(major), String(minor)]);
  chmodSync(path, mode);
}

/**
 * A unix socket left on disk: a child node binds it and exits without
 * closing (closing would unlink it). Bound relative to its directory, so the
 * path length limit of sun_path does not apply.
 */
export function makeSocket(dir: string, name: string, mode = 0o755): void {
  sh(process.execPath, ['-e',
    'require("net").createServer().listen(process.argv[1], () => process.exit(0))', name], dir);
  chmodSync(join(dir, name), mode);
}

/** Stream a deterministic file of `size` bytes: a 1 MiB seeded block, every 512-byte sector tagged with its index. */
export function writeLargeFile(path: string, size: number, seed: string, mode = 0o644): void {
  const MIB = 1 << 20;
  const base = new Prng(seed).bytes(MIB);
  const buf = Buffer.allocUnsafe(MIB);
  const fd = openSync(path, 'w', mode);
  try {
    for (let off = 0, k = 0; off < size; off += MIB, k++) {
      base.copy(buf);
      for (let s = 0; s < MIB; s += 512) buf.writeUInt32LE((base.readUInt32LE(s) ^ (k * 2048 + s / 512)) >>> 0, s);
      const n = Math.min(MIB, size - off);
      let done = 0;
      while (done < n) done += writeSync(fd, buf, done, n - done, off + done);
    }
  } finally {
    closeSync(fd);
  }
  chmodSync(path, mode);
}

/** A file of N+1 bytes with one (zero) byte written at offset N: sparse, as makefs's `dd ... oseek=N conv=sparse`. */
function sparseFile(path: string, n: number): void {
  const fd = openSync(path, 'w', 0o644);
  try {
    writeSync(fd, Buffer.alloc(1), 0, 1, n);
  } finally {
    closeSync(fd);
  }
  chmodSync(path, 0o644);
}

/**
 * Give every entry under `root` (and root itself) a fixed atime = mtime:
 * base + its index in a byte-ordered pre-order walk, plus 0, 1/4, 1/2 or 3/4
 * of a second so sub-second times are exercised. Symlinks get their own time.
 * Run last: creating entries afterwards would change directory mtimes.
 */
export function stampTimes(root: string, base = 1_700_000_000): void {
  let i = 0;
  const visit = (p: Buffer): void => {
    const t = base + i + (i % 4) / 4;
    i++;
    const st = lstatSync(p);
    lutimesSync(p, t, t);
    if (!st.isDirectory()) return;
    const names = readdirSync(p, { encoding: 'buffer' }).sort(Buffer.compare);
    for (const n of names) visit(Buffer.concat([p, Buffer.from('/'), n]));
  };
  visit(Buffer.from(root));
}

/** Wrap a builder so the result is stamped. */
function tree(build: (dir: string) => void): TreeGen {
  return (dir) => {
    build(dir);
    chmodSync(dir, 0o755);
    stampTimes(dir);
  };
}

// ---------------------------------------------------------------- building blocks

/** makefs's create_test_inputs (format guide section 5), exactly. */
function addMakefsInputs(dir: string): void {
  mkdir(join(dir, 'a'));
  mkdir(join(dir, 'a/b'));
  mkdir(join(dir, 'a/b/1'));
  symlinkSync('a/b', join(dir, 'c'));
  file(join(dir, 'd'));
  linkSync(join(dir, 'd'), join(dir, 'e'));
  file(join(dir, '.f'));
  mkdir(join(dir, '.g'));
  file(join(dir, 'i'), Buffer.alloc(1000));
  for (const n of ['klmn', 'opqr', 'stuv']) file(join(dir, n));
  file(join(dir, 'wxyz'), '', 0o755);
  for (let k = 1; k <= 14; k++) file(join(dir, `0b${k.toString(2).padStart(8, '0')}`));
  for (const n of MAKEFS_SPARSE_SIZES) sparseFile(join(dir, `${n}.file`), n);
}
export const MAKEFS_SPARSE_SIZES = [1, 512, 2048, 10240, 524288];

/** The file sizes 2^i - 1, 2^i, 2^i + 1 for i = 0..maxExp, without repeats, ascending. */
export function powerSizes(maxExp: number): number[] {
  const s = new Set<number>();
  for (let i = 0; i <= maxExp; i++) for (const d of [-1, 0, 1]) s.add(2 ** i + d);
  return [...s].sort((a, b) => a - b);
}

/** Name of the sizes-tree file of `size` bytes. */
export function sizeName(size: number): string {
  return `size-${String(size).padStart(8, '0')}`;
}

function addSizedFiles(dir: string, sizes: number[]): void {
  for (const n of sizes) file(join(dir, sizeName(n)), new Prng(`size:${n}`).bytes(n));
}

/** A name of exactly `len` bytes (1..255), all distinct, readable: "007-abc". */
export function nameOfLength(len: number): string {
  const s = `${String(len).padStart(3, '0')}-${'abcdefghijklmnopqrstuvwxyz0123456789_'.repeat(8)}`;
  return s.slice(0, len);
}

/** Names that are not plain ASCII: UTF-8, raw high bytes, controls, space, backslash. */
export function oddNames(): Buffer[] {
  const bytes = (from: number, to: number): Buffer =>
    Buffer.from(Array.from({ length: to - from + 1 }, (_, k) => from + k));
  return [
    Buffer.from('café'),
    Buffer.from('Ελληνικά κείμενα'),
    Buffer.from('日本語のファイル名'),
    Buffer.from('emoji-🙂-🚀'),
    Buffer.from('日'.repeat(85)), // 255 bytes of 3-byte characters
    Buffer.from(`${'🙂'.repeat(63)}abc`), // 252 + 3 = 255 bytes
    bytes(0x80, 0xff), // 128 bytes, not UTF-8
    Buffer.concat([Buffer.from('ctl-'), bytes(0x01, 0x1f), Buffer.from(' \\\x7f end')]),
    Buffer.from('with space'),
    Buffer.from('new\nline'),
  ];
}

/** A symlink target of exactly `len` bytes (dangling; some absolute, some relative). */
export function symlinkTarget(len: number): string {
  const start = len % 3 === 0 ? '/' : len % 3 === 1 ? '../' : '';
  return `${start}t${len}/${'0123456789abcdef/'.repeat(80)}`.slice(0, len);
}

/** Hard-link sets: groups of 2 and 3 names, across directories and within one. */
function addHardLinks(dir: string, big: boolean): void {
  for (const d of ['a', 'b', 'c', 'c/sub']) mkdir(join(dir, d));
  file(join(dir, 'a/two'), 'two names\n');
  linkSync(join(dir, 'a/two'), join(dir, 'b/two'));
  file(join(dir, 'a/three'), new Prng('three').bytes(big ? 200 * 1024 : 3000), 0o640);
  linkSync(join(dir, 'a/three'), join(dir, 'b/three-too'));
  linkSync(join(dir, 'a/three'), join(dir, 'c/sub/three'));
  file(join(dir, 'same-1'), 'same directory\n');
  linkSync(join(dir, 'same-1'), join(dir, 'same-2'));
  file(join(dir, 'c/empty'));
  linkSync(join(dir, 'c/empty'), join(dir, 'a/empty'));
  linkSync(join(dir, 'c/empty'), join(dir, 'empty'));
  file(join(dir, 'b/exec'), '#!/bin/sh\necho linked\n', 0o755);
  linkSync(join(dir, 'b/exec'), join(dir, 'c/exec'));
}

/** FIFO, character and block devices (incl. large major/minor), a socket. */
function addSpecials(dir: string): void {
  makeFifo(join(dir, 'fifo'));
  makeFifo(join(dir, 'fifo-0600'), 0o600);
  makeDevice(join(dir, 'null'), 'c', 1, 3, 0o666);
  makeDevice(join(dir, 'sda1'), 'b', 8, 1, 0o660);
  makeDevice(join(dir, 'char-big'), 'c', 250, 70000, 0o600);
  makeDevice(join(dir, 'block-max'), 'b', 4095, 1048575, 0o640);
  makeSocket(dir, 'socket');
}

/** A few directories with odd modes, each holding a file (modes set after filling). */
function addOddDirs(dir: string, modes: number[]): void {
  for (const m of modes) {
    const d = join(dir, `d${m.toString(8).padStart(4, '0')}`);
    mkdir(d, 0o755);
    file(join(d, 'inside'), `in ${m.toString(8)}\n`);
    mkdir(join(d, 'sub'));
  }
  for (const m of modes) own(join(dir, `d${m.toString(8).padStart(4, '0')}`), 0, 0, m);
}

// ---------------------------------------------------------------- the trees

/** Nothing at all. */
export const emptyTree: TreeGen = tree(() => {});

/** makefs's standard regression inputs (format guide section 5, create_test_inputs). */
export const makefsInputsTree: TreeGen = tree(addMakefsInputs);

/** Files of 2^i - 1, 2^i and 2^i + 1 bytes for i = 0..23 (up to 8 MiB + 1), seeded pseudo-random content. */
export const fileSizesTree: TreeGen = tree((dir) => addSizedFiles(dir, powerSizes(23)));

/** Size of the big file: over 1024 x 128 KiB, so it needs two levels of indirect blocks. */
export const BIG_FILE_SIZE = 130 * 1024 * 1024 + 12345;

/** One file of BIG_FILE_SIZE bytes (big.bin) and a small one beside it. */
export const bigFileTree: TreeGen = tree((dir) => {
  writeLargeFile(join(dir, 'big.bin'), BIG_FILE_SIZE, 'big');
  file(join(dir, 'small'), 'beside the big one\n');
});

/** Count of entries in manyEntriesTree's directory. */
export const MANY_ENTRIES = 50_000;

/** One directory `many/` of MANY_ENTRIES empty files e00000 ... e49999. */
export const manyEntriesTree: TreeGen = tree((dir) => {
  const d = join(dir, 'many');
  mkdir(d);
  for (let i = 0; i < MANY_ENTRIES; i++) {
    const p = join(d, `e${String(i).padStart(5, '0')}`);
    closeSync(openSync(p, 'w', 0o644));
  }
  // openSync's mode is filtered by the umask; set it explicitly.
  for (let i = 0; i < MANY_ENTRIES; i++) chmodSync(join(d, `e${String(i).padStart(5, '0')}`), 0o644);
});

/** Count of entries in wideDirTree's directory. */
export const WIDE_ENTRIES = 40_000;

/**
 * One directory `wide/` of WIDE_ENTRIES empty files whose names take
 * 187-246 bytes: 11-14 leaf chunks an entry, so its fat ZAP has over 1,024
 * leaves, more pointers than the header block holds, and its pointer
 * table goes to a block of its own (zt_blk). manyEntriesTree's short names
 * stay in the header's.
 */
export const wideDirTree: TreeGen = tree((dir) => {
  const d = join(dir, 'wide');
  mkdir(d);
  for (let i = 0; i < WIDE_ENTRIES; i++) {
    const p = join(d, `${String(i).padStart(6, '0')}-${'n'.repeat(180 + (i % 60))}`);
    closeSync(openSync(p, 'w', 0o644));
    chmodSync(p, 0o644);
  }
});

/**
 * Names of every length 1..255 (one file each, content = its length), a
 * 255-byte directory holding a 255-byte name, and non-ASCII names
 * (UTF-8, bytes 0x80-0xff, controls) in `odd/`.
 */
export const longNamesTree: TreeGen = tree((dir) => {
  for (let len = 1; len <= 255; len++) file(join(dir, nameOfLength(len)), `${len}\n`);
  const d = join(dir, `D${nameOfLength(254)}`);
  mkdir(d);
  file(join(d, nameOfLength(255)), 'deep long name\n');
  const odd = join(dir, 'odd');
  mkdir(odd);
  for (const n of oddNames()) file(pjoin(odd, n), Buffer.concat([n, Buffer.from('\n')]));
});

/** Directories `depth` levels deep (l001/l002/...), a small file at every level. */
export function deepTreeOf(depth: number): TreeGen {
  return tree((dir) => {
    let p = dir;
    for (let level = 1; level <= depth; level++) {
      p = join(p, `l${String(level).padStart(3, '0')}`);
      mkdir(p);
      file(join(p, 'f'), `level ${level}\n`);
    }
    file(join(p, 'bottom'), 'the bottom\n');
  });
}

/** 200 levels deep. */
export const deepTree: TreeGen = deepTreeOf(200);

/** The odd directory modes the permission tree carries. */
export const ODD_DIR_MODES = [0o0000, 0o0700, 0o0555, 0o1777, 0o2775, 0o7777];

/**
 * All 4096 permission patterns as files named by octal mode (0000 ... 7777,
 * incl. setuid/setgid/sticky), each a tiny shell script; owners vary with the
 * mode when root. Plus directories `dirs/dMMMM` with the odd modes.
 */
export const permsTree: TreeGen = tree((dir) => {
  for (let m = 0; m < 0o10000; m++) {
    const p = join(dir, m.toString(8).padStart(4, '0'));
    file(p, `#!/bin/sh\necho ${m.toString(8)}\n`, 0o600);
    own(p, 1000 + (m & 7), 2000 + ((m >> 3) & 7), m);
  }
  const dirs = join(dir, 'dirs');
  mkdir(dirs);
  addOddDirs(dirs, ODD_DIR_MODES);
});

/** Longest symlink target in symlinksTree (ZFS allows up to MAXPATHLEN - 1). */
export const MAX_SYMLINK = 1023;

/** Symlinks sNNNN with targets of exactly NNNN bytes, 1 ... 1023 (dangling). */
export const symlinksTree: TreeGen = tree((dir) => {
  for (let len = 1; len <= MAX_SYMLINK; len++) {
    symlinkSync(symlinkTarget(len), join(dir, `s${String(len).padStart(4, '0')}`));
  }
  // one that resolves, to a file and to a directory
  mkdir(join(dir, 'real'));
  file(join(dir, 'real/file'), 'real\n');
  symlinkSync('real/file', join(dir, 'to-file'));
  symlinkSync('real', join(dir, 'to-dir'));
});

/** Hard-link sets of 2 and 3 names across directories and within one. */
export const hardLinksTree: TreeGen = tree((dir) => addHardLinks(dir, true));

/** A FIFO, character and block devices and a unix socket (needs root). */
export const specialFilesTree: TreeGen = tree(addSpecials);

/**
 * Every kind of entry above at reduced counts, for the kernel check: the
 * makefs inputs, assorted sizes (incl. a 300 KiB file), 1 MiB of zeros, long
 * and odd names (60 and 255 bytes, UTF-8, raw bytes), permission patterns and
 * owners, odd directory modes, short and long symlinks (1 to 1023 bytes),
 * hard links, specials, a 20-level tree and a 2100-entry directory.
 */
export const mixedTree: TreeGen = tree((dir) => {
  addMakefsInputs(dir);

  const sizes = join(dir, 'sizes');
  mkdir(sizes);
  addSizedFiles(sizes, [0, 1, 511, 512, 4095, 4096, 4097, 131071, 131072, 131073, 300 * 1024]);
  file(join(sizes, 'zeros-1m'), Buffer.alloc(1 << 20));

  const names = join(dir, 'names');
  mkdir(names);
  for (const len of [1, 2, 49, 50, 60, 61, 254, 255]) file(join(names, nameOfLength(len)), `${len}\n`);
  for (const n of oddNames()) file(pjoin(names, n), n);

  const perms = join(dir, 'perms');
  mkdir(perms);
  for (const m of [0o0000, 0o0400, 0o0644, 0o0755, 0o0711, 0o4755, 0o2755, 0o1755, 0o6777, 0o7777, 0o4000]) {
    const p = join(perms, m.toString(8).padStart(4, '0'));
    file(p, '#!/bin/sh\necho a\n', 0o600);
    own(p, 1000 + (m & 7), 100 + (m >> 9), m);
  }
  const dirs = join(perms, 'dirs');
  mkdir(dirs);
  addOddDirs(dirs, [0o0000, 0o0700, 0o1777, 0o2775]);
  if (IS_ROOT) chownSync(join(dirs, 'd0700'), 1234, 5678);

  const links = join(dir, 'links');
  mkdir(links);
  for (const len of [1, 2, 59, 60, 144, 145, 200, 255, 256, 1000, 1023]) {
    symlinkSync(symlinkTarget(len), join(links, `s${String(len).padStart(4, '0')}`));
  }
  symlinkSync('../sizes/size-00307200', join(links, 'to-300k'));

  const hard = join(dir, 'hard');
  mkdir(hard);
  addHardLinks(hard, true);

  const special = join(dir, 'special');
  mkdir(special);
  addSpecials(special);

  let p = join(dir, 'deep');
  mkdir(p);
  for (let level = 1; level <= 20; level++) {
    p = join(p, `l${String(level).padStart(3, '0')}`);
    mkdir(p);
  }
  file(join(p, 'bottom'), 'the bottom\n');

  const many = join(dir, 'many');
  mkdir(many);
  for (let i = 0; i < 2100; i++) file(join(many, `entry-${String(i).padStart(4, '0')}`));
});

/** Every generator by name (for a loop over trees, and for make-tree). */
export const TREES = {
  empty: emptyTree,
  makefs: makefsInputsTree,
  sizes: fileSizesTree,
  big: bigFileTree,
  many: manyEntriesTree,
  wide: wideDirTree,
  names: longNamesTree,
  deep: deepTree,
  perms: permsTree,
  symlinks: symlinksTree,
  hardlinks: hardLinksTree,
  specials: specialFilesTree,
  mixed: mixedTree,
} satisfies Record<string, TreeGen>;

export type TreeName = keyof typeof TREES;
