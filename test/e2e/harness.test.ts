// The harness judged on its own, without tsmakefs: every oracle is installed
// and says no to something that is not a pool (so a broken oracle cannot
// pass every image), the tree generators give the same listing every time,
// and listing diffs read well.

import { closeSync, ftruncateSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, test } from 'vitest';
import { TmpArea } from '../helpers/build.js';
import { diffListings, grubCmp, listingOf, runCheckImage, vmCheck, zdbCheck } from '../helpers/oracles.js';
import { TREES, type TreeName } from '../helpers/trees.js';

const MIN = 60_000;
const tmp = new TmpArea('harness');
afterAll(() => tmp.cleanup());

/** A sparse all-zero file of `bytes`: no pool on it. */
function zeroImage(bytes: number): string {
  const path = join(tmp.dir('zeros'), 'zeros.img');
  const fd = openSync(path, 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
  return path;
}

describe.concurrent('each oracle rejects a file that holds no pool', () => {
  test('zdb-check.sh', async ({ expect, signal }) => {
    const v = await zdbCheck(zeroImage(64 * 2 ** 20), { signal });
    expect(v.ok, v.output).toBe(false);
    expect(v.output).toMatch(/FAIL\s+labels/);
  }, 5 * MIN);

  test('grub-fstest', async ({ expect }) => {
    const img = zeroImage(64 * 2 ** 20);
    const v = await grubCmp(img, '/anything', img);
    expect(v.ok, v.output).toBe(false);
  }, 5 * MIN);

  test('check-image.sh (the OpenZFS kernel in qemu)', async ({ expect, signal }) => {
    const v = await vmCheck(zeroImage(64 * 2 ** 20), { outDir: tmp.dir('vm-zeros'), timeoutSec: 240, signal });
    expect(v.status, v.output).toBe(1);
    expect(v.result, v.output).toMatch(/import=FAIL/);
  }, 5 * MIN);
});

describe.concurrent('tree generators', () => {
  // All but the three that cost the most to make twice (130 MiB of data;
  // 50,000 and 40,000 files), whose contents are a plain function of an
  // index anyway.
  const names = (Object.keys(TREES) as TreeName[]).filter((n) => n !== 'big' && n !== 'many' && n !== 'wide');
  for (const name of names) {
    test(`${name}: two generations list identically`, async ({ expect }) => {
      const a = tmp.dir(`${name}-a`);
      const b = tmp.dir(`${name}-b`);
      TREES[name](a);
      TREES[name](b);
      const [la, lb] = await Promise.all([listingOf(a), listingOf(b)]);
      expect(la.startsWith('# ztree-listing v1\n/ type=dir mode=0755 uid=0 gid=0 ')).toBe(true);
      expect(diffListings(la, lb)).toBe('');
    }, 5 * MIN);
  }
});

describe('diffListings', () => {
  const head = '# ztree-listing v1\n';
  const base = [
    '/ type=dir mode=0755 uid=0 gid=0 nlink=3 time=1',
    '/a type=file mode=0644 uid=0 gid=0 nlink=1 size=1 time=2 sha256=aa',
    '/b type=dir mode=0755 uid=0 gid=0 nlink=2 time=3',
  ];
  test('is empty for equal listings', ({ expect }) => {
    expect(diffListings(head + base.join('\n'), head + base.join('\n'))).toBe('');
  });
  test('names missing, extra and changed entries and the fields that differ', ({ expect }) => {
    const other = [
      '/ type=dir mode=0755 uid=0 gid=0 nlink=3 time=1',
      '/a type=file mode=0600 uid=0 gid=0 nlink=1 size=1 time=9 sha256=aa',
      '/c type=link mode=0777 uid=0 gid=0 nlink=1 size=1 time=4 link=x',
    ];
    const d = diffListings(head + base.join('\n'), head + other.join('\n'));
    expect(d).toContain('1 missing, 1 extra, 1 changed');
    expect(d).toContain('- missing  /b type=dir');
    expect(d).toContain('+ extra    /c type=link');
    expect(d).toContain('~ changed  /a  mode: 0644 -> 0600, time: 2 -> 9');
  });
  test('keeps long differences short', ({ expect }) => {
    const many = Array.from({ length: 100 }, (_, i) => `/f${i} type=file mode=0644 uid=0 gid=0 nlink=1 size=0 time=1`);
    const d = diffListings(head + base[0], head + [base[0], ...many].join('\n'), 10);
    expect(d.split('\n').length).toBeLessThanOrEqual(12);
    expect(d).toContain('... and 90 more');
  });
});

describe('a guest that fails to boot', () => {
  // A stand-in for check-image.sh: it counts its runs, writes the console
  // given for each, says how qemu ended (`qemuRc`) as the real one does,
  // and exits 3 (the real one's "guest died").
  const fake = (consoles: string[], qemuRc = 0): { script: string; runs: string; out: string } => {
    const dir = tmp.dir('fake-guest');
    const out = join(dir, 'out');
    const runs = join(dir, 'runs');
    const script = join(dir, 'check-image.sh');
    writeFileSync(script, [
      'n=$(( $(cat "$RUNS" 2>/dev/null || echo 0) + 1 )); echo $n > "$RUNS"',
      'mkdir -p "$OUT"',
      ...consoles.map((c, i) => `[ $n = ${i + 1} ] && printf '%s\\n' ${JSON.stringify(c)} > "$OUT/console.log"`),
      `echo "check-image: verdict:  guest died without finishing (qemu rc=${qemuRc}; see $OUT/console.log)" >&2`,
      'exit 3', '',
    ].join('\n'));
    return { script, runs, out };
  };
  const runFake = (f: { script: string; runs: string; out: string }): ReturnType<typeof runCheckImage> =>
    runCheckImage([f.script], f.out, { timeoutMs: 30_000, env: { ...process.env, RUNS: f.runs, OUT: f.out } });
  const PANIC = "[    0.000000] Kernel panic - not syncing: IO-APIC + timer doesn't work!";

  test('is booted once more when its kernel panicked before the guest started', async ({ expect }) => {
    const f = fake([PANIC, PANIC]);
    const r = await runFake(f);
    expect(r.status).toBe(3);
    expect(readFileSync(f.runs, 'utf8').trim()).toBe('2');
  });

  test('is booted once more when the emulator crashed before the guest printed a line', async ({ expect }) => {
    const f = fake(['', ''], 139);
    const r = await runFake(f);
    expect(r.status).toBe(3);
    expect(readFileSync(f.runs, 'utf8').trim()).toBe('2');
  });

  test('but not when qemu was killed by the timeout, nor when the guest died on its own', async ({ expect }) => {
    for (const rc of [137, 0]) {
      const f = fake([''], rc);
      const r = await runFake(f);
      expect(r.status).toBe(3);
      expect(readFileSync(f.runs, 'utf8').trim()).toBe('1');
    }
  });

  test('nor when the emulator crashed after the guest was up', async ({ expect }) => {
    const f = fake(['[zvm 2.43] kernel up; loading modules'], 139);
    const r = await runFake(f);
    expect(r.status).toBe(3);
    expect(readFileSync(f.runs, 'utf8').trim()).toBe('1');
  });

  test('but not when the guest was up: that failure is the verdict', async ({ expect }) => {
    const f = fake([`[zvm 2.43] kernel up; loading modules\n${PANIC}`]);
    const r = await runFake(f);
    expect(r.status).toBe(3);
    expect(readFileSync(f.runs, 'utf8').trim()).toBe('1');
  });
});
