/**
 * Training panel: one run's curves (train vs validation per metric, the learning rate on a log
 * axis, markers where ReduceLROnPlateau lowered it and at the best epoch), live while it trains;
 * another run's validation curves overlaid (dashed); the model summary and the run's config.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import { Chart, LineController, LineElement, PointElement, LinearScale, LogarithmicScale, Legend, Tooltip, type ChartDataset, type ChartType, type Plugin, type Scale } from 'chart.js';
import { PanelRpc, cssVar, esc, fmt, showError } from './lib/rpc';
import type { TrainingView, TrainingEpoch, RunSummary, TrainingEvents, CvListItem, CvTrainingView } from '../src/protocol/webview';
import type { ModelSummary } from '../src/core/views/types';

// ------------------------------------------------------------------------------------- chart.js setup

interface Marker { x: number; color: string; dash: number[]; label: string; row: number }
declare module 'chart.js' {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface PluginOptionsByType<TType extends ChartType> { markers?: { lines: Marker[] } }
}

/** Vertical lines with a short label at the top: LR reductions and the best epoch. */
const markerPlugin: Plugin<'line'> = {
  id: 'markers',
  afterDatasetsDraw(chart, _args, opts: { lines?: Marker[] }) {
    const { ctx, chartArea, scales } = chart;
    const x = scales['x'];
    if (!x) return;
    for (const m of opts.lines ?? []) {
      const px = x.getPixelForValue(m.x);
      if (px < chartArea.left - 1 || px > chartArea.right + 1) continue;
      ctx.save();
      ctx.strokeStyle = m.color;
      ctx.fillStyle = m.color;
      ctx.lineWidth = 1.5;
      ctx.setLineDash(m.dash);
      ctx.beginPath();
      ctx.moveTo(px, chartArea.top);
      ctx.lineTo(px, chartArea.bottom);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.font = `11px ${cssVar('--vscode-font-family', 'sans-serif')}`;
      ctx.textAlign = px > chartArea.right - 30 ? 'right' : 'left';
      ctx.fillText(m.label, px + (ctx.textAlign === 'right' ? -3 : 3), chartArea.top + 11 + 13 * m.row);
      ctx.restore();
    }
  },
};
Chart.register(LineController, LineElement, PointElement, LinearScale, LogarithmicScale, Legend, Tooltip, markerPlugin);

// ------------------------------------------------------------------------------------- state

type Batch = TrainingEvents['batch'];
const rpc = new PanelRpc('training');
const app = document.getElementById('app')!;

let view: TrainingView | null = null;
let runs: RunSummary[] = [];
/** Cross-validations: one selector entry each, over their fold runs. */
let cvs: CvListItem[] = [];
let compare: { run: RunSummary; history: TrainingEpoch[] } | null = null;
let live: Batch | null = null;
let busy: 'stopping' | 'resuming' | null = null;
/** A run other than the shown one is training: offer to switch. */
let otherRunning: string | null = null;
type XY = { x: number; y: number }[];
const charts = new Map<string, Chart<'line', XY>>();

const METRICS = [
  { key: 'loss', title: 'Loss', unit: 'binary focal / cross-entropy, lower is better', val: 'val_loss' },
  { key: 'auc', title: 'ROC AUC', unit: 'higher is better', val: 'val_auc' },
  { key: 'accuracy', title: 'Accuracy', unit: 'at threshold 0.5', val: 'val_accuracy' },
  { key: 'recall', title: 'Recall (sensitivity)', unit: 'IDC(+) patches found, at 0.5', val: 'val_recall' },
  { key: 'precision', title: 'Precision', unit: 'IDC(+) calls that are right, at 0.5', val: 'val_precision' },
] as const;
type MetricKey = (typeof METRICS)[number]['key'];

// ------------------------------------------------------------------------------------- formatting

const int = (n: number) => n.toLocaleString('en-US');
function duration(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return '–';
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
const lrText = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : x.toExponential(1).replace('e-', 'e−'));
const kb = (bytes: number) => (bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MB` : `${(bytes / 1024).toFixed(2)} KB`);

function statusOf(v: TrainingView): { key: 'running' | 'finished' | 'interrupted'; text: string; detail?: string } {
  if (v.running) return { key: 'running', text: 'Training' };
  if (v.run.status === 'finished') return { key: 'finished', text: v.run.stopReason === 'early-stopped' ? 'Finished (stopped early)' : 'Finished' };
  if (v.run.status === 'stopped') return { key: 'interrupted', text: 'Stopped — resumable' };
  if (v.run.status === 'failed') return { key: 'interrupted', text: 'Failed — resumable', detail: v.run.error };
  return { key: 'interrupted', text: 'Interrupted — resumable' };
}

/** The same pace and ETA the host computes, after live epochs arrive. */
function recompute(v: TrainingView): void {
  const secs = v.history.map((h) => h.seconds).filter((s) => Number.isFinite(s));
  const pace = secs.length > 2 ? secs.slice(1) : secs;
  v.epochSeconds = pace.length ? pace.reduce((a, b) => a + b, 0) / pace.length : null;
  v.etaSeconds = v.run.status !== 'finished' && v.epochSeconds !== null ? Math.max(0, v.epochs - v.history.length) * v.epochSeconds : null;
  v.lrReducedAt = v.history.filter((h) => h.lrReduced).map((h) => h.epoch);
  v.run.epochsDone = v.history.length;
}

// ------------------------------------------------------------------------------------- loading

let loading = false;
async function load(runId?: string, cv?: string): Promise<void> {
  loading = true;
  try {
    const [v, list, cvList] = await Promise.all([rpc.request('load', cv ? { cv } : { runId }), rpc.request('runs', {}), rpc.request('cvs', {})]);
    view = v;
    runs = list;
    cvs = cvList;
    live = null;
    busy = null;
    if (v) {
      if (rpc.state && rpc.state.runId !== v.run.id) {
        rpc.state = { ...rpc.state, runId: v.run.id };
        rpc.saveUi({});
      }
      if (otherRunning === v.run.id) otherRunning = null;
      const want = typeof rpc.ui['compare'] === 'string' ? (rpc.ui['compare'] as string) : '';
      compare = null;
      if (want && want !== v.run.id && runs.some((r) => r.id === want)) {
        try { compare = await rpc.request('compare', { runId: want }); } catch { compare = null; }
      }
    }
    render();
  } catch (e) {
    app.removeAttribute('aria-busy');
    showError(e);
  } finally {
    loading = false;
  }
}

// ------------------------------------------------------------------------------------- rendering

function render(): void {
  for (const c of charts.values()) c.destroy();
  charts.clear();
  app.removeAttribute('aria-busy');
  if (!view) {
    document.body.dataset.state = 'empty';
    app.innerHTML = `
      <h1>Training</h1>
      <div class="empty" data-testid="empty">
        <p>No training run yet in this workspace's output folder.</p>
        <p class="muted">Train a model to see its loss, accuracy, recall, precision and AUC per epoch here, live while it trains.</p>
        <vscode-button id="train" data-testid="train" icon="play">Train Model</vscode-button>
      </div>`;
    document.getElementById('train')!.addEventListener('click', () => void rpc.request('runCommand', { command: 'idc.train' }).catch(showError));
    document.body.dataset.ready = 'true';
    return;
  }
  const v = view;
  document.body.dataset.state = 'data';
  app.innerHTML = `
    <header class="head">
      <h1>Training <span class="run-id" data-testid="run-id">${esc(v.run.id)}</span>
        <span id="status" class="status" data-testid="run-status"></span></h1>
      <div class="toolbar">
        <label class="field">Run
          <vscode-single-select id="run-select" data-testid="run-select">${runOptions(v)}</vscode-single-select>
        </label>
        ${v.cv ? `<label class="field">Fold
          <vscode-single-select id="fold-select" data-testid="fold-select">${v.cv.rows.filter((r) => r.status !== 'pending').map((r) => `<vscode-option value="${esc(r.runId)}"${r.runId === v.run.id ? ' selected' : ''}>fold ${r.fold} of ${v.cv!.folds}</vscode-option>`).join('')}</vscode-single-select>
        </label>` : ''}
        <label class="field">Compare with
          <vscode-single-select id="compare-select" data-testid="compare-select">
            <vscode-option value=""${compare ? '' : ' selected'}>no other run</vscode-option>
            ${runs.filter((r) => r.id !== v.run.id && r.epochsDone > 0).reverse().map((r) => `<vscode-option value="${esc(r.id)}"${compare?.run.id === r.id ? ' selected' : ''}>${esc(runLabel(r))}</vscode-option>`).join('')}
          </vscode-single-select>
        </label>
        <span class="spacer"></span>
        <vscode-button id="stop" data-testid="stop" icon="debug-stop" secondary>Stop</vscode-button>
        <vscode-button id="resume" data-testid="resume" icon="debug-continue">Resume</vscode-button>
        <vscode-button id="evaluate" data-testid="evaluate" icon="checklist" secondary>Evaluate</vscode-button>
      </div>
    </header>
    <div id="notices"></div>
    <section id="live" class="live" data-testid="live" aria-live="polite">
      <div id="live-text" class="live-text" data-testid="live-text"></div>
      <vscode-progress-bar id="live-bar" data-testid="batch-progress"></vscode-progress-bar>
    </section>
    <section id="cv" class="cv" data-testid="cv-section"${v.cv ? '' : ' hidden'}></section>
    <div class="cards" id="cards" data-testid="cards"></div>
    <p class="legend muted" id="legend"></p>
    <div class="charts" id="charts">
      ${METRICS.map((m) => `
        <figure class="chart-box${m.key === 'loss' ? ' wide' : ''}" data-metric="${m.key}">
          <figcaption><h2>${esc(m.title)}</h2><span class="muted">${esc(m.unit)}${m.key === 'loss' ? '; learning rate on the right (log scale)' : ''}</span></figcaption>
          <div class="chart"><canvas id="chart-${m.key}" data-testid="chart-${m.key}" role="img"></canvas></div>
        </figure>`).join('')}
    </div>
    <vscode-collapsible id="sec-epochs" heading="Epochs" description="every metric of every epoch" data-testid="epochs-section"${rpc.ui['openEpochs'] ? ' open' : ''}>
      <div class="scroll" id="epochs"></div>
    </vscode-collapsible>
    <vscode-collapsible id="sec-model" heading="Model summary" data-testid="model-section"${rpc.ui['openModel'] === false ? '' : ' open'}>
      <div id="model"></div>
    </vscode-collapsible>
    <vscode-collapsible id="sec-config" heading="Configuration" description="config.json saved in the run folder when it started" data-testid="config-section"${rpc.ui['openConfig'] ? ' open' : ''}>
      <pre id="config" class="json" data-testid="config-json"></pre>
    </vscode-collapsible>`;

  wire();
  renderStatus();
  renderNotices();
  renderLive();
  renderCv();
  renderCards();
  renderCharts();
  renderEpochs();
  renderModel(v.model, v.modelNote);
  document.getElementById('config')!.textContent = v.config === null ? 'No config.json in the run folder.' : JSON.stringify(v.config, null, 2);
  document.body.dataset.ready = 'true';
}

/** Plain runs, and one entry per cross-validation standing for its fold runs (newest first). */
function runOptions(v: TrainingView): string {
  const folds = new Set(cvs.flatMap((c) => c.runIds));
  const entries: { value: string; label: string; at: string }[] = runs.filter((r) => !folds.has(r.id)).map((r) => ({ value: r.id, label: runLabel(r), at: r.createdAt }));
  for (const c of cvs) {
    if (!c.runIds.length) continue;
    const first = runs.find((r) => c.runIds.includes(r.id));
    entries.push({ value: `cv:${c.id}`, label: `${c.id} (${c.folds} folds${c.finished ? '' : `, ${c.runIds.length} started`})`, at: first?.createdAt ?? '' });
  }
  entries.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  const selected = v.cv ? `cv:${v.cv.id}` : v.run.id;
  return entries.map((e) => `<vscode-option value="${esc(e.value)}"${e.value === selected ? ' selected' : ''}>${esc(e.label)}</vscode-option>`).join('');
}

/** The fold table: patients, test patches and the fold's own test figures; mean ± sd over folds; the pooled evaluation. */
function renderCv(): void {
  const box = document.getElementById('cv');
  const cv = view?.cv;
  if (!box || !cv || !view) return;
  const state: Record<string, string> = { pending: 'not started', running: 'training', interrupted: 'interrupted', finished: 'finished' };
  const rows = cv.rows.map((r) => `<tr data-fold="${r.fold}"${r.runId === view!.run.id ? ' class="shown-row"' : ''}>
      <td><a href="#" data-run="${esc(r.runId)}" title="Show ${esc(r.runId)}">${r.fold}</a></td><td class="left">${esc(state[r.status])}</td>
      <td>${r.patients.train}</td><td>${r.patients.val}</td><td>${r.patients.test}</td>
      <td>${r.testPatches === null ? '–' : int(r.testPatches)}</td><td>${fmt(r.auc)}</td><td>${fmt(r.averagePrecision)}</td>
      <td>${r.bestEpoch === null ? '–' : r.bestEpoch + 1}</td><td>${r.status === 'pending' ? '–' : `${r.epochsDone}/${r.epochs}`}</td></tr>`).join('');
  const pm = (m: number | null, sd: number | null) => (m === null ? '–' : `${fmt(m)} ± ${fmt(sd)}`);
  const p = cv.pooled;
  box.innerHTML = `
    <h2>Cross-validation <span class="run-id">${esc(cv.id)}</span> <span class="muted">${cv.folds} folds by patient, fold seed ${cv.seed}: each fold's model trains on ${cv.folds - 2} fold${cv.folds === 3 ? '' : 's'}, stops early on the next and is tested on its own</span></h2>
    ${cv.warnings.map((w) => `<div class="notice warn-notice" data-testid="cv-warning">${esc(w)}</div>`).join('')}
    <table class="data" data-testid="cv-table">
      <thead><tr><th>fold</th><th class="left">state</th><th title="Patients the fold's model trained on">train patients</th><th title="Patients of the next fold: early stopping and LR reduction watch them">val patients</th><th>test patients</th><th>test patches</th><th>test AUC</th><th>test AP</th><th>best epoch</th><th>epochs</th></tr></thead>
      <tbody>${rows}</tbody>
      <tfoot>
        <tr data-testid="cv-mean"><th colspan="6">mean ± sd over ${cv.scored} scored fold${cv.scored === 1 ? '' : 's'} with both classes</th><td>${pm(cv.mean.auc, cv.sd.auc)}</td><td>${pm(cv.mean.averagePrecision, cv.sd.averagePrecision)}</td><td colspan="2"></td></tr>
        ${p ? `<tr data-testid="cv-pooled"><th colspan="5">pooled out of fold (every patient once)</th><td>${int(p.n)}</td><td><b>${fmt(p.auc)}</b>${p.aucInterval ? ` <span class="muted">(${fmt(p.aucInterval[0])}–${fmt(p.aucInterval[1])})</span>` : ''}</td><td><b>${fmt(p.averagePrecision)}</b></td><td colspan="2"><vscode-button id="cv-evaluation" data-testid="cv-evaluation" secondary icon="graph-line">Show Evaluation</vscode-button></td></tr>` : ''}
      </tfoot>
    </table>
    <p class="muted">${p ? 'The pooled figures are the ones to quote; the spread over folds shows how much one split by patient could move them.' : 'The pooled out-of-fold evaluation is written when every fold is scored; running the cross-validation again resumes it.'} Dashed lines in the charts: the other folds' validation curves.</p>`;
  box.querySelectorAll<HTMLAnchorElement>('a[data-run]').forEach((a) => a.addEventListener('click', (e) => {
    e.preventDefault();
    const id = a.dataset.run!;
    if (id !== view?.run.id && cv.rows.some((r) => r.runId === id && r.status !== 'pending')) void load(id);
  }));
  document.getElementById('cv-evaluation')?.addEventListener('click', () => {
    if (p) void rpc.request('runCommand', { command: 'idc.showEvaluation', args: [p.evaluation] }).catch(showError);
  });
}

function runLabel(r: RunSummary): string {
  const state = r.status === 'finished' ? `${r.epochsDone} epochs` : `${r.epochsDone}/${r.epochs} epochs, unfinished`;
  return `${r.id} — ${state}${r.bestValAuc !== undefined ? `, best val AUC ${r.bestValAuc.toFixed(3)}` : ''}`;
}

function wire(): void {
  const runSelect = document.getElementById('run-select') as HTMLElement & { value: string };
  runSelect.addEventListener('change', () => {
    const value = runSelect.value;
    if (!value) return;
    if (value.startsWith('cv:')) { if (value.slice(3) !== view?.cv?.id) void load(undefined, value.slice(3)); } else if (value !== view?.run.id) void load(value);
  });
  const foldSelect = document.getElementById('fold-select') as (HTMLElement & { value: string }) | null;
  foldSelect?.addEventListener('change', () => { if (foldSelect.value && foldSelect.value !== view?.run.id) void load(foldSelect.value); });
  const cmp = document.getElementById('compare-select') as HTMLElement & { value: string };
  cmp.addEventListener('change', () => void setCompare(cmp.value));
  document.getElementById('stop')!.addEventListener('click', () => void stop());
  document.getElementById('resume')!.addEventListener('click', () => void resume());
  document.getElementById('evaluate')!.addEventListener('click', () => {
    if (view) void rpc.request('runCommand', { command: 'idc.evaluate', args: [view.run.id] }).catch(showError);
  });
  for (const [id, key] of [['sec-epochs', 'openEpochs'], ['sec-model', 'openModel'], ['sec-config', 'openConfig']] as const) {
    document.getElementById(id)!.addEventListener('vsc-collapsible-toggle', (e) => rpc.saveUi({ [key]: (e as CustomEvent<{ open: boolean }>).detail.open }));
  }
}

async function setCompare(runId: string): Promise<void> {
  try {
    compare = runId ? await rpc.request('compare', { runId }) : null;
    rpc.saveUi({ compare: runId || null });
    renderCharts();
    renderLegend();
  } catch (e) {
    showError(e);
  }
}

async function stop(): Promise<void> {
  busy = 'stopping';
  renderStatus();
  try {
    await rpc.request('stop', {});
  } catch (e) {
    busy = null;
    renderStatus();
    showError(e);
  }
}

async function resume(): Promise<void> {
  if (!view) return;
  busy = 'resuming';
  renderStatus();
  try {
    await rpc.request('resume', { runId: view.run.id });
  } catch (e) {
    showError(e);
  }
  // The job may be queued behind another, or the user may have dismissed a prompt: the job event enables things again.
  setTimeout(() => { if (busy === 'resuming') { busy = null; renderStatus(); } }, 5000);
}

function renderStatus(): void {
  if (!view) return;
  const s = statusOf(view);
  const el = document.getElementById('status')!;
  el.className = `status ${s.key}`;
  el.dataset.status = s.key;
  el.textContent = busy === 'stopping' ? 'Stopping…' : busy === 'resuming' ? 'Resuming…' : s.text;
  el.title = s.detail ?? '';
  const stopBtn = document.getElementById('stop') as HTMLElement & { disabled: boolean };
  const resumeBtn = document.getElementById('resume') as HTMLElement & { disabled: boolean };
  const evalBtn = document.getElementById('evaluate') as HTMLElement & { disabled: boolean };
  stopBtn.disabled = !view.running || busy !== null;
  stopBtn.title = view.running ? 'Stop after the current batch; the run keeps its last finished epoch and can be resumed' : 'The run is not training';
  resumeBtn.disabled = view.running || view.run.status === 'finished' || busy !== null;
  resumeBtn.title = view.run.status === 'finished' ? 'The run has finished' : view.running ? 'The run is training' : `Continue at epoch ${view.history.length + 1}`;
  evalBtn.disabled = view.run.status !== 'finished';
  evalBtn.title = view.run.status === 'finished' ? 'Score the test split with this run\'s model' : 'Available when training finishes';
  // Hide what does not apply rather than show three disabled buttons.
  stopBtn.hidden = view.run.status === 'finished' && !view.running;
  resumeBtn.hidden = view.run.status === 'finished';
  evalBtn.hidden = view.run.status !== 'finished';
}

function renderNotices(): void {
  const box = document.getElementById('notices');
  if (!box || !view) return;
  const parts: string[] = [];
  if (otherRunning && otherRunning !== view.run.id) {
    parts.push(`<div class="notice" data-testid="other-run">Run <b>${esc(otherRunning)}</b> is training now. <vscode-button id="show-other" secondary>Show It</vscode-button></div>`);
  }
  for (const p of view.problems) parts.push(`<div class="notice warn-notice">${esc(p)}</div>`);
  for (const w of view.warnings ?? []) parts.push(`<div class="notice warn-notice" data-testid="run-warning">${esc(w)}</div>`);
  box.innerHTML = parts.join('');
  document.getElementById('show-other')?.addEventListener('click', () => { if (otherRunning) void load(otherRunning); });
}

function renderLive(): void {
  const section = document.getElementById('live');
  if (!section || !view) return;
  const show = view.running;
  section.hidden = !show;
  if (!show) return;
  const text = document.getElementById('live-text')!;
  const bar = document.getElementById('live-bar') as HTMLElement & { value?: number; max: number; indeterminate: boolean };
  if (!live) {
    text.textContent = `Epoch ${Math.min(view.history.length + 1, view.epochs)}/${view.epochs}: waiting for the first batch…`;
    bar.indeterminate = true;
    return;
  }
  const b = live;
  const parts = [b.phase === 'validate' ? `Epoch ${b.epoch}/${b.epochs} — validating ${int(b.step)}/${int(b.steps)} images` : `Epoch ${b.epoch}/${b.epochs} — step ${int(b.step)}/${int(b.steps)}`];
  if (b.phase !== 'validate' && b.loss !== undefined) parts.push(`loss ${b.loss.toFixed(4)}`);
  if (b.phase !== 'validate' && b.imagesPerSecond !== undefined) parts.push(`${int(Math.round(b.imagesPerSecond))} img/s`);
  if (b.etaSeconds !== undefined) parts.push(`ETA ${duration(b.etaSeconds)}`);
  text.textContent = parts.join(' · ');
  bar.indeterminate = !(b.steps > 0);
  bar.max = Math.max(1, b.steps);
  bar.value = Math.min(b.step, b.steps);
}

function card(label: string, value: string, sub: string, testid: string): string {
  return `<div class="card" data-testid="card-${testid}"><div class="label">${esc(label)}</div><div class="value">${esc(value)}</div><div class="sub muted">${esc(sub)}</div></div>`;
}

function renderCards(): void {
  const v = view;
  const box = document.getElementById('cards');
  if (!v || !box) return;
  const h = v.history;
  const last = h.at(-1);
  const best = v.bestEpoch === null ? undefined : h.find((e) => e.epoch === v.bestEpoch);
  const ips = h.map((e) => e.imagesPerSecond).filter(Number.isFinite);
  const cards = [
    card('Epochs', `${h.length} / ${v.epochs}`, v.run.status === 'finished' ? (v.run.stopReason === 'early-stopped' ? 'early stopping ended it' : 'all planned epochs ran') : 'early stopping may end it sooner', 'epochs'),
    card('Best epoch', best ? String(best.epoch + 1) : '–', best ? `val AUC ${fmt(best.val_auc)}, val loss ${fmt(best.val_loss, 4)}${v.monitor ? ` (watching ${v.monitor})` : ''}` : v.monitor ? `none yet (watching ${v.monitor})` : 'early stopping is off: the last epoch is kept', 'best'),
    card('Learning rate', lrText(last?.lr), v.lrReducedAt.length ? `lowered ${v.lrReducedAt.length}× (after epoch ${v.lrReducedAt.map((e) => e + 1).join(', ')})` : 'never lowered', 'lr'),
    card('Epoch time', duration(v.epochSeconds), last ? `last ${duration(last.seconds)}` : 'no epoch yet', 'epoch-time'),
    card('Images/s', last ? int(Math.round(last.imagesPerSecond)) : '–', ips.length ? `training, last epoch; mean ${int(Math.round(ips.reduce((a, b) => a + b, 0) / ips.length))}` : 'no epoch yet', 'ips'),
    card('ETA', v.run.status === 'finished' ? 'done' : duration(live?.etaSeconds ?? v.etaSeconds), v.run.status === 'finished' ? `finished ${v.run.finishedAt ? new Date(v.run.finishedAt).toLocaleString() : ''}` : v.running ? 'for the remaining epochs, at most' : 'to finish if resumed, at most', 'eta'),
    card('Backend', v.backend, `started ${new Date(v.run.createdAt).toLocaleString()}`, 'backend'),
  ];
  box.innerHTML = cards.join('');
}

function renderLegend(): void {
  const el = document.getElementById('legend');
  if (!el || !view) return;
  el.textContent = `Solid: this run (train and validation). ${compare ? `Dashed: validation of ${compare.run.id}. ` : ''}Vertical lines: ★ the best epoch (its weights are ${view.run.status === 'finished' ? 'the saved model' : 'restored at the end'}), LR↓ where ReduceLROnPlateau lowered the learning rate.`;
}

const FOLD_COLOURS: [string, string][] = [['--vscode-charts-purple', '#b180d7'], ['--vscode-charts-green', '#89d185'], ['--vscode-charts-red', '#f14c4c'], ['--vscode-charts-yellow', '#cca700'], ['--vscode-charts-blue', '#3794ff'], ['--vscode-charts-foreground', '#cccccc']];

interface Palette { train: string; val: string; compare: string; lr: string; best: string; reduced: string; fg: string; grid: string; font: string }
function palette(): Palette {
  return {
    train: cssVar('--vscode-charts-blue', '#3794ff'),
    val: cssVar('--vscode-charts-orange', '#d18616'),
    compare: cssVar('--vscode-charts-purple', '#b180d7'),
    lr: cssVar('--vscode-descriptionForeground', '#888'),
    best: cssVar('--vscode-charts-green', '#89d185'),
    reduced: cssVar('--vscode-charts-yellow', '#cca700'),
    fg: cssVar('--vscode-foreground', '#ccc'),
    grid: cssVar('--vscode-editorWidget-border', cssVar('--vscode-widget-border', 'rgba(128,128,128,0.35)')),
    font: cssVar('--vscode-font-family', 'sans-serif'),
  };
}

function renderCharts(): void {
  const v = view;
  if (!v) return;
  renderLegend();
  const p = palette();
  Chart.defaults.color = p.fg;
  Chart.defaults.borderColor = p.grid;
  Chart.defaults.font.family = p.font;
  const h = v.history;
  const xMax = Math.max(v.epochs, h.length, compare?.history.length ?? 0, ...(v.cv?.rows ?? []).map((r) => r.history.length), 1);
  const bestX = v.bestEpoch === null ? null : v.bestEpoch + 1;
  const markers: Marker[] = [
    ...v.lrReducedAt.map((e) => ({ x: e + 1.5, color: p.reduced, dash: [4, 3], label: 'LR↓', row: 1 })),
    ...(bestX !== null ? [{ x: bestX, color: p.best, dash: [], label: '★ best', row: 0 }] : []),
  ];
  for (const m of METRICS) {
    const key = m.key as MetricKey;
    const pt = (e: TrainingEpoch, k: string) => ({ x: e.epoch + 1, y: (e as unknown as Record<string, number>)[k] });
    const radius = h.map((e) => (e.epoch + 1 === bestX ? 6 : 2.5));
    const style = h.map((e) => (e.epoch + 1 === bestX ? 'star' : 'circle'));
    const datasets: ChartDataset<'line', XY>[] = [
      { label: 'train', data: h.map((e) => pt(e, key)), borderColor: p.train, backgroundColor: p.train, pointRadius: radius, pointStyle: style, borderWidth: 2, yAxisID: 'y' },
      { label: 'validation', data: h.map((e) => pt(e, m.val)), borderColor: p.val, backgroundColor: p.val, pointRadius: radius, pointStyle: style, borderWidth: 2, yAxisID: 'y' },
    ];
    // The other folds of a cross-validation, each in its own colour: how alike the folds train.
    for (const [i, r] of (v.cv?.rows ?? []).entries()) {
      if (r.runId === v.run.id || !r.history.length) continue;
      const c = FOLD_COLOURS[i % FOLD_COLOURS.length];
      const col = cssVar(c[0], c[1]);
      datasets.push({ label: `validation, fold ${r.fold}`, data: r.history.map((e) => pt(e, m.val)), borderColor: col, backgroundColor: col, borderDash: [4, 3], pointRadius: 1, borderWidth: 1.2, yAxisID: 'y' });
    }
    if (compare) {
      datasets.push({ label: `validation, ${compare.run.id}`, data: compare.history.map((e) => pt(e, m.val)), borderColor: p.compare, backgroundColor: p.compare, borderDash: [6, 4], pointRadius: 1.5, borderWidth: 1.5, yAxisID: 'y' });
    }
    const withLr = key === 'loss';
    if (withLr) {
      datasets.push({ label: 'learning rate', data: h.map((e) => pt(e, 'lr')), borderColor: p.lr, backgroundColor: p.lr, borderDash: [2, 3], pointRadius: 0, borderWidth: 1.5, stepped: 'middle', yAxisID: 'lr' });
    }
    const canvas = document.getElementById(`chart-${key}`) as HTMLCanvasElement | null;
    if (!canvas) continue;
    const lastVal = h.at(-1);
    canvas.setAttribute('aria-label', `${m.title} per epoch: ${lastVal ? `after epoch ${lastVal.epoch + 1}, train ${fmt((lastVal as unknown as Record<string, number>)[key], 4)}, validation ${fmt((lastVal as unknown as Record<string, number>)[m.val], 4)}` : 'no epoch yet'}`);
    const existing = charts.get(key);
    if (existing) {
      existing.data.datasets = datasets;
      existing.options.plugins!.markers = { lines: markers };
      (existing.options.scales!['x'] as { max: number }).max = xMax + 0.5;
      existing.update('none');
      continue;
    }
    charts.set(key, new Chart<'line', XY>(canvas, {
      type: 'line',
      data: { datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        normalized: true,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        scales: {
          x: { type: 'linear', min: 0.5, max: xMax + 0.5, title: { display: true, text: 'epoch' }, afterBuildTicks: epochTicks, ticks: { callback: (val) => String(val) }, grid: { color: p.grid } },
          y: { type: 'linear', title: { display: true, text: m.title }, grid: { color: p.grid }, ...(key === 'loss' ? {} : { suggestedMin: 0.5, suggestedMax: 1 }) },
          ...(withLr ? { lr: { type: 'logarithmic' as const, position: 'right' as const, title: { display: true, text: 'learning rate' }, grid: { drawOnChartArea: false }, afterBuildTicks: lrTicks, ticks: { callback: (val: number | string) => lrText(Number(val)) } } } : {}),
        },
        plugins: {
          legend: { position: 'bottom', labels: { usePointStyle: true, boxWidth: 8, boxHeight: 8 } },
          tooltip: {
            callbacks: {
              title: (items) => (items.length ? `Epoch ${items[0].parsed.x}` : ''),
              label: (item) => `${item.dataset.label}: ${item.dataset.yAxisID === 'lr' ? lrText(item.parsed.y ?? undefined) : fmt(item.parsed.y, 4)}`,
              afterBody: (items) => {
                const ep = items.length ? Number(items[0].parsed.x) - 1 : -1;
                const notes: string[] = [];
                if (ep === v.bestEpoch) notes.push('★ best epoch');
                if (v.lrReducedAt.includes(ep)) notes.push('LR↓ learning rate lowered after this epoch');
                return notes;
              },
            },
          },
          markers: { lines: markers },
        },
      },
    }));
  }
}

/** Whole epochs from 1, at most about a dozen labels. */
function epochTicks(axis: Scale): void {
  const max = Math.floor(axis.max);
  const step = Math.max(1, Math.ceil(max / 12));
  axis.ticks = [];
  for (let e = 1; e <= max; e += step) axis.ticks.push({ value: e });
}

/** 1, 2 and 5 times a power of ten, so the log axis does not crowd. */
function lrTicks(axis: Scale): void {
  const nice = axis.ticks.filter((t) => {
    const m = t.value / 10 ** Math.floor(Math.log10(t.value) + 1e-9);
    return [1, 2, 5].some((k) => Math.abs(m - k) < 1e-6);
  });
  if (nice.length >= 2) axis.ticks = nice;
}

function renderEpochs(): void {
  const v = view;
  const box = document.getElementById('epochs');
  if (!v || !box) return;
  if (!v.history.length) {
    box.innerHTML = '<p class="muted">No epoch has finished yet.</p>';
    return;
  }
  const cols: [string, (e: TrainingEpoch) => string][] = [
    ['loss', (e) => fmt(e.loss, 4)], ['val loss', (e) => fmt(e.val_loss, 4)],
    ['acc', (e) => fmt(e.accuracy)], ['val acc', (e) => fmt(e.val_accuracy)],
    ['recall', (e) => fmt(e.recall)], ['val recall', (e) => fmt(e.val_recall)],
    ['precision', (e) => fmt(e.precision)], ['val precision', (e) => fmt(e.val_precision)],
    ['AUC', (e) => fmt(e.auc)], ['val AUC', (e) => fmt(e.val_auc)],
    ['LR', (e) => lrText(e.lr)], ['time', (e) => duration(e.seconds)], ['img/s', (e) => int(Math.round(e.imagesPerSecond))],
  ];
  box.innerHTML = `<table class="data" data-testid="epochs-table">
    <thead><tr><th>epoch</th>${cols.map(([c]) => `<th>${esc(c)}</th>`).join('')}<th>notes</th></tr></thead>
    <tbody>${v.history.map((e) => `<tr data-epoch="${e.epoch}"${e.epoch === v.bestEpoch ? ' class="best-row"' : ''}><td>${e.epoch + 1}</td>${cols.map(([, f]) => `<td>${esc(f(e))}</td>`).join('')}<td class="notes">${[e.epoch === v.bestEpoch ? '★ best' : '', e.lrReduced ? 'LR↓ after' : ''].filter(Boolean).join(', ')}</td></tr>`).join('')}</tbody>
  </table>`;
}

function renderModel(m: ModelSummary | null, note?: string): void {
  const box = document.getElementById('model');
  if (!box) return;
  if (!m) {
    box.innerHTML = `<p class="muted" data-testid="model-empty">${esc(note ?? 'Available when training finishes.')}</p>`;
    return;
  }
  const rows = m.rows.map((r) => `<tr><td><span class="layer">${esc(r.name)}</span> <span class="muted">(${esc(r.type)})</span></td><td class="shape">${esc(r.outputShape)}</td><td>${int(r.params)}${r.nonTrainableParams ? `<span class="muted"> (${int(r.nonTrainableParams)} non-trainable)</span>` : ''}</td></tr>`).join('');
  const check = m.check
    ? m.check.ok
      ? `<p class="ok" data-testid="model-check">✓ The total matches the ${int(m.check.params)} weights stored in ${m.check.against === 'weightsManifest' ? 'model.json\'s weightsManifest' : 'the newest checkpoint'}.</p>`
      : `<p class="bad" data-testid="model-check">✗ The total differs from the ${int(m.check.params)} weights stored in ${m.check.against === 'weightsManifest' ? 'model.json\'s weightsManifest' : 'the newest checkpoint'}: some layer type is not understood here.</p>`
    : '';
  box.innerHTML = `
    <p>Model: <b>"${esc(m.name)}"</b> <span class="muted">— ${m.source === 'model.json' ? 'from model/model.json' : esc(m.note ?? 'from the run\'s config')}</span></p>
    <table class="data summary" data-testid="model-summary">
      <thead><tr><th>Layer (type)</th><th>Output Shape</th><th>Param #</th></tr></thead>
      <tbody>${rows}</tbody>
    </table>
    <dl class="totals" data-testid="model-totals">
      <dt>Total params:</dt><dd data-testid="total-params">${int(m.totalParams)} <span class="muted">(${kb(m.totalBytes)})</span></dd>
      <dt>Trainable params:</dt><dd>${int(m.trainableParams)} <span class="muted">(${kb(4 * m.trainableParams)})</span></dd>
      <dt>Non-trainable params:</dt><dd>${int(m.nonTrainableParams)} <span class="muted">(${kb(4 * m.nonTrainableParams)})</span></dd>
    </dl>
    ${check}`;
}

// ------------------------------------------------------------------------------------- live updates

rpc.on('epoch', (d) => {
  const v = view;
  if (!v) { if (!loading) void load(); return; }
  const row = v.cv?.rows.find((r) => r.runId === d.runId);
  if (row) {
    const k = row.history.findIndex((e) => e.epoch === d.epoch.epoch);
    if (k >= 0) row.history[k] = d.epoch; else row.history.push(d.epoch);
    row.history.sort((a, b) => a.epoch - b.epoch);
    row.epochsDone = row.history.length;
    row.epochs = Math.max(d.epochs, row.history.length);
    if (d.epoch.best) row.bestEpoch = d.epoch.epoch;
    row.status = 'running';
  }
  if (d.runId !== v.run.id) {
    if (otherRunning !== d.runId) { otherRunning = d.runId; renderNotices(); }
    if (row) { renderCv(); renderCharts(); }
    return;
  }
  const i = v.history.findIndex((e) => e.epoch === d.epoch.epoch);
  if (i >= 0) v.history[i] = d.epoch; else v.history.push(d.epoch);
  v.history.sort((a, b) => a.epoch - b.epoch);
  if (d.epoch.best) v.bestEpoch = d.epoch.epoch;
  v.epochs = Math.max(d.epochs, v.history.length);
  v.running = true;
  if (live && live.epoch <= d.epoch.epoch + 1) live = null;
  recompute(v);
  renderStatus();
  renderLive();
  renderCards();
  renderCharts();
  renderEpochs();
});

rpc.on('batch', (b) => {
  const v = view;
  if (!v) { if (!loading) void load(); return; }
  if (b.runId !== v.run.id) {
    if (otherRunning !== b.runId) { otherRunning = b.runId; renderNotices(); }
    return;
  }
  live = b;
  if (!v.running) { v.running = true; busy = null; renderStatus(); }
  renderLive();
  renderCards();
});

rpc.on('job', (j) => {
  const v = view;
  if (j.state === 'running') {
    if (!v) { if (!loading) void load(); return; }
    if (j.runId === v.run.id || (j.runId === undefined && busy === 'resuming')) {
      v.running = true;
      busy = null;
      renderStatus();
      renderLive();
    } else if (j.runId && otherRunning !== j.runId) {
      otherRunning = j.runId;
      renderNotices();
    }
    return;
  }
  if (j.runId && otherRunning === j.runId) { otherRunning = null; renderNotices(); }
  // A cross-validation's job ends on its last fold: the shown fold's table needs the fold figures too.
  if (v && (j.runId === v.run.id || (j.runId === undefined && v.running) || (j.runId !== undefined && v.cv?.rows.some((r) => r.runId === j.runId)))) {
    // The run's status, model and summary changed on disk: read it again.
    void load(v.run.id).then(() => { if (j.message && j.state !== 'finished') showNotice(j.message); });
  }
});

rpc.on('refresh', () => void load());
rpc.on('theme', () => { for (const c of charts.values()) c.destroy(); charts.clear(); renderCharts(); });

function showNotice(text: string): void {
  const box = document.getElementById('notices');
  if (!box) return;
  const div = document.createElement('div');
  div.className = 'notice';
  div.textContent = text;
  box.append(div);
}

// ------------------------------------------------------------------------------------- start

void (async () => {
  try {
    await rpc.ready();
    // The host holds the panel's run (restored after a reload, or named by the command that opened it).
    await load();
  } catch (e) {
    app.removeAttribute('aria-busy');
    showError(e);
  }
})();
