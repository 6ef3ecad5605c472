/**
 * Training and inference throughput of the default model on the wasm backend, one thread
 * (LocalTrainer) against data-parallel replicas (ParallelTrainer).
 *   node --import tsx bench/train.ts [--batches 32,64,128,256] [--infer 64,256,512,1024] [--steps 5]
 *                                   [--threads 2] [--only local,par1,par,coord,torch]
 * Rows: local = LocalTrainer; par1 = ParallelTrainer with 1 replica (its overheads; folded
 * inference); par = N replicas, this thread one of them; coord = N worker replicas, this thread
 * only coordinates; torch = the torch engine (/usr/bin/python3 with torch, --threads torch threads; its
 * CPU column is '-': the work is in another process). Under tsx there is no dist/trainer.worker.js, so the worker is bundled to a temp
 * folder first, as the build script would. Cells: wall-clock img/s, median and (best) step of
 * --steps, then img/s by the busiest thread's CPU time (see rate()).
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { tmpdir, loadavg, cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { buildSync } from 'esbuild';
import * as tf from '@tensorflow/tfjs-core';
import { initWasmBackend } from '../src/core/engine/wasm-kernels';
import { DEFAULT_MODEL } from '../src/core/engine/model';
import { LocalTrainer, type Trainer, type TrainerOptions } from '../src/core/train/trainer';
import { ParallelTrainer } from '../src/core/train/parallel-trainer';
import { TorchTrainer } from '../src/core/train/torch-trainer';
import { cell, rate } from './rate';

type Kind = 'local' | 'par1' | 'par' | 'coord' | 'torch';
const PYTHON = '/usr/bin/python3';
const hasTorch = () => spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

async function make(kind: Kind, opts: TrainerOptions, threads: number, workerFile: string): Promise<Trainer> {
  switch (kind) {
    case 'local': return new LocalTrainer(opts);
    case 'par1': return ParallelTrainer.create({ ...opts, threads: 1, workerFile });
    case 'par': return ParallelTrainer.create({ ...opts, threads, workerFile, mainReplica: true });
    case 'coord': return ParallelTrainer.create({ ...opts, threads, workerFile, mainReplica: false });
    case 'torch': return TorchTrainer.create({ ...opts, python: PYTHON, threads });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { batches: { type: 'string' }, infer: { type: 'string' }, steps: { type: 'string' }, threads: { type: 'string' }, only: { type: 'string' } } });
  const batches = (values.batches ?? '32,64,128,256').split(',').map(Number);
  const inferBatches = (values.infer ?? '64,256,512,1024').split(',').map(Number);
  const steps = Number(values.steps ?? 5);
  const threads = Number(values.threads ?? 2);
  const kinds = (values.only ?? `local,par1,par,coord${hasTorch() ? ',torch' : ''}`).split(',') as Kind[];

  const dir = mkdtempSync(join(tmpdir(), 'idc-bench-train-'));
  const workerFile = join(dir, 'trainer.worker.js');
  buildSync({ entryPoints: [resolve(__dirname, '../src/core/train/trainer.worker.ts')], outfile: workerFile, bundle: true, platform: 'node', format: 'cjs', logLevel: 'error' });
  await initWasmBackend();
  console.log(`wasm backend, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}; default model ${JSON.stringify(DEFAULT_MODEL)}`);
  console.log(`load average before: ${load()}`);

  const opts: TrainerOptions = { model: { ...DEFAULT_MODEL, seed: 1 }, learningRate: 1e-3, loss: { kind: 'focal', gamma: 2 } };
  const maxB = Math.max(...batches, ...inferBatches);
  const x = new Float32Array(maxB * 7500);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 2654435761) >>> 0) / 2 ** 32;
  const y = Uint8Array.from({ length: maxB }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0);

  // All trainers stay up and take turns per batch size, so each column compares them under the
  // same machine load (this box is shared); idle workers cost nothing.
  const trainers = await Promise.all(kinds.map((k) => make(k, opts, threads, workerFile)));
  const rows: string[][] = [['trainer', ...batches.map((b) => `train ${b}`), ...inferBatches.map((b) => `infer ${b}`)]];
  for (const [i, kind] of kinds.entries()) {
    rows.push([kind === 'torch' ? (trainers[i] as TorchTrainer).describe() : kind === 'local' ? 'local (1 thread)' : kind === 'par1' ? 'parallel, 1 replica' : `${kind === 'par' ? 'parallel' : 'coordinator'}, ${threads} replicas`]);
  }
  const timed = (i: number, r: { med: number; best: number; cpu: number }) => cell(kinds[i] === 'torch' ? { ...r, cpu: NaN } : r);
  for (const b of batches) {
    for (const [i, t] of trainers.entries()) rows[i + 1].push(timed(i, await rate(b, () => t.trainStep(x, y, b), 2, steps)));
    console.log(`  train ${b} done; load ${load()}`);
  }
  for (const b of inferBatches) {
    for (const [i, t] of trainers.entries()) rows[i + 1].push(timed(i, await rate(b, () => t.predict(x, b), 1, steps)));
    console.log(`  infer ${b} done; load ${load()}`);
  }
  for (const t of trainers) await t.dispose();
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  console.log('\nimg/s: wall median (wall best) by-busiest-thread-CPU');
  for (const r of rows) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
  console.log(`load average after: ${load()}; tensors left: ${tf.memory().numTensors}`);
  rmSync(dir, { recursive: true, force: true });
  torchReference(batches);
}

/**
 * The peer a user would otherwise pick, measured in the same run: ../shared/bench/torch_reference.py
 * (same CNN in PyTorch) with Debian's python3, plain and with the malloc settings it recommends.
 */
function torchReference(batches: number[]): void {
  const script = resolve(__dirname, '../../shared/bench/torch_reference.py');
  const python = '/usr/bin/python3';
  if (!existsSync(script)) { console.log(`\nPyTorch reference: ${script} not found, skipped.`); return; }
  if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) { console.log('\nPyTorch reference: no torch for /usr/bin/python3 (apt-get install python3-torch), skipped.'); return; }
  console.log('\nPyTorch reference (CPU, same model, Adam, BCE + L2):');
  const malloc = { MALLOC_MMAP_MAX_: '0', MALLOC_TRIM_THRESHOLD_: '100000000000' };
  for (const [label, env] of [['default malloc', {}], ['MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1e11', malloc]] as const) {
    for (const b of batches) {
      const r = spawnSync(python, [script, '--batch', String(b), '--threads', String(cpus().length)], { encoding: 'utf8', env: { ...process.env, ...env } });
      const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT')) ?? `failed: ${r.stderr.trim().split('\n').pop()}`;
      console.log(`  ${label.padEnd(48)} ${line}`);
    }
  }
}

void main().catch((e) => { console.error(e); process.exitCode = 1; });
