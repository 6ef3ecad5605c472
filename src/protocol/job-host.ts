/**
 * Messages between the language server and its job process (dist/server.js --idc-job-host), a
 * child that runs one job, or one backend probe, with TF.js: the server itself never loads it, so
 * it stays responsive while a job keeps its own event loop busy, and a crash there ends one job.
 */
import { NotificationType, RequestType } from 'vscode-languageserver-protocol';
import type { ProgressEvent } from '../core/progress';
import type { TrainEvent } from '../core/train/train';
import type { CvEvent } from '../core/cv/cv';
import type { BackendProbe, ConcreteBackend, TorchOption } from '../core/engine/backends';
import type { CvJobInfo, JobOutput, JobRequest, ServerSettings } from './protocol';

/** A cross-validation's fold and warning events (its training events go as hostTrainEvent), with the experiment they belong to. */
export type HostCvEvent = Exclude<CvEvent, { type: 'train' }> & { cv: CvJobInfo };

export const JOB_HOST_ARG = '--idc-job-host';

export interface HostRunParams {
  request: JobRequest;
  folder: string;
  settings: ServerSettings;
  /**
   * A file whose appearance means "cancel". A job can keep its event loop busy for a long time
   * (training on one thread), so a message would wait; the job's AbortSignal checks this file.
   */
  cancelFile: string;
}

export interface JobOutcome {
  summary: string;
  outputs: JobOutput[];
  runId?: string;
  cv?: CvJobInfo;
}

export interface HostError {
  /** cancelled: the job stopped on request; user: an IdcError or a file-system error; internal: a bug. */
  kind: 'cancelled' | 'user' | 'internal';
  message: string;
  hint?: string;
  code: string;
  /** internal only, for the log. */
  stack?: string;
}

export type HostRunResult = { ok: true; outcome: JobOutcome } | { ok: false; error: HostError };

// server -> job process
export const hostRunJob = new RequestType<HostRunParams, HostRunResult, void>('idcHost/runJob');
export const hostProbeBackends = new RequestType<{ names?: ConcreteBackend[] }, BackendProbe[], void>('idcHost/probeBackends');
 /** The torch engine's setup with the folder's engine.python, else `python` (VS Code's), else python3 on PATH. */
export const hostProbeTorch = new RequestType<{ folder?: string; python?: string }, TorchOption, void>('idcHost/probeTorch');
export const hostGpuReport = new RequestType<{ folder?: string; python?: string }, string, void>('idcHost/gpuReport');
export const hostCancel = new NotificationType<Record<string, never>>('idcHost/cancel');

// job process -> server
export const hostProgress = new NotificationType<ProgressEvent>('idcHost/progress');
export const hostTrainEvent = new NotificationType<TrainEvent>('idcHost/trainEvent');
export const hostCvEvent = new NotificationType<HostCvEvent>('idcHost/cvEvent');
export const hostLog = new NotificationType<{ level: 'info' | 'warn' | 'error'; message: string }>('idcHost/log');
export const hostBackend = new NotificationType<{ name: string }>('idcHost/backend');
