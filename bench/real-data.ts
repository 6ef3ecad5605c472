/** The built real set (../shared/data/idc-real/build.py) for bench:real and train:baseline, or the instructions to build it. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { join, resolve } from 'node:path';
import type { Recipe } from './real-recipes';
import { validateConfig } from '../src/core/config';

export const repoRoot = resolve(import.meta.dirname, '..');
export const cliPath = join(repoRoot, 'dist', 'cli.js');

export function die(message: string): never {
  console.error(message);
  process.exit(1);
}

/** IDC_REAL_DIR (default ~/.cache/idc-real) holding patient folders; exits with how to build it when it does not. */
export function realDataDir(command: string): string {
  const data = resolve(process.env.IDC_REAL_DIR ?? join(homedir(), '.cache', 'idc-real'));
  let patients = 0;
  try { patients = readdirSync(data).filter((n) => /^\d+$/.test(n)).length; } catch { /* missing */ }
  if (patients === 0) {
    die(`No real set in ${data} (IDC_REAL_DIR).
Build it once (about 10 s, 370 MB; see ../shared/data/idc-real/README.md):
  1. fetch the four repositories it names (the search tool's fetch, or git clone);
  2. python3 ../shared/data/idc-real/build.py ${data} --mirror <folder holding the OWNER+NAME clones>
Then rerun: IDC_REAL_DIR=${data} npm run ${command}`);
  }
  if (!existsSync(cliPath)) die(`${cliPath} is missing: run "npm run build" first.`);
  return data;
}

/** Runs the CLI in `cwd`; exits when it fails (every step is resumable, so a rerun continues). */
export function idc(cwd: string, args: string[], config?: string): void {
  console.log(`$ idc ${args.join(' ')}${config ? ` -c ${config}` : ''}`);
  const r = spawnSync(process.execPath, [cliPath, ...args, ...(config ? ['-c', config] : []), '-q'], { cwd, stdio: 'inherit' });
  if (r.status !== 0) die(`idc ${args[0]} failed (exit ${r.status ?? r.signal}); rerun to resume.`);
}

/** `idc config init` (or a preset) as an object, to patch. */
export function initConfig(tmp: string, preset?: string): Record<string, any> {
  mkdirSync(tmp, { recursive: true });
  const r = spawnSync(process.execPath, [cliPath, 'config', 'init', '--force', ...(preset ? ['--preset', preset] : [])], { cwd: tmp, encoding: 'utf8' });
  if (r.status !== 0) die(`idc config init failed: ${r.stderr}`);
  return JSON.parse(readFileSync(join(tmp, 'idc.config.json'), 'utf8'));
}

/**
 * A recipe's config for a real-data run. bench:real and train:baseline score the same way
 * (thresholds chosen on validation patients: Youden's J and recall >= 0.90; temperature fitted
 * there), so the baseline's card can quote bench:real's figures for its recipe.
 */
export function recipeConfig(recipe: Recipe, tmp: string, o: { output: string; backend: string; python?: string; seed: number }): Record<string, any> {
  const c = initConfig(tmp, recipe.preset);
  recipe.patch(c);
  c.paths.output = o.output;
  c.engine.backend = o.backend;
  if (o.python) c.engine.python = o.python;
  c.train.seed = o.seed;
  c.evaluate.recallTarget = 0.9;
  c.evaluate.calibration = 'temperature';
  return c;
}

/**
 * A run config as the settings added since it was written would describe it: what the code did
 * before each existed (a later default could mean otherwise); the rest then takes the defaults.
 */
export function beforeSettings(c: Record<string, any>): Record<string, any> {
  // Before train.preciseBatchNorm (2026-12-08) every run kept the moving statistics.
  if (c.train && c.train.preciseBatchNorm === undefined) c.train.preciseBatchNorm = 0;
  return c;
}

/** Trains run `id` of `out` to its end: a new run, or the one left unfinished resumed; a finished one is left as it is. */
export function trainToEnd(cwd: string, out: string, id: string, config: string): void {
  const runJson = join(out, 'runs', id, 'run.json');
  const status = existsSync(runJson) ? (JSON.parse(readFileSync(runJson, 'utf8')) as { status: string }).status : undefined;
  // A run kept or resumed under a recipe that has changed since (a new default) would be reported as the new one.
  const saved = join(out, 'runs', id, 'config.json');
  if (status && existsSync(saved)) {
    const [was, now] = [saved, config].map((f) => validateConfig(beforeSettings(JSON.parse(readFileSync(f, 'utf8')))) as unknown as Record<string, unknown>);
    const changed = ['data', 'model', 'train'].filter((k) => !isDeepStrictEqual(was[k], now[k]));
    if (changed.length) die(`Run ${id} in ${out} was trained with other ${changed.join(', ')} settings than ${config} asks for now. Delete ${join(out, 'runs', id)} (and its result) to train it again.`);
  }
  if (status !== 'finished') idc(cwd, ['train', '--run', id, ...(status ? ['--resume'] : [])], config);
}
