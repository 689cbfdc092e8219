// Command line -> what to do. Pure apart from -T (which may stat a file), so
// every option and error can be tested without walking or writing anything.
// The surface is makefs(8)'s, restricted to what the zfs backend uses; the
// generic makefs options that the zfs backend ignores are accepted and
// ignored too, so existing build scripts (FreeBSD's release tooling passes
// -B and -D) run unchanged.

import { Command, CommanderError, Option } from 'commander';
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
  /** Staging directories, first one is the base (makefs order). */
  inputs: string[];
  options: ImageOptions;
  timestamp?: Timespec;
  /** -q: do not print warnings. */
  quiet: boolean;
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
  B?: string;
  O?: string;
  F?: string;
  N?: string;
  x?: boolean;
}

const USAGE =
  '[-t zfs] [-s size] [-M min] [-m max] [-T timestamp] [-o opt=val,...]... [-v] [-q] image directory [directory ...]';

const ENDIANS = new Set(['be', '4321', 'big', 'le', '1234', 'little']);

function zfsOptionHelp(): string {
  const width = Math.max(...FS_OPTION_HELP.map(([k]) => k.length));
  return [
    '',
    'zfs options (-o, comma-separated, repeatable):',
    ...FS_OPTION_HELP.map(([k, d]) => `  ${k.padEnd(width)}  ${d}`),
    '',
    'Sizes take the suffixes b (512), k, m, g, t, w (4) and products such as 2x4k.',
    'Accepted for makefs compatibility and ignored: -B -b -D -d -f -p -R -S -Z, -O 0.',
  ].join('\n');
}

function program(sizes: Array<[SizeFlag, string]>, out: { text: string }): Command {
  const record = (flag: SizeFlag) => (v: string) => {
    sizes.push([flag, v]);
    return v;
  };
  const cmd = new Command('tsmakefs')
    .usage(USAGE)
    .description('Write a ZFS pool image from one or more staging directories (makefs -t zfs compatible).')
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
    .option('-q, --quiet', 'do not print warnings')
    .addOption(new Option('-B <endian>').hideHelp())
    .addOption(new Option('-O <offset>').hideHelp())
    .addOption(new Option('-F <specfile>').hideHelp())
    .addOption(new Option('-N <userdb-dir>').hideHelp())
    .addOption(new Option('-x').hideHelp())
    .argument('<image>', 'image file to write')
    .argument('<directory...>', 'staging directories, merged in order')
    .addHelpText('after', zfsOptionHelp());
  for (const flags of ['-b <free-blocks>', '-f <free-files>', '-R <roundup>', '-S <sector-size>', '-d <debug-mask>', '-D', '-Z', '-p']) {
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
  if (max === undefined) throw new UserError('an image size must be specified with -s');
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
  if (raw.F !== undefined) throw new UserError('-F: mtree spec files are not supported yet');
  if (raw.N !== undefined) throw new UserError('-N: user databases are not supported yet');
  if (raw.x === true) throw new UserError('-x: requires -F, which is not supported yet');
}

export function parseArgs(argv: readonly string[]): ParsedInvocation {
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
  return { kind: 'build', inputs, options, timestamp, quiet: raw.quiet === true };
}
