import * as vscode from 'vscode';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
import { CONFIG_FILE_NAME, defaultConfigText } from '../core/config';
import { isIdcError } from '../core/errors';
import * as P from '../protocol/protocol';
import { BASELINE_NAME as BASELINE_MODEL } from '../core/baseline';
import type { IdcClient } from './client';
import type { Panels } from './panels';
import { evaluationId } from '../core/views/ids';
import { liveLockHolder, type SidebarNode } from '../core/views/sidebar';
import { deleteRun, deletionText, planRunDeletion } from '../core/train/delete-run';
import { readCvDefinition } from '../core/cv/read';
import { editorPython } from './python-interpreter';
import { NEEDS_TRUST, WALKTHROUGH_ID, restrictedModeMessage, type CommandId } from './command-ids';
import type { Sidebar } from './sidebar';

/** Thrown when the user dismisses a picker: the command just ends. */
class Dismissed extends Error {}

type Folder = vscode.WorkspaceFolder;

/**
 * Every IDC command; each works with no argument, asking for what it needs. From a menu they get
 * what was clicked: a side bar node (SidebarNode) or a file's Uri.
 */
export function registerCommands(context: vscode.ExtensionContext, idc: IdcClient, log: vscode.LogOutputChannel, panels: Panels, sidebar: Sidebar): void {
  const c = new Commands(idc, log, panels, sidebar);
  const table: Record<CommandId, (...args: never[]) => Promise<unknown>> = {
    'idc.organize': (archive?: unknown) => c.organize(pathArg(archive)),
    'idc.split': () => c.split(),
    'idc.train': (config?: unknown) => c.train(configFolder(config)),
    'idc.resume': (run?: unknown, folder?: Folder) => c.resume(runIdArg(run), folder),
    'idc.crossValidate': (cv?: unknown) => c.crossValidate(cvArg(cv, sidebar.outputDir)),
    'idc.stopJob': (node?: unknown) => c.stopJob(nodeArg(node)),
    'idc.evaluate': (run?: unknown) => c.evaluate(runIdArg(run)),
    'idc.exportReport': (what?: unknown) => c.exportReport(what),
    'idc.synth': () => c.synth(),
    'idc.predict': (folder?: unknown) => c.predict(pathArg(folder)),
    'idc.openConfig': (node?: unknown) => c.openConfig(configFolder(node)),
    'idc.selectBackend': () => c.selectBackend(),
    'idc.checkGpu': () => c.checkGpu(),
    'idc.showDataset': () => c.showDataset(),
    'idc.showTraining': (run?: unknown) => c.showTraining(runIdArg(run)),
    'idc.showEvaluation': (evaluation?: unknown) => c.showEvaluation('threshold', undefined, evaluationArg(evaluation)),
    'idc.showFalseNegatives': (evaluation?: unknown) => c.showEvaluation('gallery', { cell: 'fn' }, evaluationArg(evaluation)),
    'idc.showSlideMap': (evaluation?: unknown) => c.showSlideMap(evaluationArg(evaluation)),
    'idc.showLog': async () => log.show(),
    'idc.restartServer': () => c.restartServer(),
    'idc.organizeFolder': (folder?: unknown) => c.organize(pathArg(folder)),
    'idc.evaluateArchive': (folder?: unknown) => c.evaluateArchive(pathArg(folder)),
    'idc.evaluateModelFile': (model?: unknown) => c.evaluateModelFile(pathArg(model)),
    'idc.predictWithModel': (model?: unknown) => c.predictWithModel(pathArg(model)),
    'idc.validateConfig': (config?: unknown) => c.validateConfig(configFolder(config)),
    'idc.chooseArchive': () => c.chooseArchive(),
    'idc.revealRun': (run?: unknown) => c.revealRun(runIdArg(run)),
    'idc.revealInExplorer': (what?: unknown) => c.revealInExplorer(pathArg(what)),
    'idc.copyRunId': (run?: unknown) => c.copyRunId(runIdArg(run)),
    'idc.deleteRun': (run?: unknown) => c.deleteRun(runIdArg(run)),
    'idc.refreshSidebar': async () => sidebar.schedule('sources', 0),
    'idc.getStarted': async () => vscode.commands.executeCommand('workbench.action.openWalkthrough', WALKTHROUGH_ID, false),
  };
  const titles = new Map<string, string>(((context.extension.packageJSON as { contributes?: { commands?: { command: string; title: string }[] } }).contributes?.commands ?? []).map((x) => [x.command, x.title]));
  for (const [id, fn] of Object.entries(table) as [CommandId, (...args: never[]) => Promise<unknown>][]) {
    context.subscriptions.push(vscode.commands.registerCommand(id, async (...args: never[]) => {
      try {
        // Menus hide these in Restricted Mode; the palette, a welcome view's link or a panel's button still reach them.
        if (NEEDS_TRUST.has(id) && !vscode.workspace.isTrusted) {
          const pick = await vscode.window.showWarningMessage(restrictedModeMessage(titles.get(id) ?? id), 'Manage Workspace Trust');
          if (pick) await vscode.commands.executeCommand('workbench.trust.manage');
          return;
        }
        await fn(...args);
      } catch (e) {
        if (e instanceof Dismissed) return;
        // A message the user can act on; the stack goes to the log only.
        const message = String((e as Error)?.message ?? e);
        log.error(`${id}: ${(e as Error)?.stack ?? message}`);
        const pick = await vscode.window.showErrorMessage(`IDC: ${message}`, 'Show Log');
        if (pick) log.show(true);
      }
    }));
  }
}

// ----------------------------------------------------------------------------------- arguments

/** A side bar node, as menus and tree clicks pass it. */
function nodeArg(x: unknown): SidebarNode | undefined {
  return x && typeof x === 'object' && typeof (x as SidebarNode).id === 'string' && typeof (x as SidebarNode).contextValue === 'string' ? x as SidebarNode : undefined;
}

/** A run id: given as is (buttons, job messages) or a node's. */
function runIdArg(x: unknown): string | undefined {
  return typeof x === 'string' ? x : nodeArg(x)?.runId;
}

/** An evaluation id (`<model>/<split>`): given as is or a node's. */
function evaluationArg(x: unknown): string | undefined {
  return typeof x === 'string' ? x : nodeArg(x)?.evaluation;
}

/** A cross-validation to resume: from a job message ({ id, folds, seed }) or a node (its cv.json's folds and seed). */
function cvArg(x: unknown, outputDir: string | undefined): Partial<P.CvJobInfo> | undefined {
  const node = nodeArg(x);
  if (node) {
    if (!node.cvId) return undefined;
    const def = outputDir ? readCvDefinition(outputDir, node.cvId) : undefined;
    return def ? { id: def.id, folds: def.folds.length, seed: def.seed } : { id: node.cvId };
  }
  return x && typeof x === 'object' ? x as Partial<P.CvJobInfo> : undefined;
}

/** A file system path: an explorer or editor Uri, a node's path, or a string. */
function pathArg(x: unknown): string | undefined {
  if (x instanceof vscode.Uri) return x.scheme === 'file' ? x.fsPath : undefined;
  if (typeof x === 'string') return x;
  return nodeArg(x)?.path;
}

/** The folder of an idc.config.json the command was run on (explorer, editor), as a workspace folder. */
function configFolder(x: unknown): Folder | undefined {
  const p = pathArg(x);
  if (!p || basename(p) !== CONFIG_FILE_NAME) return undefined;
  const dir = dirname(p);
  const ws = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(p));
  return ws && ws.uri.fsPath === dir ? ws : { uri: vscode.Uri.file(dir), name: basename(dir), index: ws?.index ?? 0 };
}

class Commands {
  private lastFolder: string | undefined;
  private lastPythonNote: string | undefined;
  /** Runs whose delete confirmation is open: a second Delete on one would queue a second modal. */
  private readonly confirmingDelete = new Set<string>();

  constructor(private readonly idc: IdcClient, private readonly log: vscode.LogOutputChannel, private readonly panels: Panels, private readonly sidebar: Sidebar) {}

  // ----------------------------------------------------------------------------------- jobs

  async organize(archive?: string): Promise<void> {
    const { folder, info } = await this.context();
    let chosen = typeof archive === 'string' ? archive : undefined;
    if (!chosen && !info.archiveExists) chosen = await this.pickArchive(info);
    await this.run(folder, { kind: 'organize', archive: chosen });
    if (chosen && chosen !== info.archive) void this.offerSaveArchive(folder, chosen);
  }

  async split(): Promise<void> {
    const { folder, info } = await this.context();
    await this.needs(info, ['manifest']);
    await this.run(folder, { kind: 'split' });
  }

  async train(folderArg?: Folder): Promise<void> {
    const { folder, info } = await this.context(folderArg);
    await this.needs(info, ['manifest', 'split']);
    const pending = this.idc.tracker.pendingKinds();
    // Stopped, failed or interrupted (left "running"): every unfinished run resumes from its checkpoint.
    const open = info.runs.filter((r) => r.status !== 'finished');
    // A running cross-validation's fold run looks interrupted; the server refuses a training beside it anyway.
    if (open.length && !pending.has('train') && !pending.has('resume') && !pending.has('cv')) {
      const items = [
        ...open.reverse().map((r) => ({ label: `$(debug-continue) Resume ${r.id}`, description: `${r.status === 'running' ? '' : `${r.status}, `}started ${new Date(r.createdAt).toLocaleString()}, ${r.epochs} epochs planned`, runId: r.id as string | undefined })),
        { label: '$(add) Start a new run', description: 'with the settings in idc.config.json', runId: undefined },
      ];
      const pick = await this.quickPick(items, 'An earlier training run did not finish. Resume it or start a new one?');
      if (pick.runId) return this.run(folder, { kind: 'resume', runId: pick.runId });
    }
    await this.run(folder, { kind: 'train' });
  }

  async resume(runId?: string, folderArg?: Folder): Promise<void> {
    const { folder, info } = await this.context(folderArg);
    if (typeof runId === 'string') return this.run(folder, { kind: 'resume', runId });
    const open = info.runs.filter((r) => r.status !== 'finished').reverse();
    if (!open.length) {
      const pick = await vscode.window.showInformationMessage(`IDC: no unfinished training run to resume in ${rel(folder, info.outputDir)}.`, 'Train Model');
      if (pick) await vscode.commands.executeCommand('idc.train');
      return;
    }
    const run = open.length === 1 ? open[0] : await this.quickPick(open.map((r) => ({ ...r, label: r.id, description: `started ${new Date(r.createdAt).toLocaleString()}` })), 'Which run?');
    await this.run(folder, { kind: 'resume', runId: run.id });
  }

  /** Cross-validation by patient; `cv` (from a Resume button) skips the question and resumes that experiment. */
  async crossValidate(cv?: Partial<P.CvJobInfo>): Promise<void> {
    const { folder, info } = await this.context();
    await this.needs(info, ['manifest']);
    let folds = cv && typeof cv === 'object' && Number.isInteger(cv.folds) ? cv.folds : undefined;
    if (folds === undefined) {
      const v = await this.input({
        title: 'IDC: Cross-Validate by Patient', value: '5',
        prompt: 'How many folds? Each patient is scored once by a model trained without it; every fold trains a model, so k folds take about k trainings. Running it again with the same count resumes it.',
        validateInput: (t) => (/^\d+$/.test(t.trim()) && +t >= 3 && +t <= 100 ? undefined : 'A whole number from 3 to 100 (one fold tests, the next stops early, the rest train)'),
      });
      folds = Number(v.trim());
    }
    await this.run(folder, { kind: 'cv', folds, ...(cv && typeof cv === 'object' ? { seed: cv.seed, id: cv.id } : {}) });
  }

  async evaluate(runId?: string): Promise<void> {
    const { folder, info } = await this.context();
    await this.needs(info, ['manifest', 'split']);
    const model = typeof runId === 'string' ? { runId } : await this.pickModel(info, 'Evaluate which model?');
    await this.run(folder, { kind: 'evaluate', ...model });
  }

  /**
   * `what`: a cross-validation id (from a job message), or a side bar node: an evaluation of a run
   * (that run and split), a cross-validation's (its pooled report), a run or a cross-validation.
   */
  async exportReport(what?: unknown): Promise<void> {
    const { folder, info } = await this.context();
    await this.needs(info, ['manifest']);
    const node = nodeArg(what);
    let target: { cv?: string; runId?: string; split?: P.EvalSplit } = {};
    if (typeof what === 'string') target = { cv: what };
    else if (node?.evaluation) {
      const split = node.evaluation.slice(node.evaluation.lastIndexOf('/') + 1) as P.EvalSplit;
      if (node.cvId) target = { cv: node.cvId };
      else if (/\bkind-run\b/.test(node.contextValue) && node.runId) target = { runId: node.runId, split };
      else throw new Error(`the report covers a run's evaluation or a cross-validation's; ${node.evaluation} is neither (an ensemble, an outside model or an external archive). Its numbers are in its metrics.json and the panels.`);
    } else if (node?.cvId) target = { cv: node.cvId };
    else if (node?.runId) target = { runId: node.runId };
    await this.run(folder, { kind: 'report', ...target });
  }

  async synth(): Promise<void> {
    const { folder, info } = await this.context();
    const patients = await this.input({
      title: 'IDC: Generate Synthetic Dataset (1/2)', prompt: 'How many patients? The real archive has 279; 16 to 24 train in minutes on a laptop.',
      value: String(info.synthPatients), validateInput: (v) => (/^\d+$/.test(v) && +v >= 1 && +v <= 100_000 ? undefined : 'A whole number from 1 to 100000'),
    });
    const out = await this.input({
      title: 'IDC: Generate Synthetic Dataset (2/2)', prompt: 'Folder to write, relative to the workspace folder (end it in .zip for a Kaggle-style zip). It must be new or empty.',
      value: info.archiveExists ? 'data/synthetic' : rel(folder, info.archive), validateInput: (v) => (v.trim() ? undefined : 'A folder name'),
    });
    await this.run(folder, { kind: 'synth', out: out.trim(), patients: Number(patients) });
  }

  /** `patches`: the folder (from the explorer); asked for otherwise. `modelPath`: a model.json to score with instead of a run. */
  async predict(patches?: string, modelPath?: string): Promise<void> {
    const { folder, info } = await this.context();
    const chosen = patches ?? await this.chooseFolder(folder, 'Score These Patches', 'IDC: folder of patches to score (a new patient)');
    const model = modelPath ? { modelPath } : await this.pickModel(info, 'Score them with which model?', { baselineWhenNone: true });
    await this.run(folder, { kind: 'predict', patches: chosen, ...model });
  }

  /** External validation: every patient of another labelled archive, scored by a model of this workspace. */
  async evaluateArchive(archive?: string): Promise<void> {
    const { folder, info } = await this.context();
    const chosen = archive ?? await this.chooseFolder(folder, 'Evaluate on This Archive', 'IDC: another labelled archive (<patient>/<0|1>/ folders) to evaluate on');
    const model = await this.pickModel(info, `Evaluate which model on ${basename(chosen)}?`, { baselineWhenNone: true });
    await this.run(folder, { kind: 'evaluate', archive: chosen, ...model });
  }

  async evaluateModelFile(modelPath?: string): Promise<void> {
    const { folder, info } = await this.context();
    await this.needs(info, ['manifest', 'split']);
    await this.run(folder, { kind: 'evaluate', modelPath: modelPath ?? await this.chooseModelFile() });
  }

  async predictWithModel(modelPath?: string): Promise<void> {
    await this.predict(undefined, modelPath ?? await this.chooseModelFile());
  }

  private async chooseFolder(folder: Folder, openLabel: string, title: string): Promise<string> {
    const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, defaultUri: folder.uri, openLabel, title });
    if (!picked?.[0]) throw new Dismissed();
    return picked[0].fsPath;
  }

  /** Stops the running job; from a run or cross-validation node, the job training it (and nothing else). */
  async stopJob(node?: SidebarNode): Promise<void> {
    if (node && (node.runId || node.cvId)) return this.stopRun(node);
    const s = await this.idc.request(P.getStatus);
    if (!s.running && !s.queued.length) {
      void vscode.window.showInformationMessage('IDC: no job is running.');
      return;
    }
    let params: P.StopJobParams = {};
    if (s.queued.length) {
      const items = [
        ...(s.running ? [{ label: `$(debug-stop) Stop ${s.running.title}`, params: {} as P.StopJobParams }] : []),
        ...(s.running ? [{ label: `$(clear-all) Stop ${s.running.title} and clear the queue`, description: `${s.queued.length} queued`, params: { all: true } }] : []),
        ...s.queued.map((q) => ({ label: `$(close) Remove ${q.title} from the queue`, params: { jobId: q.jobId } })),
      ];
      params = (await this.quickPick(items, 'Stop which job?')).params;
    }
    const r = await this.idc.request(P.stopJob, params);
    if (s.running && r.stopped.some((j) => j.jobId === s.running!.jobId)) {
      const resumable = s.running.kind === 'cv' ? ' Running it again resumes it.' : s.running.kind === 'train' || s.running.kind === 'resume' ? ' The run can be resumed.' : '';
      void vscode.window.showInformationMessage(`IDC: stopping ${s.running.title} at the next safe point…${resumable}`);
    }
  }

  // ----------------------------------------------------------------------------------- config and backends

  async openConfig(folderArg?: Folder): Promise<void> {
    const folder = folderArg ?? await this.folder();
    const uri = await this.ensureConfig(folder);
    await vscode.window.showTextDocument(uri);
  }

  async selectBackend(): Promise<void> {
    const folder = await this.folder();
    const params: P.CheckGpuParams = { folder: folder.uri.fsPath, python: await this.python(folder) };
    const { probes, auto, torch } = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'IDC: probing backends…' }, () => this.idc.request(P.listBackends, params));
    const current = (await this.info(folder)).backend;
    const mark = (name: string) => (current === name ? '$(check) current · ' : '');
    const items = [
      {
        label: 'auto', description: `${mark('auto')}the fastest that works: ${auto ?? 'none'} here`, probe: undefined as { available: boolean; reason?: string } | undefined,
        detail: 'Recommended. Training tries tensorflow-gpu, torch on a GPU, webgpu, tensorflow, torch on the CPU (where timed faster than wasm), wasm, cpu; scoring the TF.js ones only.',
      },
      ...probes.map((p) => ({
        label: p.name, probe: p as { available: boolean; reason?: string },
        description: `${mark(p.name)}${p.available ? 'available' : 'not available'}`,
        detail: p.available ? p.detail : `${p.reason ?? 'not available'}${p.fix ? ` — ${p.fix}` : ''}`,
      })),
      ...(torch ? [{
        label: 'torch', probe: torch as { available: boolean; reason?: string },
        description: `${mark('torch')}${torch.available ? `available, trains in PyTorch on ${torch.device}` : 'not available'}`,
        detail: torch.available ? torch.detail : `${torch.reason ?? 'not available'}${torch.fix ? ` — ${torch.fix}` : ''}`,
      }] : []),
    ];
    const pick = await this.quickPick(items, `engine.backend in ${CONFIG_FILE_NAME} (now "${current}")`);
    if (pick.probe && !pick.probe.available) {
      const go = await vscode.window.showWarningMessage(`IDC: ${pick.label} is not available on this machine: ${pick.probe.reason}. Training will fail until it is. Set it anyway?`, 'Set Anyway', 'Check GPU Setup');
      if (go === 'Check GPU Setup') return this.checkGpu();
      if (go !== 'Set Anyway') return;
    }
    await this.setConfigValue(folder, ['engine', 'backend'], pick.label);
    void vscode.window.showInformationMessage(`IDC: engine.backend is now "${pick.label}" in ${CONFIG_FILE_NAME}.`);
  }

  async checkGpu(): Promise<void> {
    // No folder prompt here: the report is about the machine; a folder only adds its engine.python and batch size.
    const folder = (vscode.workspace.workspaceFolders ?? []).find((f) => f.uri.fsPath === this.lastFolder) ?? vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file');
    const params: P.CheckGpuParams = { folder: folder?.uri.fsPath, python: await this.python(folder) };
    const { report } = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'IDC: checking the GPU setup…' }, () => this.idc.request(P.checkGpu, params));
    this.log.info(report);
    const doc = await vscode.workspace.openTextDocument({ content: report, language: 'plaintext' });
    await vscode.window.showTextDocument(doc, { preview: true });
  }

  async restartServer(): Promise<void> {
    await this.idc.restart();
    void vscode.window.showInformationMessage('IDC: the language server was restarted.');
  }

  // ----------------------------------------------------------------------------------- side bar and context menus

  /** Stop from a run or cross-validation node: only the job that trains it here; a terminal's job is named, not killed. */
  private async stopRun(node: SidebarNode): Promise<void> {
    const s = await this.idc.request(P.getStatus);
    const live = this.idc.tracker.live();
    const ours = s.running && live && ((node.runId && live.runId === node.runId) || (node.cvId && live.cvId === node.cvId));
    if (ours) {
      await this.idc.request(P.stopJob, { jobId: s.running!.jobId });
      const what = node.cvId && !node.runId?.includes('-fold') ? `cross-validation ${node.cvId}` : `run ${node.runId}`;
      void vscode.window.showInformationMessage(`IDC: stopping ${what} at the next safe point… It can be resumed.`);
      return;
    }
    const holder = node.path ? liveLockHolder(node.path) : undefined;
    void vscode.window.showInformationMessage(holder
      ? `IDC: ${node.label} is not trained by this window; it is in use by ${holder}. Stop it there.`
      : `IDC: nothing is training ${node.label} now.`);
  }

  async validateConfig(folderArg?: Folder): Promise<void> {
    const folder = folderArg ?? await this.folder();
    const info = await this.info(folder);
    const file = join(folder.uri.fsPath, CONFIG_FILE_NAME);
    if (!info.configFile) {
      const pick = await vscode.window.showInformationMessage(`IDC: ${rel(folder, file)} does not exist, so the defaults apply: archive ${rel(folder, info.archive)}, output ${rel(folder, info.outputDir)}.`, 'Create Config');
      if (pick) await this.openConfig(folder);
      return;
    }
    // Opening it publishes the server's diagnostics on each problem's value.
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
    if (info.configProblems?.length) {
      const n = info.configProblems.length;
      await vscode.window.showTextDocument(doc);
      const pick = await vscode.window.showErrorMessage(`IDC: ${rel(folder, file)} has ${n === 1 ? 'a problem' : `${n} problems`}: ${info.configProblems.join('; ')}`, 'Show Problems');
      if (pick) await vscode.commands.executeCommand('workbench.actions.view.problems');
      return;
    }
    const archive = `${rel(folder, info.archive)}${info.archiveExists ? '' : ' (not found yet)'}`;
    void vscode.window.showInformationMessage(`IDC: ${rel(folder, file)} is valid. Archive ${archive}; output ${rel(folder, info.outputDir)}; backend ${info.backend}.`);
  }

  /** Sets paths.archive to a folder or .zip the user picks, then offers to organize it. */
  async chooseArchive(): Promise<void> {
    const folder = await this.folder();
    const items = [
      { label: '$(folder) The extracted folder…', id: 'folder' },
      { label: '$(file-zip) The downloaded .zip…', id: 'zip' },
    ] as const;
    const pick = await this.quickPick([...items], 'Where is the Breast Histopathology Images archive (<patient>/<0|1>/ patches)?');
    const uris = await vscode.window.showOpenDialog({
      canSelectFolders: pick.id === 'folder', canSelectFiles: pick.id === 'zip', filters: pick.id === 'zip' ? { 'Zip archive': ['zip'] } : undefined,
      defaultUri: folder.uri, openLabel: 'Use This Archive', title: 'IDC: the Breast Histopathology Images archive',
    });
    if (!uris?.[0]) throw new Dismissed();
    const value = rel(folder, uris[0].fsPath);
    await this.setConfigValue(folder, ['paths', 'archive'], value);
    const go = await vscode.window.showInformationMessage(`IDC: paths.archive is now "${value}" in ${CONFIG_FILE_NAME}. Organize it now?`, 'Organize Raw Archive');
    if (go) await vscode.commands.executeCommand('idc.organize');
  }

  async revealRun(runId?: string): Promise<void> {
    const id = runId ?? this.idc.tracker.runningRunId();
    await this.sidebar.revealRun(id);
  }

  async revealInExplorer(path?: string): Promise<void> {
    if (!path) throw new Error('Reveal in Explorer needs a run, an evaluation or a folder of the IDC side bar.');
    const uri = vscode.Uri.file(path);
    if (vscode.workspace.getWorkspaceFolder(uri)) {
      await vscode.commands.executeCommand('revealInExplorer', uri);
      return;
    }
    // The Explorer shows workspace folders only.
    const pick = await vscode.window.showInformationMessage(`IDC: ${path} is outside the workspace, so the Explorer cannot show it.`, 'Copy Path');
    if (pick) await vscode.env.clipboard.writeText(path);
  }

  async copyRunId(runId?: string): Promise<void> {
    if (!runId) throw new Error('Copy Run ID needs a run of the IDC side bar.');
    await vscode.env.clipboard.writeText(runId);
    vscode.window.setStatusBarMessage(`IDC: copied "${runId}"`, 3000);
  }

  /** Deletes a run folder after a modal confirmation naming it; refused while a job uses it. */
  async deleteRun(runId?: string): Promise<void> {
    await this.sidebar.flushNow();
    const out = this.sidebar.outputDir;
    if (!out) throw new Error('open the folder of the experiment first.');
    let id = runId;
    if (!id) {
      const runs: SidebarNode[] = [];
      const walk = (nodes: SidebarNode[]): void => { for (const n of nodes) { if (/^idc-run\b/.test(n.contextValue)) runs.push(n); walk(n.children ?? []); } };
      walk(this.sidebar.nodes('runs'));
      if (!runs.length) return void vscode.window.showInformationMessage('IDC: there is no run to delete.');
      id = (await this.quickPick(runs.map((n) => ({ label: n.runId!, description: n.description, runId: n.runId! })), 'Delete which run?')).runId;
    }
    // Refused up front when a job here or elsewhere uses it; deleteRun checks again under the lock.
    const live = this.idc.tracker.live();
    const holder = liveLockHolder(join(out, 'runs', id));
    const inUse = live && (live.runId === id || (live.cvId && id.startsWith(`${live.cvId}-fold`))) ? 'is being trained in this window' : holder ? `is in use by ${holder}` : undefined;
    if (inUse) {
      void vscode.window.showWarningMessage(`IDC: run ${id} ${inUse}. Stop that job, then delete the run.`);
      return;
    }
    if (this.confirmingDelete.has(id)) return;
    const plan = planRunDeletion(out, id);
    const text = deletionText(plan);
    this.confirmingDelete.add(id);
    let pick: string | undefined;
    try {
      pick = await vscode.window.showWarningMessage(text.message, { modal: true, detail: text.detail }, 'Delete');
    } finally {
      this.confirmingDelete.delete(id);
    }
    if (pick !== 'Delete') return;
    try {
      deleteRun(out, id);
    } catch (e) {
      if (isIdcError(e) && e.code === 'RUN_LOCKED') {
        void vscode.window.showWarningMessage(`IDC: ${e.message} Stop that job, then delete the run.`);
        return;
      }
      throw e;
    }
    this.sidebar.schedule('sources', 0);
    vscode.window.setStatusBarMessage(`IDC: deleted run ${id}`, 5000);
  }

  // ----------------------------------------------------------------------------------- panels

  async showDataset(): Promise<void> {
    const { folder, info } = await this.context();
    if (!info.manifest) return this.missing('no dataset yet: organize the raw archive first.', 'Organize Raw Archive', 'idc.organize');
    await this.panels.show('dataset', { folder: folder.uri.fsPath });
  }

  async showTraining(runId?: string): Promise<void> {
    const { folder, info } = await this.context();
    const run = typeof runId === 'string' ? runId : info.runs.at(-1)?.id;
    if (!run) return this.missing('no training run yet.', 'Train Model', 'idc.train');
    await this.panels.show('training', { folder: folder.uri.fsPath, runId: run });
  }

  /** Threshold explorer (evaluation), or the gallery on one cell (false negatives). */
  async showEvaluation(panel: 'threshold' | 'gallery', ui?: Record<string, unknown>, evaluation?: string): Promise<void> {
    const { folder, info } = await this.context();
    if (!info.evaluations.length) return this.missing('no evaluation yet.', 'Evaluate Model', 'idc.evaluate');
    const wanted = typeof evaluation === 'string' ? info.evaluations.find((e) => evaluationId(e) === evaluation) : undefined;
    await this.panels.show(panel, { folder: folder.uri.fsPath, evaluation: evaluationId(wanted ?? info.evaluations.at(-1)!), ui });
  }

  async showSlideMap(evaluation?: string): Promise<void> {
    const { folder, info } = await this.context();
    if (!info.evaluations.length) return this.missing('no slide maps yet: evaluate a model first.', 'Evaluate Model', 'idc.evaluate');
    const wanted = evaluation ? info.evaluations.find((e) => evaluationId(e) === evaluation) : undefined;
    await this.panels.show('slidemap', { folder: folder.uri.fsPath, evaluation: evaluationId(wanted ?? info.evaluations.at(-1)!) });
  }

  private async missing(what: string, label: string, command: string): Promise<void> {
    const pick = await vscode.window.showWarningMessage(`IDC: ${what}`, label);
    if (pick) await vscode.commands.executeCommand(command);
  }

  // ----------------------------------------------------------------------------------- helpers

  /** The folder, its state, and a usable config; otherwise a message with the fix, and the command ends. */
  private async context(folderArg?: Folder): Promise<{ folder: Folder; info: P.WorkspaceInfo }> {
    const folder = folderArg ?? await this.folder();
    const info = await this.info(folder);
    if (info.configProblems?.length) {
      const n = info.configProblems.length;
      const pick = await vscode.window.showErrorMessage(`IDC: ${CONFIG_FILE_NAME} has ${n === 1 ? 'a problem' : `${n} problems`}: ${info.configProblems[0]}${n > 1 ? ' …' : ''}`, 'Open Config');
      if (pick) await this.openConfig(folder);
      throw new Dismissed();
    }
    return { folder, info };
  }

  private info(folder: Folder): Promise<P.WorkspaceInfo> {
    return this.idc.request(P.workspaceInfo, { folder: folder.uri.fsPath });
  }

  /** The workspace folder of the experiment: the only one, the one with idc.config.json, or the user's pick. */
  private async folder(): Promise<Folder> {
    const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
    if (!folders.length) {
      const pick = await vscode.window.showErrorMessage('IDC: open a folder first; idc.config.json and every output live in the workspace.', 'Open Folder…');
      if (pick) await vscode.commands.executeCommand('vscode.openFolder');
      throw new Dismissed();
    }
    if (folders.length === 1) return folders[0];
    const last = folders.find((f) => f.uri.fsPath === this.lastFolder);
    if (last) return last;
    const withConfig: Folder[] = [];
    for (const f of folders) if (await exists(vscode.Uri.joinPath(f.uri, CONFIG_FILE_NAME))) withConfig.push(f);
    const chosen = withConfig.length === 1 ? withConfig[0] : await vscode.window.showWorkspaceFolderPick({ placeHolder: 'IDC: which folder holds the experiment?' });
    if (!chosen) throw new Dismissed();
    this.lastFolder = chosen.uri.fsPath;
    return chosen;
  }

  /** Stops with a message and a button to the step that makes it (unless that step is already queued). */
  private async needs(info: P.WorkspaceInfo, what: ('manifest' | 'split')[]): Promise<void> {
    const pending = this.idc.tracker.pendingKinds();
    if (what.includes('manifest') && !info.manifest && !pending.has('organize')) {
      await this.missing(`no dataset yet: organize the raw archive first (it writes ${vscode.workspace.asRelativePath(join(info.outputDir, 'manifest.csv'), false)}).`, 'Organize Raw Archive', 'idc.organize');
      throw new Dismissed();
    }
    if (what.includes('split') && !info.split && !pending.has('split')) {
      await this.missing('the dataset is not split by patient yet.', 'Split by Patient', 'idc.split');
      throw new Dismissed();
    }
  }

  private async run(folder: Folder, request: P.JobRequest): Promise<void> {
    const config = vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'file' && d.uri.fsPath === join(folder.uri.fsPath, CONFIG_FILE_NAME));
    // Jobs read the file on disk: what the user sees in the editor is what runs.
    if (config?.isDirty) await config.save();
    const r = await this.idc.request(P.runJob, { ...request, folder: folder.uri.fsPath, python: await this.python(folder) });
    if (r.refused) {
      // One training at a time: say which, and offer the way to it or to stop it.
      const { message, hint, running, runId } = r.refused;
      const stop = running.kind === 'cv' ? 'Stop Cross-Validation' : 'Stop Training';
      const pick = await vscode.window.showWarningMessage(`IDC: ${message} ${hint}`, 'Show Training', stop);
      if (pick === 'Show Training') await vscode.commands.executeCommand('idc.showTraining', runId);
      else if (pick === stop) await this.idc.request(P.stopJob, { jobId: running.jobId });
      return;
    }
    if (r.queued && r.behind) {
      const more = r.position > 1 ? ` and ${r.position - 1} more job${r.position > 2 ? 's' : ''}` : '';
      const pick = await vscode.window.showInformationMessage(`IDC: ${r.title} is queued; it starts when ${r.behind.title}${more} finish${more ? '' : 'es'}.`, 'Stop Job…');
      if (pick) await vscode.commands.executeCommand('idc.stopJob');
    }
  }

  /** VS Code's selected Python interpreter for the torch engine; why there is none goes to the log once. */
  private async python(folder: Folder | undefined): Promise<string | undefined> {
    const r = await editorPython((id) => vscode.extensions.getExtension(id), folder?.uri);
    if (r.python) this.log.debug(`Python interpreter from VS Code: ${r.python} (the torch engine uses it when engine.python is empty).`);
    else if (r.note !== this.lastPythonNote) this.log.info(`No Python interpreter from VS Code (${r.note}); the torch engine uses engine.python, else python3 on PATH.`);
    this.lastPythonNote = r.note;
    return r.python;
  }

  private async pickArchive(info: P.WorkspaceInfo): Promise<string> {
    const items = [
      { label: '$(folder) Choose the extracted folder…', id: 'folder' },
      { label: '$(file-zip) Choose the downloaded .zip…', id: 'zip' },
      { label: '$(beaker) Generate a synthetic archive instead…', id: 'synth' },
    ] as const;
    const pick = await this.quickPick([...items], `No archive at ${info.archive} (paths.archive). Where is the Breast Histopathology Images archive?`);
    if (pick.id === 'synth') {
      await vscode.commands.executeCommand('idc.synth');
      throw new Dismissed();
    }
    const uris = await vscode.window.showOpenDialog({
      canSelectFolders: pick.id === 'folder', canSelectFiles: pick.id === 'zip', filters: pick.id === 'zip' ? { 'Zip archive': ['zip'] } : undefined,
      openLabel: 'Organize', title: 'IDC: the Breast Histopathology Images archive',
    });
    if (!uris?.[0]) throw new Dismissed();
    return uris[0].fsPath;
  }

  private async offerSaveArchive(folder: Folder, archive: string): Promise<void> {
    const value = rel(folder, archive);
    const pick = await vscode.window.showInformationMessage(`IDC: save "${value}" as paths.archive in ${CONFIG_FILE_NAME}, so later runs use it?`, 'Save');
    if (pick) await this.setConfigValue(folder, ['paths', 'archive'], value);
  }

  /**
   * `baselineWhenNone`: scoring new patches (predict, another archive) before anything is trained
   * uses the shipped baseline model, as the CLI does; the job's summary names it.
   */
  private async pickModel(info: P.WorkspaceInfo, title: string, opts: { baselineWhenNone?: boolean } = {}): Promise<{ runId?: string; modelPath?: string }> {
    const finished = info.runs.filter((r) => r.status === 'finished').reverse();
    const pending = this.idc.tracker.pendingKinds();
    // A queued training will have finished by then; the server takes the newest finished run.
    if (!finished.length && (pending.has('train') || pending.has('resume'))) return {};
    const other = { label: '$(file) Another TF.js model (model.json)…', runId: undefined as string | undefined };
    const baseline = { label: '$(package) Baseline model (shipped with IDC Inspector)', description: 'trained on real slides; see its model card', runId: undefined as string | undefined };
    if (!finished.length) {
      // Nothing named: the server takes the baseline and its summary says why (as the CLI does).
      if (opts.baselineWhenNone) return {};
      const pick = await vscode.window.showWarningMessage('IDC: no trained model yet.', 'Train Model', 'Use Baseline Model', 'Choose model.json…');
      if (pick === 'Train Model') await vscode.commands.executeCommand('idc.train');
      if (pick === 'Use Baseline Model') return { modelPath: BASELINE_MODEL };
      if (pick !== 'Choose model.json…') throw new Dismissed();
      return { modelPath: await this.chooseModelFile() };
    }
    if (finished.length === 1) return { runId: finished[0].id };
    const items = [
      ...finished.map((r) => ({ label: r.id, runId: r.id as string | undefined, description: `${r.epochs} epochs${r.bestEpoch !== undefined ? `, best ${r.bestEpoch + 1}` : ''}, ${r.backend}` })),
      baseline,
      other,
    ];
    const pick = await this.quickPick(items, title);
    return pick === other ? { modelPath: await this.chooseModelFile() } : pick === baseline ? { modelPath: BASELINE_MODEL } : { runId: pick.runId };
  }

  private async chooseModelFile(): Promise<string> {
    const uris = await vscode.window.showOpenDialog({ canSelectFiles: true, filters: { 'TF.js layers model': ['json'] }, openLabel: 'Use This Model', title: 'IDC: model.json of a TF.js layers model taking 50x50x3 patches' });
    if (!uris?.[0]) throw new Dismissed();
    return uris[0].fsPath;
  }

  private async ensureConfig(folder: Folder): Promise<vscode.Uri> {
    const uri = vscode.Uri.joinPath(folder.uri, CONFIG_FILE_NAME);
    if (!(await exists(uri))) await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(defaultConfigText()));
    return uri;
  }

  /** Sets one field of idc.config.json as an undoable edit that keeps comments, then saves. */
  private async setConfigValue(folder: Folder, path: (string | number)[], value: unknown): Promise<void> {
    const uri = await this.ensureConfig(folder);
    const doc = await vscode.workspace.openTextDocument(uri);
    let edits: P.ConfigEditResult['edits'];
    try {
      ({ edits } = await this.idc.request(P.configEdit, { text: doc.getText(), path, value }));
    } catch (e) {
      const pick = await vscode.window.showErrorMessage(`IDC: could not change ${path.join('.')} in ${CONFIG_FILE_NAME}: ${(e as Error).message}`, 'Open Config');
      if (pick) await vscode.window.showTextDocument(doc);
      throw new Dismissed();
    }
    const we = new vscode.WorkspaceEdit();
    for (const e of edits) we.replace(uri, new vscode.Range(e.range.start.line, e.range.start.character, e.range.end.line, e.range.end.character), e.newText);
    if (!(await vscode.workspace.applyEdit(we))) throw new Error(`VS Code refused the edit to ${CONFIG_FILE_NAME}.`);
    await doc.save();
  }

  private async quickPick<T extends vscode.QuickPickItem>(items: T[], placeHolder: string): Promise<T> {
    const pick = await vscode.window.showQuickPick(items, { placeHolder, title: 'IDC Inspector', matchOnDescription: true });
    if (!pick) throw new Dismissed();
    return pick;
  }

  private async input(options: vscode.InputBoxOptions): Promise<string> {
    const v = await vscode.window.showInputBox({ ...options, ignoreFocusOut: true });
    if (v === undefined) throw new Dismissed();
    return v;
  }
}

/** A path as the user wrote it in the config: relative to the folder when inside it. */
function rel(folder: Folder | undefined, p: string): string {
  if (!folder) return p;
  const r = relative(folder.uri.fsPath, p);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r.split(sep).join('/') : p;
}

async function exists(uri: vscode.Uri): Promise<boolean> {
  try {
    await vscode.workspace.fs.stat(uri);
    return true;
  } catch {
    return false;
  }
}
