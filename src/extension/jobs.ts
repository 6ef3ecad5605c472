import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import * as P from '../protocol/protocol';
import { liveTraining, statusText, type ServerState } from './status-text';

export { formatEta, statusText, type ServerState } from './status-text';

/** Next steps offered when a job ends: button label -> command (with its argument). */
type Action = { label: string; run: () => unknown };

/** A job notification, re-published for the panels (the client keeps one handler per method). */
export type JobEvent =
  | { type: 'started'; params: P.JobStartedParams }
  | { type: 'progress'; params: P.JobProgressParams }
  | { type: 'epoch'; params: P.EpochMetricsParams }
  | { type: 'finished'; params: P.JobFinishedParams }
  | { type: 'failed'; params: P.JobFailedParams }
  | { type: 'cancelled'; params: P.JobCancelledParams };

/** Follows the server's job notifications: status bar, the messages when jobs end, what is pending. */
export class JobTracker implements vscode.Disposable {
  private readonly events = new vscode.EventEmitter<JobEvent>();
  /** Every job notification, after the tracker has handled it. */
  readonly onJobEvent = this.events.event;
  private readonly statusEvents = new vscode.EventEmitter<void>();
  /** The queue or the server changed (a job ended, one was queued, the server restarted). */
  readonly onDidChangeStatus = this.statusEvents.event;
  private status: P.StatusParams = { state: 'idle', queued: [], backend: 'auto' };
  private progress: P.JobProgressParams | undefined;
  private lastEpoch: P.EpochMetricsParams | undefined;
  private server: ServerState = 'starting';
  private readonly item = vscode.window.createStatusBarItem('idc.status', vscode.StatusBarAlignment.Left, 10);

  constructor(private readonly log: vscode.LogOutputChannel) {
    this.item.name = 'IDC Inspector';
    this.item.command = 'idc.showLog';
    this.render();
    this.item.show();
  }

  attach(client: LanguageClient): vscode.Disposable[] {
    return [
      client.onNotification(P.status, (s) => this.setStatus(s)),
      client.onNotification(P.jobStarted, (j) => { this.progress = undefined; this.lastEpoch = undefined; this.status = { ...this.status, state: 'running', running: j, queued: this.status.queued.filter((q) => q.jobId !== j.jobId) }; this.render(); this.events.fire({ type: 'started', params: j }); }),
      client.onNotification(P.jobProgress, (p) => { this.progress = p; this.render(); this.events.fire({ type: 'progress', params: p }); }),
      client.onNotification(P.epochMetrics, (m) => { this.lastEpoch = m; this.render(); this.events.fire({ type: 'epoch', params: m }); }),
      client.onNotification(P.jobWarning, (w) => { void this.offer('warn', `IDC: ${w.runId ? `run ${w.runId}: ` : ''}${w.message}`, w.runId ? [{ label: 'Show Training', run: () => vscode.commands.executeCommand('idc.showTraining', w.runId) }] : []); }),
      client.onNotification(P.jobFinished, (j) => { this.events.fire({ type: 'finished', params: j }); void this.finished(j); }),
      client.onNotification(P.jobFailed, (j) => { this.events.fire({ type: 'failed', params: j }); void this.failed(j); }),
      client.onNotification(P.jobCancelled, (j) => { this.events.fire({ type: 'cancelled', params: j }); void this.cancelled(j); }),
    ];
  }

  /** Kinds running or waiting, so a command can accept a missing manifest that a queued organize will write. */
  pendingKinds(): Set<P.JobKind> {
    return new Set([...(this.status.running ? [this.status.running.kind] : []), ...this.status.queued.map((q) => q.kind)]);
  }

  get current(): P.StatusParams {
    return this.status;
  }

  /** The training running now (its run once its first training progress names it), for the Runs tree. */
  live(): ReturnType<typeof liveTraining> {
    return this.server === 'up' ? liveTraining(this.status, this.progress) : undefined;
  }

  /** The run the job now running trains (undefined before its first training progress). */
  runningRunId(): string | undefined {
    return this.live()?.runId;
  }

  setStatus(s: P.StatusParams): void {
    this.status = s;
    this.render();
    this.statusEvents.fire();
  }

  setServer(state: ServerState): void {
    this.server = state;
    if (state !== 'up') { this.status = { ...this.status, state: 'idle', running: undefined, queued: [] }; this.progress = undefined; }
    this.render();
    this.statusEvents.fire();
  }

  /** The job that was running when the server went away, if any. */
  lostJob(): P.JobRef | undefined {
    return this.status.running;
  }

  private render(): void {
    this.item.text = statusText(this.status, this.progress, this.server);
    // A training's status reveals its run in the side bar, where its actions are; anything else shows the log.
    const training = this.live() !== undefined;
    this.item.command = this.server === 'down' ? 'idc.restartServer' : training ? 'idc.revealRun' : 'idc.showLog';
    const lines = [`Backend: ${this.status.backend}`];
    if (this.status.running) lines.push(`Running: ${this.status.running.title}${this.progress?.message ? ` (${this.progress.message})` : ''}`);
    if (this.lastEpoch) {
      const l = this.lastEpoch.log;
      lines.push(`Last epoch ${l.epoch + 1}: loss ${l.loss.toFixed(4)}, val_loss ${l.val_loss.toFixed(4)}, val_auc ${l.val_auc.toFixed(3)}`);
    }
    for (const q of this.status.queued) lines.push(`Queued: ${q.title}`);
    lines.push(this.server === 'down' ? 'Click to restart the IDC language server.' : training ? 'Click to show the run in the IDC side bar.' : 'Click to show the IDC log.');
    this.item.tooltip = lines.join('\n');
  }

  private async finished(j: P.JobFinishedParams): Promise<void> {
    const first = j.summary.split('\n').find((l) => l.trim()) ?? '';
    const output = (label: string) => j.outputs.find((o) => o.label === label)?.path;
    const cmd = (label: string, command: string, ...args: unknown[]): Action => ({ label, run: () => vscode.commands.executeCommand(command, ...args) });
    const open = (label: string, path: string | undefined): Action[] => (path ? [{ label, run: () => vscode.commands.executeCommand('vscode.open', vscode.Uri.file(path)) }] : []);
    const next: Record<P.JobKind, Action[]> = {
      organize: [cmd('Split by Patient', 'idc.split'), cmd('Show Dataset', 'idc.showDataset')],
      split: [cmd('Train Model', 'idc.train')],
      train: [cmd('Evaluate Model', 'idc.evaluate', j.runId), cmd('Show Training', 'idc.showTraining')],
      resume: [cmd('Evaluate Model', 'idc.evaluate', j.runId), cmd('Show Training', 'idc.showTraining')],
      evaluate: [cmd('Export Report', 'idc.exportReport'), cmd('Show Slide Map', 'idc.showSlideMap')],
      report: [cmd('Open Report', 'idc.showEvaluation')],
      synth: [cmd('Organize Raw Archive', 'idc.organize', output('Archive'))],
      predict: open('Open Predictions', output('Predictions')),
      gradcam: [],
      cv: [cmd('Show Training', 'idc.showTraining', j.runId), cmd('Show Evaluation', 'idc.showEvaluation', j.cv && `${j.cv.id}/test`), cmd('Export Report', 'idc.exportReport', j.cv?.id)],
    };
    // The gallery that asked shows the overlays; a message per page of tiles would be noise.
    if (j.kind === 'gradcam') return;
    await this.offer('info', `IDC: ${j.title} done in ${j.seconds.toFixed(1)} s. ${first}`, next[j.kind]);
  }

  private async failed(j: P.JobFailedParams): Promise<void> {
    const cmd = (label: string, command: string, ...args: unknown[]): Action => ({ label, run: () => vscode.commands.executeCommand(command, ...args) });
    const fixes: Action[] = [];
    const c = j.code;
    if (/^BAD_CONFIG|^CONFIG_/.test(c)) fixes.push(cmd('Open Config', 'idc.openConfig'));
    else if (c === 'NO_ARCHIVE' || c === 'BAD_ARCHIVE' || c === 'BAD_ZIP') fixes.push(cmd('Organize Raw Archive', 'idc.organize'), cmd('Generate Synthetic Dataset', 'idc.synth'));
    else if (/^(NO|STALE|EMPTY|BAD)_MANIFEST$/.test(c)) fixes.push(cmd('Organize Raw Archive', 'idc.organize'));
    else if (/^(NO|STALE|EMPTY|BAD)_SPLIT$|^SPLIT_OVERLAP$/.test(c)) fixes.push(cmd('Split by Patient', 'idc.split'));
    else if (c === 'NO_RUN' || c === 'NO_MODEL') fixes.push(cmd('Train Model', 'idc.train'));
    else if (c === 'NO_PREDICTIONS' || c === 'NOTHING_TO_REPORT') fixes.push(cmd('Evaluate Model', 'idc.evaluate'));
    else if (c === 'BACKEND_UNAVAILABLE' || c === 'WASM_INIT') fixes.push(cmd('Select Backend', 'idc.selectBackend'), cmd('Check GPU Setup', 'idc.checkGpu'));
    else if (c === 'JOB_CRASHED' && (j.kind === 'train' || j.kind === 'resume') && j.runId) fixes.push(cmd('Resume Training', 'idc.resume', j.runId));
    else if (c === 'JOB_CRASHED' && j.kind === 'cv') fixes.push(cmd('Resume Cross-Validation', 'idc.crossValidate', j.cv));
    const text = `IDC: ${j.title} failed: ${j.message}${j.hint ? ` ${j.hint}` : ''}`;
    await this.offer(j.internal ? 'error' : 'warn', text.replace(/\n\s*/g, ' '), fixes, true);
  }

  private async cancelled(j: P.JobCancelledParams): Promise<void> {
    if (j.wasQueued) return;
    const resume: Action[] = j.kind === 'cv' ? [{ label: 'Resume Cross-Validation', run: () => vscode.commands.executeCommand('idc.crossValidate', j.cv) }]
      : j.resumable && j.runId ? [{ label: 'Resume Training', run: () => vscode.commands.executeCommand('idc.resume', j.runId) }]
      : j.resumable && j.kind === 'organize' ? [{ label: 'Organize Again', run: () => vscode.commands.executeCommand('idc.organize') }] : [];
    await this.offer('info', `IDC: ${j.message}`, resume);
  }

  private async offer(kind: 'info' | 'warn' | 'error', text: string, actions: Action[], withLog = false): Promise<void> {
    const labels = [...actions.map((a) => a.label), ...(withLog ? ['Show Log'] : [])];
    const show = kind === 'error' ? vscode.window.showErrorMessage : kind === 'warn' ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
    const pick = await show(text, ...labels);
    if (pick === 'Show Log') this.log.show(true);
    else await actions.find((a) => a.label === pick)?.run();
  }

  dispose(): void {
    this.events.dispose();
    this.statusEvents.dispose();
    this.item.dispose();
  }
}
