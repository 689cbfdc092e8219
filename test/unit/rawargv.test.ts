import { describe, expect, test } from 'vitest';
import { checkArgvBytes } from '../../src/cli/rawargv.js';

/** A /proc/self/cmdline image of these arguments (each NUL-terminated). */
function cmdline(...args: Array<string | Buffer>): Buffer {
  return Buffer.concat(args.flatMap((a) => [Buffer.isBuffer(a) ? a : Buffer.from(a), Buffer.alloc(1)]));
}

const badName = Buffer.from([0x61, 0xff, 0x2e, 0x69, 0x6d, 0x67]); // a\xff.img

describe('checkArgvBytes', () => {
  test('an argument whose bytes are not UTF-8 is refused by its bytes', () => {
    const argv = ['-o', 'poolname=t', badName.toString('utf8'), 'stage'];
    const line = cmdline('node', '--stack-size=2000', '/x/bin/tsmakefs', '-o', 'poolname=t', badName, 'stage');
    expect(() => checkArgvBytes(argv, line)).toThrow(/^a\\xff\.img: argument is not valid UTF-8/);
  });

  test('UTF-8 arguments, non-ASCII ones too, pass', () => {
    const argv = ['-o', 'poolname=t', 'é.img', 'stage'];
    expect(() => checkArgvBytes(argv, cmdline('node', '/x/bin/tsmakefs', ...argv))).not.toThrow();
  });

  test('a command line that does not end in argv (a rewritten title, a caller\'s own argv) says nothing', () => {
    const argv = ['x', badName.toString('utf8')];
    expect(() => checkArgvBytes(argv, cmdline('node', 'other', badName))).not.toThrow();
    expect(() => checkArgvBytes(argv, cmdline(badName))).not.toThrow();
    expect(() => checkArgvBytes(argv, undefined)).not.toThrow();
  });

  test('the last argument need not be NUL-terminated', () => {
    const argv = [badName.toString('utf8')];
    expect(() => checkArgvBytes(argv, Buffer.concat([cmdline('node', 's'), badName]))).toThrow(/not valid UTF-8/);
  });
});

test('the refused argument is named as other paths are in messages: \\xNN for every byte outside printable ASCII', () => {
  const mixed = Buffer.from([0x61, 0xff, 0xc3, 0xa9, 0x01, 0x2e, 0x69, 0x6d, 0x67]);
  expect(() => checkArgvBytes([mixed.toString('utf8')], cmdline('node', 's', mixed))).toThrow(/^a\\xff\\xc3\\xa9\\x01\.img: argument is not valid UTF-8/);
});
