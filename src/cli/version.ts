// The version printed by --version is package.json's, read at run time so a
// release bump cannot forget a second copy. The path holds both for the
// compiled dist/cli/ and for src/cli/ under the test runner.

import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
