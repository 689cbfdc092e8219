// Directory ZAPs built ahead, on another thread. The ZPL writer's pass over
// a dataset's objects runs alone once the data is in (the other core
// idles), and a third of it was building directory ZAPs: hashing names,
// ordering them, encoding micro or fat blocks. A directory's ZAP depends
// only on its entries (name, type, object number) and its salt, all known
// once the objects are numbered, so the writer sends the directories ahead
// of it in batches and takes each one's blocks when it reaches it. The
// blocks are written (placed, checksummed) by the writer as before, in the
// same order: the image is the same bytes with or without a host.
//
// The command line's main thread is the host: it only writes the image
// while the build thread works, and waits for the ring most of that pass.
// Batches and results travel through a few fixed slots of shared memory; a
// directory too large for a slot is built by the writer, as is every one
// without a host (the library, TSMAKEFS_IN_PROCESS=1, TSMAKEFS_DIRZAPS=0).

import type { MessagePort } from 'node:worker_threads';
import type { Inode, NodeType } from '../input/tree.js';
import { SeedSource } from '../util/seed.js';
import { buildZap, type ZapEntry } from '../zap/index.js';
import { packDirEntries, SCRATCH_KEEP } from '../zap/packed.js';
import { mzapBlockSize } from '../zap/microzap.js';
import { MZAP_ENT_LEN, MZAP_NAME_LEN, SPA_OLD_MAXBLOCKSIZE, ZAP_MAXNAMELEN } from '../zap/types.js';
import { zapFromPacked, zapSourceFromPacked, type ZapBlockSource } from '../zap/zap.js';

/** A directory's ZAP as the writer writes it: the object's block size and its blocks. */
export interface DirZap {
  blockSize: number;
  blocks: Uint8Array[];
}

/** Directory entry types (DT_* of <dirent.h>), the top 4 bits of a ZPL directory entry's value. */
const DT: Record<NodeType, number> = {
  fifo: 1, chardev: 2, dir: 4, blockdev: 6, file: 8, symlink: 10, socket: 12,
};

/** A ZPL directory's entry: its name, and the type and object number of what it names. */
export function dirEntries(ino: Inode): ZapEntry[] {
  return ino.entries!.map((e) => ({ name: e.name, value: (BigInt(DT[e.inode.type]) << 60n) | BigInt(objidOf(e)) }));
}

/**
 * An entry's object number. The ZPL writer numbers every inode before it
 * writes a directory; a library caller's tree that skipped that would
 * otherwise get entries naming object 0 (packed) or a bare TypeError.
 */
function objidOf(e: { name: Uint8Array; inode: Inode }): number {
  const id = e.inode.objid;
  if (id === undefined) throw new Error(`directory entry ${Buffer.from(e.name).toString()} has no object number`);
  return id;
}

// A salt only has to differ from ZAP to ZAP and be the same from build to
// build: one SHA-256 per dataset, then the object number mixed in
// (splitmix64's finalizer, a bijection of 64 bits). A SHA-256 per directory
// took ~13 us each in the writer's pass over the objects, which runs alone
// (~0.2 s on /usr).
const M64 = (1n << 64n) - 1n;
const LOW_63 = (1n << 63n) - 1n;
let salts: { seed: string; dataset: string; base: bigint } | undefined;

/** The salt of a dataset's ZAP object (every ZAP of a ZPL object set draws it so): non-zero, bit 63 clear. */
export function zapSalt(seed: SeedSource, dataset: string, objid: number): bigint {
  if (salts === undefined || salts.seed !== seed.text || salts.dataset !== dataset) {
    salts = { seed: seed.text, dataset, base: seed.derive(`zap-salts:${dataset}`) };
  }
  let x = (salts.base + BigInt(objid) * 0x9e3779b97f4a7c15n) & M64;
  x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & M64;
  x = (x ^ (x >> 31n)) & LOW_63;
  return x === 0n ? 1n : x;
}

// ---------------------------------------------------------------- shared memory
//
// SLOTS job areas, then SLOTS result areas, in one SharedArrayBuffer (the
// channels of a build's datasets, one open at a time, share it). A job: per
// directory its object number (f64) and entry count (u32), then per entry
// the DT type (u8), the object number (f64), the name's length (u16) and
// bytes (little-endian). A result: per directory a
// status (u32), the block size and block count (u32 each), then the blocks.
// Fixed slots rather than a buffer per batch: batches transferred as buffers
// of their own were garbage outside the JS heap that each side freed only at
// its next full collection (~15 MiB more at the peak on /usr).

export const SLOTS = 4;
export const JOB_SLOT = 64 * 1024;
export const RESULT_SLOT = 256 * 1024;
/** Bytes before a job's entries (object number, entry count) and before a result's blocks (status, block size, block count). */
const DIR_HEAD = 12;
/** Bytes before an entry's name (type, object number, name length). */
const ENTRY_HEAD = 11;
const BUILT = 0;
/** The host could not build it (bad entries): the writer builds it and meets the error. */
const FAILED = 1;
/** Its blocks do not fit what is left of the result slot: the writer builds it. */
const TOO_BIG = 2;

/** The job and result slots the channels use. */
export function allocDirZapMemory(): SharedArrayBuffer {
  return new SharedArrayBuffer(SLOTS * (JOB_SLOT + RESULT_SLOT));
}

function jobArea(sab: SharedArrayBuffer, slot: number): Buffer {
  return Buffer.from(sab, slot * JOB_SLOT, JOB_SLOT);
}

function resultArea(sab: SharedArrayBuffer, slot: number): Uint8Array {
  return new Uint8Array(sab, SLOTS * JOB_SLOT + slot * RESULT_SLOT, RESULT_SLOT);
}

/** A batch as it is announced: its slot, how many directories, and what every ZAP's salt is drawn from. */
export interface DirJobBatch {
  slot: number;
  dirs: number;
  seed: string;
  dataset: string;
}

/**
 * Build the ZAPs of the batch in `jobs` into `results` (the host's side).
 * Allocates next to nothing: entries are packed from the job's bytes, no
 * object per entry, and a micro ZAP (most directories) is encoded where it
 * goes.
 */
export function runDirJobs(batch: DirJobBatch, jobs: Uint8Array, results: Uint8Array): void {
  const seed = new SeedSource(batch.seed);
  const jv = new DataView(jobs.buffer, jobs.byteOffset, jobs.byteLength);
  const rv = new DataView(results.buffer, results.byteOffset, results.byteLength);
  let at = 0;
  let out = 0;
  for (let d = 0; d < batch.dirs; d++) {
    const objid = jv.getFloat64(at, true);
    const n = jv.getUint32(at + 8, true);
    const from = at + DIR_HEAD;
    at = from;
    for (let i = 0; i < n; i++) at += ENTRY_HEAD + jv.getUint16(at + 9, true);
    const room = results.subarray(out + DIR_HEAD);
    let status = BUILT;
    let img: DirZap | undefined;
    try {
      const salt = zapSalt(seed, batch.dataset, objid);
      img = zapFromPacked(() => packDirEntries(jobs, from, n, salt, ZAP_MAXNAMELEN - 1), { salt }, room);
      if (img.blockSize * img.blocks.length > room.length) status = TOO_BIG;
    } catch {
      status = FAILED;
    }
    rv.setUint32(out, status, true);
    if (status !== BUILT) {
      out += DIR_HEAD;
      continue;
    }
    rv.setUint32(out + 4, img!.blockSize, true);
    rv.setUint32(out + 8, img!.blocks.length, true);
    out += DIR_HEAD;
    for (const b of img!.blocks) {
      // (a micro ZAP is there already)
      if (b.buffer !== results.buffer || b.byteOffset !== results.byteOffset + out) results.set(b, out);
      out += img!.blockSize;
    }
  }
}

/** Build a batch announced on a channel's memory, into its result slot. */
export function runBatch(sab: SharedArrayBuffer, batch: DirJobBatch): void {
  const results = resultArea(sab, batch.slot);
  try {
    runDirJobs(batch, jobArea(sab, batch.slot), results);
  } catch {
    // (not the ZAPs' own errors, which runDirJobs reports per directory):
    // the writer builds the whole batch itself and meets whatever it was
    const rv = new DataView(results.buffer, results.byteOffset, results.byteLength);
    for (let d = 0; d < batch.dirs; d++) rv.setUint32(DIR_HEAD * d, FAILED, true);
  }
}

/** The host's side of a channel: build each batch announced on the port, count it in `ctrl`. */
export function serveDirJobs(port: MessagePort, sab: SharedArrayBuffer, ctrl: Int32Array): void {
  port.on('message', (batch: DirJobBatch) => {
    runBatch(sab, batch);
    Atomics.add(ctrl, 0, 1);
    Atomics.notify(ctrl, 0);
  });
}

// ---------------------------------------------------------------- the writer's side

/** A channel to a host: the shared slots, batches announced, answers counted in order. */
export interface DirZapChannel {
  sab: SharedArrayBuffer;
  post(batch: DirJobBatch): void;
  /** Batches answered so far. */
  answered(): number;
  /** Block until more than `n` batches are answered. */
  wait(n: number): void;
  close(): void;
}

/** The channel over a MessagePort whose other end runs serveDirJobs on `sab`; `ctrl` counts its answers. */
export function portChannel(port: MessagePort, sab: SharedArrayBuffer, ctrl: Int32Array): DirZapChannel {
  return {
    sab,
    post: (batch) => port.postMessage(batch),
    answered: () => Atomics.load(ctrl, 0),
    wait: (n) => { Atomics.wait(ctrl, 0, n); },
    close: () => port.close(),
  };
}

/** Opens a channel to whoever builds directory ZAPs for this thread's builds (null: nobody). */
export type DirZapHost = () => DirZapChannel | null;
let host: DirZapHost | null = null;

/** Have this thread's builds send their directory ZAPs to `h` (null: build them in place). */
export function setDirZapHost(h: DirZapHost | null): void {
  host = h;
}

/** Entries per batch at most: a message costs tens of microseconds, so not one per directory. */
const BATCH_ENTRIES = 2048;
/** What the writer's queue says of a directory: built by the host, or to build in place (too large to send). */
const ON_HOST = 0;
const IN_PLACE = 1;
/** Entries of the largest micro ZAP (a 128 KiB block, as zapFromPacked builds by default). */
const MZAP_MAX_ENTRIES = SPA_OLD_MAXBLOCKSIZE / MZAP_ENT_LEN - 1;
/** A fat ZAP's blocks for `n` entries, at most (16 KiB leaves at least ~50 entries each, the header, a pointer table): more than a guess, so a batch is closed early rather than its last directories built twice. */
const fatGuess = (n: number): number => 16384 * (3 + Math.ceil(n / 50));

/**
 * The ZAPs of a dataset's directories, in the order the writer takes them.
 * `send(objects, from)` sends the directories of `objects` from index
 * `from` while a slot is free and returns where it stopped; `take()` gives
 * the next directory's ZAP (undefined: build it in place). The blocks are
 * views of a shared slot, valid until the next send() or take().
 */
export class DirZapsAhead {
  private readonly jobs: Buffer[] = [];
  private readonly results: Uint8Array[] = [];
  /** Per directory sent: ON_HOST or IN_PLACE. */
  private queue: number[] = [];
  private queueHead = 0;
  /** Batches posted, answered, released (every directory taken). */
  private posted = 0;
  private answered = 0;
  private released = 0;
  private releasePending = false;
  /** The batch being filled (slot posted % SLOTS): job bytes, result bytes expected, directories, entries. */
  private fillAt = 0;
  private fillOut = 0;
  private fillDirs = 0;
  private fillEntries = 0;
  /** Directories of each posted batch not yet taken, oldest first. */
  private batchDirs: number[] = [];
  /** Where the next result is in the oldest unreleased batch's slot. */
  private readAt = 0;

  constructor(private readonly ch: DirZapChannel, private readonly seed: string, private readonly dataset: string) {
    for (let s = 0; s < SLOTS; s++) {
      this.jobs.push(jobArea(ch.sab, s));
      this.results.push(resultArea(ch.sab, s));
    }
  }

  /** A sender for a dataset's directories, if a host is there. */
  static open(seed: string, dataset: string): DirZapsAhead | null {
    const ch = host?.() ?? null;
    return ch === null ? null : new DirZapsAhead(ch, seed, dataset);
  }

  private release(): void {
    if (!this.releasePending) return;
    this.releasePending = false;
    this.released++;
  }

  send(objects: readonly Inode[], from: number): number {
    this.release();
    let i = from;
    while (i < objects.length) {
      // every slot taken (and the one being filled, if any, has no room
      // left): the host is this far ahead; nothing is measured or copied
      // until a slot frees
      if (this.posted - this.released >= SLOTS) break;
      const ino = objects[i]!;
      if (ino.type !== 'dir') {
        i++;
        continue;
      }
      const entries = ino.entries!;
      let size = DIR_HEAD;
      let longest = 0;
      for (const e of entries) {
        const len = e.latin1Name?.length ?? e.name.length;
        size += ENTRY_HEAD + len;
        if (len > longest) longest = len;
      }
      const n = entries.length;
      const result = DIR_HEAD + (n <= MZAP_MAX_ENTRIES && longest < MZAP_NAME_LEN ? mzapBlockSize(n) : fatGuess(n));
      // (a name longer than a ZAP takes goes in place too, where the writer
      // meets its error; nor could a slot larger than 64 KiB give its length
      // in 16 bits)
      if (size > JOB_SLOT || result > RESULT_SLOT || longest > ZAP_MAXNAMELEN) {
        this.queue.push(IN_PLACE);
        i++;
        continue;
      }
      // (an empty batch takes any directory that fits a slot: post() always moves on)
      if (this.fillDirs > 0 && (this.fillAt + size > JOB_SLOT || this.fillOut + result > RESULT_SLOT || this.fillEntries >= BATCH_ENTRIES)) {
        this.post();
        continue;
      }
      this.putJob(ino);
      this.fillAt += size;
      this.fillOut += result;
      this.fillDirs++;
      this.fillEntries += n;
      this.queue.push(ON_HOST);
      i++;
      if (this.fillEntries >= BATCH_ENTRIES) this.post();
    }
    return i;
  }

  private putJob(dir: Inode): void {
    const buf = this.jobs[this.posted % SLOTS]!;
    const at = this.fillAt;
    buf.writeDoubleLE(dir.objid!, at);
    buf.writeUInt32LE(dir.entries!.length, at + 8);
    putEntries(dir, buf, at + DIR_HEAD);
  }

  private post(): void {
    if (this.fillDirs === 0) return;
    this.ch.post({ slot: this.posted % SLOTS, dirs: this.fillDirs, seed: this.seed, dataset: this.dataset });
    this.batchDirs.push(this.fillDirs);
    this.posted++;
    this.fillAt = 0;
    this.fillOut = 0;
    this.fillDirs = 0;
    this.fillEntries = 0;
  }

  take(): DirZap | undefined {
    this.release();
    const kind = this.queue[this.queueHead++]!;
    if (this.queueHead > 8192) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    if (kind === IN_PLACE) return undefined;
    // its batch is the oldest not released; posted now if still being filled
    if (this.batchDirs.length === 0) this.post();
    while (this.answered <= this.released) {
      const a = this.ch.answered();
      if (a > this.answered) this.answered = a;
      else this.ch.wait(a);
    }
    const res = this.results[this.released % SLOTS]!;
    const rv = new DataView(res.buffer, res.byteOffset, res.byteLength);
    const at = this.readAt;
    const status = rv.getUint32(at, true);
    let out: DirZap | undefined;
    if (status === BUILT) {
      const blockSize = rv.getUint32(at + 4, true);
      const count = rv.getUint32(at + 8, true);
      const blocks: Uint8Array[] = [];
      for (let b = 0; b < count; b++) blocks.push(res.subarray(at + DIR_HEAD + b * blockSize, at + DIR_HEAD + (b + 1) * blockSize));
      this.readAt = at + DIR_HEAD + count * blockSize;
      out = { blockSize, blocks };
    } else {
      this.readAt = at + DIR_HEAD;
    }
    if (--this.batchDirs[0]! === 0) {
      this.batchDirs.shift();
      this.readAt = 0;
      // freed at the next call, once the writer is done with these views
      this.releasePending = true;
    }
    return out;
  }

  /** Done with the dataset: the channel closes (the host's side with it). */
  close(): void {
    this.ch.close();
  }
}

/** A job's entries of `dir`, from `at` on in `buf`; returns where they end. */
function putEntries(dir: Inode, buf: Buffer, at: number): number {
  for (const e of dir.entries!) {
    const ino = e.inode;
    buf[at] = DT[ino.type];
    buf.writeDoubleLE(ino.objid ?? objidOf(e), at + 1);
    // the walk's names go in as the latin1 strings they are kept as, not as a Buffer each
    const s = e.latin1Name;
    const len = s !== undefined ? buf.write(s, at + ENTRY_HEAD, 'latin1') : copyName(e.name, buf, at + ENTRY_HEAD);
    buf.writeUInt16LE(len, at + 9);
    at += ENTRY_HEAD + len;
  }
  return at;
}

/**
 * Where a directory too large for the slots is packed on the writer's own
 * thread (its bytes are copied out as they are packed); one larger than
 * IN_PLACE_KEEP is packed in a buffer of its own, not kept for later.
 */
let inPlaceJob = Buffer.alloc(0);
const IN_PLACE_KEEP = SCRATCH_KEEP;

/**
 * The ZAP of a directory built on the writer's thread (too large for the
 * slots, or no host), as blocks to be encoded one at a time: from its
 * entries packed as a job is, with no object per entry, and never all its
 * leaves at once (/usr/share/man/man1's 17,880 entries were ~10 MB at the
 * peak built whole). Entries the packed path refuses go through buildZap,
 * so its error is the one reported.
 */
export function dirZapSource(dir: Inode, salt: bigint): ZapBlockSource {
  const entries = dir.entries!;
  let size = 0;
  let longest = 0;
  for (const e of entries) {
    const len = e.latin1Name?.length ?? e.name.length;
    size += ENTRY_HEAD + len;
    if (len > longest) longest = len;
  }
  if (longest <= ZAP_MAXNAMELEN) {
    if (inPlaceJob.length < size && size <= IN_PLACE_KEEP) inPlaceJob = Buffer.allocUnsafeSlow(Math.min(IN_PLACE_KEEP, Math.max(size, 2 * inPlaceJob.length)));
    const job = size <= inPlaceJob.length ? inPlaceJob : Buffer.allocUnsafeSlow(size);
    putEntries(dir, job, 0);
    try {
      return zapSourceFromPacked(() => packDirEntries(job, 0, entries.length, salt, ZAP_MAXNAMELEN - 1), { salt });
    } catch {
      // (met again below, as buildZap words it)
    }
  }
  const img = buildZap(dirEntries(dir), { salt });
  return {
    kind: img.kind, blockSize: img.blockSize, count: img.blocks.length, numEntries: img.numEntries,
    encodeBlock: (b, into) => into.set(img.blocks[b]!),
  };
}

function copyName(name: Uint8Array, buf: Uint8Array, at: number): number {
  buf.set(name, at);
  return name.length;
}
