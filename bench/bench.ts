/**
 * `npm run bench`: prints the pipeline's speed figures on this machine. Each step runs in a
 * fresh child process so its peak memory (maxRSS, worker threads included) is its own.
 * Usage: node dist/bench.js [--patients 279] [--dir .idc-bench] [--only synth,organize,synth-zip,organize-zip,split,cache,evaluate]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, statSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { cpus, totalmem } from 'node:os';
import { generateSyntheticArchive } from '../src/core/synth/synth';
import { organize } from '../src/core/organize/organize';
import { readManifestWithHash } from '../src/core/manifest';
import { splitByPatient, writeSplit } from '../src/core/split';

interface StepResult { step: string; seconds: number; items: number; unit: string; maxRssMB: number; note?: string }

async function runStep(step: string, dir: string, patients: number): Promise<StepResult> {
  const archive = join(dir, `archive-${patients}`);
  const zip = join(dir, `archive-${patients}.zip`);
  const t0 = performance.now();
  let items = 0, unit = 'files', note: string | undefined;
  switch (step) {
    case 'synth': {
      const s = await generateSyntheticArchive({ out: archive, patients, seed: 1 });
      items = s.patches; unit = 'patches'; note = `${s.patients} patients, ${(100 * s.positives / s.patches).toFixed(1)}% positive`;
      break;
    }
    case 'synth-zip': {
      const s = await generateSyntheticArchive({ out: zip, patients, seed: 1, zip: true });
      items = s.files; unit = 'entries'; note = `${(statSync(zip).size / 1e9).toFixed(2)} GB`;
      break;
    }
    case 'organize': case 'organize-zip': {
      const r = await organize({ archive: step === 'organize' ? archive : zip, out: join(dir, `out-${step}-${patients}`), force: true });
      items = r.report.totals.files; note = `${r.report.totals.patches} patches, ${r.report.totals.duplicates} duplicates`;
      break;
    }
    case 'split': {
      const file = join(dir, `out-organize-${patients}`, 'manifest.csv');
      const t = performance.now();
      const { rows, hash } = await readManifestWithHash(file);
      const tSplit = performance.now();
      const split = splitByPatient(rows, { ratios: [0.7, 0.15, 0.15], seed: 42, stratify: true, manifestHash: hash });
      const splitMs = performance.now() - tSplit;
      await writeSplit(join(dir, `out-organize-${patients}`, 'split.json'), split);
      items = rows.length; unit = 'rows';
      note = `split ${splitMs.toFixed(0)} ms + manifest read ${(tSplit - t).toFixed(0)} ms; test split ${split.summary.test.patches} patches`;
      break;
    }
    case 'cache': {
      const out = join(dir, `out-organize-${patients}`);
      const { prepareData } = await import('../src/core/train/data');
      const { defaultConfig } = await import('../src/core/config');
      const info = (await prepareData(out, defaultConfig())).cache;
      items = info.counts.train + info.counts.val + info.counts.test; unit = 'patches';
      note = info.upToDate ? 'already up to date (delete the cache folder to time a build)' : `${info.decoded} decoded`;
      break;
    }
    case 'evaluate': {
      // Speed does not depend on the weights: an untrained default model stands in for a run.
      const out = join(dir, `out-organize-${patients}`);
      const { initBackend } = await import('../src/core/engine/backends');
      const { buildModel } = await import('../src/core/engine/model');
      const { saveModel } = await import('../src/core/train/model-io');
      const { evaluateModel } = await import('../src/core/evaluate/evaluate');
      const { defaultConfig } = await import('../src/core/config');
      const { mkdirSync, writeFileSync } = await import('node:fs');
      const backend = await initBackend('auto');
      const runDir = join(out, 'runs', 'bench-untrained');
      mkdirSync(runDir, { recursive: true });
      await saveModel(buildModel({ seed: 1 }), join(runDir, 'model'));
      writeFileSync(join(runDir, 'config.json'), JSON.stringify(defaultConfig()));
      writeFileSync(join(runDir, 'run.json'), JSON.stringify({ id: 'bench-untrained', createdAt: new Date().toISOString(), status: 'finished', backend: backend.name, epochs: 0 }));
      const t = performance.now();
      const r = await evaluateModel({ outputDir: out, config: defaultConfig(), runId: 'bench-untrained' });
      items = r.report.n; unit = 'patches';
      note = `${backend.name}; scoring ${r.report.seconds.toFixed(1)} s (${Math.round(r.report.imagesPerSecond)} img/s), whole evaluate incl. curves, operating points, Grad-CAM and slide maps ${((performance.now() - t) / 1000).toFixed(1)} s`;
      break;
    }
    default: throw new Error(`unknown step ${step}`);
  }
  return { step, seconds: (performance.now() - t0) / 1000, items, unit, maxRssMB: process.resourceUsage().maxRSS / 1024, note };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { patients: { type: 'string' }, dir: { type: 'string' }, only: { type: 'string' }, step: { type: 'string' } } });
  const patients = Number(values.patients ?? 279);
  const dir = resolve(values.dir ?? '.idc-bench');
  if (values.step) {
    process.stdout.write(JSON.stringify(await runStep(values.step, dir, patients)) + '\n');
    return;
  }
  const steps = (values.only ?? 'synth,organize,synth-zip,organize-zip,split,cache,evaluate').split(',');
  console.log(`IDC Inspector benchmark — ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${patients} patients, in ${dir}`);
  const archive = join(dir, `archive-${patients}`);
  for (const step of steps) {
    if (step === 'synth' && existsSync(join(archive, '.idc-synth.json'))) { console.log(`synth        reusing ${archive}`); continue; }
    if (step === 'synth-zip' && existsSync(join(dir, `archive-${patients}.zip`))) { console.log(`synth-zip    reusing the zip`); continue; }
    if (step === 'synth') rmSync(archive, { recursive: true, force: true });
    const res = spawnSync(process.execPath, [__filename, '--step', step, '--patients', String(patients), '--dir', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (res.status !== 0) { console.log(`${step.padEnd(12)} FAILED (exit ${res.status})`); continue; }
    const r = JSON.parse(res.stdout.trim().split('\n').pop()!) as StepResult;
    console.log(`${r.step.padEnd(12)} ${r.seconds.toFixed(2).padStart(7)} s  ${Math.round(r.items / r.seconds).toLocaleString('en').padStart(8)} ${r.unit}/s  ${r.items.toLocaleString('en').padStart(8)} ${r.unit}  peak RSS ${r.maxRssMB.toFixed(0)} MB${r.note ? `  (${r.note})` : ''}`);
  }
}

void main().catch((e) => { console.error(e); process.exitCode = 1; });
