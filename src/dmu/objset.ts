// Object sets (objset_phys_t, include/sys/dmu_objset.h): the dnode array is
// an object of its own (the meta-dnode, object 0) whose 16 KiB blocks are
// written as soon as they are complete, so a dataset of any size only ever
// holds one dnode block in memory.
import { BlkPtr, decodeBp } from '../zio/blkptr.js';
import { SpaceAccount, ZioWriter } from '../zio/writer.js';
import { rd64le, u64le } from '../util/endian.js';
import { DMU_OT_DNODE, DMU_OT_OBJSET } from './types.js';
import { decodeDnode, Dnode, DNODE_BLOCK_SIZE, DNODE_SIZE, DNODES_PER_BLOCK, encodeDnode, newDnode } from './dnode.js';
import { levelsFor, ObjectWriter } from './object.js';

export const OBJSET_PHYS_SIZE = 4096; // OBJSET_PHYS_SIZE_V3
const OS_TYPE_OFF = 704;

/**
 * Levels of a dataset's meta-dnode: OpenZFS gives non-MOS object sets enough
 * levels up front to address every possible object (dmu_objset_create_impl),
 * so the kernel never has to grow it while others read it.
 */
export function fullMetaLevels(): number {
  const maxBlocks = 2 ** 48 / DNODES_PER_BLOCK;
  let levels = 1;
  while (3 * 2 ** ((levels - 1) * 10) < maxBlocks) levels++;
  return levels;
}

export class ObjsetWriter {
  private meta: ObjectWriter;
  private block = new Uint8Array(DNODE_BLOCK_SIZE);
  private blockId = 0;
  private blockFill = 0;
  private lastObj = 0;
  objects = 0;

  /** metaLevels: levels of the meta-dnode (fullMetaLevels() or levelsFor(...) for the MOS). */
  constructor(private readonly zio: ZioWriter, metaLevels: number) {
    this.meta = new ObjectWriter(zio, newDnode(DMU_OT_DNODE, DNODE_BLOCK_SIZE, 0, new Uint8Array(0), 3), metaLevels);
  }

  /** Store a finished dnode. Objects must be given in increasing order. */
  put(objid: number, dn: Dnode): void {
    if (objid <= this.lastObj) throw new Error(`object ${objid} out of order`);
    this.lastObj = objid;
    const blk = Math.floor(objid / DNODES_PER_BLOCK);
    while (blk > this.blockId) this.flushBlock();
    encodeDnode(dn, this.block, (objid % DNODES_PER_BLOCK) * DNODE_SIZE);
    this.blockFill++;
    this.objects++;
  }

  private flushBlock(): void {
    if (this.blockFill === 0) this.meta.pushHole();
    else this.meta.push(this.block, this.blockFill);
    // (the write took its bytes: the same block serves the next 32 dnodes)
    this.block.fill(0);
    this.blockFill = 0;
    this.blockId++;
  }

  /** Write the remaining dnodes and the objset block; returns its block pointer. */
  finish(osType: number): BlkPtr {
    if (this.blockFill > 0) this.flushBlock();
    const mdn = this.meta.finish();
    const os = new Uint8Array(OBJSET_PHYS_SIZE);
    encodeDnode(mdn, os, 0);
    u64le(os, OS_TYPE_OFF, osType);
    let fill = 0;
    for (const bp of mdn.blkptr) fill += bp.fill;
    return this.zio.writeBlock(os, DMU_OT_OBJSET, 0, fill, new SpaceAccount());
  }
}

/** Write a complete object set from an in-memory map of dnodes (the MOS). */
export function writeObjsetFromMap(zio: ZioWriter, dnodes: Map<number, Dnode>, osType: number, metaLevels?: number): BlkPtr {
  const ids = [...dnodes.keys()].sort((a, b) => a - b);
  const maxId = ids[ids.length - 1] ?? 0;
  const w = new ObjsetWriter(zio, metaLevels ?? levelsFor(Math.floor(maxId / DNODES_PER_BLOCK) + 1, 3));
  for (const id of ids) w.put(id, dnodes.get(id)!);
  return w.finish(osType);
}

export function decodeObjset(buf: Uint8Array): { metaDnode: Dnode; type: number; zilLog: BlkPtr } {
  return { metaDnode: decodeDnode(buf, 0), type: Number(rd64le(buf, OS_TYPE_OFF)), zilLog: decodeBp(buf, 512) };
}
