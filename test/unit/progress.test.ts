// The progress line (src/cli/progress.ts) and the end-of-build summary
// (src/cli/summary.ts): formatting with a fake clock and terminal, when the
// line is drawn at all, and what main() prints with -v and --json.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { BuildProgress, BuildSummary } from '../../src/build.js';
import { main } from '../../src/cli/main.js';
import { clock, formatProgress, ProgressLine, progressWanted } from '../../src/cli/progress.js';
import { compressRatio, formatSummary, formatSummaryJson, summaryJson } from '../../src/cli/summary.js';

const MIB = 2 ** 20;
const total = { entries: 120, files: 100, bytes: 400 * MIB };
const p = (over: Partial<BuildProgress>): BuildProgress => ({ phase: 'data', files: 0, bytes: 0, written: 0, ...over });

describe('when the progress line is drawn', () => {
  test.each([
    [{ isTTY: true, quiet: false, env: {} }, true],
    [{ isTTY: false, quiet: false, env: {} }, false],
    [{ isTTY: true, quiet: true, env: {} }, false],
    [{ isTTY: true, quiet: false, env: { CI: 'true' } }, false],
    [{ isTTY: true, quiet: false, env: { CI: '1' } }, false],
    [{ isTTY: true, quiet: false, env: { CI: 'false' } }, true],
    [{ isTTY: true, quiet: false, env: { CI: '' } }, true],
  ])('%o -> %s', (o, want) => {
    expect(progressWanted(o)).toBe(want);
  });
});

describe('formatProgress', () => {
  test('clock', () => {
    expect([clock(0), clock(9.6), clock(65), clock(3600 + 61), clock(-3)]).toEqual(['0:00', '0:10', '1:05', '1:01:01', '0:00']);
  });

  test('reading the input', () => {
    expect(formatProgress(p({ phase: 'scan' }), 3200, 0)).toBe('tsmakefs: reading the input  0:03');
  });

  test('data with a known total: done of total, percent, rate, ETA, elapsed', () => {
    const line = formatProgress(p({ files: 25, bytes: 100 * MIB, total }), 12_000, 10_000);
    expect(line).toBe('tsmakefs: 25/100 files  100 MiB/400 MiB 25%  10 MiB/s  ETA 0:30  0:12');
  });

  test('no rate or ETA in the first second of data', () => {
    expect(formatProgress(p({ files: 1, bytes: MIB, total }), 900, 500)).toBe('tsmakefs: 1/100 files  1.0 MiB/400 MiB 0%  0:01');
  });

  test('a tarball: no total, so no percent or ETA', () => {
    expect(formatProgress(p({ files: 7, bytes: 30 * MIB }), 3000, 3000)).toBe('tsmakefs: 7 files  30 MiB  10 MiB/s  0:03');
  });

  test('metadata', () => {
    expect(formatProgress(p({ phase: 'metadata', files: 100, bytes: 400 * MIB, total }), 61_000, 60_000))
      .toBe('tsmakefs: 100/100 files  400 MiB/400 MiB 100%  writing metadata  1:01');
  });

  test('cut to the terminal width', () => {
    const line = formatProgress(p({ files: 25, bytes: 100 * MIB, total }), 12_000, 10_000, 30);
    expect(line).toBe('tsmakefs: 25/100 files  100 Mi');
  });
});

describe('ProgressLine', () => {
  let out: string;
  let now: number;
  const make = (columns = 80): ProgressLine => new ProgressLine((t) => { out += t; }, { now: () => now, columns: () => columns });
  beforeEach(() => {
    out = '';
    now = 0;
  });

  test('redraws in place, at most every 100 ms, and clears at the end', () => {
    const line = make();
    line.update(p({ phase: 'scan' }));
    expect(out).toBe('\rtsmakefs: reading the input  0:00');
    out = '';
    now = 50;
    line.update(p({ files: 1, bytes: MIB, total })); // a new phase: drawn at once
    expect(out).toBe('\rtsmakefs: 1/100 files  1.0 MiB/400 MiB 0%  0:00');
    out = '';
    now = 100;
    line.update(p({ files: 2, bytes: 2 * MIB, total })); // 50 ms later: not drawn
    expect(out).toBe('');
    now = 200;
    line.update(p({ files: 3, bytes: 3 * MIB, total }));
    expect(out).toBe('\rtsmakefs: 3/100 files  3.0 MiB/400 MiB 0%  0:00');
    out = '';
    line.update(p({ phase: 'done', files: 100, bytes: 400 * MIB, total }));
    const width = 'tsmakefs: 3/100 files  3.0 MiB/400 MiB 0%  0:00'.length;
    expect(out).toBe(`\r${' '.repeat(width)}\r`);
  });

  test('a shorter line blanks the rest of the longer one', () => {
    const line = make();
    const long = 'tsmakefs: 25/100 files  100 MiB/400 MiB 25%  0:00';
    const short = 'tsmakefs: 25 files  100 MiB  0:00';
    line.update(p({ files: 25, bytes: 100 * MIB, total }));
    expect(out).toBe(`\r${long}`);
    out = '';
    now = 200;
    line.update(p({ files: 25, bytes: 100 * MIB }));
    expect(out).toBe(`\r${short}${' '.repeat(long.length - short.length)}`);
  });

  test('clear() before a warning, then drawn again; done() leaves nothing', () => {
    const line = make();
    line.update(p({ phase: 'scan' }));
    line.clear();
    expect(out.endsWith(`\r${' '.repeat('tsmakefs: reading the input  0:00'.length)}\r`)).toBe(true);
    out = '';
    now = 10;
    line.update(p({ phase: 'scan' }));
    expect(out).toBe('\rtsmakefs: reading the input  0:00');
    out = '';
    line.done();
    line.done();
    expect(out).toBe(`\r${' '.repeat('tsmakefs: reading the input  0:00'.length)}\r`);
  });

  test('never the last column of the terminal', () => {
    const line = make(40);
    line.update(p({ files: 25, bytes: 100 * MIB, total }));
    expect(out.length - 1).toBe(39);
  });
});

// ---------------------------------------------------------------- summary

const SUMMARY: BuildSummary = {
  image: 'disk.img', poolName: 'zroot', poolGuid: '123456789', imageSize: 1024 * MIB, vdevAsize: 1016 * MIB,
  metaslabs: 8, metaslabSize: 127 * MIB, allocated: 254 * MIB, available: 634 * MIB,
  datasets: [
    { name: 'zroot', mountpoint: 'none', objects: 6, entries: 1, files: 0, directories: 1, dataBytes: 0, used: 48 * 1024, lsize: 64 * 1024, psize: 64 * 1024 },
    { name: 'zroot/ROOT/default', mountpoint: '/', objects: 1205, entries: 1200, files: 1000, directories: 150, dataBytes: 500 * MIB, used: 250 * MIB, lsize: 504 * MIB, psize: 252 * MIB },
  ],
  input: { entries: 1201, files: 1000, bytes: 500 * MIB },
  elapsedMs: 4321,
};

describe('the summary', () => {
  test('compressRatio', () => {
    expect([compressRatio(300, 100), compressRatio(100, 300), compressRatio(0, 0), compressRatio(1000, 333)]).toEqual([3, 0.33, 1, 3]);
  });

  test('-v: a few aligned lines and a dataset table', () => {
    expect(formatSummary(SUMMARY)).toBe([
      'image        disk.img, 1.0 GiB, 8 metaslabs of 127 MiB',
      'pool         zroot, guid 123456789',
      'allocated    254 MiB of 1016 MiB (25%), 762 MiB free, 634 MiB available',
      'data         1000 files, 500 MiB',
      'compression  2.00x (504 MiB logical, 252 MiB physical)',
      'elapsed      4.3 s',
      '',
      'DATASET             MOUNTPOINT     USED  ENTRIES  FILES    BYTES  RATIO',
      'zroot               none         48 KiB        1      0      0 B  1.00x',
      'zroot/ROOT/default  /           250 MiB     1200   1000  500 MiB  2.00x',
      '',
    ].join('\n'));
  });

  test('--json: one line, one object, sizes in bytes', () => {
    const text = formatSummaryJson(SUMMARY);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.trimEnd()).not.toContain('\n');
    const j = JSON.parse(text);
    expect(j).toEqual(summaryJson(SUMMARY));
    expect(j).toMatchObject({
      image: 'disk.img', pool: 'zroot', poolGuid: '123456789', size: 1024 * MIB, capacity: 1016 * MIB,
      allocated: 254 * MIB, free: 762 * MIB, available: 634 * MIB, metaslabs: 8, metaslabSize: 127 * MIB,
      logicalBytes: 504 * MIB + 64 * 1024, physicalBytes: 252 * MIB + 64 * 1024, compressRatio: 2,
      input: { entries: 1201, files: 1000, bytes: 500 * MIB }, elapsedSeconds: 4.321,
    });
    expect(j.datasets[1]).toEqual({
      name: 'zroot/ROOT/default', mountpoint: '/', used: 250 * MIB, entries: 1200, files: 1000, directories: 150,
      bytes: 500 * MIB, logicalBytes: 504 * MIB, physicalBytes: 252 * MIB, compressRatio: 2,
    });
  });
});

// ---------------------------------------------------------------- through main()

describe('main(): progress, -v and --json', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tsmakefs-progress-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const stage = join(tmp, 'stage');
  mkdirSync(join(stage, 'd'), { recursive: true });
  writeFileSync(join(stage, 'd', 'f'), 'x'.repeat(5000));

  const saved = { CI: process.env.CI, W: process.env.TSMAKEFS_WORKERS };
  beforeEach(() => {
    delete process.env.CI;
    process.env.TSMAKEFS_WORKERS = '0'; // the compression worker exists only compiled
  });
  afterEach(() => {
    for (const [k, v] of [['CI', saved.CI], ['TSMAKEFS_WORKERS', saved.W]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  async function run(argv: string[], tty: boolean): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await main(argv, { stdout: (t) => { out += t; }, stderr: (t) => { err += t; }, stderrIsTTY: tty, columns: () => 100 });
    return { code, out, err };
  }

  test('a terminal gets the line, redrawn and cleared; the summary follows', async () => {
    const r = await run(['-v', '-s', '64m', '-o', 'poolname=prog', join(tmp, 'a.img'), stage], true);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/^\rtsmakefs: reading the input {2}\d:\d\d\r/);
    // the data is read while the directory is walked: counts first, the totals once the walk is done
    expect(r.err).toContain('\rtsmakefs: 0 files  4.9 KiB');
    expect(r.err).toContain('\rtsmakefs: 1/1 files  4.9 KiB/4.9 KiB 100%');
    // ends erased: carriage return, blanks, carriage return
    expect(r.err).toMatch(/\r +\r$/);
    expect(r.out).toMatch(/^image {8}.*a\.img, 64 MiB/);
    expect(r.out).toMatch(/^prog {2}/m);
  });

  test('no terminal, CI=true or -q: not a byte on stderr', async () => {
    expect((await run(['-s', '64m', '-o', 'poolname=prog', join(tmp, 'b.img'), stage], false)).err).toBe('');
    expect((await run(['-q', '-s', '64m', '-o', 'poolname=prog', join(tmp, 'c.img'), stage], true)).err).toBe('');
    process.env.CI = 'true';
    expect((await run(['-s', '64m', '-o', 'poolname=prog', join(tmp, 'd.img'), stage], true)).err).toBe('');
  });

  test('--json prints one object on stdout (and not the -v text)', async () => {
    const r = await run(['--json', '-v', '-s', '64m', '-o', 'poolname=prog', join(tmp, 'e.img'), stage], false);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ image: join(tmp, 'e.img'), pool: 'prog', size: 64 * MIB, input: { entries: 3, files: 1, bytes: 5000 } });
    expect(j.datasets).toHaveLength(1);
    expect(j.datasets[0]).toMatchObject({ name: 'prog', mountpoint: '/prog', entries: 3, files: 1, directories: 2, bytes: 5000 });
    expect(j.compressRatio).toBeGreaterThan(1);
    expect(j.elapsedSeconds).toBeGreaterThan(0);
  });
});
