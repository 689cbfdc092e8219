// tsmakefs verify | ls | cat: looking into an image with our own reader.
// runInspect(argv) takes the subcommand first: ['ls', 'disk.img', '-R'].
// The reader is imported only when a subcommand runs, like the writer is.

import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Timespec } from '../input/tree.js';
import { ReadError } from '../reader/errors.js';
import { showPath } from '../input/walk.js';
import { errnoCode, fsUserError, UserError } from '../util/errors.js';
import { isInspectCommand, type InspectCommand } from './commands.js';

export interface InspectIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Binary output (cat). Without it, bytes go to process.stdout, respecting back-pressure. */
  stdoutBytes?(chunk: Uint8Array): void | Promise<void>;
}

const EXIT_OK = 0;
/** Problems found (verify), or the user's mistake. */
const EXIT_FAIL = 1;
const EXIT_INTERNAL = 2;

export { INSPECT_COMMANDS, isInspectCommand, type InspectCommand } from './commands.js';

const USAGE: Record<InspectCommand, string> = {
  verify: `usage: tsmakefs verify [-q] IMAGE [--against DIR [--dataset NAME] [-T timestamp]
                       [--no-content] [--no-mtime] [--no-xattrs]]

Check an image: every label and uberblock, the checksum of every block
reachable from the uberblock (every copy, and the zero padding up to its
allocated size), the space maps against the blocks found (no leak, no double
allocation, no block outside allocated space) and each file system's
directory tree (entries, link counts, sizes, parents, orphans).
With --against, also compare the tree with a staging directory: type, mode,
owner, size, mtime, link target, device numbers, hard links, content
(sha256) and xattrs where the input has them. The tree is the one the
staged root went to (the file system mounted highest; --dataset picks
another), followed into the datasets mounted below it. Give -T if the build
had it. Problems are printed one per line; the exit status is 1 if there
are any.
`,
  ls: `usage: tsmakefs ls [-R] [-d] IMAGE [DATASET[:PATH] | /PATH]...

List like ls -l: mode, links, uid, gid, size (major, minor for devices),
mtime (UTC), name, -> target. /PATH starts at the file system mounted
highest (the staged root) and follows the datasets mounted below it;
DATASET:PATH starts at that dataset's root. Default: /.
  -R  list subdirectories recursively
  -d  list directories themselves, not their contents
`,
  cat: `usage: tsmakefs cat IMAGE DATASET:PATH | /PATH...

Write files from the image to standard output (symbolic links followed).
`,
};

/** Run `tsmakefs verify|ls|cat ...`; argv starts with the subcommand. Resolves to the exit status. */
export async function runInspect(argv: string[], io: InspectIO): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (!isInspectCommand(cmd)) throw new UserError(`unknown command '${cmd ?? ''}' (verify, ls or cat)`);
    if (rest.includes('-h') || rest.includes('--help')) {
      io.stdout(USAGE[cmd]);
      return EXIT_OK;
    }
    switch (cmd) {
      case 'verify':
        return await verify(rest, io);
      case 'ls':
        return await ls(rest, io);
      case 'cat':
        return await cat(rest, io);
    }
  } catch (err) {
    return report(err, io, cmd);
  }
}

function parse<T extends Record<string, { type: 'string' | 'boolean'; short?: string }>>(cmd: InspectCommand, args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UserError(`${cmd}: ${(e as Error).message.replace(/\. To specify a positional.*$/s, '')} (see tsmakefs ${cmd} --help)`);
  }
}

async function verify(args: string[], io: InspectIO): Promise<number> {
  const { values, positionals } = parse('verify', args, {
    against: { type: 'string' },
    dataset: { type: 'string' },
    timestamp: { type: 'string', short: 'T' },
    'no-content': { type: 'boolean' },
    'no-mtime': { type: 'boolean' },
    'no-xattrs': { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
  });
  if (positionals.length !== 1) throw new UserError(`verify: expected one image, got ${positionals.length} arguments (see tsmakefs verify --help)`);
  const image = positionals[0]!;
  if ((values.dataset !== undefined || values.timestamp !== undefined) && values.against === undefined) {
    throw new UserError('verify: --dataset and -T only make sense with --against');
  }
  let timestamp: Timespec | undefined;
  if (values.timestamp !== undefined) timestamp = (await import('./timestamp.js')).parseTimestamp(values.timestamp);
  if (values.against !== undefined) checkDir(values.against);
  const { verifyImage } = await import('../reader/verify.js');
  const r = await verifyImage(image, {
    againstDir: values.against, dataset: values.dataset, timestamp,
    content: !values['no-content'], mtime: !values['no-mtime'], xattrs: !values['no-xattrs'],
  });
  for (const p of r.problems) io.stdout(`${p}\n`);
  for (const n of r.notes) io.stderr(`tsmakefs: note: ${n}\n`);
  if (r.problems.length > 0) {
    io.stderr(`tsmakefs: ${image}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}\n`);
    return EXIT_FAIL;
  }
  if (!values.quiet) {
    const { fmtSize } = await import('../vdev/allocator.js');
    const s = r.stats;
    io.stdout(
      `${image}: ok: ${s.labels} labels, ${s.uberblocks} uberblock slots, ${s.blocks} blocks (${fmtSize(s.bytes)}) checked; ` +
        `${s.datasets} dataset${s.datasets === 1 ? '' : 's'}, ${s.directories} directories, ${s.files} files; ` +
        `space maps: ${fmtSize(s.allocated)} allocated, all of it in use` +
        (values.against !== undefined ? `; same tree as ${values.against}` : '') + '\n',
    );
  }
  return EXIT_OK;
}

function checkDir(dir: string): void {
  // a missing directory is the user's mistake, not a difference to report
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    throw fsUserError(dir, e);
  }
  if (!st.isDirectory()) throw new UserError(`${dir}: Not a directory`);
}

async function ls(args: string[], io: InspectIO): Promise<number> {
  const { values, positionals } = parse('ls', args, {
    recursive: { type: 'boolean', short: 'R' },
    directory: { type: 'boolean', short: 'd' },
    long: { type: 'boolean', short: 'l' },
  });
  if (positionals.length < 1) throw new UserError('ls: expected an image (see tsmakefs ls --help)');
  const [image, ...specs] = positionals as [string, ...string[]];
  const R = await import('../reader/index.js');
  const pool = R.openPool(image);
  try {
    const targets = specs.length > 0 ? specs : [''];
    const many = targets.length > 1 || values.recursive === true;
    let first = true;
    for (const spec of targets) {
      const { dataset, path } = R.parseSpec(spec);
      const ns = new R.Namespace(pool, dataset);
      const label = (p: string) => (dataset !== undefined ? `${dataset}:${p}` : p);
      const top = inImage(image, '', () => ns.resolve(path));
      const z = inImage(image, spec, () => top.zpl.stat(top.obj));
      if (z.type !== 'dir' || values.directory) {
        io.stdout(R.formatLong([{ name: spec === '' ? '/' : spec, z }]).map((l) => `${l}\n`).join(''));
        first = false;
        continue;
      }
      // directories: this one, then (with -R) those below it, in name order
      const stack = [{ node: top, shown: normPath(path) }];
      while (stack.length > 0) {
        const { node: d, shown } = stack.pop()!;
        const where = label(shown);
        const kids = inImage(image, where, () => ns.children(d));
        const rows = kids.map((k) => ({ name: k.name, node: k.node, z: inImage(image, where, () => k.node.zpl.stat(k.node.obj)) }));
        if (many) io.stdout(`${first ? '' : '\n'}${where}:\n`);
        first = false;
        io.stdout(R.formatLong(rows).map((l) => `${l}\n`).join(''));
        if (values.recursive) {
          const subdirs = rows.filter((r) => r.z.type === 'dir');
          for (let i = subdirs.length - 1; i >= 0; i--) {
            const s = subdirs[i]!;
            stack.push({ node: s.node, shown: `${shown === '/' ? '' : shown}/${showPath(s.name)}` });
          }
        }
      }
    }
  } finally {
    pool.close();
  }
  return EXIT_OK;
}

async function cat(args: string[], io: InspectIO): Promise<number> {
  const { positionals } = parse('cat', args, {});
  if (positionals.length < 2) throw new UserError('cat: expected an image and a DATASET:PATH (see tsmakefs cat --help)');
  const [image, ...specs] = positionals as [string, ...string[]];
  const R = await import('../reader/index.js');
  const pool = R.openPool(image);
  const write = io.stdoutBytes ? io.stdoutBytes.bind(io) : writeStdout;
  // a reader that went away (cat IMAGE /f | head) ends the output quietly
  const ignore = (): void => {};
  if (!io.stdoutBytes) process.stdout.on('error', ignore);
  try {
    for (const spec of specs) {
      const { dataset, path } = R.parseSpec(spec);
      const ns = new R.Namespace(pool, dataset);
      const node = inImage(image, '', () => ns.resolve(path, { follow: true }));
      const z = inImage(image, spec, () => node.zpl.stat(node.obj));
      if (z.type === 'dir') throw new UserError(`${spec}: Is a directory`);
      if (z.type !== 'file') throw new UserError(`${spec}: not a regular file (a ${z.type})`);
      const blocks = node.zpl.read(node.obj);
      for (;;) {
        const next = inImage(image, spec, () => blocks.next());
        if (next.done) break;
        await write(next.value);
      }
    }
  } catch (e) {
    if (errnoCode(e) === 'EPIPE') return EXIT_OK;
    throw e;
  } finally {
    pool.close();
    if (!io.stdoutBytes) process.stdout.off('error', ignore);
  }
  return EXIT_OK;
}

function writeStdout(chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

function normPath(p: string): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  return `/${parts.join('/')}`;
}

/** Reader errors on a damaged image (or a path that is not there) are the user's to see, as one line. */
function inImage<T>(image: string, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ReadError) throw new UserError(`${image}: ${what ? `${what}: ` : ''}${e.message}`);
    throw e;
  }
}

function report(err: unknown, io: InspectIO, cmd: string | undefined): number {
  const debug = process.env['TSMAKEFS_DEBUG'] === '1';
  const trace = (): void => {
    if (debug && err instanceof Error && err.stack !== undefined) io.stderr(`${err.stack}\n`);
  };
  if (err instanceof UserError) {
    io.stderr(`tsmakefs: ${err.message}\n`);
    trace();
    return EXIT_FAIL;
  }
  if (err instanceof ReadError) {
    io.stderr(`tsmakefs: ${err.message}\n`);
    trace();
    return EXIT_FAIL;
  }
  if (errnoCode(err) !== undefined) {
    const e = err as Error & { path?: unknown };
    io.stderr(`tsmakefs: ${(typeof e.path === 'string' ? fsUserError(e.path, err) : e).message}\n`);
    trace();
    return EXIT_FAIL;
  }
  io.stderr(`tsmakefs: ${cmd ?? ''}: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  if (debug) trace();
  else io.stderr('tsmakefs: (set TSMAKEFS_DEBUG=1 for a stack trace)\n');
  return EXIT_INTERNAL;
}
