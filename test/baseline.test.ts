// The shipped baseline model (models/baseline): it loads, scores through the CLI before anything is
// trained, names itself in every output, and refuses clearly when an installation lacks it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BASELINE_FILE, MODEL_CARD_FILE, baselineDir, hasBaseline, modelCard, readBaseline } from '../src/core/baseline';
import { loadModel } from '../src/core/train/model-io';
import { initBackend } from '../src/core/engine/backends';
import { readPredictions } from '../src/core/evaluate/predictions';
import { tempDir } from './helpers/fixtures';

const CLI = resolve(__dirname, '../dist/cli.js');
const SAMPLE = resolve(__dirname, '../../shared/data/idc-sample');
const noSample = !existsSync(SAMPLE) && 'needs ../shared/data/idc-sample';

function idc(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('the shipped baseline: baseline.json, its generated card and a 50x50x3 → 1 TF.js model', async () => {
  const dir = baselineDir();
  assert.ok(hasBaseline(dir), `models/baseline is part of the repository and the .vsix (${dir})`);
  const info = readBaseline(dir);
  assert.ok(info.thresholds.youden > 0 && info.thresholds.youden < 1);
  assert.ok(info.thresholds.recallTarget.threshold > 0 && info.thresholds.recallTarget.threshold < 1);
  assert.ok(info.temperature === undefined || info.temperature > 0);
  const ids = info.data.patientIds!;
  assert.equal(ids.train.length, info.data.patients.train);
  assert.equal(ids.val.length, info.data.patients.val);
  assert.equal(new Set([...ids.train, ...ids.val]).size, ids.train.length + ids.val.length, 'no patient in both');
  // The card is generated from baseline.json, never edited by hand: the two agree.
  assert.equal(readFileSync(join(dir, MODEL_CARD_FILE), 'utf8'), modelCard(info));
  assert.match(modelCard(info), /Not for diagnosis/);
  await initBackend('wasm');
  const model = await loadModel(join(dir, 'model'));
  assert.deepEqual(model.inputs[0].shape, [null, 50, 50, 3]);
  assert.deepEqual(model.outputs[0].shape, [null, 1]);
  model.dispose();
});

test('idc predict with no trained run scores with the baseline model and says so; --model baseline names it', { skip: noSample }, () => {
  const cwd = tempDir('idc-baseline-');
  // 8975: the sample's one patient with both classes (52 benign, 833 IDC patches).
  const patient = join(SAMPLE, '8975');
  const r = idc(['predict', patient, '--out', 'out', '--backend', 'wasm', '-q'], cwd);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /Model: baseline model \(shipped; .*\): no finished training run in .*the shipped baseline model scores/);
  assert.match(r.out, /Labels \(predicted_label\) at threshold [\d.]+: Youden's J on the baseline model's own validation patients/);
  const outDir = join(cwd, 'out', 'predictions', '8975');
  const summary = JSON.parse(readFileSync(join(outDir, 'summary.json'), 'utf8')) as { model: string; baseline?: { recipe: string }; baselineFallback?: string; threshold: number; stainNormalizationReason: string };
  assert.match(summary.model, /^baseline model/);
  assert.ok(summary.baseline?.recipe, 'summary.json says which baseline');
  assert.ok(summary.baselineFallback);
  assert.equal(summary.threshold, readBaseline().thresholds.youden);
  assert.match(summary.stainNormalizationReason, /as the baseline model was trained/);
  const pngs = readdirSync(patient, { recursive: true }).filter((f) => String(f).endsWith('.png')).length;
  const rows = readPredictions(join(outDir, 'predictions.csv'));
  assert.equal(rows.length, pngs);
  assert.ok(rows.every((p) => Number.isFinite(p.score) && p.score >= 0 && p.score <= 1));
  // Real patches of a real slide: the baseline must rank IDC above benign far better than chance.
  const pos = rows.filter((p) => p.label === 1).map((p) => p.score);
  const neg = rows.filter((p) => p.label === 0).map((p) => p.score);
  let wins = 0;
  for (const a of pos) for (const b of neg) wins += a > b ? 1 : a === b ? 0.5 : 0;
  assert.ok(wins / (pos.length * neg.length) > 0.7, `AUC on patient 8975 ${wins / (pos.length * neg.length)}`);

  const named = idc(['predict', patient, '--out', 'out2', '--model', 'baseline', '--backend', 'wasm', '-q'], cwd);
  assert.equal(named.code, 0, named.err);
  assert.match(named.out, /Model: baseline model \(shipped; [^)]*\)\.\n/, 'named: no fallback reason');
});

test('idc evaluate --archive with no trained run: the baseline, its own thresholds pinned, and its training patients flagged', { skip: noSample }, () => {
  const cwd = tempDir('idc-baseline-ext-');
  const r = idc(['evaluate', '--archive', SAMPLE, '--out', 'out', '--backend', 'wasm', '-q'], cwd);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /Evaluated baseline model \(shipped/);
  const evals = readdirSync(join(cwd, 'out', 'evals'));
  assert.deepEqual(evals, ['baseline-on-idc-sample']);
  const m = JSON.parse(readFileSync(join(cwd, 'out', 'evals', evals[0], 'test', 'metrics.json'), 'utf8'));
  assert.ok(m.baseline?.recipe);
  const info = readBaseline();
  const pinned = m.operatingPoints.filter((o: { name: string }) => o.name === 'pinned').map((o: { threshold: number }) => o.threshold);
  assert.ok(pinned.includes(info.thresholds.youden) && pinned.includes(info.thresholds.recallTarget.threshold), `pinned ${pinned}`);
  assert.ok(m.warnings.some((w: string) => /baseline model's own/.test(w)));
  // Every sample patient is one of the real set's 271: the baseline learned from most of them.
  const seen = new Set([...info.data.patientIds!.train, ...info.data.patientIds!.val]);
  const overlap = m.external.overlap as string[];
  assert.ok(overlap.length > 0 && overlap.every((p) => seen.has(p)));
  assert.ok(m.warnings.some((w: string) => /training or validation split of the baseline model.*optimistic/.test(w)));
});

test('an installation without the baseline: predict asks for a run; --model baseline says what is missing', { skip: noSample }, () => {
  const cwd = tempDir('idc-baseline-missing-');
  const env = { IDC_BASELINE_DIR: join(cwd, 'nowhere') };
  const r = idc(['predict', join(SAMPLE, '8913'), '--out', 'out', '--backend', 'wasm'], cwd, env);
  assert.equal(r.code, 1);
  assert.match(r.err, /No finished training run/);
  const named = idc(['predict', join(SAMPLE, '8913'), '--out', 'out', '--model', 'baseline', '--backend', 'wasm'], cwd, env);
  assert.equal(named.code, 1);
  assert.match(named.err, /The baseline model is missing from this installation/);
  assert.doesNotMatch(named.err, /\n\s+at /);
  assert.ok(!existsSync(join(cwd, 'out', 'predictions')), 'nothing written');
});

test('a missing or unreadable baseline.json is refused with the file named, never half-read', () => {
  const dir = tempDir('idc-baseline-bad-');
  assert.throws(() => readBaseline(dir), /missing from this installation/);
  assert.ok(!hasBaseline(dir));
  mkdirSync(join(dir, 'model'));
  writeFileSync(join(dir, 'model', 'model.json'), '{}');
  writeFileSync(join(dir, BASELINE_FILE), '{ "version": 1, "thresholds"');
  assert.throws(() => readBaseline(dir), (e: Error & { code?: string }) => e.code === 'BAD_MODEL' && e.message.includes(join(dir, BASELINE_FILE)) && /cannot be read/.test(e.message));
  writeFileSync(join(dir, BASELINE_FILE), JSON.stringify({ version: 2, thresholds: { youden: 0.5 } }));
  assert.throws(() => readBaseline(dir), /cannot be read: unexpected fields/);
});
