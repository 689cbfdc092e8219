// The mounted view of a pool: each dataset's effective mountpoint (its own
// `mountpoint` property, else its parent's plus its name, as ZFS inherits
// it), and a namespace that walks from one dataset into those mounted below
// it, as the file systems would look once mounted. This is the view the
// writer's split of the staged tree (src/dsl/datasets.ts) must reproduce.
import { createHash } from 'node:crypto';
import { compareNames } from '../input/tree.js';
import { UserError } from '../util/errors.js';
import type { TreeView } from './compare.js';
import { DatasetInfo, listDatasets } from './dsl.js';
import { inContext, ReadError } from './errors.js';
import { ObjsetReader } from './objset.js';
import type { PoolReader } from './pool.js';
import { DIRENT_TYPE, ZplReader } from './zpl.js';
import { splitPath } from '../input/tree.js';

export interface MountInfo {
  dataset: DatasetInfo;
  /** Effective mountpoint: an absolute path, 'none' or 'legacy'. */
  mountpoint: string;
  canmount: 'on' | 'off' | 'noauto';
  /** Holds a part of the tree: canmount is not off and the mountpoint is a path. */
  populated: boolean;
}

/** Local properties of a DSL directory: uint64s as bigint, strings (NUL-terminated byte arrays) as string. */
export function datasetProps(pool: PoolReader, d: DatasetInfo): Map<string, bigint | string> {
  const out = new Map<string, bigint | string>();
  if (d.dir.propsZapobj === 0) return out;
  const z = inContext(`${d.name}: properties`, () => pool.mos.zap(d.dir.propsZapobj));
  for (const e of z.entries) {
    const name = Buffer.from(e.name).toString();
    const v = e.value;
    if (v.intLen === 8 && v.ints.length === 1) out.set(name, v.ints[0]!);
    else if (v.intLen === 1) {
      const bytes = Uint8Array.from(v.ints.map(Number));
      const end = bytes.indexOf(0);
      out.set(name, Buffer.from(end >= 0 ? bytes.subarray(0, end) : bytes).toString());
    }
  }
  return out;
}

/** Every file system dataset (no snapshots, nothing special) with its mountpoint. */
export function mountTable(pool: PoolReader): MountInfo[] {
  const byName = new Map<string, MountInfo>();
  const out: MountInfo[] = [];
  for (const d of listDatasets(pool)) {
    if (d.snapshot) continue;
    const props = datasetProps(pool, d);
    const parent = byName.get(d.name.slice(0, d.name.lastIndexOf('/')));
    const own = props.get('mountpoint');
    let mountpoint: string;
    if (typeof own === 'string') mountpoint = own;
    else if (!parent) mountpoint = `/${pool.poolName}`;
    else if (!parent.mountpoint.startsWith('/')) mountpoint = parent.mountpoint;
    else mountpoint = `${parent.mountpoint === '/' ? '' : parent.mountpoint}/${d.name.slice(d.name.lastIndexOf('/') + 1)}`;
    const cm = props.get('canmount');
    const canmount = cm === 0n ? 'off' : cm === 2n ? 'noauto' : 'on';
    const m: MountInfo = { dataset: d, mountpoint, canmount, populated: canmount !== 'off' && mountpoint.startsWith('/') };
    byName.set(d.name, m);
    out.push(m);
  }
  return out;
}

/** A node of the namespace: an object of one dataset's file system, and its path from the top. */
export interface NsNode {
  zpl: ZplReader;
  obj: number;
  /** Path from the namespace's top ("/", "/usr/bin"), for mount lookups and messages. */
  path: string;
}

const MAX_SYMLINK_HOPS = 40;

export class Namespace {
  readonly top: MountInfo;
  /** Datasets mounted below the top, by path relative to it. */
  readonly mounts = new Map<string, MountInfo>();
  private readonly fsCache = new Map<string, ZplReader>();

  /** `dataset`: the top (default: the populated dataset with the shortest mountpoint, else the root dataset). */
  constructor(readonly pool: PoolReader, dataset?: string) {
    const table = mountTable(pool);
    let top: MountInfo | undefined;
    if (dataset !== undefined && dataset.includes('@')) {
      // a snapshot: its own tree only
      const snap = listDatasets(pool).find((d) => d.name === dataset);
      if (snap) top = { dataset: snap, mountpoint: 'none', canmount: 'off', populated: false };
    }
    if (top) {
      // the snapshot found above
    } else if (dataset !== undefined) {
      top = table.find((m) => m.dataset.name === dataset);
      if (!top) {
        throw new UserError(`no file system '${dataset}' in pool '${pool.poolName}' (file systems: ${table.map((m) => m.dataset.name).join(', ')})`);
      }
    } else {
      const populated = table.filter((m) => m.populated).sort((a, b) => depth(a.mountpoint) - depth(b.mountpoint));
      top = populated[0] ?? table[0];
      if (!top) throw new ReadError(`pool '${pool.poolName}' has no file system`);
    }
    this.top = top;
    if (top.mountpoint.startsWith('/')) {
      const base = top.mountpoint === '/' ? '' : top.mountpoint;
      for (const m of table) {
        if (m === top || !m.populated) continue;
        if (m.mountpoint.startsWith(`${base}/`)) this.mounts.set(m.mountpoint.slice(base.length), m);
      }
    }
  }

  /** The file system of a dataset (opened once). */
  fs(m: MountInfo): ZplReader {
    let z = this.fsCache.get(m.dataset.name);
    if (!z) {
      const bp = m.dataset.bp;
      if (!bp || bp.dva === null) throw new ReadError(`dataset '${m.dataset.name}' has no object set`);
      z = new ZplReader(new ObjsetReader(this.pool, bp, m.dataset.name));
      this.fsCache.set(m.dataset.name, z);
    }
    return z;
  }

  root(): NsNode {
    const zpl = this.fs(this.top);
    return { zpl, obj: zpl.root, path: '/' };
  }

  /** The node for directory entry (name, obj, dtype) of `dir`, crossing into a dataset mounted there. */
  child(dir: NsNode, name: Uint8Array, obj: number, dtype: number): NsNode {
    const path = `${dir.path === '/' ? '' : dir.path}/${Buffer.from(name).toString()}`;
    const m = dtype === DIRENT_TYPE.dir ? this.mounts.get(path) : undefined;
    if (m) {
      const zpl = this.fs(m);
      return { zpl, obj: zpl.root, path };
    }
    return { zpl: dir.zpl, obj, path };
  }

  children(dir: NsNode): Array<{ name: Uint8Array; node: NsNode }> {
    return dir.zpl.readdir(dir.obj).map((e) => ({ name: e.name, node: this.child(dir, e.name, e.objid, e.dtype) }));
  }

  /**
   * The node at `path` (from the top). Symbolic links are followed in the
   * middle of the path, and at its end with `follow`; absolute targets start
   * from the top.
   */
  resolve(path: string | Uint8Array, opts: { follow?: boolean } = {}): NsNode {
    const root = this.root();
    let stack: NsNode[] = [root];
    const comps = splitPath(Buffer.from(typeof path === 'string' ? Buffer.from(path) : path));
    let hops = 0;
    const shown = typeof path === 'string' ? path : Buffer.from(path).toString();
    while (comps.length > 0) {
      const c = comps.shift()!;
      if (c.equals(DOT)) continue;
      if (c.equals(DOTDOT)) {
        if (stack.length > 1) stack.pop();
        continue;
      }
      const cur = stack[stack.length - 1]!;
      if (cur.zpl.stat(cur.obj).type !== 'dir') throw new ReadError(`${shown}: not a directory`);
      const e = cur.zpl.readdir(cur.obj).find((x) => compareNames(x.name, c) === 0);
      if (!e) throw new ReadError(`${shown}: no such file or directory`);
      const next = this.child(cur, e.name, e.objid, e.dtype);
      if ((comps.length > 0 || opts.follow) && e.dtype !== DIRENT_TYPE.dir) {
        const z = next.zpl.stat(next.obj);
        if (z.type === 'symlink') {
          if (++hops > MAX_SYMLINK_HOPS) throw new ReadError(`${shown}: too many levels of symbolic links`);
          const target = Buffer.from(z.target!);
          if (target[0] === 0x2f) stack = [root];
          comps.unshift(...splitPath(target));
          continue;
        }
      }
      stack.push(next);
    }
    return stack[stack.length - 1]!;
  }

  /** The namespace as a TreeView (to compare with an expected tree). */
  treeView(): TreeView<NsNode> {
    return {
      root: () => this.root(),
      info: (n) => {
        const z = n.zpl.stat(n.obj);
        return {
          type: z.type, perm: z.perm, uid: z.uid, gid: z.gid, size: z.size, mtime: z.mtime,
          target: z.target, rdev: z.rdev, xattrs: z.xattrs,
        };
      },
      children: (n) => this.children(n),
      sha256: (n) => {
        const h = createHash('sha256');
        for (const chunk of n.zpl.read(n.obj)) h.update(chunk);
        return h.digest('hex');
      },
      identity: (n) => `${n.zpl.name}\0${n.obj}`,
    };
  }
}

function depth(mountpoint: string): number {
  return mountpoint.startsWith('/') ? mountpoint.split('/').filter(Boolean).length : Infinity;
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

