// Visiting every block reachable from the uberblock: the MOS, then every
// dataset's object set (found as DSL dataset objects in the MOS), each
// object's tree of indirect blocks and its spill block. Every copy of every
// block is checksummed; tree-shape facts that cost nothing extra (levels,
// types, sizes, fill counts, birth txgs) are checked along the way.
//
// A dataset's blocks born at or before its previous snapshot's txg belong
// to that snapshot, which is visited on its own, so shared blocks are
// visited once (as zdb's leak check does).
import { DNODE_FLAG_USED_BYTES, DNODE_SIZE } from '../dmu/dnode.js';
import * as T from '../dmu/types.js';
import { decodeDslDataset, DSL_DATASET_PHYS_SIZE } from '../dsl/phys.js';
import { isHoleBp, readBp, ReaderBp } from './bp.js';
import { COMP_OFF } from '../zio/blkptr.js';
import { ReadError } from './errors.js';
import {
  epbShift, indirectBps, ObjsetReader, OBJSET_GROUPUSED_OFF, OBJSET_PROJECTUSED_OFF, OBJSET_USERUSED_OFF, RDnode, readDnode,
} from './objset.js';
import type { PoolReader } from './pool.js';

/** Where a problem is: a dataset (MOS object of its dsl_dataset_phys_t, 0 = the MOS) and object. */
export interface Problem {
  /** Undefined: the pool itself (labels, config); 0: the MOS; else the dataset's MOS object. */
  ds?: number;
  /** Object within the object set; undefined for the object set's own blocks. */
  object?: number;
  /** The object's DMU type, when known. */
  otype?: number;
  /** The object's path in its file system, when known. */
  path?: string;
  text: string;
  /** Root-cause identity (a block): problems with a key already reported are dropped. */
  key?: string;
}

/** Pseudo object numbers of the accounting dnodes in the objset block. */
export const USERUSED_OBJECT = -1;
export const GROUPUSED_OBJECT = -2;
export const PROJECTUSED_OBJECT = -3;
/** Pseudo object number of the objset block itself. */
export const OBJSET_BLOCK = -10;

export interface BlockRef {
  ds: number;
  /** Object number; 0 for the meta-dnode's blocks (dnode blocks), OBJSET_BLOCK, or *USED_OBJECT. */
  object: number;
  level: number;
  /** Block id at its level; -1 for a spill block. */
  blkid: number;
  bp: ReaderBp;
}

export interface TraverseHooks {
  /** Every block pointer visited that is not a hole (before it is read). */
  onBlock?(ref: BlockRef): void;
  onProblem(p: Problem): void;
}

export interface VisitedObjset {
  ds: number;
  type: number;
  bp: ReaderBp;
  /** Allocated object numbers (file systems only), as a bitmap. */
  objects?: ObjectBitmap;
  /** Every block was visited (none unreadable, none left to an older snapshot). */
  complete: boolean;
  /** Every dnode was read (so `objects` lists every allocated object). */
  objectsComplete: boolean;
}

export interface TraverseResult {
  objsets: VisitedObjset[];
  blocks: number;
  /** Allocated bytes checked (every copy: data checksummed, padding zero). */
  bytes: number;
  /** Some metadata was unreadable, so blocks below it were not visited. */
  incomplete: boolean;
}

export class ObjectBitmap {
  private bits = new Uint8Array(64);
  max = -1;
  add(n: number): void {
    if (n >> 3 >= this.bits.length) {
      const b = new Uint8Array(Math.max(this.bits.length * 2, (n >> 3) + 1));
      b.set(this.bits);
      this.bits = b;
    }
    this.bits[n >> 3]! |= 1 << (n & 7);
    if (n > this.max) this.max = n;
  }
  has(n: number): boolean {
    return n >= 0 && n >> 3 < this.bits.length && (this.bits[n >> 3]! & (1 << (n & 7))) !== 0;
  }
  *[Symbol.iterator](): Generator<number> {
    for (let n = 0; n <= this.max; n++) if (this.has(n)) yield n;
  }
}

const EMPTY = new Uint8Array(0);

const ZAP_TYPES = new Set([
  T.DMU_OT_OBJECT_DIRECTORY, T.DMU_OT_DSL_DIR_CHILD_MAP, T.DMU_OT_DSL_DS_SNAP_MAP, T.DMU_OT_DSL_PROPS,
  T.DMU_OT_DIRECTORY_CONTENTS, T.DMU_OT_MASTER_NODE, T.DMU_OT_UNLINKED_SET, 24, 27, 28, T.DMU_OT_POOL_PROPS, 32,
  T.DMU_OT_NEXT_CLONES, 38, 39, 40, 41, 42, 43, T.DMU_OT_SA_MASTER_NODE, T.DMU_OT_SA_ATTR_REGISTRATION,
  T.DMU_OT_SA_ATTR_LAYOUTS, 48, T.DMU_OT_DEADLIST, T.DMU_OT_DSL_CLONES,
]);

/** True for object types whose contents are a ZAP (legacy types and DMU_OTN_ZAP_*). */
export function isZapType(t: number): boolean {
  return (t & 0x80) !== 0 ? (t & 0x1f) === 4 : ZAP_TYPES.has(t);
}

const TYPE_NAMES: Record<number, string> = {
  1: 'object directory', 2: 'object array', 3: 'packed nvlist', 4: 'packed nvlist size', 5: 'bpobj',
  6: 'bpobj header', 7: 'SPA space map header', 8: 'SPA space map', 10: 'DMU dnode', 11: 'DMU objset',
  12: 'DSL directory', 13: 'DSL directory child map', 14: 'DSL dataset snap map', 15: 'DSL props',
  16: 'DSL dataset', 19: 'plain file contents', 20: 'directory contents', 21: 'ZFS master node',
  22: 'ZFS delete queue', 31: 'SPA pool props', 37: 'DSL next clones', 44: 'SA', 45: 'SA master node',
  46: 'SA attr registration', 47: 'SA attr layouts', 50: 'deadlist', 51: 'deadlist header', 52: 'DSL dir clones',
  196: 'ZAP (metadata)',
};

export function typeName(t: number): string {
  return TYPE_NAMES[t] ?? `type ${t}`;
}

class Traversal {
  blocks = 0;
  bytes = 0;
  incomplete = false;
  readonly objsets: VisitedObjset[] = [];
  private queue: Array<{ ds: number; bp: ReaderBp; minBirth: number }> = [];

  constructor(private readonly pool: PoolReader, private readonly hooks: TraverseHooks) {}

  private problem(ds: number, object: number | undefined, text: string, key?: string): void {
    this.hooks.onProblem({ ds, object, text, key });
  }

  private err(ds: number, object: number | undefined, where: string, e: unknown): void {
    if (e instanceof ReadError) this.problem(ds, object, `${where}: ${e.message}`, e.key);
    else if (e instanceof Error) this.problem(ds, object, `${where}: ${e.message}`);
    else throw e;
  }

  run(): TraverseResult {
    this.objset(0, this.pool.uberblock.rootbp, 0);
    for (let i = 0; i < this.queue.length; i++) {
      const q = this.queue[i]!;
      this.objset(q.ds, q.bp, q.minBirth);
    }
    return { objsets: this.objsets, blocks: this.blocks, bytes: this.bytes, incomplete: this.incomplete };
  }

  /**
   * Checksum every copy (and the zero padding after it); decompress the
   * first good one. Returns its logical bytes (`want`), an empty array
   * (checked, contents not wanted), or undefined when no copy is good.
   */
  private check(bp: ReaderBp, want: boolean, onError: (e: unknown) => void): Uint8Array | undefined {
    if (bp.embedded) {
      try {
        return this.pool.decode(bp, bp.embedded);
      } catch (e) {
        onError(e);
        return undefined;
      }
    }
    let good: Uint8Array | undefined;
    let ok = false;
    // compressed blocks are decompressed even when their contents are not wanted: all must decode
    const decode = want || bp.comp !== COMP_OFF;
    for (let c = 0; c < bp.dvas.length; c++) {
      try {
        if (decode && !good) good = this.pool.decode(bp, this.pool.readCopy(bp, c, true));
        else this.pool.checkCopy(bp, c);
        ok = true;
        this.bytes += bp.dvas[c]!.asize;
      } catch (e) {
        onError(e);
      }
    }
    if (!ok) return undefined;
    return want ? good : EMPTY;
  }

  private objset(ds: number, bp: ReaderBp, minBirth: number): void {
    if (bp.dva === null) return;
    const visited: VisitedObjset = { ds, type: 0, bp, complete: true, objectsComplete: true };
    this.objsets.push(visited);
    const where = 'objset block';
    this.blocks++;
    this.hooks.onBlock?.({ ds, object: OBJSET_BLOCK, level: 0, blkid: 0, bp });
    if (bp.type !== T.DMU_OT_OBJSET || bp.level !== 0) this.problem(ds, undefined, `${where}: block pointer says type ${bp.type} level ${bp.level}`);
    this.checkBirth(ds, undefined, where, bp);
    const data = this.check(bp, true, (e) => this.err(ds, undefined, where, e));
    if (!data) {
      this.incomplete = true;
      visited.complete = visited.objectsComplete = false;
      return;
    }
    let os: ObjsetReader;
    try {
      os = new ObjsetReader(this.pool, bp, ds === 0 ? 'MOS' : `dataset ${ds}`);
    } catch (e) {
      this.err(ds, undefined, where, e);
      this.incomplete = true;
      visited.complete = visited.objectsComplete = false;
      return;
    }
    visited.type = os.type;
    if (ds === 0 && os.type !== T.DMU_OST_META) this.problem(ds, undefined, `${where}: MOS has object set type ${os.type}`);
    if (os.type === T.DMU_OST_ZFS) visited.objects = new ObjectBitmap();
    const per = os.dnodesPerBlock;
    let allocated = 0;
    const onDnodeBlock = (blkid: number, block: Uint8Array): number => {
      let n = 0;
      for (let i = 0; i < per; i++) {
        const objid = blkid * per + i;
        if (objid === 0) continue;
        let dn: RDnode;
        try {
          dn = readDnode(block, i * DNODE_SIZE);
        } catch (e) {
          this.err(ds, objid, 'dnode', e);
          this.incomplete = true;
          visited.complete = visited.objectsComplete = false;
          n++;
          continue;
        }
        if (dn.type === 0) continue;
        n++;
        visited.objects?.add(objid);
        this.dnode(ds, objid, dn, minBirth, visited);
        if (ds === 0) this.mosObject(os, objid, dn);
      }
      allocated += n;
      return n;
    };
    this.dnode(ds, 0, os.metaDnode, minBirth, visited, onDnodeBlock);
    const accounting: Array<[number, number]> = [
      [USERUSED_OBJECT, OBJSET_USERUSED_OFF], [GROUPUSED_OBJECT, OBJSET_GROUPUSED_OFF], [PROJECTUSED_OBJECT, OBJSET_PROJECTUSED_OFF],
    ];
    for (const [pseudo, off] of accounting) {
      if (os.phys.length < off + DNODE_SIZE) continue;
      try {
        const dn = readDnode(os.phys, off);
        if (dn.type !== 0) this.dnode(ds, pseudo, dn, minBirth, visited);
      } catch (e) {
        this.err(ds, pseudo, 'accounting dnode', e);
      }
    }
    if (visited.complete && bp.fill !== allocated) {
      this.problem(ds, undefined, `${where}: fill count ${bp.fill}, but ${allocated} objects are allocated`);
    }
  }

  private checkBirth(ds: number, object: number | undefined, where: string, bp: ReaderBp, otype?: number): void {
    if (bp.birth > this.pool.uberblock.txg) {
      this.hooks.onProblem({ ds, object, otype, text: `${where}: born in txg ${bp.birth}, after the uberblock's txg ${this.pool.uberblock.txg}` });
    }
  }

  /**
   * Visit an object's blocks. `onL0(blkid, data)` (the meta-dnode's dnode
   * blocks) gets level-0 contents and returns the block's expected fill.
   */
  private dnode(
    ds: number, object: number, dn: RDnode, minBirth: number, visited: VisitedObjset,
    onL0?: (blkid: number, data: Uint8Array) => number,
  ): void {
    let asize = 0;
    let skipped = false;
    // blocks not visited: below the meta-dnode, that leaves objects unknown
    const missed = (): void => {
      visited.complete = false;
      if (object === 0) visited.objectsComplete = false;
    };
    const shift = epbShift(dn);
    const label = (level: number, blkid: number): string => {
      if (object !== 0) return level === 0 ? `block ${blkid}` : `level ${level} block ${blkid}`;
      if (level > 0) return `meta-dnode level ${level} block ${blkid}`;
      const per = dn.datablksz / DNODE_SIZE;
      return `dnode block ${blkid} (objects ${blkid * per}-${blkid * per + per - 1})`;
    };
    const obj = object === 0 ? undefined : object;
    const otype = object === 0 ? undefined : dn.type;
    const prob = (text: string): void => this.hooks.onProblem({ ds, object: obj, otype, text });
    const fail = (where: string) => (e: unknown): void => {
      if (!(e instanceof Error)) throw e;
      this.hooks.onProblem({ ds, object: obj, otype, text: `${where}: ${e.message}`, key: e instanceof ReadError ? e.key : undefined });
    };
    const visit = (bp: ReaderBp, level: number, blkid: number): void => {
      if (isHoleBp(bp)) return;
      if (bp.birth <= minBirth) {
        skipped = true;
        missed();
        return;
      }
      const where = label(level, blkid);
      this.blocks++;
      for (const d of bp.dvas) asize += d.asize;
      this.hooks.onBlock?.({ ds, object, level, blkid, bp });
      if (bp.level !== level) prob(`${where}: block pointer says level ${bp.level}`);
      if (bp.embedded && level > 0) prob(`${where}: an indirect block cannot be embedded`);
      if (bp.type !== dn.type) prob(`${where}: block pointer says type ${bp.type}, the dnode ${dn.type}`);
      const lsize = level > 0 ? 2 ** dn.indblkshift : dn.datablksz;
      if (bp.lsize !== lsize) prob(`${where}: logical size ${bp.lsize}, expected ${lsize}`);
      this.checkBirth(ds, obj, where, bp, otype);
      if (level > 0) {
        const data = this.check(bp, true, fail(where));
        if (!data) {
          this.incomplete = true;
          missed();
          return;
        }
        let children: ReaderBp[];
        try {
          children = indirectBps(data);
        } catch (e) {
          fail(where)(e);
          this.incomplete = true;
          missed();
          return;
        }
        let fill = 0;
        children.forEach((c, j) => {
          if (!isHoleBp(c)) fill += c.fill;
          visit(c, level - 1, blkid * 2 ** shift + j);
        });
        if (bp.fill !== fill) prob(`${where}: fill count ${bp.fill}, its block pointers add up to ${fill}`);
        return;
      }
      if (blkid > dn.maxblkid) prob(`${where}: beyond maxblkid ${dn.maxblkid}`);
      if (onL0) {
        const data = this.check(bp, true, fail(where));
        if (!data) {
          this.incomplete = true;
          missed();
          return;
        }
        const fill = onL0(blkid, data);
        if (bp.fill !== fill) prob(`${where}: fill count ${bp.fill}, ${fill} dnodes are allocated`);
      } else {
        this.check(bp, false, fail(where));
        if (bp.fill !== 1) prob(`${where}: fill count ${bp.fill}, expected 1`);
      }
    };
    dn.blkptr.forEach((bp, i) => visit(bp, dn.nlevels - 1, i));
    if (dn.spill && !isHoleBp(dn.spill) && dn.spill.birth > minBirth) {
      const bp = dn.spill;
      this.blocks++;
      for (const d of bp.dvas) asize += d.asize;
      this.hooks.onBlock?.({ ds, object, level: 0, blkid: -1, bp });
      if (bp.type !== T.DMU_OT_SA || bp.level !== 0) prob(`spill block: block pointer says type ${bp.type} level ${bp.level}`);
      this.checkBirth(ds, obj, 'spill block', bp, otype);
      // the SA contents are decoded by the namespace check
      this.check(bp, false, fail('spill block'));
    } else if (dn.spill && !isHoleBp(dn.spill)) {
      skipped = true;
      missed();
    }
    if (!skipped && visited.complete && (dn.flags & DNODE_FLAG_USED_BYTES) && dn.used !== asize) {
      prob(`dnode says ${dn.used} bytes used, its blocks take ${asize}`);
    }
  }

  /** What the MOS holds beyond blocks: datasets to visit, ZAPs to decode. */
  private mosObject(mos: ObjsetReader, objid: number, dn: RDnode): void {
    if (dn.type === T.DMU_OT_DSL_DATASET) {
      if (dn.bonus.length < DSL_DATASET_PHYS_SIZE) {
        this.problem(0, objid, `DSL dataset bonus is ${dn.bonus.length} bytes`);
        return;
      }
      try {
        const ds = decodeDslDataset(dn.bonus);
        const bp = readBp(dn.bonus, 128);
        this.queue.push({ ds: objid, bp, minBirth: ds.prevSnapObj !== 0 ? ds.prevSnapTxg : 0 });
      } catch (e) {
        this.err(0, objid, 'DSL dataset', e);
      }
    } else if (isZapType(dn.type)) {
      try {
        mos.zap(objid, dn);
      } catch (e) {
        // the message starts with "object N: " already
        if (e instanceof ReadError) this.problem(0, objid, `ZAP: ${e.message.replace(/^object \d+: /, '')}`, e.key);
        else throw e;
      }
    }
  }
}

/** Visit every block reachable from the uberblock (see the file comment). */
export function traversePool(pool: PoolReader, hooks: TraverseHooks): TraverseResult {
  return new Traversal(pool, hooks).run();
}
