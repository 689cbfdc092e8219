import { sha256 } from '@noble/hashes/sha2.js';

// Every GUID and ZAP salt is derived from the seed text and a label naming
// its consumer ("pool", "vdev", "zap-salt:<objset>:<object>", ...), not drawn
// from a sequence: adding a consumer never shifts the others, so images only
// change where the structure changed.
const utf8 = new TextEncoder();
const LOW_63 = (1n << 63n) - 1n;

export class SeedSource {
  /** text: the seed as given (-o seed=...). */
  constructor(readonly text: string) {}

  /** A non-zero 64-bit value; bit 63 is cleared (GUIDs are printed signed by some tools). */
  derive(label: string): bigint {
    // (one per directory: the ZAP salts)
    for (let i = 0; ; i++) {
      const h = sha256(utf8.encode(`tsmakefs\0${this.text}\0${label}\0${i}`));
      const v = new DataView(h.buffer, h.byteOffset, 8).getBigUint64(0, false) & LOW_63;
      if (v !== 0n) return v;
    }
  }
}
