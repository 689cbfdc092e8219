// An InputContext that keeps each file's data in memory: which files were
// written, under which path (relative to the tree's root), with what bytes.

import type { InputContext } from '../../src/image.js';
import type { HeldFiles } from '../../src/input/held-files.js';
import { Prewriter } from '../../src/input/prewrite.js';
import type { Inode } from '../../src/input/tree.js';

export function memoryContext(): { ctx: InputContext; got: Array<[path: string, data: string]> } {
  const got: Array<[string, string]> = [];
  const ctx: InputContext = {
    beginFile(size, path) {
      const parts: Buffer[] = [];
      return {
        write: (c) => void parts.push(Buffer.from(c)),
        end: () => {
          const data = Buffer.concat(parts, size);
          got.push([path!, data.toString('latin1')]);
          return { kind: 'bytes', data };
        },
      };
    },
    discard() {},
  };
  return { ctx, got };
}

/**
 * Every file of a walked tree written into a memoryContext in tree order,
 * through the descriptors `held` has for them; what is still held is
 * closed afterwards, whether or not a read failed.
 */
export function prewriteHeld(root: Inode, held: HeldFiles): Array<[path: string, data: string]> {
  const { ctx, got } = memoryContext();
  const w = new Prewriter(root, ctx, { complete: true, held });
  try {
    w.finish();
  } finally {
    w.close();
    held.closeAll();
  }
  return got;
}
