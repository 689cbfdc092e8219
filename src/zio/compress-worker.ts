// One compression worker: sleeps until the board's round changes, then
// takes jobs off it with the others (runJobs) until none is left.
import { workerData } from 'node:worker_threads';
import { FAILED, JOBS, mapBoard, QUIT, ROUND, runJobs } from './compress-pool.js';

const board = mapBoard((workerData as { sab: SharedArrayBuffer }).sab);
const inputs = Array.from({ length: JOBS }, (_, j) => board.input(j));
const outputs = Array.from({ length: JOBS }, (_, j) => board.output(j));
const { ctrl } = board;

let seen = 0;
for (;;) {
  Atomics.wait(ctrl, ROUND, seen);
  seen = Atomics.load(ctrl, ROUND);
  if (Atomics.load(ctrl, QUIT) === 1) break;
  try {
    runJobs(board, inputs, outputs);
  } catch (e) {
    Atomics.store(ctrl, FAILED, 1);
    Atomics.notify(ctrl, 3);
    throw e;
  }
}
