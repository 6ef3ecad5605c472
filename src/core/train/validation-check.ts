import type { TrainConfig } from '../config';

/**
 * What training on a validation split of one class means, in words; undefined when it has both
 * classes (or nothing). Said at the start of training and kept in run.json for the Training panel.
 */
export function oneClassValidationWarning(labels: ArrayLike<number>, t: Pick<TrainConfig, 'epochs' | 'earlyStopping' | 'reduceLrOnPlateau'>): string | undefined {
  const n = labels.length;
  let positives = 0;
  for (let i = 0; i < n; i++) if (labels[i] === 1) positives++;
  if (n === 0 || (positives > 0 && positives < n)) return undefined;
  const only = positives ? 'IDC-positive' : 'IDC-negative';
  const missing = positives ? 'IDC-negative' : 'IDC-positive';
  const parts = [
    positives
      ? `The validation split holds only IDC-positive patches (${n}): validation AUC is undefined, so is the recall (specificity) of IDC-negative patches, and validation precision is 1 whatever the model does.`
      : `The validation split holds only IDC-negative patches (${n}): validation AUC is undefined, and recall and precision of IDC-positive patches are undefined too (shown as 0).`,
  ];
  const watches = (what: string, monitor: string, onAuc: string): string => monitor === 'val_auc'
    ? `${what} watches val_auc, undefined every epoch: ${onAuc}.`
    : `${what} watches val_loss, computed on ${only} patches alone: it keeps falling as the model calls more patches ${only}, so it rewards that bias rather than telling the classes apart.`;
  const es = t.earlyStopping.enabled ? t.earlyStopping : undefined;
  const rlr = t.reduceLrOnPlateau.enabled ? t.reduceLrOnPlateau : undefined;
  if (es) parts.push(watches('Early stopping', es.monitor, `it never stops early and never keeps best weights (all ${t.epochs} epochs run and the last weights are kept)`));
  if (rlr) parts.push(watches('Learning-rate reduction', rlr.monitor, 'the learning rate is never reduced'));
  parts.push(`Run "idc split" again (it gives validation both classes when the patients allow), or add patients with ${missing} patches.`);
  return parts.join(' ');
}
