/**
 * predict writes predictions/<folder>/ (CSV, summary, slide-map PNGs) under the output folder: never
 * inside the raw archive, and never inside the folder it scores (the next run would read its own
 * slide maps back as patches). Both are refused before anything is written.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../src/core/engine/backends';
import { saveModel } from '../src/core/train/model-io';
import { predictFolder } from '../src/core/evaluate/predict';
import { defaultConfig } from '../src/core/config';
import { IdcError } from '../src/core/errors';
import { tempDir, writePatches, gridSpecs, treeChecksum } from './helpers/fixtures';

const CLI = resolve(__dirname, '../dist/cli.js');

function idc(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let root = '';
let archive = '';
let folder = '';
let model = '';

before(async () => {
  await initBackend('cpu');
  root = tempDir();
  archive = join(root, 'raw');
  const files = writePatches(archive, gridSpecs(['11', '12'], 4, 1));
  // A new patient's patches, flat, without labels in their names.
  folder = join(root, 'new-patient');
  mkdirSync(folder);
  files.slice(0, 4).forEach((rel, k) => copyFileSync(join(archive, rel), join(folder, `99_idx5_x${1 + 50 * k}_y1.png`)));
  model = join(root, 'model');
  await saveModel(tfl.sequential({ layers: [tfl.layers.globalAveragePooling2d({ inputShape: [50, 50, 3] }), tfl.layers.dense({ units: 1, activation: 'sigmoid' })] }), model);
});

const refused = (code: string, re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof IdcError, String(e));
  assert.equal(e.code, code);
  assert.match(e.message, re);
  assert.ok(e.hint);
  return true;
};

test('predictFolder refuses an output folder inside the archive or inside the scored folder, writing nothing', async () => {
  const config = defaultConfig();
  const archiveBefore = treeChecksum(archive);
  const folderBefore = treeChecksum(folder);
  await assert.rejects(predictFolder({ folder, outputDir: join(archive, 'out'), archive, config, modelPath: model }), refused('OUT_IN_ARCHIVE', /output folder .*raw\/out is inside the archive .*raw/));
  await assert.rejects(predictFolder({ folder, outputDir: archive, archive, config, modelPath: model }), refused('OUT_IN_ARCHIVE', /is the archive/));
  await assert.rejects(predictFolder({ folder, outputDir: join(folder, 'out'), config, modelPath: model }), refused('OUT_IN_SCORED_FOLDER', /output folder .*new-patient\/out is inside the folder it scores, .*new-patient/));
  await assert.rejects(predictFolder({ folder, outputDir: folder, config, modelPath: model }), refused('OUT_IN_SCORED_FOLDER', /is the folder it scores/));
  // A symbolic link into the scored folder does not hide it.
  const link = join(root, 'link-into-folder');
  symlinkSync(folder, link);
  await assert.rejects(predictFolder({ folder, outputDir: join(link, 'out'), config, modelPath: model }), refused('OUT_IN_SCORED_FOLDER', /inside the folder it scores/));
  assert.deepEqual(treeChecksum(archive), archiveBefore, 'archive untouched');
  assert.deepEqual(treeChecksum(folder), folderBefore, 'scored folder untouched');
  // A sibling output folder is fine.
  const ok = await predictFolder({ folder, outputDir: join(root, 'out-ok'), archive, config, modelPath: model });
  assert.equal(ok.predictions.length, 4);
});

test('the CLI: paths.output inside the archive, or --out inside the scored folder, exit 1 before writing', () => {
  const cwd = join(root, 'ws');
  mkdirSync(cwd);
  writeFileSync(join(cwd, 'idc.config.json'), JSON.stringify({ paths: { archive: '../raw', output: '../raw/idc-output' }, engine: { backend: 'cpu' } }));
  const archiveBefore = treeChecksum(archive);
  const folderBefore = treeChecksum(folder);
  const inArchive = idc(['predict', folder, '--model', model, '-q'], cwd);
  assert.equal(inArchive.code, 1, inArchive.err);
  assert.match(inArchive.err, /Error: The output folder .*raw\/idc-output is inside the archive .*raw\./);
  assert.match(inArchive.err, /--out or paths\.output/);
  assert.doesNotMatch(inArchive.err, /\n\s+at /);
  assert.ok(!existsSync(join(archive, 'idc-output')));
  const inFolder = idc(['predict', folder, '--model', model, '--out', join(folder, 'results'), '-q'], cwd);
  assert.equal(inFolder.code, 1, inFolder.err);
  assert.match(inFolder.err, /Error: The output folder .*new-patient\/results is inside the folder it scores, .*new-patient\./);
  assert.match(inFolder.err, /read them back as patches/);
  assert.ok(!existsSync(join(folder, 'results')));
  assert.deepEqual(treeChecksum(archive), archiveBefore, 'archive untouched');
  assert.deepEqual(treeChecksum(folder), folderBefore, 'scored folder untouched');
});
