// The progress line on a terminal: one line on stderr, redrawn in place
// with \r, cleared when the build ends (or before a warning or an error is
// printed). Files and bytes done, of the total when the inputs' size is
// known in advance (directories and manifests; a tarball is read only once),
// the data rate and the time left. Nothing at all when stderr is not a
// terminal, in CI (CI=true), or with -q: logs get no control characters.

import type { BuildProgress } from '../build.js';
import { fmtSize } from '../vdev/allocator.js';

/** Whether to draw progress: stderr is a terminal, not CI, not -q. */
export function progressWanted(o: { isTTY: boolean; quiet: boolean; env: NodeJS.ProcessEnv }): boolean {
  if (!o.isTTY || o.quiet) return false;
  const ci = o.env['CI'];
  return ci === undefined || ci === '' || ci === 'false' || ci === '0';
}

/** Seconds as m:ss, or h:mm:ss from an hour on. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Below this much data time the rate and ETA are noise. */
const SETTLE_MS = 1000;

/**
 * The text of the progress line (without \r), at most `width` characters.
 * `dataMs` is the time spent in the data phase so far (for the rate).
 */
export function formatProgress(p: BuildProgress, elapsedMs: number, dataMs: number, width = 80): string {
  const parts: string[] = [];
  const t = p.total;
  if (p.phase === 'scan') {
    parts.push('reading the input');
  } else {
    parts.push(t ? `${p.files}/${t.files} files` : `${p.files} files`);
    if (t && t.bytes > 0) {
      const pct = Math.min(100, Math.floor((p.bytes / t.bytes) * 100));
      parts.push(`${fmtSize(p.bytes)}/${fmtSize(t.bytes)} ${pct}%`);
    } else {
      parts.push(fmtSize(p.bytes));
    }
    if (p.phase === 'data') {
      const rate = dataMs >= SETTLE_MS ? p.bytes / (dataMs / 1000) : 0;
      if (rate > 0) {
        parts.push(`${fmtSize(rate)}/s`);
        if (t && t.bytes > p.bytes) parts.push(`ETA ${clock((t.bytes - p.bytes) / rate)}`);
      }
    } else {
      parts.push('writing metadata');
    }
  }
  parts.push(clock(elapsedMs / 1000));
  const line = `tsmakefs: ${parts.join('  ')}`;
  return line.length > width ? line.slice(0, Math.max(0, width)) : line;
}

export interface ProgressLineOptions {
  /** Terminal width (read at every redraw: the window may change). */
  columns?: () => number | undefined;
  /** Clock in ms (tests pass their own). */
  now?: () => number;
  /** Least time between two redraws, ms (default 100). */
  interval?: number;
}

/** One self-redrawing line on a terminal. */
export class ProgressLine {
  private shown = 0;
  private last: BuildProgress | undefined;
  private lastDraw = -Infinity;
  private readonly start: number;
  private dataStart: number | undefined;
  private readonly now: () => number;
  private readonly interval: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly write: (text: string) => void, private readonly opts: ProgressLineOptions = {}) {
    this.now = opts.now ?? (() => performance.now());
    this.interval = opts.interval ?? 100;
    this.start = this.now();
  }

  /**
   * Redraw every `ms` even without news (the clock and ETA move while the
   * writer is busy elsewhere: only useful when it runs on another thread).
   */
  startTimer(ms = 250): void {
    this.timer ??= setInterval(() => this.redraw(true), ms);
    this.timer.unref();
  }

  update(p: BuildProgress): void {
    if (p.phase === 'data' && this.dataStart === undefined && (p.bytes > 0 || p.files > 0)) this.dataStart = this.now();
    const phaseChange = this.last?.phase !== p.phase;
    this.last = p;
    if (p.phase === 'done') {
      this.clear();
      return;
    }
    this.redraw(phaseChange);
  }

  private redraw(force: boolean): void {
    if (this.last === undefined || this.last.phase === 'done') return;
    const now = this.now();
    if (!force && now - this.lastDraw < this.interval) return;
    this.lastDraw = now;
    const width = Math.max(20, (this.opts.columns?.() || 80) - 1); // never the last column: no wrap
    const dataMs = this.dataStart === undefined ? 0 : now - this.dataStart;
    const line = formatProgress(this.last, now - this.start, dataMs, width);
    // spaces over the rest of a longer previous line
    this.write(`\r${line}${' '.repeat(Math.max(0, this.shown - line.length))}`);
    this.shown = line.length;
  }

  /** Erase the line (before a warning, an error or the summary); the next update draws it again. */
  clear(): void {
    if (this.shown === 0) return;
    this.write(`\r${' '.repeat(this.shown)}\r`);
    this.shown = 0;
    this.lastDraw = -Infinity;
  }

  /** Erase the line for good and stop the timer. */
  done(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
    this.last = undefined;
  }
}
