import assert from 'node:assert/strict';
import type { IdcConfig } from '../../src/core/config';
import { prepareData } from '../../src/core/train/data';
import { toFloat } from '../../src/core/train/augment';

/** `count` float batches of a prepared output folder, as training reads them (seeded shuffle, no augmentation). */
export async function floatBatches(out: string, config: IdcConfig, count: number, split: 'train' | 'val' = 'train') {
  const data = await prepareData(out, config);
  const reader = data.open(split);
  const got: Array<{ x: Float32Array; y: Uint8Array; n: number }> = [];
  try {
    for (let epoch = 0; got.length < count; epoch++) {
      for await (const b of reader.batches({ batchSize: config.train.batchSize, shuffle: true, seed: 3, epoch })) {
        if (got.length >= count) break;
        got.push({ x: Float32Array.from(toFloat(b.x, b.y.length)), y: Uint8Array.from(b.y), n: b.y.length });
      }
    }
  } finally {
    reader.close();
  }
  return got;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
