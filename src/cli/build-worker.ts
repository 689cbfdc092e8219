// The build thread of the command line (see build.ts): runs the build the
// main thread describes and reports warnings, progress and the outcome as
// messages. Never prints anything itself.

import { createReadStream, fstatSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { MessageChannel, parentPort } from 'node:worker_threads';
import { runBuild } from '../build.js';
import { setImageWriterHost } from '../vdev/imagefile.js';
import { portChannel, setDirZapHost } from '../zpl/dirzaps.js';
import { invocationPlan, toWire, type WorkerMessage, type WorkerRequest } from './build.js';

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
 * is not the process's). A pipe or socket as a stream on this thread's event
 * loop; anything else (a file, a terminal) with positionless reads.
 */
function stdinStream(): Readable {
  const st = fstatSync(0);
  if (st.isFIFO() || st.isSocket()) return new Socket({ fd: 0, readable: true, writable: false });
  return createReadStream('', { fd: 0, autoClose: false, highWaterMark: 1 << 20 });
}

// The main thread has nothing to do but wait for this one: it writes the
// image (a thread of its own would cost ~8 MB for nothing).
setImageWriterHost((sab, fd) => {
  const { port1, port2 } = new MessageChannel();
  port.postMessage({ t: 'writer', sab, fd, port: port2 } satisfies WorkerMessage, [port2]);
  return port1;
});

// Directory ZAPs built ahead of the ZPL writer by the main thread, which
// idles through that pass (dirzaps.ts): opt-in, TSMAKEFS_DIRZAPS=1. On /usr
// it takes ~0.3-0.5 s off that pass (~1.9 -> ~1.5 s) but raises the peak
// RSS by ~15 MiB (the batches' buffers, allocated on one thread and freed
// by the other's next collection), more than the memory target leaves
// (bench/RESULTS.md, eighth round).
if (process.env.TSMAKEFS_DIRZAPS === '1') setDirZapHost(() => {
  const { port1, port2 } = new MessageChannel();
  const sab = new SharedArrayBuffer(4);
  port.postMessage({ t: 'dirzaps', sab, port: port2 } satisfies WorkerMessage, [port2]);
  return portChannel(port1, new Int32Array(sab));
});

try {
  const stdin = inv.inputs.includes('-') ? stdinStream() : undefined;
  const result = await runBuild(invocationPlan(inv, (m) => post({ t: 'warn', m }), stdin), inv.options, {
    onProgress: progress ? (p) => post({ t: 'progress', p }) : undefined,
  });
  post({ t: 'done', result });
} catch (e) {
  post({ t: 'error', e: toWire(e) });
}
