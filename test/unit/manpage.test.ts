// tsmakefs.1 is written by hand; this keeps it current: every option that
// `tsmakefs --help` lists (the hidden makefs ones included), every -o key,
// every option of the verify/ls/cat subcommands, the exit statuses and the
// version must be in it, and groff must format it without a warning.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseArgs } from '../../src/cli/args.js';
import { FS_OPTION_HELP } from '../../src/cli/fsoptions.js';
import { INSPECT_COMMANDS, runInspect } from '../../src/cli/inspect.js';
import { EXIT_INTERNAL, EXIT_OK, EXIT_USER } from '../../src/cli/main.js';
import { InterruptedError } from '../../src/util/errors.js';
import { REPO_ROOT, which } from '../helpers/proc.js';

const MAN = join(REPO_ROOT, 'tsmakefs.1');
const source = readFileSync(MAN, 'utf8');
/** The page as text: roff escapes for '-', fonts and quotes taken out. */
const text = source
  .replace(/\\-/g, '-')
  .replace(/\\f[BIRP]/g, '')
  .replace(/\\\(dq/g, '"')
  .replace(/\\e/g, '\\');

/** The part of the page from the .SH heading `name` to the next one. */
function section(name: string): string {
  const start = text.indexOf(`\n.SH ${name}\n`);
  expect(start, `section ${name} is missing`).toBeGreaterThanOrEqual(0);
  const end = text.indexOf('\n.SH ', start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

/** Option words (-x, --long-name) of a usage or help text. */
function flagsOf(help: string): string[] {
  const flags = new Set<string>();
  for (const m of help.matchAll(/(?<![\w-])(--?[A-Za-z][\w-]*)/g)) flags.add(m[1]!);
  return [...flags];
}

function helpText(): string {
  const h = parseArgs(['--help']);
  if (h.kind !== 'help') throw new Error('--help did not give help');
  return h.text;
}

/** A flag is documented where it appears as a word of its own. */
const documented = (flag: string, where = text): boolean => new RegExp(`(?<![\\w-])${flag.replace(/[-]/g, '\\-')}(?![\\w-])`).test(where);

describe('tsmakefs.1', () => {
  test('documents every option of --help', () => {
    const flags = flagsOf(helpText());
    const missing = flags.filter((f) => !documented(f, section('OPTIONS')) && !documented(f, section('SYNOPSIS')));
    expect(flags.length).toBeGreaterThan(20);
    expect(missing).toEqual([]);
  });

  test('documents every -o key', () => {
    const zfs = section('ZFS OPTIONS');
    const missing = FS_OPTION_HELP.map(([k]) => /^[\w-]+/.exec(k)![0]).filter((k) => !new RegExp(`\\n\\.B[IR]? ${k}\\b`).test(zfs));
    expect(missing).toEqual([]);
  });

  test('documents the subcommands and each of their options', async () => {
    const sub = section('SUBCOMMANDS');
    for (const cmd of INSPECT_COMMANDS) {
      let out = '';
      const code = await runInspect([cmd, '--help'], { stdout: (t) => { out += t; }, stderr: () => {} });
      expect(code).toBe(0);
      expect(sub).toContain(`tsmakefs ${cmd}`);
      const missing = flagsOf(out).filter((f) => !documented(f, sub));
      expect(missing, `tsmakefs ${cmd}`).toEqual([]);
    }
  });

  test('documents every exit status', () => {
    const exit = section('EXIT STATUS');
    for (const status of [EXIT_OK, EXIT_USER, EXIT_INTERNAL, new InterruptedError('SIGINT').exitStatus, new InterruptedError('SIGTERM').exitStatus]) {
      expect(exit, `exit status ${status}`).toMatch(new RegExp(`\\n\\.B ${status}\\b`));
    }
  });

  test('carries the package version, and the sections a man page needs', () => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(source).toMatch(new RegExp(`^\\.TH TSMAKEFS 1 "[^"]*" "tsmakefs ${version.replace(/\./g, '\\.')}"`, 'm'));
    for (const s of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'ZFS OPTIONS', 'DATASETS', 'AUTOMATIC SIZE', 'EXAMPLES', 'EXIT STATUS', 'BOOTING THE IMAGE']) section(s);
  });

  test('is installed with the package', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { files: string[]; man?: string | string[] };
    expect(pkg.files).toContain('tsmakefs.1');
    expect([pkg.man].flat()).toContain('./tsmakefs.1');
  });

  test('groff formats it without a warning', () => {
    if (which('groff') === undefined) {
      console.log('skipped: groff is not installed');
      return;
    }
    const r = spawnSync('groff', ['-man', '-ww', '-z', MAN], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
  });
});
