/**
 * The torch engine's two data paths on one patch cache, default config (Macenko, flips and
 * rotation), same trainer settings:
 *   pixels: this process reads and normalizes the rows, augments them and sends float32 (7500 per patch);
 *   rows:   it sends row numbers and augmentation draws; the engine reads the cache memory-mapped
 *           and normalizes and augments in torch (on a GPU: on the device).
 *   node --import tsx bench/torch-rows.ts [--batches 64,256] [--steps 10] [--threads 2] [--patients 12] [--jitter]
 * Cells: img/s of whole steps (data included), median (best), then this process's CPU ms per batch.
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { defaultConfig } from '../src/core/config';
import { TorchTrainer } from '../src/core/train/torch-trainer';
import { augmentToFloat, drawnAugmentation, AUGMENT_PARAMS } from '../src/core/train/augment';
import { Rng } from '../src/core/rng';
import { syntheticCache } from './synthetic-cache';
import { initWasmBackend } from '../src/core/engine/wasm-kernels';

const PYTHON = '/usr/bin/python3';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { batches: { type: 'string' }, steps: { type: 'string' }, threads: { type: 'string' }, patients: { type: 'string' }, jitter: { type: 'boolean' } } });
  if (spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status !== 0) { console.log(`no torch for ${PYTHON}: skipped.`); return; }
  const batches = (values.batches ?? '64,256').split(',').map(Number);
  const steps = Number(values.steps ?? 10);
  const threads = Number(values.threads ?? 2);
  await initWasmBackend();
  const config = defaultConfig();
  if (values.jitter) config.train.augment.stainJitter = { scale: 0.05, shift: 0.01 };
  const cache = await syntheticCache(Number(values.patients ?? 12), config);
  try {
    const reader = cache.train;
    const aug = config.train.augment;
    console.log(`${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}; train split ${reader.size} patches, stainNormalization ${config.data.stainNormalization}, augment ${JSON.stringify(aug)}`);
    console.log(`load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    const opts = { model: { ...config.model, seed: 1 }, learningRate: 1e-3, loss: { kind: 'focal' as const, gamma: 2 }, python: PYTHON, threads };
    const pixels = await TorchTrainer.create(opts);
    const engine = await TorchTrainer.create(opts);
    const opened = await engine.openRows([reader]);
    if (!opened.ok) throw new Error(opened.reason);
    const table: string[][] = [['path', ...batches.map((b) => `batch ${b}`)], [`pixels (${pixels.describe()})`], [`rows (cache ${opened.where})`]];
    for (const b of batches) {
      const order = Array.from({ length: 4 }, (_, e) => reader.batches({ batchSize: b, shuffle: true, seed: 1, epoch: e, dropRemainder: true, pixels: false }));
      const plan: Uint32Array[] = [];
      for (const g of order) for await (const x of g) plan.push(Uint32Array.from(x.indices));
      if (plan.length < steps + 2) throw new Error(`only ${plan.length} batches of ${b}: use more --patients`);
      const xf = new Float32Array(b * 7500);
      const drawn = new Float64Array(b * AUGMENT_PARAMS);
      const y = (idx: Uint32Array) => Uint8Array.from(idx, (i) => reader.labels[i]);
      const paths = [
        (idx: Uint32Array, rng: Rng, step: number) => pixels.trainStep(augmentToFloat(reader.readBatch(idx), idx.length, aug, rng, xf), y(idx), idx.length, step),
        (idx: Uint32Array, rng: Rng, step: number) => engine.trainRows({ split: 'train', indices: idx, y: y(idx), ...drawnAugmentation(idx.length, aug, rng, drawn) }, step),
      ];
      for (const [p, run] of paths.entries()) {
        const rng = new Rng(5);
        for (let i = 0; i < 2; i++) await run(plan[i], rng, i);
        const ms: number[] = [];
        const cpu0 = process.cpuUsage();
        for (let i = 2; i < steps + 2; i++) { const t = performance.now(); await run(plan[i], rng, i); ms.push(performance.now() - t); }
        const cpu = process.cpuUsage(cpu0);
        ms.sort((a, c) => a - c);
        table[p + 1].push(`${((b * 1000) / ms[Math.floor(ms.length / 2)]).toFixed(0)} (${((b * 1000) / ms[0]).toFixed(0)}) ${((cpu.user + cpu.system) / 1000 / steps).toFixed(1)} ms`);
      }
      console.log(`  batch ${b} done; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    }
    await pixels.dispose();
    await engine.dispose();
    const w = table[0].map((_, c) => Math.max(...table.map((r) => r[c].length)));
    console.log('\nimg/s of whole training steps, data included: median (best), then this process\'s CPU per batch');
    for (const r of table) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(w[c]) : cell.padStart(w[c]))).join('  '));
  } finally {
    cache.dispose();
  }
}

void main().catch((e) => { console.error(e); process.exitCode = 1; });
