/** Hash-based value noise: stateless, so any worker can evaluate any point and get the same value. */

function lattice(ix: number, iy: number, seed: number): number {
  let h = Math.imul(ix, 0x27d4eb2d) ^ Math.imul(iy, 0x165667b1) ^ seed;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2147483648 - 1;
}

/** Smooth value noise in [-1, 1]; `period` > 0 wraps the lattice so tiles repeat seamlessly. */
export function valueNoise(x: number, y: number, seed: number, period = 0): number {
  const fx0 = Math.floor(x);
  const fy0 = Math.floor(y);
  const fx = x - fx0;
  const fy = y - fy0;
  let x0 = fx0, y0 = fy0, x1 = fx0 + 1, y1 = fy0 + 1;
  if (period > 0) {
    x0 = ((x0 % period) + period) % period; y0 = ((y0 % period) + period) % period;
    x1 = (x0 + 1) % period; y1 = (y0 + 1) % period;
  }
  const sx = fx * fx * (3 - 2 * fx);
  const sy = fy * fy * (3 - 2 * fy);
  const a = lattice(x0, y0, seed), b = lattice(x1, y0, seed);
  const c = lattice(x0, y1, seed), d = lattice(x1, y1, seed);
  const top = a + (b - a) * sx;
  return top + (c + (d - c) * sx - top) * sy;
}

/** Two octaves; enough for irregular borders without costing much. */
export function fbm2(x: number, y: number, seed: number, period = 0): number {
  return 0.7 * valueNoise(x, y, seed, period) + 0.3 * valueNoise(x * 2 + 17, y * 2 + 5, seed ^ 0x5bd1e995, period > 0 ? period * 2 : 0);
}
