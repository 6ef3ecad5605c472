import * as vscode from 'vscode';
import { existsSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { CONFIG_FILE_NAME } from '../core/config';
import {
  affectsSidebar, buildDatasetNodes, buildEvaluationNodes, buildRunNodes, findNode, sidebarFlags, sidebarSources,
  type SidebarFlags, type SidebarNode, type SidebarSources,
} from '../core/views/sidebar';
import type { JobTracker } from './jobs';

type TreeName = 'dataset' | 'runs' | 'evaluations';
export const VIEW_IDS: Record<TreeName, string> = { dataset: 'idc.dataset', runs: 'idc.runs', evaluations: 'idc.evaluations' };

/** Waits this long after a change before reading: a training epoch or an evaluation writes several files. */
const DEBOUNCE_MS = 300;
/** A steady stream of changes still refreshes this often. */
const MAX_WAIT_MS = 2000;

/**
 * One tree of nodes from a pure builder in src/core/views/sidebar.ts, computed when VS Code asks
 * for the root (so a hidden view costs nothing) and kept until invalidated.
 */
class NodeTree implements vscode.TreeDataProvider<SidebarNode> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private roots: SidebarNode[] | undefined;
  private parents = new Map<string, SidebarNode>();

  constructor(private readonly name: TreeName, private readonly build: () => SidebarNode[], private readonly log: vscode.LogOutputChannel) {}

  invalidate(): void {
    if (!this.roots) { this.changed.fire(); return; }
    // A view on screen is rebuilt now and refreshed only if it changed: back-to-back refreshes of an
    // expanded tree race VS Code's fetch of the old children ("No tree item with id … found").
    const [roots, parents, before] = [this.roots, this.parents, JSON.stringify(this.roots)];
    this.roots = undefined;
    if (JSON.stringify(this.nodes()) === before) {
      [this.roots, this.parents] = [roots, parents];
      return;
    }
    this.changed.fire();
  }

  nodes(): SidebarNode[] {
    if (!this.roots) {
      try {
        this.roots = this.build();
      } catch (e) {
        // The builders catch what they read; this is a bug, shown rather than an empty view.
        this.log.error(`IDC side bar, ${this.name}: ${(e as Error)?.stack ?? e}`);
        this.roots = [{ id: `${this.name}:error`, label: 'Cannot show this view', description: String((e as Error)?.message ?? e), tooltip: `${String((e as Error)?.message ?? e)}\nSee the IDC log.`, contextValue: 'idc-error', icon: 'error', color: 'list.errorForeground', open: 'idc.showLog' }];
      }
      this.parents = new Map();
      const walk = (n: SidebarNode): void => { for (const c of n.children ?? []) { this.parents.set(c.id, n); walk(c); } };
      this.roots.forEach(walk);
    }
    return this.roots;
  }

  getChildren(element?: SidebarNode): SidebarNode[] {
    return element ? element.children ?? [] : this.nodes();
  }

  getParent(element: SidebarNode): SidebarNode | undefined {
    return this.parents.get(element.id);
  }

  getTreeItem(n: SidebarNode): vscode.TreeItem {
    const item = new vscode.TreeItem(n.label, n.children?.length ? (n.expanded ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed) : vscode.TreeItemCollapsibleState.None);
    item.id = n.id;
    item.description = n.description;
    item.tooltip = n.tooltip;
    item.contextValue = n.contextValue;
    item.iconPath = new vscode.ThemeIcon(n.icon, n.color ? new vscode.ThemeColor(n.color) : undefined);
    item.accessibilityInformation = { label: n.description ? `${n.label}, ${n.description}` : n.label };
    if (n.open) item.command = { command: n.open, title: n.label, arguments: [n] };
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }
}

/**
 * The IDC view container's Dataset, Runs and Evaluations views. They follow the language server's
 * job events (live epochs, jobs that end) and a watcher on the output folder filtered to what the
 * trees read, debounced; nothing polls.
 */
export class Sidebar implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly trees: Record<TreeName, NodeTree>;
  readonly views: Record<TreeName, vscode.TreeView<SidebarNode>>;
  private sources: SidebarSources | undefined;
  private watchers: vscode.Disposable[] = [];
  private watched = '';
  private timer: NodeJS.Timeout | undefined;
  private pending = new Set<TreeName | 'sources'>();
  private firstPending: number | undefined;
  private liveKey = '';

  constructor(private readonly tracker: JobTracker, private readonly log: vscode.LogOutputChannel) {
    const out = () => this.sources?.outputDir;
    this.trees = {
      dataset: new NodeTree('dataset', () => (this.sources ? buildDatasetNodes(this.sources) : []), log),
      runs: new NodeTree('runs', () => (out() ? buildRunNodes(out()!, { live: tracker.live() }) : []), log),
      evaluations: new NodeTree('evaluations', () => (out() ? buildEvaluationNodes(out()!) : []), log),
    };
    this.views = {
      dataset: vscode.window.createTreeView(VIEW_IDS.dataset, { treeDataProvider: this.trees.dataset }),
      runs: vscode.window.createTreeView(VIEW_IDS.runs, { treeDataProvider: this.trees.runs, showCollapseAll: true }),
      evaluations: vscode.window.createTreeView(VIEW_IDS.evaluations, { treeDataProvider: this.trees.evaluations }),
    };
    for (const t of Object.values(this.trees)) this.disposables.push(t);
    for (const v of Object.values(this.views)) this.disposables.push(v);

    const configs = vscode.workspace.createFileSystemWatcher(`**/${CONFIG_FILE_NAME}`);
    this.disposables.push(
      configs, configs.onDidCreate(() => this.schedule('sources')), configs.onDidChange(() => this.schedule('sources')), configs.onDidDelete(() => this.schedule('sources')),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.schedule('sources')),
      // A safety net for file systems whose watchers miss changes (network mounts): reread on coming back to the window.
      vscode.window.onDidChangeWindowState((w) => { if (w.focused) this.schedule('sources'); }),
      tracker.onJobEvent((e) => {
        if (e.type === 'progress') {
          // Batches come several a second: only a new run, epoch or fold changes what the tree says.
          const live = tracker.live();
          const key = JSON.stringify(live ?? null);
          if (key !== this.liveKey) { this.liveKey = key; this.schedule('runs', 0); }
        } else if (e.type === 'epoch') this.schedule('runs', 0);
        else this.schedule('sources', 0);
      }),
      tracker.onDidChangeStatus(() => {
        this.liveKey = JSON.stringify(tracker.live() ?? null);
        this.schedule('runs', 0);
      }),
    );
    this.schedule('sources', 0);
  }

  /** The workspace folder the views show: the one with idc.config.json, else the first on disk. */
  private folder(): string | undefined {
    const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
    return folders.find((f) => existsSync(join(f, CONFIG_FILE_NAME))) ?? folders[0];
  }

  get outputDir(): string | undefined {
    return this.sources?.outputDir;
  }

  /** Rereads after `delayMs` (debounced, but never put off past MAX_WAIT_MS): 'sources' rereads the config, then every tree. */
  schedule(what: TreeName | 'sources' = 'sources', delayMs = DEBOUNCE_MS): void {
    this.pending.add(what);
    this.firstPending ??= Date.now();
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.flush(), Math.max(0, Math.min(delayMs, this.firstPending + MAX_WAIT_MS - Date.now())));
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    this.firstPending = undefined;
    const what = this.pending;
    this.pending = new Set();
    if (what.has('sources')) {
      const folder = this.folder();
      try {
        this.sources = folder ? await sidebarSources(folder) : undefined;
      } catch (e) {
        this.log.error(`IDC side bar: reading ${folder}: ${(e as Error)?.stack ?? e}`);
        this.sources = undefined;
      }
      this.watch();
      await this.setContext();
      for (const t of Object.values(this.trees)) t.invalidate();
      return;
    }
    if (what.has('dataset') || what.has('runs') || what.has('evaluations')) await this.setContext();
    for (const name of ['dataset', 'runs', 'evaluations'] as const) if (what.has(name)) this.trees[name].invalidate();
  }

  /** Watches what the trees read in the output folder (and the archive's name, for a synthetic one appearing). */
  private watch(): void {
    const src = this.sources;
    const key = src ? `${src.outputDir}\n${src.archive}\n${existsSync(src.outputDir)}` : '';
    if (key === this.watched) return;
    this.watched = key;
    for (const w of this.watchers) w.dispose();
    this.watchers = [];
    if (!src) return;
    const add = (w: vscode.FileSystemWatcher, filter: (uri: vscode.Uri) => boolean = () => true): void => {
      const on = (uri: vscode.Uri): void => { if (filter(uri)) this.schedule('sources'); };
      this.watchers.push(w, w.onDidCreate(on), w.onDidChange(on), w.onDidDelete(on));
    };
    // Every change under the output folder, filtered here: VS Code reports a new folder without the
    // files written into it in the same moment, which a pattern naming only files would miss.
    // One refresh of every tree: they share files (a metrics.json is an evaluation and a CV's pooled AUC).
    add(vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(src.outputDir), '**/*')),
      (uri) => affectsSidebar(relative(src.outputDir, uri.fsPath).split(sep).join('/')));
    // The output folder itself appearing or going (organize creates it).
    add(vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(dirname(src.outputDir)), basename(src.outputDir))));
    add(vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(dirname(src.archive)), basename(src.archive))));
  }

  /** Context keys for menus, welcome views and the walkthrough. */
  private async setContext(): Promise<void> {
    let flags: SidebarFlags | undefined;
    try {
      flags = this.sources && sidebarFlags(this.sources);
    } catch (e) {
      this.log.warn(`IDC side bar: ${(e as Error)?.message ?? e}`);
    }
    const keys: Record<string, boolean> = {
      'idc.folderOpen': this.sources !== undefined,
      'idc.hasConfig': flags?.hasConfig ?? false,
      'idc.archiveFound': flags?.archiveFound ?? false,
      'idc.hasManifest': flags?.hasManifest ?? false,
      'idc.hasSplit': flags?.hasSplit ?? false,
      'idc.hasModel': flags?.hasModel ?? false,
      'idc.hasRuns': flags?.hasRuns ?? false,
      'idc.hasEvaluations': flags?.hasEvaluations ?? false,
    };
    await Promise.all(Object.entries(keys).map(([k, v]) => vscode.commands.executeCommand('setContext', k, v)));
  }

  /** Runs and evaluations now, for commands that ask which one. */
  nodes(name: TreeName): SidebarNode[] {
    return this.trees[name].nodes();
  }

  /** Shows the IDC view container with `runId`'s node selected (a fold inside its cross-validation). */
  async revealRun(runId: string | undefined): Promise<boolean> {
    await this.flushNow();
    const nodes = this.trees.runs.nodes();
    const path = runId ? findNode(nodes, (n) => n.runId === runId && n.id === `run:${runId}`) : undefined;
    const target = path?.at(-1) ?? nodes[0];
    if (!target) {
      await vscode.commands.executeCommand(`${VIEW_IDS.runs}.focus`);
      return false;
    }
    await this.views.runs.reveal(target, { select: true, focus: true, expand: true });
    return path !== undefined;
  }

  /** Applies what is pending now (a command about to read the trees). */
  async flushNow(): Promise<void> {
    if (!this.timer && this.sources) return;
    if (this.timer) clearTimeout(this.timer);
    if (!this.sources) this.pending.add('sources');
    await this.flush();
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers) w.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
