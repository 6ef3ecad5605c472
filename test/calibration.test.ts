import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { calibrationSummary, fitTemperature, applyTemperature, temperatureNll } from '../src/core/metrics/calibration';
import { EvalContext } from '../src/core/metrics';
import { Rng } from '../src/core/rng';

/** Labels drawn with probability sigmoid(z); the model reports sigmoid(k z): k > 1 is overconfident. */
function overconfident(n: number, k: number, seed: number): { labels: number[]; scores: number[] } {
  const rng = new Rng(seed);
  const labels: number[] = [], scores: number[] = [];
  for (let i = 0; i < n; i++) {
    const z = rng.normal(0, 1.5);
    labels.push(rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0);
    scores.push(Math.fround(1 / (1 + Math.exp(-k * z))));
  }
  return { labels, scores };
}

describe('calibration', () => {
  test('reliability bins, ECE and Brier on a hand-worked case', () => {
    const c = calibrationSummary([0, 1, 0, 1, 1], [0.05, 0.15, 0.15, 0.95, 1]);
    assert.equal(c.bins.length, 10);
    assert.deepEqual(c.bins.map((b) => b.count), [1, 2, 0, 0, 0, 0, 0, 0, 0, 2], 'a score of 1 lands in the last bin');
    assert.equal(c.bins[0].meanPredicted, 0.05);
    assert.equal(c.bins[0].observedRate, 0);
    assert.equal(c.bins[1].observedRate, 0.5);
    assert.equal(c.bins[2].meanPredicted, null);
    assert.equal(c.bins[2].observedRate, null);
    assert.deepEqual([c.bins[1].lo, c.bins[1].hi], [0.1, 0.2]);
    // ECE = 1/5·0.05 + 2/5·|0.5 − 0.15| + 2/5·|1 − 0.975|
    assert.ok(Math.abs(c.ece - (0.05 / 5 + (2 / 5) * 0.35 + (2 / 5) * 0.025)) < 1e-15, String(c.ece));
    // Brier = mean (y − p)²
    assert.ok(Math.abs(c.brier - (0.05 ** 2 + 0.85 ** 2 + 0.15 ** 2 + 0.05 ** 2 + 0) / 5) < 1e-15, String(c.brier));
    assert.equal(c.n, 5);
  });

  test('a calibrated model has a small ECE, an overconfident one a large one', () => {
    const good = overconfident(20_000, 1, 1);
    const bad = overconfident(20_000, 3, 1);
    const g = calibrationSummary(good.labels, good.scores), b = calibrationSummary(bad.labels, bad.scores);
    assert.ok(g.ece < 0.02, `calibrated ECE ${g.ece}`);
    assert.ok(b.ece > 0.08, `overconfident ECE ${b.ece}`);
    assert.equal(g.bins.reduce((s, x) => s + x.count, 0), 20_000);
  });

  test('temperature scaling finds the overconfidence factor, lowers NLL and ECE, and keeps the ranking', () => {
    const val = overconfident(20_000, 3, 2);
    const fit = fitTemperature(val.labels, val.scores);
    assert.ok(fit.temperature > 2.6 && fit.temperature < 3.4, `T = ${fit.temperature}`);
    assert.ok(fit.nllAfter < fit.nllBefore);
    assert.equal(fit.atBound, false);
    // A minimum: no T on a fine grid does better.
    for (let u = -2; u <= 2; u += 0.01) assert.ok(temperatureNll(val.labels, val.scores, Math.exp(u)) >= fit.nllAfter - 1e-12, `T=${Math.exp(u)}`);
    assert.deepEqual(fitTemperature(val.labels, val.scores), fit, 'deterministic');
    const test_ = overconfident(20_000, 3, 3);
    const after = applyTemperature(test_.scores, fit.temperature);
    assert.ok(calibrationSummary(test_.labels, after).ece < calibrationSummary(test_.labels, test_.scores).ece / 3);
    assert.ok(calibrationSummary(test_.labels, after).brier < calibrationSummary(test_.labels, test_.scores).brier);
    assert.equal(EvalContext.from(test_.labels, after).rocAuc().value, EvalContext.from(test_.labels, test_.scores).rocAuc().value);
    // Underconfident scores get T < 1.
    const under = overconfident(10_000, 0.5, 4);
    assert.ok(fitTemperature(under.labels, under.scores).temperature < 0.7);
  });

  test('perfectly separated validation scores push T to the edge of its range, and say so', () => {
    const fit = fitTemperature([0, 0, 1, 1], [0.2, 0.3, 0.7, 0.8]);
    assert.equal(fit.atBound, true);
    assert.ok(fit.temperature < 0.02);
  });
});
