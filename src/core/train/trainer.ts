import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { buildModel, setDropoutStep, withBatchNormAveraging, type ModelOptions } from '../engine/model';
import { architectureHash, type TensorSpec } from './checkpoint';
import { batchLoss, type LossOptions } from './losses';
import { saveModel } from './model-io';
import type { CacheReader } from '../cache';
import type { SplitName } from '../split';

/**
 * What the training loop needs from a model replica. The loop owns data, metrics, callbacks and
 * checkpoints; a Trainer owns tensors. LocalTrainer runs on this thread's tfjs backend; a
 * data-parallel trainer can spread each step over worker threads behind the same interface.
 */
export interface Trainer {
  readonly weightSpecs: TensorSpec[];
  /** Hash of weight names and shapes, stable across processes. */
  readonly architecture: string;
  /**
   * One optimiser step on n patches (x: n×50×50×3 floats in [0, 1]); returns the batch loss and the
   * training-mode outputs. `step` (the run's global step) seeds the dropout masks; omitted, they
   * continue from the previous step.
   */
  trainStep(x: Float32Array, y: Uint8Array, n: number, step?: number): Promise<{ loss: number; probs: Float32Array }>;
  /**
   * "Precise BN": a training-mode pass on n (augmented) patches, dropout off as at inference, that
   * changes nothing but the batch-norm moving statistics, which take the batch's statistics with
   * weight 1/count: after passes with count 1, 2, …, K they are the mean over those K batches.
   */
  accumulateBatchNorm(x: Float32Array, n: number, count: number): Promise<void>;
  /** Inference-mode probabilities. */
  predict(x: Float32Array, n: number): Promise<Float32Array>;
  /** Sum of the layers' regularisation losses (Keras adds it to val_loss too). */
  regularizationLoss(): Promise<number>;
  getWeights(): Promise<Float32Array[]>;
  setWeights(w: readonly Float32Array[]): Promise<void>;
  getOptimizerState(): Promise<{ specs: TensorSpec[]; data: Float32Array[] }>;
  setOptimizerState(specs: readonly TensorSpec[], data: readonly Float32Array[]): Promise<void>;
  setLearningRate(lr: number): void;
  saveModel(dir: string): Promise<void>;
  dispose(): Promise<void> | void;
}

/** One training batch named by its cache rows, with augmentation drawn here and applied by the trainer. */
export interface RowBatch {
  split: SplitName;
  indices: Uint32Array;
  y: Uint8Array;
  /** drawAugmentation's AUGMENT_PARAMS per patch. */
  augment: Float64Array;
  /** Flips or rotation on; stain jitter on. Both off: the rows as they are, / 255. */
  geometry: boolean;
  stain: boolean;
}

/**
 * A trainer that reads the patch cache itself (the torch engine: memory-mapped, augmenting on its
 * device): the loop sends row numbers and augmentation draws instead of float pixels.
 */
export interface CacheRowTrainer {
  /** Opens these splits where the trainer runs: where it holds them, or why it cannot (it then gets pixels). */
  openRows(readers: readonly CacheReader[]): Promise<{ ok: true; where: string } | { ok: false; reason: string }>;
  trainRows(b: RowBatch, step?: number): Promise<{ loss: number; probs: Float32Array }>;
  /** Trainer.accumulateBatchNorm on cache rows (their labels are not used). */
  accumulateBatchNormRows(b: RowBatch, count: number): Promise<void>;
  predictRows(split: SplitName, indices: Uint32Array): Promise<Float32Array>;
}

export function readsCacheRows<T extends Trainer>(t: T): t is T & CacheRowTrainer {
  return typeof (t as Partial<CacheRowTrainer>).openRows === 'function';
}

export interface TrainerOptions { model: ModelOptions; learningRate: number; loss: LossOptions }

/** Names without tfjs' per-process layer counters, so a rebuilt model matches its checkpoint. */
export function weightSpecsOf(model: tfl.LayersModel): TensorSpec[] {
  const owner = new Map(model.layers.flatMap((l) => l.weights.map((w) => [w.originalName, l.getClassName()] as const)));
  return model.weights.map((w) => ({ name: `${owner.get(w.originalName)}/${w.originalName.split('/').pop()}`, shape: [...(w.shape as number[])] }));
}

/** Copies tensors to host memory without dataSync (unavailable on WebGPU under Node). */
export async function readAll(tensors: readonly tf.Tensor[]): Promise<Float32Array[]> {
  return Promise.all(tensors.map(async (t) => Float32Array.from(await t.data())));
}

/** tfjs keeps β1^t and β2^t as running products; its setWeights recomputes them with pow, which rounds differently. */
interface AdamPowers { accBeta1: tf.Variable; accBeta2: tf.Variable }
const POWERS = ['adam/accBeta1', 'adam/accBeta2'] as const;

/**
 * Adam's slots, iteration count and running β powers as named host arrays, for checkpoints and
 * replicas. The powers are saved as they are, so a resumed run continues bit for bit.
 */
export async function adamState(optimizer: tf.AdamOptimizer): Promise<{ specs: TensorSpec[]; data: Float32Array[] }> {
  const { accBeta1, accBeta2 } = optimizer as unknown as AdamPowers;
  const named = [...await optimizer.getWeights(), { name: POWERS[0], tensor: accBeta1 }, { name: POWERS[1], tensor: accBeta2 }];
  return { specs: named.map((w) => ({ name: w.name, shape: [...w.tensor.shape] })), data: await readAll(named.map((w) => w.tensor)) };
}

/** Adam's slots are created on the first step; setWeights creates them from the saved values. */
export async function restoreAdamState(optimizer: tf.AdamOptimizer, specs: readonly TensorSpec[], data: readonly Float32Array[]): Promise<void> {
  const slots = specs.map((s, i) => ({ s, a: data[i] })).filter(({ s }) => !(POWERS as readonly string[]).includes(s.name));
  if (slots.length) await optimizer.setWeights(slots.map(({ s, a }) => ({ name: s.name, tensor: tf.tensor(a, s.shape) })));
  // Checkpoints written before the powers were saved keep setWeights' pow().
  const powers = optimizer as unknown as AdamPowers;
  POWERS.forEach((name, k) => {
    const i = specs.findIndex((s) => s.name === name);
    if (i >= 0) tf.tidy(() => (k === 0 ? powers.accBeta1 : powers.accBeta2).assign(tf.scalar(data[i][0])));
  });
}

/** tfjs reads learningRate at every step but does not expose a setter. */
export function setAdamLearningRate(optimizer: tf.AdamOptimizer, lr: number): void {
  (optimizer as unknown as { learningRate: number }).learningRate = lr;
}

export class LocalTrainer implements Trainer {
  readonly model: tfl.LayersModel;
  readonly weightSpecs: TensorSpec[];
  readonly architecture: string;
  private readonly optimizer: tf.AdamOptimizer;
  private readonly vars: tf.Variable[];

  constructor(private readonly opts: TrainerOptions) {
    this.model = buildModel(opts.model);
    this.vars = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    this.weightSpecs = weightSpecsOf(this.model);
    this.architecture = architectureHash(this.weightSpecs);
    // Keras' Adam epsilon (1e-7), not tfjs' default.
    this.optimizer = tf.train.adam(opts.learningRate, 0.9, 0.999, 1e-7);
  }

  async trainStep(xData: Float32Array, yData: Uint8Array, n: number, step?: number): Promise<{ loss: number; probs: Float32Array }> {
    if (step !== undefined) setDropoutStep(this.model, step);
    const { lossT, probsT } = tf.tidy(() => {
      const x = tf.tensor4d(xData.subarray(0, n * 7500), [n, 50, 50, 3]);
      const y = tf.tensor2d(Float32Array.from(yData.subarray(0, n)), [n, 1]);
      let kept: tf.Tensor | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const p = this.model.apply(x, { training: true }) as tf.Tensor;
        kept = tf.keep(p);
        let total = batchLoss(y, p, this.opts.loss);
        for (const reg of this.model.calculateLosses()) total = tf.add(total, reg) as tf.Scalar;
        return total;
      }, this.vars);
      this.optimizer.applyGradients(grads as unknown as Parameters<tf.AdamOptimizer["applyGradients"]>[0]);
      return { lossT: value, probsT: kept! };
    });
    // Async reads: WebGPU under Node has no dataSync, and GPUs overlap the copy.
    const [loss, probs] = await Promise.all([lossT.data(), probsT.data()]);
    tf.dispose([lossT, probsT]);
    return { loss: loss[0], probs: probs as Float32Array };
  }

  async accumulateBatchNorm(xData: Float32Array, n: number, count: number): Promise<void> {
    withBatchNormAveraging(this.model, count, () => tf.tidy(() => {
      this.model.apply(tf.tensor4d(xData.subarray(0, n * 7500), [n, 50, 50, 3]), { training: true });
    }));
  }

  async predict(xData: Float32Array, n: number): Promise<Float32Array> {
    const p = tf.tidy(() => tf.reshape(this.model.apply(tf.tensor4d(xData.subarray(0, n * 7500), [n, 50, 50, 3]), { training: false }) as tf.Tensor, [n]));
    const out = (await p.data()) as Float32Array;
    p.dispose();
    return out;
  }

  async regularizationLoss(): Promise<number> {
    let reg = 0;
    for (const t of this.model.calculateLosses()) { reg += (await t.data())[0]; t.dispose(); }
    return reg;
  }

  getWeights(): Promise<Float32Array[]> {
    return readAll(this.model.getWeights());
  }

  async setWeights(w: readonly Float32Array[]): Promise<void> {
    const tensors = w.map((a, i) => tf.tensor(a, this.weightSpecs[i].shape));
    this.model.setWeights(tensors);
    tf.dispose(tensors);
  }

  getOptimizerState(): Promise<{ specs: TensorSpec[]; data: Float32Array[] }> {
    return adamState(this.optimizer);
  }

  setOptimizerState(specs: readonly TensorSpec[], data: readonly Float32Array[]): Promise<void> {
    return restoreAdamState(this.optimizer, specs, data);
  }

  setLearningRate(lr: number): void {
    setAdamLearningRate(this.optimizer, lr);
  }

  saveModel(dir: string): Promise<void> {
    return saveModel(this.model, dir);
  }

  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
  }
}
