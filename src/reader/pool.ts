// Opening a pool image for reading: the four labels (each region's embedded
// SHA-256 checked), the config nvlist, the best uberblock, and verified block
// reads by DVA. Everything is read with positional reads; nothing but the
// labels (1 MiB) and a small cache of metadata blocks is held in memory.
import * as fs from 'node:fs';
import { sha256 } from '@noble/hashes/sha2.js';
import { fletcher4Kernel } from '../zio/fletcher4.js';
import { CKSUM_FLETCHER4, CKSUM_OFF, CKSUM_SHA256, COMP_LZ4, COMP_OFF, COMP_ZLE } from '../zio/blkptr.js';
import { decompressBlock } from '../zio/compress.js';
import { VDEV_LABEL_SIZE, VDEV_LABEL_START_SIZE, VDEV_LABEL_END_SIZE } from '../vdev/geometry.js';
import {
  ECK_SIZE, labelOffsets, uberblockSlotSize, verifyEmbedded, ZEC_MAGIC, VDEV_BOOTENV_OFFSET, VDEV_BOOTENV_SIZE,
  VDEV_PAD_SIZE, VDEV_PHYS_OFFSET, VDEV_PHYS_SIZE, VDEV_UBERBLOCK_RING, VDEV_UBERBLOCK_RING_OFFSET,
} from '../vdev/label.js';
import { NvList, nvGet, nvGetList, nvGetStr, nvGetU64, unpackNvlist } from '../vdev/nvlist.js';
import { decodeUberblock, Uberblock, UBERBLOCK_MAGIC } from '../vdev/uberblock.js';
import { rd64le } from '../util/endian.js';
import { fsUserError, UserError } from '../util/errors.js';
import { readBp, ReaderBp, describeDva } from './bp.js';
import { ReadError } from './errors.js';
import { ObjsetReader } from './objset.js';

export interface UberblockInfo extends Uberblock {
  rootbp: ReaderBp;
  version: number;
  label: number;
  slot: number;
}

export interface LabelInfo {
  index: number;
  /** Absolute offset of the label in the image. */
  offset: number;
  /** Unpacked config, when its region verified. */
  config?: NvList;
  /** Uberblock slots whose checksum and magic are good. */
  goodUberblocks: number;
  /** Slots holding something (not all zero). */
  usedSlots: number;
}

const CKSUM_NAMES: Record<number, string> = {
  0: 'inherit', 1: 'on', 2: 'off', 3: 'label', 4: 'gang_header', 5: 'zilog', 6: 'fletcher2', 7: 'fletcher4',
  8: 'sha256', 9: 'zilog2', 10: 'noparity', 11: 'sha512', 12: 'skein', 13: 'edonr', 14: 'blake3',
};
const COMP_NAMES: Record<number, string> = {
  0: 'inherit', 1: 'on', 2: 'off', 3: 'lzjb', 4: 'empty', 5: 'gzip-1', 14: 'zle', 15: 'lz4', 16: 'zstd',
};
export const checksumName = (t: number): string => CKSUM_NAMES[t] ?? `checksum type ${t}`;
const compressionName = (t: number): string => COMP_NAMES[t] ?? (t >= 5 && t <= 13 ? `gzip-${t - 4}` : `compression ${t}`);

const CACHE_BYTES = 32 * 1024 * 1024;
const SUPPORTED_COMP = new Set([COMP_OFF, COMP_LZ4, COMP_ZLE]);

function allZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

export interface PoolReaderOptions {
  /** Bytes of metadata blocks (indirect, dnode) kept in memory. Default 32 MiB. */
  cacheBytes?: number;
}

export class PoolReader {
  readonly labels: LabelInfo[] = [];
  /** Problems found in the labels: "label 2: config checksum mismatch". Reading works while one label is good. */
  readonly labelProblems: string[] = [];
  readonly config!: NvList;
  readonly poolName!: string;
  readonly poolGuid!: bigint;
  readonly vdevGuid!: bigint;
  readonly ashift!: number;
  /** Allocatable bytes of the vdev (from the config). */
  readonly asize!: number;
  readonly msShift!: number;
  /** MOS object number of the metaslab array. */
  readonly msArray!: number;
  readonly uberblock!: UberblockInfo;
  readonly fileSize: number;
  readonly psize: number;
  /** Uberblock slots checked (all labels). */
  uberblocksChecked = 0;

  private fd: number;
  private cache = new Map<number, Uint8Array>();
  private cacheUsed = 0;
  private readonly cacheLimit: number;
  private mosReader: ObjsetReader | undefined;

  private constructor(readonly path: string, fd: number, opts: PoolReaderOptions) {
    this.fd = fd;
    this.cacheLimit = opts.cacheBytes ?? CACHE_BYTES;
    this.fileSize = fs.fstatSync(fd).size;
    this.psize = Math.floor(this.fileSize / VDEV_LABEL_SIZE) * VDEV_LABEL_SIZE;
    if (this.psize < VDEV_LABEL_START_SIZE + VDEV_LABEL_END_SIZE + VDEV_LABEL_SIZE) {
      throw new UserError(`${path}: ${this.fileSize} bytes is too small to be a ZFS pool image`);
    }
    this.readLabels();
  }

  /** Open an image; throws UserError when it is not a pool this reader can read. */
  static open(path: string, opts: PoolReaderOptions = {}): PoolReader {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (e) {
      throw fsUserError(path, e);
    }
    try {
      return new PoolReader(path, fd, opts);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    this.cache.clear();
  }

  /** The meta object set (its objset block is read on first use). */
  get mos(): ObjsetReader {
    this.mosReader ??= new ObjsetReader(this, this.uberblock.rootbp, 'MOS');
    return this.mosReader;
  }

  /** Bytes [pos, pos + len) of the image file. */
  readPhys(pos: number, len: number, into?: Uint8Array): Uint8Array {
    const buf = into ?? new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const n = fs.readSync(this.fd, buf, done, len - done, pos + done);
      if (n === 0) throw new ReadError(`read of ${len} bytes at ${pos} runs past the end of the image (${this.fileSize} bytes)`);
      done += n;
    }
    return buf;
  }

  // ------------------------------------------------------------------ labels

  private readLabels(): void {
    const offsets = labelOffsets(this.psize);
    const raw = offsets.map((off) => this.readPhys(off, VDEV_LABEL_SIZE));
    const self = this as { -readonly [K in keyof PoolReader]: PoolReader[K] };
    offsets.forEach((off, i) => {
      const label = raw[i]!;
      const info: LabelInfo = { index: i, offset: off, goodUberblocks: 0, usedSlots: 0 };
      this.labels.push(info);
      if (allZero(label)) {
        this.labelProblems.push(`label ${i}: missing (all zero)`);
        return;
      }
      const region = (name: string, start: number, size: number): Uint8Array | undefined => {
        const r = label.subarray(start, start + size);
        if (rd64le(r, size - ECK_SIZE) !== ZEC_MAGIC) {
          this.labelProblems.push(`label ${i}: ${name}: no embedded checksum (bad magic)`);
          return undefined;
        }
        if (!verifyEmbedded(r, off + start)) {
          this.labelProblems.push(`label ${i}: ${name}: checksum mismatch`);
          return undefined;
        }
        return r;
      };
      // the pad before the boot environment has no checksum; ZFS writes it as zeros
      if (!allZero(label.subarray(0, VDEV_PAD_SIZE))) this.labelProblems.push(`label ${i}: pad area (first 8 KiB) is not zero`);
      region('boot environment', VDEV_BOOTENV_OFFSET, VDEV_BOOTENV_SIZE);
      const phys = region('config', VDEV_PHYS_OFFSET, VDEV_PHYS_SIZE);
      if (phys) {
        try {
          info.config = unpackNvlist(phys.subarray(0, VDEV_PHYS_SIZE - ECK_SIZE));
        } catch (e) {
          this.labelProblems.push(`label ${i}: config: ${(e as Error).message}`);
        }
      }
    });

    const good = this.labels.find((l) => l.config);
    if (!good) throw new UserError(`${this.path}: no label has a readable config; not a ZFS pool image, or all four labels are damaged`);
    const cfg = good.config!;
    let tree: NvList;
    try {
      self.config = cfg;
      self.poolName = nvGetStr(cfg, 'name');
      self.poolGuid = nvGetU64(cfg, 'pool_guid');
      self.vdevGuid = nvGetU64(cfg, 'guid');
      tree = nvGetList(cfg, 'vdev_tree');
      const type = nvGetStr(tree, 'type');
      if (type !== 'disk' && type !== 'file') throw new Error(`vdev type '${type}' is not supported (single disk or file vdevs only)`);
      if (nvGetU64(cfg, 'vdev_children') !== 1n) throw new Error('pools with more than one top-level vdev are not supported');
      self.ashift = Number(nvGetU64(tree, 'ashift'));
      self.asize = Number(nvGetU64(tree, 'asize'));
      self.msShift = Number(nvGetU64(tree, 'metaslab_shift'));
      self.msArray = Number(nvGetU64(tree, 'metaslab_array'));
    } catch (e) {
      throw new UserError(`${this.path}: label ${good.index} config: ${(e as Error).message}`);
    }
    for (const l of this.labels) {
      if (!l.config || l === good) continue;
      for (const key of ['pool_guid', 'guid', 'name']) {
        const a = nvGet(l.config, key);
        const b = nvGet(cfg, key);
        if (a?.type !== b?.type || (a as { value?: unknown })?.value !== (b as { value?: unknown })?.value) {
          this.labelProblems.push(`label ${l.index}: config: ${key} differs from label ${good.index}'s`);
        }
      }
    }
    if (this.asize + VDEV_LABEL_START_SIZE + VDEV_LABEL_END_SIZE > this.psize) {
      this.labelProblems.push(`config: vdev asize ${this.asize} does not fit in the ${this.psize}-byte image`);
    }

    // uberblock rings
    const slot = uberblockSlotSize(this.ashift);
    let best: UberblockInfo | undefined;
    offsets.forEach((off, i) => {
      const label = raw[i]!;
      const info = this.labels[i]!;
      for (let s = 0; s < VDEV_UBERBLOCK_RING / slot; s++) {
        const start = VDEV_UBERBLOCK_RING_OFFSET + s * slot;
        const r = label.subarray(start, start + slot);
        this.uberblocksChecked++;
        if (allZero(r)) continue;
        info.usedSlots++;
        if (rd64le(r, slot - ECK_SIZE) !== ZEC_MAGIC || !verifyEmbedded(r, off + start)) {
          this.labelProblems.push(`label ${i}: uberblock slot ${s}: checksum mismatch`);
          continue;
        }
        const ub = decodeUberblock(r);
        if (ub.magic !== UBERBLOCK_MAGIC) {
          this.labelProblems.push(`label ${i}: uberblock slot ${s}: bad magic 0x${ub.magic.toString(16)}`);
          continue;
        }
        let rootbp: ReaderBp;
        try {
          rootbp = readBp(r, 40);
        } catch (e) {
          this.labelProblems.push(`label ${i}: uberblock slot ${s}: root block pointer: ${(e as Error).message}`);
          continue;
        }
        if (BigInt.asUintN(64, this.poolGuid + this.vdevGuid) !== ub.guidSum) {
          this.labelProblems.push(`label ${i}: uberblock slot ${s}: guid_sum does not match the config's vdev guids`);
        }
        info.goodUberblocks++;
        const cand: UberblockInfo = { ...ub, rootbp, label: i, slot: s };
        if (!best || cand.txg > best.txg || (cand.txg === best.txg && cand.timestamp > best.timestamp)) best = cand;
      }
    });
    if (!best) throw new UserError(`${this.path}: no valid uberblock in any label`);
    self.uberblock = best;
  }

  // ------------------------------------------------------------------ blocks

  /** Check a DVA's place; throws ReadError. */
  private checkDva(bp: ReaderBp, copy: number): void {
    const d = bp.dvas[copy]!;
    const key = `dva:${d.offset}`;
    if (d.vdev !== 0) throw new ReadError(`${describeDva(d, copy)}: no vdev ${d.vdev}`, key);
    if (d.offset + d.asize > this.asize) throw new ReadError(`${describeDva(d, copy)}: beyond the end of the vdev (asize ${this.asize.toString(16)})`, key);
    if (bp.psize > d.asize) throw new ReadError(`${describeDva(d, copy)}: psize ${bp.psize} exceeds the allocated size`, key);
  }

  private checksumError(bp: ReaderBp, copy: number, what: string): ReadError {
    const d = bp.dvas[copy]!;
    return new ReadError(`${what} (${checksumName(bp.cksumType)}, ${describeDva(d, copy)})`, `dva:${d.offset}`);
  }

  private verifyChecksum(bp: ReaderBp, copy: number, data: Uint8Array): void {
    switch (bp.cksumType) {
      case CKSUM_FLETCHER4: {
        const c = fletcher4Kernel.checksum(data);
        for (let i = 0; i < 32; i++) if (c[i] !== bp.cksum[i]) throw this.checksumError(bp, copy, 'checksum mismatch');
        return;
      }
      case CKSUM_SHA256: {
        const d = sha256(data);
        // each zc_word holds eight digest bytes read big-endian, stored little-endian
        for (let w = 0; w < 4; w++) {
          for (let b = 0; b < 8; b++) {
            if (bp.cksum[w * 8 + b] !== d[w * 8 + 7 - b]) throw this.checksumError(bp, copy, 'checksum mismatch');
          }
        }
        return;
      }
      case CKSUM_OFF:
        return;
      default:
        throw this.checksumError(bp, copy, `cannot verify: ${checksumName(bp.cksumType)} is not supported`);
    }
  }

  private checkSupported(bp: ReaderBp): void {
    const key = `dva:${bp.dvas[0]!.offset}`;
    if (bp.gang) throw new ReadError(`gang blocks are not supported (${describeDva(bp.dvas[0]!)})`, key);
    if (!SUPPORTED_COMP.has(bp.comp)) {
      throw new ReadError(`${compressionName(bp.comp)} compression is not supported (${describeDva(bp.dvas[0]!)})`, key);
    }
    if (bp.comp === COMP_OFF && bp.psize !== bp.lsize) throw new ReadError(`psize ${bp.psize} differs from lsize ${bp.lsize} in an uncompressed block`, key);
  }

  /** A block's logical contents from its physical (or embedded) bytes. */
  decode(bp: ReaderBp, phys: Uint8Array): Uint8Array {
    if (bp.comp === COMP_OFF && !bp.embedded) return phys;
    const where = bp.embedded ? 'embedded block' : describeDva(bp.dvas[0]!);
    if (!SUPPORTED_COMP.has(bp.comp)) throw new ReadError(`${compressionName(bp.comp)} compression is not supported (${where})`);
    try {
      const out = decompressBlock(bp.comp, phys, bp.lsize);
      if (out.length !== bp.lsize) throw new Error(`gives ${out.length} bytes, not ${bp.lsize}`);
      return out;
    } catch (e) {
      throw new ReadError(`${compressionName(bp.comp)} data does not decompress: ${(e as Error).message} (${where})`,
        bp.embedded ? undefined : `dva:${bp.dvas[0]!.offset}`);
    }
  }

  /**
   * Read and verify copy `copy` of a block (its physical bytes). With
   * `padding`, the allocated bytes past psize (up to the DVA's asize) are
   * read too and must be zero, as OpenZFS writes them: a block's whole
   * allocation is then covered by a check.
   */
  readCopy(bp: ReaderBp, copy: number, padding = false): Uint8Array {
    this.checkSupported(bp);
    this.checkDva(bp, copy);
    const d = bp.dvas[copy]!;
    const len = padding ? d.asize : bp.psize;
    const raw = this.readPhys(VDEV_LABEL_START_SIZE + d.offset, len);
    const data = raw.subarray(0, bp.psize);
    this.verifyChecksum(bp, copy, data);
    if (padding) this.checkPadding(bp, copy, raw);
    return len === bp.psize ? raw : raw.slice(0, bp.psize);
  }

  private checkPadding(bp: ReaderBp, copy: number, raw: Uint8Array): void {
    for (let i = bp.psize; i < raw.length; i++) {
      if (raw[i] !== 0) {
        const d = bp.dvas[copy]!;
        throw new ReadError(`non-zero byte at +${i} in the allocated padding after the block's ${bp.psize} bytes (${describeDva(d, copy)})`, `dva:${d.offset}`);
      }
    }
  }

  /**
   * Verify copy `copy` of a block and its padding (see readCopy) without
   * keeping it: fletcher4 blocks are read straight into the checksum
   * kernel's memory.
   */
  checkCopy(bp: ReaderBp, copy: number): void {
    if (bp.cksumType !== CKSUM_FLETCHER4) {
      this.readCopy(bp, copy, true);
      return;
    }
    this.checkSupported(bp);
    this.checkDva(bp, copy);
    const d = bp.dvas[copy]!;
    const view = fletcher4Kernel.buffer(d.asize);
    this.readPhys(VDEV_LABEL_START_SIZE + d.offset, d.asize, view);
    this.verifyChecksum(bp, copy, view.subarray(0, bp.psize));
    this.checkPadding(bp, copy, view);
  }

  /**
   * A block's logical contents, verified (the first good copy wins). Holes
   * read as lsize zero bytes. `cache` keeps it (metadata that is read again
   * and again: indirect and dnode blocks).
   */
  readBlock(bp: ReaderBp, cache = false): Uint8Array {
    if (bp.embedded) return this.decode(bp, bp.embedded);
    if (bp.dva === null) return new Uint8Array(bp.lsize);
    const key = bp.dva.offset;
    const hit = this.cache.get(key);
    if (hit && hit.length === bp.lsize) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    let err: unknown;
    for (let c = 0; c < bp.dvas.length; c++) {
      try {
        const data = this.decode(bp, this.readCopy(bp, c));
        if (cache) this.remember(key, data);
        return data;
      } catch (e) {
        err ??= e;
      }
    }
    throw err;
  }

  private remember(key: number, data: Uint8Array): void {
    if (data.length > this.cacheLimit / 4) return;
    this.cache.set(key, data);
    this.cacheUsed += data.length;
    for (const [k, v] of this.cache) {
      if (this.cacheUsed <= this.cacheLimit) break;
      this.cache.delete(k);
      this.cacheUsed -= v.length;
    }
  }
}

/** Open a pool image for reading. */
export function openPool(path: string, opts?: PoolReaderOptions): PoolReader {
  return PoolReader.open(path, opts);
}
