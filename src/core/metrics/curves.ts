/**
 * ROC and precision-recall curves, ROC AUC and average precision, computed as scikit-learn does
 * (sklearn/metrics/_ranking.py, 1.3 – 1.8): same points, same order, same float64 arithmetic and
 * NumPy's pairwise summation, so values agree bit for bit. Positive class: label === 1; a score
 * >= threshold predicts positive. Where scikit-learn warns, the warning text comes back in `warning`.
 */
import { npSum, npTrapezoid } from './numpy';
import type { ThresholdTable } from './table';

export interface RocCurve {
  /** Increasing. All NaN when there are no negatives. */
  fpr: Float64Array;
  /** Increasing. All NaN when there are no positives. */
  tpr: Float64Array;
  /** Decreasing; thresholds[0] = +Infinity (the "predict nothing" point, scikit-learn >= 1.3), never an operating point. */
  thresholds: Float64Array;
  warning?: string;
}

export interface PrCurve {
  /** One longer than thresholds: the last entry is the conventional (precision 1, recall 0) end, which has no threshold. */
  precision: Float64Array;
  /** Decreasing; last entry 0. */
  recall: Float64Array;
  /** Increasing. */
  thresholds: Float64Array;
  warning?: string;
}

/** A score with the reason it is undefined (NaN) or degenerate, where scikit-learn would warn or raise. */
export interface Score {
  value: number;
  warning?: string;
}

export const WARN_NO_NEGATIVES_ROC = 'No negative samples in y_true, false positive value should be meaningless';
export const WARN_NO_POSITIVES_ROC = 'No positive samples in y_true, true positive value should be meaningless';
export const WARN_NO_POSITIVES_PR = 'No positive class found in y_true, recall is set to one for all thresholds.';
export const WARN_ONE_CLASS_AUC = 'Only one class is present in y_true. ROC AUC score is not defined in that case.';

function joinWarnings(...w: Array<string | undefined>): string | undefined {
  const s = w.filter(Boolean).join('; ');
  return s || undefined;
}

/**
 * Indices kept by roc_curve(drop_intermediate=True):
 * np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0], applied only when
 * there are more than 2 thresholds. Collinear points never change the area or the plotted shape.
 */
function rocKeep(tp: ArrayLike<number>, fp: ArrayLike<number>): Uint32Array {
  const k = tp.length;
  const keep = new Uint32Array(k);
  let m = 0;
  keep[m++] = 0;
  for (let i = 1; i < k - 1; i++) {
    if (fp[i + 1] - 2 * fp[i] + fp[i - 1] !== 0 || tp[i + 1] - 2 * tp[i] + tp[i - 1] !== 0) keep[m++] = i;
  }
  if (k > 1) keep[m++] = k - 1;
  return keep.subarray(0, m);
}

/**
 * Indices kept by precision_recall_curve(drop_intermediate=True) (scikit-learn >= 1.3): the first and
 * last point of every run of equal tp (equal recall), i.e.
 * np.r_[True, np.logical_or(np.diff(tps[:-1]), np.diff(tps[1:])), True].
 */
function prKeep(tp: ArrayLike<number>): Uint32Array {
  const k = tp.length;
  const keep = new Uint32Array(k);
  let m = 0;
  keep[m++] = 0;
  for (let i = 1; i < k - 1; i++) if (tp[i] !== tp[i - 1] || tp[i + 1] !== tp[i]) keep[m++] = i;
  if (k > 1) keep[m++] = k - 1;
  return keep.subarray(0, m);
}

export function rocCurveFromTable(table: ThresholdTable, { dropIntermediate = true }: { dropIntermediate?: boolean } = {}): RocCurve {
  const k = table.thresholds.length;
  const idx = dropIntermediate && k > 2 ? rocKeep(table.tp, table.fp) : null;
  const m = idx ? idx.length : k;
  const fpr = new Float64Array(m + 1);
  const tpr = new Float64Array(m + 1);
  const thresholds = new Float64Array(m + 1);
  thresholds[0] = Infinity;
  const P = table.positives, N = table.negatives;
  // fps[-1] / tps[-1] in scikit-learn are the class totals (the lowest threshold admits everything).
  for (let r = 0; r < m; r++) {
    const i = idx ? idx[r] : r;
    thresholds[r + 1] = table.thresholds[i];
    fpr[r + 1] = N > 0 ? table.fp[i] / N : NaN;
    tpr[r + 1] = P > 0 ? table.tp[i] / P : NaN;
  }
  if (N <= 0) fpr[0] = NaN;
  if (P <= 0) tpr[0] = NaN;
  return { fpr, tpr, thresholds, warning: joinWarnings(N <= 0 ? WARN_NO_NEGATIVES_ROC : undefined, P <= 0 ? WARN_NO_POSITIVES_ROC : undefined) };
}

/**
 * Zero-division choices are scikit-learn's: precision tp / (tp + fp) is never 0/0 at a real threshold
 * (each admits at least one sample), and the appended end point (no sample predicted positive) gets
 * precision 1 by convention. With no positives, scikit-learn (>= 1.1) sets recall to 1 at every
 * threshold (then the appended 0) and warns; precision is then 0 everywhere but the end.
 */
export function prCurveFromTable(table: ThresholdTable, { dropIntermediate = false }: { dropIntermediate?: boolean } = {}): PrCurve {
  const k = table.thresholds.length;
  const idx = dropIntermediate && k > 2 ? prKeep(table.tp) : null;
  const m = idx ? idx.length : k;
  const precision = new Float64Array(m + 1);
  const recall = new Float64Array(m + 1);
  const thresholds = new Float64Array(m);
  const P = table.positives;
  // Reversed so thresholds increase and recall decreases, as scikit-learn returns them.
  for (let r = 0; r < m; r++) {
    const i = idx ? idx[r] : r;
    const o = m - 1 - r;
    const tp = table.tp[i], ps = tp + table.fp[i];
    thresholds[o] = table.thresholds[i];
    precision[o] = ps !== 0 ? tp / ps : 0;
    recall[o] = P === 0 ? 1 : tp / P;
  }
  precision[m] = 1;
  recall[m] = 0;
  return { precision, recall, thresholds, warning: P === 0 ? WARN_NO_POSITIVES_PR : undefined };
}

/**
 * roc_auc_score for binary labels: trapezoid area under the (drop_intermediate) ROC curve, which
 * counts tied positive/negative pairs as 1/2 (the Mann–Whitney U with mid-ranks). One class present:
 * NaN with a warning, as scikit-learn >= 1.8 (1.3 – 1.7 raise ValueError instead).
 */
export function rocAucFromTable(table: ThresholdTable): Score {
  if (table.positives === 0 || table.negatives === 0) return { value: NaN, warning: WARN_ONE_CLASS_AUC };
  const { fpr, tpr } = rocCurveFromTable(table);
  return { value: npTrapezoid(tpr, fpr) };
}

/**
 * average_precision_score: sum over thresholds of (R_n − R_{n−1}) P_n, the step-wise (not
 * interpolated) area, computed as max(0, -sum(diff(recall) * precision[:-1])). With no positives
 * it is 0 with the precision_recall_curve warning (scikit-learn >= 1.1; older versions gave NaN).
 */
export function averagePrecisionFromTable(table: ThresholdTable): Score {
  // The same float operations as on the reversed precision_recall_curve arrays, read from the table
  // directly: curve entry o is table row r = m - 1 - o, and entry o + 1 is row r - 1 (or the appended end).
  const m = table.thresholds.length, P = table.positives;
  const terms = new Float64Array(m);
  let below = 0; // recall of row r - 1
  for (let r = 0; r < m; r++) {
    const tp = table.tp[r];
    const rec = P === 0 ? 1 : tp / P;
    terms[m - 1 - r] = (below - rec) * (tp / (tp + table.fp[r]));
    below = rec;
  }
  return { value: Math.max(0, -npSum(terms)), warning: P === 0 ? WARN_NO_POSITIVES_PR : undefined };
}
