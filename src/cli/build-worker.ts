// The build thread of the command line (see build.ts): runs the build the
// main thread describes and reports warnings, progress and the outcome as
// messages. Never prints anything itself.

import { parentPort, workerData } from 'node:worker_threads';
import { runBuild } from '../build.js';
import { invocationPlan, toWire, type WorkerMessage, type WorkerRequest } from './build.js';

const port = parentPort!;
const { inv, progress } = workerData as WorkerRequest;
const post = (m: WorkerMessage): void => port.postMessage(m);

try {
  const result = await runBuild(invocationPlan(inv, (m) => post({ t: 'warn', m })), inv.options, {
    onProgress: progress ? (p) => post({ t: 'progress', p }) : undefined,
  });
  post({ t: 'done', result });
} catch (e) {
  post({ t: 'error', e: toWire(e) });
}
