import * as tf from '@tensorflow/tfjs-core';

/**
 * Training-mode batch norm over the last axis as one kernel pair, instead of tfjs's moments +
 * FusedBatchNorm graph (≈20 full-size passes forward+backward, and `ones(x.shape)` uploads from JS
 * in the Mean gradient). Outputs: y, batch mean, biased batch variance, x − mean (saved for the
 * gradient). Kernels exist for 'cpu' (reference, here) and 'wasm' (wasm-kernels.ts).
 */
export const BN_TRAIN = 'IdcBatchNormTrain';
/** Inputs dy, xc (= x − mean), gamma, variance → dx, dgamma, dbeta. */
export const BN_TRAIN_GRAD = 'IdcBatchNormTrainGrad';

export function hasFusedBatchNorm(backendName = tf.getBackend()): boolean {
  return tf.getKernel(BN_TRAIN, backendName) != null && tf.getKernel(BN_TRAIN_GRAD, backendName) != null;
}

export interface BatchNormTrainResult {
  y: tf.Tensor;
  /** Kept out of any tidy: the caller disposes them. */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/** y = (x − mean)/√(var+ε)·γ + β with batch statistics over all but the last axis; differentiable in x, γ, β. */
export function batchNormTrain(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): BatchNormTrainResult {
  let mean: tf.Tensor1D | undefined;
  let variance: tf.Tensor1D | undefined;
  const attrs = { epsilon };
  const op = tf.customGrad(((xIn: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const [y, m, v, xc] = tf.engine().runKernel(BN_TRAIN, { x: xIn, gamma: g, beta: b }, attrs) as tf.Tensor[];
    mean = tf.keep(m) as tf.Tensor1D;
    variance = tf.keep(v) as tf.Tensor1D;
    save([xc, g, v]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sxc, sg, sv] = saved;
        return tf.engine().runKernel(BN_TRAIN_GRAD, { dy, xc: sxc, gamma: sg, variance: sv }, attrs) as tf.Tensor[];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const y = op(x, gamma, beta);
  return { y, mean: mean!, variance: variance! };
}

// ---------------------------------------------------------------- cpu reference kernels

interface CpuLike { readSync(dataId: object): unknown; makeTensorInfo(shape: number[], dtype: tf.DataType, values?: unknown): tf.TensorInfo }
type Args = { inputs: Record<string, tf.TensorInfo>; backend: unknown; attrs?: Record<string, unknown> };

function f32(b: CpuLike, t: tf.TensorInfo): Float32Array {
  const v = b.readSync(t.dataId);
  return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
}

function bnTrainCpu({ inputs, backend, attrs }: Args): tf.TensorInfo[] {
  const b = backend as CpuLike;
  const x = f32(b, inputs.x), g = f32(b, inputs.gamma), be = f32(b, inputs.beta);
  const eps = attrs!.epsilon as number;
  const C = inputs.x.shape[inputs.x.shape.length - 1];
  const n = x.length / C;
  const mean = new Float64Array(C), m2 = new Float64Array(C);
  for (let i = 0; i < x.length; i += C) for (let c = 0; c < C; c++) mean[c] += x[i + c];
  for (let c = 0; c < C; c++) mean[c] /= n;
  const xc = new Float32Array(x.length);
  for (let i = 0; i < x.length; i += C) for (let c = 0; c < C; c++) { const d = x[i + c] - mean[c]; xc[i + c] = d; m2[c] += d * d; }
  const varOut = new Float32Array(C), k = new Float64Array(C);
  for (let c = 0; c < C; c++) { varOut[c] = m2[c] / n; k[c] = g[c] / Math.sqrt(m2[c] / n + eps); }
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i += C) for (let c = 0; c < C; c++) y[i + c] = xc[i + c] * k[c] + be[c];
  const shape = inputs.x.shape;
  return [
    b.makeTensorInfo(shape, 'float32', y), b.makeTensorInfo([C], 'float32', Float32Array.from(mean)),
    b.makeTensorInfo([C], 'float32', varOut), b.makeTensorInfo(shape, 'float32', xc),
  ];
}

/** Closed-form BN backward: dx = γ·σ⁻¹·(dy − mean(dy) − x̂·mean(dy·x̂)). */
export function bnGradCoefficients(sumDy: ArrayLike<number>, sumDyXc: ArrayLike<number>, gamma: ArrayLike<number>, variance: ArrayLike<number>, eps: number, n: number) {
  const C = gamma.length;
  const k = new Float32Array(C), m = new Float32Array(C), q = new Float32Array(C), dgamma = new Float32Array(C), dbeta = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    const inv = 1 / Math.sqrt(variance[c] + eps);
    k[c] = gamma[c] * inv;
    m[c] = -k[c] * inv * inv * sumDyXc[c] / n;
    q[c] = -k[c] * sumDy[c] / n;
    dgamma[c] = sumDyXc[c] * inv;
    dbeta[c] = sumDy[c];
  }
  return { k, m, q, dgamma, dbeta }; // dx = k·dy + m·xc + q
}

function bnTrainGradCpu({ inputs, backend, attrs }: Args): tf.TensorInfo[] {
  const b = backend as CpuLike;
  const dy = f32(b, inputs.dy), xc = f32(b, inputs.xc), g = f32(b, inputs.gamma), v = f32(b, inputs.variance);
  const C = g.length;
  const n = dy.length / C;
  const sDy = new Float64Array(C), sDyXc = new Float64Array(C);
  for (let i = 0; i < dy.length; i += C) for (let c = 0; c < C; c++) { sDy[c] += dy[i + c]; sDyXc[c] += dy[i + c] * xc[i + c]; }
  const { k, m, q, dgamma, dbeta } = bnGradCoefficients(sDy, sDyXc, g, v, attrs!.epsilon as number, n);
  const dx = new Float32Array(dy.length);
  for (let i = 0; i < dy.length; i += C) for (let c = 0; c < C; c++) dx[i + c] = k[c] * dy[i + c] + m[c] * xc[i + c] + q[c];
  return [b.makeTensorInfo(inputs.dy.shape, 'float32', dx), b.makeTensorInfo([C], 'float32', dgamma), b.makeTensorInfo([C], 'float32', dbeta)];
}

/** Registers the cpu reference kernels (idempotent). The wasm ones come with registerWasmTrainingKernels(). */
export function registerCpuBatchNormKernels(): void {
  for (const [kernelName, fn] of [[BN_TRAIN, bnTrainCpu], [BN_TRAIN_GRAD, bnTrainGradCpu]] as const) {
    if (!tf.getKernel(kernelName, 'cpu')) tf.registerKernel({ kernelName, backendName: 'cpu', kernelFunc: fn as unknown as tf.KernelFunc });
  }
}
