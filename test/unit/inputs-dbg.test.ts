import { test } from 'vitest';
import { walkDirectories } from '/work/main/src/input/walk.js';
import { prewriteData } from '/work/main/src/input/prewrite.js';
test('x', () => {
  const root = walkDirectories(['/tmp/sm/s']);
  const seen: number[] = [];
  prewriteData(root, { beginFile: (n) => { seen.push(n); return { write() {}, end: () => ({ kind: 'bytes', data: new Uint8Array(0) }) }; }, discard() {} });
  console.log(seen);
});
