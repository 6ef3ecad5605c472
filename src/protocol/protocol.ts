/**
 * Every message between the IDC language server and the extension, declared once (as
 * rust-analyzer's lsp_ext.ts does). Imported by both sides, so no `vscode` import here and only
 * type imports from src/core: this module must not pull TF.js into the extension bundle.
 */
import { NotificationType, RequestType, RequestType0, type TextEdit } from 'vscode-languageserver-protocol';
import type { ProgressEvent } from '../core/progress';
import type { EpochLog } from '../core/train/checkpoint';
import type { BackendName } from '../core/config';
import type { BackendProbe, TorchOption } from '../core/engine/backends';
import type { RunInfo } from '../core/train/train';

export type { ProgressEvent, EpochLog, BackendName, BackendProbe, RunInfo, TorchOption };

// ------------------------------------------------------------------------------------- jobs

export type JobKind = 'organize' | 'split' | 'train' | 'resume' | 'evaluate' | 'report' | 'synth' | 'predict' | 'gradcam' | 'cv';
/** Jobs that train: one at a time, a second one is refused (never queued). */
export const TRAINING_KINDS: readonly JobKind[] = ['train', 'resume', 'cv'];
export type EvalSplit = 'test' | 'val' | 'train';

interface JobTarget {
  /** Folder holding (or that would hold) idc.config.json; default: the first workspace folder. */
  folder?: string;
  /** The interpreter selected in VS Code's Python extension: the torch engine's when engine.python is empty. */
  python?: string;
}

/** What to run. Relative paths resolve against `folder`; unset fields come from idc.config.json. */
export type JobRequest = JobTarget & (
  | { kind: 'organize'; archive?: string; force?: boolean; materialize?: 'none' | 'link' | 'copy' }
  | { kind: 'split'; ratios?: [number, number, number]; seed?: number; stratify?: boolean }
  | { kind: 'train'; runId?: string; epochs?: number; batchSize?: number; backend?: BackendName }
  /** Continues `runId`, or the newest unfinished run. */
  | { kind: 'resume'; runId?: string }
  /**
   * `archive`: score every patient of another labelled archive (external validation) instead of a split.
   * `modelPath` "baseline": the shipped baseline model; with `archive` and no finished run it is taken anyway.
   */
  | { kind: 'evaluate'; runId?: string; modelPath?: string; split?: EvalSplit; archive?: string }
  /** `cv`: report that cross-validation's pooled evaluation (default: the newest run's, or its CV's when it is a fold). */
  | { kind: 'report'; runId?: string; file?: string; split?: EvalSplit; cv?: string }
  | { kind: 'synth'; out: string; patients?: number; seed?: number; zip?: boolean }
  /** `patches`: the folder of unlabelled patches to score; with no run named and none finished, the shipped baseline model scores. */
  | { kind: 'predict'; patches: string; runId?: string; modelPath?: string }
  /** Grad-CAM overlays for patches of an evaluation (`evalDir`, inside the output folder) that lack one. */
  | { kind: 'gradcam'; evalDir: string; ids: string[] }
  /** Patient-grouped k-fold cross-validation (idc cv); the same folds, seed and id resume it. */
  | { kind: 'cv'; folds?: number; seed?: number; id?: string; epochs?: number; backend?: BackendName }
);

/** A cross-validation job's experiment: rerunning with these resumes it. */
export interface CvJobInfo {
  id: string;
  folds: number;
  seed: number;
}

export interface JobRef {
  jobId: string;
  kind: JobKind;
  /** "Organize raw archive", "Train model" … */
  title: string;
}

export interface RunJobResult extends JobRef {
  /** True when another job is running: this one starts when those ahead of it end. */
  queued: boolean;
  /** Jobs ahead of this one (0 when it starts now). */
  position: number;
  /** The job running now, when queued. */
  behind?: JobRef;
  /** Set when the job was not accepted (jobId is then ''): one training at a time, never queued behind another. */
  refused?: JobRefusal;
}

export interface JobRefusal {
  /** "Training is already running (run X)." */
  message: string;
  /** What to do: "Stop it first, or wait for it to finish." */
  hint: string;
  /** The job in the way. */
  running: JobRef;
  /** Its run, once known. */
  runId?: string;
  /** A cross-validation in the way. */
  cv?: CvJobInfo;
}

export interface JobStartedParams extends JobRef {
  folder: string;
  /** Training: the run, when the request names it (a new run's id comes with its first progress). */
  runId?: string;
}

export interface JobProgressParams extends ProgressEvent, JobRef {
  /** Whole-job share done, 0..100, never decreasing. */
  percentage?: number;
  etaSeconds?: number;
  /** Training only: 1-based epoch being trained and the epoch count. */
  epoch?: number;
  epochs?: number;
  /** Training only: the run, and the last training batch seen (1-based step of steps, mean loss so far this epoch, images per second). */
  runId?: string;
  step?: number;
  steps?: number;
  loss?: number;
  imagesPerSecond?: number;
  /** Cross-validation only: the 1-based fold being trained or scored, and the fold count. */
  fold?: number;
  folds?: number;
  cv?: CvJobInfo;
}

/** A job's warning the user should see now (a training run's start: e.g. a one-class validation split). */
export interface JobWarningParams extends JobRef {
  runId?: string;
  message: string;
}

export interface EpochMetricsParams extends JobRef {
  runId: string;
  epochs: number;
  log: EpochLog;
}

export interface JobOutput {
  label: string;
  path: string;
}

export interface JobFinishedParams extends JobRef {
  /** What the job found, as the CLI prints it (several lines). */
  summary: string;
  outputs: JobOutput[];
  seconds: number;
  runId?: string;
  /** Cross-validation: its pooled evaluation is `<cv.id>/test`. */
  cv?: CvJobInfo;
}

export interface JobFailedParams extends JobRef {
  message: string;
  hint?: string;
  /** IdcError code (NO_MANIFEST, BAD_CONFIG …), or INTERNAL for a bug. */
  code: string;
  /** A bug rather than a problem with the input; the log has the details. */
  internal: boolean;
  /** Training: the run it was working on (JOB_CRASHED leaves it resumable). */
  runId?: string;
  cv?: CvJobInfo;
}

export interface JobCancelledParams extends JobRef {
  message: string;
  /** Rerunning continues where it stopped (training: the run id to resume). */
  resumable: boolean;
  runId?: string;
  /** It was cancelled before it started. */
  wasQueued: boolean;
  /** Cross-validation: running it again with these resumes it. */
  cv?: CvJobInfo;
}

export interface StatusParams {
  state: 'idle' | 'running';
  running?: JobRef;
  queued: JobRef[];
  /** The backend the last TF.js job used, else the configured engine.backend. */
  backend: string;
}

export interface StopJobParams {
  /** Default: the running job. */
  jobId?: string;
  /** Also drop every queued job. */
  all?: boolean;
}

export interface StopJobResult {
  stopped: JobRef[];
}

// ------------------------------------------------------------------------------------- workspace

export interface EvaluationInfo {
  /** Run id, or the model's folder name for an outside model. */
  model: string;
  split: EvalSplit;
  dir: string;
  metrics: string;
  slideMaps: string[];
}

export interface WorkspaceInfoParams {
  folder?: string;
}

export interface WorkspaceInfo {
  folder: string;
  /** Absent when the folder has no idc.config.json (defaults apply). */
  configFile?: string;
  /** Set when idc.config.json cannot be used: one line per problem. */
  configProblems?: string[];
  archive: string;
  archiveExists: boolean;
  outputDir: string;
  manifest?: string;
  organizeReport?: string;
  split?: string;
  runs: RunInfo[];
  evaluations: EvaluationInfo[];
  report?: string;
  backend: BackendName;
  synthPatients: number;
}

export interface ConfigEditParams {
  /** Current text of idc.config.json ('' when it does not exist yet). */
  text: string;
  /** e.g. ['engine', 'backend']. */
  path: (string | number)[];
  value: unknown;
}

export interface ConfigEditResult {
  edits: TextEdit[];
}

/** Select Backend's choices: the TF.js backends, and the torch engine with the folder's or VS Code's Python. */
export interface BackendList {
  probes: BackendProbe[];
  /** What auto would train with here, when known without a timing run. */
  auto?: string;
  torch?: TorchOption;
}

/** Check GPU Setup reads the folder's config (engine.python, batch size) and VS Code's Python interpreter. */
export type CheckGpuParams = JobTarget;

/** Machine-level settings, sent in initializationOptions and workspace/didChangeConfiguration. */
export interface ServerSettings {
  /** engine.backend for configs that do not set it. */
  defaultBackend?: BackendName;
}

// ------------------------------------------------------------------------------------- messages

// client -> server
export const runJob = new RequestType<JobRequest, RunJobResult, void>('idc/runJob');
export const stopJob = new RequestType<StopJobParams, StopJobResult, void>('idc/stopJob');
export const getStatus = new RequestType0<StatusParams, void>('idc/getStatus');
export const checkGpu = new RequestType<CheckGpuParams | undefined, { report: string }, void>('idc/checkGpu');
export const listBackends = new RequestType<CheckGpuParams | undefined, BackendList, void>('idc/listBackends');
export const workspaceInfo = new RequestType<WorkspaceInfoParams, WorkspaceInfo, void>('idc/workspaceInfo');
export const configEdit = new RequestType<ConfigEditParams, ConfigEditResult, void>('idc/configEdit');

// server -> client
export const jobStarted = new NotificationType<JobStartedParams>('idc/jobStarted');
export const jobProgress = new NotificationType<JobProgressParams>('idc/jobProgress');
export const epochMetrics = new NotificationType<EpochMetricsParams>('idc/epochMetrics');
export const jobWarning = new NotificationType<JobWarningParams>('idc/jobWarning');
export const jobFinished = new NotificationType<JobFinishedParams>('idc/jobFinished');
export const jobFailed = new NotificationType<JobFailedParams>('idc/jobFailed');
export const jobCancelled = new NotificationType<JobCancelledParams>('idc/jobCancelled');
export const status = new NotificationType<StatusParams>('idc/status');

export const JOB_TITLES: Record<JobKind, string> = {
  organize: 'Organize raw archive',
  split: 'Split by patient',
  train: 'Train model',
  resume: 'Resume training',
  evaluate: 'Evaluate model',
  report: 'Export report',
  synth: 'Generate synthetic dataset',
  predict: 'Score patches',
  gradcam: 'Grad-CAM overlays',
  cv: 'Cross-validate by patient',
};

/** Diagnostic codes of idc.config.json (the `code` of each published diagnostic). */
export const DIAGNOSTIC_SOURCE = 'idc';
export type ConfigDiagnosticCode = 'syntax' | 'schema' | 'archive-missing' | 'output-in-archive' | 'backend-unavailable';
