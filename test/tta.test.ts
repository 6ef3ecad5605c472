import { test } from 'node:test';
import assert from 'node:assert/strict';
import { viewOf, withTta, ttaViews } from '../src/core/evaluate/tta';

/** One 50x50x3 patch whose every pixel is distinct: position-coded, so any permutation shows. */
function codedPatch(): Float32Array {
  const x = new Float32Array(7500);
  for (let p = 0; p < 2500; p++) { x[p * 3] = p; x[p * 3 + 1] = p + 0.25; x[p * 3 + 2] = p + 0.5; }
  return x;
}

/** The plain definition of each view, pixel (r, c) of the result. */
function reference(x: Float32Array, v: number): Float32Array {
  const L = 49;
  const src: [number, number][] = [];
  const out = new Float32Array(7500);
  for (let r = 0; r < 50; r++) for (let c = 0; c < 50; c++) {
    const s: Array<[number, number]> = [[r, c], [r, L - c], [L - r, c], [L - r, L - c], [c, r], [c, L - r], [L - c, r], [L - c, L - r]];
    const [sr, sc] = s[v];
    src.push([sr, sc]);
    for (let k = 0; k < 3; k++) out[(r * 50 + c) * 3 + k] = x[(sr * 50 + sc) * 3 + k];
  }
  return out;
}

test('the 8 views are the distinct flips and right-angle rotations of the patch', () => {
  const x = codedPatch();
  const seen = new Set<string>();
  for (let v = 0; v < 8; v++) {
    const got = viewOf(x, 1, v, new Float32Array(7500));
    assert.deepEqual(Array.from(got), Array.from(reference(x, v)), `view ${v}`);
    seen.add(got.join());
  }
  assert.equal(seen.size, 8, 'all different');
  // A quarter turn applied four times is the identity (view 5 maps (r, c) to (c, 49 - r)).
  let y = x;
  for (let k = 0; k < 4; k++) y = viewOf(y, 1, 5, new Float32Array(7500));
  assert.deepEqual(Array.from(y), Array.from(x));
  // Views of a batch are per patch.
  const two = new Float32Array(15000);
  two.set(x, 0); two.set(x.map((a) => a + 10000), 7500);
  const tv = viewOf(two, 2, 3, new Float32Array(15000));
  assert.deepEqual(Array.from(tv.subarray(7500)), Array.from(reference(x, 3).map((a) => a + 10000)));
});

test('withTta averages the scorer over the views; an orientation-blind scorer is unchanged', async () => {
  assert.deepEqual([ttaViews('none'), ttaViews('flips'), ttaViews('dihedral')], [1, 4, 8]);
  const x = new Float32Array(2 * 7500);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 255) / 255;
  // Orientation-sensitive: the first row's red mean.
  const firstRow = async (b: Float32Array, n: number) => Float32Array.from({ length: n }, (_, i) => { let s = 0; for (let c = 0; c < 50; c++) s += b[i * 7500 + c * 3]; return s / 50; });
  for (const mode of ['flips', 'dihedral'] as const) {
    const got = await withTta(firstRow, mode)(x, 2);
    for (let i = 0; i < 2; i++) {
      let expect = 0;
      for (let v = 0; v < ttaViews(mode); v++) expect += (await firstRow(reference(x.slice(i * 7500, (i + 1) * 7500), v), 1))[0];
      assert.ok(Math.abs(got[i] - expect / ttaViews(mode)) < 1e-6, `${mode} patch ${i}`);
    }
  }
  // Orientation-blind: the mean of all pixels.
  const mean = async (b: Float32Array, n: number) => Float32Array.from({ length: n }, (_, i) => b.subarray(i * 7500, (i + 1) * 7500).reduce((a, c) => a + c, 0) / 7500);
  const plain = await mean(x, 2);
  const tta = await withTta(mean, 'dihedral')(x, 2);
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(plain[i] - tta[i]) < 1e-6);
  // The caller's buffer is left as it was.
  const copy = x.slice();
  await withTta(firstRow, 'dihedral')(x, 2);
  assert.deepEqual(x, copy);
  assert.equal(withTta(mean, 'none'), mean, 'none is the scorer itself');
});
