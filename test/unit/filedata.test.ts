// FileDataSlab keeps each written file's FileData packed (block pointers
// without their always-zero words): what comes back out must be what went in,
// byte for byte, for every kind of top block pointer a file can have.
import { describe, expect, it } from 'vitest';
import { BP_SIZE, COMP_LZ4, COMP_OFF, CKSUM_FLETCHER4, decodeBp, encodeBp, HOLE, type BlkPtr } from '../../src/zio/blkptr.js';
import { DMU_OT_PLAIN_FILE_CONTENTS } from '../../src/dmu/types.js';
import { FileDataSlab, FileDataWriter, type FileData } from '../../src/zpl/filedata.js';
import { ZioWriter } from '../../src/zio/writer.js';
import { SpaceAllocator } from '../../src/vdev/allocator.js';
import { VDEV_LABEL_START_SIZE } from '../../src/vdev/geometry.js';

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

  // A one-level file whose pointer follows from its numbers keeps only the
  // checksum; any pointer that differs from what would be made in one word
  // must be kept as it is.
  describe('a one-level file keeps only its checksum where the rest follows from its numbers', () => {
    const SPAN = 8192;
    function oneBlock(n: number, change: (bp: BlkPtr, d: FileData) => void = () => {}): FileData {
      // (past 2^32 sectors: both words of the offset are made; `used` unlike the span, which word 0 is made from)
      const start = 2 ** 41 + n * SPAN;
      const bp: BlkPtr = { ...plain, dva: { vdev: 0, offset: start, asize: SPAN }, cksum: cksum(n) };
      const d: FileData = { size: 5000, blksz: 5120, nlevels: 1, maxblkid: 0, used: 3 * SPAN, bp, psize: 5120, lsize: 5120, start, end: start + SPAN };
      change(bp, d);
      return d;
    }

    it('gives back the exact bytes of derived pointers, six kinds of blk_prop and a seventh kept wide', () => {
      const slab = new FileDataSlab();
      const stored = [];
      for (let n = 0; n < 5000; n++) {
        // seven (compression, type) pairs: the slab derives six
        const d = oneBlock(n, (bp, f) => {
          bp.comp = n % 7 === 0 ? COMP_OFF : COMP_LZ4;
          bp.type = DMU_OT_PLAIN_FILE_CONTENTS + (n % 7);
          bp.psize = f.psize = 512 * (1 + (n % 10));
        });
        stored.push({ d, w: slab.store(d) });
      }
      for (const { d, w } of stored) {
        const got = w.data;
        expect(got.bp).toEqual(encoded(d.bp as BlkPtr));
        expect({ ...got, bp: undefined }).toEqual({ ...d, bp: undefined });
      }
      expect(slab.kept.derived).toBe(5000 - Math.ceil((5000 - 6) / 7));
      expect(slab.kept.wide).toBe(Math.ceil((5000 - 6) / 7));
    });

    it('keeps wide a pointer that differs in any word the numbers would give', () => {
      const misses: Array<(bp: BlkPtr, d: FileData) => void> = [
        (bp) => { bp.dva = { ...bp.dva!, vdev: 1 }; },
        (bp) => { bp.dva = { ...bp.dva!, asize: SPAN - 512 }; },
        (bp) => { bp.dva = { ...bp.dva!, offset: bp.dva!.offset + 512 }; },
        (bp) => { bp.dva = { ...bp.dva!, offset: bp.dva!.offset + 2 ** 41 }; },
        (bp) => { bp.lsize = 4608; },
        (bp) => { bp.psize = 4608; },
        (bp) => { bp.fill = 2; },
        (bp) => { bp.fill = 2 ** 32 + 1; },
        (_, d) => { d.nlevels = 2; },
      ];
      const slab = new FileDataSlab();
      slab.store(oneBlock(0));
      const stored = misses.map((m, n) => {
        const d = oneBlock(n + 1, m);
        return { d, want: encoded(d.bp as BlkPtr), w: slab.store(d) };
      });
      // bytes no BlkPtr sets: a GRID in dva[0]; a hole (birth 0) with blk_prop set
      const grid = oneBlock(misses.length + 1);
      const gridRaw = encoded(grid.bp as BlkPtr);
      gridRaw[3] = 1;
      const hole = { ...oneBlock(misses.length + 2), bp: encoded(HOLE) };
      hole.bp[48] = 0x1f;
      hole.bp[54] = DMU_OT_PLAIN_FILE_CONTENTS;
      stored.push({ d: grid, want: gridRaw, w: slab.store({ ...grid, bp: gridRaw }) });
      stored.push({ d: hole, want: hole.bp.slice(), w: slab.store(hole) });
      for (const { want, w } of stored) expect(w.data.bp).toEqual(want);
      expect(slab.kept).toEqual({ derived: 1, wide: misses.length + 2, embedded: 0 });
    });

    it('derives an empty file\'s hole and keeps an embedded pointer whole', () => {
      const slab = new FileDataSlab();
      const hole = slab.store({ ...data(HOLE, 0), nlevels: 1 });
      const emb = slab.store(data(embedded, 1));
      expect(hole.data.bp).toEqual(encoded(HOLE));
      expect(emb.data.bp).toEqual(encoded(embedded));
      expect(slab.kept).toEqual({ derived: 1, wide: 0, embedded: 1 });
    });
  });

  // An embedded pointer keeps blk_prop and its payload's psize bytes, not
  // 128: what comes back must still be the pointer, byte for byte.
  describe('embedded pointers', () => {
    /** An embedded pointer with `psize` bytes of payload, none of them zero (a lost byte shows). */
    function tiny(psize: number, seed: number, birth = 4): BlkPtr {
      const payload = Uint8Array.from({ length: psize }, (_, i) => 1 + ((seed * 131 + i * 29) % 255));
      return { ...embedded, lsize: psize + 3 + (seed % 50), psize, comp: seed % 2 ? COMP_LZ4 : COMP_OFF, birth, embedded: payload };
    }

    it('gives back every payload length, 1 to 112 bytes, across the arena\'s chunks', () => {
      const slab = new FileDataSlab();
      const stored = [];
      // ~2,000 records of 9-120 bytes: past two 64 KiB chunks
      for (let n = 0; n < 2000; n++) {
        const bp = tiny(1 + (n % 112), n);
        stored.push({ want: encoded(bp), w: slab.store(data(bp, n)) });
      }
      for (const { want, w } of stored) expect(w.data.bp).toEqual(want);
      expect(slab.kept).toEqual({ derived: 0, wide: 0, embedded: 2000 });
    });

    it('keeps whole one it could not give back from blk_prop and payload', () => {
      const slab = new FileDataSlab();
      const first = slab.store(data(tiny(20, 1), 1));
      // another txg than the first embedded pointer's
      const later = tiny(20, 2, 9);
      // a byte past the payload (psize 5), where only zeros are kept
      const odd = encoded(tiny(5, 3));
      odd[100] = 0x5a;
      // a psize field past what a payload can be: 113 (blk_prop bits 25-31 hold psize - 1)
      const wide = encoded(tiny(112, 4));
      wide[51] = (112 << 1) | (wide[51]! & 1);
      const stored = [
        { want: encoded(tiny(20, 1)), w: first },
        { want: wide.slice(), w: slab.store({ ...data(embedded, 4), bp: wide }) },
        { want: encoded(later), w: slab.store(data(later, 2)) },
        { want: odd.slice(), w: slab.store({ ...data(embedded, 3), bp: odd }) },
      ];
      for (const { want, w } of stored) expect(w.data.bp).toEqual(want);
      expect(slab.kept.embedded).toBe(1);
    });
  });

  it('refuses a data block pointer it could not keep whole', () => {
    const raw = encoded(plain);
    raw[16] = 1; // a second DVA
    expect(() => new FileDataSlab().store({ ...data(plain, 0), bp: raw })).toThrow(/more than one DVA/);
  });
});

// A file's last block is padded with zeros to the block size. Stored
// uncompressed, only the file's bytes are written: the image file is new and
// its space is allocated once, so the rest already reads as zeros. What the
// image then holds must be the whole padded block all the same.
describe('FileDataWriter: the zero padding of a last block is not written', () => {
  const MIB = 1024 * 1024;
  function run(comp: number, feed: 'chunks' | 'blocks', size: number) {
    const writes: { off: number; len: number }[] = [];
    const disk = new Uint8Array(16 * MIB);
    const image = { write: (off: number, d: Uint8Array) => { writes.push({ off: off - VDEV_LABEL_START_SIZE, len: d.length }); disk.set(d, off - VDEV_LABEL_START_SIZE); } };
    const zio = new ZioWriter(image as never, new SpaceAllocator(4, 22, 12, 16 * MIB), 4);
    const content = Uint8Array.from({ length: size }, (_, i) => (i * 131 + 7) % 251 + 1); // no zero byte, not compressible to nothing
    const w = new FileDataWriter(zio, size, 128 * 1024, comp);
    if (feed === 'chunks') {
      for (let o = 0; o < size; o += 10_000) w.write(content.subarray(o, Math.min(size, o + 10_000)));
    } else {
      for (let o = 0; o < size; o += w.blksz) {
        const block = new Uint8Array(w.blksz);
        const n = Math.min(w.blksz, size - o);
        block.set(content.subarray(o, o + n));
        w.writeBlock(block, n);
      }
    }
    w.end();
    return { writes, disk, content, blksz: w.blksz };
  }

  for (const feed of ['chunks', 'blocks'] as const) {
    it(`uncompressed, fed in ${feed}: the last block's zeros are left out, the image reads the same`, () => {
      const size = 2 * 131072 + 37_856;
      const { writes, disk, content } = run(COMP_OFF, feed, size);
      // three records and one indirect block, in that order
      expect(writes.slice(0, 3).map((x) => x.len)).toEqual([131072, 131072, 37_856]);
      // (bump allocation: the records lie one after the other from 0)
      expect(writes[2]!.off).toBe(2 * 131072);
      expect(Buffer.from(disk.subarray(0, size)).equals(Buffer.from(content))).toBe(true);
      expect(disk.subarray(size, 3 * 131072).every((b) => b === 0)).toBe(true);
    });

    it(`a small file, fed in ${feed}: one block of its size rounded to 512, written up to its last byte`, () => {
      const { writes, blksz } = run(COMP_OFF, feed, 1000);
      expect(blksz).toBe(1024);
      expect(writes.map((x) => x.len)).toEqual([1000]);
    });
  }

  it('compressed: the compressed block is written whole', () => {
    // the last record (5000 bytes, then zeros) compresses to a block of its own size
    const { writes } = run(COMP_LZ4, 'chunks', 131072 + 5000);
    expect(writes.length).toBeGreaterThanOrEqual(2);
    for (const x of writes) expect(x.len % 512).toBe(0);
  });
});

// Indirect blocks (of files written as they come: compressed ones) are put
// together in one scratch array shared by every object: a block with few
// pointers must not carry those of a fuller one written before it.
describe('indirect blocks', () => {
  it('hold their own block pointers and zeros, whatever was written before', () => {
    const indirect: Uint8Array[] = [];
    const image = { write: (_off: number, d: Uint8Array) => { if (d.length === 131072) indirect.push(Uint8Array.from(d)); } };
    const zio = new ZioWriter(image as never, new SpaceAllocator(4, 24, 9, 64 * 1024 * 1024), 4);
    // (metadata stored plainly, so the image sees the indirect blocks as built)
    zio.metaComp = COMP_OFF;
    const file = (blocks: number, seed: number) => {
      const w = new FileDataWriter(zio, blocks * 512, 512, COMP_LZ4);
      for (let i = 0; i < blocks; i++) w.write(new Uint8Array(512).fill((seed + i) % 255 + 1));
      return w.end();
    };
    // level 1: a full block of 1,024 pointers, then one of 476; level 2: two
    file(1500, 1);
    file(3, 7);
    expect(indirect.length).toBe(4);
    const used = (b: Uint8Array) => { let n = 0; while (n < 1024 && b.subarray(n * 128, n * 128 + 128).some((x) => x !== 0)) n++; return n; };
    expect(indirect.map(used)).toEqual([1024, 476, 2, 3]);
    for (const [i, n] of [[1, 476], [2, 2], [3, 3]] as const) {
      expect(indirect[i]!.subarray(n * 128).every((x) => x === 0), `block ${i} past its ${n} pointers`).toBe(true);
    }
    // and they are the pointers of the file's own blocks (three 512-byte data blocks in a row)
    const bps = [0, 1, 2].map((i) => decodeBp(indirect[3]!, i * 128));
    expect(bps.map((bp) => bp.lsize)).toEqual([512, 512, 512]);
  });
});
