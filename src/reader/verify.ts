// tsmakefs verify: everything an image must get right, checked by our own
// reader. Labels and uberblocks (embedded SHA-256), every block reachable
// from the uberblock (every copy checksummed), the space maps against the
// blocks found (no leak, no double allocation, no block outside allocated
// space), each file system's namespace, and optionally the tree against an
// expected one. Memory: metadata only (a range list of the blocks found,
// one directory listing per level, a few maps keyed by object number).
import type { Timespec } from '../input/tree.js';
import { walkDirectories } from '../input/walk.js';
import { DMU_OST_ZFS, DMU_OT_PACKED_NVLIST } from '../dmu/types.js';
import { unpackNvlist } from '../vdev/nvlist.js';
import { rd64le } from '../util/endian.js';
import { fmtSize } from '../vdev/allocator.js';
import { describeBp } from './bp.js';
import { diffTrees, inodeTreeView, TreeView, DiffOptions } from './compare.js';
import { Namespace } from './mounts.js';
import { UserError } from '../util/errors.js';
import { listDatasets, MOS_OBJECT_DIRECTORY } from './dsl.js';
import { ReadError } from './errors.js';
import { checkNamespace } from './namespace.js';
import { ObjsetReader } from './objset.js';
import { PoolReader, PoolReaderOptions } from './pool.js';
import { ExtentCollector, fmtRange, hitsRanges, Range, readSpaceMaps, subtractRanges } from './space.js';
import {
  BlockRef, GROUPUSED_OBJECT, OBJSET_BLOCK, PROJECTUSED_OBJECT, Problem, traversePool, typeName, USERUSED_OBJECT,
} from './traverse.js';
import { ZplReader } from './zpl.js';

export interface VerifyOptions extends PoolReaderOptions, DiffOptions {
  /** Compare a dataset's tree with this staging directory (walked like the build does)... */
  againstDir?: string;
  /** ...or with any tree. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any node type will do
  against?: TreeView<any>;
  /**
   * Dataset whose tree (with the datasets mounted below it) is compared;
   * default: the one with the shortest mountpoint, which the staged tree's
   * root went to.
   */
  dataset?: string;
  /** -T of the build: the directory walk uses this time for every inode. */
  timestamp?: Timespec;
  /** Report at most this many problems of one kind (ranges, orphans...). Default 20. */
  maxRanges?: number;
  /** Report at most this many problems in all (the rest are counted). Default 1000. */
  maxProblems?: number;
}

export interface VerifyStats {
  labels: number;
  uberblocks: number;
  blocks: number;
  /** Physical bytes checksummed. */
  bytes: number;
  datasets: number;
  files: number;
  directories: number;
  metaslabs: number;
  spaceMaps: number;
  /** Bytes allocated according to the space maps. */
  allocated: number;
}

export interface VerifyResult {
  /** Every problem, the tree differences included, one line each. Empty: the image is good. */
  problems: string[];
  /** Just the differences from the expected tree ("path: what differs"). */
  differences: string[];
  /** Things not checked, and why. */
  notes: string[];
  stats: VerifyStats;
}

/** Collects problems, dropping those whose root cause was reported already. */
class Problems {
  readonly list: Problem[] = [];
  /** Problems beyond the limit, counted only. */
  dropped = 0;
  private keys = new Set<string>();
  constructor(private readonly limit: number) {}
  add = (p: Problem): void => {
    if (p.key !== undefined) {
      if (this.keys.has(p.key)) return;
      this.keys.add(p.key);
    }
    if (this.list.length >= this.limit) this.dropped++;
    else this.list.push(p);
  };
  objectsOf(ds: number): Set<number> {
    const s = new Set<number>();
    for (const p of this.list) if (p.ds === ds && p.object !== undefined && p.object > 0) s.add(p.object);
    return s;
  }
}

const PSEUDO: Record<number, string> = {
  [USERUSED_OBJECT]: 'user accounting object', [GROUPUSED_OBJECT]: 'group accounting object',
  [PROJECTUSED_OBJECT]: 'project accounting object', [OBJSET_BLOCK]: 'objset block',
};

/** Verify an image; see the file comment. Throws UserError if it cannot be opened as a pool at all. */
export async function verifyImage(path: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const pool = PoolReader.open(path, opts);
  try {
    return await verifyPool(pool, opts);
  } finally {
    pool.close();
  }
}

export async function verifyPool(pool: PoolReader, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const maxRanges = opts.maxRanges ?? 20;
  const probs = new Problems(opts.maxProblems ?? 1000);
  const notes: string[] = [];
  const stats: VerifyStats = {
    labels: pool.labels.length, uberblocks: pool.uberblocksChecked, blocks: 0, bytes: 0, datasets: 0,
    files: 0, directories: 0, metaslabs: 0, spaceMaps: 0, allocated: 0,
  };
  for (const text of pool.labelProblems) probs.add({ text });

  // --- every block ---------------------------------------------------------
  const extents = new ExtentCollector();
  const trav = traversePool(pool, {
    onProblem: probs.add,
    onBlock: (ref) => {
      for (const d of ref.bp.dvas) extents.add(d.offset, d.offset + d.asize);
    },
  });
  stats.blocks = trav.blocks;
  stats.bytes = trav.bytes;

  // --- names of datasets, and the MOS's own structure -----------------------
  const names = new Map<number, string>([[0, 'MOS']]);
  let dslOk = false;
  try {
    for (const d of listDatasets(pool, { special: true })) if (d.dsObj !== 0) names.set(d.dsObj, d.name);
    dslOk = true;
  } catch (e) {
    addError(probs, 0, undefined, 'DSL', e);
  }
  checkMosConfig(pool, probs);
  for (const o of trav.objsets) {
    if (dslOk && o.ds !== 0 && !names.has(o.ds)) probs.add({ ds: 0, object: o.ds, text: 'dataset is not reachable from the root dataset' });
  }

  // --- space maps against the blocks found ----------------------------------
  const sm = readSpaceMaps(pool, probs.add);
  if (sm) {
    stats.metaslabs = sm.metaslabs;
    stats.spaceMaps = sm.spaceMaps;
    stats.allocated = sm.allocated.reduce((t, r) => t + r.end - r.start, 0);
    const { union, doubles } = extents.resolve();
    const outside = subtractRanges(union, sm.allocated);
    const leaked = subtractRanges(sm.allocated, union);
    if (trav.incomplete) {
      notes.push('leak check skipped: some metadata is unreadable, so not every block was found');
    } else {
      reportRanges(probs, leaked, maxRanges, (r) => `space map: ${fmtRange(r)} in metaslab ${metaslabOf(pool, r)} is allocated but no block uses it (leak)`);
    }
    if (outside.length > 0 || doubles.length > 0) locateBlocks(pool, probs, outside, doubles, maxRanges);
  } else {
    notes.push('space maps unreadable: allocation not checked');
  }

  // --- file systems ----------------------------------------------------------
  const paths = new Map<number, Map<number, string>>();
  for (const o of trav.objsets) {
    if (o.ds === 0) continue;
    stats.datasets++;
    if (o.type !== DMU_OST_ZFS) continue;
    const name = names.get(o.ds) ?? `dataset ${o.ds}`;
    let zpl: ZplReader;
    try {
      zpl = new ZplReader(new ObjsetReader(pool, o.bp, name));
    } catch (e) {
      addError(probs, o.ds, undefined, '', e);
      continue;
    }
    const ns = checkNamespace(zpl, o.ds, o.objectsComplete ? o.objects : undefined, probs.objectsOf(o.ds), probs.add);
    if (ns.incomplete) notes.push(`${name}: check for objects outside the directory tree skipped: some directories are unreadable`);
    paths.set(o.ds, ns.paths);
    stats.files += ns.files;
    stats.directories += ns.directories;
  }

  // --- the expected tree -----------------------------------------------------
  let differences: string[] = [];
  if (opts.against || opts.againstDir !== undefined) {
    let ns: Namespace | undefined;
    try {
      ns = new Namespace(pool, opts.dataset);
      ns.root();
    } catch (e) {
      if (e instanceof UserError) throw e;
      addError(probs, undefined, undefined, 'cannot compare the tree', e);
      ns = undefined;
    }
    if (ns) {
      const expected = opts.against ?? inodeTreeView(walkDirectories([opts.againstDir!], { timestamp: opts.timestamp }));
      differences = await diffTrees(expected as TreeView<unknown>, ns.treeView() as TreeView<unknown>, opts);
      if (differences.length > 0) notes.push(`${differences.length} difference${differences.length === 1 ? '' : 's'} from ${opts.againstDir ?? 'the expected tree'}`);
    }
  }

  const problems = probs.list.map((p) => formatProblem(p, names, paths));
  if (probs.dropped > 0) problems.push(`... and ${probs.dropped} more problems`);
  return { problems: [...problems, ...differences], differences, notes, stats };
}

function addError(probs: Problems, ds: number | undefined, object: number | undefined, where: string, e: unknown): void {
  if (!(e instanceof Error)) throw e;
  probs.add({ ds, object, text: where ? `${where}: ${e.message}` : e.message, key: e instanceof ReadError ? e.key : undefined });
}

/** The MOS copy of the config must unpack. */
function checkMosConfig(pool: PoolReader, probs: Problems): void {
  try {
    const mos = pool.mos;
    const obj = mos.zapLookup(MOS_OBJECT_DIRECTORY, 'config');
    const dn = mos.dnode(obj);
    if (dn.type !== DMU_OT_PACKED_NVLIST || dn.bonus.length < 8) throw new ReadError(`object ${obj} is not a packed nvlist`);
    const size = Number(rd64le(dn.bonus, 0));
    unpackNvlist(mos.readBytes(dn, size));
  } catch (e) {
    addError(probs, 0, undefined, 'config object', e);
  }
}

function metaslabOf(pool: PoolReader, r: Range): string {
  const a = Math.floor(r.start / 2 ** pool.msShift);
  const b = Math.floor((r.end - 1) / 2 ** pool.msShift);
  return a === b ? `${a}` : `${a}-${b}`;
}

function reportRanges(probs: Problems, ranges: Range[], max: number, text: (r: Range) => string): void {
  ranges.slice(0, max).forEach((r) => probs.add({ text: text(r) }));
  if (ranges.length > max) probs.add({ text: `... and ${ranges.length - max} more such ranges (${fmtSize(ranges.slice(max).reduce((t, r) => t + r.end - r.start, 0))})` });
}

/** Second pass: name the blocks that lie outside allocated space or share space. */
function locateBlocks(pool: PoolReader, probs: Problems, outside: Range[], doubles: Range[], max: number): void {
  let nOut = 0;
  let nDouble = 0;
  const where = (ref: BlockRef): Problem => {
    const what = ref.blkid === -1 ? 'spill block' : ref.object === OBJSET_BLOCK ? 'objset block'
      : ref.object === 0 ? `dnode block ${ref.blkid}${ref.level > 0 ? ` (level ${ref.level})` : ''}`
        : `${ref.level > 0 ? `level ${ref.level} ` : ''}block ${ref.blkid}`;
    const object = ref.object > 0 || ref.object in PSEUDO ? ref.object : undefined;
    return { ds: ref.ds, object: object === OBJSET_BLOCK ? undefined : object, text: `${what} (${describeBp(ref.bp)})` };
  };
  traversePool(pool, {
    onProblem: () => {},
    onBlock: (ref) => {
      for (const d of ref.bp.dvas) {
        if (hitsRanges(outside, d.offset, d.offset + d.asize) && nOut++ < max) {
          const p = where(ref);
          probs.add({ ...p, text: `${p.text}: lies outside the space the space maps allocate` });
        }
        if (hitsRanges(doubles, d.offset, d.offset + d.asize) && nDouble++ < 2 * max) {
          const p = where(ref);
          probs.add({ ...p, text: `${p.text}: shares space with another block (double allocation)` });
        }
      }
    },
  });
  if (nOut > max) probs.add({ text: `... and ${nOut - max} more blocks outside allocated space` });
  if (nDouble > 2 * max) probs.add({ text: `... and ${nDouble - 2 * max} more blocks sharing space` });
}

function formatProblem(p: Problem, names: Map<number, string>, paths: Map<number, Map<number, string>>): string {
  if (p.ds === undefined) return p.text;
  const ds = names.get(p.ds) ?? `dataset ${p.ds}`;
  if (p.object === undefined) return p.path !== undefined ? `${ds}:${p.path}: ${p.text}` : `${ds}: ${p.text}`;
  if (p.object < 0) return `${ds}: ${PSEUDO[p.object] ?? `object ${p.object}`}: ${p.text}`;
  const path = p.path ?? paths.get(p.ds)?.get(p.object);
  const what = [`object ${p.object}`, ...(p.otype !== undefined ? [typeName(p.otype)] : [])].join(', ');
  if (path !== undefined) return `${ds}:${path} (${what}): ${p.text}`;
  return p.otype !== undefined ? `${ds}: object ${p.object} (${typeName(p.otype)}): ${p.text}` : `${ds}: object ${p.object}: ${p.text}`;
}
