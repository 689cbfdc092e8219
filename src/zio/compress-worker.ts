// One compression worker: takes jobs off the ring (takeJob) while there are
// any, and sleeps until the next submission when there are none.
import { workerData } from 'node:worker_threads';
import { mapJobRing, markFailed, QUIT, SUBMITTED, TAKEN, takeJob } from './compress-pool.js';

const ring = mapJobRing((workerData as { sab: SharedArrayBuffer }).sab);
const { ctrl } = ring;

try {
  for (;;) {
    if (Atomics.load(ctrl, QUIT) === 1) break;
    if (takeJob(ring)) continue;
    const s = Atomics.load(ctrl, SUBMITTED);
    // nothing untaken: sleep until the count of submissions moves
    if (Atomics.load(ctrl, TAKEN) >= s) Atomics.wait(ctrl, SUBMITTED, s);
  }
} catch (e) {
  markFailed(ring, e);
  throw e;
}
