import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EarlyStopping, ReduceLrOnPlateau } from '../src/core/train/callbacks';

const es = (o: Partial<ConstructorParameters<typeof EarlyStopping>[0]> = {}) =>
  new EarlyStopping({ monitor: 'val_loss', minDelta: 0, patience: 2, restoreBestWeights: true, startFromEpoch: 0, ...o });

/** Feeds a series of monitored values; returns the epoch it stopped at (or -1) and the best epoch. */
function run(cb: EarlyStopping, values: number[], key: 'val_loss' | 'val_auc' = 'val_loss') {
  for (let e = 0; e < values.length; e++) {
    if (cb.onEpochEnd(e, { [key]: values[e] }).stop) return { stopped: e, best: cb.state.bestEpoch };
  }
  return { stopped: -1, best: cb.state.bestEpoch };
}

test('EarlyStopping: stops after `patience` epochs without improvement (Keras 3)', () => {
  // Keras: wait counts epochs since the best; stop when wait >= patience.
  assert.deepEqual(run(es({ patience: 2 }), [1.0, 0.9, 0.95, 0.93, 0.5]), { stopped: 3, best: 1 });
  assert.deepEqual(run(es({ patience: 3 }), [1.0, 0.9, 0.95, 0.93, 0.5, 0.6]), { stopped: -1, best: 4 });
  // patience 0 stops at the first non-improving epoch, but never at epoch 0.
  assert.deepEqual(run(es({ patience: 0 }), [1.0, 1.1]), { stopped: 1, best: 0 });
});

test('EarlyStopping: min_delta makes small gains count as no improvement', () => {
  assert.deepEqual(run(es({ patience: 2, minDelta: 0.05 }), [1.0, 0.97, 0.96, 0.5]), { stopped: 2, best: 0 });
  assert.deepEqual(run(es({ patience: 2, minDelta: 0.01 }), [1.0, 0.97, 0.96, 0.5]), { stopped: -1, best: 3 });
});

test('EarlyStopping: max mode for val_auc, start_from_epoch ignores early epochs', () => {
  assert.deepEqual(run(es({ monitor: 'val_auc', patience: 1 }), [0.7, 0.8, 0.79], 'val_auc'), { stopped: 2, best: 1 });
  const cb = es({ patience: 1, startFromEpoch: 2 });
  assert.deepEqual(run(cb, [0.5, 0.9, 1.0, 1.1]), { stopped: 3, best: 2 }, 'epochs 0–1 are not monitored');
});

test('EarlyStopping: asks for a weights snapshot on the first monitored epoch and on each improvement', () => {
  const cb = es({ patience: 5 });
  const saves = [1.0, 1.2, 0.8, 0.9].map((v, e) => cb.onEpochEnd(e, { val_loss: v }).saveBestWeights);
  assert.deepEqual(saves, [true, false, true, false]);
  assert.equal(cb.shouldRestoreAtEnd(), true);
  const noRestore = es({ restoreBestWeights: false });
  assert.equal(noRestore.onEpochEnd(0, { val_loss: 1 }).saveBestWeights, false);
  assert.equal(noRestore.shouldRestoreAtEnd(), false);
});

test('EarlyStopping: state survives a round trip through JSON (resume)', () => {
  const a = es({ patience: 2 });
  a.onEpochEnd(0, { val_loss: 1 });
  a.onEpochEnd(1, { val_loss: 1.1 });
  const b = new EarlyStopping(a.opts, JSON.parse(JSON.stringify(a.state)));
  assert.equal(b.onEpochEnd(2, { val_loss: 1.2 }).stop, true);
  // Before any monitored epoch `best` is ±Infinity, which JSON writes as null.
  const fresh = es({ startFromEpoch: 5 });
  fresh.onEpochEnd(0, { val_loss: 1 });
  const restored = new EarlyStopping(fresh.opts, JSON.parse(JSON.stringify(fresh.state)));
  restored.onEpochEnd(5, { val_loss: 3 });
  assert.equal(restored.state.best, 3);
  const r = rlr();
  const r2 = new ReduceLrOnPlateau(r.opts, JSON.parse(JSON.stringify(r.state)));
  assert.equal(r2.onEpochEnd({ val_loss: 7 }, 1e-3).lr, 1e-3);
  assert.equal(r2.state.best, 7);
});

const rlr = (o: Partial<ConstructorParameters<typeof ReduceLrOnPlateau>[0]> = {}) =>
  new ReduceLrOnPlateau({ monitor: 'val_loss', factor: 0.5, patience: 2, minDelta: 1e-4, cooldown: 0, minLr: 0, ...o });

function lrs(cb: ReduceLrOnPlateau, values: number[], lr0 = 1e-3): number[] {
  let lr = lr0;
  return values.map((v) => (lr = cb.onEpochEnd({ val_loss: v }, lr).lr));
}

test('ReduceLROnPlateau: halves after `patience` flat epochs, then waits again (Keras 3)', () => {
  assert.deepEqual(lrs(rlr(), [1, 1, 1, 1, 1]), [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4]);
  assert.deepEqual(lrs(rlr(), [1, 0.9, 0.8, 0.7]), [1e-3, 1e-3, 1e-3, 1e-3]);
  // min_delta: a gain smaller than it is a plateau.
  assert.deepEqual(lrs(rlr({ minDelta: 0.1 }), [1, 0.95, 0.92]), [1e-3, 1e-3, 5e-4]);
});

test('ReduceLROnPlateau: cooldown and min_lr', () => {
  // After a reduction, `cooldown` epochs pass without counting towards patience.
  // Keras: the cooldown counter ticks down at the start of each epoch; patience counts only outside it.
  assert.deepEqual(lrs(rlr({ patience: 1, cooldown: 2 }), [1, 1, 1, 1, 1, 1]), [1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4, 1.25e-4]);
  const floor = lrs(rlr({ patience: 1, factor: 0.1, minLr: 2e-5 }), [1, 1, 1, 1, 1]);
  [1e-3, 1e-4, 2e-5, 2e-5, 2e-5].forEach((want, i) => assert.ok(Math.abs(floor[i] - want) < 1e-12, `epoch ${i}: ${floor[i]} vs ${want}`));
});
