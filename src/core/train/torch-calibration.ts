import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, homedir, loadavg } from 'node:os';
import { join } from 'node:path';
import { version_wasm } from '@tensorflow/tfjs-backend-wasm';
import type { IdcConfig } from '../config';
import { writeFileAtomicSync } from '../fsutil';
import type { ProgressSink } from '../progress';
import { cancellationPoint } from '../errors';
import type { TorchSetup } from '../engine/torch-probe';
import { resolveThreads } from './parallel-trainer';
import type { Trainer } from './trainer';

/**
 * Is PyTorch on this CPU faster than the wasm trainer? A few timed steps of each, measured once
 * and kept in the OS cache folder under a key of everything that changes the answer (CPU, thread
 * count, batch size, model, Python, torch, tfjs versions), so 'auto' pays for it once per machine.
 */

/** Bump when the measurement changes, so older figures are not trusted. */
const METHOD = 1;
const FILE = 'torch-cpu-calibration.json';

export interface CpuCalibration {
  /** The key's parts, for people reading the file. */
  about: Record<string, string | number>;
  measuredAt: string;
  batchSize: number;
  threads: number;
  /** Median of the timed steps, images per second. */
  torchImagesPerSecond?: number;
  wasmImagesPerSecond?: number;
  /** "wasm, 2 threads": the trainer training would use. */
  wasmTrainer?: string;
  /** 1-minute load average when measured: above the core count, the figures are less trustworthy. */
  load?: number;
  /** The measurement failed: why (kept, so a broken engine does not cost every job a retry). */
  error?: string;
  seconds: number;
}

export interface CalibrationResult extends CpuCalibration {
  cached: boolean;
  file: string;
  /** Set when the figures could not be saved (they are measured again next time). */
  notSaved?: string;
}

/** The OS's per-user cache folder for IDC Inspector; IDC_CACHE_DIR overrides it. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env['IDC_CACHE_DIR']) return env['IDC_CACHE_DIR'];
  if (platform === 'win32') return join(env['LOCALAPPDATA'] || join(homedir(), 'AppData', 'Local'), 'idc-inspector', 'Cache');
  if (platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'idc-inspector');
  return join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'idc-inspector');
}

export function calibrationFile(dir = defaultCacheDir()): string {
  return join(dir, FILE);
}

/** Everything that changes which of the two is faster. */
export function calibrationAbout(config: IdcConfig, setup: TorchSetup): Record<string, string | number> {
  const { backend: _b, python: _p, ...engine } = config.engine;
  return {
    method: METHOD,
    cpu: cpus()[0]?.model ?? '?', cores: availableParallelism(), platform: `${process.platform}-${process.arch}`,
    threads: resolveThreads(config.engine.threads), batchSize: config.train.batchSize,
    model: JSON.stringify(config.model), engine: JSON.stringify(engine),
    node: process.versions.node, tfjsWasm: version_wasm,
    python: setup.executable ?? setup.python, pythonVersion: setup.pythonVersion ?? '?', torch: setup.torch ?? '?', numpy: setup.numpy ?? '?',
    // The engine sets glibc's malloc tuning unless the user's environment already does.
    malloc: `${process.env['MALLOC_MMAP_MAX_'] ?? ''}/${process.env['MALLOC_TRIM_THRESHOLD_'] ?? ''}`,
  };
}

export function calibrationKey(about: Record<string, string | number>): string {
  return createHash('sha256').update(JSON.stringify(about)).digest('hex').slice(0, 16);
}

interface Store { entries: Record<string, CpuCalibration> }

function readStore(file: string): Store {
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as Store;
    if (s && typeof s.entries === 'object' && s.entries) return s;
  } catch { /* absent or damaged: measured again */ }
  return { entries: {} };
}

/** The kept timing for this machine and setup, without measuring. */
export function cachedCalibration(config: IdcConfig, setup: TorchSetup, file = calibrationFile()): CalibrationResult | undefined {
  const hit = readStore(file).entries[calibrationKey(calibrationAbout(config, setup))];
  return hit && { ...hit, cached: true, file };
}

/** Test seam: how each side's trainer is made. */
export interface CalibrationTrainers {
  wasm(config: IdcConfig): Promise<Trainer & { backend: string }>;
  torch(config: IdcConfig): Promise<Trainer & { backend: string }>;
}

const realTrainers: CalibrationTrainers = {
  async wasm(config) {
    const { createTrainer } = await import('./trainer-factory');
    return createTrainer({ ...config, engine: { ...config.engine, backend: 'wasm' } }, { kind: 'bce', gamma: 0 }, 'score');
  },
  async torch(config) {
    const { createTrainer } = await import('./trainer-factory');
    return createTrainer({ ...config, engine: { ...config.engine, backend: 'torch' } }, { kind: 'bce', gamma: 0 }, 'train');
  },
};

export interface CalibrateOptions {
  config: IdcConfig;
  /** The probed interpreter; config.engine.python is set to it for the torch side. */
  setup: TorchSetup;
  file?: string;
  warmup?: number;
  steps?: number;
  onProgress?: ProgressSink;
  trainers?: CalibrationTrainers;
  now?: () => number;
  /** Cancels between steps: both trainers are closed and nothing is kept, so the next job measures. */
  signal?: AbortSignal;
}

/**
 * The cached figures for this machine and setup, else measures them: `warmup` untimed then `steps`
 * timed training steps on random patches at the configured batch size, wasm first (it must be the
 * current tfjs backend), each side's median step. Throws only when cancelled; any other failure
 * is a result with `error`.
 */
export async function calibrateTorchCpu(opts: CalibrateOptions): Promise<CalibrationResult> {
  const file = opts.file ?? calibrationFile();
  const about = calibrationAbout(opts.config, opts.setup);
  const key = calibrationKey(about);
  const store = readStore(file);
  const hit = store.entries[key];
  if (hit) return { ...hit, cached: true, file };

  const now = opts.now ?? (() => performance.now());
  const trainers = opts.trainers ?? realTrainers;
  const warmup = opts.warmup ?? 2, steps = opts.steps ?? 5;
  const batchSize = opts.config.train.batchSize;
  const threads = resolveThreads(opts.config.engine.threads);
  const config: IdcConfig = { ...opts.config, engine: { ...opts.config.engine, python: opts.setup.python } };
  const total = 2 * (warmup + steps);
  let done = 0;
  const tick = (): void => opts.onProgress?.({ phase: 'calibrate', label: 'Timing PyTorch against wasm on this CPU (once per machine)', done: done++, total, unit: 'steps' });
  const t0 = now();
  const entry: CpuCalibration = { about, measuredAt: new Date().toISOString(), batchSize, threads, seconds: 0, load: +loadavg()[0].toFixed(1) };
  try {
    tick();
    const x = new Float32Array(batchSize * 7500);
    const y = new Uint8Array(batchSize);
    // Fixed pseudo-random patches: the content does not change the cost, only the shapes do.
    let s = 12345;
    for (let i = 0; i < x.length; i++) { s = (s * 1103515245 + 12345) >>> 0; x[i] = (s >>> 8) / 16777216; }
    for (let i = 0; i < batchSize; i++) y[i] = i % 2;
    // Both alive, steps alternating: load from other processes then falls on both sides alike.
    const made: Array<Trainer & { backend: string }> = [];
    try {
      made.push(await trainers.wasm(config));
      await cancellationPoint(opts.signal);
      made.push(await trainers.torch(config));
      const times: number[][] = [[], []];
      for (let i = 0; i < warmup + steps; i++) {
        for (const k of [0, 1]) {
          await cancellationPoint(opts.signal);
          const a = now();
          await made[k].trainStep(x, y, batchSize, i);
          if (i >= warmup) times[k].push(now() - a);
          tick();
        }
      }
      const median = (t: number[]) => [...t].sort((p, q) => p - q)[Math.floor(t.length / 2)];
      entry.wasmImagesPerSecond = batchSize / (median(times[0]) / 1000);
      entry.torchImagesPerSecond = batchSize / (median(times[1]) / 1000);
      entry.wasmTrainer = made[0].backend;
    } finally {
      for (const t of made) await t.dispose();
    }
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    entry.error = String((e as Error)?.message ?? e).split('\n')[0];
  }
  entry.seconds = (now() - t0) / 1000;
  let notSaved: string | undefined;
  try {
    const dir = join(file, '..');
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
    const fresh = readStore(file);
    fresh.entries[key] = entry;
    // A handful of setups per machine at most; the oldest go first.
    const keep = Object.entries(fresh.entries).sort((a, b) => b[1].measuredAt.localeCompare(a[1].measuredAt)).slice(0, 20);
    writeFileAtomicSync(file, JSON.stringify({ entries: Object.fromEntries(keep) }, null, 1) + '\n');
  } catch (e) {
    notSaved = String((e as Error)?.message ?? e).split('\n')[0];
  }
  return { ...entry, cached: false, file, notSaved };
}
