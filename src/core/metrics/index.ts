/** Evaluation metrics core; see table.ts for the label and threshold conventions. */
export {
  EvalContext, evaluate, rocCurve, precisionRecallCurve, rocAucScore, averagePrecisionScore,
  youdenThreshold, f1OptimalThreshold, thresholdForRecall, type Evaluation,
} from './context';
export {
  rocCurveFromTable, prCurveFromTable, rocAucFromTable, averagePrecisionFromTable,
  WARN_NO_NEGATIVES_ROC, WARN_NO_POSITIVES_ROC, WARN_NO_POSITIVES_PR, WARN_ONE_CLASS_AUC,
  type RocCurve, type PrCurve, type Score,
} from './curves';
export {
  thresholdMetrics, metricsFromCounts, tableMetricsAt, youdenFromTable, f1OptimalFromTable, thresholdForRecallFromTable,
  type ThresholdMetrics, type ThresholdMetricsWithErrors, type OperatingPoint,
} from './operating';
export { thresholdTable, tableCountsAt, tableIndexAt, confusionAt, type ThresholdTable, type Counts } from './table';
export { downsampleCurve, type CurvePoints } from './downsample';
export { perPatient, type PatientRow, type PatientResult } from './patients';
export { rocAuc } from './auc';
export { npSum, npTrapezoid } from './numpy';
