// The build thread of the command line (see build.ts): runs the build the
// main thread describes and reports warnings, progress and the outcome as
// messages. Never prints anything itself.

import { fstatSync } from 'node:fs';
import { MessageChannel, parentPort } from 'node:worker_threads';
import { runBuild } from '../build.js';
import { setImageWriterHost } from '../vdev/imagefile.js';
import { invocationPlan, toWire, type WorkerMessage, type WorkerRequest } from './build.js';
import { collectBeforeObjects, heapGrowthCheck } from './heap-growth.js';
import { fdPull, SocketPull, type TarPull } from '../input/tar-feed.js';

const port = parentPort!;
// The thread may be started before the command line is parsed
// (build-thread.ts): its request comes as the first message, and the
// build's modules above load while it is on its way.
const { inv, progress } = await new Promise<WorkerRequest>((resolve) => {
  port.once('message', resolve);
});
const post = (m: WorkerMessage): void => port.postMessage(m);

/**
 * "-": standard input, read here from descriptor 0 (a worker's process.stdin
 * is not the process's), into buffers the reader gives (tar-feed.ts): a pipe
 * or socket on this thread's event loop; anything else (a file, a terminal)
 * with positionless reads.
 */
function stdinPull(): TarPull {
  const st = fstatSync(0);
  return st.isFIFO() || st.isSocket() ? new SocketPull(0) : fdPull(0);
}

// The main thread has nothing to do but wait for this one: it writes the
// image (a thread of its own would cost ~8 MB for nothing).
setImageWriterHost((sab, fd) => {
  const { port1, port2 } = new MessageChannel();
  port.postMessage({ t: 'writer', sab, fd, port: port2 } satisfies WorkerMessage, [port2]);
  return port1;
});

// (checked at the build's progress ticks, at most every 100 ms)
const heapGrowth = heapGrowthCheck();
const collect = collectBeforeObjects();

try {
  const stdin = inv.inputs.includes('-') ? stdinPull() : undefined;
  const result = await runBuild(invocationPlan(inv, (m) => post({ t: 'warn', m }), stdin), inv.options, {
    onProgress: (p) => {
      heapGrowth();
      collect(p.phase);
      if (progress) post({ t: 'progress', p });
    },
  });
  post({ t: 'done', result });
} catch (e) {
  post({ t: 'error', e: toWire(e) });
}
