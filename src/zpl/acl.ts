// The NFSv4-style ACL and the ACL-derived znode flags that OpenZFS gives a
// newly created object whose parent has nothing inheritable. Every object a
// pool image writer creates is in that situation, so the ACL is a pure
// function of the mode. The rules, with file references, are in
// docs/openzfs-znode-notes.md section (c); this is our own implementation.
//
// FreeBSD makefs writes only the three allow entries and always sets
// ZFS_NO_EXECS_DENIED; both are wrong for modes where the owner has fewer
// rights than group or other, and the flag lets anyone search a 0700
// directory through the execute fast path.

import { rd16le, rd32le, rd64le, u16le, u32le, u64le } from '../util/endian.js';

// ---------------------------------------------------------------------------
// ZPL_FLAGS bits (include/sys/zfs_znode.h). bigint because the attribute is
// a uint64 and the DOS-style bits live in the upper word.

export const ZFS_XATTR = 0x1n;
export const ZFS_INHERIT_ACE = 0x2n;
export const ZFS_ACL_TRIVIAL = 0x4n;
export const ZFS_ACL_OBJ_ACE = 0x8n;
export const ZFS_ACL_PROTECTED = 0x10n;
export const ZFS_ACL_DEFAULTED = 0x20n;
export const ZFS_ACL_AUTO_INHERIT = 0x40n;
export const ZFS_BONUS_SCANSTAMP = 0x80n;
export const ZFS_NO_EXECS_DENIED = 0x100n;

export const ZFS_READONLY = 0x0000000100000000n;
export const ZFS_HIDDEN = 0x0000000200000000n;
export const ZFS_SYSTEM = 0x0000000400000000n;
export const ZFS_ARCHIVE = 0x0000000800000000n;
export const ZFS_IMMUTABLE = 0x0000001000000000n;
export const ZFS_NOUNLINK = 0x0000002000000000n;
export const ZFS_APPENDONLY = 0x0000004000000000n;
export const ZFS_NODUMP = 0x0000008000000000n;
export const ZFS_OPAQUE = 0x0000010000000000n;
export const ZFS_AV_QUARANTINED = 0x0000020000000000n;
export const ZFS_AV_MODIFIED = 0x0000040000000000n;
export const ZFS_REPARSE = 0x0000080000000000n;
export const ZFS_OFFLINE = 0x0000100000000000n;
export const ZFS_SPARSE = 0x0000200000000000n;
export const ZFS_PROJINHERIT = 0x0000400000000000n;
export const ZFS_PROJID = 0x0000800000000000n;

/**
 * Flags zfs_mknode sets on every new object of a ZPL >= 3 dataset
 * regardless of the ACL (FUIDs in use). OR them with ZnodeAcl.pflags.
 */
export const ZNODE_BASE_PFLAGS = ZFS_ARCHIVE | ZFS_AV_MODIFIED;

/** The ZPL_FLAGS bits aclForMode decides; no other bit is ever set in its result. */
export const ACL_DECIDED_PFLAGS = ZFS_ACL_TRIVIAL | ZFS_ACL_AUTO_INHERIT | ZFS_NO_EXECS_DENIED;

// ---------------------------------------------------------------------------
// ACE fields (include/os/linux/spl/sys/acl.h).

export const ACE_ACCESS_ALLOWED_ACE_TYPE = 0x0000;
export const ACE_ACCESS_DENIED_ACE_TYPE = 0x0001;
export const ACE_SYSTEM_AUDIT_ACE_TYPE = 0x0002;
export const ACE_SYSTEM_ALARM_ACE_TYPE = 0x0003;
export const ACE_ACCESS_ALLOWED_COMPOUND_ACE_TYPE = 0x0004;
export const ACE_ACCESS_ALLOWED_OBJECT_ACE_TYPE = 0x0005;
export const ACE_ACCESS_DENIED_OBJECT_ACE_TYPE = 0x0006;
export const ACE_SYSTEM_AUDIT_OBJECT_ACE_TYPE = 0x0007;
export const ACE_SYSTEM_ALARM_OBJECT_ACE_TYPE = 0x0008;
/** Highest type OpenZFS accepts (ACE_SYSTEM_ALARM_CALLBACK_OBJECT_ACE_TYPE). */
export const ACE_MAX_TYPE = 0x0010;

export const ACE_READ_DATA = 0x00000001;
export const ACE_LIST_DIRECTORY = 0x00000001;
export const ACE_WRITE_DATA = 0x00000002;
export const ACE_ADD_FILE = 0x00000002;
export const ACE_APPEND_DATA = 0x00000004;
export const ACE_ADD_SUBDIRECTORY = 0x00000004;
export const ACE_READ_NAMED_ATTRS = 0x00000008;
export const ACE_WRITE_NAMED_ATTRS = 0x00000010;
export const ACE_EXECUTE = 0x00000020;
export const ACE_DELETE_CHILD = 0x00000040;
export const ACE_READ_ATTRIBUTES = 0x00000080;
export const ACE_WRITE_ATTRIBUTES = 0x00000100;
export const ACE_DELETE = 0x00010000;
export const ACE_READ_ACL = 0x00020000;
export const ACE_WRITE_ACL = 0x00040000;
export const ACE_WRITE_OWNER = 0x00080000;
export const ACE_SYNCHRONIZE = 0x00100000;

export const ACE_FILE_INHERIT_ACE = 0x0001;
export const ACE_DIRECTORY_INHERIT_ACE = 0x0002;
export const ACE_NO_PROPAGATE_INHERIT_ACE = 0x0004;
export const ACE_INHERIT_ONLY_ACE = 0x0008;
export const ACE_SUCCESSFUL_ACCESS_ACE_FLAG = 0x0010;
export const ACE_FAILED_ACCESS_ACE_FLAG = 0x0020;
export const ACE_IDENTIFIER_GROUP = 0x0040;
export const ACE_INHERITED_ACE = 0x0080;
export const ACE_OWNER = 0x1000;
export const ACE_GROUP = 0x2000;
export const ACE_EVERYONE = 0x4000;
export const ACE_TYPE_FLAGS = ACE_OWNER | ACE_GROUP | ACE_EVERYONE | ACE_IDENTIFIER_GROUP;

/** owner@, group@ (the owning group) and everyone@ as they appear in z_flags. */
export const OWNER_AT = ACE_OWNER;
export const GROUP_AT = ACE_GROUP | ACE_IDENTIFIER_GROUP;
export const EVERYONE_AT = ACE_EVERYONE;

/** Rights the owner@ allow entry always carries on top of r/w/x: 0x1E0198. */
export const TRIVIAL_OWNER_BASE =
  ACE_WRITE_ATTRIBUTES | ACE_WRITE_OWNER | ACE_WRITE_ACL | ACE_WRITE_NAMED_ATTRS |
  ACE_READ_ACL | ACE_READ_ATTRIBUTES | ACE_READ_NAMED_ATTRS | ACE_SYNCHRONIZE;
/** Rights the group@ and everyone@ allow entries always carry: 0x120088. */
export const TRIVIAL_OTHERS_BASE = ACE_READ_ACL | ACE_READ_ATTRIBUTES | ACE_READ_NAMED_ATTRS | ACE_SYNCHRONIZE;

// zfs_ace_hdr_t, zfs_ace_t and zfs_object_ace_t sizes.
export const ZFS_ACE_HDR_SIZE = 8;
export const ZFS_ACE_SIZE = 16;
export const ZFS_OBJECT_ACE_SIZE = 48;

export interface ZfsAce {
  type: number;
  flags: number;
  mask: number;
  /** FUID of a named user or group; absent for owner@/group@/everyone@ entries. */
  who?: bigint;
  /** Object ACE types (5..8) only: 16-byte object type and inherited object type. */
  objectType?: Uint8Array;
  inheritedObjectType?: Uint8Array;
}

export interface ZnodeAcl {
  /** DACL_ACES attribute value: the entries back to back, little-endian. */
  aces: Uint8Array;
  /** DACL_COUNT attribute value (number of entries, not bytes). */
  count: number;
  /**
   * The ZPL_FLAGS bits the ACL decides, nothing else (see ACL_DECIDED_PFLAGS):
   * ZFS_ACL_TRIVIAL always (nothing inherited), ZFS_ACL_AUTO_INHERIT for
   * directories, ZFS_NO_EXECS_DENIED iff owner, group and other may all
   * execute. zfs_mknode ORs these with ZNODE_BASE_PFLAGS (and ZFS_PROJID
   * when project quota is enabled).
   */
  pflags: bigint;
}

export type AclPlatform = 'linux' | 'freebsd';

export interface AclOptions {
  /**
   * Whose OpenZFS to imitate. They differ only for directories: Linux adds
   * ACE_DELETE_CHILD to every write grant or deny, FreeBSD's
   * acl_trivial_access_masks ignores the directory flag. Default 'linux'.
   */
  platform?: AclPlatform;
}

/** On-disk size of one ACE in the FUID format (zfs_ace_fuid_size). */
export function aceSize(type: number, flags: number): number {
  switch (type) {
    case ACE_ACCESS_ALLOWED_OBJECT_ACE_TYPE:
    case ACE_ACCESS_DENIED_OBJECT_ACE_TYPE:
    case ACE_SYSTEM_AUDIT_OBJECT_ACE_TYPE:
    case ACE_SYSTEM_ALARM_OBJECT_ACE_TYPE:
      return ZFS_OBJECT_ACE_SIZE;
    case ACE_ACCESS_ALLOWED_ACE_TYPE:
    case ACE_ACCESS_DENIED_ACE_TYPE: {
      // Only allow/deny entries for the three special principals drop the
      // FUID; audit/alarm entries keep it whatever their flags say.
      const who = flags & ACE_TYPE_FLAGS;
      if (who === OWNER_AT || who === GROUP_AT || who === EVERYONE_AT) return ZFS_ACE_HDR_SIZE;
      return ZFS_ACE_SIZE;
    }
    default:
      return ZFS_ACE_SIZE;
  }
}

function checkU(v: number, bits: 16 | 32, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) throw new RangeError(`ACE ${what} ${v} is not a uint${bits}`);
}

/** DACL_ACES bytes for a list of entries. */
export function encodeAces(aces: readonly ZfsAce[]): Uint8Array {
  let total = 0;
  for (const a of aces) {
    checkU(a.type, 16, 'type');
    checkU(a.flags, 16, 'flags');
    checkU(a.mask, 32, 'mask');
    total += aceSize(a.type, a.flags);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const a of aces) {
    const size = aceSize(a.type, a.flags);
    u16le(out, off, a.type);
    u16le(out, off + 2, a.flags);
    u32le(out, off + 4, a.mask);
    if (size >= ZFS_ACE_SIZE) {
      if (a.who === undefined) throw new RangeError(`ACE type ${a.type} flags 0x${a.flags.toString(16)} needs a FUID`);
      u64le(out, off + 8, a.who);
    } else if (a.who !== undefined) {
      // Silently dropping it would make decode(encode(x)) differ from x.
      throw new RangeError('owner@/group@/everyone@ allow/deny entries have no FUID');
    }
    if (size === ZFS_OBJECT_ACE_SIZE) {
      for (const [field, at] of [[a.objectType, 16], [a.inheritedObjectType, 32]] as const) {
        if (field === undefined) continue;
        if (field.length !== 16) throw new RangeError('object ACE GUIDs are 16 bytes');
        out.set(field, off + at);
      }
    }
    off += size;
  }
  return out;
}

/**
 * Entries of a DACL_ACES value. Strict, because the verify tool uses it to
 * catch inconsistent images: the count must consume the bytes exactly.
 */
export function decodeAces(bytes: Uint8Array, count: number): ZfsAce[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`bad ACE count ${count}`);
  const aces: ZfsAce[] = [];
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + ZFS_ACE_HDR_SIZE > bytes.length) {
      throw new RangeError(`ACE ${i} of ${count} starts at byte ${off}, past the ${bytes.length}-byte ACL`);
    }
    const type = rd16le(bytes, off);
    const flags = rd16le(bytes, off + 2);
    const mask = rd32le(bytes, off + 4);
    const size = aceSize(type, flags);
    if (off + size > bytes.length) {
      throw new RangeError(`ACE ${i} (type ${type}, ${size} bytes) overruns the ${bytes.length}-byte ACL`);
    }
    const ace: ZfsAce = { type, flags, mask };
    if (size >= ZFS_ACE_SIZE) ace.who = rd64le(bytes, off + 8);
    if (size === ZFS_OBJECT_ACE_SIZE) {
      ace.objectType = bytes.slice(off + 16, off + 32);
      ace.inheritedObjectType = bytes.slice(off + 32, off + 48);
    }
    aces.push(ace);
    off += size;
  }
  if (off !== bytes.length) {
    throw new RangeError(`${count} ACEs use ${off} bytes but the ACL has ${bytes.length}`);
  }
  return aces;
}

interface TrivialMasks {
  allow0: number;
  deny1: number;
  deny2: number;
  owner: number;
  group: number;
  everyone: number;
}

// Permission bit b of the triplet at `shift` (6 owner, 3 group, 0 other).
const R = 4;
const W = 2;
const X = 1;

function trivialMasks(perm: number, isDir: boolean, platform: AclPlatform): TrivialMasks {
  const writeMask = ACE_WRITE_DATA | ACE_APPEND_DATA | (isDir && platform === 'linux' ? ACE_DELETE_CHILD : 0);
  const rights: Array<[number, number]> = [
    [R, ACE_READ_DATA],
    [W, writeMask],
    [X, ACE_EXECUTE],
  ];
  const u = (perm >> 6) & 7;
  const g = (perm >> 3) & 7;
  const o = perm & 7;
  const m: TrivialMasks = {
    allow0: 0,
    deny1: 0,
    deny2: 0,
    owner: TRIVIAL_OWNER_BASE,
    group: TRIVIAL_OTHERS_BASE,
    everyone: TRIVIAL_OTHERS_BASE,
  };
  for (const [bit, ace] of rights) {
    const hasU = (u & bit) !== 0;
    const hasG = (g & bit) !== 0;
    const hasO = (o & bit) !== 0;
    // group@ deny below would also hit an owner who is in the group, so the
    // owner gets the right back first.
    if (hasU && !hasG && hasO) m.allow0 |= ace;
    // Allow entries are additive, so a right the owner lacks but group or
    // everyone has must be denied to owner@ before those allows.
    if (!hasU && (hasG || hasO)) m.deny1 |= ace;
    if (!hasG && hasO) m.deny2 |= ace;
    if (hasU) m.owner |= ace;
    if (hasG) m.group |= ace;
    if (hasO) m.everyone |= ace;
  }
  return m;
}

/**
 * What OpenZFS writes as DACL_COUNT/DACL_ACES, and the ACL-derived flags, for
 * a new object with permission bits `mode` (0..0o7777; setuid, setgid and
 * sticky do not affect the ACL) whose parent has no inheritable ACEs.
 * Symlinks should pass 0o777, as Linux OpenZFS creates them with that mode.
 */
// (an array by mode, kind and platform, not a Map: the ZPL writer asks two
// or three times per object)
const aclMemo: Array<ZnodeAcl | undefined> = new Array(0o40000).fill(undefined);
// (a default of `{}` was a new object per call: ~15 MB of /usr's objects pass)
const NO_ACL_OPTIONS: AclOptions = Object.freeze({});
export function aclForMode(mode: number, kind: 'dir' | 'other', opts: AclOptions = NO_ACL_OPTIONS): ZnodeAcl {
  const key = Number.isInteger(mode) && mode >= 0 && mode <= 0o7777 ? mode | (kind === 'dir' ? 0o10000 : 0) | (opts.platform === 'freebsd' ? 0o20000 : 0) : -1;
  const hit = key >= 0 ? aclMemo[key] : undefined;
  if (hit) return hit;
  const r = aclForModeUncached(mode, kind, opts);
  if (key >= 0 && (opts.platform === undefined || opts.platform === 'linux' || opts.platform === 'freebsd')) aclMemo[key] = r;
  return r;
}
function aclForModeUncached(mode: number, kind: 'dir' | 'other', opts: AclOptions = {}): ZnodeAcl {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new RangeError(`mode ${mode} is not in 0..0o7777 (pass permission bits, not st_mode)`);
  }
  if (kind !== 'dir' && kind !== 'other') throw new RangeError(`bad object kind ${String(kind)}`);
  const platform = opts.platform ?? 'linux';
  if (platform !== 'linux' && platform !== 'freebsd') throw new RangeError(`bad platform ${String(platform)}`);
  const isDir = kind === 'dir';
  const m = trivialMasks(mode & 0o777, isDir, platform);

  const aces: ZfsAce[] = [];
  if (m.allow0) aces.push({ type: ACE_ACCESS_ALLOWED_ACE_TYPE, flags: OWNER_AT, mask: m.allow0 });
  if (m.deny1) aces.push({ type: ACE_ACCESS_DENIED_ACE_TYPE, flags: OWNER_AT, mask: m.deny1 });
  if (m.deny2) aces.push({ type: ACE_ACCESS_DENIED_ACE_TYPE, flags: GROUP_AT, mask: m.deny2 });
  aces.push({ type: ACE_ACCESS_ALLOWED_ACE_TYPE, flags: OWNER_AT, mask: m.owner });
  aces.push({ type: ACE_ACCESS_ALLOWED_ACE_TYPE, flags: GROUP_AT, mask: m.group });
  aces.push({ type: ACE_ACCESS_ALLOWED_ACE_TYPE, flags: EVERYONE_AT, mask: m.everyone });

  let pflags = ZFS_ACL_TRIVIAL;
  if (isDir) pflags |= ZFS_ACL_AUTO_INHERIT;
  // zfs_mode_compute's verdict on this ACL reduces to "all three x bits".
  if ((mode & 0o111) === 0o111) pflags |= ZFS_NO_EXECS_DENIED;

  return { aces: encodeAces(aces), count: aces.length, pflags };
}

export interface ModeFromAcl {
  /** rwx bits (0..0o777) the ACL grants, as OpenZFS reports them in MODE. */
  perm: number;
  /** Whether OpenZFS would set ZFS_NO_EXECS_DENIED for this ACL. */
  noExecsDenied: boolean;
}

/**
 * The permission bits and NO_EXECS_DENIED verdict OpenZFS derives from an ACL
 * (zfs_mode_compute): the first entry mentioning a right for a principal
 * decides it. For the verify tool, to check MODE and ZPL_FLAGS against
 * DACL_ACES. `uid`/`gid` are the object's owner FUIDs, which let named
 * entries for the owner count like owner@/group@.
 */
export function modeFromAces(aces: readonly ZfsAce[], uid?: bigint, gid?: bigint): ModeFromAcl {
  let perm = 0;
  let seen = 0;
  let execDeniedToSomeone = false;
  const decide = (bitsToSet: number, allow: boolean): void => {
    for (const b of [0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 0o4, 0o2, 0o1]) {
      if ((bitsToSet & b) === 0 || (seen & b) !== 0) continue;
      seen |= b;
      if (allow) perm |= b;
    }
  };
  for (const a of aces) {
    if (!validForModeCompute(a.type, a.flags)) continue;
    if (a.flags & ACE_INHERIT_ONLY_ACE) continue;
    const who = a.flags & ACE_TYPE_FLAGS;
    const allow = a.type === ACE_ACCESS_ALLOWED_ACE_TYPE;
    const rwx = (a.mask & ACE_READ_DATA ? R : 0) | (a.mask & ACE_WRITE_DATA ? W : 0) | (a.mask & ACE_EXECUTE ? X : 0);
    if (who === ACE_OWNER || (who === 0 && uid !== undefined && a.who === uid)) {
      decide(rwx << 6, allow);
    } else if (who === GROUP_AT || (who === ACE_IDENTIFIER_GROUP && gid !== undefined && a.who === gid)) {
      decide(rwx << 3, allow);
    } else if (who === ACE_EVERYONE) {
      decide((rwx << 6) | (rwx << 3) | rwx, allow);
    } else if (a.mask & ACE_EXECUTE && a.type === ACE_ACCESS_DENIED_ACE_TYPE) {
      execDeniedToSomeone = true;
    }
  }
  const allExec = (seen & 0o111) === 0o111 && (perm & 0o111) === 0o111;
  return { perm, noExecsDenied: allExec && !execDeniedToSomeone };
}

// zfs_acl_valid_ace_type: which entries zfs_mode_compute looks at.
function validForModeCompute(type: number, flags: number): boolean {
  switch (type) {
    case ACE_ACCESS_ALLOWED_ACE_TYPE:
    case ACE_ACCESS_DENIED_ACE_TYPE:
    case ACE_SYSTEM_AUDIT_ACE_TYPE:
    case ACE_SYSTEM_ALARM_ACE_TYPE: {
      const who = flags & ACE_TYPE_FLAGS;
      return who === ACE_OWNER || who === GROUP_AT || who === ACE_EVERYONE || who === 0 || who === ACE_IDENTIFIER_GROUP;
    }
    default:
      return type <= ACE_MAX_TYPE;
  }
}
