/**
 * The README table of bench/cv-grid.sh: one row per recipe, training seed and test-time
 * augmentation, from each pooled out-of-fold metrics.json.
 * Usage: node --import tsx bench/cv-grid-table.ts [results folder, default .idc-cv-grid/results]
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { EvalReport } from '../src/core/evaluate/types';
import { readPredictions } from '../src/core/evaluate/predictions';
import { patientBootstrap, percentile } from '../src/core/metrics/bootstrap';

const dir = resolve(process.argv[2] ?? '.idc-cv-grid/results');
if (!existsSync(dir)) {
  console.error(`No results in ${dir}: run bench/cv-grid.sh first.`);
  process.exit(1);
}
const f = (x: number | null | undefined, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));
const ci = (iv: [number, number] | null | undefined) => (iv ? `${f(iv[0])}–${f(iv[1])}` : '—');

const rows: string[] = [];
const runs = new Map<string, { recipe: string; seed: string; tta: string; m: EvalReport }>();
for (const name of readdirSync(dir).sort()) {
  const file = join(dir, name, 'metrics.json');
  if (!existsSync(file)) continue;
  const m = JSON.parse(readFileSync(file, 'utf8')) as EvalReport;
  const match = /^(.*)-seed(\d+)-(none|flips|dihedral)$/.exec(name);
  if (!match || !m.cv) continue;
  const [, recipe, seed, tta] = match;
  runs.set(name, { recipe, seed, tta, m });
  const folds = m.cv.rows.map((r) => f(r.auc)).join(' / ');
  rows.push(`| ${recipe.replace(/-/g, ' + ')} | ${seed} | ${tta} | **${f(m.auc)}** (${ci(m.intervals?.auc)}) | ${f(m.averagePrecision)} (${ci(m.intervals?.averagePrecision)}) | ${f(m.cv.mean.auc)} ± ${f(m.cv.sd.auc)} | ${folds} | ${f(m.calibration?.before.ece)} |`);
}
console.log('| recipe | train seed | TTA | pooled ROC AUC (95% CI by patient) | pooled AP (95% CI) | fold AUC mean ± sd (two-class folds) | AUC per fold | ECE |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);

const B = 2000;
/** Every resample's pooled AUC of one result (predictions.csv), computed once per result. */
const aucSamples = new Map<string, Float64Array>();
function resampledAuc(name: string): Float64Array {
  let got = aucSamples.get(name);
  if (!got) {
    const p = readPredictions(join(dir, name, 'predictions.csv'));
    got = patientBootstrap(p.map((r) => r.label ?? 0), p.map((r) => r.score), p.map((r) => r.patient), { resamples: B, seed: 42, keepSamples: true }).samples!.auc;
    aucSamples.set(name, got);
  }
  return got;
}

// Paired by patient: both recipes scored the same patients, and one seed draws the same patient
// resamples for both, so each resample gives a difference and the interval is the differences'.
const pairs: string[] = [];
const label = (r: { recipe: string; tta: string }) => `${r.recipe.replace(/-/g, ' + ')}${r.tta === 'none' ? '' : ` + TTA ${r.tta}`}`;
for (const [name, r] of runs) {
  // Each recipe against the notebook's, and test-time augmentation against none, on the same seed.
  // The defaults' recipe also against the notebook's with the same stain setting.
  // A batch-norm variant against the same recipe with the default momentum.
  const same = r.recipe.replace(/^defaults/, 'notebook');
  const bn = r.recipe.replace(/-bn\d+$/, '');
  const bases = [...new Set([`notebook-seed${r.seed}-${r.tta}`, `${same}-seed${r.seed}-${r.tta}`, `${r.recipe}-seed${r.seed}-none`, `${bn}-seed${r.seed}-${r.tta}`])].filter((b) => b !== name && runs.has(b));
  for (const base of bases) {
    const [sa, sb] = [resampledAuc(name), resampledAuc(base)];
    const d = Array.from(sa, (x, i) => x - sb[i]).filter(Number.isFinite).sort((x, y) => x - y);
    const wins = d.filter((x) => x > 0).length / d.length;
    const [ma, mb] = [r.m, runs.get(base)!.m];
    pairs.push(`| ${label(r)} | ${label(runs.get(base)!)} | ${r.seed} | ${f(ma.auc === null || mb.auc === null ? null : ma.auc - mb.auc)} | ${f(percentile(d, 0.025))} to ${f(percentile(d, 0.975))} | ${(100 * wins).toFixed(0)} % |`);
  }
}
if (pairs.length) {
  console.log('\n| this | against | train seed | Δ pooled ROC AUC | paired 95% CI by patient | resamples where it is higher |');
  console.log('|---|---|---|---|---|---|');
  for (const p of pairs) console.log(p);
}

// At the working threshold (evaluate.threshold, 0.5): what a user who does not tune it gets.
const at: string[] = [];
for (const [name, r] of runs) {
  const p = readPredictions(join(dir, name, 'predictions.csv'));
  const t = r.m.threshold;
  let tp = 0, fn = 0, tn = 0, fp = 0;
  for (const q of p) {
    const pos = q.score >= t;
    if (q.label === 1) { if (pos) tp++; else fn++; } else if (pos) fp++; else tn++;
  }
  const sens = tp / (tp + fn), spec = tn / (tn + fp);
  at.push(`| ${label(r)} | ${r.seed} | ${t} | ${f(sens)} | ${f(spec)} | ${f((sens + spec) / 2)} | ${f((tp + fp) / p.length)} (${f((tp + fn) / p.length)}) |`);
}
if (at.length) {
  console.log('\n| recipe | train seed | threshold | sensitivity | specificity | balanced accuracy | predicted positive (true share) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const a of at) console.log(a);
}
