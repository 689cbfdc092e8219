// A ZAP as a DMU object: build its blocks (micro or fat, as the entries
// need) and write them as one object. Every ZAP in the MOS and in the ZPL
// object sets goes through here.
import { buildZap, type ZapEntry } from '../zap/index.js';
import type { ZapBlockSource } from '../zap/zap.js';
import { ZioWriter } from '../zio/writer.js';
import { Dnode, newDnode } from './dnode.js';
import { levelsFor, ObjectWriter, writeObject } from './object.js';

export interface ZapObjectOptions {
  bonustype?: number;
  bonus?: Uint8Array;
  /** Block pointers in the dnode (default: as many as the bonus leaves room for). */
  nblkptr?: number;
}

export function writeZapObject(zio: ZioWriter, type: number, entries: ZapEntry[], salt: bigint, opts: ZapObjectOptions = {}): Dnode {
  return writeZapBlocks(zio, type, buildZap(entries, { salt }), opts);
}

/** Write a ZAP object whose blocks are built already (every block blockSize bytes, block id order). */
function writeZapBlocks(zio: ZioWriter, type: number, img: { blockSize: number; blocks: Uint8Array[] }, opts: ZapObjectOptions = {}): Dnode {
  const dn = newDnode(type, img.blockSize, opts.bonustype ?? 0, opts.bonus ?? new Uint8Array(0), opts.nblkptr);
  return writeObject(zio, dn, img.blocks);
}

// One block for every ZAP written from a source: its bytes are taken (compressed
// or copied into the image writer's ring) before push() returns.
let scratch = new Uint8Array(0);

/** Write a ZAP object block by block from `src`, holding one block at a time. */
export function writeZapSource(zio: ZioWriter, type: number, src: ZapBlockSource, opts: ZapObjectOptions = {}): Dnode {
  const dn = newDnode(type, src.blockSize, opts.bonustype ?? 0, opts.bonus ?? new Uint8Array(0), opts.nblkptr);
  const w = new ObjectWriter(zio, dn, levelsFor(src.count, dn.nblkptr));
  if (scratch.length < src.blockSize) scratch = new Uint8Array(src.blockSize);
  const block = scratch.subarray(0, src.blockSize);
  for (let b = 0; b < src.count; b++) {
    block.fill(0);
    src.encodeBlock(b, block);
    w.push(block);
  }
  return w.finish();
}
