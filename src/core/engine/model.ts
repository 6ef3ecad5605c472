import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { IdcError } from '../errors';
import { batchNormTrain, hasFusedBatchNorm } from './fused-bn';

export interface ModelOptions {
  /** Conv block widths; the first block pads 'same', later ones 'valid' (matches the PyTorch reference). */
  filters?: number[];
  /** Hidden dense widths, each followed by BN → ReLU → Dropout. */
  dense?: number[];
  dropout?: number;
  /** L2 factor on the hidden dense kernels (Keras semantics: loss += l2 · Σw²). */
  l2?: number;
  /**
   * Momentum of the batch-norm moving mean/variance (Keras: 0.99). Lower values follow a fast-
   * changing network more closely in short runs; it does not change the training steps themselves.
   */
  bnMomentum?: number;
  /** Seed for the initializers and the per-step dropout masks, so cpu/wasm comparisons and reruns start identical. */
  seed?: number;
}

export const DEFAULT_MODEL: Required<Omit<ModelOptions, 'seed'>> = {
  filters: [32, 64, 128],
  dense: [64, 64, 64],
  dropout: 0.5,
  l2: 0.01,
  bnMomentum: 0.9,
};

export const INPUT_SHAPE: [number, number, number] = [50, 50, 3];

/** Builds the default IDC classifier (not compiled): 50x50x3 → sigmoid probability of IDC(+). */
export function buildModel(opts: ModelOptions = {}): tfl.LayersModel {
  const filters = opts.filters ?? DEFAULT_MODEL.filters;
  const dense = opts.dense ?? DEFAULT_MODEL.dense;
  const dropout = opts.dropout ?? DEFAULT_MODEL.dropout;
  const l2 = opts.l2 ?? DEFAULT_MODEL.l2;
  const momentum = opts.bnMomentum ?? DEFAULT_MODEL.bnMomentum;
  if (filters.length === 0) throw new IdcError('The model needs at least one conv block.', 'Set model.filters to e.g. [32, 64, 128].', 'BAD_MODEL');
  if (![...filters, ...dense].every((n) => Number.isInteger(n) && n > 0)) {
    throw new IdcError('Layer widths must be positive integers.', 'Fix model.filters / model.dense.', 'BAD_MODEL');
  }
  if (!(dropout >= 0 && dropout < 1)) throw new IdcError(`Dropout ${dropout} is outside [0, 1).`, 'Use e.g. 0.5.', 'BAD_MODEL');
  if (!(momentum >= 0 && momentum < 1)) throw new IdcError(`Batch-norm momentum ${momentum} is outside [0, 1).`, 'Use e.g. 0.99 (Keras) or 0.9.', 'BAD_MODEL');
  // Valid 3x3 convs + 2x2 pools shrink 50 → 25 → 11 → 4; refuse stacks that would reach zero.
  let side = INPUT_SHAPE[0];
  filters.forEach((_, i) => { side = Math.floor((i === 0 ? side : side - 2) / 2); });
  if (side < 1) throw new IdcError(`${filters.length} conv blocks shrink a 50x50 patch to nothing.`, 'Use at most 4 conv blocks.', 'BAD_MODEL');

  let seed = opts.seed;
  let dropoutLayer = 0;
  const init = () => tfl.initializers.glorotUniform({ seed: seed === undefined ? undefined : seed++ });
  const bn = () => new FastBatchNormalization({ axis: -1, momentum, epsilon: 1e-3 });

  const input = tfl.input({ shape: INPUT_SHAPE, name: 'patch' });
  let x: tfl.SymbolicTensor = input;
  filters.forEach((f, i) => {
    x = new UnfusedConv2D({
      filters: f, kernelSize: 3, padding: i === 0 ? 'same' : 'valid', useBias: false, kernelInitializer: init(),
    }).apply(x) as tfl.SymbolicTensor;
    x = bn().apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2 }).apply(x) as tfl.SymbolicTensor;
  });
  x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  for (const units of dense) {
    x = tfl.layers.dense({
      units, kernelInitializer: init(), kernelRegularizer: l2 > 0 ? tfl.regularizers.l2({ l2 }) : undefined,
    }).apply(x) as tfl.SymbolicTensor;
    x = bn().apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
    // tfjs' own seeded Dropout would draw the same mask at every step, freezing one sub-network:
    // StepDropout draws a fresh, reproducible mask per step from (seed, layer, stream, step).
    if (dropout > 0) {
      x = (opts.seed === undefined ? tfl.layers.dropout({ rate: dropout }) : new StepDropout({ rate: dropout }, opts.seed, dropoutLayer++))
        .apply(x) as tfl.SymbolicTensor;
    }
  }
  const out = tfl.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: init() }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out, name: 'idc_cnn' });
}

// ---------------------------------------------------------------- training-speed subclasses
// Both keep the stock class name and weights, so saved models load as plain Conv2D/BatchNormalization.

type LayerArgs<F extends (a: never) => unknown> = Parameters<F>[0];
type Kwargs = Parameters<tfl.layers.Layer['call']>[1];
const one = (inputs: tf.Tensor | tf.Tensor[]) => (Array.isArray(inputs) ? inputs[0] : inputs);

const Conv2DBase = tfl.layers.conv2d({ filters: 1, kernelSize: 1 }).constructor as new (args: LayerArgs<typeof tfl.layers.conv2d>) => tfl.layers.Layer;
const DropoutBase = tfl.layers.dropout({ rate: 0.5 }).constructor as new (args: LayerArgs<typeof tfl.layers.dropout>) => tfl.layers.Layer;
const BatchNormBase = tfl.layers.batchNormalization({}).constructor as new (args: LayerArgs<typeof tfl.layers.batchNormalization>) => tfl.layers.Layer;

interface ConvFields { kernel: { read(): tf.Tensor4D }; bias: unknown; activation: { getClassName(): string }; strides: [number, number]; padding: 'same' | 'valid'; dataFormat: string; dilationRate: [number, number]; rank: number }
interface BnFields {
  gamma?: { read(): tf.Tensor1D }; beta?: { read(): tf.Tensor1D }; axis: number; epsilon: number; momentum: number;
  movingMean: { read(): tf.Tensor; write(t: tf.Tensor): void }; movingVariance: { read(): tf.Tensor; write(t: tf.Tensor): void };
}

/**
 * Bias-free linear Conv2D through tf.conv2d: tfjs's fused conv records a customGrad that computes
 * the input gradient eagerly, wasted on the first layer (its input is data).
 */
export class UnfusedConv2D extends Conv2DBase {
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    const f = this as unknown as ConvFields;
    if (f.bias || f.rank !== 2 || f.dataFormat !== 'channelsLast' || f.activation.getClassName() !== 'linear') return super.call(inputs, kwargs);
    return tf.tidy(() => tf.conv2d(one(inputs) as tf.Tensor4D, f.kernel.read(), f.strides, f.padding, 'NHWC', f.dilationRate));
  }
}

/** 32-bit mix of integers (murmur3's finaliser over a running hash): a seed per (seed, layer, stream, step). */
function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/**
 * Dropout whose training-mode mask is seeded per step: seed(model seed, layer, stream, step), so
 * a run is reproducible and every step still draws a new mask. `step` counts training calls unless
 * the trainer sets it (the global step, so a resumed run draws the masks an uninterrupted one would);
 * `stream` tells data-parallel replicas apart. Class name, config and inference are stock Dropout's.
 */
export class StepDropout extends DropoutBase {
  step = 0;
  stream = 0;
  constructor(args: LayerArgs<typeof tfl.layers.dropout>, private readonly baseSeed: number, private readonly index: number) {
    super(args);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    const rate = (this as unknown as { rate: number }).rate;
    if (!kwargs?.['training'] || !(rate > 0 && rate < 1)) return super.call(inputs, kwargs);
    const seed = mixSeed(this.baseSeed, this.index, this.stream, this.step++);
    return tf.tidy(() => tf.dropout(one(inputs), rate, undefined, seed));
  }
}

/** Sets where the per-step dropout masks of a model built with a seed continue (no-op without StepDropout layers). */
export function setDropoutStep(model: tfl.LayersModel, step: number, stream?: number): void {
  for (const l of model.layers) {
    if (l instanceof StepDropout) { l.step = step; if (stream !== undefined) l.stream = stream; }
  }
}

/** BatchNormalization whose training pass is one fused kernel pair where the backend has it (cpu, wasm). */
export class FastBatchNormalization extends BatchNormBase {
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    const f = this as unknown as BnFields;
    const x = one(inputs);
    const lastAxis = f.axis === -1 || f.axis === x.rank - 1;
    if (!kwargs?.['training'] || !f.gamma || !f.beta || !lastAxis || x.dtype !== 'float32' || !hasFusedBatchNorm()) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const { y, mean, variance } = batchNormTrain(x, f.gamma!.read(), f.beta!.read(), f.epsilon);
      // Keras moving averages: v ← v − (v − batch)·(1 − momentum).
      for (const [v, batch] of [[f.movingMean, mean], [f.movingVariance, variance]] as const) {
        tf.tidy(() => { const old = v.read(); v.write(tf.sub(old, tf.mul(tf.sub(old, batch), 1 - f.momentum))); });
        batch.dispose();
      }
      return y;
    });
  }
}

/**
 * Runs `f` with every batch-norm layer's momentum set to 1 − 1/count and dropout off: a
 * training-mode pass then moves the moving statistics 1/count of the way to the batch's, so
 * passes with count 1, 2, …, K leave them at the mean of those K batches' statistics ("precise
 * BN"; count 1 replaces them). Dropout stays off because inference, which uses these statistics,
 * has none: with it, the batch norms after a dropout layer would see a larger variance than they
 * get at inference.
 */
export function withBatchNormAveraging<T>(model: tfl.LayersModel, count: number, f: () => T): T {
  if (!(Number.isInteger(count) && count >= 1)) throw new RangeError(`count must be a whole number >= 1 (got ${count}).`);
  const bns = model.layers.filter((l) => l.getClassName() === 'BatchNormalization') as unknown as BnFields[];
  const drops = model.layers.filter((l) => l.getClassName() === 'Dropout') as unknown as Array<{ rate: number }>;
  const kept = { momentum: bns.map((b) => b.momentum), rate: drops.map((d) => d.rate) };
  for (const b of bns) b.momentum = 1 - 1 / count;
  for (const d of drops) d.rate = 0;
  try {
    return f();
  } finally {
    bns.forEach((b, i) => { b.momentum = kept.momentum[i]; });
    drops.forEach((d, i) => { d.rate = kept.rate[i]; });
  }
}

/**
 * Inference copy of a trained model with each BatchNormalization folded into the preceding Conv2D/
 * Dense (scaled kernel + bias) and a following ReLU fused into it; Dropout is dropped. Weights are
 * copied, so rebuild it after further training.
 */
export function foldForInference(model: tfl.LayersModel): tfl.LayersModel {
  const layers = model.layers;
  const input = tfl.input({ shape: model.inputs[0].shape.slice(1) as number[] });
  let x: tfl.SymbolicTensor = input;
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i];
    const cls = layer.getClassName();
    if (cls === 'InputLayer' || cls === 'Dropout') continue;
    const next = layers[i + 1];
    if ((cls === 'Conv2D' || cls === 'Dense') && next?.getClassName() === 'BatchNormalization') {
      const relu = layers[i + 2]?.getClassName() === 'ReLU';
      const cfg = layer.getConfig() as Record<string, unknown>;
      const bnCfg = next.getConfig() as { epsilon: number; center: boolean; scale: boolean };
      const [kernel, bias] = layer.getWeights();
      const bnW = next.getWeights();
      const gamma = bnCfg.scale ? bnW.shift()! : null;
      const beta = bnCfg.center ? bnW.shift()! : null;
      const [movingMean, movingVar] = bnW;
      const weights = tf.tidy(() => {
        let k = tf.rsqrt(tf.add(movingVar, bnCfg.epsilon));
        if (gamma) k = tf.mul(k, gamma);
        const b0 = cfg['useBias'] && bias ? bias : tf.zerosLike(movingMean);
        let b = tf.mul(tf.sub(b0, movingMean), k);
        if (beta) b = tf.add(b, beta);
        return [tf.mul(kernel, k), b];
      });
      const common = { name: `${layer.name}_folded`, useBias: true, activation: relu ? 'relu' : 'linear', weights } as const;
      const folded = cls === 'Conv2D'
        ? tfl.layers.conv2d({
          ...common, filters: cfg['filters'] as number, kernelSize: cfg['kernelSize'] as number[], strides: cfg['strides'] as number[],
          padding: cfg['padding'] as 'same' | 'valid', dilationRate: cfg['dilationRate'] as [number, number],
        })
        : tfl.layers.dense({ ...common, units: cfg['units'] as number });
      x = folded.apply(x) as tfl.SymbolicTensor;
      // The layer's variables now hold their own reference to this data.
      tf.dispose(weights);
      i += relu ? 2 : 1;
      continue;
    }
    if (cls === 'Dense') {
      const cfg = layer.getConfig() as { units: number; activation: string; useBias: boolean };
      const weights = layer.getWeights().map((w) => w.clone());
      x = tfl.layers.dense({ name: `${layer.name}_copy`, units: cfg.units, activation: cfg.activation as 'sigmoid', useBias: cfg.useBias, weights })
        .apply(x) as tfl.SymbolicTensor;
      tf.dispose(weights);
    } else if (layer.getWeights().length === 0) {
      x = layer.apply(x) as tfl.SymbolicTensor; // weightless (ReLU, pooling): safe to share
    } else {
      throw new IdcError(`Cannot fold a ${cls} layer for inference.`, 'Use the model as it is.', 'BAD_MODEL');
    }
  }
  return tfl.model({ inputs: input, outputs: x, name: `${model.name}_inference` });
}

/** Adam with Keras defaults (β 0.9/0.999, ε 1e-7), as in the reference recipe. */
export function makeOptimizer(lr = 1e-3): tf.Optimizer {
  return tf.train.adam(lr, 0.9, 0.999, 1e-7);
}
