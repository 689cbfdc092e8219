// The DSL's bonus structures: dsl_dir_phys_t (256 bytes) and
// dsl_dataset_phys_t (320 bytes) (include/sys/dsl_dir.h, dsl_dataset.h).
import { BlkPtr, decodeBp, encodeBp, holeBp } from '../zio/blkptr.js';
import { rd64le, u64le } from '../util/endian.js';

export const DSL_DIR_PHYS_SIZE = 256;
export const DSL_DATASET_PHYS_SIZE = 320;
export const DD_FLAG_USED_BREAKDOWN = 1;
export const DS_FLAG_UNIQUE_ACCURATE = 4;

export interface DslDirPhys {
  creationTime: number;
  headDatasetObj: number;
  parentObj: number;
  originObj: number;
  childDirZapobj: number;
  usedBytes: number;
  compressedBytes: number;
  uncompressedBytes: number;
  quota: number;
  reserved: number;
  propsZapobj: number;
  delegZapobj: number;
  flags: number;
  /** HEAD, SNAP, CHILD, CHILD_RSRV, REFRSRV */
  usedBreakdown: [number, number, number, number, number];
  clones: number;
}

export function emptyDir(): DslDirPhys {
  return {
    creationTime: 0, headDatasetObj: 0, parentObj: 0, originObj: 0, childDirZapobj: 0,
    usedBytes: 0, compressedBytes: 0, uncompressedBytes: 0, quota: 0, reserved: 0,
    propsZapobj: 0, delegZapobj: 0, flags: DD_FLAG_USED_BREAKDOWN, usedBreakdown: [0, 0, 0, 0, 0], clones: 0,
  };
}

export function encodeDslDir(d: DslDirPhys): Uint8Array {
  const b = new Uint8Array(DSL_DIR_PHYS_SIZE);
  const f = [d.creationTime, d.headDatasetObj, d.parentObj, d.originObj, d.childDirZapobj, d.usedBytes,
    d.compressedBytes, d.uncompressedBytes, d.quota, d.reserved, d.propsZapobj, d.delegZapobj, d.flags,
    ...d.usedBreakdown, d.clones];
  f.forEach((v, i) => u64le(b, i * 8, v));
  return b;
}

export function decodeDslDir(b: Uint8Array): DslDirPhys {
  const g = (i: number) => Number(rd64le(b, i * 8));
  return {
    creationTime: g(0), headDatasetObj: g(1), parentObj: g(2), originObj: g(3), childDirZapobj: g(4),
    usedBytes: g(5), compressedBytes: g(6), uncompressedBytes: g(7), quota: g(8), reserved: g(9),
    propsZapobj: g(10), delegZapobj: g(11), flags: g(12), usedBreakdown: [g(13), g(14), g(15), g(16), g(17)], clones: g(18),
  };
}

export interface DslDatasetPhys {
  dirObj: number;
  prevSnapObj: number;
  prevSnapTxg: number;
  nextSnapObj: number;
  snapnamesZapobj: number;
  numChildren: number;
  creationTime: number;
  creationTxg: number;
  deadlistObj: number;
  referencedBytes: number;
  compressedBytes: number;
  uncompressedBytes: number;
  uniqueBytes: number;
  fsidGuid: bigint;
  guid: bigint;
  flags: number;
  bp: BlkPtr;
  nextClonesObj: number;
  propsObj: number;
  userrefsObj: number;
}

export function emptyDataset(): DslDatasetPhys {
  return {
    dirObj: 0, prevSnapObj: 0, prevSnapTxg: 0, nextSnapObj: 0, snapnamesZapobj: 0, numChildren: 0,
    creationTime: 0, creationTxg: 0, deadlistObj: 0, referencedBytes: 0, compressedBytes: 0,
    uncompressedBytes: 0, uniqueBytes: 0, fsidGuid: 0n, guid: 0n, flags: DS_FLAG_UNIQUE_ACCURATE,
    bp: holeBp(), nextClonesObj: 0, propsObj: 0, userrefsObj: 0,
  };
}

export function encodeDslDataset(d: DslDatasetPhys): Uint8Array {
  const b = new Uint8Array(DSL_DATASET_PHYS_SIZE);
  const f: (number | bigint)[] = [d.dirObj, d.prevSnapObj, d.prevSnapTxg, d.nextSnapObj, d.snapnamesZapobj,
    d.numChildren, d.creationTime, d.creationTxg, d.deadlistObj, d.referencedBytes, d.compressedBytes,
    d.uncompressedBytes, d.uniqueBytes, d.fsidGuid, d.guid, d.flags];
  f.forEach((v, i) => u64le(b, i * 8, v));
  encodeBp(d.bp, b, 128);
  u64le(b, 256, d.nextClonesObj);
  u64le(b, 264, d.propsObj);
  u64le(b, 272, d.userrefsObj);
  return b;
}

export function decodeDslDataset(b: Uint8Array): DslDatasetPhys {
  const g = (i: number) => Number(rd64le(b, i * 8));
  return {
    dirObj: g(0), prevSnapObj: g(1), prevSnapTxg: g(2), nextSnapObj: g(3), snapnamesZapobj: g(4),
    numChildren: g(5), creationTime: g(6), creationTxg: g(7), deadlistObj: g(8), referencedBytes: g(9),
    compressedBytes: g(10), uncompressedBytes: g(11), uniqueBytes: g(12), fsidGuid: rd64le(b, 104),
    guid: rd64le(b, 112), flags: g(15), bp: decodeBp(b, 128), nextClonesObj: g(32), propsObj: g(33), userrefsObj: g(34),
  };
}
