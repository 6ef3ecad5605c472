import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { IdcError, throwIfCancelled, cancellationPoint } from '../errors';
import type { IdcConfig } from '../config';
import { withDirLock } from '../run-lock';
import type { ProgressSink } from '../progress';
import { prepareData } from '../train/data';
import { loadModel } from '../train/model-io';
import type * as tfl from '@tensorflow/tfjs-layers';
import { dataOf, preprocessor } from './evaluate';
import { isThirdParty, resolveModels, setInputConfig, type ModelSet } from './ensemble';
import { BASELINE_NAME } from '../baseline';
import { externalDataDir } from './external';
import { readPredictions } from './predictions';
import { writeGradCams } from './visuals';
import type { ErrorItem, EvalReport } from './types';

/** Where evaluate and this module put a patch's Grad-CAM overlay. */
export function gradCamFile(evalDir: string, id: string): string {
  return join(evalDir, 'gradcam', `${id}.png`);
}

export interface GradCamRequest {
  outputDir: string;
  config: IdcConfig;
  /** The evaluation's folder (metrics.json, predictions.csv). */
  evalDir: string;
  /** Patches of that evaluation; those with an overlay already are skipped. */
  ids: readonly string[];
  cacheDir?: string;
  signal?: AbortSignal;
  onProgress?: ProgressSink;
}

/**
 * Grad-CAM overlays for any patches of an evaluation (evaluate writes them only for the worst
 * errors): the gallery asks for the tiles a user is looking at. Same model, preprocessing and
 * drawing as evaluate. Returns how many were written.
 */
export async function writeGradCamsFor(req: GradCamRequest): Promise<{ written: number; skipped: number }> {
  // It writes into the evaluation's folder: not while evaluate (re)writes it.
  return withDirLock(req.evalDir, `evaluation ${relative(req.outputDir, req.evalDir)}`, () => writeGradCamsLocked(req));
}

async function writeGradCamsLocked(req: GradCamRequest): Promise<{ written: number; skipped: number }> {
  const metricsFile = join(req.evalDir, 'metrics.json');
  if (!existsSync(metricsFile)) throw new IdcError(`No evaluation in ${req.evalDir}.`, 'Evaluate the model first.', 'NO_PREDICTIONS');
  const report = JSON.parse(readFileSync(metricsFile, 'utf8')) as EvalReport;
  const wanted = [...new Set(req.ids)].filter((id) => !existsSync(gradCamFile(req.evalDir, id)));
  if (!wanted.length) return { written: 0, skipped: 0 };
  const byId = new Map(readPredictions(join(req.evalDir, 'predictions.csv')).map((p) => [p.id, p]));
  const items: ErrorItem[] = [];
  for (const id of wanted) {
    const p = byId.get(id);
    if (p && p.label !== undefined) items.push({ id, patient: p.patient, x: p.x, y: p.y, label: p.label, score: p.score });
  }
  // A cross-validation's pooled evaluation: each patch is explained by the fold model that scored it.
  if (report.cv) {
    let written = 0;
    for (const row of report.cv.rows) {
      const test = new Set(row.patients.test);
      const mine = items.filter((i) => test.has(i.patient));
      if (mine.length) written += await drawWith(req, resolveModels(req.outputDir, { runId: row.runId }), mine, undefined, 'test');
    }
    return { written, skipped: wanted.length - written };
  }
  const set = resolveModels(req.outputDir, report.ensemble ? { runIds: report.ensemble } : report.runId ? { runId: report.runId } : report.baseline ? { modelPath: BASELINE_NAME } : { modelPath: report.model });
  // An external archive's evaluation (evaluate --archive) reads that archive's own data.
  const extDir = report.external ? externalDataDir(req.outputDir, report.external.name) : undefined;
  const written = await drawWith(req, set, items, extDir, report.split, isThirdParty(set), report.stainNormalization);
  return { written, skipped: wanted.length - written };
}

/** Grad-CAMs of `items` with the set's models (an ensemble's mean map), read from the data they were scored on. */
async function drawWith(req: GradCamRequest, set: ModelSet, items: readonly ErrorItem[], extDir: string | undefined, split: EvalReport['split'], thirdParty = false, stain?: EvalReport['stainNormalization']): Promise<number> {
  const source = set.members[0];
  const dataFrom = extDir ? { cacheDir: join(extDir, 'cache') } : set.ensemble ? { cacheDir: req.cacheDir } : dataOf(source, req.cacheDir);
  // A model without a run config: as its evaluation prepared them (metrics.json says).
  const inputs = thirdParty && stain ? { ...req.config, data: { ...req.config.data, stainNormalization: stain } } : setInputConfig(req.config, set);
  const data = await prepareData(extDir ?? req.outputDir, inputs, { ...dataFrom, onProgress: req.onProgress, signal: req.signal });
  const reader = data.open(split);
  const models: tfl.LayersModel[] = [];
  try {
    const rowOf = new Map(reader.ids.map((id, i) => [id, i]));
    const present = items.filter((i) => rowOf.has(i.id));
    throwIfCancelled(req.signal);
    for (const m of set.members) models.push(await loadModel(m.modelDir));
    const scale = preprocessor(thirdParty ? req.config.evaluate.preprocess : 'divide255');
    const pixels = (ids: readonly string[]) => reader.readRawBatch(ids.map((id) => rowOf.get(id)!));
    const input = (ids: readonly string[]) => reader.readBatch(ids.map((id) => rowOf.get(id)!));
    let written = 0;
    // Batches keep memory flat and let a cancel land between them.
    for (let i = 0; i < present.length; i += 32) {
      await cancellationPoint(req.signal);
      written += await writeGradCams(models, present.slice(i, i + 32), pixels, req.evalDir, { scale: (x) => x.map(scale), input, signal: req.signal });
      req.onProgress?.({ phase: 'gradcam', label: 'Grad-CAM', done: Math.min(present.length, i + 32), total: present.length, unit: 'images' });
    }
    return written;
  } finally {
    for (const m of models) m.dispose();
    reader.close();
  }
}
