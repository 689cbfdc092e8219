// Host files the image writer copies into place itself. A file whose blocks
// were all placed up front (dmu/planned.ts) need not pass through the build
// thread at all: the build posts it as chunks of a few blocks (the blocks'
// image offsets and where they are in the file), and whichever thread is
// free takes the next chunk: the image writer between ring slots, or the
// build when it would otherwise wait for the writer or has nothing left to
// walk. The taker reads the chunk with one read, checksums each block,
// writes it with one pwrite per contiguous run and leaves the checksums in
// the chunk's slot, where the build collects them, in order, to build the
// file's indirect blocks. The build, though, leaves its chunks' writes to
// the writer (STAGE_SLOTS), so only one thread writes into the image
// (but for chunks of one block larger than a stage slot, records over
// 512 KiB, which the build still copies whole). So big files (the
// writer's work) overlap small ones (the build's), and neither thread
// waits on the other while the other has work it could share.
//
// The chunk table lives in the image ring's shared memory (image-ring.ts).
// A chunk's file is named by its job number, and each job's path lies in a
// slot of its own there (a job is always collected before its slot is
// used again), so no message goes per file.

import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { FLETCHER4_CKSUM_SIZE as CKSUM_BYTES, fletcher4Into, forgetMemory, forgetScratch, inPlaceScratch } from '../zio/fletcher4.js';

/**
 * Chunk slots in the table: chunks posted and not yet collected. The table
 * is the image writer's backlog: up to 128 MiB of big files posted while
 * the build walks on through small ones, and still being copied while the
 * build writes the metadata (1024 slots measured no faster on /usr, for
 * ~2 MB more at the peak).
 */
export const COPY_CHUNKS = 256;
/** Job slots (paths): files posted and not yet collected. */
export const COPY_JOBS = 256;
/** Blocks per chunk at most, and bytes per chunk the poster aims at (1 MiB: no faster on /usr, ~2 MB more RSS). */
export const CHUNK_BLOCKS = 16;
export const CHUNK_BYTES = 512 * 1024;
/**
 * The longest host path a job can name, in bytes: nearly all are shorter,
 * and the few longer ones (up to PATH_MAX) are read by the build instead.
 */
export const COPY_PATH_BYTES = 512;

// control words
const POSTED = 0; // chunks posted so far
const CLAIMED = 1; // chunks taken so far (by either thread)
const STAGED = 2; // chunks the build read and left for the writer to write, so far
const UNSTAGED = 3; // of those, written so far
const STAGE_ID = 4; // the adopted buffer the staged chunks lie in
const CTRL_WORDS = 8;
// per chunk: description words (job, first block, block count, block size, file size, then the image offsets)
const D_JOB = 0, D_FIRST = 1, D_COUNT = 2, D_BLKSZ = 3, D_SIZE = 4, D_OFFS = 5;
const DESC_WORDS = D_OFFS + CHUNK_BLOCKS;

/**
 * How a chunk ended (its status word); the errno word holds Node's
 * (negative) errno for the two errno kinds, and for CHUNK_BUG the length of
 * the exception's message, which takes the place of the chunk's checksums.
 */
export const CHUNK_OK = 0;
export const CHUNK_SHRANK = 1;
export const CHUNK_SOURCE_ERROR = 2;
export const CHUNK_IMAGE_ERROR = 3;
export const CHUNK_BUG = 4;

/**
 * Chunks the build can have read and left for the writer at once. The
 * build does not write into the image while the writer thread does: two
 * threads writing one file contend for its inode lock in the kernel,
 * spinning (0.3-0.8 s of CPU on /usr in runs where the build copied much,
 * and 2.2 -> 2.9 s of system time for 4.8 GB copied by two threads into
 * one tmpfs file rather than two), so the build reads and checksums a
 * chunk and the writer writes it from where it was read.
 */
export const STAGE_SLOTS = 4;

export const COPY_RING_BYTES = CTRL_WORDS * 4 + COPY_CHUNKS * 4 + COPY_CHUNKS * 8 + COPY_CHUNKS * DESC_WORDS * 8 + COPY_CHUNKS * CHUNK_BLOCKS * CKSUM_BYTES
  + COPY_JOBS * 4 + COPY_JOBS * COPY_PATH_BYTES + STAGE_SLOTS * 4;

export interface CopyRing {
  ctrl: Int32Array;
  /** Per slot: the number of the chunk done there, plus one (0: none yet). */
  done: Int32Array;
  /** Per slot: status and errno. */
  status: Int32Array;
  desc: Float64Array;
  cksums: Uint8Array;
  /** Per job slot: the length of its path, and the path's bytes. */
  pathLen: Int32Array;
  paths: Uint8Array;
  /** Per stage slot: the chunk staged there. */
  staged: Int32Array;
}

export function mapCopyRing(sab: SharedArrayBuffer, off: number): CopyRing {
  const ctrl = new Int32Array(sab, off, CTRL_WORDS);
  off += CTRL_WORDS * 4;
  const done = new Int32Array(sab, off, COPY_CHUNKS);
  off += COPY_CHUNKS * 4;
  const status = new Int32Array(sab, off, COPY_CHUNKS * 2);
  off += COPY_CHUNKS * 8;
  const desc = new Float64Array(sab, off, COPY_CHUNKS * DESC_WORDS);
  off += COPY_CHUNKS * DESC_WORDS * 8;
  const cksums = new Uint8Array(sab, off, COPY_CHUNKS * CHUNK_BLOCKS * CKSUM_BYTES);
  off += COPY_CHUNKS * CHUNK_BLOCKS * CKSUM_BYTES;
  const pathLen = new Int32Array(sab, off, COPY_JOBS);
  off += COPY_JOBS * 4;
  const paths = new Uint8Array(sab, off, COPY_JOBS * COPY_PATH_BYTES);
  off += COPY_JOBS * COPY_PATH_BYTES;
  const staged = new Int32Array(sab, off, STAGE_SLOTS);
  return { ctrl, done, status, desc, cksums, pathLen, paths, staged };
}

/** The bytes of a path as open() takes it. */
export function pathBytes(path: string | Uint8Array): Uint8Array {
  return typeof path === 'string' ? Buffer.from(path) : path;
}

/** Whether a job can name this path (COPY_PATH_BYTES). */
export function fitsJobPath(path: string | Uint8Array): boolean {
  return (typeof path === 'string' ? Buffer.byteLength(path) : path.length) <= COPY_PATH_BYTES;
}

/** Name job `job`'s file (its slot must be free: every chunk of the job before it in the slot collected). */
export function setJobPath(ring: CopyRing, job: number, path: Uint8Array): void {
  if (path.length > COPY_PATH_BYTES) throw new RangeError(`copy job path of ${path.length} bytes`);
  const slot = job % COPY_JOBS;
  ring.paths.set(path, slot * COPY_PATH_BYTES);
  // (published with the job's first chunk: postChunk's store of POSTED)
  ring.pathLen[slot] = path.length;
}

/** The path of job `job`'s file, as a Buffer open() takes whatever its bytes. */
function jobPath(ring: CopyRing, job: number): Buffer {
  const slot = job % COPY_JOBS;
  const at = slot * COPY_PATH_BYTES;
  return Buffer.from(ring.paths.subarray(at, at + ring.pathLen[slot]!));
}

/** Take the next chunk no thread has taken: its number, or -1. */
function claimChunk(ring: CopyRing): number {
  for (;;) {
    const c = Atomics.load(ring.ctrl, CLAIMED);
    if (c >= Atomics.load(ring.ctrl, POSTED)) return -1;
    if (Atomics.compareExchange(ring.ctrl, CLAIMED, c, c + 1) === c) return c;
  }
}

/** Describe chunk `seq` (its slot must be free) and make it takeable. */
export function postChunk(ring: CopyRing, seq: number, job: number, first: number, count: number, blksz: number, size: number, offsets: (i: number) => number): void {
  const slot = seq % COPY_CHUNKS;
  const d = slot * DESC_WORDS;
  const desc = ring.desc;
  desc[d + D_JOB] = job;
  desc[d + D_FIRST] = first;
  desc[d + D_COUNT] = count;
  desc[d + D_BLKSZ] = blksz;
  desc[d + D_SIZE] = size;
  for (let b = 0; b < count; b++) desc[d + D_OFFS + b] = offsets(first + b);
  Atomics.store(ring.ctrl, POSTED, seq + 1);
}

/** The job a posted chunk belongs to. */
export function chunkJob(ring: CopyRing, seq: number): number {
  return ring.desc[(seq % COPY_CHUNKS) * DESC_WORDS + D_JOB]!;
}

/** The chunk's first block and block count. */
export function chunkBlocks(ring: CopyRing, seq: number): { first: number; count: number } {
  const d = (seq % COPY_CHUNKS) * DESC_WORDS;
  return { first: ring.desc[d + D_FIRST]!, count: ring.desc[d + D_COUNT]! };
}

/** Where a chunk slot's checksums (or its CHUNK_BUG message) begin in `cksums`. */
export function cksumsAt(slot: number): number {
  return slot * CHUNK_BLOCKS * CKSUM_BYTES;
}

/** The message of a chunk that ended in CHUNK_BUG. */
export function chunkBugMessage(ring: CopyRing, seq: number): string {
  const slot = seq % COPY_CHUNKS;
  const at = cksumsAt(slot);
  return Buffer.from(ring.cksums.subarray(at, at + ring.status[slot * 2 + 1]!)).toString();
}

export function chunkDone(ring: CopyRing, seq: number): boolean {
  return Atomics.load(ring.done, seq % COPY_CHUNKS) === seq + 1;
}

/** Whether the build's stage is full: every slot holds a chunk the writer has not written yet. */
export function stageFull(ring: CopyRing): boolean {
  return Atomics.load(ring.ctrl, STAGED) - Atomics.load(ring.ctrl, UNSTAGED) >= STAGE_SLOTS;
}

/** Wait up to `ms` for the writer to write a staged chunk (a stage slot to come free). */
export function waitStage(ring: CopyRing, ms: number): void {
  const v = Atomics.load(ring.ctrl, UNSTAGED);
  if (Atomics.load(ring.ctrl, STAGED) - v >= STAGE_SLOTS) Atomics.wait(ring.ctrl, UNSTAGED, v, ms);
}

/** Wait up to `ms` for chunk `seq` to be done. */
export function waitChunk(ring: CopyRing, seq: number, ms: number): void {
  const slot = seq % COPY_CHUNKS;
  const v = Atomics.load(ring.done, slot);
  if (v !== seq + 1) Atomics.wait(ring.done, slot, v, ms);
}

/** Where staged chunks lie in their memory: past the checksum kernel's reserved bytes, page-aligned. */
const STAGE_OFF = 4096;
const WASM_PAGE = 65536;

/**
 * The memory the build reads chunks into for the writer to write (see
 * STAGE_SLOTS): shared, so the writer writes from it, and a checksum
 * kernel's (checksumInPlace), so blocks are checksummed where they lie.
 */
export function allocStage(): WebAssembly.Memory {
  const pages = Math.ceil((STAGE_OFF + STAGE_SLOTS * CHUNK_BYTES) / WASM_PAGE);
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
}

/** Name the adopted buffer (ImageFile.adopt) the stage memory is, for the writer. */
export function setStage(ring: CopyRing, id: number): void {
  Atomics.store(ring.ctrl, STAGE_ID, id);
}

/** Mark chunk `seq` done with this status, and wake whoever waits for it. */
function finish(ring: CopyRing, seq: number, status: number, errno: number): void {
  const slot = seq % COPY_CHUNKS;
  ring.status[slot * 2] = status;
  ring.status[slot * 2 + 1] = errno;
  Atomics.store(ring.done, slot, seq + 1);
  Atomics.notify(ring.done, slot);
}

/**
 * Write a chunk's blocks from `buf` (block 0 at `base`): one pwrite per
 * run of blocks that follow each other in the image. The zeros past the
 * end of the file are not written (the image file reads as zeros there: it
 * is new, and the space is allocated once). Stops early if `quit()`.
 */
function writeRuns(ring: CopyRing, slot: number, fd: number, buf: Uint8Array, base: number, quit: () => boolean): void {
  const desc = ring.desc;
  const d = slot * DESC_WORDS;
  const first = desc[d + D_FIRST]!, count = desc[d + D_COUNT]!, blksz = desc[d + D_BLKSZ]!;
  const len = Math.min(desc[d + D_SIZE]!, (first + count) * blksz) - first * blksz;
  let b = 0;
  while (b < count) {
    if (quit()) return; // (nobody will collect it)
    const at = desc[d + D_OFFS + b]!;
    let e = b + 1;
    while (e < count && desc[d + D_OFFS + e] === at + (e - b) * blksz) e++;
    const from = base + b * blksz;
    const n = Math.min(e * blksz, len) - b * blksz;
    let done = 0;
    try {
      while (done < n) done += writeSync(fd, buf, from + done, n - done, at + done);
    } catch (err) {
      throw Object.assign(err as object, { source: false });
    }
    b = e;
  }
}

/**
 * The writer's side of staging: write the oldest chunk the build staged
 * (from `source(id)`, the stage memory) and mark it done; false: none is
 * staged. With `skip` (the build quit, or a write failed) it is only
 * marked done.
 */
export function writeStaged(ring: CopyRing, fd: number, source: (id: number) => Uint8Array, skip: () => boolean): boolean {
  const n = Atomics.load(ring.ctrl, UNSTAGED);
  if (n === Atomics.load(ring.ctrl, STAGED)) return false;
  const k = n % STAGE_SLOTS;
  const seq = ring.staged[k]!;
  let status = CHUNK_OK, errno = 0;
  if (!skip()) {
    try {
      writeRuns(ring, seq % COPY_CHUNKS, fd, source(Atomics.load(ring.ctrl, STAGE_ID)), STAGE_OFF + k * CHUNK_BYTES, skip);
    } catch (e) {
      const err = e as { errno?: unknown };
      if (typeof err.errno !== 'number') throw e;
      status = CHUNK_IMAGE_ERROR;
      errno = err.errno;
    }
  }
  // (the slot is free before the chunk is done: the build counts slots first)
  Atomics.store(ring.ctrl, UNSTAGED, n + 1);
  Atomics.notify(ring.ctrl, UNSTAGED);
  finish(ring, seq, status, errno);
  return true;
}

/** copyChunk's answer for a chunk left for the writer to write. */
const STAGED_CHUNK = -1;

/**
 * Copies chunks: a thread's own reader of the files (one open at a time)
 * and its own buffer, in a checksum kernel's memory so that blocks are
 * checksummed where they were read to. With a stage (the build, when there
 * is a writer thread), chunks are read into the stage and left for the
 * writer to write (see STAGE_SLOTS).
 */
export class ChunkCopier {
  private fd = -1;
  private fdJob = -1;
  private buf: Uint8Array | null = null;
  private readonly stageView: Uint8Array | null;

  /** Whether this copier leaves its writes to the writer. */
  get staging(): boolean {
    return this.stage !== null;
  }

  /** `quit`: the build gave up on the image (its descriptor is about to close): stop before writing. */
  constructor(private readonly ring: CopyRing, private readonly imageFd: number, private readonly quit: () => boolean = () => false, private readonly stage: WebAssembly.Memory | null = null) {
    this.stageView = stage === null ? null : new Uint8Array(stage.buffer, STAGE_OFF, STAGE_SLOTS * CHUNK_BYTES);
  }

  /** Take the next chunk nobody has taken and copy it; false: there was none (or the stage is full). */
  copyNext(): boolean {
    const ring = this.ring;
    if (this.stage !== null && stageFull(ring)) return false;
    const c = claimChunk(ring);
    if (c < 0) return false;
    this.copy(c);
    return true;
  }

  /** Copy chunk `seq` (taken by this thread) and mark it done (or staged), whatever happened. Never throws. */
  private copy(seq: number): void {
    const ring = this.ring;
    const slot = seq % COPY_CHUNKS;
    let status = CHUNK_OK, errno = 0;
    try {
      status = this.copyChunk(slot);
    } catch (e) {
      const err = e as { errno?: unknown; source?: boolean };
      if (typeof err.errno === 'number') {
        status = err.source === false ? CHUNK_IMAGE_ERROR : CHUNK_SOURCE_ERROR;
        errno = err.errno;
      } else {
        status = CHUNK_BUG;
        // (the message where the checksums would be: the build reports it)
        const msg = Buffer.from(String(e instanceof Error ? e.message : e)).subarray(0, CHUNK_BLOCKS * CKSUM_BYTES);
        ring.cksums.set(msg, cksumsAt(slot));
        errno = msg.length;
      }
    }
    if (status === STAGED_CHUNK) {
      // only the build stages: STAGED is its own to bump
      const n = ring.ctrl[STAGED]!;
      ring.staged[n % STAGE_SLOTS] = seq;
      Atomics.store(ring.ctrl, STAGED, n + 1);
      return;
    }
    finish(ring, seq, status, errno);
  }

  private copyChunk(slot: number): number {
    const desc = this.ring.desc;
    const d = slot * DESC_WORDS;
    const job = desc[d + D_JOB]!, first = desc[d + D_FIRST]!, count = desc[d + D_COUNT]!;
    const blksz = desc[d + D_BLKSZ]!, size = desc[d + D_SIZE]!;
    const fd = this.open(job);
    const pos = first * blksz;
    const len = Math.min(size, (first + count) * blksz) - pos;
    const span = count * blksz;
    // (a chunk of one block larger than a stage slot is copied as before)
    const staging = this.stageView !== null && span <= CHUNK_BYTES;
    let buf: Uint8Array, base = 0;
    if (staging) {
      buf = this.stageView;
      base = (this.ring.ctrl[STAGED]! % STAGE_SLOTS) * CHUNK_BYTES;
    } else {
      if (this.buf === null || this.buf.length < span) {
        if (this.buf !== null) forgetScratch(this.buf);
        this.buf = inPlaceScratch(Math.max(span, CHUNK_BYTES));
      }
      buf = this.buf;
    }
    let got = 0;
    while (got < len) {
      const n = readSync(fd, buf, base + got, len - got, pos + got);
      if (n === 0) return CHUNK_SHRANK;
      got += n;
    }
    buf.fill(0, base + len, base + span);
    const cks = this.ring.cksums;
    const at = cksumsAt(slot);
    for (let b = 0; b < count; b++) fletcher4Into(buf.subarray(base + b * blksz, base + (b + 1) * blksz), cks, at + b * CKSUM_BYTES);
    if (staging) return STAGED_CHUNK;
    writeRuns(this.ring, slot, this.imageFd, buf, 0, this.quit);
    return CHUNK_OK;
  }

  private open(job: number): number {
    if (this.fdJob === job) return this.fd;
    this.closeFile();
    this.fd = openSync(jobPath(this.ring, job), 'r');
    this.fdJob = job;
    return this.fd;
  }

  private closeFile(): void {
    if (this.fd >= 0) {
      try { closeSync(this.fd); } catch { /* closed */ }
    }
    this.fd = -1;
    this.fdJob = -1;
  }

  /** Close the file being read and let the buffer go. */
  close(): void {
    this.closeFile();
    if (this.buf !== null) forgetScratch(this.buf);
    this.buf = null;
    if (this.stage !== null) forgetMemory(this.stage);
  }
}
