// One ZPL object set, written in a single pass: a planning walk numbers
// every inode (pre-order, sorted names) and decides the SA layouts, then the
// objects are written in object-number order, so each dnode block is
// complete, and flushed, as soon as its last object is written. File data is
// streamed one record at a time from its source.
import * as fs from 'node:fs';
import { Inode, NodeType, Timespec } from '../input/tree.js';
import { type ZapEntry } from '../zap/index.js';
import { writeZapObject, writeZapSource } from '../dmu/zapobject.js';
import { dirZapSource, zapSalt } from './dirzaps.js';
import { Dnode, newDnode, DN_MAX_BONUSLEN, DN_MAX_BONUSLEN_SPILL } from '../dmu/dnode.js';
import { FileData, FileDataWriter, RECORDSIZE } from './filedata.js';
import { fullMetaLevels, ObjsetWriter } from '../dmu/objset.js';
import {
  DMU_OST_ZFS, DMU_OT_DIRECTORY_CONTENTS, DMU_OT_MASTER_NODE, DMU_OT_PLAIN_FILE_CONTENTS, DMU_OT_SA,
  DMU_OT_SA_ATTR_LAYOUTS, DMU_OT_SA_ATTR_REGISTRATION, DMU_OT_SA_MASTER_NODE, DMU_OT_UNLINKED_SET,
} from '../dmu/types.js';
import { BlkPtr, COMP_OFF } from '../zio/blkptr.js';
import { SpaceAccount, ZioWriter } from '../zio/writer.js';
import { SeedSource } from '../util/seed.js';
import { u64le } from '../util/endian.js';
import { UserError, fsUserError } from '../util/errors.js';
import { showPath } from '../input/walk.js';
import { packNvlist, nvBytes } from '../vdev/nvlist.js';
import { aclForMode, ZFS_ARCHIVE, ZFS_AV_MODIFIED, type ZnodeAcl } from './acl.js';
import {
  attrLength, encodeSa, encodeZnodeSa, LAYOUT_DEVICE, LAYOUT_SYMLINK, LAYOUT_ZNODE, ZPL_DXATTR, znodeSaSize, registryValue, SA_REGISTRY, saSize, SaLayouts,
  ZPL_ATIME, ZPL_CRTIME, ZPL_CTIME, ZPL_DACL_ACES, ZPL_DACL_COUNT, ZPL_FLAGS, ZPL_GEN, ZPL_GID, ZPL_LINKS,
  ZPL_MODE, ZPL_MTIME, ZPL_PARENT, ZPL_RDEV, ZPL_SIZE, ZPL_SYMLINK, ZPL_UID, type ZnodeFields,
} from './sa.js';

export const ZPL_VERSION = 5;
const MASTER_NODE_OBJ = 1;
const SA_MASTER_OBJ = 2;
const DELETE_QUEUE_OBJ = 3;
const ROOT_OBJ = 4;
const SA_REGISTRY_OBJ = 5;
const SA_LAYOUTS_OBJ = 6;
const FIRST_TREE_OBJ = 7;

const S_IFMT: Record<NodeType, number> = {
  fifo: 0o010000, chardev: 0o020000, dir: 0o040000, blockdev: 0o060000,
  file: 0o100000, symlink: 0o120000, socket: 0o140000,
};
const enc = new TextEncoder();

export interface ZplResult {
  bp: BlkPtr;
  acct: SpaceAccount;
  objects: number;
  files: number;
  dirs: number;
  dataBytes: number;
}

/** Linux's dev_t as OpenZFS on Linux stores it in ZPL_RDEV (major << 20 | minor). */
export function encodeRdev(major: number, minor: number): bigint {
  return (BigInt(major) << 20n) | BigInt(minor & 0xfffff);
}

function u64(v: number | bigint): Uint8Array {
  const b = new Uint8Array(8);
  u64le(b, 0, v);
  return b;
}

function sameLayout(attrs: readonly number[], want: readonly number[]): boolean {
  return attrs.length === want.length && attrs.every((a, i) => a === want[i]);
}

/** How an SA layout is encoded: in place (encodeZnodeSa) as a plain znode or a symlink, or by encodeSa. */
const enum SaPath { Generic, Znode, Symlink }

/** A layout as the writer keeps it, once per distinct one (layoutFor). */
interface Layout {
  bonus: number[];
  spill?: number[];
  path: SaPath;
}

function time(t: Timespec): Uint8Array {
  const b = new Uint8Array(16);
  u64le(b, 0, BigInt.asUintN(64, BigInt(t.sec)));
  u64le(b, 8, t.nsec);
  return b;
}

// A znode's pflags by (memoized) ACL, as a number: the bits are all below
// 2^53, and BigInt operations for every inode were a visible cost.
const flagsMemo = new WeakMap<ZnodeAcl, number>();
function znodeFlags(acl: ZnodeAcl): number {
  let f = flagsMemo.get(acl);
  if (f === undefined) {
    const b = acl.pflags | ZFS_ARCHIVE | ZFS_AV_MODIFIED;
    if (b > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('znode flags beyond 2^53');
    f = Number(b);
    flagsMemo.set(acl, f);
  }
  return f;
}

/**
 * Directory entries under `root`, every name of a hard-linked inode
 * counted. (A tree gets here sorted, so with each directory once: sortTree
 * refuses any other.)
 */
function countEntries(root: Inode): number {
  let n = 0;
  const stack: Inode[] = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    n += dir.entries!.length;
    for (const e of dir.entries!) if (e.inode.type === 'dir') stack.push(e.inode);
  }
  return n;
}

export class ZplWriter {
  // Each inode's object number lives on the inode (Inode.objid, as makefs
  // keeps its inode numbers): a Map from inode to number cost ~47 bytes per
  // entry at the build's peak and a hash lookup per use. Their parents and
  // link counts are kept here; the inodes in object-number order are found
  // by walking the tree again (eachObject), not kept in an array: the array
  // for /usr's 139k entries was 1.1 MB, and growing it by push left 2.2 MB more
  // in V8's large-object space, which only a full collection frees, through
  // the objects pass, where the build's peak is.
  private parents = new Int32Array(1024);
  private links = new Int32Array(1024);
  private layouts = new SaLayouts();
  private nextObj = FIRST_TREE_OBJ;
  private os: ObjsetWriter;
  private files = 0;
  private dirs = 0;
  private dataBytes = 0;
  private readBuf = Buffer.allocUnsafe(RECORDSIZE);
  /**
   * Where plain znodes' SAs are encoded: each dnode is stored (its bonus
   * copied into the dnode block) before the next bonus is made. Slices of
   * node's Buffer pool were ~30 MB of off-heap garbage on /usr, which
   * collections of the (small) young generation free too late to keep
   * out of the peak RSS.
   */
  private readonly bonusScratch = new Uint8Array(DN_MAX_BONUSLEN);
  /** Views of bonusScratch by length, made once each (a view per inode was garbage). */
  private readonly bonusViews: (Uint8Array | undefined)[] = [];
  /** Where the fields of the znode being encoded are put together (one object, not one per inode). */
  private readonly fields: ZnodeFields & { times: Timespec[] } = {
    mode: 0, size: 0, gen: 0, uid: 0, gid: 0, parent: 0, flags: 0, times: [], links: 0, aclCount: 0, aces: new Uint8Array(0),
  };
  /** Data written before this writer ran (tar input), charged to this dataset too. */
  private prewritten = new SpaceAccount();
  private xattrCache = new Map<Inode, Uint8Array>();
  /** Store xattrs (xattr=sa); off drops them. */
  xattrs = true;

  constructor(private readonly zio: ZioWriter, private readonly seed: SeedSource, private readonly name: string, private readonly root: Inode, private readonly recordsize = RECORDSIZE, private readonly comp = COMP_OFF) {
    this.os = new ObjsetWriter(zio, fullMetaLevels());
  }

  private setPlan(ino: Inode, objid: number, parent: number, links: number): void {
    ino.objid = objid;
    if (objid >= this.parents.length) {
      const grow = (a: Int32Array) => { const b = new Int32Array(Math.max(2 * a.length, objid + 1)); b.set(a); return b; };
      this.parents = grow(this.parents);
      this.links = grow(this.links);
    }
    this.parents[objid] = parent;
    this.links[objid] = links;
  }

  /** Number every inode and count links, in the order objects will be written. */
  private planTree(): void {
    // sized once for every entry (a hard link's other names counted too, a
    // few words): grown by doubling, the two arrays were ~1 MB larger than
    // needed at /usr's peak
    const upTo = FIRST_TREE_OBJ + countEntries(this.root);
    this.parents = new Int32Array(upTo);
    this.links = new Int32Array(upTo);
    this.setPlan(this.root, ROOT_OBJ, ROOT_OBJ, 2);
    this.layouts.number(LAYOUT_ZNODE);
    // pre-order over directories; a directory's entries get consecutive numbers
    const stack: Inode[] = [this.root];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      const dobj = dir.objid!;
      const subdirs: Inode[] = [];
      for (const e of dir.entries!) {
        const ino = e.inode;
        const known = ino.objid;
        if (known) {
          if (ino.type === 'dir') throw new UserError(`directory linked twice: ${Buffer.from(e.name).toString()}`);
          this.links[known]!++;
          continue;
        }
        this.setPlan(ino, this.nextObj++, dobj, ino.type === 'dir' ? 2 : 1);
        if (ino.type === 'dir') {
          this.links[dobj]!++;
          subdirs.push(ino);
        }
        const lay = this.layoutFor(ino);
        this.layouts.number(lay.bonus);
        if (lay.spill) this.layouts.number(lay.spill);
      }
      for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
    }
  }

  /**
   * The tree's objects in object-number order, from FIRST_TREE_OBJ: planTree's
   * walk again. An entry whose inode does not have the next number is another
   * name of one numbered before (or, after a failed planTree, one never
   * numbered, as is everything after it). Returns the number after the
   * last object met.
   */
  private eachObject(f: (ino: Inode, objid: number) => void): number {
    let next = FIRST_TREE_OBJ;
    const stack: Inode[] = [this.root];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      const subdirs: Inode[] = [];
      for (const e of dir.entries!) {
        const ino = e.inode;
        if (ino.objid !== next) continue;
        f(ino, next++);
        if (ino.type === 'dir') subdirs.push(ino);
      }
      for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
    }
    return next;
  }

  /** The attributes of an inode's SA, in OpenZFS's order, with the size of each. */
  private saAttrs(ino: Inode): { attrs: number[]; sizes: Map<number, number> } {
    const attrs = [...(ino.type === 'chardev' || ino.type === 'blockdev' ? LAYOUT_DEVICE : LAYOUT_ZNODE)];
    const sizes = new Map<number, number>();
    for (const a of attrs) sizes.set(a, attrLength(a));
    sizes.set(ZPL_DACL_ACES, aclForMode(ino.perm, ino.type === 'dir' ? 'dir' : 'other').aces.length);
    // zfs_symlink and the xattr code add these after creation, so they come last
    if (ino.type === 'symlink') { attrs.push(ZPL_SYMLINK); sizes.set(ZPL_SYMLINK, ino.target!.length); }
    const xa = this.xattrBlob(ino);
    if (xa) { attrs.push(ZPL_DXATTR); sizes.set(ZPL_DXATTR, xa.length); }
    return { attrs, sizes };
  }

  /** ZPL_DXATTR: the xattrs as an XDR nvlist of byte arrays, in name order. */
  private xattrBlob(ino: Inode): Uint8Array | undefined {
    if (!this.xattrs || !ino.xattrs || ino.xattrs.size === 0) return undefined;
    let blob = this.xattrCache.get(ino);
    if (!blob) {
      const names = [...ino.xattrs.keys()].sort();
      blob = packNvlist(names.map((n) => [n, nvBytes(ino.xattrs!.get(n)!)]));
      if (blob.length > 65535) throw new UserError(`extended attributes of one file exceed 64 KiB (${names.join(', ')})`);
      this.xattrCache.set(ino, blob);
    }
    return blob;
  }

  /**
   * Split like sa_build_layouts(): everything in the bonus if it fits in
   * 320 bytes; otherwise the bonus keeps the leading attributes that end
   * within 192 bytes (the spill pointer takes the rest of the dnode) and the
   * remaining ones go to a spill block under a layout of their own.
   */
  private layoutMemo = new Map<number | string, Layout>();
  private layoutFor(ino: Inode): Layout {
    // a layout depends only on the attributes' sizes: the layout kind, the
    // ACL's, and the symlink target's and xattrs' where there are any (each
    // symlink worked out afresh was ~4 KB of small Maps and arrays)
    const key0 = (ino.type === 'chardev' || ino.type === 'blockdev' ? 1 : 0) + 2 * aclForMode(ino.perm, ino.type === 'dir' ? 'dir' : 'other').aces.length;
    const xa = this.xattrBlob(ino);
    const key = ino.type !== 'symlink' && !xa ? key0 : `${key0}:${ino.type === 'symlink' ? ino.target!.length : -1}:${xa ? xa.length : -1}`;
    let hit = this.layoutMemo.get(key);
    if (!hit) { hit = this.layoutForUncached(ino); this.layoutMemo.set(key, hit); }
    return hit;
  }
  private layoutForUncached(ino: Inode): Layout {
    const { attrs, sizes } = this.saAttrs(ino);
    const fake = new Map([...sizes].map(([k, n]) => [k, new Uint8Array(n)]));
    if (saSize(attrs, fake) <= 320) {
      return { bonus: attrs, path: sameLayout(attrs, LAYOUT_ZNODE) ? SaPath.Znode : sameLayout(attrs, LAYOUT_SYMLINK) ? SaPath.Symlink : SaPath.Generic };
    }
    let cut = 1;
    while (cut < attrs.length && saSize(attrs.slice(0, cut + 1), fake) <= DN_MAX_BONUSLEN_SPILL) cut++;
    return { bonus: attrs.slice(0, cut), spill: attrs.slice(cut), path: SaPath.Generic };
  }

  write(): ZplResult {
    try {
      return this.writeObjects();
    } finally {
      // the numbers belong to this writer: a tree written again (or in
      // another dataset) starts unnumbered
      this.root.objid = 0;
      this.eachObject((ino) => { ino.objid = 0; });
    }
  }

  private writeObjects(): ZplResult {
    this.planTree();
    const zio = this.zio;
    zio.charge = new SpaceAccount();
    const salt = (obj: number) => zapSalt(this.seed, this.name, obj);
    const zap = (obj: number, type: number, entries: ZapEntry[]): Dnode => writeZapObject(zio, type, entries, salt(obj));
    const u = (name: string, v: number | bigint): ZapEntry => ({ name: enc.encode(name), value: BigInt(v) });

    this.os.put(MASTER_NODE_OBJ, zap(MASTER_NODE_OBJ, DMU_OT_MASTER_NODE, [
      u('normalization', 0), u('utf8only', 0), u('casesensitivity', 0), u('VERSION', ZPL_VERSION),
      u('SA_ATTRS', SA_MASTER_OBJ), u('DELETE_QUEUE', DELETE_QUEUE_OBJ), u('ROOT', ROOT_OBJ),
    ]));
    this.os.put(SA_MASTER_OBJ, zap(SA_MASTER_OBJ, DMU_OT_SA_MASTER_NODE, [
      u('REGISTRY', SA_REGISTRY_OBJ), u('LAYOUTS', SA_LAYOUTS_OBJ),
    ]));
    this.os.put(DELETE_QUEUE_OBJ, zap(DELETE_QUEUE_OBJ, DMU_OT_UNLINKED_SET, []));
    // the root directory comes before the registry and layouts in object order
    const rootDn = this.directory(this.root);
    this.os.put(ROOT_OBJ, rootDn);
    this.os.put(SA_REGISTRY_OBJ, zap(SA_REGISTRY_OBJ, DMU_OT_SA_ATTR_REGISTRATION,
      SA_REGISTRY.map(([name], i) => u(name, registryValue(i)))));
    this.os.put(SA_LAYOUTS_OBJ, zap(SA_LAYOUTS_OBJ, DMU_OT_SA_ATTR_LAYOUTS,
      this.layouts.list.map((attrs, i) => ({ name: enc.encode(String(i + 2)), value: { intLen: 2, ints: attrs } }))));

    // every other object, in object-number order (the planning order)
    const end = this.eachObject((ino, objid) => {
      const dn = ino.type === 'dir' ? this.directory(ino) : ino.type === 'file' ? this.file(ino) : this.special(ino);
      this.os.put(objid, dn);
    });
    // (an object missed would be a hole in the object set, not an error)
    if (end !== this.nextObj) throw new Error(`objects written up to ${end}, numbered up to ${this.nextObj}`);
    const acct = zio.charge;
    const bp = this.os.finish(DMU_OST_ZFS);
    acct.add(this.prewritten);
    return {
      bp, acct, objects: this.os.objects, files: this.files, dirs: this.dirs, dataBytes: this.dataBytes,
    };
  }

  /**
   * The attributes every znode has, for an inode of this size: this.fields,
   * filled again (each caller is done with them before the next call).
   */
  private znodeFields(ino: Inode, size: number | bigint): ZnodeFields {
    const objid = ino.objid!;
    const acl = aclForMode(ino.perm, ino.type === 'dir' ? 'dir' : 'other');
    const f = this.fields;
    f.mode = S_IFMT[ino.type] | (ino.perm & 0o7777);
    f.size = size;
    f.gen = this.zio.txg;
    f.uid = ino.uid;
    f.gid = ino.gid;
    f.parent = this.parents[objid]!;
    f.flags = znodeFlags(acl);
    f.times[0] = ino.atime; f.times[1] = ino.mtime; f.times[2] = ino.ctime; f.times[3] = ino.crtime;
    f.links = this.links[objid]!;
    f.aclCount = acl.count;
    f.aces = acl.aces;
    return f;
  }

  /** znodeFields as SA values by attribute, for the layouts encodeZnodeSa does not cover. */
  private saValues(ino: Inode, size: number | bigint): Map<number, Uint8Array> {
    const f = this.znodeFields(ino, size);
    return new Map<number, Uint8Array>([
      [ZPL_MODE, u64(f.mode)],
      [ZPL_SIZE, u64(f.size)],
      [ZPL_GEN, u64(f.gen)],
      [ZPL_UID, u64(f.uid)],
      [ZPL_GID, u64(f.gid)],
      [ZPL_PARENT, u64(f.parent)],
      [ZPL_FLAGS, u64(f.flags)],
      [ZPL_ATIME, time(f.times[0]!)],
      [ZPL_MTIME, time(f.times[1]!)],
      [ZPL_CTIME, time(f.times[2]!)],
      [ZPL_CRTIME, time(f.times[3]!)],
      [ZPL_LINKS, u64(f.links)],
      [ZPL_DACL_COUNT, u64(f.aclCount)],
      [ZPL_DACL_ACES, f.aces],
    ]);
  }

  private bonus(ino: Inode, size: number | bigint, extra?: [number, Uint8Array]): { bonus: Uint8Array; spill?: Uint8Array } {
    // the plain znode and the symlink (no device number or xattrs: the
    // layout says) are written in place, without a Map of small arrays
    const lay = this.layoutFor(ino);
    const target = lay.path === SaPath.Symlink && extra?.[0] === ZPL_SYMLINK ? extra[1] : undefined;
    if ((lay.path === SaPath.Znode && extra === undefined) || target !== undefined) {
      const f = this.znodeFields(ino, size);
      return { bonus: encodeZnodeSa(this.layouts.number(lay.bonus), f, this.bonusView(znodeSaSize(f.aces.length, target?.length)), target) };
    }
    const values = this.saValues(ino, size);
    if (extra) values.set(extra[0], extra[1]);
    const xa = this.xattrBlob(ino);
    if (xa) values.set(ZPL_DXATTR, xa);
    const num = this.layouts.number(lay.bonus);
    if (!lay.spill) return { bonus: encodeSa(num, lay.bonus, values) };
    // OpenZFS keeps the bonus at its spill-era maximum (192 bytes) when a spill exists
    const bonus = encodeSa(num, lay.bonus, values, DN_MAX_BONUSLEN_SPILL);
    const snum = this.layouts.number(lay.spill);
    const spillSize = Math.ceil(saSize(lay.spill, values) / 512) * 512;
    return { bonus, spill: encodeSa(snum, lay.spill, values, spillSize) };
  }

  /** bonusScratch's first `len` bytes. */
  private bonusView(len: number): Uint8Array {
    return (this.bonusViews[len] ??= this.bonusScratch.subarray(0, len));
  }

  private directory(ino: Inode): Dnode {
    this.dirs++;
    const { bonus, spill } = this.bonus(ino, 2 + ino.entries!.length);
    const opts = { bonustype: DMU_OT_SA, bonus, nblkptr: 1 };
    const dn = writeZapSource(this.zio, DMU_OT_DIRECTORY_CONTENTS, dirZapSource(ino, zapSalt(this.seed, this.name, ino.objid!)), opts);
    return this.withSpill(dn, spill);
  }

  /** Write the SA spill block (if any) and account for it in the dnode's used bytes. */
  private withSpill(dn: Dnode, spill: Uint8Array | undefined): Dnode {
    if (!spill) return dn;
    const acct = new SpaceAccount();
    // stored plainly: a spill is never embedded, and uncompressed it is valid for every reader
    dn.spill = this.zio.writeBlock(spill, DMU_OT_SA, 0, 1, acct, COMP_OFF);
    dn.used += acct.asize;
    return dn;
  }

  private special(ino: Inode): Dnode {
    let extra: [number, Uint8Array] | undefined;
    let size = 0;
    if (ino.type === 'symlink') {
      extra = [ZPL_SYMLINK, ino.target!];
      size = ino.target!.length;
    } else if (ino.type === 'chardev' || ino.type === 'blockdev') {
      extra = [ZPL_RDEV, u64(encodeRdev(ino.rdevMajor ?? 0, ino.rdevMinor ?? 0))];
    }
    const { bonus, spill } = this.bonus(ino, size, extra);
    return this.withSpill(newDnode(DMU_OT_PLAIN_FILE_CONTENTS, 512, DMU_OT_SA, bonus, 1), spill);
  }

  private file(ino: Inode): Dnode {
    this.files++;
    const { bonus, spill } = this.bonus(ino, ino.size);
    // (a walked file makes its source object on each read)
    const src = ino.source;
    const pre = src?.kind === 'written';
    const data = src?.kind === 'written' ? src.data : this.streamData(ino);
    if (data.size !== ino.size) throw new Error('file data does not match its size');
    this.dataBytes += ino.size;
    if (pre) {
      // (added field by field: an account object per file was garbage)
      const a = this.prewritten;
      a.asize += data.used; a.psize += data.psize; a.lsize += data.lsize;
    }
    const dn = newDnode(DMU_OT_PLAIN_FILE_CONTENTS, data.blksz, DMU_OT_SA, bonus, 1);
    if (data.ibs !== undefined) dn.indblkshift = data.ibs;
    dn.nlevels = data.nlevels;
    dn.maxblkid = data.maxblkid;
    dn.used = data.used;
    if (data.bp instanceof Uint8Array) dn.blkptrRaw = data.bp;
    else dn.blkptr = [data.bp];
    return this.withSpill(dn, spill);
  }

  /** Read a host file (or in-memory bytes) record by record into the image. */
  private streamData(ino: Inode): FileData {
    const w = new FileDataWriter(this.zio, ino.size, this.recordsize, this.comp);
    const src = ino.source;
    if (!src) throw new Error('regular file without a data source');
    if (src.kind === 'bytes') {
      w.write(src.data.subarray(0, ino.size));
      return w.end();
    }
    if (src.kind !== 'path') throw new Error(`unexpected data source ${src.kind}`);
    if (ino.size === 0) return w.end();
    let fd: number;
    try {
      fd = fs.openSync(src.path as fs.PathLike, "r");
    } catch (e) {
      throw fsUserError(showPath(src.path), e);
    }
    try {
      const blksz = w.blksz;
      const buf = blksz === RECORDSIZE && this.readBuf.length === RECORDSIZE ? this.readBuf : Buffer.allocUnsafe(blksz);
      let pos = 0;
      while (pos < ino.size) {
        const want = Math.min(blksz, ino.size - pos);
        let got = 0;
        while (got < want) {
          const n = fs.readSync(fd, buf, got, want - got, pos + got);
          if (n === 0) throw new UserError(`${showPath(src.path)}: file shrank while being read (expected ${ino.size} bytes)`);
          got += n;
        }
        if (got < blksz) buf.fill(0, got, blksz);
        pos += got;
        w.writeBlock(buf.subarray(0, blksz), got);
      }
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw fsUserError(showPath(src.path), e);
    } finally {
      fs.closeSync(fd);
    }
    return w.end();
  }
}
