/**
 * What makes an evaluation's numbers transferable to new patients: intervals by patient (not by
 * patch), calibration, and thresholds chosen on validation patients rather than on the evaluated
 * ones. Pure (no tfjs): buildEvalReport calls it on labels and scores.
 */
import type { EvaluateConfig } from '../config';
import { EvalContext } from '../metrics/context';
import { BOOTSTRAP_DEFAULTS, patientBootstrap } from '../metrics/bootstrap';
import { applyTemperature, calibrationSummary, fitTemperature } from '../metrics/calibration';
import type { ThresholdMetrics } from '../metrics/operating';
import type { CalibrationReport, EvalReport, OperatingPointName, OperatingPointRow, PatientIntervals } from './types';

/** Scores of the validation split, to choose thresholds and the temperature on. */
export interface ValidationScores {
  labels: ArrayLike<number>;
  scores: ArrayLike<number>;
  /** Patient of each row (counted for the report). */
  patients: ArrayLike<string>;
}

type Split = EvalReport['split'];

export interface ChosenPoint { name: OperatingPointName; label: string; threshold: number; chosenOn: OperatingPointRow['chosenOn'] }

/**
 * The data-driven operating points: Youden's J, F1-optimal and the recall target, chosen on `on`
 * (validation patients when given, else the evaluated split). With validation patients the
 * evaluated split's own optima follow as *-in-split rows, labelled optimistic.
 */
export function chooseOperatingPoints(evaluated: EvalContext, split: Split, recallTarget: number, validation?: EvalContext): { points: ChosenPoint[]; warnings: string[] } {
  const points: ChosenPoint[] = [];
  const warnings: string[] = [];
  const add = (ctx: EvalContext, on: Split, suffix: '' | '-in-split') => {
    const note = suffix ? ` on ${on} (optimistic)` : '';
    const youden = ctx.youden();
    if (youden) points.push({ name: `youden${suffix}`, label: `Youden's J${note}`, threshold: youden.threshold, chosenOn: on });
    const f1 = ctx.f1Optimal();
    if (f1) points.push({ name: `f1${suffix}`, label: `F1-optimal${note}`, threshold: f1.threshold, chosenOn: on });
    const rec = ctx.thresholdForRecall(recallTarget);
    // The label ends with the target: the threshold explorer reads it back from there.
    if (rec) points.push({ name: `recall-target${suffix}`, label: suffix ? `recall ≥ ${recallTarget}${note}` : `recall ≥ ${recallTarget}`, threshold: rec.threshold, chosenOn: on });
    else if (!suffix) warnings.push(`No threshold reaches recall ${recallTarget} on the ${on} split.`);
  };
  if (validation) {
    add(validation, 'val', '');
    if (!validation.youden()) warnings.push("The validation patients have one class only: Youden's J and the F1 optimum could not be chosen on them.");
    add(evaluated, split, '-in-split');
  } else {
    add(evaluated, split, '');
  }
  return { points, warnings };
}

/**
 * A warning when the working threshold (the gallery's, patient table's and slide maps') is far off
 * on the validation patients while Youden's J there is not: a model whose scores are shifted
 * (batch-norm statistics of one epoch, class weights, another scanner) calls nearly everything one
 * class at 0.5 although it ranks well. The fix is a threshold chosen on those patients.
 */
export function workingThresholdWarning(validation: EvalContext | undefined, threshold: number): string | undefined {
  const youden = validation?.youden();
  if (!validation || !youden) return undefined;
  const at = validation.metricsAt(threshold);
  const best = validation.metricsAt(youden.threshold);
  const ba = (m: ThresholdMetrics) => (m.sensitivity + m.specificity) / 2;
  if (Math.min(at.sensitivity, at.specificity) >= 0.5 || ba(best) - ba(at) < 0.1) return undefined;
  const f = (x: number) => x.toFixed(2);
  const calls = at.sensitivity < at.specificity ? 'IDC-negative' : 'IDC-positive';
  return `At the working threshold ${threshold} this model calls most validation patches ${calls} (sensitivity ${f(at.sensitivity)}, specificity ${f(at.specificity)}), although it ranks them well: its scores are shifted. Youden's J on the validation patients is ${+youden.threshold.toPrecision(4)} (sensitivity ${f(best.sensitivity)}, specificity ${f(best.specificity)}): set evaluate.threshold to it, or pick one in the Threshold Explorer, before reading the gallery, patient table and slide maps.`;
}

/** Patient-bootstrap intervals of AUC, AP and every operating point; undefined when resamples is 0. */
export function patientIntervals(labels: ArrayLike<number>, scores: ArrayLike<number>, patients: ArrayLike<string>, points: readonly OperatingPointRow[], cfg: Partial<EvaluateConfig['bootstrap']> = {}): PatientIntervals | undefined {
  const resamples = cfg.resamples ?? BOOTSTRAP_DEFAULTS.resamples;
  if (!resamples || !labels.length) return undefined;
  const t0 = performance.now();
  const b = patientBootstrap(labels, scores, patients, {
    resamples, seed: cfg.seed ?? BOOTSTRAP_DEFAULTS.seed, confidence: cfg.confidence ?? BOOTSTRAP_DEFAULTS.confidence,
    thresholds: points.map((o) => o.threshold),
  });
  return {
    method: b.method, resamples: b.resamples, seed: b.seed, confidence: b.confidence, patients: b.patients,
    undefinedResamples: b.undefinedResamples, auc: b.auc, averagePrecision: b.averagePrecision,
    operatingPoints: b.thresholds.map((t, i) => ({ name: points[i].name, label: points[i].label, ...t })),
    bands: b.bands, warnings: b.warnings,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * Reliability of the evaluated split's scores; with "temperature", T fitted on the validation
 * scores (on the evaluated split itself only when it is val) and the reliability after applying it.
 */
export function calibrationReport(labels: ArrayLike<number>, scores: ArrayLike<number>, split: Split, method: EvaluateConfig['calibration'] = 'none', validation?: ValidationScores): { report: CalibrationReport; warnings: string[] } {
  const report: CalibrationReport = { method, before: calibrationSummary(labels, scores) };
  const warnings: string[] = [];
  if (method !== 'temperature') return { report, warnings };
  const fitOn = validation && validation.labels.length ? { ...validation, split: 'val' as const } : split === 'val' ? { labels, scores, split } : undefined;
  if (!fitOn) {
    warnings.push('Temperature scaling needs validation patients; this split has none, so scores are reported uncalibrated.');
    return { report, warnings };
  }
  if (fitOn.split === 'val' && split === 'val' && !validation) warnings.push('The temperature was fitted on the evaluated (validation) patients themselves: its calibration here is optimistic.');
  const fit = fitTemperature(fitOn.labels, fitOn.scores);
  if (fit.atBound) warnings.push(`The fitted temperature ${fit.temperature.toPrecision(3)} is at the edge of its range (validation scores perfectly separated?): treat it with care.`);
  report.temperature = { value: fit.temperature, fittedOn: fitOn.split, n: fitOn.labels.length, nllBefore: fit.nllBefore, nllAfter: fit.nllAfter, atBound: fit.atBound };
  report.after = calibrationSummary(labels, applyTemperature(scores, fit.temperature));
  return { report, warnings };
}
