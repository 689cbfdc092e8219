// uberblock_t (include/sys/uberblock_impl.h): the root of the pool, pointing
// at the MOS.
import { BlkPtr, decodeBp, encodeBp } from '../zio/blkptr.js';
import { rd64le, u64le } from '../util/endian.js';

export const UBERBLOCK_MAGIC = 0x00bab10cn;
export const MMP_MAGIC = 0xa11cea11n;
export const SPA_VERSION = 5000;

export interface Uberblock {
  txg: number;
  guidSum: bigint;
  timestamp: number;
  rootbp: BlkPtr;
}

/** The uberblock fields; the caller pads to the slot size and seals it. */
export function encodeUberblock(ub: Uberblock): Uint8Array {
  const b = new Uint8Array(1024);
  u64le(b, 0, UBERBLOCK_MAGIC);
  u64le(b, 8, SPA_VERSION);
  u64le(b, 16, ub.txg);
  u64le(b, 24, BigInt.asUintN(64, ub.guidSum));
  u64le(b, 32, ub.timestamp);
  encodeBp(ub.rootbp, b, 40);
  u64le(b, 168, SPA_VERSION); // ub_software_version
  u64le(b, 176, MMP_MAGIC); // MMP fields valid but unused (delay 0, no config)
  return b;
}

export function decodeUberblock(b: Uint8Array): Uberblock & { magic: bigint; version: number } {
  return {
    magic: rd64le(b, 0),
    version: Number(rd64le(b, 8)),
    txg: Number(rd64le(b, 16)),
    guidSum: rd64le(b, 24),
    timestamp: Number(rd64le(b, 32)),
    rootbp: decodeBp(b, 40),
  };
}
