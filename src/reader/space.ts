// Allocated space: what the space maps say (metaslab array -> one space map
// object per metaslab, ALLOC/FREE entries) and what the blocks found by the
// traversal take, compared range by range.
import { DMU_OT_OBJECT_ARRAY, DMU_OT_SPACE_MAP, DMU_OT_SPACE_MAP_HEADER } from '../dmu/types.js';
import { fmtSize } from '../vdev/allocator.js';
import { decodeSpaceMapEntries, SPACE_MAP_PHYS_SIZE_V0 } from '../vdev/spacemap.js';
import { rd64le } from '../util/endian.js';
import { inContext, ReadError } from './errors.js';
import type { ObjsetReader } from './objset.js';
import type { PoolReader } from './pool.js';
import type { Problem } from './traverse.js';

/** [start, end) in bytes from the start of the allocatable area (DVA offsets). */
export interface Range {
  start: number;
  end: number;
}

export function fmtRange(r: Range): string {
  return `0x${r.start.toString(16)}-0x${r.end.toString(16)} (${fmtSize(r.end - r.start)})`;
}

/** A set of disjoint ranges kept sorted. */
export class RangeSet {
  readonly list: Range[] = [];

  private firstEndingAfter(pos: number): number {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.list[mid]!.end <= pos) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Add [start, end); returns the bytes that were already in the set. */
  add(start: number, end: number): number {
    let i = this.firstEndingAfter(start);
    // merge with a range ending exactly at start
    if (i > 0 && this.list[i - 1]!.end === start) i--;
    let overlap = 0;
    let s = start;
    let e = end;
    let j = i;
    while (j < this.list.length && this.list[j]!.start <= end) {
      const r = this.list[j]!;
      overlap += Math.max(0, Math.min(r.end, end) - Math.max(r.start, start));
      s = Math.min(s, r.start);
      e = Math.max(e, r.end);
      j++;
    }
    this.list.splice(i, j - i, { start: s, end: e });
    return overlap;
  }

  /** Remove [start, end); returns the bytes of it that were not in the set. */
  remove(start: number, end: number): number {
    const i = this.firstEndingAfter(start);
    let covered = 0;
    const keep: Range[] = [];
    let j = i;
    while (j < this.list.length && this.list[j]!.start < end) {
      const r = this.list[j]!;
      covered += Math.min(r.end, end) - Math.max(r.start, start);
      if (r.start < start) keep.push({ start: r.start, end: start });
      if (r.end > end) keep.push({ start: end, end: r.end });
      j++;
    }
    this.list.splice(i, j - i, ...keep);
    return end - start - covered;
  }

  get bytes(): number {
    let n = 0;
    for (const r of this.list) n += r.end - r.start;
    return n;
  }
}

export interface SpaceMaps {
  /** Allocated space by the space maps, sorted and merged. */
  allocated: Range[];
  metaslabs: number;
  spaceMaps: number;
  /** MOS objects of the space maps (for messages). */
  objects: number[];
}

/** Read every metaslab's space map. Problems go to `problem`; unreadable maps make the result undefined. */
export function readSpaceMaps(pool: PoolReader, problem: (p: Problem) => void): SpaceMaps | undefined {
  let mos: ObjsetReader;
  try {
    mos = pool.mos;
  } catch {
    return undefined; // the MOS itself is unreadable: reported by the traversal
  }
  const msSize = 2 ** pool.msShift;
  const metaslabs = Math.floor(pool.asize / msSize);
  const set = new RangeSet();
  const objects: number[] = [];
  let complete = true;
  const fail = (object: number | undefined, e: unknown): void => {
    if (!(e instanceof Error)) throw e;
    problem({ ds: 0, object, text: e.message, key: e instanceof ReadError ? e.key : undefined });
    complete = false;
  };
  let array: Uint8Array;
  try {
    array = inContext(`metaslab array`, () => {
      const dn = pool.mos.dnode(pool.msArray);
      if (dn.type !== DMU_OT_OBJECT_ARRAY) throw new ReadError(`object ${pool.msArray} is type ${dn.type}, not an object array`);
      return mos.readBytes(dn, metaslabs * 8);
    });
  } catch (e) {
    fail(pool.msArray, e);
    return undefined;
  }
  for (let m = 0; m < metaslabs; m++) {
    const obj = Number(rd64le(array, m * 8));
    if (obj === 0) continue;
    objects.push(obj);
    const msStart = m * msSize;
    try {
      inContext(`space map of metaslab ${m}`, () => {
        const dn = mos.dnode(obj);
        if (dn.type !== DMU_OT_SPACE_MAP) throw new ReadError(`object ${obj} is type ${dn.type}, not a space map`);
        if (dn.bonustype !== DMU_OT_SPACE_MAP_HEADER || dn.bonus.length < SPACE_MAP_PHYS_SIZE_V0) {
          throw new ReadError(`object ${obj}: bad space map header (bonus type ${dn.bonustype}, ${dn.bonus.length} bytes)`);
        }
        const smObject = Number(rd64le(dn.bonus, 0));
        const length = Number(rd64le(dn.bonus, 8));
        const alloc = Number(rd64le(dn.bonus, 16));
        if (smObject !== obj) throw new ReadError(`header names object ${smObject}, not ${obj}`);
        if (length % 8 !== 0 || length > (dn.maxblkid + 1) * dn.datablksz) throw new ReadError(`length ${length} does not fit the object`);
        const local = new RangeSet();
        let pos = 0;
        for (const chunk of mos.stream(dn, length)) {
          for (const e of decodeSpaceMapEntries(chunk, chunk.length, pool.ashift)) {
            const r = { start: msStart + e.start, end: msStart + e.start + e.size };
            if (e.start + e.size > msSize) throw new ReadError(`entry at byte ${pos} runs past the metaslab: ${fmtRange(r)}`);
            if (e.type === 'alloc') {
              if (local.add(r.start, r.end) > 0) problem({ ds: 0, object: obj, text: `space map of metaslab ${m}: ${fmtRange(r)} is allocated twice` });
            } else if (local.remove(r.start, r.end) > 0) {
              problem({ ds: 0, object: obj, text: `space map of metaslab ${m}: ${fmtRange(r)} is freed but was not allocated` });
            }
          }
          pos += chunk.length;
        }
        if (local.bytes !== alloc) throw new ReadError(`header says ${alloc} bytes allocated, its entries add up to ${local.bytes}`);
        for (const r of local.list) set.add(r.start, r.end);
      });
    } catch (e) {
      fail(obj, e);
    }
  }
  return complete ? { allocated: set.list, metaslabs, spaceMaps: objects.length, objects } : undefined;
}

/** Block extents as the traversal finds them; adjacent ones are merged on the fly. */
export class ExtentCollector {
  private starts = new Float64Array(1024);
  private ends = new Float64Array(1024);
  n = 0;

  add(start: number, end: number): void {
    const n = this.n;
    if (n > 0 && this.ends[n - 1] === start) {
      this.ends[n - 1] = end;
      return;
    }
    if (n === this.starts.length) {
      const s = new Float64Array(n * 2);
      const e = new Float64Array(n * 2);
      s.set(this.starts);
      e.set(this.ends);
      this.starts = s;
      this.ends = e;
    }
    this.starts[n] = start;
    this.ends[n] = end;
    this.n = n + 1;
  }

  /** Union of the extents, and the ranges covered more than once. */
  resolve(): { union: Range[]; doubles: Range[] } {
    const idx = new Uint32Array(this.n);
    for (let i = 0; i < this.n; i++) idx[i] = i;
    const s = this.starts;
    const e = this.ends;
    idx.sort((a, b) => s[a]! - s[b]! || e[a]! - e[b]!);
    const union: Range[] = [];
    const doubles = new RangeSet();
    for (const i of idx) {
      const start = s[i]!;
      const end = e[i]!;
      const last = union[union.length - 1];
      if (last && start < last.end) {
        doubles.add(start, Math.min(end, last.end));
        last.end = Math.max(last.end, end);
      } else if (last && start === last.end) {
        last.end = end;
      } else {
        union.push({ start, end });
      }
    }
    return { union, doubles: doubles.list };
  }
}

/** a \ b for sorted, disjoint range lists. */
export function subtractRanges(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  let j = 0;
  for (const r of a) {
    let cur = r.start;
    while (j < b.length && b[j]!.end <= cur) j++;
    let k = j;
    while (k < b.length && b[k]!.start < r.end) {
      if (b[k]!.start > cur) out.push({ start: cur, end: b[k]!.start });
      cur = Math.max(cur, b[k]!.end);
      k++;
    }
    if (cur < r.end) out.push({ start: cur, end: r.end });
  }
  return out;
}

/** Does [start, end) meet any of the sorted, disjoint ranges? */
export function hitsRanges(ranges: readonly Range[], start: number, end: number): boolean {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid]!.end <= start) lo = mid + 1;
    else hi = mid;
  }
  return lo < ranges.length && ranges[lo]!.start < end;
}
