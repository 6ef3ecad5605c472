import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { buildGalleryPage, gradCamPaths, locateInGallery, manifestSources, gradCamPath, type GalleryContext } from '../src/core/views/gallery';
import { loadEvaluation } from '../src/core/views/threshold';
import { errorPage, readPredictions } from '../src/core/evaluate/predictions';
import { confusionAt } from '../src/core/metrics';
import type { GalleryItem } from '../src/core/views/types';
import { evaluationFixture, rng, writeEvaluation, fakeScores, type EvaluationFixture } from './helpers/evaluation';
import { tempDir } from './helpers/fixtures';
import type { Prediction } from '../src/core/evaluate/types';

let fx: EvaluationFixture;
let ctx: GalleryContext;
const CELLS = ['fn', 'fp', 'tp', 'tn'] as const;

before(async () => {
  fx = await evaluationFixture();
  ctx = { outputDir: fx.out, archive: fx.archive, evaluations: [fx.source] };
});

/** Every item of a cell, fetched page by page as the scrolling grid does. */
function allPages(cell: (typeof CELLS)[number], threshold: number, limit: number, patient?: string): GalleryItem[] {
  const out: GalleryItem[] = [];
  for (let offset = 0; ; offset += limit) {
    const p = buildGalleryPage(ctx, { cell, threshold, offset, limit, patient })!;
    out.push(...p.items);
    if (offset + limit >= p.total) return out;
  }
}

test('tabs count each cell at the threshold; pages concatenate to errorPage\'s worst-first order', () => {
  const raw = readPredictions(join(fx.dir, 'predictions.csv'));
  const labels = raw.map((p) => p.label!);
  const scores = raw.map((p) => p.score);
  for (const t of [0.5, 0.3, fx.report.operatingPoints.find((o) => o.name === 'youden')!.threshold]) {
    const first = buildGalleryPage(ctx, { cell: 'fn', threshold: t, offset: 0, limit: 50 })!;
    assert.deepEqual(first.totals, confusionAt(labels, scores, t), `totals at ${t}`);
    assert.equal(first.threshold, t);
    for (const cell of CELLS) {
      const items = allPages(cell, t, 97);
      assert.equal(items.length, first.totals[cell], `${cell} at ${t}`);
      const ref = errorPage(raw, cell, t, 0, 1e9).items;
      assert.deepEqual(items.map((i) => i.id), ref.map((i) => i.id), `${cell} order at ${t}`);
      // And independently of errorPage: most wrong first, ties by id.
      const inCell = raw.filter((r) => (r.label === 1 ? (r.score >= t ? 'tp' : 'fn') : r.score >= t ? 'fp' : 'tn') === cell);
      const up = cell === 'fn' || cell === 'tp';
      inCell.sort((a, b) => (up ? a.score - b.score : b.score - a.score) || (a.id < b.id ? -1 : 1));
      assert.deepEqual(items.map((i) => i.id), inCell.map((i) => i.id), `${cell} reference order at ${t}`);
      for (const it of items) {
        const pos = it.score >= t;
        assert.equal(cell, it.label === 1 ? (pos ? 'tp' : 'fn') : pos ? 'fp' : 'tn');
      }
    }
  }
  // How wrong: FN from the lowest score up, FP from the highest down.
  const fn = allPages('fn', 0.5, 500);
  for (let i = 1; i < fn.length; i++) assert.ok(fn[i - 1].score <= fn[i].score);
  const fp = allPages('fp', 0.5, 500);
  for (let i = 1; i < fp.length; i++) assert.ok(fp[i - 1].score >= fp[i].score);
  const past = buildGalleryPage(ctx, { cell: 'fp', threshold: 0.5, offset: 1e6, limit: 10 })!;
  assert.deepEqual(past.items, []);
  assert.equal(past.patients, undefined, 'patient counts only come with the first page');
});

test('the threshold defaults to the working one; the patient filter narrows items and tab counts', () => {
  const p = buildGalleryPage({ ...ctx, working: 0.3 }, { cell: 'fp', offset: 0, limit: 10 })!;
  assert.equal(p.threshold, 0.3);
  assert.equal(p.working, 0.3);
  assert.equal(buildGalleryPage(ctx, { cell: 'fp', offset: 0, limit: 10 })!.threshold, fx.report.threshold, 'else the evaluation\'s');
  const patients = p.patients!;
  assert.equal(new Set(patients.map((x) => x.patient)).size, new Set(fx.predictions.map((x) => x.patient)).size);
  assert.equal(patients.reduce((s, x) => s + x.fn + x.fp + x.tp + x.tn, 0), fx.predictions.length);
  for (let i = 1; i < patients.length; i++) assert.ok(patients[i - 1].fn + patients[i - 1].fp >= patients[i].fn + patients[i].fp, 'most errors first');
  const who = patients[0];
  const mine = fx.predictions.filter((x) => x.patient === who.patient);
  const q = buildGalleryPage(ctx, { cell: 'tn', threshold: 0.3, offset: 0, limit: 2000, patient: who.patient })!;
  assert.deepEqual(q.totals, confusionAt(mine.map((x) => x.label!), mine.map((x) => x.score), 0.3));
  assert.deepEqual(q.totals, { fn: who.fn, fp: who.fp, tp: who.tp, tn: who.tn });
  assert.equal(q.items.length, who.tn);
  assert.ok(q.items.every((i) => i.patient === who.patient));
});

test('tiles carry the patch file, coordinates and score; Grad-CAM overlays where evaluate wrote them', () => {
  const fp = buildGalleryPage(ctx, { cell: 'fp', threshold: 0.5, offset: 0, limit: 5 })!;
  const fn = buildGalleryPage(ctx, { cell: 'fn', threshold: 0.5, offset: 0, limit: 5 })!;
  assert.equal(fp.gradcams, 0);
  assert.ok(fp.items.every((i) => i.gradcam === undefined));
  // evaluate's naming: <evaluation>/gradcam/<id>.png
  mkdirSync(join(fx.dir, 'gradcam'), { recursive: true });
  const withCam = [fp.items[0], fn.items[0]];
  for (const it of withCam) copyFileSync(it.image!, gradCamPath(fx.dir, it.id));
  const sources = manifestSources(fx.out);
  for (const it of [...fp.items, ...fn.items]) {
    assert.equal(it.image, resolve(fx.archive, sources.get(it.id)!), 'the archive file itself (folder archive)');
    assert.ok(existsSync(it.image!));
    assert.match(it.id, new RegExp(`^${it.patient}_idx5_x${it.x}_y${it.y}_class${it.label}$`));
  }
  const again = buildGalleryPage(ctx, { cell: 'fp', threshold: 0.5, offset: 0, limit: 5 })!;
  assert.equal(again.gradcams, 2);
  assert.equal(again.items[0].gradcam, join(fx.dir, 'gradcam', `${fp.items[0].id}.png`));
  assert.equal(again.items[1].gradcam, undefined);
  const cams = gradCamPaths(ctx, [fn.items[0].id, fn.items[1].id, '../../etc/passwd']);
  assert.equal(cams[fn.items[0].id], gradCamPath(fx.dir, fn.items[0].id));
  assert.equal(cams[fn.items[1].id], null);
  assert.equal(cams['../../etc/passwd'], null, 'ids are not paths');
});

test('locate finds a patch\'s cell and position (for a focused open); unknown ids give null', () => {
  const fp = allPages('fp', 0.4, 500);
  const target = fp[Math.floor(fp.length / 2)];
  assert.deepEqual(locateInGallery(ctx, target.id, 0.4), { cell: 'fp', index: Math.floor(fp.length / 2), patient: undefined });
  const mine = allPages('fp', 0.4, 500, target.patient);
  const loc = locateInGallery(ctx, target.id, 0.4, target.patient)!;
  assert.equal(loc.patient, target.patient);
  assert.equal(mine[loc.index].id, target.id);
  assert.equal(locateInGallery(ctx, target.id, 0.4, 'someone-else')!.patient, undefined, 'a filter on another patient is dropped');
  assert.equal(locateInGallery(ctx, 'nope', 0.4), null);
  assert.equal(buildGalleryPage({ ...ctx, evaluations: [] }, { cell: 'fn', offset: 0, limit: 1 }), null, 'no evaluation yet');
});

test('pages do not re-read predictions.csv; a rewritten file is read again', async () => {
  const dir = join(fx.out, 'runs', 'r5', 'eval', 'test');
  await writeEvaluation(dir, fx.predictions, undefined, 'r5');
  const c = { ...ctx, evaluations: [{ model: 'r5', split: 'test' as const, dir }] };
  buildGalleryPage(c, { cell: 'fn', threshold: 0.5, offset: 0, limit: 10 });
  const loaded = loadEvaluation(c.evaluations[0]);
  const before = statSync(join(dir, 'predictions.csv')).mtimeMs;
  for (let o = 0; o < 20; o++) buildGalleryPage(c, { cell: 'tn', threshold: 0.5, offset: o * 10, limit: 10 });
  assert.equal(loadEvaluation(c.evaluations[0]), loaded, 'one parse for all pages');
  assert.equal(statSync(join(dir, 'predictions.csv')).mtimeMs, before);
  const flipped = fx.predictions.map((p) => ({ ...p, score: Math.fround(1 - p.score) }));
  await writeEvaluation(dir, flipped, undefined, 'r5');
  const future = new Date(Date.now() + 5000);
  utimesSync(join(dir, 'predictions.csv'), future, future);
  const p = buildGalleryPage(c, { cell: 'fn', threshold: 0.5, offset: 0, limit: 10 })!;
  assert.notEqual(loadEvaluation(c.evaluations[0]), loaded);
  assert.deepEqual(p.totals, confusionAt(flipped.map((x) => x.label!), flipped.map((x) => x.score), 0.5));
});

test('45k predictions: pages after the first are fast (10,000+ tiles scroll page by page)', async () => {
  const n = 45_000;
  const r = rng(12);
  const labels = Array.from({ length: n }, () => (r() < 0.3 ? 1 : 0));
  const scores = fakeScores(labels, 2);
  const rows: Prediction[] = labels.map((l, i) => ({ id: `p${i % 150}_idx5_x${i}_y0_class${l}`, patient: `p${i % 150}`, x: i, y: 0, label: l as 0 | 1, score: scores[i] }));
  const dir = join(tempDir(), 'big');
  await writeEvaluation(dir, rows, undefined, 'big');
  const c: GalleryContext = { outputDir: tempDir(), archive: tempDir(), evaluations: [{ model: 'big', split: 'test', dir }] };
  let t0 = performance.now();
  const first = buildGalleryPage(c, { cell: 'tn', threshold: 0.5, offset: 0, limit: 200 })!;
  const cold = performance.now() - t0;
  assert.ok(first.total > 10_000, `${first.total} TN tiles`);
  assert.ok(first.items.every((i) => i.image === null), 'no manifest: no image, no crash');
  t0 = performance.now();
  let seen = 0;
  for (let o = 200; o < 10_200; o += 200) seen += buildGalleryPage(c, { cell: 'tn', threshold: 0.5, offset: o, limit: 200 })!.items.length;
  const perPage = (performance.now() - t0) / 50;
  assert.equal(seen, 10_000);
  assert.ok(perPage < 60, `${perPage.toFixed(1)} ms per later page`);
  console.log(`gallery 45k: first page ${cold.toFixed(0)} ms (parse + sort), later pages ${perPage.toFixed(1)} ms`);
  assert.ok(readFileSync(join(dir, 'predictions.csv'), 'utf8').length > 0);
});
