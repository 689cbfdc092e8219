// tsmakefs as a library: `import { buildImage, verifyImage } from 'tsmakefs'`.
//
//   buildImage({ image, inputs, poolName, ... })  what the command line does
//   openInputs + makeImage                          the same in two steps, with
//                                                   the writer's own options
//   makeImage(tree, opts)                           a tree built in memory
//   verifyImage / openPool                          the reader (checks, ls, cat)
//
// Everything the command line reports as "tsmakefs: <message>" arrives here
// as a UserError with that message; anything else is a bug.

// the whole build, as the command line runs it
export {
  buildImage, runBuild, treeTotals, imageOptionsOf, inputPlanOf,
  type BuildOptions, type BuildSummary, type BuildProgress, type BuildHooks, type InputTotals,
} from './build.js';

// the writer
export {
  makeImage, DEFAULT_FREE_PERCENT,
  type ImageSummary, type DatasetSummary, type Progress, type TreeSource, type InputContext,
} from './image.js';
export type { ImageOptions } from './options.js';

// the tree model and the inputs
export {
  newDir, sortTree, compareNames,
  type Inode, type Dirent, type NodeType, type Timespec, type DataSource,
} from './input/tree.js';
export { walkDirectories, mergeDirectories, type WalkOptions } from './input/walk.js';
export { openInputs, treeInMemory, type InputPlan } from './input/pipeline.js';
export type { TimePolicy } from './input/times.js';

// the reader
export {
  verifyImage, verifyPool, openPool, PoolReader, listDatasets, findDataset, openFileSystem,
  type VerifyOptions, type VerifyResult, type VerifyStats, type PoolReaderOptions, type DatasetInfo,
} from './reader/index.js';

// errors, sizes, clean-up
export { UserError, InterruptedError } from './util/errors.js';
export { parseSize, formatSize } from './util/size.js';
export { abortOpenImageFiles, openImageFiles } from './vdev/imagefile.js';
