// A ZAP as a DMU object: build its blocks (micro or fat, as the entries
// need) and write them as one object. Every ZAP in the MOS and in the ZPL
// object sets goes through here.
import { buildZap, type ZapEntry } from '../zap/index.js';
import { ZioWriter } from '../zio/writer.js';
import { Dnode, newDnode } from './dnode.js';
import { writeObject } from './object.js';

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
export function writeZapBlocks(zio: ZioWriter, type: number, img: { blockSize: number; blocks: Uint8Array[] }, opts: ZapObjectOptions = {}): Dnode {
  const dn = newDnode(type, img.blockSize, opts.bonustype ?? 0, opts.bonus ?? new Uint8Array(0), opts.nblkptr);
  return writeObject(zio, dn, img.blocks);
}
