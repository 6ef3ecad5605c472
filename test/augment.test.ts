import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { augmentToFloat } from '../src/core/train/augment';
import { HED_FROM_RGB, RGB_FROM_HED, drawStainJitter, hed2rgb, invert3, rgb2hed, stainJitterPatch } from '../src/core/train/stain';
import { Rng } from '../src/core/rng';

const S = 50, PIX = S * S;

function randomPatches(n: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  const x = new Uint8Array(n * PIX * 3);
  for (let i = 0; i < x.length; i++) x[i] = r.int(0, 255);
  return x;
}

/** A tissue-like colour: stain amounts within what H&E slides show, kept inside the RGB gamut. */
function tissuePixel(r: Rng): number[] {
  return hed2rgb([r.uniform(0.01, 0.08), r.uniform(0.01, 0.06), r.uniform(0, 0.01)]);
}

describe('geometric augmentation', () => {
  const off = { flipHorizontal: false, flipVertical: false, rotate: 0 };

  test('with everything off it only rescales to [0, 1]', () => {
    const x = randomPatches(2, 1);
    const out = augmentToFloat(x, 2, off, new Rng(1));
    for (let i = 0; i < x.length; i++) assert.equal(out[i], Math.fround(x[i] / 255));
  });

  test('a flip mirrors the patch; the same seed draws the same flips', () => {
    const x = randomPatches(16, 2);
    const out = augmentToFloat(x, 16, { ...off, flipHorizontal: true }, new Rng(7));
    let flipped = 0;
    for (let b = 0; b < 16; b++) {
      const base = b * PIX * 3;
      const isFlipped = out[base] === Math.fround(x[base + (S - 1) * 3] / 255) && out[base + 3] === Math.fround(x[base + (S - 2) * 3] / 255);
      for (let y = 0; y < S; y++) for (let xx = 0; xx < S; xx++) for (let c = 0; c < 3; c++) {
        const sx = isFlipped ? S - 1 - xx : xx;
        assert.equal(out[base + (y * S + xx) * 3 + c], Math.fround(x[base + (y * S + sx) * 3 + c] / 255));
      }
      if (isFlipped) flipped++;
    }
    assert.ok(flipped > 2 && flipped < 14, `${flipped}/16 flipped`);
    assert.deepEqual(augmentToFloat(x, 16, { ...off, flipHorizontal: true }, new Rng(7)), out);
  });

  test('rotation keeps a constant patch constant (reflect fill, bilinear)', () => {
    const x = new Uint8Array(PIX * 3).fill(100);
    const out = augmentToFloat(x, 1, { ...off, rotate: 0.3 }, new Rng(3));
    for (const v of out) assert.ok(Math.abs(v - 100 / 255) < 1e-6);
  });
});

describe('HED stain jitter', () => {
  test('the stain matrices are inverse to each other and match scikit-image', () => {
    // skimage.color.hed_from_rgb (linalg.inv of rgb_from_hed), as published in its source.
    const skimage = [1.87798274, -1.00767869, -0.55611582, -0.06590806, 1.13473037, -0.1355218, -0.60190736, -0.48041419, 1.57358807];
    HED_FROM_RGB.forEach((v, i) => assert.ok(Math.abs(v - skimage[i]) < 1e-7, `hed_from_rgb[${i}] ${v}`));
    const back = invert3(HED_FROM_RGB);
    back.forEach((v, i) => assert.ok(Math.abs(v - RGB_FROM_HED[i]) < 1e-12));
  });

  test('rgb2hed and hed2rgb round-trip tissue colours', () => {
    const r = new Rng(5);
    for (let i = 0; i < 200; i++) {
      const rgb = tissuePixel(r);
      const again = hed2rgb(rgb2hed(rgb));
      rgb.forEach((v, c) => assert.ok(Math.abs(v - again[c]) < 1e-9));
    }
  });

  test('it scales and shifts each stain amount, and nothing else', () => {
    const r = new Rng(11);
    const px = new Float32Array(PIX * 3);
    for (let p = 0; p < PIX; p++) px.set(tissuePixel(r), p * 3);
    const before = Float32Array.from(px);
    const opts = { scale: 0.3, shift: 0.005 };
    stainJitterPatch(px, 0, PIX, drawStainJitter(opts, new Rng(99)));
    // The draws the jitter made: same seed, same order (three scales, then three shifts).
    const d = new Rng(99);
    const alpha = [0, 1, 2].map(() => d.uniform(1 - opts.scale, 1 + opts.scale));
    const beta = [0, 1, 2].map(() => d.uniform(-opts.shift, opts.shift));
    assert.ok(alpha.some((a) => Math.abs(a - 1) > 0.05), 'a visible change was drawn');
    let changed = 0;
    for (let p = 0; p < PIX; p++) {
      const h0 = rgb2hed(Array.from(before.subarray(p * 3, p * 3 + 3)));
      const rgb1 = Array.from(px.subarray(p * 3, p * 3 + 3));
      if (rgb1.some((v) => v <= 1e-6 || v >= 1)) continue; // clipped to the gamut: nothing to compare
      const h1 = rgb2hed(rgb1);
      for (let k = 0; k < 3; k++) assert.ok(Math.abs(h1[k] - (alpha[k] * h0[k] + beta[k])) < 2e-5, `pixel ${p} stain ${k}: ${h1[k]} vs ${alpha[k] * h0[k] + beta[k]}`);
      if (Math.abs(rgb1[0] - before[p * 3]) > 0.01) changed++;
    }
    assert.ok(changed > PIX / 2, `${changed} pixels changed visibly`);
  });

  test('scale and shift 0 leave the patch as it was', () => {
    const r = new Rng(12);
    const px = new Float32Array(PIX * 3);
    for (let p = 0; p < PIX; p++) px.set(tissuePixel(r), p * 3);
    const before = Float32Array.from(px);
    stainJitterPatch(px, 0, PIX, drawStainJitter({ scale: 0, shift: 0 }, new Rng(1)));
    px.forEach((v, i) => assert.ok(Math.abs(v - before[i]) < 1e-6));
  });

  test('in augmentation it is opt-in: off by default, per patch when on, and reproducible', () => {
    const x = randomPatches(8, 4);
    const geo = { flipHorizontal: true, flipVertical: true, rotate: 0.3 };
    const plain = augmentToFloat(x, 8, geo, new Rng(2));
    assert.deepEqual(augmentToFloat(x, 8, { ...geo, stainJitter: { scale: 0, shift: 0 } }, new Rng(2)), plain);
    const jittered = augmentToFloat(x, 8, { ...geo, stainJitter: { scale: 0.3, shift: 0.01 } }, new Rng(2));
    assert.notDeepEqual(jittered, plain);
    assert.deepEqual(augmentToFloat(x, 8, { ...geo, stainJitter: { scale: 0.3, shift: 0.01 } }, new Rng(2)), jittered);
    for (const v of jittered) assert.ok(v >= 0 && v <= 1);
    const mean = (a: Float32Array, b: number) => { let s = 0; for (let i = b * PIX * 3; i < (b + 1) * PIX * 3; i++) s += a[i]; return s / (PIX * 3); };
    const shifts = [0, 1, 2, 3].map((b) => mean(jittered, b) - mean(plain, b));
    assert.ok(new Set(shifts.map((s) => s.toFixed(4))).size > 1, 'each patch gets its own draw');
  });
});
