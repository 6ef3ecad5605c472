import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type { IdcConfig } from '../config';
import { LocalTrainer, type Trainer, type TrainerOptions } from './trainer';
import { ParallelTrainer, defaultWorkerFile, resolveThreads } from './parallel-trainer';
import { TorchTrainer } from './torch-trainer';
import type { LossOptions } from './losses';

export type { Trainer };

/**
 * The trainer for this config on the current tfjs backend; `backend` names it for run records.
 * On wasm/cpu with more than one thread (engine.threads, 0 = one per core; IDC_THREADS overrides)
 * and the bundled worker present, a data-parallel ParallelTrainer; else one replica on this thread.
 * With engine.backend "torch", training (not scoring a finished run) goes to a PyTorch engine process.
 */
export async function createTrainer(config: IdcConfig, loss: LossOptions, purpose: 'train' | 'score' = 'score'): Promise<Trainer & { backend: string }> {
  const opts = trainerOptions(config, loss);
  if (purpose === 'train' && config.engine.backend === 'torch') return torchTrainer(config, loss);
  const backend = tf.getBackend();
  const threads = resolveThreads(config.engine.threads);
  const workerFile = defaultWorkerFile();
  if ((backend === 'wasm' || backend === 'cpu') && threads > 1 && existsSync(workerFile)) {
    const parallel = await ParallelTrainer.create({ ...opts, threads, workerFile });
    return Object.assign(parallel, { backend: `${backend}, ${parallel.threads} threads` });
  }
  return Object.assign(new LocalTrainer(opts), { backend });
}

/**
 * A torch engine with config's model, Python and threads: for training, and for scoring a run when
 * the job's own backend is torch (a run's config.json alone never starts Python: it may come from
 * another machine).
 */
export async function torchTrainer(config: IdcConfig, loss: LossOptions): Promise<TorchTrainer & { backend: string }> {
  const torch = await TorchTrainer.create({ ...trainerOptions(config, loss), python: config.engine.python, threads: resolveThreads(config.engine.threads), torch: config.engine.torch });
  return Object.assign(torch, { backend: torch.describe() });
}

function trainerOptions(config: IdcConfig, loss: LossOptions): TrainerOptions {
  return { model: { ...config.model, seed: config.train.seed }, learningRate: config.train.learningRate, loss };
}
