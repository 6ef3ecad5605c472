/**
 * A model without a run config (evaluate/predict --model) was trained elsewhere on whatever inputs
 * its authors used: it gets its patches as scanned unless the user set data.stainNormalization (in
 * idc.config.json, not a filled-in default) or --stain-normalization. Our runs keep their own setting.
 * Every output says which applied and why.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../src/core/engine/backends';
import { saveModel } from '../src/core/train/model-io';
import { train } from '../src/core/train/train';
import { evaluateModel } from '../src/core/evaluate/evaluate';
import { predictFolder } from '../src/core/evaluate/predict';
import { defaultConfig, explicitlySet, loadConfig, type ExplicitFields } from '../src/core/config';
import { readManifest } from '../src/core/manifest';
import type { EvalReport } from '../src/core/evaluate/types';
import { preparedOutput, tinyTrainConfig } from './helpers/pipeline';
import { tempDir } from './helpers/fixtures';

const CLI = resolve(__dirname, '../dist/cli.js');

function idc(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let root = '';
let out = '';
let folder = '';
let model = '';
const AS_SCANNED = 'as scanned: a model without a run config; set data.stainNormalization or --stain-normalization to change';

before(async () => {
  await initBackend('wasm');
  ({ root, out } = await preparedOutput(4, 41));
  const rows = (await readManifest(join(out, 'manifest.csv'))).slice(0, 6);
  folder = join(root, 'new-patient');
  mkdirSync(folder);
  for (const r of rows) copyFileSync(join(root, 'archive', r.source), join(folder, `${r.id}.png`));
  model = join(root, 'public-model');
  await saveModel(tfl.sequential({ layers: [tfl.layers.globalAveragePooling2d({ inputShape: [50, 50, 3] }), tfl.layers.dense({ units: 1, activation: 'sigmoid' })] }), model);
});

test('the config records which fields the file and the options set, not the defaults filled in', async () => {
  const dir = tempDir();
  const none = await loadConfig({ cwd: dir });
  assert.equal(none.config.data.stainNormalization, 'macenko', 'the default');
  assert.equal(explicitlySet(none.explicit, 'data.stainNormalization'), undefined);
  writeFileSync(join(dir, 'idc.config.json'), '{ "data": { "edgePatches": "pad" } }');
  const other = await loadConfig({ cwd: dir });
  assert.equal(explicitlySet(other.explicit, 'data.stainNormalization'), undefined, 'another data field is not this one');
  assert.equal(explicitlySet(other.explicit, 'data'), 'file', 'a section counts when a field under it is set');
  writeFileSync(join(dir, 'idc.config.json'), '{ "data": { "stainNormalization": "macenko" } }');
  assert.equal(explicitlySet((await loadConfig({ cwd: dir })).explicit, 'data.stainNormalization'), 'file');
  const flagged = await loadConfig({ cwd: dir, overrides: { data: { stainNormalization: 'none' } } });
  assert.equal(flagged.config.data.stainNormalization, 'none');
  assert.equal(explicitlySet(flagged.explicit, 'data.stainNormalization'), 'option');
});

test('evaluate and predict --model: as scanned by default, Macenko when the config or an option sets it; a run keeps its own', async () => {
  const config = defaultConfig(); // data.stainNormalization "macenko", filled in
  const modelFile = join(model, 'model.json');
  const fileSets: ExplicitFields = new Map([['data.stainNormalization', 'file']]);
  const optionSets: ExplicitFields = new Map([['data.stainNormalization', 'option']]);

  const plain = await evaluateModel({ outputDir: out, config, modelPath: modelFile });
  assert.equal(plain.report.stainNormalization, 'none');
  assert.equal(plain.report.stainNormalizationReason, AS_SCANNED);
  const onDisk = JSON.parse(readFileSync(plain.metricsFile, 'utf8')) as EvalReport;
  assert.equal(onDisk.stainNormalizationReason, AS_SCANNED, 'metrics.json says why');
  const mac = await evaluateModel({ outputDir: out, config, modelPath: modelFile, explicit: fileSets });
  assert.equal(mac.report.stainNormalization, 'macenko');
  assert.equal(mac.report.stainNormalizationReason, 'Macenko, as your config sets');
  assert.notDeepEqual(mac.predictions.map((p) => p.score), plain.predictions.map((p) => p.score), 'the inputs really differ');
  const flag = await evaluateModel({ outputDir: out, config: { ...config, data: { ...config.data, stainNormalization: 'none' } }, modelPath: modelFile, explicit: optionSets });
  assert.equal(flag.report.stainNormalizationReason, 'as scanned, as --stain-normalization sets');
  assert.deepEqual(flag.predictions.map((p) => p.score), plain.predictions.map((p) => p.score));

  const p0 = await predictFolder({ folder, outputDir: out, config, modelPath: modelFile });
  assert.equal(p0.stainNormalization, 'none');
  assert.equal(JSON.parse(readFileSync(join(p0.dir, 'summary.json'), 'utf8')).stainNormalizationReason, AS_SCANNED);
  const p1 = await predictFolder({ folder, outputDir: out, config, modelPath: modelFile, explicit: fileSets });
  assert.equal(p1.stainNormalization, 'macenko');
  assert.equal(p1.stainNormalizationReason, 'Macenko, as your config sets');
  const p2 = await predictFolder({ folder, outputDir: out, config, modelPath: modelFile, explicit: optionSets });
  assert.equal(p2.stainNormalizationReason, 'Macenko, as --stain-normalization sets');

  // Our run trained as scanned: still as scanned under a config that asks for Macenko explicitly.
  const cfg = tinyTrainConfig((c) => { c.train.epochs = 1; c.train.stepsPerEpoch = 2; });
  await train({ outputDir: out, config: cfg, runId: 'r1' });
  const run = await evaluateModel({ outputDir: out, config, runId: 'r1', explicit: fileSets });
  assert.equal(run.report.stainNormalization, 'none');
  assert.equal(run.report.stainNormalizationReason, 'as scanned, as run r1 was trained');
  const pr = await predictFolder({ folder, outputDir: out, config, runId: 'r1', explicit: fileSets });
  assert.equal(pr.stainNormalizationReason, 'as scanned, as run r1 was trained');
});

test('the CLI: --model without a config field is scored as scanned; the config field or --stain-normalization switch it; the output says why', () => {
  const ws = join(root, 'ws');
  mkdirSync(ws);
  const metrics = () => JSON.parse(readFileSync(join(out, 'evals', 'public-model', 'test', 'metrics.json'), 'utf8')) as EvalReport;
  writeFileSync(join(ws, 'idc.config.json'), JSON.stringify({ engine: { backend: 'wasm' } }));
  const plain = idc(['evaluate', '--model', model, '--out', out, '-q'], ws);
  assert.equal(plain.code, 0, plain.err);
  assert.ok(plain.out.includes(`inputs: ${AS_SCANNED}`), plain.out);
  assert.equal(metrics().stainNormalization, 'none');
  const predicted = idc(['predict', folder, '--model', model, '--out', out, '-q'], ws);
  assert.equal(predicted.code, 0, predicted.err);
  assert.ok(predicted.out.includes(`Inputs: ${AS_SCANNED}.`), predicted.out);

  writeFileSync(join(ws, 'idc.config.json'), JSON.stringify({ engine: { backend: 'wasm' }, data: { stainNormalization: 'macenko' } }));
  const fromFile = idc(['evaluate', '--model', model, '--out', out, '-q'], ws);
  assert.equal(fromFile.code, 0, fromFile.err);
  assert.match(fromFile.out, /inputs: Macenko, as your config sets/);
  assert.equal(metrics().stainNormalization, 'macenko');
  assert.equal(metrics().stainNormalizationReason, 'Macenko, as your config sets');
  const flagNone = idc(['evaluate', '--model', model, '--out', out, '--stain-normalization', 'none', '-q'], ws);
  assert.equal(flagNone.code, 0, flagNone.err);
  assert.match(flagNone.out, /inputs: as scanned, as --stain-normalization sets/);
  assert.equal(metrics().stainNormalization, 'none');
  const flagMac = idc(['predict', folder, '--model', model, '--out', out, '--stain-normalization', 'macenko', '-q'], ws);
  assert.equal(flagMac.code, 0, flagMac.err);
  assert.match(flagMac.out, /Inputs: Macenko, as --stain-normalization sets \(each patient normalized from its own patches in the folder\)\./);
  const bad = idc(['predict', folder, '--model', model, '--out', out, '--stain-normalization', 'reinhard', '-q'], ws);
  assert.equal(bad.code, 2, bad.err);
  assert.match(bad.err, /--stain-normalization/);
});
