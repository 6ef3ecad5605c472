import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initBackend } from '../src/core/engine/backends';
import { organize } from '../src/core/organize/organize';
import { readManifest, manifestHash } from '../src/core/manifest';
import { summarize, writeSplit, type SplitFile } from '../src/core/split';
import { defaultConfig } from '../src/core/config';
import { train, type TrainEvent } from '../src/core/train/train';
import { oneClassValidationWarning } from '../src/core/train/validation-check';
import { buildTrainingView } from '../src/core/views/training';
import { tempDir, writePatches, gridSpecs } from './helpers/fixtures';
import { tinyTrainConfig } from './helpers/pipeline';

const CLI = resolve(__dirname, '../dist/cli.js');

test('the one-class validation warning says what is undefined and what the callbacks will do', () => {
  // Watching val_loss (the notebook's monitor): it rewards calling everything the one class.
  const t = structuredClone(defaultConfig().train);
  t.earlyStopping.monitor = 'val_loss';
  t.reduceLrOnPlateau.monitor = 'val_loss';
  const positives = oneClassValidationWarning([1, 1, 1], t)!;
  assert.match(positives, /validation split holds only IDC-positive patches \(3\)/);
  assert.match(positives, /validation AUC is undefined/);
  assert.match(positives, /so is the recall \(specificity\) of IDC-negative patches/);
  assert.match(positives, /val_loss/);
  assert.match(positives, /early stopping/i);
  assert.match(positives, /learning-rate reduction/i);
  assert.match(positives, /idc split/);
  const negatives = oneClassValidationWarning([0, 0], t)!;
  assert.match(negatives, /only IDC-negative patches \(2\)/);
  assert.match(negatives, /recall and precision of IDC-positive patches are undefined/);
  // Watching val_auc: it is undefined every epoch, so neither callback ever acts.
  const auc = structuredClone(t);
  auc.earlyStopping.monitor = 'val_auc';
  auc.reduceLrOnPlateau.monitor = 'val_auc';
  const w = oneClassValidationWarning([1, 1], auc)!;
  assert.match(w, /never stops early/);
  assert.match(w, new RegExp(`all ${t.epochs} epochs run`));
  assert.match(w, /learning rate is never reduced/);
  const off = structuredClone(t);
  off.earlyStopping.enabled = false;
  off.reduceLrOnPlateau.enabled = false;
  assert.doesNotMatch(oneClassValidationWarning([1], off)!, /early stopping|learning-rate reduction/i);
  assert.equal(oneClassValidationWarning([0, 1, 1], t), undefined);
  assert.equal(oneClassValidationWarning([], t), undefined);
});

let out: string;
let root: string;

before(async () => {
  await initBackend('wasm');
  root = tempDir('idc-oneclass-');
  const archive = join(root, 'archive');
  out = join(root, 'out');
  // Patient 13 has IDC-positive patches only: it alone is the validation split.
  writePatches(archive, [...gridSpecs(['11', '12'], 12, 5), ...gridSpecs(['13'], 8, 8)]);
  await organize({ archive, out });
  const rows = await readManifest(join(out, 'manifest.csv'));
  const patients = { train: ['11', '12'], val: ['13'], test: [] as string[] };
  const of = (ids: string[]) => summarize(ids.map((id) => ({ patches: rows.filter((r) => r.patient === id).length, positives: rows.filter((r) => r.patient === id && r.label === 1).length })));
  const split: SplitFile = {
    version: 1, seed: 1, ratios: [0.7, 0.3, 0], stratify: false, manifestHash: manifestHash(readFileSync(join(out, 'manifest.csv'), 'utf8')), createdAt: new Date().toISOString(),
    patients, summary: { train: of(patients.train), val: of(patients.val), test: of([]) },
  };
  await writeSplit(join(out, 'split.json'), split);
});

test('training on a one-class validation split warns at the start, in run.json and in the Training view (also once finished)', async () => {
  const events: TrainEvent[] = [];
  const cfg = tinyTrainConfig((c) => { c.train.epochs = 1; c.train.stepsPerEpoch = 1; });
  await train({ outputDir: out, config: cfg, runId: 'one-class', onEvent: (e) => events.push(e) });
  const start = events.find((e) => e.type === 'start');
  assert.ok(start && start.type === 'start');
  assert.match(start.warning ?? '', /validation split holds only IDC-positive patches \(8\)/);
  const run = JSON.parse(readFileSync(join(out, 'runs', 'one-class', 'run.json'), 'utf8'));
  assert.equal(run.status, 'finished');
  assert.equal(run.warnings.length, 1);
  assert.match(run.warnings[0], /validation AUC is undefined/);
  const view = buildTrainingView(out, { runId: 'one-class' })!;
  assert.deepEqual(view.warnings, run.warnings);
});

test('idc train prints the one-class validation warning on its start line', () => {
  writeFileSync(join(root, 'idc.config.json'), JSON.stringify({ engine: { backend: 'wasm' }, model: { filters: [8, 16], dense: [16] }, train: { epochs: 1, stepsPerEpoch: 1, batchSize: 16 } }));
  const r = spawnSync(process.execPath, [CLI, 'train', '--out', out, '--run', 'cli-one-class', '-q'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  const i = lines.findIndex((l) => l.startsWith('Run cli-one-class:'));
  assert.ok(i >= 0, r.stdout);
  assert.match(lines[i + 1], /^Warning: The validation split holds only IDC-positive patches \(8\): validation AUC is undefined/);
});
