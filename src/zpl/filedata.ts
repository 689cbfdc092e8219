// A regular file's data, written as it arrives: a record at a time, checksummed
// and placed, its indirect blocks built alongside. Inputs that can be read in
// any order (host files) are written when the writer reaches the file's
// object; a tar stream writes each member's data in archive order, before the
// tree is complete, and the dnode is assembled later from the FileData.

import { ZioWriter } from '../zio/writer.js';
import { newDnode } from '../dmu/dnode.js';
import { levelsFor, ObjectWriter } from '../dmu/object.js';
import { DMU_OT_PLAIN_FILE_CONTENTS } from '../dmu/types.js';
import { BlkPtr, BP_SIZE, BpSlab, BPE_PAYLOAD_SIZE, bpePayloadAt, bpePsize, COMP_OFF, encodeBp, propSizes } from '../zio/blkptr.js';
import { rd32le, rd64le, u32le, u64le } from '../util/endian.js';
import { isAllZero } from '../zio/compress.js';
import { FLETCHER4_CKSUM_SIZE as CKSUM_BYTES, fletcher4Into, inPlaceScratch } from '../zio/fletcher4.js';
import { PLANNED_INDBLKSHIFT, PlannedObject } from '../dmu/planned.js';
import type { CopyJob, CopyQueue } from '../vdev/copy-queue.js';
import type { BlockPipeline, PipelinedObject } from '../zio/pipeline.js';
import { copyBytes } from '../util/bytes.js';

export const RECORDSIZE = 128 * 1024;

/** The bonus of the dnode a file's data is written under (its real dnode comes later): none, one array for all. */
const NO_BONUS = new Uint8Array(0);

/**
 * Everything a file's dnode needs from its data. One lives per file until
 * the dnodes are written (packed in a FileDataSlab), so its size is most of
 * the per-entry memory.
 */
export interface FileData {
  size: number;
  blksz: number;
  nlevels: number;
  maxblkid: number;
  /** Allocated bytes of all its blocks: the dnode's dn_used, and the space charged. */
  used: number;
  /** The top block pointer: as the writer made it, or encoded (128 bytes) when it comes from a slab. */
  bp: BlkPtr | Uint8Array;
  /** Space charged: physical and logical bytes. */
  psize: number;
  lsize: number;
  /** The allocator range the data was written into (bump allocation keeps it contiguous). */
  start: number;
  end: number;
  /** The dnode's indblkshift when not the default (17): a planned file's (dmu/planned.ts). */
  ibs?: number;
}

// A FileDataSlab's 32-bit numbers per file, in this order (the allocator
// range is its start, a double, and its length); nlevels (1..15) rides below
// the block size, which is a multiple of 512, with the flags for a planned
// file's small indirect blocks and for a hole.
const NUMS = 7;
const N_SIZE = 0, N_BLK = 1, N_MAXBLKID = 2, N_USED = 3, N_PSIZE = 4, N_LSIZE = 5, N_SPAN = 6;
const BLK_LEVELS = 16;
const BLK_PLANNED = 16;
const BLK_HOLE = 256;
// Bits 5-7 of N_BLK (below the block size, above the flag for planned
// files) say how the block pointer is kept: 0..BP_PROPS-1, derived (all of
// it but the checksum made from the file's numbers, blk_prop's upper half
// being the slab's k-th; a hole: all zeros); BP_EMBEDDED, its blk_prop
// and payload in the embedded arena (EmbeddedArena); BP_WIDE, as a 64-byte
// compact record in the wide slab (for both, where it is kept is in the
// checksum's place).
const BP_KIND_SHIFT = 5;
const BP_KIND_MASK = 7;
const BP_PROPS = 6;
const BP_EMBEDDED = 6;
const BP_WIDE = 7;
/** N_BLK of a record kept whole in the slab's map (every real one has a block size). */
const BLK_WHOLE = 0;
const U32_MAX = 0xffff_ffff;
const PER_CHUNK = 4096;

// A data block pointer (one DVA, phys_birth 0) is 128 bytes of which only
// these ranges can be non-zero: dva[0], blk_prop, then birth, fill and
// checksum. The birth is the same for every file (the data's txg), or 0 for
// a hole, so a compact record keeps the rest (BP_KEPT). Embedded ones carry
// their payload all over the pointer, and keep blk_prop and that payload.
type Ranges = ReadonlyArray<readonly [number, number]>;
const BIRTH_OFF = 80;
const BP_SET: Ranges = [[0, 16], [48, 56], [BIRTH_OFF, 128]];
const BP_KEPT: Ranges = [[0, 16], [48, 56], [BIRTH_OFF + 8, 128]];
const BP_COMPACT = 64;
/** What a file keeps of its block pointer when the rest follows from its numbers: the checksum. */
const BP_CKSUM_OFF = 96;
const BP_SHORT = BP_SIZE - BP_CKSUM_OFF;
const NO_BIRTH = new Uint8Array(8);
const PROP_EMBEDDED_BYTE = 52; // blk_prop bit 39 lives in this byte's bit 7
const PROP_OFF = 48;

/**
 * Embedded block pointers as blk_prop and the payload's psize bytes, one
 * after another: the pointer of a file of a few bytes (a tree of tiny
 * files has hundreds of thousands) is 128 bytes, most of them zeros.
 * Records never straddle two chunks.
 */
class EmbeddedArena {
  private static readonly CHUNK = 64 * 1024;
  private chunks: Uint8Array[] = [];
  private fill = EmbeddedArena.CHUNK;

  /** Keep `raw`'s blk_prop and payload; returns where (chunk * CHUNK + offset). */
  put(raw: Uint8Array): number {
    const psize = bpePsize(raw, 0);
    if (this.fill + 8 + psize > EmbeddedArena.CHUNK) {
      this.chunks.push(new Uint8Array(EmbeddedArena.CHUNK));
      this.fill = 0;
    }
    const c = this.chunks.length - 1;
    const chunk = this.chunks[c]!;
    const at = this.fill;
    for (let b = 0; b < 8; b++) chunk[at + b] = raw[PROP_OFF + b]!;
    for (let i = 0; i < psize; i++) chunk[at + 8 + i] = raw[bpePayloadAt(i)]!;
    this.fill = at + 8 + psize;
    return c * EmbeddedArena.CHUNK + at;
  }

  /** The pointer kept at `where` into `raw` (zeros), but its blk_birth. */
  get(where: number, raw: Uint8Array): void {
    const chunk = this.chunks[Math.floor(where / EmbeddedArena.CHUNK)]!;
    const at = where % EmbeddedArena.CHUNK;
    for (let b = 0; b < 8; b++) raw[PROP_OFF + b] = chunk[at + b]!;
    const psize = bpePsize(raw, 0);
    for (let i = 0; i < psize; i++) raw[bpePayloadAt(i)] = chunk[at + 8 + i]!;
  }
}

/**
 * Whether an embedded pointer is what EmbeddedArena gives back: a psize
 * its payload can have, and zeros past the payload, in the bytes the arena
 * does not keep.
 */
function embeddedKeepable(raw: Uint8Array): boolean {
  const psize = bpePsize(raw, 0);
  if (psize > BPE_PAYLOAD_SIZE) return false;
  for (let i = psize; i < BPE_PAYLOAD_SIZE; i++) if (raw[bpePayloadAt(i)] !== 0) return false;
  return true;
}

/** Whether an encoded block pointer is zero outside BP_SET. */
function compactable(raw: Uint8Array): boolean {
  let from = 0;
  for (const [start, end] of BP_SET) {
    for (let b = from; b < start; b++) if (raw[b] !== 0) return false;
    from = end;
  }
  return true;
}

const fitsU32 = (v: number) => v >= 0 && v <= U32_MAX;

function sameBytes(b: Uint8Array, off: number, want: Uint8Array): boolean {
  for (let i = 0; i < want.length; i++) if (b[off + i] !== want[i]) return false;
  return true;
}

// The words of a one-level file's block pointer that follow from its
// numbers: one DVA on vdev 0 over its whole allocator range (dva_word[0]:
// asize in sectors, GRID 0; dva_word[1]: the offset in sectors),
// blk_prop's lower half (propSizes of the block size and psize) and a fill
// of 1.
const derivedWord0 = (span: number): number => span / 512;

/**
 * The FileData of every file written ahead of its dnode, packed in typed
 * arrays: 36 bytes of numbers and 32 of block pointer per file, where an
 * object of eleven numbers (several boxed past 2^31) and a 128-byte block
 * pointer were the largest thing a build held per entry. A file of one
 * block (nearly all of a tree's) keeps only its block pointer's checksum:
 * the rest is made again from its numbers, and was found equal to the
 * pointer's own when it was stored. Others keep a 64-byte compact record
 * on the side, or, if embedded, blk_prop and the payload (8 bytes and
 * psize). A file whose numbers need more than 32 bits (4 GiB and up),
 * whose block pointer was born in another txg, or whose embedded pointer
 * has bytes these would not give back, is kept whole in a map: few files
 * are.
 */
export class FileDataSlab {
  private nums: Uint32Array[] = [];
  private starts: Float64Array[] = [];
  private cksums: Uint8Array[] = [];
  private readonly wide = new BpSlab(BP_COMPACT, 1024);
  private readonly embeds = new EmbeddedArena();
  private readonly whole = new Map<number, FileData>();
  /** The upper halves of blk_prop (compression, checksum, type, level) that derived block pointers have: few, per dataset. */
  private readonly props: number[] = [];
  /** The birth (its 8 bytes) of the compact block pointers but holes, set by the first. */
  private birth: Uint8Array | undefined;
  /** The birth (its 8 bytes) of the embedded block pointers, set by the first (the data's txg too). */
  private embeddedBirth: Uint8Array | undefined;
  private next = 0;
  private readonly scratch = new Uint8Array(BP_SIZE);
  private readonly compact = new Uint8Array(BP_COMPACT);
  /** How the block pointers stored so far are kept (files kept whole not counted). */
  readonly kept = { derived: 0, wide: 0, embedded: 0 };

  /** Keep `d`; the source the inode takes from now on. */
  store(d: FileData): WrittenData {
    const src = this.reserve();
    this.fill(src.index, d);
    return src;
  }

  /** The source of a file whose FileData comes later (fill); it must not be read before. */
  reserve(): WrittenData {
    const i = this.next++;
    const c = Math.floor(i / PER_CHUNK);
    if (c === this.nums.length) {
      this.nums.push(new Uint32Array(PER_CHUNK * NUMS));
      this.starts.push(new Float64Array(PER_CHUNK));
      this.cksums.push(new Uint8Array(PER_CHUNK * BP_SHORT));
    }
    return new WrittenData(this, i);
  }

  /** Keep `d` under the index reserve() gave. */
  fill(i: number, d: FileData): void {
    const c = Math.floor(i / PER_CHUNK);
    const raw = this.scratch;
    if (d.bp instanceof Uint8Array) raw.set(d.bp);
    else encodeBp(d.bp, raw, 0);
    const embedded = (raw[PROP_EMBEDDED_BYTE]! & 0x80) !== 0;
    if (!embedded && !compactable(raw)) throw new Error('a data block pointer with more than one DVA or a physical birth');
    const hole = !embedded && sameBytes(raw, BIRTH_OFF, NO_BIRTH);
    if (!embedded && !hole) this.birth ??= raw.slice(BIRTH_OFF, BIRTH_OFF + 8);
    if (embedded) this.embeddedBirth ??= raw.slice(BIRTH_OFF, BIRTH_OFF + 8);
    const nums = this.nums[c]!;
    const at = (i % PER_CHUNK) * NUMS;
    const span = d.end - d.start;
    const planned = d.ibs === PLANNED_INDBLKSHIFT;
    if ((!embedded && !hole && !sameBytes(raw, BIRTH_OFF, this.birth!)) || (embedded && (!sameBytes(raw, BIRTH_OFF, this.embeddedBirth!) || !embeddedKeepable(raw))) || !fitsU32(d.size) || !fitsU32(d.maxblkid) || !fitsU32(d.used)
      || !fitsU32(d.psize) || !fitsU32(d.lsize) || !fitsU32(span) || d.nlevels >= BLK_LEVELS || (d.ibs !== undefined && !planned)) {
      nums[at + N_BLK] = BLK_WHOLE;
      this.whole.set(i, { ...d, bp: raw.slice() });
      return;
    }
    const out = this.cksums[c]!;
    const o = (i % PER_CHUNK) * BP_SHORT;
    let kind: number;
    if (embedded) {
      kind = BP_EMBEDDED;
      u64le(out, o, this.embeds.put(raw));
    } else {
      kind = hole ? this.derivedHole(raw) : this.derivedKind(raw, d, span);
      if (kind === BP_WIDE) {
        // (bytes copied one by one: a subarray per range was the most of
        // store()'s allocation, once per file of the walk)
        const rec = this.compact;
        let r = 0;
        for (const [from, to] of BP_KEPT) {
          for (let b = from; b < to; b++) rec[r++] = raw[b]!;
        }
        u64le(out, o, this.wide.put(rec));
      } else {
        for (let b = 0; b < BP_SHORT; b++) out[o + b] = raw[BP_CKSUM_OFF + b]!;
      }
    }
    if (kind === BP_EMBEDDED) this.kept.embedded++;
    else if (kind === BP_WIDE) this.kept.wide++;
    else this.kept.derived++;
    nums[at + N_SIZE] = d.size;
    nums[at + N_BLK] = d.blksz + d.nlevels + (planned ? BLK_PLANNED : 0) + (hole ? BLK_HOLE : 0) + (kind << BP_KIND_SHIFT);
    nums[at + N_MAXBLKID] = d.maxblkid;
    nums[at + N_USED] = d.used;
    nums[at + N_PSIZE] = d.psize;
    nums[at + N_LSIZE] = d.lsize;
    nums[at + N_SPAN] = span;
    this.starts[c]![i % PER_CHUNK] = d.start;
  }

  /**
   * How a one-level file's block pointer can be kept: a derived kind
   * (0..BP_PROPS-1) if all but its checksum is what get() makes from the
   * numbers, else BP_WIDE. Compared word by word, so a pointer is only
   * ever made again as it was.
   */
  private derivedKind(raw: Uint8Array, d: FileData, span: number): number {
    if (d.nlevels !== 1 || span % 512 !== 0 || d.start % 512 !== 0 || d.blksz % 512 !== 0 || d.psize % 512 !== 0) return BP_WIDE;
    if (rd32le(raw, 0) !== derivedWord0(span) || rd32le(raw, 4) !== 0 || rd32le(raw, 8) + rd32le(raw, 12) * 0x1_0000_0000 !== d.start / 512
      || rd32le(raw, 48) !== propSizes(d.blksz, d.psize) || rd32le(raw, 88) !== 1 || rd32le(raw, 92) !== 0) return BP_WIDE;
    const high = rd32le(raw, 52);
    let k = this.props.indexOf(high);
    if (k < 0) {
      if (this.props.length === BP_PROPS) return BP_WIDE;
      k = this.props.push(high) - 1;
    }
    return k;
  }

  /** A hole's pointer is derived (kind 0, nothing kept) if all zeros, as holes written by this tool are. */
  private derivedHole(raw: Uint8Array): number {
    for (let b = 0; b < BP_SIZE; b++) if (raw[b] !== 0) return BP_WIDE;
    return 0;
  }

  /**
   * Called for an index reserved and not filled yet when get() wants it:
   * it must fill it (a copy still under way: see makeImage).
   */
  onMissing: ((i: number) => void) | null = null;

  /**
   * Called at each get(): lets the copies still under way move on (see
   * makeImage), as the metadata is written in between.
   */
  onGet: (() => void) | null = null;

  /** Whether index `i` is filled. */
  has(i: number): boolean {
    const c = Math.floor(i / PER_CHUNK);
    return this.nums[c]![(i % PER_CHUNK) * NUMS + N_BLK] !== BLK_WHOLE || this.whole.has(i);
  }

  /** The FileData stored under `i` (a new object each time). */
  get(i: number): FileData {
    this.onGet?.();
    if (this.onMissing !== null && !this.has(i)) this.onMissing(i);
    const c = Math.floor(i / PER_CHUNK);
    const nums = this.nums[c]!;
    const at = (i % PER_CHUNK) * NUMS;
    const blk = nums[at + N_BLK]!;
    if (blk === BLK_WHOLE) {
      const d = this.whole.get(i);
      if (d === undefined) throw new Error(`file data ${i} read before it was stored`);
      return { ...d, bp: (d.bp as Uint8Array).slice() };
    }
    const nlevels = blk % BLK_LEVELS;
    const blksz = blk - (blk % 512);
    const start = this.starts[c]![i % PER_CHUNK]!;
    const span = nums[at + N_SPAN]!;
    const psize = nums[at + N_PSIZE]!;
    const d: FileData = {
      size: nums[at + N_SIZE]!, blksz, nlevels, maxblkid: nums[at + N_MAXBLKID]!, used: nums[at + N_USED]!,
      bp: this.bp(c, i % PER_CHUNK, blk, blksz, psize, start, span), psize, lsize: nums[at + N_LSIZE]!,
      start, end: start + span,
    };
    if ((blk & BLK_PLANNED) !== 0) d.ibs = PLANNED_INDBLKSHIFT;
    return d;
  }

  /** A kept block pointer as its 128 bytes (a fresh array: it may outlive the next call). */
  private bp(c: number, j: number, blk: number, blksz: number, psize: number, start: number, span: number): Uint8Array {
    const src = this.cksums[c]!;
    const o = j * BP_SHORT;
    const kind = (blk >>> BP_KIND_SHIFT) & BP_KIND_MASK;
    const raw = this.freshBp();
    if (kind === BP_EMBEDDED) {
      this.embeds.get(Number(rd64le(src, o)), raw);
      raw.set(this.embeddedBirth!, BIRTH_OFF);
      return raw;
    }
    const hole = (blk & BLK_HOLE) !== 0;
    if (kind === BP_WIDE) {
      const rec = this.wide.raw(Number(rd64le(src, o)));
      let r = 0;
      for (const [from, to] of BP_KEPT) {
        for (let b = from; b < to; b++) raw[b] = rec[r++]!;
      }
    } else if (!hole) {
      u32le(raw, 0, derivedWord0(span));
      u64le(raw, 8, start / 512);
      u32le(raw, 48, propSizes(blksz, psize));
      u32le(raw, 52, this.props[kind]!);
      raw[88] = 1;
      for (let b = 0; b < BP_SHORT; b++) raw[BP_CKSUM_OFF + b] = src[o + b]!;
    }
    if (!hole) raw.set(this.birth!, BIRTH_OFF);
    return raw;
  }

  // Views into shared batches: an ArrayBuffer per pointer was the larger
  // part of the metadata phase's time per file.
  private bpBatch = new Uint8Array(0);
  private bpUsed = 0;
  private freshBp(): Uint8Array {
    if (this.bpUsed === this.bpBatch.length) {
      this.bpBatch = new Uint8Array(BP_SIZE * 256);
      this.bpUsed = 0;
    }
    return this.bpBatch.subarray(this.bpUsed, (this.bpUsed += BP_SIZE));
  }
}

/** A file's data source once its data is in the image: `{ kind: 'written', data }`, kept in a FileDataSlab. */
export class WrittenData {
  constructor(readonly slab: FileDataSlab, readonly index: number) {}

  get kind(): 'written' {
    return 'written';
  }

  get data(): FileData {
    return this.slab.get(this.index);
  }
}

/**
 * Block size like OpenZFS: a file that fits one record is one block of its
 * size rounded to a sector; larger files use full records, tail zero-padded.
 */
export function fileBlockSize(size: number, recordsize = RECORDSIZE): number {
  return size <= recordsize ? Math.max(512, Math.ceil(size / 512) * 512) : recordsize;
}

// The record a file's pieces are gathered into: one, reused from file to
// file (a fresh zeroed array per small file was most of the allocation of a
// tree of small files). Every gathered record is written out (copied into
// the image's ring, or into the compression queue) before the next one is
// gathered; a second writer open at the same time gets an array of its own.
// It lives in a checksum kernel's memory, so it is checksummed where it is
// gathered; made at the first small file, not when the module loads.
let scratch: Uint8Array | undefined;
let scratchInUse = false;
/** A planned block's checksum, on its way to its indirect block (which copies it). */
const cksum = new Uint8Array(CKSUM_BYTES);

function claimScratch(size: number): Uint8Array {
  if (scratchInUse) return new Uint8Array(size);
  scratchInUse = true;
  if (scratch === undefined || scratch.length < size) scratch = inPlaceScratch(Math.max(size, RECORDSIZE));
  return scratch.subarray(0, size);
}

function releaseScratch(buf: Uint8Array): void {
  if (buf.buffer === scratch?.buffer) scratchInUse = false;
}

/**
 * A file being copied into place, as the copy queue sees it: one object
 * (not a record of closures), as up to thousands of files may wait for the
 * table at once.
 */
class CopiedFile implements CopyJob {
  readonly size: number;
  readonly blksz: number;
  readonly nblocks: number;

  constructor(private readonly w: FileDataWriter, private readonly plan: PlannedObject, readonly path: string | Uint8Array,
    private readonly then: (d: FileData) => void, readonly failed: (status: number, errno: number, message?: string) => Error) {
    this.size = w.size;
    this.blksz = w.blksz;
    this.nblocks = plan.nblocks;
  }

  offset(i: number): number {
    return this.plan.dataOffset(i);
  }

  blocks(_first: number, cksums: Uint8Array): void {
    for (let at = 0; at < cksums.length; at += CKSUM_BYTES) this.plan.push(cksums.subarray(at, at + CKSUM_BYTES));
  }

  done(): void {
    this.then(this.w.copied());
  }
}

export class FileDataWriter implements PipelinedObject {
  readonly blksz: number;
  private readonly nblocks: number;
  // An uncompressed file of more than one block is placed whole at once
  // (dmu/planned.ts), its indirect blocks written as their blocks'
  // checksums come in. Any other file goes through an ObjectWriter.
  private readonly w: ObjectWriter | null = null;
  private readonly plan: PlannedObject | null = null;
  private buf: Uint8Array | undefined;
  private fillLen = 0;
  private received = 0;
  /** Where its first block went (bump allocation): set when that block is placed. */
  private start = 0;
  private begun = false;
  // A compressed file's blocks go through the image's BlockPipeline (see
  // zio/pipeline.ts): placed in order as their compression comes back, the
  // file complete (`then`, or `result` for end()) once the last one is.
  private readonly pipe: BlockPipeline | null = null;
  private then: ((token: number, d: FileData) => void) | null = null;
  private result: FileData | undefined;

  /**
   * comp: the dataset's compression; with any, all-zero records become
   * holes as in OpenZFS. Without, nothing about a file's layout depends on
   * its bytes: one of more than one block is placed whole at once, and so
   * is one that is to be copied (`whole`, see copyFrom). `ahead`: the
   * caller can take the file's end later (endLater), so even a file of one
   * block can go through the compression pipeline, if other threads
   * compress: on the building thread alone it would only wait there.
   */
  constructor(private readonly zio: ZioWriter, readonly size: number, recordsize = RECORDSIZE, private readonly comp = COMP_OFF, whole = false, ahead = false) {
    this.blksz = fileBlockSize(size, recordsize);
    this.nblocks = size === 0 ? 0 : Math.ceil(size / this.blksz);
    if (comp === COMP_OFF && (this.nblocks > 1 || (whole && this.nblocks === 1))) {
      this.plan = new PlannedObject(zio, this.nblocks, this.blksz, DMU_OT_PLAIN_FILE_CONTENTS);
      return;
    }
    const pipe = comp === COMP_OFF ? null : zio.pipeline;
    if (pipe !== null && (this.nblocks > 1 || (ahead && pipe.pool.ringed))) this.pipe = pipe;
    else this.markStart();
    const dn = newDnode(DMU_OT_PLAIN_FILE_CONTENTS, this.blksz, 0, NO_BONUS, 1);
    this.w = new ObjectWriter(zio, dn, levelsFor(this.nblocks, 1), comp);
  }

  /**
   * Have the file's blocks copied into place from the host file at `path`
   * (by the image writer, or whoever is free: vdev/copy-queue.ts), instead
   * of being fed; only for a file placed whole. `done` gets its
   * FileData once they are all in; `failed` makes the error a chunk's
   * failure is thrown as.
   */
  copyFrom(path: string | Uint8Array, queue: CopyQueue, done: (d: FileData) => void, failed: (status: number, errno: number, message?: string) => Error): void {
    const plan = this.plan;
    if (plan === null || this.received !== 0) throw new Error('only a file placed whole, and not fed, can be copied');
    queue.add(new CopiedFile(this, plan, path, done, failed));
  }

  /** A copied file's blocks are all in (CopiedFile): its FileData, not charged to any object set. */
  copied(): FileData {
    this.received = this.size;
    // (a copied file is charged to its dataset from its FileData, as every
    // file written ahead of its dnode: the object set being written when
    // the copy ends is any one)
    return this.end(false);
  }

  /** Feed the next bytes of the file (any chunking). */
  write(chunk: Uint8Array): void {
    if (this.received + chunk.length > this.size) throw new Error(`more data than the declared ${this.size} bytes`);
    this.received += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      if (this.fillLen === 0 && chunk.length - off >= this.blksz) {
        // a whole record in the caller's chunk: no copy
        this.pushBlock(chunk.subarray(off, off + this.blksz));
        off += this.blksz;
        continue;
      }
      this.buf ??= claimScratch(this.blksz);
      const n = Math.min(this.blksz - this.fillLen, chunk.length - off);
      copyBytes(this.buf, chunk.subarray(off, off + n), this.fillLen);
      this.fillLen += n;
      off += n;
      if (this.fillLen === this.blksz) this.flushBlock();
    }
  }

  /**
   * A whole block read straight into place by the caller (the fast path for
   * host files): `block` must be blksz bytes, zero-padded past the end of file.
   */
  writeBlock(block: Uint8Array, dataLen: number): void {
    if (this.fillLen !== 0) throw new Error('writeBlock after a partial write');
    this.received += dataLen;
    this.pushBlock(block, dataLen);
  }

  /** `dataLen`: the bytes of the file in `block`, zeros after them. */
  private pushBlock(block: Uint8Array, dataLen = block.length): void {
    if (this.plan !== null) {
      // (the zeros after the data need no writing: see ZioWriter.writeBlock)
      this.zio.image.write(this.plan.dataOffset(this.plan.pushed), dataLen === block.length ? block : block.subarray(0, dataLen));
      fletcher4Into(block, cksum, 0);
      this.plan.push(cksum);
      return;
    }
    const zero = this.comp !== COMP_OFF && isAllZero(block);
    const pipe = this.pipe;
    if (pipe !== null) {
      if (zero) pipe.hole(this);
      else pipe.block(this, block, this.comp, dataLen);
      return;
    }
    if (zero) this.w!.pushHole();
    else this.w!.push(block, 1, undefined, dataLen);
  }

  /** Where the file starts: where the cursor is as its first block (or its end) is placed. */
  private markStart(): void {
    if (this.begun) return;
    this.begun = true;
    // (reading the cursor has the pipeline place what is ahead of this file)
    this.start = this.zio.alloc.position;
  }

  placeHole(): void {
    this.markStart();
    this.w!.pushHole();
  }

  placeBlock(input: Uint8Array, output: Uint8Array | null, dataLen: number): void {
    this.markStart();
    this.w!.push(input, 1, output, dataLen);
  }

  placed(token: number): void {
    this.markStart();
    const d = this.finished(true);
    if (this.then === null) this.result = d;
    else this.then(token, d);
  }

  private flushBlock(): void {
    this.pushBlock(this.buf!, this.fillLen);
    this.fillLen = 0;
  }

  get bytesReceived(): number {
    return this.received;
  }

  /** Whether the file's end may be taken later (endLater): its blocks go through the pipeline. */
  get piped(): boolean {
    return this.pipe !== null;
  }

  /** `charge`: the blocks go on the account of the object set being written (ZioWriter.charge), as every block written does. */
  end(charge = true): FileData {
    this.lastBlock();
    if (this.pipe === null) return this.finished(charge);
    // (a piped file's blocks were charged as they were placed)
    if (!charge) throw new Error('end(false): a compressed file is charged as its blocks are placed');
    this.pipe.end(this, -1);
    this.pipe.drain();
    if (this.result === undefined) throw new Error('end() while the pipeline places blocks: its own are not placed');
    return this.result;
  }

  /**
   * A piped file's data is all written: `then(token, data)` comes once its
   * blocks are placed, in the pipeline's order (by the next drain at the latest).
   */
  endLater(token: number, then: (token: number, d: FileData) => void): void {
    if (this.pipe === null) throw new Error('endLater: the file does not go through the pipeline');
    this.lastBlock();
    this.then = then;
    this.pipe.end(this, token);
  }

  private lastBlock(): void {
    if (this.received !== this.size) throw new Error(`got ${this.received} of ${this.size} bytes`);
    if (this.fillLen > 0) {
      this.buf!.fill(0, this.fillLen);
      this.flushBlock();
    }
    if (this.buf) releaseScratch(this.buf);
    this.buf = undefined;
  }

  private finished(charge: boolean): FileData {
    if (this.plan !== null) {
      const top = this.plan.finish(charge);
      return {
        size: this.size, blksz: this.blksz, nlevels: top.nlevels, maxblkid: top.maxblkid,
        used: top.asize, bp: top.bp, psize: top.psize, lsize: top.lsize,
        start: this.plan.start, end: this.plan.end,
        // (one block: the dnode points at it, no indirect block, as any file of one block)
        ...(top.nlevels > 1 ? { ibs: PLANNED_INDBLKSHIFT } : {}),
      };
    }
    const dn = this.w!.finish();
    const a = this.w!.acct;
    return {
      size: this.size, blksz: this.blksz, nlevels: dn.nlevels, maxblkid: dn.maxblkid,
      used: dn.used, bp: dn.blkptr[0]!, psize: a.psize, lsize: a.lsize,
      start: this.start, end: this.zio.alloc.position,
    };
  }
}
