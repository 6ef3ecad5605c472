import { Rng } from '../rng';
import { PATCH_SIZE } from '../naming';
import { evalField, type Slide } from './slide';
import { fbm2, valueNoise } from './noise';

const P = PATCH_SIZE;
const TILE = 128;
const TMASK = TILE - 1;
/** Field lattice every 10 px (0…50): 36 field evaluations per patch instead of 2,500. */
const LSTEP = 10;
const LN = P / LSTEP + 1;
const NOISE_LEN = 1 << 16;
const NOISE_MASK = NOISE_LEN - 1;
/** Optical density → intensity, quantised to 1/256 OD. */
const OD_SCALE = 256;
const OD_MAX = 5 * OD_SCALE;
const EXP_LUT = (() => {
  const t = new Float32Array(OD_MAX + 1);
  for (let i = 0; i <= OD_MAX; i++) t[i] = 255 * Math.exp(-i / OD_SCALE);
  return t;
})();

/**
 * Renders a slide's patches in H&E optical-density space (Beer–Lambert): stain amounts per pixel,
 * then one LUT lookup per channel. Per-patient stain vectors give the colour shifts; per-pixel
 * randomness comes from a precomputed noise table, not the RNG.
 */
export class SlideRenderer {
  private readonly fibre = new Float32Array(TILE * TILE);
  private readonly noise = new Int8Array(NOISE_LEN + 2);
  private readonly H = new Float32Array(P * P);
  private readonly E = new Float32Array(P * P);
  private readonly A = new Float32Array(P * P);
  private readonly latA = new Float32Array(LN * LN);
  private readonly latS = new Float32Array(LN * LN);
  private readonly latI = new Float32Array(LN * LN);
  private readonly latB = new Float32Array(LN * LN);
  private readonly fibreAngle: number;
  private w = P;
  private h = P;

  constructor(private readonly slide: Slide, rng: Rng) {
    const st = slide.style;
    const [a1, b1, a2, b2] = st.fibre;
    const k = (2 * Math.PI) / TILE;
    const seed = st.fibreSeed;
    for (let y = 0; y < TILE; y++) {
      for (let x = 0; x < TILE; x++) {
        // Periodic everywhere (integer wave numbers, wrapped lattices) so the tile repeats seamlessly.
        const w1 = fbm2(x / 16, y / 16, seed, TILE / 16) + 0.5 * valueNoise(x / 8, y / 8, seed ^ 0x4567, TILE / 8);
        const w2 = fbm2(x / 16, y / 16, seed ^ 0x1234567, TILE / 16);
        const f1 = Math.sin(k * (a1 * x + b1 * y) + 3.5 * w1);
        const f2 = Math.sin(k * (a2 * x + b2 * y) + 3.5 * w2);
        const m = 0.5 + 0.5 * valueNoise(x / 32, y / 32, seed ^ 0x2345678, TILE / 32);
        // Ridges (1 - |sin|)^2 give thin collagen strands with pale gaps between them.
        const r1 = 1 - Math.abs(f1), r2 = 1 - Math.abs(f2);
        const g = r1 * r1 * m + r2 * r2 * (1 - m);
        const grain = valueNoise(x / 4, y / 4, seed ^ 0x3456789, TILE / 4);
        this.fibre[y * TILE + x] = Math.max(0.15, 1 + st.fibreContrast * (2.2 * g - 0.75) + 0.18 * grain);
      }
    }
    // Sum of three uniforms: roughly Gaussian, sd ≈ 32.
    for (let i = 0; i < this.noise.length; i++) {
      this.noise[i] = Math.round((rng.next() + rng.next() + rng.next() - 1.5) * 64);
    }
    // Fibroblast nuclei lie along the fibres, i.e. across the dominant wave vector.
    this.fibreAngle = Math.atan2(b1, a1) + Math.PI / 2;
  }

  /**
   * Renders cell j into `out` as PNG scanlines (filter byte + RGB per row), returning the byte count.
   * `out` must hold at least 50 * (1 + 150) bytes.
   */
  render(j: number, rng: Rng, out: Uint8Array): number {
    const s = this.slide;
    const st = s.style;
    const w = (this.w = s.cellW[j]);
    const h = (this.h = s.cellH[j]);
    const x0 = s.cellCol[j] * P, y0 = s.cellRow[j] * P;

    // Fields on the lattice.
    let minA = 1, maxS = 0, maxI = 0, maxB = 0;
    const hasTumour = Number.isFinite(s.tumourThr);
    for (let ly = 0; ly < LN; ly++) {
      const v = (y0 + ly * LSTEP) / P;
      for (let lx = 0; lx < LN; lx++) {
        const u = (x0 + lx * LSTEP) / P;
        const li = ly * LN + lx;
        const a = clamp01(0.5 + (evalField(s.tissue, u, v) - s.tissueThr) / 0.16);
        let t = 0;
        if (hasTumour) {
          t = clamp01(0.5 + (evalField(s.tumour, u, v) + evalField(s.tumourJitter, u, v) - s.tumourThr) / (2 * s.tumourSoft));
          if (t > 0) t *= 1 - 0.75 * clamp01((evalField(s.tumourStroma, u, v) - 0.2) / 0.3);
        }
        const inf = clamp01((evalField(st.inflam, u, v) - 0.3) / 0.3);
        // Benign epithelium only where there is no tumour, so it never marks a label by itself.
        const ben = clamp01((evalField(st.benign, u, v) - 0.3) / 0.25) * (1 - t);
        this.latA[li] = a;
        this.latS[li] = t;
        this.latI[li] = inf;
        this.latB[li] = ben;
        if (a < minA) minA = a;
        if (t > maxS) maxS = t;
        if (inf > maxI) maxI = inf;
        if (ben > maxB) maxB = ben;
      }
    }

    // Stroma: eosin fibres with a little haematoxylin.
    const H = this.H, E = this.E, fib = this.fibre;
    const eBase = st.stromaE * (1 + 0.15 * valueNoise(x0 / 200, y0 / 200, st.fibreSeed ^ 0x77));
    for (let y = 0; y < h; y++) {
      const trow = ((y0 + y) & TMASK) * TILE;
      const row = y * w;
      for (let x = 0; x < w; x++) {
        const f = fib[trow + ((x0 + x) & TMASK)];
        E[row + x] = eBase * f;
        H[row + x] = st.stromaH * (1.25 - 0.25 * f);
      }
    }

    // Nuclei: density, size, darkness and shape follow the local tumour score (soft at borders).
    const grade = st.grade;
    const dMax = st.density0 * (1 + (st.densityMul - 1) * grade * maxS);
    const area = ((w + 8) * (h + 8)) / (P * P);
    const candidates = Math.floor(dMax * area + rng.next());
    for (let c = 0; c < candidates; c++) {
      const cx = rng.uniform(-4, w + 4), cy = rng.uniform(-4, h + 4);
      const sc = this.lattice(this.latS, cx, cy);
      const d = st.density0 * (1 + (st.densityMul - 1) * grade * sc);
      if (rng.next() * dMax >= d) continue;
      const t = sc * grade;
      const r = (st.radius0 + (st.radius1 - st.radius0) * t) * rng.uniform(0.8, 1.2);
      const aspect = Math.sqrt((1.2 + rng.next() * 1.0) * (1 - t) + (1 + rng.next() * 0.4) * t);
      const angle = rng.next() < t ? rng.uniform(0, Math.PI) : this.fibreAngle + rng.normal(0, 0.35);
      const dark = (st.dark0 + (st.dark1 - st.dark0) * t) * rng.uniform(0.85, 1.15);
      const rim = 0.45 * t;
      this.nucleus(cx, cy, r * aspect, r / aspect, angle, dark, rim, rng.nextUint32());
      if (rng.next() < 0.6 * t) {
        // Irregular (lobed) outline of atypical nuclei.
        const a2 = rng.uniform(0, 2 * Math.PI);
        const off = r * rng.uniform(0.4, 0.7);
        this.nucleus(cx + off * Math.cos(a2), cy + off * Math.sin(a2), r * 0.75, r * 0.6, rng.uniform(0, Math.PI), dark, rim, rng.nextUint32());
      }
    }
    if (maxB > 0) {
      // Benign ducts/lobules: round, mid-sized, fairly dark nuclei — the look of low-grade tumour, labelled 0.
      const n = Math.floor(st.benignDensity * maxB * area + rng.next());
      const r0 = st.radius0 + 0.45 * (st.radius1 - st.radius0);
      const d0 = st.dark0 + 0.45 * (st.dark1 - st.dark0);
      for (let c = 0; c < n; c++) {
        const cx = rng.uniform(-4, w + 4), cy = rng.uniform(-4, h + 4);
        if (rng.next() * maxB >= this.lattice(this.latB, cx, cy)) continue;
        const r = r0 * rng.uniform(0.85, 1.15);
        const asp = Math.sqrt(rng.uniform(1, 1.4));
        this.nucleus(cx, cy, r * asp, r / asp, rng.uniform(0, Math.PI), d0 * rng.uniform(0.9, 1.1), 0.1, rng.nextUint32());
      }
    }
    if (maxI > 0) {
      // Lymphocytes: small, round, very dark, clustered — unrelated to the label.
      const n = Math.floor(st.inflamDensity * maxI * area + rng.next());
      for (let c = 0; c < n; c++) {
        const cx = rng.uniform(-3, w + 3), cy = rng.uniform(-3, h + 3);
        if (rng.next() * maxI >= this.lattice(this.latI, cx, cy)) continue;
        const r = rng.uniform(1.7, 2.5);
        this.nucleus(cx, cy, r * rng.uniform(1, 1.15), r, rng.uniform(0, Math.PI), st.dark0 * rng.uniform(1.25, 1.55), 0, rng.nextUint32());
      }
    }

    // Tissue alpha: slide background at tissue borders, fat/lumen holes inside.
    let useA = minA < 1;
    const A = this.A;
    if (useA) {
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) A[y * w + x] = this.lattice(this.latA, x + 0.5, y + 0.5);
    }
    const fat = clamp01((fbm2((x0 + 25) / P * st.fat.noiseInvScale, (y0 + 25) / P * st.fat.noiseInvScale, st.fat.noiseSeed) - 0.3) / 0.5);
    const holes = fat > 0 ? Math.floor(fat * 2.5 + rng.next()) : 0;
    if (holes > 0 && !useA) {
      A.fill(1, 0, w * h);
      useA = true;
    }
    for (let k = 0; k < holes; k++) {
      const r = rng.uniform(5, 13);
      this.hole(rng.uniform(0, w), rng.uniform(0, h), r * rng.uniform(1, 1.3), r, rng.uniform(0, Math.PI));
    }

    // Optical density → RGB with per-pixel noise, written as PNG 'Sub'-filtered scanlines:
    // Sub is one subtraction here and shrinks the files ~15 % against no filter.
    const [hr, hg, hb] = st.hVec, [er, eg, eb] = st.eVec, [br, bg, bb] = st.bgOd;
    const noise = this.noise;
    const ka = st.noiseAmp / 32, kc = 0.4 * ka;
    let nj = rng.int(0, NOISE_MASK);
    const stride = 1 + 3 * w;
    for (let y = 0; y < h; y++) {
      let o = y * stride;
      out[o++] = 1;
      const row = y * w;
      let pr = 0, pg = 0, pb = 0;
      for (let x = 0; x < w; x++) {
        const i = row + x;
        let hh = H[i], ee = E[i];
        if (useA) {
          const a = A[i];
          hh *= a;
          ee *= a;
        }
        nj = (nj + 2) & NOISE_MASK;
        const lum = noise[nj] * ka + 0.5, chr = noise[nj + 1] * kc;
        const r = byte(lut(br + hh * hr + ee * er) + lum + chr);
        const g = byte(lut(bg + hh * hg + ee * eg) + lum);
        const b = byte(lut(bb + hh * hb + ee * eb) + lum - chr);
        out[o++] = r - pr;
        out[o++] = g - pg;
        out[o++] = b - pb;
        pr = r;
        pg = g;
        pb = b;
      }
    }
    return h * stride;
  }

  /** Bilinear lookup in a lattice at patch pixel position (x, y). */
  private lattice(l: Float32Array, x: number, y: number): number {
    let fx = x / LSTEP, fy = y / LSTEP;
    fx = fx < 0 ? 0 : fx > LN - 1.001 ? LN - 1.001 : fx;
    fy = fy < 0 ? 0 : fy > LN - 1.001 ? LN - 1.001 : fy;
    const ix = fx | 0, iy = fy | 0;
    const tx = fx - ix, ty = fy - iy;
    const i = iy * LN + ix;
    const top = l[i] + (l[i + 1] - l[i]) * tx;
    const bot = l[i + LN] + (l[i + LN + 1] - l[i + LN]) * tx;
    return top + (bot - top) * ty;
  }

  /** Anti-aliased ellipse of haematoxylin with chromatin texture; `rim` darkens the edge (vesicular nuclei). */
  private nucleus(cx: number, cy: number, rx: number, ry: number, angle: number, dark: number, rim: number, nseed: number): void {
    const w = this.w, h = this.h;
    const R = Math.max(rx, ry) + 1;
    const xa = Math.max(0, Math.floor(cx - R)), xb = Math.min(w - 1, Math.ceil(cx + R));
    const ya = Math.max(0, Math.floor(cy - R)), yb = Math.min(h - 1, Math.ceil(cy + R));
    if (xa > xb || ya > yb) return;
    const c = Math.cos(angle), s = Math.sin(angle);
    const irx = 1 / (rx * rx), iry = 1 / (ry * ry);
    const qa = c * c * irx + s * s * iry, qb = 2 * c * s * (irx - iry), qc = s * s * irx + c * c * iry;
    const edge = Math.min(rx, ry) * 0.9;
    const H = this.H, E = this.E, noise = this.noise;
    let nj = nseed & NOISE_MASK;
    for (let y = ya; y <= yb; y++) {
      const dy = y + 0.5 - cy;
      for (let x = xa; x <= xb; x++) {
        const dx = x + 0.5 - cx;
        const q = qa * dx * dx + qb * dx * dy + qc * dy * dy;
        if (q >= 1) continue;
        let a = (1 - q) * edge;
        if (a > 1) a = 1;
        nj = (nj + 1) & NOISE_MASK;
        const v = dark * a * (1 - rim + rim * q * 1.6) * (1 + noise[nj] * 0.006);
        const i = y * w + x;
        if (v > H[i]) H[i] = v;
        E[i] *= 1 - 0.6 * a;
      }
    }
  }

  private hole(cx: number, cy: number, rx: number, ry: number, angle: number): void {
    const w = this.w, h = this.h;
    const R = Math.max(rx, ry) + 1;
    const xa = Math.max(0, Math.floor(cx - R)), xb = Math.min(w - 1, Math.ceil(cx + R));
    const ya = Math.max(0, Math.floor(cy - R)), yb = Math.min(h - 1, Math.ceil(cy + R));
    const c = Math.cos(angle), s = Math.sin(angle);
    const irx = 1 / (rx * rx), iry = 1 / (ry * ry);
    const qa = c * c * irx + s * s * iry, qb = 2 * c * s * (irx - iry), qc = s * s * irx + c * c * iry;
    const edge = Math.min(rx, ry) * 0.5;
    const A = this.A;
    for (let y = ya; y <= yb; y++) {
      const dy = y + 0.5 - cy;
      for (let x = xa; x <= xb; x++) {
        const dx = x + 0.5 - cx;
        const q = qa * dx * dx + qb * dx * dy + qc * dy * dy;
        if (q >= 1) continue;
        const a = (1 - q) * edge;
        A[y * w + x] *= a >= 1 ? 0.04 : 1 - 0.96 * a;
      }
    }
  }
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/** Rounds (the caller adds 0.5) and clamps to 0…255. */
function byte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : v | 0;
}

function lut(od: number): number {
  const i = (od * OD_SCALE) | 0;
  return EXP_LUT[i < 0 ? 0 : i > OD_MAX ? OD_MAX : i];
}
