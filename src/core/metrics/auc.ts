/**
 * The training loop's entry points (kept for its imports); the implementation lives in table.ts and
 * curves.ts.
 */
import { rocAucFromTable } from './curves';
import { thresholdTable } from './table';

export { confusionAt } from './table';

/**
 * Area under the ROC curve, exactly as scikit-learn's roc_auc_score for binary labels (label 1
 * positive): tied scores count one half. NaN when only one class is present (scikit-learn < 1.8
 * raises) and, so a diverged model cannot crash an epoch, when any score is NaN or infinite
 * (scikit-learn raises on those too).
 */
export function rocAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const n = labels.length;
  if (scores.length !== n) throw new Error(`rocAuc: ${n} labels but ${scores.length} scores`);
  for (let i = 0; i < n; i++) if (!Number.isFinite(scores[i])) return NaN;
  return rocAucFromTable(thresholdTable(labels, scores)).value;
}
