import type { ThresholdMetrics } from '../metrics';
import type { PatientResult } from '../metrics';

/** One scored patch: a row of predictions.csv. */
export interface Prediction {
  id: string;
  patient: string;
  x: number;
  y: number;
  /** Absent for unlabelled patches (idc predict). */
  label?: 0 | 1;
  score: number;
}

export type OperatingPointName = 'default' | 'youden' | 'f1' | 'recall-target' | 'pinned';

/** A row of the threshold comparison table (the notebook's, for any number of thresholds). */
export interface OperatingPointRow extends ThresholdMetrics {
  name: OperatingPointName;
  label: string;
  /** Where it sits on the curves, for markers. */
  fpr: number;
  tpr: number;
}

export interface ErrorItem { id: string; patient: string; x: number; y: number; label: 0 | 1; score: number }

/** metrics.json: everything the report and the panels show about one evaluation. */
export interface EvalReport {
  version: 1;
  createdAt: string;
  /** Run id, or the third-party model's path. */
  model: string;
  runId?: string;
  split: 'test' | 'val' | 'train';
  n: number;
  positives: number;
  negatives: number;
  /** null where scikit-learn raises (one class only); see warnings. */
  auc: number | null;
  averagePrecision: number | null;
  warnings: string[];
  /** Curves thinned for display (the marked points kept); full resolution comes from predictions.csv. */
  roc: { fpr: number[]; tpr: number[]; thresholds: number[] };
  pr: { precision: number[]; recall: number[]; thresholds: number[] };
  /** The working threshold (evaluate.threshold): patient table, error lists and slide maps use it. */
  threshold: number;
  operatingPoints: OperatingPointRow[];
  patients: PatientResult[];
  /** Worst first at the working threshold: FN by ascending score, FP by descending score. */
  errors: { falseNegatives: ErrorItem[]; falsePositives: ErrorItem[]; totalFalseNegatives: number; totalFalsePositives: number };
  seconds: number;
  imagesPerSecond: number;
  backend: string;
  /** How the model's inputs were prepared (the run's data.stainNormalization); absent in older files. */
  stainNormalization?: 'none' | 'macenko';
}
