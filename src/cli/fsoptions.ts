// The zfs backend's -o options. Each -o argument holds comma-separated
// key=value items, applied in order, so a later value for a key wins (as in
// makefs). Unlike makefs, boolean options honour their value:
// "verify-txgs=false" means false.

import { UserError } from '../util/errors.js';
import { formatSize, parseSize } from '../util/size.js';
import { poolNameProblem } from './poolname.js';
import { freebsdPreset } from '../dsl/datasets.js';
import { resolveFeatures } from '../dsl/features.js';

export interface ZfsOptions {
  poolName: string;
  rootPath: string;
  ashift: number;
  msSize?: number;
  poolGuid?: bigint;
  verifyTxgs: boolean;
  vdevPath: string;
  seed: string;
  datasets: { spec: string; fromPreset: boolean }[];
  bootfs?: string;
  compatibility: string;
  xattrs: boolean;
  freePercent?: number;
}

/** The default feature set: every feature GRUB 2.06 and the FreeBSD loader can boot from. */
export const DEFAULT_COMPATIBILITY = 'grub2-2.06';

export const DEFAULT_ASHIFT = 12;
export const MIN_ASHIFT = 9;
export const MAX_ASHIFT = 16;
export const MIN_MSSIZE = 2 ** 24;
export const MAX_MSSIZE = 2 ** 34;
const MAX_GUID = (1n << 64n) - 1n;

/** One line per key, shown by --help. */
export const FS_OPTION_HELP: ReadonlyArray<readonly [string, string]> = [
  ['poolname=NAME', 'pool name (required)'],
  ['rootpath=PATH', 'mountpoint prefix of the pool (default /NAME)'],
  ['ashift=N', `log2 of the allocation unit, ${MIN_ASHIFT}..${MAX_ASHIFT} (default ${DEFAULT_ASHIFT})`],
  ['mssize=SIZE', 'metaslab size, a power of two from 16m to 16g (default: by image size)'],
  ['poolguid=N', 'pool GUID, decimal or 0x hex (default: derived from the seed)'],
  ['verify-txgs[=BOOL]', 'make OpenZFS verify all metadata on first import'],
  ['path=PATH', 'vdev path recorded in the labels (default /dev/null)'],
  ['seed=TEXT', 'seed of every GUID and hash salt (default tsmakefs)'],
  ['fs=NAME[;PROP=VAL...]', 'declare a dataset (repeatable; quote the ;)'],
  ['bootfs=NAME', 'dataset the pool boots from'],
  ['compatibility=SET', `pool features as zpool create names them: legacy (none), grub2-2.06, openzfs-2.1-freebsd, ... (default ${'grub2-2.06'})`],
  ['free=PERCENT', 'without -s: space left for the datasets to write, percent of the used space (default 10)'],
  ['xattrs=on|off', 'store extended attributes from the input (default on)'],
  ['preset=freebsd', "FreeBSD's release dataset layout (zroot/ROOT/default on /, ...)"],
  ['nowarn', 'accepted for makefs compatibility, no effect'],
];

const BOOLEANS: Record<string, boolean> = {
  true: true, yes: true, on: true, '1': true,
  false: false, no: false, off: false, '0': false,
};

/** One -o item: `key=value`, or a bare `key` (value undefined). */
export interface FsItem {
  key: string;
  value: string | undefined; // undefined: no '=' at all
}

function splitItems(args: readonly string[]): FsItem[] {
  const items: FsItem[] = [];
  for (const arg of args) {
    for (const part of arg.split(',')) {
      if (part === '') throw new UserError(`-o '${arg}': empty option (stray comma?)`);
      const eq = part.indexOf('=');
      items.push(eq < 0 ? { key: part, value: undefined } : { key: part.slice(0, eq), value: part.slice(eq + 1) });
    }
  }
  return items;
}

function required(item: FsItem): string {
  if (item.value === undefined || item.value === '') {
    throw new UserError(`-o ${item.key}: a value is required (${item.key}=...)`);
  }
  return item.value;
}

function parseBool(item: FsItem): boolean {
  // A bare key switches the option on, as makefs's boolean options do.
  if (item.value === undefined) return true;
  const b = BOOLEANS[item.value.toLowerCase()];
  if (b === undefined) {
    throw new UserError(`-o ${item.key}: '${item.value}' is not a boolean (use true/false, yes/no, on/off or 1/0)`);
  }
  return b;
}

function parseAshift(item: FsItem): number {
  const v = required(item);
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= MIN_ASHIFT && n <= MAX_ASHIFT)) {
    throw new UserError(`-o ashift: must be an integer from ${MIN_ASHIFT} to ${MAX_ASHIFT}, not '${v}'`);
  }
  return n;
}

function parseMsSize(item: FsItem): number {
  const v = parseSize(required(item), '-o mssize');
  const b = BigInt(v);
  if (b === 0n || (b & (b - 1n)) !== 0n) {
    throw new UserError(`-o mssize: metaslab size must be a power of 2, not ${v}`);
  }
  if (v < MIN_MSSIZE || v > MAX_MSSIZE) {
    throw new UserError(
      `-o mssize: metaslab size must be between ${formatSize(MIN_MSSIZE)} and ${formatSize(MAX_MSSIZE)}, not ${formatSize(v)}`,
    );
  }
  return v;
}

function parseGuid(item: FsItem): bigint {
  const v = required(item);
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(v)) {
    throw new UserError(`-o poolguid: '${v}' is not a decimal or 0x-prefixed hexadecimal number`);
  }
  const g = BigInt(v);
  if (g < 1n || g > MAX_GUID) throw new UserError(`-o poolguid: must be from 1 to 2^64-1, not ${v}`);
  return g;
}

function parseRootPath(item: FsItem): string {
  const v = required(item);
  if (!v.startsWith('/')) throw new UserError(`-o rootpath: '${v}' must be an absolute path`);
  // "/pool/" would otherwise yield mountpoints like "/pool//home".
  return v.replace(/\/+$/, '') || '/';
}

/** Interpret every -o argument, in command-line order. */
export function parseFsOptions(args: readonly string[]): ZfsOptions {
  return parseFsItems(splitItems(args));
}

/** Interpret -o items already split (the library API builds them from named options). */
export function parseFsItems(items: readonly FsItem[]): ZfsOptions {
  let poolName: string | undefined;
  let rootPath: string | undefined;
  const o: Omit<ZfsOptions, 'poolName' | 'rootPath'> = {
    ashift: DEFAULT_ASHIFT,
    verifyTxgs: false,
    vdevPath: '/dev/null',
    seed: 'tsmakefs',
    datasets: [],
    compatibility: DEFAULT_COMPATIBILITY,
    xattrs: true,
  };
  let preset: string | undefined;
  for (const item of items) {
    switch (item.key) {
      case 'poolname': poolName = required(item); break;
      case 'rootpath': rootPath = parseRootPath(item); break;
      case 'ashift': o.ashift = parseAshift(item); break;
      case 'mssize': o.msSize = parseMsSize(item); break;
      case 'poolguid': o.poolGuid = parseGuid(item); break;
      case 'verify-txgs': o.verifyTxgs = parseBool(item); break;
      case 'path': o.vdevPath = required(item); break;
      case 'seed': o.seed = required(item); break;
      case 'nowarn': break;
      case 'fs': o.datasets.push({ spec: required(item), fromPreset: false }); break;
      case 'bootfs': o.bootfs = required(item); break;
      case 'compatibility': o.compatibility = required(item); resolveFeatures(o.compatibility); break;
      case 'xattrs': o.xattrs = parseBool(item); break;
      case 'free': {
        const v = required(item).replace(/%$/, '');
        if (!/^\d+(\.\d+)?$/.test(v) || Number(v) > 1000) throw new UserError(`-o free: '${item.value}' is not a percentage (0..1000)`);
        o.freePercent = Number(v);
        break;
      }
      case 'preset':
        if (required(item) !== 'freebsd') throw new UserError(`-o preset: unknown preset '${item.value}' (known: freebsd)`);
        if (preset) throw new UserError('-o preset: given twice');
        preset = item.value;
        // expanded once the pool name is known; remember where it stood
        o.datasets.push({ spec: '\0preset', fromPreset: true });
        break;
      default:
        throw new UserError(`unknown -o option '${item.key}'`);
    }
  }
  if (poolName === undefined) throw new UserError('a pool name must be specified with -o poolname=NAME');
  const problem = poolNameProblem(poolName);
  if (problem !== undefined) throw new UserError(`-o poolname: ${problem}`);
  if (preset) {
    const p = freebsdPreset(poolName);
    o.datasets = o.datasets.flatMap((d) => (d.spec === '\0preset' ? p.fs.map((spec) => ({ spec, fromPreset: true })) : [d]));
    rootPath ??= p.rootPath;
    o.bootfs ??= p.bootfs;
  }
  return { poolName, rootPath: rootPath ?? `/${poolName}`, ...o };
}
