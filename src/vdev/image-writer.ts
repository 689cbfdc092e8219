// The image's writer thread: pwrite()s each slot of the ring as the build
// hands it over (see image-ring.ts), so the copy into the page cache runs on
// the second core while the build reads, checksums and lays out the next
// blocks. A failed write is recorded for the build to report, and the rest
// is skipped, never waited on.
import { writeSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import {
  CODE_LEN, CONSUMED, ERRNO, FAILED, mapRing, PRODUCED, QUIT, RING_SLOTS, SEG_FIELDS, segBase, SLOT_BYTES, SRC_SLOT, STARTED, STOPPED,
} from './image-ring.js';

const { sab, fd } = workerData as { sab: SharedArrayBuffer; fd: number };
const ring = mapRing(sab);
const { ctrl } = ring;

function fail(e: unknown): void {
  const err = e as { code?: unknown; errno?: unknown };
  // no errno code: a bug, reported as such ('' makes the build say the thread failed)
  const code = typeof err.code === 'string' ? err.code : '';
  const n = Math.min(code.length, ring.code.length);
  for (let i = 0; i < n; i++) ring.code[i] = code.charCodeAt(i) & 0x7f;
  ctrl[CODE_LEN] = n;
  ctrl[ERRNO] = typeof err.errno === 'number' ? err.errno : -5;
  Atomics.store(ctrl, FAILED, 1);
}

// Shared buffers adopted by the build (ImageFile.adopt), by id. Each is
// announced by a message sent before any segment names it; this thread
// never returns to its event loop, so it takes the message itself.
const adopted: Uint8Array[] = [];

function source(id: number): Uint8Array {
  while (adopted[id] === undefined) {
    const m = receiveMessageOnPort(parentPort!);
    if (m === undefined) throw new Error(`segment names buffer ${id}, which was never sent`);
    const { adopt, sab } = m.message as { adopt: number; sab: SharedArrayBuffer };
    adopted[adopt] = new Uint8Array(sab);
  }
  return adopted[id]!;
}

function writeSlot(slot: number): void {
  const base = segBase(slot);
  const count = ring.segs[base]!;
  let pos = slot * SLOT_BYTES;
  for (let s = 0; s < count; s++) {
    const at = base + 1 + SEG_FIELDS * s;
    const offset = ring.segs[at]!;
    const len = ring.segs[at + 1]!;
    const src = ring.segs[at + 2]!;
    let done = 0;
    if (src === SRC_SLOT) {
      while (done < len) done += writeSync(fd, ring.data, pos + done, len - done, offset + done);
      pos += len;
    } else {
      const from = source(src);
      const start = ring.segs[at + 3]!;
      while (done < len) done += writeSync(fd, from, start + done, len - done, offset + done);
    }
    if (Atomics.load(ctrl, QUIT) === 1) return; // aborted: the file is about to be removed
  }
}

Atomics.store(ctrl, STARTED, 1);
Atomics.notify(ctrl, STARTED);
let consumed = 0;
try {
  for (;;) {
    const produced = Atomics.load(ctrl, PRODUCED);
    if (consumed === produced) {
      if (Atomics.load(ctrl, QUIT) === 1) break;
      Atomics.wait(ctrl, PRODUCED, produced);
      continue;
    }
    if (Atomics.load(ctrl, FAILED) === 0 && Atomics.load(ctrl, QUIT) === 0) {
      try {
        writeSlot(consumed % RING_SLOTS);
      } catch (e) {
        fail(e);
      }
    }
    consumed++;
    Atomics.store(ctrl, CONSUMED, consumed);
    Atomics.notify(ctrl, CONSUMED);
  }
} catch (e) {
  fail(e);
  Atomics.notify(ctrl, CONSUMED);
}
Atomics.store(ctrl, STOPPED, 1);
Atomics.notify(ctrl, STOPPED);
