import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../src/core/engine/backends';
import { train } from '../src/core/train/train';
import { evaluateModel } from '../src/core/evaluate/evaluate';
import { predictFolder } from '../src/core/evaluate/predict';
import { writeGradCamsFor, gradCamFile } from '../src/core/evaluate/gradcam-on-demand';
import { crossValidate } from '../src/core/cv/cv';
import { readPredictions } from '../src/core/evaluate/predictions';
import { preparedOutput, tinyTrainConfig } from './helpers/pipeline';
import { tempDir, writePatches, gridSpecs } from './helpers/fixtures';

let out = '';
const tiny = () => tinyTrainConfig((c) => { c.train.epochs = 1; c.train.stepsPerEpoch = 2; c.evaluate.gradCamExamples = 1; c.evaluate.bootstrap.resamples = 20; });

before(async () => {
  await initBackend('wasm');
  ({ out } = await preparedOutput(9, 4));
  // Two runs that differ by their seed only: different weights, same inputs.
  await train({ outputDir: out, config: tiny(), runId: 'a' });
  await train({ outputDir: out, config: tinyTrainConfig((c) => { c.train.epochs = 1; c.train.stepsPerEpoch = 2; c.train.seed = 9; }), runId: 'b' });
});

const scoresOf = (file: string) => new Map(readPredictions(file).map((p) => [p.id, p.score]));

test('an ensemble scores the mean probability of its runs, in evaluate and in predict', async () => {
  const cfg = tiny();
  const a = await evaluateModel({ outputDir: out, config: cfg, runId: 'a' });
  const b = await evaluateModel({ outputDir: out, config: cfg, runId: 'b' });
  const e = await evaluateModel({ outputDir: out, config: cfg, runIds: ['a', 'b'] });
  assert.equal(e.dir, join(out, 'evals', 'ensemble-a+b', 'test'));
  assert.deepEqual(e.report.ensemble, ['a', 'b']);
  assert.match(e.report.model, /ensemble of 2/);
  const sa = scoresOf(a.predictionsFile), sb = scoresOf(b.predictionsFile), se = scoresOf(e.predictionsFile);
  assert.equal(se.size, sa.size);
  let differ = 0;
  for (const [id, s] of se) {
    assert.ok(Math.abs(s - (sa.get(id)! + sb.get(id)!) / 2) < 1e-6, `mean for ${id}`);
    if (Math.abs(sa.get(id)! - sb.get(id)!) > 1e-4) differ++;
  }
  assert.ok(differ > 0, 'the members really differ');
  assert.ok(existsSync(join(e.dir, 'metrics.json')));

  const folder = tempDir();
  writePatches(folder, gridSpecs(['5001', '5002'], 4, 2));
  const pa = await predictFolder({ folder, outputDir: out, config: cfg, runId: 'a' });
  const pb = await predictFolder({ folder, outputDir: out, config: cfg, runId: 'b' });
  const pe = await predictFolder({ folder, outputDir: out, config: cfg, runIds: ['a', 'b'] });
  const byId = (r: typeof pa) => new Map(r.predictions.map((p) => [p.id, p.score]));
  const [ma, mb] = [byId(pa), byId(pb)];
  for (const p of pe.predictions) assert.ok(Math.abs(p.score - (ma.get(p.id)! + mb.get(p.id)!) / 2) < 1e-6);
  assert.deepEqual(JSON.parse(readFileSync(join(pe.dir, 'summary.json'), 'utf8')).ensemble, ['a', 'b']);
});

test('models with different inputs do not make an ensemble; a run listed twice is refused', async () => {
  const mac = tinyTrainConfig((c) => { c.train.epochs = 1; c.train.stepsPerEpoch = 2; c.data.stainNormalization = 'macenko'; });
  await train({ outputDir: out, config: mac, runId: 'mac' });
  await assert.rejects(evaluateModel({ outputDir: out, config: tiny(), runIds: ['a', 'mac'] }), (e: Error & { code?: string }) => e.code === 'ENSEMBLE_INPUTS' && /different inputs/.test(e.message) && /macenko/.test(e.message));
  await assert.rejects(evaluateModel({ outputDir: out, config: tiny(), runIds: ['a', 'a'] }), /lists a run twice/);
  await assert.rejects(evaluateModel({ outputDir: out, config: tiny(), runIds: ['a', 'nope'] }), /No run "nope"/);
});

test("a cross-validation's folds are an ensemble by its id; its pooled Grad-CAMs come from each patch's own fold model", async () => {
  const cv = await crossValidate({ outputDir: out, config: tiny(), folds: 3, seed: 1, id: 'cvx' });
  const e = await evaluateModel({ outputDir: out, config: tiny(), runId: 'cvx' });
  assert.deepEqual(e.report.ensemble, ['cvx-fold1', 'cvx-fold2', 'cvx-fold3']);
  assert.equal(e.dir, join(out, 'evals', 'cvx-ensemble', 'test'));
  // The folds trained on these workspace test patients: said, not hidden.
  assert.ok(e.report.warnings.some((w) => /was trained or stopped early on \d+ of these patients/.test(w)), e.report.warnings.join('\n'));

  const pooled = readPredictions(cv.predictionsFile);
  const ids = pooled.filter((p) => !existsSync(gradCamFile(cv.dir, p.id))).slice(0, 6).map((p) => p.id);
  assert.ok(ids.length >= 3);
  const r = await writeGradCamsFor({ outputDir: out, config: tiny(), evalDir: cv.dir, ids });
  assert.equal(r.written, ids.length);
  for (const id of ids) assert.ok(existsSync(gradCamFile(cv.dir, id)));
});
