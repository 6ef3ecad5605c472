import type * as vscode from 'vscode';
import type * as W from '../../protocol/webview';
import type * as P from '../../protocol/protocol';
import { IdcPanel, type PanelHandlers, type PanelHost } from './panel';

/** Placeholder until the training panel is built. */
export class TrainingPanel extends IdcPanel<'training'> {
  constructor(panel: vscode.WebviewPanel, host: PanelHost, state: W.PanelState, info: P.WorkspaceInfo) {
    super('training', panel, host, state, info);
  }

  protected handlers(): PanelHandlers<'training'> {
    const notYet = () => { throw new Error('This panel is not built yet.'); };
    return new Proxy({}, { get: () => notYet }) as PanelHandlers<'training'>;
  }
}
