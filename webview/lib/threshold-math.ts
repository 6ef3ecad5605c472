/**
 * The threshold explorer's arithmetic, shared by the page and the tests: confusion counts at any
 * threshold from the compact count table (distinct scores descending, cumulative tp/fp; a patch
 * is predicted positive when score >= t), the metrics derived from them, and hit-testing along
 * the curves. Pure, DOM-free, O(log n) per lookup.
 */

import { metricsFromCounts } from '../../src/core/metrics/operating';
import { tableCountsAt, tableCountsAtIndex, tableIndexAt, type Counts, type ThresholdTable } from '../../src/core/metrics/table';
import type { OperatingPointInterval, PatientIntervals } from '../../src/protocol/webview';

export type { Counts };
/** The host's count table (src/core/metrics/table.ts), as typed arrays. */
export type CountTable = ThresholdTable;
/** Index of the last (lowest) table threshold >= t; -1 when every score is below t. */
export const indexAt = tableIndexAt;
export const countsAtIndex = tableCountsAtIndex;
export const countsAt = tableCountsAt;

/** Typed copies of the view's table, for fast lookups. */
export function typedTable(t: { thresholds: number[]; tp: number[]; fp: number[]; positives: number; negatives: number }): CountTable {
  return { thresholds: Float64Array.from(t.thresholds), tp: Uint32Array.from(t.tp), fp: Uint32Array.from(t.fp), positives: t.positives, negatives: t.negatives };
}

export interface Metrics {
  accuracy: number;
  balancedAccuracy: number;
  /** PPV. 0 when nothing is predicted positive (scikit-learn's zero_division → 0, as metrics.json). */
  precision: number;
  /** Sensitivity, TPR. */
  recall: number;
  /** TNR. */
  specificity: number;
  f1: number;
  /** fp / negatives. */
  fpr: number;
  /** fn / positives. */
  fnr: number;
  /** tn / (tn + fn); 0 when nothing is predicted negative. */
  npv: number;
  /** Matthews correlation coefficient; 0 when a margin is empty. */
  mcc: number;
  /** Share of patches predicted positive. */
  predictedPositiveRate: number;
}

/** Same conventions as src/core/metrics metricsFromCounts (0 for 0/0 ratios, NaN accuracy on an empty set). */
export function metricsOf(c: Counts): Metrics {
  // The metrics metrics.json has, by the same definitions; the rest only the page shows.
  const { accuracy, balancedAccuracy, precision, recall, specificity, f1 } = metricsFromCounts(c, NaN);
  const { tp, fp, tn, fn } = c;
  const P = tp + fn, N = tn + fp, n = P + N;
  const mccDen = Math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
  return {
    accuracy, balancedAccuracy, precision, recall, specificity, f1,
    fpr: N ? fp / N : 0,
    fnr: P ? fn / P : 0,
    npv: tn + fn ? tn / (tn + fn) : 0,
    mcc: mccDen ? (tp * tn - fp * fn) / mccDen : 0,
    predictedPositiveRate: n ? (tp + fp) / n : 0,
  };
}

/**
 * The bootstrap intervals that hold at threshold t: those of a marked operating point selecting the
 * same patches (same table row), since the intervals depend only on which patches are positive.
 */
export function intervalsAt(table: CountTable, intervals: Pick<PatientIntervals, 'operatingPoints'> | undefined, t: number): OperatingPointInterval | undefined {
  if (!intervals) return undefined;
  const i = indexAt(table, t);
  return intervals.operatingPoints.find((o) => o.threshold === t) ?? intervals.operatingPoints.find((o) => indexAt(table, o.threshold) === i);
}

/** Where row i of the table sits on each curve (i = -1: nothing predicted positive). */
export function rocPoint(table: CountTable, i: number): { x: number; y: number } {
  const c = countsAtIndex(table, i);
  return { x: table.negatives ? c.fp / table.negatives : 0, y: table.positives ? c.tp / table.positives : 0 };
}

export function prPoint(table: CountTable, i: number): { x: number; y: number } {
  const c = countsAtIndex(table, i);
  // Nothing predicted positive: scikit-learn's appended end point (recall 0, precision 1).
  return { x: table.positives ? c.tp / table.positives : 0, y: c.tp + c.fp ? c.tp / (c.tp + c.fp) : 1 };
}

/**
 * The table row whose curve point is nearest to (x, y) in data units, distances scaled by
 * (sx, sy) pixels per unit so that "nearest" means nearest on screen. O(n): 45k rows take well
 * under a millisecond.
 */
export function nearestIndex(table: CountTable, curve: 'roc' | 'pr', x: number, y: number, sx = 1, sy = 1): number {
  const P = table.positives, N = table.negatives;
  let best = 0, bestD = Infinity;
  const n = table.thresholds.length;
  for (let i = 0; i < n; i++) {
    const tp = table.tp[i], fp = table.fp[i];
    let px: number, py: number;
    if (curve === 'roc') { px = N ? fp / N : 0; py = P ? tp / P : 0; }
    else { px = P ? tp / P : 0; py = tp / (tp + fp); }
    const dx = (px - x) * sx, dy = (py - y) * sy;
    const d = dx * dx + dy * dy;
    if (d < bestD) { bestD = d; best = i; }
  }
  return best;
}

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

/** The largest float32 below a positive float32 x (0 for the smallest). */
function prevFloat32(x: number): number {
  f32[0] = x;
  if (f32[0] <= 0) return -Infinity;
  i32[0] -= 1;
  return f32[0];
}

/**
 * A short decimal that selects exactly the same patches as the float32 threshold t (scores are
 * float32): the shortest d <= t with no float32 score in [d, t). Thresholds that are not float32
 * values (typed by hand) are returned as they are.
 */
export function compactThreshold(t: number): number {
  if (!(t > 0) || Math.fround(t) !== t) return t;
  const below = prevFloat32(t);
  for (let k = 1; k <= 17; k++) {
    const d = Number((Math.floor(t * 10 ** k) / 10 ** k).toFixed(k));
    if (d <= t && d > below) return d;
  }
  return t;
}

/** The table threshold one step lower (more positives) or higher than the current one; t itself at the ends. */
export function stepThreshold(table: CountTable, t: number, dir: 1 | -1): number {
  const thr = table.thresholds;
  if (!thr.length) return t;
  const i = indexAt(table, t);
  if (dir === 1) {
    // Lower threshold: next row down adds the next distinct score.
    const j = Math.min(i + 1, thr.length - 1);
    return thr[j];
  }
  // Higher threshold: drop the lowest score now included (row i) by moving to row i - 1.
  if (i <= 0) return i === 0 ? Math.min(1, nextAbove(thr[0])) : t;
  return thr[i - 1];
}

/** The smallest float32 above x: a threshold that predicts nothing positive for scores <= x. */
export function nextAbove(x: number): number {
  f32[0] = x;
  if (f32[0] !== x) return x;
  i32[0] += x >= 0 ? 1 : -1;
  return f32[0];
}

/** A theme colour (#rgb, #rrggbb, #rrggbbaa or rgb()/rgba()) with opacity a, for chart fills; grey when unparsable. */
export function translucent(color: string, a: number): string {
  const c = color.trim();
  let m = /^#([0-9a-f]{3})$/i.exec(c);
  if (m) return `rgba(${[...m[1]].map((h) => parseInt(h + h, 16)).join(', ')}, ${a})`;
  m = /^#([0-9a-f]{6})(?:[0-9a-f]{2})?$/i.exec(c);
  if (m) return `rgba(${[0, 2, 4].map((i) => parseInt(m![1].slice(i, i + 2), 16)).join(', ')}, ${a})`;
  m = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/i.exec(c);
  if (m) return `rgba(${m[1]}, ${m[2]}, ${m[3]}, ${a})`;
  return `rgba(128, 128, 128, ${a})`;
}
