/**
 * A cross-validation in the panels and the report: one real (tiny) cross-validation, then the
 * Training panel's fold table, the threshold explorer, gallery and slide map on the pooled
 * out-of-fold evaluation, the report assembled from it, and the job meter's fold progress.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../src/core/engine/backends';
import { crossValidate } from '../src/core/cv/cv';
import { cvOfRun, listCrossValidations } from '../src/core/cv/read';
import { readManifest } from '../src/core/manifest';
import { readPredictions } from '../src/core/evaluate/predictions';
import type { CvSummary, EvalReport } from '../src/core/evaluate/types';
import type { SplitFile } from '../src/core/split';
import { buildCvTrainingView, buildTrainingView, listCvSummaries, readHistory } from '../src/core/views/training';
import { buildThresholdView, type EvaluationSource } from '../src/core/views/threshold';
import { buildGalleryPage } from '../src/core/views/gallery';
import { buildSlideMapView } from '../src/core/views/slidemap';
import { assembleReport } from '../src/core/report/assemble';
import { renderReport } from '../src/core/report';
import { confusionAt } from '../src/core/metrics';
import { countsAt, typedTable } from '../webview/lib/threshold-math';
import { JobMeter } from '../src/server/jobs';
import { preparedOutput, tinyTrainConfig } from './helpers/pipeline';

const ID = 'cv-3fold-seed1';
let root = '';
let out = '';
let metrics: EvalReport & { cv: CvSummary };
let pooledDir = '';

/** The evaluations the language server lists (workspaceInfo): runs' own, then evals/<name>/<split>. */
function evaluations(): EvaluationSource[] {
  const list: EvaluationSource[] = [];
  for (const run of readdirSync(join(out, 'runs'))) {
    if (existsSync(join(out, 'runs', run, 'eval', 'test', 'metrics.json'))) list.push({ model: run, split: 'test', dir: join(out, 'runs', run, 'eval', 'test') });
  }
  for (const name of readdirSync(join(out, 'evals'))) {
    if (existsSync(join(out, 'evals', name, 'test', 'metrics.json'))) list.push({ model: name, split: 'test', dir: join(out, 'evals', name, 'test') });
  }
  return list;
}

before(async () => {
  await initBackend('wasm');
  ({ root, out } = await preparedOutput(9, 3));
  const config = tinyTrainConfig((c) => { c.train.epochs = 2; c.train.stepsPerEpoch = 2; c.evaluate.gradCamExamples = 1; c.evaluate.bootstrap.resamples = 50; });
  const r = await crossValidate({ outputDir: out, config, folds: 3, seed: 1 });
  assert.equal(r.id, ID);
  metrics = r.report;
  pooledDir = r.dir;
});

test('the Training panel groups the fold runs under their cross-validation, with the fold table and mean ± sd', () => {
  assert.deepEqual(listCrossValidations(out).map((d) => d.id), [ID]);
  assert.deepEqual(listCvSummaries(out), [{ id: ID, folds: 3, runIds: [`${ID}-fold1`, `${ID}-fold2`, `${ID}-fold3`], finished: true }]);
  assert.equal(cvOfRun(out, `${ID}-fold2`)?.fold, 1);
  assert.equal(cvOfRun(out, `${ID}-fold4`), undefined, 'no fourth fold');
  assert.equal(cvOfRun(out, 'other-fold1'), undefined, 'not a cross-validation');

  const v = buildTrainingView(out, { runId: `${ID}-fold2` })!;
  assert.equal(v.run.id, `${ID}-fold2`);
  const cv = v.cv!;
  assert.ok(cv, 'a fold run shows its cross-validation');
  assert.equal(cv.id, ID);
  assert.equal(cv.folds, 3);
  assert.equal(cv.rows.length, 3);
  const manifestPatients = new Set(readFileSync(join(out, 'manifest.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')[1]));
  for (const [i, row] of cv.rows.entries()) {
    const ref = metrics.cv.rows[i];
    const split = JSON.parse(readFileSync(join(out, 'runs', row.runId, 'split.json'), 'utf8')) as SplitFile;
    assert.equal(row.fold, i + 1);
    assert.equal(row.runId, ref.runId);
    assert.equal(row.status, 'finished');
    assert.deepEqual(row.patients, { train: split.patients.train.length, val: split.patients.val.length, test: split.patients.test.length });
    assert.equal(row.patients.train + row.patients.val + row.patients.test, manifestPatients.size, 'every patient in one part of each fold');
    assert.equal(row.testPatches, ref.n);
    assert.equal(row.positives, ref.positives);
    assert.equal(row.auc, ref.auc);
    assert.equal(row.averagePrecision, ref.averagePrecision);
    assert.equal(row.bestEpoch, ref.bestEpoch ?? null);
    assert.deepEqual(row.history, readHistory(join(out, 'runs', row.runId)));
    assert.equal(row.epochsDone, row.history.length);
    assert.ok(row.history.length >= 1);
  }
  assert.equal(cv.rows.reduce((s, r) => s + r.testPatches!, 0), metrics.n, 'the folds test every patch once');
  // Same mean and sd as idc cv wrote (floating point aside).
  for (const k of ['auc', 'averagePrecision'] as const) {
    assert.equal(cv.mean[k] === null, metrics.cv.mean[k] === null, `mean ${k}`);
    if (cv.mean[k] !== null) assert.ok(Math.abs(cv.mean[k]! - metrics.cv.mean[k]!) < 1e-12);
    assert.equal(cv.sd[k] === null, metrics.cv.sd[k] === null, `sd ${k}`);
    if (cv.sd[k] !== null) assert.ok(Math.abs(cv.sd[k]! - metrics.cv.sd[k]!) < 1e-12);
  }
  assert.deepEqual(cv.pooled, { evaluation: `${ID}/test`, n: metrics.n, positives: metrics.positives, auc: metrics.auc, averagePrecision: metrics.averagePrecision, aucInterval: metrics.intervals!.auc });

  // Choosing the cross-validation shows a fold of it; a fold being trained is the one shown.
  assert.equal(buildTrainingView(out, { cv: ID })!.run.id, `${ID}-fold1`);
  const live = buildTrainingView(out, { cv: ID, running: (r) => r === `${ID}-fold3` })!;
  assert.equal(live.run.id, `${ID}-fold3`);
  assert.deepEqual(live.cv!.rows.map((r) => r.status), ['finished', 'finished', 'running']);
  assert.throws(() => buildTrainingView(out, { cv: 'nope' }), /no fold run/);
  assert.equal(buildCvTrainingView(out, 'nope'), undefined);
});

test('the threshold explorer, gallery and slide map read the pooled out-of-fold evaluation', async () => {
  const list = evaluations();
  const id = `${ID}/test`;
  assert.ok(list.some((e) => `${e.model}/${e.split}` === id), 'discovered like any evaluation');
  const view = buildThresholdView(list, { evaluation: id })!;
  assert.equal(view.evaluation.id, id);
  const manifest = await readManifest(join(out, 'manifest.csv'));
  assert.equal(view.table.positives + view.table.negatives, manifest.length, 'every patch once');
  const preds = readPredictions(join(pooledDir, 'predictions.csv'));
  const table = typedTable(view.table);
  for (const o of view.operatingPoints) assert.deepEqual(countsAt(table, o.threshold), confusionAt(preds.map((p) => p.label!), preds.map((p) => p.score), o.threshold), o.label);
  // The header says it is a cross-validation, with the spread of the folds' own AUCs.
  assert.deepEqual(view.cv!.aucs, metrics.cv.rows.map((r) => r.auc));
  assert.equal(view.cv!.folds, 3);
  assert.equal(view.cv!.id, ID);
  assert.equal(view.cv!.mean, metrics.cv.mean.auc);
  assert.equal(view.cv!.sd, metrics.cv.sd.auc);
  const finite = metrics.cv.rows.map((r) => r.auc).filter((a): a is number => a !== null);
  assert.equal(view.cv!.min, finite.length ? Math.min(...finite) : null);
  assert.equal(view.cv!.max, finite.length ? Math.max(...finite) : null);
  // An ordinary run's evaluation has no cv part.
  assert.equal(buildThresholdView(list, { evaluation: `${ID}-fold1/test` })!.cv, undefined);

  const page = buildGalleryPage({ outputDir: out, archive: join(root, 'archive'), evaluations: list, evaluation: id }, { cell: 'fn', offset: 0, limit: 500 })!;
  assert.equal(page.evaluation, id);
  assert.deepEqual(page.totals, confusionAt(preds.map((p) => p.label!), preds.map((p) => p.score), metrics.threshold));
  assert.equal(page.items.length, Math.min(page.totals.fn, 500));
  assert.ok(page.items.every((it) => it.image && existsSync(it.image)), 'patch images of every fold');
  // Grad-CAMs drawn by each fold were copied beside the pooled predictions.
  assert.equal(page.gradcams, readdirSync(join(pooledDir, 'gradcam')).length);
  assert.ok(page.gradcams >= 1);

  const map = await buildSlideMapView({ evaluation: id, dir: pooledDir, outputDir: out, archive: join(root, 'archive'), evaluations: list.map((e) => `${e.model}/${e.split}`) });
  const patients = new Set(preds.map((p) => p.patient));
  assert.equal(map.patients.length, patients.size, 'every patient of every fold');
  assert.equal(map.tiles.length, preds.filter((p) => p.patient === map.patient).length);
  assert.equal(map.missingPixels, 0);
  assert.ok(existsSync(map.layers.tissue));
});

test('the report of a cross-validation: fold table, mean ± sd, pooled figures with intervals, per-fold curves', async () => {
  const input = await assembleReport(out, { cv: ID });
  assert.equal(input.evaluation?.cv?.id, ID);
  assert.deepEqual(input.cvHistories!.map((h) => h.runId), metrics.cv.rows.map((r) => r.runId));
  assert.ok(input.thumbnails!.size > 0, 'error thumbnails from the folds\' caches');
  // The newest run is a fold of it: a plain report is the cross-validation's.
  const plain = await assembleReport(out);
  assert.equal(plain.evaluation?.cv?.id, ID);
  assert.equal((await assembleReport(out, { runId: `${ID}-fold1` })).evaluation?.cv, undefined, '--run still reports one fold');
  await assert.rejects(assembleReport(out, { cv: 'nope' }), /No cross-validation "nope"/);

  const page = renderReport(input);
  assert.match(page, /<h2 id="cv-h">Cross-validation<\/h2>/);
  const rows = [...page.matchAll(/<tr data-fold="(\d+)">/g)].map((m) => Number(m[1]));
  assert.deepEqual(rows, [1, 2, 3]);
  assert.match(page, /data-row="mean"/);
  const pooled = page.slice(page.indexOf('data-row="pooled"'));
  assert.ok(pooled.includes(`<b>${metrics.auc!.toFixed(3)}</b>`), 'pooled AUC');
  assert.match(pooled, /95% CI \d\.\d{3}–\d\.\d{3}/);
  assert.ok(page.includes('data-chart="cv-val-auc"'));
});

test('a cross-validation job\'s progress counts folds: share done, fold and epoch, ETA over the remaining folds', () => {
  let now = 0;
  const meter = new JobMeter('cv', 0, () => now);
  const info = { id: 'cv-3fold-seed1', folds: 3, seed: 1 };
  const percents: number[] = [];
  for (let fold = 0; fold < 3; fold++) {
    meter.onCvFold(fold, 3, info);
    const runId = `cv-3fold-seed1-fold${fold + 1}`;
    meter.onTrainEvent({ type: 'start', runId, runDir: '/x', epochs: 2, startEpoch: 0, backend: 'wasm', trainSize: 64, valSize: 32 });
    for (let epoch = 0; epoch < 2; epoch++) {
      for (const batch of [2, 4]) {
        now += 1000;
        meter.onTrainEvent({ type: 'batch', runId, epoch, batch, batches: 4, loss: 0.5, imagesPerSecond: 100 });
        const r = meter.onProgress({ phase: 'train.epoch', label: `Epoch ${epoch + 1}/2`, done: batch * 16, total: 64, unit: 'img' })!;
        assert.deepEqual([r.fold, r.folds, r.epoch, r.epochs, r.runId, r.cv], [fold + 1, 3, epoch + 1, 2, runId, info]);
        percents.push(r.percentage!);
        if (fold === 0 && epoch === 1 && batch === 2) {
          // 6 of this fold's 8 batches took 2 s (timed from the first): 2 more here and 16 in the two folds left.
          assert.equal(r.etaSeconds, Math.round((2 / 6) * (8 - 6 + 16)));
        }
      }
      meter.onTrainEvent({ type: 'epoch', runId, log: { epoch, loss: 0.5, accuracy: 0, precision: 0, recall: 0, auc: 0, val_loss: 0, val_accuracy: 0, val_precision: 0, val_recall: 0, val_auc: 0, lr: 1e-3, seconds: 1, imagesPerSecond: 1 } });
    }
    // Scoring the fold's test patients: the fold is named, the share holds.
    const s = meter.onProgress({ phase: 'evaluate.predict', label: 'Scoring', done: 10, total: 20, unit: 'img' })!;
    assert.deepEqual([s.fold, s.folds, s.percentage], [fold + 1, 3, undefined]);
  }
  assert.deepEqual(percents, [...percents].sort((a, b) => a - b), 'never goes back');
  assert.equal(percents[0], Math.floor((100 * (2 / 8)) / 3));
  assert.equal(percents.at(-1), 100);
  assert.equal(percents[4], Math.floor(100 * (1 + 2 / 8) / 3), 'fold 2 starts a third of the way');
});
