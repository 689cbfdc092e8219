// blkptr_t: the 128-byte block pointer (include/sys/spa.h). Sizes in the
// pointer are in 512-byte sectors; DVA offsets are relative to the start of
// the allocatable area (4 MiB into the vdev).
import { rd32le, rd64le, u32le, u64le } from '../util/endian.js';

export const BP_SIZE = 128;
export const SPA_MINBLOCKSHIFT = 9;

export const CKSUM_INHERIT = 0;
export const CKSUM_OFF = 2;
export const CKSUM_LABEL = 3;
export const CKSUM_FLETCHER4 = 7;
export const CKSUM_SHA256 = 8;

export const COMP_INHERIT = 0;
export const COMP_ON = 1;
export const COMP_OFF = 2;
export const COMP_LZJB = 3;
export const COMP_ZLE = 14;
export const COMP_LZ4 = 15;

export interface Dva {
  vdev: number;
  /** Byte offset from the start of the allocatable area. */
  offset: number;
  /** Allocated bytes (a multiple of 2^ashift). */
  asize: number;
}

export interface BlkPtr {
  dva: Dva | null; // null: a hole
  lsize: number;
  psize: number;
  comp: number;
  cksumType: number;
  type: number;
  level: number;
  birth: number;
  fill: number;
  /** blk_cksum as the 32 stored bytes (four little-endian words). */
  cksum: Uint8Array;
  /** An embedded block pointer's payload (the compressed data, psize bytes). */
  embedded?: Uint8Array;
}

/** Bytes of data an embedded block pointer can carry (BPE_PAYLOAD_SIZE). */
export const BPE_PAYLOAD_SIZE = 112;
/**
 * Where byte `i` of an embedded pointer's payload lies in the pointer: the
 * payload fills it in memory order, skipping blk_prop (bytes 48-55) and
 * blk_birth (80-87).
 */
export function bpePayloadAt(i: number): number {
  return i < 48 ? i : i < 72 ? i + 8 : i + 16;
}

/** An embedded pointer's payload length (psize), from blk_prop's bits 25-31 (psize - 1) in the pointer encoded at `off`. */
export function bpePsize(buf: Uint8Array, off: number): number {
  return (rd32le(buf, off + 48) >>> 25) + 1;
}

function encodeEmbedded(bp: BlkPtr, buf: Uint8Array, off: number): void {
  const p = bp.embedded!;
  if (p.length > BPE_PAYLOAD_SIZE) throw new Error('embedded payload too large');
  for (let i = 0; i < p.length; i++) buf[off + bpePayloadAt(i)] = p[i]!;
  // blk_prop as two 32-bit halves: lsize-1 (25 bits) and psize-1 (7) below;
  // compression, the embedded bit (39; etype 0 = BP_EMBEDDED_TYPE_DATA),
  // type, level and the byte-order bit (63) above
  u32le(buf, off + 48, ((bp.lsize - 1) | ((p.length - 1) << 25)) >>> 0);
  u32le(buf, off + 52, ((bp.comp & 0x7f) | (1 << 7) | ((bp.type & 0xff) << 16) | ((bp.level & 0x1f) << 24) | (1 << 31)) >>> 0);
  u64le(buf, off + 80, bp.birth);
}

function decodeEmbedded(buf: Uint8Array, off: number, prop: bigint): BlkPtr {
  const psize = bpePsize(buf, off);
  const payload = new Uint8Array(psize);
  for (let i = 0; i < psize; i++) payload[i] = buf[off + bpePayloadAt(i)]!;
  if ((prop >> 40n) & 0xffn) throw new Error(`unsupported embedded block pointer type ${(prop >> 40n) & 0xffn}`);
  return {
    dva: null, lsize: Number(prop & 0x1ffffffn) + 1, psize, comp: Number((prop >> 32n) & 0x7fn),
    cksumType: 0, type: Number((prop >> 48n) & 0xffn), level: Number((prop >> 56n) & 0x1fn),
    birth: Number(rd64le(buf, off + 80)), fill: 1, cksum: new Uint8Array(32), embedded: payload,
  };
}

const EMPTY_CKSUM = new Uint8Array(32);

export function holeBp(): BlkPtr {
  return { dva: null, lsize: 0, psize: 0, comp: 0, cksumType: 0, type: 0, level: 0, birth: 0, fill: 0, cksum: EMPTY_CKSUM };
}

/** A hole, shared (frozen: block pointers are never changed in place): what a new dnode's pointers start as. */
export const HOLE: BlkPtr = Object.freeze(holeBp());

export function isHole(bp: BlkPtr): boolean {
  return bp.dva === null && bp.embedded === undefined;
}

/** blk_prop's lower half of a pointer that is not embedded: lsize-1 and psize-1 in sectors (16 bits each). */
export function propSizes(lsize: number, psize: number): number {
  return (((lsize >>> SPA_MINBLOCKSHIFT) - 1) | (((psize >>> SPA_MINBLOCKSHIFT) - 1) << 16)) >>> 0;
}

/** Serialise into buf at off. A hole is 128 zero bytes (no hole_birth). */
export function encodeBp(bp: BlkPtr, buf: Uint8Array, off: number): void {
  buf.fill(0, off, off + BP_SIZE);
  if (bp.embedded) return encodeEmbedded(bp, buf, off);
  if (bp.dva === null) return;
  const d = bp.dva;
  // (32-bit halves, no BigInt: this runs for every block of the image)
  // dva_word[0]: asize in sectors (24 bits; GRID 0) below, the vdev above
  u32le(buf, off, d.asize >>> SPA_MINBLOCKSHIFT);
  u32le(buf, off + 4, d.vdev);
  u64le(buf, off + 8, d.offset / 512); // gang bit 0
  // blk_prop: lsize-1 and psize-1 in sectors (16 bits each) below;
  // compression, checksum, type, level and the byte-order bit (63) above
  u32le(buf, off + 48, propSizes(bp.lsize, bp.psize));
  u32le(buf, off + 52, ((bp.comp & 0x7f) | ((bp.cksumType & 0xff) << 8) | ((bp.type & 0xff) << 16) | ((bp.level & 0x1f) << 24) | (1 << 31)) >>> 0);
  // blk_phys_birth stays 0: it means "same as the logical birth".
  u64le(buf, off + 80, bp.birth);
  u64le(buf, off + 88, bp.fill);
  buf.set(bp.cksum, off + 96);
}

export function decodeBp(buf: Uint8Array, off: number): BlkPtr {
  const w0 = rd64le(buf, off);
  const w1 = rd64le(buf, off + 8);
  const prop = rd64le(buf, off + 48);
  const birth = Number(rd64le(buf, off + 80));
  const asize = Number(w0 & 0xffffffn) << SPA_MINBLOCKSHIFT;
  if ((prop >> 39n) & 1n) return decodeEmbedded(buf, off, prop);
  if (asize === 0 && birth === 0) return holeBp();
  return {
    dva: {
      vdev: Number(w0 >> 32n),
      offset: Number(w1 & ((1n << 63n) - 1n)) * 512,
      asize,
    },
    lsize: (Number(prop & 0xffffn) + 1) << SPA_MINBLOCKSHIFT,
    psize: (Number((prop >> 16n) & 0xffffn) + 1) << SPA_MINBLOCKSHIFT,
    comp: Number((prop >> 32n) & 0x7fn),
    cksumType: Number((prop >> 40n) & 0xffn),
    type: Number((prop >> 48n) & 0xffn),
    level: Number((prop >> 56n) & 0x1fn),
    birth,
    fill: Number(rd64le(buf, off + 88)),
    cksum: buf.slice(off + 96, off + 128),
  };
}

/** Encoded block pointers kept for later, 128 bytes each (or `size`: a part of each), in chunks that never move. */
export class BpSlab {
  private chunks: Uint8Array[] = [];
  private next = 0;

  constructor(private readonly size = BP_SIZE, private readonly perChunk = 8192) {}

  /** Keep an encoded block pointer as it is; returns its slot. */
  put(raw: Uint8Array): number {
    const slot = this.next++;
    const c = Math.floor(slot / this.perChunk);
    if (c === this.chunks.length) this.chunks.push(new Uint8Array(this.perChunk * this.size));
    this.chunks[c]!.set(raw.subarray(0, this.size), (slot % this.perChunk) * this.size);
    return slot;
  }

  /** The encoded block pointer itself (a view: valid as long as the slab). */
  raw(slot: number): Uint8Array {
    const at = (slot % this.perChunk) * this.size;
    return this.chunks[Math.floor(slot / this.perChunk)]!.subarray(at, at + this.size);
  }
}
