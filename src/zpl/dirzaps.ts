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
// Without a host (the library, the unit tests) the writer builds them itself.

import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { Inode, NodeType } from '../input/tree.js';
import { SeedSource } from '../util/seed.js';
import { type ZapEntry } from '../zap/index.js';
import { packDirEntries } from '../zap/packed.js';
import { ZAP_MAXNAMELEN } from '../zap/types.js';
import { zapFromPacked } from '../zap/zap.js';

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
  return ino.entries!.map((e) => ({ name: e.name, value: (BigInt(DT[e.inode.type]) << 60n) | BigInt(e.inode.objid!) }));
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

// ---------------------------------------------------------------- wire format
//
// Jobs: per directory its object number (f64) and entry count (u32), then
// per entry the DT type (u8), the object number (f64), the name's length
// (u16) and bytes. Results: per directory a status (u32: 0 built, 1 failed:
// the writer builds that one itself and meets the error there), the block
// size and count (u32 each), then the blocks.

/** Bytes before a job's entries (object number, entry count) and before a result's blocks (status, block size, block count). */
const DIR_HEAD = 12;
/** Bytes before an entry's name (type, object number, name length). */
const ENTRY_HEAD = 11;
const BUILT = 0;
const FAILED = 1;

/** A growable byte buffer with little-endian writes. */
class Out {
  buf = new Uint8Array(4096);
  dv = new DataView(this.buf.buffer);
  len = 0;
  room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.len));
    this.buf = nb;
    this.dv = new DataView(nb.buffer);
  }
  u8(v: number): void { this.room(1); this.buf[this.len++] = v; }
  u16(v: number): void { this.room(2); this.dv.setUint16(this.len, v, true); this.len += 2; }
  u32(v: number): void { this.room(4); this.dv.setUint32(this.len, v, true); this.len += 4; }
  f64(v: number): void { this.room(8); this.dv.setFloat64(this.len, v, true); this.len += 8; }
  bytes(b: Uint8Array): void { this.room(b.length); this.buf.set(b, this.len); this.len += b.length; }
  /** The bytes written, in an ArrayBuffer of their own (to transfer); the buffer starts over. */
  take(): ArrayBuffer {
    const b = this.buf.buffer.slice(0, this.len) as ArrayBuffer;
    this.len = 0;
    return b;
  }
}

/** Append a directory's job; returns its entry count. */
function putJob(out: Out, dir: Inode): number {
  const entries = dir.entries!;
  out.f64(dir.objid!);
  out.u32(entries.length);
  for (const e of entries) {
    const name = e.name;
    out.u8(DT[e.inode.type]);
    out.f64(e.inode.objid!);
    out.u16(name.length);
    out.bytes(name);
  }
  return entries.length;
}

/** A batch of jobs as it travels: the seed and dataset name say every ZAP's salt. */
export interface DirJobBatch {
  seed: string;
  dataset: string;
  dirs: number;
  jobs: ArrayBuffer;
}

// (one batch at a time on a host: the results are gathered here and sent
// as one copy; micro ZAP blocks, most of them, are built in one array and
// copied in: a block each was garbage outside the JS heap that the host,
// which allocates little else, freed only tens of MB later)
const results = new Out();
const microBlock = new Uint8Array(128 * 1024);

/** Build the ZAPs of a batch (the host's side); the results, in job order. */
export function runDirJobs(batch: DirJobBatch): ArrayBuffer {
  const seed = new SeedSource(batch.seed);
  const src = new Uint8Array(batch.jobs);
  const dv = new DataView(batch.jobs);
  const out = results;
  out.len = 0;
  let at = 0;
  for (let d = 0; d < batch.dirs; d++) {
    const objid = dv.getFloat64(at, true);
    const n = dv.getUint32(at + 8, true);
    const from = at + DIR_HEAD;
    at = from;
    for (let i = 0; i < n; i++) at += ENTRY_HEAD + dv.getUint16(at + 9, true);
    let img: DirZap;
    try {
      // packed straight from the job's bytes: no object per entry
      const salt = zapSalt(seed, batch.dataset, objid);
      img = zapFromPacked(() => packDirEntries(src, from, n, salt, ZAP_MAXNAMELEN - 1), { salt }, microBlock);
    } catch {
      out.u32(FAILED);
      out.u32(0);
      out.u32(0);
      continue;
    }
    out.u32(BUILT);
    out.u32(img.blockSize);
    out.u32(img.blocks.length);
    for (const b of img.blocks) out.bytes(b);
  }
  return out.take();
}

/** The host's side of a channel: build each batch that comes, answer on the port, count it in `ctrl`. */
export function serveDirJobs(port: MessagePort, ctrl: Int32Array): void {
  port.on('message', (batch: DirJobBatch) => {
    let res: ArrayBuffer;
    try {
      res = runDirJobs(batch);
    } catch {
      // (not the ZAPs' own errors, which runDirJobs reports per directory):
      // the writer builds the whole batch itself and meets whatever it was
      res = new ArrayBuffer(DIR_HEAD * batch.dirs);
      const dv = new DataView(res);
      for (let d = 0; d < batch.dirs; d++) dv.setUint32(DIR_HEAD * d, FAILED, true);
    }
    port.postMessage(res, [res]);
    Atomics.add(ctrl, 0, 1);
    Atomics.notify(ctrl, 0);
  });
}

// ---------------------------------------------------------------- the writer's side

/** A channel to a host: batches go out, results come back in order. */
export interface DirZapChannel {
  post(batch: DirJobBatch): void;
  /** The next batch's results if they are in. */
  receive(): ArrayBuffer | undefined;
  /** Block until results beyond the first `received` batches are in. */
  wait(received: number): void;
  close(): void;
}

/** The channel over a MessagePort whose other end runs serveDirJobs; `ctrl` counts the results it sent. */
export function portChannel(port: MessagePort, ctrl: Int32Array): DirZapChannel {
  return {
    post: (batch) => port.postMessage(batch, [batch.jobs]),
    receive: () => receiveMessageOnPort(port)?.message as ArrayBuffer | undefined,
    wait: (received) => { Atomics.wait(ctrl, 0, received); },
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

/** Entries sent and not yet taken, at most: enough to keep the host ahead, little memory held. */
const WINDOW_ENTRIES = 16384;
/** Entries per message: a message costs tens of microseconds, so not one per directory. */
const BATCH_ENTRIES = 2048;

/**
 * The ZAPs of a dataset's directories, in the order the writer takes them.
 * `send(dirs, from)` sends directories of `dirs` from index `from` while the
 * window has room and returns where it stopped; `take()` gives the next
 * directory's ZAP (undefined: build it in place; the host could not).
 */
export class DirZapsAhead {
  private out = new Out();
  private batchDirs = 0;
  private batchEntries = 0;
  private inFlight = 0;
  private counts: number[] = [];
  private countsHead = 0;
  private results: Array<DirZap | undefined> = [];
  private resultsHead = 0;
  private seen = 0;

  constructor(private readonly ch: DirZapChannel, private readonly seed: string, private readonly dataset: string) {}

  /** A sender for a dataset's directories, if a host is there. */
  static open(seed: string, dataset: string): DirZapsAhead | null {
    const ch = host?.() ?? null;
    return ch === null ? null : new DirZapsAhead(ch, seed, dataset);
  }

  send(objects: readonly Inode[], from: number): number {
    let i = from;
    while (i < objects.length && this.inFlight < WINDOW_ENTRIES) {
      const ino = objects[i++]!;
      if (ino.type !== 'dir') continue;
      const n = putJob(this.out, ino);
      this.batchDirs++;
      this.batchEntries += n;
      this.inFlight += n;
      this.counts.push(n);
      if (this.batchEntries >= BATCH_ENTRIES) this.post();
    }
    return i;
  }

  private post(): void {
    if (this.batchDirs === 0) return;
    this.ch.post({ seed: this.seed, dataset: this.dataset, dirs: this.batchDirs, jobs: this.out.take() });
    this.batchDirs = 0;
    this.batchEntries = 0;
  }

  take(): DirZap | undefined {
    if (this.resultsHead === this.results.length) {
      // the directory wanted may still be in the batch being filled
      this.post();
      this.receive();
    }
    const img = this.results[this.resultsHead];
    this.results[this.resultsHead++] = undefined;
    if (this.resultsHead === this.results.length) {
      this.results = [];
      this.resultsHead = 0;
    }
    this.inFlight -= this.counts[this.countsHead++]!;
    if (this.countsHead > 4096) {
      this.counts.splice(0, this.countsHead);
      this.countsHead = 0;
    }
    return img;
  }

  /** Wait for the next batch of results (the host answers in order). */
  private receive(): void {
    for (;;) {
      const res = this.ch.receive();
      if (res !== undefined) {
        this.seen++;
        this.decode(res);
        return;
      }
      this.ch.wait(this.seen);
    }
  }

  private decode(res: ArrayBuffer): void {
    const dv = new DataView(res);
    let at = 0;
    while (at < res.byteLength) {
      const status = dv.getUint32(at, true);
      const blockSize = dv.getUint32(at + 4, true);
      const n = dv.getUint32(at + 8, true);
      at += DIR_HEAD;
      if (status !== BUILT) {
        this.results.push(undefined);
        continue;
      }
      const blocks: Uint8Array[] = [];
      for (let b = 0; b < n; b++) {
        blocks.push(new Uint8Array(res, at, blockSize));
        at += blockSize;
      }
      this.results.push({ blockSize, blocks });
    }
  }

  /** Done with the dataset: the channel closes (the host's side with it). */
  close(): void {
    this.ch.close();
  }
}
