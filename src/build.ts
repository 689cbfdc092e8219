// buildImage: a whole build, inputs to finished image, as the command line
// runs it. runBuild is the one path both use: the CLI hands it the options
// it parsed, buildImage the options a program named. On top of makeImage it
// adds what only the caller of the writer can know: the inputs' totals (for
// progress and for the size an image too small would have needed), the
// elapsed time, and the checks that need the input paths.

import { realpathSync } from 'node:fs';
import { dirname, relative, resolve, sep, isAbsolute } from 'node:path';
import type { Readable } from 'node:stream';
import { makeImage, type ImageSummary, type Progress } from './image.js';
import type { ImageOptions } from './options.js';
import { openInputs, type InputPlan } from './input/pipeline.js';
import { pathKind } from './input/detect.js';
import { countInode, type InputTotals, type Inode, type Timespec } from './input/tree.js';
import { parseFsItems, type FsItem } from './cli/fsoptions.js';
import { fmtSize, OutOfSpaceError } from './vdev/allocator.js';
import { poolSlopSpace, SPA_MINDEVSIZE, vdevGeometry } from './vdev/geometry.js';
import { UserError } from './util/errors.js';
import { formatSize, parseSize } from './util/size.js';

export type { InputTotals } from './input/tree.js';

/** Progress of a whole build (BuildOptions.onProgress). */
export interface BuildProgress {
  /** 'scan': reading the inputs (directory walk, manifest); then makeImage's phases. */
  phase: 'scan' | Progress['phase'];
  /** Regular files whose data is in the image. */
  files: number;
  /** File data bytes read so far. */
  bytes: number;
  /** Bytes written to the image file so far. */
  written: number;
  /**
   * The inputs' totals, once the tree is complete: before any data of a
   * manifest or of merged directories is read; when a single directory has
   * been walked (its data is read during the walk); after a tarball is read.
   */
  total?: InputTotals;
}

/** What a build reports when done: makeImage's summary, the inputs' totals and the time it took. */
export interface BuildSummary extends ImageSummary {
  input?: InputTotals;
  elapsedMs: number;
}

export interface BuildHooks {
  onProgress?: (p: BuildProgress) => void;
}

/** Count a tree's inodes, files and file bytes; each hard-linked inode once. */
export function treeTotals(root: Inode): InputTotals {
  const seen = new Set<Inode>();
  const t: InputTotals = { entries: 0, files: 0, bytes: 0 };
  const stack = [root];
  while (stack.length > 0) {
    const ino = stack.pop()!;
    if (seen.has(ino)) continue;
    seen.add(ino);
    countInode(t, ino);
    if (ino.entries) for (const e of ino.entries) stack.push(e.inode);
  }
  return t;
}

const MIB = 2 ** 20;
/** Labels and boot area of a vdev (VDEV_LABEL_START_SIZE + VDEV_LABEL_END_SIZE). */
const LABELS = 4.5 * MIB;
/** Metadata per entry, generously: a dnode, its directory entry, its share of ZAP and indirect blocks. */
const META_PER_ENTRY = 1024;

/** The MOS, space maps and the root's objects, beyond the datasets' own blocks. */
const POOL_METADATA = MIB;

/**
 * The smallest image (a multiple of `step`) whose whole metaslabs hold
 * `bytes`, with OpenZFS's metaslab size for it (or `msSize` if given).
 */
export function imageSizeFor(bytes: number, ashift: number, msSize?: number, step = MIB): number {
  let size = Math.max(SPA_MINDEVSIZE, Math.ceil((bytes + LABELS) / step) * step);
  for (;;) {
    const g = vdevGeometry(size, ashift, msSize);
    if (g.msCount * 2 ** g.msShift >= bytes) return size;
    // short by this much: grow by it, in whole steps
    size += Math.ceil((bytes - g.msCount * 2 ** g.msShift) / step) * step;
  }
}

/**
 * The message for an image too small: the size it would need, estimated
 * from what was allocated when the space ran out plus the file data still to
 * come (taken as incompressible) plus metadata, and a -s to use (10% more,
 * in 16 MiB steps).
 */
export function outOfSpaceMessage(e: OutOfSpaceError, total: InputTotals | undefined, opts: Pick<ImageOptions, 'ashift' | 'msSize'>): string {
  const head = `image size ${fmtSize(e.imageSize)} is too small for the data`;
  if (total === undefined) {
    return `${head} (ran out of space after allocating ${fmtSize(e.allocated)}; the input's total size is not known in advance: leave out -s to size the image automatically)`;
  }
  const remaining = Math.max(0, total.bytes - (e.bytesRead ?? 0));
  const bytes = e.allocated + remaining + total.entries * META_PER_ENTRY + POOL_METADATA;
  const need = Math.max(imageSizeFor(bytes, opts.ashift, opts.msSize), e.imageSize + MIB);
  const suggest = imageSizeFor(bytes * 1.1, opts.ashift, opts.msSize, 16 * MIB);
  const still = remaining > 0 ? `, ${fmtSize(remaining)} of file data still to write` : '';
  return `${head}: it needs about ${fmtSize(need)} (ran out after allocating ${fmtSize(e.allocated)}${still}); use -s ${formatSize(suggest)}, or leave out -s to size the image automatically`;
}

/** The image must not be written inside a directory being read: the walk would pick up the image itself. */
function checkImageOutsideInputs(image: string, inputs: readonly string[]): void {
  let dir: string;
  try {
    dir = realpathSync(dirname(resolve(image)));
  } catch {
    return; // a missing output directory is reported when the image is created
  }
  for (const input of inputs) {
    if (input === '-' || pathKind(input) !== 'dir') continue;
    let root: string;
    try {
      root = realpathSync(input);
    } catch {
      continue;
    }
    const rel = relative(root, dir);
    if (rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel))) {
      throw new UserError(`${image}: the image would be written inside the input directory ${input} (and be read into itself)`);
    }
  }
}

/** Inputs to image: the path shared by the command line and buildImage. */
export async function runBuild(plan: InputPlan, options: ImageOptions, hooks: BuildHooks = {}): Promise<BuildSummary> {
  const start = performance.now();
  checkImageOutsideInputs(options.image, plan.inputs);
  let total: InputTotals | undefined;
  let last: Progress = { phase: 'data', files: 0, bytes: 0, written: 0 };
  const emit = hooks.onProgress;
  emit?.({ phase: 'scan', files: 0, bytes: 0, written: 0 });
  const source = await openInputs(plan, {
    prewrite: true,
    onTree: (root, counted) => {
      total = counted ?? treeTotals(root);
      emit?.({ ...last, total });
    },
  });
  try {
    const summary = await makeImage(source, {
      ...options,
      onProgress: (p) => {
        last = p;
        options.onProgress?.(p);
        emit?.({ ...p, total });
      },
    });
    if (options.size !== undefined) warnIfBornFull(summary, plan.warn);
    return { ...summary, input: total, elapsedMs: performance.now() - start };
  } catch (e) {
    if (e instanceof OutOfSpaceError) e.message = outOfSpaceMessage(e, total, options);
    throw e;
  }
}

/** Less than this for the datasets to write, and a pool of a given size (-s) is as good as full. */
const WRITABLE_MIN = 1024 * 1024;

/**
 * A pool that holds the data but leaves its datasets nothing to write:
 * OpenZFS keeps a slop of at least 128 MiB (or half the pool) from ordinary
 * writes, so a -s just above the data's size makes a system that cannot
 * write a log file once booted. The image is valid; the user is told.
 */
function warnIfBornFull(s: ImageSummary, warn: (message: string) => void): void {
  if (s.available >= WRITABLE_MIN) return;
  const slop = poolSlopSpace(s.metaslabs, s.metaslabSize);
  warn(`${s.image}: the pool's datasets can write ${s.available > 0 ? `only ${fmtSize(s.available)}` : 'nothing'}: OpenZFS keeps ${fmtSize(slop)} of a pool this size from ordinary writes (a larger -s, or none, leaves them room)`);
}

// ---------------------------------------------------------------- the library's entry point

/** Options of buildImage: the command line's, by name. Sizes take numbers (bytes) or makefs size strings ("4g", "2x4k"). */
export interface BuildOptions {
  /** Image file to write (written under a temporary name, renamed when complete). */
  image: string;
  /** A staging directory, tarball, mtree manifest or "-" (stdin), then directories or tarballs to merge in. */
  inputs: string[];
  poolName: string;
  /** Exact image size (-s). Leave out to size the image to fit (plus freePercent). */
  size?: number | string;
  /** Bounds of an auto-sized image (-M, -m). */
  minSize?: number | string;
  maxSize?: number | string;
  /** Free space an auto-sized image keeps, percent of the used space (default 10). */
  freePercent?: number;
  /** Mountpoint prefix (default /POOL; the freebsd preset makes it /). */
  rootPath?: string;
  /** Allocation unit 2^ashift, 9..16 (default 12). */
  ashift?: number;
  /** Metaslab size, a power of two from 16 MiB to 16 GiB. */
  msSize?: number | string;
  poolGuid?: bigint | number | string;
  /** Seed of every GUID and ZAP salt (default "tsmakefs"). */
  seed?: string;
  verifyTxgs?: boolean;
  /** vdev path recorded in the labels (default /dev/null). */
  vdevPath?: string;
  /** Feature set as zpool create -o compatibility= names it (default grub2-2.06). */
  compatibility?: string;
  /** Store the input's extended attributes (default true). */
  xattrs?: boolean;
  /** FreeBSD's release dataset layout; `datasets` then override or extend it. */
  preset?: 'freebsd';
  /** Dataset declarations in makefs's -o fs= syntax: "pool/child;prop=value;...". */
  datasets?: string[];
  bootfs?: string;
  /** -T: every time of every file (epoch seconds, a Date or a Timespec). */
  timestamp?: number | Date | Timespec;
  /** SOURCE_DATE_EPOCH (the CLI reads the environment variable; here it is only what you pass). */
  sourceDateEpoch?: number | Timespec;
  /** -F and -x. */
  specFile?: string;
  onlySpec?: boolean;
  /** -N: directory with master.passwd (or passwd) and group. */
  userDbDir?: string;
  /** -D given this many times. */
  duplicates?: number;
  allRoot?: boolean;
  forceUid?: string | number;
  forceGid?: string | number;
  /** Compression worker threads (0: on the calling thread); the image does not depend on it. */
  workers?: number;
  /** Standard input, for the input "-" (default process.stdin). */
  stdin?: Readable;
  /** Called at most every 100 ms (and at each phase change) while the image is built. */
  onProgress?: (p: BuildProgress) => void;
  /** Warnings (the CLI prints them unless -q); default: ignored. */
  onWarning?: (message: string) => void;
}

function sizeOf(v: number | string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : parseSize(v, what);
  if (!Number.isSafeInteger(n) || n < 1) throw new UserError(`${what}: the size must be a positive whole number of bytes`);
  return n;
}

function timespecOf(v: number | Date | Timespec | undefined, what: string): Timespec | undefined {
  if (v === undefined) return undefined;
  if (v instanceof Date) {
    const ms = v.getTime();
    if (Number.isNaN(ms)) throw new UserError(`${what}: invalid date`);
    return { sec: Math.floor(ms / 1000), nsec: (((ms % 1000) + 1000) % 1000) * 1e6 };
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new UserError(`${what}: not a number of seconds`);
    const sec = Math.floor(v);
    return { sec, nsec: Math.round((v - sec) * 1e9) };
  }
  return v;
}

/** BuildOptions -> the writer's options, checked exactly as the command line's -o options are. */
export function imageOptionsOf(o: BuildOptions): ImageOptions {
  const items: FsItem[] = [{ key: 'poolname', value: o.poolName }];
  const add = (key: string, v: string | number | bigint | boolean | undefined) => {
    if (v !== undefined) items.push({ key, value: String(v) });
  };
  add('rootpath', o.rootPath);
  add('ashift', o.ashift);
  add('mssize', o.msSize);
  add('poolguid', o.poolGuid);
  add('seed', o.seed);
  add('verify-txgs', o.verifyTxgs);
  add('path', o.vdevPath);
  add('compatibility', o.compatibility);
  add('xattrs', o.xattrs);
  add('free', o.freePercent);
  // the preset expands where it stands: before the datasets that override it
  add('preset', o.preset);
  for (const d of o.datasets ?? []) add('fs', d);
  add('bootfs', o.bootfs);
  const zfs = parseFsItems(items);
  const size = sizeOf(o.size, 'size');
  const options: ImageOptions = {
    image: o.image,
    ...zfs,
    size,
    minSize: sizeOf(o.minSize, 'minSize') ?? size,
    maxSize: sizeOf(o.maxSize, 'maxSize') ?? size,
    verbose: false,
  };
  if (o.workers !== undefined) options.workers = o.workers;
  return options;
}

/** BuildOptions -> the input pipeline's plan. */
export function inputPlanOf(o: BuildOptions): InputPlan {
  const plan: InputPlan = {
    inputs: o.inputs,
    policy: { stamp: timespecOf(o.timestamp, 'timestamp'), sourceDateEpoch: timespecOf(o.sourceDateEpoch, 'sourceDateEpoch') },
    duplicates: o.duplicates ?? 0,
    onlySpec: o.onlySpec === true,
    allRoot: o.allRoot === true,
    xattrs: o.xattrs ?? true,
    warn: o.onWarning ?? (() => {}),
  };
  if (o.userDbDir !== undefined) plan.userDbDir = o.userDbDir;
  if (o.specFile !== undefined) plan.specFile = o.specFile;
  if (o.forceUid !== undefined) plan.forceUid = String(o.forceUid);
  if (o.forceGid !== undefined) plan.forceGid = String(o.forceGid);
  if (o.stdin !== undefined) plan.stdin = o.stdin;
  return plan;
}

/**
 * Build an image from directories (or a tarball or manifest) as
 * `tsmakefs -t zfs` does. Resolves to the summary; rejects with a UserError
 * (one-line message) for anything the caller can fix. No image is left
 * behind on failure. Errors in the options are reported before any input is
 * read.
 */
export async function buildImage(options: BuildOptions): Promise<BuildSummary> {
  if (options.inputs.length === 0) throw new UserError('no input given');
  const imageOptions = imageOptionsOf(options);
  return runBuild(inputPlanOf(options), imageOptions, { onProgress: options.onProgress });
}
