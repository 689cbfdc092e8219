// The build's side of the copy ring (copy-ring.ts): it posts each file as
// chunks, takes chunks itself when it has nothing better to do, and
// collects the finished ones in order, handing each file its blocks'
// checksums as they come (in block order: its indirect blocks are built
// as they fill, so nothing is kept per block).

import {
  CHUNK_BLOCKS, CHUNK_BUG, CHUNK_BYTES, CHUNK_OK, ChunkCopier, chunkBugMessage, chunkBlocks, cksumsAt, chunkDone, chunkJob, COPY_CHUNKS, COPY_JOBS, type CopyRing, pathBytes, postChunk,
  setJobPath, stageFull, waitChunk, waitStage,
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
  /** A chunk failed (a copy-ring CHUNK_* status, Node's errno, and for CHUNK_BUG the exception's message): the error to throw. */
  failed(status: number, errno: number, message?: string): Error;
}

/** A job posted or waiting: its number, blocks per chunk, the next block to post, and the chunks not collected yet. */
interface LiveJob {
  seq: number;
  job: CopyJob;
  per: number;
  next: number;
  left: number;
}

/**
 * Files queued behind a full table, at most: the build walks on rather
 * than copying (a file waiting costs its job's few small objects), so the
 * copies it could not hand over fill the writer's time while the build
 * writes the metadata, where the writer had nothing to do. Past this many,
 * the build copies too, as it does when there is no writer thread.
 */
const MAX_WAITING = 4096;

export interface CopyPeer {
  /** Wake the writer: chunks are there to take. */
  wake(): void;
  /** Throw if the writer thread has failed (it may hold a chunk it will never finish), or the image was aborted. */
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
  /** Jobs waiting for room in the table, in the order they came, from waitFrom on; the first may be partly posted. */
  private waiting: Array<LiveJob | undefined> = [];
  private waitFrom = 0;
  private readonly copier: ChunkCopier;

  /**
   * `peer`: the image writer that shares the chunks (null: this thread
   * copies every chunk, as it posts it); `stage`: where this thread reads
   * the chunks it takes, for the writer to write (see STAGE_SLOTS).
   */
  constructor(private readonly ring: CopyRing, imageFd: number, private readonly peer: CopyPeer | null, stage: WebAssembly.Memory | null = null) {
    this.copier = new ChunkCopier(ring, imageFd, undefined, peer === null ? null : stage);
  }

  /** Queue a file's blocks to be copied into place; they are posted as the table has room. */
  add(job: CopyJob): void {
    const seq = this.nextJob++;
    const per = Math.max(1, Math.min(CHUNK_BLOCKS, Math.floor(CHUNK_BYTES / job.blksz)));
    const live: LiveJob = { seq, job, per, next: 0, left: Math.ceil(job.nblocks / per) };
    this.jobs.set(seq, live);
    this.waiting.push(live);
    if (this.peer === null) {
      this.settle();
      return;
    }
    // (what the writer finished since the last look makes room first)
    this.collect();
    while (this.waiting.length - this.waitFrom > MAX_WAITING) this.makeRoom();
  }

  /** Post the waiting jobs' chunks while the table has room, in order; wake the writer if any was. */
  private post(): void {
    const before = this.posted;
    while (this.waitFrom < this.waiting.length) {
      const q = this.waiting[this.waitFrom]!;
      const job = q.job;
      if (q.next === 0) {
        // named only when its first chunk can go in too (a full table is
        // looked at on every collect); its path's slot is free once the
        // job that had it is collected
        if (this.posted - this.head >= COPY_CHUNKS || this.head <= this.slotLast[q.seq % COPY_JOBS]!) break;
        setJobPath(this.ring, q.seq, pathBytes(job.path));
      }
      while (q.next < job.nblocks && this.posted - this.head < COPY_CHUNKS) {
        postChunk(this.ring, this.posted++, q.seq, q.next, Math.min(q.per, job.nblocks - q.next), job.blksz, job.size, (i) => job.offset(i));
        q.next += q.per;
      }
      if (q.next < job.nblocks) break;
      this.slotLast[q.seq % COPY_JOBS] = this.posted - 1;
      // a posted job is let go at once; the array is cut down only now and
      // then (not one shift per job)
      this.waiting[this.waitFrom++] = undefined;
    }
    if (this.waitFrom === this.waiting.length) {
      this.waiting.length = 0;
      this.waitFrom = 0;
    } else if (this.waitFrom >= 1024) {
      this.waiting = this.waiting.slice(this.waitFrom);
      this.waitFrom = 0;
    }
    if (this.posted > before) this.peer?.wake();
  }

  /** Collect the chunks done so far, in order (files whose chunks are all in are done). */
  collect(): void {
    while (this.head < this.posted && chunkDone(this.ring, this.head)) this.take(this.head++);
    if (this.waitFrom < this.waiting.length) this.post();
  }

  /** Copy one chunk nobody has taken (or read it for the writer to write); false: there was none, or no room to stage it. */
  helpOne(): boolean {
    this.peer?.check();
    if (!this.copier.copyNext()) return false;
    this.peer?.wake();
    return true;
  }

  /** Copy or wait for every chunk posted, and collect them all. */
  settle(): void {
    this.settleUntil(() => false);
  }

  /** Collect until `enough()` (a file's data is there), copying or waiting meanwhile; at the latest when all are collected. */
  settleUntil(enough: () => boolean): void {
    for (;;) {
      this.collect();
      if (this.settled || enough()) return;
      if (!this.helpOne()) this.waitHead();
    }
  }

  /** Every chunk posted is collected (every file handed its checksums). */
  get settled(): boolean {
    return this.head === this.posted && this.waitFrom === this.waiting.length;
  }

  close(): void {
    this.copier.close();
  }

  /** The table (or a job slot) is full: collect the oldest chunk, copying one or waiting if need be (collect posts more). */
  private makeRoom(): void {
    const head = this.head;
    this.collect();
    if (this.head > head) return;
    if (!this.helpOne()) this.waitHead();
  }

  /**
   * Wait for the oldest chunk, taken by the writer; or, when the stage is
   * full, for the writer to write a staged chunk: a slot free is more work
   * this thread can take (the oldest may be the writer's own for a while).
   */
  private waitHead(): void {
    this.peer?.check();
    if (this.copier.staging && stageFull(this.ring)) waitStage(this.ring, 1000);
    else waitChunk(this.ring, this.head, 1000);
  }

  private take(seq: number): void {
    const ring = this.ring;
    const slot = seq % COPY_CHUNKS;
    const job = chunkJob(ring, seq);
    const live = this.jobs.get(job)!;
    const status = ring.status[slot * 2]!;
    if (status !== CHUNK_OK) throw live.job.failed(status, ring.status[slot * 2 + 1]!, status === CHUNK_BUG ? chunkBugMessage(ring, seq) : undefined);
    const { first, count } = chunkBlocks(ring, seq);
    const from = cksumsAt(slot);
    live.job.blocks(first, ring.cksums.subarray(from, from + count * CKSUM_BYTES));
    if (--live.left === 0) {
      this.jobs.delete(job);
      live.job.done();
    }
  }
}
