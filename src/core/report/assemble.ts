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

const readJson = <T>(file: string): T | undefined => (existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined);

/** A patch as a PNG thumbnail, upscaled with nearest neighbour so pixels stay crisp. */
export async function patchThumbnail(pixels: Uint8Array, size = 100): Promise<Buffer> {
  return encodeRgbPng(resizeNearest(pixels.subarray(0, PATCH_BYTES), 50, 50, size, size), size, size);
}

/**
 * Gathers what the output folder holds (organize report, split, the run's history and config,
 * its evaluation with Grad-CAMs and slide maps) into the report's input. Missing pieces are left out.
 */
export async function assembleReport(outputDir: string, opts: { runId?: string; split?: 'test' | 'val' | 'train'; cacheDir?: string } = {}): Promise<ReportInput> {
  const input: ReportInput = {};
  input.organize = readJson<OrganizeReport>(join(outputDir, REPORT_FILE));
  input.split = readJson<SplitFile>(join(outputDir, 'split.json'));
  if (!input.organize && !input.split) throw new IdcError(`Nothing to report in ${outputDir}.`, 'Run "idc organize" (and the later steps) first, or point --out at the output folder.', 'NOTHING_TO_REPORT');
  if (opts.runId !== undefined && runIdProblem(opts.runId)) throw new IdcError(`Run id ${runIdProblem(opts.runId)}.`, 'Give the id of a run in runs/.', 'BAD_RUN_ID');
  const runs = listRuns(outputDir);
  const run = opts.runId ? runs.find((r) => r.id === opts.runId) : [...runs].reverse().find((r) => r.status === 'finished') ?? runs[runs.length - 1];
  if (opts.runId && !run) throw new IdcError(`No run "${opts.runId}" in ${runsDir(outputDir)}.`, `Runs there: ${runs.map((r) => r.id).join(', ') || 'none'}.`, 'NO_RUN');
  if (!run) return input;
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
  const cacheDir = opts.cacheDir ?? join(outputDir, 'cache');
  try {
    const reader = openCache(cacheDir, split);
    const index = new Map(reader.ids.map((id, i) => [id, i]));
    const rows = ids.map((id) => index.get(id)).filter((i): i is number => i !== undefined);
    const pixels = reader.readBatch(rows);
    reader.close();
    input.thumbnails = new Map();
    for (let k = 0; k < rows.length; k++) input.thumbnails.set(reader.ids[rows[k]], await patchThumbnail(pixels.subarray(k * PATCH_BYTES, (k + 1) * PATCH_BYTES)));
  } catch { /* no cache (e.g. deleted): the report shows placeholders */ }
  const camDir = join(evalDir, 'gradcam');
  if (existsSync(camDir)) input.gradCams = new Map(readdirSync(camDir).filter((f) => f.endsWith('.png')).map((f) => [f.slice(0, -4), readFileSync(join(camDir, f))]));
  const mapDir = join(evalDir, 'slidemaps');
  if (existsSync(mapDir)) input.slideMaps = readdirSync(mapDir).filter((f) => f.endsWith('.png')).sort().map((f) => ({ patient: f.slice(0, -4), png: readFileSync(join(mapDir, f)) }));
  return input;
}

export async function exportReport(outputDir: string, file: string, opts: { runId?: string; split?: 'test' | 'val' | 'train'; cacheDir?: string } = {}): Promise<ReportInput> {
  const input = await assembleReport(outputDir, opts);
  await writeReport(file, input);
  return input;
}
