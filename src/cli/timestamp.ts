// -T, as makefs reads it: an existing file lends its modification time,
// anything else must be an integer count of seconds since the epoch. The
// file is tried first, like makefs does, so "-T 1700000000" only means a
// number if no file of that name exists.

import { statSync } from 'node:fs';
import { timespecFromNs } from '../input/walk.js';
import type { Timespec } from '../input/tree.js';
import { UserError } from '../util/errors.js';

export function parseTimestamp(arg: string): Timespec {
  let st;
  try {
    st = statSync(arg, { bigint: true, throwIfNoEntry: false });
  } catch {
    st = undefined; // unreadable or odd paths fall through to the number form
  }
  if (st !== undefined) return timespecFromNs(st.mtimeNs);

  const m = /^([+-]?)(0x[0-9a-f]+|\d+)$/i.exec(arg);
  if (m !== null) {
    const sec = BigInt(m[2]!) * (m[1] === '-' ? -1n : 1n);
    if (sec >= BigInt(Number.MIN_SAFE_INTEGER) && sec <= BigInt(Number.MAX_SAFE_INTEGER)) {
      return Object.freeze({ sec: Number(sec), nsec: 0 });
    }
  }
  throw new UserError(
    `-T: cannot get a timestamp from '${arg}' (neither an existing file nor an integer number of seconds)`,
  );
}
