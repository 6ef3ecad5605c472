/**
 * Confidence intervals by patient: a cluster bootstrap. Patches of one slide are correlated (same
 * stain, scanner, tissue), so resampling patches treats 40,000 patches as 40,000 independent
 * observations and gives intervals far too narrow; the independent units are patients. Each
 * resample draws as many patients as there are, with replacement, and every patch of a drawn
 * patient comes along (a patient drawn twice counts twice). Intervals are percentile intervals.
 *
 * Fast path: scores are sorted once; a resample is only a vector of per-patient multiplicities, so
 * ROC AUC, average precision and both curve bands come from one O(n) weighted pass over the sorted
 * order (tie groups handled as scikit-learn: AUC = trapezoid over distinct thresholds = Mann–Whitney
 * with ties counting 1/2, AP = sum (R_n - R_{n-1}) P_n over distinct thresholds), and thresholded
 * metrics from per-patient counts precomputed once (O(patients) per resample). Pure: no tfjs.
 */
import { Rng } from '../rng';
import { metricsFromCounts } from './operating';

/** [low, high], or null where too few resamples define the metric. */
export type Interval = [number, number] | null;

export interface BootstrapOptions {
  /** Number of resamples (default 2000). */
  resamples?: number;
  seed?: number;
  /** Two-sided level of the percentile interval (default 0.95). */
  confidence?: number;
  /** Fixed thresholds (operating points) at which recall, specificity, precision and F1 get intervals. */
  thresholds?: readonly number[];
  /** Band grid: FPR and recall at k / grid (default 100). */
  grid?: number;
  /** Below this share of resamples defining a metric, its interval is null with a warning (default 0.5). */
  minDefined?: number;
  /** Also return every resample's values (tests, diagnostics). */
  keepSamples?: boolean;
}

export interface ThresholdIntervals {
  threshold: number;
  recall: Interval;
  specificity: Interval;
  precision: Interval;
  f1: Interval;
  /** Resamples left out of each interval: no positives (recall, F1), no negatives (specificity), nothing predicted positive (precision). */
  undefinedResamples: { recall: number; specificity: number; precision: number; f1: number };
}

/** A pointwise percentile band: at each x, the interval of y over the resamples. */
export interface Band { x: number[]; lo: number[]; hi: number[] }

export interface BootstrapSamples {
  auc: Float64Array;
  averagePrecision: Float64Array;
  thresholds: { recall: Float64Array; specificity: Float64Array; precision: Float64Array; f1: Float64Array }[];
  /** TPR at FPR k / grid, resample b at [b * (grid + 1) + k]; NaN where undefined. */
  roc: Float64Array;
  /** Precision at recall (k + 1) / grid, resample b at [b * grid + k]; NaN where undefined. */
  pr: Float64Array;
}

export interface BootstrapResult {
  method: 'patient-bootstrap-percentile';
  resamples: number;
  seed: number;
  confidence: number;
  patients: number;
  /** Resamples with one class only, left out of the AUC (no positives or no negatives) and AP (no positives) intervals. */
  undefinedResamples: { auc: number; averagePrecision: number };
  auc: Interval;
  averagePrecision: Interval;
  thresholds: ThresholdIntervals[];
  /** TPR on a fixed FPR grid and precision on a fixed recall grid (precision at the highest threshold reaching that recall). */
  bands: { roc: Band | null; pr: Band | null };
  warnings: string[];
  samples?: BootstrapSamples;
}

export const BOOTSTRAP_DEFAULTS = { resamples: 2000, seed: 42, confidence: 0.95, grid: 100, minDefined: 0.5 } as const;

/** One resample: `out` (zeroed, one slot per patient) gets how often each patient was drawn in P draws. */
export function drawMultiplicities(rng: Rng, out: Int32Array): void {
  const P = out.length;
  for (let j = 0; j < P; j++) out[Math.floor(rng.next() * P)]++;
}

/** np.percentile(values, 100 q) with NumPy's default linear method; `sorted` ascending, non-empty. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  if (lo >= sorted.length - 1) return sorted[sorted.length - 1];
  const a = sorted[lo], b = sorted[lo + 1];
  return a === b ? a : a + (h - lo) * (b - a);
}

/**
 * Percentile intervals of ROC AUC, average precision, the thresholded metrics and the curve bands
 * over patient resamples. `patients[i]` names sample i's patient; patients are numbered in sorted
 * order, so the result depends on the seed and the data, not on the row order.
 */
export function patientBootstrap(labels: ArrayLike<number>, scores: ArrayLike<number>, patients: ArrayLike<string>, opts: BootstrapOptions = {}): BootstrapResult {
  const B = Math.floor(opts.resamples ?? BOOTSTRAP_DEFAULTS.resamples);
  const seed = opts.seed ?? BOOTSTRAP_DEFAULTS.seed;
  const confidence = opts.confidence ?? BOOTSTRAP_DEFAULTS.confidence;
  const G = Math.floor(opts.grid ?? BOOTSTRAP_DEFAULTS.grid);
  const minDefined = opts.minDefined ?? BOOTSTRAP_DEFAULTS.minDefined;
  const thresholds = [...(opts.thresholds ?? [])];
  const n = labels.length;
  if (scores.length !== n || patients.length !== n) throw new RangeError(`${n} labels, ${scores.length} scores, ${patients.length} patients`);
  if (!(B >= 1)) throw new RangeError(`resamples must be >= 1, got ${opts.resamples}`);
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  if (!(G >= 1)) throw new RangeError(`grid must be >= 1, got ${opts.grid}`);

  // Patients in sorted order.
  const ids = [...new Set(Array.from(patients))].sort();
  const P = ids.length;
  const code = new Map(ids.map((id, i) => [id, i]));
  const pat = new Int32Array(n);
  for (let i = 0; i < n; i++) pat[i] = code.get(patients[i])!;

  // One global sort, descending; tie groups end where the next score differs.
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s[i] = scores[i] + 0;
    if (!Number.isFinite(s[i])) throw new RangeError(`score ${i} is ${scores[i]}: scores must be finite`);
  }
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => s[b] - s[a]);
  // code = 2 * patient + label, so a resample's weights are two lookups with no branch.
  const sCode = new Int32Array(n);
  const last = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const j = order[i];
    sCode[i] = 2 * pat[j] + (labels[j] === 1 ? 1 : 0);
    last[i] = i === n - 1 || s[order[i + 1]] !== s[j] ? 1 : 0;
  }

  // Per-patient class totals and counts at each fixed threshold (score >= t predicts positive).
  const T = thresholds.length;
  const posP = new Float64Array(P), negP = new Float64Array(P);
  const tpP = new Float64Array(T * P), fpP = new Float64Array(T * P);
  for (let i = 0; i < n; i++) {
    const p = pat[i], y = labels[i] === 1;
    if (y) posP[p]++; else negP[p]++;
    for (let t = 0; t < T; t++) {
      if (s[i] >= thresholds[t]) { if (y) tpP[t * P + p]++; else fpP[t * P + p]++; }
    }
  }

  const auc = new Float64Array(B), ap = new Float64Array(B);
  const tm = thresholds.map(() => ({ recall: new Float64Array(B), specificity: new Float64Array(B), precision: new Float64Array(B), f1: new Float64Array(B) }));
  const R = G + 1;
  const roc = new Float64Array(B * R).fill(NaN);
  const pr = new Float64Array(B * G).fill(NaN);
  const m = new Int32Array(P);
  const wPos = new Float64Array(2 * P), wNeg = new Float64Array(2 * P);
  const rng = new Rng(seed);

  for (let b = 0; b < B; b++) {
    m.fill(0);
    drawMultiplicities(rng, m);
    let Pw = 0, Nw = 0;
    for (let p = 0; p < P; p++) { Pw += m[p] * posP[p]; Nw += m[p] * negP[p]; }

    for (let t = 0; t < T; t++) {
      let tp = 0, fp = 0;
      const o = t * P;
      for (let p = 0; p < P; p++) { tp += m[p] * tpP[o + p]; fp += m[p] * fpP[o + p]; }
      const x = metricsFromCounts({ tp, fp, tn: Nw - fp, fn: Pw - tp }, thresholds[t]);
      tm[t].recall[b] = Pw ? x.recall : NaN;
      tm[t].specificity[b] = Nw ? x.specificity : NaN;
      tm[t].precision[b] = tp + fp ? x.precision : NaN;
      tm[t].f1[b] = Pw ? x.f1 : NaN;
    }

    if (!Pw) { auc[b] = NaN; ap[b] = NaN; continue; }
    const both = Nw > 0;
    for (let p = 0; p < P; p++) { wPos[2 * p + 1] = m[p]; wNeg[2 * p] = m[p]; }
    // Branch-free over patches: patients not drawn weigh 0 and add nothing. Weighted counts are
    // integers well below 2^53, so the AUC's pair count is exact.
    let cTP = 0, cFP = 0, gp = 0, gn = 0, pairs2 = 0, apSum = 0, kr = 0, kp = 1;
    const ro = b * R, po = b * G - 1;
    for (let i = 0; i < n; i++) {
      const c = sCode[i];
      gp += wPos[c]; gn += wNeg[c];
      if (last[i] === 0) continue;
      const nTP = cTP + gp, nFP = cFP + gn, den = nTP + nFP;
      pairs2 += gn * (cTP + nTP);
      const prec = nTP / (den === 0 ? 1 : den);
      apSum += gp * prec;
      // Recall grid points reached by this group get its precision.
      while (kp <= G && nTP * G >= kp * Pw) { pr[po + kp] = prec; kp++; }
      // FPR grid points in [old FPR, new FPR): the previous point is the last with fpr <= g, then linear.
      while (kr <= G && kr * Nw < nFP * G) {
        const x0 = cFP / Nw, x1 = nFP / Nw, y0 = cTP / Pw, y1 = nTP / Pw;
        roc[ro + kr] = y0 + ((y1 - y0) * (kr / G - x0)) / (x1 - x0);
        kr++;
      }
      cTP = nTP; cFP = nFP; gp = 0; gn = 0;
    }
    if (both) { for (; kr <= G; kr++) roc[ro + kr] = cTP / Pw; }
    auc[b] = both ? pairs2 / (2 * Pw * Nw) : NaN;
    ap[b] = apSum / Pw;
  }

  const warnings: string[] = [];
  if (P === 1) warnings.push('1 patient: every resample is that same patient, so the intervals say nothing about other patients.');
  else if (P < 10) warnings.push(`Only ${P} patients: intervals from so few patients are rough.`);
  const q = (1 - confidence) / 2;
  const need = minDefined * B;
  const interval = (v: Float64Array, what?: string): { iv: Interval; undef: number } => {
    const ok = v.filter((x) => !Number.isNaN(x)).sort();
    const undef = B - ok.length;
    if (ok.length === 0 || ok.length < need) {
      if (what) warnings.push(`${what}: only ${ok.length} of ${B} resamples define it (both classes needed); no interval.`);
      return { iv: null, undef };
    }
    return { iv: [percentile(ok, q), percentile(ok, 1 - q)], undef };
  };
  const a = interval(auc, 'ROC AUC');
  const apI = interval(ap, 'Average precision');
  const band = (rows: Float64Array, width: number, x: number[]): Band => {
    const col = new Float64Array(B);
    const lo: number[] = [], hi: number[] = [];
    for (let k = 0; k < width; k++) {
      let c = 0;
      for (let bb = 0; bb < B; bb++) { const v = rows[bb * width + k]; if (!Number.isNaN(v)) col[c++] = v; }
      const sorted = col.subarray(0, c).sort();
      lo.push(percentile(sorted, q));
      hi.push(percentile(sorted, 1 - q));
    }
    return { x, lo, hi };
  };
  const result: BootstrapResult = {
    method: 'patient-bootstrap-percentile', resamples: B, seed, confidence, patients: P,
    undefinedResamples: { auc: a.undef, averagePrecision: apI.undef },
    auc: a.iv, averagePrecision: apI.iv,
    thresholds: thresholds.map((t, j) => {
      const r = interval(tm[j].recall), sp = interval(tm[j].specificity), pc = interval(tm[j].precision), f = interval(tm[j].f1);
      const none = [['recall', r], ['specificity', sp], ['precision', pc], ['F1', f]].filter(([, x]) => (x as { iv: Interval }).iv === null).map(([k]) => k);
      if (none.length) warnings.push(`At threshold ${t}: too few resamples define ${none.join(', ')}; no interval.`);
      return { threshold: t, recall: r.iv, specificity: sp.iv, precision: pc.iv, f1: f.iv, undefinedResamples: { recall: r.undef, specificity: sp.undef, precision: pc.undef, f1: f.undef } };
    }),
    bands: {
      roc: a.iv ? band(roc, R, Array.from({ length: R }, (_, k) => k / G)) : null,
      pr: apI.iv ? band(pr, G, Array.from({ length: G }, (_, k) => (k + 1) / G)) : null,
    },
    warnings,
  };
  if (opts.keepSamples) result.samples = { auc, averagePrecision: ap, thresholds: tm, roc, pr };
  return result;
}
