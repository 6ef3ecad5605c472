import type { MonitorName } from '../config';

/** Direction of a monitored metric, as Keras' mode='auto' infers it. */
export const monitorMode = (m: MonitorName): 'min' | 'max' => (m === 'val_loss' ? 'min' : 'max');

export interface EarlyStoppingOptions { monitor: MonitorName; minDelta: number; patience: number; restoreBestWeights: boolean; startFromEpoch: number }
export interface EarlyStoppingState { wait: number; best: number; bestEpoch: number; stoppedEpoch: number; haveBestWeights: boolean }

/**
 * Keras 3 EarlyStopping, decision logic only (the loop keeps the weights): an improvement
 * means beating the best by more than min_delta; patience counts epochs since the last one;
 * nothing is monitored before start_from_epoch; it never stops at epoch 0.
 * State is plain data so a checkpoint can carry it across a resume.
 */
export class EarlyStopping {
  state: EarlyStoppingState;
  constructor(readonly opts: EarlyStoppingOptions, state?: EarlyStoppingState) {
    const initial = monitorMode(opts.monitor) === 'min' ? Infinity : -Infinity;
    this.state = state ? { ...state, best: state.best ?? initial } : { wait: 0, best: initial, bestEpoch: 0, stoppedEpoch: 0, haveBestWeights: false };
  }

  private isImprovement(current: number, reference: number): boolean {
    return monitorMode(this.opts.monitor) === 'min' ? current + this.opts.minDelta < reference : current - this.opts.minDelta > reference;
  }

  /** Returns whether to snapshot the current weights as the best, and whether to stop. */
  onEpochEnd(epoch: number, logs: Record<string, number>): { saveBestWeights: boolean; stop: boolean } {
    const current = logs[this.opts.monitor];
    const s = this.state;
    if (current === undefined || Number.isNaN(current) || epoch < this.opts.startFromEpoch) return { saveBestWeights: false, stop: false };
    let saveBestWeights = false;
    if (this.opts.restoreBestWeights && !s.haveBestWeights) {
      // Keras: if best weights were never set, the current weights are the best.
      saveBestWeights = true;
      s.haveBestWeights = true;
      s.bestEpoch = epoch;
    }
    s.wait += 1;
    if (this.isImprovement(current, s.best)) {
      s.best = current;
      s.bestEpoch = epoch;
      s.wait = 0;
      return { saveBestWeights: this.opts.restoreBestWeights, stop: false };
    }
    if (s.wait >= this.opts.patience && epoch > 0) {
      s.stoppedEpoch = epoch;
      return { saveBestWeights, stop: true };
    }
    return { saveBestWeights, stop: false };
  }

  /** At the end of training (stopped or not), Keras 3 restores the best weights when it has them. */
  shouldRestoreAtEnd(): boolean {
    return this.opts.restoreBestWeights && this.state.haveBestWeights;
  }
}

export interface ReduceLrOptions { monitor: MonitorName; factor: number; patience: number; minDelta: number; cooldown: number; minLr: number }
export interface ReduceLrState { wait: number; best: number; cooldownCounter: number }

/** Keras 3 ReduceLROnPlateau: returns the learning rate to use for the next epoch. */
export class ReduceLrOnPlateau {
  state: ReduceLrState;
  constructor(readonly opts: ReduceLrOptions, state?: ReduceLrState) {
    const initial = monitorMode(opts.monitor) === 'min' ? Infinity : -Infinity;
    // JSON (checkpoints) turns ±Infinity into null.
    this.state = state ? { ...state, best: state.best ?? initial } : { wait: 0, best: initial, cooldownCounter: 0 };
  }

  private better(a: number, b: number): boolean {
    return monitorMode(this.opts.monitor) === 'min' ? a < b - this.opts.minDelta : a > b + this.opts.minDelta;
  }

  onEpochEnd(logs: Record<string, number>, lr: number): { lr: number; reduced: boolean } {
    const current = logs[this.opts.monitor];
    const s = this.state;
    if (current === undefined || Number.isNaN(current)) return { lr, reduced: false };
    if (s.cooldownCounter > 0) {
      s.cooldownCounter -= 1;
      s.wait = 0;
    }
    if (this.better(current, s.best)) {
      s.best = current;
      s.wait = 0;
    } else if (!(s.cooldownCounter > 0)) {
      s.wait += 1;
      if (s.wait >= this.opts.patience) {
        // Keras compares against float32(min_lr) so a float32 learning rate at the floor stops reducing.
        if (lr > Math.fround(this.opts.minLr)) {
          const next = Math.max(lr * this.opts.factor, this.opts.minLr);
          s.cooldownCounter = this.opts.cooldown;
          s.wait = 0;
          return { lr: next, reduced: true };
        }
      }
    }
    return { lr, reduced: false };
  }
}
