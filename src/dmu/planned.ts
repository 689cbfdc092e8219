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

import { BlkPtr, BP_SIZE, CKSUM_FLETCHER4, COMP_OFF } from '../zio/blkptr.js';
import { indirectBlock } from './object.js';
import { fletcher4 } from '../zio/fletcher4.js';
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

/**
 * The blocks of one level in allocation order, as runs: bump allocation
 * keeps them in a row but where a block would straddle a metaslab
 * boundary, so a file of any size takes a few numbers, not one per block.
 * The first run is two fields: a file waiting to be copied keeps its
 * layout this way, and most levels are one run.
 */
class LevelRuns {
  private off0 = 0;
  /** Each later run's first block and that block's offset, in pairs. */
  private more: number[] | null = null;
  private last = 0;
  count = 0;

  constructor(readonly size: number, readonly asize: number) {}

  add(offset: number): void {
    if (this.count === 0) this.off0 = offset;
    else if (offset !== this.last + this.asize) (this.more ??= []).push(this.count, offset);
    this.last = offset;
    this.count++;
  }

  offset(i: number): number {
    const m = this.more;
    if (m === null || i < m[0]!) return this.off0 + i * this.asize;
    let lo = 0, hi = m.length / 2 - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (m[2 * mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return m[2 * lo + 1]! + (i - m[2 * lo]!) * this.asize;
  }
}

export class PlannedObject {
  readonly nlevels: number;
  private readonly levels: LevelRuns[];
  /** The allocator range all of it lies in. */
  readonly start: number;
  readonly end: number;
  // Block pointers waiting for their indirect block, one partial block per
  // level (checksums come in block order: an indirect block is written as
  // soon as its last child is in), and how many of each level are done.
  private readonly pending: Array<BlkPtr[] | undefined>;
  private readonly done: number[];
  private top: BlkPtr | null = null;

  constructor(private readonly zio: ZioWriter, readonly nblocks: number, readonly blksz: number, private readonly type: number) {
    if (nblocks < 1) throw new Error('a planned object has at least one block');
    this.nlevels = plannedLevels(nblocks);
    this.start = zio.alloc.position;
    // (arrays of their final length: one grown by push() takes room for 17
    // at once, and a file waiting to be copied keeps these while it waits)
    this.levels = new Array<LevelRuns>(this.nlevels);
    this.done = new Array<number>(this.nlevels).fill(0);
    // a level's list is made at its first pointer
    this.pending = new Array<BlkPtr[] | undefined>(this.nlevels).fill(undefined);
    for (let level = 0, n = nblocks; level < this.nlevels; level++, n = Math.ceil(n / PER_IND)) {
      const size = level === 0 ? blksz : IND_SIZE;
      const runs = new LevelRuns(size, zio.alloc.asize(size));
      for (let i = 0; i < n; i++) runs.add(zio.alloc.alloc(size).offset);
      this.levels[level] = runs;
    }
    this.end = zio.alloc.position;
  }

  /** The image offset (past the front labels) of level-0 block `i`. */
  dataOffset(i: number): number {
    return VDEV_LABEL_START_SIZE + this.levels[0]!.offset(i);
  }

  /** Level-0 blocks whose checksums are in: the next push is block `pushed`. */
  get pushed(): number {
    return this.done[0]!;
  }

  /** The next level-0 block's checksum (32 bytes), in block order; its indirect blocks are written as they fill. */
  push(cksum: Uint8Array): void {
    const i = this.done[0]!++;
    if (i >= this.nblocks) throw new Error(`block ${i} of a planned object of ${this.nblocks}`);
    this.add(0, this.bp(0, i, 1, cksum));
  }

  /**
   * After the last push: write the partial indirect blocks, charge every
   * block to the object set (`charge`), and return the top block pointer.
   */
  finish(charge = true): PlannedTop {
    if (this.done[0] !== this.nblocks) throw new Error(`got ${this.done[0]} of ${this.nblocks} blocks`);
    for (let level = 0; level < this.nlevels - 1; level++) {
      if ((this.pending[level]?.length ?? 0) > 0) this.flush(level);
    }
    let asize = 0, psize = 0, blocks = 0;
    for (const l of this.levels) {
      asize += l.count * l.asize;
      psize += l.count * l.size;
      blocks += l.count;
    }
    if (charge) {
      const ch = this.zio.charge;
      ch.asize += asize; ch.psize += psize; ch.lsize += psize; ch.blocks += blocks;
    }
    return { bp: this.top!, nlevels: this.nlevels, maxblkid: this.nblocks - 1, asize, psize, lsize: psize };
  }

  private add(level: number, bp: BlkPtr): void {
    if (level === this.nlevels - 1) {
      this.top = bp;
      return;
    }
    const list = (this.pending[level] ??= []);
    list.push(bp);
    if (list.length === PER_IND) this.flush(level);
  }

  /** Write the indirect block above the pending pointers of `level`. */
  private flush(level: number): void {
    const kids = this.pending[level]!;
    this.pending[level] = [];
    const block = indirectBlock(kids, IND_SIZE);
    let fill = 0;
    for (const k of kids) fill += k.fill;
    const j = this.done[level + 1]!++;
    this.zio.image.write(VDEV_LABEL_START_SIZE + this.levels[level + 1]!.offset(j), block);
    this.add(level + 1, this.bp(level + 1, j, fill, fletcher4(block)));
  }

  private bp(level: number, i: number, fill: number, cksum: Uint8Array): BlkPtr {
    const l = this.levels[level]!;
    return {
      dva: { vdev: 0, offset: l.offset(i), asize: l.asize },
      lsize: l.size, psize: l.size, comp: COMP_OFF, cksumType: CKSUM_FLETCHER4,
      type: this.type, level, birth: this.zio.txg, fill, cksum: cksum.slice(),
    };
  }
}
