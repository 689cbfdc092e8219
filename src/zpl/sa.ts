// System attributes (module/zfs/sa.c, zfs_sa.c): the registry of ZPL
// attributes, the layouts (ordered attribute lists, numbered from 2 in order
// of first use) and the sa_hdr_phys_t-headed buffers stored in a znode's
// bonus and, when they do not fit, its spill block.
import { rd16le, rd32le, u16le, u32le, u64le } from '../util/endian.js';

export const SA_MAGIC = 0x2f505a;

export const ZPL_ATIME = 0, ZPL_MTIME = 1, ZPL_CTIME = 2, ZPL_CRTIME = 3, ZPL_GEN = 4,
  ZPL_MODE = 5, ZPL_SIZE = 6, ZPL_PARENT = 7, ZPL_LINKS = 8, ZPL_XATTR = 9, ZPL_RDEV = 10,
  ZPL_FLAGS = 11, ZPL_UID = 12, ZPL_GID = 13, ZPL_PAD = 14, ZPL_ZNODE_ACL = 15,
  ZPL_DACL_COUNT = 16, ZPL_SYMLINK = 17, ZPL_SCANSTAMP = 18, ZPL_DACL_ACES = 19,
  ZPL_DXATTR = 20, ZPL_PROJID = 21;

/** The registry as OpenZFS writes it: [name, length (0 = variable), byteswap type]. */
export const SA_REGISTRY: readonly [string, number, number][] = [
  ['ZPL_ATIME', 16, 0], ['ZPL_MTIME', 16, 0], ['ZPL_CTIME', 16, 0], ['ZPL_CRTIME', 16, 0],
  ['ZPL_GEN', 8, 0], ['ZPL_MODE', 8, 0], ['ZPL_SIZE', 8, 0], ['ZPL_PARENT', 8, 0],
  ['ZPL_LINKS', 8, 0], ['ZPL_XATTR', 8, 0], ['ZPL_RDEV', 8, 0], ['ZPL_FLAGS', 8, 0],
  ['ZPL_UID', 8, 0], ['ZPL_GID', 8, 0], ['ZPL_PAD', 32, 0], ['ZPL_ZNODE_ACL', 88, 3],
  ['ZPL_DACL_COUNT', 8, 0], ['ZPL_SYMLINK', 0, 3], ['ZPL_SCANSTAMP', 32, 3],
  ['ZPL_DACL_ACES', 0, 4], ['ZPL_DXATTR', 0, 3], ['ZPL_PROJID', 8, 0],
];

/** ATTR_ENCODE: number | byteswap << 16 | length << 24. */
export function registryValue(num: number): bigint {
  const [, len, bswap] = SA_REGISTRY[num]!;
  return BigInt(num) | (BigInt(bswap) << 16n) | (BigInt(len) << 24n);
}

export function attrLength(num: number): number {
  return SA_REGISTRY[num]![1];
}

/** zfs_mknode's attribute order (no project quota); devices add RDEV after LINKS. */
export const LAYOUT_ZNODE = [ZPL_MODE, ZPL_SIZE, ZPL_GEN, ZPL_UID, ZPL_GID, ZPL_PARENT, ZPL_FLAGS,
  ZPL_ATIME, ZPL_MTIME, ZPL_CTIME, ZPL_CRTIME, ZPL_LINKS, ZPL_DACL_COUNT, ZPL_DACL_ACES];
export const LAYOUT_DEVICE = [ZPL_MODE, ZPL_SIZE, ZPL_GEN, ZPL_UID, ZPL_GID, ZPL_PARENT, ZPL_FLAGS,
  ZPL_ATIME, ZPL_MTIME, ZPL_CTIME, ZPL_CRTIME, ZPL_LINKS, ZPL_RDEV, ZPL_DACL_COUNT, ZPL_DACL_ACES];
/** zfs_symlink adds SYMLINK after the znode's attributes. */
export const LAYOUT_SYMLINK = [...LAYOUT_ZNODE, ZPL_SYMLINK];

/** Layouts in order of first use, numbered from 2 without gaps (OpenZFS numbers new ones by count). */
export class SaLayouts {
  readonly list: number[][] = [];
  private byKey = new Map<string, number>();
  // The same attribute list object comes back for every inode of a kind
  // (the writer memoizes layouts): known lists skip building the string key.
  private byList = new WeakMap<readonly number[], number>();

  number(attrs: readonly number[]): number {
    const known = this.byList.get(attrs);
    if (known !== undefined) return known;
    const key = attrs.join(',');
    let n = this.byKey.get(key);
    if (n === undefined) {
      n = this.list.length + 2;
      this.list.push([...attrs]);
      this.byKey.set(key, n);
    }
    this.byList.set(attrs, n);
    return n;
  }
}

const align8 = (n: number) => (n + 7) & ~7;

function headerSize(attrs: readonly number[]): number {
  const nvar = attrs.filter((a) => attrLength(a) === 0).length;
  return align8(6 + 2 * Math.max(nvar, 1));
}

/** Bytes an SA buffer with these attribute values takes (header included, last attribute unpadded). */
export function saSize(attrs: readonly number[], values: Map<number, Uint8Array>): number {
  let off = headerSize(attrs);
  attrs.forEach((a, i) => {
    const len = values.get(a)!.length;
    off += i === attrs.length - 1 ? len : align8(len);
  });
  return off;
}

/** Encode an SA buffer: header, then each attribute 8-aligned in layout order. */
export function encodeSa(layoutNum: number, attrs: readonly number[], values: Map<number, Uint8Array>, bufLen?: number): Uint8Array {
  const hdr = headerSize(attrs);
  const size = saSize(attrs, values);
  const buf = new Uint8Array(bufLen ?? size);
  u32le(buf, 0, SA_MAGIC);
  u16le(buf, 4, layoutNum | ((hdr / 8) << 10));
  let lenSlot = 6;
  let off = hdr;
  for (const a of attrs) {
    const v = values.get(a);
    if (!v) throw new Error(`missing value for SA attribute ${a}`);
    const fixed = attrLength(a);
    if (fixed === 0) {
      u16le(buf, lenSlot, v.length);
      lenSlot += 2;
    } else if (v.length !== fixed) {
      throw new Error(`SA attribute ${a} must be ${fixed} bytes`);
    }
    buf.set(v, off);
    off += align8(v.length);
  }
  return buf;
}

/** Decode an SA buffer given the layouts table (layout number -> attributes). */
export function decodeSa(buf: Uint8Array, layouts: Map<number, number[]>): Map<number, Uint8Array> {
  if (rd32le(buf, 0) !== SA_MAGIC) throw new Error('bad SA magic');
  const info = rd16le(buf, 4);
  const layoutNum = info & 0x3ff;
  const hdr = (info >> 10) * 8;
  const attrs = layouts.get(layoutNum);
  if (!attrs) throw new Error(`unknown SA layout ${layoutNum}`);
  const out = new Map<number, Uint8Array>();
  let lenSlot = 6;
  let off = hdr;
  for (const a of attrs) {
    let len = attrLength(a);
    if (len === 0) { len = rd16le(buf, lenSlot); lenSlot += 2; }
    if (off + len > buf.length) throw new Error(`SA attribute ${a} runs past the buffer`);
    out.set(a, buf.slice(off, off + len));
    off += align8(len);
  }
  return out;
}

/** The values of a plain znode (LAYOUT_ZNODE), as numbers: what encodeZnodeSa takes. */
export interface ZnodeFields {
  mode: number;
  size: number | bigint;
  gen: number;
  uid: number;
  gid: number;
  parent: number;
  flags: number | bigint;
  /** atime, mtime, ctime, crtime as (seconds, nanoseconds) pairs. */
  times: readonly { sec: number; nsec: number }[];
  links: number;
  aclCount: number;
  aces: Uint8Array;
}

// LAYOUT_ZNODE's offsets: one variable-length attribute (the ACEs) makes an
// 8-byte header; every fixed attribute is 8 or 16 bytes, so none needs padding.
const ZNODE_HDR = 8;
const ZNODE_FIXED = ZNODE_HDR + 7 * 8 + 4 * 16 + 2 * 8;
// LAYOUT_SYMLINK adds a second variable-length attribute, the target, last:
// the header holds two lengths (16 bytes), and the ACEs are padded to 8.
const SYMLINK_HDR = 16;

/**
 * Bytes encodeZnodeSa writes for ACEs of `acesLen` bytes and, for a
 * symlink (LAYOUT_SYMLINK), a target of `targetLen`.
 */
export function znodeSaSize(acesLen: number, targetLen?: number): number {
  if (targetLen === undefined) return ZNODE_FIXED + acesLen;
  return ZNODE_FIXED - ZNODE_HDR + SYMLINK_HDR + ((acesLen + 7) & ~7) + targetLen;
}

/**
 * encodeSa for LAYOUT_ZNODE, or LAYOUT_SYMLINK given the symlink's
 * `target`, without a Map of small arrays: the same bytes (checked by a
 * unit test), written in place, since every object of a tree is one of
 * these.
 */
export function encodeZnodeSa(layoutNum: number, f: ZnodeFields, into?: Uint8Array, target?: Uint8Array): Uint8Array {
  // every byte is written below: `into` (a caller's scratch) or a slice of
  // node's shared pool will do (an array of its own per inode was a malloc
  // each, most of this function); `into` of exactly the size is used as it
  // is (a view per inode was garbage too)
  const len = znodeSaSize(f.aces.length, target?.length);
  const buf: Uint8Array = into !== undefined && into.length === len ? into
    : into !== undefined && into.length > len ? into.subarray(0, len) : Buffer.allocUnsafe(len);
  const hdr = target === undefined ? ZNODE_HDR : SYMLINK_HDR;
  u32le(buf, 0, SA_MAGIC);
  u16le(buf, 4, layoutNum | ((hdr / 8) << 10));
  u16le(buf, 6, f.aces.length);
  if (target !== undefined) {
    u16le(buf, 8, target.length);
    for (let b = 10; b < SYMLINK_HDR; b++) buf[b] = 0;
  }
  u64le(buf, hdr, f.mode);
  u64le(buf, hdr + 8, f.size);
  u64le(buf, hdr + 16, f.gen);
  u64le(buf, hdr + 24, f.uid);
  u64le(buf, hdr + 32, f.gid);
  u64le(buf, hdr + 40, f.parent);
  u64le(buf, hdr + 48, f.flags);
  let off = hdr + 56;
  for (let i = 0; i < 4; i++) {
    const t = f.times[i]!;
    // negative: two's complement, as the kernel stores pre-1970 times
    u64le(buf, off, t.sec);
    u64le(buf, off + 8, t.nsec);
    off += 16;
  }
  u64le(buf, off, f.links);
  u64le(buf, off + 8, f.aclCount);
  off += 16;
  buf.set(f.aces, off);
  if (target !== undefined) {
    off += f.aces.length;
    const padded = (off + 7) & ~7;
    while (off < padded) buf[off++] = 0;
    buf.set(target, off);
  }
  return buf;
}
