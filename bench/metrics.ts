/**
 * Timing of the metrics core on 45,000 scores (a test split's size): one sort, then both curves,
 * ROC AUC, AP and the operating points; then the patient bootstrap (2,000 resamples of 42
 * patients, budget 2 s). Run: npm run bench:metrics
 */
import { EvalContext, rocAuc, thresholdMetrics, downsampleCurve } from '../src/core/metrics';
import { patientBootstrap } from '../src/core/metrics/bootstrap';
import { calibrationSummary, fitTemperature } from '../src/core/metrics/calibration';
import { Rng } from '../src/core/rng';

const N = 45_000;
const rng = new Rng('bench-metrics');
const labels = new Uint8Array(N);
const scores = new Float32Array(N); // as predictSplit returns them
for (let i = 0; i < N; i++) {
  labels[i] = rng.next() < 0.28 ? 1 : 0; // the archive's IDC share
  scores[i] = 1 / (1 + Math.exp(-(rng.normal() + (labels[i] ? 1.6 : -0.6))));
}

function all() {
  const ctx = EvalContext.from(labels, scores);
  const roc = ctx.rocCurve();
  const pr = ctx.precisionRecallCurve();
  const auc = ctx.rocAuc();
  const ap = ctx.averagePrecision();
  const youden = ctx.youden();
  const f1 = ctx.f1Optimal();
  const r95 = ctx.thresholdForRecall(0.95);
  const at = thresholdMetrics(labels, scores, youden!.threshold);
  const shown = downsampleCurve({ x: roc.fpr, y: roc.tpr }, 512, [roc.thresholds.indexOf(youden!.threshold)]);
  return { ctx, roc, pr, auc, ap, youden, f1, r95, at, shown };
}

function time<T>(fn: () => T): [number, T] {
  const t0 = process.hrtime.bigint();
  const r = fn();
  return [Number(process.hrtime.bigint() - t0) / 1e6, r];
}

const [cold, r] = time(all);
const warm: number[] = [];
for (let i = 0; i < 20; i++) warm.push(time(all)[0]);
warm.sort((a, b) => a - b);
const slider: number[] = [];
const [sliderMs] = time(() => { for (let i = 0; i < 10_000; i++) slider.push(r.ctx.metricsAt(i / 10_000).f1); });
const [legacyMs] = time(() => rocAuc(labels, scores));

console.log(`metrics core, ${N} scores (${r.ctx.table.thresholds.length} distinct), ${r.ctx.positives} positive`);
console.log(`  all metrics (sort, ROC + PR curves, AUC, AP, Youden, F1-opt, recall>=0.95, metrics+errors at a threshold, downsample):`);
console.log(`    first call ${cold.toFixed(1)} ms, warm median ${warm[warm.length >> 1].toFixed(1)} ms, min ${warm[0].toFixed(1)} ms (budget 200 ms)`);
console.log(`  ROC ${r.roc.fpr.length} points (drop_intermediate), PR ${r.pr.precision.length} points, shown ${r.shown.length}`);
console.log(`  AUC ${r.auc.value.toFixed(6)}, AP ${r.ap.value.toFixed(6)}, Youden t=${r.youden!.threshold.toFixed(4)} J=${r.youden!.value.toFixed(4)}, F1-opt t=${r.f1!.threshold.toFixed(4)} F1=${r.f1!.value.toFixed(4)}, recall>=0.95 at t=${r.r95!.threshold.toFixed(4)}`);
console.log(`  threshold table: 10,000 slider lookups ${sliderMs.toFixed(1)} ms (${((sliderMs * 1000) / 10_000).toFixed(2)} µs each)`);
console.log(`  rocAuc alone (training loop) ${legacyMs.toFixed(1)} ms`);
if (cold > 200) console.log('  OVER BUDGET: first call exceeded 200 ms');

// Patient bootstrap: 42 patients of different sizes and prevalences, each with its own score offset.
const PATIENTS = 42;
const patients: string[] = new Array(N);
{
  const sizes = Array.from({ length: PATIENTS }, () => 0.3 + rng.next());
  const total = sizes.reduce((a, b) => a + b, 0);
  let p = 0, acc = (sizes[0] / total) * N;
  for (let i = 0; i < N; i++) {
    while (i >= acc && p < PATIENTS - 1) acc += (sizes[++p] / total) * N;
    patients[i] = `p${p}`;
  }
}
const points = [0.5, r.youden!.threshold, r.f1!.threshold, r.r95!.threshold];
const boot = () => patientBootstrap(labels, scores, patients, { resamples: 2000, seed: 42, confidence: 0.95, thresholds: points });
const [bootCold, b] = time(boot);
const bootWarm = [0, 1, 2].map(() => time(boot)[0]).sort((a, c) => a - c);
console.log(`patient bootstrap, ${N} predictions from ${PATIENTS} patients, 2,000 resamples, ${points.length} operating points, ROC and PR bands:`);
console.log(`    first call ${bootCold.toFixed(0)} ms, warm median ${bootWarm[1].toFixed(0)} ms (budget 2,000 ms)`);
console.log(`  AUC 95% CI ${b.auc!.map((v) => v.toFixed(4)).join('–')}, AP ${b.averagePrecision!.map((v) => v.toFixed(4)).join('–')}, recall at 0.5 ${b.thresholds[0].recall!.map((v) => v.toFixed(3)).join('–')}`);
if (bootCold > 2000) console.log('  OVER BUDGET: the bootstrap exceeded 2 s');
const [calMs] = time(() => { calibrationSummary(labels, scores); return fitTemperature(labels, scores); });
console.log(`  reliability bins + ECE + Brier + temperature fit on ${N} scores: ${calMs.toFixed(0)} ms`);
