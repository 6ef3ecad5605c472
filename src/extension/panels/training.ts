import * as vscode from 'vscode';
import type * as W from '../../protocol/webview';
import * as P from '../../protocol/protocol';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildTrainingView, listCvSummaries, listRunSummaries, newestOpenRun, runHistory, runsDir } from '../../core/views/training';
import type { JobEvent } from '../jobs';
import { IdcPanel, type PanelHandlers, type PanelHost } from './panel';

/** Batch progress reaches the page at most this often (the server sends up to 5 a second). */
const BATCH_INTERVAL_MS = 250;

/** Cross-validation trains its folds as ordinary runs: their curves follow live too. */
const isTraining = (kind: P.JobKind) => P.TRAINING_KINDS.includes(kind);

/**
 * Training curves of one run, live while it trains: forwards the language server's epoch and
 * (throttled) batch notifications of training jobs, and stops or resumes the run.
 */
export class TrainingPanel extends IdcPanel<'training'> {
  /** The training job running now, and the run it trains once a notification has said. */
  private active: { jobId: string; kind: P.JobKind; runId?: string } | undefined;
  private lastBatch = 0;
  private pendingBatch: W.PanelEvents['training']['batch'] | undefined;
  private batchTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(panel: vscode.WebviewPanel, host: PanelHost, state: W.PanelState, info: P.WorkspaceInfo) {
    super('training', panel, host, state, info);
    // Opened while a job trains: the tracker knows the job but not yet its run.
    const running = host.idc.tracker.current.running;
    if (running && isTraining(running.kind)) this.active = { jobId: running.jobId, kind: running.kind };
    this.onDidDispose(() => { if (this.batchTimer) clearTimeout(this.batchTimer); });
  }

  private get outputDir(): string {
    return this.info.outputDir;
  }

  /** Whether the running training job is writing this run. */
  private isRunning(runId: string): boolean {
    if (!this.active) return false;
    if (this.active.runId) return this.active.runId === runId;
    // Before its first training progress the job has not said which run. A resume continues the
    // unfinished run written last; a new training's run may not exist yet (its progress will say).
    return this.active.kind === 'resume' && newestOpenRun(this.outputDir) === runId;
  }

  protected handlers(): PanelHandlers<'training'> {
    return {
      load: ({ runId, cv }) => {
        let id = runId ?? (cv ? undefined : this.state.runId);
        // The panel's run was deleted since: show the newest instead.
        if (!runId && id && !existsSync(join(runsDir(this.outputDir), id, 'run.json'))) id = undefined;
        const view = buildTrainingView(this.outputDir, { runId: id, cv, running: (r) => this.isRunning(r) });
        if (view) this.state = { ...this.state, runId: view.run.id };
        return view;
      },
      runs: () => listRunSummaries(this.outputDir),
      cvs: () => listCvSummaries(this.outputDir),
      compare: ({ runId }) => runHistory(this.outputDir, runId),
      stop: async () => {
        const shown = this.state.runId;
        if (!this.active || !shown || !this.isRunning(shown)) throw new Error(shown ? `Run ${shown} is not training now.` : 'No run is training now.');
        await this.host.idc.request(P.stopJob, { jobId: this.active.jobId });
      },
      resume: async ({ runId }) => {
        const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(this.folder));
        await vscode.commands.executeCommand('idc.resume', runId, folder);
      },
    };
  }

  override onJobEvent(e: JobEvent): void {
    const p = e.params;
    if (!isTraining(p.kind)) return;
    switch (e.type) {
      case 'started':
        this.active = { jobId: p.jobId, kind: p.kind, runId: e.params.runId };
        this.post('job', { runId: e.params.runId, state: 'running' });
        break;
      case 'progress': {
        const q = e.params;
        const runId = q.runId ?? this.active?.runId;
        if (!this.active || this.active.jobId !== q.jobId) this.active = { jobId: q.jobId, kind: q.kind, runId };
        if (q.runId && this.active.runId !== q.runId) {
          this.active.runId = q.runId;
          // The page learns which run trains (a new run's id is not known when its job starts).
          this.post('job', { runId: q.runId, state: 'running' });
        }
        if (!runId || q.epoch === undefined || q.epochs === undefined) break;
        const validate = q.phase === 'train.validate';
        if (!validate && q.phase !== 'train.epoch') break;
        this.queueBatch({
          runId, epoch: q.epoch, epochs: q.epochs,
          phase: validate ? 'validate' : 'train',
          step: validate ? q.done : q.step ?? 0,
          steps: validate ? q.total ?? 0 : q.steps ?? 0,
          loss: q.loss, imagesPerSecond: q.imagesPerSecond, etaSeconds: q.etaSeconds,
        });
        break;
      }
      case 'epoch':
        if (!this.active || this.active.jobId !== p.jobId) this.active = { jobId: p.jobId, kind: p.kind };
        this.active.runId = e.params.runId;
        // The epoch's checkpoint and history line are written: drop a batch update that would show the old epoch.
        this.pendingBatch = undefined;
        this.post('epoch', { runId: e.params.runId, epoch: e.params.log, epochs: e.params.epochs });
        break;
      case 'finished': case 'failed': case 'cancelled': {
        const runId = e.params.runId ?? (this.active?.jobId === p.jobId ? this.active.runId : undefined);
        if (this.active?.jobId === p.jobId) this.active = undefined;
        this.pendingBatch = undefined;
        const message = e.type === 'finished' ? e.params.summary.split('\n')[0] : e.params.message;
        this.post('job', { runId, state: e.type, message });
        break;
      }
    }
  }

  /** Sends at most one batch update per BATCH_INTERVAL_MS, the newest one last. */
  private queueBatch(b: W.PanelEvents['training']['batch']): void {
    this.pendingBatch = b;
    if (this.batchTimer) return;
    const wait = Math.max(0, this.lastBatch + BATCH_INTERVAL_MS - Date.now());
    this.batchTimer = setTimeout(() => {
      this.batchTimer = undefined;
      if (!this.pendingBatch) return;
      this.lastBatch = Date.now();
      this.post('batch', this.pendingBatch);
      this.pendingBatch = undefined;
    }, wait);
  }
}
