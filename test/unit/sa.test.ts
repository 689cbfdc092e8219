import { describe, expect, it } from 'vitest';
import { u64le } from '../../src/util/endian.js';
import {
  encodeSa, encodeZnodeSa, LAYOUT_SYMLINK, LAYOUT_ZNODE, ZPL_ATIME, ZPL_SYMLINK, znodeSaSize, ZPL_CRTIME, ZPL_CTIME, ZPL_DACL_ACES, ZPL_DACL_COUNT, ZPL_FLAGS,
  ZPL_GEN, ZPL_GID, ZPL_LINKS, ZPL_MODE, ZPL_MTIME, ZPL_PARENT, ZPL_SIZE, ZPL_UID, type ZnodeFields,
} from '../../src/zpl/sa.js';

function u64(v: number | bigint): Uint8Array {
  const b = new Uint8Array(8);
  u64le(b, 0, v);
  return b;
}

function generic(num: number, f: ZnodeFields, target?: Uint8Array): Uint8Array {
  const t = (x: { sec: number; nsec: number }) => {
    const b = new Uint8Array(16);
    u64le(b, 0, BigInt.asUintN(64, BigInt(x.sec)));
    u64le(b, 8, x.nsec);
    return b;
  };
  const v = new Map<number, Uint8Array>([
    [ZPL_MODE, u64(f.mode)], [ZPL_SIZE, u64(f.size)], [ZPL_GEN, u64(f.gen)], [ZPL_UID, u64(f.uid)], [ZPL_GID, u64(f.gid)],
    [ZPL_PARENT, u64(f.parent)], [ZPL_FLAGS, u64(f.flags)], [ZPL_ATIME, t(f.times[0]!)], [ZPL_MTIME, t(f.times[1]!)],
    [ZPL_CTIME, t(f.times[2]!)], [ZPL_CRTIME, t(f.times[3]!)], [ZPL_LINKS, u64(f.links)], [ZPL_DACL_COUNT, u64(f.aclCount)],
    [ZPL_DACL_ACES, f.aces],
  ]);
  if (target === undefined) return encodeSa(num, LAYOUT_ZNODE, v);
  v.set(ZPL_SYMLINK, target);
  return encodeSa(num, LAYOUT_SYMLINK, v);
}

describe('encodeZnodeSa', () => {
  it('writes the bytes encodeSa writes for LAYOUT_ZNODE', () => {
    let seed = 7;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    for (let i = 0; i < 200; i++) {
      const aces = new Uint8Array(rnd(4) * 12 + (rnd(2) ? 0 : 36)).map(() => rnd(256));
      const time = () => ({ sec: rnd(3) === 0 ? -rnd(2 ** 31) : rnd(2) ? rnd(2 ** 31) : 2 ** 40 + rnd(1000), nsec: rnd(1e9) });
      const f: ZnodeFields = {
        mode: 0o100000 | rnd(0o10000), size: rnd(2) ? rnd(2 ** 31) : 2n ** 50n + BigInt(rnd(1000)), gen: 4,
        uid: rnd(2 ** 31), gid: rnd(70000), parent: rnd(1e6), flags: rnd(2) ? 0x40800000000n : rnd(2 ** 30),
        times: [time(), time(), time(), time()], links: rnd(100), aclCount: rnd(7), aces,
      };
      const num = 2 + rnd(5);
      expect(Buffer.from(encodeZnodeSa(num, f)).toString('hex')).toBe(Buffer.from(generic(num, f)).toString('hex'));
    }
  });

  it('writes the bytes encodeSa writes for LAYOUT_SYMLINK, every byte of a reused buffer', () => {
    let seed = 11;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    const dirty = new Uint8Array(400);
    for (let i = 0; i < 200; i++) {
      // ACE lengths that leave the ACEs unaligned (12 bytes each) and aligned
      const aces = new Uint8Array(rnd(7) * 12).map(() => rnd(256));
      const target = new Uint8Array(1 + rnd(160)).map(() => 1 + rnd(255));
      const time = () => ({ sec: rnd(3) === 0 ? -rnd(2 ** 31) : rnd(2 ** 31), nsec: rnd(1e9) });
      const f: ZnodeFields = {
        mode: 0o120777, size: target.length, gen: 4, uid: rnd(2 ** 31), gid: rnd(70000), parent: rnd(1e6),
        flags: rnd(2 ** 30), times: [time(), time(), time(), time()], links: 1, aclCount: aces.length / 12, aces,
      };
      const num = 2 + rnd(5);
      const want = Buffer.from(generic(num, f, target)).toString('hex');
      expect(znodeSaSize(aces.length, target.length)).toBe(want.length / 2);
      // fresh, into a dirty buffer of exactly the size, and into a larger one
      expect(Buffer.from(encodeZnodeSa(num, f, undefined, target)).toString('hex')).toBe(want);
      dirty.fill(0xa5);
      const exact = dirty.subarray(0, want.length / 2);
      const out = encodeZnodeSa(num, f, exact, target);
      expect(out).toBe(exact);
      expect(Buffer.from(out).toString('hex')).toBe(want);
      dirty.fill(0x5a);
      expect(Buffer.from(encodeZnodeSa(num, f, dirty, target)).toString('hex')).toBe(want);
    }
  });
});
