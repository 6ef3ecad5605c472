import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initWasmBackend } from '../src/core/engine/wasm-kernels';
import { registerCpuBatchNormKernels } from '../src/core/engine/fused-bn';
import { LocalTrainer, adamState, type TrainerOptions } from '../src/core/train/trainer';
import { ParallelTrainer, resolveThreads, shardSizes, MAX_THREADS } from '../src/core/train/parallel-trainer';
import { createTrainer } from '../src/core/train/trainer-factory';
import { batchLoss } from '../src/core/train/losses';
import { loadModel } from '../src/core/train/model-io';
import { defaultConfig } from '../src/core/config';
import { IdcError } from '../src/core/errors';
import { tempDir } from './helpers/fixtures';
import { bundleTrainerWorker } from './helpers/worker';

const OPTS: TrainerOptions = {
  model: { filters: [8, 16], dense: [16], dropout: 0, l2: 0.01, seed: 3 },
  learningRate: 1e-3,
  loss: { kind: 'focal', gamma: 2, classWeights: [0.7, 1.8] },
};

let dir = '';
let workerFile = '';
const open: Array<{ dispose(): unknown }> = [];

before(async () => {
  await initWasmBackend();
  dir = tempDir('idc-ptrain-');
  workerFile = bundleTrainerWorker(dir);
});
after(async () => {
  for (const t of open) await t.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function parallel(extra: Partial<Parameters<typeof ParallelTrainer.create>[0]> = {}): Promise<ParallelTrainer> {
  const t = await ParallelTrainer.create({ ...OPTS, threads: 2, workerFile, ...extra });
  open.push(t);
  return t;
}

function local(): LocalTrainer {
  const t = new LocalTrainer(OPTS);
  open.push(t);
  return t;
}

/** Deterministic patches and labels, different per `seed`. */
function batch(n: number, seed: number): { x: Float32Array; y: Uint8Array } {
  const x = new Float32Array(n * 7500);
  for (let i = 0; i < x.length; i++) x[i] = (((i + 1) * 2654435761 + seed * 40503) >>> 0) / 2 ** 32;
  return { x, y: Uint8Array.from({ length: n }, (_, i) => ((i * 5 + seed) % 3 === 0 ? 1 : 0)) };
}

function maxDiff(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  assert.equal(a.length, b.length);
  let m = 0;
  a.forEach((t, i) => { assert.equal(t.length, b[i].length); for (let j = 0; j < t.length; j++) m = Math.max(m, Math.abs(t[j] - b[i][j])); });
  return m;
}

function assertIdentical(a: readonly Float32Array[], b: readonly Float32Array[], what: string): void {
  assert.equal(a.length, b.length, what);
  a.forEach((t, i) => assert.ok(Buffer.from(t.buffer, t.byteOffset, t.byteLength).equals(Buffer.from(b[i].buffer, b[i].byteOffset, b[i].byteLength)), `${what}: tensor ${i} differs`));
}

/**
 * The step a data-parallel trainer should take, done by hand on one LocalTrainer model: each shard's
 * loss (incl. regularisation) and gradient from the same starting moving stats, their shard-size-
 * weighted mean applied by a fresh Keras-style Adam, the moving stats replaced by their weighted mean.
 */
function shardwiseStep(model: LocalTrainer['model'], x: Float32Array, y: Uint8Array, shards: number[]): { loss: number; probs: Float32Array; adam: tf.AdamOptimizer } {
  const n = shards.reduce((a, c) => a + c, 0);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const stats = model.nonTrainableWeights;
  const stats0 = stats.map((s) => s.read().clone());
  const gAcc = vars.map((v) => new Float64Array(v.size));
  const sAcc = stats.map((s) => new Float64Array(s.read().size));
  const probs = new Float32Array(n);
  let loss = 0, start = 0;
  for (const c of shards) {
    stats.forEach((s, i) => s.write(stats0[i].clone()));
    let p: tf.Tensor | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const xs = tf.tensor4d(x.slice(start * 7500, (start + c) * 7500), [c, 50, 50, 3]);
      const ys = tf.tensor2d(Float32Array.from(y.subarray(start, start + c)), [c, 1]);
      p = tf.keep(model.apply(xs, { training: true }) as tf.Tensor);
      let total = batchLoss(ys, p, OPTS.loss);
      for (const reg of model.calculateLosses()) total = tf.add(total, reg) as tf.Scalar;
      return total;
    }, vars);
    probs.set(p!.dataSync(), start);
    loss += (c / n) * value.dataSync()[0];
    vars.forEach((v, i) => { const g = grads[v.name].dataSync(); for (let j = 0; j < g.length; j++) gAcc[i][j] += c * g[j]; });
    stats.forEach((s, i) => { const d = s.read().dataSync(); for (let j = 0; j < d.length; j++) sAcc[i][j] += c * d[j]; });
    tf.dispose([value, p!, ...Object.values(grads)]);
    start += c;
  }
  const adam = tf.train.adam(OPTS.learningRate, 0.9, 0.999, 1e-7);
  tf.tidy(() => {
    adam.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: tf.tensor(Float32Array.from(gAcc[i], (a) => a / n), v.shape) })));
    stats.forEach((s, i) => s.write(tf.tensor(Float32Array.from(sAcc[i], (a) => a / n), s.shape as number[])));
  });
  tf.dispose(stats0);
  return { loss, probs, adam };
}

for (const mainReplica of [true, false]) {
  test(`one step equals the size-weighted mean of the shard gradients (${mainReplica ? 'this thread is a replica' : 'coordinator + 2 workers'})`, { timeout: 60_000 }, async () => {
    const p = await parallel({ mainReplica });
    const ref = local();
    const w0 = await p.getWeights();
    await ref.setWeights(w0);
    const { x, y } = batch(11, 1);
    const got = await p.trainStep(x, y, 11);
    const want = shardwiseStep(ref.model, x, y, shardSizes(11, 2));
    assert.deepEqual(shardSizes(11, 2), [6, 5]);
    // Same kernels, same summation order: bit-identical, not just close.
    assert.equal(got.loss, want.loss);
    assertIdentical([got.probs], [want.probs], 'training-mode outputs');
    // Adam's first moment after one step is 0.1·g: checks the gradient's size, not just its sign.
    const opt = await p.getOptimizerState();
    // Moments and the running beta powers (saved in checkpoints for exact resume).
    const wantOpt = await adamState(want.adam);
    assert.deepEqual(opt.specs.slice(-2).map((s) => s.name), ['adam/accBeta1', 'adam/accBeta2']);
    assertIdentical(opt.data, wantOpt.data, 'optimizer state');
    const w1 = await p.getWeights();
    assertIdentical(w1, await ref.getWeights(), 'weights and moving stats');
    // The reference is sensitive: one full-batch step (BN over all 11 rows) lands elsewhere.
    const full = local();
    await full.setWeights(w0);
    await full.trainStep(x, y, 11);
    assert.ok(maxDiff(w1, await full.getWeights()) > 1e-5);
    want.adam.dispose();
  });
}

for (const [mainReplica, threads] of [[true, 2], [false, 3]] as const) {
  test(`replicas stay bit-identical over steps of any size, learning-rate changes included (${threads} replicas${mainReplica ? ', one here' : ''})`, { timeout: 60_000 }, async () => {
    const p = await parallel({ mainReplica, threads });
    let tensors = 0;
    for (const [i, n] of [16, 11, 3, 1, 70].entries()) {
      if (i === 2) p.setLearningRate(5e-4);
      const { x, y } = batch(n, i + 10);
      const r = await p.trainStep(x, y, n);
      assert.ok(Number.isFinite(r.loss) && r.probs.length === n);
      if (i === 0) tensors = tf.memory().numTensors; // Adam's slots exist from the first step on
    }
    assert.equal(tf.memory().numTensors, tensors, 'no tensors leak on this thread');
    const states = await p.replicaStates();
    assert.equal(states.length, threads);
    for (const r of states.slice(1)) {
      assertIdentical(r.weights, states[0].weights, 'weights');
      assertIdentical(r.optimizer, states[0].optimizer, 'optimizer state');
    }
  });
}

test('predict (folded, split across replicas) equals LocalTrainer.predict with the same weights', { timeout: 60_000 }, async () => {
  const p = await parallel();
  for (let s = 0; s < 3; s++) { const { x, y } = batch(12, s); await p.trainStep(x, y, 12); }
  const ref = local();
  await ref.setWeights(await p.getWeights());
  for (const n of [1, 37, 130]) { // 130 outgrows the shared buffers
    const { x } = batch(n, 99);
    const got = await p.predict(x, n);
    const want = await ref.predict(x, n);
    assert.equal(got.length, n);
    assert.ok(maxDiff([got], [want]) < 1e-5, `n=${n}: ${maxDiff([got], [want])}`);
  }
  assert.ok(Math.abs((await p.regularizationLoss()) - (await ref.regularizationLoss())) < 1e-7);
});

test('weights and optimizer state round-trip to every replica; a resumed trainer continues to float rounding', { timeout: 60_000 }, async () => {
  const a = await parallel();
  for (let s = 0; s < 2; s++) { const { x, y } = batch(10, s); await a.trainStep(x, y, 10); }
  const weights = await a.getWeights();
  const opt = await a.getOptimizerState();
  assert.equal(opt.specs.length, opt.data.length);
  assert.ok(opt.specs.length > 1);

  const b = await parallel({ mainReplica: true });
  await b.setWeights(weights);
  await b.setOptimizerState(opt.specs, opt.data);
  assertIdentical(await b.getWeights(), weights, 'weights round trip');
  assertIdentical((await b.getOptimizerState()).data, opt.data, 'optimizer round trip');
  for (const r of await b.replicaStates()) { assertIdentical(r.weights, weights, 'replica weights'); assertIdentical(r.optimizer, opt.data, 'replica optimizer'); }

  const { x, y } = batch(10, 7);
  await a.trainStep(x, y, 10);
  await b.trainStep(x, y, 10);
  // Not bit-identical: tfjs' Adam.setWeights recomputes β^t with pow, the running one multiplies.
  const drift = maxDiff(await b.getWeights(), await a.getWeights());
  assert.ok(drift < 1e-6, `resumed step differs by ${drift}`);
  const [r0, r1] = await b.replicaStates();
  assertIdentical(r0.weights, r1.weights, 'resumed replicas');

  // Saved from this thread's replica, it loads with the trained weights.
  const saved = join(dir, 'model');
  await b.saveModel(saved);
  const loaded = await loadModel(saved);
  assertIdentical(await Promise.all(loaded.getWeights().map(async (t) => Float32Array.from(await t.data()))), await b.getWeights(), 'saved model');
  loaded.dispose();
});

test('a worker that fails surfaces as an IdcError, never a hang', { timeout: 60_000 }, async () => {
  const isWorkerError = (re: RegExp) => (e: unknown) => e instanceof IdcError && e.code === 'TRAIN_WORKER' && re.test(e.message) && /engine\.threads/.test(e.hint ?? '');

  const throwsAtStart = join(dir, 'throws-at-start.js');
  writeFileSync(throwsAtStart, "throw new Error('boom at start');\n");
  await assert.rejects(ParallelTrainer.create({ ...OPTS, threads: 2, workerFile: throwsAtStart }), isWorkerError(/Training worker \d crashed: boom at start/));

  await assert.rejects(ParallelTrainer.create({ ...OPTS, threads: 2, workerFile: join(dir, 'missing.worker.js') }), (e) => e instanceof IdcError && e.code === 'TRAIN_WORKER');

  // An error the worker reports keeps its IdcError code and hint.
  await assert.rejects(ParallelTrainer.create({ ...OPTS, threads: 2, workerFile, wasmDir: dir }), (e) => e instanceof IdcError && e.code === 'WASM_MISSING');

  // Crashes mid-step (uncaught throw) and mid-predict (the thread exits).
  const wrap = (name: string, cmd: string, action: string) => {
    const f = join(dir, name);
    writeFileSync(f, `require('node:worker_threads').parentPort.on('message', (m) => { if (m.req && m.req.cmd === '${cmd}') ${action}; });\nrequire(${JSON.stringify(workerFile)});\n`);
    return f;
  };
  const { x, y } = batch(8, 1);
  const stepCrash = await parallel({ mainReplica: true, workerFile: wrap('crash-in-step.js', 'grad', "throw new Error('boom in step')") });
  await assert.rejects(stepCrash.trainStep(x, y, 8), isWorkerError(/Training worker 1 crashed: boom in step/));
  await assert.rejects(stepCrash.predict(x, 8), isWorkerError(/boom in step/), 'stays failed');
  await stepCrash.dispose();

  const exits = await parallel({ workerFile: wrap('exit-in-predict.js', 'predict', 'process.exit(7)') });
  await exits.trainStep(x, y, 8);
  await assert.rejects(exits.predict(x, 8), isWorkerError(/stopped unexpectedly \(exit code 7\)/));
  await exits.dispose();
});

test('thread count: engine.threads 0 = one per core, capped; IDC_THREADS overrides; sources fall back to LocalTrainer', async () => {
  const cores = availableParallelism();
  assert.equal(resolveThreads(0, {}), Math.min(cores, MAX_THREADS));
  assert.equal(resolveThreads(1, {}), 1);
  assert.equal(resolveThreads(64, {}), Math.min(cores, MAX_THREADS));
  assert.equal(resolveThreads(0, { IDC_THREADS: '1' }), 1);
  assert.equal(resolveThreads(1, { IDC_THREADS: 'x' }), 1);
  assert.deepEqual(shardSizes(5, 2), [3, 2]);
  assert.deepEqual(shardSizes(1, 3), [1, 0, 0]);
  // No dist/trainer.worker.js beside the sources: one replica on this thread.
  const c = defaultConfig();
  c.model = { filters: [8], dense: [], dropout: 0, l2: 0 };
  const t = await createTrainer(c, { kind: 'bce', gamma: 0 });
  assert.ok(t instanceof LocalTrainer);
  assert.equal(t.backend, 'wasm');
  await t.dispose();
});

test('on the cpu backend the workers start cpu too, and replicas stay identical', { timeout: 60_000 }, async () => {
  registerCpuBatchNormKernels();
  assert.ok(await tf.setBackend('cpu'));
  try {
    const p = await parallel();
    for (let s = 0; s < 2; s++) { const { x, y } = batch(9, s); await p.trainStep(x, y, 9); }
    const [a, b] = await p.replicaStates();
    assertIdentical(a.weights, b.weights, 'cpu replicas');
    const ref = local();
    await ref.setWeights(await p.getWeights());
    const { x } = batch(9, 5);
    assert.ok(maxDiff([await p.predict(x, 9)], [await ref.predict(x, 9)]) < 1e-5);
    await p.dispose();
  } finally {
    await tf.setBackend('wasm');
  }
});
