// The kernel check plus commands of our own in the same guest boot: the
// shared check-image job runs first (import, scrub, mount, listing, write
// test, export), then ours re-import the pool and run zfs/zpool commands
// whose output the tests read (`zfs get`, `zfs snapshot`, `zfs destroy` ...).
// The job file is check-image's own guest script with our block inserted
// before its final kernel-log step, handed over through ZVM_EXTRA_JOB_FILE.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCheckImage } from './oracles.js';
import { sharedTool } from './proc.js';

export interface ExtraStep {
  /** Section name in results.txt. */
  name: string;
  /** Shell command run in the guest ($POOL is the pool name). */
  command: string;
}

export interface ExtraVerdict {
  status: number;
  result: string;
  outDir: string;
  listing: string;
  /** Output and exit status of each extra step. */
  sections: Map<string, { rc: number; text: string }>;
  output: string;
}

function sections(results: string): Map<string, { rc: number; text: string }> {
  const out = new Map<string, { rc: number; text: string }>();
  const re = /==== BEGIN (\S+) ====\n([\s\S]*?)==== END \1 rc=(\d+) ====/g;
  for (const m of results.matchAll(re)) out.set(m[1]!, { rc: Number(m[3]), text: m[2]! });
  return out;
}

export async function vmCheckWithSteps(image: string, steps: ExtraStep[], opts: { listingRoot?: string; timeoutSec?: number; extraArgs?: string[] } = {}): Promise<ExtraVerdict> {
  const outDir = mkdtempSync(join(tmpdir(), 'tsmakefs-vmx-'));
  mkdirSync(outDir, { recursive: true });
  const base = readFileSync(sharedTool('zfs-vm/guest/check.sh'), 'utf8');
  const marker = 'run kernel-log';
  const at = base.lastIndexOf(marker);
  if (at < 0) throw new Error('check.sh changed: no kernel-log step to insert before');
  const block = [
    '# --- tsmakefs extra steps',
    'run x-import zpool import -N -f -R "$ALTROOT" -d /dev "$POOL"',
    // the job's variables are not exported: hand the pool name over as $1
    ...steps.map((s) => `run ${s.name} sh -c ${shq(`POOL="$1"; ${s.command}`)} sh "$POOL"`),
    'run x-export zpool export "$POOL"',
    '',
  ].join('\n');
  const job = join(outDir, 'check-extra.sh');
  writeFileSync(job, base.slice(0, at) + block + base.slice(at), { mode: 0o755 });
  const timeout = opts.timeoutSec ?? 300;
  const args = [sharedTool('zfs-vm/check-image.sh'), image, '-q', '-o', join(outDir, 'out'), '--timeout', String(timeout)];
  if (opts.listingRoot) args.push('--listing-root', opts.listingRoot);
  args.push(...(opts.extraArgs ?? []));
  const r = await runCheckImage(args, join(outDir, 'out'), { timeoutMs: (timeout + 90) * 1000, env: { ...process.env, ZVM_EXTRA_JOB_FILE: job } });
  const read = (n: string) => { try { return readFileSync(join(outDir, 'out', n), 'utf8'); } catch { return ''; } };
  const results = read('results.txt');
  return {
    status: r.status ?? -1,
    result: results.split('\n').filter((l) => l.startsWith('ZVM-RESULT ')).pop() ?? '',
    outDir: join(outDir, 'out'),
    listing: read('listing.txt'),
    sections: sections(results),
    output: r.output,
  };
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
