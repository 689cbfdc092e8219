// Files placed whole (dmu/planned.ts) and copied into place (vdev/copy-ring.ts,
// copy-queue.ts): the layout, the indirect blocks, and that a file copied
// from the host gives the same image as the same bytes fed in order, or a
// clear error when the file changes under the copy. (The kernel and zdb see
// such files in the golden case uncompressed-multilevel; these tests pin
// what our own code promises.)
import { mkdtempSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { PlannedObject, plannedLevels, PLANNED_INDBLKSHIFT } from '../../src/dmu/planned.js';
import { DMU_OT_PLAIN_FILE_CONTENTS } from '../../src/dmu/types.js';
import { SpaceAllocator } from '../../src/vdev/allocator.js';
import { VDEV_LABEL_START_SIZE } from '../../src/vdev/geometry.js';
import { ImageFile } from '../../src/vdev/imagefile.js';
import { decodeBp } from '../../src/zio/blkptr.js';
import { fletcher4 } from '../../src/zio/fletcher4.js';
import { ZioWriter } from '../../src/zio/writer.js';
import { FileDataSlab, FileDataWriter, type FileData } from '../../src/zpl/filedata.js';
import { COMP_OFF } from '../../src/zio/blkptr.js';
import { makeImage } from '../../src/image.js';
import { imageOptionsOf } from '../../src/build.js';
import { walkDirectories } from '../../src/input/walk.js';
import { prewriteData } from '../../src/input/prewrite.js';
import type { Inode } from '../../src/input/tree.js';

const dirs: string[] = [];
function tmp(name: string): string {
  const d = mkdtempSync(join(tmpdir(), `tsmakefs-planned-${name}-`));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Bytes that differ from block to block (so a block written in the wrong place shows). */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

describe('a FileDataSlab entry reserved ahead of its data (a copy under way)', () => {
  test('asks onMissing for it when read, and keeps a planned file\'s indirect block shift', () => {
    const slab = new FileDataSlab();
    const early = slab.reserve();
    const later = slab.store(fileData(1000, 1, undefined));
    expect(slab.has(early.index)).toBe(false);
    expect(slab.has(later.index)).toBe(true);
    const asked: number[] = [];
    slab.onMissing = (i) => { asked.push(i); slab.fill(i, fileData(300_000, 2, PLANNED_INDBLKSHIFT)); };
    expect(early.data.ibs).toBe(PLANNED_INDBLKSHIFT);
    expect(early.data.nlevels).toBe(2);
    expect(later.data.ibs).toBeUndefined();
    expect(asked).toEqual([early.index]);
    slab.onMissing = null;
    expect(() => slab.reserve().data).toThrow('read before it was stored');
  });
});

function fileData(size: number, nlevels: number, ibs: number | undefined): FileData {
  const blksz = nlevels > 1 ? 131072 : Math.ceil(size / 512) * 512;
  const d: FileData = {
    size, blksz, nlevels, maxblkid: Math.ceil(size / blksz) - 1, used: 8192, psize: 8192, lsize: 8192, start: 4096, end: 12288,
    bp: { dva: { vdev: 0, offset: 4096, asize: 4096 }, lsize: 4096, psize: 4096, comp: COMP_OFF, cksumType: 7, type: DMU_OT_PLAIN_FILE_CONTENTS, level: nlevels - 1, birth: 4, fill: 1, cksum: new Uint8Array(32).fill(3) },
  };
  if (ibs !== undefined) d.ibs = ibs;
  return d;
}

describe('planned levels', () => {
  test('32 pointers per 4 KiB indirect block, one top pointer', () => {
    expect(PLANNED_INDBLKSHIFT).toBe(12);
    expect([2, 32, 33, 1024, 1025, 32768, 32769].map(plannedLevels)).toEqual([2, 2, 3, 3, 4, 4, 5]);
  });
});

describe('a planned object', () => {
  test('level-0 blocks first, then each level of 4 KiB indirect blocks, built from the checksums', () => {
    const writes = new Map<number, Uint8Array>();
    const image = { write: (off: number, d: Uint8Array) => void writes.set(off, Uint8Array.from(d)) };
    const zio = new ZioWriter(image as never, new SpaceAllocator(4, 24, 12, 64 * 1024 * 1024), 4);
    const n = 40;
    const plan = new PlannedObject(zio, n, 8192, DMU_OT_PLAIN_FILE_CONTENTS);
    expect(plan.nlevels).toBe(3);
    // the data blocks lie in a row from the start, the two L1 and one L2 after them
    for (let i = 0; i < n; i++) expect(plan.dataOffset(i)).toBe(VDEV_LABEL_START_SIZE + i * 8192);
    expect(plan.end).toBe(n * 8192 + 3 * 4096);
    const blocks = Array.from({ length: n }, (_, i) => pattern(8192, i + 1));
    // the first L1 goes out as soon as its 32 children are in, the rest at the end
    blocks.slice(0, 32).forEach((b) => plan.push(fletcher4(b)));
    expect(writes.size).toBe(1);
    blocks.slice(32).forEach((b) => plan.push(fletcher4(b)));
    const top = plan.finish();
    expect(writes.size).toBe(3);
    const l1 = [0, 1].map((j) => writes.get(VDEV_LABEL_START_SIZE + n * 8192 + j * 4096)!);
    const l2 = writes.get(VDEV_LABEL_START_SIZE + n * 8192 + 2 * 4096)!;
    // L1 #1 holds blocks 32..39 and zeros after their pointers
    expect(l1[1]!.subarray(8 * 128).every((x) => x === 0)).toBe(true);
    for (let i = 0; i < n; i++) {
      const bp = decodeBp(l1[Math.floor(i / 32)]!, (i % 32) * 128);
      expect(bp.dva!.offset).toBe(i * 8192);
      expect(bp.lsize).toBe(8192);
      expect(bp.comp).toBe(COMP_OFF);
      expect(Buffer.from(bp.cksum).equals(Buffer.from(fletcher4(blocks[i]!)))).toBe(true);
    }
    const l2bps = [0, 1].map((j) => decodeBp(l2, j * 128));
    expect(l2bps.map((b) => [b.level, b.fill, b.lsize, b.dva!.offset])).toEqual([[1, 32, 4096, n * 8192], [1, 8, 4096, n * 8192 + 4096]]);
    expect(Buffer.from(l2bps[1]!.cksum).equals(Buffer.from(fletcher4(l1[1]!)))).toBe(true);
    expect([top.bp.level, top.bp.fill, top.nlevels, top.maxblkid]).toEqual([2, n, 3, n - 1]);
    expect(Buffer.from(top.bp.cksum).equals(Buffer.from(fletcher4(l2)))).toBe(true);
    expect(top.asize).toBe(n * 8192 + 3 * 4096);
  });
});

describe('a file copied from the host', () => {
  const size = 5_200_000 + 7;
  const data = pattern(size, 99);

  /** Write one file of `n` bytes into a fresh image, fed or copied; the image's bytes and the FileData. */
  function build(how: 'fed' | 'copied', dir: string, n: number): { bytes: Buffer; d: FileData } {
    const src = join(dir, `src-${n}.bin`);
    writeFileSync(src, data.subarray(0, n));
    const img = join(dir, `${how}-${n}.img`);
    const image = new ImageFile(img, 64 * 1024 * 1024);
    const zio = new ZioWriter(image, new SpaceAllocator(4, 24, 12, 64 * 1024 * 1024), 4);
    // something before it, so that its blocks do not start at 0
    zio.writeBlock(pattern(4096, 5), DMU_OT_PLAIN_FILE_CONTENTS, 0, 1, zio.charge);
    let d: FileData | undefined;
    if (how === 'fed') {
      const w = new FileDataWriter(zio, n, 128 * 1024, COMP_OFF);
      for (let off = 0; off < n; off += 100_000) w.write(data.subarray(off, Math.min(n, off + 100_000)));
      d = w.end();
    } else {
      const w = new FileDataWriter(zio, n, 128 * 1024, COMP_OFF, true);
      w.copyFrom(src, image.copier(), (x) => { d = x; }, (status) => new Error(`chunk failed: ${status}`));
      image.copier().settle();
    }
    image.commit();
    return { bytes: readFileSync(img), d: d! };
  }

  const bpJson = (d: FileData) => JSON.stringify(d.bp, (_k, v) => (v instanceof Uint8Array ? [...v] : v));

  // (a file of one block, copied, is placed whole too: the same block, no indirect one)
  for (const [n, levels] of [[size, 3], [70_000, 1]] as const) {
    test(`of ${n} bytes gives the image and the file data of the same bytes fed in order`, () => {
      const dir = tmp('same');
      const fed = build('fed', dir, n);
      const copied = build('copied', dir, n);
      expect(copied.d.nlevels).toBe(levels);
      expect(copied.d.ibs).toBe(levels > 1 ? PLANNED_INDBLKSHIFT : undefined);
      expect({ ...copied.d, bp: null }).toEqual({ ...fed.d, bp: null });
      expect(bpJson(copied.d)).toBe(bpJson(fed.d));
      expect(Buffer.compare(copied.bytes, fed.bytes)).toBe(0);
      // and the data is there, block after block
      const at = VDEV_LABEL_START_SIZE + 4096;
      expect(copied.bytes.subarray(at, at + n).equals(data.subarray(0, n))).toBe(true);
    });
  }

  test('a file that shrinks or goes away before it is copied: the error names it, no image is left', async () => {
    for (const change of ['shrink', 'remove'] as const) {
      const stage = tmp(`stage-${change}`);
      const out = tmp(`out-${change}`);
      writeFileSync(join(stage, 'small'), 'x');
      writeFileSync(join(stage, 'big'), data);
      const image = join(out, 'x.img');
      const source = async (ctx: Parameters<Exclude<Parameters<typeof makeImage>[0], Inode>>[0]) => {
        const root = walkDirectories([stage]);
        if (change === 'shrink') truncateSync(join(stage, 'big'), 1000);
        else unlinkSync(join(stage, 'big'));
        prewriteData(root, ctx);
        return root;
      };
      const opts = { ...imageOptionsOf({ image, inputs: [], poolName: 'cp', size: '64m', datasets: ['cp;compression=off'] }), workers: 0 };
      await expect(makeImage(source, opts)).rejects.toThrow(
        change === 'shrink' ? `${join(stage, 'big')}: file shrank while being read (expected ${size} bytes)` : `${join(stage, 'big')}: No such file or directory`,
      );
      expect(existsSync(image)).toBe(false);
      expect(readdirSync(out)).toEqual([]);
    }
  });
});
