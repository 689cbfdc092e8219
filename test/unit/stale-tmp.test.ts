// A build killed with SIGKILL leaves its temporary image (nothing can
// catch that signal): the next build of the same image removes it, and
// only it (vdev/imagefile.ts, removeStaleTemps).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { buildImage } from '../../src/index.js';
import { removeStaleTemps, STALE_TMP_MS, tmpPathFor } from '../../src/vdev/imagefile.js';

const tmp = mkdtempSync(join(tmpdir(), 'tsmakefs-stale-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The pid of a process that has exited (and was reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

/** A file at `path` last written `ageMs` ago. */
function oldFile(path: string, ageMs: number): void {
  writeFileSync(path, 'x');
  const t = (Date.now() - ageMs) / 1000;
  utimesSync(path, t, t);
}

test('only a dead build\'s temporary image of the same target, unwritten for a while, is removed', () => {
  const dir = join(tmp, 'unit');
  mkdirSync(dir);
  const img = join(dir, 'disk.img');
  const dead = deadPid();
  const stale = tmpPathFor(img, dead);
  const fresh = tmpPathFor(join(dir, 'fresh.img'), dead);
  const live = tmpPathFor(img, process.ppid);
  const other = tmpPathFor(join(dir, 'other.img'), dead);
  const odd = join(dir, `.disk.img.tsmakefs-0${dead}.tmp`);
  for (const p of [stale, live, other, odd]) oldFile(p, 2 * STALE_TMP_MS);
  oldFile(fresh, STALE_TMP_MS / 2);
  expect(removeStaleTemps(img)).toEqual([stale]);
  expect(existsSync(stale)).toBe(false);
  // a process that still runs (the test runner's parent), another image, a name we would not write
  for (const p of [live, other, odd]) expect(existsSync(p)).toBe(true);
  // written a moment ago: maybe a build of another PID namespace
  expect(removeStaleTemps(join(dir, 'fresh.img'))).toEqual([]);
  expect(existsSync(fresh)).toBe(true);
  expect(removeStaleTemps(join(dir, 'fresh.img'), Date.now() + STALE_TMP_MS)).toEqual([fresh]);
  // a directory that cannot be read: nothing to do
  expect(removeStaleTemps(join(tmp, 'absent', 'disk.img'))).toEqual([]);
});

test('a build removes what a killed build of the same image left', async () => {
  const stage = join(tmp, 'stage');
  mkdirSync(stage);
  writeFileSync(join(stage, 'f'), 'data\n');
  const out = join(tmp, 'build');
  mkdirSync(out);
  const img = join(out, 'disk.img');
  const left = tmpPathFor(img, deadPid());
  oldFile(left, 2 * STALE_TMP_MS);
  await buildImage({ image: img, inputs: [stage], poolName: 'stale', size: '64m', timestamp: 0, workers: 0 });
  expect(existsSync(img)).toBe(true);
  expect(existsSync(left)).toBe(false);
});
