import * as vscode from 'vscode';
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import {
  CloseAction, LanguageClient, State, TransportKind,
  type ErrorHandler, type LanguageClientOptions, type NodeModule, type ServerOptions,
} from 'vscode-languageclient/node';
import type { RequestType, RequestType0 } from 'vscode-languageserver-protocol';
import * as P from '../protocol/protocol';
import { clientChannel } from './log';
import { JobTracker } from './jobs';
import { NotificationProgressFeature } from './progress';
import { restrictedModeMessage } from './command-ids';

/** Requests that start a process running what idc.config.json names (engine.python): trusted workspaces only. */
const STARTS_PROCESS = new Set([P.runJob.method, P.checkGpu.method, P.listBackends.method]);

/** Starts dist/server.js and gives typed access to it; jobs never run in the extension host. */
export class IdcClient implements vscode.Disposable {
  readonly client: LanguageClient;
  private readonly disposables: vscode.Disposable[] = [];
  private crashed = false;
  private started: Promise<void> | undefined;

  constructor(private readonly context: vscode.ExtensionContext, private readonly log: vscode.LogOutputChannel, readonly tracker: JobTracker) {
    const module = context.asAbsolutePath('dist/server.js');
    const run: NodeModule = { module, transport: TransportKind.ipc, runtime: this.runtime() };
    const serverOptions: ServerOptions = { run, debug: { ...run, options: { execArgv: ['--nolazy', '--inspect=6019'] } } };
    let defaultHandler: ErrorHandler | undefined;
    const errorHandler: ErrorHandler = {
      error: (error, message, count) => defaultHandler!.error(error, message, count),
      closed: async () => {
        // The client's default policy: restart up to 4 times within 3 minutes.
        const result = await defaultHandler!.closed();
        const lost = this.tracker.lostJob();
        this.tracker.setServer('down');
        if (result.action === CloseAction.Restart) {
          this.crashed = true;
          this.log.warn(`The IDC language server stopped unexpectedly${lost ? ` while running ${lost.title}` : ''}; restarting it.`);
          void vscode.window.showWarningMessage(`IDC: the language server stopped unexpectedly${lost ? ` during "${lost.title}"` : ''} and was restarted.`, 'Show Log')
            .then((p) => p && this.log.show(true));
          return { ...result, handled: true };
        }
        this.log.error(result.message ?? 'The IDC language server stopped and will not be restarted.');
        return result;
      },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file', pattern: '**/idc.config.json' }],
      synchronize: {
        configurationSection: 'idc',
        fileEvents: vscode.workspace.createFileSystemWatcher('**/idc.config.json'),
      },
      initializationOptions: { defaultBackend: this.defaultBackend() } satisfies P.ServerSettings,
      outputChannel: clientChannel(log),
      errorHandler,
    };
    this.client = new LanguageClient('idc', 'IDC Inspector', serverOptions, clientOptions);
    defaultHandler = this.client.createDefaultErrorHandler();
    this.client.registerFeature(new NotificationProgressFeature(this.client));
    this.disposables.push(...tracker.attach(this.client));
    this.disposables.push(this.client.onDidChangeState((e) => {
      if (e.newState === State.Running) {
        this.tracker.setServer('up');
        void this.client.sendRequest(P.getStatus).then((s) => this.tracker.setStatus(s), () => {});
        if (this.crashed) { this.crashed = false; void this.offerResume(); }
      } else if (e.newState === State.Starting) this.tracker.setServer('starting');
      else if (e.newState === State.Stopped) this.tracker.setServer('down');
    }));
  }

  /** A user-chosen Node for the server (and so its job processes); VS Code's own when unset or missing. */
  private runtime(): string | undefined {
    const value = vscode.workspace.getConfiguration('idc').get<string>('server.runtime', '').trim();
    if (!value) return undefined;
    if (isAbsolute(value) && !existsSync(value)) {
      void vscode.window.showErrorMessage(`IDC: idc.server.runtime is ${value}, which does not exist; using VS Code's own Node.js instead.`, 'Open Settings')
        .then((p) => p && vscode.commands.executeCommand('workbench.action.openSettings', 'idc.server.runtime'));
      return undefined;
    }
    return value;
  }

  private defaultBackend(): P.BackendName | undefined {
    const v = vscode.workspace.getConfiguration('idc').get<string>('defaultBackend', 'auto');
    return v === 'auto' ? undefined : (v as P.BackendName);
  }

  start(): Promise<void> {
    this.started ??= this.client.start().catch((e: unknown) => {
      this.started = undefined;
      this.log.error(`The IDC language server failed to start: ${(e as Error)?.message ?? String(e)}`);
      throw new Error(`the IDC language server failed to start (${(e as Error)?.message ?? String(e)}). Check the idc.server.runtime setting and the IDC log.`);
    });
    return this.started;
  }

  async request<R>(type: RequestType0<R, void>): Promise<R>;
  async request<Q, R>(type: RequestType<Q, R, void>, params: Q): Promise<R>;
  async request(type: RequestType0<unknown, void> | RequestType<unknown, unknown, void>, params?: unknown): Promise<unknown> {
    // Every way to a job or an interpreter probe passes here (commands, panel buttons, Grad-CAM on demand).
    if (STARTS_PROCESS.has(type.method) && !vscode.workspace.isTrusted) throw new Error(restrictedModeMessage('Starting a job').replace(/^IDC: /, ''));
    await this.start();
    return params === undefined ? this.client.sendRequest(type as RequestType0<unknown, void>) : this.client.sendRequest(type as RequestType<unknown, unknown, void>, params);
  }

  async restart(): Promise<void> {
    if (this.client.state === State.Stopped) {
      // Gave up after repeated crashes, or never started: start afresh.
      this.started = undefined;
      return this.start();
    }
    await this.client.restart();
  }

  /** After a crash: a training run left "running" was interrupted; offer to continue it (one the user stopped, or that failed, says so in run.json and is not offered). */
  private async offerResume(): Promise<void> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    for (const f of folders) {
      let info: P.WorkspaceInfo;
      try { info = await this.request(P.workspaceInfo, { folder: f.uri.fsPath }); } catch { continue; }
      const open = info.runs.filter((r) => r.status === 'running');
      if (!open.length) continue;
      const run = open[open.length - 1];
      const pick = await vscode.window.showWarningMessage(`IDC: training run ${run.id} was interrupted when the language server stopped. Resume it from its last finished epoch?`, 'Resume Training');
      if (pick) await vscode.commands.executeCommand('idc.resume', run.id, f);
      return;
    }
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    void this.client.dispose(2000).catch(() => {});
  }
}
