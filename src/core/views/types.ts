/**
 * What each webview panel shows, computed from the artifacts on disk by the builders in this
 * folder (pure file reading: no TF.js, no `vscode`), sent to the page as JSON. Image fields are
 * absolute file paths inside the dataset or output folder; the panel host turns them into
 * webview URIs (and refuses anything else).
 */
import type { EpochLog } from '../train/checkpoint';
import type { RunInfo } from '../train/train';
import type { CalibrationReport, EvalReport, OperatingPointRow, PatientIntervals, ValidationInfo } from '../evaluate/types';
import type { SplitName } from '../split';
import type { CacheFailure } from '../cache/format';

// ------------------------------------------------------------------------------------- dataset

export interface SplitCounts {
  split: SplitName;
  patients: number;
  patches: number;
  positives: number;
  negatives: number;
  /** positives / patches (0 when empty). */
  positiveRate: number;
}

export interface DatasetPatient {
  patient: string;
  /** 'unassigned' before the split exists. */
  split: SplitName | 'unassigned';
  patches: number;
  positives: number;
  positiveRate: number;
  /** Patches smaller than 50x50 (slide border). */
  edgePatches: number;
  /** The slide's Macenko stain estimate, once stain normalization has run (data.stainNormalization). */
  stain?: PatientStain;
}

/**
 * A slide's stains: unit optical-density vectors of haematoxylin and eosin (RGB) and their
 * 99th-percentile amounts; or why there is no estimate.
 */
export type PatientStain = { h: [number, number, number]; e: [number, number, number]; hAmount: number; eAmount: number } | { skipped: string };

export interface PatchTile {
  id: string;
  patient: string;
  x: number;
  y: number;
  label: 0 | 1;
  split?: SplitName;
  /** Absolute path of a PNG of the patch (extracted under the output folder for a .zip archive). */
  image: string;
}

export interface DatasetView {
  folder: string;
  archive: string;
  manifest: string;
  /** False before "Organize Raw Archive" has run: everything below is then empty. */
  hasManifest: boolean;
  totals: { patients: number; patches: number; positives: number; negatives: number; edgePatches: number };
  /** Null before "Split by Patient" has run. */
  splits: SplitCounts[] | null;
  /** split.json's settings; null before the split exists. */
  split: SplitSettings | null;
  patients: DatasetPatient[];
  /** Result of the patient-overlap check between splits; null before the split exists. */
  leakage: { ok: boolean; overlapping: string[]; message: string } | null;
  /** organize-report.json in brief; null when there is none. */
  organize: OrganizeBrief | null;
  sample: PatchTile[];
  /** Things the user should fix (stale split, missing files …), one line each. */
  problems: string[];
  /** Patches of the manifest the patch cache could not decode, left out of training and evaluation (cache.json). */
  unreadable: CacheFailure[];
}

export interface SplitSettings {
  file: string;
  seed: number;
  ratios: [number, number, number];
  stratify: boolean;
  createdAt: string;
  /** The split records another manifest's hash: organize ran again since. */
  stale: boolean;
}

export interface OrganizeBrief {
  kind: 'dir' | 'zip';
  createdAt: string;
  files: number;
  skipped: number;
  suspicious: number;
  duplicates: number;
  /** Skipped or suspicious files, by reason, most frequent first. */
  issues: { reason: string; count: number }[];
}

// ------------------------------------------------------------------------------------- training

export type TrainingEpoch = EpochLog;

export interface RunSummary extends RunInfo {
  epochsDone: number;
  bestValAuc?: number;
  bestValLoss?: number;
}

export interface ModelSummaryRow {
  name: string;
  type: string;
  /** e.g. "(None, 50, 50, 32)". */
  outputShape: string;
  params: number;
  /** Of those, the ones the optimizer does not update (batch-norm moving statistics, frozen layers). */
  nonTrainableParams?: number;
}

/** What Keras' model.summary() prints, computed from the saved topology (or the run's config). */
export interface ModelSummary {
  name: string;
  /** model.json: the saved model's topology; config: rebuilt from the run's model.* settings (run still training). */
  source: 'model.json' | 'config';
  rows: ModelSummaryRow[];
  totalParams: number;
  trainableParams: number;
  nonTrainableParams: number;
  /** float32 weights: 4 bytes a parameter. */
  totalBytes: number;
  /** The parameter total checked against the weights actually stored (model.json's weightsManifest, or the newest checkpoint's weight list). */
  check?: { against: 'weightsManifest' | 'checkpoint'; params: number; ok: boolean };
  /** e.g. "Layer names are assigned when the model is saved." */
  note?: string;
}

export interface TrainingView {
  run: RunSummary;
  /** <output>/runs/<id>. */
  runDir: string;
  history: TrainingEpoch[];
  /** Epochs the run was configured for (train.epochs); early stopping may end it sooner. */
  epochs: number;
  /** Epoch indices where ReduceLROnPlateau lowered the learning rate. */
  lrReducedAt: number[];
  /** Epoch whose weights are (or will be) restored; null when none yet. */
  bestEpoch: number | null;
  /** The metric early stopping watches (its value at bestEpoch is the "best"), when enabled. */
  monitor?: string;
  /** Mean seconds per epoch so far, and what that means for the remaining epochs. */
  epochSeconds: number | null;
  etaSeconds: number | null;
  backend: string;
  model: ModelSummary | null;
  /** Why there is no model summary (e.g. "available when training finishes"). */
  modelNote?: string;
  /** The run's own config file, as saved when it started. */
  config: unknown;
  /** True while the language server reports this run as the running job. */
  running: boolean;
  /** Things that could not be read (damaged history line, missing config …), one line each. */
  problems: string[];
  /** What the run said when it started (run.json warnings: a one-class validation split), also once finished. */
  warnings: string[];
  /** Set when the run is a fold of a cross-validation (`<cv>-fold<i>`): every fold, for the fold table and overlaid curves. */
  cv?: CvTrainingView;
}

/** One fold of a cross-validation, as far as it has got. */
export interface CvFoldView {
  /** 1-based. */
  fold: number;
  runId: string;
  /** pending: not started; interrupted: started, not running now (rerunning the cross-validation resumes it). */
  status: 'pending' | 'running' | 'interrupted' | 'finished';
  /** Patients training, stopping early (the next fold) and tested. */
  patients: { train: number; val: number; test: number };
  /** Test patches and their IDC+ count: the fold's evaluation once scored, else its split; null before either exists. */
  testPatches: number | null;
  positives: number | null;
  /** The fold's own test figures, once it is scored. */
  auc: number | null;
  averagePrecision: number | null;
  bestEpoch: number | null;
  epochsDone: number;
  /** Planned epochs (a finished run: the ones it ran). */
  epochs: number;
  history: TrainingEpoch[];
}

/** A cross-validation's folds for the Training panel. */
export interface CvTrainingView {
  id: string;
  folds: number;
  seed: number;
  createdAt: string;
  rows: CvFoldView[];
  /** Mean and sample sd over the scored folds that hold both classes (as metrics.json's cv); null until there is one. */
  mean: { auc: number | null; averagePrecision: number | null };
  sd: { auc: number | null; averagePrecision: number | null };
  /** Folds the mean covers. */
  scored: number;
  /** The pooled out-of-fold evaluation (`<id>/test`), once every fold is scored. */
  pooled: { evaluation: string; n: number; positives: number; auc: number | null; averagePrecision: number | null; aucInterval?: [number, number] | null } | null;
  /** cv.json's warnings (fewer patients of a class than folds …). */
  warnings: string[];
}

/** A cross-validation in the Training panel's selector. */
export interface CvListItem {
  id: string;
  folds: number;
  /** Fold runs that exist so far. */
  runIds: string[];
  /** The pooled evaluation exists. */
  finished: boolean;
}

// ------------------------------------------------------------------------------------- threshold explorer

export interface EvaluationSummary extends Pick<EvalReport, 'model' | 'split' | 'n' | 'positives' | 'negatives' | 'auc' | 'averagePrecision' | 'createdAt'> {
  /** `<model>/<split>` (see ids.ts evaluationId): the run id or outside model's folder name, and the split. */
  id: string;
}

export interface ThresholdView {
  evaluation: EvaluationSummary;
  /** Every evaluation in the output folder, to switch between (oldest first). */
  evaluations: EvaluationSummary[];
  /** metrics.json's curves (thinned for display, marked points kept); null thresholds stand for +Infinity / the PR end point. */
  roc: { fpr: number[]; tpr: number[]; thresholds: (number | null)[] };
  pr: { precision: number[]; recall: number[]; thresholds: (number | null)[] };
  /**
   * Confusion counts at every distinct score, descending (predicted positive = score >= t), from
   * the full predictions: the slider looks counts up here, no round trip. fn = positives - tp,
   * tn = negatives - fp.
   */
  table: { thresholds: number[]; tp: number[]; fp: number[]; positives: number; negatives: number };
  /** metrics.json's operating points (working threshold at evaluation time, Youden's J, F1-optimal, recall target, pinned). */
  operatingPoints: OperatingPointRow[];
  /** evaluate.threshold now (idc.config.json; the evaluation's when the config cannot be read). */
  working: number;
  /** The working threshold the evaluation ran with (its patient table, error lists and slide maps use it). */
  evaluatedThreshold: number;
  /** evaluate.recallTarget now. */
  recallTarget: number;
  /** evaluate.pinnedThresholds now. */
  pinned: number[];
  warnings: string[];
  /** metrics.json's intervals by patient (one per operating point, ROC/PR bands); absent when evaluate ran without them. */
  intervals?: PatientIntervals;
  /** Reliability diagram, ECE, Brier score and the temperature, when fitted. */
  calibration?: CalibrationReport;
  /** The validation patients that chose the data-driven thresholds. */
  validation?: ValidationInfo;
  /** Set on a cross-validation's pooled out-of-fold evaluation: the folds and the spread of their own AUCs. */
  cv?: { id: string; folds: number; aucs: (number | null)[]; mean: number | null; sd: number | null; min: number | null; max: number | null };
}

// ------------------------------------------------------------------------------------- gallery

export interface GalleryItem {
  id: string;
  patient: string;
  x: number;
  y: number;
  label: 0 | 1;
  score: number;
  /** Absolute path of the patch PNG (null when the archive no longer has it). */
  image: string | null;
  /** Grad-CAM overlay PNG when one exists already (`<evaluation>/gradcam/<id>.png`). */
  gradcam?: string;
  /** Webview URIs, filled in by the panel host (never by the builder). */
  imageUri?: string | null;
  gradcamUri?: string | null;
}

export interface GalleryPatientCounts { patient: string; fn: number; fp: number; tp: number; tn: number }

export interface GalleryPage {
  evaluation: string;
  cell: 'fn' | 'fp' | 'tp' | 'tn';
  threshold: number;
  /** evaluate.threshold now (the evaluation's own when the config cannot be read): the gallery's default threshold. */
  working: number;
  /** Items in the cell (after the patient filter), and per-cell totals for the tabs (after the patient filter). */
  total: number;
  totals: { fn: number; fp: number; tp: number; tn: number };
  offset: number;
  /** Most wrong first: FN and TP by ascending score, FP and TN by descending score (errorPage's order). */
  items: GalleryItem[];
  /** Per-patient cell counts at this threshold (whole evaluation), for the patient filter; only on offset 0. */
  patients?: GalleryPatientCounts[];
  /** How many Grad-CAM overlays the evaluation folder holds. */
  gradcams: number;
}

// ------------------------------------------------------------------------------------- slide map

export interface SlidePatientRow {
  patient: string;
  patches: number;
  positives: number;
  fn: number;
  fp: number;
  /** tp / positives at the threshold; null without positives. */
  recall: number | null;
  auc: number | null;
}

export interface SlideTileView {
  id: string;
  x: number;
  y: number;
  label: 0 | 1;
  score: number;
  /** Rectangle in the slide image's pixels. */
  left: number;
  top: number;
  size: number;
}

export interface SlideMapView {
  evaluation: string;
  /** Every evaluation of the output folder (`<model>/<split>`), to switch between. */
  evaluations: string[];
  /** Worst first at `threshold`: most false negatives, then lowest recall, then lowest AUC. */
  patients: SlidePatientRow[];
  patient: string;
  /** The threshold the patient list counts FN/FP at (requested, else the working one). */
  threshold: number;
  /** The evaluation's working threshold (evaluate.threshold). */
  workingThreshold: number;
  width: number;
  height: number;
  /** Slide-image pixels per slide pixel (a 50-px patch is `50 * scale` image pixels). */
  scale: number;
  /**
   * Absolute PNG paths (RGBA, transparent outside the tiles): the rebuilt tissue, the ground-truth contour and the probability tint (
   * the page sets their opacity).
   */
  layers: { tissue: string; truth: string; probability: string };
  /** The static slide maps' colours (Okabe–Ito FN/FP, grey under overlays when the tissue is hidden), RGB. */
  colours: { falseNegative: readonly number[]; falsePositive: readonly number[]; truth: readonly number[]; noTissue: readonly number[] };
  /** When the layers were drawn (ms since 1970): changes when they are redrawn, so the page can bust its image cache. */
  layersVersion: number;
  /** Where the tissue pixels came from: the patch cache, the patch PNGs, or partly missing. */
  pixelSource: 'cache' | 'files' | 'mixed';
  /** Patches drawn grey because their pixels could not be read. */
  missingPixels: number;
  tiles: SlideTileView[];
  warnings: string[];
}
