// The DSL as a reader sees it: the MOS object directory's root_dataset, DSL
// directories (child maps), their head datasets and snapshots, each dataset's
// block pointer to its object set.
import { decodeDslDataset, decodeDslDir, DslDatasetPhys, DslDirPhys, DSL_DATASET_PHYS_SIZE, DSL_DIR_PHYS_SIZE } from '../dsl/phys.js';
import { DMU_OT_DSL_DATASET, DMU_OT_DSL_DIR } from '../dmu/types.js';
import { compareNames } from '../input/tree.js';
import { UserError } from '../util/errors.js';
import { readBp, ReaderBp } from './bp.js';
import { inContext, ReadError } from './errors.js';
import type { ObjsetReader } from './objset.js';
import type { PoolReader } from './pool.js';

export const MOS_OBJECT_DIRECTORY = 1;

export interface DatasetInfo {
  /** Full name: pool, pool/child, pool/child@snap, pool/$MOS. */
  name: string;
  dirObj: number;
  /** MOS object of the dsl_dataset_phys_t (0 for a directory without a head dataset). */
  dsObj: number;
  snapshot: boolean;
  /** $MOS, $FREE, $ORIGIN and what lies below them. */
  special: boolean;
  dir: DslDirPhys;
  ds?: DslDatasetPhys;
  /** The dataset's object set (a hole for $ORIGIN's). */
  bp?: ReaderBp;
}

export function readDslDir(mos: ObjsetReader, obj: number): DslDirPhys {
  return inContext(`DSL directory (MOS object ${obj})`, () => {
    const dn = mos.dnode(obj);
    if (dn.type !== DMU_OT_DSL_DIR || dn.bonustype !== DMU_OT_DSL_DIR) throw new ReadError(`is type ${dn.type}/${dn.bonustype}, not a DSL directory`);
    if (dn.bonus.length < DSL_DIR_PHYS_SIZE) throw new ReadError(`bonus of ${dn.bonus.length} bytes is too short`);
    return decodeDslDir(dn.bonus);
  });
}

export function readDslDataset(mos: ObjsetReader, obj: number): { ds: DslDatasetPhys; bp: ReaderBp } {
  return inContext(`DSL dataset (MOS object ${obj})`, () => {
    const dn = mos.dnode(obj);
    if (dn.type !== DMU_OT_DSL_DATASET || dn.bonustype !== DMU_OT_DSL_DATASET) throw new ReadError(`is type ${dn.type}/${dn.bonustype}, not a DSL dataset`);
    if (dn.bonus.length < DSL_DATASET_PHYS_SIZE) throw new ReadError(`bonus of ${dn.bonus.length} bytes is too short`);
    return { ds: decodeDslDataset(dn.bonus), bp: readBp(dn.bonus, 128) };
  });
}

/**
 * Every dataset of the pool in `zfs list -t all` order (pre-order, names
 * sorted), snapshots after their head. Special directories ($MOS...) only
 * with `special`.
 */
export function listDatasets(pool: PoolReader, opts: { special?: boolean } = {}): DatasetInfo[] {
  const mos = pool.mos;
  const rootDir = inContext('MOS object directory', () => mos.zapLookup(MOS_OBJECT_DIRECTORY, 'root_dataset'));
  const out: DatasetInfo[] = [];
  const stack: Array<{ name: string; dirObj: number; special: boolean; depth: number }> = [
    { name: pool.poolName, dirObj: rootDir, special: false, depth: 0 },
  ];
  const seen = new Set<number>();
  while (stack.length > 0) {
    const { name, dirObj, special, depth } = stack.pop()!;
    if (seen.has(dirObj)) throw new ReadError(`DSL directory ${dirObj} (${name}) is reached twice`);
    if (depth > 100) throw new ReadError(`${name}: DSL tree deeper than 100 levels`);
    seen.add(dirObj);
    const dir = readDslDir(mos, dirObj);
    const info: DatasetInfo = { name, dirObj, dsObj: dir.headDatasetObj, snapshot: false, special, dir };
    const snaps: DatasetInfo[] = [];
    if (dir.headDatasetObj !== 0) {
      const { ds, bp } = readDslDataset(mos, dir.headDatasetObj);
      info.ds = ds;
      info.bp = bp;
      if (ds.snapnamesZapobj !== 0) {
        const z = inContext(`${name}: snapshot names`, () => mos.zap(ds.snapnamesZapobj));
        for (const e of [...z.entries].sort((a, b) => compareNames(a.name, b.name))) {
          const obj = Number(e.value.ints[0] ?? 0);
          const s = readDslDataset(mos, obj);
          snaps.push({ name: `${name}@${Buffer.from(e.name).toString()}`, dirObj, dsObj: obj, snapshot: true, special, dir, ds: s.ds, bp: s.bp });
        }
      }
    }
    if (!special || opts.special) out.push(info, ...snaps);
    if (dir.childDirZapobj !== 0) {
      const z = inContext(`${name}: child map`, () => mos.zap(dir.childDirZapobj));
      const kids = [...z.entries].sort((a, b) => compareNames(a.name, b.name));
      for (let i = kids.length - 1; i >= 0; i--) {
        const k = kids[i]!;
        const short = Buffer.from(k.name).toString();
        const sp = special || short.startsWith('$');
        if (sp && !opts.special) continue;
        stack.push({ name: `${name}/${short}`, dirObj: Number(k.value.ints[0] ?? 0), special: sp, depth: depth + 1 });
      }
    }
  }
  return out;
}

/** The dataset called `name` (the pool name alone is the root dataset). */
export function findDataset(pool: PoolReader, name: string): DatasetInfo {
  const all = listDatasets(pool, { special: name.includes('$') });
  const hit = all.find((d) => d.name === name);
  if (!hit) {
    throw new UserError(`no dataset '${name}' in pool '${pool.poolName}' (datasets: ${all.map((d) => d.name).join(', ')})`);
  }
  return hit;
}
