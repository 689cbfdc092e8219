// A regular file's data, written as it arrives: a record at a time, checksummed
// and placed, its indirect blocks built alongside. Inputs that can be read in
// any order (host files) are written when the writer reaches the file's
// object; a tar stream writes each member's data in archive order, before the
// tree is complete, and the dnode is assembled later from the FileData.

import { SpaceAccount, ZioWriter } from '../zio/writer.js';
import { newDnode } from '../dmu/dnode.js';
import { levelsFor, ObjectWriter } from '../dmu/object.js';
import { DMU_OT_PLAIN_FILE_CONTENTS } from '../dmu/types.js';
import { COMP_OFF } from '../zio/blkptr.js';
import { isAllZero } from '../zio/compress.js';
import { inPlaceScratch } from '../zio/fletcher4.js';

export const RECORDSIZE = 128 * 1024;

/** The bonus of the dnode a file's data is written under (its real dnode comes later): none, one array for all. */
const NO_BONUS = new Uint8Array(0);

/**
 * Everything a file's dnode needs from its data. Kept flat (numbers, and the
 * block pointer encoded in a shared slab): one lives per file until the
 * dnodes are written, so its size is most of the per-entry memory.
 */
export interface FileData {
  size: number;
  blksz: number;
  nlevels: number;
  maxblkid: number;
  used: number;
  /** Where the top block pointer is encoded in the writer's BpSlab. */
  bpSlot: number;
  /** Space charged: allocated, physical and logical bytes. */
  asize: number;
  psize: number;
  lsize: number;
  /** The allocator range the data was written into (bump allocation keeps it contiguous). */
  start: number;
  end: number;
}

// FileData's fields, in the order a FileDataSlab keeps them.
const FIELDS = ['size', 'blksz', 'nlevels', 'maxblkid', 'used', 'bpSlot', 'asize', 'psize', 'lsize', 'start', 'end'] as const;
const PER_CHUNK = 4096;

/**
 * The FileData of every file written ahead of its dnode, packed in typed
 * arrays: an object of eleven numbers per file (several of them boxed past
 * 2^31) was the largest thing a build held per entry.
 */
export class FileDataSlab {
  private chunks: Float64Array[] = [];
  private next = 0;

  /** Keep `d`; the source the inode takes from now on. */
  store(d: FileData): WrittenData {
    const i = this.next++;
    const c = Math.floor(i / PER_CHUNK);
    if (c === this.chunks.length) this.chunks.push(new Float64Array(PER_CHUNK * FIELDS.length));
    const chunk = this.chunks[c]!;
    const at = (i % PER_CHUNK) * FIELDS.length;
    for (let f = 0; f < FIELDS.length; f++) chunk[at + f] = d[FIELDS[f]!];
    return new WrittenData(this, i);
  }

  /** The FileData stored under `i` (a new object each time). */
  get(i: number): FileData {
    const chunk = this.chunks[Math.floor(i / PER_CHUNK)]!;
    const at = (i % PER_CHUNK) * FIELDS.length;
    return {
      size: chunk[at]!, blksz: chunk[at + 1]!, nlevels: chunk[at + 2]!, maxblkid: chunk[at + 3]!, used: chunk[at + 4]!,
      bpSlot: chunk[at + 5]!, asize: chunk[at + 6]!, psize: chunk[at + 7]!, lsize: chunk[at + 8]!, start: chunk[at + 9]!,
      end: chunk[at + 10]!,
    };
  }
}

/** A file's data source once its data is in the image: `{ kind: 'written', data }`, kept in a FileDataSlab. */
export class WrittenData {
  constructor(readonly slab: FileDataSlab, readonly index: number) {}

  get kind(): 'written' {
    return 'written';
  }

  get data(): FileData {
    return this.slab.get(this.index);
  }
}

/** The space a file's data took, as an account to add to its dataset's. */
export function fileAccount(d: FileData): SpaceAccount {
  const a = new SpaceAccount();
  a.asize = d.asize; a.psize = d.psize; a.lsize = d.lsize;
  return a;
}

/**
 * Block size like OpenZFS: a file that fits one record is one block of its
 * size rounded to a sector; larger files use full records, tail zero-padded.
 */
export function fileBlockSize(size: number, recordsize = RECORDSIZE): number {
  return size <= recordsize ? Math.max(512, Math.ceil(size / 512) * 512) : recordsize;
}

// The record a file's pieces are gathered into: one, reused from file to
// file (a fresh zeroed array per small file was most of the allocation of a
// tree of small files). Every gathered record is written out (copied into
// the image's ring, or into the compression queue) before the next one is
// gathered; a second writer open at the same time gets an array of its own.
// It lives in a checksum kernel's memory, so it is checksummed where it is
// gathered; made at the first small file, not when the module loads.
let scratch: Uint8Array | undefined;
let scratchInUse = false;

function claimScratch(size: number): Uint8Array {
  if (scratchInUse) return new Uint8Array(size);
  scratchInUse = true;
  if (scratch === undefined || scratch.length < size) scratch = inPlaceScratch(Math.max(size, RECORDSIZE));
  return scratch.subarray(0, size);
}

function releaseScratch(buf: Uint8Array): void {
  if (buf.buffer === scratch?.buffer) scratchInUse = false;
}

export class FileDataWriter {
  readonly blksz: number;
  private readonly nblocks: number;
  private readonly w: ObjectWriter;
  private buf: Uint8Array | undefined;
  private fillLen = 0;
  private received = 0;
  private readonly start: number;

  /** comp: the dataset's compression; with any, all-zero records become holes as in OpenZFS. */
  constructor(private readonly zio: ZioWriter, readonly size: number, recordsize = RECORDSIZE, private readonly comp = COMP_OFF) {
    this.start = zio.alloc.position;
    this.blksz = fileBlockSize(size, recordsize);
    this.nblocks = size === 0 ? 0 : Math.ceil(size / this.blksz);
    const dn = newDnode(DMU_OT_PLAIN_FILE_CONTENTS, this.blksz, 0, NO_BONUS, 1);
    this.w = new ObjectWriter(zio, dn, levelsFor(this.nblocks, 1), comp);
  }

  /** Feed the next bytes of the file (any chunking). */
  write(chunk: Uint8Array): void {
    if (this.received + chunk.length > this.size) throw new Error(`more data than the declared ${this.size} bytes`);
    this.received += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      if (this.fillLen === 0 && chunk.length - off >= this.blksz) {
        // a whole record in the caller's chunk: no copy
        this.pushBlock(chunk.subarray(off, off + this.blksz));
        off += this.blksz;
        continue;
      }
      this.buf ??= claimScratch(this.blksz);
      const n = Math.min(this.blksz - this.fillLen, chunk.length - off);
      this.buf.set(chunk.subarray(off, off + n), this.fillLen);
      this.fillLen += n;
      off += n;
      if (this.fillLen === this.blksz) this.flushBlock();
    }
  }

  /**
   * A whole block read straight into place by the caller (the fast path for
   * host files): `block` must be blksz bytes, zero-padded past the end of file.
   */
  writeBlock(block: Uint8Array, dataLen: number): void {
    if (this.fillLen !== 0) throw new Error('writeBlock after a partial write');
    this.received += dataLen;
    this.pushBlock(block);
  }

  // With a worker pool, records go on its ring as they come and are placed
  // in order as their results come back; a hole (all-zero record) queued
  // behind them waits its turn. true: a hole, false: a ring job.
  private order: boolean[] = [];
  private orderHead = 0;

  private pushBlock(block: Uint8Array): void {
    const zero = this.comp !== COMP_OFF && isAllZero(block);
    const pool = this.zio.pool;
    if (!pool || this.comp === COMP_OFF) {
      if (zero) this.w.pushHole();
      else this.w.push(block);
      return;
    }
    if (zero) {
      if (this.orderHead === this.order.length) this.w.pushHole();
      else this.order.push(true);
      return;
    }
    while (pool.full) this.retireOne();
    pool.submit(block, this.comp);
    this.order.push(false);
    // place what is ready without waiting for it
    while (this.orderHead < this.order.length && (this.order[this.orderHead] || pool.headDone)) this.retireOne();
  }

  private retireOne(): void {
    const hole = this.order[this.orderHead++]!;
    if (this.orderHead === this.order.length) {
      this.order = [];
      this.orderHead = 0;
    }
    if (hole) {
      this.w.pushHole();
      return;
    }
    const r = this.zio.pool!.retire();
    this.w.push(r.input, 1, r.output);
  }

  private flushPending(): void {
    while (this.orderHead < this.order.length) this.retireOne();
  }

  private flushBlock(): void {
    this.pushBlock(this.buf!);
    this.fillLen = 0;
  }

  get bytesReceived(): number {
    return this.received;
  }

  end(): FileData {
    if (this.received !== this.size) throw new Error(`got ${this.received} of ${this.size} bytes`);
    if (this.fillLen > 0) {
      this.buf!.fill(0, this.fillLen);
      this.flushBlock();
    }
    this.flushPending();
    if (this.buf) releaseScratch(this.buf);
    this.buf = undefined;
    const dn = this.w.finish();
    const a = this.w.acct;
    return {
      size: this.size, blksz: this.blksz, nlevels: dn.nlevels, maxblkid: dn.maxblkid,
      used: dn.used, bpSlot: this.zio.bpSlab.put(dn.blkptr[0]!), asize: a.asize, psize: a.psize, lsize: a.lsize,
      start: this.start, end: this.zio.alloc.position,
    };
  }
}
