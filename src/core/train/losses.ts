import * as tf from '@tensorflow/tfjs-core';

export const EPSILON = 1e-7;

export interface LossOptions {
  kind: 'focal' | 'bce';
  gamma: number;
  /** Weight of class 0 and class 1 (Keras fit's class_weight); undefined = unweighted. */
  classWeights?: [number, number];
}

/**
 * Per-sample loss on probabilities, as Keras: binary_crossentropy clips to [ε, 1−ε];
 * BinaryFocalCrossentropy multiplies it by (1 − p_t)^γ (no alpha balancing, its default).
 */
export function perSampleLoss(y: tf.Tensor, p: tf.Tensor, opts: LossOptions): tf.Tensor {
  return tf.tidy(() => {
    const pc = tf.clipByValue(p, EPSILON, 1 - EPSILON);
    const bce = tf.neg(tf.add(tf.mul(y, tf.log(pc)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, pc)))));
    if (opts.kind === 'bce') return bce;
    const pt = tf.add(tf.mul(y, p), tf.mul(tf.sub(1, y), tf.sub(1, p)));
    return tf.mul(tf.pow(tf.sub(1, pt), opts.gamma), bce);
  });
}

/**
 * Batch loss: Keras' "sum over batch size" reduction of class-weighted per-sample losses
 * (divides by the batch size, not by the sum of weights).
 */
export function batchLoss(y: tf.Tensor, p: tf.Tensor, opts: LossOptions): tf.Scalar {
  return tf.tidy(() => {
    let l = perSampleLoss(y, p, opts);
    if (opts.classWeights) {
      const [w0, w1] = opts.classWeights;
      l = tf.mul(l, tf.add(w0, tf.mul(y, w1 - w0)));
    }
    return tf.mean(l) as tf.Scalar;
  });
}

/** scikit-learn's compute_class_weight('balanced'): n_samples / (n_classes · count(class)). */
export function balancedClassWeights(labels: ArrayLike<number>): [number, number] {
  let pos = 0;
  for (let i = 0; i < labels.length; i++) pos += labels[i] === 1 ? 1 : 0;
  const neg = labels.length - pos;
  if (pos === 0 || neg === 0) return [1, 1];
  return [labels.length / (2 * neg), labels.length / (2 * pos)];
}

/** The same per-sample loss on one probability, in float64 JS (validation runs outside tfjs). */
export function sampleLoss(y: number, p: number, opts: Pick<LossOptions, 'kind' | 'gamma'>): number {
  const pc = Math.min(Math.max(p, EPSILON), 1 - EPSILON);
  const bce = -(y * Math.log(pc) + (1 - y) * Math.log(1 - pc));
  if (opts.kind === 'bce') return bce;
  const pt = y * p + (1 - y) * (1 - p);
  return Math.pow(1 - pt, opts.gamma) * bce;
}
