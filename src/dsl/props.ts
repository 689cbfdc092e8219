// Dataset properties as the DSL props ZAP stores them (module/zcommon/
// zfs_prop.c): index properties as uint64 codes, numbers as uint64, strings
// (mountpoint, user properties) as NUL-terminated byte arrays. A property in
// this ZAP is what `zfs get` reports with source "local".
import { UserError } from '../util/errors.js';
import { parseSize } from '../util/size.js';
import type { ZapEntry } from '../zap/index.js';

export type PropValue = { kind: 'u64'; value: bigint } | { kind: 'string'; value: string };

const ONOFF = { on: 1n, off: 0n };
const INDEX: Record<string, Record<string, bigint>> = {
  canmount: { off: 0n, on: 1n, noauto: 2n },
  atime: ONOFF, relatime: ONOFF, exec: ONOFF, setuid: ONOFF, devices: ONOFF, readonly: ONOFF,
  // ZFS_XATTR_OFF/DIR/SA; "on" is the directory form in OpenZFS's table
  xattr: { off: 0n, on: 1n, dir: 1n, sa: 2n },
  // enum zio_compress; gzip means gzip-6
  compression: {
    on: 1n, off: 2n, lzjb: 3n, gzip: 10n, zle: 14n, lz4: 15n, zstd: 16n,
    ...Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`gzip-${i + 1}`, BigInt(5 + i)])),
  },
};
const SIZES = new Set(['quota', 'refquota', 'reservation', 'refreservation']);
export const SUPPORTED_PROPS = ['mountpoint', ...Object.keys(INDEX), 'recordsize', ...SIZES];


export function isUserProp(name: string): boolean {
  return /^[a-z0-9_.:+-]+$/i.test(name) && name.includes(':');
}

/** Parse one `prop=value` of a dataset; `rootPath` prefixes mountpoints. */
export function parseProp(dataset: string, name: string, value: string, rootPath: string): PropValue {
  const where = `dataset '${dataset}'`;
  if (value === '') throw new UserError(`${where}: missing value for property '${name}'`);
  if (isUserProp(name)) {
    if (value.length > 8192) throw new UserError(`${where}: user property '${name}' longer than 8192 bytes`);
    return { kind: 'string', value };
  }
  if (name === 'mountpoint') {
    if (value === 'none' || value === 'legacy') return { kind: 'string', value };
    if (!value.startsWith('/')) throw new UserError(`${where}: mountpoint '${value}' must be absolute, none or legacy`);
    const clean = value.replace(/\/+$/, '') || '/';
    if (rootPath !== '/' && clean !== rootPath && !clean.startsWith(`${rootPath}/`)) {
      throw new UserError(`${where}: mountpoint '${value}' is not prefixed by the root path '${rootPath}'`);
    }
    return { kind: 'string', value: clean };
  }
  const table = INDEX[name];
  if (table) {
    const v = table[value];
    if (v === undefined) throw new UserError(`${where}: '${value}' is not a valid value for '${name}' (${Object.keys(table).join(', ')})`);
    return { kind: 'u64', value: v };
  }
  if (name === 'recordsize') {
    const n = parseSize(value, `${where} recordsize`);
    if (n < 512 || n > 128 * 1024 || (n & (n - 1)) !== 0) {
      throw new UserError(`${where}: recordsize must be a power of two from 512 to 128k, not '${value}'`);
    }
    return { kind: 'u64', value: BigInt(n) };
  }
  if (SIZES.has(name)) {
    if (value === 'none') return { kind: 'u64', value: 0n };
    return { kind: 'u64', value: BigInt(parseSize(value, `${where} ${name}`)) };
  }
  throw new UserError(`${where}: unknown property '${name}'`);
}

export function propsToZap(props: Map<string, PropValue>): ZapEntry[] {
  const enc = new TextEncoder();
  return [...props].map(([name, v]) => ({
    name: enc.encode(name),
    value: v.kind === 'u64' ? v.value : { intLen: 1 as const, ints: [...enc.encode(v.value), 0] },
  }));
}
