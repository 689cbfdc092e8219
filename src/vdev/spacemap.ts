// Space maps (include/sys/space_map.h): one per metaslab, listing the runs
// allocated in it. Without the spacemap_v2 feature only one-word entries may
// be used: offset (47 bits) | type (1 bit) | run length - 1 (15 bits), in
// units of 2^ashift relative to the metaslab start; longer runs are split.
import { rd64le, u64le } from '../util/endian.js';
import { Extent } from './allocator.js';

export const SPACE_MAP_BLOCK_SIZE = 4096; // OpenZFS's initial space map block size
export const SPACE_MAP_PHYS_SIZE_V0 = 24; // smp_object, smp_length, smp_alloc; no histogram
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

export function encodeSpaceMapPhys(object: number, length: number, alloc: number): Uint8Array {
  const b = new Uint8Array(SPACE_MAP_PHYS_SIZE_V0);
  u64le(b, 0, object);
  u64le(b, 8, length);
  u64le(b, 16, alloc);
  return b;
}
