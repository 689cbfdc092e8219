// Public surface of the ZAP modules.

export { ZFS_CRC64_POLY, zapHash, zapHash28, hash28To64, saltHalves } from './crc64.js';
export { encodeMicroZap, decodeMicroZap, mzapBlockSize } from './microzap.js';
export {
  encodeFatZap,
  decodeFatZap,
  planFatLeaves,
  ZAP_EMBEDDED_PTRTBL_SHIFT,
  ZAP_MAX_PREFIX_LEN,
  type FatLeafPlan,
} from './fatzap.js';
export {
  encodeZapLeaf,
  decodeZapLeaf,
  leafHashSlot,
  zapEntryChunks,
  packedEntryChunks,
  ZAP_LEAF_NUMCHUNKS_BS,
  ZAP_LEAF_HASH_NUMENTRIES_BS,
  ZAP_LEAF_ARRAY_BYTES,
  ZAP_LEAF_CHUNKSIZE,
} from './zapleaf.js';
export { buildZap, decodeZap } from './zap.js';
export { packEntries, type PackedEntries } from './packed.js';
export {
  zapName,
  zapString,
  ZBT_LEAF,
  ZBT_HEADER,
  ZBT_MICRO,
  ZAP_MAGIC,
  ZAP_LEAF_MAGIC,
  ZAP_HASHBITS,
  ZAP_MAXNAMELEN,
  ZAP_MAXVALUELEN,
  MZAP_ENT_LEN,
  MZAP_NAME_LEN,
  FZAP_DEFAULT_BLOCK_SHIFT,
  type ZapIntLen,
  type ZapValue,
  type ZapEntryValue,
  type ZapEntry,
  type ZapOptions,
  type ZapImage,
  type ZapDecoded,
  type ZapDecodedEntry,
} from './types.js';
