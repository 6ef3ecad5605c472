/**
 * EvalContext: sort once, read every metric from the same table. The free functions below build a
 * context per call; when computing several metrics on one score set, build one with
 * `EvalContext.from(labels, scores)` (or call `evaluate`) instead.
 */
import {
  averagePrecisionFromTable, prCurveFromTable, rocAucFromTable, rocCurveFromTable,
  type PrCurve, type RocCurve, type Score,
} from './curves';
import {
  f1OptimalFromTable, tableMetricsAt, thresholdForRecallFromTable, youdenFromTable,
  type OperatingPoint, type ThresholdMetrics,
} from './operating';
import { tableCountsAt, thresholdTable, type Counts, type ThresholdTable } from './table';

export class EvalContext {
  private constructor(readonly table: ThresholdTable) {}

  static from(labels: ArrayLike<number>, scores: ArrayLike<number>): EvalContext {
    return new EvalContext(thresholdTable(labels, scores));
  }

  static fromTable(table: ThresholdTable): EvalContext {
    return new EvalContext(table);
  }

  get n(): number { return this.table.positives + this.table.negatives; }
  get positives(): number { return this.table.positives; }
  get negatives(): number { return this.table.negatives; }

  rocCurve(opts?: { dropIntermediate?: boolean }): RocCurve { return rocCurveFromTable(this.table, opts); }
  precisionRecallCurve(opts?: { dropIntermediate?: boolean }): PrCurve { return prCurveFromTable(this.table, opts); }
  rocAuc(): Score { return rocAucFromTable(this.table); }
  averagePrecision(): Score { return averagePrecisionFromTable(this.table); }
  countsAt(threshold: number): Counts { return tableCountsAt(this.table, threshold); }
  metricsAt(threshold: number): ThresholdMetrics { return tableMetricsAt(this.table, threshold); }
  youden(): OperatingPoint | null { return youdenFromTable(this.table); }
  f1Optimal(): OperatingPoint | null { return f1OptimalFromTable(this.table); }
  thresholdForRecall(target: number): OperatingPoint | null { return thresholdForRecallFromTable(this.table, target); }
}

type L = ArrayLike<number>;

/** sklearn.metrics.roc_curve(y, s, drop_intermediate=...) with pos_label 1. */
export function rocCurve(labels: L, scores: L, opts: { dropIntermediate?: boolean } = {}): RocCurve {
  return EvalContext.from(labels, scores).rocCurve(opts);
}

/** sklearn.metrics.precision_recall_curve(y, s, drop_intermediate=...) with pos_label 1. */
export function precisionRecallCurve(labels: L, scores: L, opts: { dropIntermediate?: boolean } = {}): PrCurve {
  return EvalContext.from(labels, scores).precisionRecallCurve(opts);
}

/** sklearn.metrics.roc_auc_score for binary labels; NaN with a warning when one class is missing. */
export function rocAucScore(labels: L, scores: L): Score {
  return EvalContext.from(labels, scores).rocAuc();
}

/** sklearn.metrics.average_precision_score for binary labels. */
export function averagePrecisionScore(labels: L, scores: L): Score {
  return EvalContext.from(labels, scores).averagePrecision();
}

export function youdenThreshold(labels: L, scores: L): OperatingPoint | null {
  return EvalContext.from(labels, scores).youden();
}

export function f1OptimalThreshold(labels: L, scores: L): OperatingPoint | null {
  return EvalContext.from(labels, scores).f1Optimal();
}

export function thresholdForRecall(labels: L, scores: L, target: number): OperatingPoint | null {
  return EvalContext.from(labels, scores).thresholdForRecall(target);
}

export interface Evaluation {
  n: number;
  positives: number;
  negatives: number;
  roc: RocCurve;
  pr: PrCurve;
  rocAuc: Score;
  averagePrecision: Score;
  youden: OperatingPoint | null;
  f1Optimal: OperatingPoint | null;
  table: ThresholdTable;
}

/** Everything at once from a single sort: both curves (scikit-learn's default dropping), AUC, AP, optimal thresholds. */
export function evaluate(labels: L, scores: L): Evaluation {
  const ctx = EvalContext.from(labels, scores);
  const roc = ctx.rocCurve();
  return {
    n: ctx.n, positives: ctx.positives, negatives: ctx.negatives,
    roc, pr: ctx.precisionRecallCurve(),
    rocAuc: ctx.rocAuc(), averagePrecision: ctx.averagePrecision(),
    youden: ctx.youden(), f1Optimal: ctx.f1Optimal(),
    table: ctx.table,
  };
}
