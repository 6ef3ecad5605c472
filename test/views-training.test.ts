import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, readFileSync, rmSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../src/core/engine/backends';
import { train } from '../src/core/train/train';
import type { EpochLog } from '../src/core/train/checkpoint';
import { buildTrainingView, listRunSummaries, newestOpenRun, readHistory, runHistory, summarizeModelConfig, summarizeModelJson } from '../src/core/views/training';
import { JobMeter } from '../src/server/jobs';
import { preparedOutput, tinyTrainConfig } from './helpers/pipeline';
import { tempDir } from './helpers/fixtures';

let out = '';
const RUN = 'tiny';
const runDir = () => join(out, 'runs', RUN);
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
const manifestOf = (dir: string) => (JSON.parse(readFileSync(join(dir, 'model', 'model.json'), 'utf8')) as { weightsManifest: { weights: { name: string; shape: number[] }[] }[] }).weightsManifest.flatMap((g) => g.weights);

before(async () => {
  await initBackend('wasm');
  ({ out } = await preparedOutput());
  // Two real epochs; ReduceLROnPlateau with a min_delta nothing can beat lowers the LR after epoch 2.
  const config = tinyTrainConfig((c) => {
    c.train.epochs = 2;
    c.engine.threads = 1;
    c.train.reduceLrOnPlateau = { ...c.train.reduceLrOnPlateau, enabled: true, monitor: 'val_loss', patience: 1, minDelta: 100, factor: 0.5 };
  });
  await train({ outputDir: out, config, runId: RUN });
});

test('a finished run: history, best epoch, LR reductions, pace, backend and its own config', () => {
  const v = buildTrainingView(out)!;
  const run = JSON.parse(readFileSync(join(runDir(), 'run.json'), 'utf8'));
  const lines = readFileSync(join(runDir(), 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EpochLog);
  assert.equal(v.run.id, RUN);
  assert.equal(v.runDir, runDir());
  assert.equal(v.history.length, 2);
  assert.deepEqual(v.history, lines);
  assert.equal(v.epochs, 2);
  assert.equal(v.run.status, 'finished');
  assert.equal(v.run.epochsDone, 2);
  // Restore-best early stopping is on by default: run.json names the restored epoch, history flags it.
  assert.equal(typeof run.bestEpoch, 'number');
  assert.equal(v.bestEpoch, run.bestEpoch);
  assert.ok(lines[v.bestEpoch!].best, 'the best epoch is flagged in history.jsonl');
  assert.equal(v.monitor, 'val_auc', 'early stopping watches validation AUC by default');
  assert.deepEqual(v.lrReducedAt, [1], 'ReduceLROnPlateau lowered the LR after the second epoch');
  assert.equal(lines[1].lrReduced, true);
  assert.equal(v.run.bestValAuc, Math.max(...lines.map((l) => l.val_auc)));
  assert.equal(v.run.bestValLoss, Math.min(...lines.map((l) => l.val_loss)));
  assert.ok(v.epochSeconds! > 0 && Math.abs(v.epochSeconds! - (lines[0].seconds + lines[1].seconds) / 2) < 1e-9);
  assert.equal(v.etaSeconds, null, 'nothing left to train');
  assert.equal(v.backend, run.backend);
  assert.match(v.backend, /^wasm/);
  assert.equal(v.running, false);
  assert.equal(buildTrainingView(out, { running: (id) => id === RUN })!.running, true);
  assert.deepEqual(v.config, JSON.parse(readFileSync(join(runDir(), 'config.json'), 'utf8')));
  assert.equal((v.config as { train: { epochs: number } }).train.epochs, 2);
  assert.deepEqual(v.problems, []);
});

test('the model summary reads model.json: Keras shapes, and parameter totals equal the weightsManifest', () => {
  const m = buildTrainingView(out, { runId: RUN })!.model!;
  const weights = manifestOf(runDir());
  const stored = weights.reduce((s, w) => s + prod(w.shape), 0);
  const moving = weights.filter((w) => /moving_(mean|variance)$/.test(w.name)).reduce((s, w) => s + prod(w.shape), 0);
  assert.equal(m.source, 'model.json');
  assert.equal(m.name, 'idc_cnn');
  assert.equal(m.totalParams, stored);
  assert.equal(m.nonTrainableParams, moving);
  assert.equal(m.trainableParams, stored - moving);
  assert.equal(m.totalBytes, 4 * stored);
  assert.deepEqual(m.check, { against: 'weightsManifest', params: stored, ok: true });
  assert.equal(m.rows.reduce((s, r) => s + r.params, 0), m.totalParams);
  // tinyTrainConfig: filters [8, 16], dense [16]. 50 'same' → pool 25 → 'valid' 23 → pool 11 → GAP.
  const brief = m.rows.map((r) => [r.type, r.outputShape, r.params]);
  assert.deepEqual(brief, [
    ['InputLayer', '(None, 50, 50, 3)', 0],
    ['Conv2D', '(None, 50, 50, 8)', 3 * 3 * 3 * 8],
    ['BatchNormalization', '(None, 50, 50, 8)', 4 * 8],
    ['ReLU', '(None, 50, 50, 8)', 0],
    ['MaxPooling2D', '(None, 25, 25, 8)', 0],
    ['Conv2D', '(None, 23, 23, 16)', 3 * 3 * 8 * 16],
    ['BatchNormalization', '(None, 23, 23, 16)', 4 * 16],
    ['ReLU', '(None, 23, 23, 16)', 0],
    ['MaxPooling2D', '(None, 11, 11, 16)', 0],
    ['GlobalAveragePooling2D', '(None, 16)', 0],
    ['Dense', '(None, 16)', 16 * 16 + 16],
    ['BatchNormalization', '(None, 16)', 4 * 16],
    ['ReLU', '(None, 16)', 0],
    ['Dropout', '(None, 16)', 0],
    ['Dense', '(None, 1)', 16 + 1],
  ]);
  assert.equal(m.rows.find((r) => r.type === 'BatchNormalization')!.nonTrainableParams, 16, 'moving mean and variance of 8 channels');
});

test('the summary rebuilt from the config (no TF.js) matches the saved model layer by layer', () => {
  const config = JSON.parse(readFileSync(join(runDir(), 'config.json'), 'utf8'));
  const fromConfig = summarizeModelConfig(config.model);
  const saved = buildTrainingView(out, { runId: RUN })!.model!;
  assert.equal(fromConfig.source, 'config');
  assert.deepEqual(fromConfig.rows.map((r) => [r.type, r.outputShape, r.params, r.nonTrainableParams]), saved.rows.map((r) => [r.type, r.outputShape, r.params, r.nonTrainableParams]));
  assert.deepEqual([fromConfig.totalParams, fromConfig.trainableParams, fromConfig.nonTrainableParams], [saved.totalParams, saved.trainableParams, saved.nonTrainableParams]);
  // The default model: the notebook's CNN, as Keras counts it.
  const dflt = summarizeModelConfig({});
  assert.deepEqual([dflt.totalParams, dflt.trainableParams, dflt.nonTrainableParams], [111329, 110497, 832]);
  assert.equal(dflt.rows.at(-5)!.outputShape, '(None, 64)');
});

test('a run still training: no model.json yet, summary from config checked against the checkpoint, ETA, a half-written history line', () => {
  const id = 'live';
  const dir = join(out, 'runs', id);
  cpSync(runDir(), dir, { recursive: true });
  rmSync(join(dir, 'model'), { recursive: true });
  const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ id, createdAt: '2999-01-01T00:00:00.000Z', status: 'running', backend: run.backend, epochs: 5 }));
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  config.train.epochs = 5;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const [first] = readFileSync(join(dir, 'history.jsonl'), 'utf8').split('\n');
  writeFileSync(join(dir, 'history.jsonl'), `${first}\n{"epoch":1,"loss":0.3`);

  const v = buildTrainingView(out)!;
  assert.equal(v.run.id, id, 'the newest run by default');
  assert.equal(v.history.length, 1, 'the line being appended is not an epoch yet');
  assert.deepEqual(v.problems, [], 'and it is not a problem either');
  assert.equal(v.epochs, 5);
  assert.equal(v.bestEpoch, 0, 'no run.json bestEpoch yet: the last epoch flagged best');
  assert.ok(Math.abs(v.etaSeconds! - 4 * v.epochSeconds!) < 1e-9);
  assert.equal(v.model!.source, 'config');
  assert.match(v.model!.note!, /TF\.js names the layers/);
  assert.equal(v.model!.check!.against, 'checkpoint');
  assert.ok(v.model!.check!.ok, `config summary ${v.model!.totalParams} vs checkpoint ${v.model!.check!.params}`);
  assert.equal(v.model!.totalParams, manifestOf(runDir()).reduce((s, w) => s + prod(w.shape), 0));

  // The job's run: the unfinished one whose run.json was written last.
  assert.equal(newestOpenRun(out), id);
  const past = new Date(Date.now() - 60_000);
  utimesSync(join(dir, 'run.json'), past, past);
  cpSync(dir, join(out, 'runs', 'live2'), { recursive: true });
  writeFileSync(join(out, 'runs', 'live2', 'run.json'), JSON.stringify({ id: 'live2', createdAt: '2000-01-01T00:00:00.000Z', status: 'running', backend: 'wasm', epochs: 5 }));
  assert.equal(newestOpenRun(out), 'live2');

  // Without model settings there is nothing to rebuild: say when it comes.
  delete config.model;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const noModel = buildTrainingView(out, { runId: id })!;
  assert.equal(noModel.model, null);
  assert.match(noModel.modelNote!, /when training finishes/);
  rmSync(dir, { recursive: true });
  rmSync(join(out, 'runs', 'live2'), { recursive: true });
});

test('a hand-written history: several LR reductions and best flags, a damaged line, an epoch written twice', () => {
  const root = tempDir();
  const dir = join(root, 'runs', 'hand');
  mkdirSync(dir, { recursive: true });
  const ep = (epoch: number, extra: Partial<EpochLog> = {}): EpochLog => ({
    epoch, loss: 1 - epoch / 10, accuracy: 0.5, precision: 0.5, recall: 0.5, auc: 0.6 + epoch / 100,
    val_loss: 1.1 - epoch / 20, val_accuracy: 0.5, val_precision: 0.4, val_recall: 0.6, val_auc: 0.7 + (epoch % 3) / 100,
    lr: 1e-3, seconds: 10 + epoch, imagesPerSecond: 100, ...extra,
  });
  const lines = [
    ep(0, { best: true }), ep(1, { best: true, lrReduced: true }), ep(2), ep(3, { lrReduced: true, lr: 5e-4 }), ep(4, { best: true, lr: 2.5e-4 }),
  ].map((e) => JSON.stringify(e));
  lines.splice(2, 0, '{broken');
  lines.push(JSON.stringify(ep(4, { best: true, lr: 2.5e-4, seconds: 99 })));
  writeFileSync(join(dir, 'history.jsonl'), lines.join('\n') + '\n');
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ id: 'hand', createdAt: '2025-01-01T00:00:00.000Z', status: 'running', backend: 'cpu', epochs: 8 }));

  const v = buildTrainingView(root)!;
  assert.deepEqual(v.history.map((e) => e.epoch), [0, 1, 2, 3, 4]);
  assert.equal(v.history[4].seconds, 99, 'the later line of an epoch wins');
  assert.deepEqual(v.lrReducedAt, [1, 3]);
  assert.equal(v.bestEpoch, 4);
  assert.equal(v.monitor, undefined, 'no config: nothing known about early stopping');
  assert.equal(v.epochs, 8, 'run.json planned epochs when the config is missing');
  assert.equal(v.problems.length, 2);
  assert.match(v.problems.join('\n'), /line 3 is not an epoch record/);
  assert.match(v.problems.join('\n'), /config\.json is missing/);
  // Pace: the first (warm-up) epoch left out once there are more than two.
  assert.equal(v.epochSeconds, (11 + 12 + 13 + 99) / 4);
  assert.equal(v.etaSeconds, 3 * v.epochSeconds!);
  assert.equal(v.model, null);
  assert.match(v.modelNote!, /when training finishes/);

  // A finished run's run.json names the restored epoch, whatever the flags say.
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ id: 'hand', createdAt: '2025-01-01T00:00:00.000Z', status: 'finished', backend: 'cpu', epochs: 5, bestEpoch: 1 }));
  const done = buildTrainingView(root)!;
  assert.equal(done.bestEpoch, 1);
  assert.equal(done.epochs, 5);
  assert.equal(done.etaSeconds, null);
  assert.deepEqual(readHistory(join(root, 'runs', 'nothing-here')), []);
});

test('runs to pick and overlay: summaries oldest first, another run\'s history, bad ids refused, no runs at all', () => {
  const root = tempDir();
  assert.equal(buildTrainingView(root), null, 'no run yet: the page shows its empty state');
  assert.deepEqual(listRunSummaries(root), []);
  cpSync(runDir(), join(root, 'runs', 'b'), { recursive: true });
  writeFileSync(join(root, 'runs', 'b', 'run.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(runDir(), 'run.json'), 'utf8')), id: 'b', createdAt: '2025-02-01T00:00:00.000Z' }));
  cpSync(runDir(), join(root, 'runs', 'a'), { recursive: true });
  writeFileSync(join(root, 'runs', 'a', 'run.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(runDir(), 'run.json'), 'utf8')), id: 'a', createdAt: '2025-01-01T00:00:00.000Z' }));
  mkdirSync(join(root, 'runs', 'not-a-run'));
  const list = listRunSummaries(root);
  assert.deepEqual(list.map((r) => r.id), ['a', 'b']);
  assert.equal(list[0].epochsDone, 2);
  assert.equal(buildTrainingView(root)!.run.id, 'b', 'the newest run by default');
  const c = runHistory(root, 'a');
  assert.equal(c.run.id, 'a');
  assert.deepEqual(c.history, readHistory(runDir()));
  assert.throws(() => runHistory(root, '../b'), /not a run id/);
  assert.throws(() => runHistory(root, 'zzz'), /No run zzz/);
  assert.throws(() => buildTrainingView(root, { runId: 'zzz' }), /No run zzz/);
});

test('a Keras Sequential topology (the MNIST example): shapes and counts as model.summary() prints them', () => {
  const m = summarizeModelJson({
    modelTopology: {
      class_name: 'Sequential',
      config: {
        name: 'sequential',
        layers: [
          { class_name: 'Conv2D', config: { name: 'conv2d', batch_input_shape: [null, 28, 28, 1], filters: 32, kernel_size: [3, 3], strides: [1, 1], padding: 'valid', activation: 'relu', use_bias: true } },
          { class_name: 'MaxPooling2D', config: { name: 'max_pooling2d', pool_size: [2, 2], strides: [2, 2], padding: 'valid' } },
          { class_name: 'Flatten', config: { name: 'flatten' } },
          { class_name: 'Dropout', config: { name: 'dropout', rate: 0.5 } },
          { class_name: 'Dense', config: { name: 'dense', units: 10, activation: 'softmax', use_bias: true } },
        ],
      },
    },
  });
  assert.deepEqual(m.rows.map((r) => [r.name, r.outputShape, r.params]), [
    ['conv2d', '(None, 26, 26, 32)', 320],
    ['max_pooling2d', '(None, 13, 13, 32)', 0],
    ['flatten', '(None, 5408)', 0],
    ['dropout', '(None, 5408)', 0],
    ['dense', '(None, 10)', 54090],
  ]);
  assert.equal(m.totalParams, 54410);
  assert.equal(m.check, undefined, 'no weightsManifest to check against');
  assert.throws(() => summarizeModelJson({}), /no modelTopology/);
});

test('training progress notifications carry the run, step/steps, loss and images per second', () => {
  let now = 0;
  const meter = new JobMeter('train', 200, () => now);
  meter.onTrainEvent({ type: 'start', runId: 'r1', runDir: '/x', epochs: 3, startEpoch: 0, backend: 'wasm', trainSize: 64, valSize: 32 });
  meter.onTrainEvent({ type: 'batch', runId: 'r1', epoch: 0, batch: 2, batches: 4, loss: 0.5, imagesPerSecond: 123 });
  now = 2000;
  const r = meter.onProgress({ phase: 'train.epoch', label: 'Epoch 1/3', done: 32, total: 64, unit: 'img' })!;
  assert.deepEqual([r.runId, r.epoch, r.epochs, r.step, r.steps, r.loss, r.imagesPerSecond], ['r1', 1, 3, 2, 4, 0.5, 123]);
  const e: EpochLog = { epoch: 0, loss: 0.5, accuracy: 0, precision: 0, recall: 0, auc: 0, val_loss: 0, val_accuracy: 0, val_precision: 0, val_recall: 0, val_auc: 0, lr: 1e-3, seconds: 1, imagesPerSecond: 1 };
  meter.onTrainEvent({ type: 'epoch', runId: 'r1', log: e });
  now = 3000;
  const v = meter.onProgress({ phase: 'train.validate', label: 'Validating', done: 1, total: 32, unit: 'img' })!;
  assert.equal(v.runId, 'r1');
  assert.equal(v.step, undefined, 'no batch of the new epoch yet');
});

// history.jsonl grows while the panel reads it.
test('readHistory keeps a complete last line without a newline', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'history.jsonl'), '');
  appendFileSync(join(dir, 'history.jsonl'), JSON.stringify({ epoch: 0, loss: 1 }));
  assert.equal(readHistory(dir).length, 1);
});
