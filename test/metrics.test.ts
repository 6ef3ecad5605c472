import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  EvalContext, evaluate, rocCurve, precisionRecallCurve, rocAucScore, averagePrecisionScore,
  youdenThreshold, f1OptimalThreshold, thresholdForRecall, thresholdMetrics, thresholdTable, tableCountsAt,
  tableMetricsAt, confusionAt, downsampleCurve, perPatient, rocAuc, npSum, npTrapezoid,
  WARN_NO_NEGATIVES_ROC, WARN_NO_POSITIVES_ROC, WARN_NO_POSITIVES_PR, WARN_ONE_CLASS_AUC,
  type PatientRow,
} from '../src/core/metrics';
import * as legacy from '../src/core/metrics/auc';
import { Rng } from '../src/core/rng';

/** assert_array_almost_equal-style comparison; NaN matches NaN. */
function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-8, what = ''): void {
  assert.equal(actual.length, expected.length, `${what} length: ${Array.from(actual)} vs ${Array.from(expected)}`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    const ok = Number.isNaN(e) ? Number.isNaN(a) : a === e || Math.abs(a - e) <= tol;
    assert.ok(ok, `${what}[${i}]: ${a} vs ${e} (actual ${Array.from(actual)})`);
  }
}
const all = (v: number, n: number) => new Array<number>(n).fill(v);

// ------------------------------------------------ scikit-learn's published cases

describe('scikit-learn docstring examples', () => {
  test('roc_curve: y=[1,1,2,2], pos_label=2', () => {
    // Our positive class is label 1, so y == 2 is mapped to 1.
    const y = [1, 1, 2, 2].map((v) => (v === 2 ? 1 : 0));
    const { fpr, tpr, thresholds, warning } = rocCurve(y, [0.1, 0.4, 0.35, 0.8]);
    close(fpr, [0, 0, 0.5, 0.5, 1]);
    close(tpr, [0, 0.5, 0.5, 1, 1]);
    assert.deepEqual(Array.from(thresholds), [Infinity, 0.8, 0.4, 0.35, 0.1]);
    assert.equal(warning, undefined);
    assert.equal(rocAucScore(y, [0.1, 0.4, 0.35, 0.8]).value, 0.75); // metrics.auc(fpr, tpr) in the auc docstring
  });

  test('precision_recall_curve', () => {
    const { precision, recall, thresholds } = precisionRecallCurve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]);
    close(precision, [0.5, 0.66666667, 0.5, 1, 1]);
    close(recall, [1, 1, 0.5, 0.5, 0]);
    assert.deepEqual(Array.from(thresholds), [0.1, 0.35, 0.4, 0.8]);
  });

  test('average_precision_score = 0.83', () => {
    const ap = averagePrecisionScore([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]);
    assert.equal(ap.value, 0.8333333333333333);
    assert.equal(ap.warning, undefined);
  });

  test('confusion_matrix_at_thresholds (1.8): fps/tps per threshold', () => {
    const t = thresholdTable([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]);
    assert.deepEqual(Array.from(t.thresholds), [0.8, 0.4, 0.35, 0.1]);
    assert.deepEqual(Array.from(t.fp), [0, 1, 1, 2]);
    assert.deepEqual(Array.from(t.tp), [1, 1, 2, 2]);
  });
});

describe('scikit-learn test_ranking.py', () => {
  test('test_roc_curve_toydata', () => {
    // [y_true, y_score, fpr, tpr, auc]; test_ranking.py unpacks these as `tpr, fpr, _`, i.e. swapped names.
    const cases: Array<[number[], number[], number[], number[], number]> = [
      [[0, 1], [0, 1], [0, 0, 1], [0, 1, 1], 1],
      [[0, 1], [1, 0], [0, 1, 1], [0, 0, 1], 0],
      [[1, 0], [1, 1], [0, 1], [0, 1], 0.5],
      [[1, 0], [1, 0], [0, 0, 1], [0, 1, 1], 1],
      [[1, 0], [0.5, 0.5], [0, 1], [0, 1], 0.5],
    ];
    for (const [y, s, fpr, tpr, auc] of cases) {
      const r = rocCurve(y, s);
      close(r.fpr, fpr, 1e-6, `fpr ${y} ${s}`);
      close(r.tpr, tpr, 1e-6, `tpr ${y} ${s}`);
      assert.equal(rocAucScore(y, s).value, auc);
    }
    // No positives: tpr all NaN and a warning; roc_auc_score is undefined (raises < 1.8, NaN >= 1.8).
    let r = rocCurve([0, 0], [0.25, 0.75]);
    close(r.fpr, [0, 0.5, 1]);
    close(r.tpr, [NaN, NaN, NaN]);
    assert.equal(r.warning, WARN_NO_POSITIVES_ROC);
    assert.deepEqual(rocAucScore([0, 0], [0.25, 0.75]), { value: NaN, warning: WARN_ONE_CLASS_AUC });
    // No negatives: fpr all NaN.
    r = rocCurve([1, 1], [0.25, 0.75]);
    close(r.fpr, [NaN, NaN, NaN]);
    close(r.tpr, [0, 0.5, 1]);
    assert.equal(r.warning, WARN_NO_NEGATIVES_ROC);
    assert.ok(Number.isNaN(rocAucScore([1, 1], [0.25, 0.75]).value));
  });

  test('test_roc_curve_one_label', () => {
    const yPred = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
    let r = rocCurve(all(1, 10), yPred);
    close(r.fpr, all(NaN, r.thresholds.length));
    assert.equal(r.fpr.length, r.tpr.length);
    assert.match(r.warning ?? '', /No negative samples in y_true/);
    r = rocCurve(all(0, 10), yPred);
    close(r.tpr, all(NaN, r.thresholds.length));
    assert.match(r.warning ?? '', /No positive samples in y_true/);
  });

  test('test_roc_curve_drop_intermediate', () => {
    let r = rocCurve([0, 0, 0, 0, 1, 1], [0, 0.2, 0.5, 0.6, 0.7, 1.0], { dropIntermediate: true });
    assert.deepEqual(Array.from(r.thresholds), [Infinity, 1.0, 0.7, 0.0]);
    r = rocCurve([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
      [0.0, 0.1, 0.6, 0.6, 0.7, 0.8, 0.9, 0.6, 0.7, 0.8, 0.9, 0.9, 1.0], { dropIntermediate: true });
    assert.deepEqual(Array.from(r.thresholds), [Infinity, 1.0, 0.9, 0.7, 0.6, 0.0]);
    // A shortened variant (not in scikit-learn's suite; expected output from scikit-learn 1.2.1, inf for its 1.9):
    // only the collinear 0.1 point goes.
    r = rocCurve([0, 0, 0, 0, 0, 1, 1, 1, 1, 1], [0, 0.1, 0.6, 0.6, 0.7, 0.8, 0.9, 0.6, 0.7, 0.8]);
    assert.deepEqual(Array.from(r.thresholds), [Infinity, 0.9, 0.8, 0.7, 0.6, 0.0]);
  });

  test('test_roc_curve_end_points and test_roc_returns_consistency (integer scores 0..2, random)', () => {
    const rng = new Rng('end-points');
    const y = [...all(0, 50), ...all(1, 50)];
    const s = y.map(() => rng.int(0, 2));
    const r = rocCurve(y, s, { dropIntermediate: true });
    assert.equal(r.fpr[0], 0);
    assert.equal(r.fpr[r.fpr.length - 1], 1);
    assert.equal(r.fpr.length, r.tpr.length);
    assert.equal(r.fpr.length, r.thresholds.length);
    r.thresholds.forEach((t, i) => assert.equal(r.tpr[i], confusionAt(y, s, t).tp / 50));
  });

  test('test_precision_recall_curve: labels [1,0,0,1], scores [1,2,3,4]', () => {
    let r = precisionRecallCurve([1, 0, 0, 1], [1, 2, 3, 4], { dropIntermediate: true });
    close(r.precision, [0.5, 0.33333333, 1.0, 1.0]);
    close(r.recall, [1.0, 0.5, 0.5, 0.0]);
    assert.deepEqual(Array.from(r.thresholds), [1, 2, 4]);
    r = precisionRecallCurve([1, 0, 0, 1], [1, 2, 3, 4]);
    close(r.precision, [0.5, 0.33333333, 0.5, 1.0, 1.0]);
    close(r.recall, [1.0, 0.5, 0.5, 0.5, 0.0]);
    assert.deepEqual(Array.from(r.thresholds), [1, 2, 3, 4]);
    // Smoke test: a constant score gives one threshold; sizes still line up.
    r = precisionRecallCurve([1, 0, 0, 1], [0, 0, 0, 0]);
    assert.equal(r.precision.length, r.recall.length);
    assert.equal(r.precision.length, r.thresholds.length + 1);
  });

  for (const drop of [true, false]) {
    test(`test_precision_recall_curve_toydata (drop_intermediate=${drop})`, () => {
      const cases: Array<[number[], number[], number[], number[], number]> = [
        [[0, 1], [0, 1], [0.5, 1, 1], [1, 1, 0], 1.0],
        [[0, 1], [1, 0], [0.5, 0.0, 1.0], [1.0, 0.0, 0.0], 0.5],
        [[1, 0], [1, 1], [0.5, 1], [1.0, 0], 0.5],
        [[1, 0], [1, 0], [0.5, 1, 1], [1, 1, 0], 1.0],
        [[1, 0], [0.5, 0.5], [0.5, 1], [1, 0.0], 0.5],
        [[1, 1], [0.25, 0.75], [1.0, 1.0, 1.0], [1, 0.5, 0.0], 1.0],
      ];
      for (const [y, s, p, r, ap] of cases) {
        const c = precisionRecallCurve(y, s, { dropIntermediate: drop });
        close(c.precision, p, 1e-6, `precision ${y} ${s}`);
        close(c.recall, r, 1e-6, `recall ${y} ${s}`);
        assert.ok(Math.abs(averagePrecisionScore(y, s).value - ap) < 1e-7, `AP ${y} ${s}`);
      }
      // No positives: recall set to 1 with a warning; AP is 0 (scikit-learn >= 1.1).
      const c = precisionRecallCurve([0, 0], [0.25, 0.75], { dropIntermediate: drop });
      close(c.precision, [0, 0, 1]);
      close(c.recall, [1, 1, 0]);
      assert.equal(c.warning, WARN_NO_POSITIVES_PR);
      assert.deepEqual(averagePrecisionScore([0, 0], [0.25, 0.75]), { value: 0, warning: WARN_NO_POSITIVES_PR });
    });
  }

  test('test_precision_recall_curve_drop_intermediate', () => {
    const thr = (y: number[], s: number[]) => Array.from(precisionRecallCurve(y, s, { dropIntermediate: true }).thresholds);
    assert.deepEqual(thr([0, 0, 0, 0, 1, 1], [0.0, 0.2, 0.5, 0.6, 0.7, 1.0]), [0.0, 0.7, 1.0]);
    assert.deepEqual(thr([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
      [0.0, 0.1, 0.6, 0.6, 0.7, 0.8, 0.9, 0.6, 0.7, 0.8, 0.9, 0.9, 1.0]), [0.0, 0.6, 0.7, 0.8, 0.9, 1.0]);
    assert.deepEqual(thr([0, 0, 0, 0], [0.0, 0.1, 0.2, 0.3]), [0.0, 0.3]);
    assert.deepEqual(thr([1, 1, 1, 1], [0.0, 0.1, 0.2, 0.3]), [0.0, 0.1, 0.2, 0.3]);
  });

  test('test_average_precision_constant_values: constant score gives the prevalence', () => {
    const y = Array.from({ length: 100 }, (_, i) => (i % 4 === 0 ? 1 : 0));
    assert.equal(averagePrecisionScore(y, all(1, 100)).value, 0.25);
  });

  test('test_auc_score_non_binary_class: one class present', () => {
    const rng = new Rng(404);
    const s = Array.from({ length: 10 }, () => rng.next());
    for (const y of [all(0, 10), all(1, 10)]) {
      const r = rocAucScore(y, s);
      assert.ok(Number.isNaN(r.value));
      assert.match(r.warning ?? '', /ROC AUC score is not defined/);
    }
  });

  test('test_roc_curve_with_probablity_estimates: thresholds[0] is inf, the rest <= 1', () => {
    const rng = new Rng(42);
    const y = Array.from({ length: 10 }, () => rng.int(0, 1));
    const s = Array.from({ length: 10 }, () => rng.next());
    const { thresholds } = rocCurve(y, s);
    assert.equal(thresholds[0], Infinity);
    for (let i = 1; i < thresholds.length; i++) assert.ok(thresholds[i] <= 1);
  });

  test('constant score: one threshold, AUC 0.5, AP = prevalence', () => {
    const y = [1, 0, 0, 1, 0];
    const r = rocCurve(y, all(0.3, 5));
    assert.deepEqual(Array.from(r.thresholds), [Infinity, 0.3]);
    close(r.fpr, [0, 1]);
    close(r.tpr, [0, 1]);
    assert.equal(rocAucScore(y, all(0.3, 5)).value, 0.5);
    assert.equal(averagePrecisionScore(y, all(0.3, 5)).value, 0.4);
  });
});

test('bit-exact against scikit-learn 1.2.1 on a tied 20-sample set (values printed by scikit-learn)', () => {
  const y = [0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0];
  const s = [0.12, 0.9, 0.55, 0.55, 0.7, 0.3, 0.12, 0.55, 0.81, 0.45, 0.3, 0.05, 0.7, 0.2, 0.95, 0.45, 0.61, 0.12, 0.33, 0.5];
  const ctx = EvalContext.from(y, s);
  const roc = ctx.rocCurve();
  assert.deepEqual(Array.from(roc.fpr), [0.0, 0.0, 0.0, 0.09090909090909091, 0.18181818181818182, 0.2727272727272727, 0.36363636363636365,
    0.45454545454545453, 0.5454545454545454, 0.6363636363636364, 0.7272727272727273, 0.9090909090909091, 1.0]);
  assert.deepEqual(Array.from(roc.tpr), [0.0, 0.1111111111111111, 0.3333333333333333, 0.4444444444444444, 0.4444444444444444, 0.6666666666666666,
    0.6666666666666666, 0.7777777777777778, 0.7777777777777778, 0.8888888888888888, 0.8888888888888888, 1.0, 1.0]);
  // scikit-learn 1.2 wrote thresholds[0] + 1 (1.95) where >= 1.3 writes inf.
  assert.deepEqual(Array.from(roc.thresholds), [Infinity, 0.95, 0.81, 0.7, 0.61, 0.55, 0.5, 0.45, 0.33, 0.3, 0.2, 0.12, 0.05]);
  assert.deepEqual(Array.from(ctx.rocCurve({ dropIntermediate: false }).thresholds),
    [Infinity, 0.95, 0.9, 0.81, 0.7, 0.61, 0.55, 0.5, 0.45, 0.33, 0.3, 0.2, 0.12, 0.05]);
  const pr = ctx.precisionRecallCurve();
  assert.deepEqual(Array.from(pr.precision), [0.45, 0.47368421052631576, 0.5, 0.5333333333333333, 0.5384615384615384, 0.5833333333333334, 0.6,
    0.6666666666666666, 0.6666666666666666, 0.8, 1.0, 1.0, 1.0, 1.0]);
  assert.deepEqual(Array.from(pr.recall), [1.0, 1.0, 0.8888888888888888, 0.8888888888888888, 0.7777777777777778, 0.7777777777777778,
    0.6666666666666666, 0.6666666666666666, 0.4444444444444444, 0.4444444444444444, 0.3333333333333333, 0.2222222222222222, 0.1111111111111111, 0.0]);
  assert.deepEqual(Array.from(pr.thresholds), [0.05, 0.12, 0.2, 0.3, 0.33, 0.45, 0.5, 0.55, 0.61, 0.7, 0.81, 0.9, 0.95]);
  assert.equal(ctx.rocAuc().value, 0.7424242424242424);
  assert.equal(ctx.averagePrecision().value, 0.747076023391813);
});

test('NumPy pairwise summation, not a running total', () => {
  // 0.1 summed 10 times: a running total gives 0.9999999999999999, NumPy's 8-way unrolled sum gives 1.
  assert.equal(npSum(all(0.1, 10)), 1);
  let run = 0;
  for (let i = 0; i < 10; i++) run += 0.1;
  assert.notEqual(run, 1);
  assert.equal(npTrapezoid([0, 1], [0, 1]), 0.5);
  assert.equal(npTrapezoid([1, 1], [0, 1]), 1);
  assert.equal(npTrapezoid([0, 0.5, 1], [0, 0.5, 1]), 0.5);
});

// ------------------------------------------------ properties over seeded random inputs

function randomSet(rng: Rng, n: number, opts: { prevalence?: number; grid?: number; signal?: number } = {}) {
  const { prevalence = 0.3, grid = 0, signal = 0.3 } = opts;
  const labels = new Uint8Array(n);
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = rng.next() < prevalence ? 1 : 0;
    let s = rng.next() * (1 - signal) + labels[i] * signal * rng.next();
    if (grid) s = Math.round(s * grid) / grid;
    scores[i] = s;
  }
  return { labels, scores };
}

function* randomSets(seed: string, count = 60) {
  const rng = new Rng(seed);
  for (let c = 0; c < count; c++) {
    const n = 1 + rng.int(0, c < 30 ? 40 : 600);
    yield randomSet(rng, n, { prevalence: [0.5, 0.1, 0.9, rng.next()][c % 4], grid: [0, 5, 30, 1000][c % 4] });
  }
}

/** AUC by its pairwise definition (Mann–Whitney U), ties counting 1/2. */
function pairwiseAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  let wins = 0, pairs = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < labels.length; j++) {
      if (labels[j] === 1) continue;
      pairs++;
      wins += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  return pairs ? wins / pairs : NaN;
}

describe('properties (seeded random inputs)', () => {
  test('AUC equals the pairwise Mann–Whitney definition with ties as 1/2', () => {
    for (const { labels, scores } of randomSets('mw')) {
      const expected = pairwiseAuc(labels, scores);
      const got = rocAucScore(labels, scores).value;
      if (Number.isNaN(expected)) assert.ok(Number.isNaN(got));
      else assert.ok(Math.abs(got - expected) < 1e-12, `${got} vs ${expected}`);
    }
  });

  test('AUC and AP are invariant to strictly increasing transforms of the scores', () => {
    for (const { labels, scores } of randomSets('monotone')) {
      const auc = rocAucScore(labels, scores).value, ap = averagePrecisionScore(labels, scores).value;
      const distinct = Array.from(new Set(scores)).sort((a, b) => a - b);
      const rank = new Map(distinct.map((v, i) => [v, i]));
      const transforms = [
        (v: number) => 64 * v - 10,
        (v: number) => Math.exp(4 * v),
        (v: number) => rank.get(v)! * 3 + 1,
        (v: number) => Math.fround(v) ** 3,
      ];
      for (const f of transforms) {
        const t = scores.map(f);
        if (new Set(t).size !== distinct.length) continue; // rounding merged two scores
        assert.ok(Object.is(rocAucScore(labels, t).value, auc), `AUC under ${f}`);
        assert.ok(Object.is(averagePrecisionScore(labels, t).value, ap), `AP under ${f}`);
      }
    }
  });

  test('curve points equal brute-force confusion counts at their thresholds', () => {
    for (const { labels, scores } of randomSets('counts')) {
      const P = labels.reduce((a, b) => a + b, 0), N = labels.length - P;
      for (const drop of [false, true]) {
        const pr = precisionRecallCurve(labels, scores, { dropIntermediate: drop });
        pr.thresholds.forEach((t, i) => {
          const { tp, fp } = confusionAt(labels, scores, t);
          assert.equal(pr.precision[i], tp / (tp + fp));
          assert.equal(pr.recall[i], P ? tp / P : 1);
        });
        const roc = rocCurve(labels, scores, { dropIntermediate: drop });
        roc.thresholds.forEach((t, i) => {
          const { tp, fp } = confusionAt(labels, scores, t);
          assert.ok(Object.is(roc.tpr[i], P ? tp / P : NaN) && Object.is(roc.fpr[i], N ? fp / N : NaN));
        });
      }
    }
  });

  test('dropping intermediate ROC points keeps the AUC and the end points', () => {
    for (const { labels, scores } of randomSets('drop')) {
      const a = rocCurve(labels, scores), b = rocCurve(labels, scores, { dropIntermediate: false });
      assert.ok(a.thresholds.length <= b.thresholds.length);
      assert.equal(a.thresholds[a.thresholds.length - 1], b.thresholds[b.thresholds.length - 1]);
      if (a.warning) continue;
      assert.ok(Math.abs(npTrapezoid(a.tpr, a.fpr) - npTrapezoid(b.tpr, b.fpr)) < 1e-12);
      assert.equal(a.fpr[a.fpr.length - 1], 1);
      assert.equal(a.tpr[a.tpr.length - 1], 1);
    }
  });

  test('AP lies in [0, 1], is 1 for a perfect ranking and matches the per-positive definition', () => {
    for (const { labels, scores } of randomSets('ap')) {
      const ap = averagePrecisionScore(labels, scores).value;
      assert.ok(ap >= 0 && ap <= 1, `${ap}`);
      // (1/P) Σ over thresholds of (new positives) × precision at that threshold.
      const t = thresholdTable(labels, scores);
      let def = 0;
      for (let i = 0; i < t.thresholds.length; i++) def += (t.tp[i] - (i ? t.tp[i - 1] : 0)) * (t.tp[i] / (t.tp[i] + t.fp[i]));
      if (t.positives) assert.ok(Math.abs(ap - def / t.positives) < 1e-12, `${ap} vs ${def / t.positives}`);
      const perfect = Array.from(labels, (y, i) => y + i * 1e-6);
      if (t.positives) assert.ok(Math.abs(averagePrecisionScore(labels, perfect).value - 1) < 1e-12);
    }
  });

  test('threshold table counts equal brute force at random thresholds', () => {
    const rng = new Rng('table');
    for (const { labels, scores } of randomSets('table-sets')) {
      const table = thresholdTable(labels, scores);
      const probes = [-Infinity, Infinity, NaN, -1, 2, ...Array.from({ length: 20 }, () => rng.next()), ...scores.slice(0, 10)];
      for (const t of probes) {
        assert.deepEqual(tableCountsAt(table, t), confusionAt(labels, scores, t), `t=${t}`);
        const { falsePositives, falseNegatives, ...m } = thresholdMetrics(labels, scores, t);
        assert.deepEqual(tableMetricsAt(table, t), m);
        assert.equal(falsePositives.length, m.fp);
        assert.equal(falseNegatives.length, m.fn);
      }
    }
  });

  test('operating points equal a brute-force search over every distinct score', () => {
    for (const { labels, scores } of randomSets('ops')) {
      const ctx = EvalContext.from(labels, scores);
      const P = ctx.positives, N = ctx.negatives;
      const cands = Array.from(new Set(scores)).sort((a, b) => b - a);
      let bestJ = -Infinity, tJ = NaN, bestF = -Infinity, tF = NaN;
      for (const t of cands) {
        const { tp, fp, fn } = confusionAt(labels, scores, t);
        const j = tp / P - fp / N, f = (2 * tp) / (2 * tp + fp + fn);
        if (j > bestJ + 1e-12) { bestJ = j; tJ = t; }
        if (f > bestF + 1e-12) { bestF = f; tF = t; }
      }
      const y = ctx.youden(), f = ctx.f1Optimal();
      if (P && N) { assert.equal(y?.threshold, tJ); assert.ok(Math.abs(y!.value - bestJ) < 1e-12); } else assert.equal(y, null);
      if (P) { assert.equal(f?.threshold, tF); assert.ok(Math.abs(f!.value - bestF) < 1e-12); } else assert.equal(f, null);
      for (const target of [0, 0.25, 0.5, 0.9, 0.95, 1, 1.01]) {
        const expected = P ? cands.find((t) => confusionAt(labels, scores, t).tp / P >= target) : undefined;
        assert.equal(ctx.thresholdForRecall(target)?.threshold, expected, `recall ${target}`);
      }
    }
  });
});

// ------------------------------------------------ operating points, by hand

describe('operating points', () => {
  const y = [0, 0, 1, 1, 0, 1, 1, 0];
  const s = [0.1, 0.4, 0.35, 0.8, 0.65, 0.9, 0.2, 0.65];

  test('thresholdMetrics: counts, rates and the misclassified samples, most confident first', () => {
    const m = thresholdMetrics(y, s, 0.4);
    assert.equal(m.threshold, 0.4);
    assert.deepEqual([m.tp, m.fp, m.tn, m.fn], [2, 3, 1, 2]);
    assert.equal(m.precision, 2 / 5);
    assert.equal(m.recall, 0.5);
    assert.equal(m.sensitivity, 0.5);
    assert.equal(m.specificity, 0.25);
    assert.equal(m.f1, 4 / 9);
    assert.equal(m.accuracy, 3 / 8);
    assert.equal(m.balancedAccuracy, 0.375);
    assert.deepEqual(Array.from(m.falsePositives), [4, 7, 1]); // 0.65, 0.65 (index order), 0.4
    assert.deepEqual(Array.from(m.falseNegatives), [6, 2]); // 0.2, 0.35
  });

  test('zero division: precision 0 when nothing is predicted positive, recall/specificity 0 for a missing class', () => {
    const none = thresholdMetrics(y, s, 2);
    assert.deepEqual([none.tp, none.fp, none.precision, none.recall, none.f1, none.specificity], [0, 0, 0, 0, 0, 1]);
    const negOnly = thresholdMetrics([0, 0, 0], [0.1, 0.5, 0.9], 0.5);
    assert.deepEqual([negOnly.recall, negOnly.f1, negOnly.balancedAccuracy], [0, 0, 1 / 3]);
    const posOnly = thresholdMetrics([1, 1], [0.1, 0.9], 0.5);
    assert.deepEqual([posOnly.specificity, posOnly.balancedAccuracy], [0, 0.5]);
    assert.ok(Number.isNaN(thresholdMetrics([], [], 0.5).accuracy));
  });

  test('Youden: max tpr − fpr, ties to the highest threshold, never +Infinity', () => {
    // J at 0.9: 1/2 − 0 = 0.5; at 0.5: 2/2 − 1/2 = 0.5 (a tie), so 0.9 wins.
    const yy = [1, 0, 1, 0], ss = [0.9, 0.6, 0.5, 0.1];
    const p = youdenThreshold(yy, ss)!;
    assert.equal(p.threshold, 0.9);
    assert.equal(p.value, 0.5);
    assert.deepEqual([p.tp, p.fp, p.tn, p.fn], [1, 0, 2, 1]);
    assert.equal(youdenThreshold([0, 0], [0.1, 0.2]), null);
    // Inverted scores: J = 0 at +Infinity and at 0.1 (−1 at 0.9); +Infinity is not an operating point.
    assert.deepEqual(youdenThreshold([0, 1], [0.9, 0.1]), { threshold: 0.1, value: 0, tp: 1, fp: 1, tn: 0, fn: 0 });
  });

  test('F1-optimal threshold on the PR curve and the recall-target threshold', () => {
    const f = f1OptimalThreshold(y, s)!;
    // Candidates: t=0.35 gives tp 3, fp 3 → F1 6/10; t=0.2 gives tp 4, fp 3 → 8/11 (best); t=0.1 → 8/12.
    assert.equal(f.threshold, 0.2);
    assert.equal(f.value, 8 / 11);
    assert.equal(thresholdForRecall(y, s, 0.5)!.threshold, 0.8);
    assert.equal(thresholdForRecall(y, s, 0.51)!.threshold, 0.35);
    assert.equal(thresholdForRecall(y, s, 1)!.threshold, 0.2);
    assert.equal(thresholdForRecall(y, s, 0)!.threshold, 0.9);
    assert.equal(thresholdForRecall(y, s, 1.5), null);
    assert.equal(thresholdForRecall([0, 0], [0.3, 0.4], 0.5), null);
  });

  test('evaluate() gathers everything from one sort', () => {
    const e = evaluate(y, s);
    assert.equal(e.n, 8);
    assert.equal(e.rocAuc.value, rocAucScore(y, s).value);
    assert.equal(e.averagePrecision.value, averagePrecisionScore(y, s).value);
    assert.deepEqual(e.youden, youdenThreshold(y, s));
    assert.deepEqual(e.f1Optimal, f1OptimalThreshold(y, s));
    assert.deepEqual(Array.from(e.table.thresholds), [0.9, 0.8, 0.65, 0.4, 0.35, 0.2, 0.1]);
  });
});

describe('input handling', () => {
  test('Float32 scores and Uint8 labels, -0 tied with 0', () => {
    const labels = Uint8Array.from([1, 0, 1, 0]);
    const scores = Float32Array.from([0.7, 0.3, -0, 0]);
    const r = rocCurve(labels, scores, { dropIntermediate: false });
    assert.deepEqual(Array.from(r.thresholds), [Infinity, Math.fround(0.7), Math.fround(0.3), 0]);
    assert.equal(rocAucScore(labels, scores).value, pairwiseAuc(labels, scores));
  });

  test('non-finite scores and length mismatches are rejected, as scikit-learn does', () => {
    assert.throws(() => rocCurve([0, 1], [0.1, NaN]), RangeError);
    assert.throws(() => rocCurve([0, 1], [0.1, Infinity]), RangeError);
    assert.throws(() => rocCurve([0, 1], [0.1]), RangeError);
  });

  test('legacy rocAuc / confusionAt keep their behaviour', () => {
    assert.equal(legacy.rocAuc, rocAuc);
    const rng = new Rng('legacy');
    const { labels, scores } = randomSet(rng, 300, { grid: 50 });
    assert.equal(rocAuc(labels, scores), rocAucScore(labels, scores).value);
    assert.ok(Math.abs(rocAuc(labels, scores) - pairwiseAuc(labels, scores)) < 1e-12);
    assert.ok(Number.isNaN(rocAuc([1, 1, 1], [0.2, 0.4, 0.6])));
    assert.ok(Number.isNaN(rocAuc([0, 1], [0.2, NaN]))); // a diverged model must not crash an epoch
    assert.throws(() => rocAuc([0, 1], [0.2]));
    assert.deepEqual(legacy.confusionAt([1, 0, 1, 0], [0.5, 0.5, 0.4, NaN], 0.5), { tp: 1, fp: 1, tn: 1, fn: 1 });
  });
});

// ------------------------------------------------ display helpers

describe('downsampleCurve', () => {
  test('keeps the ends and the marked points, stays within budget, indices increasing', () => {
    const rng = new Rng('down');
    const { labels, scores } = randomSet(rng, 20_000);
    const roc = rocCurve(labels, scores, { dropIntermediate: false });
    const ctx = EvalContext.from(labels, scores);
    const yt = ctx.youden()!.threshold;
    const mark = [roc.thresholds.indexOf(yt), 17, 5000];
    const idx = downsampleCurve({ x: roc.fpr, y: roc.tpr }, 200, mark);
    assert.equal(idx.length, 200);
    assert.equal(idx[0], 0);
    assert.equal(idx[idx.length - 1], roc.fpr.length - 1);
    for (const m of mark) assert.ok(idx.includes(m), `mark ${m}`);
    for (let i = 1; i < idx.length; i++) assert.ok(idx[i] > idx[i - 1]);
    // The thinned curve keeps the shape: its area is within 0.5% of the full curve's.
    const pick = (a: Float64Array) => Array.from(idx, (i) => a[i]);
    const full = npTrapezoid(roc.tpr, roc.fpr), thin = npTrapezoid(pick(roc.tpr), pick(roc.fpr));
    assert.ok(Math.abs(full - thin) < 0.005, `${full} vs ${thin}`);
  });

  test('keeps a sharp corner, returns everything when it fits, and never drops marked points', () => {
    // An L: 500 points up the y axis, then 500 along y = 1. The corner is index 499.
    const x = Array.from({ length: 1000 }, (_, i) => (i < 500 ? 0 : (i - 499) / 500));
    const yv = Array.from({ length: 1000 }, (_, i) => (i < 500 ? i / 499 : 1));
    assert.ok(downsampleCurve({ x, y: yv }, 10).includes(499));
    assert.deepEqual(Array.from(downsampleCurve({ x: [0, 1, 2], y: [0, 1, 2] }, 5)), [0, 1, 2]);
    assert.deepEqual(Array.from(downsampleCurve({ x, y: yv }, 3, [10, 20, 30])), [0, 10, 20, 30, 999]);
    assert.deepEqual(Array.from(downsampleCurve({ x: [], y: [] }, 3)), []);
  });
});

// ------------------------------------------------ patients

test('perPatient: per-patient counts and AUC, worst first', () => {
  const rows: PatientRow[] = [
    // p1: 3 positives, 1 missed at 0.5; AUC defined.
    { patient: 'p1', label: 1, score: 0.9 }, { patient: 'p1', label: 1, score: 0.6 }, { patient: 'p1', label: 1, score: 0.3 },
    { patient: 'p1', label: 0, score: 0.4 },
    // p2: 2 positives, both missed.
    { patient: 'p2', label: 1, score: 0.2 }, { patient: 'p2', label: 1, score: 0.1 }, { patient: 'p2', label: 0, score: 0.05 },
    // p3: no positives, one false positive.
    { patient: 'p3', label: 0, score: 0.7 }, { patient: 'p3', label: 0, score: 0.1 },
    // p4: 1 positive missed, only positives (AUC null), recall 0.
    { patient: 'p4', label: 1, score: 0.45 },
    // p5: one positive missed, recall 1/2.
    { patient: 'p5', label: 1, score: 0.8 }, { patient: 'p5', label: 1, score: 0.1 }, { patient: 'p5', label: 0, score: 0.3 },
  ];
  const r = perPatient(rows, 0.5);
  assert.deepEqual(r.map((p) => p.patient), ['p2', 'p4', 'p5', 'p1', 'p3']);
  const byId = Object.fromEntries(r.map((p) => [p.patient, p]));
  assert.deepEqual(byId.p1, {
    patient: 'p1', n: 4, positives: 3, positiveRate: 0.75, predictedPositiveRate: 0.5, auc: 2 / 3, recall: 2 / 3,
    falseNegatives: 1, falsePositives: 0, meanScore: (0.9 + 0.6 + 0.3 + 0.4) / 4,
  });
  assert.equal(byId.p2.auc, 1);
  assert.equal(byId.p2.recall, 0);
  assert.equal(byId.p3.recall, null);
  assert.equal(byId.p3.auc, null);
  assert.equal(byId.p3.falsePositives, 1);
  assert.equal(byId.p4.auc, null);
  assert.equal(byId.p5.recall, 0.5);
  assert.equal(byId.p5.auc, 0.5);
});
