// The shared memory between an ImageFile and its writer thread: a ring of
// slots the build fills with blocks while the writer thread pwrite()s the
// slots filled before. The hand-off is two counters and Atomics.wait/notify,
// so the synchronous build pipeline needs no event loop.
//
// Each slot carries its own segment table (file offset, length, source):
// blocks of one slot need not be contiguous in the image (a small file's
// block is followed by the unwritten rest of its allocation), and a gap only
// costs the writer one more pwrite, never a hand-off. A segment's bytes are
// either the slot's own (copied in by the build, in segment order) or lie in
// another shared buffer the writer was given (the file reader's ring): those
// are written from where they are, with no copy into the slot.

import { COPY_RING_BYTES, mapCopyRing, type CopyRing } from './copy-ring.js';

export const RING_SLOTS = 4;
export const SLOT_BYTES = 1024 * 1024;
export const MAX_SEGMENTS = 1024;

// control words (Int32Array indexes)
export const PRODUCED = 0; // slots handed to the writer so far
export const CONSUMED = 1; // slots the writer is done with
export const QUIT = 2; // 1: the writer should stop once idle
export const STOPPED = 3; // 1: the writer has left its loop
export const FAILED = 4; // 1: a pwrite failed; the writer skips the rest
export const ERRNO = 5;
export const CODE_LEN = 6;
export const STARTED = 7; // 1: the writer is running
// counts everything the writer may have to act on (a slot handed over,
// chunks to copy posted, quit): it reads this first and waits on it, so
// nothing that comes after its last look is missed
export const WAKE = 8;
// 1: the build lent the writer its compression jobs (a message on the
// writer's port carries the ring): the writer looks for that message only
// then, not at every idle turn
export const JOBS_LENT = 9;

/** Tell the writer there is something new for it (see WAKE). */
export function wakeWriter(ctrl: Int32Array): void {
  Atomics.add(ctrl, WAKE, 1);
  Atomics.notify(ctrl, WAKE);
}
const CTRL_WORDS = 16;
const CODE_BYTES = 64;

/** A segment's source word for bytes held in the slot itself. */
export const SRC_SLOT = -1;
/** Words per segment: image offset, length, source (SRC_SLOT or an adopted buffer's id), offset in that buffer. */
export const SEG_FIELDS = 4;

export interface Ring {
  sab: SharedArrayBuffer;
  /** Host files the writer copies itself when it has no slot to write (copy-ring.ts). */
  copy: CopyRing;
  ctrl: Int32Array;
  /** The failed syscall's errno code ("ENOSPC"), as ASCII. */
  code: Uint8Array;
  /** Per slot: segment count, then SEG_FIELDS words per segment. */
  segs: Float64Array;
  data: Uint8Array;
}

const SEG_WORDS = 1 + SEG_FIELDS * MAX_SEGMENTS;

export function segBase(slot: number): number {
  return slot * SEG_WORDS;
}

export function allocRing(): SharedArrayBuffer {
  return new SharedArrayBuffer(CTRL_WORDS * 4 + CODE_BYTES + RING_SLOTS * SEG_WORDS * 8 + RING_SLOTS * SLOT_BYTES + COPY_RING_BYTES);
}

export function mapRing(sab: SharedArrayBuffer): Ring {
  let off = 0;
  const ctrl = new Int32Array(sab, off, CTRL_WORDS);
  off += CTRL_WORDS * 4;
  const code = new Uint8Array(sab, off, CODE_BYTES);
  off += CODE_BYTES;
  const segs = new Float64Array(sab, off, RING_SLOTS * SEG_WORDS);
  off += RING_SLOTS * SEG_WORDS * 8;
  const data = new Uint8Array(sab, off, RING_SLOTS * SLOT_BYTES);
  off += RING_SLOTS * SLOT_BYTES;
  return { sab, ctrl, code, segs, data, copy: mapCopyRing(sab, off) };
}
