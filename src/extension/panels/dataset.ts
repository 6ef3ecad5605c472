import type * as vscode from 'vscode';
import type * as W from '../../protocol/webview';
import type * as P from '../../protocol/protocol';
import { IdcPanel, type PanelHandlers, type PanelHost } from './panel';

/** Placeholder until the dataset panel is built. */
export class DatasetPanel extends IdcPanel<'dataset'> {
  constructor(panel: vscode.WebviewPanel, host: PanelHost, state: W.PanelState, info: P.WorkspaceInfo) {
    super('dataset', panel, host, state, info);
  }

  protected handlers(): PanelHandlers<'dataset'> {
    const notYet = () => { throw new Error('This panel is not built yet.'); };
    return new Proxy({}, { get: () => notYet }) as PanelHandlers<'dataset'>;
  }
}
