// Tarball -> tree model, streamed once. Each regular member's data goes
// straight into the image (InputContext.beginFile) as tar-stream hands it
// over; the archive is never extracted to disk nor held in memory, and
// consuming the member stream is what pulls more of the archive in, so a
// slow image write slows the read (backpressure) instead of buffering.
//
// ustar, pax and GNU archives: GNU long names and link targets, pax path,
// linkpath, size, mtime (with its fraction), uid, gid, uname, gname, xattrs.
// Member metadata is taken as numbers (as `tar --numeric-owner` extracts);
// with -N, uname/gname are looked up in the image's own user database first.
// A path that appears again replaces the earlier member, as extracting does
// (the replaced data's space is handed back); a directory member for an
// existing directory only updates its metadata.

import { createReadStream, openSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { decompressedByHost, hostDecompressor, type HostDecompressor } from './decompress.js';
import type { TarCompression } from './detect.js';
import { extract, type Extract, type Header } from 'tar-stream';
import type { InputContext } from '../image.js';
import { errnoCode, fsUserError, UserError } from '../util/errors.js';
import type { Warn } from './mtree.js';
import { mergePax, paxNumber, paxText, paxTime, paxXattrs, parsePaxRecords, type PaxRecords } from './pax.js';
import type { UserDb } from './passwd.js';
import { defaultTime, entryTime, setTimes, SharedTime, type TimePolicy } from './times.js';
import { adoptListed, latin1Of, markImplicit, newDir, type Inode, type NodeType, type Timespec } from './tree.js';
import { TreeBuilder } from './treebuild.js';
import { HostFile, showPath } from './walk.js';
import { filePull, isTarFile, isTarPull, pullStream, pump, TarRing, type TarInput, type TarPull } from './tar-feed.js';

export interface TarOptions {
  /** How messages name the archive: its path, or "(stdin)". */
  name: string;
  /** null: a plain tarball. */
  compression: TarCompression | null;
  policy: TimePolicy;
  /** -N: resolve member uname/gname here; unknown names keep the numeric ids. */
  users?: UserDb;
  warn: Warn;
  /** The size of the ring a tarball file is read through (tests make it small, so that it wraps within a member). */
  ringBytes?: number;
  /** false: a decompressing command's stdout is read as a stream even where a FIFO can be made (tests). */
  fifo?: boolean;
}

const MAX_NAME_BYTES = 255;

const TYPES: Partial<Record<string, NodeType>> = {
  file: 'file',
  'contiguous-file': 'file',
  directory: 'dir',
  symlink: 'symlink',
  'character-device': 'chardev',
  'block-device': 'blockdev',
  fifo: 'fifo',
};

/**
 * A member as tar-stream's iterator yields it: its header, a stream of its
 * data, and the stream offset of its header (its data follows the header).
 */
type Entry = AsyncIterable<Buffer> & { header: Header; offset: number };

const HEADER_BYTES = 512;

/** tar-stream's Extract as far as the pax hook needs to see it. */
interface ExtractInternals {
  _decodeLongHeader(buf: Buffer): void;
  _header: { type: string | null } | null;
}

/**
 * tar-stream decodes pax records as UTF-8 text, which destroys the bytes of
 * non-UTF-8 names and of binary xattr values. This keeps the raw records of
 * each pax header as tar-stream reads it; the member it applies to is the
 * next 'entry'.
 */
class PaxTap {
  private global: PaxRecords = new Map();
  private local: PaxRecords | undefined;

  constructor(ex: Extract) {
    const internals = ex as unknown as ExtractInternals;
    const decode = internals._decodeLongHeader;
    if (typeof decode !== 'function') throw new Error('tar-stream changed: Extract._decodeLongHeader is gone (pax records cannot be read raw)');
    const tap = this;
    internals._decodeLongHeader = function (this: ExtractInternals, buf: Buffer): void {
      const type = this._header?.type;
      if (type === 'pax-header') tap.local = parsePaxRecords(buf);
      else if (type === 'pax-global-header') tap.global = mergePax(tap.global, parsePaxRecords(buf));
      decode.call(this, buf);
    };
  }

  /** The records that apply to the member just announced. */
  take(): PaxRecords {
    const r = mergePax(this.global, this.local);
    this.local = undefined;
    return r;
  }
}

/** Member names as path components; '.' and empty components dropped, a leading '/' ignored (as GNU tar strips it). */
function components(name: Uint8Array, where: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= name.length; i++) {
    if (i < name.length && name[i] !== 0x2f) continue;
    const c = name.subarray(start, i);
    start = i + 1;
    if (c.length === 0 || (c.length === 1 && c[0] === 0x2e)) continue;
    if (c.length === 2 && c[0] === 0x2e && c[1] === 0x2e) throw new UserError(`${where}: path contains '..'`);
    if (c.length > MAX_NAME_BYTES) throw new UserError(`${where}: name longer than ${MAX_NAME_BYTES} bytes`);
    out.push(Buffer.from(c));
  }
  return out;
}

class TarTree {
  readonly builder: TreeBuilder;
  /**
   * Names of inodes with more than one (hard links), so that replaced data
   * is handed back when its last name goes; an inode not in it has one.
   */
  private readonly names = new Map<Inode, number>();
  readonly times = new SharedTime();

  constructor(private readonly ctx: InputContext, private readonly policy: TimePolicy) {
    const root = newDir(0o755);
    setTimes(root, defaultTime(policy));
    markImplicit(root);
    this.builder = new TreeBuilder(root);
  }

  private implicitDir = (): Inode => {
    const d = newDir(0o755);
    setTimes(d, defaultTime(this.policy));
    markImplicit(d);
    return d;
  };

  lookup(parts: Uint8Array[]): Inode | undefined {
    let ino: Inode | undefined = this.builder.root;
    for (const p of parts) {
      if (ino?.type !== 'dir') return undefined;
      ino = this.builder.child(ino, p)?.inode;
    }
    return ino;
  }

  /**
   * Put `inode` at `parts`: a new member's inode, or (`link`) another name
   * of one placed before. A new regular file is its own directory entry.
   */
  place(parts: Uint8Array[], inode: Inode, where: string, link = false): void {
    if (parts.length === 0) {
      if (inode.type !== 'dir') throw new UserError(`${where}: the archive's top directory is not a directory member`);
      adoptListed(this.builder.root, inode);
      return;
    }
    const parent = this.builder.parentOf(parts, this.implicitDir, where);
    const name = parts[parts.length - 1]!;
    const old = this.builder.child(parent, name)?.inode;
    if (old !== undefined) {
      if (old.type === 'dir' && inode.type === 'dir') {
        adoptListed(old, inode);
        return;
      }
      if (old.type === 'dir') {
        if (this.builder.children(old).next().done !== true) {
          throw new UserError(`${where}: would replace a directory that holds other members`);
        }
      } else {
        this.release(old);
      }
    }
    if (link) this.names.set(inode, (this.names.get(inode) ?? 1) + 1);
    if (!link && inode instanceof HostFile) this.builder.addEntry(parent, inode);
    else this.builder.add(parent, name, inode);
  }

  private release(inode: Inode): void {
    const n = (this.names.get(inode) ?? 1) - 1;
    if (n > 0) {
      this.names.set(inode, n);
      return;
    }
    this.names.delete(inode);
    if (inode.source !== undefined) this.ctx.discard(inode.source);
  }
}


/** Where reading is, for messages: the member whose data is being read, else the last one read. */
interface MemberState {
  member?: string;
  size?: number;
  last?: string;
}

/** Where compressed data that ended too soon left the archive: in a member, after one, or (nothing read) ''. */
function whereCut(at: MemberState): string {
  return at.member !== undefined ? ` in member '${at.member}'` : at.last !== undefined ? ` after member '${at.last}'` : '';
}

/** What went wrong, as one line naming the archive and, where known, the member. */
function describeFailure(err: unknown, name: string, at: MemberState, compression: TarCompression | null): UserError {
  if (err instanceof UserError) return err.message.startsWith(name) ? err : new UserError(`${name}: ${err.message}`);
  const msg = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown }).code;
  if (code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(msg)) {
    return new UserError(`${name}: truncated gzip data${whereCut(at)}`);
  }
  if (typeof code === 'string' && code.startsWith('Z_')) return new UserError(`${name}: not valid gzip data (${msg})`);
  if (errnoCode(err) !== undefined) return fsUserError(name, err);
  if (/Unexpected end of data/.test(msg)) {
    if (at.member !== undefined) {
      return new UserError(`${name}: truncated archive: member '${at.member}' is cut short (${at.size} bytes expected)`);
    }
    return new UserError(`${name}: truncated archive${at.last ? ` after member '${at.last}'` : ''}`);
  }
  if (/Invalid tar header/.test(msg)) {
    // (a compressed manifest, say: what the command gave was no tarball)
    const of = compression === null ? '' : ` of the ${compression}-decompressed data`;
    return new UserError(`${name}: not a valid tar archive (bad header${at.last ? ` after member '${at.last}'` : ` at the start${of}`})`);
  }
  return new UserError(`${name}: ${msg}`);
}

function openTarball(path: string, name: string): number {
  try {
    return openSync(path, 'r');
  } catch (err) {
    throw fsUserError(name, err);
  }
}

/** How long a decompressing command whose output is no tarball is given to exit with its own complaint. */
const COMMAND_GRACE_MS = 1000;

/**
 * Read a tarball into a tree, writing file data through `ctx`: from a
 * stream, from a file (`{ file }`, opened here), or pulled (TarPull,
 * closed here).
 */
export async function readTar(source: TarInput, ctx: InputContext, opts: TarOptions): Promise<Inode> {
  // latin1 turns header names into strings byte for byte (the typings omit the option).
  const ex = extract({ filenameEncoding: 'latin1' } as Parameters<typeof extract>[0]);
  const pax = new PaxTap(ex);
  let failure: unknown;
  const fail = (e: unknown): void => {
    failure ??= e;
    ex.destroy(e as Error);
  };
  // Uncompressed bytes from a file or a pull, and what a host command
  // decompresses into a FIFO, are read straight into the ring; zlib's output
  // and a library caller's stream come as streams.
  const byHost = opts.compression !== null && decompressedByHost(opts.compression);
  let pull: TarPull | undefined;
  let input: Readable | undefined;
  let host: HostDecompressor | undefined;
  if (isTarFile(source)) {
    // a file a host command decompresses is read by the command itself (its descriptor)
    if (opts.compression === null) pull = filePull(source.file);
    else if (byHost) host = hostDecompressor(opts.compression, openTarball(source.file, opts.name), fail, opts.fifo);
    else input = createReadStream(source.file, { highWaterMark: 1 << 20 });
  } else if (isTarPull(source)) {
    if (opts.compression === null) pull = source;
    else if (byHost) host = hostDecompressor(opts.compression, source, fail, opts.fifo);
    else input = pullStream(source);
  } else {
    input = source;
    if (byHost) host = hostDecompressor(opts.compression!, source, fail, opts.fifo);
  }
  // (the command's output is closed by host.stop(), not where the pump
  // stops: a command whose output is no tarball is read to its own complaint)
  const hostOut = host?.output;
  if (hostOut !== undefined && isTarPull(hostOut)) pull = { pull: (into) => hostOut.pull(into), close() {} };
  // (streams' chunks are Node's own: no ring for them)
  const ring = pull !== undefined ? new TarRing(opts.ringBytes) : undefined;
  const gz = opts.compression !== null && !byHost ? createGunzip() : undefined;
  // what tar-stream itself found wrong with the bytes it was given
  let parseError: unknown;
  ex.on('error', (e) => {
    if (failure === undefined) parseError ??= e;
  });
  input?.on('error', fail);
  gz?.on('error', fail);
  if (pull !== undefined) pump(pull, ring!, ex).catch(fail);
  else (gz ? input!.pipe(gz) : (hostOut as Readable | undefined) ?? input!).pipe(ex as unknown as Writable);

  const tree = new TarTree(ctx, opts.policy);
  const at: MemberState = {};
  try {
    for await (const entry of ex) {
      await readMember(entry as unknown as Entry, pax.take(), tree, ctx, opts, at, ring);
    }
    // a command that failed, or could not run, may have stopped where a
    // tarball can end (or before it began)
    const why = await host?.status();
    if (why) throw new UserError(`${opts.name}: ${why(whereCut(at))}`);
    const remarks = host?.remarks();
    if (remarks) opts.warn(`${opts.name}: ${remarks}`);
  } catch (err) {
    // Bytes that are no tarball (cut short, garbled) are most likely the
    // command's failure on corrupt or truncated input, and then it exits
    // at once with its own complaint, which makes the better message. It
    // is given a moment, not the rest of its input: valid compressed data
    // around something that is no tarball would be decoded to the end (on
    // standard input, until the writer closes it) before the error showed.
    if (host !== undefined && parseError !== undefined && (failure ?? err) === parseError) {
      host.discard();
      const why = await host.status(COMMAND_GRACE_MS);
      if (why) throw new UserError(`${opts.name}: ${why(whereCut(at))}`);
    }
    throw describeFailure(failure ?? err, opts.name, at, opts.compression);
  } finally {
    host?.stop();
    gz?.destroy();
    input?.destroy();
    pull?.close();
    // (a pulled source under a stream of its pulls: closed now, not at its next pull)
    if (isTarPull(source)) source.close();
  }
  return tree.builder.finish();
}

async function readMember(
  entry: Entry, records: PaxRecords, tree: TarTree, ctx: InputContext, opts: TarOptions,
  at: MemberState, ring: TarRing | undefined,
): Promise<void> {
  const h = entry.header;
  // what came before this member's header is parsed and written
  ring?.release(entry.offset);
  const nameBytes = records.get('path') ?? Buffer.from(h.name, 'latin1');
  const display = showPath(nameBytes);
  const where = `${opts.name}: member '${display}'`;
  if ([...records.keys()].some((k) => k.startsWith('GNU.sparse.'))) {
    throw new UserError(`${where}: sparse members are not supported (create the archive without --sparse)`);
  }
  const htype = h.type as string | null; // null for type flags tar-stream does not know
  const type = TYPES[htype ?? ''];
  const parts = components(nameBytes, where);

  if (htype === 'link') {
    const target = records.get('linkpath') ?? Buffer.from(h.linkname ?? '', 'latin1');
    const targetParts = components(target, where);
    const inode = tree.lookup(targetParts);
    if (inode === undefined) throw new UserError(`${where}: hard link to '${showPath(target)}', which is not in the archive before it`);
    if (inode.type === 'dir') throw new UserError(`${where}: hard link to directory '${showPath(target)}'`);
    await drain(entry);
    tree.place(parts, inode, where, true);
    at.last = display;
    return;
  }
  if (type === undefined) throw new UserError(`${where}: unsupported member type${htype ? ` '${htype}'` : ''}`);

  const mtime = tree.times.share(entryTime(opts.policy, paxTime(records, 'mtime', where) ?? headerTime(h.mtime, where)));
  const perm = (h.mode ?? 0) & 0o7777;
  const uid = owner(records, 'uid', 'uname', h.uid, h.uname, opts.users, where);
  const gid = owner(records, 'gid', 'gname', h.gid, h.gname, opts.users, where);
  // A regular file is kept as a directory walk keeps one (no object for its
  // entry nor for its written data: see HostFile), the largest part of a
  // tree; the others as the walk makes them, one shape for all.
  const inode: Inode = type === 'file'
    ? new HostFile(perm, uid, gid, h.size ?? 0, mtime, NO_PREFIX, tree.builder.ownName(latin1Of(parts[parts.length - 1] ?? NO_PREFIX)))
    : {
      type, perm, uid, gid, size: 0, atime: mtime, mtime, ctime: mtime, crtime: mtime,
      target: undefined, rdevMajor: undefined, rdevMinor: undefined,
      entries: undefined, xattrs: undefined, objid: 0,
    };
  const xattrs = paxXattrs(records);
  if (xattrs) inode.xattrs = xattrs;

  switch (type) {
    case 'file': {
      const size = inode.size;
      const sink = ctx.beginFile(size, parts.map((c) => Buffer.from(c).toString('utf8')).join('/'));
      at.member = display;
      at.size = size;
      // each piece is written (copied) before the next is taken, so the
      // ring may be written over up to it
      let offset = entry.offset + HEADER_BYTES;
      for await (const chunk of entry) {
        if (ring !== undefined && chunk.buffer === ring.buf.buffer && chunk.byteOffset !== ring.buf.byteOffset + ring.positionOf(offset)) {
          throw new Error(`tar-stream changed: data at ring position ${chunk.byteOffset - ring.buf.byteOffset}, not where stream offset ${offset} lies`);
        }
        sink.write(chunk);
        offset += chunk.length;
        ring?.release(offset);
      }
      inode.source = sink.end();
      at.member = undefined;
      break;
    }
    case 'dir':
      // tar-stream passes a directory's data on as headers, and its entry
      // never ends: a build would hang (GNU tar skips such data)
      if ((h.size ?? 0) > 0) throw new UserError(`${where}: a directory member with ${h.size} bytes of data (not supported)`);
      inode.entries = [];
      await drain(entry);
      break;
    case 'symlink': {
      const target = records.get('linkpath') ?? Buffer.from(h.linkname ?? '', 'latin1');
      if (target.length === 0) throw new UserError(`${where}: symlink with an empty target`);
      inode.target = Buffer.from(target);
      await drain(entry);
      break;
    }
    case 'chardev':
    case 'blockdev':
      inode.rdevMajor = paxNumber(records, 'SCHILY.devmajor', where) ?? h.devmajor ?? 0;
      inode.rdevMinor = paxNumber(records, 'SCHILY.devminor', where) ?? h.devminor ?? 0;
      await drain(entry);
      break;
    default:
      await drain(entry);
  }
  tree.place(parts, inode, where);
  at.last = display;
}

/** The host path a tar member's HostFile is given: none (its data is always written before anything asks). */
const NO_PREFIX = Buffer.alloc(0);

function headerTime(d: Date | undefined, where: string): Timespec {
  const ms = d?.getTime() ?? 0;
  if (!Number.isFinite(ms)) throw new UserError(`${where}: invalid modification time`);
  return Object.freeze({ sec: Math.floor(ms / 1000), nsec: 0 });
}

function owner(
  records: PaxRecords, idKey: string, nameKey: string, headerId: number | undefined, headerName: string | undefined,
  users: UserDb | undefined, where: string,
): number {
  const id = paxNumber(records, idKey, where) ?? headerId ?? 0;
  if (users === undefined) return id;
  const name = paxText(records, nameKey) ?? headerName ?? '';
  if (name === '') return id;
  return (idKey === 'uid' ? users.uid(name) : users.gid(name)) ?? id;
}

/** Read past a member's data (hard links and pax-era tars may carry some). */
async function drain(entry: Entry): Promise<void> {
  for await (const _ of entry) {
    // nothing to keep
  }
}
