import type { ProgressEvent, ProgressSink } from '../core/progress';

/**
 * Terminal renderer for core progress events: a redrawn bar with rate and ETA on a TTY,
 * a line every few seconds otherwise (CI logs), so nothing is silent for long.
 */
export class ProgressBar {
  private phase = '';
  private startedAt = 0;
  private lastLineAt = 0;
  private drawn = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly quiet = false) {}

  readonly sink: ProgressSink = (e) => this.update(e);

  update(e: ProgressEvent): void {
    if (this.quiet) return;
    const now = Date.now();
    if (e.phase !== this.phase) {
      this.finish();
      this.phase = e.phase;
      this.startedAt = now;
      this.lastLineAt = 0;
    }
    const line = formatProgress(e, (now - this.startedAt) / 1000, this.stream.columns ?? 100);
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else if (now - this.lastLineAt >= 5000 || (e.total !== undefined && e.done >= e.total)) {
      this.lastLineAt = now;
      this.stream.write(line + '\n');
    }
  }

  finish(): void {
    if (this.drawn && this.stream.isTTY) this.stream.write('\n');
    this.drawn = false;
    this.phase = '';
  }
}

export function formatProgress(e: ProgressEvent, elapsedS: number, columns = 100): string {
  const rate = elapsedS > 0 ? e.done / elapsedS : 0;
  const rateText = rate > 0 ? `${formatCount(rate)} ${e.unit}/s` : '';
  if (e.total === undefined || e.total === 0) {
    return [`${e.label}`, `${formatCount(e.done)} ${e.unit}`, rateText, e.message ?? ''].filter(Boolean).join('  ');
  }
  const frac = Math.min(1, e.done / e.total);
  const eta = rate > 0 && frac < 1 ? `ETA ${formatDuration((e.total - e.done) / rate)}` : frac >= 1 ? `in ${formatDuration(elapsedS)}` : '';
  const tail = [`${(frac * 100).toFixed(0).padStart(3)}%`, `${formatCount(e.done)}/${formatCount(e.total)} ${e.unit}`, rateText, eta, e.message ?? ''].filter(Boolean).join('  ');
  const width = Math.max(10, Math.min(30, columns - e.label.length - tail.length - 6));
  const full = Math.round(frac * width);
  return `${e.label} [${'#'.repeat(full)}${'-'.repeat(width - full)}] ${tail}`;
}

export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return n >= 100 || Number.isInteger(n) ? Math.round(n).toString() : n.toFixed(1);
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
