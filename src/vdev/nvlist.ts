// Packed nvlists in XDR encoding (NV_ENCODE_XDR): the vdev label's vdev_phys
// payload, the MOS `config` object (DMU_OT_PACKED_NVLIST) and the ZPL_DXATTR
// system attribute (xattr=sa; OpenZFS packs that with NV_ENCODE_XDR too, one
// byte_array pair per xattr).
//
// Stream layout (all XDR words big-endian, whatever the header's endian byte):
//   nvs header   : encoding (1 = XDR), endian (1 = little host), 0, 0
//   nvlist body  : int32 nvl_version (0), uint32 nvl_nvflag, pairs,
//                  then two zero words
//   pair         : int32 encoded size, int32 decoded size, XDR string name,
//                  int32 data type, int32 element count, value
// Embedded nvlists (nvlist, nvlist_array elements) are complete bodies with
// their own version/flag words and terminator.
//
// The "decoded size" is the size of the in-memory nvpair_t libnvpair will
// allocate for the pair; OpenZFS's unpack (i_validate_nvpair) rejects the whole
// stream unless it equals NVP_SIZE_CALC(name_sz, value_sz) exactly, so it is
// derived here from the same rules rather than trusted from input.

export type NvList = Array<[string, NvValue]>;

/** The value carried by each data type (DATA_TYPE_BOOLEAN carries none). */
export interface NvValueTypes {
  boolean_value: boolean;
  byte: number;
  int8: number;
  uint8: number;
  int16: number;
  uint16: number;
  int32: number;
  uint32: number;
  int64: bigint;
  uint64: bigint;
  hrtime: bigint;
  string: string;
  /** xattr values (ZPL_DXATTR). */
  byte_array: Uint8Array;
  boolean_array: boolean[];
  int8_array: number[];
  uint8_array: number[];
  int16_array: number[];
  uint16_array: number[];
  int32_array: number[];
  uint32_array: number[];
  int64_array: bigint[];
  uint64_array: bigint[];
  string_array: string[];
  nvlist: NvList;
  nvlist_array: NvList[];
}

/**
 * One value, tagged with its data type. 'boolean' is DATA_TYPE_BOOLEAN:
 * presence only (features_for_read entries, has_per_vdev_zaps).
 */
export type NvValue =
  | { type: 'boolean' }
  | { [K in keyof NvValueTypes]: { type: K; value: NvValueTypes[K] } }[keyof NvValueTypes];

export type NvType = NvValue['type'];

export const NV_VERSION = 0;
export const NV_ENCODE_NATIVE = 0;
export const NV_ENCODE_XDR = 1;
export const NV_UNIQUE_NAME = 0x1;
export const NV_UNIQUE_NAME_TYPE = 0x2;

/** data_type_t; DATA_TYPE_DOUBLE (27) is userland-only and not accepted by the kernel. */
export const DATA_TYPE: Readonly<Record<NvType, number>> = {
  boolean: 1,
  byte: 2,
  int16: 3,
  uint16: 4,
  int32: 5,
  uint32: 6,
  int64: 7,
  uint64: 8,
  string: 9,
  byte_array: 10,
  int16_array: 11,
  uint16_array: 12,
  int32_array: 13,
  uint32_array: 14,
  int64_array: 15,
  uint64_array: 16,
  string_array: 17,
  hrtime: 18,
  nvlist: 19,
  nvlist_array: 20,
  boolean_value: 21,
  int8: 22,
  uint8: 23,
  boolean_array: 24,
  int8_array: 25,
  uint8_array: 26,
};

const TYPE_BY_CODE = new Map<number, NvType>(
  (Object.entries(DATA_TYPE) as Array<[NvType, number]>).map(([k, v]) => [v, k]),
);

// In-memory sizes libnvpair uses: sizeof (nvpair_t) is 16 (int32 size, int16
// name_sz, int16 reserve, int32 nelem, enum type); sizeof (nvlist_t) is 24;
// boolean_t is an enum, hence 4 bytes.
const NVPAIR_T_SIZE = 16;
const NVLIST_T_SIZE = 24;
const BOOLEAN_T_SIZE = 4;
const POINTER_SLOT = 8; // string and nvlist arrays keep a uint64-sized pointer per element

// The kernel's nvpair_max_recursion; deeper embedding is refused on import.
const MAX_EMBED_DEPTH = 20;

// nvp_name_sz is an int16 that counts the NUL.
const MAX_NAME_SZ = 0x7fff;

type SmallInt = 'byte' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32';
type WideInt = 'int64' | 'uint64' | 'hrtime';
type SmallIntArray = 'int8_array' | 'uint8_array' | 'int16_array' | 'uint16_array' | 'int32_array' | 'uint32_array';
type WideIntArray = 'int64_array' | 'uint64_array';

interface IntRule {
  native: number; // bytes in the in-memory value
  bits: 8 | 16 | 32;
  signed: boolean;
}

const SMALL_INT: Record<SmallInt, IntRule> = {
  byte: { native: 1, bits: 8, signed: false },
  int8: { native: 1, bits: 8, signed: true },
  uint8: { native: 1, bits: 8, signed: false },
  int16: { native: 2, bits: 16, signed: true },
  uint16: { native: 2, bits: 16, signed: false },
  int32: { native: 4, bits: 32, signed: true },
  uint32: { native: 4, bits: 32, signed: false },
};

const SMALL_INT_ARRAY_ELEM: Record<SmallIntArray, SmallInt> = {
  int8_array: 'int8',
  uint8_array: 'uint8',
  int16_array: 'int16',
  uint16_array: 'uint16',
  int32_array: 'int32',
  uint32_array: 'uint32',
};

const WIDE_SIGNED: Record<WideInt | WideIntArray, boolean> = {
  int64: true,
  hrtime: true,
  uint64: false,
  int64_array: true,
  uint64_array: false,
};

function align8(n: number): number {
  return (n + 7) & ~7;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** C strings: libnvpair measures with strlen, so an inner NUL would silently truncate. */
function cstringBytes(s: string, what: string): Uint8Array {
  const b = utf8.encode(s);
  if (b.includes(0)) throw new Error(`nvlist: ${what} contains a NUL character`);
  return b;
}

function isSmallInt(t: NvType): t is SmallInt {
  return t in SMALL_INT;
}

function isSmallIntArray(t: NvType): t is SmallIntArray {
  return t in SMALL_INT_ARRAY_ELEM;
}

function checkSmallInt(v: number, rule: IntRule, where: string): void {
  const min = rule.signed ? -(2 ** (rule.bits - 1)) : 0;
  const max = rule.signed ? 2 ** (rule.bits - 1) - 1 : 2 ** rule.bits - 1;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`nvlist: ${where}: ${v} is not a valid ${rule.signed ? 'int' : 'uint'}${rule.bits}`);
  }
}

function checkWide(v: bigint, signed: boolean, where: string): void {
  const ok = signed ? BigInt.asIntN(64, v) === v : BigInt.asUintN(64, v) === v;
  if (!ok) throw new RangeError(`nvlist: ${where}: ${v} does not fit a ${signed ? 'int64' : 'uint64'}`);
}

// ---------------------------------------------------------------------------
// Encoder

class XdrWriter {
  private buf = new Uint8Array(1024);
  private dv = new DataView(this.buf.buffer);
  pos = 0;

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.reserve(1);
    this.buf[this.pos++] = v;
  }

  u32(v: number): void {
    this.reserve(4);
    this.dv.setUint32(this.pos, v >>> 0, false);
    this.pos += 4;
  }

  u64(v: bigint): void {
    this.reserve(8);
    this.dv.setBigUint64(this.pos, BigInt.asUintN(64, v), false);
    this.pos += 8;
  }

  patchU32(at: number, v: number): void {
    this.dv.setUint32(at, v >>> 0, false);
  }

  /** xdr_opaque: bytes then zero fill to a 4-byte boundary. */
  opaque(b: Uint8Array): void {
    const padded = align4(b.length);
    this.reserve(padded);
    this.buf.set(b, this.pos);
    this.buf.fill(0, this.pos + b.length, this.pos + padded);
    this.pos += padded;
  }

  /** xdr_string: length (without NUL), then the bytes as opaque. */
  string(b: Uint8Array): void {
    this.u32(b.length);
    this.opaque(b);
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/**
 * The value part of libnvpair's in-memory size for a pair (i_get_value_size),
 * before the 8-byte alignment NVP_SIZE_CALC applies.
 */
function valueSize(v: NvValue, strBytes: Uint8Array[] | null): number {
  switch (v.type) {
    case 'boolean':
      return 0;
    case 'boolean_value':
      return BOOLEAN_T_SIZE;
    case 'byte':
    case 'int8':
    case 'uint8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
      return SMALL_INT[v.type].native;
    case 'int64':
    case 'uint64':
    case 'hrtime':
      return 8;
    case 'string':
      return strBytes![0]!.length + 1;
    case 'byte_array':
      return v.value.length;
    case 'boolean_array':
      return v.value.length * BOOLEAN_T_SIZE;
    case 'int8_array':
    case 'uint8_array':
    case 'int16_array':
    case 'uint16_array':
    case 'int32_array':
    case 'uint32_array':
      return v.value.length * SMALL_INT[SMALL_INT_ARRAY_ELEM[v.type]].native;
    case 'int64_array':
    case 'uint64_array':
      return v.value.length * 8;
    case 'string_array':
      return strBytes!.reduce((acc, b) => acc + b.length + 1, v.value.length * POINTER_SLOT);
    case 'nvlist':
      return NVLIST_T_SIZE;
    case 'nvlist_array':
      return v.value.length * (POINTER_SLOT + NVLIST_T_SIZE);
  }
}

/** NVP_SIZE_CALC: header + name (with NUL) aligned to 8, then the value aligned to 8. */
function nvpSize(nameBytes: number, valueBytes: number): number {
  return align8(NVPAIR_T_SIZE + nameBytes + 1) + align8(valueBytes);
}

function elementCount(v: NvValue): number {
  switch (v.type) {
    case 'boolean':
      return 0;
    case 'byte_array':
    case 'boolean_array':
    case 'int8_array':
    case 'uint8_array':
    case 'int16_array':
    case 'uint16_array':
    case 'int32_array':
    case 'uint32_array':
    case 'int64_array':
    case 'uint64_array':
    case 'string_array':
    case 'nvlist_array':
      return v.value.length;
    default:
      return 1;
  }
}

function smallIntWord(v: number, rule: IntRule): number {
  // Zero-extended, not sign-extended: the Linux SPL's xdr_char/xdr_short
  // decoders reject any word above 0xff/0xffff.
  return rule.bits === 32 ? v >>> 0 : v & ((1 << rule.bits) - 1);
}

function writeList(w: XdrWriter, nv: NvList, depth: number, path: string): void {
  if (!Array.isArray(nv)) throw new TypeError(`nvlist: ${path || '<top>'} is not an nvlist`);
  w.u32(NV_VERSION);
  w.u32(NV_UNIQUE_NAME);
  const seen = new Set<string>();
  for (const entry of nv) {
    const [name, value] = entry;
    if (seen.has(name)) throw new Error(`nvlist: duplicate name ${JSON.stringify(join(path, name))}`);
    seen.add(name);
    writePair(w, name, value, depth, join(path, name));
  }
  w.u32(0);
  w.u32(0);
}

function join(path: string, name: string): string {
  return path ? `${path}.${name}` : name;
}

function writePair(w: XdrWriter, name: string, v: NvValue, depth: number, where: string): void {
  const nameBytes = cstringBytes(name, `name ${JSON.stringify(where)}`);
  if (nameBytes.length + 1 > MAX_NAME_SZ) throw new Error(`nvlist: name ${JSON.stringify(where)} is too long`);
  const code = DATA_TYPE[v.type];
  if (code === undefined) throw new TypeError(`nvlist: ${where}: unknown type ${String(v.type)}`);

  let strBytes: Uint8Array[] | null = null;
  if (v.type === 'string') strBytes = [cstringBytes(v.value, `string ${where}`)];
  else if (v.type === 'string_array') strBytes = v.value.map((s, i) => cstringBytes(s, `string ${where}[${i}]`));

  const nelem = elementCount(v);
  const start = w.pos;
  w.u32(0); // encoded size, patched below once the pair is written
  w.u32(nvpSize(nameBytes.length, valueSize(v, strBytes)));
  w.string(nameBytes);
  w.u32(code);
  w.u32(nelem);
  // libnvpair writes nothing at all for an empty value, not even the
  // xdr_array count, and reads nothing back; a count here would desync it.
  if (nelem > 0) writeValue(w, v, strBytes, depth, where);
  // The FreeBSD loader steps from pair to pair by this size, so it must be
  // the bytes actually written (libnvpair claims 4 more for empty numeric
  // arrays; see unpack).
  w.patchU32(start, w.pos - start);
}

function writeValue(w: XdrWriter, v: NvValue, strBytes: Uint8Array[] | null, depth: number, where: string): void {
  switch (v.type) {
    case 'boolean':
      return;
    case 'boolean_value':
      if (typeof v.value !== 'boolean') throw new TypeError(`nvlist: ${where}: boolean_value needs a boolean`);
      w.u32(v.value ? 1 : 0);
      return;
    case 'byte':
    case 'int8':
    case 'uint8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32': {
      const rule = SMALL_INT[v.type];
      checkSmallInt(v.value, rule, where);
      w.u32(smallIntWord(v.value, rule));
      return;
    }
    case 'int64':
    case 'uint64':
    case 'hrtime':
      checkWide(v.value, WIDE_SIGNED[v.type], where);
      w.u64(v.value);
      return;
    case 'string':
      w.string(strBytes![0]!);
      return;
    case 'byte_array':
      // xdr_opaque with the pair's element count: no length word of its own.
      w.opaque(v.value);
      return;
    case 'boolean_array':
      w.u32(v.value.length);
      v.value.forEach((b, i) => {
        if (typeof b !== 'boolean') throw new TypeError(`nvlist: ${where}[${i}]: not a boolean`);
        w.u32(b ? 1 : 0);
      });
      return;
    case 'int8_array':
    case 'uint8_array':
    case 'int16_array':
    case 'uint16_array':
    case 'int32_array':
    case 'uint32_array': {
      const rule = SMALL_INT[SMALL_INT_ARRAY_ELEM[v.type]];
      w.u32(v.value.length);
      v.value.forEach((x, i) => {
        checkSmallInt(x, rule, `${where}[${i}]`);
        w.u32(smallIntWord(x, rule));
      });
      return;
    }
    case 'int64_array':
    case 'uint64_array': {
      const signed = WIDE_SIGNED[v.type];
      w.u32(v.value.length);
      v.value.forEach((x, i) => {
        checkWide(x, signed, `${where}[${i}]`);
        w.u64(x);
      });
      return;
    }
    case 'string_array':
      // One XDR string per element, no array count.
      for (const b of strBytes!) w.string(b);
      return;
    case 'nvlist':
      if (depth + 1 > MAX_EMBED_DEPTH) throw new Error(`nvlist: ${where}: nesting deeper than ${MAX_EMBED_DEPTH}`);
      writeList(w, v.value, depth + 1, where);
      return;
    case 'nvlist_array':
      if (depth + 1 > MAX_EMBED_DEPTH) throw new Error(`nvlist: ${where}: nesting deeper than ${MAX_EMBED_DEPTH}`);
      v.value.forEach((l, i) => writeList(w, l, depth + 1, `${where}[${i}]`));
      return;
  }
}

export interface PackOptions {
  /**
   * Value of the header's endian byte (1 = little, 0 = big). XDR data is
   * big-endian regardless; libnvpair records the packing host's order and
   * ignores it when unpacking XDR. Default 'little'.
   */
  endian?: 'little' | 'big';
}

/** nvlist_pack(nv, NV_ENCODE_XDR), every list and embedded list flagged NV_UNIQUE_NAME. */
export function packNvlist(nv: NvList, opts: PackOptions = {}): Uint8Array {
  const w = new XdrWriter();
  w.u8(NV_ENCODE_XDR);
  w.u8(opts.endian === 'big' ? 0 : 1);
  w.u8(0);
  w.u8(0);
  writeList(w, nv, 0, '');
  return w.result();
}

// ---------------------------------------------------------------------------
// Decoder

class XdrReader {
  private readonly dv: DataView;
  pos: number;

  constructor(
    readonly buf: Uint8Array,
    start: number,
  ) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
  }

  need(n: number, what: string): void {
    if (n > this.buf.length - this.pos) {
      throw new Error(`nvlist: truncated: ${what} at offset ${this.pos} needs ${n} bytes, ${this.buf.length - this.pos} left`);
    }
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.dv.getUint32(this.pos, false);
    this.pos += 4;
    return v;
  }

  u64(what: string): bigint {
    this.need(8, what);
    const v = this.dv.getBigUint64(this.pos, false);
    this.pos += 8;
    return v;
  }

  opaque(n: number, what: string): Uint8Array {
    const padded = align4(n);
    if (padded < n) throw new Error(`nvlist: ${what}: length ${n} overflows`);
    this.need(padded, what);
    const b = this.buf.slice(this.pos, this.pos + n);
    for (let i = this.pos + n; i < this.pos + padded; i++) {
      // The Linux SPL's decoder refuses non-zero fill, so a writer that
      // leaves any is broken.
      if (this.buf[i] !== 0) throw new Error(`nvlist: ${what}: non-zero XDR padding at offset ${i}`);
    }
    this.pos += padded;
    return b;
  }

  /** An XDR string holding a C string: no NUL inside, and UTF-8 for us. */
  cstring(what: string): { bytes: number; text: string } {
    const len = this.u32(`${what} length`);
    const b = this.opaque(len, what);
    if (b.includes(0)) throw new Error(`nvlist: ${what} contains a NUL byte`);
    let text: string;
    try {
      text = utf8Strict.decode(b);
    } catch {
      throw new Error(`nvlist: ${what} is not valid UTF-8`);
    }
    return { bytes: b.length, text };
  }
}

function readSmallInt(word: number, rule: IntRule, where: string): number {
  if (rule.bits === 32) return rule.signed ? word | 0 : word;
  const mask = (1 << rule.bits) - 1;
  const signBit = 1 << (rule.bits - 1);
  // Userland libc XDR sign-extends chars and shorts; the kernel zero-extends.
  // Accept both, nothing else.
  const zeroExt = word <= mask;
  const signExt = (word & ~mask) >>> 0 === ~mask >>> 0 && (word & signBit) !== 0;
  if (!zeroExt && !signExt) {
    throw new Error(`nvlist: ${where}: word 0x${word.toString(16)} is not a ${rule.bits}-bit value`);
  }
  const low = word & mask;
  return rule.signed && low & signBit ? low - (mask + 1) : low;
}

function readList(r: XdrReader, depth: number, path: string): NvList {
  const label = path || '<top>';
  const version = r.u32(`${label}: nvl_version`) | 0;
  if (version !== NV_VERSION) throw new Error(`nvlist: ${label}: unsupported nvl_version ${version}`);
  const flag = r.u32(`${label}: nvl_nvflag`);
  const out: NvList = [];
  const names = new Map<string, NvType[]>();
  for (;;) {
    const start = r.pos;
    const encoded = r.u32(`${label}: pair encoded size`);
    const decoded = r.u32(`${label}: pair decoded size`);
    if (encoded === 0 && decoded === 0) break;
    if (encoded === 0 || decoded === 0) {
      throw new Error(`nvlist: ${label}: half-zero pair header (encoded ${encoded}, decoded ${decoded}) at offset ${start}`);
    }
    const { name, value, nameBytes, emptyXdrArray } = readPair(r, depth, path);
    const where = join(path, name);
    const used = r.pos - start;
    // libnvpair's size routine counts an xdr_array length word even when it
    // skips writing it for zero elements; accept its output as well as ours.
    if (encoded !== used && !(emptyXdrArray && encoded === used + 4)) {
      throw new Error(`nvlist: ${where}: encoded size ${encoded} but the pair takes ${used} bytes`);
    }
    const expect = nvpSize(nameBytes, decodedValueSize(value));
    if (decoded !== expect) {
      throw new Error(`nvlist: ${where}: decoded size ${decoded}, libnvpair requires ${expect}`);
    }
    const prior = names.get(name);
    if (prior) {
      if (flag & NV_UNIQUE_NAME) throw new Error(`nvlist: duplicate name ${JSON.stringify(where)} in a unique-name list`);
      if (flag & NV_UNIQUE_NAME_TYPE && prior.includes(value.type)) {
        throw new Error(`nvlist: duplicate name/type ${JSON.stringify(where)} in a unique-name-type list`);
      }
      prior.push(value.type);
    } else {
      names.set(name, [value.type]);
    }
    out.push([name, value]);
  }
  return out;
}

function decodedValueSize(v: NvValue): number {
  let strBytes: Uint8Array[] | null = null;
  if (v.type === 'string') strBytes = [utf8.encode(v.value)];
  else if (v.type === 'string_array') strBytes = v.value.map((s) => utf8.encode(s));
  return valueSize(v, strBytes);
}

interface PairRead {
  name: string;
  nameBytes: number;
  value: NvValue;
  emptyXdrArray: boolean;
}

function readPair(r: XdrReader, depth: number, path: string): PairRead {
  const nm = r.cstring(`${path || '<top>'}: pair name`);
  const where = join(path, nm.text);
  if (nm.bytes + 1 > MAX_NAME_SZ) throw new Error(`nvlist: ${where}: name too long`);
  const code = r.u32(`${where}: data type`);
  const type = TYPE_BY_CODE.get(code);
  if (type === undefined) throw new Error(`nvlist: ${where}: unknown data type ${code}`);
  const nelem = r.u32(`${where}: element count`);
  if (nelem > 0x7fffffff) throw new Error(`nvlist: ${where}: negative element count`);
  const isArray = type.endsWith('_array');
  if (type === 'boolean' ? nelem !== 0 : !isArray && nelem !== 1) {
    throw new Error(`nvlist: ${where}: ${type} with element count ${nelem}`);
  }
  const emptyXdrArray = nelem === 0 && (isSmallIntArray(type) || type === 'boolean_array' || type === 'int64_array' || type === 'uint64_array');
  const value = readValue(r, type, nelem, depth, where);
  return { name: nm.text, nameBytes: nm.bytes, value, emptyXdrArray };
}

function readArrayCount(r: XdrReader, nelem: number, width: number, where: string): void {
  const count = r.u32(`${where}: array count`);
  if (count !== nelem) throw new Error(`nvlist: ${where}: array count ${count} but element count ${nelem}`);
  r.need(count * width, `${where}: array elements`);
}

function readValue(r: XdrReader, type: NvType, nelem: number, depth: number, where: string): NvValue {
  if (isSmallInt(type)) return { type, value: readSmallInt(r.u32(where), SMALL_INT[type], where) };
  if (isSmallIntArray(type)) {
    const value: number[] = [];
    if (nelem > 0) {
      readArrayCount(r, nelem, 4, where);
      const rule = SMALL_INT[SMALL_INT_ARRAY_ELEM[type]];
      for (let i = 0; i < nelem; i++) value.push(readSmallInt(r.u32(where), rule, `${where}[${i}]`));
    }
    return { type, value };
  }
  switch (type) {
    case 'boolean':
      return { type };
    case 'boolean_value': {
      const b = r.u32(where);
      if (b > 1) throw new Error(`nvlist: ${where}: boolean_value ${b} is neither 0 nor 1`);
      return { type, value: b === 1 };
    }
    case 'int64':
    case 'uint64':
    case 'hrtime': {
      const raw = r.u64(where);
      return { type, value: WIDE_SIGNED[type] ? BigInt.asIntN(64, raw) : raw };
    }
    case 'string':
      return { type, value: r.cstring(where).text };
    case 'byte_array':
      return { type, value: r.opaque(nelem, where) };
    case 'boolean_array': {
      const value: boolean[] = [];
      if (nelem > 0) {
        readArrayCount(r, nelem, 4, where);
        for (let i = 0; i < nelem; i++) {
          const b = r.u32(where);
          if (b > 1) throw new Error(`nvlist: ${where}[${i}]: boolean ${b} is neither 0 nor 1`);
          value.push(b === 1);
        }
      }
      return { type, value };
    }
    case 'int64_array':
    case 'uint64_array': {
      const value: bigint[] = [];
      if (nelem > 0) {
        readArrayCount(r, nelem, 8, where);
        const signed = WIDE_SIGNED[type];
        for (let i = 0; i < nelem; i++) {
          const raw = r.u64(where);
          value.push(signed ? BigInt.asIntN(64, raw) : raw);
        }
      }
      return { type, value };
    }
    case 'string_array': {
      const value: string[] = [];
      for (let i = 0; i < nelem; i++) value.push(r.cstring(`${where}[${i}]`).text);
      return { type, value };
    }
    case 'nvlist':
      if (depth + 1 > MAX_EMBED_DEPTH) throw new Error(`nvlist: ${where}: nesting deeper than ${MAX_EMBED_DEPTH}`);
      return { type, value: readList(r, depth + 1, where) };
    case 'nvlist_array': {
      if (depth + 1 > MAX_EMBED_DEPTH) throw new Error(`nvlist: ${where}: nesting deeper than ${MAX_EMBED_DEPTH}`);
      // Each embedded list takes at least 16 bytes; bound nelem before looping.
      r.need(Math.min(nelem, 0x10000000) * 16, `${where}: ${nelem} embedded nvlists`);
      const value: NvList[] = [];
      for (let i = 0; i < nelem; i++) value.push(readList(r, depth + 1, `${where}[${i}]`));
      return { type, value };
    }
    default:
      throw new Error(`nvlist: ${where}: unsupported data type ${type}`);
  }
}

export interface UnpackOptions {
  /**
   * Accept non-zero bytes after the list's terminator. By default only zero
   * padding (label and MOS config blocks are zero-filled) is tolerated.
   */
  ignoreTrailing?: boolean;
}

/** nvlist_unpack for XDR streams, with libnvpair's size checks. */
export function unpackNvlist(buf: Uint8Array, opts: UnpackOptions = {}): NvList {
  return unpackNvlistPrefix(buf, opts).nv;
}

/** As unpackNvlist, also returning how many bytes the packed stream occupies. */
export function unpackNvlistPrefix(buf: Uint8Array, opts: UnpackOptions = {}): { nv: NvList; length: number } {
  if (buf.length < 4) throw new Error(`nvlist: ${buf.length} bytes is too short for the nvs header`);
  const encoding = buf[0]!;
  const endian = buf[1]!;
  if (encoding === NV_ENCODE_NATIVE) throw new Error('nvlist: native encoding is not supported (only XDR)');
  if (encoding !== NV_ENCODE_XDR) throw new Error(`nvlist: unknown nvs encoding ${encoding}`);
  if (endian > 1) throw new Error(`nvlist: invalid endian byte ${endian}`);
  const r = new XdrReader(buf, 4);
  const nv = readList(r, 0, '');
  const length = r.pos;
  if (!opts.ignoreTrailing) {
    for (let i = length; i < buf.length; i++) {
      if (buf[i] !== 0) throw new Error(`nvlist: non-zero byte after the nvlist at offset ${i}`);
    }
  }
  return { nv, length };
}

// ---------------------------------------------------------------------------
// Builders and getters

export function nvU64(v: bigint | number): NvValue {
  if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new RangeError(`nvU64: ${v} is not a safe integer`);
  const value = BigInt(v);
  checkWide(value, false, 'nvU64');
  return { type: 'uint64', value };
}

export function nvStr(s: string): NvValue {
  return { type: 'string', value: s };
}

export function nvList(l: NvList): NvValue {
  return { type: 'nvlist', value: l };
}

export function nvListArray(a: NvList[]): NvValue {
  return { type: 'nvlist_array', value: a };
}

/** DATA_TYPE_BOOLEAN: the name's presence is the value. */
export function nvFlag(): NvValue {
  return { type: 'boolean' };
}

export function nvBool(b: boolean): NvValue {
  return { type: 'boolean_value', value: b };
}

export function nvU64Array(a: Array<bigint | number>): NvValue {
  return { type: 'uint64_array', value: a.map((x) => (nvU64(x) as { value: bigint }).value) };
}

export function nvBytes(b: Uint8Array): NvValue {
  return { type: 'byte_array', value: b };
}

/** The value stored under key, or undefined. */
export function nvGet(nv: NvList, key: string): NvValue | undefined {
  for (const [k, v] of nv) if (k === key) return v;
  return undefined;
}

function nvGetTyped<T extends NvType>(nv: NvList, key: string, type: T): Extract<NvValue, { type: T }> {
  const v = nvGet(nv, key);
  if (v === undefined) throw new Error(`nvlist: no ${JSON.stringify(key)}`);
  if (v.type !== type) throw new Error(`nvlist: ${JSON.stringify(key)} is ${v.type}, expected ${type}`);
  return v as Extract<NvValue, { type: T }>;
}

export function nvGetU64(nv: NvList, key: string): bigint {
  return nvGetTyped(nv, key, 'uint64').value;
}

export function nvGetStr(nv: NvList, key: string): string {
  return nvGetTyped(nv, key, 'string').value;
}

export function nvGetList(nv: NvList, key: string): NvList {
  return nvGetTyped(nv, key, 'nvlist').value;
}

export function nvGetListArray(nv: NvList, key: string): NvList[] {
  return nvGetTyped(nv, key, 'nvlist_array').value;
}
