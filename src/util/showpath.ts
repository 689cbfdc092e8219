// Paths in messages. A module of its own, with no imports, so that the
// command line can name a bad argument before it loads any of the writer.

/** A path for messages: UTF-8 where it is, \xNN for bytes that are not. */
export function showPath(path: Uint8Array | string): string {
  if (typeof path === 'string') return path;
  const buf = Buffer.from(path.buffer, path.byteOffset, path.byteLength);
  const s = buf.toString('utf8');
  if (Buffer.from(s).equals(buf)) return s;
  let out = '';
  for (const b of buf) out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}
