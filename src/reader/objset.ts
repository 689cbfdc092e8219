// One object set: its dnodes (through the meta-dnode's block tree), object
// data through indirect blocks (holes read as zeros), and ZAP objects.
import { Dnode, DNODE_CORE_SIZE, DNODE_FLAG_SPILL_BLKPTR, DNODE_SIZE } from '../dmu/dnode.js';
import { decodeObjset } from '../dmu/objset.js';
import { BP_SIZE, holeBp } from '../zio/blkptr.js';
import { DMU_OT_DNODE } from '../dmu/types.js';
import { decodeZap, type ZapDecoded } from '../zap/index.js';
import { isHoleBp, readBp, ReaderBp } from './bp.js';
import { inContext, ReadError } from './errors.js';
import type { PoolReader } from './pool.js';

export const OBJSET_USERUSED_OFF = 1024;
export const OBJSET_GROUPUSED_OFF = 1536;
export const OBJSET_PROJECTUSED_OFF = 2048;

/** A hole pointer of the reader's kind. */
export function readerHole(lsize = 0): ReaderBp {
  return { ...holeBp(), lsize, dvas: [], gang: false };
}

/** log2 of the block pointers per indirect block. */
export function epbShift(dn: Dnode): number {
  return dn.indblkshift - 7;
}

/** The block pointers of an indirect block. */
export function indirectBps(data: Uint8Array): ReaderBp[] {
  const out: ReaderBp[] = [];
  const hole = readerHole();
  const aligned = data.byteOffset % 8 === 0 ? data : data.slice();
  const words = new BigUint64Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >> 3);
  for (let off = 0; off + BP_SIZE <= data.length; off += BP_SIZE) {
    // most pointers of a sparse tree are all-zero holes: skip the full decode
    let zero = true;
    for (let w = off >> 3, end = (off + BP_SIZE) >> 3; w < end; w++) {
      if (words[w] !== 0n) {
        zero = false;
        break;
      }
    }
    out.push(zero ? hole : readBp(data, off));
  }
  return out;
}

/** A dnode whose block pointers carry every DVA. */
export interface RDnode extends Dnode {
  blkptr: ReaderBp[];
  spill?: ReaderBp;
}

/**
 * A dnode_phys_t as decodeDnode reads it, with the block pointers decoded
 * by readBp. Decoded here with 32-bit reads for speed (a verify decodes
 * every dnode, a listing every entry's); a unit test holds it to
 * decodeDnode's answers. Throws ReadError.
 */
export function readDnode(buf: Uint8Array, off: number): RDnode {
  const dv = new DataView(buf.buffer, buf.byteOffset + off, DNODE_SIZE);
  const type = dv.getUint8(0);
  const nblkptr = dv.getUint8(3);
  const rawFlags = dv.getUint8(7);
  const bonuslen = dv.getUint16(10, true);
  const hasSpill = (rawFlags & DNODE_FLAG_SPILL_BLKPTR) !== 0;
  const u64 = (at: number): number => dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 2 ** 32;
  const bonusOff = DNODE_CORE_SIZE + nblkptr * BP_SIZE;
  const dn: RDnode = {
    type, indblkshift: dv.getUint8(1), nlevels: dv.getUint8(2), nblkptr, bonustype: dv.getUint8(4),
    checksum: dv.getUint8(5), compress: dv.getUint8(6), flags: rawFlags & ~DNODE_FLAG_SPILL_BLKPTR,
    datablksz: dv.getUint16(8, true) * 512, maxblkid: u64(16), used: u64(24), blkptr: [],
    bonus: buf.slice(off + bonusOff, off + bonusOff + bonuslen),
  };
  if (type === 0) return dn;
  if (bonusOff + bonuslen > DNODE_SIZE - (hasSpill ? BP_SIZE : 0)) {
    throw new ReadError(`bad dnode: ${nblkptr} block pointers and a ${bonuslen}-byte bonus do not fit`);
  }
  if (nblkptr < 1 || dn.datablksz === 0 || dn.indblkshift < 7 || dn.nlevels < 1) {
    throw new ReadError(`bad dnode: nblkptr ${nblkptr}, block size ${dn.datablksz}, indblkshift ${dn.indblkshift}, nlevels ${dn.nlevels}`);
  }
  if (dv.getUint8(12) !== 0) throw new ReadError(`large dnodes (${dv.getUint8(12) + 1} slots) are not supported`);
  for (let i = 0; i < nblkptr; i++) dn.blkptr.push(readBp(buf, off + DNODE_CORE_SIZE + i * BP_SIZE));
  if (hasSpill) dn.spill = readBp(buf, off + DNODE_SIZE - BP_SIZE);
  return dn;
}

/** Dnode blocks kept by each object set (most recently used), so neighbouring objects skip the indirect walk. */
const DNODE_BLOCK_CACHE = 64;

export class ObjsetReader {
  private dnodeBlocks = new Map<number, Uint8Array>();
  readonly type: number;
  readonly metaDnode: RDnode;
  /** The raw objset_phys_t (userused/groupused dnodes live in it). */
  readonly phys: Uint8Array;

  /** `name` labels errors (a dataset name, or "MOS"). */
  constructor(readonly pool: PoolReader, readonly bp: ReaderBp, readonly name: string) {
    if (bp.dva === null) throw new ReadError(`${name}: the object set is a hole`);
    this.phys = inContext(`${name}: objset block`, () => pool.readBlock(bp, true));
    this.type = inContext(`${name}: objset block`, () => decodeObjset(this.phys).type);
    this.metaDnode = inContext(`${name}: meta-dnode`, () => readDnode(this.phys, 0));
    if (this.metaDnode.type !== DMU_OT_DNODE) throw new ReadError(`${name}: meta-dnode has type ${this.metaDnode.type}, not ${DMU_OT_DNODE}`);
  }

  get dnodesPerBlock(): number {
    return this.metaDnode.datablksz / DNODE_SIZE;
  }

  /** One past the highest object number the meta-dnode can hold. */
  get objectLimit(): number {
    return (this.metaDnode.maxblkid + 1) * this.dnodesPerBlock;
  }

  /** The dnode of object objid (type 0 if free). Throws ReadError. */
  dnode(objid: number): RDnode {
    if (!Number.isSafeInteger(objid) || objid < 0 || objid >= this.objectLimit) {
      throw new ReadError(`object ${objid} does not exist (the object set holds objects below ${this.objectLimit})`);
    }
    if (objid === 0) return this.metaDnode;
    const per = this.dnodesPerBlock;
    const blkid = Math.floor(objid / per);
    let block = this.dnodeBlocks.get(blkid);
    if (block) {
      this.dnodeBlocks.delete(blkid);
    } else {
      block = inContext(`dnode block ${blkid} (objects ${blkid * per}-${blkid * per + per - 1})`, () =>
        this.readBlock(this.metaDnode, blkid, true));
      if (this.dnodeBlocks.size >= DNODE_BLOCK_CACHE) this.dnodeBlocks.delete(this.dnodeBlocks.keys().next().value!);
    }
    this.dnodeBlocks.set(blkid, block);
    const b = block;
    return inContext(`object ${objid}`, () => readDnode(b, (objid % per) * DNODE_SIZE));
  }

  /**
   * The block pointer of block `blkid` at `level` of an object (a hole
   * pointer inside holes and past the end).
   */
  blockPointer(dn: RDnode, blkid: number, level = 0): ReaderBp {
    const shift = epbShift(dn);
    let lvl = dn.nlevels - 1;
    if (level > lvl) throw new RangeError(`level ${level} above the top level ${lvl}`);
    const span = (l: number) => 2 ** (shift * (l - level));
    const top = Math.floor(blkid / span(lvl));
    if (top >= dn.nblkptr) return readerHole();
    let bp = dn.blkptr[top]!;
    while (lvl > level) {
      if (bp.dva === null) {
        if (bp.embedded) throw new ReadError(`level ${lvl} block pointer is embedded`);
        return readerHole();
      }
      if (bp.level !== lvl) throw new ReadError(`indirect block at level ${lvl} claims level ${bp.level}`);
      const ind = inContext(`level ${lvl} indirect block ${Math.floor(blkid / span(lvl))}`, () => this.pool.readBlock(bp, true));
      lvl--;
      const idx = Math.floor(blkid / span(lvl)) % 2 ** shift;
      bp = readBp(ind, idx * BP_SIZE);
    }
    if (!isHoleBp(bp) && bp.level !== level) throw new ReadError(`block ${blkid} claims level ${bp.level}, expected ${level}`);
    return bp;
  }

  /** Level-0 block blkid of an object, verified; holes and blocks past the end are zeros. */
  readBlock(dn: RDnode, blkid: number, cache = false): Uint8Array {
    if (blkid > dn.maxblkid) return new Uint8Array(dn.datablksz);
    const bp = this.blockPointer(dn, blkid);
    if (isHoleBp(bp)) return new Uint8Array(dn.datablksz);
    const data = inContext(`block ${blkid}`, () => this.pool.readBlock(bp, cache));
    if (data.length !== dn.datablksz) {
      throw new ReadError(`block ${blkid} is ${data.length} bytes, the dnode says ${dn.datablksz}`);
    }
    return data;
  }

  /** The first `length` bytes of an object, block by block. */
  *stream(dn: RDnode, length: number, cache = false): Generator<Uint8Array> {
    const bs = dn.datablksz;
    for (let b = 0, pos = 0; pos < length; b++, pos += bs) {
      const block = this.readBlock(dn, b, cache);
      yield pos + bs <= length ? block : block.subarray(0, length - pos);
    }
  }

  /** The first `length` bytes of a (small) object in one buffer. */
  readBytes(dn: RDnode, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let pos = 0;
    for (const chunk of this.stream(dn, length)) {
      out.set(chunk, pos);
      pos += chunk.length;
    }
    return out;
  }

  /** Decode a ZAP object. Throws ReadError naming the object. */
  zap(objid: number, dn?: RDnode): ZapDecoded {
    return inContext(`object ${objid}`, () => {
      const d = dn ?? this.dnode(objid);
      if (d.type === 0) throw new ReadError('is not allocated');
      return decodeZap((b) => this.readBlock(d, b, true), this.readBlock(d, 0, true));
    });
  }

  /** A ZAP of single uint64 values, by name (names decoded as UTF-8). */
  zapNumbers(objid: number, dn?: RDnode): Map<string, bigint> {
    const z = this.zap(objid, dn);
    const out = new Map<string, bigint>();
    for (const e of z.entries) {
      if (e.value.ints.length === 1 && e.value.intLen === 8) out.set(Buffer.from(e.name).toString('utf8'), e.value.ints[0]!);
    }
    return out;
  }

  /** A required uint64 ZAP entry. */
  zapLookup(objid: number, name: string, dn?: RDnode): number {
    const v = this.zapNumbers(objid, dn).get(name);
    if (v === undefined) throw new ReadError(`object ${objid}: no ZAP entry "${name}"`);
    return Number(v);
  }
}
