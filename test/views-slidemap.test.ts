import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, utimesSync, cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { build } from 'esbuild';
import { buildSlideMapView, encodePng, slideLayerFiles, releaseSlideMapCache, type SlideMapSources } from '../src/core/views/slidemap';
import { readManifest, manifestHash, type ManifestRow } from '../src/core/manifest';
import type { SplitFile } from '../src/core/split';
import { buildEvalReport } from '../src/core/evaluate/evaluate';
import { writePredictions } from '../src/core/evaluate/predictions';
import type { Prediction } from '../src/core/evaluate/types';
import { writeJsonAtomic } from '../src/core/fsutil';
import { buildCache } from '../src/core/cache/build';
import { decodeRgb, placePatch, PATCH_BYTES } from '../src/core/cache/pixels';
import { VIRIDIS, lutIndex } from '../src/core/visual/colormap';
import { Rng } from '../src/core/rng';
import { preparedOutput } from './helpers/pipeline';
import { tempDir } from './helpers/fixtures';

let root = '';
let out = '';
let evalDir = '';
let rows: ManifestRow[] = [];
let preds: Prediction[] = [];
const THRESHOLD = 0.5;

/** An evaluation folder without training: scores that follow the labels loosely, so there are FN and FP. */
async function writeEvaluation(dir: string, predictions: Prediction[]): Promise<void> {
  const labels = predictions.map((p) => p.label!);
  const scores = predictions.map((p) => p.score);
  const report = buildEvalReport(labels, scores, predictions, { threshold: THRESHOLD, recallTarget: 0.9, pinnedThresholds: [] }, { model: 'r1', runId: 'r1', split: 'test', seconds: 1, backend: 'cpu' });
  await writePredictions(join(dir, 'predictions.csv'), predictions);
  await writeJsonAtomic(join(dir, 'metrics.json'), report);
}

function sources(over: Partial<SlideMapSources> = {}): SlideMapSources {
  return { evaluation: 'r1/test', dir: evalDir, outputDir: out, archive: join(root, 'archive'), evaluations: ['r1/test'], ...over };
}

function png(file: string) {
  const img = decode(readFileSync(file));
  assert.equal(img.channels, 4, `${file} is RGBA`);
  return img;
}

before(async () => {
  ({ root, out } = await preparedOutput(6, 9, [0.5, 0.25, 0.25]));
  rows = await readManifest(join(out, 'manifest.csv'));
  const split = JSON.parse(readFileSync(join(out, 'split.json'), 'utf8')) as SplitFile;
  const test = new Set(split.patients.test);
  const rng = new Rng(3);
  preds = rows.filter((r) => test.has(r.patient)).map((r) => ({
    id: r.id, patient: r.patient, x: r.x, y: r.y, label: r.label,
    score: Math.fround(r.label === 1 ? 0.25 + 0.75 * rng.next() : 0.65 * rng.next()),
  }));
  evalDir = join(out, 'runs', 'r1', 'eval', 'test');
  await writeEvaluation(evalDir, preds);
});

/** The 50x50 RGB of a patch as organize's archive holds it (edge patches padded white, as on the slide). */
function patchPixels(r: ManifestRow): Uint8Array {
  const px = new Uint8Array(PATCH_BYTES);
  placePatch(decodeRgb(readFileSync(join(root, 'archive', r.source))), 'pad', px, 0);
  return px;
}

test('patients worst first with FN/FP at the threshold; tiles carry labels, scores and their rectangles', async () => {
  releaseSlideMapCache();
  const v = await buildSlideMapView(sources());
  assert.equal(v.workingThreshold, THRESHOLD);
  assert.equal(v.threshold, THRESHOLD);
  const byPatient = new Map<string, Prediction[]>();
  for (const p of preds) byPatient.set(p.patient, [...(byPatient.get(p.patient) ?? []), p]);
  assert.deepEqual(new Set(v.patients.map((p) => p.patient)), new Set(byPatient.keys()));
  for (const row of v.patients) {
    const mine = byPatient.get(row.patient)!;
    assert.equal(row.patches, mine.length);
    assert.equal(row.positives, mine.filter((p) => p.label === 1).length);
    assert.equal(row.fn, mine.filter((p) => p.label === 1 && p.score < THRESHOLD).length, `${row.patient} FN`);
    assert.equal(row.fp, mine.filter((p) => p.label === 0 && p.score >= THRESHOLD).length, `${row.patient} FP`);
  }
  for (let i = 1; i < v.patients.length; i++) assert.ok(v.patients[i - 1].fn >= v.patients[i].fn, 'most false negatives first');
  assert.equal(v.patient, v.patients[0].patient, 'the worst patient by default');
  assert.ok(v.patients.reduce((s, p) => s + p.fn, 0) > 0 && v.patients.reduce((s, p) => s + p.fp, 0) > 0, 'the fixture has both kinds of error');

  const mine = byPatient.get(v.patient)!;
  assert.equal(v.tiles.length, mine.length);
  const minX = Math.min(...mine.map((p) => p.x)), minY = Math.min(...mine.map((p) => p.y));
  for (const t of v.tiles) {
    const p = mine.find((q) => q.id === t.id)!;
    assert.deepEqual([t.label, t.score, t.x, t.y], [p.label, p.score, p.x, p.y]);
    assert.equal(t.size, Math.round(50 * v.scale));
    assert.ok(v.scale > 0 && v.scale <= 1 && v.width <= 2000, 'within the width budget');
    assert.equal(t.left, Math.round((p.x - minX) * v.scale));
    assert.equal(t.top, Math.round((p.y - minY) * v.scale));
    assert.ok(t.left + t.size <= v.width && t.top + t.size <= v.height);
  }
  // Another threshold recounts; the list is still every patient.
  const v2 = await buildSlideMapView(sources(), { threshold: 0.9, patient: v.patients.at(-1)!.patient });
  assert.equal(v2.threshold, 0.9);
  assert.equal(v2.workingThreshold, THRESHOLD);
  for (const row of v2.patients) {
    const m = byPatient.get(row.patient)!;
    assert.equal(row.fn, m.filter((p) => p.label === 1 && p.score < 0.9).length);
  }
  assert.equal(v2.patient, v.patients.at(-1)!.patient, 'the requested patient');
  assert.deepEqual(v2.warnings, []);
});

test('layers: tissue is the patches placed at x,y, truth a contour around IDC(+), probability the viridis tint; transparent outside tiles', async () => {
  releaseSlideMapCache();
  const v = await buildSlideMapView(sources());
  assert.equal(v.pixelSource, 'files', 'no patch cache yet: decoded from the archive');
  assert.equal(v.missingPixels, 0);
  assert.deepEqual(v.layers, (({ tissue, truth, probability }) => ({ tissue, truth, probability }))(slideLayerFiles(evalDir, v.patient)));
  assert.ok(v.layers.tissue.startsWith(join(evalDir, 'slidemaps', 'layers')), 'under the evaluation, beside (not among) its slide maps');
  const tissue = png(v.layers.tissue), truth = png(v.layers.truth), prob = png(v.layers.probability);
  for (const img of [tissue, truth, prob]) assert.deepEqual([img.width, img.height], [v.width, v.height]);
  const at = (img: ReturnType<typeof png>, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 4));
  const byId = new Map(rows.map((r) => [r.id, r]));
  const occupied = new Set<string>();
  for (const t of v.tiles) {
    for (let y = t.top; y < t.top + t.size; y++) for (let x = t.left; x < t.left + t.size; x++) occupied.add(`${x},${y}`);
    // The tile is the patch, shrunk by box averaging to fit the width budget: about the same mean colour
    // (uneven boxes weigh pixels a little differently).
    const px = patchPixels(byId.get(t.id)!);
    const mean = [0, 0, 0], want = [0, 0, 0];
    for (let y = t.top; y < t.top + t.size; y++) for (let x = t.left; x < t.left + t.size; x++) { const q = at(tissue, x, y); for (let c = 0; c < 3; c++) mean[c] += q[c] / t.size ** 2; assert.equal(q[3], 255); }
    for (let i = 0; i < PATCH_BYTES; i++) want[i % 3] += px[i] / 2500;
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(mean[c] - want[c]) < 4, `${t.id} tissue channel ${c}: ${mean[c]} vs ${want[c]}`);
    const h = t.size >> 1;
    const k = lutIndex(t.score) * 3;
    assert.deepEqual(at(prob, t.left + h, t.top + h), [VIRIDIS[k], VIRIDIS[k + 1], VIRIDIS[k + 2], 255], `${t.id} probability`);
    assert.equal(at(truth, t.left + h, t.top + h)[3], 0, 'the contour leaves the tile centre clear');
  }
  // Truth: every IDC(+) tile whose left neighbour is not IDC(+) has an opaque black left edge; IDC(-) tiles have no contour.
  const pos = new Set(v.tiles.filter((t) => t.label === 1).map((t) => `${t.x},${t.y}`));
  let edges = 0;
  for (const t of v.tiles) {
    const px = at(truth, t.left, t.top + (t.size >> 1));
    if (t.label === 1 && !pos.has(`${t.x - 50},${t.y}`)) { assert.deepEqual(px, [0, 0, 0, 255], `${t.id} contour`); edges++; }
    if (t.label === 0) assert.equal(px[3], 0, `${t.id} has no contour`);
  }
  assert.ok(edges > 0, 'the patient has IDC(+) tiles');
  // Outside the tiles everything is transparent.
  let outside = 0;
  for (let y = 0; y < v.height; y += 7) for (let x = 0; x < v.width; x += 7) {
    if (occupied.has(`${x},${y}`)) continue;
    outside++;
    assert.equal(at(tissue, x, y)[3], 0);
    assert.equal(at(prob, x, y)[3], 0);
    assert.equal(at(truth, x, y)[3], 0);
  }
  assert.ok(outside > 0, 'a slide is not a full rectangle of tissue');
});

test('layers are drawn once and reused while newer than predictions.csv; a newer evaluation redraws them', async () => {
  releaseSlideMapCache();
  const v = await buildSlideMapView(sources());
  const files = slideLayerFiles(evalDir, v.patient);
  const before = statSync(files.meta).mtimeMs;
  await new Promise((r) => setTimeout(r, 30));
  await buildSlideMapView(sources(), { threshold: 0.3 });
  assert.equal(statSync(files.meta).mtimeMs, before, 'reused: the threshold is drawn by the page, not baked in');
  const later = new Date(Date.now() + 5000);
  utimesSync(join(evalDir, 'predictions.csv'), later, later);
  const again = await buildSlideMapView(sources());
  assert.ok(statSync(files.meta).mtimeMs > before, 'redrawn after a new evaluation');
  assert.deepEqual(again.tiles, v.tiles);
});

test('with the patch cache the pixels come from it (read-only), and match the files', async () => {
  const viaFiles = await buildSlideMapView(sources());
  const tissueFromFiles = png(viaFiles.layers.tissue).data;
  const split = JSON.parse(readFileSync(join(out, 'split.json'), 'utf8')) as SplitFile;
  await buildCache({ outputDir: out, split, rows, manifestHash: manifestHash(readFileSync(join(out, 'manifest.csv'), 'utf8')), archive: join(root, 'archive'), archiveKind: 'dir', edgePatches: 'pad' });
  const cacheBefore = statSync(join(out, 'cache', 'test.u8')).mtimeMs;
  // A copy of the evaluation, so the layers are drawn afresh.
  const dir2 = join(out, 'runs', 'r1', 'eval', 'val');
  cpSync(evalDir, dir2, { recursive: true });
  rmSync(join(dir2, 'slidemaps'), { recursive: true, force: true });
  releaseSlideMapCache();
  const v = await buildSlideMapView(sources({ dir: dir2, evaluation: 'r1/val' }), { patient: viaFiles.patient });
  assert.equal(v.pixelSource, 'cache');
  assert.equal(v.missingPixels, 0);
  assert.deepEqual(png(v.layers.tissue).data, tissueFromFiles, 'the same slide from the cache (edge patches padded) as from the PNGs');
  assert.equal(statSync(join(out, 'cache', 'test.u8')).mtimeMs, cacheBefore, 'the cache is only read');
});

test('no cache and no archive: patches drawn grey and counted; an unknown patient falls back to the worst, with a warning', async () => {
  const dir3 = join(out, 'runs', 'r1', 'eval', 'train');
  cpSync(evalDir, dir3, { recursive: true });
  rmSync(join(dir3, 'slidemaps'), { recursive: true, force: true });
  releaseSlideMapCache();
  const v = await buildSlideMapView(sources({ dir: dir3, archive: join(root, 'gone'), cacheDir: join(root, 'no-cache') }), { patient: 'nobody' });
  assert.equal(v.patient, v.patients[0].patient);
  assert.equal(v.missingPixels, v.tiles.length);
  assert.match(v.warnings.join('\n'), /Patient nobody is not in this evaluation/);
  assert.match(v.warnings.join('\n'), new RegExp(`${v.tiles.length} of ${v.tiles.length} patches could not be read`));
  const t = v.tiles[0];
  const img = png(v.layers.tissue);
  const i = ((t.top + (t.size >> 1)) * img.width + t.left + (t.size >> 1)) * 4;
  assert.deepEqual(Array.from(img.data.subarray(i, i + 4)), [200, 200, 200, 255]);
});

test('a missing evaluation is a clear error', async () => {
  await assert.rejects(buildSlideMapView(sources({ dir: join(root, 'nowhere') })), /No metrics at .*metrics\.json/);
});

test('encodePng writes RGBA PNGs that decode to the same pixels', () => {
  const w = 37, h = 23;
  const data = new Uint8Array(w * h * 4);
  const rng = new Rng(5);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(0, 255);
  const img = decode(encodePng(data, w, h));
  assert.deepEqual([img.width, img.height, img.channels, img.depth], [w, h, 4, 8]);
  assert.deepEqual(Array.from(img.data), Array.from(data));
});

test('the view builders bundle without TF.js or sharp (the extension host loads them)', async () => {
  const dir = tempDir('idc-sm-bundle-');
  for (const entry of ['src/core/views/slidemap.ts', 'src/core/views/dataset.ts']) {
    const r = await build({
      entryPoints: [entry], bundle: true, platform: 'node', format: 'cjs', write: false, outdir: dir, logLevel: 'silent',
      external: ['vscode', 'sharp', '@tensorflow/*', 'webgpu'], metafile: true,
    });
    const inputs = Object.keys(r.metafile!.inputs);
    assert.ok(!inputs.some((p) => p.includes('@tensorflow')), `${entry} pulls in TF.js: ${inputs.filter((p) => p.includes('@tensorflow')).join(', ')}`);
    const code = r.outputFiles.find((f) => f.path.endsWith('.js'))!.text;
    assert.doesNotMatch(code, /require\("(sharp|@tensorflow\/[^"]+)"\)/, `${entry} requires a native or TF.js module`);
  }
});
