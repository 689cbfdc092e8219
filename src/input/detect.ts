// What the first input is, from what it holds rather than its name: a
// directory, a tarball (plain or gzip), or else an mtree manifest, which is
// what makefs takes any regular file for. "-" is standard input, tar or
// manifest alike.

import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { fsUserError, UserError } from '../util/errors.js';

export type InputKind = 'dir' | 'tar' | 'tar.gz' | 'manifest';

const OTHER_COMPRESSION: Array<[string, number[]]> = [
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['lzip', [0x4c, 0x5a, 0x49, 0x50]],
];

function startsWith(head: Uint8Array, magic: number[]): boolean {
  return head.length >= magic.length && magic.every((b, i) => head[i] === b);
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

/** Classify by content; `name` is for the message about unsupported compression. */
export function sniff(head: Uint8Array, name: string): Exclude<InputKind, 'dir'> {
  if (startsWith(head, [0x1f, 0x8b])) return 'tar.gz';
  for (const [what, magic] of OTHER_COMPRESSION) {
    if (startsWith(head, magic)) {
      throw new UserError(`${name}: ${what}-compressed input is not supported (only gzip); decompress it, e.g. into standard input ('-')`);
    }
  }
  return isTarHeader(head) ? 'tar' : 'manifest';
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
export function sniffFile(path: string): Exclude<InputKind, 'dir'> {
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
  return sniff(head.subarray(0, n), path);
}

/**
 * Read the first `n` bytes of a stream to look at them, and a stream that
 * still yields everything (those bytes first). Used for standard input,
 * which cannot be opened twice.
 */
export async function peek(stream: Readable, n: number): Promise<{ head: Buffer; rest: Readable }> {
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let len = 0;
  let ended = false;
  while (len < n) {
    const r = await it.next();
    if (r.done === true) {
      ended = true;
      break;
    }
    chunks.push(r.value);
    len += r.value.length;
  }
  const head = Buffer.concat(chunks);
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (ended) return;
    for (;;) {
      const r = await it.next();
      if (r.done === true) return;
      yield r.value;
    }
  }
  return { head: head.subarray(0, n), rest: Readable.from(all(), { objectMode: false }) };
}
