/**
 * Thinning a curve for display. Approach: the ends and every marked index (operating points) are
 * always kept and split the curve into segments; the remaining budget is shared between segments in
 * proportion to their length (largest remainder), and each segment is thinned with
 * Largest-Triangle-Three-Buckets (Steinarsson 2013): its interior is cut into equal buckets and each
 * bucket keeps the point forming the largest triangle with the previously kept point and the next
 * bucket's centroid, which keeps the corners that give the curve its shape. O(n).
 */

export interface CurvePoints {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

/**
 * Increasing indices into the curve, at most max(maxPoints, ends + marked) of them. Marked indices
 * outside the curve are ignored. Returns every index when the curve already fits.
 */
export function downsampleCurve(points: CurvePoints, maxPoints: number, keepIndices: Iterable<number> = []): Uint32Array {
  const n = points.x.length;
  if (points.y.length !== n) throw new RangeError(`${n} x but ${points.y.length} y`);
  if (n === 0) return new Uint32Array(0);
  const budget = Math.max(0, Math.floor(maxPoints));
  if (n <= budget) return Uint32Array.from({ length: n }, (_, i) => i);
  const fixed = new Set<number>([0, n - 1]);
  for (const i of keepIndices) if (Number.isInteger(i) && i >= 0 && i < n) fixed.add(i);
  const anchors = Uint32Array.from(fixed).sort();
  const spare = budget - anchors.length;
  if (spare <= 0) return anchors;

  // Share the spare points between segments by interior size, largest remainder first.
  const segs = anchors.length - 1;
  const interior = new Float64Array(segs);
  let total = 0;
  for (let s = 0; s < segs; s++) { interior[s] = anchors[s + 1] - anchors[s] - 1; total += interior[s]; }
  const alloc = new Uint32Array(segs);
  const order: Array<[number, number]> = [];
  let given = 0;
  for (let s = 0; s < segs; s++) {
    const exact = (interior[s] * spare) / total;
    alloc[s] = Math.min(interior[s], Math.floor(exact));
    given += alloc[s];
    order.push([exact - alloc[s], s]);
  }
  order.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let r = 0; given < spare && r < order.length; r++) {
    const s = order[r][1];
    if (alloc[s] < interior[s]) { alloc[s]++; given++; }
  }

  const out: number[] = [];
  for (let s = 0; s < segs; s++) {
    out.push(anchors[s]);
    lttbInterior(points, anchors[s], anchors[s + 1], alloc[s], out);
  }
  out.push(anchors[segs]);
  return Uint32Array.from(out);
}

/** Picks `k` interior points of (a, b) by LTTB, appending them to `out` in order. */
function lttbInterior({ x, y }: CurvePoints, a: number, b: number, k: number, out: number[]): void {
  const m = b - a - 1;
  if (k <= 0) return;
  if (k >= m) { for (let i = a + 1; i < b; i++) out.push(i); return; }
  const size = m / k;
  let prev = a;
  for (let j = 0; j < k; j++) {
    const start = a + 1 + Math.floor(j * size);
    const end = a + 1 + Math.floor((j + 1) * size); // exclusive
    // Centroid of the next bucket, or the segment's end anchor for the last one.
    let cx: number, cy: number;
    if (j === k - 1) { cx = x[b]; cy = y[b]; } else {
      const ns = end, ne = a + 1 + Math.floor((j + 2) * size);
      cx = 0; cy = 0;
      for (let i = ns; i < ne; i++) { cx += x[i]; cy += y[i]; }
      cx /= ne - ns; cy /= ne - ns;
    }
    let best = start, bestArea = -1;
    const px = x[prev], py = y[prev];
    for (let i = start; i < end; i++) {
      const area = Math.abs((px - cx) * (y[i] - py) - (px - x[i]) * (cy - py));
      if (area > bestArea) { bestArea = area; best = i; } // NaN areas (one-class curves) keep the bucket's first point
    }
    out.push(best);
    prev = best;
  }
}
