// The dataset tree: `-o fs=NAME[;prop=value...]` declarations (makefs
// syntax), ZFS-style mountpoint inheritance, and the split of the staged
// tree into one tree per populated dataset.
import { Dirent, Inode, newDir } from '../input/tree.js';
import { UserError } from '../util/errors.js';
import { parseProp, PropValue } from './props.js';

export interface DatasetDecl {
  /** Full name, e.g. "zroot/usr/src". */
  name: string;
  props: Map<string, PropValue>;
}

/**
 * FreeBSD's release layout (release/tools/vmimage.subr, bsdinstall's zfsboot),
 * for `-o preset=freebsd`: `-o fs=` options after it override or extend it.
 */
export function freebsdPreset(pool: string): { fs: string[]; bootfs: string; rootPath: string } {
  const p = pool;
  return {
    fs: [
      `${p};mountpoint=none`,
      `${p}/ROOT;mountpoint=none`,
      `${p}/ROOT/default;mountpoint=/;canmount=noauto`,
      `${p}/home;mountpoint=/home`,
      `${p}/tmp;mountpoint=/tmp;exec=on;setuid=off`,
      `${p}/usr;mountpoint=/usr;canmount=off`,
      `${p}/usr/ports;setuid=off`,
      `${p}/usr/src`,
      `${p}/usr/obj`,
      `${p}/var;mountpoint=/var;canmount=off`,
      `${p}/var/audit;setuid=off;exec=off`,
      `${p}/var/crash;setuid=off;exec=off`,
      `${p}/var/log;setuid=off;exec=off`,
      `${p}/var/mail;atime=on`,
      `${p}/var/tmp;setuid=off`,
    ],
    bootfs: `${p}/ROOT/default`,
    rootPath: '/',
  };
}

const DS_NAME_RE = /^[A-Za-z0-9_.:-]+$/;

/**
 * Parse the fs= specs in order. A spec naming a dataset declared earlier
 * (e.g. by a preset) overrides its properties one by one: `allowRedeclare`
 * is true for specs that follow a preset's.
 */
export function parseDatasets(pool: string, rootPath: string, specs: { spec: string; fromPreset: boolean }[]): DatasetDecl[] {
  const decls = new Map<string, DatasetDecl>([[pool, { name: pool, props: new Map() }]]);
  const explicit = new Set<string>();
  for (const { spec, fromPreset } of specs) {
    const [name, ...assigns] = spec.split(';');
    if (!name) throw new UserError(`-o fs: empty dataset name in '${spec}'`);
    if (name !== pool) {
      if (!name.startsWith(`${pool}/`)) throw new UserError(`dataset '${name}' must be a child of '${pool}'`);
      for (const c of name.slice(pool.length + 1).split('/')) {
        if (!DS_NAME_RE.test(c)) throw new UserError(`dataset '${name}': invalid name component '${c}'`);
      }
      if (name.length > 255) throw new UserError(`dataset '${name}': name longer than 255 bytes`);
      const parent = name.slice(0, name.lastIndexOf('/'));
      if (!decls.has(parent)) throw new UserError(`no parent at '${parent}' for filesystem '${name}'`);
    }
    // a preset's datasets may be restated (to override properties) once
    if (!fromPreset) {
      if (explicit.has(name)) throw new UserError(`dataset '${name}' is declared twice`);
      explicit.add(name);
    }
    let d = decls.get(name);
    if (!d) {
      d = { name, props: new Map() };
      decls.set(name, d);
    }
    const seen = new Set<string>();
    for (const a of assigns) {
      if (a === '') continue;
      const eq = a.indexOf('=');
      const key = eq < 0 ? a : a.slice(0, eq);
      if (eq < 0) throw new UserError(`dataset '${name}': missing value for property '${key}'`);
      if (seen.has(key)) throw new UserError(`dataset '${name}': property '${key}' already set`);
      seen.add(key);
      d.props.set(key, parseProp(name, key, a.slice(eq + 1), rootPath));
    }
  }
  return [...decls.values()];
}

export interface DatasetPlan extends DatasetDecl {
  /** Effective mountpoint: a path, 'none' or 'legacy' (inherited as ZFS does). */
  mountpoint: string;
  canmount: 'on' | 'off' | 'noauto';
  populated: boolean;
  /** The dataset's own tree (its root directory), for populated datasets. */
  root?: Inode;
  children: DatasetPlan[];
}

function canmountOf(d: DatasetDecl): 'on' | 'off' | 'noauto' {
  const v = d.props.get('canmount');
  if (!v || v.kind !== 'u64') return 'on';
  return v.value === 0n ? 'off' : v.value === 2n ? 'noauto' : 'on';
}

/** Mountpoints and the parent/child structure, parents before children. */
export function planDatasets(pool: string, rootPath: string, decls: DatasetDecl[]): DatasetPlan {
  const byName = new Map<string, DatasetPlan>();
  for (const d of decls) {
    const parentName = d.name.includes('/') ? d.name.slice(0, d.name.lastIndexOf('/')) : undefined;
    const parent = parentName ? byName.get(parentName)! : undefined;
    const own = d.props.get('mountpoint');
    let mountpoint: string;
    if (own && own.kind === 'string') mountpoint = own.value;
    else if (!parent) mountpoint = rootPath;
    else if (parent.mountpoint === 'none' || parent.mountpoint === 'legacy') mountpoint = parent.mountpoint;
    else mountpoint = `${parent.mountpoint === '/' ? '' : parent.mountpoint}/${d.name.slice(d.name.lastIndexOf('/') + 1)}`;
    const canmount = canmountOf(d);
    const plan: DatasetPlan = {
      ...d, mountpoint, canmount, populated: canmount !== 'off' && mountpoint.startsWith('/'), children: [],
    };
    byName.set(d.name, plan);
    parent?.children.push(plan);
  }
  return byName.get(pool)!;
}

export function allDatasets(root: DatasetPlan): DatasetPlan[] {
  const out: DatasetPlan[] = [];
  const visit = (d: DatasetPlan) => { out.push(d); d.children.forEach(visit); };
  visit(root);
  return out;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function emptyRoot(): Inode {
  return newDir(0o755);
}

/**
 * Hand each populated dataset its part of the staged tree: the dataset
 * mounted at rootpath gets the tree root, every other one the directory at
 * its mountpoint (which stays behind in the parent as an empty directory
 * with the same attributes). A dataset whose mountpoint directory is missing
 * gets an empty root.
 */
export function splitTree(root: DatasetPlan, tree: Inode, rootPath: string): void {
  const populated = allDatasets(root).filter((d) => d.populated);
  const byMount = new Map<string, DatasetPlan>();
  for (const d of populated) {
    const other = byMount.get(d.mountpoint);
    if (other) throw new UserError(`datasets '${other.name}' and '${d.name}' share the mountpoint '${d.mountpoint}'`);
    byMount.set(d.mountpoint, d);
  }
  const top = byMount.get(rootPath);
  if (!top) {
    throw new UserError(`no dataset is mounted at the root path '${rootPath}' to receive the staged tree (set a mountpoint or -o rootpath)`);
  }
  top.root = tree;
  const rel = (mp: string) => (rootPath === '/' ? mp : mp.slice(rootPath.length)).split('/').filter(Boolean);
  // shallow mountpoints first, so a deeper one is cut out of its mounted parent's tree
  const order = populated.filter((d) => d !== top).sort((a, b) => rel(a.mountpoint).length - rel(b.mountpoint).length || (a.mountpoint < b.mountpoint ? -1 : 1));
  for (const d of order) {
    const comps = rel(d.mountpoint);
    // the nearest populated dataset mounted above this one owns the directory
    let owner = top;
    let ownerDepth = 0;
    for (let i = comps.length - 1; i > 0; i--) {
      const mp = rootPath === '/' ? `/${comps.slice(0, i).join('/')}` : `${rootPath}/${comps.slice(0, i).join('/')}`;
      const o = byMount.get(mp);
      if (o && o.root) { owner = o; ownerDepth = i; break; }
    }
    let dir: Inode | undefined = owner.root!;
    for (let i = ownerDepth; i < comps.length - 1 && dir; i++) {
      const e: Dirent | undefined = dir.entries!.find((x) => dec.decode(x.name) === comps[i]);
      if (!e) { dir = undefined; break; }
      if (e.inode.type !== 'dir') throw new UserError(`mountpoint for '${d.name}' is not a directory: ${comps.slice(0, i + 1).join('/')}`);
      dir = e.inode;
    }
    const last = comps[comps.length - 1]!;
    const ent = dir?.entries!.find((x) => dec.decode(x.name) === last);
    if (!ent) {
      d.root = emptyRoot();
      continue;
    }
    if (ent.inode.type !== 'dir') throw new UserError(`mountpoint for '${d.name}' is not a directory: ${comps.join('/')}`);
    const staged = ent.inode;
    d.root = staged;
    // the parent keeps an empty directory with the staged attributes
    ent.inode = { ...staged, entries: [] };
  }
  checkCrossDatasetLinks(populated);
}

function checkCrossDatasetLinks(datasets: DatasetPlan[]): void {
  if (datasets.filter((d) => d.root).length <= 1) return; // one populated dataset: no link can cross
  const seen = new Map<Inode, { ds: string; path: string }>();
  for (const d of datasets) {
    if (!d.root) continue;
    const stack: [Inode, string][] = [[d.root, d.mountpoint === '/' ? '' : d.mountpoint]];
    while (stack.length) {
      const [dir, path] = stack.pop()!;
      for (const e of dir.entries!) {
        const p = `${path}/${dec.decode(e.name)}`;
        if (e.inode.type === 'dir') { stack.push([e.inode, p]); continue; }
        const prev = seen.get(e.inode);
        if (prev && prev.ds !== d.name) {
          throw new UserError(`hard link across datasets: '${prev.path}' (${prev.ds}) and '${p}' (${d.name})`);
        }
        if (!prev) seen.set(e.inode, { ds: d.name, path: p });
      }
    }
  }
}

export { enc as utf8 };
