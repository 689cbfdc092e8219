// The reader and writer threads (src/input/host-reader*.ts,
// src/vdev/image-writer.ts) against their inline fallbacks. Under vitest the
// sources run untranspiled, where the thread scripts do not exist and both
// fall back to the calling thread; the compiled dist/ (built by `npm test`
// before vitest) has the scripts, so the threaded paths are loaded from there.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { REPO_ROOT } from '../helpers/proc.js';
import { Prng } from '../helpers/trees.js';
import { threadExecArgv } from '../../src/util/threads.js';
import type { Ring } from '../../src/vdev/image-ring.js';

test('helper threads get node\'s flags without --input-type (a worker given it fails to start)', () => {
  expect(threadExecArgv(['--input-type=module', '--cpu-prof', '--input-type', 'commonjs', '--max-old-space-size=100']))
    .toEqual(['--cpu-prof', '--max-old-space-size=100']);
});

const dist = (p: string) => join(REPO_ROOT, 'dist', p);
const haveDist = existsSync(dist('input/host-reader-worker.js')) && existsSync(dist('vdev/image-writer.js'));
const root = mkdtempSync(join(tmpdir(), 'tsmakefs-threads-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface ReaderModule {
  HostFileReader: new (record: number) => {
    request(path: string | Uint8Array, size: number): void;
    read(sink: (piece: Uint8Array, block?: Uint8Array) => void): void;
    close(): void;
  };
  HostReadError: new (...a: never[]) => Error & { code?: string; shrank: boolean };
}

const MIB = 1 << 20;
// around the ring's 1 MiB slots and 128 KiB records, and empty files
const SIZES = [0, 1, 511, 4096, 128 * 1024, 128 * 1024 + 1, MIB - 1, MIB, MIB + 1, 3 * MIB + 12345];

function makeFiles(dir: string, n: number): { path: string; data: Buffer }[] {
  mkdirSync(dir, { recursive: true });
  const r = new Prng(`threads-${n}`);
  const files: { path: string; data: Buffer }[] = [];
  for (let i = 0; i < n; i++) {
    const size = i < SIZES.length ? SIZES[i]! : r.bytes(1)[0]! * 37;
    const data = Buffer.from(r.bytes(size));
    const path = join(dir, `f${i}`);
    writeFileSync(path, data);
    files.push({ path, data });
  }
  return files;
}

for (const mode of ['thread', 'inline'] as const) {
  describe.runIf(mode === 'inline' || haveDist)(`HostFileReader (${mode})`, () => {
    const load = async (): Promise<ReaderModule> => {
      process.env.TSMAKEFS_READER = mode === 'thread' ? '1' : '0';
      return (await import(pathToFileURL(dist('input/host-reader.js')).href)) as ReaderModule;
    };

    test('hands every file over whole and in order, far past the ring and record table sizes', async () => {
      const { HostFileReader } = await load();
      const files = makeFiles(join(root, `many-${mode}`), 2500);
      const reader = new HostFileReader(128 * 1024);
      try {
        let next = 0;
        for (let i = 0; i < files.length; i++) {
          // requests run ahead of reads, as prewrite's window does
          while (next < files.length && next < i + 300) { reader.request(files[next]!.path, files[next]!.data.length); next++; }
          const got: Buffer[] = [];
          const size = files[i]!.data.length;
          reader.read((p, b) => {
            got.push(Buffer.from(p));
            if (mode === 'inline') return;
            // the thread hands over whole blocks, of the size a file of this size has at 128 KiB records
            expect(b, files[i]!.path).toBeDefined();
            expect(b!.length).toBe(size <= 128 * 1024 ? Math.max(512, Math.ceil(size / 512) * 512) : 128 * 1024);
            expect(Buffer.compare(b!.subarray(0, p.length), p)).toBe(0);
            expect(b!.subarray(p.length).every((x) => x === 0), 'zeros after the data').toBe(true);
          });
          const all = Buffer.concat(got);
          expect(all.length, files[i]!.path).toBe(size);
          expect(all.equals(files[i]!.data), files[i]!.path).toBe(true);
        }
      } finally {
        reader.close();
      }
    }, 60_000);

    test('a file that cannot be opened fails at its turn with its errno code; the ones before it arrive', async () => {
      const { HostFileReader, HostReadError } = await load();
      const files = makeFiles(join(root, `err-${mode}`), 20);
      const reader = new HostFileReader(128 * 1024);
      try {
        for (const f of files.slice(0, 10)) reader.request(f.path, f.data.length);
        reader.request(join(root, 'no-such-file'), 10);
        for (const f of files.slice(10)) reader.request(f.path, f.data.length);
        for (let i = 0; i < 10; i++) {
          const got: Buffer[] = [];
          reader.read((p) => got.push(Buffer.from(p)));
          expect(createHash('sha256').update(Buffer.concat(got)).digest('hex')).toBe(createHash('sha256').update(files[i]!.data).digest('hex'));
        }
        let err: unknown;
        try { reader.read(() => {}); } catch (e) { err = e; }
        expect(err).toBeInstanceOf(HostReadError);
        expect((err as { code?: string }).code).toBe('ENOENT');
      } finally {
        reader.close();
      }
    }, 60_000);

    test('any errno code comes back as the open call gave it (a socket: ENXIO on Linux)', async () => {
      const { HostFileReader, HostReadError } = await load();
      const dir = join(root, `sock-${mode}`);
      mkdirSync(dir, { recursive: true });
      const sock = join(dir, 's');
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(sock, resolve));
      let want: string | undefined;
      try { closeSync(openSync(sock, 'r')); } catch (e) { want = (e as { code?: string }).code; }
      expect(want, 'opening a socket fails').toBeDefined();
      const reader = new HostFileReader(128 * 1024);
      try {
        reader.request(sock, 10);
        let err: unknown;
        try { reader.read(() => {}); } catch (e) { err = e; }
        expect(err).toBeInstanceOf(HostReadError);
        expect((err as { code?: string }).code).toBe(want);
      } finally {
        reader.close();
        await new Promise((resolve) => server.close(resolve));
      }
    }, 60_000);

    test('paths that are not UTF-8 travel as bytes', async () => {
      const { HostFileReader } = await load();
      const dir = join(root, `odd-${mode}`);
      mkdirSync(dir, { recursive: true });
      const name = Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x66, 0xff, 0xfe, 0x0a, 0x41])]);
      writeFileSync(name, 'odd bytes');
      writeFileSync(join(dir, 'plain'), 'plain');
      const reader = new HostFileReader(128 * 1024);
      try {
        reader.request(new Uint8Array(name), 9);
        reader.request(join(dir, 'plain'), 5);
        for (const want of ['odd bytes', 'plain']) {
          const got: Buffer[] = [];
          reader.read((p) => got.push(Buffer.from(p)));
          expect(Buffer.concat(got).toString()).toBe(want);
        }
      } finally {
        reader.close();
      }
    }, 60_000);

    test('a file shorter than the walk saw is reported as shrunk', async () => {
      const { HostFileReader } = await load();
      const files = makeFiles(join(root, `shrank-${mode}`), 12);
      const reader = new HostFileReader(128 * 1024);
      try {
        reader.request(files[9]!.path, files[9]!.data.length + 100);
        let err: unknown;
        try { reader.read(() => {}); } catch (e) { err = e; }
        expect((err as { shrank?: boolean }).shrank).toBe(true);
      } finally {
        reader.close();
      }
    }, 60_000);
  });
}

interface ImageModule {
  ImageFile: new (path: string, size: number) => { write(off: number, data: Uint8Array): void; commit(): void; abort(): void };
}

for (const mode of ['thread', 'inline'] as const) {
  test.runIf(mode === 'inline' || haveDist)(`ImageFile (${mode}): scattered, contiguous, huge and tiny writes land where they were put`, async () => {
    process.env.TSMAKEFS_IMAGE_WRITER = mode === 'thread' ? '1' : '0';
    const { ImageFile } = (await import(pathToFileURL(dist('vdev/imagefile.js')).href)) as ImageModule;
    const size = 40 * MIB;
    const expected = Buffer.alloc(size);
    const path = join(root, `image-${mode}.img`);
    const img = new ImageFile(path, size);
    const r = new Prng(`image-${mode}`);
    const put = (off: number, len: number) => {
      const d = Buffer.from(r.bytes(len));
      img.write(off, d);
      d.copy(expected, off);
    };
    put(5 * MIB, 9 * MIB + 17); // larger than the whole ring
    let off = 20 * MIB;
    for (let i = 0; i < 3000; i++) { put(off, 512); off += 512 * (1 + (i % 3)); } // many segments per slot
    for (let i = 0; i < 50; i++) put(30 * MIB + i * 4096, 4096); // contiguous
    put(100, 300); // out of order, at the start
    img.commit();
    expect(readFileSync(path).equals(expected)).toBe(true);
  }, 60_000);
}

interface CopyModule {
  ImageFile: new (path: string, size: number) => {
    write(off: number, data: Uint8Array): void; commit(): void; abort(): void;
    copier(): {
      add(job: {
        path: string; size: number; blksz: number; nblocks: number; offset(i: number): number;
        blocks(first: number, cksums: Uint8Array): void; done(): void; failed(status: number, errno: number, message?: string): Error;
      }): void;
      collect(): void; settle(): void; readonly settled: boolean;
    };
  };
}

/** An image of `size` bytes and its copy queue, a folder for the files to copy, and what the image should hold. */
async function copyFixture(name: string, mode: 'thread' | 'inline', size: number) {
  process.env.TSMAKEFS_IMAGE_WRITER = mode === 'thread' ? '1' : '0';
  const { ImageFile } = (await import(pathToFileURL(dist('vdev/imagefile.js')).href)) as CopyModule;
  const { fletcher4 } = await import(pathToFileURL(dist('zio/fletcher4.js')).href) as { fletcher4(d: Uint8Array): Uint8Array };
  const dir = join(root, `${name}-${mode}`);
  mkdirSync(dir, { recursive: true });
  const path = join(root, `${name}-${mode}.img`);
  const img = new ImageFile(path, size);
  return { fletcher4, dir, r: new Prng(`${name}-${mode}`), path, img, expected: Buffer.alloc(size), copier: img.copier() };
}

// Files copied into place by whichever thread is free (vdev/copy-ring.ts):
// with the writer thread, it and the build share the chunks; without, the
// build copies each as it posts it. Either way every block lands at its
// own offset (runs broken where the offsets jump), the zeros past the end
// of a file are not written over anything, and the checksums handed back
// are those of each zero-padded block, in block order.
for (const mode of ['thread', 'inline'] as const) {
  test.runIf(mode === 'inline' || haveDist)(`copied files (${mode}): every block at its offset, checksums in block order`, async () => {
    const size = 160 * MIB;
    const { fletcher4, dir, r, path, img, expected, copier } = await copyFixture('copies', mode, size);
    const BLK = 128 * 1024;
    let next = 8192;
    const results: { want: Buffer[]; got?: Uint8Array }[] = [];
    for (let i = 0; i < 40; i++) {
      // small writes of the build's own between the files keep the writer's ring busy
      const own = Buffer.from(r.bytes(3000 + i));
      img.write(next, own);
      own.copy(expected, next);
      next += 4096;
      const fsize = BLK + 1 + (r.bytes(2)[0]! * 40_000) % (5 * MIB);
      const data = Buffer.from(r.bytes(fsize));
      const fpath = join(dir, `f${i}`);
      writeFileSync(fpath, data);
      const nblocks = Math.ceil(fsize / BLK);
      // a jump in the middle of some files (as at a metaslab boundary)
      const offsets: number[] = [];
      for (let b = 0; b < nblocks; b++) {
        if (i % 3 === 0 && b === Math.floor(nblocks / 2)) next += 12288;
        offsets.push(next);
        data.copy(expected, next, b * BLK, Math.min(fsize, (b + 1) * BLK));
        next += BLK;
      }
      const want: Buffer[] = [];
      for (let b = 0; b < nblocks; b++) {
        const block = Buffer.alloc(BLK);
        data.copy(block, 0, b * BLK, Math.min(fsize, (b + 1) * BLK));
        want.push(Buffer.from(fletcher4(block)));
      }
      const res: { want: Buffer[]; got?: Uint8Array } = { want };
      results.push(res);
      // checksums come in block order, chunk by chunk
      const got = Buffer.alloc(nblocks * 32);
      let seen = 0;
      copier.add({
        path: fpath, size: fsize, blksz: BLK, nblocks, offset: (b) => offsets[b]!,
        blocks: (first, c) => {
          expect(first).toBe(seen);
          got.set(c, first * 32);
          seen = first + c.length / 32;
        },
        done: () => { expect(seen).toBe(nblocks); res.got = got; },
        failed: (status) => new Error(`chunk of f${i} failed: ${status}`),
      });
      copier.collect();
    }
    expect(next).toBeLessThan(size);
    copier.settle();
    img.commit();
    for (const [i, res] of results.entries()) {
      expect(res.got, `file ${i} done`).toBeDefined();
      expect(Buffer.concat(res.want).equals(Buffer.from(res.got!)), `checksums of file ${i}`).toBe(true);
    }
    expect(readFileSync(path).equals(expected)).toBe(true);
  }, 120_000);
}

// More files than the table has job slots, and one of more chunks than the
// table holds: with the writer thread the build does not copy them itself
// as it hands them over but queues them; they are posted as the table
// empties, and still go in whole, in order, with their own checksums.
for (const mode of ['thread', 'inline'] as const) {
  test.runIf(mode === 'inline' || haveDist)(`copied files (${mode}): a queue longer than the table waits its turn`, async () => {
    const size = 64 * MIB;
    const { fletcher4, dir, r, path, img, expected, copier } = await copyFixture('queue', mode, size);
    const BLK = 4096;
    let next = 8192;
    const done: boolean[] = [];
    // 300 files of 1-3 blocks, the 150th of 6,000 blocks (375 chunks of 16)
    for (let i = 0; i < 300; i++) {
      const fsize = i === 150 ? 6000 * BLK - 5 : 1 + (r.bytes(2)[0]! * 47) % (3 * BLK);
      const data = Buffer.from(r.bytes(fsize));
      const fpath = join(dir, `f${i}`);
      writeFileSync(fpath, data);
      const nblocks = Math.ceil(fsize / BLK);
      const first = next;
      data.copy(expected, first);
      next += nblocks * BLK;
      const want = Buffer.alloc(nblocks * 32);
      for (let b = 0; b < nblocks; b++) {
        const block = Buffer.alloc(BLK);
        data.copy(block, 0, b * BLK, Math.min(fsize, (b + 1) * BLK));
        want.set(fletcher4(block), b * 32);
      }
      const got = Buffer.alloc(nblocks * 32);
      let seen = 0;
      copier.add({
        path: fpath, size: fsize, blksz: BLK, nblocks, offset: (b) => first + b * BLK,
        blocks: (at, c) => {
          expect(at).toBe(seen);
          got.set(c, at * 32);
          seen = at + c.length / 32;
        },
        done: () => {
          // files are done in the order they were queued
          expect(done.length).toBe(i);
          expect(seen).toBe(nblocks);
          expect(got.equals(want), `checksums of file ${i}`).toBe(true);
          done.push(true);
        },
        failed: (status) => new Error(`chunk of f${i} failed: ${status}`),
      });
    }
    // (with the writer thread: the last file's chunks are not collected yet, or not even posted)
    if (mode === 'thread') expect(copier.settled).toBe(false);
    copier.settle();
    expect(copier.settled).toBe(true);
    expect(done.length).toBe(300);
    img.commit();
    expect(readFileSync(path).equals(expected)).toBe(true);
  }, 120_000);
}

// A chunk that fails with an exception of no errno (a bug) says why: its
// message comes back in the chunk's slot instead of the checksums.
for (const mode of ['thread', 'inline'] as const) {
  test.runIf(mode === 'inline' || haveDist)(`copied files (${mode}): a chunk that fails for no errno says why`, async () => {
    const { dir, path, img, copier } = await copyFixture('bug', mode, 8 * MIB);
    const fpath = join(dir, 'f');
    writeFileSync(fpath, Buffer.alloc(20_000, 7));
    let seen: [number, number, string | undefined] | undefined;
    // 4,098-byte blocks: fletcher4 takes whole 32-bit words only (inline,
    // add() copies at once and throws; with the writer, settle() does)
    expect(() => {
      copier.add({
        path: fpath, size: 20_000, blksz: 4098, nblocks: 5, offset: (b) => 8192 + b * 8192,
        blocks: () => { throw new Error('no block should come back'); },
        done: () => { throw new Error('the file should not be done'); },
        failed: (status, errno, message) => { seen = [status, errno, message]; return new Error(`failed: ${message}`); },
      });
      copier.settle();
    }).toThrow(/failed: fletcher4: length 4098 is not a multiple of 4/);
    expect(seen![0]).toBe(4); // CHUNK_BUG
    expect(seen![1]).toBe(seen![2]!.length);
    img.abort();
    expect(existsSync(path)).toBe(false);
  }, 60_000);
}

// A build that goes on after its image was aborted (a library caller's
// abortOpenImageFiles during the walk) gets an error from its next copy:
// the writer has quit, so a chunk staged for it would never be written
// and the build would wait for it for ever.
test.runIf(haveDist)('copied files (thread): a copy after the image was aborted fails at once', async () => {
  const { dir, path, img, copier } = await copyFixture('aborted', 'thread', 8 * MIB);
  const fpath = join(dir, 'f');
  writeFileSync(fpath, Buffer.alloc(4 * MIB, 3));
  img.abort();
  const t = performance.now();
  expect(() => {
    copier.add({
      path: fpath, size: 4 * MIB, blksz: 128 * 1024, nblocks: 32, offset: (b) => 8192 + b * 128 * 1024,
      blocks: () => { throw new Error('no block should come back'); },
      done: () => { throw new Error('the file should not be done'); },
      failed: (status) => new Error(`chunk failed: ${status}`),
    });
    copier.settle();
  }).toThrow(/the image was aborted/);
  expect(performance.now() - t).toBeLessThan(900);
  expect(existsSync(path)).toBe(false);
}, 30_000);

interface AdoptModule {
  ImageFile: new (path: string, size: number) => {
    write(off: number, data: Uint8Array): void; commit(): void; abort(): void;
    adopt(sab: SharedArrayBuffer): unknown;
  };
}
interface BlockReaderModule {
  HostFileReader: new (record: number, adopt?: (sab: SharedArrayBuffer) => unknown) => {
    request(path: string, size: number, block?: number): void;
    read(sink: (piece: Uint8Array, block?: Uint8Array) => void, mayWait?: boolean): boolean;
    close(): void;
  };
}

// reader and image writer: both threads; the reader inline (the build
// thread fills the ring itself) with the writer thread; both inline
for (const mode of ['thread', 'inline reader', 'inline'] as const) {
  test.runIf(mode === 'inline' || haveDist)(`whole blocks from the reader, written from where they lie (${mode}): every byte lands, none is overwritten first`, async () => {
    // The image writer thread writes adopted blocks straight from the
    // reader's ring, so a ring slot refilled (by the reader thread, or by
    // the inline reader) before the writer has written it shows in 48 MiB
    // through an 8 MiB ring. Without the writer thread, the same calls must
    // copy and give the same file.
    process.env.TSMAKEFS_IMAGE_WRITER = mode === 'inline' ? '0' : '1';
    process.env.TSMAKEFS_READER = mode === 'thread' ? '1' : '0';
    const { ImageFile } = (await import(pathToFileURL(dist('vdev/imagefile.js')).href)) as AdoptModule;
    const { HostFileReader } = (await import(pathToFileURL(dist('input/host-reader.js')).href)) as BlockReaderModule;
    const dir = join(root, `blocks-${mode}`);
    mkdirSync(dir, { recursive: true });
    const r = new Prng(`blocks-${mode}`);
    const RECORD = 128 * 1024;
    const files: { path: string; data: Buffer; block: number }[] = [];
    let total = 0;
    for (let i = 0; total < 48 * MIB; i++) {
      const size = i % 50 === 7 ? 3 * MIB + r.bytes(1)[0]! * 1001 : (r.bytes(2)[0]! * 256 + r.bytes(1)[0]!) % 70_000;
      const data = Buffer.from(r.bytes(size));
      const path = join(dir, `f${i}`);
      writeFileSync(path, data);
      // as fileBlockSize gives it: one block of the size rounded to 512, or records
      files.push({ path, data, block: size <= RECORD ? Math.max(512, Math.ceil(size / 512) * 512) : RECORD });
      total += size;
    }
    const size = 128 * MIB;
    const path = join(root, `blocks-${mode}.img`);
    const img = new ImageFile(path, size);
    const expected = Buffer.alloc(size);
    let adopted = 0;
    const reader = new HostFileReader(RECORD, (sab) => { adopted++; return img.adopt(sab); });
    try {
      for (const f of files) reader.request(f.path, f.data.length, f.block);
      let off = 4096;
      // a gap after most blocks, as in an image
      const place = (block: Uint8Array, from: number, len: number) => {
        img.write(off, block);
        f0!.data.copy(expected, off, from, from + len);
        off += Math.ceil(block.length / 4096) * 4096;
      };
      let f0: (typeof files)[number] | undefined;
      for (const f of files) {
        f0 = f;
        let got = 0;
        const pieces: Buffer[] = [];
        reader.read((piece, block) => {
          expect(Buffer.from(piece).equals(f.data.subarray(got, got + piece.length))).toBe(true);
          expect(block, 'a whole block').toBeDefined();
          expect(block!.length).toBe(f.block);
          expect(block!.subarray(piece.length).every((b) => b === 0), 'zeros after the data').toBe(true);
          place(block!, got, piece.length);
          got += piece.length;
        });
        expect(got).toBe(f.data.length);
      }
      img.commit();
    } catch (e) {
      img.abort();
      throw e;
    } finally {
      reader.close();
    }
    // (asked every time; an image without a writer thread declines)
    expect(adopted).toBe(1);
    expect(readFileSync(path).equals(expected)).toBe(true);
  }, 120_000);
}

// Files of random bytes for the reader tests: mostly small, every
// `bigEvery`-th one `bigSize` bytes, until `total` bytes in all.
function stageFiles(name: string, total: number, bigEvery: number, bigSize: number, smallMod: number): { path: string; data: Buffer }[] {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const r = new Prng(name);
  const files: { path: string; data: Buffer }[] = [];
  for (let i = 0, sum = 0; sum < total; i++) {
    const size = i % bigEvery === 3 ? bigSize : (r.bytes(2)[0]! * 256 + r.bytes(1)[0]!) % smallMod;
    const data = Buffer.from(r.bytes(size));
    writeFileSync(join(dir, `f${i}`), data);
    files.push({ path: join(dir, `f${i}`), data });
    sum += size;
  }
  return files;
}

/**
 * An image writer that writes nothing until made to wait: blocks are kept
 * as the views the reader gave (not copies) and only compared with what
 * they should hold when a mark they are under passes (or at the end); a
 * ring slot refilled too early shows as `bad`.
 */
class LazyImage {
  readonly pending: { view: Uint8Array; want: Buffer }[] = [];
  /** Per mark: how many pending blocks it covers. */
  readonly marks: number[] = [0];
  /** Marks passed. */
  written = 0;
  private flushed = 0;
  bad = 0;
  waits = 0;
  /** Whether the image's open slot takes another block without a wait. */
  roomy = true;
  readonly gate = {
    mark: () => { this.marks.push(this.pending.length); return this.marks.length - 1; },
    passed: (m: number) => this.written >= m,
    wait: (m: number) => { this.waits++; this.flushTo(this.marks[m]!); this.written = Math.max(this.written, m); },
    nudge: () => {},
    room: () => this.roomy,
  };

  /** A block as the reader handed it, and the bytes it must hold when written. */
  take(view: Uint8Array, data: Buffer, from: number, len: number): void {
    const want = Buffer.alloc(view.length);
    data.copy(want, 0, from, from + len);
    this.pending.push({ view, want });
  }

  flushTo(n: number): void {
    for (; this.flushed < n; this.flushed++) {
      const { view, want } = this.pending[this.flushed]!;
      if (!Buffer.from(view.buffer, view.byteOffset, view.byteLength).equals(want)) this.bad++;
    }
  }

  /** Write everything handed over so far: every mark passes. */
  catchUp(): void {
    this.flushTo(this.pending.length);
    this.written = this.marks.length - 1;
  }
}

// The same hand-over against a lazy image writer (LazyImage): no ring slot
// may be refilled before the blocks in it are written.
for (const mode of ['thread', 'inline'] as const) {
  test.runIf(mode === 'inline' || haveDist)(`a lazy image writer: no ring slot is refilled before its blocks are written (${mode} reader)`, async () => {
    process.env.TSMAKEFS_READER = mode === 'thread' ? '1' : '0';
    const { HostFileReader } = (mode === 'thread'
      ? await import(pathToFileURL(dist('input/host-reader.js')).href)
      : await import('../../src/input/host-reader.js')) as BlockReaderModule;
    const files = stageFiles(`lazy-${mode}`, 24 * MIB, 20, 2 * MIB + 777, 100_000);
    const img = new LazyImage();
    const reader = new HostFileReader(128 * 1024, () => img.gate);
    try {
      for (const f of files) reader.request(f.path, f.data.length);
      for (const f of files) {
        let got = 0;
        reader.read((piece, block) => {
          img.take(block!, f.data, got, piece.length);
          got += piece.length;
        });
        expect(got).toBe(f.data.length);
      }
      img.flushTo(img.pending.length);
    } finally {
      reader.close();
    }
    expect(img.bad, 'blocks changed before they were written').toBe(0);
    expect(img.written, 'the reader waited for the writer').toBeGreaterThan(0);
  }, 60_000);
}

// The inline reader told not to wait (prewrite's pump while the walk goes
// on): it stops before any block that would need the writer to catch up,
// in the middle of a file too, never waits, and goes on with the same file
// on the next call; the blocks are the same, and none is overwritten before
// it is written. Two ways to run short: the image's open slot full now and
// then ('slot full'), or never, so that only ring slots not yet written
// stop it ('ring only': the writer catches up at stops alone).
for (const mode of ['slot full', 'ring only'] as const) {
  test(`inline reader without waiting (${mode}): stops short of a wait, resumes mid-file, same blocks`, async () => {
    process.env.TSMAKEFS_READER = '0';
    const { HostFileReader } = (await import('../../src/input/host-reader.js')) as BlockReaderModule;
    const files = stageFiles(`nowait-${mode === 'slot full' ? 'slot' : 'ring'}`, 24 * MIB, 15, 3 * MIB + 1234, 90_000);
    const r = new Prng('nowait-room');
    const img = new LazyImage();
    const reader = new HostFileReader(128 * 1024, () => img.gate);
    let stops = 0;
    let midFile = 0;
    try {
      for (const f of files) reader.request(f.path, f.data.length);
      for (const f of files) {
        let got = 0;
        const sink = (piece: Uint8Array, block?: Uint8Array) => {
          img.take(block!, f.data, got, piece.length);
          got += piece.length;
          // now and then the image's open slot is full
          if (mode === 'slot full') img.roomy = r.bytes(1)[0]! > 40;
        };
        while (!reader.read(sink, false)) {
          stops++;
          if (got > 0 && got < f.data.length) midFile++;
          // the writer catches up, as it does while the walk goes on
          img.catchUp();
          img.roomy = true;
        }
        expect(got).toBe(f.data.length);
      }
      img.flushTo(img.pending.length);
    } finally {
      reader.close();
    }
    expect(img.bad, 'blocks changed before they were written').toBe(0);
    expect(img.waits, 'never waited for the writer').toBe(0);
    // (24 MiB through a 4 MiB ring: at least one stop per ring's worth)
    expect(stops, 'stopped short of a wait').toBeGreaterThan(mode === 'slot full' ? 10 : 4);
    expect(midFile, 'stopped in the middle of a file').toBeGreaterThan(0);
  }, 60_000);
}

interface PoolModule {
  CompressPool: new (workers: number) => {
    full: boolean; headDone: boolean; inFlight: number;
    submit(b: Uint8Array, comp: number): void;
    retire(): { input: Uint8Array; output: Uint8Array | null };
    close(): void;
  };
}

for (const workers of [0, 1, 3]) {
  test.runIf(workers === 0 || haveDist)(`CompressPool with ${workers} workers: results come back in submission order, as compressBlock gives them`, async () => {
    const { CompressPool } = (await import(pathToFileURL(dist('zio/compress-pool.js')).href)) as PoolModule;
    const { compressBlock } = await import(pathToFileURL(dist('zio/compress.js')).href) as { compressBlock(c: number, b: Uint8Array): Uint8Array | null };
    const LZ4 = 15;
    const r = new Prng(`pool-${workers}`);
    const words = Buffer.from('the quick brown fox jumps over the lazy dog, again and again; ');
    const blocks = Array.from({ length: 200 }, (_, i) => {
      const b = Buffer.alloc(512 * (1 + (i * 37) % 256));
      if (i % 3 === 0) b.set(r.bytes(b.length)); // incompressible
      else for (let o = 0; o < b.length; o += words.length) words.copy(b, o, 0, Math.min(words.length, b.length - o));
      b[0] = i; // every block distinct
      return b;
    });
    const pool = new CompressPool(workers);
    const got: (string | null)[] = [];
    const take = () => { const x = pool.retire(); got.push(x.output ? Buffer.from(x.output).toString('hex') : null); expect(x.input.length).toBeGreaterThan(0); };
    try {
      for (let i = 0; i < blocks.length; i++) {
        while (pool.full) take();
        pool.submit(blocks[i]!, LZ4);
        if (i % 7 === 0) while (pool.inFlight > 0) take(); // drain now and then, as a file's end does
      }
      while (pool.inFlight > 0) take();
    } finally {
      pool.close();
    }
    const want = blocks.map((b) => { const c = compressBlock(LZ4, b); return c ? Buffer.from(c).toString('hex') : null; });
    expect(got).toEqual(want);
  }, 60_000);
}

describe('image writer hosted on an event loop (the command line\'s main thread)', () => {
  test('writes slot bytes and adopted bytes where the segments say, then stops when told', async () => {
    const { allocRing, mapRing, CONSUMED, PRODUCED, QUIT, STARTED, STOPPED, FAILED, wakeWriter, segBase, SRC_SLOT } = await import('../../src/vdev/image-ring.js');
    const { hostImageWriter } = await import('../../src/vdev/image-writer-loop.js');
    const { MessageChannel } = await import('node:worker_threads');
    const file = join(root, 'hosted.img');
    const fd = openSync(file, 'w+');
    const sab = allocRing();
    const ring = mapRing(sab);
    const { port1, port2 } = new MessageChannel();
    const w = hostImageWriter(sab, fd, port2);
    expect(Atomics.load(ring.ctrl, STARTED)).toBe(1);
    // slot 0: 3000 bytes of its own at offset 8192, then 100 bytes of an adopted buffer at 0
    const adopted = new SharedArrayBuffer(4096);
    new Uint8Array(adopted).fill(0xab);
    port1.postMessage({ adopt: 0, sab: adopted });
    ring.data.fill(0x5c, 0, 3000);
    const base = segBase(0);
    ring.segs.set([2, 8192, 3000, SRC_SLOT, 0, 0, 100, 0, 1000], base);
    Atomics.store(ring.ctrl, PRODUCED, 1);
    wakeWriter(ring.ctrl); // (as the build does: the writer waits on the wake counter)
    const deadline = Date.now() + 10_000;
    while (Atomics.load(ring.ctrl, CONSUMED) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(Atomics.load(ring.ctrl, CONSUMED)).toBe(1);
    expect(Atomics.load(ring.ctrl, FAILED)).toBe(0);
    // waiting now (in waits short enough for this thread's loop to turn): told to quit, it stops
    Atomics.store(ring.ctrl, QUIT, 1);
    wakeWriter(ring.ctrl); // (as the build does: the writer waits on the wake counter)
    await w.done;
    expect(Atomics.load(ring.ctrl, STOPPED)).toBe(1);
    closeSync(fd);
    const got = readFileSync(file);
    expect(got.length).toBe(8192 + 3000);
    expect(got.subarray(0, 100).every((b) => b === 0xab)).toBe(true);
    expect(got.subarray(100, 8192).every((b) => b === 0)).toBe(true);
    expect(got.subarray(8192).every((b) => b === 0x5c)).toBe(true);
    port1.close();
  });

  test('a failed write is recorded for the build; stop() ends a writer whose build is gone', async () => {
    const { allocRing, mapRing, CONSUMED, PRODUCED, STOPPED, FAILED, CODE_LEN, wakeWriter, segBase, SRC_SLOT } = await import('../../src/vdev/image-ring.js');
    const { hostImageWriter } = await import('../../src/vdev/image-writer-loop.js');
    const { MessageChannel } = await import('node:worker_threads');
    const file = join(root, 'readonly.img');
    writeFileSync(file, '');
    const fd = openSync(file, 'r'); // not open for writing: EBADF
    const sab = allocRing();
    const ring = mapRing(sab);
    const { port2 } = new MessageChannel();
    const w = hostImageWriter(sab, fd, port2);
    ring.segs.set([1, 0, 512, SRC_SLOT, 0], segBase(0));
    Atomics.store(ring.ctrl, PRODUCED, 1);
    wakeWriter(ring.ctrl); // (as the build does: the writer waits on the wake counter)
    const deadline = Date.now() + 10_000;
    while (Atomics.load(ring.ctrl, CONSUMED) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(Atomics.load(ring.ctrl, FAILED)).toBe(1);
    expect(Buffer.from(ring.code.subarray(0, ring.ctrl[CODE_LEN]!)).toString()).toBe('EBADF');
    w.stop();
    await w.done;
    expect(Atomics.load(ring.ctrl, STOPPED)).toBe(1);
    closeSync(fd);
  });
});

// The image writer, wherever it runs, compresses for the build while it
// has nothing to write (ImageFile.compressHelper lends it the job ring).
for (const where of ['main thread', 'own thread'] as const) {
  test.runIf(where === 'main thread' || haveDist)(`image writer on its ${where}: takes the compression jobs an ImageFile lends it, as compressBlock gives them; a failed job fails the pool with its message, not the writer`, async () => {
    const { mapRing, CONSUMED, PRODUCED, QUIT, STOPPED, FAILED, wakeWriter, segBase, SRC_SLOT } = await import('../../src/vdev/image-ring.js');
    const { hostImageWriter } = await import('../../src/vdev/image-writer-loop.js');
    const { ImageFile, setImageWriterHost } = await import('../../src/vdev/imagefile.js');
    const { CompressPool, mapJobRing, TAKEN, SUBMITTED } = await import('../../src/zio/compress-pool.js');
    const { compressBlock } = await import('../../src/zio/compress.js');
    const { COMP_LZ4 } = await import('../../src/zio/blkptr.js');
    const { MessageChannel, Worker } = await import('node:worker_threads');
    const file = join(root, `helper-${where.replace(' ', '-')}.img`);
    // the writer runs where the command line (main thread) or the library
    // (own thread) runs it; we keep its ring to look at and to end it
    let ring: Ring | undefined;
    let done: Promise<unknown> = Promise.resolve();
    let thread: InstanceType<typeof Worker> | undefined;
    setImageWriterHost((sab, fd) => {
      ring = mapRing(sab);
      if (where === 'main thread') {
        const { port1, port2 } = new MessageChannel();
        done = hostImageWriter(sab, fd, port2).done.then(() => port1.close());
        return port1;
      }
      const t = new Worker(new URL(pathToFileURL(dist('vdev/image-writer.js')).href), { workerData: { sab, fd } });
      done = new Promise((resolve) => t.once('exit', resolve));
      thread = t;
      return t;
    });
    process.env.TSMAKEFS_IMAGE_WRITER = '1'; // (earlier tests here set it to '0')
    let image: InstanceType<typeof ImageFile>;
    try {
      image = new ImageFile(file, 512);
    } finally {
      setImageWriterHost(null);
    }
    const lent = image.compressHelper();
    expect(lent).not.toBeNull();
    // the real helper, watched: the ring it lends
    let jobs: ReturnType<typeof mapJobRing> | undefined;
    const pool = new CompressPool(0, { lend: (jsab) => { jobs = mapJobRing(jsab); lent!.lend(jsab); }, wake: () => lent!.wake() });
    const quit = () => { Atomics.store(ring!.ctrl, QUIT, 1); wakeWriter(ring!.ctrl); };
    const settle = async (what: () => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!what() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(what()).toBe(true);
    };
    const words = Buffer.from('a block the writer compresses for the build; ');
    const blocks = Array.from({ length: 6 }, (_, i) => {
      const b = Buffer.alloc(4096 * (i + 1));
      for (let o = 0; o < b.length; o += words.length) words.copy(b, o, 0, Math.min(words.length, b.length - o));
      b[0] = i;
      return b;
    });
    try {
      for (const b of blocks) pool.submit(b, COMP_LZ4);
      // not retired: only the writer can have taken them
      await settle(() => Atomics.load(jobs!.ctrl, TAKEN) === blocks.length);
      await settle(() => pool.headDone);
      for (const b of blocks) {
        const got = pool.retire();
        expect(Buffer.from(got.input).equals(b)).toBe(true);
        expect(Buffer.from(got.output!).equals(Buffer.from(compressBlock(COMP_LZ4, b)!))).toBe(true);
      }
      // a job that throws (no such algorithm): the pool says a thread failed, and why
      pool.submit(blocks[0]!, 99);
      await settle(() => Atomics.load(jobs!.ctrl, TAKEN) === Atomics.load(jobs!.ctrl, SUBMITTED));
      expect(() => pool.retire()).toThrow('a compression thread failed: compression 99 is not implemented');
      // and the writer still writes (a slot of its ring, as the build hands one over)
      const r = ring!;
      r.data.fill(0x77, 0, 512);
      r.segs.set([1, 0, 512, SRC_SLOT, 0], segBase(0));
      Atomics.store(r.ctrl, PRODUCED, 1);
      wakeWriter(r.ctrl);
      await settle(() => Atomics.load(r.ctrl, CONSUMED) === 1);
      expect(Atomics.load(r.ctrl, FAILED)).toBe(0);
      quit();
      await done;
      expect(Atomics.load(r.ctrl, STOPPED)).toBe(1);
      image.commit();
      expect(readFileSync(file).every((b) => b === 0x77)).toBe(true);
    } finally {
      pool.close();
      quit(); // (a failed assertion must not leave the writer waiting here for ever)
      await done;
      await thread?.terminate();
      image.abort();
    }
  });
}
