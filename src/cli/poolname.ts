// Pool names are checked here, before anything is written, with the rules
// OpenZFS applies when a pool is created (pool_namecheck plus the stricter
// create-time list of zpool_name_valid): an image whose name `zpool import`
// refuses, or that can never be re-created by name, is useless.
//
// Deliberately not checked: the "c0".."c9" prefix ("disk-like" names), which
// old OpenZFS/Solaris rejected and current OpenZFS accepts again.

// ZFS_MAX_DATASET_NAME_LEN (256) minus room for "/$ORIGIN@$ORIGIN"-style
// internal names, which must still fit after the pool name.
export const MAX_POOL_NAME = 256 - 2 - 2 * '$ORIGIN'.length - 1;

const EXACT_RESERVED = ['mirror', 'raidz', 'draid', 'log'];
const RESERVED_PREFIXES = ['mirror', 'raidz', 'draid', 'spare'];

function validChar(c: string): boolean {
  return /^[A-Za-z0-9\-_.: ]$/.test(c);
}

function show(c: string): string {
  const code = c.codePointAt(0)!;
  // Control characters would garble the one-line message.
  return code < 0x20 || (code >= 0x7f && code < 0xa0) ? `\\u{${code.toString(16)}}` : c;
}

/** Why `name` cannot be a pool name, or undefined if it can. */
export function poolNameProblem(name: string): string | undefined {
  if (name === '') return 'the pool name must not be empty';
  if (Buffer.byteLength(name) > MAX_POOL_NAME) {
    return `pool name is too long (${Buffer.byteLength(name)} bytes, at most ${MAX_POOL_NAME})`;
  }
  for (const c of name) {
    if (!validChar(c)) {
      return `invalid character '${show(c)}' in pool name '${name}' (allowed: letters, digits, '-', '_', '.', ':' and space)`;
    }
  }
  if (!/^[A-Za-z]/.test(name)) return `pool name '${name}' must begin with a letter`;
  if (EXACT_RESERVED.includes(name)) return `pool name '${name}' is reserved`;
  const prefix = RESERVED_PREFIXES.find((p) => name.startsWith(p));
  if (prefix !== undefined) {
    return `pool name '${name}' is reserved (names beginning with '${prefix}' are vdev keywords)`;
  }
  return undefined;
}
