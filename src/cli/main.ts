// Entry point of the tsmakefs command. Modules are imported only when the
// invocation needs them (the writer only for a real build, commander not
// even for a bare --version), so quick answers come at Node start-up speed.

import { statSync } from 'node:fs';
import { errnoCode, fsUserError, UserError } from '../util/errors.js';
import type { Inode } from '../input/tree.js';
import type { ImageOptions } from '../options.js';
import type { BuildInvocation } from './args.js';
import { packageVersion } from './version.js';

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** The writer's signature; main() takes another one only in tests. */
export type MakeImage = (root: Inode, opts: ImageOptions) => Promise<object>;

const processIO: CliIO = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

/** Exit statuses: 0 done, 1 the user's problem (message says what), 2 ours. */
export const EXIT_OK = 0;
export const EXIT_USER = 1;
export const EXIT_INTERNAL = 2;

// makefs treats a regular file as the first input as an mtree manifest; say
// so instead of a bare "Not a directory", since users coming from makefs
// will try it.
function checkInputs(inputs: readonly string[]): void {
  inputs.forEach((input, i) => {
    let isDir: boolean;
    let isFile: boolean;
    try {
      const st = statSync(input);
      isDir = st.isDirectory();
      isFile = st.isFile();
    } catch (err) {
      throw fsUserError(input, err);
    }
    if (isDir) return;
    if (i === 0 && isFile) throw new UserError(`${input}: not a directory (mtree manifests are not supported yet)`);
    throw new UserError(`${input}: Not a directory`);
  });
}

async function build(inv: BuildInvocation, io: CliIO, writer: MakeImage | undefined): Promise<void> {
  checkInputs(inv.inputs);
  const { walkDirectories } = await import('../input/walk.js');
  const root = walkDirectories(inv.inputs, { timestamp: inv.timestamp });
  const makeImage: MakeImage = writer ?? (await import('../image.js')).makeImage;
  const summary = await makeImage(root, inv.options);
  if (inv.options.verbose) {
    const { formatSummary } = await import('./summary.js');
    io.stdout(formatSummary(summary));
  }
}

/** Run tsmakefs with `argv` (without node and script); resolves to the exit status. */
export async function main(argv: readonly string[], io: CliIO = processIO, writer?: MakeImage): Promise<number> {
  try {
    if (argv.length === 1 && argv[0] === '--version') {
      io.stdout(`${packageVersion()}\n`);
      return EXIT_OK;
    }
    const { parseArgs } = await import('./args.js');
    const inv = parseArgs(argv);
    if (inv.kind !== 'build') {
      io.stdout(inv.text);
      return EXIT_OK;
    }
    await build(inv, io, writer);
    return EXIT_OK;
  } catch (err) {
    return report(err, io);
  }
}

function report(err: unknown, io: CliIO): number {
  const debug = process.env['TSMAKEFS_DEBUG'] === '1';
  const trace = (): void => {
    if (debug && err instanceof Error && err.stack !== undefined) io.stderr(`${err.stack}\n`);
  };
  if (err instanceof UserError) {
    io.stderr(`tsmakefs: ${err.message}\n`);
    trace();
    return EXIT_USER;
  }
  // A failing system call (output directory missing, disk full, file
  // vanished while being copied) is about the user's environment, not a bug.
  if (errnoCode(err) !== undefined) {
    const e = err as Error & { path?: unknown };
    io.stderr(`tsmakefs: ${(typeof e.path === 'string' ? fsUserError(e.path, err) : e).message}\n`);
    trace();
    return EXIT_USER;
  }
  io.stderr(`tsmakefs: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  if (debug) trace();
  else io.stderr('tsmakefs: (set TSMAKEFS_DEBUG=1 for a stack trace)\n');
  return EXIT_INTERNAL;
}

/** What bin/tsmakefs calls. */
export async function run(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  process.exitCode = await main(argv);
}
