/**
 * `npm run bench:sidebar`: how long the side bar takes to list an output folder with 1,000 run
 * folders (run.json and a 20-epoch history.jsonl each, every tenth with a test evaluation, one
 * 5-fold cross-validation), the Runs and Evaluations trees, cold (first listing after the files
 * were written) and warm (a refresh after a job event). The figures are printed, not asserted.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEvaluationNodes, buildRunNodes, sidebarFlags } from '../src/core/views/sidebar';

const RUNS = Number(process.argv[2] ?? 1000);
const EPOCHS = 20;

function write(file: string, text: string): void {
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, text);
}

const out = mkdtempSync(join(tmpdir(), 'idc-bench-sidebar-'));
const t0 = performance.now();
for (let r = 0; r < RUNS; r++) {
  const id = r < 5 ? `cv-5fold-seed1-fold${r + 1}` : `run-${String(r).padStart(5, '0')}`;
  const dir = join(out, 'runs', id);
  const createdAt = new Date(Date.UTC(2026, 0, 1) + r * 60_000).toISOString();
  write(join(dir, 'run.json'), JSON.stringify({ id, createdAt, status: r % 7 === 0 ? 'stopped' : 'finished', backend: 'wasm (2 threads)', epochs: EPOCHS, bestEpoch: 12 }));
  let history = '';
  for (let e = 0; e < EPOCHS; e++) {
    history += JSON.stringify({ epoch: e, loss: 0.5, accuracy: 0.8, precision: 0.7, recall: 0.6, auc: 0.85, val_loss: 0.4, val_accuracy: 0.8, val_precision: 0.7, val_recall: 0.6, val_auc: 0.8 + 0.005 * Math.sin(r + e), lr: 0.001, seconds: 30, imagesPerSecond: 900 }) + '\n';
  }
  write(join(dir, 'history.jsonl'), history);
  write(join(dir, 'model', 'model.json'), '{}');
  if (r % 10 === 0) {
    write(join(dir, 'eval', 'test', 'metrics.json'), JSON.stringify({
      version: 1, createdAt, model: id, runId: id, split: 'test', n: 41856, positives: 11000, negatives: 30856, auc: 0.93, averagePrecision: 0.85, warnings: [], threshold: 0.5,
      operatingPoints: [{ name: 'default', label: 'working threshold 0.5', threshold: 0.5, recall: 0.8, specificity: 0.9, precision: 0.75 }],
      intervals: { confidence: 0.95, patients: 42, auc: [0.9, 0.95] },
      // What a real metrics.json carries besides the headline: curves, patients and error lists.
      roc: { fpr: Array.from({ length: 512 }, (_, i) => i / 511), tpr: Array.from({ length: 512 }, (_, i) => Math.sqrt(i / 511)), thresholds: Array.from({ length: 512 }, (_, i) => 1 - i / 511) },
      patients: Array.from({ length: 42 }, (_, i) => ({ patient: `p${i}`, n: 1000, positives: 260, auc: 0.9 })),
      errors: { falseNegatives: Array.from({ length: 200 }, (_, i) => ({ id: `p${i}`, patient: 'p', x: i, y: i, label: 1, score: 0.1 })), falsePositives: [], totalFalseNegatives: 200, totalFalsePositives: 0 },
    }));
  }
}
write(join(out, 'evals', 'cv-5fold-seed1', 'cv.json'), JSON.stringify({ version: 1, id: 'cv-5fold-seed1', folds: [['a'], ['b'], ['c'], ['d'], ['e']], warnings: [], seed: 1, manifestHash: 'h', configHash: 'c', createdAt: '2026-01-01T00:00:00Z' }));
const writeMs = performance.now() - t0;

function timed<T>(fn: () => T): { ms: number; value: T } {
  const t = performance.now();
  const value = fn();
  return { ms: performance.now() - t, value };
}
const row = (what: string, ms: number, note = '') => console.log(`${what.padEnd(46)} ${ms.toFixed(1).padStart(8)} ms  ${note}`);

console.log(`Side bar listing: ${RUNS} run folders (${EPOCHS} epochs of history each), ${Math.ceil(RUNS / 10)} evaluations, 1 cross-validation; written in ${(writeMs / 1000).toFixed(1)} s to ${out}`);
const runsCold = timed(() => buildRunNodes(out));
row('Runs tree, cold', runsCold.ms, `${runsCold.value.length} top-level nodes`);
const runsWarm = [0, 1, 2].map(() => timed(() => buildRunNodes(out, { live: { runId: 'run-00999', epoch: 3, epochs: EPOCHS } })).ms);
row('Runs tree, warm (median of 3)', runsWarm.sort((a, b) => a - b)[1]);
const evalCold = timed(() => buildEvaluationNodes(out));
row('Evaluations tree, cold', evalCold.ms, `${evalCold.value.length} nodes`);
const evalWarm = [0, 1, 2].map(() => timed(() => buildEvaluationNodes(out)).ms);
row('Evaluations tree, warm (metrics.json cached)', evalWarm.sort((a, b) => a - b)[1]);
const flags = timed(() => sidebarFlags({ folder: out, archive: out, archiveExists: true, outputDir: out }));
row('Context keys (sidebarFlags)', flags.ms);
rmSync(out, { recursive: true, force: true });
