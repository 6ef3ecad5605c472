/**
 * idc predict applies what the run's latest evaluation fixed on validation patients: the labels at
 * Youden's J chosen there and, with evaluate.calibration "temperature", the calibrated probability
 * next to the raw score. Without an evaluation it says so and uses evaluate.threshold.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initBackend } from '../src/core/engine/backends';
import { train } from '../src/core/train/train';
import { evaluateModel } from '../src/core/evaluate/evaluate';
import { predictFolder } from '../src/core/evaluate/predict';
import { formatPredictions, readPredictions } from '../src/core/evaluate/predictions';
import { readManifest } from '../src/core/manifest';
import type { EvalReport } from '../src/core/evaluate/types';
import { preparedOutput, tinyTrainConfig } from './helpers/pipeline';
import { tempDir } from './helpers/fixtures';

const CLI = resolve(__dirname, '../dist/cli.js');

function idc(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const logit = (p: number) => Math.log(p / (1 - p));

let root = '';
let out = '';
let folder = '';
let report: EvalReport;
const cfg = tinyTrainConfig((c) => { c.train.epochs = 1; c.train.stepsPerEpoch = 3; c.evaluate.calibration = 'temperature'; c.evaluate.bootstrap.resamples = 0; });

before(async () => {
  await initBackend('wasm');
  ({ root, out } = await preparedOutput(6, 51, [0.5, 0.25, 0.25]));
  const rows = await readManifest(join(out, 'manifest.csv'));
  folder = join(root, 'new-patient');
  mkdirSync(folder);
  for (const r of rows.filter((_, i) => i % 7 === 0).slice(0, 40)) copyFileSync(join(root, 'archive', r.source), join(folder, `${r.id.replace(/_class[01]$/, '')}.png`));
  await train({ outputDir: out, config: cfg, runId: 'r1' });
  // r2: the same run, never evaluated.
  cpSync(join(out, 'runs', 'r1'), join(out, 'runs', 'r2'), { recursive: true });
  const info = JSON.parse(readFileSync(join(out, 'runs', 'r2', 'run.json'), 'utf8'));
  writeFileSync(join(out, 'runs', 'r2', 'run.json'), JSON.stringify({ ...info, id: 'r2' }));
  report = (await evaluateModel({ outputDir: out, config: cfg, runId: 'r1' })).report;
});

test('the evaluation this relies on chose Youden on validation patients and fitted a temperature there', () => {
  assert.equal(report.operatingPoints.find((o) => o.name === 'youden')?.chosenOn, 'val');
  assert.equal(report.calibration?.temperature?.fittedOn, 'val');
});

test('predict writes raw and calibrated probabilities and the label at the validation-chosen threshold', async () => {
  const youden = report.operatingPoints.find((o) => o.name === 'youden')!.threshold;
  const T = report.calibration!.temperature!.value;
  const r = await predictFolder({ folder, outputDir: out, config: cfg, runId: 'r1' });
  assert.notEqual(youden, cfg.evaluate.threshold);
  assert.equal(r.threshold, youden);
  assert.equal(r.thresholdChosenBy, 'youden-val');
  assert.match(r.thresholdReason, /^Youden's J on run r1's validation patients \(runs\/r1\/eval\/test\/metrics\.json, /);
  assert.equal(r.temperature?.value, T);
  const text = readFileSync(r.predictionsFile, 'utf8');
  assert.equal(text.split('\n')[0], 'id,patient,x,y,label,score,score_calibrated,predicted_label');
  const rows = readPredictions(r.predictionsFile);
  assert.equal(rows.length, 40);
  for (const p of rows) {
    assert.ok(Math.abs(p.calibrated! - sigmoid(logit(p.score) / T)) < 1e-8, `${p.id}: ${p.calibrated} vs sigmoid(logit(${p.score}) / ${T})`);
    assert.equal(p.predicted, p.score >= youden ? 1 : 0, p.id);
  }
  assert.ok(rows.some((p) => p.predicted === 1) || rows.every((p) => p.score < youden));
  const summary = JSON.parse(readFileSync(join(r.dir, 'summary.json'), 'utf8'));
  assert.equal(summary.threshold, youden);
  assert.equal(summary.thresholdChosenBy, 'youden-val');
  assert.equal(summary.temperature.value, T);
  assert.equal(summary.evaluation, join('runs', 'r1', 'eval', 'test', 'metrics.json'));
  const positives = rows.filter((p) => p.score >= youden).length;
  assert.equal(r.patients.reduce((s, p) => s + p.predictedPositive, 0), positives, 'patient counts at the same threshold');

  // Raw only when the config does not ask for calibration; the label column stays.
  const raw = await predictFolder({ folder, outputDir: out, config: { ...cfg, evaluate: { ...cfg.evaluate, calibration: 'none' } }, runId: 'r1' });
  assert.equal(readFileSync(raw.predictionsFile, 'utf8').split('\n')[0], 'id,patient,x,y,label,score,predicted_label');
  assert.equal(raw.threshold, youden);
  // An evaluation scored otherwise (another test-time augmentation) does not apply.
  const flips = await predictFolder({ folder, outputDir: out, config: { ...cfg, evaluate: { ...cfg.evaluate, tta: 'flips' } }, runId: 'r1' });
  assert.equal(flips.threshold, cfg.evaluate.threshold);
  assert.match(flips.thresholdReason, /evaluate\.tta "none"; predict now uses "flips"/);
  assert.equal(flips.temperature, undefined);
});

test('a run without an evaluation: evaluate.threshold, raw scores only, and both said', async () => {
  const r = await predictFolder({ folder, outputDir: out, config: cfg, runId: 'r2' });
  assert.equal(r.threshold, cfg.evaluate.threshold);
  assert.equal(r.thresholdChosenBy, 'config');
  assert.match(r.thresholdReason, /^evaluate\.threshold from the config: run r2 has no evaluation yet/);
  assert.equal(r.temperature, undefined);
  assert.match(r.calibrationNote ?? '', /evaluate\.calibration is "temperature", but run r2 has no evaluation yet.*raw scores only/);
  assert.equal(readFileSync(r.predictionsFile, 'utf8').split('\n')[0], 'id,patient,x,y,label,score,predicted_label');
});

test('predictions files without the new columns still read, and evaluate still writes none', () => {
  const rows = [{ id: '1_idx5_x1_y1_class1', patient: '1', x: 1, y: 1, label: 1 as const, score: Math.fround(0.25) }];
  const text = formatPredictions(rows);
  assert.equal(text.split('\n')[0], 'id,patient,x,y,label,score');
  const file = join(tempDir(), 'predictions.csv');
  writeFileSync(file, text);
  assert.deepEqual(readPredictions(file), rows);
  writeFileSync(file, 'id,patient,x,y,label,score,mystery\n');
  assert.throws(() => readPredictions(file), /not a predictions file/);
});

test('the CLI names the threshold and the temperature it applied', () => {
  writeFileSync(join(root, 'idc.config.json'), JSON.stringify({ engine: { backend: 'wasm' }, data: { stainNormalization: 'none' }, evaluate: { calibration: 'temperature' } }));
  const youden = report.operatingPoints.find((o) => o.name === 'youden')!.threshold;
  const T = report.calibration!.temperature!.value;
  const r = idc(['predict', folder, '--run', 'r1', '--out', out, '-q'], root);
  assert.equal(r.code, 0, r.err);
  assert.ok(r.out.includes(`Labels (predicted_label) at threshold ${+youden.toPrecision(4)}: Youden's J on run r1's validation patients`), r.out);
  assert.ok(r.out.includes(`score_calibrated) = sigmoid(logit(score) / T), T = ${T.toPrecision(4)} fitted on run r1's validation patients`), r.out);
  const r2 = idc(['predict', folder, '--run', 'r2', '--out', out, '-q'], root);
  assert.equal(r2.code, 0, r2.err);
  assert.match(r2.out, /Labels \(predicted_label\) at threshold 0\.5: evaluate\.threshold from the config: run r2 has no evaluation yet/);
  assert.match(r2.out, /Note: evaluate\.calibration is "temperature", but run r2 has no evaluation yet .*raw scores only/);
});
