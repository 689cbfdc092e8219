// Block allocator. The image is written once and nothing is ever freed, so a
// bump cursor is enough; what matters is that no block straddles a metaslab
// boundary (a DVA must lie in one metaslab) and that we can list, per
// metaslab, the allocated runs for its space map. Runs are kept as extents
// rather than a bitmap: a 1 TiB vdev at ashift 9 would need a 256 MiB bitmap.
import { UserError } from '../util/errors.js';

/**
 * The image is full. Carries what a caller needs to suggest a size: the
 * image size and the bytes allocated when it ran out; makeImage adds the
 * file data bytes read by then, and buildImage (which may know the input's
 * total) rewrites the message with an estimate of the size needed.
 */
export class OutOfSpaceError extends UserError {
  override name = 'OutOfSpaceError';
  /** File data bytes read from the input when the space ran out (set by makeImage). */
  bytesRead?: number;

  constructor(readonly imageSize: number, readonly allocated: number, readonly msSize: number) {
    super(`image size ${fmtSize(imageSize)} is too small for the data (ran out of space after allocating ${fmtSize(allocated)}; use a larger -s, or leave out -s to size the image automatically)`);
  }
}

export interface Extent { start: number; end: number } // bytes, relative to the allocatable area

export class SpaceAllocator {
  private cursor = 0;
  /** Allocated runs by metaslab (only metaslabs in use), ascending, merged when adjacent. */
  private used = new Map<number, Extent[]>();
  readonly unit: number;
  msSize: number;
  allocated = 0;
  /**
   * Called before the cursor is moved or read, or space given back: whoever
   * still holds blocks to place in order ahead of the caller places them
   * (zio/pipeline.ts), so that they land where they would have without it.
   * (What only the end of a build reads, the runs and totals, is read after
   * the data phase has drained the pipeline: see makeImage.)
   */
  beforeUse: (() => void) | null = null;

  constructor(public msCount: number, public msShift: number, readonly ashift: number, private readonly imageSize: number) {
    this.unit = 2 ** ashift;
    this.msSize = 2 ** msShift;
  }

  /** The allocated runs of metaslab ms. */
  runsOf(ms: number): Extent[] {
    return this.used.get(ms) ?? [];
  }

  /** The highest metaslab with allocations, or -1. */
  lastUsedMs(): number {
    let last = -1;
    for (const [ms, r] of this.used) if (r.length > 0 && ms > last) last = ms;
    return last;
  }

  /**
   * Switch to metaslabs 2^shift bytes large (an auto-sized image picks its
   * metaslab size once it knows how much it holds). No block straddles the
   * new boundaries: they are a subset of the old ones.
   */
  regroup(shift: number): void {
    if (shift < this.msShift) throw new Error('metaslabs can only grow');
    const ratio = 2 ** (shift - this.msShift);
    const next = new Map<number, Extent[]>();
    for (const ms of [...this.used.keys()].sort((a, b) => a - b)) {
      const list = next.get(Math.floor(ms / ratio)) ?? [];
      for (const r of this.used.get(ms)!) {
        const last = list[list.length - 1];
        if (last && last.end === r.start) last.end = r.end;
        else list.push({ ...r });
      }
      next.set(Math.floor(ms / ratio), list);
    }
    this.used = next;
    this.msShift = shift;
    this.msSize = 2 ** shift;
    this.msCount = Math.floor(this.msCount / ratio);
  }

  /** Round a physical size up to the allocation unit. */
  asize(psize: number): number {
    return Math.ceil(psize / this.unit) * this.unit;
  }

  alloc(psize: number): { offset: number; asize: number } {
    this.beforeUse?.();
    const asize = this.asize(psize);
    let start = this.cursor;
    let ms = Math.floor(start / this.msSize);
    if (Math.floor((start + asize - 1) / this.msSize) !== ms) {
      ms++;
      start = ms * this.msSize;
    }
    if (ms >= this.msCount) {
      throw new OutOfSpaceError(this.imageSize, this.allocated, this.msSize);
    }
    this.cursor = start + asize;
    this.allocated += asize;
    let list = this.used.get(ms);
    if (!list) { list = []; this.used.set(ms, list); }
    const last = list[list.length - 1];
    if (last && last.end === start) last.end = start + asize;
    else list.push({ start, end: start + asize });
    return { offset: start, asize };
  }

  /** Give up the metaslabs past `msCount` (an auto-sized image being cut to fit); they must be empty. */
  shrink(msCount: number): void {
    if (this.lastUsedMs() >= msCount) throw new Error('cannot cut off metaslabs in use');
    this.msCount = msCount;
  }

  /** Where the next allocation starts (bytes into the allocatable area). */
  get position(): number {
    this.beforeUse?.();
    return this.cursor;
  }

  /**
   * Give back everything allocated in [start, end) (a tar member replaced by
   * a later one of the same path). The bytes stay in the file but the space
   * maps no longer claim them, so nothing leaks.
   */
  freeRange(start: number, end: number): void {
    this.beforeUse?.();
    for (let ms = Math.floor(start / this.msSize); ms < this.msCount && ms * this.msSize < end; ms++) {
      const out: Extent[] = [];
      for (const r of this.runsOf(ms)) {
        if (r.end <= start || r.start >= end) { out.push(r); continue; }
        if (r.start < start) out.push({ start: r.start, end: start });
        if (r.end > end) out.push({ start: end, end: r.end });
        this.allocated -= Math.min(r.end, end) - Math.max(r.start, start);
      }
      this.used.set(ms, out);
    }
  }

  /** Bytes allocated in metaslab ms. */
  msAllocated(ms: number): number {
    let s = 0;
    for (const r of this.runsOf(ms)) s += r.end - r.start;
    return s;
  }
}

export function fmtSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  let v = n;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}
