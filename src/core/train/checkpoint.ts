import { mkdirSync, readFileSync, readdirSync, rmSync, renameSync, openSync, writeSync, fsyncSync, closeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { IdcError } from '../errors';
import { mkdirpOrExplain, wrapWriteError, writeFileAtomicSync } from '../fsutil';
import type { EarlyStoppingState, ReduceLrState } from './callbacks';

export interface TensorSpec { name: string; shape: number[] }
export interface NamedArrays { specs: TensorSpec[]; data: Float32Array[] }

/** One epoch's row of the history (also one line of history.jsonl). */
export interface EpochLog {
  epoch: number;
  loss: number; accuracy: number; precision: number; recall: number; auc: number;
  val_loss: number; val_accuracy: number; val_precision: number; val_recall: number; val_auc: number;
  lr: number;
  seconds: number;
  imagesPerSecond: number;
  lrReduced?: boolean;
  best?: boolean;
}

export interface CheckpointState {
  version: 1;
  runId: string;
  /** Epochs completed; training resumes at this (0-based) epoch. */
  epoch: number;
  lr: number;
  history: EpochLog[];
  earlyStopping?: EarlyStoppingState;
  reduceLr?: ReduceLrState;
  /** Hash of weight names and shapes: a checkpoint only loads into the same architecture. */
  architecture: string;
  weights: TensorSpec[];
  optimizer: TensorSpec[];
  hasBest: boolean;
  seed: number;
  finished: boolean;
  stopReason?: string;
  createdAt: string;
}

export interface LoadedCheckpoint { state: CheckpointState; weights: Float32Array[]; optimizer: Float32Array[]; best?: Float32Array[]; warning?: string; dir: string }

const CKPT_DIR = 'checkpoints';
const LATEST = 'latest.json';
const KEEP = 2;

export function architectureHash(specs: readonly TensorSpec[]): string {
  return createHash('sha256').update(specs.map((s) => `${s.name}:${s.shape.join('x')}`).join('|')).digest('hex').slice(0, 16);
}

function writeSynced(file: string, chunks: readonly Float32Array[]): void {
  const fd = openSync(file, 'w');
  try {
    for (const c of chunks) writeSync(fd, new Uint8Array(c.buffer, c.byteOffset, c.byteLength));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes epoch N's checkpoint into a temp folder, renames it into place, then moves the
 * `latest.json` pointer (atomic). A failure at any point (disk full …) leaves the previous one.
 */
export function saveCheckpoint(runDir: string, state: CheckpointState, weights: readonly Float32Array[], optimizer: readonly Float32Array[], best?: readonly Float32Array[]): string {
  const root = join(runDir, CKPT_DIR);
  mkdirpOrExplain(root);
  const name = `epoch-${String(state.epoch).padStart(4, '0')}`;
  const tmp = join(root, `${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    mkdirSync(tmp);
    writeSynced(join(tmp, 'weights.bin'), weights);
    writeSynced(join(tmp, 'optimizer.bin'), optimizer);
    if (best) writeSynced(join(tmp, 'best.bin'), best);
    writeFileAtomicSync(join(tmp, 'state.json'), JSON.stringify(state));
    rmSync(join(root, name), { recursive: true, force: true });
    renameSync(tmp, join(root, name));
    writeFileAtomicSync(join(root, LATEST), JSON.stringify({ dir: name }));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC' || (e as { code?: string }).code === 'ENOSPC') {
      throw new IdcError(`Disk full while writing the checkpoint of epoch ${state.epoch} in ${root}; the previous checkpoint is intact.`, 'Free some space, then resume the run (idc train --resume).', 'ENOSPC');
    }
    throw wrapWriteError(e, root);
  }
  for (const old of checkpointDirs(root).slice(0, -KEEP)) rmSync(join(root, old), { recursive: true, force: true });
  return join(root, name);
}

function checkpointDirs(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((d) => /^epoch-\d{4}$/.test(d)).sort();
}

function readArrays(file: string, specs: readonly TensorSpec[]): Float32Array[] {
  const buf = readFileSync(file);
  const sizes = specs.map((s) => s.shape.reduce((a, b) => a * b, 1));
  const total = sizes.reduce((a, b) => a + b, 0);
  if (buf.byteLength !== total * 4) throw new Error(`${file} has ${buf.byteLength} bytes, expected ${total * 4}`);
  const out: Float32Array[] = [];
  let off = 0;
  for (const n of sizes) {
    const a = new Float32Array(n);
    new Uint8Array(a.buffer).set(buf.subarray(off, off + n * 4));
    out.push(a);
    off += n * 4;
  }
  return out;
}

function loadDir(dir: string): LoadedCheckpoint {
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as CheckpointState;
  if (state.version !== 1 || !Array.isArray(state.weights) || !Array.isArray(state.history)) throw new Error('state.json is not a checkpoint');
  const weights = readArrays(join(dir, 'weights.bin'), state.weights);
  const optimizer = readArrays(join(dir, 'optimizer.bin'), state.optimizer);
  const best = state.hasBest ? readArrays(join(dir, 'best.bin'), state.weights) : undefined;
  return { state, weights, optimizer, best, dir };
}

/**
 * Loads the newest readable checkpoint. When the newest is damaged, falls back to the one
 * before it and says so; undefined when the run has none yet.
 */
export function loadCheckpoint(runDir: string): LoadedCheckpoint | undefined {
  const root = join(runDir, CKPT_DIR);
  const dirs = checkpointDirs(root);
  if (dirs.length === 0) return undefined;
  let latest = dirs[dirs.length - 1];
  try {
    latest = (JSON.parse(readFileSync(join(root, LATEST), 'utf8')) as { dir: string }).dir ?? latest;
  } catch { /* pointer lost: the newest folder is the candidate */ }
  const order = [latest, ...dirs.filter((d) => d !== latest).reverse()];
  const problems: string[] = [];
  for (const d of order) {
    try {
      const loaded = loadDir(join(root, d));
      if (problems.length) loaded.warning = `Checkpoint ${problems.join('; ')} is damaged; resumed from ${d} instead.`;
      return loaded;
    } catch (e) {
      problems.push(`${d} (${(e as Error).message})`);
    }
  }
  throw new IdcError(`No usable checkpoint in ${root}: ${problems.join('; ')}.`, 'Start a new run (idc train) or restore the checkpoint folder from a backup.', 'BAD_CHECKPOINT');
}
