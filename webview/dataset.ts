/**
 * Dataset panel: what organize found and how the split shares it out. Class distribution per split
 * (one doughnut each, as the reference notebook drew them, and stacked bars with counts and the
 * positive rate), the patient-overlap (leakage) check, a sortable and searchable patient table, and
 * a random grid of patches with their labels.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import { Chart, DoughnutController, ArcElement, BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip } from 'chart.js';
import { PanelRpc, cssVar, esc, pct, showError } from './lib/rpc';
import type { DatasetPatient, DatasetView, PatientStain } from '../src/protocol/webview';

type PatchTile = DatasetView['sample'][number];

Chart.register(DoughnutController, ArcElement, BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

const rpc = new PanelRpc('dataset');
const app = document.getElementById('app')!;

type SortKey = 'patient' | 'patches' | 'positives' | 'positiveRate' | 'edgePatches' | 'split' | 'stain';
type SampleSplit = 'all' | 'train' | 'val' | 'test';
const SAMPLE_COUNT = 48;

let view: DatasetView | null = null;
let sample: PatchTile[] = [];
const charts: Chart[] = [];
let sortKey: SortKey = 'patient';
let sortDesc = false;
let filter = '';
let sampleSplit: SampleSplit = 'all';

const int = (n: number): string => n.toLocaleString('en-US');
const colours = () => ({
  pos: cssVar('--vscode-charts-red', '#d14'),
  neg: cssVar('--vscode-charts-blue', '#37c'),
  text: cssVar('--vscode-foreground', '#ccc'),
  muted: cssVar('--vscode-descriptionForeground', '#999'),
  grid: cssVar('--vscode-widget-border', cssVar('--vscode-panel-border', 'rgba(128,128,128,0.3)')),
  bg: cssVar('--vscode-editor-background', '#1e1e1e'),
});

// ------------------------------------------------------------------------------------- rendering

function empty(v: DatasetView): void {
  document.body.dataset.state = 'empty';
  app.setAttribute('aria-busy', 'false');
  app.innerHTML = `
    <h1>Dataset</h1>
    <div class="empty-state" data-testid="empty-state">
      <p>No manifest yet: the archive has not been organized.</p>
      <p class="muted">Organize scans <code>${esc(v.archive || 'paths.archive')}</code> read-only, checks every patch and writes
        <code>manifest.csv</code> to the output folder. Then split it by patient.</p>
      <div class="toolbar">
        <vscode-button id="run-organize" data-testid="run-organize">Organize Raw Archive</vscode-button>
        <vscode-button id="run-synth" secondary data-testid="run-synth">Generate Synthetic Dataset</vscode-button>
      </div>
      ${problemsHtml(v.problems.filter((p) => !/^No manifest yet/.test(p)))}
    </div>`;
  document.getElementById('run-organize')!.addEventListener('click', () => run('idc.organize'));
  document.getElementById('run-synth')!.addEventListener('click', () => run('idc.synth'));
  document.body.dataset.ready = 'true';
}

function run(command: string): void {
  rpc.request('runCommand', { command }).catch(showError);
}

function problemsHtml(problems: string[]): string {
  if (!problems.length) return '';
  return `<div class="problems" data-testid="problems" role="status">${problems.map((p) => `<div class="notice warn-notice">${esc(p)}</div>`).join('')}</div>`;
}

function render(v: DatasetView): void {
  if (!v.hasManifest) return empty(v);
  document.body.dataset.state = v.splits ? 'split' : 'organized';
  app.setAttribute('aria-busy', 'false');
  const t = v.totals;
  const splitLine = v.split
    ? `split seed ${esc(v.split.seed)}, ratios ${v.split.ratios.map((r) => esc(r)).join(' / ')}${v.split.stratify ? ', stratified by positive rate' : ''}${v.split.createdAt ? `, made ${esc(new Date(v.split.createdAt).toLocaleString())}` : ''}`
    : 'not split yet';
  app.innerHTML = `
    <header class="head">
      <h1>Dataset</h1>
      <div class="muted source" data-testid="source">
        <span title="${esc(v.manifest)}">manifest.csv</span> · archive <code title="${esc(v.archive)}">${esc(shortPath(v.archive))}</code>
        ${v.organize ? ` (${v.organize.kind === 'zip' ? '.zip' : 'folder'}, organized ${esc(new Date(v.organize.createdAt).toLocaleString())})` : ''} · ${splitLine}
      </div>
    </header>
    ${problemsHtml(v.problems)}
    ${unreadableHtml(v)}
    <section class="cards" data-testid="totals">
      ${card('Patients', int(t.patients), 'patients')}
      ${card('Patches', int(t.patches), 'patches', '50×50 px RGB')}
      ${card('IDC(+) patches', int(t.positives), 'positives', `${pct(t.patches ? t.positives / t.patches : NaN)} of patches`, 'pos')}
      ${card('IDC(−) patches', int(t.negatives), 'negatives', `${pct(t.patches ? t.negatives / t.patches : NaN)} of patches`, 'neg')}
      ${card('Edge patches', int(t.edgePatches), 'edge', 'smaller than 50×50 (slide border)')}
    </section>
    ${leakageHtml(v)}
    <section>
      <h2>Class distribution${v.splits ? ' per split' : ''}</h2>
      <div class="pies" id="pies" data-testid="pies"></div>
      ${v.splits ? `
        <div class="grid2">
          <figure class="chart-box">
            <figcaption class="muted">Patches per split, stacked by class; the label is the positive rate.</figcaption>
            <div class="chart"><canvas id="bars" data-testid="split-bars" role="img" aria-label="Patches per split by class"></canvas></div>
          </figure>
          <div>${splitTableHtml(v)}</div>
        </div>` : ''}
    </section>
    <section>
      <h2>Patients <span class="muted count" id="patient-count"></span></h2>
      ${hasStains(v) ? `<p class="muted note" data-testid="stain-note">Stain: each slide's Macenko estimate (data.stainNormalization) — haematoxylin and eosin in the colour they take at the slide's 99th-percentile amount, and those amounts. Normalization maps every slide onto H 1.97 · E 1.03; a slide far from the others is worth a look.</p>` : ''}
      <div class="toolbar">
        <vscode-textfield id="patient-filter" data-testid="patient-filter" placeholder="Filter: patient id or split" value="${esc(filter)}"></vscode-textfield>
      </div>
      <div class="scroll patients-scroll">
        <table class="data" id="patients" data-testid="patient-table">
          <thead><tr>
            ${th('patient', 'Patient')}${th('patches', 'Patches')}${th('positives', 'IDC(+)')}${th('positiveRate', 'Positive rate')}${th('edgePatches', 'Edge patches')}${th('split', 'Split')}${hasStains(v) ? th('stain', 'Stain (H · E)') : ''}
          </tr></thead>
          <tbody></tbody>
        </table>
      </div>
    </section>
    <section>
      <h2>Random patches</h2>
      <div class="toolbar">
        <label class="field" for="sample-split">From</label>
        <vscode-single-select id="sample-split" data-testid="sample-split">
          ${(['all', 'train', 'val', 'test'] as const).map((s) => `<vscode-option value="${s}" ${s === sampleSplit ? 'selected' : ''} ${s !== 'all' && !v.splits ? 'disabled' : ''}>${s === 'all' ? 'all patches' : `${s} split`}</vscode-option>`).join('')}
        </vscode-single-select>
        <vscode-button id="reshuffle" data-testid="reshuffle" icon="refresh">Reshuffle</vscode-button>
        <span class="muted legend-inline"><span class="swatch pos-swatch"></span> IDC(+) = 1 <span class="swatch neg-swatch"></span> IDC(−) = 0</span>
      </div>
      <div class="patch-grid" id="patch-grid" data-testid="patch-grid"></div>
    </section>
    ${organizeHtml(v)}`;

  const field = document.getElementById('patient-filter') as HTMLInputElement;
  field.addEventListener('input', () => {
    filter = field.value ?? '';
    renderPatients();
    rpc.saveUi({ filter });
  });
  for (const h of Array.from(document.querySelectorAll<HTMLElement>('#patients th[data-sort]'))) {
    const sortBy = () => {
      const k = h.dataset.sort as SortKey;
      if (k === sortKey) sortDesc = !sortDesc;
      else { sortKey = k; sortDesc = k !== 'patient' && k !== 'split'; }
      renderPatients();
      rpc.saveUi({ sortKey, sortDesc });
    };
    h.addEventListener('click', sortBy);
    h.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sortBy(); } });
  }
  const select = document.getElementById('sample-split') as HTMLSelectElement;
  select.addEventListener('change', () => {
    sampleSplit = (select.value || 'all') as SampleSplit;
    rpc.saveUi({ sampleSplit });
    void reshuffle();
  });
  document.getElementById('reshuffle')!.addEventListener('click', () => void reshuffle());
  document.getElementById('run-split')?.addEventListener('click', () => run('idc.split'));
  document.getElementById('run-resplit')?.addEventListener('click', () => run('idc.split'));

  renderPatients();
  renderCharts();
}

function card(label: string, value: string, testid: string, sub = '', cls = ''): string {
  return `<div class="card ${cls}" data-testid="total-${testid}"><div class="value">${value}</div><div class="label">${esc(label)}</div>${sub ? `<div class="sub muted">${esc(sub)}</div>` : ''}</div>`;
}

function hasStains(v: DatasetView): boolean {
  return v.patients.some((p) => p.stain);
}

function sortValue(p: DatasetPatient): number | string {
  if (sortKey !== 'stain') return p[sortKey];
  return p.stain && 'hAmount' in p.stain ? p.stain.hAmount : -1;
}

/** Beer–Lambert: the colour of a stain vector at an amount. */
function stainRgb(v: readonly number[], amount: number): string {
  return v.map((x) => Math.round(255 * Math.exp(-x * amount))).join(',');
}

function stainCell(s: PatientStain | undefined): string {
  if (!s) return '<td class="muted">—</td>';
  if ('skipped' in s) return `<td class="muted" title="${esc(s.skipped)}">none (as scanned)</td>`;
  const title = `H vector ${s.h.map((x) => x.toFixed(3)).join(', ')} · E vector ${s.e.map((x) => x.toFixed(3)).join(', ')}`;
  return `<td class="stain" title="${esc(title)}" data-testid="stain-cell"><span class="swatch stain-swatch" data-rgb="${stainRgb(s.h, s.hAmount)}"></span><span class="swatch stain-swatch" data-rgb="${stainRgb(s.e, s.eAmount)}"></span> ${s.hAmount.toFixed(2)} · ${s.eAmount.toFixed(2)}</td>`;
}

function th(key: SortKey, label: string): string {
  return `<th data-sort="${key}" tabindex="0" role="columnheader" data-testid="sort-${key}">${esc(label)}<span class="sort-mark" aria-hidden="true"></span></th>`;
}

function leakageHtml(v: DatasetView): string {
  if (!v.leakage) {
    return `
      <section class="leakage pending" id="leakage" data-testid="leakage" data-ok="pending">
        <div class="leak-title"><span class="codicon codicon-circle-large-outline" aria-hidden="true"></span> Leakage check: not split yet</div>
        <p>Patches of one patient come from one slide and look alike: training and evaluating on the same patient inflates
          every metric. <b>Split by Patient</b> assigns whole patients to train, validation and test, and this panel then checks
          that no patient is in two splits.</p>
        <vscode-button id="run-split" data-testid="run-split">Split by Patient</vscode-button>
      </section>`;
  }
  const l = v.leakage;
  return `
    <section class="leakage ${l.ok ? 'passed' : 'failed'}" id="leakage" data-testid="leakage" data-ok="${l.ok}" role="status">
      <div class="leak-title">
        <span class="codicon ${l.ok ? 'codicon-pass-filled' : 'codicon-error'}" aria-hidden="true"></span>
        Leakage check: ${l.ok ? 'passed — no patient overlaps between splits' : `FAILED — ${l.overlapping.length} patient${l.overlapping.length === 1 ? '' : 's'} in more than one split`}
      </div>
      <p data-testid="leakage-message">${esc(l.message)}</p>
      ${l.ok ? '' : `<p>Overlapping: <span data-testid="leakage-overlapping">${l.overlapping.map(esc).join(', ')}</span></p>
        <vscode-button id="run-resplit" data-testid="run-split">Split by Patient again</vscode-button>`}
    </section>`;
}

function splitTableHtml(v: DatasetView): string {
  const rows = v.splits!.map((s) => `<tr data-split="${s.split}">
      <td>${esc(s.split)}</td><td>${int(s.patients)}</td><td>${int(s.patches)}</td>
      <td class="pos">${int(s.positives)}</td><td class="neg">${int(s.negatives)}</td><td>${pct(s.patches ? s.positiveRate : NaN)}</td>
      <td>${pct(v.totals.patches ? s.patches / v.totals.patches : NaN)}</td></tr>`).join('');
  return `<table class="data" data-testid="split-table">
      <thead><tr><th>Split</th><th>Patients</th><th>Patches</th><th>IDC(+)</th><th>IDC(−)</th><th>Positive rate</th><th>Share of patches</th></tr></thead>
      <tbody>${rows}</tbody>
      <tfoot><tr><td>all</td><td>${int(v.totals.patients)}</td><td>${int(v.totals.patches)}</td><td class="pos">${int(v.totals.positives)}</td>
        <td class="neg">${int(v.totals.negatives)}</td><td>${pct(v.totals.patches ? v.totals.positives / v.totals.patches : NaN)}</td><td>100%</td></tr></tfoot>
    </table>`;
}

function organizeHtml(v: DatasetView): string {
  const o = v.organize;
  if (!o) return '';
  const issues = o.issues.length
    ? `<table class="data issues"><thead><tr><th>Reason</th><th>Files</th></tr></thead><tbody>${o.issues.map((i) => `<tr><td>${esc(i.reason)}</td><td>${int(i.count)}</td></tr>`).join('')}</tbody></table>`
    : '<p class="ok">Every file was a valid patch.</p>';
  return `<vscode-collapsible title="What organize found" data-testid="organize">
      <div class="collapsible-body">
        <p>${int(o.files)} files read; ${int(o.skipped)} skipped, ${int(o.suspicious)} kept but flagged, ${int(o.duplicates)} duplicate copies ignored.
          The full list is in <code>organize-report.json</code>.</p>
        ${issues}
      </div>
    </vscode-collapsible>`;
}

/** Patches the cache could not decode, each with its reason (the problem line above counts them). */
function unreadableHtml(v: DatasetView): string {
  const u = v.unreadable ?? [];
  if (!u.length) return '';
  const shown = u.slice(0, 200);
  return `<vscode-collapsible title="Unreadable patches (${int(u.length)})" data-testid="unreadable" open>
      <div class="collapsible-body">
        <table class="data issues"><thead><tr><th>File</th><th>Split</th><th>Reason</th></tr></thead><tbody>
          ${shown.map((f) => `<tr><td><code>${esc(f.source)}</code></td><td>${esc(f.split)}</td><td>${esc(f.reason)}</td></tr>`).join('')}
        </tbody></table>
        ${u.length > shown.length ? `<p class="muted">… and ${int(u.length - shown.length)} more, listed in the cache's <code>cache.json</code>.</p>` : ''}
      </div>
    </vscode-collapsible>`;
}

function shortPath(p: string): string {
  const parts = p.split(/[\\/]/).filter(Boolean);
  return parts.length > 3 ? `…/${parts.slice(-3).join('/')}` : p;
}

// ------------------------------------------------------------------------------------- patient table

function renderPatients(): void {
  if (!view) return;
  const body = document.querySelector('#patients tbody');
  if (!body) return;
  const stains = hasStains(view);
  const q = filter.trim().toLowerCase();
  const terms = q ? q.split(/[\s,]+/).filter(Boolean) : [];
  const rows = view.patients.filter((p) => !terms.length || terms.some((t) => p.patient.toLowerCase().includes(t) || p.split === t));
  const dir = sortDesc ? -1 : 1;
  rows.sort((a, b) => {
    const x = sortValue(a), y = sortValue(b);
    const c = typeof x === 'number' && typeof y === 'number' ? x - y
      : sortKey === 'patient' ? comparePatient(String(x), String(y)) : String(x).localeCompare(String(y));
    return c * dir || comparePatient(a.patient, b.patient);
  });
  body.innerHTML = rows.map((p) => `<tr data-patient="${esc(p.patient)}">
      <td>${esc(p.patient)}</td><td>${int(p.patches)}</td><td class="pos">${int(p.positives)}</td><td>${pct(p.positiveRate)}</td>
      <td>${p.edgePatches ? int(p.edgePatches) : '<span class="muted">0</span>'}</td>
      <td><span class="split-tag split-${esc(p.split)}">${esc(p.split)}</span></td>${stains ? stainCell(p.stain) : ''}</tr>`).join('')
    || `<tr><td colspan="${stains ? 7 : 6}" class="muted empty-row">No patient matches “${esc(filter)}”.</td></tr>`;
  // Colours through the CSSOM: the page's CSP allows no inline style attributes.
  for (const el of Array.from(body.querySelectorAll<HTMLElement>('.stain-swatch[data-rgb]'))) el.style.backgroundColor = `rgb(${el.dataset.rgb})`;
  document.getElementById('patient-count')!.textContent = rows.length === view.patients.length ? `(${int(rows.length)})` : `(${int(rows.length)} of ${int(view.patients.length)})`;
  for (const h of Array.from(document.querySelectorAll<HTMLElement>('#patients th[data-sort]'))) {
    const active = h.dataset.sort === sortKey;
    h.setAttribute('aria-sort', active ? (sortDesc ? 'descending' : 'ascending') : 'none');
    h.querySelector('.sort-mark')!.textContent = active ? (sortDesc ? ' ▼' : ' ▲') : '';
  }
}

function comparePatient(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return Number(a) - Number(b);
  return a.localeCompare(b);
}

// ------------------------------------------------------------------------------------- charts

function renderCharts(): void {
  for (const c of charts.splice(0)) c.destroy();
  if (!view) return;
  const c = colours();
  const pies = document.getElementById('pies');
  if (pies) {
    pies.innerHTML = '';
    const groups = view.splits
      ? view.splits.map((s) => ({ name: `${s.split}`, key: s.split, pos: s.positives, neg: s.negatives, patients: s.patients }))
      : [{ name: 'all patches', key: 'all', pos: view.totals.positives, neg: view.totals.negatives, patients: view.totals.patients }];
    for (const g of groups) {
      const fig = document.createElement('figure');
      fig.className = 'pie';
      fig.dataset.testid = `pie-${g.key}`;
      const total = g.pos + g.neg;
      fig.innerHTML = `<figcaption><b>${esc(g.name)}</b> <span class="muted">${int(total)} patches · ${int(g.patients)} patients</span></figcaption>
        <div class="pie-chart"><canvas role="img" aria-label="${esc(g.name)}: ${int(g.neg)} IDC(−), ${int(g.pos)} IDC(+)"></canvas></div>`;
      pies.append(fig);
      charts.push(new Chart(fig.querySelector('canvas')!, {
        type: 'doughnut',
        data: { labels: ['IDC(−) 0', 'IDC(+) 1'], datasets: [{ data: [g.neg, g.pos], backgroundColor: [c.neg, c.pos], borderColor: c.bg, borderWidth: 2 }] },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false, cutout: '55%',
          plugins: {
            legend: { position: 'bottom', labels: { color: c.text, boxWidth: 12 } },
            tooltip: { callbacks: { label: (ctx) => ` ${ctx.label}: ${int(ctx.parsed)} (${pct(total ? ctx.parsed / total : NaN)})` } },
          },
        },
      }));
    }
  }
  const bars = document.getElementById('bars') as HTMLCanvasElement | null;
  if (bars && view.splits) {
    const s = view.splits;
    const rateLabels = {
      id: 'rateLabels',
      afterDatasetsDraw(chart: Chart) {
        const { ctx } = chart;
        const meta = chart.getDatasetMeta(1);
        ctx.save();
        ctx.fillStyle = c.text;
        ctx.textAlign = 'center';
        ctx.textBaseline = 'bottom';
        ctx.font = `600 12px ${cssVar('--vscode-font-family', 'sans-serif')}`;
        meta.data.forEach((el, i) => {
          if (!s[i].patches) return;
          ctx.fillText(`${pct(s[i].positiveRate)} IDC(+)`, el.x, el.y - 4);
        });
        ctx.restore();
      },
    };
    charts.push(new Chart(bars, {
      type: 'bar',
      data: {
        labels: s.map((x) => x.split),
        datasets: [
          { label: 'IDC(−) 0', data: s.map((x) => x.negatives), backgroundColor: c.neg, stack: 'p' },
          { label: 'IDC(+) 1', data: s.map((x) => x.positives), backgroundColor: c.pos, stack: 'p' },
        ],
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        layout: { padding: { top: 22 } },
        scales: {
          x: { stacked: true, ticks: { color: c.text }, grid: { display: false } },
          y: { stacked: true, ticks: { color: c.muted, callback: (v) => int(Number(v)) }, grid: { color: c.grid }, title: { display: true, text: 'patches', color: c.muted } },
        },
        plugins: {
          legend: { labels: { color: c.text, boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: (ctx) => ` ${ctx.dataset.label}: ${int(Number(ctx.parsed.y))}`,
              footer: (items) => {
                const x = s[items[0].dataIndex];
                return `${int(x.patches)} patches, ${int(x.patients)} patients, positive rate ${pct(x.positiveRate)}`;
              },
            },
          },
        },
      },
      plugins: [rateLabels],
    }));
  }
}

// ------------------------------------------------------------------------------------- patches

async function renderSample(): Promise<void> {
  const grid = document.getElementById('patch-grid');
  if (!grid) return;
  if (!sample.length) {
    grid.innerHTML = `<p class="muted" data-testid="sample-empty">${view?.problems.some((p) => /archive .* is not there/.test(p)) ? 'The archive is not there: no patch images to show.' : 'No patches to show.'}</p>`;
    return;
  }
  const uris = await rpc.images(sample.map((t) => t.image));
  grid.innerHTML = sample.map((t, i) => `
    <figure class="patch label-${t.label}" data-testid="patch" data-id="${esc(t.id)}" data-label="${t.label}" title="${esc(t.id)} · x ${t.x}, y ${t.y}">
      ${uris[i] ? `<img class="patch" alt="patch ${esc(t.id)}, label ${t.label}" src="${esc(uris[i])}">` : '<div class="patch missing">unavailable</div>'}
      <figcaption>
        <span class="badge label-badge-${t.label}">${t.label === 1 ? 'IDC(+) 1' : 'IDC(−) 0'}</span>
        <span class="meta">${esc(t.patient)}${t.split ? ` · ${esc(t.split)}` : ''}</span>
      </figcaption>
    </figure>`).join('');
}

async function reshuffle(): Promise<void> {
  const button = document.getElementById('reshuffle');
  button?.setAttribute('disabled', '');
  try {
    sample = await rpc.request('sample', { count: SAMPLE_COUNT, split: sampleSplit === 'all' ? undefined : sampleSplit });
    await renderSample();
  } catch (e) {
    showError(e);
  } finally {
    button?.removeAttribute('disabled');
  }
}

// ------------------------------------------------------------------------------------- start

async function load(): Promise<void> {
  try {
    view = await rpc.request('load', {});
    sample = view.sample;
    if (sampleSplit !== 'all' && !view.splits) sampleSplit = 'all';
    render(view);
    if (view.hasManifest) {
      // The host's sample is from all patches; a saved split filter asks for its own.
      if (sampleSplit !== 'all') await reshuffle();
      else await renderSample();
      document.body.dataset.ready = 'true';
    }
  } catch (e) {
    app.setAttribute('aria-busy', 'false');
    showError(e);
  }
}

rpc.on('refresh', () => void load());
rpc.on('theme', () => renderCharts());

void (async () => {
  try {
    await rpc.ready();
    const ui = rpc.ui;
    if (typeof ui.sortKey === 'string' && ['patient', 'patches', 'positives', 'positiveRate', 'edgePatches', 'split', 'stain'].includes(ui.sortKey)) sortKey = ui.sortKey as SortKey;
    if (typeof ui.sortDesc === 'boolean') sortDesc = ui.sortDesc;
    if (typeof ui.filter === 'string') filter = ui.filter.slice(0, 200);
    if (ui.sampleSplit === 'train' || ui.sampleSplit === 'val' || ui.sampleSplit === 'test') sampleSplit = ui.sampleSplit;
    await load();
  } catch (e) {
    app.setAttribute('aria-busy', 'false');
    showError(e);
  }
})();
