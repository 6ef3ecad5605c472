/**
 * npm run train:baseline — rebuilds models/baseline/ from the real set (IDC_REAL_DIR): every
 * patient but a validation share (chosen by patient) trains the chosen recipe; the validation
 * patients choose the epoch, the temperature and the thresholds. The held-out figures in its card
 * are bench:real's for the same recipe (IDC_REAL_WORK, default .idc-real). Resumable.
 *
 * Environment: IDC_REAL_DIR, IDC_REAL_BACKEND (default torch when /usr/bin/python3 has it, else
 * auto), IDC_REAL_PYTHON, IDC_BASELINE_WORK (default .idc-baseline), IDC_REAL_WORK, IDC_BASELINE_OUT
 * (default models/baseline), IDC_BASELINE_EPOCHS (smoke tests only).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BASELINE_FILE, MODEL_CARD_FILE, modelCard, type BaselineInfo } from '../src/core/baseline';
import type { EvalReport } from '../src/core/evaluate/types';
import type { SplitFile } from '../src/core/split';
import { idc as idcIn, realDataDir, recipeConfig, repoRoot, trainToEnd } from './real-data';
import { BASELINE_RECIPE, BASELINE_SEED, RECIPES } from './real-recipes';
import { readRealResults } from './real-table';

const data = realDataDir('train:baseline');
const python = process.env.IDC_REAL_PYTHON ?? '/usr/bin/python3';
const hasTorch = spawnSync(python, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;
const backend = process.env.IDC_REAL_BACKEND ?? (hasTorch ? 'torch' : 'auto');
const work = resolve(process.env.IDC_BASELINE_WORK ?? join(repoRoot, '.idc-baseline'));
const benchResults = join(resolve(process.env.IDC_REAL_WORK ?? join(repoRoot, '.idc-real')), 'results');
const target = resolve(process.env.IDC_BASELINE_OUT ?? join(repoRoot, 'models', 'baseline'));
const idc = (args: string[], config?: string) => idcIn(work, args, config);

const out = join(work, 'out');
mkdirSync(work, { recursive: true });
if (!existsSync(join(out, 'manifest.csv'))) idc(['organize', data, '--out', out]);
// No test split: every patient it can learn from trains it; bench:real measured the recipe on test patients.
if (!existsSync(join(out, 'split.json'))) idc(['split', '--ratios', '0.85,0.15,0', '--out', out]);

const recipe = RECIPES[BASELINE_RECIPE];
const c = recipeConfig(recipe, join(work, 'init'), { output: out, backend, python: backend === 'torch' ? python : undefined, seed: BASELINE_SEED });
// One thread: reductions run in one order, so the same engine and version give the same weights anywhere.
c.engine.threads = 1;
// A smoke test of this script (not for the shipped model): fewer epochs.
if (process.env.IDC_BASELINE_EPOCHS) c.train.epochs = Number(process.env.IDC_BASELINE_EPOCHS);
c.evaluate.split = 'val';
const config = join(work, 'idc.config.json');
writeFileSync(config, JSON.stringify(c, null, 2));

const runDir = join(out, 'runs', 'baseline');
trainToEnd(work, out, 'baseline', config);
// Scored on its validation patients: the temperature and both thresholds are chosen there.
idc(['evaluate', '--run', 'baseline', '--split', 'val'], config);

const val = JSON.parse(readFileSync(join(runDir, 'eval', 'val', 'metrics.json'), 'utf8')) as EvalReport;
const split = JSON.parse(readFileSync(join(out, 'split.json'), 'utf8')) as SplitFile;
const run = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')) as { backend: string };
const op = (name: string) => val.operatingPoints.find((p) => p.name === name);
const youden = op('youden');
const recall = op('recall-target');
if (!youden || !recall) throw new Error('The validation evaluation has no Youden or recall-target threshold.');

const bench = existsSync(benchResults) ? readRealResults(benchResults).filter((r) => r.recipe === BASELINE_RECIPE) : [];
const info: BaselineInfo = {
  version: 1,
  createdAt: new Date().toISOString(),
  recipe: { name: BASELINE_RECIPE, about: recipe.about, seed: BASELINE_SEED },
  engine: run.backend.replace(/;.*/, ''),
  reproduce: 'IDC_REAL_DIR=<the built real set> npm run train:baseline',
  data: {
    source: 'The real set of ../shared/data/idc-real (47,262 original patches of the public Breast Histopathology Images archive from 271 of its 279 patients: 24 complete slides and 247 sampled at ~5 %; Janowczyk & Madabhushi 2016), split by patient with seed 42.',
    patients: { train: split.summary.train.patients, val: split.summary.val.patients },
    patches: { train: split.summary.train.patches, val: split.summary.val.patches },
    positives: { train: split.summary.train.positives, val: split.summary.val.positives },
    patientIds: { train: split.patients.train, val: split.patients.val },
  },
  stainNormalization: c.data.stainNormalization,
  temperature: val.calibration?.temperature?.value,
  thresholds: { youden: youden.threshold, recallTarget: { recall: c.evaluate.recallTarget, threshold: recall.threshold } },
  heldOut: bench.length ? {
    source: `npm run bench:real, recipe ${BASELINE_RECIPE}, ${bench[0].m.createdAt.slice(0, 10)}, ${bench[0].run.backend.replace(/;.*/, '')}`,
    testPatients: bench[0].m.patients.length,
    seeds: bench.map((r) => {
      const y = r.m.operatingPoints.find((p) => p.name === 'youden' && p.chosenOn === 'val');
      return {
        seed: r.seed,
        auc: { value: r.m.auc, ci: r.m.intervals?.auc ?? null },
        averagePrecision: { value: r.m.averagePrecision, ci: r.m.intervals?.averagePrecision ?? null },
        youden: y ? { balancedAccuracy: y.balancedAccuracy, f1: y.f1, sensitivity: y.sensitivity, specificity: y.specificity } : null,
        eceBefore: r.m.calibration?.before.ece ?? null,
        eceAfter: r.m.calibration?.after?.ece ?? null,
      };
    }),
  } : null,
};

// Assembled beside the target and swapped in whole: an interrupted write never leaves half a model.
const tmp = `${target}.tmp`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(join(tmp, 'model'), { recursive: true });
for (const f of readdirSync(join(runDir, 'model'))) cpSync(join(runDir, 'model', f), join(tmp, 'model', f));
cpSync(join(runDir, 'config.json'), join(tmp, 'config.json'));
writeFileSync(join(tmp, BASELINE_FILE), JSON.stringify(info, null, 2) + '\n');
writeFileSync(join(tmp, MODEL_CARD_FILE), modelCard(info));
rmSync(target, { recursive: true, force: true });
renameSync(tmp, target);
console.log(`Baseline written to ${target} (${info.engine}; validation AUC ${val.auc?.toFixed(3)}; T ${info.temperature?.toFixed(3) ?? '—'}; Youden ${youden.threshold.toFixed(4)}).`);
