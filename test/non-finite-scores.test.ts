/**
 * A model whose weights went NaN (a diverged training, a damaged export) gives NaN scores: evaluate
 * and predict refuse them with an IdcError naming the model and how many scores were not finite,
 * and write no metrics or predictions, whether the model is a run or a third-party model.json.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../src/core/engine/backends';
import { loadModel, saveModel } from '../src/core/train/model-io';
import { train } from '../src/core/train/train';
import { evaluateModel } from '../src/core/evaluate/evaluate';
import { predictFolder } from '../src/core/evaluate/predict';
import { IdcError } from '../src/core/errors';
import { readManifest } from '../src/core/manifest';
import { preparedOutput, tinyTrainConfig } from './helpers/pipeline';
import { tempDir } from './helpers/fixtures';

const CLI = resolve(__dirname, '../dist/cli.js');

function idc(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Saves `model` into `dir` with every weight NaN, as a training whose loss went NaN leaves it (Adam spreads it everywhere). */
async function poisoned(model: tfl.LayersModel, dir: string): Promise<void> {
  model.setWeights(model.getWeights().map((w) => tf.fill(w.shape, NaN)));
  await saveModel(model, dir);
}

let root = '';
let out = '';
let folder = '';
let thirdParty = '';
const cfg = tinyTrainConfig((c) => { c.train.epochs = 1; c.train.stepsPerEpoch = 2; });

before(async () => {
  await initBackend('wasm');
  ({ root, out } = await preparedOutput(4, 31));
  const rows = (await readManifest(join(out, 'manifest.csv'))).slice(0, 8);
  folder = join(root, 'new-patient');
  mkdirSync(folder);
  for (const r of rows) copyFileSync(join(root, 'archive', r.source), join(folder, `${r.id}.png`));
  // A third-party model (no run config next to it) with a NaN in its dense kernel.
  thirdParty = join(root, 'nan-model');
  await poisoned(tfl.sequential({ layers: [tfl.layers.globalAveragePooling2d({ inputShape: [50, 50, 3] }), tfl.layers.dense({ units: 1, activation: 'sigmoid' })] }), thirdParty);
  // One of our runs whose final weights went NaN.
  await train({ outputDir: out, config: cfg, runId: 'r1' });
  const runModel = join(out, 'runs', 'r1', 'model');
  await poisoned(await loadModel(runModel), runModel);
  writeFileSync(join(root, 'idc.config.json'), JSON.stringify({ engine: { backend: 'wasm' }, data: { stainNormalization: 'none' }, model: { filters: cfg.model.filters, dense: cfg.model.dense } }));
});

function assertNonFinite(e: unknown, model: RegExp): true {
  assert.ok(e instanceof IdcError, `an IdcError, got ${(e as Error)?.stack ?? String(e)}`);
  assert.equal(e.code, 'NON_FINITE_SCORES');
  assert.match(e.message, model, 'names the model');
  assert.match(e.message, /(\d+) of (\d+) scores/, 'says how many of how many');
  const [, bad, all] = /(\d+) of (\d+) scores/.exec(e.message)!;
  assert.ok(Number(bad) > 0 && Number(bad) <= Number(all));
  assert.match(e.hint ?? '', /weights are not finite/);
  assert.match(e.hint ?? '', /retrain|another/);
  return true;
}

test('evaluate and predict refuse NaN scores of a third-party model and of a run, writing nothing', async () => {
  const modelFile = join(thirdParty, 'model.json');
  await assert.rejects(evaluateModel({ outputDir: out, config: cfg, modelPath: modelFile }), (e) => assertNonFinite(e, new RegExp(modelFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))));
  assert.ok(!existsSync(join(out, 'evals', 'nan-model', 'test', 'metrics.json')));
  assert.ok(!existsSync(join(out, 'evals', 'nan-model', 'test', 'predictions.csv')));
  await assert.rejects(evaluateModel({ outputDir: out, config: cfg, runId: 'r1' }), (e) => assertNonFinite(e, /run r1/));
  assert.ok(!existsSync(join(out, 'runs', 'r1', 'eval', 'test', 'metrics.json')));
  assert.ok(!existsSync(join(out, 'runs', 'r1', 'eval', 'test', 'predictions.csv')));
  for (const which of [{ modelPath: modelFile }, { runId: 'r1' }]) {
    await assert.rejects(predictFolder({ folder, outputDir: out, config: cfg, ...which }), (e) => assertNonFinite(e, which.runId ? /run r1/ : /nan-model/));
    assert.ok(!existsSync(join(out, 'predictions', 'new-patient', 'predictions.csv')));
    assert.ok(!existsSync(join(out, 'predictions', 'new-patient', 'summary.json')));
  }
});

test('the CLI: evaluate and predict on NaN weights exit 1 with the count and a hint, no stack trace, no outputs', () => {
  const cases = [
    ['evaluate', '--model', thirdParty, '--out', out, '-q'],
    ['evaluate', '--run', 'r1', '--out', out, '-q'],
    ['predict', folder, '--model', thirdParty, '--out', out, '-q'],
    ['predict', folder, '--run', 'r1', '--out', out, '-q'],
  ];
  for (const args of cases) {
    const r = idc(args, root);
    const what = args.join(' ');
    assert.equal(r.code, 1, `${what}: ${r.out}\n${r.err}`);
    assert.match(r.err, /Error: .*gave non-finite scores: \d+ of \d+ scores are NaN or infinite/, what);
    assert.match(r.err, /weights are not finite/, what);
    assert.doesNotMatch(r.err, /Internal error|RangeError|\n\s+at /, `${what}: no stack`);
    assert.doesNotMatch(r.out, /mean score NaN/, what);
  }
  assert.ok(!existsSync(join(out, 'runs', 'r1', 'eval', 'test', 'metrics.json')));
  assert.ok(!existsSync(join(out, 'evals', 'nan-model', 'test', 'metrics.json')));
  assert.ok(!existsSync(join(out, 'predictions', 'new-patient', 'predictions.csv')));
});
