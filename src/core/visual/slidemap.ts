import { encodeRgbPng } from './png-encode';
import { IdcError } from '../errors';
import { VIRIDIS, lutIndex, type Rgb } from './colormap';
import { GLYPH_H, drawText, textWidth } from './font';

/**
 * A patient's slide rebuilt from its 50×50 patches, with the model's view on top. The image is
 * drawn into one raw RGB buffer and PNG-encoded once by sharp: compositing 2,000 tiles through
 * sharp was ~5x slower (bench/visual.ts measures both).
 */

export type SlideLayer = 'tissue' | 'truth' | 'probability' | 'errors';
export const SLIDE_LAYERS: readonly SlideLayer[] = ['tissue', 'truth', 'probability', 'errors'];

export interface SlideTile {
  id: string;
  /** Top-left of the patch on the slide, in slide pixels (patches sit on a 50-px grid). */
  x: number;
  y: number;
  /** Ground truth, 1 = IDC(+). */
  label?: 0 | 1;
  /** Predicted probability of IDC(+). */
  score?: number;
  /** 50×50×3 RGB. */
  pixels: Uint8Array;
}

export interface SlideMapOptions {
  /** Operating threshold: score ≥ threshold is called IDC(+). */
  threshold: number;
  /**
   * Output pixels per slide pixel, snapped so a tile is a whole number of pixels (the snapped
   * value is returned). Default: the largest ≤ 1 that keeps the slide within maxWidth.
   */
  scale?: number;
  /** Width budget for the default scale (default 2000). */
  maxWidth?: number;
  /** What to draw (default all): tissue pixels, truth contour, probability tint, FN/FP outlines. */
  layers?: readonly SlideLayer[];
  /** Legend strip under the slide (default: when any overlay layer is on). */
  legend?: boolean;
}

export interface TileRect { id: string; left: number; top: number; size: number }

export interface SlideRaster {
  /** width × height × 3 RGB. */
  rgb: Buffer;
  width: number;
  height: number;
  scale: number;
  /** Slide area (top-left at 0, 0); the legend, if any, lies below it. */
  slideWidth: number;
  slideHeight: number;
  tileRects: TileRect[];
  falseNegatives: number;
  falsePositives: number;
}

export interface SlideMap { png: Buffer; width: number; height: number; scale: number; tileRects: TileRect[] }

/** Okabe–Ito vermillion / sky blue for FN / FP: distinct under the common colour-vision deficiencies. */
export const SLIDE_COLOURS = {
  background: [255, 255, 255],
  /** Tile area when the tissue layer is off. */
  noTissue: [228, 228, 228],
  /** Contour around the ground-truth IDC(+) region. */
  truth: [0, 0, 0],
  falseNegative: [213, 94, 0],
  falsePositive: [86, 180, 233],
  text: [34, 34, 34],
} as const satisfies Record<string, Rgb>;

const SIDE = 50;
const PATCH = SIDE * SIDE * 3;
/** Probability tint opacity over tissue (opaque when tissue is off). */
const TINT_ALPHA = 0.45;

/** Renders the slide map as raw RGB (what slideMap encodes). */
export function renderSlideRgb(tiles: readonly SlideTile[], opts: SlideMapOptions): SlideRaster {
  if (tiles.length === 0) throw new IdcError('The slide map has no patches to draw.', 'Pass the patient\'s patches.', 'BAD_ARGUMENT');
  if (!(opts.threshold >= 0 && opts.threshold <= 1)) throw new IdcError(`Threshold ${opts.threshold} is outside [0, 1].`, 'Use the operating threshold, e.g. 0.5.', 'BAD_ARGUMENT');
  const layers = new Set(opts.layers ?? SLIDE_LAYERS);
  for (const l of layers) {
    if (!SLIDE_LAYERS.includes(l)) throw new IdcError(`Unknown slide-map layer "${l}".`, `Use any of: ${SLIDE_LAYERS.join(', ')}.`, 'BAD_ARGUMENT');
  }
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const t of tiles) {
    if (!Number.isFinite(t.x) || !Number.isFinite(t.y)) throw new IdcError(`Patch ${t.id} has no valid position (${t.x}, ${t.y}).`, 'Pass slide coordinates in pixels.', 'BAD_ARGUMENT');
    if (t.pixels.length < PATCH) throw new IdcError(`Patch ${t.id} has ${t.pixels.length} bytes; needs ${PATCH} (50x50x3).`, 'Pass 50x50 RGB patches.', 'BAD_ARGUMENT');
    minX = Math.min(minX, t.x); minY = Math.min(minY, t.y); maxX = Math.max(maxX, t.x); maxY = Math.max(maxY, t.y);
  }
  const maxWidth = opts.maxWidth ?? 2000;
  let tile: number;
  if (opts.scale !== undefined) {
    if (!(opts.scale > 0 && opts.scale <= 8)) throw new IdcError(`Slide-map scale ${opts.scale} is outside (0, 8].`, 'Use e.g. 0.5 (half size).', 'BAD_ARGUMENT');
    tile = Math.max(1, Math.round(SIDE * opts.scale));
  } else {
    tile = Math.min(SIDE, Math.max(1, Math.floor((maxWidth * SIDE) / (maxX - minX + SIDE))));
  }
  const scale = tile / SIDE;
  const slideWidth = Math.round((maxX - minX) * scale) + tile;
  const slideHeight = Math.round((maxY - minY) * scale) + tile;

  const kind = tiles.map((t) => errorKind(t, opts.threshold));
  const counts = { falseNegatives: kind.filter((k) => k === 'fn').length, falsePositives: kind.filter((k) => k === 'fp').length };
  const wantLegend = opts.legend ?? (layers.has('truth') || layers.has('probability') || layers.has('errors'));
  const f = Math.min(3, Math.max(1, Math.round(slideWidth / 700)));
  const legend = wantLegend ? layoutLegend(layers, opts.threshold, counts, f) : undefined;
  const width = Math.max(slideWidth, legend?.width ?? 0);
  const height = slideHeight + (legend?.height ?? 0);
  if (width * height > 100e6) {
    throw new IdcError(`A ${width}x${height} slide map is too large to draw.`, 'Use a smaller scale, or leave it unset.', 'BAD_ARGUMENT');
  }
  const rgb = Buffer.alloc(width * height * 3, 255);

  const rects: TileRect[] = tiles.map((t) => ({ id: t.id, left: Math.round((t.x - minX) * scale), top: Math.round((t.y - minY) * scale), size: tile }));
  const fill = (left: number, top: number, w: number, h: number, c: Rgb) => fillRect(rgb, width, left, top, w, h, c);

  // Tissue (or a neutral tile), then the probability tint.
  const resample = resampler(tile);
  tiles.forEach((t, i) => {
    const r = rects[i];
    if (layers.has('tissue')) resample(t.pixels, rgb, width, r.left, r.top);
    else fill(r.left, r.top, tile, tile, SLIDE_COLOURS.noTissue);
    if (layers.has('probability') && hasScore(t)) {
      blendRect(rgb, width, r.left, r.top, tile, tile, VIRIDIS.subarray(lutIndex(t.score!) * 3), layers.has('tissue') ? TINT_ALPHA : 1);
    }
  });

  // Truth: a contour inside the IDC(+) tiles, on the sides that border a non-IDC(+) cell.
  const tw = Math.max(1, Math.round(tile / 16));
  if (layers.has('truth')) {
    const positive = new Set(tiles.filter((t) => t.label === 1).map((t) => `${t.x},${t.y}`));
    tiles.forEach((t, i) => {
      if (t.label !== 1) return;
      const { left, top } = rects[i];
      if (!positive.has(`${t.x},${t.y - SIDE}`)) fill(left, top, tile, tw, SLIDE_COLOURS.truth);
      if (!positive.has(`${t.x},${t.y + SIDE}`)) fill(left, top + tile - tw, tile, tw, SLIDE_COLOURS.truth);
      if (!positive.has(`${t.x - SIDE},${t.y}`)) fill(left, top, tw, tile, SLIDE_COLOURS.truth);
      if (!positive.has(`${t.x + SIDE},${t.y}`)) fill(left + tile - tw, top, tw, tile, SLIDE_COLOURS.truth);
    });
  }

  // Errors: an outline inset past the truth contour, so both stay visible.
  const ew = Math.max(1, Math.round(tile / 10));
  const inset = layers.has('truth') && 2 * (tw + ew) <= tile ? tw : 0;
  if (layers.has('errors')) kind.forEach((k, i) => {
    if (!k) return;
    const c = k === 'fn' ? SLIDE_COLOURS.falseNegative : SLIDE_COLOURS.falsePositive;
    const l = rects[i].left + inset, tp = rects[i].top + inset, s = tile - 2 * inset;
    fill(l, tp, s, ew, c); fill(l, tp + s - ew, s, ew, c); fill(l, tp, ew, s, c); fill(l + s - ew, tp, ew, s, c);
  });

  legend?.draw(rgb, width, height, slideHeight);
  return { rgb, width, height, scale, slideWidth, slideHeight, tileRects: rects, ...counts };
}

/** The slide map as PNG (see renderSlideRgb for the drawing; the slide's top-left is at 0, 0). */
export async function slideMap(tiles: readonly SlideTile[], opts: SlideMapOptions): Promise<SlideMap> {
  const r = renderSlideRgb(tiles, opts);
  // Level 3: level 1 saves little time for ~30% larger files, level 6 costs more for <1% (bench/visual.ts).
  const png = await encodeRgbPng(r.rgb, r.width, r.height, 3);
  return { png, width: r.width, height: r.height, scale: r.scale, tileRects: r.tileRects };
}

const hasScore = (t: SlideTile) => typeof t.score === 'number' && Number.isFinite(t.score);

function errorKind(t: SlideTile, threshold: number): 'fn' | 'fp' | undefined {
  if (!hasScore(t)) return undefined;
  if (t.label === 1 && t.score! < threshold) return 'fn';
  if (t.label === 0 && t.score! >= threshold) return 'fp';
  return undefined;
}

// ---------------------------------------------------------------- drawing

function fillRect(rgb: Uint8Array, stride: number, left: number, top: number, w: number, h: number, c: ArrayLike<number>): void {
  for (let y = top; y < top + h; y++) {
    for (let d = (y * stride + left) * 3, e = d + w * 3; d < e; d += 3) { rgb[d] = c[0]; rgb[d + 1] = c[1]; rgb[d + 2] = c[2]; }
  }
}

function blendRect(rgb: Uint8Array, stride: number, left: number, top: number, w: number, h: number, c: ArrayLike<number>, a: number): void {
  const r = c[0] * a, g = c[1] * a, b = c[2] * a, k = 1 - a;
  for (let y = top; y < top + h; y++) {
    for (let d = (y * stride + left) * 3, e = d + w * 3; d < e; d += 3) {
      rgb[d] = Math.round(rgb[d] * k + r); rgb[d + 1] = Math.round(rgb[d + 1] * k + g); rgb[d + 2] = Math.round(rgb[d + 2] * k + b);
    }
  }
}

/** Draws a 50×50 patch as tile×tile: box average when shrinking, nearest when enlarging. */
function resampler(tile: number): (src: Uint8Array, dst: Uint8Array, stride: number, left: number, top: number) => void {
  const s0 = new Int32Array(tile), s1 = new Int32Array(tile);
  for (let i = 0; i < tile; i++) {
    s0[i] = Math.floor((i * SIDE) / tile);
    s1[i] = Math.max(s0[i] + 1, Math.floor(((i + 1) * SIDE) / tile));
  }
  if (tile === SIDE) {
    return (src, dst, stride, left, top) => {
      for (let y = 0; y < SIDE; y++) dst.set(src.subarray(y * SIDE * 3, (y + 1) * SIDE * 3), ((top + y) * stride + left) * 3);
    };
  }
  return (src, dst, stride, left, top) => {
    for (let oy = 0; oy < tile; oy++) {
      const y0 = s0[oy], y1 = s1[oy];
      let d = ((top + oy) * stride + left) * 3;
      for (let ox = 0; ox < tile; ox++, d += 3) {
        const x0 = s0[ox], x1 = s1[ox];
        let r = 0, g = 0, b = 0;
        for (let y = y0; y < y1; y++) {
          for (let s = (y * SIDE + x0) * 3, e = (y * SIDE + x1) * 3; s < e; s += 3) { r += src[s]; g += src[s + 1]; b += src[s + 2]; }
        }
        const n = (y1 - y0) * (x1 - x0);
        dst[d] = Math.round(r / n); dst[d + 1] = Math.round(g / n); dst[d + 2] = Math.round(b / n);
      }
    }
  };
}

interface Legend {
  width: number;
  height: number;
  draw(rgb: Uint8Array, stride: number, height: number, top: number): void;
}

/** One row under the slide: probability colour bar with the threshold tick, truth and FN/FP swatches. */
function layoutLegend(layers: Set<SlideLayer>, threshold: number, counts: { falseNegatives: number; falsePositives: number }, f: number): Legend {
  const pad = 4 * f, gap = 8 * f, sw = GLYPH_H * f, barW = 100 * f;
  const items: { width: number; draw: (ctx: DrawCtx, x: number) => void }[] = [];
  const text = (s: string) => ({ width: textWidth(s, f), draw: (c: DrawCtx, x: number) => drawText(c.rgb, c.stride, c.height, s, x, c.y, f, SLIDE_COLOURS.text) });
  const row = (...parts: { width: number; draw: (c: DrawCtx, x: number) => void }[]) => {
    const sp = 3 * f;
    items.push({
      width: parts.reduce((w, p) => w + p.width, 0) + sp * (parts.length - 1),
      draw: (c, x) => { for (const p of parts) { p.draw(c, x); x += p.width + sp; } },
    });
  };
  if (layers.has('probability')) {
    const bar = {
      width: barW,
      draw: (c: DrawCtx, x: number) => {
        for (let i = 0; i < barW; i++) fillRect(c.rgb, c.stride, x + i, c.y, 1, sw, VIRIDIS.subarray(lutIndex(i / (barW - 1)) * 3));
        const tx = x + Math.round(threshold * (barW - 1));
        fillRect(c.rgb, c.stride, Math.max(x, tx - (f >> 1)), c.y - 2 * f, f, sw + 4 * f, SLIDE_COLOURS.text);
      },
    };
    row(text('P(IDC)'), text('0'), bar, text('1'), text(`T=${threshold.toFixed(2)}`));
  }
  const swatch = (colour: Rgb, border: number, inner: Rgb) => ({
    width: sw,
    draw: (c: DrawCtx, x: number) => {
      fillRect(c.rgb, c.stride, x, c.y, sw, sw, colour);
      fillRect(c.rgb, c.stride, x + border, c.y + border, sw - 2 * border, sw - 2 * border, inner);
    },
  });
  if (layers.has('truth')) row(swatch(SLIDE_COLOURS.truth, f, SLIDE_COLOURS.noTissue), text('IDC+'));
  if (layers.has('errors')) {
    row(swatch(SLIDE_COLOURS.falseNegative, 2 * f, SLIDE_COLOURS.noTissue), text(`FN ${counts.falseNegatives}`));
    row(swatch(SLIDE_COLOURS.falsePositive, 2 * f, SLIDE_COLOURS.noTissue), text(`FP ${counts.falsePositives}`));
  }
  const width = items.length ? pad * 2 + items.reduce((w, it) => w + it.width, 0) + gap * (items.length - 1) : 0;
  return {
    width,
    height: items.length ? sw + 2 * pad : 0,
    draw(rgb, stride, height, top) {
      const ctx: DrawCtx = { rgb, stride, height, y: top + pad };
      let x = pad;
      for (const it of items) { it.draw(ctx, x); x += it.width + gap; }
    },
  };
}

interface DrawCtx { rgb: Uint8Array; stride: number; height: number; y: number }
