// The file reader thread: opens and reads the staged files the build asks
// for, in the order asked, into the shared ring (read-ring.ts), so that the
// open/read/close system calls and the copy out of the page cache run on
// another core than the checksumming and layout. Requests arrive as
// messages; between batches the thread returns to its event loop to get
// the next one.
import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import {
  blockOffset, mapReadRing, readBlock, MAX_RECORDS, R_CONSUMED, R_FAILED, R_PRODUCED, R_QUIT, R_STARTED, READ_SLOT_BYTES, READ_SLOTS, REC_ERROR,
  REC_LAST, REC_MORE, REC_SHRANK, REC_WORDS, tableBase,
} from './read-ring.js';

/** One message: paths (bytes, each ended by a NUL), their sizes and block sizes. */
interface Batch { paths: Uint8Array; sizes: Float64Array; blocks: Float64Array }

const { sab } = workerData as { sab: SharedArrayBuffer };
const { ctrl, table, data } = mapReadRing(sab);

const queue: Batch[] = [];
let seq = 0;
let produced = 0;
let fill = 0;
let recs = 0;
let haveSlot = false;

class Quit extends Error {}

/** Wait until the slot `produced` names is free again (the build is done with it). */
function acquire(): void {
  if (haveSlot) return;
  for (;;) {
    if (Atomics.load(ctrl, R_QUIT) === 1) throw new Quit();
    const c = Atomics.load(ctrl, R_CONSUMED);
    if (produced - c < READ_SLOTS) break;
    Atomics.wait(ctrl, R_CONSUMED, c);
  }
  haveSlot = true;
  fill = 0;
  recs = 0;
}

function publish(): void {
  if (!haveSlot || recs === 0) return;
  table[tableBase(produced % READ_SLOTS)] = recs;
  produced++;
  haveSlot = false;
  Atomics.store(ctrl, R_PRODUCED, produced);
  Atomics.notify(ctrl, R_PRODUCED);
}

/** A record of the slot being filled; `off`/`space`: where its bytes are in the slot. */
function record(file: number, len: number, status: number, off = 0, space = len): void {
  acquire();
  const at = tableBase(produced % READ_SLOTS) + 1 + REC_WORDS * recs;
  table[at] = file;
  table[at + 1] = len;
  table[at + 2] = status;
  table[at + 3] = off;
  table[at + 4] = space;
  recs++;
  if (recs === MAX_RECORDS) publish();
}

/** Node's errno of a failed call (the negated system error number); EIO for anything else. */
function errnoOf(e: unknown): number {
  const n = (e as { errno?: unknown }).errno;
  return typeof n === 'number' && Number.isInteger(n) && n < 0 ? n : -constants.errno.EIO;
}

function readFile(path: Buffer, size: number, block: number, file: number): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    record(file, errnoOf(e), REC_ERROR);
    return;
  }
  try {
    if (size === 0) {
      record(file, 0, REC_LAST);
      return;
    }
    readBlocks(fd, size, block, file);
  } catch (e) {
    if (e instanceof Quit) throw e;
    record(file, errnoOf(e), REC_ERROR);
  } finally {
    closeSync(fd);
  }
}

/** A file as whole blocks of `block` bytes (the last one zero-padded), one record each. */
function readBlocks(fd: number, size: number, block: number, file: number): void {
  let pos = 0;
  while (pos < size) {
    acquire();
    const off = blockOffset(fill, block);
    if (off < 0) {
      publish();
      continue;
    }
    const want = Math.min(block, size - pos);
    if (!readBlock(fd, data, (produced % READ_SLOTS) * READ_SLOT_BYTES + off, pos, want, block)) {
      record(file, 0, REC_SHRANK);
      return;
    }
    fill = off + block;
    pos += want;
    record(file, want, pos === size ? REC_LAST : REC_MORE, off, block);
  }
}

function pump(): void {
  try {
    while (queue.length > 0) {
      const { paths, sizes, blocks } = queue.shift()!;
      const bytes = Buffer.from(paths.buffer, paths.byteOffset, paths.byteLength);
      let start = 0;
      for (let i = 0; i < sizes.length; i++) {
        const end = bytes.indexOf(0, start);
        readFile(bytes.subarray(start, end), sizes[i]!, blocks[i]!, seq++);
        start = end + 1;
      }
    }
    // the build may be waiting for the files of a slot that is not full
    publish();
  } catch (e) {
    if (e instanceof Quit) process.exit(0);
    // anything else is a bug: say so to a build that may be waiting
    Atomics.store(ctrl, R_FAILED, 1);
    Atomics.notify(ctrl, R_PRODUCED);
    throw e;
  }
}

Atomics.store(ctrl, R_STARTED, 1);
parentPort!.on('message', (m: Batch | { quit: true }) => {
  if ('quit' in m) process.exit(0);
  queue.push(m);
  pump();
});
