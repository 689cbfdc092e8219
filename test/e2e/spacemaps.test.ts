// Space maps with histograms. With spacemap_histogram enabled (every feature
// set but legacy) OpenZFS gives each space map a 320-byte header holding a
// histogram of the metaslab's free segments, counts it in the feature's
// refcount, and picks metaslabs by that histogram before loading them. A
// histogram-less header makes the import queue the metaslab for an upgrade,
// which made the 2.3 kernel oops on pools of more than 64 metaslabs.
//
// The judges: zdb loads every space map, builds its own histogram from the
// entries and prints it beside the stored one, which must be the same;
// zdb-check.sh verifies the feature's refcount against the space maps; the
// kernel imports, scrubs and writes to a pool of 127 metaslabs.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { buildImage, describeBuild, TmpArea } from '../helpers/build.js';
import { run } from '../helpers/proc.js';
import { diffListings, listingOf, vmCheck, zdbCheck, zdbMetaslabs, zdbSpaceMapHeaders } from '../helpers/oracles.js';
import { Prng, stampTimes, writeLargeFile } from '../helpers/trees.js';

const tmp = new TmpArea('spacemaps');
afterAll(() => tmp.cleanup());
const MIB = 2 ** 20;

/**
 * A tarball whose first copies of some members are replaced by later ones of
 * the same path, with members that stay in between: tsmakefs frees the first
 * copies' blocks, which leaves free segments of many sizes between allocated
 * ones, over several 16 MiB metaslabs. Returns the tarball and the staged
 * tree it extracts to.
 */
async function replacingTarball(): Promise<{ tarball: string; final: string }> {
  const old = tmp.dir('old');
  const final = tmp.dir('final');
  const replaced = ['big', ...Array.from({ length: 12 }, (_, i) => `s${String(i).padStart(2, '0')}`)];
  writeLargeFile(join(old, 'big'), 20 * MIB + 4096, 'old big');
  writeLargeFile(join(final, 'big'), 5 * MIB, 'new big');
  const kept: string[] = [];
  for (let i = 0; i < 12; i++) {
    const name = replaced[i + 1]!;
    writeFileSync(join(old, name), new Prng(`old ${name}`).bytes(3000 * 2 ** i));
    writeFileSync(join(final, name), new Prng(`new ${name}`).bytes(1000 + 777 * i));
    writeFileSync(join(final, `${name}k`), new Prng(`${name}k`).bytes(10_000 + i));
    kept.push(`${name}k`);
  }
  mkdirSync(join(final, 'd'));
  for (let i = 0; i < 12; i++) writeFileSync(join(final, 'd', `f${i}`), new Prng(`f${i}`).bytes(50_000 * (i + 1)));
  writeLargeFile(join(final, 'tail'), 30 * MIB, 'tail');
  stampTimes(final);
  const tarball = join(tmp.dir('tar'), 'replacing.tar');
  const tar = async (args: string[]) => {
    const r = await run('tar', ['--format=pax', '--numeric-owner', ...args]);
    if (r.status !== 0) throw new Error(`tar ${args.join(' ')}:\n${r.output}`);
  };
  // first the root, the old copies and the kept files, interleaved ...
  const first = ['-C', final, '--no-recursion', '.'];
  for (const name of [...replaced, ...kept].sort()) first.push('-C', kept.includes(name) ? final : old, `./${name}`);
  await tar(['-cf', tarball, ...first]);
  // ... then the new copies and the rest
  await tar(['-rf', tarball, '-C', final, ...replaced.map((n) => `./${n}`), './tail', '--recursion', './d']);
  return { tarball, final };
}

const fmt = (h: Map<number, number> | undefined) => (h ? [...h].map(([b, n]) => `2^${b}: ${n}`).join(', ') : 'none');

describe('space map histograms', () => {
  test('match zdb\'s own count of free segments on 127 metaslabs, and the kernel imports, scrubs and writes', async ({ signal }) => {
    const { tarball, final } = await replacingTarball();
    const img = join(tmp.dir('img'), 'sm.img');
    const b = await buildImage(['-t', 'zfs', '-s', '2g', '-o', 'poolname=smh,mssize=16m', img, tarball]);
    expect(b.status, describeBuild(b)).toBe(0);

    const z = await zdbCheck(img, { pool: 'smh', signal, outputs: true });
    expect(z.ok, z.output).toBe(true);

    const ms = zdbMetaslabs(z.outputs!.spacemaps);
    expect(ms.length).toBe(127);
    const mapped = ms.filter((m) => m.spacemap !== 0);
    // the data spans several metaslabs, and the replaced members left gaps
    expect(mapped.length).toBeGreaterThanOrEqual(4);
    const segments = (m: (typeof ms)[number]) => [...m.inMemory.values()].reduce((a, n) => a + n, 0);
    expect(Math.max(...mapped.map(segments)), 'most free segments in one metaslab').toBeGreaterThanOrEqual(5);
    for (const m of mapped) {
      expect(fmt(m.onDisk), `metaslab ${m.id} (space map ${m.spacemap}): stored histogram against zdb's`).toBe(fmt(m.inMemory));
    }
    const headers = zdbSpaceMapHeaders(z.outputs!.objects);
    expect([...headers.keys()].sort((x, y) => x - y)).toEqual(mapped.map((m) => m.spacemap).sort((x, y) => x - y));
    expect(new Set(headers.values())).toEqual(new Set([320]));

    const v = await vmCheck(img, { pool: 'smh', listingRoot: '/smh', outDir: tmp.dir('vm'), timeoutSec: 240, signal });
    expect(v.ok, `check-image.sh ${img} (results in ${v.outDir}):\n${v.output}`).toBe(true);
    expect(v.result).toMatch(/ writetest=PASS /);
    expect(diffListings(await listingOf(final), v.listing)).toBe('');
  }, 10 * 60_000);

  test('stay out of the legacy feature set: 24-byte headers, no histogram', async ({ signal }) => {
    const stage = tmp.dir('small');
    writeLargeFile(join(stage, 'f'), 3 * MIB, 'f');
    stampTimes(stage);
    const img = join(tmp.dir('legacy'), 'l.img');
    const b = await buildImage(['-t', 'zfs', '-s', '1g', '-o', 'poolname=sml,compatibility=legacy', img, stage]);
    expect(b.status, describeBuild(b)).toBe(0);
    const z = await zdbCheck(img, { pool: 'sml', signal, outputs: true });
    expect(z.ok, z.output).toBe(true);
    const ms = zdbMetaslabs(z.outputs!.spacemaps);
    const mapped = ms.filter((m) => m.spacemap !== 0);
    expect(mapped.length).toBeGreaterThan(0);
    for (const m of ms) expect(m.onDisk, `metaslab ${m.id}`).toBeUndefined();
    const headers = zdbSpaceMapHeaders(z.outputs!.objects);
    expect(headers.size).toBe(mapped.length);
    expect(new Set(headers.values())).toEqual(new Set([24]));
  }, 5 * 60_000);
});
