#!/usr/bin/env node
// Golden images: small input trees made by a deterministic recipe, the
// tsmakefs command line for each, and the SHA-256 of the image it must write,
// byte for byte. Everything lives in golden/cases.json:
//
//   trees  name -> recipe: the entries of a staging tree, each with explicit
//          mode, owner and mtime (nanoseconds), so the tree is the same on
//          any machine, under any umask, in any directory.
//   cases  name, the trees it stages, the CLI arguments ({image}, {tree},
//          {tree1}, ... stand for the paths), optionally "env" (variables
//          such as SOURCE_DATE_EPOCH; inherited ones tsmakefs reads are
//          dropped), and the pinned sha256.
//
//   node scripts/golden.mjs --check             rebuild every case, compare with the pins
//   node scripts/golden.mjs --update            rebuild every case, rewrite the pins (npm run golden:update)
//   options: --case NAME (repeatable)  --keep DIR (keep trees and images there)
//            --no-build (do not run tsc first)  --list
//
// As a command it compiles src/ first (tsc, about a second), so a pin is
// always the image the current source writes. The golden tests import this
// module (loadGolden, makeTree, runCase, ...) and rebuild through the same
// code, so the script and the test can never disagree about what a case is.
//
// Trees need root: every entry is owned by uid 0 unless the recipe says
// otherwise, some by other users, and there are device nodes. As anyone else
// nothing can be rebuilt as pinned; the script says so and exits 2.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, createReadStream, existsSync, lchownSync, linkSync, lstatSync, mkdirSync,
  mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const GOLDEN_FILE = join(REPO_ROOT, 'golden', 'cases.json');
export const TSMAKEFS_BIN = join(REPO_ROOT, 'bin', 'tsmakefs');
export const UPDATE_HINT = 'if the change is intended, run `npm run golden:update` and commit golden/cases.json';

const IS_ROOT = process.getuid?.() === 0;

// ---------------------------------------------------------------- cases.json

/** Read and validate golden/cases.json (or another file of that shape). */
export function loadGolden(file = GOLDEN_FILE) {
  const golden = JSON.parse(readFileSync(file, 'utf8'));
  if (typeof golden !== 'object' || golden === null || typeof golden.trees !== 'object' || !Array.isArray(golden.cases)) {
    throw new Error(`${file}: expected { "trees": {...}, "cases": [...] }`);
  }
  const names = new Set();
  for (const c of golden.cases) {
    const where = `${file}: case ${JSON.stringify(c.name)}`;
    if (typeof c.name !== 'string' || !/^[a-z0-9][a-z0-9-]*$/.test(c.name)) throw new Error(`${where}: name must be [a-z0-9-]+`);
    if (names.has(c.name)) throw new Error(`${where}: name used twice`);
    names.add(c.name);
    if (!Array.isArray(c.trees) || c.trees.length === 0) throw new Error(`${where}: "trees" must list at least one tree`);
    for (const t of c.trees) if (!(t in golden.trees)) throw new Error(`${where}: no tree named ${JSON.stringify(t)}`);
    if (!Array.isArray(c.args) || !c.args.every((a) => typeof a === 'string')) throw new Error(`${where}: "args" must be strings`);
    if (!c.args.includes('{image}')) throw new Error(`${where}: "args" must contain {image}`);
    if (c.sha256 !== null && !/^[0-9a-f]{64}$/.test(c.sha256)) throw new Error(`${where}: "sha256" must be 64 hex digits or null`);
    if (c.env !== undefined && (typeof c.env !== 'object' || !Object.values(c.env).every((v) => typeof v === 'string'))) {
      throw new Error(`${where}: "env" maps variable names to strings`);
    }
    for (const k of Object.keys(c)) if (!['name', 'about', 'trees', 'args', 'env', 'sha256'].includes(k)) throw new Error(`${where}: unknown key ${k}`);
  }
  for (const [name, recipe] of Object.entries(golden.trees)) expandRecipe(recipe, name); // validates
  return golden;
}

/**
 * JSON as the golden file keeps it: two-space indents, but any array or
 * object that fits on one line (an entry of a recipe, an argument list)
 * stays on one line, so a recipe reads as one entry per line.
 */
export function formatGolden(value) {
  const WIDTH = 120;
  const inline = (v) => {
    if (v === null || typeof v !== 'object') return JSON.stringify(v);
    if (Array.isArray(v)) return `[${v.map(inline).join(', ')}]`;
    const kv = Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${inline(x)}`);
    return kv.length === 0 ? '{}' : `{ ${kv.join(', ')} }`;
  };
  const fmt = (v, indent, lead) => {
    const flat = inline(v);
    if (v === null || typeof v !== 'object' || lead + flat.length <= WIDTH) return flat;
    const inner = `${indent}  `;
    if (Array.isArray(v)) {
      // Scalars (an argument list) are packed several to a line; anything else, one per line.
      if (v.every((x) => x === null || typeof x !== 'object')) {
        // An option and its value ("-o", "...") stay on one line.
        const groups = [];
        for (let i = 0; i < v.length; i++) {
          const pair = typeof v[i] === 'string' && v[i].startsWith('-') && typeof v[i + 1] === 'string' && !v[i + 1].startsWith('-');
          groups.push((pair ? [v[i], v[++i]] : [v[i]]).map((y) => `${JSON.stringify(y)},`).join(' '));
        }
        const lines = [];
        let line = '';
        for (const x of groups) {
          if (line && inner.length + line.length + x.length + 1 > WIDTH) { lines.push(line); line = ''; }
          line += line ? ` ${x}` : x;
        }
        lines.push(line);
        return `[\n${lines.map((l) => inner + l).join('\n').replace(/,$/, '')}\n${indent}]`;
      }
      return `[\n${v.map((x) => inner + fmt(x, inner, inner.length)).join(',\n')}\n${indent}]`;
    }
    return `{\n${Object.entries(v).map(([k, x]) => {
      const head = `${inner}${JSON.stringify(k)}: `;
      return head + fmt(x, inner, head.length);
    }).join(',\n')}\n${indent}}`;
  };
  return `${fmt(value, '', 0)}\n`;
}

// ---------------------------------------------------------------- recipes

/*
 * A recipe: { "epoch": S, "root": {attrs}, "entries": [ ... ] }. Each entry
 * names its kind by one key whose value is the path (a string, or
 * { "hex": "..." } for names that are not UTF-8):
 *   { "dir": P }                       mode 0755
 *   { "file": P, content }             mode 0644; content is one of
 *        "text": "..."                 UTF-8 text
 *        "size": N, "seed": "s"        N pseudo-random bytes (SHA-256 counter stream of the seed)
 *        "size": N, "fill": "zero"     N zero bytes, written
 *        "size": N, "fill": "sparse"   a hole of N bytes (ftruncate), after "head" text if given
 *        (nothing)                     empty
 *   { "symlink": P, "target": "..." }  or "targetLength": N (a generated N-byte target)
 *   { "link": P, "to": Q }             a hard link to the earlier entry Q
 *   { "fifo": P }  { "chardev": P, "major": M, "minor": m }  { "blockdev": P, ... }
 *   { "files": DIR, "count": N, "name": "f{i:05}", "text": "{i}\n" }   N files in DIR (one mtime)
 *   { "dirs": DIR, "count": N, "name": "d{i:03}" }                     N directories in DIR
 * and optional attributes: "mode" (octal string; symlinks are always 0777
 * on Linux), "uid", "gid" (numbers, default 0), "mtime" (decimal seconds
 * with up to 9 fraction digits, may be negative: "-86400.25"). atime is set
 * to mtime too. Without "mtime", entry k gets epoch + 3607 k seconds and
 * (123456789 k + 1) mod 1e9 nanoseconds, so every entry's time differs in
 * the seconds and in the nanoseconds.
 */

const KINDS = ['dir', 'file', 'symlink', 'link', 'fifo', 'chardev', 'blockdev', 'files', 'dirs'];
const ATTRS = ['mode', 'uid', 'gid', 'mtime'];
const EXTRA = {
  dir: [], file: ['text', 'size', 'seed', 'fill', 'head'], symlink: ['target', 'targetLength'], link: ['to'],
  fifo: [], chardev: ['major', 'minor'], blockdev: ['major', 'minor'],
  files: ['count', 'name', 'text'], dirs: ['count', 'name'],
};
const DEFAULT_MODE = { dir: 0o755, file: 0o644, symlink: 0o777, fifo: 0o644, chardev: 0o600, blockdev: 0o600 };

/** "S" or "S.F" (up to 9 fraction digits, optional '-') as exact nanoseconds. */
export function parseTime(text) {
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?$/.exec(String(text));
  if (!m) throw new Error(`bad time ${JSON.stringify(text)} (decimal seconds, up to 9 fraction digits)`);
  const ns = BigInt(m[2]) * 1_000_000_000n + BigInt((m[3] ?? '').padEnd(9, '0'));
  return m[1] === '-' ? -ns : ns;
}

/** Nanoseconds as the exact decimal touch -d @... reads (GNU touch takes "@-86400.25" as -86400.25 s). */
function touchStamp(ns) {
  const abs = ns < 0n ? -ns : ns;
  return `@${ns < 0n ? '-' : ''}${abs / 1_000_000_000n}.${String(abs % 1_000_000_000n).padStart(9, '0')}`;
}

/** Substitute {i} and {i:05} in a bulk name or text. */
function nth(pattern, i) {
  return pattern.replace(/\{i(?::0(\d+))?\}/g, (_, w) => (w ? String(i).padStart(Number(w), '0') : String(i)));
}

/** A symlink target of exactly n bytes: a path of 16-byte components, dangling. */
export function longTarget(n) {
  return `../long/${'0123456789abcde/'.repeat(Math.ceil(n / 16) + 1)}`.slice(0, n).replace(/\/$/, 'x');
}

function pathBytes(p, where) {
  if (typeof p === 'string') return Buffer.from(p, 'utf8');
  if (p && typeof p.hex === 'string' && /^([0-9a-f]{2})+$/i.test(p.hex)) return Buffer.from(p.hex, 'hex');
  throw new Error(`${where}: a path is a string or { "hex": "..." }`);
}

/**
 * The recipe as a flat list of entries, bulk ones expanded, each with its
 * kind, path (Buffer, relative), mode, uid, gid, mtime (bigint ns) and
 * kind-specific fields. Throws on anything it does not understand, so a
 * typo in cases.json cannot silently drop an attribute.
 */
export function expandRecipe(recipe, treeName = '?') {
  const where0 = `tree ${JSON.stringify(treeName)}`;
  for (const k of Object.keys(recipe)) if (!['epoch', 'root', 'entries', 'about'].includes(k)) throw new Error(`${where0}: unknown key ${k}`);
  const epoch = BigInt(recipe.epoch ?? 1_700_000_000) * 1_000_000_000n;
  let k = 0;
  const timeOf = (e) => {
    const t = e.mtime !== undefined ? parseTime(e.mtime) : epoch + BigInt(k) * 3607_000_000_000n + (BigInt(k) * 123_456_789n + 1n) % 1_000_000_000n;
    k++;
    return t;
  };
  const attrs = (e, kind, where) => {
    const mode = e.mode === undefined ? DEFAULT_MODE[kind] : Number.parseInt(e.mode, 8);
    if (typeof e.mode === 'string' ? !/^[0-7]{3,4}$/.test(e.mode) : e.mode !== undefined) throw new Error(`${where}: mode is an octal string such as "0755"`);
    for (const id of ['uid', 'gid']) if (e[id] !== undefined && !(Number.isInteger(e[id]) && e[id] >= 0)) throw new Error(`${where}: ${id} must be a number`);
    return { mode, uid: e.uid ?? 0, gid: e.gid ?? 0 };
  };
  const root = recipe.root ?? {};
  for (const key of Object.keys(root)) if (!ATTRS.includes(key)) throw new Error(`${where0}: root: unknown key ${key}`);
  const out = [{ kind: 'dir', path: Buffer.alloc(0), ...attrs(root, 'dir', `${where0}: root`), mtime: timeOf(root) }];
  const seen = new Map([['', 'dir']]);
  const parentOk = (p, where) => {
    const i = p.lastIndexOf(0x2f);
    const parent = i < 0 ? '' : p.subarray(0, i).toString('latin1');
    if (seen.get(parent) !== 'dir') throw new Error(`${where}: its directory must come first`);
    if (seen.has(p.toString('latin1'))) throw new Error(`${where}: path used twice`);
    if (p.length === 0 || p[0] === 0x2f || p.includes(0) || p.toString('latin1').split('/').some((c) => c === '' || c === '.' || c === '..')) {
      throw new Error(`${where}: not a clean relative path`);
    }
  };
  for (const [idx, e] of (recipe.entries ?? []).entries()) {
    const kinds = KINDS.filter((x) => x in e);
    const where = `${where0}: entry ${idx} ${JSON.stringify(e)}`;
    if (kinds.length !== 1) throw new Error(`${where}: needs exactly one of ${KINDS.join(', ')}`);
    const kind = kinds[0];
    for (const key of Object.keys(e)) if (key !== kind && !ATTRS.includes(key) && !EXTRA[kind].includes(key)) throw new Error(`${where}: unknown key ${key}`);
    const path = pathBytes(e[kind], where);
    if (kind === 'files' || kind === 'dirs') {
      if (seen.get(path.toString('latin1')) !== 'dir') throw new Error(`${where}: ${path} must be a directory listed earlier`);
      if (!(Number.isInteger(e.count) && e.count > 0) || typeof e.name !== 'string') throw new Error(`${where}: needs count and name`);
      const one = kind === 'files' ? 'file' : 'dir';
      const a = attrs(e, one, where);
      const mtime = timeOf(e);
      for (let i = 0; i < e.count; i++) {
        const p = Buffer.concat([path, Buffer.from(`/${nth(e.name, i)}`)]);
        parentOk(p, `${where} #${i}`);
        seen.set(p.toString('latin1'), one);
        out.push({ kind: one, path: p, ...a, mtime, ...(one === 'file' && e.text !== undefined ? { text: nth(e.text, i) } : {}) });
      }
      continue;
    }
    parentOk(path, where);
    if (['fifo', 'chardev', 'blockdev'].includes(kind) && !isUtf8(path)) throw new Error(`${where}: ${kind} paths must be UTF-8 (made by a command)`);
    const entry = { kind, path, ...attrs(e, kind, where), mtime: timeOf(e) };
    switch (kind) {
      case 'file':
        if (e.text !== undefined && (e.size !== undefined || e.fill !== undefined)) throw new Error(`${where}: text or size, not both`);
        if (e.size !== undefined && !(Number.isInteger(e.size) && e.size >= 0)) throw new Error(`${where}: size must be a byte count`);
        if (e.fill !== undefined && !['zero', 'sparse'].includes(e.fill)) throw new Error(`${where}: fill is "zero" or "sparse"`);
        if (e.size !== undefined && e.fill === undefined && typeof e.seed !== 'string') throw new Error(`${where}: size needs a seed or a fill`);
        Object.assign(entry, { text: e.text, size: e.size, seed: e.seed, fill: e.fill, head: e.head });
        break;
      case 'symlink':
        if ((e.target === undefined) === (e.targetLength === undefined)) throw new Error(`${where}: target or targetLength`);
        entry.target = e.target ?? longTarget(e.targetLength);
        if (e.targetLength !== undefined && entry.target.length !== e.targetLength) throw new Error(`${where}: bad generated target`);
        if (e.mode !== undefined && entry.mode !== 0o777) throw new Error(`${where}: symlinks are 0777 on Linux`);
        break;
      case 'link': {
        const to = pathBytes(e.to, where);
        const kindTo = seen.get(to.toString('latin1'));
        if (kindTo === undefined || kindTo === 'dir' || kindTo === 'link') throw new Error(`${where}: "to" must be an earlier non-directory entry`);
        entry.to = to;
        for (const a of ATTRS) if (e[a] !== undefined) throw new Error(`${where}: a hard link shares its inode's ${a}; set it on "to"`);
        k--; // no time of its own
        delete entry.mode; delete entry.uid; delete entry.gid; delete entry.mtime;
        break;
      }
      case 'chardev': case 'blockdev':
        if (!Number.isInteger(e.major) || !Number.isInteger(e.minor)) throw new Error(`${where}: needs major and minor`);
        Object.assign(entry, { major: e.major, minor: e.minor });
        break;
    }
    seen.set(path.toString('latin1'), kind);
    out.push(entry);
  }
  return out;
}

/** Whether building the tree needs root: device nodes, or any owner that is not the caller. */
export function treeNeedsRoot(recipe) {
  const me = [process.getuid?.() ?? 0, process.getgid?.() ?? 0];
  return expandRecipe(recipe).some((e) => e.kind === 'chardev' || e.kind === 'blockdev' || (e.kind !== 'link' && (e.uid !== me[0] || e.gid !== me[1])));
}

/** The byte stream of a seeded file: SHA-256(seed NUL counter) blocks, the same on every host. */
export function seededBytes(seed, size) {
  const out = Buffer.allocUnsafe(size);
  for (let off = 0, i = 0; off < size; off += 32, i++) {
    createHash('sha256').update(`${seed}\0${i}`).digest().copy(out, off, 0, Math.min(32, size - off));
  }
  return out;
}

function isUtf8(buf) {
  return Buffer.from(buf.toString('utf8')).equals(buf);
}

function touch(stamp, args) {
  run('touch', ['-h', '-c', '-d', stamp, ...args]);
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
}

/**
 * Create the tree of `recipe` in `dir` (which must not exist yet, or be
 * empty). order 'reverse' creates the same entries in another order (all
 * directories first, then everything else last-to-first), so inode numbers
 * and on-disk directory order differ while the result must not.
 * Returns the expanded entries. Throws if it needs root and we are not.
 */
export function makeTree(recipe, dir, { order = 'recipe', name = '?' } = {}) {
  const entries = expandRecipe(recipe, name);
  if (!IS_ROOT && treeNeedsRoot(recipe)) {
    throw new Error(`tree ${name} needs root (device nodes and files owned by uid 0 and others): run as root, as CI does`);
  }
  mkdirSync(dir, { recursive: true });
  const full = (p) => (p.length === 0 ? Buffer.from(dir) : Buffer.concat([Buffer.from(dir), Buffer.from('/'), p]));
  const str = (p) => { const s = p.toString('utf8'); return Buffer.from(s).equals(p) ? s : p; };
  const create = (e) => {
    const p = str(full(e.path));
    switch (e.kind) {
      case 'dir': if (e.path.length > 0) mkdirSync(p); break;
      case 'file': {
        if (e.fill === 'sparse') {
          // the head, then a hole to the end (ftruncate extends without writing)
          writeFileSync(p, e.head ?? '');
          truncateSync(p, e.size);
        } else {
          const data = e.text !== undefined ? Buffer.from(e.text) : e.fill === 'zero' ? Buffer.alloc(e.size) : e.size !== undefined ? seededBytes(e.seed, e.size) : Buffer.alloc(0);
          writeFileSync(p, data);
        }
        break;
      }
      case 'symlink': symlinkSync(e.target, p); break;
      case 'link': linkSync(str(full(e.to)), p); break;
      case 'fifo': run('mkfifo', [full(e.path).toString()]); break;
      case 'chardev': case 'blockdev':
        run('mknod', [full(e.path).toString(), e.kind === 'chardev' ? 'c' : 'b', String(e.major), String(e.minor)]);
        break;
    }
  };
  if (order === 'reverse') {
    for (const e of entries) if (e.kind === 'dir') create(e);
    const rest = entries.filter((e) => e.kind !== 'dir' && e.kind !== 'link').reverse();
    for (const e of rest) create(e);
    for (const e of entries.filter((x) => x.kind === 'link').reverse()) create(e);
  } else if (order === 'recipe') {
    for (const e of entries) create(e);
  } else {
    throw new Error(`makeTree: unknown order ${order}`);
  }
  // Owners, then modes (chown clears setuid/setgid), then times: all after
  // every entry exists, since adding an entry changes its directory's mtime.
  const owned = entries.filter((e) => e.kind !== 'link');
  for (const e of owned) {
    const p = str(full(e.path));
    if (IS_ROOT) lchownSync(p, e.uid, e.gid);
    if (e.kind !== 'symlink') chmodSync(p, e.mode);
  }
  // touch -h sets both times without following symlinks or opening
  // anything (FIFOs, devices), to the nanosecond; fs.utimesSync would round
  // to microseconds (libuv) and mangles times before 1970.
  const byTime = new Map();
  for (const e of owned) {
    const s = touchStamp(e.mtime);
    if (!byTime.has(s)) byTime.set(s, []);
    byTime.get(s).push(full(e.path));
  }
  for (const [stamp, paths] of byTime) {
    const plain = paths.filter((x) => isUtf8(x));
    for (let i = 0; i < plain.length; i += 500) touch(stamp, ['--', ...plain.slice(i, i + 500).map((x) => x.toString())]);
    // argv strings from node are UTF-8: spell other names as printf octal escapes
    for (const x of paths.filter((y) => !isUtf8(y))) {
      const esc = [...x].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
      run('sh', ['-c', 'touch -h -c -d "$1" -- "$(printf "$2")"', 'sh', stamp, esc]);
    }
  }
  // Prove it: every entry has exactly the recipe's mode, owner and time.
  for (const e of owned) {
    const st = lstatSync(str(full(e.path)), { bigint: true });
    const want = e.kind === 'symlink' ? 0o777 : e.mode;
    const bad = [];
    if (Number(st.mode & 0o7777n) !== want) bad.push(`mode ${(st.mode & 0o7777n).toString(8)} != ${want.toString(8)}`);
    if (IS_ROOT && (Number(st.uid) !== e.uid || Number(st.gid) !== e.gid)) bad.push(`owner ${st.uid}:${st.gid} != ${e.uid}:${e.gid}`);
    if (st.mtimeNs !== e.mtime) bad.push(`mtime ${st.mtimeNs} != ${e.mtime}`);
    if (bad.length > 0) throw new Error(`tree ${name}: ${full(e.path)}: ${bad.join(', ')}`);
  }
  return entries;
}

// ---------------------------------------------------------------- building

/** sha256 of a whole file, streamed (images are sparse and up to 256 MiB). */
export function sha256File(path) {
  return new Promise((resolvePromise, reject) => {
    const h = createHash('sha256');
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolvePromise(h.digest('hex')));
  });
}

/** The case's arguments with {image} and {tree}/{treeN} replaced. */
export function caseArgs(c, image, treeDirs) {
  return c.args.map((a) => a.replace(/\{(image|tree(\d*))\}/g, (_, what, n) => {
    if (what === 'image') return image;
    const dir = treeDirs[n === '' ? 0 : Number(n)];
    if (dir === undefined) throw new Error(`case ${c.name}: {${what}} but only ${treeDirs.length} tree(s)`);
    return dir;
  }));
}

function shellQuote(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Run tsmakefs. opts: bin (another checkout's bin/tsmakefs), node (another
 * Node.js binary than this one), cwd, env (the whole environment), umask
 * (e.g. "077": run through sh), nodeArgs (before the script, e.g.
 * --import), wrapper (a command to run node under, e.g. ['faketime',
 * '...']), timeoutMs. Never rejects on a failed build.
 */
export function runTsmakefs(args, opts = {}) {
  const node = [opts.node ?? process.execPath, ...(opts.nodeArgs ?? []), opts.bin ?? TSMAKEFS_BIN, ...args];
  let argv = [...(opts.wrapper ?? []), ...node];
  if (opts.umask !== undefined) argv = ['sh', '-c', `umask ${opts.umask} && exec "$@"`, 'sh', ...argv];
  const command = argv.map(shellQuote).join(' ');
  return new Promise((resolvePromise) => {
    const t0 = Date.now();
    const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd ?? REPO_ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => { stdout += b; });
    child.stderr.on('data', (b) => { stderr += b; });
    const timer = setTimeout(() => { stderr += `\n[killed after ${opts.timeoutMs} ms]`; child.kill('SIGKILL'); }, opts.timeoutMs ?? 10 * 60_000);
    child.on('error', (e) => { clearTimeout(timer); resolvePromise({ status: null, stdout, stderr: `${stderr}cannot run: ${e.message}`, ms: Date.now() - t0, command, pid: undefined }); });
    child.on('close', (status) => { clearTimeout(timer); resolvePromise({ status, stdout, stderr, ms: Date.now() - t0, command, pid: child.pid }); });
  });
}

/**
 * The environment a case builds in: the given one without the variables
 * tsmakefs reads (SOURCE_DATE_EPOCH clamps times; TSMAKEFS_*), plus the
 * case's own "env". A developer's exported SOURCE_DATE_EPOCH must not make
 * --check fail.
 */
export function caseEnv(c, base = process.env) {
  const env = { ...base };
  for (const k of Object.keys(env)) if (k === 'SOURCE_DATE_EPOCH' || k.startsWith('TSMAKEFS_')) delete env[k];
  return { ...env, ...(c.env ?? {}) };
}

/**
 * Build one case: tsmakefs with the case's arguments, the trees at
 * `treeDirs` (already made), the image at `image`. opts as runTsmakefs,
 * plus relative: spell the image and tree paths relative to opts.cwd.
 * Resolves to { image, sha256 (null if the build failed), build }.
 */
export async function runCase(c, image, treeDirs, opts = {}) {
  const cwd = opts.cwd ?? REPO_ROOT;
  const spell = (p) => (opts.relative ? relative(cwd, p) || '.' : p);
  const args = caseArgs(c, spell(image), treeDirs.map(spell));
  rmSync(image, { force: true });
  const build = await runTsmakefs(args, { ...opts, env: caseEnv(c, opts.env ?? process.env) });
  const sha256 = build.status === 0 ? await sha256File(isAbsolute(image) ? image : resolve(cwd, image)) : null;
  return { image, sha256, build };
}

/** Make (once per `cache`) the trees a case needs under `root`; returns their directories. */
export function treesFor(golden, c, root, cache = new Map()) {
  return c.trees.map((t) => {
    let dir = cache.get(t);
    if (dir === undefined) {
      dir = join(root, 'trees', t);
      makeTree(golden.trees[t], dir, { name: t });
      cache.set(t, dir);
    }
    return dir;
  });
}

// ---------------------------------------------------------------- command line

function usage(msg) {
  if (msg) console.error(`golden: ${msg}`);
  console.error('usage: node scripts/golden.mjs --check|--update|--list [--case NAME]... [--keep DIR] [--no-build]');
  process.exit(2);
}

async function main(argv) {
  let mode;
  let keep;
  let build = true;
  const only = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--check' || a === '--update' || a === '--list') {
      if (mode && mode !== a) usage(`${mode} or ${a}, not both`);
      mode = a;
    } else if (a === '--case') only.push(argv[++i] ?? usage('--case needs a name'));
    else if (a === '--keep') keep = argv[++i] ?? usage('--keep needs a directory');
    else if (a === '--no-build') build = false;
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!mode) usage('say --check or --update');
  const golden = loadGolden();
  for (const n of only) if (!golden.cases.some((c) => c.name === n)) usage(`no case named ${n}`);
  const cases = golden.cases.filter((c) => only.length === 0 || only.includes(c.name));
  if (mode === '--list') {
    for (const c of cases) console.log(`${c.name.padEnd(22)} ${c.sha256 ?? '(not pinned)'}  ${c.about ?? ''}`);
    return 0;
  }
  if (!IS_ROOT) {
    const needy = cases.filter((c) => c.trees.some((t) => treeNeedsRoot(golden.trees[t])));
    for (const c of needy) console.log(`skip     ${c.name}: its tree needs root (device nodes, files owned by uid 0 and other users)`);
    if (needy.length > 0) {
      console.log('golden: the pinned digests are of images built as root (as CI runs); nothing was compared');
      return 2;
    }
  }
  if (build) {
    const tsc = join(REPO_ROOT, 'node_modules', '.bin', 'tsc');
    const r = spawnSync(tsc, ['-p', join(REPO_ROOT, 'tsconfig.json')], { cwd: REPO_ROOT, encoding: 'utf8' });
    if (r.status !== 0) {
      console.error(`golden: tsc failed (the pins must be of the current source):\n${r.stdout}${r.stderr}${r.error?.message ?? ''}`);
      return 1;
    }
  }
  const root = keep ? resolve(keep) : mkdtempSync(join(tmpdir(), 'tsmakefs-golden-'));
  mkdirSync(root, { recursive: true });
  const cache = new Map();
  const results = [];
  let failed = false;
  try {
    for (const c of cases) {
      const trees = treesFor(golden, c, root, cache);
      const image = join(root, 'images', `${c.name}.img`);
      mkdirSync(dirname(image), { recursive: true });
      const r = await runCase(c, image, trees);
      if (r.sha256 === null) {
        console.log(`FAILED   ${c.name}: tsmakefs exit ${r.build.status}\n  ${r.build.command}\n${r.build.stderr.replace(/^/gm, '  ')}`);
        failed = true;
        continue;
      }
      results.push({ c, sha256: r.sha256 });
      const secs = `${(r.build.ms / 1000).toFixed(1)} s`;
      if (r.sha256 === c.sha256) console.log(`ok       ${c.name.padEnd(22)} ${r.sha256}  (${secs})`);
      else if (mode === '--update') console.log(`changed  ${c.name.padEnd(22)} ${c.sha256 ?? '(none)'} → ${r.sha256}`);
      else {
        console.log(`MISMATCH ${c.name.padEnd(22)} pinned ${c.sha256 ?? '(none)'}\n${' '.repeat(32)}built  ${r.sha256}`);
        failed = true;
      }
    }
  } finally {
    if (keep) console.log(`golden: trees and images kept in ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
  if (mode === '--update') {
    if (failed) {
      console.log('golden: a build failed; golden/cases.json left as it was');
      return 1;
    }
    const changed = results.filter((r) => r.sha256 !== r.c.sha256);
    if (changed.length === 0) {
      console.log('golden: no digest changed');
      return 0;
    }
    for (const r of changed) r.c.sha256 = r.sha256;
    const tmp = `${GOLDEN_FILE}.tmp`;
    writeFileSync(tmp, formatGolden(golden));
    renameSync(tmp, GOLDEN_FILE);
    console.log(`golden: ${changed.length} digest(s) rewritten in ${relative(process.cwd(), GOLDEN_FILE) || GOLDEN_FILE}`);
    return 0;
  }
  if (failed) console.log(`golden: images differ from the pins; ${UPDATE_HINT}`);
  return failed ? 1 : 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (!existsSync(GOLDEN_FILE)) usage(`${GOLDEN_FILE} is missing`);
  process.exitCode = await main(process.argv.slice(2));
}
