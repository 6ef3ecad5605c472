import type { ThresholdMetrics } from '../metrics';
import type { BootstrapResult, Interval } from '../metrics/bootstrap';
import type { CalibrationSummary } from '../metrics/calibration';
import type { PatientResult } from '../metrics';

/**
 * Who decided how a model's inputs were prepared (data.stainNormalization): the run it was trained
 * in, the user (config file or command-line option), or nobody (a model without a run config: as scanned).
 */
export type InputsChosenBy = 'run' | 'baseline' | 'config' | 'option' | 'no-run-config';

/** One scored patch: a row of predictions.csv. */
export interface Prediction {
  id: string;
  patient: string;
  x: number;
  y: number;
  /** Absent for unlabelled patches (idc predict). */
  label?: 0 | 1;
  score: number;
  /** idc predict with a fitted temperature: sigmoid(logit(score) / T). */
  calibrated?: number;
  /** idc predict: the label at the threshold it applied (score >= threshold). */
  predicted?: 0 | 1;
}

/**
 * youden, f1 and recall-target are the thresholds evaluate applies: chosen on the validation
 * patients when the run has them (else on the evaluated split itself). The *-in-split ones are the
 * evaluated split's own optima, optimistic on test patients, kept for comparison.
 */
export type OperatingPointName = 'default' | 'youden' | 'f1' | 'recall-target' | 'pinned' | 'youden-in-split' | 'f1-in-split' | 'recall-target-in-split';

/** A row of the threshold comparison table (the notebook's, for any number of thresholds). */
export interface OperatingPointRow extends ThresholdMetrics {
  name: OperatingPointName;
  label: string;
  /** Where it sits on the curves, for markers. */
  fpr: number;
  tpr: number;
  /** Whose patients chose the threshold: config (working, pinned) or a split; absent in older files. */
  chosenOn?: 'config' | 'test' | 'val' | 'train';
}

/** Patient-bootstrap intervals of one operating point, at its fixed threshold. */
export interface OperatingPointInterval {
  name: OperatingPointName;
  label: string;
  threshold: number;
  recall: Interval;
  specificity: Interval;
  precision: Interval;
  f1: Interval;
  undefinedResamples: { recall: number; specificity: number; precision: number; f1: number };
}

/** Confidence intervals by patient (src/core/metrics/bootstrap.ts); percentile intervals, [low, high] or null. */
export interface PatientIntervals extends Omit<BootstrapResult, 'thresholds' | 'samples'> {
  /** One per operatingPoints row, same order. */
  operatingPoints: OperatingPointInterval[];
  seconds: number;
}

/** Reliability and, with evaluate.calibration "temperature", the fitted temperature. */
export interface CalibrationReport {
  method: 'none' | 'temperature';
  /** The evaluated split's scores as the model gives them (predictions.csv). */
  before: CalibrationSummary;
  /** Fitted on validation patients (on the evaluated split itself only when that is val, and then said so in warnings). */
  temperature?: { value: number; fittedOn: 'test' | 'val' | 'train'; n: number; nllBefore: number; nllAfter: number; atBound: boolean };
  /** The evaluated split's scores after sigmoid(logit(p) / T). */
  after?: CalibrationSummary;
}

/** The validation patients evaluate scored to choose thresholds (and the temperature) on. */
export interface ValidationInfo {
  split: 'val';
  n: number;
  positives: number;
  patients: number;
  auc: number | null;
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
  /** Which applied and why, in words ("Macenko, as run r1 was trained"); absent in older files. */
  stainNormalizationReason?: string;
  /** Confidence intervals by patient; absent when evaluate.bootstrap.resamples is 0 (and in older files). */
  intervals?: PatientIntervals;
  /** Reliability diagram, ECE, Brier score (and temperature scaling); absent in older files. */
  calibration?: CalibrationReport;
  /** Set when the data-driven thresholds were chosen on validation patients. */
  validation?: ValidationInfo;
  /** Test-time augmentation the scores were averaged over (evaluate.tta); absent in older files = none. */
  tta?: 'none' | 'flips' | 'dihedral';
  /** The runs of an ensemble (their mean probability is the score). */
  ensemble?: string[];
  /** Set when the shipped baseline model scored (models/baseline/baseline.json). */
  baseline?: { recipe: string; createdAt: string };
  /** Set on a cross-validation's pooled out-of-fold evaluation (idc cv). */
  cv?: CvSummary;
  /** Set when another labelled archive was scored (idc evaluate --archive). */
  external?: ExternalInfo;
}

/** An external archive scored by evaluate --archive; its manifest, split and cache are in <output>/external/<name>/. */
export interface ExternalInfo {
  name: string;
  /** The archive as given (folder or .zip), only read. */
  archive: string;
  patients: number;
  /** Its patients that are in the model's training or validation split (the workspace's own archive). */
  overlap: string[];
  warning?: string;
}

/** metrics.json of a cross-validation: the pooled out-of-fold evaluation plus one row per fold. */
export interface CvSummary {
  id: string;
  folds: number;
  seed: number;
  rows: CvFoldRow[];
  /** Mean and sample standard deviation over folds (folds where the metric is undefined left out). */
  mean: { auc: number | null; averagePrecision: number | null };
  sd: { auc: number | null; averagePrecision: number | null };
}

export interface CvFoldRow {
  fold: number;
  runId: string;
  patients: { train: string[]; val: string[]; test: string[] };
  n: number;
  positives: number;
  auc: number | null;
  averagePrecision: number | null;
  bestEpoch?: number;
  epochs: number;
}
