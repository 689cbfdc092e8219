// One compression worker: waits on its slot's state word, compresses the
// block it finds there, posts the result length and goes back to waiting.
import { workerData } from 'node:worker_threads';
import { compressBlock } from './compress.js';
import { SLOT_BYTES, STATES } from './compress-pool.js';

const sab = (workerData as { sab: SharedArrayBuffer }).sab;
const ctrl = new Int32Array(sab, 0, 4);
const input = new Uint8Array(sab, 16, SLOT_BYTES);
const output = new Uint8Array(sab, 16 + SLOT_BYTES);

for (;;) {
  let state = Atomics.load(ctrl, 0);
  while (state === STATES.IDLE || state === STATES.DONE) {
    Atomics.wait(ctrl, 0, state);
    state = Atomics.load(ctrl, 0);
  }
  if (state === STATES.QUIT) break;
  const c = compressBlock(ctrl[3]!, input.subarray(0, ctrl[1]!));
  if (c) output.set(c);
  ctrl[2] = c ? c.length : -1;
  Atomics.store(ctrl, 0, STATES.DONE);
  Atomics.notify(ctrl, 0);
}
