import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { IdcError, cancellationPoint } from '../errors';
import { writeJsonAtomic, writeFileAtomicSync, mkdirpOrExplain, appendFileSyncExplained, wrapWriteError } from '../fsutil';
import { lockDir, type DirLock } from '../run-lock';
import { runIdProblem } from '../run-id';
import { Rng } from '../rng';
import { noProgress, throttled, type ProgressSink } from '../progress';
import type { IdcConfig } from '../config';
import type { CacheFailure, CacheReader } from '../cache';
import { rocAuc, confusionAt } from '../metrics/auc';
import { EarlyStopping, ReduceLrOnPlateau } from './callbacks';
import { sampleLoss, balancedClassWeights, type LossOptions } from './losses';
import { AUGMENT_PARAMS, augmentToFloat, drawnAugmentation, toFloat } from './augment';
import { saveCheckpoint, loadCheckpoint, type CheckpointState, type EpochLog } from './checkpoint';
import { createTrainer, type Trainer } from './trainer-factory';
import { readsCacheRows, type CacheRowTrainer } from './trainer';
import { configForRun, prepareData, runData, type PreparedData } from './data';
import { oneClassValidationWarning } from './validation-check';

export type TrainEvent =
  | { type: 'start'; runId: string; runDir: string; epochs: number; startEpoch: number; backend: string; trainSize: number; valSize: number; warning?: string; unreadable?: CacheFailure[] }
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
  /** Send float pixels even to a trainer that reads the cache itself (tests and benchmarks compare both). */
  pixelsToTrainer?: boolean;
}

export interface TrainResult { runId: string; runDir: string; history: EpochLog[]; stopReason: 'completed' | 'early-stopped'; bestEpoch?: number; resumedFrom?: number }

/**
 * run.json. Every status but 'finished' is resumable: 'stopped' (cancelled), 'failed' (an error,
 * in `error`), and 'running', which a killed job leaves behind as well as a live one.
 */
export interface RunInfo {
  id: string; createdAt: string; status: 'running' | 'finished' | 'stopped' | 'failed'; backend: string; epochs: number; bestEpoch?: number; stopReason?: string; finishedAt?: string;
  /** When a 'stopped' or 'failed' run ended. */
  stoppedAt?: string;
  /** Why a 'failed' run failed (the error's message). */
  error?: string;
  /** What makes this run's validation numbers unreliable (a one-class validation split), for the Training panel. */
  warnings?: string[];
}

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

/**
 * Claims a new run folder. mkdir without `recursive` fails on EEXIST, so two jobs started in the
 * same second never share one: the second gets a suffix.
 */
export function claimNewRun(outputDir: string, makeId: () => string = newRunId): string {
  mkdirpOrExplain(runsDir(outputDir));
  const base = makeId();
  for (let k = 1; ; k++) {
    const id = k === 1 ? base : `${base}-${k}`;
    try {
      mkdirSync(join(runsDir(outputDir), id));
      return id;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw wrapWriteError(e, join(runsDir(outputDir), id));
    }
  }
}

interface PickedRun { id: string; existing: boolean; created?: boolean }

function pickRun(outputDir: string, opts: TrainOptions): PickedRun {
  if (opts.runId !== undefined) {
    const problem = runIdProblem(opts.runId);
    if (problem) throw new IdcError(`Run id ${problem}.`, 'Choose a plain name, e.g. "baseline-2".', 'BAD_RUN_ID');
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
  return { id: claimNewRun(outputDir), existing: false, created: true };
}

function lossOptions(config: IdcConfig, trainLabels: Uint8Array): LossOptions {
  const cw = config.train.classWeights;
  const classWeights: [number, number] | undefined = cw === 'none' ? undefined : cw === 'balanced' ? balancedClassWeights(trainLabels) : [cw['0'], cw['1']];
  return { kind: config.train.loss, gamma: config.train.focalGamma, classWeights };
}

function threshMetrics(labels: ArrayLike<number>, scores: ArrayLike<number>): { accuracy: number; precision: number; recall: number; auc: number } {
  const { tp, fp, tn, fn } = confusionAt(labels, scores, 0.5);
  const n = tp + fp + tn + fn;
  return { accuracy: n ? (tp + tn) / n : NaN, precision: tp + fp ? tp / (tp + fp) : 0, recall: tp + fn ? tp / (tp + fn) : 0, auc: rocAuc(labels, scores) };
}

/** Probabilities and mean unweighted loss (plus regularisation, as Keras' val_loss) over a whole split. */
export async function predictSplit(trainer: Pick<Trainer, 'predict' | 'regularizationLoss'>, reader: CacheReader, loss: Omit<LossOptions, 'classWeights'>, batchSize = 256, signal?: AbortSignal, onBatch?: (done: number) => void, rows?: Pick<CacheRowTrainer, 'predictRows'>): Promise<{ scores: Float32Array; labels: Uint8Array; loss: number }> {
  const scores = new Float32Array(reader.size);
  const labels = new Uint8Array(reader.size);
  const xf = rows ? undefined : new Float32Array(batchSize * 7500);
  let lossSum = 0;
  let done = 0;
  for await (const b of reader.batches({ batchSize, shuffle: false, pixels: !rows })) {
    await cancellationPoint(signal);
    const n = b.y.length;
    const p = rows ? await rows.predictRows(reader.split, b.indices) : await trainer.predict(toFloat(b.x, n, xf), n);
    for (let i = 0; i < n; i++) {
      scores[b.indices[i]] = p[i];
      labels[b.indices[i]] = b.y[i];
      lossSum += sampleLoss(b.y[i], p[i], loss);
    }
    done += n;
    onBatch?.(done);
  }
  const reg = await trainer.regularizationLoss();
  return { scores, labels, loss: reader.size ? lossSum / reader.size + reg : NaN };
}

/**
 * Trains the configured CNN on the cached train split, validating each epoch, with Keras'
 * EarlyStopping / ReduceLROnPlateau semantics. Every epoch ends with an atomic checkpoint
 * (weights, Adam state, callback state, history), so a killed or cancelled run resumes at the
 * next epoch and ends as if it had never stopped.
 */
export async function train(opts: TrainOptions, prepared?: PreparedData): Promise<TrainResult> {
  const picked = pickRun(opts.outputDir, opts);
  const runDir = join(runsDir(opts.outputDir), picked.id);
  const created = picked.created || !existsSync(runDir);
  let lock: DirLock | undefined;
  try {
    // One job per run: a second one would interleave history and overwrite config and model.
    lock = lockDir(runDir, `run ${picked.id}`);
    // Another job may have finished or started the run while it held it: look again.
    const run = picked.created ? picked : pickRun(opts.outputDir, { ...opts, runId: picked.id });
    return await trainRun(opts, prepared, run, lock.note);
  } finally {
    // A new run that never reached run.json (empty split, cancelled while caching) leaves no folder.
    if (created && lock && !existsSync(join(runDir, 'run.json'))) rmSync(runDir, { recursive: true, force: true });
    lock?.release();
  }
}

async function trainRun(opts: TrainOptions, prepared: PreparedData | undefined, run: PickedRun, lockNote: string | undefined): Promise<TrainResult> {
  const { config, outputDir } = opts;
  const progress = opts.onProgress ?? noProgress;
  const emit = opts.onEvent ?? (() => {});
  const t = config.train;
  const { id: runId, existing } = run;
  const runDir = join(runsDir(outputDir), runId);
  if (existing) {
    // Resumed on other inputs it would end as neither run: refuse, as for another architecture.
    const was = configForRun(config, join(runDir, 'config.json')).data.stainNormalization;
    if (was !== config.data.stainNormalization) {
      throw new IdcError(`Run ${runId} was trained with data.stainNormalization "${was}"; idc.config.json now says "${config.data.stainNormalization}".`, `Set data.stainNormalization back to "${was}" to resume it, or start a new run.`, 'CHECKPOINT_MISMATCH');
    }
  }
  const own = runData(runDir);
  const data = prepared && prepared.stainNormalization === config.data.stainNormalization ? prepared
    : await prepareData(outputDir, config, { cacheDir: own?.cacheDir ?? opts.cacheDir, splitFile: own?.splitFile, onProgress: progress, signal: opts.signal });
  const trainReader = data.open('train');
  const valReader = data.open('val');
  if (trainReader.size === 0) throw new IdcError('The train split is empty.', 'Check the split ratios and run "idc split" again.', 'EMPTY_SPLIT');
  if (valReader.size === 0) throw new IdcError('The validation split is empty: early stopping and learning-rate reduction need it.', 'Give split.ratios a non-zero validation share and run "idc split" again.', 'EMPTY_SPLIT');

  mkdirpOrExplain(runDir);

  const lossOpts = lossOptions(config, trainReader.labels);
  const trainer = await createTrainer(config, lossOpts, 'train');
  const weightSpecs = trainer.weightSpecs;
  const arch = trainer.architecture;
  const es = t.earlyStopping.enabled ? new EarlyStopping(t.earlyStopping) : undefined;
  const rlr = t.reduceLrOnPlateau.enabled ? new ReduceLrOnPlateau(t.reduceLrOnPlateau) : undefined;

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
    await trainer.setWeights(ckpt.weights);
    await trainer.setOptimizerState(ckpt.state.optimizer, ckpt.optimizer);
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
  trainer.setLearningRate(lr);
  // history.jsonl mirrors the checkpoint: lines of an epoch whose checkpoint never landed are dropped.
  writeFileAtomicSync(join(runDir, 'history.jsonl'), history.map((h) => JSON.stringify(h) + '\n').join(''));
  // The torch engine reads the cache itself when it can: row numbers and augmentation draws cross the pipe, not pixels.
  let rows: (Trainer & CacheRowTrainer) | undefined;
  let backend = trainer.backend;
  if (readsCacheRows(trainer) && !opts.pixelsToTrainer) {
    const opened = await trainer.openRows([trainReader, valReader]);
    if (opened.ok) {
      rows = trainer;
      backend = `${backend}; cache ${opened.where}`;
    } else {
      const note = `the torch engine cannot read the patch cache itself (${opened.reason}), so this process sends it the pixels.`;
      warning = warning ? `${warning} ${note}` : note;
    }
  }
  if (!existing || !existsSync(join(runDir, 'config.json'))) await writeJsonAtomic(join(runDir, 'config.json'), config);
  const createdAt = existing ? (listRuns(outputDir).find((r) => r.id === runId)?.createdAt ?? new Date().toISOString()) : new Date().toISOString();
  // A one-class validation split leaves val AUC undefined and the callbacks watching one class.
  const valWarning = oneClassValidationWarning(valReader.labels, t);
  const warnings = valWarning ? [valWarning] : undefined;
  await writeJsonAtomic(join(runDir, 'run.json'), { id: runId, createdAt, status: 'running', backend, epochs: t.epochs, warnings } satisfies RunInfo);
  if (valWarning) warning = warning ? `${valWarning} ${warning}` : valWarning;
  const unnormalized = Object.values(data.stains).flatMap((tab) => Object.entries(tab?.patients ?? {}).filter(([, e]) => 'skipped' in e).map(([p]) => p));
  if (unnormalized.length) {
    const note = `no stain estimate for patient${unnormalized.length > 1 ? 's' : ''} ${unnormalized.slice(0, 10).join(', ')}${unnormalized.length > 10 ? ' …' : ''} (too little tissue); their patches are used as scanned.`;
    warning = warning ? `${warning} ${note}` : note;
  }
  if (lockNote) warning = warning ? `${warning} ${lockNote}` : lockNote;
  // Patches the cache could not decode are left out: said at every start, not only when the cache was built.
  const unreadable = data.cache.failed.filter((f) => f.split !== 'test');
  emit({ type: 'start', runId, runDir, epochs: t.epochs, startEpoch, backend, trainSize: trainReader.size, valSize: valReader.size, warning, unreadable });

  const batchesPerEpoch = Math.min(trainReader.batchCount({ batchSize: t.batchSize }), t.stepsPerEpoch > 0 ? t.stepsPerEpoch : Infinity);
  const imagesPerEpoch = Math.min(trainReader.size, batchesPerEpoch * t.batchSize);
  let stopReason: 'completed' | 'early-stopped' = stopReasonFromCkpt ?? 'completed';
  const tick = throttled(progress, 250);
  try {
    for (let epoch = startEpoch; epoch < t.epochs; epoch++) {
      const t0 = performance.now();
      const aug = new Rng(t.seed).fork(`augment:${epoch}`);
      const xf = rows ? undefined : new Float32Array(t.batchSize * 7500);
      const drawn = rows ? new Float64Array(t.batchSize * AUGMENT_PARAMS) : undefined;
      const trainScores: number[] = [];
      const trainLabels: number[] = [];
      let lossSum = 0, seen = 0, batch = 0;
      const label = `Epoch ${epoch + 1}/${t.epochs}`;
      tick({ phase: 'train.epoch', label, done: 0, total: imagesPerEpoch, unit: 'img' });
      for await (const b of trainReader.batches({ batchSize: t.batchSize, shuffle: true, seed: t.seed, epoch, pixels: !rows })) {
        if (batch >= batchesPerEpoch) break;
        await cancellationPoint(opts.signal);
        const n = b.y.length;
        const step = epoch * batchesPerEpoch + batch;
        const { loss: lossValue, probs } = rows
          ? await rows.trainRows({ split: 'train', indices: b.indices, y: b.y, ...drawnAugmentation(n, t.augment, aug, drawn) }, step)
          : await trainer.trainStep(augmentToFloat(b.x, n, t.augment, aug, xf), b.y, n, step);
        if (!Number.isFinite(lossValue)) throw nonFiniteLoss(lossValue, `epoch ${epoch + 1}, step ${batch + 1} of ${batchesPerEpoch}`, runId, lr, history.length);
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
      if (t.preciseBatchNorm > 0) await recomputeBatchNorm(trainer, rows, trainReader, t, epoch, Math.min(t.preciseBatchNorm, batchesPerEpoch), opts.signal, tick);
      const val = await predictSplit(trainer, valReader, { kind: lossOpts.kind, gamma: lossOpts.gamma }, 256, opts.signal, (done) => tick({ phase: 'train.validate', label: `Validating epoch ${epoch + 1}`, done, total: valReader.size, unit: 'img' }), rows);
      // The epoch's last update can break the weights with the train loss still finite: not into a checkpoint either.
      if (!Number.isFinite(val.loss)) throw nonFiniteLoss(val.loss, `epoch ${epoch + 1}, in validation after its last step`, runId, lr, history.length);
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
        if (r.saveBestWeights) best = await trainer.getWeights();
        if (es.state.bestEpoch === epoch && r.saveBestWeights) log.best = true;
        stop = r.stop;
      }
      if (rlr) {
        const r = rlr.onEpochEnd(logs, lr);
        if (r.reduced) { lr = r.lr; trainer.setLearningRate(lr); log.lrReduced = true; }
      }
      history.push(log);
      const optState = await trainer.getOptimizerState();
      const state: CheckpointState = {
        version: 1, runId, epoch: epoch + 1, lr, history, earlyStopping: es?.state, reduceLr: rlr?.state, architecture: arch,
        weights: weightSpecs, optimizer: optState.specs,
        hasBest: best !== undefined, seed: t.seed, finished: false, stopReason: stop ? 'early-stopped' : undefined, createdAt: new Date().toISOString(),
      };
      saveCheckpoint(runDir, state, await trainer.getWeights(), optState.data, best);
      appendFileSyncExplained(join(runDir, 'history.jsonl'), JSON.stringify(log) + '\n');
      emit({ type: 'epoch', runId, log });
      if (stop) { stopReason = 'early-stopped'; break; }
    }
    if (es?.shouldRestoreAtEnd() && best) await trainer.setWeights(best);
    await trainer.saveModel(join(runDir, 'model'));
    const bestEpoch = es?.state.haveBestWeights ? es.state.bestEpoch : undefined;
    await writeJsonAtomic(join(runDir, 'run.json'), { id: runId, createdAt, status: 'finished', backend, epochs: history.length, bestEpoch, stopReason, finishedAt: new Date().toISOString(), warnings } satisfies RunInfo);
    emit({ type: 'end', runId, reason: stopReason, bestEpoch, epochs: history.length });
    return { runId, runDir, history, stopReason, bestEpoch, resumedFrom: ckpt ? startEpoch : undefined };
  } catch (e) {
    // Say so in run.json (the Training panel and the extension read it); still resumable from its checkpoint.
    // As the job host counts it: an error once the job was cancelled (an engine stopped with it) is a stop too.
    const cancelled = (e instanceof IdcError && e.code === 'CANCELLED') || opts.signal?.aborted === true;
    const ended: RunInfo = { id: runId, createdAt, status: cancelled ? 'stopped' : 'failed', backend, epochs: t.epochs, stoppedAt: new Date().toISOString(), error: cancelled ? undefined : (e as Error).message, warnings };
    await writeJsonAtomic(join(runDir, 'run.json'), ended).catch(() => { /* the original error matters more */ });
    throw e;
  } finally {
    trainReader.close();
    valReader.close();
    await trainer.dispose();
  }
}


/**
 * train.preciseBatchNorm: the moving statistics become the mean over that many training batches (at most the epoch's)
 * through the epoch's final weights (the epoch's order, fresh augmentation draws, no dropout). Validation,
 * early stopping and the checkpoint then see statistics of these weights, not of the last ~10 steps.
 */
async function recomputeBatchNorm(trainer: Trainer, rows: (Trainer & CacheRowTrainer) | undefined, reader: CacheReader, t: IdcConfig['train'], epoch: number, total: number, signal: AbortSignal | undefined, tick: ProgressSink): Promise<void> {
  const aug = new Rng(t.seed).fork(`precise-bn:${epoch}`);
  const xf = rows ? undefined : new Float32Array(t.batchSize * 7500);
  const drawn = rows ? new Float64Array(t.batchSize * AUGMENT_PARAMS) : undefined;
  const label = `Batch-norm statistics, epoch ${epoch + 1}`;
  let count = 0;
  for await (const b of reader.batches({ batchSize: t.batchSize, shuffle: true, seed: t.seed, epoch, pixels: !rows })) {
    if (count >= total) break;
    await cancellationPoint(signal);
    const n = b.y.length;
    count++;
    if (rows) await rows.accumulateBatchNormRows({ split: 'train', indices: b.indices, y: b.y, ...drawnAugmentation(n, t.augment, aug, drawn) }, count);
    else await trainer.accumulateBatchNorm(augmentToFloat(b.x, n, t.augment, aug, xf), n, count);
    tick({ phase: 'train.batchnorm', label, done: count, total, unit: 'batch' });
  }
}

/**
 * A NaN or infinite loss: training cannot recover from it, so it stops there, before an epoch
 * with broken weights reaches a checkpoint.
 */
function nonFiniteLoss(value: number, where: string, runId: string, lr: number, goodEpochs: number): IdcError {
  const kept = goodEpochs ? `Its checkpoint of epoch ${goodEpochs}, the last good one, is kept.` : 'No epoch of it had finished, so it has no checkpoint.';
  return new IdcError(
    `Training run ${runId} stopped: the loss became ${Number.isNaN(value) ? 'NaN' : 'infinite'} at ${where}.`,
    `Lower train.learningRate in idc.config.json (the run used ${lr >= 1e4 || lr < 1e-4 ? lr.toExponential() : lr}; the default is 0.001) and start a new run; if the rate is already small, check train.classWeights and the data (organize-report.json lists skipped and suspicious patches). ${kept}`,
    'NON_FINITE_LOSS',
  );
}
