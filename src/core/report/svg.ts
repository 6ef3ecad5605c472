/**
 * Inline SVG charts drawn here (no chart library, no script): line charts with reference lines,
 * vertical event lines and point markers, pies and stacked bars. Colours come from CSS classes
 * (c1…c6 stroke, f1…f6 fill) so the page's light/dark palette applies to them.
 */
import { html, raw, fixed, isNum, type Html } from './html';

export type Colour = 1 | 2 | 3 | 4 | 5 | 6;
export type Dash = 'solid' | 'dash' | 'dot';
export type Shape = 'circle' | 'square' | 'diamond' | 'triangle' | 'triangle-down' | 'plus';
export const SHAPES: readonly Shape[] = ['circle', 'square', 'diamond', 'triangle', 'triangle-down', 'plus'];

export interface LineSeries {
  /** Stable key (data-series) and legend text. */
  key: string;
  label: string;
  x: readonly number[];
  y: readonly number[];
  colour: Colour;
  dash?: Dash;
  /** Hold each value until the next x (a learning-rate schedule). */
  step?: boolean;
  /** Dots with hover titles at every point (short series only). */
  dots?: boolean;
  format?: (v: number) => string;
}

export interface RefLine { x1: number; y1: number; x2: number; y2: number; label: string }
/** A shaded region between lo and hi at each x (a pointwise confidence band); non-finite points are skipped. */
export interface BandSpec { key: string; label: string; x: readonly number[]; lo: readonly number[]; hi: readonly number[]; colour: Colour }
export interface VLine { x: number; label: string; kind: 'best' | 'lr' }
export interface PointMarker { key: string; label: string; x: number; y: number; shape: Shape; colour: Colour; title: string }

export interface AxisSpec {
  label: string;
  min?: number;
  max?: number;
  log?: boolean;
  integer?: boolean;
  format?: (v: number) => string;
}

export interface ChartSpec {
  id: string;
  title: string;
  x: AxisSpec;
  y: AxisSpec;
  series: LineSeries[];
  refs?: RefLine[];
  vlines?: VLine[];
  markers?: PointMarker[];
  bands?: BandSpec[];
  width?: number;
  height?: number;
  /** Screen-reader summary. */
  description?: string;
}

const r1 = (v: number): number => Math.round(v * 10) / 10;

interface Scale {
  (v: number): number;
  ticks: number[];
  min: number;
  max: number;
  format: (v: number) => string;
}

function niceStep(span: number, count: number): number {
  const rough = span / count;
  const p = 10 ** Math.floor(Math.log10(rough));
  const m = rough / p;
  return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * p;
}

const clean = (v: number): number => Number(v.toPrecision(12));

function linearScale(spec: AxisSpec, lo: number, hi: number, r0: number, r1_: number, count: number): Scale {
  let min = spec.min ?? lo;
  let max = spec.max ?? hi;
  if (!isNum(min) || !isNum(max)) { min = 0; max = 1; }
  if (min === max) {
    const pad = spec.integer ? 1 : Math.abs(min) * 0.1 || 0.5;
    min -= pad; max += pad;
  }
  let step = niceStep(max - min, count);
  if (spec.integer) step = Math.max(1, Math.round(step));
  if (spec.min === undefined && !spec.integer) min = clean(Math.floor(min / step) * step);
  if (spec.max === undefined && !spec.integer) max = clean(Math.ceil(max / step) * step);
  const ticks: number[] = [];
  for (let t = Math.ceil(min / step - 1e-9) * step; t <= max + step * 1e-9; t += step) ticks.push(clean(t));
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const format = spec.format ?? ((v: number) => (spec.integer ? String(Math.round(v)) : fixed(v, digits)));
  const f = ((v: number) => r0 + ((v - min) / (max - min)) * (r1_ - r0)) as Scale;
  return Object.assign(f, { ticks, min, max, format });
}

function logScale(spec: AxisSpec, lo: number, hi: number, r0: number, r1_: number): Scale {
  let min = spec.min ?? lo;
  let max = spec.max ?? hi;
  if (!(min > 0) || !(max > 0)) { min = 1e-4; max = 1e-2; }
  let a = Math.floor(Math.log10(min) + 1e-9), b = Math.ceil(Math.log10(max) - 1e-9);
  if (a === b) { a -= 1; b += 1; }
  if (spec.min === undefined) min = 10 ** a;
  if (spec.max === undefined) max = 10 ** b;
  const ticks: number[] = [];
  for (let k = a; k <= b; k++) {
    for (const m of b - a <= 2 ? [1, 2, 5] : [1]) {
      const t = clean(m * 10 ** k);
      if (t >= min * (1 - 1e-9) && t <= max * (1 + 1e-9)) ticks.push(t);
    }
  }
  const format = spec.format ?? ((v: number) => v.toExponential(0).replace('e+', 'e'));
  const la = Math.log10(min), lb = Math.log10(max);
  const f = ((v: number) => r0 + ((Math.log10(v) - la) / (lb - la)) * (r1_ - r0)) as Scale;
  return Object.assign(f, { ticks, min, max, format });
}

function extent(values: Iterable<number>, log: boolean): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (!isNum(v) || (log && v <= 0)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : [NaN, NaN];
}

/** One path per series; non-finite points (and non-positive ones on a log axis) break the line. */
function seriesPath(s: LineSeries, sx: Scale, sy: Scale, logY: boolean): string {
  let d = '';
  let pen = false;
  const n = Math.min(s.x.length, s.y.length);
  for (let i = 0; i < n; i++) {
    const x = s.x[i], y = s.y[i];
    if (!isNum(x) || !isNum(y) || (logY && y <= 0)) { pen = false; continue; }
    const px = r1(sx(x)), py = r1(sy(y));
    if (!pen) d += `M${px} ${py}`;
    else if (s.step) d += `H${px}V${py}`;
    else d += `L${px} ${py}`;
    pen = true;
  }
  return d;
}

export function shapePath(shape: Shape, x: number, y: number, r: number): string {
  const X = (v: number) => r1(v);
  switch (shape) {
    case 'circle': return `M${X(x - r)} ${X(y)}a${r} ${r} 0 1 0 ${2 * r} 0a${r} ${r} 0 1 0 ${-2 * r} 0Z`;
    case 'square': { const s = r * 0.9; return `M${X(x - s)} ${X(y - s)}h${X(2 * s)}v${X(2 * s)}h${X(-2 * s)}Z`; }
    case 'diamond': { const s = r * 1.3; return `M${X(x)} ${X(y - s)}L${X(x + s)} ${X(y)}L${X(x)} ${X(y + s)}L${X(x - s)} ${X(y)}Z`; }
    case 'triangle': return `M${X(x)} ${X(y - 1.3 * r)}L${X(x + 1.2 * r)} ${X(y + 0.8 * r)}L${X(x - 1.2 * r)} ${X(y + 0.8 * r)}Z`;
    case 'triangle-down': return `M${X(x)} ${X(y + 1.3 * r)}L${X(x + 1.2 * r)} ${X(y - 0.8 * r)}L${X(x - 1.2 * r)} ${X(y - 0.8 * r)}Z`;
    case 'plus': { const a = r * 1.2, b = r * 0.4; return `M${X(x - b)} ${X(y - a)}h${X(2 * b)}v${X(a - b)}h${X(a - b)}v${X(2 * b)}h${X(b - a)}v${X(a - b)}h${X(-2 * b)}v${X(b - a)}h${X(b - a)}v${X(-2 * b)}h${X(a - b)}Z`; }
  }
}

const dashClass = (d: Dash | undefined): string => (d && d !== 'solid' ? ` ${d}` : '');

type LegendItem =
  | { kind: 'series'; label: string; colour: Colour; dash?: Dash }
  | { kind: 'ref'; label: string }
  | { kind: 'vline'; label: string; vkind: 'best' | 'lr' }
  | { kind: 'marker'; label: string; colour: Colour; shape: Shape }
  | { kind: 'box'; label: string; colour: Colour }
  | { kind: 'band'; label: string; colour: Colour };

function legend(items: LegendItem[]): Html {
  if (!items.length) return raw('');
  const swatch = (it: LegendItem): Html => {
    switch (it.kind) {
      case 'series': return html`<line class="sw c${it.colour}${dashClass(it.dash)}" x1="1" y1="6" x2="23" y2="6"/>`;
      case 'ref': return html`<line class="ref" x1="1" y1="6" x2="23" y2="6"/>`;
      case 'vline': return html`<line class="vline ${it.vkind}" x1="12" y1="0" x2="12" y2="12"/>`;
      case 'marker': return html`<path class="f${it.colour} mk" d="${shapePath(it.shape, 12, 6, 4.5)}"/>`;
      case 'box': return html`<rect class="f${it.colour}" x="5" y="1" width="14" height="10" rx="2"/>`;
      case 'band': return html`<rect class="band f${it.colour}" x="1" y="1" width="22" height="10"/>`;
    }
  };
  return html`<ul class="legend">${items.map((it) => html`<li><svg class="swatch" viewBox="0 0 24 12" width="24" height="12" aria-hidden="true">${swatch(it)}</svg>${it.label}</li>`)}</ul>`;
}

const M = { top: 14, right: 16, bottom: 42, left: 58 };

export function lineChart(spec: ChartSpec): Html {
  const W = spec.width ?? 480, H = spec.height ?? 300;
  const x0 = M.left, x1 = W - M.right, y0 = H - M.bottom, y1 = M.top;
  const xs = [...spec.series.flatMap((s) => s.x), ...(spec.refs ?? []).flatMap((r) => [r.x1, r.x2]), ...(spec.vlines ?? []).map((v) => v.x), ...(spec.markers ?? []).map((m) => m.x)];
  const ys = [...spec.series.flatMap((s) => s.y), ...(spec.refs ?? []).flatMap((r) => [r.y1, r.y2]), ...(spec.markers ?? []).map((m) => m.y), ...(spec.bands ?? []).flatMap((b) => [...b.lo, ...b.hi])];
  const [xlo, xhi] = extent(xs, !!spec.x.log);
  const [ylo, yhi] = extent(ys, !!spec.y.log);
  const sx = spec.x.log ? logScale(spec.x, xlo, xhi, x0, x1) : linearScale(spec.x, xlo, xhi, x0, x1, 6);
  const sy = spec.y.log ? logScale(spec.y, ylo, yhi, y0, y1) : linearScale(spec.y, ylo, yhi, y0, y1, 5);
  const inX = (v: number) => isNum(v) && v >= sx.min - 1e-12 && v <= sx.max + 1e-12;

  const grid = html`<g class="gridlines">${sy.ticks.map((t) => html`<line x1="${x0}" x2="${x1}" y1="${r1(sy(t))}" y2="${r1(sy(t))}"/>`)}${sx.ticks.map((t) => html`<line y1="${y0}" y2="${y1}" x1="${r1(sx(t))}" x2="${r1(sx(t))}"/>`)}</g>`;
  const axes = html`<g class="axis"><line x1="${x0}" x2="${x1}" y1="${y0}" y2="${y0}"/><line x1="${x0}" x2="${x0}" y1="${y0}" y2="${y1}"/>${sx.ticks.map((t) => html`<text x="${r1(sx(t))}" y="${y0 + 16}" text-anchor="middle">${sx.format(t)}</text>`)}${sy.ticks.map((t) => html`<text x="${x0 - 6}" y="${r1(sy(t)) + 4}" text-anchor="end">${sy.format(t)}</text>`)}<text class="label" x="${r1((x0 + x1) / 2)}" y="${H - 6}" text-anchor="middle">${spec.x.label}</text><text class="label" transform="translate(14 ${r1((y0 + y1) / 2)}) rotate(-90)" text-anchor="middle">${spec.y.label}</text></g>`;
  const refs = (spec.refs ?? []).map((r) => html`<line class="ref" x1="${r1(sx(r.x1))}" y1="${r1(sy(r.y1))}" x2="${r1(sx(r.x2))}" y2="${r1(sy(r.y2))}"><title>${r.label}</title></line>`);
  const vlines = (spec.vlines ?? []).filter((v) => inX(v.x)).map((v) => html`<line class="vline ${v.kind}" x1="${r1(sx(v.x))}" x2="${r1(sx(v.x))}" y1="${y0}" y2="${y1}"><title>${v.label}</title></line>`);
  const logY = !!spec.y.log;
  const bands = (spec.bands ?? []).map((b) => {
    const k = b.x.map((_, i) => i).filter((i) => isNum(b.x[i]) && isNum(b.lo[i]) && isNum(b.hi[i]));
    if (k.length < 2) return '';
    const pts = [...k.map((i) => `${r1(sx(b.x[i]))} ${r1(sy(b.lo[i]))}`), ...k.reverse().map((i) => `${r1(sx(b.x[i]))} ${r1(sy(b.hi[i]))}`)];
    return html`<path class="band f${b.colour}" data-band="${b.key}" d="M${pts.join('L')}Z"><title>${b.label}</title></path>`;
  });
  const series = spec.series.map((s) => html`<path class="series c${s.colour}${dashClass(s.dash)}" data-series="${s.key}" d="${seriesPath(s, sx, sy, logY)}"><title>${s.label}</title></path>`);
  const dots = spec.series.filter((s) => s.dots).map((s) => html`<g class="dots f${s.colour}">${s.x.map((x, i) => {
    const y = s.y[i];
    if (!isNum(x) || !isNum(y) || (logY && y <= 0)) return '';
    return html`<circle cx="${r1(sx(x))}" cy="${r1(sy(y))}" r="2.2"><title>${s.label} @ ${spec.x.format ? spec.x.format(x) : x}: ${s.format ? s.format(y) : fixed(y, 4)}</title></circle>`;
  })}</g>`);
  const markers = (spec.markers ?? []).filter((m) => isNum(m.x) && isNum(m.y)).map((m) => html`<g class="op-marker" data-op="${m.key}"><path class="f${m.colour} mk" d="${shapePath(m.shape, sx(m.x), sy(m.y), 5)}"/><title>${m.title}</title></g>`);

  const items: LegendItem[] = [
    ...spec.series.map((s): LegendItem => ({ kind: 'series', label: s.label, colour: s.colour, dash: s.dash })),
    ...(spec.bands ?? []).map((b): LegendItem => ({ kind: 'band', label: b.label, colour: b.colour })),
    ...(spec.refs ?? []).map((r): LegendItem => ({ kind: 'ref', label: r.label })),
    ...uniqueVlines(spec.vlines ?? []).map((v): LegendItem => ({ kind: 'vline', label: v.kind === 'best' ? 'best epoch' : 'LR reduced', vkind: v.kind })),
    ...(spec.markers ?? []).map((m): LegendItem => ({ kind: 'marker', label: m.label, colour: m.colour, shape: m.shape })),
  ];
  return html`<figure class="chart" data-chart="${spec.id}"><figcaption>${spec.title}</figcaption><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${spec.description ?? spec.title}">${grid}${axes}${bands}${refs}${vlines}${series}${dots}${markers}</svg>${legend(items)}</figure>`;
}

function uniqueVlines(v: VLine[]): VLine[] {
  const seen = new Set<string>();
  return v.filter((l) => !seen.has(l.kind) && (seen.add(l.kind), true));
}

export interface Slice { label: string; value: number; colour: Colour }

/** Pie with percentages on slices big enough to hold them; the legend carries the counts. */
export function pieChart(id: string, title: string, slices: Slice[], format: (v: number) => string): Html {
  const S = 200, c = S / 2, R = 88;
  const total = slices.reduce((s, x) => s + (x.value > 0 ? x.value : 0), 0);
  let body: Html[] = [];
  if (total <= 0) {
    body = [html`<circle class="empty" cx="${c}" cy="${c}" r="${R}"/><text class="pie-label muted" x="${c}" y="${c + 4}" text-anchor="middle">no patches</text>`];
  } else {
    let a = -Math.PI / 2;
    for (const s of slices) {
      if (!(s.value > 0)) continue;
      const frac = s.value / total;
      const b = a + frac * 2 * Math.PI;
      const tip = html`<title>${s.label}: ${format(s.value)} (${fixed(frac * 100, 1)}%)</title>`;
      if (frac >= 1 - 1e-12) body.push(html`<circle class="slice f${s.colour}" cx="${c}" cy="${c}" r="${R}">${tip}</circle>`);
      else {
        const large = b - a > Math.PI ? 1 : 0;
        const p = (t: number) => `${r1(c + R * Math.cos(t))} ${r1(c + R * Math.sin(t))}`;
        body.push(html`<path class="slice f${s.colour}" d="M${c} ${c}L${p(a)}A${R} ${R} 0 ${large} 1 ${p(b)}Z">${tip}</path>`);
      }
      if (frac >= 0.06) {
        const m = (a + b) / 2, lr = frac >= 1 - 1e-12 ? 0 : R * 0.6;
        body.push(html`<text class="pie-label" x="${r1(c + lr * Math.cos(m))}" y="${r1(c + lr * Math.sin(m) + 5)}" text-anchor="middle">${fixed(frac * 100, 1)}%</text>`);
      }
      a = b;
    }
  }
  return html`<figure class="chart pie" data-chart="${id}"><figcaption>${title}</figcaption><svg viewBox="0 0 ${S} ${S}" role="img" aria-label="${title}">${body}</svg>${legend(slices.map((s) => ({ kind: 'box', label: `${s.label}: ${format(s.value)}${total > 0 ? ` (${fixed((Math.max(0, s.value) / total) * 100, 1)}%)` : ''}`, colour: s.colour })))}</figure>`;
}

export interface BarRow { label: string; parts: number[] }

/** Horizontal stacked bars on one count axis, so sizes and mixes compare at a glance. */
export function stackedBars(id: string, title: string, rows: BarRow[], parts: { label: string; colour: Colour }[], format: (v: number) => string): Html {
  const W = 560, rowH = 30, gap = 12, left = 64, right = 78, top = 8;
  const H = top + rows.length * (rowH + gap) + 24;
  const maxTotal = Math.max(1, ...rows.map((r) => r.parts.reduce((s, v) => s + Math.max(0, v), 0)));
  const scale = (v: number) => (v / maxTotal) * (W - left - right);
  const bars = rows.map((row, i) => {
    const y = top + i * (rowH + gap);
    let x = left;
    const total = row.parts.reduce((s, v) => s + Math.max(0, v), 0);
    const segs = row.parts.map((v, j) => {
      const w = scale(Math.max(0, v));
      const seg = html`<rect class="f${parts[j].colour}" x="${r1(x)}" y="${y}" width="${r1(w)}" height="${rowH}"><title>${row.label} — ${parts[j].label}: ${format(v)}${total ? ` (${fixed((v / total) * 100, 1)}%)` : ''}</title></rect>${w > 46 ? html`<text class="bar-label" x="${r1(x + w / 2)}" y="${y + rowH / 2 + 4}" text-anchor="middle">${format(v)}</text>` : ''}`;
      x += w;
      return seg;
    });
    return html`<g class="bar" data-row="${row.label}"><text x="${left - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${row.label}</text>${segs}<text class="muted" x="${r1(x + 6)}" y="${y + rowH / 2 + 4}">${format(total)}</text></g>`;
  });
  return html`<figure class="chart bars" data-chart="${id}"><figcaption>${title}</figcaption><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${title}">${bars}</svg>${legend(parts.map((p) => ({ kind: 'box', label: p.label, colour: p.colour })))}</figure>`;
}
