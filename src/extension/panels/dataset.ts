import type * as vscode from 'vscode';
import type * as W from '../../protocol/webview';
import * as P from '../../protocol/protocol';
import { buildDatasetView, releaseDatasetCache, samplePatches, SAMPLE_SIZE, type DatasetSources } from '../../core/views/dataset';
import type { JobEvent } from '../jobs';
import { IdcPanel, type PanelHandlers, type PanelHost } from './panel';

/**
 * Dataset panel: class balance per split, the patient table, the leakage check and a random patch
 * grid, from manifest.csv, split.json and organize-report.json (read in this process: no TF.js).
 * Reloads when organize or split finishes.
 */
export class DatasetPanel extends IdcPanel<'dataset'> {
  constructor(panel: vscode.WebviewPanel, host: PanelHost, state: W.PanelState, info: P.WorkspaceInfo) {
    super('dataset', panel, host, state, info);
    this.onDidDispose(() => releaseDatasetCache());
  }

  private sources(): DatasetSources {
    // Paths from the output folder, not from info.manifest/info.split: those are absent until the
    // files exist, and the panel outlives the job that writes them.
    return { folder: this.info.folder, archive: this.info.archive, outputDir: this.info.outputDir };
  }

  protected handlers(): PanelHandlers<'dataset'> {
    return {
      load: async () => {
        const view = await buildDatasetView(this.sources(), { count: SAMPLE_SIZE });
        if (this.info.configProblems?.length) view.problems.unshift(`idc.config.json cannot be used (defaults apply): ${this.info.configProblems.join('; ')}`);
        return view;
      },
      sample: ({ count, seed, split }) => samplePatches(this.sources(), { count, seed, split }),
    };
  }

  override onJobEvent(event: JobEvent): void {
    if (event.type === 'finished' && (event.params.kind === 'organize' || event.params.kind === 'split' || event.params.kind === 'synth')) void this.reloadInfo(event.params.kind);
  }

  private async reloadInfo(reason: string): Promise<void> {
    try {
      const info = await this.host.idc.request(P.workspaceInfo, { folder: this.folder });
      this.update({ folder: this.folder }, info);
    } catch (e) {
      this.host.log.warn(`IDC dataset panel: could not reread the workspace after ${reason}: ${(e as Error)?.message ?? e}`);
      this.post('refresh', { reason });
    }
  }
}
