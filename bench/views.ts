/**
 * `npm run bench:views`: how fast the panels get their data, on the full-scale synthetic output
 * that `npm run bench` leaves in .idc-bench/ (277,980 patches, a 41,856-patch test evaluation),
 * or on a generated 45,000-prediction evaluation when that is absent.
 * Each builder is timed cold (first open: files parsed) and warm (cached, as on a slider move or
 * a reopened panel); the sizes are those of the JSON sent to the webview.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildThresholdView } from '../src/core/views/threshold';
import { buildGalleryPage } from '../src/core/views/gallery';
import { buildDatasetView, releaseDatasetCache } from '../src/core/views/dataset';
import { buildEvalReport } from '../src/core/evaluate/evaluate';
import { writePredictions } from '../src/core/evaluate/predictions';
import { writeFileAtomic } from '../src/core/fsutil';
import type { Prediction } from '../src/core/evaluate/types';

const dir = resolve(process.argv[2] ?? '.idc-bench', 'out-organize-279');

async function timed<T>(fn: () => T | Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

const kb = (v: unknown) => `${(JSON.stringify(v).length / 1024).toFixed(0)} KB`;
const row = (what: string, ms: number, note = '') => console.log(`${what.padEnd(44)} ${ms.toFixed(0).padStart(7)} ms  ${note}`);

async function syntheticEvaluation(n: number): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), 'idc-bench-views-'));
  const evalDir = join(out, 'runs', 'bench', 'eval', 'test');
  let s = 7;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const rows: Prediction[] = Array.from({ length: n }, (_, i) => {
    const label = (rand() < 0.28 ? 1 : 0) as 0 | 1;
    return { id: `p${i % 200}_idx5_x${i}_y${i}_class${label}`, patient: `p${i % 200}`, x: i, y: i, label, score: Math.fround(Math.min(1, Math.max(0, 0.35 * label + 0.65 * rand()))) };
  });
  await writePredictions(join(evalDir, 'predictions.csv'), rows);
  const report = buildEvalReport(rows.map((r) => r.label!), Float32Array.from(rows.map((r) => r.score)), rows,
    { threshold: 0.5, recallTarget: 0.9, pinnedThresholds: [] }, { model: 'bench', runId: 'bench', split: 'test', seconds: 1, backend: 'cpu' });
  await writeFileAtomic(join(evalDir, 'metrics.json'), JSON.stringify(report));
  return out;
}

async function main(): Promise<void> {
  let out = dir;
  let run = existsSync(join(dir, 'runs')) ? readdirSync(join(dir, 'runs')).find((r) => existsSync(join(dir, 'runs', r, 'eval', 'test', 'predictions.csv'))) : undefined;
  if (!run) {
    console.log(`(no full-scale evaluation in ${dir}: using 45,000 generated predictions)`);
    out = await syntheticEvaluation(45_000);
    run = 'bench';
  }
  const evaluations = [{ model: run, split: 'test' as const, dir: join(out, 'runs', run, 'eval', 'test') }];
  console.log(`panel view models, ${out}`);
  const t1 = await timed(() => buildThresholdView(evaluations));
  const n = t1.value?.evaluation.n ?? 0;
  row(`threshold explorer, ${n.toLocaleString()} predictions, cold`, t1.ms, `${kb(t1.value)} to the page, ${t1.value?.table.thresholds.length.toLocaleString()} thresholds`);
  const t2 = await timed(() => buildThresholdView(evaluations));
  row('threshold explorer, warm', t2.ms);
  const archive = join(resolve(out, '..'), 'archive-279');
  const ctx = { outputDir: out, archive, evaluations };
  const g1 = await timed(() => buildGalleryPage(ctx, { cell: 'fn', offset: 0, limit: 150 }));
  row('gallery, first page of 150', g1.ms, `${g1.value?.total.toLocaleString()} false negatives`);
  const g2 = await timed(() => buildGalleryPage(ctx, { cell: 'tn', offset: 10_000, limit: 150 }));
  row('gallery, a page deep in another cell', g2.ms);
  const g3 = await timed(() => buildGalleryPage(ctx, { cell: 'fn', threshold: 0.3, offset: 0, limit: 150 }));
  row('gallery, first page at a new threshold', g3.ms);
  if (existsSync(join(out, 'manifest.csv'))) {
    const src = { folder: resolve(out, '..'), archive, outputDir: out };
    releaseDatasetCache();
    const d1 = await timed(() => buildDatasetView(src));
    row(`dataset, ${d1.value.totals.patches.toLocaleString()} patches, cold`, d1.ms, `${kb(d1.value)} to the page`);
    const d2 = await timed(() => buildDatasetView(src));
    row('dataset, warm', d2.ms);
  }
}

void main();
