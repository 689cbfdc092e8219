// The meta object set under construction: object numbers are handed out in
// creation order, ZAPs and small objects are written as they are made, and
// the dnodes stay in memory (the MOS is small) until the very end.
import { type ZapEntry } from '../zap/index.js';
import { writeZapObject } from '../dmu/zapobject.js';
import { Dnode, newDnode } from '../dmu/dnode.js';
import { SeedSource } from '../util/seed.js';
import { ZioWriter } from '../zio/writer.js';

const enc = new TextEncoder();
export const zname = (s: string): Uint8Array => enc.encode(s);

export class ObjectStore {
  readonly dnodes = new Map<number, Dnode>();
  private next = 1;

  constructor(readonly zio: ZioWriter, readonly seed: SeedSource, readonly label: string) {}

  alloc(): number {
    return this.next++;
  }

  get count(): number {
    return this.next;
  }

  put(objid: number, dn: Dnode): void {
    this.dnodes.set(objid, dn);
  }

  /** Build and write a ZAP object (micro or fat, as its entries require). */
  zap(objid: number, type: number, entries: ZapEntry[], bonustype = 0, bonus?: Uint8Array): void {
    this.put(objid, writeZapObject(this.zio, type, entries, this.seed.derive(`zap-salt:${this.label}:${objid}`), { bonustype, bonus }));
  }

  newZap(type: number, entries: ZapEntry[], bonustype = 0, bonus?: Uint8Array): number {
    const id = this.alloc();
    this.zap(id, type, entries, bonustype, bonus);
    return id;
  }

  /** An object with a bonus buffer and no data (DSL dirs, datasets, bpobjs). */
  bonusObject(objid: number, type: number, datablksz: number, bonustype: number, bonus: Uint8Array): void {
    this.put(objid, newDnode(type, datablksz, bonustype, bonus));
  }
}

/** Key of a clones / next-clones ZAP entry: the object number in lowercase hex (zap_add_int). */
export function intKey(obj: number): Uint8Array {
  return zname(obj.toString(16));
}
