import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { IdcError, throwIfCancelled } from '../errors';
import { mkdirpOrExplain, writeJsonAtomic } from '../fsutil';
import { withDirLock } from '../run-lock';
import { runIdProblem } from '../run-id';
import type { IdcConfig } from '../config';
import { readManifestWithHash } from '../manifest';
import { MANIFEST_FILE } from '../organize/organize';
import { writeSplit, type SplitFile } from '../split';
import type { ProgressSink } from '../progress';
import { listRuns, runsDir, train, type TrainEvent } from '../train/train';
import { evaluateModel, buildEvalReport } from '../evaluate/evaluate';
import { readPredictions, writePredictions } from '../evaluate/predictions';
import type { CvFoldRow, CvSummary, EvalReport, Prediction } from '../evaluate/types';
import { patientFolds, foldSplit } from './folds';
import { CV_FOLD_FILE, cvDir, foldRunId, readCvFoldMarker, type CvDefinition } from './read';

export { cvDir, foldRunId };

export type CvEvent =
  | { type: 'fold'; fold: number; folds: number; runId: string; state: 'training' | 'evaluating' | 'done' | 'kept'; test: number; auc?: number | null }
  | { type: 'train'; fold: number; folds: number; event: TrainEvent }
  | { type: 'warning'; message: string };

export interface CvOptions {
  outputDir: string;
  config: IdcConfig;
  folds: number;
  /** Seed of the fold assignment (training keeps train.seed). */
  seed: number;
  /** Default cv-<folds>fold-seed<seed>: rerunning the same command resumes it. */
  id?: string;
  cacheDir?: string;
  onProgress?: ProgressSink;
  onEvent?: (e: CvEvent) => void;
  signal?: AbortSignal;
}

export interface CvResult { id: string; dir: string; report: EvalReport & { cv: CvSummary }; predictionsFile: string; metricsFile: string }

/** Only what changes a trained model: resuming a cross-validation under other settings would mix two experiments. */
function trainingConfigHash(c: IdcConfig): string {
  return createHash('sha256').update(JSON.stringify({ model: c.model, train: c.train, data: { edgePatches: c.data.edgePatches, stainNormalization: c.data.stainNormalization } })).digest('hex').slice(0, 16);
}

/**
 * Makes runs/<fold run> this cross-validation's own, or refuses: a run of that name made by anything
 * else (a plain `idc train --run X-fold4`, another cross-validation of the same id deleted and
 * restarted) trained on other patients, so its test patients may have chosen its epoch.
 * Folds from before the marker existed are recognised by their split: exactly this fold's patients.
 */
async function claimFold(runDir: string, def: CvDefinition, fold: number, split: SplitFile): Promise<void> {
  const marker = readCvFoldMarker(runDir);
  const mine = { version: 1 as const, cv: def.id, fold, cvCreatedAt: def.createdAt };
  if (marker) {
    if (marker.cv === mine.cv && marker.fold === mine.fold && marker.cvCreatedAt === mine.cvCreatedAt) return;
  } else if (!existsSync(runDir) || readdirSync(runDir).length === 0 || sameSplit(runDir, split)) {
    mkdirpOrExplain(runDir);
    await writeJsonAtomic(join(runDir, CV_FOLD_FILE), mine);
    return;
  }
  const whose = marker ? `fold ${marker.fold + 1} of another cross-validation "${marker.cv}" (started ${marker.cvCreatedAt})` : 'not made by this cross-validation (a plain run, or one trained on other patients)';
  throw new IdcError(
    `${runDir} is ${whose}; cross-validation ${def.id} will not reuse it: its epoch may have been chosen on this fold's test patients.`,
    `Give the cross-validation another --id, or move that run folder away (or delete it) and rerun.`,
    'RUN_EXISTS',
  );
}

function sameSplit(runDir: string, split: SplitFile): boolean {
  try {
    const own = JSON.parse(readFileSync(join(runDir, 'split.json'), 'utf8')) as SplitFile;
    return (['train', 'val', 'test'] as const).every((s) => JSON.stringify([...own.patients[s]].sort()) === JSON.stringify([...split.patients[s]].sort()));
  } catch {
    return false;
  }
}

/** A fold's evaluation can be kept when it was scored with the test-time augmentation asked for now. */
function evaluatedAsConfigured(metricsFile: string, config: IdcConfig): boolean {
  if (!existsSync(metricsFile)) return false;
  try {
    return ((JSON.parse(readFileSync(metricsFile, 'utf8')) as EvalReport).tta ?? 'none') === config.evaluate.tta;
  } catch {
    return false;
  }
}

/**
 * Patient-grouped k-fold cross-validation. Fold i's model trains on k - 2 folds, picks its epoch
 * on fold i + 1 and is scored on fold i, so every patient is scored once by a model that never
 * saw it. Each fold is an ordinary run (runs/<id>-fold<i>/, with its own split.json and patch
 * cache); a finished and evaluated fold is kept on a rerun. The pooled out-of-fold predictions
 * are evaluated like any model's (evals/<id>/test/), so the threshold explorer, gallery and slide
 * map work on them, and metrics.json adds the per-fold rows with mean and sd.
 */
export async function crossValidate(opts: CvOptions): Promise<CvResult> {
  const id = opts.id ?? `cv-${opts.folds}fold-seed${opts.seed}`;
  const problem = runIdProblem(id);
  if (problem) throw new IdcError(`Cross-validation id ${problem}.`, 'Choose a plain name with --id.', 'USAGE');
  const dir = cvDir(opts.outputDir, id);
  mkdirpOrExplain(dir);
  return withDirLock(dir, `cross-validation ${id}`, () => crossValidateLocked(opts, id, dir));
}

async function crossValidateLocked(opts: CvOptions, id: string, dir: string): Promise<CvResult> {
  const { outputDir, config } = opts;
  const { rows, hash } = await readManifestWithHash(join(outputDir, MANIFEST_FILE));
  const defFile = join(dir, 'cv.json');
  const configHash = trainingConfigHash(config);
  let def: CvDefinition;
  if (existsSync(defFile)) {
    def = JSON.parse(readFileSync(defFile, 'utf8')) as CvDefinition;
    if (def.manifestHash !== hash) throw new IdcError(`Cross-validation ${id} was made from an older manifest.`, `Start a new one with another --id (or delete ${dir} and the runs ${id}-fold*).`, 'STALE_SPLIT');
    if (def.configHash !== configHash) throw new IdcError(`Cross-validation ${id} was started with other model, train or data settings than idc.config.json has now.`, `Restore those settings to resume it, or start a new one with another --id.`, 'CHECKPOINT_MISMATCH');
    if (def.folds.length !== opts.folds || def.seed !== opts.seed) throw new IdcError(`Cross-validation ${id} has ${def.folds.length} folds from seed ${def.seed}.`, 'Use the same --folds and --seed to resume it, or another --id.', 'USAGE');
  } else {
    def = { version: 1, id, ...patientFolds(rows, opts.folds, opts.seed), seed: opts.seed, manifestHash: hash, configHash, createdAt: new Date().toISOString() };
    await writeJsonAtomic(defFile, def);
  }
  const k = def.folds.length;
  const emit = opts.onEvent ?? (() => {});
  for (const w of def.warnings ?? []) emit({ type: 'warning', message: w });
  const foldRows: CvFoldRow[] = [];
  const pooled: Prediction[] = [];
  for (let i = 0; i < k; i++) {
    throwIfCancelled(opts.signal);
    const runId = foldRunId(id, i);
    const runDir = join(runsDir(outputDir), runId);
    const split = foldSplit(rows, def.folds, i, { seed: def.seed, manifestHash: hash });
    const evalDir = join(runDir, 'eval', 'test');
    await claimFold(runDir, def, i, split);
    const run = listRuns(outputDir).find((r) => r.id === runId);
    const kept = run?.status === 'finished' && evaluatedAsConfigured(join(evalDir, 'metrics.json'), config);
    emit({ type: 'fold', fold: i, folds: k, runId, state: kept ? 'kept' : run?.status === 'finished' ? 'evaluating' : 'training', test: split.summary.test.patches });
    if (!kept) {
      if (!existsSync(join(runDir, 'split.json'))) await writeSplit(join(runDir, 'split.json'), split);
      if (run?.status !== 'finished') {
        await train({ outputDir, config, runId, onProgress: opts.onProgress, signal: opts.signal, onEvent: (event) => emit({ type: 'train', fold: i, folds: k, event }) });
      }
      await evaluateModel({ outputDir, config, runId, split: 'test', onProgress: opts.onProgress, signal: opts.signal });
    }
    const metrics = JSON.parse(readFileSync(join(evalDir, 'metrics.json'), 'utf8')) as EvalReport;
    const info = listRuns(outputDir).find((r) => r.id === runId);
    foldRows.push({
      fold: i + 1, runId, patients: split.patients, n: metrics.n, positives: metrics.positives, auc: metrics.auc, averagePrecision: metrics.averagePrecision,
      bestEpoch: info?.bestEpoch, epochs: info?.epochs ?? 0,
    });
    pooled.push(...readPredictions(join(evalDir, 'predictions.csv')));
    emit({ type: 'fold', fold: i, folds: k, runId, state: 'done', test: metrics.n, auc: metrics.auc });
  }

  const labels = pooled.map((p) => p.label ?? 0);
  const scores = pooled.map((p) => p.score);
  const base = buildEvalReport(labels, scores, pooled, config.evaluate, { model: `${id} (${k}-fold cross-validation, out-of-fold)`, split: 'test', seconds: 0, backend: 'pooled' });
  // A fold without both classes has no ranking to measure (scikit-learn's AP of an all-positive fold is 1).
  const stat = (key: 'auc' | 'averagePrecision') => {
    const xs = foldRows.filter((r) => r.positives > 0 && r.positives < r.n).map((r) => r[key]).filter((x): x is number => x !== null && Number.isFinite(x));
    if (!xs.length) return { mean: null, sd: null };
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    return { mean, sd: xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) : null };
  };
  const auc = stat('auc'), ap = stat('averagePrecision');
  base.stainNormalization = config.data.stainNormalization;
  base.tta = config.evaluate.tta;
  base.warnings.unshift(...(def.warnings ?? []));
  const report = { ...base, cv: { id, folds: k, seed: def.seed, rows: foldRows, mean: { auc: auc.mean, averagePrecision: ap.mean }, sd: { auc: auc.sd, averagePrecision: ap.sd } } };
  const out = join(dir, 'test');
  const predictionsFile = join(out, 'predictions.csv');
  const metricsFile = join(out, 'metrics.json');
  await writePredictions(predictionsFile, pooled);
  await writeJsonAtomic(metricsFile, report);
  // Each fold drew Grad-CAMs and slide maps of its own worst cases; the pooled folder shows them all.
  for (const row of foldRows) {
    for (const sub of ['gradcam', 'slidemaps']) {
      const from = join(runsDir(outputDir), row.runId, 'eval', 'test', sub);
      if (!existsSync(from)) continue;
      mkdirpOrExplain(join(out, sub));
      for (const f of readdirSync(from)) copyFileSync(join(from, f), join(out, sub, f));
    }
  }
  return { id, dir: out, report, predictionsFile, metricsFile };
}
