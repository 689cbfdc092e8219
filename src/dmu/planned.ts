// An object whose every block is placed before any of its data is known:
// the layout of an uncompressed file of more than one block. Its level-0
// blocks are stored as they are (no compression, no holes), so their size
// follows from the file's size alone; its indirect blocks are 4 KiB and
// stored uncompressed, so theirs does too. With the whole layout fixed up
// front, the data can go in in any order, from any thread (the image
// writer copies large host files itself while the build walks on), and the
// indirect blocks are filled in once the checksums of the blocks below are
// known. The image is the same whoever wrote which block and when.
//
// Allocation order: the level-0 blocks, then level 1, level 2, ... up to the
// single top block the dnode points at. Indirect blocks of 4 KiB hold 32
// block pointers; OpenZFS reads any indblkshift from 12 to 17, and an
// uncompressed 4 KiB block takes the same 4 KiB as a compressed one would
// at ashift 12.

import { BlkPtr, BP_SIZE, CKSUM_FLETCHER4, COMP_OFF, encodeBp } from '../zio/blkptr.js';
import { FLETCHER4_CKSUM_SIZE as CKSUM_BYTES, fletcher4 } from '../zio/fletcher4.js';
import type { ZioWriter } from '../zio/writer.js';
import { VDEV_LABEL_START_SIZE } from '../vdev/geometry.js';

export const PLANNED_INDBLKSHIFT = 12;
const IND_SIZE = 2 ** PLANNED_INDBLKSHIFT;
const PER_IND = IND_SIZE / BP_SIZE; // 32

/** Levels of a planned object of `nblocks` level-0 blocks under one top block pointer. */
export function plannedLevels(nblocks: number): number {
  let levels = 1;
  for (let n = nblocks; n > 1; n = Math.ceil(n / PER_IND)) levels++;
  return levels;
}

export interface PlannedTop {
  bp: BlkPtr;
  nlevels: number;
  maxblkid: number;
  /** Allocated, physical and logical bytes of all its blocks. */
  asize: number;
  psize: number;
  lsize: number;
}

export class PlannedObject {
  readonly nlevels: number;
  /** Allocator offsets of every block, level by level (level 0 first). */
  private readonly offsets: Float64Array;
  private readonly asizes: Float64Array;
  /** Where each level starts in `offsets`, and one past the last. */
  private readonly levelStart: number[] = [0];
  /** The allocator range all of it lies in. */
  readonly start: number;
  readonly end: number;

  constructor(private readonly zio: ZioWriter, readonly nblocks: number, readonly blksz: number, private readonly type: number) {
    if (nblocks < 1) throw new Error('a planned object has at least one block');
    this.nlevels = plannedLevels(nblocks);
    let total = 0;
    for (let n = nblocks; ; n = Math.ceil(n / PER_IND)) {
      total += n;
      this.levelStart.push(total);
      if (n === 1) break;
    }
    this.offsets = new Float64Array(total);
    this.asizes = new Float64Array(total);
    this.start = zio.alloc.position;
    for (let i = 0; i < total; i++) {
      const { offset, asize } = zio.alloc.alloc(i < nblocks ? blksz : IND_SIZE);
      this.offsets[i] = offset;
      this.asizes[i] = asize;
    }
    this.end = zio.alloc.position;
  }

  /** The image offset (past the front labels) of level-0 block `i`. */
  dataOffset(i: number): number {
    return VDEV_LABEL_START_SIZE + this.offsets[i]!;
  }

  /**
   * Build and write the indirect blocks from the level-0 blocks' checksums
   * (CKSUM_BYTES per block, in block order), charge every block to the
   * object set (`charge`), and return the top block pointer.
   */
  finish(cksums: Uint8Array, charge = true): PlannedTop {
    const zio = this.zio;
    let below: BlkPtr[] = [];
    for (let i = 0; i < this.nblocks; i++) below.push(this.bp(i, 0, this.blksz, 1, cksums.subarray(i * CKSUM_BYTES, (i + 1) * CKSUM_BYTES)));
    const block = new Uint8Array(IND_SIZE);
    for (let level = 1; level < this.nlevels; level++) {
      const first = this.levelStart[level]!;
      const count = this.levelStart[level + 1]! - first;
      const above: BlkPtr[] = [];
      for (let j = 0; j < count; j++) {
        block.fill(0);
        let fill = 0;
        const kids = below.slice(j * PER_IND, (j + 1) * PER_IND);
        for (let k = 0; k < kids.length; k++) {
          encodeBp(kids[k]!, block, k * BP_SIZE);
          fill += kids[k]!.fill;
        }
        zio.image.write(VDEV_LABEL_START_SIZE + this.offsets[first + j]!, block);
        above.push(this.bp(first + j, level, IND_SIZE, fill, fletcher4(block)));
      }
      below = above;
    }
    let asize = 0, psize = 0;
    for (let i = 0; i < this.offsets.length; i++) {
      asize += this.asizes[i]!;
      psize += i < this.nblocks ? this.blksz : IND_SIZE;
    }
    const blocks = this.offsets.length;
    if (charge) {
      const ch = zio.charge;
      ch.asize += asize; ch.psize += psize; ch.lsize += psize; ch.blocks += blocks;
    }
    return { bp: below[0]!, nlevels: this.nlevels, maxblkid: this.nblocks - 1, asize, psize, lsize: psize };
  }

  private bp(i: number, level: number, size: number, fill: number, cksum: Uint8Array): BlkPtr {
    return {
      dva: { vdev: 0, offset: this.offsets[i]!, asize: this.asizes[i]! },
      lsize: size, psize: size, comp: COMP_OFF, cksumType: CKSUM_FLETCHER4,
      type: this.type, level, birth: this.zio.txg, fill, cksum: cksum.slice(),
    };
  }
}
