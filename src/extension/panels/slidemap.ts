import type * as vscode from 'vscode';
import type * as W from '../../protocol/webview';
import type * as P from '../../protocol/protocol';
import { IdcPanel, type PanelHandlers, type PanelHost } from './panel';

/** Placeholder until the slidemap panel is built. */
export class SlideMapPanel extends IdcPanel<'slidemap'> {
  constructor(panel: vscode.WebviewPanel, host: PanelHost, state: W.PanelState, info: P.WorkspaceInfo) {
    super('slidemap', panel, host, state, info);
  }

  protected handlers(): PanelHandlers<'slidemap'> {
    const notYet = () => { throw new Error('This panel is not built yet.'); };
    return new Proxy({}, { get: () => notYet }) as PanelHandlers<'slidemap'>;
  }
}
