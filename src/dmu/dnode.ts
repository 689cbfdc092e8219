// dnode_phys_t (include/sys/dnode.h): 512-byte slots, no large dnodes.
import { BlkPtr, BP_SIZE, decodeBp, encodeBp, HOLE } from '../zio/blkptr.js';
import { rd16le, rd64le, u16le, u64le } from '../util/endian.js';

export const DNODE_SIZE = 512;
export const DNODE_SHIFT = 9;
export const DNODE_BLOCK_SIZE = 16384;
export const DNODES_PER_BLOCK = DNODE_BLOCK_SIZE / DNODE_SIZE;
export const DN_MAX_BONUSLEN = 320; // DN_OLD_MAX_BONUSLEN: one blkptr, no spill
export const DNODE_CORE_SIZE = 64;
export const DN_MAX_INDBLKSHIFT = 17;

export const DNODE_FLAG_USED_BYTES = 1;
export const DNODE_FLAG_SPILL_BLKPTR = 4;

export interface Dnode {
  type: number;
  indblkshift: number;
  nlevels: number;
  nblkptr: number;
  bonustype: number;
  checksum: number;
  compress: number;
  flags: number;
  datablksz: number; // bytes (a multiple of 512)
  maxblkid: number;
  used: number; // bytes (DNODE_FLAG_USED_BYTES)
  blkptr: BlkPtr[];
  /**
   * The block pointers already encoded (nblkptr x 128 bytes), used instead
   * of `blkptr` when set: a file's top block pointer is kept encoded from
   * the time its data is written, and goes into its dnode as it is.
   */
  blkptrRaw?: Uint8Array;
  bonus: Uint8Array; // dn_bonuslen = bonus.length
  spill?: BlkPtr;
}

export function newDnode(type: number, datablksz: number, bonustype = 0, bonus: Uint8Array = new Uint8Array(0), nblkptr?: number): Dnode {
  const nbp = nblkptr ?? 1 + Math.floor((DN_MAX_BONUSLEN - bonus.length) / BP_SIZE);
  return {
    type, indblkshift: DN_MAX_INDBLKSHIFT, nlevels: 1, nblkptr: nbp, bonustype,
    checksum: 0, compress: 0, flags: DNODE_FLAG_USED_BYTES, datablksz, maxblkid: 0, used: 0,
    blkptr: new Array<BlkPtr>(nbp).fill(HOLE), bonus,
  };
}

/** Largest bonus that fits with a spill block pointer (the spill takes the last 128 bytes). */
export const DN_MAX_BONUSLEN_SPILL = DN_MAX_BONUSLEN - BP_SIZE;

export function encodeDnode(dn: Dnode, buf: Uint8Array, off: number): void {
  buf.fill(0, off, off + DNODE_SIZE);
  if (dn.type === 0) return;
  buf[off] = dn.type;
  buf[off + 1] = dn.indblkshift;
  buf[off + 2] = dn.nlevels;
  buf[off + 3] = dn.nblkptr;
  buf[off + 4] = dn.bonustype;
  buf[off + 5] = dn.checksum;
  buf[off + 6] = dn.compress;
  buf[off + 7] = dn.flags | (dn.spill ? DNODE_FLAG_SPILL_BLKPTR : 0);
  u16le(buf, off + 8, dn.datablksz >>> 9);
  u16le(buf, off + 10, dn.bonus.length);
  u64le(buf, off + 16, dn.maxblkid);
  u64le(buf, off + 24, dn.used);
  if (dn.blkptrRaw) {
    if (dn.blkptrRaw.length !== dn.nblkptr * BP_SIZE) throw new Error('encoded block pointers do not match nblkptr');
    buf.set(dn.blkptrRaw, off + DNODE_CORE_SIZE);
  } else {
    for (let i = 0; i < dn.nblkptr; i++) encodeBp(dn.blkptr[i]!, buf, off + DNODE_CORE_SIZE + i * BP_SIZE);
  }
  const bonusOff = off + DNODE_CORE_SIZE + dn.nblkptr * BP_SIZE;
  const bonusMax = DNODE_SIZE - DNODE_CORE_SIZE - dn.nblkptr * BP_SIZE - (dn.spill ? BP_SIZE : 0);
  if (dn.bonus.length > bonusMax) throw new Error(`bonus of ${dn.bonus.length} bytes exceeds ${bonusMax}`);
  buf.set(dn.bonus, bonusOff);
  if (dn.spill) encodeBp(dn.spill, buf, off + DNODE_SIZE - BP_SIZE);
}

export function decodeDnode(buf: Uint8Array, off: number): Dnode {
  const nblkptr = buf[off + 3]!;
  const flags = buf[off + 7]!;
  const bonuslen = rd16le(buf, off + 10);
  const bonusOff = off + DNODE_CORE_SIZE + nblkptr * BP_SIZE;
  const dn: Dnode = {
    type: buf[off]!, indblkshift: buf[off + 1]!, nlevels: buf[off + 2]!, nblkptr,
    bonustype: buf[off + 4]!, checksum: buf[off + 5]!, compress: buf[off + 6]!,
    flags: flags & ~DNODE_FLAG_SPILL_BLKPTR,
    datablksz: rd16le(buf, off + 8) << 9,
    maxblkid: Number(rd64le(buf, off + 16)), used: Number(rd64le(buf, off + 24)),
    blkptr: [], bonus: buf.slice(bonusOff, bonusOff + bonuslen),
  };
  for (let i = 0; i < nblkptr; i++) dn.blkptr.push(decodeBp(buf, off + DNODE_CORE_SIZE + i * BP_SIZE));
  if (flags & DNODE_FLAG_SPILL_BLKPTR) dn.spill = decodeBp(buf, off + DNODE_SIZE - BP_SIZE);
  return dn;
}
