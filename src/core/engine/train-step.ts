import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * One optimiser step on a batch: BCE on the sigmoid output (Keras clipping) + the layers'
 * regularisation losses, like model.trainOnBatch but without its input standardisation, metric
 * plumbing and async round trip. Returns the loss as a scalar tensor (caller disposes).
 */
export function makeTrainStep(model: tfl.LayersModel, optimizer: tf.Optimizer): (x: tf.Tensor, y: tf.Tensor) => tf.Scalar {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return (x, y) => {
    const loss = optimizer.minimize(() => {
      const p = model.apply(x, { training: true }) as tf.Tensor;
      let total = binaryCrossentropy(y, p);
      for (const reg of model.calculateLosses()) total = tf.add(total, reg);
      return total as tf.Scalar;
    }, true, vars);
    return loss as tf.Scalar;
  };
}

/** Keras binary_crossentropy on probabilities: clip to [ε, 1−ε], mean over the batch. */
export function binaryCrossentropy(y: tf.Tensor, p: tf.Tensor, eps = 1e-7): tf.Scalar {
  return tf.tidy(() => {
    const pc = tf.clipByValue(p, eps, 1 - eps);
    const ll = tf.add(tf.mul(y, tf.log(pc)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, pc))));
    return tf.neg(tf.mean(ll));
  }) as tf.Scalar;
}
