import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { initBackend } from '../src/core/engine/backends';
import { TorchTrainer } from '../src/core/train/torch-trainer';
import { applyAugmentation, drawAugmentation, toFloat } from '../src/core/train/augment';
import { prepareData, type PreparedData } from '../src/core/train/data';
import { train } from '../src/core/train/train';
import { evaluateModel } from '../src/core/evaluate/evaluate';
import { Rng } from '../src/core/rng';
import type { CacheReader } from '../src/core/cache';
import { maxAbsDiff } from './helpers/batches';
import { preparedOutput, tinyTrainConfig } from './helpers/pipeline';

// The torch engine reading the patch cache itself (engines/torch/idc_torch/rows.py).
const PY = '/usr/bin/python3';
const hasTorch = existsSync(PY) && spawnSync(PY, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;
const required = process.env.IDC_REQUIRE_TORCH === '1';
const skip = hasTorch || required ? false : `no PyTorch for ${PY} (apt-get install python3-torch python3-numpy); IDC_REQUIRE_TORCH=1 makes this a failure`;

const macenko = () => tinyTrainConfig((c) => {
  c.data.stainNormalization = 'macenko';
  c.engine.backend = 'torch';
  c.engine.python = PY;
  c.engine.threads = 1;
  c.train.augment = { flipHorizontal: true, flipVertical: true, rotate: 0.2, stainJitter: { scale: 0.2, shift: 0.02 } };
});
const modelOpts = () => ({ model: { ...macenko().model, seed: 4, dropout: 0 }, learningRate: 1e-3, loss: { kind: 'bce' as const, gamma: 0 }, python: PY, threads: 1 });

let out = '';
let data: PreparedData;
let reader: CacheReader;

before(async () => {
  if (required) assert.ok(hasTorch, `IDC_REQUIRE_TORCH=1 but ${PY} cannot import torch and numpy`);
  if (!hasTorch) return;
  await initBackend('wasm');
  ({ out } = await preparedOutput());
  data = await prepareData(out, macenko());
  reader = data.open('train');
});

after(() => reader?.close());

/** 48 rows in a seeded order, as an epoch would draw them. */
function someRows(seed: number, n = 48): Uint32Array {
  const r = new Rng(seed);
  return Uint32Array.from({ length: n }, () => Math.floor(r.next() * reader.size));
}

test('the engine reads cache rows as this process does: Macenko maps bit for bit, augmentation to 1e-5', { skip }, async () => {
  const torch = await TorchTrainer.create(modelOpts());
  try {
    const opened = await torch.openRows([reader]);
    assert.ok(opened.ok, JSON.stringify(opened));
    assert.match(opened.where, /train memory-mapped/);
    const rows = someRows(1);
    const n = rows.length;
    const normalized = reader.readBatch(rows);
    // The check means something only if some rows were mapped.
    const raw = reader.readRawBatch(rows);
    assert.ok(normalized.some((v, i) => v !== raw[i]), 'some rows are stain-normalized');
    assert.ok(Object.values(data.stains.train!.patients).some((e) => 'matrix' in e));

    const none = new Float64Array(n * 9);
    const plain = await torch.rowPixels({ split: 'train', indices: rows, augment: none, geometry: false, stain: false });
    assert.deepEqual(plain, toFloat(normalized, n), 'unaugmented rows equal, bit for bit');

    const opts = macenko().train.augment;
    const drawn = drawAugmentation(n, opts, new Rng(9));
    assert.ok(drawn.some((v, i) => i % 9 === 2 && Math.abs(v) > 0.1), 'rotations were drawn');
    const geo = await torch.rowPixels({ split: 'train', indices: rows, augment: drawn, geometry: true, stain: false });
    const d1 = maxAbsDiff(geo, applyAugmentation(normalized, n, drawn, false));
    assert.ok(d1 <= 1e-5, `flips and rotation differ by ${d1}`);
    const both = await torch.rowPixels({ split: 'train', indices: rows, augment: drawn, geometry: true, stain: true });
    const d2 = maxAbsDiff(both, applyAugmentation(normalized, n, drawn, true));
    assert.ok(d2 <= 1e-5, `with stain jitter they differ by ${d2}`);
    assert.ok(maxAbsDiff(both, geo) > 0.01, 'stain jitter changed the colours');
  } finally {
    await torch.dispose();
  }
});

test('a split held whole on the device (as on a GPU with room) gives the same rows', { skip }, async () => {
  // CUDA devices hold a split that fits; IDC_TORCH_RESIDENT=1 takes that path on this CPU.
  process.env['IDC_TORCH_RESIDENT'] = '1';
  const torch = await TorchTrainer.create(modelOpts());
  delete process.env['IDC_TORCH_RESIDENT'];
  try {
    assert.deepEqual(await torch.openRows([reader]), { ok: true, where: 'train resident' });
    const rows = someRows(2, 64);
    const none = new Float64Array(rows.length * 9);
    assert.deepEqual(await torch.rowPixels({ split: 'train', indices: rows, augment: none, geometry: false, stain: false }), toFloat(reader.readBatch(rows), rows.length));
    await assert.rejects(torch.rowPixels({ split: 'train', indices: Uint32Array.of(reader.size), augment: new Float64Array(9), geometry: false, stain: false }), /train row out of range/);
  } finally {
    await torch.dispose();
  }
});

test('training on cache rows matches training on pixels step by step', { skip }, async () => {
  const [a, b] = [await TorchTrainer.create(modelOpts()), await TorchTrainer.create(modelOpts())];
  try {
    const opened = await b.openRows([reader]);
    assert.ok(opened.ok);
    const opts = macenko().train.augment;
    for (let i = 0; i < 8; i++) {
      const rows = someRows(100 + i, 16);
      const y = Uint8Array.from(rows, (r) => reader.labels[r]);
      const drawn = drawAugmentation(rows.length, opts, new Rng(i));
      const x = applyAugmentation(reader.readBatch(rows), rows.length, drawn, true);
      const p = await a.trainStep(x, y, rows.length, i);
      const q = await b.trainRows({ split: 'train', indices: rows, y, augment: drawn, geometry: true, stain: true }, i);
      assert.ok(Math.abs(p.loss - q.loss) <= 1e-4, `step ${i}: pixels ${p.loss}, rows ${q.loss}`);
      assert.ok(maxAbsDiff(p.probs, q.probs) <= 1e-4, `step ${i}: probabilities`);
    }
    // Same weights (the steps' float differences compound), then the same probabilities.
    await b.setWeights(await a.getWeights());
    const rows = someRows(7, 64);
    const dp = maxAbsDiff(await a.predict(toFloat(reader.readBatch(rows), rows.length), rows.length), await b.predictRows('train', rows));
    assert.ok(dp <= 1e-6, `inference differs by ${dp}`);
  } finally {
    await a.dispose();
    await b.dispose();
  }
});

test('a cache the engine cannot open is answered with the reason, and the engine goes on', { skip }, async () => {
  const torch = await TorchTrainer.create(modelOpts());
  try {
    const moved = { ...reader, split: reader.split, size: reader.size, meta: reader.meta, stainNormalized: false, cacheDir: join(out, 'no-such-cache') } as CacheReader;
    const r = await torch.openRows([moved]);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /no-such-cache.*train\.u8/);
    const short = { ...moved, cacheDir: reader.cacheDir, size: reader.size + 1 } as CacheReader;
    const s = await torch.openRows([short]);
    assert.match(!s.ok ? s.reason : '', new RegExp(`holds ${reader.size} patches, expected ${reader.size + 1}`));
    // A stain table of other rows (the cache was rebuilt): the engine must not apply it.
    const stale = { ...moved, cacheDir: reader.cacheDir, stainNormalized: true, meta: { ...reader.meta, key: 'another-key' } } as CacheReader;
    const t = await torch.openRows([stale]);
    assert.match(!t.ok ? t.reason : '', /train\.stains\.json belongs to other rows/);
    await assert.rejects(torch.predictRows('train', Uint32Array.of(0)), /no cache split is open/);
    // Still alive for pixels.
    assert.equal((await torch.predict(new Float32Array(7500), 1)).length, 1);
  } finally {
    await torch.dispose();
  }
});

test('train() on torch reads the cache in the engine and ends with the history of the pixel path', { skip }, async (t) => {
  const cfg = macenko();
  const a = await train({ outputDir: out, config: cfg, runId: 'rows' });
  const b = await train({ outputDir: out, config: cfg, runId: 'pixels', pixelsToTrainer: true });
  const run = (id: string) => JSON.parse(readFileSync(join(out, 'runs', id, 'run.json'), 'utf8')) as { backend: string };
  assert.match(run('rows').backend, /^torch .*; cache train memory-mapped, val memory-mapped$/);
  assert.doesNotMatch(run('pixels').backend, /cache/);
  assert.equal(a.history.length, b.history.length);
  // Rotated pixels differ by float rounding (~4e-6), which 12 Adam steps compound; the val AUC of a
  // small split moves in steps of one pair, so it gets a looser bound.
  for (const [i, h] of a.history.entries()) {
    for (const [k, tol] of [['loss', 2e-3], ['val_loss', 2e-3], ['val_auc', 0.01]] as const) {
      t.diagnostic(`epoch ${i} ${k}: rows ${h[k].toFixed(5)}, pixels ${b.history[i][k].toFixed(5)}`);
      assert.ok(Math.abs(h[k] - b.history[i][k]) <= tol, `epoch ${i} ${k}: rows ${h[k]}, pixels ${b.history[i][k]}`);
    }
  }
});

test('when the engine cannot see the cache (another machine), training sends it pixels and says why', { skip }, async () => {
  const cfg = macenko();
  const data = await prepareData(out, cfg);
  const u8 = join(data.cache.cacheDir, 'train.u8');
  // The reader holds the small split in memory; the file then goes away before the engine looks.
  const hidden: PreparedData = { ...data, open: (name) => { const r = data.open(name); if (name === 'train') renameSync(u8, `${u8}.away`); return r; } };
  const warnings: string[] = [];
  try {
    const r = await train({ outputDir: out, config: cfg, runId: 'hidden', onEvent: (e) => { if (e.type === 'start' && e.warning) warnings.push(e.warning); } }, hidden);
    assert.equal(r.history.length, cfg.train.epochs);
  } finally {
    renameSync(`${u8}.away`, u8);
  }
  assert.match(warnings.join(' '), /the torch engine cannot read the patch cache itself \(cannot open .*train\.u8.*\), so this process sends it the pixels/);
  const run = JSON.parse(readFileSync(join(out, 'runs', 'hidden', 'run.json'), 'utf8')) as { backend: string; status: string };
  assert.equal(run.status, 'finished');
  assert.doesNotMatch(run.backend, /cache/);
});

test('with engine.backend "torch", evaluate scores our runs in the engine, as TF.js scores them', { skip }, async () => {
  const cfg = macenko();
  await train({ outputDir: out, config: cfg, runId: 'scored' });
  const wasm = tinyTrainConfig((c) => { c.data.stainNormalization = 'macenko'; });
  const a = await evaluateModel({ outputDir: out, config: wasm, runId: 'scored', split: 'val' });
  assert.doesNotMatch(a.report.backend, /torch/);
  const b = await evaluateModel({ outputDir: out, config: cfg, runId: 'scored', split: 'val' });
  assert.match(b.report.backend, /^torch \(PyTorch .*, cpu, 1 thread\)$/);
  assert.equal(b.predictions.length, a.predictions.length);
  const d = maxAbsDiff(a.predictions.map((p) => p.score), b.predictions.map((p) => p.score));
  assert.ok(d <= 1e-4, `scores differ by ${d}`);
});
