/**
 * The baseline model shipped with the product (models/baseline/): a CNN this project trained on real
 * slides, so prediction, external evaluation and the panels work before a user has trained
 * anything. Its folder is laid out as a run's (config.json beside model/), plus baseline.json (what
 * it is, what it was trained on, its held-out figures, temperature and thresholds) and the model
 * card generated from it. `npm run train:baseline` writes it (scripts/train-baseline.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { IdcError } from './errors';

export const BASELINE_NAME = 'baseline';
export const BASELINE_FILE = 'baseline.json';
export const MODEL_CARD_FILE = 'MODEL_CARD.md';

/** A figure on patients the model never saw, with its 95% interval by patient. */
export interface HeldOutFigure { value: number | null; ci: [number, number] | null }

export interface BaselineInfo {
  version: 1;
  createdAt: string;
  /** The recipe's name in bench/real-recipes.ts and what it changes from the defaults. */
  recipe: { name: string; about: string; seed: number };
  /** Engine and its version that trained it: the same engine reproduces the same weights. */
  engine: string;
  reproduce: string;
  data: {
    source: string;
    patients: { train: number; val: number };
    patches: { train: number; val: number };
    positives: { train: number; val: number };
    /** Its patients: scoring them with it is optimistic, and evaluate says so. */
    patientIds?: { train: string[]; val: string[] };
  };
  stainNormalization: 'none' | 'macenko';
  /** Fitted on its validation patients (sigmoid(logit(p) / T)); absent when not fitted. */
  temperature?: number;
  /** Chosen on its validation patients. */
  thresholds: { youden: number; recallTarget: { recall: number; threshold: number } };
  /** bench:real's figures for the same recipe: other models of that recipe, scored on test patients this one never saw. */
  heldOut: {
    source: string;
    testPatients: number;
    seeds: Array<{ seed: number; auc: HeldOutFigure; averagePrecision: HeldOutFigure; youden: { balancedAccuracy: number; f1: number; sensitivity: number; specificity: number } | null; eceBefore: number | null; eceAfter: number | null }>;
  } | null;
}

/** models/baseline beside the bundle (dist/ in the repository and in the .vsix), or beside src/core under tsx. */
export function baselineDir(): string {
  const override = process.env.IDC_BASELINE_DIR;
  if (override) return resolve(override);
  const candidates = [resolve(__dirname, '..', 'models', BASELINE_NAME), resolve(__dirname, '..', '..', 'models', BASELINE_NAME)];
  return candidates.find((d) => existsSync(join(d, BASELINE_FILE))) ?? candidates[0];
}

export function hasBaseline(dir = baselineDir()): boolean {
  return existsSync(join(dir, BASELINE_FILE)) && existsSync(join(dir, 'model', 'model.json'));
}

/** baseline.json, or a clear error when the installation lacks it. */
export function readBaseline(dir = baselineDir()): BaselineInfo {
  const file = join(dir, BASELINE_FILE);
  if (!hasBaseline(dir)) {
    throw new IdcError(`The baseline model is missing from this installation (${dir}).`, 'Reinstall IDC Inspector, or rebuild it with "npm run train:baseline" (needs the real set: models/baseline/MODEL_CARD.md says how).', 'NO_MODEL');
  }
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as BaselineInfo;
    if (info.version !== 1 || !info.thresholds || typeof info.thresholds.youden !== 'number') throw new Error('unexpected fields');
    return info;
  } catch (e) {
    throw new IdcError(`${file} cannot be read: ${(e as Error).message}.`, 'Reinstall IDC Inspector, or rebuild it with "npm run train:baseline".', 'BAD_MODEL');
  }
}

/** The patients it trained or stopped early on (empty in a baseline.json from before they were listed). */
export function baselinePatients(info: BaselineInfo): Set<string> {
  const ids = info.data.patientIds;
  return new Set(ids ? [...ids.train, ...ids.val] : []);
}

/** How outputs name it: never silently. */
export function baselineLabel(info: BaselineInfo): string {
  return `baseline model (shipped; ${info.recipe.name} recipe, trained on ${info.data.patients.train} real patients)`;
}

const f = (x: number | null | undefined, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));
const ci = (c: [number, number] | null) => (c ? ` (95% CI ${f(c[0])}–${f(c[1])} by patient)` : '');

/** MODEL_CARD.md, generated from baseline.json so the two never disagree. */
export function modelCard(info: BaselineInfo): string {
  const d = info.data;
  const rows = info.heldOut?.seeds.map((s) => `| ${s.seed} | ${f(s.auc.value)}${ci(s.auc.ci)} | ${f(s.averagePrecision.value)}${ci(s.averagePrecision.ci)} | ${s.youden ? `${f(s.youden.sensitivity)} / ${f(s.youden.specificity)} / ${f(s.youden.balancedAccuracy)} / ${f(s.youden.f1)}` : '—'} | ${f(s.eceBefore)} → ${f(s.eceAfter)} |`) ?? [];
  return `# Model card: IDC Inspector baseline

Generated by \`npm run train:baseline\` on ${info.createdAt.slice(0, 10)} from \`${BASELINE_FILE}\`; do not edit by hand.

## What it is
A small CNN (\`model/model.json\`, a TF.js layers model, 50x50 RGB patch → probability of invasive
ductal carcinoma) trained by this project with the **${info.recipe.name}** recipe (${info.recipe.about};
training seed ${info.recipe.seed}) on ${info.engine}. Inputs are ${info.stainNormalization === 'macenko' ? 'stain-normalized per slide (Macenko), as it was trained; IDC Inspector does this itself' : 'taken as scanned'}.

## Intended use
Research and teaching: exploring the pipeline, the panels and the kinds of errors such a model makes
before training your own. **Not for diagnosis**, and not a substitute for a pathologist.

## Data and provenance
${d.source}
- Training: ${d.patients.train} patients, ${d.patches.train.toLocaleString('en-US')} patches (${f(d.positives.train / d.patches.train, 3)} IDC).
- Validation (chose the epoch, the temperature and the thresholds): ${d.patients.val} patients, ${d.patches.val.toLocaleString('en-US')} patches (${f(d.positives.val / d.patches.val, 3)} IDC).
- No test patients of its own: every patient it could learn from was used. Its held-out figures
  below come from models of the same recipe that \`npm run bench:real\` trained with a test split.

## Held-out figures (same recipe, test patients never seen)
${info.heldOut ? `${info.heldOut.source}; ${info.heldOut.testPatients} test patients. Sensitivity, specificity, balanced accuracy and F1 are at the Youden threshold chosen on the validation patients.

| seed | ROC AUC | average precision | sens / spec / bal. acc. / F1 | ECE before → after temperature |
|---|---|---|---|---|
${rows.join('\n')}` : 'Not measured for this recipe yet: run `npm run bench:real` with it.'}

## Calibration and thresholds (chosen on its validation patients)
- Temperature: ${info.temperature === undefined ? 'not fitted' : `${f(info.temperature, 3)} (calibrated probability = sigmoid(logit(p) / T))`}.
- Youden's J threshold: ${f(info.thresholds.youden, 4)} (balances sensitivity and specificity).
- Threshold for recall ≥ ${f(info.thresholds.recallTarget.recall, 2)}: ${f(info.thresholds.recallTarget.threshold, 4)} (screening: fewer missed IDC, more false alarms).

## Known limits
- 50x50 patches at the archive's magnification from one public dataset (one institution's slides):
  other scanners, stains or magnifications are out of distribution; check it on your own labelled
  slides (\`idc evaluate --archive\`) before trusting a figure.
- Patch labels come from coarse annotations: some "IDC" patches hold little tumour and vice versa.
- Figures vary from patient to patient far more than the pooled intervals suggest for any one slide.

## Reproduce
\`${info.reproduce}\` — the same engine and version give the same weights.
`;
}
