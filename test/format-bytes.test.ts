import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes } from '../src/core/format';
import { checkFreeSpace } from '../src/core/cache/build';
import { IdcError } from '../src/core/errors';

test('formatBytes: SI units with three significant digits, rounding up into the next unit', () => {
  const cases: [number, string][] = [
    [0, '0 B'], [1, '1 B'], [999, '999 B'], [999.6, '1 kB'], [1000, '1 kB'], [1234, '1.23 kB'], [812_000, '812 kB'],
    [999_499, '999 kB'], [999_500, '1 MB'], [3_400_000, '3.4 MB'], [43_560_000, '43.6 MB'], [1_250_000_000, '1.25 GB'],
    [2.5e12, '2.5 TB'], [-3_400_000, '-3.4 MB'],
  ];
  for (const [n, s] of cases) assert.equal(formatBytes(n), s, String(n));
});

/** The message checkFreeSpace throws with `free` bytes free, or undefined when it lets the build go on. */
function refusal(needed: number, free: number | (() => number)): IdcError | undefined {
  try {
    checkFreeSpace('/cache', needed, typeof free === 'function' ? free : () => free);
    return undefined;
  } catch (e) {
    assert.ok(e instanceof IdcError, String(e));
    return e;
  }
}

test('the disk-space refusal shows the sizes of a small cache, not "0.00 GB"', () => {
  const e = refusal(3_400_000, 812_000)!;
  assert.equal(e.code, 'ENOSPC');
  assert.equal(e.message, 'The patch cache needs about 3.4 MB in /cache, but only 812 kB is free.');
  assert.match(e.hint ?? '', /data\.cacheDir/);
  assert.equal(refusal(1_250_000_000, 98_700_000)!.message, 'The patch cache needs about 1.25 GB in /cache, but only 98.7 MB is free.');
  // Both round to 1.25 GB: the exact counts say why it does not fit.
  assert.equal(refusal(1_250_400_000, 1_249_900_000)!.message, 'The patch cache needs about 1,250,400,000 bytes in /cache, but only 1,249,900,000 bytes is free.');
});

test('the disk-space check lets the build go on when there is room or the free space is unknown', () => {
  assert.equal(refusal(3_400_000, 3_400_000), undefined);
  assert.equal(refusal(3_400_000, () => { throw new Error('statfs unsupported'); }), undefined);
});
