import { spawnSync } from 'node:child_process';
import {
  chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, unlinkSync, utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { prewriteData } from '../../src/input/prewrite.js';
import { newDir, sortTree, type Inode } from '../../src/input/tree.js';
import { hostDevice, linuxDevice, showPath, timespecFromNs, walkCounted, walkDirectories } from '../../src/input/walk.js';
import { treeTotals } from '../../src/build.js';
import { UserError } from '../../src/util/errors.js';
import { memoryContext } from '../helpers/memory-context.js';

/** A source path as fs calls take it (raw bytes for names that are not UTF-8). */
const fsPathOf = (p: string | Uint8Array): string | Buffer => (typeof p === 'string' ? p : Buffer.from(p));

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tsmakefs-walk-'));
});
afterEach(() => {
  rmSync(tmp, { recursive: true, force: true });
});

const isRoot = process.getuid?.() === 0;
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

/** Child of a directory inode by name (as latin1 text, which is byte-exact). */
function child(dir: Inode, name: string | Buffer): Inode {
  const want = typeof name === 'string' ? name : name.toString('latin1');
  const e = dir.entries!.find((d) => text(d.name) === want);
  if (e === undefined) throw new Error(`no entry ${JSON.stringify(want)} in ${dir.entries!.map((d) => text(d.name))}`);
  return e.inode;
}

function names(dir: Inode): string[] {
  return dir.entries!.map((d) => text(d.name));
}

function mk(rel: string, content: string | Uint8Array = ''): string {
  const p = join(tmp, rel);
  writeFileSync(p, content);
  return p;
}

function dir(rel: string): string {
  const p = join(tmp, rel);
  mkdirSync(p, { recursive: true });
  return p;
}

describe('walkDirectories: one input', () => {
  test('files, directories, sizes and sources', () => {
    const stage = dir('stage');
    dir('stage/etc/rc.d');
    mk('stage/etc/rc.conf', 'zfs_enable="YES"\n');
    mk('stage/etc/rc.d/empty');
    mk('stage/boot.bin', Buffer.alloc(12345, 7));
    const root = walkDirectories([stage], {});

    expect(root.type).toBe('dir');
    expect(names(root)).toEqual(['boot.bin', 'etc']);
    const etc = child(root, 'etc');
    expect(etc.type).toBe('dir');
    expect(names(etc)).toEqual(['rc.conf', 'rc.d']);
    const rcconf = child(etc, 'rc.conf');
    expect(rcconf).toMatchObject({ type: 'file', size: 17, source: { kind: 'path', path: join(stage, 'etc/rc.conf') } });
    expect(child(root, 'boot.bin').size).toBe(12345);
    expect(child(child(etc, 'rc.d'), 'empty').size).toBe(0);
    expect(names(child(etc, 'rc.d'))).toEqual(['empty']);
  });

  test('metadata: perm with special bits, owner, times from the host', () => {
    const stage = dir('stage');
    const f = mk('stage/suid', 'x');
    chmodSync(f, 0o4755);
    const d = dir('stage/tmp');
    chmodSync(d, 0o1777);
    utimesSync(f, 1_000_000, 1_700_000_000.5);
    const root = walkDirectories([stage]);
    const suid = child(root, 'suid');
    expect(suid.perm).toBe(0o4755);
    expect(child(root, 'tmp').perm).toBe(0o1777);
    expect(suid.uid).toBe(process.getuid!());
    expect(suid.gid).toBe(process.getgid!());
    expect(suid.mtime).toEqual(timespecFromNs(lstatSync(f, { bigint: true }).mtimeNs));
    expect(suid.mtime.sec).toBe(1_700_000_000);
    expect(suid.mtime.nsec).toBe(500_000_000);
    // atime/ctime are host accidents: they follow mtime.
    expect(suid.atime).toEqual(suid.mtime);
    expect(suid.ctime).toEqual(suid.mtime);
    expect(suid.crtime).toEqual(suid.mtime);
    expect(root.perm).toBe(lstatSync(stage).mode & 0o7777);
  });

  test('equal mtimes share one object across a directory, different ones do not', () => {
    const stage = dir('stage');
    dir('stage/sub');
    const when: Record<string, number> = { a: 1_600_000_000.25, b: 1_700_000_000, c: 1_600_000_000.25, 'sub/d': 1_600_000_000.25, 'sub/e': 1_600_000_000.5 };
    for (const [n, t] of Object.entries(when)) utimesSync(mk(`stage/${n}`, n), t, t);
    const root = walkDirectories([stage]);
    const sub = child(root, 'sub');
    const [a, b, c, d, e] = [child(root, 'a'), child(root, 'b'), child(root, 'c'), child(sub, 'd'), child(sub, 'e')];
    expect(c.mtime).toBe(a.mtime);
    expect(d.mtime).toBe(a.mtime);
    expect(a.mtime).toEqual({ sec: 1_600_000_000, nsec: 250_000_000 });
    expect(b.mtime).toEqual({ sec: 1_700_000_000, nsec: 0 });
    expect(e.mtime).toEqual({ sec: 1_600_000_000, nsec: 500_000_000 });
    expect(e.mtime).not.toBe(a.mtime);
  });

  test('times before 1970 keep nsec in range', () => {
    expect(timespecFromNs(-1n)).toEqual({ sec: -1, nsec: 999_999_999 });
    expect(timespecFromNs(-1_500_000_000n)).toEqual({ sec: -2, nsec: 500_000_000 });
    expect(timespecFromNs(1_000_000_001n)).toEqual({ sec: 1, nsec: 1 });
  });

  test('a timestamp replaces every time of every inode', () => {
    const stage = dir('stage');
    dir('stage/d');
    mk('stage/d/f', 'x');
    symlinkSync('f', join(stage, 'd/l'));
    const stamp = { sec: 1234567890, nsec: 5 };
    const root = walkDirectories([stage], { timestamp: stamp });
    for (const ino of [root, child(root, 'd'), child(child(root, 'd'), 'f'), child(child(root, 'd'), 'l')]) {
      for (const t of [ino.atime, ino.mtime, ino.ctime, ino.crtime]) expect(t).toEqual(stamp);
    }
  });

  test('symlinks are not followed and keep their raw target, however long', () => {
    const stage = dir('stage');
    dir('stage/real');
    mk('stage/real/file', 'data');
    const long = Buffer.from(`${'deep/'.repeat(80)}target`);
    symlinkSync(long, join(stage, 'long'));
    symlinkSync('real', join(stage, 'dirlink'));
    const odd = Buffer.from([0x2e, 0x2f, 0xff, 0xfe, 0x80]);
    symlinkSync(odd, join(stage, 'odd'));
    const root = walkDirectories([stage]);

    const l = child(root, 'long');
    expect(l.type).toBe('symlink');
    expect(Buffer.from(l.target!).equals(long)).toBe(true);
    expect(l.target!.length).toBe(long.length);
    const dl = child(root, 'dirlink');
    expect(dl.type).toBe('symlink');
    expect(dl.entries).toBeUndefined();
    expect(Buffer.from(dl.target!).toString()).toBe('real');
    expect(Buffer.from(child(root, 'odd').target!).equals(odd)).toBe(true);
  });

  test('a symlink given as the input itself is followed, as makefs stat()s it', () => {
    const stage = dir('stage');
    mk('stage/f', 'x');
    const link = join(tmp, 'link');
    symlinkSync(stage, link);
    const root = walkDirectories([link]);
    expect(root.type).toBe('dir');
    expect(names(root)).toEqual(['f']);
    expect(child(root, 'f').source).toEqual({ kind: 'path', path: join(link, 'f') });
  });

  test.runIf(spawnSync('mkfifo', ['--version']).status === 0)('fifos', () => {
    const stage = dir('stage');
    expect(spawnSync('mkfifo', ['-m', '0620', join(stage, 'pipe')]).status).toBe(0);
    const pipe = child(walkDirectories([stage]), 'pipe');
    expect(pipe.type).toBe('fifo');
    expect(pipe.perm).toBe(0o620);
    expect(pipe.source).toBeUndefined();
  });

  test.runIf(spawnSync('python3', ['--version']).status === 0)('sockets', () => {
    const stage = dir('stage');
    const sock = join(stage, 'sock');
    const r = spawnSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(sock)})`]);
    expect(r.status).toBe(0);
    expect(child(walkDirectories([stage]), 'sock').type).toBe('socket');
  });

  test.runIf(isRoot)('device nodes carry major and minor numbers', () => {
    const stage = dir('stage');
    expect(spawnSync('mknod', [join(stage, 'null'), 'c', '1', '3']).status).toBe(0);
    expect(spawnSync('mknod', [join(stage, 'big'), 'b', '259', '70000']).status).toBe(0);
    const root = walkDirectories([stage]);
    expect(child(root, 'null')).toMatchObject({ type: 'chardev', rdevMajor: 1, rdevMinor: 3 });
    expect(child(root, 'big')).toMatchObject({ type: 'blockdev', rdevMajor: 259, rdevMinor: 70000 });
  });

  // makedev(major, minor) as glibc builds it.
  const linuxMakedev = (ma: bigint, mi: bigint): bigint =>
    ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);

  test('linuxDevice splits dev_t like glibc', () => {
    for (const [ma, mi] of [[0n, 0n], [1n, 3n], [8n, 17n], [259n, 70000n], [0xfffffn, 0xfffffn], [0xabcden, 0x12345n], [4095n, 255n], [4096n, 256n]] as const) {
      expect(linuxDevice(linuxMakedev(ma, mi))).toEqual([Number(ma), Number(mi)]);
    }
    expect(linuxDevice(0x103n)).toEqual([1, 3]);
  });

  test('hostDevice splits st_rdev the way the host that ran lstat packs it', () => {
    // each system's makedev, as its sys/types.h builds dev_t
    const makedev: Record<string, (ma: bigint, mi: bigint) => bigint> = {
      linux: linuxMakedev,
      darwin: (ma, mi) => (ma << 24n) | mi,
      freebsd: (ma, mi) => ((ma & 0xffffff00n) << 32n) | ((ma & 0xffn) << 8n) | ((mi & 0xff00n) << 24n) | (mi & 0xffff00ffn),
      openbsd: (ma, mi) => ((ma & 0xffn) << 8n) | (mi & 0xffn) | ((mi & 0xffff00n) << 8n),
    };
    const pairs: Record<string, [bigint, bigint][]> = {
      linux: [[1n, 3n], [259n, 70000n], [0xfffffn, 0xfffffn]],
      darwin: [[3n, 2n], [1n, 0x12345n], [0xffn, 0xffffffn]],
      freebsd: [[0n, 0x13n], [0xabn, 0x12345n], [0x1234n, 0xfedcba98n]],
      openbsd: [[2n, 2n], [0x44n, 0x123456n]],
    };
    for (const [platform, list] of Object.entries(pairs)) {
      for (const [ma, mi] of list) {
        expect(hostDevice(makedev[platform]!(ma, mi), platform as NodeJS.Platform), `${platform} ${ma},${mi}`).toEqual([Number(ma), Number(mi)]);
      }
    }
    // a Mac's /dev/null (3, 2) is not Linux's 0, 0x3002
    expect(hostDevice(0x3000002n, 'darwin')).toEqual([3, 2]);
    expect(hostDevice(0x3000002n, 'linux')).toEqual(linuxDevice(0x3000002n));
    // systems without a layout of their own here are taken for Linux's
    expect(hostDevice(0x103n, 'aix')).toEqual([1, 3]);
  });

  test('hard links anywhere in the input share one inode', () => {
    const stage = dir('stage');
    dir('stage/a');
    dir('stage/b/c');
    const orig = mk('stage/a/orig', 'shared');
    linkSync(orig, join(stage, 'b/c/link1'));
    linkSync(orig, join(stage, 'b/link2'));
    mk('stage/b/single', 'shared');
    const root = walkDirectories([stage]);
    const a = child(child(root, 'a'), 'orig');
    const l1 = child(child(child(root, 'b'), 'c'), 'link1');
    const l2 = child(child(root, 'b'), 'link2');
    expect(l1).toBe(a);
    expect(l2).toBe(a);
    expect(child(child(root, 'b'), 'single')).not.toBe(a);
    // The source is the link met first in the (sorted, so readdir-independent) walk.
    expect(a.source).toEqual({ kind: 'path', path: join(stage, 'a/orig') });
  });

  test('names are raw bytes; non-UTF-8 names work for files and directories', () => {
    const stage = dir('stage');
    const fname = Buffer.from([0x66, 0x80, 0xfe, 0xff]); // "f" + invalid UTF-8
    const dname = Buffer.from([0xc3, 0x28]); // invalid 2-byte sequence
    const utf8 = Buffer.from('grüße', 'utf8');
    const sep = Buffer.from(`${stage}/`);
    writeFileSync(Buffer.concat([sep, fname]), 'bytes');
    mkdirSync(Buffer.concat([sep, dname]));
    writeFileSync(Buffer.concat([sep, dname, Buffer.from('/inner')]), 'in');
    writeFileSync(Buffer.concat([sep, utf8]), 'utf8');
    const root = walkDirectories([stage]);

    expect(root.entries!.map((e) => Buffer.from(e.name).toString('hex'))).toEqual(
      [fname, utf8, dname].map((b) => b.toString('hex')),
    );
    const f = child(root, fname);
    expect(f.type).toBe('file');
    expect(f.size).toBe(5);
    // The writer must be able to open the source whatever the name's bytes.
    expect(readFileSync(f.source!.kind === 'path' ? fsPathOf(f.source!.path) : '').toString()).toBe('bytes');
    expect(child(child(root, dname), 'inner').size).toBe(2);
    const u = child(root, utf8);
    expect(u.source).toEqual({ kind: 'path', path: join(stage, 'grüße') });
  });

  test('entries are in byte order whatever order they were created in', () => {
    const order = ['b', 'B', 'a', '.hidden', 'a.b', 'a-b', 'ab', 'Z', '_', '0', 'é', '~'];
    const build = (base: string, list: string[]): Inode => {
      const d = dir(base);
      for (const n of list) mk(`${base}/${n}`, n);
      return walkDirectories([d]);
    };
    const fwd = build('fwd', order);
    const rev = build('rev', [...order].reverse());
    const want = [...order].map((s) => Buffer.from(s)).sort(Buffer.compare).map((b) => b.toString('latin1'));
    expect(names(fwd)).toEqual(want);
    expect(names(rev)).toEqual(want);
    expect(names(fwd)).toEqual(['.hidden', '0', 'B', 'Z', '_', 'a', 'a-b', 'a.b', 'ab', 'b', '~', Buffer.from('é').toString('latin1')]);
  });

  test('sortTree finds a walked tree sorted and sorts one whose entries were moved, by bytes, mixed with plain entries', () => {
    const stage = dir('stage');
    const order = ['b', 'B', 'a', 'é', 'e', '~', 'ab'];
    for (const n of order) mk(`stage/${n}`, n);
    mkdirSync(join(stage, 'sub'));
    linkSync(join(stage, 'a'), join(stage, 'sub', 'z'));
    linkSync(join(stage, 'a'), join(stage, 'sub', 'y'));
    const root = walkDirectories([stage]);
    const want = names(root);
    const before = [...root.entries!];
    sortTree(root);
    // a sorted directory keeps its entries as they are
    for (let i = 0; i < before.length; i++) expect(root.entries![i]).toBe(before[i]);
    // walked entries (a file that is its own entry, a hard link's second name)
    // reversed and mixed with a plain entry between them
    root.entries!.reverse();
    const plain = newDir();
    root.entries!.splice(3, 0, { name: Buffer.from('c'), inode: plain });
    const sub = child(root, 'sub');
    sub.entries!.reverse();
    expect(names(sub)).toEqual(['z', 'y']);
    sortTree(root);
    expect(names(root)).toEqual([...want.slice(0, want.indexOf('e')), 'c', ...want.slice(want.indexOf('e'))]);
    expect(names(root)).toEqual(['B', 'a', 'ab', 'b', 'c', 'e', 'sub', '~', Buffer.from('é').toString('latin1')]);
    expect(names(sub)).toEqual(['y', 'z']);
  });

  test('trailing slashes on the input do not double in paths', () => {
    const stage = dir('stage');
    mk('stage/f', 'x');
    expect(child(walkDirectories([`${stage}//`]), 'f').source).toEqual({ kind: 'path', path: `${stage}/f` });
  });
});

describe('walkDirectories: several inputs merge like makefs', () => {
  test('walkCounted counts the tree as treeTotals does: hard links once, merged directories once', () => {
    const a = dir('a');
    const b = dir('b');
    dir('a/etc');
    dir('a/etc/deep');
    dir('b/etc/deep/er');
    dir('b/usr');
    mk('a/etc/passwd', 'root:x:0:0');
    mk('a/etc/deep/f', '12345');
    mk('b/etc/group', 'wheel');
    mk('b/etc/deep/er/g', 'x'.repeat(3000));
    mk('b/usr/empty', '');
    symlinkSync('passwd', join(a, 'etc/sym'));
    // within one input (a file and a symlink) and across the two
    linkSync(join(a, 'etc/passwd'), join(a, 'etc/passwd.hard'));
    linkSync(join(a, 'etc/sym'), join(a, 'etc/sym.hard'));
    linkSync(join(a, 'etc/deep/f'), join(b, 'usr/f.hard'));
    for (const dirs of [[a], [b], [a, b], [b, a]]) {
      const { root, totals } = walkCounted(dirs);
      expect(totals).toEqual(treeTotals(root));
    }
    // a: root, etc, deep, passwd(+hard), f, sym(+hard); b adds usr, er, group, g, empty
    expect(walkCounted([a, b]).totals).toEqual({ entries: 11, files: 5, bytes: 10 + 5 + 5 + 3000 });
  });

  test('same-named directories merge recursively; the first keeps its metadata', () => {
    const a = dir('a');
    const b = dir('b');
    dir('a/etc');
    dir('b/etc/ssh');
    dir('b/usr');
    mk('a/etc/passwd', 'root');
    mk('b/etc/group', 'wheel');
    mk('b/etc/ssh/sshd_config', 'PermitRootLogin no');
    mk('a/zzz', '');
    chmodSync(join(a, 'etc'), 0o750);
    chmodSync(join(b, 'etc'), 0o700);
    chmodSync(a, 0o711);
    chmodSync(b, 0o755);
    const root = walkDirectories([a, b]);
    expect(root.perm).toBe(0o711);
    expect(names(root)).toEqual(['etc', 'usr', 'zzz']);
    const etc = child(root, 'etc');
    expect(etc.perm).toBe(0o750);
    expect(names(etc)).toEqual(['group', 'passwd', 'ssh']);
    expect(child(etc, 'group').source).toEqual({ kind: 'path', path: join(b, 'etc/group') });
    expect(child(etc, 'passwd').source).toEqual({ kind: 'path', path: join(a, 'etc/passwd') });
    expect(names(child(etc, 'ssh'))).toEqual(['sshd_config']);
  });

  test('any other name clash is an error naming both paths', () => {
    const a = dir('a');
    const b = dir('b');
    dir('a/etc');
    dir('b/etc');
    mk('a/etc/motd', 'one');
    mk('b/etc/motd', 'two');
    expect(() => walkDirectories([a, b])).toThrow(UserError);
    expect(() => walkDirectories([a, b])).toThrow(
      `${b}/etc/motd: cannot merge file with existing file ${a}/etc/motd`,
    );
  });

  test('a directory cannot merge with a non-directory, either way round', () => {
    const a = dir('a');
    const b = dir('b');
    mk('a/x', '');
    dir('b/x');
    symlinkSync('elsewhere', join(a, 'y'));
    dir('b/y');
    expect(() => walkDirectories([a, b])).toThrow(`${b}/x: cannot merge directory with existing file ${a}/x`);
    expect(() => walkDirectories([b, a])).toThrow(`${a}/x: cannot merge file with existing directory ${b}/x`);
  });

  test('a clash with an entry adopted from an earlier extra input names that input', () => {
    const a = dir('a');
    const b = dir('b');
    const c = dir('c');
    dir('a/usr');
    dir('b/usr/share');
    mk('b/usr/share/file', '');
    dir('c/usr/share');
    mk('c/usr/share/file', '');
    expect(() => walkDirectories([a, b, c])).toThrow(
      `${c}/usr/share/file: cannot merge file with existing file ${b}/usr/share/file`,
    );
  });

  test('hard links across inputs stay one inode', () => {
    const a = dir('a');
    const b = dir('b');
    const f = mk('a/f', 'x');
    linkSync(f, join(b, 'g'));
    const root = walkDirectories([a, b]);
    expect(child(root, 'f')).toBe(child(root, 'g'));
  });
});

/** Run prewriteData with an in-memory sink: which files were read, under which path, with what bytes. */
function prewrite(root: Inode): Array<[path: string, data: string]> {
  const { ctx, got } = memoryContext();
  prewriteData(root, ctx);
  return got;
}

/** The host path a walked file's data is read from. */
function hostOf(ino: Inode): string | Uint8Array {
  const src = ino.source;
  if (src?.kind !== 'path') throw new Error(`not a host file: ${src?.kind}`);
  return src.path;
}

describe('walkDirectories: where file data is read from', () => {
  test('each file from the directory it was found in, also when a merge adopted it', () => {
    const a = dir('a');
    const b = dir('b');
    dir('a/etc');
    dir('b/etc/ssh');
    dir('b/usr/lib');
    mk('a/etc/passwd', 'A:passwd');
    mk('a/etc/zz', 'A:zz');
    mk('b/etc/group', 'B:group');
    mk('b/etc/ssh/sshd_config', 'B:sshd');
    mk('b/usr/lib/libc', 'B:libc');
    mk('b/top', 'B:top');
    const root = walkDirectories([a, b]);
    const etc = child(root, 'etc');
    expect(hostOf(child(etc, 'group'))).toBe(join(b, 'etc/group'));
    expect(hostOf(child(etc, 'passwd'))).toBe(join(a, 'etc/passwd'));
    expect(hostOf(child(child(etc, 'ssh'), 'sshd_config'))).toBe(join(b, 'etc/ssh/sshd_config'));
    expect(hostOf(child(child(child(root, 'usr'), 'lib'), 'libc'))).toBe(join(b, 'usr/lib/libc'));
    expect(hostOf(child(root, 'top'))).toBe(join(b, 'top'));
    // in tree order, with paths relative to the root, each from its own input
    expect(prewrite(root)).toEqual([
      ['etc/group', 'B:group'],
      ['etc/passwd', 'A:passwd'],
      ['etc/ssh/sshd_config', 'B:sshd'],
      ['etc/zz', 'A:zz'],
      ['top', 'B:top'],
      ['usr/lib/libc', 'B:libc'],
    ]);
    expect(child(etc, 'group').source).toMatchObject({ kind: 'bytes' });
  });

  test('equal names in different directories: each file keeps its own directory', () => {
    const stage = dir('stage');
    for (const d of ['x', 'y', 'y/x']) {
      dir(`stage/${d}`);
      mk(`stage/${d}/Makefile`, `in ${d}`);
    }
    const root = walkDirectories([stage]);
    expect(hostOf(child(child(child(root, 'y'), 'x'), 'Makefile'))).toBe(join(stage, 'y/x/Makefile'));
    expect(prewrite(root)).toEqual([['x/Makefile', 'in x'], ['y/Makefile', 'in y'], ['y/x/Makefile', 'in y/x']]);
    expect(names(child(root, 'y'))).toEqual(['Makefile', 'x']);
  });

  test('a file below a non-UTF-8 directory is read by its raw path', () => {
    const stage = dir('stage');
    const dname = Buffer.from([0x64, 0xff, 0x80]);
    const sub = Buffer.concat([Buffer.from(`${stage}/`), dname]);
    mkdirSync(sub);
    mkdirSync(Buffer.concat([sub, Buffer.from('/grüße')]));
    writeFileSync(Buffer.concat([sub, Buffer.from('/inner')]), 'raw');
    writeFileSync(Buffer.concat([sub, Buffer.from('/grüße/deep')]), 'deeper');
    mk('stage/plain', 'plain');
    const root = walkDirectories([stage]);
    const d = child(root, dname);
    const inner = hostOf(child(d, 'inner'));
    expect(typeof inner).not.toBe('string');
    expect(Buffer.from(inner as Uint8Array).equals(Buffer.concat([sub, Buffer.from('/inner')]))).toBe(true);
    const deep = hostOf(child(child(d, Buffer.from('grüße')), 'deep'));
    expect(Buffer.from(deep as Uint8Array).equals(Buffer.concat([sub, Buffer.from('/grüße/deep')]))).toBe(true);
    expect(hostOf(child(root, 'plain'))).toBe(join(stage, 'plain'));
    expect(prewrite(root).map(([, data]) => data)).toEqual(['deeper', 'raw', 'plain']);
  });

  test('a hard-linked file is written once, at its first name in tree order, and every name sees the result', () => {
    const stage = dir('stage');
    dir('stage/x');
    dir('stage/y');
    const f = mk('stage/y/f', 'linked');
    linkSync(f, join(stage, 'x/g'));
    linkSync(f, join(stage, 'z'));
    const root = walkDirectories([stage]);
    const ino = child(child(root, 'x'), 'g');
    expect(child(child(root, 'y'), 'f')).toBe(ino);
    expect(child(root, 'z')).toBe(ino);
    // read from the name the walk met first (a directory's own entries come
    // before its subdirectories'), written where tree order meets it first
    expect(hostOf(ino)).toBe(join(stage, 'z'));
    expect(prewrite(root)).toEqual([['x/g', 'linked']]);
    expect(ino.source).toMatchObject({ kind: 'bytes' });
  });

  test('a file that changed after the walk: the error names its full host path', () => {
    const a = dir('a');
    const b = dir('b');
    dir('a/etc');
    dir('b/etc');
    mk('b/etc/shrinks', '12345');
    const shrinks = walkDirectories([a, b]);
    truncateSync(join(b, 'etc/shrinks'), 2);
    expect(() => prewrite(shrinks)).toThrow(`${join(b, 'etc/shrinks')}: file shrank while being read (expected 5 bytes)`);
    mk('b/etc/gone', 'x');
    const gone = walkDirectories([a, b]);
    unlinkSync(join(b, 'etc/gone'));
    expect(() => prewrite(gone)).toThrow(`${join(b, 'etc/gone')}: No such file or directory`);
  });

  test('paths longer than any one name, deep down', () => {
    const stage = dir('stage');
    const seg = 'n'.repeat(255);
    let rel = '';
    while (stage.length + rel.length + 2 * 256 < 4000) rel += `/${seg}`;
    mkdirSync(stage + rel, { recursive: true });
    writeFileSync(`${stage}${rel}/${seg}`, 'far');
    writeFileSync(`${stage}${rel}/short`, 'near');
    let d = walkDirectories([stage]);
    for (let i = 0; i < rel.split('/').length - 1; i++) d = child(d, seg);
    expect(names(d)).toEqual([seg, 'short']);
    expect(hostOf(child(d, seg))).toBe(`${stage}${rel}/${seg}`);
    expect(hostOf(child(d, 'short'))).toBe(`${stage}${rel}/short`);
    expect(readFileSync(fsPathOf(hostOf(child(d, seg)))).toString()).toBe('far');
  });

  test('times: files sharing an mtime and files that do not each keep their own', () => {
    const stage = dir('stage');
    const when: Record<string, number> = { a: 1_600_000_000.25, b: 1_600_000_000.25, c: 1_500_000_000.5, d: 1_600_000_000.25 };
    for (const [n, t] of Object.entries(when)) utimesSync(mk(`stage/${n}`, n), t, t);
    const root = walkDirectories([stage]);
    for (const n of Object.keys(when)) {
      expect(child(root, n).mtime, n).toEqual(timespecFromNs(lstatSync(join(stage, n), { bigint: true }).mtimeNs));
    }
    expect(child(root, 'c').mtime).toEqual({ sec: 1_500_000_000, nsec: 500_000_000 });
    expect(child(root, 'd').mtime).toEqual({ sec: 1_600_000_000, nsec: 250_000_000 });
  });

  test('a walked file has the model\'s own properties only, and its source can be replaced', () => {
    const stage = dir('stage');
    mk('stage/f', 'data');
    const f = child(walkDirectories([stage]), 'f');
    // no host path among them: trees of two staging directories compare equal
    expect(Object.values(f).some((v) => typeof v === 'string' && v.includes(stage))).toBe(false);
    expect(Object.keys(f)).not.toContain('source');
    const replaced = { kind: 'bytes' as const, data: new Uint8Array(4) };
    f.source = replaced;
    expect(f.source).toBe(replaced);
    f.source = undefined;
    expect(f.source).toBeUndefined();
  });
});

describe('walkDirectories: errors', () => {
  test('missing input', () => {
    const missing = join(tmp, 'nope');
    expect(() => walkDirectories([missing])).toThrow(UserError);
    expect(() => walkDirectories([missing])).toThrow(`${missing}: No such file or directory`);
  });

  test('input that is not a directory', () => {
    const f = mk('file', '');
    expect(() => walkDirectories([f])).toThrow(`${f}: Not a directory`);
  });

  test('no input at all', () => {
    expect(() => walkDirectories([])).toThrow(UserError);
  });

  test.runIf(!isRoot)('unreadable directory', () => {
    const stage = dir('stage');
    const locked = dir('stage/locked');
    chmodSync(locked, 0);
    try {
      expect(() => walkDirectories([stage])).toThrow(`${locked}: Permission denied`);
    } finally {
      chmodSync(locked, 0o755);
    }
  });
});

test('showPath escapes bytes that are not UTF-8', () => {
  expect(showPath(Buffer.from('a/b'))).toBe('a/b');
  expect(showPath(Buffer.from('grüße'))).toBe('grüße');
  expect(showPath(Buffer.from([0x61, 0x2f, 0x80, 0xff]))).toBe('a/\\x80\\xff');
});
