// mtree(5) text -> a flat list of entries, each with its full path and its
// effective keywords. Shared by manifests (the FreeBSD METALOG) and -F spec
// files; what the keywords mean for the tree is up to those two.
//
// Understood: "#" comments (also after the keywords), a backslash at the end
// of a line continuing it, "/set" and "/unset" defaults, vis(3) escapes in
// names and values (\040, \s, \\, \M-x, \^x ...), full paths ("./usr/bin/ls",
// as install(1) writes) and the hierarchical form of `mtree -c` (a directory
// line enters the directory, ".." leaves it). Not understood: quoting and
// $VARIABLE expansion in values (makefs's contents= extensions).

import { UserError } from '../util/errors.js';
import type { NodeType, Timespec } from './tree.js';
import { linuxDevice, showPath } from './walk.js';
import type { UserDb } from './passwd.js';

export interface MtreeEntry {
  /** "file:line: path", the start of every message about the entry. */
  readonly where: string;
  /** The manifest's name and the entry's (first) line: "file:line" (where's start). */
  readonly line: string;
  /** The entry's (first) line's number. */
  readonly lineNo: number;
  /** Path from the root as raw name components, each a latin1 string (one code unit per byte; [] is the root). */
  readonly path: string[];
  /** Keywords in effect: the /set defaults, then the line's own (moved to the end, so the later of uid and uname wins). */
  readonly kw: Map<string, string>;
}

export type Warn = (message: string) => void;

/**
 * The manifest's bytes, a piece at a time (null at the end): a METALOG is
 * read line by line as it comes, never held whole, so what a build keeps
 * of it is the tree alone.
 */
export type ChunkSource = () => Uint8Array | null;

/** The whole text at once (a spec, a test, standard input), let go of once given. */
export function wholeText(data: Uint8Array): ChunkSource {
  let rest: Uint8Array | null = data;
  return () => {
    const d = rest;
    rest = null;
    return d;
  };
}

const MAX_NAME_BYTES = 255;

/** Keywords mtree(5) defines that say nothing the image can hold; accepted silently. */
const IGNORED = new Set([
  'cksum', 'md5', 'md5digest', 'sha1', 'sha1digest', 'sha256', 'sha256digest', 'sha384', 'sha384digest',
  'sha512', 'sha512digest', 'rmd160', 'rmd160digest', 'ripemd160digest', 'nlink', 'inode', 'tags',
  'ignore', 'nochange', 'resdevice',
]);
const USED = new Set(['type', 'mode', 'uid', 'gid', 'uname', 'gname', 'time', 'link', 'size', 'flags', 'contents', 'device', 'optional']);
const NO_VALUE = new Set(['optional', 'ignore', 'nochange']);

/** The path of an entry as messages show it: "." for the root, "./a/b" below. */
export function showEntryPath(path: readonly (Uint8Array | string)[]): string {
  return path.length === 0 ? '.' : `./${path.map((c) => showPath(typeof c === 'string' ? latin1Bytes(c) : c)).join('/')}`;
}

/** A latin1 string's bytes (one per code unit). */
export function latin1Bytes(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/**
 * A copy of `s` that refers to nothing else: V8 makes a slice of 13 or more
 * characters a view that keeps the whole string it came from alive, and a
 * name kept by the tree must not keep a megabyte of manifest text with it.
 */
export function ownString(s: string): string {
  if (s.length < 13) return s;
  // (through one reused buffer: a Buffer per name would churn the C heap,
  // whose fragments stay in the process's RSS for the rest of the build)
  if (ownScratch.length < s.length) ownScratch = Buffer.allocUnsafeSlow(Math.max(s.length, 2 * ownScratch.length));
  const n = ownScratch.write(s, 0, 'latin1');
  return ownScratch.toString('latin1', 0, n);
}

let ownScratch = Buffer.allocUnsafeSlow(1024);

/** vis(3) decoding (strunvis's escapes); undefined for a dangling backslash. */
export function unvis(s: string): Buffer | undefined {
  const out: number[] = [];
  const ctrl = (c: string): number => (c === '?' ? 0x7f : c.charCodeAt(0) & 0x1f);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 0x5c) {
      out.push(c & 0xff);
      continue;
    }
    if (++i >= s.length) return undefined;
    const d = s[i]!;
    if (d >= '0' && d <= '7') {
      let v = 0;
      let n = 0;
      while (n < 3 && i < s.length && s[i]! >= '0' && s[i]! <= '7') {
        v = v * 8 + (s.charCodeAt(i) - 0x30);
        i++;
        n++;
      }
      i--;
      out.push(v & 0xff);
      continue;
    }
    switch (d) {
      case 'n': out.push(0x0a); break;
      case 'r': out.push(0x0d); break;
      case 't': out.push(0x09); break;
      case 'b': out.push(0x08); break;
      case 'a': out.push(0x07); break;
      case 'f': out.push(0x0c); break;
      case 'v': out.push(0x0b); break;
      case 's': out.push(0x20); break;
      case 'E': out.push(0x1b); break;
      case '\n': case '$': break; // vis's "hidden" newline and marker: no byte
      case '^':
        if (++i >= s.length) return undefined;
        out.push(ctrl(s[i]!));
        break;
      case 'M': {
        const kind = s[i + 1];
        if (i + 2 >= s.length || (kind !== '-' && kind !== '^')) return undefined;
        const x = s[i + 2]!;
        out.push(0x80 | (kind === '-' ? x.charCodeAt(0) & 0x7f : ctrl(x)));
        i += 2;
        break;
      }
      default: out.push(s.charCodeAt(i) & 0xff); // "\#", "\ ": the character itself
    }
  }
  return Buffer.from(out);
}

/** unvis as a latin1 string; a string without a backslash is its own decoding. */
function unvisLatin1(s: string): string | undefined {
  if (!s.includes('\\')) return s;
  return unvis(s)?.toString('latin1');
}

/**
 * Logical lines (physical lines joined where one ends in an odd number of
 * backslashes), each with the number of its first physical line, from the
 * text as it comes in pieces. latin1 maps bytes 1:1 to code units, so
 * names keep every byte.
 */
function* logicalLines(next: ChunkSource): Generator<[line: number, text: string]> {
  let lineNo = 0;
  let start = 0;
  let acc = '';
  let continuing = false;
  let partial = '';
  const physical = function* (): Generator<string> {
    for (let chunk = next(); chunk !== null; chunk = next()) {
      const text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1');
      let from = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
        const piece = text.slice(from, nl);
        from = nl + 1;
        if (partial.length > 0) {
          yield partial + piece;
          partial = '';
        } else {
          yield piece;
        }
      }
      if (from < text.length) partial += text.slice(from);
    }
    if (partial.length > 0) yield partial;
  };
  for (let l of physical()) {
    lineNo++;
    if (l.endsWith('\r')) l = l.slice(0, -1);
    if (!continuing) start = lineNo;
    let slashes = 0;
    while (slashes < l.length && l.charCodeAt(l.length - 1 - slashes) === 0x5c) slashes++;
    if (slashes % 2 === 1) {
      acc += `${l.slice(0, -1)} `;
      continuing = true;
      continue;
    }
    yield [start, acc.length > 0 ? acc + l : l];
    acc = '';
    continuing = false;
  }
  if (continuing) yield [start, acc];
}

/** Words split at unescaped blanks; an unescaped '#' starting a word ends the line. */
function words(line: string): string[] {
  const out: string[] = [];
  const n = line.length;
  let i = 0;
  while (i < n) {
    let c = line.charCodeAt(i);
    if (c === 0x20 || c === 0x09) {
      i++;
      continue;
    }
    if (c === 0x23) break; // '#' starting a word
    const from = i;
    while (i < n) {
      c = line.charCodeAt(i);
      if (c === 0x20 || c === 0x09) break;
      i += c === 0x5c && i + 1 < n ? 2 : 1; // an escaped character is part of the word
    }
    out.push(line.slice(from, i));
  }
  return out;
}

function keywordPairs(ws: string[], from: number, where: string, warn: Warn): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = from; i < ws.length; i++) {
    const w = ws[i]!;
    const eq = w.indexOf('=');
    const key = eq < 0 ? w : w.slice(0, eq);
    const value = eq < 0 ? undefined : w.slice(eq + 1);
    if (!USED.has(key) && !IGNORED.has(key)) {
      warn(`${where}: unsupported keyword '${key}' ignored`);
      continue;
    }
    if (NO_VALUE.has(key)) {
      if (value !== undefined) throw new UserError(`${where}: keyword '${key}' does not take a value`);
      out.push([key, '']);
      continue;
    }
    if (value === undefined || value === '') throw new UserError(`${where}: keyword '${key}' needs a value`);
    out.push([key, value]);
  }
  return out;
}

class Entry implements MtreeEntry {
  constructor(private readonly file: string, readonly lineNo: number, readonly path: string[], readonly kw: Map<string, string>) {}

  // (made when a message needs them: strings per line would be much of the parse's garbage)
  get line(): string {
    return `${this.file}:${this.lineNo}`;
  }

  get where(): string {
    return `${this.line}: ${showEntryPath(this.path)}`;
  }
}

/**
 * The entries of an mtree(5) file, one at a time as the text comes. `name`
 * is how messages call it ("METALOG", "(stdin)").
 */
export function* mtreeEntries(next: ChunkSource, name: string, warn: Warn): Generator<MtreeEntry> {
  const defaults = new Map<string, string>();
  let cwd: string[] = [];
  for (const [lineNo, l] of logicalLines(next)) {
    const ws = words(l);
    if (ws.length === 0) continue;
    const where = `${name}:${lineNo}`;
    const first = ws[0]!;
    if (first.charCodeAt(0) === 0x2f) {
      if (first === '/set') {
        for (const [k, v] of keywordPairs(ws, 1, where, warn)) defaults.set(k, v);
      } else if (first === '/unset') {
        for (const k of ws.slice(1)) {
          if (k === 'all') defaults.clear();
          else defaults.delete(k);
        }
      } else {
        throw new UserError(`${where}: unknown command '${first}' (only /set and /unset)`);
      }
      continue;
    }
    const raw = unvisLatin1(first);
    if (raw === undefined) throw new UserError(`${where}: bad escape in path '${first}'`);
    if (raw === '..') {
      // mtree -c ends with a ".." at the top: nothing to warn about.
      cwd = cwd.slice(0, -1);
      continue;
    }
    const path = resolvePath(raw, cwd, where);
    const kw = new Map(defaults);
    for (const [k, v] of keywordPairs(ws, 1, where, warn)) {
      kw.delete(k);
      kw.set(k, v);
    }
    const entry = new Entry(name, lineNo, path, kw);
    cwd = inferType(entry) === 'dir' ? path : path.slice(0, -1);
    yield entry;
  }
}

/** Parse a whole mtree(5) text. `name` is how messages call it. */
export function parseMtree(data: Uint8Array, name: string, warn: Warn): MtreeEntry[] {
  return [...mtreeEntries(wholeText(data), name, warn)];
}

function resolvePath(raw: string, cwd: string[], where: string): string[] {
  // "." is the top in both forms (mtree -c writes it first); taking it as the
  // current directory would make a METALOG's "." depend on the line before.
  if (raw === '.') return [];
  const full = raw.includes('/');
  const out = full ? [] : [...cwd];
  for (const p of full ? raw.split('/') : [raw]) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new UserError(`${where}: path '${raw}' may not contain '..'`);
    if (p.length > MAX_NAME_BYTES) {
      // (the start of it: a line of a file that is no manifest can be megabytes long)
      throw new UserError(`${where}: name '${showPath(latin1Bytes(p.slice(0, 40)))}...' longer than ${MAX_NAME_BYTES} bytes`);
    }
    out.push(p);
  }
  return out;
}

// ---------------------------------------------------------------- keyword values

const TYPES: Record<string, NodeType> = {
  file: 'file', dir: 'dir', link: 'symlink', fifo: 'fifo', socket: 'socket', char: 'chardev', block: 'blockdev',
};

/** The entry's type: type=, else as makefs infers it (contents= a file, link= a symlink, else a directory). */
export function inferType(e: MtreeEntry): NodeType {
  const t = e.kw.get('type');
  if (t !== undefined) {
    const type = TYPES[t];
    if (type === undefined) {
      throw new UserError(`${e.where}: unknown type '${t}' (block, char, dir, fifo, file, link or socket)`);
    }
    return type;
  }
  if (e.kw.has('contents')) return 'file';
  if (e.kw.has('link')) return 'symlink';
  return 'dir';
}

export function hasType(e: MtreeEntry): boolean {
  return e.kw.has('type');
}

/** mode=: octal permission bits (symbolic modes are not supported, as in makefs). */
export function modeOf(e: MtreeEntry): number | undefined {
  const v = e.kw.get('mode');
  if (v === undefined) return undefined;
  if (!/^[0-7]+$/.test(v) || parseInt(v, 8) > 0o7777) {
    throw new UserError(`${e.where}: invalid mode '${v}' (an octal number up to 07777)`);
  }
  return parseInt(v, 8);
}

function idNumber(e: MtreeEntry, key: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 0xffffffff) throw new UserError(`${e.where}: invalid ${key} '${v}'`);
  return Number(v);
}

/** Owner from uid=/uname= and gid=/gname=, the later keyword of each pair winning. */
export function ownerOf(e: MtreeEntry, users: UserDb): { uid?: number; gid?: number } {
  let uid: number | undefined;
  let gid: number | undefined;
  for (const [k, v] of e.kw) {
    if (k === 'uid') uid = idNumber(e, k, v);
    else if (k === 'gid') gid = idNumber(e, k, v);
    else if (k === 'uname') {
      uid = users.uid(v);
      if (uid === undefined) throw new UserError(`${e.where}: unknown user '${v}' (not in ${users.userSource})`);
    } else if (k === 'gname') {
      gid = users.gid(v);
      if (gid === undefined) throw new UserError(`${e.where}: unknown group '${v}' (not in ${users.groupSource})`);
    }
  }
  return { uid, gid };
}

/**
 * time=SEC[.NSEC]: as BSD mtree writes it, the digits after the dot count
 * nanoseconds. SEC may be negative (a time before 1970): mtree prints
 * st_mtim's two fields as they are, so -6.750000000 is 6 s before the
 * epoch plus 0.75 s, and makefs and libarchive read it back that way.
 */
export function timeOf(e: MtreeEntry): Timespec | undefined {
  const v = e.kw.get('time');
  if (v === undefined) return undefined;
  const m = /^(-?\d+)(?:\.(\d+))?$/.exec(v);
  const sec = m === null ? NaN : Number(m[1]);
  const nsec = m === null || m[2] === undefined ? 0 : Number(m[2]);
  if (!Number.isSafeInteger(sec) || !(nsec <= 999_999_999)) {
    throw new UserError(`${e.where}: invalid time '${v}' (seconds[.nanoseconds])`);
  }
  return Object.freeze({ sec: sec || 0, nsec }); // no -0
}

/** A value that is a path or a link target: vis(3)-decoded bytes. */
export function bytesOf(e: MtreeEntry, key: 'link' | 'contents'): Uint8Array | undefined {
  const v = e.kw.get(key);
  if (v === undefined) return undefined;
  const b = unvis(v);
  if (b === undefined) throw new UserError(`${e.where}: bad escape in ${key} '${v}'`);
  return b;
}

export function sizeOf(e: MtreeEntry): number | undefined {
  const v = e.kw.get('size');
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new UserError(`${e.where}: invalid size '${v}'`);
  return Number(v);
}

/** flags=: file flags names (uchg,nodump ...), checked for form only. */
export function flagsOf(e: MtreeEntry): string[] | undefined {
  const v = e.kw.get('flags');
  if (v === undefined) return undefined;
  if (!/^[a-z]+(,[a-z]+)*$/.test(v)) throw new UserError(`${e.where}: invalid flags '${v}'`);
  return v === 'none' ? [] : v.split(',');
}

/**
 * device=: "format,major,minor[,subunit]" (the format names the host it
 * came from; major and minor are taken as given) or one number, split the
 * way Linux's glibc packs dev_t.
 */
export function deviceOf(e: MtreeEntry): [number, number] | undefined {
  const v = e.kw.get('device');
  if (v === undefined) return undefined;
  const parts = v.split(',');
  const num = (s: string): number => (/^(0x[0-9a-f]+|0[0-7]*|[1-9]\d*)$/i.test(s) ? Number(s.startsWith('0') && !/^0x/i.test(s) ? parseInt(s, 8) : s) : NaN);
  if (parts.length >= 3 && parts.length <= 4 && /^[a-z0-9]+$/.test(parts[0]!)) {
    const major = num(parts[1]!);
    const minor = num(parts[2]!);
    if (Number.isSafeInteger(major) && Number.isSafeInteger(minor) && major <= 0xffffffff && minor <= 0xffffffff) return [major, minor];
  } else if (parts.length === 1) {
    const n = num(v);
    if (Number.isSafeInteger(n)) return linuxDevice(BigInt(n));
  }
  throw new UserError(`${e.where}: invalid device '${v}' (format,major,minor or a number)`);
}

export function isOptional(e: MtreeEntry): boolean {
  return e.kw.has('optional');
}
