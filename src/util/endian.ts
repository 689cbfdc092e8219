// All on-disk structures are written little-endian whatever the host is, so
// the image bytes do not depend on the build machine (the block pointer's
// byteorder bit says so to readers). Big-endian fields (XDR, fat-ZAP values,
// SHA-256 words) are written explicitly where the format demands them.

export function u64le(buf: Uint8Array, off: number, v: bigint | number): void {
  if (typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER && Number.isInteger(v) && off >= 0 && off + 8 <= buf.length) {
    const lo = v >>> 0;
    const hi = (v - lo) / 4294967296;
    buf[off] = lo; buf[off + 1] = lo >>> 8; buf[off + 2] = lo >>> 16; buf[off + 3] = lo >>> 24;
    buf[off + 4] = hi; buf[off + 5] = hi >>> 8; buf[off + 6] = hi >>> 16; buf[off + 7] = hi >>> 24;
    return;
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), true);
}

export function u32le(buf: Uint8Array, off: number, v: number): void {
  if (!(off >= 0 && off + 4 <= buf.length)) throw new RangeError('Offset is outside the bounds of the DataView');
  buf[off] = v; buf[off + 1] = v >>> 8; buf[off + 2] = v >>> 16; buf[off + 3] = v >>> 24;
}

/** Big-endian, as ZFS's lz4 framing and ZAP's packed integers are. */
export function u32be(buf: Uint8Array, off: number, v: number): void {
  if (!(off >= 0 && off + 4 <= buf.length)) throw new RangeError('Offset is outside the bounds of the DataView');
  buf[off] = v >>> 24; buf[off + 1] = v >>> 16; buf[off + 2] = v >>> 8; buf[off + 3] = v;
}

export function u16le(buf: Uint8Array, off: number, v: number): void {
  if (!(off >= 0 && off + 2 <= buf.length)) throw new RangeError('Offset is outside the bounds of the DataView');
  buf[off] = v; buf[off + 1] = v >>> 8;
}

export function rd64le(buf: Uint8Array, off: number): bigint {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getBigUint64(off, true);
}

export function rd32le(buf: Uint8Array, off: number): number {
  // (bytes rather than a DataView made per call: block pointers are read so, once per file)
  if (!(off >= 0 && off + 4 <= buf.length)) throw new RangeError('Offset is outside the bounds of the DataView');
  return (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0;
}

export function rd16le(buf: Uint8Array, off: number): number {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint16(off, true);
}

/** A safe integer from a 64-bit field (throws if it would lose precision). */
export function num(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`value ${v} exceeds 2^53`);
  return Number(v);
}
