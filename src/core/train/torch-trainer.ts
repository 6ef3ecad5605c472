import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { IdcError } from '../errors';
import { buildModel } from '../engine/model';
import { TorchProcess, defaultPython, probeTorch, type TorchInfo } from '../engine/torch-engine';
import { architectureHash, type TensorSpec } from './checkpoint';
import { readAll, weightSpecsOf, type Trainer, type TrainerOptions } from './trainer';
import { saveModel } from './model-io';

export { probeTorch } from '../engine/torch-engine';

export interface TorchTrainerOptions extends TrainerOptions {
  /** Interpreter with torch; default python3 on PATH. */
  python?: string;
  /** torch.set_num_threads; 0 or undefined leaves torch's default. */
  threads?: number;
  /** cuda, mps or cpu; default the first of those torch has. */
  device?: string;
}

const size = (s: TensorSpec) => s.shape.reduce((a, b) => a * b, 1);

/** Cuts a concatenated payload into one array per spec (copies, so each owns its buffer). */
function split(data: Float32Array, specs: readonly TensorSpec[]): Float32Array[] {
  let at = 0;
  return specs.map((s) => data.slice(at, (at += size(s))));
}

/**
 * A model replica in a PyTorch engine process. The TF.js model built here (same seed, so the same
 * initial weights as the wasm trainer) gives the weight order and shapes the checkpoints use, the
 * starting weights, and the saved model.json: torch weights cross over in TF.js layout.
 */
export class TorchTrainer implements Trainer {
  readonly weightSpecs: TensorSpec[];
  readonly architecture: string;

  private constructor(private readonly engine: TorchProcess, private readonly model: tfl.LayersModel, readonly info: TorchInfo & { threads: number }) {
    this.weightSpecs = weightSpecsOf(model);
    this.architecture = architectureHash(this.weightSpecs);
  }

  static async create(opts: TorchTrainerOptions): Promise<TorchTrainer> {
    const python = opts.python || defaultPython();
    const model = buildModel(opts.model);
    const engine = new TorchProcess(python);
    try {
      const m = opts.model;
      const { header } = await engine.request({
        op: 'init', specs: weightSpecsOf(model), lr: opts.learningRate, threads: opts.threads ?? 0, device: opts.device,
        model: { filters: m.filters ?? [32, 64, 128], dense: m.dense ?? [64, 64, 64], dropout: m.dropout ?? 0.5, l2: m.l2 ?? 0.01, bnMomentum: m.bnMomentum ?? 0.99, seed: m.seed ?? 0 },
        loss: { kind: opts.loss.kind, gamma: opts.loss.gamma, classWeights: opts.loss.classWeights ?? null },
      });
      const trainer = new TorchTrainer(engine, model, header as unknown as TorchInfo & { threads: number });
      await trainer.setWeights(await readAll(model.getWeights()));
      return trainer;
    } catch (e) {
      model.dispose();
      await engine.close();
      // A Python without torch dies at import: say what to install rather than show the traceback.
      const p = await probeTorch(python);
      if (!p.available) {
        throw new IdcError(`The torch engine cannot start: ${p.reason}.`, `Install it: ${p.fix}. Or set engine.backend to "auto".`, 'BACKEND_UNAVAILABLE');
      }
      throw e;
    }
  }

  /** "torch (PyTorch 2.6.0, cpu, 2 threads)" for run records and the start line. */
  describe(): string {
    const i = this.info;
    return `torch (PyTorch ${i.torch}, ${i.device}${i.device === 'cpu' ? `, ${i.threads} thread${i.threads === 1 ? '' : 's'}` : ''})`;
  }

  get pid(): number | undefined {
    return this.engine.pid;
  }

  async trainStep(x: Float32Array, y: Uint8Array, n: number, step?: number): Promise<{ loss: number; probs: Float32Array }> {
    const r = await this.engine.request({ op: 'train', n, step }, [x.subarray(0, n * 7500), Float32Array.from(y.subarray(0, n))]);
    return { loss: r.header['loss'] as number, probs: r.data };
  }

  async predict(x: Float32Array, n: number): Promise<Float32Array> {
    return (await this.engine.request({ op: 'predict', n }, [x.subarray(0, n * 7500)])).data;
  }

  async regularizationLoss(): Promise<number> {
    return (await this.engine.request({ op: 'regularizationLoss' })).header['value'] as number;
  }

  async getWeights(): Promise<Float32Array[]> {
    return split((await this.engine.request({ op: 'getWeights' })).data, this.weightSpecs);
  }

  async setWeights(w: readonly Float32Array[]): Promise<void> {
    await this.engine.request({ op: 'setWeights' }, w);
  }

  async getOptimizerState(): Promise<{ specs: TensorSpec[]; data: Float32Array[] }> {
    const r = await this.engine.request({ op: 'getOptimizerState' });
    const specs = r.header['specs'] as TensorSpec[];
    return { specs, data: split(r.data, specs) };
  }

  async setOptimizerState(specs: readonly TensorSpec[], data: readonly Float32Array[]): Promise<void> {
    await this.engine.request({ op: 'setOptimizerState', specs }, data);
  }

  setLearningRate(lr: number): void {
    // Queued before the next step; a dead engine is reported by that step.
    this.engine.request({ op: 'setLearningRate', lr }).catch(() => {});
  }

  /** The TF.js layers model with the engine's weights, through the same saveModel as every trainer. */
  async saveModel(dir: string): Promise<void> {
    const tensors = (await this.getWeights()).map((a, i) => tf.tensor(a, this.weightSpecs[i].shape));
    this.model.setWeights(tensors);
    tf.dispose(tensors);
    await saveModel(this.model, dir);
  }

  async dispose(): Promise<void> {
    this.model.dispose();
    await this.engine.close();
  }
}
