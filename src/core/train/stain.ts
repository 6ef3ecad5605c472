import type { Rng } from '../rng';

/**
 * H&E colour deconvolution (Ruifrok & Johnston 2001) with scikit-image's stain matrix and units,
 * so `rgb2hed`/`hed2rgb` here agree with skimage.color's. Rows are the OD vectors of
 * haematoxylin, eosin and DAB.
 */
export const RGB_FROM_HED: readonly number[] = [
  0.65, 0.70, 0.29,
  0.07, 0.99, 0.11,
  0.27, 0.57, 0.78,
];
export const HED_FROM_RGB: readonly number[] = invert3(RGB_FROM_HED);
/** skimage divides optical density by -log(1e-6), so stain amounts are small numbers. */
const LOG_ADJUST = Math.log(1e-6);

export function invert3(m: readonly number[]): number[] {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (Math.abs(det) < 1e-12) throw new Error('singular stain matrix');
  return [A / det, -(b * i - c * h) / det, (b * f - c * e) / det, B / det, (a * i - c * g) / det, -(a * f - c * d) / det, C / det, -(a * h - b * g) / det, (a * e - b * d) / det];
}

/** RGB in [0, 1] to stain amounts, as skimage.color.rgb2hed. */
export function rgb2hed(rgb: readonly number[]): [number, number, number] {
  const od = rgb.map((v) => Math.log(Math.max(v, 1e-6)) / LOG_ADJUST);
  const m = HED_FROM_RGB;
  return [0, 1, 2].map((j) => od[0] * m[j] + od[1] * m[3 + j] + od[2] * m[6 + j]) as [number, number, number];
}

/** Stain amounts to RGB in [0, 1], as skimage.color.hed2rgb. */
export function hed2rgb(hed: readonly number[]): [number, number, number] {
  const m = RGB_FROM_HED;
  return [0, 1, 2].map((j) => {
    const logRgb = -(hed[0] * m[j] + hed[1] * m[3 + j] + hed[2] * m[6 + j]) * -LOG_ADJUST;
    return Math.min(1, Math.max(0, Math.exp(logRgb)));
  }) as [number, number, number];
}

export interface StainJitterOptions {
  /** Each stain's amount is multiplied by a factor drawn from [1 - scale, 1 + scale]. */
  scale: number;
  /** ... and shifted by an amount drawn from [-shift, shift] (skimage HED units). */
  shift: number;
}

/** One patch's draws: each stain's scale α and shift β (skimage HED units). */
export interface StainJitterDraw { alpha: ArrayLike<number>; beta: ArrayLike<number> }

/** Three scales, then three shifts (none drawn when shift is 0): the order replays must keep. */
export function drawStainJitter(opts: StainJitterOptions, rng: Rng): StainJitterDraw {
  const alpha = [0, 1, 2].map(() => rng.uniform(1 - opts.scale, 1 + opts.scale));
  const beta = [0, 1, 2].map(() => (opts.shift > 0 ? rng.uniform(-opts.shift, opts.shift) : 0));
  return { alpha, beta };
}

/**
 * HED colour augmentation (Tellez et al. 2018, "Whole-slide mitosis detection in H&E breast
 * histology using PHH3 as a reference"; compared across centres in Tellez et al. 2019): one
 * random scale and shift per stain per patch, so a model sees stain batches and scanners that its
 * training slides did not have. Works in place on float RGB in [0, 1], NHWC, one patch at a time.
 *
 * The whole map is affine in optical density, so it folds into one 3x3 matrix and an offset per
 * patch: OD' = OD·(H·diag(α)·R) + β·R·k, with H = HED_FROM_RGB, R = RGB_FROM_HED. The torch
 * engine applies the same map on its device (idc_torch/rows.py).
 */
export function stainJitterPatch(px: Float32Array, offset: number, pixels: number, draw: StainJitterDraw): void {
  const { alpha, beta } = draw;
  const H = HED_FROM_RGB, R = RGB_FROM_HED;
  // M[i][j] = Σ_k H[i][k]·α_k·R[k][j]; in skimage units OD is scaled by 1/LOG_ADJUST on the way in
  // and back out by the same, so only the shift carries the factor.
  const M = new Float64Array(9);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
    let s = 0;
    for (let k = 0; k < 3; k++) s += H[i * 3 + k] * alpha[k] * R[k * 3 + j];
    M[i * 3 + j] = s;
  }
  // Shift in natural-log OD units: β (skimage units) · R · -LOG_ADJUST.
  const b = [0, 1, 2].map((j) => -LOG_ADJUST * (beta[0] * R[j] + beta[1] * R[3 + j] + beta[2] * R[6 + j]));
  const end = offset + pixels * 3;
  for (let p = offset; p < end; p += 3) {
    // Natural-log optical density; 1e-6 as skimage clips.
    const o0 = -Math.log(Math.max(px[p], 1e-6)), o1 = -Math.log(Math.max(px[p + 1], 1e-6)), o2 = -Math.log(Math.max(px[p + 2], 1e-6));
    for (let j = 0; j < 3; j++) {
      const od = o0 * M[j] + o1 * M[3 + j] + o2 * M[6 + j] + b[j];
      const v = Math.exp(-od);
      px[p + j] = v > 1 ? 1 : v < 0 ? 0 : v;
    }
  }
}
