// makeImage: the whole pipeline from a tree model to a finished image file.
// The image is written under a temporary name and renamed only when every
// byte is in place; any failure removes it.
import { DataSource, Inode, newDir, sortTree } from './input/tree.js';
import { FileDataWriter } from './zpl/filedata.js';
import { ImageOptions } from './options.js';
import { ImageFile } from './vdev/imagefile.js';
import { SpaceAllocator, fmtSize } from './vdev/allocator.js';
import { SPA_MINDEVSIZE, vdevGeometry } from './vdev/geometry.js';
import { buildLabel, labelOffsets, uberblockSlotSize } from './vdev/label.js';
import { labelConfig } from './vdev/config.js';
import { packNvlist } from './vdev/nvlist.js';
import { encodeUberblock } from './vdev/uberblock.js';
import { ZioWriter } from './zio/writer.js';
import { ZplWriter } from './zpl/dataset.js';
import { DatasetInput, writeMos } from './dsl/pool.js';
import { allDatasets, DatasetPlan, parseDatasets, planDatasets, splitTree } from './dsl/datasets.js';
import { propsToZap } from './dsl/props.js';
import { SeedSource } from './util/seed.js';
import { UserError } from './util/errors.js';

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
  datasets: { name: string; mountpoint: string; objects: number; files: number; directories: number; dataBytes: number; used: number }[];
}

/** What a streaming input (tar) gets: a way to write file data as it arrives. */
export interface InputContext {
  /** Start a regular file of `size` bytes; feed it with write(), then end() gives its DataSource. */
  beginFile(size: number): { write(chunk: Uint8Array): void; end(): DataSource };
  /** Forget data written earlier (a later member with the same path replaced it). */
  discard(src: DataSource): void;
}

/** A finished tree, or a reader that builds one while streaming data into the image. */
export type TreeSource = Inode | ((ctx: InputContext) => Promise<Inode>);

export async function makeImage(source: TreeSource, opts: ImageOptions): Promise<ImageSummary> {
  const geo = vdevGeometry(opts.size, opts.ashift, opts.msSize);
  if (geo.psize < SPA_MINDEVSIZE) throw new UserError(`image size ${fmtSize(opts.size)} is below the minimum of 64 MiB (-s)`);
  if (geo.msCount < 1) throw new UserError(`metaslab size ${fmtSize(2 ** geo.msShift)} is larger than the image`);
  const seed = new SeedSource(opts.seed);
  const poolGuid = opts.poolGuid ?? seed.derive('pool-guid');
  const vdevGuid = seed.derive('vdev-guid');

  const image = new ImageFile(opts.image, opts.size);
  try {
    const alloc = new SpaceAllocator(geo.msCount, geo.msShift, geo.ashift, opts.size);
    const zio = new ZioWriter(image, alloc, DATA_TXG);
    let root: Inode;
    if (typeof source === 'function') {
      const ctx: InputContext = {
        beginFile(size) {
          const w = new FileDataWriter(zio, size);
          return { write: (c) => w.write(c), end: () => ({ kind: 'written', data: w.end() }) };
        },
        discard(src) {
          if (src.kind === 'written') alloc.freeRange(src.data.extent.start, src.data.extent.end);
        },
      };
      root = await source(ctx);
    } else {
      root = source;
    }
    sortTree(root);

    // datasets: declarations, mountpoints, and each one's part of the tree
    const decls = parseDatasets(opts.poolName, opts.rootPath, opts.datasets);
    const plan = planDatasets(opts.poolName, opts.rootPath, decls);
    splitTree(plan, root, opts.rootPath);
    if (opts.bootfs !== undefined) {
      const b = allDatasets(plan).find((d) => d.name === opts.bootfs);
      if (!b || !b.populated) throw new UserError(`no mounted dataset matches bootfs property '${opts.bootfs}'`);
    }
    const summaries: ImageSummary['datasets'] = [];
    const writeDataset = (d: DatasetPlan): DatasetInput => {
      const rs = d.props.get('recordsize');
      const zpl = new ZplWriter(zio, seed, d.name, d.root ?? newDir(0o755), rs?.kind === 'u64' ? Number(rs.value) : undefined).write();
      summaries.push({ name: d.name, mountpoint: d.mountpoint, objects: zpl.objects, files: zpl.files, directories: zpl.dirs, dataBytes: zpl.dataBytes, used: zpl.acct.asize });
      const props = new Map(d.props);
      if (d === plan) {
        // no compression feature in this pool: say so rather than inherit the default
        if (!props.has('compression')) props.set('compression', { kind: 'u64', value: 2n });
        if (!props.has('mountpoint') && opts.rootPath !== `/${opts.poolName}`) props.set('mountpoint', { kind: 'string', value: opts.rootPath });
      }
      const num = (k: string) => { const v = d.props.get(k); return v?.kind === 'u64' ? Number(v.value) : undefined; };
      return {
        name: d.name, bp: zpl.bp, acct: zpl.acct, props: propsToZap(props),
        quota: num('quota'), reservation: num('reservation'), refreservation: num('refreservation'),
        children: d.children.map(writeDataset),
      };
    };
    const rootInput = writeDataset(plan);
    const ubTxg = opts.verifyTxgs ? DATA_TXG : DATA_TXG + TXG_SIZE;
    const cfg = {
      poolName: opts.poolName, poolGuid, vdevGuid, txg: DATA_TXG, createTxg: DATA_TXG,
      ashift: geo.ashift, asize: geo.asize, msShift: geo.msShift, vdevPath: opts.vdevPath,
    };
    const mos = writeMos(zio, alloc, seed, { config: cfg, root: rootInput, poolProps: [], bootfs: opts.bootfs });

    const ub = encodeUberblock({ txg: ubTxg, guidSum: poolGuid + vdevGuid, timestamp: 0, rootbp: mos.rootbp });
    const slot = new Uint8Array(uberblockSlotSize(geo.ashift));
    slot.set(ub);
    const labelCfg = packNvlist(labelConfig({ ...cfg, msArray: mos.msArray }));
    for (const off of labelOffsets(geo.psize)) image.write(off, buildLabel(off, labelCfg, slot, geo.ashift));
    image.commit();

    return {
      image: opts.image,
      poolName: opts.poolName,
      poolGuid: poolGuid.toString(),
      imageSize: opts.size,
      vdevAsize: geo.asize,
      metaslabs: geo.msCount,
      metaslabSize: 2 ** geo.msShift,
      allocated: alloc.allocated,
      datasets: summaries,
    };
  } catch (e) {
    image.abort();
    throw e;
  }
}
