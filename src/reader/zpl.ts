// A ZPL (file system) object set: the master node (ROOT, SA_ATTRS), the SA
// registry and layouts, znode attributes from the bonus buffer and spill
// block, directories (ZAP entries: type << 60 | object) and file contents.
import { DMU_OST_ZFS, DMU_OT_DIRECTORY_CONTENTS, DMU_OT_SA } from '../dmu/types.js';
import { compareNames, NodeType, Timespec } from '../input/tree.js';
import { rd16le, rd32le } from '../util/endian.js';
import { SA_MAGIC } from '../zpl/sa.js';
import { unpackNvlist } from '../vdev/nvlist.js';
import { isHoleBp } from './bp.js';
import { inContext, ReadError } from './errors.js';
import type { ObjsetReader, RDnode } from './objset.js';
import { splitPath } from '../input/tree.js';

export const ZPL_MASTER_NODE = 1;

const S_IFMT = 0o170000;
const TYPE_OF_MODE: Record<number, NodeType> = {
  0o010000: 'fifo', 0o020000: 'chardev', 0o040000: 'dir', 0o060000: 'blockdev',
  0o100000: 'file', 0o120000: 'symlink', 0o140000: 'socket',
};
/** Directory entry type (top 4 bits of the ZAP value) of each node type (DT_*). */
export const DIRENT_TYPE: Record<NodeType, number> = {
  fifo: 1, chardev: 2, dir: 4, blockdev: 6, file: 8, symlink: 10, socket: 12,
};
const MAX_SYMLINK_HOPS = 40;

export interface Znode {
  objid: number;
  type: NodeType;
  /** The whole st_mode (type and permission bits). */
  mode: number;
  /** mode & 0o7777 */
  perm: number;
  uid: number;
  gid: number;
  size: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  crtime: Timespec;
  gen: number;
  links: number;
  parent: number;
  flags: bigint;
  /** Device nodes: [major, minor] (Linux encoding, major << 20 | minor). */
  rdev?: [number, number];
  /** Symbolic links: the target. */
  target?: Uint8Array;
  /** Object number of the xattr directory, if any. */
  xattrDir?: number;
  /** Extended attributes stored as a system attribute (xattr=sa), by name. */
  xattrs?: Map<string, Uint8Array>;
  /** Every system attribute, by registry name (ZPL_MODE...). */
  attrs: Map<string, Uint8Array>;
  dnode: RDnode;
}

export interface DirEntry {
  name: Uint8Array;
  objid: number;
  /** DT_* type from the entry's top bits (0 if not recorded). */
  dtype: number;
}

interface SaAttr {
  name: string;
  /** 0: variable length. */
  len: number;
}

export class ZplReader {
  readonly root: number;
  readonly master: Map<string, bigint>;
  /** Objects that belong to the file system's machinery, not to its tree. */
  readonly systemObjects = new Set<number>([ZPL_MASTER_NODE]);
  private registry = new Map<number, SaAttr>();
  private layouts = new Map<number, number[]>();

  constructor(readonly os: ObjsetReader) {
    if (os.type !== DMU_OST_ZFS) throw new ReadError(`${os.name}: object set type ${os.type} is not a file system`);
    this.master = inContext(`${os.name}: master node`, () => os.zapNumbers(ZPL_MASTER_NODE));
    const need = (k: string): number => {
      const v = this.master.get(k);
      if (v === undefined) throw new ReadError(`${os.name}: master node has no ${k}`);
      return Number(v);
    };
    this.root = need('ROOT');
    const saObj = need('SA_ATTRS');
    for (const [k, v] of this.master) {
      if (k === k.toUpperCase() && k !== 'VERSION' && v > 0n && v < BigInt(os.objectLimit)) this.systemObjects.add(Number(v));
    }
    this.systemObjects.delete(this.root);
    inContext(`${os.name}: SA master node (object ${saObj})`, () => {
      const sa = os.zapNumbers(saObj);
      const reg = sa.get('REGISTRY');
      const lay = sa.get('LAYOUTS');
      if (reg === undefined || lay === undefined) throw new ReadError('no REGISTRY or LAYOUTS');
      this.systemObjects.add(Number(reg));
      this.systemObjects.add(Number(lay));
      for (const [name, v] of os.zapNumbers(Number(reg))) {
        this.registry.set(Number(v & 0xffffn), { name, len: Number((v >> 24n) & 0xffffn) });
      }
      for (const e of os.zap(Number(lay)).entries) {
        const n = Number(Buffer.from(e.name).toString());
        if (!Number.isInteger(n) || e.value.intLen !== 2) throw new ReadError(`bad layout entry "${Buffer.from(e.name).toString()}"`);
        this.layouts.set(n, e.value.ints.map(Number));
      }
    });
  }

  get name(): string {
    return this.os.name;
  }

  /** Decode one SA buffer (bonus or spill) into `out`, by attribute name. */
  private decodeSa(buf: Uint8Array, out: Map<string, Uint8Array>): void {
    if (buf.length < 8 || rd32le(buf, 0) !== SA_MAGIC) throw new ReadError('bad SA magic');
    const info = rd16le(buf, 4);
    const layoutNum = info & 0x3ff;
    const hdr = (info >> 10) * 8;
    const attrs = this.layouts.get(layoutNum);
    if (!attrs) throw new ReadError(`unknown SA layout ${layoutNum}`);
    let lenSlot = 6;
    let off = hdr;
    for (const a of attrs) {
      const reg = this.registry.get(a);
      if (!reg) throw new ReadError(`SA attribute ${a} is not registered`);
      let len = reg.len;
      if (len === 0) {
        if (lenSlot + 2 > hdr) throw new ReadError('SA header too short for its variable-length attributes');
        len = rd16le(buf, lenSlot);
        lenSlot += 2;
      }
      if (off + len > buf.length) throw new ReadError(`SA attribute ${reg.name} runs past the end of the buffer`);
      out.set(reg.name, buf.slice(off, off + len));
      off += (len + 7) & ~7;
    }
  }

  /** Attributes of an object (bonus, then spill). Throws ReadError. */
  stat(objid: number): Znode {
    return inContext(`object ${objid}`, () => {
      const dn = this.os.dnode(objid);
      if (dn.type === 0) throw new ReadError('is not allocated');
      if (dn.bonustype !== DMU_OT_SA) throw new ReadError(`bonus type ${dn.bonustype} is not SA (${DMU_OT_SA})`);
      const attrs = new Map<string, Uint8Array>();
      this.decodeSa(dn.bonus, attrs);
      if (dn.spill && !isHoleBp(dn.spill)) {
        const spill = inContext('spill block', () => this.os.pool.readBlock(dn.spill!));
        inContext('spill block', () => this.decodeSa(spill, attrs));
      }
      const u64 = (name: string, required = true): bigint | undefined => {
        const v = attrs.get(name);
        if (v === undefined) {
          if (required) throw new ReadError(`no ${name} attribute`);
          return undefined;
        }
        if (v.length !== 8) throw new ReadError(`${name} is ${v.length} bytes, not 8`);
        return readU64(v);
      };
      const n = (name: string): number => {
        const v = attrs.get(name);
        if (v === undefined) throw new ReadError(`no ${name} attribute`);
        if (v.length !== 8) throw new ReadError(`${name} is ${v.length} bytes, not 8`);
        const dv = new DataView(v.buffer, v.byteOffset, 8);
        return dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
      };
      const time = (name: string): Timespec => {
        const v = attrs.get(name);
        if (v === undefined || v.length !== 16) throw new ReadError(`${name} missing or not 16 bytes`);
        const dv = new DataView(v.buffer, v.byteOffset, 16);
        // seconds are signed (times before 1970)
        return { sec: dv.getUint32(0, true) + dv.getInt32(4, true) * 2 ** 32, nsec: dv.getUint32(8, true) };
      };
      const mode = n('ZPL_MODE');
      const type = TYPE_OF_MODE[mode & S_IFMT];
      if (!type) throw new ReadError(`mode 0${mode.toString(8)} has no valid file type`);
      const z: Znode = {
        objid, type, mode, perm: mode & 0o7777, uid: n('ZPL_UID'), gid: n('ZPL_GID'), size: n('ZPL_SIZE'),
        atime: time('ZPL_ATIME'), mtime: time('ZPL_MTIME'), ctime: time('ZPL_CTIME'), crtime: time('ZPL_CRTIME'),
        gen: n('ZPL_GEN'), links: n('ZPL_LINKS'), parent: n('ZPL_PARENT'), flags: u64('ZPL_FLAGS')!, attrs, dnode: dn,
      };
      if (type === 'chardev' || type === 'blockdev') {
        const r = u64('ZPL_RDEV')!;
        z.rdev = [Number(r >> 20n), Number(r & 0xfffffn)];
      }
      if (type === 'symlink') {
        const t = attrs.get('ZPL_SYMLINK');
        if (t === undefined) throw new ReadError('symbolic link without a ZPL_SYMLINK attribute');
        z.target = t;
        if (t.length !== z.size) throw new ReadError(`symbolic link target is ${t.length} bytes, size says ${z.size}`);
      }
      const dx = attrs.get('ZPL_DXATTR');
      if (dx !== undefined) {
        z.xattrs = new Map();
        const nv = inContext('ZPL_DXATTR', () => unpackNvlist(dx));
        for (const [name, v] of nv) {
          if (v.type !== 'byte_array') throw new ReadError(`xattr ${JSON.stringify(name)} is a ${v.type}, not a byte array`);
          z.xattrs.set(name, v.value);
        }
      }
      const x = u64('ZPL_XATTR', false);
      if (x !== undefined && x !== 0n) z.xattrDir = Number(x);
      return z;
    });
  }

  /** A directory's entries, sorted by name bytes. */
  readdir(objid: number, dn?: RDnode): DirEntry[] {
    return inContext(`object ${objid}`, () => {
      const d = dn ?? this.os.dnode(objid);
      if (d.type !== DMU_OT_DIRECTORY_CONTENTS) throw new ReadError(`is not a directory (type ${d.type})`);
      const z = this.os.zap(objid, d);
      const out: DirEntry[] = z.entries.map((e) => {
        if (e.value.intLen !== 8 || e.value.ints.length !== 1) {
          throw new ReadError(`entry "${Buffer.from(e.name).toString()}" is not one uint64`);
        }
        const v = e.value.ints[0]!;
        return { name: e.name, objid: Number(v & ((1n << 48n) - 1n)), dtype: Number(v >> 60n) };
      });
      return out.sort((a, b) => compareNames(a.name, b.name));
    });
  }

  /**
   * The object at `path` (absolute within the dataset, '/'-separated).
   * Symbolic links are followed in the middle of the path, and at its end
   * with `follow`; absolute targets start from the dataset root.
   */
  lookup(path: string | Uint8Array, opts: { follow?: boolean } = {}): number {
    const bytes = typeof path === 'string' ? Buffer.from(path) : Buffer.from(path);
    let hops = 0;
    const walk = (start: number, p: Buffer, follow: boolean): number => {
      const parts = splitPath(p);
      let cur = p[0] === 0x2f ? this.root : start;
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!;
        const last = i === parts.length - 1;
        const z = this.stat(cur);
        if (z.type !== 'dir') throw new ReadError(`${showBytes(p)}: not a directory`);
        if (part.equals(DOT)) continue;
        if (part.equals(DOTDOT)) {
          cur = cur === this.root ? cur : z.parent;
          continue;
        }
        const e = this.readdir(cur).find((x) => Buffer.from(x.name).equals(part));
        if (!e) throw new ReadError(`${showBytes(p)}: no such file or directory`);
        if (!last || follow) {
          const t = this.stat(e.objid);
          if (t.type === 'symlink') {
            if (++hops > MAX_SYMLINK_HOPS) throw new ReadError(`${showBytes(p)}: too many levels of symbolic links`);
            const rest = parts.slice(i + 1);
            const target = Buffer.concat([Buffer.from(t.target!), ...rest.flatMap((r) => [SLASH, r])]);
            return walk(cur, target, follow);
          }
        }
        cur = e.objid;
      }
      return cur;
    };
    return walk(this.root, bytes, opts.follow ?? false);
  }

  /** A regular file's contents, block by block (the last block trimmed to the size). */
  *read(objid: number): Generator<Uint8Array> {
    const z = this.stat(objid);
    if (z.type !== 'file') throw new ReadError(`object ${objid} is a ${z.type}, not a regular file`);
    yield* this.os.stream(z.dnode, z.size);
  }
}

function readU64(v: Uint8Array): bigint {
  const dv = new DataView(v.buffer, v.byteOffset, 8);
  return BigInt(dv.getUint32(0, true)) | (BigInt(dv.getUint32(4, true)) << 32n);
}

const SLASH = Buffer.from('/');
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');


function showBytes(b: Uint8Array): string {
  return Buffer.from(b).toString('utf8');
}
