// Block pointers as the reader needs them: every DVA (ditto copies too, for
// checksums and space accounting) and the gang bit, which decodeBp drops.
// Embedded block pointers (data inside the pointer) have no DVA.
import { BlkPtr, decodeBp, Dva } from '../zio/blkptr.js';
import { rd64le } from '../util/endian.js';
import { hex, ReadError } from './errors.js';

export interface ReaderBp extends BlkPtr {
  /** All non-empty DVAs, copy 0 first (dva === dvas[0]). Empty for holes and embedded pointers. */
  dvas: Dva[];
  /** Some DVA is a gang block (not supported by this reader). */
  gang: boolean;
}

const MASK63 = (1n << 63n) - 1n;

/** Decode the blkptr_t at buf[off]; throws ReadError for what this reader cannot read. */
export function readBp(buf: Uint8Array, off: number): ReaderBp {
  const prop = rd64le(buf, off + 48);
  if ((prop >> 39n) & 1n) {
    let bp: BlkPtr;
    try {
      bp = decodeBp(buf, off);
    } catch (e) {
      throw new ReadError((e as Error).message);
    }
    if (!((prop >> 63n) & 1n)) throw new ReadError('big-endian blocks are not supported');
    return { ...bp, dvas: [], gang: false };
  }
  const bp = decodeBp(buf, off);
  const dvas: Dva[] = [];
  let gang = false;
  for (let i = 0; i < 3; i++) {
    const w0 = rd64le(buf, off + 16 * i);
    const w1 = rd64le(buf, off + 16 * i + 8);
    const asize = Number(w0 & 0xffffffn) * 512;
    if (asize === 0) continue;
    if (w1 >> 63n) gang = true;
    dvas.push({ vdev: Number(w0 >> 32n), offset: Number(w1 & MASK63) * 512, asize });
  }
  // A pointer whose first DVA is empty is a hole (hole_birth may give it a birth txg).
  if (bp.dva === null || bp.dva.asize === 0 || dvas.length === 0) return { ...bp, dva: null, embedded: undefined, dvas: [], gang: false };
  // the data of a big-endian block would need byte-swapping
  if (!((prop >> 63n) & 1n)) throw new ReadError('big-endian blocks are not supported');
  return { ...bp, dva: dvas[0]!, dvas, gang };
}

/** A hole: no data at all (reads as zeros). */
export function isHoleBp(bp: BlkPtr): boolean {
  return bp.dva === null && bp.embedded === undefined;
}

/** "DVA[0]=<0:1a000:4000>" as zdb prints it. */
export function describeDva(d: Dva, i = 0): string {
  return `DVA[${i}]=<${d.vdev}:${d.offset.toString(16)}:${d.asize.toString(16)}>`;
}

export function describeBp(bp: ReaderBp): string {
  if (bp.embedded) return `embedded, ${bp.embedded.length} bytes`;
  return bp.dvas.map(describeDva).join(' ') || 'hole';
}

export { hex };
