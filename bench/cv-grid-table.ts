/**
 * The README table of bench/cv-grid.sh: one row per recipe, training seed and test-time
 * augmentation, from each pooled out-of-fold metrics.json.
 * Usage: node --import tsx bench/cv-grid-table.ts [results folder, default .idc-cv-grid/results]
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { EvalReport } from '../src/core/evaluate/types';

const dir = resolve(process.argv[2] ?? '.idc-cv-grid/results');
if (!existsSync(dir)) {
  console.error(`No results in ${dir}: run bench/cv-grid.sh first.`);
  process.exit(1);
}
const f = (x: number | null | undefined, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));
const ci = (iv: [number, number] | null | undefined) => (iv ? `${f(iv[0])}–${f(iv[1])}` : '—');

const rows: string[] = [];
for (const name of readdirSync(dir).sort()) {
  const file = join(dir, name, 'metrics.json');
  if (!existsSync(file)) continue;
  const m = JSON.parse(readFileSync(file, 'utf8')) as EvalReport;
  const match = /^(.*)-seed(\d+)-(none|flips|dihedral)$/.exec(name);
  if (!match || !m.cv) continue;
  const [, recipe, seed, tta] = match;
  const folds = m.cv.rows.map((r) => f(r.auc)).join(' / ');
  rows.push(`| ${recipe.replace(/-/g, ' + ')} | ${seed} | ${tta} | **${f(m.auc)}** (${ci(m.intervals?.auc)}) | ${f(m.averagePrecision)} (${ci(m.intervals?.averagePrecision)}) | ${f(m.cv.mean.auc)} ± ${f(m.cv.sd.auc)} | ${folds} | ${f(m.calibration?.before.ece)} |`);
}
console.log('| recipe | train seed | TTA | pooled ROC AUC (95% CI by patient) | pooled AP (95% CI) | fold AUC mean ± sd (two-class folds) | AUC per fold | ECE |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
