// A ZPL directory's ZAP, built by the ZPL writer as it reaches the
// directory: entries (name, type, object number) packed straight from the
// tree, with no object per entry, then encoded a block at a time.
//
// (The command line's main thread once built these ahead of the writer.
// Once large files were copied by the image writer on that same thread
// through the objects pass, that saved no time on any tree measured and
// cost memory: 3-8 MB of the minbase's peak RSS, 3-4 MB of /usr's on Node
// 20 and 22; bench/RESULTS.md, twenty-ninth round.)

import type { Inode, NodeType } from '../input/tree.js';
import type { SeedSource } from '../util/seed.js';
import { buildZap, type ZapEntry } from '../zap/index.js';
import { packDirEntries, type DirEntryFill } from '../zap/packed.js';
import { ZAP_MAXNAMELEN } from '../zap/types.js';
import { zapSourceFromPacked, type ZapBlockSource } from '../zap/zap.js';

/** Directory entry types (DT_* of <dirent.h>), the top 4 bits of a ZPL directory entry's value. */
const DT: Record<NodeType, number> = {
  fifo: 1, chardev: 2, dir: 4, blockdev: 6, file: 8, symlink: 10, socket: 12,
};

/** A ZPL directory's entry: its name, and the type and object number of what it names. */
export function dirEntries(ino: Inode): ZapEntry[] {
  return ino.entries!.map((e) => ({ name: e.name, value: (BigInt(DT[e.inode.type]) << 60n) | BigInt(objidOf(e)) }));
}

/**
 * An entry's object number. The ZPL writer numbers every inode before it
 * writes a directory; a library caller's tree that skipped that would
 * otherwise get entries naming object 0 (packed) or a bare TypeError.
 */
function objidOf(e: { name: Uint8Array; inode: Inode }): number {
  const id = e.inode.objid;
  if (id === undefined) throw new Error(`directory entry ${Buffer.from(e.name).toString()} has no object number`);
  return id;
}

// A salt only has to differ from ZAP to ZAP and be the same from build to
// build: one SHA-256 per dataset, then the object number mixed in
// (splitmix64's finalizer, a bijection of 64 bits). A SHA-256 per directory
// took ~13 us each in the writer's pass over the objects, which runs alone
// (~0.2 s on /usr).
const M64 = (1n << 64n) - 1n;
const LOW_63 = (1n << 63n) - 1n;
let salts: { seed: string; dataset: string; base: bigint } | undefined;

/** The salt of a dataset's ZAP object (every ZAP of a ZPL object set draws it so): non-zero, bit 63 clear. */
export function zapSalt(seed: SeedSource, dataset: string, objid: number): bigint {
  if (salts === undefined || salts.seed !== seed.text || salts.dataset !== dataset) {
    salts = { seed: seed.text, dataset, base: seed.derive(`zap-salts:${dataset}`) };
  }
  let x = (salts.base + BigInt(objid) * 0x9e3779b97f4a7c15n) & M64;
  x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & M64;
  x = (x ^ (x >> 31n)) & LOW_63;
  return x === 0n ? 1n : x;
}

/** Put the entries of `dir` where packDirEntries asks (see DirEntryFill). */
function putEntries(dir: Inode, names: Buffer, nameOff: Uint32Array, types: Uint8Array, objects: Float64Array): void {
  const entries = dir.entries!;
  let at = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const ino = e.inode;
    types[i] = DT[ino.type];
    objects[i] = ino.objid ?? objidOf(e);
    // the walk's names go in as the latin1 strings they are kept as, not as a Buffer each
    const s = e.latin1Name;
    at += s !== undefined ? names.write(s, at, 'latin1') : copyName(e.name, names, at);
    nameOff[i + 1] = at;
  }
}

/**
 * A directory's ZAP as blocks to be encoded one at a time: from its entries
 * packed with no object per entry, and never all its leaves at once
 * (/usr/share/man/man1's 17,880 entries were ~10 MB at the peak built
 * whole). Entries the packed path refuses go through buildZap, so its error
 * is the one reported.
 */
export function dirZapSource(dir: Inode, salt: bigint): ZapBlockSource {
  const entries = dir.entries!;
  let nameBytes = 0;
  let longest = 0;
  for (const e of entries) {
    const len = e.latin1Name?.length ?? e.name.length;
    nameBytes += len;
    if (len > longest) longest = len;
  }
  if (longest <= ZAP_MAXNAMELEN) {
    const fill: DirEntryFill = (names, nameOff, types, objects) => putEntries(dir, names, nameOff, types, objects);
    try {
      return zapSourceFromPacked(() => packDirEntries(entries.length, nameBytes, fill, salt, ZAP_MAXNAMELEN - 1), { salt });
    } catch {
      // (met again below, as buildZap words it)
    }
  }
  const img = buildZap(dirEntries(dir), { salt });
  return {
    kind: img.kind, blockSize: img.blockSize, count: img.blocks.length, numEntries: img.numEntries,
    encodeBlock: (b, into) => into.set(img.blocks[b]!),
  };
}

function copyName(name: Uint8Array, buf: Uint8Array, at: number): number {
  buf.set(name, at);
  return name.length;
}
