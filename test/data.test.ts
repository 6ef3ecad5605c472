import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepareData } from '../src/core/train/data';
import { defaultConfig } from '../src/core/config';
import { preparedOutput } from './helpers/pipeline';

test('training refuses a manifest edited after organize, and a split of another manifest', async () => {
  const { out } = await preparedOutput(3, 21, [0.34, 0.33, 0.33]);
  const config = defaultConfig();
  const ok = await prepareData(out, config);
  assert.ok(ok.cache.counts.train > 0);
  const manifest = join(out, 'manifest.csv');
  const original = readFileSync(manifest, 'utf8');
  appendFileSync(manifest, '999_idx5_x1_y1_class0,999,1,1,0,50,50,999/0/999_idx5_x1_y1_class0.png\n');
  await assert.rejects(prepareData(out, config), (e: Error & { hint?: string }) => /changed after organize wrote it/.test(e.message) && /organize --force/.test(e.hint ?? ''));
  writeFileSync(manifest, original);
  const splitFile = join(out, 'split.json');
  const split = JSON.parse(readFileSync(splitFile, 'utf8'));
  split.manifestHash = '0123456789abcdef';
  writeFileSync(splitFile, JSON.stringify(split));
  await assert.rejects(prepareData(out, config), (e: Error & { hint?: string }) => /made from an older manifest/.test(e.message) && /idc split/.test(e.hint ?? ''));
});
