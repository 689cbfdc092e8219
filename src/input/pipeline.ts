// Every input, one tree: the first input is a directory, a tarball (file or
// "-") or a manifest; further inputs are directories and tarballs merged
// into it in order (as makefs merges extra directories into a directory or
// manifest; base.txz then kernel.txz is a FreeBSD system). Then, in
// this order: the -F spec (and -x), --all-root/--force-uid/--force-gid, the
// SOURCE_DATE_EPOCH clamp, and the file data written in tree order (see
// prewrite.ts). Everything that can be checked before the image file exists
// (inputs, -N, owner names, the spec file) is checked in openInputs.

import { closeSync, createReadStream, openSync, readFileSync, readSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { InputContext, TreeSource } from '../image.js';
import { fsUserError, UserError } from '../util/errors.js';
import { decompressorMissing } from './decompress.js';
import { pathKind, peek, sniff, sniffFile, type TarCompression } from './detect.js';
import { isTarFile, isTarPull, prefixed, pullHead, pullStream, type TarInput, type TarPull } from './tar-feed.js';
import { readManifest } from './manifest.js';
import { wholeText, type ChunkSource, type Warn } from './mtree.js';
import { forceOwners, ownerOverride } from './owners.js';
import { hostUserDb, resolveGroup, resolveUser, userDbFromDir, type UserDb } from './passwd.js';
import { HeldFiles } from './held-files.js';
import { threadedReads } from './host-reader.js';
import { prewriteData, Prewriter } from './prewrite.js';
import { applySpec } from './spec.js';
import { clampTimes, type TimePolicy } from './times.js';
import type { DataSource, Dirent, InputTotals, Inode } from './tree.js';
import { InputMerger, walkCounted } from './walk.js';
import { applyHostXattrs, startHostXattrs } from './xattrs.js';

export interface InputPlan {
  /** Read the staged files' extended attributes (directory inputs). */
  xattrs?: boolean;
  /** Positional inputs: the first may be a directory, tarball, manifest or "-"; the rest are directories or tarballs. */
  inputs: string[];
  policy: TimePolicy;
  /** -N. */
  userDbDir?: string;
  /** How many times -D was given. */
  duplicates: number;
  /** -F and -x. */
  specFile?: string;
  onlySpec: boolean;
  allRoot: boolean;
  /** --force-uid/--force-gid: a number or a name. */
  forceUid?: string;
  forceGid?: string;
  warn: Warn;
  /** Standard input (tests pass their own; the build thread pulls it: tar-feed.ts). */
  stdin?: Readable | TarPull;
}

type Primary =
  | { kind: 'dir' }
  | { kind: 'manifest'; name: string; text: ManifestText }
  | { kind: 'tar'; compression: TarCompression | null; name: string; source: TarInput };

const STDIN_NAME = '(stdin)';

async function readAll(stream: Readable, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of stream) chunks.push(c as Buffer);
  } catch (err) {
    throw fsUserError(name, err);
  }
  return Buffer.concat(chunks);
}

/** A manifest's text as the reader takes it, and what to do once it is read (or failed). */
interface ManifestText {
  next: ChunkSource;
  close(): void;
}

/** How much of a manifest file is read at a time. */
const MANIFEST_CHUNK = 1 << 20;

/**
 * A manifest file, read a piece at a time as it is parsed (a METALOG of
 * 100k+ lines is tens of MB). Opened at the first read (sniffing it has
 * shown it can be read), so a build that stops before leaves nothing open.
 */
function manifestFile(path: string): ManifestText {
  let fd = -1;
  let done = false;
  let buf: Buffer | undefined;
  const close = (): void => {
    if (fd >= 0) closeSync(fd);
    fd = -1;
    done = true;
  };
  return {
    next: () => {
      if (done) return null;
      buf ??= Buffer.allocUnsafe(MANIFEST_CHUNK);
      let n: number;
      try {
        if (fd < 0) fd = openSync(path, 'r');
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        throw fsUserError(path, err);
      }
      if (n > 0) return buf.subarray(0, n);
      close();
      return null;
    },
    close,
  };
}

/**
 * What an input read from its start says it is by its first bytes `head`
 * (none: an empty tarball): a tarball read from `source`, or a manifest
 * read whole from `asStream()`.
 */
async function sniffedPrimary(head: Buffer, name: string, source: TarInput, asStream: () => Readable): Promise<Primary> {
  const what = head.length === 0 ? { kind: 'tar' as const, compression: null } : sniff(head);
  if (what.kind === 'manifest') return { kind: 'manifest', name, text: { next: wholeText(await readAll(asStream(), name)), close() {} } };
  return { ...what, name, source };
}

async function fromStream(stream: Readable, name: string): Promise<Primary> {
  const { head, rest } = await peek(stream, 512);
  return sniffedPrimary(head, name, rest, () => rest);
}

/** fromStream for standard input the build thread pulls (tar-feed.ts). */
async function fromPull(src: TarPull, name: string): Promise<Primary> {
  let head: Buffer;
  try {
    head = await pullHead(src, 512);
  } catch (err) {
    src.close();
    throw fsUserError(name, err);
  }
  const all = prefixed(head, src);
  return sniffedPrimary(head, name, all, () => pullStream(all));
}

function closeTarInput(s: TarInput): void {
  if (isTarPull(s)) s.close();
  else if (!isTarFile(s)) s.destroy();
}

/** An input after the first: a staging directory or a tarball (file), merged into the tree in order. */
type LaterInput = { kind: 'dir'; path: string } | { kind: 'tar'; path: string; compression: TarCompression | null };

function laterInput(x: string): LaterInput {
  if (x === '-') throw new UserError('-: only the first input may be standard input');
  const what = pathKind(x);
  if (what === 'dir') return { kind: 'dir', path: x };
  if (what === 'stream') throw new UserError(`${x}: only the first input may be a pipe or device`);
  const content = sniffFile(x);
  if (content.kind === 'manifest') {
    if (isEmptyFile(x)) throw new UserError(`${x}: empty file, not a tarball (later inputs are directories or tarballs)`);
    throw new UserError(`${x}: only the first input may be a manifest (later ones are directories or tarballs)`);
  }
  return { ...content, path: x };
}

function isEmptyFile(path: string): boolean {
  try {
    return statSync(path).size === 0;
  } catch (err) {
    throw fsUserError(path, err);
  }
}

async function openPrimary(input: string, plan: InputPlan): Promise<Primary> {
  if (input === '-') {
    const stdin = plan.stdin ?? process.stdin;
    return isTarPull(stdin) ? fromPull(stdin, STDIN_NAME) : fromStream(stdin, STDIN_NAME);
  }
  const what = pathKind(input);
  if (what === 'dir') return { kind: 'dir' };
  if (what === 'stream') return fromStream(createReadStream(input), input);
  const content = sniffFile(input);
  if (content.kind === 'manifest') return { kind: 'manifest', name: input, text: manifestFile(input) };
  return { ...content, name: input, source: { file: input } };
}

/**
 * Check the inputs and options and return the tree source makeImage consumes.
 * `onTree` sees the tree once its shape is final, before the rest of its
 * file data is written (a progress display takes the total of the file
 * sizes from it; a single staging directory's data is written while it is
 * walked, so some of it may be in the image already).
 */
export async function openInputs(
  plan: InputPlan,
  opts: { prewrite: boolean; onTree?: (root: Inode, totals?: InputTotals) => void },
): Promise<TreeSource> {
  if (plan.inputs.length === 0) throw new UserError('no input given');
  const [first, ...extras] = plan.inputs as [string, ...string[]];
  const later = extras.map(laterInput);
  const users: UserDb = plan.userDbDir !== undefined ? userDbFromDir(plan.userDbDir) : hostUserDb();
  const override = ownerOverride(
    plan.allRoot,
    plan.forceUid === undefined ? undefined : resolveUser(users, plan.forceUid, '--force-uid'),
    plan.forceGid === undefined ? undefined : resolveGroup(users, plan.forceGid, '--force-gid'),
  );
  let spec: Buffer | undefined;
  if (plan.specFile !== undefined) {
    try {
      spec = readFileSync(plan.specFile);
    } catch (err) {
      throw fsUserError(plan.specFile, err);
    }
  }
  const primary = await openPrimary(first, plan);
  for (const [name, compression] of [
    ...(primary.kind === 'tar' ? [[primary.name, primary.compression] as const] : []),
    ...later.flatMap((x) => (x.kind === 'tar' ? [[x.path, x.compression] as const] : [])),
  ]) {
    const missing = decompressorMissing(compression);
    if (missing !== null) {
      if (primary.kind === 'tar') closeTarInput(primary.source);
      throw new UserError(`${name}: ${missing}`);
    }
  }
  if (primary.kind === 'manifest' && spec !== undefined) {
    throw new UserError(`-F: a spec applies to directory and tarball inputs; ${primary.name} is a manifest (put the metadata in it)`);
  }

  return async (ctx: InputContext): Promise<Inode> => {
    let root: Inode;
    // counted by the walk, for onTree while nothing has reshaped the tree
    let walked: InputTotals | undefined;
    // One staging directory, nothing that reshapes the tree later: its file
    // data is written while it is walked (the same order, the same image).
    let alongside: Prewriter | undefined;
    const overlap = opts.prewrite && primary.kind === 'dir' && plan.inputs.length === 1 && spec === undefined;
    // files the walk opens for the data written alongside, when the build
    // thread reads them (see HeldFiles)
    const held = overlap && !threadedReads() ? new HeldFiles() : undefined;
    // The directories up to the first later tarball are walked as one;
    // what follows is merged in order once they are.
    const firstTar = later.findIndex((x) => x.kind === 'tar');
    const walkedTogether = firstTar < 0 ? later : later.slice(0, firstTar);
    const mergedAfter = firstTar < 0 ? [] : later.slice(firstTar);
    const readTarball = async (source: TarInput, name: string, compression: TarCompression | null): Promise<Inode> => {
      // tar-stream and its dependencies load only for a tarball: ~40 ms
      // of a directory build's start-up otherwise
      const { readTar } = await import('./tar.js');
      return readTar(source, ctx, {
        name, compression, policy: plan.policy,
        users: plan.userDbDir !== undefined ? users : undefined, warn: plan.warn,
      });
    };
    // directory inputs after the first, whose xattrs getfattr reads, and
    // their places in the merge (the first input is 0)
    const laterDirs = later.filter((x) => x.kind === 'dir').map((x) => x.path);
    const laterDirInputs = later.flatMap((x, i) => (x.kind === 'dir' ? [i + 1] : []));
    const applyXattrs = (merger: InputMerger, dirs: string[], inputs: number[], dumps: Parameters<typeof applyHostXattrs>[2]): void => {
      const owners = { inputs, originOf: (e: Dirent) => merger.originOf(e) };
      if (applyHostXattrs(merger.root, dirs, dumps, owners) === null) plan.warn('getfattr is not installed (the attr package): extended attributes of the input are not stored; -o xattrs=off leaves them out without this warning');
    };
    // one merger for the whole input list: hard links span every
    // directory input, and a clash names the input that holds the other entry
    const mergeLater = async (merger: InputMerger, inputs: LaterInput[]): Promise<void> => {
      for (const x of inputs) {
        if (x.kind === 'dir') merger.directory(x.path);
        else merger.tree(await readTarball({ file: x.path }, x.path, x.compression), x.path);
      }
    };
    try {
      switch (primary.kind) {
        case 'dir': {
          // getfattr reads the xattrs in processes of its own while we walk
          const dirInputs = [first, ...laterDirs];
          const scan = plan.xattrs ? startHostXattrs(dirInputs) : undefined;
          let merger: InputMerger;
          // A file that cannot be read, or an image that fills up, while the
          // walk goes on: the walk finishes first (its own errors come first,
          // as without the overlap, and the totals are known to the message).
          let dataError: { e: unknown } | undefined;
          const pump = (): void => {
            if (dataError !== undefined || alongside === undefined) return;
            try {
              alongside.pump();
            } catch (e) {
              dataError = { e };
              // (the walk goes on to the end, but no more data is read)
              held?.stop();
            }
          };
          const onDirectory = !overlap ? undefined : (dir: Inode): void => {
            alongside ??= new Prewriter(dir, ctx, { complete: false, held });
            alongside.walked(dir);
            pump();
          };
          try {
            ({ root, totals: walked, merger } = walkCounted([first, ...walkedTogether.map((x) => x.path)], {
              timestamp: plan.policy.stamp, onDirectory, onTick: overlap ? pump : undefined, held,
            }));
            if (mergedAfter.length > 0) {
              await mergeLater(merger, mergedAfter);
              walked = undefined; // counted before the tarballs came in
            }
          } catch (err) {
            scan?.cancel();
            throw err;
          }
          if (alongside !== undefined) {
            // the tree's shape is final: its totals, then the rest of its
            // data (while getfattr finishes, if it has not)
            opts.onTree?.(root, walked);
            if (dataError !== undefined) {
              scan?.cancel();
              throw dataError.e;
            }
            alongside.finish();
          }
          // (no sortTree: a walk hands every directory over in byte order,
          // merged ones included, and checking that again cost ~0.4 s on
          // /usr, a Buffer per name, on the one thread the build waits for)
          if (scan) {
            // while getfattr finishes (if it has not), the copies' table is
            // kept fed: the image writer would run dry in ~0.1 s otherwise
            let fedError: { e: unknown } | undefined;
            const feed = setInterval(() => {
              if (fedError !== undefined) return;
              try { ctx.collectCopies?.(); } catch (e) { fedError = { e }; }
            }, 20);
            let dumps;
            try {
              dumps = await scan.done;
            } finally {
              clearInterval(feed);
            }
            if (fedError !== undefined) throw fedError.e;
            applyXattrs(merger, dirInputs, [0, ...laterDirInputs], dumps);
          }
          break;
        }
        default: {
          // a manifest or tarball keeps its own xattrs; later directories'
          // are read by getfattr as a directory input's are
          const scan = plan.xattrs && laterDirs.length > 0 ? startHostXattrs(laterDirs) : undefined;
          const merger = new InputMerger({ timestamp: plan.policy.stamp });
          try {
            if (primary.kind === 'manifest') {
              try {
                root = readManifest(primary.text.next, {
                  name: primary.name, policy: plan.policy, users, duplicates: plan.duplicates, warn: plan.warn, tick: ctx.tick?.bind(ctx),
                });
              } finally {
                primary.text.close();
              }
            } else {
              root = await readTarball(primary.source, primary.name, primary.compression);
            }
            merger.tree(root, primary.name);
            await mergeLater(merger, later);
          } catch (err) {
            scan?.cancel();
            throw err;
          }
          if (scan) applyXattrs(merger, laterDirs, laterDirInputs, await scan.done);
        }
      }
      if (spec !== undefined) {
        applySpec(root, spec, {
          name: plan.specFile!, onlySpec: plan.onlySpec, policy: plan.policy, users, warn: plan.warn,
          discard: (s) => ctx.discard(s),
        });
      }
      forceOwners(root, override);
      clampTimes(root, plan.policy);
      if (alongside === undefined) {
        opts.onTree?.(root, spec === undefined ? walked : undefined);
        if (opts.prewrite) prewriteData(root, ctx);
      }
      return root;
    } finally {
      alongside?.close();
      held?.closeAll();
    }
  };
}

/**
 * Run a tree source without an image: file data is collected in memory.
 * For stand-in writers (tests) that want a finished tree.
 */
export async function treeInMemory(source: TreeSource): Promise<Inode> {
  if (typeof source !== 'function') return source;
  return source({
    beginFile(size: number) {
      const chunks: Uint8Array[] = [];
      return {
        write: (c: Uint8Array) => void chunks.push(Uint8Array.from(c)),
        end: (): DataSource => ({ kind: 'bytes', data: Buffer.concat(chunks, size) }),
      };
    },
    discard() {},
  });
}
