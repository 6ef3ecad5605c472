/** Patient-level breakdown of patch results at one operating threshold (score >= threshold ⇒ IDC). */
import { rocAucFromTable } from './curves';
import { tableCountsAt, thresholdTable } from './table';

export interface PatientRow {
  patient: string;
  label: number;
  score: number;
}

export interface PatientResult {
  patient: string;
  n: number;
  /** Patches labelled positive (label === 1). */
  positives: number;
  /** positives / n: the patient's IDC prevalence. */
  positiveRate: number;
  /** Share of the patient's patches predicted positive at the threshold. */
  predictedPositiveRate: number;
  /** ROC AUC over this patient's patches; null unless both classes are present. */
  auc: number | null;
  /** tp / positives; null without positives. */
  recall: number | null;
  falseNegatives: number;
  falsePositives: number;
  meanScore: number;
}

/** Nulls sort after numbers: a patient with nothing to measure is not "worst". */
function ascNullLast(a: number | null, b: number | null): number {
  if (a === null || b === null) return a === null ? (b === null ? 0 : 1) : -1;
  return a - b;
}

/**
 * One result per patient, worst first: most false negatives (missed IDC is the costly error), then
 * lowest recall, then lowest AUC (null recall/AUC after any number), then most false positives, then
 * patient id so the order is deterministic.
 */
export function perPatient(rows: readonly PatientRow[], threshold: number): PatientResult[] {
  const groups = new Map<string, number[]>();
  rows.forEach((r, i) => {
    const g = groups.get(r.patient);
    if (g) g.push(i); else groups.set(r.patient, [i]);
  });
  const out: PatientResult[] = [];
  for (const [patient, idx] of groups) {
    const n = idx.length;
    const labels = new Uint8Array(n);
    const scores = new Float64Array(n);
    let sum = 0;
    for (let j = 0; j < n; j++) {
      const r = rows[idx[j]];
      labels[j] = r.label === 1 ? 1 : 0;
      scores[j] = r.score;
      sum += r.score;
    }
    const table = thresholdTable(labels, scores);
    const { tp, fp, fn } = tableCountsAt(table, threshold);
    const P = table.positives;
    out.push({
      patient, n, positives: P, positiveRate: P / n, predictedPositiveRate: (tp + fp) / n,
      auc: P && table.negatives ? rocAucFromTable(table).value : null,
      recall: P ? tp / P : null,
      falseNegatives: fn, falsePositives: fp, meanScore: sum / n,
    });
  }
  return out.sort((a, b) =>
    b.falseNegatives - a.falseNegatives
    || ascNullLast(a.recall, b.recall)
    || ascNullLast(a.auc, b.auc)
    || b.falsePositives - a.falsePositives
    || (a.patient < b.patient ? -1 : a.patient > b.patient ? 1 : 0));
}
