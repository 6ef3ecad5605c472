/**
 * The GPU benchmark's Node side, bundled by bench/gpu/pack.sh into the carried extension's dist/
 * (bench-gpu.js) and driven by bench/gpu/run.sh; the GPU machine has no node_modules.
 *   bench-gpu.js row torch|torch-rows|webgpu|reference --json FILE [--python P] [--device cuda|cpu]
 *       [--batches 64,256,1024] [--infer 256,1024] [--steps 20] [--reference PATH] [--allow-software-adapter]
 *       [--patients 8]
 * torch times steps on float batches already in memory (as the reference does); torch-rows times
 * them as idc train runs them, from a synthetic patch cache the engine reads itself (Macenko, flips
 * and rotation on the device), so the two rows show what the data path costs.
 *   bench-gpu.js report --dir WORKDIR
 * One row per process, so a native crash (Dawn, CUDA) costs one row, not the table. Steps are timed
 * as bench/train.ts times them (bench/rate.ts).
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../../src/core/engine/backends';
import { DEFAULT_MODEL } from '../../src/core/engine/model';
import { LocalTrainer, type Trainer, type TrainerOptions } from '../../src/core/train/trainer';
import { TorchTrainer } from '../../src/core/train/torch-trainer';
import type { EpochLog } from '../../src/core/train/checkpoint';
import { rate, type Rate } from '../rate';
import { syntheticCache } from '../synthetic-cache';
import { defaultConfig } from '../../src/core/config';
import { epochOrder } from '../../src/core/cache';
import { drawnAugmentation } from '../../src/core/train/augment';
import { Rng } from '../../src/core/rng';

/** A timed cell, or why that batch size failed (a buffer over the device's limits, say). */
type Cell = Rate | { error: string };

export interface Row {
  kind: (typeof ROW_KINDS)[number];
  name: string;
  train: Record<string, Cell>;
  infer: Record<string, Cell>;
}

const ROW_KINDS = ['torch', 'torch-rows', 'webgpu', 'reference'] as const;
const nums = (s: string, flag: string): number[] => s.split(',').map((v) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) usage(`${flag} takes positive integers separated by commas (got "${s}")`);
  return n;
});

function usage(message: string): never {
  console.error(`bench-gpu: ${message}`);
  process.exit(2);
}

/** Same weights, loss and learning rate as bench/train.ts, so the rows compare with its table. */
const OPTS: TrainerOptions = { model: { ...DEFAULT_MODEL, seed: 1 }, learningRate: 1e-3, loss: { kind: 'focal', gamma: 2 } };

/** Deterministic pixels and labels (the bench/train.ts recipe): throughput does not depend on content. */
function inputs(maxB: number): { x: Float32Array; y: Uint8Array } {
  const x = new Float32Array(maxB * 7500);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 2654435761) >>> 0) / 2 ** 32;
  return { x, y: Uint8Array.from({ length: maxB }, (_, i) => ((i * 7) % 3 === 0 ? 1 : 0)) };
}

async function timeTrainer(t: Trainer, batches: number[], infer: number[], steps: number, warm: number): Promise<Pick<Row, 'train' | 'infer'>> {
  const { x, y } = inputs(Math.max(...batches, ...infer));
  const out: Pick<Row, 'train' | 'infer'> = { train: {}, infer: {} };
  // One batch size failing must not cost the others their cells.
  const timed = (b: number, f: () => Promise<unknown>, w: number): Promise<Cell> =>
    rate(b, f, w, steps).catch((e: unknown) => ({ error: String((e as Error)?.message ?? e).split('\n')[0] }));
  for (const b of batches) out.train[b] = await timed(b, () => t.trainStep(x, y, b), warm);
  for (const b of infer) out.infer[b] = await timed(b, () => t.predict(x, b), 1);
  return out;
}

/**
 * ../shared/bench/torch_reference.py on the same card: one process per training batch (it takes one);
 * it always infers at batch 256, so that cell is the median of its runs.
 */
function reference(script: string, python: string, device: string, batches: number[], steps: number): Row {
  const row: Row = { kind: 'reference', name: '', train: {}, infer: {} };
  const inferRuns: number[] = [];
  for (const b of batches) {
    const r = spawnSync(python, [script, '--device', device, '--batch', String(b), '--steps', String(steps)], { encoding: 'utf8' });
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT'));
    if (!line) throw new Error(`torch_reference.py --batch ${b} failed (exit ${r.status ?? r.signal}): ${r.stderr.trim().split('\n').pop() ?? ''}`);
    const f = Object.fromEntries(line.split(' ').slice(1).map((kv) => kv.split('=') as [string, string]));
    row.name = `PyTorch reference (torch_reference.py, torch ${f.torch}, ${f.device}, ${f.layout})`;
    // It reports the mean over its steps: no median or best, so both cells carry the mean.
    const train = Number(f.train_img_s);
    row.train[b] = { med: train, best: train, cpu: NaN };
    inferRuns.push(Number(f.infer_img_s));
  }
  inferRuns.sort((a, c) => a - c);
  const inf = inferRuns[Math.floor(inferRuns.length / 2)];
  row.infer[256] = { med: inf, best: inf, cpu: NaN };
  return row;
}

async function runRow(kind: (typeof ROW_KINDS)[number], v: Record<string, string | boolean | undefined>): Promise<Row> {
  const batches = nums(String(v.batches ?? '64,256,1024'), '--batches');
  const infer = nums(String(v.infer ?? '256,1024'), '--infer');
  const steps = nums(String(v.steps ?? '20'), '--steps')[0];
  const python = String(v.python ?? 'python3');
  const device = String(v.device ?? 'cuda');
  if (kind === 'reference') {
    const script = String(v.reference ?? '');
    if (!existsSync(script)) usage(`--reference: ${script || '(none given)'} does not exist`);
    return reference(script, python, device, batches, Math.max(steps, 3));
  }
  if (kind === 'torch') {
    // As idc train does: TF.js on wasm builds the model whose weights the engine starts from.
    await initBackend('torch', { python });
    const t = await TorchTrainer.create({ ...OPTS, python, device });
    try {
      return { kind, name: `torch engine (ours: engine.backend "torch"), ${t.describe()}`, ...await timeTrainer(t, batches, infer, steps, 3) };
    } finally {
      await t.dispose();
    }
  }
  if (kind === 'torch-rows') return cacheRows(python, device, batches, infer, steps, nums(String(v.patients ?? '8'), '--patients')[0]);
  // webgpu: the backend `engine.backend: "webgpu"` starts, on Dawn's high-performance adapter.
  const started = await initBackend('webgpu', { allowSoftwareAdapter: v['allow-software-adapter'] === true });
  const adapter = /Using webgpu \(WebGPU, ([^;]+);/.exec(started.summary)?.[1] ?? 'adapter unnamed';
  const t = new LocalTrainer(OPTS);
  try {
    // Two warm-up steps: the first compiles every shader.
    return { kind, name: `WebGPU (ours: engine.backend "webgpu"), Dawn on ${adapter}`, ...await timeTrainer(t, batches, infer, steps, 2) };
  } finally {
    await t.dispose();
  }
}

/** Steps as idc train takes them: row numbers and augmentation draws in, the engine reads the cache. */
async function cacheRows(python: string, device: string, batches: number[], infer: number[], steps: number, patients: number): Promise<Row> {
  await initBackend('torch', { python });
  const config = defaultConfig();
  const cache = await syntheticCache(patients, config);
  const t = await TorchTrainer.create({ ...OPTS, python, device });
  try {
    const reader = cache.train;
    const opened = await t.openRows([reader]);
    if (!opened.ok) throw new Error(`the engine cannot read the cache: ${opened.reason}`);
    const aug = config.train.augment;
    // Rows in epoch order, wrapping around: a small cache serves any batch size.
    const order = epochOrder(reader.size, 1, 0);
    let at = 0;
    const next = (b: number) => Uint32Array.from({ length: b }, () => order[at++ % order.length]);
    const rng = new Rng(1);
    const out: Pick<Row, 'train' | 'infer'> = { train: {}, infer: {} };
    const timed = (b: number, f: () => Promise<unknown>, w: number): Promise<Cell> =>
      rate(b, f, w, steps).catch((e: unknown) => ({ error: String((e as Error)?.message ?? e).split('\n')[0] }));
    for (const b of batches) {
      out.train[b] = await timed(b, () => {
        const indices = next(b);
        return t.trainRows({ split: 'train', indices, y: Uint8Array.from(indices, (i) => reader.labels[i]), ...drawnAugmentation(b, aug, rng) });
      }, 3);
    }
    for (const b of infer) out.infer[b] = await timed(b, () => t.predictRows('train', next(b)), 1);
    return { kind: 'torch-rows', name: `torch engine from the patch cache (as idc train runs it: ${reader.size} synthetic patches, cache ${opened.where}, Macenko, flips and rotation on ${t.info.device})`, ...out };
  } finally {
    await t.dispose();
    cache.dispose();
  }
}

// ------------------------------------------------------------------------------------ the table

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const rateCell = (r: Cell | undefined) => {
  if (!r) return '';
  if ('error' in r) return `failed: ${r.error.slice(0, 80).replace(/\|/g, '/')}`;
  return r.best > r.med * 1.005 ? `${fmt(r.med)} (${fmt(r.best)})` : fmt(r.med);
};
const medOf = (r: Cell) => ('error' in r ? 'failed' : fmt(r.med));

interface Phase { name: string; seconds: number; status: number; note: string }

/** timings.tsv lines written by run.sh: name, seconds, exit status, note. */
function phases(dir: string): Phase[] {
  const f = join(dir, 'timings.tsv');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => {
    const [name, seconds, status, ...note] = l.split('\t');
    return { name, seconds: Number(seconds), status: Number(status), note: note.join(' ') };
  });
}

function history(dir: string): EpochLog[] {
  const runs = join(dir, 'full', 'out', 'runs');
  if (!existsSync(runs)) return [];
  const run = readdirSync(runs).find((r) => existsSync(join(runs, r, 'history.jsonl')));
  if (!run) return [];
  return readFileSync(join(runs, run, 'history.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as EpochLog);
}

const statusWord = (p: Phase) => (p.status === 0 ? 'ok' : p.status === 124 ? 'timed out' : `failed (exit ${p.status})`);

/** The markdown run.sh prints and writes to $OUT: throughput rows, then the full-scale run. */
export function report(dir: string): { text: string; complete: boolean } {
  const rowsDir = join(dir, 'rows');
  const loaded = new Map<string, Row>();
  for (const k of ROW_KINDS) {
    const f = join(rowsDir, `${k}.json`);
    if (existsSync(f)) loaded.set(k, JSON.parse(readFileSync(f, 'utf8')) as Row);
  }
  const notes = new Map<string, string>();
  for (const k of ROW_KINDS) {
    const f = join(rowsDir, `${k}.skipped`);
    if (existsSync(f)) notes.set(k, readFileSync(f, 'utf8').trim());
  }
  const hist = history(dir);
  const ph = phases(dir);
  const train = ph.find((p) => p.name === 'train');

  const rows = [...loaded.values()];
  const trainB = [...new Set(rows.flatMap((r) => Object.keys(r.train).map(Number)))].sort((a, b) => a - b);
  const inferB = [...new Set(rows.flatMap((r) => Object.keys(r.infer).map(Number)))].sort((a, b) => a - b);
  const cliBatch = hist.length ? readConfigBatch(dir) : undefined;
  const cols = [...new Set([...trainB, ...(cliBatch ? [cliBatch] : [])])].sort((a, b) => a - b);
  const head = ['', ...cols.map((b) => `train, batch ${b}`), ...inferB.map((b) => `infer, batch ${b}`)];
  const lines: string[] = [];
  const env = join(dir, 'env.txt');
  if (existsSync(env)) lines.push(...readFileSync(env, 'utf8').trim().split('\n').map((l) => `${l}  `), '');
  lines.push('img/s, median of the timed steps (best in brackets when it differs); the reference reports its mean.', '');
  lines.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
  for (const k of ROW_KINDS) {
    const r = loaded.get(k);
    if (!r) {
      lines.push(`| ${k}: ${notes.get(k) ?? 'not run'} |${head.slice(1).map(() => '').join(' |')} |`);
      continue;
    }
    lines.push(`| ${r.name} | ${cols.map((b) => rateCell(r.train[b])).join(' | ')} | ${inferB.map((b) => rateCell(r.infer[b])).join(' | ')} |`);
  }
  if (hist.length && cliBatch) {
    // The CLI's own figure: a whole epoch through the data pipeline (cache reads, augmentation, framing).
    const best = Math.max(...hist.map((h) => h.imagesPerSecond));
    lines.push(`| idc train, torch engine, whole epochs (data pipeline included) | ${cols.map((b) => (b === cliBatch ? fmt(best) : '')).join(' | ')} | ${inferB.map(() => '').join(' | ')} |`);
  }

  const synth = ph.find((p) => p.name === 'synth');
  lines.push('', `Synthetic archive (${synth?.note ?? 'not generated'}), \`idc train --epochs 2 --backend torch\`${trainDetail(dir)}:`, '', '| step | time | status | |', '|---|---|---|---|');
  for (const p of ph) lines.push(`| ${p.name} | ${p.seconds.toFixed(1)} s | ${statusWord(p)} | ${p.note} |`);
  if (hist.length) {
    lines.push('', '| epoch | seconds | train img/s | loss | val_loss | val AUC |', '|---|---|---|---|---|---|');
    for (const h of hist) lines.push(`| ${h.epoch + 1} | ${h.seconds.toFixed(1)} | ${fmt(h.imagesPerSecond)} | ${h.loss.toFixed(4)} | ${h.val_loss.toFixed(4)} | **${h.val_auc.toFixed(4)}** |`);
  } else {
    lines.push('', 'No epoch finished.');
  }
  const complete = ROW_KINDS.every((k) => loaded.has(k)) && hist.length >= 2 && train?.status === 0;
  return { text: lines.join('\n'), complete };
}

/** What idc train said it used, and how long its patch cache took, from its log and run.json. */
function trainDetail(dir: string): string {
  const parts: string[] = [];
  const runs = join(dir, 'full', 'out', 'runs');
  const run = existsSync(runs) ? readdirSync(runs).find((r) => existsSync(join(runs, r, 'run.json'))) : undefined;
  if (run) parts.push(`on ${(JSON.parse(readFileSync(join(runs, run, 'run.json'), 'utf8')) as { backend?: string }).backend ?? '?'}`);
  const log = join(dir, 'logs', 'train.log');
  const cache = existsSync(log) ? /^Caching patches .* in (.+)$/m.exec(readFileSync(log, 'utf8'))?.[1] : undefined;
  if (cache) parts.push(`patch cache built in ${cache.trim()}`);
  return parts.length ? ` (${parts.join('; ')})` : '';
}

function readConfigBatch(dir: string): number | undefined {
  try {
    const c = JSON.parse(readFileSync(join(dir, 'full', 'idc.config.json'), 'utf8')) as { train?: { batchSize?: number } };
    return c.train?.batchSize ?? 64;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const [cmd, kind, ...rest] = process.argv.slice(2);
  if (cmd === 'report') {
    const { values } = parseArgs({ args: [kind, ...rest].filter((a) => a !== undefined), options: { dir: { type: 'string' } } });
    if (!values.dir || !existsSync(values.dir)) usage('report needs --dir WORKDIR (the folder run.sh worked in)');
    const r = report(values.dir);
    console.log(r.text);
    process.exitCode = r.complete ? 0 : 3;
    return;
  }
  if (cmd !== 'row' || !(ROW_KINDS as readonly string[]).includes(kind)) usage(`usage: bench-gpu.js row ${ROW_KINDS.join('|')} --json FILE … | bench-gpu.js report --dir DIR`);
  const { values } = parseArgs({
    args: rest,
    options: {
      json: { type: 'string' }, python: { type: 'string' }, device: { type: 'string' }, batches: { type: 'string' }, infer: { type: 'string' },
      steps: { type: 'string' }, reference: { type: 'string' }, 'allow-software-adapter': { type: 'boolean' }, patients: { type: 'string' },
    },
  });
  if (!values.json) usage('row needs --json FILE');
  const row = await runRow(kind as Row['kind'], values);
  writeFileSync(values.json, JSON.stringify(row, null, 2));
  console.log(`${row.name}: train ${Object.entries(row.train).map(([b, r]) => `${b}: ${medOf(r)}`).join(', ')}; infer ${Object.entries(row.infer).map(([b, r]) => `${b}: ${medOf(r)}`).join(', ')} img/s`);
}

// Dawn keeps the event loop alive while its GPU object is reachable: exit once the row is written.
main().then(() => process.exit(process.exitCode ?? 0), (e: unknown) => {
  console.error(`bench-gpu: ${(e as Error)?.message ?? e}`);
  process.exit(1);
});
