// The zio layer as a writer sees it: checksum a block, allocate space for it,
// write it, and hand back its block pointer. Every block of the image goes
// through here, so the space it takes is counted once, per object set.
import { ImageFile } from '../vdev/imagefile.js';
import { SpaceAllocator } from '../vdev/allocator.js';
import { VDEV_LABEL_START_SIZE } from '../vdev/geometry.js';
import { BlkPtr, BPE_PAYLOAD_SIZE, CKSUM_FLETCHER4, COMP_OFF } from './blkptr.js';
import { compressBlock } from './compress.js';
import type { CompressPool } from './compress-pool.js';
import { BlockPipeline } from './pipeline.js';
import { DMU_OT_DNODE, DMU_OT_OBJSET } from '../dmu/types.js';
import { fletcher4 } from './fletcher4.js';
import { copyBytes } from '../util/bytes.js';

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

// The physical bytes of a compressed block (its stream, zeros to the sector)
// in one buffer for every block: the image takes its bytes before write()
// returns, and an array per block was most of the metadata pass's
// off-heap garbage, which the V8 heap does not see growing (RSS).
let physScratch = new Uint8Array(0);

/** `c` zero-padded to `psize` bytes, in physScratch: valid until the next call. */
function padded(c: Uint8Array, psize: number): Uint8Array {
  if (physScratch.length < psize) physScratch = new Uint8Array(Math.max(psize, 2 * physScratch.length));
  copyBytes(physScratch, c);
  physScratch.fill(0, c.length, psize);
  return physScratch.subarray(0, psize);
}

export class ZioWriter {
  #charge = new SpaceAccount();

  /** The object set being built: every block written is charged to it too. */
  get charge(): SpaceAccount {
    return this.#charge;
  }

  /** (Blocks still in the pipeline are placed first: they belong to the account being left.) */
  set charge(acct: SpaceAccount) {
    this.#pipeline?.drain();
    this.#charge = acct;
  }
  /** Blocks allocated ahead of time; while set, writes take them in order. */
  reserveQueue: { size: number; offset: number; asize: number }[] | null = null;

  /** Compression for metadata (lz4 when the pool has it, else none). */
  metaComp = COMP_OFF;
  /** Whether small compressed blocks may live inside their block pointer (embedded_data). */
  embedded = false;
  /** Blocks stored embedded, for the feature refcount and summaries. */
  embeddedCount = 0;

  constructor(readonly image: ImageFile, readonly alloc: SpaceAllocator, readonly txg: number) {}

  #pool: CompressPool | null = null;
  #pipeline: BlockPipeline | null = null;

  /** Worker threads for data compression (none: compress inline). */
  get pool(): CompressPool | null {
    return this.#pool;
  }

  /** The compressed data blocks in flight, placed in order (null without a pool). */
  get pipeline(): BlockPipeline | null {
    return this.#pipeline;
  }

  /** Compress data with `pool`; its blocks are placed before anything else takes space. */
  usePool(pool: CompressPool): void {
    const pipeline = new BlockPipeline(pool);
    this.#pool = pool;
    this.#pipeline = pipeline;
    this.alloc.beforeUse = () => pipeline.drain();
  }

  /**
   * Write one block. `data.length` is the logical size (a multiple of 512).
   * `pre`, when given, is the block already compressed with `comp` (null:
   * not worth it), from the worker pool. `zeroFrom`: every byte of `data`
   * from there on is zero (a file's last block, padded); stored as it is,
   * those bytes are not written: space is allocated once and never reused
   * (bump allocation), so it still reads as zeros in the new image file.
   */
  writeBlock(data: Uint8Array, type: number, level: number, fill: number, acct: SpaceAccount, comp = this.metaComp, pre?: Uint8Array | null, zeroFrom = data.length): BlkPtr {
    const lsize = data.length;
    if (lsize === 0 || lsize % 512 !== 0) throw new Error(`bad block size ${lsize}`);
    // blocks written into reservations keep their size: no compression there
    let phys = data;
    let usedComp = COMP_OFF;
    if (comp !== COMP_OFF && !this.reserveQueue) {
      const c = pre !== undefined ? pre : compressBlock(comp, data);
      if (c) {
        if (this.embedded && level === 0 && c.length <= BPE_PAYLOAD_SIZE && type !== DMU_OT_DNODE && type !== DMU_OT_OBJSET) {
          this.embeddedCount++;
          for (const a of [acct, this.charge]) { a.lsize += lsize; a.psize += c.length; }
          return {
            dva: null, lsize, psize: c.length, comp, cksumType: 0, type, level, birth: this.txg, fill: 1,
            cksum: new Uint8Array(32), embedded: c.slice(),
          };
        }
        const psize = this.alloc.asize(c.length);
        if (psize < lsize) {
          phys = padded(c, psize);
          usedComp = comp;
        }
      }
    }
    return this.place(data.length, phys, usedComp, type, level, fill, acct, phys === data ? zeroFrom : phys.length);
  }

  /** `written`: how much of `data` to write (the rest is zeros the file already has). */
  private place(lsize: number, data: Uint8Array, comp: number, type: number, level: number, fill: number, acct: SpaceAccount, written = data.length): BlkPtr {
    const psize = data.length;
    let offset: number, asize: number;
    if (this.reserveQueue) {
      const r = this.reserveQueue.shift();
      if (!r || r.size !== psize) throw new Error(`write of ${psize} bytes does not match the reservation ${r?.size}`);
      ({ offset, asize } = r);
    } else {
      ({ offset, asize } = this.alloc.alloc(psize));
    }
    if (written > 0) this.image.write(VDEV_LABEL_START_SIZE + offset, written === data.length ? data : data.subarray(0, written));
    acct.asize += asize; acct.psize += psize; acct.lsize += lsize; acct.blocks++;
    const ch = this.charge;
    ch.asize += asize; ch.psize += psize; ch.lsize += lsize; ch.blocks++;
    return {
      dva: { vdev: 0, offset, asize },
      lsize, psize, comp, cksumType: CKSUM_FLETCHER4,
      type, level, birth: this.txg, fill, cksum: fletcher4(data),
    };
  }
}
