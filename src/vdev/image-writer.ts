// The image's writer thread: pwrite()s each slot of the ring as the build
// hands it over (see image-ring.ts and image-writer-loop.ts), so the copy
// into the page cache runs on another core while the build reads,
// checksums and lays out the next blocks. Used where no thread with an idle
// event loop hosts the writer (setImageWriterHost in imagefile.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { runImageWriter } from './image-writer-loop.js';

const { sab, fd } = workerData as { sab: SharedArrayBuffer; fd: number };
runImageWriter(sab, fd, parentPort!);
