#!/usr/bin/env node
// What it costs to move file data through a second thread: read a file from
// the page cache and write it into another file, either on one thread with
// one buffer, or with a reader thread filling a ring of shared slots that the
// writing thread empties (as a build's small files go: the build reads them,
// the image writer writes them). Prints wall and CPU seconds.
//
//   node bench/copy-threads.mjs SRC OUTDIR same|cross [KiB per read (512)] [slots (8)] [passes (12)]
//
// SRC should be in the page cache (cat it once) and OUTDIR on tmpfs, as in
// the whole-process benchmark; the output file is removed afterwards.

import fs from 'node:fs';
import path from 'node:path';
import { Worker, isMainThread, workerData } from 'node:worker_threads';

if (isMainThread) {
  const [src, outDir, mode = 'same', kib = '512', slotsArg = '8', passesArg = '12'] = process.argv.slice(2);
  if (!src || !outDir || (mode !== 'same' && mode !== 'cross')) {
    console.error('usage: copy-threads.mjs SRC OUTDIR same|cross [KiB] [slots] [passes]');
    process.exit(2);
  }
  const bs = Number(kib) * 1024, slots = Number(slotsArg), passes = Number(passesArg);
  const size = fs.statSync(src).size;
  const dst = path.join(outDir, `copy-threads-${process.pid}`);
  const t0 = process.hrtime.bigint();
  const r0 = process.resourceUsage();
  const out = fs.openSync(dst, 'w');
  try {
    if (mode === 'same') {
      const fd = fs.openSync(src, 'r');
      const buf = Buffer.allocUnsafeSlow(bs);
      let at = 0;
      for (let p = 0; p < passes; p++) {
        for (let pos = 0; pos < size; pos += bs) {
          const n = fs.readSync(fd, buf, 0, Math.min(bs, size - pos), pos);
          fs.writeSync(out, buf, 0, n, at);
          at += n;
        }
      }
      fs.closeSync(fd);
    } else {
      // per slot: 0 empty, n > 0 bytes ready, -1 the reader is done
      const ring = new SharedArrayBuffer(slots * bs);
      const ctl = new Int32Array(new SharedArrayBuffer(4 * slots));
      const worker = new Worker(new URL(import.meta.url), { workerData: { src, ring, ctl, slots, bs, size, passes } });
      const done = new Promise((resolve, reject) => { worker.on('exit', resolve); worker.on('error', reject); });
      const data = new Uint8Array(ring);
      let at = 0;
      for (let k = 0; ; k++) {
        const s = k % slots;
        let n;
        while ((n = Atomics.load(ctl, s)) === 0) Atomics.wait(ctl, s, 0);
        if (n < 0) break;
        fs.writeSync(out, data, s * bs, n, at);
        at += n;
        Atomics.store(ctl, s, 0);
        Atomics.notify(ctl, s);
      }
      await done;
    }
  } finally {
    fs.closeSync(out);
    fs.rmSync(dst, { force: true });
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const r1 = process.resourceUsage();
  const user = (r1.userCPUTime - r0.userCPUTime) / 1e6, sys = (r1.systemCPUTime - r0.systemCPUTime) / 1e6;
  console.log(`${mode} ${kib} KiB x ${mode === 'cross' ? slots : 1}: ${(size * passes / 1e9).toFixed(2)} GB, wall ${wall.toFixed(2)} s, user ${user.toFixed(2)} s, sys ${sys.toFixed(2)} s`);
} else {
  const { src, ring, ctl, slots, bs, size, passes } = workerData;
  const fd = fs.openSync(src, 'r');
  const data = new Uint8Array(ring);
  let k = 0;
  const claim = (s) => {
    for (let v; (v = Atomics.load(ctl, s)) !== 0;) Atomics.wait(ctl, s, v);
  };
  for (let p = 0; p < passes; p++) {
    for (let pos = 0; pos < size; pos += bs, k++) {
      const s = k % slots;
      claim(s);
      const n = fs.readSync(fd, data, s * bs, Math.min(bs, size - pos), pos);
      Atomics.store(ctl, s, n);
      Atomics.notify(ctl, s);
    }
  }
  const s = k % slots;
  claim(s);
  Atomics.store(ctl, s, -1);
  Atomics.notify(ctl, s);
  fs.closeSync(fd);
}
