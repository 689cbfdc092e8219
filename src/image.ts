// makeImage: the whole pipeline from a tree model to a finished image file.
// The image is written under a temporary name and renamed only when every
// byte is in place; any failure removes it.
import { DataSource, Inode, newDir, sortTree } from './input/tree.js';
import { FileDataSlab, FileDataWriter, fileBlockSize, RECORDSIZE, type FileData, type WrittenData } from './zpl/filedata.js';
import { CHUNK_IMAGE_ERROR, CHUNK_SHRANK, CHUNK_SOURCE_ERROR, fitsJobPath } from './vdev/copy-ring.js';
import { getSystemErrorName } from 'node:util';
import { ImageOptions } from './options.js';
import { ImageFile, type AdoptedBuffer } from './vdev/imagefile.js';
import { OutOfSpaceError, SpaceAllocator, fmtSize } from './vdev/allocator.js';
import { defaultMsShift, dspaceFor, SPA_MINDEVSIZE, VDEV_LABEL_END_SIZE, VDEV_LABEL_START_SIZE, vdevGeometry, writableSpace, type VdevGeometry } from './vdev/geometry.js';
import { buildLabel, labelOffsets, uberblockSlotSize } from './vdev/label.js';
import { labelConfig } from './vdev/config.js';
import { packNvlist } from './vdev/nvlist.js';
import { encodeUberblock } from './vdev/uberblock.js';
import { ZioWriter } from './zio/writer.js';
import { CompressPool } from './zio/compress-pool.js';
import { availableParallelism } from 'node:os';
import { ZplWriter } from './zpl/dataset.js';
import { DatasetInput, writeMos } from './dsl/pool.js';
import { allDatasets, DatasetPlan, parseDatasets, planDatasets, splitTree } from './dsl/datasets.js';
import { propsToZap } from './dsl/props.js';
import { baseRefcounts, FeatureState, labelFeaturesForRead, resolveFeatures } from './dsl/features.js';
import { COMP_LZ4, COMP_OFF, COMP_ZLE } from './zio/blkptr.js';
import { zname } from './dsl/mos.js';
import { SeedSource } from './util/seed.js';
import { fsUserError, UserError } from './util/errors.js';
import { showPath } from './input/walk.js';

/**
 * Host files from this size on, in a dataset without compression, are
 * copied into place by whichever thread is free (InputContext.copies);
 * smaller ones are read by the build through its ring, which costs less
 * per file (copying files of 8-32 KiB and up too measured no faster on
 * /usr: bench/RESULTS.md, twelfth round).
 */
const COPY_MIN = copyMin(process.env['TSMAKEFS_COPY_MIN']);

/** TSMAKEFS_COPY_MIN (bytes) for measurements; by default files of more than one 128 KiB record. */
function copyMin(env: string | undefined): number {
  const n = Number(env);
  return env !== undefined && env !== '' && Number.isSafeInteger(n) && n >= 1 ? n : 128 * 1024 + 1;
}

/** Birth txg of every block; the uberblock claims a later txg unless verify-txgs is set. */
export const DATA_TXG = 4;
const TXG_SIZE = 4;

export interface ImageSummary {
  image: string;
  poolName: string;
  poolGuid: string;
  imageSize: number;
  vdevAsize: number;
  metaslabs: number;
  metaslabSize: number;
  allocated: number;
  /** What the datasets can still write (zfs's `available` before quotas and reservations): free space less OpenZFS's slop reservation. */
  available: number;
  datasets: DatasetSummary[];
}

export interface DatasetSummary {
  name: string;
  mountpoint: string;
  objects: number;
  /** Inodes in the file system (files, directories, links, devices...; its root included). */
  entries: number;
  files: number;
  directories: number;
  dataBytes: number;
  /** Allocated bytes (what `zfs list` shows as USED for the dataset alone). */
  used: number;
  /** Logical (uncompressed) and physical (compressed) size of its blocks: lsize / psize is the compression ratio. */
  lsize: number;
  psize: number;
}

/** Objects of a ZPL file system that are not inodes (master node, SA master, registry, layouts, delete queue). */
const ZPL_SYSTEM_OBJECTS = 5;

/** What makeImage reports while it runs (ImageOptions.onProgress). */
export interface Progress {
  phase: 'data' | 'metadata' | 'done';
  /** Regular files whose data is in the image. */
  files: number;
  /** File data bytes read so far. */
  bytes: number;
  /** Bytes written to the image file so far (after compression, with metadata). */
  written: number;
}

/** What a streaming input (tar) gets: a way to write file data as it arrives. */
export interface InputContext {
  /**
   * Start a regular file of `size` bytes; feed it with write(), then end()
   * gives its DataSource. `path` (names below the tree root joined by "/")
   * picks the dataset whose recordsize and compression apply.
   */
  beginFile(size: number, path?: string): FileSink;
  /** Forget data written earlier (a later member with the same path replaced it). */
  discard(src: DataSource): void;
  /**
   * The block size beginFile(size, path) will write in; given, a reader may
   * feed the file as whole blocks (FileSink.writeBlock).
   */
  blockSize?(size: number, path?: string): number;
  /** Offer a shared buffer whose blocks the image may write from where they lie (ImageFile.adopt). */
  adoptBuffer?(sab: SharedArrayBuffer): AdoptedBuffer | null;
  /**
   * false: beginFile and blockSize do not look at the path (every dataset
   * writes files alike), so a reader need not put paths together.
   */
  pathsMatter?: boolean;
  /**
   * Whether a host file of this size at this path is better copied by the
   * image (copyFile) than fed to a sink: its blocks are placed before they
   * are read, and the image writer or whichever thread is free reads them
   * into place.
   */
  copies?(size: number, path: string | undefined, hostPath: string | Uint8Array): boolean;
  /**
   * Copy the host file at `hostPath` (read later, maybe by another thread),
   * where copies() said so. Its data source, final once the input is
   * complete.
   */
  copyFile?(size: number, path: string | undefined, hostPath: string | Uint8Array): DataSource;
  /** Take in the copies finished so far (their files' last metadata); cheap, call it now and then. */
  collectCopies?(): void;
  /**
   * The input is busy without writing file data (a manifest being read):
   * progress is reported as if it had (at most every 100 ms), so a
   * progress line and the command line's heap check (heap-growth.ts) run
   * through that stretch too. Cheap; call it now and then.
   */
  tick?(): void;
}

/** One regular file's data on its way into the image. */
export interface FileSink {
  /** The next bytes, in any chunking. */
  write(chunk: Uint8Array): void;
  /** The next whole block (blockSize bytes): `dataLen` bytes of the file, then zeros. Only where blockSize is given. */
  writeBlock?(block: Uint8Array, dataLen: number): void;
  end(): DataSource;
}

/** What makeImage keeps track of around each file's data (ImageFileSink). */
interface SinkBook {
  /** Note the error (an image out of space) and throw it on. */
  failed(err: unknown): never;
  /** `n` bytes of file data went in. */
  data(n: number): void;
  /** The data source a file takes (a FileDataSlab index); its FileData comes to `filled`, at once or once its blocks are placed (FileDataWriter.endLater). */
  reserve(): WrittenData;
  filled(index: number, d: FileData): void;
}

/**
 * InputContext.beginFile's sink: one object per file (a tree of small files
 * makes many), with no closures made per file or per write.
 */
class ImageFileSink implements FileSink {
  constructor(private readonly w: FileDataWriter, private readonly book: SinkBook) {}

  write(chunk: Uint8Array): void {
    try { this.w.write(chunk); } catch (e) { this.book.failed(e); }
    this.book.data(chunk.length);
  }

  writeBlock(block: Uint8Array, dataLen: number): void {
    try { this.w.writeBlock(block, dataLen); } catch (e) { this.book.failed(e); }
    this.book.data(dataLen);
  }

  end(): DataSource {
    const w = this.w;
    const src = this.book.reserve();
    try {
      // (a piped file: the next one goes on while its last blocks are compressed)
      if (w.piped) w.endLater(src.index, this.book.filled);
      else this.book.filled(src.index, w.end());
    } catch (e) { this.book.failed(e); }
    return src;
  }
}

/**
 * The error a failed copy of a host file is reported as: the messages of a
 * file read, or an image written, on the build thread.
 */
function copyError(image: string, hostPath: string | Uint8Array, size: number, status: number, errno: number, message?: string): Error {
  // (the path as errors name it, made only for an error: a file may wait long to be copied)
  const shown = showPath(hostPath);
  const err = (syscall: string) => ({ code: getSystemErrorName(errno), errno, syscall });
  switch (status) {
    case CHUNK_SHRANK: return new UserError(`${shown}: file shrank while being read (expected ${size} bytes)`);
    case CHUNK_SOURCE_ERROR: return fsUserError(shown, err('read'));
    case CHUNK_IMAGE_ERROR: return fsUserError(image, err('write'));
    default: return new Error(`copying ${shown} into the image failed: ${message ?? 'no reason given'}`);
  }
}

/** A finished tree, or a reader that builds one while streaming data into the image. */
export type TreeSource = Inode | ((ctx: InputContext) => Promise<Inode>);

export async function makeImage(source: TreeSource, opts: ImageOptions): Promise<ImageSummary> {
  // Without -s the image is written into a roomy sparse file with 16 MiB
  // metaslabs and cut to fit at the end, when the metaslab size is chosen
  // (OpenZFS's rule for the final size) and the small metaslabs regrouped:
  // a block that straddles no 16 MiB boundary straddles no larger one.
  const auto = opts.size === undefined;
  const capacity = auto ? Math.min(opts.maxSize ?? AUTO_CAPACITY, AUTO_CAPACITY) : opts.size!;
  let geo = vdevGeometry(capacity, opts.ashift, opts.msSize ?? (auto ? 2 ** AUTO_MS_SHIFT : undefined));
  if (geo.psize < SPA_MINDEVSIZE) throw new UserError(`image size ${fmtSize(capacity)} is below the minimum of 64 MiB (-s)`);
  if (geo.msCount < 1) throw new UserError(`metaslab size ${fmtSize(2 ** geo.msShift)} is larger than the image`);
  const seed = new SeedSource(opts.seed);
  const poolGuid = opts.poolGuid ?? seed.derive('pool-guid');
  const vdevGuid = seed.derive('vdev-guid');

  const image = new ImageFile(opts.image, capacity);
  let closePool: (() => void) | undefined;
  const progress: Progress = { phase: 'data', files: 0, bytes: 0, written: 0 };
  // the image filling up while an input reader writes: kept, as the reader may wrap the error
  let outOfSpace: OutOfSpaceError | undefined;
  // Bytes of files placed for copying whose copies are not done: allocated
  // already, so an out-of-space estimate counts them as read.
  let copying = 0;
  // (compressed blocks read and not yet placed: see BlockPipeline)
  let queued = (): number => 0;
  try {
    const alloc = new SpaceAllocator(geo.msCount, geo.msShift, geo.ashift, capacity);
    const zio = new ZioWriter(image, alloc, DATA_TXG);
    queued = () => zio.pipeline?.queuedBytes ?? 0;
    const enabled = resolveFeatures(opts.compatibility);
    const has = (name: string) => enabled.some((f) => f.name === name);
    // metadata is compressed whenever lz4 is there (OpenZFS's policy); small
    // blocks ride in their block pointer when embedded_data is
    if (has('lz4_compress')) zio.metaComp = COMP_LZ4;
    zio.embedded = has('embedded_data');
    // the image writer compresses too, when it has nothing to write
    const helper = image.compressHelper();
    const workers = opts.workers ?? defaultWorkers(helper !== null);
    if (workers > 0 || helper !== null) {
      const pool = new CompressPool(workers, helper);
      zio.usePool(pool);
      closePool = () => pool.close();
    }
    // datasets: declarations and mountpoints, known before any data is read
    // (a tar stream writes file data as it comes, with its dataset's settings)
    const decls = parseDatasets(opts.poolName, opts.rootPath, opts.datasets);
    const plan = planDatasets(opts.poolName, opts.rootPath, decls);
    const settings = datasetSettings(plan, has('lz4_compress'));
    const byMount = allDatasets(plan).filter((d) => d.populated)
      .map((d) => ({ d, rel: relMount(d.mountpoint, opts.rootPath) }))
      .filter((x) => x.rel !== null)
      .sort((a, b) => b.rel!.length - a.rel!.length);
    // Datasets that all write files alike (the usual case: one, or several
    // with the same recordsize and compression) need no path per file.
    const kinds = new Map([...settings.values()].map((st) => [`${st.recordsize}/${st.comp}`, st]));
    const uniform = kinds.size === 1 ? [...kinds.values()][0]! : undefined;
    /** The settings of the dataset a path (relative to the tree root) will land in. */
    const settingsFor = (path: string | undefined) => {
      if (uniform !== undefined) return uniform;
      const p = `/${path ?? ''}`;
      const m = byMount.find((x) => x.rel === '/' || p === x.rel || p.startsWith(`${x.rel}/`));
      return settings.get((m?.d ?? plan).name)!;
    };
    // progress: counted here, reported at most every 100 ms (a UI concern only)
    let lastTick = 0;
    const tick = (force = false) => {
      if (!opts.onProgress) return;
      const now = Date.now();
      if (!force && now - lastTick < 100) return;
      lastTick = now;
      progress.written = image.bytesWritten;
      opts.onProgress({ ...progress });
    };
    let root: Inode;
    if (typeof source === 'function') {
      const fileSlab = new FileDataSlab();
      const book: SinkBook = {
        failed: (err) => { if (err instanceof OutOfSpaceError) outOfSpace = err; throw err; },
        data: (n) => { progress.bytes += n; tick(); },
        reserve: () => fileSlab.reserve(),
        filled: (i, d) => { fileSlab.fill(i, d); progress.files++; tick(); },
      };
      const ctx: InputContext = {
        beginFile(size, path) {
          const st = settingsFor(path);
          let w: FileDataWriter;
          // (placing a file may place the compressed blocks ahead of it first)
          try { w = new FileDataWriter(zio, size, st.recordsize, st.comp, false, true); } catch (e) { book.failed(e); }
          // (book.filled is handed on unbound: an arrow function, it needs no `this`)
          return new ImageFileSink(w, book);
        },
        discard(src) {
          // (its blocks, and those queued before it, are placed first: that
          // may fill the image)
          try { if (src.kind === 'written') alloc.freeRange(src.data.start, src.data.end); } catch (e) { book.failed(e); }
        },
        blockSize: (size, path) => fileBlockSize(size, settingsFor(path).recordsize),
        adoptBuffer: (sab) => image.adopt(sab),
        pathsMatter: uniform === undefined,
        copies: (size, path, hostPath) => size >= COPY_MIN && settingsFor(path).comp === COMP_OFF && fitsJobPath(hostPath),
        // the file placed whole now, its blocks copied into place by whoever is free
        copyFile: (size, path, hostPath) => {
          const st = settingsFor(path);
          let w: FileDataWriter;
          try { w = new FileDataWriter(zio, size, st.recordsize, st.comp, true); } catch (e) { book.failed(e); }
          const source = fileSlab.reserve();
          copying += size;
          w.copyFrom(hostPath, image.copier(), (d) => {
            copying -= size;
            fileSlab.fill(source.index, d);
            progress.files++;
            image.bytesWritten += d.size;
            book.data(size);
          }, (status, errno, message) => copyError(opts.image, hostPath, size, status, errno, message));
          return source;
        },
        collectCopies: () => {
          // (files whose compression came back are placed too)
          try { zio.pipeline?.settle(); } catch (e) { book.failed(e); }
          image.collectCopies();
        },
        tick: () => tick(),
      };
      // Copies still under way go on while the metadata is written: a
      // file's FileData is waited for (and its last copies shared) only
      // when its dnode is made.
      fileSlab.onMissing = (i) => {
        // (a compressed file's blocks may still be in the pipeline)
        zio.pipeline?.drain();
        if (!fileSlab.has(i)) image.copier().settleUntil(() => fileSlab.has(i));
      };
      // (and the files queued behind a full table are posted as it empties)
      fileSlab.onGet = () => image.collectCopies();
      root = await source(ctx);
      // the data's last blocks placed, on the data's account, before any metadata
      try { zio.pipeline?.drain(); } catch (e) { book.failed(e); }
    } else {
      root = source;
    }
    // (and refuses a directory met twice: see sortTree)
    sortTree(root);

    splitTree(plan, root, opts.rootPath);
    if (opts.bootfs !== undefined) {
      const b = allDatasets(plan).find((d) => d.name === opts.bootfs);
      if (!b || !b.populated) throw new UserError(`no mounted dataset matches bootfs property '${opts.bootfs}'`);
    }
    const summaries: ImageSummary['datasets'] = [];
    const writeDataset = (d: DatasetPlan): DatasetInput => {
      const st = settings.get(d.name)!;
      const w = new ZplWriter(zio, seed, d.name, d.root ?? newDir(0o755), st.recordsize, st.comp);
      w.xattrs = opts.xattrs;
      const zpl = w.write();
      summaries.push({
        name: d.name, mountpoint: d.mountpoint, objects: zpl.objects, entries: zpl.objects - ZPL_SYSTEM_OBJECTS, files: zpl.files,
        directories: zpl.dirs, dataBytes: zpl.dataBytes, used: zpl.acct.asize, lsize: zpl.acct.lsize, psize: zpl.acct.psize,
      });
      const props = new Map(d.props);
      if (d === plan) {
        // without lz4 the default ("on") would mean lzjb, which tsmakefs does
        // not write: say off rather than claim a compression that is not there
        if (!props.has('compression') && !has('lz4_compress')) props.set('compression', { kind: 'u64', value: 2n });
        if (!props.has('mountpoint') && opts.rootPath !== `/${opts.poolName}`) props.set('mountpoint', { kind: 'string', value: opts.rootPath });
      }
      const num = (k: string) => { const v = d.props.get(k); return v?.kind === 'u64' ? Number(v.value) : undefined; };
      return {
        name: d.name, bp: zpl.bp, acct: zpl.acct, props: propsToZap(props),
        quota: num('quota'), reservation: num('reservation'), refreservation: num('refreservation'),
        children: d.children.map(writeDataset),
      };
    };
    progress.phase = 'metadata';
    tick(true);
    const rootInput = writeDataset(plan);
    // (every copied file's dnode was made, so this only checks)
    image.settleCopies();
    if (auto) {
      geo = fitGeometry(geo, alloc, opts);
      image.resize(geo.fileSize);
    }
    const refcounts = baseRefcounts(enabled);
    const features: FeatureState = { enabled, refcounts };
    const ubTxg = opts.verifyTxgs ? DATA_TXG : DATA_TXG + TXG_SIZE;
    const cfg = {
      poolName: opts.poolName, poolGuid, vdevGuid, txg: DATA_TXG, createTxg: DATA_TXG,
      ashift: geo.ashift, asize: geo.asize, msShift: geo.msShift, vdevPath: opts.vdevPath,
    };
    const poolProps = [{ name: zname('compatibility'), value: { intLen: 1 as const, ints: [...zname(opts.compatibility), 0] } }];
    const mos = writeMos(zio, alloc, seed, { config: cfg, features, root: rootInput, poolProps, bootfs: opts.bootfs });

    const ub = encodeUberblock({ txg: ubTxg, guidSum: poolGuid + vdevGuid, timestamp: 0, rootbp: mos.rootbp });
    const slot = new Uint8Array(uberblockSlotSize(geo.ashift));
    slot.set(ub);
    const labelCfg = packNvlist(labelConfig({ ...cfg, msArray: mos.msArray }, labelFeaturesForRead(features)));
    for (const off of labelOffsets(geo.psize)) image.write(off, buildLabel(off, labelCfg, slot, geo.ashift));
    progress.phase = 'done';
    tick(true);
    image.commit();

    return {
      image: opts.image,
      poolName: opts.poolName,
      poolGuid: poolGuid.toString(),
      imageSize: geo.fileSize,
      vdevAsize: geo.asize,
      metaslabs: geo.msCount,
      metaslabSize: 2 ** geo.msShift,
      allocated: alloc.allocated,
      available: Math.max(0, writableSpace(geo.msCount, 2 ** geo.msShift) - alloc.allocated),
      datasets: summaries,
    };
  } catch (e) {
    image.abort();
    const oos = e instanceof OutOfSpaceError ? e : outOfSpace;
    if (oos) {
      // (bytes read whose compressed blocks wait in the pipeline have no space yet)
      oos.bytesRead = progress.bytes + copying - queued();
      throw oos;
    }
    throw e;
  } finally {
    closePool?.();
  }
}

const MIB = 1024 * 1024;
/** Room for the MOS still to be written after the datasets: generous, it is cut away anyway. */
const MOS_ALLOWANCE = 64 * MIB;
/**
 * The MOS as the free margin counts it: 0.1-0.5 MiB for trees up to /usr's
 * (space maps, DSL objects, config), so 8 MiB is plenty. Only the margin
 * uses it; MOS_ALLOWANCE is what makes sure the MOS can be written.
 */
const MOS_ESTIMATE = 8 * MIB;

/** The sparse file an auto-sized image is first written into, and its metaslab size while writing. */
const AUTO_CAPACITY = 4 * 1024 ** 4;
const AUTO_MS_SHIFT = 24;

/** Default margin of an auto-sized image, percent of the used space, writable once the pool is imported. */
export const DEFAULT_FREE_PERCENT = 10;

/**
 * The final geometry of an auto-sized image, once `used` bytes of the
 * allocatable area are taken: used plus the MOS allowance plus the free
 * margin, in whole metaslabs, at least 64 MiB and within -M/-m. The margin
 * is space the datasets can write to (their `available`): beyond the slop
 * OpenZFS holds back from ordinary writes, which is at least 128 MiB or
 * half the pool, so that a small image is not born full. Where -m leaves
 * no room for that, the image is as large as -m allows; free=0 leaves none.
 */
function fitGeometry(geo: VdevGeometry, alloc: SpaceAllocator, opts: ImageOptions): VdevGeometry {
  const free = opts.freePercent ?? DEFAULT_FREE_PERCENT;
  const need = (alloc.position + MOS_ALLOWANCE) * (1 + free / 100);
  // (free=0 asks for no room to write: the smallest image that holds the data)
  const writable = free > 0 ? (alloc.position + MOS_ESTIMATE) * (1 + free / 100) : 0;
  const want = Math.max(need, dspaceFor(writable));
  if (opts.msSize === undefined) alloc.regroup(Math.max(geo.msShift, defaultMsShift(Math.max(want, SPA_MINDEVSIZE))));
  const ms = alloc.msSize;
  const labels = VDEV_LABEL_START_SIZE + VDEV_LABEL_END_SIZE;
  const floor = Math.ceil((SPA_MINDEVSIZE - labels) / ms);
  let count = Math.max(Math.ceil(need / ms), floor);
  if (opts.minSize !== undefined) count = Math.max(count, Math.floor((opts.minSize - labels) / ms));
  count = Math.min(count, alloc.msCount);
  const fileSize = count * ms + labels;
  if (opts.maxSize !== undefined && fileSize > opts.maxSize) {
    throw new UserError(`the data needs an image of ${fmtSize(fileSize)}, more than the maximum ${fmtSize(opts.maxSize)} (-m)`);
  }
  // then the writable margin, as far as -m and the sparse file allow
  const most = Math.min(alloc.msCount, opts.maxSize === undefined ? Infinity : Math.floor((opts.maxSize - labels) / ms));
  count = Math.max(count, Math.min(Math.ceil(want / ms), most));
  // (one metaslab more where OpenZFS sets one aside for its embedded log)
  while (writable > 0 && count < most && writableSpace(count, ms) < writable) count++;
  alloc.shrink(count);
  return vdevGeometry(count * ms + labels, geo.ashift, ms);
}

/** Compression threads of the pool's own: TSMAKEFS_WORKERS, else one per core but one up to 4, less the image writer when it helps. */
function defaultWorkers(writerHelps: boolean): number {
  const env = process.env.TSMAKEFS_WORKERS;
  if (env !== undefined && /^\d+$/.test(env)) return Number(env);
  // the building thread compresses too (whenever it would wait for a
  // result), and so does the image writer when there is one (whenever it
  // has nothing to write): one helper fewer than cores keeps them all busy
  // without crowding out the reader thread (bench/RESULTS.md)
  return Math.max(0, Math.min(4, availableParallelism() - 1) - (writerHelps ? 1 : 0));
}

/**
 * What a dataset's compression property means for the blocks tsmakefs
 * writes: lz4 and zle are written as such ("on" is lz4 when the pool has
 * it); lzjb, gzip and "on" without lz4 are stored as the property but the
 * data is written uncompressed, which every reader accepts.
 */
function dataCompression(prop: bigint, haveLz4: boolean, dataset: string): number {
  switch (prop) {
    case 1n: return haveLz4 ? COMP_LZ4 : COMP_OFF;
    case 15n:
      if (!haveLz4) throw new UserError(`dataset '${dataset}': compression=lz4 needs the lz4_compress feature, which -o compatibility leaves out`);
      return COMP_LZ4;
    case 14n: return COMP_ZLE;
    case 16n: throw new UserError(`dataset '${dataset}': compression=zstd is not supported by tsmakefs`);
    default: return COMP_OFF;
  }
}

/** A mountpoint relative to the root path ("/" for the root path itself), or null if outside it. */
function relMount(mp: string, rootPath: string): string | null {
  if (rootPath === '/') return mp;
  if (mp === rootPath) return '/';
  return mp.startsWith(`${rootPath}/`) ? mp.slice(rootPath.length) : null;
}

/** Each dataset's effective recordsize and data compression, inherited as ZFS does. */
function datasetSettings(plan: DatasetPlan, haveLz4: boolean): Map<string, { recordsize: number; comp: number }> {
  const out = new Map<string, { recordsize: number; comp: number }>();
  const visit = (d: DatasetPlan, rs: number, compProp: bigint) => {
    const r = d.props.get('recordsize');
    const c = d.props.get('compression');
    const recordsize = r?.kind === 'u64' ? Number(r.value) : rs;
    const prop = c?.kind === 'u64' ? c.value : compProp;
    out.set(d.name, { recordsize, comp: dataCompression(prop, haveLz4, d.name) });
    for (const ch of d.children) visit(ch, recordsize, prop);
  };
  visit(plan, RECORDSIZE, haveLz4 ? 1n : 2n);
  return out;
}
