/**
 * Precise BN (train.preciseBatchNorm, Trainer.accumulateBatchNorm): after passes with count
 * 1..K the moving statistics are the mean of those K batches' statistics, on every engine, and
 * nothing else changes. The oracle is the stock path: a model with batch-norm momentum 0, whose
 * training-mode pass replaces the moving statistics by the batch's.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../src/core/engine/backends';
import { LocalTrainer, type Trainer, type TrainerOptions } from '../src/core/train/trainer';
import { ParallelTrainer, shardSizes } from '../src/core/train/parallel-trainer';
import { TorchTrainer } from '../src/core/train/torch-trainer';
import { loadModel } from '../src/core/train/model-io';
import { train } from '../src/core/train/train';
import { prepareData } from '../src/core/train/data';
import { drawAugmentation, toFloat } from '../src/core/train/augment';
import { presetConfig, validateConfig, type TorchLaunchConfig } from '../src/core/config';
import { Rng } from '../src/core/rng';
import { floatBatches, maxAbsDiff } from './helpers/batches';
import { preparedOutput, tinyTrainConfig } from './helpers/pipeline';
import { tempDir } from './helpers/fixtures';
import { bundleTrainerWorker } from './helpers/worker';

const PY = '/usr/bin/python3';
const hasTorch = existsSync(PY) && spawnSync(PY, ['-c', 'import torch, numpy, torch.distributed as d; assert d.is_gloo_available()'], { stdio: 'ignore' }).status === 0;
const skipTorch = hasTorch || process.env.IDC_REQUIRE_TORCH === '1' ? false : `no PyTorch for ${PY}`;
const launch = (processes: number): TorchLaunchConfig => ({ processes, nodes: 1, masterAddress: '', masterPort: 0, timeoutSeconds: 120 });

// Two dense blocks with dropout: the second one's batch norm sees the first one's dropout, which the passes must turn off.
const OPTS: TrainerOptions = { model: { filters: [8, 16], dense: [16, 8], dropout: 0.5, l2: 0.01, bnMomentum: 0.9, seed: 3 }, learningRate: 1e-3, loss: { kind: 'bce', gamma: 0 } };

let out = '';
let workerFile = '';
const open: Array<{ dispose(): unknown }> = [];

before(async () => {
  await initBackend('wasm');
  ({ out } = await preparedOutput());
  workerFile = bundleTrainerWorker(tempDir('idc-pbn-'));
});
after(async () => { for (const t of open) await t.dispose(); });

const isStat = (name: string) => /moving_(mean|variance)$/.test(name);

/** Each statistic within 1e-4 of the expected one, relative to its largest value. */
function assertStatsClose(got: readonly Float32Array[], want: readonly Float32Array[], what: string): void {
  assert.equal(got.length, want.length, what);
  got.forEach((a, i) => assert.ok(maxAbsDiff(a, want[i]) < 1e-4 * (1 + Math.max(...want[i].map(Math.abs))), `${what}, statistic ${i}: off by ${maxAbsDiff(a, want[i])}`));
}

/** Each batch norm's statistics of rows [lo, hi) of x through these weights, without dropout as at inference (the stock path, momentum 0). */
function batchStats(weights: readonly Float32Array[], x: Float32Array, lo: number, hi: number): Float32Array[] {
  const oracle = new LocalTrainer({ ...OPTS, model: { ...OPTS.model, bnMomentum: 0, dropout: 0 } });
  try {
    const t = weights.map((w, i) => tf.tensor(w, oracle.weightSpecs[i].shape));
    oracle.model.setWeights(t);
    tf.dispose(t);
    tf.tidy(() => { oracle.model.apply(tf.tensor4d(x.subarray(lo * 7500, hi * 7500), [hi - lo, 50, 50, 3]), { training: true }); });
    return oracle.model.getWeights().filter((_, i) => isStat(oracle.weightSpecs[i].name)).map((w) => Float32Array.from(w.dataSync()));
  } finally {
    oracle.dispose();
  }
}

/** Mean over batches of the shard-size-weighted mean of each shard's statistics (one shard: the batch's). */
function expectedStats(weights: readonly Float32Array[], xs: Array<{ x: Float32Array; n: number }>, replicas: number): Float32Array[] {
  let acc: Float64Array[] | undefined;
  for (const { x, n } of xs) {
    let lo = 0;
    for (const c of shardSizes(n, replicas)) {
      if (c) {
        const s = batchStats(weights, x, lo, lo + c);
        acc ??= s.map((a) => new Float64Array(a.length));
        s.forEach((a, i) => a.forEach((v, j) => { acc![i][j] += (v * c) / n / xs.length; }));
      }
      lo += c;
    }
  }
  return acc!.map((a) => Float32Array.from(a));
}

async function accumulated(t: Trainer, xs: Array<{ x: Float32Array; n: number }>, replicas: number): Promise<void> {
  const before = await t.getWeights();
  const adam = await t.getOptimizerState();
  for (const [k, b] of xs.entries()) await t.accumulateBatchNorm(b.x, b.n, k + 1);
  const after = await t.getWeights();
  const names = t.weightSpecs.map((s) => s.name);
  // Weights and Adam state untouched.
  after.forEach((w, i) => { if (!isStat(names[i])) assert.deepEqual(w, before[i], names[i]); });
  (await t.getOptimizerState()).data.forEach((a, i) => assert.deepEqual(a, adam.data[i], adam.specs[i].name));
  // Statistics: the mean over the batches; different from what they were.
  const got = after.filter((_, i) => isStat(names[i]));
  const want = expectedStats(before, xs, replicas);
  assertStatsClose(got, want, 'the mean over the batches');
  assert.ok(maxAbsDiff(got[0], before.filter((_, i) => isStat(names[i]))[0]) > 1e-3, 'the statistics moved');
}

const someBatches = async (count: number) => (await floatBatches(out, tinyTrainConfig(), count)).map(({ x, n }) => ({ x, n }));

test('LocalTrainer: K passes leave each batch norm at the mean of the K batches\' statistics; weights, Adam state and momentum untouched', async () => {
  const t = new LocalTrainer(OPTS);
  open.push(t);
  // Train a little first, so the weights are not the initial ones.
  for (const b of await floatBatches(out, tinyTrainConfig(), 2)) await t.trainStep(b.x, b.y, b.n, 0);
  const xs = await someBatches(3);
  await accumulated(t, xs, 1);
  const momenta = t.model.layers.filter((l) => l.getClassName() === 'BatchNormalization').map((l) => (l as unknown as { momentum: number }).momentum);
  assert.deepEqual([...new Set(momenta)], [0.9], 'momentum restored');
  const rates = t.model.layers.filter((l) => l.getClassName() === 'Dropout').map((l) => (l as unknown as { rate: number }).rate);
  assert.deepEqual(rates, [0.5, 0.5], 'dropout restored');
  // Count 1 replaces them: the last batch alone.
  await t.accumulateBatchNorm(xs[2].x, xs[2].n, 1);
  const stats = (await t.getWeights()).filter((_, i) => isStat(t.weightSpecs[i].name));
  const last = expectedStats(await t.getWeights(), [xs[2]], 1);
  assertStatsClose(stats, last, 'count 1');
  await assert.rejects(t.accumulateBatchNorm(xs[0].x, xs[0].n, 0), /count must be a whole number >= 1/);
});

test('ParallelTrainer (2 workers, and with this thread as a replica): the shard-weighted statistics, every replica the same', async () => {
  for (const mainReplica of [false, true]) {
    const t = await ParallelTrainer.create({ ...OPTS, threads: 2, workerFile, mainReplica });
    open.push(t);
    // 17 rows: unequal shards; 1 row: one replica has none.
    const xs = await someBatches(2);
    const x17 = new Float32Array(17 * 7500);
    x17.set(xs[0].x);
    x17.set(xs[1].x.subarray(0, 7500), 16 * 7500);
    xs.push({ x: x17, n: 17 }, { x: xs[1].x.slice(0, 7500), n: 1 });
    await accumulated(t, xs, 2);
    const states = await t.replicaStates();
    assert.deepEqual(states[1].weights, states[0].weights, `replicas identical (mainReplica ${mainReplica})`);
  }
});

test('torch engine (one process, and 2 gloo processes): the statistics the TF.js trainer computes', { skip: skipTorch }, async () => {
  const xs = await someBatches(3);
  const local = new LocalTrainer(OPTS);
  open.push(local);
  const start = await local.getWeights();
  for (const [k, b] of xs.entries()) await local.accumulateBatchNorm(b.x, b.n, k + 1);
  const want = (await local.getWeights()).filter((_, i) => isStat(local.weightSpecs[i].name));
  for (const processes of [1, 2]) {
    const t = await TorchTrainer.create({ ...OPTS, python: PY, threads: processes, torch: processes > 1 ? launch(processes) : undefined });
    try {
      await t.setWeights(start);
      // Sync batch norm: 2 processes compute the whole batch's statistics, as one does.
      await accumulated(t, xs, 1);
      const got = (await t.getWeights()).filter((_, i) => isStat(t.weightSpecs[i].name));
      assertStatsClose(got, want, `${processes} process(es)`);
      const sums = await t.rankChecksums();
      assert.equal(new Set(sums).size, 1, 'every rank holds the same statistics');
    } finally {
      await t.dispose();
    }
  }
});

test('torch engine on cache rows: the same statistics as on the pixels of those rows, augmented as drawn', { skip: skipTorch }, async () => {
  const cfg = tinyTrainConfig();
  const reader = (await prepareData(out, cfg)).open('train');
  const t = await TorchTrainer.create({ ...OPTS, python: PY, threads: 1 });
  const u = await TorchTrainer.create({ ...OPTS, python: PY, threads: 1 });
  try {
    assert.equal((await t.openRows([reader])).ok, true);
    const aug = { flipHorizontal: true, flipVertical: true, rotate: 0.2, stainJitter: { scale: 0.1, shift: 0.01 } };
    for (let k = 1; k <= 2; k++) {
      const r = new Rng(k);
      const indices = Uint32Array.from({ length: 16 }, () => Math.floor(r.next() * reader.size));
      const b = { split: 'train' as const, indices, y: new Uint8Array(16), augment: drawAugmentation(16, aug, r), geometry: true, stain: true };
      const pixels = await t.rowPixels(b);
      await t.accumulateBatchNormRows(b, k);
      await u.accumulateBatchNorm(pixels, 16, k);
    }
    const [a, c] = [await t.getWeights(), await u.getWeights()];
    a.forEach((w, i) => assert.ok(maxAbsDiff(w, c[i]) < 1e-5, t.weightSpecs[i].name));
  } finally {
    reader.close();
    await t.dispose();
    await u.dispose();
  }
});

const statsOf = (m: tfl.LayersModel) => m.weights.filter((w) => /moving_(mean|variance)/.test(w.name)).map((w) => Float32Array.from(w.read().dataSync()));

test('train.preciseBatchNorm: the saved model holds the mean statistics of that many batches of the last epoch through its final weights; training itself is unchanged', async () => {
  const cfg = (k: number) => tinyTrainConfig((c) => {
    c.train.epochs = 2;
    // One replica: the oracle below is one model (ParallelTrainer's shard averaging has its own test).
    c.engine.threads = 1;
    c.model.dense = [16, 8];
    c.model.dropout = 0.5;
    c.train.augment = { flipHorizontal: false, flipVertical: false, rotate: 0, stainJitter: { scale: 0, shift: 0 } };
    c.train.preciseBatchNorm = k;
    // The saved model is then the last epoch's, not the best one's.
    c.train.earlyStopping.enabled = false;
  });
  const plain = await train({ outputDir: out, config: cfg(0), runId: 'pbn-off' });
  const precise = await train({ outputDir: out, config: cfg(2), runId: 'pbn-2' });
  const [p, q] = [await loadModel(join(plain.runDir, 'model')), await loadModel(join(precise.runDir, 'model'))];
  // Training-mode passes normalize by batch statistics: the trained weights are the same.
  p.trainableWeights.forEach((w, i) => assert.deepEqual(w.read().dataSync(), q.trainableWeights[i].read().dataSync(), w.name));
  assert.deepEqual(precise.history.map((h) => h.loss), plain.history.map((h) => h.loss));
  // The statistics: the first 2 batches of epoch 2's order.
  const reader = (await prepareData(out, cfg(2))).open('train');
  const xs: Array<{ x: Float32Array; n: number }> = [];
  for await (const b of reader.batches({ batchSize: 16, shuffle: true, seed: cfg(2).train.seed, epoch: 1 })) {
    if (xs.length === 2) break;
    xs.push({ x: Float32Array.from(toFloat(b.x, b.y.length)), n: b.y.length });
  }
  reader.close();
  const shape = { ...OPTS, model: { ...OPTS.model, filters: cfg(2).model.filters, dense: cfg(2).model.dense } };
  const oracle = new LocalTrainer(shape);
  open.push(oracle);
  const weights = q.getWeights().map((w) => Float32Array.from(w.dataSync()));
  await oracle.setWeights(weights);
  for (const [k, b] of xs.entries()) await oracle.accumulateBatchNorm(b.x, b.n, k + 1);
  const want = statsOf(oracle.model);
  const got = statsOf(q);
  assertStatsClose(got, want, 'the saved model');
  assert.ok(maxAbsDiff(statsOf(p)[0], got[0]) > 1e-4, 'not the moving averages');
  p.dispose();
  q.dispose();
});

test('train.preciseBatchNorm: 100 by default, 0 in the notebook preset, a whole number of batches', () => {
  assert.equal(validateConfig({}).train.preciseBatchNorm, 100);
  assert.equal(presetConfig('notebook').train.preciseBatchNorm, 0);
  assert.throws(() => validateConfig({ train: { preciseBatchNorm: 2.5 } }), /train\.preciseBatchNorm/);
  assert.throws(() => validateConfig({ train: { preciseBatchNorm: -1 } }), /train\.preciseBatchNorm/);
});
