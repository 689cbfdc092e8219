// Node decodes the command line as UTF-8 and puts U+FFFD where bytes are
// not UTF-8, so a path such as "a\xff.img" reaches us as a different,
// valid name: written as given, the image would land under that other
// name, and an input would be "No such file or directory" for a directory
// that exists. On Linux the bytes the kernel passed are in
// /proc/self/cmdline; an argument whose bytes are not UTF-8 is refused by
// name rather than taken for another.

import { readFileSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { UserError } from '../util/errors.js';
import { showPath } from '../util/showpath.js';

/** The process's command line as the kernel holds it (NUL-terminated arguments), where the system shows it. */
export function readCmdline(): Uint8Array | undefined {
  try {
    return readFileSync('/proc/self/cmdline');
  } catch {
    return undefined;
  }
}

/**
 * Refuse the first of `argv` (the arguments after node's own and the
 * script) whose bytes in `cmdline` are not UTF-8. The arguments are the
 * command line's last ones; if they do not decode to `argv` (a process
 * that rewrote its title, a caller's own argv), nothing is said.
 */
export function checkArgvBytes(argv: readonly string[], cmdline: Uint8Array | undefined): void {
  if (cmdline === undefined || argv.length === 0) return;
  const raw = Buffer.from(cmdline.buffer, cmdline.byteOffset, cmdline.byteLength);
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0) {
      parts.push(raw.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < raw.length) parts.push(raw.subarray(start));
  if (parts.length < argv.length) return;
  const tail = parts.slice(parts.length - argv.length);
  if (!tail.every((b, i) => b.toString('utf8') === argv[i])) return;
  const bad = tail.find((b) => !isUtf8(b));
  if (bad !== undefined) {
    throw new UserError(`${showPath(bad)}: argument is not valid UTF-8, which node cannot pass on as a file name; give it a UTF-8 name (a symlink to it will do)`);
  }
}
