// Whole-object ZAP building and reading: validates entries, hashes each name
// once, orders entries by (hash, name), hands out collision differentiators,
// picks micro or fat the way OpenZFS would end up after adding the same
// entries to a fresh ZAP, and dispatches decoding on the block type.
//
// Output depends only on the set of entries and the salt: names with equal
// hashes get cds 0, 1, 2... in bytewise name order, whatever the input order.

import { saltHalves } from './crc64.js';
import { encodeFatZap, decodeFatZap, FZAP_MAX_BLOCK_SHIFT, FZAP_MIN_BLOCK_SHIFT, planFatZap } from './fatzap.js';
import { decodeMicroZap, encodeMicroZap, mzapBlockSize } from './microzap.js';
import { packEntries, type PackedEntries } from './packed.js';
import {
  FZAP_DEFAULT_BLOCK_SHIFT,
  MZAP_MAX_SIZE,
  MZAP_NAME_LEN,
  SPA_MINBLOCKSIZE,
  SPA_OLD_MAXBLOCKSIZE,
  ZAP_MAXNAMELEN,
  ZBT_HEADER,
  ZBT_MICRO,
  type ZapDecoded,
  type ZapEntry,
  type ZapImage,
  type ZapOptions,
} from './types.js';
import { ZAP_LEAF_ARRAY_NCHUNKS, ZAP_LEAF_NUMCHUNKS_BS } from './zapleaf.js';

/** Leaf chunks a micro entry would take after an upgrade (MZAP_ENT_CHUNKS). */
const MZAP_ENT_CHUNKS = 1 + ZAP_LEAF_ARRAY_NCHUNKS(MZAP_NAME_LEN) + ZAP_LEAF_ARRAY_NCHUNKS(8);

export function buildZap(entries: readonly ZapEntry[], opts: ZapOptions): ZapImage {
  return zapFromPacked(() => packEntries(entries, opts.salt, ZAP_MAXNAMELEN - 1), opts);
}

/** buildZap from entries packed by `pack` (packEntries), called once the options are checked. */
function zapFromPacked(pack: () => PackedEntries, opts: ZapOptions): ZapImage {
  const z = chooseZap(pack, opts);
  if (z.micro) {
    return { kind: 'micro', blockSize: z.microSize, blocks: [encodeMicroZap(z.p, opts.salt, z.microSize)], numEntries: z.p.n };
  }
  const fat = encodeFatZap(z.p, opts.salt, z.bs);
  return { kind: 'fat', blockSize: fat.blockSize, blocks: fat.blocks, numEntries: z.p.n };
}

/**
 * A ZAP's blocks to be encoded one at a time, in block order, each into a
 * buffer the caller reuses: what a large directory is written from, so
 * that its megabytes of leaves are never all in memory. The packed entries
 * behind it live in shared scratch: valid until the next packing.
 */
export interface ZapBlockSource {
  kind: 'micro' | 'fat';
  blockSize: number;
  count: number;
  numEntries: number;
  /** Encode block `b` into `into` (blockSize bytes, all zero). */
  encodeBlock(b: number, into: Uint8Array): void;
}

/** zapFromPacked, as a ZapBlockSource. */
export function zapSourceFromPacked(pack: () => PackedEntries, opts: ZapOptions): ZapBlockSource {
  const z = chooseZap(pack, opts);
  const { p } = z;
  if (z.micro) {
    return {
      kind: 'micro', blockSize: z.microSize, count: 1, numEntries: p.n,
      encodeBlock: (b, into) => {
        if (b !== 0 || into.length !== z.microSize) throw new RangeError(`micro ZAP block ${b} into ${into.length} bytes`);
        encodeMicroZap(p, opts.salt, z.microSize, into);
      },
    };
  }
  const plan = planFatZap(p, opts.salt, z.bs);
  return { kind: 'fat', blockSize: plan.blockSize, count: plan.total, numEntries: p.n, encodeBlock: plan.encodeBlock };
}

/** Check the options, pack the entries, and pick micro or fat the way OpenZFS would. */
function chooseZap(pack: () => PackedEntries, opts: ZapOptions): { p: PackedEntries; micro: boolean; microSize: number; bs: number } {
  saltHalves(opts.salt);
  if (opts.normflags !== undefined && opts.normflags !== 0) throw new RangeError('ZAP normflags other than 0 are not supported');
  const bs = opts.fatBlockShift ?? FZAP_DEFAULT_BLOCK_SHIFT;
  if (!Number.isInteger(bs) || bs < FZAP_MIN_BLOCK_SHIFT || bs > FZAP_MAX_BLOCK_SHIFT) {
    throw new RangeError(`fatBlockShift ${bs} outside ${FZAP_MIN_BLOCK_SHIFT}..${FZAP_MAX_BLOCK_SHIFT}`);
  }
  const microMax = opts.microMaxSize ?? SPA_OLD_MAXBLOCKSIZE;
  if (!Number.isInteger(microMax) || microMax < SPA_MINBLOCKSIZE) throw new RangeError(`microMaxSize ${microMax} too small`);
  // zap_get_micro_max_size(): rounded up to a sector, capped at MZAP_MAX_SIZE.
  const microLimit = Math.min(MZAP_MAX_SIZE, Math.ceil(microMax / SPA_MINBLOCKSIZE) * SPA_MINBLOCKSIZE);

  const p = pack();
  const microSize = mzapBlockSize(p.n, opts.microBlockRounding ?? 'sector');
  const micro =
    !opts.forceFat &&
    p.allSingle &&
    p.maxNameLen < MZAP_NAME_LEN &&
    microSize <= microLimit &&
    // mze_canfit_fzap_leaf(): OpenZFS upgrades rather than let one hash value
    // gather more entries than a fat leaf could take after a later upgrade.
    p.maxCollisions * MZAP_ENT_CHUNKS < ZAP_LEAF_NUMCHUNKS_BS(bs);
  return { p, micro, microSize, bs };
}

/**
 * Reads a ZAP object given its block 0 and a way to read its other blocks,
 * throwing on anything OpenZFS would reject or mis-read.
 */
export function decodeZap(readBlock: (blkid: number) => Uint8Array, firstBlock: Uint8Array): ZapDecoded {
  if (firstBlock.length < 16) throw new Error(`ZAP block of ${firstBlock.length} bytes is too short`);
  const type = new DataView(firstBlock.buffer, firstBlock.byteOffset, 8).getBigUint64(0, true);
  if (type === ZBT_MICRO) return decodeMicroZap(firstBlock);
  if (type === ZBT_HEADER) return decodeFatZap(readBlock, firstBlock);
  throw new Error(`not a ZAP: block type 0x${type.toString(16)} is neither ZBT_MICRO nor ZBT_HEADER`);
}
