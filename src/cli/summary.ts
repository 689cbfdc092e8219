// What a build prints when done: -v a few aligned lines for people, --json
// one JSON object for programs. Both come from the writer's ImageSummary
// plus what the build itself knows (inputs' totals, elapsed time).
// A stand-in writer (tests) may return any object: that is dumped as
// "key: value" lines, nested keys dotted.

import type { BuildSummary } from '../build.js';
import type { DatasetSummary } from '../image.js';
import { fmtSize } from '../vdev/allocator.js';

/** Logical / physical bytes, as zfs's compressratio (1 when nothing is stored). */
export function compressRatio(lsize: number, psize: number): number {
  return psize > 0 ? Math.round((lsize / psize) * 100) / 100 : 1;
}

function isImageSummary(s: object): s is BuildSummary {
  const o = s as Partial<BuildSummary>;
  return typeof o.poolName === 'string' && typeof o.imageSize === 'number' && Array.isArray(o.datasets);
}

export interface DatasetJson {
  name: string;
  mountpoint: string;
  used: number;
  entries: number;
  files: number;
  directories: number;
  bytes: number;
  logicalBytes: number;
  physicalBytes: number;
  compressRatio: number;
}

/** The --json object (stable field names; sizes in bytes). */
export interface SummaryJson {
  image: string;
  pool: string;
  poolGuid: string;
  size: number;
  capacity: number;
  allocated: number;
  free: number;
  /** What the datasets can still write (zfs's `available` before quotas and reservations): free space less OpenZFS's slop reservation. */
  available: number;
  metaslabs: number;
  metaslabSize: number;
  logicalBytes: number;
  physicalBytes: number;
  compressRatio: number;
  input: { entries: number; files: number; bytes: number } | null;
  elapsedSeconds: number;
  datasets: DatasetJson[];
}

function datasetJson(d: DatasetSummary): DatasetJson {
  return {
    name: d.name,
    mountpoint: d.mountpoint,
    used: d.used,
    entries: d.entries,
    files: d.files,
    directories: d.directories,
    bytes: d.dataBytes,
    logicalBytes: d.lsize,
    physicalBytes: d.psize,
    compressRatio: compressRatio(d.lsize, d.psize),
  };
}

export function summaryJson(s: BuildSummary): SummaryJson {
  const lsize = s.datasets.reduce((a, d) => a + d.lsize, 0);
  const psize = s.datasets.reduce((a, d) => a + d.psize, 0);
  return {
    image: s.image,
    pool: s.poolName,
    poolGuid: s.poolGuid,
    size: s.imageSize,
    capacity: s.vdevAsize,
    allocated: s.allocated,
    free: Math.max(0, s.vdevAsize - s.allocated),
    available: s.available,
    metaslabs: s.metaslabs,
    metaslabSize: s.metaslabSize,
    logicalBytes: lsize,
    physicalBytes: psize,
    compressRatio: compressRatio(lsize, psize),
    input: s.input ?? null,
    elapsedSeconds: Math.round(s.elapsedMs) / 1000,
    datasets: s.datasets.map(datasetJson),
  };
}

/** One JSON object on one line (bigints as strings, should one ever appear). */
export function formatSummaryJson(summary: object): string {
  const obj = isImageSummary(summary) ? summaryJson(summary) : summary;
  return `${JSON.stringify(obj, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`;
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** Rows of cells as aligned columns (numbers right-aligned). */
function table(rows: string[][], right: boolean[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 && !right[i] ? c : right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** -v: the human summary. */
export function formatSummary(summary: object): string {
  if (!isImageSummary(summary)) return formatFields(summary);
  const j = summaryJson(summary);
  const pct = j.capacity > 0 ? ` (${Math.max(j.allocated > 0 ? 1 : 0, Math.round((j.allocated / j.capacity) * 100))}%)` : '';
  const files = j.datasets.reduce((a, d) => a + d.files, 0);
  const bytes = j.datasets.reduce((a, d) => a + d.bytes, 0);
  const head = [
    ['image', `${j.image}, ${fmtSize(j.size)}, ${j.metaslabs} metaslab${j.metaslabs === 1 ? '' : 's'} of ${fmtSize(j.metaslabSize)}`],
    ['pool', `${j.pool}, guid ${j.poolGuid}`],
    ['allocated', `${fmtSize(j.allocated)} of ${fmtSize(j.capacity)}${pct}, ${fmtSize(j.free)} free, ${fmtSize(j.available)} available`],
    ['data', `${files} file${files === 1 ? '' : 's'}, ${fmtSize(bytes)}`],
    ['compression', `${j.compressRatio.toFixed(2)}x (${fmtSize(j.logicalBytes)} logical, ${fmtSize(j.physicalBytes)} physical)`],
    ['elapsed', seconds(summary.elapsedMs)],
  ];
  const keyWidth = Math.max(...head.map(([k]) => k!.length));
  const lines = head.map(([k, v]) => `${k!.padEnd(keyWidth)}  ${v}`);
  const rows = [
    ['DATASET', 'MOUNTPOINT', 'USED', 'ENTRIES', 'FILES', 'BYTES', 'RATIO'],
    ...j.datasets.map((d) => [
      d.name, d.mountpoint, fmtSize(d.used), String(d.entries), String(d.files), fmtSize(d.bytes), `${d.compressRatio.toFixed(2)}x`,
    ]),
  ];
  lines.push('', ...table(rows, [false, false, true, true, true, true, true]));
  return lines.map((l) => `${l}\n`).join('');
}

/** Any other object: one "key: value" line per leaf, nested keys dotted. */
export function formatFields(summary: object): string {
  const lines: string[] = [];
  const visit = (prefix: string, value: unknown): void => {
    if (value === undefined) return;
    if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
      if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) {
        lines.push(`${prefix}: ${value.map(String).join(', ')}`);
        return;
      }
      for (const [k, v] of Object.entries(value)) visit(prefix === '' ? k : `${prefix}.${k}`, v);
      return;
    }
    lines.push(`${prefix}: ${String(value)}`);
  };
  visit('', summary);
  return lines.map((l) => `${l}\n`).join('');
}
