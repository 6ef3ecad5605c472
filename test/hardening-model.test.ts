/**
 * A model folder is untrusted input (`--model` may point at a download): its model.json must not
 * make us read outside the folder, and a damaged one is the user's problem to fix (exit 1), not a bug.
 */
import { test, before, mock } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync, rmSync, realpathSync } from 'node:fs';
import { join, relative, resolve, isAbsolute } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../src/core/engine/backends';
import { saveModel, loadModel } from '../src/core/train/model-io';
import { IdcError } from '../src/core/errors';
import { readManifest } from '../src/core/manifest';
import { preparedOutput } from './helpers/pipeline';
import { tempDir } from './helpers/fixtures';

const CLI = resolve(__dirname, '../dist/cli.js');
// The module object itself (not an ESM namespace copy), so the spies see model-io's reads.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeFs: typeof import('node:fs') = require('node:fs');

function idc(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let good = '';

before(async () => {
  await initBackend('cpu');
  good = join(tempDir(), 'good');
  // 50x50x3 -> sigmoid: dense kernel [3,1] and bias [1], 16 bytes of weights.
  await saveModel(tfl.sequential({ layers: [tfl.layers.globalAveragePooling2d({ inputShape: [50, 50, 3] }), tfl.layers.dense({ units: 1, activation: 'sigmoid' })] }), good);
});

/** A copy of the good model whose model.json is edited by `edit`. */
function variant(edit: (json: Record<string, any>, dir: string) => unknown): string {
  const dir = join(tempDir(), 'model');
  mkdirSync(dir);
  copyFileSync(join(good, 'weights.bin'), join(dir, 'weights.bin'));
  const json = JSON.parse(readFileSync(join(good, 'model.json'), 'utf8'));
  const replaced = edit(json, dir);
  writeFileSync(join(dir, 'model.json'), typeof replaced === 'string' ? replaced : JSON.stringify(replaced ?? json));
  return dir;
}

const setPaths = (paths: string[]) => (j: Record<string, any>) => { j.weightsManifest[0].paths = paths; };

/** The real path of every file loadModel opened or read while loading `dir`. */
async function loadTracing(dir: string): Promise<{ error: unknown; touched: string[] }> {
  const touched: string[] = [];
  const spies = (['readFileSync', 'openSync', 'createReadStream'] as const).map((name) => {
    const original = nodeFs[name] as (...a: unknown[]) => unknown;
    return mock.method(nodeFs, name, function (this: unknown, ...args: unknown[]) {
      if (typeof args[0] === 'string') touched.push(args[0]);
      return original.apply(this, args);
    });
  });
  let error: unknown;
  try { await loadModel(dir); } catch (e) { error = e; } finally { for (const s of spies) s.mock.restore(); }
  return { error, touched: touched.map((p) => { try { return realpathSync(p); } catch { return resolve(p); } }) };
}

function inside(dir: string, p: string): boolean {
  const rel = relative(realpathSync(dir), p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

test('weights paths that leave the model folder are refused before anything outside is read', async () => {
  const secretDir = join(tempDir(), 'secret');
  mkdirSync(secretDir);
  copyFileSync(join(good, 'weights.bin'), join(secretDir, 'weights.bin')); // valid weights: loading them would "work"
  const cases: [string, string][] = [];
  cases.push(['relative ..', variant((j, dir) => { symlinkSync(secretDir, join(dir, '..', 'secret')); setPaths(['../secret/weights.bin'])(j); })]);
  cases.push(['deep ..', variant(setPaths(['../../../../../../../../etc/passwd']))]);
  cases.push(['.. in the middle', variant(setPaths(['sub/../../secret/weights.bin']))]);
  cases.push(['absolute', variant(setPaths([join(secretDir, 'weights.bin')]))]);
  cases.push(['symlinked file', variant((j, dir) => { rmSync(join(dir, 'weights.bin')); symlinkSync(join(secretDir, 'weights.bin'), join(dir, 'weights.bin')); })]);
  cases.push(['symlinked folder', variant((j, dir) => { symlinkSync(secretDir, join(dir, 'sub')); setPaths(['sub/weights.bin'])(j); })]);
  cases.push(['backslash ..', variant(setPaths(['..\\secret\\weights.bin']))]);
  for (const [what, dir] of cases) {
    const { error, touched } = await loadTracing(dir);
    assert.ok(error instanceof IdcError, `${what}: an IdcError, got ${String(error)}`);
    assert.match((error as Error).message, /model\.json/, what);
    assert.match((error as Error).message, /outside the model folder|leaves the model folder/, what);
    assert.equal((error as IdcError).code, 'BAD_MODEL_FILE', what);
    assert.deepEqual(touched.filter((p) => !inside(dir, p)), [], `${what}: nothing outside the folder opened or read`);
  }
});

test('a weights symlink that stays inside the folder, and a symlinked model folder, still load', async () => {
  const dir = variant((j, d) => { nodeFs.renameSync(join(d, 'weights.bin'), join(d, 'real.bin')); symlinkSync('real.bin', join(d, 'weights.bin')); });
  const m = await loadModel(dir);
  assert.equal(m.inputs[0].shape.join(), ',50,50,3');
  const link = join(tempDir(), 'linked-model');
  symlinkSync(good, link);
  (await loadModel(join(link, 'model.json'))).dispose();
  m.dispose();
});

test('missing or truncated weights, unknown layers and malformed model.json are IdcErrors naming the file', async () => {
  const cases: [string, string, RegExp][] = [
    ['missing weights', variant((j, d) => { rmSync(join(d, 'weights.bin')); }), /weights\.bin.*(missing|not found|no such)/i],
    ['truncated weights', variant((j, d) => { truncateSync(join(d, 'weights.bin'), 12); }), /12 bytes.*16/],
    ['empty weights', variant((j, d) => { truncateSync(join(d, 'weights.bin'), 0); }), /0 bytes.*16/],
    ['unknown layer', variant((j) => { j.modelTopology.config.layers[1].class_name = 'NoSuchLayer'; }), /NoSuchLayer/],
    ['not JSON', variant(() => '{"modelTopology": '), /not valid JSON|Cannot read/],
    ['null', variant(() => 'null'), /not a TF\.js layers model/],
    ['array', variant(() => '[]'), /not a TF\.js layers model/],
    ['manifest not a list', variant((j) => { j.weightsManifest = { paths: ['weights.bin'] }; }), /not a TF\.js layers model|weightsManifest/],
    ['group without paths', variant((j) => { delete j.weightsManifest[0].paths; }), /weightsManifest/],
    ['path not a string', variant(setPaths([42 as unknown as string])), /weightsManifest|weights path/],
    ['spec without shape', variant((j) => { delete j.weightsManifest[0].weights[0].shape; }), /shape/],
    ['negative shape', variant((j) => { j.weightsManifest[0].weights[0].shape = [-3, 1]; }), /shape/],
    ['huge shape', variant((j) => { j.weightsManifest[0].weights[0].shape = [1e9, 1e9]; }), /16 bytes.*need/],
    ['unknown dtype', variant((j) => { j.weightsManifest[0].weights[0].dtype = 'float128'; }), /dtype/],
    ['topology a string', variant((j) => { j.modelTopology = 'x'; }), /not a TF\.js layers model|modelTopology/],
    ['layer without config', variant((j) => { j.modelTopology.config.layers[1] = { class_name: 'Dense' }; }), /model\.json/],
    ['weights for another model', variant((j) => { j.weightsManifest[0].weights[0].shape = [1, 3]; }), /model\.json/],
    ['weights path a folder', variant((j, d) => { mkdirSync(join(d, 'w')); setPaths(['w'])(j); }), /not a file|folder/],
  ];
  for (const [what, dir, re] of cases) {
    const error = await loadModel(dir).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof IdcError, `${what}: an IdcError, got ${(error as Error)?.stack ?? String(error)}`);
    assert.match(error.message, /model\.json/, what);
    assert.match(error.message, re, what);
    assert.ok(error.hint, `${what}: says what to do`);
  }
});

test('the CLI: evaluate --model and predict --model on a hostile or damaged model exit 1 without a stack', async () => {
  const { root, out } = await preparedOutput(4, 3);
  const rows = (await readManifest(join(out, 'manifest.csv'))).slice(0, 6);
  const folder = join(root, 'new-patient');
  mkdirSync(folder);
  for (const r of rows) copyFileSync(join(root, 'archive', r.source), join(folder, `${r.id}.png`));
  const traversal = variant(setPaths(['../../../../../../../../etc/passwd']));
  const truncated = variant((j, d) => { truncateSync(join(d, 'weights.bin'), 5); });
  const unknown = variant((j) => { j.modelTopology.config.layers[1].class_name = 'NoSuchLayer'; });
  for (const [what, model] of [['traversal', traversal], ['truncated', truncated], ['unknown layer', unknown]]) {
    for (const args of [['evaluate', '--model', model, '--out', out, '--backend', 'cpu', '-q'], ['predict', folder, '--model', model, '--out', out, '--backend', 'cpu', '-q']]) {
      const r = idc(args, root);
      assert.equal(r.code, 1, `${what} ${args[0]}: ${r.err}`);
      assert.match(r.err, new RegExp(`${join(model, 'model.json').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`), `${what} ${args[0]} names model.json`);
      assert.doesNotMatch(r.err, /Internal error|\n\s+at /, `${what} ${args[0]}: no stack`);
    }
  }
  // The good model still works through the same path.
  const ok = idc(['evaluate', '--model', good, '--out', out, '--backend', 'cpu', '-q'], root);
  assert.equal(ok.code, 0, ok.err);
});

// ------------------------------------------------------------------------------------- outputs

/**
 * An organized, split and cached output folder, a model outside it and a folder to predict, all
 * readable by anyone (the no-permission case runs the CLI as "nobody" when the tests run as root).
 */
async function readyOutput(): Promise<{ root: string; out: string; folder: string; model: string }> {
  const { root, out } = await preparedOutput(4, 9);
  const { prepareData } = await import('../src/core/train/data');
  const { defaultConfig } = await import('../src/core/config');
  await prepareData(out, defaultConfig()); // the cache, so commands get as far as their own writes
  const rows = (await readManifest(join(out, 'manifest.csv'))).slice(0, 4);
  const folder = join(root, 'p1');
  mkdirSync(folder);
  for (const r of rows) copyFileSync(join(root, 'archive', r.source), join(folder, `${r.id}.png`));
  const model = join(root, 'model');
  fs_cp(good, model);
  writeFileSync(join(root, 'idc.config.json'), JSON.stringify({ engine: { backend: 'cpu' }, train: { epochs: 1, stepsPerEpoch: 1, batchSize: 8 }, model: { filters: [4, 8], dense: [8] } }));
  spawnSync('chmod', ['-R', 'a+rX', root]);
  return { root, out, folder, model };
}

function fs_cp(from: string, to: string): void {
  mkdirSync(to);
  for (const f of nodeFs.readdirSync(from)) copyFileSync(join(from, f), join(to, f));
}

const WRITERS = (out: string, folder: string, model: string): string[][] => [
  ['train', '--out', out, '-q'],
  ['evaluate', '--model', model, '--out', out, '-q'],
  ['predict', folder, '--model', model, '--out', out, '-q'],
];

test('train, evaluate and predict into a read-only output folder say so (exit 1), as split does', { skip: process.getuid?.() !== 0 && 'needs root to mount a read-only bind' }, async (t) => {
  const { root, out, folder, model } = await readyOutput();
  try {
    spawnSync('mount', ['--bind', out, out], { stdio: 'ignore' });
    const ro = spawnSync('mount', ['-o', 'remount,bind,ro', out], { stdio: 'ignore' });
    if (ro.status !== 0) { t.skip('cannot mount a read-only bind here'); return; }
    for (const args of WRITERS(out, folder, model)) {
      const r = idc(args, root);
      assert.equal(r.code, 1, `${args[0]}: ${r.err}`);
      assert.match(r.err, /is on a read-only file system\.\nChoose a writable output folder\./, args[0]);
      assert.match(r.err, new RegExp(out.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')), `${args[0]} names the folder`);
      assert.doesNotMatch(r.err, /Internal error|\n\s+at /, `${args[0]}: no stack`);
    }
  } finally {
    while (spawnSync('umount', [out], { stdio: 'ignore' }).status === 0) { /* both mounts */ }
  }
});

test('train, evaluate and predict into an output folder without write permission say so (exit 1)', async () => {
  const { root, out, folder, model } = await readyOutput();
  let run = (args: string[]) => idc(args, root);
  if (process.getuid?.() === 0) {
    // root writes anywhere: run a copy of the bundle as "nobody", for whom `out` (root's, 0755) is read-only.
    const bin = tempDir();
    for (const f of nodeFs.readdirSync(join(CLI, '..'))) if (/\.(js|wasm)$/.test(f)) copyFileSync(join(CLI, '..', f), join(bin, f));
    spawnSync('chmod', ['-R', 'a+rX', bin]);
    run = (args) => {
      const r = spawnSync(process.execPath, [join(bin, 'cli.js'), ...args], { cwd: root, encoding: 'utf8', uid: 65534, gid: 65534 });
      return { code: r.status, out: r.stdout, err: r.stderr };
    };
  } else {
    spawnSync('chmod', ['-R', 'a-w', out]);
  }
  for (const args of WRITERS(out, folder, model)) {
    const r = run(args);
    assert.equal(r.code, 1, `${args[0]}: ${r.err}`);
    assert.match(r.err, /No permission to write .*\nChoose an output folder you can write to/, args[0]);
    assert.doesNotMatch(r.err, /Internal error|\n\s+at /, `${args[0]}: no stack`);
  }
});

// ------------------------------------------------------------------------------------- predict outputs

test('predict gives folders of the same name their own output folders, the same folder always the same one', async () => {
  const { predictFolder } = await import('../src/core/evaluate/predict');
  const { defaultConfig } = await import('../src/core/config');
  const { root, out } = await preparedOutput(4, 13);
  const rows = await readManifest(join(out, 'manifest.csv'));
  const folderOf = (rel: string, n: number, from = 0): string => {
    const f = join(root, rel);
    mkdirSync(f, { recursive: true });
    for (const r of rows.slice(from, from + n)) copyFileSync(join(root, 'archive', r.source), join(f, `${r.id}.png`));
    return f;
  };
  const a = folderOf('a/p1', 3);
  const b = folderOf('b/p1', 5, 3);
  const config = defaultConfig();
  const predict = (folder: string) => predictFolder({ folder, outputDir: out, config, modelPath: good });
  const ra = await predict(a);
  const rb = await predict(b);
  assert.equal(ra.dir, join(out, 'predictions', 'p1'));
  assert.equal(rb.dir, join(out, 'predictions', 'p1-2'), 'b/p1 does not replace a/p1');
  assert.equal(readFileSync(ra.predictionsFile, 'utf8').trim().split('\n').length, 1 + 3);
  assert.equal(readFileSync(rb.predictionsFile, 'utf8').trim().split('\n').length, 1 + 5);
  assert.equal(JSON.parse(readFileSync(join(ra.dir, 'source.json'), 'utf8')).folder, realpathSync(a));
  assert.match(rb.note ?? '', /predictions\/p1\/ holds the predictions of .*a\/p1/);
  // Again, and through a link to it: the same folder always goes to the same place.
  assert.equal((await predict(b)).dir, rb.dir);
  assert.equal((await predict(a)).dir, ra.dir);
  const link = join(root, 'c', 'p1');
  mkdirSync(join(root, 'c'));
  symlinkSync(a, link);
  assert.equal((await predict(link)).dir, ra.dir);
  // An output folder from before source.json: its summary.json says whose it is.
  const older = join(out, 'predictions', 'p3');
  mkdirSync(older, { recursive: true });
  writeFileSync(join(older, 'summary.json'), JSON.stringify({ folder: join(root, 'elsewhere', 'p3') }));
  assert.equal((await predict(folderOf('d/p3', 2, 8))).dir, join(out, 'predictions', 'p3-2'));
  // The CLI says where they went.
  const r = idc(['predict', b, '--model', good, '--out', out, '--backend', 'cpu', '-q'], root);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`Outputs: +${join(out, 'predictions', 'p1-2').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
  assert.match(r.out, /predictions\/p1\/ holds the predictions of .*a\/p1/);
});

// ------------------------------------------------------------------------------------- undecodable patches

test('a patch that passed organize but cannot be decoded is named with its reason by train, evaluate (metrics.json) and predict, under -q too', async () => {
  const { root, out } = await preparedOutput(4, 23);
  const rows = await readManifest(join(out, 'manifest.csv'));
  const split = JSON.parse(readFileSync(join(out, 'split.json'), 'utf8')) as { patients: Record<'train' | 'val' | 'test', string[]> };
  const damage = (r: { source: string }) => { const f = join(root, 'archive', r.source); writeFileSync(f, readFileSync(f).subarray(0, 60)); };
  const inTrain = rows.find((r) => split.patients.train.includes(r.patient))!;
  const inTest = rows.find((r) => split.patients.test.includes(r.patient))!;
  damage(inTrain);
  damage(inTest);
  writeFileSync(join(root, 'idc.config.json'), JSON.stringify({ engine: { backend: 'cpu' }, train: { epochs: 1, stepsPerEpoch: 1, batchSize: 8 }, model: { filters: [4, 8], dense: [8] } }));
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const trained = idc(['train', '--out', out, '-q'], root);
  assert.equal(trained.code, 0, trained.err);
  assert.match(trained.out, new RegExp(`[Ww]arning: .*${esc(inTrain.source)}.*could not be decoded.*: .+`), 'train names the patch and why');
  const evaluated = idc(['evaluate', '--out', out, '-q'], root);
  assert.equal(evaluated.code, 0, evaluated.err);
  assert.match(evaluated.out, new RegExp(`warning: .*${esc(inTest.source)}.*could not be decoded.*: .+`), 'evaluate names the patch and why');
  const metrics = JSON.parse(readFileSync(join(out, 'runs', nodeFs.readdirSync(join(out, 'runs'))[0], 'eval', 'test', 'metrics.json'), 'utf8')) as { warnings: string[] };
  assert.ok(metrics.warnings.some((w) => w.includes(inTest.source) && /could not be decoded/.test(w)), `metrics.json warnings: ${JSON.stringify(metrics.warnings)}`);
  assert.ok(!metrics.warnings.some((w) => w.includes(inTrain.source)), 'only the evaluated split');
  // predict: every unreadable patch is named (not only the first ten skipped files).
  const folder = join(root, 'new');
  mkdirSync(folder);
  for (let i = 0; i < 12; i++) writeFileSync(join(folder, `77_idx5_x${i * 50}_y0.png`), 'not a png');
  for (const r of rows.slice(0, 3)) copyFileSync(join(root, 'archive', r.source).replace(inTrain.source, rows[5].source), join(folder, `${r.id}.png`));
  const predicted = idc(['predict', folder, '--out', out, '-q'], root);
  assert.equal(predicted.code, 0, predicted.err);
  for (let i = 0; i < 12; i++) assert.match(predicted.out, new RegExp(`77_idx5_x${i * 50}_y0\\.png: cannot decode`), `predict names unreadable patch ${i}`);
});
