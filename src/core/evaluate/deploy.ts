/**
 * What `idc predict` takes from the model's most recent evaluation, as a deployment would fix them
 * beforehand: the threshold (Youden's J chosen on validation patients) and, with evaluate.calibration
 * "temperature", the temperature fitted on them. Pure file reading (no TF.js).
 */
import { readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { IdcConfig } from '../config';
import type { ModelSet } from './ensemble';
import type { EvalReport } from './types';

export interface DeploySettings {
  /** Labels are score >= threshold. */
  threshold: number;
  thresholdChosenBy: 'youden-val' | 'baseline' | 'config';
  /** Which threshold and why, in words. */
  thresholdReason: string;
  /** Set when a fitted temperature applies: calibrated = sigmoid(logit(score) / T). */
  temperature?: { value: number; reason: string };
  /** evaluate.calibration is "temperature" but none applies: why (raw scores only). */
  calibrationNote?: string;
  /** The metrics.json the threshold or temperature came from. */
  evaluation?: string;
}

const SPLITS = ['test', 'val', 'train'] as const;

/**
 * The threshold and temperature for predictions of `set`. The newest evaluation of the same model,
 * not older than its weights, scored as predict scores now (test-time augmentation and inputs),
 * whose Youden's J was chosen on validation patients; evaluate.threshold only when there is none.
 */
export function deploySettings(outputDir: string, set: ModelSet, config: IdcConfig, stain: 'none' | 'macenko'): DeploySettings {
  const whose = set.runId ? `run ${set.runId}'s` : set.ensemble ? "the ensemble's" : "the model's";
  const found = latestEvaluation(set, config, stain);
  const ev = found.report;
  const at = found.file && relative(outputDir, found.file);
  const out: DeploySettings = { threshold: config.evaluate.threshold, thresholdChosenBy: 'config', thresholdReason: '' };
  const youden = ev?.operatingPoints.find((o) => o.name === 'youden' && o.chosenOn === 'val');
  if (youden && at) {
    out.threshold = youden.threshold;
    out.thresholdChosenBy = 'youden-val';
    out.thresholdReason = `Youden's J on ${whose} validation patients (${at}, ${ev!.createdAt})`;
    out.evaluation = at;
  } else if (set.baseline) {
    // The baseline's own, fixed when it was trained: better than a default 0.5 it was never tuned for.
    out.threshold = set.baseline.thresholds.youden;
    out.thresholdChosenBy = 'baseline';
    out.thresholdReason = `Youden's J on the baseline model's own validation patients (${set.baseline.data.patients.val} patients, chosen when it was trained; models/baseline/baseline.json)`;
  } else {
    out.thresholdReason = `evaluate.threshold from the config: ${found.why ?? `the latest evaluation (${at}) had no validation patients to choose one on`}`;
  }
  if (config.evaluate.calibration === 'temperature') {
    const t = ev?.calibration?.temperature;
    const shippedT = set.baseline?.temperature;
    if (t && t.fittedOn === 'val' && Number.isFinite(t.value) && t.value > 0) {
      out.temperature = { value: t.value, reason: `T = ${t.value.toPrecision(4)} fitted on ${whose} validation patients (${t.n} patches; ${at}, ${ev!.createdAt})` };
      out.evaluation = at;
    } else if (shippedT !== undefined && Number.isFinite(shippedT) && shippedT > 0) {
      out.temperature = { value: shippedT, reason: `T = ${shippedT.toPrecision(4)} fitted on the baseline model's own validation patients when it was trained (models/baseline/baseline.json)` };
    } else {
      out.calibrationNote = `evaluate.calibration is "temperature", but ${found.why ?? (t ? `the latest evaluation (${at}) fitted its temperature on its ${t.fittedOn} patients, not validation ones` : `the latest evaluation (${at}) fitted no temperature (it ran with evaluate.calibration "none")`)}: raw scores only. Run "idc evaluate" with evaluate.calibration "temperature" to fit one.`;
    }
  }
  return out;
}

/** The newest usable evaluation of `set`, or why there is none. */
function latestEvaluation(set: ModelSet, config: IdcConfig, stain: 'none' | 'macenko'): { report?: EvalReport; file?: string; why?: string } {
  const who = set.runId ? `run ${set.runId}` : set.ensemble ? 'the ensemble' : 'the model';
  const modelTime = Math.max(...set.members.map((m) => mtimeOf(m.modelDir.endsWith('.json') ? m.modelDir : join(m.modelDir, 'model.json'))));
  let best: { report: EvalReport; file: string } | undefined;
  let rejected: string | undefined;
  for (const split of SPLITS) {
    const file = join(set.evalRoot, split, 'metrics.json');
    let report: EvalReport;
    try {
      report = JSON.parse(readFileSync(file, 'utf8')) as EvalReport;
    } catch {
      continue; // none, or unreadable: not one to apply
    }
    if (report?.model !== set.label || !Array.isArray(report.operatingPoints)) continue;
    const time = Date.parse(report.createdAt);
    const tta = report.tta ?? 'none';
    const why = !(time >= modelTime) ? `${who}'s evaluation of ${split} predates its current weights`
      : tta !== config.evaluate.tta ? `${who}'s evaluation of ${split} averaged evaluate.tta "${tta}"; predict now uses "${config.evaluate.tta}"`
      : report.stainNormalization && report.stainNormalization !== stain ? `${who}'s evaluation of ${split} had inputs "${report.stainNormalization}"; predict's are "${stain}"`
      : undefined;
    if (why) { rejected ??= why; continue; }
    if (!best || time > Date.parse(best.report.createdAt)) best = { report, file };
  }
  if (best) return best;
  return { why: rejected ? `${rejected}, so it does not apply; evaluate again ("idc evaluate")` : `${who} has no evaluation yet ("idc evaluate" chooses a threshold on validation patients)` };
}

function mtimeOf(file: string): number {
  try { return statSync(file).mtimeMs; } catch { return 0; }
}
