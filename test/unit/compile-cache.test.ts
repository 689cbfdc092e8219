// Where bin/tsmakefs keeps Node's compile cache: the user's cache directory,
// never a shared fixed name, and never a hang or a stray directory.
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { userCompileCacheDir } from '../../src/cli/compile-cache.js';

const tmp = mkdtempSync(join(tmpdir(), 'tsmakefs-cc-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('userCompileCacheDir', () => {
  test('XDG_CACHE_HOME/tsmakefs/node-compile-cache, made private', () => {
    const xdg = join(tmp, 'xdg');
    const dir = userCompileCacheDir({ XDG_CACHE_HOME: xdg });
    expect(dir).toBe(join(xdg, 'tsmakefs', 'node-compile-cache'));
    expect(statSync(dir!).mode & 0o777).toBe(0o700);
    expect(statSync(join(xdg, 'tsmakefs')).mode & 0o777).toBe(0o700);
    // and again, now that it exists
    expect(userCompileCacheDir({ XDG_CACHE_HOME: xdg })).toBe(dir);
  });

  test('~/.cache when XDG_CACHE_HOME is unset or relative (the XDG rule)', () => {
    const home = join(tmp, 'home');
    // a home that does not exist: nothing is made, no cache
    expect(userCompileCacheDir({ HOME: home })).toBeUndefined();
    expect(existsSync(home)).toBe(false);
    mkdirSync(home);
    expect(userCompileCacheDir({ HOME: home, XDG_CACHE_HOME: 'relative' })).toBe(join(home, '.cache', 'tsmakefs', 'node-compile-cache'));
    expect(existsSync('relative')).toBe(false);
  });

  test('none where no directory can be made, without spinning (a recursive mkdir under /proc never returns)', () => {
    expect(userCompileCacheDir({ XDG_CACHE_HOME: '/proc/tsmakefs-no-such/x' })).toBeUndefined();
    writeFileSync(join(tmp, 'file'), '');
    expect(userCompileCacheDir({ XDG_CACHE_HOME: join(tmp, 'file', 'x') })).toBeUndefined();
  }, 5_000);
});
