// This process's open file descriptors (Linux: /proc/self/fd), for tests
// that check a build or a reader leaves none behind.

import { readdirSync } from 'node:fs';

export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/**
 * The count once it is down to `want` or `ms` have gone by: some
 * descriptors close asynchronously (a file stream's on the thread pool
 * after the reader is done with it; getfattr's pipes and the writer
 * thread's after a build), so a count taken at once can still see them.
 * A descriptor leaked stays, and fails the test.
 */
export async function settledFds(want: number, ms = 500): Promise<number> {
  for (let i = 0; i < ms / 10 && fdCount() > want; i++) await new Promise((r) => setTimeout(r, 10));
  return fdCount();
}
