import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { patientBootstrap, percentile, drawMultiplicities, type BootstrapOptions } from '../src/core/metrics/bootstrap';
import { EvalContext, metricsFromCounts } from '../src/core/metrics';
import { Rng } from '../src/core/rng';

interface Data { labels: number[]; scores: number[]; patients: string[] }

/** Clustered data: each patient has its own prevalence and its own score offset (a stain batch). */
function clustered(patients: number, perPatient: number, seed: number, spread = 1.2, ties = false): Data {
  const rng = new Rng(seed);
  const d: Data = { labels: [], scores: [], patients: [] };
  for (let p = 0; p < patients; p++) {
    const prevalence = 0.05 + 0.6 * rng.next();
    const offset = rng.normal(0, spread);
    const n = Math.max(2, Math.round(perPatient * (0.5 + rng.next())));
    for (let i = 0; i < n; i++) {
      const y = rng.next() < prevalence ? 1 : 0;
      let s = 1 / (1 + Math.exp(-(offset + (y ? 1.5 : -1) + rng.normal(0, 1))));
      if (ties && rng.next() < 0.3) s = Math.round(s * 20) / 20;
      d.labels.push(y);
      d.scores.push(Math.fround(s));
      d.patients.push(`p${String(p).padStart(3, '0')}`);
    }
  }
  return d;
}

/**
 * The plain implementation: the same RNG draws, each resample materialized patch by patch and
 * scored with the exact (scikit-learn) metrics of src/core/metrics.
 */
function slowSamples(d: Data, o: { resamples: number; seed: number; thresholds: number[]; grid: number }) {
  const ids = [...new Set(d.patients)].sort();
  const rows = ids.map((id) => d.patients.flatMap((p, i) => (p === id ? [i] : [])));
  const rng = new Rng(o.seed);
  const m = new Int32Array(ids.length);
  const out = { auc: [] as number[], ap: [] as number[], points: o.thresholds.map(() => ({ recall: [] as number[], specificity: [] as number[], precision: [] as number[], f1: [] as number[] })), roc: [] as number[][], pr: [] as number[][] };
  for (let b = 0; b < o.resamples; b++) {
    m.fill(0);
    drawMultiplicities(rng, m);
    const labels: number[] = [], scores: number[] = [];
    rows.forEach((r, p) => { for (let k = 0; k < m[p]; k++) for (const i of r) { labels.push(d.labels[i]); scores.push(d.scores[i]); } });
    const ctx = EvalContext.from(labels, scores);
    const P = ctx.positives, N = ctx.negatives;
    out.auc.push(P && N ? ctx.rocAuc().value : NaN);
    out.ap.push(P ? ctx.averagePrecision().value : NaN);
    o.thresholds.forEach((t, j) => {
      const c = ctx.countsAt(t);
      const x = metricsFromCounts(c, t);
      out.points[j].recall.push(P ? x.recall : NaN);
      out.points[j].specificity.push(N ? x.specificity : NaN);
      out.points[j].precision.push(c.tp + c.fp ? x.precision : NaN);
      out.points[j].f1.push(P ? x.f1 : NaN);
    });
    // TPR on the FPR grid: the last curve point with fpr <= g (the top of a vertical run), then linear.
    const roc = ctx.rocCurve({ dropIntermediate: false });
    const rocRow: number[] = [];
    for (let k = 0; k <= o.grid; k++) {
      if (!(P && N)) { rocRow.push(NaN); continue; }
      const g = k / o.grid;
      let j = 0;
      while (j + 1 < roc.fpr.length && roc.fpr[j + 1] <= g) j++;
      rocRow.push(j + 1 < roc.fpr.length ? roc.tpr[j] + ((roc.tpr[j + 1] - roc.tpr[j]) * (g - roc.fpr[j])) / (roc.fpr[j + 1] - roc.fpr[j]) : roc.tpr[j]);
    }
    out.roc.push(rocRow);
    // Precision on the recall grid: at the highest threshold reaching that recall.
    const prRow: number[] = [];
    for (let k = 1; k <= o.grid; k++) {
      if (!P) { prRow.push(NaN); continue; }
      const r = ctx.thresholdForRecall(k / o.grid)!;
      prRow.push(r.tp / (r.tp + r.fp));
    }
    out.pr.push(prRow);
  }
  return out;
}

function interval(values: number[], confidence: number, minDefined = 0.5): [number, number] | null {
  const ok = Float64Array.from(values.filter((v) => !Number.isNaN(v))).sort();
  if (ok.length === 0 || ok.length < minDefined * values.length) return null;
  return [percentile(ok, (1 - confidence) / 2), percentile(ok, 1 - (1 - confidence) / 2)];
}

function near(a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = 1e-12): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    const ok = Number.isNaN(b[i]) ? Number.isNaN(a[i]) : Math.abs(a[i] - b[i]) <= tol;
    assert.ok(ok, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

function nearInterval(a: [number, number] | null, b: [number, number] | null, what: string): void {
  if (b === null) return assert.equal(a, null, what);
  assert.ok(a, `${what}: null, expected ${b}`);
  near(a, b, what);
}

describe('patient bootstrap', () => {
  test('percentile is NumPy\'s default (linear between order statistics)', () => {
    assert.equal(percentile([1, 2, 3, 4], 0.25), 1.75);
    assert.equal(percentile([1, 2, 3, 4], 0), 1);
    assert.equal(percentile([1, 2, 3, 4], 1), 4);
    assert.equal(percentile([5], 0.975), 5);
    assert.equal(percentile([0, 10], 0.5), 5);
  });

  test('agrees with materializing every resample and scoring it with the exact metrics (ties, many thresholds)', () => {
    const d = clustered(9, 40, 3, 1.2, true);
    const o = { resamples: 150, seed: 11, thresholds: [0.5, 0.3, 0.8, 0.05, 0.999], grid: 20 };
    const fast = patientBootstrap(d.labels, d.scores, d.patients, { ...o, confidence: 0.9, keepSamples: true });
    const slow = slowSamples(d, o);
    const s = fast.samples!;
    near(s.auc, slow.auc, 'AUC');
    near(s.averagePrecision, slow.ap, 'AP');
    o.thresholds.forEach((t, j) => {
      for (const k of ['recall', 'specificity', 'precision', 'f1'] as const) near(s.thresholds[j][k], slow.points[j][k], `${k} at ${t}`, 0);
    });
    near(s.roc, slow.roc.flat(), 'ROC band rows');
    near(s.pr, slow.pr.flat(), 'PR band rows');
    assert.equal(fast.patients, 9);
    assert.equal(fast.undefinedResamples.auc, slow.auc.filter(Number.isNaN).length);
    nearInterval(fast.auc, interval(slow.auc, 0.9), 'AUC interval');
    nearInterval(fast.averagePrecision, interval(slow.ap, 0.9), 'AP interval');
    o.thresholds.forEach((t, j) => {
      const f = fast.thresholds[j];
      assert.equal(f.threshold, t);
      for (const k of ['recall', 'specificity', 'precision', 'f1'] as const) {
        nearInterval(f[k], interval(slow.points[j][k], 0.9), `${k} interval at ${t}`);
        assert.equal(f.undefinedResamples[k], slow.points[j][k].filter(Number.isNaN).length, `${k} undefined at ${t}`);
      }
    });
    // Pointwise bands from the same rows.
    const band = fast.bands.roc!;
    assert.equal(band.x.length, o.grid + 1);
    for (let k = 0; k <= o.grid; k++) nearInterval([band.lo[k], band.hi[k]], interval(slow.roc.map((r) => r[k]), 0.9), `ROC band at ${band.x[k]}`);
    const pr = fast.bands.pr!;
    for (let k = 0; k < o.grid; k++) nearInterval([pr.lo[k], pr.hi[k]], interval(slow.pr.map((r) => r[k]), 0.9), `PR band at ${pr.x[k]}`);
  });

  test('one patient: every resample is that patient, so each interval collapses to the point value', () => {
    const d = clustered(1, 200, 5);
    const r = patientBootstrap(d.labels, d.scores, d.patients, { resamples: 50, seed: 1, thresholds: [0.5] });
    const ctx = EvalContext.from(d.labels, d.scores);
    assert.ok(Math.abs(r.auc![0] - ctx.rocAuc().value) < 1e-12 && r.auc![0] === r.auc![1]);
    assert.ok(Math.abs(r.averagePrecision![0] - ctx.averagePrecision().value) < 1e-12 && r.averagePrecision![0] === r.averagePrecision![1]);
    const m = ctx.metricsAt(0.5);
    assert.deepEqual(r.thresholds[0].recall, [m.recall, m.recall]);
    assert.deepEqual(r.thresholds[0].specificity, [m.specificity, m.specificity]);
    assert.ok(r.warnings.some((w) => /1 patient/.test(w)), r.warnings.join('; '));
  });

  test('all scores equal: AUC [0.5, 0.5]; perfect separation: AUC [1, 1] and AP [1, 1]', () => {
    const d = clustered(8, 30, 7);
    const flat = patientBootstrap(d.labels, d.scores.map(() => 0.4), d.patients, { resamples: 200, seed: 2 });
    assert.deepEqual(flat.auc, [0.5, 0.5]);
    const perfect = patientBootstrap(d.labels, d.labels.map((y, i) => (y ? 0.6 + (i % 7) / 20 : 0.1 + (i % 5) / 20)), d.patients, { resamples: 200, seed: 2 });
    assert.deepEqual(perfect.auc, [1, 1]);
    assert.deepEqual(perfect.averagePrecision, [1, 1]);
    assert.deepEqual(perfect.bands.roc!.lo.slice(1), new Array(perfect.bands.roc!.lo.length - 1).fill(1), 'TPR 1 at every FPR > 0');
  });

  test('the same seed gives the same intervals; another seed other ones; row order does not matter', () => {
    const d = clustered(12, 50, 9);
    const o: BootstrapOptions = { resamples: 300, seed: 5, thresholds: [0.5] };
    const a = patientBootstrap(d.labels, d.scores, d.patients, o);
    assert.deepEqual(patientBootstrap(d.labels, d.scores, d.patients, o), a);
    assert.notDeepEqual(patientBootstrap(d.labels, d.scores, d.patients, { ...o, seed: 6 }).auc, a.auc);
    const perm = d.labels.map((_, i) => i).reverse();
    const b = patientBootstrap(perm.map((i) => d.labels[i]), perm.map((i) => d.scores[i]), perm.map((i) => d.patients[i]), o);
    assert.deepEqual(b.auc, a.auc);
    assert.deepEqual(b.thresholds, a.thresholds);
    assert.equal(a.resamples, 300);
    assert.equal(a.seed, 5);
    assert.equal(a.confidence, 0.95);
  });

  test('resamples where a metric is undefined are left out and counted; too few defined gives null and a warning', () => {
    // One all-positive patient among five all-negative ones: some resamples have no positive at all.
    const labels: number[] = [], scores: number[] = [], patients: string[] = [];
    for (let p = 0; p < 6; p++) for (let i = 0; i < 10; i++) { labels.push(p === 0 ? 1 : 0); scores.push(p === 0 ? 0.6 + i / 100 : i / 20); patients.push(`q${p}`); }
    const o = { resamples: 400, seed: 3, thresholds: [0.5], grid: 10 };
    const slow = slowSamples({ labels, scores, patients }, o);
    const undef = slow.auc.filter(Number.isNaN).length;
    assert.ok(undef > 0 && undef < 400);
    const r = patientBootstrap(labels, scores, patients, o);
    assert.equal(r.undefinedResamples.auc, undef);
    assert.equal(r.thresholds[0].undefinedResamples.recall, undef);
    assert.equal(r.thresholds[0].undefinedResamples.specificity, 0);
    assert.deepEqual(r.auc, [1, 1]);
    const strict = patientBootstrap(labels, scores, patients, { ...o, minDefined: 0.9 });
    assert.equal(strict.auc, null);
    assert.equal(strict.bands.roc, null);
    assert.ok(strict.warnings.some((w) => /ROC AUC/.test(w) && w.includes(String(400 - undef))), strict.warnings.join('; '));
  });

  test('on clustered data, resampling patients gives far wider intervals than resampling patches', () => {
    const d = clustered(30, 150, 21, 1.5);
    const o = { resamples: 400, seed: 4, thresholds: [0.5] };
    const byPatient = patientBootstrap(d.labels, d.scores, d.patients, o);
    const byPatch = patientBootstrap(d.labels, d.scores, d.labels.map((_, i) => `x${i}`), o);
    const w = (x: [number, number] | null) => x![1] - x![0];
    assert.ok(w(byPatient.auc) > 2 * w(byPatch.auc), `AUC width ${w(byPatient.auc)} vs ${w(byPatch.auc)}`);
    assert.ok(w(byPatient.thresholds[0].recall) > 1.5 * w(byPatch.thresholds[0].recall), `recall width ${w(byPatient.thresholds[0].recall)} vs ${w(byPatch.thresholds[0].recall)}`);
    // Both contain the point estimate.
    const auc = EvalContext.from(d.labels, d.scores).rocAuc().value;
    assert.ok(byPatient.auc![0] <= auc && auc <= byPatient.auc![1]);
  });
});
