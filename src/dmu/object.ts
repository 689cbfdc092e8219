// Writing one DMU object's data: level-0 blocks arrive in order and the tree
// of indirect blocks above them is built as they come, so a file of any size
// needs only one partial indirect block per level in memory.
import { BlkPtr, BP_SIZE, encodeBp, HOLE, isHole } from '../zio/blkptr.js';
import { SpaceAccount, ZioWriter } from '../zio/writer.js';
import { Dnode, DN_MAX_INDBLKSHIFT } from './dnode.js';

export const INDIRECT_BLOCK_SIZE = 2 ** DN_MAX_INDBLKSHIFT;
export const BPS_PER_INDIRECT = INDIRECT_BLOCK_SIZE / BP_SIZE; // 1024

/** Levels needed to address nblocks level-0 blocks from nblkptr top pointers. */
export function levelsFor(nblocks: number, nblkptr: number): number {
  let levels = 1;
  let cap = nblkptr;
  while (cap < nblocks) {
    cap *= BPS_PER_INDIRECT;
    levels++;
  }
  return levels;
}

// One indirect block's worth of scratch for every object: a 128 KiB array
// per indirect block was an mmap, 32 page faults and a munmap each (malloc
// maps allocations that large), ~0.2 s on /usr's 2,400 files over a record.
let scratch: Uint8Array | null = null;
/** Bytes of the scratch the last indirect block used (the rest is zeros). */
let scratchUsed = 0;

/**
 * An indirect block of `size` bytes (128 KiB unless given) holding these
 * block pointers, zeros after them, in the shared scratch: valid until the
 * next call (the writes it goes to take its bytes before they return).
 */
export function indirectBlock(bps: readonly BlkPtr[], size = INDIRECT_BLOCK_SIZE): Uint8Array {
  if (bps.length * BP_SIZE > size) throw new Error(`${bps.length} block pointers in an indirect block of ${size} bytes`);
  scratch ??= new Uint8Array(INDIRECT_BLOCK_SIZE);
  scratch.fill(0, 0, scratchUsed);
  for (let i = 0; i < bps.length; i++) encodeBp(bps[i]!, scratch, i * BP_SIZE);
  scratchUsed = bps.length * BP_SIZE;
  return size === INDIRECT_BLOCK_SIZE ? scratch : scratch.subarray(0, size);
}

export class ObjectWriter {
  // pending[k] holds the block pointers of level k waiting for their parent
  private pending: BlkPtr[][];
  private nextBlkid = 0;
  private lastNonHole = -1;
  readonly acct = new SpaceAccount();

  /** dataComp: compression of level-0 blocks (default: the metadata policy). */
  constructor(private readonly zio: ZioWriter, readonly dn: Dnode, readonly nlevels: number, private readonly dataComp?: number) {
    this.pending = [];
    for (let i = 0; i < nlevels; i++) this.pending.push([]);
  }

  /** Append the next level-0 block (data.length must equal the object's block size; zeros from `zeroFrom` on, see ZioWriter.writeBlock). */
  push(data: Uint8Array, fill = 1, pre?: Uint8Array | null, zeroFrom = data.length): void {
    const bp = this.zio.writeBlock(data, this.dn.type, 0, fill, this.acct, this.dataComp, pre, zeroFrom);
    this.pushBp(bp);
  }

  /** Append a hole as the next level-0 block. */
  pushHole(): void {
    this.pushBp(HOLE);
  }

  private pushBp(bp: BlkPtr): void {
    if (!isHole(bp)) this.lastNonHole = this.nextBlkid;
    this.nextBlkid++;
    this.add(0, bp);
  }

  private add(level: number, bp: BlkPtr): void {
    const list = this.pending[level]!;
    list.push(bp);
    if (level === this.nlevels - 1) {
      if (list.length > this.dn.nblkptr) throw new Error(`object overflows ${this.nlevels} levels`);
      return;
    }
    if (list.length === BPS_PER_INDIRECT) this.flushLevel(level);
  }

  private flushLevel(level: number): void {
    const list = this.pending[level]!;
    this.pending[level] = [];
    let fill = 0;
    let allHoles = true;
    for (const bp of list) {
      fill += bp.fill;
      if (!isHole(bp)) allHoles = false;
    }
    if (allHoles) {
      this.add(level + 1, HOLE);
      return;
    }
    // (writeBlock takes its bytes before it returns: compressed, or copied
    // into the image writer's ring, so the scratch is free again)
    this.add(level + 1, this.zio.writeBlock(indirectBlock(list), this.dn.type, level + 1, fill, this.acct));
  }

  /** Write the partial indirect blocks and fill in the dnode's tree fields. */
  finish(): Dnode {
    for (let level = 0; level < this.nlevels - 1; level++) {
      if (this.pending[level]!.length > 0) this.flushLevel(level);
    }
    const top = this.pending[this.nlevels - 1]!;
    const dn = this.dn;
    dn.nlevels = this.nlevels;
    while (top.length < dn.nblkptr) top.push(HOLE);
    dn.blkptr = top;
    dn.maxblkid = Math.max(0, this.lastNonHole);
    dn.used = this.acct.asize;
    return dn;
  }
}

/** Write a whole small object from in-memory blocks (all of size dn.datablksz). */
export function writeObject(zio: ZioWriter, dn: Dnode, blocks: Uint8Array[], acct?: SpaceAccount): Dnode {
  const w = new ObjectWriter(zio, dn, levelsFor(blocks.length, dn.nblkptr));
  for (const b of blocks) w.push(b);
  const out = w.finish();
  acct?.add(w.acct);
  return out;
}
