import { test, expect } from 'vitest';
import { CompressPool } from '../../src/zio/compress-pool.js';
test('pool', async () => {
  const p = new CompressPool(2);
  const r = p.compressAll([new Uint8Array(4096).fill(7)], 15);
  console.log(r[0]?.length);
  p.close();
});
