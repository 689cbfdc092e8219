// Whole-process benchmark: tsmakefs against `tar -cf` of the same tree, in
// the same run, on a warm page cache (issue 7). For each tree it
//
//   1. walks the tree once (counts entries and bytes; warms the dentry cache),
//   2. runs `tar -cf OUT.tar -C TREE .` once untimed to warm the page cache,
//   3. times `tar -cf` (reps times), deleting the archive after each run,
//   4. times `node bin/tsmakefs -t zfs -o poolname=bench -o 'fs=bench;compression=off'
//      -s SIZE IMG TREE` (reps times), deleting the image after each run,
//
// each under `/usr/bin/time -f '%e %M %U %S'` for wall time, peak RSS and CPU
// time. Only one archive or image exists at any moment. It also times
// `tsmakefs --version` (median of 10) and, with --profile, runs tsmakefs under
// `node --cpu-prof` on the small-file tree and the OS tree and prints the top
// self-time (and inclusive-time) functions.
//
// Trees:
//   (a) small   N small files (default 100,000, 16 B..16 KiB log-uniform,
//               text-like), 100 x 10 directories, generated under --scratch
//   (b) large   a few large files (default 2 x 1.5 GiB; one random, one
//               text-like), generated under --scratch
//   (c) os      a real OS tree: the host's /usr by default (--os-tree PATH)
// Generated trees are deterministic and reused across runs (a stamp file
// records the parameters they were made with).
//
// Usage:
//   npm run bench:whole                       # build, then all three trees
//   node bench/whole.mjs [options]
//     --only a,b,c         which trees (default a,b,c)
//     --scratch DIR        where trees (a) and (b) live (default /tmp/tsmakefs-bench)
//     --out DIR            where archives and images are written; default
//                          /dev/shm/tsmakefs-bench-out when /dev/shm is a tmpfs
//                          with room, else SCRATCH/out
//     --budget SIZE        most bytes of archive/image allowed at once on a
//                          disk-backed --out (default 2g); a tree whose output
//                          would not fit is skipped with a message
//     --os-tree PATH       tree (c) (default /usr)
//     --input KIND         what tsmakefs is given for each tree: dir (default;
//                          the tree itself), metalog (a METALOG of the tree,
//                          written untimed beside the outputs; tsmakefs runs
//                          in the tree, as a release build runs makefs in
//                          DESTDIR), tar (a `tar --sort=name` archive of the
//                          tree, made untimed), or tar.gz, tar.zst or txz
//                          (the same archive compressed, by GNU tar's -a and
//                          the host's gzip, zstd or xz); `tar -cf` of the
//                          tree is the yardstick either way
//     --compression C      data compression of the image: off (default; the
//                          issue's wall-time target is for an uncompressed
//                          image), lz4, or default (whatever tsmakefs does
//                          without being told)
//     --tsm-arg ARG        extra argument for tsmakefs (repeatable), e.g.
//                          --tsm-arg -o --tsm-arg compatibility=legacy
//     --small-files N      files in tree (a) (default 100000)
//     --big-files N        files in tree (b) (default 2)
//     --big-size SIZE      bytes per file in tree (b) (default 1.5g)
//     --big-scale F        multiply --big-size by F (e.g. 0.25 for a quick run)
//     --reps N             timed runs of each tool per tree, median reported (default 1)
//     --profile            also profile tsmakefs with --cpu-prof on (a) and (c)
//     --perf               also profile (a) and (c) with Linux perf (cpu-clock
//                          samples: CPU time only, so unlike --cpu-prof it is
//                          not skewed by a busy machine, and it sees the
//                          kernel, libc and V8 runtime/GC time too)
//     --profile-only       only the profile runs (no timed table)
//     --top N              rows of the profile summaries (default 15)
//     --tsmakefs PATH      the CLI to run (default ../bin/tsmakefs from this file)
//     --json FILE          also write every figure as JSON
//     --clean              delete the generated trees at the end
// Sizes accept k/m/g/t suffixes (powers of 1024).

import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TMPFS_MAGIC = 0x01021994;
/** --input kinds that are tarballs: plain, or compressed by GNU tar's -a (the suffix picks the compressor). */
const TAR_INPUTS = ['tar', 'tar.gz', 'tar.zst', 'txz'];

// ---------------------------------------------------------------------------
// Options

function parseSize(s) {
  const m = /^(\d+(?:\.\d+)?)([kmgt]?)i?b?$/i.exec(String(s).trim());
  if (!m) throw new Error(`bad size '${s}'`);
  const mult = { '': 1, k: KiB, m: MiB, g: GiB, t: 1024 * GiB }[m[2].toLowerCase()];
  return Math.round(Number(m[1]) * mult);
}

function parseArgs(argv) {
  const o = {
    only: ['a', 'b', 'c'],
    scratch: '/tmp/tsmakefs-bench',
    out: undefined,
    budget: 2 * GiB,
    osTree: '/usr',
    input: 'dir',
    compression: 'off',
    tsmArgs: [],
    smallFiles: 100_000,
    bigFiles: 2,
    bigSize: 1.5 * GiB,
    bigScale: 1,
    reps: 1,
    profile: false,
    perf: false,
    profileOnly: false,
    top: 15,
    tsmakefs: path.join(here, '..', 'bin', 'tsmakefs'),
    json: undefined,
    clean: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--only': o.only = val().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--scratch': o.scratch = path.resolve(val()); break;
      case '--out': o.out = path.resolve(val()); break;
      case '--budget': o.budget = parseSize(val()); break;
      case '--os-tree': o.osTree = path.resolve(val()); break;
      case '--input': o.input = val(); break;
      case '--compression': o.compression = val(); break;
      case '--tsm-arg': o.tsmArgs.push(val()); break;
      case '--small-files': o.smallFiles = Number(val()); break;
      case '--big-files': o.bigFiles = Number(val()); break;
      case '--big-size': o.bigSize = parseSize(val()); break;
      case '--big-scale': o.bigScale = Number(val()); break;
      case '--reps': o.reps = Math.max(1, Number(val())); break;
      case '--profile': o.profile = true; break;
      case '--perf': o.perf = true; break;
      case '--profile-only': o.profileOnly = true; if (!o.perf) o.profile = true; break;
      case '--top': o.top = Number(val()); break;
      case '--tsmakefs': o.tsmakefs = path.resolve(val()); break;
      case '--json': o.json = path.resolve(val()); break;
      case '--clean': o.clean = true; break;
      case '-h': case '--help':
        process.stdout.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n') + '\n');
        process.exit(0);
      // eslint-disable-next-line no-fallthrough
      default: throw new Error(`unknown argument ${a} (try --help)`);
    }
  }
  for (const t of o.only) if (!['a', 'b', 'c'].includes(t)) throw new Error(`--only: unknown tree '${t}'`);
  if (!['off', 'lz4', 'default'].includes(o.compression)) throw new Error(`--compression: off, lz4 or default, not '${o.compression}'`);
  if (!['dir', 'metalog', ...TAR_INPUTS].includes(o.input)) throw new Error(`--input: dir, metalog, ${TAR_INPUTS.join(', ')}, not '${o.input}'`);
  o.bigSize = Math.round((o.bigSize * o.bigScale) / MiB) * MiB;
  return o;
}

// ---------------------------------------------------------------------------
// Small helpers

const fmtMB = (b) => (b / 1e6).toFixed(b < 10e6 ? 2 : 0);
const fmtBytes = (b) => (b >= GiB ? `${(b / GiB).toFixed(2)} GiB` : b >= MiB ? `${(b / MiB).toFixed(1)} MiB` : `${(b / KiB).toFixed(1)} KiB`);
const median = (xs) => { const s = [...xs].sort((p, q) => p - q); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const log = (...a) => console.error('[whole]', ...a);

function rmrf(p) {
  fs.rmSync(p, { recursive: true, force: true });
}

function sync() {
  spawnSync('sync', [], { stdio: 'ignore' });
}

/** Free bytes and whether the filesystem holding p (or its nearest existing parent) is a tmpfs. */
function fsInfo(p) {
  let q = p;
  while (!fs.existsSync(q)) q = path.dirname(q);
  const st = fs.statfsSync(q);
  return { free: st.bavail * st.bsize, tmpfs: st.type === TMPFS_MAGIC };
}

/** CPU pressure (share of time some runnable task waited for a CPU, last 10 s), or the 1-min load average. */
function cpuContention() {
  try {
    const m = /some avg10=([\d.]+)/.exec(fs.readFileSync('/proc/pressure/cpu', 'utf8'));
    if (m) return { kind: 'psi', value: Number(m[1]) };
  } catch { /* no PSI */ }
  return { kind: 'load', value: os.loadavg()[0] };
}
const fmtContention = (c) => (c.kind === 'psi' ? `cpu psi ${c.value.toFixed(0)}%` : `load ${c.value.toFixed(2)}`);

/** MemAvailable from /proc/meminfo (bytes), or os.freemem(). */
function memAvailable() {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * KiB;
  } catch { /* not Linux */ }
  return os.freemem();
}

function timeBinary() {
  for (const p of ['/usr/bin/time', '/bin/time']) if (fs.existsSync(p)) return p;
  throw new Error('GNU time is needed for peak RSS: apt-get install time');
}

/**
 * Run a command under GNU time; returns wall seconds (measured here, and
 * %e), peak RSS in bytes, user+sys CPU seconds, exit status and stderr.
 */
function timed(cmd, args, opts = {}) {
  const tf = path.join(os.tmpdir(), `tsmakefs-bench-time-${process.pid}`);
  const t0 = process.hrtime.bigint();
  const r = spawnSync(timeBinary(), ['-f', '%e %M %U %S', '-o', tf, cmd, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 * MiB, ...opts,
  });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const [e, maxKb, user, sys] = fs.readFileSync(tf, 'utf8').trim().split('\n').pop().split(/\s+/).map(Number);
  fs.rmSync(tf, { force: true });
  return { wall, timeWall: e, rss: maxKb * KiB, cpu: user + sys, user, sys, status: r.status, stderr: r.stderr?.toString() ?? '' };
}

// ---------------------------------------------------------------------------
// Tree statistics

/** Entries (everything below the root), regular files, and bytes of regular files. */
function treeStats(root) {
  let entries = 0, files = 0, dirs = 0, bytes = 0, alloc4k = 0, hardlinks = 0;
  const seen = new Set();
  const stack = [root];
  while (stack.length) {
    const d = stack.pop();
    for (const de of fs.readdirSync(d, { withFileTypes: true })) {
      entries++;
      const p = path.join(d, de.name);
      if (de.isDirectory()) { dirs++; stack.push(p); continue; }
      if (!de.isFile()) continue;
      const st = fs.lstatSync(p);
      if (st.nlink > 1) {
        const k = `${st.dev}:${st.ino}`;
        if (seen.has(k)) { hardlinks++; continue; }
        seen.add(k);
      }
      files++;
      bytes += st.size;
      alloc4k += Math.ceil(st.size / 4096) * 4096;
    }
  }
  return { entries, files, dirs, bytes, alloc4k, hardlinks };
}

// ---------------------------------------------------------------------------
// METALOG of a tree (--input metalog)

/** A name as mtree(5) writes it (vis(3) octal escapes for blanks, controls, '\\', '#', '=' and non-ASCII bytes). */
function visName(bytes) {
  let out = '';
  for (const b of bytes) {
    out += b <= 0x20 || b >= 0x7f || b === 0x5c || b === 0x23 || b === 0x3d ? `\\${b.toString(8).padStart(3, '0')}` : String.fromCharCode(b);
  }
  return out;
}

/**
 * Write a METALOG of `root` to `file`: every entry, in name order, with its
 * owner, mode, time, size and link target, paths relative to `root` as a
 * release build's METALOG has them relative to DESTDIR.
 */
function writeMetalog(root, file) {
  const fd = fs.openSync(file, 'w');
  let buf = '';
  const flush = (force) => { if (force || buf.length > MiB) { fs.writeSync(fd, buf, null, 'latin1'); buf = ''; } };
  const line = (rel, st, extra) => {
    const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFIFO() ? 'fifo'
      : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'char' : 'block';
    const sec = st.mtimeNs / 1_000_000_000n - (st.mtimeNs < 0n && st.mtimeNs % 1_000_000_000n !== 0n ? 1n : 0n);
    const nsec = st.mtimeNs - sec * 1_000_000_000n;
    let l = `${rel.length === 0 ? '.' : `./${visName(rel)}`} type=${kind} uid=${st.uid} gid=${st.gid} mode=${(Number(st.mode) & 0o7777).toString(8).padStart(4, '0')} time=${sec}.${String(nsec).padStart(9, '0')}`;
    if (kind === 'file') l += ` size=${st.size}`;
    if (kind === 'char' || kind === 'block') {
      const r = st.rdev;
      l += ` device=linux,${((r >> 8n) & 0xfffn) | ((r >> 32n) & 0xfffff000n)},${(r & 0xffn) | ((r >> 12n) & 0xffffff00n)}`;
    }
    buf += `${l}${extra}\n`;
    flush(false);
    return kind;
  };
  buf += '#mtree 2.0\n';
  const visit = (rel) => {
    const abs = rel.length === 0 ? Buffer.from(root) : Buffer.concat([Buffer.from(root), Buffer.from('/'), rel]);
    const st = fs.lstatSync(abs, { bigint: true });
    const link = st.isSymbolicLink() ? ` link=${visName(fs.readlinkSync(abs, { encoding: 'buffer' }))}` : '';
    if (line(rel, st, link) !== 'dir') return;
    for (const n of fs.readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare)) {
      visit(rel.length === 0 ? n : Buffer.concat([rel, Buffer.from('/'), n]));
    }
  };
  visit(Buffer.alloc(0));
  flush(true);
  fs.closeSync(fd);
}

/** Image size for a tree: 2x its bytes (and 1.5x its 4 KiB-rounded allocation), whole GiB, at least 1 GiB. */
function imageSize(st) {
  const need = Math.max(2 * st.bytes, 1.5 * (st.alloc4k + st.entries * 4096), GiB);
  return `${Math.ceil(need / GiB)}g`;
}

// ---------------------------------------------------------------------------
// Tree generation (deterministic; reused when the stamp matches)

function xorshift(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

const WORDS = (
  'the of and to in is that for it as with was on be by this are or from at which an not have ' +
  'int return if else struct static void const char unsigned size_t uint64_t error buffer offset ' +
  'block pointer checksum object dataset pool vdev label uberblock dnode level indirect record ' +
  'usr lib share doc man include bin local etc config license copyright version changelog'
).split(' ');

/** Text-like bytes (word salad with newlines), deterministic in seed. */
function textBytes(size, seed) {
  const rnd = xorshift(seed);
  const out = Buffer.allocUnsafe(size);
  let i = 0, col = 0;
  while (i < size) {
    const w = WORDS[rnd() % WORDS.length];
    i += out.write(w, i, 'latin1');
    col += w.length + 1;
    if (i < size) out[i++] = col > 72 ? 10 : 32;
    if (col > 72) col = 0;
  }
  return out;
}

// The stamp sits next to the tree (DIR.stamp), not in it, so the tree holds
// exactly the generated files.
function stampOk(dir, params) {
  try {
    return fs.readFileSync(`${dir}.stamp`, 'utf8') === JSON.stringify(params) && fs.existsSync(dir);
  } catch {
    return false;
  }
}

function writeStamp(dir, params) {
  fs.writeFileSync(`${dir}.stamp`, JSON.stringify(params));
}

/** Tree (a): n small files in 100 x 10 directories, sizes log-uniform in 16 B..16 KiB. */
function genSmall(dir, n) {
  const params = { kind: 'small', n, v: 1 };
  if (stampOk(dir, params)) return;
  log(`generating ${n} small files under ${dir}`);
  rmrf(dir);
  rmrf(`${dir}.stamp`);
  const pool = textBytes(1 * MiB, 7);
  const rnd = xorshift(12345);
  const perLeaf = Math.ceil(n / 1000);
  let made = 0;
  const t0 = Date.now();
  for (let i = 0; i < 100 && made < n; i++) {
    for (let j = 0; j < 10 && made < n; j++) {
      const leaf = path.join(dir, `d${String(i).padStart(2, '0')}`, `s${j}`);
      fs.mkdirSync(leaf, { recursive: true });
      for (let k = 0; k < perLeaf && made < n; k++, made++) {
        const size = Math.floor(16 * Math.exp((rnd() / 2 ** 32) * Math.log(1024)));
        const off = rnd() % (pool.length - size);
        fs.writeFileSync(path.join(leaf, `f${String(k).padStart(4, '0')}.txt`), pool.subarray(off, off + size));
      }
    }
  }
  writeStamp(dir, params);
  log(`  done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/** Tree (b): count files of size bytes each; even-numbered ones random (AES-CTR), odd ones text-like. */
function genLarge(dir, count, size) {
  const params = { kind: 'large', count, size, v: 1 };
  if (stampOk(dir, params)) return;
  const need = count * size;
  const { free } = fsInfo(dir);
  if (free < need + GiB) throw new Error(`tree (b) needs ${fmtBytes(need)} in ${dir}, only ${fmtBytes(free)} free (use --big-scale)`);
  log(`generating ${count} x ${fmtBytes(size)} under ${dir}`);
  rmrf(dir);
  rmrf(`${dir}.stamp`);
  fs.mkdirSync(dir, { recursive: true });
  const chunk = 8 * MiB;
  const zeros = Buffer.alloc(chunk);
  const texts = Array.from({ length: 4 }, (_, i) => textBytes(chunk, 100 + i));
  const t0 = Date.now();
  for (let f = 0; f < count; f++) {
    const key = createHash('sha256').update(`tsmakefs-bench-${f}`).digest();
    const aes = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
    const fd = fs.openSync(path.join(dir, `big${f}.${f % 2 ? 'txt' : 'bin'}`), 'w');
    for (let off = 0, c = 0; off < size; off += chunk, c++) {
      const n = Math.min(chunk, size - off);
      const buf = f % 2 ? texts[c % texts.length] : aes.update(zeros);
      fs.writeSync(fd, buf, 0, n, off);
    }
    fs.closeSync(fd);
  }
  writeStamp(dir, params);
  log(`  done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

// ---------------------------------------------------------------------------
// CPU profile summary

/**
 * Self time per function (name + script + line), total time per function
 * (each sample counted once per function on its stack), and self time per
 * script, from a .cpuprofile. Times in ms.
 */
export function summariseProfile(file, top = 15) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map();
  const parent = new Map();
  for (const n of prof.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const short = (url) => {
    if (!url) return '';
    const u = url.replace(/^file:\/\//, '');
    const i = u.lastIndexOf('/dist/');
    if (i >= 0) return u.slice(i + 1);
    const j = u.lastIndexOf('/node_modules/');
    if (j >= 0) return u.slice(j + 1);
    return u.startsWith('node:') ? u : path.basename(u);
  };
  const keyOf = (n) => {
    const cf = n.callFrame;
    const name = cf.functionName || (cf.url ? '(anonymous)' : '');
    const where = short(cf.url);
    return where ? `${name} ${where}:${cf.lineNumber + 1}` : name || '(unknown)';
  };
  const keys = new Map([...byId].map(([id, n]) => [id, keyOf(n)]));
  const self = new Map();
  const callers = new Map(); // self key -> Map(caller key -> ms)
  const total = new Map();
  const perFile = new Map();
  const { samples, timeDeltas } = prof;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) {
    // a sample's time is the gap to the next one (as DevTools counts it)
    const dt = (i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0) / 1000;
    if (dt <= 0) continue;
    sum += dt;
    const id = samples[i];
    const k = keys.get(id);
    self.set(k, (self.get(k) ?? 0) + dt);
    const pid = parent.get(id);
    if (pid !== undefined) {
      let cm = callers.get(k);
      if (!cm) callers.set(k, (cm = new Map()));
      const pk = keys.get(pid);
      cm.set(pk, (cm.get(pk) ?? 0) + dt);
    }
    const url = byId.get(id).callFrame.url;
    const fk = url ? short(url) : k;
    perFile.set(fk, (perFile.get(fk) ?? 0) + dt);
    const onStack = new Set();
    for (let p = id; p !== undefined; p = parent.get(p)) onStack.add(keys.get(p));
    for (const s of onStack) total.set(s, (total.get(s) ?? 0) + dt);
  }
  const topCallers = (k, ms) => {
    const cm = callers.get(k);
    if (!cm) return '';
    return [...cm].sort((p, q) => q[1] - p[1]).slice(0, 2)
      .map(([c, t]) => `${c} (${Math.round((100 * t) / ms)}%)`).join('; ');
  };
  const rank = (m, filter = () => true, withCallers = false) =>
    [...m].filter(([k]) => filter(k)).sort((p, q) => q[1] - p[1]).slice(0, top)
      .map(([k, ms]) => ({ function: k, ms: Math.round(ms), '%': +((100 * ms) / sum).toFixed(1), ...(withCallers ? { callers: topCallers(k, ms) } : {}) }));
  return {
    file,
    totalMs: Math.round(sum),
    self: rank(self, () => true, true),
    // inclusive time, only for the project's own code (dist/) and node's fs
    total: rank(total, (k) => / dist\//.test(k) || / node:fs/.test(k)),
    files: rank(perFile),
  };
}

/**
 * Summarise a `perf record -g` of node run with --perf-basic-prof. Every
 * sample is CPU time (cpu-clock only ticks while the thread runs). Reports:
 *  - split by where the leaf frame is (JIT code, V8/node runtime, libc, kernel),
 *    and by thread (main thread vs V8/libuv helper threads);
 *  - "attributed": each main-thread sample charged to the innermost JS
 *    function on its stack, so a JS function's figure includes the runtime,
 *    allocation, GC and syscall work it triggered directly;
 *  - leaf symbols (plain self time);
 *  - inclusive time of the project's JS functions.
 */
export function summarisePerf(dataFile, top = 15) {
  const r = spawnSync('perf', ['script', '-i', dataFile, '-F', 'comm,tid,ip,sym,dso'], { maxBuffer: 4 * GiB });
  if (r.status !== 0) throw new Error(`perf script failed: ${r.stderr}`);
  const text = r.stdout.toString();
  const shortJs = (sym) => {
    // "JS:*saValues file:///x/dist/zpl/dataset.js:160:13"
    let t = sym.replace(/^JS:[*~^+-]?/, '');
    t = t.replace(/file:\/\/\S*?\/(dist|node_modules)\//, '$1/');
    return t || '(anonymous)';
  };
  const isJs = (sym) => sym.startsWith('JS:');
  const add = (m, k, v = 1) => m.set(k, (m.get(k) ?? 0) + v);
  const attributed = new Map(), leaf = new Map(), incl = new Map(), where = new Map(), threads = new Map();
  let n = 0, mainTid = -1;
  const flush = (tid, frames) => {
    if (frames.length === 0) return;
    n++;
    if (mainTid < 0) mainTid = tid;
    const main = tid === mainTid;
    add(threads, main ? 'main thread' : 'other threads (GC helpers, libuv pool, compiler)');
    const [sym0, dso0] = frames[0];
    const kind = dso0.includes('kernel') ? 'kernel' : isJs(sym0) ? 'JIT-compiled JS' : /libc\.so|libm\.so|ld-linux/.test(dso0) ? 'libc (malloc, memcpy)' : 'node/V8 runtime (builtins, GC, bindings)';
    add(where, kind);
    add(leaf, `${isJs(sym0) ? shortJs(sym0) : sym0}${dso0.includes('kernel') ? ' [k]' : ''}`);
    const js = frames.find(([sym]) => isJs(sym));
    add(attributed, main ? (js ? shortJs(js[0]) : '(main thread, no JS frame: startup/GC)') : '(helper threads)');
    const seen = new Set();
    for (const [sym] of frames) if (isJs(sym)) { const k = shortJs(sym); if (!seen.has(k)) { seen.add(k); add(incl, k); } }
  };
  let tid = 0, frames = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line[0] !== '\t' && line[0] !== ' ') {
      flush(tid, frames);
      frames = [];
      const m = /^\s*\S+\s+(\d+)/.exec(line);
      tid = m ? Number(m[1]) : 0;
      continue;
    }
    const m = /^\s*[0-9a-f]+\s+(.*?)\s+\(([^)]*)\)\s*$/.exec(line);
    if (!m) continue;
    frames.push([m[1].replace(/\+0x[0-9a-f]+$/, ''), m[2]]);
  }
  flush(tid, frames);
  const rank = (m, k = top, filter = () => true) => [...m].filter(([x]) => filter(x)).sort((p, q) => q[1] - p[1]).slice(0, k)
    .map(([x, c]) => ({ function: x, samples: c, '%': +((100 * c) / n).toFixed(1) }));
  return {
    file: dataFile, samples: n,
    where: rank(where, 10), threads: rank(threads, 5),
    attributed: rank(attributed), leaf: rank(leaf),
    inclusive: rank(incl, top, (x) => x.includes('dist/')),
  };
}

function perfAvailable() {
  return spawnSync('perf', ['--version'], { stdio: 'ignore' }).status === 0;
}

// ---------------------------------------------------------------------------
// Main

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const tsm = o.tsmakefs;
  if (!fs.existsSync(path.join(path.dirname(tsm), '..', 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/ is missing: build first (npx tsc -p .) or use npm run bench:whole');
  }
  timeBinary();

  // everything tsmakefs gets besides -s, the image and the tree
  const tsmOpts = ['-t', 'zfs', '-o', 'poolname=bench', ...(o.compression === 'default' ? [] : ['-o', `fs=bench;compression=${o.compression}`]), ...o.tsmArgs];
  const trees = [];
  const smallDir = path.join(o.scratch, 'small');
  const largeDir = path.join(o.scratch, 'large');
  if (o.only.includes('a')) { genSmall(smallDir, o.smallFiles); trees.push({ id: 'a', name: `(a) ${o.smallFiles} small files`, dir: smallDir }); }
  if (o.only.includes('b')) { genLarge(largeDir, o.bigFiles, o.bigSize); trees.push({ id: 'b', name: `(b) ${o.bigFiles} x ${fmtBytes(o.bigSize)}`, dir: largeDir }); }
  if (o.only.includes('c')) trees.push({ id: 'c', name: `(c) OS tree ${o.osTree}`, dir: o.osTree });
  if (o.input !== 'dir') for (const t of trees) t.name += ` from ${o.input === 'metalog' ? 'a METALOG' : o.input === 'tar' ? 'a tarball' : `a ${o.input} tarball`}`;

  for (const t of trees) {
    const t0 = Date.now();
    t.stats = treeStats(t.dir);
    log(`${t.name}: ${t.stats.entries} entries, ${t.stats.files} files, ${fmtBytes(t.stats.bytes)} (stat walk ${Date.now() - t0} ms)`);
  }

  // Where outputs go: a tmpfs (RAM) keeps the disk free and measures the
  // tools rather than the disk; a disk-backed --out is held to --budget.
  const biggest = Math.max(0, ...trees.map((t) => outputEstimate(t.stats)));
  let outDir = o.out;
  if (!outDir) {
    const shm = '/dev/shm';
    const ok = fs.existsSync(shm) && fsInfo(shm).tmpfs && fsInfo(shm).free > biggest * 1.2 && memAvailable() > biggest * 1.5 + GiB;
    outDir = ok ? path.join(shm, 'tsmakefs-bench-out') : path.join(o.scratch, 'out');
  }
  fs.mkdirSync(outDir, { recursive: true });
  const outFs = fsInfo(outDir);
  log(`outputs in ${outDir} (${outFs.tmpfs ? 'tmpfs' : 'disk'}, ${fmtBytes(outFs.free)} free)`);

  const machine = {
    date: new Date().toISOString(),
    cpu: cpuModel(),
    nproc: os.availableParallelism(),
    memory: fmtBytes(os.totalmem()),
    node: process.version,
    kernel: os.release(),
    tar: spawnSync('tar', ['--version']).stdout?.toString().split('\n')[0] ?? '?',
    outDir,
    outFs: outFs.tmpfs ? 'tmpfs' : 'disk',
    tsmakefs: `${path.relative(process.cwd(), tsm) || tsm} ${tsmOpts.join(' ')} -s SIZE IMAGE ${{ dir: 'TREE', metalog: 'METALOG (run in TREE)' }[o.input] ?? `TREE.${o.input} (tar --sort=name${o.input === 'tar' ? '' : ' -a'})`}`,
    hostMemory: hostMemoryNotes(),
  };

  // startup
  const startup = () => {
    const ts = [], base = [], tsCpu = [], baseCpu = [];
    for (let i = 0; i < 10; i++) {
      const a = timed(process.execPath, [tsm, '--version']);
      ts.push(a.wall * 1000);
      tsCpu.push(a.cpu * 1000);
      const b = timed(process.execPath, ['-e', '0']);
      base.push(b.wall * 1000);
      baseCpu.push(b.cpu * 1000);
    }
    return { versionMs: median(ts), nodeMs: median(base), versionCpuMs: median(tsCpu), nodeCpuMs: median(baseCpu) };
  };

  const results = { machine, startup: undefined, trees: [], profiles: [] };
  if (!o.profileOnly) {
    results.startup = startup();
    log(`startup: tsmakefs --version ${results.startup.versionMs.toFixed(0)} ms, ${results.startup.versionCpuMs.toFixed(0)} ms CPU (node -e 0: ${results.startup.nodeMs.toFixed(0)} ms, ${results.startup.nodeCpuMs.toFixed(0)} ms CPU)`);
  }

  for (const t of trees) {
    const est = outputEstimate(t.stats);
    if (!outFs.tmpfs && est > o.budget) {
      log(`SKIP ${t.name}: its archive/image (~${fmtBytes(est)}) exceeds --budget ${fmtBytes(o.budget)} on a disk-backed --out; use --out /dev/shm/... or a larger --budget`);
      results.trees.push({ tree: t.name, skipped: `output ~${fmtBytes(est)} over budget` });
      continue;
    }
    // (a tar input lies beside the image and the archive it is timed against)
    const room = TAR_INPUTS.includes(o.input) ? 2 * est : est;
    if (fsInfo(outDir).free < room * 1.1) throw new Error(`not enough room in ${outDir} for ${fmtBytes(room)}`);
    const size = imageSize(t.stats);
    const tarOut = path.join(outDir, `${t.id}.tar`);
    const img = path.join(outDir, `${t.id}.img`);
    const tarArgs = ['-cf', tarOut, '-C', t.dir, '.'];
    const after = (p) => { rmrf(p); if (!outFs.tmpfs) sync(); };
    // what tsmakefs reads (--input), made untimed; removed after the tree
    let input = t.dir;
    let tsmCwd;
    if (o.input === 'metalog') {
      input = path.join(outDir, `${t.id}.METALOG`);
      const t0 = Date.now();
      writeMetalog(t.dir, input);
      tsmCwd = t.dir;
      log(`${t.name}: METALOG written (${fmtBytes(fs.statSync(input).size)}, ${Date.now() - t0} ms)`);
    } else if (TAR_INPUTS.includes(o.input)) {
      input = path.join(outDir, `${t.id}.input.${o.input}`);
      const r = spawnSync('tar', ['--sort=name', o.input === 'tar' ? '-cf' : '-caf', input, '-C', t.dir, '.'], { stdio: ['ignore', 'ignore', 'pipe'] });
      if (r.status !== 0 && r.status !== 1) throw new Error(`tar (input) failed (${r.status}): ${r.stderr}`);
      log(`${t.name}: input archive written (${fmtBytes(fs.statSync(input).size)})`);
    }
    const tsmArgs = [tsm, ...tsmOpts, '-s', size, img, input];
    const tsmSpawn = tsmCwd === undefined ? {} : { cwd: tsmCwd };

    if (!o.profileOnly) {
      log(`${t.name}: warming (tar, untimed)`);
      const w = timed('tar', tarArgs);
      if (w.status !== 0 && w.status !== 1) throw new Error(`tar failed (${w.status}): ${w.stderr}`);
      after(tarOut);
      const tarRuns = [], tsmRuns = [];
      for (let r = 0; r < o.reps; r++) {
        const load = cpuContention();
        const a = timed('tar', tarArgs);
        if (a.status !== 0 && a.status !== 1) throw new Error(`tar failed (${a.status}): ${a.stderr}`);
        a.load = load;
        tarRuns.push(a);
        log(`  tar      run ${r + 1}: ${a.wall.toFixed(2)} s, ${fmtBytes(a.rss)} peak RSS, ${a.cpu.toFixed(2)} s CPU (${fmtContention(load)})`);
        after(tarOut);
        const load2 = cpuContention();
        const b = timed(process.execPath, tsmArgs, tsmSpawn);
        if (b.status !== 0) throw new Error(`tsmakefs failed (${b.status}): ${b.stderr}`);
        b.load = load2;
        b.imageAllocated = 0;
        try { b.imageAllocated = fs.statSync(img).blocks * 512; } catch { /* gone */ }
        tsmRuns.push(b);
        log(`  tsmakefs run ${r + 1}: ${b.wall.toFixed(2)} s, ${fmtBytes(b.rss)} peak RSS, ${b.cpu.toFixed(2)} s CPU (user ${b.user.toFixed(2)}, sys ${b.sys.toFixed(2)}), image ${fmtBytes(b.imageAllocated)} (${fmtContention(load2)})`);
        after(img);
      }
      const tarWall = median(tarRuns.map((x) => x.wall));
      const tsmWall = median(tsmRuns.map((x) => x.wall));
      results.trees.push({
        tree: t.name, dir: t.dir, ...t.stats, imageSize: size,
        tarWall, tsmWall, ratio: tsmWall / tarWall,
        filesPerSec: t.stats.files / tsmWall,
        entriesPerSec: t.stats.entries / tsmWall,
        mbPerSec: t.stats.bytes / 1e6 / tsmWall,
        tarMbPerSec: t.stats.bytes / 1e6 / tarWall,
        tsmRss: Math.max(...tsmRuns.map((x) => x.rss)),
        tarRss: Math.max(...tarRuns.map((x) => x.rss)),
        tsmCpu: median(tsmRuns.map((x) => x.cpu)),
        tsmUser: median(tsmRuns.map((x) => x.user)),
        tsmSys: median(tsmRuns.map((x) => x.sys)),
        tarCpu: median(tarRuns.map((x) => x.cpu)),
        contention: { kind: tsmRuns[0].load.kind, value: median([...tarRuns, ...tsmRuns].map((x) => x.load.value)) },
        tarRuns, tsmRuns,
      });
    }

    if (o.profile && (t.id === 'a' || t.id === 'c')) {
      const pdir = path.join(o.scratch, 'profiles');
      fs.mkdirSync(pdir, { recursive: true });
      const name = `tsmakefs-${t.id}.cpuprofile`;
      rmrf(path.join(pdir, name));
      log(`${t.name}: profiling (node --cpu-prof)`);
      const p = timed(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${pdir}`, `--cpu-prof-name=${name}`, ...tsmArgs], tsmSpawn);
      after(img);
      if (p.status !== 0) throw new Error(`tsmakefs (profiled) failed (${p.status}): ${p.stderr}`);
      const s = summariseProfile(path.join(pdir, name), o.top);
      s.tree = t.name;
      s.wall = p.wall;
      results.profiles.push(s);
    }
    if (input !== t.dir) rmrf(input);
  }

  if (o.perf) {
    if (!perfAvailable()) log('--perf: perf is not installed (apt-get install linux-perf), skipped');
    for (const t of trees.filter((x) => (x.id === 'a' || x.id === 'c') && !results.trees.find((y) => y.tree === x.name)?.skipped)) {
      if (!perfAvailable()) break;
      const pdir = path.join(o.scratch, 'profiles');
      fs.mkdirSync(pdir, { recursive: true });
      const data = path.join(pdir, `tsmakefs-${t.id}.perf.data`);
      const img = path.join(outDir, `${t.id}.img`);
      log(`${t.name}: profiling (perf record -e cpu-clock)`);
      const pr = spawnSync('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '999', '-g', '-o', data, '--',
        process.execPath, '--perf-basic-prof', tsm, ...tsmOpts, '-s', imageSize(t.stats), img, t.dir],
      { stdio: ['ignore', 'ignore', 'pipe'] });
      rmrf(img);
      if (pr.status !== 0) throw new Error(`perf record failed (${pr.status}): ${pr.stderr}`);
      const s = summarisePerf(data, o.top);
      s.tree = t.name;
      results.perf = results.perf ?? [];
      results.perf.push(s);
      // --perf-basic-prof leaves /tmp/perf-PID.map behind; perf script has read it
      for (const f of fs.readdirSync('/tmp')) if (/^perf-\d+\.map$/.test(f)) {
        const st = fs.statSync(path.join('/tmp', f));
        if (Date.now() - st.mtimeMs < 3600_000 && !fs.existsSync(`/proc/${f.slice(5, -4)}`)) rmrf(path.join('/tmp', f));
      }
    }
  }

  printReport(results, o);
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(results, null, 2));
  if (!o.out && outDir.startsWith('/dev/shm/')) rmrf(outDir);
  if (o.clean) for (const d of [smallDir, largeDir]) { rmrf(d); rmrf(`${d}.stamp`); }
}

/** Bytes an archive or image of the tree takes at most (tar: 512 B header + 512 B blocks per entry). */
function outputEstimate(st) {
  return Math.max(st.bytes + st.entries * 1536, st.alloc4k + st.entries * 4096) + 64 * MiB;
}

function cpuModel() {
  try {
    const m = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch { /* not Linux */ }
  return os.cpus()[0]?.model ?? '?';
}

/**
 * What of the host's memory management the guest can see and that swings
 * both tools' times on a VM (RESULTS.md, nineteenth round): freed memory
 * handed back to the host, whose next use faults there (tmpfs writes 3-7x
 * slower), and DAMON reclaim dropping page cache not read for a while.
 */
function hostMemoryNotes() {
  const notes = [];
  try {
    const order = fs.readFileSync('/sys/module/page_reporting/parameters/page_reporting_order', 'utf8').trim();
    const reported = Number(fs.readFileSync('/sys/module/page_reporting/parameters/reported_kib', 'utf8'));
    notes.push(`free page reporting on (order ${order}${Number.isFinite(reported) ? `, ${fmtBytes(reported * KiB)} reported so far` : ''})`);
  } catch { /* not reported, or no such module */ }
  try {
    const kdamonds = fs.readdirSync('/sys/kernel/mm/damon/admin/kdamonds').filter((d) => /^\d+$/.test(d));
    const on = kdamonds.filter((d) => fs.readFileSync(`/sys/kernel/mm/damon/admin/kdamonds/${d}/state`, 'utf8').trim() === 'on');
    if (on.length) notes.push(`DAMON running (${on.length} kdamond${on.length > 1 ? 's' : ''}: page cache may be reclaimed between runs)`);
  } catch { /* no DAMON */ }
  return notes;
}

function printReport(r, o) {
  const m = r.machine;
  const lines = [];
  lines.push(`Machine: ${m.cpu}, ${m.nproc} CPUs, ${m.memory} RAM, Node ${m.node}, Linux ${m.kernel}, ${m.tar}`);
  lines.push(`Date: ${m.date}; outputs on ${m.outFs} (${m.outDir}); warm cache; median of ${o.reps} run(s)`);
  lines.push(`Command: node ${m.tsmakefs}; tar -cf OUT.tar -C TREE .`);
  if (m.hostMemory?.length) lines.push(`Host memory: ${m.hostMemory.join('; ')}; timings of both tools swing with it (bench/RESULTS.md, nineteenth round)`);
  if (r.startup) lines.push(`Startup (median of 10): tsmakefs --version ${r.startup.versionMs.toFixed(0)} ms wall, ${r.startup.versionCpuMs.toFixed(0)} ms CPU; node -e 0: ${r.startup.nodeMs.toFixed(0)} ms wall, ${r.startup.nodeCpuMs.toFixed(0)} ms CPU`);
  lines.push('');
  const done = r.trees.filter((t) => !t.skipped);
  if (done.length) {
    lines.push('| tree | entries | files | bytes | tar -cf s | tsmakefs s | ratio | files/s | MB/s | tsmakefs CPU s (user+sys) | tar CPU s | CPU ratio | tsmakefs peak RSS | tar peak RSS | contention |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const t of done) {
      lines.push(`| ${t.tree} | ${t.entries} | ${t.files} | ${fmtBytes(t.bytes)} | ${t.tarWall.toFixed(2)} | ${t.tsmWall.toFixed(2)} | ${t.ratio.toFixed(2)}x | ${Math.round(t.filesPerSec)} | ${Math.round(t.mbPerSec)} | ${t.tsmCpu.toFixed(2)} (${t.tsmUser.toFixed(2)}+${t.tsmSys.toFixed(2)}) | ${t.tarCpu.toFixed(2)} | ${t.tarCpu > 0 ? `${(t.tsmCpu / t.tarCpu).toFixed(2)}x` : '-'} | ${fmtMB(t.tsmRss)} MB | ${fmtMB(t.tarRss)} MB | ${fmtContention(t.contention)} |`);
    }
    // the issue's targets, as far as this run measured them
    const tgt = [];
    const find = (id) => done.find((t) => t.tree.startsWith(`(${id})`));
    // (said of the targets the issue sets for uncompressed images, in a compressed run)
    const offOnly = o.compression === 'off' ? '' : ' (the target is for compression=off)';
    if (r.startup) tgt.push(['startup (tsmakefs --version) <= 150 ms', `${r.startup.versionMs.toFixed(0)} ms`, r.startup.versionMs <= 150]);
    if (find('a')) tgt.push(['(a) small files >= 20,000 files/s', `${Math.round(find('a').filesPerSec)} files/s`, find('a').filesPerSec >= 20000]);
    if (find('b')) tgt.push([`(b) large files >= 400 MB/s${offOnly}`, `${Math.round(find('b').mbPerSec)} MB/s`, find('b').mbPerSec >= 400]);
    // the issue's lz4 target (">= 200 MB/s on 2 cores") for every tree built compressed
    if (o.compression !== 'off') {
      for (const t of done) tgt.push([`lz4 >= 200 MB/s on ${m.nproc} cores: ${t.tree}`, `${Math.round(t.mbPerSec)} MB/s`, t.mbPerSec >= 200]);
    }
    if (find('c')) {
      tgt.push([`(c) OS tree wall <= 1.0x tar -cf${offOnly}`, `${find('c').ratio.toFixed(2)}x`, find('c').ratio <= 1.0]);
      tgt.push([`(c) peak RSS <= 150 MB (${find('c').entries} entries; target is for 138k)`, `${fmtMB(find('c').tsmRss)} MB`, find('c').tsmRss <= 150e6]);
    }
    if (tgt.length) {
      lines.push('');
      lines.push('| target | measured | met |');
      lines.push('|---|---:|:---:|');
      for (const [k, v, ok] of tgt) lines.push(`| ${k} | ${v} | ${ok ? 'yes' : 'no'} |`);
    }
  }
  for (const t of r.trees.filter((x) => x.skipped)) lines.push(`| ${t.tree} | skipped: ${t.skipped} |`);
  for (const p of r.profiles) {
    lines.push('');
    lines.push(`Profile ${p.tree}: ${(p.totalMs / 1000).toFixed(2)} s sampled (wall ${p.wall.toFixed(2)} s under --cpu-prof), ${p.file}`);
    lines.push('');
    lines.push('Top self time:');
    lines.push('');
    lines.push('| # | function (file:line) | self ms | % | main callers (share of its self time) |');
    lines.push('|---:|---|---:|---:|---|');
    p.self.forEach((x, i) => lines.push(`| ${i + 1} | \`${x.function}\` | ${x.ms} | ${x['%']} | ${x.callers} |`));
    lines.push('');
    lines.push('Top inclusive time (project code and node:fs):');
    lines.push('');
    lines.push('| # | function (file:line) | total ms | % |');
    lines.push('|---:|---|---:|---:|');
    p.total.forEach((x, i) => lines.push(`| ${i + 1} | \`${x.function}\` | ${x.ms} | ${x['%']} |`));
    lines.push('');
    lines.push('Self time by script:');
    lines.push('');
    lines.push('| script | self ms | % |');
    lines.push('|---|---:|---:|');
    p.files.forEach((x) => lines.push(`| ${x.function} | ${x.ms} | ${x['%']} |`));
  }
  for (const p of r.perf ?? []) {
    const table = (title, rows, col = 'function') => {
      lines.push('');
      lines.push(title);
      lines.push('');
      lines.push(`| # | ${col} | samples | % |`);
      lines.push('|---:|---|---:|---:|');
      rows.forEach((x, i) => lines.push(`| ${i + 1} | \`${x.function}\` | ${x.samples} | ${x['%']} |`));
    };
    lines.push('');
    lines.push(`perf profile ${p.tree}: ${p.samples} cpu-clock samples at 999 Hz (~${(p.samples / 999).toFixed(1)} s CPU), ${p.file}`);
    lines.push('');
    lines.push(`Where the CPU goes: ${p.where.map((x) => `${x.function} ${x['%']}%`).join(', ')}; ${p.threads.map((x) => `${x.function} ${x['%']}%`).join(', ')}`);
    table('By innermost JS function (main thread; includes the runtime, allocation, GC and syscall work it triggers):', p.attributed);
    table('Leaf symbols (self time):', p.leaf, 'symbol');
    table('Inclusive time of project functions:', p.inclusive);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

// Run only as a script, so summariseProfile() can be imported on its own.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(`[whole] ${e.message}`);
    process.exit(1);
  });
}
