import { describe, expect, it } from 'vitest';
import {
  ACL_DECIDED_PFLAGS,
  ZFS_ACL_AUTO_INHERIT,
  ZFS_ACL_TRIVIAL,
  ZFS_ARCHIVE,
  ZFS_AV_MODIFIED,
  ZFS_NO_EXECS_DENIED,
  ZFS_PROJID,
  ZNODE_BASE_PFLAGS,
  aclForMode,
  aceSize,
  decodeAces,
  encodeAces,
  modeFromAces,
  type ZfsAce,
} from '../../src/zpl/acl.js';

// Expectations are written out from the rules in docs/openzfs-znode-notes.md
// (c), worked by hand, as literal numbers rather than the module's constants:
//   owner@ flags 0x1000, group@ 0x2040, everyone@ 0x4000; ALLOW 0, DENY 1
//   owner@ allow base 0x1E0198, group@/everyone@ allow base 0x120088
//   r = 0x1, w = 0x6 (0x46 for Linux directories), x = 0x20
const OWNER = 0x1000;
const GROUP = 0x2040;
const EVERYONE = 0x4000;
const A = 0;
const D = 1;

type Row = [type: number, flags: number, mask: number];

function ace([type, flags, mask]: Row): ZfsAce {
  return { type, flags, mask };
}

/** Little-endian bytes of the rows, built independently of encodeAces. */
function bytesOf(rows: Row[]): Uint8Array {
  const out = new Uint8Array(rows.length * 8);
  rows.forEach(([type, flags, mask], i) => {
    const o = i * 8;
    out[o] = type & 0xff;
    out[o + 1] = type >> 8;
    out[o + 2] = flags & 0xff;
    out[o + 3] = flags >> 8;
    out[o + 4] = mask & 0xff;
    out[o + 5] = (mask >> 8) & 0xff;
    out[o + 6] = (mask >> 16) & 0xff;
    out[o + 7] = (mask >>> 24) & 0xff;
  });
  return out;
}

interface Case {
  mode: number;
  kind: 'dir' | 'other';
  rows: Row[];
  pflags: bigint;
}

const cases: Case[] = [
  // Plain modes: no owner-narrower-than-others situation, three allows only.
  { mode: 0o644, kind: 'other', pflags: 0x4n, rows: [[A, OWNER, 0x1e019f], [A, GROUP, 0x120089], [A, EVERYONE, 0x120089]] },
  { mode: 0o644, kind: 'dir', pflags: 0x44n, rows: [[A, OWNER, 0x1e01df], [A, GROUP, 0x120089], [A, EVERYONE, 0x120089]] },
  { mode: 0o755, kind: 'other', pflags: 0x104n, rows: [[A, OWNER, 0x1e01bf], [A, GROUP, 0x1200a9], [A, EVERYONE, 0x1200a9]] },
  { mode: 0o755, kind: 'dir', pflags: 0x144n, rows: [[A, OWNER, 0x1e01ff], [A, GROUP, 0x1200a9], [A, EVERYONE, 0x1200a9]] },
  { mode: 0o700, kind: 'other', pflags: 0x4n, rows: [[A, OWNER, 0x1e01bf], [A, GROUP, 0x120088], [A, EVERYONE, 0x120088]] },
  // The case makefs gets wrong: a 0700 directory must not claim NO_EXECS_DENIED.
  { mode: 0o700, kind: 'dir', pflags: 0x44n, rows: [[A, OWNER, 0x1e01ff], [A, GROUP, 0x120088], [A, EVERYONE, 0x120088]] },
  { mode: 0o000, kind: 'other', pflags: 0x4n, rows: [[A, OWNER, 0x1e0198], [A, GROUP, 0x120088], [A, EVERYONE, 0x120088]] },
  { mode: 0o000, kind: 'dir', pflags: 0x44n, rows: [[A, OWNER, 0x1e0198], [A, GROUP, 0x120088], [A, EVERYONE, 0x120088]] },
  // Owner lacks r, w, x that the group has: owner@ deny of all three first.
  {
    mode: 0o070, kind: 'other', pflags: 0x4n,
    rows: [[D, OWNER, 0x27], [A, OWNER, 0x1e0198], [A, GROUP, 0x1200af], [A, EVERYONE, 0x120088]],
  },
  {
    mode: 0o070, kind: 'dir', pflags: 0x44n,
    rows: [[D, OWNER, 0x67], [A, OWNER, 0x1e0198], [A, GROUP, 0x1200ef], [A, EVERYONE, 0x120088]],
  },
  // Only other has rights: both owner@ and group@ must be denied.
  {
    mode: 0o007, kind: 'other', pflags: 0x4n,
    rows: [[D, OWNER, 0x27], [D, GROUP, 0x27], [A, OWNER, 0x1e0198], [A, GROUP, 0x120088], [A, EVERYONE, 0x1200af]],
  },
  {
    mode: 0o007, kind: 'dir', pflags: 0x44n,
    rows: [[D, OWNER, 0x67], [D, GROUP, 0x67], [A, OWNER, 0x1e0198], [A, GROUP, 0x120088], [A, EVERYONE, 0x1200ef]],
  },
  { mode: 0o777, kind: 'other', pflags: 0x104n, rows: [[A, OWNER, 0x1e01bf], [A, GROUP, 0x1200af], [A, EVERYONE, 0x1200af]] },
  { mode: 0o777, kind: 'dir', pflags: 0x144n, rows: [[A, OWNER, 0x1e01ff], [A, GROUP, 0x1200ef], [A, EVERYONE, 0x1200ef]] },
  // setuid and sticky bits do not reach the ACL.
  { mode: 0o4755, kind: 'other', pflags: 0x104n, rows: [[A, OWNER, 0x1e01bf], [A, GROUP, 0x1200a9], [A, EVERYONE, 0x1200a9]] },
  { mode: 0o1777, kind: 'dir', pflags: 0x144n, rows: [[A, OWNER, 0x1e01ff], [A, GROUP, 0x1200ef], [A, EVERYONE, 0x1200ef]] },
  // Group lacks read that other has: group@ deny read, and the owner gets
  // read back first in case it is a group member.
  {
    mode: 0o604, kind: 'other', pflags: 0x4n,
    rows: [[A, OWNER, 0x1], [D, GROUP, 0x1], [A, OWNER, 0x1e019f], [A, GROUP, 0x120088], [A, EVERYONE, 0x120089]],
  },
  {
    mode: 0o604, kind: 'dir', pflags: 0x44n,
    rows: [[A, OWNER, 0x1], [D, GROUP, 0x1], [A, OWNER, 0x1e01df], [A, GROUP, 0x120088], [A, EVERYONE, 0x120089]],
  },
  // All six entries: allow0 = r, deny1 = x, deny2 = r|x.
  {
    mode: 0o405, kind: 'other', pflags: 0x4n,
    rows: [[A, OWNER, 0x1], [D, OWNER, 0x20], [D, GROUP, 0x21], [A, OWNER, 0x1e0199], [A, GROUP, 0x120088], [A, EVERYONE, 0x1200a9]],
  },
  // Owner missing w and x: deny1 = w|x (w including DELETE_CHILD on a dir), deny2 = x.
  {
    mode: 0o461, kind: 'dir', pflags: 0x44n,
    rows: [[D, OWNER, 0x66], [D, GROUP, 0x20], [A, OWNER, 0x1e0199], [A, GROUP, 0x1200cf], [A, EVERYONE, 0x1200a8]],
  },
];

function label(c: Case): string {
  return `${c.kind} 0${c.mode.toString(8)}`;
}

describe('aclForMode (hand-written expectations, Linux flavour)', () => {
  for (const c of cases) {
    it(label(c), () => {
      const acl = aclForMode(c.mode, c.kind);
      expect(decodeAces(acl.aces, acl.count)).toEqual(c.rows.map(ace));
      expect(acl.count).toBe(c.rows.length);
      expect(Array.from(acl.aces)).toEqual(Array.from(bytesOf(c.rows)));
      expect(acl.pflags).toBe(c.pflags);
    });
  }

  it('matches the byte image of a 0644 file ACL', () => {
    // type, flags, mask little-endian: owner@ allow 0x1E019F, group@/everyone@ allow 0x120089
    const expected = [
      0x00, 0x00, 0x00, 0x10, 0x9f, 0x01, 0x1e, 0x00,
      0x00, 0x00, 0x40, 0x20, 0x89, 0x00, 0x12, 0x00,
      0x00, 0x00, 0x00, 0x40, 0x89, 0x00, 0x12, 0x00,
    ];
    expect(Array.from(aclForMode(0o644, 'other').aces)).toEqual(expected);
  });

  it('FreeBSD flavour leaves DELETE_CHILD out of directory write masks', () => {
    const acl = aclForMode(0o070, 'dir', { platform: 'freebsd' });
    expect(decodeAces(acl.aces, acl.count)).toEqual(
      ([[D, OWNER, 0x27], [A, OWNER, 0x1e0198], [A, GROUP, 0x1200af], [A, EVERYONE, 0x120088]] as Row[]).map(ace),
    );
    expect(acl.pflags).toBe(0x44n);
    // Files are identical on both platforms.
    expect(aclForMode(0o604, 'other', { platform: 'freebsd' })).toEqual(aclForMode(0o604, 'other'));
  });

  it('root directory flags match the value OpenZFS gives a 0755 root', () => {
    expect(ZNODE_BASE_PFLAGS | aclForMode(0o755, 'dir').pflags).toBe(0x0000040800000144n);
    expect(ZNODE_BASE_PFLAGS | aclForMode(0o644, 'other').pflags).toBe(0x0000040800000004n);
  });

  it('flag constants have the zfs_znode.h values', () => {
    expect(ZFS_ACL_TRIVIAL).toBe(0x4n);
    expect(ZFS_ACL_AUTO_INHERIT).toBe(0x40n);
    expect(ZFS_NO_EXECS_DENIED).toBe(0x100n);
    expect(ZFS_ARCHIVE).toBe(0x800000000n);
    expect(ZFS_AV_MODIFIED).toBe(0x40000000000n);
    expect(ZFS_PROJID).toBe(0x800000000000n);
  });

  it('rejects modes outside 0..07777', () => {
    expect(() => aclForMode(0o10000, 'other')).toThrow(RangeError);
    expect(() => aclForMode(0o100644, 'other')).toThrow(RangeError);
    expect(() => aclForMode(-1, 'dir')).toThrow(RangeError);
    expect(() => aclForMode(0.5, 'dir')).toThrow(RangeError);
  });
});

describe('aclForMode over all 4096 modes', () => {
  for (const kind of ['dir', 'other'] as const) {
    for (const platform of ['linux', 'freebsd'] as const) {
      it(`${kind} ${platform}: sizes, order, flags and derived mode are consistent`, () => {
        // Collected rather than asserted one by one: 4096 x a dozen expect()
        // calls would dominate the suite's run time.
        const bad: string[] = [];
        const check = (mode: number, ok: boolean, what: string): void => {
          if (!ok) bad.push(`0${mode.toString(8)}: ${what}`);
        };
        const head3 = [`${A}:${OWNER}`, `${D}:${OWNER}`, `${D}:${GROUP}`];
        for (let mode = 0; mode <= 0o7777; mode++) {
          const acl = aclForMode(mode, kind, { platform });
          check(mode, acl.aces.length === acl.count * 8, 'byte length != 8 x count');
          check(mode, acl.count >= 3 && acl.count <= 6, `count ${acl.count}`);
          const aces = decodeAces(acl.aces, acl.count);
          check(mode, aces.length === acl.count, 'decoded count');

          // Ends with owner@, group@, everyone@ allows; everything before is
          // at most one owner@ allow, then owner@ deny, then group@ deny.
          const tail = aces.slice(-3).map((a) => `${a.type}:${a.flags}`).join(' ');
          check(mode, tail === `${A}:${OWNER} ${A}:${GROUP} ${A}:${EVERYONE}`, `tail ${tail}`);
          const head = aces.slice(0, -3).map((a) => `${a.type}:${a.flags}`);
          check(mode, head.join(' ') === head3.filter((k) => head.includes(k)).join(' '), `head ${head.join(' ')}`);

          // Special bits never change the ACL.
          const plain = aclForMode(mode & 0o777, kind, { platform });
          check(
            mode,
            plain.count === acl.count && plain.pflags === acl.pflags && plain.aces.every((b, i) => acl.aces[i] === b),
            'special bits changed the ACL',
          );

          // What OpenZFS derives back from this ACL is the mode we started from.
          const derived = modeFromAces(aces);
          check(mode, derived.perm === (mode & 0o777), `derived perm 0${derived.perm.toString(8)}`);
          check(mode, derived.noExecsDenied === ((mode & 0o111) === 0o111), 'derived NO_EXECS_DENIED');
          check(mode, ((acl.pflags & ZFS_NO_EXECS_DENIED) !== 0n) === derived.noExecsDenied, 'pflags NO_EXECS_DENIED');

          check(mode, (acl.pflags & ~ACL_DECIDED_PFLAGS) === 0n, 'stray pflags');
          check(mode, (acl.pflags & ZFS_ACL_TRIVIAL) !== 0n, 'not trivial');
          check(mode, ((acl.pflags & ZFS_ACL_AUTO_INHERIT) !== 0n) === (kind === 'dir'), 'AUTO_INHERIT');

          // DELETE_CHILD only on Linux directories, and only next to WRITE_DATA.
          for (const a of aces) {
            if ((a.mask & 0x40) === 0) continue;
            check(mode, kind === 'dir' && platform === 'linux', 'unexpected DELETE_CHILD');
            check(mode, (a.mask & 0x2) !== 0, 'DELETE_CHILD without WRITE_DATA');
          }
        }
        expect(bad.slice(0, 20)).toEqual([]);
      });
    }
  }

  it('the six-entry case exists and 0o405 is one', () => {
    let six = 0;
    for (let mode = 0; mode <= 0o777; mode++) if (aclForMode(mode, 'other').count === 6) six++;
    expect(six).toBeGreaterThan(0);
    expect(aclForMode(0o405, 'other').count).toBe(6);
  });
});

describe('decodeAces / encodeAces', () => {
  it('round-trips every generated ACL', () => {
    for (let mode = 0; mode <= 0o777; mode++) {
      for (const kind of ['dir', 'other'] as const) {
        const acl = aclForMode(mode, kind);
        expect(Array.from(encodeAces(decodeAces(acl.aces, acl.count)))).toEqual(Array.from(acl.aces));
      }
    }
  });

  it('round-trips named, audit and object entries with their sizes', () => {
    const objType = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
    const inhType = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 - i);
    const aces: ZfsAce[] = [
      { type: D, flags: 0, mask: 0x20, who: 1001n }, // named user: 16 bytes
      { type: A, flags: 0x40 | 0x3, mask: 0x7, who: 0x1_0000_0002n }, // named group, inheritable: 16
      { type: 2, flags: OWNER | 0x10, mask: 0x1 , who: 0n }, // audit with owner@ flag: still 16
      { type: 5, flags: 0, mask: 0x1, who: 7n, objectType: objType, inheritedObjectType: inhType }, // object: 48
      { type: A, flags: EVERYONE, mask: 0x120088 }, // 8
    ];
    expect(aces.map((a) => aceSize(a.type, a.flags))).toEqual([16, 16, 16, 48, 8]);
    const bytes = encodeAces(aces);
    expect(bytes.length).toBe(104);
    // FUID of the second entry sits little-endian right after its header.
    expect(Array.from(bytes.subarray(24, 32))).toEqual([2, 0, 0, 0, 1, 0, 0, 0]);
    // Object type GUID at +16 of the object entry (which starts at byte 48).
    expect(Array.from(bytes.subarray(64, 80))).toEqual(Array.from(objType));
    expect(decodeAces(bytes, aces.length)).toEqual(aces);
  });

  it('rejects counts that do not match the bytes', () => {
    const acl = aclForMode(0o604, 'other');
    expect(() => decodeAces(acl.aces, acl.count + 1)).toThrow(RangeError);
    expect(() => decodeAces(acl.aces, acl.count - 1)).toThrow(RangeError);
    expect(() => decodeAces(acl.aces.subarray(0, acl.aces.length - 1), acl.count)).toThrow(RangeError);
    // A named entry claims 16 bytes; only 8 are there.
    expect(() => decodeAces(bytesOf([[A, 0, 0x1]]), 1)).toThrow(RangeError);
    expect(decodeAces(new Uint8Array(0), 0)).toEqual([]);
  });

  it('refuses entries it could not round-trip', () => {
    expect(() => encodeAces([{ type: A, flags: 0, mask: 1 }])).toThrow(RangeError);
    expect(() => encodeAces([{ type: A, flags: OWNER, mask: 1, who: 5n }])).toThrow(RangeError);
    expect(() => encodeAces([{ type: A, flags: OWNER, mask: 2 ** 32 }])).toThrow(RangeError);
  });
});

describe('modeFromAces', () => {
  it('follows first-match per principal and bit', () => {
    // everyone@ allow rwx after an owner@ deny of x: owner keeps no x, exec not for all.
    const r = modeFromAces([
      { type: D, flags: OWNER, mask: 0x20 },
      { type: A, flags: EVERYONE, mask: 0x27 },
    ]);
    expect(r.perm).toBe(0o677);
    expect(r.noExecsDenied).toBe(false);
  });

  it('a named deny of execute clears NO_EXECS_DENIED even when the mode is 0777', () => {
    const aces = decodeAces(aclForMode(0o777, 'other').aces, 3);
    expect(modeFromAces(aces).noExecsDenied).toBe(true);
    const withDeny = [{ type: D, flags: 0, mask: 0x20, who: 1234n }, ...aces];
    expect(modeFromAces(withDeny)).toEqual({ perm: 0o777, noExecsDenied: false });
    // ...unless that user is the owner, in which case it is an owner entry.
    expect(modeFromAces(withDeny, 1234n)).toEqual({ perm: 0o677, noExecsDenied: false });
  });
});
