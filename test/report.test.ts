import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { renderReport, writeReport, escapeHtml, SECTIONS, type ReportInput, type SectionId } from '../src/core/report';
import { fixed, thresholdText, imageDataUri } from '../src/core/report/html';
import type { CvSummary, EvalReport, OperatingPointRow, Prediction } from '../src/core/evaluate/types';
import { calibrationSummary } from '../src/core/metrics/calibration';
import { buildEvalReport } from '../src/core/evaluate/evaluate';
import { Rng } from '../src/core/rng';
import type { EpochLog } from '../src/core/train/checkpoint';
import type { OrganizeReport } from '../src/core/organize/organize';
import type { SplitFile } from '../src/core/split';

const EVIL = '8863_idx5_x<script>alert(1)</script>_y51_class1';

function epoch(i: number, extra: Partial<EpochLog> = {}): EpochLog {
  return {
    epoch: i, loss: 0.6 - i * 0.05, accuracy: 0.7 + i * 0.03, precision: 0.6 + i * 0.03, recall: 0.65 + i * 0.03, auc: 0.8 + i * 0.02,
    val_loss: 0.62 - i * 0.04, val_accuracy: 0.71 + i * 0.02, val_precision: 0.61 + i * 0.02, val_recall: 0.66 + i * 0.02, val_auc: 0.81 + i * 0.015,
    lr: i < 4 ? 1e-3 : 5e-4, seconds: 30 + i, imagesPerSecond: 1200 + i * 10, ...extra,
  };
}

const history: EpochLog[] = [0, 1, 2, 3, 4, 5].map((i) => epoch(i, i === 3 ? { lrReduced: true } : i === 4 ? { best: true, val_auc: 0.95 } : {}));

function op(name: OperatingPointRow['name'], label: string, threshold: number, tp: number, fp: number, tn: number, fn: number): OperatingPointRow {
  const P = tp + fn, N = tn + fp;
  const recall = tp / P, specificity = tn / N;
  return {
    name, label, threshold, tp, fp, tn, fn,
    precision: tp / (tp + fp), recall, sensitivity: recall, specificity,
    f1: (2 * tp) / (2 * tp + fp + fn), accuracy: (tp + tn) / (P + N), balancedAccuracy: (recall + specificity) / 2,
    fpr: fp / N, tpr: recall,
  };
}

function evaluation(): EvalReport {
  return {
    version: 1, createdAt: '2025-03-01T10:00:00.000Z', model: 'run-2025-03-01', runId: 'run-2025-03-01', split: 'test',
    n: 1000, positives: 280, negatives: 720, auc: 0.9123, averagePrecision: 0.8771, warnings: ['Patient 99 has only one class.'],
    roc: { fpr: [0, 0.02, 0.08, 0.2, 0.5, 1], tpr: [0, 0.5, 0.8, 0.9, 0.97, 1], thresholds: [Infinity, 0.9, 0.7, 0.5, 0.3, 0] },
    pr: { precision: [1, 0.95, 0.8, 0.64, 0.43, 0.28], recall: [0, 0.5, 0.8, 0.9, 0.97, 1], thresholds: [1, 0.9, 0.7, 0.5, 0.3, 0] },
    threshold: 0.5,
    operatingPoints: [
      op('default', 'Default 0.5', 0.5, 252, 144, 576, 28),
      op('youden', "Youden's J", 0.6123, 230, 60, 660, 50),
      op('recall-target', 'Recall ≥ 0.95', 0.00042, 266, 300, 420, 14),
    ],
    patients: [
      { patient: '10253', n: 300, positives: 120, positiveRate: 0.4, predictedPositiveRate: 0.35, auc: 0.8642, recall: 0.8, falseNegatives: 24, falsePositives: 10, meanScore: 0.41 },
      { patient: '12345', n: 200, positives: 0, positiveRate: 0, predictedPositiveRate: 0.05, auc: null, recall: null, falseNegatives: 0, falsePositives: 10, meanScore: 0.12 },
    ],
    errors: {
      falseNegatives: [
        { id: EVIL, patient: '8863', x: 1001, y: 51, label: 1, score: 0.0312 },
        { id: '10253_idx5_x51_y101_class1', patient: '10253', x: 51, y: 101, label: 1, score: 0.0877 },
      ],
      falsePositives: [{ id: '12345_idx5_x1_y1_class0', patient: '12345', x: 1, y: 1, label: 0, score: 0.9871 }],
      totalFalseNegatives: 28, totalFalsePositives: 144,
    },
    seconds: 12.5, imagesPerSecond: 80, backend: 'wasm',
  };
}

const organize: OrganizeReport = {
  version: 1, archive: '/data/archive & <stuff>.zip', kind: 'zip', createdAt: '2025-02-01T00:00:00.000Z',
  totals: { files: 1210, patches: 1200, negatives: 860, positives: 340, patients: 6, skipped: 7, suspicious: 3, duplicates: 0, edgePatches: 5 },
  patients: [],
  duplicates: [],
  issues: [
    { path: '10253/0/bad<name>.png', severity: 'skipped', reason: 'not a PNG' },
    { path: '10253/1/odd.png', severity: 'suspicious', reason: 'size 49x50' },
  ],
};

function split(patients: SplitFile['patients'] = { train: ['1', '2', '3'], val: ['4'], test: ['5', '6'] }): SplitFile {
  return {
    version: 1, seed: 42, ratios: [0.7, 0.15, 0.15], stratify: true, manifestHash: 'abc', createdAt: '2025-02-02T00:00:00.000Z',
    patients,
    summary: {
      train: { patients: 3, patches: 840, positives: 238, positiveRate: 238 / 840 },
      val: { patients: 1, patches: 180, positives: 51, positiveRate: 51 / 180 },
      test: { patients: 2, patches: 180, positives: 51, positiveRate: 51 / 180 },
    },
  };
}

let thumbnails: Map<string, Buffer>;
let gradCams: Map<string, Buffer>;
let slide: Buffer;

async function png(w: number, h: number, rgb: [number, number, number]): Promise<Buffer> {
  return sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toBuffer();
}

before(async () => {
  thumbnails = new Map([[EVIL, await png(50, 50, [200, 120, 180])], ['12345_idx5_x1_y1_class0', await png(50, 50, [230, 190, 220])]]);
  gradCams = new Map([[EVIL, await png(50, 50, [255, 0, 0])]]);
  slide = await png(120, 80, [240, 240, 240]);
});

function full(): ReportInput {
  return {
    title: 'Run <A> & "B"', organize, split: split(), history, runId: 'run-2025-03-01',
    runConfig: { train: { epochs: 6, note: '</pre><script>alert("cfg")</script>' } },
    evaluation: { ...evaluation(), calibration: { method: 'none', before: calibrationSummary([0, 1, 1, 0, 1], [0.1, 0.8, 0.6, 0.3, 0.95]) }, cv: cvSummary() },
    cvHistories: cvSummary().rows.map((r, i) => ({ fold: r.fold, runId: r.runId, history: history.slice(0, 3 + i) })),
    thumbnails, gradCams, slideMaps: [{ patient: '8863', png: slide }], generatedAt: '2025-03-01T12:34:56.000Z',
  };
}

/** metrics.json's cv part of a 3-fold cross-validation; fold 3 holds one class (no AUC of its own). */
function cvSummary(): CvSummary {
  const row = (fold: number, n: number, positives: number, auc: number | null, ap: number | null) => ({
    fold, runId: `cv-3fold-seed42-fold${fold}`, patients: { train: ['1', '2'], val: ['3'], test: ['4', '5'] }, n, positives, auc, averagePrecision: ap, bestEpoch: fold, epochs: 6,
  });
  return {
    id: 'cv-3fold-seed42', folds: 3, seed: 42,
    rows: [row(1, 400, 120, 0.9, 0.8), row(2, 350, 100, 0.8, 0.7), row(3, 250, 0, null, null)],
    mean: { auc: 0.85, averagePrecision: 0.75 }, sd: { auc: Math.SQRT1_2 / 10, averagePrecision: Math.SQRT1_2 / 10 },
  };
}

/** The markup of one chart figure. */
function chart(page: string, id: string): string {
  const start = page.indexOf(`<figure class="chart" data-chart="${id}"`);
  assert.ok(start >= 0, `chart ${id} present`);
  return page.slice(start, page.indexOf('</figure>', start));
}

/** The chart's plot, without its legend. */
const plot = (c: string): string => c.slice(0, c.indexOf('<ul class="legend">'));

const count = (s: string, needle: string | RegExp): number => (typeof needle === 'string' ? s.split(needle).length - 1 : (s.match(needle) ?? []).length);
const heading = (id: SectionId) => `<h2 id="${id}-h">${escapeHtml(SECTIONS[id])}</h2>`;

describe('renderReport', () => {
  test('references nothing outside the file', () => {
    const page = renderReport(full());
    assert.doesNotMatch(page, /https?:\/\//i);
    assert.doesNotMatch(page, /<link\b|@import|<iframe|<object|<embed/i);
    const refs = [...page.matchAll(/\b(?:src|href|xlink:href)\s*=\s*"([^"]*)"/gi)].map((m) => m[1]);
    assert.ok(refs.length > 5);
    for (const r of refs) assert.match(r, /^(data:|#)/, r);
    for (const m of page.matchAll(/url\(\s*['"]?([^'")]*)/gi)) assert.match(m[1], /^(data:|#)/, m[0]);
    assert.equal(count(page, '<script'), 1, 'only our inline script');
    assert.match(page, /Content-Security-Policy" content="default-src 'none'; img-src data:/);
    // The policy admits exactly our script.
    const script = page.match(/<script>([\s\S]*?)<\/script>/)![1];
    const hash = createHash('sha256').update(script).digest('base64');
    assert.ok(page.includes(`script-src 'sha256-${hash}'`));
  });

  test('has light, dark and print styles', () => {
    const page = renderReport({});
    assert.match(page, /@media screen and \(prefers-color-scheme:dark\)/);
    assert.match(page, /@media print/);
    assert.match(page, /<meta name="color-scheme" content="light dark">/);
  });

  test('shows each section exactly when its data is given', () => {
    const all = renderReport(full());
    for (const id of Object.keys(SECTIONS) as SectionId[]) {
      assert.ok(all.includes(heading(id)), `${id} in full report`);
      assert.ok(all.includes(`href="#${id}"`), `${id} in nav`);
    }
    const bare = renderReport({ generatedAt: '2025-03-01T12:00:00Z' });
    assert.match(bare, /<h1>IDC Inspector report<\/h1>/);
    assert.match(bare, /2025-03-01 12:00 UTC/);
    for (const id of Object.keys(SECTIONS) as SectionId[]) assert.ok(!bare.includes(heading(id)), `${id} absent`);
    assert.ok(!bare.includes('class="kpi"'));

    const only = (input: ReportInput, expected: SectionId[]) => {
      const page = renderReport(input);
      for (const id of Object.keys(SECTIONS) as SectionId[]) assert.equal(page.includes(heading(id)), expected.includes(id), `${id} with ${Object.keys(input).join(',')}`);
    };
    only({ history }, ['training']);
    only({ organize }, ['dataset']);
    only({ split: split() }, ['dataset']);
    only({ evaluation: evaluation() }, ['curves', 'thresholds', 'patients', 'errors']);
    only({ slideMaps: [{ patient: '1', png: slide }] }, ['slides']);
    only({ history: [], slideMaps: [] }, []);
    const ev = evaluation();
    ev.operatingPoints = [];
    ev.patients = [];
    only({ evaluation: ev }, ['curves', 'errors']);
    // A partial metrics.json (lists missing) renders what it has instead of throwing.
    const partial = { ...evaluation(), operatingPoints: undefined, patients: undefined, errors: undefined, warnings: undefined } as unknown as EvalReport;
    only({ evaluation: partial }, ['curves', 'errors']);
  });

  test('header: title, time, run id and headline numbers', () => {
    const page = renderReport(full());
    assert.match(page, /<h1>Run &lt;A&gt; &amp; &quot;B&quot;<\/h1>/);
    assert.match(page, /<time datetime="2025-03-01T12:34:56.000Z">2025-03-01 12:34 UTC<\/time>/);
    assert.match(page, /Run <code>run-2025-03-01<\/code>/);
    const kpi = (k: string) => page.match(new RegExp(`data-kpi="${k}">.*?<div class="v">([^<]*)</div>`))?.[1];
    assert.equal(kpi('auc'), '0.912');
    assert.equal(kpi('ap'), '0.877');
    assert.equal(kpi('recall'), '0.900');      // 252 / 280 at the working threshold 0.5
    assert.equal(kpi('specificity'), '0.800'); // 576 / 720
    assert.match(page, /Recall @ 0\.5000/);
    assert.match(page, /Patient 99 has only one class\./);
    // Without a matching operating point, the error totals give the same numbers.
    const ev = evaluation();
    ev.operatingPoints = [];
    const alt = renderReport({ evaluation: ev });
    assert.match(alt, /data-kpi="recall">.*?<div class="v">0\.900</);
    assert.match(alt, /data-kpi="specificity">.*?<div class="v">0\.800</);
    // A null AUC reads as a dash.
    const nul = evaluation();
    nul.auc = null;
    assert.match(renderReport({ evaluation: nul }), /data-kpi="auc">.*?<div class="v">—</);
  });

  test('dataset: class distribution, pies, bars, leakage check and organize issues', () => {
    const page = renderReport({ organize, split: split() });
    assert.match(page, /1,200 patches from 6 patients; 340 IDC\+ \(positive rate 28\.3%\)/);
    for (const id of ['pie-all', 'pie-train', 'pie-val', 'pie-test']) assert.ok(page.includes(`data-chart="${id}"`), id);
    assert.equal(count(page.slice(page.indexOf('data-chart="pie-all"')), /class="slice/g) >= 2, true);
    const bars = page.slice(page.indexOf('data-chart="split-bars"'));
    assert.equal(count(bars.slice(0, bars.indexOf('</figure>')), '<g class="bar"'), 3);
    assert.match(page, /data-check="leakage"><b>✓ No patient in two splits\.<\/b>3 train, 1 val, 2 test/);
    assert.match(page, /<th>Skipped<\/th><td class="num">7<\/td>/);
    assert.match(page, /<th>Suspicious<\/th><td class="num">3<\/td>/);
    assert.ok(page.includes('10253/0/bad&lt;name&gt;.png'));
    assert.ok(page.includes('/data/archive &amp; &lt;stuff&gt;.zip'));
    assert.ok(!page.includes('<name>'));

    const leaky = renderReport({ split: split({ train: ['1', '2', '3'], val: ['3'], test: ['5', '1'] }) });
    assert.match(leaky, /class="check bad" data-check="leakage"><b>✗ 2 patients in more than one split\.<\/b>1 \(train, test\); 3 \(train, val\)/);
    // organize alone: one overall pie, no split table rows or leakage check
    const org = renderReport({ organize });
    assert.ok(org.includes('data-chart="pie-all"') && !org.includes('data-chart="pie-train"') && !org.includes('data-check="leakage"'));
  });

  test('training curves: two series per metric, LR chart, best-epoch and LR-reduced markers', () => {
    const page = renderReport({ history });
    for (const id of ['loss', 'accuracy', 'recall', 'precision', 'auc']) {
      const c = chart(page, id);
      assert.equal(count(c, '<path class="series'), 2, id);
      assert.ok(c.includes('data-series="train"') && c.includes('data-series="val"'));
      assert.equal(count(plot(c), '<line class="vline best"'), 1, `${id} best`);
      assert.equal(count(plot(c), '<line class="vline lr"'), 1, `${id} lr`);
      assert.equal(count(c, '<circle '), 12, `${id} dots`);
    }
    const lr = chart(page, 'lr');
    assert.equal(count(lr, '<path class="series'), 1);
    assert.match(lr, /LR reduced after epoch 4/);
    assert.match(chart(page, 'auc'), /Best epoch 5/);
    assert.equal(count(chart(page, 'epoch-time'), '<path class="series'), 1);
    assert.equal(count(chart(page, 'throughput'), '<path class="series'), 1);
    assert.match(page, /best epoch <b>5<\/b> \(val AUC 0\.950/);
    // Without flags, the best epoch is the highest val_auc.
    const plain = renderReport({ history: [epoch(0), epoch(1, { val_auc: 0.99 }), epoch(2)] });
    assert.match(plain, /best epoch <b>2<\/b>/);
    assert.match(plain, /learning rate never reduced/);
    // NaN breaks the line but stays one path, and shows as a dash in the table.
    const gap = renderReport({ history: [epoch(0), epoch(1, { val_loss: NaN }), epoch(2)] });
    const d = chart(gap, 'loss').match(/data-series="val" d="([^"]*)"/)![1];
    assert.equal(count(d, 'M'), 2);
    assert.match(gap, /<td class="num" data-v="">—<\/td>/);
  });

  test('ROC and PR charts: one curve each, reference line, a marker per operating point', () => {
    const ev = evaluation();
    const page = renderReport({ evaluation: ev });
    const roc = chart(page, 'roc');
    const pr = chart(page, 'pr');
    assert.match(roc, /<figcaption>ROC curve — AUC 0\.912<\/figcaption>/);
    assert.match(pr, /<figcaption>Precision–recall curve — AP 0\.877<\/figcaption>/);
    for (const c of [roc, pr]) {
      assert.equal(count(c, '<path class="series'), 1);
      assert.equal(count(c, '<g class="op-marker"'), ev.operatingPoints.length);
      assert.equal(count(plot(c), '<line class="ref"'), 1);
      for (const o of ev.operatingPoints) assert.ok(c.includes(`data-op="${o.name}"`));
      assert.equal(count(c, '<li>'), 1 + 1 + ev.operatingPoints.length, 'legend: curve, reference, each point');
    }
    assert.match(roc, /chance/);
    assert.match(pr, /prevalence baseline \(0\.280\)/);
    // The diagonal runs corner to corner; the baseline is horizontal.
    const [x1, y1, x2, y2] = roc.match(/<line class="ref" x1="([\d.]+)" y1="([\d.]+)" x2="([\d.]+)" y2="([\d.]+)"/)!.slice(1).map(Number);
    assert.ok(x2 > x1 && y2 < y1);
    const base = pr.match(/<line class="ref" x1="[\d.]+" y1="([\d.]+)" x2="[\d.]+" y2="([\d.]+)"/)!;
    assert.equal(base[1], base[2]);
    assert.match(roc, /Youden&#39;s J \(t = 0\.6123\): FPR 0\.083, TPR 0\.821/);
  });

  test('threshold and patient tables', () => {
    const page = renderReport({ evaluation: evaluation() });
    const t = page.slice(page.indexOf('<table class="thresholds'), page.indexOf('</table>', page.indexOf('<table class="thresholds')));
    assert.equal(count(t, '<tr data-op='), 3);
    assert.match(t, /<tr data-op="default" class="working">/);
    for (const h of ['Threshold', 'TP', 'FP', 'TN', 'FN', 'Precision', 'Recall / sensitivity', 'Specificity', 'F1', 'Accuracy', 'Balanced accuracy']) assert.ok(t.includes(`>${h}</th>`), h);
    const def = t.slice(t.indexOf('data-op="default"'), t.indexOf('</tr>', t.indexOf('data-op="default"')));
    const cells = [...def.matchAll(/<td class="num"[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]);
    assert.deepEqual(cells, ['0.5000', '252', '144', '576', '28', '0.636', '0.900', '0.800', '0.746', '0.828', '0.850']);
    assert.match(t, /4\.20e-4/);

    const p = page.slice(page.indexOf('<table class="patients'));
    const rows = [...p.matchAll(/<tr data-patient="([^"]*)">/g)].map((m) => m[1]);
    assert.deepEqual(rows, ['10253', '12345'], 'worst first, as given');
    assert.match(p, /data-v="0.8642">0\.864</);
    assert.match(p, /data-patient="12345">.*?<td class="num" data-v="">—<\/td><td class="num" data-v="">—<\/td>/);
    assert.match(p, /40\.0%/);
  });

  test('intervals by patient, thresholds chosen on validation patients, and calibration before and after temperature scaling', () => {
    const rng = new Rng(4);
    const make = (patients: number, prefix: string, shift: number): Prediction[] => Array.from({ length: patients }, (_, p) => {
      const off = rng.normal(0, 0.8);
      return Array.from({ length: 80 }, (_, i): Prediction => {
        const label = rng.next() < 0.3 ? 1 : 0;
        return { id: `${prefix}${p}_${i}`, patient: `${prefix}${p}`, x: i, y: 0, label, score: Math.fround(1 / (1 + Math.exp(-2.5 * (off + shift + (label ? 1.3 : -1.1) + rng.normal(0, 1))))) };
      });
    }).flat();
    const rows = make(9, 't', 0), val = make(6, 'v', 0.4);
    const ev = buildEvalReport(rows.map((r) => r.label!), rows.map((r) => r.score), rows,
      { threshold: 0.5, recallTarget: 0.9, pinnedThresholds: [], bootstrap: { resamples: 300, seed: 1, confidence: 0.9 }, calibration: 'temperature' },
      { model: 'r1', runId: 'r1', split: 'test', seconds: 1, backend: 'cpu', validation: { labels: val.map((r) => r.label!), scores: val.map((r) => r.score), patients: val.map((r) => r.patient) } });
    const page = renderReport({ evaluation: ev });
    const iv = ev.intervals!;
    const range = (r: [number, number] | null) => `${fixed(r![0])}–${fixed(r![1])}`;
    assert.match(page, new RegExp(`data-kpi="auc">.*?<div class="s">90% CI ${range(iv.auc)} by patient, 9 patients</div>`));
    assert.match(page, new RegExp(`data-kpi="recall">.*?<div class="s">90% CI ${range(iv.operatingPoints[0].recall)} by patient</div>`));
    // A shaded band under each curve, as one closed path.
    for (const id of ['roc', 'pr']) {
      const c = chart(page, id);
      assert.equal(count(c, '<path class="band f1"'), 1, id);
      assert.match(c, /data-band="[a-z]+-band" d="M[\d. L]+Z"/);
      assert.match(c, /90% band by patient \(pointwise\)/);
    }
    // Threshold table: who chose each threshold, and an interval column beside each metric.
    const t = page.slice(page.indexOf('<table class="thresholds'), page.indexOf('</table>', page.indexOf('<table class="thresholds')));
    for (const h of ['Chosen on', 'Precision 90% CI', 'Recall 90% CI', 'Specificity 90% CI', 'F1 90% CI']) assert.ok(t.includes(`>${h}</th>`), h);
    const row = (name: string) => t.slice(t.indexOf(`data-op="${name}"`), t.indexOf('</tr>', t.indexOf(`data-op="${name}"`)));
    assert.match(row('youden'), /<td class="chosen">val<\/td>/);
    assert.match(row('youden-in-split'), /<td class="chosen">test<\/td>/);
    assert.match(row('youden-in-split'), /Youden&#39;s J on test \(optimistic\)/);
    assert.match(row('default'), /<td class="chosen">config<\/td>/);
    const k = ev.operatingPoints.findIndex((o) => o.name === 'youden');
    const cis = [...row('youden').matchAll(/<td class="num ci"[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]);
    const p = iv.operatingPoints[k];
    assert.deepEqual(cis, [range(p.precision), range(p.recall), range(p.specificity), range(p.f1)]);
    assert.match(page, /data-note="validation">Youden's J, F1-optimal and the recall target were chosen on the 6 validation patients \(480 patches\)/);
    assert.match(page, /data-note="intervals">.*patches of one slide are correlated/);
    // Calibration: reliability diagram before and after, the bins, ECE, Brier and T.
    assert.ok(page.includes(heading('calibration')));
    const rel = chart(page, 'reliability');
    assert.equal(count(rel, '<path class="series'), 2);
    assert.match(rel, /perfect calibration/);
    const c = ev.calibration!;
    assert.ok(page.includes(`Expected calibration error <b>${fixed(c.before.ece)}</b>`));
    assert.ok(page.includes(`T = <b>${c.temperature!.value.toPrecision(3)}</b> fitted on the val split`));
    assert.equal(count(page.slice(page.indexOf('<table class="calibration')), '<tr><td>'), 10, 'ten bins');
    // Without temperature scaling: one series, no "after" columns.
    const plain = renderReport({ evaluation: { ...ev, calibration: { method: 'none', before: c.before } } });
    assert.equal(count(chart(plain, 'reliability'), '<path class="series'), 1);
    assert.ok(!plain.includes('Patches (scaled)'));
  });

  test('cross-validation: fold table, mean ± sd over the folds with both classes, pooled figures with their intervals, per-fold curves', () => {
    const page = renderReport(full());
    const sec = page.slice(page.indexOf('<section id="cv"'), page.indexOf('</section>', page.indexOf('<section id="cv"')));
    assert.ok(sec, 'a cross-validation section');
    assert.ok(page.indexOf('<section id="cv"') < page.indexOf('<section id="curves"'), 'before the pooled curves');
    assert.match(sec, /3-fold cross-validation by patient \(fold seed 42\)/);
    const row = (fold: number) => sec.slice(sec.indexOf(`<tr data-fold="${fold}">`), sec.indexOf('</tr>', sec.indexOf(`<tr data-fold="${fold}">`)));
    assert.match(row(1), /<code>cv-3fold-seed42-fold1<\/code>.*2 \/ 1 \/ 2.*>400<.*>120<.*>0\.900<.*>0\.800<.*>2<\/td>/);
    assert.match(row(3), />250<.*>0<.*>—<.*>—</, 'a one-class fold has no AUC');
    assert.match(sec, /data-row="mean"><th colspan="5">Mean ± sd over the 2 folds with both classes<\/th><td class="num">0\.850 ± 0\.071<\/td><td class="num">0\.750 ± 0\.071<\/td>/);
    assert.match(sec, /data-row="pooled">.*>1,000<.*><b>0\.912<\/b>.*><b>0\.877<\/b>/);
    assert.ok(!sec.includes('CI '), 'no intervals in this metrics.json');
    // Per fold: one validation curve each.
    const c = chart(page, 'cv-val-auc');
    for (const f of [1, 2, 3]) assert.ok(c.includes(`data-series="fold${f}"`), `fold ${f} curve`);
    assert.ok(page.includes('data-chart="cv-val-loss"'));
    // With intervals by patient, the pooled figures carry them.
    const iv = { auc: [0.88, 0.94], averagePrecision: [0.83, 0.91], confidence: 0.95, resamples: 1000, patients: 6 } as unknown as NonNullable<EvalReport['intervals']>;
    const withCi = renderReport({ evaluation: { ...evaluation(), cv: cvSummary(), intervals: { ...iv, operatingPoints: [], bands: { roc: null, pr: null }, warnings: [], undefinedResamples: { auc: 0, averagePrecision: 0 } } } });
    const pooled = withCi.slice(withCi.indexOf('data-row="pooled"'), withCi.indexOf('</tr>', withCi.indexOf('data-row="pooled"')));
    assert.match(pooled, /<b>0\.912<\/b><br><span class="muted">95% CI 0\.880–0\.940<\/span>/);
    assert.match(pooled, /<b>0\.877<\/b><br><span class="muted">95% CI 0\.830–0\.910<\/span>/);
    assert.match(withCi, /with 95% intervals from 1,000 resamples of the 6 patients/);
    // Without histories there are no per-fold curves, and an ordinary evaluation has no such section.
    assert.ok(!withCi.includes('data-chart="cv-val-auc"'));
    assert.ok(!renderReport({ evaluation: evaluation() }).includes('<section id="cv"'));
  });

  test('top errors: thumbnails, Grad-CAM and placeholders; ids escaped', () => {
    const page = renderReport(full());
    assert.ok(!page.includes('<script>alert'), 'no raw injected script');
    assert.ok(!page.includes(EVIL));
    assert.ok(page.includes(escapeHtml(EVIL)));
    assert.ok(page.includes('&lt;/pre&gt;&lt;script&gt;alert(\\&quot;cfg'), 'config escaped');
    const fn = page.slice(page.indexOf('id="errors-fn"'), page.indexOf('id="errors-fp"'));
    const fp = page.slice(page.indexOf('id="errors-fp"'));
    assert.equal(count(fn, '<figure class="err fn"'), 2);
    assert.equal(count(fp, '<figure class="err fp"'), 1);
    assert.match(fn, /2 of 28 at threshold 0\.5000, lowest score first/);
    const evilCard = fn.slice(fn.indexOf('<figure'), fn.indexOf('</figure>'));
    assert.equal(count(evilCard, '<img class="thumb"'), 1);
    assert.equal(count(evilCard, '<img class="cam"'), 1);
    assert.match(evilCard, /score 0\.031/);
    assert.match(evilCard, /patient 8863 · x 1,001, y 51/);
    const second = fn.slice(fn.indexOf('<figure', 10 + fn.indexOf('<figure')));
    assert.match(second, /<div class="ph"/, 'placeholder without a thumbnail');
    assert.ok(fn.indexOf('errors-fn') < page.length && page.indexOf('id="errors-fn"') < page.indexOf('id="errors-fp"'), 'FN before FP');
  });

  test('images are data: URIs that decode as PNG', async () => {
    const page = renderReport(full());
    const uris = [...page.matchAll(/<img [^>]*src="(data:[^"]*)"/g)].map((m) => m[1]);
    assert.equal(uris.length, 2 + 1 + 1, 'two thumbnails, one Grad-CAM, one slide map');
    for (const uri of uris) {
      const m = uri.match(/^data:image\/png;base64,([A-Za-z0-9+/=]+)$/);
      assert.ok(m, uri.slice(0, 40));
      const meta = await sharp(Buffer.from(m[1], 'base64')).metadata();
      assert.equal(meta.format, 'png');
    }
    assert.ok(page.includes('<figure data-patient="8863">'));
    // Bytes that are not an image never become a data: URI.
    assert.equal(imageDataUri(Buffer.from('<svg onload=alert(1)>')), undefined);
    const bad = renderReport({ slideMaps: [{ patient: 'x', png: Buffer.from('not a png at all') }] });
    assert.ok(!bad.includes('<img') && bad.includes('unreadable image'));
  });

  test('every chart is well-formed SVG', async () => {
    const page = renderReport(full());
    const svgs = [...page.matchAll(/<svg viewBox[^>]*>[\s\S]*?<\/svg>/g)].map((m) => m[0]);
    assert.ok(svgs.length >= 15);
    for (const s of svgs) {
      const xml = s.replace('<svg ', '<svg xmlns="http://www.w3.org/2000/svg" ');
      const meta = await sharp(Buffer.from(xml)).metadata();
      assert.equal(meta.format, 'svg');
    }
  });

  test('formatting', () => {
    assert.equal(fixed(0.9123), '0.912');
    assert.equal(fixed(NaN), '—');
    assert.equal(fixed(null), '—');
    assert.equal(fixed(Infinity), '—');
    assert.equal(fixed(-0.0001), '0.000');
    assert.equal(thresholdText(0.5), '0.5000');
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  test('writeReport writes the page atomically', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'idc-report-'));
    try {
      const file = join(dir, 'sub', 'report.html');
      const input = full();
      await writeReport(file, input);
      assert.equal(await readFile(file, 'utf8'), renderReport(input));
      assert.deepEqual(await readdir(join(dir, 'sub')), ['report.html']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
