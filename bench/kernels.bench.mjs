// Throughput of the per-block kernels, on the compiled output in dist/
// (npm run bench builds first). Each case says how many bytes (and, for the
// metadata kernels, how many items) one call processes, so the table can show
// MB/s and items/s next to tinybench's own numbers.
//
//   node bench/kernels.bench.mjs [--time MS] [--no-parallel] [filter]
//
// Kernels: fletcher4 (WASM vs the BigInt reference), SHA-256, lz4 (tsmakefs's WASM encoder and lz4js) block
// compression of 128 KiB records (text-like and random), ZAP building
// (buildZap, 100 / 1k / 50k directory entries) and nvlist packing of a
// label config. After the table, unless --no-parallel or a filter that does
// not match 'lz4', lz4 is also run on one worker thread per core to give the
// aggregate rate the ">= 200 MB/s on 2 cores" target is about.

import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { Bench } from 'tinybench';
import { sha256 } from '@noble/hashes/sha2.js';
import { Fletcher4Kernel, fletcher4, fletcher4Buffer, fletcher4Variant } from '../dist/zio/fletcher4.js';
import { fletcher4Ref } from '../dist/zio/fletcher4-ref.js';
import { buildZap } from '../dist/zap/index.js';
import { packNvlist } from '../dist/vdev/nvlist.js';
import { labelConfig } from '../dist/vdev/config.js';
import { lz4CompressZfs } from '../dist/zio/compress.js';

const require = createRequire(import.meta.url);
const lz4 = require('lz4js');

const args = process.argv.slice(2);
const timeIdx = args.indexOf('--time');
const time = timeIdx >= 0 ? Number(args.splice(timeIdx, 2)[1]) : 1000;
const npIdx = args.indexOf('--no-parallel');
const parallel = npIdx < 0;
if (npIdx >= 0) args.splice(npIdx, 1);
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

/**
 * Text-like, deterministic block contents: words from a small vocabulary,
 * spaces and newlines, about what source files and man pages look like to
 * lz4 (compresses to roughly half).
 */
function textBlock(size, seed) {
  const words = (
    'the of and to in is that for it as with was on be by this are or from at which an not have ' +
    'int return if else struct static void const char unsigned size_t uint64_t error buffer offset ' +
    'block pointer checksum object dataset pool vdev label uberblock dnode level indirect record'
  ).split(' ');
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  let i = 0;
  let col = 0;
  while (i < size) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const w = words[(x >>> 0) % words.length];
    for (let k = 0; k < w.length && i < size; k++) out[i++] = w.charCodeAt(k);
    col += w.length + 1;
    if (i < size) out[i++] = col > 72 ? 10 : 32;
    if (col > 72) col = 0;
  }
  return out;
}

const blk128k = block(128 * KiB, 1);
const blk4k = block(4 * KiB, 2);
const txt128k = textBlock(128 * KiB, 3);

// lz4: the way a ZFS writer would use lz4js per record: compressBlock into a
// preallocated destination with a hash table cleared for each block (ZFS
// stores a 4-byte big-endian length followed by the raw lz4 block).
const lz4Dst = new Uint8Array(lz4.compressBound(128 * KiB) + 4);
const lz4Hash = new Uint32Array(1 << 16);
function lz4Record(src) {
  lz4Hash.fill(0);
  return lz4.compressBlock(src, lz4Dst, 0, src.length, lz4Hash);
}
// compressBlock returns 0 when it found no match at all (the block is then
// stored raw); lz4js's skip heuristic makes that case fast.
const lz4Ratio = (b) => { const n = lz4Record(b); return n === 0 ? 'no match, stored raw' : `ratio ${(n / b.length).toFixed(2)}`; };
const lz4TextRatio = lz4Ratio(txt128k);
const lz4RandRatio = lz4Ratio(blk128k);

// ZAP building: directory-like entries (name -> DT_REG << 60 | objid), as
// ZplWriter.directory() hands them to buildZap.
const zapEnc = new TextEncoder();
function dirEntries(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({ name: zapEnc.encode(`file-${String(i).padStart(6, '0')}.${i % 3 ? 'txt' : 'so.1'}`), value: (8n << 60n) | BigInt(1000 + i) });
  }
  return out;
}
const zap100 = dirEntries(100);
const zap1k = dirEntries(1000);
const zap50k = dirEntries(50000);
const zapSalt = 0x1234_5678_9abc_def1n;
const zapKind = (e) => buildZap(e, { salt: zapSalt }).kind;

// nvlist: the label config written into all four labels.
const labelCfg = labelConfig({
  poolName: 'zroot', poolGuid: 0x1122334455667788n, vdevGuid: 0x0fedcba987654321n, txg: 4, createTxg: 4,
  ashift: 12, asize: 8 * 2 ** 30 - 4 * 2 ** 20, msArray: 64, msShift: 29, vdevPath: '/dev/null',
});
const labelCfgBytes = packNvlist(labelCfg).length;

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
  { name: `lz4js compressBlock 128K text (${lz4TextRatio})`, bytes: 128 * KiB, fn: () => (sink ^= lz4Record(txt128k)) },
  { name: `lz4js compressBlock 128K random (${lz4RandRatio})`, bytes: 128 * KiB, fn: () => (sink ^= lz4Record(blk128k)) },
  // What tsmakefs itself runs: its WebAssembly lz4 encoder with ZFS's framing
  // (lz4js's output breaks OpenZFS's decoder near block ends; README).
  { name: 'lz4 wasm (tsmakefs) lz4CompressZfs 128K text', bytes: 128 * KiB, fn: () => (sink ^= lz4CompressZfs(txt128k)?.length ?? 0) },
  { name: 'lz4 wasm (tsmakefs) lz4CompressZfs 128K random', bytes: 128 * KiB, fn: () => (sink ^= lz4CompressZfs(blk128k)?.length ?? 0) },
  // The convenience API: allocates its output and frames it (what naive use costs).
  { name: 'lz4js compress() frame 128K text (allocating)', bytes: 128 * KiB, fn: () => (sink ^= lz4.compress(txt128k).length) },
  { name: `zap buildZap 100 entries (${zapKind(zap100)})`, items: 100, fn: () => (sink ^= buildZap(zap100, { salt: zapSalt }).blocks.length) },
  { name: `zap buildZap 1k entries (${zapKind(zap1k)})`, items: 1000, fn: () => (sink ^= buildZap(zap1k, { salt: zapSalt }).blocks.length) },
  { name: `zap buildZap 50k entries (${zapKind(zap50k)})`, items: 50000, fn: () => (sink ^= buildZap(zap50k, { salt: zapSalt }).blocks.length) },
  { name: `nvlist packNvlist label config (${labelCfgBytes} B)`, bytes: labelCfgBytes, items: 1, fn: () => (sink ^= packNvlist(labelCfg).length) },
].filter((c) => c.name.includes(filter));

const bench = new Bench({ name: 'kernels', time });
for (const c of cases) bench.add(c.name, c.fn);
await bench.run();

const rows = bench.tasks.map((task) => {
  const c = cases.find((x) => x.name === task.name);
  const r = task.result;
  if (!('period' in r)) return { kernel: task.name, state: r.state, error: r.error?.message };
  const perSec = 1000 / r.period;
  return {
    kernel: task.name,
    'MB/s': c.bytes === undefined ? '' : Math.round((c.bytes / 1e6) * perSec),
    'items/s': c.items === undefined ? '' : Math.round(c.items * perSec),
    'us/op': +(r.period * 1000).toFixed(2),
    'rme %': +r.latency.rme.toFixed(2),
    samples: r.latency.samples?.length ?? task.runs,
  };
});
console.table(rows);
if (sink === 0.5) console.log(sink); // never true; keeps sink observable

// lz4 on every core at once: one worker per core, each compressing the same
// mix of text-like and random records for a fixed time; the aggregate is
// what a checksum/compression worker pool could reach.
if (parallel && 'lz4js compressBlock 128K'.includes(filter)) {
  const threads = availableParallelism();
  const ms = Math.max(1000, time * 2);
  const src = `
    const { parentPort, workerData } = require('node:worker_threads');
    const lz4 = require(workerData.lz4);
    const blocks = workerData.blocks.map((b) => new Uint8Array(b));
    const dst = new Uint8Array(lz4.compressBound(131072) + 4);
    const hash = new Uint32Array(65536);
    const run = (until) => { let n = 0, bytes = 0; while (performance.now() < until) { for (const b of blocks) { hash.fill(0); lz4.compressBlock(b, dst, 0, b.length, hash); bytes += b.length; n++; } } return { n, bytes }; };
    run(performance.now() + 200); // warm-up
    parentPort.postMessage({ t0: performance.now(), ...run(performance.now() + workerData.ms), t1: performance.now() });
  `;
  const lz4Path = require.resolve('lz4js');
  const runPool = (n, blocks) =>
    Promise.all(
      Array.from({ length: n }, () => new Promise((resolve, reject) => {
        const w = new Worker(src, { eval: true, workerData: { lz4: lz4Path, blocks: blocks.map((b) => b.slice().buffer), ms } });
        w.once('message', (m) => { resolve(m); void w.terminate(); });
        w.once('error', reject);
      })),
    ).then((rs) => rs.reduce((mbps, r) => mbps + r.bytes / 1e6 / ((r.t1 - r.t0) / 1000), 0));
  const prows = [];
  for (const [label, blocks] of [['text', [txt128k]], ['random', [blk128k]], ['50/50 mix', [txt128k, blk128k]]]) {
    for (const n of [...new Set([1, threads])]) {
      prows.push({ 'lz4js compressBlock 128K, worker threads': label, threads: n, 'aggregate MB/s': Math.round(await runPool(n, blocks)) });
    }
  }
  console.table(prows);
}
