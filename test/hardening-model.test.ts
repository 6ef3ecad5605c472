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
