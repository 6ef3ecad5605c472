/**
 * Threshold explorer: ROC and PR curves with the operating points, one threshold moved by a
 * slider, the arrow buttons or by dragging along either curve, and the confusion matrix and
 * metrics at that threshold, all computed here from the count table (binary search in typed
 * arrays, one update per animation frame, charts redrawn without animation).
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import { Chart, ScatterController, LineElement, PointElement, LinearScale, Legend, Tooltip, Filler, type ChartDataset, type PointStyle } from 'chart.js';
import { PanelRpc, cssVar, esc, fmt, pct, showError } from './lib/rpc';
import * as M from './lib/threshold-math';
import type { ThresholdView, Cell, PatientIntervals, CalibrationReport, ReliabilityBin } from '../src/protocol/webview';

Chart.register(ScatterController, LineElement, PointElement, LinearScale, Legend, Tooltip, Filler);

const rpc = new PanelRpc('threshold');
const app = document.getElementById('app')!;

let view: ThresholdView | null = null;
let table: M.CountTable = M.typedTable({ thresholds: [], tp: [], fp: [], positives: 0, negatives: 0 });
let t = 0.5;
type ScatterChart = Chart<'scatter', Pt[]>;
let charts: { roc: ScatterChart; pr: ScatterChart; reliability?: ScatterChart } | null = null;

// ------------------------------------------------------------------------------------- markers

interface Marker { key: string; label: string; threshold: number; style: PointStyle; color: string; pinned?: boolean; hollow?: boolean; chosenOn?: string }

function markers(v: ThresholdView): Marker[] {
  const out: Marker[] = [{ key: 'working', label: `Working threshold (config)`, threshold: v.working, style: 'rectRot', color: cssVar('--vscode-charts-yellow', '#cca700') }];
  const split = v.evaluation.split;
  // Who chose it: validation patients, or these very patients (optimistic on test patients).
  const on = (c: string | undefined, inSplit: boolean) => (!c ? '' : c === split && split !== 'val' && !inSplit ? ` (${c}, optimistic)` : ` (${c})`);
  for (const o of v.operatingPoints) {
    const chosen = { chosenOn: o.chosenOn };
    if (o.name === 'youden') out.push({ key: 'youden', label: `Youden's J${on(o.chosenOn, false)}`, threshold: o.threshold, style: 'triangle', color: cssVar('--vscode-charts-green', '#388a34'), ...chosen });
    if (o.name === 'f1') out.push({ key: 'f1', label: `F1-optimal${on(o.chosenOn, false)}`, threshold: o.threshold, style: 'rect', color: cssVar('--vscode-charts-purple', '#652d90'), ...chosen });
    if (o.name === 'recall-target') out.push({ key: 'recall', label: `Recall ≥ ${o.label.replace(/^.*≥\s*/, '')}${on(o.chosenOn, false)}`, threshold: o.threshold, style: 'crossRot', color: cssVar('--vscode-charts-orange', '#d18616'), ...chosen });
    if (o.name === 'youden-in-split') out.push({ key: 'youden-in-split', label: `Youden's J on ${split} (optimistic)`, threshold: o.threshold, style: 'triangle', color: cssVar('--vscode-charts-green', '#388a34'), hollow: true, ...chosen });
    if (o.name === 'f1-in-split') out.push({ key: 'f1-in-split', label: `F1-optimal on ${split} (optimistic)`, threshold: o.threshold, style: 'rect', color: cssVar('--vscode-charts-purple', '#652d90'), hollow: true, ...chosen });
    if (o.name === 'recall-target-in-split') out.push({ key: 'recall-in-split', label: `Recall ≥ ${o.label.replace(/^.*≥\s*/, '').replace(/\s.*$/, '')} on ${split} (optimistic)`, threshold: o.threshold, style: 'crossRot', color: cssVar('--vscode-charts-orange', '#d18616'), hollow: true, ...chosen });
  }
  // The config's recall target now, when it differs from the one metrics.json was written with.
  const evaluated = v.operatingPoints.find((o) => o.name === 'recall-target');
  if (!evaluated || !evaluated.label.endsWith(String(v.recallTarget))) {
    const r = recallThreshold(v.recallTarget);
    if (r !== null) out.push({ key: 'recall-now', label: `Recall ≥ ${v.recallTarget} (config)`, threshold: r, style: 'crossRot', color: cssVar('--vscode-charts-orange', '#d18616') });
  }
  for (const p of v.pinned) out.push({ key: `pinned-${p}`, label: `Pinned ${p}`, threshold: p, style: 'circle', color: cssVar('--vscode-charts-blue', '#1a85ff'), pinned: true });
  return out;
}

/** The highest table threshold whose recall reaches the target (as metrics.json's recall-target point). */
function recallThreshold(target: number): number | null {
  const P = table.positives, n = table.thresholds.length;
  if (!P || !n) return null;
  let lo = 0, hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (table.tp[mid] / P >= target) hi = mid;
    else lo = mid + 1;
  }
  return lo < n ? table.thresholds[lo] : null;
}

// ------------------------------------------------------------------------------------- rendering

const exact = (x: number): number => M.compactThreshold(x);
const showT = (x: number): string => String(exact(x));

// ------------------------------------------------------------------------------------- intervals and calibration

const level = (iv: PatientIntervals): string => `${+(iv.confidence * 100).toFixed(1)}%`;

/** " (95% CI 0.912–0.971 by patient)" for a headline number; empty without intervals. */
function ciText(iv: PatientIntervals | undefined, r: [number, number] | null | undefined, patients = false): string {
  if (!iv) return '';
  const range = r ? `${fmt(r[0])}–${fmt(r[1])}` : 'undefined';
  return ` (${esc(level(iv))} CI ${range} by patient${patients ? `, ${iv.patients} patient${iv.patients === 1 ? '' : 's'}` : ''})`;
}

/** How the intervals were made and who chose the thresholds, with the intervals' own warnings. */
function trustNotes(v: ThresholdView): string {
  const notes: string[] = [];
  const iv = v.intervals;
  if (iv) {
    notes.push(`<div class="notice" data-testid="intervals-note">Intervals: ${esc(level(iv))} percentile intervals over ${iv.resamples.toLocaleString()} resamples of whole patients (${iv.patients} in this split, seed ${iv.seed}). Patches of one slide are correlated, so patients, not patches, are resampled; the shaded bands on the curves are pointwise.</div>`);
    for (const w of iv.warnings) notes.push(`<div class="notice warn-notice" data-testid="interval-warning">${esc(w)}</div>`);
  }
  if (v.validation) notes.push(`<div class="notice" data-testid="validation-note">Youden's J, F1-optimal and recall-target thresholds were chosen on the ${v.validation.patients} validation patients (${v.validation.n.toLocaleString()} patches) and are applied here unchanged; hollow markers are this split's own optima (optimistic).</div>`);
  return notes.join('');
}

function calibrationHtml(c: CalibrationReport | undefined): string {
  if (!c) return '';
  const t = c.temperature;
  const row = (name: string, s: CalibrationReport['before']) => `<tr><td>${esc(name)}</td><td>${fmt(s.ece)}</td><td>${fmt(s.brier, 4)}</td></tr>`;
  return `<section data-testid="calibration">
      <h2>Calibration</h2>
      <div class="grid2">
        <div class="chart chart-small"><canvas id="reliability-chart" data-testid="reliability-chart" role="img" aria-label="Reliability diagram: observed IDC rate against mean predicted score in 10 equal-width bins; the diagonal is perfect calibration."></canvas></div>
        <div>
          <table class="data" data-testid="calibration-table"><thead><tr><th>Scores</th><th title="Expected calibration error: count-weighted |observed rate − mean score| over 10 bins">ECE</th><th title="Mean squared error of the probability">Brier</th></tr></thead>
          <tbody>${row('as the model gives them', c.before)}${t && c.after ? row(`temperature-scaled (T = ${t.value.toPrecision(3)})`, c.after) : ''}</tbody></table>
          <p class="muted">${t ? `T fitted on the ${esc(t.fittedOn)} split (${t.n.toLocaleString()} patches; mean log-loss ${fmt(t.nllBefore, 4)} → ${fmt(t.nllAfter, 4)}); scores become sigmoid(logit(p) / T). Rankings and this panel's counts are unchanged: thresholds apply to the model's own scores.` : 'Set evaluate.calibration to "temperature" to fit a temperature on the validation patients.'}</p>
        </div>
      </div>
    </section>`;
}

function reliabilityPoints(bins: ReliabilityBin[]): Pt[] {
  return bins.filter((b) => b.count > 0).map((b) => ({ x: b.meanPredicted!, y: b.observedRate! }));
}

function empty(message: string): void {
  document.body.dataset.state = 'empty';
  app.setAttribute('aria-busy', 'false');
  app.innerHTML = `
    <h1>Threshold explorer</h1>
    <div class="empty-state" data-testid="empty-state">
      <p>${esc(message)}</p>
      <p class="muted">Evaluating scores the test patients and writes metrics.json and predictions.csv, which this panel reads.</p>
      <vscode-button id="run-evaluate" data-testid="run-evaluate">Evaluate Model</vscode-button>
    </div>`;
  document.getElementById('run-evaluate')!.addEventListener('click', () => {
    rpc.request('runCommand', { command: 'idc.evaluate' }).catch(showError);
  });
  document.body.dataset.ready = 'true';
}

/** A cross-validation's pooled evaluation says so, with the spread of the folds' own AUCs. */
function cvNote(v: ThresholdView): string {
  const cv = v.cv;
  if (!cv) return '';
  const folds = cv.aucs.map((a, i) => `fold ${i + 1}: ${fmt(a)}`).join(', ');
  return `<div class="notice" data-testid="cv-note">Cross-validation <b>${esc(cv.id)}</b>: ${cv.folds} folds by patient, pooled out of fold (every patient scored once by a model that never saw it). Per-fold ROC AUC ${fmt(cv.mean)} ± ${fmt(cv.sd)} (range ${fmt(cv.min)}–${fmt(cv.max)}; ${esc(folds)}).</div>`;
}

function render(v: ThresholdView): void {
  document.body.dataset.state = 'data';
  const e = v.evaluation;
  const when = e.createdAt ? new Date(e.createdAt).toLocaleString() : '';
  const options = v.evaluations.map((x) => `<vscode-option value="${esc(x.id)}"${x.id === e.id ? ' selected' : ''}>${esc(x.id)} — ${x.n.toLocaleString()} patches, AUC ${fmt(x.auc)}</vscode-option>`).join('');
  const ms = markers(v);
  app.setAttribute('aria-busy', 'false');
  app.innerHTML = `
    <header class="th-head">
      <h1>Threshold explorer</h1>
      <div class="toolbar">
        <label for="evaluation-select">Evaluation</label>
        <vscode-single-select id="evaluation-select" data-testid="evaluation-select">${options}</vscode-single-select>
        <span class="muted" data-testid="evaluation-summary">${e.n.toLocaleString()} patches of the ${esc(e.split)} split
          (${e.positives.toLocaleString()} IDC, ${e.negatives.toLocaleString()} non-IDC) · ROC AUC ${fmt(e.auc)}${ciText(v.intervals, v.intervals?.auc, true)} · average precision ${fmt(e.averagePrecision)}${ciText(v.intervals, v.intervals?.averagePrecision)}${when ? ` · ${esc(when)}` : ''}</span>
      </div>
    </header>
    ${cvNote(v)}
    ${v.warnings.map((w) => `<div class="notice warn-notice" data-testid="warning">${esc(w)}</div>`).join('')}
    ${trustNotes(v)}
    ${v.working !== v.evaluatedThreshold ? `<div class="notice" data-testid="working-note">This evaluation ran at threshold ${esc(v.evaluatedThreshold)}; the working threshold is now ${esc(v.working)}. Its patient table, error lists and slide maps follow the new one after the next evaluation.</div>` : ''}
    <section class="th-controls" aria-label="Threshold">
      <label for="threshold-slider" class="th-label">Threshold</label>
      <vscode-button id="step-higher" data-testid="step-higher" secondary icon="chevron-left" title="Raise the threshold past the next score (one fewer distinct score predicted IDC)" aria-label="Raise threshold by one score"></vscode-button>
      <input type="range" id="threshold-slider" data-testid="threshold-slider" min="0" max="1" step="0.001" aria-label="Threshold">
      <vscode-button id="step-lower" data-testid="step-lower" secondary icon="chevron-right" title="Lower the threshold to the next score (one more distinct score predicted IDC)" aria-label="Lower threshold by one score"></vscode-button>
      <input type="number" id="threshold-input" data-testid="threshold-input" min="0" max="1" step="0.001" aria-label="Threshold value">
      <span class="muted">IDC when score ≥ threshold</span>
    </section>
    <div class="toolbar jumps" role="group" aria-label="Jump to an operating point">
      ${ms.map((m) => `<button type="button" class="chip" data-jump="${m.threshold}" data-testid="jump-${esc(m.key)}" title="${esc(m.label)}: ${m.threshold}"><span class="swatch swatch-${esc(m.key.replace(/-.*$/, ''))}${m.hollow ? ' hollow' : ''}" aria-hidden="true"></span>${esc(m.label)} <span class="muted">${esc(showT(m.threshold))}</span></button>`).join('')}
    </div>
    <div class="toolbar actions">
      <vscode-button id="pin-button" data-testid="pin-button" icon="pin">Pin threshold</vscode-button>
      <vscode-button id="working-button" data-testid="working-button" secondary icon="check">Use as working threshold</vscode-button>
      <vscode-button id="gallery-button" data-testid="gallery-button" secondary icon="files">Open error gallery</vscode-button>
      <span id="action-status" data-testid="action-status" class="muted" role="status"></span>
    </div>
    <div class="grid2">
      <section>
        <h2>ROC curve <span class="muted">AUC ${fmt(e.auc)}${ciText(v.intervals, v.intervals?.auc)}</span></h2>
        <div class="chart"><canvas id="roc-chart" data-testid="roc-chart" role="img" aria-label="ROC curve: true positive rate against false positive rate. Click or drag along it to choose a threshold."></canvas></div>
      </section>
      <section>
        <h2>Precision–recall curve <span class="muted">AP ${fmt(e.averagePrecision)}${ciText(v.intervals, v.intervals?.averagePrecision)}</span></h2>
        <div class="chart"><canvas id="pr-chart" data-testid="pr-chart" role="img" aria-label="Precision-recall curve. Click or drag along it to choose a threshold."></canvas></div>
      </section>
    </div>
    <p class="muted hint">Click or drag along either curve: the nearest point's threshold is selected on both.</p>
    <div class="grid2">
      <section>
        <h2>Confusion matrix at <span id="cm-threshold" data-testid="cm-threshold"></span></h2>
        <table id="confusion-matrix" class="cm" data-testid="confusion-matrix">
          <thead><tr><th></th><th scope="col">Predicted IDC</th><th scope="col">Predicted non-IDC</th><th scope="col">Total</th></tr></thead>
          <tbody>
            <tr><th scope="row">Actual IDC</th>${cellHtml('tp', 'True positives')}${cellHtml('fn', 'False negatives')}<td class="total" id="total-pos"></td></tr>
            <tr><th scope="row">Actual non-IDC</th>${cellHtml('fp', 'False positives')}${cellHtml('tn', 'True negatives')}<td class="total" id="total-neg"></td></tr>
            <tr><th scope="row">Total</th><td class="total" id="total-pp"></td><td class="total" id="total-pn"></td><td class="total" id="total-n"></td></tr>
          </tbody>
        </table>
        <p class="muted">Percentages: of the row (actual class) · of the column (predicted class). Click a cell to see those patches in the gallery.</p>
      </section>
      <section>
        <h2>Metrics</h2>
        <table id="metrics-table" class="data" data-testid="metrics-table">
          <thead><tr><th>Metric</th><th>Value</th>${v.intervals ? `<th title="Percentile interval over ${v.intervals.resamples.toLocaleString()} resamples of whole patients; shown where the threshold selects the same patches as a marked operating point">${esc(level(v.intervals))} CI by patient</th>` : ''}<th>Formula</th></tr></thead>
          <tbody>${METRICS.map((m) => `<tr><td>${esc(m.name)}</td><td id="metric-${m.key}" data-testid="metric-${m.key}"></td>${v.intervals ? `<td class="ci" id="metric-ci-${m.key}" data-testid="metric-ci-${m.key}"></td>` : ''}<td class="muted formula">${esc(m.formula)}</td></tr>`).join('')}</tbody>
        </table>
        ${v.intervals ? '<p class="muted" id="ci-note" data-testid="ci-note"></p>' : ''}
      </section>
    </div>
    <section>
      <h2>Operating points</h2>
      <table id="operating-points" class="data" data-testid="operating-points">
        <thead><tr><th>Point</th><th title="Whose patients chose the threshold">Chosen on</th><th>Threshold</th><th>Precision</th><th>Recall</th><th>Specificity</th><th>F1</th><th>FN</th><th>FP</th><th></th></tr></thead>
        <tbody>${ms.map((m) => opRow(m)).join('')}</tbody>
      </table>
      <p class="muted">From the ${(table.positives + table.negatives).toLocaleString()} predictions (metrics.json's operating points give the same counts)${v.intervals ? `; under each value its ${esc(level(v.intervals))} interval by patient` : ''}. Pins and the working threshold are saved in idc.config.json.</p>
    </section>
    ${calibrationHtml(v.calibration)}`;
  wire(v);
  makeCharts(v, ms);
  apply(t, 'init');
  document.body.dataset.ready = 'true';
}

function cellHtml(cell: Cell, title: string): string {
  const wrong = cell === 'fn' || cell === 'fp';
  return `<td class="cm-td"><button type="button" class="cm-cell ${wrong ? 'cm-wrong' : 'cm-right'}" id="cm-${cell}" data-cell="${cell}" data-testid="cm-${cell}" title="${esc(title)}: open these patches in the gallery">
    <span class="cm-name">${esc(title)} (${cell.toUpperCase()})</span>
    <span class="cm-count" id="cm-${cell}-count"></span>
    <span class="cm-pct" id="cm-${cell}-pct"></span></button></td>`;
}

function opRow(m: Marker): string {
  const c = M.countsAt(table, m.threshold);
  const x = M.metricsOf(c);
  const iv = M.intervalsAt(table, view?.intervals, m.threshold);
  const ci = (r: [number, number] | null | undefined, asPct: boolean) => (iv ? `<br><span class="ci">${r ? (asPct ? `${pct(r[0])}–${pct(r[1])}` : `${fmt(r[0])}–${fmt(r[1])}`) : 'undefined'}</span>` : '');
  const chosen = m.chosenOn ?? (m.key === 'working' || m.pinned ? 'config' : m.key === 'recall-now' ? view?.evaluation.split ?? '' : '');
  return `<tr data-testid="op-${esc(m.key)}"><td><span class="swatch swatch-${esc(m.key.replace(/-.*$/, ''))}${m.hollow ? ' hollow' : ''}" aria-hidden="true"></span>${esc(m.label)}</td><td data-testid="op-chosen-${esc(m.key)}">${esc(chosen)}</td><td>${esc(showT(m.threshold))}</td>
    <td>${pct(x.precision)}${ci(iv?.precision, true)}</td><td>${pct(x.recall)}${ci(iv?.recall, true)}</td><td>${pct(x.specificity)}${ci(iv?.specificity, true)}</td><td>${fmt(x.f1)}${ci(iv?.f1, false)}</td><td>${c.fn.toLocaleString()}</td><td>${c.fp.toLocaleString()}</td>
    <td class="op-actions"><button type="button" class="link" data-jump="${m.threshold}">Show</button>${m.pinned ? ` <button type="button" class="link" data-unpin="${m.threshold}" data-testid="unpin-${m.threshold}">Unpin</button>` : ''}</td></tr>`;
}

interface MetricRow { key: keyof M.Metrics; name: string; formula: string; asPct: boolean }
const METRICS: MetricRow[] = [
  { key: 'accuracy', name: 'Accuracy', formula: '(TP + TN) / n', asPct: true },
  { key: 'balancedAccuracy', name: 'Balanced accuracy', formula: '(recall + specificity) / 2', asPct: true },
  { key: 'precision', name: 'Precision (PPV)', formula: 'TP / (TP + FP)', asPct: true },
  { key: 'recall', name: 'Recall / sensitivity (TPR)', formula: 'TP / (TP + FN)', asPct: true },
  { key: 'specificity', name: 'Specificity (TNR)', formula: 'TN / (TN + FP)', asPct: true },
  { key: 'f1', name: 'F1 score', formula: '2TP / (2TP + FP + FN)', asPct: false },
  { key: 'fpr', name: 'False positive rate', formula: 'FP / (FP + TN)', asPct: true },
  { key: 'fnr', name: 'False negative rate (miss rate)', formula: 'FN / (TP + FN)', asPct: true },
  { key: 'npv', name: 'Negative predictive value', formula: 'TN / (TN + FN)', asPct: true },
  { key: 'mcc', name: 'Matthews correlation', formula: '(TP·TN − FP·FN) / √(…)', asPct: false },
  { key: 'predictedPositiveRate', name: 'Predicted IDC', formula: '(TP + FP) / n', asPct: true },
];

// ------------------------------------------------------------------------------------- charts

function axisColors(): { fg: string; grid: string; muted: string } {
  return {
    fg: cssVar('--vscode-foreground', '#ccc'),
    grid: cssVar('--vscode-editorWidget-border', cssVar('--vscode-panel-border', 'rgba(128,128,128,0.35)')),
    muted: cssVar('--vscode-descriptionForeground', '#999'),
  };
}

type Pt = { x: number; y: number };

function makeCharts(v: ThresholdView, ms: Marker[]): void {
  charts?.roc.destroy();
  charts?.pr.destroy();
  charts?.reliability?.destroy();
  const c = axisColors();
  const curveColor = cssVar('--vscode-charts-blue', '#1a85ff');
  const current = cssVar('--vscode-charts-red', '#f14c4c');
  const rocPts: Pt[] = v.roc.fpr.map((x, i) => ({ x, y: v.roc.tpr[i] }));
  const prPts: Pt[] = v.pr.recall.map((x, i) => ({ x, y: v.pr.precision[i] }));
  const prevalence = table.positives / Math.max(1, table.positives + table.negatives);
  const markerSets = (kind: 'roc' | 'pr'): ChartDataset<'scatter', Pt[]>[] => ms.map((m) => {
    const i = M.indexAt(table, m.threshold);
    return {
      label: m.label, data: [kind === 'roc' ? M.rocPoint(table, i) : M.prPoint(table, i)], pointStyle: m.style, pointRadius: 6, pointHoverRadius: 8,
      borderColor: m.color, backgroundColor: m.pinned || m.hollow ? 'transparent' : m.color, borderWidth: 2, order: 2,
    };
  });
  // Pointwise bootstrap band: the region between low and high, drawn as one closed shape.
  const bandSet = (kind: 'roc' | 'pr'): ChartDataset<'scatter', Pt[]>[] => {
    const b = kind === 'roc' ? v.intervals?.bands.roc : v.intervals?.bands.pr;
    if (!b || !v.intervals) return [];
    const data: Pt[] = [...b.x.map((x, k) => ({ x, y: b.lo[k] })), ...b.x.map((x, k) => ({ x, y: b.hi[k] })).reverse()];
    return [{ label: `${level(v.intervals)} band by patient`, data, showLine: true, fill: 'shape', pointRadius: 0, pointHitRadius: 0, borderWidth: 0, borderColor: 'transparent', backgroundColor: M.translucent(curveColor, 0.18), order: 5 }];
  };
  const make = (canvas: HTMLCanvasElement, kind: 'roc' | 'pr'): ScatterChart => {
    const curve: ChartDataset<'scatter', Pt[]> = { label: kind === 'roc' ? 'ROC' : 'Precision–recall', data: kind === 'roc' ? rocPts : prPts, showLine: true, pointRadius: 0, pointHitRadius: 0, borderColor: curveColor, borderWidth: 2, order: 3, stepped: kind === 'pr' ? 'after' : false };
    const chance: ChartDataset<'scatter', Pt[]> = kind === 'roc'
      ? { label: 'Chance', data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true, pointRadius: 0, pointHitRadius: 0, borderColor: c.muted, borderDash: [4, 4], borderWidth: 1, order: 4 }
      : { label: `Prevalence ${pct(prevalence)}`, data: [{ x: 0, y: prevalence }, { x: 1, y: prevalence }], showLine: true, pointRadius: 0, pointHitRadius: 0, borderColor: c.muted, borderDash: [4, 4], borderWidth: 1, order: 4 };
    const cur: ChartDataset<'scatter', Pt[]> = { label: 'Selected threshold', data: [{ x: 0, y: 0 }], pointStyle: 'circle', pointRadius: 8, pointHoverRadius: 9, borderColor: current, backgroundColor: 'transparent', borderWidth: 3, order: 1 };
    return new Chart<'scatter', Pt[]>(canvas, {
      type: 'scatter',
      data: { datasets: [cur, ...markerSets(kind), curve, chance, ...bandSet(kind)] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: 'nearest', intersect: true },
        scales: {
          x: { type: 'linear', min: 0, max: 1, title: { display: true, text: kind === 'roc' ? 'False positive rate (1 − specificity)' : 'Recall (sensitivity)', color: c.fg }, ticks: { color: c.muted }, grid: { color: c.grid } },
          y: { type: 'linear', min: 0, max: 1.02, title: { display: true, text: kind === 'roc' ? 'True positive rate (recall)' : 'Precision', color: c.fg }, ticks: { color: c.muted, callback: (val) => (Number(val) > 1 ? '' : String(val)) }, grid: { color: c.grid } },
        },
        plugins: {
          legend: { position: 'bottom', labels: { color: c.fg, usePointStyle: true, boxWidth: 8, filter: (item) => item.text !== 'ROC' && item.text !== 'Precision–recall' } },
          tooltip: {
            filter: (item) => item.dataset.label !== 'Chance' && !String(item.dataset.label).startsWith('Prevalence') && (item.dataset as { showLine?: boolean }).showLine !== true,
            callbacks: {
              label: (item) => {
                const p = item.raw as Pt;
                const name = item.dataset.label ?? '';
                const m = ms.find((x) => x.label === name);
                const th = m ? m.threshold : t;
                return `${name}: threshold ${showT(th)} (${kind === 'roc' ? `FPR ${fmt(p.x)}, TPR ${fmt(p.y)}` : `recall ${fmt(p.x)}, precision ${fmt(p.y)}`})`;
              },
            },
          },
        },
      },
    });
  };
  const roc = make(document.getElementById('roc-chart') as HTMLCanvasElement, 'roc');
  const pr = make(document.getElementById('pr-chart') as HTMLCanvasElement, 'pr');
  charts = { roc, pr, reliability: reliabilityChart(v) };
  dragAlong(roc, 'roc');
  dragAlong(pr, 'pr');
}

/** Observed IDC rate against mean score per bin, before and (when fitted) after temperature scaling. */
function reliabilityChart(v: ThresholdView): ScatterChart | undefined {
  charts?.reliability?.destroy();
  const canvas = document.getElementById('reliability-chart') as HTMLCanvasElement | null;
  const cal = v.calibration;
  if (!canvas || !cal) return undefined;
  const c = axisColors();
  const before = cssVar('--vscode-charts-blue', '#1a85ff'), after = cssVar('--vscode-charts-green', '#388a34');
  const sets: ChartDataset<'scatter', Pt[]>[] = [
    { label: `Scores (ECE ${fmt(cal.before.ece)})`, data: reliabilityPoints(cal.before.bins), showLine: true, pointRadius: 3, borderColor: before, backgroundColor: before, borderWidth: 2 },
  ];
  if (cal.after && cal.temperature) sets.push({ label: `Temperature-scaled, T = ${cal.temperature.value.toPrecision(3)} (ECE ${fmt(cal.after.ece)})`, data: reliabilityPoints(cal.after.bins), showLine: true, pointRadius: 3, borderColor: after, backgroundColor: after, borderWidth: 2 });
  sets.push({ label: 'Perfect calibration', data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true, pointRadius: 0, pointHitRadius: 0, borderColor: c.muted, borderDash: [4, 4], borderWidth: 1 });
  return new Chart<'scatter', Pt[]>(canvas, {
    type: 'scatter',
    data: { datasets: sets },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      scales: {
        x: { type: 'linear', min: 0, max: 1, title: { display: true, text: 'Mean predicted score (bin)', color: c.fg }, ticks: { color: c.muted }, grid: { color: c.grid } },
        y: { type: 'linear', min: 0, max: 1, title: { display: true, text: 'Observed IDC rate', color: c.fg }, ticks: { color: c.muted }, grid: { color: c.grid } },
      },
      plugins: {
        legend: { position: 'bottom', labels: { color: c.fg, usePointStyle: true, boxWidth: 8 } },
        tooltip: { callbacks: { label: (item) => `${item.dataset.label}: mean score ${fmt((item.raw as Pt).x)}, observed ${fmt((item.raw as Pt).y)}` } },
      },
    },
  });
}

/** Click or drag on a chart: the nearest point of the full-resolution curve gives the threshold. */
function dragAlong(chart: ScatterChart, kind: 'roc' | 'pr'): void {
  const canvas = chart.canvas;
  canvas.classList.add('draggable');
  let dragging = false;
  const at = (e: PointerEvent) => {
    const rect = canvas.getBoundingClientRect();
    const px = e.clientX - rect.left, py = e.clientY - rect.top;
    const a = chart.chartArea;
    const x = chart.scales.x.getValueForPixel(px) ?? 0;
    const y = chart.scales.y.getValueForPixel(py) ?? 0;
    schedule({ kind, x, y, sx: a.right - a.left, sy: (a.bottom - a.top) / 1.02 });
  };
  canvas.addEventListener('pointerdown', (e) => {
    const a = chart.chartArea;
    const rect = canvas.getBoundingClientRect();
    const px = e.clientX - rect.left, py = e.clientY - rect.top;
    if (px < a.left - 8 || px > a.right + 8 || py < a.top - 8 || py > a.bottom + 8) return;
    dragging = true;
    canvas.setPointerCapture(e.pointerId);
    at(e);
  });
  canvas.addEventListener('pointermove', (e) => { if (dragging) at(e); });
  const end = (e: PointerEvent) => {
    if (!dragging) return;
    dragging = false;
    if (canvas.hasPointerCapture(e.pointerId)) canvas.releasePointerCapture(e.pointerId);
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
}

// ------------------------------------------------------------------------------------- live updates

type Pending = number | { kind: 'roc' | 'pr'; x: number; y: number; sx: number; sy: number };
let pending: Pending | null = null;
let frame = 0;
let saveTimer: ReturnType<typeof setTimeout> | undefined;

/** Coalesces slider and pointer moves to one update per animation frame. */
function schedule(p: Pending): void {
  pending = p;
  if (!frame) frame = requestAnimationFrame(() => {
    frame = 0;
    const p2 = pending;
    pending = null;
    if (p2 === null) return;
    if (typeof p2 === 'number') apply(p2, 'slider');
    else apply(table.thresholds[M.nearestIndex(table, p2.kind, p2.x, p2.y, p2.sx, p2.sy)], 'curve');
  });
}

function setText(id: string, text: string): void {
  const el = document.getElementById(id);
  if (el && el.textContent !== text) el.textContent = text;
}

function apply(next: number, from: 'init' | 'slider' | 'curve' | 'input' | 'jump'): void {
  if (!view || !Number.isFinite(next)) return;
  t = Math.min(1, Math.max(0, next));
  const i = M.indexAt(table, t);
  const c = M.countsAtIndex(table, i);
  const m = M.metricsOf(c);
  const slider = document.getElementById('threshold-slider') as HTMLInputElement | null;
  const input = document.getElementById('threshold-input') as HTMLInputElement | null;
  if (slider && from !== 'slider') slider.value = String(t);
  if (input && from !== 'input') input.value = showT(t);
  setText('cm-threshold', showT(t));
  const P = table.positives, N = table.negatives, PP = c.tp + c.fp, PN = c.fn + c.tn;
  const cell = (k: Cell, row: number, col: number) => {
    setText(`cm-${k}-count`, c[k].toLocaleString());
    setText(`cm-${k}-pct`, `${pct(row ? c[k] / row : NaN)} of row · ${pct(col ? c[k] / col : NaN)} of col.`);
  };
  cell('tp', P, PP);
  cell('fn', P, PN);
  cell('fp', N, PP);
  cell('tn', N, PN);
  setText('total-pos', P.toLocaleString());
  setText('total-neg', N.toLocaleString());
  setText('total-pp', PP.toLocaleString());
  setText('total-pn', PN.toLocaleString());
  setText('total-n', (P + N).toLocaleString());
  for (const r of METRICS) setText(`metric-${r.key}`, r.asPct ? pct(m[r.key], 2) : fmt(m[r.key]));
  if (view.intervals) {
    // Intervals exist for the marked operating points: where t selects the same patches as one of them.
    const iv = M.intervalsAt(table, view.intervals, t);
    for (const r of METRICS) {
      const range = iv && (r.key === 'recall' || r.key === 'specificity' || r.key === 'precision' || r.key === 'f1') ? iv[r.key] : undefined;
      setText(`metric-ci-${r.key}`, range === undefined ? '' : range === null ? 'undefined' : r.asPct ? `${pct(range[0], 1)}–${pct(range[1], 1)}` : `${fmt(range[0])}–${fmt(range[1])}`);
    }
    setText('ci-note', iv ? `Intervals of ${iv.label}${iv.threshold === t ? '' : ` (threshold ${showT(iv.threshold)}, which selects the same patches)`}.` : 'Intervals are computed at the marked operating points: jump to one to see them.');
  }
  if (charts) {
    (charts.roc.data.datasets[0].data as Pt[])[0] = M.rocPoint(table, i);
    (charts.pr.data.datasets[0].data as Pt[])[0] = M.prPoint(table, i);
    charts.roc.update('none');
    charts.pr.update('none');
  }
  if (from !== 'init') {
    clearTimeout(saveTimer);
    saveTimer = setTimeout(() => rpc.saveUi({ threshold: t }), 400);
  }
}

function status(text: string, bad = false): void {
  const el = document.getElementById('action-status');
  if (!el) return;
  el.textContent = text;
  el.classList.toggle('bad', bad);
}

function wire(v: ThresholdView): void {
  const slider = document.getElementById('threshold-slider') as HTMLInputElement;
  slider.addEventListener('input', () => schedule(Number(slider.value)));
  const input = document.getElementById('threshold-input') as HTMLInputElement;
  input.addEventListener('change', () => {
    const x = Number(input.value);
    if (input.value.trim() === '' || !Number.isFinite(x) || x < 0 || x > 1) {
      status('A threshold is a number from 0 to 1.', true);
      input.value = showT(t);
      return;
    }
    status('');
    apply(x, 'input');
  });
  document.getElementById('step-higher')!.addEventListener('click', () => apply(M.stepThreshold(table, t, -1), 'jump'));
  document.getElementById('step-lower')!.addEventListener('click', () => apply(M.stepThreshold(table, t, 1), 'jump'));
  const select = document.getElementById('evaluation-select') as HTMLElement & { value: string };
  select.addEventListener('change', () => {
    if (select.value && select.value !== v.evaluation.id) void load(select.value);
  });
  document.getElementById('pin-button')!.addEventListener('click', () => void pin(exact(t), false));
  document.getElementById('working-button')!.addEventListener('click', async () => {
    const x = exact(t);
    try {
      status('Saving…');
      await rpc.request('setWorking', { threshold: x });
      status(`evaluate.threshold = ${x} in idc.config.json.`);
      await load(undefined, true);
    } catch (e) { status(''); showError(e); }
  });
  document.getElementById('gallery-button')!.addEventListener('click', () => openGallery('fn'));
}

function onAppClick(e: Event): void {
  const target = e.target as HTMLElement;
  const jump = target.closest<HTMLElement>('[data-jump]');
  if (jump) return apply(Number(jump.dataset.jump), 'jump');
  const unpin = target.closest<HTMLElement>('[data-unpin]');
  if (unpin) return void pin(Number(unpin.dataset.unpin), true);
  const cell = target.closest<HTMLElement>('[data-cell]');
  if (cell) openGallery(cell.dataset.cell as Cell);
}

function openGallery(cell: Cell): void {
  if (!view) return;
  rpc.request('openPanel', { panel: 'gallery', evaluation: view.evaluation.id, ui: { cell, threshold: exact(t), patient: null, focus: null } }).catch(showError);
}

async function pin(x: number, unpin: boolean): Promise<void> {
  try {
    status(unpin ? 'Unpinning…' : 'Pinning…');
    const r = await rpc.request('pin', { threshold: x, unpin });
    status(unpin ? `Unpinned ${x}.` : `Pinned ${x}: evaluate.pinnedThresholds = [${r.pinned.join(', ')}] in idc.config.json.`);
    await load(undefined, true);
  } catch (e) {
    status('');
    showError(e);
  }
}

// ------------------------------------------------------------------------------------- loading

async function load(evaluation?: string, keepStatus = false): Promise<void> {
  const note = keepStatus ? document.getElementById('action-status')?.textContent ?? '' : '';
  app.setAttribute('aria-busy', 'true');
  const v = await rpc.request('load', evaluation ? { evaluation } : {});
  if (!v) {
    view = null;
    return empty('No evaluation yet: evaluate a trained model to explore its thresholds.');
  }
  view = v;
  table = M.typedTable(v.table);
  // The selected threshold stays where the user left it (another evaluation, a pin, a refresh).
  if (!Number.isFinite(t)) t = v.working;
  if (rpc.state && rpc.state.evaluation !== v.evaluation.id) {
    // Remember the evaluation across a window reload (the serializer restores this state).
    rpc.state = { ...rpc.state, evaluation: v.evaluation.id };
    rpc.saveUi({});
  }
  render(v);
  if (note) status(note);
}

async function start(): Promise<void> {
  try {
    const { state } = await rpc.ready();
    const saved = Number(state.ui?.threshold);
    t = state.ui?.threshold !== undefined && state.ui?.threshold !== null && Number.isFinite(saved) ? saved : NaN;
    await load();
  } catch (e) {
    app.setAttribute('aria-busy', 'false');
    showError(e);
  }
}

app.addEventListener('click', onAppClick);
rpc.on('refresh', () => {
  // Opened again (maybe on another evaluation or at a threshold another panel chose), or new artifacts.
  void (async () => {
    try {
      const r = await rpc.request('ready', {});
      if (rpc.state) rpc.state = { ...rpc.state, evaluation: r.state.evaluation, ui: { ...rpc.state.ui, ...r.state.ui } };
      const x = r.state.ui?.threshold;
      if (typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 1) t = x;
      await load();
    } catch (e) {
      showError(e);
    }
  })();
});
rpc.on('theme', () => {
  // VS Code swaps the theme's CSS variables around the event: read them a moment later.
  setTimeout(() => {
    if (view && charts) {
      makeCharts(view, markers(view));
      apply(t, 'init');
    }
  }, 100);
});

void start();
