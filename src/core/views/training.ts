/**
 * The training panel's view model, read from a run folder (`<output>/runs/<id>/`): run.json,
 * history.jsonl, config.json, model/model.json and, for a run still training, the newest
 * checkpoint's weight list. Pure file reading: no TF.js (the model summary is computed from the
 * saved topology JSON, as Keras' model.summary() prints it), no `vscode`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RunInfo } from '../train/train';
import { isRunId } from '../run-id';
import type { EpochLog } from '../train/checkpoint';
import type { CvFoldView, CvListItem, CvTrainingView, ModelSummary, ModelSummaryRow, RunSummary, TrainingView } from './types';
import { cvDir, cvOfRun, foldRunId, listCrossValidations, readCvDefinition } from '../cv/read';
import type { EvalReport } from '../evaluate/types';
import type { SplitFile } from '../split';

// ------------------------------------------------------------------------------------- runs and history

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

// train.ts's listRuns/runsDir, repeated here: importing train.ts would pull TF.js into the extension bundle.
export function runsDir(outputDir: string): string {
  return join(outputDir, 'runs');
}

/** run.json of every run, oldest first (as train.ts listRuns). */
export function listRuns(outputDir: string): RunInfo[] {
  const dir = runsDir(outputDir);
  if (!existsSync(dir)) return [];
  const out: RunInfo[] = [];
  for (const id of readdirSync(dir)) {
    try {
      const r = JSON.parse(readFileSync(join(dir, id, 'run.json'), 'utf8')) as RunInfo;
      if (r && typeof r.id === 'string') out.push(r);
    } catch { /* not a run folder */ }
  }
  return out.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
}

/**
 * history.jsonl, one epoch a line. A line being written while we read (no newline yet) or a
 * damaged one is skipped and reported; a later line for the same epoch replaces an earlier one.
 */
export function readHistory(runDir: string, problems: string[] = []): EpochLog[] {
  const file = join(runDir, 'history.jsonl');
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const byEpoch = new Map<number, EpochLog>();
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    // The last piece has no newline yet: an epoch being appended right now, unless it parses whole.
    const partial = i === lines.length - 1;
    try {
      const e = JSON.parse(line) as EpochLog;
      if (!isNum(e.epoch) || e.epoch < 0) throw new Error('no epoch number');
      byEpoch.set(e.epoch, e);
    } catch (err) {
      if (!partial) problems.push(`${file}: line ${i + 1} is not an epoch record (${(err as Error).message}); skipped.`);
    }
  });
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}

/** The epoch whose weights are (or will be) restored: run.json's bestEpoch, else the last epoch flagged best. */
export function bestEpochOf(run: Pick<RunInfo, 'bestEpoch'>, history: readonly EpochLog[]): number | null {
  if (isNum(run.bestEpoch)) return run.bestEpoch;
  for (let i = history.length - 1; i >= 0; i--) if (history[i].best) return history[i].epoch;
  return null;
}

function summarize(run: RunInfo, history: readonly EpochLog[]): RunSummary {
  const aucs = history.map((h) => h.val_auc).filter(isNum);
  const losses = history.map((h) => h.val_loss).filter(isNum);
  return {
    ...run,
    epochsDone: history.length,
    bestValAuc: aucs.length ? Math.max(...aucs) : undefined,
    bestValLoss: losses.length ? Math.min(...losses) : undefined,
  };
}

/** Every run of the output folder, oldest first, with what its history says. */
export function listRunSummaries(outputDir: string): RunSummary[] {
  return listRuns(outputDir).map((r) => summarize(r, readHistory(join(runsDir(outputDir), r.id))));
}

function runInfo(outputDir: string, runId: string): RunInfo {
  if (!isRunId(runId)) throw new Error(`"${runId}" is not a run id.`);
  const file = join(runsDir(outputDir), runId, 'run.json');
  if (!existsSync(file)) throw new Error(`No run ${runId} in ${runsDir(outputDir)}.`);
  return JSON.parse(readFileSync(file, 'utf8')) as RunInfo;
}

/** Another run's history, to overlay. */
export function runHistory(outputDir: string, runId: string): { run: RunSummary; history: EpochLog[] } {
  const run = runInfo(outputDir, runId);
  const history = readHistory(join(runsDir(outputDir), runId));
  return { run: summarize(run, history), history };
}

/**
 * The unfinished run a training job is most likely writing: the one whose run.json was written
 * last (a run rewrites it when it starts or resumes). Used before the job's first progress says.
 */
export function newestOpenRun(outputDir: string): string | undefined {
  let best: { id: string; t: number } | undefined;
  for (const r of listRuns(outputDir)) {
    if (r.status === 'finished') continue;
    try {
      const t = statSync(join(runsDir(outputDir), r.id, 'run.json')).mtimeMs;
      if (!best || t > best.t) best = { id: r.id, t };
    } catch { /* vanished */ }
  }
  return best?.id;
}

// ------------------------------------------------------------------------------------- the view

export interface TrainingViewOptions {
  /** Run to show; default: the newest. */
  runId?: string;
  /** Show this cross-validation (when runId is not given): its running fold, else the first unfinished one, else fold 1. */
  cv?: string;
  /** Whether the language server is training this run now (the host knows; files do not). */
  running?: (runId: string) => boolean;
}

/** The training panel's data for one run; null when the output folder has no run yet. */
export function buildTrainingView(outputDir: string, opts: TrainingViewOptions = {}): TrainingView | null {
  const runs = listRuns(outputDir);
  if (!runs.length && !opts.runId) return null;
  const group = !opts.runId && opts.cv ? buildCvTrainingView(outputDir, opts.cv, opts.running) : undefined;
  if (!opts.runId && opts.cv && !group?.rows.some((r) => r.status !== 'pending')) throw new Error(`Cross-validation ${opts.cv} has no fold run yet.`);
  const pick = group && (group.rows.find((r) => r.status === 'running') ?? group.rows.find((r) => r.status === 'interrupted') ?? group.rows.find((r) => r.status !== 'pending'));
  const runId = opts.runId ?? pick?.runId ?? runs[runs.length - 1].id;
  const run = runInfo(outputDir, runId);
  const runDir = join(runsDir(outputDir), runId);
  const problems: string[] = [];
  const history = readHistory(runDir, problems);

  let config: unknown = null;
  const configFile = join(runDir, 'config.json');
  try {
    config = JSON.parse(readFileSync(configFile, 'utf8'));
  } catch (e) {
    problems.push(existsSync(configFile) ? `${configFile} cannot be read: ${(e as Error).message}` : `${configFile} is missing.`);
  }
  const train = (config as { train?: { epochs?: unknown; earlyStopping?: { enabled?: boolean; monitor?: string } } } | null)?.train;
  const finished = run.status === 'finished';
  // A finished run's run.json counts the epochs it ran; while training it holds the planned count.
  const planned = isNum(train?.epochs) ? train.epochs : run.epochs;
  const epochs = finished ? history.length : Math.max(planned, history.length);

  const secs = history.map((h) => h.seconds).filter(isNum);
  // The first epoch of a session pays for warm-up; past it, the later ones tell the pace better.
  const pace = secs.length > 2 ? secs.slice(1) : secs;
  const epochSeconds = pace.length ? pace.reduce((a, b) => a + b, 0) / pace.length : null;
  const running = opts.running?.(runId) ?? false;
  const etaSeconds = !finished && epochSeconds !== null ? Math.max(0, epochs - history.length) * epochSeconds : null;

  let model: ModelSummary | null = null;
  let modelNote: string | undefined;
  const modelFile = join(runDir, 'model', 'model.json');
  try {
    if (existsSync(modelFile)) model = summarizeModelJson(JSON.parse(readFileSync(modelFile, 'utf8')));
    else {
      const m = (config as { model?: unknown } | null)?.model;
      if (m) {
        model = summarizeModelConfig(m as ModelConfig);
        const check = checkpointParams(runDir);
        if (check !== undefined) model.check = { against: 'checkpoint', params: check, ok: check === model.totalParams };
      } else modelNote = 'Available when training finishes (the run has no model settings to rebuild it from).';
    }
  } catch (e) {
    model = null;
    modelNote = `The model summary cannot be computed: ${(e as Error).message}`;
    problems.push(`${existsSync(modelFile) ? modelFile : configFile}: ${(e as Error).message}`);
  }

  return {
    run: summarize(run, history),
    runDir,
    history,
    epochs,
    lrReducedAt: history.filter((h) => h.lrReduced).map((h) => h.epoch),
    bestEpoch: bestEpochOf(run, history),
    monitor: train?.earlyStopping?.enabled ? train.earlyStopping.monitor : undefined,
    epochSeconds,
    etaSeconds,
    backend: run.backend,
    model,
    modelNote,
    config,
    running,
    problems,
    warnings: Array.isArray(run.warnings) ? run.warnings.filter((w): w is string => typeof w === 'string') : [],
    ...cvPart(outputDir, runId, group, opts.running),
  };
}

function cvPart(outputDir: string, runId: string, group: CvTrainingView | undefined, running: TrainingViewOptions['running']): { cv?: CvTrainingView } {
  if (group?.rows.some((r) => r.runId === runId)) return { cv: group };
  const of = cvOfRun(outputDir, runId);
  return of ? { cv: buildCvTrainingView(outputDir, of.def.id, running)! } : {};
}

// ------------------------------------------------------------------------------------- cross-validation

const readJson = <T>(file: string): T | undefined => {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
};

/** Mean and sample sd of the folds that hold both classes (a one-class fold's AUC is undefined), as cv.ts computes them. */
function foldStat(rows: readonly CvFoldView[], key: 'auc' | 'averagePrecision'): { mean: number | null; sd: number | null; n: number } {
  const xs = rows.filter((r) => r.testPatches !== null && r.positives !== null && r.positives > 0 && r.positives < r.testPatches).map((r) => r[key]).filter(isNum);
  if (!xs.length) return { mean: null, sd: null, n: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, sd: xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) : null, n: xs.length };
}

/**
 * A cross-validation's folds as far as they have got (cv.json, each fold run's run.json, history,
 * split.json and test evaluation), with mean ± sd over the scored folds and the pooled
 * out-of-fold evaluation once written. Undefined when evals/<id>/cv.json is missing.
 */
export function buildCvTrainingView(outputDir: string, id: string, running?: (runId: string) => boolean): CvTrainingView | undefined {
  const def = readCvDefinition(outputDir, id);
  if (!def) return undefined;
  const k = def.folds.length;
  const rows: CvFoldView[] = def.folds.map((test, i) => {
    const runId = foldRunId(id, i);
    const runDir = join(runsDir(outputDir), runId);
    const run = readJson<RunInfo>(join(runDir, 'run.json'));
    const history = run ? readHistory(runDir) : [];
    const val = def.folds[(i + 1) % k];
    const train = def.folds.reduce((n, f, j) => (j === i || j === (i + 1) % k ? n : n + f.length), 0);
    const split = readJson<SplitFile>(join(runDir, 'split.json'));
    const ev = readJson<EvalReport>(join(runDir, 'eval', 'test', 'metrics.json'));
    const status: CvFoldView['status'] = !run ? 'pending' : running?.(runId) ? 'running' : run.status === 'finished' ? 'finished' : 'interrupted';
    const finished = run?.status === 'finished';
    return {
      fold: i + 1, runId, status, patients: { train, val: val.length, test: test.length },
      testPatches: ev ? ev.n : split?.summary?.test?.patches ?? null,
      positives: ev ? ev.positives : split?.summary?.test?.positives ?? null,
      auc: ev ? ev.auc : null, averagePrecision: ev ? ev.averagePrecision : null,
      bestEpoch: run ? bestEpochOf(run, history) : null,
      epochsDone: history.length,
      epochs: !run ? 0 : finished ? history.length : Math.max(run.epochs, history.length),
      history,
    };
  });
  // Unscored folds have no figures and drop out here.
  const auc = foldStat(rows, 'auc');
  const ap = foldStat(rows, 'averagePrecision');
  const pooledReport = readJson<EvalReport>(join(cvDir(outputDir, id), 'test', 'metrics.json'));
  const pooled = pooledReport?.cv?.id === id ? {
    evaluation: `${id}/test`, n: pooledReport.n, positives: pooledReport.positives, auc: pooledReport.auc, averagePrecision: pooledReport.averagePrecision,
    ...(pooledReport.intervals ? { aucInterval: pooledReport.intervals.auc } : {}),
  } : null;
  return {
    id, folds: k, seed: def.seed, createdAt: def.createdAt, rows,
    mean: { auc: auc.mean, averagePrecision: ap.mean }, sd: { auc: auc.sd, averagePrecision: ap.sd }, scored: auc.n,
    pooled, warnings: def.warnings,
  };
}

/** The cross-validations of the output folder, oldest first, for the panel's selector. */
export function listCvSummaries(outputDir: string): CvListItem[] {
  return listCrossValidations(outputDir).map((def) => {
    const runIds = def.folds.map((_, i) => foldRunId(def.id, i)).filter((r) => existsSync(join(runsDir(outputDir), r, 'run.json')));
    return { id: def.id, folds: def.folds.length, runIds, finished: existsSync(join(cvDir(outputDir, def.id), 'test', 'metrics.json')) };
  });
}

// ------------------------------------------------------------------------------------- model summary

type Shape = (number | null)[];
interface LayerJson { name?: string; class_name: string; config: Record<string, unknown>; inbound_nodes?: unknown[] }
interface ManifestWeight { name: string; shape: number[]; dtype?: string }

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const fmtShape = (s: Shape | Shape[] | undefined): string => {
  if (!s) return '?';
  if (Array.isArray(s[0])) return `[${(s as Shape[]).map((x) => fmtShape(x)).join(', ')}]`;
  return `(${(s as Shape).map((d) => (d === null ? 'None' : String(d))).join(', ')}${s.length === 1 ? ',' : ''})`;
};
const pair = (v: unknown, fallback: number): [number, number] => {
  if (Array.isArray(v)) return [Number(v[0] ?? fallback), Number(v[1] ?? v[0] ?? fallback)];
  if (isNum(v)) return [v, v];
  return [fallback, fallback];
};
const NON_TRAINABLE = /(^|\/)(moving_mean|moving_variance)$/;

/** Output length of a convolution or pooling window along one axis (Keras conv_output_length). */
function outLen(n: number | null, k: number, stride: number, padding: string, dilation = 1): number | null {
  if (n === null) return null;
  const eff = k + (k - 1) * (dilation - 1);
  const len = padding === 'same' ? n : n - eff + 1;
  return Math.floor((len + stride - 1) / stride);
}

/** Output shape of one layer from its config and its input shapes (channels-last, as our models are). */
function layerOutput(cls: string, cfg: Record<string, unknown>, inputs: Shape[]): Shape | undefined {
  const x = inputs[0];
  if (!x) return undefined;
  const channelsFirst = cfg['data_format'] === 'channels_first';
  switch (cls) {
    case 'Conv2D': case 'SeparableConv2D': case 'DepthwiseConv2D': {
      if (x.length !== 4 || channelsFirst) return undefined;
      const [kh, kw] = pair(cfg['kernel_size'], 1);
      const [sh, sw] = pair(cfg['strides'], 1);
      const [dh, dw] = pair(cfg['dilation_rate'], 1);
      const pad = String(cfg['padding'] ?? 'valid');
      const ch = cls === 'DepthwiseConv2D' ? (x[3] === null ? null : x[3] * Number(cfg['depth_multiplier'] ?? 1)) : Number(cfg['filters']);
      return [x[0], outLen(x[1], kh, sh, pad, dh), outLen(x[2], kw, sw, pad, dw), ch];
    }
    case 'MaxPooling2D': case 'AveragePooling2D': {
      if (x.length !== 4 || channelsFirst) return undefined;
      const [ph, pw] = pair(cfg['pool_size'], 2);
      const [sh, sw] = cfg['strides'] === null || cfg['strides'] === undefined ? [ph, pw] : pair(cfg['strides'], ph);
      const pad = String(cfg['padding'] ?? 'valid');
      return [x[0], outLen(x[1], ph, sh, pad), outLen(x[2], pw, sw, pad), x[3]];
    }
    case 'GlobalAveragePooling2D': case 'GlobalMaxPooling2D':
      if (x.length !== 4 || channelsFirst) return undefined;
      return cfg['keepdims'] ? [x[0], 1, 1, x[3]] : [x[0], x[3]];
    case 'Flatten':
      return [x[0], x.slice(1).some((d) => d === null) ? null : prod(x.slice(1) as number[])];
    case 'Dense':
      return [...x.slice(0, -1), Number(cfg['units'])];
    case 'Reshape':
      return Array.isArray(cfg['target_shape']) ? [x[0], ...(cfg['target_shape'] as number[])] : undefined;
    case 'Add': case 'Subtract': case 'Multiply': case 'Average': case 'Maximum': case 'Minimum':
      return x;
    case 'Concatenate': {
      const axis = Number(cfg['axis'] ?? -1);
      const ax = axis < 0 ? x.length + axis : axis;
      const sum = inputs.reduce<number | null>((s, sh) => (s === null || sh[ax] === null ? null : s + (sh[ax] as number)), 0);
      return x.map((d, i) => (i === ax ? sum : d));
    }
    // Element-wise layers keep their input's shape.
    case 'BatchNormalization': case 'LayerNormalization': case 'ReLU': case 'LeakyReLU': case 'PReLU': case 'ELU': case 'Softmax':
    case 'Activation': case 'Dropout': case 'SpatialDropout2D': case 'GaussianNoise': case 'GaussianDropout': case 'AlphaDropout':
    case 'Rescaling': case 'Normalization':
      return x;
    default:
      return undefined;
  }
}

/** Parameters of one layer from its config and input shape: [trainable, non-trainable]; undefined when unknown. */
function layerParams(cls: string, cfg: Record<string, unknown>, input: Shape | undefined): [number, number] | undefined {
  const cin = input?.[input.length - 1];
  const trainable = cfg['trainable'] !== false;
  let p: [number, number] | undefined;
  switch (cls) {
    case 'Conv2D': {
      if (!isNum(cin)) return undefined;
      const [kh, kw] = pair(cfg['kernel_size'], 1);
      const f = Number(cfg['filters']);
      p = [kh * kw * cin * f + (cfg['use_bias'] === false ? 0 : f), 0];
      break;
    }
    case 'Dense': {
      if (!isNum(cin)) return undefined;
      const u = Number(cfg['units']);
      p = [cin * u + (cfg['use_bias'] === false ? 0 : u), 0];
      break;
    }
    case 'BatchNormalization': {
      if (!isNum(cin)) return undefined;
      p = [cin * ((cfg['scale'] === false ? 0 : 1) + (cfg['center'] === false ? 0 : 1)), 2 * cin];
      break;
    }
    case 'InputLayer': case 'ReLU': case 'LeakyReLU': case 'ELU': case 'Softmax': case 'Activation': case 'Dropout': case 'SpatialDropout2D':
    case 'GaussianNoise': case 'GaussianDropout': case 'AlphaDropout': case 'MaxPooling2D': case 'AveragePooling2D':
    case 'GlobalAveragePooling2D': case 'GlobalMaxPooling2D': case 'Flatten': case 'Reshape': case 'Rescaling':
    case 'Add': case 'Subtract': case 'Multiply': case 'Average': case 'Maximum': case 'Minimum': case 'Concatenate':
      p = [0, 0];
      break;
    default:
      return undefined;
  }
  return trainable ? p : [0, p[0] + p[1]];
}

/** Names of a layer's inputs from Keras 2 / TF.js `inbound_nodes` ([[["name", 0, 0, {}], …]]) or Keras 3's form. */
function inboundNames(layer: LayerJson): string[] {
  const out: string[] = [];
  for (const node of layer.inbound_nodes ?? []) {
    if (Array.isArray(node)) {
      for (const t of node) if (Array.isArray(t) && typeof t[0] === 'string') out.push(t[0]);
    } else if (node && typeof node === 'object') {
      // Keras 3: { args: [{ class_name: '__keras_tensor__', config: { keras_history: [name, 0, 0] } }] }
      const visit = (v: unknown): void => {
        if (Array.isArray(v)) v.forEach(visit);
        else if (v && typeof v === 'object') {
          const h = (v as { config?: { keras_history?: unknown[] } }).config?.keras_history;
          if (Array.isArray(h) && typeof h[0] === 'string') out.push(h[0]);
          else Object.values(v).forEach(visit);
        }
      };
      visit((node as { args?: unknown }).args);
    }
  }
  return out;
}

function inputShapeOf(layer: LayerJson): Shape | undefined {
  const c = layer.config;
  const s = (c['batch_input_shape'] ?? c['batch_shape']) as Shape | undefined;
  if (Array.isArray(s)) return s;
  const i = c['input_shape'] as Shape | undefined;
  return Array.isArray(i) ? [null, ...i] : undefined;
}

/**
 * Keras' model.summary() from a TF.js layers model.json: each layer's output shape (from the
 * layer configs, walking the graph) and parameter count. Counts come from the weightsManifest
 * (weights named `<layer>/<weight>`) where it lists the layer, else from the layer config; the
 * total is checked against the manifest's sum.
 */
export function summarizeModelJson(json: unknown): ModelSummary {
  const j = json as { modelTopology?: unknown; weightsManifest?: { weights?: ManifestWeight[] }[] };
  let topo = j?.modelTopology as { class_name?: string; config?: unknown; model_config?: unknown } | undefined;
  if (!topo || typeof topo !== 'object') throw new Error('model.json has no modelTopology.');
  // Keras H5-style wrappers put the model under model_config.
  if (topo.model_config && typeof topo.model_config === 'object') topo = topo.model_config as typeof topo;
  const cfg = topo.config as { name?: string; layers?: LayerJson[] } | LayerJson[] | undefined;
  const layers: LayerJson[] = Array.isArray(cfg) ? cfg : Array.isArray(cfg?.layers) ? cfg.layers : [];
  if (!layers.length) throw new Error('model.json\'s topology lists no layers.');
  const name = (!Array.isArray(cfg) && cfg?.name) || 'model';
  const sequential = topo.class_name === 'Sequential' || layers.every((l) => !l.inbound_nodes);

  // Weights by layer, from the manifest.
  const manifest: ManifestWeight[] = (j.weightsManifest ?? []).flatMap((g) => g.weights ?? []);
  const byLayer = new Map<string, { trainable: number; non: number }>();
  for (const w of manifest) {
    const slash = w.name.lastIndexOf('/');
    const layer = slash > 0 ? w.name.slice(0, slash) : w.name;
    const e = byLayer.get(layer) ?? { trainable: 0, non: 0 };
    const n = prod(w.shape ?? []);
    if (NON_TRAINABLE.test(w.name)) e.non += n; else e.trainable += n;
    byLayer.set(layer, e);
  }

  const shapes = new Map<string, Shape>();
  const rows: ModelSummaryRow[] = [];
  let trainable = 0, non = 0, prev: Shape | undefined;
  if (sequential && !layers.some((l) => l.class_name === 'InputLayer')) {
    // A Sequential model's input shape sits on its first layer; Keras prints no row for it.
    prev = inputShapeOf(layers[0]);
  }
  layers.forEach((layer, i) => {
    const lname = layer.name ?? String(layer.config['name'] ?? `layer_${i}`);
    const cls = layer.class_name;
    let inputs: Shape[];
    if (cls === 'InputLayer') inputs = [];
    else if (sequential) inputs = prev ? [prev] : [];
    else inputs = inboundNames(layer).map((n) => shapes.get(n)).filter((s): s is Shape => !!s);
    const out = cls === 'InputLayer' ? inputShapeOf(layer) : layerOutput(cls, layer.config, inputs);
    if (out) shapes.set(lname, out);
    prev = out;
    const fromConfig = layerParams(cls, layer.config, inputs[0]);
    const stored = byLayer.get(lname);
    let t: number, n: number;
    if (stored) {
      // Frozen layers store their weights under the same names; the config says they do not train.
      [t, n] = layer.config['trainable'] === false ? [0, stored.trainable + stored.non] : [stored.trainable, stored.non];
    } else [t, n] = fromConfig ?? [0, 0];
    trainable += t;
    non += n;
    rows.push({ name: lname, type: cls, outputShape: fmtShape(out), params: t + n, ...(n ? { nonTrainableParams: n } : {}) });
  });
  const total = trainable + non;
  const summary: ModelSummary = {
    name, source: 'model.json', rows, totalParams: total, trainableParams: trainable, nonTrainableParams: non, totalBytes: 4 * total,
  };
  if (manifest.length) {
    const stored = manifest.reduce((s, w) => s + prod(w.shape ?? []), 0);
    summary.check = { against: 'weightsManifest', params: stored, ok: stored === total };
  }
  return summary;
}

/** The run config's model.* block (src/core/config.ts). */
export interface ModelConfig { filters?: number[]; dense?: number[]; dropout?: number; l2?: number }

/**
 * The summary of the model src/core/engine/model.ts buildModel() makes from these settings,
 * without TF.js: for a run still training, before model.json exists. Layer names are generic
 * (TF.js names them when the model is built).
 */
export function summarizeModelConfig(m: ModelConfig): ModelSummary {
  const filters = m.filters ?? [32, 64, 128];
  const dense = m.dense ?? [64, 64, 64];
  const dropout = m.dropout ?? 0.5;
  const counts = new Map<string, number>();
  const nameOf = (base: string) => {
    const k = (counts.get(base) ?? 0) + 1;
    counts.set(base, k);
    return k === 1 ? base : `${base}_${k - 1}`;
  };
  const layers: LayerJson[] = [{ name: 'patch', class_name: 'InputLayer', config: { batch_input_shape: [null, 50, 50, 3] } }];
  const add = (class_name: string, base: string, config: Record<string, unknown> = {}) => layers.push({ name: nameOf(base), class_name, config });
  filters.forEach((f, i) => {
    add('Conv2D', 'conv2d', { filters: f, kernel_size: [3, 3], strides: [1, 1], padding: i === 0 ? 'same' : 'valid', use_bias: false });
    add('BatchNormalization', 'batch_normalization', {});
    add('ReLU', 're_lu');
    add('MaxPooling2D', 'max_pooling2d', { pool_size: [2, 2], strides: [2, 2], padding: 'valid' });
  });
  add('GlobalAveragePooling2D', 'global_average_pooling2d');
  for (const units of dense) {
    add('Dense', 'dense', { units, use_bias: true });
    add('BatchNormalization', 'batch_normalization', {});
    add('ReLU', 're_lu');
    if (dropout > 0) add('Dropout', 'dropout', { rate: dropout });
  }
  add('Dense', 'dense', { units: 1, use_bias: true, activation: 'sigmoid' });
  // Sequential here: each layer feeds the next.
  const s = summarizeModelJson({ modelTopology: { class_name: 'Model', config: { name: 'idc_cnn', layers: layers.map((l) => ({ ...l, inbound_nodes: undefined })) } } });
  return { ...s, source: 'config', note: 'Rebuilt from the run\'s model settings while it trains; TF.js names the layers when it saves the model.' };
}

/** Sum of the weight sizes in the newest checkpoint (state.json's weight list); undefined when there is none. */
function checkpointParams(runDir: string): number | undefined {
  try {
    const { dir } = JSON.parse(readFileSync(join(runDir, 'checkpoints', 'latest.json'), 'utf8')) as { dir: string };
    if (!/^[\w.-]+$/.test(dir)) return undefined;
    const state = JSON.parse(readFileSync(join(runDir, 'checkpoints', dir, 'state.json'), 'utf8')) as { weights?: { shape: number[] }[] };
    return Array.isArray(state.weights) ? state.weights.reduce((s, w) => s + prod(w.shape), 0) : undefined;
  } catch {
    return undefined;
  }
}
