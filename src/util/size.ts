// Size expressions as makefs(8) takes them (NetBSD's strsuftoll): a decimal
// number with an optional suffix, or a product of such numbers joined by
// 'x' (or '*', kept by makefs for old scripts), e.g. "4g", "2x4k", "8b".
// Unlike strsuftoll the suffixes are case-insensitive: "4G" meaning anything
// but 4 GiB would only surprise people.

import { UserError } from './errors.js';

const MULTIPLIER: Record<string, bigint> = {
  '': 1n,
  b: 512n, // one disk block
  k: 1n << 10n,
  m: 1n << 20n,
  g: 1n << 30n,
  t: 1n << 40n,
  w: 4n, // sizeof(int) on every platform makefs runs on
};

const FACTOR = /^\s*(\d+)([bkmgtw]?)$/i;

// Sizes end up as JS numbers; beyond 2^53 they would silently lose bytes.
const LIMIT = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Parse a makefs size expression into bytes. `what` names the value in
 * errors ("-s", "-o mssize"). Range checks are the caller's; zero is legal
 * here.
 */
export function parseSize(text: string, what: string): number {
  const factors = text.split(/[xX*]/);
  let product = 1n;
  for (const f of factors) {
    const m = FACTOR.exec(f);
    if (m === null) {
      throw new UserError(
        `${what}: invalid size '${text}' (expected a number with an optional suffix b, k, m, g, t or w, or a product such as 2x4k)`,
      );
    }
    product *= BigInt(m[1]!) * MULTIPLIER[m[2]!.toLowerCase()]!;
    if (product > LIMIT) throw new UserError(`${what}: size '${text}' is too large`);
  }
  return Number(product);
}

/** Render a byte count the way a user would type it back ("64m", "1536k", "1000"). */
export function formatSize(bytes: number): string {
  for (const [suffix, mult] of [['t', 2 ** 40], ['g', 2 ** 30], ['m', 2 ** 20], ['k', 2 ** 10]] as const) {
    if (bytes >= mult && bytes % mult === 0) return `${bytes / mult}${suffix}`;
  }
  return String(bytes);
}
