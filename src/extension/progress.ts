import * as vscode from 'vscode';
import type { FeatureState, LanguageClient, StaticFeature } from 'vscode-languageclient/node';
import {
  WorkDoneProgress, WorkDoneProgressCancelNotification, WorkDoneProgressCreateRequest,
  type ClientCapabilities, type WorkDoneProgressBegin, type WorkDoneProgressReport, type ProgressToken,
} from 'vscode-languageserver-protocol';

/**
 * Shows the server's LSP work-done progress as a notification with a Cancel button.
 * vscode-languageclient shows server-initiated progress in the status bar only, where it cannot
 * be cancelled; jobs take minutes and users expect VS Code's own cancellable notification.
 * A static feature registered after the built-in ones: features initialize in registration order
 * on every (re)start, so this handler replaces the built-in one each time.
 */
export class NotificationProgressFeature implements StaticFeature {
  private handler: vscode.Disposable | undefined;

  constructor(private readonly client: LanguageClient) {}

  getState(): FeatureState {
    return { kind: 'static' };
  }

  fillClientCapabilities(capabilities: ClientCapabilities): void {
    (capabilities.window ??= {}).workDoneProgress = true;
  }

  initialize(): void {
    this.handler?.dispose();
    this.handler = this.client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
      new NotificationProgress(this.client, token);
    });
  }

  clear(): void {
    this.handler?.dispose();
    this.handler = undefined;
  }
}

class NotificationProgress {
  private readonly listener: vscode.Disposable;
  private progress: vscode.Progress<{ message?: string; increment?: number }> | undefined;
  private reported = 0;
  private finish: (() => void) | undefined;
  private ended = false;
  private pending: WorkDoneProgressReport[] = [];

  constructor(private readonly client: LanguageClient, private readonly token: ProgressToken) {
    this.listener = client.onProgress(WorkDoneProgress.type, token, (v) => {
      if (v.kind === 'begin') this.begin(v);
      else if (v.kind === 'report') this.report(v);
      else this.end();
    });
  }

  private begin(b: WorkDoneProgressBegin): void {
    void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: b.title, cancellable: b.cancellable ?? false }, (progress, cancel) => {
      this.progress = progress;
      cancel.onCancellationRequested(() => void this.client.sendNotification(WorkDoneProgressCancelNotification.type, { token: this.token }));
      this.report(b);
      for (const p of this.pending.splice(0)) this.report(p);
      return new Promise<void>((resolve) => {
        this.finish = resolve;
        if (this.ended) resolve();
      });
    });
  }

  private report(r: WorkDoneProgressReport | WorkDoneProgressBegin): void {
    if (!this.progress) {
      if (r.kind === 'report') this.pending.push(r);
      return;
    }
    const increment = typeof r.percentage === 'number' ? Math.max(0, Math.min(100, r.percentage) - this.reported) : undefined;
    if (increment) this.reported += increment;
    this.progress.report({ message: r.message, increment });
  }

  private end(): void {
    this.ended = true;
    this.listener.dispose();
    this.finish?.();
  }
}
