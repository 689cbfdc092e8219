// What the first input is, from what it holds rather than its name: a
// directory, a tarball (plain or compressed), or else an mtree manifest,
// which is what makefs takes any regular file for. "-" is standard input,
// tar or manifest alike.

import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { fsUserError, UserError } from '../util/errors.js';

/**
 * How a tarball is compressed: undone by the host's own command, as `tar
 * -a` would (gzip by node's zlib where the host has no gzip).
 */
export type TarCompression = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'lzip';

export type InputKind =
  | { kind: 'tar'; compression: TarCompression | null }
  | { kind: 'manifest' };

// Magic numbers long enough that no manifest text starts with them
// ("BZh" and "LZIP" are text, so their version byte is part of the check).
const COMPRESSION_MAGIC: Array<[TarCompression, Array<number | [number, number]>]> = [
  ['gzip', [0x1f, 0x8b]],
  ['bzip2', [0x42, 0x5a, 0x68, [0x31, 0x39]]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['lzip', [0x4c, 0x5a, 0x49, 0x50, 0x01]],
];

/** Whether `head` starts with `magic`; a [lo, hi] pair matches any byte in that range. */
function startsWith(head: Uint8Array, magic: Array<number | [number, number]>): boolean {
  return head.length >= magic.length && magic.every((m, i) => (typeof m === 'number' ? head[i] === m : head[i]! >= m[0] && head[i]! <= m[1]));
}

/** A tar header block: "ustar" magic (POSIX and GNU), or a matching checksum (v7). */
function isTarHeader(b: Uint8Array): boolean {
  if (b.length < 512) return false;
  if (Buffer.from(b.subarray(257, 262)).toString('latin1') === 'ustar') return true;
  const field = Buffer.from(b.subarray(148, 156)).toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
  return sum === parseInt(field, 8);
}

/** Classify by content: a compressed stream is taken for a compressed tarball. */
export function sniff(head: Uint8Array): InputKind {
  for (const [compression, magic] of COMPRESSION_MAGIC) {
    if (startsWith(head, magic)) return { kind: 'tar', compression };
  }
  if (isTarHeader(head)) return { kind: 'tar', compression: null };
  // A manifest is text: a NUL byte means binary data, most likely a tarball
  // cut short within its first header, which tar then names as such.
  return head.includes(0) ? { kind: 'tar', compression: null } : { kind: 'manifest' };
}

/** What a path names: a directory, a regular file (sniffed by reading its start), or something only readable once (a FIFO). */
export function pathKind(path: string): 'dir' | 'file' | 'stream' {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw fsUserError(path, err);
  }
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isFIFO() || st.isCharacterDevice()) return 'stream';
  throw new UserError(`${path}: not a directory, tarball or manifest`);
}

/** The kind of a regular file, from its first block. */
export function sniffFile(path: string): InputKind {
  const head = Buffer.alloc(512);
  let n = 0;
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    while (n < head.length) {
      const got = readSync(fd, head, n, head.length - n, null);
      if (got === 0) break;
      n += got;
    }
  } catch (err) {
    throw fsUserError(path, err);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return sniff(head.subarray(0, n));
}

/**
 * Look at the first `n` bytes of a stream that can be read only once
 * (standard input, a FIFO): they are read, then pushed back (unshift), so
 * the stream still yields everything.
 */
export async function peek(stream: Readable, n: number): Promise<{ head: Buffer; rest: Readable }> {
  const chunks: Buffer[] = [];
  let len = 0;
  while (len < n && !stream.readableEnded) {
    const c = stream.read() as Buffer | null;
    if (c !== null) {
      chunks.push(c);
      len += c.length;
      continue;
    }
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        stream.off('readable', ok).off('end', ok).off('error', done);
        if (err) reject(err);
        else resolve();
      };
      const ok = (): void => done();
      stream.once('readable', ok).once('end', ok).once('error', done);
    });
  }
  const head = Buffer.concat(chunks);
  // A stream that has ended takes nothing back: the whole input is `head`.
  if (stream.readableEnded) return { head, rest: Readable.from(head.length > 0 ? [head] : []) };
  if (head.length > 0) stream.unshift(head);
  return { head: head.subarray(0, n), rest: stream };
}
