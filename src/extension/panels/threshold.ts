import * as vscode from 'vscode';
import { join } from 'node:path';
import type * as W from '../../protocol/webview';
import * as P from '../../protocol/protocol';
import { CONFIG_FILE_NAME, defaultConfigText, parseJsonc } from '../../core/config';
import { buildThresholdView, readEvaluateSettings } from '../../core/views/threshold';
import type { IdcClient } from '../client';
import { IdcPanel, type PanelHandlers, type PanelHost } from './panel';

/**
 * Threshold explorer: ROC/PR curves with the operating points, a threshold slider, the live
 * confusion matrix and metrics (all computed in the page from the count table), pinning a
 * threshold and making it the working one (idc.config.json edits that keep comments).
 */
export class ThresholdPanel extends IdcPanel<'threshold'> {
  protected override readonly reloadAfter: readonly P.JobKind[] = ['evaluate', 'cv'];

  constructor(panel: vscode.WebviewPanel, host: PanelHost, state: W.PanelState, info: P.WorkspaceInfo) {
    super('threshold', panel, host, state, info);
  }

  protected handlers(): PanelHandlers<'threshold'> {
    return {
      load: async ({ evaluation }) => {
        const settings = await readEvaluateSettings(this.folder);
        const view = buildThresholdView(this.info.evaluations, { evaluation: evaluation ?? this.state.evaluation, settings });
        if (view) this.state = { ...this.state, evaluation: view.evaluation.id };
        return view;
      },
      pin: async ({ threshold, unpin }) => {
        const current = await configValue(this.folder, ['evaluate', 'pinnedThresholds']);
        const list = Array.isArray(current) ? current.filter((x): x is number => typeof x === 'number') : [];
        const next = unpin ? list.filter((x) => x !== threshold) : [...new Set([...list, threshold])].sort((a, b) => a - b);
        await editConfig(this.host.idc, this.folder, ['evaluate', 'pinnedThresholds'], next);
        return { pinned: next };
      },
      setWorking: async ({ threshold }) => {
        await editConfig(this.host.idc, this.folder, ['evaluate', 'threshold'], threshold);
      },
    };
  }
}

/** The value at `path` in the folder's idc.config.json as the editor has it now (unsaved edits included); undefined when unset or missing. */
export async function configValue(folder: string, path: string[]): Promise<unknown> {
  const uri = vscode.Uri.file(join(folder, CONFIG_FILE_NAME));
  let text: string;
  try {
    text = (await vscode.workspace.openTextDocument(uri)).getText();
  } catch {
    return undefined;
  }
  let v: unknown;
  try {
    v = parseJsonc(text, CONFIG_FILE_NAME);
  } catch (e) {
    throw new Error(`${CONFIG_FILE_NAME} cannot be parsed (${(e as Error).message}); fix it first.`);
  }
  for (const k of path) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/**
 * Sets one field of the folder's idc.config.json as an undoable edit that keeps comments (the
 * language server's configEdit computes it), then saves; creates the file with defaults first
 * when there is none. As src/extension/commands.ts setConfigValue does for the palette commands.
 */
export async function editConfig(idc: IdcClient, folder: string, path: (string | number)[], value: unknown): Promise<void> {
  const uri = vscode.Uri.file(join(folder, CONFIG_FILE_NAME));
  try {
    await vscode.workspace.fs.stat(uri);
  } catch {
    await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(defaultConfigText()));
  }
  const doc = await vscode.workspace.openTextDocument(uri);
  const { edits } = await idc.request(P.configEdit, { text: doc.getText(), path, value });
  const we = new vscode.WorkspaceEdit();
  for (const e of edits) we.replace(uri, new vscode.Range(e.range.start.line, e.range.start.character, e.range.end.line, e.range.end.character), e.newText);
  if (!(await vscode.workspace.applyEdit(we))) throw new Error(`VS Code refused the edit to ${CONFIG_FILE_NAME}.`);
  await doc.save();
}
