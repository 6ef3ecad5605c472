/**
 * The IDC language server: queues pipeline jobs and runs each in a job process with src/core
 * (never in the extension host, nor in this process: TF.js is never loaded here), reports them as
 * cancellable LSP work-done progress, and checks idc.config.json as you type.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createConnection, ErrorCodes, ProposedFeatures, ResponseError, TextDocuments, TextDocumentSyncKind,
  type InitializeResult, type WorkDoneProgressServerReporter,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import {
  CONFIG_FILE_NAME, configProblemLines, defaultConfig, resolveConfigPath, type BackendName, type LoadedConfig,
} from '../core/config';
import { runIdProblem } from '../core/run-id';
import { MANIFEST_FILE, REPORT_FILE } from '../core/organize/organize';
import { listEvaluationDirs } from '../core/evaluate/list';
import type { BackendProbe, ConcreteBackend } from '../core/engine/backends';
import type { RunInfo } from '../core/train/train';
import * as P from '../protocol/protocol';
import * as H from '../protocol/job-host';
import { configDiagnostics, realFs } from './config-diagnostics';
import { JobMeter, JobQueue, type Job, type MeterReading } from './jobs';
import { askHost, runJobInProcess } from './job-process';
import { lineIndex, setValueEdit } from './jsonc-tree';
import { loadJobConfig, SPLIT_FILE } from './runners';

const connection = createConnection(ProposedFeatures.all);
const documents = new TextDocuments(TextDocument);

let folders: string[] = [];
let settings: P.ServerSettings = {};
/** engine.backend of the first folder's config, and what "auto" picked in the last TF.js job. */
let backendConfigured: string = 'auto';
let backendInUse: string | undefined;

const log = {
  info: (s: string) => connection.console.info(s),
  warn: (s: string) => connection.console.warn(s),
  error: (s: string) => connection.console.error(s),
};

// ------------------------------------------------------------------------------------- lifecycle

connection.onInitialize((params): InitializeResult => {
  folders = (params.workspaceFolders ?? []).map((f) => uriToPath(f.uri)).filter((p): p is string => p !== undefined);
  if (folders.length === 0 && params.rootUri) folders = [uriToPath(params.rootUri)].filter((p): p is string => p !== undefined);
  settings = (params.initializationOptions ?? {}) as P.ServerSettings;
  return {
    capabilities: {
      textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental, save: { includeText: false } },
      workspace: { workspaceFolders: { supported: true, changeNotifications: true } },
    },
    serverInfo: { name: 'IDC Inspector', version: '0.1.0' },
  };
});

connection.onInitialized(() => {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 20) void connection.window.showWarningMessage(`IDC: the language server runs on Node ${process.versions.node}; it needs Node 20.15 or newer. Change the idc.server.runtime setting.`);
  try {
    connection.workspace.onDidChangeWorkspaceFolders((e) => {
      const removed = new Set(e.removed.map((f) => uriToPath(f.uri)));
      folders = [...folders.filter((f) => !removed.has(f)), ...e.added.map((f) => uriToPath(f.uri)).filter((p): p is string => p !== undefined)];
      void refreshBackendLabel();
    });
  } catch { /* the client does not send folder changes */ }
  void refreshBackendLabel();
});

connection.onDidChangeConfiguration((change) => {
  const idc = (change.settings as { idc?: P.ServerSettings } | undefined)?.idc;
  if (idc) settings = { defaultBackend: idc.defaultBackend };
  void refreshBackendLabel();
});

connection.onShutdown(async () => {
  // Stop between batches so a training run keeps a clean checkpoint; don't hold the client up long.
  queue.dropAll();
  queue.running?.controller.abort();
  await Promise.race([queue.idle(), new Promise((r) => setTimeout(r, 1500))]);
});

process.on('unhandledRejection', (e) => log.error(`Unhandled rejection: ${(e as Error)?.stack ?? String(e)}`));

// ------------------------------------------------------------------------------------- jobs

const queue = new JobQueue(execute, sendStatus);

connection.onRequest(P.runJob, (req): P.RunJobResult => {
  if (!req || !(req.kind in P.JOB_TITLES)) throw new ResponseError(ErrorCodes.InvalidParams, `Unknown job kind "${String(req?.kind)}".`);
  if (req.kind === 'synth' && !req.out) throw new ResponseError(ErrorCodes.InvalidParams, 'A synth job needs "out", the folder or .zip to write.');
  if (req.kind === 'predict' && !req.patches) throw new ResponseError(ErrorCodes.InvalidParams, 'A predict job needs "patches", the folder of patches to score.');
  if ('runId' in req && req.runId !== undefined && runIdProblem(req.runId)) throw new ResponseError(ErrorCodes.InvalidParams, `runId: the run id ${runIdProblem(req.runId)}.`);
  if (req.kind === 'cv' && req.id !== undefined && runIdProblem(req.id)) throw new ResponseError(ErrorCodes.InvalidParams, `id: the cross-validation id ${runIdProblem(req.id)}.`);
  jobFolder(req);
  const refused = refuseSecondTraining(req);
  if (refused) {
    log.info(`${P.JOB_TITLES[req.kind]} refused: ${refused.message}`);
    return { jobId: '', kind: req.kind, title: P.JOB_TITLES[req.kind], queued: false, position: 0, refused };
  }
  const { job, position, behind } = queue.add(req);
  if (behind) log.info(`${job.title} (job ${job.jobId}) queued behind ${behind.title} (job ${behind.jobId}).`);
  return { ...ref(job), queued: position > 0, position, behind: behind && ref(behind) };
});

/**
 * One training at a time: a second one queued behind the first would start on whatever the first
 * left (often the same run, resumed or refused), long after the user asked. Refused instead.
 */
function refuseSecondTraining(req: P.JobRequest): P.JobRefusal | undefined {
  if (!P.TRAINING_KINDS.includes(req.kind)) return undefined;
  const other = [queue.running, ...queue.queued].find((j): j is Job => j !== undefined && P.TRAINING_KINDS.includes(j.kind));
  if (!other) return undefined;
  const state = other === queue.running ? 'running' : 'queued';
  if (other.kind === 'cv') {
    // A cross-validation trains its folds one after another: anything else would compete with it for the cores.
    const id = other.cv?.id ?? (other.request.kind === 'cv' ? other.request.id : undefined);
    const what = [id, other.runId && `run ${other.runId}`].filter(Boolean).join(', ');
    return { message: `Cross-validation is already ${state}${what ? ` (${what})` : ''}.`, hint: 'Stop it first, or wait for it to finish.', running: ref(other), runId: other.runId, cv: other.cv };
  }
  const runId = other.runId ?? (other.request.kind === 'train' || other.request.kind === 'resume' ? other.request.runId : undefined);
  return {
    message: `Training is already ${state}${runId ? ` (run ${runId})` : ''}.`,
    hint: 'Stop it first, or wait for it to finish.', running: ref(other), runId,
  };
}

connection.onRequest(P.stopJob, (params): P.StopJobResult => {
  const stopped: Job[] = [];
  if (params?.jobId && queue.running?.jobId !== params.jobId) {
    const j = queue.drop(params.jobId);
    if (j) stopped.push(j);
  } else {
    if (queue.running) { queue.running.controller.abort(); stopped.push(queue.running); }
    if (params?.all) stopped.push(...queue.dropAll());
  }
  for (const j of stopped) {
    if (j === queue.running) continue;
    log.info(`${j.title} (job ${j.jobId}) removed from the queue.`);
    connection.sendNotification(P.jobCancelled, { ...ref(j), message: `${j.title} was removed from the queue.`, resumable: false, wasQueued: true });
  }
  return { stopped: stopped.map(ref) };
});

connection.onRequest(P.getStatus, () => statusParams());

function ref(j: Job): P.JobRef {
  return { jobId: j.jobId, kind: j.kind, title: j.title };
}

function statusParams(): P.StatusParams {
  const running = queue.running;
  const backend = backendConfigured === 'auto' && backendInUse ? `auto: ${backendInUse}` : backendConfigured;
  return { state: running ? 'running' : 'idle', running: running && ref(running), queued: queue.queued.map(ref), backend };
}

function sendStatus(): void {
  connection.sendNotification(P.status, statusParams());
}

function jobFolder(req: P.JobRequest): string {
  const folder = req.folder ?? folders[0];
  if (!folder) throw new ResponseError(ErrorCodes.InvalidParams, 'No folder: open the folder that holds (or will hold) idc.config.json.');
  return folder;
}

interface Reporter extends Pick<WorkDoneProgressServerReporter, 'begin' | 'report' | 'done'> {
  token: { onCancellationRequested(listener: () => void): { dispose(): void } };
}

const noReporter: Reporter = { begin() {}, report() {}, done() {}, token: { onCancellationRequested: () => ({ dispose() {} }) } };

async function execute(job: Job): Promise<void> {
  const t0 = Date.now();
  const folder = jobFolder(job.request);
  const meter = new JobMeter(job.kind);
  // The server creates the progress, so VS Code shows one cancellable notification per job.
  const reporter: Reporter = await connection.window.createWorkDoneProgress().catch(() => noReporter);
  const onCancel = reporter.token.onCancellationRequested(() => {
    log.info(`${job.title} (job ${job.jobId}): cancel requested; stopping at the next safe point.`);
    job.controller.abort();
  });
  reporter.begin(`IDC: ${job.title}`, 0, 'Starting…', true);
  const req = job.request;
  connection.sendNotification(P.jobStarted, { ...ref(job), folder, runId: req.kind === 'train' || req.kind === 'resume' ? req.runId : undefined });
  log.info(`${job.title} started (job ${job.jobId}) in ${folder}.`);
  let runId: string | undefined;
  let epochs = 0;
  const warn = (message: string, run?: string): void => {
    log.warn(message);
    // A cross-validation's folds would each repeat the same warning.
    if ((job.warned ??= new Set()).has(message)) return;
    job.warned.add(message);
    connection.sendNotification(P.jobWarning, { ...ref(job), runId: run, message });
  };
  const send = (r: MeterReading): void => {
    const message = progressMessage(r);
    if (r.percentage !== undefined) reporter.report(r.percentage, message);
    else reporter.report(message);
    connection.sendNotification(P.jobProgress, {
      ...r.event, ...ref(job), percentage: r.percentage, etaSeconds: r.etaSeconds, epoch: r.epoch, epochs: r.epochs,
      runId: r.runId, step: r.step, steps: r.steps, loss: r.loss, imagesPerSecond: r.imagesPerSecond, fold: r.fold, folds: r.folds, cv: r.cv,
    });
  };
  try {
    const result = await runJobInProcess(job, folder, settings, {
      progress: (e) => {
        const r = meter.onProgress(e);
        if (r) send(r);
      },
      train: (e) => {
        meter.onTrainEvent(e);
        if (e.type === 'start') {
          runId = e.runId;
          job.runId = e.runId;
          epochs = e.epochs;
          log.info(`${e.startEpoch > 0 ? `Resuming run ${e.runId} at epoch ${e.startEpoch + 1}` : `Run ${e.runId}`}: ${e.trainSize} training and ${e.valSize} validation patches, up to ${e.epochs} epochs on ${e.backend}.`);
          if (e.warning) warn(e.warning, e.runId);
        } else if (e.type === 'epoch') {
          const l = e.log;
          log.info(`epoch ${l.epoch + 1}/${epochs}  loss ${l.loss.toFixed(4)}  auc ${l.auc.toFixed(3)} | val_loss ${l.val_loss.toFixed(4)}  val_recall ${l.val_recall.toFixed(3)}  val_auc ${l.val_auc.toFixed(3)} | lr ${l.lr.toExponential(1)}  ${l.seconds.toFixed(1)} s${l.best ? '  *best' : ''}${l.lrReduced ? '  lr reduced' : ''}`);
          connection.sendNotification(P.epochMetrics, { ...ref(job), runId: e.runId, epochs, log: l });
        }
      },
      cv: (e) => {
        job.cv = e.cv;
        if (e.type === 'warning') { warn(e.message); return; }
        meter.onCvFold(e.fold, e.folds, e.cv);
        if (e.state !== 'done') { runId = e.runId; job.runId = e.runId; }
        const f = `Fold ${e.fold + 1}/${e.folds} (${e.runId})`;
        log.info(e.state === 'kept' ? `${f}: already trained and evaluated; kept.` : e.state === 'evaluating' ? `${f}: trained; scoring its ${e.test} test patches.`
          : e.state === 'training' ? `${f}: ${e.test} test patches.` : `${f}: test ROC AUC ${e.auc === null || e.auc === undefined ? '—' : e.auc.toFixed(4)}.`);
      },
      backend: (name) => { backendInUse = name; sendStatus(); },
      log: (level, message) => log[level](message),
    });
    reporter.done();
    if (result.ok) {
      const seconds = (Date.now() - t0) / 1000;
      log.info(`${job.title} finished in ${seconds.toFixed(1)} s.\n${result.outcome.summary}`);
      connection.sendNotification(P.jobFinished, { ...ref(job), ...result.outcome, seconds, runId: result.outcome.runId ?? runId, cv: result.outcome.cv ?? job.cv });
    } else reportFailure(job, result.error, runId);
  } finally {
    onCancel.dispose();
    reporter.done();
    revalidateOpenConfigs();
  }
}

function reportFailure(job: Job, error: H.HostError, runId: string | undefined): void {
  if (error.kind === 'cancelled') {
    const training = job.kind === 'train' || job.kind === 'resume';
    const cv = job.cv;
    const what = job.kind === 'cv' ? `Cross-validation${cv ? ` ${cv.id}` : ''} stopped${runId ? `; the finished folds are kept and run ${runId} keeps its last finished epoch` : ''}. Run it again to resume.`
      : training && runId ? `Training stopped; run ${runId} keeps its last finished epoch and can be resumed.`
      : job.kind === 'organize' ? 'Organize stopped; the patients already checked are kept and a rerun continues from there.'
        : `${job.title} stopped.`;
    const message = error.message === 'Cancelled.' ? what : `${what} ${error.message}`;
    log.info(`${job.title} (job ${job.jobId}): ${message}`);
    connection.sendNotification(P.jobCancelled, { ...ref(job), message, resumable: (training && runId !== undefined) || job.kind === 'organize' || job.kind === 'cv', runId, wasQueued: false, cv });
    return;
  }
  if (error.kind === 'user') log.error(`${job.title} failed: ${error.message}${error.hint ? `\n${error.hint}` : ''}`);
  else log.error(`Internal error in ${job.title} (job ${job.jobId}): ${error.stack ?? error.message}`);
  const internal = error.kind === 'internal';
  const message = internal && error.code === 'INTERNAL' ? `Internal error in ${job.title}: ${error.message}` : error.message;
  const hint = internal && error.code === 'INTERNAL' ? 'This is a bug in IDC Inspector; the IDC log has the details. Please report it.' : error.hint;
  connection.sendNotification(P.jobFailed, { ...ref(job), message, hint, code: error.code, internal, runId, cv: job.cv });
}

function progressMessage(r: MeterReading): string {
  const e = r.event;
  const parts: string[] = [];
  if (r.fold !== undefined) parts.push(`Fold ${r.fold}/${r.folds}`);
  if (r.epoch !== undefined) parts.push(`Epoch ${r.epoch}/${r.epochs}`);
  if (!(r.epoch !== undefined && e.phase === 'train.epoch')) parts.push(e.label);
  let line = parts.join(' — ');
  if (e.total) line += `: ${e.done.toLocaleString('en-US')}/${e.total.toLocaleString('en-US')} ${e.unit}`;
  else if (e.done) line += `: ${e.done.toLocaleString('en-US')} ${e.unit}`;
  if (e.message) line += ` (${e.message})`;
  if (r.etaSeconds !== undefined) line += `, ${formatEta(r.etaSeconds)} left`;
  return line;
}

function formatEta(s: number): string {
  if (s < 60) return `${Math.max(1, Math.round(s))}s`;
  if (s < 3600) return `${Math.round(s / 60)}m`;
  return `${Math.floor(s / 3600)}h ${Math.round((s % 3600) / 60)}m`;
}

async function refreshBackendLabel(): Promise<void> {
  if (!folders[0]) return;
  try {
    backendConfigured = (await loadJobConfig(folders[0], {}, settings)).config.engine.backend;
  } catch { /* a broken config shows as diagnostics */ }
  sendStatus();
}

// ------------------------------------------------------------------------------------- backends

const probes = new Map<ConcreteBackend, BackendProbe>();
const probing = new Set<ConcreteBackend>();
const hostLog = (level: 'info' | 'warn' | 'error', message: string): void => log[level](message);

/** Cached probe for diagnostics; the first ask starts probing and re-checks open configs when done. */
function backendProbe(name: ConcreteBackend): BackendProbe | undefined {
  const p = probes.get(name);
  if (p || probing.has(name)) return p;
  probing.add(name);
  askHost(H.hostProbeBackends, { names: [name] }, hostLog)
    .then((r) => r[0])
    .catch((e: unknown): BackendProbe => ({ name, available: false, reason: `probing failed: ${String((e as Error)?.message ?? e).split('\n')[0]}` }))
    .then((probe) => {
      probes.set(name, probe);
      probing.delete(name);
      revalidateOpenConfigs();
    });
  return undefined;
}

connection.onRequest(P.listBackends, async (params): Promise<P.BackendList> => {
  const folder = params?.folder ?? folders[0];
  const [all, torch] = await Promise.all([
    askHost(H.hostProbeBackends, {}, hostLog),
    askHost(H.hostProbeTorch, { folder, python: params?.python }, hostLog).catch((e: unknown): P.TorchOption => ({ available: false, reason: `probing failed: ${String((e as Error)?.message ?? e).split('\n')[0]}` })),
  ]);
  for (const p of all) probes.set(p.name, p);
  // Training's order: tensorflow-gpu, then torch on a GPU, then the TF.js ladder (torch on the CPU needs a timing run).
  const tfGpu = all.find((p) => p.name === 'tensorflow-gpu')?.available;
  const auto = !tfGpu && torch.available && torch.device !== 'cpu' ? `torch (${torch.device})` : all.find((p) => p.available)?.name;
  return { probes: all, auto, torch };
});

connection.onRequest(P.checkGpu, async (params) => ({ report: await askHost(H.hostGpuReport, { folder: params?.folder ?? folders[0], python: params?.python }, hostLog) }));

// ------------------------------------------------------------------------------------- workspace

connection.onRequest(P.workspaceInfo, async (params): Promise<P.WorkspaceInfo> => {
  const folder = params?.folder ?? folders[0];
  if (!folder) throw new ResponseError(ErrorCodes.InvalidParams, 'No folder is open.');
  let loaded: LoadedConfig;
  let configProblems: string[] | undefined;
  try {
    loaded = await loadJobConfig(folder, {}, settings);
  } catch (e) {
    configProblems = configProblemLines(e);
    const file = join(folder, CONFIG_FILE_NAME);
    loaded = { config: defaultConfig(), file: existsSync(file) ? file : undefined, baseDir: folder };
  }
  const out = resolveConfigPath(loaded, loaded.config.paths.output);
  const archive = resolveConfigPath(loaded, loaded.config.paths.archive);
  const runs = readRuns(out);
  const evaluations: P.EvaluationInfo[] = listEvaluationDirs(out, runs.map((r) => r.id)).map(({ owner: _, ...e }) => e);
  const maybe = (p: string): string | undefined => (existsSync(p) ? p : undefined);
  return {
    folder, configFile: loaded.file, configProblems, archive, archiveExists: existsSync(archive), outputDir: out,
    manifest: maybe(join(out, MANIFEST_FILE)), organizeReport: maybe(join(out, REPORT_FILE)), split: maybe(join(out, SPLIT_FILE)),
    runs, evaluations, report: maybe(join(out, 'report.html')), backend: loaded.config.engine.backend as BackendName, synthPatients: loaded.config.synth.patients,
  };
});

/** core's listRuns, without loading train.ts (and TF.js with it) into the server: the same run.json files. */
function readRuns(out: string): RunInfo[] {
  const dir = join(out, 'runs');
  if (!existsSync(dir)) return [];
  const runs: RunInfo[] = [];
  for (const id of readdirSync(dir)) {
    try { runs.push(JSON.parse(readFileSync(join(dir, id, 'run.json'), 'utf8')) as RunInfo); } catch { /* not a run folder */ }
  }
  return runs.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
}

connection.onRequest(P.configEdit, (params): P.ConfigEditResult => {
  try {
    const edit = setValueEdit(params.text, params.path, params.value);
    const pos = lineIndex(params.text);
    return { edits: [{ range: { start: pos(edit.offset), end: pos(edit.offset + edit.length) }, newText: edit.newText }] };
  } catch (e) {
    throw new ResponseError(ErrorCodes.InvalidParams, (e as Error).message);
  }
});

// ------------------------------------------------------------------------------------- config diagnostics

function isConfigDocument(uri: string): string | undefined {
  const file = uriToPath(uri);
  return file && basename(file) === CONFIG_FILE_NAME ? file : undefined;
}

function validate(doc: TextDocument): void {
  const file = isConfigDocument(doc.uri);
  if (!file) return;
  let diagnostics;
  try {
    diagnostics = configDiagnostics(doc.getText(), file, { ...realFs, backendProbe });
  } catch (e) {
    log.error(`Checking ${file} failed: ${(e as Error)?.stack ?? String(e)}`);
    return;
  }
  void connection.sendDiagnostics({ uri: doc.uri, version: doc.version, diagnostics });
}

function revalidateOpenConfigs(): void {
  for (const doc of documents.all()) validate(doc);
}

documents.onDidChangeContent((e) => validate(e.document));
documents.onDidClose((e) => {
  if (isConfigDocument(e.document.uri)) void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
});
documents.onDidSave(() => void refreshBackendLabel());
connection.onDidChangeWatchedFiles(() => {
  revalidateOpenConfigs();
  void refreshBackendLabel();
});

function uriToPath(uri: string): string | undefined {
  try {
    return uri.startsWith('file:') ? fileURLToPath(uri) : undefined;
  } catch {
    return undefined;
  }
}

export function startLanguageServer(): void {
  documents.listen(connection);
  connection.listen();
}
