/** Starts job processes (this bundle with --idc-job-host) and runs jobs and probes in them. */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, type MessageConnection, type RequestType } from 'vscode-languageserver-protocol/node';
import type { ProgressEvent } from '../core/progress';
import type { TrainEvent } from '../core/train/train';
import * as H from '../protocol/job-host';
import type { JobRequest, ServerSettings } from '../protocol/protocol';

/** After a cancel, how long a job may take to reach its next check before it is killed (like kill -9, which the core survives). */
export const HARD_STOP_MS = 30_000;

export interface HostEvents {
  progress(e: ProgressEvent): void;
  train(e: TrainEvent): void;
  cv(e: H.HostCvEvent): void;
  backend(name: string): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
}

class HostExited extends Error {
  constructor(readonly code: number | null, readonly signal: NodeJS.Signals | null, readonly startError?: Error) {
    super(startError ? `could not start: ${startError.message}` : signal ? `killed by ${signal}` : `exit code ${code}`);
  }
}

interface Host {
  child: ChildProcess;
  conn: MessageConnection;
  /** Rejects with HostExited when the process ends first. */
  request<P, R>(type: RequestType<P, R, void>, params: P): Promise<R>;
  dispose(): void;
}

function startHost(on: Partial<HostEvents> & Pick<HostEvents, 'log'>): Host {
  // The job process runs on this server's Node (idc.server.runtime), without a debugger port clash.
  const child = fork(__filename, [H.JOB_HOST_ARG], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: process.execArgv.filter((a) => !a.startsWith('--inspect')) });
  createInterface({ input: child.stdout! }).on('line', (l) => on.log('info', l));
  createInterface({ input: child.stderr! }).on('line', (l) => on.log('warn', l));
  const exited = new Promise<HostExited>((res) => {
    child.once('exit', (code, signal) => res(new HostExited(code, signal)));
    child.once('error', (e) => res(new HostExited(null, null, e)));
  });
  const conn = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
  conn.onNotification(H.hostProgress, (e) => on.progress?.(e));
  conn.onNotification(H.hostTrainEvent, (e) => on.train?.(e));
  conn.onNotification(H.hostCvEvent, (e) => on.cv?.(e));
  conn.onNotification(H.hostBackend, (e) => on.backend?.(e.name));
  conn.onNotification(H.hostLog, (e) => on.log(e.level, e.message));
  conn.listen();
  return {
    child, conn,
    request: (type, params) => Promise.race([conn.sendRequest(type, params), exited.then((x) => { throw x; })]),
    dispose() {
      conn.dispose();
      if (child.connected) child.disconnect();
      // It exits on disconnect; a job that ignores that is not worth waiting for.
      setTimeout(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); }, 5000).unref();
    },
  };
}

/** Runs one request in a fresh job process; the result says how it ended, whatever happened. */
export async function runJobInProcess(job: { jobId: string; title: string; request: JobRequest; controller: AbortController }, folder: string, settings: ServerSettings, on: HostEvents): Promise<H.HostRunResult> {
  const cancelFile = join(tmpdir(), `idc-cancel-${randomUUID()}`);
  const host = startHost(on);
  let forced = false;
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = (): void => {
    try { writeFileSync(cancelFile, ''); } catch { /* the message below may still get there */ }
    void host.conn.sendNotification(H.hostCancel, {}).catch(() => {});
    killTimer = setTimeout(() => { forced = true; host.child.kill('SIGKILL'); }, HARD_STOP_MS);
  };
  if (job.controller.signal.aborted) onAbort();
  else job.controller.signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await host.request(H.hostRunJob, { request: job.request, folder, settings, cancelFile });
  } catch (e) {
    if (forced) return { ok: false, error: { kind: 'cancelled', message: `It did not stop within ${HARD_STOP_MS / 1000} s and was ended.`, code: 'CANCELLED' } };
    if (job.controller.signal.aborted) return { ok: false, error: { kind: 'cancelled', message: 'Cancelled.', code: 'CANCELLED' } };
    const how = e instanceof HostExited ? e.message : String((e as Error)?.message ?? e);
    return {
      ok: false,
      error: {
        kind: 'internal', code: 'JOB_CRASHED', message: `The ${job.title} job process stopped unexpectedly (${how}).`,
        hint: 'Run it again (training resumes from its last finished epoch). The IDC log has the process output; if it keeps happening, please report it.',
      },
    };
  } finally {
    clearTimeout(killTimer);
    job.controller.signal.removeEventListener('abort', onAbort);
    rmSync(cancelFile, { force: true });
    host.dispose();
  }
}

/** Runs a short request (a probe, the GPU report) in its own job process, beside any running job. */
export async function askHost<P, R>(type: RequestType<P, R, void>, params: P, log: HostEvents['log']): Promise<R> {
  const host = startHost({ log });
  try {
    return await host.request(type, params);
  } finally {
    host.dispose();
  }
}
