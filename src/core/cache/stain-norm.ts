/**
 * Per-slide stain normalization (Macenko et al. 2009, "A method for normalizing histology slides
 * for quantitative analysis"): estimate a slide's haematoxylin and eosin optical-density vectors
 * and stain amounts from its own pixels, then re-express every pixel with a reference slide's
 * stains. Slides then differ in tissue, not in stain batch or scanner.
 *
 * One slide's whole map is linear in optical density (OD = -ln(I/255)): OD' = T·OD with
 * T = E_ref·diag(maxC_ref / maxC)·pinv(E), a 3x3 matrix per slide. The residual outside the
 * H/E plane is dropped, as Macenko's method does.
 */

export interface StainEstimate {
  /** Unit OD vectors of haematoxylin and eosin, RGB. */
  he: [[number, number, number], [number, number, number]];
  /** 99th percentile of each stain's amount over the slide's tissue pixels. */
  maxC: [number, number];
  /** Tissue pixels the estimate used. */
  pixels: number;
}

/**
 * The reference most implementations share (staintools, torchstain): a typical H&E slide.
 * Fixed, so a model trained on normalized slides scores normalized slides of any later archive.
 */
export const MACENKO_REFERENCE: StainEstimate = {
  he: [[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]],
  maxC: [1.9705, 1.0308],
  pixels: 0,
};

/** Pixels with OD below this in any channel are background (glass), as in Macenko's paper. */
const OD_TISSUE = 0.15;
const ALPHA = 1; // percentile of the angle range, robust to outliers
/** Fewer tissue pixels than this (a slide of a few blank patches): no reliable estimate. */
export const MIN_TISSUE_PIXELS = 2000;

const OD_LUT = (() => {
  const t = new Float64Array(256);
  for (let v = 0; v < 256; v++) t[v] = -Math.log(Math.max(v, 1) / 255);
  return t;
})();

/** Pixels of one 50x50 patch: the sample takes the same positions in each. */
const PATCH_PIXELS = 2500;

/**
 * Estimates a slide's stains from RGB uint8 pixels (NHWC, any number of 50x50 patches); samples at
 * most about `maxPixels` of them, evenly. The same positions in every patch, so the sample (and the
 * estimate) does not depend on the patches' order: a folder scored by `predict` and the same slide
 * in the cache get one estimate. Undefined when the slide has too little tissue or its colours do
 * not span two stains.
 */
export function estimateStains(rgb: Uint8Array, maxPixels = 200_000): StainEstimate | undefined {
  const total = rgb.length / 3;
  const step = Math.max(1, Math.ceil(total / maxPixels));
  const od = new Float64Array((Math.ceil(total / PATCH_PIXELS) * Math.ceil(PATCH_PIXELS / step)) * 3);
  let n = 0;
  for (let start = 0; start < total; start += PATCH_PIXELS) {
    const end = Math.min(start + PATCH_PIXELS, total);
    for (let p = start; p < end; p += step) {
      const a = OD_LUT[rgb[p * 3]], b = OD_LUT[rgb[p * 3 + 1]], c = OD_LUT[rgb[p * 3 + 2]];
      if (a > OD_TISSUE && b > OD_TISSUE && c > OD_TISSUE) { od[n * 3] = a; od[n * 3 + 1] = b; od[n * 3 + 2] = c; n++; }
    }
  }
  if (n < MIN_TISSUE_PIXELS) return undefined;
  // Plane of the two largest principal directions of the OD cloud (Macenko uses the covariance).
  const mean = [0, 0, 0];
  for (let i = 0; i < n; i++) for (let k = 0; k < 3; k++) mean[k] += od[i * 3 + k] / n;
  const cov = new Array(9).fill(0);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < 3; r++) for (let c = r; c < 3; c++) cov[r * 3 + c] += (od[i * 3 + r] - mean[r]) * (od[i * 3 + c] - mean[c]);
  }
  for (let r = 0; r < 3; r++) for (let c = 0; c < r; c++) cov[r * 3 + c] = cov[c * 3 + r];
  const { values, vectors } = symmetricEigen3(cov.map((v) => v / (n - 1)));
  const order = [0, 1, 2].sort((i, j) => values[j] - values[i]);
  const v1 = column(vectors, order[0]), v2 = column(vectors, order[1]);
  // Eigenvector signs are arbitrary; stains have positive OD, so point both into the cloud.
  if (v1[0] + v1[1] + v1[2] < 0) v1.forEach((_, k) => (v1[k] = -v1[k]));
  if (dot(v2, mean) < 0) v2.forEach((_, k) => (v2[k] = -v2[k]));
  const phi = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = od[i * 3] * v1[0] + od[i * 3 + 1] * v1[1] + od[i * 3 + 2] * v1[2];
    const y = od[i * 3] * v2[0] + od[i * 3 + 1] * v2[1] + od[i * 3 + 2] * v2[2];
    phi[i] = Math.atan2(y, x);
  }
  phi.sort();
  const lo = percentileSorted(phi, ALPHA), hi = percentileSorted(phi, 100 - ALPHA);
  const vMin = unit(v1.map((a, k) => a * Math.cos(lo) + v2[k] * Math.sin(lo)));
  const vMax = unit(v1.map((a, k) => a * Math.cos(hi) + v2[k] * Math.sin(hi)));
  // Haematoxylin absorbs more red than eosin does.
  const he: StainEstimate['he'] = vMin[0] > vMax[0] ? [vMin, vMax] : [vMax, vMin];
  if (he.some((v) => v.some((x) => !(x > 0))) || Math.abs(dot(he[0], he[1])) > 0.995) return undefined;
  const pinv = pseudoInverse(he);
  const c0 = new Float64Array(n), c1 = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = od[i * 3], b = od[i * 3 + 1], c = od[i * 3 + 2];
    c0[i] = pinv[0] * a + pinv[1] * b + pinv[2] * c;
    c1[i] = pinv[3] * a + pinv[4] * b + pinv[5] * c;
  }
  const maxC: [number, number] = [percentileSorted(c0.sort(), 99), percentileSorted(c1.sort(), 99)];
  if (!(maxC[0] > 1e-3 && maxC[1] > 1e-3)) return undefined;
  return { he, maxC, pixels: n };
}

/** T (row-major 3x3) mapping a slide's OD onto the reference's: OD' = T·OD. */
export function normalizationMatrix(source: StainEstimate, reference: StainEstimate = MACENKO_REFERENCE): number[] {
  const pinv = pseudoInverse(source.he); // 2x3
  const s = [reference.maxC[0] / source.maxC[0], reference.maxC[1] / source.maxC[1]];
  const t = new Array(9).fill(0);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) {
    t[r * 3 + c] = reference.he[0][r] * s[0] * pinv[c] + reference.he[1][r] * s[1] * pinv[3 + c];
  }
  return t;
}

/** exp(-od)·255 for od in [0, OD_MAX) at 1/1024 steps: within 0.13 grey levels of the exact value. */
const EXP_STEPS = 1024;
const OD_MAX = 8;
const EXP_LUT = (() => {
  const t = new Uint8Array(OD_MAX * EXP_STEPS + 1);
  for (let i = 0; i < t.length; i++) t[i] = Math.round(255 * Math.exp(-(i / EXP_STEPS)));
  return t;
})();

/** Applies T to `count` pixels of RGB uint8 data in place, from pixel `first`. */
export function applyOdMatrix(rgb: Uint8Array, t: readonly number[], first = 0, count = rgb.length / 3 - first): void {
  const [t0, t1, t2, t3, t4, t5, t6, t7, t8] = t;
  const maxIndex = EXP_LUT.length - 1;
  const end = (first + count) * 3;
  for (let p = first * 3; p < end; p += 3) {
    const a = OD_LUT[rgb[p]], b = OD_LUT[rgb[p + 1]], c = OD_LUT[rgb[p + 2]];
    rgb[p] = EXP_LUT[lutIndex(t0 * a + t1 * b + t2 * c, maxIndex)];
    rgb[p + 1] = EXP_LUT[lutIndex(t3 * a + t4 * b + t5 * c, maxIndex)];
    rgb[p + 2] = EXP_LUT[lutIndex(t6 * a + t7 * b + t8 * c, maxIndex)];
  }
}

/**
 * The tables applyOdMatrix uses, for another engine to apply the same maps bit for bit (the torch
 * engine's rows.py): Python's log differs from V8's in the last bit for some grey levels.
 */
export function stainLookupTables(): { odLut: number[]; expLut: number[] } {
  return { odLut: Array.from(OD_LUT), expLut: Array.from(EXP_LUT) };
}

function lutIndex(od: number, maxIndex: number): number {
  if (!(od > 0)) return 0; // also NaN-proof
  const i = (od * EXP_STEPS + 0.5) | 0;
  return i > maxIndex ? maxIndex : i;
}

/** numpy.percentile's default (linear) on sorted data. */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  const pos = ((sorted.length - 1) * q) / 100;
  const i = Math.floor(pos), f = pos - i;
  return i + 1 < sorted.length ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
}

/** Eigen-decomposition of a symmetric 3x3 matrix (cyclic Jacobi); vectors are the columns. */
export function symmetricEigen3(m: readonly number[]): { values: number[]; vectors: number[] } {
  const a = m.slice();
  const v = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  for (let sweep = 0; sweep < 50; sweep++) {
    const off = a[1] * a[1] + a[2] * a[2] + a[5] * a[5];
    if (off < 1e-30) break;
    for (const [p, q] of [[0, 1], [0, 2], [1, 2]]) {
      const apq = a[p * 3 + q];
      if (Math.abs(apq) < 1e-300) continue;
      const theta = (a[q * 3 + q] - a[p * 3 + p]) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1), s = t * c;
      for (let k = 0; k < 3; k++) { // A ← Jᵀ A J, columns then rows
        const akp = a[k * 3 + p], akq = a[k * 3 + q];
        a[k * 3 + p] = c * akp - s * akq;
        a[k * 3 + q] = s * akp + c * akq;
      }
      for (let k = 0; k < 3; k++) {
        const apk = a[p * 3 + k], aqk = a[q * 3 + k];
        a[p * 3 + k] = c * apk - s * aqk;
        a[q * 3 + k] = s * apk + c * aqk;
      }
      for (let k = 0; k < 3; k++) {
        const vkp = v[k * 3 + p], vkq = v[k * 3 + q];
        v[k * 3 + p] = c * vkp - s * vkq;
        v[k * 3 + q] = s * vkp + c * vkq;
      }
    }
  }
  return { values: [a[0], a[4], a[8]], vectors: v };
}

/** Moore–Penrose inverse of the 3x2 matrix whose columns are two stain vectors: 2x3, row-major. */
function pseudoInverse(he: StainEstimate['he']): number[] {
  const [h, e] = he;
  const hh = dot(h, h), he_ = dot(h, e), ee = dot(e, e);
  const det = hh * ee - he_ * he_;
  // (EᵀE)⁻¹Eᵀ
  return [
    ...[0, 1, 2].map((k) => (ee * h[k] - he_ * e[k]) / det),
    ...[0, 1, 2].map((k) => (hh * e[k] - he_ * h[k]) / det),
  ];
}

function column(m: readonly number[], j: number): [number, number, number] {
  return [m[j], m[3 + j], m[6 + j]];
}

function dot(a: readonly number[], b: readonly number[]): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

function unit(v: number[]): [number, number, number] {
  const l = Math.hypot(v[0], v[1], v[2]);
  return [v[0] / l, v[1] / l, v[2] / l];
}
