import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/core/engine/backends';
import { prepareData } from '../src/core/train/data';
import { train } from '../src/core/train/train';
import { evaluateModel } from '../src/core/evaluate/evaluate';
import { predictFolder } from '../src/core/evaluate/predict';
import { readPredictions } from '../src/core/evaluate/predictions';
import { loadModel } from '../src/core/train/model-io';
import { readManifest } from '../src/core/manifest';
import { applyOdMatrix, MACENKO_REFERENCE } from '../src/core/cache/stain-norm';
import { applyStainTable, patientOfId, stainTableOf, type StainTable } from '../src/core/cache/stains';
import { decodeRgb, placePatch, PATCH_BYTES } from '../src/core/cache/pixels';
import { IdcError } from '../src/core/errors';
import { preparedOutput, tinyTrainConfig } from './helpers/pipeline';
import { tempDir } from './helpers/fixtures';

const SAMPLE = resolve(__dirname, '../../shared/data/idc-sample');
let out = '';
const macenko = tinyTrainConfig((c) => { c.train.epochs = 1; c.data.stainNormalization = 'macenko'; });
const none = tinyTrainConfig((c) => { c.train.epochs = 1; c.data.stainNormalization = 'none'; });

before(async () => {
  await initBackend('wasm');
  ({ out } = await preparedOutput(6, 21));
});

test('macenko: a stain table per split, each row read through its patient\'s map; raw reads stay as cached', async () => {
  const data = await prepareData(out, macenko);
  assert.equal(data.stainNormalization, 'macenko');
  for (const split of ['train', 'val', 'test'] as const) {
    const file = join(data.cache.cacheDir, `${split}.stains.json`);
    assert.ok(existsSync(file), file);
    const table = JSON.parse(readFileSync(file, 'utf8')) as StainTable;
    const r = data.open(split);
    try {
      assert.ok(r.stainNormalized);
      const patients = [...new Set(r.ids.map(patientOfId))].sort();
      assert.deepEqual(Object.keys(table.patients).sort(), patients, 'an entry per patient of the split');
      let changed = 0;
      for (let i = 0; i < r.size; i += Math.max(1, Math.floor(r.size / 40))) {
        const raw = r.readRawBatch([i]);
        const entry = table.patients[patientOfId(r.ids[i])];
        const want = raw.slice();
        if ('matrix' in entry) applyOdMatrix(want, entry.matrix);
        assert.deepEqual(r.readBatch([i]), want, `row ${i}`);
        if (Buffer.compare(Buffer.from(raw), Buffer.from(want)) !== 0) changed++;
      }
      assert.ok(changed > 0, 'normalization changes the pixels');
      // Batches (the training path) are normalized too.
      const it = r.batches({ batchSize: 4, shuffle: true, seed: 1 });
      const b = (await it.next()).value!;
      await it.return(undefined);
      assert.deepEqual(b.x, r.readBatch(b.indices));
    } finally {
      r.close();
    }
  }
  // Kept while it matches the cached rows; recomputed when damaged or of other rows.
  const file = join(data.cache.cacheDir, 'train.stains.json');
  const before = statSync(file).mtimeMs;
  await prepareData(out, macenko);
  assert.equal(statSync(file).mtimeMs, before);
  const good = readFileSync(file, 'utf8');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(good), key: 'other' }));
  await prepareData(out, macenko);
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), JSON.parse(good));
  writeFileSync(file, '{"trunc');
  await prepareData(out, macenko);
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), JSON.parse(good));
});

test('none: rows are read as cached', async () => {
  const data = await prepareData(out, none);
  const r = data.open('train');
  try {
    assert.equal(r.stainNormalized, false);
    assert.deepEqual(r.readBatch([0, 5, 9]), r.readRawBatch([0, 5, 9]));
  } finally {
    r.close();
  }
});

test('a run trained with macenko is evaluated, scored and resumed with it whatever the config says now', async () => {
  await train({ outputDir: out, config: macenko, runId: 'm' });
  assert.equal(JSON.parse(readFileSync(join(out, 'runs', 'm', 'config.json'), 'utf8')).data.stainNormalization, 'macenko');
  // Evaluated under a config that says "none": the scores are those of normalized inputs.
  const r = await evaluateModel({ outputDir: out, config: none, runId: 'm', split: 'val' });
  assert.equal(r.report.stainNormalization, 'macenko', 'metrics.json records how inputs were prepared');
  r.model.dispose();
  r.reader.close();
  const preds = readPredictions(r.predictionsFile);
  const data = await prepareData(out, macenko);
  const val = data.open('val');
  const model = await loadModel(join(out, 'runs', 'm', 'model'));
  try {
    const rows = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => Math.floor((k * val.size) / 8));
    const score = async (px: Uint8Array) => {
      const y = tf.tidy(() => model.predict(tf.tensor4d(Float32Array.from(px, (v) => v / 255), [rows.length, 50, 50, 3])) as tf.Tensor);
      const d = await y.data();
      y.dispose();
      return Array.from(d);
    };
    const normalized = await score(val.readBatch(rows));
    const raw = await score(val.readRawBatch(rows));
    const got = rows.map((i) => preds.find((p) => p.id === val.ids[i])!.score);
    got.forEach((s, k) => assert.ok(Math.abs(s - normalized[k]) < 1e-4, `row ${rows[k]}: ${s} vs ${normalized[k]}`));
    assert.ok(raw.some((s, k) => Math.abs(s - normalized[k]) > 1e-4), 'raw inputs would score differently');

    // idc predict on a folder of one patient's patches normalizes them with that folder's own estimate.
    const manifest = await readManifest(join(out, 'manifest.csv'));
    const meta = JSON.parse(readFileSync(join(out, 'manifest.meta.json'), 'utf8')) as { archive: string };
    const patient = patientOfId(val.ids[0]);
    const folder = join(tempDir(), 'slide');
    mkdirSync(folder);
    for (const m of manifest.filter((m) => m.patient === patient)) copyFileSync(join(meta.archive, m.source), join(folder, `${m.id}.png`));
    const p = await predictFolder({ folder, outputDir: out, config: none, runId: 'm' });
    const summary = JSON.parse(readFileSync(join(p.dir, 'summary.json'), 'utf8'));
    assert.equal(summary.stainNormalization, 'macenko');
    assert.equal(p.stainNormalization, 'macenko');
    assert.ok('matrix' in summary.stains[patient], 'the folder\'s own estimate is recorded');
    // The same patient's whole slide in the cache gives the same estimate, hence the same scores.
    const fromEval = new Map(preds.map((q) => [q.id, q.score]));
    const diffs = p.predictions.map((q) => Math.abs(q.score - fromEval.get(q.id)!));
    assert.ok(Math.max(...diffs) < 1e-4, `predict vs evaluate: max score difference ${Math.max(...diffs)}`);
  } finally {
    model.dispose();
    val.close();
  }
});

test('resuming a run with another stain normalization is refused, with the way out', async () => {
  const ac = new AbortController();
  const cfg = tinyTrainConfig((c) => { c.train.epochs = 3; c.data.stainNormalization = 'macenko'; });
  await assert.rejects(train({ outputDir: out, config: cfg, runId: 'half', signal: ac.signal, onEvent: (e) => { if (e.type === 'epoch') ac.abort(); } }), /cancel/i);
  const other = tinyTrainConfig((c) => { c.train.epochs = 3; });
  await assert.rejects(train({ outputDir: out, config: other, runId: 'half' }), (e) => e instanceof IdcError && e.code === 'CHECKPOINT_MISMATCH' && /stainNormalization "macenko"/.test(e.message) && /back to "macenko"/.test(e.hint ?? ''));
  const r = await train({ outputDir: out, config: cfg, runId: 'half' });
  assert.equal(r.history.length, 3, 'resumed with the setting it started with');
});

test('real sample: every slide gets an estimate, and normalized slides carry the reference stains', { skip: !existsSync(SAMPLE) && 'shared sample not present' }, () => {
  const files: [string, string][] = [];
  for (const p of readdirSync(SAMPLE)) {
    for (const c of ['0', '1']) {
      const dir = join(SAMPLE, p, c);
      if (existsSync(dir)) for (const f of readdirSync(dir)) files.push([p, join(dir, f)]);
    }
  }
  const px = new Uint8Array(files.length * PATCH_BYTES);
  files.forEach(([, f], i) => placePatch(decodeRgb(readFileSync(f)), 'resize', px, i * PATCH_BYTES));
  const patients = files.map(([p]) => p);
  const table = stainTableOf(px, patients);
  const entries = Object.entries(table.patients);
  assert.equal(entries.length, 16);
  const cos = (a: readonly number[], b: readonly number[]) => a.reduce((s, v, i) => s + v * b[i], 0) / Math.hypot(...a) / Math.hypot(...b);
  const maxH: number[] = [];
  for (const [p, e] of entries) {
    assert.ok('matrix' in e, `${p}: ${'skipped' in e ? e.skipped : ''}`);
    // Real H&E: close to the typical vectors, haematoxylin bluer than eosin.
    assert.ok(cos(e.estimate.he[0], MACENKO_REFERENCE.he[0]) > 0.98 && cos(e.estimate.he[1], MACENKO_REFERENCE.he[1]) > 0.98, p);
    maxH.push(e.estimate.maxC[0]);
  }
  assert.ok(Math.max(...maxH) / Math.min(...maxH) > 1.5, 'staining strength differs between these slides');
  const norm = px.slice();
  applyStainTable(norm, patients, table);
  for (const [p, e] of Object.entries(stainTableOf(norm, patients).patients)) {
    assert.ok('matrix' in e, p);
    assert.ok(cos(e.estimate.he[0], MACENKO_REFERENCE.he[0]) > 0.999 && cos(e.estimate.he[1], MACENKO_REFERENCE.he[1]) > 0.999, p);
    e.estimate.maxC.forEach((m, k) => assert.ok(Math.abs(m / MACENKO_REFERENCE.maxC[k] - 1) < 0.1, `${p} maxC[${k}] ${m}`));
  }
});

test('a patient without an estimate is used as scanned, and training says so', async () => {
  const data = await prepareData(out, macenko);
  const file = join(data.cache.cacheDir, 'train.stains.json');
  const good = readFileSync(file, 'utf8');
  try {
    const table = JSON.parse(good) as StainTable;
    const [patient] = Object.keys(table.patients);
    table.patients[patient] = { skipped: 'too little tissue' };
    writeFileSync(file, JSON.stringify(table));
    const again = await prepareData(out, macenko);
    const r = again.open('train');
    const row = r.ids.findIndex((id) => patientOfId(id) === patient);
    assert.deepEqual(r.readBatch([row]), r.readRawBatch([row]));
    r.close();
    let warning = '';
    await train({ outputDir: out, config: macenko, runId: 'warn', onEvent: (e) => { if (e.type === 'start') warning = e.warning ?? ''; } }, again);
    assert.match(warning, new RegExp(`no stain estimate for patient ${patient} \\(too little tissue\\); their patches are used as scanned`));
  } finally {
    writeFileSync(file, good);
  }
});
