// fill() on memory shared between threads stores element by element (2-3
// GB/s on the benchmark machine): zeros are copied in from a zeroed array
// instead (copyBytes: a memmove where Node makes one).
import { copyBytes } from './bytes.js';

const ZEROS = new Uint8Array(128 * 1024);

/** Zero `data` from `from` to `to` (its shared memory above all). */
export function zeroShared(data: Uint8Array, from: number, to: number): void {
  while (from < to) {
    const n = Math.min(to - from, ZEROS.length);
    copyBytes(data, n === ZEROS.length ? ZEROS : ZEROS.subarray(0, n), from);
    from += n;
  }
}
