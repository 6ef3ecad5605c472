#!/usr/bin/env node
/** `idc`: the headless pipeline. Every command is a thin shell over src/core. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { resolve, join } from 'node:path';
import { existsSync } from 'node:fs';
import { isIdcError, IdcError } from '../core/errors';
import { loadConfig, resolveConfigPath, defaultConfigText, PRESETS, type PresetName, CONFIG_FILE_NAME, type BackendName, type DeepPartial, type IdcConfig, type LoadedConfig } from '../core/config';
import { validateConfig, ConfigError } from '../core/config';
import { organize, MANIFEST_FILE, type Materialize } from '../core/organize/organize';
import { formatOrganizeSummary } from '../core/organize/summary';
import { readManifestWithHash } from '../core/manifest';
import { splitByPatient, writeSplit, formatSplitSummary } from '../core/split';
import { generateSyntheticArchive } from '../core/synth/synth';
import { writeFileAtomic } from '../core/fsutil';
import { describeCacheFailure } from '../core/cache/format';
import { runIdProblem } from '../core/run-id';
import { ProgressBar, formatDuration } from './progress-bar';

const SPLIT_FILE = 'split.json';

/** --stain-normalization: how a model without a run config gets its patches (checked against the schema like every flag). */
type StainFlag = IdcConfig['data']['stainNormalization'] | undefined;

interface Context {
  loaded: LoadedConfig;
  config: IdcConfig;
  bar: ProgressBar;
  signal: AbortSignal;
  out: (s: string) => void;
}

const COMMON = {
  config: { type: 'string', short: 'c' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const USAGE = `idc — IDC Inspector pipeline

Usage:
  idc demo [--dir <folder>] [--patients N]     generate a synthetic archive and run the whole pipeline on it
                                               (16 patients, 3 epochs, batch-norm momentum 0.9)
  idc synth <out> [--patients N] [--seed S] [--zip] [--duplicate-tree]
  idc organize [<archive dir or .zip>] [--out <dir>] [--materialize link|copy] [--force]
  idc split [--ratios 0.7,0.15,0.15] [--seed 42] [--stratify | --no-stratify] [--out <dir>]
  idc evaluate [--run <id>[,<id>…] | --model <model.json> | --model baseline] [--split test|val|train | --archive <dir or .zip>] [--out <dir>]
                                               (--archive: score every patch of another labelled archive)
                                               [--stain-normalization none|macenko]: a --model's inputs (default: as scanned)
  idc train [--run <id>] [--resume] [--epochs N] [--batch-size N] [--backend auto|wasm|webgpu|…] [--out <dir>]
  idc cv [--folds 5] [--seed S] [--id NAME] [--epochs N] [--out <dir>]   cross-validation by patient (resumable)
  idc report [--run <id> | --cv <id>] [--file report.html] [--out <dir>]   one self-contained HTML file
  idc predict <folder> [--run <id>[,<id>…] | --model <model.json>] [--stain-normalization none|macenko]   score unlabelled patches
  idc config init [--preset notebook]          write a default ${CONFIG_FILE_NAME} here (or the reference notebook's recipe)

Options for every command:
  -c, --config <file>   config file (default: ./${CONFIG_FILE_NAME} when present)
  -q, --quiet           no progress bars
Flags override the config file; relative paths in the config resolve against its folder.
`;


const commands: Record<string, { options: ParseArgsConfig['options']; run: (values: Record<string, unknown>, positionals: string[], ctx: Context) => Promise<void>; overrides?: (v: Record<string, unknown>) => DeepPartial<IdcConfig> }> = {
  synth: {
    options: { patients: { type: 'string' }, seed: { type: 'string' }, zip: { type: 'boolean' }, 'duplicate-tree': { type: 'boolean' } },
    overrides: (v) => ({ synth: { patients: intFlag(v.patients, 'patients'), seed: intFlag(v.seed, 'seed') } }),
    run: async (v, pos, ctx) => {
      const out = pos[0] ?? usage('idc synth needs an output path, e.g. "idc synth data/raw" or "idc synth data/raw.zip --zip".');
      const zip = Boolean(v.zip) || /\.zip$/i.test(out);
      const t0 = Date.now();
      const s = await generateSyntheticArchive({
        out: resolve(zip && !/\.zip$/i.test(out) ? `${out}.zip` : out), patients: ctx.config.synth.patients, seed: ctx.config.synth.seed,
        zip, duplicateTree: Boolean(v['duplicate-tree']), onProgress: ctx.bar.sink, signal: ctx.signal,
      });
      ctx.bar.finish();
      const secs = (Date.now() - t0) / 1000;
      ctx.out(`Synthetic archive: ${s.out}\n  ${s.patients} patients, ${s.patches} patches (${s.positives} positive, ${pct(s.positives, s.patches)}), ${s.edgePatches} edge patches, ${s.files} files in ${formatDuration(secs)} (${Math.round(s.patches / secs)} patches/s)`);
    },
  },
  organize: {
    options: { out: { type: 'string', short: 'o' }, materialize: { type: 'string' }, force: { type: 'boolean' } },
    overrides: (v) => ({ paths: { output: v.out as string | undefined }, organize: { materialize: v.materialize as Materialize | undefined } }),
    run: async (v, pos, ctx) => {
      const archive = pos[0] ? resolve(pos[0]) : resolveConfigPath(ctx.loaded, ctx.config.paths.archive);
      const out = outputDir(ctx, v);
      const t0 = Date.now();
      const r = await organize({ archive, out, materialize: ctx.config.organize.materialize, force: Boolean(v.force), onProgress: ctx.bar.sink, signal: ctx.signal });
      ctx.bar.finish();
      const secs = (Date.now() - t0) / 1000;
      if (r.upToDate) ctx.out(`Manifest is up to date with ${archive}; nothing to do (use --force to rebuild).`);
      else {
        if (r.resumedPatients) ctx.out(`Resumed an interrupted run: ${r.resumedPatients} patients were already done.`);
        ctx.out(`Organized ${r.report.totals.files} files in ${formatDuration(secs)} (${Math.round(r.report.totals.files / secs)} files/s).`);
      }
      ctx.out(formatOrganizeSummary(r.report));
      if (r.materialized) ctx.out(`Materialized ${out}/{0,1}/ (${r.materialized.mode}): ${r.materialized.created} new, ${r.materialized.existing} already there.`);
      ctx.out(`Manifest: ${r.manifestFile}\nReport:   ${r.reportFile}`);
    },
  },
  split: {
    options: { out: { type: 'string', short: 'o' }, ratios: { type: 'string' }, seed: { type: 'string' }, stratify: { type: 'boolean' }, 'no-stratify': { type: 'boolean' } },
    overrides: (v) => ({
      paths: { output: v.out as string | undefined },
      split: { ratios: ratiosFlag(v.ratios), seed: intFlag(v.seed, 'seed'), stratify: v['no-stratify'] ? false : (v.stratify as boolean | undefined) },
    }),
    run: async (v, _pos, ctx) => {
      const out = outputDir(ctx, v);
      await runSplit(out, ctx);
    },
  },
  demo: {
    options: { dir: { type: 'string' }, patients: { type: 'string' }, epochs: { type: 'string' } },
    // The demo is sized to finish in minutes on a laptop: 16 patients, 3 epochs unless told otherwise.
    // Its epochs are short (~180 steps), where Keras' batch-norm momentum 0.99 still lags the network
    // (validation AUC 0.73 → 0.90 after epoch 1, test recall at 0.5 0.63 → 0.98); 0.9 (PyTorch's default) follows it.
    overrides: (v) => ({ synth: { patients: intFlag(v.patients, 'patients') ?? 16 }, train: { epochs: intFlag(v.epochs, 'epochs') ?? 3 }, model: { bnMomentum: 0.9 } }),
    run: async (v, _pos, ctx) => {
      const dir = resolve((v.dir as string | undefined) ?? '.idc-demo');
      const archive = join(dir, 'archive');
      const out = join(dir, 'output');
      const t0 = Date.now();
      ctx.out(`Demo in ${dir}: synthetic archive → organize → split → train → evaluate → report`);
      const s = await generateSyntheticArchive({ out: archive, patients: ctx.config.synth.patients, seed: ctx.config.synth.seed, onProgress: ctx.bar.sink, signal: ctx.signal });
      ctx.bar.finish();
      ctx.out(`\n[1/6] synth: ${s.patients} patients, ${s.patches} patches (${pct(s.positives, s.patches)} positive) in ${archive}`);
      const r = await organize({ archive, out, onProgress: ctx.bar.sink, signal: ctx.signal });
      ctx.bar.finish();
      ctx.out(`\n[2/6] organize: ${r.report.totals.patches} patches from ${r.report.totals.patients} patients${r.upToDate ? ' (up to date)' : ''}`);
      ctx.out(formatOrganizeSummary(r.report, 4));
      ctx.out('\n[3/6] split by patient:');
      await runSplit(out, ctx);
      ctx.out('\n[4/6] train:');
      const { listRuns } = await import('../core/train/train');
      const unfinished = listRuns(out).some((x) => x.status !== 'finished');
      await runTrain(out, ctx, { resume: unfinished });
      ctx.out('\n[5/6] evaluate:');
      await runEvaluate(out, ctx, {});
      ctx.out('\n[6/6] report:');
      await runReport(out, ctx, {});
      ctx.out(`\nDone in ${formatDuration((Date.now() - t0) / 1000)}. Outputs in ${out}`);
    },
  },
  train: {
    options: { out: { type: 'string', short: 'o' }, run: { type: 'string' }, resume: { type: 'boolean' }, epochs: { type: 'string' }, backend: { type: 'string' }, 'batch-size': { type: 'string' } },
    overrides: (v) => ({
      paths: { output: v.out as string | undefined },
      engine: { backend: v.backend as BackendName | undefined },
      train: { epochs: intFlag(v.epochs, 'epochs'), batchSize: intFlag(v['batch-size'], 'batch-size') },
    }),
    run: async (v, _pos, ctx) => {
      await runTrain(outputDir(ctx, v), ctx, { runId: runFlag(v.run), resume: Boolean(v.resume) });
    },
  },
  evaluate: {
    options: { out: { type: 'string', short: 'o' }, run: { type: 'string' }, model: { type: 'string' }, split: { type: 'string' }, backend: { type: 'string' }, archive: { type: 'string' }, 'stain-normalization': { type: 'string' } },
    overrides: (v) => ({ paths: { output: v.out as string | undefined }, engine: { backend: v.backend as BackendName | undefined }, evaluate: { split: v.split as 'test' | 'val' | 'train' | undefined }, data: { stainNormalization: v['stain-normalization'] as StainFlag } }),
    run: async (v, _pos, ctx) => {
      if (v.archive !== undefined && v.split !== undefined) usage('--split does not go with --archive: every patient of the external archive is scored.');
      await runEvaluate(outputDir(ctx, v), ctx, { ...runsFlag(v.run), modelPath: v.model as string | undefined, archive: v.archive as string | undefined });
    },
  },
  cv: {
    options: { out: { type: 'string', short: 'o' }, folds: { type: 'string' }, seed: { type: 'string' }, id: { type: 'string' }, epochs: { type: 'string' }, backend: { type: 'string' } },
    overrides: (v) => ({ paths: { output: v.out as string | undefined }, engine: { backend: v.backend as BackendName | undefined }, train: { epochs: intFlag(v.epochs, 'epochs') } }),
    run: async (v, _pos, ctx) => {
      await runCv(outputDir(ctx, v), ctx, { folds: intFlag(v.folds, 'folds') ?? 5, seed: intFlag(v.seed, 'seed') ?? ctx.config.split.seed, id: v.id as string | undefined });
    },
  },
  report: {
    options: { out: { type: 'string', short: 'o' }, run: { type: 'string' }, cv: { type: 'string' }, split: { type: 'string' }, file: { type: 'string' } },
    overrides: (v) => ({ paths: { output: v.out as string | undefined }, evaluate: { split: v.split as 'test' | 'val' | 'train' | undefined } }),
    run: async (v, _pos, ctx) => {
      if (v.cv !== undefined && v.run !== undefined) usage('Give --run or --cv, not both.');
      await runReport(outputDir(ctx, v), ctx, { runId: runFlag(v.run), cv: v.cv as string | undefined, file: v.file as string | undefined });
    },
  },
  predict: {
    options: { out: { type: 'string', short: 'o' }, run: { type: 'string' }, model: { type: 'string' }, backend: { type: 'string' }, 'stain-normalization': { type: 'string' } },
    overrides: (v) => ({ paths: { output: v.out as string | undefined }, engine: { backend: v.backend as BackendName | undefined }, data: { stainNormalization: v['stain-normalization'] as StainFlag } }),
    run: async (v, pos, ctx) => {
      const folder = pos[0] ?? usage('idc predict needs the folder of patches to score, e.g. "idc predict new-patient/".');
      const runs = runsFlag(v.run);
      const { predictFolder } = await import('../core/evaluate/predict');
      await startBackend(ctx);
      const r = await predictFolder({ folder, outputDir: outputDir(ctx, v), archive: resolveConfigPath(ctx.loaded, ctx.config.paths.archive), config: ctx.config, explicit: ctx.loaded.explicit, ...runs, modelPath: v.model as string | undefined, onProgress: ctx.bar.sink, orBaseline: true, signal: ctx.signal });
      ctx.bar.finish();
      ctx.out(`Model: ${r.model}${r.baselineFallback ? `: ${r.baselineFallback}` : ''}.`);
      ctx.out(`Inputs: ${r.stainNormalizationReason}${r.stainNormalization === 'macenko' ? ' (each patient normalized from its own patches in the folder)' : ''}.`);
      const { deployLines } = await import('../core/evaluate/summary');
      for (const line of deployLines(r)) ctx.out(line);
      ctx.out(`Scored ${r.predictions.length} patches (${r.skipped.length} skipped). At threshold ${+r.threshold.toPrecision(4)}:`);
      for (const p of r.patients) ctx.out(`  patient ${p.patient}: ${p.predictedPositive}/${p.n} patches IDC-positive (${((100 * p.predictedPositive) / p.n).toFixed(1)}%), mean score ${p.meanScore.toFixed(3)}`);
      // Unreadable patches are warnings, each named; other skipped files (not patches) in brief.
      for (const i of r.unreadable) ctx.out(`  warning: ${i.path}: ${i.reason}`);
      const others = r.skipped.filter((i) => !r.unreadable.includes(i));
      for (const i of others.slice(0, 10)) ctx.out(`  skipped ${i.path}: ${i.reason}`);
      if (others.length > 10) ctx.out(`  … and ${others.length - 10} more skipped files, listed in ${join(r.dir, 'summary.json')}`);
      if (r.note) ctx.out(r.note);
      ctx.out(`Outputs:     ${r.dir}`);
      ctx.out(`Predictions: ${r.predictionsFile}`);
      for (const f of r.slideMaps ?? []) ctx.out(`Slide map:   ${f}`);
    },
  },
  config: {
    options: { force: { type: 'boolean' }, preset: { type: 'string' } },
    run: async (v, pos, ctx) => {
      if (pos[0] !== 'init') usage('Usage: idc config init [--preset notebook]');
      const preset = v.preset as string | undefined;
      if (preset !== undefined && !(preset in PRESETS)) usage(`--preset must be one of ${Object.keys(PRESETS).join(', ')} (got "${preset}").`);
      const file = resolve(CONFIG_FILE_NAME);
      if (existsSync(file) && !v.force) throw new IdcError(`${file} already exists.`, 'Edit it, or pass --force to overwrite it with the defaults.', 'EXISTS');
      await writeFileAtomic(file, defaultConfigText(preset as PresetName | undefined));
      ctx.out(`Wrote ${file}${preset ? ` (the ${preset} preset)` : ''}`);
    },
  },
};

async function runTrain(out: string, ctx: Context, which: { runId?: string; resume?: boolean }): Promise<void> {
  const { train } = await import('../core/train/train');
  await startBackend(ctx, 'train');
  const cacheDir = cacheDirOf(ctx);
  const r = await train({
    outputDir: out, config: ctx.config, cacheDir, ...which, onProgress: ctx.bar.sink, signal: ctx.signal,
    onEvent: (e) => {
      if (e.type === 'start') {
        ctx.bar.finish();
        ctx.out(`${e.startEpoch > 0 ? `Resuming run ${e.runId} at epoch ${e.startEpoch + 1}` : `Run ${e.runId}`}: ${e.trainSize} training and ${e.valSize} validation patches, up to ${e.epochs} epochs on ${e.backend}.`);
        if (e.warning) ctx.out(`Warning: ${e.warning}`);
        for (const f of e.unreadable ?? []) ctx.out(`Warning: ${describeCacheFailure(f)}`);
      } else if (e.type === 'epoch') {
        ctx.bar.finish();
        const l = e.log;
        ctx.out(`epoch ${String(l.epoch + 1).padStart(3)}  loss ${l.loss.toFixed(4)}  acc ${l.accuracy.toFixed(3)}  auc ${l.auc.toFixed(3)} | val_loss ${l.val_loss.toFixed(4)}  val_acc ${l.val_accuracy.toFixed(3)}  val_recall ${l.val_recall.toFixed(3)}  val_auc ${l.val_auc.toFixed(3)} | lr ${l.lr.toExponential(1)}  ${formatDuration(l.seconds)}  ${Math.round(l.imagesPerSecond)} img/s${l.best ? '  *best' : ''}${l.lrReduced ? '  lr reduced' : ''}`);
      }
    },
  });
  ctx.bar.finish();
  ctx.out(`Run ${r.runId} ${r.stopReason === 'early-stopped' ? 'stopped early' : 'finished'} after ${r.history.length} epochs${r.bestEpoch !== undefined ? `; best epoch ${r.bestEpoch + 1} (weights restored)` : ''}.\nModel: ${join(r.runDir, 'model', 'model.json')}`);
}

async function runEvaluate(out: string, ctx: Context, which: { runId?: string; runIds?: string[]; modelPath?: string; archive?: string }): Promise<void> {
  const { evaluateModel } = await import('../core/evaluate/evaluate');
  await startBackend(ctx);
  const cacheDir = cacheDirOf(ctx);
  const { archive, ...model } = which;
  const ext = archive !== undefined
    ? await (await import('../core/evaluate/external')).evaluateExternal({ outputDir: out, config: ctx.config, explicit: ctx.loaded.explicit, cacheDir, ...model, archive, orBaseline: true, onProgress: ctx.bar.sink, signal: ctx.signal })
    : undefined;
  const r = ext ?? await evaluateModel({ outputDir: out, config: ctx.config, explicit: ctx.loaded.explicit, cacheDir, ...model, onProgress: ctx.bar.sink, signal: ctx.signal });
  ctx.bar.finish();
  if (ext) ctx.out(`External archive ${ext.info.archive}: ${ext.report.n} patches from ${ext.info.patients} patients, organized read-only into ${ext.dataDir}`);
  const m = r.report;
  const f = (x: number | null | undefined, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d));
  ctx.out(`Evaluated ${m.model} on ${m.split}: ${m.n} patches (${m.positives} positive) in ${formatDuration(m.seconds)} (${Math.round(m.imagesPerSecond)} img/s)`);
  const { evalSummaryLines, operatingPointLines } = await import('../core/evaluate/summary');
  for (const line of evalSummaryLines(m)) ctx.out(line);
  for (const w of m.warnings) ctx.out(`  warning: ${w}`);
  for (const line of operatingPointLines(m)) ctx.out(line);
  const worst = m.patients.slice(0, 5).map((p) => `${p.patient} (FN ${p.falseNegatives}, recall ${f(p.recall, 2)}, AUC ${f(p.auc, 2)})`).join(', ');
  ctx.out(`  worst patients at ${m.threshold}: ${worst}`);
  ctx.out(`Predictions: ${r.predictionsFile}\nMetrics:     ${r.metricsFile}`);
  ctx.out(`Grad-CAM:    ${r.gradCams} overlays in ${join(r.dir, 'gradcam')}\nSlide maps:  ${r.slideMaps.length} worst patients in ${join(r.dir, 'slidemaps')}`);
}

async function runCv(out: string, ctx: Context, which: { folds: number; seed: number; id?: string }): Promise<void> {
  const { crossValidate } = await import('../core/cv/cv');
  await startBackend(ctx, 'train');
  const f = (x: number | null | undefined, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d));
  const shown = new Set<string>();
  const r = await crossValidate({
    outputDir: out, config: ctx.config, cacheDir: cacheDirOf(ctx), ...which, onProgress: ctx.bar.sink, signal: ctx.signal,
    onEvent: (e) => {
      if (e.type === 'warning') { shown.add(e.message); ctx.out(`Warning: ${e.message}`); }
      else if (e.type === 'fold') {
        ctx.bar.finish();
        if (e.state === 'kept') ctx.out(`Fold ${e.fold + 1}/${e.folds} (${e.runId}): already trained and evaluated; kept.`);
        else if (e.state === 'evaluating') ctx.out(`Fold ${e.fold + 1}/${e.folds} (${e.runId}): trained; evaluating ${e.test} test patches (evaluate.tta changed).`);
        else if (e.state === 'training') ctx.out(`Fold ${e.fold + 1}/${e.folds} (${e.runId}): ${e.test} test patches.`);
        else ctx.out(`Fold ${e.fold + 1}/${e.folds}: test ROC AUC ${f(e.auc, 4)}`);
      } else if (e.event.type === 'start') {
        ctx.bar.finish();
        const s = e.event;
        ctx.out(`  ${s.startEpoch > 0 ? `resuming at epoch ${s.startEpoch + 1}` : 'training'}: ${s.trainSize} training and ${s.valSize} early-stopping patches, up to ${s.epochs} epochs on ${s.backend}.`);
        if (s.warning) ctx.out(`  Warning: ${s.warning}`);
      } else if (e.event.type === 'epoch') {
        ctx.bar.finish();
        const l = e.event.log;
        ctx.out(`  epoch ${String(l.epoch + 1).padStart(3)}  loss ${l.loss.toFixed(4)}  val_loss ${l.val_loss.toFixed(4)}  val_auc ${f(l.val_auc)}${l.best ? '  *best' : ''}`);
      }
    },
  });
  ctx.bar.finish();
  const cv = r.report.cv;
  ctx.out(`\nCross-validation ${r.id}: ${cv.folds} folds by patient, every patient scored by a model that never saw it.`);
  ctx.out('  fold  patients (train/val/test)  test patches  ROC AUC  avg precision');
  for (const row of cv.rows) ctx.out(`  ${String(row.fold).padStart(4)}  ${`${row.patients.train.length}/${row.patients.val.length}/${row.patients.test.length}`.padStart(25)}  ${String(row.n).padStart(12)}  ${f(row.auc, 4).padStart(7)}  ${f(row.averagePrecision, 4).padStart(13)}`);
  ctx.out(`  mean ± sd over the folds that hold both classes: ROC AUC ${f(cv.mean.auc, 4)} ± ${f(cv.sd.auc, 4)}, average precision ${f(cv.mean.averagePrecision, 4)} ± ${f(cv.sd.averagePrecision, 4)}`);
  const { evalSummaryLines } = await import('../core/evaluate/summary');
  ctx.out(`  pooled out-of-fold, ${r.report.n} patches (the figure to quote; the interval resamples patients):`);
  for (const line of evalSummaryLines(r.report)) ctx.out(line);
  for (const w of r.report.warnings) if (!shown.has(w)) ctx.out(`  warning: ${w}`);
  ctx.out(`Predictions: ${r.predictionsFile}\nMetrics:     ${r.metricsFile}`);
}

async function runReport(out: string, ctx: Context, which: { runId?: string; cv?: string; file?: string }): Promise<void> {
  const { exportReport } = await import('../core/report/assemble');
  const file = which.file ? resolve(which.file) : join(out, 'report.html');
  const cacheDir = cacheDirOf(ctx);
  const input = await exportReport(out, file, { runId: which.runId, cv: which.cv, split: ctx.config.evaluate.split, cacheDir });
  const parts = [input.organize && 'dataset', input.evaluation?.cv && `cross-validation ${input.evaluation.cv.id} (${input.evaluation.cv.folds} folds)`, input.history && 'training curves', input.evaluation && 'evaluation', input.thumbnails?.size && `${input.thumbnails.size} error thumbnails`, input.gradCams?.size && 'Grad-CAM', input.slideMaps?.length && 'slide maps'].filter(Boolean);
  ctx.out(`Report (${parts.join(', ')}): ${file}`);
}

async function runSplit(out: string, ctx: Context): Promise<void> {
  const manifestFile = join(out, MANIFEST_FILE);
  const { rows, hash } = await readManifestWithHash(manifestFile);
  const { ratios, seed, stratify } = ctx.config.split;
  const split = splitByPatient(rows, { ratios, seed, stratify, manifestHash: hash });
  const file = join(out, SPLIT_FILE);
  await writeSplit(file, split);
  ctx.out(formatSplitSummary(split));
  ctx.out(`Split: ${file}`);
}

/** Starts the configured backend and says which one runs and why faster ones were skipped; 'train' lets auto pick torch. */
async function startBackend(ctx: Context, purpose: 'train' | 'score' = 'score'): Promise<void> {
  const { initBackendFor } = await import('../core/engine/backends');
  const r = await initBackendFor(ctx.config, { purpose, onProgress: ctx.bar.sink, signal: ctx.signal });
  ctx.bar.finish();
  ctx.out(r.summary);
}

/** data.cacheDir resolved against the config's folder; undefined = the default <output>/cache. */
function cacheDirOf(ctx: Context): string | undefined {
  return ctx.config.data.cacheDir ? resolveConfigPath(ctx.loaded, ctx.config.data.cacheDir) : undefined;
}

function outputDir(ctx: Context, v: Record<string, unknown>): string {
  return v.out ? resolve(v.out as string) : resolveConfigPath(ctx.loaded, ctx.config.paths.output);
}

function pct(a: number, b: number): string {
  return b ? `${((100 * a) / b).toFixed(1)}%` : '0%';
}

function usage(message: string): never {
  throw new IdcError(message, 'Run "idc --help" for the list of commands and flags.', 'USAGE');
}

/** --run names a folder under runs/: a plain name only (never ".", ".." or a path). */
/** --run id, or id,id,… (or a cross-validation's id) for an ensemble: the mean probability of the runs. */
function runsFlag(v: unknown): { runId?: string; runIds?: string[] } {
  if (v === undefined) return {};
  const ids = String(v).split(',').map((s) => s.trim());
  for (const id of ids) {
    const problem = runIdProblem(id);
    if (problem) usage(`--run: the run id ${problem}.`);
  }
  return ids.length > 1 ? { runIds: ids } : { runId: ids[0] };
}

function runFlag(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const problem = runIdProblem(v);
  if (problem) usage(`--run: the run id ${problem}.`);
  return v as string;
}

function intFlag(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) usage(`--${name} must be an integer, got "${String(v)}".`);
  return n;
}

function ratiosFlag(v: unknown): [number, number, number] | undefined {
  if (v === undefined) return undefined;
  const parts = String(v).split(',').map(Number);
  if (parts.length !== 3 || parts.some((n) => !Number.isFinite(n))) usage(`--ratios takes three numbers, train,val,test, e.g. 0.7,0.15,0.15 (got "${String(v)}").`);
  return parts as [number, number, number];
}

/** The config field each flag sets: a bad value is then reported against the flag it came from. */
const FLAG_OF_FIELD: Record<string, string> = {
  'paths.output': 'out', 'organize.materialize': 'materialize', 'split.ratios': 'ratios', 'split.seed': 'seed', 'split.stratify': 'stratify',
  'synth.patients': 'patients', 'synth.seed': 'seed', 'engine.backend': 'backend', 'train.epochs': 'epochs', 'train.batchSize': 'batch-size',
  'evaluate.split': 'split', 'data.stainNormalization': 'stain-normalization',
};

/** Checks the flags' values alone against the config schema (its bounds and messages); a bad one is a usage error naming the flag. */
function checkFlagValues(overrides: DeepPartial<IdcConfig>, values: Record<string, unknown>): void {
  try {
    validateConfig(overrides);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const lines = e.problems.flatMap((p) => {
      const field = Object.keys(FLAG_OF_FIELD).find((f) => p.path === f || p.path.startsWith(`${f}[`));
      if (!field) return [];
      const flag = `--${FLAG_OF_FIELD[field]}`;
      const index = /^\[(\d+)\]$/.exec(p.path.slice(field.length));
      const what = index ? `${flag} value ${Number(index[1]) + 1}` : flag;
      const got = values[FLAG_OF_FIELD[field]];
      const message = /\(found .*\)$/.test(p.message) ? p.message.replace(/\(found (.*)\)$/, '(got $1)') : /\)$/.test(p.message) ? p.message : `${p.message} (got ${String(got)})`;
      return [message.startsWith('must') ? `${what} ${message}` : `${flag}: ${message}`];
    });
    // Problems no flag explains are left to loadConfig, which names the config file.
    if (lines.length) usage(lines.join('\n'));
  }
}

function dropUndefined<T>(o: T): T {
  if (o && typeof o === 'object' && !Array.isArray(o)) {
    const r: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(o)) {
      const d = dropUndefined(val);
      if (d !== undefined && !(d && typeof d === 'object' && !Array.isArray(d) && Object.keys(d).length === 0)) r[k] = d;
    }
    return r as T;
  }
  return o;
}

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s + '\n')): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') { out(USAGE); return name ? 0 : 2; }
  const cmd = commands[name];
  if (!cmd) { process.stderr.write(`Unknown command "${name}".\n\n${USAGE}`); return 2; }
  const controller = new AbortController();
  // Ctrl+C, and SIGTERM as `timeout`, `kill` and batch schedulers send it: stop at a safe point
  // (a resumable run, no half-written files); the shell's 128 + signal number as the exit code.
  let cancelCode = 130;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    const code = signal === 'SIGINT' ? 130 : 143;
    if (controller.signal.aborted) process.exit(code);
    cancelCode = code;
    process.stderr.write(signal === 'SIGINT'
      ? '\nStopping after the current item (Ctrl+C again to quit at once)…\n'
      : '\nTerminated: stopping after the current item (a second SIGTERM quits at once)…\n');
    controller.abort();
  };
  const onSigint = (): void => onSignal('SIGINT');
  const onSigterm = (): void => onSignal('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  const bar = new ProgressBar(process.stderr);
  try {
    const { values, positionals } = parseArgs({ args: rest, options: { ...COMMON, ...cmd.options }, allowPositionals: true, strict: true });
    if (values.help) { out(USAGE); return 0; }
    const overrides = dropUndefined(cmd.overrides?.(values) ?? {});
    checkFlagValues(overrides, values);
    const loaded = await loadConfig({ cwd: process.cwd(), configPath: values.config as string | undefined, overrides });
    const quietBar = new ProgressBar(process.stderr, Boolean(values.quiet));
    await cmd.run(values, positionals, { loaded, config: loaded.config, bar: quietBar, signal: controller.signal, out });
    return 0;
  } catch (e) {
    bar.finish();
    if (isIdcError(e)) {
      process.stderr.write(`\nError: ${e.message}\n${e.hint ? `${e.hint}\n` : ''}`);
      return e.code === 'CANCELLED' ? cancelCode : e.code === 'USAGE' ? 2 : 1;
    }
    if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`Error: ${(e as Error).message}\nRun "idc --help" for the list of commands and flags.\n`);
      return 2;
    }
    process.stderr.write(`\nInternal error (please report it): ${(e as Error).stack ?? String(e)}\n`);
    return 70;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
}

if (require.main === module) {
  // The reader went away (`idc … | head -1`): stop quietly with SIGPIPE's conventional 128 + 13.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(141); throw e; });
  }
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
