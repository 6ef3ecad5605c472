import type * as vscode from 'vscode';
import type * as W from '../../protocol/webview';
import type * as P from '../../protocol/protocol';
import { IdcPanel, type PanelHandlers, type PanelHost } from './panel';

/** Placeholder until the gallery panel is built. */
export class GalleryPanel extends IdcPanel<'gallery'> {
  constructor(panel: vscode.WebviewPanel, host: PanelHost, state: W.PanelState, info: P.WorkspaceInfo) {
    super('gallery', panel, host, state, info);
  }

  protected handlers(): PanelHandlers<'gallery'> {
    const notYet = () => { throw new Error('This panel is not built yet.'); };
    return new Proxy({}, { get: () => notYet }) as PanelHandlers<'gallery'>;
  }
}
