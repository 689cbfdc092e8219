// Errors of the reader. A ReadError says what could not be read and why, in
// words fit for a verify report; its key names the root cause (usually the
// bad block), so a report can say it once even when several readers trip
// over the same block.

export class ReadError extends Error {
  override name = 'ReadError';
  constructor(message: string, readonly key?: string) {
    super(message);
  }
}

/** Run fn, prefixing the message of a ReadError it throws with `context: `. */
export function inContext<T>(context: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw withContext(context, e);
  }
}

/** A ReadError (other errors become one) whose message starts with `context: `. */
export function withContext(context: string, e: unknown): ReadError {
  if (e instanceof ReadError) return new ReadError(`${context}: ${e.message}`, e.key);
  return new ReadError(`${context}: ${e instanceof Error ? e.message : String(e)}`);
}

export function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}
