/**
 * The README table of bench/real.ts: one row per recipe and training seed, scored on the test
 * patients, with thresholds and temperature chosen on the validation patients; then recipes
 * paired by patient against a reference recipe (default: the defaults) on the same seed.
 * Usage: node --import tsx bench/real-table.ts [results folder, default .idc-real/results] [reference recipe]
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { EvalReport, OperatingPointName } from '../src/core/evaluate/types';
import { readPredictions } from '../src/core/evaluate/predictions';
import { patientBootstrap, percentile } from '../src/core/metrics/bootstrap';

interface Result { name: string; recipe: string; seed: number; m: EvalReport; run: { epochs: number; bestEpoch?: number; trainSeconds: number; backend: string } }

const f = (x: number | null | undefined, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));
const ci = (iv: [number, number] | null | undefined) => (iv ? `${f(iv[0])}–${f(iv[1])}` : '—');
const minutes = (s: number) => `${Math.round(s / 60)} min`;

export function readRealResults(dir: string): Result[] {
  const out: Result[] = [];
  for (const name of readdirSync(dir).sort()) {
    const file = join(dir, name, 'metrics.json');
    const match = /^(.*)-seed(\d+)$/.exec(name);
    if (!match || !existsSync(file)) continue;
    const m = JSON.parse(readFileSync(file, 'utf8')) as EvalReport;
    const run = JSON.parse(readFileSync(join(dir, name, 'run.json'), 'utf8')) as Result['run'];
    out.push({ name, recipe: match[1], seed: Number(match[2]), m, run });
  }
  return out.sort((a, b) => a.recipe.localeCompare(b.recipe) || a.seed - b.seed);
}

function point(m: EvalReport, name: OperatingPointName) {
  const p = m.operatingPoints.find((o) => o.name === name);
  // Only thresholds the validation patients chose count: one chosen on test is optimistic.
  return p && p.chosenOn === 'val' ? p : undefined;
}

export function printRealTable(dir: string, against = 'defaults'): void {
  const results = readRealResults(dir);
  if (!results.length) { console.log(`No finished results in ${dir}.`); return; }
  console.log('| recipe | seed | test ROC AUC (95% CI by patient) | AP (95% CI) | Youden (val): threshold / sens / spec / bal. acc. / F1 | recall ≥ 0.90 (val): threshold / sens / spec / bal. acc. / F1 | ECE before → after T (T) | epochs (best) | train time |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const { m } = r;
    const op = (name: OperatingPointName) => {
      const p = point(m, name);
      return p ? `${f(p.threshold)} / ${f(p.sensitivity)} / ${f(p.specificity)} / **${f(p.balancedAccuracy)}** / **${f(p.f1)}**` : '—';
    };
    const cal = m.calibration;
    const t = cal?.temperature ? ` (${f(cal.temperature.value, 2)})` : '';
    console.log(`| ${r.recipe} | ${r.seed} | **${f(m.auc)}** (${ci(m.intervals?.auc)}) | ${f(m.averagePrecision)} (${ci(m.intervals?.averagePrecision)}) | ${op('youden')} | ${op('recall-target')} | ${f(cal?.before.ece)} → ${f(cal?.after?.ece)}${t} | ${r.run.epochs} (${r.run.bestEpoch === undefined ? '—' : r.run.bestEpoch + 1}) | ${minutes(r.run.trainSeconds)} on ${r.run.backend.replace(/;.*/, '')} |`);
  }
  const first = results[0].m;
  console.log(`\nTest: ${first.n} patches (${first.positives} IDC) from ${first.patients.length} patients; validation: ${first.validation?.patients ?? '—'} patients, ${first.validation?.n ?? '—'} patches.`);

  // Paired by patient: the same test patients, and one bootstrap seed draws the same resamples.
  const B = 2000;
  const samples = new Map<string, Float64Array>();
  const resampled = (r: Result) => {
    let got = samples.get(r.name);
    if (!got) {
      const p = readPredictions(join(dir, r.name, 'predictions.csv'));
      got = patientBootstrap(p.map((q) => q.label ?? 0), p.map((q) => q.score), p.map((q) => q.patient), { resamples: B, seed: 42, keepSamples: true }).samples!.auc;
      samples.set(r.name, got);
    }
    return got;
  };
  const pairs: string[] = [];
  for (const r of results) {
    if (r.recipe === against) continue;
    const base = results.find((b) => b.recipe === against && b.seed === r.seed);
    if (!base || r.m.auc === null || base.m.auc === null) continue;
    const [a, b] = [resampled(r), resampled(base)];
    const d = Array.from(a, (x, i) => x - b[i]).filter(Number.isFinite).sort((x, y) => x - y);
    const wins = d.filter((x) => x > 0).length / d.length;
    pairs.push(`| ${r.recipe} | ${against} | ${r.seed} | ${f(r.m.auc - base.m.auc)} | ${f(percentile(d, 0.025))} to ${f(percentile(d, 0.975))} | ${(100 * wins).toFixed(0)} % |`);
  }
  if (pairs.length) {
    console.log('\n| this | against | seed | Δ test ROC AUC | paired 95% CI by patient | resamples where it is higher |');
    console.log('|---|---|---|---|---|---|');
    for (const p of pairs) console.log(p);
  }

  // The targets of issue 18, per recipe: every seed must reach them.
  console.log('\n| recipe | seeds | min / mean test ROC AUC (target ≥ 0.93) | min bal. acc. at Youden (≥ 0.87) | min F1 at Youden (≥ 0.80) |');
  console.log('|---|---|---|---|---|');
  for (const recipe of [...new Set(results.map((r) => r.recipe))]) {
    const rs = results.filter((r) => r.recipe === recipe);
    const aucs = rs.map((r) => r.m.auc ?? NaN);
    const ba = rs.map((r) => point(r.m, 'youden')?.balancedAccuracy ?? NaN);
    const f1 = rs.map((r) => point(r.m, 'youden')?.f1 ?? NaN);
    console.log(`| ${recipe} | ${rs.map((r) => r.seed).join(', ')} | ${f(Math.min(...aucs))} / ${f(aucs.reduce((s, x) => s + x, 0) / aucs.length)} | ${f(Math.min(...ba))} | ${f(Math.min(...f1))} |`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = resolve(process.argv[2] ?? '.idc-real/results');
  if (!existsSync(dir)) { console.error(`No results in ${dir}: run "npm run bench:real" first.`); process.exit(1); }
  printRealTable(dir, process.argv[3]);
}
