// Block pointers as the reader needs them: every DVA (ditto copies too, for
// checksums and space accounting) and the gang bit, which decodeBp drops.
// Embedded block pointers (data inside the pointer) have no DVA.
import { BlkPtr, decodeBp, Dva } from '../zio/blkptr.js';
import { hex, ReadError } from './errors.js';

export interface ReaderBp extends BlkPtr {
  /** All non-empty DVAs, copy 0 first (dva === dvas[0]). Empty for holes and embedded pointers. */
  dvas: Dva[];
  /** Some DVA is a gang block (not supported by this reader). */
  gang: boolean;
}

const TWO32 = 2 ** 32;

/**
 * Decode the blkptr_t at buf[off]; throws ReadError for what this reader
 * cannot read. Ordinary pointers are decoded here with 32-bit reads (the
 * reader decodes millions of them; decodeBp's BigInts dominated profiles),
 * embedded ones by decodeBp. A unit test holds the two to the same answers.
 */
export function readBp(buf: Uint8Array, off: number): ReaderBp {
  const dv = new DataView(buf.buffer, buf.byteOffset + off, 128);
  const propLo = dv.getUint32(48, true);
  const propHi = dv.getUint32(52, true);
  if (propHi & 0x80) {
    let bp: BlkPtr;
    try {
      bp = decodeBp(buf, off);
    } catch (e) {
      throw new ReadError((e as Error).message);
    }
    if (!(propHi >>> 31)) throw new ReadError('big-endian blocks are not supported');
    return { ...bp, dvas: [], gang: false };
  }
  const birth = dv.getUint32(80, true) + dv.getUint32(84, true) * TWO32;
  const dvas: Dva[] = [];
  let gang = false;
  for (let i = 0; i < 3; i++) {
    const asize = (dv.getUint32(16 * i, true) & 0xffffff) * 512;
    if (asize === 0) continue;
    const hi = dv.getUint32(16 * i + 12, true);
    if (hi >>> 31) gang = true;
    dvas.push({
      vdev: dv.getUint32(16 * i + 4, true),
      offset: (dv.getUint32(16 * i + 8, true) + (hi & 0x7fffffff) * TWO32) * 512,
      asize,
    });
  }
  // A pointer whose first DVA is empty is a hole (hole_birth may give it a birth txg).
  const first = (dv.getUint32(0, true) & 0xffffff) !== 0;
  if (!first) {
    const hole = { dva: null, lsize: 0, psize: 0, comp: 0, cksumType: 0, type: 0, level: 0, birth: 0, fill: 0, cksum: EMPTY_CKSUM, dvas: [], gang: false };
    if (birth === 0) return hole;
    return { ...hole, lsize: ((propLo & 0xffff) + 1) * 512, type: (propHi >>> 16) & 0xff, level: (propHi >>> 24) & 0x1f, birth };
  }
  // the data of a big-endian block would need byte-swapping
  if (!(propHi >>> 31)) throw new ReadError('big-endian blocks are not supported');
  return {
    dva: dvas[0]!,
    lsize: ((propLo & 0xffff) + 1) * 512,
    psize: ((propLo >>> 16) + 1) * 512,
    comp: propHi & 0x7f,
    cksumType: (propHi >>> 8) & 0xff,
    type: (propHi >>> 16) & 0xff,
    level: (propHi >>> 24) & 0x1f,
    birth,
    fill: dv.getUint32(88, true) + dv.getUint32(92, true) * TWO32,
    cksum: buf.slice(off + 96, off + 128),
    dvas,
    gang,
  };
}

const EMPTY_CKSUM = new Uint8Array(32);

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
