import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync, utimesSync, readFileSync } from 'node:fs';
import { buildThresholdView, loadEvaluation, pickEvaluation, readEvaluateSettings, evaluationSummaries } from '../src/core/views/threshold';
import { confusionAt, metricsFromCounts } from '../src/core/metrics';
import { readPredictions } from '../src/core/evaluate/predictions';
import type { Prediction } from '../src/core/evaluate/types';
import { typedTable, countsAt, metricsOf, indexAt, rocPoint, prPoint, nearestIndex, compactThreshold, stepThreshold, intervalsAt, translucent } from '../webview/lib/threshold-math';
import { evaluationFixture, fakeScores, rng, writeEvaluation, type EvaluationFixture } from './helpers/evaluation';
import { tempDir } from './helpers/fixtures';

let fx: EvaluationFixture;

before(async () => {
  fx = await evaluationFixture();
});

test('the count table gives confusionAt on the raw predictions at every threshold, and metrics.json at its operating points', () => {
  const view = buildThresholdView([fx.source])!;
  assert.ok(view, 'a view for the one evaluation');
  assert.equal(view.evaluation.id, 'r1/test');
  const raw = readPredictions(join(fx.dir, 'predictions.csv'));
  const labels = raw.map((p) => p.label!);
  const scores = raw.map((p) => p.score);
  assert.ok(raw.length > 500, `enough patches (${raw.length})`);
  assert.equal(view.table.positives + view.table.negatives, raw.length);
  assert.ok(view.table.thresholds.length < raw.length, 'ties share a row');
  // JSON round trip, as the page receives it.
  const table = typedTable(JSON.parse(JSON.stringify(view)).table);

  // Every operating point metrics.json holds: same counts, same metrics.
  assert.ok(view.operatingPoints.length >= 5);
  for (const o of view.operatingPoints) {
    const c = countsAt(table, o.threshold);
    assert.deepEqual(c, { tp: o.tp, fp: o.fp, tn: o.tn, fn: o.fn }, o.label);
    assert.deepEqual(c, confusionAt(labels, scores, o.threshold), o.label);
    const m = metricsOf(c);
    for (const k of ['precision', 'recall', 'specificity', 'f1', 'accuracy', 'balancedAccuracy'] as const) assert.equal(m[k], o[k], `${o.label} ${k}`);
  }

  // Every distinct score, just above and below it, the ends and random values.
  const r = rng(9);
  const probes = [0, 1, 1.0000001, -0, 0.5, ...Array.from({ length: 200 }, () => r())];
  for (const t of view.table.thresholds) probes.push(t, t + 1e-9, t - 1e-9, Math.fround(t));
  for (const t of probes) {
    const c = countsAt(table, t);
    assert.deepEqual(c, confusionAt(labels, scores, t), `t=${t}`);
    const ref = metricsFromCounts(c, t);
    const m = metricsOf(c);
    for (const k of ['precision', 'recall', 'specificity', 'f1', 'balancedAccuracy'] as const) assert.equal(m[k], ref[k], `t=${t} ${k}`);
    assert.equal(m.fpr, c.fp / view.table.negatives);
    assert.equal(m.npv, c.tn + c.fn ? c.tn / (c.tn + c.fn) : 0);
  }
});

test('curve points and hit-testing land on the curves metrics.json draws', () => {
  const view = buildThresholdView([fx.source])!;
  const table = typedTable(view.table);
  // Each thinned ROC point with a finite threshold is the table's point at that threshold.
  view.roc.thresholds.forEach((t, k) => {
    if (t === null) return;
    const p = rocPoint(table, indexAt(table, t));
    assert.equal(p.x, view.roc.fpr[k]);
    assert.equal(p.y, view.roc.tpr[k]);
  });
  view.pr.thresholds.forEach((t, k) => {
    if (t === null) return;
    const p = prPoint(table, indexAt(table, t));
    assert.equal(p.x, view.pr.recall[k]);
    assert.equal(p.y, view.pr.precision[k]);
  });
  // Clicking exactly on a curve point selects that point's threshold.
  for (const o of view.operatingPoints.filter((o) => o.name !== 'default' && o.name !== 'pinned')) {
    const i = nearestIndex(table, 'roc', o.fpr, o.tpr, 300, 300);
    assert.deepEqual(rocPoint(table, i), { x: o.fpr, y: o.tpr }, o.label);
    const j = nearestIndex(table, 'pr', o.recall, o.precision, 300, 300);
    assert.deepEqual(prPoint(table, j), { x: o.recall, y: o.precision }, o.label);
  }
  assert.equal(nearestIndex(table, 'roc', 1, 1), table.thresholds.length - 1, 'top right = lowest score');
});

test('compact thresholds select exactly the same patches; stepping moves one distinct score', () => {
  const view = buildThresholdView([fx.source])!;
  const table = typedTable(view.table);
  const raw = readPredictions(join(fx.dir, 'predictions.csv'));
  const labels = raw.map((p) => p.label!);
  const scores = raw.map((p) => p.score);
  let shorter = 0;
  for (const t of view.table.thresholds) {
    const d = compactThreshold(t);
    assert.ok(d <= t);
    if (String(d).length < String(t).length) shorter++;
    assert.deepEqual(confusionAt(labels, scores, d), confusionAt(labels, scores, t), `${t} -> ${d}`);
  }
  assert.ok(shorter > view.table.thresholds.length / 2, 'most get shorter');
  assert.equal(compactThreshold(0.5), 0.5);
  const i = Math.floor(view.table.thresholds.length / 2);
  const t = view.table.thresholds[i];
  assert.equal(stepThreshold(table, t, 1), view.table.thresholds[i + 1], 'lower: one more distinct score');
  assert.equal(stepThreshold(table, t, -1), view.table.thresholds[i - 1], 'higher: one fewer');
  const top = stepThreshold(table, view.table.thresholds[0], -1);
  if (view.table.thresholds[0] < 1) assert.deepEqual(countsAt(table, top), { tp: 0, fp: 0, tn: view.table.negatives, fn: view.table.positives }, 'above the top score nothing is positive');
  else assert.equal(top, 1, 'thresholds stop at 1');
  assert.equal(stepThreshold(table, 0.6, 1), view.table.thresholds[indexAt(table, 0.6) + 1], 'from between two scores');
});

test('working threshold, recall target and pins come from idc.config.json now; metrics.json when there is none', async () => {
  const folder = tempDir();
  assert.deepEqual(await readEvaluateSettings(folder), { threshold: 0.5, recallTarget: 0.95, pinnedThresholds: [] }, 'defaults without a config file');
  writeFileSync(join(folder, 'idc.config.json'), '{\n  // comment\n  "evaluate": { "threshold": 0.42, "pinnedThresholds": [0.8, 0.1, 0.8], "recallTarget": 0.8 },\n}\n');
  const settings = (await readEvaluateSettings(folder))!;
  assert.equal(settings.threshold, 0.42);
  const view = buildThresholdView([fx.source], { settings })!;
  assert.equal(view.working, 0.42);
  assert.equal(view.evaluatedThreshold, 0.5);
  assert.equal(view.recallTarget, 0.8);
  assert.deepEqual(view.pinned, [0.1, 0.8], 'sorted, no duplicates');
  writeFileSync(join(folder, 'idc.config.json'), '{ "evaluate": { "threshold": 7 } }');
  assert.equal(await readEvaluateSettings(folder), undefined, 'an invalid config is not used');
  const fromMetrics = buildThresholdView([fx.source])!;
  assert.equal(fromMetrics.working, 0.5);
  assert.equal(fromMetrics.recallTarget, 0.9);
  assert.deepEqual(fromMetrics.pinned, [0.3, 0.7]);
});

test('evaluation picking: by id, the newest by default, a gone one falls back with a warning, none gives null', async () => {
  const other = join(fx.out, 'runs', 'r2', 'eval', 'test');
  const few: Prediction[] = fx.predictions.slice(0, 300);
  await writeEvaluation(other, few, undefined, 'r2');
  const list = [fx.source, { model: 'r2', split: 'test' as const, dir: other }];
  assert.equal(buildThresholdView(list)!.evaluation.id, 'r2/test', 'newest = last listed');
  const v1 = buildThresholdView(list, { evaluation: 'r1/test' })!;
  assert.equal(v1.evaluation.id, 'r1/test');
  assert.deepEqual(v1.evaluations.map((e) => e.id), ['r1/test', 'r2/test']);
  assert.equal(v1.evaluations[1].n, 300);
  const gone = buildThresholdView(list, { evaluation: 'r9/val' })!;
  assert.equal(gone.evaluation.id, 'r2/test');
  assert.match(gone.warnings[0], /r9\/val is gone/);
  assert.equal(buildThresholdView([]), null);
  assert.equal(pickEvaluation([], 'x'), undefined);
  // An unreadable metrics.json is left out of the picker rather than breaking it.
  const broken = join(fx.out, 'runs', 'r3', 'eval', 'test');
  await writeEvaluation(broken, few, undefined, 'r3');
  writeFileSync(join(broken, 'metrics.json'), '{ not json');
  assert.deepEqual(evaluationSummaries([...list, { model: 'r3', split: 'test', dir: broken }]).map((e) => e.id), ['r1/test', 'r2/test']);
  assert.throws(() => buildThresholdView([{ model: 'r3', split: 'test', dir: broken }]), /not valid JSON/);
});

test('parsed predictions are cached until predictions.csv or metrics.json changes', async () => {
  const dir = join(fx.out, 'runs', 'r4', 'eval', 'test');
  await writeEvaluation(dir, fx.predictions.slice(0, 400), undefined, 'r4');
  const src = { model: 'r4', split: 'test' as const, dir };
  const a = loadEvaluation(src);
  assert.equal(loadEvaluation(src), a, 'same object while unchanged');
  // New scores: rewritten files (new mtime) are read again.
  const flipped = fx.predictions.slice(0, 400).map((p) => ({ ...p, score: Math.fround(1 - p.score) }));
  await writeEvaluation(dir, flipped, undefined, 'r4');
  const future = new Date(Date.now() + 5000);
  utimesSync(join(dir, 'predictions.csv'), future, future);
  const b = loadEvaluation(src);
  assert.notEqual(b, a);
  assert.equal(b.predictions[0].score, flipped[0].score);
  assert.deepEqual(countsAt(typedTable({ ...b.table, thresholds: [...b.table.thresholds], tp: [...b.table.tp], fp: [...b.table.fp] }), 0.5),
    confusionAt(flipped.map((p) => p.label!), flipped.map((p) => p.score), 0.5));
});

test('45k predictions: the view builds fast and every lookup stays exact', async () => {
  const n = 45_000;
  const r = rng(4);
  const labels = Array.from({ length: n }, () => (r() < 0.28 ? 1 : 0));
  const scores = fakeScores(labels, 8);
  const rows: Prediction[] = labels.map((l, i) => ({ id: `p${i % 200}_idx5_x${i}_y0_class${l}`, patient: `p${i % 200}`, x: i, y: 0, label: l as 0 | 1, score: scores[i] }));
  const dir = join(tempDir(), 'big');
  await writeEvaluation(dir, rows, undefined, 'big');
  const src = { model: 'big', split: 'test' as const, dir };
  let t0 = performance.now();
  const view = buildThresholdView([src])!;
  const cold = performance.now() - t0;
  t0 = performance.now();
  const json = JSON.stringify(buildThresholdView([src]));
  const warm = performance.now() - t0;
  assert.ok(cold < 3000, `cold build ${cold.toFixed(0)} ms`);
  assert.ok(warm < 400, `warm build + JSON ${warm.toFixed(0)} ms`);
  assert.ok(json.length < 2_500_000, `payload ${(json.length / 1e6).toFixed(2)} MB`);
  const table = typedTable(view.table);
  // 10k lookups (a long drag) take a few milliseconds.
  t0 = performance.now();
  let acc = 0;
  for (let k = 0; k < 10_000; k++) acc += countsAt(table, k / 10_000).tp;
  const lookups = performance.now() - t0;
  assert.ok(acc > 0 && lookups < 100, `10k lookups ${lookups.toFixed(1)} ms`);
  t0 = performance.now();
  for (let k = 0; k < 60; k++) nearestIndex(table, 'roc', k / 60, 1 - k / 60, 400, 300);
  const hits = (performance.now() - t0) / 60;
  assert.ok(hits < 8, `curve hit-test ${hits.toFixed(2)} ms per move`);
  for (const t of [0.1, 0.25, 0.5, 0.75, 0.9]) assert.deepEqual(countsAt(table, t), confusionAt(labels, scores, t));
  // metrics.json of the big evaluation agrees too.
  const report = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as { operatingPoints: { threshold: number; tp: number; fp: number; tn: number; fn: number }[] };
  for (const o of report.operatingPoints) assert.deepEqual(countsAt(table, o.threshold), { tp: o.tp, fp: o.fp, tn: o.tn, fn: o.fn });
  console.log(`45k predictions: cold ${cold.toFixed(0)} ms, warm+JSON ${warm.toFixed(0)} ms, ${(json.length / 1e6).toFixed(2)} MB, ${view.table.thresholds.length} distinct scores, hit-test ${hits.toFixed(2)} ms`);
});

test('intervals by patient, calibration and who chose each threshold reach the explorer; the slider finds intervals wherever the counts are a marked point\'s', () => {
  const view = buildThresholdView([fx.source])!;
  const iv = view.intervals!;
  assert.ok(iv, 'metrics.json intervals are passed on');
  assert.equal(iv.resamples, 2000, 'the default resamples');
  assert.deepEqual(iv.operatingPoints.map((o) => o.threshold), view.operatingPoints.map((o) => o.threshold));
  assert.ok(view.calibration && view.calibration.before.bins.length === 10);
  assert.ok(view.operatingPoints.every((o) => o.chosenOn === 'config' || o.chosenOn === 'test'));
  assert.ok(iv.bands.roc && iv.bands.roc.x.length === iv.bands.roc.lo.length && iv.bands.roc.lo.every((lo, k) => lo <= iv.bands.roc!.hi[k]));
  const table = typedTable(JSON.parse(JSON.stringify(view)).table);
  for (const o of iv.operatingPoints) {
    const at = intervalsAt(table, iv, o.threshold);
    assert.equal(at?.threshold, o.threshold, o.label);
    // Any threshold selecting the same patches has the same intervals (the bootstrap only sees the counts).
    const i = indexAt(table, o.threshold);
    if (i >= 0 && i + 1 < table.thresholds.length) {
      const between = (table.thresholds[i] + table.thresholds[i + 1]) / 2;
      assert.deepEqual(intervalsAt(table, iv, between)?.recall, o.recall, `between two scores below ${o.threshold}`);
    }
  }
  // A threshold with other counts than every marked point has none.
  const marked = new Set(iv.operatingPoints.map((o) => indexAt(table, o.threshold)));
  const other = view.table.thresholds.find((_, i) => !marked.has(i))!;
  assert.equal(intervalsAt(table, iv, other), undefined);
  assert.equal(intervalsAt(table, undefined, other), undefined);
});

test('band fills take the theme colour with an opacity, whatever notation the theme uses', () => {
  assert.equal(translucent('#1a85ff', 0.2), 'rgba(26, 133, 255, 0.2)');
  assert.equal(translucent('#1a85ffcc', 0.2), 'rgba(26, 133, 255, 0.2)');
  assert.equal(translucent('#fff', 0.5), 'rgba(255, 255, 255, 0.5)');
  assert.equal(translucent(' rgb(1, 2, 3) ', 0.1), 'rgba(1, 2, 3, 0.1)');
  assert.equal(translucent('rgba(1,2,3,0.9)', 0.1), 'rgba(1, 2, 3, 0.1)');
  assert.equal(translucent('var(--x)', 0.3), 'rgba(128, 128, 128, 0.3)');
});
