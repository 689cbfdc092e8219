// The pool configuration nvlist, in its two forms (spa_config_generate): the
// label copy describes this leaf vdev, the MOS copy the whole vdev tree.
import { NvList, nvFlag, nvList, nvListArray, nvStr, nvU64 } from './nvlist.js';
import { SPA_VERSION } from './uberblock.js';

export const POOL_STATE_EXPORTED = 1;

export interface PoolConfigInput {
  poolName: string;
  poolGuid: bigint;
  vdevGuid: bigint;
  txg: number;
  createTxg: number;
  ashift: number;
  asize: number;
  msArray: number;
  msShift: number;
  vdevPath: string;
}

function diskVdev(c: PoolConfigInput): NvList {
  return [
    ['type', nvStr('disk')],
    ['id', nvU64(0)],
    ['guid', nvU64(c.vdevGuid)],
    ['path', nvStr(c.vdevPath)],
    // not a whole disk: the pool starts at offset 0 of the image, with no
    // partition table for Linux to look for
    ['whole_disk', nvU64(0)],
    ['metaslab_array', nvU64(c.msArray)],
    ['metaslab_shift', nvU64(c.msShift)],
    ['ashift', nvU64(c.ashift)],
    ['asize', nvU64(c.asize)],
    ['is_log', nvU64(0)],
    ['create_txg', nvU64(c.createTxg)],
  ];
}

function header(c: PoolConfigInput): NvList {
  return [
    ['version', nvU64(SPA_VERSION)],
    ['name', nvStr(c.poolName)],
    ['state', nvU64(POOL_STATE_EXPORTED)],
    ['txg', nvU64(c.txg)],
    ['pool_guid', nvU64(c.poolGuid)],
    ['errata', nvU64(0)],
  ];
}

export function labelConfig(c: PoolConfigInput, featuresForRead: string[] = []): NvList {
  return [
    ...header(c),
    ['top_guid', nvU64(c.vdevGuid)],
    ['guid', nvU64(c.vdevGuid)],
    ['vdev_children', nvU64(1)],
    ['vdev_tree', nvList(diskVdev(c))],
    ['features_for_read', nvList(featuresForRead.map((g) => [g, nvFlag()]))],
  ];
}

export function mosConfig(c: PoolConfigInput, featuresForRead: string[] = []): NvList {
  return [
    ...header(c),
    ['vdev_children', nvU64(1)],
    ['vdev_tree', nvList([
      ['type', nvStr('root')],
      ['id', nvU64(0)],
      ['guid', nvU64(c.poolGuid)],
      ['create_txg', nvU64(c.createTxg)],
      ['children', nvListArray([diskVdev(c)])],
    ])],
    ['features_for_read', nvList(featuresForRead.map((g) => [g, nvFlag()]))],
  ];
}
