// mtree(5) parsing and the manifest (METALOG) reader: tree models only, no image.

import { chmodSync, linkSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readManifest, type ManifestOptions } from '../../src/input/manifest.js';
import { inferType, mtreeEntries, ownerOf, parseMtree, showEntryPath, timeOf, unvis, type ChunkSource } from '../../src/input/mtree.js';
import { parseIdFile, userDbFromDir, type UserDb } from '../../src/input/passwd.js';
import type { Inode } from '../../src/input/tree.js';
import { UserError } from '../../src/util/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'tsmakefs-mtree-'));
const cwd = process.cwd();
afterAll(() => {
  process.chdir(cwd);
  rmSync(tmp, { recursive: true, force: true });
});

const NO_USERS: UserDb = { uid: () => undefined, gid: () => undefined, userSource: 'none', groupSource: 'none' };
const USERS: UserDb = {
  uid: (n) => ({ root: 0, www: 80 } as Record<string, number>)[n],
  gid: (n) => ({ wheel: 0, www: 80 } as Record<string, number>)[n],
  userSource: 'test', groupSource: 'test',
};

function parse(text: string, warnings: string[] = []) {
  return parseMtree(Buffer.from(text, 'latin1'), 'M', (w) => warnings.push(w));
}

function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
}

/** Follow a path ("a/b") from the root. */
function at(root: Inode, path: string): Inode {
  let ino = root;
  for (const c of path.split('/')) {
    const e = ino.entries!.find((d) => Buffer.from(d.name).toString('latin1') === c);
    if (e === undefined) throw new Error(`no ${c} in ${path}`);
    ino = e.inode;
  }
  return ino;
}

function names(dir: Inode): string[] {
  return dir.entries!.map((e) => Buffer.from(e.name).toString('latin1')).sort();
}

describe('vis(3) escapes', () => {
  test('octal, C-style, \\s, meta and control', () => {
    expect(unvis('a\\040b')).toEqual(Buffer.from('a b'));
    expect(unvis('a\\sb\\tc\\nd')).toEqual(Buffer.from('a b\tc\nd'));
    expect(unvis('back\\\\slash')).toEqual(Buffer.from('back\\slash'));
    expect(unvis('\\303\\251')).toEqual(Buffer.from('é'));
    expect(unvis('\\M-i')).toEqual(Buffer.from([0xe9]));
    expect(unvis('\\^A\\^?')).toEqual(Buffer.from([1, 0x7f]));
    expect(unvis('\\#\\ x')).toEqual(Buffer.from('# x'));
    expect(unvis('dangling\\')).toBeUndefined();
  });
});

describe('parseMtree', () => {
  test('full paths, comments, continuation lines, /set and /unset', () => {
    const w: string[] = [];
    const es = parse([
      '#mtree 2.0',
      '# a comment line',
      '/set type=file uid=0 gid=0 mode=0644',
      '. type=dir mode=0755',
      './bin/cat mode=0555 \\',
      '    size=12 # trailing comment',
      '/unset mode',
      './etc/motd',
      './odd\\040name\\ttab sha256=abc nlink=1 frobnicate=3',
      '',
    ].join('\n'), w);
    expect(es.map((e) => showEntryPath(e.path))).toEqual(['.', './bin/cat', './etc/motd', './odd name\ttab']);
    expect(es[1]!.where).toBe('M:5: ./bin/cat');
    expect(es[1]!.kw.get('mode')).toBe('0555');
    expect(es[1]!.kw.get('size')).toBe('12');
    expect(es[2]!.kw.has('mode')).toBe(false);
    expect(es[2]!.kw.get('type')).toBe('file');
    expect(w).toEqual(["M:9: unsupported keyword 'frobnicate' ignored"]);
  });

  test('the hierarchical form of mtree -c: directories entered, ".." leaves', () => {
    const es = parse([
      '/set type=file uid=0 gid=0 mode=0644 nlink=1',
      '.               type=dir mode=0755 nlink=3',
      '    a           size=1',
      'sub             type=dir mode=0700',
      '    b           size=2',
      'deeper          type=dir',
      '    c',
      '..',
      '..',
      '    d',
      '..',
    ].join('\n'));
    expect(es.map((e) => showEntryPath(e.path))).toEqual(['.', './a', './sub', './sub/b', './sub/deeper', './sub/deeper/c', './d']);
  });

  test('owner keywords: the later of uid and uname wins, /set only as a default', () => {
    const [a, b, c] = parse('/set uname=www gname=www\n./a uid=5\n./b\n./c uid=5 uname=root gname=wheel gid=7\n');
    expect(ownerOf(a!, USERS)).toEqual({ uid: 5, gid: 80 });
    expect(ownerOf(b!, USERS)).toEqual({ uid: 80, gid: 80 });
    expect(ownerOf(c!, USERS)).toEqual({ uid: 0, gid: 7 });
    expect(failure(() => ownerOf(parse('./x uname=nobody\n')[0]!, USERS))).toBe("M:1: ./x: unknown user 'nobody' (not in test)");
  });

  test('types and times', () => {
    const [a, b, c, d] = parse('./a contents=x\n./b link=a\n./c\n./d type=char time=1700000000.250000000\n');
    expect([a, b, c, d].map((e) => inferType(e!))).toEqual(['file', 'symlink', 'dir', 'chardev']);
    expect(timeOf(d!)).toEqual({ sec: 1700000000, nsec: 250000000 });
    // before 1970: mtree's seconds and nanoseconds fields as they are (-6 s, then +0.75 s)
    const early = (t: string) => timeOf(parse(`./x time=${t}\n`)[0]!);
    expect(early('-6.750000000')).toEqual({ sec: -6, nsec: 750000000 });
    expect(early('-5')).toEqual({ sec: -5, nsec: 0 });
    expect(Object.is(early('-0.5')!.sec, 0)).toBe(true);
    expect(failure(() => early('--5'))).toMatch(/invalid time '--5'/);
    expect(failure(() => inferType(parse('./x type=door\n')[0]!))).toBe(
      "M:1: ./x: unknown type 'door' (block, char, dir, fifo, file, link or socket)",
    );
    expect(failure(() => timeOf(parse('./x time=yesterday\n')[0]!))).toMatch(/^M:1: \.\/x: invalid time 'yesterday'/);
  });

  test('text that comes in pieces parses as it does whole, wherever the pieces break', () => {
    const text = Buffer.from([
      '#mtree 2.0\r',
      '/set type=file uid=0 gid=0 mode=0644',
      '. type=dir mode=0755',
      './a\\040long\\040name\\303\\251 size=12 \\',
      '    time=5.25 # comment',
      './d type=dir',
      './d/\xe9t\xe9 link=../a type=link\r',
      './d/last contents=x',
    ].join('\n'), 'latin1');
    const shape = (es: Iterable<{ line: string; path: string[]; kw: Map<string, string> }>) =>
      [...es].map((e) => ({ line: e.line, path: e.path, kw: [...e.kw] }));
    const whole = shape(parseMtree(text, 'M', () => {}));
    expect(whole.map((e) => e.line)).toEqual(['M:3', 'M:4', 'M:6', 'M:7', 'M:8']);
    expect(whole[1]!.path).toEqual(['a long name\xc3\xa9']);
    expect(whole[3]!.path).toEqual(['d', '\xe9t\xe9']);
    for (const size of [1, 2, 3, 5, 7, 64]) {
      let at = 0;
      const next: ChunkSource = () => {
        if (at >= text.length) return null;
        const piece = text.subarray(at, at + size);
        at += size;
        return piece;
      };
      expect(shape(mtreeEntries(next, 'M', () => {})), `pieces of ${size}`).toEqual(whole);
    }
  });

  test('bad lines are one-line errors with the line number', () => {
    expect(failure(() => parse('./a mode\n'))).toBe("M:1: keyword 'mode' needs a value");
    expect(failure(() => parse('\n/frob x=1\n'))).toBe("M:2: unknown command '/frob' (only /set and /unset)");
    expect(failure(() => parse('./a/../b type=file\n'))).toBe("M:1: path './a/../b' may not contain '..'");
  });
});

describe('passwd files', () => {
  test('name:x:id lines, first one wins, comments and junk skipped', () => {
    const ids = parseIdFile('# c\nroot:*:0:0::0:0:Charlie &:/root:/bin/sh\nbad\nwheel:*:0:root\nroot:*:9:9\nx:*:notanumber\n');
    expect([...ids]).toEqual([['root', 0], ['wheel', 0]]);
  });

  test('-N reads master.passwd, else passwd, and group', () => {
    const d1 = join(tmp, 'etc1');
    mkdirSync(d1);
    writeFileSync(join(d1, 'master.passwd'), 'root:*:0:0::0:0:Charlie &:/root:/bin/csh\nbuild:*:1000:1000::0:0::/home:/bin/sh\n');
    writeFileSync(join(d1, 'passwd'), 'root:*:77:0:x:/:/bin/sh\n');
    writeFileSync(join(d1, 'group'), 'wheel:*:0:root\nbuild:*:1000:\n');
    const db = userDbFromDir(d1);
    expect([db.uid('root'), db.uid('build'), db.gid('wheel'), db.gid('nobody')]).toEqual([0, 1000, 0, undefined]);
    const d2 = join(tmp, 'etc2');
    mkdirSync(d2);
    writeFileSync(join(d2, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(join(d2, 'group'), 'root:x:0:\n');
    expect(userDbFromDir(d2).uid('root')).toBe(0);
    expect(failure(() => userDbFromDir(join(tmp, 'none')))).toBe(`${join(tmp, 'none', 'master.passwd')}: No such file or directory`);
  });
});

describe('readManifest', () => {
  const stage = join(tmp, 'stage');
  beforeAll(() => {
    mkdirSync(join(stage, 'bin'), { recursive: true });
    writeFileSync(join(stage, 'bin', 'sh'), 'shell');
    linkSync(join(stage, 'bin', 'sh'), join(stage, 'bin', '-sh'));
    writeFileSync(join(stage, 'data'), 'contents elsewhere');
    chmodSync(join(stage, 'data'), 0o600);
  });

  function read(text: string, o: Partial<ManifestOptions> = {}, warnings: string[] = []): Inode {
    process.chdir(stage);
    try {
      return readManifest(Buffer.from(text, 'latin1'), {
        name: 'METALOG', policy: {}, users: USERS, duplicates: 0, warn: (w) => warnings.push(w), ...o,
      });
    } finally {
      process.chdir(cwd);
    }
  }

  test('metadata comes from the manifest, data from the staged files', () => {
    const root = read([
      '#mtree 2.0',
      '. type=dir uname=root gname=wheel mode=0755 time=1000',
      './bin type=dir uname=root gname=wheel mode=0755 time=1000',
      './bin/sh type=file uname=root gname=wheel mode=04555 size=5 time=1000.5',
      './bin/link type=link uname=root gname=wheel mode=0755 link=sh time=1000',
      './etc/data type=file uname=www gname=www mode=0640 contents=data time=1000',
    ].join('\n'));
    expect(names(root)).toEqual(['bin', 'etc']);
    const sh = at(root, 'bin/sh');
    expect(sh).toMatchObject({ type: 'file', perm: 0o4555, uid: 0, gid: 0, size: 5, source: { kind: 'path', path: 'bin/sh' } });
    expect(sh.mtime).toEqual({ sec: 1000, nsec: 5 });
    expect(sh.atime).toEqual(sh.mtime);
    expect(sh.ctime).toEqual(sh.mtime);
    expect(sh.crtime).toEqual(sh.mtime);
    expect(at(root, 'bin/link')).toMatchObject({ type: 'symlink', perm: 0o755, target: Buffer.from('sh') });
    expect(at(root, 'etc/data')).toMatchObject({ perm: 0o640, uid: 80, gid: 80, size: 18, source: { kind: 'path', path: 'data' } });
    // etc/ was never listed: an implicit directory
    expect(at(root, 'etc')).toMatchObject({ type: 'dir', perm: 0o755, uid: 0, gid: 0, mtime: { sec: 0, nsec: 0 } });
  });

  test('order does not matter: a directory listed after its contents keeps its own metadata', () => {
    const lines = [
      './a/b/c type=file mode=0644 uid=1 gid=1 contents=data time=5',
      './a/b type=dir mode=0700 uid=2 gid=2 time=6',
      './a type=dir mode=0750 uid=3 gid=3 time=7',
      '. type=dir mode=0711 uid=0 gid=0 time=8',
    ];
    const fwd = read(lines.join('\n'));
    const rev = read([...lines].reverse().join('\n'));
    expect(rev).toEqual(fwd);
    expect(at(fwd, 'a')).toMatchObject({ perm: 0o750, uid: 3, mtime: { sec: 7, nsec: 0 } });
    expect(at(fwd, 'a/b')).toMatchObject({ perm: 0o700, uid: 2 });
    expect(fwd).toMatchObject({ perm: 0o711, mtime: { sec: 8, nsec: 0 } });
  });

  test('hard links: contents files that are one host inode share one inode', () => {
    const root = read('./z type=file mode=0555 uid=9 gid=9 contents=bin/-sh\n./bin/sh type=file mode=0511 uid=0 gid=0\n');
    const a = at(root, 'z');
    expect(at(root, 'bin/sh')).toBe(a);
    // the metadata of the name that sorts first ("bin/sh" < "z"), whatever the line order
    expect(a).toMatchObject({ perm: 0o511, uid: 0 });
  });

  test('hard links: every name is an entry of its own, and every line is checked', () => {
    // the same base name in two directories, the second line sorting first
    const root = read('./z/sh type=file mode=0555 uid=9 gid=9 contents=bin/-sh\n./bin/sh type=file mode=0511 uid=0 gid=0\n');
    expect(names(at(root, 'z'))).toEqual(['sh']);
    expect(names(at(root, 'bin'))).toEqual(['sh']);
    expect(at(root, 'z/sh')).toBe(at(root, 'bin/sh'));
    expect(at(root, 'z/sh')).toMatchObject({ perm: 0o511, uid: 0 });
    // a later name that does not sort first gives no metadata, but its line must still be right
    expect(failure(() => read('./bin/sh type=file mode=0511\n./z type=file mode=9 contents=bin/-sh\n'))).toBe(
      "METALOG:2: ./z: invalid mode '9' (an octal number up to 07777)",
    );
  });

  test('duplicates: an error, with -D a warning, with -DD silent; the first one is kept', () => {
    const text = './data type=file mode=0600\n./data type=file mode=0644\n';
    expect(failure(() => read(text))).toBe('METALOG:2: ./data: duplicate entry (first at METALOG:1); -D makes duplicates warnings');
    const w: string[] = [];
    expect(at(read(text, { duplicates: 1 }, w), 'data').perm).toBe(0o600);
    expect(w).toEqual(['METALOG:2: ./data: duplicate entry (first at METALOG:1); the first one is kept']);
    const w2: string[] = [];
    read(text, { duplicates: 2 }, w2);
    expect(w2).toEqual([]);
  });

  test('times: -T replaces manifest times; without time=, SOURCE_DATE_EPOCH else 0', () => {
    const text = './data type=file time=1700000000\n./bin type=dir\n';
    const stamped = read(text, { policy: { stamp: { sec: 5, nsec: 0 } } });
    expect(at(stamped, 'data').mtime).toEqual({ sec: 5, nsec: 0 });
    expect(stamped.mtime).toEqual({ sec: 5, nsec: 0 });
    const sde = read(text, { policy: { sourceDateEpoch: { sec: 99, nsec: 0 } } });
    expect(at(sde, 'data').mtime).toEqual({ sec: 1700000000, nsec: 0 }); // clamping is a later step
    expect(at(sde, 'bin').mtime).toEqual({ sec: 99, nsec: 0 });
    expect(sde.mtime).toEqual({ sec: 99, nsec: 0 });
  });

  test('every mtree type; defaults for entries that give no mode', () => {
    const root = read('./p type=fifo\n./s type=socket\n./c type=char device=native,1,3\n./b type=block device=linux,8,1 mode=0660\n');
    expect(at(root, 'p')).toMatchObject({ type: 'fifo', perm: 0o644 });
    expect(at(root, 's')).toMatchObject({ type: 'socket' });
    expect(at(root, 'c')).toMatchObject({ type: 'chardev', rdevMajor: 1, rdevMinor: 3, perm: 0o600 });
    expect(at(root, 'b')).toMatchObject({ type: 'blockdev', rdevMajor: 8, rdevMinor: 1, perm: 0o660 });
  });

  test('errors name the line and entry', () => {
    expect(failure(() => read('./missing type=file mode=0644\n'))).toBe("METALOG:1: ./missing: contents file 'missing': No such file or directory");
    expect(failure(() => read('./x type=file contents=bin\n'))).toBe("METALOG:1: ./x: contents file 'bin' is not a regular file");
    expect(failure(() => read('\n./dev/x type=door\n'))).toBe("METALOG:2: ./dev/x: unknown type 'door' (block, char, dir, fifo, file, link or socket)");
    expect(failure(() => read('./data type=file uname=bob\n', { users: NO_USERS }))).toBe("METALOG:1: ./data: unknown user 'bob' (not in none)");
    expect(failure(() => read('./data type=file gname=staff\n', { users: NO_USERS }))).toBe("METALOG:1: ./data: unknown group 'staff' (not in none)");
    expect(failure(() => read('./data type=file mode=u+rwx\n'))).toBe("METALOG:1: ./data: invalid mode 'u+rwx' (an octal number up to 07777)");
    expect(failure(() => read('./l type=link\n'))).toBe('METALOG:1: ./l: symlink without link=');
    expect(failure(() => read('./data type=file\n./data/x type=file\n'))).toBe('METALOG:2: ./data/x: ./data is not a directory');
    expect(failure(() => read('./a/b type=dir\n./a type=file contents=data\n'))).toBe(
      'METALOG:2: ./a: is a file here but a directory holding other entries elsewhere',
    );
    expect(failure(() => read('. type=file\n'))).toBe('METALOG:1: .: the top directory must have type=dir');
  });

  test('a differing size= is a warning; the staged file decides', () => {
    const w: string[] = [];
    const root = read('./data type=file size=3\n', {}, w);
    expect(at(root, 'data').size).toBe(18);
    expect(w).toEqual(["METALOG:1: ./data: size=3 but 'data' has 18 bytes; using the file"]);
  });
});
