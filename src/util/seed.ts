import { sha256 } from '@noble/hashes/sha2.js';

// Every GUID and ZAP salt is derived from the seed text and a label naming
// its consumer ("pool", "vdev", "zap-salt:<objset>:<object>", ...), not drawn
// from a sequence: adding a consumer never shifts the others, so images only
// change where the structure changed.
export class SeedSource {
  constructor(private readonly seed: string) {}

  /** A non-zero 64-bit value; bit 63 is cleared (GUIDs are printed signed by some tools). */
  derive(label: string): bigint {
    const enc = new TextEncoder();
    for (let i = 0; ; i++) {
      const h = sha256(enc.encode(`tsmakefs\0${this.seed}\0${label}\0${i}`));
      let v = 0n;
      for (let b = 0; b < 8; b++) v = (v << 8n) | BigInt(h[b]!);
      v &= (1n << 63n) - 1n;
      if (v !== 0n) return v;
    }
  }
}
