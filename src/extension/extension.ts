import * as vscode from 'vscode';
import { defaultConfigText, CONFIG_FILE_NAME } from '../core/config';

/** Activation stays cheap: no TF.js, no dataset I/O; jobs will run in the IDC language server. */
export function activate(context: vscode.ExtensionContext): void {
  context.subscriptions.push(vscode.commands.registerCommand('idc.openConfig', openConfig));
}

export function deactivate(): void {}

/** Opens idc.config.json, creating it with the defaults first when the workspace has none. */
async function openConfig(): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) {
    const pick = await vscode.window.showErrorMessage('IDC: open a folder first; idc.config.json lives in the workspace.', 'Open Folder…');
    if (pick) await vscode.commands.executeCommand('vscode.openFolder');
    return;
  }
  const uri = vscode.Uri.joinPath(folder.uri, CONFIG_FILE_NAME);
  try {
    await vscode.workspace.fs.stat(uri);
  } catch {
    await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(defaultConfigText()));
  }
  await vscode.window.showTextDocument(uri);
}
