// `ls -l`-style listings of a ZPL dataset.
import type { NodeType, Timespec } from '../input/tree.js';
import { showPath } from '../input/walk.js';
import type { Znode } from './zpl.js';

const TYPE_CHAR: Record<NodeType, string> = {
  file: '-', dir: 'd', symlink: 'l', fifo: 'p', socket: 's', chardev: 'c', blockdev: 'b',
};

/** "drwxr-xr-x", with s/S, t/T for setuid, setgid and sticky. */
export function modeString(type: NodeType, perm: number): string {
  const rwx = (bits: number, special: boolean, ch: string): string =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-');
  return TYPE_CHAR[type] + rwx(perm >> 6, (perm & 0o4000) !== 0, 's') + rwx(perm >> 3, (perm & 0o2000) !== 0, 's') +
    rwx(perm, (perm & 0o1000) !== 0, 't');
}

/** UTC, to the second: 2023-11-14T22:13:20Z. */
export function lsTime(t: Timespec): string {
  const d = new Date(t.sec * 1000);
  return Number.isNaN(d.getTime()) ? `@${t.sec}` : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface LsEntry {
  /** Name as shown (raw bytes; non-UTF-8 bytes print as \xNN). */
  name: Uint8Array | string;
  z: Znode;
}

/** One line per entry, columns aligned like ls -l: mode links uid gid size mtime name [-> target]. */
export function formatLong(entries: readonly LsEntry[]): string[] {
  const rows = entries.map(({ name, z }) => [
    modeString(z.type, z.perm),
    String(z.links),
    String(z.uid),
    String(z.gid),
    z.rdev ? `${z.rdev[0]}, ${z.rdev[1]}` : String(z.size),
    lsTime(z.mtime),
    (typeof name === 'string' ? name : showPath(name)) + (z.target ? ` -> ${showPath(z.target)}` : ''),
  ]);
  const w = [1, 2, 3, 4].map((c) => Math.max(0, ...rows.map((r) => r[c]!.length)));
  return rows.map((r) => [
    r[0],
    r[1]!.padStart(w[0]!),
    r[2]!.padEnd(w[1]!),
    r[3]!.padEnd(w[2]!),
    r[4]!.padStart(w[3]!),
    r[5],
    r[6],
  ].join(' '));
}
