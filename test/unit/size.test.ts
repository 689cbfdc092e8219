import { describe, expect, test } from 'vitest';
import { formatSize, parseSize } from '../../src/util/size.js';
import { UserError } from '../../src/util/errors.js';

describe('parseSize', () => {
  test.each([
    ['0', 0],
    ['1', 1],
    ['123456789', 123456789],
    ['1b', 512],
    ['3b', 1536],
    ['1k', 1024],
    ['1K', 1024],
    ['64m', 64 * 2 ** 20],
    ['64M', 64 * 2 ** 20],
    ['4g', 4 * 2 ** 30],
    ['4G', 4 * 2 ** 30],
    ['2t', 2 * 2 ** 40],
    ['10w', 40],
    ['2x4k', 8192],
    ['2X4k', 8192],
    ['2*4k', 8192],
    ['1kx1k', 2 ** 20],
    ['2x3x4', 24],
    ['512x2048b', 512 * 2048 * 512],
    ['  16m', 16 * 2 ** 20],
    ['007', 7],
    // Not hex: 'x' is the product operator, as in makefs; callers reject 0.
    ['0x10k', 0],
  ])('%s = %d', (text, want) => {
    expect(parseSize(text, '-s')).toBe(want);
  });

  test.each(['', 'abc', '4q', '4gb', '4 g', '4g ', '-1', '+1', '1.5g', 'x4', '4x', '2xx4', 'k', '4kk'])(
    'rejects %j',
    (text) => {
      expect(() => parseSize(text, '-s')).toThrow(UserError);
      expect(() => parseSize(text, '-s')).toThrow(`-s: invalid size '${text}'`);
    },
  );

  test('names the option in errors', () => {
    expect(() => parseSize('big', '-o mssize')).toThrow(/^-o mssize: invalid size 'big'/);
  });

  test('rejects sizes JS numbers cannot hold exactly', () => {
    expect(parseSize('8191t', '-s')).toBe(8191 * 2 ** 40);
    expect(() => parseSize('8192t', '-s')).toThrow("-s: size '8192t' is too large");
    expect(() => parseSize('99999999999999999999', '-s')).toThrow(/too large/);
    expect(() => parseSize('1tx1tx1t', '-s')).toThrow(/too large/);
  });
});

describe('formatSize', () => {
  test.each([
    [0, '0'],
    [1000, '1000'],
    [1024, '1k'],
    [1536, '1536'],
    [64 * 2 ** 20, '64m'],
    [3 * 2 ** 30, '3g'],
    [2 ** 40, '1t'],
  ])('%d -> %s', (n, want) => {
    expect(formatSize(n)).toBe(want);
  });
});
