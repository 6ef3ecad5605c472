/**
 * A byte count for people, in SI units with three significant digits: "512 B", "812 kB", "3.4 MB",
 * "1.25 GB". Small counts keep their digits (a fixed "0.00 GB" said nothing about a 3 MB cache).
 */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return `${n} B`;
  const sign = n < 0 ? '-' : '';
  let v = Math.abs(n);
  if (v < 999.5) return `${sign}${Math.round(v)} B`;
  const units = ['kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  let u = -1;
  // 999.5 and up rounds to 1000 at three digits: the next unit then.
  while (v >= 999.5 && u < units.length - 1) { v /= 1000; u++; }
  return `${sign}${Number(v.toPrecision(3))} ${units[u]}`;
}
