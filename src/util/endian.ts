// All on-disk structures are written little-endian whatever the host is, so
// the image bytes do not depend on the build machine (the block pointer's
// byteorder bit says so to readers). Big-endian fields (XDR, fat-ZAP values,
// SHA-256 words) are written explicitly where the format demands them.

export function u64le(buf: Uint8Array, off: number, v: bigint | number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), true);
}

export function u32le(buf: Uint8Array, off: number, v: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  dv.setUint32(off, v >>> 0, true);
}

export function u16le(buf: Uint8Array, off: number, v: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  dv.setUint16(off, v & 0xffff, true);
}

export function rd64le(buf: Uint8Array, off: number): bigint {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getBigUint64(off, true);
}

export function rd32le(buf: Uint8Array, off: number): number {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(off, true);
}

export function rd16le(buf: Uint8Array, off: number): number {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint16(off, true);
}

/** A safe integer from a 64-bit field (throws if it would lose precision). */
export function num(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`value ${v} exceeds 2^53`);
  return Number(v);
}
