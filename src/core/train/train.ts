import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdcError, throwIfCancelled } from '../errors';
import { writeJsonAtomic, writeFileAtomicSync } from '../fsutil';
import { Rng } from '../rng';
import { noProgress, throttled, type ProgressSink } from '../progress';
import type { IdcConfig } from '../config';
import { buildModel } from '../engine/model';
import type { CacheReader } from '../cache';
import { rocAuc, confusionAt } from '../metrics/auc';
import { EarlyStopping, ReduceLrOnPlateau } from './callbacks';
import { batchLoss, perSampleLoss, balancedClassWeights, type LossOptions } from './losses';
import { augmentToFloat, toFloat } from './augment';
import { saveCheckpoint, loadCheckpoint, architectureHash, type CheckpointState, type EpochLog, type TensorSpec } from './checkpoint';
import { saveModel } from './model-io';
import { prepareData, type PreparedData } from './data';

export type TrainEvent =
  | { type: 'start'; runId: string; runDir: string; epochs: number; startEpoch: number; backend: string; trainSize: number; valSize: number; warning?: string }
  | { type: 'batch'; runId: string; epoch: number; batch: number; batches: number; loss: number; imagesPerSecond: number }
  | { type: 'epoch'; runId: string; log: EpochLog }
  | { type: 'end'; runId: string; reason: 'completed' | 'early-stopped'; bestEpoch?: number; epochs: number };

export interface TrainOptions {
  outputDir: string;
  config: IdcConfig;
  /** Start a run with this id, or resume it if it exists and is unfinished. */
  runId?: string;
  /** Resume the newest unfinished run. */
  resume?: boolean;
  cacheDir?: string;
  onProgress?: ProgressSink;
  onEvent?: (e: TrainEvent) => void;
  signal?: AbortSignal;
  /** Test hook, after every training step. */
  afterBatch?: (epoch: number, batch: number) => void;
}

export interface TrainResult { runId: string; runDir: string; history: EpochLog[]; stopReason: 'completed' | 'early-stopped'; bestEpoch?: number; resumedFrom?: number }

export interface RunInfo { id: string; createdAt: string; status: 'running' | 'finished'; backend: string; epochs: number; bestEpoch?: number; stopReason?: string; finishedAt?: string }

const RUNS_DIR = 'runs';

export function runsDir(outputDir: string): string {
  return join(outputDir, RUNS_DIR);
}

export function listRuns(outputDir: string): RunInfo[] {
  const dir = runsDir(outputDir);
  if (!existsSync(dir)) return [];
  const out: RunInfo[] = [];
  for (const id of readdirSync(dir)) {
    try { out.push(JSON.parse(readFileSync(join(dir, id, 'run.json'), 'utf8')) as RunInfo); } catch { /* not a run folder */ }
  }
  return out.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
}

function newRunId(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `run-${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

function pickRun(outputDir: string, opts: TrainOptions): { id: string; existing: boolean } {
  if (opts.runId) {
    if (!/^[\w.-]+$/.test(opts.runId)) throw new IdcError(`Run id "${opts.runId}" may only contain letters, digits, ".", "_" and "-".`, 'Choose another run id.', 'BAD_RUN_ID');
    const existing = existsSync(join(runsDir(outputDir), opts.runId, 'run.json'));
    if (existing && listRuns(outputDir).find((r) => r.id === opts.runId)?.status === 'finished') {
      throw new IdcError(`Run ${opts.runId} has already finished.`, 'Start a new run (omit --run) or pick another id.', 'RUN_FINISHED');
    }
    return { id: opts.runId, existing };
  }
  if (opts.resume) {
    const open = listRuns(outputDir).filter((r) => r.status !== 'finished');
    if (open.length === 0) throw new IdcError(`No unfinished run to resume in ${runsDir(outputDir)}.`, 'Start a new run with "idc train".', 'NO_RUN');
    return { id: open[open.length - 1].id, existing: true };
  }
  let id = newRunId();
  for (let k = 2; existsSync(join(runsDir(outputDir), id)); k++) id = `${newRunId()}-${k}`;
  return { id, existing: false };
}

function lossOptions(config: IdcConfig, trainLabels: Uint8Array): LossOptions {
  const cw = config.train.classWeights;
  const classWeights: [number, number] | undefined = cw === 'none' ? undefined : cw === 'balanced' ? balancedClassWeights(trainLabels) : [cw['0'], cw['1']];
  return { kind: config.train.loss, gamma: config.train.focalGamma, classWeights };
}

function specsOf(tensors: { name: string; shape: number[] }[]): TensorSpec[] {
  return tensors.map((t) => ({ name: t.name, shape: [...t.shape] }));
}

/** Copies tensors to host memory without dataSync (unavailable on WebGPU under Node). */
async function readAll(tensors: readonly tf.Tensor[]): Promise<Float32Array[]> {
  return Promise.all(tensors.map(async (t) => Float32Array.from(await t.data())));
}

function threshMetrics(labels: ArrayLike<number>, scores: ArrayLike<number>): { accuracy: number; precision: number; recall: number; auc: number } {
  const { tp, fp, tn, fn } = confusionAt(labels, scores, 0.5);
  const n = tp + fp + tn + fn;
  return { accuracy: n ? (tp + tn) / n : NaN, precision: tp + fp ? tp / (tp + fp) : 0, recall: tp + fn ? tp / (tp + fn) : 0, auc: rocAuc(labels, scores) };
}

/** Probabilities and mean unweighted loss (plus regularisation, as Keras' val_loss) over a whole split. */
export async function predictSplit(model: tfl.LayersModel, reader: CacheReader, loss: Omit<LossOptions, 'classWeights'>, batchSize = 256, signal?: AbortSignal, onBatch?: (done: number) => void): Promise<{ scores: Float32Array; labels: Uint8Array; loss: number }> {
  const scores = new Float32Array(reader.size);
  const labels = new Uint8Array(reader.size);
  let lossSum = 0;
  let done = 0;
  for await (const b of reader.batches({ batchSize, shuffle: false })) {
    throwIfCancelled(signal);
    const n = b.y.length;
    const { probT, lossT } = tf.tidy(() => {
      const x = tf.tensor4d(toFloat(b.x, n), [n, 50, 50, 3]);
      const prob = tf.reshape(model.apply(x, { training: false }) as tf.Tensor, [n]);
      const y = tf.tensor1d(Float32Array.from(b.y));
      return { probT: prob, lossT: tf.sum(perSampleLoss(y, prob, { ...loss })) };
    });
    const [p, lArr] = await Promise.all([probT.data(), lossT.data()]);
    tf.dispose([probT, lossT]);
    const l = lArr[0];
    for (let i = 0; i < n; i++) { scores[b.indices[i]] = p[i]; labels[b.indices[i]] = b.y[i]; }
    lossSum += l;
    done += n;
    onBatch?.(done);
  }
  let reg = 0;
  for (const t of model.calculateLosses()) { reg += (await t.data())[0]; t.dispose(); }
  return { scores, labels, loss: reader.size ? lossSum / reader.size + reg : NaN };
}

/**
 * Trains the configured CNN on the cached train split, validating each epoch, with Keras'
 * EarlyStopping / ReduceLROnPlateau semantics. Every epoch ends with an atomic checkpoint
 * (weights, Adam state, callback state, history), so a killed or cancelled run resumes at the
 * next epoch and ends as if it had never stopped.
 */
export async function train(opts: TrainOptions, prepared?: PreparedData): Promise<TrainResult> {
  const { config, outputDir } = opts;
  const progress = opts.onProgress ?? noProgress;
  const emit = opts.onEvent ?? (() => {});
  const t = config.train;
  const data = prepared ?? await prepareData(outputDir, config, { cacheDir: opts.cacheDir, onProgress: progress, signal: opts.signal });
  const trainReader = data.open('train');
  const valReader = data.open('val');
  if (trainReader.size === 0) throw new IdcError('The train split is empty.', 'Check the split ratios and run "idc split" again.', 'EMPTY_SPLIT');
  if (valReader.size === 0) throw new IdcError('The validation split is empty: early stopping and learning-rate reduction need it.', 'Give split.ratios a non-zero validation share and run "idc split" again.', 'EMPTY_SPLIT');

  const { id: runId, existing } = pickRun(outputDir, opts);
  const runDir = join(runsDir(outputDir), runId);
  mkdirSync(runDir, { recursive: true });

  const model = buildModel({ ...config.model, seed: t.seed });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  // Names without tfjs' per-process layer counters, so a rebuilt model matches its checkpoint.
  const owner = new Map(model.layers.flatMap((l) => l.weights.map((w) => [w.originalName, l.getClassName()] as const)));
  const weightSpecs = specsOf(model.weights.map((w) => ({ name: `${owner.get(w.originalName)}/${w.originalName.split('/').pop()}`, shape: w.shape as number[] })));
  const arch = architectureHash(weightSpecs);
  const optimizer = tf.train.adam(t.learningRate, 0.9, 0.999, 1e-7);
  const setLr = (lr: number) => { (optimizer as unknown as { learningRate: number }).learningRate = lr; };
  const es = t.earlyStopping.enabled ? new EarlyStopping(t.earlyStopping) : undefined;
  const rlr = t.reduceLrOnPlateau.enabled ? new ReduceLrOnPlateau(t.reduceLrOnPlateau) : undefined;
  const lossOpts = lossOptions(config, trainReader.labels);

  let startEpoch = 0;
  let lr = t.learningRate;
  let history: EpochLog[] = [];
  let best: Float32Array[] | undefined;
  let warning: string | undefined;
  let stopReasonFromCkpt: 'early-stopped' | undefined;
  const ckpt = existing ? loadCheckpoint(runDir) : undefined;
  if (ckpt) {
    if (ckpt.state.architecture !== arch) {
      throw new IdcError(`The checkpoint in ${ckpt.dir} is from another model architecture.`, 'Resume with the model settings the run started with (its config.json), or start a new run.', 'CHECKPOINT_MISMATCH');
    }
    if (ckpt.state.finished) throw new IdcError(`Run ${runId} has already finished.`, 'Start a new run.', 'RUN_FINISHED');
    model.setWeights(ckpt.weights.map((a, i) => tf.tensor(a, ckpt.state.weights[i].shape)));
    if (ckpt.optimizer.length) {
      // Adam's slots are created on the first step; setWeights creates them from the saved values.
      await optimizer.setWeights(ckpt.optimizer.map((a, i) => ({ name: ckpt.state.optimizer[i].name, tensor: tf.tensor(a, ckpt.state.optimizer[i].shape) })));
    }
    startEpoch = ckpt.state.epoch;
    lr = ckpt.state.lr;
    history = ckpt.state.history;
    best = ckpt.best;
    if (es && ckpt.state.earlyStopping) es.state = ckpt.state.earlyStopping;
    if (rlr && ckpt.state.reduceLr) rlr.state = ckpt.state.reduceLr;
    warning = ckpt.warning;
    // Stopped early, then killed before the final model was written: only the ending remains.
    if (ckpt.state.stopReason === 'early-stopped') { startEpoch = t.epochs; stopReasonFromCkpt = 'early-stopped'; }
  }
  setLr(lr);
  // history.jsonl mirrors the checkpoint: lines of an epoch whose checkpoint never landed are dropped.
  writeFileAtomicSync(join(runDir, 'history.jsonl'), history.map((h) => JSON.stringify(h) + '\n').join(''));
  const backend = tf.getBackend();
  if (!existing || !existsSync(join(runDir, 'config.json'))) await writeJsonAtomic(join(runDir, 'config.json'), config);
  const createdAt = existing ? (listRuns(outputDir).find((r) => r.id === runId)?.createdAt ?? new Date().toISOString()) : new Date().toISOString();
  await writeJsonAtomic(join(runDir, 'run.json'), { id: runId, createdAt, status: 'running', backend, epochs: t.epochs } satisfies RunInfo);
  emit({ type: 'start', runId, runDir, epochs: t.epochs, startEpoch, backend, trainSize: trainReader.size, valSize: valReader.size, warning });

  const batchesPerEpoch = Math.min(trainReader.batchCount({ batchSize: t.batchSize }), t.stepsPerEpoch > 0 ? t.stepsPerEpoch : Infinity);
  const imagesPerEpoch = Math.min(trainReader.size, batchesPerEpoch * t.batchSize);
  let stopReason: 'completed' | 'early-stopped' = stopReasonFromCkpt ?? 'completed';
  const tick = throttled(progress, 250);
  try {
    for (let epoch = startEpoch; epoch < t.epochs; epoch++) {
      const t0 = performance.now();
      const aug = new Rng(t.seed).fork(`augment:${epoch}`);
      const trainScores: number[] = [];
      const trainLabels: number[] = [];
      let lossSum = 0, seen = 0, batch = 0;
      const label = `Epoch ${epoch + 1}/${t.epochs}`;
      tick({ phase: 'train.epoch', label, done: 0, total: imagesPerEpoch, unit: 'img' });
      for await (const b of trainReader.batches({ batchSize: t.batchSize, shuffle: true, seed: t.seed, epoch })) {
        if (batch >= batchesPerEpoch) break;
        throwIfCancelled(opts.signal);
        const n = b.y.length;
        const xf = augmentToFloat(b.x, n, t.augment, aug);
        const { lossT, probsT } = tf.tidy(() => {
          const x = tf.tensor4d(xf, [n, 50, 50, 3]);
          const y = tf.tensor2d(Float32Array.from(b.y), [n, 1]);
          let kept: tf.Tensor | undefined;
          const { value, grads } = tf.variableGrads(() => {
            const p = model.apply(x, { training: true }) as tf.Tensor;
            kept = tf.keep(p);
            let total = batchLoss(y, p, lossOpts);
            for (const reg of model.calculateLosses()) total = tf.add(total, reg) as tf.Scalar;
            return total;
          }, vars);
          optimizer.applyGradients(grads as tf.NamedTensorMap as Parameters<typeof optimizer.applyGradients>[0]);
          return { lossT: value, probsT: kept! };
        });
        // Async reads: WebGPU under Node has no dataSync, and GPUs overlap the copy.
        const [lossArr, probs] = await Promise.all([lossT.data(), probsT.data()]);
        tf.dispose([lossT, probsT]);
        const lossValue = lossArr[0];
        for (let i = 0; i < n; i++) { trainScores.push(probs[i]); trainLabels.push(b.y[i]); }
        lossSum += lossValue * n;
        seen += n;
        batch++;
        const ips = seen / ((performance.now() - t0) / 1000);
        tick({ phase: 'train.epoch', label, done: seen, total: imagesPerEpoch, unit: 'img', message: `loss ${(lossSum / seen).toFixed(4)}` });
        emit({ type: 'batch', runId, epoch, batch, batches: batchesPerEpoch, loss: lossSum / seen, imagesPerSecond: ips });
        opts.afterBatch?.(epoch, batch);
      }
      const trainSeconds = (performance.now() - t0) / 1000;
      const val = await predictSplit(model, valReader, { kind: lossOpts.kind, gamma: lossOpts.gamma }, 256, opts.signal, (done) => tick({ phase: 'train.validate', label: `Validating epoch ${epoch + 1}`, done, total: valReader.size, unit: 'img' }));
      const tm = threshMetrics(trainLabels, trainScores);
      const vm = threshMetrics(val.labels, val.scores);
      const log: EpochLog = {
        epoch, loss: lossSum / seen, ...tm,
        val_loss: val.loss, val_accuracy: vm.accuracy, val_precision: vm.precision, val_recall: vm.recall, val_auc: vm.auc,
        lr, seconds: (performance.now() - t0) / 1000, imagesPerSecond: seen / trainSeconds,
      };
      const logs = log as unknown as Record<string, number>;
      let stop = false;
      if (es) {
        const r = es.onEpochEnd(epoch, logs);
        if (r.saveBestWeights) best = await readAll(model.getWeights());
        if (es.state.bestEpoch === epoch && r.saveBestWeights) log.best = true;
        stop = r.stop;
      }
      if (rlr) {
        const r = rlr.onEpochEnd(logs, lr);
        if (r.reduced) { lr = r.lr; setLr(lr); log.lrReduced = true; }
      }
      history.push(log);
      const optWeights = await optimizer.getWeights();
      const state: CheckpointState = {
        version: 1, runId, epoch: epoch + 1, lr, history, earlyStopping: es?.state, reduceLr: rlr?.state, architecture: arch,
        weights: weightSpecs, optimizer: optWeights.map((w) => ({ name: w.name, shape: [...w.tensor.shape] })),
        hasBest: best !== undefined, seed: t.seed, finished: false, stopReason: stop ? 'early-stopped' : undefined, createdAt: new Date().toISOString(),
      };
      saveCheckpoint(runDir, state, await readAll(model.getWeights()), await readAll(optWeights.map((w) => w.tensor)), best);
      appendFileSync(join(runDir, 'history.jsonl'), JSON.stringify(log) + '\n');
      emit({ type: 'epoch', runId, log });
      if (stop) { stopReason = 'early-stopped'; break; }
    }
    if (es?.shouldRestoreAtEnd() && best) model.setWeights(best.map((a, i) => tf.tensor(a, weightSpecs[i].shape)));
    await saveModel(model, join(runDir, 'model'));
    const bestEpoch = es?.state.haveBestWeights ? es.state.bestEpoch : undefined;
    await writeJsonAtomic(join(runDir, 'run.json'), { id: runId, createdAt, status: 'finished', backend, epochs: history.length, bestEpoch, stopReason, finishedAt: new Date().toISOString() } satisfies RunInfo);
    emit({ type: 'end', runId, reason: stopReason, bestEpoch, epochs: history.length });
    return { runId, runDir, history, stopReason, bestEpoch, resumedFrom: ckpt ? startEpoch : undefined };
  } finally {
    trainReader.close();
    valReader.close();
    optimizer.dispose();
    model.dispose();
  }
}

