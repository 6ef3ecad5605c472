import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempDir, writePatches, gridSpecs, treeChecksum } from './helpers/fixtures';
import { readPredictions } from '../src/core/evaluate/predictions';
import { buildThresholdView } from '../src/core/views/threshold';
import { buildGalleryPage } from '../src/core/views/gallery';
import { buildSlideMapView } from '../src/core/views/slidemap';
import type { EvalReport } from '../src/core/evaluate/types';

// The CLI as users run it (npm run build first).
const CLI = resolve(__dirname, '../dist/cli.js');

function idc(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let root: string;
let out: string;
let workspaceArchive: string;
let runId: string;

before(() => {
  root = tempDir('idc-external-');
  out = join(root, 'out');
  workspaceArchive = join(root, 'archive');
  writePatches(workspaceArchive, gridSpecs(['11', '12', '13', '14'], 10, 4));
  writeFileSync(join(root, 'idc.config.json'), JSON.stringify({
    engine: { backend: 'wasm' }, model: { filters: [8, 16], dense: [16] }, train: { epochs: 1, stepsPerEpoch: 1, batchSize: 16 },
    evaluate: { gradCamExamples: 2, bootstrap: { resamples: 50 } },
  }));
  for (const args of [['organize', workspaceArchive, '--out', 'out'], ['split', '--out', 'out', '--ratios', '0.5,0.25,0.25'], ['train', '--out', 'out', '--run', 'base']]) {
    const r = idc([...args, '-q'], root);
    assert.equal(r.code, 0, `${args[0]}: ${r.err}`);
  }
  runId = 'base';
});

test('idc evaluate --archive scores every patch of another archive, leaves it untouched, and the panels find the evaluation', async () => {
  const ext = join(root, 'hospital-b');
  writePatches(ext, gridSpecs(['21', '22', '23'], 8, 3));
  // A file organize refuses: reported, not scored.
  mkdirSync(join(ext, '23', '0'), { recursive: true });
  writeFileSync(join(ext, '23', '0', '23_idx5_x999_y1_class0.png'), 'not a png');
  const before = treeChecksum(ext);
  const r = idc(['evaluate', '--archive', ext, '--out', 'out', '-q'], root);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(treeChecksum(ext), before, 'the external archive is only read');

  // The usual evaluate table, on the external patients.
  assert.match(r.out, /External archive .*hospital-b: 24 patches from 3 patients/);
  assert.match(r.out, /Evaluated base on test: 24 patches \(9 positive\)/);
  assert.match(r.out, /ROC AUC/);
  assert.match(r.out, /worst patients at/);
  assert.doesNotMatch(r.out + r.err, /may have been trained on/);

  // Its own manifest, split (everyone in test) and cache under the output folder.
  const data = join(out, 'external', 'hospital-b');
  const split = JSON.parse(readFileSync(join(data, 'split.json'), 'utf8'));
  assert.deepEqual(split.patients, { train: [], val: [], test: ['21', '22', '23'] });
  assert.ok(existsSync(join(data, 'cache', 'cache.json')));
  assert.ok(!existsSync(join(out, 'runs', runId, 'eval', 'external-hospital-b')));

  // Outputs where the language server lists evaluations: evals/<name>/<split>/metrics.json.
  const dir = join(out, 'evals', `${runId}-on-hospital-b`, 'test');
  const report = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as EvalReport;
  assert.equal(report.n, 24);
  assert.equal(report.runId, runId);
  assert.equal(report.external?.name, 'hospital-b');
  assert.equal(report.external?.archive, ext);
  assert.equal(report.external?.patients, 3);
  assert.deepEqual(report.external?.overlap, []);
  // Thresholds come from the model's own validation patients, as they would in deployment.
  assert.equal(report.validation?.split, 'val');
  const preds = readPredictions(join(dir, 'predictions.csv'));
  assert.equal(preds.length, 24);
  assert.deepEqual(new Set(preds.map((p) => p.patient)), new Set(['21', '22', '23']));
  assert.ok(readdirSync(join(dir, 'gradcam')).some((f) => f.endsWith('.png')), 'Grad-CAMs');
  assert.ok(readdirSync(join(dir, 'slidemaps')).some((f) => f.endsWith('.png')), 'slide maps');

  // Threshold explorer, gallery and slide map read it with the workspace's own paths.
  const source = { model: `${runId}-on-hospital-b`, split: 'test' as const, dir };
  const view = buildThresholdView([source]);
  assert.equal(view?.evaluation.n, 24);
  const page = buildGalleryPage({ outputDir: out, archive: workspaceArchive, evaluations: [source] }, { cell: 'tp', threshold: 0, offset: 0, limit: 50 })!;
  assert.equal(page.items.length, 9);
  for (const it of page.items) {
    assert.ok(it.image, `image of ${it.id}`);
    // Served from the output folder: the webview's roots are the output and workspace archive folders.
    assert.ok(it.image!.startsWith(out + '/'), it.image!);
    assert.deepEqual(readFileSync(it.image!), readFileSync(join(ext, it.patient, '1', `${it.id}.png`)));
  }
  const map = await buildSlideMapView({ evaluation: `${runId}-on-hospital-b/test`, dir, outputDir: out, archive: workspaceArchive }, { patient: '22' });
  assert.equal(map.patient, '22');
  assert.ok(!map.warnings.some((w) => /could not be read/.test(w)), map.warnings.join('\n'));
});

test('an external archive with no valid patch, or that does not exist, is a clear error and nothing is written', () => {
  const bad = join(root, 'empty-clinic');
  mkdirSync(join(bad, '31', '0'), { recursive: true });
  writeFileSync(join(bad, '31', '0', '31_idx5_x1_y1_class0.png'), 'not a png');
  const r = idc(['evaluate', '--archive', bad, '--out', 'out', '-q'], root);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /No valid patch in .*empty-clinic/);
  assert.match(r.err, /organize-report|not a PNG|<patient>\/<0\|1>/);
  assert.doesNotMatch(r.err, /\n\s+at /);
  assert.ok(!existsSync(join(out, 'external', 'empty-clinic')));
  assert.ok(!readdirSync(join(out, 'external')).some((f) => f.startsWith('empty-clinic')), 'no staging folder left');
  assert.ok(!existsSync(join(out, 'evals', `${runId}-on-empty-clinic`)));

  const missing = idc(['evaluate', '--archive', join(root, 'nowhere'), '--out', 'out', '-q'], root);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /Archive not found: .*nowhere/);
  assert.ok(!existsSync(join(out, 'external', 'nowhere')));
});

test('the workspace\'s own archive is allowed, with a warning naming how many patients the model may have been trained on', () => {
  const split = JSON.parse(readFileSync(join(out, 'split.json'), 'utf8'));
  const seen = split.patients.train.length + split.patients.val.length;
  const r = idc(['evaluate', '--archive', workspaceArchive, '--out', 'out', '-q'], root);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`${seen} of the 4 patients .* are in the training or validation split of run base`));
  assert.match(r.out, /may have been trained on/);
  assert.match(r.out, /is the workspace's own archive/);
  const report = JSON.parse(readFileSync(join(out, 'evals', `${runId}-on-archive`, 'test', 'metrics.json'), 'utf8')) as EvalReport;
  assert.equal(report.n, 40);
  assert.equal(report.external?.overlap?.length, seen);
  assert.ok(report.warnings.some((w) => /may have been trained on/.test(w)));
});
