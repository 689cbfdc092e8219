// The build's side of the copy ring (copy-ring.ts): it posts each file as
// chunks, takes chunks itself when it has nothing better to do, and
// collects the finished ones in order, handing each file its blocks'
// checksums as they come (in block order: its indirect blocks are built
// as they fill, so nothing is kept per block).

import {
  CHUNK_BLOCKS, CHUNK_BYTES, CHUNK_OK, ChunkCopier, chunkBlocks, chunkDone, chunkJob, COPY_CHUNKS, COPY_JOBS, type CopyRing, pathBytes, postChunk,
  setJobPath, waitChunk,
} from './copy-ring.js';
import { FLETCHER4_CKSUM_SIZE as CKSUM_BYTES } from '../zio/fletcher4.js';

export interface CopyJob {
  path: string | Uint8Array;
  size: number;
  blksz: number;
  nblocks: number;
  /** The image offset of block `i`. */
  offset(i: number): number;
  /** Blocks first.. are in the image: their checksums, 32 bytes each (a view valid during the call). Called in block order. */
  blocks(first: number, cksums: Uint8Array): void;
  /** Every block is in the image (after the last blocks()). */
  done(): void;
  /** A chunk failed (a copy-ring CHUNK_* status and Node's errno): the error to throw. */
  failed(status: number, errno: number): Error;
}

interface LiveJob {
  job: CopyJob;
  /** Chunks not collected yet. */
  left: number;
}

export interface CopyPeer {
  /** Wake the writer: chunks are there to take. */
  wake(): void;
  /** Throw if the writer thread has failed (it may hold a chunk it will never finish). */
  check(): void;
}

export class CopyQueue {
  private readonly jobs = new Map<number, LiveJob>();
  private nextJob = 0;
  private posted = 0;
  /** The next chunk to collect. */
  private head = 0;
  /** Per job slot: the last chunk of the job that had it (free once collected). */
  private readonly slotLast = new Array<number>(COPY_JOBS).fill(-1);
  private readonly copier: ChunkCopier;

  /** `peer`: the image writer that shares the chunks (null: this thread copies every chunk, as it posts it). */
  constructor(private readonly ring: CopyRing, imageFd: number, private readonly peer: CopyPeer | null) {
    this.copier = new ChunkCopier(ring, imageFd);
  }

  /** Post a file's blocks to be copied into place. */
  add(job: CopyJob): void {
    const seq = this.nextJob++;
    const per = Math.max(1, Math.min(CHUNK_BLOCKS, Math.floor(CHUNK_BYTES / job.blksz)));
    const live: LiveJob = { job, left: Math.ceil(job.nblocks / per) };
    this.jobs.set(seq, live);
    while (this.head <= this.slotLast[seq % COPY_JOBS]!) this.makeRoom();
    setJobPath(this.ring, seq, pathBytes(job.path));
    for (let first = 0; first < job.nblocks; first += per) {
      while (this.posted - this.head >= COPY_CHUNKS) this.makeRoom();
      postChunk(this.ring, this.posted++, seq, first, Math.min(per, job.nblocks - first), job.blksz, job.size, (i) => job.offset(i));
    }
    this.slotLast[seq % COPY_JOBS] = this.posted - 1;
    if (this.peer === null) {
      this.settle();
      return;
    }
    this.peer.wake();
  }

  /** Collect the chunks done so far, in order (files whose chunks are all in are done). */
  collect(): void {
    while (this.head < this.posted && chunkDone(this.ring, this.head)) this.take(this.head++);
  }

  /** Copy one chunk nobody has taken; false: there was none. */
  helpOne(): boolean {
    return this.copier.copyNext();
  }

  /** Copy or wait for every chunk posted, and collect them all. */
  settle(): void {
    this.settleUntil(() => false);
  }

  /** Collect until `enough()` (a file's data is there), copying or waiting meanwhile; at the latest when all are collected. */
  settleUntil(enough: () => boolean): void {
    for (;;) {
      this.collect();
      if (this.head === this.posted || enough()) return;
      if (!this.helpOne()) this.waitHead();
    }
  }

  /** Every chunk posted is collected (every file handed its checksums). */
  get settled(): boolean {
    return this.head === this.posted;
  }

  close(): void {
    this.copier.close();
  }

  /** The table (or a job slot) is full: collect the oldest chunk, copying one or waiting if need be. */
  private makeRoom(): void {
    const head = this.head;
    this.collect();
    if (this.head > head) return;
    if (!this.helpOne()) this.waitHead();
  }

  /** Wait for the oldest chunk, taken by the writer. */
  private waitHead(): void {
    this.peer?.check();
    waitChunk(this.ring, this.head, 1000);
  }

  private take(seq: number): void {
    const ring = this.ring;
    const slot = seq % COPY_CHUNKS;
    const job = chunkJob(ring, seq);
    const live = this.jobs.get(job)!;
    const status = ring.status[slot * 2]!;
    if (status !== CHUNK_OK) throw live.job.failed(status, ring.status[slot * 2 + 1]!);
    const { first, count } = chunkBlocks(ring, seq);
    const from = slot * CHUNK_BLOCKS * CKSUM_BYTES;
    live.job.blocks(first, ring.cksums.subarray(from, from + count * CKSUM_BYTES));
    if (--live.left === 0) {
      this.jobs.delete(job);
      live.job.done();
    }
  }
}
