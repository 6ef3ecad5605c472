/**
 * Where evaluations are on disk, for readers: a run's under runs/<id>/eval/<split>/, any other
 * model's (an outside model.json, an ensemble, a cross-validation's pooled evaluation, an external
 * archive) under evals/<name>/<split>/, each with its metrics.json. evaluate.ts decides these
 * places (resolveModelSource); this module only finds them, without TF.js, for the language
 * server and the side bar.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const EVAL_SPLITS = ['test', 'val', 'train'] as const;

export interface EvaluationDir {
  /** Run id, or the folder name under evals/. */
  model: string;
  split: (typeof EVAL_SPLITS)[number];
  dir: string;
  metrics: string;
  slideMaps: string[];
  /** runs/<id>/eval (a run's own) or evals/<name>. */
  owner: 'run' | 'evals';
}

function addEvals(out: EvaluationDir[], model: string, root: string, owner: EvaluationDir['owner']): void {
  for (const split of EVAL_SPLITS) {
    const dir = join(root, split);
    const metrics = join(dir, 'metrics.json');
    if (!existsSync(metrics)) continue;
    const maps = join(dir, 'slidemaps');
    let slideMaps: string[] = [];
    try {
      slideMaps = existsSync(maps) ? readdirSync(maps).filter((f) => f.endsWith('.png')).sort().map((f) => join(maps, f)) : [];
    } catch { /* not a folder: no slide maps */ }
    out.push({ model, split, dir, metrics, slideMaps, owner });
  }
}

function folders(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  } catch {
    return [];
  }
}

/**
 * Every evaluation with a metrics.json: the runs' first (those of `runIds`, default every folder
 * under runs/), then evals/. The metrics themselves are not read.
 */
export function listEvaluationDirs(outputDir: string, runIds?: readonly string[]): EvaluationDir[] {
  const out: EvaluationDir[] = [];
  for (const id of runIds ?? folders(join(outputDir, 'runs'))) addEvals(out, id, join(outputDir, 'runs', id, 'eval'), 'run');
  for (const name of folders(join(outputDir, 'evals'))) addEvals(out, name, join(outputDir, 'evals', name), 'evals');
  return out;
}
