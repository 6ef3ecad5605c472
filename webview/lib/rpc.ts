/**
 * The page side of the panel protocol (src/protocol/webview.ts): typed requests to the host,
 * typed events from it, and state that survives a window reload.
 */
import type * as W from '../../src/protocol/webview';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();

type Requests<K extends W.PanelKind> = (typeof W.PANEL_REQUESTS)[K];

/** What vscode.setState keeps: the host's part (validated by the serializer) and the page's. */
interface SavedState { host?: W.PanelState }

export class PanelRpc<K extends W.PanelKind> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, Set<(data: unknown) => void>>();
  state: W.PanelState | undefined;

  constructor(readonly kind: K) {
    window.addEventListener('message', (e: MessageEvent) => this.receive(e.data));
  }

  /** Asks the host; rejects with the host's message when the request fails or is refused. */
  request<M extends keyof Requests<K> & string>(method: M, params: W.ParamsOf<Requests<K>[M]>): Promise<W.ResultOf<Requests<K>[M]>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      vscode.postMessage({ kind: 'request', id, method, params } satisfies W.RequestMessage);
    });
  }

  on<E extends keyof W.PanelEvents[K] & string>(name: E, fn: (data: W.PanelEvents[K][E]) => void): void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(fn as (data: unknown) => void);
  }

  /** Says hello and returns what the panel shows; restores saved UI state over the host's. */
  async ready(): Promise<{ state: W.PanelState; theme: string }> {
    const r = (await this.request('ready' as never, {} as never)) as { state: W.PanelState; theme: string };
    const saved = vscode.getState() as SavedState | undefined;
    this.state = { ...r.state, ui: { ...saved?.host?.ui, ...r.state.ui } };
    document.body.dataset.theme = r.theme;
    this.on('theme' as never, ((d: { theme: string }) => { document.body.dataset.theme = d.theme; }) as never);
    vscode.setState({ host: this.state } satisfies SavedState);
    return { state: this.state, theme: r.theme };
  }

  /** Keeps UI state (selected tab, threshold, zoom …) across reloads and tells the host. */
  saveUi(ui: Record<string, unknown>): void {
    if (!this.state) return;
    this.state = { ...this.state, ui: { ...this.state.ui, ...ui } };
    vscode.setState({ host: this.state } satisfies SavedState);
    void this.request('saveState' as never, this.state as never).catch(() => {});
  }

  get ui(): Record<string, unknown> {
    return this.state?.ui ?? {};
  }

  /** Webview URIs for image files (null where the host refused or the file is missing). */
  async images(paths: string[]): Promise<(string | null)[]> {
    const out: (string | null)[] = [];
    for (let i = 0; i < paths.length; i += 500) {
      out.push(...((await this.request('resolveImages' as never, { paths: paths.slice(i, i + 500) } as never)) as (string | null)[]));
    }
    return out;
  }

  private receive(raw: unknown): void {
    const m = raw as W.HostMessage;
    if (!m || typeof m !== 'object') return;
    if (m.kind === 'response') {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m.result);
    } else if (m.kind === 'event') {
      for (const fn of this.listeners.get(m.name) ?? []) fn(m.data);
    }
  }
}

/** Theme colours for canvas drawing (chart.js cannot read CSS variables itself). */
export function cssVar(name: string, fallback = '#888'): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

/** Escapes text for innerHTML templates. */
export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function fmt(x: number | null | undefined, digits = 3): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

export function pct(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(digits)}%`;
}

/** Shows an error in the page itself (no silent failure). */
export function showError(e: unknown): void {
  const app = document.getElementById('app')!;
  const div = document.createElement('div');
  div.className = 'error-banner';
  div.setAttribute('role', 'alert');
  div.textContent = (e as Error)?.message ?? String(e);
  app.prepend(div);
}
