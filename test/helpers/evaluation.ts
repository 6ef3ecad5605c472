/**
 * An evaluation folder without training: a prepared synthetic archive, made-up scores (seeded,
 * label-correlated, with ties), predictions.csv and metrics.json written by the real writers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readManifest } from '../../src/core/manifest';
import { buildEvalReport } from '../../src/core/evaluate/evaluate';
import { writePredictions } from '../../src/core/evaluate/predictions';
import type { EvalReport, Prediction } from '../../src/core/evaluate/types';
import { preparedOutput } from './pipeline';

export interface EvaluationFixture {
  root: string;
  out: string;
  archive: string;
  dir: string;
  predictions: Prediction[];
  report: EvalReport;
  source: { model: string; split: 'test'; dir: string };
}

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Scores as evaluate makes them (float32), label-correlated, about a fifth rounded to 2 decimals (ties). */
export function fakeScores(labels: readonly number[], seed = 3): number[] {
  const r = rng(seed);
  return labels.map((l) => {
    const base = l === 1 ? 0.35 + 0.65 * Math.sqrt(r()) : 0.75 * r() * r();
    const s = r() < 0.2 ? Math.round(base * 100) / 100 : base;
    return Math.fround(Math.min(1, Math.max(0, s)));
  });
}

export async function writeEvaluation(dir: string, rows: Prediction[], ev = { threshold: 0.5, recallTarget: 0.9, pinnedThresholds: [0.3, 0.7] }, model = 'r1'): Promise<EvalReport> {
  mkdirSync(dir, { recursive: true });
  await writePredictions(join(dir, 'predictions.csv'), rows);
  const labels = rows.map((p) => p.label!);
  const scores = Float32Array.from(rows.map((p) => p.score));
  const report = buildEvalReport(labels, scores, rows, ev, { model, runId: model, split: 'test', seconds: 1, backend: 'cpu' });
  writeFileSync(join(dir, 'metrics.json'), JSON.stringify(report));
  return report;
}

export async function evaluationFixture(patients = 6, seed = 5): Promise<EvaluationFixture> {
  const { root, out } = await preparedOutput(patients, seed);
  const manifest = await readManifest(join(out, 'manifest.csv'));
  const scores = fakeScores(manifest.map((m) => m.label));
  const predictions: Prediction[] = manifest.map((m, i) => ({ id: m.id, patient: m.patient, x: m.x, y: m.y, label: m.label, score: scores[i] }));
  const dir = join(out, 'runs', 'r1', 'eval', 'test');
  const report = await writeEvaluation(dir, predictions);
  return { root, out, archive: join(root, 'archive'), dir, predictions, report, source: { model: 'r1', split: 'test', dir } };
}
