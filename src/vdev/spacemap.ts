// Space maps (include/sys/space_map.h): one per metaslab, listing the runs
// allocated in it. Without the spacemap_v2 feature only one-word entries may
// be used: offset (47 bits) | type (1 bit) | run length - 1 (15 bits), in
// units of 2^ashift relative to the metaslab start; longer runs are split.
import { rd64le, u64le } from '../util/endian.js';
import { Extent } from './allocator.js';
import { highbit64 } from './geometry.js';

export const SPACE_MAP_PHYS_SIZE_V0 = 24; // smp_object, smp_length, smp_alloc; no histogram
/** With spacemap_histogram: the V0 fields, 5 words of padding, then smp_histogram. */
export const SPACE_MAP_PHYS_SIZE = 320;
export const SPACE_MAP_HISTOGRAM_SIZE = 32;
const SMP_HISTOGRAM_OFFSET = 64;
const SM_RUN_MAX = 1 << 15;

/** Encode the allocated runs of one metaslab (offsets relative to it) as space map entries. */
export function encodeSpaceMapEntries(runs: Extent[], msStart: number, ashift: number): Uint8Array {
  const words: bigint[] = [];
  const unit = 2 ** ashift;
  for (const r of runs) {
    let off = (r.start - msStart) / unit;
    let len = (r.end - r.start) / unit;
    while (len > 0) {
      const n = Math.min(len, SM_RUN_MAX);
      words.push((BigInt(off) << 16n) | BigInt(n - 1)); // type bit 15 = 0: ALLOC
      off += n;
      len -= n;
    }
  }
  const buf = new Uint8Array(words.length * 8);
  words.forEach((w, i) => u64le(buf, i * 8, w));
  return buf;
}

/** Decode one-word ALLOC/FREE entries (debug entries are skipped). */
export function decodeSpaceMapEntries(buf: Uint8Array, length: number, ashift: number): { type: 'alloc' | 'free'; start: number; size: number }[] {
  const out: { type: 'alloc' | 'free'; start: number; size: number }[] = [];
  const unit = 2 ** ashift;
  for (let i = 0; i < length; i += 8) {
    const w = rd64le(buf, i);
    if (w >> 63n) {
      if (((w >> 62n) & 3n) === 3n) throw new Error('two-word space map entries are not expected here');
      continue; // debug entry
    }
    out.push({
      type: (w >> 15n) & 1n ? 'free' : 'alloc',
      start: Number((w >> 16n) & ((1n << 47n) - 1n)) * unit,
      size: (Number(w & 0x7fffn) + 1) * unit,
    });
  }
  return out;
}

/**
 * The histogram OpenZFS keeps in a space map's header once spacemap_histogram
 * is enabled: how many free segments of the metaslab fall in each power of
 * two, bucket 0 being 2^ashift bytes. It is what metaslab_sync() records
 * (space_map_histogram_add() of the loaded metaslab's free tree), and what
 * the import weighs and rates a metaslab's fragmentation by before it ever
 * loads the space map. Segments beyond the last bucket count there as that
 * many segments of its size, as space_map_histogram_add() normalizes them
 * (only metaslabs over 2^(31+ashift) bytes have such). `runs` are the
 * allocated extents of the metaslab [msStart, msStart+msSize).
 */
export function spaceMapHistogram(runs: readonly Extent[], msStart: number, msSize: number, ashift: number): number[] {
  const hist = new Array<number>(SPACE_MAP_HISTOGRAM_SIZE).fill(0);
  const last = SPACE_MAP_HISTOGRAM_SIZE - 1;
  const free = (size: number): void => {
    if (size <= 0) return;
    const bucket = highbit64(size) - 1 - ashift;
    hist[Math.min(bucket, last)]! += bucket > last ? 2 ** (bucket - last) : 1;
  };
  let at = msStart;
  for (const r of [...runs].sort((a, b) => a.start - b.start)) {
    if (r.start < at) throw new Error(`space map runs overlap or leave the metaslab at ${r.start}`);
    if (r.end > msStart + msSize) throw new Error(`space map run ${r.start}-${r.end} runs past the metaslab`);
    free(r.start - at);
    at = r.end;
  }
  free(msStart + msSize - at);
  return hist;
}

/** A space map header: the 24-byte form, or the 320-byte one when given a histogram. */
export function encodeSpaceMapPhys(object: number, length: number, alloc: number, histogram?: readonly number[]): Uint8Array {
  const b = new Uint8Array(histogram ? SPACE_MAP_PHYS_SIZE : SPACE_MAP_PHYS_SIZE_V0);
  u64le(b, 0, object);
  u64le(b, 8, length);
  u64le(b, 16, alloc);
  if (histogram) {
    if (histogram.length !== SPACE_MAP_HISTOGRAM_SIZE) throw new Error('space map histogram size');
    histogram.forEach((n, i) => u64le(b, SMP_HISTOGRAM_OFFSET + i * 8, n));
  }
  return b;
}
