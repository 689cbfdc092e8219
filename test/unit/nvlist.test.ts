import { describe, expect, it } from 'vitest';
import {
  nvBool,
  nvBytes,
  nvFlag,
  nvGet,
  nvGetList,
  nvGetListArray,
  nvGetStr,
  nvGetU64,
  nvList,
  nvListArray,
  nvStr,
  nvU64,
  nvU64Array,
  packNvlist,
  unpackNvlist,
  unpackNvlistPrefix,
  type NvList,
} from '../../src/vdev/nvlist.js';

// Expected streams are spelled out word by word from the XDR rules, with every
// encoded/decoded size worked out by hand (not by the code under test):
//   encoded = 4 enc + 4 dec + (4 + pad4(name)) + 4 type + 4 nelem + value
//   decoded = align8(16 + strlen(name) + 1) + align8(value size in memory)
type Item = number | string | Uint8Array;

/** numbers: one big-endian 32-bit word; strings: ASCII zero-padded to 4 (no length word). */
function xdr(...items: Item[]): Uint8Array {
  const parts: number[] = [];
  for (const it of items) {
    if (typeof it === 'number') {
      parts.push((it >>> 24) & 0xff, (it >>> 16) & 0xff, (it >>> 8) & 0xff, it & 0xff);
    } else if (typeof it === 'string') {
      const b = [...it].map((c) => c.charCodeAt(0));
      while (b.length % 4) b.push(0);
      parts.push(...b);
    } else {
      parts.push(...it);
    }
  }
  return Uint8Array.from(parts);
}

const HEADER_LE = Uint8Array.from([1, 1, 0, 0]);

function cat(...bufs: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(bufs.reduce((a, b) => a + b.length, 0));
  let o = 0;
  for (const b of bufs) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

// { a: uint64 1, name: "zroot", sub: { x: uint64 2 }, kids: [ { id: 0 }, {} ] }
const VECTOR1_LIST: NvList = [
  ['a', nvU64(1)],
  ['name', nvStr('zroot')],
  ['sub', nvList([['x', nvU64(2)]])],
  ['kids', nvListArray([[['id', nvU64(0)]], []])],
];

const VECTOR1_BYTES = cat(
  HEADER_LE,
  xdr(0, 1), // nvl_version 0, nvl_nvflag NV_UNIQUE_NAME
  // "a": enc 4+4+8+4+4+8 = 32; dec align8(16+2)=24 + 8 = 32
  xdr(32, 32, 1, 'a', 8, 1, 0, 1),
  // "name": value string "zroot" = 4 + 8; enc 24+12 = 36; dec align8(16+5)=24 + align8(6)=8 = 32
  xdr(36, 32, 4, 'name', 9, 1, 5, 'zroot'),
  // "sub": embedded body 8 + pair 32 + 8 = 48; enc 24+48 = 72; dec align8(16+4)=24 + 24 (nvlist_t) = 48
  xdr(72, 48, 3, 'sub', 19, 1),
  xdr(0, 1),
  xdr(32, 32, 1, 'x', 8, 1, 0, 2),
  xdr(0, 0),
  // "kids": bodies 48 + 16 = 64; enc 24+64 = 88; dec align8(16+5)=24 + 2 x (8 + 24) = 88
  xdr(88, 88, 4, 'kids', 20, 2),
  xdr(0, 1),
  // "id": enc 32; dec align8(16+3)=24 + 8 = 32
  xdr(32, 32, 2, 'id', 8, 1, 0, 0),
  xdr(0, 0),
  xdr(0, 1),
  xdr(0, 0),
  xdr(0, 0), // end of the top-level list
);

// boolean (no value), boolean_value, byte_array, uint64_array, uint32, int32
const VECTOR2_LIST: NvList = [
  ['feat', nvFlag()],
  ['on', nvBool(true)],
  ['blob', nvBytes(Uint8Array.from([1, 2, 3, 4, 5]))],
  ['arr', nvU64Array([1n, 0xffffffffffffffffn])],
  ['n32', { type: 'uint32', value: 7 }],
  ['i32', { type: 'int32', value: -2 }],
];

const VECTOR2_BYTES = cat(
  HEADER_LE,
  xdr(0, 1),
  // DATA_TYPE_BOOLEAN, nelem 0, no value: enc 24; dec align8(16+5)=24 + 0
  xdr(24, 24, 4, 'feat', 1, 0),
  // boolean_value: one XDR word; enc 28; dec align8(16+3)=24 + align8(4 = sizeof boolean_t)=8 = 32
  xdr(28, 32, 2, 'on', 21, 1, 1),
  // byte_array: xdr_opaque, no length word, padded; enc 24+8 = 32; dec 24 + align8(5)=8 = 32
  xdr(32, 32, 4, 'blob', 10, 5, Uint8Array.from([1, 2, 3, 4, 5, 0, 0, 0])),
  // uint64_array: count word + 2 x 8; enc 24+20 = 44; dec align8(16+4)=24 + 16 = 40
  xdr(44, 40, 3, 'arr', 16, 2, 2, 0, 1, 0xffffffff, 0xffffffff),
  // uint32 / int32: one word; enc 28; dec 24 + align8(4) = 32
  xdr(28, 32, 3, 'n32', 6, 1, 7),
  xdr(28, 32, 3, 'i32', 5, 1, 0xfffffffe),
  xdr(0, 0),
);

describe('packNvlist byte-exact vectors', () => {
  it('uint64, string, nested nvlist and nvlist array', () => {
    expect(VECTOR1_BYTES.length).toBe(248);
    expect(hex(packNvlist(VECTOR1_LIST))).toBe(hex(VECTOR1_BYTES));
  });

  it('boolean, boolean_value, byte_array, uint64_array, uint32, int32', () => {
    expect(hex(packNvlist(VECTOR2_LIST))).toBe(hex(VECTOR2_BYTES));
  });

  it('empty top-level list is header + version/flag + terminator', () => {
    expect(hex(packNvlist([]))).toBe('01010000' + '00000000' + '00000001' + '0000000000000000');
  });

  it('big-endian header byte only changes byte 1', () => {
    const le = packNvlist(VECTOR1_LIST);
    const be = packNvlist(VECTOR1_LIST, { endian: 'big' });
    expect(be[1]).toBe(0);
    expect(hex(be.subarray(2))).toBe(hex(le.subarray(2)));
  });

  it('decoded size counts UTF-8 bytes, not UTF-16 units', () => {
    // "é" is 2 bytes: enc 24 + 4 + 4 = 32; dec align8(16+2)=24 + align8(3)=8 = 32
    // "s" name is 1 byte: same header sizes as "a" above.
    const got = packNvlist([['s', nvStr('\u00e9')]]);
    const want = cat(HEADER_LE, xdr(0, 1, 32, 32, 1, 's', 9, 1, 2, Uint8Array.from([0xc3, 0xa9, 0, 0]), 0, 0));
    expect(hex(got)).toBe(hex(want));
  });

  it('long names and values cross the 8-byte decoded-size boundaries', () => {
    // name "abcdefgh" (8): align8(16+9)=32; value "0123456" (7): align8(8)=8 -> dec 40
    // enc = 4+4 + (4+8) + 4+4 + (4+8) = 40
    const got = packNvlist([['abcdefgh', nvStr('0123456')]]);
    const want = cat(HEADER_LE, xdr(0, 1, 40, 40, 8, 'abcdefgh', 9, 1, 7, '0123456', 0, 0));
    expect(hex(got)).toBe(hex(want));
    // name "abcdefg" (7): align8(16+8)=24; value "01234567" (8): align8(9)=16 -> dec 40
    // enc = 4+4 + (4+8) + 4+4 + (4+8) = 40
    const got2 = packNvlist([['abcdefg', nvStr('01234567')]]);
    const want2 = cat(HEADER_LE, xdr(0, 1, 40, 40, 7, 'abcdefg', 9, 1, 8, '01234567', 0, 0));
    expect(hex(got2)).toBe(hex(want2));
  });

  it('8- and 16-bit integers are zero-extended words', () => {
    // The Linux SPL decoder rejects words above 0xff / 0xffff.
    const got = packNvlist([
      ['b', { type: 'int8', value: -1 }],
      ['h', { type: 'int16', value: -2 }],
    ]);
    // int8: dec align8(18)=24 + align8(1)=8; int16 likewise; enc 28 each
    const want = cat(HEADER_LE, xdr(0, 1, 28, 32, 1, 'b', 22, 1, 0xff, 28, 32, 1, 'h', 3, 1, 0xfffe, 0, 0));
    expect(hex(got)).toBe(hex(want));
  });

  it('boolean_array, string_array, int16_array, int64', () => {
    const got = packNvlist([
      ['ba', { type: 'boolean_array', value: [true, false, true] }],
      ['sa', { type: 'string_array', value: ['ab', 'cde'] }],
      ['ha', { type: 'int16_array', value: [-1, 2, 3] }],
      ['i64', { type: 'int64', value: -1n }],
    ]);
    const want = cat(
      HEADER_LE,
      xdr(0, 1),
      // count + 3 words = 16; enc 24+16 = 40; dec align8(16+3)=24 + align8(3 x 4)=16 = 40
      xdr(40, 40, 2, 'ba', 24, 3, 3, 1, 0, 1),
      // one XDR string each, no count: 8 + 8; enc 40; dec 24 + align8(2 x 8 pointers + 3 + 4)=24 = 48
      xdr(40, 48, 2, 'sa', 17, 2, 2, 'ab', 3, 'cde'),
      // count + 3 zero-extended words; enc 40; dec 24 + align8(3 x 2)=8 = 32
      xdr(40, 32, 2, 'ha', 11, 3, 3, 0xffff, 2, 3),
      // enc 32; dec 24 + 8 = 32
      xdr(32, 32, 3, 'i64', 7, 1, 0xffffffff, 0xffffffff),
      xdr(0, 0),
    );
    expect(hex(got)).toBe(hex(want));
    expect(unpackNvlist(want)).toEqual([
      ['ba', { type: 'boolean_array', value: [true, false, true] }],
      ['sa', { type: 'string_array', value: ['ab', 'cde'] }],
      ['ha', { type: 'int16_array', value: [-1, 2, 3] }],
      ['i64', { type: 'int64', value: -1n }],
    ]);
  });

  it('empty numeric arrays carry no count word', () => {
    // libnvpair skips the value entirely when nelem is 0; our encoded size is
    // the bytes written (24), the decoded size align8(16+4)=24 + 0.
    const got = packNvlist([['arr', nvU64Array([])]]);
    const want = cat(HEADER_LE, xdr(0, 1, 24, 24, 3, 'arr', 16, 0, 0, 0));
    expect(hex(got)).toBe(hex(want));
  });
});

// Real libnvpair output: the XDR-packed DRR_BEGIN payload (64 bytes at offset
// 312) of OpenZFS's test streams
// tests/zfs-tests/tests/functional/zstream/{little,big}-endian-all-drr-types-base-XDR.zsend.bz2
// One pair: redact_snaps = uint64_array[1]; enc 44, dec align8(16+13)=32 + 8 = 40.
const OPENZFS_LE =
  '0101000000000000000000010000002c000000280000000c7265646163745f736e617073000000100000000100000001afd9859f28e384b20000000000000000';
const OPENZFS_BE =
  '0100000000000000000000010000002c000000280000000c7265646163745f736e61707300000010000000010000000115dedc62a4f8b9b00000000000000000';

describe('OpenZFS-produced streams', () => {
  it('decode and re-encode byte for byte (little- and big-endian headers)', () => {
    const le = unpackNvlist(Buffer.from(OPENZFS_LE, 'hex'));
    expect(le).toEqual([['redact_snaps', { type: 'uint64_array', value: [0xafd9859f28e384b2n] }]]);
    expect(hex(packNvlist(le))).toBe(OPENZFS_LE);
    const be = unpackNvlist(Buffer.from(OPENZFS_BE, 'hex'));
    expect(be).toEqual([['redact_snaps', { type: 'uint64_array', value: [0x15dedc62a4f8b9b0n] }]]);
    expect(hex(packNvlist(be, { endian: 'big' }))).toBe(OPENZFS_BE);
  });
});

describe('unpackNvlist', () => {
  it('decodes the hand-built vectors', () => {
    expect(unpackNvlist(VECTOR1_BYTES)).toEqual(VECTOR1_LIST);
    expect(unpackNvlist(VECTOR2_BYTES)).toEqual(VECTOR2_LIST);
  });

  it('tolerates trailing zero padding and reports the stream length', () => {
    const padded = new Uint8Array(VECTOR1_BYTES.length + 1000);
    padded.set(VECTOR1_BYTES);
    expect(unpackNvlist(padded)).toEqual(VECTOR1_LIST);
    expect(unpackNvlistPrefix(padded).length).toBe(248);
  });

  it('rejects non-zero trailing bytes unless asked to ignore them', () => {
    const padded = new Uint8Array(VECTOR1_BYTES.length + 8);
    padded.set(VECTOR1_BYTES);
    padded[padded.length - 3] = 7;
    expect(() => unpackNvlist(padded)).toThrow(/after the nvlist/);
    expect(unpackNvlist(padded, { ignoreTrailing: true })).toEqual(VECTOR1_LIST);
  });

  it('accepts a sub-array view (non-zero byteOffset)', () => {
    const big = new Uint8Array(VECTOR2_BYTES.length + 16);
    big.set(VECTOR2_BYTES, 16);
    expect(unpackNvlist(big.subarray(16))).toEqual(VECTOR2_LIST);
  });

  it('accepts libnvpair’s encoded size for an empty numeric array (4 too many)', () => {
    const b = cat(HEADER_LE, xdr(0, 1, 28, 24, 3, 'arr', 16, 0, 0, 0));
    expect(unpackNvlist(b)).toEqual([['arr', { type: 'uint64_array', value: [] }]]);
  });

  it('accepts sign-extended 8/16-bit words from userland XDR', () => {
    const b = cat(HEADER_LE, xdr(0, 1, 28, 32, 1, 'b', 22, 1, 0xffffffff, 28, 32, 1, 'u', 23, 1, 0xffffff80, 0, 0));
    expect(unpackNvlist(b)).toEqual([
      ['b', { type: 'int8', value: -1 }],
      ['u', { type: 'uint8', value: 0x80 }],
    ]);
  });

  const bad: Array<[string, Uint8Array, RegExp]> = [
    ['native encoding', cat(Uint8Array.from([0, 1, 0, 0]), xdr(0, 1, 0, 0)), /native encoding/],
    ['unknown encoding', cat(Uint8Array.from([2, 1, 0, 0]), xdr(0, 1, 0, 0)), /unknown nvs encoding/],
    ['short header', Uint8Array.from([1, 1]), /too short/],
    ['truncated body', VECTOR1_BYTES.subarray(0, 100), /truncated/],
    ['missing terminator', VECTOR1_BYTES.subarray(0, 244), /truncated/],
    ['bad version', cat(HEADER_LE, xdr(1, 1, 0, 0)), /nvl_version 1/],
    ['wrong decoded size', cat(HEADER_LE, xdr(0, 1, 32, 40, 1, 'a', 8, 1, 0, 1, 0, 0)), /decoded size 40, libnvpair requires 32/],
    ['wrong encoded size', cat(HEADER_LE, xdr(0, 1, 36, 32, 1, 'a', 8, 1, 0, 1, 0, 0)), /encoded size 36/],
    ['unknown type', cat(HEADER_LE, xdr(0, 1, 32, 32, 1, 'a', 27, 1, 0, 1, 0, 0)), /unknown data type 27/],
    ['scalar with 2 elements', cat(HEADER_LE, xdr(0, 1, 32, 32, 1, 'a', 8, 2, 0, 1, 0, 0)), /element count 2/],
    ['boolean with a value', cat(HEADER_LE, xdr(0, 1, 28, 24, 1, 'f', 1, 1, 0, 0, 0)), /element count 1/],
    ['non-zero padding', cat(HEADER_LE, xdr(0, 1, 32, 32, 1, Uint8Array.from([0x61, 0, 1, 0]), 8, 1, 0, 1, 0, 0)), /padding/],
    ['NUL inside a string', cat(HEADER_LE, xdr(0, 1, 32, 32, 1, 's', 9, 1, 2, Uint8Array.from([0x41, 0, 0, 0]), 0, 0)), /NUL/],
    ['boolean_value 2', cat(HEADER_LE, xdr(0, 1, 28, 32, 2, 'on', 21, 1, 2, 0, 0)), /neither 0 nor 1/],
    ['byte word 0x100', cat(HEADER_LE, xdr(0, 1, 28, 32, 1, 'b', 2, 1, 0x100, 0, 0)), /not a 8-bit value/],
    ['array count mismatch', cat(HEADER_LE, xdr(0, 1, 44, 40, 3, 'arr', 16, 2, 3, 0, 1, 0, 2, 0, 0)), /array count 3/],
    ['half-zero pair header', cat(HEADER_LE, xdr(0, 1, 0, 32, 0, 0)), /half-zero/],
    [
      'duplicate name in a unique-name list',
      cat(HEADER_LE, xdr(0, 1, 32, 32, 1, 'a', 8, 1, 0, 1, 32, 32, 1, 'a', 8, 1, 0, 2, 0, 0)),
      /duplicate name "a"/,
    ],
    [
      'error path names the nested key',
      cat(HEADER_LE, xdr(0, 1, 72, 48, 3, 'sub', 19, 1, 0, 1, 32, 40, 1, 'x', 8, 1, 0, 2, 0, 0, 0, 0)),
      /sub\.x: decoded size 40/,
    ],
  ];
  for (const [what, buf, re] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => unpackNvlist(buf)).toThrow(re);
    });
  }

  it('accepts duplicate names when the list is not flagged unique', () => {
    const b = cat(HEADER_LE, xdr(0, 0, 32, 32, 1, 'a', 8, 1, 0, 1, 32, 32, 1, 'a', 8, 1, 0, 2, 0, 0));
    expect(unpackNvlist(b)).toEqual([
      ['a', nvU64(1)],
      ['a', nvU64(2)],
    ]);
  });
});

describe('round trips', () => {
  it('every supported type, in order, including empties and extremes', () => {
    const nv: NvList = [
      ['flag', nvFlag()],
      ['t', nvBool(true)],
      ['f', nvBool(false)],
      ['byte', { type: 'byte', value: 255 }],
      ['i8', { type: 'int8', value: -128 }],
      ['u8', { type: 'uint8', value: 200 }],
      ['i16', { type: 'int16', value: -32768 }],
      ['u16', { type: 'uint16', value: 65535 }],
      ['i32', { type: 'int32', value: -2147483648 }],
      ['u32', { type: 'uint32', value: 4294967295 }],
      ['i64', { type: 'int64', value: -(2n ** 63n) }],
      ['u64', { type: 'uint64', value: 2n ** 64n - 1n }],
      ['hr', { type: 'hrtime', value: 123456789012345n }],
      ['str', nvStr('')],
      ['str2', nvStr('/dev/null')],
      ['bytes', nvBytes(new Uint8Array(0))],
      ['bytes3', nvBytes(Uint8Array.from([0xde, 0xad, 0xbe]))],
      ['bools', { type: 'boolean_array', value: [true, false, true] }],
      ['i8a', { type: 'int8_array', value: [-1, 0, 127] }],
      ['u8a', { type: 'uint8_array', value: [0, 255] }],
      ['i16a', { type: 'int16_array', value: [-300, 300] }],
      ['u16a', { type: 'uint16_array', value: [] }],
      ['i32a', { type: 'int32_array', value: [-5, 5] }],
      ['u32a', { type: 'uint32_array', value: [0xffffffff] }],
      ['i64a', { type: 'int64_array', value: [-1n, 1n] }],
      ['u64a', nvU64Array([0, 1, 2n ** 64n - 1n])],
      ['u64e', nvU64Array([])],
      ['stra', { type: 'string_array', value: ['', 'a', 'bcdef'] }],
      ['strae', { type: 'string_array', value: [] }],
      ['nvl', nvList([])],
      ['nvla', nvListArray([])],
      ['deep', nvList([['mid', nvList([['leaf', nvListArray([[['k', nvStr('v')]], []])]])]])],
    ];
    expect(unpackNvlist(packNvlist(nv))).toEqual(nv);
  });

  it('a label-shaped config survives and its getters work', () => {
    const disk: NvList = [
      ['type', nvStr('disk')],
      ['id', nvU64(0)],
      ['guid', nvU64(0x1234567890abcdefn)],
      ['path', nvStr('/dev/null')],
      ['whole_disk', nvU64(1)],
      ['metaslab_array', nvU64(128)],
      ['metaslab_shift', nvU64(29)],
      ['ashift', nvU64(12)],
      ['asize', nvU64(10737418240n - 4718592n)],
      ['create_txg', nvU64(4)],
    ];
    const config: NvList = [
      ['txg', nvU64(4)],
      ['version', nvU64(5000)],
      ['state', nvU64(1)],
      ['name', nvStr('zroot')],
      ['pool_guid', nvU64(0xfedcba0987654321n)],
      ['features_for_read', nvList([['com.delphix:hole_birth', nvFlag()]])],
      ['vdev_tree', nvList([...disk, ['children', nvListArray([disk, disk])]])],
    ];
    const back = unpackNvlist(packNvlist(config));
    expect(back).toEqual(config);
    expect(back.map(([k]) => k)).toEqual(config.map(([k]) => k));
    expect(nvGetU64(back, 'version')).toBe(5000n);
    expect(nvGetStr(back, 'name')).toBe('zroot');
    expect(nvGetStr(nvGetList(back, 'vdev_tree'), 'path')).toBe('/dev/null');
    expect(nvGetListArray(nvGetList(back, 'vdev_tree'), 'children')).toHaveLength(2);
    expect(nvGet(back, 'nope')).toBeUndefined();
    expect(() => nvGetU64(back, 'name')).toThrow(/is string, expected uint64/);
    expect(() => nvGetU64(back, 'nope')).toThrow(/no "nope"/);
  });

  it('an xattr-style nvlist of byte arrays', () => {
    const nv: NvList = [
      ['user.mime', nvBytes(new TextEncoder().encode('text/plain'))],
      ['security.selinux', nvBytes(Uint8Array.from([0, 1, 2, 0xff]))],
    ];
    expect(unpackNvlist(packNvlist(nv))).toEqual(nv);
  });
});

describe('pack validation', () => {
  it('rejects duplicate names', () => {
    expect(() => packNvlist([['a', nvU64(1)], ['a', nvU64(2)]])).toThrow(/duplicate name "a"/);
    expect(() => packNvlist([['l', nvList([['x', nvU64(1)], ['x', nvStr('y')]])]])).toThrow(/duplicate name "l.x"/);
  });

  it('rejects out-of-range integers', () => {
    expect(() => nvU64(-1)).toThrow(RangeError);
    expect(() => nvU64(2 ** 53)).toThrow(RangeError);
    expect(() => nvU64(2n ** 64n)).toThrow(RangeError);
    expect(() => packNvlist([['x', { type: 'uint64', value: -1n }]])).toThrow(RangeError);
    expect(() => packNvlist([['x', { type: 'int8', value: 128 }]])).toThrow(RangeError);
    expect(() => packNvlist([['x', { type: 'uint32', value: 1.5 }]])).toThrow(RangeError);
    expect(() => packNvlist([['x', { type: 'int64_array', value: [2n ** 63n] }]])).toThrow(RangeError);
  });

  it('rejects NUL in names and strings', () => {
    expect(() => packNvlist([['a\0b', nvU64(1)]])).toThrow(/NUL/);
    expect(() => packNvlist([['a', nvStr('x\0')]])).toThrow(/NUL/);
  });

  it('rejects nesting deeper than the kernel recursion limit (20)', () => {
    const nest = (n: number): NvList => (n === 0 ? [] : [['n', nvList(nest(n - 1))]]);
    expect(() => packNvlist(nest(20))).not.toThrow();
    expect(() => packNvlist(nest(21))).toThrow(/nesting deeper/);
  });
});
