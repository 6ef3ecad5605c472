import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRgbPng, resizeNearest } from '../visual/png-encode';
import { IdcError } from '../errors';
import { assertNotLocked } from '../run-lock';
import { runIdProblem } from '../run-id';
import type { OrganizeReport } from '../organize/organize';
import { REPORT_FILE } from '../organize/organize';
import type { SplitFile } from '../split';
import type { EpochLog } from '../train/checkpoint';
import type { EvalReport } from '../evaluate/types';
import { listRuns, runsDir } from '../train/train';
import { openCache } from '../cache';
import { PATCH_BYTES } from '../cache/pixels';
import { writeReport } from './index';
import type { ReportInput } from './render';
import { cvDir, cvOfRun, readCvDefinition } from '../cv/read';

const readJson = <T>(file: string): T | undefined => (existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined);

/** A patch as a PNG thumbnail, upscaled with nearest neighbour so pixels stay crisp. */
export async function patchThumbnail(pixels: Uint8Array, size = 100): Promise<Buffer> {
  return encodeRgbPng(resizeNearest(pixels.subarray(0, PATCH_BYTES), 50, 50, size, size), size, size);
}

/**
 * Gathers what the output folder holds (organize report, split, the run's history and config,
 * its evaluation with Grad-CAMs and slide maps) into the report's input. Missing pieces are left out.
 */
export interface ReportOptions {
  runId?: string;
  /** A cross-validation's pooled evaluation (evals/<cv>/test) with its fold table; default when the newest run is one of its folds. */
  cv?: string;
  split?: 'test' | 'val' | 'train';
  cacheDir?: string;
}

export async function assembleReport(outputDir: string, opts: ReportOptions = {}): Promise<ReportInput> {
  const input: ReportInput = {};
  input.organize = readJson<OrganizeReport>(join(outputDir, REPORT_FILE));
  input.split = readJson<SplitFile>(join(outputDir, 'split.json'));
  if (!input.organize && !input.split) throw new IdcError(`Nothing to report in ${outputDir}.`, 'Run "idc organize" (and the later steps) first, or point --out at the output folder.', 'NOTHING_TO_REPORT');
  if (opts.runId !== undefined && runIdProblem(opts.runId)) throw new IdcError(`Run id ${runIdProblem(opts.runId)}.`, 'Give the id of a run in runs/.', 'BAD_RUN_ID');
  if (opts.cv !== undefined && runIdProblem(opts.cv)) throw new IdcError(`Cross-validation id ${runIdProblem(opts.cv)}.`, 'Give the id of a cross-validation in evals/.', 'BAD_RUN_ID');
  if (opts.cv) return assembleCv(outputDir, input, opts.cv, opts);
  const runs = listRuns(outputDir);
  const run = opts.runId ? runs.find((r) => r.id === opts.runId) : [...runs].reverse().find((r) => r.status === 'finished') ?? runs[runs.length - 1];
  if (opts.runId && !run) throw new IdcError(`No run "${opts.runId}" in ${runsDir(outputDir)}.`, `Runs there: ${runs.map((r) => r.id).join(', ') || 'none'}.`, 'NO_RUN');
  if (!run) return input;
  // The newest run is a fold of a finished cross-validation: its pooled evaluation is the result to report.
  const of = opts.runId ? undefined : cvOfRun(outputDir, run.id);
  if (of && existsSync(join(cvDir(outputDir, of.def.id), 'test', 'metrics.json'))) return assembleCv(outputDir, input, of.def.id, opts);
  const runDir = join(runsDir(outputDir), run.id);
  input.runId = run.id;
  input.runConfig = readJson(join(runDir, 'config.json'));
  if (existsSync(join(runDir, 'history.jsonl'))) {
    input.history = readFileSync(join(runDir, 'history.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as EpochLog);
  }
  const split = opts.split ?? 'test';
  const evalDir = join(runDir, 'eval', split);
  // Read while evaluate rewrites it, the report could mix two evaluations.
  assertNotLocked(evalDir, `evaluation ${run.id}/${split}`);
  input.evaluation = readJson<EvalReport>(join(evalDir, 'metrics.json'));
  if (!input.evaluation) return input;
  const ids = [...input.evaluation.errors.falseNegatives.slice(0, 48), ...input.evaluation.errors.falsePositives.slice(0, 48)].map((e) => e.id);
  const own = join(runDir, 'cache');
  input.thumbnails = await thumbnails([existsSync(join(runDir, 'split.json')) ? own : opts.cacheDir ?? join(outputDir, 'cache')], split, ids);
  addImages(input, evalDir);
  return input;
}

/** Thumbnails of these patches from the first cache (of several) that holds each; none when there is no cache (the report shows placeholders). */
async function thumbnails(cacheDirs: readonly string[], split: 'test' | 'val' | 'train', ids: readonly string[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const cacheDir of cacheDirs) {
    const want = ids.filter((id) => !out.has(id));
    if (!want.length) break;
    try {
      const reader = openCache(cacheDir, split);
      const index = new Map(reader.ids.map((id, i) => [id, i]));
      const rows = want.map((id) => index.get(id)).filter((i): i is number => i !== undefined);
      const pixels = reader.readBatch(rows);
      reader.close();
      for (let k = 0; k < rows.length; k++) out.set(reader.ids[rows[k]], await patchThumbnail(pixels.subarray(k * PATCH_BYTES, (k + 1) * PATCH_BYTES)));
    } catch { /* this cache is missing or damaged */ }
  }
  return out;
}

/** A cross-validation: its pooled out-of-fold evaluation, each fold's training history and the settings every fold trained with. */
async function assembleCv(outputDir: string, input: ReportInput, id: string, opts: ReportOptions): Promise<ReportInput> {
  const def = readCvDefinition(outputDir, id);
  const evalDir = join(cvDir(outputDir, id), 'test');
  assertNotLocked(cvDir(outputDir, id), `cross-validation ${id}`);
  const evaluation = readJson<EvalReport>(join(evalDir, 'metrics.json'));
  if (!def && !evaluation) throw new IdcError(`No cross-validation "${id}" in ${join(outputDir, 'evals')}.`, 'Run "idc cv" (or IDC: Cross-Validate by Patient) first.', 'NO_RUN');
  if (!evaluation?.cv) throw new IdcError(`Cross-validation ${id} has no pooled evaluation yet: some folds are not finished.`, `Run "idc cv --folds ${def?.folds.length ?? 5}${def ? ` --seed ${def.seed}` : ''}" again to resume it.`, 'NO_PREDICTIONS');
  input.evaluation = evaluation;
  const runIds = evaluation.cv.rows.map((r) => r.runId);
  input.cvHistories = evaluation.cv.rows.map((r) => ({ fold: r.fold, runId: r.runId, history: readHistoryFile(join(runsDir(outputDir), r.runId, 'history.jsonl')) }));
  input.runConfig = readJson(join(runsDir(outputDir), runIds[0] ?? '', 'config.json'));
  const ids = [...evaluation.errors.falseNegatives.slice(0, 48), ...evaluation.errors.falsePositives.slice(0, 48)].map((e) => e.id);
  // Each fold cached its own test patients.
  input.thumbnails = await thumbnails([...runIds.map((r) => join(runsDir(outputDir), r, 'cache')), opts.cacheDir ?? join(outputDir, 'cache')], 'test', ids);
  addImages(input, evalDir);
  return input;
}

function readHistoryFile(file: string): EpochLog[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as EpochLog) : [];
}

function addImages(input: ReportInput, evalDir: string): void {
  const camDir = join(evalDir, 'gradcam');
  if (existsSync(camDir)) input.gradCams = new Map(readdirSync(camDir).filter((f) => f.endsWith('.png')).map((f) => [f.slice(0, -4), readFileSync(join(camDir, f))]));
  const mapDir = join(evalDir, 'slidemaps');
  if (existsSync(mapDir)) input.slideMaps = readdirSync(mapDir).filter((f) => f.endsWith('.png')).sort().map((f) => ({ patient: f.slice(0, -4), png: readFileSync(join(mapDir, f)) }));
}

export async function exportReport(outputDir: string, file: string, opts: ReportOptions = {}): Promise<ReportInput> {
  const input = await assembleReport(outputDir, opts);
  await writeReport(file, input);
  return input;
}
