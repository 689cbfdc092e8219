// The zio layer as a writer sees it: checksum a block, allocate space for it,
// write it, and hand back its block pointer. Every block of the image goes
// through here, so the space it takes is counted once, per object set.
import { ImageFile } from '../vdev/imagefile.js';
import { SpaceAllocator } from '../vdev/allocator.js';
import { VDEV_LABEL_START_SIZE } from '../vdev/geometry.js';
import { BlkPtr, CKSUM_FLETCHER4, COMP_OFF } from './blkptr.js';
import { fletcher4 } from './fletcher4.js';

/** Bytes charged to one object set (dsl: referenced, compressed, uncompressed). */
export class SpaceAccount {
  asize = 0;
  psize = 0;
  lsize = 0;
  blocks = 0;
  add(o: SpaceAccount): void {
    this.asize += o.asize; this.psize += o.psize; this.lsize += o.lsize; this.blocks += o.blocks;
  }
}

export class ZioWriter {
  /** The object set being built: every block written is charged to it too. */
  charge = new SpaceAccount();
  /** Blocks allocated ahead of time; while set, writes take them in order. */
  reserveQueue: { size: number; offset: number; asize: number }[] | null = null;

  constructor(readonly image: ImageFile, readonly alloc: SpaceAllocator, readonly txg: number) {}

  /**
   * Write one block. `data.length` is the logical size (a multiple of 512);
   * it is stored uncompressed, so psize = lsize.
   */
  writeBlock(data: Uint8Array, type: number, level: number, fill: number, acct: SpaceAccount): BlkPtr {
    const lsize = data.length;
    if (lsize === 0 || lsize % 512 !== 0) throw new Error(`bad block size ${lsize}`);
    let offset: number, asize: number;
    if (this.reserveQueue) {
      const r = this.reserveQueue.shift();
      if (!r || r.size !== lsize) throw new Error(`write of ${lsize} bytes does not match the reservation ${r?.size}`);
      ({ offset, asize } = r);
    } else {
      ({ offset, asize } = this.alloc.alloc(lsize));
    }
    this.image.write(VDEV_LABEL_START_SIZE + offset, data);
    for (const a of [acct, this.charge]) {
      a.asize += asize;
      a.psize += lsize;
      a.lsize += lsize;
      a.blocks++;
    }
    return {
      dva: { vdev: 0, offset, asize },
      lsize, psize: lsize, comp: COMP_OFF, cksumType: CKSUM_FLETCHER4,
      type, level, birth: this.txg, fill, cksum: fletcher4(data),
    };
  }
}
