// Tarballs compressed with gzip, bzip2, xz, zstd or lzip (FreeBSD's
// distribution sets are .txz) are undone by the host's own command, as `tar
// -a` does: node has no decoder for most of them, and the commands are faster
// than any JavaScript one. The output is the same bytes whatever the
// command's version, so images stay reproducible. gzip is undone by node's
// zlib where the host has no gzip command.
//
// The command writes into a FIFO that this process reads into one buffer
// (tar-feed.ts's SocketPull), not into a pipe that Node reads into a new
// buffer per read: those buffers outlived the young generation and came back
// only at full GCs, 12-25 MB of a minbase build's peak (bench/RESULTS.md,
// twenty-sixth round). Where no FIFO can be made (no mkfifo command, no
// writable temporary directory), the command's stdout is a stream as before.
// Linux only: on macOS, libuv watches a FIFO with kqueue, which signals no
// end when the last writer closes it (libuv PR #4513, nodejs/node#45210),
// so the read would wait for ever once the command is done.

import { spawn, spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { TarCompression } from './detect.js';
import { isTarPull, SocketPull, type TarPull } from './tar-feed.js';

const COMMANDS: Record<TarCompression, readonly string[]> = {
  gzip: ['gzip', '-dc'],
  bzip2: ['bzip2', '-dc'],
  xz: ['xz', '-dc'],
  zstd: ['zstd', '-dcq'],
  lzip: ['lzip', '-dc'],
};

/**
 * Whether this xz takes -T0 (threads where the file has several blocks, as
 * FreeBSD's distribution sets have): XZ Utils does (5.4 and later decode in
 * parallel with it), BusyBox's xz, Alpine's default, refuses the option.
 * Asked once per xz input (a few ms), so PATH is looked up as the command is.
 */
function xzTakesThreads(): boolean {
  const r = spawnSync('xz', ['--version'], { encoding: 'utf8', timeout: 5000 });
  return r.status === 0 && /XZ Utils/.test(r.stdout);
}

function commandFor(compression: TarCompression): [string, ...string[]] {
  const cmd = [...COMMANDS[compression]] as [string, ...string[]];
  if (compression === 'xz' && xzTakesThreads()) cmd.push('-T0');
  return cmd;
}

function missingMessage(compression: TarCompression): string {
  const cmd = COMMANDS[compression][0]!;
  return `reading ${compression}-compressed input needs the ${cmd} command, which is not on PATH; install it, or give the tarball decompressed`;
}

/** Whether `cmd` is an executable file in a directory of PATH (looked up as spawn will). */
function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // not in this one
    }
  }
  return false;
}

/** Whether a tarball compressed this way is undone by a host command (else by node's zlib: gzip without a gzip command). */
export function decompressedByHost(compression: TarCompression): boolean {
  return compression !== 'gzip' || onPath(COMMANDS.gzip[0]!);
}

/**
 * Why a tarball compressed this way cannot be read here, or null: asked
 * before the build starts, so that a missing command is named before the
 * inputs ahead of it have been read (the start itself still checks).
 */
export function decompressorMissing(compression: TarCompression | null): string | null {
  if (compression === null || compression === 'gzip') return null;
  return onPath(COMMANDS[compression][0]!) ? null : missingMessage(compression);
}

/**
 * A FIFO's two ends, opened here (the reader first and without waiting, so
 * that opening the writer does not wait either), its name already gone;
 * null where none can be made.
 */
function fifoEnds(): { read: number; write: number } | null {
  let dir: string | undefined;
  let read = -1;
  try {
    dir = mkdtempSync(join(tmpdir(), 'tsmakefs-'));
    const path = join(dir, 'fifo');
    if (spawnSync('mkfifo', ['-m', '600', path], { stdio: 'ignore', timeout: 5000 }).status !== 0) return null;
    read = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const ends = { read, write: openSync(path, constants.O_WRONLY) };
    rmSync(dir, { recursive: true, force: true });
    return ends;
  } catch {
    if (read >= 0) closeSync(read);
    try {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    } catch {
      // (a TMPDIR that lets one make a directory and not remove it: left)
    }
    return null;
  }
}

/** Whether a command's output can go through a FIFO here (see the top of this file). */
const FIFO_EOF_SEEN = process.platform === 'linux';

/** Bytes of each of the two buffers a pulled input is fed to the command through. */
const FEED_BYTES = 64 << 10;

/**
 * `src` written to the command's stdin through two buffers used in turn (one
 * filled while the other is written), for the reason the FIFO is read into
 * one. Stops, closing `src`, at its end or once the command takes no more;
 * a failed pull goes to `onError`.
 */
async function feed(src: TarPull, sink: Writable, onError: (e: unknown) => void): Promise<void> {
  const bufs = [Buffer.allocUnsafeSlow(FEED_BYTES), Buffer.allocUnsafeSlow(FEED_BYTES)] as const;
  // (a write's callback comes once its bytes are the pipe's, or with why not)
  let written = Promise.resolve(true);
  try {
    for (let i = 0; ; i ^= 1) {
      const n = await src.pull(bufs[i]);
      if (!(await written)) return;
      if (n === 0) break;
      written = new Promise((resolve) => sink.write(bufs[i].subarray(0, n), (err) => resolve(!err)));
    }
    sink.end();
  } catch (e) {
    onError(e);
    sink.destroy();
  } finally {
    src.close();
  }
}

/** Bytes of the command's stderr kept for the message. */
const STDERR_KEPT = 4096;

/**
 * Why a command failed, as one line. `where` is where in the archive the
 * data stopped (" in member 'x'"), which only the reader knows, and only
 * once it has parsed what the command wrote before it failed; it goes into
 * a "truncated" complaint, and the others leave it out.
 */
export type CommandFailure = (where: string) => string;

export interface HostDecompressor {
  /** The decompressed bytes: pulled from a FIFO (closed by stop()), or the command's stdout where there is none. */
  output: SocketPull | Readable;
  /**
   * Settles once the command has ended: null when it exited 0, else why not,
   * as one line. A command that cannot run ends its output at once, empty,
   * so a tarball is only complete once this says null. With `graceMs`, a
   * command still running after that long is stopped, and the answer is
   * null (nothing of its own to say).
   */
  status(graceMs?: number): Promise<CommandFailure | null>;
  /** What the command said on stderr though it succeeded (bzip2's "trailing garbage after EOF ignored"), as one line; '' if nothing. */
  remarks(): string;
  /** Read the rest of the output and throw it away, so that a command whose output is no longer wanted can get to its exit status. */
  discard(): void;
  /** Stop the command if it still runs (the read failed for a reason of its own), and close what is read of it. */
  stop(): void;
}

/**
 * Start the host command that undoes `compression`, reading `input`: a
 * stream piped to it, a pull fed to it (a failed pull goes to `onInputError`),
 * or (a number) a descriptor of the compressed file, which the command then
 * reads itself (this process never sees those bytes) and which is closed
 * here once the command has its own copy. (Not a stream's `fd`: streams have
 * one too, past what they have read.) `fifo: false` reads the command's
 * stdout as a stream even where a FIFO could be made (tests).
 */
export function hostDecompressor(
  compression: TarCompression, input: Readable | TarPull | number, onInputError: (e: unknown) => void, fifo = FIFO_EOF_SEEN,
): HostDecompressor {
  const [cmd, ...args] = commandFor(compression);
  const fd = typeof input === 'number' ? input : undefined;
  const pulled = typeof input !== 'number' && isTarPull(input) ? input : undefined;
  const stream = typeof input === 'number' || isTarPull(input) ? undefined : input;
  const ends = fifo ? fifoEnds() : null;
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(cmd, args, { stdio: [fd ?? 'pipe', ends?.write ?? 'pipe', 'pipe'] });
  } catch (e) {
    if (ends) closeSync(ends.read);
    throw e;
  } finally {
    if (fd !== undefined) closeSync(fd);
    // the command has its own copy: the FIFO ends when the command does
    if (ends) closeSync(ends.write);
  }
  const output: SocketPull | Readable = ends ? new SocketPull(ends.read) : child.stdout!;
  let stderr = '';
  // (no stderr when the spawn itself failed, EMFILE say: 'error' tells)
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    if (stderr.length < STDERR_KEPT) stderr += s;
  });
  // The command's exit status says what went wrong; a write into its closed
  // stdin (EPIPE) is only the echo of that.
  child.stdin?.on('error', () => {});
  if (stream !== undefined) stream.pipe(child.stdin!);
  if (pulled !== undefined) void feed(pulled, child.stdin!, onInputError);
  const firstLine = (): string | undefined => stderr.split('\n').map((l) => l.trim()).find((l) => l !== '')?.replace(new RegExp(`^${cmd}: `), '');
  // kill() was ours: the read already failed for a reason of its own
  let stoppedByUs = false;
  const ended = new Promise<CommandFailure | null>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      const text = err.code === 'ENOENT' ? missingMessage(compression) : `${cmd}: ${err.message}`;
      resolve(() => text);
    });
    child.once('close', (code, signal) => {
      if (code === 0) return resolve(null);
      // stopped from outside (the OOM killer, a kill): nothing said of the data
      if (code === null) return resolve(stoppedByUs ? null : () => `the ${cmd} command was stopped by ${signal} before the end of its input`);
      const line = firstLine();
      const said = `(${cmd} exit ${code}${line ? `: ${line}` : ''})`;
      if (line !== undefined && /unexpected end|end of (input|file)|truncated/i.test(line)) return resolve((where) => `truncated ${compression} data${where} ${said}`);
      // (gzip's exit 2: "decompression OK, trailing garbage ignored", which GNU tar takes for an error too)
      const kind = line !== undefined && /trailing garbage/i.test(line) ? 'trailing bytes after the' : 'not valid';
      resolve(() => `${kind} ${compression} data ${said}`);
    });
  });
  const kill = (): void => {
    if (child.killed || child.exitCode !== null || child.signalCode !== null) return;
    stoppedByUs = true;
    if (stream !== undefined) stream.unpipe(child.stdin!);
    child.kill();
  };
  return {
    output,
    status: (graceMs?: number) => {
      if (graceMs === undefined) return ended;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<null>((resolve) => {
        timer = setTimeout(() => {
          kill();
          resolve(null);
        }, graceMs);
      });
      return Promise.race([ended, late]).finally(() => clearTimeout(timer));
    },
    remarks: () => firstLine() ?? '',
    discard: () => {
      // (SocketPull drops what comes and ends a pull still waiting: a second
      // reader beside the pump's would leave one of them waiting for ever)
      if (output instanceof SocketPull) output.discard();
      else output.resume();
    },
    stop: () => {
      kill();
      if (pulled !== undefined) pulled.close();
      if (output instanceof SocketPull) output.close();
    },
  };
}
