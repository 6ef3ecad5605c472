// WebGPU (Dawn) against wasm on the default model: same weights, same batch, a few Adam steps.
// Runs on any adapter, software ones included (CI: scripts/install-lavapipe.sh provides lavapipe);
// skips with the reason when the optional packages or a Vulkan driver are missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend, probeBackend, releaseWebGpu } from '../src/core/engine/backends';
import { buildModel, makeOptimizer } from '../src/core/engine/model';
import { makeTrainStep } from '../src/core/engine/train-step';
import { Rng } from '../src/core/rng';

// Mesa's Vulkan drivers want a runtime dir; CI containers often have none.
process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'idc-xdg-'));

const BATCH = 4;
const STEPS = 3;
const SEED = 1234;

type Weights = Array<{ shape: number[]; data: Float32Array }>;

function batch(): { x: Float32Array; y: Float32Array } {
  const rng = new Rng('webgpu-batch');
  const x = Float32Array.from({ length: BATCH * 50 * 50 * 3 }, () => rng.next());
  const y = Float32Array.from({ length: BATCH }, (_, i) => i % 2);
  return { x, y };
}

/** Trains STEPS steps on the current backend; `read` because webgpu has no dataSync in Node. */
async function train(init: Weights | null): Promise<{ losses: number[]; weights: Weights }> {
  // Dropout off: its masks are random per step (as they must be) and would differ between backends.
  const model = buildModel({ seed: SEED, dropout: 0 });
  if (init) model.setWeights(init.map((w) => tf.tensor(w.data, w.shape)));
  const weights: Weights = [];
  for (const w of model.getWeights()) weights.push({ shape: w.shape, data: (await w.data()) as Float32Array });
  const { x, y } = batch();
  const xt = tf.tensor4d(x, [BATCH, 50, 50, 3]);
  const yt = tf.tensor2d(y, [BATCH, 1]);
  const optimizer = makeOptimizer(1e-3);
  const step = makeTrainStep(model, optimizer);
  const losses: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const loss = step(xt, yt);
    losses.push((await loss.data())[0]);
    loss.dispose();
  }
  tf.dispose([xt, yt]);
  optimizer.dispose();
  model.dispose();
  return { losses, weights };
}

test('webgpu training matches wasm on the default model', { timeout: 120_000 }, async (t) => {
  const probe = await probeBackend('webgpu', { allowSoftwareAdapter: true });
  if (!probe.available && !probe.softwareAdapter) {
    // CI installs lavapipe (.ci/run) and sets this, so a broken setup fails there instead of skipping.
    if (process.env.IDC_REQUIRE_WEBGPU === '1') assert.fail(`WebGPU required but unavailable: ${probe.reason}`);
    t.skip(`WebGPU unavailable: ${probe.reason}${probe.fix ? ` (${probe.fix})` : ''}`);
    return;
  }
  t.diagnostic(`adapter: ${probe.adapter}${probe.softwareAdapter ? ' (software)' : ''}`);

  await initBackend('wasm');
  const ref = await train(null);

  const started = await initBackend('webgpu', { allowSoftwareAdapter: true });
  try {
    assert.equal(tf.getBackend(), 'webgpu');
    t.diagnostic(started.summary);
    const t0 = performance.now();
    const gpu = await train(ref.weights);
    t.diagnostic(`webgpu: ${((BATCH * STEPS) / ((performance.now() - t0) / 1000)).toFixed(1)} img/s incl. shader compilation`);
    t.diagnostic(`losses wasm ${ref.losses.map((l) => l.toFixed(6)).join(' ')} | webgpu ${gpu.losses.map((l) => l.toFixed(6)).join(' ')}`);
    ref.losses.forEach((l, i) => {
      assert.ok(Number.isFinite(gpu.losses[i]), `step ${i}: webgpu loss ${gpu.losses[i]}`);
      assert.ok(Math.abs(gpu.losses[i] - l) <= 1e-3 * Math.max(1, Math.abs(l)), `step ${i}: webgpu ${gpu.losses[i]} vs wasm ${l}`);
    });
    // Training moved the loss, so the comparison covers the backward pass too.
    assert.notEqual(ref.losses[0], ref.losses[STEPS - 1]);
  } finally {
    await tf.setBackend('wasm');
    releaseWebGpu();
  }
});
