// Compressed data blocks of several objects in flight at once. Space is
// handed out by a bump cursor, so where a block lands depends on the
// compressed size of every block placed before it: blocks must be placed in
// the order they were written, and a file's compressed blocks can only be
// placed once its compression is done. Rather than wait for that at the end
// of each file (the build thread idle, or compressing alone, while the image
// writer could take the job), a file that ends leaves its end in the queue
// behind its last jobs and the build goes on to the next file; its blocks,
// holes and end are taken off the queue in order, as their jobs come back.
// The allocator asks for the queue to be drained before anything else takes
// space (or asks where the cursor is), so the image is the same as if each
// file had been placed whole before the next began.
import type { CompressPool } from './compress-pool.js';

/** An object whose level-0 blocks go through a BlockPipeline, each placed in its turn. */
export interface PipelinedObject {
  placeHole(): void;
  /** `output`: the compressed bytes (null: not worth it); `dataLen`: bytes of `input` before its zero padding. */
  placeBlock(input: Uint8Array, output: Uint8Array | null, dataLen: number): void;
  /** Every block queued before is placed; `token` is what end() was given. */
  placed(token: number): void;
}

const HOLE = 0;
const JOB = 1;
const END = 2;
/** Queue entries taken off before the arrays are compacted. */
const COMPACT_AT = 1024;

export class BlockPipeline {
  // the queue, as parallel arrays (an object per block was garbage the walk
  // made once per file)
  private objs: (PipelinedObject | undefined)[] = [];
  private kinds: number[] = [];
  /** A job's data length, an end's token. */
  private vals: number[] = [];
  private head = 0;
  /**
   * Set while an entry is being placed: the allocator's calls from there
   * must not drain (and need not: that entry is ahead of all still queued).
   */
  private placing = false;

  constructor(readonly pool: CompressPool) {}

  /** The data bytes of the jobs not placed yet: what an out-of-space estimate has read but not allocated (counted when asked: rarely). */
  get queuedBytes(): number {
    let n = 0;
    for (let i = this.head; i < this.objs.length; i++) if (this.kinds[i] === JOB) n += this.vals[i]!;
    return n;
  }

  /** Whether nothing waits to be placed. */
  get empty(): boolean {
    return this.head === this.objs.length;
  }

  hole(o: PipelinedObject): void {
    this.queue(o, HOLE, 0);
    this.settle();
  }

  /** Put `block` (copied) on the compression ring; it is placed in its turn. */
  block(o: PipelinedObject, block: Uint8Array, comp: number, dataLen: number): void {
    while (this.pool.full) this.placeOne();
    this.pool.submit(block, comp);
    this.queue(o, JOB, dataLen);
    this.settle();
  }

  /** `o` has no more blocks: its placed(token) comes once they are all placed. */
  end(o: PipelinedObject, token: number): void {
    this.queue(o, END, token);
    this.settle();
  }

  /** Place what is ready without waiting for a compression. */
  settle(): void {
    if (this.placing) return;
    while (this.head < this.objs.length && (this.kinds[this.head] !== JOB || this.pool.headDone)) this.placeOne();
  }

  /** Place everything queued, waiting for (or doing) the compressions still under way. */
  drain(): void {
    if (this.placing) return;
    while (this.head < this.objs.length) this.placeOne();
  }

  private queue(o: PipelinedObject, kind: number, val: number): void {
    this.objs.push(o);
    this.kinds.push(kind);
    this.vals.push(val);
  }

  private placeOne(): void {
    const h = this.head;
    const o = this.objs[h]!;
    const kind = this.kinds[h]!;
    const val = this.vals[h]!;
    this.objs[h] = undefined;
    this.head = h + 1;
    if (this.head === this.objs.length) {
      this.objs.length = this.kinds.length = this.vals.length = 0;
      this.head = 0;
    } else if (this.head >= COMPACT_AT) {
      this.objs.splice(0, this.head);
      this.kinds.splice(0, this.head);
      this.vals.splice(0, this.head);
      this.head = 0;
    }
    this.placing = true;
    try {
      if (kind === HOLE) {
        o.placeHole();
      } else if (kind === JOB) {
        const r = this.pool.retire();
        o.placeBlock(r.input, r.output, val);
      } else {
        o.placed(val);
      }
    } finally {
      this.placing = false;
    }
  }
}
