import * as vscode from 'vscode';
import * as W from '../../protocol/webview';
import * as P from '../../protocol/protocol';
import type { IdcClient } from '../client';
import type { IdcPanel, PanelHost } from './panel';
import { DatasetPanel } from './dataset';
import { TrainingPanel } from './training';
import { ThresholdPanel } from './threshold';
import { GalleryPanel } from './gallery';
import { SlideMapPanel } from './slidemap';

type Factory = (panel: vscode.WebviewPanel, host: PanelHost, state: W.PanelState, info: P.WorkspaceInfo) => IdcPanel<W.PanelKind>;

const FACTORIES: Record<W.PanelKind, Factory> = {
  dataset: (...a) => new DatasetPanel(...a),
  training: (...a) => new TrainingPanel(...a),
  threshold: (...a) => new ThresholdPanel(...a),
  gallery: (...a) => new GalleryPanel(...a),
  slidemap: (...a) => new SlideMapPanel(...a),
};

/** Opens, revives (after a reload) and feeds the IDC panels: one panel per kind. */
export class Panels implements PanelHost, vscode.Disposable {
  private readonly open = new Map<W.PanelKind, IdcPanel<W.PanelKind>>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(readonly context: vscode.ExtensionContext, readonly log: vscode.LogOutputChannel, readonly idc: IdcClient) {
    for (const kind of W.PANEL_KINDS) {
      this.disposables.push(vscode.window.registerWebviewPanelSerializer(W.VIEW_TYPES[kind], {
        deserializeWebviewPanel: (panel, saved: unknown) => this.revive(kind, panel, saved),
      }));
    }
    this.disposables.push(idc.tracker.onJobEvent((e) => {
      for (const p of this.open.values()) {
        try { p.onJobEvent(e); } catch (err) { log.error(`IDC ${p.kind} panel: ${(err as Error)?.stack ?? err}`); }
      }
    }));
  }

  /** The panel of that kind, if open. */
  get<K extends W.PanelKind>(kind: K): IdcPanel<K> | undefined {
    return this.open.get(kind) as IdcPanel<K> | undefined;
  }

  async show(kind: W.PanelKind, state: W.PanelState): Promise<void> {
    const info = await this.idc.request(P.workspaceInfo, { folder: state.folder });
    const existing = this.open.get(kind);
    if (existing) {
      existing.update(state, info);
      existing.panel.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel(W.VIEW_TYPES[kind], W.PANEL_TITLES[kind], vscode.ViewColumn.Active, { enableScripts: true });
    this.adopt(kind, FACTORIES[kind](panel, this, state, info));
  }

  private async revive(kind: W.PanelKind, panel: vscode.WebviewPanel, saved: unknown): Promise<void> {
    // The page saves { host: PanelState } with vscode.setState; anything else is not ours to trust.
    const parsed = W.panelState.safeParse((saved as { host?: unknown } | undefined)?.host);
    const folder = parsed.success ? parsed.data.folder : vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    if (!folder) {
      panel.dispose();
      return;
    }
    const state: W.PanelState = parsed.success ? parsed.data : { folder };
    try {
      const info = await this.idc.request(P.workspaceInfo, { folder });
      this.adopt(kind, FACTORIES[kind](panel, this, state, info));
    } catch (e) {
      this.log.error(`IDC: could not restore the ${kind} panel: ${(e as Error)?.message ?? e}`);
      panel.dispose();
    }
  }

  private adopt(kind: W.PanelKind, p: IdcPanel<W.PanelKind>): void {
    this.open.set(kind, p);
    p.onDidDispose(() => { if (this.open.get(kind) === p) this.open.delete(kind); });
  }

  dispose(): void {
    for (const p of this.open.values()) p.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
