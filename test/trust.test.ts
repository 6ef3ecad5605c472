import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { buildEvalReport } from '../src/core/evaluate/evaluate';
import { workingThresholdWarning } from '../src/core/evaluate/trust';
import { evalSummaryLines, operatingPointLines, intervalText } from '../src/core/evaluate/summary';
import { patientBootstrap } from '../src/core/metrics/bootstrap';
import { EvalContext } from '../src/core/metrics';
import { Rng } from '../src/core/rng';
import type { Prediction } from '../src/core/evaluate/types';

/** Patients with their own score offset; `shift` moves every score (a model that drifted between splits). */
function split(patients: number, seed: number, shift = 0, prefix = 'p'): Prediction[] {
  const rng = new Rng(seed);
  const out: Prediction[] = [];
  for (let p = 0; p < patients; p++) {
    const offset = rng.normal(0, 0.8);
    const prevalence = 0.1 + 0.5 * rng.next();
    for (let i = 0; i < 60; i++) {
      const label = rng.next() < prevalence ? 1 : 0;
      const score = Math.fround(1 / (1 + Math.exp(-(offset + shift + (label ? 1.4 : -1.2) + rng.normal(0, 1)))));
      out.push({ id: `${prefix}${p}_${i}`, patient: `${prefix}${p}`, x: i * 50, y: 0, label: label as 0 | 1, score });
    }
  }
  return out;
}

const ev = { threshold: 0.5, recallTarget: 0.9, pinnedThresholds: [0.3], bootstrap: { resamples: 400, seed: 7, confidence: 0.9 }, calibration: 'temperature' as const };
const meta = { model: 'r1', runId: 'r1', split: 'test' as const, seconds: 1, backend: 'cpu' };
const arrays = (rows: Prediction[]) => ({ labels: rows.map((r) => r.label!), scores: rows.map((r) => r.score), patients: rows.map((r) => r.patient) });

describe('evaluation you can trust on new patients', () => {
  const test_ = split(12, 1);
  const val = split(8, 2, 0.7, 'v');
  const t = arrays(test_);
  const v = arrays(val);

  test('with validation patients, the data-driven thresholds are theirs; the in-split optima stay, labelled optimistic', () => {
    const r = buildEvalReport(t.labels, t.scores, test_, ev, { ...meta, validation: v });
    const vc = EvalContext.from(v.labels, v.scores), tc = EvalContext.from(t.labels, t.scores);
    const row = (name: string) => r.operatingPoints.find((o) => o.name === name)!;
    assert.deepEqual(r.operatingPoints.map((o) => [o.name, o.chosenOn]), [
      ['default', 'config'], ['youden', 'val'], ['f1', 'val'], ['recall-target', 'val'],
      ['youden-in-split', 'test'], ['f1-in-split', 'test'], ['recall-target-in-split', 'test'], ['pinned', 'config'],
    ]);
    assert.equal(row('youden').threshold, vc.youden()!.threshold);
    assert.equal(row('f1').threshold, vc.f1Optimal()!.threshold);
    assert.equal(row('recall-target').threshold, vc.thresholdForRecall(0.9)!.threshold);
    assert.equal(row('recall-target').label, 'recall ≥ 0.9', 'the label still ends with the target (the explorer reads it)');
    assert.equal(row('youden-in-split').threshold, tc.youden()!.threshold);
    assert.notEqual(row('youden').threshold, row('youden-in-split').threshold, 'the shifted validation scores choose another threshold');
    // Counted on the evaluated patients at the fixed threshold.
    assert.deepEqual([row('youden').tp, row('youden').fp], [tc.countsAt(row('youden').threshold).tp, tc.countsAt(row('youden').threshold).fp]);
    // The in-split optimum is at least as good on its own patients: that is why it is optimistic.
    assert.ok(row('youden-in-split').recall + row('youden-in-split').specificity >= row('youden').recall + row('youden').specificity);
    assert.deepEqual(r.validation, { split: 'val', n: val.length, positives: vc.positives, patients: 8, auc: vc.rocAuc().value });
    assert.equal(r.calibration?.temperature?.fittedOn, 'val');
    assert.equal(r.calibration?.temperature?.n, val.length);
  });

  test('metrics.json intervals are the patient bootstrap of the evaluated predictions at each operating point', () => {
    const r = buildEvalReport(t.labels, t.scores, test_, ev, { ...meta, validation: v });
    const b = patientBootstrap(t.labels, t.scores, t.patients, { ...ev.bootstrap, thresholds: r.operatingPoints.map((o) => o.threshold) });
    const iv = r.intervals!;
    assert.deepEqual([iv.resamples, iv.seed, iv.confidence, iv.patients, iv.method], [400, 7, 0.9, 12, 'patient-bootstrap-percentile']);
    assert.deepEqual(iv.auc, b.auc);
    assert.deepEqual(iv.averagePrecision, b.averagePrecision);
    assert.deepEqual(iv.operatingPoints.map((o) => [o.name, o.threshold, o.recall, o.f1]), r.operatingPoints.map((o, i) => [o.name, o.threshold, b.thresholds[i].recall, b.thresholds[i].f1]));
    assert.deepEqual(iv.bands, b.bands);
    assert.ok(iv.auc![0] <= r.auc! && r.auc! <= iv.auc![1]);
    // JSON holds it as is (no NaN, no Infinity).
    assert.deepEqual(JSON.parse(JSON.stringify(iv)).auc, iv.auc);
  });

  test('without validation patients the thresholds are the split\'s own, and the temperature cannot be fitted', () => {
    const r = buildEvalReport(t.labels, t.scores, test_, ev, meta);
    assert.deepEqual(r.operatingPoints.map((o) => o.name), ['default', 'youden', 'f1', 'recall-target', 'pinned']);
    assert.equal(r.operatingPoints[1].chosenOn, 'test');
    assert.equal(r.validation, undefined);
    assert.equal(r.calibration?.after, undefined);
    assert.ok(r.warnings.some((w) => /Temperature scaling needs validation patients/.test(w)));
    assert.ok(evalSummaryLines(r).some((l) => /chosen on the test patients themselves \(optimistic\)/.test(l)));
  });

  test('idc evaluate prints each interval by patient and which patients chose each threshold', () => {
    const r = buildEvalReport(t.labels, t.scores, test_, ev, { ...meta, validation: v });
    const lines = [...evalSummaryLines(r), ...operatingPointLines(r)];
    const text = lines.join('\n');
    assert.ok(text.includes(`ROC AUC ${r.auc!.toFixed(4)} (90% CI ${intervalText(r.intervals!.auc)} by patient, 12 patients)`), text);
    assert.match(text, /chosen on the val patients \(8 patients, 480 patches\)/);
    assert.match(text, /temperature T = [\d.]+ fitted on val/);
    const table = operatingPointLines(r);
    const youden = table.findIndex((l) => l.includes("Youden's J ") && !l.includes('optimistic'));
    assert.match(table[youden], /\bval\b/);
    assert.match(table[youden + 1], /90% CI by patient/);
    const rec = r.intervals!.operatingPoints.find((o) => o.name === 'youden')!.recall;
    assert.ok(table[youden + 1].includes(intervalText(rec)), table[youden + 1]);
    // The CI sits under the recall column.
    const col = table[0].indexOf('recall') + 'recall'.length;
    assert.equal(table[youden + 1].indexOf(intervalText(rec)) + intervalText(rec).length, col);
    assert.ok(table.some((l) => /Youden's J on test \(optimistic\)\s+test\s/.test(l)), 'the in-split optimum says it is optimistic');
    // Without validation patients the split's own thresholds say so in the column.
    const own = operatingPointLines(buildEvalReport(t.labels, t.scores, test_, ev, meta));
    assert.ok(own.some((l) => /^  Youden's J\s+test \(optimistic\)/.test(l)), own.join('\n'));
  });
});

describe('working threshold far off on the validation patients', () => {
  // Well-ranked scores (AUC near 1), then shifted towards 1 as a model with off batch-norm statistics gives them.
  const labels = Array.from({ length: 200 }, (_, i) => (i % 4 === 0 ? 1 : 0));
  const ranked = labels.map((y, i) => (y ? 0.6 : 0.2) + ((i * 37) % 100) / 400);
  const shift = (s: number[], by: number) => s.map((x) => 1 / (1 + Math.exp(-(Math.log(x / (1 - x)) + by))));

  test('a shifted model gets a warning naming what it calls everything, and Youden on the validation patients', () => {
    const w = workingThresholdWarning(EvalContext.from(labels, shift(ranked, 6)), 0.5);
    assert.ok(w);
    assert.match(w, /calls most validation patches IDC-positive \(sensitivity 1\.00, specificity 0\.00\)/);
    assert.match(w, /Youden's J on the validation patients is 0\.9\d+ \(sensitivity 1\.00, specificity 1\.00\)/);
    assert.match(w, /set evaluate\.threshold to it/);
    assert.match(workingThresholdWarning(EvalContext.from(labels, shift(ranked, -6)), 0.5)!, /calls most validation patches IDC-negative/);
  });

  test('no warning for a model that is fine at the working threshold, one that ranks badly, or without validation patients', () => {
    assert.equal(workingThresholdWarning(EvalContext.from(labels, ranked), 0.5), undefined);
    // Random scores: nothing better to point to.
    const rng = new Rng(3);
    assert.equal(workingThresholdWarning(EvalContext.from(labels, labels.map(() => rng.uniform(0.9, 1))), 0.5), undefined);
    assert.equal(workingThresholdWarning(undefined, 0.5), undefined);
    assert.equal(workingThresholdWarning(EvalContext.from([1, 1, 1], [0.9, 0.8, 0.7]), 0.5), undefined);
  });

  test('buildEvalReport carries it in metrics.json warnings when the validation scores are shifted', () => {
    const preds: Prediction[] = labels.map((label, i) => ({ patient: `p${i % 8}`, label, score: shift(ranked, 6)[i] }) as unknown as Prediction);
    const r = buildEvalReport(labels, shift(ranked, 6), preds, { threshold: 0.5, recallTarget: 0.9, pinnedThresholds: [], bootstrap: { resamples: 0, seed: 1, confidence: 0.95 } }, { model: 'm', split: 'test', seconds: 0, backend: 'x', validation: { labels, scores: shift(ranked, 6), patients: labels.map((_, i) => `v${i % 8}`) } });
    assert.ok(r.warnings.some((w) => /working threshold 0\.5 this model calls most validation patches IDC-positive/.test(w)), JSON.stringify(r.warnings));
    const fine = buildEvalReport(labels, ranked, preds, { threshold: 0.5, recallTarget: 0.9, pinnedThresholds: [], bootstrap: { resamples: 0, seed: 1, confidence: 0.95 } }, { model: 'm', split: 'test', seconds: 0, backend: 'x', validation: { labels, scores: ranked, patients: labels.map((_, i) => `v${i % 8}`) } });
    assert.ok(!fine.warnings.some((w) => /working threshold/.test(w)));
  });
});
