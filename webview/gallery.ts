/**
 * Error gallery: the patches of one confusion-matrix cell at a threshold, most wrong first, in a
 * virtualized grid (only the visible rows exist in the DOM; pages are fetched from the host as
 * they scroll into view), with a patient filter, a Grad-CAM overlay toggle and a detail pane.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-tabs/index.js';
import '@vscode-elements/elements/dist/vscode-tab-header/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import { PanelRpc, esc, fmt, showError } from './lib/rpc';
import type { GalleryPage, Cell } from '../src/protocol/webview';
import type { GalleryItem, GalleryPatientCounts } from '../src/core/views/types';

const rpc = new PanelRpc('gallery');
const app = document.getElementById('app')!;

const CELL_ORDER: Cell[] = ['fn', 'fp', 'tp', 'tn'];
const CELL_NAMES: Record<Cell, string> = { fn: 'False negatives', fp: 'False positives', tp: 'True positives', tn: 'True negatives' };
const CELL_SORT: Record<Cell, string> = {
  fn: 'IDC patches scored below the threshold, lowest score (most confidently missed) first',
  fp: 'non-IDC patches scored at or above the threshold, highest score first',
  tp: 'IDC patches found, lowest score (least certain) first',
  tn: 'non-IDC patches passed, highest score (least certain) first',
};
const PAGE = 150;
const TILE_W = 124;
const TILE_H = 146;
const OVERSCAN_ROWS = 3;

interface Query { evaluation?: string; cell: Cell; threshold?: number; patient?: string }

let query: Query = { cell: 'fn' };
let generation = 0;
let total = 0;
let first: GalleryPage | null = null;
let patients: GalleryPatientCounts[] = [];
const pages = new Map<number, GalleryItem[]>();
const inflight = new Set<number>();
let showCam = false;
let selected: { index: number; item: GalleryItem } | null = null;
/** A patch to select once its page arrives (ui.focus). */
let pendingFocus: { id: string; index: number } | null = null;

// ------------------------------------------------------------------------------------- skeleton

function skeleton(): void {
  tiles.clear();
  spare.length = 0;
  app.setAttribute('aria-busy', 'false');
  app.innerHTML = `
    <header class="g-head">
      <div class="g-title">
        <h1>Error gallery</h1>
        <span class="muted" id="evaluation-name" data-testid="evaluation-name"></span>
      </div>
      <div class="toolbar">
        <label for="threshold-input">Threshold</label>
        <input type="number" id="threshold-input" data-testid="threshold-input" min="0" max="1" step="0.001" aria-label="Threshold (IDC when score ≥ threshold)">
        <vscode-button id="working-button" data-testid="working-button" secondary title="Back to evaluate.threshold">Working threshold</vscode-button>
        <label for="patient-select">Patient</label>
        <vscode-single-select id="patient-select" data-testid="patient-select" combobox></vscode-single-select>
        <vscode-checkbox id="gradcam-toggle" data-testid="gradcam-toggle">Grad-CAM overlay</vscode-checkbox>
        <vscode-button id="threshold-button" data-testid="open-threshold" secondary icon="graph-line">Threshold explorer</vscode-button>
      </div>
      <vscode-tabs id="cell-tabs" data-testid="cell-tabs">
        ${CELL_ORDER.map((c) => `<vscode-tab-header slot="header" id="tab-${c}" data-testid="tab-${c}">${CELL_NAMES[c]} <vscode-badge variant="counter" id="count-${c}" data-testid="count-${c}">…</vscode-badge></vscode-tab-header>`).join('')}
      </vscode-tabs>
      <p class="muted g-sort" id="sort-note" data-testid="sort-note"></p>
    </header>
    <div class="g-main">
      <div class="g-scroll" id="grid-scroll" data-testid="grid-scroll" tabindex="0" aria-label="Patches">
        <div class="g-sizer" id="grid-sizer"></div>
        <p class="g-empty muted" id="cell-empty" data-testid="cell-empty" hidden></p>
      </div>
      <aside class="g-detail" id="detail" data-testid="detail" hidden aria-label="Selected patch"></aside>
    </div>`;
  const input = document.getElementById('threshold-input') as HTMLInputElement;
  input.addEventListener('change', () => {
    const x = Number(input.value);
    if (input.value.trim() === '' || !Number.isFinite(x) || x < 0 || x > 1) {
      showError(new Error('A threshold is a number from 0 to 1.'));
      input.value = String(first?.threshold ?? '');
      return;
    }
    reset({ ...query, threshold: x });
  });
  document.getElementById('working-button')!.addEventListener('click', () => reset({ ...query, threshold: undefined }));
  const select = document.getElementById('patient-select') as HTMLElement & { value: string };
  select.addEventListener('change', () => {
    const p = select.value || undefined;
    if (p !== query.patient) reset({ ...query, patient: p });
  });
  const cam = document.getElementById('gradcam-toggle') as HTMLElement & { checked: boolean };
  cam.checked = showCam;
  cam.addEventListener('change', () => {
    showCam = cam.checked;
    rpc.saveUi({ gradcam: showCam });
    for (const el of tiles.values()) el.dataset.item = '';
    layout();
    if (selected) detail(selected.index, selected.item);
    // Overlays for what is on screen (at most a page); the rest as the user opens them.
    if (showCam) void computeGradCams(visibleItems().slice(0, 150)).then(() => { if (selected) detail(selected.index, selected.item); }).catch(showError);
  });
  const tabs = document.getElementById('cell-tabs')!;
  tabs.addEventListener('vsc-tabs-select', (e) => {
    const i = (e as CustomEvent<{ selectedIndex: number }>).detail.selectedIndex;
    const cell = CELL_ORDER[i];
    if (cell && cell !== query.cell) reset({ ...query, cell });
  });
  document.getElementById('threshold-button')!.addEventListener('click', () => {
    rpc.request('openPanel', { panel: 'threshold', evaluation: first?.evaluation, ui: first ? { threshold: first.threshold } : undefined }).catch(showError);
  });
  const scroll = document.getElementById('grid-scroll')!;
  scroll.addEventListener('scroll', () => requestLayout(), { passive: true });
  scroll.addEventListener('click', (e) => {
    const tile = (e.target as HTMLElement).closest<HTMLElement>('.tile');
    if (!tile) return;
    const index = Number(tile.dataset.index);
    const item = itemAt(index);
    if (item) select_(index, item);
  });
  new ResizeObserver(() => requestLayout()).observe(scroll);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && selected) closeDetail();
  });
}

// ------------------------------------------------------------------------------------- data

function itemAt(index: number): GalleryItem | undefined {
  return pages.get(Math.floor(index / PAGE))?.[index % PAGE];
}

/** Starts over for a new cell, threshold, patient or evaluation. */
function reset(q: Query, keepSelection = false): void {
  query = q;
  generation++;
  pages.clear();
  inflight.clear();
  total = 0;
  if (!keepSelection) closeDetail(false);
  const scroll = document.getElementById('grid-scroll');
  if (scroll) scroll.scrollTop = 0;
  for (const el of tiles.values()) { el.hidden = true; el.dataset.item = '-'; spare.push(el); }
  tiles.clear();
  rpc.saveUi({ cell: q.cell, threshold: q.threshold ?? null, patient: q.patient ?? null, focus: keepSelection ? rpc.ui.focus ?? null : null });
  void fetchPage(0).then(() => {
    if (pendingFocus) scrollToIndex(pendingFocus.index);
  });
}

async function fetchPage(p: number): Promise<void> {
  if (pages.has(p) || inflight.has(p)) return;
  const gen = generation;
  inflight.add(p);
  try {
    const page = await rpc.request('page', { evaluation: query.evaluation, cell: query.cell, threshold: query.threshold, patient: query.patient, offset: p * PAGE, limit: PAGE });
    if (gen !== generation) return;
    if (!page) return empty();
    pages.set(p, page.items);
    total = page.total;
    if (p === 0) onFirstPage(page);
    if (pendingFocus) {
      const k = page.items.findIndex((i) => i.id === pendingFocus!.id);
      if (k >= 0) {
        const index = p * PAGE + k;
        pendingFocus = null;
        select_(index, page.items[k]);
      }
    }
    layout();
  } catch (e) {
    if (gen === generation) showError(e);
  } finally {
    if (gen === generation) inflight.delete(p);
  }
}

function onFirstPage(page: GalleryPage): void {
  first = page;
  document.body.dataset.state = 'data';
  if (!query.evaluation || query.evaluation !== page.evaluation) {
    query = { ...query, evaluation: page.evaluation };
    if (rpc.state && rpc.state.evaluation !== page.evaluation) {
      rpc.state = { ...rpc.state, evaluation: page.evaluation };
      rpc.saveUi({});
    }
  }
  const name = document.getElementById('evaluation-name')!;
  name.textContent = `${page.evaluation} · ${page.threshold === page.working ? `working threshold ${page.working}` : `threshold ${page.threshold} (working ${page.working})`} · IDC when score ≥ threshold`;
  const input = document.getElementById('threshold-input') as HTMLInputElement;
  if (document.activeElement !== input) input.value = String(page.threshold);
  for (const c of CELL_ORDER) {
    const badge = document.getElementById(`count-${c}`)!;
    badge.textContent = page.totals[c].toLocaleString();
  }
  const tabs = document.getElementById('cell-tabs')!;
  tabs.setAttribute('selected-index', String(CELL_ORDER.indexOf(page.cell)));
  document.getElementById('sort-note')!.textContent = `${page.total.toLocaleString()} ${CELL_NAMES[page.cell].toLowerCase()}${query.patient ? ` of patient ${query.patient}` : ''}: ${CELL_SORT[page.cell]}.${page.gradcams ? ` ${page.gradcams} Grad-CAM overlays exist (evaluate writes them for the worst errors).` : ' No Grad-CAM overlays in this evaluation.'}`;
  if (page.patients) {
    patients = page.patients;
    fillPatients();
  }
  const emptyNote = document.getElementById('cell-empty')!;
  emptyNote.hidden = page.total > 0;
  emptyNote.textContent = page.total ? '' : `No ${CELL_NAMES[page.cell].toLowerCase()}${query.patient ? ` for patient ${query.patient}` : ''} at threshold ${page.threshold}.`;
}

function fillPatients(): void {
  const select = document.getElementById('patient-select') as HTMLElement & { value: string };
  const opts = [`<vscode-option value=""${!query.patient ? ' selected' : ''}>All patients</vscode-option>`,
    ...patients.map((p) => `<vscode-option value="${esc(p.patient)}" description="FN ${p.fn}, FP ${p.fp}"${p.patient === query.patient ? ' selected' : ''}>${esc(p.patient)} (FN ${p.fn}, FP ${p.fp})</vscode-option>`)];
  select.innerHTML = opts.join('');
  select.value = query.patient ?? '';
}

function empty(): void {
  document.body.dataset.state = 'empty';
  app.innerHTML = `
    <h1>Error gallery</h1>
    <div class="empty-state" data-testid="empty-state">
      <p>No evaluation yet: evaluate a trained model to see the patches it gets wrong.</p>
      <vscode-button id="run-evaluate" data-testid="run-evaluate">Evaluate Model</vscode-button>
    </div>`;
  document.getElementById('run-evaluate')!.addEventListener('click', () => {
    rpc.request('runCommand', { command: 'idc.evaluate' }).catch(showError);
  });
  document.body.dataset.ready = 'true';
}

// ------------------------------------------------------------------------------------- virtual grid

const tiles = new Map<number, HTMLButtonElement>();
const spare: HTMLButtonElement[] = [];
let layoutFrame = 0;

function requestLayout(): void {
  if (!layoutFrame) layoutFrame = requestAnimationFrame(() => { layoutFrame = 0; layout(); });
}

function columns(scroll: HTMLElement): number {
  return Math.max(1, Math.floor((scroll.clientWidth - 8) / TILE_W));
}

function scrollToIndex(index: number): void {
  const scroll = document.getElementById('grid-scroll');
  if (!scroll) return;
  const row = Math.floor(index / columns(scroll));
  scroll.scrollTop = Math.max(0, row * TILE_H - scroll.clientHeight / 3);
  layout();
}

/** Places tiles for the visible rows (plus a margin), reusing elements; asks for missing pages. */
function layout(): void {
  const scroll = document.getElementById('grid-scroll');
  const sizer = document.getElementById('grid-sizer');
  if (!scroll || !sizer) return;
  const cols = columns(scroll);
  const rows = Math.ceil(total / cols);
  sizer.style.height = `${rows * TILE_H}px`;
  sizer.style.width = `${cols * TILE_W}px`;
  const r0 = Math.max(0, Math.floor(scroll.scrollTop / TILE_H) - OVERSCAN_ROWS);
  const r1 = Math.min(rows, Math.ceil((scroll.scrollTop + scroll.clientHeight) / TILE_H) + OVERSCAN_ROWS);
  const i0 = r0 * cols, i1 = Math.min(total, r1 * cols);
  // Tiles that left the view are kept (hidden) and reused: scrolling moves elements, it does not create them.
  for (const [i, el] of tiles) {
    if (i < i0 || i >= i1) { tiles.delete(i); el.hidden = true; spare.push(el); }
  }
  const missing = new Set<number>();
  for (let i = i0; i < i1; i++) {
    let el = tiles.get(i);
    if (!el) {
      el = spare.pop();
      if (el) el.hidden = false;
      else sizer.appendChild((el = makeTile()));
      tiles.set(i, el);
    }
    const row = Math.floor(i / cols), col = i % cols;
    const tf = `translate(${col * TILE_W}px, ${row * TILE_H}px)`;
    if (el.style.transform !== tf) el.style.transform = tf;
    el.dataset.index = String(i);
    const item = itemAt(i);
    if (item) fillTile(el, item, i);
    else {
      missing.add(Math.floor(i / PAGE));
      if (el.dataset.item !== '') clearTile(el);
    }
  }
  // Also the next page below the view, so fast scrolling rarely shows placeholders.
  if (i1 < total) missing.add(Math.floor(i1 / PAGE));
  for (const p of missing) void fetchPage(p);
  if (total > 0 && !document.body.dataset.ready && tiles.size && [...tiles.keys()].some((i) => itemAt(i))) document.body.dataset.ready = 'true';
  if (total === 0 && first) document.body.dataset.ready = 'true';
}

function makeTile(): HTMLButtonElement {
  const el = document.createElement('button');
  el.type = 'button';
  el.className = 'tile';
  el.dataset.testid = 'tile';
  const img = document.createElement('img');
  img.className = 'tile-img';
  img.alt = '';
  img.decoding = 'async';
  img.draggable = false;
  const note = document.createElement('span');
  note.className = 'tile-note';
  const score = document.createElement('span');
  score.className = 'tile-score';
  const meta = document.createElement('span');
  meta.className = 'tile-meta';
  el.append(img, note, score, meta);
  el.dataset.item = '';
  return el;
}

function clearTile(el: HTMLButtonElement): void {
  el.dataset.item = '';
  el.classList.add('loading-tile');
  el.classList.remove('selected');
  const img = el.children[0] as HTMLImageElement;
  img.removeAttribute('src');
  for (let k = 1; k < 4; k++) el.children[k].textContent = '';
}

function fillTile(el: HTMLButtonElement, item: GalleryItem, index: number): void {
  el.classList.toggle('selected', selected?.index === index);
  const key = `${item.id}|${showCam ? 1 : 0}`;
  if (el.dataset.item === key) return;
  el.dataset.item = key;
  el.dataset.id = item.id;
  el.classList.remove('loading-tile');
  const img = el.children[0] as HTMLImageElement;
  const note = el.children[1] as HTMLElement;
  const cam = showCam && item.gradcamUri;
  const src = cam ? item.gradcamUri! : item.imageUri ?? '';
  if (src) { if (img.getAttribute('src') !== src) img.src = src; }
  else img.removeAttribute('src');
  img.classList.toggle('missing', !src);
  note.textContent = !src ? 'image missing' : showCam && !item.gradcamUri ? 'no Grad-CAM' : '';
  (el.children[2] as HTMLElement).textContent = `score ${fmt(item.score)}`;
  (el.children[3] as HTMLElement).textContent = `${item.patient} · (${item.x}, ${item.y})`;
  el.title = `${item.id}\nscore ${item.score} · ${item.label === 1 ? 'IDC' : 'non-IDC'}`;
  el.setAttribute('aria-label', `Patch ${item.id}, score ${fmt(item.score)}`);
}

// ------------------------------------------------------------------------------------- detail

function select_(index: number, item: GalleryItem): void {
  selected = { index, item };
  for (const [i, el] of tiles) el.classList.toggle('selected', i === index);
  rpc.saveUi({ focus: item.id });
  detail(index, item);
}

/** Asks the host for overlays (the language server computes missing ones) and redraws those tiles. */
async function computeGradCams(items: GalleryItem[]): Promise<void> {
  const want = items.filter((i) => !i.gradcamUri);
  if (!want.length || !first) return;
  const uris = await rpc.request('gradcam', { evaluation: first.evaluation, ids: want.map((i) => i.id) });
  for (const i of want) i.gradcamUri = uris[i.id] ?? null;
  for (const el of tiles.values()) el.dataset.item = '';
  layout();
}

/** Items of the tiles on screen now. */
function visibleItems(): GalleryItem[] {
  return [...tiles.keys()].map((i) => itemAt(i)).filter((i): i is GalleryItem => !!i);
}

function closeDetail(save = true): void {
  selected = null;
  const aside = document.getElementById('detail');
  if (aside) { aside.hidden = true; aside.innerHTML = ''; }
  for (const el of tiles.values()) el.classList.remove('selected');
  if (save) rpc.saveUi({ focus: null });
}

function detail(index: number, it: GalleryItem): void {
  const aside = document.getElementById('detail');
  if (!aside || !first) return;
  const t = first.threshold;
  aside.hidden = false;
  aside.innerHTML = `
    <div class="d-head"><h2>Patch ${index + 1} of ${total.toLocaleString()}</h2>
      <vscode-button id="detail-close" data-testid="detail-close" secondary icon="close" aria-label="Close" title="Close (Esc)"></vscode-button></div>
    <div class="d-images">
      <figure>${it.imageUri ? `<img class="d-img" id="detail-image" data-testid="detail-image" src="${esc(it.imageUri)}" alt="Patch ${esc(it.id)}">` : '<div class="d-img d-missing">image missing</div>'}<figcaption>Patch (50 × 50 px, shown 250 px)</figcaption></figure>
      <figure>${it.gradcamUri ? `<img class="d-img" data-testid="detail-gradcam" src="${esc(it.gradcamUri)}" alt="Grad-CAM of ${esc(it.id)}"><figcaption>Grad-CAM (last convolutional block)</figcaption>` : '<div class="d-img d-missing" data-testid="detail-no-gradcam"><p>No Grad-CAM overlay yet: evaluate draws them for the worst errors only.</p><vscode-button id="detail-compute-gradcam" data-testid="detail-compute-gradcam" icon="flame">Compute Grad-CAM</vscode-button></div>'}</figure>
    </div>
    <table class="data d-table">
      <tr><td>Patch</td><td class="mono" data-testid="detail-id">${esc(it.id)}</td></tr>
      <tr><td>Patient</td><td>${esc(it.patient)}</td></tr>
      <tr><td>Coordinates</td><td>x ${it.x}, y ${it.y}</td></tr>
      <tr><td>Ground truth</td><td class="${it.label === 1 ? 'pos' : 'neg'}">${it.label === 1 ? 'IDC (class 1)' : 'non-IDC (class 0)'}</td></tr>
      <tr><td>Score</td><td data-testid="detail-score">${esc(Number(it.score.toPrecision(9)))}</td></tr>
      <tr><td>Prediction at ${esc(t)}</td><td>${it.score >= t ? 'IDC' : 'non-IDC'} (${esc(CELL_NAMES[first.cell].toLowerCase().replace(/s$/, ''))})</td></tr>
      <tr><td>Margin</td><td>${fmt(it.score - t)} from the threshold</td></tr>
    </table>
    <div class="toolbar">
      <vscode-button id="show-slidemap" data-testid="show-slidemap" icon="map">Show on slide map</vscode-button>
      ${query.patient === it.patient ? '' : `<vscode-button id="filter-patient" data-testid="filter-patient" secondary icon="filter">Only ${esc(it.patient)}</vscode-button>`}
    </div>`;
  document.getElementById('detail-close')!.addEventListener('click', () => closeDetail());
  document.getElementById('detail-compute-gradcam')?.addEventListener('click', (e) => {
    const button = e.currentTarget as HTMLElement & { disabled: boolean };
    button.disabled = true;
    button.textContent = 'Computing…';
    void computeGradCams([it]).then(() => {
      if (selected?.item === it) detail(index, it);
    }).catch((err: unknown) => {
      button.disabled = false;
      button.textContent = 'Compute Grad-CAM';
      showError(err);
    });
  });
  document.getElementById('show-slidemap')!.addEventListener('click', () => {
    rpc.request('openPanel', { panel: 'slidemap', evaluation: first?.evaluation, ui: { patient: it.patient, focus: it.id, threshold: t } }).catch(showError);
  });
  document.getElementById('filter-patient')?.addEventListener('click', () => {
    void focusOn(it.id, { ...query, patient: it.patient }).catch(showError);
  });
}

// ------------------------------------------------------------------------------------- state

function num(x: unknown): number | undefined {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 1 ? x : undefined;
}

/** Applies the panel's UI state: { cell, threshold, patient, focus, gradcam }. */
async function applyUi(ui: Record<string, unknown>, evaluation: string | undefined): Promise<void> {
  const cell = CELL_ORDER.includes(ui.cell as Cell) ? (ui.cell as Cell) : 'fn';
  const threshold = num(ui.threshold);
  const patient = typeof ui.patient === 'string' && ui.patient ? ui.patient : undefined;
  showCam = ui.gradcam === true;
  const cam = document.getElementById('gradcam-toggle') as (HTMLElement & { checked: boolean }) | null;
  if (cam) cam.checked = showCam;
  const q: Query = { evaluation, cell, threshold, patient };
  if (typeof ui.focus === 'string' && ui.focus) await focusOn(ui.focus, q);
  else {
    pendingFocus = null;
    reset(q);
  }
}

/** Opens the cell that holds patch `id` (at q's threshold and patient filter), scrolled to it and selected. */
async function focusOn(id: string, q: Query): Promise<void> {
  pendingFocus = null;
  const loc = await rpc.request('locate', { evaluation: q.evaluation, id, threshold: q.threshold, patient: q.patient });
  if (loc && loc.index >= 0) {
    pendingFocus = { id, index: loc.index };
    reset({ ...q, cell: loc.cell, patient: loc.patient }, true);
  } else reset(q);
}

async function start(): Promise<void> {
  try {
    const { state } = await rpc.ready();
    skeleton();
    await applyUi(state.ui ?? {}, state.evaluation);
  } catch (e) {
    app.setAttribute('aria-busy', 'false');
    showError(e);
  }
}

rpc.on('refresh', () => {
  // The host's state may carry a new cell/threshold/patient/focus (opened again from another panel).
  void (async () => {
    try {
      const r = await rpc.request('ready', {});
      rpc.state = { ...r.state, ui: { ...rpc.state?.ui, ...r.state.ui } };
      if (!document.getElementById('grid-scroll')) skeleton();
      await applyUi(rpc.state.ui ?? {}, r.state.evaluation);
    } catch (e) {
      showError(e);
    }
  })();
});

void start();
