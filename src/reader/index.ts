// The reader's public surface: open an image, walk its datasets and file
// systems, verify it, compare it with a tree.
export { openPool, PoolReader, type PoolReaderOptions, type LabelInfo, type UberblockInfo } from './pool.js';
export { verifyImage, verifyPool, type VerifyOptions, type VerifyResult, type VerifyStats } from './verify.js';
export { listDatasets, findDataset, type DatasetInfo } from './dsl.js';
export { ObjsetReader, type RDnode } from './objset.js';
export { ZplReader, type Znode, type DirEntry } from './zpl.js';
export { openFileSystem, parseSpec, type Spec } from './fs.js';
export { Namespace, mountTable, datasetProps, type MountInfo, type NsNode } from './mounts.js';
export {
  diffTrees, inodeTreeView, zplTreeView, isoTime, type TreeView, type NodeInfo, type DiffOptions,
} from './compare.js';
export { formatLong, modeString, lsTime, type LsEntry } from './ls.js';
export { traversePool, type Problem, type BlockRef } from './traverse.js';
export { ReadError } from './errors.js';
export type { ReaderBp } from './bp.js';
