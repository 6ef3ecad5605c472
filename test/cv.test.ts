import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../src/core/engine/backends';
import { patientFolds, foldSplit } from '../src/core/cv/folds';
import { crossValidate, type CvEvent } from '../src/core/cv/cv';
import { readManifest } from '../src/core/manifest';
import { readPredictions } from '../src/core/evaluate/predictions';
import { listRuns, train } from '../src/core/train/train';
import type { ManifestRow } from '../src/core/manifest';
import type { SplitFile } from '../src/core/split';
import { preparedOutput, tinyTrainConfig } from './helpers/pipeline';

/** Patients with the given [negatives, positives] counts. */
function rowsOf(patients: [number, number][]): ManifestRow[] {
  const rows: ManifestRow[] = [];
  patients.forEach(([neg, pos], i) => {
    const pid = String(100 + i);
    for (let k = 0; k < neg + pos; k++) rows.push({ id: `${pid}_${k}`, patient: pid, x: k, y: 0, label: k < pos ? 1 : 0, width: 50, height: 50, source: '' });
  });
  return rows;
}

const MIXED: [number, number][] = [[300, 20], [40, 200], [120, 120], [500, 0], [10, 90], [80, 30], [60, 60], [0, 150], [200, 50], [30, 30], [90, 10], [15, 45]];

test('folds hold whole patients, every patient once, classes spread evenly, reproducibly', () => {
  const rows = rowsOf(MIXED);
  const { folds, warnings } = patientFolds(rows, 4, 7);
  assert.deepEqual(warnings, []);
  assert.equal(folds.length, 4);
  const all = folds.flat();
  assert.equal(all.length, MIXED.length);
  assert.equal(new Set(all).size, MIXED.length, 'no patient in two folds');
  for (const f of folds) assert.ok(f.length >= 1);
  // With no patient dominating a class, each fold's share of each class is near 1/k.
  const even = rowsOf([[30, 20], [40, 60], [50, 50], [60, 10], [10, 90], [80, 30], [60, 60], [20, 50], [70, 50], [30, 30], [90, 10], [15, 45]]);
  const ef = patientFolds(even, 4, 7).folds;
  for (const cls of [0, 1]) {
    const total = even.filter((r) => r.label === cls).length;
    const shares = ef.map((f) => even.filter((r) => r.label === cls && f.includes(r.patient)).length / total);
    assert.ok(Math.max(...shares) - Math.min(...shares) < 0.2, `class ${cls} shares ${shares.map((s) => s.toFixed(2))}`);
  }
  assert.deepEqual(patientFolds(rows, 4, 7).folds, folds, 'same seed, same folds');
  const others = [1, 2, 3, 4, 5].map((s) => JSON.stringify(patientFolds(rows, 4, s).folds));
  assert.ok(new Set(others).size > 1, 'the seed changes the folds');
});

test("fold i tests on its own patients, stops early on the next fold's, trains on the rest", () => {
  const rows = rowsOf(MIXED);
  const { folds } = patientFolds(rows, 4, 1);
  for (let i = 0; i < 4; i++) {
    const s = foldSplit(rows, folds, i, { seed: 1, manifestHash: 'h' });
    assert.deepEqual(s.patients.test, folds[i]);
    assert.deepEqual(s.patients.val, folds[(i + 1) % 4]);
    assert.deepEqual([...s.patients.train].sort(), folds.filter((_, j) => j !== i && j !== (i + 1) % 4).flat().sort());
    assert.equal(s.summary.train.patches + s.summary.val.patches + s.summary.test.patches, rows.length);
  }
  // Across folds every patient is tested exactly once.
  const tested = [0, 1, 2, 3].flatMap((i) => foldSplit(rows, folds, i, { seed: 1, manifestHash: 'h' }).patients.test);
  assert.equal(new Set(tested).size, MIXED.length);
});

test('bad fold counts: too few folds, more folds than patients, more folds than patients of a class', () => {
  const rows = rowsOf(MIXED);
  assert.throws(() => patientFolds(rows, 2, 1), /at least 3 folds/);
  assert.throws(() => patientFolds(rows, 13, 1), (e: Error & { hint?: string }) => /13 folds need at least 13 patients; the manifest has 12/.test(e.message) && /--folds 12/.test(e.hint ?? ''));
  // Like the real sample: few patients hold any negative patch.
  const skewed = rowsOf([[0, 100], [0, 80], [300, 0], [0, 120], [20, 200], [0, 90], [0, 60]]);
  const r = patientFolds(skewed, 5, 1);
  assert.equal(r.folds.flat().length, 7);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0], /Only 2 patients have IDC-negative patches, fewer than the 5 folds/);
  assert.match(r.warnings[0], /pooled out-of-fold figures are still defined/);
});

let out = '';
before(async () => {
  await initBackend('wasm');
  ({ out } = await preparedOutput(9, 3));
});

const tiny = () => tinyTrainConfig((c) => { c.train.epochs = 1; c.train.stepsPerEpoch = 2; c.evaluate.gradCamExamples = 1; c.evaluate.bootstrap.resamples = 50; });

test('cross-validation scores every patch once, each by the fold model that never saw its patient', async () => {
  const events: CvEvent[] = [];
  const r = await crossValidate({ outputDir: out, config: tiny(), folds: 3, seed: 1, onEvent: (e) => events.push(e) });
  assert.equal(r.id, 'cv-3fold-seed1');
  const manifest = await readManifest(join(out, 'manifest.csv'));
  const pooled = readPredictions(r.predictionsFile);
  assert.equal(pooled.length, manifest.length);
  assert.deepEqual(pooled.map((p) => p.id).sort(), manifest.map((m) => m.id).sort(), 'every patch once');
  const byPatient = new Map(manifest.map((m) => [m.id, m.patient]));
  assert.equal(r.report.cv.rows.length, 3);
  for (const row of r.report.cv.rows) {
    const split = JSON.parse(readFileSync(join(out, 'runs', row.runId, 'split.json'), 'utf8')) as SplitFile;
    const foldPreds = readPredictions(join(out, 'runs', row.runId, 'eval', 'test', 'predictions.csv'));
    assert.equal(foldPreds.length, row.n);
    for (const p of foldPreds) {
      assert.ok(split.patients.test.includes(byPatient.get(p.id)!), 'scored patch is a test patient of its fold');
      assert.ok(!split.patients.train.includes(p.patient) && !split.patients.val.includes(p.patient), 'never trained or stopped on');
    }
    assert.deepEqual(row.patients, split.patients);
  }
  assert.equal(r.report.n, manifest.length);
  assert.ok(r.report.cv.mean.auc === null || (r.report.cv.mean.auc >= 0 && r.report.cv.mean.auc <= 1));
  assert.ok(existsSync(join(out, 'evals', 'cv-3fold-seed1', 'test', 'metrics.json')), 'where the panels look for evaluations');
  assert.deepEqual(events.filter((e) => e.type === 'fold' && e.state === 'training').length, 3);
});

test('a rerun keeps finished folds; an interrupted one resumes; other settings are refused; a new tta only re-scores', async () => {
  const before = listRuns(out).filter((x) => x.id.startsWith('cv-3fold-seed1-')).map((x) => x.finishedAt);
  const events: CvEvent[] = [];
  await crossValidate({ outputDir: out, config: tiny(), folds: 3, seed: 1, onEvent: (e) => events.push(e) });
  assert.deepEqual(events.filter((e) => e.type === 'fold' && e.state !== 'done').map((e) => e.type === 'fold' && e.state), ['kept', 'kept', 'kept']);
  assert.deepEqual(listRuns(out).filter((x) => x.id.startsWith('cv-3fold-seed1-')).map((x) => x.finishedAt), before, 'nothing retrained');

  // Cancelled in fold 2: fold 1 is kept on the rerun, fold 2 continues.
  const ac = new AbortController();
  await assert.rejects(crossValidate({ outputDir: out, config: tiny(), folds: 3, seed: 2, signal: ac.signal, onEvent: (e) => { if (e.type === 'train' && e.fold === 1 && e.event.type === 'batch') ac.abort(); } }), /Cancelled/);
  const again: CvEvent[] = [];
  const r2 = await crossValidate({ outputDir: out, config: tiny(), folds: 3, seed: 2, onEvent: (e) => again.push(e) });
  assert.deepEqual(again.filter((e) => e.type === 'fold' && e.state !== 'done').map((e) => e.type === 'fold' && e.state), ['kept', 'training', 'training']);
  assert.equal(readPredictions(r2.predictionsFile).length, (await readManifest(join(out, 'manifest.csv'))).length);

  await assert.rejects(crossValidate({ outputDir: out, config: tinyTrainConfig((c) => { c.train.epochs = 1; c.train.stepsPerEpoch = 2; c.model.dropout = 0.3; }), folds: 3, seed: 1 }), /other model, train or data settings/);
  await assert.rejects(crossValidate({ outputDir: out, config: tiny(), folds: 4, seed: 1, id: 'cv-3fold-seed1' }), /has 3 folds from seed 1/);

  const tta: CvEvent[] = [];
  const cfg = tiny();
  cfg.evaluate.tta = 'flips';
  const r3 = await crossValidate({ outputDir: out, config: cfg, folds: 3, seed: 1, onEvent: (e) => tta.push(e) });
  assert.deepEqual(tta.filter((e) => e.type === 'fold' && e.state !== 'done').map((e) => e.type === 'fold' && e.state), ['evaluating', 'evaluating', 'evaluating']);
  assert.equal(r3.report.tta, 'flips');
  assert.ok(!tta.some((e) => e.type === 'train'), 'no fold retrained');
});

test('a cross-validation resumes only folds it created: a plain run with a fold\'s name is refused and left as it was', async () => {
  // A plain run that happens to be named like fold 2 of "adopt", trained on the workspace split.
  await train({ outputDir: out, config: tiny(), runId: 'adopt-fold2' });
  const plain = join(out, 'runs', 'adopt-fold2');
  const before = readdirSync(plain).sort();
  const runJson = readFileSync(join(plain, 'run.json'), 'utf8');
  await assert.rejects(
    crossValidate({ outputDir: out, config: tiny(), folds: 3, seed: 1, id: 'adopt' }),
    (e: Error & { hint?: string }) => /adopt-fold2 is not made by this cross-validation/.test(e.message) && /another --id/.test(e.hint ?? ''),
  );
  assert.deepEqual(readdirSync(plain).sort(), before, 'no split.json or marker written into the plain run');
  assert.equal(readFileSync(join(plain, 'run.json'), 'utf8'), runJson);

  // A fold of an earlier cross-validation (no marker, its own fold split) is still its own: kept.
  const marker = join(out, 'runs', 'cv-3fold-seed1-fold1', 'cv-fold.json');
  assert.ok(existsSync(marker), 'folds carry their marker');
  rmSync(marker);
  const events: CvEvent[] = [];
  const flips = tiny();
  flips.evaluate.tta = 'flips'; // as the test before left it
  await crossValidate({ outputDir: out, config: flips, folds: 3, seed: 1, onEvent: (e) => events.push(e) });
  assert.deepEqual(events.filter((e) => e.type === 'fold' && e.state !== 'done').map((e) => e.type === 'fold' && e.state), ['kept', 'kept', 'kept']);
  assert.ok(existsSync(marker), 'the marker is restored');
});
