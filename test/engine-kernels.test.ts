import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { initWasmBackend, registerWasmTrainingKernels } from '../src/core/engine/wasm-kernels';
import { BN_TRAIN, BN_TRAIN_GRAD, batchNormTrain } from '../src/core/engine/fused-bn';
import { buildModel, FastBatchNormalization, foldForInference } from '../src/core/engine/model';
import { binaryCrossentropy } from '../src/core/engine/train-step';
import * as tfl from '@tensorflow/tfjs-layers';
import { Rng } from '../src/core/rng';

type Arr = { shape: number[]; data: Float32Array | Int32Array | Uint8Array };
type Spec = { shape: number[]; data: Float32Array; dtype?: 'float32' | 'int32' };

const rng = new Rng('engine-kernels');
function rand(shape: number[], scale = 1): Spec {
  const n = shape.reduce((a, d) => a * d, 1);
  return { shape, data: Float32Array.from({ length: n }, () => rng.normal(0, scale)) };
}
const t = (s: Spec) => tf.tensor(s.data, s.shape, s.dtype ?? 'float32');

/** Runs f on a backend with fresh tensors and returns plain arrays. */
async function on(backend: string, f: () => tf.Tensor | tf.Tensor[]): Promise<Arr[]> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const r = f();
    return (Array.isArray(r) ? r : [r]).map((x) => ({ shape: x.shape, data: x.dataSync() as Arr['data'] }));
  });
}

/**
 * Normwise relative error: max|a−b| ≤ tol·max(max|b|, floor). `floor` covers tensors that are zero
 * in exact arithmetic (e.g. the bias of a layer followed by batch norm), where only noise remains.
 */
function assertClose(a: Arr[], b: Arr[], tol: number, label: string, floor = 1e-6): void {
  assert.equal(a.length, b.length, `${label}: output count`);
  a.forEach((ai, k) => {
    const bi = b[k];
    assert.deepEqual(ai.shape, bi.shape, `${label}[${k}] shape`);
    let err = 0, scale = 0;
    for (let i = 0; i < bi.data.length; i++) {
      err = Math.max(err, Math.abs(ai.data[i] - bi.data[i]));
      scale = Math.max(scale, Math.abs(bi.data[i]));
    }
    assert.ok(err <= tol * Math.max(scale, floor), `${label}[${k}]: max err ${err.toExponential(2)} vs scale ${scale.toExponential(2)}`);
  });
}

const maxAbs = (xs: Arr[]) => Math.max(...xs.map((x) => Array.from(x.data).reduce((m, v) => Math.max(m, Math.abs(v)), 0)));

async function compare(label: string, f: () => tf.Tensor | tf.Tensor[], tol = 1e-4): Promise<void> {
  const cpu = await on('cpu', f);
  const wasm = await on('wasm', f);
  assertClose(wasm, cpu, tol, label);
}

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

interface ConvCase { B: number; H: number; W: number; Ci: number; Co: number; k: number; s: number; pad: Pad }

function convCases(): ConvCase[] {
  const cases: ConvCase[] = [
    { B: 1, H: 5, W: 5, Ci: 1, Co: 1, k: 3, s: 1, pad: 'same' },
    { B: 3, H: 8, W: 7, Ci: 3, Co: 4, k: 3, s: 1, pad: 'valid' },
    { B: 2, H: 9, W: 9, Ci: 4, Co: 5, k: 3, s: 2, pad: 'same' },
    { B: 2, H: 9, W: 8, Ci: 2, Co: 3, k: 3, s: 2, pad: 'valid' },
    { B: 1, H: 6, W: 7, Ci: 3, Co: 2, k: 2, s: 2, pad: 'same' },
    { B: 2, H: 7, W: 6, Ci: 2, Co: 3, k: 5, s: 1, pad: 'same' },
    { B: 2, H: 6, W: 6, Ci: 3, Co: 2, k: 1, s: 1, pad: 'valid' },
    { B: 2, H: 7, W: 8, Ci: 2, Co: 3, k: 3, s: 1, pad: [[0, 0], [1, 0], [0, 2], [0, 0]] },
    { B: 1, H: 6, W: 5, Ci: 2, Co: 2, k: 3, s: 2, pad: [[0, 0], [2, 1], [1, 1], [0, 0]] },
    // pad beyond the kernel: dX takes the stock fallback
    { B: 2, H: 4, W: 4, Ci: 2, Co: 3, k: 1, s: 1, pad: [[0, 0], [1, 1], [0, 1], [0, 0]] },
  ];
  for (let i = 0; i < 6; i++) {
    const k = rng.int(1, 3);
    cases.push({
      B: rng.int(1, 3), H: rng.int(k, 9), W: rng.int(k, 9), Ci: rng.int(1, 6), Co: rng.int(1, 6), k,
      s: rng.int(1, 2), pad: rng.next() < 0.5 ? 'same' : 'valid',
    });
  }
  return cases;
}

function outShape(c: ConvCase): number[] {
  return tf.backend_util.computeConv2DInfo([c.B, c.H, c.W, c.Ci], [c.k, c.k, c.Ci, c.Co], [c.s, c.s], 1, c.pad).outShape;
}

describe('wasm training kernels vs cpu', () => {
  before(async () => {
    await initWasmBackend();
    registerWasmTrainingKernels(); // idempotent
  });

  test('Conv2DBackpropFilter', async () => {
    for (const c of convCases()) {
      const x = rand([c.B, c.H, c.W, c.Ci]);
      const dy = rand(outShape(c));
      await compare(`dW ${JSON.stringify(c)}`, () => tf.engine().runKernel('Conv2DBackpropFilter', { x: t(x), dy: t(dy) },
        { strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [c.k, c.k, c.Ci, c.Co] } as never) as tf.Tensor);
    }
  });

  test('Conv2DBackpropInput', async () => {
    for (const c of convCases()) {
      const w = rand([c.k, c.k, c.Ci, c.Co]);
      const dy = rand(outShape(c));
      await compare(`dX ${JSON.stringify(c)}`, () => tf.engine().runKernel('Conv2DBackpropInput', { dy: t(dy), filter: t(w) },
        { strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape: [c.B, c.H, c.W, c.Ci] } as never) as tf.Tensor);
    }
  });

  test('conv2d gradients through tf.grads (layer-sized, batch 1 and 4)', async () => {
    for (const [B, pad] of [[1, 'same'], [4, 'valid']] as const) {
      const x = rand([B, 12, 12, 16]);
      const w = rand([3, 3, 16, 24], 0.2);
      const dy = rand([B, pad === 'same' ? 12 : 10, pad === 'same' ? 12 : 10, 24]);
      await compare(`conv grads ${B} ${pad}`, () => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad))([t(x), t(w)], t(dy)));
    }
  });

  test('MaxPoolGrad (incl. ties after ReLU)', async () => {
    const cases: Array<{ shape: number[]; f: number; s: number; pad: 'same' | 'valid'; relu?: boolean }> = [
      { shape: [2, 6, 6, 3], f: 2, s: 2, pad: 'valid' },
      // SIMD path (2x2/2 unpadded, channels % 4 == 0), even and odd sizes
      { shape: [3, 8, 8, 8], f: 2, s: 2, pad: 'valid', relu: true },
      { shape: [2, 6, 10, 12], f: 2, s: 2, pad: 'same' },
      { shape: [1, 7, 5, 4], f: 2, s: 2, pad: 'valid', relu: true },
      { shape: [2, 7, 7, 2], f: 3, s: 2, pad: 'same' },
      { shape: [3, 5, 6, 3], f: 3, s: 1, pad: 'valid', relu: true },
      { shape: [1, 9, 9, 5], f: 2, s: 1, pad: 'same' },
    ];
    for (const c of cases) {
      const x = rand(c.shape);
      if (c.relu) x.data.forEach((v, i) => { if (v < 0) x.data[i] = 0; });
      const dy = rand(tf.backend_util.computePool2DInfo(c.shape as [number, number, number, number], c.f, c.s, 1, c.pad).outShape);
      await compare(`maxPoolGrad ${JSON.stringify(c)}`, () => {
        const xt = t(x);
        const y = tf.maxPool(xt as tf.Tensor4D, c.f, c.s, c.pad);
        return tf.engine().runKernel('MaxPoolGrad', { dy: t(dy), input: xt, output: y }, { filterSize: c.f, strides: c.s, pad: c.pad, dimRoundingMode: undefined } as never) as tf.Tensor;
      }, 1e-6);
    }
  });

  test('Relu gradient (one-pass kernel, incl. zeros and odd sizes)', async () => {
    for (const shape of [[2, 5, 5, 8], [3, 7], [1, 1]]) {
      const x = rand(shape), dy = rand(shape);
      x.data.forEach((v, i) => { if (i % 5 === 0) x.data[i] = 0; });
      await compare(`relu grad ${shape}`, () => tf.grad((a: tf.Tensor) => tf.relu(a))(t(x), t(dy)), 0);
    }
  });

  test('Tile', async () => {
    const cases: Array<[number[], number[]]> = [
      [[1, 1, 1, 5], [3, 4, 2, 1]], [[3, 1, 1, 4], [1, 5, 6, 1]], [[2, 3], [1, 3]], [[2, 3], [4, 1]],
      [[2, 1, 3], [2, 3, 2]], [[4], [3]], [[1, 2, 1, 2], [2, 1, 3, 2]], [[2, 2], [1, 1]],
    ];
    for (const [shape, reps] of cases) {
      const x = rand(shape);
      await compare(`tile ${shape} x${reps}`, () => tf.tile(t(x), reps), 0);
      const xi: Spec = { shape, data: x.data.map((v) => Math.round(v * 10)), dtype: 'int32' };
      await compare(`tile int32 ${shape} x${reps}`, () => tf.tile(t(xi), reps), 0);
    }
  });

  test('Sum / Mean fast paths and fall-throughs', async () => {
    const cases: Array<[number[], number[], boolean]> = [
      [[4, 6, 5, 3], [0, 1, 2], false], [[4, 6, 5, 3], [1, 2], true], [[4, 6, 5, 3], [0], false],
      [[4, 6, 5, 3], [0, 1], true], [[7, 5], [0], false], [[1, 1, 1, 5], [0, 1, 2], false],
      [[4, 6, 5, 3], [3], false], [[4, 6, 5, 3], [0, 1, 2, 3], false], [[3, 4, 5], [1], true], [[2, 50, 50, 3], [0, 1, 2], false],
    ];
    for (const [shape, axes, keep] of cases) {
      const x = rand(shape);
      await compare(`sum ${shape} ${axes}`, () => tf.sum(t(x), axes, keep));
      await compare(`mean ${shape} ${axes}`, () => tf.mean(t(x), axes, keep));
      const xi: Spec = { shape, data: x.data.map((v) => Math.round(v * 10)), dtype: 'int32' };
      await compare(`sum int32 ${shape} ${axes}`, () => tf.sum(t(xi), axes, keep), 0);
    }
  });

  test('Sum / Mean gradients (no ones() upload) and Identity/Cast sharing', async () => {
    const x = rand([3, 4, 5, 2]);
    for (const axes of [[0, 1, 2], [1, 2], [3], [0, 1, 2, 3]]) {
      await compare(`d mean ${axes}`, () => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.mean(a, axes), tf.mean(a, axes))))(t(x)));
      await compare(`d sum ${axes}`, () => tf.grad((a: tf.Tensor) => tf.sum(tf.square(tf.sum(a, axes))))(t(x)));
    }
    await compare('clone/cast', () => {
      const a = t(x);
      const c = tf.clone(a);
      a.dispose(); // the clone must outlive its source
      return [c, tf.cast(c, 'float32'), tf.cast(c, 'int32')];
    }, 0);
  });

  test('FusedBatchNorm (inference)', async () => {
    for (const shape of [[2, 5, 4, 3], [6, 7]]) {
      const C = shape[shape.length - 1];
      const x = rand(shape), m = rand([C]), o = rand([C]), g = rand([C]);
      const v: Spec = { shape: [C], data: rand([C]).data.map((a) => a * a + 0.1) };
      await compare(`batchNorm ${shape}`, () => tf.batchNorm(t(x), t(m), t(v), t(o), t(g), 1e-3));
      await compare(`batchNorm no scale ${shape}`, () => tf.batchNorm(t(x), t(m), t(v), undefined, undefined, 1e-3));
      await compare(`batchNorm scalar stats ${shape}`, () => tf.batchNorm(t(x), tf.scalar(0.3), tf.scalar(1.7), tf.scalar(-0.2), tf.scalar(1.1), 1e-3));
    }
  });

  test('fused training batch norm: wasm vs cpu, and cpu vs tfjs moments+batchNorm', async () => {
    for (const shape of [[4, 6, 5, 3], [5, 7], [2, 50, 50, 8], [1, 3, 3, 4]]) {
      const C = shape[shape.length - 1];
      const x = rand(shape, 2), g = rand([C]), b = rand([C]), dy = rand(shape);
      x.data.forEach((v, i) => { x.data[i] = v + 1.5; }); // non-zero mean
      const attrs = { epsilon: 1e-3 };
      await compare(`${BN_TRAIN} ${shape}`, () => tf.engine().runKernel(BN_TRAIN, { x: t(x), gamma: t(g), beta: t(b) }, attrs) as tf.Tensor[]);
      const grads = () => {
        const [, , v, xc] = tf.engine().runKernel(BN_TRAIN, { x: t(x), gamma: t(g), beta: t(b) }, attrs) as tf.Tensor[];
        return tf.engine().runKernel(BN_TRAIN_GRAD, { dy: t(dy), xc, gamma: t(g), variance: v }, attrs) as tf.Tensor[];
      };
      await compare(`${BN_TRAIN_GRAD} ${shape}`, grads);
      // Reference: tfjs's own graph, differentiated by tfjs.
      const axes = shape.slice(0, -1).map((_, i) => i);
      const reference = await on('cpu', () => {
        const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
          const { mean, variance } = tf.moments(xx, axes);
          return tf.batchNorm(xx, mean, variance, bb as tf.Tensor1D, gg as tf.Tensor1D, 1e-3);
        };
        return [f(t(x), t(g), t(b)), ...tf.grads(f)([t(x), t(g), t(b)], t(dy))];
      });
      const ours = await on('cpu', () => {
        const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
          const r = batchNormTrain(xx, gg as tf.Tensor1D, bb as tf.Tensor1D, 1e-3);
          r.mean.dispose();
          r.variance.dispose();
          return r.y;
        };
        return [f(t(x), t(g), t(b)), ...tf.grads(f)([t(x), t(g), t(b)], t(dy))];
      });
      assertClose(ours, reference, 1e-4, `batchNormTrain vs tfjs ${shape}`);
    }
  });

  test('FastBatchNormalization layer matches the stock layer (output, grads, moving stats)', async () => {
    for (const C of [5, 8]) {
    const x = rand([6, 4, 4, C], 2);
    const run = (fast: boolean) => () => {
      const layer = fast ? new FastBatchNormalization({ momentum: 0.9 }) : tfl.layers.batchNormalization({ momentum: 0.9 });
      layer.build([null, 4, 4, C]);
      const xt = t(x);
      const f = () => tf.sum(tf.square(layer.apply(xt, { training: true }) as tf.Tensor)) as tf.Scalar;
      const { value, grads } = tf.variableGrads(f, layer.trainableWeights.map((w) => w.read() as tf.Variable));
      const gx = tf.grad((a: tf.Tensor) => tf.sum(tf.square(layer.apply(a, { training: true }) as tf.Tensor)))(xt);
      return [value, ...Object.values(grads), gx, ...layer.getWeights()];
    };
    for (const backend of ['cpu', 'wasm']) {
      const stock = await on(backend, run(false));
      assertClose(await on(backend, run(true)), stock, 1e-4, `fast vs stock BN on ${backend}, C=${C}`, maxAbs(stock.slice(1, 4)));
    }
    }
  });
});

describe('inference folding', () => {
  before(async () => { await initWasmBackend(); });

  test('folded model predicts like the original (after BN stats moved)', async () => {
    const x = { shape: [4, 50, 50, 3], data: Float32Array.from({ length: 4 * 7500 }, () => rng.next()) };
    for (const backend of ['wasm', 'cpu']) {
      const [a, b] = await on(backend, () => {
        const model = buildModel({ filters: [8, 12], dense: [16], seed: 5 });
        // Give BN non-trivial moving statistics and affine params.
        model.setWeights(model.getWeights().map((w, i) => tf.add(w, tf.mul(tf.randomUniform(w.shape, 0.1, 0.5, 'float32', i), 1))));
        const folded = foldForInference(model);
        assert.equal(folded.layers.filter((l) => l.getClassName() === 'BatchNormalization').length, 0);
        return [model.predict(t(x)) as tf.Tensor, folded.predict(t(x)) as tf.Tensor];
      });
      assertClose([a], [b], 1e-4, `folded on ${backend}`);
    }
  });
});

describe('whole-model gradients: wasm vs cpu', () => {
  before(async () => { await initWasmBackend(); });

  test('same weights and batch → same loss and variable gradients', async () => {
    // The project architecture at reduced widths: the cpu backend needs seconds per image at full size.
    // Dropout off: its masks are random per call (as they must be), which would differ between backends.
    const opts = { filters: [8, 16, 16], dense: [16, 16], dropout: 0, l2: 0.01, seed: 11 };
    const B = 3;
    const x = { shape: [B, 50, 50, 3], data: Float32Array.from({ length: B * 7500 }, () => rng.next()) };
    const y = { shape: [B, 1], data: Float32Array.from([1, 0, 1]) };
    let weights: Arr[] = [];
    const grads = async (backend: string) => on(backend, () => {
      const model = buildModel(opts);
      if (weights.length) model.setWeights(weights.map((w) => tf.tensor(w.data, w.shape)));
      else weights = model.getWeights().map((w) => ({ shape: w.shape, data: w.dataSync() as Float32Array }));
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const f = () => {
        let loss = binaryCrossentropy(t(y), model.apply(t(x), { training: true }) as tf.Tensor);
        for (const r of model.calculateLosses()) loss = tf.add(loss, r);
        return loss as tf.Scalar;
      };
      const { value, grads: g } = tf.variableGrads(f, vars);
      const out = [value, ...vars.map((v) => g[v.name])];
      model.dispose();
      return out;
    });
    const cpu = await grads('cpu');
    const wasm = await grads('wasm');
    assertClose(wasm, cpu, 2e-4, 'model grads', maxAbs(cpu.slice(1)));
    assert.ok(cpu.slice(1).every((g) => g.data.some((v) => v !== 0)), 'every variable gets a gradient');
  });
});

test('dropout draws a new mask at every training step (a seeded layer would repeat one)', async () => {
  await initWasmBackend();
  const model = buildModel({ filters: [8], dense: [16], dropout: 0.5, seed: 3 });
  const x = tf.randomUniform([2, 50, 50, 3], 0, 1, 'float32', 1);
  const a = (model.apply(x, { training: true }) as tf.Tensor).dataSync();
  const b = (model.apply(x, { training: true }) as tf.Tensor).dataSync();
  assert.notDeepEqual(Array.from(a), Array.from(b));
  const c = (model.apply(x, { training: false }) as tf.Tensor).dataSync();
  const d = (model.apply(x, { training: false }) as tf.Tensor).dataSync();
  assert.deepEqual(Array.from(c), Array.from(d), 'inference is deterministic');
});
