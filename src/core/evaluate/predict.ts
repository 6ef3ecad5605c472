import { readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { IdcError, isIdcError, throwIfCancelled, cancellationPoint } from '../errors';
import { mkdirpOrExplain, placeIn, readRegularFileSync, wrapWriteError, writeJsonAtomic } from '../fsutil';
import { withDirLock } from '../run-lock';
import { noProgress, throttled, type ProgressSink } from '../progress';
import type { ExplicitFields, IdcConfig } from '../config';
import { parseUnlabelledName } from '../naming';
import { listDirectory } from '../organize/listing';
import type { Issue } from '../organize/layout';
import { decodeRgb, placePatch, PATCH_BYTES } from '../cache/pixels';
import { applyStainTable, stainTableOf } from '../cache/stains';
import { preprocessor } from './evaluate';
import { isThirdParty, meanOf, openModel, resolveModels, scoringEngine, setInputs, type ModelSet } from './ensemble';
import { deploySettings, type DeploySettings } from './deploy';
import { applyTemperature } from '../metrics/calibration';
import * as tf from '@tensorflow/tfjs-core';
import { writePredictions } from './predictions';
import { writeSlideMaps } from './visuals';
import type { Prediction } from './types';

export interface PredictOptions {
  folder: string;
  outputDir: string;
  config: IdcConfig;
  runId?: string;
  /** Several runs (or a cross-validation's id as runId): their mean probability scores. */
  runIds?: string[];
  modelPath?: string;
  /** The workspace's raw archive (paths.archive, resolved): never written into. */
  archive?: string;
  /** The config fields the user set (LoadedConfig.explicit): a model without a run config takes data.stainNormalization only from them. */
  explicit?: ExplicitFields;
  /** With no run named and none finished, score with the shipped baseline model (and say so). */
  orBaseline?: boolean;
  onProgress?: ProgressSink;
  signal?: AbortSignal;
}

export interface PatientPrediction { patient: string; n: number; predictedPositive: number; meanScore: number; maxScore: number }

interface PredictOutputs {
  dir: string;
  predictionsFile: string;
  predictions: Prediction[];
  /** Decoded 50x50x3 pixels, aligned with `predictions` (for slide maps and thumbnails). */
  pixels: Uint8Array;
  skipped: Issue[];
  /** The patch files among `skipped` that could not be decoded: warnings, each named with its reason. */
  unreadable: Issue[];
  patients: PatientPrediction[];
  /** Slide-map PNG files written, one per patient. */
  slideMaps?: string[];
  /** How the model's inputs were prepared (the run's data.stainNormalization). */
  stainNormalization: 'none' | 'macenko';
  /** Which applied and why, in words ("Macenko, as run r1 was trained"). */
  stainNormalizationReason: string;
  /** Set when the folder's name was taken by another folder's predictions: where these went instead. */
  note?: string;
  /** The model that scored, as outputs name it ("baseline model (shipped; …)" for the baseline). */
  model: string;
  /** Set when the shipped baseline model scored without being named: why. */
  baselineFallback?: string;
}

/** The threshold the labels (predicted_label, patient counts, slide maps) use and the temperature, with why (deploy.ts). */
export type PredictResult = PredictOutputs & DeploySettings;

/**
 * Scores the patches of a folder that has no labels (a new patient's slide): any layout, names with
 * or without the `_class<C>` suffix. A class in the name is kept as the label but not required.
 */
export async function predictFolder(opts: PredictOptions): Promise<PredictResult> {
  refuseOutputInside(opts.outputDir, folderToScore(resolve(opts.folder)), opts.archive);
  // A missing run or model fails before the predictions folder is claimed.
  const set = resolveModels(opts.outputDir, opts);
  const dir = predictionsDir(opts.outputDir, resolve(opts.folder));
  // One job per predictions folder: two would mix their predictions and slide maps.
  return withDirLock(dir, `predictions folder ${relative(opts.outputDir, dir)}`, () => predictLocked(opts, set));
}

/** In each predictions/<name>/ folder: the real path of the folder it scored, written first (its claim). */
export const PREDICTIONS_SOURCE_FILE = 'source.json';

const outputName = (folder: string): string => basename(folder).replace(/[^\w.-]/g, '_') || 'folder';

/**
 * Where the predictions for `folder` go: predictions/<its name>/ when that is free or already holds
 * this folder's predictions, else <name>-2, -3 …, so folders of one name (a/p1, b/p1) never replace
 * each other's and the same folder always lands in the same place.
 */
function predictionsDir(outputDir: string, folder: string): string {
  const real = folderToScore(folder);
  for (let k = 1; ; k++) {
    const dir = join(outputDir, 'predictions', k === 1 ? outputName(real) : `${outputName(real)}-${k}`);
    const owner = predictionsOwner(dir);
    if (owner === real) return dir;
    if (owner !== undefined) continue;
    mkdirpOrExplain(dir);
    const file = join(dir, PREDICTIONS_SOURCE_FILE);
    try {
      writeFileSync(file, JSON.stringify({ folder: real }) + '\n', { flag: 'wx' });
      return dir;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw wrapWriteError(e, file);
      if (predictionsOwner(dir) === real) return dir; // another job scoring the same folder claimed it first
    }
  }
}

/**
 * Whose predictions `dir` holds: the real path in source.json (summary.json's folder for outputs
 * older than source.json), '' when that cannot be read (not ours to replace), undefined when free.
 */
function predictionsOwner(dir: string): string | undefined {
  for (const file of [PREDICTIONS_SOURCE_FILE, 'summary.json']) {
    let folder: unknown;
    try {
      folder = (JSON.parse(readFileSync(join(dir, file), 'utf8')) as { folder?: unknown } | null)?.folder;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return '';
    }
    if (typeof folder !== 'string') return '';
    try { return realpathSync(folder); } catch { return folder; }
  }
  return undefined;
}

/**
 * Before anything is written: the output folder must lie outside the raw archive (never written to)
 * and outside the folder being scored (its slide maps would be read back as patches next time).
 */
function refuseOutputInside(outputDir: string, folder: string, archive: string | undefined): void {
  const out = resolve(outputDir);
  const where = archive === undefined ? undefined : placeIn(archive, out);
  if (where) {
    throw new IdcError(where === 'same' ? `The output folder ${out} is the archive itself.` : `The output folder ${out} is inside the archive ${resolve(archive!)}.`,
      'Choose an output folder outside the raw archive (--out or paths.output): the archive is never written to.', 'OUT_IN_ARCHIVE');
  }
  const inFolder = placeIn(folder, out);
  if (inFolder) {
    throw new IdcError(inFolder === 'same' ? `The output folder ${out} is the folder it scores.` : `The output folder ${out} is inside the folder it scores, ${folder}.`,
      'Choose an output folder outside it (--out or paths.output): predict writes slide maps and CSVs there, and the next run would read them back as patches.', 'OUT_IN_SCORED_FOLDER');
  }
}

/** The folder of patches to score, as its real path. */
function folderToScore(folder: string): string {
  try {
    if (statSync(folder).isDirectory()) return realpathSync(folder);
  } catch { /* reported below */ }
  throw new IdcError(`No folder at ${folder}.`, 'Give the folder that holds the patches to score (PNG files named <patient>_idx5_x<X>_y<Y>[_class<C>].png).', 'NO_FOLDER');
}

async function predictLocked(opts: PredictOptions, set: ModelSet): Promise<PredictResult> {
  const progress = opts.onProgress ?? noProgress;
  const folder = resolve(opts.folder);
  folderToScore(folder);
  const listing = listDirectory(folder, { layout: false }); // any layout: no <patient>/<0|1>/ checks
  const skipped: Issue[] = [...listing.issues];
  const unreadable: Issue[] = [];
  const found: { rel: string; name: NonNullable<ReturnType<typeof parseUnlabelledName>> }[] = [];
  for (const e of listing.entries) {
    const name = parseUnlabelledName(e.parts[e.parts.length - 1]);
    if (name) found.push({ rel: e.rel, name });
    else skipped.push({ path: e.rel, severity: 'skipped', reason: 'name is not <patient>_idx5_x<X>_y<Y>[_class<C>].png' });
  }
  if (found.length === 0) throw new IdcError(`No patch files in ${folder}.`, 'Patches are PNG files named <patient>_idx5_x<X>_y<Y>.png (a _class0/_class1 suffix is allowed).', 'NO_PATCHES');
  const edge = opts.config.data.edgePatches;
  const pixels = new Uint8Array(found.length * PATCH_BYTES);
  const kept: typeof found = [];
  const tick = throttled(progress, 250);
  for (const f of found) {
    if ((kept.length & 255) === 0) throwIfCancelled(opts.signal);
    try {
      const img = decodeRgb(readRegularFileSync(join(folder, f.rel)));
      if (img.width > 50 || img.height > 50) throw new Error(`unexpected size ${img.width}x${img.height}`);
      if ((img.width < 50 || img.height < 50) && edge === 'skip') { skipped.push({ path: f.rel, severity: 'skipped', reason: `edge patch ${img.width}x${img.height} (data.edgePatches is "skip")` }); continue; }
      placePatch(img, edge === 'pad' ? 'pad' : 'resize', pixels, kept.length * PATCH_BYTES);
      kept.push(f);
    } catch (e) {
      const issue: Issue = { path: f.rel, severity: 'skipped', reason: isIdcError(e) ? e.message : `cannot decode: ${(e as Error).message}` };
      skipped.push(issue);
      unreadable.push(issue);
    }
    tick({ phase: 'predict.decode', label: 'Reading patches', done: kept.length, total: found.length, unit: 'files' });
  }
  const thirdParty = isThirdParty(set);
  const scale = preprocessor(thirdParty ? opts.config.evaluate.preprocess : 'divide255');
  // Normalized as the run was trained; the slide maps keep the patches as scanned.
  const inputs = setInputs(opts.config, set, opts.explicit);
  const stainMode = inputs.config.data.stainNormalization;
  const stainReason = inputs.reason;
  const keptPixels = pixels.subarray(0, kept.length * PATCH_BYTES);
  let input = keptPixels;
  let stains: ReturnType<typeof stainTableOf> | undefined;
  if (stainMode === 'macenko') {
    const patientsOfRows = kept.map((f) => f.name.patient);
    stains = stainTableOf(keptPixels, patientsOfRows);
    input = keptPixels.slice();
    applyStainTable(input, patientsOfRows, stains);
  }
  const bs = opts.config.evaluate.batchSize;
  const xf = new Float32Array(bs * 7500);
  // Members one after another: one model (and its worker threads) in memory at a time.
  const sum = new Float64Array(kept.length);
  for (const [m, source] of set.members.entries()) {
    const member = await openModel(source, thirdParty, tf.getBackend(), scoringEngine(opts.config), opts.config.evaluate.tta);
    try {
      for (let start = 0; start < kept.length; start += bs) {
        await cancellationPoint(opts.signal);
        const n = Math.min(bs, kept.length - start);
        for (let i = 0; i < n * 7500; i++) xf[i] = scale(input[start * PATCH_BYTES + i]);
        const p = await member.score(xf, n);
        for (let i = 0; i < n; i++) sum[start + i] += p[i];
        tick({ phase: 'predict.score', label: set.members.length > 1 ? `Scoring with model ${m + 1}/${set.members.length}` : 'Scoring', done: start + n, total: kept.length, unit: 'img' });
      }
      member.checkScores();
    } finally {
      await member.dispose();
      member.loaded.dispose();
    }
  }
  const scores = meanOf(sum, set.members.length);
  // The threshold and temperature a deployment fixed beforehand: the model's latest evaluation's, chosen on validation patients.
  const deploy = deploySettings(opts.outputDir, set, opts.config, stainMode);
  const threshold = deploy.threshold;
  const calibrated = deploy.temperature && applyTemperature(scores, deploy.temperature.value);
  const predictions: Prediction[] = kept.map((f, i) => ({ ...f.name, score: scores[i], ...(calibrated && { calibrated: calibrated[i] }), predicted: scores[i] >= threshold ? 1 : 0 }));
  const per = new Map<string, PatientPrediction>();
  for (const p of predictions) {
    let s = per.get(p.patient);
    if (!s) per.set(p.patient, (s = { patient: p.patient, n: 0, predictedPositive: 0, meanScore: 0, maxScore: 0 }));
    s.n++;
    if (p.score >= threshold) s.predictedPositive++;
    s.meanScore += p.score;
    s.maxScore = Math.max(s.maxScore, p.score);
  }
  const patients = [...per.values()].map((s) => ({ ...s, meanScore: s.meanScore / s.n }));
  const dir = predictionsDir(opts.outputDir, folder);
  const first = join(opts.outputDir, 'predictions', outputName(folderToScore(folder)));
  // Said where the predictions went when the folder's own name was taken.
  const note = dir === first ? undefined : `predictions/${basename(first)}/ holds the predictions of ${predictionsOwner(first) || 'another folder'}; these are in predictions/${basename(dir)}/.`;
  const predictionsFile = join(dir, 'predictions.csv');
  await writePredictions(predictionsFile, predictions, calibrated ? ['score_calibrated', 'predicted_label'] : ['predicted_label']);
  await writeJsonAtomic(join(dir, 'summary.json'), {
    folder, model: set.label, ensemble: set.ensemble, baseline: set.baseline && { recipe: set.baseline.recipe.name, createdAt: set.baseline.createdAt }, baselineFallback: set.fallback, threshold, thresholdChosenBy: deploy.thresholdChosenBy, thresholdReason: deploy.thresholdReason,
    temperature: deploy.temperature, calibrationNote: deploy.calibrationNote, evaluation: deploy.evaluation,
    createdAt: new Date().toISOString(), patients, skipped, stainNormalization: stainMode, stainNormalizationReason: stainReason, stains: stains?.patients,
  });
  const rowOf = new Map(predictions.map((p, i) => [p.id, i]));
  const gather = (ids: readonly string[]): Uint8Array => {
    const out = new Uint8Array(ids.length * PATCH_BYTES);
    ids.forEach((id, k) => { const i = rowOf.get(id)!; out.set(pixels.subarray(i * PATCH_BYTES, (i + 1) * PATCH_BYTES), k * PATCH_BYTES); });
    return out;
  };
  const slideMaps = await writeSlideMaps(predictions, patients.map((p) => p.patient), gather, dir, threshold);
  return { dir, predictionsFile, predictions, pixels: pixels.subarray(0, kept.length * PATCH_BYTES), skipped, unreadable, patients, slideMaps, stainNormalization: stainMode, stainNormalizationReason: stainReason, note, model: set.label, baselineFallback: set.fallback, ...deploy };
}
