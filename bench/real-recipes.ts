/**
 * The training recipes bench/real.ts compares on real slides. Each one is a patch over
 * `idc config init` (or its notebook preset): what differs from the defaults is all there is.
 */
export interface Recipe {
  /** What it changes, for the table's legend. */
  about: string;
  preset?: 'notebook';
  patch: (c: Record<string, any>) => void;
  /**
   * Scores the runs another recipe trained (same data, model and train settings; bench/real.ts
   * refuses others), so an evaluate-only change such as test-time augmentation costs no training.
   */
  trainedAs?: string;
}

export const RECIPES: Record<string, Recipe> = {
  defaults: { about: '`idc config init` as shipped (the same as lean-pbn since 2026-12-08)', patch: () => {} },
  // The defaults until 2026-12-08: the notebook's loss and regularization with balanced class weights.
  focal: {
    about: 'the defaults until 2026-12-08: focal loss (γ 2) with balanced class weights, dropout 0.5, L2 0.01, early stopping and LR plateau on val loss',
    patch: (c) => {
      Object.assign(c.train, { loss: 'focal', focalGamma: 2, classWeights: 'balanced', preciseBatchNorm: 0 });
      Object.assign(c.model, { dropout: 0.5, l2: 0.01 });
      Object.assign(c.train.earlyStopping, { monitor: 'val_loss', patience: 5 });
      Object.assign(c.train.reduceLrOnPlateau, { monitor: 'val_loss', patience: 2 });
    },
  },
  notebook: { about: 'the reference notebook (`idc config init --preset notebook`)', preset: 'notebook', patch: () => {} },
  // Less regularization for a model that underfits real slides: plain cross-entropy without class
  // weights (thresholds are chosen on validation patients anyway), light dropout and L2, and
  // early stopping / LR plateau on validation AUC rather than a noisy focal val_loss.
  // The defaults of 2026-12-08 before precise batch norm (docs/real-data.md); spelled out so its results keep their meaning.
  lean: {
    about: 'BCE, no class weights, dropout 0.2, L2 1e-4, early stopping and LR plateau on val AUC, moving batch-norm statistics',
    patch: (c) => {
      Object.assign(c.train, { loss: 'bce', classWeights: 'none', preciseBatchNorm: 0 });
      Object.assign(c.model, { dropout: 0.2, l2: 1e-4 });
      Object.assign(c.train.earlyStopping, { monitor: 'val_auc', patience: 5 });
      Object.assign(c.train.reduceLrOnPlateau, { monitor: 'val_auc', patience: 2 });
    },
  },
  // lean plus a fourth conv block (4x4 → 1x1; ~7 % more compute, 3.5x the weights).
  'lean-deep': {
    about: 'lean + a fourth conv block of 256 filters',
    patch: (c) => {
      RECIPES.lean.patch(c);
      c.model.filters = [32, 64, 128, 256];
    },
  },
  // The validation figures jump from epoch to epoch at small learning rates while training is
  // smooth, and early stopping ends runs on that noise (lean-deep seed 2 stopped at epoch 9):
  // batch-norm statistics from 100 training batches through each epoch's final weights.
  'lean-pbn': {
    about: 'lean with precise batch norm (statistics from 100 training batches at each epoch\'s end, dropout off): the defaults since 2026-12-08',
    patch: (c) => {
      RECIPES.lean.patch(c);
      c.train.preciseBatchNorm = 100;
    },
  },
  // Test-time augmentation over the 8 flips and right-angle turns, on the same trained runs.
  'lean-tta': { about: 'lean\'s runs scored with dihedral test-time augmentation (8 views)', trainedAs: 'lean', patch: (c) => { RECIPES.lean.patch(c); c.evaluate.tta = 'dihedral'; } },
  'lean-deep-tta': { about: 'lean-deep\'s runs scored with dihedral test-time augmentation (8 views)', trainedAs: 'lean-deep', patch: (c) => { RECIPES['lean-deep'].patch(c); c.evaluate.tta = 'dihedral'; } },
};

/** The recipe and seed of the shipped baseline model (bench/train-baseline.ts), chosen from bench:real's table. */
export const BASELINE_RECIPE = 'lean';
export const BASELINE_SEED = 1;
