import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
// Named imports, not bare ones: the packages declare sideEffects, so bundlers drop bare imports.
import { version_cpu } from '@tensorflow/tfjs-backend-cpu';
import { version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { registerCpuBatchNormKernels } from '../engine/fused-bn';
import { initWasmBackend } from '../engine/wasm-kernels';
import { serveReplica, type WorkerInit } from './parallel-trainer';

/** One ParallelTrainer replica: starts the main thread's backend here, then serves its requests. */
const init = workerData as WorkerInit;
void serveReplica(parentPort!, init, async () => {
  if (!version_cpu || !version_wasm) throw new Error('tfjs backends missing from the bundle');
  if (init.backend === 'wasm') {
    await initWasmBackend(init.wasmDir);
  } else {
    registerCpuBatchNormKernels();
    if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend("cpu") failed');
  }
});
