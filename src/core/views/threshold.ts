/**
 * Threshold explorer view model: metrics.json's curves and operating points plus the compact
 * per-threshold count table built from predictions.csv, so the page can compute the confusion
 * matrix and every metric at any threshold without a round trip. Pure file reading (no TF.js, no
 * `vscode`); parsed evaluations are cached and reread only when their files change.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EvaluationInfo } from '../../protocol/protocol';
import { loadConfig } from '../config';
import { IdcError } from '../errors';
import { readPredictions } from '../evaluate/predictions';
import type { EvalReport, Prediction } from '../evaluate/types';
import { thresholdTable, type ThresholdTable } from '../metrics/table';
import { evaluationId } from './ids';
import type { EvaluationSummary, ThresholdView } from './types';
import { fileVersionKey } from '../fsutil';

/** What the builders need to know about an evaluation (WorkspaceInfo.evaluations gives it). */
export type EvaluationSource = Pick<EvaluationInfo, 'model' | 'split' | 'dir'>;

/** One evaluation read from disk: metrics.json, the predictions and their count table. */
export interface LoadedEvaluation {
  id: string;
  dir: string;
  report: EvalReport;
  /** Labelled rows of predictions.csv, in file order. */
  predictions: Prediction[];
  table: ThresholdTable;
  /** Per-evaluation memo for other builders (the gallery keeps its sorted cells here); dropped with the entry. */
  memo: Map<string, unknown>;
}

interface CacheEntry { key: string; value: LoadedEvaluation }
const evaluations = new Map<string, CacheEntry>();
const summaries = new Map<string, { key: string; value: EvaluationSummary | null }>();

/**
 * Reads an evaluation folder (cached: predictions.csv is parsed once per change of either file's
 * mtime or size, since a 45k-row file takes ~100 ms).
 */
export function loadEvaluation(src: EvaluationSource): LoadedEvaluation {
  const metricsFile = join(src.dir, 'metrics.json');
  const predictionsFile = join(src.dir, 'predictions.csv');
  const key = `${versionOr(metricsFile)}|${versionOr(predictionsFile)}`;
  const hit = evaluations.get(src.dir);
  if (hit && hit.key === key) return hit.value;
  const report = readReport(metricsFile);
  const predictions = readPredictions(predictionsFile).filter((p) => p.label !== undefined);
  const labels = new Uint8Array(predictions.length);
  const scores = new Float64Array(predictions.length);
  predictions.forEach((p, i) => { labels[i] = p.label!; scores[i] = p.score; });
  const value: LoadedEvaluation = { id: evaluationId(src), dir: src.dir, report, predictions, table: thresholdTable(labels, scores), memo: new Map() };
  evaluations.set(src.dir, { key, value });
  return value;
}

function readReport(file: string): EvalReport {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new IdcError(`No metrics at ${file}.`, 'Run "IDC: Evaluate Model" to write it.', 'NO_METRICS');
  }
  let report: EvalReport;
  try {
    report = JSON.parse(text) as EvalReport;
  } catch {
    throw new IdcError(`${file} is not valid JSON.`, 'Run "IDC: Evaluate Model" again to rewrite it.', 'BAD_METRICS');
  }
  if (report?.version !== 1 || !Array.isArray(report.operatingPoints) || !report.roc || !report.pr) {
    throw new IdcError(`${file} is not an IDC metrics file (version 1).`, 'Run "IDC: Evaluate Model" again to rewrite it.', 'BAD_METRICS');
  }
  return report;
}

function summaryOf(src: EvaluationSource, r: EvalReport): EvaluationSummary {
  return {
    id: evaluationId(src), model: src.model, split: src.split, n: r.n, positives: r.positives, negatives: r.negatives,
    auc: r.auc, averagePrecision: r.averagePrecision, createdAt: r.createdAt,
  };
}

/** A summary of each evaluation from its metrics.json alone (unreadable ones are left out). */
export function evaluationSummaries(list: readonly EvaluationSource[]): EvaluationSummary[] {
  const out: EvaluationSummary[] = [];
  for (const src of list) {
    const file = join(src.dir, 'metrics.json');
    const key = versionOr(file);
    let hit = summaries.get(src.dir);
    if (!hit || hit.key !== key) {
      let value: EvaluationSummary | null = null;
      try { value = summaryOf(src, readReport(file)); } catch { /* left out */ }
      hit = { key, value };
      summaries.set(src.dir, hit);
    }
    if (hit.value) out.push(hit.value);
  }
  return out;
}

/**
 * The evaluation a panel asked for (`<model>/<split>`), else the newest one (the last listed, as
 * the Show commands pick). `missing` says when the one asked for is gone. Undefined when none exist.
 */
export function pickEvaluation<T extends EvaluationSource>(list: readonly T[], wanted?: string): { source: T; missing?: string } | undefined {
  if (!list.length) return undefined;
  if (wanted) {
    const found = list.find((e) => evaluationId(e) === wanted);
    if (found) return { source: found };
    return { source: list[list.length - 1], missing: wanted };
  }
  return { source: list[list.length - 1] };
}

/** The evaluate section of idc.config.json that the panels show and edit. */
export interface EvaluateSettings { threshold: number; recallTarget: number; pinnedThresholds: number[] }

/** evaluate.* from the folder's idc.config.json (defaults when it has none); undefined when it cannot be read. */
export async function readEvaluateSettings(folder: string): Promise<EvaluateSettings | undefined> {
  try {
    const { config } = await loadConfig({ cwd: folder });
    return { threshold: config.evaluate.threshold, recallTarget: config.evaluate.recallTarget, pinnedThresholds: [...config.evaluate.pinnedThresholds] };
  } catch {
    return undefined;
  }
}

/**
 * The threshold explorer's view of one evaluation; null when there is none. `settings` is the
 * config's evaluate section now (the evaluation's own values when omitted).
 */
export function buildThresholdView(list: readonly EvaluationSource[], opts: { evaluation?: string; settings?: EvaluateSettings } = {}): ThresholdView | null {
  const picked = pickEvaluation(list, opts.evaluation);
  if (!picked) return null;
  const ev = loadEvaluation(picked.source);
  const r = ev.report;
  const warnings = [...r.warnings];
  if (picked.missing) warnings.unshift(`Evaluation ${picked.missing} is gone; showing ${ev.id}.`);
  if (ev.table.positives + ev.table.negatives !== r.n) {
    warnings.push(`predictions.csv holds ${ev.table.positives + ev.table.negatives} labelled patches but metrics.json counted ${r.n}: evaluate again to bring them in line.`);
  }
  const recallPoint = r.operatingPoints.find((o) => o.name === 'recall-target');
  const evaluatedRecall = recallPoint ? Number(/([\d.]+)\s*$/.exec(recallPoint.label)?.[1]) : NaN;
  const s = opts.settings ?? {
    threshold: r.threshold,
    recallTarget: Number.isFinite(evaluatedRecall) ? evaluatedRecall : 0.9,
    pinnedThresholds: r.operatingPoints.filter((o) => o.name === 'pinned').map((o) => o.threshold),
  };
  const t = ev.table;
  return {
    evaluation: summaryOf(picked.source, r),
    evaluations: evaluationSummaries(list),
    roc: r.roc,
    pr: r.pr,
    table: { thresholds: Array.from(t.thresholds), tp: Array.from(t.tp), fp: Array.from(t.fp), positives: t.positives, negatives: t.negatives },
    operatingPoints: r.operatingPoints,
    working: s.threshold,
    evaluatedThreshold: r.threshold,
    recallTarget: s.recallTarget,
    pinned: [...new Set(s.pinnedThresholds)].sort((a, b) => a - b),
    warnings,
    intervals: r.intervals, calibration: r.calibration, validation: r.validation,
    ...(r.cv ? { cv: cvHeader(r.cv) } : {}),
  };
}

/** A cross-validation's folds and the spread of their own AUCs, for the explorer's header. */
function cvHeader(cv: NonNullable<EvalReport['cv']>): NonNullable<ThresholdView['cv']> {
  const aucs = cv.rows.map((r) => (typeof r.auc === 'number' && Number.isFinite(r.auc) ? r.auc : null));
  const finite = aucs.filter((a): a is number => a !== null);
  return {
    id: cv.id, folds: cv.folds, aucs, mean: cv.mean.auc, sd: cv.sd.auc,
    min: finite.length ? Math.min(...finite) : null, max: finite.length ? Math.max(...finite) : null,
  };
}

const versionOr = (file: string): string => fileVersionKey(file) ?? 'missing';
