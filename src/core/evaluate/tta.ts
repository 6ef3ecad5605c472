import type { EvaluateConfig } from '../config';

export type TtaMode = EvaluateConfig['tta'];

const SIDE = 50;
type Coord = (r: number, c: number) => [number, number];
const L = SIDE - 1;
/** The dihedral group of the square: flips first, so "flips" is the first four. */
const VIEWS: readonly Coord[] = [
  (r, c) => [r, c], (r, c) => [r, L - c], (r, c) => [L - r, c], (r, c) => [L - r, L - c],
  (r, c) => [c, r], (r, c) => [c, L - r], (r, c) => [L - c, r], (r, c) => [L - c, L - r],
];

export function ttaViews(mode: TtaMode): number {
  return mode === 'dihedral' ? 8 : mode === 'flips' ? 4 : 1;
}

let maps: Uint16Array[] | undefined;
/** For each view, the source pixel of every destination pixel. */
function viewMaps(): Uint16Array[] {
  return (maps ??= VIEWS.map((f) => {
    const m = new Uint16Array(SIDE * SIDE);
    for (let r = 0; r < SIDE; r++) for (let c = 0; c < SIDE; c++) { const [sr, sc] = f(r, c); m[r * SIDE + c] = sr * SIDE + sc; }
    return m;
  }));
}

/** Writes view `v` of n patches (n x 50 x 50 x 3) into `out`. */
export function viewOf<T extends Float32Array | Uint8Array>(x: T, n: number, v: number, out: T): T {
  const m = viewMaps()[v];
  for (let i = 0; i < n; i++) {
    const base = i * SIDE * SIDE * 3;
    for (let p = 0; p < SIDE * SIDE; p++) {
      const s = base + m[p] * 3, d = base + p * 3;
      out[d] = x[s]; out[d + 1] = x[s + 1]; out[d + 2] = x[s + 2];
    }
  }
  return out;
}

/**
 * Test-time augmentation around any scorer: the mean probability over the patch's flips (4) or
 * all 8 flips and right-angle rotations. Tissue has no orientation, so every view is as valid as
 * the scanned one; averaging smooths out the model's orientation-specific mistakes.
 */
export function withTta(predict: (x: Float32Array, n: number) => Promise<Float32Array>, mode: TtaMode): (x: Float32Array, n: number) => Promise<Float32Array> {
  const views = ttaViews(mode);
  if (views === 1) return predict;
  let buf = new Float32Array(0);
  return async (x, n) => {
    if (buf.length < n * 7500) buf = new Float32Array(n * 7500);
    const sum = new Float64Array(n);
    // The identity view first: `x` may be reused by the caller, so read it before anything else.
    const first = await predict(x, n);
    for (let i = 0; i < n; i++) sum[i] = first[i];
    for (let v = 1; v < views; v++) {
      const p = await predict(viewOf(x, n, v, buf), n);
      for (let i = 0; i < n; i++) sum[i] += p[i];
    }
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = sum[i] / views;
    return out;
  };
}
