// Command line -> what to do. Pure apart from -T (which may stat a file) and
// SOURCE_DATE_EPOCH (read from the environment given), so every option and
// error can be tested without walking or writing anything. The surface is
// makefs(8)'s, restricted to what the zfs backend uses; the generic makefs
// options that the zfs backend ignores are accepted and ignored too, so
// existing build scripts (FreeBSD's release tooling passes -B) run unchanged.
// Beyond makefs: a tarball (or "-") as the input, and the owner overrides
// --all-root, --force-uid and --force-gid, named as in mksquashfs and
// mkfs.erofs, whose users know them from the same no-root builds.

import { Command, CommanderError, Option } from 'commander';
import { parseSourceDateEpoch } from '../input/times.js';
import type { Timespec } from '../input/tree.js';
import type { ImageOptions } from '../options.js';
import { UserError } from '../util/errors.js';
import { formatSize, parseSize } from '../util/size.js';
import { FS_OPTION_HELP, parseFsOptions } from './fsoptions.js';
import { parseTimestamp } from './timestamp.js';
import { packageVersion } from './version.js';

/** SPA_MINDEVSIZE: OpenZFS refuses smaller vdevs. */
export const MIN_IMAGE_SIZE = 64 * 2 ** 20;

export interface BuildInvocation {
  kind: 'build';
  /**
   * Inputs in makefs order: the first is a staging directory, a tarball
   * (plain or compressed, "-" for standard input) or an mtree manifest; further
   * ones are directories or tarballs merged into it.
   */
  inputs: string[];
  options: ImageOptions;
  timestamp?: Timespec;
  /** SOURCE_DATE_EPOCH, if set (src/input/times.ts says what it does). */
  sourceDateEpoch?: Timespec;
  /** -q: do not print warnings. */
  quiet: boolean;
  /** --json: print the summary as one JSON object on stdout. */
  json?: boolean;
  /** -F: mtree spec laid over the tree. */
  specFile?: string;
  /** -x: drop what the -F spec does not list. */
  onlySpec?: boolean;
  /** -N: directory holding the image's master.passwd (or passwd) and group. */
  userDbDir?: string;
  /** -D, counted: 1 makes duplicate manifest entries warnings, 2 silences them. */
  duplicates?: number;
  /** --all-root: every inode owned by 0:0. */
  allRoot?: boolean;
  /** --force-uid / --force-gid: every inode's owner / group (number or name). */
  forceUid?: string;
  forceGid?: string;
}

export type ParsedInvocation =
  | { kind: 'help'; text: string }
  | { kind: 'version'; text: string }
  | BuildInvocation;

type SizeFlag = '-s' | '-M' | '-m';

interface Raw {
  type: string;
  option?: string[];
  timestamp?: string;
  verbose?: boolean;
  quiet?: boolean;
  json?: boolean;
  B?: string;
  O?: string;
  F?: string;
  N?: string;
  x?: boolean;
  D?: number;
  allRoot?: boolean;
  forceUid?: string;
  forceGid?: string;
}

const USAGE =
  '[-t zfs] [-s size] [-M min] [-m max] [-T timestamp] [-o opt=val,...]... [-F specfile [-x]] [-N userdb-dir] [-D]\n' +
  '                [--all-root] [--force-uid uid] [--force-gid gid] [-v] [-q] [--json]\n' +
  '                image directory|tarball|manifest|- [directory ...]';

const ENDIANS = new Set(['be', '4321', 'big', 'le', '1234', 'little']);

function zfsOptionHelp(): string {
  const width = Math.max(...FS_OPTION_HELP.map(([k]) => k.length));
  return [
    '',
    'zfs options (-o, comma-separated, repeatable):',
    ...FS_OPTION_HELP.map(([k, d]) => `  ${k.padEnd(width)}  ${d}`),
    '',
    'Sizes take the suffixes b (512), k, m, g, t, w (4) and products such as 2x4k.',
    'The first input may be a directory, a tar archive (ustar, pax or GNU; plain,',
    'gzip, or bzip2, xz, zstd, lzip by the host\'s command; - reads standard input)',
    'or an mtree manifest such as FreeBSD\'s METALOG (file data is read relative to',
    'the current directory). Later inputs, directories or tarballs, are merged into',
    'it in order (same-named directories merge, the first one\'s attributes win).',
    'Times: -F spec times win, then -T, then each entry\'s own; entries without one',
    'get SOURCE_DATE_EPOCH (else 0); without -T, SOURCE_DATE_EPOCH also caps every time.',
    'Accepted for makefs compatibility and ignored: -B -b -d -f -p -R -S -Z, -O 0.',
  ].join('\n');
}

function program(sizes: Array<[SizeFlag, string]>, out: { text: string }): Command {
  const record = (flag: SizeFlag) => (v: string) => {
    sizes.push([flag, v]);
    return v;
  };
  const cmd = new Command('tsmakefs')
    .usage(USAGE)
    .description('Write a ZFS pool image from staging directories, a tarball or an mtree manifest (makefs -t zfs compatible).')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => { out.text += s; },
      writeErr: () => {}, // errors are rethrown as UserError and printed by main
      outputError: () => {},
    })
    .helpOption('-h, --help', 'show this help and exit')
    .version(packageVersion(), '--version', 'print the version and exit')
    .option('-t, --type <fstype>', 'file system type; only zfs', 'zfs')
    .option('-s, --size <size>', 'image size (sets both -M and -m)', record('-s'))
    .option('-M, --min-size <size>', 'minimum image size', record('-M'))
    .option('-m, --max-size <size>', 'maximum image size', record('-m'))
    .option('-T, --timestamp <epoch|file>', 'use this time (seconds, or a file\'s mtime) for every file')
    .option('-o, --option <opt=val,...>', 'zfs option(s), see below', (v: string, prev?: string[]) => [...(prev ?? []), v])
    .option('-v, --verbose', 'print a summary of the image')
    .option('-q, --quiet', 'do not print warnings (nor progress)')
    .option('--json', 'print a summary of the image as one JSON object on stdout')
    .addOption(new Option('-B <endian>').hideHelp())
    .addOption(new Option('-O <offset>').hideHelp())
    .option('-F <specfile>', 'mtree spec applied over a directory or tarball input (makefs -F)')
    .option('-x', 'with -F: leave out everything the spec does not list')
    .option('-N <userdb-dir>', 'resolve user and group names from <dir>/master.passwd (or passwd) and <dir>/group')
    .option('-D', 'duplicate manifest entries are warnings, not errors (twice: silent)', (_v: string, n?: number) => (n ?? 0) + 1)
    .option('--all-root', 'every file and directory owned by uid 0, gid 0')
    .option('--force-uid <uid>', 'every file and directory owned by this user (number or name)')
    .option('--force-gid <gid>', 'every file and directory in this group (number or name)')
    .argument('<image>', 'image file to write')
    .argument('<directory...>', 'a directory, tarball, manifest or - (stdin), then directories or tarballs to merge in')
    .addHelpText('after', zfsOptionHelp());
  for (const flags of ['-b <free-blocks>', '-f <free-files>', '-R <roundup>', '-S <sector-size>', '-d <debug-mask>', '-Z', '-p']) {
    cmd.addOption(new Option(flags).hideHelp());
  }
  return cmd;
}

/** -s, -M and -m in command-line order: -s sets both bounds, later flags override. */
function resolveSize(sizes: Array<[SizeFlag, string]>): Pick<ImageOptions, 'size' | 'minSize' | 'maxSize'> {
  let min: number | undefined;
  let max: number | undefined;
  let maxFlag: SizeFlag = '-s';
  let minFlag: SizeFlag = '-s';
  for (const [flag, text] of sizes) {
    const v = parseSize(text, flag);
    if (v < 1) throw new UserError(`${flag}: the size must be positive`);
    if (flag !== '-m') { min = v; minFlag = flag; }
    if (flag !== '-M') { max = v; maxFlag = flag; }
  }
  // no -s/-m: the smallest image that fits, plus the free margin (-o free=)
  if (max === undefined) return { size: undefined, minSize: min, maxSize: undefined };
  if (max < MIN_IMAGE_SIZE) {
    throw new UserError(`${maxFlag}: image size ${formatSize(max)} is below the minimum of ${formatSize(MIN_IMAGE_SIZE)}`);
  }
  if (min !== undefined && min > max) {
    throw new UserError(`${minFlag}: minimum size ${formatSize(min)} exceeds the maximum size ${formatSize(max)}`);
  }
  return { size: max, minSize: min, maxSize: max };
}

function checkCompat(raw: Raw): void {
  if (raw.B !== undefined && !ENDIANS.has(raw.B)) {
    throw new UserError(`-B: invalid endian '${raw.B}' (be, big, 4321, le, little or 1234)`);
  }
  // zfs images are always written in one byte order; the flag is only checked.
  if (raw.O !== undefined && parseSize(raw.O, '-O') !== 0) {
    throw new UserError('-O: writing at an offset is not supported');
  }
  if (raw.x === true && raw.F === undefined) throw new UserError('-x requires -F specfile');
}

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ParsedInvocation {
  const sizes: Array<[SizeFlag, string]> = [];
  const out = { text: '' };
  const cmd = program(sizes, out);
  try {
    cmd.parse([...argv], { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') return { kind: 'help', text: out.text };
    if (err.code === 'commander.version') return { kind: 'version', text: out.text };
    throw new UserError(`${err.message.replace(/^error: /, '')} (see tsmakefs --help)`);
  }
  const raw = cmd.opts<Raw>();
  if (raw.type !== 'zfs') throw new UserError(`-t: unsupported file system type '${raw.type}' (tsmakefs writes zfs only)`);
  checkCompat(raw);
  const [image, inputs] = cmd.processedArgs as [string, string[]];
  const zfs = parseFsOptions(raw.option ?? []);
  const timestamp = raw.timestamp === undefined ? undefined : parseTimestamp(raw.timestamp);
  const options: ImageOptions = {
    image,
    ...zfs,
    ...resolveSize(sizes),
    verbose: raw.verbose === true,
  };
  const inv: BuildInvocation = { kind: 'build', inputs, options, timestamp, quiet: raw.quiet === true };
  const sde = parseSourceDateEpoch(env['SOURCE_DATE_EPOCH']);
  if (sde !== undefined) inv.sourceDateEpoch = sde;
  if (raw.F !== undefined) inv.specFile = raw.F;
  if (raw.x === true) inv.onlySpec = true;
  if (raw.N !== undefined) inv.userDbDir = raw.N;
  if (raw.D !== undefined) inv.duplicates = raw.D;
  if (raw.allRoot === true) inv.allRoot = true;
  if (raw.json === true) inv.json = true;
  if (raw.forceUid !== undefined) inv.forceUid = nonEmpty(raw.forceUid, '--force-uid');
  if (raw.forceGid !== undefined) inv.forceGid = nonEmpty(raw.forceGid, '--force-gid');
  return inv;
}

function nonEmpty(v: string, flag: string): string {
  if (v === '') throw new UserError(`${flag}: a user or group (number or name) is required`);
  return v;
}
