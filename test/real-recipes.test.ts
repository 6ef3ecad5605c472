/**
 * The recipes bench:real compares are patches over `idc config init`: each must describe the same
 * training whatever the defaults are, or a table mixes results of different recipes under one name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readBaseline } from '../src/core/baseline';
import { defaultConfig, presetConfig, validateConfig } from '../src/core/config';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASELINE_RECIPE, BASELINE_SEED, RECIPES } from '../bench/real-recipes';

function patched(name: string): Record<string, any> {
  const r = RECIPES[name];
  const c = structuredClone(r.preset ? presetConfig(r.preset) : defaultConfig()) as Record<string, any>;
  r.patch(c);
  return validateConfig(c) as Record<string, any>;
}

test('lean-pbn is the shipped defaults, spelled out; lean is them with moving batch-norm statistics', () => {
  assert.deepEqual(patched('lean-pbn'), defaultConfig());
  assert.deepEqual(patched('defaults'), defaultConfig());
  const lean = patched('lean');
  assert.equal(lean.train.preciseBatchNorm, 0);
  assert.deepEqual({ ...lean, train: { ...lean.train, preciseBatchNorm: 100 } }, defaultConfig());
});

test("focal is the defaults until 2026-12-08: the notebook's loss and regularization, balanced weights, watching val_loss", () => {
  const c = patched('focal');
  const nb = presetConfig('notebook');
  assert.deepEqual([c.train.loss, c.train.focalGamma, c.model.dropout, c.model.l2], [nb.train.loss, nb.train.focalGamma, nb.model.dropout, nb.model.l2]);
  assert.equal(c.train.classWeights, 'balanced');
  assert.deepEqual([c.train.earlyStopping.monitor, c.train.reduceLrOnPlateau.monitor], ['val_loss', 'val_loss']);
  // Everything else is today's defaults (batch, epochs, stains, batch-norm momentum).
  const d = defaultConfig() as Record<string, any>;
  assert.deepEqual([c.train.epochs, c.train.batchSize, c.data.stainNormalization, c.model.bnMomentum], [d.train.epochs, d.train.batchSize, d.data.stainNormalization, d.model.bnMomentum]);
});

test('every recipe validates, and the baseline names one of them', () => {
  for (const name of Object.keys(RECIPES)) assert.doesNotThrow(() => patched(name), name);
  assert.ok(RECIPES[BASELINE_RECIPE], BASELINE_RECIPE);
});

test('the shipped baseline model was trained with BASELINE_RECIPE: its card names it and its run config is that recipe', () => {
  const dir = join(__dirname, '..', 'models', 'baseline');
  const info = readBaseline(dir);
  assert.equal(info.recipe.name, BASELINE_RECIPE);
  assert.equal(info.recipe.seed, BASELINE_SEED);
  // Validated: fields added since it was trained take their defaults, as when the run is read.
  const shipped = validateConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))) as Record<string, any>;
  const recipe = patched(BASELINE_RECIPE);
  assert.deepEqual(shipped.model, recipe.model);
  assert.deepEqual(shipped.data, recipe.data);
  assert.deepEqual({ ...shipped.train, seed: 0 }, { ...recipe.train, seed: 0 });
  assert.equal(shipped.train.seed, BASELINE_SEED);
});

test('an evaluate-only recipe trains exactly as the recipe whose runs it scores', () => {
  const scoring = Object.entries(RECIPES).filter(([, r]) => r.trainedAs);
  assert.ok(scoring.length > 0);
  for (const [name, r] of scoring) {
    assert.ok(RECIPES[r.trainedAs!], `${name} scores runs of an unknown recipe ${r.trainedAs}`);
    const [own, base] = [patched(name), patched(r.trainedAs!)];
    for (const k of ['data', 'model', 'train']) assert.deepEqual(own[k], base[k], `${name}.${k}`);
    assert.notDeepEqual(own.evaluate, base.evaluate, `${name} scores as ${r.trainedAs} does: nothing to compare`);
  }
});
