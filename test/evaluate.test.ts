import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../src/core/engine/backends';
import { train } from '../src/core/train/train';
import { saveModel } from '../src/core/train/model-io';
import { evaluateModel } from '../src/core/evaluate/evaluate';
import { readPredictions, errorPage } from '../src/core/evaluate/predictions';
import { EvalContext } from '../src/core/metrics';
import { calibrationSummary, fitTemperature, applyTemperature } from '../src/core/metrics/calibration';
import type { EvalReport } from '../src/core/evaluate/types';
import { preparedOutput, tinyTrainConfig } from './helpers/pipeline';
import { tempDir } from './helpers/fixtures';
import { IdcError } from '../src/core/errors';

let out = '';
const cfg = tinyTrainConfig((c) => { c.train.epochs = 1; c.evaluate.pinnedThresholds = [0.3]; });

before(async () => {
  await initBackend('wasm');
  ({ out } = await preparedOutput(5, 11));
  await train({ outputDir: out, config: cfg, runId: 'r1' });
});

test('evaluate writes predictions and metrics that agree with each other', async () => {
  const r = await evaluateModel({ outputDir: out, config: cfg });
  assert.equal(r.report.runId, 'r1', 'the newest finished run by default');
  const preds = readPredictions(r.predictionsFile);
  assert.equal(preds.length, r.report.n);
  const labels = preds.map((p) => p.label!);
  const scores = preds.map((p) => p.score);
  const report = JSON.parse(readFileSync(r.metricsFile, 'utf8')) as EvalReport;
  // Scores round-trip through the CSV exactly, so the AUC recomputed from the file is the same number.
  assert.equal(EvalContext.from(labels, scores).rocAuc().value, report.auc);
  for (const o of report.operatingPoints) {
    let tp = 0, fp = 0, tn = 0, fn = 0;
    preds.forEach((p) => { const pos = p.score >= o.threshold; if (p.label === 1) { if (pos) tp++; else fn++; } else if (pos) fp++; else tn++; });
    assert.deepEqual([o.tp, o.fp, o.tn, o.fn], [tp, fp, tn, fn], o.label);
  }
  assert.deepEqual(report.operatingPoints.map((o) => o.name).filter((n) => !/^(youden|f1|recall-target)/.test(n)), ['default', 'pinned']);
  assert.ok(report.roc.fpr.length <= 512 && report.roc.fpr[0] === 0 && report.roc.tpr[report.roc.tpr.length - 1] === 1);
  assert.equal(report.patients.reduce((s, p) => s + p.n, 0), report.n);
  const fnAll = errorPage(preds, 'fn', report.threshold, 0, 1e9);
  assert.equal(report.errors.totalFalseNegatives, fnAll.total);
  for (let i = 1; i < fnAll.items.length; i++) assert.ok(fnAll.items[i - 1].score <= fnAll.items[i].score, 'FN by ascending score');
  const fpAll = errorPage(preds, 'fp', report.threshold);
  for (let i = 1; i < fpAll.items.length; i++) assert.ok(fpAll.items[i - 1].score >= fpAll.items[i].score, 'FP by descending score');
  const page2 = errorPage(preds, 'fn', report.threshold, 1, 2);
  assert.deepEqual(page2.items, fnAll.items.slice(1, 3), 'paging');
  // Grad-CAM overlays for the worst errors and slide maps for the worst patients, as PNG files.
  const worst = [...report.errors.falseNegatives.slice(0, cfg.evaluate.gradCamExamples), ...report.errors.falsePositives.slice(0, cfg.evaluate.gradCamExamples)];
  assert.equal(r.gradCams, worst.length);
  for (const e of worst) assert.deepEqual([...readFileSync(join(r.dir, 'gradcam', `${e.id}.png`)).subarray(1, 4)], [0x50, 0x4e, 0x47]);
  assert.deepEqual(r.slideMaps.map((f) => f.split('/').pop()), report.patients.slice(0, 6).map((p) => `${p.patient}.png`));
});

test('cancelled while it draws Grad-CAMs, evaluate stops (CANCELLED) with metrics.json and predictions.csv complete', async () => {
  // The val split: an evaluation folder of its own, with no overlays from the other tests.
  const ac = new AbortController();
  const phases: string[] = [];
  await assert.rejects(evaluateModel({ outputDir: out, config: cfg, split: 'val', signal: ac.signal, onProgress: (e) => { phases.push(e.phase); if (e.phase === 'evaluate.visuals') ac.abort(); } }), (e: unknown) => {
    assert.ok(e instanceof IdcError, String(e));
    assert.equal(e.code, 'CANCELLED');
    return true;
  });
  assert.ok(phases.includes('evaluate.visuals'), 'it got as far as the Grad-CAM step');
  const dir = join(out, 'runs', 'r1', 'eval', 'val');
  const report = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as EvalReport;
  assert.ok(report.errors.falseNegatives.length + report.errors.falsePositives.length > 0, 'there were errors to draw');
  assert.equal(readPredictions(join(dir, 'predictions.csv')).length, report.n, 'predictions.csv is whole');
  assert.ok(!existsSync(join(dir, 'gradcam')), 'no overlay drawn after the cancel');
  assert.ok(!existsSync(join(dir, 'slidemaps')), 'no slide map drawn after the cancel');
  assert.ok(!existsSync(join(dir, '.idc-lock')), 'the evaluation folder is released');
  // Nothing else is in the way: the same evaluation runs to the end.
  const again = await evaluateModel({ outputDir: out, config: cfg, split: 'val' });
  assert.equal(again.gradCams, Math.min(cfg.evaluate.gradCamExamples, again.report.errors.falseNegatives.length) + Math.min(cfg.evaluate.gradCamExamples, again.report.errors.falsePositives.length));
});

test('a third-party layers model: 50x50x3 input works (softmax pair too), other shapes get a clear error', async () => {
  const dir = tempDir();
  const good = tfl.sequential({ layers: [tfl.layers.globalAveragePooling2d({ inputShape: [50, 50, 3] }), tfl.layers.dense({ units: 2, activation: 'softmax' })] });
  await saveModel(good, join(dir, 'good'));
  const r = await evaluateModel({ outputDir: out, config: cfg, modelPath: join(dir, 'good', 'model.json') });
  assert.equal(r.report.model, join(dir, 'good', 'model.json'));
  assert.ok(r.report.n > 0 && r.predictions.every((p) => p.score >= 0 && p.score <= 1));
  const bad = tfl.sequential({ layers: [tfl.layers.globalAveragePooling2d({ inputShape: [64, 64, 3] }), tfl.layers.dense({ units: 1, activation: 'sigmoid' })] });
  await saveModel(bad, join(dir, 'bad'));
  await assert.rejects(evaluateModel({ outputDir: out, config: cfg, modelPath: join(dir, 'bad') }), /takes input \[null,64,64,3\]; IDC patches are 50x50x3/);
  await assert.rejects(evaluateModel({ outputDir: out, config: cfg, modelPath: join(dir, 'missing') }), /No model at/);
  await assert.rejects(evaluateModel({ outputDir: out, config: cfg, runId: 'nope' }), /No run "nope".*/);
  tf.disposeVariables();
});

test('predict scores an unlabelled folder (names with or without a class), skipping what it cannot read', async () => {
  const { readManifest } = await import('../src/core/manifest');
  const { predictFolder } = await import('../src/core/evaluate/predict');
  const { mkdirSync, copyFileSync, writeFileSync } = await import('node:fs');
  const rows = (await readManifest(join(out, 'manifest.csv'))).slice(0, 30);
  const meta = JSON.parse(readFileSync(join(out, 'manifest.meta.json'), 'utf8')) as { archive: string };
  const folder = join(tempDir(), 'new-patient');
  mkdirSync(folder);
  rows.forEach((r, i) => copyFileSync(join(meta.archive, r.source), join(folder, i % 2 ? `${r.id}.png` : `${r.id.replace(/_class[01]$/, '')}.png`)));
  writeFileSync(join(folder, 'notes.txt'), 'x');
  writeFileSync(join(folder, '9999_idx5_x1_y1.png'), 'not a png');
  const r = await predictFolder({ folder, outputDir: out, config: cfg });
  assert.equal(r.predictions.length, 30);
  assert.ok(r.predictions.every((p) => p.score >= 0 && p.score <= 1));
  assert.equal(r.predictions.filter((p) => p.label !== undefined).length, 15, 'a class in the name is kept as the label');
  assert.deepEqual(r.skipped.map((s) => s.path).sort(), ['9999_idx5_x1_y1.png', 'notes.txt']);
  assert.match(r.skipped.find((s) => s.path === '9999_idx5_x1_y1.png')!.reason, /cannot decode/);
  assert.equal(readPredictions(r.predictionsFile).length, 30);
  assert.equal(r.patients.reduce((s, p) => s + p.n, 0), 30);
  assert.equal(r.slideMaps?.length, r.patients.length, 'a slide map per patient');
  await assert.rejects(predictFolder({ folder: join(folder, 'nope'), outputDir: out, config: cfg }), /No folder at/);
});

test('the report gathers dataset, training and evaluation into one offline HTML file', async () => {
  const { exportReport } = await import('../src/core/report/assemble');
  await evaluateModel({ outputDir: out, config: cfg });
  const file = join(tempDir(), 'report.html');
  const input = await exportReport(out, file);
  assert.equal(input.runId, 'r1');
  assert.ok(input.history?.length === 1 && input.evaluation && input.organize && input.split);
  assert.ok((input.thumbnails?.size ?? 0) > 0, 'error thumbnails from the cache');
  const html = readFileSync(file, 'utf8');
  assert.doesNotMatch(html, /(src|href)="https?:/);
  assert.match(html, /ROC/);
  assert.match(html, new RegExp(report(input).auc!.toFixed(3)));
});

const report = (input: { evaluation?: EvalReport }) => input.evaluation!;

test('thresholds and the temperature are chosen on the validation patients and applied to the test ones; intervals by patient', async () => {
  const c = tinyTrainConfig((x) => { x.train.epochs = 1; x.evaluate.calibration = 'temperature'; x.evaluate.bootstrap.resamples = 300; });
  const onVal = await evaluateModel({ outputDir: out, config: c, split: 'val' });
  const onTest = await evaluateModel({ outputDir: out, config: c });
  const val = readPredictions(onVal.predictionsFile), tst = readPredictions(onTest.predictionsFile);
  const m = onTest.report, v = onVal.report;
  assert.deepEqual(m.validation && [m.validation.split, m.validation.n, m.validation.patients], ['val', val.length, new Set(val.map((p) => p.patient)).size]);
  assert.equal(v.validation, undefined, 'evaluating val chooses on val itself');
  const valCtx = EvalContext.from(val.map((p) => p.label!), val.map((p) => p.score));
  const tstCtx = EvalContext.from(tst.map((p) => p.label!), tst.map((p) => p.score));
  const row = (r: EvalReport, name: string) => r.operatingPoints.find((o) => o.name === name);
  // Chosen on validation patients, counted on the test ones.
  assert.equal(row(m, 'youden')?.threshold, valCtx.youden()?.threshold);
  assert.equal(row(m, 'youden')?.chosenOn, 'val');
  assert.equal(row(m, 'f1')?.threshold, valCtx.f1Optimal()?.threshold);
  assert.equal(row(m, 'recall-target')?.threshold, valCtx.thresholdForRecall(c.evaluate.recallTarget)?.threshold);
  assert.equal(row(m, 'youden')?.recall, tstCtx.metricsAt(row(m, 'youden')!.threshold).recall);
  // The test split's own optimum is still there, labelled as such.
  assert.equal(row(m, 'youden-in-split')?.threshold, tstCtx.youden()?.threshold);
  assert.equal(row(m, 'youden-in-split')?.chosenOn, 'test');
  assert.match(row(m, 'youden-in-split')!.label, /test.*optimistic/);
  assert.equal(row(m, 'default')?.chosenOn, 'config');
  assert.equal(row(v, 'youden')?.chosenOn, 'val');
  assert.equal(row(v, 'youden-in-split'), undefined);
  // The same threshold on both evaluations: what val chose is what test applies.
  assert.equal(row(m, 'youden')?.threshold, row(v, 'youden')?.threshold);
  // Temperature fitted on validation scores, reliability before and after on the test scores.
  const fit = fitTemperature(val.map((p) => p.label!), val.map((p) => p.score));
  assert.equal(m.calibration?.temperature?.value, fit.temperature);
  assert.equal(m.calibration?.temperature?.fittedOn, 'val');
  assert.deepEqual(m.calibration?.before, calibrationSummary(tst.map((p) => p.label!), tst.map((p) => p.score)));
  assert.deepEqual(m.calibration?.after, calibrationSummary(tst.map((p) => p.label!), applyTemperature(tst.map((p) => p.score), fit.temperature)));
  // Intervals by patient for each operating point, in the same order.
  assert.equal(m.intervals?.resamples, 300);
  assert.equal(m.intervals?.patients, new Set(tst.map((p) => p.patient)).size);
  assert.deepEqual(m.intervals?.operatingPoints.map((o) => [o.name, o.threshold]), m.operatingPoints.map((o) => [o.name, o.threshold]));
  const off = await evaluateModel({ outputDir: out, config: tinyTrainConfig((x) => { x.train.epochs = 1; x.evaluate.bootstrap.resamples = 0; }) });
  assert.equal(off.report.intervals, undefined, 'resamples 0 disables the intervals');
  assert.equal(off.report.calibration?.method, 'none');
  assert.equal(off.report.calibration?.after, undefined);
  for (const r of [onVal, onTest, off]) { r.model.dispose(); r.reader.close(); }
});

test('Grad-CAM on demand: overlays for any evaluated patches, the existing ones left alone, a cancel honoured', async () => {
  const r = await evaluateModel({ outputDir: out, config: cfg });
  const { writeGradCamsFor, gradCamFile } = await import('../src/core/evaluate/gradcam-on-demand');
  const { decode } = await import('fast-png');
  const preds = readPredictions(r.predictionsFile);
  // Patches evaluate did not draw: correct predictions (it draws the worst errors only).
  const drawn = new Set(preds.filter((p) => existsSync(gradCamFile(r.dir, p.id))).map((p) => p.id));
  const fresh = preds.filter((p) => !drawn.has(p.id)).slice(0, 3).map((p) => p.id);
  assert.equal(fresh.length, 3);
  const already = [...drawn].slice(0, 1);
  const before = already.map((id) => statSync(gradCamFile(r.dir, id)).mtimeMs);
  const res = await writeGradCamsFor({ outputDir: out, config: cfg, evalDir: r.dir, ids: [...fresh, ...already, 'not-a-patch'] });
  assert.deepEqual(res, { written: 3, skipped: 1 });
  for (const id of fresh) {
    const png = decode(readFileSync(gradCamFile(r.dir, id)));
    assert.equal(png.width, 200);
    assert.equal(png.height, 200);
  }
  assert.deepEqual(already.map((id) => statSync(gradCamFile(r.dir, id)).mtimeMs), before, 'existing overlays are not redrawn');
  assert.deepEqual(await writeGradCamsFor({ outputDir: out, config: cfg, evalDir: r.dir, ids: fresh }), { written: 0, skipped: 0 });
  const ac = new AbortController();
  ac.abort();
  const other = preds.filter((p) => !existsSync(gradCamFile(r.dir, p.id))).slice(0, 2).map((p) => p.id);
  await assert.rejects(writeGradCamsFor({ outputDir: out, config: cfg, evalDir: r.dir, ids: other, signal: ac.signal }), /cancel/i);
  r.model.dispose();
  r.reader.close();
});
