import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, readdirSync, truncateSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/core/engine/backends';
import { train, listRuns } from '../src/core/train/train';
import { saveCheckpoint, loadCheckpoint, type CheckpointState } from '../src/core/train/checkpoint';
import { loadModel } from '../src/core/train/model-io';
import { preparedOutput, tinyTrainConfig } from './helpers/pipeline';
import { tempDir } from './helpers/fixtures';
import { IdcError } from '../src/core/errors';

const CLI = resolve(__dirname, '../dist/cli.js');
let out = '';
let root = '';

before(async () => {
  await initBackend('wasm');
  ({ out, root } = await preparedOutput());
});

const history = (runDir: string) => readFileSync(join(runDir, 'history.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

function fakeState(epoch: number, sizes: number[]): CheckpointState {
  return {
    version: 1, runId: 'r', epoch, lr: 1e-3, history: [], architecture: 'a', weights: sizes.map((n, i) => ({ name: `w${i}`, shape: [n] })),
    optimizer: [{ name: 'iter', shape: [] }], hasBest: false, seed: 1, finished: false, createdAt: 'now',
  };
}

test('checkpoints round-trip, keep the last two, and fall back past a damaged one', () => {
  const dir = tempDir();
  for (let e = 1; e <= 3; e++) saveCheckpoint(dir, fakeState(e, [3, 2]), [Float32Array.of(e, 2, 3), Float32Array.of(4, 5)], [Float32Array.of(e)]);
  assert.deepEqual(readdirSync(join(dir, 'checkpoints')).sort(), ['epoch-0002', 'epoch-0003', 'latest.json']);
  const c = loadCheckpoint(dir)!;
  assert.equal(c.state.epoch, 3);
  assert.deepEqual([...c.weights[0]], [3, 2, 3]);
  assert.equal(c.warning, undefined);
  truncateSync(join(dir, 'checkpoints', 'epoch-0003', 'weights.bin'), 7);
  const fallback = loadCheckpoint(dir)!;
  assert.equal(fallback.state.epoch, 2);
  assert.match(fallback.warning ?? '', /epoch-0003 .*damaged; resumed from epoch-0002/);
  writeFileSync(join(dir, 'checkpoints', 'epoch-0002', 'state.json'), '{not json');
  assert.throws(() => loadCheckpoint(dir), /No usable checkpoint/);
});

test('a checkpoint write that hits a full disk fails clearly and leaves the previous one', { skip: process.getuid?.() !== 0 && 'needs root to mount a small tmpfs' }, (t) => {
  const mnt = tempDir();
  try { execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]); } catch { t.skip('cannot mount tmpfs here'); return; }
  try {
    saveCheckpoint(mnt, fakeState(1, [1000]), [new Float32Array(1000).fill(1)], [Float32Array.of(1)]);
    assert.throws(() => saveCheckpoint(mnt, fakeState(2, [100000]), [new Float32Array(100000)], [Float32Array.of(2)]), (e: Error & { hint?: string }) => /Disk full .*epoch 2.*previous checkpoint is intact/.test(e.message) && /resume/.test(e.hint ?? ''));
    const c = loadCheckpoint(mnt)!;
    assert.equal(c.state.epoch, 1);
    assert.equal(c.weights[0][999], 1);
    assert.deepEqual(readdirSync(join(mnt, 'checkpoints')).sort(), ['epoch-0001', 'latest.json'], 'no temp folder left');
  } finally {
    execFileSync('umount', [mnt]);
  }
});

test('train writes a run: config, history per epoch, checkpoint, a loadable TF.js model', async () => {
  const cfg = tinyTrainConfig();
  const r = await train({ outputDir: out, config: cfg, runId: 'basic' });
  assert.equal(r.history.length, 3);
  assert.deepEqual(history(r.runDir).map((h) => h.epoch), [0, 1, 2]);
  for (const h of r.history) for (const k of ['loss', 'val_loss', 'accuracy', 'val_auc', 'lr', 'seconds']) assert.ok(Number.isFinite(h[k as keyof typeof h]), `${k} finite`);
  assert.deepEqual(JSON.parse(readFileSync(join(r.runDir, 'config.json'), 'utf8')), cfg);
  assert.equal(listRuns(out).find((x) => x.id === 'basic')?.status, 'finished');
  const model = await loadModel(join(r.runDir, 'model'));
  const p = tf.tidy(() => (model.predict(tf.zeros([2, 50, 50, 3])) as tf.Tensor).dataSync());
  assert.equal(p.length, 2);
  assert.ok(p.every((v) => v >= 0 && v <= 1));
  await assert.rejects(train({ outputDir: out, config: cfg, runId: 'basic' }), /already finished/);
});

test('a run is reproducible: the same seed gives the same history, dropout included', async () => {
  const cfg = tinyTrainConfig((c) => { c.model.dropout = 0.5; c.train.epochs = 2; });
  const runs = [];
  for (const id of ['same-a', 'same-b']) runs.push((await train({ outputDir: out, config: cfg, runId: id })).history.map(({ seconds, imagesPerSecond, ...h }) => h));
  assert.deepEqual(runs[0], runs[1]);
  const other = await train({ outputDir: out, config: tinyTrainConfig((c) => { c.model.dropout = 0.5; c.train.epochs = 2; c.train.seed = 7; }), runId: 'same-c' });
  assert.notEqual(other.history[1].loss, runs[0][1].loss);
});

test('cancel leaves a resumable run that ends as if never interrupted', async () => {
  const cfg = tinyTrainConfig();
  const ac = new AbortController();
  await assert.rejects(train({ outputDir: out, config: cfg, runId: 'cancelled', signal: ac.signal, afterBatch: (e, b) => { if (e === 1 && b === 2) ac.abort(); } }), /Cancelled/);
  const stopped = listRuns(out).find((x) => x.id === 'cancelled');
  assert.equal(stopped?.status, 'stopped', 'run.json says the run was stopped, not that it runs');
  assert.ok(stopped?.stoppedAt && !Number.isNaN(Date.parse(stopped.stoppedAt)), 'with when');
  assert.equal(stopped?.error, undefined);
  const seen: string[] = [];
  const r = await train({ outputDir: out, config: cfg, resume: true, afterBatch: () => { seen.push(listRuns(out).find((x) => x.id === 'cancelled')!.status); } });
  assert.equal(r.runId, 'cancelled');
  assert.equal(r.resumedFrom, 1);
  assert.ok(seen.length > 0 && seen.every((s) => s === 'running'), 'running again while it resumes');
  const done = listRuns(out).find((x) => x.id === 'cancelled');
  assert.equal(done?.status, 'finished');
  assert.equal(done?.stoppedAt, undefined);
  assert.deepEqual(r.history.map((h) => h.epoch), [0, 1, 2]);
  assert.deepEqual(history(r.runDir).map((h) => h.epoch), [0, 1, 2]);
});

test('a loss that becomes NaN stops training at that step with the reason; run.json says failed', async () => {
  // 1e20: Adam's first steps make the weights ~1e20, whose L2 term overflows float32.
  const cfg = tinyTrainConfig((c) => { c.train.learningRate = 1e20; });
  await assert.rejects(train({ outputDir: out, config: cfg, runId: 'nan-lr' }), (e: unknown) => {
    assert.ok(e instanceof IdcError, String(e));
    assert.equal(e.code, 'NON_FINITE_LOSS');
    assert.match(e.message, /the loss became (NaN|infinite) at epoch 1, step \d+ of 4/);
    assert.match(e.hint ?? '', /Lower train\.learningRate .*1e\+?20/);
    assert.match(e.hint ?? '', /check train\.classWeights and the data/);
    return true;
  });
  const run = listRuns(out).find((x) => x.id === 'nan-lr');
  assert.equal(run?.status, 'failed');
  assert.match(run?.error ?? '', /loss became/);
  assert.ok(!existsSync(join(out, 'runs', 'nan-lr', 'checkpoints')), 'no checkpoint of broken weights');
  assert.ok(!existsSync(join(out, 'runs', 'nan-lr', 'model')), 'no model');
});

test('a NaN loss after good epochs leaves the last good checkpoint as it was', async () => {
  const cfg = tinyTrainConfig((c) => { c.train.epochs = 3; });
  const ac = new AbortController();
  await assert.rejects(train({ outputDir: out, config: cfg, runId: 'nan-late', signal: ac.signal, afterBatch: (e) => { if (e === 1) ac.abort(); } }), /Cancelled/);
  const runDir = join(out, 'runs', 'nan-late');
  const good = loadCheckpoint(runDir)!;
  assert.equal(good.state.epoch, 1);
  // A resumed run continues at its checkpoint's learning rate: make that absurd.
  const stateFile = join(runDir, 'checkpoints', 'epoch-0001', 'state.json');
  writeFileSync(stateFile, JSON.stringify({ ...JSON.parse(readFileSync(stateFile, 'utf8')), lr: 1e20 }));
  const files = () => readdirSync(join(runDir, 'checkpoints')).sort();
  const before = files();
  const weights = readFileSync(join(runDir, 'checkpoints', 'epoch-0001', 'weights.bin'));
  await assert.rejects(train({ outputDir: out, config: cfg, runId: 'nan-late' }), /loss became (NaN|infinite) at epoch 2, step \d+ of 4/);
  assert.deepEqual(files(), before, 'no new checkpoint');
  assert.ok(readFileSync(join(runDir, 'checkpoints', 'epoch-0001', 'weights.bin')).equals(weights), 'the good weights are untouched');
  assert.deepEqual(history(runDir).map((h) => h.epoch), [0], 'no history line for the broken epoch');
  assert.ok(history(runDir).every((h) => Number.isFinite(h.loss) && Number.isFinite(h.val_loss)));
  assert.equal(listRuns(out).find((x) => x.id === 'nan-late')?.status, 'failed');
});

test('idc train with a loss that becomes non-finite exits 1 with the message and hint', () => {
  const work = tempDir();
  // The settings cap train.learningRate at 1, not the class weights: 16 × 1e38 overflows float32.
  writeFileSync(join(work, 'idc.config.json'), JSON.stringify(tinyTrainConfig((c) => { c.paths.output = out; c.train.classWeights = { '0': 1, '1': 1e38 }; })));
  const r = spawnSync(process.execPath, [CLI, 'train', '--run', 'nan-cli', '-q'], { cwd: work, encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /Error: Training run nan-cli stopped: the loss became (NaN|infinite) at epoch \d+, step \d+ of 4\./);
  assert.match(r.stderr, /Lower train\.learningRate.*train\.classWeights/);
  assert.equal(JSON.parse(readFileSync(join(out, 'runs', 'nan-cli', 'run.json'), 'utf8')).status, 'failed');
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('resuming with another architecture is refused with a clear message', async () => {
  const ac = new AbortController();
  await assert.rejects(train({ outputDir: out, config: tinyTrainConfig(), runId: 'arch', signal: ac.signal, afterBatch: (e) => { if (e === 1) ac.abort(); } }), /Cancelled/);
  await assert.rejects(train({ outputDir: out, config: tinyTrainConfig((c) => { c.model.filters = [8, 32]; }), runId: 'arch' }), /another model architecture/);
});

/** Spawns the CLI's train in `work`; resolves with its exit code and stderr. */
function spawnTrain(work: string, args: string[]) {
  const child = spawn(process.execPath, [CLI, 'train', ...args, '-q'], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((r) => child.once('exit', (code, sig) => { exitCode = code ?? (sig ? -1 : null); r(exitCode); }));
  return { child, exited, stderr: () => stderr, running: () => exitCode === undefined };
}

/** Waits until the run has checkpointed `epochs` epochs and the next one is under way. */
async function waitForEpochs(runDir: string, epochs: number, p: ReturnType<typeof spawnTrain>): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && p.running() && !(existsSync(join(runDir, 'history.jsonl')) && history(runDir).length >= epochs)) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(p.running(), `the training process ended before it could be interrupted: ${p.stderr()}`);
}

/** The newest checkpoint's bytes: weights, Adam state (slots, step count, β powers) and state. */
function lastCheckpoint(runDir: string) {
  const c = loadCheckpoint(runDir)!;
  const bytes = (a: Float32Array[]) => Buffer.concat(a.map((x) => Buffer.from(x.buffer, x.byteOffset, x.byteLength)));
  return { epoch: c.state.epoch, weights: bytes(c.weights), optimizer: bytes(c.optimizer), lr: c.state.lr, es: c.state.earlyStopping, rlr: c.state.reduceLr };
}

const withoutTimes = (h: Record<string, unknown>[]) => h.map(({ seconds, imagesPerSecond, ...rest }) => rest);

// Both trainers: one replica on the main thread, and data-parallel worker replicas.
for (const threads of [1, 2]) {
  test(`kill -9 mid-epoch, then resume, ends exactly as the uninterrupted run (${threads} thread${threads > 1 ? 's' : ''})`, async () => {
    const work = tempDir();
    // ~60 steps an epoch: enough Adam steps for a resume that rounds its state differently to show.
    const cfg = tinyTrainConfig((c) => { c.engine.threads = threads; c.model.dropout = 0.5; c.train.epochs = 3; c.train.stepsPerEpoch = 60; c.paths.output = out; });
    writeFileSync(join(work, 'idc.config.json'), JSON.stringify(cfg));
    const whole = spawnTrain(work, ['--run', `whole-${threads}`]);
    assert.equal(await whole.exited, 0, whole.stderr());
    const killed = spawnTrain(work, ['--run', `killed-${threads}`]);
    const runDir = join(out, 'runs', `killed-${threads}`);
    await waitForEpochs(runDir, 1, killed);
    killed.child.kill('SIGKILL');
    await killed.exited;
    const before = history(runDir).length;
    assert.ok(before >= 1 && before < 3, `killed after ${before} epochs`);
    const resumed = spawnTrain(work, ['--resume']); // the newest unfinished run
    assert.equal(await resumed.exited, 0, resumed.stderr());
    const wholeDir = join(out, 'runs', `whole-${threads}`);
    assert.deepEqual(history(runDir).map((h) => h.epoch), [0, 1, 2]);
    assert.deepEqual(withoutTimes(history(runDir)), withoutTimes(history(wholeDir)), 'same history, every metric');
    const a = lastCheckpoint(wholeDir), b = lastCheckpoint(runDir);
    assert.equal(b.epoch, 3);
    assert.ok(a.weights.equals(b.weights), 'same weights, bit for bit');
    assert.ok(a.optimizer.equals(b.optimizer), 'same Adam state, bit for bit');
    assert.deepEqual([b.lr, b.es, b.rlr], [a.lr, a.es, a.rlr]);
    assert.ok(readFileSync(join(runDir, 'model', 'weights.bin')).equals(readFileSync(join(wholeDir, 'model', 'weights.bin'))), 'same final model');
    assert.equal(JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')).status, 'finished');
  });

  // Ctrl+C on both thread counts; SIGTERM (timeout, kill, a scheduler) on one.
  for (const [signal, code] of threads === 1 ? [['SIGINT', 130], ['SIGTERM', 143]] as const : [['SIGINT', 130]] as const) {
    test(`${signal === 'SIGINT' ? 'Ctrl+C' : 'SIGTERM'} stops within a batch, exits ${code} and leaves a resumable run (${threads} thread${threads > 1 ? 's' : ''})`, async () => {
      const work = tempDir();
      const cfg = tinyTrainConfig((c) => { c.engine.threads = threads; c.train.epochs = 3; c.train.stepsPerEpoch = 0; c.paths.output = out; });
      writeFileSync(join(work, 'idc.config.json'), JSON.stringify(cfg));
      const id = `${signal.toLowerCase()}-${threads}`;
      const p = spawnTrain(work, ['--run', id]);
      const runDir = join(out, 'runs', id);
      await waitForEpochs(runDir, 1, p);
      p.child.kill(signal);
      assert.equal(await p.exited, code, p.stderr());
      assert.match(p.stderr(), /Cancelled/);
      assert.ok(history(runDir).length < 3, 'stopped before the last epoch');
      assert.equal(JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')).status, 'stopped');
      assert.ok(!existsSync(join(runDir, 'model', 'model.json')), 'no final model from a stopped run');
      const resumed = spawnTrain(work, ['--run', id]);
      assert.equal(await resumed.exited, 0, resumed.stderr());
      assert.deepEqual(history(runDir).map((h) => h.epoch), [0, 1, 2]);
    });
  }
}

test('a short run on the synthetic archive learns on unseen patients (wasm)', (t) => {
  // The shipped path: the bundled CLI's demo (synth → organize → split → train → evaluate) on the
  // default-size archive, wasm with two data-parallel replicas (fixed, so every machine shards the
  // same way), the default model with the demo's settings (3 epochs, batch-norm momentum 0.9).
  // Validation and test patients have stains and tumour grades that training never saw. With only 8-10 training patients validation AUC peaked
  // at 0.86-0.91 and then fell as the model learned patient-specific cues; 15 generalise.
  const cwd = tempDir('idc-learn-');
  writeFileSync(join(cwd, 'idc.config.json'), JSON.stringify({ engine: { backend: 'wasm', threads: 2 }, synth: { seed: 1 }, train: { epochs: 3, seed: 42 } }));
  execFileSync(process.execPath, [CLI, 'demo', '--dir', 'demo', '--patients', '24', '-q'], { cwd, stdio: 'pipe', timeout: 15 * 60_000 });
  const runs = join(cwd, 'demo', 'output', 'runs');
  const [runId] = readdirSync(runs);
  const h = history(join(runs, runId));
  t.diagnostic(`val AUC per epoch: ${h.map((e) => e.val_auc.toFixed(3)).join(' ')}`);
  assert.equal(h.length, 3);
  assert.ok(Math.max(...h.map((e) => e.val_auc)) >= 0.9, `best val AUC ${Math.max(...h.map((e) => e.val_auc)).toFixed(3)}`);
  assert.ok(h[2].val_auc >= 0.9, `last val AUC ${h[2].val_auc.toFixed(3)}`);
  assert.ok(h[2].loss < h[0].loss, `train loss ${h[0].loss.toFixed(3)} → ${h[2].loss.toFixed(3)}`);
  const metrics = JSON.parse(readFileSync(join(runs, runId, 'eval', 'test', 'metrics.json'), 'utf8'));
  t.diagnostic(`test ROC AUC ${metrics.auc.toFixed(3)}`);
  assert.ok(metrics.auc >= 0.9, `test ROC AUC ${metrics.auc.toFixed(3)}`);
});
