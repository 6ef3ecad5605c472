import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { IdcError } from '../errors';
import { buildModel, DEFAULT_MODEL } from '../engine/model';
import type { TorchLaunchConfig } from '../config';
import { TorchProcess, defaultPython, freePort, isDistributed, nodeCommand, type TorchInfo, type TorchLaunch } from '../engine/torch-engine';
import { probeTorchSetup } from '../engine/torch-probe';
import { architectureHash, type TensorSpec } from './checkpoint';
import { readAll, weightSpecsOf, type CacheRowTrainer, type RowBatch, type Trainer, type TrainerOptions } from './trainer';
import { AUGMENT_PARAMS } from './augment';
import type { CacheReader } from '../cache';
import { stainLookupTables } from '../cache/stain-norm';
import type { SplitName } from '../split';
import { saveModel } from './model-io';

export interface TorchTrainerOptions extends TrainerOptions {
  /** Interpreter with torch; default python3 on PATH. */
  python?: string;
  /** torch.set_num_threads; 0 or undefined leaves torch's default. */
  threads?: number;
  /** cuda, mps or cpu; default the first of those torch has. */
  device?: string;
  /** engine.torch: more than one process in all starts the engine through torchrun. */
  torch?: TorchLaunchConfig;
}

/** One torchrun rank as it reported itself at init. */
export interface RankInfo { rank: number; node: number; host: string; pid: number; device: string }

export type EngineInfo = TorchInfo & { threads: number; processes?: number; nodes?: number; backend?: string; ranks?: RankInfo[] };

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
export class TorchTrainer implements Trainer, CacheRowTrainer {
  readonly weightSpecs: TensorSpec[];
  readonly architecture: string;

  private constructor(private readonly engine: TorchProcess, private readonly model: tfl.LayersModel, readonly info: EngineInfo) {
    this.weightSpecs = weightSpecsOf(model);
    this.architecture = architectureHash(this.weightSpecs);
  }

  static async create(opts: TorchTrainerOptions): Promise<TorchTrainer> {
    const python = opts.python || defaultPython();
    const model = buildModel(opts.model);
    // One machine picks a free rendezvous port; machines that must find each other use the configured one.
    const launch: TorchLaunch | undefined = isDistributed(opts.torch) ? { ...opts.torch, masterPort: opts.torch.masterPort || await freePort() } : undefined;
    const engine = new TorchProcess(python, launch);
    let joined = false;
    try {
      const m = opts.model;
      const { header } = await answered(engine, {
        op: 'init', specs: weightSpecsOf(model), lr: opts.learningRate, threads: opts.threads ?? 0, device: opts.device, timeout: launch?.timeoutSeconds,
        model: { filters: m.filters ?? [32, 64, 128], dense: m.dense ?? [64, 64, 64], dropout: m.dropout ?? 0.5, l2: m.l2 ?? 0.01, bnMomentum: m.bnMomentum ?? DEFAULT_MODEL.bnMomentum, seed: m.seed ?? 0 },
        loss: { kind: opts.loss.kind, gamma: opts.loss.gamma, classWeights: opts.loss.classWeights ?? null },
      });
      joined = true;
      const trainer = new TorchTrainer(engine, model, header as unknown as EngineInfo);
      await trainer.setWeights(await readAll(model.getWeights()));
      return trainer;
    } catch (e) {
      model.dispose();
      await engine.close();
      if (launch && !joined && e instanceof IdcError && /gave no answer/.test(e.message)) throw notJoined(python, launch);
      // A Python without torch dies at import: say what to install rather than show the traceback.
      const p = await probeTorchSetup(python);
      if (!p.available) {
        throw new IdcError(`The torch engine cannot start: ${p.reason}.`, `Install it: ${p.fix}. Or set engine.backend to "auto".`, 'BACKEND_UNAVAILABLE');
      }
      throw e;
    }
  }

  /** "torch (PyTorch 2.6.0, cpu, 2 threads)", "torch (PyTorch 2.6.0, cuda, 8 processes on 2 machines, nccl)" for run records and the start line. */
  describe(): string {
    const i = this.info;
    const threads = `${i.threads} thread${i.threads === 1 ? '' : 's'}`;
    if (i.processes && i.processes > 1) {
      const where = i.nodes && i.nodes > 1 ? ` on ${i.nodes} machines` : '';
      return `torch (PyTorch ${i.torch}, ${i.device}, ${i.processes} processes${where}${i.device === 'cpu' ? ` × ${threads}` : ''}, ${i.backend})`;
    }
    return `torch (PyTorch ${i.torch}, ${i.device}${i.device === 'cpu' ? `, ${threads}` : ''})`;
  }

  get pid(): number | undefined {
    return this.engine.pid;
  }

  /** Every rank's digest of its weights, moving statistics and Adam state (one entry with one process): equal when the replicas are bit-identical. */
  async rankChecksums(): Promise<string[]> {
    return (await this.call({ op: 'checksums' })).header['checksums'] as string[];
  }

  private call(header: Record<string, unknown> & { op: string }, payload: readonly Float32Array[] = []) {
    return answered(this.engine, header, payload);
  }

  async trainStep(x: Float32Array, y: Uint8Array, n: number, step?: number): Promise<{ loss: number; probs: Float32Array }> {
    const r = await this.call({ op: 'train', n, step }, [x.subarray(0, n * 7500), Float32Array.from(y.subarray(0, n))]);
    return { loss: engineNumber(r.header['loss']), probs: r.data };
  }

  /**
   * Maps the readers' cache files in the engine (every rank), with the Macenko maps they apply;
   * `ok: false` when a rank cannot (its machine lacks the folder), and the loop sends pixels.
   */
  async openRows(readers: readonly CacheReader[]): Promise<{ ok: true; where: string } | { ok: false; reason: string }> {
    const too = readers.find((r) => r.size >= 2 ** 24);
    if (too) return { ok: false, reason: `the ${too.split} split has ${too.size} patches, more than row numbers sent as float32 can name` };
    const splits = readers.map((r) => ({ name: r.split, cacheDir: r.cacheDir, count: r.size, key: r.meta.key, stains: r.stainNormalized }));
    const h = (await this.call({ op: 'openRows', splits, ...stainLookupTables() })).header;
    if (!h['ok']) return { ok: false, reason: String(h['reason']) };
    const where = Object.entries(h['rows'] as Record<string, string>).map(([name, how]) => `${name} ${how}`).join(', ');
    return { ok: true, where };
  }

  async trainRows(b: RowBatch, step?: number): Promise<{ loss: number; probs: Float32Array }> {
    const n = b.indices.length;
    const r = await this.call({ op: 'trainRows', split: b.split, n, step, geometry: b.geometry, stain: b.stain },
      [Float32Array.from(b.indices), Float32Array.from(b.y.subarray(0, n)), Float32Array.from(b.augment.subarray(0, n * AUGMENT_PARAMS))]);
    return { loss: engineNumber(r.header['loss']), probs: r.data };
  }

  async accumulateBatchNormRows(b: RowBatch, bnCount: number): Promise<void> {
    const n = b.indices.length;
    await this.call({ op: 'trainRows', split: b.split, n, bnCount, geometry: b.geometry, stain: b.stain },
      [Float32Array.from(b.indices), new Float32Array(n), Float32Array.from(b.augment.subarray(0, n * AUGMENT_PARAMS))]);
  }

  async predictRows(split: SplitName, indices: Uint32Array): Promise<Float32Array> {
    return (await this.call({ op: 'predictRows', split, n: indices.length }, [Float32Array.from(indices)])).data;
  }

  /** The float batch trainRows would train on (augmentation as drawn), for tests and checks. */
  async rowPixels(b: Omit<RowBatch, 'y'>): Promise<Float32Array> {
    const n = b.indices.length;
    return (await this.call({ op: 'rowPixels', split: b.split, n, geometry: b.geometry, stain: b.stain },
      [Float32Array.from(b.indices), Float32Array.from(b.augment.subarray(0, n * AUGMENT_PARAMS))])).data;
  }

  async accumulateBatchNorm(x: Float32Array, n: number, bnCount: number): Promise<void> {
    await this.call({ op: 'train', n, bnCount }, [x.subarray(0, n * 7500), new Float32Array(n)]);
  }

  async predict(x: Float32Array, n: number): Promise<Float32Array> {
    return (await this.call({ op: 'predict', n }, [x.subarray(0, n * 7500)])).data;
  }

  async regularizationLoss(): Promise<number> {
    return engineNumber((await this.call({ op: 'regularizationLoss' })).header['value']);
  }

  async getWeights(): Promise<Float32Array[]> {
    return split((await this.call({ op: 'getWeights' })).data, this.weightSpecs);
  }

  async setWeights(w: readonly Float32Array[]): Promise<void> {
    await this.call({ op: 'setWeights' }, w);
  }

  async getOptimizerState(): Promise<{ specs: TensorSpec[]; data: Float32Array[] }> {
    const r = await this.call({ op: 'getOptimizerState' });
    const specs = r.header['specs'] as TensorSpec[];
    return { specs, data: split(r.data, specs) };
  }

  async setOptimizerState(specs: readonly TensorSpec[], data: readonly Float32Array[]): Promise<void> {
    await this.call({ op: 'setOptimizerState', specs }, data);
  }

  setLearningRate(lr: number): void {
    // Queued before the next step; a dead engine is reported by that step.
    this.call({ op: 'setLearningRate', lr }).catch(() => {});
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

/** A number from an engine header: NaN and ±Infinity come as 'nan', 'inf', '-inf' (JSON has none of them). */
export function engineNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  return v === 'inf' ? Infinity : v === '-inf' ? -Infinity : NaN;
}

/**
 * The engine's answer; with torchrun, within engine.torch.timeoutSeconds or the whole job is ended:
 * a rank that hangs (rather than dies, which torchrun reports) would otherwise block it for good.
 */
async function answered(engine: TorchProcess, header: Record<string, unknown> & { op: string }, payload: readonly Float32Array[] = []) {
  const l = engine.launch;
  if (!isDistributed(l)) return engine.request(header, payload);
  const timer = setTimeout(() => engine.abort(`gave no answer within ${l.timeoutSeconds} s (engine.torch.timeoutSeconds)`, 'a process hangs or a machine stopped answering, so every process was ended'), l.timeoutSeconds * 1000);
  try {
    return await engine.request(header, payload);
  } finally {
    clearTimeout(timer);
  }
}

/** Not every rank joined in time: what to start where, or what to look at. */
function notJoined(python: string, l: TorchLaunch): IdcError {
  const total = l.processes * l.nodes;
  if (l.nodes > 1) {
    const cmds = Array.from({ length: l.nodes - 1 }, (_, k) => `machine ${k + 1}: ${nodeCommand(python, l, k + 1)}`).join('; ');
    return new IdcError(
      `Not all ${total} torch engine processes (${l.processes} on each of ${l.nodes} machines) joined within ${l.timeoutSeconds} s (engine.torch.timeoutSeconds).`,
      `Start torchrun on every other machine before training or within that time (${cmds}), with the same idc_torch folder and PyTorch version; they must reach ${l.masterAddress}:${l.masterPort} over TCP, and NCCL or gloo need further ports between the machines (see the docs/cli.md, train: torch engine).`,
      'TORCH_ENGINE',
    );
  }
  return new IdcError(
    `The ${total} torch engine processes did not all start within ${l.timeoutSeconds} s (engine.torch.timeoutSeconds).`,
    'The machine may be overloaded, or torchrun could not start them: run the job again, raise engine.torch.timeoutSeconds, or set engine.torch.processes to 1.',
    'TORCH_ENGINE',
  );
}
