import * as tf from '@tensorflow/tfjs-core';
import type { IdcConfig } from '../config';
import { LocalTrainer, type Trainer } from './trainer';
import type { LossOptions } from './losses';

export type { Trainer };

/** The trainer for this config on the current tfjs backend; `backend` names it for run records. */
export async function createTrainer(config: IdcConfig, loss: LossOptions): Promise<Trainer & { backend: string }> {
  const local = new LocalTrainer({ model: { ...config.model, seed: config.train.seed }, learningRate: config.train.learningRate, loss });
  return Object.assign(local, { backend: tf.getBackend() });
}
