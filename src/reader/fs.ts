// Naming things in an image: "DATASET[:PATH]" specs and opening a dataset's
// file system.
import { UserError } from '../util/errors.js';
import { findDataset } from './dsl.js';
import { ObjsetReader } from './objset.js';
import type { PoolReader } from './pool.js';
import { ZplReader } from './zpl.js';

export interface Spec {
  /** Dataset name; undefined: the root dataset. */
  dataset?: string;
  /** Absolute path inside the dataset. */
  path: string;
}

/**
 * "zroot/usr:/bin/sh" -> dataset zroot/usr, path /bin/sh; "/etc" -> the root
 * dataset's /etc; "zroot/usr" -> that dataset's root. A dataset name may
 * hold ':' itself, so the split is at the first ":/", else at the last ':'.
 */
export function parseSpec(spec: string): Spec {
  if (spec === '') return { path: '/' };
  if (spec.startsWith('/')) return { path: spec };
  const at = spec.indexOf(':/');
  if (at >= 0) return { dataset: spec.slice(0, at), path: spec.slice(at + 1) };
  const colon = spec.lastIndexOf(':');
  if (colon >= 0) return { dataset: spec.slice(0, colon), path: `/${spec.slice(colon + 1)}` };
  return { dataset: spec, path: '/' };
}

/** The file system of dataset `name` (default: the root dataset). */
export function openFileSystem(pool: PoolReader, name: string = pool.poolName): ZplReader {
  const ds = findDataset(pool, name);
  if (!ds.bp || ds.bp.dva === null) throw new UserError(`dataset '${name}' has no object set`);
  return new ZplReader(new ObjsetReader(pool, ds.bp, ds.name));
}
