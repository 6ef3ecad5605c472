/**
 * NumPy's float64 reductions, reproduced operation for operation so that AUC and AP match
 * scikit-learn to the last bit, not just to 1e-15: np.sum (and so np.trapz / scipy's trapezoid) adds
 * with pairwise summation, whose rounding differs from a running total.
 */

/** np.add.reduce over a contiguous float64 array: numpy/_core/src/umath/loops_utils.h.src `pairwise_sum`. */
export function npSum(a: ArrayLike<number>, start = 0, n = a.length - start): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= 128) {
    let r0 = a[start], r1 = a[start + 1], r2 = a[start + 2], r3 = a[start + 3];
    let r4 = a[start + 4], r5 = a[start + 5], r6 = a[start + 6], r7 = a[start + 7];
    const end = n - (n % 8);
    let i = 8;
    for (; i < end; i += 8) {
      const b = start + i;
      r0 += a[b]; r1 += a[b + 1]; r2 += a[b + 2]; r3 += a[b + 3];
      r4 += a[b + 4]; r5 += a[b + 5]; r6 += a[b + 6]; r7 += a[b + 7];
    }
    let res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return npSum(a, start, n2) + npSum(a, start + n2, n - n2);
}

/** np.trapz(y, x) / scipy.integrate.trapezoid: sum of diff(x) * (y[1:] + y[:-1]) / 2.0. */
export function npTrapezoid(y: ArrayLike<number>, x: ArrayLike<number>): number {
  const m = x.length - 1;
  if (m <= 0) return 0;
  const terms = new Float64Array(m);
  for (let i = 0; i < m; i++) terms[i] = ((x[i + 1] - x[i]) * (y[i + 1] + y[i])) / 2.0;
  return npSum(terms);
}
