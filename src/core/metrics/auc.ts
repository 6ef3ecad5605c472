/**
 * Area under the ROC curve, exactly as scikit-learn's roc_auc_score for binary labels: tied
 * scores count one half (trapezoid over tied blocks). Undefined (NaN) when only one class is present,
 * where scikit-learn raises.
 */
export function rocAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const n = labels.length;
  if (scores.length !== n) throw new Error(`rocAuc: ${n} labels but ${scores.length} scores`);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => scores[a] - scores[b]);
  let pos = 0;
  for (let i = 0; i < n; i++) if (labels[i] === 1) pos++;
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  // Mann–Whitney U with mid-ranks for ties.
  let rankSumPos = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const midRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (labels[order[k]] === 1) rankSumPos += midRank;
    i = j + 1;
  }
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Confusion counts at one threshold; a score >= threshold predicts positive (as `score >= t` in scikit-learn's curves). */
export function confusionAt(labels: ArrayLike<number>, scores: ArrayLike<number>, threshold: number): { tp: number; fp: number; tn: number; fn: number } {
  let tp = 0, fp = 0, tn = 0, fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = scores[i] >= threshold;
    if (labels[i] === 1) { if (p) tp++; else fn++; } else if (p) fp++; else tn++;
  }
  return { tp, fp, tn, fn };
}
