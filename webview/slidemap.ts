/**
 * Slide map: one patient's slide rebuilt from its patches, with the ground truth and the predicted
 * probability as layers (toggles and opacity), FN/FP outlines drawn here at the threshold in the
 * box, zoom (wheel, buttons, keys) and pan (drag, arrows), a tooltip per patch, and a click that
 * opens the error gallery on that patch. The patient list (worst first) comes from the host.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import { VIRIDIS, lutIndex } from '../src/core/visual/colormap';
import { PanelRpc, cssVar, esc, fmt, showError } from './lib/rpc';
import type { SlideMapView } from '../src/protocol/webview';

type Tile = SlideMapView['tiles'][number];
type LayerKey = 'tissue' | 'truth' | 'probability' | 'errors';

const rpc = new PanelRpc('slidemap');
const app = document.getElementById('app')!;

let view: SlideMapView | null = null;
let threshold = 0.5;
const show: Record<LayerKey, boolean> = { tissue: true, truth: true, probability: true, errors: true };
const opacity = { truth: 1, probability: 0.45 };
let filter = '';
/** Loaded layer images of the shown patient. */
let images: Partial<Record<'tissue' | 'truth' | 'probability', HTMLImageElement>> = {};
/** Screen px per image px, and the image's top-left on screen (CSS px). */
let zoom = 1;
let ox = 0;
let oy = 0;
let fitted = false;
let hover: Tile | null = null;
let canvas: HTMLCanvasElement | null = null;
let loadSeq = 0;

const rgb = (c: readonly number[]): string => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
const int = (n: number): string => n.toLocaleString('en-US');

function kind(t: Tile): 'fn' | 'fp' | 'tp' | 'tn' {
  const pos = t.score >= threshold;
  return t.label === 1 ? (pos ? 'tp' : 'fn') : (pos ? 'fp' : 'tn');
}

// ------------------------------------------------------------------------------------- page

function empty(): void {
  document.body.dataset.state = 'empty';
  app.setAttribute('aria-busy', 'false');
  app.innerHTML = `
    <h1>Slide map</h1>
    <div class="empty-state" data-testid="empty-state">
      <p>No evaluation yet: slide maps show a model's predictions on the patients it was evaluated on.</p>
      <p class="muted">Evaluating scores the test patients and writes predictions.csv, from which each patient's slide is rebuilt here.</p>
      <vscode-button id="run-evaluate" data-testid="run-evaluate">Evaluate Model</vscode-button>
    </div>`;
  document.getElementById('run-evaluate')!.addEventListener('click', () => rpc.request('runCommand', { command: 'idc.evaluate' }).catch(showError));
  document.body.dataset.ready = 'true';
}

function renderShell(v: SlideMapView): void {
  document.body.dataset.state = 'ready';
  app.setAttribute('aria-busy', 'false');
  app.innerHTML = `
    <header class="head">
      <h1>Slide map <span class="patient-id" id="title-patient" data-testid="title-patient"></span></h1>
      <div class="toolbar">
        <label class="field" for="evaluation">Evaluation</label>
        <vscode-single-select id="evaluation" data-testid="evaluation">
          ${v.evaluations.map((e) => `<vscode-option value="${esc(e)}" ${e === v.evaluation ? 'selected' : ''}>${esc(e)}</vscode-option>`).join('')}
        </vscode-single-select>
      </div>
    </header>
    <div id="warnings" data-testid="warnings"></div>
    <div class="layout">
      <aside class="patients">
        <h2>Patients <span class="muted count" id="patient-count"></span></h2>
        <p class="muted small" id="patients-note"></p>
        <vscode-textfield id="patient-filter" data-testid="patient-filter" placeholder="Filter patients" value="${esc(filter)}"></vscode-textfield>
        <div class="patients-scroll">
          <table class="data" id="patient-list" data-testid="patient-list">
            <thead><tr><th>Patient</th><th title="patches">n</th><th title="IDC(+) patches">IDC(+)</th><th title="false negatives at the threshold">FN</th><th title="false positives at the threshold">FP</th><th title="patient ROC AUC">AUC</th></tr></thead>
            <tbody></tbody>
          </table>
        </div>
      </aside>
      <section class="map">
        <div class="toolbar controls">
          <label class="field" for="threshold">Threshold</label>
          <input type="range" id="threshold-slider" data-testid="threshold-slider" min="0" max="1" step="0.01" value="${threshold}" aria-label="Threshold">
          <vscode-textfield id="threshold" data-testid="threshold" type="number" min="0" max="1" step="0.01" value="${threshold}"></vscode-textfield>
          <vscode-button id="threshold-reset" data-testid="threshold-reset" secondary title="Back to the evaluation's working threshold">Working ${esc(fmt(v.workingThreshold, 2))}</vscode-button>
          <span class="sep"></span>
          <vscode-checkbox id="layer-tissue" data-testid="layer-tissue" ${show.tissue ? 'checked' : ''}>Tissue</vscode-checkbox>
          <vscode-checkbox id="layer-truth" data-testid="layer-truth" ${show.truth ? 'checked' : ''}>Ground truth</vscode-checkbox>
          <input type="range" id="opacity-truth" data-testid="opacity-truth" min="0" max="1" step="0.05" value="${opacity.truth}" aria-label="Ground-truth opacity">
          <vscode-checkbox id="layer-probability" data-testid="layer-probability" ${show.probability ? 'checked' : ''}>Probability</vscode-checkbox>
          <input type="range" id="opacity-probability" data-testid="opacity-probability" min="0" max="1" step="0.05" value="${opacity.probability}" aria-label="Probability opacity">
          <vscode-checkbox id="layer-errors" data-testid="layer-errors" ${show.errors ? 'checked' : ''}>FN / FP</vscode-checkbox>
        </div>
        <div class="legend" id="legend" data-testid="legend">
          <span class="legend-item"><span class="muted">P(IDC)</span> 0 <canvas id="viridis" width="120" height="10" aria-hidden="true"></canvas> 1</span>
          <span class="legend-item"><span class="swatch truth-swatch" id="swatch-truth"></span> IDC(+) ground truth</span>
          <span class="legend-item"><span class="swatch outline" id="swatch-fn"></span> FN <b id="count-fn" data-testid="count-fn">0</b></span>
          <span class="legend-item"><span class="swatch outline" id="swatch-fp"></span> FP <b id="count-fp" data-testid="count-fp">0</b></span>
          <span class="muted" id="slide-info"></span>
        </div>
        <div class="viewport" id="viewport" data-testid="viewport">
          <canvas id="slide" data-testid="slide-canvas" tabindex="0" role="img" aria-label="Slide map"></canvas>
          <div class="zoom-controls">
            <vscode-button id="zoom-in" data-testid="zoom-in" icon="zoom-in" secondary title="Zoom in (+)" aria-label="Zoom in"></vscode-button>
            <vscode-button id="zoom-out" data-testid="zoom-out" icon="zoom-out" secondary title="Zoom out (−)" aria-label="Zoom out"></vscode-button>
            <vscode-button id="zoom-fit" data-testid="zoom-fit" icon="screen-normal" secondary title="Fit the slide (0)" aria-label="Fit the slide"></vscode-button>
          </div>
          <div class="tooltip" id="tooltip" data-testid="tooltip" hidden></div>
        </div>
        <p class="muted small">Wheel or +/− to zoom, drag or arrow keys to pan, 0 to fit. Click a patch to open it in the error gallery.</p>
      </section>
    </div>`;

  const sel = document.getElementById('evaluation') as HTMLSelectElement;
  sel.addEventListener('change', () => {
    if (sel.value && sel.value !== view?.evaluation) void load({ evaluation: sel.value, patient: undefined, keepThreshold: false });
  });
  const tf = document.getElementById('threshold') as HTMLInputElement;
  const slider = document.getElementById('threshold-slider') as HTMLInputElement;
  const onThreshold = () => {
    const raw = String(tf.value ?? '').trim();
    const t = Number(raw);
    if (raw === '' || !(t >= 0 && t <= 1)) { tf.setAttribute('invalid', ''); tf.title = 'A threshold between 0 and 1'; return; }
    tf.removeAttribute('invalid');
    tf.title = '';
    slider.value = String(t);
    setThreshold(t);
  };
  tf.addEventListener('input', onThreshold);
  tf.addEventListener('change', onThreshold);
  slider.addEventListener('input', () => {
    tf.value = slider.value;
    tf.removeAttribute('invalid');
    setThreshold(Number(slider.value));
  });
  document.getElementById('threshold-reset')!.addEventListener('click', () => {
    if (!view) return;
    tf.value = String(view.workingThreshold);
    slider.value = String(view.workingThreshold);
    tf.removeAttribute('invalid');
    setThreshold(view.workingThreshold);
  });
  for (const k of ['tissue', 'truth', 'probability', 'errors'] as const) {
    const cb = document.getElementById(`layer-${k}`) as HTMLInputElement;
    cb.addEventListener('change', () => {
      show[k] = !!cb.checked;
      draw();
      rpc.saveUi({ show: { ...show } });
    });
  }
  for (const k of ['truth', 'probability'] as const) {
    const r = document.getElementById(`opacity-${k}`) as HTMLInputElement;
    r.addEventListener('input', () => {
      opacity[k] = Number(r.value);
      draw();
    });
    r.addEventListener('change', () => rpc.saveUi({ opacity: { ...opacity } }));
  }
  document.getElementById('zoom-in')!.addEventListener('click', () => zoomBy(1.5));
  document.getElementById('zoom-out')!.addEventListener('click', () => zoomBy(1 / 1.5));
  document.getElementById('zoom-fit')!.addEventListener('click', () => { fit(); draw(); });
  const pf = document.getElementById('patient-filter') as HTMLInputElement;
  pf.addEventListener('input', () => { filter = pf.value ?? ''; renderPatients(); });

  canvas = document.getElementById('slide') as HTMLCanvasElement;
  wireCanvas(canvas);
  new ResizeObserver(() => resize()).observe(document.getElementById('viewport')!);
  drawViridis();
}

function renderWarnings(v: SlideMapView): void {
  const box = document.getElementById('warnings')!;
  box.innerHTML = v.warnings.map((w) => `<div class="notice warn-notice">${esc(w)}</div>`).join('');
}

function renderPatients(): void {
  if (!view) return;
  const body = document.querySelector('#patient-list tbody');
  if (!body) return;
  const q = filter.trim().toLowerCase();
  const rows = view.patients.filter((p) => !q || p.patient.toLowerCase().includes(q));
  body.innerHTML = rows.map((p) => `<tr data-patient="${esc(p.patient)}" tabindex="0" class="${p.patient === view!.patient ? 'selected' : ''}" ${p.patient === view!.patient ? 'aria-selected="true"' : ''}>
      <td>${esc(p.patient)}</td><td>${int(p.patches)}</td><td>${int(p.positives)}</td>
      <td class="${p.fn ? 'fn' : 'muted'}">${int(p.fn)}</td><td class="${p.fp ? 'fp' : 'muted'}">${int(p.fp)}</td><td>${fmt(p.auc)}</td></tr>`).join('')
    || `<tr><td colspan="6" class="muted">No patient matches.</td></tr>`;
  document.getElementById('patient-count')!.textContent = rows.length === view.patients.length ? `(${view.patients.length})` : `(${rows.length} of ${view.patients.length})`;
  document.getElementById('patients-note')!.textContent = `Worst first at threshold ${fmt(view.threshold, 2)}: most false negatives, then lowest recall, then lowest AUC.`;
  for (const tr of Array.from(body.querySelectorAll<HTMLElement>('tr[data-patient]'))) {
    const pick = () => { if (tr.dataset.patient !== view?.patient) void load({ patient: tr.dataset.patient, keepThreshold: true }); };
    tr.addEventListener('click', pick);
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(); } });
  }
}

function drawViridis(): void {
  const c = document.getElementById('viridis') as HTMLCanvasElement | null;
  const ctx = c?.getContext('2d');
  if (!c || !ctx) return;
  for (let x = 0; x < c.width; x++) {
    const k = lutIndex(x / (c.width - 1)) * 3;
    ctx.fillStyle = `rgb(${VIRIDIS[k]}, ${VIRIDIS[k + 1]}, ${VIRIDIS[k + 2]})`;
    ctx.fillRect(x, 0, 1, c.height);
  }
  const tx = Math.round(threshold * (c.width - 1));
  ctx.fillStyle = cssVar('--vscode-foreground', '#000');
  ctx.fillRect(Math.max(0, tx - 1), 0, 2, c.height);
}

function renderCounts(): void {
  if (!view) return;
  let fn = 0, fp = 0;
  for (const t of view.tiles) { const k = kind(t); if (k === 'fn') fn++; else if (k === 'fp') fp++; }
  document.getElementById('count-fn')!.textContent = int(fn);
  document.getElementById('count-fp')!.textContent = int(fp);
  document.getElementById('title-patient')!.textContent = `patient ${view.patient}`;
  const pos = view.tiles.filter((t) => t.label === 1).length;
  const source = { cache: 'tissue from the patch cache', files: 'tissue from the patch PNGs', mixed: 'tissue from the patch cache and PNGs' }[view.pixelSource];
  document.getElementById('slide-info')!.textContent = `${int(view.tiles.length)} patches, ${int(pos)} IDC(+) · ${source}`;
  const c = view.colours;
  (document.getElementById('swatch-fn') as HTMLElement).style.borderColor = rgb(c.falseNegative);
  (document.getElementById('swatch-fp') as HTMLElement).style.borderColor = rgb(c.falsePositive);
  (document.getElementById('swatch-truth') as HTMLElement).style.borderColor = rgb(c.truth);
}

// ------------------------------------------------------------------------------------- threshold

let recountTimer: ReturnType<typeof setTimeout> | undefined;

function setThreshold(t: number): void {
  threshold = t;
  renderCounts();
  drawViridis();
  draw();
  rpc.saveUi({ threshold: t });
  // The patient list's FN/FP at the new threshold come from the host (every patient's predictions).
  clearTimeout(recountTimer);
  recountTimer = setTimeout(() => void refreshList(), 350);
}

async function refreshList(): Promise<void> {
  if (!view) return;
  const seq = loadSeq;
  try {
    const v = await rpc.request('load', { evaluation: view.evaluation, patient: view.patient, threshold });
    if (!v || seq !== loadSeq || !view || v.patient !== view.patient) return;
    view = { ...view, patients: v.patients, threshold: v.threshold };
    renderPatients();
  } catch (e) {
    showError(e);
  }
}

// ------------------------------------------------------------------------------------- canvas

function resize(): void {
  if (!canvas) return;
  const box = canvas.parentElement!.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(box.width * dpr));
  canvas.height = Math.max(1, Math.round(box.height * dpr));
  if (!fitted) fit();
  draw();
}

function fit(): void {
  if (!canvas || !view) return;
  const box = canvas.parentElement!.getBoundingClientRect();
  if (box.width < 2 || box.height < 2) return;
  zoom = Math.min(box.width / view.width, box.height / view.height) * 0.96;
  ox = (box.width - view.width * zoom) / 2;
  oy = (box.height - view.height * zoom) / 2;
  fitted = true;
}

function zoomBy(f: number, cx?: number, cy?: number): void {
  if (!canvas || !view) return;
  const box = canvas.parentElement!.getBoundingClientRect();
  const x = cx ?? box.width / 2, y = cy ?? box.height / 2;
  const minZoom = Math.min(box.width / view.width, box.height / view.height) / 4;
  const next = Math.min(32, Math.max(minZoom, zoom * f));
  ox = x - ((x - ox) * next) / zoom;
  oy = y - ((y - oy) * next) / zoom;
  zoom = next;
  draw();
}

function draw(): void {
  if (!canvas || !view) return;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const dpr = window.devicePixelRatio || 1;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.setTransform(dpr * zoom, 0, 0, dpr * zoom, dpr * ox, dpr * oy);
  // Pixels stay crisp when magnified; shrunk slides are smoothed.
  ctx.imageSmoothingEnabled = zoom < 1;
  const c = view.colours;
  if (show.tissue && images.tissue) ctx.drawImage(images.tissue, 0, 0);
  else {
    ctx.fillStyle = rgb(c.noTissue);
    for (const t of view.tiles) ctx.fillRect(t.left, t.top, t.size, t.size);
  }
  if (show.probability && images.probability && opacity.probability > 0) {
    ctx.globalAlpha = show.tissue ? opacity.probability : Math.max(opacity.probability, 0.85);
    ctx.drawImage(images.probability, 0, 0);
    ctx.globalAlpha = 1;
  }
  if (show.truth && images.truth && opacity.truth > 0) {
    ctx.globalAlpha = opacity.truth;
    ctx.drawImage(images.truth, 0, 0);
    ctx.globalAlpha = 1;
  }
  if (show.errors) {
    // Inset past the truth contour (as the static maps draw them), at least 1.5 screen px wide.
    for (const t of view.tiles) {
      const k = kind(t);
      if (k !== 'fn' && k !== 'fp') continue;
      const w = Math.max(t.size / 10, 1.5 / zoom);
      const inset = Math.max(t.size / 16, 0) + w / 2;
      ctx.strokeStyle = rgb(k === 'fn' ? c.falseNegative : c.falsePositive);
      ctx.lineWidth = w;
      ctx.strokeRect(t.left + inset, t.top + inset, t.size - 2 * inset, t.size - 2 * inset);
    }
  }
  if (hover) {
    ctx.strokeStyle = cssVar('--vscode-focusBorder', '#007fd4');
    ctx.lineWidth = Math.max(2 / zoom, 0.5);
    ctx.strokeRect(hover.left, hover.top, hover.size, hover.size);
  }
  ctx.setTransform(1, 0, 0, 1, 0, 0);
}

function tileAt(sx: number, sy: number): Tile | null {
  if (!view) return null;
  const ix = (sx - ox) / zoom, iy = (sy - oy) / zoom;
  for (const t of view.tiles) if (ix >= t.left && ix < t.left + t.size && iy >= t.top && iy < t.top + t.size) return t;
  return null;
}

function wireCanvas(cv: HTMLCanvasElement): void {
  let drag: { x: number; y: number; ox: number; oy: number; moved: boolean; id: number } | null = null;
  const local = (e: MouseEvent) => {
    const r = cv.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  };
  cv.addEventListener('wheel', (e) => {
    e.preventDefault();
    const p = local(e);
    zoomBy(Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)), p.x, p.y);
  }, { passive: false });
  cv.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    cv.setPointerCapture(e.pointerId);
    drag = { x: e.clientX, y: e.clientY, ox, oy, moved: false, id: e.pointerId };
    cv.classList.add('dragging');
  });
  cv.addEventListener('pointermove', (e) => {
    if (drag) {
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (drag.moved) {
        ox = drag.ox + dx;
        oy = drag.oy + dy;
        hideTooltip();
        draw();
        return;
      }
    }
    const p = local(e);
    const t = tileAt(p.x, p.y);
    if (t !== hover) { hover = t; draw(); }
    if (t) showTooltip(t, p.x, p.y); else hideTooltip();
  });
  const end = (e: PointerEvent) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    cv.classList.remove('dragging');
    if (cv.hasPointerCapture(d.id)) cv.releasePointerCapture(d.id);
    if (!d.moved && e.type === 'pointerup') {
      const p = local(e);
      const t = tileAt(p.x, p.y);
      if (t) openInGallery(t);
    }
  };
  cv.addEventListener('pointerup', end);
  cv.addEventListener('pointercancel', end);
  cv.addEventListener('pointerleave', () => { if (!drag) { hover = null; hideTooltip(); draw(); } });
  cv.addEventListener('keydown', (e) => {
    const step = 60;
    switch (e.key) {
      case '+': case '=': zoomBy(1.5); break;
      case '-': case '_': zoomBy(1 / 1.5); break;
      case '0': fit(); draw(); break;
      case 'ArrowLeft': ox += step; draw(); break;
      case 'ArrowRight': ox -= step; draw(); break;
      case 'ArrowUp': oy += step; draw(); break;
      case 'ArrowDown': oy -= step; draw(); break;
      case 'Enter': if (hover) openInGallery(hover); break;
      default: return;
    }
    e.preventDefault();
  });
}

function showTooltip(t: Tile, x: number, y: number): void {
  const tip = document.getElementById('tooltip')!;
  const k = kind(t);
  const verdict = { fn: 'false negative', fp: 'false positive', tp: 'true positive', tn: 'true negative' }[k];
  tip.innerHTML = `<div class="tip-id">${esc(t.id)}</div>
    <div>label <b class="${t.label === 1 ? 'pos' : 'neg'}">${t.label === 1 ? 'IDC(+) 1' : 'IDC(−) 0'}</b> · score <b>${fmt(t.score, 3)}</b></div>
    <div class="tip-${k}">${verdict} at ${fmt(threshold, 2)}</div>
    <div class="muted">x ${t.x}, y ${t.y} · click: open in gallery</div>`;
  tip.hidden = false;
  const box = tip.parentElement!.getBoundingClientRect();
  const w = tip.offsetWidth, h = tip.offsetHeight;
  tip.style.left = `${Math.min(x + 14, box.width - w - 4)}px`;
  tip.style.top = `${y + 14 + h > box.height ? Math.max(4, y - h - 10) : y + 14}px`;
}

function hideTooltip(): void {
  const tip = document.getElementById('tooltip');
  if (tip) tip.hidden = true;
}

function openInGallery(t: Tile): void {
  if (!view) return;
  rpc.request('openPanel', { panel: 'gallery', evaluation: view.evaluation, ui: { patient: view.patient, focus: t.id, cell: kind(t), threshold } }).catch(showError);
}

// ------------------------------------------------------------------------------------- loading

function loadImage(uri: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('A slide layer image could not be loaded.'));
    img.src = uri;
  });
}

async function load(opts: { evaluation?: string; patient?: string; keepThreshold: boolean }): Promise<void> {
  const seq = ++loadSeq;
  app.setAttribute('aria-busy', 'true');
  document.body.dataset.loading = 'true';
  try {
    const v = await rpc.request('load', { evaluation: opts.evaluation, patient: opts.patient, threshold: opts.keepThreshold ? threshold : undefined });
    if (seq !== loadSeq) return;
    if (!v) { view = null; empty(); return; }
    const paths = [v.layers.tissue, v.layers.truth, v.layers.probability];
    const uris = await rpc.images(paths);
    const missing = uris.findIndex((u) => !u);
    if (missing >= 0) throw new Error(`The slide layer ${paths[missing]} could not be shown (outside the dataset and output folders, or gone).`);
    // A redrawn layer keeps its file name: the version keeps the browser from showing the old one.
    const bust = (u: string) => `${u}${u.includes('?') ? '&' : '?'}v=${v.layersVersion}`;
    const [tissue, truth, probability] = await Promise.all(uris.map((u) => loadImage(bust(u!))));
    if (seq !== loadSeq) return;
    const shellNeeded = !view || view.evaluation !== v.evaluation || !document.getElementById('slide');
    const patientChanged = !view || view.patient !== v.patient || view.evaluation !== v.evaluation;
    if (!opts.keepThreshold) threshold = v.threshold;
    view = v;
    images = { tissue, truth, probability };
    if (shellNeeded) renderShell(v);
    const tf = document.getElementById('threshold') as HTMLInputElement | null;
    if (tf && Number(tf.value) !== threshold) tf.value = String(threshold);
    const slider = document.getElementById('threshold-slider') as HTMLInputElement | null;
    if (slider) slider.value = String(threshold);
    renderWarnings(v);
    renderPatients();
    renderCounts();
    drawViridis();
    hover = null;
    hideTooltip();
    if (patientChanged) fitted = false;
    resize();
    rpc.saveUi({ patient: v.patient, evaluation: v.evaluation });
    document.body.dataset.patient = v.patient;
    document.body.dataset.ready = 'true';
  } catch (e) {
    showError(e);
  } finally {
    if (seq === loadSeq) {
      app.setAttribute('aria-busy', 'false');
      delete document.body.dataset.loading;
    }
  }
}

// The host's evaluation (a command may have named another): undefined asks for it.
rpc.on('refresh', () => void load({ evaluation: undefined, patient: view?.patient, keepThreshold: true }));
rpc.on('theme', () => { drawViridis(); draw(); });

void (async () => {
  try {
    const { state } = await rpc.ready();
    const ui = rpc.ui;
    const t = ui.threshold;
    const hasThreshold = typeof t === 'number' && t >= 0 && t <= 1;
    if (hasThreshold) threshold = t as number;
    const s = ui.show as Partial<Record<LayerKey, unknown>> | undefined;
    if (s && typeof s === 'object') for (const k of Object.keys(show) as LayerKey[]) if (typeof s[k] === 'boolean') show[k] = s[k] as boolean;
    const o = ui.opacity as Partial<Record<'truth' | 'probability', unknown>> | undefined;
    if (o && typeof o === 'object') for (const k of ['truth', 'probability'] as const) { const x = o[k]; if (typeof x === 'number' && x >= 0 && x <= 1) opacity[k] = x; }
    // A command naming an evaluation wins over the one this page showed before a reload.
    const evaluation = state.evaluation ?? (typeof ui.evaluation === 'string' ? ui.evaluation : undefined);
    await load({ evaluation, patient: typeof ui.patient === 'string' ? ui.patient : undefined, keepThreshold: hasThreshold });
  } catch (e) {
    app.setAttribute('aria-busy', 'false');
    showError(e);
  }
})();
