import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode } from 'fast-png';
import { encodeRgbPng, encodeRgbPngPure, resizeNearest } from '../src/core/visual/png-encode';

const image = (w: number, h: number) => Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37 + (i >> 5)) & 255);

test('PNG encoding with sharp and with the pure-JS fallback gives the same pixels', async () => {
  const rgb = image(31, 17);
  for (const png of [await encodeRgbPng(rgb, 31, 17), encodeRgbPngPure(rgb, 31, 17, 3)]) {
    const d = decode(png);
    assert.equal(d.width, 31);
    assert.equal(d.height, 17);
    assert.equal(d.channels, 3);
    assert.deepEqual(Uint8Array.from(d.data as Uint8Array), rgb);
  }
});

test('nearest-neighbour resize repeats each pixel in a block', () => {
  const rgb = image(2, 2);
  const big = resizeNearest(rgb, 2, 2, 4, 4);
  const px = (b: Uint8Array, w: number, x: number, y: number) => Array.from(b.subarray((y * w + x) * 3, (y * w + x) * 3 + 3));
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) assert.deepEqual(px(big, 4, x, y), px(rgb, 2, x >> 1, y >> 1));
});
