/**
 * The IDC side bar's view model: the Dataset, Runs and Evaluations trees as plain nodes (label,
 * description, tooltip, contextValue, codicon), computed from idc.config.json and the output
 * folder. Pure file reading, no `vscode` and no TF.js: src/extension/sidebar.ts turns nodes into
 * TreeItems. A file that cannot be read becomes a node saying so and why, never an exception or an
 * empty tree.
 *
 * contextValue is a space-separated word list ("idc-run readable status-finished model"), so package.json
 * menus test one word each with `viewItem =~ /\bword\b/`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, relative, sep } from 'node:path';
import { CONFIG_FILE_NAME, configProblemLines, defaultConfig, loadConfig, parseJsonc, resolveConfigPath, type LoadedConfig } from '../config';
import { fileVersionKey } from '../fsutil';
import type { WorkspaceInfo } from '../../protocol/protocol';
import { LOCK_FILE, assertNotLocked, lockOwner } from '../run-lock';
import { isRunId } from '../run-id';
import { SPLIT_NAMES, type SplitFile } from '../split';
import { foldRunId, listCrossValidations, type CvDefinition } from '../cv/read';
import { intervalText } from '../evaluate/summary';
import { listEvaluationDirs, type EvaluationDir } from '../evaluate/list';
import type { EvalReport } from '../evaluate/types';
import type { RunInfo } from '../train/train';
import type { EpochLog } from '../train/checkpoint';
import { readHistory, runsDir } from './training';
import { evaluationId } from './ids';

export interface SidebarNode {
  /** Stable across refreshes: VS Code keeps expansion and selection by it, and reveals by it. */
  id: string;
  label: string;
  description?: string;
  tooltip: string;
  contextValue: string;
  /** Codicon id: 'pass', 'sync~spin', 'warning' … */
  icon: string;
  /** Theme colour id for the icon. */
  color?: string;
  children?: SidebarNode[];
  /** Shown expanded the first time. */
  expanded?: boolean;
  /** Command a click runs, with this node as its argument. */
  open?: string;
  /** What the node's actions act on. */
  runId?: string;
  cvId?: string;
  evaluation?: string;
  path?: string;
}

const GREEN = 'charts.green';
const RED = 'charts.red';
const YELLOW = 'charts.yellow';
const WARN = 'list.warningForeground';
const ERROR = 'list.errorForeground';

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const count = (n: number): string => n.toLocaleString('en-US');
const plural = (n: number, word: string, words = `${word}s`): string => `${count(n)} ${n === 1 ? word : words}`;
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const f3 = (x: number | null | undefined): string => (isNum(x) ? x.toFixed(3) : '—');
const why = (e: unknown): string => String((e as Error)?.message ?? e).split('\n')[0];

/** "Dec 7, 22:13" in local time: short enough for a description. */
export function shortDate(iso: unknown): string {
  const t = typeof iso === 'string' ? Date.parse(iso) : NaN;
  if (!Number.isFinite(t)) return '';
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getMonth()]} ${d.getDate()}, ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** "2026-12-07 22:13:05" in local time, for tooltips. */
function longDate(iso: unknown): string {
  const t = typeof iso === 'string' ? Date.parse(iso) : NaN;
  if (!Number.isFinite(t)) return String(iso ?? '—');
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A path as the user wrote it in the config: relative to the folder when inside it. */
function shown(folder: string, p: string): string {
  const r = relative(folder, p);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r.split(sep).join('/') : p;
}

function readJsonFile<T>(file: string): { value: T } | { error: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { error: code === 'ENOENT' ? `${basename(file)} is missing` : code === 'EISDIR' ? `${basename(file)} is a folder` : `${basename(file)} cannot be read (${why(e)})` };
  }
  try {
    return { value: JSON.parse(text) as T };
  } catch (e) {
    return { error: `${basename(file)} is not valid JSON (${why(e)})` };
  }
}

// ------------------------------------------------------------------------------------- sources

/** What the trees read, from the folder's idc.config.json (defaults where it has none): the config part of workspaceInfo. */
export type SidebarSources = Pick<WorkspaceInfo, 'folder' | 'configFile' | 'configProblems' | 'archive' | 'archiveExists' | 'outputDir'>;

/**
 * Resolves the archive and output folders as the language server's workspaceInfo does; a config
 * with problems still names its folders when its `paths` are readable, so the trees keep showing
 * the right output folder while a typo elsewhere is being fixed.
 */
export async function sidebarSources(folder: string): Promise<SidebarSources> {
  let loaded: LoadedConfig;
  let configProblems: string[] | undefined;
  try {
    loaded = await loadConfig({ cwd: folder });
  } catch (e) {
    configProblems = configProblemLines(e, why);
    const file = join(folder, CONFIG_FILE_NAME);
    const config = defaultConfig();
    try {
      const paths = (parseJsonc(readFileSync(file, 'utf8'), file) as { paths?: Record<string, unknown> } | null)?.paths;
      if (typeof paths?.output === 'string' && paths.output) config.paths.output = paths.output;
      if (typeof paths?.archive === 'string' && paths.archive) config.paths.archive = paths.archive;
    } catch { /* unparsable: the defaults */ }
    loaded = { config, file: existsSync(file) ? file : undefined, baseDir: folder };
  }
  const archive = resolveConfigPath(loaded, loaded.config.paths.archive);
  return { folder, configFile: loaded.file, configProblems, archive, archiveExists: existsSync(archive), outputDir: resolveConfigPath(loaded, loaded.config.paths.output) };
}

/**
 * The files in the output folder the trees read, and the folders that hold them: VS Code reports
 * a new folder once, without the files created inside it in the same moment.
 */
const WATCHED = new RegExp('^(?:manifest\\.csv|manifest\\.meta\\.json|split\\.json|organize-report\\.json'
  + '|runs(?:/[^/]+(?:/(?:run\\.json|history\\.jsonl|\\.idc-lock|model(?:/model\\.json)?|eval(?:/[^/]+(?:/(?:metrics\\.json|\\.idc-lock|slidemaps))?)?))?)?'
  + '|evals(?:/[^/]+(?:/(?:cv\\.json|\\.idc-lock|[^/]+(?:/(?:metrics\\.json|\\.idc-lock|slidemaps))?))?)?)$');

/** Whether a change at `rel` ('/'-separated, relative to the output folder) can change what the trees show. */
export function affectsSidebar(rel: string): boolean {
  return WATCHED.test(rel);
}

/** What the when clauses and the walkthrough test (context keys), cheap enough to compute with every view hidden. */
export interface SidebarFlags {
  hasConfig: boolean;
  archiveFound: boolean;
  hasManifest: boolean;
  hasSplit: boolean;
  /** A run with a final model (model/model.json). */
  hasModel: boolean;
  hasRuns: boolean;
  hasEvaluations: boolean;
}

export function sidebarFlags(src: SidebarSources): SidebarFlags {
  const runs = runFolders(src.outputDir);
  return {
    hasConfig: src.configFile !== undefined,
    archiveFound: src.archiveExists,
    hasManifest: existsSync(join(src.outputDir, 'manifest.csv')),
    hasSplit: existsSync(join(src.outputDir, 'split.json')),
    hasModel: runs.some((id) => existsSync(join(runsDir(src.outputDir), id, 'model', 'model.json'))),
    hasRuns: runs.length > 0,
    hasEvaluations: listEvaluationDirs(src.outputDir).length > 0,
  };
}

// ------------------------------------------------------------------------------------- dataset

interface OrganizeReportFile {
  kind?: 'dir' | 'zip';
  createdAt?: string;
  totals?: { files?: number; patches?: number; negatives?: number; positives?: number; patients?: number; skipped?: number; suspicious?: number; duplicates?: number; edgePatches?: number };
}

/**
 * Config, archive, output folder, manifest counts, the split per part and warnings. Empty (so the
 * view's welcome content shows) when there is nothing yet: no config, no archive, no manifest.
 */
export function buildDatasetNodes(src: SidebarSources): SidebarNode[] {
  const out = src.outputDir;
  const manifestFile = join(out, 'manifest.csv');
  const hasManifest = existsSync(manifestFile);
  if (!src.configFile && !src.archiveExists && !hasManifest) return [];
  const nodes: SidebarNode[] = [];
  const warnings: SidebarNode[] = [];
  const warn = (id: string, text: string, detail = text): void => {
    warnings.push({ id: `dataset:warning:${id}`, label: text, tooltip: detail, contextValue: 'idc-warning', icon: 'warning', color: WARN });
  };

  // Config
  const problems = src.configProblems ?? [];
  nodes.push({
    id: 'dataset:config', label: 'Config',
    description: src.configFile ? `${CONFIG_FILE_NAME}${problems.length ? ` · ${plural(problems.length, 'problem')}` : ''}` : `no ${CONFIG_FILE_NAME}: defaults apply`,
    tooltip: [src.configFile ?? `${join(src.folder, CONFIG_FILE_NAME)} does not exist; the defaults apply. Open Config creates it.`, ...problems.map((p) => `Problem: ${p}`)].join('\n'),
    contextValue: `idc-config${problems.length ? ' problems' : ''}`, icon: problems.length ? 'warning' : 'settings-gear', color: problems.length ? WARN : undefined,
    open: 'idc.openConfig', path: src.configFile ?? join(src.folder, CONFIG_FILE_NAME),
    children: problems.length ? problems.map((p, i) => ({ id: `dataset:config:problem:${i}`, label: p, tooltip: p, contextValue: 'idc-warning', icon: 'error', color: ERROR, open: 'idc.openConfig' })) : undefined,
    expanded: problems.length > 0,
  });

  // Archive and output folders
  const zip = src.archive.toLowerCase().endsWith('.zip');
  nodes.push({
    id: 'dataset:archive', label: 'Archive', description: `${shown(src.folder, src.archive)}${src.archiveExists ? '' : ' (missing)'}`,
    tooltip: `${src.archive}\n${src.archiveExists ? `The raw ${zip ? '.zip' : 'folder'} archive (paths.archive), only read.` : 'Not found (paths.archive): choose the archive folder or generate a synthetic one.'}`,
    contextValue: `idc-archive ${src.archiveExists ? 'found' : 'missing'}`, icon: src.archiveExists ? (zip ? 'file-zip' : 'folder-library') : 'warning', color: src.archiveExists ? undefined : WARN,
    path: src.archive,
  });
  nodes.push({
    id: 'dataset:output', label: 'Output', description: shown(src.folder, out),
    tooltip: `${out}\nWhere organize, split, training and evaluation write (paths.output).${existsSync(out) ? '' : ' Not created yet.'}`,
    contextValue: `idc-output${existsSync(out) ? ' exists' : ''}`, icon: 'folder-opened', path: out,
  });

  // Manifest
  const reportFile = join(out, 'organize-report.json');
  if (!hasManifest) {
    nodes.push({ id: 'dataset:manifest', label: 'Manifest', description: 'not organized yet', tooltip: `${manifestFile} does not exist: Organize Raw Archive writes it.`, contextValue: 'idc-manifest missing', icon: 'circle-large-outline' });
  } else if (!existsSync(reportFile)) {
    nodes.push({ id: 'dataset:manifest', label: 'Manifest', description: 'manifest.csv (no organize report)', tooltip: `${manifestFile}\n${reportFile} is missing: organize again for the counts.`, contextValue: 'idc-manifest ok', icon: 'list-flat', open: 'idc.showDataset', path: manifestFile });
  } else {
    const r = readJsonFile<OrganizeReportFile>(reportFile);
    const t = 'value' in r && r.value && typeof r.value === 'object' ? r.value.totals : undefined;
    if (!t || !isNum(t.patches)) {
      nodes.push(unreadable('dataset:manifest', 'Manifest', 'error' in r ? r.error : 'organize-report.json has no totals', reportFile, 'idc-manifest unreadable'));
    } else {
      const report = (r as { value: OrganizeReportFile }).value;
      const positives = t.positives ?? 0;
      nodes.push({
        id: 'dataset:manifest', label: 'Manifest',
        description: `${plural(t.patches, 'patch', 'patches')} · ${plural(t.patients ?? 0, 'patient')} · ${pct(t.patches ? positives / t.patches : 0)} IDC`,
        tooltip: [
          manifestFile,
          `${count(t.patches)} patches (${count(positives)} IDC, ${count(t.negatives ?? t.patches - positives)} non-IDC) from ${plural(t.patients ?? 0, 'patient')}`,
          `Organized ${longDate(report.createdAt)} from a ${report.kind === 'zip' ? '.zip' : 'folder'}: ${count(t.files ?? 0)} files read, ${count(t.skipped ?? 0)} skipped, ${count(t.suspicious ?? 0)} suspicious, ${count(t.duplicates ?? 0)} duplicates, ${count(t.edgePatches ?? 0)} edge patches`,
        ].join('\n'),
        contextValue: 'idc-manifest ok', icon: 'list-flat', open: 'idc.showDataset', path: manifestFile,
      });
      if ((t.skipped ?? 0) > 0 || (t.suspicious ?? 0) > 0) warn('organize', `organize skipped ${count(t.skipped ?? 0)} and flagged ${count(t.suspicious ?? 0)} files`, `${reportFile} lists each file and why; Show Dataset summarises them.`);
    }
  }

  // Split
  const splitFile = join(out, 'split.json');
  if (!existsSync(splitFile)) {
    // Its own id: when the split appears, VS Code shows the new node expanded, as a first sight.
    nodes.push({ id: 'dataset:split-missing', label: 'Split by patient', description: hasManifest ? 'not split yet' : '—', tooltip: `${splitFile} does not exist: Split by Patient writes it.`, contextValue: `idc-split missing${hasManifest ? ' ready' : ''}`, icon: 'circle-large-outline' });
  } else {
    const r = readJsonFile<SplitFile>(splitFile);
    const s = 'value' in r ? r.value : undefined;
    if (!s || typeof s !== 'object' || !s.summary || typeof s.summary !== 'object') {
      nodes.push(unreadable('dataset:split', 'Split by patient', 'error' in r ? r.error : 'split.json has no summary', splitFile, 'idc-split unreadable'));
    } else {
      const meta = readJsonFile<{ manifestHash?: string }>(join(out, 'manifest.meta.json'));
      const stale = 'value' in meta && typeof meta.value?.manifestHash === 'string' && typeof s.manifestHash === 'string' && meta.value.manifestHash !== s.manifestHash;
      const ratios = Array.isArray(s.ratios) ? s.ratios.map((x) => Math.round(100 * Number(x))).join('/') : '?';
      nodes.push({
        id: 'dataset:split', label: 'Split by patient',
        description: `seed ${s.seed ?? '?'} · ${ratios}${s.stratify ? ' · stratified' : ''}${stale ? ' · stale' : ''}`,
        tooltip: [splitFile, `Made ${longDate(s.createdAt)}; no patient is in two parts.`, ...(s.notes ?? []).map((n) => `Note: ${n}`), ...(stale ? ['The manifest changed since: split again.'] : [])].join('\n'),
        contextValue: `idc-split ${stale ? 'stale' : 'ok'}`, icon: stale ? 'warning' : 'split-horizontal', color: stale ? WARN : undefined, open: 'idc.showDataset', path: splitFile, expanded: true,
        children: SPLIT_NAMES.map((name) => {
          const c = s.summary[name];
          if (!c || !isNum(c.patches)) return unreadable(`dataset:split:${name}`, name, `split.json has no ${name} summary`, splitFile, 'idc-splitpart unreadable');
          const rate = isNum(c.positiveRate) ? c.positiveRate : c.patches ? (c.positives ?? 0) / c.patches : 0;
          return {
            id: `dataset:split:${name}`, label: name,
            description: `${plural(c.patients ?? 0, 'patient')} · ${count(c.patches)} patches · ${pct(rate)} IDC`,
            tooltip: `${name}: ${plural(c.patients ?? 0, 'patient')}, ${count(c.patches)} patches, ${count(c.positives ?? 0)} IDC (${pct(rate)})`,
            contextValue: 'idc-splitpart', icon: name === 'train' ? 'mortar-board' : name === 'val' ? 'checklist' : 'beaker', open: 'idc.showDataset',
          };
        }),
      });
      if (stale) warn('stale', 'the split is older than the manifest', `${splitFile} records another manifest: run Split by Patient again before training.`);
      for (const [i, w] of (Array.isArray(s.warnings) ? s.warnings : []).entries()) warn(`split:${i}`, String(w));
    }
  }
  if (hasManifest && !src.archiveExists) warn('archive', 'the archive is missing', `${src.archive} is not there: the manifest and the patch cache still work, organizing again needs it.`);

  if (warnings.length) nodes.push({ id: 'dataset:warnings', label: 'Warnings', description: String(warnings.length), tooltip: warnings.map((w) => w.tooltip).join('\n'), contextValue: 'idc-warnings', icon: 'warning', color: WARN, children: warnings, expanded: true });
  return nodes;
}

function unreadable(id: string, label: string, reason: string, path: string, contextValue: string): SidebarNode {
  return { id, label, description: 'unreadable', tooltip: `${path}\nUnreadable: ${reason}.`, contextValue, icon: 'error', color: ERROR, path };
}

// ------------------------------------------------------------------------------------- runs

/** The training the language server is running now, from its job events. */
export interface LiveTraining {
  /** The run being trained (a cross-validation's fold run); unknown until the job's first training progress. */
  runId?: string;
  /** 1-based epoch being trained, and the epoch count. */
  epoch?: number;
  epochs?: number;
  /** Cross-validation: 1-based fold and the fold count, and its id. */
  fold?: number;
  folds?: number;
  cvId?: string;
}

/**
 * "epoch 3/20", "fold 2/5, epoch 3/20", "fold 2/5": the status bar and the Runs tree both say it
 * with this, so they agree.
 */
export function trainingProgressText(p: Pick<LiveTraining, 'epoch' | 'epochs' | 'fold' | 'folds'>): string {
  const epoch = p.epoch !== undefined ? `epoch ${p.epoch}/${p.epochs ?? '?'}` : '';
  const fold = p.fold !== undefined ? `fold ${p.fold}/${p.folds ?? '?'}` : '';
  return [fold, epoch].filter(Boolean).join(', ');
}

export interface RunTreeOptions {
  live?: LiveTraining;
  /**
   * Who holds a folder's lock while alive ("pid 12 (host): idc train"), or undefined. Default: the
   * lock file, with a dead owner's lock counted as free (src/core/run-lock.ts).
   */
  lockHolder?: (dir: string) => string | undefined;
}

/** The holder of `dir`'s run lock when it is alive; a stale lock (owner gone) counts as free. */
export function liveLockHolder(dir: string): string | undefined {
  if (!existsSync(join(dir, LOCK_FILE))) return undefined;
  try {
    assertNotLocked(dir, 'it');
    return undefined;
  } catch {
    const o = lockOwner(dir);
    return o ? `pid ${o.pid} (${o.host}): ${o.command || 'another job'}` : 'a lock file that cannot be read';
  }
}

function runFolders(outputDir: string): string[] {
  try {
    return readdirSync(runsDir(outputDir), { withFileTypes: true }).filter((d) => d.isDirectory() && isRunId(d.name)).map((d) => d.name);
  } catch {
    return [];
  }
}

/** One run folder as read: its run.json and history, or why it cannot be. */
/** run.json as read: any string status (training adds statuses; an unknown one is shown as it is). */
type RunFile = Omit<RunInfo, 'status'> & { status: string; error?: unknown; stoppedAt?: unknown };

interface RunRecord {
  id: string;
  dir: string;
  run?: RunFile;
  /** Why run.json cannot be used. */
  broken?: string;
  history: EpochLog[];
  historyProblems: string[];
  hasModel: boolean;
  lock?: string;
  createdAt: string;
}

/** Run folders as last read, by folder: a refresh rereads only runs whose run.json or history changed. */
const recordCache = new Map<string, { key: string; rec: RunRecord }>();

function readRunRecord(outputDir: string, id: string, lockHolder: (dir: string) => string | undefined): RunRecord {
  const dir = join(runsDir(outputDir), id);
  const lock = lockHolder(dir);
  const hasModel = existsSync(join(dir, 'model', 'model.json'));
  const key = `${fileVersionKey(join(dir, 'run.json'))}|${fileVersionKey(join(dir, 'history.jsonl'))}|${hasModel}|${lock !== undefined}`;
  const hit = recordCache.get(dir);
  if (hit?.key === key) return { ...hit.rec, lock };
  const rec = readRunFolder(dir, id, hasModel, lock);
  if (recordCache.size > 20_000) recordCache.clear();
  recordCache.set(dir, { key, rec });
  return rec;
}

function readRunFolder(dir: string, id: string, hasModel: boolean, lock: string | undefined): RunRecord {
  const rec: RunRecord = { id, dir, history: [], historyProblems: [], hasModel, lock, createdAt: '' };
  const r = readJsonFile<RunFile>(join(dir, 'run.json'));
  if ('error' in r) {
    // A new run's folder exists before its run.json while the job prepares the data.
    rec.broken = rec.lock && r.error.endsWith('is missing') ? undefined : r.error;
    if (!rec.broken) rec.run = { id, createdAt: '', status: 'preparing', backend: '', epochs: 0 };
  } else if (!r.value || typeof r.value !== 'object') rec.broken = 'run.json is not an object';
  else if (typeof r.value.status !== 'string') rec.broken = 'run.json has no status';
  else if (r.value.id !== undefined && r.value.id !== id) rec.broken = `run.json names run "${String(r.value.id)}", not its folder "${id}"`;
  else rec.run = r.value;
  try {
    rec.history = readHistory(dir, rec.historyProblems);
  } catch (e) {
    rec.historyProblems.push(`${join(dir, 'history.jsonl')} cannot be read (${why(e)})`);
  }
  rec.createdAt = typeof rec.run?.createdAt === 'string' && rec.run.createdAt ? rec.run.createdAt : mtimeIso(join(dir, 'run.json')) ?? mtimeIso(dir) ?? '';
  return rec;
}

function mtimeIso(p: string): string | undefined {
  try {
    return statSync(p).mtime.toISOString();
  } catch {
    return undefined;
  }
}

/** The highest validation AUC in the history and its 0-based epoch. */
export function bestValAuc(history: readonly EpochLog[]): { auc: number; epoch: number } | undefined {
  let best: { auc: number; epoch: number } | undefined;
  for (const h of history) if (isNum(h.val_auc) && (!best || h.val_auc > best.auc)) best = { auc: h.val_auc, epoch: h.epoch };
  return best;
}

/** "wasm (2 threads)" from "wasm (2 threads); cache mmap": what fits a description. */
const shortBackend = (b: unknown): string => (typeof b === 'string' ? b.split(';')[0].trim() : '');

const STATE_LOOK: Record<string, { icon: string; color?: string; word: string }> = {
  training: { icon: 'sync~spin', word: 'training' },
  preparing: { icon: 'loading~spin', word: 'preparing data' },
  finished: { icon: 'pass-filled', color: GREEN, word: 'finished' },
  interrupted: { icon: 'debug-pause', color: YELLOW, word: 'interrupted' },
  stopped: { icon: 'debug-stop', color: YELLOW, word: 'stopped' },
  failed: { icon: 'error', color: RED, word: 'failed' },
};

function runNode(rec: RunRecord, live: LiveTraining | undefined, label = rec.id, extraContext = ''): SidebarNode {
  const base = { id: `run:${rec.id}`, runId: rec.id, path: rec.dir };
  if (!rec.run) {
    return {
      ...base, label, description: 'unreadable', icon: 'error', color: ERROR,
      tooltip: [`Run ${rec.id}`, rec.dir, `Unreadable: ${rec.broken}.`, ...(rec.lock ? [`In use by ${rec.lock}.`] : [])].join('\n'),
      contextValue: `idc-run unreadable${rec.lock ? ' locked' : ''}${extraContext}`,
    };
  }
  const run = rec.run;
  const isLive = live?.runId === rec.id;
  // run.json says "running" from start to end: whether anything trains it is a matter of the job or the lock.
  const state = run.status === 'finished' ? 'finished'
    : run.status === 'preparing' ? 'preparing'
      : run.status === 'running' ? (isLive || rec.lock ? 'training' : 'interrupted') : run.status;
  const look = STATE_LOOK[state] ?? { icon: 'circle-large-outline', word: state };
  const planned = isNum(run.epochs) ? run.epochs : undefined;
  let status = look.word;
  if (state === 'training') {
    const progress = isLive ? trainingProgressText({ epoch: live!.epoch, epochs: live!.epochs }) : trainingProgressText({ epoch: Math.min(rec.history.length + 1, planned ?? Infinity), epochs: planned });
    if (progress) status += ` ${progress}`;
  } else if (state !== 'finished' && state !== 'preparing' && planned !== undefined) status += ` at epoch ${rec.history.length}/${planned}`;
  const best = bestValAuc(rec.history);
  const damaged = rec.historyProblems.length > 0;
  const parts = [status, best ? `AUC ${best.auc.toFixed(3)} (epoch ${best.epoch + 1})` : undefined, shortBackend(run.backend) || undefined, shortDate(run.createdAt) || undefined, damaged ? 'history unreadable' : undefined];
  // A fold resumes with its cross-validation (whose pooled evaluation needs every fold), not on its own.
  const resumable = state !== 'finished' && state !== 'training' && state !== 'preparing' && !rec.lock && !extraContext.includes('fold');
  const flags = [
    'idc-run readable', `status-${state.replace(/[^\w-]/g, '_')}`, rec.hasModel && 'model', resumable && 'resumable',
    state === 'training' && isLive && 'live', rec.lock && 'locked', damaged && 'damaged',
  ].filter(Boolean).join(' ');
  const tooltip = [
    `Run ${rec.id}`,
    `Status: ${status}${run.stopReason ? ` (${run.stopReason})` : ''}${typeof run.status === 'string' && run.status !== state && state !== 'training' && state !== 'interrupted' ? ` [${run.status}]` : ''}`,
    ...(rec.lock ? [`In use by ${rec.lock}.`] : []),
    ...(run.backend ? [`Backend: ${run.backend}`] : []),
    ...(run.createdAt ? [`Started: ${longDate(run.createdAt)}`] : []),
    ...(run.finishedAt ? [`Finished: ${longDate(run.finishedAt)}`] : []),
    ...(run.stoppedAt ? [`${state === 'failed' ? 'Failed' : 'Stopped'}: ${longDate(run.stoppedAt)}`] : []),
    ...(typeof run.error === 'string' && run.error ? [`Error: ${run.error}`] : []),
    `Epochs: ${rec.history.length}${planned !== undefined ? ` of ${planned}${state === 'finished' ? '' : ' planned'}` : ''}`,
    best ? `Best validation AUC: ${best.auc.toFixed(4)} at epoch ${best.epoch + 1}` : 'Best validation AUC: — (no epoch yet)',
    ...(isNum(run.bestEpoch) ? [`Weights kept: epoch ${run.bestEpoch + 1}`] : []),
    ...(Array.isArray(run.warnings) ? run.warnings.filter((w) => typeof w === 'string').map((w) => `Warning: ${w}`) : []),
    ...(damaged ? ['History unreadable:', ...rec.historyProblems] : []),
    rec.dir,
  ].join('\n');
  return {
    ...base, label, description: parts.filter(Boolean).join(' · '), tooltip, contextValue: flags + extraContext,
    icon: damaged ? 'warning' : look.icon, color: damaged ? WARN : look.color, open: 'idc.showTraining',
  };
}

/**
 * Every run, newest first: plain runs, cross-validations as groups of their fold runs, ensembles
 * (evaluations of several runs' mean) at the end, folders that cannot be read after them.
 */
export function buildRunNodes(outputDir: string, opts: RunTreeOptions = {}): SidebarNode[] {
  const lockHolder = opts.lockHolder ?? liveLockHolder;
  const live = opts.live;
  const records = new Map(runFolders(outputDir).map((id) => [id, readRunRecord(outputDir, id, lockHolder)]));
  const items: { createdAt: string; node: SidebarNode }[] = [];

  let cvs: CvDefinition[] = [];
  try {
    cvs = listCrossValidations(outputDir);
  } catch { /* evals/ unreadable: no groups */ }
  const evaluations = readEvaluations(outputDir);
  for (const def of cvs) {
    const k = def.folds.length;
    const isLive = live?.cvId === def.id;
    const children = def.folds.map((_, i): SidebarNode => {
      const id = foldRunId(def.id, i);
      const rec = records.get(id);
      records.delete(id);
      if (!rec) {
        const running = isLive && live?.fold === i + 1;
        return {
          id: `run:${id}`, label: `fold ${i + 1}`, description: running ? 'preparing' : 'pending', runId: id, cvId: def.id,
          tooltip: `Fold ${i + 1} of ${k} (run ${id}): ${running ? 'starting now.' : 'not trained yet; running the cross-validation again trains it.'}`,
          contextValue: 'idc-fold pending', icon: running ? 'loading~spin' : 'circle-large-outline',
        };
      }
      return { ...runNode(rec, live, `fold ${i + 1}`, ' fold'), cvId: def.id };
    });
    const done = children.filter((c) => /\bstatus-finished\b/.test(c.contextValue)).length;
    const pooled = evaluations.find((e) => e.dir.model === def.id && e.dir.split === 'test' && e.report?.cv?.id === def.id)?.report;
    const progress = isLive ? trainingProgressText({ fold: live.fold, folds: live.folds ?? k, epoch: live.epoch, epochs: live.epochs }) : '';
    items.push({
      createdAt: def.createdAt,
      node: {
        id: `cv:${def.id}`, cvId: def.id, label: def.id,
        description: [isLive ? `cross-validating ${progress}` : `${done}/${k} folds`, pooled ? `pooled AUC ${f3(pooled.auc)}` : undefined, shortDate(def.createdAt) || undefined].filter(Boolean).join(' · '),
        tooltip: [
          `Cross-validation ${def.id}: ${k} folds by patient, seed ${def.seed}`, `Started: ${longDate(def.createdAt)}`, `${done} of ${k} folds finished`,
          pooled ? `Pooled out-of-fold ROC AUC ${f3(pooled.auc)}${pooled.intervals ? ` (${intervalText(pooled.intervals.auc)} by patient)` : ''} on ${count(pooled.n)} patches` : 'No pooled evaluation yet: it is written when every fold is done.',
          ...def.warnings.map((w) => `Warning: ${w}`),
        ].join('\n'),
        contextValue: ['idc-cv', children.some((c) => /\breadable\b/.test(c.contextValue)) && 'readable', pooled && 'pooled', isLive && 'live', !pooled && done < k && !isLive && 'resumable'].filter(Boolean).join(' '),
        icon: isLive ? 'sync~spin' : pooled ? 'layers-active' : 'layers', color: pooled ? GREEN : undefined,
        evaluation: pooled ? `${def.id}/test` : undefined, path: join(outputDir, 'evals', def.id), open: 'idc.showTraining',
        runId: children.find((c) => c.runId && !/\bpending\b/.test(c.contextValue))?.runId,
        children, expanded: isLive,
      },
    });
  }

  const broken: SidebarNode[] = [];
  for (const rec of records.values()) {
    if (rec.run) items.push({ createdAt: rec.createdAt, node: runNode(rec, live) });
    else broken.push(runNode(rec, live));
  }
  items.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.node.id < b.node.id ? -1 : 1));
  const nodes = items.map((i) => i.node);

  const ensembles = evaluations.filter((e) => Array.isArray(e.report?.ensemble) && !e.report?.cv);
  if (ensembles.length) {
    const runs = new Set(runFolders(outputDir));
    nodes.push({
      id: 'ensembles', label: 'Ensembles', description: String(ensembles.length), tooltip: 'Evaluations of the mean probability of several runs (idc evaluate --run a,b,c).',
      contextValue: 'idc-ensembles', icon: 'group-by-ref-type',
      children: ensembles.map((e) => {
        const members = e.report!.ensemble!.filter((m): m is string => typeof m === 'string');
        return {
          id: `ensemble:${evaluationId(e.dir)}`, label: `${e.dir.model}`, evaluation: evaluationId(e.dir), path: e.dir.dir,
          description: `${members.length} runs · ${e.dir.split} AUC ${f3(e.report!.auc)}`,
          tooltip: [`Ensemble ${e.dir.model}: mean probability of ${members.join(', ')}`, `${e.dir.split} ROC AUC ${f3(e.report!.auc)}`, e.dir.dir].join('\n'),
          contextValue: 'idc-ensemble', icon: 'group-by-ref-type', open: 'idc.showEvaluation',
          children: members.map((m) => ({
            id: `ensemble:${evaluationId(e.dir)}:${m}`, label: m, runId: m, description: runs.has(m) ? undefined : 'missing',
            tooltip: runs.has(m) ? `Run ${m}, a member of this ensemble.` : `Run ${m} is no longer in ${runsDir(outputDir)}.`,
            contextValue: `idc-member ${runs.has(m) ? 'readable' : 'missing'}`, icon: runs.has(m) ? 'circle-small-filled' : 'warning', open: runs.has(m) ? 'idc.showTraining' : undefined,
          })),
        };
      }),
    });
  }
  return [...nodes, ...broken.sort((a, b) => (a.id < b.id ? -1 : 1))];
}

/** The first node that matches, with its ancestors (outermost first), for reveal; undefined when none does. */
export function findNode(nodes: readonly SidebarNode[], match: (n: SidebarNode) => boolean): SidebarNode[] | undefined {
  for (const n of nodes) {
    if (match(n)) return [n];
    const below = n.children && findNode(n.children, match);
    if (below) return [n, ...below];
  }
  return undefined;
}

// ------------------------------------------------------------------------------------- evaluations

interface EvaluationRecord {
  dir: EvaluationDir;
  report?: EvalReport;
  broken?: string;
}

/** metrics.json files, parsed once per version: a refresh rereads only what changed. */
const reportCache = new Map<string, { key: string; value: EvalReport | { error: string } }>();

function readReport(file: string): EvalReport | { error: string } {
  const key = fileVersionKey(file);
  const hit = reportCache.get(file);
  if (key && hit?.key === key) return hit.value;
  const r = readJsonFile<EvalReport>(file);
  const value = 'error' in r ? r
    : !r.value || typeof r.value !== 'object' ? { error: 'metrics.json is not an object' }
      : !('auc' in r.value) || !isNum(r.value.n) ? { error: 'metrics.json has no AUC or patch count' } : r.value;
  if (key) {
    if (reportCache.size > 2000) reportCache.clear();
    reportCache.set(file, { key, value });
  }
  return value;
}

function readEvaluations(outputDir: string): EvaluationRecord[] {
  let dirs: EvaluationDir[] = [];
  try {
    dirs = listEvaluationDirs(outputDir);
  } catch { /* unreadable output folder */ }
  return dirs.map((dir) => {
    const r = readReport(dir.metrics);
    return 'error' in r ? { dir, broken: r.error } : { dir, report: r };
  });
}

/** What was scored: "test patients", or the external archive's name. */
function scoredText(m: EvalReport): string {
  if (m.external) return `external archive ${m.external.name}`;
  return `${m.split} patients`;
}

/**
 * Every evaluation, newest first: the model (run, ensemble, cross-validation, outside model), the
 * split or external archive scored, ROC AUC with its interval by patient, the working threshold.
 */
export function buildEvaluationNodes(outputDir: string, opts: Pick<RunTreeOptions, 'lockHolder'> = {}): SidebarNode[] {
  const lockHolder = opts.lockHolder ?? liveLockHolder;
  const records = readEvaluations(outputDir);
  const nodes = records.map((e): { createdAt: string; node: SidebarNode } => {
    const id = evaluationId(e.dir);
    const lock = lockHolder(e.dir.dir);
    const base = { id: `eval:${id}`, evaluation: id, path: e.dir.dir };
    if (!e.report) {
      return { createdAt: '', node: { ...base, label: id, description: 'unreadable', tooltip: `${e.dir.metrics}\nUnreadable: ${e.broken}.`, contextValue: 'idc-evaluation unreadable', icon: 'error', color: ERROR } };
    }
    const m = e.report;
    const kind = m.cv ? 'cv' : m.ensemble ? 'ensemble' : m.external ? 'external' : e.dir.owner === 'run' ? 'run' : 'model';
    const label = kind === 'cv' ? `${m.cv!.id} (pooled, ${m.cv!.folds} folds)`
      : kind === 'external' ? `${m.runId ?? e.dir.model.replace(/-on-.*$/, '')} on ${m.external!.name}`
        : id;
    const iv = m.intervals;
    const working = Array.isArray(m.operatingPoints) ? m.operatingPoints.find((o) => o.name === 'default') : undefined;
    const description = [
      lock ? 'being written' : undefined,
      `AUC ${f3(m.auc)}${iv?.auc ? ` (${intervalText(iv.auc)})` : ''}`,
      isNum(m.threshold) ? `threshold ${+m.threshold.toFixed(4)}` : undefined,
    ].filter(Boolean).join(' · ');
    const model = kind === 'cv' ? `the ${m.cv!.folds} fold models of cross-validation ${m.cv!.id} (each patient scored by the model that never saw it)`
      : kind === 'ensemble' ? `ensemble of ${m.ensemble!.length} runs (${m.ensemble!.join(', ')}), mean probability`
        : kind === 'run' || m.runId ? `run ${m.runId ?? e.dir.model}` : `outside model ${m.model}`;
    const tooltip = [
      `Evaluation ${id}`,
      `Model: ${model}`,
      `Scored: ${scoredText(m)}${m.external ? ` (${m.external.archive}, ${plural(m.external.patients, 'patient')})` : ''}: ${count(m.n)} patches, ${count(m.positives ?? 0)} IDC`,
      `ROC AUC ${f3(m.auc)}${iv ? `, ${+(iv.confidence * 100).toFixed(1)}% CI ${intervalText(iv.auc)} by patient (${plural(iv.patients, 'patient')})` : ' (no interval: evaluate.bootstrap.resamples is 0)'}`,
      `Average precision ${f3(m.averagePrecision)}`,
      ...(isNum(m.threshold) ? [`Working threshold ${m.threshold}${working ? `: recall ${f3(working.recall)}, specificity ${f3(working.specificity)}, precision ${f3(working.precision)}` : ''}`] : []),
      ...(m.createdAt ? [`Evaluated: ${longDate(m.createdAt)}${m.backend ? ` on ${m.backend}` : ''}`] : []),
      ...(lock ? [`Being written by ${lock}.`] : []),
      ...(Array.isArray(m.warnings) ? m.warnings.map((w) => `Warning: ${w}`) : []),
      e.dir.dir,
    ].join('\n');
    const reportable = kind === 'run' || kind === 'cv';
    return {
      createdAt: m.createdAt ?? '',
      node: {
        ...base, label, description, tooltip, runId: m.runId, cvId: m.cv?.id,
        contextValue: ['idc-evaluation readable', `kind-${kind}`, reportable && 'reportable', e.dir.slideMaps.length > 0 && 'slidemaps', lock && 'locked'].filter(Boolean).join(' '),
        icon: kind === 'cv' ? 'layers-active' : kind === 'ensemble' ? 'group-by-ref-type' : kind === 'external' ? 'globe' : 'graph', open: 'idc.showEvaluation',
      },
    };
  });
  nodes.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.node.id < b.node.id ? -1 : 1));
  return nodes.map((n) => n.node);
}
