// ZAP tests. The checks here deliberately do not reuse the encoder's helpers:
// the hash is recomputed bit by bit, layouts are read at hard-coded offsets,
// and lookups walk pointer table, leaf hash slot and chains the way OpenZFS's
// zap_deref_leaf()/zap_leaf_lookup() and the FreeBSD loader do.

import { inflateRawSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import {
  buildZap,
  decodeZap,
  mzapBlockSize,
  zapHash,
  zapHash28,
  zapName,
  zapString,
  type ZapEntry,
  type ZapImage,
} from '../../src/zap/index.js';
import { packEntries } from '../../src/zap/packed.js';
import { ZAP_MAXNAMELEN } from '../../src/zap/types.js';
import { zapSourceFromPacked } from '../../src/zap/zap.js';

const POLY = 0xc96c5795d7870f42n;
const M64 = (1n << 64n) - 1n;
const KEEP = M64 ^ ((1n << 36n) - 1n);

/** CRC-64 (reflected ECMA-182), one bit at a time, register = salt, top 28 bits kept. */
function refHash(salt: bigint, name: Uint8Array): bigint {
  let crc = salt;
  for (const b of name) {
    crc ^= BigInt(b);
    for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ POLY : crc >> 1n;
  }
  return crc & KEEP;
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const u16 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const u64 = (b: Uint8Array, o: number): bigint => BigInt(u32(b, o)) | (BigInt(u32(b, o + 4)) << 32n);
const beInt = (b: number[]): bigint => b.reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

function readAll(img: ZapImage) {
  return decodeZap((i) => {
    const b = img.blocks[i];
    if (!b) throw new Error(`no block ${i}`);
    return b;
  }, img.blocks[0]!);
}

/** Expected value as (intLen, bigint ints) for comparison with decoded entries. */
function norm(v: ZapEntry['value']): { intLen: number; ints: bigint[] } {
  if (typeof v === 'object') return { intLen: v.intLen, ints: v.ints.map((x) => BigInt(x)) };
  return { intLen: 8, ints: [BigInt(v)] };
}

function expectRoundTrip(img: ZapImage, entries: ZapEntry[]): void {
  const d = readAll(img);
  expect(d.numEntries).toBe(entries.length);
  expect(d.entries.length).toBe(entries.length);
  const want = new Map(entries.map((e) => [Buffer.from(e.name).toString('latin1'), norm(e.value)]));
  // plain comparisons, one expect at the end: an expect() per entry is slow at 50k entries
  const problems: string[] = [];
  for (const e of d.entries) {
    const key = Buffer.from(e.name).toString('latin1');
    const w = want.get(key);
    if (!w) problems.push(`unexpected name ${key}`);
    else if (w.intLen !== e.value.intLen || w.ints.length !== e.value.ints.length || w.ints.some((x, k) => x !== e.value.ints[k])) {
      problems.push(`${key}: got ${e.value.intLen}/${e.value.ints}, want ${w.intLen}/${w.ints}`);
    }
    want.delete(key);
  }
  for (const k of want.keys()) problems.push(`missing ${k}`);
  expect(problems.slice(0, 10)).toEqual([]);
}

// ---- an independent micro-ZAP reader (mzap_phys_t at fixed offsets)

function microLookupAll(block: Uint8Array): { name: Uint8Array; value: bigint; cd: number }[] {
  expect(u64(block, 0)).toBe(0x8000000000000003n);
  const out = [];
  for (let off = 64; off + 64 <= block.length; off += 64) {
    if (block[off + 14] === 0) continue;
    const nameField = block.subarray(off + 14, off + 64);
    const len = nameField.indexOf(0);
    expect(len).toBeGreaterThan(0);
    out.push({ name: nameField.slice(0, len), value: u64(block, off), cd: u32(block, off + 8) });
  }
  return out;
}

// ---- an independent fat-ZAP reader (zap_phys_t, zap_leaf_phys_t at fixed offsets)

interface FatHeader {
  bs: number;
  ztBlk: number;
  ztNumBlks: number;
  ztShift: number;
  freeBlk: number;
  numLeafs: number;
  numEntries: number;
  salt: bigint;
}

function fatHeader(img: ZapImage): FatHeader {
  const h = img.blocks[0]!;
  expect(u64(h, 0)).toBe(0x8000000000000001n);
  expect(u64(h, 8)).toBe(0x2f52ab2abn);
  expect(u64(h, 40)).toBe(0n); // zt_nextblk
  expect(u64(h, 48)).toBe(0n); // zt_blks_copied
  expect(u64(h, 88)).toBe(0n); // normflags
  expect(u64(h, 96)).toBe(0n); // flags
  return {
    bs: Math.log2(h.length),
    ztBlk: Number(u64(h, 16)),
    ztNumBlks: Number(u64(h, 24)),
    ztShift: Number(u64(h, 32)),
    freeBlk: Number(u64(h, 56)),
    numLeafs: Number(u64(h, 64)),
    numEntries: Number(u64(h, 72)),
    salt: u64(h, 80),
  };
}

function ptrEntry(img: ZapImage, h: FatHeader, idx: number): number {
  const bsize = 1 << h.bs;
  if (h.ztNumBlks === 0) return Number(u64(img.blocks[0]!, bsize / 2 + 8 * idx));
  const per = bsize / 8;
  return Number(u64(img.blocks[h.ztBlk + Math.floor(idx / per)]!, 8 * (idx % per)));
}

function readChain(leaf: Uint8Array, base: number, first: number, nbytes: number): { bytes: number[]; chunks: number[] } {
  const bytes: number[] = [];
  const chunks: number[] = [];
  let c = first;
  while (bytes.length < nbytes) {
    expect(c).not.toBe(0xffff);
    const o = base + 24 * c;
    expect(leaf[o]).toBe(251);
    chunks.push(c);
    for (let k = 0; k < 21 && bytes.length < nbytes; k++) bytes.push(leaf[o + 1 + k]!);
    c = u16(leaf, o + 22);
  }
  expect(c).toBe(0xffff);
  return { bytes, chunks };
}

/** Looks a name up as zap_deref_leaf() + zap_leaf_lookup() would. */
function fatLookup(img: ZapImage, name: Uint8Array) {
  const h = fatHeader(img);
  const hash = refHash(h.salt, name);
  const idx = h.ztShift === 0 ? 0 : Number(hash >> BigInt(64 - h.ztShift));
  const blk = ptrEntry(img, h, idx);
  const leaf = img.blocks[blk]!;
  expect(u64(leaf, 0)).toBe(0x8000000000000000n);
  expect(u32(leaf, 24)).toBe(0x2ab1eaf);
  const plen = u16(leaf, 32);
  expect(u64(leaf, 16)).toBe(plen === 0 ? 0n : hash >> BigInt(64 - plen));
  const hashShift = h.bs - 5;
  const slot = Number((hash >> BigInt(64 - hashShift - plen)) & BigInt((1 << hashShift) - 1));
  const base = 48 + 2 * (1 << hashShift);
  for (let c = u16(leaf, 48 + 2 * slot); c !== 0xffff; c = u16(leaf, base + 24 * c + 2)) {
    const o = base + 24 * c;
    expect(leaf[o]).toBe(252);
    if (u64(leaf, o + 16) !== hash) continue;
    const nlen = u16(leaf, o + 6);
    const nm = readChain(leaf, base, u16(leaf, o + 4), nlen);
    if (nlen !== name.length + 1 || nm.bytes[nlen - 1] !== 0 || !name.every((x, k) => x === nm.bytes[k])) continue;
    const intLen = leaf[o + 1]!;
    const count = u16(leaf, o + 10);
    const v = readChain(leaf, base, count ? u16(leaf, o + 8) : 0xffff, intLen * count);
    if (count === 0) expect(u16(leaf, o + 8)).toBe(0xffff);
    const ints: bigint[] = [];
    for (let k = 0; k < count; k++) ints.push(beInt(v.bytes.slice(k * intLen, (k + 1) * intLen)));
    return { intLen, ints, cd: u32(leaf, o + 12), blk, nameChunks: nm.chunks.length };
  }
  return undefined;
}

/** Whole-object structure: table ranges, leaf accounting, free lists. */
function checkFatStructure(img: ZapImage): FatHeader & { prefixLens: Set<number> } {
  const h = fatHeader(img);
  const bsize = 1 << h.bs;
  expect(img.blockSize).toBe(bsize);
  expect(img.blocks.length).toBe(h.freeBlk);
  for (const b of img.blocks) expect(b.length).toBe(bsize);
  const embedded = h.bs - 4;
  if (h.ztNumBlks === 0) {
    expect(h.ztBlk).toBe(0);
    expect(h.ztShift).toBe(embedded);
  } else {
    expect(2 ** h.ztShift).toBe(h.ztNumBlks * (bsize / 8));
    expect(h.ztShift).toBeGreaterThan(embedded);
    // leaves come first (the FreeBSD loader lists blocks 1..zap_num_leafs), table after
    expect(h.ztBlk).toBe(1 + h.numLeafs);
    expect(h.ztBlk + h.ztNumBlks).toBe(h.freeBlk);
  }
  expect(h.freeBlk).toBe(1 + h.numLeafs + h.ztNumBlks);

  const hashEnt = 1 << (h.bs - 5);
  const numChunks = Math.floor((bsize - 2 * hashEnt) / 24) - 2;
  const base = 48 + 2 * hashEnt;
  const seen = new Map<number, number>();
  const prefixLens = new Set<number>();
  let total = 0;
  for (let idx = 0; idx < 2 ** h.ztShift; ) {
    const blk = ptrEntry(img, h, idx);
    expect(blk).toBeGreaterThanOrEqual(1);
    expect(blk).toBeLessThanOrEqual(h.numLeafs);
    expect(seen.has(blk)).toBe(false);
    const leaf = img.blocks[blk]!;
    const plen = u16(leaf, 32);
    prefixLens.add(plen);
    const span = 2 ** (h.ztShift - plen);
    expect(Number(u64(leaf, 16)) * span).toBe(idx);
    for (let s = idx; s < idx + span; s++) if (ptrEntry(img, h, s) !== blk) throw new Error(`pointer ${s} is not ${blk}`);
    seen.set(blk, idx);
    // chunk accounting: every chunk is an entry, an array or free, and the free list holds all free ones
    // (plain checks in the loops: an expect() per chunk is too slow for big ZAPs)
    let nEntry = 0;
    let nFree = 0;
    for (let c = 0; c < numChunks; c++) {
      const t = leaf[base + 24 * c]!;
      if (t < 251 || t > 253) throw new Error(`leaf ${blk} chunk ${c}: type ${t}`);
      if (t === 252) nEntry++;
      if (t === 253) nFree++;
    }
    expect(u16(leaf, 30)).toBe(nEntry);
    expect(u16(leaf, 28)).toBe(nFree);
    let walked = 0;
    for (let c = u16(leaf, 34); c !== 0xffff; c = u16(leaf, base + 24 * c + 22)) {
      if (leaf[base + 24 * c] !== 253 || ++walked > nFree) throw new Error(`leaf ${blk}: bad free list at chunk ${c}`);
    }
    expect(walked).toBe(nFree);
    expect(leaf[36]).toBe(0); // lh_flags: OpenZFS sets CDSORTED only for normalizing ZAPs
    expect(u64(leaf, 8)).toBe(0n);
    total += nEntry;
    idx += span;
  }
  expect(seen.size).toBe(h.numLeafs);
  expect(total).toBe(h.numEntries);
  return { ...h, prefixLens };
}

/** n names "prefix<i>" as bytes, built without TextEncoder so millions stay cheap. */
function numberedNames(prefix: string, n: number): Uint8Array[] {
  const p = enc(prefix);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const digits = String(i);
    const b = new Uint8Array(p.length + digits.length);
    b.set(p);
    for (let k = 0; k < digits.length; k++) b[p.length + k] = digits.charCodeAt(k);
    out.push(b);
  }
  return out;
}

/** n random names of 6..12 letters and digits (PRNG-seeded; rare repeats are possible). */
function randomNames(seed: number, n: number): Uint8Array[] {
  const r = rng(seed);
  const alphabet = enc('abcdefghijklmnopqrstuvwxyz0123456789._-');
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const b = new Uint8Array(6 + Math.floor(r() * 7));
    for (let k = 0; k < b.length; k++) b[k] = alphabet[Math.floor(r() * alphabet.length)]!;
    out.push(b);
  }
  return out;
}

/** Groups of names sharing a 28-bit hash under salt, found by sorting hashes. */
function findCollisions(salt: bigint, names: Uint8Array[], minSize: number): Uint8Array[][] {
  const hi = Number(salt >> 32n);
  const lo = Number(salt & 0xffffffffn);
  const keys = new Float64Array(names.length);
  for (let i = 0; i < names.length; i++) keys[i] = zapHash28(hi, lo, names[i]!) * 2 ** 24 + i;
  keys.sort();
  const groups: Uint8Array[][] = [];
  for (let k = 0; k < keys.length; ) {
    const h = Math.floor(keys[k]! / 2 ** 24);
    let j = k + 1;
    while (j < keys.length && Math.floor(keys[j]! / 2 ** 24) === h) j++;
    if (j - k >= minSize) {
      // a repeated random name is not a collision: keep distinct names only
      const g: Uint8Array[] = [];
      for (const x of keys.subarray(k, j)) {
        const nm = names[x % 2 ** 24]!;
        if (!g.some((y) => sameBytes(y, nm))) g.push(nm);
      }
      if (g.length >= minSize) groups.push(g);
    }
    k = j;
  }
  return groups;
}

// ---- vectors written by real OpenZFS (2.3.2, Linux kernel module): a pool made
// with zfs-vm/make-reference.sh from a staging tree holding small/f0..f39 and
// long/ with 60 names of 50..255 bytes; the directory ZAP blocks were located
// with `zdb -ddddd`, read from the image and lz4-decompressed, then
// raw-deflated and base64-encoded here.

const OPENZFS_MICRO_DIR = [
  '7ZU3EsJQDEQ/Y3LOOVQmJ9vEg3AFzkFFyZmZARpt9+iYQY2rN6uV9suee9Xt8rjH3Bflffj35xoeIR8XPoJ8wvJRCPmk6O8gn7J8cIZ8WvgA8h',
  'nLH+j+sqK/h3zO8tS+y1uexscVZP9byBfFP81fSfTp/MqSvxPkK9I/zW9VeBqgmvRP81uX+dEANISn+k3xT/PXEv90/23L0/i6jvin+ekKT/ff',
  'E//0APRl/rT/gfRP5zcUffr/GIl/qu8LT+c/Fv90/hPRpwamlqfrczPpn96vufRPH9BC9k/5peXp83cr8U8DvJb+6f3cWJ6O/18/Xk8=',
].join('');

const OPENZFS_FAT_DIR = [
  '7dx3dFdFFgfwO48eeu8QepHyqxB66B1CCR0ChF6G3lsEQVBQVAQFpaNSlEgRQUBAqihNRFCaCCJVijSH8NsDG5ZJfvfLLHvO7jl7ztx/5vBJ8u',
  '6d+3tv5r0XQNCTiFm5puQdh4IjhPh4+r0ifqwcP24fNkWQDRs2bNiwYcOGDRs2bNiwYcOGDRs2bNiwYcOGDRs2bNiwYeN/GsKOdrSjHe1oRzva',
  '0Y52tKMd7WhHO9rRjna0ox3taEc72tGOdrSjHe1oRzv+34/xEUOJYnW+lY7vyb/qb5DgvwUIvHB0Ii/zU19QILDMeLR58d/xDrnF4zEZHRZTmZ',
  '8aJNAR2oGvnH1yFMcJ/op6TlXbEh0tp4O/d3Ki7+0hXrx3xYwdKhl/1JKO+WgpE1Twe9CxJySQT4Pq7al9vbzzUaKvh/8H89MjQ4IZnBSBQCN4',
  'xAMU+C9E9QRHHRH/pywiEMj/b3T3WxEIrKIkoObXEnhB0fQFZzDzyc+PA0e/keBod8TT67Q/fZjoJ36hqk5GJvf259STizaIQCDsyZEepgwEBH',
  'kpqbaCzLw98ZKSLlfUyMThkBrJRZJnTglXFxW/ErkT+eO8yWknZdDyDoy7nV9Jnyc4bwqQNyXwVMBDgKcGngZ4WuDpgKd/6olW5Wf98QT1Z4TI',
  'RDMpp9afiHPpbirpKR/cn8wgbxbgWYFnA54deA7GE87Ly3zuuekiFdXmtS2mS5ySfuZzzwPy5gWeD3h+4KHACwAvCLwQ8MLAi/Cu9c3H9K047S',
  'WPvtOfP9FeSZ83uG8lQN6SwF8CXgp4aeBlgJcF7gLu1p29XvxMf3z0gMK1/hyKGp1WST9zvfhB3nLAywMPA14BeEXglYBXBl4FeFXg1YzXaTmm',
  'nzXoCjXR+hmTs8wGJf3M+VYT5K0FvDbwOsDrAq8HvD7wBsAbAm8EvPETp6B41s/yQf28LCKIREetnzeWlD2ipL9CcD+bgbzNgbcA3hJ4JPBWwF',
  'sDbwO8LfB2wNsD72Dscxhz3kbRROqh9Xlh8z1plPQw521nkLcL8K7Ao4F3A97dOK8KzLx6US3qp80r/E7qCUq6/MHz6g3y9gHe95/+nHoqMvVI',
  'mkXD9XpmBK4o6QkLrmcAyDsQ+CDgg4EPAT4U+DBSxMWz+VZi5juShtF4bb4ZMs/epKSbuX5HgbyjgY8BPhb4uATO1V+ZqT+GptGr+ueVJd0IJT',
  '3M+fMyyDsR+CTgrwCfDHyKcd+vwsxrGm2ht7V5hUYfC1XSxzy/vAbyvg58OvAZwN8A/ibwmcDfMt4fVmX6MIskzdX7UPh4XiXdzP3PuyDvbOBz',
  'gL8H/H3jelKNqf8DWkxL9fu3jotyK+llngs+BHnnA18AfCHwRcAXA1+S2IPmG87M9yPqTCv159/i/sxKupl96mOQ9xPgy4GvMK4b1Zk6P6U5tF',
  '5/7ug6d4+SHmbd+wzkXQ08FvjnwNcAXwt8nXGfrcHMdwMtp236/UNsyUxKen3B8/0S5N0IfBPwr4BvBr4F+FbgXxv3u5pMH3bQWfpev/+/nfyu',
  'kn5mXf0G5N0JfBfw3cD3AN8LfB/wb4HvB/5dIg/uWy2mbwfpFP2s77MH7i9S0sdcL4dA3sPAjwD/AfhR4D8CPwb8J+DHgZ8w7uO1mb6dpAp0Ru',
  'uby9PmhpIuZv0/BfKeNq7DdZi8v1JDuqA/l63v71HSxeyb50De34CfN663dZl6LtIy+lNff2q+OlhJL7Mv/AHyXgJ+GfgV4FeBXwN+3fieoR4z',
  '35u0lv7W3wfmOHJBSS/T/1sg723gfwG/A/wu8HvA7wN/YDz/6zN9eEh9yBHa88XGyWFKussF9yEO5H0EPACcBO9CmPaLBkz9SUUVSqHVf2O8b6',
  '+SLua8TQbyJuc8Qd6GTN5U4ghl1vMeDRmgpI/pWwjImxp4GuBpgacDnh54BuAZgWcSpueCRkx/soo7VEDrz8K+xzYr6Wf6kw3kzQ48B/CcwHMB',
  'zw08D/C8wPMBzw88VJj298ZMPwuJMVRC6+eh/TsOK+lxB/ezMMhbBHhR4MWAFxem9bYJU/9LIpJcWv0zy6fqpqSbua8rBfKWBl4GeFnjetKUqd',
  'MjelJ5rc7OhULyKelm3ld4QV4fcD/wcsb1J4Kps4IYSdW0Os/6zzxS0sP0syLIWwl4ZeBVgFcVpvufZkz91cV+aqifz2FzpyjpY553aoC8NYHX',
  'Al4beB3gdYHXA14feAPj9d6c6U9jcZ3aav2JdVLOU9LP9KcJyNsUeATwZsCbA28BvCXwSOCtgLcG3kaYfq/dgulne3GQumv9dO3MUEpJH3Nddw',
  'B5OwLvBDwKeGfgXYB3BR4NvJtxfW7J9KenWEUDtf5EFHrYREkv059eIG9v4H2A9wXeD3h/4BL4AGF6DxPJ9GGwaE7D9T4s3VVESRfzHD0E5B0K',
  'fJhxnW/Fvf8XTWisvg7kaX9TSRfz+45RIO9o4GOM63Zrpp7xYhC9otdTafoZJd1MPRNA3hjgLwOfCHzSvxx9vm2Y+qeIcjRN3zenXmugpIu5j3',
  'oV5J0qTM/XbZm8r4twelPLGzM2zQElXcx6Ph3knQH8DeN9TjumnrfEMfpAXw9XhJ5W0sc8/74N8r4DfBbwd4HPBj4H+HvA3wc+F/g84/rQnunb',
  'fDGBlunPyyXCryrpYd4XLQB5FwJfBHwx8CXAlxrPhw7MvD4WHWiVfn9+YupEJd3MvD4BeZcDXwF8pfH67cjU+ZmYT19odQ5sdHm0kl7m+l0N8s',
  'YC/xz4GuBrga8Dvl6Y3s90Yub7pZhCX+v3yRsWxCnpYdaNjSDvJuBfAd8MfAvwrcbPMYqZ13Yxj/bp6/DWK9WU9DLPLztA3m+A7wS+C/hu4HuA',
  '7zXOtzMz3/0img5p86V103cr6WY+x+9A3u+BHwB+0Li/d2HqPCJi6Rd9n9pYL1RJL/Pe5geQ9yjwH4EfA/4T8OPATwD/2fh5dWX6cErcokv6On',
  '+N5irpZ+6HT4O8Z4CfBf4r8HPAfwN+HvgF4L8Dvwj8D+M6Fs3084rYQH9p/dwWF3lESS9z33gV5L0G/DrwP4HfAH4T+C3gt43XVzemD3fFeRKO',
  '9nu6qGaXlPQz+9c9kPc+8AfA/waugD8EHgf8EfAAcHJMz6fdmb4lcR5Seq1vsU1PepX0M+dPUofPmwx4cuApgKcEngp4CPDUwNMATws8nWN6P9',
  '+D6WdGZwbl0Pq5sNri2Up6mHU+E8ibGXgW4FmBZwOe3TFdXz2ZeeVy6lI+/fq6N6mmki5mXrlB3jzA8zqmfaQXU0+os4lKaPVE7Nu4RUkv8z6h',
  'AMhbEHgh4IWBFwFeFHgx4MWN129v7v2/c4LKaX0Y2KJ3DyV9zPVbCuQtDbwM8LLAXcDdwD3AvcB9wP2O6b1lH6ZvYU5bqqKve63KPn4uY/aLCi',
  'BvReCVgFd2TH+Pri9TZzVnO9XX6qRHZ28o6WPqDAd5qwOvAbwm8FrAawOvA7wu8HqO6b1Bv0Qexz6PN3R4bwS8MfAmwJsCjwDeDHhz4C2AtwQe',
  'CbwV8NbA2wBvC7wd8PbAOwDvCLwT8CjgnYF3Ad4VeDTwbsC7A+8BvCfwXsB7A+8DvC/wfsD7A5fABwAfCHwQ8MHAhwAfCnwY8OHARwAfCXwU8N',
  'HAxwAfC3wc8EDgHw==',
].join('');

function fixtureBlocks(b64: string, bsize: number): Uint8Array[] {
  const all = new Uint8Array(inflateRawSync(Buffer.from(b64, 'base64')));
  const out: Uint8Array[] = [];
  for (let o = 0; o < all.length; o += bsize) out.push(all.subarray(o, o + bsize));
  return out;
}

/** The staged names of long/: "nII_" padded with x to 50 + floor(i * 205 / 59) bytes. */
const longNames = (): string[] =>
  Array.from({ length: 60 }, (_, i) => (`n${String(i).padStart(2, '0')}_` + 'x'.repeat(300)).slice(0, 50 + Math.floor((i * 205) / 59)));

/** Per leaf: prefix/len -> nfree, nentries, and how many entries each hash slot chains. */
function leafShape(blocks: Uint8Array[]): Map<string, string> {
  const bs = Math.log2(blocks[0]!.length);
  const nh = 1 << (bs - 5);
  const base = 48 + 2 * nh;
  const out = new Map<string, string>();
  for (const l of blocks.slice(1)) {
    if (u64(l, 0) !== 0x8000000000000000n) continue;
    const occupancy: number[] = [];
    for (let s = 0; s < nh; s++) {
      let k = 0;
      for (let c = u16(l, 48 + 2 * s); c !== 0xffff; c = u16(l, base + 24 * c + 2)) k++;
      occupancy.push(k);
    }
    out.set(`${u64(l, 16)}/${u16(l, 32)}`, `${u16(l, 28)} ${u16(l, 30)} ${occupancy.join('')}`);
  }
  return out;
}

const SALT = 0x1d3f5a7c9e2b4d61n;

describe('blocks written by OpenZFS', () => {
  test('micro ZAP directory decodes; we size and hash it the same way', () => {
    const blocks = fixtureBlocks(OPENZFS_MICRO_DIR, 3072);
    const d = readAll({ kind: 'micro', blockSize: 3072, blocks, numEntries: 40 });
    expect(d.kind).toBe('micro');
    expect(d.salt).toBe(0x1868e55n);
    const names = d.entries.map((e) => Buffer.from(e.name).toString()).sort();
    expect(names).toEqual(Array.from({ length: 40 }, (_, i) => `f${i}`).sort());
    for (const e of d.entries) {
      expect(e.value.ints[0]! >> 60n).toBe(8n); // DT_REG in the top bits of a ZPL directory entry
      expect(e.hash).toBe(refHash(d.salt, e.name));
    }
    const mine = buildZap(d.entries, { salt: d.salt });
    expect(mine.kind).toBe('micro');
    expect(mine.blockSize).toBe(3072); // 40 entries: 64 * 41 rounded up to 512
    expect(sameBytes(mine.blocks[0]!.subarray(0, 64), blocks[0]!.subarray(0, 64))).toBe(true);
  });

  test('fat ZAP directory decodes; rebuilding it gives the same header and leaf shape', () => {
    const blocks = fixtureBlocks(OPENZFS_FAT_DIR, 16384);
    expect(blocks.length).toBe(2);
    const d = readAll({ kind: 'fat', blockSize: 16384, blocks, numEntries: 60 });
    expect(d.kind).toBe('fat');
    expect(d.salt).toBe(0x18675c1n);
    expect(d.entries.map((e) => Buffer.from(e.name).toString()).sort()).toEqual(longNames().sort());
    for (const e of d.entries) {
      expect(e.value.intLen).toBe(8);
      expect(e.value.ints[0]! >> 60n).toBe(8n);
      expect(e.hash).toBe(refHash(d.salt, e.name));
    }
    const mine = buildZap(d.entries, { salt: d.salt });
    expect(mine.kind).toBe('fat');
    expect(mine.blocks.length).toBe(2);
    // zap_phys_t up to zap_flags, and the embedded pointer table
    expect(sameBytes(mine.blocks[0]!, blocks[0]!)).toBe(true);
    expect(leafShape(mine.blocks)).toEqual(leafShape(blocks));
    for (const e of d.entries) expect(fatLookup(mine, e.name)!.ints).toEqual(e.value.ints);
  });
});

describe('zapHash', () => {
  test('matches the published CRC-64/XZ check value', () => {
    // CRC-64/XZ: same reflected polynomial, init and xorout all ones, check("123456789") = 0x995dc9bbdf1939fa.
    // With init = salt = ~0 and no xorout the register ends at the complement.
    const full = 0x995dc9bbdf1939fan ^ M64;
    expect(zapHash(M64, enc('123456789'))).toBe(full & KEEP);
    expect(zapHash(M64, enc('123456789'))).toBe(0x66a2364000000000n);
  });

  test('matches a bit-by-bit CRC for random salts and names', () => {
    const r = rng(7);
    for (let t = 0; t < 400; t++) {
      const salt = (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32)) | 1n;
      const name = new Uint8Array(Math.floor(r() * 300));
      for (let k = 0; k < name.length; k++) name[k] = Math.floor(r() * 256);
      const h = zapHash(salt, name);
      expect(h).toBe(refHash(salt, name));
      expect(h & ((1n << 36n) - 1n)).toBe(0n);
    }
  });

  test('rejects a zero or oversized salt', () => {
    expect(() => zapHash(0n, enc('a'))).toThrow();
    expect(() => zapHash(1n << 64n, enc('a'))).toThrow();
  });
});

describe('micro ZAP', () => {
  test('layout at fixed offsets', () => {
    const entries: ZapEntry[] = [
      { name: zapName('ROOT'), value: 34 },
      { name: enc('DELETE_QUEUE'), value: 33n },
      { name: enc('VERSION'), value: { intLen: 8, ints: [5] } },
      { name: enc('x'.repeat(49)), value: 0xfedcba9876543210n },
    ];
    const img = buildZap(entries, { salt: SALT });
    expect(img.kind).toBe('micro');
    expect(img.blockSize).toBe(512);
    expect(img.blocks.length).toBe(1);
    const b = img.blocks[0]!;
    expect(Array.from(b.subarray(0, 8))).toEqual([3, 0, 0, 0, 0, 0, 0, 0x80]);
    expect(u64(b, 8)).toBe(SALT);
    expect(u64(b, 16)).toBe(0n);
    const got = microLookupAll(b);
    expect(got.length).toBe(4);
    for (const e of entries) {
      const g = got.find((x) => sameBytes(x.name, e.name))!;
      expect(g.value).toBe(norm(e.value).ints[0]);
      expect(g.cd).toBe(0);
    }
    // unused slots are all zero
    expect(b.subarray(64 * 5).every((x) => x === 0)).toBe(true);
    expectRoundTrip(img, entries);
  });

  test('block size grows in 512-byte steps like OpenZFS (or by powers of two)', () => {
    const cases: [number, number, number][] = [
      [0, 512, 512],
      [7, 512, 512],
      [8, 1024, 1024],
      [15, 1024, 1024],
      [16, 1536, 2048],
      [100, 6656, 8192],
      [2047, 131072, 131072],
    ];
    for (const [n, sector, pow2] of cases) {
      expect(mzapBlockSize(n)).toBe(sector);
      expect(mzapBlockSize(n, 'pow2')).toBe(pow2);
      const entries = numberedNames('e', n).map((name, i) => ({ name, value: i }));
      const img = buildZap(entries, { salt: SALT });
      expect(img.kind).toBe('micro');
      expect(img.blockSize).toBe(sector);
      expect(buildZap(entries, { salt: SALT, microBlockRounding: 'pow2' }).blockSize).toBe(pow2);
    }
  });

  test('choice rule: entries, name length, value shape, size limit', () => {
    const mk = (n: number) => numberedNames('n', n).map((name, i) => ({ name, value: i }));
    expect(buildZap(mk(2047), { salt: SALT }).kind).toBe('micro');
    expect(buildZap(mk(2048), { salt: SALT }).kind).toBe('fat');
    expect(buildZap(mk(2048), { salt: SALT, microMaxSize: 1 << 20 }).kind).toBe('micro');
    expect(buildZap(mk(8), { salt: SALT, microMaxSize: 512 }).kind).toBe('fat');
    expect(buildZap(mk(7), { salt: SALT, microMaxSize: 512 }).kind).toBe('micro');
    expect(buildZap(mk(3), { salt: SALT, forceFat: true }).kind).toBe('fat');
    expect(buildZap([{ name: enc('a'.repeat(49)), value: 1 }], { salt: SALT }).kind).toBe('micro');
    expect(buildZap([{ name: enc('a'.repeat(50)), value: 1 }], { salt: SALT }).kind).toBe('fat');
    expect(buildZap([{ name: enc('a'), value: { intLen: 8, ints: [1, 2] } }], { salt: SALT }).kind).toBe('fat');
    expect(buildZap([{ name: enc('a'), value: { intLen: 4, ints: [1] } }], { salt: SALT }).kind).toBe('fat');
    expect(buildZap([{ name: enc('a'), value: zapString('on') }], { salt: SALT }).kind).toBe('fat');
  });

  test('output depends only on the entry set', () => {
    const entries = numberedNames('file', 500).map((name, i) => ({ name, value: BigInt(i) << 40n }));
    const a = buildZap(entries, { salt: SALT }).blocks[0]!;
    const shuffled = [...entries];
    const r = rng(3);
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    expect(sameBytes(buildZap(shuffled, { salt: SALT }).blocks[0]!, a)).toBe(true);
    expect(sameBytes(buildZap(entries, { salt: SALT ^ 2n }).blocks[0]!, a)).toBe(false);
  });

  test('colliding names get distinct collision differentiators', { timeout: 60_000 }, () => {
    // Birthday search: 200k random names give ~75 pairs of equal 28-bit hashes.
    // (Names differing only in a few digits never collide: CRC is linear, and
    // their differences span too few bits to reach the kept 28.)
    const groups = findCollisions(SALT, randomNames(11, 200_000), 2);
    expect(groups.length).toBeGreaterThan(10);
    const pairs = groups.slice(0, 40);
    const entries: ZapEntry[] = pairs.flat().map((name, i) => ({ name, value: 1000 + i }));
    for (const g of pairs) expect(refHash(SALT, g[0]!)).toBe(refHash(SALT, g[1]!));
    const img = buildZap(entries, { salt: SALT });
    expect(img.kind).toBe('micro');
    const got = microLookupAll(img.blocks[0]!);
    for (const g of pairs) {
      const cds = g.map((n) => got.find((x) => sameBytes(x.name, n))!.cd).sort();
      expect(cds).toEqual(Array.from({ length: g.length }, (_, k) => k));
    }
    // (hash, cd) unique across the block: the key of OpenZFS's in-core tree
    const keys = new Set(got.map((x) => `${refHash(SALT, x.name)}:${x.cd}`));
    expect(keys.size).toBe(got.length);
    expectRoundTrip(img, entries);

    // cds follow name order, so the result does not depend on input order
    const rev = buildZap([...entries].reverse(), { salt: SALT });
    expect(sameBytes(rev.blocks[0]!, img.blocks[0]!)).toBe(true);

    // a block where two colliding names share cd 0 (makefs's bug) is refused
    const bad = img.blocks[0]!.slice();
    for (let off = 64; off < bad.length; off += 64) bad[off + 8] = 0;
    expect(() => decodeZap(() => bad, bad)).toThrow(/share hash/);
  });

  test('decoder rejects broken blocks', () => {
    const img = buildZap([{ name: enc('abc'), value: 1 }], { salt: SALT });
    const b = img.blocks[0]!;
    const t1 = b.slice();
    t1[0] = 2;
    expect(() => decodeZap(() => t1, t1)).toThrow(/not a ZAP/);
    const t2 = b.slice();
    t2.fill(0x41, 64 + 14, 64 + 64);
    expect(() => decodeZap(() => t2, t2)).toThrow(/NUL/);
    const t3 = b.slice(0, 500);
    expect(() => decodeZap(() => t3, t3)).toThrow(/block size/);
    const t4 = b.slice();
    t4[64 + 14 + 3] = 0x42; // extend the name: decodes as "abcB" with a fresh hash, no error
    expect(readAll({ ...img, blocks: [t4] }).entries[0]!.name).toEqual(enc('abcB'));
    const t5 = new Uint8Array(1024);
    t5.set(b);
    t5.set(b.subarray(64, 128), 128); // the same name twice
    expect(() => decodeZap(() => t5, t5)).toThrow(/share hash|twice/);
  });
});

describe('fat ZAP', () => {
  test('small fat ZAP: header, embedded table, one leaf, at fixed offsets', () => {
    const entries: ZapEntry[] = [
      { name: enc('2'), value: { intLen: 2, ints: [5, 6, 4, 12, 13, 7, 11, 0, 1, 2, 3, 8, 16, 19] } },
      { name: enc('3'), value: { intLen: 2, ints: [5, 6, 4, 12, 13, 7, 11, 0, 1, 2, 3, 8, 16, 19, 17] } },
    ];
    const img = buildZap(entries, { salt: SALT });
    expect(img.kind).toBe('fat');
    expect(img.blockSize).toBe(16384);
    expect(img.blocks.length).toBe(2);
    const h = checkFatStructure(img);
    expect(h).toMatchObject({ bs: 14, ztBlk: 0, ztNumBlks: 0, ztShift: 10, freeBlk: 2, numLeafs: 1, numEntries: 2, salt: SALT });
    for (let i = 0; i < 1024; i++) expect(u64(img.blocks[0]!, 8192 + 8 * i)).toBe(1n);
    const leaf = img.blocks[1]!;
    expect(u16(leaf, 32)).toBe(0); // prefix_len
    expect(u16(leaf, 30)).toBe(2);
    // 2 entries x (entry + 1 name chunk + 2 value chunks) = 8 chunks used of 638
    expect(u16(leaf, 28)).toBe(638 - 8);
    expect(u16(leaf, 34)).toBe(8); // free list starts right after
    for (const e of entries) {
      const got = fatLookup(img, e.name)!;
      expect(got).toBeDefined();
      expect({ intLen: got.intLen, ints: got.ints }).toEqual(norm(e.value));
    }
    // value integers are big-endian inside array chunks: 5 is 00 05
    const base = 48 + 2 * 512;
    const firstValueChunk = u16(leaf, base + 8);
    expect(Array.from(leaf.subarray(base + 24 * firstValueChunk + 1, base + 24 * firstValueChunk + 5))).toEqual([0, 5, 0, 6]);
    expectRoundTrip(img, entries);
  });

  test('leaf capacity follows ZAP_LEAF_NUMCHUNKS for several block sizes', () => {
    // (2^bs - 2 * 2^(bs-5)) / 24 - 2
    const expected: Record<number, number> = { 9: 18, 12: 158, 14: 638, 17: 5118 };
    for (const [bsText, chunks] of Object.entries(expected)) {
      const bs = Number(bsText);
      const img = buildZap([{ name: enc('k'), value: 1 }], { salt: SALT, forceFat: true, fatBlockShift: bs });
      expect(img.blockSize).toBe(1 << bs);
      const h = checkFatStructure(img);
      expect(h.ztShift).toBe(bs - 4);
      expect(u16(img.blocks[1]!, 28)).toBe(chunks - 3);
      // 512-byte blocks: 6 three-chunk entries fill a leaf, the 7th forces a split
      if (bs === 9) {
        const six = numberedNames('', 6).map((name, i) => ({ name, value: i }));
        expect(checkFatStructure(buildZap(six, { salt: SALT, forceFat: true, fatBlockShift: 9 })).numLeafs).toBe(1);
        const seven = numberedNames('', 7).map((name, i) => ({ name, value: i }));
        expect(checkFatStructure(buildZap(seven, { salt: SALT, forceFat: true, fatBlockShift: 9 })).numLeafs).toBeGreaterThan(1);
      }
    }
  });

  test('names of 1..255 bytes, string, uint16, uint32 and empty values', () => {
    const entries: ZapEntry[] = [];
    for (let len = 1; len <= 255; len++) {
      const name = new Uint8Array(len);
      for (let k = 0; k < len; k++) name[k] = 0x61 + ((len + k) % 26);
      entries.push({ name, value: BigInt(len) * 0x0101010101n });
    }
    entries.push({ name: enc('mountpoint'), value: zapString('/usr/local/very/long/path/to/somewhere/else') });
    entries.push({ name: enc('u16'), value: { intLen: 2, ints: [0xffff, 0, 0x1234] } });
    entries.push({ name: enc('u32'), value: { intLen: 4, ints: [0xffffffff, 7n] } });
    entries.push({ name: enc('u64s'), value: { intLen: 8, ints: [M64, 0n, 1n] } });
    entries.push({ name: enc('empty'), value: { intLen: 8, ints: [] } });
    entries.push({ name: enc('wide-number'), value: 2 ** 52 + 0x12345 });
    entries.push({ name: enc('wide-numbers'), value: { intLen: 8, ints: [2 ** 53 - 1, 0x1_0000_0001] } });
    entries.push({ name: enc('big'), value: { intLen: 1, ints: Array.from({ length: 8192 }, (_, k) => k & 0xff) } });
    const img = buildZap(entries, { salt: SALT });
    expect(img.kind).toBe('fat');
    checkFatStructure(img);
    for (const e of entries) {
      const got = fatLookup(img, e.name)!;
      expect(got, Buffer.from(e.name).toString()).toBeDefined();
      expect({ intLen: got.intLen, ints: got.ints }).toEqual(norm(e.value));
      if (e.name.length === 255) expect(got.nameChunks).toBe(13);
    }
    expect(fatLookup(img, enc('absent'))).toBeUndefined();
    expectRoundTrip(img, entries);
    const mp = readAll(img).entries.find((e) => sameBytes(e.name, enc('mountpoint')))!;
    expect(Buffer.from(mp.value.ints.map(Number)).toString()).toBe('/usr/local/very/long/path/to/somewhere/else\0');
  });

  test('colliding names in a fat ZAP: distinct cds, chains sorted by cd', () => {
    // ~C(n,3)/2^56 triples: about 4 expected from 1.2M random names (fixed seed, so stable)
    const triples = findCollisions(SALT, randomNames(12, 1_200_000), 3);
    expect(triples.length).toBeGreaterThan(0);
    const pairs = findCollisions(SALT, randomNames(13, 200_000), 2).slice(0, 30);
    const groups = [triples[0]!, ...pairs];
    const entries: ZapEntry[] = groups.flat().map((name, i) => ({ name, value: { intLen: 4, ints: [i] } }));
    const img = buildZap(entries, { salt: SALT, fatBlockShift: 9 });
    const h = checkFatStructure(img);
    expect(h.numLeafs).toBeGreaterThan(1);
    for (const g of groups) {
      const cds = g.map((n) => fatLookup(img, n)!.cd).sort();
      expect(cds).toEqual(Array.from({ length: g.length }, (_, k) => k));
    }
    // every chain is in ascending cd order, as zap_leaf_rehash_entry() keeps it
    const base = 48 + 2 * 16;
    for (let blk = 1; blk <= h.numLeafs; blk++) {
      const leaf = img.blocks[blk]!;
      for (let s = 0; s < 16; s++) {
        let last = -1;
        for (let c = u16(leaf, 48 + 2 * s); c !== 0xffff; c = u16(leaf, base + 24 * c + 2)) {
          const cd = u32(leaf, base + 24 * c + 12);
          expect(cd).toBeGreaterThanOrEqual(last);
          last = cd;
        }
      }
    }
    expectRoundTrip(img, entries);

    // giving the cd-1 name of a collision cd 0 makes (hash, cd) ambiguous
    const victim = fatLookup(img, groups[1]!.find((n) => fatLookup(img, n)!.cd === 1)!)!;
    const blocks = img.blocks.map((b) => b.slice());
    const leaf = blocks[victim.blk]!;
    for (let c = 0; c < 18; c++) {
      const o = base + 24 * c;
      if (leaf[o] === 252 && u32(leaf, o + 12) === 1) leaf.fill(0, o + 12, o + 16);
    }
    expect(() => decodeZap((i) => blocks[i]!, blocks[0]!)).toThrow(/share hash and cd/);
  }, 120_000);

  test('50,000-entry directory: adaptive split, round trip', () => {
    const names = [...new Map(randomNames(5, 50_100).map((n) => [Buffer.from(n).toString('latin1'), n])).values()].slice(0, 50_000);
    expect(names.length).toBe(50_000);
    const entries = names.map((name, i) => ({ name, value: (8n << 60n) | BigInt(i + 100) }));
    const img = buildZap(entries, { salt: SALT });
    const h = checkFatStructure(img);
    // 50k entries of 3 chunks need over 235 leaves of 638 chunks; random hashes fill
    // some depth-8 prefixes past capacity, so depths vary
    expect(h.numLeafs).toBeGreaterThan(235);
    expect(h.prefixLens.size).toBeGreaterThan(1);
    for (let i = 0; i < names.length; i += 37) {
      const got = fatLookup(img, names[i]!)!;
      expect(got.ints).toEqual([(8n << 60n) | BigInt(i + 100)]);
    }
    expectRoundTrip(img, entries);
  }, 120_000);

  test('block by block (zapSourceFromPacked) gives the blocks of the whole image, pointer table blocks too', () => {
    const entries: ZapEntry[] = Array.from({ length: 3000 }, (_, i) => ({ name: enc(`entry-${i}`), value: i }));
    for (const opts of [{ salt: SALT }, { salt: SALT, fatBlockShift: 9 }, { salt: SALT, forceFat: true }]) {
      const whole = buildZap(entries, opts);
      const src = zapSourceFromPacked(() => packEntries(entries, SALT, ZAP_MAXNAMELEN - 1), opts);
      expect([src.kind, src.blockSize, src.count]).toEqual([whole.kind, whole.blockSize, whole.blocks.length]);
      for (let b = 0; b < src.count; b++) {
        const block = new Uint8Array(src.blockSize);
        src.encodeBlock(b, block);
        expect(Buffer.from(block).equals(whole.blocks[b]!)).toBe(true);
      }
      expect(() => src.encodeBlock(src.count, new Uint8Array(src.blockSize))).toThrow(RangeError);
    }
    // (fatBlockShift 9: a 32-slot embedded table, so 3,000 entries need blocks of their own for it)
    expect(checkFatStructure(buildZap(entries, { salt: SALT, fatBlockShift: 9 })).ztNumBlks).toBeGreaterThan(0);
  });

  test('large and small directories packed in turn (scratch grown, then let go) give the blocks buildZap gives', () => {
    const big = (tag: string): ZapEntry[] => Array.from({ length: 20_000 }, (_, i) => ({ name: enc(`${tag}-a-rather-long-entry-name-${i}`), value: i }));
    const small: ZapEntry[] = Array.from({ length: 30 }, (_, i) => ({ name: enc(`small-${i}`), value: i + 7 }));
    // (past SCRATCH_KEEP: 20k names of ~30 bytes, and 20 bytes of numbers per entry)
    for (const entries of [big('x'), small, big('y'), big('z'), small]) {
      const whole = buildZap(entries, { salt: SALT });
      const src = zapSourceFromPacked(() => packEntries(entries, SALT, ZAP_MAXNAMELEN - 1), { salt: SALT });
      expect(src.count).toBe(whole.blocks.length);
      for (let b = 0; b < src.count; b++) {
        const block = new Uint8Array(src.blockSize);
        src.encodeBlock(b, block);
        expect(Buffer.from(block).equals(whole.blocks[b]!)).toBe(true);
      }
    }
  }, 120_000);

  test('300,000-entry directory: external pointer table after the leaves', () => {
    const names = numberedNames('f', 300_000);
    const entries = names.map((name, i) => ({ name, value: i + 1 }));
    const img = buildZap(entries, { salt: SALT });
    const h = checkFatStructure(img);
    expect(h.ztNumBlks).toBeGreaterThan(0);
    expect(h.ztShift).toBeGreaterThan(10);
    // the stale embedded half is left zero
    expect(img.blocks[0]!.subarray(8192).every((x) => x === 0)).toBe(true);
    for (let i = 0; i < names.length; i += 101) expect(fatLookup(img, names[i]!)!.ints).toEqual([BigInt(i + 1)]);
    const d = readAll(img);
    expect(d.entries.length).toBe(300_000);
    expect(d.fat!.unusedBlocks).toEqual([]);
    // cursor order: ascending hash
    for (let k = 1; k < d.entries.length; k += 1) {
      if (d.entries[k - 1]!.hash > d.entries[k]!.hash) throw new Error('entries not in hash order');
    }
    const seen = new Set<number>();
    for (const e of d.entries) seen.add(Number(e.value.ints[0]!));
    expect(seen.size).toBe(300_000);
  }, 180_000);

  test('deterministic across input order', () => {
    const names = numberedNames('d', 5000);
    const entries = names.map((name, i) => ({ name, value: i }));
    const a = buildZap(entries, { salt: SALT });
    const b = buildZap([...entries].reverse(), { salt: SALT });
    expect(a.blocks.length).toBe(b.blocks.length);
    a.blocks.forEach((blk, i) => expect(sameBytes(blk, b.blocks[i]!)).toBe(true));
  });

  test('input validation', () => {
    const one = (value: ZapEntry['value'], name = enc('n')) => () => buildZap([{ name, value }], { salt: SALT });
    expect(one(1, enc('x'.repeat(255)))).not.toThrow();
    expect(one(1, enc('x'.repeat(256)))).toThrow(/256 bytes/);
    expect(one(1, new Uint8Array(0))).toThrow(/empty/);
    expect(one(1, Uint8Array.of(0x61, 0, 0x62))).toThrow(/NUL/);
    expect(one(-1)).toThrow();
    expect(one(2 ** 53)).toThrow();
    expect(one(1n << 64n)).toThrow();
    expect(one({ intLen: 2, ints: [65536] })).toThrow();
    expect(one({ intLen: 3 as 2, ints: [1] })).toThrow(/intLen/);
    expect(one({ intLen: 1, ints: new Array(8193).fill(0) })).toThrow(/ZAP_MAXVALUELEN/);
    expect(() => buildZap([{ name: enc('v'), value: { intLen: 8, ints: new Array(50).fill(1) } }], { salt: SALT, fatBlockShift: 9 })).toThrow(
      /chunks/,
    );
    expect(() => buildZap([{ name: enc('a'), value: 1 }, { name: enc('a'), value: 2 }], { salt: SALT })).toThrow(/duplicate/);
    expect(() => buildZap([], { salt: 0n })).toThrow(/salt/);
    expect(() => buildZap([], { salt: SALT, fatBlockShift: 18 })).toThrow();
    expect(() => buildZap([], { salt: SALT, normflags: 1 as 0 })).toThrow();
    // empty fat ZAP: header + one empty leaf, as fzap_upgrade() leaves it
    const empty = buildZap([], { salt: SALT, forceFat: true });
    expect(checkFatStructure(empty)).toMatchObject({ numLeafs: 1, freeBlk: 2, numEntries: 0 });
    expect(readAll(empty).entries).toEqual([]);
  });

  describe('decoder rejects inconsistencies', () => {
    const entries = numberedNames('entry', 3000).map((name, i) => ({ name, value: i }));
    const img = buildZap(entries, { salt: SALT });
    const h = fatHeader(img);
    const bsize = img.blockSize;
    const base = 48 + 2 * 512;
    const firstEntryChunk = (leaf: Uint8Array): number => {
      for (let s = 0; s < 512; s++) if (u16(leaf, 48 + 2 * s) !== 0xffff) return u16(leaf, 48 + 2 * s);
      throw new Error('empty leaf');
    };
    const mutate = (blk: number, f: (b: Uint8Array, dv: DataView) => void) => {
      const blocks = img.blocks.map((b) => b.slice());
      f(blocks[blk]!, new DataView(blocks[blk]!.buffer));
      return () => decodeZap((i) => blocks[i]!, blocks[0]!);
    };
    test('untouched copy decodes', () => {
      expect(h.numLeafs).toBeGreaterThan(4);
      expect(mutate(1, () => {})().entries.length).toBe(3000);
    });
    test('header', () => {
      expect(mutate(0, (b) => (b[8] ^= 1))).toThrow(/magic/);
      expect(mutate(0, (_b, dv) => dv.setUint32(72, 2999, true))).toThrow(/zap_num_entries/);
      expect(mutate(0, (_b, dv) => dv.setUint32(64, h.numLeafs + 1, true))).toThrow(/zap_num_leafs/);
      expect(mutate(0, (_b, dv) => dv.setUint32(32, 11, true))).toThrow(/zt_shift/);
      expect(mutate(0, (_b, dv) => dv.setUint32(96, 1, true))).toThrow(/zap_flags/);
    });
    test('pointer table', () => {
      expect(mutate(0, (_b, dv) => dv.setUint32(bsize / 2, 0, true))).toThrow(/outside/);
      expect(mutate(0, (_b, dv) => dv.setUint32(bsize / 2 + 8 * 1023, 1, true))).toThrow(/pointer|prefix/);
    });
    test('leaf header and chunks', () => {
      expect(mutate(1, (b) => (b[24] ^= 1))).toThrow(/lh_magic/);
      expect(mutate(1, (b) => (b[0] = 1))).toThrow(/ZBT_LEAF/);
      expect(mutate(1, (_b, dv) => dv.setUint16(28, dv.getUint16(28, true) - 1, true))).toThrow(/lh_nfree/);
      expect(mutate(1, (_b, dv) => dv.setUint16(30, dv.getUint16(30, true) + 1, true))).toThrow(/lh_nentries/);
      expect(mutate(1, (b, dv) => dv.setUint16(base + 24 * firstEntryChunk(b) + 4, 700, true))).toThrow(/out of range/);
      expect(mutate(1, (b) => (b[base + 24 * firstEntryChunk(b) + 16 + 4] ^= 0x10))).toThrow(/slot|prefix|hash/);
      // change a name byte: the stored hash no longer matches
      expect(mutate(1, (b, dv) => (b[base + 24 * dv.getUint16(base + 24 * firstEntryChunk(b) + 4, true) + 1] ^= 1))).toThrow(
        /stored hash/,
      );
      // point the value at the entry's own name chunk: shared chunk
      expect(
        mutate(1, (b, dv) => {
          const c = firstEntryChunk(b);
          dv.setUint16(base + 24 * c + 8, dv.getUint16(base + 24 * c + 4, true), true);
        }),
      ).toThrow(/already in use/);
      // an orphaned chunk: drop the free list head without fixing nfree
      expect(mutate(1, (_b, dv) => dv.setUint16(34, dv.getUint16(base + 24 * dv.getUint16(34, true) + 22, true), true))).toThrow(
        /lh_nfree|neither free/,
      );
      // a second entry chunk sharing the first one's arrays
      expect(
        mutate(1, (b, dv) => {
          const c = firstEntryChunk(b);
          const slot = (() => {
            for (let s = 0; s < 512; s++) if (dv.getUint16(48 + 2 * s, true) === c) return s;
            return -1;
          })();
          const f = dv.getUint16(34, true);
          dv.setUint16(34, dv.getUint16(base + 24 * f + 22, true), true);
          dv.setUint16(28, dv.getUint16(28, true) - 1, true);
          b.copyWithin(base + 24 * f, base + 24 * c, base + 24 * c + 24);
          dv.setUint16(base + 24 * f + 2, c, true);
          dv.setUint16(48 + 2 * slot, f, true);
          dv.setUint16(30, dv.getUint16(30, true) + 1, true);
        }),
      ).toThrow(/already in use/);
    });
  });
});
