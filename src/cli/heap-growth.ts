// How far the build thread's heap may grow between full collections. A
// build keeps nearly all it allocates (the tree), so V8's own factor (up to
// 2x below a 2 GB heap limit) is mostly room for garbage it will never
// need: on /usr that room was 25-35 MB of the peak RSS, and at 1.25x the
// extra collections run while the build waits for the image writer.
//
// But the factor is only worth it once the heap is large, and a V8 flag
// changed at run time has a cost: a thread started after the change boots
// 30-45 ms slower (an empty worker on Node 24: 36-45 ms against 66-90),
// as if V8 could no longer use the code its start-up snapshot carries for
// the old flags. Set as the build thread started, it made that thread take
// its request 50-80 ms later, a tenth of a Debian minbase's build
// (bench/RESULTS.md, twenty-second round). So it is set the first time the
// build's progress finds the heap past HEAP_GROWTH_FROM_BYTES: never on
// small trees, and on large ones well into the walk, after the threads it
// starts at the outset.

import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** The factor, in percent over what survived (TSMAKEFS_HEAP_GROWING_PERCENT; 0 leaves V8's own). */
export const HEAP_GROWING_PERCENT = Number(process.env['TSMAKEFS_HEAP_GROWING_PERCENT'] ?? 25);

/**
 * The heap (used bytes) from which the factor applies. At /usr's peak the
 * heap holds ~100 MB; below this V8 can overshoot by its own factor, at most
 * 2x this, which stays under that peak.
 */
export const HEAP_GROWTH_FROM_BYTES = 32 * 2 ** 20;

export interface HeapGrowthDeps {
  usedBytes(): number;
  setFlag(flag: string): void;
  /** A full (mark-compact) collection of this thread's heap, now. */
  collect(): void;
}

const v8Deps: HeapGrowthDeps = {
  usedBytes: () => getHeapStatistics().used_heap_size,
  // a V8 flag, so the whole process's: only the command line's own process
  // sets it (a program calling buildImage keeps its own)
  setFlag: (flag) => setFlagsFromString(flag),
  // V8 gives a context made after --expose-gc its gc(), which collects the
  // whole isolate's heap; a Node that did not would only lose the saving,
  // not the build
  collect: () => {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    if (typeof gc === 'function') gc();
  },
};

/**
 * A check to call now and then (it costs a heap statistics call): the first
 * call that finds the heap at `fromBytes` or more sets V8's
 * --heap-growing-percent, and later calls do nothing.
 */
export function heapGrowthCheck(percent = HEAP_GROWING_PERCENT, fromBytes = HEAP_GROWTH_FROM_BYTES, deps: HeapGrowthDeps = v8Deps): () => void {
  let done = !(percent > 0);
  return () => {
    if (done || deps.usedBytes() < fromBytes) return;
    done = true;
    deps.setFlag(`--heap-growing-percent=${percent}`);
  };
}

/**
 * A full collection as the objects pass starts, once, for a heap of
 * `fromBytes` or more (called at each progress report; acts on the first
 * one of phase 'metadata'). The build's peak is in that pass; the walk's
 * garbage (its maps, sorted name lists, arrays outgrown: most of it in
 * V8's large-object space, which only a full collection frees) is all dead
 * by then, and when V8 would collect it depends on how the walk's
 * allocations happened to fall. Collected now, the pass starts from what
 * is live, and V8 sizes the heap's next growth from that. /usr's 139k
 * entries on Node 24: peak RSS 148-166 MB (median 154) against 155-175
 * (163), for a collection of a ~35 MB heap; Node 20 and 22: 1-2 MB less
 * (bench/RESULTS.md, twenty-ninth round). Small trees (the minbase's heap
 * is 8-13 MB) are left alone: little to gain, and a flag set at run time
 * slows threads started after it (above).
 */
export function collectBeforeObjects(fromBytes = HEAP_GROWTH_FROM_BYTES, deps: HeapGrowthDeps = v8Deps): (phase: string) => void {
  let done = false;
  return (phase) => {
    if (done || phase !== 'metadata') return;
    done = true;
    if (deps.usedBytes() >= fromBytes) deps.collect();
  };
}
