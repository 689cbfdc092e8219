// Pool feature flags: what OpenZFS 2.3 knows about each feature, the named
// feature sets `zpool create -o compatibility=...` accepts, and the rules that
// decide what goes in the MOS feature ZAPs and in the label. Pure data and
// logic; writing the ZAPs and the label is the caller's job.
//
// Sources (OpenZFS 2.3): include/zfeature_common.h (order), module/zcommon/
// zfeature_common.c (guids, flags, dependencies, descriptions), module/zfs/
// zfeature.c (enabling and refcounts), module/zfs/spa.c + spa_misc.c (the
// label's features_for_read), cmd/zpool/compatibility.d + cmd/zpool/
// Makefile.am (named sets and their aliases), lib/libzfs (set keywords).
import { UserError } from '../util/errors.js';

export interface FeatureInfo {
  /** On-disk identifier, e.g. 'org.illumos:lz4_compress'. */
  guid: string;
  /** User-facing short name, e.g. 'lz4_compress'. */
  name: string;
  /** ZFEATURE_FLAG_READONLY_COMPAT: lives in features_for_write, not features_for_read. */
  readonlyCompat: boolean;
  /** ZFEATURE_FLAG_MOS: while active it is listed in the label's features_for_read. */
  mos: boolean;
  /** ZFEATURE_FLAG_PER_DATASET: refcount = datasets that have it in their ZAP. */
  perDataset: boolean;
  /** ZFEATURE_FLAG_ACTIVATE_ON_ENABLE: refcount starts at 1 when enabled. */
  activateOnEnable: boolean;
  /** Short names of the features it depends on, in OpenZFS's fi_depends order. */
  deps: string[];
  /** OpenZFS's fi_desc, the value stored in feature_descriptions. */
  description: string;
}

const RO = 1; // ZFEATURE_FLAG_READONLY_COMPAT
const MOS = 2; // ZFEATURE_FLAG_MOS
const AOE = 4; // ZFEATURE_FLAG_ACTIVATE_ON_ENABLE
const DS = 8; // ZFEATURE_FLAG_PER_DATASET

function feat(guid: string, flags: number, deps: string[], description: string): FeatureInfo {
  return Object.freeze({
    guid,
    name: guid.slice(guid.indexOf(':') + 1),
    readonlyCompat: (flags & RO) !== 0,
    mos: (flags & MOS) !== 0,
    perDataset: (flags & DS) !== 0,
    activateOnEnable: (flags & AOE) !== 0,
    deps: Object.freeze([...deps]) as string[],
    description,
  });
}

/** Every feature of OpenZFS 2.3, in spa_feature_t order (the enum, not the registration order). */
export const FEATURES: readonly FeatureInfo[] = Object.freeze([
  feat('com.delphix:async_destroy', RO, [], 'Destroy filesystems asynchronously.'),
  feat('com.delphix:empty_bpobj', RO, [], 'Snapshots use less space.'),
  feat('org.illumos:lz4_compress', AOE, [], 'LZ4 compression algorithm support.'),
  feat('com.joyent:multi_vdev_crash_dump', 0, [], 'Crash dumps to multiple vdev pools.'),
  feat('com.delphix:spacemap_histogram', RO, [], 'Spacemaps maintain space histograms.'),
  feat('com.delphix:enabled_txg', RO, [], 'Record txg at which a feature is enabled'),
  feat('com.delphix:hole_birth', MOS | AOE, ['enabled_txg'], 'Retain hole birth txg for more precise zfs send'),
  feat('com.delphix:extensible_dataset', 0, [], 'Enhanced dataset functionality, used by other features.'),
  feat('com.delphix:embedded_data', MOS | AOE, [], 'Blocks which compress very well use even less space.'),
  feat('com.delphix:bookmarks', RO, ['extensible_dataset'], '"zfs bookmark" command'),
  feat('com.joyent:filesystem_limits', RO, ['extensible_dataset'], 'Filesystem and snapshot limits.'),
  feat('org.open-zfs:large_blocks', DS, ['extensible_dataset'], 'Support for blocks larger than 128KB.'),
  feat('org.zfsonlinux:large_dnode', DS, ['extensible_dataset'], 'Variable on-disk size of dnodes.'),
  feat('org.illumos:sha512', DS, ['extensible_dataset'], 'SHA-512/256 hash algorithm.'),
  feat('org.illumos:skein', DS, ['extensible_dataset'], 'Skein hash algorithm.'),
  feat('org.illumos:edonr', DS, ['extensible_dataset'], 'Edon-R hash algorithm.'),
  feat('org.zfsonlinux:userobj_accounting', RO | DS, ['extensible_dataset'], 'User/Group object accounting.'),
  feat('com.datto:encryption', DS, ['extensible_dataset', 'bookmark_v2'], 'Support for dataset level encryption'),
  feat('org.zfsonlinux:project_quota', RO | DS, ['extensible_dataset'], 'space/object accounting based on project ID.'),
  feat('com.delphix:device_removal', MOS, [], 'Top-level vdevs can be removed, reducing logical pool size.'),
  feat('com.delphix:obsolete_counts', RO, ['extensible_dataset', 'device_removal'],
    'Reduce memory used by removed devices when their blocks are freed or remapped.'),
  feat('com.delphix:zpool_checkpoint', RO, [], 'Pool state can be checkpointed, allowing rewind later.'),
  feat('com.delphix:spacemap_v2', RO | AOE, [], 'Space maps representing large segments are more efficient.'),
  feat('org.zfsonlinux:allocation_classes', RO, [], 'Support for separate allocation classes.'),
  feat('com.datto:resilver_defer', RO, [], 'Support for deferring new resilvers when one is already running.'),
  feat('com.datto:bookmark_v2', 0, ['extensible_dataset', 'bookmarks'], 'Support for larger bookmarks'),
  feat('com.delphix:redaction_bookmarks', 0, ['bookmark_v2', 'extensible_dataset', 'bookmarks'],
    'Support for bookmarks which store redaction lists for zfs redacted send/recv.'),
  feat('com.delphix:redacted_datasets', DS, ['extensible_dataset'],
    'Support for redacted datasets, produced by receiving a redacted zfs send stream.'),
  feat('com.delphix:bookmark_written', 0, ['bookmark_v2', 'extensible_dataset', 'bookmarks'],
    'Additional accounting, enabling the written#<bookmark> property (space written since a bookmark), ' +
    'and estimates of send stream sizes for incrementals from bookmarks.'),
  feat('com.delphix:log_spacemap', RO, ['spacemap_v2'],
    'Log metaslab changes on a single spacemap and flush them periodically.'),
  feat('com.delphix:livelist', RO, ['extensible_dataset'], 'Improved clone deletion performance.'),
  feat('org.openzfs:device_rebuild', RO, [], 'Support for sequential mirror/dRAID device rebuilds'),
  feat('org.freebsd:zstd_compress', DS, ['extensible_dataset'], 'zstd compression algorithm support.'),
  feat('org.openzfs:draid', MOS, [], 'Support for distributed spare RAID'),
  feat('org.openzfs:zilsaxattr', RO | DS, ['extensible_dataset'], 'Support for xattr=sa extended attribute logging in ZIL.'),
  feat('com.delphix:head_errlog', AOE, [], 'Support for per-dataset on-disk error logs.'),
  feat('org.openzfs:blake3', DS, ['extensible_dataset'], 'BLAKE3 hash algorithm.'),
  feat('com.fudosecurity:block_cloning', RO, [], 'Support for block cloning via Block Reference Table.'),
  feat('com.klarasystems:vdev_zaps_v2', MOS, [], 'Support for root vdev ZAP.'),
  feat('com.delphix:redaction_list_spill', 0, ['redaction_bookmarks'],
    'Support for increased number of redaction_snapshot arguments in zfs redact.'),
  feat('org.openzfs:raidz_expansion', MOS, [], 'Support for raidz expansion'),
  feat('com.klarasystems:fast_dedup', RO, [], 'Support for advanced deduplication'),
  feat('org.zfsonlinux:longname', DS, ['extensible_dataset'], 'support filename up to 1024 bytes'),
  feat('com.klarasystems:large_microzap', RO | DS, ['extensible_dataset', 'large_blocks'],
    'Support for microzaps larger than 128KB.'),
]);

const BY_NAME = new Map(FEATURES.map((f) => [f.name, f]));
const BY_GUID = new Map(FEATURES.map((f) => [f.guid, f]));
const INDEX = new Map(FEATURES.map((f, i) => [f.name, i]));

/** Keys of the MOS object directory (DMU_POOL_*) that point at the feature ZAPs. */
export const FEATURE_DIR_KEYS = Object.freeze({
  forRead: 'features_for_read',
  forWrite: 'features_for_write',
  descriptions: 'feature_descriptions',
  enabledTxg: 'feature_enabled_txg',
});

export function featureByName(name: string): FeatureInfo | undefined {
  return BY_NAME.get(name);
}

export function featureByGuid(guid: string): FeatureInfo | undefined {
  return BY_GUID.get(guid);
}

// --- named feature sets ------------------------------------------------------

const list = (s: string): readonly string[] => Object.freeze(s.trim().split(/\s+/));

const COMPAT_2018 =
  'async_destroy bookmarks embedded_data empty_bpobj enabled_txg extensible_dataset filesystem_limits ' +
  'hole_birth large_blocks lz4_compress spacemap_histogram';
const FREEBSD_11_0 = `${COMPAT_2018} multi_vdev_crash_dump sha512 skein`;
const FREEBSD_11_2 = `${FREEBSD_11_0} device_removal obsolete_counts zpool_checkpoint`;
const FREEBSD_11_3 = `${FREEBSD_11_2} spacemap_v2`;
const OPENZFS_2_0_FREEBSD =
  'allocation_classes async_destroy bookmark_v2 bookmark_written bookmarks device_rebuild device_removal ' +
  'embedded_data empty_bpobj enabled_txg encryption extensible_dataset filesystem_limits hole_birth ' +
  'large_blocks large_dnode livelist log_spacemap lz4_compress multi_vdev_crash_dump obsolete_counts ' +
  'project_quota redacted_datasets redaction_bookmarks resilver_defer sha512 skein spacemap_histogram ' +
  'spacemap_v2 userobj_accounting zpool_checkpoint zstd_compress';
const OPENZFS_2_1_FREEBSD = `${OPENZFS_2_0_FREEBSD} draid`;
const OPENZFS_2_2 = `${OPENZFS_2_1_FREEBSD} edonr blake3 block_cloning head_errlog vdev_zaps_v2 zilsaxattr`;
const OPENZFS_2_3 = `${OPENZFS_2_2} fast_dedup large_microzap longname raidz_expansion redaction_list_spill`;
const GRUB2_2_06 =
  'allocation_classes async_destroy block_cloning device_rebuild embedded_data empty_bpobj enabled_txg ' +
  'hole_birth log_spacemap lz4_compress resilver_defer spacemap_histogram spacemap_v2 zpool_checkpoint';
const GRUB2_2_12 =
  `${GRUB2_2_06} bookmarks extensible_dataset filesystem_limits large_blocks livelist project_quota ` +
  'userobj_accounting zilsaxattr';
const ZOL_0_6_4 =
  'async_destroy bookmarks embedded_data empty_bpobj enabled_txg extensible_dataset hole_birth lz4_compress ' +
  'spacemap_histogram';
const ZOL_0_7 = `${COMPAT_2018} edonr large_dnode multi_vdev_crash_dump sha512 skein userobj_accounting`;
const OSX_1_7_0 = `${COMPAT_2018} edonr multi_vdev_crash_dump sha512 skein`;
const OSX_1_8_1 = `${OSX_1_7_0} device_removal obsolete_counts spacemap_v2 zpool_checkpoint`;

/** The files of cmd/zpool/compatibility.d in OpenZFS 2.3 (each a plain list of short names). */
const COMPAT_FILES: Record<string, readonly string[]> = {
  'compat-2018': list(COMPAT_2018),
  'compat-2019': list(FREEBSD_11_0),
  'compat-2020': list(FREEBSD_11_0),
  'compat-2021': list(FREEBSD_11_3),
  'freebsd-11.0': list(FREEBSD_11_0),
  'freebsd-11.2': list(FREEBSD_11_2),
  'freebsd-11.3': list(FREEBSD_11_3),
  'freenas-9.10.2': list(`${COMPAT_2018} multi_vdev_crash_dump`),
  'grub2-2.06': list(GRUB2_2_06),
  'grub2-2.12': list(GRUB2_2_12),
  'openzfs-2.0-freebsd': list(OPENZFS_2_0_FREEBSD),
  'openzfs-2.0-linux': list(`${OPENZFS_2_0_FREEBSD} edonr`),
  'openzfs-2.1-freebsd': list(OPENZFS_2_1_FREEBSD),
  'openzfs-2.1-linux': list(`${OPENZFS_2_1_FREEBSD} edonr`),
  'openzfs-2.2': list(OPENZFS_2_2),
  'openzfs-2.3': list(OPENZFS_2_3),
  'openzfsonosx-1.7.0': list(OSX_1_7_0),
  'openzfsonosx-1.8.1': list(OSX_1_8_1),
  'openzfsonosx-1.9.3': list(
    `${OSX_1_8_1} allocation_classes bookmark_v2 encryption large_dnode project_quota resilver_defer ` +
    'userobj_accounting'),
  'zol-0.6.1': list('async_destroy empty_bpobj lz4_compress'),
  'zol-0.6.4': list(ZOL_0_6_4),
  'zol-0.6.5': list(COMPAT_2018),
  'zol-0.7': list(ZOL_0_7),
  'zol-0.8': list(
    `${ZOL_0_7} allocation_classes bookmark_v2 device_removal encryption obsolete_counts project_quota ` +
    'resilver_defer spacemap_v2 zpool_checkpoint'),
};

/** Symlinks `make install` adds to compatibility.d (cmd/zpool/Makefile.am zpoolcompatlinks): alias -> file. */
const COMPAT_ALIASES: Record<string, string> = {
  '2018': 'compat-2018', '2019': 'compat-2019', '2020': 'compat-2020', '2021': 'compat-2021',
  'freebsd-11.1': 'freebsd-11.0', 'freenas-11.0': 'freebsd-11.0', 'freenas-11.1': 'freebsd-11.0',
  'freenas-11.2': 'freebsd-11.2',
  'freebsd-11.4': 'freebsd-11.3', 'freebsd-12.0': 'freebsd-11.3', 'freebsd-12.1': 'freebsd-11.3',
  'freebsd-12.2': 'freebsd-11.3', 'freebsd-12.3': 'freebsd-11.3', 'freebsd-12.4': 'freebsd-11.3',
  'freenas-11.3': 'freebsd-11.3',
  'grub2': 'grub2-2.12',
  'freebsd-13.0': 'openzfs-2.1-freebsd', 'freebsd-13.1': 'openzfs-2.1-freebsd', 'freebsd-13.2': 'openzfs-2.1-freebsd',
  'openzfsonosx-1.9.4': 'openzfsonosx-1.9.3',
  'truenas-12.0': 'openzfs-2.0-freebsd',
  'ubuntu-18.04': 'zol-0.7', 'ubuntu-20.04': 'zol-0.8', 'ubuntu-22.04': 'openzfs-2.1-linux',
  'openzfs-2.2-linux': 'openzfs-2.2', 'openzfs-2.2-freebsd': 'openzfs-2.2',
  'openzfs-2.3-linux': 'openzfs-2.3', 'openzfs-2.3-freebsd': 'openzfs-2.3',
};

function sortByTable(names: Iterable<string>): string[] {
  return [...new Set(names)].sort((a, b) => INDEX.get(a)! - INDEX.get(b)!);
}

/**
 * Named feature sets: every compatibility.d file and installed alias of
 * OpenZFS 2.3, plus the keyword 'legacy' (no features). Values are short
 * names in FEATURES order. (The 2.3 files include no other files; each set is
 * already closed under dependencies.)
 */
export const COMPATIBILITY: Readonly<Record<string, readonly string[]>> = (() => {
  const out: Record<string, readonly string[]> = { legacy: Object.freeze([]) };
  for (const [name, names] of Object.entries(COMPAT_FILES)) out[name] = Object.freeze(sortByTable(names));
  for (const [alias, target] of Object.entries(COMPAT_ALIASES)) out[alias] = out[target]!;
  return Object.freeze(out);
})();

function checkNames(names: readonly string[], what: string): void {
  const bad = names.filter((n) => !BY_NAME.has(n));
  if (bad.length > 0) {
    throw new UserError(`unknown ${what} ${bad.map((n) => `'${n}'`).join(', ')}; known features: ${FEATURES.map((f) => f.name).join(', ')}`);
  }
}

/** `names` plus everything they depend on, transitively, in FEATURES order. */
export function withDeps(names: readonly string[]): string[] {
  checkNames(names, names.length === 1 ? 'feature' : 'features');
  const seen = new Set<string>();
  const visit = (n: string): void => {
    if (seen.has(n)) return;
    seen.add(n);
    for (const d of BY_NAME.get(n)!.deps) visit(d);
  };
  names.forEach(visit);
  return sortByTable(seen);
}

/**
 * The dependencies withDeps would add to `names` (what OpenZFS enables on its
 * own in feature_enable_sync), so the caller can tell the user.
 */
export function addedDeps(names: readonly string[]): string[] {
  const given = new Set(names);
  return withDeps(names).filter((n) => !given.has(n));
}

/**
 * The features a `compatibility` value enables, as `zpool create -o
 * compatibility=<value>` would (lib/libzfs zpool_load_compat): 'off' or ''
 * means every feature, 'legacy' none, otherwise a comma-separated list of set
 * names whose intersection is taken. Dependencies are added as the kernel does.
 */
export function resolveFeatures(setName: string): FeatureInfo[] {
  const value = setName.trim();
  if (value === '' || value === 'off') return [...FEATURES];
  if (value === 'legacy') return [];
  const parts = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const unknown = parts.filter((p) => !Object.hasOwn(COMPATIBILITY, p));
  if (unknown.length > 0 || parts.length === 0) {
    const known = ['off', ...Object.keys(COMPATIBILITY).sort()].join(', ');
    const what = unknown.length > 0 ? unknown.map((p) => `'${p}'`).join(', ') : `'${setName}'`;
    throw new UserError(`unknown feature set ${what}; known sets: ${known}`);
  }
  let names = new Set(COMPATIBILITY[parts[0]!]);
  for (const p of parts.slice(1)) {
    const next = new Set(COMPATIBILITY[p]);
    names = new Set([...names].filter((n) => next.has(n)));
  }
  return withDeps([...names]).map((n) => BY_NAME.get(n)!);
}

// --- refcounts and the on-disk tables ----------------------------------------

export interface FeatureState {
  /** Enabled features (any order; closed under dependencies). */
  enabled: FeatureInfo[];
  /** guid -> refcount; a missing enabled feature counts 0. */
  refcounts: Map<string, number>;
}

/**
 * The order zpool create enables `enabled` in: spa_feature_t order (the order
 * libzfs adds the feature@ properties), each feature's dependencies first
 * (feature_enable_sync enables fi_depends before the feature itself).
 */
export function enableOrder(enabled: readonly FeatureInfo[]): FeatureInfo[] {
  const want = new Set(enabled.map((f) => f.name));
  const done = new Set<string>();
  const order: FeatureInfo[] = [];
  const enable = (f: FeatureInfo): void => {
    if (done.has(f.name)) return;
    done.add(f.name);
    for (const d of f.deps) enable(BY_NAME.get(d)!);
    order.push(f);
  };
  for (const f of FEATURES) if (want.has(f.name)) enable(f);
  return order;
}

/**
 * Features that get an entry in feature_enabled_txg: once enabled_txg itself
 * is enabled, feature_enable_sync records every feature enabled after it
 * (enabled_txg included), and bumps enabled_txg's refcount once per entry.
 * Features enabled earlier (async_destroy, empty_bpobj, lz4_compress,
 * multi_vdev_crash_dump, spacemap_histogram) get none.
 */
function enabledTxgFeatures(enabled: readonly FeatureInfo[]): FeatureInfo[] {
  const order = enableOrder(enabled);
  const at = order.findIndex((f) => f.name === 'enabled_txg');
  return at < 0 ? [] : order.slice(at);
}

/**
 * Refcounts of a freshly enabled set, before anything uses a feature: 1 for
 * ACTIVATE_ON_ENABLE features (lz4_compress, hole_birth, embedded_data,
 * spacemap_v2, head_errlog), the number of feature_enabled_txg entries for
 * enabled_txg, 0 for the rest. Usage (space maps with histograms, datasets
 * with per-dataset features, ...) is the caller's to add.
 */
export function baseRefcounts(enabled: readonly FeatureInfo[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of enableOrder(enabled)) out.set(f.guid, f.activateOnEnable ? 1 : 0);
  const txgEntries = enabledTxgFeatures(enabled).length;
  if (txgEntries > 0) out.set(BY_NAME.get('enabled_txg')!.guid, txgEntries);
  return out;
}

/**
 * Add the refcounts datasets contribute: `datasets` has one entry per dataset
 * and snapshot (hidden ones like $ORIGIN included only if they carry
 * features), listing the per-dataset features active in it. Each such feature
 * counts once per dataset (dsl_dataset_activate_feature); a dataset with any
 * of them is zapified (its object becomes DMU_OTN_ZAP_METADATA holding the
 * feature guids), which counts once for extensible_dataset
 * (dmu_object_zapify). Zapified DSL dirs (filesystem_limits, livelist, ...)
 * must be added by the caller.
 */
export function addDatasetUsage(
  refcounts: Map<string, number>,
  enabled: readonly FeatureInfo[],
  datasets: readonly (readonly string[])[],
): void {
  const on = new Set(enabled.map((f) => f.name));
  const ext = BY_NAME.get('extensible_dataset')!;
  for (const names of datasets) {
    const uniq = new Set(names);
    if (uniq.size === 0) continue;
    for (const n of uniq) {
      const f = BY_NAME.get(n);
      if (!f?.perDataset) throw new Error(`'${n}' is not a per-dataset feature`);
      if (!on.has(n)) throw new Error(`dataset uses feature '${n}', which is not enabled`);
      refcounts.set(f.guid, (refcounts.get(f.guid) ?? 0) + 1);
    }
    if (!on.has(ext.name)) throw new Error('per-dataset features need extensible_dataset enabled');
    refcounts.set(ext.guid, (refcounts.get(ext.guid) ?? 0) + 1);
  }
}

const refOf = (state: FeatureState, f: FeatureInfo): number => state.refcounts.get(f.guid) ?? 0;

/** Throw (an internal error) if `state` is not one OpenZFS could have produced. */
export function checkFeatureState(state: FeatureState): void {
  const names = new Set<string>();
  for (const f of state.enabled) {
    if (BY_GUID.get(f.guid)?.name !== f.name) throw new Error(`unknown feature ${f.guid}`);
    if (names.has(f.name)) throw new Error(`feature ${f.name} enabled twice`);
    names.add(f.name);
  }
  for (const f of state.enabled) {
    for (const d of f.deps) if (!names.has(d)) throw new Error(`feature ${f.name} is enabled without its dependency ${d}`);
  }
  const enabledGuids = new Set(state.enabled.map((f) => f.guid));
  for (const [guid, n] of state.refcounts) {
    if (!enabledGuids.has(guid)) throw new Error(`refcount for ${guid}, which is not enabled`);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bad refcount ${n} for ${guid}`);
  }
  for (const f of state.enabled) {
    if (f.activateOnEnable && refOf(state, f) < 1) throw new Error(`${f.name} is activate-on-enable but its refcount is 0`);
  }
  const txgEntries = enabledTxgFeatures(state.enabled).length;
  const etxg = BY_NAME.get('enabled_txg')!;
  if (names.has(etxg.name) && refOf(state, etxg) !== txgEntries) {
    throw new Error(`enabled_txg refcount ${refOf(state, etxg)} != ${txgEntries} feature_enabled_txg entries`);
  }
  const ext = BY_NAME.get('extensible_dataset')!;
  for (const f of state.enabled) {
    if (f.perDataset && refOf(state, f) > refOf(state, ext)) {
      throw new Error(`${f.name} is active in ${refOf(state, f)} datasets but only ${refOf(state, ext)} objects are zapified`);
    }
  }
}

export interface FeatureZaps {
  /** features_for_read: guid -> refcount (uint64), the features that are not read-only compatible. */
  forRead: [guid: string, count: number][];
  /** features_for_write: guid -> refcount (uint64), the read-only compatible ones. */
  forWrite: [guid: string, count: number][];
  /** feature_descriptions: guid -> description (1-byte ints, strlen + 1 of them: NUL included). */
  descriptions: [guid: string, description: string][];
  /** feature_enabled_txg: guid -> txg (uint64); present only when enabled_txg is enabled. */
  enabledTxg?: [guid: string, txg: number][];
}

/**
 * Contents of the MOS feature ZAPs (all DMU_OTN_ZAP_METADATA, linked from the
 * object directory under FEATURE_DIR_KEYS), for features all enabled in txg
 * `enabledTxg` (zpool create uses TXG_INITIAL, 4). Entries are in FEATURES
 * order, enabledTxg in enabling order.
 */
export function featureZaps(state: FeatureState, enabledTxg: number): FeatureZaps {
  checkFeatureState(state);
  if (!Number.isSafeInteger(enabledTxg) || enabledTxg < 1) throw new Error(`bad txg ${enabledTxg}`);
  const on = new Set(state.enabled.map((f) => f.name));
  const enabled = FEATURES.filter((f) => on.has(f.name));
  const out: FeatureZaps = {
    forRead: enabled.filter((f) => !f.readonlyCompat).map((f) => [f.guid, refOf(state, f)]),
    forWrite: enabled.filter((f) => f.readonlyCompat).map((f) => [f.guid, refOf(state, f)]),
    descriptions: enabled.map((f) => [f.guid, f.description]),
  };
  if (on.has('enabled_txg')) out.enabledTxg = enabledTxgFeatures(enabled).map((f) => [f.guid, enabledTxg]);
  return out;
}

/** A description as its ZAP value: the UTF-8 (here ASCII) bytes and a terminating NUL. */
export function descriptionBytes(description: string): Uint8Array {
  const body = new TextEncoder().encode(description);
  const out = new Uint8Array(body.length + 1);
  out.set(body);
  return out;
}

/**
 * The guids for the label's (and the MOS config's) features_for_read nvlist,
 * each a DATA_TYPE_BOOLEAN pair: the ACTIVE features flagged
 * ZFEATURE_FLAG_MOS (feature_sync -> spa_activate_mos_feature), in the order
 * zpool create activates them. Other features that are active and not
 * read-only compatible (lz4_compress, head_errlog, ...) are NOT listed: they
 * are only in the MOS features_for_read ZAP.
 */
export function labelFeaturesForRead(state: FeatureState): string[] {
  return enableOrder(state.enabled).filter((f) => f.mos && refOf(state, f) > 0).map((f) => f.guid);
}

// --- boot loaders --------------------------------------------------------------

export interface LoaderSupport {
  /** Guids the loader accepts in the label's features_for_read and, with a refcount > 0, in the MOS features_for_read ZAP. */
  guids: readonly string[];
  /** Loader checks DSL dir/dataset dnode types, so zapified DSL objects (extensible_dataset in use) break it. */
  rejectsZapifiedDsl: boolean;
}

const GRUB_2_06_GUIDS = Object.freeze([
  'org.illumos:lz4_compress', 'com.delphix:hole_birth', 'com.delphix:embedded_data',
  'com.delphix:extensible_dataset', 'org.open-zfs:large_blocks',
]);

/**
 * What boot loaders can read: GRUB grub-core/fs/zfs/zfs.c spa_feature_names
 * (2.06 and 2.12 have the same list; 2.12 also accepts zapified DSL objects,
 * by checking the bonus type; 2.14 adds three guids), and FreeBSD's stand/libsa/zfs/zfsimpl.c
 * features_for_read (main, 2025). Both reject a pool with any other feature in
 * the label list or active in the MOS features_for_read ZAP; GRUB reads that
 * ZAP as a micro ZAP only.
 */
export const BOOT_LOADERS: Readonly<Record<string, LoaderSupport>> = Object.freeze({
  'grub-2.06': { guids: GRUB_2_06_GUIDS, rejectsZapifiedDsl: true },
  'grub-2.12': { guids: GRUB_2_06_GUIDS, rejectsZapifiedDsl: false },
  'grub-2.14': {
    guids: Object.freeze([
      ...GRUB_2_06_GUIDS, 'com.klarasystems:vdev_zaps_v2', 'com.delphix:head_errlog', 'org.freebsd:zstd_compress',
    ]),
    rejectsZapifiedDsl: false,
  },
  'freebsd-loader': {
    guids: Object.freeze([
      'com.datto:bookmark_v2', 'com.datto:encryption', 'com.delphix:bookmark_written',
      'com.delphix:device_removal', 'com.delphix:embedded_data', 'com.delphix:extensible_dataset',
      'com.delphix:head_errlog', 'com.delphix:hole_birth', 'com.joyent:multi_vdev_crash_dump',
      'com.klarasystems:vdev_zaps_v2', 'org.freebsd:zstd_compress', 'org.illumos:lz4_compress',
      'org.illumos:sha512', 'org.illumos:skein', 'org.open-zfs:large_blocks', 'org.openzfs:blake3',
      'org.zfsonlinux:large_dnode',
    ]),
    rejectsZapifiedDsl: false,
  },
});

/**
 * Why `loader` would refuse the pool described by `state` (empty: it boots).
 * Checks what the loader checks: the label list, the active entries of the
 * MOS features_for_read ZAP, and (GRUB before 2.12) zapified DSL objects.
 */
export function loaderBlockers(state: FeatureState, loader: string): string[] {
  const support = BOOT_LOADERS[loader];
  if (support === undefined) {
    throw new UserError(`unknown boot loader '${loader}'; known: ${Object.keys(BOOT_LOADERS).join(', ')}`);
  }
  const ok = new Set(support.guids);
  const out: string[] = [];
  for (const f of FEATURES) {
    if (!state.enabled.some((e) => e.guid === f.guid)) continue;
    if (!f.readonlyCompat && refOf(state, f) > 0 && !ok.has(f.guid)) out.push(`${f.name} is active`);
  }
  const ext = BY_NAME.get('extensible_dataset')!;
  if (support.rejectsZapifiedDsl && refOf(state, ext) > 0) out.push('extensible_dataset is active (zapified DSL objects)');
  return out;
}
