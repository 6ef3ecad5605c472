/**
 * Training/inference throughput of the default model on the wasm backend.
 *   node --import tsx bench/kernels.ts [--batches 32,64,128,256] [--steps 3] [--fit] [--profile 64]
 * --fit also times model.trainOnBatch; --profile B prints the slowest kernels of one step at batch B.
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import { initWasmBackend } from '../src/core/engine/wasm-kernels';
import { buildModel, foldForInference } from '../src/core/engine/model';
import { makeTrainStep } from '../src/core/engine/train-step';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1] ?? '';
}

const batches = (arg('batches') ?? '32,64,128,256').split(',').map(Number);
const steps = Number(arg('steps') ?? 3);
const withFit = process.argv.includes('--fit');
const profileBatch = arg('profile') ? Number(arg('profile')) : undefined;

function data(b: number): [tf.Tensor4D, tf.Tensor2D] {
  return [tf.randomUniform([b, 50, 50, 3]) as tf.Tensor4D, tf.cast(tf.greater(tf.randomUniform([b, 1]), 0.5), 'float32') as tf.Tensor2D];
}

/**
 * Seconds per call after `warm` unmeasured calls: best wall time, and best CPU time of this process.
 * The backend is single-threaded, so on a busy shared box CPU time is the figure that an idle
 * machine's wall clock would show (V8's GC helper threads add a little to it).
 */
async function timeIt(f: () => Promise<void> | void, warm: number, n: number): Promise<{ wall: number; cpu: number }> {
  for (let i = 0; i < warm; i++) await f();
  let wall = Infinity, cpu = Infinity;
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const c = process.cpuUsage();
    await f();
    const dc = process.cpuUsage(c);
    wall = Math.min(wall, performance.now() - t);
    cpu = Math.min(cpu, (dc.user + dc.system) / 1000);
  }
  return { wall: wall / 1000, cpu: cpu / 1000 };
}

const rate = (b: number, t: { wall: number; cpu: number }) => [(b / t.wall).toFixed(0), (b / t.cpu).toFixed(0)];

async function main(): Promise<void> {
  await initWasmBackend();
  console.log(`backend ${tf.getBackend()}, node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('img/s by wall clock (best of n) and by this process\'s CPU time');
  const rows: string[][] = [['batch', 'train wall', 'train cpu', ...(withFit ? ['trainOnBatch wall', 'trainOnBatch cpu'] : []), 'infer wall', 'infer cpu', 'folded wall', 'folded cpu']];
  for (const b of batches) {
    const model = buildModel({ seed: 1 });
    const [x, y] = data(b);
    const step = makeTrainStep(model, tf.train.adam(1e-3));
    const train = await timeIt(() => { const l = step(x, y); l.dataSync(); l.dispose(); }, 3, steps);
    const row = [String(b), ...rate(b, train)];
    if (withFit) {
      const m2 = buildModel({ seed: 1 });
      m2.compile({ optimizer: tf.train.adam(1e-3), loss: 'binaryCrossentropy' });
      const fit = await timeIt(async () => { await m2.trainOnBatch(x, y); }, 3, steps);
      row.push(...rate(b, fit));
      m2.dispose();
    }
    const predict = (m: tfl.LayersModel) => () => { const p = m.predict(x, { batchSize: b }) as tf.Tensor; p.dataSync(); p.dispose(); };
    row.push(...rate(b, await timeIt(predict(model), 2, steps + 2)));
    const folded = foldForInference(model);
    row.push(...rate(b, await timeIt(predict(folded), 2, steps + 2)));
    folded.dispose();
    rows.push(row);
    console.log(row.join('\t'));
    model.dispose();
    tf.dispose([x, y]);
  }
  console.log(`\nload average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padStart(w[i])).join('  '));

  if (profileBatch) {
    const model = buildModel({ seed: 1 });
    const [x, y] = data(profileBatch);
    const step = makeTrainStep(model, tf.train.adam(1e-3));
    for (let i = 0; i < 5; i++) step(x, y).dispose(); // let V8 optimise the JS kernels first
    const prof = await tf.profile(() => { step(x, y).dispose(); });
    const agg = new Map<string, [number, number]>();
    for (const k of prof.kernels) {
      if (k.name.endsWith('__op') || k.name === 'unnamed scope') continue;
      const key = `${k.name} ${k.inputShapes.map((s) => JSON.stringify(s)).join(' ')}`;
      const e = agg.get(key) ?? [0, 0];
      e[0] += k.kernelTimeMs as number;
      e[1]++;
      agg.set(key, e);
    }
    const total = [...agg.values()].reduce((a, e) => a + e[0], 0);
    console.log(`\nprofile batch ${profileBatch}: ${prof.kernels.length} kernels, ${total.toFixed(1)} ms (includes nested kernels)`);
    for (const [k, [ms, n]] of [...agg].sort((p, q) => q[1][0] - p[1][0]).slice(0, 30)) console.log(ms.toFixed(2).padStart(8), String(n).padStart(4), k);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
