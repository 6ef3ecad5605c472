import { Rng } from '../rng';
import { PATCH_SIZE } from '../naming';
import { fbm2 } from './noise';

/** What planning decides for one patient before its slide is built (cheap; needs all patients for stratification). */
export interface PatientSpec {
  index: number;
  patient: string;
  /** Tissue patches to produce. */
  target: number;
  /** Share of them whose centre lies in tumour. */
  positiveFraction: number;
}

/** amp * exp(-(qa dx² + qb dx dy + qc dy²)), in cell units. */
interface Gauss { cx: number; cy: number; qa: number; qb: number; qc: number; amp: number }

/** A smooth scalar field over the slide (cell units): a few Gaussian blobs plus value noise for ragged borders. */
export interface Field { blobs: Gauss[]; noiseAmp: number; noiseInvScale: number; noiseSeed: number; border?: Border }

/** Pushes tissue away from the slide borders, except a side where a lobe is cut off by the slide edge. */
interface Border { cols: number; rows: number; margin: number; openRight: boolean; openBottom: boolean }

function borderPenalty(b: Border, u: number, v: number): number {
  let d = Math.min(u, v);
  if (!b.openRight) d = Math.min(d, b.cols - u);
  if (!b.openBottom) d = Math.min(d, b.rows - v);
  return d >= b.margin ? 0 : 1.5 * (1 - d / b.margin);
}

export function evalField(f: Field, u: number, v: number): number {
  let s = 0;
  for (const g of f.blobs) {
    const dx = u - g.cx, dy = v - g.cy;
    s += g.amp * Math.exp(-(g.qa * dx * dx + g.qb * dx * dy + g.qc * dy * dy));
  }
  s += f.noiseAmp * fbm2(u * f.noiseInvScale, v * f.noiseInvScale, f.noiseSeed);
  return f.border ? s - borderPenalty(f.border, u, v) : s;
}

/** Everything random about a patient's look; the renderer is a pure function of this and its RNG. */
export interface SlideStyle {
  /** Optical density per unit stain, RGB; varied per patient (stain batch, scanner). */
  hVec: [number, number, number];
  eVec: [number, number, number];
  /** Glass / background optical density. */
  bgOd: [number, number, number];
  stromaE: number;
  stromaH: number;
  /** Integer wave numbers keep the fibre tile periodic. */
  fibre: [number, number, number, number];
  fibreContrast: number;
  fibreSeed: number;
  /** Nuclei per 50x50 area in normal tissue, and the tumour multiplier. */
  density0: number;
  densityMul: number;
  /** How far tumour nuclei depart from normal ones (0…1): low-grade patients are harder. */
  grade: number;
  radius0: number;
  radius1: number;
  dark0: number;
  dark1: number;
  /** Lymphocyte clusters (dense small dark nuclei) anywhere: the hard negatives. */
  inflam: Field;
  inflamDensity: number;
  /** Benign ducts and lobules: rounder, larger, denser epithelial nuclei outside tumour. */
  benign: Field;
  benignDensity: number;
  fat: Field;
  noiseAmp: number;
}

export interface Slide {
  spec: PatientSpec;
  seed: number;
  cols: number;
  rows: number;
  /** Slide size in pixels; not a multiple of 50, so tissue on the right/bottom border gives short patches. */
  width: number;
  height: number;
  tissue: Field;
  tissueThr: number;
  tumour: Field;
  /** +Infinity when the patient has no tumour. */
  tumourThr: number;
  /** Field units over which nuclei change from normal to tumour: makes boundary patches ambiguous. */
  tumourSoft: number;
  /**
   * Added to the tumour field for rendering only: annotations are coarser than the tissue, so near a
   * region's border the label and the look disagree over about half a cell either way.
   */
  tumourJitter: Field;
  /** Stroma-rich stretches inside tumour regions (fewer tumour cells): positives that look calm. */
  tumourStroma: Field;
  style: SlideStyle;
  /** Tissue cells in row-major order (the render order). */
  cellCol: Int32Array;
  cellRow: Int32Array;
  cellW: Uint8Array;
  cellH: Uint8Array;
  cellLabel: Uint8Array;
}

const MIN_PATCHES = 60;
const MAX_PATCHES = 2800;

/** Kumaraswamy quantile: a closed-form skewed distribution on [0, 1]. */
function kumaraswamy(u: number, a: number, b: number): number {
  return Math.pow(1 - Math.pow(1 - u, 1 / b), 1 / a);
}

/** Stratified draws: N patients cover the whole distribution, so the total stays near N × mean even for small N. */
function stratified(rng: Rng, n: number): number[] {
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  return order.map((k) => (k + rng.next()) / n);
}

export function rootRng(seed: number): Rng {
  return new Rng(`idc-synth:${seed}`);
}

export function patientRng(seed: number, index: number): Rng {
  return rootRng(seed).fork(`patient:${index}`);
}

export function planPatients(patients: number, seed: number): PatientSpec[] {
  const rng = rootRng(seed).fork('plan');
  const counts = stratified(rng, patients);
  const fractions = stratified(rng, patients);
  // Ids grow like the real ones (8863 … 16896 over 279 patients), with gaps.
  let id = rng.int(8850, 8900);
  const specs: PatientSpec[] = [];
  for (let i = 0; i < patients; i++) {
    if (i > 0) id += rng.int(1, 56);
    // Mean ≈ 995, range ≈ 60 … 2,800, right-skewed like the real per-patient counts.
    const target = Math.round(MIN_PATCHES + (MAX_PATCHES - MIN_PATCHES) * kumaraswamy(counts[i], 1.46, 3.3));
    // One patient in ten has (almost) no tumour; the rest spread 2 … 90 %, ≈ 28 % overall.
    const u = fractions[i];
    const positiveFraction = u < 0.1 ? 0.03 * (u / 0.1) * (u / 0.1) : 0.02 + 0.88 * kumaraswamy((u - 0.1) / 0.9, 1.2, 2.55);
    specs.push({ index: i, patient: String(id), target, positiveFraction });
  }
  return specs;
}

function gauss(rng: Rng, cx: number, cy: number, sx: number, sy: number, amp: number): Gauss {
  const t = rng.uniform(0, Math.PI);
  const c = Math.cos(t), s = Math.sin(t);
  const ix = 1 / (2 * sx * sx), iy = 1 / (2 * sy * sy);
  return { cx, cy, qa: c * c * ix + s * s * iy, qb: 2 * c * s * (ix - iy), qc: s * s * ix + c * c * iy, amp };
}

/** Value of the k-th largest element (1-based). */
function kthLargest(values: Float64Array, k: number): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[sorted.length - k];
}

export function buildSlide(seed: number, spec: PatientSpec): Slide {
  const prng = patientRng(seed, spec.index);
  const geo = prng.fork('geometry');
  const n = spec.target;

  const fill = geo.uniform(0.3, 0.5);
  const aspect = Math.exp(geo.uniform(-0.45, 0.45));
  const area = n / fill;
  const cols = Math.max(8, Math.round(Math.sqrt(area * aspect)));
  const rows = Math.max(8, Math.ceil(area / cols));
  const cutX = geo.int(6, 44), cutY = geo.int(6, 44);
  const width = cols * PATCH_SIZE - cutX, height = rows * PATCH_SIZE - cutY;

  // Tissue: one to four lobes, sometimes one cut by the slide border (then edge patches appear).
  const lobes = 1 + Math.floor(geo.next() ** 2 * 4);
  const blobs: Gauss[] = [];
  for (let k = 0; k < lobes; k++) {
    const scale = geo.uniform(0.2, 0.36) / Math.sqrt(lobes) ** 0.5;
    blobs.push(gauss(geo, geo.uniform(0.3, 0.7) * cols, geo.uniform(0.3, 0.7) * rows, scale * cols, scale * rows * geo.uniform(0.7, 1.3), geo.uniform(0.7, 1)));
  }
  let openRight = false, openBottom = false;
  if (geo.next() < 0.2) {
    const right = geo.next() < 0.5;
    if (right) openRight = true; else openBottom = true;
    const s = geo.uniform(0.12, 0.22);
    blobs.push(right
      ? gauss(geo, cols, geo.uniform(0.3, 0.7) * rows, s * cols, s * rows, 1.2)
      : gauss(geo, geo.uniform(0.3, 0.7) * cols, rows, s * cols, s * rows, 1.2));
  }
  const tissue: Field = { blobs, noiseAmp: geo.uniform(0.35, 0.55), noiseInvScale: 1 / Math.max(2, Math.min(cols, rows) * geo.uniform(0.12, 0.25)), noiseSeed: geo.nextUint32(),
    border: { cols, rows, margin: 2.5, openRight, openBottom } };

  // Values at each cell's (clipped) centre; the n highest are tissue, so counts are exact.
  const total = cols * rows;
  const tv = new Float64Array(total);
  const cu = new Float64Array(total), cv = new Float64Array(total);
  for (let r = 0; r < rows; r++) {
    const h = Math.min(PATCH_SIZE, height - r * PATCH_SIZE);
    for (let c = 0; c < cols; c++) {
      const w = Math.min(PATCH_SIZE, width - c * PATCH_SIZE);
      const i = r * cols + c;
      cu[i] = c + w / (2 * PATCH_SIZE);
      cv[i] = r + h / (2 * PATCH_SIZE);
      tv[i] = evalField(tissue, cu[i], cv[i]);
    }
  }
  const count = Math.min(n, total);
  const tissueThr = kthLargest(tv, count);
  const cells: number[] = [];
  for (let i = 0; i < total && cells.length < count; i++) if (tv[i] >= tissueThr) cells.push(i);

  // Tumour: a few contiguous regions seeded on tissue cells; threshold gives the planned share exactly.
  const tum = prng.fork('tumour');
  const k = Math.round(spec.positiveFraction * cells.length);
  const regions = 1 + Math.floor(tum.next() * (1 + 2.5 * spec.positiveFraction));
  const tblobs: Gauss[] = [];
  for (let j = 0; j < regions; j++) {
    const at = cells[tum.int(0, cells.length - 1)];
    const radius = Math.max(1, Math.sqrt(Math.max(k, 4) / regions / Math.PI)) * tum.uniform(0.8, 1.4);
    tblobs.push(gauss(tum, cu[at], cv[at], radius * tum.uniform(0.7, 1.3), radius * tum.uniform(0.7, 1.3), tum.uniform(0.7, 1)));
  }
  const tumour: Field = { blobs: tblobs, noiseAmp: tum.uniform(0.15, 0.3), noiseInvScale: 1 / tum.uniform(1.5, 3.5), noiseSeed: tum.nextUint32() };
  const gv = new Float64Array(cells.length);
  for (let j = 0; j < cells.length; j++) gv[j] = evalField(tumour, cu[cells[j]], cv[cells[j]]);
  const tumourThr = k > 0 ? kthLargest(gv, k) : Number.POSITIVE_INFINITY;
  // Soft zone ≈ ±0.3 cell around the border, from the field's typical slope there.
  const slope = k > 0 ? medianSlope(tumour, tumourThr, cells, cu, cv, gv) : 1;
  const tumourSoft = 0.3 * slope;
  const tumourJitter: Field = { blobs: [], noiseAmp: 0.6 * slope, noiseInvScale: 1 / 1.3, noiseSeed: tum.nextUint32() };
  const tumourStroma: Field = { blobs: [], noiseAmp: 1, noiseInvScale: 1 / tum.uniform(1, 2.5), noiseSeed: tum.nextUint32() };

  const cellCol = new Int32Array(cells.length), cellRow = new Int32Array(cells.length);
  const cellW = new Uint8Array(cells.length), cellH = new Uint8Array(cells.length), cellLabel = new Uint8Array(cells.length);
  for (let j = 0; j < cells.length; j++) {
    const i = cells[j];
    const c = i % cols, r = (i - c) / cols;
    cellCol[j] = c;
    cellRow[j] = r;
    cellW[j] = Math.min(PATCH_SIZE, width - c * PATCH_SIZE);
    cellH[j] = Math.min(PATCH_SIZE, height - r * PATCH_SIZE);
    cellLabel[j] = gv[j] >= tumourThr ? 1 : 0;
  }

  return {
    spec, seed, cols, rows, width, height, tissue, tissueThr, tumour, tumourThr, tumourSoft, tumourJitter, tumourStroma,
    style: makeStyle(prng.fork('style'), cols, rows), cellCol, cellRow, cellW, cellH, cellLabel,
  };
}

function medianSlope(f: Field, thr: number, cells: number[], cu: Float64Array, cv: Float64Array, gv: Float64Array): number {
  const slopes: number[] = [];
  const e = 0.25;
  for (let j = 0; j < cells.length; j++) {
    if (Math.abs(gv[j] - thr) > 0.25) continue;
    const u = cu[cells[j]], v = cv[cells[j]];
    const gx = (evalField(f, u + e, v) - evalField(f, u - e, v)) / (2 * e);
    const gy = (evalField(f, u, v + e) - evalField(f, u, v - e)) / (2 * e);
    slopes.push(Math.hypot(gx, gy));
  }
  if (slopes.length === 0) return 0.2;
  slopes.sort((a, b) => a - b);
  return Math.max(0.02, slopes[slopes.length >> 1]);
}

function jitterVec(rng: Rng, v: [number, number, number], sd: number): [number, number, number] {
  const o = v.map((x) => Math.max(0.02, x + rng.normal(0, sd))) as [number, number, number];
  const len = Math.hypot(...o);
  return o.map((x) => x / len) as [number, number, number];
}

function makeStyle(rng: Rng, cols: number, rows: number): SlideStyle {
  // Typical H and E optical-density vectors (as Macenko's method estimates them), shifted per patient:
  // stain batches and scanners differ visibly.
  const hVec = jitterVec(rng, [0.5626, 0.7201, 0.4062], 0.08);
  const eVec = jitterVec(rng, [0.2159, 0.8012, 0.5581], 0.08);
  const hScale = Math.exp(rng.normal(0, 0.2));
  const eScale = Math.exp(rng.normal(0, 0.25));
  const bg = rng.uniform(0.02, 0.09);
  const bgOd: [number, number, number] = [bg * rng.uniform(0.6, 1.4), bg * rng.uniform(0.6, 1.4), bg * rng.uniform(0.6, 1.4)];
  const wave = (): number => rng.int(4, 10) * (rng.next() < 0.5 ? -1 : 1);
  const grade = rng.uniform(0.35, 1);
  const density0 = rng.uniform(9, 22);
  const small = Math.min(cols, rows);
  return {
    hVec: hVec.map((x) => x * hScale) as [number, number, number],
    eVec: eVec.map((x) => x * eScale) as [number, number, number],
    bgOd,
    stromaE: rng.uniform(0.35, 0.6),
    stromaH: rng.uniform(0.04, 0.12),
    fibre: [wave(), rng.int(0, 6), rng.int(0, 6), wave()],
    fibreContrast: rng.uniform(0.25, 0.55),
    fibreSeed: rng.nextUint32(),
    density0,
    densityMul: rng.uniform(2.2, 3.4),
    grade,
    radius0: rng.uniform(2.2, 3),
    radius1: rng.uniform(3.6, 5),
    dark0: rng.uniform(0.8, 1.1),
    dark1: rng.uniform(1.15, 1.5),
    inflam: { blobs: [], noiseAmp: 1, noiseInvScale: 1 / Math.max(1.5, small * rng.uniform(0.05, 0.15)), noiseSeed: rng.nextUint32() },
    inflamDensity: rng.uniform(15, 60),
    benign: { blobs: [], noiseAmp: 1, noiseInvScale: 1 / rng.uniform(1.2, 3), noiseSeed: rng.nextUint32() },
    benignDensity: density0 * rng.uniform(1, 2.2),
    fat: { blobs: [], noiseAmp: 1, noiseInvScale: 1 / rng.uniform(2, 5), noiseSeed: rng.nextUint32() },
    noiseAmp: rng.uniform(2, 4.5),
  };
}

export interface SlideCounts { patient: string; negatives: number; positives: number; edge: number }

export function countSlide(s: Slide): SlideCounts {
  let positives = 0, edge = 0;
  for (let j = 0; j < s.cellLabel.length; j++) {
    positives += s.cellLabel[j];
    if (s.cellW[j] < PATCH_SIZE || s.cellH[j] < PATCH_SIZE) edge++;
  }
  return { patient: s.spec.patient, negatives: s.cellLabel.length - positives, positives, edge };
}

/** Slide pixel coordinate of a cell's top-left corner, on the real archive's 1 + 50k grid. */
export function cellCoord(c: number): number {
  return 1 + PATCH_SIZE * c;
}
