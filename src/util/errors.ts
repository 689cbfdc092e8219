// Errors the user can fix (bad arguments, missing or unreadable input) are
// told apart from bugs: the CLI prints them as one line and exits 1, while
// anything else is an internal error (exit 2).

export class UserError extends Error {
  override name = 'UserError';
}

// Node's messages ("ENOENT: no such file or directory, lstat 'x'") repeat the
// path and the syscall; users of a makefs replacement expect the C library's
// wording after the path instead.
const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  EIO: 'Input/output error',
  EMFILE: 'Too many open files',
  ENFILE: 'Too many open files in system',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
  EEXIST: 'File exists',
  EFBIG: 'File too large',
  ENOMEM: 'Cannot allocate memory',
  EINVAL: 'Invalid argument',
  ESTALE: 'Stale file handle',
};

/** The errno code of a Node system error, if it is one. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  const syscall = (err as { syscall?: unknown }).syscall;
  return typeof code === 'string' && typeof syscall === 'string' ? code : undefined;
}

/** Turn a failed fs call on `path` into a one-line UserError: "<path>: <reason>". */
export function fsUserError(path: string, err: unknown): UserError {
  const code = errnoCode(err);
  if (code === undefined) {
    return new UserError(`${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return new UserError(`${path}: ${STRERROR[code] ?? code}`);
}

/** The build was stopped by SIGINT or SIGTERM; the CLI exits 128 + the signal's number. */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
  constructor(readonly signal: 'SIGINT' | 'SIGTERM') {
    super(`interrupted by ${signal}; no image written`);
  }

  /** 130 for SIGINT, 143 for SIGTERM, as a shell reports a process killed by them. */
  get exitStatus(): number {
    return this.signal === 'SIGINT' ? 130 : 143;
  }
}
