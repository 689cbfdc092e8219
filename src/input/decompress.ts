// Tarballs compressed with bzip2, xz, zstd or lzip (FreeBSD's distribution
// sets are .txz) are undone by the host's own command, as `tar -a` does:
// node has no decoder for them, and the commands are faster than any
// JavaScript one. The output is the same bytes whatever the command's
// version, so images stay reproducible. gzip never comes here (node's zlib).

import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { TarCompression } from './detect.js';

type HostCompression = Exclude<TarCompression, 'gzip'>;

const COMMANDS: Record<HostCompression, readonly string[]> = {
  bzip2: ['bzip2', '-dc'],
  // -T0: threads where the file has several blocks (xz 5.4 and later)
  xz: ['xz', '-dc', '-T0'],
  zstd: ['zstd', '-dcq'],
  lzip: ['lzip', '-dc'],
};

/** Bytes of the command's stderr kept for the message. */
const STDERR_KEPT = 4096;

export interface HostDecompressor {
  /** The decompressed stream. */
  output: Readable;
  /**
   * Settles once the command has ended: null when it exited 0, else why not,
   * as one line. A command that cannot run ends its output at once, empty,
   * so a tarball is only complete once this says null.
   */
  status(): Promise<string | null>;
  /** Stop the command (the read failed for a reason of its own). */
  kill(): void;
}

/** Start the host command that undoes `compression`, reading `input`. */
export function hostDecompressor(compression: HostCompression, input: Readable): HostDecompressor {
  const [cmd, ...args] = COMMANDS[compression] as [string, ...string[]];
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    if (stderr.length < STDERR_KEPT) stderr += s;
  });
  // The command's exit status says what went wrong; a write into its closed
  // stdin (EPIPE) is only the echo of that.
  child.stdin.on('error', () => {});
  input.pipe(child.stdin);
  const ended = new Promise<string | null>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      resolve(err.code === 'ENOENT'
        ? `reading ${compression}-compressed input needs the ${cmd} command, which is not on PATH; install it, or give the tarball decompressed`
        : `${cmd}: ${err.message}`);
    });
    child.once('close', (code, signal) => {
      if (code === 0) return resolve(null);
      const line = stderr.split('\n').map((l) => l.trim()).find((l) => l !== '')?.replace(new RegExp(`^${cmd}: `), '');
      resolve(`not valid ${compression} data (${cmd} ${code !== null ? `exit ${code}` : `killed by ${signal}`}${line ? `: ${line}` : ''})`);
    });
  });
  return {
    output: child.stdout,
    status: () => ended,
    kill: () => {
      if (child.killed || child.exitCode !== null || child.signalCode !== null) return;
      input.unpipe(child.stdin);
      child.kill();
    },
  };
}
