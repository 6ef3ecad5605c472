/**
 * Stain-normalization benchmark: node --import tsx bench/stains.ts [outputDir]
 *
 * On an output folder whose manifest, split and cache exist (default: the full-scale one that
 * `npm run bench` leaves in .idc-bench/out-organize-279), times the per-patient Macenko estimate
 * of every split (from scratch) and reading random batches raw versus normalized.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultConfig } from '../src/core/config';
import { prepareData } from '../src/core/train/data';
import { epochOrder, readCacheManifest } from '../src/core/cache';
import { SPLIT_NAMES } from '../src/core/split';

async function main(): Promise<void> {
  const out = resolve(process.argv[2] ?? '.idc-bench/out-organize-279');
  const config = defaultConfig();
  config.data.stainNormalization = 'macenko';
  const plain = await prepareData(out, defaultConfig()); // builds the cache if needed, untimed
  for (const s of SPLIT_NAMES) rmSync(join(plain.cache.cacheDir, `${s}.stains.json`), { force: true });
  const m = readCacheManifest(plain.cache.cacheDir);
  const patches = SPLIT_NAMES.reduce((n, s) => n + m.splits[s].count, 0);
  let t = performance.now();
  const data = await prepareData(out, config);
  const secs = (performance.now() - t) / 1000;
  const patients = SPLIT_NAMES.reduce((n, s) => n + Object.keys(data.stains[s]?.patients ?? {}).length, 0);
  const skipped = SPLIT_NAMES.flatMap((s) => Object.entries(data.stains[s]?.patients ?? {}).filter(([, e]) => 'skipped' in e).map(([p]) => p));
  console.log(`Macenko estimate: ${patients} patients, ${patches} patches in ${secs.toFixed(1)} s (${Math.round(patches / secs)} patches/s); no estimate for ${skipped.length}${skipped.length ? `: ${skipped.slice(0, 5).join(', ')}` : ''}`);
  const bytes = SPLIT_NAMES.reduce((n, s) => n + readFileSync(join(data.cache.cacheDir, `${s}.stains.json`)).length, 0);
  console.log(`  stains.json: ${(bytes / 1024).toFixed(0)} kB in all`);
  const bs = 64;
  const r = data.open('val');
  const order = epochOrder(r.size, 1, 0);
  const n = Math.min(300, Math.floor(r.size / bs));
  const buf = new Uint8Array(bs * 7500);
  const first = order.subarray(0, bs);
  const changed = Buffer.compare(Buffer.from(r.readRawBatch(first)), Buffer.from(r.readBatch(first))) !== 0; // also builds the row → matrix index
  console.log(`  normalized rows differ from raw ones: ${changed}`);
  const modes = [['raw', (i: Uint32Array) => r.readRawBatch(i, buf)], ['normalized', (i: Uint32Array) => r.readBatch(i, buf)]] as const;
  for (const pass of [1, 2]) {
    for (const [name, read] of modes) {
      t = performance.now();
      for (let b = 0; b < n; b++) read(order.subarray(b * bs, (b + 1) * bs));
      const ms = (performance.now() - t) / n;
      // The first pass warms the JIT and the page cache; the second is the figure.
      if (pass === 2) console.log(`  val readBatch of ${bs} random rows, ${name}: ${ms.toFixed(3)} ms (${Math.round((bs / ms) * 1000)} patches/s)`);
    }
  }
  r.close();
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
