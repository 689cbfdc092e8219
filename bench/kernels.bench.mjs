// Throughput of the per-block kernels, on the compiled output in dist/
// (npm run bench builds first). Each case says how many bytes one call
// processes, so the table can show MB/s next to tinybench's own numbers.
//
//   node bench/kernels.bench.mjs [--time MS] [filter]

import { createHash } from 'node:crypto';
import { Bench } from 'tinybench';
import { sha256 } from '@noble/hashes/sha2.js';
import { Fletcher4Kernel, fletcher4, fletcher4Buffer, fletcher4Variant } from '../dist/zio/fletcher4.js';
import { fletcher4Ref } from '../dist/zio/fletcher4-ref.js';

const args = process.argv.slice(2);
const timeIdx = args.indexOf('--time');
const time = timeIdx >= 0 ? Number(args.splice(timeIdx, 2)[1]) : 1000;
const filter = args[0] ?? '';

const KiB = 1024;

/** Incompressible, deterministic block contents. */
function block(size, seed) {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const blk128k = block(128 * KiB, 1);
const blk4k = block(4 * KiB, 2);

// In-place case: the block is built inside the kernel's memory.
const scratch128k = fletcher4Buffer(128 * KiB);
scratch128k.set(blk128k);
const scalarKernel = new Fletcher4Kernel('scalar');
const scalarScratch = scalarKernel.buffer(128 * KiB);
scalarScratch.set(blk128k);

// Keep results alive so nothing can be optimised away.
let sink = 0;

const cases = [
  { name: `fletcher4 wasm ${fletcher4Variant} 128K (copy in)`, bytes: 128 * KiB, fn: () => (sink ^= fletcher4(blk128k)[0]) },
  { name: `fletcher4 wasm ${fletcher4Variant} 128K (in place)`, bytes: 128 * KiB, fn: () => (sink ^= fletcher4(scratch128k)[0]) },
  { name: `fletcher4 wasm ${fletcher4Variant} 4K (copy in)`, bytes: 4 * KiB, fn: () => (sink ^= fletcher4(blk4k)[0]) },
  { name: 'fletcher4 wasm scalar 128K (in place)', bytes: 128 * KiB, fn: () => (sink ^= scalarKernel.checksum(scalarScratch)[0]) },
  { name: 'fletcher4 reference (BigInt) 128K', bytes: 128 * KiB, fn: () => (sink ^= Number(fletcher4Ref(blk128k)[0] & 0xffn)) },
  { name: 'sha256 @noble/hashes 128K', bytes: 128 * KiB, fn: () => (sink ^= sha256(blk128k)[0]) },
  // For comparison only: OpenSSL through node:crypto, native code.
  { name: 'sha256 node:crypto 128K', bytes: 128 * KiB, fn: () => (sink ^= createHash('sha256').update(blk128k).digest()[0]) },
].filter((c) => c.name.includes(filter));

const bench = new Bench({ name: 'kernels', time });
for (const c of cases) bench.add(c.name, c.fn);
await bench.run();

const rows = bench.tasks.map((task) => {
  const c = cases.find((x) => x.name === task.name);
  const r = task.result;
  if (!('period' in r)) return { kernel: task.name, state: r.state, error: r.error?.message };
  return {
    kernel: task.name,
    'MB/s': Math.round(c.bytes / 1e6 / (r.period / 1000)),
    'us/op': +(r.period * 1000).toFixed(2),
    'rme %': +r.latency.rme.toFixed(2),
    samples: r.latency.samples?.length ?? task.runs,
  };
});
console.table(rows);
if (sink === 0.5) console.log(sink); // never true; keeps sink observable
