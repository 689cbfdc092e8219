// The build's side of a copy when the image writer thread is there
// (vdev/copy-ring.ts, STAGE_SLOTS): it reads and checksums a chunk into
// its stage and leaves the write to the writer, so the two threads never
// write one file at once. Both sides are driven here on one thread: the
// build's copier gets a descriptor of the image it cannot write with, so
// a write of its own would fail the chunk.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import {
  allocStage, CHUNK_IMAGE_ERROR, CHUNK_OK, ChunkCopier, chunkDone, cksumsAt, COPY_RING_BYTES, mapCopyRing, postChunk, setJobPath, setStage,
  stageFull, STAGE_SLOTS, waitStage, writeStaged, type CopyRing,
} from '../../src/vdev/copy-ring.js';
import { checksumInPlace, fletcher4 } from '../../src/zio/fletcher4.js';

const root = mkdtempSync(join(tmpdir(), 'tsm-stage-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const BLK = 4096;

/** A source file of `nblocks` 4 KiB blocks (the last one short), an empty image, a ring with the file's job, and a build-side copier with a stage. */
function fixture(name: string, nblocks: number) {
  const data = Buffer.alloc(nblocks * BLK - 100);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + nblocks) & 0xff;
  const src = join(root, `${name}.src`);
  writeFileSync(src, data);
  const imgPath = join(root, `${name}.img`);
  writeFileSync(imgPath, Buffer.alloc(0));
  const ring = mapCopyRing(new SharedArrayBuffer(COPY_RING_BYTES), 0);
  setJobPath(ring, 0, Buffer.from(src));
  const stage = allocStage();
  checksumInPlace(stage);
  // the stage is adopted buffer 3 here (any id the writer can resolve)
  setStage(ring, 3);
  const readOnly = openSync(imgPath, 'r');
  const build = new ChunkCopier(ring, readOnly, undefined, stage);
  const stageBytes = new Uint8Array(stage.buffer);
  const source = (id: number): Uint8Array => {
    expect(id).toBe(3);
    return stageBytes;
  };
  return { data, imgPath, ring, build, readOnly, source };
}

/** Post chunk `seq` of job 0: `count` blocks from `first`, block b at image offset 8192 + b * 2 * BLK (a gap after each). */
function post(ring: CopyRing, seq: number, first: number, count: number, size: number): void {
  postChunk(ring, seq, 0, first, count, BLK, size, (b) => 8192 + b * 2 * BLK);
}

describe('chunks the build reads for the image writer', () => {
  test('are checksummed at once, written only by the writer, and done only then; the stage holds STAGE_SLOTS', () => {
    const n = STAGE_SLOTS + 2;
    const { data, imgPath, ring, build, readOnly, source } = fixture('order', n * 2);
    for (let c = 0; c < n; c++) post(ring, c, c * 2, 2, data.length);
    // the build takes as many as its stage holds, then no more
    for (let c = 0; c < STAGE_SLOTS; c++) expect(build.copyNext()).toBe(true);
    expect(build.copyNext()).toBe(false);
    expect(stageFull(ring)).toBe(true);
    // waiting for a free slot waits while there is none (up to its time limit)
    let t = performance.now();
    waitStage(ring, 60);
    expect(performance.now() - t).toBeGreaterThanOrEqual(50);
    for (let c = 0; c < STAGE_SLOTS; c++) expect(chunkDone(ring, c)).toBe(false);
    // their checksums are there before the write
    const block = (b: number): Buffer => {
      const out = Buffer.alloc(BLK);
      data.copy(out, 0, b * BLK, Math.min(data.length, (b + 1) * BLK));
      return out;
    };
    expect(Buffer.from(ring.cksums.subarray(cksumsAt(1), cksumsAt(1) + 32)).equals(Buffer.from(fletcher4(block(2))))).toBe(true);
    const img = openSync(imgPath, 'r+');
    // the writer writes the oldest first, and each is done once written
    expect(writeStaged(ring, img, source, () => false)).toBe(true);
    expect(chunkDone(ring, 0)).toBe(true);
    expect(chunkDone(ring, 1)).toBe(false);
    // a slot is free again: no wait, and the build takes the next chunk
    expect(stageFull(ring)).toBe(false);
    t = performance.now();
    waitStage(ring, 60);
    expect(performance.now() - t).toBeLessThan(50);
    expect(build.copyNext()).toBe(true);
    while (writeStaged(ring, img, source, () => false));
    expect(build.copyNext()).toBe(true);
    expect(writeStaged(ring, img, source, () => false)).toBe(true);
    expect(writeStaged(ring, img, source, () => false)).toBe(false);
    for (let c = 0; c < n; c++) {
      expect(chunkDone(ring, c)).toBe(true);
      expect(ring.status[(c % 256) * 2]).toBe(CHUNK_OK);
    }
    // every block at its offset, nothing past the file's end written
    const got = readFileSync(imgPath);
    expect(got.length).toBe(8192 + (2 * n * 2 - 2) * BLK + (data.length - (n * 2 - 1) * BLK));
    for (let b = 0; b < n * 2; b++) {
      const at = 8192 + b * 2 * BLK;
      const len = Math.min(BLK, data.length - b * BLK);
      expect(got.subarray(at, at + len).equals(data.subarray(b * BLK, b * BLK + len)), `block ${b}`).toBe(true);
    }
    build.close();
    closeSync(img);
    closeSync(readOnly);
  });

  test('a write the writer fails is the chunk\'s image error; after a quit they are only marked done', () => {
    const { data, ring, build, readOnly, source } = fixture('fail', 4);
    post(ring, 0, 0, 2, data.length);
    post(ring, 1, 2, 2, data.length);
    expect(build.copyNext()).toBe(true);
    expect(build.copyNext()).toBe(true);
    // the writer's descriptor cannot write either: EBADF
    expect(writeStaged(ring, readOnly, source, () => false)).toBe(true);
    expect(chunkDone(ring, 0)).toBe(true);
    expect(ring.status[0]).toBe(CHUNK_IMAGE_ERROR);
    expect(ring.status[1]).toBe(-9);
    // skipped (the build quit): done, no write tried
    expect(writeStaged(ring, readOnly, source, () => true)).toBe(true);
    expect(chunkDone(ring, 1)).toBe(true);
    expect(ring.status[2]).toBe(CHUNK_OK);
    build.close();
    closeSync(readOnly);
  });
});
