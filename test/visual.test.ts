import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import { initBackend } from '../src/core/engine/backends';
import { buildModel, foldForInference } from '../src/core/engine/model';
import { saveModel, loadModel } from '../src/core/train/model-io';
import { IdcError } from '../src/core/errors';
import {
  gradCam, gradCamTarget, gradCamOverlayPng, gradCamOverlayRgb, patchPng, patchRgb,
  slideMap, renderSlideRgb, SLIDE_COLOURS, type SlideTile,
} from '../src/core/visual';
import { tempDir } from './helpers/fixtures';

const SIDE = 50, PATCH = SIDE * SIDE * 3;

before(async () => { await initBackend('wasm'); });

type Rgb = readonly [number, number, number] | readonly number[];

function solid(c: Rgb): Uint8Array {
  const p = new Uint8Array(PATCH);
  for (let i = 0; i < PATCH; i += 3) { p[i] = c[0]; p[i + 1] = c[1]; p[i + 2] = c[2]; }
  return p;
}

function square(p: Uint8Array, top: number, left: number, size: number, c: Rgb): void {
  for (let y = top; y < top + size; y++) for (let x = left; x < left + size; x++) p.set(c, (y * SIDE + x) * 3);
}

async function rejectsIdc(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  await assert.rejects(async () => { await (typeof p === 'function' ? p() : p); }, (e: unknown) => {
    assert.ok(e instanceof IdcError, `expected IdcError, got ${e}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

function checkMaps(maps: Float32Array[], n: number): void {
  assert.equal(maps.length, n);
  for (const m of maps) {
    assert.equal(m.length, SIDE * SIDE);
    let max = 0;
    for (const v of m) { assert.ok(v >= 0 && v <= 1, `value ${v} outside [0, 1]`); max = Math.max(max, v); }
    assert.ok(max === 0 || Math.abs(max - 1) < 1e-6, `normalised map peaks at ${max}`);
  }
}

/** Share of the map's mass inside rows/cols [r0, r1) × [c0, c1). */
function massIn(m: Float32Array, r0: number, r1: number, c0: number, c1: number): number {
  let inside = 0, total = 0;
  for (let y = 0; y < SIDE; y++) for (let x = 0; x < SIDE; x++) {
    const v = m[y * SIDE + x];
    total += v;
    if (y >= r0 && y < r1 && x >= c0 && x < c1) inside += v;
  }
  return total > 0 ? inside / total : 0;
}

describe('Grad-CAM', () => {
  /**
   * A 1×1 conv with hand-set weights: channel 0 fires on red, channel 1 on green. Only one channel
   * reaches the score, so the map must follow that colour's square and ignore the other one.
   */
  function colourModel(scoreChannel: 0 | 1): tfl.LayersModel {
    const input = tfl.input({ shape: [SIDE, SIDE, 3] });
    const kernel = tf.tensor4d([1, -0.5, -0.5, 1, -0.5, -0.5], [1, 1, 3, 2]); // rows: r, g, b → [red, green]
    let x = tfl.layers.conv2d({ filters: 2, kernelSize: 1, weights: [kernel, tf.zeros([2])], name: 'detect' }).apply(input) as tfl.SymbolicTensor;
    x = tfl.layers.reLU({ name: 'detect_relu' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
    const w = scoreChannel === 0 ? [[40], [0]] : [[0], [40]];
    const out = tfl.layers.dense({ units: 1, activation: 'sigmoid', weights: [tf.tensor2d(w), tf.tensor1d([-1])] }).apply(x) as tfl.SymbolicTensor;
    return tfl.model({ inputs: input, outputs: out });
  }

  function redGreenPatches(n: number): Uint8Array {
    const out = new Uint8Array(n * PATCH);
    for (let i = 0; i < n; i++) {
      const p = solid([128, 128, 128]);
      square(p, 3 + i, 4 + 2 * i, 12, [255, 0, 0]); // top-left quadrant
      square(p, 30 + 2 * i, 32 + i, 12, [0, 255, 0]); // bottom-right quadrant
      out.set(p, i * PATCH);
    }
    return out;
  }

  test('the map follows the image region the model scores', async () => {
    const px = redGreenPatches(4);
    const red = colourModel(0), green = colourModel(1);
    assert.deepEqual(gradCamTarget(red), { layer: 'detect_relu', shape: [50, 50, 2], score: 'logit' });
    const redMaps = await gradCam(red, px, 4);
    const greenMaps = await gradCam(green, px, 4);
    checkMaps(redMaps, 4);
    checkMaps(greenMaps, 4);
    for (let i = 0; i < 4; i++) {
      assert.ok(massIn(redMaps[i], 0, 25, 0, 25) > 0.95, `red model, patch ${i}: top-left mass ${massIn(redMaps[i], 0, 25, 0, 25)}`);
      assert.ok(massIn(greenMaps[i], 25, 50, 25, 50) > 0.95, `green model, patch ${i}: bottom-right mass ${massIn(greenMaps[i], 25, 50, 25, 50)}`);
    }
    red.dispose(); green.dispose();
  });

  test('no evidence gives an all-zero map, not NaN', async () => {
    const model = colourModel(0);
    const [m] = await gradCam(model, solid([128, 128, 128]), 1);
    assert.ok(m.every((v) => v === 0));
    model.dispose();
  });

  test('buildModel: last conv block after its ReLU; same maps after save/load and after folding', async () => {
    const model = buildModel({ filters: [4, 8], dense: [8], seed: 3 });
    const target = gradCamTarget(model);
    const layer = model.getLayer(target.layer);
    assert.equal(layer.getClassName(), 'ReLU');
    assert.deepEqual(target.shape, [23, 23, 8]);
    assert.equal(target.score, 'logit');
    const n = 70; // crosses the 64-patch chunk
    const px = new Uint8Array(n * PATCH);
    for (let i = 0; i < px.length; i++) px[i] = (i * 7919 + (i >> 7) * 31) & 255;
    const maps = await gradCam(model, px, n);
    checkMaps(maps, n);
    assert.ok(maps.some((m) => m.some((v) => v > 0)));

    const dir = tempDir('idc-visual-');
    try {
      await saveModel(model, dir);
      const loaded = await loadModel(dir);
      assert.equal(gradCamTarget(loaded).layer, target.layer);
      const again = await gradCam(loaded, px, 3);
      for (let i = 0; i < 3; i++) for (let k = 0; k < SIDE * SIDE; k++) assert.ok(Math.abs(again[i][k] - maps[i][k]) < 1e-4);
      loaded.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Folding re-applies the model's weightless layers, giving them extra inbound nodes.
    const folded = foldForInference(model);
    assert.equal(folded.getLayer(gradCamTarget(folded).layer).getClassName(), 'Conv2D'); // ReLU fused into the conv
    const after = await gradCam(model, px, 2);
    const viaFolded = await gradCam(folded, px, 2);
    for (let i = 0; i < 2; i++) {
      for (let k = 0; k < SIDE * SIDE; k++) {
        assert.ok(Math.abs(after[i][k] - maps[i][k]) < 1e-5);
        assert.ok(Math.abs(viaFolded[i][k] - maps[i][k]) < 1e-3);
      }
    }
    const byName = await gradCam(model, px, 1, { layer: model.layers.find((l) => l.getClassName() === 'Conv2D')!.name });
    checkMaps(byName, 1);
    model.dispose();
  });

  test('third-party models: Sequential with fused activations, residual branch, nested block', async () => {
    const px = redGreenPatches(2);
    const seq = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [SIDE, SIDE, 3], filters: 4, kernelSize: 3, activation: 'relu', name: 'c1' }),
        tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, activation: 'relu', name: 'c2' }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 2, activation: 'softmax' }),
      ],
    });
    assert.deepEqual(gradCamTarget(seq), { layer: 'c2', shape: [23, 23, 4], score: 'logit' });
    checkMaps(await gradCam(seq, px, 2), 2);

    const input = tfl.input({ shape: [SIDE, SIDE, 3] });
    const a = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'ra' }).apply(input) as tfl.SymbolicTensor;
    const b = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'rb' }).apply(a) as tfl.SymbolicTensor;
    let x = tfl.layers.add().apply([a, b]) as tfl.SymbolicTensor;
    x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
    const res = tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 1 }).apply(x) as tfl.SymbolicTensor });
    assert.deepEqual(gradCamTarget(res), { layer: 'rb', shape: [50, 50, 4], score: 'output' });
    checkMaps(await gradCam(res, px, 2), 2);

    const backbone = tfl.sequential({ name: 'backbone', layers: [tfl.layers.conv2d({ inputShape: [SIDE, SIDE, 3], filters: 3, kernelSize: 5, strides: 5 })] });
    const inner = tfl.input({ shape: [SIDE, SIDE, 3] });
    let y = backbone.apply(inner) as tfl.SymbolicTensor;
    y = tfl.layers.flatten().apply(y) as tfl.SymbolicTensor;
    const nested = tfl.model({ inputs: inner, outputs: tfl.layers.dense({ units: 1, activation: 'sigmoid' }).apply(y) as tfl.SymbolicTensor });
    assert.deepEqual(gradCamTarget(nested), { layer: 'backbone', shape: [10, 10, 3], score: 'logit' });
    checkMaps(await gradCam(nested, px, 2), 2);
  });

  test('clear errors: no conv layer, unknown or non-spatial layer, short input', async () => {
    const input = tfl.input({ shape: [SIDE, SIDE, 3] });
    const flat = tfl.layers.flatten().apply(input) as tfl.SymbolicTensor;
    const dense = tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 1, activation: 'sigmoid', name: 'head' }).apply(flat) as tfl.SymbolicTensor });
    await rejectsIdc(gradCam(dense, new Uint8Array(PATCH), 1), 'NO_CONV_LAYER');
    const model = buildModel({ filters: [4], dense: [], seed: 1 });
    await rejectsIdc(gradCam(model, new Uint8Array(PATCH), 1, { layer: 'nope' }), 'BAD_LAYER');
    await rejectsIdc(gradCam(model, new Uint8Array(PATCH), 1, { layer: model.layers[model.layers.length - 2].name }), 'BAD_LAYER');
    await rejectsIdc(gradCam(model, new Uint8Array(PATCH - 1), 1), 'BAD_ARGUMENT');
    model.dispose(); dense.dispose();
  });

  test('overlay and thumbnail PNGs: nearest-upscaled patch, tinted only where the map is non-zero', async () => {
    const patch = solid([200, 150, 180]);
    square(patch, 0, 0, 1, [10, 20, 30]);
    const map = new Float32Array(SIDE * SIDE);
    map[25 * SIDE + 25] = 1;
    const png = await gradCamOverlayPng(patch, map);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [200, 200, 3]);
    assert.deepEqual([...data.subarray(0, 3)], [10, 20, 30]); // pixel (0,0) of the patch, 4x4 block
    assert.deepEqual([...data.subarray((3 * 200 + 3) * 3, (3 * 200 + 3) * 3 + 3)], [10, 20, 30]);
    assert.deepEqual([...data.subarray((10 * 200 + 10) * 3, (10 * 200 + 10) * 3 + 3)], [200, 150, 180]);
    const centre = (101 * 200 + 101) * 3;
    assert.notDeepEqual([...data.subarray(centre, centre + 3)], [200, 150, 180]);
    assert.ok(data.equals(gradCamOverlayRgb(patch, map)));

    const thumb = await sharp(await patchPng(patch, 100)).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([thumb.info.width, thumb.info.height], [100, 100]);
    assert.ok(thumb.data.equals(patchRgb(patch, 100)));
    assert.deepEqual([...thumb.data.subarray((1 * 100 + 1) * 3, (1 * 100 + 1) * 3 + 3)], [10, 20, 30]);
  });
});

describe('slide map', () => {
  const at = (r: { width: number; rgb: Uint8Array }, x: number, y: number) => [...r.rgb.subarray((y * r.width + x) * 3, (y * r.width + x) * 3 + 3)];

  const placed: SlideTile[] = [
    { id: 'a', x: 1001, y: 2001, pixels: solid([250, 0, 0]) },
    { id: 'b', x: 1051, y: 2001, pixels: solid([0, 250, 0]) },
    { id: 'c', x: 1101, y: 2101, pixels: solid([0, 0, 250]) },
    { id: 'd', x: 1001, y: 2151, pixels: solid([90, 60, 30]) },
  ];

  test('pixels at a patch position carry that patch, at native and half scale', async () => {
    const r = renderSlideRgb(placed, { threshold: 0.5, layers: ['tissue'] });
    assert.equal(r.scale, 1);
    assert.deepEqual([r.width, r.height], [150, 200]);
    assert.deepEqual(r.tileRects, [
      { id: 'a', left: 0, top: 0, size: 50 }, { id: 'b', left: 50, top: 0, size: 50 },
      { id: 'c', left: 100, top: 100, size: 50 }, { id: 'd', left: 0, top: 150, size: 50 },
    ]);
    for (const [t, rect] of placed.map((t, i) => [t, r.tileRects[i]] as const)) {
      const c = [...t.pixels.subarray(0, 3)];
      for (const [dx, dy] of [[0, 0], [49, 0], [0, 49], [49, 49], [25, 17]]) assert.deepEqual(at(r, rect.left + dx, rect.top + dy), c, `${t.id} +${dx},${dy}`);
    }
    assert.deepEqual(at(r, 120, 20), [...SLIDE_COLOURS.background]); // no patch there

    const half = renderSlideRgb(placed, { threshold: 0.5, layers: ['tissue'], scale: 0.5 });
    assert.equal(half.scale, 0.5);
    assert.deepEqual([half.width, half.height], [75, 100]);
    assert.deepEqual(half.tileRects.map((t) => [t.left, t.top, t.size]), [[0, 0, 25], [25, 0, 25], [50, 50, 25], [0, 75, 25]]);
    assert.deepEqual(at(half, 60, 60), [0, 0, 250]);
    assert.deepEqual(at(half, 24, 24), [250, 0, 0]);
    assert.deepEqual(at(half, 25, 24), [0, 250, 0]);

    const png = await slideMap(placed, { threshold: 0.5, layers: ['tissue'] });
    const { data, info } = await sharp(png.png).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [png.width, png.height, 3]);
    assert.ok(data.equals(r.rgb));
    assert.deepEqual(png.tileRects, r.tileRects);
  });

  test('a half-black, half-white patch shrinks by area averaging', () => {
    const p = solid([255, 255, 255]);
    for (let y = 0; y < SIDE; y++) for (let x = 0; x < 25; x++) p.set([0, 0, 0], (y * SIDE + x) * 3);
    const r = renderSlideRgb([{ id: 'x', x: 0, y: 0, pixels: p }], { threshold: 0.5, layers: ['tissue'], scale: 0.1 });
    assert.equal(r.tileRects[0].size, 5);
    assert.deepEqual([0, 1, 2, 3, 4].map((x) => at(r, x, 2)[0]), [0, 0, 128, 255, 255]);
  });

  test('default scale keeps a wide slide within 2000 px', () => {
    const tiles: SlideTile[] = [0, 199].map((k) => ({ id: String(k), x: 1 + 50 * k, y: 1, pixels: solid([100, 100, 100]) }));
    const r = renderSlideRgb(tiles, { threshold: 0.5, layers: ['tissue'] });
    assert.equal(r.scale, 0.2);
    assert.equal(r.width, 2000);
    assert.deepEqual(r.tileRects[1], { id: '199', left: 1990, top: 0, size: 10 });
  });

  /** A 5×4 grid: label 1 in the left two columns; scores make exactly two FN and three FP. */
  function gridTiles(): { tiles: SlideTile[]; fn: Set<string>; fp: Set<string> } {
    const tiles: SlideTile[] = [];
    const fn = new Set(['0-1', '1-3']), fp = new Set(['3-0', '4-2', '2-2']);
    for (let r = 0; r < 4; r++) for (let c = 0; c < 5; c++) {
      const id = `${c}-${r}`;
      const label = c < 2 ? 1 : 0;
      const score = fn.has(id) ? 0.2 : fp.has(id) ? 0.8 : label ? 0.9 : 0.1;
      tiles.push({ id, x: 1 + 50 * c, y: 1 + 50 * r, label, score, pixels: solid([200, 200, 200]) });
    }
    return { tiles, fn, fp };
  }

  /** ids of the tiles holding pixels of colour c, and how many such pixels lie outside every tile. */
  function whereColour(r: ReturnType<typeof renderSlideRgb>, c: Rgb): { ids: Map<string, number>; outside: number } {
    const ids = new Map<string, number>();
    let outside = 0;
    for (let y = 0; y < r.slideHeight; y++) for (let x = 0; x < r.slideWidth; x++) {
      const p = at(r, x, y);
      if (p[0] !== c[0] || p[1] !== c[1] || p[2] !== c[2]) continue;
      const t = r.tileRects.find((t) => x >= t.left && x < t.left + t.size && y >= t.top && y < t.top + t.size);
      if (t) ids.set(t.id, (ids.get(t.id) ?? 0) + 1); else outside++;
    }
    return { ids, outside };
  }

  test('FN and FP outlines surround exactly those tiles; truth contour stays in IDC(+) tiles', async () => {
    const { tiles, fn, fp } = gridTiles();
    const r = renderSlideRgb(tiles, { threshold: 0.5 });
    assert.equal(r.falseNegatives, 2);
    assert.equal(r.falsePositives, 3);
    assert.ok(r.height > r.slideHeight, 'legend below the slide');
    const fnPx = whereColour(r, SLIDE_COLOURS.falseNegative), fpPx = whereColour(r, SLIDE_COLOURS.falsePositive);
    assert.deepEqual([...fnPx.ids.keys()].sort(), [...fn].sort());
    assert.deepEqual([...fpPx.ids.keys()].sort(), [...fp].sort());
    assert.equal(fnPx.outside + fpPx.outside, 0);
    // An outline, not a fill: a ring of width ew = 5 inset by the 3-px truth contour.
    for (const [id, n] of [...fnPx.ids, ...fpPx.ids]) assert.equal(n, 44 * 44 - 34 * 34, id);
    const rect = r.tileRects.find((t) => t.id === '0-1')!;
    assert.deepEqual(at(r, rect.left + 3, rect.top + 25), [...SLIDE_COLOURS.falseNegative]);
    assert.notDeepEqual(at(r, rect.left + 25, rect.top + 25), [...SLIDE_COLOURS.falseNegative]);

    const truth = whereColour(r, SLIDE_COLOURS.truth);
    assert.deepEqual([...truth.ids.keys()].sort(), tiles.filter((t) => t.label === 1 && (t.x === 1 || t.x === 51)).map((t) => t.id).sort());
    assert.equal(truth.outside, 0);
    // Contour on the region's edge only: the shared edge between columns 0 and 1 stays clear.
    const inner = r.tileRects.find((t) => t.id === '0-1')!;
    assert.notDeepEqual(at(r, inner.left + 49, inner.top + 25), [...SLIDE_COLOURS.truth]);

    const plain = renderSlideRgb(tiles, { threshold: 0.5, layers: ['tissue', 'probability'] });
    assert.equal(whereColour(plain, SLIDE_COLOURS.falseNegative).ids.size + whereColour(plain, SLIDE_COLOURS.falsePositive).ids.size, 0);
    assert.equal(whereColour(plain, SLIDE_COLOURS.truth).ids.size, 0);
    // The tint changes the tissue and differs between low and high scores.
    const lo = r.tileRects.find((t) => t.id === '3-1')!, hi = r.tileRects.find((t) => t.id === '0-0')!;
    assert.notDeepEqual(at(plain, lo.left + 25, lo.top + 25), [200, 200, 200]);
    assert.notDeepEqual(at(plain, lo.left + 25, lo.top + 25), at(plain, hi.left + 25, hi.top + 25));

    const png = await slideMap(tiles, { threshold: 0.5 });
    const meta = await sharp(png.png).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', png.width, png.height]);
    assert.deepEqual([png.width, png.height], [r.width, r.height]);
  });

  test('rejects empty input and a bad threshold', async () => {
    await rejectsIdc(slideMap([], { threshold: 0.5 }), 'BAD_ARGUMENT');
    await rejectsIdc(() => renderSlideRgb(placed, { threshold: 1.5 }), 'BAD_ARGUMENT');
    await rejectsIdc(() => renderSlideRgb([{ ...placed[0], pixels: new Uint8Array(10) }], { threshold: 0.5 }), 'BAD_ARGUMENT');
  });
});
