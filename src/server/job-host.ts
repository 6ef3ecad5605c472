/** The job process: runs one job (or a backend probe) for the language server, then exits. */
import { existsSync } from 'node:fs';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter } from 'vscode-languageserver-protocol/node';
import { resolveConfigPath } from '../core/config';
import { isIdcError } from '../core/errors';
import { setLockCommand } from '../core/run-lock';
import { JOB_TITLES } from '../protocol/protocol';
import type { TrainEvent } from '../core/train/train';
import * as H from '../protocol/job-host';
import { jobOverrides, loadJobConfig, runJobRequest, type JobContext } from './runners';

export function runJobHost(): void {
  const conn = createMessageConnection(new IPCMessageReader(process), new IPCMessageWriter(process));
  let controller: AbortController | undefined;
  conn.onNotification(H.hostCancel, () => controller?.abort());

  conn.onRequest(H.hostRunJob, async (p): Promise<H.HostRunResult> => {
    controller = new AbortController();
    const signal = watchedSignal(controller, p.cancelFile);
    let lastBatch = 0;
    try {
      const loaded = await loadJobConfig(p.folder, jobOverrides(p.request), p.settings);
      const ctx: JobContext = {
        folder: p.folder, loaded, config: loaded.config, outputDir: resolveConfigPath(loaded, loaded.config.paths.output), signal, editorPython: p.request.python,
        onProgress: (e) => void conn.sendNotification(H.hostProgress, e),
        onTrainEvent: (e: TrainEvent) => {
          // Batches come many per second; the server only needs a recent one for its ETA.
          if (e.type === 'batch') {
            const now = Date.now();
            if (now - lastBatch < 200 && e.batch !== e.batches) return;
            lastBatch = now;
          }
          void conn.sendNotification(H.hostTrainEvent, e);
        },
        onCvEvent: (e) => void conn.sendNotification(H.hostCvEvent, e),
        log: (message) => void conn.sendNotification(H.hostLog, { level: 'info', message }),
        setBackend: (name) => void conn.sendNotification(H.hostBackend, { name }),
      };
      // Run locks name their owner; this process's argv would only say "server.js --idc-job-host".
      setLockCommand(`IDC: ${JOB_TITLES[p.request.kind]} (VS Code, ${p.folder})`);
      return { ok: true, outcome: await runJobRequest(p.request, ctx) };
    } catch (e) {
      return { ok: false, error: describeError(e, signal.aborted) };
    }
  });

  conn.onRequest(H.hostProbeBackends, async ({ names }) => {
    const m = await import('../core/engine/backends');
    if (!names) return m.probeBackends();
    const out = [];
    for (const n of names) out.push(await m.probeBackend(n));
    return out;
  });

  conn.onRequest(H.hostProbeTorch, async ({ folder, python }) => {
    const config = folder ? await loadJobConfig(folder, {}, {}).then((l) => l.config, () => undefined) : undefined;
    return (await import('../core/engine/backends')).torchOption({ python: config?.engine.python, editorPython: python });
  });

  conn.onRequest(H.hostGpuReport, async ({ folder, python }) => {
    // The folder's engine.python and training settings; its defaults when it has no usable config.
    const config = folder ? await loadJobConfig(folder, {}, {}).then((l) => l.config, () => undefined) : undefined;
    return (await import('../core/engine/backends')).gpuSetupReport({ config, python: config?.engine.python, editorPython: python });
  });

  // The server went away: nothing will read our results.
  process.on('disconnect', () => process.exit(0));
  conn.listen();
}

/**
 * The signal the core checks between batches. The core reads `aborted` synchronously, and a
 * busy job's event loop can't deliver the server's cancel message, so reading `aborted` also
 * looks for the cancel file (at most every 100 ms) and for the server having died.
 */
function watchedSignal(controller: AbortController, cancelFile: string): AbortSignal {
  const signal = controller.signal;
  const realAborted = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;
  const parent = process.ppid;
  let last = 0;
  Object.defineProperty(signal, 'aborted', {
    configurable: true,
    get(this: AbortSignal): boolean {
      if (realAborted.call(this)) return true;
      const now = Date.now();
      if (now - last < 100) return false;
      last = now;
      if (existsSync(cancelFile) || process.ppid !== parent) {
        controller.abort();
        return true;
      }
      return false;
    },
  });
  return signal;
}

function describeError(e: unknown, aborted: boolean): H.HostError {
  if (aborted || (isIdcError(e) && e.code === 'CANCELLED')) return { kind: 'cancelled', message: 'Cancelled.', code: 'CANCELLED' };
  if (isIdcError(e)) return { kind: 'user', message: e.message, hint: e.hint, code: e.code };
  const errno = e as NodeJS.ErrnoException;
  if (typeof errno?.code === 'string' && /^E[A-Z]+$/.test(errno.code) && errno.syscall) {
    // A file-system failure the core did not anticipate: the user's disk, not a bug.
    const hint = errno.code === 'ENOSPC' ? 'Free some disk space and run it again.' : 'Check that the path exists and that you may read and write it.';
    return { kind: 'user', message: errno.message, hint, code: errno.code };
  }
  return { kind: 'internal', message: String((e as Error)?.message ?? e).split('\n')[0], code: 'INTERNAL', stack: (e as Error)?.stack ?? String(e) };
}
