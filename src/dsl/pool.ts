// The MOS: object directory, pool config, the DSL tree (root directory and
// dataset, $MOS, $FREE, $ORIGIN with its snapshot), feature ZAPs, the
// metaslab array and the space maps, then the MOS object set itself.
//
// Space maps must describe every allocation, including their own blocks and
// the MOS dnode and objset blocks written after them. So those last blocks
// are reserved first (their sizes do not depend on their contents), which
// makes the allocation final before the space maps are computed.
import { BlkPtr } from '../zio/blkptr.js';
import { SpaceAccount, ZioWriter } from '../zio/writer.js';
import { SeedSource } from '../util/seed.js';
import { u64le } from '../util/endian.js';
import { Dnode, DNODES_PER_BLOCK, newDnode } from '../dmu/dnode.js';
import { levelsFor, writeObject } from '../dmu/object.js';
import { ObjsetWriter } from '../dmu/objset.js';
import * as T from '../dmu/types.js';
import { packNvlist } from '../vdev/nvlist.js';
import { mosConfig, PoolConfigInput } from '../vdev/config.js';
import { encodeSpaceMapEntries, encodeSpaceMapPhys, spaceMapHistogram } from '../vdev/spacemap.js';
import { type Extent, SpaceAllocator } from '../vdev/allocator.js';
import { ObjectStore, intKey, zname } from './mos.js';
import { DslDirPhys, emptyDataset, emptyDir, encodeDslDataset, encodeDslDir, DslDatasetPhys } from './phys.js';
import type { ZapEntry } from '../zap/index.js';
import { descriptionBytes, FeatureState, featureZaps, labelFeaturesForRead } from './features.js';

export const CREATE_TXG = 1; // datasets are made when the pool is (txg 1), data later
const SPA_CONFIG_BLOCKSIZE = 16384;
const BPOBJ_SIZE_V2 = 48;
const DEADLIST_HDR_SIZE = 320;
const SPACE_MAP_BLOCKSIZE = 16384;

/** A populated dataset to link into the DSL tree. */
export interface DatasetInput {
  /** Full dataset name ("zroot", "zroot/usr"). */
  name: string;
  /** dsl_dir quota and reservation, and the dataset's refreservation (bytes, 0 = none). */
  quota?: number;
  reservation?: number;
  refreservation?: number;
  bp: BlkPtr;
  acct: SpaceAccount;
  props: ZapEntry[];
  children: DatasetInput[];
}

export interface PoolInput {
  config: Omit<PoolConfigInput, 'msArray'>;
  /** Enabled features and their refcounts. */
  features: FeatureState;
  root: DatasetInput;
  poolProps: ZapEntry[];
  /** Full name of the dataset recorded as the pool's bootfs. */
  bootfs?: string;
}

export interface MosResult {
  rootbp: BlkPtr;
  msArray: number;
  mosAcct: SpaceAccount;
  poolAllocated: number;
}

interface DirNode {
  dirObj: number;
  dsObj: number;
  phys: DslDirPhys;
  ds: DslDatasetPhys;
  input: DatasetInput;
  children: DirNode[];
}

export function writeMos(zio: ZioWriter, alloc: SpaceAllocator, seed: SeedSource, input: PoolInput): MosResult {
  const mosAcct = new SpaceAccount();
  zio.charge = mosAcct;
  const mos = new ObjectStore(zio, seed, '$MOS');
  const u = (name: string, v: number | bigint): ZapEntry => ({ name: zname(name), value: BigInt(v) });

  const objdir = mos.alloc();
  const configObj = mos.alloc();
  const freeBpobj = mos.alloc();
  const syncBplist = mos.alloc();
  // the feature refcounts are written once the space maps are counted; of
  // this first call only the descriptions and enabled txgs are final
  const ffr = mos.alloc();
  const ffw = mos.alloc();
  const fz = featureZaps(input.features, input.config.createTxg);
  const fdesc = mos.newZap(T.DMU_OTN_ZAP_METADATA, fz.descriptions.map(([g, d]) => ({ name: zname(g), value: { intLen: 1 as const, ints: [...descriptionBytes(d)] } })));
  const ftxg = fz.enabledTxg ? mos.newZap(T.DMU_OTN_ZAP_METADATA, fz.enabledTxg.map(([g, t]) => u(g, t))) : 0;
  const poolProps = mos.alloc(); // written once dataset numbers are known (bootfs)
  const msArray = mos.alloc();

  const bpobjHdr = new Uint8Array(BPOBJ_SIZE_V2);
  mos.bonusObject(freeBpobj, T.DMU_OT_BPOBJ, 128 * 1024, T.DMU_OT_BPOBJ_HDR, bpobjHdr);
  mos.bonusObject(syncBplist, T.DMU_OT_BPOBJ, 16384, T.DMU_OT_BPOBJ_HDR, bpobjHdr);

  // --- the DSL tree -------------------------------------------------------
  const newDir = (parent: number, props: ZapEntry[]): { obj: number; phys: DslDirPhys } => {
    const obj = mos.alloc();
    const phys = emptyDir();
    phys.parentObj = parent;
    phys.propsZapobj = mos.newZap(T.DMU_OT_DSL_PROPS, props);
    phys.childDirZapobj = mos.alloc(); // filled once the children exist
    return { obj, phys };
  };
  const deadlist = () => mos.newZap(T.DMU_OT_DEADLIST, [], T.DMU_OT_DEADLIST_HDR, new Uint8Array(DEADLIST_HDR_SIZE));
  const guid = (what: string) => seed.derive(`dataset-guid:${what}`);

  // $ORIGIN and its snapshot come first in the clone relationships every head
  // dataset points at, so reserve their numbers before the user datasets.
  const rootDirObj = mos.alloc();
  const rootPhys = emptyDir();
  rootPhys.propsZapobj = mos.newZap(T.DMU_OT_DSL_PROPS, input.root.props);
  rootPhys.childDirZapobj = mos.alloc();

  const special = (name: string) => {
    const d = newDir(rootDirObj, []);
    return { name, ...d };
  };
  const mosDir = special('$MOS');
  const freeDir = special('$FREE');
  const originDir = special('$ORIGIN');
  const originHead = mos.alloc();
  const originSnap = mos.alloc();

  const heads: DirNode[] = [];
  const build = (inp: DatasetInput, dirObj: number, phys: DslDirPhys): DirNode => {
    const fullName = inp.name;
    const dsObj = mos.alloc();
    const ds = emptyDataset();
    ds.dirObj = dirObj;
    ds.prevSnapObj = originSnap;
    ds.prevSnapTxg = CREATE_TXG;
    ds.creationTxg = CREATE_TXG;
    ds.snapnamesZapobj = mos.newZap(T.DMU_OT_DSL_DS_SNAP_MAP, []);
    ds.deadlistObj = deadlist();
    ds.guid = guid(fullName);
    ds.fsidGuid = seed.derive(`fsid-guid:${fullName}`) & ((1n << 56n) - 1n);
    ds.bp = inp.bp;
    ds.referencedBytes = inp.acct.asize;
    ds.compressedBytes = inp.acct.psize;
    ds.uncompressedBytes = inp.acct.lsize;
    ds.uniqueBytes = inp.acct.asize;
    phys.headDatasetObj = dsObj;
    phys.originObj = originSnap;
    const node: DirNode = { dirObj, dsObj, phys, ds, input: inp, children: [] };
    heads.push(node);
    for (const c of inp.children) {
      const d = newDir(dirObj, c.props);
      node.children.push(build(c, d.obj, d.phys));
    }
    return node;
  };
  const rootNode = build(input.root, rootDirObj, rootPhys);
  const poolPropEntries = [...input.poolProps];
  if (input.bootfs !== undefined) {
    const h = heads.find((x) => x.input.name === input.bootfs);
    if (!h) throw new Error(`bootfs ${input.bootfs} is not a dataset`);
    poolPropEntries.push(u('bootfs', h.dsObj));
  }
  mos.zap(poolProps, T.DMU_OT_POOL_PROPS, poolPropEntries);

  // child maps
  const childName = (n: DirNode) => n.input.name.slice(n.input.name.lastIndexOf('/') + 1);
  const fillChildMap = (n: DirNode) => {
    const entries = n.children.map((c) => u(childName(c), c.dirObj));
    if (n === rootNode) entries.push(u('$MOS', mosDir.obj), u('$FREE', freeDir.obj), u('$ORIGIN', originDir.obj));
    mos.zap(n.phys.childDirZapobj, T.DMU_OT_DSL_DIR_CHILD_MAP, entries);
    n.children.forEach(fillChildMap);
  };
  fillChildMap(rootNode);
  for (const d of [mosDir, freeDir, originDir]) mos.zap(d.phys.childDirZapobj, T.DMU_OT_DSL_DIR_CHILD_MAP, []);

  // $ORIGIN: an empty head whose only snapshot is the origin of every dataset
  const clones = heads.map((h) => u(h.dsObj.toString(16), h.dsObj));
  originDir.phys.headDatasetObj = originHead;
  originDir.phys.clones = mos.newZap(T.DMU_OT_DSL_CLONES, clones);
  const oh = emptyDataset();
  oh.dirObj = originDir.obj;
  oh.prevSnapObj = originSnap;
  oh.prevSnapTxg = CREATE_TXG;
  oh.creationTxg = CREATE_TXG;
  oh.snapnamesZapobj = mos.newZap(T.DMU_OT_DSL_DS_SNAP_MAP, [u('$ORIGIN', originSnap)]);
  oh.deadlistObj = deadlist();
  oh.guid = guid('$ORIGIN');
  oh.fsidGuid = seed.derive('fsid-guid:$ORIGIN') & ((1n << 56n) - 1n);
  const os = emptyDataset();
  os.dirObj = originDir.obj;
  os.nextSnapObj = originHead;
  os.numChildren = 1 + heads.length;
  os.creationTxg = CREATE_TXG;
  os.deadlistObj = deadlist();
  os.guid = guid('$ORIGIN@$ORIGIN');
  os.fsidGuid = seed.derive('fsid-guid:$ORIGIN@$ORIGIN') & ((1n << 56n) - 1n);
  os.nextClonesObj = mos.newZap(T.DMU_OT_NEXT_CLONES, clones);

  // --- config, object directory -------------------------------------------
  const config = packNvlist(mosConfig({ ...input.config, msArray }, labelFeaturesForRead(input.features)));
  const cfgBlocks: Uint8Array[] = [];
  for (let off = 0; off < config.length; off += SPA_CONFIG_BLOCKSIZE) {
    const b = new Uint8Array(SPA_CONFIG_BLOCKSIZE);
    b.set(config.subarray(off, off + SPA_CONFIG_BLOCKSIZE));
    cfgBlocks.push(b);
  }
  const cfgSize = new Uint8Array(8);
  u64le(cfgSize, 0, config.length);
  mos.put(configObj, writeObject(zio, newDnode(T.DMU_OT_PACKED_NVLIST, SPA_CONFIG_BLOCKSIZE, T.DMU_OT_PACKED_NVLIST_SIZE, cfgSize), cfgBlocks));

  mos.zap(objdir, T.DMU_OT_OBJECT_DIRECTORY, [
    u('root_dataset', rootDirObj), u('config', configObj), u('free_bpobj', freeBpobj), u('sync_bplist', syncBplist),
    u('features_for_read', ffr), u('features_for_write', ffw), u('feature_descriptions', fdesc),
    u('pool_props', poolProps), u('deflate', 1), u('creation_version', 5000),
    ...(ftxg ? [u('feature_enabled_txg', ftxg)] : []),
  ]);

  // --- metaslab array, space maps, and the final reservations ------------
  const msCount = alloc.msCount;
  // Space maps for every metaslab used so far plus the next few, which is
  // where the rest of the MOS will land.
  const cursorMs = alloc.lastUsedMs();
  const window = spaceMapWindow(alloc, mos.count, cursorMs);
  const smObj = new Array<number>(msCount).fill(0);
  for (let m = 0; m < msCount; m++) {
    if (alloc.runsOf(m).length > 0 || (m > cursorMs && m <= cursorMs + window)) smObj[m] = mos.alloc();
  }
  // With spacemap_histogram enabled OpenZFS gives every space map the
  // 320-byte header and counts it in the feature's refcount (space_map_alloc).
  // Importing a 24-byte one there queues its metaslab for an upgrade, and on
  // a pool of more than 64 metaslabs the OpenZFS 2.3 kernel oopsed on that
  // (bench/RESULTS.md, twentieth round).
  const smHistogram = input.features.enabled.find((f) => f.name === 'spacemap_histogram');
  const refcounts = new Map(input.features.refcounts);
  if (smHistogram) refcounts.set(smHistogram.guid, (refcounts.get(smHistogram.guid) ?? 0) + smObj.filter((o) => o !== 0).length);
  const fzUsed = featureZaps({ ...input.features, refcounts }, input.config.createTxg);
  mos.zap(ffr, T.DMU_OTN_ZAP_METADATA, fzUsed.forRead.map(([g, n]) => u(g, n)));
  mos.zap(ffw, T.DMU_OTN_ZAP_METADATA, fzUsed.forWrite.map(([g, n]) => u(g, n)));

  const { bytes: arrBytes, blockSize: arrBs } = msArrayLayout(msCount);
  const arr = new Uint8Array(arrBytes);
  smObj.forEach((o, i) => u64le(arr, i * 8, o));
  const arrBlocks: Uint8Array[] = [];
  for (let off = 0; off < arr.length; off += arrBs) {
    const b = new Uint8Array(arrBs);
    b.set(arr.subarray(off, off + arrBs));
    arrBlocks.push(b);
  }
  mos.put(msArray, writeObject(zio, newDnode(T.DMU_OT_OBJECT_ARRAY, arrBs, 0, new Uint8Array(0)), arrBlocks));

  // Reserve, in write order: space map blocks, then the MOS dnode tree and objset block.
  const smBlocks = new Map<number, number>(); // metaslab -> number of blocks reserved
  for (let m = 0; m < msCount; m++) {
    if (!smObj[m]) continue;
    smBlocks.set(m, spaceMapBlocks(alloc.runsOf(m), m * alloc.msSize, alloc.ashift));
  }
  const queue: number[] = [];
  for (let m = 0; m < msCount; m++) for (let i = 0; i < (smBlocks.get(m) ?? 0); i++) queue.push(SPACE_MAP_BLOCKSIZE);
  const maxObj = mos.count - 1;
  const metaLevels = mosMetaLevels(maxObj);
  for (const size of dryRunObjsetSizes(maxObj, metaLevels)) queue.push(size);
  const reserved = queue.map((size) => ({ size, ...alloc.alloc(size) }));
  zio.reserveQueue = reserved;

  // the allocation is final now: every used metaslab must have a space map
  for (let m = 0; m < msCount; m++) {
    if (alloc.runsOf(m).length > 0 && !smObj[m]) throw new Error(`metaslab ${m} has allocations but no space map`);
  }
  for (let m = 0; m < msCount; m++) {
    if (!smObj[m]) continue;
    const entries = encodeSpaceMapEntries(alloc.runsOf(m), m * alloc.msSize, alloc.ashift);
    const nblk = smBlocks.get(m)!;
    if (entries.length > nblk * SPACE_MAP_BLOCKSIZE) throw new Error(`space map of metaslab ${m} outgrew its reservation`);
    const blocks: Uint8Array[] = [];
    for (let i = 0; i < nblk; i++) {
      const b = new Uint8Array(SPACE_MAP_BLOCKSIZE);
      b.set(entries.subarray(i * SPACE_MAP_BLOCKSIZE, (i + 1) * SPACE_MAP_BLOCKSIZE));
      blocks.push(b);
    }
    const msStart = m * alloc.msSize;
    const hist = smHistogram ? spaceMapHistogram(alloc.runsOf(m), msStart, alloc.msSize, alloc.ashift) : undefined;
    const dn = newDnode(T.DMU_OT_SPACE_MAP, SPACE_MAP_BLOCKSIZE, T.DMU_OT_SPACE_MAP_HEADER,
      encodeSpaceMapPhys(smObj[m]!, entries.length, alloc.msAllocated(m), hist));
    dn.indblkshift = 14;
    mos.put(smObj[m]!, writeObject(zio, dn, blocks));
  }

  // --- space accounting (the MOS total includes the blocks still to be written)
  const pending = zio.reserveQueue ?? [];
  const mosTotal = mosAcct.asize + pending.reduce((t, r) => t + r.asize, 0);
  const mosPsize = mosAcct.psize + pending.reduce((t, r) => t + r.size, 0);
  mosDir.phys.usedBytes = mosTotal;
  mosDir.phys.compressedBytes = mosPsize;
  mosDir.phys.uncompressedBytes = mosPsize;
  mosDir.phys.usedBreakdown[0] = mosTotal;
  const account = (n: DirNode): SpaceAccount => {
    const own = n.input.acct;
    const child = new SpaceAccount();
    let childRsrv = 0;
    for (const c of n.children) {
      const ca = account(c);
      child.add(ca);
      childRsrv += Math.max(0, (c.input.reservation ?? 0) - ca.asize);
    }
    if (n === rootNode) { child.asize += mosTotal; child.psize += mosPsize; child.lsize += mosPsize; }
    // an unused refreservation counts as used by the dataset
    const refrsrv = Math.max(0, (n.input.refreservation ?? 0) - own.asize);
    n.phys.quota = n.input.quota ?? 0;
    n.phys.reserved = n.input.reservation ?? 0;
    n.phys.usedBreakdown[0] = own.asize;
    n.phys.usedBreakdown[2] = child.asize;
    n.phys.usedBreakdown[3] = childRsrv;
    n.phys.usedBreakdown[4] = refrsrv;
    n.phys.usedBytes = own.asize + child.asize + childRsrv + refrsrv;
    n.phys.compressedBytes = own.psize + child.psize;
    n.phys.uncompressedBytes = own.lsize + child.lsize;
    const tot = new SpaceAccount();
    tot.asize = n.phys.usedBytes; tot.psize = n.phys.compressedBytes; tot.lsize = n.phys.uncompressedBytes;
    return tot;
  };
  account(rootNode);

  // --- DSL bonus objects ---------------------------------------------------
  const putDir = (obj: number, phys: DslDirPhys) =>
    mos.bonusObject(obj, T.DMU_OT_DSL_DIR, 512, T.DMU_OT_DSL_DIR, encodeDslDir(phys));
  const putDs = (obj: number, ds: DslDatasetPhys) =>
    mos.bonusObject(obj, T.DMU_OT_DSL_DATASET, 512, T.DMU_OT_DSL_DATASET, encodeDslDataset(ds));
  for (const h of heads) {
    putDir(h.dirObj, h.phys);
    putDs(h.dsObj, h.ds);
  }
  for (const d of [mosDir, freeDir, originDir]) putDir(d.obj, d.phys);
  putDs(originHead, oh);
  putDs(originSnap, os);

  // --- the MOS object set, into its reserved blocks -------------------------
  const w = new ObjsetWriter(zio, metaLevels);
  for (let id = 1; id <= maxObj; id++) {
    const dn = mos.dnodes.get(id);
    if (!dn) throw new Error(`MOS object ${id} was never written`);
    w.put(id, dn);
  }
  const rootbp = w.finish(T.DMU_OST_META);
  if (zio.reserveQueue.length !== 0) throw new Error('unused MOS reservations');
  zio.reserveQueue = null;
  return { rootbp, msArray, mosAcct, poolAllocated: alloc.allocated };
}

/**
 * How many metaslabs past the last used one get a space map. Everything
 * allocated once the space maps are chosen must land in them: the feature
 * ZAPs, the metaslab array, the space maps' own blocks and the MOS dnode
 * blocks. Two are plenty on most pools; thousands of used metaslabs at a
 * large ashift (a 16 KiB space map block takes 64 KiB at ashift 16) need
 * more. Counts an upper bound of those bytes, ignoring the room left in
 * the last used metaslab, plus one metaslab for blocks that do not
 * straddle a boundary.
 */
export function spaceMapWindow(alloc: SpaceAllocator, mosObjects: number, cursorMs: number): number {
  let usedMaps = 0;
  let usedBlocks = 0;
  for (let m = 0; m <= cursorMs; m++) {
    const runs = alloc.runsOf(m);
    if (runs.length === 0) continue;
    usedMaps++;
    usedBlocks += spaceMapBlocks(runs, m * alloc.msSize, alloc.ashift);
  }
  const { bytes: arrBytes, blockSize: arrBs } = msArrayLayout(alloc.msCount);
  const fixed = 2 * alloc.asize(128 * 1024) + Math.ceil(arrBytes / arrBs) * alloc.asize(arrBs);
  let window = 2;
  for (;;) {
    const maxObj = mosObjects - 1 + usedMaps + window;
    const dnodes = dryRunObjsetSizes(maxObj, mosMetaLevels(maxObj)).reduce((t, n) => t + alloc.asize(n), 0);
    // an unused metaslab's map is one block, whatever lands in it
    const maps = (usedBlocks + window) * alloc.asize(SPACE_MAP_BLOCKSIZE);
    const need = Math.ceil((fixed + maps + dnodes) / alloc.msSize) + 1;
    if (need <= window) return window;
    window = need;
  }
}

/** Blocks to reserve for a metaslab's space map: its entries now, and room for eight more. */
function spaceMapBlocks(runs: Extent[], msStart: number, ashift: number): number {
  const entries = encodeSpaceMapEntries(runs, msStart, ashift).length / 8 + 8;
  return Math.ceil((entries * 8) / SPACE_MAP_BLOCKSIZE);
}

/** The metaslab array object: one word per metaslab, in blocks of at most 128 KiB. */
function msArrayLayout(msCount: number): { bytes: number; blockSize: number } {
  const bytes = Math.max(512, Math.ceil((msCount * 8) / 512) * 512);
  return { bytes, blockSize: Math.min(bytes, 128 * 1024) };
}

/** Levels of the MOS's dnode tree for objects 0..maxObj. */
function mosMetaLevels(maxObj: number): number {
  return levelsFor(Math.floor(maxObj / DNODES_PER_BLOCK) + 1, 3);
}

/** Sizes, in write order, of the blocks an objset with objects 0..maxObj writes. */
function dryRunObjsetSizes(maxObj: number, metaLevels: number): number[] {
  const sizes: number[] = [];
  const dry = {
    txg: 0, charge: new SpaceAccount(), reserveQueue: null,
    writeBlock(data: Uint8Array, type: number, level: number, fill: number): BlkPtr {
      sizes.push(data.length);
      return { dva: { vdev: 0, offset: 0, asize: data.length }, lsize: data.length, psize: data.length, comp: 2, cksumType: 7, type, level, birth: 1, fill, cksum: new Uint8Array(32) };
    },
  } as unknown as ZioWriter;
  const w = new ObjsetWriter(dry, metaLevels);
  const dn: Dnode = newDnode(1, 512);
  for (let id = 1; id <= maxObj; id++) w.put(id, dn);
  w.finish(T.DMU_OST_META);
  return sizes;
}
