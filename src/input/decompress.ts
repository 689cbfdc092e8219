// Tarballs compressed with bzip2, xz, zstd or lzip (FreeBSD's distribution
// sets are .txz) are undone by the host's own command, as `tar -a` does:
// node has no decoder for them, and the commands are faster than any
// JavaScript one. The output is the same bytes whatever the command's
// version, so images stay reproducible. gzip never comes here (node's zlib).

import { spawn, spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { TarCompression } from './detect.js';

type HostCompression = Exclude<TarCompression, 'gzip'>;

const COMMANDS: Record<HostCompression, readonly string[]> = {
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

function commandFor(compression: HostCompression): [string, ...string[]] {
  const cmd = [...COMMANDS[compression]] as [string, ...string[]];
  if (compression === 'xz' && xzTakesThreads()) cmd.push('-T0');
  return cmd;
}

function missingMessage(compression: HostCompression): string {
  const cmd = COMMANDS[compression][0]!;
  return `reading ${compression}-compressed input needs the ${cmd} command, which is not on PATH; install it, or give the tarball decompressed`;
}

/**
 * Why a tarball compressed this way cannot be read here, or null: asked
 * before the build starts, so that a missing command is named before the
 * inputs ahead of it have been read (the start itself still checks).
 */
export function decompressorMissing(compression: TarCompression | null): string | null {
  if (compression === null || compression === 'gzip') return null;
  const cmd = COMMANDS[compression][0]!;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return null;
    } catch {
      // not in this one
    }
  }
  return missingMessage(compression);
}

/** Bytes of the command's stderr kept for the message. */
const STDERR_KEPT = 4096;

export interface HostDecompressor {
  /** The decompressed stream. */
  output: Readable;
  /**
   * Settles once the command has ended: null when it exited 0, else why not,
   * as one line. A command that cannot run ends its output at once, empty,
   * so a tarball is only complete once this says null. With `graceMs`, a
   * command still running after that long is stopped, and the answer is
   * null (nothing of its own to say).
   */
  status(graceMs?: number): Promise<string | null>;
  /** What the command said on stderr though it succeeded (bzip2's "trailing garbage after EOF ignored"), as one line; '' if nothing. */
  remarks(): string;
  /** Stop the command (the read failed for a reason of its own). */
  kill(): void;
}

/**
 * Start the host command that undoes `compression`, reading `input`: a
 * stream piped to it, or (a number) a descriptor of the compressed file,
 * which the command then reads itself (this process never sees those
 * bytes) and which is closed here once the command has its own copy.
 * (Not a stream's `fd`: streams have one too, past what they have read.)
 */
export function hostDecompressor(compression: HostCompression, input: Readable | number): HostDecompressor {
  const [cmd, ...args] = commandFor(compression);
  const stream = typeof input === 'number' ? undefined : input;
  const fd = typeof input === 'number' ? input : undefined;
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(cmd, args, { stdio: [fd ?? 'pipe', 'pipe', 'pipe'] });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    if (stderr.length < STDERR_KEPT) stderr += s;
  });
  // The command's exit status says what went wrong; a write into its closed
  // stdin (EPIPE) is only the echo of that.
  child.stdin?.on('error', () => {});
  if (stream !== undefined) stream.pipe(child.stdin!);
  const firstLine = (): string | undefined => stderr.split('\n').map((l) => l.trim()).find((l) => l !== '')?.replace(new RegExp(`^${cmd}: `), '');
  // kill() was ours: the read already failed for a reason of its own
  let stoppedByUs = false;
  const ended = new Promise<string | null>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      resolve(err.code === 'ENOENT' ? missingMessage(compression) : `${cmd}: ${err.message}`);
    });
    child.once('close', (code, signal) => {
      if (code === 0) return resolve(null);
      // stopped from outside (the OOM killer, a kill): nothing said of the data
      if (code === null) return resolve(stoppedByUs ? null : `the ${cmd} command was stopped by ${signal} before the end of its input`);
      const line = firstLine();
      const cutShort = line !== undefined && /unexpected end|end of (input|file)|truncated/i.test(line);
      resolve(`${cutShort ? `truncated ${compression} data` : `not valid ${compression} data`} (${cmd} exit ${code}${line ? `: ${line}` : ''})`);
    });
  });
  const kill = (): void => {
    if (child.killed || child.exitCode !== null || child.signalCode !== null) return;
    stoppedByUs = true;
    if (stream !== undefined) stream.unpipe(child.stdin!);
    child.kill();
  };
  return {
    output: child.stdout!,
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
    kill,
  };
}
