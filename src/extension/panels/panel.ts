import * as vscode from 'vscode';
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { isAbsolute, resolve, sep } from 'node:path';
import * as W from '../../protocol/webview';
import * as P from '../../protocol/protocol';
import { loadConfig, resolveConfigPath } from '../../core/config';
import type { IdcClient } from '../client';
import type { JobEvent } from '../jobs';

/** What a panel needs from the rest of the extension. */
export interface PanelHost {
  readonly context: vscode.ExtensionContext;
  readonly log: vscode.LogOutputChannel;
  readonly idc: IdcClient;
  /** Opens (or reveals) another panel. */
  show(kind: W.PanelKind, state: W.PanelState): Promise<void>;
}

type Requests<K extends W.PanelKind> = (typeof W.PANEL_REQUESTS)[K];
type CommonKeys = keyof typeof W.commonRequests;
/** The panel-specific handlers a subclass writes; the common ones live here. */
export type PanelHandlers<K extends W.PanelKind> = Omit<W.Handlers<Requests<K>>, CommonKeys>;

/**
 * One webview panel (the webview-sample pattern: created or revived, disposed once). Requests from
 * the page are validated against their zod schema before a handler sees them; file access is
 * confined to the workspace's dataset and output folders.
 */
export abstract class IdcPanel<K extends W.PanelKind> implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly onDisposeEmitter = new vscode.EventEmitter<void>();
  readonly onDidDispose = this.onDisposeEmitter.event;
  private disposed = false;
  /** Dataset and output folders (real paths): the only places images may come from. */
  private roots: string[] = [];
  private handlerTable: W.Handlers<Requests<K>> | undefined;

  protected constructor(
    readonly kind: K,
    readonly panel: vscode.WebviewPanel,
    protected readonly host: PanelHost,
    protected state: W.PanelState,
    protected info: P.WorkspaceInfo,
  ) {
    this.setRoots(info);
    panel.webview.options = this.webviewOptions();
    panel.iconPath = vscode.Uri.joinPath(host.context.extensionUri, 'media', 'icon.png');
    panel.webview.html = this.html();
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((m: unknown) => void this.receive(m)),
      vscode.window.onDidChangeActiveColorTheme(() => this.post('theme', { theme: currentTheme() } as never)),
    );
  }

  /** Request handlers for this panel's own methods. */
  protected abstract handlers(): PanelHandlers<K>;

  /** Job kinds whose end changes what this panel shows: the panel then rereads the workspace and reloads. */
  protected readonly reloadAfter: readonly P.JobKind[] = [];

  /** A job notification from the language server (training progress, a job that wrote new artifacts …). */
  onJobEvent(event: JobEvent): void {
    if (event.type === 'finished' && this.reloadAfter.includes(event.params.kind)) void this.reloadInfo(event.params.kind);
  }

  protected async reloadInfo(reason: string): Promise<void> {
    try {
      const info = await this.host.idc.request(P.workspaceInfo, { folder: this.folder });
      this.update({ folder: this.folder }, info);
    } catch (e) {
      this.host.log.warn(`IDC ${this.kind} panel: could not reread the workspace after ${reason}: ${(e as Error)?.message ?? e}`);
      this.post('refresh', { reason } as never);
    }
  }

  /** The state's folder, run and evaluation changed (e.g. a command asked for another run). */
  update(state: W.PanelState, info: P.WorkspaceInfo): void {
    this.state = { ...this.state, ...state, ui: { ...this.state.ui, ...state.ui } };
    this.info = info;
    this.setRoots(info);
    this.post('refresh', { reason: 'state' } as never);
  }

  get folder(): string {
    return this.state.folder;
  }

  /** data.cacheDir of the folder's config, resolved; undefined for the default <output>/cache. */
  protected async cacheDir(): Promise<string | undefined> {
    try {
      const loaded = await loadConfig({ cwd: this.folder });
      return loaded.config.data.cacheDir ? resolveConfigPath(loaded, loaded.config.data.cacheDir) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Sends an event to the page. */
  post<E extends keyof W.PanelEvents[K] & string>(name: E, data: W.PanelEvents[K][E]): void {
    if (this.disposed) return;
    void this.panel.webview.postMessage({ kind: 'event', name, data } satisfies W.EventMessage);
  }

  /** Webview URI for a file inside the dataset or output folders; undefined (and logged) otherwise. */
  imageUri(path: string): string | undefined {
    if (!this.allowed(path)) {
      this.host.log.warn(`IDC ${this.kind} panel: refused a request for ${path}: outside the dataset and output folders.`);
      return undefined;
    }
    return this.panel.webview.asWebviewUri(vscode.Uri.file(path)).toString();
  }

  allowed(path: string): boolean {
    if (typeof path !== 'string' || !isAbsolute(path) || path.includes('\0')) return false;
    let real: string;
    try { real = realpathSync(path); } catch { return false; }
    return this.roots.some((r) => real === r || real.startsWith(r.endsWith(sep) ? r : r + sep));
  }

  private setRoots(info: P.WorkspaceInfo): void {
    const archiveRoot = /\.zip$/i.test(info.archive) ? undefined : info.archive;
    this.roots = [info.outputDir, archiveRoot].filter((p): p is string => !!p).map((p) => {
      try { return realpathSync(p); } catch { return resolve(p); }
    });
    if (this.panel.webview.options.localResourceRoots) this.panel.webview.options = this.webviewOptions();
  }

  private webviewOptions(): vscode.WebviewOptions {
    const ext = this.host.context.extensionUri;
    const roots = [vscode.Uri.joinPath(ext, 'dist', 'webview'), vscode.Uri.joinPath(ext, 'media'), ...this.roots.map((r) => vscode.Uri.file(r))];
    return { enableScripts: true, localResourceRoots: roots };
  }

  private html(): string {
    const webview = this.panel.webview;
    const nonce = randomBytes(18).toString('base64');
    const asset = (...p: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(this.host.context.extensionUri, ...p)).toString();
    // No remote content, no inline script, no eval: only our bundle, by nonce.
    const csp = [
      "default-src 'none'",
      `img-src ${webview.cspSource} blob:`,
      `style-src ${webview.cspSource} 'nonce-${nonce}'`,
      `font-src ${webview.cspSource}`,
      `script-src 'nonce-${nonce}'`,
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${asset('dist', 'webview', 'codicon.css')}" id="vscode-codicon-stylesheet" nonce="${nonce}">
<link rel="stylesheet" href="${asset('media', 'webview.css')}" nonce="${nonce}">
<link rel="stylesheet" href="${asset('media', `${this.kind}.css`)}" nonce="${nonce}">
<title>${W.PANEL_TITLES[this.kind]}</title>
</head>
<body data-panel="${this.kind}">
<main id="app" aria-busy="true"><p class="loading">Loading…</p></main>
<script type="module" nonce="${nonce}" src="${asset('dist', 'webview', `${this.kind}.js`)}"></script>
</body>
</html>`;
  }

  private table(): W.Handlers<Requests<K>> {
    const common: W.Handlers<typeof W.commonRequests> = {
      ready: () => ({ state: this.state, theme: currentTheme() }),
      saveState: (s) => {
        // The page may only change its UI state; which folder it reads is the host's business.
        this.state = { ...this.state, ui: s.ui };
      },
      resolveImages: ({ paths }) => paths.map((p) => this.imageUri(p) ?? null),
      runCommand: async ({ command, args }) => {
        await vscode.commands.executeCommand(command, ...(args ?? []));
      },
      openPanel: async ({ panel, runId, evaluation, ui }) => {
        await this.host.show(panel, { folder: this.state.folder, runId: runId ?? this.state.runId, evaluation: evaluation ?? this.state.evaluation, ui });
      },
    };
    this.handlerTable ??= { ...common, ...this.handlers() } as W.Handlers<Requests<K>>;
    return this.handlerTable;
  }

  private async receive(raw: unknown): Promise<void> {
    const msg = W.requestMessage.safeParse(raw);
    if (!msg.success) {
      this.host.log.warn(`IDC ${this.kind} panel: dropped a malformed message.`);
      return;
    }
    const { id, method, params } = msg.data;
    const respond = (r: Omit<W.ResponseMessage, 'kind' | 'id'>) => {
      if (!this.disposed) void this.panel.webview.postMessage({ kind: 'response', id, ...r } satisfies W.ResponseMessage);
    };
    const specs = W.PANEL_REQUESTS[this.kind] as W.RequestMap;
    const spec = Object.prototype.hasOwnProperty.call(specs, method) ? specs[method] : undefined;
    if (!spec) {
      this.host.log.warn(`IDC ${this.kind} panel: refused unknown request "${method}".`);
      return respond({ error: `Unknown request ${method}.` });
    }
    const parsed = spec.params.safeParse(params);
    if (!parsed.success) {
      this.host.log.warn(`IDC ${this.kind} panel: refused "${method}": ${parsed.error.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`).join('; ')}`);
      return respond({ error: `Invalid ${method} request.` });
    }
    try {
      const handler = (this.table() as Record<string, (p: unknown) => unknown>)[method];
      respond({ result: await handler(parsed.data) });
    } catch (e) {
      const message = (e as Error)?.message ?? String(e);
      this.host.log.error(`IDC ${this.kind} panel: ${method} failed: ${(e as Error)?.stack ?? message}`);
      respond({ error: message });
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.onDisposeEmitter.fire();
    this.onDisposeEmitter.dispose();
    this.panel.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

export function currentTheme(): 'light' | 'dark' | 'high-contrast' | 'high-contrast-light' {
  switch (vscode.window.activeColorTheme.kind) {
    case vscode.ColorThemeKind.Light: return 'light';
    case vscode.ColorThemeKind.HighContrast: return 'high-contrast';
    case vscode.ColorThemeKind.HighContrastLight: return 'high-contrast-light';
    default: return 'dark';
  }
}
