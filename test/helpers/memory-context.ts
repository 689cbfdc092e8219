// An InputContext that keeps each file's data in memory: which files were
// written, under which path (relative to the tree's root), with what bytes.

import type { InputContext } from '../../src/image.js';

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
