/**
 * Operating points: a threshold t predicts positive when score >= t (scikit-learn's curve convention),
 * and candidates are the distinct scores only, so the +Infinity ROC threshold and the PR curve's
 * appended end point (neither predicts anything) are never returned.
 */
import { tableIndexAt, type Counts, type ThresholdTable } from './table';

export interface ThresholdMetrics extends Counts {
  threshold: number;
  /** tp / (tp + fp); 0 when nothing is predicted positive (scikit-learn's zero_division="warn" → 0). */
  precision: number;
  /** tp / (tp + fn); 0 without positives (zero_division → 0). Same value as `sensitivity`. */
  recall: number;
  sensitivity: number;
  /** tn / (tn + fp); 0 without negatives (recall of the negative class, zero_division → 0). */
  specificity: number;
  /** 2tp / (2tp + fp + fn), 0 when that is 0/0: current scikit-learn's formula (1.2's 2PR / (P + R) can differ in the last bit). */
  f1: number;
  /** NaN for an empty set. */
  accuracy: number;
  /** Mean recall over the classes present in the labels, as balanced_accuracy_score; NaN for an empty set. */
  balancedAccuracy: number;
}

export interface ThresholdMetricsWithErrors extends ThresholdMetrics {
  /** Sample indices of negatives predicted positive, most confident (highest score) first. */
  falsePositives: Uint32Array;
  /** Sample indices of positives predicted negative, most confident (lowest score) first. */
  falseNegatives: Uint32Array;
}

/** A chosen threshold, its counts and the value it optimises (Youden's J, F1 or recall). */
export interface OperatingPoint extends Counts {
  threshold: number;
  value: number;
}

export function metricsFromCounts(c: Counts, threshold: number): ThresholdMetrics {
  const { tp, fp, tn, fn } = c;
  const P = tp + fn, N = tn + fp, n = P + N;
  const recall = P ? tp / P : 0;
  const specificity = N ? tn / N : 0;
  const f1d = 2 * tp + fp + fn;
  return {
    threshold, tp, fp, tn, fn,
    precision: tp + fp ? tp / (tp + fp) : 0,
    recall, sensitivity: recall, specificity,
    f1: f1d ? (2 * tp) / f1d : 0,
    accuracy: n ? (tp + tn) / n : NaN,
    balancedAccuracy: P && N ? (recall + specificity) / 2 : P ? recall : N ? specificity : NaN,
  };
}

/** Metrics at one threshold plus the misclassified samples, by one O(n) scan (O(n log n) with the sort of the errors). */
export function thresholdMetrics(labels: ArrayLike<number>, scores: ArrayLike<number>, threshold: number): ThresholdMetricsWithErrors {
  const n = labels.length;
  if (scores.length !== n) throw new RangeError(`${n} labels but ${scores.length} scores`);
  let tp = 0, fp = 0, tn = 0, fn = 0;
  const fpIdx: number[] = [], fnIdx: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = scores[i] >= threshold;
    if (labels[i] === 1) { if (p) tp++; else { fn++; fnIdx.push(i); } } else if (p) { fp++; fpIdx.push(i); } else tn++;
  }
  const falsePositives = Uint32Array.from(fpIdx).sort((a, b) => scores[b] - scores[a] || a - b);
  const falseNegatives = Uint32Array.from(fnIdx).sort((a, b) => scores[a] - scores[b] || a - b);
  return { ...metricsFromCounts({ tp, fp, tn, fn }, threshold), falsePositives, falseNegatives };
}

function point(table: ThresholdTable, i: number, value: number): OperatingPoint {
  const tp = table.tp[i], fp = table.fp[i];
  return { threshold: table.thresholds[i], value, tp, fp, tn: table.negatives - fp, fn: table.positives - tp };
}

/**
 * Youden's J = tpr − fpr, maximised over every distinct threshold (the undropped ROC curve); ties go to
 * the highest threshold. Compared as integers (tp·N − fp·P) so exact ties are found. Null with one class.
 */
export function youdenFromTable(table: ThresholdTable): OperatingPoint | null {
  const P = table.positives, N = table.negatives;
  if (!P || !N || !table.thresholds.length) return null;
  let best = -1, bestNum = -Infinity;
  for (let i = 0; i < table.thresholds.length; i++) {
    const num = table.tp[i] * N - table.fp[i] * P;
    if (num > bestNum) { bestNum = num; best = i; }
  }
  return point(table, best, table.tp[best] / P - table.fp[best] / N);
}

/**
 * Maximum F1 = 2tp / (tp + fp + P) over the PR curve's thresholds; ties go to the highest threshold
 * (compared by cross-multiplication, exact). Null without positives (F1 is 0 everywhere).
 */
export function f1OptimalFromTable(table: ThresholdTable): OperatingPoint | null {
  const P = table.positives;
  if (!P || !table.thresholds.length) return null;
  let best = -1, bn = -1, bd = 1;
  for (let i = 0; i < table.thresholds.length; i++) {
    const num = 2 * table.tp[i], den = table.tp[i] + table.fp[i] + P;
    if (num * bd > bn * den) { bn = num; bd = den; best = i; }
  }
  return point(table, best, bn / bd);
}

/**
 * The highest threshold whose recall (tp / P, as the PR curve reports it) is >= target. Recall only
 * grows as the threshold falls, so this is a binary search. Null without positives or when no
 * threshold reaches the target (target > 1).
 */
export function thresholdForRecallFromTable(table: ThresholdTable, target: number): OperatingPoint | null {
  const P = table.positives, k = table.thresholds.length;
  if (!P || !k || Number.isNaN(target)) return null;
  let lo = 0, hi = k; // first index with recall >= target lies in [lo, hi]; k = none
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (table.tp[mid] / P >= target) hi = mid;
    else lo = mid + 1;
  }
  return lo < k ? point(table, lo, table.tp[lo] / P) : null;
}

/** Metrics at any threshold from the table, O(log n): the live threshold slider's path. */
export function tableMetricsAt(table: ThresholdTable, threshold: number): ThresholdMetrics {
  const i = tableIndexAt(table, threshold);
  const tp = i < 0 ? 0 : table.tp[i], fp = i < 0 ? 0 : table.fp[i];
  return metricsFromCounts({ tp, fp, tn: table.negatives - fp, fn: table.positives - tp }, threshold);
}
