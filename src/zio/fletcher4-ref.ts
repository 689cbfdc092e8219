// The Fletcher-4 checksum written as literally as its definition
// (fletcher_4_native in OpenZFS zfs_fletcher.c), so the fast WASM kernels in
// fletcher4.ts have something obviously right to be tested against. Too slow
// for real use: BigInt per word.

/** a, b, c, d as ZFS keeps them in zio_cksum_t.zc_word[0..3]. */
export type Fletcher4Words = [bigint, bigint, bigint, bigint];

/**
 * Fletcher-4 over `data` read as little-endian 32-bit words; a..d wrap mod
 * 2^64. `data.byteLength` must be a multiple of 4.
 */
export function fletcher4Ref(data: Uint8Array): Fletcher4Words {
  if (data.byteLength % 4 !== 0) throw new RangeError(`fletcher4: length ${data.byteLength} is not a multiple of 4`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let a = 0n;
  let b = 0n;
  let c = 0n;
  let d = 0n;
  for (let off = 0; off < data.byteLength; off += 4) {
    a = BigInt.asUintN(64, a + BigInt(dv.getUint32(off, true)));
    b = BigInt.asUintN(64, b + a);
    c = BigInt.asUintN(64, c + b);
    d = BigInt.asUintN(64, d + c);
  }
  return [a, b, c, d];
}

/** The reference result as the 32 bytes stored in a block pointer's blk_cksum. */
export function fletcher4RefBytes(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  const dv = new DataView(out.buffer);
  fletcher4Ref(data).forEach((w, i) => dv.setBigUint64(i * 8, w, true));
  return out;
}
