import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { IdcError } from '../errors';
import { explicitlySet, type ExplicitFields, type IdcConfig } from '../config';
import { foldForInference } from '../engine/model';
import { loadModel } from '../train/model-io';
import { runData } from '../train/data';
import { listRuns } from '../train/train';
import { readSplit } from '../split';
import { foldRunId, readCvDefinition } from '../cv/read';
import { checkModelShape, inputConfig, modelScorer, resolveModelSource, trainerForRun } from './evaluate';
import { withTta, type TtaMode } from './tta';
import { baselinePatients, type BaselineInfo } from '../baseline';
import type { InputsChosenBy } from './types';
import { inputsText } from './summary';

export type ModelSource = ReturnType<typeof resolveModelSource>;

/** One model or several whose mean probability is the score (an ensemble). */
export interface ModelSet {
  members: ModelSource[];
  evalRoot: string;
  label: string;
  /** The run, when there is exactly one. */
  runId?: string;
  /** The member runs of an ensemble. */
  ensemble?: string[];
  /** The shipped baseline model (its one member). */
  baseline?: BaselineInfo;
  /** Why the baseline was taken without being named. */
  fallback?: string;
}

/** A model from elsewhere (a model.json without a run config): scored as it is, with evaluate.preprocess. */
export function isThirdParty(set: ModelSet): boolean {
  return set.members.every((m) => !m.runId && !m.baseline);
}

/**
 * The models to score with: `modelPath`, one run, several runs (`runIds`) or a cross-validation's
 * id (its fold models). Several make an ensemble evaluated under evals/<name>/.
 */
export function resolveModels(outputDir: string, opts: { runId?: string; runIds?: readonly string[]; modelPath?: string; orBaseline?: boolean }): ModelSet {
  let ids = opts.runIds && opts.runIds.length > 1 ? [...opts.runIds] : undefined;
  const one = opts.runIds?.length === 1 ? opts.runIds[0] : opts.runId;
  if (!ids && one && !opts.modelPath && !listRuns(outputDir).some((r) => r.id === one)) ids = readCvDefinition(outputDir, one)?.folds.map((_, i) => foldRunId(one, i));
  if (!ids) {
    const source = resolveModelSource(outputDir, { runId: one, modelPath: opts.modelPath, orBaseline: opts.orBaseline });
    return { members: [source], evalRoot: source.evalRoot, label: source.label, runId: source.runId, baseline: source.baseline, fallback: source.fallback };
  }
  if (new Set(ids).size !== ids.length) throw new IdcError(`The ensemble lists a run twice: ${ids.join(', ')}.`, 'Name each run once.', 'USAGE');
  const members = ids.map((runId) => resolveModelSource(outputDir, { runId }));
  const cv = !opts.runIds || opts.runIds.length === 1 ? one : undefined;
  const joined = ids.join('+');
  const name = cv ? `${cv}-ensemble` : joined.length <= 80 ? `ensemble-${joined}` : `ensemble-${ids.length}-${createHash('sha256').update(joined).digest('hex').slice(0, 10)}`;
  return { members, evalRoot: join(outputDir, 'evals', name), label: `ensemble of ${ids.length} (${cv ? `the folds of ${cv}` : ids.join(', ')}), mean probability`, ensemble: ids };
}

/**
 * The config the set's inputs are prepared with, and who chose it. Runs: as they were trained. A
 * model without a run config: its patches as scanned unless the user set data.stainNormalization
 * (config file or option), since the workspace default is a choice for our training, not for a
 * model trained elsewhere on whatever its authors used. `reason` says which, in words.
 */
export function setInputs(config: IdcConfig, set: ModelSet, explicit?: ExplicitFields): { config: IdcConfig; chosenBy: InputsChosenBy; reason: string } {
  const chosen = (c: IdcConfig, chosenBy: InputsChosenBy) => ({ config: c, chosenBy, reason: inputsText(c.data.stainNormalization, chosenBy, set.runId ? `run ${set.runId}` : 'its runs') });
  if (set.baseline) return chosen(setInputConfig(config, set), 'baseline');
  if (set.members.some((m) => m.runId)) return chosen(setInputConfig(config, set), 'run');
  const by = explicitlySet(explicit, 'data.stainNormalization');
  if (by) return chosen(config, by === 'file' ? 'config' : 'option');
  return chosen(config.data.stainNormalization === 'none' ? config : { ...config, data: { ...config.data, stainNormalization: 'none' as const } }, 'no-run-config');
}

/** The config the set's inputs are prepared with; an ensemble's members must agree, or their mean mixes two inputs. */
export function setInputConfig(config: IdcConfig, set: ModelSet): IdcConfig {
  const configs = set.members.map((m) => inputConfig(config, m));
  const modes = new Set(configs.map((c) => c.data.stainNormalization));
  if (modes.size > 1) {
    const list = set.members.map((m, i) => `${m.label}: ${configs[i].data.stainNormalization}`).join('; ');
    throw new IdcError(`The ensemble's models take different inputs (data.stainNormalization ${list}).`, 'Ensemble runs trained with the same data.stainNormalization.', 'ENSEMBLE_INPUTS');
  }
  return configs[0];
}

/**
 * Patients an ensemble member trained or stopped early on, among `patients`: a cross-validation
 * fold knows its own (its split.json). Scoring them with it would be optimistic.
 */
export async function seenPatients(set: ModelSet, patients: ReadonlySet<string>): Promise<Map<string, string[]>> {
  const seen = new Map<string, string[]>();
  for (const m of set.members) {
    if (m.baseline) {
      const hit = [...baselinePatients(m.baseline)].filter((p) => patients.has(p));
      if (hit.length) seen.set(m.label, hit);
      continue;
    }
    const own = m.runId ? runData(dirname(m.modelDir)) : undefined;
    if (!own) continue;
    const split = await readSplit(own.splitFile);
    const hit = [...split.patients.train, ...split.patients.val].filter((p) => patients.has(p));
    if (hit.length) seen.set(m.label, hit);
  }
  return seen;
}

export interface OpenModel {
  loaded: tfl.LayersModel;
  positiveColumn: number;
  backend: string;
  /** Probabilities of n preprocessed patches (with test-time augmentation when asked for). */
  score: (x: Float32Array, n: number) => Promise<Float32Array>;
  /** Throws when any score so far was NaN or infinite; call once the model has scored everything. */
  checkScores(): void;
  dispose(): Promise<void>;
}

/**
 * The engine settings a job scores our runs with when its backend is torch: set so, or picked by auto
 * for a job that trains (a cross-validation's folds); auto never starts Python only to score.
 */
export function scoringEngine(config: IdcConfig): IdcConfig['engine'] | undefined {
  return config.engine.backend === 'torch' ? config.engine : undefined;
}

/**
 * Loads one member for scoring: our runs on their trainer (data-parallel on CPU backends, the torch
 * engine when `torchEngine` is given), other models as loaded.
 */
export async function openModel(source: ModelSource, thirdParty: boolean, backend: string, torchEngine?: IdcConfig['engine'], tta: TtaMode = 'none'): Promise<OpenModel> {
  const loaded = await loadModel(source.modelDir);
  const { positiveColumn } = checkModelShape(loaded, source.label);
  const trainer = thirdParty ? undefined : await trainerForRun(join(dirname(source.modelDir), 'config.json'), loaded, torchEngine);
  if (trainer) {
    const guard = finiteGuard(source, withTta((x, n) => trainer.predict(x, n), tta));
    return { loaded, positiveColumn, backend: trainer.backend, ...guard, dispose: async () => { await trainer.dispose(); } };
  }
  // Our own models run faster with batch norm folded into the convolutions; others run as they are.
  let model = loaded;
  if (!thirdParty) {
    try { model = foldForInference(loaded); } catch { model = loaded; }
  }
  const guard = finiteGuard(source, withTta(modelScorer(model, positiveColumn), tta));
  return { loaded, positiveColumn, backend, ...guard, dispose: async () => { if (model !== loaded) model.dispose(); } };
}

/**
 * Counts the NaN and infinite scores a model gives (per patch, after test-time augmentation): every
 * scorer of evaluate, predict, external evaluation and cross-validation comes through here, so a
 * model with non-finite weights is refused in one place rather than crashing the metrics later.
 */
function finiteGuard(source: ModelSource, score: OpenModel['score']): Pick<OpenModel, 'score' | 'checkScores'> {
  let n = 0, nan = 0, inf = 0;
  return {
    score: async (x, count) => {
      const p = await score(x, count);
      for (let i = 0; i < count; i++) if (!Number.isFinite(p[i])) { if (Number.isNaN(p[i])) nan++; else inf++; }
      n += count;
      return p;
    },
    checkScores: () => {
      if (!nan && !inf) return;
      const which = source.runId ? `The model of run ${source.runId} (${source.modelDir})` : `The model at ${source.label}`;
      const kinds = [nan && `${nan} NaN`, inf && `${inf} infinite`].filter(Boolean).join(', ');
      throw new IdcError(`${which} gave non-finite scores: ${nan + inf} of ${n} scores are NaN or infinite (${kinds}).`,
        source.runId
          ? "The model's weights are not finite (training diverged, or the file is damaged): retrain it (a lower train.learningRate, or train.earlyStopping.restoreBestWeights to keep the best epoch's weights), or score with another run (--run <id>)."
          : "The model's weights are not finite (a diverged training, or a damaged export): export it again from a good checkpoint, or pick another model.",
        'NON_FINITE_SCORES');
    },
  };
}

/** Adds `p` into the running sum `into` (float64, so the mean does not depend on member order beyond rounding). */
export function accumulate(into: Float64Array, p: ArrayLike<number>): void {
  for (let i = 0; i < into.length; i++) into[i] += p[i];
}

export function meanOf(sum: Float64Array, members: number): Float32Array {
  return Float32Array.from(sum, (s) => s / members);
}
