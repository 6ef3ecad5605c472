import * as vscode from 'vscode';
import { IdcClient } from './client';
import { registerCommands } from './commands';
import { JobTracker } from './jobs';
import { Panels } from './panels';
import { Sidebar } from './sidebar';

let idc: IdcClient | undefined;

/**
 * Activation stays cheap: no TF.js and no dataset I/O here. Jobs, config checks and probes run in
 * the IDC language server (dist/server.js) and its job processes.
 */
export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('IDC', { log: true });
  const tracker = new JobTracker(log);
  idc = new IdcClient(context, log, tracker);
  const panels = new Panels(context, log, idc);
  const sidebar = new Sidebar(tracker, log);
  context.subscriptions.push(log, tracker, idc, panels, sidebar);
  registerCommands(context, idc, log, panels, sidebar);
  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration(async (e) => {
    if (!e.affectsConfiguration('idc.server.runtime')) return;
    // The client reads the runtime when it is made, so the window reloads to use the new one.
    const pick = await vscode.window.showInformationMessage('IDC: reload the window to start the language server with the new idc.server.runtime?', 'Reload Window');
    if (pick) await vscode.commands.executeCommand('workbench.action.reloadWindow');
  }));
  idc.start().catch(async (e: unknown) => {
    const pick = await vscode.window.showErrorMessage(`IDC: ${(e as Error).message}`, 'Open Settings', 'Show Log');
    if (pick === 'Open Settings') await vscode.commands.executeCommand('workbench.action.openSettings', 'idc.server');
    else if (pick) log.show(true);
  });
}

export async function deactivate(): Promise<void> {
  await idc?.client.stop(2000).catch(() => {});
}
