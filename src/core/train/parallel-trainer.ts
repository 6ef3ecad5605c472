import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { Worker, type MessagePort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { IdcError } from '../errors';
import { buildModel, foldForInference, setDropoutStep, withBatchNormAveraging } from '../engine/model';
import { architectureHash, type TensorSpec } from './checkpoint';
import { batchLoss } from './losses';
import { saveModel } from './model-io';
import { readAll, weightSpecsOf, adamState, restoreAdamState, setAdamLearningRate, type Trainer, type TrainerOptions } from './trainer';

/**
 * Synchronous data-parallel training over worker_threads, one model replica per thread (the wasm
 * backend is single-threaded under Node). Each step:
 *  1. x/y go to SharedArrayBuffers; replica r takes rows [start_r, start_r + n_r).
 *  2. Each replica computes loss + gradients on its shard (regularisation losses included) and
 *     writes them, with its updated BatchNorm moving statistics, to its slot of a shared buffer.
 *  3. The main thread takes the shard-size-weighted mean Σ (n_r/n)·g_r: the full-batch gradient of
 *     a mean loss. Every replica's loss holds the whole regularisation term and the weights sum to 1,
 *     so its gradient comes out exactly once.
 *  4. Every replica applies that same mean with its own Adam. Same code, same inputs, same order
 *     → bit-identical weights and optimizer state on every replica (the tests check it).
 * BatchNorm normalises with per-shard batch statistics (like PyTorch DDP without SyncBatchNorm), so a
 * step differs slightly from a one-thread step on the same batch. The moving mean/variance are
 * replaced by their shard-size-weighted mean after each step, which keeps replicas identical and
 * makes the moving mean exactly the full-batch one (the variance misses the between-shard spread of
 * the means, small next to it for shards of a random batch). Each replica draws its own dropout masks,
 * seeded per (model seed, replica, step), so a run with the same thread count is reproducible.
 */

const PIX = 50 * 50 * 3;
/** Replicas beyond this many gain little: shards get small and the averaging is serial. */
export const MAX_THREADS = 16;

type LayerVariable = tfl.LayersModel['weights'][number];

export interface SharedBuffers {
  /** Rows the x/y/probs buffers hold. */
  capacity: number;
  x: SharedArrayBuffer;
  y: SharedArrayBuffer;
  probs: SharedArrayBuffer;
  /** replicas × (gradient size + BN stat size) floats: each replica's shard gradient, then its moving stats. */
  slots: SharedArrayBuffer;
  /** The weighted mean every replica applies. */
  mean: SharedArrayBuffer;
}

/** One model replica: the same code runs on the main thread and in the workers. */
export class Replica {
  readonly model: tfl.LayersModel;
  readonly weightSpecs: TensorSpec[];
  /** Floats per gradient / per BN-stat block of a slot. */
  readonly gradSize: number;
  readonly statSize: number;
  private readonly vars: tf.Variable[];
  private readonly stats: LayerVariable[];
  private readonly optimizer: tf.AdamOptimizer;
  private folded?: tfl.LayersModel;
  private v?: { x: Float32Array; y: Uint8Array; probs: Float32Array; slot: Float32Array; mean: Float32Array };

  constructor(private readonly opts: TrainerOptions, readonly slot: number) {
    this.model = buildModel(opts.model);
    // Each replica draws its own dropout masks (its own stream of seeds).
    setDropoutStep(this.model, 0, slot);
    this.weightSpecs = weightSpecsOf(this.model);
    this.vars = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    this.stats = this.model.nonTrainableWeights;
    this.gradSize = this.vars.reduce((a, v) => a + v.size, 0);
    this.statSize = this.stats.reduce((a, s) => a + s.read().size, 0);
    this.optimizer = tf.train.adam(opts.learningRate, 0.9, 0.999, 1e-7);
  }

  attach(b: SharedBuffers): void {
    const w = this.gradSize + this.statSize;
    this.v = {
      x: new Float32Array(b.x), y: new Uint8Array(b.y), probs: new Float32Array(b.probs),
      slot: new Float32Array(b.slots, this.slot * w * 4, w), mean: new Float32Array(b.mean),
    };
  }

  private input(start: number, count: number): tf.Tensor4D {
    const x = this.v!.x.subarray(start * PIX, (start + count) * PIX);
    // wasm copies into its heap; cpu would keep a view of memory the next batch overwrites.
    return tf.tensor4d(tf.getBackend() === 'wasm' ? x : x.slice(), [count, 50, 50, 3]);
  }

  /** Loss and gradient on rows [start, start+count); gradient and moving stats go to this replica's slot. */
  grad(start: number, count: number, step?: number): number {
    const v = this.v!;
    if (step !== undefined) setDropoutStep(this.model, step);
    const { value, grads, probs } = tf.tidy(() => {
      const x = this.input(start, count);
      const y = tf.tensor2d(Float32Array.from(v.y.subarray(start, start + count)), [count, 1]);
      let kept: tf.Tensor | undefined;
      const r = tf.variableGrads(() => {
        const p = this.model.apply(x, { training: true }) as tf.Tensor;
        kept = tf.keep(p);
        let total = batchLoss(y, p, this.opts.loss);
        for (const reg of this.model.calculateLosses()) total = tf.add(total, reg) as tf.Scalar;
        return total;
      }, this.vars);
      return { value: r.value, grads: this.vars.map((w) => r.grads[w.name]), probs: kept! };
    });
    let off = 0;
    for (let i = 0; i < this.vars.length; i++) {
      const n = this.vars[i].size;
      if (grads[i]) v.slot.set(grads[i].dataSync() as Float32Array, off);
      else v.slot.fill(0, off, off + n);
      off += n;
    }
    this.statsToSlot();
    v.probs.set(probs.dataSync() as Float32Array, start);
    const loss = value.dataSync()[0];
    tf.dispose([value, probs, ...grads]);
    this.dropFolded();
    return loss;
  }

  /** This replica's moving stats into its slot, after the gradient. */
  private statsToSlot(): void {
    const slot = this.v!.slot;
    let off = this.gradSize;
    for (const s of this.stats) { const d = s.read().dataSync() as Float32Array; slot.set(d, off); off += d.length; }
  }

  /** Applies the shared mean gradient with this replica's Adam and takes the shared moving stats. */
  apply(): void {
    const mean = this.v!.mean;
    let off = 0;
    // slice(): tensors must not alias shared memory (the cpu backend keeps the array it is given).
    const next = (shape: number[], n: number) => { const t = tf.tensor(mean.slice(off, off + n), shape); off += n; return t; };
    tf.tidy(() => this.optimizer.applyGradients(this.vars.map((w) => ({ name: w.name, tensor: next(w.shape, w.size) }))));
    this.applyStats();
  }

  /** Trainer.accumulateBatchNorm on rows [start, start+count); the moving stats go to this replica's slot. */
  bnStats(start: number, count: number, bnCount: number): void {
    withBatchNormAveraging(this.model, bnCount, () => tf.tidy(() => { this.model.apply(this.input(start, count), { training: true }); }));
    this.statsToSlot();
    this.dropFolded();
  }

  /** Takes the shared moving stats (the part of the mean after the gradient); after apply's step, or alone after bnStats. */
  applyStats(): void {
    const mean = this.v!.mean;
    let off = this.gradSize;
    tf.tidy(() => {
      for (const s of this.stats) {
        const n = s.read().size;
        s.write(tf.tensor(mean.slice(off, off + n), s.shape as number[]));
        off += n;
      }
    });
    this.dropFolded();
  }

  /** Inference-mode probabilities of rows [start, start+count) into the shared probs buffer. */
  predict(start: number, count: number): void {
    this.folded ??= foldForInference(this.model);
    const p = tf.tidy(() => tf.reshape(this.folded!.apply(this.input(start, count), { training: false }) as tf.Tensor, [count]));
    this.v!.probs.set(p.dataSync() as Float32Array, start);
    p.dispose();
  }

  private dropFolded(): void {
    this.folded?.dispose();
    this.folded = undefined;
  }

  regularizationLoss(): number {
    let reg = 0;
    for (const t of this.model.calculateLosses()) { reg += t.dataSync()[0]; t.dispose(); }
    return reg;
  }

  getWeights(): Promise<Float32Array[]> {
    return readAll(this.model.getWeights());
  }

  setWeights(w: readonly Float32Array[]): void {
    const tensors = w.map((a, i) => tf.tensor(a, this.weightSpecs[i].shape));
    this.model.setWeights(tensors);
    tf.dispose(tensors);
    this.dropFolded();
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

  dispose(): void {
    this.dropFolded();
    this.optimizer.dispose();
    this.model.dispose();
  }
}

// ---------------------------------------------------------------- worker side

export interface WorkerInit {
  backend: 'wasm' | 'cpu';
  wasmDir?: string;
  trainer: TrainerOptions;
  slot: number;
  buffers: SharedBuffers;
  weights: Float32Array[];
}

type Request =
  | { cmd: 'attach'; buffers: SharedBuffers }
  | { cmd: 'grad'; start: number; count: number; step?: number }
  | { cmd: 'predict'; start: number; count: number }
  | { cmd: 'bnStats'; start: number; count: number; bnCount: number }
  | { cmd: 'apply' | 'applyStats' | 'getWeights' | 'getOptimizerState' | 'regularizationLoss' }
  | { cmd: 'setWeights'; weights: Float32Array[] }
  | { cmd: 'setOptimizerState'; specs: TensorSpec[]; data: Float32Array[] }
  | { cmd: 'setLearningRate'; lr: number };

interface WireError { message: string; stack?: string; hint?: string; code?: string }
type Reply = { id: number; value?: unknown; error?: WireError };

function toWire(e: unknown): WireError {
  const err = e as Partial<IdcError>;
  return { message: err?.message ?? String(e), stack: err?.stack, hint: err?.hint, code: e instanceof IdcError ? err.code : undefined };
}

/**
 * The worker's message loop (trainer.worker.ts starts the backend, then calls this). Replies carry
 * the request id; message 0 is the start-up answer.
 */
export async function serveReplica(port: MessagePort, init: WorkerInit, startBackend: () => Promise<void>): Promise<void> {
  let replica: Replica;
  try {
    await startBackend();
    replica = new Replica(init.trainer, init.slot);
    replica.attach(init.buffers);
    replica.setWeights(init.weights);
    port.postMessage({ id: 0 } satisfies Reply);
  } catch (e) {
    port.postMessage({ id: 0, error: toWire(e) } satisfies Reply);
    return;
  }
  // One request at a time, in arrival order, even when a handler awaits.
  let chain = Promise.resolve();
  port.on('message', ({ id, req }: { id: number; req: Request }) => {
    chain = chain.then(async () => {
      try {
        port.postMessage({ id, value: await handle(replica, req) } satisfies Reply);
      } catch (e) {
        port.postMessage({ id, error: toWire(e) } satisfies Reply);
      }
    });
  });
}

async function handle(r: Replica, req: Request): Promise<unknown> {
  switch (req.cmd) {
    case 'attach': return r.attach(req.buffers);
    case 'grad': return r.grad(req.start, req.count, req.step);
    case 'apply': return r.apply();
    case 'bnStats': return r.bnStats(req.start, req.count, req.bnCount);
    case 'applyStats': return r.applyStats();
    case 'predict': return r.predict(req.start, req.count);
    case 'getWeights': return r.getWeights();
    case 'setWeights': return r.setWeights(req.weights);
    case 'getOptimizerState': return r.getOptimizerState();
    case 'setOptimizerState': return r.setOptimizerState(req.specs, req.data);
    case 'setLearningRate': return r.setLearningRate(req.lr);
    case 'regularizationLoss': return r.regularizationLoss();
  }
}

// ---------------------------------------------------------------- main side

const WORKER_HINT = 'Set engine.threads to 1 to train on this thread only; if it persists, report it with the error above.';

/** A worker replica as an RPC endpoint; any failure goes to `onFail`, which ends the trainer. */
class RemoteReplica {
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private nextId = 1;
  private closing = false;
  readonly ready: Promise<unknown>;

  constructor(readonly worker: Worker, readonly slot: number, private readonly onFail: (e: IdcError) => void) {
    this.ready = new Promise((resolve, reject) => this.pending.set(0, { resolve, reject }));
    worker.on('message', (m: Reply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if (!m.error) { p.resolve(m.value); return; }
      const err = m.error.code ? new IdcError(m.error.message, m.error.hint, m.error.code) : this.error(`failed: ${m.error.message}`, m.error.stack);
      p.reject(err);
      // A replica that failed halfway may no longer match the others: no further requests.
      this.onFail(err);
    });
    worker.on('error', (e) => this.onFail(this.error(`crashed: ${e?.message ?? e}`, e?.stack)));
    worker.on('messageerror', (e) => this.onFail(this.error(`sent a message that could not be read: ${e.message}`)));
    worker.on('exit', (code) => { if (!this.closing) this.onFail(this.error(`stopped unexpectedly (exit code ${code})`)); });
  }

  private error(what: string, stack?: string): IdcError {
    const e = new IdcError(`Training worker ${this.slot} ${what}.`, WORKER_HINT, 'TRAIN_WORKER');
    if (stack) (e as Error & { cause?: unknown }).cause = stack;
    return e;
  }

  call<T>(req: Request, transfer: ArrayBuffer[] = []): Promise<T> {
    const id = this.nextId++;
    const p = new Promise<T>((resolve, reject) => this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject }));
    // Referenced only while waiting, so a trainer that is never disposed does not keep Node alive.
    this.worker.ref();
    this.worker.postMessage({ id, req }, transfer);
    return p;
  }

  rejectAll(e: unknown): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  terminate(): Promise<number> {
    this.closing = true;
    return this.worker.terminate();
  }
}

export interface ParallelTrainerOptions extends TrainerOptions {
  /** Replicas (threads doing tensor work), ≥ 1. */
  threads: number;
  /**
   * Whether this thread is one of the replicas (threads − 1 workers) or only coordinates (threads
   * workers). Default false: equally fast on 2 cores (bench/train.ts), and this thread's event loop
   * stays free during steps (training runs inside the language server).
   */
  mainReplica?: boolean;
  /** The bundled worker script; default trainer.worker.js beside this bundle. */
  workerFile?: string;
  /** Folder holding the tfjs .wasm files, for the workers; default: found like initWasmBackend does. */
  wasmDir?: string;
}

/** dist/trainer.worker.js beside the bundle that holds this module. */
export function defaultWorkerFile(): string {
  return path.join(__dirname, 'trainer.worker.js');
}

/** The folder with the tfjs .wasm files: beside the bundle, else node_modules (sources under tsx). */
export function findWasmDir(): string | undefined {
  const dirs = [__dirname];
  try {
    dirs.push(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist'));
  } catch { /* bundled without node_modules */ }
  return dirs.find((d) => existsSync(path.join(d, 'tfjs-backend-wasm-simd.wasm')));
}

/** Replicas for engine.threads (0 = one per core); IDC_THREADS overrides it, for benchmarks. */
export function resolveThreads(configured: number, env: NodeJS.ProcessEnv = process.env): number {
  const override = env['IDC_THREADS'];
  if (override !== undefined && override !== '' && Number.isInteger(Number(override)) && Number(override) >= 0) configured = Number(override);
  const cores = availableParallelism();
  // More replicas than cores only adds switching and smaller shards.
  return Math.max(1, Math.min(configured === 0 ? cores : configured, cores, MAX_THREADS));
}

/** Rows per replica: as equal as possible, the first ones one larger. */
export function shardSizes(n: number, replicas: number): number[] {
  const base = Math.floor(n / replicas), extra = n % replicas;
  return Array.from({ length: replicas }, (_, r) => base + (r < extra ? 1 : 0));
}

export class ParallelTrainer implements Trainer {
  readonly weightSpecs: TensorSpec[];
  readonly architecture: string;
  readonly threads: number;
  private readonly gradSize: number;
  private readonly statSize: number;
  private buffers!: SharedBuffers;
  private views!: { x: Float32Array; y: Uint8Array; probs: Float32Array; slots: Float32Array; mean: Float32Array };
  private readonly acc: Float64Array;
  private readonly remotes: RemoteReplica[] = [];
  private broken?: unknown;
  private disposed = false;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    /** This thread's replica (slot 0), or undefined when it only coordinates. */
    private readonly local: Replica | undefined,
    /** Only coordinating: a model for weight specs and saveModel. */
    private readonly shell: tfl.LayersModel | undefined,
    threads: number,
    sizes: { gradSize: number; statSize: number },
  ) {
    const model = (local?.model ?? shell)!;
    this.weightSpecs = weightSpecsOf(model);
    this.architecture = architectureHash(this.weightSpecs);
    this.threads = threads;
    ({ gradSize: this.gradSize, statSize: this.statSize } = sizes);
    this.acc = new Float64Array(this.gradSize + this.statSize);
    this.allocate(0);
  }

  /** Starts the workers (each starts its backend and builds its model) and waits until all are ready. */
  static async create(opts: ParallelTrainerOptions): Promise<ParallelTrainer> {
    const threads = Math.max(1, Math.floor(opts.threads));
    const mainReplica = opts.mainReplica ?? false;
    const backend = tf.getBackend();
    if (backend !== 'wasm' && backend !== 'cpu') {
      throw new IdcError(`Data-parallel training needs the wasm or cpu backend, not ${backend}.`, 'Set engine.threads to 1.', 'BAD_CONFIG');
    }
    const workerFile = opts.workerFile ?? defaultWorkerFile();
    const wasmDir = backend === 'wasm' ? opts.wasmDir ?? findWasmDir() : undefined;
    const trainer: TrainerOptions = { model: opts.model, learningRate: opts.learningRate, loss: opts.loss };
    const local = mainReplica ? new Replica(trainer, 0) : undefined;
    const shell = mainReplica ? undefined : buildModel(trainer.model);
    const sizes = local ?? {
      gradSize: shell!.trainableWeights.reduce((a, w) => a + w.read().size, 0),
      statSize: shell!.nonTrainableWeights.reduce((a, w) => a + w.read().size, 0),
    };
    const t = new ParallelTrainer(local, shell, threads, sizes);
    try {
      // Workers start from these weights, not from their own seeded init: identical by construction.
      const weights = await readAll((local?.model ?? shell)!.getWeights());
      for (let slot = mainReplica ? 1 : 0; slot < threads; slot++) {
        const init: WorkerInit = { backend, wasmDir, trainer, slot, buffers: t.buffers, weights };
        let worker: Worker;
        try {
          worker = new Worker(workerFile, { workerData: init });
        } catch (e) {
          throw new IdcError(`Cannot start a training worker from ${workerFile}: ${(e as Error).message}`, WORKER_HINT, 'TRAIN_WORKER');
        }
        t.remotes.push(new RemoteReplica(worker, slot, (e) => t.fail(e)));
      }
      await Promise.all(t.remotes.map((r) => r.ready));
      if (t.broken) throw t.broken;
    } catch (e) {
      await t.dispose();
      throw e;
    }
    return t;
  }

  private fail(e: unknown): void {
    this.broken ??= e;
    for (const r of this.remotes) r.rejectAll(e);
  }

  /** (Re)allocates the shared buffers for at least `rows` patches; workers get them before their next request. */
  private allocate(rows: number): void {
    const capacity = Math.max(rows, this.buffers?.capacity ?? 0, 64);
    const w = this.gradSize + this.statSize;
    const keep = this.buffers;
    this.buffers = {
      capacity,
      x: new SharedArrayBuffer(capacity * PIX * 4), y: new SharedArrayBuffer(capacity), probs: new SharedArrayBuffer(capacity * 4),
      slots: keep?.slots ?? new SharedArrayBuffer(this.threads * w * 4), mean: keep?.mean ?? new SharedArrayBuffer(w * 4),
    };
    const b = this.buffers;
    this.views = { x: new Float32Array(b.x), y: new Uint8Array(b.y), probs: new Float32Array(b.probs), slots: new Float32Array(b.slots), mean: new Float32Array(b.mean) };
    this.local?.attach(b);
  }

  private async ensureCapacity(rows: number): Promise<void> {
    if (rows <= this.buffers.capacity) return;
    this.allocate(Math.max(rows, 2 * this.buffers.capacity));
    await Promise.all(this.remotes.map((r) => r.call({ cmd: 'attach', buffers: this.buffers })));
  }

  /** Runs one operation at a time: replicas share the buffers. */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.broken) throw this.broken;
      if (this.disposed) throw new IdcError('The trainer has been disposed.', undefined, 'TRAIN_WORKER');
      return f();
    });
    this.queue = run.catch(() => {});
    return run;
  }

  /** Runs `local` here while the workers run their requests; waits for all, then rethrows the first failure. */
  private async fanOut<T>(requests: Array<Promise<T>>, local?: () => T): Promise<{ remote: T[]; local?: T }> {
    let localValue: T | undefined, localError: unknown, hasLocalError = false;
    try { if (local) localValue = local(); } catch (e) { localError = e; hasLocalError = true; }
    const settled = await Promise.allSettled(requests);
    if (this.broken) throw this.broken;
    if (hasLocalError) throw localError;
    const bad = settled.find((s) => s.status === 'rejected');
    if (bad) throw (bad as PromiseRejectedResult).reason;
    return { remote: settled.map((s) => (s as PromiseFulfilledResult<T>).value), local: localValue };
  }

  /** Rows [start, start+count) per slot. */
  private shards(n: number): Array<{ start: number; count: number }> {
    let start = 0;
    return shardSizes(n, this.threads).map((count) => { const s = { start, count }; start += count; return s; });
  }

  trainStep(x: Float32Array, y: Uint8Array, n: number, step?: number): Promise<{ loss: number; probs: Float32Array }> {
    return this.serial(async () => {
      await this.ensureCapacity(n);
      const v = this.views;
      v.x.set(x.subarray(0, n * PIX));
      v.y.set(y.subarray(0, n));
      const shards = this.shards(n);
      const requests = this.remotes.map((r) => (shards[r.slot].count ? r.call<number>({ cmd: 'grad', ...shards[r.slot], step }) : Promise.resolve(0)));
      const local = this.local && shards[0].count ? () => this.local!.grad(shards[0].start, shards[0].count, step) : undefined;
      const res = await this.fanOut(requests, local);
      const losses = new Array<number>(this.threads).fill(0);
      this.remotes.forEach((r, i) => { losses[r.slot] = res.remote[i]; });
      if (this.local) losses[0] = res.local ?? 0;
      let loss = 0;
      for (let s = 0; s < this.threads; s++) loss += (shards[s].count / n) * losses[s];
      this.average(shards.map((s) => s.count), n);
      await this.fanOut(this.remotes.map((r) => r.call<void>({ cmd: 'apply' })), this.local ? () => this.local!.apply() : undefined);
      return { loss, probs: v.probs.slice(0, n) };
    }).catch((e) => {
      // Some replicas may have stepped and others not: nothing after this can be trusted.
      this.broken ??= e;
      throw e;
    });
  }

  accumulateBatchNorm(x: Float32Array, n: number, bnCount: number): Promise<void> {
    return this.serial(async () => {
      await this.ensureCapacity(n);
      this.views.x.set(x.subarray(0, n * PIX));
      const shards = this.shards(n);
      const requests = this.remotes.map((r) => (shards[r.slot].count ? r.call<void>({ cmd: 'bnStats', ...shards[r.slot], bnCount }) : Promise.resolve()));
      const local = this.local && shards[0].count ? () => this.local!.bnStats(shards[0].start, shards[0].count, bnCount) : undefined;
      await this.fanOut(requests, local);
      // The shards' statistics weighted by their rows, as after a training step.
      this.average(shards.map((s) => s.count), n);
      await this.fanOut(this.remotes.map((r) => r.call<void>({ cmd: 'applyStats' })), this.local ? () => this.local!.applyStats() : undefined);
    }).catch((e) => {
      this.broken ??= e;
      throw e;
    });
  }

  /** mean = Σ n_s·slot_s / n in float64, summed in slot order (one result, shared by every replica). */
  private average(counts: number[], n: number): void {
    const w = this.gradSize + this.statSize;
    const { slots, mean } = this.views;
    const acc = this.acc;
    acc.fill(0);
    for (let s = 0; s < counts.length; s++) {
      const c = counts[s];
      if (!c) continue;
      const o = s * w;
      for (let j = 0; j < w; j++) acc[j] += c * slots[o + j];
    }
    for (let j = 0; j < w; j++) mean[j] = acc[j] / n;
  }

  predict(x: Float32Array, n: number): Promise<Float32Array> {
    return this.serial(async () => {
      await this.ensureCapacity(n);
      this.views.x.set(x.subarray(0, n * PIX));
      const shards = this.shards(n);
      const requests = this.remotes.map((r) => (shards[r.slot].count ? r.call<void>({ cmd: 'predict', ...shards[r.slot] }) : Promise.resolve()));
      const local = this.local && shards[0].count ? () => this.local!.predict(shards[0].start, shards[0].count) : undefined;
      await this.fanOut(requests, local);
      return this.views.probs.slice(0, n);
    });
  }

  /** Replica 0 answers: all replicas hold the same weights. */
  private first<T>(req: Request, local: (r: Replica) => T | Promise<T>): Promise<T> {
    return this.serial(async () => (this.local ? local(this.local) : (await this.fanOut([this.remotes[0].call<T>(req)])).remote[0]));
  }

  private all(req: Request, local: (r: Replica) => unknown): Promise<void> {
    return this.serial(async () => {
      const requests = this.remotes.map((r) => r.call<unknown>(req));
      let localRun: Promise<unknown> = Promise.resolve();
      await this.fanOut(requests, this.local ? () => { localRun = Promise.resolve(local(this.local!)); } : undefined);
      await localRun;
    });
  }

  regularizationLoss(): Promise<number> {
    return this.first({ cmd: 'regularizationLoss' }, (r) => r.regularizationLoss());
  }

  getWeights(): Promise<Float32Array[]> {
    return this.first({ cmd: 'getWeights' }, (r) => r.getWeights());
  }

  setWeights(w: readonly Float32Array[]): Promise<void> {
    const weights = w.map((a) => Float32Array.from(a));
    return this.all({ cmd: 'setWeights', weights }, (r) => r.setWeights(weights));
  }

  getOptimizerState(): Promise<{ specs: TensorSpec[]; data: Float32Array[] }> {
    return this.first({ cmd: 'getOptimizerState' }, (r) => r.getOptimizerState());
  }

  setOptimizerState(specs: readonly TensorSpec[], data: readonly Float32Array[]): Promise<void> {
    const d = data.map((a) => Float32Array.from(a));
    return this.all({ cmd: 'setOptimizerState', specs: [...specs], data: d }, (r) => r.setOptimizerState(specs, d));
  }

  setLearningRate(lr: number): void {
    // Requests are handled in order, so the next step sees it; a failure surfaces on that step.
    void this.all({ cmd: 'setLearningRate', lr }, (r) => r.setLearningRate(lr)).catch(() => {});
  }

  /** Every replica's weights and optimizer state, slot order (tests: replicas must stay identical). */
  replicaStates(): Promise<Array<{ weights: Float32Array[]; optimizer: Float32Array[] }>> {
    return this.serial(async () => {
      const out: Array<{ weights: Float32Array[]; optimizer: Float32Array[] }> = [];
      if (this.local) out.push({ weights: await this.local.getWeights(), optimizer: (await this.local.getOptimizerState()).data });
      for (const r of this.remotes) {
        const [weights] = (await this.fanOut([r.call<Float32Array[]>({ cmd: 'getWeights' })])).remote;
        const [opt] = (await this.fanOut([r.call<{ data: Float32Array[] }>({ cmd: 'getOptimizerState' })])).remote;
        out.push({ weights, optimizer: opt.data });
      }
      return out;
    });
  }

  async saveModel(dir: string): Promise<void> {
    if (this.local) return this.serial(() => saveModel(this.local!.model, dir));
    const w = await this.getWeights();
    const tensors = w.map((a, i) => tf.tensor(a, this.weightSpecs[i].shape));
    this.shell!.setWeights(tensors);
    tf.dispose(tensors);
    return saveModel(this.shell!, dir);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.queue;
    const closed = new IdcError('The trainer has been disposed.', undefined, 'TRAIN_WORKER');
    for (const r of this.remotes) r.rejectAll(closed);
    await Promise.all(this.remotes.map((r) => r.terminate()));
    this.local?.dispose();
    this.shell?.dispose();
  }
}
