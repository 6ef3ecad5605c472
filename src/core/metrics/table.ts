/**
 * The sorted score table every metric here is read from, built with one sort.
 *
 * Convention throughout src/core/metrics: label === 1 is the positive class (scikit-learn's pos_label=1;
 * anything else is negative), and a sample is predicted positive when score >= threshold, as in
 * scikit-learn's curves. Thresholds are the distinct scores, so "score >= thresholds[i]" reproduces
 * row i of the table exactly.
 */

/** Compact cumulative counts; typed arrays so it can be posted to a webview as is. */
export interface ThresholdTable {
  /** Distinct scores, strictly decreasing. */
  thresholds: Float64Array;
  /** Positives with score >= thresholds[i]; non-decreasing, tp[last] = positives. */
  tp: Uint32Array;
  /** Negatives with score >= thresholds[i]; non-decreasing, fp[last] = negatives. */
  fp: Uint32Array;
  positives: number;
  negatives: number;
}

export interface Counts {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

/** Sorts once: O(n log n). Throws on a length mismatch or a non-finite score (scikit-learn rejects NaN and inf too). */
export function thresholdTable(labels: ArrayLike<number>, scores: ArrayLike<number>): ThresholdTable {
  const n = labels.length;
  if (scores.length !== n) throw new RangeError(`${n} labels but ${scores.length} scores`);
  let positives = 0;
  for (let i = 0; i < n; i++) if (labels[i] === 1) positives++;
  const negatives = n - positives;
  // Sorting each class's scores natively (no comparator, no index array) and merging is several
  // times faster than an index sort, and the table only needs per-score class counts.
  const pos = new Float64Array(positives);
  const neg = new Float64Array(negatives);
  for (let i = 0, p = 0, q = 0; i < n; i++) {
    const s = scores[i] + 0; // + 0 turns -0 into 0, so both land in one tie block
    if (!Number.isFinite(s)) throw new RangeError(`score ${i} is ${scores[i]}: scores must be finite`);
    if (labels[i] === 1) pos[p++] = s;
    else neg[q++] = s;
  }
  pos.sort();
  neg.sort();
  const thr = new Float64Array(n);
  const tp = new Uint32Array(n);
  const fp = new Uint32Array(n);
  let i = positives - 1, j = negatives - 1, k = 0, ctp = 0, cfp = 0;
  while (i >= 0 || j >= 0) {
    const v = i < 0 ? neg[j] : j < 0 ? pos[i] : pos[i] > neg[j] ? pos[i] : neg[j];
    while (i >= 0 && pos[i] === v) { ctp++; i--; }
    while (j >= 0 && neg[j] === v) { cfp++; j--; }
    thr[k] = v; tp[k] = ctp; fp[k] = cfp; k++;
  }
  return { thresholds: thr.slice(0, k), tp: tp.slice(0, k), fp: fp.slice(0, k), positives, negatives };
}

/**
 * Index of the last (lowest) table threshold >= t, or -1 when every score is below t (or t is NaN,
 * since `score >= NaN` is false). O(log n).
 */
export function tableIndexAt(table: ThresholdTable, t: number): number {
  const thr = table.thresholds;
  let lo = 0, hi = thr.length; // answer + 1 lies in [lo, hi]
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (thr[mid] >= t) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Confusion counts at any threshold from the table (score >= t ⇒ positive). O(log n). */
export function tableCountsAt(table: ThresholdTable, t: number): Counts {
  return tableCountsAtIndex(table, tableIndexAt(table, t));
}

/** Confusion counts at row i of the table (-1: nothing predicted positive). */
export function tableCountsAtIndex(table: ThresholdTable, i: number): Counts {
  const tp = i < 0 ? 0 : table.tp[i];
  const fp = i < 0 ? 0 : table.fp[i];
  return { tp, fp, tn: table.negatives - fp, fn: table.positives - tp };
}

/** Confusion counts at one threshold by a single scan; a score >= threshold predicts positive. */
export function confusionAt(labels: ArrayLike<number>, scores: ArrayLike<number>, threshold: number): Counts {
  let tp = 0, fp = 0, tn = 0, fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = scores[i] >= threshold;
    if (labels[i] === 1) { if (p) tp++; else fn++; } else if (p) fp++; else tn++;
  }
  return { tp, fp, tn, fn };
}
