/**
 * Calibration: does a score of 0.8 mean IDC 80 % of the time? A reliability diagram (equal-width
 * bins), the expected calibration error and the Brier score; and temperature scaling (Guo et al.
 * 2017), one parameter T > 0 fitted on validation patients: p' = sigmoid(logit(p) / T). It is
 * monotone, so rankings, ROC AUC and AP are unchanged; only what the probabilities claim moves.
 */

export interface ReliabilityBin {
  /** The bin is [lo, hi); the last one is [lo, 1]. */
  lo: number;
  hi: number;
  count: number;
  /** Mean score in the bin; null when empty. */
  meanPredicted: number | null;
  /** Share of positives in the bin; null when empty. */
  observedRate: number | null;
}

export interface CalibrationSummary {
  n: number;
  bins: ReliabilityBin[];
  /** Expected calibration error: sum over bins of count / n * |observed rate − mean score|. */
  ece: number;
  /** Mean squared error of the probability, as scikit-learn's brier_score_loss. */
  brier: number;
}

/** Reliability diagram, ECE and Brier score; a score p falls in bin min(bins − 1, floor(p · bins)). */
export function calibrationSummary(labels: ArrayLike<number>, scores: ArrayLike<number>, bins = 10): CalibrationSummary {
  const n = labels.length;
  if (scores.length !== n) throw new RangeError(`${n} labels but ${scores.length} scores`);
  const count = new Float64Array(bins), sum = new Float64Array(bins), pos = new Float64Array(bins);
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const p = scores[i], y = labels[i] === 1 ? 1 : 0;
    const k = Math.min(bins - 1, Math.max(0, Math.floor(p * bins)));
    count[k]++; sum[k] += p; pos[k] += y;
    sq += (y - p) * (y - p);
  }
  let ece = 0;
  const out: ReliabilityBin[] = [];
  for (let k = 0; k < bins; k++) {
    const c = count[k];
    const meanPredicted = c ? sum[k] / c : null;
    const observedRate = c ? pos[k] / c : null;
    if (c) ece += (c / n) * Math.abs(observedRate! - meanPredicted!);
    out.push({ lo: k / bins, hi: (k + 1) / bins, count: c, meanPredicted, observedRate });
  }
  return { n, bins: out, ece: n ? ece : NaN, brier: n ? sq / n : NaN };
}

/**
 * Only exact 0 and 1 (a float32 sigmoid saturates) are moved inside (0, 1), to the nearest doubles,
 * so distinct scores keep distinct logits and the transform keeps their order.
 */
const logit = (p: number): number => {
  const q = p <= 0 ? Number.MIN_VALUE : p >= 1 ? 1 - 2 ** -53 : p;
  return Math.log(q / (1 - q));
};
const softplus = (x: number): number => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

/** Mean negative log-likelihood of sigmoid(logit(p) / T). */
export function temperatureNll(labels: ArrayLike<number>, scores: ArrayLike<number>, temperature: number): number {
  let s = 0;
  for (let i = 0; i < labels.length; i++) {
    const z = logit(scores[i]) / temperature;
    s += softplus(labels[i] === 1 ? -z : z);
  }
  return s / labels.length;
}

export function applyTemperature(scores: ArrayLike<number>, temperature: number): Float64Array {
  const out = new Float64Array(scores.length);
  for (let i = 0; i < scores.length; i++) out[i] = 1 / (1 + Math.exp(-logit(scores[i]) / temperature));
  return out;
}

export interface TemperatureFit {
  temperature: number;
  /** Mean NLL at T = 1 and at the fitted T. */
  nllBefore: number;
  nllAfter: number;
  /** The optimum lies at the search range's edge (e.g. perfectly separated validation scores). */
  atBound: boolean;
}

export const TEMPERATURE_RANGE: readonly [number, number] = [0.01, 100];

/**
 * T minimizing the mean NLL, by golden-section search on log T over TEMPERATURE_RANGE: the NLL is
 * convex in 1/T, hence unimodal in log T, and the search is deterministic.
 */
export function fitTemperature(labels: ArrayLike<number>, scores: ArrayLike<number>): TemperatureFit {
  if (!labels.length) throw new RangeError('fitTemperature needs at least one sample');
  const f = (u: number) => temperatureNll(labels, scores, Math.exp(u));
  let a = Math.log(TEMPERATURE_RANGE[0]), b = Math.log(TEMPERATURE_RANGE[1]);
  const r = (Math.sqrt(5) - 1) / 2;
  let c = b - r * (b - a), d = a + r * (b - a);
  let fc = f(c), fd = f(d);
  while (b - a > 1e-9) {
    if (fc <= fd) { b = d; d = c; fd = fc; c = b - r * (b - a); fc = f(c); }
    else { a = c; c = d; fc = fd; d = a + r * (b - a); fd = f(d); }
  }
  const u = (a + b) / 2;
  const temperature = Math.exp(u);
  const edge = 1e-6;
  return {
    temperature, nllBefore: f(0), nllAfter: f(u),
    atBound: u - Math.log(TEMPERATURE_RANGE[0]) < edge || Math.log(TEMPERATURE_RANGE[1]) - u < edge,
  };
}
