import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProgress, formatDuration, ProgressBar } from '../src/cli/progress-bar';
import { throttled, type ProgressEvent } from '../src/core/progress';

test('progress line shows percent, counts, rate and ETA', () => {
  const line = formatProgress({ phase: 'p', label: 'Checking', done: 5000, total: 20000, unit: 'files' }, 2, 120);
  assert.match(line, /^Checking \[#+-+\]  25%  5000\/20\.0k files  2500 files\/s  ETA 6\.0s$/);
  const done = formatProgress({ phase: 'p', label: 'Checking', done: 20000, total: 20000, unit: 'files' }, 8, 120);
  assert.match(done, /100%.*in 8\.0s/);
  const open = formatProgress({ phase: 'p', label: 'Listing', done: 42, unit: 'files' }, 1);
  assert.equal(open, 'Listing  42 files  42 files/s');
});

test('durations read naturally', () => {
  assert.equal(formatDuration(3.25), '3.3s');
  assert.equal(formatDuration(75), '1m15s');
  assert.equal(formatDuration(7260), '2h01m');
  assert.equal(formatDuration(Infinity), '?');
});

test('non-TTY output prints the final line and not every update', () => {
  const lines: string[] = [];
  const stream = { isTTY: false, columns: 80, write: (s: string) => { lines.push(s); return true; } } as unknown as NodeJS.WriteStream;
  const bar = new ProgressBar(stream);
  for (let i = 0; i <= 1000; i++) bar.update({ phase: 'x', label: 'Work', done: i, total: 1000, unit: 'items' });
  assert.ok(lines.length <= 3, `${lines.length} lines`);
  assert.match(lines[lines.length - 1], /100%/);
});

test('throttled sink passes the first and last events and drops the flood between', () => {
  const seen: ProgressEvent[] = [];
  const sink = throttled((e) => seen.push(e), 10_000);
  for (let i = 0; i <= 500; i++) sink({ phase: 'x', label: 'x', done: i, total: 500, unit: 'u' });
  assert.deepEqual(seen.map((e) => e.done), [0, 500]);
});
