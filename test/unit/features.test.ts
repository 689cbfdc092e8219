import { describe, expect, it } from 'vitest';
import {
  COMPATIBILITY,
  FEATURES,
  addDatasetUsage,
  addedDeps,
  baseRefcounts,
  checkFeatureState,
  descriptionBytes,
  enableOrder,
  featureByName,
  featureZaps,
  labelFeaturesForRead,
  loaderBlockers,
  resolveFeatures,
  withDeps,
  type FeatureState,
} from '../../src/dsl/features.js';
import { UserError } from '../../src/util/errors.js';

// Expectations are written out by hand from OpenZFS 2.3 (zfeature_common.h,
// zfeature_common.c, cmd/zpool/compatibility.d), not derived from the module.

const guid = (name: string): string => {
  const f = featureByName(name);
  if (!f) throw new Error(`no feature ${name}`);
  return f.guid;
};
const names = (fs: readonly { name: string }[]): string[] => fs.map((f) => f.name);

function stateOf(setName: string): FeatureState {
  const enabled = resolveFeatures(setName);
  return { enabled, refcounts: baseRefcounts(enabled) };
}

describe('FEATURES', () => {
  it('has the 44 features of OpenZFS 2.3 in spa_feature_t order', () => {
    expect(FEATURES).toHaveLength(44);
    const at = (i: number) => FEATURES[i]!.guid;
    expect(at(0)).toBe('com.delphix:async_destroy');
    expect(at(2)).toBe('org.illumos:lz4_compress');
    expect(at(5)).toBe('com.delphix:enabled_txg');
    expect(at(6)).toBe('com.delphix:hole_birth');
    expect(at(7)).toBe('com.delphix:extensible_dataset');
    expect(at(8)).toBe('com.delphix:embedded_data');
    // enum order, not registration order: zpool_checkpoint is registered
    // right after hole_birth but is SPA_FEATURE_POOL_CHECKPOINT = 21
    expect(at(21)).toBe('com.delphix:zpool_checkpoint');
    expect(at(22)).toBe('com.delphix:spacemap_v2');
    expect(at(29)).toBe('com.delphix:log_spacemap');
    expect(at(35)).toBe('com.delphix:head_errlog');
    expect(at(38)).toBe('com.klarasystems:vdev_zaps_v2');
    expect(at(43)).toBe('com.klarasystems:large_microzap');
    expect(new Set(FEATURES.map((f) => f.guid)).size).toBe(44);
    for (const f of FEATURES) expect(f.guid.endsWith(`:${f.name}`)).toBe(true);
  });

  it('flags exactly the features OpenZFS flags', () => {
    const flagged = (p: (f: (typeof FEATURES)[number]) => boolean) => names(FEATURES.filter(p)).sort();
    expect(flagged((f) => f.activateOnEnable)).toEqual(
      ['embedded_data', 'head_errlog', 'hole_birth', 'lz4_compress', 'spacemap_v2']);
    expect(flagged((f) => f.mos)).toEqual(
      ['device_removal', 'draid', 'embedded_data', 'hole_birth', 'raidz_expansion', 'vdev_zaps_v2']);
    expect(flagged((f) => f.perDataset)).toEqual([
      'blake3', 'edonr', 'encryption', 'large_blocks', 'large_dnode', 'large_microzap', 'longname',
      'project_quota', 'redacted_datasets', 'sha512', 'skein', 'userobj_accounting', 'zilsaxattr',
      'zstd_compress',
    ]);
    expect(flagged((f) => !f.readonlyCompat)).toEqual([
      'blake3', 'bookmark_v2', 'bookmark_written', 'device_removal', 'draid', 'edonr', 'embedded_data',
      'encryption', 'extensible_dataset', 'head_errlog', 'hole_birth', 'large_blocks', 'large_dnode',
      'longname', 'lz4_compress', 'multi_vdev_crash_dump', 'raidz_expansion', 'redacted_datasets',
      'redaction_bookmarks', 'redaction_list_spill', 'sha512', 'skein', 'vdev_zaps_v2', 'zstd_compress',
    ]);
  });

  it('keeps the invariants zfeature_register asserts', () => {
    for (const f of FEATURES) {
      expect(f.mos && f.readonlyCompat).toBe(false);
      if (f.perDataset) expect(f.deps).toContain('extensible_dataset');
      for (const d of f.deps) expect(featureByName(d)).toBeDefined();
    }
  });

  it('has the dependencies and descriptions of zfeature_common.c', () => {
    expect(featureByName('hole_birth')!.deps).toEqual(['enabled_txg']);
    expect(featureByName('encryption')!.deps).toEqual(['extensible_dataset', 'bookmark_v2']);
    expect(featureByName('obsolete_counts')!.deps).toEqual(['extensible_dataset', 'device_removal']);
    expect(featureByName('large_microzap')!.deps).toEqual(['extensible_dataset', 'large_blocks']);
    expect(featureByName('log_spacemap')!.deps).toEqual(['spacemap_v2']);
    expect(featureByName('redaction_list_spill')!.deps).toEqual(['redaction_bookmarks']);
    expect(featureByName('bookmarks')!.description).toBe('"zfs bookmark" command');
    expect(featureByName('enabled_txg')!.description).toBe('Record txg at which a feature is enabled');
    expect(featureByName('project_quota')!.description).toBe('space/object accounting based on project ID.');
    expect(featureByName('bookmark_written')!.description).toBe(
      'Additional accounting, enabling the written#<bookmark> property (space written since a bookmark), ' +
      'and estimates of send stream sizes for incrementals from bookmarks.');
    expect(featureByName('vdev_zaps_v2')!.description).toBe('Support for root vdev ZAP.');
  });
});

describe('COMPATIBILITY', () => {
  it('matches the compatibility.d files', () => {
    expect(COMPATIBILITY['grub2-2.06']).toEqual([
      'async_destroy', 'empty_bpobj', 'lz4_compress', 'spacemap_histogram', 'enabled_txg', 'hole_birth',
      'embedded_data', 'zpool_checkpoint', 'spacemap_v2', 'allocation_classes', 'resilver_defer',
      'log_spacemap', 'device_rebuild', 'block_cloning',
    ]);
    expect([...COMPATIBILITY['openzfs-2.1-freebsd']!].sort()).toEqual([
      'allocation_classes', 'async_destroy', 'bookmark_v2', 'bookmark_written', 'bookmarks', 'device_rebuild',
      'device_removal', 'draid', 'embedded_data', 'empty_bpobj', 'enabled_txg', 'encryption',
      'extensible_dataset', 'filesystem_limits', 'hole_birth', 'large_blocks', 'large_dnode', 'livelist',
      'log_spacemap', 'lz4_compress', 'multi_vdev_crash_dump', 'obsolete_counts', 'project_quota',
      'redacted_datasets', 'redaction_bookmarks', 'resilver_defer', 'sha512', 'skein', 'spacemap_histogram',
      'spacemap_v2', 'userobj_accounting', 'zpool_checkpoint', 'zstd_compress',
    ]);
    expect([...COMPATIBILITY['zol-0.6.1']!]).toEqual(['async_destroy', 'empty_bpobj', 'lz4_compress']);
    expect(COMPATIBILITY['compat-2021']).toHaveLength(18);
    // the openzfs-2.3 file names all 44 features; openzfs-2.2 lacks the five 2.3 added
    expect(COMPATIBILITY['openzfs-2.3']).toEqual(names(FEATURES));
    expect(names(FEATURES).filter((n) => !COMPATIBILITY['openzfs-2.2']!.includes(n)).sort()).toEqual(
      ['fast_dedup', 'large_microzap', 'longname', 'raidz_expansion', 'redaction_list_spill']);
  });

  it('has the installed aliases and the legacy keyword', () => {
    expect(COMPATIBILITY.grub2).toEqual(COMPATIBILITY['grub2-2.12']);
    expect(COMPATIBILITY['freebsd-13.2']).toEqual(COMPATIBILITY['openzfs-2.1-freebsd']);
    expect(COMPATIBILITY['ubuntu-22.04']).toEqual(COMPATIBILITY['openzfs-2.1-linux']);
    expect(COMPATIBILITY['freenas-11.1']).toEqual(COMPATIBILITY['freebsd-11.0']);
    expect(COMPATIBILITY.legacy).toEqual([]);
  });

  it('every set names known features and is closed under dependencies', () => {
    for (const [set, list] of Object.entries(COMPATIBILITY)) {
      expect(withDeps(list), set).toEqual([...list]);
    }
  });
});

describe('withDeps / resolveFeatures', () => {
  it('closes over dependencies in table order', () => {
    expect(withDeps(['hole_birth'])).toEqual(['enabled_txg', 'hole_birth']);
    expect(withDeps(['redaction_list_spill'])).toEqual(
      ['extensible_dataset', 'bookmarks', 'bookmark_v2', 'redaction_bookmarks', 'redaction_list_spill']);
    expect(withDeps(['encryption', 'lz4_compress'])).toEqual(
      ['lz4_compress', 'extensible_dataset', 'bookmarks', 'encryption', 'bookmark_v2']);
    expect(withDeps(['large_microzap'])).toEqual(['extensible_dataset', 'large_blocks', 'large_microzap']);
    expect(addedDeps(['log_spacemap', 'lz4_compress'])).toEqual(['spacemap_v2']);
    expect(addedDeps(['lz4_compress'])).toEqual([]);
  });

  it('rejects unknown feature names', () => {
    expect(() => withDeps(['lz4'])).toThrow(UserError);
    expect(() => withDeps(['lz4'])).toThrow(/'lz4'.*lz4_compress/);
  });

  it('resolves keywords, names and intersections', () => {
    expect(resolveFeatures('legacy')).toEqual([]);
    expect(resolveFeatures('off')).toHaveLength(44);
    expect(resolveFeatures('')).toHaveLength(44);
    expect(names(resolveFeatures('zol-0.6.1'))).toEqual(['async_destroy', 'empty_bpobj', 'lz4_compress']);
    expect(names(resolveFeatures('grub2-2.06, zol-0.6.4'))).toEqual([
      'async_destroy', 'empty_bpobj', 'lz4_compress', 'spacemap_histogram', 'enabled_txg', 'hole_birth',
      'embedded_data',
    ]);
  });

  it('names the known sets when the name is unknown', () => {
    expect(() => resolveFeatures('grub3')).toThrow(UserError);
    expect(() => resolveFeatures('grub3')).toThrow(/'grub3'.*grub2-2\.06.*legacy.*openzfs-2\.3/);
    expect(() => resolveFeatures('grub2,nope')).toThrow(/'nope'/);
    expect(() => resolveFeatures(',')).toThrow(UserError);
  });
});

describe('refcounts and feature ZAPs', () => {
  it('enables dependencies before the feature, in enum order otherwise', () => {
    const order = names(enableOrder(resolveFeatures('openzfs-2.0-freebsd')));
    expect(order.indexOf('bookmark_v2')).toBeLessThan(order.indexOf('encryption'));
    expect(order.indexOf('encryption')).toBeLessThan(order.indexOf('project_quota'));
    expect(order.slice(0, 6)).toEqual(
      ['async_destroy', 'empty_bpobj', 'lz4_compress', 'multi_vdev_crash_dump', 'spacemap_histogram', 'enabled_txg']);
  });

  it('activates on enable and counts feature_enabled_txg entries (grub2-2.06)', () => {
    const s = stateOf('grub2-2.06');
    expect(Object.fromEntries(s.refcounts)).toEqual({
      [guid('async_destroy')]: 0, [guid('empty_bpobj')]: 0, [guid('lz4_compress')]: 1,
      [guid('spacemap_histogram')]: 0,
      // enabled_txg, hole_birth, embedded_data, zpool_checkpoint, spacemap_v2,
      // allocation_classes, resilver_defer, log_spacemap, device_rebuild, block_cloning
      [guid('enabled_txg')]: 10,
      [guid('hole_birth')]: 1, [guid('embedded_data')]: 1, [guid('zpool_checkpoint')]: 0,
      [guid('spacemap_v2')]: 1, [guid('allocation_classes')]: 0, [guid('resilver_defer')]: 0,
      [guid('log_spacemap')]: 0, [guid('device_rebuild')]: 0, [guid('block_cloning')]: 0,
    });
    const z = featureZaps(s, 4);
    expect(z.forRead).toEqual([[guid('lz4_compress'), 1], [guid('hole_birth'), 1], [guid('embedded_data'), 1]]);
    expect(z.forWrite).toHaveLength(11);
    expect(z.forWrite).toContainEqual([guid('enabled_txg'), 10]);
    expect(z.forWrite).toContainEqual([guid('spacemap_v2'), 1]);
    expect(z.descriptions).toHaveLength(14);
    expect(z.descriptions).toContainEqual([guid('hole_birth'), 'Retain hole birth txg for more precise zfs send']);
    expect(z.enabledTxg!.map(([g]) => g)).toEqual([
      'com.delphix:enabled_txg', 'com.delphix:hole_birth', 'com.delphix:embedded_data',
      'com.delphix:zpool_checkpoint', 'com.delphix:spacemap_v2', 'org.zfsonlinux:allocation_classes',
      'com.datto:resilver_defer', 'com.delphix:log_spacemap', 'org.openzfs:device_rebuild',
      'com.fudosecurity:block_cloning',
    ]);
    expect(z.enabledTxg!.every(([, t]) => t === 4)).toBe(true);
  });

  it('all features: 39 enabled_txg entries, head_errlog active', () => {
    const s = stateOf('off');
    expect(s.refcounts.get(guid('enabled_txg'))).toBe(39);
    expect(s.refcounts.get(guid('head_errlog'))).toBe(1);
    expect(s.refcounts.get(guid('vdev_zaps_v2'))).toBe(0);
    const z = featureZaps(s, 7);
    expect(z.forRead).toHaveLength(24);
    expect(z.forWrite).toHaveLength(20);
    expect(z.enabledTxg).toHaveLength(39);
  });

  it('has no enabled_txg ZAP without enabled_txg', () => {
    const s = stateOf('zol-0.6.1');
    const z = featureZaps(s, 4);
    expect(z.enabledTxg).toBeUndefined();
    expect(z.forRead).toEqual([[guid('lz4_compress'), 1]]);
    expect(z.forWrite).toEqual([[guid('async_destroy'), 0], [guid('empty_bpobj'), 0]]);
    expect(featureZaps({ enabled: [], refcounts: new Map() }, 4)).toEqual({ forRead: [], forWrite: [], descriptions: [] });
  });

  it('stores descriptions NUL-terminated', () => {
    const b = descriptionBytes('"zfs bookmark" command');
    expect(b.length).toBe(23);
    expect(b[0]).toBe(0x22);
    expect(b[22]).toBe(0);
  });

  it('counts datasets for per-dataset features and zapified datasets for extensible_dataset', () => {
    const s = stateOf('openzfs-2.1-freebsd');
    // head dataset, its snapshot, a child without per-dataset features
    addDatasetUsage(s.refcounts, s.enabled, [['large_blocks', 'large_dnode'], ['large_blocks'], []]);
    expect(s.refcounts.get(guid('large_blocks'))).toBe(2);
    expect(s.refcounts.get(guid('large_dnode'))).toBe(1);
    expect(s.refcounts.get(guid('extensible_dataset'))).toBe(2);
    expect(() => checkFeatureState(s)).not.toThrow();
    expect(() => addDatasetUsage(s.refcounts, s.enabled, [['blake3']])).toThrow(/not enabled/);
    expect(() => addDatasetUsage(s.refcounts, s.enabled, [['lz4_compress']])).toThrow(/not a per-dataset/);
  });

  it('rejects states OpenZFS cannot produce', () => {
    const hb = featureByName('hole_birth')!;
    expect(() => checkFeatureState({ enabled: [hb], refcounts: new Map([[hb.guid, 1]]) })).toThrow(/dependency enabled_txg/);

    const s = stateOf('zol-0.6.4');
    s.refcounts.set(guid('lz4_compress'), 0);
    expect(() => featureZaps(s, 4)).toThrow(/activate-on-enable/);

    const t = stateOf('zol-0.6.4');
    t.refcounts.set(guid('enabled_txg'), 1);
    expect(() => featureZaps(t, 4)).toThrow(/feature_enabled_txg entries/);

    const u = stateOf('zol-0.6.4');
    u.refcounts.set(guid('large_blocks'), 1);
    expect(() => featureZaps(u, 4)).toThrow(/not enabled/);

    const v = stateOf('zol-0.6.5');
    v.refcounts.set(guid('large_blocks'), 1);
    expect(() => checkFeatureState(v)).toThrow(/zapified/);
  });
});

describe('label features_for_read', () => {
  it('lists the active MOS features only', () => {
    expect(labelFeaturesForRead(stateOf('grub2-2.06'))).toEqual(['com.delphix:hole_birth', 'com.delphix:embedded_data']);
    // lz4_compress and head_errlog are active and needed for reading, but not MOS features
    const all = stateOf('off');
    expect(labelFeaturesForRead(all)).toEqual(['com.delphix:hole_birth', 'com.delphix:embedded_data']);
    all.refcounts.set(guid('vdev_zaps_v2'), 1);
    expect(labelFeaturesForRead(all)).toEqual(
      ['com.delphix:hole_birth', 'com.delphix:embedded_data', 'com.klarasystems:vdev_zaps_v2']);
    expect(labelFeaturesForRead(stateOf('zol-0.6.1'))).toEqual([]);
  });
});

describe('boot loaders', () => {
  it('grub2-2.06 boots with every loader', () => {
    for (const l of ['grub-2.06', 'grub-2.12', 'freebsd-loader']) expect(loaderBlockers(stateOf('grub2-2.06'), l)).toEqual([]);
  });

  it('reports active features a loader lacks', () => {
    expect(loaderBlockers(stateOf('off'), 'grub-2.06')).toEqual(['head_errlog is active']);
    expect(loaderBlockers(stateOf('off'), 'freebsd-loader')).toEqual([]);
    expect(loaderBlockers(stateOf('off'), 'grub-2.14')).toEqual([]);
    const s = stateOf('grub2-2.12');
    addDatasetUsage(s.refcounts, s.enabled, [['large_blocks']]);
    expect(loaderBlockers(s, 'grub-2.12')).toEqual([]);
    expect(loaderBlockers(s, 'grub-2.06')).toEqual(['extensible_dataset is active (zapified DSL objects)']);
    expect(() => loaderBlockers(s, 'lilo')).toThrow(UserError);
  });
});
