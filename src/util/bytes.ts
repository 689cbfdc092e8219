// Copies of block-sized byte ranges where one side may lie in shared memory
// (the rings the build's threads share). V8's TypedArray.prototype.set makes
// such a copy with relaxed atomic loads and stores, as the JavaScript memory
// model asks of shared memory: 13-28 GB/s where source and target are alike
// modulo 8, ~3.5 GB/s where they are not, against ~45 GB/s for a plain
// memmove. Node's Buffer copy is that memmove on Node 22 and later (on Node
// 26 not from one shared buffer into another), but on Node 22 and 24 only
// when the source is a view of its whole buffer (a view of part of it takes
// the slow path), hence the whole-buffer views below. On Node 20 it is no
// faster than set(). The threads that share a ring order their accesses
// with Atomics, so no copy here races with a write.
// (bench/RESULTS.md, thirty-third round)

const bufferCopy = Buffer.prototype.copy as (this: Uint8Array, target: Uint8Array, targetStart: number, sourceStart: number, sourceEnd: number) => number;

/** Below this, set() is as fast: the copy is short next to the call (measured on Node 24 and 26). */
const SMALL = 512;

const wholeViews = new WeakMap<ArrayBufferLike, Uint8Array>();

/** A view of all of `b`'s buffer, made once per buffer. */
function wholeOf(b: Uint8Array): Uint8Array {
  const buf = b.buffer;
  let w = wholeViews.get(buf);
  if (w === undefined || w.length !== buf.byteLength) {
    w = new Uint8Array(buf);
    wholeViews.set(buf, w);
  }
  return w;
}

/** `dst.set(src, at)`, as a memmove where Node makes one: it fits or throws, as set() does. */
export function copyBytes(dst: Uint8Array, src: Uint8Array, at = 0): void {
  const n = src.length;
  if (n < SMALL) {
    dst.set(src, at);
    return;
  }
  if (!(at >= 0 && at + n <= dst.length)) throw new RangeError(`copyBytes: ${n} bytes do not fit at ${at} of ${dst.length}`);
  const from = src.byteOffset;
  bufferCopy.call(wholeOf(src), dst, at, from, from + n);
}
