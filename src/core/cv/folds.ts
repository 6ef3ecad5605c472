import { IdcError } from '../errors';
import type { ManifestRow } from '../manifest';
import { Rng } from '../rng';
import { checkNoOverlap, comparePatientIds, groupPatients, summarize, type Patient, type SplitFile } from '../split';

/**
 * Patient-grouped, stratified k-fold assignment: scikit-learn's StratifiedGroupKFold(shuffle=True)
 * algorithm. Patients are shuffled with the seed, then taken in descending order of the spread of
 * their class counts, each into the fold that keeps every class's share across folds most even
 * (ties: the fold with fewer patches). Whole patients only: patches of one slide are correlated.
 */
export function patientFolds(rows: readonly ManifestRow[], k: number, seed: number): { folds: string[][]; warnings: string[] } {
  // One fold tests, the next chooses the epoch, the rest train: fewer than 3 leaves nothing to train on.
  if (!Number.isInteger(k) || k < 3) throw new IdcError(`Cross-validation needs at least 3 folds (got ${k}).`, 'Use --folds 5 (or any whole number >= 3).', 'USAGE');
  const patients = groupPatients(rows);
  const withPos = patients.filter((p) => p.positives > 0).length;
  const withNeg = patients.filter((p) => p.patches > p.positives).length;
  if (k > patients.length) {
    throw new IdcError(`${k} folds need at least ${k} patients; the manifest has ${patients.length}.`, patients.length >= 3 ? `Use --folds ${patients.length} or fewer.` : 'Cross-validation by patient needs at least 3 patients.', 'TOO_FEW_PATIENTS');
  }
  // Folds without one class have no AUC of their own; the pooled out-of-fold figures stay defined.
  const warnings: string[] = [];
  for (const [cls, n] of [['IDC-positive', withPos], ['IDC-negative', withNeg]] as const) {
    if (k > n) warnings.push(`Only ${n} patient${n === 1 ? ' has' : 's have'} ${cls} patches, fewer than the ${k} folds: ${k - n} or more test folds (and early-stopping folds) hold no ${cls} patch, so their own ROC AUC is undefined and early stopping there watches the loss of one class. The pooled out-of-fold figures are still defined; ${n >= 3 ? `--folds ${n} gives every fold both classes` : 'more patients of that class would give every fold both'}.`);
  }
  const counts = (p: Patient): [number, number] => [p.patches - p.positives, p.positives];
  const total = [0, 0];
  for (const p of patients) { const c = counts(p); total[0] += c[0]; total[1] += c[1]; }
  const rng = new Rng(`cv-folds:${seed}`);
  const order = rng.shuffle(patients.slice());
  const spread = (p: Patient) => std(counts(p));
  // Stable sort after the shuffle, as numpy's argsort(kind="mergesort") on -std.
  const ranked = order.map((p, i) => ({ p, i, s: spread(p) })).sort((a, b) => b.s - a.s || a.i - b.i).map((x) => x.p);
  const perFold = Array.from({ length: k }, () => [0, 0]);
  const folds: Patient[][] = Array.from({ length: k }, () => []);
  for (const p of ranked) {
    const c = counts(p);
    let best = -1, bestEval = Infinity, bestSize = Infinity;
    for (let f = 0; f < k; f++) {
      perFold[f][0] += c[0]; perFold[f][1] += c[1];
      const evalF = (std(perFold.map((x) => (total[0] ? x[0] / total[0] : 0))) + std(perFold.map((x) => (total[1] ? x[1] / total[1] : 0)))) / 2;
      perFold[f][0] -= c[0]; perFold[f][1] -= c[1];
      const size = perFold[f][0] + perFold[f][1];
      if (evalF < bestEval - 1e-12 || (Math.abs(evalF - bestEval) <= 1e-12 && size < bestSize)) { best = f; bestEval = evalF; bestSize = size; }
    }
    perFold[best][0] += c[0]; perFold[best][1] += c[1];
    folds[best].push(p);
  }
  // The greedy can leave a fold empty when a few patients dominate; give it the smallest movable patient.
  for (const f of folds) {
    if (f.length) continue;
    const donor = folds.filter((d) => d.length > 1).sort((a, b) => b.length - a.length)[0];
    donor.sort((a, b) => a.patches - b.patches);
    f.push(donor.shift()!);
  }
  return { folds: folds.map((f) => f.map((p) => p.id).sort(comparePatientIds)), warnings };
}

/**
 * Fold i's split: its own patients are the test set, the next fold (i + 1 mod k) chooses the
 * epoch (early stopping, learning-rate reduction), the other k - 2 folds train. The test fold
 * never influences its model, not even through early stopping.
 */
export function foldSplit(rows: readonly ManifestRow[], folds: readonly string[][], i: number, meta: { seed: number; manifestHash: string }): SplitFile {
  const k = folds.length;
  const test = folds[i];
  const val = folds[(i + 1) % k];
  const train = folds.filter((_, j) => j !== i && j !== (i + 1) % k).flat().sort(comparePatientIds);
  const byPatient = new Map(groupPatients(rows).map((p) => [p.id, p]));
  const sum = (ids: readonly string[]) => summarize(ids.map((id) => byPatient.get(id)!));
  const summary = { train: sum(train), val: sum(val), test: sum(test) };
  const n = rows.length || 1;
  const split: SplitFile = {
    version: 1, seed: meta.seed, ratios: [summary.train.patches / n, summary.val.patches / n, summary.test.patches / n], stratify: true,
    manifestHash: meta.manifestHash, createdAt: new Date().toISOString(), patients: { train, val: [...val], test: [...test] }, summary,
  };
  checkNoOverlap(split);
  return split;
}

function std(xs: readonly number[]): number {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) * (x - m), 0) / xs.length);
}
