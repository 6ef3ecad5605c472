import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { applyOdMatrix, estimateStains, MACENKO_REFERENCE, normalizationMatrix, percentileSorted, symmetricEigen3, type StainEstimate } from '../src/core/cache/stain-norm';
import { Rng } from '../src/core/rng';

type Vec = [number, number, number];
const unit = (v: number[]): Vec => { const l = Math.hypot(...v); return v.map((x) => x / l) as Vec; };
const cos = (a: readonly number[], b: readonly number[]) => (a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / Math.hypot(...a) / Math.hypot(...b);

/** Stain amounts of one tissue: per pixel (h, e), glass for a tenth of the pixels. */
function tissue(pixels: number, seed: number): Float64Array {
  const r = new Rng(seed);
  const c = new Float64Array(pixels * 2);
  for (let i = 0; i < pixels; i++) {
    const kind = r.next();
    if (kind < 0.1) continue; // glass
    // Nuclei (mostly H), stroma (mostly E), and mixtures.
    const h = kind < 0.4 ? r.uniform(0.4, 1.6) : r.uniform(0, 0.5);
    const e = kind < 0.4 ? r.uniform(0, 0.3) : r.uniform(0.2, 1.0);
    c[i * 2] = h; c[i * 2 + 1] = e;
  }
  return c;
}

/** Beer–Lambert: the same tissue through a slide's stain vectors and strengths. */
function render(c: Float64Array, h: Vec, e: Vec, strength: [number, number] = [1, 1]): Uint8Array {
  const n = c.length / 2;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) {
      const od = c[i * 2] * strength[0] * h[k] + c[i * 2 + 1] * strength[1] * e[k];
      rgb[i * 3 + k] = Math.round(255 * Math.exp(-od));
    }
  }
  return rgb;
}

// Macenko-typical vectors; pure eosin must still absorb some red to count as tissue (OD > 0.15).
const H1 = unit([0.5626, 0.7201, 0.4062]), E1 = unit([0.2159, 0.8012, 0.5581]);
const H2 = unit([0.66, 0.68, 0.32]), E2 = unit([0.30, 0.72, 0.62]);

describe('Macenko stain normalization', () => {
  test('symmetric 3x3 eigen-decomposition: A·v = λ·v with orthonormal vectors', () => {
    const r = new Rng(3);
    for (let trial = 0; trial < 50; trial++) {
      const b = Array.from({ length: 9 }, () => r.uniform(-1, 1));
      const a = [0, 1, 2].flatMap((i) => [0, 1, 2].map((j) => b[i * 3 + j] + b[j * 3 + i]));
      const { values, vectors } = symmetricEigen3(a);
      for (let j = 0; j < 3; j++) {
        const v = [vectors[j], vectors[3 + j], vectors[6 + j]];
        for (let i = 0; i < 3; i++) {
          const av = a[i * 3] * v[0] + a[i * 3 + 1] * v[1] + a[i * 3 + 2] * v[2];
          assert.ok(Math.abs(av - values[j] * v[i]) < 1e-9, `trial ${trial}`);
        }
        for (let k = 0; k < 3; k++) {
          const w = [vectors[k], vectors[3 + k], vectors[6 + k]];
          assert.ok(Math.abs(v[0] * w[0] + v[1] * w[1] + v[2] * w[2] - (j === k ? 1 : 0)) < 1e-9);
        }
      }
    }
  });

  test('percentiles follow numpy (linear interpolation)', () => {
    assert.equal(percentileSorted([1, 2, 3, 4], 50), 2.5);
    assert.equal(percentileSorted([1, 2, 3, 4], 0), 1);
    assert.equal(percentileSorted([1, 2, 3, 4], 100), 4);
    assert.ok(Math.abs(percentileSorted([0, 10], 99) - 9.9) < 1e-12);
  });

  test('it recovers the stain vectors a slide was rendered with, H first', () => {
    for (const [h, e] of [[H1, E1], [H2, E2]] as const) {
      const est = estimateStains(render(tissue(40_000, 1), h, e))!;
      assert.ok(est, 'an estimate');
      assert.ok(cos(est.he[0], h) > 0.995, `H ${est.he[0]} vs ${h}: cos ${cos(est.he[0], h)}`);
      assert.ok(cos(est.he[1], e) > 0.995, `E ${est.he[1]} vs ${e}: cos ${cos(est.he[1], e)}`);
    }
  });

  test('the estimate does not depend on the order of the patches (a folder and the cache list one slide differently)', () => {
    // 600 patches of 2,500 pixels: 1.5M pixels, so the estimate samples every 8th, which does not divide 2,500.
    const rgb = render(tissue(600 * 2500, 4), H1, E1);
    const order = Array.from({ length: 600 }, (_, i) => i);
    new Rng(9).shuffle(order);
    const shuffled = new Uint8Array(rgb.length);
    order.forEach((from, to) => shuffled.set(rgb.subarray(from * 7500, (from + 1) * 7500), to * 7500));
    const [a, b] = [estimateStains(rgb)!, estimateStains(shuffled)!];
    assert.equal(a.pixels, b.pixels, 'the same sampled pixels');
    for (let s = 0; s < 2; s++) for (let k = 0; k < 3; k++) assert.ok(Math.abs(a.he[s][k] - b.he[s][k]) < 1e-9, `stain ${s}`);
    for (let s = 0; s < 2; s++) assert.ok(Math.abs(a.maxC[s] - b.maxC[s]) < 1e-9);
  });

  test('stronger staining shows up in maxC, in proportion', () => {
    const c = tissue(40_000, 2);
    const a = estimateStains(render(c, H1, E1))!;
    const b = estimateStains(render(c, H1, E1, [1.4, 0.7]))!;
    // Within 10%: weaker eosin drops some faint pixels below the tissue threshold.
    assert.ok(Math.abs(b.maxC[0] / a.maxC[0] / 1.4 - 1) < 0.1, `H ${b.maxC[0] / a.maxC[0]}`);
    assert.ok(Math.abs(b.maxC[1] / a.maxC[1] / 0.7 - 1) < 0.1, `E ${b.maxC[1] / a.maxC[1]}`);
  });

  test('one tissue stained two ways looks the same after normalization', () => {
    const c = tissue(40_000, 4);
    const a = render(c, H1, E1), b = render(c, H2, E2, [1.3, 0.75]);
    let before = 0;
    for (let i = 0; i < a.length; i++) before += Math.abs(a[i] - b[i]);
    for (const px of [a, b]) applyOdMatrix(px, normalizationMatrix(estimateStains(px)!));
    let after = 0;
    for (let i = 0; i < a.length; i++) after += Math.abs(a[i] - b[i]);
    before /= a.length; after /= a.length;
    assert.ok(before > 8, `the two stainings differ (${before.toFixed(1)} grey levels on average)`);
    assert.ok(after < 1, `normalized they agree within ${after.toFixed(2)} grey levels on average`);
    // And they now carry the reference's stains.
    const est = estimateStains(a)!;
    assert.ok(cos(est.he[0], MACENKO_REFERENCE.he[0]) > 0.995 && cos(est.he[1], MACENKO_REFERENCE.he[1]) > 0.995);
    assert.ok(Math.abs(est.maxC[0] / MACENKO_REFERENCE.maxC[0] - 1) < 0.05 && Math.abs(est.maxC[1] / MACENKO_REFERENCE.maxC[1] - 1) < 0.05);
  });

  test('the identity leaves pixels within one grey level; glass stays glass', () => {
    const r = new Rng(9);
    const px = new Uint8Array(30_000).map(() => r.int(0, 255));
    const copy = px.slice();
    applyOdMatrix(px, [1, 0, 0, 0, 1, 0, 0, 0, 1]);
    for (let i = 0; i < px.length; i++) assert.ok(Math.abs(px[i] - copy[i]) <= 1 && (copy[i] === 0 || Math.abs(px[i] - copy[i]) <= 1));
    const glass = new Uint8Array(300).fill(255);
    const est: StainEstimate = { he: [H2, E2], maxC: [1.2, 0.8], pixels: 1 };
    applyOdMatrix(glass, normalizationMatrix(est));
    assert.ok(glass.every((v) => v === 255));
  });

  test('no estimate for a blank slide or one with a single colour', () => {
    assert.equal(estimateStains(new Uint8Array(7500 * 10).fill(245)), undefined);
    const c = new Float64Array(20_000 * 2).map((_, i) => (i % 2 ? 0 : 0.8));
    assert.equal(estimateStains(render(c, H1, E1)), undefined);
  });

  test('only the given range of pixels changes', () => {
    const r = new Rng(10);
    const px = new Uint8Array(7500 * 3).map(() => r.int(60, 200));
    const copy = px.slice();
    applyOdMatrix(px, normalizationMatrix({ he: [H2, E2], maxC: [1.2, 0.8], pixels: 1 }), 2500, 2500);
    assert.deepEqual(px.subarray(0, 7500), copy.subarray(0, 7500));
    assert.deepEqual(px.subarray(15000), copy.subarray(15000));
    assert.notDeepEqual(px.subarray(7500, 15000), copy.subarray(7500, 15000));
  });
});
