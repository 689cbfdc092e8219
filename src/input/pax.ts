// pax extended header records ("<len> <key>=<value>\n", POSIX.1-2001), kept
// as raw bytes. Values are bytes, not text: GNU tar writes non-UTF-8 file
// names into `path` as they are, and xattr values are binary.

import { UserError } from '../util/errors.js';
import { parseDecimalTime } from './times.js';
import type { Timespec } from './tree.js';

export type PaxRecords = Map<string, Buffer>;

export function parsePaxRecords(buf: Uint8Array): PaxRecords {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: PaxRecords = new Map();
  let off = 0;
  while (off < b.length) {
    // Headers are padded with NULs to the block size by some writers.
    if (b[off] === 0) break;
    const sp = b.indexOf(0x20, off);
    const len = sp < 0 ? NaN : Number(b.toString('latin1', off, sp));
    if (!Number.isSafeInteger(len) || len <= sp - off + 1 || off + len > b.length || b[off + len - 1] !== 0x0a) {
      throw new UserError(`malformed pax extended header record at byte ${off}`);
    }
    const rec = b.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new UserError(`malformed pax extended header record at byte ${off} (no '=')`);
    out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1)));
    off += len;
  }
  return out;
}

/**
 * A member's records: the global ones, overridden by its own. An empty value
 * deletes a key (POSIX), except an xattr's: GNU tar writes an empty
 * attribute value as an empty record, and extracts it as one.
 */
export function mergePax(global: PaxRecords, local: PaxRecords | undefined): PaxRecords {
  const out = new Map(global);
  for (const [k, v] of local ?? []) {
    if (v.length === 0 && !isXattrKey(k)) out.delete(k);
    else out.set(k, v);
  }
  return out;
}

/** GNU tar's and star's xattr records (raw values), and libarchive's (base64 values, %-encoded names). */
const SCHILY_XATTR = 'SCHILY.xattr.';
const LIBARCHIVE_XATTR = 'LIBARCHIVE.xattr.';

function isXattrKey(k: string): boolean {
  return k.startsWith(SCHILY_XATTR) || k.startsWith(LIBARCHIVE_XATTR);
}

export function paxText(r: PaxRecords, key: string): string | undefined {
  return r.get(key)?.toString('utf8');
}

export function paxNumber(r: PaxRecords, key: string, where: string): number | undefined {
  const v = paxText(r, key);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new UserError(`${where}: invalid pax ${key} '${v}'`);
  return Number(v);
}

export function paxTime(r: PaxRecords, key: string, where: string): Timespec | undefined {
  const v = paxText(r, key);
  if (v === undefined) return undefined;
  const t = parseDecimalTime(v);
  if (t === undefined) throw new UserError(`${where}: invalid pax ${key} '${v}'`);
  return t;
}

/**
 * Extended attributes: GNU tar's and star's SCHILY.xattr.NAME=raw value, and
 * libarchive's LIBARCHIVE.xattr.NAME=base64 value (NAME %-encoded).
 */
export function paxXattrs(r: PaxRecords): Map<string, Uint8Array> | undefined {
  let out: Map<string, Uint8Array> | undefined;
  for (const [k, v] of r) {
    if (k.startsWith(SCHILY_XATTR)) {
      (out ??= new Map()).set(k.slice(SCHILY_XATTR.length), v);
    } else if (k.startsWith(LIBARCHIVE_XATTR)) {
      let name: string;
      try {
        name = decodeURIComponent(k.slice(LIBARCHIVE_XATTR.length));
      } catch {
        throw new UserError(`malformed pax record name '${k}'`);
      }
      (out ??= new Map()).set(name, Buffer.from(v.toString('latin1'), 'base64'));
    }
  }
  return out;
}
