import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve, basename, dirname } from 'node:path';
import { IdcError, cancellationPoint } from '../errors';
import { writeJsonAtomic } from '../fsutil';
import { withDirLock } from '../run-lock';
import { runIdProblem } from '../run-id';
import { noProgress, throttled, type ProgressSink } from '../progress';
import { validateConfig, type IdcConfig, type EvaluateConfig, type ExplicitFields } from '../config';
import { readManifest, type ManifestRow } from '../manifest';
import { EvalContext, downsampleCurve, perPatient } from '../metrics';
import { MANIFEST_FILE } from '../organize/organize';
import { configForRun, prepareData, runData, type PreparedData } from '../train/data';
import { listRuns, runsDir, predictSplit } from '../train/train';
import { createTrainer, torchTrainer, type Trainer } from '../train/trainer-factory';
import { loadModel } from '../train/model-io';
import { foldForInference } from '../engine/model';
import { describeCacheFailure, type CacheReader } from '../cache';
import { writePredictions, errorPage } from './predictions';
import { writeGradCams, writeSlideMaps } from './visuals';
import { withTta, type TtaMode } from './tta';
import { accumulate, isThirdParty, meanOf, openModel, resolveModels, scoringEngine, seenPatients, setInputs } from './ensemble';
import { BASELINE_NAME, baselineDir, baselineLabel, hasBaseline, readBaseline, type BaselineInfo } from '../baseline';
import { calibrationReport, chooseOperatingPoints, patientIntervals, workingThresholdWarning, type ChosenPoint, type ValidationScores } from './trust';
import type { EvalReport, ExternalInfo, OperatingPointRow, Prediction } from './types';

export interface EvaluateOptions {
  outputDir: string;
  config: IdcConfig;
  /** A run of this output folder (default: the newest finished run), or a cross-validation's id (its folds as an ensemble). */
  runId?: string;
  /** Several runs: their mean probability is the score (an ensemble). */
  runIds?: string[];
  /** Or any TF.js layers model (model.json) taking 50x50x3 patches. */
  modelPath?: string;
  split?: 'test' | 'val' | 'train';
  cacheDir?: string;
  onProgress?: ProgressSink;
  signal?: AbortSignal;
  /** Another organized archive (idc evaluate --archive): see external.ts. */
  external?: ExternalData;
  /** The config fields the user set (LoadedConfig.explicit): a model without a run config takes data.stainNormalization only from them. */
  explicit?: ExplicitFields;
  /** With no run named and none finished, score with the shipped baseline model (and say so). */
  orBaseline?: boolean;
}

/** Where an external archive's data live and its evaluation goes; the thresholds come from the model's own validation patients. */
export interface ExternalData {
  /** Its manifest, split (everyone in test) and patch cache. */
  dataDir: string;
  evalDir: string;
  info: ExternalInfo;
  /** The model's validation split, when the workspace has one. */
  validation?: { data: PreparedData; patientOf: ReadonlyMap<string, string> };
}

export interface EvaluateResult { dir: string; report: EvalReport; predictions: Prediction[]; predictionsFile: string; metricsFile: string; model: tfl.LayersModel; reader: CacheReader; gradCams: number; slideMaps: string[] }

/** Slide maps written by evaluate: the worst patients (the panels render others on demand). */
export const SLIDE_MAPS = 6;

export const MAX_CURVE_POINTS = 512;
const ERROR_LIST = 200;

/** Where a model comes from and where its evaluations go; `baseline` is set for the shipped baseline model. */
export interface ResolvedModel { modelDir: string; evalRoot: string; label: string; runId?: string; baseline?: BaselineInfo; /** Why the baseline was taken without being named. */ fallback?: string }

/**
 * `modelPath` "baseline" names the shipped baseline model; `orBaseline` takes it when no run was
 * named and none has finished (idc predict, evaluate --archive), and says so in `fallback`.
 */
export function resolveModelSource(outputDir: string, opts: { runId?: string; modelPath?: string; orBaseline?: boolean }): ResolvedModel {
  if (opts.modelPath === BASELINE_NAME) return baselineSource(outputDir);
  if (opts.modelPath) {
    const p = resolve(opts.modelPath);
    const file = p.endsWith('.json') ? p : join(p, 'model.json');
    if (!existsSync(file)) throw new IdcError(`No model at ${file}.`, 'Give the path of a TF.js layers model (its model.json or the folder holding it).', 'NO_MODEL');
    const name = basename(dirname(file)).replace(/[^\w.-]/g, '_') || 'model';
    return { modelDir: file, evalRoot: join(outputDir, 'evals', name), label: file };
  }
  if (opts.runId !== undefined && runIdProblem(opts.runId)) throw new IdcError(`Run id ${runIdProblem(opts.runId)}.`, 'Give the id of a run in runs/.', 'BAD_RUN_ID');
  const runs = listRuns(outputDir);
  const run = opts.runId ? runs.find((r) => r.id === opts.runId) : [...runs].reverse().find((r) => r.status === 'finished');
  if (!run) {
    if (!opts.runId && opts.orBaseline && hasBaseline()) {
      return { ...baselineSource(outputDir), fallback: `no finished training run in ${runsDir(outputDir)}, so the shipped baseline model scores (train your own with "idc train", or name a model with --run or --model)` };
    }
    throw new IdcError(opts.runId ? `No run "${opts.runId}" in ${runsDir(outputDir)}.` : `No finished training run in ${runsDir(outputDir)}.`,
      opts.runId ? `Runs there: ${runs.map((r) => r.id).join(', ') || 'none'}.` : 'Train a model first ("idc train"), or evaluate another model with --model (--model baseline: the shipped baseline model).', 'NO_RUN');
  }
  const runDir = join(runsDir(outputDir), run.id);
  if (!existsSync(join(runDir, 'model', 'model.json'))) {
    throw new IdcError(`Run ${run.id} has no final model yet (status: ${run.status}).`, 'Resume it to the end ("idc train --resume"), then evaluate.', 'NO_MODEL');
  }
  return { modelDir: join(runDir, 'model'), evalRoot: join(runDir, 'eval'), label: run.id, runId: run.id };
}

function baselineSource(outputDir: string): ResolvedModel {
  const dir = baselineDir();
  const info = readBaseline(dir);
  return { modelDir: join(dir, 'model'), evalRoot: join(outputDir, 'evals', BASELINE_NAME), label: baselineLabel(info), baseline: info };
}

/** Where a model's split and patch cache are: a cross-validation fold's own, else the workspace's. */
export function dataOf(source: { modelDir: string; runId?: string }, cacheDir: string | undefined): { splitFile?: string; cacheDir?: string } {
  const own = source.runId ? runData(dirname(source.modelDir)) : undefined;
  return own ?? { cacheDir };
}

/**
 * The config a model's inputs are prepared with: a run's own stain normalization (its config.json
 * wins over the workspace config), the workspace config for any other model.
 */
export function inputConfig(config: IdcConfig, source: { modelDir: string; runId?: string; baseline?: BaselineInfo }): IdcConfig {
  return source.runId || source.baseline ? configForRun(config, join(dirname(source.modelDir), 'config.json')) : config;
}

/**
 * A trainer holding a run's final weights, built from the config the run trained with; undefined
 * when that config is missing or does not match the saved model (then the loaded model scores).
 * With `torchEngine` (the job's engine settings, when its backend is torch) it is a torch engine.
 */
export async function trainerForRun(configFile: string, loaded: tfl.LayersModel, torchEngine?: IdcConfig['engine']): Promise<(Trainer & { backend: string }) | undefined> {
  if (!existsSync(configFile)) return undefined;
  let trainer: (Trainer & { backend: string }) | undefined;
  try {
    const runConfig = validateConfig(JSON.parse(readFileSync(configFile, 'utf8')), configFile);
    trainer = torchEngine
      ? await torchTrainer({ ...runConfig, engine: { ...torchEngine, torch: { ...torchEngine.torch, processes: 1, nodes: 1 } } }, { kind: 'bce', gamma: 0 })
      : await createTrainer(runConfig, { kind: 'bce', gamma: 0 });
    const weights = loaded.getWeights();
    if (weights.length !== trainer.weightSpecs.length || weights.some((w, i) => w.shape.join() !== trainer!.weightSpecs[i].shape.join())) {
      await trainer.dispose();
      return undefined;
    }
    await trainer.setWeights(await Promise.all(weights.map(async (w) => Float32Array.from(await w.data()))));
    return trainer;
  } catch {
    await trainer?.dispose();
    return undefined;
  }
}

/** Checks a model takes 50x50x3 patches and gives one probability (or two softmax columns). */
export function checkModelShape(model: tfl.LayersModel, source: string): { positiveColumn: number } {
  const inShape = model.inputs[0]?.shape ?? [];
  if (model.inputs.length !== 1 || inShape.length !== 4 || inShape[1] !== 50 || inShape[2] !== 50 || inShape[3] !== 3) {
    throw new IdcError(`The model at ${source} takes input ${JSON.stringify(inShape)}; IDC patches are 50x50x3 (shape [null, 50, 50, 3]).`, 'Use a model built for 50x50 RGB patches, or add a resizing input layer to it and save it again.', 'BAD_MODEL_SHAPE');
  }
  const outShape = model.outputs[0]?.shape ?? [];
  const units = outShape[outShape.length - 1];
  if (model.outputs.length !== 1 || outShape.length !== 2 || (units !== 1 && units !== 2)) {
    throw new IdcError(`The model at ${source} outputs ${JSON.stringify(outShape)}; expected one sigmoid probability [null, 1] or two softmax columns [null, 2].`, 'Evaluate a binary classifier.', 'BAD_MODEL_SHAPE');
  }
  return { positiveColumn: units === 2 ? 1 : 0 };
}

export function preprocessor(kind: EvaluateConfig['preprocess']): (v: number) => number {
  return kind === 'none' ? (v) => v : kind === 'minusOneToOne' ? (v) => v / 127.5 - 1 : (v) => v / 255;
}

/** Scores every patch of a cached split; async reads only (WebGPU has no dataSync under Node). */
/** A loaded model as a scorer of n preprocessed patches: the positive class's probability each. */
export function modelScorer(model: tfl.LayersModel, positiveColumn: number): (x: Float32Array, n: number) => Promise<Float32Array> {
  return async (x, n) => {
    const out = tf.tidy(() => model.predict(tf.tensor4d(x.subarray(0, n * 7500), [n, 50, 50, 3]), { batchSize: n }) as tf.Tensor);
    const p = await out.data();
    out.dispose();
    const cols = positiveColumn === 1 ? 2 : 1;
    return Float32Array.from({ length: n }, (_, i) => p[i * cols + positiveColumn]);
  };
}

/** Scores every row of a split with `score` (n preprocessed patches → probabilities), with test-time augmentation. */
export async function scoreSplit(score: (x: Float32Array, n: number) => Promise<Float32Array>, reader: CacheReader, opts: { batchSize: number; preprocess: EvaluateConfig['preprocess']; tta?: TtaMode; signal?: AbortSignal; onBatch?: (done: number) => void }): Promise<Float32Array> {
  const scores = new Float32Array(reader.size);
  const scale = preprocessor(opts.preprocess);
  const xf = new Float32Array(opts.batchSize * 7500);
  const scoreTta = withTta(score, opts.tta ?? 'none');
  let done = 0;
  for await (const b of reader.batches({ batchSize: opts.batchSize, shuffle: false })) {
    await cancellationPoint(opts.signal);
    const n = b.y.length;
    for (let i = 0; i < n * 7500; i++) xf[i] = scale(b.x[i]);
    const p = await scoreTta(xf, n);
    for (let i = 0; i < n; i++) scores[b.indices[i]] = p[i];
    done += n;
    opts.onBatch?.(done);
  }
  return scores;
}

/**
 * Scores a split with a trained run (or a third-party model) and writes predictions.csv and
 * metrics.json: curves with scikit-learn's semantics, the operating points, patients and errors.
 */
export async function evaluateModel(opts: EvaluateOptions, prepared?: PreparedData): Promise<EvaluateResult> {
  const set = resolveModels(opts.outputDir, opts);
  const split = opts.split ?? opts.config.evaluate.split;
  // One job per evaluation folder: two would mix predictions, metrics and Grad-CAMs.
  const dir = opts.external?.evalDir ?? join(set.evalRoot, split);
  return withDirLock(dir, `evaluation ${opts.external ? basename(dirname(dir)) : set.runId ?? basename(set.evalRoot)}/${split}`, () => evaluateLocked(opts, prepared));
}

async function evaluateLocked(opts: EvaluateOptions, prepared?: PreparedData): Promise<EvaluateResult> {
  const { config, outputDir } = opts;
  const ev = config.evaluate;
  const split = opts.split ?? ev.split;
  const progress = opts.onProgress ?? noProgress;
  const set = resolveModels(outputDir, opts);
  const source = set.members[0];
  // A run's inputs are prepared as it was trained (its stain normalization), whatever the config says now.
  const inputs = setInputs(config, set, opts.explicit);
  const dataConfig = inputs.config;
  const ext = opts.external;
  const dataDir = ext?.dataDir ?? outputDir;
  const data = prepared && prepared.stainNormalization === dataConfig.data.stainNormalization ? prepared
    : await prepareData(dataDir, dataConfig, { ...(ext ? { cacheDir: join(dataDir, 'cache') } : set.ensemble ? { cacheDir: opts.cacheDir } : dataOf(source, opts.cacheDir)), onProgress: progress, signal: opts.signal });
  const reader = data.open(split);
  if (reader.size === 0) throw new IdcError(`The ${split} split is empty.`, 'Evaluate another split (--split) or give it a non-zero share in split.ratios.', 'EMPTY_SPLIT');
  const t0 = performance.now();
  const tick = throttled(progress, 250);
  const valData = ext ? ext.validation?.data : data;
  const valReader = split !== 'val' && valData ? openIfScored(valData, 'val') : undefined;
  // Each model in turn (one in memory at a time); an ensemble's score is the members' mean probability.
  const thirdParty = isThirdParty(set);
  const preprocess = thirdParty ? ev.preprocess : 'divide255';
  const sum = new Float64Array(reader.size);
  const valSum = valReader ? new Float64Array(valReader.size) : undefined;
  const loadedModels: tfl.LayersModel[] = [];
  let backendLabel = tf.getBackend();
  let valSeconds = 0;
  for (const [m, member] of set.members.entries()) {
    const open = await openModel(member, thirdParty, backendLabel, scoringEngine(config), ev.tta);
    loadedModels.push(open.loaded);
    backendLabel = open.backend;
    const of = set.members.length > 1 ? ` (model ${m + 1}/${set.members.length})` : '';
    try {
      accumulate(sum, await scoreSplit(open.score, reader, { batchSize: ev.batchSize, preprocess, signal: opts.signal, onBatch: (done) => tick({ phase: 'evaluate.predict', label: `Scoring ${split}${of}`, done, total: reader.size, unit: 'img' }) }));
      if (valReader && valSum) {
        // The validation patients choose the thresholds (and the temperature) applied to these ones, as in deployment.
        const tv = performance.now();
        accumulate(valSum, await scoreSplit(open.score, valReader, { batchSize: ev.batchSize, preprocess, signal: opts.signal, onBatch: (done) => tick({ phase: 'evaluate.predict', label: `Scoring val (thresholds, calibration)${of}`, done, total: valReader.size, unit: 'img' }) }));
        valSeconds += (performance.now() - tv) / 1000;
      }
      open.checkScores();
    } finally {
      await open.dispose();
    }
  }
  const scores = meanOf(sum, set.members.length);
  const valScores = valSum && meanOf(valSum, set.members.length);
  const loaded = loadedModels[0];
  valReader?.close();
  const predictSeconds = (performance.now() - t0) / 1000 - valSeconds;

  const byId = new Map<string, ManifestRow>((await readManifest(join(dataDir, MANIFEST_FILE))).map((r) => [r.id, r]));
  const ids = reader.ids;
  const labels = reader.labels;
  const predictions: Prediction[] = new Array(reader.size);
  for (let i = 0; i < reader.size; i++) {
    const row = byId.get(ids[i]);
    if (!row) throw new IdcError(`Cached patch ${ids[i]} is not in the manifest.`, 'Rebuild the cache: run "idc split" again, then evaluate.', 'STALE_CACHE');
    predictions[i] = { id: ids[i], patient: row.patient, x: row.x, y: row.y, label: labels[i] as 0 | 1, score: scores[i] };
  }
  const validation: ValidationScores | undefined = valReader && valScores
    ? { labels: valReader.labels, scores: valScores, patients: valReader.ids.map((id) => (ext ? ext.validation?.patientOf.get(id) : byId.get(id)?.patient) ?? '?') }
    : undefined;
  // Without validation patients of its own here, the baseline's thresholds are those chosen on its
  // validation patients when it was trained: pinned, beside the ones chosen on these patients.
  const shipped = set.baseline && !validation ? [set.baseline.thresholds.youden, set.baseline.thresholds.recallTarget.threshold] : [];
  const evUsed = shipped.length ? { ...ev, pinnedThresholds: [...new Set([...ev.pinnedThresholds, ...shipped])] } : ev;
  const report = buildEvalReport(labels, scores, predictions, evUsed, { model: set.label, runId: set.runId, split, seconds: predictSeconds, backend: backendLabel, validation });
  if (shipped.length) report.warnings.push(`Pinned thresholds ${shipped.map((t) => +t.toPrecision(4)).join(' and ')} are the baseline model's own (Youden's J, and recall ≥ ${set.baseline!.thresholds.recallTarget.recall}), chosen on its validation patients when it was trained.`);
  report.stainNormalization = data.stainNormalization;
  report.stainNormalizationReason = inputs.reason;
  report.tta = ev.tta;
  if (set.baseline) {
    report.baseline = { recipe: set.baseline.recipe.name, createdAt: set.baseline.createdAt };
    if (set.fallback) report.warnings.unshift(`Scored with the baseline model: ${set.fallback}.`);
  }
  if (set.ensemble) report.ensemble = set.ensemble;
  // Patients a member trained or stopped early on; an external archive's overlap with the baseline's is reported by external.ts.
  if (set.ensemble || (set.baseline && !ext)) {
    for (const [label, hit] of await seenPatients(set, new Set(predictions.map((p) => p.patient)))) {
      const [who, whose] = set.baseline ? ['The baseline model', 'its'] : [label, "the ensemble's"];
      report.warnings.push(`${who} was trained or stopped early on ${hit.length} of these patients (${hit.slice(0, 10).join(', ')}${hit.length > 10 ? ' …' : ''}): ${whose} figures on them are optimistic.`);
    }
  }
  for (const f of data.cache.failed) if (f.split === split) report.warnings.push(describeCacheFailure(f));
  if (ext) {
    report.external = ext.info;
    if (ext.info.warning) report.warnings.push(ext.info.warning);
  }
  const dir = ext?.evalDir ?? join(set.evalRoot, split);
  const predictionsFile = join(dir, 'predictions.csv');
  const metricsFile = join(dir, 'metrics.json');
  await writePredictions(predictionsFile, predictions);
  await writeJsonAtomic(metricsFile, report);

  // What the report and the gallery show beside the numbers: Grad-CAMs of the worst errors, slide maps of the worst patients.
  const rowOf = new Map(ids.map((id, i) => [id, i]));
  // People see patches as scanned; the model gets them as it was trained (normalized or not).
  const pixels = (want: readonly string[]) => reader.readRawBatch(want.map((id) => rowOf.get(id)!));
  const input = (want: readonly string[]) => reader.readBatch(want.map((id) => rowOf.get(id)!));
  const k = ev.gradCamExamples;
  const worst = [...report.errors.falseNegatives.slice(0, k), ...report.errors.falsePositives.slice(0, k)];
  tick({ phase: 'evaluate.visuals', label: 'Grad-CAM and slide maps', done: 0, total: worst.length + SLIDE_MAPS, unit: 'images' });
  const scale = preprocessor(preprocess);
  let gradCams = 0;
  // A cancel from here on leaves predictions.csv and metrics.json complete (both were written
  // atomically above) and the overlays and slide maps drawn so far, each a whole file.
  try {
    gradCams = await writeGradCams(loadedModels, worst, pixels, dir, { scale: (x) => x.map(scale), input, signal: opts.signal });
  } catch (e) {
    if (e instanceof IdcError && e.code === 'CANCELLED') throw e;
    report.warnings.push(`Grad-CAM unavailable for this model: ${(e as Error).message}`);
    await writeJsonAtomic(metricsFile, report);
  }
  const slideMaps = await writeSlideMaps(predictions, report.patients.slice(0, SLIDE_MAPS).map((p) => p.patient), pixels, dir, ev.threshold, opts.signal);
  tick({ phase: 'evaluate.visuals', label: 'Grad-CAM and slide maps', done: worst.length + SLIDE_MAPS, total: worst.length + SLIDE_MAPS, unit: 'images' });
  return { dir, report, predictions, predictionsFile, metricsFile, model: loaded, reader, gradCams, slideMaps };
}

/** The split's cache when it has patches; undefined when the split is empty or was never cached. */
function openIfScored(data: PreparedData, name: 'val'): CacheReader | undefined {
  if (!data.split.patients?.[name]?.length) return undefined;
  try {
    const r = data.open(name);
    if (r.size) return r;
    r.close();
  } catch { /* no cache for it */ }
  return undefined;
}

/** All of metrics.json from labels and scores (pure; also used on predictions read back from disk). */
export function buildEvalReport(labels: ArrayLike<number>, scores: ArrayLike<number>, predictions: readonly Prediction[], ev: Pick<EvaluateConfig, 'threshold' | 'recallTarget' | 'pinnedThresholds'> & Partial<Pick<EvaluateConfig, 'bootstrap' | 'calibration'>>, meta: { model: string; runId?: string; split: EvalReport['split']; seconds: number; backend: string; validation?: ValidationScores }): EvalReport {
  const ctx = EvalContext.from(labels, scores);
  const warnings: string[] = [];
  const auc = ctx.rocAuc();
  const ap = ctx.averagePrecision();
  const roc = ctx.rocCurve();
  const pr = ctx.precisionRecallCurve();
  for (const w of [auc.warning, ap.warning, roc.warning, pr.warning]) if (w && !warnings.includes(w)) warnings.push(w);

  // Thresholds a deployment would fix beforehand are chosen on validation patients when there are some.
  const val = meta.validation && meta.split !== 'val' && meta.validation.labels.length ? meta.validation : undefined;
  const valCtx = val && EvalContext.from(val.labels, val.scores);
  const chosen = chooseOperatingPoints(ctx, meta.split, ev.recallTarget, valCtx);
  warnings.push(...chosen.warnings);
  const shifted = workingThresholdWarning(valCtx, ev.threshold);
  if (shifted) warnings.push(shifted);
  const points: ChosenPoint[] = [{ name: 'default', label: `working threshold ${ev.threshold}`, threshold: ev.threshold, chosenOn: 'config' }, ...chosen.points];
  for (const t of ev.pinnedThresholds) points.push({ name: 'pinned', label: `pinned ${t}`, threshold: t, chosenOn: 'config' });
  const P = ctx.positives, N = ctx.negatives;
  const operatingPoints: OperatingPointRow[] = points.map((p) => {
    const m = ctx.metricsAt(p.threshold);
    return { ...m, name: p.name, label: p.label, fpr: N ? m.fp / N : NaN, tpr: P ? m.tp / P : NaN, chosenOn: p.chosenOn };
  });

  const nearest = (thresholds: ArrayLike<number>, t: number): number => {
    let best = 0;
    for (let i = 0; i < thresholds.length; i++) if (Math.abs(thresholds[i] - t) < Math.abs(thresholds[best] - t)) best = i;
    return best;
  };
  const rocKeep = downsampleCurve({ x: roc.fpr, y: roc.tpr }, MAX_CURVE_POINTS, operatingPoints.map((o) => nearest(roc.thresholds, o.threshold)));
  const prKeep = downsampleCurve({ x: pr.recall, y: pr.precision }, MAX_CURVE_POINTS, operatingPoints.map((o) => nearest(pr.thresholds, o.threshold)));
  const pick = (a: ArrayLike<number>, keep: Uint32Array): number[] => Array.from(keep, (i) => a[i]);
  // PR has one more point than thresholds (the appended precision 1, recall 0); JSON cannot hold Infinity.
  const prThresholds = Array.from(prKeep, (i) => (i < pr.thresholds.length ? pr.thresholds[i] : null)) as number[];
  const rocThresholds = pick(roc.thresholds, rocKeep).map((t) => (Number.isFinite(t) ? t : null)) as number[];

  const fn = errorPage(predictions, 'fn', ev.threshold, 0, ERROR_LIST);
  const fp = errorPage(predictions, 'fp', ev.threshold, 0, ERROR_LIST);
  const n = labels.length;
  const patientOf = predictions.map((p) => p.patient);
  const intervals = patientIntervals(labels, scores, patientOf, operatingPoints, ev.bootstrap);
  const calibration = calibrationReport(labels, scores, meta.split, ev.calibration, val);
  // The intervals' own warnings stay in intervals.warnings, shown beside the intervals.
  for (const w of calibration.warnings) if (!warnings.includes(w)) warnings.push(w);
  const validation = val && valCtx ? { split: 'val' as const, n: val.labels.length, positives: valCtx.positives, patients: new Set(Array.from(val.patients)).size, auc: valCtx.positives && valCtx.negatives ? valCtx.rocAuc().value : null } : undefined;
  return {
    version: 1, createdAt: new Date().toISOString(), model: meta.model, runId: meta.runId, split: meta.split,
    n, positives: P, negatives: N,
    auc: Number.isFinite(auc.value) ? auc.value : null, averagePrecision: Number.isFinite(ap.value) && !ap.warning ? ap.value : (P === 0 ? null : ap.value),
    warnings,
    roc: { fpr: pick(roc.fpr, rocKeep), tpr: pick(roc.tpr, rocKeep), thresholds: rocThresholds },
    pr: { precision: pick(pr.precision, prKeep), recall: pick(pr.recall, prKeep), thresholds: prThresholds },
    threshold: ev.threshold,
    operatingPoints,
    patients: perPatient(predictions.map((p) => ({ patient: p.patient, label: p.label ?? 0, score: p.score })), ev.threshold),
    errors: { falseNegatives: fn.items, falsePositives: fp.items, totalFalseNegatives: fn.total, totalFalsePositives: fp.total },
    seconds: meta.seconds, imagesPerSecond: meta.seconds > 0 ? n / meta.seconds : 0, backend: meta.backend,
    intervals, calibration: calibration.report, validation,
  };
}
