// FileDataSlab keeps each written file's FileData packed (block pointers
// without their always-zero words): what comes back out must be what went in,
// byte for byte, for every kind of top block pointer a file can have.
import { describe, expect, it } from 'vitest';
import { BP_SIZE, COMP_LZ4, COMP_OFF, CKSUM_FLETCHER4, encodeBp, HOLE, type BlkPtr } from '../../src/zio/blkptr.js';
import { DMU_OT_PLAIN_FILE_CONTENTS } from '../../src/dmu/types.js';
import { FileDataSlab, type FileData } from '../../src/zpl/filedata.js';

function cksum(seed: number): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, i) => (seed * 31 + i * 7) & 0xff);
}

const plain: BlkPtr = {
  dva: { vdev: 0, offset: 0x1234_5678_9000, asize: 8192 }, lsize: 5120, psize: 5120, comp: COMP_OFF,
  cksumType: CKSUM_FLETCHER4, type: DMU_OT_PLAIN_FILE_CONTENTS, level: 0, birth: 4, fill: 1, cksum: cksum(1),
};
const indirect: BlkPtr = { ...plain, dva: { vdev: 0, offset: 2 ** 40, asize: 131072 }, lsize: 131072, psize: 4096, comp: COMP_LZ4, level: 2, fill: 40961, cksum: cksum(2) };
const embedded: BlkPtr = {
  dva: null, lsize: 300, psize: 37, comp: COMP_LZ4, cksumType: 0, type: DMU_OT_PLAIN_FILE_CONTENTS, level: 0, birth: 4, fill: 1,
  cksum: new Uint8Array(32), embedded: Uint8Array.from({ length: 37 }, (_, i) => 200 - i),
};

/** Numbers beyond 32 bits when `big` (a file of 8 GiB and more); the start of its range always is. */
function data(bp: BlkPtr, n: number, big = false): FileData {
  const b = big ? 2 ** 33 : 0;
  return {
    size: b + n, blksz: 131072, nlevels: 1 + (n % 5), maxblkid: (big ? 65535 : 0) + n, used: 2 * b + 512 * n, bp,
    psize: b + 3 * n, lsize: b + 5 * n, start: 2 ** 35 + n, end: 2 ** 35 + 2 * b + 2 * n + 1,
  };
}

function encoded(bp: BlkPtr): Uint8Array {
  const b = new Uint8Array(BP_SIZE);
  encodeBp(bp, b, 0);
  return b;
}

describe('FileDataSlab', () => {
  it('gives back every field and the exact block pointer bytes, across chunks', () => {
    const slab = new FileDataSlab();
    const kinds = [plain, indirect, embedded, HOLE];
    const stored = [];
    // more than one chunk of records, every kind of pointer in each
    for (let n = 0; n < 4200; n++) {
      const d = data(kinds[n % kinds.length]!, n, n % 7 === 3);
      stored.push({ d, w: slab.store(d) });
    }
    for (const { d, w } of stored) {
      const got = w.data;
      expect(got.bp).toEqual(encoded(d.bp as BlkPtr));
      expect({ ...got, bp: undefined }).toEqual({ ...d, bp: undefined });
    }
  });

  it('keeps whole a block pointer born in another txg than the others', () => {
    const slab = new FileDataSlab();
    const a = slab.store(data(plain, 1));
    const later = { ...plain, birth: 9 };
    const b = slab.store(data(later, 2));
    const hole = slab.store(data(HOLE, 3));
    expect(a.data.bp).toEqual(encoded(plain));
    expect(b.data.bp).toEqual(encoded(later));
    expect(hole.data.bp).toEqual(encoded(HOLE));
  });

  it('takes a block pointer that is already encoded', () => {
    const slab = new FileDataSlab();
    const w = slab.store(data(plain, 1));
    const again = slab.store(w.data);
    expect(again.data).toEqual(w.data);
  });

  it('refuses a data block pointer it could not keep whole', () => {
    const raw = encoded(plain);
    raw[16] = 1; // a second DVA
    expect(() => new FileDataSlab().store({ ...data(plain, 0), bp: raw })).toThrow(/more than one DVA/);
  });
});
