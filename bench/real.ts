/**
 * npm run bench:real — the defaults (or any recipes) on real slides, scored on test patients the
 * model never saw, with thresholds and temperature chosen on the validation patients.
 *
 * Reads the set that ../shared/data/idc-real/build.py lays out (IDC_REAL_DIR), organizes and splits
 * it with the defaults, trains each recipe for each seed, evaluates it and prints one table.
 * Resumable: finished results are kept, an interrupted training run resumes.
 *
 * Environment:
 *   IDC_REAL_DIR      the built set (required; default ~/.cache/idc-real)
 *   IDC_REAL_SEEDS    training seeds, default "1 2 3"
 *   IDC_REAL_RECIPES  names from bench/real-recipes.ts, default "defaults"
 *   IDC_REAL_BACKEND  engine.backend, default auto
 *   IDC_REAL_PYTHON   engine.python for the torch engine (default /usr/bin/python3 when present)
 *   IDC_REAL_WORK     work folder, default .idc-real
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { die, idc as idcIn, realDataDir, recipeConfig, repoRoot, trainToEnd } from './real-data';
import { RECIPES } from './real-recipes';
import { printRealTable } from './real-table';

const data = realDataDir('bench:real');
const seeds = (process.env.IDC_REAL_SEEDS ?? '1 2 3').split(/[\s,]+/).filter(Boolean).map(Number);
const recipes = (process.env.IDC_REAL_RECIPES ?? 'defaults').split(/[\s,]+/).filter(Boolean);
const backend = process.env.IDC_REAL_BACKEND ?? 'auto';
const python = process.env.IDC_REAL_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : '');
const work = resolve(process.env.IDC_REAL_WORK ?? join(repoRoot, '.idc-real'));
for (const r of recipes) if (!RECIPES[r]) die(`Unknown recipe "${r}" in IDC_REAL_RECIPES; known: ${Object.keys(RECIPES).join(', ')}.`);
if (seeds.some((s) => !Number.isInteger(s))) die(`IDC_REAL_SEEDS must be integers (got "${process.env.IDC_REAL_SEEDS}").`);
const idc = (args: string[], config?: string) => idcIn(work, args, config);

mkdirSync(join(work, 'results'), { recursive: true });
mkdirSync(join(work, 'configs'), { recursive: true });
const out = join(work, 'out');
// Organize and split once, with the defaults: every recipe and seed sees the same patients.
if (!existsSync(join(out, 'manifest.csv'))) idc(['organize', data, '--out', out]);
if (!existsSync(join(out, 'split.json'))) idc(['split', '--out', out]);

for (const seed of seeds) {
  for (const name of recipes) {
    const recipe = RECIPES[name];
    const key = `${name}-seed${seed}`;
    const result = join(work, 'results', key);
    // An evaluate-only recipe scores the run its training recipe trained (trained first if needed).
    const id = `${recipe.trainedAs ?? name}-seed${seed}`;
    if (existsSync(join(result, 'metrics.json'))) { console.log(`${key}: done, kept.`); continue; }
    const config = join(work, 'configs', `${key}.json`);
    const c = recipeConfig(recipe, join(work, 'configs', 'init'), { output: out, backend, python: python || undefined, seed });
    writeFileSync(config, JSON.stringify(c, null, 2));

    trainToEnd(work, out, id, config);
    idc(['evaluate', '--run', id], config);
    mkdirSync(result, { recursive: true });
    copyFileSync(join(out, 'runs', id, 'history.jsonl'), join(result, 'history.jsonl'));
    const run = JSON.parse(readFileSync(join(out, 'runs', id, 'run.json'), 'utf8')) as { backend: string; epochs: number; bestEpoch?: number };
    // Training time across resumes: the epochs' own durations (history).
    const trainSeconds = readFileSync(join(result, 'history.jsonl'), 'utf8').split('\n').filter(Boolean).reduce((s, l) => s + (JSON.parse(l) as { seconds: number }).seconds, 0);
    writeFileSync(join(result, 'run.json'), JSON.stringify({ recipe: name, seed, backend: run.backend, epochs: run.epochs, bestEpoch: run.bestEpoch, trainSeconds, config: c }, null, 2));
    // metrics.json last: its presence marks the result done.
    for (const f of ['predictions.csv', 'metrics.json']) copyFileSync(join(out, 'runs', id, 'eval', 'test', f), join(result, f));
  }
}
printRealTable(join(work, 'results'));
