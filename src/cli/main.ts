// Entry point of the tsmakefs command. Modules are imported only when the
// invocation needs them (the writer only for a real build, commander not
// even for a bare --version), so quick answers come at Node start-up speed.

import type { Readable } from 'node:stream';
import { errnoCode, fsUserError, InterruptedError, UserError } from '../util/errors.js';
import type { Inode } from '../input/tree.js';
import type { ImageOptions } from '../options.js';
import type { BuildInvocation } from './args.js';
import { isInspectCommand } from './commands.js';
import { packageVersion } from './version.js';
import { checkArgvBytes, readCmdline } from './rawargv.js';

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Where "-" reads from; default process.stdin. */
  stdin?: Readable;
  /** stderr is a terminal: a progress line is drawn there (not with -q, not when CI=true). */
  stderrIsTTY?: boolean;
  /** Terminal width, for the progress line. */
  columns?: () => number | undefined;
}

/**
 * A stand-in for the writer, taken only by tests: it gets the finished tree
 * (tarball data collected in memory), not the streaming source the real
 * writer consumes.
 */
export type MakeImage = (root: Inode, opts: ImageOptions) => Promise<object>;

const processIO: CliIO = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  stderrIsTTY: process.stderr.isTTY === true,
  columns: () => process.stderr.columns,
};

/** Exit statuses: 0 done, 1 the user's problem (message says what), 2 ours; 130 and 143 interrupted by SIGINT and SIGTERM. */
export const EXIT_OK = 0;
export const EXIT_USER = 1;
export const EXIT_INTERNAL = 2;

async function build(inv: BuildInvocation, io: CliIO, writer: MakeImage | undefined): Promise<void> {
  // progress, summary and signals: src/cli/build.ts
  const { runCliBuild } = await import('./build.js');
  await runCliBuild(inv, { ...io, isTTY: io.stderrIsTTY === true, signals: io === processIO }, writer);
}

/** Run tsmakefs with `argv` (without node and script); resolves to the exit status. */
export async function main(argv: readonly string[], io: CliIO = processIO, writer?: MakeImage): Promise<number> {
  try {
    if (argv.length === 1 && argv[0] === '--version') {
      io.stdout(`${packageVersion()}\n`);
      return EXIT_OK;
    }
    // tsmakefs verify|ls|cat IMAGE ...: our own reader
    if (isInspectCommand(argv[0])) {
      const { runInspect } = await import('./inspect.js');
      return await runInspect([...argv], io);
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
  if (err instanceof InterruptedError) {
    io.stderr(`tsmakefs: ${err.message}\n`);
    return err.exitStatus;
  }
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

/** Whether `argv` asks for a build: not a quick answer, nor our own reader (whose commands come first). */
export function looksLikeBuild(argv: readonly string[]): boolean {
  if (argv.length === 0 || isInspectCommand(argv[0])) return false;
  return !argv.some((a) => a === '--version' || a === '--help' || a === '-h');
}

/** What bin/tsmakefs calls. */
export async function run(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  try {
    checkArgvBytes(argv, readCmdline());
  } catch (err) {
    process.exitCode = report(err, processIO);
    return;
  }
  // the build thread boots while the options are parsed (build-thread.ts)
  if (looksLikeBuild(argv)) (await import('./build-thread.js')).prestartBuildThread();
  process.exitCode = await main(argv);
}
