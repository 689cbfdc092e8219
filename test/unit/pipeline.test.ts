// Compressed files written ahead of their dnodes go through the image's
// BlockPipeline: each file's end is taken later, once its blocks come back
// from compression, and the next file goes on meanwhile. Where every block
// lands, and every file's FileData, must be what writing the files one after
// the other gives; anything else that takes space in between (here an
// uncompressed file) must find the blocks ahead of it placed first.
import { describe, expect, it } from 'vitest';
import { COMP_LZ4, COMP_OFF } from '../../src/zio/blkptr.js';
import { CompressPool, mapJobRing, takeJob, type CompressHelper, type JobRing } from '../../src/zio/compress-pool.js';
import { FileDataWriter, type FileData } from '../../src/zpl/filedata.js';
import { ZioWriter } from '../../src/zio/writer.js';
import { SpaceAllocator } from '../../src/vdev/allocator.js';
import { VDEV_LABEL_START_SIZE } from '../../src/vdev/geometry.js';

const MIB = 1024 * 1024;
const REC = 128 * 1024;

/** A file's bytes: text-like (compresses), random (does not), zeros (a hole), or a mix by record. */
function content(size: number, kind: 'text' | 'random' | 'zeros' | 'mixed', seed: number): Uint8Array {
  const b = new Uint8Array(size);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const k = kind === 'mixed' ? (['text', 'zeros', 'random'] as const)[Math.floor(i / REC) % 3] : kind;
    b[i] = k === 'zeros' ? 0 : k === 'random' ? x >>> 24 : 'the quick brown fox '.charCodeAt(i % 20) + (i % 997 === 0 ? 1 : 0);
  }
  return b;
}

// sizes across the cases: empty, embedded (tiny), one block, one hole, several records with holes and a tail
const FILES: { size: number; kind: 'text' | 'random' | 'zeros' | 'mixed'; comp: number }[] = [
  { size: 5000, kind: 'text', comp: COMP_LZ4 },
  { size: 0, kind: 'text', comp: COMP_LZ4 },
  { size: 90, kind: 'text', comp: COMP_LZ4 },
  { size: 7000, kind: 'random', comp: COMP_LZ4 },
  { size: REC, kind: 'zeros', comp: COMP_LZ4 },
  { size: 5 * REC + 3000, kind: 'mixed', comp: COMP_LZ4 },
  { size: 2 * REC + 100, kind: 'random', comp: COMP_OFF }, // takes space in between
  { size: 40_000, kind: 'text', comp: COMP_LZ4 },
  { size: 300, kind: 'random', comp: COMP_OFF },
  { size: 3 * REC, kind: 'text', comp: COMP_LZ4 },
  { size: 1, kind: 'random', comp: COMP_LZ4 },
];

function image() {
  const disk = new Uint8Array(32 * MIB);
  const file = { write: (off: number, d: Uint8Array) => { disk.set(d, off - VDEV_LABEL_START_SIZE); } };
  const zio = new ZioWriter(file as never, new SpaceAllocator(8, 22, 9, 32 * MIB), 4);
  zio.embedded = true;
  return { disk, zio };
}

function feed(w: FileDataWriter, data: Uint8Array, blocks: boolean): void {
  if (!blocks) {
    for (let o = 0; o < data.length; o += 10_000) w.write(data.subarray(o, Math.min(data.length, o + 10_000)));
    return;
  }
  for (let o = 0; o < data.length; o += w.blksz) {
    const block = new Uint8Array(w.blksz);
    const n = Math.min(w.blksz, data.length - o);
    block.set(data.subarray(o, o + n));
    w.writeBlock(block, n);
  }
}

/**
 * A helper thread stand-in: 'never' takes a job (they are done when
 * retired, so the queue holds them as long as it can), 'at once' does each
 * as it is submitted (placed at once), 'sometimes' one submission in three.
 */
function helper(kind: 'never' | 'at once' | 'sometimes'): CompressHelper {
  let ring: JobRing | undefined;
  let n = 0;
  return {
    lend: (sab) => { ring = mapJobRing(sab); },
    wake: () => { if (kind === 'at once' || (kind === 'sometimes' && n++ % 3 === 1)) takeJob(ring!); },
  };
}

describe('BlockPipeline: files ended later land as files written one by one', () => {
  for (const [blocks, helps] of [[false, 'never'], [true, 'never'], [false, 'at once'], [true, 'sometimes']] as const) {
    it(`fed in ${blocks ? 'whole blocks' : 'chunks'}, a helper that takes jobs ${helps}`, () => {
      const datas = FILES.map((f, i) => content(f.size, f.kind, i + 1));

      // one after the other, each compressed on the spot
      const serial = image();
      const want = FILES.map((f, i) => {
        const w = new FileDataWriter(serial.zio, f.size, REC, f.comp);
        feed(w, datas[i]!, blocks);
        return w.end();
      });

      // ahead, through the ring
      const piped = image();
      const pool = new CompressPool(0, helper(helps));
      piped.zio.usePool(pool);
      const got: (FileData | undefined)[] = FILES.map(() => undefined);
      const order: number[] = [];
      const then = (token: number, d: FileData) => { order.push(token); got[token] = d; };
      // files written while the one before still waited for its end
      let overlapped = 0;
      FILES.forEach((f, i) => {
        const w = new FileDataWriter(piped.zio, f.size, REC, f.comp, false, true);
        feed(w, datas[i]!, blocks);
        if (i > 0 && got[i - 1] === undefined) overlapped++;
        if (w.piped) {
          w.endLater(i, then);
        } else {
          got[i] = w.end();
          order.push(i);
        }
      });
      // (or this test would prove nothing)
      if (helps === 'never') expect(overlapped).toBeGreaterThan(2);
      piped.zio.pipeline!.drain();
      pool.close();

      expect(order).toEqual(FILES.map((_, i) => i));
      for (let i = 0; i < FILES.length; i++) {
        const norm = (d: FileData) => ({ ...d, bp: Buffer.from(JSON.stringify(d.bp, (_k, v) => (v instanceof Uint8Array ? [...v] : v))).toString('hex') });
        expect(norm(got[i]!), `file ${i}`).toEqual(norm(want[i]!));
      }
      expect(piped.zio.alloc.position).toBe(serial.zio.alloc.position);
      expect({ ...piped.zio.charge }).toEqual({ ...serial.zio.charge });
      expect(piped.zio.embeddedCount).toBe(serial.zio.embeddedCount);
      expect(Buffer.from(piped.disk).equals(Buffer.from(serial.disk))).toBe(true);
    });
  }
});
