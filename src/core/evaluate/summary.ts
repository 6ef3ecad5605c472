/**
 * The text `idc evaluate` prints: headline metrics with their intervals by patient, calibration,
 * and the operating-point table saying which patients chose each threshold. Pure, so it is tested
 * without running a model.
 */
import type { Interval } from '../metrics/bootstrap';
import type { EvalReport, InputsChosenBy, OperatingPointRow } from './types';
import type { DeploySettings } from './deploy';

const f = (x: number | null | undefined, d = 3): string => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d));
const pctLevel = (c: number): string => `${+(c * 100).toFixed(1)}%`;

/** "0.912–0.971", or "—" when undefined. */
export function intervalText(iv: Interval | undefined, d = 3): string {
  return iv ? `${f(iv[0], d)}–${f(iv[1], d)}` : '—';
}

/** Who chose a threshold, in words: config, or the split (with "optimistic" when the evaluated test patients chose it themselves). */
export function chosenOnText(o: Pick<OperatingPointRow, 'chosenOn' | 'label'>, split: EvalReport['split']): string {
  if (!o.chosenOn) return '';
  if (o.chosenOn === 'config') return 'config';
  return o.chosenOn === split && split !== 'val' && !o.label.includes('optimistic') ? `${o.chosenOn} (optimistic)` : o.chosenOn;
}

/**
 * How a model's inputs were prepared and why, in words (metrics.json's and predict's summary.json's
 * stainNormalizationReason). `runs` names the run ("run r1") or says "its runs" for an ensemble.
 */
export function inputsText(mode: 'none' | 'macenko', chosenBy: InputsChosenBy, runs = 'the run'): string {
  const what = mode === 'macenko' ? 'Macenko' : 'as scanned';
  switch (chosenBy) {
    case 'run': return `${what}, as ${runs} ${runs === 'its runs' ? 'were' : 'was'} trained`;
    case 'baseline': return `${what}, as the baseline model was trained`;
    case 'config': return `${what}, as your config sets`;
    case 'option': return `${what}, as --stain-normalization sets`;
    case 'no-run-config': return `${what}: a model without a run config; set data.stainNormalization or --stain-normalization to change`;
  }
}

/** What idc predict applied beyond the raw scores: the labels' threshold and the temperature, each with where it came from. */
export function deployLines(d: DeploySettings): string[] {
  const out = [`Labels (predicted_label) at threshold ${+d.threshold.toPrecision(4)}: ${d.thresholdReason}.`];
  if (d.temperature) out.push(`Calibrated probabilities (score_calibrated) = sigmoid(logit(score) / T), ${d.temperature.reason}.`);
  if (d.calibrationNote) out.push(`Note: ${d.calibrationNote}`);
  return out;
}

export function evalSummaryLines(m: EvalReport): string[] {
  const out: string[] = [];
  const iv = m.intervals;
  const level = iv ? pctLevel(iv.confidence) : '';
  const withCi = (v: number | null, i: Interval | undefined, extra = ''): string =>
    iv ? `${f(v, 4)} (${level} CI ${i ? intervalText(i) : 'undefined'} by patient${extra})` : f(v, 4);
  out.push(`  ROC AUC ${withCi(m.auc, iv?.auc, iv ? `, ${iv.patients} patient${iv.patients === 1 ? '' : 's'}` : '')}   average precision ${withCi(m.averagePrecision, iv?.averagePrecision)}`);
  if (iv) {
    const left = iv.undefinedResamples.auc ? `; ${iv.undefinedResamples.auc} with one class only left out of the AUC's` : '';
    out.push(`  intervals: percentile, ${iv.resamples} resamples of whole patients (seed ${iv.seed})${left}`);
    for (const w of iv.warnings) out.push(`  interval warning: ${w}`);
  }
  const c = m.calibration;
  if (c) {
    let line = `  calibration (10 bins): ECE ${f(c.before.ece)}, Brier ${f(c.before.brier, 4)}`;
    if (c.temperature && c.after) line += `; temperature T = ${c.temperature.value.toPrecision(3)} fitted on ${c.temperature.fittedOn} (${c.temperature.n} patches): ECE ${f(c.after.ece)}, Brier ${f(c.after.brier, 4)}`;
    out.push(line);
  }
  if (m.stainNormalizationReason) out.push(`  inputs: ${m.stainNormalizationReason}`);
  else if (m.stainNormalization === 'macenko') out.push('  inputs stain-normalized per slide (Macenko)');
  if (m.validation) {
    out.push(`  Youden's J, F1-optimal and recall-target thresholds chosen on the val patients (${m.validation.patients} patients, ${m.validation.n} patches) and applied to these ${m.split} patients; rows marked "(optimistic)" were chosen on the ${m.split} patients themselves.`);
  } else if (m.split !== 'val' && m.operatingPoints.some((o) => o.chosenOn === m.split)) {
    out.push(`  No validation patients: the data-driven thresholds were chosen on the ${m.split} patients themselves (optimistic).`);
  }
  return out;
}

/** The operating-point table; with intervals, a second line per point holds them under their columns. */
export function operatingPointLines(m: EvalReport): string[] {
  const out: string[] = [];
  const iv = m.intervals;
  const label = Math.max(22, ...m.operatingPoints.map((o) => o.label.length));
  const chosen = Math.max(9, ...m.operatingPoints.map((o) => chosenOnText(o, m.split).length));
  out.push(`  ${'operating point'.padEnd(label)} ${'chosen on'.padEnd(chosen)} threshold     TP     FP     TN     FN   precision      recall specificity          F1  bal.acc`);
  m.operatingPoints.forEach((o, i) => {
    out.push(`  ${o.label.padEnd(label)} ${chosenOnText(o, m.split).padEnd(chosen)} ${o.threshold.toFixed(4).padStart(9)} ${String(o.tp).padStart(6)} ${String(o.fp).padStart(6)} ${String(o.tn).padStart(6)} ${String(o.fn).padStart(6)} ${f(o.precision).padStart(11)} ${f(o.recall).padStart(11)} ${f(o.specificity).padStart(11)} ${f(o.f1).padStart(11)} ${f(o.balancedAccuracy).padStart(8)}`);
    const p = iv?.operatingPoints[i];
    if (p && p.threshold === o.threshold) {
      const head = `${pctLevel(iv!.confidence)} CI by patient`;
      out.push(`  ${''.padEnd(label)} ${head.padStart(chosen + 38)} ${intervalText(p.precision).padStart(11)} ${intervalText(p.recall).padStart(11)} ${intervalText(p.specificity).padStart(11)} ${intervalText(p.f1).padStart(11)}`);
    }
  });
  return out;
}
