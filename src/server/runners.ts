/**
 * One function per job kind, each a thin shell over src/core as the CLI's commands are. TF.js
 * modules are imported on first use so the server starts (and checks configs) without them.
 */
import { BASELINE_NAME } from '../core/baseline';
import { readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { IdcError } from '../core/errors';
import { loadConfig, parseJsonc, resolveConfigPath, type DeepPartial, type IdcConfig, type LoadedConfig } from '../core/config';
import { organize, MANIFEST_FILE } from '../core/organize/organize';
import { formatOrganizeSummary } from '../core/organize/summary';
import { readManifest, manifestHash } from '../core/manifest';
import { splitByPatient, writeSplit, formatSplitSummary } from '../core/split';
import { generateSyntheticArchive } from '../core/synth/synth';
import type { ProgressSink } from '../core/progress';
import type { TrainEvent } from '../core/train/train';
import type { JobKind, JobRequest, ServerSettings } from '../protocol/protocol';
import type { HostCvEvent, JobOutcome } from '../protocol/job-host';

export const SPLIT_FILE = 'split.json';

export interface JobContext {
  folder: string;
  loaded: LoadedConfig;
  config: IdcConfig;
  outputDir: string;
  signal: AbortSignal;
  onProgress: ProgressSink;
  onTrainEvent(e: TrainEvent): void;
  /** A cross-validation's fold and warning events. */
  onCvEvent(e: HostCvEvent): void;
  log(line: string): void;
  /** The TF.js backend now in use, for the status bar. */
  setBackend(name: string): void;
  /** The interpreter VS Code's Python extension selected (sent with the job); engine.python wins. */
  editorPython?: string;
}

type RequestOf<K extends JobKind> = Extract<JobRequest, { kind: K }>;

interface Runner<K extends JobKind> {
  /** Request fields that override idc.config.json, as the CLI's flags do. */
  overrides?(req: RequestOf<K>): DeepPartial<IdcConfig>;
  run(req: RequestOf<K>, ctx: JobContext): Promise<JobOutcome>;
}

export const runners: { [K in JobKind]: Runner<K> } = {
  organize: {
    overrides: (r) => ({ organize: { materialize: r.materialize } }),
    async run(req, ctx) {
      const archive = req.archive ? resolve(ctx.folder, req.archive) : resolveConfigPath(ctx.loaded, ctx.config.paths.archive);
      const t0 = Date.now();
      const r = await organize({ archive, out: ctx.outputDir, materialize: ctx.config.organize.materialize, force: req.force, onProgress: ctx.onProgress, signal: ctx.signal });
      const lines: string[] = [];
      if (r.upToDate) lines.push(`The manifest is up to date with ${archive}; nothing to do.`);
      else {
        if (r.resumedPatients) lines.push(`Resumed an interrupted run: ${r.resumedPatients} patients were already done.`);
        lines.push(`Organized ${r.report.totals.files} files in ${seconds(t0)}.`);
      }
      lines.push(formatOrganizeSummary(r.report));
      if (r.materialized) lines.push(`Materialized ${ctx.outputDir}/{0,1}/ (${r.materialized.mode}): ${r.materialized.created} new, ${r.materialized.existing} already there.`);
      return { summary: lines.join('\n'), outputs: [{ label: 'Manifest', path: r.manifestFile }, { label: 'Organize report', path: r.reportFile }] };
    },
  },
  split: {
    overrides: (r) => ({ split: { ratios: r.ratios, seed: r.seed, stratify: r.stratify } }),
    async run(_req, ctx) {
      const manifestFile = join(ctx.outputDir, MANIFEST_FILE);
      const rows = await readManifest(manifestFile);
      const { ratios, seed, stratify } = ctx.config.split;
      ctx.onProgress({ phase: 'split', label: 'Splitting by patient', done: 0, total: 1, unit: 'split' });
      const split = splitByPatient(rows, { ratios, seed, stratify, manifestHash: manifestHash(readFileSync(manifestFile, 'utf8')) });
      const file = join(ctx.outputDir, SPLIT_FILE);
      await writeSplit(file, split);
      ctx.onProgress({ phase: 'split', label: 'Splitting by patient', done: 1, total: 1, unit: 'split' });
      return { summary: formatSplitSummary(split), outputs: [{ label: 'Split', path: file }] };
    },
  },
  train: {
    overrides: (r) => ({ engine: { backend: r.backend }, train: { epochs: r.epochs, batchSize: r.batchSize } }),
    run: (req, ctx) => runTrain(ctx, { runId: req.runId }),
  },
  resume: {
    run: (req, ctx) => runTrain(ctx, req.runId ? { runId: req.runId } : { resume: true }),
  },
  evaluate: {
    overrides: (r) => ({ evaluate: { split: r.split } }),
    async run(req, ctx) {
      const { evaluateModel } = await import('../core/evaluate/evaluate');
      const { evalSummaryLines, chosenOnText } = await import('../core/evaluate/summary');
      await useBackend(ctx);
      const options = {
        outputDir: ctx.outputDir, config: ctx.config, explicit: ctx.loaded.explicit, cacheDir: cacheDir(ctx), runId: req.runId,
        modelPath: modelPathOf(req.modelPath, ctx.folder), onProgress: ctx.onProgress, signal: ctx.signal,
      };
      // Another labelled archive: organized read-only under the output folder, every patient scored (idc evaluate --archive).
      const r = req.archive
        ? await (await import('../core/evaluate/external')).evaluateExternal({ ...options, archive: resolve(ctx.folder, req.archive), orBaseline: true })
        : await evaluateModel(options);
      // A long-lived process must give these back (the CLI simply exits).
      r.model.dispose();
      r.reader.close();
      const m = r.report;
      const f = (x: number | null | undefined, d = 3): string => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d));
      const lines = [
        `Evaluated ${m.model} on ${m.external ? `the external archive ${m.external.name}` : m.split}: ${m.n} patches (${m.positives} positive) in ${m.seconds.toFixed(1)} s.`,
        ...evalSummaryLines(m).map((l) => l.trim()),
        ...m.warnings.map((w) => `Warning: ${w}`),
        ...m.operatingPoints.map((o) => `${o.label}${o.chosenOn ? ` [chosen on ${chosenOnText(o, m.split)}]` : ''}: threshold ${o.threshold.toFixed(4)}, recall ${f(o.recall)}, precision ${f(o.precision)}, specificity ${f(o.specificity)}, FN ${o.fn}, FP ${o.fp}`),
        `Grad-CAM overlays: ${r.gradCams}; slide maps: ${r.slideMaps.length}.`,
      ];
      return {
        summary: lines.join('\n'), runId: m.runId,
        outputs: [{ label: 'Metrics', path: r.metricsFile }, { label: 'Predictions', path: r.predictionsFile }, ...r.slideMaps.map((p) => ({ label: 'Slide map', path: p }))],
      };
    },
  },
  report: {
    overrides: (r) => ({ evaluate: { split: r.split } }),
    async run(req, ctx) {
      const { exportReport } = await import('../core/report/assemble');
      const file = req.file ? resolve(ctx.folder, req.file) : join(ctx.outputDir, 'report.html');
      ctx.onProgress({ phase: 'report', label: 'Writing the report', done: 0, total: 1, unit: 'file' });
      const input = await exportReport(ctx.outputDir, file, { runId: req.runId, cv: req.cv, split: ctx.config.evaluate.split, cacheDir: cacheDir(ctx) });
      ctx.onProgress({ phase: 'report', label: 'Writing the report', done: 1, total: 1, unit: 'file' });
      const parts = [input.organize && 'dataset', input.history && 'training curves', input.evaluation?.cv && `cross-validation ${input.evaluation.cv.id}`, input.evaluation && 'evaluation', input.slideMaps?.length && 'slide maps'].filter(Boolean);
      return { summary: `Report (${parts.join(', ')}): ${file}`, outputs: [{ label: 'Report', path: file }] };
    },
  },
  synth: {
    overrides: (r) => ({ synth: { patients: r.patients, seed: r.seed } }),
    async run(req, ctx) {
      const zip = Boolean(req.zip) || /\.zip$/i.test(req.out);
      const out = resolve(ctx.folder, zip && !/\.zip$/i.test(req.out) ? `${req.out}.zip` : req.out);
      const t0 = Date.now();
      const s = await generateSyntheticArchive({ out, patients: ctx.config.synth.patients, seed: ctx.config.synth.seed, zip, onProgress: ctx.onProgress, signal: ctx.signal });
      const pct = s.patches ? ((100 * s.positives) / s.patches).toFixed(1) : '0';
      return {
        summary: `Synthetic archive ${s.out}: ${s.patients} patients, ${s.patches} patches (${s.positives} positive, ${pct}%), ${s.edgePatches} edge patches, in ${seconds(t0)}.`,
        outputs: [{ label: 'Archive', path: s.out }],
      };
    },
  },
  predict: {
    async run(req, ctx) {
      const { predictFolder } = await import('../core/evaluate/predict');
      await useBackend(ctx);
      const r = await predictFolder({
        folder: resolve(ctx.folder, req.patches), outputDir: ctx.outputDir, archive: resolveConfigPath(ctx.loaded, ctx.config.paths.archive), config: ctx.config, explicit: ctx.loaded.explicit, runId: req.runId,
        modelPath: modelPathOf(req.modelPath, ctx.folder), orBaseline: true, onProgress: ctx.onProgress, signal: ctx.signal,
      });
      const { deployLines } = await import('../core/evaluate/summary');
      const lines = [`Model: ${r.model}${r.baselineFallback ? `: ${r.baselineFallback}` : ''}.`, ...deployLines(r), `Scored ${r.predictions.length} patches (${r.skipped.length} skipped) at threshold ${+r.threshold.toPrecision(4)}:`];
      for (const p of r.patients) lines.push(`patient ${p.patient}: ${p.predictedPositive}/${p.n} patches IDC-positive, mean score ${p.meanScore.toFixed(3)}`);
      lines.push(`Inputs: ${r.stainNormalizationReason}.`);
      for (const i of r.skipped.slice(0, 10)) lines.push(`skipped ${i.path}: ${i.reason}`);
      return { summary: lines.join('\n'), outputs: [{ label: 'Predictions', path: r.predictionsFile }, ...(r.slideMaps ?? []).map((p) => ({ label: 'Slide map', path: p }))] };
    },
  },
  cv: {
    overrides: (r) => ({ engine: { backend: r.backend }, train: { epochs: r.epochs } }),
    async run(req, ctx) {
      const { crossValidate } = await import('../core/cv/cv');
      const { evalSummaryLines } = await import('../core/evaluate/summary');
      await useBackend(ctx, 'train');
      const folds = req.folds ?? 5;
      const seed = req.seed ?? ctx.config.split.seed;
      // The id crossValidate would pick, named here so every event (and a cancel) can say what to rerun.
      const cv = { id: req.id ?? `cv-${folds}fold-seed${seed}`, folds, seed };
      const r = await crossValidate({
        outputDir: ctx.outputDir, config: ctx.config, cacheDir: cacheDir(ctx), folds, seed, id: cv.id, onProgress: ctx.onProgress, signal: ctx.signal,
        onEvent: (e) => (e.type === 'train' ? ctx.onTrainEvent(e.event) : ctx.onCvEvent({ ...e, cv })),
      });
      const s = r.report.cv;
      const f = (x: number | null | undefined, d = 3): string => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d));
      const lines = [
        `Cross-validation ${r.id}: ${s.folds} folds by patient, pooled out-of-fold ROC AUC ${f(r.report.auc)} on ${r.report.n} patches; per fold ${f(s.mean.auc)} ± ${f(s.sd.auc)}.`,
        ...s.rows.map((row) => `fold ${row.fold} (${row.runId}): ${row.patients.train.length}/${row.patients.val.length}/${row.patients.test.length} patients train/val/test, ${row.n} test patches, ROC AUC ${f(row.auc)}, AP ${f(row.averagePrecision)}`),
        ...evalSummaryLines(r.report).map((l) => l.trim()),
      ];
      return { summary: lines.join('\n'), cv, outputs: [{ label: 'Metrics', path: r.metricsFile }, { label: 'Predictions', path: r.predictionsFile }] };
    },
  },
  gradcam: {
    async run(req, ctx) {
      const evalDir = resolve(ctx.folder, req.evalDir);
      const rel = relative(ctx.outputDir, evalDir);
      if (!rel || rel.startsWith('..') || isAbsolute(rel)) throw new IdcError(`${evalDir} is not an evaluation in ${ctx.outputDir}.`, 'Ask for patches of an evaluation of this workspace.', 'BAD_ARGUMENT');
      const { writeGradCamsFor } = await import('../core/evaluate/gradcam-on-demand');
      await useBackend(ctx);
      const r = await writeGradCamsFor({ outputDir: ctx.outputDir, config: ctx.config, evalDir, ids: req.ids, cacheDir: cacheDir(ctx), signal: ctx.signal, onProgress: ctx.onProgress });
      return { summary: `Grad-CAM overlays written: ${r.written}${r.skipped ? ` (${r.skipped} patches not in the evaluated split)` : ''}.`, outputs: [{ label: 'Grad-CAM', path: join(evalDir, 'gradcam') }] };
    },
  },
};

/** Config for a job: the file (or defaults), the request's overrides, then the machine's default backend. */
export async function loadJobConfig(folder: string, overrides: DeepPartial<IdcConfig>, settings: ServerSettings): Promise<LoadedConfig> {
  const loaded = await loadConfig({ cwd: folder, overrides });
  const chosen = overrides.engine?.backend !== undefined || (loaded.file !== undefined && fileSetsBackend(loaded.file));
  if (!chosen && settings.defaultBackend) loaded.config.engine.backend = settings.defaultBackend;
  return loaded;
}

function fileSetsBackend(file: string): boolean {
  try {
    const raw = parseJsonc(readFileSync(file, 'utf8'), file) as { engine?: { backend?: unknown } } | null;
    return raw?.engine?.backend !== undefined;
  } catch {
    return false;
  }
}

/** Runs a request with its kind's runner (the one place the kind-to-runner correlation is asserted). */
export function runJobRequest(req: JobRequest, ctx: JobContext): Promise<JobOutcome> {
  return (runners[req.kind] as Runner<JobKind>).run(req as never, ctx);
}

export function jobOverrides(req: JobRequest): DeepPartial<IdcConfig> {
  return (runners[req.kind] as Runner<JobKind>).overrides?.(req as never) ?? {};
}

async function runTrain(ctx: JobContext, which: { runId?: string; resume?: boolean }): Promise<JobOutcome> {
  const { train } = await import('../core/train/train');
  await useBackend(ctx, 'train');
  const r = await train({ outputDir: ctx.outputDir, config: ctx.config, cacheDir: cacheDir(ctx), ...which, onProgress: ctx.onProgress, signal: ctx.signal, onEvent: ctx.onTrainEvent });
  const model = join(r.runDir, 'model', 'model.json');
  const best = r.bestEpoch !== undefined ? `; best epoch ${r.bestEpoch + 1} (weights restored)` : '';
  return {
    summary: `Run ${r.runId} ${r.stopReason === 'early-stopped' ? 'stopped early' : 'finished'} after ${r.history.length} epochs${best}.`,
    outputs: [{ label: 'Model', path: model }, { label: 'History', path: join(r.runDir, 'history.jsonl') }], runId: r.runId,
  };
}

/** Starts the job's backend; 'train' lets auto pick torch (initBackendFor then points ctx.config at it). */
async function useBackend(ctx: JobContext, purpose: 'train' | 'score' = 'score'): Promise<void> {
  const { initBackendFor } = await import('../core/engine/backends');
  const b = await initBackendFor(ctx.config, { purpose, editorPython: ctx.editorPython, onProgress: ctx.onProgress, signal: ctx.signal });
  ctx.setBackend(b.name);
  ctx.log(b.summary);
}

function cacheDir(ctx: JobContext): string | undefined {
  return ctx.config.data.cacheDir ? resolveConfigPath(ctx.loaded, ctx.config.data.cacheDir) : undefined;
}

function seconds(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

/** A model.json relative to the workspace folder, or the shipped baseline by name. */
function modelPathOf(modelPath: string | undefined, folder: string): string | undefined {
  return modelPath === BASELINE_NAME ? BASELINE_NAME : modelPath ? resolve(folder, modelPath) : undefined;
}
