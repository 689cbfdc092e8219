// User and group names -> ids, for manifests (uname=/gname=), specs, tar
// member names under -N, and --force-uid/--force-gid given by name.
//
// With -N DIR the image's own databases decide, as in makefs: DIR/master.passwd
// (or DIR/passwd, for trees that only have that) and DIR/group. Without -N,
// the build host's /etc/passwd and /etc/group, read as files (makefs asks the
// host's getpwnam, whose NSS sources cannot be reproduced anyway). Either way
// a name that is not there is the caller's error to report.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fsUserError, UserError } from '../util/errors.js';

export interface UserDb {
  uid(name: string): number | undefined;
  gid(name: string): number | undefined;
  /** Where user names are looked up, for messages. */
  readonly userSource: string;
  readonly groupSource: string;
}

/** name -> id from the third field of "name:x:id:..." lines; the first line for a name wins, as getpwnam's does. */
export function parseIdFile(text: string): Map<string, number> {
  const ids = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3 || f[0] === '' || !/^\d+$/.test(f[2]!)) continue;
    const id = Number(f[2]);
    if (id > 0xffffffff) continue;
    if (!ids.has(f[0]!)) ids.set(f[0]!, id);
  }
  return ids;
}

function readIds(path: string): Map<string, number> {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (err) {
    throw fsUserError(path, err);
  }
  return parseIdFile(text);
}

function firstExisting(paths: string[]): string {
  return paths.find((p) => existsSync(p)) ?? paths[0]!;
}

/** -N DIR: read now, so a wrong directory fails before anything is written. */
export function userDbFromDir(dir: string): UserDb {
  const pw = firstExisting([join(dir, 'master.passwd'), join(dir, 'passwd')]);
  const gr = join(dir, 'group');
  const users = readIds(pw);
  const groups = readIds(gr);
  return {
    uid: (n) => users.get(n),
    gid: (n) => groups.get(n),
    userSource: pw,
    groupSource: gr,
  };
}

/** The build host's /etc, read on first use only (most inputs never name a user). */
export function hostUserDb(): UserDb {
  let users: Map<string, number> | undefined;
  let groups: Map<string, number> | undefined;
  return {
    uid: (n) => (users ??= readIds('/etc/passwd')).get(n),
    gid: (n) => (groups ??= readIds('/etc/group')).get(n),
    userSource: '/etc/passwd of this host; -N DIR reads the image\'s own',
    groupSource: '/etc/group of this host; -N DIR reads the image\'s own',
  };
}

/** A user id from a number or a name (--force-uid). */
export function resolveUser(db: UserDb, text: string, what: string): number {
  if (/^\d+$/.test(text) && Number(text) <= 0xffffffff) return Number(text);
  const id = db.uid(text);
  if (id === undefined) throw new UserError(`${what}: unknown user '${text}' (not in ${db.userSource})`);
  return id;
}

/** A group id from a number or a name (--force-gid). */
export function resolveGroup(db: UserDb, text: string, what: string): number {
  if (/^\d+$/.test(text) && Number(text) <= 0xffffffff) return Number(text);
  const id = db.gid(text);
  if (id === undefined) throw new UserError(`${what}: unknown group '${text}' (not in ${db.groupSource})`);
  return id;
}
