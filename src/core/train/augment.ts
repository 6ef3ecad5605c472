import { PATCH_SIZE } from '../naming';
import type { Rng } from '../rng';
import { drawStainJitter, stainJitterPatch, type StainJitterOptions } from './stain';

export interface AugmentOptions {
  flipHorizontal: boolean;
  flipVertical: boolean;
  rotate: number;
  /** HED stain jitter; off when absent or both amounts are 0. */
  stainJitter?: StainJitterOptions;
}

const S = PATCH_SIZE;
const PIXELS = S * S;

/** Mirror index into [0, n) as Keras' fill_mode='reflect' (d c b a | a b c d | d c b a). */
function reflect(i: number, n: number): number {
  const period = 2 * n;
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

/**
 * One batch's random draws, AUGMENT_PARAMS per patch: flip horizontally (0/1), flip vertically
 * (0/1), rotation in radians, then each stain's scale α (3) and shift β (3); α = 1, β = 0 without
 * stain jitter. Drawn per patch in this order from `rng`, so a replayed epoch augments the same way,
 * and the torch engine, which applies them on its device, sees the draws this process would use.
 */
export const AUGMENT_PARAMS = 9;

function geometryOn(opts: AugmentOptions): boolean {
  return opts.flipHorizontal || opts.flipVertical || opts.rotate > 0;
}

function stainJitterOn(opts: AugmentOptions): boolean {
  return !!opts.stainJitter && (opts.stainJitter.scale > 0 || opts.stainJitter.shift > 0);
}

export function drawAugmentation(n: number, opts: AugmentOptions, rng: Rng, out = new Float64Array(n * AUGMENT_PARAMS)): Float64Array {
  const stain = stainJitterOn(opts) ? opts.stainJitter : undefined;
  for (let b = 0; b < n; b++) {
    const o = b * AUGMENT_PARAMS;
    out[o] = opts.flipHorizontal && rng.next() < 0.5 ? 1 : 0;
    out[o + 1] = opts.flipVertical && rng.next() < 0.5 ? 1 : 0;
    out[o + 2] = opts.rotate > 0 ? rng.uniform(-opts.rotate, opts.rotate) * 2 * Math.PI : 0;
    const d = stain ? drawStainJitter(stain, rng) : { alpha: [1, 1, 1], beta: [0, 0, 0] };
    out.set(d.alpha, o + 3);
    out.set(d.beta, o + 6);
  }
  return out;
}

/** One batch's draws with the switches a trainer that applies them needs (CacheRowTrainer.trainRows). */
export function drawnAugmentation(n: number, opts: AugmentOptions, rng: Rng, out = new Float64Array(n * AUGMENT_PARAMS)): { augment: Float64Array; geometry: boolean; stain: boolean } {
  return { augment: drawAugmentation(n, opts, rng, out), geometry: geometryOn(opts), stain: stainJitterOn(opts) };
}

/**
 * Augmentation of a uint8 NHWC batch into float32 in [0, 1]: random flips and a rotation by up to
 * ±rotate turns (Keras RandomRotation: bilinear, reflect fill), then optional HED stain jitter.
 */
export function augmentToFloat(x: Uint8Array, n: number, opts: AugmentOptions, rng: Rng, out = new Float32Array(n * PIXELS * 3)): Float32Array {
  return applyAugmentation(x, n, drawAugmentation(n, opts, rng), stainJitterOn(opts), out);
}

/** Applies drawn parameters (drawAugmentation) to a uint8 NHWC batch, into float32 in [0, 1]. */
export function applyAugmentation(x: Uint8Array, n: number, params: Float64Array, stain: boolean, out = new Float32Array(n * PIXELS * 3)): Float32Array {
  const c = (S - 1) / 2;
  for (let b = 0; b < n; b++) {
    const o = b * AUGMENT_PARAMS;
    geometry(b, params[o] === 1, params[o + 1] === 1, params[o + 2]);
    if (stain) stainJitterPatch(out, b * PIXELS * 3, PIXELS, { alpha: params.subarray(o + 3, o + 6), beta: params.subarray(o + 6, o + 9) });
  }
  return out;

  function geometry(b: number, fh: boolean, fv: boolean, angle: number): void {
    const base = b * PIXELS * 3;
    if (angle === 0) {
      for (let yy = 0; yy < S; yy++) {
        const sy = fv ? S - 1 - yy : yy;
        for (let xx = 0; xx < S; xx++) {
          const sx = fh ? S - 1 - xx : xx;
          const src = base + (sy * S + sx) * 3;
          const dst = base + (yy * S + xx) * 3;
          out[dst] = x[src] / 255;
          out[dst + 1] = x[src + 1] / 255;
          out[dst + 2] = x[src + 2] / 255;
        }
      }
      return;
    }
    const cos = Math.cos(angle), sin = Math.sin(angle);
    for (let yy = 0; yy < S; yy++) {
      for (let xx = 0; xx < S; xx++) {
        // Inverse map the output pixel into the (flipped) source.
        const dx = xx - c, dy = yy - c;
        let sx = cos * dx + sin * dy + c;
        let sy = -sin * dx + cos * dy + c;
        if (fh) sx = S - 1 - sx;
        if (fv) sy = S - 1 - sy;
        const x0 = Math.floor(sx), y0 = Math.floor(sy);
        const ax = sx - x0, ay = sy - y0;
        const xa = reflect(x0, S), xb = reflect(x0 + 1, S), ya = reflect(y0, S), yb = reflect(y0 + 1, S);
        const p00 = base + (ya * S + xa) * 3, p01 = base + (ya * S + xb) * 3, p10 = base + (yb * S + xa) * 3, p11 = base + (yb * S + xb) * 3;
        const dst = base + (yy * S + xx) * 3;
        for (let ch = 0; ch < 3; ch++) {
          const top = x[p00 + ch] * (1 - ax) + x[p01 + ch] * ax;
          const bottom = x[p10 + ch] * (1 - ax) + x[p11 + ch] * ax;
          out[dst + ch] = (top * (1 - ay) + bottom * ay) / 255;
        }
      }
    }
  }
}

export function toFloat(x: Uint8Array, n: number, out = new Float32Array(n * PIXELS * 3)): Float32Array {
  for (let i = 0; i < n * PIXELS * 3; i++) out[i] = x[i] / 255;
  return out;
}
